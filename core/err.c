#include "err.h"

const char *fe_strerror(int code)
{
    switch (code) {
    case FE_OK: return "ok";
    case FE_ERR_INVALID: return "invalid argument";
    case FE_ERR_MALFORMED: return "malformed input";
    case FE_ERR_CRYPTO: return "authentication failed";
    case FE_ERR_NOMEM: return "out of memory";
    case FE_ERR_FULL: return "table or quota full";
    case FE_ERR_NOTFOUND: return "not found";
    case FE_ERR_TOOBIG: return "too big";
    case FE_ERR_DUPLICATE: return "duplicate";
    case FE_ERR_EXPIRED: return "expired";
    case FE_ERR_STORE: return "storage failure";
    case FE_ERR_UNKNOWN_KEY: return "recipient's key not known yet";
    default: return "unknown error";
    }
}

int fe_err_is_fatal(int code)
{
    return code == FE_ERR_NOMEM || code == FE_ERR_STORE;
}
