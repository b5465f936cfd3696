#include "outbox.h"

#include "wire.h"

#include <stdlib.h>
#include <string.h>

static void rcpt_push(fe_outbox *o, const fe_item *it);

static const uint16_t CLASS_SIZE[5] = {32, 96, 256, 640, FE_FRAME_MAX};

uint32_t fe_outbox_mix(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

static size_t pow2_at_least(size_t n)
{
    size_t p = 16;
    while (p < n)
        p <<= 1;
    return p;
}

static uint32_t key_hash(const uint8_t id[FE_MSG_ID_BYTES], uint8_t type)
{
    uint64_t v;
    memcpy(&v, id, sizeof v);
    v ^= (uint64_t)type * 0x9E3779B97F4A7C15ULL;
    v ^= v >> 31;
    v *= 0xBF58476D1CE4E5B9ULL;
    v ^= v >> 29;
    return (uint32_t)v;
}

int fe_outbox_init(fe_outbox *o, size_t items_max, size_t bytes_max, size_t origin_quota)
{
    memset(o, 0, sizeof *o);
    if (items_max == 0 || items_max > (1u << 24) || bytes_max == 0 || origin_quota == 0)
        return FE_ERR_INVALID;
    o->items_max = items_max;
    o->bytes_max = bytes_max;
    o->origin_quota = origin_quota > 0xFFFF ? 0xFFFF : origin_quota;
    o->index_cap = pow2_at_least(items_max * 2);
    o->quota_cap = o->index_cap;
    o->index = calloc(o->index_cap, sizeof *o->index);
    o->quota_keys = calloc(o->quota_cap, sizeof *o->quota_keys);
    o->quota_counts = calloc(o->quota_cap, sizeof *o->quota_counts);
    o->rcpt_cap = items_max;
    o->rcpt_ring = calloc(o->rcpt_cap, sizeof *o->rcpt_ring);
    if (!o->index || !o->quota_keys || !o->quota_counts || !o->rcpt_ring) {
        fe_outbox_free(o);
        return FE_ERR_NOMEM;
    }
    return FE_OK;
}

void fe_outbox_free(fe_outbox *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->cap; i++)
        if (o->items[i].in_use)
            free(o->items[i].frame);
    for (int c = 0; c < 5; c++) {
        uint8_t *b = o->blocks[c];
        while (b) {
            uint8_t *next;
            memcpy(&next, b, sizeof next);
            free(b);
            b = next;
        }
    }
    free(o->items);
    free(o->free_slots);
    free(o->index);
    free(o->quota_keys);
    free(o->quota_counts);
    free(o->rcpt_ring);
    memset(o, 0, sizeof *o);
}

static size_t index_find(const fe_outbox *o, const uint8_t id[FE_MSG_ID_BYTES], uint8_t type,
                         int *found)
{
    size_t mask = o->index_cap - 1, i = key_hash(id, type) & mask;

    for (;;) {
        uint32_t v = o->index[i];
        if (v == 0) {
            *found = 0;
            return i;
        }
        const fe_item *it = &o->items[v - 1];
        if (it->type == type && memcmp(it->id, id, FE_MSG_ID_BYTES) == 0) {
            *found = 1;
            return i;
        }
        i = (i + 1) & mask;
    }
}

fe_item *fe_outbox_find(const fe_outbox *o, const uint8_t id[static FE_MSG_ID_BYTES], uint8_t type)
{
    int found;
    size_t i = index_find(o, id, type, &found);
    return found ? &o->items[o->index[i] - 1] : NULL;
}

static void index_remove(fe_outbox *o, size_t i)
{
    size_t mask = o->index_cap - 1, j = i;

    /* Backward-shift deletion keeps probe chains intact without tombstones. */
    o->index[i] = 0;
    for (;;) {
        j = (j + 1) & mask;
        uint32_t v = o->index[j];
        if (v == 0)
            return;
        const fe_item *it = &o->items[v - 1];
        size_t home = key_hash(it->id, it->type) & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) {
            o->index[i] = v;
            o->index[j] = 0;
            i = j;
        }
    }
}

static size_t quota_slot(const fe_outbox *o, const uint8_t origin[FE_HINT_BYTES])
{
    uint32_t key;
    memcpy(&key, origin, sizeof key);
    key |= 1u; /* 0 marks an empty slot; the low bit only costs a little precision */
    size_t mask = o->quota_cap - 1, i = fe_outbox_mix(key) & mask;
    while (o->quota_keys[i] != 0 && o->quota_keys[i] != key)
        i = (i + 1) & mask;
    return i;
}

uint16_t fe_outbox_origin_count(const fe_outbox *o, const uint8_t origin[static FE_HINT_BYTES])
{
    size_t i = quota_slot(o, origin);
    return o->quota_keys[i] ? o->quota_counts[i] : 0;
}

static void quota_adjust(fe_outbox *o, const uint8_t origin[FE_HINT_BYTES], int delta)
{
    uint32_t key;
    size_t i = quota_slot(o, origin);

    memcpy(&key, origin, sizeof key);
    if (o->quota_keys[i] == 0)
        o->quota_keys_used++;
    o->quota_keys[i] = key | 1u;
    o->quota_counts[i] = (uint16_t)(o->quota_counts[i] + delta);
    /* Slots with a zero count stay as keys: the table holds at most as many
     * origins as items ever seen between rebuilds, bounded by quota_cap/2. */
    if (o->quota_counts[i] == 0 && o->used == 0) {
        memset(o->quota_keys, 0, o->quota_cap * sizeof *o->quota_keys);
        memset(o->quota_counts, 0, o->quota_cap * sizeof *o->quota_counts);
        o->quota_keys_used = 0;
    }
}

/* Rebuild the quota table from the items when dead keys pile up. */
static void quota_rebuild(fe_outbox *o)
{
    memset(o->quota_keys, 0, o->quota_cap * sizeof *o->quota_keys);
    memset(o->quota_counts, 0, o->quota_cap * sizeof *o->quota_counts);
    o->quota_keys_used = 0;
    for (size_t s = 0; s < o->cap; s++)
        if (o->items[s].in_use) {
            size_t i = quota_slot(o, o->items[s].origin);
            uint32_t key;
            memcpy(&key, o->items[s].origin, sizeof key);
            if (o->quota_keys[i] == 0)
                o->quota_keys_used++;
            o->quota_keys[i] = key | 1u;
            o->quota_counts[i]++;
        }
}

uint16_t fe_outbox_heaviest_origin(const fe_outbox *o, uint8_t origin[static FE_HINT_BYTES])
{
    uint16_t best = 0;
    for (size_t i = 0; i < o->quota_cap; i++)
        if (o->quota_keys[i] && o->quota_counts[i] > best) {
            best = o->quota_counts[i];
            memcpy(origin, &o->quota_keys[i], FE_HINT_BYTES);
        }
    return best;
}

static uint8_t *block_get(fe_outbox *o, size_t len, uint8_t *cls)
{
    int c = 0;
    while (CLASS_SIZE[c] < len)
        c++;
    *cls = (uint8_t)c;
    uint8_t *b = o->blocks[c];
    if (b) {
        uint8_t *next; /* free blocks link through their first bytes */
        memcpy(&next, b, sizeof next);
        o->blocks[c] = next;
        return b;
    }
    return malloc(CLASS_SIZE[c]);
}

static void block_put(fe_outbox *o, uint8_t *b, uint8_t cls)
{
    uint8_t *next = o->blocks[cls];
    memcpy(b, &next, sizeof next);
    o->blocks[cls] = b;
}

static int grow_slots(fe_outbox *o)
{
    size_t ncap = o->cap ? o->cap * 2 : 64;
    if (ncap > o->items_max)
        ncap = o->items_max;
    if (ncap <= o->cap)
        return FE_ERR_FULL;
    fe_item *items = realloc(o->items, ncap * sizeof *items);
    if (!items)
        return FE_ERR_NOMEM;
    o->items = items;
    uint32_t *fs = realloc(o->free_slots, ncap * sizeof *fs);
    if (!fs)
        return FE_ERR_NOMEM;
    o->free_slots = fs;
    for (size_t i = ncap; i > o->cap; i--) {
        memset(&o->items[i - 1], 0, sizeof o->items[0]);
        o->free_slots[o->free_count++] = (uint32_t)(i - 1);
    }
    o->cap = ncap;
    return FE_OK;
}

fe_item *fe_outbox_add(fe_outbox *o, const uint8_t id[static FE_MSG_ID_BYTES], uint8_t type,
                       const uint8_t origin[static FE_HINT_BYTES], const uint8_t *frame,
                       size_t len, uint64_t received_ms, uint64_t expires_ms, int *err)
{
    int found, rc;
    size_t pos;
    uint8_t cls;
    uint8_t *block;

    if (len == 0 || len > FE_FRAME_MAX) {
        *err = FE_ERR_TOOBIG;
        return NULL;
    }
    pos = index_find(o, id, type, &found);
    if (found) {
        *err = FE_ERR_DUPLICATE;
        return NULL;
    }
    if (o->used >= o->items_max || o->bytes + len > o->bytes_max ||
        fe_outbox_origin_count(o, origin) >= o->origin_quota) {
        *err = FE_ERR_FULL;
        return NULL;
    }
    if (o->free_count == 0 && (rc = grow_slots(o)) != FE_OK) {
        *err = rc;
        return NULL;
    }
    block = block_get(o, len, &cls);
    if (!block) {
        *err = FE_ERR_NOMEM;
        return NULL;
    }
    /* Keys of origins whose count fell to zero stay in the table; rebuild
     * when they could crowd it (amortised: at most once per quota_cap/2 adds). */
    if (o->quota_keys_used > o->quota_cap / 2)
        quota_rebuild(o);

    uint32_t slot = o->free_slots[--o->free_count];
    fe_item *it = &o->items[slot];
    uint32_t gen = it->gen + 1;
    memset(it, 0, sizeof *it);
    it->gen = gen;
    memcpy(it->id, id, FE_MSG_ID_BYTES);
    it->type = type;
    it->in_use = 1;
    memcpy(it->origin, origin, FE_HINT_BYTES);
    it->len = (uint16_t)len;
    it->cls = cls;
    it->frame = block;
    memcpy(block, frame, len);
    it->received_ms = received_ms;
    it->expires_ms = expires_ms;
    it->token = fe_wire_token(id, type == FE_T_RECEIPT);
    o->index[pos] = slot + 1;
    if (type == FE_T_RECEIPT)
        rcpt_push(o, it);
    o->used++;
    o->bytes += len;
    quota_adjust(o, origin, +1);
    *err = FE_OK;
    return it;
}

static int rcpt_entry_live(const fe_outbox *o, uint64_t e)
{
    uint32_t slot = (uint32_t)(e >> 32), gen = (uint32_t)e;
    return slot < o->cap && o->items[slot].in_use && o->items[slot].gen == gen &&
           o->items[slot].type == FE_T_RECEIPT;
}

/* Keep only live entries, in order. Runs when the ring is full of stale
 * entries, which takes receipts removed out of order. */
static void rcpt_compact(fe_outbox *o)
{
    size_t n = 0;
    for (size_t i = 0; i < o->rcpt_len; i++) {
        uint64_t e = o->rcpt_ring[(o->rcpt_head + i) % o->rcpt_cap];
        if (rcpt_entry_live(o, e))
            o->rcpt_ring[n++] = e;
    }
    o->rcpt_head = 0;
    o->rcpt_len = n;
}

static void rcpt_push(fe_outbox *o, const fe_item *it)
{
    if (o->rcpt_len == o->rcpt_cap)
        rcpt_compact(o);
    if (o->rcpt_len == o->rcpt_cap)
        return; /* cannot happen: live receipts <= items_max */
    uint64_t e = ((uint64_t)(it - o->items) << 32) | it->gen;
    o->rcpt_ring[(o->rcpt_head + o->rcpt_len++) % o->rcpt_cap] = e;
}

fe_item *fe_outbox_oldest_receipt(fe_outbox *o)
{
    while (o->rcpt_len) {
        uint64_t e = o->rcpt_ring[o->rcpt_head];
        if (rcpt_entry_live(o, e))
            return &o->items[e >> 32];
        o->rcpt_head = (o->rcpt_head + 1) % o->rcpt_cap;
        o->rcpt_len--;
    }
    return NULL;
}

void fe_outbox_set_in_digest(fe_outbox *o, fe_item *it, int on)
{
    on = on && it->type != FE_T_RECEIPT;
    if (on == it->in_digest)
        return;
    if (on) {
        o->digest += fe_outbox_mix(it->token);
        o->digest_count++;
    } else {
        o->digest -= fe_outbox_mix(it->token);
        o->digest_count--;
    }
    it->in_digest = (uint8_t)on;
}

void fe_outbox_remove(fe_outbox *o, fe_item *it)
{
    int found;
    size_t pos;

    if (!it || !it->in_use)
        return;
    pos = index_find(o, it->id, it->type, &found);
    if (found)
        index_remove(o, pos);
    fe_outbox_set_in_digest(o, it, 0);
    o->used--;
    o->bytes -= it->len;
    quota_adjust(o, it->origin, -1);
    block_put(o, it->frame, it->cls);
    it->frame = NULL;
    it->in_use = 0;
    it->pend = 0;
    o->free_slots[o->free_count++] = (uint32_t)(it - o->items);
}
