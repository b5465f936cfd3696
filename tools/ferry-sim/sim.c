/* Set-up of the simulated world and the event loop: jump to the earliest
 * pending event (a world event, a frame arriving, a node's deadline), run
 * it, re-read the deadlines of the nodes it touched and check them. */
#include "sim.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

uint64_t sim_ms(double seconds)
{
    if (!(seconds > 0.0))
        return 0;
    double ms = seconds * 1000.0;
    return ms >= 1.8e19 ? UINT64_MAX / 2 : (uint64_t)llround(ms);
}

void sim_violation(sim *s, const char *fmt, ...)
{
    s->violations++;
    if (s->violations > SIM_VIOLATIONS_SHOWN)
        return;
    fprintf(stderr, "violation at t=%.3f s: ", (double)s->now / 1000.0);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* --- world event heap, ordered by (t, seq) --- */

static int ev_before(const sim_ev *a, const sim_ev *b)
{
    return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

int sim_ev_push(sim *s, uint64_t t, uint32_t kind, uint32_t a, uint32_t b, uint32_t la, uint32_t lb,
                uint32_t c)
{
    if (s->ev_len == s->ev_cap) {
        size_t cap = s->ev_cap ? s->ev_cap * 2 : 1024;
        sim_ev *e = realloc(s->ev, cap * sizeof *e);
        if (!e)
            return -1;
        s->ev = e;
        s->ev_cap = cap;
    }
    sim_ev e = {
        .t = t, .seq = s->ev_seq++, .kind = kind, .a = a, .b = b, .la = la, .lb = lb, .c = c};
    size_t i = s->ev_len++;
    while (i > 0 && ev_before(&e, &s->ev[(i - 1) / 2])) {
        s->ev[i] = s->ev[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s->ev[i] = e;
    return 0;
}

static void ev_pop(sim *s, sim_ev *out)
{
    *out = s->ev[0];
    sim_ev last = s->ev[--s->ev_len];
    size_t n = s->ev_len, i = 0;
    if (n == 0)
        return;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const sim_ev *best = &last;
        if (l < n && ev_before(&s->ev[l], best)) {
            m = l;
            best = &s->ev[l];
        }
        if (r < n && ev_before(&s->ev[r], best))
            m = r;
        if (m == i)
            break;
        s->ev[i] = s->ev[m];
        i = m;
    }
    s->ev[i] = last;
}

/* --- node deadline heap with lazy invalidation: an entry is live only if
 * its stamp is the node's current one --- */

static int dl_before(const sim_dl *a, const sim_dl *b)
{
    return a->t < b->t || (a->t == b->t && a->node < b->node);
}

static int dl_push(sim *s, uint64_t t, uint32_t node, uint32_t stamp)
{
    if (s->dlh_len == s->dlh_cap) {
        size_t cap = s->dlh_cap ? s->dlh_cap * 2 : 1024;
        sim_dl *d = realloc(s->dlh, cap * sizeof *d);
        if (!d)
            return -1;
        s->dlh = d;
        s->dlh_cap = cap;
    }
    sim_dl e = {.t = t, .node = node, .stamp = stamp};
    size_t i = s->dlh_len++;
    while (i > 0 && dl_before(&e, &s->dlh[(i - 1) / 2])) {
        s->dlh[i] = s->dlh[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s->dlh[i] = e;
    return 0;
}

static void dl_pop(sim *s)
{
    sim_dl last = s->dlh[--s->dlh_len];
    size_t n = s->dlh_len, i = 0;
    if (n == 0)
        return;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const sim_dl *best = &last;
        if (l < n && dl_before(&s->dlh[l], best)) {
            m = l;
            best = &s->dlh[l];
        }
        if (r < n && dl_before(&s->dlh[r], best))
            m = r;
        if (m == i)
            break;
        s->dlh[i] = s->dlh[m];
        i = m;
    }
    s->dlh[i] = last;
}

/* Earliest live deadline, dropping stale entries on the way. */
static uint64_t dl_top(sim *s)
{
    while (s->dlh_len > 0) {
        const sim_dl *d = &s->dlh[0];
        const sim_node *sn = &s->nodes[d->node];
        if (d->stamp == sn->dl_stamp && sn->dl == d->t && sn->node)
            return d->t;
        dl_pop(s);
    }
    return UINT64_MAX;
}

static void touch(sim *s, uint32_t i)
{
    if (!s->nodes[i].touched) {
        s->nodes[i].touched = 1;
        s->touched[s->touched_len++] = i;
    }
}

void sim_requery(sim *s, uint32_t i)
{
    sim_node *sn = &s->nodes[i];
    touch(s, i);
    uint64_t d = sn->node ? fe_node_next_deadline(sn->node) : UINT64_MAX;
    if (d == sn->dl)
        return;
    sn->dl = d;
    sn->dl_stamp++;
    if (d != UINT64_MAX && dl_push(s, d, i, sn->dl_stamp) < 0) {
        fprintf(stderr, "ferry-sim: out of memory\n");
        exit(2);
    }
}

/* --- engine callbacks --- */

static void cb_send(void *ctx, uint32_t link, const uint8_t *frame, size_t len, enum fe_prio prio)
{
    sim_node *sn = ctx;
    (void)prio;
    /* A tampering relay's engine never gets its own frames out intact. */
    if (sn->adv == SIM_ADV_TAMPER && adversary_active(sn->sim, sn->idx) &&
        adversary_on_send(sn->sim, sn->idx, link, frame, len))
        return;
    /* Refusals (offline, link gone, over the MTU) are counted by the loopnet. */
    if (fe_loopnet_send(sn->sim->net, sn->idx, link, frame, len, sn->sim->now) == 0 && len > 0)
        sn->sim->tx_by_type[(frame[0] >> 3) & 7]++;
}

static void cb_deliver(void *ctx, const fe_message *m, uint64_t now_ms)
{
    sim_node *sn = ctx;
    metrics_on_deliver(sn->sim, sn->idx, m, now_ms);
}

static void cb_delivered(void *ctx, const uint8_t id[FE_MSG_ID_BYTES], uint64_t now_ms)
{
    sim_node *sn = ctx;
    metrics_on_delivered(sn->sim, sn->idx, id, now_ms);
}

static void cb_presence(void *ctx, const fe_dir_rec *user, enum fe_presence_event ev,
                        uint64_t now_ms)
{
    sim_node *sn = ctx;
    (void)user, (void)now_ms;
    metrics_on_presence(sn->sim, sn->idx, ev);
}

static void on_rx(void *ctx, uint32_t to, uint32_t from, uint32_t link, const uint8_t *frame,
                  size_t len, int rc, uint64_t now_ms)
{
    sim *s = ctx;
    (void)now_ms;
    /* Only adversaries corrupt frames, so a frame an engine rejects as
     * malformed that came from an honest engine was badly encoded by it,
     * unless it is a fragment whose reassembly a tamperer's lie under the
     * same key spoiled first ("keep the first" in core/frag.c). */
    if (rc == FE_ERR_MALFORMED && adversary_active(s, from)) {
        s->af.adv_malformed++;
    } else if (rc == FE_ERR_MALFORMED && adversary_frag_poisoned(s, frame, len)) {
        s->af.frags_poisoned++;
    } else if (rc == FE_ERR_MALFORMED) {
        s->malformed++;
        sim_violation(s, "node %u rejected a frame from node %u as malformed (type %u, %zu bytes)",
                      to, from, len ? (frame[0] >> 3) & 7u : 0u, len);
    }
    if (fe_err_is_fatal(rc))
        sim_violation(s, "node %u: fe_node_on_frame failed fatally: %s", to, fe_strerror(rc));
    if (adversary_active(s, to))
        adversary_on_rx(s, to, link, frame, len);
    sim_requery(s, to);
}

static int node_start(sim *s, uint32_t i)
{
    sim_node *sn = &s->nodes[i];
    fe_node_callbacks cb = s->cb_template;
    cb.ctx = sn;
    fe_node_config cfg = s->cfg;
    adversary_node_config(s, i, &cfg);
    sn->purged_seen = 0; /* a new engine counts from zero */
    int rc = fe_node_new(&sn->node, &cfg, &sn->ident, &sn->env, &sn->store, &cb, s->now);
    if (rc < 0) {
        fprintf(stderr, "ferry-sim: node %u: fe_node_new: %s\n", i, fe_strerror(rc));
        sn->node = NULL;
    }
    return rc;
}

int sim_crash(sim *s, uint32_t i)
{
    sim_node *sn = &s->nodes[i];
    if (sn->crashed)
        return 0;
    /* The loopnet lets go of the engine before it is freed. */
    (void)fe_loopnet_replace(s->net, i, NULL, s->now);
    if (sn->adv == SIM_ADV_NONE && sn->node) {
        fe_node_stats st;
        fe_node_get_stats(sn->node, &st);
        metrics_add_stats(&s->honest_dead, &st);
    }
    fe_node_del(sn->node);
    sn->node = NULL;
    sn->crashed = 1;
    sn->link_slots = 0;
    if (sn->contacts)
        sn->contacts->count = 0;
    sim_requery(s, i);
    return 0;
}

int sim_restart(sim *s, uint32_t i)
{
    sim_node *sn = &s->nodes[i];
    if (!sn->crashed)
        return 0;
    if (node_start(s, i) < 0)
        return -1;
    sn->crashed = 0;
    int rc = fe_loopnet_replace(s->net, i, sn->node, s->now);
    if (rc < 0)
        sim_violation(s, "node %u: link up after restart failed: %s", i, fe_strerror(rc));
    sim_requery(s, i);
    return 0;
}

/* --- set-up --- */

int sim_setup(sim *s)
{
    const sim_opts *o = &s->o;
    s->n = o->nodes;
    s->end_ms = sim_ms(o->duration_s);
    s->stop_ms = s->end_ms;
    s->sending = -1;

    fe_node_config_default(&s->cfg);
    s->cfg.policy = o->policy;
    s->cfg.purge_on_receipt = o->purge;
    s->cfg.lifetime_ms = sim_ms(o->lifetime_s);
    s->cfg.announce_interval_ms = 0; /* keys are exchanged beforehand */
    s->cfg.name[0] = '\0';
    s->cfg.naive_round_ms = sim_ms(o->naive_round_s);
    s->cfg.dedupe_capacity = o->dedupe_capacity;
    if (o->hops)
        s->cfg.hops = (uint8_t)o->hops;
    s->cb_template = (fe_node_callbacks){
        .send = cb_send, .deliver = cb_deliver, .delivered = cb_delivered, .presence = cb_presence};

    sim_rng_init(&s->medium_rng, o->seed, SIM_STREAM_MEDIUM, 0);
    sim_rng_init(&s->world_rng, o->seed, SIM_STREAM_WORLD, 0);
    sim_rng_init(&s->contact_rng, o->seed, SIM_STREAM_CONTACTS, 0);
    sim_rng_init(&s->workload_rng, o->seed, SIM_STREAM_WORKLOAD, 0);
    s->medium_env = (fe_env){.rand = sim_rng_env_cb, .rand_ctx = &s->medium_rng};

    if (fe_loopnet_new(&s->net, &s->medium_env) < 0)
        return -1;
    fe_loopnet_medium med = {
        .latency_ms = sim_ms(o->latency_ms / 1000.0),
        .bitrate_bps = (uint64_t)(o->bitrate_bps > 0 ? o->bitrate_bps : 0),
        .loss = o->loss,
        .dup = o->dup,
        .mtu = o->mtu,
    };
    if (fe_loopnet_set_medium(s->net, FE_LINK_BROADCAST, &med) < 0 ||
        fe_loopnet_set_medium(s->net, FE_LINK_P2P, &med) < 0) {
        fprintf(stderr, "ferry-sim: bad medium settings\n");
        return -1;
    }
    fe_loopnet_set_cut(s->net, world_cut, s);
    fe_loopnet_set_observer(s->net, on_rx, s);

    s->nodes = calloc(s->n, sizeof *s->nodes);
    s->touched = calloc(s->n, sizeof *s->touched);
    s->bfs = calloc(s->n, sizeof *s->bfs);
    if (!s->nodes || !s->touched || !s->bfs)
        return -1;
    for (uint32_t i = 0; i < s->n; i++) {
        sim_node *sn = &s->nodes[i];
        sn->sim = s;
        sn->idx = i;
        sn->online = 1;
        sn->dl = UINT64_MAX;
        sim_rng_init(&sn->rng, o->seed, SIM_STREAM_NODE, i);
        sn->env = (fe_env){.rand = sim_rng_env_cb, .rand_ctx = &sn->rng};
        sim_rng ir;
        uint8_t seed[FE_SEED_BYTES];
        sim_rng_init(&ir, o->seed, SIM_STREAM_IDENT, i);
        sim_rng_fill(&ir, seed, sizeof seed);
        if (fe_ident_from_seed(&sn->ident, seed) < 0)
            return -1;
        if (fe_memstore_new(&sn->mem) < 0)
            return -1;
        fe_memstore_bind(sn->mem, &sn->inner);
        metrics_wrap_store(sn);
        uint32_t ep;
        if (fe_loopnet_add(s->net, &ep, NULL, sn) < 0 || ep != i)
            return -1;
    }

    if (world_build(s) < 0 || adversary_pick(s) < 0 || workload_build(s) < 0 ||
        workload_exchange_keys(s) < 0 || adversary_setup(s) < 0)
        return -1;
    if (oracle_init(s) < 0)
        return -1;
    /* A late joiner is off the air from the start, so it hears nothing and
     * its engine sees the broadcast link come up only when it joins. */
    if (s->o.late_join_s > 0 && s->n > 0) {
        uint32_t last = s->n - 1;
        if (fe_loopnet_set_online(s->net, last, 0, 0) < 0)
            return -1;
        s->nodes[last].online = 0;
        if (sim_ev_push(s, sim_ms(o->late_join_s), EV_ONLINE, last, 0, 0, 0, 0) < 0)
            return -1;
    }
    /* Nodes load their directory from the store, so they start after the
     * keys are in. */
    for (uint32_t i = 0; i < s->n; i++) {
        if (node_start(s, i) < 0)
            return -1;
        if (fe_loopnet_replace(s->net, i, s->nodes[i].node, 0) < 0)
            return -1;
    }
    if (world_schedule(s) < 0)
        return -1;
    for (uint32_t i = 0; i < s->n; i++)
        sim_requery(s, i);
    s->touched_len = 0;
    for (uint32_t i = 0; i < s->n; i++)
        s->nodes[i].touched = 0;
    return 0;
}

void sim_free(sim *s)
{
    if (s->nodes) {
        for (uint32_t i = 0; i < s->n; i++) {
            fe_node_del(s->nodes[i].node);
            fe_memstore_del(s->nodes[i].mem);
            fe_ident_wipe(&s->nodes[i].ident);
            free(s->nodes[i].contacts);
        }
    }
    fe_loopnet_del(s->net);
    adversary_free(s);
    free(s->purged);
    free(s->nodes);
    free(s->msgs);
    free(s->held);
    free(s->infected);
    free(s->id_keys);
    free(s->id_vals);
    free(s->adj_off);
    free(s->adj);
    free(s->ev);
    free(s->dlh);
    free(s->touched);
    free(s->active);
    free(s->bfs);
    memset(s, 0, sizeof *s);
}

/* --- the loop --- */

static int all_acked(const sim *s)
{
    return s->m > 0 && s->acks >= s->m;
}

static void tick_node(sim *s, uint32_t i)
{
    sim_node *sn = &s->nodes[i];
    dl_pop(s);
    sn->dl = UINT64_MAX;
    sn->dl_stamp++;
    int rc = fe_node_tick(sn->node, s->now);
    if (fe_err_is_fatal(rc))
        sim_violation(s, "node %u: fe_node_tick failed fatally: %s", i, fe_strerror(rc));
    sim_requery(s, i);
    /* A deadline that is still due after its tick would spin the loop in
     * place: move it on by a millisecond and count it for the report. */
    if (sn->dl != UINT64_MAX && sn->dl <= s->now) {
        s->stalls++;
        sn->dl = s->now + 1;
        sn->dl_stamp++;
        if (dl_push(s, sn->dl, i, sn->dl_stamp) < 0)
            exit(2);
    }
}

int sim_run(sim *s)
{
    for (;;) {
        if (s->events >= s->o.max_events) {
            fprintf(stderr, "ferry-sim: stopped after --max-events %llu\n",
                    (unsigned long long)s->o.max_events);
            break;
        }
        uint64_t tw = s->ev_len > 0 ? s->ev[0].t : UINT64_MAX;
        uint64_t tf = fe_loopnet_next_event_ms(s->net);
        uint64_t td = dl_top(s);
        uint64_t t = tw < tf ? tw : tf;
        t = td < t ? td : t;
        if (t == UINT64_MAX || t > s->end_ms)
            break;
        s->now = t;
        metrics_advance(s);
        s->events++;
        /* Fixed order among simultaneous events: world, frames, timers. */
        if (tw == t) {
            sim_ev e;
            ev_pop(s, &e);
            if (world_event(s, &e) < 0)
                return -1;
        } else if (tf == t) {
            (void)fe_loopnet_step(s->net, t, 1);
        } else {
            tick_node(s, s->dlh[0].node);
        }
        for (size_t j = 0; j < s->touched_len; j++) {
            uint32_t i = s->touched[j];
            s->nodes[i].touched = 0;
            metrics_check_node(s, i);
        }
        s->touched_len = 0;
        if (s->o.until_acked && all_acked(s)) {
            s->stop_ms = s->now;
            break;
        }
    }
    if (!s->o.until_acked || !all_acked(s))
        s->stop_ms = s->end_ms;
    s->now = s->stop_ms;
    metrics_advance(s);
    return 0;
}
