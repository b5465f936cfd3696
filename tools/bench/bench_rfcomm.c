/* The RFCOMM driver (transports/rfcomm.c) between two instances in one
 * process, through the test shim that maps RFCOMM sockets onto Unix sockets
 * (tests/transports/btshim.c): no radio, so the figures are the driver's own
 * cost (framing, buffering, epoll, callbacks) and its reconnect logic, not
 * Bluetooth's. A real link carries a few hundred kb/s (hw/bluetooth.md).
 *
 * Prints:
 *   - frames per second over one link, for three frame sizes (median of 5);
 *   - the time from a link lost at both ends to both ends up again (median
 *     of 5, a fresh pair each time), with the default backoff (1 s,
 *     jittered) and with a 10 ms one, which shows what the reconnect itself
 *     costs.
 *
 * Run: build/bin/bench_rfcomm [frames per run, default 20000]. It preloads
 * the shim by re-executing itself when the shim is not loaded yet; by hand:
 *   LD_PRELOAD=build/tests/transports/libferry_btshim.so build/bin/bench_rfcomm */
#define _GNU_SOURCE /* RTLD_DEFAULT */
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rfcomm.h"

#define RUNS 5
#define ADDR_A "00:00:00:00:00:01"
#define ADDR_B "00:00:00:00:00:02"

typedef struct end {
    fe_transport *t;
    uint32_t peer; /* current link, 0 when down */
    uint64_t rx, rx_bytes, ups;
} end;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_frame(void *ctx, fe_transport *t, uint32_t peer, const uint8_t *f, size_t len)
{
    end *e = ctx;
    (void)t;
    (void)peer;
    (void)f;
    e->rx++;
    e->rx_bytes += len;
}

static void on_up(void *ctx, fe_transport *t, uint32_t peer)
{
    end *e = ctx;
    (void)t;
    e->peer = peer;
    e->ups++;
}

static void on_down(void *ctx, fe_transport *t, uint32_t peer)
{
    end *e = ctx;
    (void)t;
    if (e->peer == peer)
        e->peer = 0;
}

static void quiet(void *ctx, int level, const char *line)
{
    (void)ctx;
    if (level <= FE_RFCOMM_LOG_WARN)
        fprintf(stderr, "%s\n", line);
}

/* Discovery that advertises nowhere and finds nothing: the peers are
 * configured with their channel. */
static int no_inquiry(void *ctx, int dev_id, unsigned length, fe_bt_addr *out, size_t max)
{
    (void)ctx, (void)dev_id, (void)length, (void)out, (void)max;
    return 0;
}
static int no_lookup(void *ctx, const fe_bt_addr *l, const fe_bt_addr *p, uint8_t *ch)
{
    (void)ctx, (void)l, (void)p, (void)ch;
    return FE_ERR_NOTFOUND;
}
static int no_register(void *ctx, const fe_bt_addr *l, uint8_t ch, char *err, size_t err_len)
{
    (void)ctx, (void)l, (void)ch, (void)err, (void)err_len;
    return 0;
}
static void no_unregister(void *ctx)
{
    (void)ctx;
}
static const fe_bt_discovery_ops none_ops = {"none", no_inquiry, no_lookup, no_register,
                                             no_unregister};
static const fe_bt_discovery none = {&none_ops, NULL};

/* One loop turn for both ends: wait up to wait_ms for either, then read
 * and run timers. */
static void turn(end *a, end *b, int wait_ms)
{
    end *ends[2] = {a, b};
    struct pollfd p[2];
    for (int i = 0; i < 2; i++) {
        p[i].fd = ends[i]->t->ops->poll_fd(ends[i]->t);
        p[i].events = POLLIN;
        p[i].revents = 0;
    }
    uint64_t now = now_ms();
    for (int i = 0; i < 2; i++) {
        uint64_t d = ends[i]->t->ops->next_deadline(ends[i]->t);
        if (d <= now)
            wait_ms = 0;
        else if (d - now < (uint64_t)wait_ms)
            wait_ms = (int)(d - now);
    }
    poll(p, 2, wait_ms);
    now = now_ms();
    for (int i = 0; i < 2; i++) {
        fe_transport *t = ends[i]->t;
        if (p[i].revents & POLLIN)
            t->ops->on_readable(t, now);
        if (t->ops->next_deadline(t) <= now)
            t->ops->tick(t, now);
    }
}

static int start(end *a, end *b, uint64_t backoff_min_ms, uint32_t seed)
{
    fe_rfcomm_config ca, cb;
    char err[200];
    memset(a, 0, sizeof(*a));
    memset(b, 0, sizeof(*b));
    fe_rfcomm_config_default(&ca);
    ca.inquiry = 0;
    ca.discovery = &none;
    ca.log = quiet;
    ca.backoff_min_ms = backoff_min_ms;
    ca.seed = seed; /* the backoff jitter: a different draw per run */
    cb = ca;
    snprintf(cb.adapter, sizeof(cb.adapter), "hci1");
    if (fe_rfcomm_config_set(&ca, "peer", ADDR_B " 7", err, sizeof(err)) != 0)
        return -1;
    fe_transport_events ea = {a, on_frame, on_up, on_down};
    fe_transport_events eb = {b, on_frame, on_up, on_down};
    if (fe_rfcomm_new(&b->t, &cb, &eb, err, sizeof(err)) != 0 ||
        fe_rfcomm_new(&a->t, &ca, &ea, err, sizeof(err)) != 0 ||
        b->t->ops->open(b->t, err, sizeof(err)) != 0 ||
        a->t->ops->open(a->t, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench_rfcomm: %s\n", err);
        return -1;
    }
    for (int i = 0; i < 5000 && (a->peer == 0 || b->peer == 0); i++)
        turn(a, b, 10);
    return a->peer != 0 && b->peer != 0 ? 0 : -1;
}

static void stop(end *a, end *b)
{
    fe_rfcomm_del(a->t);
    fe_rfcomm_del(b->t);
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return v[n / 2];
}

/* Frames per second of `count` frames of `size` bytes, a to b. */
static double throughput(end *a, end *b, size_t size, uint32_t count)
{
    static uint8_t f[FE_FRAME_MAX];
    for (size_t i = 0; i < size; i++)
        f[i] = (uint8_t)(i * 7u + 0x7Du); /* some bytes need escaping */
    uint64_t want = b->rx + count;
    double t0 = seconds();
    uint32_t sent = 0;
    for (long guard = 0; (sent < count || b->rx < want) && guard < 100000000L; guard++) {
        while (sent < count &&
               a->t->ops->send(a->t, a->peer, f, size, FE_PRIO_SMALL, now_ms()) == 0)
            sent++;
        turn(a, b, 1);
        if (a->peer == 0)
            return 0;
    }
    double dt = seconds() - t0;
    return b->rx >= want ? count / dt : 0;
}

/* Seconds from a link lost at both ends to both ends up again. */
static double reconnect(end *a, end *b)
{
    int (*brk)(const char *) = (int (*)(const char *))dlsym(RTLD_DEFAULT, "fe_btshim_break");
    uint64_t ups_a = a->ups, ups_b = b->ups;
    double t0 = seconds();
    if (brk == NULL || brk(NULL) < 2)
        return -1;
    for (int i = 0;
         i < 20000 && (a->ups == ups_a || b->ups == ups_b || a->peer == 0 || b->peer == 0); i++)
        turn(a, b, 10);
    return a->ups > ups_a && b->ups > ups_b ? seconds() - t0 : -1;
}

/* Not under the shim yet: run again with it preloaded. */
static void ensure_shim(char **argv)
{
    if (dlsym(RTLD_DEFAULT, "fe_btshim_active") != NULL)
        return;
#ifdef FE_BTSHIM_PATH
    if (getenv("FE_BENCH_REEXEC") == NULL) {
        setenv("FE_BENCH_REEXEC", "1", 1);
        setenv("LD_PRELOAD", FE_BTSHIM_PATH, 1);
        setenv("ASAN_OPTIONS", "verify_asan_link_order=0", 0);
        execv("/proc/self/exe", argv);
        perror("bench_rfcomm: re-exec");
    }
#endif
    fprintf(stderr,
            "bench_rfcomm: needs the Bluetooth test shim; run it as\n"
            "  LD_PRELOAD=<build>/tests/transports/libferry_btshim.so %s\n",
            argv[0]);
    exit(2);
}

int main(int argc, char **argv)
{
    ensure_shim(argv);
    uint32_t frames = 20000;
    if (argc > 1) {
        char *end_ = NULL;
        errno = 0;
        unsigned long v = strtoul(argv[1], &end_, 10);
        if (errno != 0 || end_ == argv[1] || *end_ != '\0' || v == 0 || v > 10000000ul) {
            fprintf(stderr, "usage: %s [frames per run, 1..10000000]\n", argv[0]);
            return 2;
        }
        frames = (uint32_t)v;
    }
    char dir[] = "/tmp/ferry-bench-bt-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        perror("bench_rfcomm: mkdtemp");
        return 1;
    }
    setenv("FERRY_BTSHIM_DIR", dir, 1);
    setenv("FERRY_BTSHIM_ADDR", ADDR_A "," ADDR_B, 1);

    end a, b;
    int rc = 0;
    if (start(&a, &b, 1000, 1) != 0) {
        fprintf(stderr, "bench_rfcomm: the two drivers did not connect\n");
        rmdir(dir);
        return 1;
    }
    printf("rfcomm driver over the test shim (Unix sockets), one link, median of %d runs\n", RUNS);
    static const size_t sizes[] = {64, 256, FE_FRAME_MAX};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        double v[RUNS];
        for (int r = 0; r < RUNS; r++)
            v[r] = throughput(&a, &b, sizes[s], frames);
        double fps = median(v, RUNS);
        printf("  %4zu-byte frames: %9.0f frames/s  %7.1f MB/s of frames\n", sizes[s], fps,
               fps * (double)sizes[s] / 1e6);
        if (fps <= 0)
            rc = 1;
    }
    stop(&a, &b);

    /* A fresh pair per run: repeated drops of a young link back off more
     * and more (by design), which would hide the single-drop figure. */
    static const uint64_t backoffs[] = {1000, 10};
    for (size_t k = 0; k < 2; k++) {
        double v[RUNS];
        for (int r = 0; r < RUNS; r++) {
            v[r] = -1;
            if (start(&a, &b, backoffs[k], (uint32_t)(r + 1) * 2654435761u) == 0)
                v[r] = reconnect(&a, &b);
            stop(&a, &b);
        }
        double m = median(v, RUNS);
        printf("  reconnect after a drop, backoff_min = %4llu ms: %.3f s%s\n",
               (unsigned long long)backoffs[k], m,
               k == 0 ? " (the default; first redial after 0.5-1 s)" : "");
        if (m < 0)
            rc = 1;
    }
    rmdir(dir);
    return rc;
}
