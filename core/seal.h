/* The crypto constructions of protocol v1 (docs/PROTOCOL.md section 4):
 * sender-authenticated private messages (crypto_box with a cached shared key
 * and a synthetic nonce), anonymous ones (crypto_box_seal), group messages
 * (crypto_secretbox under a key derived from the group key), and signed
 * announces. Temporaries holding plaintext or keys are wiped. */
#ifndef FE_SEAL_H
#define FE_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "ident.h"
#include "limits.h"
#include "wire.h"

/* Shared key for boxes between us and a peer (crypto_box_beforenm). */
FE_MUST_CHECK int fe_seal_shared_key(uint8_t k[static FE_SHARED_KEY_BYTES],
                                     const uint8_t peer_xpk[static FE_XPK_BYTES],
                                     const uint8_t own_xsk[static FE_XSK_BYTES]);

/* Whole DM frame into out. id receives the message id. Returns length or
 * FE_ERR_TOOBIG. */
ptrdiff_t fe_seal_dm(uint8_t *out, size_t out_len, uint8_t id[static FE_MSG_ID_BYTES],
                     const uint8_t k[static FE_SHARED_KEY_BYTES],
                     const uint8_t src[static FE_ADDR_BYTES], const uint8_t dst[static FE_ADDR_BYTES],
                     const uint8_t salt[static FE_SALT_BYTES], const uint8_t *text, size_t len,
                     uint8_t hops, uint64_t lifetime_ms);

/* Open a decoded DM from the sender with address src (shared key k). Writes
 * the text (cap >= f->body_len) and the receipt secret. 0 or FE_ERR_CRYPTO. */
FE_MUST_CHECK int fe_open_dm(uint8_t *text, size_t cap, size_t *text_len,
                             uint8_t secret[static FE_RECEIPT_SECRET_BYTES], const fe_frame *f,
                             const uint8_t k[static FE_SHARED_KEY_BYTES],
                             const uint8_t src[static FE_ADDR_BYTES]);

/* Anonymous DM: the sender is hidden; secret must be 16 random bytes. */
ptrdiff_t fe_seal_anon(uint8_t *out, size_t out_len, uint8_t id[static FE_MSG_ID_BYTES],
                       const uint8_t dst_xpk[static FE_XPK_BYTES],
                       const uint8_t dst[static FE_ADDR_BYTES],
                       const uint8_t secret[static FE_RECEIPT_SECRET_BYTES], const uint8_t *text,
                       size_t len, uint8_t hops, uint64_t lifetime_ms);
FE_MUST_CHECK int fe_open_anon(uint8_t *text, size_t cap, size_t *text_len,
                               uint8_t secret[static FE_RECEIPT_SECRET_BYTES], const fe_frame *f,
                               const fe_identity *own);

/* Group id of a group key. */
void fe_seal_group_id(uint8_t gid[static FE_GROUP_ID_BYTES],
                      const uint8_t key[static FE_GROUP_KEY_BYTES]);
ptrdiff_t fe_seal_group(uint8_t *out, size_t out_len, uint8_t id[static FE_MSG_ID_BYTES],
                        const uint8_t key[static FE_GROUP_KEY_BYTES],
                        const uint8_t sender[static FE_ADDR_BYTES],
                        const uint8_t salt[static FE_SALT_BYTES], const uint8_t *text, size_t len,
                        uint8_t hops, uint64_t lifetime_ms);
FE_MUST_CHECK int fe_open_group(uint8_t *text, size_t cap, size_t *text_len,
                                uint8_t sender[static FE_ADDR_BYTES], const fe_frame *f,
                                const uint8_t key[static FE_GROUP_KEY_BYTES]);

/* Signed announce (or going-offline notice when offline is set). */
ptrdiff_t fe_seal_announce(uint8_t *out, size_t out_len, const fe_identity *id, uint32_t seq,
                           const char *name, int offline, uint8_t hops, uint64_t lifetime_ms);
/* Check a decoded announce's signature. 0 or FE_ERR_CRYPTO. */
FE_MUST_CHECK int fe_verify_announce(const fe_frame *f);

#endif
