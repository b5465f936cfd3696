/* The daemon's durable store: the fe_store interface (core/store.h) on
 * SQLite in WAL mode, plus the queries the daemon needs for its clients.
 *
 * Durability. The WAL is synced on every commit (synchronous=FULL), so a
 * commit that returned 0 survives kill -9 and power loss. That is what the
 * daemon promises: a send the user was told is queued, an inbox row whose
 * receipt went out, a seen id that keeps a message from being delivered
 * twice. NORMAL would only survive a crash of the process, not of the
 * machine. The price is one fsync per commit, which batching makes small:
 * the daemon calls fe_sqlstore_begin on the first write of a loop turn (or
 * sets autobatch) and fe_sqlstore_commit in the loop's before_sleep hook,
 * so a busy turn costs one fsync, before anything from it goes out.
 * Without an open batch every write commits (and syncs) on its own.
 *
 * Memory. SQLite's page cache is capped at FE_SQLSTORE_CACHE_KIB, so
 * memory does not follow the database as its tables grow.
 *
 * Errors. Every SQLite failure becomes FE_ERR_STORE and its text is kept
 * for fe_sqlstore_errmsg ("database or disk is full", "attempt to write a
 * readonly database", ...). A failed commit rolls the batch back, and so
 * may a failed write inside a batch (SQLite does on a full disk or an I/O
 * error): the writes since fe_sqlstore_begin are then lost, which the daemon
 * must treat as fatal (fe_err_is_fatal).
 *
 * Beyond core/store.h: inbox_put keeps one row per message id (a second put
 * of the same id is ignored), so a redelivery after a crash is still shown
 * once; meta_get returns FE_ERR_TOOBIG, with *len set to the size needed,
 * when the value does not fit, like the memory store; deleting what does
 * not exist is not an error.
 *
 * Loads hand out records whose pointers (frame, text) are valid during the
 * callback only; a non-zero callback result stops the load and is returned.
 * Rows that cannot be a valid record (wrong id length, oversized frame) are
 * skipped and counted in fe_sqlstore_rowcounts.bad_rows. Not thread-safe; one
 * process should open a given file. */
#ifndef FE_SQLSTORE_H
#define FE_SQLSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "../core/err.h"
#include "../core/store.h"

#define FE_SQLSTORE_SCHEMA_VERSION 2
#define FE_SQLSTORE_BUSY_TIMEOUT_MS 5000
#define FE_SQLSTORE_ERRMSG_MAX 256
#define FE_SQLSTORE_META_KEY_MAX 255 /* longer meta keys are refused */

#define FE_SQLSTORE_CACHE_KIB 2000 /* page cache limit (SQLite's usual default) */

typedef struct fe_sqlstore fe_sqlstore;

/* Open or create the store at path (its directory must exist), check it
 * (PRAGMA quick_check), bring the schema up to date and prepare statements.
 * The file is made mode 0600: it holds group keys and message texts.
 * Returns 0, FE_ERR_INVALID, FE_ERR_NOMEM or FE_ERR_STORE with one line in
 * err. A damaged file is never repaired or overwritten: the message names it
 * and says how to recover (move it aside; the daemon then starts with an
 * empty store, and the identity, kept in its own key file, is unaffected). */
FE_MUST_CHECK int fe_sqlstore_open(fe_sqlstore **out, const char *path, char *err, size_t err_len);

/* Commit an open batch, then close. Accepts NULL. */
void fe_sqlstore_close(fe_sqlstore *s);

/* Point out at this store for the core: out->ops, out->ctx = s. */
void fe_sqlstore_bind(fe_sqlstore *s, fe_store *out);

/* Text of the last failure, "" if none yet. Valid until the next call. */
const char *fe_sqlstore_errmsg(const fe_sqlstore *s);

/* --- batching --- */

/* Start a batch (BEGIN IMMEDIATE) unless one is open. 0 or FE_ERR_STORE. */
int fe_sqlstore_begin(fe_sqlstore *s);
/* Commit the open batch, if any, syncing the WAL. 0 or FE_ERR_STORE (then
 * the batch was rolled back). */
int fe_sqlstore_commit(fe_sqlstore *s);
/* Drop the open batch, if any. 0 or FE_ERR_STORE. */
int fe_sqlstore_rollback(fe_sqlstore *s);
/* 1 while a batch is open. */
int fe_sqlstore_in_batch(const fe_sqlstore *s);
/* With autobatch on, every write (the fe_store ops, inbox_mark_shown and
 * seen_prune) opens a batch if none is open, so the daemon only has to
 * commit in before_sleep. */
void fe_sqlstore_set_autobatch(fe_sqlstore *s, int on);

/* --- queries for the daemon --- */

typedef int (*fe_sqlstore_inbox_cb)(void *ctx, int64_t rowid, const fe_inbox_rec *r, int shown);
typedef int (*fe_sqlstore_sent_cb)(void *ctx, const fe_sent_rec *r);

/* Inbox rows in arrival order (ascending rowid). With unshown_only, the
 * oldest `limit` rows not yet shown; otherwise the newest `limit` rows.
 * limit 0 means all. Stops when cb returns non-zero and returns that value;
 * else 0 or FE_ERR_STORE. */
int fe_sqlstore_inbox_list(fe_sqlstore *s, int unshown_only, size_t limit, fe_sqlstore_inbox_cb cb,
                           void *ctx);
/* The oldest `limit` rows (0 = all) with rowid greater than `after`, shown
 * or not, in arrival order: pages through the whole inbox. */
int fe_sqlstore_inbox_after(fe_sqlstore *s, int64_t after, size_t limit, fe_sqlstore_inbox_cb cb,
                            void *ctx);
/* Mark a row shown. 0, FE_ERR_NOTFOUND or FE_ERR_STORE. */
int fe_sqlstore_inbox_mark_shown(fe_sqlstore *s, int64_t rowid);

/* The sent record for id. 0, FE_ERR_NOTFOUND or FE_ERR_STORE. */
int fe_sqlstore_sent_get(fe_sqlstore *s, const uint8_t id[static FE_MSG_ID_BYTES],
                         fe_sent_rec *out);
/* The newest `limit` sent records (0 = all), oldest first; with
 * pending_only, only those without a receipt. Callback as for the inbox. */
int fe_sqlstore_sent_list(fe_sqlstore *s, int pending_only, size_t limit, fe_sqlstore_sent_cb cb,
                          void *ctx);

typedef struct fe_sqlstore_rowcounts {
    uint64_t items, own_items, seen, inbox, inbox_unshown, sent, sent_pending, directory, groups;
    uint64_t bad_rows; /* rows skipped by loads since open */
} fe_sqlstore_rowcounts;

/* Row counts, for status output. 0 or FE_ERR_STORE. */
int fe_sqlstore_counts(fe_sqlstore *s, fe_sqlstore_rowcounts *out);

/* Bytes SQLite holds now and at most since the process started (its page
 * caches, statements and schema; the whole process, every connection). */
void fe_sqlstore_memory(uint64_t *used, uint64_t *peak);

/* Forget seen ids that expired at now_ms (expires_ms <= now_ms); the daemon
 * calls it at start, before the node loads them, and now and then.
 * *pruned (may be NULL) receives the number removed. 0 or FE_ERR_STORE. */
int fe_sqlstore_seen_prune(fe_sqlstore *s, uint64_t now_ms, uint64_t *pruned);

#endif
