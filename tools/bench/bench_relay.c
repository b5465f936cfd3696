/* Relay-path throughput of the engine on one core: decode, dedupe, hold,
 * schedule, and re-encode on the relay timer. Prints frames per second for
 * new frames, for duplicates (the common case in a flood: every node hears
 * each frame from several neighbours), and for a 1 new : 2 duplicate mix.
 *
 * The store is a null store (writes are accepted and dropped) so the figure
 * is the engine's own; the daemon batches SQLite writes per loop turn.
 * Figures are the median of 5 runs. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node.h"
#include "seal.h"

#define FRAMES 4000
#define SENDERS 40 /* distinct origins: each stays under the per-origin quota */
#define RUNS 5

static int null_item_put(void *c, const fe_item_rec *r) { (void)c; (void)r; return 0; }
static int null_item_del(void *c, const uint8_t *id, uint8_t t) { (void)c; (void)id; (void)t; return 0; }
static int null_item_load(void *c, fe_store_item_cb cb, void *x) { (void)c; (void)cb; (void)x; return 0; }
static int null_seen_put(void *c, const uint8_t *id, uint8_t k, uint64_t e) { (void)c; (void)id; (void)k; (void)e; return 0; }
static int null_seen_load(void *c, fe_store_seen_cb cb, void *x) { (void)c; (void)cb; (void)x; return 0; }
static int null_inbox_put(void *c, const fe_inbox_rec *r) { (void)c; (void)r; return 0; }
static int null_sent_put(void *c, const fe_sent_rec *r) { (void)c; (void)r; return 0; }
static int null_sent_delivered(void *c, const uint8_t *id, uint64_t t) { (void)c; (void)id; (void)t; return 0; }
static int null_dir_put(void *c, const fe_dir_rec *r) { (void)c; (void)r; return 0; }
static int null_dir_load(void *c, fe_store_dir_cb cb, void *x) { (void)c; (void)cb; (void)x; return 0; }
static int null_group_put(void *c, const fe_group_rec *r) { (void)c; (void)r; return 0; }
static int null_group_del(void *c, const uint8_t *id) { (void)c; (void)id; return 0; }
static int null_group_load(void *c, fe_store_group_cb cb, void *x) { (void)c; (void)cb; (void)x; return 0; }
static int null_meta_put(void *c, const char *k, const uint8_t *v, size_t l) { (void)c; (void)k; (void)v; (void)l; return 0; }
static int null_meta_get(void *c, const char *k, uint8_t *v, size_t cap, size_t *l) { (void)c; (void)k; (void)v; (void)cap; (void)l; return FE_ERR_NOTFOUND; }

static const fe_store_ops null_ops = {
    null_item_put, null_item_del, null_item_load, null_seen_put, null_seen_load,
    null_inbox_put, null_sent_put, null_sent_delivered, null_dir_put, null_dir_load,
    null_group_put, null_group_del, null_group_load, null_meta_put, null_meta_get,
};

static uint64_t sent_frames;
static void count_send(void *ctx, uint32_t link, const uint8_t *f, size_t len, enum fe_prio p)
{
    (void)ctx; (void)link; (void)f; (void)len; (void)p;
    sent_frames++;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static uint8_t frames[FRAMES][FE_FRAME_MAX];
static size_t lens[FRAMES];

/* One run: a fresh relay fed every frame `copies` times, then its relay timer. */
static double run(const fe_identity *relay_id, int copies, uint64_t *processed)
{
    fe_node *n;
    fe_node_config cfg;
    fe_store st = {&null_ops, NULL};
    fe_node_callbacks cb = {.send = count_send};
    fe_link_info li = {.kind = FE_LINK_BROADCAST, .mtu = 255};
    uint64_t t = 1000;

    fe_node_config_default(&cfg);
    cfg.announce_interval_ms = 0;
    cfg.outbox_items_max = 8192;
    if (fe_node_new(&n, &cfg, relay_id, NULL, &st, &cb, t) != FE_OK ||
        fe_node_link_up(n, 1, &li, t) != FE_OK) {
        fprintf(stderr, "bench_relay: cannot create node\n");
        exit(1);
    }
    double t0 = now_s();
    for (int c = 0; c < copies; c++)
        for (int i = 0; i < FRAMES; i++)
            fe_node_on_frame(n, 1, frames[i], lens[i], t);
    t += 600;
    fe_node_tick(n, t); /* relay timers fire: re-encode and send */
    double dt = now_s() - t0;
    *processed = (uint64_t)copies * FRAMES;
    fe_node_del(n);
    return dt;
}

int main(void)
{
    static fe_identity senders[SENDERS];
    fe_identity b, relay;
    uint8_t seed[32], k[SENDERS][32], salt[4], id[8];
    char text[64];

    if (sodium_init() < 0)
        return 1;
    memset(seed, 2, 32);
    if (fe_ident_from_seed(&b, seed)) return 1;
    memset(seed, 3, 32);
    if (fe_ident_from_seed(&relay, seed)) return 1;
    for (int s = 0; s < SENDERS; s++) {
        memset(seed, 0x40 + s, 32);
        if (fe_ident_from_seed(&senders[s], seed) || fe_seal_shared_key(k[s], b.xpk, senders[s].xsk))
            return 1;
    }
    for (int i = 0; i < FRAMES; i++) {
        const fe_identity *a = &senders[i % SENDERS];
        randombytes_buf(salt, sizeof salt);
        int tl = snprintf(text, sizeof text, "relay benchmark message number %06d", i);
        ptrdiff_t n = fe_seal_dm(frames[i], FE_FRAME_MAX, id, k[i % SENDERS], a->addr, b.addr, salt,
                                 (const uint8_t *)text, (size_t)tl, 32, 3600000);
        if (n <= 0) return 1;
        lens[i] = (size_t)n;
    }

    printf("ferry relay path, one core, %d distinct %zu-byte private-message frames, "
           "from %d senders, null store, median of %d runs\n", FRAMES, lens[0], SENDERS, RUNS);
    const struct { const char *name; int copies; } cases[] = {
        {"each frame once (all new)", 1},
        {"each frame 3x (1 new + 2 duplicates)", 3},
        {"each frame 10x (1 new + 9 duplicates)", 10},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        double rates[RUNS];
        uint64_t processed = 0;
        for (int r = 0; r < RUNS; r++) {
            double dt = run(&relay, cases[c].copies, &processed);
            rates[r] = (double)processed / dt;
        }
        qsort(rates, RUNS, sizeof rates[0], cmp_d);
        printf("  %-40s %12.0f frames/s\n", cases[c].name, rates[RUNS / 2]);
    }
    printf("  (relays sent during the runs: %llu)\n", (unsigned long long)sent_frames);
    return 0;
}
