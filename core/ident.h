/* Identities: an Ed25519 key pair; the X25519 pair for boxes is derived from
 * it, and the address is BLAKE2b-128 of the public key. */
#ifndef FE_IDENT_H
#define FE_IDENT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "limits.h"

typedef struct fe_identity {
    uint8_t pk[FE_PK_BYTES];
    uint8_t sk[FE_SK_BYTES];
    uint8_t xpk[FE_XPK_BYTES];
    uint8_t xsk[FE_XSK_BYTES];
    uint8_t addr[FE_ADDR_BYTES];
} fe_identity;

/* Make an identity from a 32-byte seed (deterministic). 0 or FE_ERR_CRYPTO. */
FE_MUST_CHECK int fe_ident_from_seed(fe_identity *id, const uint8_t seed[static FE_SEED_BYTES]);

/* Wipe the secret parts. Accepts NULL. */
void fe_ident_wipe(fe_identity *id);

/* addr = BLAKE2b-128(pk). */
void fe_ident_addr(uint8_t addr[static FE_ADDR_BYTES], const uint8_t pk[static FE_PK_BYTES]);

/* X25519 public key of an Ed25519 public key. 0 or FE_ERR_CRYPTO (invalid point). */
FE_MUST_CHECK int fe_ident_xpk(uint8_t xpk[static FE_XPK_BYTES], const uint8_t pk[static FE_PK_BYTES]);

/* Human-checkable fingerprint of a public key: 8 groups of 4 hex digits of
 * BLAKE2b(pk, "ferry-fpr"), NUL-terminated into out (>= FE_FINGERPRINT_CHARS + 1). */
void fe_ident_fingerprint(char *out, size_t out_len, const uint8_t pk[static FE_PK_BYTES]);

/* Lower-case hex of an address into out (>= 2 * FE_ADDR_BYTES + 1). */
void fe_addr_to_hex(char *out, size_t out_len, const uint8_t addr[static FE_ADDR_BYTES]);

/* Parse 2..32 hex digits (a full address or a prefix); returns the number of
 * bytes parsed into addr (1..16), or FE_ERR_INVALID. */
int fe_addr_from_hex(uint8_t addr[static FE_ADDR_BYTES], const char *hex);

#endif
