/* Throughput of the byte-stream deframer (transports/stream.c).
 *
 * Builds a stream of encoded frames of random sizes, then times
 * fe_stream_dec_feed over it in read-sized chunks, on clean input and on the
 * same input with line noise. Prints MB/s (10^6 bytes of stream per second),
 * the median of 5 runs. Usage: bench_stream [MiB per run, default 64]. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stream.h"

#define RUNS 5
#define READ_CHUNK 4096 /* a typical read() from a tty or socket */
#define STREAM_BYTES (4u << 20)

typedef struct counts {
    uint64_t frames, bytes;
} counts;

static void on_frame(void *ctx, const uint8_t *f, size_t len)
{
    counts *c = ctx;
    c->frames++;
    c->bytes += len + (f[len - 1] & 1u); /* read the frame, as a consumer would */
}

static uint64_t rng = 0x5EED5EEDull;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)rng;
}

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Frames of 16..FE_FRAME_MAX random bytes, back to back, until n bytes. */
static size_t build_stream(uint8_t *out, size_t cap, size_t *frames)
{
    static uint8_t f[FE_FRAME_MAX];
    size_t n = 0;
    *frames = 0;
    for (;;) {
        size_t len = 16 + rnd() % (FE_FRAME_MAX - 15);
        for (size_t i = 0; i < len; i++)
            f[i] = (uint8_t)rnd();
        if (cap - n < FE_STREAM_ENCODED_MAX(len))
            break;
        ptrdiff_t k = fe_stream_encode(out + n, cap - n, f, len);
        if (k < 0)
            break;
        n += (size_t)k;
        (*frames)++;
    }
    return n;
}

/* Line noise: one random byte in ~2000, plus a 64-byte burst every 64 KiB. */
static void add_noise(uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (rnd() % 2000 == 0)
            s[i] = (uint8_t)rnd();
    for (size_t at = 0; at + 64 <= n; at += 65536)
        for (size_t i = 0; i < 64; i++)
            s[at + i] = (uint8_t)rnd();
}

static double run_once(const uint8_t *s, size_t n, size_t total, fe_stream_dec_stats *st, counts *c)
{
    static fe_stream_dec d;
    memset(c, 0, sizeof(*c));
    if (fe_stream_dec_init(&d, FE_FRAME_MAX, on_frame, c) != 0) {
        fprintf(stderr, "bench_stream: decoder init failed\n");
        exit(1);
    }
    size_t done = 0;
    double t0 = seconds();
    while (done < total) {
        for (size_t off = 0; off < n && done < total; off += READ_CHUNK) {
            size_t k = n - off < READ_CHUNK ? n - off : READ_CHUNK;
            fe_stream_dec_feed(&d, s + off, k);
            done += k;
        }
    }
    double dt = seconds() - t0;
    *st = d.stats;
    return (double)done / dt / 1e6;
}

static void report(const char *label, const uint8_t *s, size_t n, size_t total)
{
    double mbs[RUNS];
    fe_stream_dec_stats st = {0};
    counts c = {0};
    for (int r = 0; r < RUNS; r++)
        mbs[r] = run_once(s, n, total, &st, &c);
    qsort(mbs, RUNS, sizeof(mbs[0]), cmp_double);
    printf("  %-6s %8.1f MB/s  (min %.1f, max %.1f; per run: %llu frames ok, %llu crc errors, "
           "%llu aborted, %llu bytes skipped)\n",
           label, mbs[RUNS / 2], mbs[0], mbs[RUNS - 1], (unsigned long long)st.frames_ok,
           (unsigned long long)st.crc_errors, (unsigned long long)st.aborted,
           (unsigned long long)st.skipped);
}

int main(int argc, char **argv)
{
    unsigned long mib = 64;
    if (argc > 1) {
        char *end = NULL;
        errno = 0;
        mib = strtoul(argv[1], &end, 10);
        if (errno != 0 || end == argv[1] || *end != '\0' || mib == 0 || mib > 65536) {
            fprintf(stderr, "usage: %s [MiB per run, 1..65536]\n", argv[0]);
            return 2;
        }
    }
    size_t total = (size_t)mib << 20;
    uint8_t *clean = malloc(STREAM_BYTES);
    uint8_t *noisy = malloc(STREAM_BYTES);
    if (clean == NULL || noisy == NULL) {
        fprintf(stderr, "bench_stream: out of memory\n");
        return 1;
    }
    size_t frames = 0;
    size_t n = build_stream(clean, STREAM_BYTES, &frames);
    memcpy(noisy, clean, n);
    add_noise(noisy, n);

    printf("bench_stream: deframer throughput, median of %d runs, %lu MiB per run, "
           "%d-byte reads\n",
           RUNS, mib, READ_CHUNK);
    printf("  stream: %zu bytes, %zu frames of 16..%d bytes, replayed\n", n, frames, FE_FRAME_MAX);
    report("clean", clean, n, total);
    report("noisy", noisy, n, total);
    free(clean);
    free(noisy);
    return 0;
}
