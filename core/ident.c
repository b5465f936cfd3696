#include "ident.h"

#include <sodium.h>
#include <string.h>

static const uint8_t FPR_KEY[] = "ferry-fpr";

int fe_ident_from_seed(fe_identity *id, const uint8_t seed[static FE_SEED_BYTES])
{
    memset(id, 0, sizeof *id);
    if (crypto_sign_seed_keypair(id->pk, id->sk, seed) != 0 ||
        crypto_sign_ed25519_pk_to_curve25519(id->xpk, id->pk) != 0 ||
        crypto_sign_ed25519_sk_to_curve25519(id->xsk, id->sk) != 0) {
        fe_ident_wipe(id);
        return FE_ERR_CRYPTO;
    }
    fe_ident_addr(id->addr, id->pk);
    return FE_OK;
}

void fe_ident_wipe(fe_identity *id)
{
    if (id)
        sodium_memzero(id, sizeof *id);
}

void fe_ident_addr(uint8_t addr[static FE_ADDR_BYTES], const uint8_t pk[static FE_PK_BYTES])
{
    crypto_generichash(addr, FE_ADDR_BYTES, pk, FE_PK_BYTES, NULL, 0);
}

int fe_ident_xpk(uint8_t xpk[static FE_XPK_BYTES], const uint8_t pk[static FE_PK_BYTES])
{
    return crypto_sign_ed25519_pk_to_curve25519(xpk, pk) == 0 ? FE_OK : FE_ERR_CRYPTO;
}

void fe_ident_fingerprint(char *out, size_t out_len, const uint8_t pk[static FE_PK_BYTES])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t h[16];
    size_t o = 0;

    if (out_len == 0)
        return;
    crypto_generichash(h, sizeof h, pk, FE_PK_BYTES, FPR_KEY, sizeof FPR_KEY - 1);
    for (size_t i = 0; i < sizeof h; i++) {
        size_t need = (i > 0 && i % 2 == 0) ? 3 : 2; /* dash, then two digits */
        if (o + need >= out_len)
            break;
        if (need == 3)
            out[o++] = '-';
        out[o++] = hex[h[i] >> 4];
        out[o++] = hex[h[i] & 15];
    }
    out[o] = '\0';
}

void fe_addr_to_hex(char *out, size_t out_len, const uint8_t addr[static FE_ADDR_BYTES])
{
    if (out_len < 2 * FE_ADDR_BYTES + 1) {
        if (out_len)
            out[0] = '\0';
        return;
    }
    sodium_bin2hex(out, out_len, addr, FE_ADDR_BYTES);
}

int fe_addr_from_hex(uint8_t addr[static FE_ADDR_BYTES], const char *hex)
{
    size_t n = strlen(hex), bin_len = 0;

    memset(addr, 0, FE_ADDR_BYTES);
    if (n < 2 || n > 2 * FE_ADDR_BYTES || n % 2 != 0)
        return FE_ERR_INVALID;
    if (sodium_hex2bin(addr, FE_ADDR_BYTES, hex, n, NULL, &bin_len, NULL) != 0 ||
        bin_len != n / 2)
        return FE_ERR_INVALID;
    return (int)bin_len;
}
