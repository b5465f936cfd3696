/* The simulated world: where nodes are and who hears whom (line, grid,
 * random geometric graph, or pairwise contacts), and what changes it over
 * time (churn, crashes, a partition that heals, contacts coming and going). */
#include "sim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int world_up(const sim *s, uint32_t i)
{
    return s->nodes[i].online && !s->nodes[i].crashed;
}

int world_cut(void *ctx, uint32_t from, uint32_t to, uint64_t now_ms)
{
    const sim *s = ctx;
    (void)now_ms;
    return s->cut_active && s->nodes[from].half != s->nodes[to].half;
}

/* --- the static graph --- */

typedef struct edge {
    uint32_t a, b;
} edge;

typedef struct edges {
    edge *e;
    size_t len, cap;
} edges;

static int edge_add(edges *es, uint32_t a, uint32_t b)
{
    if (es->len == es->cap) {
        size_t cap = es->cap ? es->cap * 2 : 1024;
        edge *e = realloc(es->e, cap * sizeof *e);
        if (!e)
            return -1;
        es->e = e;
        es->cap = cap;
    }
    es->e[es->len++] = (edge){a, b};
    return 0;
}

static int cmp_u32(const void *pa, const void *pb)
{
    uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
    return (a > b) - (a < b);
}

/* Compressed adjacency from an edge list, each list sorted by index. */
static int build_csr(sim *s, const edges *es)
{
    s->adj_off = calloc((size_t)s->n + 1, sizeof *s->adj_off);
    s->adj = malloc((es->len * 2 + 1) * sizeof *s->adj);
    uint32_t *fill = calloc(s->n ? s->n : 1, sizeof *fill);
    if (!s->adj_off || !s->adj || !fill) {
        free(fill);
        return -1;
    }
    for (size_t i = 0; i < es->len; i++) {
        s->adj_off[es->e[i].a + 1]++;
        s->adj_off[es->e[i].b + 1]++;
    }
    for (uint32_t i = 0; i < s->n; i++)
        s->adj_off[i + 1] += s->adj_off[i];
    for (size_t i = 0; i < es->len; i++) {
        uint32_t a = es->e[i].a, b = es->e[i].b;
        s->adj[s->adj_off[a] + fill[a]++] = b;
        s->adj[s->adj_off[b] + fill[b]++] = a;
    }
    free(fill);
    for (uint32_t i = 0; i < s->n; i++)
        qsort(&s->adj[s->adj_off[i]], s->adj_off[i + 1] - s->adj_off[i], sizeof *s->adj, cmp_u32);
    s->mean_degree = s->n ? (double)(2 * es->len) / (double)s->n : 0.0;
    return 0;
}

/* Random geometric graph: n nodes uniform in a square of side sqrt(n), so
 * the density is one node per unit area whatever n is, joined when at most
 * radius apart. A grid of radius-sized cells keeps it O(n * degree). */
static int build_random(sim *s, edges *es)
{
    double side = sqrt((double)s->n);
    double r = s->o.radius;
    for (uint32_t i = 0; i < s->n; i++) {
        s->nodes[i].x = sim_rng_unit(&s->world_rng) * side;
        s->nodes[i].y = sim_rng_unit(&s->world_rng) * side;
        s->nodes[i].half = s->nodes[i].x >= side / 2;
    }
    size_t cells = (size_t)ceil(side / r);
    if (cells < 1)
        cells = 1;
    if (cells > 4096)
        cells = 4096; /* bounds the index; a tiny radius just scans more per cell */
    double cell = side / (double)cells;
    size_t ncell = cells * cells;
    uint32_t *start = calloc(ncell + 1, sizeof *start);
    uint32_t *order = malloc((s->n ? s->n : 1) * sizeof *order);
    uint32_t *pos = calloc(ncell, sizeof *pos);
    if (!start || !order || !pos) {
        free(start), free(order), free(pos);
        return -1;
    }
#define CELL_OF(v) ((size_t)fmin((double)(cells - 1), floor((v) / cell)))
    for (uint32_t i = 0; i < s->n; i++)
        start[CELL_OF(s->nodes[i].y) * cells + CELL_OF(s->nodes[i].x) + 1]++;
    for (size_t c = 0; c < ncell; c++)
        start[c + 1] += start[c];
    for (uint32_t i = 0; i < s->n; i++) {
        size_t c = CELL_OF(s->nodes[i].y) * cells + CELL_OF(s->nodes[i].x);
        order[start[c] + pos[c]++] = i;
    }
    int rc = 0;
    for (uint32_t i = 0; i < s->n && rc == 0; i++) {
        long cx = (long)CELL_OF(s->nodes[i].x), cy = (long)CELL_OF(s->nodes[i].y);
        for (long dy = -1; dy <= 1; dy++) {
            for (long dx = -1; dx <= 1; dx++) {
                long nx = cx + dx, ny = cy + dy;
                if (nx < 0 || ny < 0 || nx >= (long)cells || ny >= (long)cells)
                    continue;
                size_t c = (size_t)ny * cells + (size_t)nx;
                for (uint32_t k = start[c]; k < start[c + 1] && rc == 0; k++) {
                    uint32_t j = order[k];
                    if (j <= i)
                        continue;
                    double ddx = s->nodes[i].x - s->nodes[j].x;
                    double ddy = s->nodes[i].y - s->nodes[j].y;
                    if (ddx * ddx + ddy * ddy <= r * r)
                        rc = edge_add(es, i, j);
                }
            }
        }
    }
#undef CELL_OF
    free(start), free(order), free(pos);
    return rc;
}

int world_build(sim *s)
{
    edges es = {0};
    int rc = 0;
    uint32_t n = s->n;
    switch (s->o.topology) {
    case SIM_TOPO_LINE:
        for (uint32_t i = 0; i < n; i++) {
            s->nodes[i].x = i;
            s->nodes[i].half = i >= n / 2;
            if (i + 1 < n && rc == 0)
                rc = edge_add(&es, i, i + 1);
        }
        break;
    case SIM_TOPO_GRID: {
        uint32_t side = (uint32_t)ceil(sqrt((double)n));
        for (uint32_t i = 0; i < n && rc == 0; i++) {
            uint32_t x = i % side, y = i / side;
            s->nodes[i].x = x;
            s->nodes[i].y = y;
            s->nodes[i].half = x >= side / 2;
            if (x + 1 < side && i + 1 < n)
                rc = edge_add(&es, i, i + 1);
            if (rc == 0 && i + side < n)
                rc = edge_add(&es, i, i + side);
        }
        break;
    }
    case SIM_TOPO_RANDOM:
        rc = build_random(s, &es);
        break;
    case SIM_TOPO_CONTACTS:
        for (uint32_t i = 0; i < n; i++) {
            s->nodes[i].half = i >= n / 2;
            s->nodes[i].contacts = calloc(1, sizeof *s->nodes[i].contacts);
            if (!s->nodes[i].contacts)
                rc = -1;
        }
        break;
    }
    if (rc == 0)
        rc = build_csr(s, &es);
    free(es.e);
    if (rc < 0)
        return -1;
    if (s->o.topology == SIM_TOPO_CONTACTS)
        return 0;
    for (uint32_t i = 0; i < n; i++)
        if (fe_loopnet_bcast_attach(s->net, i, SIM_BCAST_LINK, 0) < 0)
            return -1;
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t k = s->adj_off[i]; k < s->adj_off[i + 1]; k++)
            if (s->adj[k] > i && fe_loopnet_connect(s->net, i, s->adj[k]) < 0)
                return -1;
    return 0;
}

/* --- scheduled changes --- */

static uint64_t uniform_ms(sim_rng *r, double lo_s, double hi_s)
{
    return sim_ms(lo_s + sim_rng_unit(r) * (hi_s - lo_s));
}

/* Pick k distinct nodes (partial Fisher-Yates); order[0..k) gets them. */
static uint32_t *pick_nodes(sim *s, sim_rng *r, uint32_t k)
{
    uint32_t *order = malloc((s->n ? s->n : 1) * sizeof *order);
    if (!order)
        return NULL;
    for (uint32_t i = 0; i < s->n; i++)
        order[i] = i;
    for (uint32_t i = 0; i < k && i < s->n; i++) {
        uint32_t j = i + (uint32_t)sim_rng_below(r, s->n - i);
        uint32_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    return order;
}

static int schedule_next_contact(sim *s)
{
    double pairs = (double)s->n * (double)(s->n - 1) / 2.0;
    double rate = s->o.contact_rate * pairs;
    if (!(rate > 0.0) || s->n < 2)
        return 0;
    double dt = sim_rng_exp(&s->contact_rng, rate);
    uint64_t t = s->now + sim_ms(dt);
    if (t > s->end_ms)
        return 0;
    return sim_ev_push(s, t, EV_CONTACT_NEXT, 0, 0, 0, 0, 0);
}

int world_schedule(sim *s)
{
    double d = s->o.duration_s;
    /* Churn: round(churn * n) distinct nodes each leave once, at a uniform
     * time in [0.1, 0.6) of the run, and come back after an absence uniform
     * in [0.05, 0.2) of the run. */
    sim_rng cr;
    sim_rng_init(&cr, s->o.seed, SIM_STREAM_CHURN, 0);
    uint32_t k = (uint32_t)llround(s->o.churn * s->n);
    if (k > s->n)
        k = s->n;
    if (k > 0) {
        uint32_t *pick = pick_nodes(s, &cr, k);
        if (!pick)
            return -1;
        for (uint32_t i = 0; i < k; i++) {
            uint64_t leave = uniform_ms(&cr, 0.1 * d, 0.6 * d);
            uint64_t back = leave + uniform_ms(&cr, 0.05 * d, 0.2 * d);
            if (sim_ev_push(s, leave, EV_OFFLINE, pick[i], 0, 0, 0, 0) < 0 ||
                sim_ev_push(s, back, EV_ONLINE, pick[i], 0, 0, 0, 0) < 0) {
                free(pick);
                return -1;
            }
        }
        free(pick);
    }
    /* Crashes: distinct nodes lose their engine (not their store) at a
     * uniform time in [0.1, 0.8) of the run and restart after a downtime
     * uniform in [0.01, 0.05) of the run. */
    k = s->o.crashes < s->n ? s->o.crashes : s->n;
    if (k > 0) {
        uint32_t *pick = pick_nodes(s, &s->world_rng, k);
        if (!pick)
            return -1;
        for (uint32_t i = 0; i < k; i++) {
            uint64_t at = uniform_ms(&s->world_rng, 0.1 * d, 0.8 * d);
            uint64_t up = at + uniform_ms(&s->world_rng, 0.01 * d, 0.05 * d);
            if (sim_ev_push(s, at, EV_CRASH, pick[i], 0, 0, 0, 0) < 0 ||
                sim_ev_push(s, up, EV_RESTART, pick[i], 0, 0, 0, 0) < 0) {
                free(pick);
                return -1;
            }
        }
        free(pick);
    }
    if (s->o.partition == SIM_PART_HALVES) {
        double heal = s->o.heal_s >= 0 ? s->o.heal_s : d / 2;
        if (sim_ev_push(s, 0, EV_CUT, 0, 0, 0, 0, 0) < 0 ||
            sim_ev_push(s, sim_ms(heal), EV_HEAL, 0, 0, 0, 0, 0) < 0)
            return -1;
    }
    if (s->o.topology == SIM_TOPO_CONTACTS)
        return schedule_next_contact(s);
    return 0;
}

/* --- contacts --- */

static int contact_find(const sim_contacts *c, uint32_t peer)
{
    for (uint32_t i = 0; i < c->count; i++)
        if (c->peer[i] == peer)
            return (int)i;
    return -1;
}

static void contact_forget(sim *s, uint32_t i, int idx)
{
    sim_contacts *c = s->nodes[i].contacts;
    s->nodes[i].link_slots &= ~(1ull << (c->link[idx] - SIM_P2P_LINK_BASE));
    c->count--;
    /* Keep the order, so iteration stays independent of removal history. */
    for (uint32_t j = (uint32_t)idx; j < c->count; j++) {
        c->peer[j] = c->peer[j + 1];
        c->link[j] = c->link[j + 1];
        c->serial[j] = c->serial[j + 1];
    }
}

/* The engine of i lost all its P2P links (offline, crash): drop them from
 * both sides' books; the loopnet already told the engines. */
static void contacts_drop_all(sim *s, uint32_t i)
{
    sim_contacts *c = s->nodes[i].contacts;
    if (!c)
        return;
    while (c->count > 0) {
        uint32_t peer = c->peer[c->count - 1];
        int pi = contact_find(s->nodes[peer].contacts, i);
        if (pi >= 0)
            contact_forget(s, peer, pi);
        sim_requery(s, peer);
        contact_forget(s, i, (int)c->count - 1);
    }
}

static int free_slot(const sim_node *sn)
{
    /* One id stays spare for the engine's own bookkeeping of links. */
    for (int b = 0; b < FE_LINKS_MAX - 1; b++)
        if (!(sn->link_slots & (1ull << b)))
            return b;
    return -1;
}

static int contact_start(sim *s)
{
    uint32_t a = (uint32_t)sim_rng_below(&s->contact_rng, s->n);
    uint32_t b = (uint32_t)sim_rng_below(&s->contact_rng, s->n - 1);
    if (b >= a)
        b++; /* a uniform pair of distinct nodes */
    if (schedule_next_contact(s) < 0)
        return -1;
    sim_node *na = &s->nodes[a], *nb = &s->nodes[b];
    int sa = free_slot(na), sb = free_slot(nb);
    if (!world_up(s, a) || !world_up(s, b) || contact_find(na->contacts, b) >= 0 || sa < 0 ||
        sb < 0) {
        /* Off the air, already together, or out of link ids: no contact. */
        s->contacts_skipped++;
        return 0;
    }
    uint32_t la = SIM_P2P_LINK_BASE + (uint32_t)sa, lb = SIM_P2P_LINK_BASE + (uint32_t)sb;
    int rc = fe_loopnet_p2p_up(s->net, a, la, b, lb, s->now);
    sim_requery(s, a);
    sim_requery(s, b);
    if (rc < 0) {
        sim_violation(s, "contact %u-%u: link up refused: %s", a, b, fe_strerror(rc));
        return 0;
    }
    uint32_t serial = (uint32_t)s->contacts_made++;
    sim_contacts *ca = na->contacts, *cb = nb->contacts;
    ca->peer[ca->count] = b, ca->link[ca->count] = la, ca->serial[ca->count++] = serial;
    cb->peer[cb->count] = a, cb->link[cb->count] = lb, cb->serial[cb->count++] = serial;
    na->link_slots |= 1ull << sa;
    nb->link_slots |= 1ull << sb;
    oracle_on_edge_up(s, a, b);
    uint64_t end = s->now + sim_ms(s->o.contact_duration_s);
    return sim_ev_push(s, end, EV_CONTACT_END, a, b, la, lb, serial);
}

static void contact_end(sim *s, const sim_ev *e)
{
    sim_contacts *ca = s->nodes[e->a].contacts;
    int ia = contact_find(ca, e->b);
    if (ia < 0 || ca->serial[ia] != e->c)
        return; /* ended early by churn or a crash */
    (void)fe_loopnet_p2p_down(s->net, e->a, e->la, s->now);
    contact_forget(s, e->a, ia);
    int ib = contact_find(s->nodes[e->b].contacts, e->a);
    if (ib >= 0)
        contact_forget(s, e->b, ib);
    sim_requery(s, e->a);
    sim_requery(s, e->b);
}

/* --- dispatch --- */

int world_event(sim *s, const sim_ev *e)
{
    switch (e->kind) {
    case EV_SEND:
        return workload_send(s, e->a);
    case EV_ONLINE:
        if (s->nodes[e->a].online)
            return 0;
        s->nodes[e->a].online = 1;
        if (fe_loopnet_set_online(s->net, e->a, 1, s->now) < 0)
            sim_violation(s, "node %u: link up on return failed", e->a);
        sim_requery(s, e->a);
        oracle_on_node_up(s, e->a);
        return 0;
    case EV_OFFLINE:
        if (!s->nodes[e->a].online)
            return 0;
        s->nodes[e->a].online = 0;
        (void)fe_loopnet_set_online(s->net, e->a, 0, s->now);
        contacts_drop_all(s, e->a);
        sim_requery(s, e->a);
        return 0;
    case EV_CRASH:
        contacts_drop_all(s, e->a);
        return sim_crash(s, e->a);
    case EV_RESTART:
        if (sim_restart(s, e->a) < 0)
            return -1;
        oracle_on_node_up(s, e->a);
        return 0;
    case EV_CUT:
        s->cut_active = 1;
        return 0;
    case EV_HEAL:
        s->cut_active = 0;
        oracle_expand_all(s);
        return 0;
    case EV_CONTACT_NEXT:
        return contact_start(s);
    case EV_CONTACT_END:
        contact_end(s, e);
        return 0;
    case EV_ADV:
        return adversary_event(s, e);
    default:
        return -1;
    }
}
