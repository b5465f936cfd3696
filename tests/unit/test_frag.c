/* Unit tests for core/frag.c: fragment layout, round trips over many MTUs and
 * arrival orders, every reject path, slot bounds and a mutation loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "frag.h"
#include "wire.h"

static uint64_t rng_next(uint64_t *s)
{
    /* splitmix64 with fixed seeds: every run is the same run */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void fill(uint8_t *buf, size_t len, uint64_t seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)rng_next(&seed);
}

/* All fragments of one frame. */
typedef struct frags {
    size_t n;
    uint8_t b[FE_FRAG_MAX_COUNT][FE_FRAG_HDR_BYTES + FE_FRAME_MAX];
    size_t len[FE_FRAG_MAX_COUNT];
} frags;

static void split(frags *f, const uint8_t *frame, size_t len, size_t mtu)
{
    f->n = fe_frag_count(len, mtu);
    assert_true(f->n >= 2 && f->n <= FE_FRAG_MAX_COUNT);
    for (unsigned i = 0; i < f->n; i++) {
        ptrdiff_t k = fe_frag_make(f->b[i], sizeof(f->b[i]), frame, len, mtu, i);
        assert_true(k > FE_FRAG_HDR_BYTES && (size_t)k <= mtu);
        f->len[i] = (size_t)k;
    }
}

static fe_reasm *new_reasm(uint64_t timeout_ms)
{
    fe_reasm *r = malloc(sizeof(*r));
    assert_non_null(r);
    fe_reasm_init(r, timeout_ms);
    return r;
}

/* Feed f in the order given (or 0..n-1); the frame must complete exactly on
 * the last fragment and equal frame. */
static void feed_all(fe_reasm *r, uint32_t link, const frags *f, const unsigned *order,
                     const uint8_t *frame, size_t len)
{
    for (size_t k = 0; k < f->n; k++) {
        unsigned i = order ? order[k] : (unsigned)k;
        const uint8_t *out = NULL;
        size_t out_len = 0;
        int rc = fe_reasm_feed(r, link, f->b[i], f->len[i], 1000, &out, &out_len);
        if (k + 1 < f->n) {
            assert_int_equal(rc, 0);
        } else {
            assert_int_equal(rc, 1);
            assert_int_equal(out_len, len);
            assert_memory_equal(out, frame, len);
        }
    }
}

/* --- counting and layout --- */

static void test_count(void **state)
{
    (void)state;
    assert_int_equal(fe_frag_count(0, 32), 1);
    assert_int_equal(fe_frag_count(32, 32), 1);
    assert_int_equal(fe_frag_count(33, 32), 2); /* chunk 25: 25 + 8 */
    assert_int_equal(fe_frag_count(50, 32), 2);
    assert_int_equal(fe_frag_count(51, 32), 3);
    assert_int_equal(fe_frag_count(1400, 32), 56);
    assert_int_equal(fe_frag_count(1400, 255), 6); /* chunk 248 */
    assert_int_equal(fe_frag_count(1400, 1400), 1);
    assert_int_equal(fe_frag_count(1400, 29), 64); /* chunk 22: 63.6 -> 64 */
    assert_int_equal(fe_frag_count(1400, 28), 0);  /* chunk 21: would need 67 */
    assert_int_equal(fe_frag_count(1344, 28), 64); /* exactly 64 * 21 */
    assert_int_equal(fe_frag_count(1345, 28), 0);
    assert_int_equal(fe_frag_count(1401, 2000), 0); /* bigger than any frame */
    assert_int_equal(fe_frag_count(10, 7), 0);      /* no room for payload */
    assert_int_equal(fe_frag_count(10, 8), 10);     /* one byte per fragment */
    assert_int_equal(fe_frag_count(100, 8), 0);
    assert_int_equal(fe_frag_count(SIZE_MAX, SIZE_MAX), 0);
}

static void test_layout(void **state)
{
    (void)state;
    uint8_t frame[100];
    fill(frame, sizeof(frame), 1);
    /* the key is the first 4 bytes, big-endian, of unkeyed BLAKE2b-256 */
    uint8_t h[32];
    crypto_generichash(h, sizeof(h), frame, sizeof(frame), NULL, 0);
    uint32_t want_key =
        ((uint32_t)h[0] << 24) | ((uint32_t)h[1] << 16) | ((uint32_t)h[2] << 8) | h[3];
    assert_int_equal(fe_frag_key(frame, sizeof(frame)), want_key);

    /* mtu 40: chunk 33, so 100 bytes go as 33 + 33 + 33 + 1 */
    assert_int_equal(fe_frag_count(sizeof(frame), 40), 4);
    uint8_t out[64];
    size_t sizes[4] = {40, 40, 40, 8};
    for (unsigned i = 0; i < 4; i++) {
        ptrdiff_t k = fe_frag_make(out, sizeof(out), frame, sizeof(frame), 40, i);
        assert_int_equal(k, sizes[i]);
        assert_int_equal(out[0], (1u << 6) | (6u << 3)); /* v1, FE_T_FRAG, no flags */
        assert_int_equal(out[0], 0x70);
        assert_int_equal(out[1], i);
        assert_int_equal(out[2], 4);
        assert_int_equal(fe_get_be32(out + 3), want_key);
        assert_memory_equal(out + 7, frame + 33 * i, (size_t)k - 7);
    }

    /* errors: index out of range, frame that fits, too small an output, NULL */
    assert_int_equal(fe_frag_make(out, sizeof(out), frame, sizeof(frame), 40, 4), FE_ERR_INVALID);
    assert_int_equal(fe_frag_make(out, sizeof(out), frame, 40, 40, 0), FE_ERR_INVALID);
    assert_int_equal(fe_frag_make(out, 39, frame, sizeof(frame), 40, 0), FE_ERR_INVALID);
    assert_int_equal(fe_frag_make(out, 8, frame, sizeof(frame), 40, 3), 8); /* last fits */
    assert_int_equal(fe_frag_make(NULL, 64, frame, sizeof(frame), 40, 0), FE_ERR_INVALID);
    assert_int_equal(fe_frag_make(out, 64, NULL, sizeof(frame), 40, 0), FE_ERR_INVALID);
    assert_int_equal(fe_frag_make(out, 64, frame, 1401, 40, 0), FE_ERR_INVALID);
}

/* --- round trips --- */

static void shuffle(unsigned *a, size_t n, uint64_t *seed)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(rng_next(seed) % i);
        unsigned t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

static void test_round_trips(void **state)
{
    (void)state;
    static const size_t mtus[] = {29, 32, 40, 58, 64, 100, 200, 240, 255, 256, 512, 1000};
    static frags f;
    static uint8_t frame[FE_FRAME_MAX];
    fe_reasm *r = new_reasm(FE_REASM_TIMEOUT_MS);
    uint64_t seed = 99;
    size_t trips = 0;
    for (size_t m = 0; m < sizeof(mtus) / sizeof(mtus[0]); m++) {
        size_t mtu = mtus[m];
        size_t chunk = mtu - FE_FRAG_HDR_BYTES;
        /* edges around mtu and chunk multiples, then a sweep up to FE_FRAME_MAX */
        size_t lens[64];
        size_t nl = 0;
        lens[nl++] = mtu + 1;
        lens[nl++] = 2 * chunk;
        lens[nl++] = 2 * chunk + 1;
        lens[nl++] = 3 * chunk - 1;
        lens[nl++] = FE_FRAME_MAX;
        lens[nl++] = FE_FRAME_MAX - 1;
        for (size_t l = mtu + 2; l < FE_FRAME_MAX && nl < 64; l += 37)
            lens[nl++] = l;
        for (size_t k = 0; k < nl; k++) {
            size_t len = lens[k];
            if (len > FE_FRAME_MAX || fe_frag_count(len, mtu) < 2)
                continue;
            fill(frame, len, seed++);
            split(&f, frame, len, mtu);
            /* all but the last carry exactly chunk bytes, the last 1..chunk */
            for (size_t i = 0; i + 1 < f.n; i++)
                assert_int_equal(f.len[i], mtu);
            assert_true(f.len[f.n - 1] > FE_FRAG_HDR_BYTES && f.len[f.n - 1] <= mtu);
            unsigned order[FE_FRAG_MAX_COUNT];
            /* reverse first (last one first), while the slot buffers still
             * hold the previous frame, so stale bytes cannot pass for new */
            for (unsigned i = 0; i < f.n; i++)
                order[i] = (unsigned)(f.n - 1 - i);
            feed_all(r, 1, &f, order, frame, len);
            for (unsigned i = 0; i < f.n; i++)
                order[i] = i;
            shuffle(order, f.n, &seed);
            feed_all(r, 1, &f, order, frame, len);
            feed_all(r, 1, &f, NULL, frame, len);
            assert_int_equal(fe_reasm_in_use(r), 0);
            trips += 3;
        }
    }
    assert_true(trips > 300);
    assert_int_equal(r->rejected, 0);
    assert_int_equal(r->evicted, 0);
    free(r);
}

static void test_duplicates(void **state)
{
    (void)state;
    static frags f;
    uint8_t frame[500];
    fill(frame, sizeof(frame), 5);
    split(&f, frame, sizeof(frame), 64);
    fe_reasm *r = new_reasm(FE_REASM_TIMEOUT_MS);
    const uint8_t *out;
    size_t out_len;
    int completions = 0;
    /* every fragment twice, the last one three times before the others */
    size_t last = f.n - 1;
    for (int k = 0; k < 3; k++)
        assert_int_equal(fe_reasm_feed(r, 1, f.b[last], f.len[last], 0, &out, &out_len), 0);
    for (size_t i = 0; i < last; i++) {
        for (int k = 0; k < 2; k++) {
            int rc = fe_reasm_feed(r, 1, f.b[i], f.len[i], 0, &out, &out_len);
            assert_true(rc == 0 || rc == 1);
            if (rc == 1) {
                completions++;
                assert_int_equal(i, last - 1);
                assert_int_equal(k, 0);
                assert_memory_equal(out, frame, sizeof(frame));
            }
        }
    }
    assert_int_equal(completions, 1);
    assert_int_equal(r->rejected, 0);
    /* the late duplicate of the last index opened a new, harmless slot */
    assert_int_equal(fe_reasm_in_use(r), 1);
    free(r);
}

static void test_interleaved(void **state)
{
    (void)state;
    static frags fa, fb;
    uint8_t a[700], b[900];
    fill(a, sizeof(a), 11);
    fill(b, sizeof(b), 12);
    split(&fa, a, sizeof(a), 58);
    split(&fb, b, sizeof(b), 58);
    fe_reasm *r = new_reasm(FE_REASM_TIMEOUT_MS);
    const uint8_t *out;
    size_t out_len;
    /* frame a on links 1 and 2, frame b on link 1, fragments alternating */
    int done_a1 = 0, done_a2 = 0, done_b = 0;
    size_t nmax = fa.n > fb.n ? fa.n : fb.n;
    for (size_t i = 0; i < nmax; i++) {
        if (i < fa.n) {
            int rc = fe_reasm_feed(r, 1, fa.b[i], fa.len[i], 0, &out, &out_len);
            if (rc == 1) {
                assert_int_equal(out_len, sizeof(a));
                assert_memory_equal(out, a, sizeof(a));
                done_a1++;
            } else {
                assert_int_equal(rc, 0);
            }
            /* link 2 sees a's fragments in reverse */
            size_t j = fa.n - 1 - i;
            rc = fe_reasm_feed(r, 2, fa.b[j], fa.len[j], 0, &out, &out_len);
            if (rc == 1) {
                assert_memory_equal(out, a, sizeof(a));
                done_a2++;
            } else {
                assert_int_equal(rc, 0);
            }
        }
        if (i < fb.n) {
            int rc = fe_reasm_feed(r, 1, fb.b[i], fb.len[i], 0, &out, &out_len);
            if (rc == 1) {
                assert_int_equal(out_len, sizeof(b));
                assert_memory_equal(out, b, sizeof(b));
                done_b++;
            } else {
                assert_int_equal(rc, 0);
            }
        }
        if (i == 3)
            assert_int_equal(fe_reasm_in_use(r), 3);
    }
    assert_int_equal(done_a1, 1);
    assert_int_equal(done_a2, 1);
    assert_int_equal(done_b, 1);
    assert_int_equal(fe_reasm_in_use(r), 0);
    free(r);
}

/* --- rejects --- */

static void test_corrupted_payload(void **state)
{
    (void)state;
    static frags f;
    uint8_t frame[300];
    fill(frame, sizeof(frame), 21);
    split(&f, frame, sizeof(frame), 100);
    f.b[1][FE_FRAG_HDR_BYTES + 10] ^= 0x01;
    fe_reasm *r = new_reasm(FE_REASM_TIMEOUT_MS);
    const uint8_t *out = NULL;
    size_t out_len = 0;
    for (size_t i = 0; i + 1 < f.n; i++)
        assert_int_equal(fe_reasm_feed(r, 1, f.b[i], f.len[i], 0, &out, &out_len), 0);
    size_t l = f.n - 1;
    assert_int_equal(fe_reasm_feed(r, 1, f.b[l], f.len[l], 0, &out, &out_len), FE_ERR_MALFORMED);
    assert_null(out);
    assert_int_equal(r->rejected, 1);
    assert_int_equal(fe_reasm_in_use(r), 0); /* the slot is freed */

    /* after the bad piece is gone, a clean copy reassembles */
    f.b[1][FE_FRAG_HDR_BYTES + 10] ^= 0x01;
    feed_all(r, 1, &f, NULL, frame, sizeof(frame));
    free(r);
}

static int feed1(fe_reasm *r, uint32_t link, const uint8_t *b, size_t len)
{
    const uint8_t *out;
    size_t out_len;
    return fe_reasm_feed(r, link, b, len, 0, &out, &out_len);
}

/* A hand-made fragment: header fields as given, payload plen bytes of 0xaa. */
static size_t mk(uint8_t *b, uint8_t type, uint8_t index, uint8_t count, uint32_t key, size_t plen)
{
    b[0] = type;
    b[1] = index;
    b[2] = count;
    fe_put_be32(b + 3, key);
    memset(b + FE_FRAG_HDR_BYTES, 0xaa, plen);
    return FE_FRAG_HDR_BYTES + plen;
}

static void test_malformed(void **state)
{
    (void)state;
    fe_reasm *r = new_reasm(FE_REASM_TIMEOUT_MS);
    static uint8_t b[FE_FRAG_HDR_BYTES + FE_FRAME_MAX + 8];
    const uint8_t T = fe_wire_type_byte(FE_T_FRAG, 0);
    uint64_t rej = 0;
#define BAD(expr)                                                                                  \
    do {                                                                                           \
        assert_int_equal((expr), FE_ERR_MALFORMED);                                                \
        assert_int_equal(r->rejected, ++rej);                                                      \
        assert_int_equal(fe_reasm_in_use(r), 0);                                                   \
    } while (0)

    /* truncated: header only, shorter than a header, empty */
    BAD(feed1(r, 1, b, mk(b, T, 0, 2, 1, 0)));
    BAD(feed1(r, 1, b, 3));
    BAD(feed1(r, 1, b, 0));
    /* type byte: other type, flags set, other version */
    BAD(feed1(r, 1, b, mk(b, fe_wire_type_byte(FE_T_DM, 0), 0, 2, 1, 10)));
    BAD(feed1(r, 1, b, mk(b, fe_wire_type_byte(FE_T_FRAG, 1), 0, 2, 1, 10)));
    BAD(feed1(r, 1, b, mk(b, (uint8_t)((2u << 6) | (6u << 3)), 0, 2, 1, 10)));
    /* count 0, 1, 65; index >= count */
    BAD(feed1(r, 1, b, mk(b, T, 0, 0, 1, 10)));
    BAD(feed1(r, 1, b, mk(b, T, 0, 1, 1, 10)));
    BAD(feed1(r, 1, b, mk(b, T, 0, 65, 1, 10)));
    BAD(feed1(r, 1, b, mk(b, T, 2, 2, 1, 10)));
    BAD(feed1(r, 1, b, mk(b, T, 255, 64, 1, 10)));
    /* fragment bombs: declared sizes beyond FE_FRAME_MAX never reach a slot */
    BAD(feed1(r, 1, b, mk(b, T, 0, 64, 1, 100))); /* 63 * 100 + 1 > 1400 */
    BAD(feed1(r, 1, b, mk(b, T, 0, 2, 1, 1400))); /* 1400 + 1 > 1400 */
    BAD(feed1(r, 1, b, mk(b, T, 63, 64, 1, 22))); /* last: 64 * 22 > 1400 */
    BAD(feed1(r, 1, b, mk(b, T, 1, 2, 1, 701)));  /* last: 2 * 701 > 1400 */
    BAD(feed1(r, 1, b, mk(b, T, 1, 2, 1, FE_FRAME_MAX + 1)));
    assert_int_equal(r->evicted, 0);

    /* the largest legal shapes are accepted */
    assert_int_equal(feed1(r, 1, b, mk(b, T, 0, 2, 7, 1399)), 0);
    assert_int_equal(feed1(r, 1, b, mk(b, T, 62, 64, 8, 22)), 0);
    assert_int_equal(fe_reasm_in_use(r), 2);
    fe_reasm_init(r, FE_REASM_TIMEOUT_MS);
    rej = 0;

    /* inconsistent chunk: the second non-last fragment is shorter */
    assert_int_equal(feed1(r, 1, b, mk(b, T, 0, 4, 9, 50)), 0);
    assert_int_equal(feed1(r, 1, b, mk(b, T, 1, 4, 9, 49)), FE_ERR_MALFORMED);
    assert_int_equal(feed1(r, 1, b, mk(b, T, 2, 4, 9, 51)), FE_ERR_MALFORMED);
    /* last longer than chunk */
    assert_int_equal(feed1(r, 1, b, mk(b, T, 3, 4, 9, 51)), FE_ERR_MALFORMED);
    /* count changes within one (link, key) */
    assert_int_equal(feed1(r, 1, b, mk(b, T, 1, 5, 9, 50)), FE_ERR_MALFORMED);
    assert_int_equal(r->rejected, 4);
    assert_int_equal(fe_reasm_in_use(r), 1);
    /* the same key on another link is another frame */
    assert_int_equal(feed1(r, 2, b, mk(b, T, 1, 5, 9, 50)), 0);
    assert_int_equal(fe_reasm_in_use(r), 2);

    /* last first, then a non-last whose chunk is smaller than the last */
    fe_reasm_init(r, FE_REASM_TIMEOUT_MS);
    assert_int_equal(feed1(r, 1, b, mk(b, T, 2, 3, 10, 40)), 0);
    assert_int_equal(feed1(r, 1, b, mk(b, T, 0, 3, 10, 39)), FE_ERR_MALFORMED);
    assert_int_equal(feed1(r, 1, b, mk(b, T, 0, 3, 10, 40)), 0);
    assert_int_equal(r->rejected, 1);

    /* bad arguments are a caller error, not counted */
    const uint8_t *out;
    size_t out_len;
    assert_int_equal(fe_reasm_feed(r, 1, NULL, 10, 0, &out, &out_len), FE_ERR_INVALID);
    assert_int_equal(fe_reasm_feed(r, 1, b, 10, 0, NULL, &out_len), FE_ERR_INVALID);
    assert_int_equal(r->rejected, 1);
#undef BAD
    free(r);
}

/* --- bounds in time and space --- */

static void test_slot_exhaustion(void **state)
{
    (void)state;
    static frags f[FE_REASM_SLOTS + 1];
    static uint8_t frame[FE_REASM_SLOTS + 1][200];
    fe_reasm *r = new_reasm(FE_REASM_TIMEOUT_MS);
    const uint8_t *out;
    size_t out_len;
    /* one fragment each of 17 frames, at times 0..16: the 17th evicts frame 0 */
    for (size_t k = 0; k <= FE_REASM_SLOTS; k++) {
        fill(frame[k], sizeof(frame[k]), 100 + k);
        split(&f[k], frame[k], sizeof(frame[k]), 64);
        assert_int_equal(fe_reasm_feed(r, 1, f[k].b[0], f[k].len[0], k, &out, &out_len), 0);
        assert_int_equal(fe_reasm_in_use(r), k < FE_REASM_SLOTS ? k + 1 : FE_REASM_SLOTS);
    }
    assert_int_equal(r->evicted, 1);
    /* frame 1 (still held) completes */
    for (size_t i = 1; i < f[1].n; i++) {
        int rc = fe_reasm_feed(r, 1, f[1].b[i], f[1].len[i], 20, &out, &out_len);
        assert_int_equal(rc, i + 1 == f[1].n ? 1 : 0);
    }
    assert_memory_equal(out, frame[1], sizeof(frame[1]));
    /* frame 0 lost its first fragment: the rest does not complete it */
    for (size_t i = 1; i < f[0].n; i++)
        assert_int_equal(fe_reasm_feed(r, 1, f[0].b[i], f[0].len[i], 30, &out, &out_len), 0);
    assert_int_equal(fe_reasm_in_use(r), FE_REASM_SLOTS);
    assert_int_equal(r->evicted, 1); /* frame 1's slot had been freed for it */
    free(r);
}

static void test_timeout(void **state)
{
    (void)state;
    static frags f;
    uint8_t frame[400];
    fill(frame, sizeof(frame), 31);
    split(&f, frame, sizeof(frame), 100);
    fe_reasm *r = new_reasm(5000);
    const uint8_t *out;
    size_t out_len;
    assert_int_equal(fe_reasm_next_deadline(r), UINT64_MAX);
    assert_int_equal(fe_reasm_feed(r, 1, f.b[0], f.len[0], 1000, &out, &out_len), 0);
    assert_int_equal(fe_reasm_next_deadline(r), 6000);
    assert_int_equal(fe_reasm_feed(r, 2, f.b[0], f.len[0], 2000, &out, &out_len), 0);
    assert_int_equal(fe_reasm_next_deadline(r), 6000);
    fe_reasm_expire(r, 5999);
    assert_int_equal(fe_reasm_in_use(r), 2);
    fe_reasm_expire(r, 6000);
    assert_int_equal(fe_reasm_in_use(r), 1);
    assert_int_equal(r->evicted, 1);
    assert_int_equal(fe_reasm_next_deadline(r), 7000);
    /* the rest of the frame on link 1 arrives too late to complete it */
    for (size_t i = 1; i < f.n; i++)
        assert_int_equal(fe_reasm_feed(r, 1, f.b[i], f.len[i], 6500, &out, &out_len), 0);
    /* link 2's copy times out inside feed itself, without a call to expire */
    assert_int_equal(fe_reasm_feed(r, 2, f.b[1], f.len[1], 7000, &out, &out_len), 0);
    assert_int_equal(r->evicted, 2);
    fe_reasm_expire(r, UINT64_MAX);
    assert_int_equal(fe_reasm_in_use(r), 0);
    assert_int_equal(fe_reasm_next_deadline(r), UINT64_MAX);
    free(r);
}

/* --- random mutations --- */

/* Mutate fragment b of *len bytes in one of five ways, 5 times in 24; else
 * leave it intact. */
static void mutate(uint8_t *b, size_t *len, uint64_t x)
{
    switch (x % 24) {
    case 0: /* flip a byte anywhere, header included */
        b[(x >> 8) % *len] ^= (uint8_t)(1 + (x >> 40) % 255);
        break;
    case 1: /* truncate */
        *len = (x >> 8) % (*len + 1);
        break;
    case 2: /* extend with junk */
        for (size_t e = 0, n = 1 + (x >> 8) % 16; e < n; e++)
            b[(*len)++] = (uint8_t)(x >> (8 * (e % 8)));
        break;
    case 3: /* rewrite one header field byte */
        b[1 + (x >> 8) % 6] = (uint8_t)(x >> 32);
        break;
    case 4: /* random bytes behind a valid type byte */
        *len = FE_FRAG_HDR_BYTES + 1 + (x >> 8) % 300;
        fill(b + 1, *len - 1, x);
        break;
    default: /* intact, so that frames complete among the noise */
        break;
    }
}

/* 200k fragments from a fixed seed: frames sent whole in shuffled order on
 * one of three links, with mutated, junk and duplicated fragments mixed in.
 * Nothing may crash, and a completed frame must carry the key it was
 * announced under (and in practice be one of the frames sent). */
static void test_mutations(void **state)
{
    (void)state;
    enum { FRAMES = 8, ITER = 200000 };
    static uint8_t frame[FRAMES][FE_FRAME_MAX];
    static size_t flen[FRAMES];
    static const size_t mtus[] = {32, 58, 64, 200, 255};
    static frags f[FRAMES];
    uint64_t seed = 2024;
    for (size_t k = 0; k < FRAMES; k++) {
        flen[k] = 256 + (size_t)(rng_next(&seed) % (FE_FRAME_MAX - 255));
        fill(frame[k], flen[k], seed + k);
        split(&f[k], frame[k], flen[k], mtus[k % 5]);
    }
    fe_reasm *r = new_reasm(2000);
    static uint8_t b[FE_FRAG_HDR_BYTES + FE_FRAME_MAX + 32];
    uint64_t now = 0;
    size_t fed = 0, completed = 0, intact = 0;
    while (fed < ITER) {
        size_t k = (size_t)(rng_next(&seed) % FRAMES);
        uint32_t link = (uint32_t)(rng_next(&seed) % 3);
        unsigned order[FE_FRAG_MAX_COUNT];
        for (unsigned i = 0; i < f[k].n; i++)
            order[i] = i;
        shuffle(order, f[k].n, &seed);
        for (size_t j = 0; j < f[k].n && fed < ITER; j++, fed++) {
            uint64_t x = rng_next(&seed);
            /* now and then a duplicate of an earlier fragment of this frame */
            unsigned i = (x % 16 == 0 && j > 0) ? order[(x >> 4) % j] : order[j];
            size_t len = f[k].len[i];
            memcpy(b, f[k].b[i], len);
            mutate(b, &len, rng_next(&seed));
            now += x >> 62; /* 0..3 ms per fragment */
            const uint8_t *out = NULL;
            size_t out_len = 0;
            int rc = fe_reasm_feed(r, link, b, len, now, &out, &out_len);
            assert_true(rc == 0 || rc == 1 || rc == FE_ERR_MALFORMED);
            assert_true(fe_reasm_in_use(r) <= FE_REASM_SLOTS);
            if (rc != 1)
                continue;
            completed++;
            assert_true(out_len >= 1 && out_len <= FE_FRAME_MAX);
            assert_true(len >= FE_FRAG_HDR_BYTES);
            /* never a frame whose key is not the one its fragments named */
            assert_int_equal(fe_frag_key(out, out_len), fe_get_be32(b + 3));
            for (size_t q = 0; q < FRAMES; q++)
                if (out_len == flen[q] && memcmp(out, frame[q], out_len) == 0)
                    intact++;
        }
    }
    /* the loop did real work: frames got through and junk got rejected */
    assert_true(completed > 500);
    assert_int_equal(intact, completed);
    assert_true(r->rejected > ITER / 20);
    free(r);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_count),       cmocka_unit_test(test_layout),
        cmocka_unit_test(test_round_trips), cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_interleaved), cmocka_unit_test(test_corrupted_payload),
        cmocka_unit_test(test_malformed),   cmocka_unit_test(test_slot_exhaustion),
        cmocka_unit_test(test_timeout),     cmocka_unit_test(test_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
