/* Tests of transports/at_modem.c: the Z85 data encoding, AT+SEND lines and
 * the bounded line parser, including line noise. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "at_modem.h"

static uint64_t rng = 0xD1B54A32D192ED03ull;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

/* --- data encoding --- */

/* The test vector of ZeroMQ RFC 32 (Z85). */
static void test_z85_vector(void **state)
{
    (void)state;
    const uint8_t bin[8] = {0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B};
    char out[16];
    assert_int_equal(fe_at_data_encode(out, sizeof(out), bin, 8), 10);
    assert_memory_equal(out, "HelloWorld", 10);
    uint8_t back[8];
    assert_int_equal(fe_at_data_decode(back, sizeof(back), "HelloWorld", 10), 8);
    assert_memory_equal(back, bin, 8);
}

static void test_z85_roundtrip_all_lengths(void **state)
{
    (void)state;
    for (size_t len = 1; len <= FE_AT_FRAME_MAX; len++) {
        for (int round = 0; round < 8; round++) {
            uint8_t in[FE_AT_FRAME_MAX], back[FE_AT_FRAME_MAX];
            for (size_t k = 0; k < len; k++) /* edge values too */
                in[k] = (uint8_t)(round == 0 ? 0xFF : round == 1 ? 0 : rnd());
            char enc[FE_AT_DATA_MAX];
            ptrdiff_t n = fe_at_data_encode(enc, sizeof(enc), in, len);
            assert_int_equal(n, (ptrdiff_t)fe_at_encoded_len(len));
            for (ptrdiff_t k = 0; k < n; k++) /* printable, never a separator */
                assert_true(enc[k] > 0x20 && enc[k] < 0x7F && enc[k] != ',' && enc[k] != '"');
            assert_int_equal(fe_at_data_decode(back, sizeof(back), enc, (size_t)n), (ptrdiff_t)len);
            assert_memory_equal(back, in, len);
        }
    }
    assert_int_equal(fe_at_encoded_len(FE_AT_FRAME_MAX), FE_AT_DATA_MAX);
    assert_int_equal(fe_at_encoded_len(1), 2);
    assert_int_equal(fe_at_encoded_len(7), 9);
}

static void test_z85_rejects(void **state)
{
    (void)state;
    uint8_t out[16];
    assert_int_equal(fe_at_data_decode(out, sizeof(out), "Hello,orld", 10), FE_ERR_MALFORMED);
    assert_int_equal(fe_at_data_decode(out, sizeof(out), "Hello World", 11), FE_ERR_MALFORMED);
    assert_int_equal(fe_at_data_decode(out, sizeof(out), "HelloW", 6), FE_ERR_MALFORMED);
    assert_int_equal(fe_at_data_decode(out, sizeof(out), "#####", 5), FE_ERR_MALFORMED);
    assert_int_equal(fe_at_data_decode(out, sizeof(out), "", 0), FE_ERR_MALFORMED);
    /* "0@" is how 0x03 is written (0x03000000 = 0 * 85^4 + 81 * 85^3 + ...,
     * and '@' is digit 81); "0#" decodes to the same byte but is not the
     * encoder's spelling. */
    char enc[8];
    const uint8_t three = 0x03;
    assert_int_equal(fe_at_data_encode(enc, sizeof(enc), &three, 1), 2);
    assert_memory_equal(enc, "0@", 2);
    assert_int_equal(fe_at_data_decode(out, sizeof(out), "0@", 2), 1);
    assert_int_equal(out[0], 0x03);
    assert_int_equal(fe_at_data_decode(out, sizeof(out), "0#", 2), FE_ERR_MALFORMED);
    assert_int_equal(fe_at_data_decode(out, 7, "HelloWorld", 10), FE_ERR_TOOBIG);
    uint8_t big[FE_AT_FRAME_MAX + 1] = {0};
    char bigenc[FE_AT_DATA_MAX + 8];
    assert_int_equal(fe_at_data_encode(bigenc, sizeof(bigenc), big, sizeof(big)), FE_ERR_TOOBIG);
    assert_int_equal(fe_at_data_encode(enc, 4, big, 4), FE_ERR_TOOBIG);
    assert_int_equal(fe_at_data_encode(enc, sizeof(enc), big, 0), FE_ERR_INVALID);
}

static void test_build_send(void **state)
{
    (void)state;
    const uint8_t bin[8] = {0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B};
    char line[FE_AT_SEND_LINE_MAX + 1];
    ptrdiff_t n = fe_at_build_send(line, sizeof(line), 0, bin, 8);
    assert_int_equal(n, (ptrdiff_t)strlen("AT+SEND=0,10,HelloWorld\r\n"));
    assert_string_equal(line, "AT+SEND=0,10,HelloWorld\r\n");
    /* The longest line fits the bound. */
    uint8_t big[FE_AT_FRAME_MAX];
    memset(big, 0xA5, sizeof(big));
    n = fe_at_build_send(line, sizeof(line), 65535, big, sizeof(big));
    assert_int_equal(n, (ptrdiff_t)FE_AT_SEND_LINE_MAX);
    assert_memory_equal(line, "AT+SEND=65535,240,", 18);
    assert_int_equal(fe_at_build_send(line, (size_t)n - 1, 65535, big, sizeof(big)), FE_ERR_TOOBIG);
    uint8_t over[FE_AT_FRAME_MAX + 1] = {0};
    assert_int_equal(fe_at_build_send(line, sizeof(line), 0, over, sizeof(over)), FE_ERR_TOOBIG);
    assert_int_equal(fe_at_build_send(line, sizeof(line), 0, NULL, 3), FE_ERR_INVALID);
}

static void test_build_cmd_and_errors(void **state)
{
    (void)state;
    char line[FE_AT_CMD_MAX + 3];
    assert_int_equal(fe_at_build_cmd(line, sizeof(line), "AT+NETWORKID=5"), 16);
    assert_string_equal(line, "AT+NETWORKID=5\r\n");
    assert_int_equal(fe_at_build_cmd(line, sizeof(line), "ATZ"), 5);
    assert_int_equal(fe_at_build_cmd(line, sizeof(line), "+NETWORKID=5"), FE_ERR_INVALID);
    assert_int_equal(fe_at_build_cmd(line, sizeof(line), "AT+X=\r\nAT"), FE_ERR_INVALID);
    char longcmd[FE_AT_CMD_MAX + 2];
    memset(longcmd, 'A', sizeof(longcmd) - 1);
    longcmd[1] = 'T';
    longcmd[sizeof(longcmd) - 1] = '\0';
    assert_int_equal(fe_at_build_cmd(line, sizeof(line), longcmd), FE_ERR_TOOBIG);
    assert_int_equal(fe_at_build_cmd(line, 4, "AT+X=1"), FE_ERR_TOOBIG);
    assert_string_equal(fe_at_err_text(13), "more than 240 bytes of data");
    assert_string_equal(fe_at_err_text(17), "last transmission not completed");
    assert_string_equal(fe_at_err_text(99), "unknown error code");
}

/* --- line decoder --- */

#define EV_MAX 512
typedef struct ev_rec {
    size_t count;
    fe_at_event ev[EV_MAX];
    uint8_t frame[EV_MAX][FE_AT_FRAME_MAX];
    char line[EV_MAX][FE_AT_LINE_MAX];
} ev_rec;

static void on_event(void *ctx, const fe_at_event *ev)
{
    ev_rec *r = ctx;
    assert_true(ev->line_len <= FE_AT_LINE_MAX);
    if (r->count < EV_MAX) {
        r->ev[r->count] = *ev;
        if (ev->frame_len > 0) {
            assert_true(ev->frame_len <= FE_AT_FRAME_MAX);
            memcpy(r->frame[r->count], ev->frame, ev->frame_len);
        }
        memcpy(r->line[r->count], ev->line, ev->line_len);
    }
    r->count++;
}

static void feed_str(fe_at_dec *d, const char *s)
{
    assert_int_equal(fe_at_dec_feed(d, (const uint8_t *)s, strlen(s)), strlen(s));
}

static void test_decoder_responses(void **state)
{
    (void)state;
    static ev_rec r;
    memset(&r, 0, sizeof(r));
    fe_at_dec d;
    assert_int_equal(fe_at_dec_init(&d, on_event, &r), 0);
    feed_str(&d, "+READY\r\n+OK\r\n+ERR=13\r\n+ADDRESS=5\r\n\r\n"
                 "+RCV=65535,10,HelloWorld,-102,-7\r\n+RCV=5,2,00,0,0\n");
    assert_int_equal(r.count, 6);
    assert_int_equal(r.ev[0].kind, FE_AT_EV_READY);
    assert_int_equal(r.ev[1].kind, FE_AT_EV_OK);
    assert_int_equal(r.ev[2].kind, FE_AT_EV_ERR);
    assert_int_equal(r.ev[2].err, 13);
    assert_int_equal(r.ev[3].kind, FE_AT_EV_INFO);
    assert_int_equal(r.ev[3].line_len, 10);
    assert_memory_equal(r.line[3], "+ADDRESS=5", 10);
    assert_int_equal(r.ev[4].kind, FE_AT_EV_RCV);
    assert_int_equal(r.ev[4].addr, 65535);
    assert_int_equal(r.ev[4].rssi, -102);
    assert_int_equal(r.ev[4].snr, -7);
    assert_int_equal(r.ev[4].frame_len, 8);
    const uint8_t bin[8] = {0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B};
    assert_memory_equal(r.frame[4], bin, 8);
    assert_int_equal(r.ev[5].frame_len, 1); /* "00" is one zero byte */
    assert_int_equal(r.frame[5][0], 0);
    assert_int_equal(d.stats.lines, 6); /* the empty line is not counted */
    assert_int_equal(d.stats.rcv, 2);
}

static void test_decoder_rejects(void **state)
{
    (void)state;
    static ev_rec r;
    memset(&r, 0, sizeof(r));
    fe_at_dec d;
    assert_int_equal(fe_at_dec_init(&d, on_event, &r), 0);
    /* The data is taken by its length: "a,b" is 3 characters, commas and all,
     * and then is not our encoding. */
    feed_str(&d, "+RCV=1,3,a,b,-1,2\r\n");
    assert_int_equal(d.stats.bad_data, 1);
    /* Lengths that do not match, fields out of range or missing. */
    feed_str(&d, "+RCV=1,10,short,-1,2\r\n"
                 "+RCV=70000,2,00,-1,2\r\n"
                 "+RCV=1,241,00,-1,2\r\n"
                 "+RCV=1,0,,-1,2\r\n"
                 "+RCV=1,2,00,-1\r\n"
                 "+RCV=1,2,00,-1,2,3\r\n"
                 "+RCV=,2,00,-1,2\r\n"
                 "+ERR=\r\n+ERR=1x\r\n");
    assert_int_equal(d.stats.malformed, 9);
    /* Not responses at all. */
    feed_str(&d, "AT+SEND=0,2,00\r\nhello\r\n+\x01\x02\r\n+ok\r\n+OKAY\r\n");
    assert_int_equal(d.stats.unknown, 4);
    assert_int_equal(d.stats.info, 1); /* "+OKAY" looks like an answer */
    /* An overlong line is dropped whole; the next line is fine. */
    char big[1000];
    memset(big, 'A', sizeof(big));
    fe_at_dec_feed(&d, (const uint8_t *)"+RCV=1,240,", 11);
    fe_at_dec_feed(&d, (const uint8_t *)big, sizeof(big));
    feed_str(&d, ",-1,2\r\n+OK\r\n");
    assert_int_equal(d.stats.overlong, 1);
    assert_int_equal(d.stats.ok, 1);
    assert_int_equal(r.ev[r.count - 1].kind, FE_AT_EV_OK);
    /* A line cut by a reset is forgotten. */
    feed_str(&d, "+RCV=1,2,");
    fe_at_dec_reset(&d);
    feed_str(&d, "+OK\r\n");
    assert_int_equal(d.stats.ok, 2);
    assert_int_equal(d.stats.rcv, 0);
    assert_int_equal(fe_at_dec_init(&d, NULL, &r), FE_ERR_INVALID);
}

/* Frames in +RCV lines with noise: every line whose bytes (and the LF before
 * it) were not touched is delivered exactly once; damage is counted. */
static void test_line_noise(void **state)
{
    (void)state;
    enum { LINES = 400 };
    size_t cap = LINES * (FE_AT_LINE_MAX + 16);
    char *s = malloc(cap);
    uint8_t *hit = calloc(cap, 1);
    size_t start[LINES], end[LINES], n = 0;
    static uint8_t frames[LINES][FE_AT_FRAME_MAX];
    size_t lens[LINES];
    for (size_t i = 0; i < LINES; i++) {
        lens[i] = 4 + rnd() % (FE_AT_FRAME_MAX - 4);
        for (size_t k = 0; k < lens[i]; k++)
            frames[i][k] = (uint8_t)rnd();
        uint32_t id = (uint32_t)i; /* distinct frames */
        memcpy(frames[i], &id, sizeof(id));
        char enc[FE_AT_DATA_MAX];
        ptrdiff_t e = fe_at_data_encode(enc, sizeof(enc), frames[i], lens[i]);
        assert_true(e > 0);
        start[i] = n > 0 ? n - 1 : 0; /* the LF before the line counts */
        n += (size_t)snprintf(s + n, cap - n, "+RCV=%u,%d,%.*s,-%u,%d\r\n", rnd() % 65536, (int)e,
                              (int)e, enc, rnd() % 130, (int)(rnd() % 40) - 20);
        end[i] = n;
        if (rnd() % 8 == 0)
            n += (size_t)snprintf(s + n, cap - n, "+OK\r\n");
    }
    for (size_t k = 0; k < n; k++) {
        if (rnd() % 400 == 0) {
            s[k] = (char)(s[k] ^ (1 << (rnd() % 8)));
            hit[k] = 1;
        }
        if (rnd() % 5000 == 0) { /* a burst that may eat line ends */
            for (size_t j = k; j < n && j < k + 30; j++) {
                s[j] = (char)rnd();
                hit[j] = 1;
            }
        }
    }
    static ev_rec r;
    memset(&r, 0, sizeof(r));
    fe_at_dec d;
    assert_int_equal(fe_at_dec_init(&d, on_event, &r), 0);
    for (size_t off = 0; off < n;) {
        size_t k = 1 + rnd() % 100;
        if (k > n - off)
            k = n - off;
        fe_at_dec_feed(&d, (const uint8_t *)s + off, k);
        off += k;
    }
    size_t untouched = 0;
    for (size_t i = 0; i < LINES; i++) {
        int clean = 1;
        for (size_t k = start[i]; k < end[i]; k++)
            clean = clean && !hit[k];
        if (!clean)
            continue;
        untouched++;
        size_t found = 0;
        for (size_t j = 0; j < r.count && j < EV_MAX; j++)
            if (r.ev[j].kind == FE_AT_EV_RCV && r.ev[j].frame_len == lens[i] &&
                memcmp(r.frame[j], frames[i], lens[i]) == 0)
                found++;
        assert_int_equal(found, 1);
    }
    assert_true(untouched > LINES / 3);
    assert_true(untouched < LINES);
    assert_true(d.stats.malformed + d.stats.bad_data + d.stats.unknown + d.stats.overlong > 0);
    free(hit);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_z85_vector),
        cmocka_unit_test(test_z85_roundtrip_all_lengths),
        cmocka_unit_test(test_z85_rejects),
        cmocka_unit_test(test_build_send),
        cmocka_unit_test(test_build_cmd_and_errors),
        cmocka_unit_test(test_decoder_responses),
        cmocka_unit_test(test_decoder_rejects),
        cmocka_unit_test(test_line_noise),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
