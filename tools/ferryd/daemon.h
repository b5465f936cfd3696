/* ferryd's wiring: the engine (core/node.h) on a SQLite store, its links
 * (UDP, serial radios, Bluetooth RFCOMM: links.h), the event loop, and the
 * control socket (docs/API.md).
 *
 * One loop turn, as the daemon drives it:
 *   - fds: frames from the transports go into the node, control requests
 *     into handlers;
 *   - timers: node and transport deadlines, the time line every minute;
 *   - before_sleep: events for subscribers are built, the turn's store
 *     writes are committed in one transaction, and only then do the frames
 *     the node produced go out and replies and events reach clients. A
 *     receipt thus never leaves before its inbox row is on disk, and a
 *     client is never told "queued" before the message is.
 * A failed commit is logged; the turn's replies become `store` errors, its
 * frames are dropped, and the node is reloaded from what is on disk so that
 * memory and store agree again. The daemon keeps running. */
#ifndef FE_DAEMON_H
#define FE_DAEMON_H

#include <stddef.h>

#include "config.h"

typedef struct fe_daemon fe_daemon;

/* Start everything described by cfg (finished with fe_config_finish; the
 * data directory must exist). Returns 0, or -1 with one line in err saying
 * what failed and what to do (unreadable key, damaged store, port in use,
 * socket in use...). */
int fe_daemon_new(fe_daemon **out, const fe_config *cfg, char *err, size_t err_len);

/* Serve until SIGTERM or SIGINT, then shut down cleanly: commit, persist
 * the time line, send the going-offline notice. Returns the exit status:
 * 0, or 1 if the event loop failed. */
int fe_daemon_run(fe_daemon *d);

/* Close everything. Accepts NULL. */
void fe_daemon_del(fe_daemon *d);

#endif
