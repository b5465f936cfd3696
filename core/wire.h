/* Byte layout of protocol v1 (docs/PROTOCOL.md). Decoding never allocates:
 * a decoded fe_frame points into the caller's buffer. */
#ifndef FE_WIRE_H
#define FE_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "limits.h"

#define FE_WIRE_VERSION 1u

enum fe_frame_type {
    FE_T_DM = 0,       /* private message, sender-authenticated box */
    FE_T_ANON = 1,     /* private message, anonymous sealed box */
    FE_T_GROUP = 2,    /* group message under a shared key */
    FE_T_RECEIPT = 3,  /* delivery receipt: reveals the receipt secret */
    FE_T_ANNOUNCE = 4, /* signed presence and keys */
    FE_T_SUMMARY = 5,  /* anti-entropy summary, link-local */
    FE_T_FRAG = 6      /* fragment of a larger frame, link-local */
};

#define FE_ANNOUNCE_OFFLINE 1u /* announce flag: going-offline notice */

/* First byte: version (2 bits) | type (3 bits) | flags (3 bits). */
static inline uint8_t fe_wire_type_byte(unsigned type, unsigned flags)
{
    return (uint8_t)((FE_WIRE_VERSION << 6) | ((type & 7u) << 3) | (flags & 7u));
}

/* 16-bit remaining lifetime: unit (2 bits: 1, 16, 256, 4096 s) | 14-bit count.
 * Encoding rounds down, so lifetime never grows by passing a hop. */
uint16_t fe_lifetime_encode(uint64_t ms);
uint64_t fe_lifetime_decode(uint16_t v);

typedef struct fe_frame {
    uint8_t type, flags;
    /* items (DM, ANON, GROUP, RECEIPT, ANNOUNCE) */
    uint8_t hops;                      /* remaining hop budget */
    uint64_t lifetime_ms;              /* remaining lifetime as carried */
    uint8_t id[FE_MSG_ID_BYTES];       /* carried, or derived for RECEIPT and ANNOUNCE */
    const uint8_t *dst;                /* DM, ANON: recipient hint; GROUP: group hint */
    const uint8_t *src;                /* DM: sender hint */
    const uint8_t *body;               /* DM, GROUP: tag || ciphertext; ANON: sealed box;
                                          RECEIPT: secret; ANNOUNCE: signed part from pk */
    size_t body_len;
    /* ANNOUNCE */
    const uint8_t *pk;
    uint32_t seq;
    const uint8_t *name;
    size_t name_len;
    const uint8_t *sig;
    /* SUMMARY */
    uint32_t digest, range_lo, range_hi;
    uint16_t total;
    const uint8_t *tokens;             /* count * FE_TOKEN_BYTES, ascending */
    size_t token_count;
    /* FRAG */
    uint8_t frag_index, frag_count;
    uint32_t frag_key;
    const uint8_t *frag_data;
    size_t frag_len;
} fe_frame;

/* Decode and bounds-check one whole frame. Returns 0 or FE_ERR_MALFORMED.
 * Does not verify signatures or open boxes. */
FE_MUST_CHECK int fe_wire_decode(fe_frame *f, const uint8_t *buf, size_t len);

/* Rewrite the hop budget and lifetime of an item frame in place. */
void fe_wire_patch_item(uint8_t *frame, size_t len, uint8_t hops, uint64_t lifetime_ms);

/* Write the common 4-byte item header. */
void fe_wire_put_item_hdr(uint8_t out[static FE_ITEM_HDR_BYTES], unsigned type, unsigned flags,
                          uint8_t hops, uint64_t lifetime_ms);

/* Receipt frame (FE_RECEIPT_BYTES) into out. Returns bytes written. */
size_t fe_wire_receipt(uint8_t out[static FE_RECEIPT_BYTES], uint8_t hops, uint64_t lifetime_ms,
                       const uint8_t secret[static FE_RECEIPT_SECRET_BYTES]);

/* Message id committed to by a receipt secret: BLAKE2b-64(secret, key "ferry-rcpt"). */
void fe_wire_receipt_id(uint8_t id[static FE_MSG_ID_BYTES],
                        const uint8_t secret[static FE_RECEIPT_SECRET_BYTES]);

/* Anti-entropy token of an item: the id's first 4 bytes, big-endian, with the
 * low bit replaced by kind (0 message or announce, 1 receipt). */
uint32_t fe_wire_token(const uint8_t id[static FE_MSG_ID_BYTES], int is_receipt);

/* Summary frame header + tokens into out. Returns bytes written or FE_ERR_TOOBIG. */
ptrdiff_t fe_wire_summary(uint8_t *out, size_t out_len, uint32_t digest, uint16_t total,
                          uint32_t range_lo, uint32_t range_hi, const uint32_t *tokens,
                          size_t count);

static inline uint32_t fe_get_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline void fe_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline uint16_t fe_get_be16(const uint8_t *p)
{
    return (uint16_t)(((unsigned)p[0] << 8) | p[1]);
}
static inline void fe_put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

#endif
