/* Throughput of the radio-modem decoders on noisy input: the KISS deframer
 * (transports/kiss.c) and the AT line parser with Z85 data
 * (transports/at_modem.c). bench_stream does the same for HDLC framing.
 *
 * Builds a stream of encoded frames of random sizes (KISS: 16..255 bytes;
 * AT: +RCV lines of 16..192-byte frames), adds line noise (one random byte
 * in ~2000 and a 64-byte burst every 64 KiB), then times the decoder over
 * it in read-sized chunks. Prints MB/s (10^6 bytes of stream per second),
 * the median of 5 runs, with what was delivered and rejected.
 * Usage: bench_radio_framing [MiB per run, default 64]. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "at_modem.h"
#include "kiss.h"

#define RUNS 5
#define READ_CHUNK 4096
#define STREAM_BYTES (4u << 20)

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

static void add_noise(uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (rnd() % 2000 == 0)
            s[i] = (uint8_t)rnd();
    for (size_t at = 0; at + 64 <= n; at += 65536)
        for (size_t i = 0; i < 64; i++)
            s[at + i] = (uint8_t)rnd();
}

static size_t build_kiss(uint8_t *out, size_t cap, size_t *frames)
{
    uint8_t f[255];
    size_t n = 0;
    *frames = 0;
    for (;;) {
        size_t len = 16 + rnd() % (255 - 15);
        for (size_t i = 0; i < len; i++)
            f[i] = (uint8_t)rnd();
        if (cap - n < FE_KISS_ENCODED_MAX(len))
            break;
        ptrdiff_t k = fe_kiss_encode(out + n, cap - n, f, len);
        if (k < 0)
            break;
        n += (size_t)k;
        (*frames)++;
    }
    return n;
}

static size_t build_at(uint8_t *out, size_t cap, size_t *frames)
{
    uint8_t f[FE_AT_FRAME_MAX];
    char enc[FE_AT_DATA_MAX];
    size_t n = 0;
    *frames = 0;
    for (;;) {
        size_t len = 16 + rnd() % (FE_AT_FRAME_MAX - 15);
        for (size_t i = 0; i < len; i++)
            f[i] = (uint8_t)rnd();
        ptrdiff_t e = fe_at_data_encode(enc, sizeof(enc), f, len);
        if (e < 0 || cap - n < FE_AT_LINE_MAX + 2)
            break;
        int k = snprintf((char *)out + n, cap - n, "+RCV=%u,%d,%.*s,-%u,%d\r\n", rnd() % 65536,
                         (int)e, (int)e, enc, 40 + rnd() % 80, (int)(rnd() % 30) - 15);
        if (k < 0 || (size_t)k >= cap - n)
            break;
        n += (size_t)k;
        (*frames)++;
        if (rnd() % 16 == 0 && cap - n > 8) {
            memcpy(out + n, "+OK\r\n", 5);
            n += 5;
        }
    }
    return n;
}

static uint64_t delivered;

static void on_kiss(void *ctx, const uint8_t *f, size_t len)
{
    (void)ctx;
    delivered += len + (f[len - 1] & 1u); /* read the frame, as a consumer would */
}

static void on_at(void *ctx, const fe_at_event *ev)
{
    (void)ctx;
    if (ev->kind == FE_AT_EV_RCV)
        delivered += ev->frame_len + (ev->frame[ev->frame_len - 1] & 1u);
}

typedef struct result {
    double mbs;
    uint64_t ok, rejected;
} result;

static result run_kiss(const uint8_t *s, size_t n, size_t total)
{
    static fe_kiss_dec d;
    if (fe_kiss_dec_init(&d, 255, on_kiss, NULL) != 0)
        exit(1);
    size_t done = 0;
    double t0 = seconds();
    while (done < total) {
        for (size_t off = 0; off < n && done < total; off += READ_CHUNK) {
            size_t k = n - off < READ_CHUNK ? n - off : READ_CHUNK;
            fe_kiss_dec_feed(&d, s + off, k);
            done += k;
        }
    }
    double dt = seconds() - t0;
    result r = {(double)done / dt / 1e6, d.stats.frames_ok,
                d.stats.bad_escape + d.stats.oversize + d.stats.other + d.stats.empty};
    return r;
}

static result run_at(const uint8_t *s, size_t n, size_t total)
{
    static fe_at_dec d;
    if (fe_at_dec_init(&d, on_at, NULL) != 0)
        exit(1);
    size_t done = 0;
    double t0 = seconds();
    while (done < total) {
        for (size_t off = 0; off < n && done < total; off += READ_CHUNK) {
            size_t k = n - off < READ_CHUNK ? n - off : READ_CHUNK;
            fe_at_dec_feed(&d, s + off, k);
            done += k;
        }
    }
    double dt = seconds() - t0;
    result r = {(double)done / dt / 1e6, d.stats.rcv,
                d.stats.malformed + d.stats.bad_data + d.stats.overlong + d.stats.unknown};
    return r;
}

static void report(const char *label, result (*fn)(const uint8_t *, size_t, size_t),
                   const uint8_t *s, size_t n, size_t total)
{
    double mbs[RUNS];
    result r = {0};
    for (int i = 0; i < RUNS; i++) {
        r = fn(s, n, total);
        mbs[i] = r.mbs;
    }
    qsort(mbs, RUNS, sizeof(mbs[0]), cmp_double);
    printf("  %-12s %8.1f MB/s  (min %.1f, max %.1f; per run: %llu frames ok, %llu rejected)\n",
           label, mbs[RUNS / 2], mbs[0], mbs[RUNS - 1], (unsigned long long)r.ok,
           (unsigned long long)r.rejected);
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
    uint8_t *kiss = malloc(STREAM_BYTES), *at = malloc(STREAM_BYTES);
    uint8_t *kiss_noisy = malloc(STREAM_BYTES), *at_noisy = malloc(STREAM_BYTES);
    if (kiss == NULL || at == NULL || kiss_noisy == NULL || at_noisy == NULL) {
        fprintf(stderr, "bench_radio_framing: out of memory\n");
        return 1;
    }
    size_t kf, af;
    size_t kn = build_kiss(kiss, STREAM_BYTES, &kf);
    size_t an = build_at(at, STREAM_BYTES, &af);
    memcpy(kiss_noisy, kiss, kn);
    memcpy(at_noisy, at, an);
    add_noise(kiss_noisy, kn);
    add_noise(at_noisy, an);
    printf("bench_radio_framing: decoder throughput, median of %d runs, %lu MiB per run, "
           "%d-byte reads\n",
           RUNS, mib, READ_CHUNK);
    printf("  kiss stream: %zu bytes, %zu frames of 16..255 bytes\n", kn, kf);
    report("kiss clean", run_kiss, kiss, kn, total);
    report("kiss noisy", run_kiss, kiss_noisy, kn, total);
    printf("  at stream: %zu bytes, %zu +RCV lines of 16..%d-byte frames\n", an, af,
           FE_AT_FRAME_MAX);
    report("at clean", run_at, at, an, total);
    report("at noisy", run_at, at_noisy, an, total);
    if (delivered == 0)
        printf("  (nothing delivered)\n");
    free(kiss);
    free(at);
    free(kiss_noisy);
    free(at_noisy);
    return 0;
}
