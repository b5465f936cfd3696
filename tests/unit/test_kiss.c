/* Tests of transports/kiss.c: encoding, the push parser, and line noise. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kiss.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

#define REC_MAX 4096
typedef struct rec {
    size_t count;
    size_t len[REC_MAX];
    uint8_t *data[REC_MAX];
} rec;

static void on_frame(void *ctx, const uint8_t *f, size_t len)
{
    rec *r = ctx;
    assert_true(len > 0);
    if (r->count < REC_MAX) {
        r->data[r->count] = malloc(len);
        assert_non_null(r->data[r->count]);
        memcpy(r->data[r->count], f, len);
        r->len[r->count] = len;
    }
    r->count++;
}

/* FNV-1a: frames carry it in their last 4 bytes, so a damaged frame that
 * happens to keep a valid-looking number is still told apart. */
static uint32_t fnv(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

static void rec_free(rec *r)
{
    for (size_t i = 0; i < r->count && i < REC_MAX; i++)
        free(r->data[i]);
    memset(r, 0, sizeof(*r));
}

static void test_encode_vector(void **state)
{
    (void)state;
    const uint8_t frame[] = {0x01, 0xC0, 0xDB, 0x02, 0xDC, 0xDD};
    const uint8_t want[] = {0xC0, 0x00, 0x01, 0xDB, 0xDC, 0xDB, 0xDD, 0x02, 0xDC, 0xDD, 0xC0};
    uint8_t out[32];
    ptrdiff_t n = fe_kiss_encode(out, sizeof(out), frame, sizeof(frame));
    assert_int_equal(n, sizeof(want));
    assert_memory_equal(out, want, sizeof(want));
    /* Exactly enough room works, one byte less is refused and untouched. */
    memset(out, 0xAA, sizeof(out));
    assert_int_equal(fe_kiss_encode(out, sizeof(want) - 1, frame, sizeof(frame)), FE_ERR_TOOBIG);
    assert_int_equal(out[0], 0xAA);
    assert_int_equal(fe_kiss_encode(out, sizeof(want), frame, sizeof(frame)), sizeof(want));
    assert_int_equal(fe_kiss_encode(out, sizeof(out), frame, 0), FE_ERR_INVALID);
    assert_int_equal(fe_kiss_encode(out, sizeof(out), NULL, 3), FE_ERR_INVALID);
    static uint8_t big[FE_FRAME_MAX + 1];
    static uint8_t bigout[FE_KISS_ENCODED_MAX(FE_FRAME_MAX + 1)];
    assert_int_equal(fe_kiss_encode(bigout, sizeof(bigout), big, sizeof(big)), FE_ERR_TOOBIG);
    /* The worst case is the bound. */
    memset(big, 0xC0, FE_FRAME_MAX);
    assert_int_equal(fe_kiss_encode(bigout, sizeof(bigout), big, FE_FRAME_MAX),
                     FE_KISS_ENCODED_MAX(FE_FRAME_MAX));
}

static void test_roundtrip_any_split(void **state)
{
    (void)state;
    static uint8_t stream[64 * FE_KISS_ENCODED_MAX(200)];
    static uint8_t frames[64][200];
    size_t lens[64], n = 0;
    for (size_t i = 0; i < 64; i++) {
        lens[i] = 1 + rnd() % 200;
        for (size_t k = 0; k < lens[i]; k++) /* plenty of specials */
            frames[i][k] = (uint8_t)(rnd() % 4 == 0 ? (rnd() & 1 ? 0xC0 : 0xDB) : rnd());
        ptrdiff_t e = fe_kiss_encode(stream + n, sizeof(stream) - n, frames[i], lens[i]);
        assert_true(e > 0);
        n += (size_t)e;
    }
    /* Feed in chunks of every size from 1 to 37 bytes. */
    for (size_t chunk = 1; chunk <= 37; chunk += 6) {
        rec r = {0};
        fe_kiss_dec d;
        assert_int_equal(fe_kiss_dec_init(&d, 200, on_frame, &r), 0);
        for (size_t off = 0; off < n; off += chunk) {
            size_t k = n - off < chunk ? n - off : chunk;
            assert_int_equal(fe_kiss_dec_feed(&d, stream + off, k), k);
        }
        assert_int_equal(r.count, 64);
        for (size_t i = 0; i < 64; i++) {
            assert_int_equal(r.len[i], lens[i]);
            assert_memory_equal(r.data[i], frames[i], lens[i]);
        }
        assert_int_equal(d.stats.frames_ok, 64);
        assert_int_equal(d.stats.skipped + d.stats.other + d.stats.bad_escape + d.stats.oversize,
                         0);
        rec_free(&r);
    }
}

static void test_decoder_rejects(void **state)
{
    (void)state;
    rec r = {0};
    fe_kiss_dec d;
    assert_int_equal(fe_kiss_dec_init(&d, 4, on_frame, &r), 0);
    const uint8_t in[] = {
        'x',  'y',                                         /* before any FEND: skipped */
        0xC0, 0xC0, 0xC0,                                  /* idle fill */
        0xC0, 0x01, 0x10, 0xC0,                            /* TXDELAY command: other */
        0xC0, 0x10, 0xAA, 0xC0,                            /* data on port 1: other */
        0xC0, 0x00, 0xC0,                                  /* no data: empty */
        0xC0, 0x00, 0xDB, 0x41, 0x42, 0xC0,                /* bad escape: dropped */
        0xC0, 0x00, 1,    2,    3,    4,    5,    6, 0xC0, /* 6 > 4 bytes: oversize */
        0xC0, 0x00, 0xDB, 0xC0,                   /* FESC FEND: bad escape, the FEND opens */
        0x00, 9,    8,    0xC0,                   /* ... this good frame */
        0xC0, 0x00, 1,    2,    3,    4,    0xC0, /* exactly max: delivered */
    };
    fe_kiss_dec_feed(&d, in, sizeof(in));
    /* "xy", then 'B' after the bad escape and the 6 after the oversize cut
     * (the 5 that overflowed counts as the oversize itself). */
    assert_int_equal(d.stats.skipped, 4);
    assert_int_equal(d.stats.other, 2);
    assert_int_equal(d.stats.empty, 1);
    assert_int_equal(d.stats.bad_escape, 2);
    assert_int_equal(d.stats.oversize, 1);
    assert_int_equal(d.stats.frames_ok, 2);
    assert_int_equal(r.count, 2);
    assert_int_equal(r.len[0], 2);
    assert_int_equal(r.data[0][0], 9);
    assert_int_equal(r.len[1], 4);
    /* After a reset the partial frame is forgotten. */
    const uint8_t part[] = {0xC0, 0x00, 7, 7};
    fe_kiss_dec_feed(&d, part, sizeof(part));
    fe_kiss_dec_reset(&d);
    const uint8_t rest[] = {7, 0xC0, 0x00, 5, 0xC0};
    fe_kiss_dec_feed(&d, rest, sizeof(rest));
    assert_int_equal(r.count, 3);
    assert_int_equal(r.len[2], 1);
    assert_int_equal(r.data[2][0], 5);
    rec_free(&r);
    assert_int_equal(fe_kiss_dec_init(&d, 0, on_frame, &r), FE_ERR_INVALID);
    assert_int_equal(fe_kiss_dec_init(&d, FE_FRAME_MAX + 1, on_frame, &r), FE_ERR_INVALID);
    assert_int_equal(fe_kiss_dec_init(&d, 10, NULL, &r), FE_ERR_INVALID);
}

/* Line noise: frames carry a sequence number; random bit flips, inserted
 * garbage, truncation and dropped delimiters hit some of them. Every frame
 * whose own bytes were not touched arrives intact, exactly once, in order;
 * nothing crashes and the damage is counted. */
static void test_line_noise(void **state)
{
    (void)state;
    enum { FRAMES = 2000, MAXLEN = 120 };
    size_t cap = FRAMES * (FE_KISS_ENCODED_MAX(MAXLEN) + 16);
    uint8_t *s = malloc(cap);
    uint8_t *hit = calloc(cap, 1);
    size_t *start = calloc(FRAMES, sizeof(size_t)), *end = calloc(FRAMES, sizeof(size_t));
    assert_non_null(s);
    assert_non_null(hit);
    size_t n = 0;
    for (uint32_t i = 0; i < FRAMES; i++) {
        uint8_t f[MAXLEN];
        size_t len = 8 + rnd() % (MAXLEN - 8);
        memcpy(f, &i, 4);
        for (size_t k = 4; k < len; k++)
            f[k] = (uint8_t)(rnd() % 8 == 0 ? 0xC0 : rnd());
        uint32_t h = fnv(f, len - 4);
        memcpy(f + len - 4, &h, 4);
        start[i] = n;
        ptrdiff_t e = fe_kiss_encode(s + n, cap - n, f, len);
        assert_true(e > 0);
        n += (size_t)e;
        end[i] = n;
        if (rnd() % 10 == 0) { /* garbage between frames */
            size_t g = 1 + rnd() % 12;
            for (size_t k = 0; k < g; k++) {
                hit[n] = 1;
                s[n++] = (uint8_t)rnd();
            }
        }
    }
    for (size_t k = 0; k < n; k++) {
        if (rnd() % 500 == 0) { /* bit flip */
            s[k] ^= (uint8_t)(1u << (rnd() % 8));
            hit[k] = 1;
        }
        if (rnd() % 3000 == 0) { /* a run of noise */
            for (size_t j = k; j < n && j < k + 20; j++) {
                s[j] = (uint8_t)rnd();
                hit[j] = 1;
            }
        }
    }
    rec r = {0};
    fe_kiss_dec d;
    assert_int_equal(fe_kiss_dec_init(&d, MAXLEN, on_frame, &r), 0);
    for (size_t off = 0; off < n;) { /* reads of random sizes */
        size_t k = 1 + rnd() % 300;
        if (k > n - off)
            k = n - off;
        fe_kiss_dec_feed(&d, s + off, k);
        off += k;
    }
    /* Which numbers arrived with a good checksum. */
    uint8_t *got = calloc(FRAMES, 1);
    size_t untouched = 0, intact = 0;
    for (size_t j = 0; j < r.count && j < REC_MAX; j++) {
        uint32_t id;
        if (r.len[j] < 8)
            continue;
        memcpy(&id, r.data[j], 4);
        uint32_t h;
        memcpy(&h, r.data[j] + r.len[j] - 4, 4);
        if (id < FRAMES && h == fnv(r.data[j], r.len[j] - 4)) {
            got[id]++;
            intact++;
        }
    }
    for (uint32_t i = 0; i < FRAMES; i++) {
        int clean = 1;
        for (size_t k = start[i]; k < end[i]; k++)
            clean = clean && !hit[k];
        if (clean) {
            untouched++;
            assert_int_equal(got[i], 1);
        }
    }
    assert_true(untouched > FRAMES / 2);
    assert_true(untouched < FRAMES); /* the noise did hit */
    assert_true(d.stats.bad_escape + d.stats.other + d.stats.oversize + d.stats.empty > 0);
    assert_true(r.count <= REC_MAX);
    assert_true(intact >= untouched);
    free(got);
    free(start);
    free(end);
    free(hit);
    free(s);
    rec_free(&r);
}

/* Random bytes only: nothing crashes, nothing oversize comes out. */
static void test_random_bytes(void **state)
{
    (void)state;
    rec r = {0};
    fe_kiss_dec d;
    assert_int_equal(fe_kiss_dec_init(&d, 64, on_frame, &r), 0);
    uint8_t buf[4096];
    for (int round = 0; round < 64; round++) {
        for (size_t k = 0; k < sizeof(buf); k++)
            buf[k] = (uint8_t)(rnd() % 5 == 0 ? 0xC0 : rnd());
        fe_kiss_dec_feed(&d, buf, sizeof(buf));
    }
    for (size_t j = 0; j < r.count && j < REC_MAX; j++)
        assert_true(r.len[j] >= 1 && r.len[j] <= 64);
    assert_int_equal(d.stats.frames_ok, r.count);
    rec_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_vector),   cmocka_unit_test(test_roundtrip_any_split),
        cmocka_unit_test(test_decoder_rejects), cmocka_unit_test(test_line_noise),
        cmocka_unit_test(test_random_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
