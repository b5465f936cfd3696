/* Fragmentation and reassembly: see frag.h.
 *
 * Fragment: [type byte][index][count][key, 4 bytes BE][payload]
 * chunk = mtu - FE_FRAG_HDR_BYTES; fragments 0..count-2 carry exactly chunk
 * payload bytes, the last one the remaining 1..chunk. The receiver learns
 * chunk from the first non-last fragment it sees; until then a last fragment
 * that came first waits in slot->last. */
#include "frag.h"

#include <string.h>

#include <sodium.h>

#include "wire.h"

#define FE_FRAG_KEY_HASH_BYTES 32 /* BLAKE2b-256; the key is its first 4 bytes */

_Static_assert(FE_FRAG_MAX_COUNT <= 64, "slot->have is one 64-bit bitmap");
_Static_assert(FE_FRAG_MAX_COUNT <= 255, "count travels in one byte");

size_t fe_frag_count(size_t len, size_t mtu)
{
    if (len > FE_FRAME_MAX)
        return 0;
    if (len <= mtu)
        return 1;
    if (mtu <= FE_FRAG_HDR_BYTES)
        return 0;
    size_t chunk = mtu - FE_FRAG_HDR_BYTES;
    size_t n = (len + chunk - 1) / chunk;
    return n <= FE_FRAG_MAX_COUNT ? n : 0;
}

uint32_t fe_frag_key(const uint8_t *frame, size_t len)
{
    uint8_t h[FE_FRAG_KEY_HASH_BYTES];
    crypto_generichash(h, sizeof(h), frame, len, NULL, 0);
    return fe_get_be32(h);
}

ptrdiff_t fe_frag_make(uint8_t *out, size_t out_len, const uint8_t *frame, size_t len, size_t mtu,
                       unsigned index)
{
    if (!out || !frame)
        return FE_ERR_INVALID;
    size_t n = fe_frag_count(len, mtu);
    /* n == 1: the frame fits the link as it is and is sent unfragmented. */
    if (n < 2 || index >= n)
        return FE_ERR_INVALID;
    size_t chunk = mtu - FE_FRAG_HDR_BYTES;
    size_t off = (size_t)index * chunk;
    size_t plen = (index + 1 == n) ? len - off : chunk;
    if (out_len < FE_FRAG_HDR_BYTES + plen)
        return FE_ERR_INVALID;
    out[0] = fe_wire_type_byte(FE_T_FRAG, 0);
    out[1] = (uint8_t)index;
    out[2] = (uint8_t)n;
    fe_put_be32(out + 3, fe_frag_key(frame, len));
    memcpy(out + FE_FRAG_HDR_BYTES, frame + off, plen);
    return (ptrdiff_t)(FE_FRAG_HDR_BYTES + plen);
}

void fe_reasm_init(fe_reasm *r, uint64_t timeout_ms)
{
    /* Only the bookkeeping is cleared: the 2.8 KB buffers per slot are
     * written before they are read. */
    for (size_t i = 0; i < FE_REASM_SLOTS; i++) {
        fe_reasm_slot *s = &r->slots[i];
        s->link = 0;
        s->key = 0;
        s->count = 0;
        s->chunk = 0;
        s->have[0] = 0;
        s->started_ms = 0;
        s->last_len = 0;
    }
    r->timeout_ms = timeout_ms ? timeout_ms : FE_REASM_TIMEOUT_MS; /* 0 = the default */
    r->rejected = 0;
    r->evicted = 0;
}

static void slot_release(fe_reasm_slot *s)
{
    s->count = 0;
    s->chunk = 0;
    s->have[0] = 0;
    s->last_len = 0;
}

static uint64_t slot_deadline(const fe_reasm *r, const fe_reasm_slot *s)
{
    uint64_t t = s->started_ms + r->timeout_ms;
    return t < s->started_ms ? UINT64_MAX : t; /* saturate */
}

void fe_reasm_expire(fe_reasm *r, uint64_t now_ms)
{
    for (size_t i = 0; i < FE_REASM_SLOTS; i++) {
        fe_reasm_slot *s = &r->slots[i];
        if (s->count != 0 && slot_deadline(r, s) <= now_ms) {
            slot_release(s);
            r->evicted++;
        }
    }
}

uint64_t fe_reasm_next_deadline(const fe_reasm *r)
{
    uint64_t best = UINT64_MAX;
    for (size_t i = 0; i < FE_REASM_SLOTS; i++) {
        const fe_reasm_slot *s = &r->slots[i];
        if (s->count != 0) {
            uint64_t t = slot_deadline(r, s);
            if (t < best)
                best = t;
        }
    }
    return best;
}

size_t fe_reasm_in_use(const fe_reasm *r)
{
    size_t n = 0;
    for (size_t i = 0; i < FE_REASM_SLOTS; i++)
        n += r->slots[i].count != 0;
    return n;
}

static int reject(fe_reasm *r)
{
    r->rejected++;
    return FE_ERR_MALFORMED;
}

/* The slot for (link, key), or a fresh one; evicts the oldest when all are
 * busy. */
static fe_reasm_slot *slot_for(fe_reasm *r, uint32_t link, uint32_t key, int *fresh)
{
    fe_reasm_slot *free_slot = NULL, *oldest = NULL;
    for (size_t i = 0; i < FE_REASM_SLOTS; i++) {
        fe_reasm_slot *s = &r->slots[i];
        if (s->count == 0) {
            if (!free_slot)
                free_slot = s;
            continue;
        }
        if (s->link == link && s->key == key) {
            *fresh = 0;
            return s;
        }
        if (!oldest || s->started_ms < oldest->started_ms)
            oldest = s;
    }
    *fresh = 1;
    if (free_slot)
        return free_slot;
    slot_release(oldest);
    r->evicted++;
    return oldest;
}

/* chunk and last_len are consistent with count and FE_FRAME_MAX. */
static int sizes_ok(size_t count, size_t chunk, size_t last_len)
{
    return last_len >= 1 && last_len <= chunk && (count - 1) * chunk + last_len <= FE_FRAME_MAX;
}

int fe_reasm_feed(fe_reasm *r, uint32_t link, const uint8_t *frag, size_t len, uint64_t now_ms,
                  const uint8_t **out, size_t *out_len)
{
    if (!r || !frag || !out || !out_len)
        return FE_ERR_INVALID;
    fe_reasm_expire(r, now_ms); /* a stale slot never absorbs new fragments */

    /* Everything the header says is checked before any slot is touched. */
    if (len <= FE_FRAG_HDR_BYTES || len > FE_FRAG_HDR_BYTES + FE_FRAME_MAX)
        return reject(r);
    if (frag[0] != fe_wire_type_byte(FE_T_FRAG, 0))
        return reject(r);
    unsigned index = frag[1], count = frag[2];
    if (count < 2 || count > FE_FRAG_MAX_COUNT || index >= count)
        return reject(r);
    uint32_t key = fe_get_be32(frag + 3);
    const uint8_t *pay = frag + FE_FRAG_HDR_BYTES;
    size_t plen = len - FE_FRAG_HDR_BYTES;
    int is_last = index + 1 == count;
    /* A non-last fragment fixes chunk; bound the frame it implies (a last
     * fragment of at least one byte follows) before it claims a slot. */
    if (!is_last && (count - 1) * plen + 1 > FE_FRAME_MAX)
        return reject(r);
    /* Every other fragment carries at least as much as the last one. */
    if (is_last && count * plen > FE_FRAME_MAX)
        return reject(r);

    int fresh;
    fe_reasm_slot *s = slot_for(r, link, key, &fresh);
    if (!fresh) {
        if (s->count != count)
            return reject(r);
        if (!is_last && s->chunk != 0 && s->chunk != plen)
            return reject(r);
        if (is_last && s->chunk != 0 && !sizes_ok(count, s->chunk, plen))
            return reject(r);
        if (!is_last && s->chunk == 0 && s->last_len != 0 && !sizes_ok(count, plen, s->last_len))
            return reject(r); /* cannot tell which one lies: keep the first */
        if (s->have[0] & (1ull << index))
            return 0; /* duplicate */
    } else {
        s->link = link;
        s->key = key;
        s->count = (uint8_t)count;
        s->chunk = 0;
        s->have[0] = 0;
        s->last_len = 0;
        s->started_ms = now_ms;
    }

    if (is_last) {
        if (s->chunk == 0) {
            memcpy(s->last, pay, plen); /* plen <= FE_FRAME_MAX: checked above */
            s->last_len = (uint16_t)plen;
        } else {
            memcpy(s->buf + (size_t)(count - 1) * s->chunk, pay, plen);
            s->last_len = (uint16_t)plen;
        }
    } else {
        if (s->chunk == 0) {
            s->chunk = (uint16_t)plen;
            if (s->last_len != 0) /* the last fragment came first */
                memcpy(s->buf + (size_t)(count - 1) * plen, s->last, s->last_len);
        }
        memcpy(s->buf + (size_t)index * plen, pay, plen);
    }
    s->have[0] |= 1ull << index;

    uint64_t all = (count >= 64) ? UINT64_MAX : ((1ull << count) - 1);
    if (s->have[0] != all)
        return 0;
    size_t total = (size_t)(count - 1) * s->chunk + s->last_len;
    uint32_t got = fe_frag_key(s->buf, total);
    slot_release(s);
    if (got != key)
        return reject(r); /* a corrupted or forged piece: drop the frame */
    memcpy(r->out, s->buf, total);
    *out = r->out;
    *out_len = total;
    return 1;
}
