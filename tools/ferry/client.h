/* A client of ferryd's control socket: line-delimited JSON over a Unix-domain
 * stream socket (docs/API.md). One request is outstanding at a time; events
 * that arrive while a reply is awaited are queued and handed out later, so a
 * subscriber never loses one. */
#ifndef FE_CLIENT_H
#define FE_CLIENT_H

#include <stddef.h>
#include <cjson/cJSON.h>

/* Results of client calls. The values are the CLI's exit codes negated, so a
 * caller can exit with -err. */
enum fe_client_err {
    FE_CLIENT_OK = 0,
    FE_CLIENT_ERR_REPLY = -1,   /* the daemon answered ok:false; code and message are kept */
    FE_CLIENT_ERR_USAGE = -2,   /* the caller passed something unusable (e.g. path too long) */
    FE_CLIENT_ERR_CONN = -3,    /* cannot connect, connection lost, or no answer in time */
    FE_CLIENT_ERR_TIMEOUT = -4, /* no event arrived before the deadline (events only) */
};

#define FE_CLIENT_LINE_MAX (16u * 1024u * 1024u) /* longest reply line accepted */
#define FE_CLIENT_EVENTS_MAX 256                 /* events queued during a call; oldest dropped */
#define FE_CLIENT_CALL_TIMEOUT_MS 15000          /* how long a reply may take */
#define FE_CLIENT_ERR_CHARS 1024

struct fe_client {
    int fd;
    char path[256];
    char *buf; /* bytes read but not yet split into lines */
    size_t len;
    size_t cap;
    int eof;
    long long next_id;
    int call_timeout_ms; /* FE_CLIENT_CALL_TIMEOUT_MS after connect; tests shorten it */
    cJSON *events[FE_CLIENT_EVENTS_MAX]; /* ring of queued event objects */
    size_t ev_head;
    size_t ev_count;
    size_t ev_dropped;
    char err_code[32];             /* daemon's error code after FE_CLIENT_ERR_REPLY */
    char err[FE_CLIENT_ERR_CHARS]; /* one human line describing the last failure */
};

/* The socket path a client uses when none is given: $FERRY_SOCKET, else
 * $XDG_DATA_HOME/ferry/ferryd.sock, else $HOME/.local/share/ferry/ferryd.sock.
 * Returns 0, or FE_CLIENT_ERR_USAGE if the result does not fit out. */
int fe_client_default_path(char *out, size_t out_len);

/* Prepares c and connects to the daemon at path. On failure c->err holds the
 * reason and c needs no fe_client_free (calling it is harmless).
 * Returns 0, FE_CLIENT_ERR_USAGE (path too long) or FE_CLIENT_ERR_CONN. */
int fe_client_connect(struct fe_client *c, const char *path);

/* Closes the socket and frees queued events. Accepts NULL. */
void fe_client_free(struct fe_client *c);

/* Sends {"id", "cmd", ...args} and waits for the matching reply. args is an
 * object of arguments or NULL; the function takes it over in every case. On
 * success *result is the reply's result object (the caller deletes it).
 * Returns 0, FE_CLIENT_ERR_REPLY (c->err_code, c->err say why) or
 * FE_CLIENT_ERR_CONN (lost, garbled, or no reply within
 * c->call_timeout_ms). */
int fe_client_call(struct fe_client *c, cJSON **result, const char *cmd, cJSON *args);

/* Hands out the next event, waiting up to timeout_ms (negative: forever).
 * *event is the whole event object; the caller deletes it.
 * Returns 0, FE_CLIENT_ERR_TIMEOUT, or FE_CLIENT_ERR_CONN. A signal that
 * interrupts the wait returns FE_CLIENT_ERR_TIMEOUT early. */
int fe_client_next_event(struct fe_client *c, cJSON **event, int timeout_ms);

/* 1 if an event is queued (so a poll() on the socket is not needed first). */
int fe_client_has_event(const struct fe_client *c);

/* Reads whatever the socket has without blocking and queues the events in it;
 * for callers that poll() the socket themselves (the chat). Returns 0 or
 * FE_CLIENT_ERR_CONN when the daemon has gone. */
int fe_client_pump(struct fe_client *c);

/* Small accessors that tolerate missing or mistyped fields, because the
 * daemon's objects may grow (and a garbled one must not crash the CLI). */
const char *fe_json_str(const cJSON *obj, const char *key); /* "" if absent */
double fe_json_num(const cJSON *obj, const char *key, double fallback);
int fe_json_bool(const cJSON *obj, const char *key); /* 0 if absent */

#endif
