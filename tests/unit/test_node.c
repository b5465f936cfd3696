#define _GNU_SOURCE
/* Engine tests: several fe_node on a tiny in-test medium with zero latency.
 * Each node has one broadcast link (id 1) unless a test says otherwise. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memstore.h"
#include "node.h"
#include "wire.h"

#define MAXN 8
#define QMAX 20000

typedef struct tnode {
    fe_node *node;
    fe_identity id;
    fe_memstore *ms;
    fe_store store;
    int online;
    int delivered_count;
    uint8_t last_text[FE_TEXT_MAX + 1];
    size_t last_len;
    uint8_t last_from[FE_ADDR_BYTES];
    uint8_t last_type;
    int receipts;
    uint8_t receipt_id[FE_MSG_ID_BYTES];
    int presence_events[8];
    size_t first_sent_len;
    int sent_frames;
    int no_suppression; /* its link's fe_link_info.no_suppression */
} tnode;

typedef struct qframe {
    int from;
    uint32_t link;
    size_t len;
    uint8_t data[FE_FRAME_MAX];
} qframe;

typedef struct world {
    tnode n[MAXN];
    int count;
    int adj[MAXN][MAXN];
    qframe *q;
    size_t qhead, qtail;
    uint64_t now;
    size_t mtu;
    uint64_t rng;
} world;

static world W;

static void wrand(void *ctx, uint8_t *buf, size_t len)
{
    uint64_t *s = ctx;
    for (size_t i = 0; i < len; i++) {
        *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
        buf[i] = (uint8_t)(*s >> 33);
    }
}

static void cb_send(void *ctx, uint32_t link, const uint8_t *frame, size_t len, enum fe_prio prio)
{
    tnode *t = ctx;
    (void)prio;
    assert_true(len <= W.mtu);
    if (t->sent_frames++ == 0)
        t->first_sent_len = len;
    assert_true(W.qtail < QMAX);
    qframe *f = &W.q[W.qtail++];
    f->from = (int)(t - W.n);
    f->link = link;
    f->len = len;
    memcpy(f->data, frame, len);
}

static void cb_deliver(void *ctx, const fe_message *m, uint64_t now)
{
    tnode *t = ctx;
    (void)now;
    t->delivered_count++;
    memcpy(t->last_text, m->text, m->text_len);
    t->last_text[m->text_len] = 0;
    t->last_len = m->text_len;
    memcpy(t->last_from, m->from, FE_ADDR_BYTES);
    t->last_type = m->type;
}

static void cb_delivered(void *ctx, const uint8_t id[FE_MSG_ID_BYTES], uint64_t now)
{
    tnode *t = ctx;
    (void)now;
    t->receipts++;
    memcpy(t->receipt_id, id, FE_MSG_ID_BYTES);
}

static void cb_presence(void *ctx, const fe_dir_rec *u, enum fe_presence_event ev, uint64_t now)
{
    tnode *t = ctx;
    (void)u;
    (void)now;
    t->presence_events[ev]++;
}

static fe_node_config base_cfg(void)
{
    fe_node_config c;
    fe_node_config_default(&c);
    c.announce_interval_ms = 0;
    c.relay_delay_max_ms = 200;
    c.dedupe_capacity = 4096;
    c.outbox_items_max = 512;
    return c;
}

static void start_node(int i, const fe_node_config *cfg)
{
    tnode *t = &W.n[i];
    fe_node_callbacks cb = {.ctx = t,
                            .send = cb_send,
                            .deliver = cb_deliver,
                            .delivered = cb_delivered,
                            .presence = cb_presence};
    fe_env env = {.rand = wrand, .rand_ctx = &W.rng};
    fe_link_info li = {
        .kind = FE_LINK_BROADCAST, .mtu = W.mtu, .no_suppression = t->no_suppression};
    assert_int_equal(fe_node_new(&t->node, cfg, &t->id, &env, &t->store, &cb, W.now), FE_OK);
    if (t->online)
        assert_int_equal(fe_node_link_up(t->node, 1, &li, W.now), FE_OK);
}

/* Tell a and b each other's keys, as if they had met before. */
static void introduce(int a, int b)
{
    fe_dir_rec r;
    memset(&r, 0, sizeof r);
    memcpy(r.pk, W.n[b].id.pk, FE_PK_BYTES);
    snprintf(r.name, sizeof r.name, "node%d", b);
    assert_int_equal(W.n[a].store.ops->dir_put(W.n[a].store.ctx, &r), FE_OK);
    memcpy(r.pk, W.n[a].id.pk, FE_PK_BYTES);
    snprintf(r.name, sizeof r.name, "node%d", a);
    assert_int_equal(W.n[b].store.ops->dir_put(W.n[b].store.ctx, &r), FE_OK);
}

static void world_init(int count, size_t mtu)
{
    memset(&W, 0, sizeof W);
    W.q = calloc(QMAX, sizeof *W.q);
    assert_non_null(W.q);
    W.count = count;
    W.mtu = mtu;
    W.now = 1000000;
    W.rng = 42;
    for (int i = 0; i < count; i++) {
        uint8_t seed[FE_SEED_BYTES];
        memset(seed, i + 1, sizeof seed);
        assert_int_equal(fe_ident_from_seed(&W.n[i].id, seed), FE_OK);
        assert_int_equal(fe_memstore_new(&W.n[i].ms), FE_OK);
        fe_memstore_bind(W.n[i].ms, &W.n[i].store);
        W.n[i].online = 1;
    }
}

static void world_line(void)
{
    for (int i = 0; i + 1 < W.count; i++)
        W.adj[i][i + 1] = W.adj[i + 1][i] = 1;
}

static void world_start(void)
{
    fe_node_config c = base_cfg();
    for (int i = 0; i < W.count; i++)
        start_node(i, &c);
}

static void world_free(void)
{
    for (int i = 0; i < W.count; i++) {
        fe_node_del(W.n[i].node);
        fe_memstore_del(W.n[i].ms);
        fe_ident_wipe(&W.n[i].id);
    }
    free(W.q);
}

/* Deliver queued frames and run timers until quiet or until `until`. */
static void run_until(uint64_t until)
{
    for (int guard = 0; guard < 1000000; guard++) {
        if (W.qhead < W.qtail) {
            qframe f = W.q[W.qhead++];
            if (W.qhead == W.qtail)
                W.qhead = W.qtail = 0;
            if (!W.n[f.from].online)
                continue;
            for (int j = 0; j < W.count; j++)
                if (W.adj[f.from][j] && W.n[j].online)
                    fe_node_on_frame(W.n[j].node, 1, f.data, f.len, W.now);
            continue;
        }
        uint64_t next = UINT64_MAX;
        for (int i = 0; i < W.count; i++) {
            uint64_t d = fe_node_next_deadline(W.n[i].node);
            if (d < next)
                next = d;
        }
        if (next > until)
            break;
        if (next > W.now)
            W.now = next;
        for (int i = 0; i < W.count; i++)
            fe_node_tick(W.n[i].node, W.now);
    }
    if (W.now < until)
        W.now = until;
}

static void set_online(int i, int on)
{
    fe_link_info li = {
        .kind = FE_LINK_BROADCAST, .mtu = W.mtu, .no_suppression = W.n[i].no_suppression};
    W.n[i].online = on;
    if (on)
        assert_int_equal(fe_node_link_up(W.n[i].node, 1, &li, W.now), FE_OK);
    else
        assert_int_equal(fe_node_link_down(W.n[i].node, 1, W.now), FE_OK);
}

static void text32(uint8_t out[32])
{
    memcpy(out, "meet at the water tower at noon!", 32);
}

/* ------------------------------------------------------------------ */

static void test_dm_line_receipt_purges(void **state)
{
    (void)state;
    uint8_t id[FE_MSG_ID_BYTES], text[32];
    fe_node_stats st;

    world_init(3, 255);
    world_line();
    introduce(0, 2);
    world_start();
    text32(text);
    assert_int_equal(fe_node_send(W.n[0].node, id, W.n[2].id.addr, text, 32, 0, W.now), FE_OK);
    /* The wire budget: 32 bytes of text cost 72 bytes sealed. */
    assert_int_equal(W.n[0].first_sent_len, 72);
    assert_int_equal(W.qtail - W.qhead, 1);
    run_until(W.now + 60000);

    assert_int_equal(W.n[2].delivered_count, 1);
    assert_int_equal(W.n[2].last_len, 32);
    assert_memory_equal(W.n[2].last_text, text, 32);
    assert_memory_equal(W.n[2].last_from, W.n[0].id.addr, FE_ADDR_BYTES);
    assert_int_equal(W.n[1].delivered_count, 0);
    assert_int_equal(W.n[0].receipts, 1);
    assert_memory_equal(W.n[0].receipt_id, id, FE_MSG_ID_BYTES);
    /* Receipts purged every copy of the message. */
    for (int i = 0; i < 3; i++)
        assert_false(fe_node_holds(W.n[i].node, id));
    fe_node_get_stats(W.n[1].node, &st);
    assert_true(st.purged >= 1);
    /* The sender's store says delivered. */
    fe_sent_rec sent;
    assert_int_equal(fe_memstore_sent_get(W.n[0].ms, id, &sent), FE_OK);
    assert_true(sent.delivered_ms > 0);
    /* The relay never stored the plaintext. */
    fe_item_rec rec;
    if (fe_memstore_item_get(W.n[1].ms, id, FE_T_DM, &rec) == FE_OK)
        assert_null(memmem(rec.frame, rec.frame_len, text, sizeof text));
    world_free();
}

static void test_receipt_is_20_bytes(void **state)
{
    (void)state;
    uint8_t id[FE_MSG_ID_BYTES], text[32];

    world_init(2, 255);
    world_line();
    introduce(0, 1);
    world_start();
    text32(text);
    assert_int_equal(fe_node_send(W.n[0].node, id, W.n[1].id.addr, text, 32, 0, W.now), FE_OK);
    run_until(W.now + 100);
    assert_int_equal(W.n[1].delivered_count, 1);
    assert_int_equal(W.n[1].first_sent_len, FE_RECEIPT_BYTES);
    assert_true(FE_RECEIPT_BYTES <= 28);
    assert_int_equal(W.n[0].receipts, 1);
    world_free();
}

static void test_late_joiner(void **state)
{
    (void)state;
    uint8_t id[FE_MSG_ID_BYTES];

    world_init(5, 255);
    world_line();
    introduce(0, 4);
    W.n[4].online = 0;
    world_start();
    assert_int_equal(
        fe_node_send(W.n[0].node, id, W.n[4].id.addr, (const uint8_t *)"hello", 5, 0, W.now),
        FE_OK);
    run_until(W.now + 10 * 60000);
    assert_int_equal(W.n[4].delivered_count, 0);
    assert_true(fe_node_holds(W.n[3].node, id)); /* held by the last relay */
    set_online(4, 1);
    run_until(W.now + 10 * 60000);
    assert_int_equal(W.n[4].delivered_count, 1);
    assert_int_equal(W.n[0].receipts, 1);
    for (int i = 0; i < 5; i++)
        assert_false(fe_node_holds(W.n[i].node, id));
    world_free();
}

static void test_forged_receipt_purges_nothing(void **state)
{
    (void)state;
    uint8_t id[FE_MSG_ID_BYTES], secret[FE_RECEIPT_SECRET_BYTES], frame[FE_RECEIPT_BYTES];
    fe_node_stats st;

    world_init(3, 255);
    world_line();
    introduce(0, 2);
    W.n[2].online = 0;
    world_start();
    assert_int_equal(
        fe_node_send(W.n[0].node, id, W.n[2].id.addr, (const uint8_t *)"x", 1, 0, W.now), FE_OK);
    run_until(W.now + 60000);
    assert_true(fe_node_holds(W.n[1].node, id));
    /* An attacker who knows the id but not the secret tries secrets. */
    for (int k = 0; k < 1000; k++) {
        randombytes_buf(secret, sizeof secret);
        fe_wire_receipt(frame, 8, 3600000, secret);
        fe_node_on_frame(W.n[1].node, 1, frame, sizeof frame, W.now);
    }
    /* ... or replays the id bytes as a secret. */
    memset(secret, 0, sizeof secret);
    memcpy(secret, id, FE_MSG_ID_BYTES);
    fe_wire_receipt(frame, 8, 3600000, secret);
    fe_node_on_frame(W.n[1].node, 1, frame, sizeof frame, W.now);
    run_until(W.now + 60000);
    assert_true(fe_node_holds(W.n[1].node, id));
    assert_true(fe_node_holds(W.n[0].node, id));
    assert_int_equal(W.n[0].receipts, 0);
    fe_node_get_stats(W.n[1].node, &st);
    assert_int_equal(st.receipts_unmatched, 1001);
    assert_int_equal(st.purged, 0);
    /* The real receipt still works. */
    set_online(2, 1);
    run_until(W.now + 10 * 60000);
    assert_int_equal(W.n[2].delivered_count, 1);
    assert_int_equal(W.n[0].receipts, 1);
    assert_false(fe_node_holds(W.n[1].node, id));
    world_free();
}

/* A relay sends the recipient a corrupted copy first: under the real id
 * (a ciphertext bit), or under another id with the same anti-entropy token
 * (a bit in the id's last bytes). The recipient must not keep it, or its
 * summaries would say it has the message and the real copy would never be
 * offered to it. */
static void poisoned_copy_case(size_t flip_at)
{
    uint8_t id[FE_MSG_ID_BYTES], bad[FE_FRAME_MAX];
    fe_node_stats st;

    world_init(2, 255); /* not neighbours yet */
    introduce(0, 1);
    world_start();
    assert_int_equal(fe_node_send(W.n[0].node, id, W.n[1].id.addr,
                                  (const uint8_t *)"water at the north gate", 23, 0, W.now),
                     FE_OK);
    const qframe *dm = &W.q[W.qtail - 1];
    assert_int_equal(dm->data[0], fe_wire_type_byte(FE_T_DM, 0));
    memcpy(bad, dm->data, dm->len);
    bad[flip_at] ^= 0x10;
    fe_node_on_frame(W.n[1].node, 1, bad, dm->len, W.now);
    run_until(W.now + 1000);
    assert_int_equal(W.n[1].delivered_count, 0);
    fe_node_get_stats(W.n[1].node, &st);
    assert_int_equal(st.auth_failures, 1);
    assert_int_equal(st.items_held, 0);
    /* They meet: anti-entropy brings the real copy. */
    W.adj[0][1] = W.adj[1][0] = 1;
    run_until(W.now + 10 * 60000);
    assert_int_equal(W.n[1].delivered_count, 1);
    assert_memory_equal(W.n[1].last_text, "water at the north gate", 23);
    assert_int_equal(W.n[0].receipts, 1);
    world_free();
}

static void test_poisoned_copy_does_not_block(void **state)
{
    (void)state;
    poisoned_copy_case(30); /* ciphertext */
    poisoned_copy_case(18); /* id byte 6: same token, another id */
}

static void test_anonymous(void **state)
{
    (void)state;
    uint8_t id[FE_MSG_ID_BYTES], zero[FE_ADDR_BYTES] = {0};

    world_init(3, 255);
    world_line();
    introduce(0, 2);
    world_start();
    assert_int_equal(fe_node_send(W.n[0].node, id, W.n[2].id.addr, (const uint8_t *)"who am i", 8,
                                  FE_SEND_ANONYMOUS, W.now),
                     FE_OK);
    run_until(W.now + 60000);
    assert_int_equal(W.n[2].delivered_count, 1);
    assert_int_equal(W.n[2].last_type, FE_T_ANON);
    assert_memory_equal(W.n[2].last_from, zero, FE_ADDR_BYTES);
    assert_int_equal(W.n[0].receipts, 1);
    world_free();
}

static void test_unknown_recipient(void **state)
{
    (void)state;
    uint8_t id[FE_MSG_ID_BYTES];

    world_init(2, 255);
    world_start();
    assert_int_equal(
        fe_node_send(W.n[0].node, id, W.n[1].id.addr, (const uint8_t *)"a", 1, 0, W.now),
        FE_ERR_UNKNOWN_KEY);
    uint8_t big[FE_TEXT_MAX + 1];
    memset(big, 'a', sizeof big);
    assert_int_equal(fe_node_send(W.n[0].node, id, W.n[1].id.addr, big, sizeof big, 0, W.now),
                     FE_ERR_TOOBIG);
    world_free();
}

static void test_fragmented_long_message(void **state)
{
    (void)state;
    uint8_t id[FE_MSG_ID_BYTES], text[900];

    world_init(3, 58);
    world_line();
    introduce(0, 2);
    world_start();
    for (size_t i = 0; i < sizeof text; i++)
        text[i] = (uint8_t)('a' + i % 26);
    assert_int_equal(fe_node_send(W.n[0].node, id, W.n[2].id.addr, text, sizeof text, 0, W.now),
                     FE_OK);
    assert_true(W.qtail - W.qhead > 1); /* fragments, each within the 58-byte MTU */
    run_until(W.now + 60000);
    assert_int_equal(W.n[2].delivered_count, 1);
    assert_int_equal(W.n[2].last_len, sizeof text);
    assert_memory_equal(W.n[2].last_text, text, sizeof text);
    assert_int_equal(W.n[0].receipts, 1);
    world_free();
}

static void test_big_text_fits_one_lora_frame(void **state)
{
    (void)state;
    uint8_t id[FE_MSG_ID_BYTES], text[215];

    world_init(2, 255);
    world_line();
    introduce(0, 1);
    world_start();
    memset(text, 'z', sizeof text);
    assert_int_equal(fe_node_send(W.n[0].node, id, W.n[1].id.addr, text, sizeof text, 0, W.now),
                     FE_OK);
    assert_int_equal(W.qtail - W.qhead, 1);
    assert_int_equal(W.n[0].first_sent_len, 255);
    run_until(W.now + 1000);
    assert_int_equal(W.n[1].delivered_count, 1);
    world_free();
}

static void test_restart_no_redelivery(void **state)
{
    (void)state;
    uint8_t id[FE_MSG_ID_BYTES];
    fe_node_config c = base_cfg();

    world_init(3, 255);
    world_line();
    introduce(0, 2);
    W.n[2].online = 0;
    world_start();
    assert_int_equal(
        fe_node_send(W.n[0].node, id, W.n[2].id.addr, (const uint8_t *)"persist", 7, 0, W.now),
        FE_OK);
    run_until(W.now + 60000);
    /* Crash the relay: its copy must survive in the store. */
    fe_node_del(W.n[1].node);
    start_node(1, &c);
    assert_true(fe_node_holds(W.n[1].node, id));
    /* Crash the sender too. */
    fe_node_del(W.n[0].node);
    start_node(0, &c);
    set_online(2, 1);
    run_until(W.now + 10 * 60000);
    assert_int_equal(W.n[2].delivered_count, 1);
    assert_int_equal(W.n[0].receipts, 1);
    fe_item_rec rec;
    assert_int_equal(fe_memstore_item_get(W.n[0].ms, id, FE_T_DM, &rec), FE_ERR_NOTFOUND);
    /* Crash the recipient, then hand it the message again: no second delivery. */
    fe_node_del(W.n[2].node);
    start_node(2, &c);
    uint8_t again[FE_MSG_ID_BYTES];
    fe_node_del(W.n[0].node);
    fe_memstore_del(W.n[0].ms);
    assert_int_equal(fe_memstore_new(&W.n[0].ms), FE_OK); /* sender lost its disk */
    fe_memstore_bind(W.n[0].ms, &W.n[0].store);
    introduce(0, 2);
    start_node(0, &c);
    (void)again;
    run_until(W.now + 10 * 60000);
    assert_int_equal(W.n[2].delivered_count, 1);
    assert_int_equal(fe_memstore_inbox_count(W.n[2].ms), 1);
    world_free();
}

static void test_replay_after_delivery(void **state)
{
    (void)state;
    uint8_t id[FE_MSG_ID_BYTES];
    qframe saved;

    world_init(2, 255);
    world_line();
    introduce(0, 1);
    world_start();
    assert_int_equal(
        fe_node_send(W.n[0].node, id, W.n[1].id.addr, (const uint8_t *)"once", 4, 0, W.now), FE_OK);
    saved = W.q[W.qhead];
    run_until(W.now + 60000);
    assert_int_equal(W.n[1].delivered_count, 1);
    /* Replay the captured frame with a fresh, maximal lifetime, a day later. */
    W.now += 24u * 3600u * 1000u;
    fe_node_tick(W.n[1].node, W.now);
    fe_wire_patch_item(saved.data, saved.len, 20, FE_LIFETIME_MAX_MS);
    fe_node_on_frame(W.n[1].node, 1, saved.data, saved.len, W.now);
    assert_int_equal(W.n[1].delivered_count, 1);
    world_free();
}

static void test_malformed_input(void **state)
{
    (void)state;
    uint8_t buf[FE_FRAME_MAX + 10];
    fe_node_stats st;
    uint64_t rng = 7;

    world_init(2, 1400);
    world_line();
    introduce(0, 1);
    world_start();
    /* Pure noise, then valid frames with random corruption. */
    for (int k = 0; k < 20000; k++) {
        size_t len = 1 + (size_t)(k * 7919) % sizeof buf;
        wrand(&rng, buf, len);
        fe_node_on_frame(W.n[1].node, 1, buf, len, W.now);
    }
    uint8_t id[FE_MSG_ID_BYTES];
    assert_int_equal(
        fe_node_send(W.n[0].node, id, W.n[1].id.addr, (const uint8_t *)"valid", 5, 0, W.now),
        FE_OK);
    qframe good = W.q[W.qhead];
    W.qhead = W.qtail = 0;
    for (int k = 0; k < 20000; k++) {
        memcpy(buf, good.data, good.len);
        uint8_t r[3];
        wrand(&rng, r, 3);
        buf[r[0] % good.len] ^= (uint8_t)(1u << (r[1] % 8));
        size_t len = (r[2] & 1) ? good.len : (size_t)r[2] % good.len;
        fe_node_on_frame(W.n[1].node, 1, buf, len, W.now);
    }
    /* Flips in the hop and lifetime bytes (which relays rewrite, so they are
     * not authenticated) leave a deliverable message; nothing else does. */
    assert_true(W.n[1].delivered_count <= 1);
    fe_node_get_stats(W.n[1].node, &st);
    assert_true(st.malformed > 10000);
    assert_true(st.items_held <= 512);
    /* The genuine frame still gets through. */
    fe_node_on_frame(W.n[1].node, 1, good.data, good.len, W.now);
    assert_int_equal(W.n[1].delivered_count, 1);
    world_free();
}

static void test_group_and_late_join(void **state)
{
    (void)state;
    uint8_t key[FE_GROUP_KEY_BYTES], gid[FE_GROUP_ID_BYTES], id[FE_MSG_ID_BYTES];

    world_init(4, 255);
    world_line();
    world_start();
    memset(key, 0x5a, sizeof key);
    for (int i = 0; i < 3; i++)
        assert_int_equal(fe_node_group_join(W.n[i].node, gid, key, "camp", W.now), FE_OK);
    assert_int_equal(
        fe_node_group_send(W.n[0].node, id, gid, (const uint8_t *)"all hands", 9, W.now), FE_OK);
    run_until(W.now + 60000);
    assert_int_equal(W.n[0].delivered_count, 0);
    assert_int_equal(W.n[1].delivered_count, 1);
    assert_int_equal(W.n[2].delivered_count, 1);
    assert_int_equal(W.n[2].last_type, FE_T_GROUP);
    assert_memory_equal(W.n[2].last_from, W.n[0].id.addr, FE_ADDR_BYTES);
    assert_int_equal(W.n[3].delivered_count, 0); /* not a member: relays only */
    assert_true(fe_node_holds(W.n[3].node, id));
    /* Joining late delivers the history it already holds. */
    assert_int_equal(fe_node_group_join(W.n[3].node, gid, key, "camp", W.now), FE_OK);
    assert_int_equal(W.n[3].delivered_count, 1);
    world_free();
}

static void test_announce_presence_and_conflict(void **state)
{
    (void)state;
    fe_node_config c = base_cfg();
    fe_dir_rec u;

    world_init(3, 255);
    world_line();
    c.announce_interval_ms = 10 * 60000;
    snprintf(c.name, sizeof c.name, "alice");
    start_node(0, &c);
    snprintf(c.name, sizeof c.name, "bob");
    start_node(1, &c);
    snprintf(c.name, sizeof c.name, "alice"); /* an impostor claims alice's name */
    W.now += 5000;
    start_node(2, &c);
    run_until(W.now + 30000);
    assert_int_equal(fe_node_user_by_name(W.n[1].node, &u, "alice"), FE_OK);
    assert_memory_equal(u.pk, W.n[0].id.pk, FE_PK_BYTES); /* first key keeps the name */
    assert_true(u.online);
    assert_int_equal(W.n[1].presence_events[FE_PRESENCE_NAME_CONFLICT], 1);
    /* Directory knows bob by address too, and the keys work for messages. */
    uint8_t id[FE_MSG_ID_BYTES];
    assert_int_equal(fe_node_user_by_addr(W.n[0].node, &u, W.n[1].id.addr, 4), FE_OK);
    assert_int_equal(
        fe_node_send(W.n[0].node, id, W.n[1].id.addr, (const uint8_t *)"hi bob", 6, 0, W.now),
        FE_OK);
    run_until(W.now + 5000);
    assert_int_equal(W.n[1].delivered_count, 1);
    /* Going offline is signed and seen. */
    assert_int_equal(fe_node_going_offline(W.n[0].node, W.now), FE_OK);
    run_until(W.now + 5000);
    assert_int_equal(fe_node_user_by_name(W.n[1].node, &u, "alice"), FE_OK);
    assert_false(u.online);
    assert_true(W.n[1].presence_events[FE_PRESENCE_OFFLINE] >= 1);
    /* Back within seconds (a restart): online again at once, not after the
     * next periodic announce. */
    W.now += 3000;
    fe_node_del(W.n[0].node);
    snprintf(c.name, sizeof c.name, "alice");
    start_node(0, &c);
    run_until(W.now + 5000);
    assert_int_equal(fe_node_user_by_name(W.n[1].node, &u, "alice"), FE_OK);
    assert_true(u.online);
    assert_true(W.n[1].presence_events[FE_PRESENCE_ONLINE] >= 1);
    world_free();
}

/* Node 0 relays for node 1, its only listener. Node 0 hears the message
 * four times (as from four neighbours) before its relay timer fires. On a
 * shared medium that means node 1 has heard it too, and the relay is
 * suppressed; on a link with no_suppression (UDP to a list of peers, who
 * need not hear each other) it must go out. Node 2, the sender, is heard by
 * no one directly. Summaries are held off so that only the relay can carry
 * the message within the second the test waits. Returns node 1's deliveries. */
static int relay_after_four_copies(int no_suppression, fe_node_stats *relay)
{
    fe_node_config c = base_cfg();
    uint8_t id[FE_MSG_ID_BYTES];

    world_init(3, 255);
    W.adj[0][1] = W.adj[1][0] = 1;
    W.n[0].no_suppression = no_suppression;
    c.trickle_imin_ms = 60000;
    c.trickle_imax_ms = 600000;
    introduce(2, 1);
    for (int i = 0; i < W.count; i++)
        start_node(i, &c);
    assert_int_equal(
        fe_node_send(W.n[2].node, id, W.n[1].id.addr, (const uint8_t *)"water", 5, 0, W.now),
        FE_OK);
    assert_int_equal((int)W.qtail, 1);
    qframe f = W.q[0];
    W.qhead = W.qtail = 0;
    for (int copy = 0; copy < 4; copy++)
        fe_node_on_frame(W.n[0].node, 1, f.data, f.len, W.now);
    run_until(W.now + 1000);
    fe_node_get_stats(W.n[0].node, relay);
    int delivered = W.n[1].delivered_count;
    world_free();
    return delivered;
}

static void test_no_suppression_on_peer_lists(void **state)
{
    (void)state;
    fe_node_stats st;

    assert_int_equal(relay_after_four_copies(0, &st), 0);
    assert_int_equal(st.suppressed, 1);
    assert_int_equal(st.relayed, 0);

    assert_int_equal(relay_after_four_copies(1, &st), 1);
    assert_int_equal(st.suppressed, 0);
    assert_true(st.relayed >= 1); /* the message, then the receipt coming back */
}

/* Summaries: in a full mesh of four, a node that hears three consistent
 * summaries in an interval keeps its own; with no_suppression it sends one
 * every interval. Returns the frames node 0 sent in a minute. */
static int summaries_in_a_minute(int no_suppression)
{
    fe_node_config c = base_cfg();

    world_init(4, 255);
    for (int i = 0; i < W.count; i++)
        for (int j = 0; j < W.count; j++)
            W.adj[i][j] = i != j;
    W.n[0].no_suppression = no_suppression;
    c.trickle_imin_ms = 1000;
    c.trickle_imax_ms = 4000;
    for (int i = 0; i < W.count; i++)
        start_node(i, &c);
    run_until(W.now + 60000);
    int sent = W.n[0].sent_frames;
    world_free();
    return sent;
}

static void test_no_summary_suppression_on_peer_lists(void **state)
{
    (void)state;
    int shared = summaries_in_a_minute(0), listed = summaries_in_a_minute(1);
    /* Intervals double from 1 s to 4 s: about 16 in a minute. */
    assert_true(listed >= 14);
    assert_true(shared < listed);
}

/* Deliver what node `from` has queued, and drop everything else: the rest
 * of the world has stopped listening to and talking with `from`, as when a
 * daemon is shutting down. No timers run. */
static void deliver_only_from(int from)
{
    while (W.qhead < W.qtail) {
        qframe f = W.q[W.qhead++];
        if (f.from != from)
            continue;
        for (int j = 0; j < W.count; j++)
            if (W.adj[f.from][j] && W.n[j].online && j != from)
                fe_node_on_frame(W.n[j].node, 1, f.data, f.len, W.now);
    }
    W.qhead = W.qtail = 0;
}

/* A going-offline notice lost on the air (a collision on a half-duplex
 * radio) reaches the neighbour when it is said again; a neighbour that heard
 * both copies sees one going offline, not two. */
static void test_offline_notice_said_again(void **state)
{
    (void)state;
    fe_node_config c = base_cfg();
    fe_dir_rec u;

    world_init(2, 255);
    world_line();
    c.announce_interval_ms = 10 * 60000;
    snprintf(c.name, sizeof c.name, "carol");
    start_node(0, &c);
    snprintf(c.name, sizeof c.name, "bob");
    start_node(1, &c);
    run_until(W.now + 5000);
    assert_int_equal(fe_node_user_by_name(W.n[1].node, &u, "carol"), FE_OK);
    assert_true(u.online);
    /* Nothing to repeat until the notice has been said. */
    assert_int_equal(fe_node_repeat_going_offline(W.n[0].node, W.now), FE_ERR_NOTFOUND);

    /* carol leaves; her one copy is lost on the air. */
    assert_int_equal(fe_node_going_offline(W.n[0].node, W.now), FE_OK);
    assert_true(W.qtail > W.qhead);
    W.qhead = W.qtail = 0;
    assert_int_equal(fe_node_user_by_name(W.n[1].node, &u, "carol"), FE_OK);
    assert_true(u.online);

    assert_int_equal(fe_node_repeat_going_offline(W.n[0].node, W.now), FE_OK);
    deliver_only_from(0);
    assert_int_equal(fe_node_user_by_name(W.n[1].node, &u, "carol"), FE_OK);
    assert_false(u.online);
    assert_int_equal(W.n[1].presence_events[FE_PRESENCE_OFFLINE], 1);

    /* Heard twice: still one event. */
    assert_int_equal(fe_node_repeat_going_offline(W.n[0].node, W.now), FE_OK);
    deliver_only_from(0);
    assert_int_equal(W.n[1].presence_events[FE_PRESENCE_OFFLINE], 1);

    /* Back online: the newest announce is no longer a going-offline notice. */
    W.now += 61000; /* past the one-announce-a-minute limit */
    assert_int_equal(fe_node_announce(W.n[0].node, W.now), FE_OK);
    assert_int_equal(fe_node_repeat_going_offline(W.n[0].node, W.now), FE_ERR_NOTFOUND);
    world_free();
}

/* The name stays with the first key across a restart, whatever order the
 * store gives the directory back in (the memstore gives the newest first). */
static void test_name_binding_survives_restart(void **state)
{
    (void)state;
    fe_node_config c = base_cfg();
    fe_dir_rec u;

    world_init(3, 255);
    world_line();
    c.announce_interval_ms = 10 * 60000;
    snprintf(c.name, sizeof c.name, "alice");
    start_node(0, &c);
    c.name[0] = '\0';
    start_node(1, &c);
    snprintf(c.name, sizeof c.name, "alice"); /* the impostor, heard second */
    W.now += 5000;
    start_node(2, &c);
    run_until(W.now + 30000);
    assert_int_equal(W.n[1].presence_events[FE_PRESENCE_NAME_CONFLICT], 1);
    assert_int_equal(fe_node_user_by_name(W.n[1].node, &u, "alice"), FE_OK);
    assert_memory_equal(u.pk, W.n[0].id.pk, FE_PK_BYTES);

    fe_node_del(W.n[1].node);
    c.name[0] = '\0';
    start_node(1, &c);
    assert_int_equal(fe_node_user_by_name(W.n[1].node, &u, "alice"), FE_OK);
    assert_memory_equal(u.pk, W.n[0].id.pk, FE_PK_BYTES);
    assert_int_equal(fe_node_user_by_addr(W.n[1].node, &u, W.n[2].id.addr, FE_ADDR_BYTES), FE_OK);
    assert_true(u.name_conflict);
    world_free();
}

static void test_flood_quota(void **state)
{
    (void)state;
    fe_node_config c = base_cfg();
    fe_node_stats st;

    world_init(4, 255);
    world_line();
    introduce(0, 3);
    introduce(1, 3);
    W.n[3].online = 0;
    /* The flooder (node 1) runs without limits of its own. */
    c.outbox_items_max = 1024;
    c.origin_quota = 1024;
    start_node(1, &c);
    c.outbox_items_max = 64;
    c.origin_quota = 16;
    start_node(0, &c);
    start_node(2, &c);
    start_node(3, &c);
    /* Node 1 floods; node 0 sends a few honest messages afterwards. */
    uint8_t id[FE_MSG_ID_BYTES], honest[3][FE_MSG_ID_BYTES];
    for (int k = 0; k < 200; k++) {
        char t[16];
        int len = snprintf(t, sizeof t, "spam %d", k);
        int rc = fe_node_send(W.n[1].node, id, W.n[3].id.addr, (const uint8_t *)t, (size_t)len, 0,
                              W.now);
        assert_int_equal(rc, FE_OK);
        run_until(W.now + 10);
    }
    for (int k = 0; k < 3; k++)
        assert_int_equal(fe_node_send(W.n[0].node, honest[k], W.n[3].id.addr,
                                      (const uint8_t *)"honest", 6, 0, W.now),
                         FE_OK);
    run_until(W.now + 60000);
    fe_node_get_stats(W.n[2].node, &st);
    assert_true(st.items_held <= 64);
    assert_true(st.quota_rejects > 0);
    for (int k = 0; k < 3; k++)
        assert_true(fe_node_holds(W.n[2].node, honest[k]));
    world_free();
}

/* A sender at its own quota is refused at once, counted, and can send
 * again when a receipt frees a slot. */
static void test_own_quota_refuses_then_recovers(void **state)
{
    (void)state;
    fe_node_config c = base_cfg();
    fe_node_stats st;
    uint8_t id[FE_MSG_ID_BYTES];

    world_init(2, 255);
    world_line();
    introduce(0, 1);
    W.n[1].online = 0;
    c.origin_quota = 4;
    start_node(0, &c);
    start_node(1, &c);
    for (int k = 0; k < 4; k++)
        assert_int_equal(
            fe_node_send(W.n[0].node, id, W.n[1].id.addr, (const uint8_t *)"q", 1, 0, W.now),
            FE_OK);
    assert_int_equal(
        fe_node_send(W.n[0].node, id, W.n[1].id.addr, (const uint8_t *)"q", 1, 0, W.now),
        FE_ERR_FULL);
    fe_node_get_stats(W.n[0].node, &st);
    assert_int_equal(st.quota_rejects, 1);
    set_online(1, 1);
    run_until(W.now + 10 * 60000);
    assert_int_equal(W.n[1].delivered_count, 4);
    assert_int_equal(
        fe_node_send(W.n[0].node, id, W.n[1].id.addr, (const uint8_t *)"q", 1, 0, W.now), FE_OK);
    world_free();
}

static void test_hop_limit(void **state)
{
    (void)state;
    fe_node_config c = base_cfg();
    uint8_t id[FE_MSG_ID_BYTES];

    world_init(5, 255);
    world_line();
    introduce(0, 4);
    c.hops = 2; /* reaches nodes 1, 2 and 3 can receive it, but 3 cannot relay */
    for (int i = 0; i < 5; i++)
        start_node(i, &c);
    assert_int_equal(
        fe_node_send(W.n[0].node, id, W.n[4].id.addr, (const uint8_t *)"far", 3, 0, W.now), FE_OK);
    run_until(W.now + 10 * 60000);
    assert_int_equal(W.n[4].delivered_count, 0);
    assert_false(fe_node_holds(W.n[3].node, id));
    world_free();
}

static void test_expiry(void **state)
{
    (void)state;
    fe_node_config c = base_cfg();
    uint8_t id[FE_MSG_ID_BYTES];
    fe_node_stats st;

    world_init(3, 255);
    world_line();
    introduce(0, 2);
    W.n[2].online = 0;
    c.lifetime_ms = 60000;
    for (int i = 0; i < 3; i++)
        start_node(i, &c);
    assert_int_equal(
        fe_node_send(W.n[0].node, id, W.n[2].id.addr, (const uint8_t *)"soon", 4, 0, W.now), FE_OK);
    run_until(W.now + 30000);
    assert_true(fe_node_holds(W.n[1].node, id));
    run_until(W.now + 60000);
    assert_false(fe_node_holds(W.n[0].node, id));
    assert_false(fe_node_holds(W.n[1].node, id));
    assert_int_equal(fe_memstore_item_count(W.n[1].ms), 0);
    fe_node_get_stats(W.n[1].node, &st);
    assert_true(st.expired >= 1);
    set_online(2, 1);
    run_until(W.now + 60000);
    assert_int_equal(W.n[2].delivered_count, 0);
    world_free();
}

/* Every delivery leaves a receipt at each node for the message's lifetime;
 * when they fill the outbox, the oldest receipts make room for new messages. */
static void test_receipts_make_room(void **state)
{
    (void)state;
    fe_node_config c = base_cfg();
    fe_node_stats st;

    world_init(3, 255);
    world_line();
    introduce(0, 2);
    c.outbox_items_max = 32;
    c.origin_quota = 1024;
    for (int i = 0; i < 3; i++)
        start_node(i, &c);
    for (int k = 0; k < 100; k++) {
        uint8_t id[FE_MSG_ID_BYTES];
        char t[16];
        int len = snprintf(t, sizeof t, "msg %d", k);
        assert_int_equal(fe_node_send(W.n[0].node, id, W.n[2].id.addr, (const uint8_t *)t,
                                      (size_t)len, 0, W.now),
                         FE_OK);
        run_until(W.now + 2000);
    }
    assert_int_equal(W.n[2].delivered_count, 100);
    assert_int_equal(W.n[0].receipts, 100);
    fe_node_get_stats(W.n[1].node, &st);
    assert_true(st.items_held <= 32);
    assert_int_equal(st.quota_rejects, 0);
    world_free();
}

/* Two halves of a broadcast medium meet after both have settled: no link
 * event tells anyone; the summaries' digests must reveal the difference. */
static void test_partition_heal(void **state)
{
    (void)state;
    uint8_t id[FE_MSG_ID_BYTES], id2[FE_MSG_ID_BYTES];

    world_init(6, 255);
    world_line();
    W.adj[2][3] = W.adj[3][2] = 0; /* 0-1-2 | 3-4-5 */
    introduce(0, 5);
    world_start();
    assert_int_equal(
        fe_node_send(W.n[0].node, id, W.n[5].id.addr, (const uint8_t *)"across", 6, 0, W.now),
        FE_OK);
    assert_int_equal(
        fe_node_send(W.n[5].node, id2, W.n[0].id.addr, (const uint8_t *)"back", 4, 0, W.now),
        FE_OK);
    run_until(W.now + 60 * 60000); /* an hour: every Trickle interval at its maximum */
    assert_int_equal(W.n[5].delivered_count, 0);
    W.adj[2][3] = W.adj[3][2] = 1;
    run_until(W.now + 30 * 60000);
    assert_int_equal(W.n[5].delivered_count, 1);
    assert_int_equal(W.n[0].delivered_count, 1);
    assert_int_equal(W.n[0].receipts, 1);
    assert_int_equal(W.n[5].receipts, 1);
    for (int i = 0; i < 6; i++) {
        assert_false(fe_node_holds(W.n[i].node, id));
        assert_false(fe_node_holds(W.n[i].node, id2));
    }
    world_free();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dm_line_receipt_purges),
        cmocka_unit_test(test_receipt_is_20_bytes),
        cmocka_unit_test(test_late_joiner),
        cmocka_unit_test(test_forged_receipt_purges_nothing),
        cmocka_unit_test(test_poisoned_copy_does_not_block),
        cmocka_unit_test(test_anonymous),
        cmocka_unit_test(test_unknown_recipient),
        cmocka_unit_test(test_fragmented_long_message),
        cmocka_unit_test(test_big_text_fits_one_lora_frame),
        cmocka_unit_test(test_restart_no_redelivery),
        cmocka_unit_test(test_replay_after_delivery),
        cmocka_unit_test(test_malformed_input),
        cmocka_unit_test(test_group_and_late_join),
        cmocka_unit_test(test_announce_presence_and_conflict),
        cmocka_unit_test(test_offline_notice_said_again),
        cmocka_unit_test(test_no_suppression_on_peer_lists),
        cmocka_unit_test(test_no_summary_suppression_on_peer_lists),
        cmocka_unit_test(test_name_binding_survives_restart),
        cmocka_unit_test(test_flood_quota),
        cmocka_unit_test(test_own_quota_refuses_then_recovers),
        cmocka_unit_test(test_hop_limit),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_partition_heal),
        cmocka_unit_test(test_receipts_make_room),
    };
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
