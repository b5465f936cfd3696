#include "wire.h"

#include <sodium.h>
#include <string.h>

static const uint8_t RCPT_KEY[] = "ferry-rcpt";
static const uint8_t ANN_KEY[] = "ferry-announce";

uint16_t fe_lifetime_encode(uint64_t ms)
{
    uint64_t s = ms / 1000u;

    for (unsigned unit = 0; unit < 4; unit++) {
        uint64_t v = s >> (4u * unit);
        if (v <= 0x3FFFu)
            return (uint16_t)((unit << 14) | v);
    }
    return 0xFFFFu;
}

uint64_t fe_lifetime_decode(uint16_t v)
{
    unsigned unit = v >> 14;
    return ((uint64_t)(v & 0x3FFFu) << (4u * unit)) * 1000u;
}

void fe_wire_put_item_hdr(uint8_t out[static FE_ITEM_HDR_BYTES], unsigned type, unsigned flags,
                          uint8_t hops, uint64_t lifetime_ms)
{
    out[0] = fe_wire_type_byte(type, flags);
    out[1] = hops;
    fe_put_be16(out + 2, fe_lifetime_encode(lifetime_ms));
}

void fe_wire_patch_item(uint8_t *frame, size_t len, uint8_t hops, uint64_t lifetime_ms)
{
    if (len < FE_ITEM_HDR_BYTES)
        return;
    frame[1] = hops;
    fe_put_be16(frame + 2, fe_lifetime_encode(lifetime_ms));
}

void fe_wire_receipt_id(uint8_t id[static FE_MSG_ID_BYTES],
                        const uint8_t secret[static FE_RECEIPT_SECRET_BYTES])
{
    crypto_generichash(id, FE_MSG_ID_BYTES, secret, FE_RECEIPT_SECRET_BYTES, RCPT_KEY,
                       sizeof RCPT_KEY - 1);
}

size_t fe_wire_receipt(uint8_t out[static FE_RECEIPT_BYTES], uint8_t hops, uint64_t lifetime_ms,
                       const uint8_t secret[static FE_RECEIPT_SECRET_BYTES])
{
    fe_wire_put_item_hdr(out, FE_T_RECEIPT, 0, hops, lifetime_ms);
    memcpy(out + FE_ITEM_HDR_BYTES, secret, FE_RECEIPT_SECRET_BYTES);
    return FE_RECEIPT_BYTES;
}

uint32_t fe_wire_token(const uint8_t id[static FE_MSG_ID_BYTES], int is_receipt)
{
    return (fe_get_be32(id) & ~1u) | (is_receipt ? 1u : 0u);
}

ptrdiff_t fe_wire_summary(uint8_t *out, size_t out_len, uint32_t digest, uint16_t total,
                          uint32_t range_lo, uint32_t range_hi, const uint32_t *tokens,
                          size_t count)
{
    size_t need = FE_SUMMARY_HDR_BYTES + count * FE_TOKEN_BYTES;

    if (need > out_len)
        return FE_ERR_TOOBIG;
    out[0] = fe_wire_type_byte(FE_T_SUMMARY, 0);
    out[1] = 0;
    fe_put_be32(out + 2, digest);
    fe_put_be16(out + 6, total);
    fe_put_be32(out + 8, range_lo);
    fe_put_be32(out + 12, range_hi);
    for (size_t i = 0; i < count; i++)
        fe_put_be32(out + FE_SUMMARY_HDR_BYTES + i * FE_TOKEN_BYTES, tokens[i]);
    return (ptrdiff_t)need;
}

static int decode_item_hdr(fe_frame *f, const uint8_t *buf)
{
    f->hops = buf[1];
    f->lifetime_ms = fe_lifetime_decode(fe_get_be16(buf + 2));
    if (f->lifetime_ms > FE_LIFETIME_MAX_MS)
        f->lifetime_ms = FE_LIFETIME_MAX_MS; /* never trust a sender to extend a flood */
    return FE_OK;
}

static int decode_announce(fe_frame *f, const uint8_t *buf, size_t len)
{
    uint8_t idin[FE_PK_BYTES + 5];

    if (len < FE_ANNOUNCE_MIN_BYTES || (f->flags & ~FE_ANNOUNCE_OFFLINE) != 0)
        return FE_ERR_MALFORMED;
    f->pk = buf + FE_ITEM_HDR_BYTES;
    f->seq = fe_get_be32(f->pk + FE_PK_BYTES);
    f->name_len = f->pk[FE_PK_BYTES + 4];
    if (f->name_len > FE_NAME_MAX || len != FE_ANNOUNCE_MIN_BYTES + f->name_len)
        return FE_ERR_MALFORMED;
    f->name = f->pk + FE_PK_BYTES + 5;
    f->sig = f->name + f->name_len;
    f->body = f->pk;
    f->body_len = (size_t)(f->sig - f->pk);
    /* The id names this announce (key, sequence, on/offline), not its hop state. */
    memcpy(idin, f->pk, FE_PK_BYTES + 4);
    idin[FE_PK_BYTES + 4] = f->flags;
    crypto_generichash(f->id, FE_MSG_ID_BYTES, idin, sizeof idin, ANN_KEY, sizeof ANN_KEY - 1);
    return FE_OK;
}

static int decode_summary(fe_frame *f, const uint8_t *buf, size_t len)
{
    uint32_t prev = 0;

    if (len < FE_SUMMARY_HDR_BYTES || (len - FE_SUMMARY_HDR_BYTES) % FE_TOKEN_BYTES != 0 ||
        f->flags != 0 || buf[1] != 0)
        return FE_ERR_MALFORMED;
    f->digest = fe_get_be32(buf + 2);
    f->total = fe_get_be16(buf + 6);
    f->range_lo = fe_get_be32(buf + 8);
    f->range_hi = fe_get_be32(buf + 12);
    f->tokens = buf + FE_SUMMARY_HDR_BYTES;
    f->token_count = (len - FE_SUMMARY_HDR_BYTES) / FE_TOKEN_BYTES;
    /* total counts messages and announces only; pages also list receipts. */
    if (f->range_lo > f->range_hi)
        return FE_ERR_MALFORMED;
    for (size_t i = 0; i < f->token_count; i++) {
        uint32_t t = fe_get_be32(f->tokens + i * FE_TOKEN_BYTES);
        if (t < f->range_lo || t > f->range_hi || (i > 0 && t <= prev))
            return FE_ERR_MALFORMED;
        prev = t;
    }
    return FE_OK;
}

int fe_wire_decode(fe_frame *f, const uint8_t *buf, size_t len)
{
    memset(f, 0, sizeof *f);
    if (len < 1 || len > FE_FRAME_MAX || (buf[0] >> 6) != FE_WIRE_VERSION)
        return FE_ERR_MALFORMED;
    f->type = (buf[0] >> 3) & 7u;
    f->flags = buf[0] & 7u;

    switch (f->type) {
    case FE_T_DM:
        if (len < FE_DM_OVERHEAD || f->flags != 0)
            return FE_ERR_MALFORMED;
        decode_item_hdr(f, buf);
        f->dst = buf + 4;
        f->src = buf + 8;
        memcpy(f->id, buf + 12, FE_MSG_ID_BYTES);
        f->body = buf + 20;
        f->body_len = len - 20;
        return FE_OK;
    case FE_T_ANON:
        if (len < FE_ANON_OVERHEAD || f->flags != 0)
            return FE_ERR_MALFORMED;
        decode_item_hdr(f, buf);
        f->dst = buf + 4;
        memcpy(f->id, buf + 8, FE_MSG_ID_BYTES);
        f->body = buf + 16;
        f->body_len = len - 16;
        return FE_OK;
    case FE_T_GROUP:
        if (len < FE_GROUP_OVERHEAD || f->flags != 0)
            return FE_ERR_MALFORMED;
        decode_item_hdr(f, buf);
        f->dst = buf + 4;
        memcpy(f->id, buf + 8, FE_MSG_ID_BYTES);
        f->body = buf + 16;
        f->body_len = len - 16;
        return FE_OK;
    case FE_T_RECEIPT:
        if (len != FE_RECEIPT_BYTES || f->flags != 0)
            return FE_ERR_MALFORMED;
        decode_item_hdr(f, buf);
        f->body = buf + FE_ITEM_HDR_BYTES;
        f->body_len = FE_RECEIPT_SECRET_BYTES;
        fe_wire_receipt_id(f->id, f->body);
        return FE_OK;
    case FE_T_ANNOUNCE:
        if (len < FE_ANNOUNCE_MIN_BYTES)
            return FE_ERR_MALFORMED;
        decode_item_hdr(f, buf);
        return decode_announce(f, buf, len);
    case FE_T_SUMMARY:
        return decode_summary(f, buf, len);
    case FE_T_FRAG:
        if (len <= FE_FRAG_HDR_BYTES || f->flags != 0)
            return FE_ERR_MALFORMED;
        f->frag_index = buf[1];
        f->frag_count = buf[2];
        f->frag_key = fe_get_be32(buf + 3);
        f->frag_data = buf + FE_FRAG_HDR_BYTES;
        f->frag_len = len - FE_FRAG_HDR_BYTES;
        if (f->frag_count < 2 || f->frag_count > FE_FRAG_MAX_COUNT ||
            f->frag_index >= f->frag_count)
            return FE_ERR_MALFORMED;
        return FE_OK;
    default:
        return FE_ERR_MALFORMED;
    }
}
