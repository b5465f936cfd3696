/* libFuzzer harness for the KISS decoder (transports/kiss.c).
 *
 * Input layout: byte 0 picks the decoder's max_frame, the rest is the byte
 * stream, fed in chunks whose sizes come from a PRNG seeded with a hash of
 * the input (so a given input always splits the same way).
 *
 * Properties checked, beyond "no crash, no sanitizer report":
 *   - every delivered frame is 1..max_frame bytes;
 *   - re-encoding a delivered frame and decoding it again yields exactly it;
 *   - frames_ok equals the number of callbacks;
 *   - feeding byte by byte gives the same frames as feeding in chunks;
 *   - the stream itself, taken as a frame, survives encode + decode. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kiss.h"

typedef struct check_ctx {
    size_t max_frame;
    size_t delivered;
    uint64_t digest; /* of the delivered frames, in order */
    fe_kiss_dec *again;
    const uint8_t *expect;
    size_t expect_len;
    size_t again_seen;
} check_ctx;

static uint64_t mix(uint64_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001B3ull;
    }
    return h ^ n;
}

static void on_again(void *vctx, const uint8_t *f, size_t len)
{
    check_ctx *c = vctx;
    if (len != c->expect_len || memcmp(f, c->expect, len) != 0)
        abort();
    c->again_seen++;
}

static void reencode_and_check(check_ctx *c, const uint8_t *f, size_t len)
{
    static uint8_t enc[FE_KISS_ENCODED_MAX(FE_FRAME_MAX)];
    ptrdiff_t n = fe_kiss_encode(enc, sizeof(enc), f, len);
    if (n <= 0 || (size_t)n > FE_KISS_ENCODED_MAX(len))
        abort();
    c->expect = f;
    c->expect_len = len;
    size_t before = c->again_seen;
    fe_kiss_dec_feed(c->again, enc, (size_t)n);
    if (c->again_seen != before + 1)
        abort();
}

static void on_frame(void *vctx, const uint8_t *f, size_t len)
{
    check_ctx *c = vctx;
    if (len == 0 || len > c->max_frame)
        abort();
    c->delivered++;
    c->digest = mix(c->digest, f, len);
    reencode_and_check(c, f, len);
}

static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fe_kiss_dec dec, again;
    if (size < 1)
        return 0;
    size_t max_frame = (data[0] & 1u) ? FE_FRAME_MAX : (size_t)(data[0] >> 1) + 1;
    const uint8_t *stream = data + 1;
    size_t len = size - 1;

    check_ctx one = {.max_frame = max_frame, .again = &again};
    check_ctx chunks = one;
    if (fe_kiss_dec_init(&again, FE_FRAME_MAX, on_again, &one) != 0)
        abort();
    /* Byte by byte. */
    if (fe_kiss_dec_init(&dec, max_frame, on_frame, &one) != 0)
        abort();
    for (size_t i = 0; i < len; i++)
        fe_kiss_dec_feed(&dec, stream + i, 1);
    if (dec.stats.frames_ok != one.delivered)
        abort();
    /* In chunks. */
    if (fe_kiss_dec_init(&dec, max_frame, on_frame, &chunks) != 0 ||
        fe_kiss_dec_init(&again, FE_FRAME_MAX, on_again, &chunks) != 0)
        abort();
    uint64_t rs = mix(0xCBF29CE484222325ull, data, size) | 1u;
    for (size_t off = 0; off < len;) {
        size_t chunk = 1 + (size_t)(next_rand(&rs) % 300);
        if (chunk > len - off)
            chunk = len - off;
        if (fe_kiss_dec_feed(&dec, stream + off, chunk) != chunk)
            abort();
        off += chunk;
    }
    if (chunks.delivered != one.delivered || chunks.digest != one.digest)
        abort();

    if (len >= 1 && len <= FE_FRAME_MAX)
        reencode_and_check(&chunks, stream, len);
    return 0;
}
