/* libFuzzer harness for the byte-stream deframer (transports/stream.c).
 *
 * Input layout: byte 0 picks the decoder's max_frame, the rest is the byte
 * stream, fed in chunks whose sizes come from a PRNG seeded with a hash of
 * the input (so a given input always splits the same way).
 *
 * Properties checked, beyond "no crash, no sanitizer report":
 *   - every delivered frame is 1..max_frame bytes;
 *   - re-encoding a delivered frame and decoding it again yields exactly it;
 *   - frames_ok equals the number of callbacks;
 *   - the stream itself, taken as a frame, survives encode + decode. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stream.h"

typedef struct check_ctx {
    size_t max_frame;
    size_t delivered;
    fe_stream_dec *again;  /* second decoder for the re-encode check */
    const uint8_t *expect; /* frame the second decoder must deliver */
    size_t expect_len;
    size_t again_seen;
} check_ctx;

static void on_again(void *vctx, const uint8_t *f, size_t len)
{
    check_ctx *c = vctx;
    if (len != c->expect_len || memcmp(f, c->expect, len) != 0)
        abort();
    c->again_seen++;
}

static void reencode_and_check(check_ctx *c, const uint8_t *f, size_t len)
{
    static uint8_t enc[FE_STREAM_ENCODED_MAX(FE_FRAME_MAX)];
    ptrdiff_t n = fe_stream_encode(enc, sizeof(enc), f, len);
    if (n <= 0 || (size_t)n > FE_STREAM_ENCODED_MAX(len))
        abort();
    c->expect = f;
    c->expect_len = len;
    size_t before = c->again_seen;
    fe_stream_dec_feed(c->again, enc, (size_t)n);
    if (c->again_seen != before + 1)
        abort();
}

static void on_frame(void *vctx, const uint8_t *f, size_t len)
{
    check_ctx *c = vctx;
    if (len == 0 || len > c->max_frame)
        abort();
    c->delivered++;
    reencode_and_check(c, f, len);
}

static uint64_t hash_input(const uint8_t *data, size_t size)
{
    uint64_t h = 0xCBF29CE484222325ull; /* FNV-1a */
    for (size_t i = 0; i < size; i++) {
        h ^= data[i];
        h *= 0x100000001B3ull;
    }
    return h ? h : 1;
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
    static fe_stream_dec dec, again;
    if (size < 1)
        return 0;
    /* Small limits exercise the oversize path; odd selectors take the
     * largest frame. */
    size_t max_frame = (data[0] & 1u) ? FE_FRAME_MAX : (size_t)(data[0] >> 1) + 1;
    check_ctx c = {.max_frame = max_frame, .again = &again};
    if (fe_stream_dec_init(&dec, max_frame, on_frame, &c) != 0 ||
        fe_stream_dec_init(&again, FE_FRAME_MAX, on_again, &c) != 0)
        abort();

    const uint8_t *stream = data + 1;
    size_t len = size - 1;
    uint64_t rs = hash_input(data, size);
    for (size_t off = 0; off < len;) {
        size_t chunk = 1 + (size_t)(next_rand(&rs) % 300);
        if (chunk > len - off)
            chunk = len - off;
        if (fe_stream_dec_feed(&dec, stream + off, chunk) != chunk)
            abort();
        off += chunk;
    }
    if (dec.stats.frames_ok != c.delivered)
        abort();

    /* The whole stream as one frame must round-trip. */
    if (len >= 1 && len <= FE_FRAME_MAX)
        reencode_and_check(&c, stream, len);
    return 0;
}
