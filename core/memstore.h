/* An in-memory implementation of the storage interface (store.h): the "disk"
 * of a simulated node, and a store for unit tests. It outlives the fe_node
 * bound to it, so a simulated crash and restart reloads what was stored.
 *
 * Unlike the core it allocates: every table grows on demand. Puts and
 * deletes are O(1) on average (hash index over a dense array); loads are
 * O(n). An allocation failure makes the operation return FE_ERR_STORE, the
 * only failure the interface knows, and leaves the store as it was.
 *
 * Records handed to callbacks are valid only during the call. A callback may
 * delete or replace the record it is visiting; other changes to the same
 * table during a load are memory-safe but may make the load skip or repeat
 * records. Not thread-safe. */
#ifndef FE_MEMSTORE_H
#define FE_MEMSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "store.h"

typedef struct fe_memstore fe_memstore;

/* Create an empty store. 0 or FE_ERR_NOMEM (then *out is NULL). */
FE_MUST_CHECK int fe_memstore_new(fe_memstore **out);
/* Free the store and everything in it. Accepts NULL. Any fe_store bound to
 * it must not be used afterwards. */
void fe_memstore_del(fe_memstore *m);

/* Point out at this store: out->ops = the memstore ops, out->ctx = m. */
void fe_memstore_bind(fe_memstore *m, fe_store *out);

/* Fault injection: while fail is non-zero every fe_store op returns
 * FE_ERR_STORE and changes nothing. The inspection functions below are not
 * affected. */
void fe_memstore_set_fail(fe_memstore *m, int fail);

/* --- inspection, for the simulator and tests --- */

size_t fe_memstore_item_count(const fe_memstore *m);
/* Call cb for each item, in no particular order; stops and returns cb's value
 * when it is non-zero, else returns 0. */
int fe_memstore_item_iter(const fe_memstore *m, fe_store_item_cb cb, void *cbctx);
/* Copy the item (id, type) into out; out->frame points into the store and is
 * valid until the item is replaced or deleted. 0 or FE_ERR_NOTFOUND. */
int fe_memstore_item_get(const fe_memstore *m, const uint8_t id[static FE_MSG_ID_BYTES],
                         uint8_t type, fe_item_rec *out);

/* Seen entries as last put (the store does not merge kinds: a put replaces). */
size_t fe_memstore_seen_count(const fe_memstore *m);
/* 0 and the stored kinds and expiry, or FE_ERR_NOTFOUND. */
int fe_memstore_seen_get(const fe_memstore *m, const uint8_t id[static FE_MSG_ID_BYTES],
                         uint8_t *kinds, uint64_t *expires_ms);
/* The interface has no way to delete seen entries, so a long simulation
 * calls this to forget those expired at now_ms. Returns how many were
 * dropped. */
size_t fe_memstore_seen_expire(fe_memstore *m, uint64_t now_ms);

/* The inbox in the order of inbox_put; duplicates are kept, so a checker can
 * see a message delivered twice. */
size_t fe_memstore_inbox_count(const fe_memstore *m);
/* Copy record index (0 = oldest) into out; out->text points into the store
 * and stays valid until the store is deleted. 0 or FE_ERR_NOTFOUND. */
int fe_memstore_inbox_get(const fe_memstore *m, size_t index, fe_inbox_rec *out);

/* 0 and a copy of the sent record for id, or FE_ERR_NOTFOUND. */
int fe_memstore_sent_get(const fe_memstore *m, const uint8_t id[static FE_MSG_ID_BYTES],
                         fe_sent_rec *out);

size_t fe_memstore_dir_count(const fe_memstore *m);
size_t fe_memstore_group_count(const fe_memstore *m);

/* Approximate heap bytes held by the store, including table slack. */
size_t fe_memstore_bytes(const fe_memstore *m);

#endif
