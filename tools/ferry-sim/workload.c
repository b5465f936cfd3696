/* The workload: which node sends what to whom, and when. Every text starts
 * with SIM_MARKER and a unique number, so checks can look for it in stores.
 * Keys are exchanged beforehand: each pair that will talk gets the other's
 * directory entry in its store before the engines start. */
#include "sim.h"

#include <stdlib.h>
#include <string.h>

int64_t workload_find(const sim *s, const uint8_t id[FE_MSG_ID_BYTES])
{
    uint64_t k = sim_id_key(id);
    for (size_t i = sim_id_slot(k, s->id_cap), n = 0; n < s->id_cap;
         i = (i + 1) & (s->id_cap - 1), n++) {
        if (s->id_vals[i] == 0)
            return -1;
        if (s->id_keys[i] == k)
            return (int64_t)s->id_vals[i] - 1;
    }
    return -1;
}

int workload_bind_id(sim *s, uint32_t k, const uint8_t id[FE_MSG_ID_BYTES])
{
    uint64_t key = sim_id_key(id);
    for (size_t i = sim_id_slot(key, s->id_cap), n = 0; n < s->id_cap;
         i = (i + 1) & (s->id_cap - 1), n++) {
        if (s->id_vals[i] == 0) {
            s->id_keys[i] = key;
            s->id_vals[i] = k + 1;
            memcpy(s->msgs[k].id, id, FE_MSG_ID_BYTES);
            return 0;
        }
        if (s->id_keys[i] == key)
            return s->id_vals[i] == k + 1 ? 0 : -1; /* -1: two messages, one id */
    }
    return -1;
}

int workload_build(sim *s)
{
    const sim_opts *o = &s->o;
    /* Between honest nodes only; without adversaries that is every node,
     * and the draws below are the same as they always were. */
    const uint32_t *h = s->honest;
    uint32_t hn = s->honest_len;
    s->m = o->messages;
    if (hn < 2)
        s->m = 0;
    s->bits_stride = ((size_t)s->n + 7) / 8;
    size_t m1 = s->m ? s->m : 1;
    s->msgs = calloc(m1, sizeof *s->msgs);
    s->held = calloc(m1 * s->bits_stride, 1);
    s->purged = calloc(m1 * s->bits_stride, 1);
    s->infected = calloc(m1 * s->bits_stride, 1);
    s->id_cap = 16;
    while (s->id_cap < 2 * (size_t)s->m)
        s->id_cap *= 2;
    s->id_keys = calloc(s->id_cap, sizeof *s->id_keys);
    s->id_vals = calloc(s->id_cap, sizeof *s->id_vals);
    if (!s->msgs || !s->held || !s->purged || !s->infected || !s->id_keys || !s->id_vals)
        return -1;

    double lo = o->send_start_s, hi = o->send_end_s;
    for (uint32_t k = 0; k < s->m; k++) {
        sim_msg *msg = &s->msgs[k];
        if (o->workload == SIM_WL_FIRST_TO_LAST) {
            msg->src = h[0];
            msg->dst = h[hn - 1];
        } else {
            uint32_t si = (uint32_t)sim_rng_below(&s->workload_rng, hn);
            uint32_t di = (uint32_t)sim_rng_below(&s->workload_rng, hn - 1);
            if (di >= si)
                di++;
            msg->src = h[si];
            msg->dst = h[di];
        }
        msg->send_ms = sim_ms(lo + sim_rng_unit(&s->workload_rng) * (hi - lo));
        uint8_t r[8];
        sim_rng_fill(&s->workload_rng, r, sizeof r);
        int len =
            snprintf(msg->text, sizeof msg->text, SIM_MARKER "%u %02x%02x%02x%02x%02x%02x%02x%02x",
                     k, r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
        if (len < 0 || (size_t)len >= sizeof msg->text)
            return -1;
        msg->text_len = (size_t)len;
        msg->send_rc = 1;
        if (sim_ev_push(s, msg->send_ms, EV_SEND, k, 0, 0, 0, 0) < 0)
            return -1;
    }
    return 0;
}

static int put_key(sim *s, uint32_t into, uint32_t whose)
{
    fe_dir_rec r;
    memset(&r, 0, sizeof r);
    memcpy(r.pk, s->nodes[whose].ident.pk, FE_PK_BYTES);
    snprintf(r.name, sizeof r.name, "n%u", whose);
    r.verified = 1; /* exchanged in person, fingerprints compared */
    const fe_store *st = &s->nodes[into].inner;
    return st->ops->dir_put(st->ctx, &r);
}

int workload_exchange_keys(sim *s)
{
    for (uint32_t k = 0; k < s->m; k++) {
        const sim_msg *msg = &s->msgs[k];
        if (put_key(s, msg->src, msg->dst) < 0 || put_key(s, msg->dst, msg->src) < 0)
            return -1;
    }
    return 0;
}

int workload_send(sim *s, uint32_t k)
{
    sim_msg *msg = &s->msgs[k];
    sim_node *src = &s->nodes[msg->src];
    if (!src->node) {
        /* A crashed device takes no input: the message is never written. */
        msg->send_rc = FE_ERR_INVALID;
        s->send_failures++;
        return 0;
    }
    uint8_t id[FE_MSG_ID_BYTES], to[FE_ADDR_BYTES];
    memcpy(to, s->nodes[msg->dst].ident.addr, FE_ADDR_BYTES);
    if (s->has_victim && msg->dst == s->victim) {
        /* Like a user typing the victim's name: what the sender's directory
         * binds to that name is where the message goes. */
        fe_dir_rec r;
        if (fe_node_user_by_name(src->node, &r, s->victim_name) != FE_OK) {
            sim_violation(s, "node %u: name %s is not bound any more", msg->src, s->victim_name);
        } else {
            fe_ident_addr(to, r.pk);
            if (memcmp(to, s->nodes[s->victim].ident.addr, FE_ADDR_BYTES) != 0) {
                s->af.name_rebinds++;
                sim_violation(s, "node %u: name %s resolves to another key for message %u",
                              msg->src, s->victim_name, k);
            }
        }
    }
    s->sending = k;
    int rc = fe_node_send(src->node, id, to, (const uint8_t *)msg->text, msg->text_len, 0, s->now);
    s->sending = -1;
    sim_requery(s, msg->src);
    msg->send_rc = rc;
    if (rc < 0) {
        s->send_failures++;
        sim_violation(s, "node %u: fe_node_send of message %u failed: %s", msg->src, k,
                      fe_strerror(rc));
        return 0;
    }
    /* The store wrapper bound the id when the engine stored the message; a
     * mismatch means the engine stored something else under this send. */
    int64_t found = workload_find(s, id);
    if (found < 0) {
        if (workload_bind_id(s, k, id) < 0)
            sim_violation(s, "message %u: id collides with another message", k);
    } else if (found != k) {
        sim_violation(s, "message %u: engine returned the id of message %lld", k, (long long)found);
    }
    oracle_on_send(s, k);
    return 0;
}
