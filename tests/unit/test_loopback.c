/* Loopback pseudo-transport: the medium's own mechanics (ordering, loss,
 * duplication, cuts, presence, point-to-point links, counters), then real
 * engines wired together on it: a 3-node line and a point-to-point contact. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loopback.h"
#include "memstore.h"
#include "node.h"

#define MAXN 6
#define BCAST 1u
#define RX_LOG 64

typedef struct tnode {
    struct world *w;
    uint32_t ep;
    fe_node *node;
    fe_identity id;
    fe_memstore *ms;
    fe_store store;
    uint64_t rng;
    fe_env env;
    int deliveries;
    uint8_t text[FE_TEXT_MAX];
    size_t text_len;
    uint8_t from[FE_ADDR_BYTES];
    int receipts;
    uint8_t receipt_id[FE_MSG_ID_BYTES];
    int send_errors;
} tnode;

typedef struct rx_rec {
    uint32_t to, from, link;
    uint64_t at;
    uint8_t first;
    size_t len;
} rx_rec;

typedef struct world {
    fe_loopnet *net;
    tnode n[MAXN];
    int count;
    uint64_t now;
    uint64_t medium_rng;
    fe_env medium_env;
    rx_rec rx[RX_LOG];
    int rx_count;
} world;

/* A small LCG: deterministic, good enough to draw loss in tests. */
static void lcg(void *ctx, uint8_t *buf, size_t len)
{
    uint64_t *s = ctx;
    for (size_t i = 0; i < len; i++) {
        *s = *s * 6364136223846793005ull + 1442695040888963407ull;
        buf[i] = (uint8_t)(*s >> 33);
    }
}

static void cb_send(void *ctx, uint32_t link, const uint8_t *frame, size_t len, enum fe_prio prio)
{
    tnode *t = ctx;
    (void)prio;
    if (fe_loopnet_send(t->w->net, t->ep, link, frame, len, t->w->now) != 0)
        t->send_errors++;
}

static void cb_deliver(void *ctx, const fe_message *m, uint64_t now_ms)
{
    tnode *t = ctx;
    (void)now_ms;
    t->deliveries++;
    assert_true(m->text_len <= sizeof t->text);
    memcpy(t->text, m->text, m->text_len);
    t->text_len = m->text_len;
    memcpy(t->from, m->from, FE_ADDR_BYTES);
}

static void cb_delivered(void *ctx, const uint8_t id[FE_MSG_ID_BYTES], uint64_t now_ms)
{
    tnode *t = ctx;
    (void)now_ms;
    t->receipts++;
    memcpy(t->receipt_id, id, FE_MSG_ID_BYTES);
}

static void on_rx(void *ctx, uint32_t to, uint32_t from, uint32_t link, const uint8_t *frame,
                  size_t len, int rc, uint64_t now_ms)
{
    world *w = ctx;
    (void)rc;
    if (w->rx_count < RX_LOG)
        w->rx[w->rx_count++] = (rx_rec){.to = to,
                                        .from = from,
                                        .link = link,
                                        .at = now_ms,
                                        .first = len ? frame[0] : 0,
                                        .len = len};
}

static world *world_new(int count)
{
    world *w = calloc(1, sizeof *w);
    assert_non_null(w);
    w->medium_rng = 42;
    w->medium_env = (fe_env){.rand = lcg, .rand_ctx = &w->medium_rng};
    assert_int_equal(fe_loopnet_new(&w->net, &w->medium_env), 0);
    fe_loopnet_set_observer(w->net, on_rx, w);
    fe_node_config cfg;
    fe_node_config_default(&cfg);
    cfg.announce_interval_ms = 0; /* keys are exchanged below */
    cfg.lifetime_ms = 3600u * 1000u;
    fe_node_callbacks cb = {.send = cb_send, .deliver = cb_deliver, .delivered = cb_delivered};
    w->count = count;
    for (int i = 0; i < count; i++) {
        tnode *t = &w->n[i];
        uint8_t seed[FE_SEED_BYTES];
        memset(seed, 0x40 + i, sizeof seed);
        assert_int_equal(fe_ident_from_seed(&t->id, seed), 0);
        assert_int_equal(fe_memstore_new(&t->ms), 0);
        fe_memstore_bind(t->ms, &t->store);
        t->w = w;
        t->rng = 1000u + (uint64_t)i;
        t->env = (fe_env){.rand = lcg, .rand_ctx = &t->rng};
    }
    /* Every node knows every other node's key beforehand. */
    for (int i = 0; i < count; i++)
        for (int j = 0; j < count; j++) {
            if (i == j)
                continue;
            fe_dir_rec r;
            memset(&r, 0, sizeof r);
            memcpy(r.pk, w->n[j].id.pk, FE_PK_BYTES);
            snprintf(r.name, sizeof r.name, "n%d", j);
            assert_int_equal(w->n[i].store.ops->dir_put(w->n[i].store.ctx, &r), 0);
        }
    for (int i = 0; i < count; i++) {
        tnode *t = &w->n[i];
        cb.ctx = t;
        assert_int_equal(fe_node_new(&t->node, &cfg, &t->id, &t->env, &t->store, &cb, 0), 0);
        assert_int_equal(fe_loopnet_add(w->net, &t->ep, t->node, t), 0);
        assert_int_equal(t->ep, (uint32_t)i);
    }
    return w;
}

static void world_del(world *w)
{
    fe_loopnet_del(w->net);
    for (int i = 0; i < w->count; i++) {
        fe_node_del(w->n[i].node);
        fe_memstore_del(w->n[i].ms);
    }
    free(w);
}

/* Run frames and timers until `until` (virtual ms). Bounded in steps. */
static void run_until(world *w, uint64_t until)
{
    for (int guard = 0; guard < 200000; guard++) {
        uint64_t t = fe_loopnet_next_event_ms(w->net);
        for (int i = 0; i < w->count; i++) {
            uint64_t d = w->n[i].node ? fe_node_next_deadline(w->n[i].node) : UINT64_MAX;
            t = d < t ? d : t;
        }
        if (t > until)
            break;
        w->now = t > w->now ? t : w->now;
        (void)fe_loopnet_step(w->net, w->now, SIZE_MAX);
        for (int i = 0; i < w->count; i++)
            if (w->n[i].node && fe_node_next_deadline(w->n[i].node) <= w->now)
                (void)fe_node_tick(w->n[i].node, w->now);
    }
    w->now = until;
}

static void attach_all(world *w, size_t mtu, uint64_t latency_ms)
{
    fe_loopnet_medium m = {.latency_ms = latency_ms, .mtu = mtu};
    assert_int_equal(fe_loopnet_set_medium(w->net, FE_LINK_BROADCAST, &m), 0);
    assert_int_equal(fe_loopnet_set_medium(w->net, FE_LINK_P2P, &m), 0);
    for (int i = 0; i < w->count; i++)
        assert_int_equal(fe_loopnet_bcast_attach(w->net, (uint32_t)i, BCAST, w->now), 0);
}

/* --- medium mechanics, with raw bytes (engines count them as malformed) --- */

static const uint8_t junk[3] = {0xff, 0xfe, 0xfd};

static void test_broadcast_counts_once_and_orders(void **state)
{
    (void)state;
    world *w = world_new(4);
    attach_all(w, 255, 10);
    assert_int_equal(fe_loopnet_connect(w->net, 0, 1), 0);
    assert_int_equal(fe_loopnet_connect(w->net, 0, 2), 0);
    assert_int_equal(fe_loopnet_connect(w->net, 2, 0), FE_ERR_DUPLICATE);
    assert_int_equal(fe_loopnet_connect(w->net, 1, 1), FE_ERR_INVALID);
    assert_true(fe_loopnet_connected(w->net, 2, 0));
    assert_false(fe_loopnet_connected(w->net, 0, 3));

    w->rx_count = 0;
    assert_int_equal(fe_loopnet_send(w->net, 0, BCAST, junk, sizeof junk, 100), 0);
    assert_int_equal(fe_loopnet_send(w->net, 1, BCAST, junk, 2, 95), 0);
    fe_loopnet_counters c;
    fe_loopnet_get_counters(w->net, &c);
    assert_int_equal(c.frames_sent, 2); /* one per send, whatever the neighbours */
    assert_int_equal(c.bytes_sent, 5);
    assert_int_equal(fe_loopnet_pending(w->net), 3);
    assert_int_equal(fe_loopnet_next_event_ms(w->net), 105);
    assert_int_equal(fe_loopnet_step(w->net, 109, SIZE_MAX), 1);
    assert_int_equal(fe_loopnet_step(w->net, 110, 1), 1);
    assert_int_equal(fe_loopnet_step(w->net, 110, SIZE_MAX), 1);
    assert_int_equal(fe_loopnet_next_event_ms(w->net), UINT64_MAX);
    /* Time order first, then send order for equal times. */
    assert_int_equal(w->rx_count, 3);
    assert_int_equal(w->rx[0].to, 0);
    assert_int_equal(w->rx[0].at, 109); /* handed over at the time of the step */
    assert_int_equal(w->rx[1].to, 1);
    assert_int_equal(w->rx[2].to, 2);
    assert_int_equal(w->rx[2].link, BCAST);
    fe_loopnet_get_counters(w->net, &c);
    assert_int_equal(c.frames_delivered, 3);

    assert_int_equal(fe_loopnet_disconnect(w->net, 0, 2), 0);
    assert_int_equal(fe_loopnet_disconnect(w->net, 0, 2), FE_ERR_NOTFOUND);
    w->rx_count = 0;
    assert_int_equal(fe_loopnet_send(w->net, 0, BCAST, junk, 1, 200), 0);
    (void)fe_loopnet_step(w->net, 1000, SIZE_MAX);
    assert_int_equal(w->rx_count, 1);
    assert_int_equal(w->rx[0].to, 1);
    world_del(w);
}

static void test_latency_bitrate_and_mtu(void **state)
{
    (void)state;
    world *w = world_new(2);
    attach_all(w, 64, 0);
    fe_loopnet_medium m = {.latency_ms = 5, .bitrate_bps = 8000, .mtu = 64};
    assert_int_equal(fe_loopnet_set_medium(w->net, FE_LINK_BROADCAST, &m), 0);
    assert_int_equal(fe_loopnet_connect(w->net, 0, 1), 0);
    uint8_t big[65] = {0};
    /* 40 bytes at 8000 bit/s take 40 ms on the air, plus 5 ms. */
    assert_int_equal(fe_loopnet_send(w->net, 0, BCAST, big, 40, 1000), 0);
    assert_int_equal(fe_loopnet_next_event_ms(w->net), 1045);
    assert_int_equal(fe_loopnet_send(w->net, 0, BCAST, big, sizeof big, 1000), FE_ERR_TOOBIG);
    assert_int_equal(fe_loopnet_send(w->net, 0, 99, big, 1, 1000), FE_ERR_INVALID);
    fe_loopnet_counters c;
    fe_loopnet_get_counters(w->net, &c);
    assert_int_equal(c.frames_sent, 1);
    assert_int_equal(c.sends_refused, 2);

    fe_loopnet_medium bad = {.loss = 1.5, .mtu = 64};
    assert_int_equal(fe_loopnet_set_medium(w->net, FE_LINK_BROADCAST, &bad), FE_ERR_INVALID);
    bad = (fe_loopnet_medium){.mtu = FE_MTU_MIN - 1};
    assert_int_equal(fe_loopnet_set_medium(w->net, FE_LINK_P2P, &bad), FE_ERR_INVALID);
    world_del(w);
}

static void test_loss_and_duplication(void **state)
{
    (void)state;
    world *w = world_new(2);
    attach_all(w, 255, 1);
    assert_int_equal(fe_loopnet_connect(w->net, 0, 1), 0);
    fe_loopnet_medium m = {.latency_ms = 1, .loss = 1.0, .mtu = 255};
    assert_int_equal(fe_loopnet_set_medium(w->net, FE_LINK_BROADCAST, &m), 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(fe_loopnet_send(w->net, 0, BCAST, junk, 1, 10), 0);
    fe_loopnet_counters c;
    fe_loopnet_get_counters(w->net, &c);
    assert_int_equal(c.frames_sent, 10);
    assert_int_equal(c.frames_lost, 10);
    assert_int_equal(fe_loopnet_pending(w->net), 0);

    m = (fe_loopnet_medium){.latency_ms = 1, .dup = 1.0, .mtu = 255};
    assert_int_equal(fe_loopnet_set_medium(w->net, FE_LINK_BROADCAST, &m), 0);
    w->rx_count = 0;
    assert_int_equal(fe_loopnet_send(w->net, 0, BCAST, junk, 1, 20), 0);
    (void)fe_loopnet_step(w->net, 100, SIZE_MAX);
    assert_int_equal(w->rx_count, 2);
    fe_loopnet_get_counters(w->net, &c);
    assert_int_equal(c.frames_duplicated, 1);

    /* Half loss: some frames arrive, some do not, and the draw is seeded. */
    m = (fe_loopnet_medium){.latency_ms = 1, .loss = 0.5, .mtu = 255};
    assert_int_equal(fe_loopnet_set_medium(w->net, FE_LINK_BROADCAST, &m), 0);
    fe_loopnet_get_counters(w->net, &c);
    uint64_t lost0 = c.frames_lost;
    for (int i = 0; i < 200; i++)
        assert_int_equal(fe_loopnet_send(w->net, 0, BCAST, junk, 1, 30), 0);
    fe_loopnet_get_counters(w->net, &c);
    assert_in_range(c.frames_lost - lost0, 60, 140);
    world_del(w);
}

static uint32_t cut_from = UINT32_MAX, cut_to = UINT32_MAX;

static int cut_one_way(void *ctx, uint32_t from, uint32_t to, uint64_t now_ms)
{
    (void)ctx, (void)now_ms;
    return from == cut_from && to == cut_to;
}

static void test_asymmetric_cut_and_presence(void **state)
{
    (void)state;
    world *w = world_new(2);
    attach_all(w, 255, 1);
    assert_int_equal(fe_loopnet_connect(w->net, 0, 1), 0);
    cut_from = 0, cut_to = 1;
    fe_loopnet_set_cut(w->net, cut_one_way, NULL);
    w->rx_count = 0;
    assert_int_equal(fe_loopnet_send(w->net, 0, BCAST, junk, 1, 10), 0);
    assert_int_equal(fe_loopnet_send(w->net, 1, BCAST, junk, 1, 10), 0);
    (void)fe_loopnet_step(w->net, 100, SIZE_MAX);
    assert_int_equal(w->rx_count, 1);
    assert_int_equal(w->rx[0].to, 0);
    fe_loopnet_counters c;
    fe_loopnet_get_counters(w->net, &c);
    assert_int_equal(c.frames_cut, 1);
    fe_loopnet_set_cut(w->net, NULL, NULL);

    /* Offline: cannot send; frames in flight to it are dropped on arrival. */
    assert_int_equal(fe_loopnet_send(w->net, 0, BCAST, junk, 1, 200), 0);
    assert_int_equal(fe_loopnet_set_online(w->net, 1, 0, 200), 0);
    assert_false(fe_loopnet_online(w->net, 1));
    assert_int_equal(fe_loopnet_send(w->net, 1, BCAST, junk, 1, 200), FE_ERR_INVALID);
    w->rx_count = 0;
    (void)fe_loopnet_step(w->net, 300, SIZE_MAX);
    assert_int_equal(w->rx_count, 0);
    fe_loopnet_get_counters(w->net, &c);
    assert_int_equal(c.frames_dropped, 1);
    assert_int_equal(fe_loopnet_set_online(w->net, 1, 1, 300), 0);
    assert_int_equal(fe_loopnet_send(w->net, 1, BCAST, junk, 1, 300), 0);

    /* A crashed endpoint (no engine) neither sends nor receives. */
    fe_node *saved = w->n[1].node;
    assert_int_equal(fe_loopnet_replace(w->net, 1, NULL, 300), 0);
    assert_null(fe_loopnet_node(w->net, 1));
    assert_int_equal(fe_loopnet_send(w->net, 1, BCAST, junk, 1, 300), FE_ERR_INVALID);
    w->rx_count = 0;
    assert_int_equal(fe_loopnet_send(w->net, 0, BCAST, junk, 1, 301), 0);
    (void)fe_loopnet_step(w->net, 400, SIZE_MAX);
    assert_int_equal(w->rx_count, 1); /* only the frame 1 sent before crashing */
    assert_int_equal(w->rx[0].to, 0);
    assert_int_equal(fe_loopnet_replace(w->net, 1, saved, 400), 0);
    assert_ptr_equal(fe_loopnet_user(w->net, 1), &w->n[1]);
    world_del(w);
}

static void test_p2p_links(void **state)
{
    (void)state;
    world *w = world_new(3);
    fe_loopnet_medium m = {.latency_ms = 3, .mtu = 512};
    assert_int_equal(fe_loopnet_set_medium(w->net, FE_LINK_P2P, &m), 0);
    assert_int_equal(fe_loopnet_p2p_up(w->net, 0, 7, 1, 9, 0), 0);
    assert_int_equal(fe_loopnet_p2p_up(w->net, 0, 7, 2, 3, 0), FE_ERR_INVALID); /* 7 in use */
    assert_int_equal(fe_loopnet_p2p_up(w->net, 2, 4, 2, 5, 0), FE_ERR_INVALID);
    /* The engines brought the link up and started talking on it. */
    fe_loopnet_counters c;
    fe_loopnet_get_counters(w->net, &c);
    uint64_t sent0 = c.frames_sent;
    w->rx_count = 0;
    (void)fe_loopnet_step(w->net, 100, SIZE_MAX);
    for (int i = 0; i < w->rx_count; i++) {
        /* Each side hears the other under its own id for the link. */
        assert_int_equal(w->rx[i].link, w->rx[i].to == 0 ? 7u : 9u);
    }
    assert_int_equal(fe_loopnet_send(w->net, 1, 9, junk, 1, 100), 0);
    fe_loopnet_get_counters(w->net, &c);
    assert_int_equal(c.frames_sent, sent0 + 1);
    /* Down before it arrives: the frame in flight is dropped, and a new link
     * reusing the slot does not resurrect it. */
    assert_int_equal(fe_loopnet_p2p_down(w->net, 1, 9, 101), 0);
    assert_int_equal(fe_loopnet_p2p_down(w->net, 1, 9, 101), FE_ERR_NOTFOUND);
    assert_int_equal(fe_node_link_down(w->n[0].node, 7, 101), FE_ERR_NOTFOUND); /* told */
    assert_int_equal(fe_loopnet_p2p_up(w->net, 0, 7, 1, 9, 101), 0);
    w->rx_count = 0;
    uint64_t dropped0 = c.frames_dropped;
    (void)fe_loopnet_step(w->net, 103, SIZE_MAX);
    fe_loopnet_get_counters(w->net, &c);
    assert_int_equal(c.frames_dropped, dropped0 + 1);
    for (int i = 0; i < w->rx_count; i++)
        assert_int_not_equal(w->rx[i].first, junk[0]);
    assert_int_equal(fe_loopnet_send(w->net, 2, 4, junk, 1, 103), FE_ERR_INVALID);
    /* Going offline takes the point-to-point links down. */
    assert_int_equal(fe_loopnet_set_online(w->net, 1, 0, 110), 0);
    assert_int_equal(fe_loopnet_p2p_down(w->net, 0, 7, 110), FE_ERR_NOTFOUND);
    assert_int_equal(fe_loopnet_p2p_up(w->net, 0, 7, 1, 9, 110), FE_ERR_INVALID);
    world_del(w);
}

/* --- real engines --- */

static const char hello[] = "hello over three hops";

static void test_line_of_three(void **state)
{
    (void)state;
    world *w = world_new(3);
    attach_all(w, 255, 20);
    assert_int_equal(fe_loopnet_connect(w->net, 0, 1), 0);
    assert_int_equal(fe_loopnet_connect(w->net, 1, 2), 0);
    uint8_t id[FE_MSG_ID_BYTES];
    w->now = 1000;
    assert_int_equal(fe_node_send(w->n[0].node, id, w->n[2].id.addr, (const uint8_t *)hello,
                                  sizeof hello - 1, 0, w->now),
                     0);
    run_until(w, 120000);
    assert_int_equal(w->n[2].deliveries, 1);
    assert_int_equal(w->n[2].text_len, sizeof hello - 1);
    assert_memory_equal(w->n[2].text, hello, sizeof hello - 1);
    assert_memory_equal(w->n[2].from, w->n[0].id.addr, FE_ADDR_BYTES);
    assert_int_equal(w->n[1].deliveries, 0);
    assert_int_equal(w->n[0].deliveries, 0);
    assert_int_equal(w->n[0].receipts, 1);
    assert_memory_equal(w->n[0].receipt_id, id, FE_MSG_ID_BYTES);
    /* The relay in the middle held no plaintext and kept no copy. */
    assert_false(fe_node_holds(w->n[1].node, id));
    assert_false(fe_node_holds(w->n[0].node, id));
    fe_loopnet_counters c;
    fe_loopnet_get_counters(w->net, &c);
    assert_true(c.frames_sent >= 4); /* message twice, receipt twice at least */
    assert_int_equal(c.frames_lost, 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(w->n[i].send_errors, 0);
    world_del(w);
}

static void test_line_of_three_lossy_and_duplicating(void **state)
{
    (void)state;
    world *w = world_new(3);
    attach_all(w, 255, 20);
    fe_loopnet_medium m = {.latency_ms = 20, .loss = 0.3, .dup = 0.3, .mtu = 255};
    assert_int_equal(fe_loopnet_set_medium(w->net, FE_LINK_BROADCAST, &m), 0);
    assert_int_equal(fe_loopnet_connect(w->net, 0, 1), 0);
    assert_int_equal(fe_loopnet_connect(w->net, 1, 2), 0);
    uint8_t id[FE_MSG_ID_BYTES];
    assert_int_equal(fe_node_send(w->n[0].node, id, w->n[2].id.addr, (const uint8_t *)hello,
                                  sizeof hello - 1, 0, 0),
                     0);
    run_until(w, 30u * 60u * 1000u);
    /* Anti-entropy makes up for the losses; duplicates are not delivered. */
    assert_int_equal(w->n[2].deliveries, 1);
    assert_int_equal(w->n[0].receipts, 1);
    fe_loopnet_counters c;
    fe_loopnet_get_counters(w->net, &c);
    assert_true(c.frames_lost > 0);
    world_del(w);
}

static void test_p2p_contact_carries_message(void **state)
{
    (void)state;
    world *w = world_new(2);
    fe_loopnet_medium m = {.latency_ms = 1, .mtu = FE_FRAME_MAX};
    assert_int_equal(fe_loopnet_set_medium(w->net, FE_LINK_P2P, &m), 0);
    uint8_t id[FE_MSG_ID_BYTES];
    /* Queued while nobody is around. */
    assert_int_equal(fe_node_send(w->n[0].node, id, w->n[1].id.addr, (const uint8_t *)hello,
                                  sizeof hello - 1, 0, 0),
                     0);
    run_until(w, 60000);
    assert_int_equal(w->n[1].deliveries, 0);
    assert_true(fe_node_holds(w->n[0].node, id));
    /* A one-second contact is enough for the message and its receipt. */
    w->now = 60000;
    assert_int_equal(fe_loopnet_p2p_up(w->net, 0, 5, 1, 6, w->now), 0);
    run_until(w, 61000);
    assert_int_equal(fe_loopnet_p2p_down(w->net, 0, 5, w->now), 0);
    assert_int_equal(w->n[1].deliveries, 1);
    assert_memory_equal(w->n[1].text, hello, sizeof hello - 1);
    assert_int_equal(w->n[0].receipts, 1);
    assert_false(fe_node_holds(w->n[0].node, id));
    run_until(w, 120000);
    assert_int_equal(w->n[1].deliveries, 1);
    world_del(w);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_broadcast_counts_once_and_orders),
        cmocka_unit_test(test_latency_bitrate_and_mtu),
        cmocka_unit_test(test_loss_and_duplication),
        cmocka_unit_test(test_asymmetric_cut_and_presence),
        cmocka_unit_test(test_p2p_links),
        cmocka_unit_test(test_line_of_three),
        cmocka_unit_test(test_line_of_three_lossy_and_duplicating),
        cmocka_unit_test(test_p2p_contact_carries_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
