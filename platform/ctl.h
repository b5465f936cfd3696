/* The control socket server: line-delimited JSON over a Unix stream socket
 * (docs/API.md), driven by the platform event loop.
 *
 * The server knows framing, not commands: it accepts up to
 * FE_CTL_CLIENTS_MAX clients, splits their input into lines of at most
 * FE_CTL_LINE_MAX bytes, parses each as JSON, and calls the handler the
 * owner registered for the request's "cmd". It answers the protocol-level
 * errors itself (bad_request, too_large, unknown_command) and wraps handler
 * results into replies that echo the request's "id".
 *
 * Output is staged, not written at once: replies and events produced during
 * a loop turn wait until the owner calls fe_ctl_flush, normally in the
 * loop's before_sleep hook right after committing the turn's store
 * transaction. A reply to a command registered FE_CTL_DURABLE thus never
 * reaches the client before what it reports is on disk; if the commit
 * failed, flush replaces those replies with a `store` error and drops
 * durable events. Replies keep request order on each connection.
 *
 * Writes are non-blocking. A client that does not read has its queued output
 * bounded: above FE_CTL_OUT_PAUSE its further requests are not read (it is
 * not served faster than it reads), and above FE_CTL_OUT_MAX (events pile
 * up too) it is disconnected rather than allowed to stall the daemon.
 *
 * Single-threaded, like the loop. Uses cJSON. */
#ifndef FE_CTL_H
#define FE_CTL_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "../core/err.h"
#include "loop.h"

#define FE_CTL_CLIENTS_MAX 32
#define FE_CTL_LINE_MAX 65536       /* longest request line, newline not counted */
/* Bytes read from one client per readiness, about 100 requests: a turn
 * does that much work, commits it and sends its frames, so a client that
 * pipelines thousands of sends has its first ones travelling while the
 * next are stored (a bigger bite made the receiver wait, then flooded it). */
#define FE_CTL_READ_MAX 8192
#define FE_CTL_OUT_PAUSE (1u << 20) /* queued output that stops reading a client's requests */
#define FE_CTL_OUT_MAX (8u << 20)   /* queued output that disconnects a client */
#define FE_CTL_MESSAGE_MAX 256      /* error message text, with its NUL */
#define FE_CTL_RETRY_MIN_MS 1u      /* write retry after EAGAIN, doubling ... */
#define FE_CTL_RETRY_MAX_MS 64u     /* ... up to this while the client reads nothing */

typedef struct fe_ctl fe_ctl;
typedef struct fe_ctl_client fe_ctl_client;

/* What a handler reports on failure. code is one of the codes of
 * docs/API.md, a static string. */
typedef struct fe_ctl_error {
    const char *code;
    char message[FE_CTL_MESSAGE_MAX];
} fe_ctl_error;

/* Handle one request (a JSON object with a string "cmd"). Return the result
 * object, which the server takes over, or NULL with err filled in (a NULL
 * err->code is reported as `internal`). req is borrowed for the call. The
 * handler may call fe_ctl_subscribe and fe_ctl_broadcast. */
typedef cJSON *(*fe_ctl_handler)(void *ctx, fe_ctl_client *client, const cJSON *req,
                                 fe_ctl_error *err);

#define FE_CTL_DURABLE 1u /* the reply waits for the commit and becomes `store` if it fails */

typedef struct fe_ctl_command {
    const char *name;
    fe_ctl_handler fn;
    unsigned flags;
} fe_ctl_command;

typedef struct fe_ctl_config {
    const char *path;               /* socket path (< 108 bytes) */
    const char *group;              /* NULL or "": mode 0600; else 0660 and owned by this group */
    const fe_ctl_command *commands; /* borrowed: must outlive the server */
    size_t command_count;
    void *ctx; /* passed to every handler */
    /* Optional: non-zero while writes wait for a commit. A durable reply
     * staged when nothing waits (its writes went out with an earlier commit
     * of the turn) is final at once, so a later failed commit cannot turn it
     * into a false `store` error. */
    int (*pending_writes)(void *ctx);
} fe_ctl_config;

typedef struct fe_ctl_stats {
    uint64_t accepted;     /* connections served */
    uint64_t refused;      /* connections closed at once: FE_CTL_CLIENTS_MAX reached */
    uint64_t requests;     /* lines handled, errors included */
    uint64_t errors;       /* error replies */
    uint64_t dropped_slow; /* clients disconnected for not reading */
    size_t clients;        /* connected now */
} fe_ctl_stats;

/* Listen on cfg->path and watch it in loop. A stale socket file left by a
 * crash is replaced; a live one (another daemon answers there) or any other
 * kind of file is refused. Returns 0, or with one line in err:
 * FE_ERR_INVALID (bad arguments, path too long, unknown group, a file in
 * the way), FE_ERR_DUPLICATE (another server is listening there),
 * FE_ERR_NOMEM, FE_ERR_STORE (socket, bind or listen failed). */
FE_MUST_CHECK int fe_ctl_new(fe_ctl **out, fe_loop *loop, const fe_ctl_config *cfg, char *err,
                             size_t err_len);

/* Close every client and the listening socket, and remove the socket file.
 * Output not yet written is lost: call fe_ctl_flush first. Accepts NULL. */
void fe_ctl_del(fe_ctl *c);

/* From a handler: send events to this client from now on. */
void fe_ctl_subscribe(fe_ctl_client *client);

/* Stage event (borrowed) for every subscribed client. With FE_CTL_DURABLE
 * it is dropped if the turn's commit fails. */
void fe_ctl_broadcast(fe_ctl *c, const cJSON *event, unsigned flags);

/* The owner committed: everything staged so far is final (durable replies
 * and events stand even if a later commit of the same turn fails). Writes
 * nothing and closes nothing, so it may be called from anywhere. */
void fe_ctl_committed(fe_ctl *c);

/* Release the output staged since the last flush and start writing it.
 * store_failure NULL: the turn's commit succeeded. Otherwise it is the
 * message of the `store` error that replaces each durable reply. */
void fe_ctl_flush(fe_ctl *c, const char *store_failure);

void fe_ctl_get_stats(const fe_ctl *c, fe_ctl_stats *out);

/* Number of subscribed clients (events need not be built when there are none). */
size_t fe_ctl_subscribers(const fe_ctl *c);

#endif
