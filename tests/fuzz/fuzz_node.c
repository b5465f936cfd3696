/* libFuzzer: arbitrary bytes as a sequence of frames into a live engine.
 * Input layout: repeated [len (2 bytes) | link selector (1) | frame bytes].
 * Covers every frame decoder (wire.c), reassembly (frag.c), summaries,
 * receipts, announces, and the engine's handling of whatever they claim.
 * The node knows one peer, so DM opening paths are reached too. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "memstore.h"
#include "node.h"

static void drop_send(void *ctx, uint32_t link, const uint8_t *f, size_t len, enum fe_prio p)
{
    (void)ctx; (void)link; (void)f; (void)len; (void)p;
}

static void fixed_rand(void *ctx, uint8_t *buf, size_t len)
{
    uint64_t *s = ctx;
    for (size_t i = 0; i < len; i++) {
        *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
        buf[i] = (uint8_t)(*s >> 33);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fe_identity me, peer;
    static int ready;
    uint64_t rng = 1, now = 1000000;
    fe_memstore *ms;
    fe_store store;
    fe_node *n;
    fe_node_config cfg;
    fe_node_callbacks cb = {.send = drop_send};
    fe_env env = {.rand = fixed_rand, .rand_ctx = &rng};
    fe_link_info bl = {.kind = FE_LINK_BROADCAST, .mtu = 255};
    fe_link_info pl = {.kind = FE_LINK_P2P, .mtu = 58};

    if (!ready) {
        uint8_t seed[32];
        memset(seed, 1, 32);
        if (fe_ident_from_seed(&me, seed) != FE_OK)
            abort();
        memset(seed, 2, 32);
        if (fe_ident_from_seed(&peer, seed) != FE_OK)
            abort();
        ready = 1;
    }
    if (fe_memstore_new(&ms) != FE_OK)
        return 0;
    fe_memstore_bind(ms, &store);
    fe_dir_rec r;
    memset(&r, 0, sizeof r);
    memcpy(r.pk, peer.pk, sizeof r.pk);
    if (store.ops->dir_put(store.ctx, &r) != FE_OK)
        abort();
    fe_node_config_default(&cfg);
    cfg.outbox_items_max = 64;
    cfg.dedupe_capacity = 256;
    if (fe_node_new(&n, &cfg, &me, &env, &store, &cb, now) != FE_OK ||
        fe_node_link_up(n, 1, &bl, now) != FE_OK || fe_node_link_up(n, 2, &pl, now) != FE_OK)
        abort();

    size_t off = 0;
    while (off + 3 <= size) {
        size_t len = (size_t)data[off] << 8 | data[off + 1];
        uint32_t link = 1u + (data[off + 2] & 1u);
        off += 3;
        if (len > size - off)
            len = size - off;
        fe_node_on_frame(n, link, data + off, len, now);
        off += len;
        now += 700;
        if (fe_node_next_deadline(n) <= now)
            fe_node_tick(n, now);
    }
    fe_node_stats st;
    fe_node_get_stats(n, &st);
    if (st.items_held > 64 || st.dedupe_entries > 256 || st.reasm_in_use > FE_REASM_SLOTS)
        abort(); /* a memory bound was broken */
    fe_node_del(n);
    fe_memstore_del(ms);
    return 0;
}
