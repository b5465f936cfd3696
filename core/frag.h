/* Fragmentation of whole frames for small-MTU links, and bounded
 * reassembly. Hop by hop: a relay reassembles, stores the whole item and
 * fragments again for each outgoing link.
 *
 * Fragment layout (docs/PROTOCOL.md): type byte (FE_T_FRAG), index, count,
 * key (4 bytes, big-endian: first 4 bytes of BLAKE2b-256 of the whole frame),
 * payload. All fragments but the last carry the same payload length. */
#ifndef FE_FRAG_H
#define FE_FRAG_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "limits.h"

/* How many fragments a frame of len bytes needs on a link of mtu bytes:
 * 1 if it fits (then no fragmentation is needed), 0 if it cannot be sent
 * (len > FE_FRAME_MAX or mtu too small to carry it in FE_FRAG_MAX_COUNT). */
size_t fe_frag_count(size_t len, size_t mtu);

/* The reassembly key of a whole frame. */
uint32_t fe_frag_key(const uint8_t *frame, size_t len);

/* Write fragment index of frame into out (out_len >= mtu). Returns the
 * fragment's length or FE_ERR_INVALID. */
ptrdiff_t fe_frag_make(uint8_t *out, size_t out_len, const uint8_t *frame, size_t len,
                       size_t mtu, unsigned index);

typedef struct fe_reasm_slot {
    uint32_t link;
    uint32_t key;
    uint8_t count;          /* 0 = free slot */
    uint16_t chunk;         /* payload length of non-last fragments, 0 until known */
    uint64_t have[1];       /* bitmap of fragments received (FE_FRAG_MAX_COUNT <= 64) */
    uint64_t started_ms;
    uint16_t last_len;      /* payload length of the last fragment once seen */
    uint8_t last[FE_FRAME_MAX];   /* last fragment kept until chunk is known */
    uint8_t buf[FE_FRAME_MAX];
} fe_reasm_slot;

typedef struct fe_reasm {
    fe_reasm_slot slots[FE_REASM_SLOTS];
    uint8_t out[FE_FRAME_MAX];
    uint64_t timeout_ms;
    uint64_t rejected; /* malformed or inconsistent fragments */
    uint64_t evicted;  /* incomplete frames dropped (timeout or slots full) */
} fe_reasm;

void fe_reasm_init(fe_reasm *r, uint64_t timeout_ms);

/* Feed one fragment frame received on link. Returns 0 when absorbed and the
 * frame is still incomplete, 1 when it completed a frame (then *out and
 * *out_len give the whole frame, valid until the next call), or
 * FE_ERR_MALFORMED (counted in rejected). Duplicated fragments are ignored. */
int fe_reasm_feed(fe_reasm *r, uint32_t link, const uint8_t *frag, size_t len, uint64_t now_ms,
                  const uint8_t **out, size_t *out_len);

/* Drop incomplete frames older than the timeout. */
void fe_reasm_expire(fe_reasm *r, uint64_t now_ms);
/* Earliest time fe_reasm_expire has work, or UINT64_MAX. */
uint64_t fe_reasm_next_deadline(const fe_reasm *r);
size_t fe_reasm_in_use(const fe_reasm *r);

#endif
