/* Tests of transports/rfcomm_disc.c: Bluetooth addresses, the ferry SDP
 * record (built and read back with the real libbluetooth, no radio needed),
 * and how the BlueZ discovery fails on a machine without Bluetooth. */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <unistd.h>

#include "rfcomm_disc.h"

static void test_addr(void **state)
{
    (void)state;
    fe_bt_addr a, b;
    char s[FE_BT_ADDR_CHARS];
    assert_int_equal(fe_bt_addr_parse(&a, "00:1a:7D:da:71:13"), 0);
    assert_int_equal(a.b[0], 0x13); /* bdaddr_t order */
    assert_int_equal(a.b[5], 0x00);
    fe_bt_addr_format(s, sizeof(s), &a);
    assert_string_equal(s, "00:1A:7D:DA:71:13");
    assert_int_equal(fe_bt_addr_parse(&b, s), 0);
    assert_true(fe_bt_addr_eq(&a, &b));
    assert_int_equal(fe_bt_addr_cmp(&a, &b), 0);

    static const char *const bad[] = {"",
                                      "00:1A:7D:DA:71",
                                      "00:1A:7D:DA:71:13:",
                                      "00-1A-7D-DA-71-13",
                                      "0:1A:7D:DA:71:133",
                                      "00:1A:7D:DA:71:1G",
                                      " 00:1A:7D:DA:71:1"};
    b = a;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(fe_bt_addr_parse(&b, bad[i]), FE_ERR_INVALID);
        assert_true(fe_bt_addr_eq(&a, &b)); /* untouched */
    }
    assert_int_equal(fe_bt_addr_parse(NULL, "00:1A:7D:DA:71:13"), FE_ERR_INVALID);
    assert_int_equal(fe_bt_addr_parse(&b, NULL), FE_ERR_INVALID);

    /* Ordering follows the text: the first byte is the most significant. */
    fe_bt_addr lo, hi;
    assert_int_equal(fe_bt_addr_parse(&lo, "01:00:00:00:00:FF"), 0);
    assert_int_equal(fe_bt_addr_parse(&hi, "02:00:00:00:00:00"), 0);
    assert_int_equal(fe_bt_addr_cmp(&lo, &hi), -1);
    assert_int_equal(fe_bt_addr_cmp(&hi, &lo), 1);
    assert_false(fe_bt_addr_is_any(&lo));
    assert_int_equal(fe_bt_addr_parse(&lo, "00:00:00:00:00:00"), 0);
    assert_true(fe_bt_addr_is_any(&lo));
}

static void test_record_round_trip(void **state)
{
    (void)state;
    static const uint8_t uuid[16] = FE_BT_FERRY_UUID;
    uint8_t pdu[FE_BT_SDP_RECORD_MAX];
    for (unsigned ch = FE_BT_CHANNEL_MIN; ch <= FE_BT_CHANNEL_MAX; ch++) {
        ptrdiff_t n = fe_bt_sdp_record_encode(pdu, sizeof(pdu), (uint8_t)ch);
        assert_true(n > 0);
        assert_non_null(memmem(pdu, (size_t)n, uuid, sizeof(uuid)));
        assert_non_null(memmem(pdu, (size_t)n, FE_BT_SERVICE_NAME, strlen(FE_BT_SERVICE_NAME)));
        uint8_t got = 0;
        assert_int_equal(fe_bt_sdp_record_channel(pdu, (size_t)n, &got), 0);
        assert_int_equal(got, ch);
    }
    assert_int_equal(fe_bt_sdp_record_encode(pdu, sizeof(pdu), 0), FE_ERR_INVALID);
    assert_int_equal(fe_bt_sdp_record_encode(pdu, sizeof(pdu), 31), FE_ERR_INVALID);
    assert_int_equal(fe_bt_sdp_record_encode(pdu, 16, 7), FE_ERR_TOOBIG);
    assert_int_equal(fe_bt_sdp_record_encode(NULL, sizeof(pdu), 7), FE_ERR_INVALID);
}

static void test_record_of_another_service(void **state)
{
    (void)state;
    static const uint8_t uuid[16] = FE_BT_FERRY_UUID;
    uint8_t pdu[FE_BT_SDP_RECORD_MAX];
    ptrdiff_t n = fe_bt_sdp_record_encode(pdu, sizeof(pdu), 7);
    assert_true(n > 0);
    /* Change every copy of the UUID (service class and service id). */
    int changed = 0;
    for (uint8_t *p = pdu; (p = memmem(p, (size_t)(pdu + n - p), uuid, sizeof(uuid))) != NULL;) {
        p[15] ^= 0x01;
        changed++;
    }
    assert_true(changed >= 1);
    uint8_t got = 0;
    assert_int_equal(fe_bt_sdp_record_channel(pdu, (size_t)n, &got), FE_ERR_NOTFOUND);
    assert_int_equal(got, 0);
}

static void test_record_damaged(void **state)
{
    (void)state;
    uint8_t pdu[FE_BT_SDP_RECORD_MAX];
    ptrdiff_t n = fe_bt_sdp_record_encode(pdu, sizeof(pdu), 9);
    assert_true(n > 0);
    /* Every truncation and every single-byte change: no crash or hang (ASan
     * and the test timeout watch), and never a channel other than the real
     * one from a truncation. */
    for (ptrdiff_t len = 0; len < n; len++) {
        uint8_t got = 0;
        int rc = fe_bt_sdp_record_channel(pdu, (size_t)len, &got);
        assert_true(rc == 0 || rc == FE_ERR_NOTFOUND || rc == FE_ERR_MALFORMED);
        if (rc == 0)
            assert_int_equal(got, 9);
    }
    for (ptrdiff_t i = 0; i < n; i++) {
        uint8_t copy[FE_BT_SDP_RECORD_MAX];
        memcpy(copy, pdu, (size_t)n);
        copy[i] ^= 0xA5;
        uint8_t got = 0;
        int rc = fe_bt_sdp_record_channel(copy, (size_t)n, &got);
        assert_true(rc == 0 || rc == FE_ERR_NOTFOUND || rc == FE_ERR_MALFORMED);
        if (rc == 0)
            assert_true(got >= FE_BT_CHANNEL_MIN && got <= FE_BT_CHANNEL_MAX);
    }
    uint8_t junk[64];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)(i * 73u + 5u);
    uint8_t got = 0;
    assert_true(fe_bt_sdp_record_channel(junk, sizeof(junk), &got) != 0);
    assert_int_equal(fe_bt_sdp_record_channel(NULL, 10, &got), FE_ERR_MALFORMED);
}

/* A ServiceSearchAttribute answer's AttributeLists: { record, record... }. */
static size_t lists_of(uint8_t *out, size_t out_len, const uint8_t *const *recs, const size_t *lens,
                       size_t n)
{
    size_t len = 3;
    for (size_t i = 0; i < n; i++) {
        assert_true(len + lens[i] <= out_len);
        memcpy(out + len, recs[i], lens[i]);
        len += lens[i];
    }
    out[0] = 0x36; /* sequence, 16-bit length */
    out[1] = (uint8_t)((len - 3) >> 8);
    out[2] = (uint8_t)(len - 3);
    return len;
}

static void test_lists(void **state)
{
    (void)state;
    static const uint8_t uuid[16] = FE_BT_FERRY_UUID;
    uint8_t ours[FE_BT_SDP_RECORD_MAX], other[FE_BT_SDP_RECORD_MAX], lists[2048];
    ptrdiff_t n = fe_bt_sdp_record_encode(ours, sizeof(ours), 12);
    assert_true(n > 0);
    memcpy(other, ours, (size_t)n);
    for (uint8_t *p = other; (p = memmem(p, (size_t)(other + n - p), uuid, 16)) != NULL;)
        p[0] ^= 0xFF;
    const uint8_t *recs[2] = {other, ours};
    size_t lens[2] = {(size_t)n, (size_t)n};
    uint8_t ch = 0;

    size_t len = lists_of(lists, sizeof(lists), recs, lens, 2);
    assert_int_equal(fe_bt_sdp_lists_channel(lists, len, &ch), 0);
    assert_int_equal(ch, 12);
    len = lists_of(lists, sizeof(lists), recs, lens, 1);
    assert_int_equal(fe_bt_sdp_lists_channel(lists, len, &ch), FE_ERR_NOTFOUND);
    len = lists_of(lists, sizeof(lists), recs, lens, 0);
    assert_int_equal(fe_bt_sdp_lists_channel(lists, len, &ch), FE_ERR_NOTFOUND);

    /* A first record that is well-formed SDP but not a record (its first
     * attribute id is a string) does not hide a good second one... */
    assert_int_equal(memcmp(other + 2, "\x09\x00\x01", 3), 0);
    memcpy(other + 2, "\x25\x01\x41", 3);
    len = lists_of(lists, sizeof(lists), recs, lens, 2);
    assert_int_equal(fe_bt_sdp_lists_channel(lists, len, &ch), 0);
    assert_int_equal(ch, 12);
    len = lists_of(lists, sizeof(lists), recs, lens, 1);
    assert_int_equal(fe_bt_sdp_lists_channel(lists, len, &ch), FE_ERR_MALFORMED);
    /* ...but one whose length overruns spoils the whole answer. */
    other[1] = 0xFF;
    len = lists_of(lists, sizeof(lists), recs, lens, 2);
    assert_int_equal(fe_bt_sdp_lists_channel(lists, len, &ch), FE_ERR_MALFORMED);

    /* The input that made libbluetooth 5.66 loop for ever (a nested
     * sequence header cut short) is refused before it gets there; so are
     * alternatives, whose contents libbluetooth leaks. */
    assert_int_equal(fe_bt_sdp_record_channel(ours, 50, &ch), FE_ERR_MALFORMED);
    uint8_t alt[FE_BT_SDP_RECORD_MAX];
    memcpy(alt, ours, (size_t)n);
    uint8_t *seq = memmem(alt, (size_t)n, "\x09\x00\x05\x35", 4); /* BrowseGroupList */
    assert_non_null(seq);
    seq[3] = 0x3D;
    assert_int_equal(fe_bt_sdp_record_channel(alt, (size_t)n, &ch), FE_ERR_MALFORMED);

    /* Pseudo-random damage to a three-record answer: bounded, no crash, no
     * leak (ASan), and a channel only when a ferry record survived. */
    recs[0] = ours;
    const uint8_t *three[3] = {ours, ours, ours};
    size_t three_lens[3] = {(size_t)n, (size_t)n, (size_t)n};
    size_t full = lists_of(lists, sizeof(lists), three, three_lens, 3);
    uint32_t x = 12345;
    for (int it = 0; it < 20000; it++) {
        uint8_t c[2048];
        memcpy(c, lists, full);
        int flips = 1 + (int)(x >> 29);
        for (int j = 0; j < flips; j++) {
            x = x * 1103515245u + 12345u;
            c[(x >> 8) % full] = (uint8_t)(x >> 20);
        }
        x = x * 1103515245u + 12345u;
        size_t cut = (x >> 4) % 8 == 0 ? (x >> 8) % full : full;
        ch = 0;
        int rc = fe_bt_sdp_lists_channel(c, cut, &ch);
        assert_true(rc == 0 || rc == FE_ERR_NOTFOUND || rc == FE_ERR_MALFORMED);
        if (rc == 0)
            assert_true(ch >= FE_BT_CHANNEL_MIN && ch <= FE_BT_CHANNEL_MAX);
    }
}

/* Here there is no Bluetooth: every BlueZ call must fail cleanly and fast,
 * and registration must say what bluetoothd needs. */
static void test_bluez_without_bluetooth(void **state)
{
    (void)state;
    fe_bt_discovery *d = NULL;
    assert_int_equal(fe_bt_bluez_new(&d), 0);
    assert_non_null(d);
    assert_string_equal(d->ops->name, "bluez");
    fe_bt_addr local, peer, found[4];
    assert_int_equal(fe_bt_addr_parse(&local, "00:00:00:00:00:01"), 0);
    assert_int_equal(fe_bt_addr_parse(&peer, "00:00:00:00:00:02"), 0);
    uint8_t ch = 0;
    assert_true(d->ops->lookup(d->ctx, &local, &peer, &ch) < 0);
    assert_true(d->ops->inquiry(d->ctx, 0, 1, found, 4) < 0);
    assert_int_equal(d->ops->inquiry(d->ctx, 0, 0, found, 4), FE_ERR_INVALID);
    if (access("/var/run/sdp", F_OK) != 0) {
        char err[256] = "";
        assert_true(d->ops->register_service(d->ctx, &local, 7, err, sizeof(err)) < 0);
        assert_non_null(strstr(err, "--compat"));
    }
    d->ops->unregister_service(d->ctx);
    fe_bt_bluez_del(d);
    fe_bt_bluez_del(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addr),
        cmocka_unit_test(test_record_round_trip),
        cmocka_unit_test(test_record_of_another_service),
        cmocka_unit_test(test_record_damaged),
        cmocka_unit_test(test_lists),
        cmocka_unit_test(test_bluez_without_bluetooth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
