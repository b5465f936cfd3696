/* Error codes of the ferry core: 0 is success, failures are negative. */
#ifndef FE_ERR_H
#define FE_ERR_H

#define FE_MUST_CHECK __attribute__((warn_unused_result))

enum fe_err {
    FE_OK = 0,
    FE_ERR_INVALID = -1,   /* caller passed a bad argument: a programming error or bad user input */
    FE_ERR_MALFORMED = -2, /* bytes from the wire or a file failed to decode: drop and count */
    FE_ERR_CRYPTO = -3,    /* authentication or decryption failed; deliberately carries no detail */
    FE_ERR_NOMEM = -4,     /* an allocation failed */
    FE_ERR_FULL = -5,      /* a bounded table or quota is full: retry later or drop */
    FE_ERR_NOTFOUND = -6,  /* no such id, key, user or group */
    FE_ERR_TOOBIG = -7,    /* input exceeds a size limit (FE_TEXT_MAX, FE_FRAME_MAX, MTU) */
    FE_ERR_DUPLICATE = -8, /* already seen or already present: not an error for the caller's data */
    FE_ERR_EXPIRED = -9,   /* lifetime or hop budget used up */
    FE_ERR_STORE = -10,    /* the storage backend failed: fatal for durability, report it */
    FE_ERR_UNKNOWN_KEY = -11 /* the peer's public key is not known yet (no announce heard) */
};

/* A short English description of code; never NULL. */
const char *fe_strerror(int code);

/* 1 if the caller should stop (storage or memory failure), 0 if it may go on. */
int fe_err_is_fatal(int code);

#endif
