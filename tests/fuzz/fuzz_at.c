/* libFuzzer harness for the AT modem line decoder and the Z85 data
 * encoding (transports/at_modem.c).
 *
 * The input is fed as the module's output, in chunks whose sizes come from
 * a PRNG seeded with a hash of the input, and also decoded as Z85 data.
 *
 * Properties checked, beyond "no crash, no sanitizer report":
 *   - every event's line is 1..FE_AT_LINE_MAX bytes, every received frame
 *     1..FE_AT_FRAME_MAX bytes and, encoded again, exactly the characters
 *     of its +RCV line's data field;
 *   - feeding byte by byte gives the same events as feeding in chunks;
 *   - whatever Z85 data decodes re-encodes to the same characters (the
 *     decoder accepts one spelling per frame), and any input up to
 *     FE_AT_FRAME_MAX bytes survives encode + decode. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "at_modem.h"

typedef struct check_ctx {
    size_t events;
    uint64_t digest;
} check_ctx;

static uint64_t mix(uint64_t h, const void *vp, size_t n)
{
    const uint8_t *p = vp;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001B3ull;
    }
    return h ^ n;
}

static void on_event(void *vctx, const fe_at_event *ev)
{
    check_ctx *c = vctx;
    if (ev->line == NULL || ev->line_len == 0 || ev->line_len > FE_AT_LINE_MAX)
        abort();
    if (ev->kind == FE_AT_EV_RCV) {
        if (ev->frame_len == 0 || ev->frame_len > FE_AT_FRAME_MAX)
            abort();
        char enc[FE_AT_DATA_MAX];
        ptrdiff_t n = fe_at_data_encode(enc, sizeof(enc), ev->frame, ev->frame_len);
        if (n <= 0)
            abort();
        /* The data field sits after "+RCV=<addr>,<len>," (two commas). */
        const char *p = memchr(ev->line, ',', ev->line_len);
        p = p ? memchr(p + 1, ',', ev->line_len - (size_t)(p + 1 - ev->line)) : NULL;
        if (p == NULL || (size_t)(ev->line + ev->line_len - (p + 1)) < (size_t)n ||
            memcmp(p + 1, enc, (size_t)n) != 0)
            abort();
        c->digest = mix(c->digest, ev->frame, ev->frame_len);
    }
    c->digest = mix(c->digest, &ev->kind, sizeof(ev->kind));
    c->digest = mix(c->digest, ev->line, ev->line_len);
    c->events++;
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
    static fe_at_dec dec;
    check_ctx one = {0}, chunks = {0};
    if (fe_at_dec_init(&dec, on_event, &one) != 0)
        abort();
    for (size_t i = 0; i < size; i++)
        fe_at_dec_feed(&dec, data + i, 1);
    if (fe_at_dec_init(&dec, on_event, &chunks) != 0)
        abort();
    uint64_t rs = mix(0xCBF29CE484222325ull, data, size) | 1u;
    for (size_t off = 0; off < size;) {
        size_t chunk = 1 + (size_t)(next_rand(&rs) % 200);
        if (chunk > size - off)
            chunk = size - off;
        if (fe_at_dec_feed(&dec, data + off, chunk) != chunk)
            abort();
        off += chunk;
    }
    if (one.events != chunks.events || one.digest != chunks.digest)
        abort();

    /* The input as Z85 characters. */
    static uint8_t bin[FE_AT_LINE_MAX];
    size_t take = size < FE_AT_DATA_MAX ? size : FE_AT_DATA_MAX;
    ptrdiff_t k = fe_at_data_decode(bin, sizeof(bin), (const char *)data, take);
    if (k > 0) {
        char enc[FE_AT_DATA_MAX];
        ptrdiff_t n = fe_at_data_encode(enc, sizeof(enc), bin, (size_t)k);
        /* The decoder takes only canonical text: one frame, one spelling. */
        if (n <= 0 || (size_t)n != take || memcmp(enc, data, take) != 0)
            abort();
    }
    /* The input as a frame. */
    if (size >= 1 && size <= FE_AT_FRAME_MAX) {
        char enc[FE_AT_DATA_MAX];
        ptrdiff_t n = fe_at_data_encode(enc, sizeof(enc), data, size);
        if (n <= 0 || fe_at_data_decode(bin, sizeof(bin), enc, (size_t)n) != (ptrdiff_t)size ||
            memcmp(bin, data, size) != 0)
            abort();
    }
    return 0;
}
