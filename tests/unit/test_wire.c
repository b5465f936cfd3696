#define _GNU_SOURCE
/* The test vectors of docs/PROTOCOL.md section 7, checked against the code,
 * plus decoder bounds. If a vector here changes, the document must too. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "frag.h"
#include "ident.h"
#include "seal.h"
#include "wire.h"

static size_t unhex(uint8_t *out, size_t cap, const char *hex)
{
    size_t n = 0;
    assert_int_equal(sodium_hex2bin(out, cap, hex, strlen(hex), " \n", &n, NULL), 0);
    return n;
}

static void assert_hex(const uint8_t *got, size_t len, const char *want_hex)
{
    uint8_t want[2048];
    size_t n = unhex(want, sizeof want, want_hex);
    assert_int_equal(len, n);
    assert_memory_equal(got, want, n);
}

static fe_identity A, B;
static const uint8_t SALT[4] = {0xa1, 0xa2, 0xa3, 0xa4};
static const char TEXT32[] = "meet at the water tower at noon!";

#define DM_HEX                                                                                     \
    "40205518b18f4758e6808f3362175f46ee3d90b25af96545b4289f6f7c374bf3"                             \
    "8bcf24282985ec4f749540915e407ba10c00834c74e679c41972042d0807b776"                             \
    "925154c3fc0d4001"

static int setup(void **state)
{
    uint8_t s1[32], s2[32];
    (void)state;
    memset(s1, 1, sizeof s1);
    memset(s2, 2, sizeof s2);
    assert_int_equal(fe_ident_from_seed(&A, s1), FE_OK);
    assert_int_equal(fe_ident_from_seed(&B, s2), FE_OK);
    return 0;
}

static void test_identities(void **state)
{
    char fpr[64];
    uint8_t k[32];
    (void)state;
    assert_hex(A.pk, 32, "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c");
    assert_hex(A.addr, 16, "e6808f33fbec87975122804ac9ceda8e");
    assert_hex(B.pk, 32, "8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394");
    assert_hex(B.addr, 16, "b18f47587456f38669826ce18fcdb2aa");
    fe_ident_fingerprint(fpr, sizeof fpr, A.pk);
    assert_string_equal(fpr, "5df3-cc97-c5df-c658-ffb8-cdbb-fffb-7b85");
    assert_int_equal(fe_seal_shared_key(k, B.xpk, A.xsk), FE_OK);
    assert_hex(k, 32, "13258dcfb05c10ba16a2005936b2d4cacb01ee3ef83a0887abd63e4a0b80b3f4");
    /* Both ends derive the same key. */
    uint8_t k2[32];
    assert_int_equal(fe_seal_shared_key(k2, A.xpk, B.xsk), FE_OK);
    assert_memory_equal(k, k2, 32);
}

static void test_lifetime(void **state)
{
    (void)state;
    assert_int_equal(fe_lifetime_encode(0), 0x0000);
    assert_int_equal(fe_lifetime_encode(90000), 0x005a);
    assert_int_equal(fe_lifetime_encode(86400000), 0x5518);
    assert_int_equal(fe_lifetime_encode(2592000000ull), 0xa78d);
    /* Rounding is always down, so a hop never lengthens a lifetime. */
    for (uint64_t ms = 0; ms < 40ull * 24 * 3600 * 1000; ms = ms * 3 / 2 + 777)
        assert_true(fe_lifetime_decode(fe_lifetime_encode(ms)) <= ms);
    assert_int_equal(fe_lifetime_decode(0x005a), 90000);
}

static void test_dm_vector(void **state)
{
    uint8_t k[32], frame[FE_FRAME_MAX], id[8], text[64], secret[16];
    size_t tl;
    fe_frame f;
    (void)state;
    assert_int_equal(fe_seal_shared_key(k, B.xpk, A.xsk), FE_OK);
    ptrdiff_t n = fe_seal_dm(frame, sizeof frame, id, k, A.addr, B.addr, SALT,
                             (const uint8_t *)TEXT32, 32, 32, 86400000);
    assert_int_equal(n, 72);
    assert_hex(frame, 72, DM_HEX);
    assert_hex(id, 8, "62175f46ee3d90b2");

    assert_int_equal(fe_wire_decode(&f, frame, 72), FE_OK);
    assert_int_equal(f.type, FE_T_DM);
    assert_int_equal(f.hops, 32);
    assert_int_equal(f.lifetime_ms, 86400000);
    assert_memory_equal(f.dst, B.addr, 4);
    assert_memory_equal(f.src, A.addr, 4);
    assert_memory_equal(f.id, id, 8);

    uint8_t kb[32];
    assert_int_equal(fe_seal_shared_key(kb, A.xpk, B.xsk), FE_OK);
    assert_int_equal(fe_open_dm(text, sizeof text, &tl, secret, &f, kb, A.addr), FE_OK);
    assert_int_equal(tl, 32);
    assert_memory_equal(text, TEXT32, 32);
    assert_hex(secret, 16, "8dfe90c176e2a3c1c457b0ed95623f62");

    /* Wrong claimed sender, flipped tag, flipped id: all rejected. */
    assert_int_equal(fe_open_dm(text, sizeof text, &tl, secret, &f, kb, B.addr), FE_ERR_CRYPTO);
    frame[30] ^= 1;
    assert_int_equal(fe_open_dm(text, sizeof text, &tl, secret, &f, kb, A.addr), FE_ERR_CRYPTO);
    frame[30] ^= 1;
    frame[12] ^= 1;
    assert_int_equal(fe_wire_decode(&f, frame, 72), FE_OK);
    assert_int_equal(fe_open_dm(text, sizeof text, &tl, secret, &f, kb, A.addr), FE_ERR_CRYPTO);
}

static void test_receipt_vector(void **state)
{
    uint8_t secret[16], frame[20], id[8];
    fe_frame f;
    (void)state;
    unhex(secret, sizeof secret, "8dfe90c176e2a3c1c457b0ed95623f62");
    uint64_t life = 86400000ull + 86400000ull / 16 + 60000;
    assert_int_equal(fe_wire_receipt(frame, 32, life, secret), 20);
    assert_hex(frame, 20, "5820566d8dfe90c176e2a3c1c457b0ed95623f62");
    fe_wire_receipt_id(id, secret);
    assert_hex(id, 8, "62175f46ee3d90b2"); /* commits to the DM above */
    assert_int_equal(fe_wire_decode(&f, frame, 20), FE_OK);
    assert_int_equal(f.type, FE_T_RECEIPT);
    assert_memory_equal(f.id, id, 8);
    assert_int_equal(fe_wire_decode(&f, frame, 19), FE_ERR_MALFORMED);
}

static void test_group_vector(void **state)
{
    uint8_t key[32], gid[16], frame[FE_FRAME_MAX], id[8], text[64], sender[16];
    size_t tl;
    fe_frame f;
    (void)state;
    memset(key, 0x5a, sizeof key);
    fe_seal_group_id(gid, key);
    assert_hex(gid, 16, "6f9547d95dd284bb0d27c6f58f974c0b");
    ptrdiff_t n = fe_seal_group(frame, sizeof frame, id, key, A.addr, SALT,
                                (const uint8_t *)"all hands", 9, 32, 3600000);
    assert_hex(frame, (size_t)n,
               "50200e106f9547d9ec0214ba79d20fc032475608569ec9f2fd4d36e60670e085"
               "c589dd5ed4e467fe2fd13107f3cd433d9b63ed6de3ca0ddf6cc9777554");
    assert_hex(id, 8, "ec0214ba79d20fc0");
    assert_int_equal(fe_wire_decode(&f, frame, (size_t)n), FE_OK);
    assert_int_equal(fe_open_group(text, sizeof text, &tl, sender, &f, key), FE_OK);
    assert_int_equal(tl, 9);
    assert_memory_equal(text, "all hands", 9);
    assert_memory_equal(sender, A.addr, 16);
    key[0] ^= 1;
    assert_int_equal(fe_open_group(text, sizeof text, &tl, sender, &f, key), FE_ERR_CRYPTO);
}

static void test_announce_vector(void **state)
{
    uint8_t frame[FE_FRAME_MAX];
    fe_frame f;
    (void)state;
    ptrdiff_t n = fe_seal_announce(frame, sizeof frame, &A, 1, "alice", 0, 32, 1800000);
    assert_hex(frame, (size_t)n,
               "602007088a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801"
               "b40f6f5c0000000105616c696365a727229a09dfc6b2bc5dfe265edbdccea35d"
               "5746958f740d0860b25f3f3bbaefa4b818b71f5f07e0f1c4f7ca6d167a495ac5"
               "b21df4b19d30626f1aeb4d58f20a");
    assert_int_equal(fe_wire_decode(&f, frame, (size_t)n), FE_OK);
    assert_hex(f.id, 8, "7512824cfcf1b4cf");
    assert_int_equal(f.seq, 1);
    assert_int_equal(f.name_len, 5);
    assert_int_equal(fe_verify_announce(&f), FE_OK);
    /* Hops and lifetime are not signed: relays may rewrite them. */
    fe_wire_patch_item(frame, (size_t)n, 3, 60000);
    assert_int_equal(fe_wire_decode(&f, frame, (size_t)n), FE_OK);
    assert_int_equal(fe_verify_announce(&f), FE_OK);
    /* The name, the sequence and the offline flag are. */
    frame[41] = 'A';
    assert_int_equal(fe_wire_decode(&f, frame, (size_t)n), FE_OK);
    assert_int_equal(fe_verify_announce(&f), FE_ERR_CRYPTO);
    frame[41] = 'a';
    frame[0] |= FE_ANNOUNCE_OFFLINE;
    assert_int_equal(fe_wire_decode(&f, frame, (size_t)n), FE_OK);
    assert_int_equal(fe_verify_announce(&f), FE_ERR_CRYPTO);
}

static void test_summary_vector(void **state)
{
    uint8_t frame[64];
    uint32_t toks[2] = {0x12345679, 0xec0214ba};
    fe_frame f;
    (void)state;
    ptrdiff_t n = fe_wire_summary(frame, sizeof frame, 0xdeadbeef, 2, 0, 0xffffffff, toks, 2);
    assert_hex(frame, (size_t)n, "6800deadbeef000200000000ffffffff12345679ec0214ba");
    assert_int_equal(fe_wire_decode(&f, frame, (size_t)n), FE_OK);
    assert_int_equal(f.token_count, 2);
    assert_int_equal(f.digest, 0xdeadbeef);
    uint8_t id[8] = {0xec, 0x02, 0x14, 0xba, 0, 0, 0, 0};
    assert_int_equal(fe_wire_token(id, 0), 0xec0214ba);
    assert_int_equal(fe_wire_token(id, 1), 0xec0214bb);
    /* Unsorted tokens, tokens outside the range, a ragged tail: malformed. */
    toks[0] = 0xf0000000;
    n = fe_wire_summary(frame, sizeof frame, 1, 2, 0, 0xffffffff, toks, 2);
    assert_int_equal(fe_wire_decode(&f, frame, (size_t)n), FE_ERR_MALFORMED);
    toks[0] = 5;
    n = fe_wire_summary(frame, sizeof frame, 1, 2, 10, 0xffffffff, toks, 2);
    assert_int_equal(fe_wire_decode(&f, frame, (size_t)n), FE_ERR_MALFORMED);
    n = fe_wire_summary(frame, sizeof frame, 1, 2, 0, 0xffffffff, toks, 2);
    assert_int_equal(fe_wire_decode(&f, frame, (size_t)n - 1), FE_ERR_MALFORMED);
}

static void test_fragment_vector(void **state)
{
    uint8_t k[32], frame[FE_FRAME_MAX], id[8], text[100], frag[58];
    (void)state;
    for (int i = 0; i < 100; i++)
        text[i] = (uint8_t)('a' + i % 26);
    assert_int_equal(fe_seal_shared_key(k, B.xpk, A.xsk), FE_OK);
    ptrdiff_t n = fe_seal_dm(frame, sizeof frame, id, k, A.addr, B.addr, SALT, text, 100, 32,
                             86400000);
    assert_int_equal(n, 140);
    assert_int_equal(fe_frag_count(140, 58), 3);
    assert_int_equal(fe_frag_key(frame, 140), 0x9cd0f79f);
    ptrdiff_t fl = fe_frag_make(frag, sizeof frag, frame, 140, 58, 0);
    assert_hex(frag, (size_t)fl,
               "7000039cd0f79f40205518b18f4758e6808f33f2ed65d3c994cbbb2c9f463e6f"
               "b3d3c3a8c886df18df6d842acd2fb57ef29c834e2815dad689db");
}

static void test_anon_roundtrip(void **state)
{
    uint8_t frame[FE_FRAME_MAX], id[8], secret[16], got[16], text[64];
    size_t tl;
    fe_frame f;
    (void)state;
    randombytes_buf(secret, sizeof secret);
    ptrdiff_t n = fe_seal_anon(frame, sizeof frame, id, B.xpk, B.addr, secret,
                               (const uint8_t *)TEXT32, 32, 32, 3600000);
    assert_int_equal(n, 112);
    assert_int_equal(fe_wire_decode(&f, frame, (size_t)n), FE_OK);
    assert_int_equal(fe_open_anon(text, sizeof text, &tl, got, &f, &B), FE_OK);
    assert_memory_equal(got, secret, 16);
    assert_int_equal(fe_open_anon(text, sizeof text, &tl, got, &f, &A), FE_ERR_CRYPTO);
    /* The sender appears nowhere in the frame. */
    assert_null(memmem(frame, (size_t)n, A.addr, 4));
}

static void test_decoder_bounds(void **state)
{
    uint8_t buf[FE_FRAME_MAX + 1];
    fe_frame f;
    (void)state;
    memset(buf, 0, sizeof buf);
    assert_int_equal(fe_wire_decode(&f, buf, 0), FE_ERR_MALFORMED);
    /* Exact-size heap copies, so ASan sees any read past the end. */
    for (unsigned t = 0; t < 8; t++) {
        for (unsigned flags = 0; flags < 8; flags++) {
            for (size_t len = 1; len < 200; len++) {
                uint8_t *p = malloc(len);
                assert_non_null(p);
                memset(p, (int)(len * 7), len);
                p[0] = fe_wire_type_byte(t, flags);
                if (fe_wire_decode(&f, p, len) == FE_OK)
                    assert_true(f.type == t);
                free(p);
            }
        }
    }
    buf[0] = 0x80; /* version 2 */
    assert_int_equal(fe_wire_decode(&f, buf, 72), FE_ERR_MALFORMED);
    buf[0] = fe_wire_type_byte(7, 0);
    assert_int_equal(fe_wire_decode(&f, buf, 72), FE_ERR_MALFORMED);
    buf[0] = fe_wire_type_byte(FE_T_DM, 0);
    assert_int_equal(fe_wire_decode(&f, buf, FE_FRAME_MAX + 1), FE_ERR_MALFORMED);
    assert_int_equal(fe_wire_decode(&f, buf, FE_DM_OVERHEAD - 1), FE_ERR_MALFORMED);
    /* Lifetimes beyond the maximum are clamped. */
    buf[2] = 0xff;
    buf[3] = 0xff;
    assert_int_equal(fe_wire_decode(&f, buf, FE_DM_OVERHEAD), FE_OK);
    assert_int_equal(f.lifetime_ms, FE_LIFETIME_MAX_MS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identities),   cmocka_unit_test(test_lifetime),
        cmocka_unit_test(test_dm_vector),    cmocka_unit_test(test_receipt_vector),
        cmocka_unit_test(test_group_vector), cmocka_unit_test(test_announce_vector),
        cmocka_unit_test(test_summary_vector), cmocka_unit_test(test_fragment_vector),
        cmocka_unit_test(test_anon_roundtrip), cmocka_unit_test(test_decoder_bounds),
    };
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, setup, NULL);
}
