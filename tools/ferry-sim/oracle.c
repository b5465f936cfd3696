/* The reachability oracle: for each message, the set of nodes an ideal
 * flood (zero latency, no loss, unlimited bandwidth) would have reached.
 *
 * Connectivity changes only at discrete world events, so the set is
 * expanded when the message is sent and after every change that can add
 * an edge: a node coming back (churn, restart), a partition healing, a
 * contact starting. It spreads along edges between nodes that are both up
 * (online, not crashed), in the direction the cut hook allows. Nodes that go
 * down keep what they hold and spread it again when back. A message is
 * reachable if its recipient joins the set before send time + lifetime. */
#include "sim.h"

#include <stdlib.h>

int oracle_init(sim *s)
{
    s->active = calloc(s->m ? s->m : 1, sizeof *s->active);
    return s->active ? 0 : -1;
}

static uint8_t *bits_of(sim *s, uint32_t k)
{
    return s->infected + (size_t)k * s->bits_stride;
}

static int can_pass(sim *s, uint32_t from, uint32_t to)
{
    return world_up(s, from) && world_up(s, to) && !world_cut(s, from, to, s->now);
}

/* Add v to message k's set; 1 if the message just reached its recipient. */
static int infect(sim *s, uint32_t k, uint32_t v)
{
    sim_msg *msg = &s->msgs[k];
    sim_bit_set(bits_of(s, k), v, 1);
    if (v == msg->dst && !msg->oracle_done && s->now <= msg->send_ms + s->cfg.lifetime_ms) {
        msg->reachable = 1;
        msg->reach_ms = s->now;
        msg->oracle_done = 1;
        return 1;
    }
    return 0;
}

/* Flood message k from the nodes queued in s->bfs[0..len). Every node ends
 * in the queue at most once, so this is O(n + edges). */
static void flood(sim *s, uint32_t k, size_t len)
{
    uint8_t *bits = bits_of(s, k);
    for (size_t head = 0; head < len; head++) {
        uint32_t u = s->bfs[head];
        if (!world_up(s, u))
            continue;
        for (uint32_t e = s->adj_off[u]; e < s->adj_off[u + 1]; e++) {
            uint32_t v = s->adj[e];
            if (sim_bit(bits, v) || !can_pass(s, u, v))
                continue;
            if (infect(s, k, v))
                return;
            s->bfs[len++] = v;
        }
        const sim_contacts *c = s->nodes[u].contacts;
        for (uint32_t j = 0; c && j < c->count; j++) {
            uint32_t v = c->peer[j];
            if (sim_bit(bits, v) || !can_pass(s, u, v))
                continue;
            if (infect(s, k, v))
                return;
            s->bfs[len++] = v;
        }
    }
}

/* Drop messages that are done or past their lifetime from the active list. */
static void prune(sim *s)
{
    size_t w = 0;
    for (size_t r = 0; r < s->active_len; r++) {
        uint32_t k = s->active[r];
        sim_msg *msg = &s->msgs[k];
        if (!msg->oracle_done && s->now > msg->send_ms + s->cfg.lifetime_ms)
            msg->oracle_done = 1;
        if (!msg->oracle_done)
            s->active[w++] = k;
    }
    s->active_len = w;
}

void oracle_on_send(sim *s, uint32_t k)
{
    sim_msg *msg = &s->msgs[k];
    prune(s);
    s->active[s->active_len++] = k;
    if (infect(s, k, msg->src))
        return;
    s->bfs[0] = msg->src;
    flood(s, k, 1);
}

void oracle_on_node_up(sim *s, uint32_t v)
{
    if (!world_up(s, v))
        return;
    prune(s);
    for (size_t a = 0; a < s->active_len; a++) {
        uint32_t k = s->active[a];
        uint8_t *bits = bits_of(s, k);
        int has = sim_bit(bits, v);
        /* Not holding it: v may catch it from a neighbour that does. */
        for (uint32_t e = s->adj_off[v]; !has && e < s->adj_off[v + 1]; e++) {
            uint32_t u = s->adj[e];
            has = sim_bit(bits, u) && can_pass(s, u, v);
        }
        if (!has)
            continue;
        if (!sim_bit(bits, v) && infect(s, k, v))
            continue;
        s->bfs[0] = v;
        flood(s, k, 1);
    }
}

void oracle_on_edge_up(sim *s, uint32_t a, uint32_t b)
{
    prune(s);
    for (size_t i = 0; i < s->active_len; i++) {
        uint32_t k = s->active[i];
        uint8_t *bits = bits_of(s, k);
        int ha = sim_bit(bits, a), hb = sim_bit(bits, b);
        uint32_t to;
        if (ha && !hb && can_pass(s, a, b))
            to = b;
        else if (hb && !ha && can_pass(s, b, a))
            to = a;
        else
            continue;
        if (infect(s, k, to))
            continue;
        s->bfs[0] = to;
        flood(s, k, 1);
    }
}

void oracle_expand_all(sim *s)
{
    prune(s);
    for (size_t i = 0; i < s->active_len; i++) {
        uint32_t k = s->active[i];
        const uint8_t *bits = bits_of(s, k);
        size_t len = 0;
        for (uint32_t v = 0; v < s->n; v++)
            if (sim_bit(bits, v) && world_up(s, v))
                s->bfs[len++] = v;
        flood(s, k, len);
    }
}
