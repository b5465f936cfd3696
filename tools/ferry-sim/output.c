/* The report: one list of (key, value) pairs printed either as one JSON
 * object or as "key: value" lines, in a fixed order with fixed float
 * formatting, so equal runs print equal bytes. */
#include "sim.h"

#include "wire.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef struct field {
    const char *key;
    char val[128];
} field;

typedef struct report {
    field f[96];
    size_t len;
} report;

static void put_raw(report *r, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void put_raw(report *r, const char *key, const char *fmt, ...)
{
    if (r->len >= sizeof r->f / sizeof r->f[0])
        return;
    field *f = &r->f[r->len++];
    f->key = key;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->val, sizeof f->val, fmt, ap);
    va_end(ap);
}

static void put_u(report *r, const char *key, uint64_t v)
{
    put_raw(r, key, "%llu", (unsigned long long)v);
}

/* Floats always as %.6f; undefined ones (a ratio over nothing) as null. */
static void put_f(report *r, const char *key, double v, int defined)
{
    if (defined)
        put_raw(r, key, "%.6f", v);
    else
        put_raw(r, key, "null");
}

static void put_s(report *r, const char *key, const char *v)
{
    /* Values are fixed identifiers without quotes or backslashes. */
    put_raw(r, key, "\"%s\"", v);
}

static int cmp_u64(const void *pa, const void *pb)
{
    uint64_t a = *(const uint64_t *)pa, b = *(const uint64_t *)pb;
    return (a > b) - (a < b);
}

/* Nearest-rank percentile of sorted v[0..n), n > 0. */
static uint64_t percentile(const uint64_t *v, size_t n, double p)
{
    size_t rank = (size_t)(p * (double)n + 0.999999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return v[rank - 1];
}

static const char *topology_name(enum sim_topology t)
{
    switch (t) {
    case SIM_TOPO_LINE:
        return "line";
    case SIM_TOPO_GRID:
        return "grid";
    case SIM_TOPO_RANDOM:
        return "random";
    case SIM_TOPO_CONTACTS:
        return "contacts";
    }
    return "?";
}

/* Figures of runs with adversaries (docs/SIMULATOR.md, "Adversaries"). The
 * workload is between honest nodes only, so the ratios above are honest
 * ones; the engine counters here are summed over honest engines. */
static void put_adversaries(report *r, const sim *s)
{
    char desc[96];
    fe_node_stats st;
    uint64_t to_victim = 0, victim_delivered = 0;
    adversary_describe(s, desc, sizeof desc);
    metrics_honest_stats(s, &st);
    for (uint32_t k = 0; s->has_victim && k < s->m; k++) {
        const sim_msg *m = &s->msgs[k];
        if (m->send_rc != 0 || m->dst != s->victim)
            continue;
        to_victim++;
        victim_delivered += m->deliveries > 0;
    }
    put_s(r, "adversaries", desc);
    put_u(r, "adversaries_idle", (uint64_t)s->o.adv_idle);
    put_u(r, "adv_frames_sent", s->af.frames_sent);
    put_u(r, "forged_receipts_sent", s->af.forged_receipts);
    put_u(r, "receipts_unmatched", st.receipts_unmatched);
    put_u(r, "purges_before_delivery", s->purges_early);
    put_u(r, "replays_sent", s->af.replays);
    put_u(r, "replayed_receipts_sent", s->af.replayed_receipts);
    put_u(r, "reentries", s->reentries);
    put_u(r, "resurrected", s->resurrected);
    put_u(r, "flood_sent", s->af.flood_sent);
    put_u(r, "flood_items_max", s->af.flood_items_max);
    put_u(r, "origin_quota", s->cfg.origin_quota ? s->cfg.origin_quota : FE_ORIGIN_QUOTA);
    put_u(r, "quota_rejects", st.quota_rejects);
    put_u(r, "forged_announces_sent", s->af.forged_announces);
    put_u(r, "name_conflicts_seen", s->af.name_conflicts);
    put_u(r, "name_rebinds", s->af.name_rebinds);
    put_u(r, "victim_messages", to_victim);
    put_u(r, "victim_delivered", victim_delivered);
    put_u(r, "tampered_sent", s->af.tampered);
    put_u(r, "adversary_malformed", s->af.adv_malformed);
    put_u(r, "frags_poisoned", s->af.frags_poisoned);
    put_u(r, "auth_failures", st.auth_failures);
    put_u(r, "foreign_items", s->af.foreign_items);
}

void output_report(const sim *s, FILE *out)
{
    report r = {0};
    uint64_t sent = 0, delivered = 0, reachable = 0, del_reach = 0, dups = 0, acked = 0;
    uint64_t unpurged = 0, early = 0;
    uint64_t *lat = calloc(s->m ? s->m : 1, sizeof *lat);
    uint64_t *purge = calloc(s->m ? s->m : 1, sizeof *purge);
    size_t nlat = 0, npurge = 0;
    double lat_sum = 0;
    if (!lat || !purge) {
        free(lat), free(purge);
        fprintf(stderr, "ferry-sim: out of memory\n");
        return;
    }
    for (uint32_t k = 0; k < s->m; k++) {
        const sim_msg *m = &s->msgs[k];
        if (m->send_rc != 0)
            continue;
        sent++;
        reachable += m->reachable;
        acked += m->acked;
        early += m->early_drop;
        if (m->deliveries == 0)
            continue;
        delivered++;
        del_reach += m->reachable;
        dups += m->deliveries - 1;
        lat[nlat++] = m->delivered_ms - m->send_ms;
        lat_sum += (double)(m->delivered_ms - m->send_ms);
        if (m->holders > 0)
            unpurged++;
        else
            purge[npurge++] = m->zero_ms > m->delivered_ms ? m->zero_ms - m->delivered_ms : 0;
    }
    qsort(lat, nlat, sizeof *lat, cmp_u64);
    qsort(purge, npurge, sizeof *purge, cmp_u64);
    fe_loopnet_counters c;
    fe_loopnet_get_counters(s->net, &c);

    put_u(&r, "seed", s->o.seed);
    put_s(&r, "scenario", s->o.scenario);
    put_s(&r, "topology", topology_name(s->o.topology));
    put_s(&r, "policy", s->o.policy == FE_POLICY_NAIVE ? "naive" : "ferry");
    put_u(&r, "purge", (uint64_t)s->o.purge);
    put_u(&r, "nodes", s->n);
    put_f(&r, "mean_degree", s->mean_degree, s->o.topology != SIM_TOPO_CONTACTS);
    put_f(&r, "duration_s", (double)s->stop_ms / 1000.0, 1);
    put_f(&r, "lifetime_s", (double)s->cfg.lifetime_ms / 1000.0, 1);
    put_u(&r, "messages", sent);
    put_u(&r, "send_failures", s->send_failures);
    put_u(&r, "delivered", delivered);
    put_f(&r, "delivery_ratio", sent ? (double)delivered / (double)sent : 0, sent > 0);
    put_u(&r, "reachable", reachable);
    put_f(&r, "delivery_ratio_reachable", reachable ? (double)del_reach / (double)reachable : 0,
          reachable > 0);
    put_u(&r, "duplicates_delivered", dups);
    put_u(&r, "transmissions", c.frames_sent);
    put_u(&r, "bytes_on_air", c.bytes_sent);
    put_f(&r, "tx_per_delivered", delivered ? (double)c.frames_sent / (double)delivered : 0,
          delivered > 0);
    put_f(&r, "bytes_per_delivered", delivered ? (double)c.bytes_sent / (double)delivered : 0,
          delivered > 0);
    put_f(&r, "latency_p50_s", nlat ? (double)percentile(lat, nlat, 0.50) / 1000.0 : 0, nlat > 0);
    put_f(&r, "latency_p95_s", nlat ? (double)percentile(lat, nlat, 0.95) / 1000.0 : 0, nlat > 0);
    put_f(&r, "latency_mean_s", nlat ? lat_sum / (double)nlat / 1000.0 : 0, nlat > 0);
    put_u(&r, "acks_returned", acked);
    put_f(&r, "copy_seconds", (double)s->copy_acc_ms / 1000.0, 1);
    put_f(&r, "purge_p50_s", npurge ? (double)percentile(purge, npurge, 0.50) / 1000.0 : 0,
          npurge > 0);
    put_u(&r, "unpurged", unpurged);
    put_u(&r, "dropped_before_delivery", early);
    put_u(&r, "tx_messages",
          s->tx_by_type[FE_T_DM] + s->tx_by_type[FE_T_ANON] + s->tx_by_type[FE_T_GROUP]);
    put_u(&r, "tx_receipts", s->tx_by_type[FE_T_RECEIPT]);
    put_u(&r, "tx_summaries", s->tx_by_type[FE_T_SUMMARY]);
    put_u(&r, "tx_announces", s->tx_by_type[FE_T_ANNOUNCE]);
    put_u(&r, "tx_fragments", s->tx_by_type[FE_T_FRAG]);
    put_u(&r, "malformed_frames", s->malformed);
    put_u(&r, "frames_delivered", c.frames_delivered);
    put_u(&r, "frames_lost", c.frames_lost);
    put_u(&r, "contacts", s->contacts_made);
    put_u(&r, "events", s->events);
    put_u(&r, "deadline_stalls", s->stalls);
    if (s->adv_len > 0)
        put_adversaries(&r, s);
    put_u(&r, "invariant_violations", s->violations);
    free(lat);
    free(purge);

    if (s->o.json) {
        fputc('{', out);
        for (size_t i = 0; i < r.len; i++)
            fprintf(out, "%s\"%s\": %s", i ? ", " : "", r.f[i].key, r.f[i].val);
        fputs("}\n", out);
        return;
    }
    for (size_t i = 0; i < r.len; i++) {
        const char *v = r.f[i].val;
        size_t n = strlen(v);
        if (n >= 2 && v[0] == '"')
            fprintf(out, "%s: %.*s\n", r.f[i].key, (int)(n - 2), v + 1);
        else
            fprintf(out, "%s: %s\n", r.f[i].key, v);
    }
}

/* For debugging a run: which messages did not make it, or left copies
 * behind, and who holds them. */
void output_undelivered(const sim *s, FILE *out)
{
    for (uint32_t k = 0; k < s->m; k++) {
        const sim_msg *m = &s->msgs[k];
        int lost = m->send_rc == 0 && m->deliveries == 0;
        int left = m->send_rc == 0 && m->deliveries > 0 && m->holders > 0;
        if (!lost && !left)
            continue;
        fprintf(out, "message %u: %u -> %u (sides %u -> %u) sent %.3f s, %s%s, %s, %u holders:", k,
                m->src, m->dst, s->nodes[m->src].half, s->nodes[m->dst].half,
                (double)m->send_ms / 1000.0, lost ? "undelivered" : "delivered",
                m->reachable ? " (reachable)" : " (unreachable)", m->acked ? "acked" : "not acked",
                m->holders);
        const uint8_t *bits = s->held + (size_t)k * s->bits_stride;
        unsigned shown = 0;
        for (uint32_t i = 0; i < s->n && shown < 16; i++)
            if (sim_bit(bits, i)) {
                fprintf(out, " %u", i);
                shown++;
            }
        fputs(shown < m->holders ? " ...\n" : "\n", out);
    }
}
