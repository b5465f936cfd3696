/* The outbox: items (messages, receipts, announces) this node holds for
 * forwarding, with their lifetime. Bounded in items, bytes and items per
 * origin. Frames live in size-classed blocks that are recycled, so a node in
 * steady state does not call the allocator per item. */
#ifndef FE_OUTBOX_H
#define FE_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "limits.h"

#define FE_BCAST_LINKS_MAX 4 /* broadcast links whose relays an item tracks */

typedef struct fe_item {
    uint8_t id[FE_MSG_ID_BYTES];
    uint8_t type;         /* enum fe_frame_type */
    uint8_t own;          /* originated here */
    uint8_t hops;         /* hop budget left when it arrived (own: the full budget) */
    uint8_t in_use;
    uint8_t in_digest;    /* counted in the anti-entropy digest and listed in summaries */
    uint8_t pend;         /* broadcast link indices with a relay scheduled */
    uint8_t heard[FE_BCAST_LINKS_MAX]; /* copies heard per broadcast link since scheduling */
    uint8_t origin[FE_HINT_BYTES];     /* quota bucket */
    uint32_t gen;         /* bumped on reuse, so stale timers can be recognised */
    uint32_t token;       /* anti-entropy token */
    uint16_t len;
    uint8_t cls;          /* block size class */
    uint64_t received_ms;
    uint64_t expires_ms;
    uint64_t relay_due_ms;
    uint8_t *frame;
} fe_item;

typedef struct fe_outbox {
    fe_item *items;       /* slots; grown by doubling up to items_max */
    size_t cap, used;     /* slots allocated / in use */
    uint32_t *free_slots; /* stack of free slot indices */
    size_t free_count;
    uint32_t *index;      /* open addressing: slot + 1, 0 = empty; keyed by (id, type) */
    size_t index_cap;
    uint32_t *quota_keys; /* open addressing: origin hint -> count */
    uint16_t *quota_counts;
    size_t quota_cap;
    size_t quota_keys_used; /* non-empty key slots, live or with a zero count */
    uint8_t *blocks[5];   /* free lists per size class, linked through the first bytes */
    /* Receipts in arrival order (slot, gen), for eviction under pressure:
     * entries whose item is gone are skipped lazily. */
    uint64_t *rcpt_ring;
    size_t rcpt_cap, rcpt_head, rcpt_len;
    size_t items_max, bytes_max, origin_quota;
    size_t bytes;         /* frame bytes held */
    /* Anti-entropy digest: sum of mixed tokens of every item but receipts
     * (receipts go only to peers that hold their message), and their count. */
    uint32_t digest;
    size_t digest_count;
} fe_outbox;

/* 0, FE_ERR_NOMEM or FE_ERR_INVALID. Allocates the index up front. */
FE_MUST_CHECK int fe_outbox_init(fe_outbox *o, size_t items_max, size_t bytes_max,
                                 size_t origin_quota);
void fe_outbox_free(fe_outbox *o);

/* Find an item by id and type, or NULL. */
fe_item *fe_outbox_find(const fe_outbox *o, const uint8_t id[static FE_MSG_ID_BYTES], uint8_t type);

/* Insert a copy of frame. Returns the item, or NULL with *err set:
 * FE_ERR_DUPLICATE (already held), FE_ERR_FULL (quota or bounds; the caller
 * may evict and retry), FE_ERR_NOMEM, FE_ERR_TOOBIG. */
fe_item *fe_outbox_add(fe_outbox *o, const uint8_t id[static FE_MSG_ID_BYTES], uint8_t type,
                       const uint8_t origin[static FE_HINT_BYTES], const uint8_t *frame,
                       size_t len, uint64_t received_ms, uint64_t expires_ms, int *err);

/* Count an item in the anti-entropy digest (or not). Receipts never are, nor
 * copies that can go no further. Idempotent. */
void fe_outbox_set_in_digest(fe_outbox *o, fe_item *it, int on);

/* Remove an item (its slot and block are recycled). */
void fe_outbox_remove(fe_outbox *o, fe_item *it);

/* The oldest receipt held, or NULL. A receipt is the cheapest item to lose:
 * the dedupe table still stops late copies of its message here. */
fe_item *fe_outbox_oldest_receipt(fe_outbox *o);

/* The origin that holds the most items and the count, for eviction. */
uint16_t fe_outbox_heaviest_origin(const fe_outbox *o, uint8_t origin[static FE_HINT_BYTES]);
uint16_t fe_outbox_origin_count(const fe_outbox *o, const uint8_t origin[static FE_HINT_BYTES]);

/* Slot access for iteration: 0 <= i < o->cap; check in_use. */
static inline fe_item *fe_outbox_slot(const fe_outbox *o, size_t i)
{
    return &o->items[i];
}

uint32_t fe_outbox_mix(uint32_t token);

#endif
