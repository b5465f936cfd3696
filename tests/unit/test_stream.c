/* Tests of transports/stream.c: HDLC-like framing with CRC-16/X.25. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "stream.h"

/* --- helpers --- */

/* Frames delivered by the decoder, copied in order (bounded). */
#define SEEN_MAX 4096
typedef struct seen {
    size_t count;
    size_t lens[SEEN_MAX];
    uint8_t *data[SEEN_MAX];
} seen;

static void on_frame(void *ctx, const uint8_t *f, size_t len)
{
    seen *s = ctx;
    assert_true(len >= 1);
    assert_true(len <= FE_FRAME_MAX);
    if (s->count >= SEEN_MAX)
        fail_msg("more frames delivered than the test can hold");
    s->data[s->count] = malloc(len);
    assert_non_null(s->data[s->count]);
    memcpy(s->data[s->count], f, len);
    s->lens[s->count] = len;
    s->count++;
}

static void seen_clear(seen *s)
{
    for (size_t i = 0; i < s->count; i++)
        free(s->data[i]);
    s->count = 0;
}

static seen *seen_new(void)
{
    seen *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    return s;
}

static void seen_del(seen *s)
{
    if (s != NULL)
        seen_clear(s);
    free(s);
}

static void assert_frame(const seen *s, size_t i, const uint8_t *f, size_t len)
{
    assert_true(i < s->count);
    assert_int_equal(s->lens[i], len);
    assert_memory_equal(s->data[i], f, len);
}

/* Deterministic PRNG (xorshift64*) so that every run sees the same bytes. */
static uint64_t rng_state;
static void rng_seed(uint64_t seed)
{
    rng_state = seed ? seed : 0x9E3779B97F4A7C15ull;
}
static uint32_t rng_next(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545F4914F6CDD1Dull) >> 32);
}
static size_t rng_range(size_t lo, size_t hi) /* inclusive */
{
    return lo + (size_t)rng_next() % (hi - lo + 1);
}
static void rng_fill(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)rng_next();
}

/* Reference CRC-16/X.25, one bit at a time, independent of the module's table. */
static uint16_t crc_bitwise(const uint8_t *p, size_t n)
{
    uint16_t crc = 0xFFFF;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc & 1) ? (uint16_t)((crc >> 1) ^ 0x8408) : (uint16_t)(crc >> 1);
    }
    return (uint16_t)(crc ^ 0xFFFF);
}

static size_t encode_ok(uint8_t *out, size_t out_len, const uint8_t *f, size_t len)
{
    ptrdiff_t n = fe_stream_encode(out, out_len, f, len);
    assert_true(n > 0);
    return (size_t)n;
}

static fe_stream_dec *dec_new(size_t max_frame, seen *s)
{
    fe_stream_dec *d = malloc(sizeof(*d));
    assert_non_null(d);
    assert_int_equal(fe_stream_dec_init(d, max_frame, on_frame, s), 0);
    return d;
}

static uint64_t error_total(const fe_stream_dec *d)
{
    return d->stats.crc_errors + d->stats.runts + d->stats.oversize + d->stats.aborted;
}

/* --- CRC --- */

static void test_crc_check_value(void **state)
{
    (void)state;
    const uint8_t check[] = "123456789";
    assert_int_equal(fe_stream_crc16(check, 9), 0x906E);
    assert_int_equal(crc_bitwise(check, 9), 0x906E);
    /* Empty input: init and final xor cancel. */
    assert_int_equal(fe_stream_crc16(check, 0), 0x0000);
}

static void test_crc_matches_bitwise_reference(void **state)
{
    (void)state;
    uint8_t buf[600];
    rng_seed(1);
    for (int round = 0; round < 200; round++) {
        size_t n = rng_range(0, sizeof(buf));
        rng_fill(buf, n);
        assert_int_equal(fe_stream_crc16(buf, n), crc_bitwise(buf, n));
    }
    /* Every single byte value exercises every table entry. */
    for (int b = 0; b < 256; b++) {
        uint8_t one = (uint8_t)b;
        assert_int_equal(fe_stream_crc16(&one, 1), crc_bitwise(&one, 1));
    }
}

/* --- encoder --- */

static void test_encode_layout(void **state)
{
    (void)state;
    const uint8_t f[] = {0x7E, 0x41, 0x7D, 0x20};
    uint16_t fcs = crc_bitwise(f, sizeof(f));
    uint8_t expect[16];
    size_t n = 0;
    expect[n++] = 0x7E;
    expect[n++] = 0x7D;
    expect[n++] = 0x5E;
    expect[n++] = 0x41;
    expect[n++] = 0x7D;
    expect[n++] = 0x5D;
    expect[n++] = 0x20;
    uint8_t tail[2] = {(uint8_t)(fcs & 0xFF), (uint8_t)(fcs >> 8)};
    for (int i = 0; i < 2; i++) {
        if (tail[i] == 0x7E || tail[i] == 0x7D) {
            expect[n++] = 0x7D;
            expect[n++] = (uint8_t)(tail[i] ^ 0x20);
        } else {
            expect[n++] = tail[i];
        }
    }
    expect[n++] = 0x7E;

    uint8_t out[FE_STREAM_ENCODED_MAX(sizeof(f))];
    size_t got = encode_ok(out, sizeof(out), f, sizeof(f));
    assert_int_equal(got, n);
    assert_memory_equal(out, expect, n);
}

static void test_encode_bounds(void **state)
{
    (void)state;
    static uint8_t big[FE_FRAME_MAX + 1];
    static uint8_t out[FE_STREAM_ENCODED_MAX(FE_FRAME_MAX + 1)];
    uint8_t one = 1;

    assert_int_equal(fe_stream_encode(out, sizeof(out), big, FE_FRAME_MAX + 1), FE_ERR_TOOBIG);
    assert_int_equal(fe_stream_encode(out, sizeof(out), big, 0), FE_ERR_INVALID);
    assert_int_equal(fe_stream_encode(out, sizeof(out), NULL, 3), FE_ERR_INVALID);

    /* The worst case: every byte needs escaping. The bound must hold, and a
     * buffer one byte short of the exact need must be refused untouched. */
    memset(big, 0x7E, FE_FRAME_MAX);
    ptrdiff_t n = fe_stream_encode(out, sizeof(out), big, FE_FRAME_MAX);
    assert_true(n > 0);
    assert_true((size_t)n <= FE_STREAM_ENCODED_MAX(FE_FRAME_MAX));
    assert_true((size_t)n >= 2 + 2 * FE_FRAME_MAX + 2);

    memset(out, 0xAA, sizeof(out));
    assert_int_equal(fe_stream_encode(out, (size_t)n - 1, big, FE_FRAME_MAX), FE_ERR_TOOBIG);
    for (size_t i = 0; i < sizeof(out); i++)
        assert_int_equal(out[i], 0xAA);
    assert_int_equal(fe_stream_encode(out, (size_t)n, big, FE_FRAME_MAX), n);
    assert_int_equal(fe_stream_encode(out, 3, &one, 1), FE_ERR_TOOBIG);
}

/* --- decoder --- */

static void test_init_rejects_bad_arguments(void **state)
{
    (void)state;
    fe_stream_dec d;
    assert_int_equal(fe_stream_dec_init(&d, 0, on_frame, NULL), FE_ERR_INVALID);
    assert_int_equal(fe_stream_dec_init(&d, FE_FRAME_MAX + 1, on_frame, NULL), FE_ERR_INVALID);
    assert_int_equal(fe_stream_dec_init(&d, 10, NULL, NULL), FE_ERR_INVALID);
    assert_int_equal(fe_stream_dec_init(NULL, 10, on_frame, NULL), FE_ERR_INVALID);
    assert_int_equal(fe_stream_dec_init(&d, FE_FRAME_MAX, on_frame, NULL), 0);
    fe_stream_dec_reset(NULL); /* accepted */
}

static void test_round_trip_every_byte_value(void **state)
{
    (void)state;
    seen *s = seen_new();
    fe_stream_dec *d = dec_new(FE_FRAME_MAX, s);
    static uint8_t f[FE_FRAME_MAX];
    static uint8_t enc[FE_STREAM_ENCODED_MAX(FE_FRAME_MAX)];

    /* 0..255 in order, then the specials alone, then the largest frame. */
    for (int i = 0; i < 256; i++)
        f[i] = (uint8_t)i;
    size_t n = encode_ok(enc, sizeof(enc), f, 256);
    assert_int_equal(fe_stream_dec_feed(d, enc, n), n);
    assert_int_equal(s->count, 1);
    assert_frame(s, 0, f, 256);

    const uint8_t specials[][3] = {
        {0x7E, 0x7E, 0x7E}, {0x7D, 0x7D, 0x7D}, {0x7D, 0x7E, 0x7D}, {0x5E, 0x7D, 0x5D}};
    for (size_t k = 0; k < 4; k++) {
        n = encode_ok(enc, sizeof(enc), specials[k], 3);
        fe_stream_dec_feed(d, enc, n);
        assert_frame(s, 1 + k, specials[k], 3);
    }

    rng_seed(7);
    rng_fill(f, FE_FRAME_MAX);
    n = encode_ok(enc, sizeof(enc), f, FE_FRAME_MAX);
    fe_stream_dec_feed(d, enc, n);
    assert_int_equal(s->count, 6);
    assert_frame(s, 5, f, FE_FRAME_MAX);

    /* Every length 1..300 with random contents. */
    for (size_t len = 1; len <= 300; len++) {
        rng_fill(f, len);
        n = encode_ok(enc, sizeof(enc), f, len);
        fe_stream_dec_feed(d, enc, n);
        assert_frame(s, s->count - 1, f, len);
    }
    assert_int_equal(s->count, 306);
    assert_int_equal(d->stats.frames_ok, 306);
    assert_int_equal(error_total(d), 0);
    assert_int_equal(d->stats.skipped, 0);
    free(d);
    seen_del(s);
}

static void test_byte_at_a_time(void **state)
{
    (void)state;
    seen *s = seen_new();
    fe_stream_dec *d = dec_new(FE_FRAME_MAX, s);
    uint8_t f[200];
    uint8_t enc[FE_STREAM_ENCODED_MAX(200)];
    rng_seed(3);
    for (int round = 0; round < 50; round++) {
        size_t len = rng_range(1, sizeof(f));
        rng_fill(f, len);
        f[0] = 0x7E; /* force escapes into every frame */
        f[len - 1] = 0x7D;
        size_t n = encode_ok(enc, sizeof(enc), f, len);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(fe_stream_dec_feed(d, enc + i, 1), 1);
            /* Nothing is delivered before the closing flag. */
            assert_int_equal(s->count, (size_t)round + (i == n - 1 ? 1 : 0));
        }
        assert_frame(s, (size_t)round, f, len);
    }
    assert_int_equal(error_total(d), 0);
    free(d);
    seen_del(s);
}

static void test_garbage_before_and_between_frames(void **state)
{
    (void)state;
    seen *s = seen_new();
    fe_stream_dec *d = dec_new(FE_FRAME_MAX, s);
    const uint8_t a[] = "first frame";
    const uint8_t b[] = "second frame";
    uint8_t buf[256];
    size_t n = 0;

    /* Line noise with no flag before the first frame: skipped, not an error. */
    const uint8_t junk[] = {0x00, 0xFF, 0x13, 0x7D, 0x5E, 0x42};
    memcpy(buf + n, junk, sizeof(junk));
    n += sizeof(junk);
    n += encode_ok(buf + n, sizeof(buf) - n, a, sizeof(a));
    /* Garbage between frames is seen as a frame opened by a's closing flag
     * and closed by b's opening flag: it fails its CRC. */
    const uint8_t mid[] = {0x31, 0x32, 0x33, 0x34, 0x35};
    memcpy(buf + n, mid, sizeof(mid));
    n += sizeof(mid);
    n += encode_ok(buf + n, sizeof(buf) - n, b, sizeof(b));

    fe_stream_dec_feed(d, buf, n);
    assert_int_equal(s->count, 2);
    assert_frame(s, 0, a, sizeof(a));
    assert_frame(s, 1, b, sizeof(b));
    assert_int_equal(d->stats.skipped, sizeof(junk));
    assert_int_equal(d->stats.crc_errors, 1);
    free(d);
    seen_del(s);
}

static void test_idle_flags_and_runts(void **state)
{
    (void)state;
    seen *s = seen_new();
    fe_stream_dec *d = dec_new(FE_FRAME_MAX, s);
    const uint8_t idle[] = {0x7E, 0x7E, 0x7E, 0x7E, 0x7E};
    fe_stream_dec_feed(d, idle, sizeof(idle));
    assert_int_equal(s->count, 0);
    assert_int_equal(error_total(d), 0);
    assert_int_equal(d->stats.skipped, 0);

    /* One or two bytes cannot hold an FCS and a frame byte. Even the FCS of an
     * empty frame (0x0000) is refused: frames are never empty. */
    const uint8_t runts[] = {0x7E, 0x01, 0x7E, 0x01, 0x02, 0x7E, 0x00, 0x00, 0x7E};
    fe_stream_dec_feed(d, runts, sizeof(runts));
    assert_int_equal(s->count, 0);
    assert_int_equal(d->stats.runts, 3);
    free(d);
    seen_del(s);
}

static void test_bit_flips_are_caught(void **state)
{
    (void)state;
    seen *s = seen_new();
    fe_stream_dec *d = dec_new(FE_FRAME_MAX, s);
    uint8_t f[64];
    uint8_t good[FE_STREAM_ENCODED_MAX(64)], bad[FE_STREAM_ENCODED_MAX(64)];
    rng_seed(11);
    rng_fill(f, sizeof(f));
    size_t n = encode_ok(good, sizeof(good), f, sizeof(f));

    /* Flip each bit of the stuffed body in turn (the flags stay), then send
     * the untouched frame: the damaged copy is never delivered, its damage is
     * counted, and the good copy right after it always arrives. */
    size_t expected = 0;
    for (size_t byte = 1; byte + 1 < n; byte++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(bad, good, n);
            bad[byte] ^= (uint8_t)(1u << bit);
            uint64_t errs = error_total(d);
            fe_stream_dec_feed(d, bad, n);
            assert_int_equal(s->count, expected);
            assert_true(error_total(d) > errs);
            fe_stream_dec_feed(d, good, n);
            expected++;
            assert_int_equal(s->count, expected);
            assert_frame(s, expected - 1, f, sizeof(f));
        }
    }

    /* A flip in a plain payload byte is exactly one CRC error. */
    const uint8_t plain[] = "abcdefghijklmnopqrstuvwxyz";
    n = encode_ok(good, sizeof(good), plain, sizeof(plain));
    memcpy(bad, good, n);
    bad[5] ^= 0x04;
    uint64_t crc_before = d->stats.crc_errors;
    fe_stream_dec_feed(d, bad, n);
    assert_int_equal(d->stats.crc_errors, crc_before + 1);
    free(d);
    seen_del(s);
}

static void test_truncated_then_good(void **state)
{
    (void)state;
    seen *s = seen_new();
    fe_stream_dec *d = dec_new(FE_FRAME_MAX, s);
    uint8_t f[100], g[40];
    uint8_t ef[FE_STREAM_ENCODED_MAX(100)], eg[FE_STREAM_ENCODED_MAX(40)];
    rng_seed(5);
    rng_fill(f, sizeof(f));
    rng_fill(g, sizeof(g));
    size_t nf = encode_ok(ef, sizeof(ef), f, sizeof(f));
    size_t ng = encode_ok(eg, sizeof(eg), g, sizeof(g));

    /* The link drops the tail of f: g's opening flag ends the stump. */
    fe_stream_dec_feed(d, ef, nf / 2);
    fe_stream_dec_feed(d, eg, ng);
    assert_int_equal(s->count, 1);
    assert_frame(s, 0, g, sizeof(g));
    assert_int_equal(d->stats.crc_errors, 1);

    /* Cut right after an escape byte: 0x7D then a flag is an abort. */
    const uint8_t cut[] = {0x7E, 0x10, 0x20, 0x7D};
    fe_stream_dec_feed(d, cut, sizeof(cut));
    fe_stream_dec_feed(d, eg, ng);
    assert_int_equal(s->count, 2);
    assert_frame(s, 1, g, sizeof(g));
    assert_int_equal(d->stats.aborted, 1);

    /* A reset (say, after a reconnect) forgets the stump; the rest of a frame
     * without its opening flag is skipped, and the next frame arrives. */
    fe_stream_dec_feed(d, ef, nf / 2);
    fe_stream_dec_reset(d);
    uint64_t skipped = d->stats.skipped;
    fe_stream_dec_feed(d, ef + nf / 2, nf - nf / 2 - 1); /* not the closing flag */
    assert_int_equal(d->stats.skipped, skipped + (nf - nf / 2 - 1));
    fe_stream_dec_feed(d, eg, ng);
    assert_int_equal(s->count, 3);
    assert_frame(s, 2, g, sizeof(g));
    free(d);
    seen_del(s);
}

static void test_invalid_escape_aborts(void **state)
{
    (void)state;
    seen *s = seen_new();
    fe_stream_dec *d = dec_new(FE_FRAME_MAX, s);
    const uint8_t g[] = "after";
    uint8_t eg[FE_STREAM_ENCODED_MAX(sizeof(g))];
    size_t ng = encode_ok(eg, sizeof(eg), g, sizeof(g));

    /* 0x7D 0x41 is not a valid escape: the frame is dropped and the bytes up
     * to the next flag are skipped. */
    const uint8_t bad[] = {0x7E, 0x01, 0x02, 0x7D, 0x41, 0x03, 0x04};
    fe_stream_dec_feed(d, bad, sizeof(bad));
    assert_int_equal(d->stats.aborted, 1);
    assert_int_equal(d->stats.skipped, 2);
    fe_stream_dec_feed(d, eg, ng);
    assert_int_equal(s->count, 1);
    assert_frame(s, 0, g, sizeof(g));
    assert_int_equal(d->stats.crc_errors, 0);
    free(d);
    seen_del(s);
}

static void test_concatenated_frames_one_feed(void **state)
{
    (void)state;
    seen *s = seen_new();
    fe_stream_dec *d = dec_new(FE_FRAME_MAX, s);
    enum { N = 100 };
    static uint8_t frames[N][120];
    size_t lens[N];
    static uint8_t buf[N * FE_STREAM_ENCODED_MAX(120)];
    size_t n = 0;
    rng_seed(99);
    for (int i = 0; i < N; i++) {
        lens[i] = rng_range(1, 120);
        rng_fill(frames[i], lens[i]);
        size_t k = encode_ok(buf + n, sizeof(buf) - n, frames[i], lens[i]);
        /* Odd frames share the previous frame's closing flag, as a sender
         * that elides the duplicate flag would. */
        if (i % 2 == 1) {
            memmove(buf + n, buf + n + 1, k - 1);
            k--;
        }
        n += k;
    }
    assert_int_equal(fe_stream_dec_feed(d, buf, n), n);
    assert_int_equal(s->count, N);
    for (int i = 0; i < N; i++)
        assert_frame(s, (size_t)i, frames[i], lens[i]);
    assert_int_equal(error_total(d), 0);
    free(d);
    seen_del(s);
}

static void test_oversize_dropped_until_next_flag(void **state)
{
    (void)state;
    seen *s = seen_new();
    fe_stream_dec *d = dec_new(100, s);
    uint8_t f[101];
    uint8_t enc[FE_STREAM_ENCODED_MAX(101)];
    rng_seed(21);
    rng_fill(f, sizeof(f));

    size_t n = encode_ok(enc, sizeof(enc), f, 101);
    fe_stream_dec_feed(d, enc, n);
    assert_int_equal(s->count, 0);
    assert_int_equal(d->stats.oversize, 1);

    /* Exactly max_frame still fits. */
    n = encode_ok(enc, sizeof(enc), f, 100);
    fe_stream_dec_feed(d, enc, n);
    assert_int_equal(s->count, 1);
    assert_frame(s, 0, f, 100);

    /* A long run without any flag never overflows: one oversize, and the
     * bytes after it are skipped while hunting. */
    static uint8_t flood[5000];
    memset(flood, 0x55, sizeof(flood));
    flood[0] = 0x7E;
    fe_stream_dec_feed(d, flood, sizeof(flood));
    assert_int_equal(d->stats.oversize, 2);
    assert_int_equal(d->stats.skipped, sizeof(flood) - 1 - 102 - 1);
    n = encode_ok(enc, sizeof(enc), f, 50);
    fe_stream_dec_feed(d, enc, n);
    assert_int_equal(s->count, 2);
    assert_frame(s, 1, f, 50);
    free(d);
    seen_del(s);
}

/* 1 MiB of random noise cut into bursts, with good frames in between, fed in
 * random-sized pieces. Every good frame is delivered in order; noise may, in
 * rare cases, form a frame that passes the CRC, so extra frames are allowed
 * but must be rare. */
static void test_random_noise_with_good_frames(void **state)
{
    (void)state;
    enum { NOISE_TOTAL = 1 << 20, GOOD = 600 };
    seen *s = seen_new();
    fe_stream_dec *d = dec_new(FE_FRAME_MAX, s);
    size_t cap = NOISE_TOTAL + GOOD * FE_STREAM_ENCODED_MAX(FE_FRAME_MAX);
    uint8_t *stream = malloc(cap);
    assert_non_null(stream);
    static uint8_t frame[FE_FRAME_MAX];

    rng_seed(0xFE44);
    size_t n = 0, noise_left = NOISE_TOTAL;
    for (uint32_t g = 0; g < GOOD; g++) {
        size_t burst = g + 1 == GOOD ? noise_left : rng_range(0, 2 * NOISE_TOTAL / GOOD);
        if (burst > noise_left)
            burst = noise_left;
        rng_fill(stream + n, burst);
        n += burst;
        noise_left -= burst;
        /* Good frames carry a marker and their sequence number. */
        size_t len = rng_range(8, FE_FRAME_MAX);
        rng_fill(frame, len);
        memcpy(frame, "GOOD", 4);
        memcpy(frame + 4, &g, sizeof(g));
        n += encode_ok(stream + n, cap - n, frame, len);
    }
    assert_int_equal(noise_left, 0);

    for (size_t off = 0; off < n;) {
        size_t chunk = rng_range(1, 4096);
        if (chunk > n - off)
            chunk = n - off;
        assert_int_equal(fe_stream_dec_feed(d, stream + off, chunk), chunk);
        off += chunk;
    }

    uint32_t next = 0;
    size_t spurious = 0;
    for (size_t i = 0; i < s->count; i++) {
        uint32_t g;
        if (s->lens[i] >= 8 && memcmp(s->data[i], "GOOD", 4) == 0) {
            memcpy(&g, s->data[i] + 4, sizeof(g));
            assert_int_equal(g, next);
            next++;
        } else {
            spurious++;
        }
    }
    assert_int_equal(next, GOOD);
    assert_true(spurious < 8);
    assert_true(d->stats.crc_errors + d->stats.runts > 1000);
    assert_int_equal(d->stats.frames_ok, s->count);
    free(stream);
    free(d);
    seen_del(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc_check_value),
        cmocka_unit_test(test_crc_matches_bitwise_reference),
        cmocka_unit_test(test_encode_layout),
        cmocka_unit_test(test_encode_bounds),
        cmocka_unit_test(test_init_rejects_bad_arguments),
        cmocka_unit_test(test_round_trip_every_byte_value),
        cmocka_unit_test(test_byte_at_a_time),
        cmocka_unit_test(test_garbage_before_and_between_frames),
        cmocka_unit_test(test_idle_flags_and_runts),
        cmocka_unit_test(test_bit_flips_are_caught),
        cmocka_unit_test(test_truncated_then_good),
        cmocka_unit_test(test_invalid_escape_aborts),
        cmocka_unit_test(test_concatenated_frames_one_feed),
        cmocka_unit_test(test_oversize_dropped_until_next_flag),
        cmocka_unit_test(test_random_noise_with_good_frames),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
