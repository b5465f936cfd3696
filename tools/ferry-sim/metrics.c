/* What the simulator measures and checks as it runs.
 *
 * Each engine's store is a thin wrapper around a memstore. The wrapper sees
 * every item_put and item_del, so it knows which node holds a forwardable
 * copy (FE_T_DM, FE_T_ANON, FE_T_GROUP) of which message at any time: that
 * gives copy-seconds and purge times, and it is where the "no plaintext
 * outside the recipient's inbox" check looks. The engines' deliver and
 * delivered callbacks land here too. */
#include "sim.h"

#include <string.h>

#include "wire.h"

int sim_bit(const uint8_t *bits, uint32_t i)
{
    return (bits[i / 8] >> (i % 8)) & 1;
}

void sim_bit_set(uint8_t *bits, uint32_t i, int v)
{
    if (v)
        bits[i / 8] |= (uint8_t)(1u << (i % 8));
    else
        bits[i / 8] &= (uint8_t) ~(1u << (i % 8));
}

static int is_message_type(uint8_t type)
{
    return type == FE_T_DM || type == FE_T_ANON || type == FE_T_GROUP;
}

void metrics_advance(sim *s)
{
    if (s->now > s->copy_last_ms) {
        s->copy_acc_ms += s->copies * (s->now - s->copy_last_ms);
        s->copy_last_ms = s->now;
    }
}

static void set_held(sim *s, uint32_t node, uint32_t k, int held)
{
    uint8_t *bits = s->held + (size_t)k * s->bits_stride;
    if (sim_bit(bits, node) == held)
        return;
    metrics_advance(s);
    sim_msg *msg = &s->msgs[k];
    sim_bit_set(bits, node, held);
    if (held) {
        msg->holders++;
        s->copies++;
        return;
    }
    msg->holders--;
    s->copies--;
    if (msg->holders == 0)
        msg->zero_ms = s->now;
    /* Dropped before it was delivered and before it expired: eviction or a
     * purge without a receipt. Reported, not judged: bounds may evict. */
    if (msg->deliveries == 0 && s->now < msg->send_ms + s->cfg.lifetime_ms)
        msg->early_drop = 1;
}

static const uint8_t *find_bytes(const uint8_t *hay, size_t hay_len, const char *needle)
{
    size_t n = strlen(needle);
    if (n == 0 || hay_len < n)
        return NULL;
    for (size_t i = 0; i + n <= hay_len; i++)
        if (hay[i] == (uint8_t)needle[0] && memcmp(hay + i, needle, n) == 0)
            return hay + i;
    return NULL;
}

/* A node's copy of flood message fi came or went. Honest nodes must hold
 * no more of them than the per-origin quota: they all come from one key. */
static void flood_item(sim *s, sim_node *sn, uint32_t fi, int held)
{
    uint8_t *bits = s->flood_held + (size_t)fi * s->bits_stride;
    if (fi >= s->flood_len || sim_bit(bits, sn->idx) == held)
        return;
    sim_bit_set(bits, sn->idx, held);
    if (!held) {
        sn->flood_items--;
        return;
    }
    sn->flood_items++;
    if (sn->adv != SIM_ADV_NONE)
        return;
    if (sn->flood_items > s->af.flood_items_max)
        s->af.flood_items_max = sn->flood_items;
    size_t quota = s->cfg.origin_quota ? s->cfg.origin_quota : FE_ORIGIN_QUOTA;
    if (sn->flood_items > quota)
        sim_violation(s, "node %u holds %u items of the flooder's origin (quota %zu)", sn->idx,
                      sn->flood_items, quota);
}

/* --- the store wrapper: forwards to the memstore, watching items --- */

#define INNER(ctx) (&((sim_node *)(ctx))->inner)

static int w_item_put(void *ctx, const fe_item_rec *r)
{
    sim_node *sn = ctx;
    sim *s = sn->sim;
    int rc = INNER(ctx)->ops->item_put(INNER(ctx)->ctx, r);
    if (rc < 0 || !is_message_type(r->type))
        return rc;
    if (find_bytes(r->frame, r->frame_len, SIM_MARKER))
        sim_violation(s, "node %u stores a message item with plaintext in it", sn->idx);
    if (adversary_active(s, sn->idx))
        adversary_on_item(s, sn->idx, r->id, r->type);
    int64_t k = workload_find(s, r->id);
    if (k < 0 && s->sending >= 0 && s->msgs[s->sending].src == sn->idx) {
        /* The engine stores the message before fe_node_send returns its id. */
        k = s->sending;
        if (workload_bind_id(s, (uint32_t)k, r->id) < 0) {
            sim_violation(s, "message %lld: id collides with another message", (long long)k);
            return rc;
        }
    }
    if (k < 0) {
        /* Flood messages, and ids a tamperer made by flipping bits. */
        uint32_t fi = 0;
        int kind = adversary_lookup(s, r->id, &fi);
        if (kind == SIM_ADV_NONE) {
            sim_violation(s, "node %u stores a message item that nobody sent", sn->idx);
            return rc;
        }
        s->af.foreign_items += sn->adv == SIM_ADV_NONE;
        if (kind == SIM_ADV_FLOOD)
            flood_item(s, sn, fi, 1);
        return rc;
    }
    /* Its receipt was here and removed the copy: dedupe must keep any
     * later copy (a replay, say) out for as long as the message lives. After
     * that a replayed copy looks new (lifetimes are relative: no clocks), and
     * counts against quotas and bounds like any other item. */
    if (sim_bit(s->purged + (size_t)k * s->bits_stride, sn->idx)) {
        if (s->now >= s->msgs[k].send_ms + s->cfg.lifetime_ms) {
            s->resurrected++;
        } else {
            s->reentries++;
            sim_violation(s, "node %u stores message %lld again after its receipt purged it",
                          sn->idx, (long long)k);
        }
    }
    set_held(s, sn->idx, (uint32_t)k, 1);
    return rc;
}

static int w_item_del(void *ctx, const uint8_t id[FE_MSG_ID_BYTES], uint8_t type)
{
    sim_node *sn = ctx;
    sim *s = sn->sim;
    int rc = INNER(ctx)->ops->item_del(INNER(ctx)->ctx, id, type);
    if (!is_message_type(type))
        return rc;
    /* The engine counts a relay copy purged by a receipt just before it
     * deletes it, so a step in the counter marks this delete as a purge. */
    int purge = 0;
    if (sn->node) {
        fe_node_stats st;
        fe_node_get_stats(sn->node, &st);
        purge = st.purged > sn->purged_seen;
        sn->purged_seen = st.purged;
    }
    if (rc < 0)
        return rc;
    int64_t k = workload_find(s, id);
    if (k < 0) {
        uint32_t fi = 0;
        if (adversary_lookup(s, id, &fi) == SIM_ADV_FLOOD)
            flood_item(s, sn, fi, 0);
        return rc;
    }
    if (purge) {
        sim_bit_set(s->purged + (size_t)k * s->bits_stride, sn->idx, 1);
        /* Only the recipient can make the receipt, when it delivers. */
        if (s->msgs[k].deliveries == 0) {
            s->purges_early++;
            sim_violation(s, "node %u purged message %lld before it was delivered", sn->idx,
                          (long long)k);
        }
    }
    set_held(s, sn->idx, (uint32_t)k, 0);
    return rc;
}

static int w_item_load(void *ctx, fe_store_item_cb cb, void *cbctx)
{
    return INNER(ctx)->ops->item_load(INNER(ctx)->ctx, cb, cbctx);
}

static int w_seen_put(void *ctx, const uint8_t id[FE_MSG_ID_BYTES], uint8_t kinds,
                      uint64_t expires_ms)
{
    return INNER(ctx)->ops->seen_put(INNER(ctx)->ctx, id, kinds, expires_ms);
}

static int w_seen_load(void *ctx, fe_store_seen_cb cb, void *cbctx)
{
    return INNER(ctx)->ops->seen_load(INNER(ctx)->ctx, cb, cbctx);
}

static int w_inbox_put(void *ctx, const fe_inbox_rec *r)
{
    sim_node *sn = ctx;
    int64_t k = workload_find(sn->sim, r->id);
    if (k >= 0 && sn->sim->msgs[k].dst != sn->idx)
        sim_violation(sn->sim, "node %u puts message %lld in its inbox but is not its recipient",
                      sn->idx, (long long)k);
    return INNER(ctx)->ops->inbox_put(INNER(ctx)->ctx, r);
}

static int w_sent_put(void *ctx, const fe_sent_rec *r)
{
    return INNER(ctx)->ops->sent_put(INNER(ctx)->ctx, r);
}

static int w_sent_delivered(void *ctx, const uint8_t id[FE_MSG_ID_BYTES], uint64_t delivered_ms)
{
    return INNER(ctx)->ops->sent_delivered(INNER(ctx)->ctx, id, delivered_ms);
}

static int w_dir_put(void *ctx, const fe_dir_rec *r)
{
    return INNER(ctx)->ops->dir_put(INNER(ctx)->ctx, r);
}

static int w_dir_load(void *ctx, fe_store_dir_cb cb, void *cbctx)
{
    return INNER(ctx)->ops->dir_load(INNER(ctx)->ctx, cb, cbctx);
}

static int w_group_put(void *ctx, const fe_group_rec *r)
{
    return INNER(ctx)->ops->group_put(INNER(ctx)->ctx, r);
}

static int w_group_del(void *ctx, const uint8_t id[FE_GROUP_ID_BYTES])
{
    return INNER(ctx)->ops->group_del(INNER(ctx)->ctx, id);
}

static int w_group_load(void *ctx, fe_store_group_cb cb, void *cbctx)
{
    return INNER(ctx)->ops->group_load(INNER(ctx)->ctx, cb, cbctx);
}

static int w_meta_put(void *ctx, const char *key, const uint8_t *val, size_t len)
{
    return INNER(ctx)->ops->meta_put(INNER(ctx)->ctx, key, val, len);
}

static int w_meta_get(void *ctx, const char *key, uint8_t *val, size_t cap, size_t *len)
{
    return INNER(ctx)->ops->meta_get(INNER(ctx)->ctx, key, val, cap, len);
}

/* Every op must be forwarded: a new one in store.h has to be added here. */
_Static_assert(sizeof(fe_store_ops) == 15 * sizeof(void (*)(void)),
               "store.h changed: update the wrapper");

static const fe_store_ops wrap_ops = {
    .item_put = w_item_put,
    .item_del = w_item_del,
    .item_load = w_item_load,
    .seen_put = w_seen_put,
    .seen_load = w_seen_load,
    .inbox_put = w_inbox_put,
    .sent_put = w_sent_put,
    .sent_delivered = w_sent_delivered,
    .dir_put = w_dir_put,
    .dir_load = w_dir_load,
    .group_put = w_group_put,
    .group_del = w_group_del,
    .group_load = w_group_load,
    .meta_put = w_meta_put,
    .meta_get = w_meta_get,
};

void metrics_wrap_store(sim_node *sn)
{
    sn->store.ops = &wrap_ops;
    sn->store.ctx = sn;
}

/* --- invariants on engine callbacks and state --- */

void metrics_on_deliver(sim *s, uint32_t i, const fe_message *m, uint64_t now_ms)
{
    int64_t k = workload_find(s, m->id);
    if (k < 0) {
        sim_violation(s, "node %u: delivered a message nobody sent", i);
        return;
    }
    sim_msg *msg = &s->msgs[k];
    if (msg->dst != i) {
        sim_violation(s, "node %u: delivered message %lld meant for node %u", i, (long long)k,
                      msg->dst);
        return;
    }
    if (m->text_len != msg->text_len || memcmp(m->text, msg->text, msg->text_len) != 0)
        sim_violation(s, "node %u: message %lld delivered with altered text", i, (long long)k);
    if (m->type != FE_T_DM || memcmp(m->from, s->nodes[msg->src].ident.addr, FE_ADDR_BYTES) != 0)
        sim_violation(s, "node %u: message %lld delivered with a wrong sender", i, (long long)k);
    if (now_ms > msg->send_ms + s->cfg.lifetime_ms)
        sim_violation(s, "node %u: message %lld delivered %.3f s after its lifetime ended", i,
                      (long long)k, (double)(now_ms - msg->send_ms - s->cfg.lifetime_ms) / 1000.0);
    if (msg->deliveries++ > 0) {
        sim_violation(s, "node %u: message %lld delivered %u times", i, (long long)k,
                      msg->deliveries);
        return;
    }
    msg->delivered_ms = now_ms;
    if (!msg->reachable)
        sim_violation(s, "node %u: message %lld delivered though no ideal flood could reach it", i,
                      (long long)k);
}

void metrics_on_delivered(sim *s, uint32_t i, const uint8_t id[FE_MSG_ID_BYTES], uint64_t now_ms)
{
    int64_t k = workload_find(s, id);
    if (k < 0) {
        sim_violation(s, "node %u: receipt for a message nobody sent", i);
        return;
    }
    sim_msg *msg = &s->msgs[k];
    if (msg->src != i) {
        sim_violation(s, "node %u: receipt for message %lld it did not send", i, (long long)k);
        return;
    }
    if (msg->deliveries == 0) {
        /* Only the recipient can make a valid receipt, and it makes one on delivery. */
        sim_violation(s, "node %u: receipt for message %lld that was never delivered", i,
                      (long long)k);
        return;
    }
    /* The sender's own copy goes next; it must not come back either. */
    sim_bit_set(s->purged + (size_t)k * s->bits_stride, i, 1);
    if (msg->acked)
        return;
    msg->acked = 1;
    msg->acked_ms = now_ms;
    s->acks++;
}

void metrics_check_node(sim *s, uint32_t i)
{
    const fe_node *n = s->nodes[i].node;
    if (!n)
        return;
    fe_node_stats st;
    fe_node_get_stats(n, &st);
    size_t items_max = s->cfg.outbox_items_max ? s->cfg.outbox_items_max : FE_OUTBOX_CAPACITY;
    size_t bytes_max = s->cfg.outbox_bytes_max ? s->cfg.outbox_bytes_max : FE_OUTBOX_BYTES_MAX;
    if (st.items_held > items_max)
        sim_violation(s, "node %u holds %zu items (bound %zu)", i, st.items_held, items_max);
    if (st.item_bytes_held > bytes_max)
        sim_violation(s, "node %u holds %zu item bytes (bound %zu)", i, st.item_bytes_held,
                      bytes_max);
    size_t dd_max = s->cfg.dedupe_capacity ? s->cfg.dedupe_capacity : FE_DEDUPE_CAPACITY;
    if (st.dedupe_entries > dd_max)
        sim_violation(s, "node %u remembers %zu ids (bound %zu)", i, st.dedupe_entries, dd_max);
    if (st.reasm_in_use > FE_REASM_SLOTS)
        sim_violation(s, "node %u reassembles %zu frames (bound %u)", i, st.reasm_in_use,
                      (unsigned)FE_REASM_SLOTS);
    /* Every honest node knew the victim's name and key before anyone
     * announced: the name stays with that key whatever the attacker says. */
    if (s->has_victim && i != s->victim && s->nodes[i].adv == SIM_ADV_NONE) {
        fe_dir_rec r;
        if (fe_node_user_by_name(n, &r, s->victim_name) != FE_OK ||
            memcmp(r.pk, s->nodes[s->victim].ident.pk, FE_PK_BYTES) != 0) {
            s->af.name_rebinds++;
            sim_violation(s, "node %u: name %s no longer names node %u's key", i, s->victim_name,
                          s->victim);
        }
    }
}

void metrics_on_presence(sim *s, uint32_t i, enum fe_presence_event ev)
{
    if (ev == FE_PRESENCE_NAME_CONFLICT && s->nodes[i].adv == SIM_ADV_NONE)
        s->af.name_conflicts++;
}

void metrics_add_stats(fe_node_stats *sum, const fe_node_stats *st)
{
    sum->frames_in += st->frames_in;
    sum->frames_out += st->frames_out;
    sum->bytes_in += st->bytes_in;
    sum->bytes_out += st->bytes_out;
    sum->malformed += st->malformed;
    sum->duplicates += st->duplicates;
    sum->suppressed += st->suppressed;
    sum->relayed += st->relayed;
    sum->delivered += st->delivered;
    sum->receipts_valid += st->receipts_valid;
    sum->receipts_unmatched += st->receipts_unmatched;
    sum->purged += st->purged;
    sum->expired += st->expired;
    sum->quota_rejects += st->quota_rejects;
    sum->auth_failures += st->auth_failures;
    sum->store_errors += st->store_errors;
    sum->summaries_out += st->summaries_out;
}

void metrics_honest_stats(const sim *s, fe_node_stats *out)
{
    *out = s->honest_dead;
    for (uint32_t i = 0; i < s->n; i++) {
        if (s->nodes[i].adv != SIM_ADV_NONE || !s->nodes[i].node)
            continue;
        fe_node_stats st;
        fe_node_get_stats(s->nodes[i].node, &st);
        metrics_add_stats(out, &st);
    }
}
