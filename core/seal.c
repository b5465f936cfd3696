#include "seal.h"

#include <sodium.h>
#include <string.h>

_Static_assert(crypto_box_MACBYTES == FE_MAC_BYTES, "box tag size");
_Static_assert(crypto_secretbox_MACBYTES == FE_MAC_BYTES, "secretbox tag size");
_Static_assert(crypto_box_SEALBYTES == FE_SEALED_OVERHEAD, "sealed box overhead");
_Static_assert(crypto_box_BEFORENMBYTES == FE_SHARED_KEY_BYTES, "shared key size");
_Static_assert(crypto_box_NONCEBYTES == 24 && crypto_secretbox_NONCEBYTES == 24, "nonce size");

#define PT_MAX (FE_FRAME_MAX)

/* Synthetic nonce: the message id (unique per key with overwhelming
 * probability, and itself derived from the plaintext) plus a label. */
static void make_nonce(uint8_t nonce[24], const uint8_t id[FE_MSG_ID_BYTES], const char label[8])
{
    memcpy(nonce, id, FE_MSG_ID_BYTES);
    memcpy(nonce + 8, label, 8);
    memset(nonce + 16, 0, 8);
}

/* DM receipt secret: keyed by the pair's shared key, bound to the direction
 * (sender address), the salt and the text. */
static void dm_secret(uint8_t secret[FE_RECEIPT_SECRET_BYTES], const uint8_t k[FE_SHARED_KEY_BYTES],
                      const uint8_t src[FE_ADDR_BYTES], const uint8_t *salt_text, size_t len)
{
    crypto_generichash_state st;
    static const uint8_t label = 0x01;

    crypto_generichash_init(&st, k, FE_SHARED_KEY_BYTES, FE_RECEIPT_SECRET_BYTES);
    crypto_generichash_update(&st, &label, 1);
    crypto_generichash_update(&st, src, FE_ADDR_BYTES);
    crypto_generichash_update(&st, salt_text, len);
    crypto_generichash_final(&st, secret, FE_RECEIPT_SECRET_BYTES);
    sodium_memzero(&st, sizeof st);
}

int fe_seal_shared_key(uint8_t k[static FE_SHARED_KEY_BYTES],
                       const uint8_t peer_xpk[static FE_XPK_BYTES],
                       const uint8_t own_xsk[static FE_XSK_BYTES])
{
    return crypto_box_beforenm(k, peer_xpk, own_xsk) == 0 ? FE_OK : FE_ERR_CRYPTO;
}

ptrdiff_t fe_seal_dm(uint8_t *out, size_t out_len, uint8_t id[static FE_MSG_ID_BYTES],
                     const uint8_t k[static FE_SHARED_KEY_BYTES],
                     const uint8_t src[static FE_ADDR_BYTES], const uint8_t dst[static FE_ADDR_BYTES],
                     const uint8_t salt[static FE_SALT_BYTES], const uint8_t *text, size_t len,
                     uint8_t hops, uint64_t lifetime_ms)
{
    uint8_t pt[PT_MAX], secret[FE_RECEIPT_SECRET_BYTES], nonce[24];
    size_t total = FE_DM_OVERHEAD + len;

    if (len > FE_TEXT_MAX || total > out_len || total > FE_FRAME_MAX)
        return FE_ERR_TOOBIG;
    memcpy(pt, salt, FE_SALT_BYTES);
    if (len)
        memcpy(pt + FE_SALT_BYTES, text, len);
    dm_secret(secret, k, src, pt, FE_SALT_BYTES + len);
    fe_wire_receipt_id(id, secret);
    make_nonce(nonce, id, "ferry-dm");

    fe_wire_put_item_hdr(out, FE_T_DM, 0, hops, lifetime_ms);
    memcpy(out + 4, dst, FE_HINT_BYTES);
    memcpy(out + 8, src, FE_HINT_BYTES);
    memcpy(out + 12, id, FE_MSG_ID_BYTES);
    crypto_box_easy_afternm(out + 20, pt, FE_SALT_BYTES + len, nonce, k);
    sodium_memzero(pt, FE_SALT_BYTES + len);
    sodium_memzero(secret, sizeof secret);
    return (ptrdiff_t)total;
}

int fe_open_dm(uint8_t *text, size_t cap, size_t *text_len,
               uint8_t secret[static FE_RECEIPT_SECRET_BYTES], const fe_frame *f,
               const uint8_t k[static FE_SHARED_KEY_BYTES], const uint8_t src[static FE_ADDR_BYTES])
{
    uint8_t pt[PT_MAX], nonce[24], id[FE_MSG_ID_BYTES];
    size_t ptlen;
    int rc = FE_ERR_CRYPTO;

    if (f->type != FE_T_DM || f->body_len < FE_MAC_BYTES + FE_SALT_BYTES ||
        f->body_len - FE_MAC_BYTES > sizeof pt)
        return FE_ERR_CRYPTO;
    ptlen = f->body_len - FE_MAC_BYTES;
    if (ptlen - FE_SALT_BYTES > cap)
        return FE_ERR_CRYPTO;
    make_nonce(nonce, f->id, "ferry-dm");
    if (crypto_box_open_easy_afternm(pt, f->body, f->body_len, nonce, k) != 0)
        goto out;
    /* The id must be the commitment to this message's receipt secret, or a
     * receipt could not purge it. */
    dm_secret(secret, k, src, pt, ptlen);
    fe_wire_receipt_id(id, secret);
    if (sodium_memcmp(id, f->id, FE_MSG_ID_BYTES) != 0) {
        sodium_memzero(secret, FE_RECEIPT_SECRET_BYTES);
        goto out;
    }
    *text_len = ptlen - FE_SALT_BYTES;
    memcpy(text, pt + FE_SALT_BYTES, *text_len);
    rc = FE_OK;
out:
    sodium_memzero(pt, sizeof pt);
    return rc;
}

ptrdiff_t fe_seal_anon(uint8_t *out, size_t out_len, uint8_t id[static FE_MSG_ID_BYTES],
                       const uint8_t dst_xpk[static FE_XPK_BYTES],
                       const uint8_t dst[static FE_ADDR_BYTES],
                       const uint8_t secret[static FE_RECEIPT_SECRET_BYTES], const uint8_t *text,
                       size_t len, uint8_t hops, uint64_t lifetime_ms)
{
    uint8_t pt[PT_MAX];
    size_t total = FE_ANON_OVERHEAD + len;

    if (len > FE_TEXT_MAX || total > out_len || total > FE_FRAME_MAX)
        return FE_ERR_TOOBIG;
    memcpy(pt, secret, FE_RECEIPT_SECRET_BYTES);
    if (len)
        memcpy(pt + FE_RECEIPT_SECRET_BYTES, text, len);
    fe_wire_receipt_id(id, secret);
    fe_wire_put_item_hdr(out, FE_T_ANON, 0, hops, lifetime_ms);
    memcpy(out + 4, dst, FE_HINT_BYTES);
    memcpy(out + 8, id, FE_MSG_ID_BYTES);
    crypto_box_seal(out + 16, pt, FE_RECEIPT_SECRET_BYTES + len, dst_xpk);
    sodium_memzero(pt, FE_RECEIPT_SECRET_BYTES + len);
    return (ptrdiff_t)total;
}

int fe_open_anon(uint8_t *text, size_t cap, size_t *text_len,
                 uint8_t secret[static FE_RECEIPT_SECRET_BYTES], const fe_frame *f,
                 const fe_identity *own)
{
    uint8_t pt[PT_MAX], id[FE_MSG_ID_BYTES];
    size_t ptlen;
    int rc = FE_ERR_CRYPTO;

    if (f->type != FE_T_ANON || f->body_len < FE_SEALED_OVERHEAD + FE_RECEIPT_SECRET_BYTES ||
        f->body_len - FE_SEALED_OVERHEAD > sizeof pt)
        return FE_ERR_CRYPTO;
    ptlen = f->body_len - FE_SEALED_OVERHEAD;
    if (ptlen - FE_RECEIPT_SECRET_BYTES > cap)
        return FE_ERR_CRYPTO;
    if (crypto_box_seal_open(pt, f->body, f->body_len, own->xpk, own->xsk) != 0)
        goto out;
    fe_wire_receipt_id(id, pt);
    if (sodium_memcmp(id, f->id, FE_MSG_ID_BYTES) != 0)
        goto out;
    memcpy(secret, pt, FE_RECEIPT_SECRET_BYTES);
    *text_len = ptlen - FE_RECEIPT_SECRET_BYTES;
    memcpy(text, pt + FE_RECEIPT_SECRET_BYTES, *text_len);
    rc = FE_OK;
out:
    sodium_memzero(pt, sizeof pt);
    return rc;
}

static void group_keys(uint8_t enc[32], const uint8_t key[FE_GROUP_KEY_BYTES])
{
    static const uint8_t label[] = "ferry-group-enc";
    crypto_generichash(enc, 32, label, sizeof label - 1, key, FE_GROUP_KEY_BYTES);
}

void fe_seal_group_id(uint8_t gid[static FE_GROUP_ID_BYTES],
                      const uint8_t key[static FE_GROUP_KEY_BYTES])
{
    static const uint8_t label[] = "ferry-group-id";
    crypto_generichash(gid, FE_GROUP_ID_BYTES, label, sizeof label - 1, key, FE_GROUP_KEY_BYTES);
}

ptrdiff_t fe_seal_group(uint8_t *out, size_t out_len, uint8_t id[static FE_MSG_ID_BYTES],
                        const uint8_t key[static FE_GROUP_KEY_BYTES],
                        const uint8_t sender[static FE_ADDR_BYTES],
                        const uint8_t salt[static FE_SALT_BYTES], const uint8_t *text, size_t len,
                        uint8_t hops, uint64_t lifetime_ms)
{
    uint8_t pt[PT_MAX], enc[32], gid[FE_GROUP_ID_BYTES], nonce[24];
    size_t ptlen = FE_ADDR_BYTES + FE_SALT_BYTES + len;
    size_t total = FE_GROUP_OVERHEAD + len;

    if (len > FE_TEXT_MAX || total > out_len || total > FE_FRAME_MAX)
        return FE_ERR_TOOBIG;
    memcpy(pt, sender, FE_ADDR_BYTES);
    memcpy(pt + FE_ADDR_BYTES, salt, FE_SALT_BYTES);
    if (len)
        memcpy(pt + FE_ADDR_BYTES + FE_SALT_BYTES, text, len);
    group_keys(enc, key);
    fe_seal_group_id(gid, key);
    crypto_generichash(id, FE_MSG_ID_BYTES, pt, ptlen, enc, sizeof enc);
    make_nonce(nonce, id, "ferry-gr");
    fe_wire_put_item_hdr(out, FE_T_GROUP, 0, hops, lifetime_ms);
    memcpy(out + 4, gid, FE_HINT_BYTES);
    memcpy(out + 8, id, FE_MSG_ID_BYTES);
    crypto_secretbox_easy(out + 16, pt, ptlen, nonce, enc);
    sodium_memzero(pt, ptlen);
    sodium_memzero(enc, sizeof enc);
    return (ptrdiff_t)total;
}

int fe_open_group(uint8_t *text, size_t cap, size_t *text_len, uint8_t sender[static FE_ADDR_BYTES],
                  const fe_frame *f, const uint8_t key[static FE_GROUP_KEY_BYTES])
{
    uint8_t pt[PT_MAX], enc[32], nonce[24], id[FE_MSG_ID_BYTES];
    size_t ptlen;
    int rc = FE_ERR_CRYPTO;

    if (f->type != FE_T_GROUP || f->body_len < FE_MAC_BYTES + FE_ADDR_BYTES + FE_SALT_BYTES ||
        f->body_len - FE_MAC_BYTES > sizeof pt)
        return FE_ERR_CRYPTO;
    ptlen = f->body_len - FE_MAC_BYTES;
    if (ptlen - FE_ADDR_BYTES - FE_SALT_BYTES > cap)
        return FE_ERR_CRYPTO;
    group_keys(enc, key);
    make_nonce(nonce, f->id, "ferry-gr");
    if (crypto_secretbox_open_easy(pt, f->body, f->body_len, nonce, enc) != 0)
        goto out;
    crypto_generichash(id, FE_MSG_ID_BYTES, pt, ptlen, enc, sizeof enc);
    if (sodium_memcmp(id, f->id, FE_MSG_ID_BYTES) != 0)
        goto out;
    memcpy(sender, pt, FE_ADDR_BYTES);
    *text_len = ptlen - FE_ADDR_BYTES - FE_SALT_BYTES;
    memcpy(text, pt + FE_ADDR_BYTES + FE_SALT_BYTES, *text_len);
    rc = FE_OK;
out:
    sodium_memzero(pt, sizeof pt);
    sodium_memzero(enc, sizeof enc);
    return rc;
}

/* Signed bytes: the type byte (type and on/offline flag) and everything from
 * the public key to the end of the name; never the mutable hops/lifetime. */
static void announce_msg(crypto_sign_state *st, uint8_t type_byte, const uint8_t *body, size_t len)
{
    crypto_sign_init(st);
    crypto_sign_update(st, &type_byte, 1);
    crypto_sign_update(st, body, len);
}

ptrdiff_t fe_seal_announce(uint8_t *out, size_t out_len, const fe_identity *id, uint32_t seq,
                           const char *name, int offline, uint8_t hops, uint64_t lifetime_ms)
{
    size_t nlen = name ? strlen(name) : 0;
    size_t total;
    crypto_sign_state st;
    uint8_t *p;

    if (nlen > FE_NAME_MAX)
        return FE_ERR_TOOBIG;
    total = FE_ANNOUNCE_MIN_BYTES + nlen;
    if (total > out_len)
        return FE_ERR_TOOBIG;
    fe_wire_put_item_hdr(out, FE_T_ANNOUNCE, offline ? FE_ANNOUNCE_OFFLINE : 0, hops, lifetime_ms);
    p = out + FE_ITEM_HDR_BYTES;
    memcpy(p, id->pk, FE_PK_BYTES);
    fe_put_be32(p + FE_PK_BYTES, seq);
    p[FE_PK_BYTES + 4] = (uint8_t)nlen;
    if (nlen)
        memcpy(p + FE_PK_BYTES + 5, name, nlen);
    announce_msg(&st, out[0], p, FE_PK_BYTES + 5 + nlen);
    crypto_sign_final_create(&st, p + FE_PK_BYTES + 5 + nlen, NULL, id->sk);
    return (ptrdiff_t)total;
}

int fe_verify_announce(const fe_frame *f)
{
    crypto_sign_state st;
    uint8_t type_byte = fe_wire_type_byte(FE_T_ANNOUNCE, f->flags);

    if (f->type != FE_T_ANNOUNCE)
        return FE_ERR_CRYPTO;
    announce_msg(&st, type_byte, f->body, f->body_len);
    /* crypto_sign_final_verify takes a non-const signature pointer. */
    uint8_t sig[FE_SIG_BYTES];
    memcpy(sig, f->sig, sizeof sig);
    return crypto_sign_final_verify(&st, sig, f->pk) == 0 ? FE_OK : FE_ERR_CRYPTO;
}
