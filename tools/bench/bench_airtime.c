/* Airtime accounting of transports/airtime.c against the LoRa time-on-air
 * formula of Semtech AN1200.13, evaluated here independently in floating
 * point, for SF7 and SF12 at 125 kHz (CR 4/5, 8-symbol preamble, explicit
 * header, CRC on, low data rate optimisation as the radio requires it).
 *
 * Prints one table per spreading factor (payload bytes, formula in ms,
 * accounted in ms, difference in %), then the airtime a duty-cycle budget
 * accounts for over a run of random frames against the formula's sum.
 * Usage: bench_airtime [frames for the run, default 100000]. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "airtime.h"

/* ceil() without libm, for the small values here. */
static double ceil_d(double x)
{
    double t = (double)(long long)x;
    return t < x ? t + 1.0 : t;
}

static double formula_ms(int sf, double bw_hz, size_t pl)
{
    double tsym = (double)(1u << sf) / bw_hz * 1000.0;
    int de = tsym > 16.0; /* required above 16 ms symbols */
    int crc = 1, ih = 0, cr = 1;
    double num = 8.0 * (double)pl - 4.0 * sf + 28 + 16 * crc - 20 * ih;
    double blocks = ceil_d(num / (4.0 * (sf - 2 * de)));
    double coded = blocks * (cr + 4);
    double n_payload = 8 + (coded > 0 ? coded : 0.0);
    return (8 + 4.25) * tsym + n_payload * tsym;
}

static uint64_t rng = 0xA0761D6478BD642Full;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

static void table(int sf)
{
    static const size_t sizes[] = {0, 1, 16, 32, 51, 64, 100, 128, 192, 222, 240, 255};
    fe_lora_params p;
    fe_lora_params_default(&p);
    p.sf = (uint8_t)sf;
    printf("\nSF%d, 125 kHz, CR 4/5, 8-symbol preamble, explicit header, CRC on%s\n", sf,
           sf >= 11 ? ", LDRO on" : "");
    printf("  %7s  %12s  %12s  %8s\n", "bytes", "formula ms", "accounted ms", "diff %");
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint64_t us = 0;
        if (fe_airtime_lora_us(&us, &p, sizes[i]) != 0) {
            fprintf(stderr, "bench_airtime: airtime failed\n");
            exit(1);
        }
        double f = formula_ms(sf, 125000.0, sizes[i]);
        double a = (double)us / 1000.0;
        printf("  %7zu  %12.3f  %12.3f  %+8.4f\n", sizes[i], f, a, (a - f) / f * 100.0);
    }
}

static void run(int sf, unsigned long frames)
{
    fe_lora_params p;
    fe_lora_params_default(&p);
    p.sf = (uint8_t)sf;
    static fe_airtime_budget b;
    if (fe_airtime_budget_init(&b, 0, FE_AIRTIME_WINDOW_DEFAULT_MS) != 0)
        exit(1);
    double formula_total = 0;
    uint64_t t = 0;
    for (unsigned long i = 0; i < frames; i++) {
        size_t len = rnd() % (FE_LORA_PAYLOAD_MAX + 1);
        uint64_t us = 0;
        if (fe_airtime_lora_us(&us, &p, len) != 0 || fe_airtime_budget_take(&b, t, us) != 0)
            exit(1);
        formula_total += formula_ms(sf, 125000.0, len);
        t += 1 + rnd() % 1000;
    }
    double acc = (double)b.total_us / 1000.0;
    printf("  SF%-2d %lu random frames of 0..255 bytes: formula %.1f s, accounted %.1f s, "
           "diff %+.5f %%\n",
           sf, frames, formula_total / 1000.0, acc / 1000.0,
           (acc - formula_total) / formula_total * 100.0);
}

int main(int argc, char **argv)
{
    unsigned long frames = 100000;
    if (argc > 1) {
        char *end = NULL;
        errno = 0;
        frames = strtoul(argv[1], &end, 10);
        if (errno != 0 || end == argv[1] || *end != '\0' || frames == 0 || frames > 100000000) {
            fprintf(stderr, "usage: %s [frames, 1..100000000]\n", argv[0]);
            return 2;
        }
    }
    printf("bench_airtime: accounted LoRa airtime (integer microseconds, rounded up) vs the "
           "AN1200.13 formula (floating point)\n");
    table(7);
    table(12);
    printf("\nBudget accounting over a run:\n");
    run(7, frames);
    run(12, frames);
    return 0;
}
