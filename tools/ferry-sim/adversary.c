/* Adversaries: nodes that deviate from the protocol. Each is an ordinary
 * node (a real engine that relays, loaded like the others) whose endpoint
 * also sends frames of its own, built with the core's encoders:
 *
 *   forge-receipts  for every message id its engine stores, receipts with a
 *                   random secret and with the id's bytes as the secret, sent
 *                   at once and again every ADV_FORGE_PERIOD_MS
 *   replay          records what it hears (the first copy of every item, a
 *                   sample of fragments and summaries) and sends it again a
 *                   minute or more later, as heard and with a fresh hop
 *                   budget and the longest lifetime
 *   flood           valid private messages from its own key to random honest
 *                   nodes, sealed with fe_seal_dm directly, so the per-origin
 *                   quota of its own engine never sees them
 *   forge-announce  announces signed by its own key under the name of an
 *                   honest node (the victim) that every honest node knows
 *   tamper          every item and fragment its engine sends (and a quarter
 *                   of its summaries) is corrupted on the way out: bits
 *                   flipped in ciphertext, ids, secrets and fragment
 *                   payloads, frames and fragments truncated, fragment
 *                   headers that lie; plus bursts of made-up fragments
 *
 * Each draws from its own stream of the run's seed and acts at events in
 * the world heap, so runs stay reproducible. Idle adversaries (a baseline)
 * are picked the same way and kept out of the workload, but never act. */
#include "sim.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "frag.h"
#include "seal.h"
#include "wire.h"

#define ADV_IDS_MAX 256 /* forge-receipts: ids it keeps forging for */
#define ADV_FORGE_ROUNDS 8
#define ADV_FORGE_PERIOD_MS 15000u
#define ADV_REC_MAX 2048 /* replay: frames recorded, a ring */
#define ADV_REC_SAMPLE 8 /* replay: keeps one in this many fragments and summaries */
#define ADV_REPLAY_PERIOD_MS 30000u
#define ADV_REPLAY_BATCH 32
#define ADV_REPLAY_AGE_MS 60000u
#define ADV_ANNOUNCE_PERIOD_MS 90000u /* past the engines' one-a-minute limit per key */
#define ADV_ANNOUNCE_LIFETIME_MS (30u * 60u * 1000u)
#define ADV_BOMB_PERIOD_MS 30000u
#define ADV_BOMB_FRAMES 24     /* more than FE_REASM_SLOTS */
#define ADV_MAP_MAX (1u << 22) /* adversary-made ids remembered */
#define ADV_FKEYS 1024         /* tamper: reassembly keys of fragments it sent lately */
#define VICTIM_ANNOUNCE_MS (10u * 60u * 1000u)

typedef struct adv_rec {
    uint64_t t;
    uint16_t len;
    uint8_t type;
    uint8_t id[FE_MSG_ID_BYTES];
    uint8_t frame[FE_FRAME_MAX];
} adv_rec;

typedef struct sim_adv {
    uint32_t node;
    uint8_t kind;
    sim_rng rng;
    uint32_t round;
    /* forge-receipts */
    uint8_t ids[ADV_IDS_MAX][FE_MSG_ID_BYTES];
    uint8_t rounds[ADV_IDS_MAX];
    uint32_t ids_len, ids_next;
    /* replay */
    adv_rec *rec;
    uint32_t rec_len, rec_next;
    /* flood */
    uint32_t flood_left;
    uint64_t flood_gap_ms;
    /* tamper */
    int whole;                 /* putting the current frame back together */
    uint8_t buf[FE_FRAME_MAX]; /* its payload so far */
    size_t buf_len, buf_chunk;
    uint32_t buf_link;
    uint8_t buf_hdr[FE_FRAG_HDR_BYTES];
    uint32_t fkey[ADV_FKEYS];
    uint64_t fkey_ms[ADV_FKEYS];
    uint32_t fkey_len, fkey_next;
} sim_adv;

static const char *const kind_names[SIM_ADV_KINDS] = {
    [SIM_ADV_NONE] = "none",
    [SIM_ADV_FORGE_RECEIPTS] = "forge-receipts",
    [SIM_ADV_REPLAY] = "replay",
    [SIM_ADV_FLOOD] = "flood",
    [SIM_ADV_FORGE_ANNOUNCE] = "forge-announce",
    [SIM_ADV_TAMPER] = "tamper",
};

int adversary_parse(sim_opts *o, const char *spec)
{
    const char *colon = strchr(spec, ':');
    size_t nlen = colon ? (size_t)(colon - spec) : strlen(spec);
    uint32_t count = 1;
    if (colon) {
        char *end;
        unsigned long v = strtoul(colon + 1, &end, 10);
        if (end == colon + 1 || *end != '\0' || v < 1 || v > SIM_ADV_MAX)
            return -1;
        count = (uint32_t)v;
    }
    int all = nlen == 3 && memcmp(spec, "all", 3) == 0;
    int found = 0;
    for (int k = 1; k < SIM_ADV_KINDS; k++) {
        if (!all && (strlen(kind_names[k]) != nlen || memcmp(spec, kind_names[k], nlen) != 0))
            continue;
        if (o->adv_count[k] + count > SIM_ADV_MAX)
            return -1;
        o->adv_count[k] += count;
        found = 1;
    }
    return found ? 0 : -1;
}

void adversary_describe(const sim *s, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = '\0';
    for (int k = 1; k < SIM_ADV_KINDS && used < cap; k++) {
        if (s->o.adv_count[k] == 0)
            continue;
        int w = snprintf(out + used, cap - used, "%s%s:%u", used ? "," : "", kind_names[k],
                         s->o.adv_count[k]);
        if (w < 0)
            return;
        used += (size_t)w;
    }
}

int adversary_active(const sim *s, uint32_t i)
{
    return s->nodes[i].adv != SIM_ADV_NONE && !s->o.adv_idle;
}

/* --- ids adversaries made: open addressing, grown by doubling --- */

int adversary_lookup(const sim *s, const uint8_t id[FE_MSG_ID_BYTES], uint32_t *index)
{
    if (s->adv_map_cap == 0)
        return SIM_ADV_NONE;
    uint64_t k = sim_id_key(id);
    for (size_t i = sim_id_slot(k, s->adv_map_cap), n = 0; n < s->adv_map_cap;
         i = (i + 1) & (s->adv_map_cap - 1), n++) {
        if (s->adv_vals[i] == 0)
            return SIM_ADV_NONE;
        if (s->adv_keys[i] == k) {
            if (index)
                *index = s->adv_vals[i] >> 8;
            return (int)(s->adv_vals[i] & 0xffu);
        }
    }
    return SIM_ADV_NONE;
}

static int map_insert(uint64_t *keys, uint32_t *vals, size_t cap, uint64_t k, uint32_t v)
{
    for (size_t i = sim_id_slot(k, cap), n = 0; n < cap; i = (i + 1) & (cap - 1), n++) {
        if (vals[i] == 0) {
            keys[i] = k;
            vals[i] = v;
            return 1;
        }
        if (keys[i] == k)
            return 0;
    }
    return -1;
}

/* Remember id as made by an adversary of kind. 1 added, 0 already known
 * (to the workload or the map), -1 out of room. */
static int map_put(sim *s, const uint8_t id[FE_MSG_ID_BYTES], int kind, uint32_t index)
{
    if (workload_find(s, id) >= 0 || adversary_lookup(s, id, NULL) != SIM_ADV_NONE)
        return 0;
    if (2 * (s->adv_map_len + 1) > s->adv_map_cap) {
        size_t cap = s->adv_map_cap * 2;
        if (cap > ADV_MAP_MAX)
            return -1;
        uint64_t *keys = calloc(cap, sizeof *keys);
        uint32_t *vals = calloc(cap, sizeof *vals);
        if (!keys || !vals) {
            free(keys), free(vals);
            return -1;
        }
        for (size_t i = 0; i < s->adv_map_cap; i++)
            if (s->adv_vals[i])
                (void)map_insert(keys, vals, cap, s->adv_keys[i], s->adv_vals[i]);
        free(s->adv_keys), free(s->adv_vals);
        s->adv_keys = keys, s->adv_vals = vals, s->adv_map_cap = cap;
    }
    int rc = map_insert(s->adv_keys, s->adv_vals, s->adv_map_cap, sim_id_key(id),
                        (uint32_t)kind | (index << 8));
    s->adv_map_len += rc == 1;
    return rc;
}

/* --- set-up --- */

int adversary_pick(sim *s)
{
    uint32_t total = 0;
    for (int k = 1; k < SIM_ADV_KINDS; k++)
        total += s->o.adv_count[k];
    s->honest = malloc((s->n ? s->n : 1) * sizeof *s->honest);
    if (!s->honest)
        return -1;
    if (total > SIM_ADV_MAX || (total > 0 && total + 2 > s->n)) {
        fprintf(stderr, "ferry-sim: %u adversaries need at least %u nodes (and at most %u)\n",
                total, total + 2, SIM_ADV_MAX);
        return -1;
    }
    if (total > 0) {
        s->adv = calloc(total, sizeof *s->adv);
        uint32_t *order = malloc(s->n * sizeof *order);
        if (!s->adv || !order) {
            free(order);
            return -1;
        }
        /* Partial Fisher-Yates on the adversary stream: the topology and the
         * other streams do not move when adversaries are added. */
        sim_rng pr;
        sim_rng_init(&pr, s->o.seed, SIM_STREAM_ADVERSARY, 0);
        for (uint32_t i = 0; i < s->n; i++)
            order[i] = i;
        for (uint32_t i = 0; i < total; i++) {
            uint32_t j = i + (uint32_t)sim_rng_below(&pr, s->n - i);
            uint32_t t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        for (int k = 1; k < SIM_ADV_KINDS; k++) {
            for (uint32_t c = 0; c < s->o.adv_count[k]; c++) {
                sim_adv *a = &s->adv[s->adv_len];
                a->node = order[s->adv_len];
                a->kind = (uint8_t)k;
                sim_rng_init(&a->rng, s->o.seed, SIM_STREAM_ADVERSARY, 1 + s->adv_len);
                s->nodes[a->node].adv = (uint8_t)k;
                s->adv_len++;
            }
        }
        free(order);
    }
    for (uint32_t i = 0; i < s->n; i++)
        if (s->nodes[i].adv == SIM_ADV_NONE)
            s->honest[s->honest_len++] = i;
    return 0;
}

/* The victim of forged announces: the honest node most messages go to (the
 * lowest index on a tie), so that many sends look its name up. Every honest
 * node knows its name and key beforehand; the victim also announces. */
static int victim_setup(sim *s)
{
    uint32_t *in = calloc(s->n, sizeof *in);
    if (!in)
        return -1;
    for (uint32_t k = 0; k < s->m; k++)
        in[s->msgs[k].dst]++;
    s->victim = s->honest[0];
    for (uint32_t h = 0; h < s->honest_len; h++)
        if (in[s->honest[h]] > in[s->victim])
            s->victim = s->honest[h];
    free(in);
    s->has_victim = 1;
    snprintf(s->victim_name, sizeof s->victim_name, "n%u", s->victim);
    fe_dir_rec r;
    memset(&r, 0, sizeof r);
    memcpy(r.pk, s->nodes[s->victim].ident.pk, FE_PK_BYTES);
    memcpy(r.name, s->victim_name, sizeof r.name);
    for (uint32_t h = 0; h < s->honest_len; h++) {
        uint32_t i = s->honest[h];
        int talks = 0;
        for (uint32_t k = 0; k < s->m && !talks; k++)
            talks = (s->msgs[k].src == i && s->msgs[k].dst == s->victim) ||
                    (s->msgs[k].dst == i && s->msgs[k].src == s->victim);
        if (i == s->victim || talks)
            continue; /* the workload's exchange already put it in, verified */
        const fe_store *st = &s->nodes[i].inner;
        if (st->ops->dir_put(st->ctx, &r) < 0)
            return -1;
    }
    return 0;
}

void adversary_node_config(const sim *s, uint32_t i, fe_node_config *cfg)
{
    if (s->has_victim && i == s->victim) {
        memcpy(cfg->name, s->victim_name, sizeof cfg->name);
        cfg->announce_interval_ms = VICTIM_ANNOUNCE_MS;
    }
}

int adversary_setup(sim *s)
{
    if (s->adv_len == 0)
        return 0;
    if (s->o.adv_count[SIM_ADV_FORGE_ANNOUNCE] > 0 && victim_setup(s) < 0)
        return -1;
    s->adv_map_cap = 1024;
    s->adv_keys = calloc(s->adv_map_cap, sizeof *s->adv_keys);
    s->adv_vals = calloc(s->adv_map_cap, sizeof *s->adv_vals);
    s->flood_cap = s->o.adv_count[SIM_ADV_FLOOD] * s->o.flood_messages;
    s->flood_held = calloc((size_t)(s->flood_cap ? s->flood_cap : 1) * s->bits_stride, 1);
    if (!s->adv_keys || !s->adv_vals || !s->flood_held)
        return -1;
    if (s->o.adv_idle)
        return 0;
    uint64_t start = sim_ms(s->o.send_start_s), end = sim_ms(s->o.send_end_s);
    for (uint32_t j = 0; j < s->adv_len; j++) {
        sim_adv *a = &s->adv[j];
        uint64_t t = 0;
        switch (a->kind) {
        case SIM_ADV_FORGE_RECEIPTS:
            t = ADV_FORGE_PERIOD_MS;
            break;
        case SIM_ADV_REPLAY:
            a->rec = malloc(ADV_REC_MAX * sizeof *a->rec);
            if (!a->rec)
                return -1;
            t = ADV_REPLAY_PERIOD_MS;
            break;
        case SIM_ADV_FLOOD:
            /* Evenly over the workload's sending window. */
            a->flood_left = s->o.flood_messages;
            a->flood_gap_ms = a->flood_left ? (end - start) / a->flood_left : 0;
            if (a->flood_gap_ms == 0)
                a->flood_gap_ms = 1;
            t = start;
            break;
        case SIM_ADV_FORGE_ANNOUNCE:
            t = 5000; /* just after the victim's first announce at 0 */
            break;
        case SIM_ADV_TAMPER:
            t = ADV_BOMB_PERIOD_MS;
            break;
        default:
            return -1;
        }
        if (a->kind != SIM_ADV_FLOOD || a->flood_left > 0)
            if (sim_ev_push(s, t, EV_ADV, j, 0, 0, 0, 0) < 0)
                return -1;
    }
    return 0;
}

void adversary_free(sim *s)
{
    for (uint32_t j = 0; s->adv && j < s->adv_len; j++)
        free(s->adv[j].rec);
    free(s->adv);
    free(s->honest);
    free(s->adv_keys);
    free(s->adv_vals);
    free(s->flood_held);
}

/* --- sending --- */

/* One frame on one link, fragmented with the core's encoder if the link
 * needs it. 1 if anything went out. */
static int send_on(sim *s, uint32_t i, uint32_t link, const uint8_t *frame, size_t len)
{
    size_t count = fe_frag_count(len, s->o.mtu);
    int sent = 0;
    if (count == 1) {
        sent = fe_loopnet_send(s->net, i, link, frame, len, s->now) == 0;
        s->af.frames_sent += (uint64_t)sent;
        return sent;
    }
    uint8_t frag[FE_FRAME_MAX];
    for (unsigned f = 0; f < count; f++) {
        ptrdiff_t fl = fe_frag_make(frag, sizeof frag, frame, len, s->o.mtu, f);
        if (fl > 0 && fe_loopnet_send(s->net, i, link, frag, (size_t)fl, s->now) == 0) {
            s->af.frames_sent++;
            sent = 1;
        }
    }
    return sent;
}

/* One frame as it is (raw) or fragmented if needed, on every link the
 * adversary has: its broadcast link and its contacts. 1 if anything went
 * out. */
static int adv_send_on_all(sim *s, const sim_adv *a, const uint8_t *frame, size_t len, int raw)
{
    const sim_node *sn = &s->nodes[a->node];
    uint32_t links[FE_LINKS_MAX + 1], nl = 0;
    int sent = 0;
    if (!world_up(s, a->node))
        return 0;
    if (s->o.topology != SIM_TOPO_CONTACTS)
        links[nl++] = SIM_BCAST_LINK;
    for (uint32_t j = 0; sn->contacts && j < sn->contacts->count; j++)
        links[nl++] = sn->contacts->link[j];
    for (uint32_t j = 0; j < nl; j++) {
        if (!raw) {
            sent |= send_on(s, a->node, links[j], frame, len);
        } else if (fe_loopnet_send(s->net, a->node, links[j], frame, len, s->now) == 0) {
            s->af.frames_sent++;
            sent = 1;
        }
    }
    return sent;
}

static int adv_send(sim *s, const sim_adv *a, const uint8_t *frame, size_t len)
{
    return adv_send_on_all(s, a, frame, len, 0);
}

static sim_adv *adv_of(sim *s, uint32_t node)
{
    for (uint32_t j = 0; j < s->adv_len; j++)
        if (s->adv[j].node == node)
            return &s->adv[j];
    return NULL;
}

/* --- forge-receipts --- */

static void forge_for(sim *s, sim_adv *a, const uint8_t id[FE_MSG_ID_BYTES])
{
    uint8_t secret[FE_RECEIPT_SECRET_BYTES], frame[FE_RECEIPT_BYTES];
    /* A guess, and the id itself as the secret: neither hashes to the id. */
    sim_rng_fill(&a->rng, secret, sizeof secret);
    fe_wire_receipt(frame, FE_HOPS_DEFAULT, FE_LIFETIME_MAX_MS, secret);
    s->af.forged_receipts += (uint64_t)adv_send(s, a, frame, sizeof frame);
    memcpy(secret, id, FE_MSG_ID_BYTES);
    memcpy(secret + FE_MSG_ID_BYTES, id, FE_MSG_ID_BYTES);
    fe_wire_receipt(frame, FE_HOPS_DEFAULT, FE_LIFETIME_MAX_MS, secret);
    s->af.forged_receipts += (uint64_t)adv_send(s, a, frame, sizeof frame);
}

void adversary_on_item(sim *s, uint32_t i, const uint8_t id[FE_MSG_ID_BYTES], uint8_t type)
{
    sim_adv *a = adv_of(s, i);
    if (!a || a->kind != SIM_ADV_FORGE_RECEIPTS ||
        (type != FE_T_DM && type != FE_T_ANON && type != FE_T_GROUP))
        return;
    for (uint32_t j = 0; j < a->ids_len; j++)
        if (memcmp(a->ids[j], id, FE_MSG_ID_BYTES) == 0)
            return;
    uint32_t j = a->ids_next;
    a->ids_next = (a->ids_next + 1) % ADV_IDS_MAX;
    if (a->ids_len < ADV_IDS_MAX)
        a->ids_len++;
    memcpy(a->ids[j], id, FE_MSG_ID_BYTES);
    a->rounds[j] = 0;
    forge_for(s, a, id);
}

static void forge_round(sim *s, sim_adv *a)
{
    for (uint32_t j = 0; j < a->ids_len; j++)
        if (a->rounds[j] < ADV_FORGE_ROUNDS) {
            a->rounds[j]++;
            forge_for(s, a, a->ids[j]);
        }
}

/* --- replay --- */

static void record(sim_adv *a, const uint8_t *frame, size_t len, uint64_t now)
{
    fe_frame f;
    if (len > FE_FRAME_MAX || fe_wire_decode(&f, frame, len) != FE_OK)
        return;
    if (f.type <= FE_T_ANNOUNCE) {
        /* Items: the first copy of each is enough. */
        for (uint32_t j = 0; j < a->rec_len; j++)
            if (a->rec[j].type == f.type && memcmp(a->rec[j].id, f.id, FE_MSG_ID_BYTES) == 0)
                return;
    } else if (sim_rng_below(&a->rng, ADV_REC_SAMPLE) != 0) {
        return;
    }
    adv_rec *r = &a->rec[a->rec_next];
    a->rec_next = (a->rec_next + 1) % ADV_REC_MAX;
    if (a->rec_len < ADV_REC_MAX)
        a->rec_len++;
    r->t = now;
    r->len = (uint16_t)len;
    r->type = f.type;
    memcpy(r->id, f.id, FE_MSG_ID_BYTES);
    memcpy(r->frame, frame, len);
}

static void replay_round(sim *s, sim_adv *a)
{
    uint8_t fresh[FE_FRAME_MAX];
    for (int b = 0; b < ADV_REPLAY_BATCH && a->rec_len > 0; b++) {
        const adv_rec *r = &a->rec[sim_rng_below(&a->rng, a->rec_len)];
        if (r->t + ADV_REPLAY_AGE_MS > s->now)
            continue;
        int rcpt = r->type == FE_T_RECEIPT;
        int sent = adv_send(s, a, r->frame, r->len);
        if (r->type <= FE_T_ANNOUNCE) {
            /* Hops and lifetime are not authenticated: make it look new. */
            memcpy(fresh, r->frame, r->len);
            fe_wire_patch_item(fresh, r->len, FE_HOPS_DEFAULT, FE_LIFETIME_MAX_MS);
            sent += adv_send(s, a, fresh, r->len);
        }
        s->af.replays += (uint64_t)sent;
        s->af.replayed_receipts += rcpt ? (uint64_t)sent : 0;
    }
}

/* --- flood --- */

static void flood_one(sim *s, sim_adv *a)
{
    const fe_identity *me = &s->nodes[a->node].ident;
    const sim_node *to = &s->nodes[s->honest[sim_rng_below(&a->rng, s->honest_len)]];
    uint8_t k[FE_SHARED_KEY_BYTES], salt[FE_SALT_BYTES], id[FE_MSG_ID_BYTES];
    uint8_t frame[FE_FRAME_MAX];
    char text[48];
    a->flood_left--;
    if (s->flood_len >= s->flood_cap || !world_up(s, a->node))
        return;
    int tl = snprintf(text, sizeof text, "flood %u from node %u", s->flood_len, a->node);
    sim_rng_fill(&a->rng, salt, sizeof salt);
    if (tl < 0 || fe_seal_shared_key(k, to->ident.xpk, me->xsk) != FE_OK)
        return;
    ptrdiff_t len =
        fe_seal_dm(frame, sizeof frame, id, k, me->addr, to->ident.addr, salt,
                   (const uint8_t *)text, (size_t)tl, FE_HOPS_DEFAULT, FE_LIFETIME_MAX_MS);
    sodium_memzero(k, sizeof k);
    if (len <= 0 || map_put(s, id, SIM_ADV_FLOOD, s->flood_len) != 1)
        return;
    s->flood_len++;
    s->af.flood_sent += (uint64_t)adv_send(s, a, frame, (size_t)len);
}

/* --- forge-announce --- */

static void forge_announce(sim *s, sim_adv *a)
{
    uint8_t frame[FE_FRAME_MAX];
    char decoy[FE_NAME_MAX + 1];
    /* First under a name of its own, then the victim's (the rename path),
     * every fourth time going offline and back (a fresh claim). */
    snprintf(decoy, sizeof decoy, "x%u", a->node);
    const char *name = a->round == 0 ? decoy : s->victim_name;
    int offline = a->round % 4 == 3;
    ptrdiff_t len = fe_seal_announce(frame, sizeof frame, &s->nodes[a->node].ident, a->round + 1,
                                     name, offline, FE_HOPS_DEFAULT, ADV_ANNOUNCE_LIFETIME_MS);
    a->round++;
    if (len > 0)
        s->af.forged_announces += (uint64_t)adv_send(s, a, frame, (size_t)len);
}

/* --- tamper --- */

static void note_fkey(sim *s, sim_adv *a, const uint8_t *frag)
{
    a->fkey[a->fkey_next] = fe_get_be32(frag + 3);
    a->fkey_ms[a->fkey_next] = s->now;
    a->fkey_next = (a->fkey_next + 1) % ADV_FKEYS;
    if (a->fkey_len < ADV_FKEYS)
        a->fkey_len++;
}

int adversary_frag_poisoned(const sim *s, const uint8_t *frame, size_t len)
{
    if (len <= FE_FRAG_HDR_BYTES || frame[0] != fe_wire_type_byte(FE_T_FRAG, 0))
        return 0;
    uint32_t key = fe_get_be32(frame + 3);
    for (uint32_t j = 0; j < s->adv_len; j++) {
        const sim_adv *a = &s->adv[j];
        if (a->kind != SIM_ADV_TAMPER || s->o.adv_idle)
            continue;
        for (uint32_t f = 0; f < a->fkey_len; f++)
            if (a->fkey[f] == key && a->fkey_ms[f] + FE_REASM_TIMEOUT_MS >= s->now)
                return 1;
    }
    return 0;
}

static void flip(sim_adv *a, uint8_t *p, size_t off, size_t span)
{
    if (span > 0)
        p[off + sim_rng_below(&a->rng, span)] ^= (uint8_t)(1u << sim_rng_below(&a->rng, 8));
}

/* Corrupt a whole frame in place; its new length, or 0 to let it pass. */
static size_t tamper_whole(sim *s, sim_adv *a, uint8_t *out, size_t len)
{
    unsigned type = (out[0] >> 3) & 7u;
    size_t body = type == FE_T_DM ? 20 : 16; /* ciphertext offset; ANON and GROUP: 16 */
    size_t idoff = type == FE_T_DM ? 12 : 8;
    switch (type) {
    case FE_T_DM:
    case FE_T_ANON:
    case FE_T_GROUP:
        if (len <= body)
            return 0;
        switch (sim_rng_below(&a->rng, 3)) {
        case 0:
            flip(a, out, body, len - body);
            return len;
        case 1:
            /* Another id: relays take it for a new message. */
            flip(a, out, idoff, FE_MSG_ID_BYTES);
            return map_put(s, out + idoff, SIM_ADV_TAMPER, 0) < 0 ? 0 : len;
        default:
            return 1 + sim_rng_below(&a->rng, len - 1);
        }
    case FE_T_RECEIPT:
    case FE_T_ANNOUNCE:
        if (len <= FE_ITEM_HDR_BYTES)
            return 0;
        flip(a, out, FE_ITEM_HDR_BYTES, len - FE_ITEM_HDR_BYTES);
        return len;
    default:
        /* Summaries: mostly left alone, so that peers keep offering it items. */
        if (len <= 2 || sim_rng_below(&a->rng, 4) != 0)
            return 0;
        flip(a, out, 2, len - 2);
        return len;
    }
}

/* Corrupt one fragment in place; its new length. */
static size_t tamper_frag(sim_adv *a, uint8_t *out, size_t len)
{
    switch (sim_rng_below(&a->rng, 4)) {
    case 0: /* truncated */
        return FE_FRAG_HDR_BYTES + 1 + sim_rng_below(&a->rng, len - FE_FRAG_HDR_BYTES - 1);
    case 1: /* a payload bit */
        flip(a, out, FE_FRAG_HDR_BYTES, len - FE_FRAG_HDR_BYTES);
        return len;
    case 2: /* claims another count: the most there can be, or one less */
        out[2] = out[2] == FE_FRAG_MAX_COUNT ? FE_FRAG_MAX_COUNT - 1 : FE_FRAG_MAX_COUNT;
        return len;
    default: /* claims to be another piece */
        out[1] = (uint8_t)((out[1] + 1u) % out[2]);
        return len;
    }
}

/* The engine hands over the fragments of one frame for one link one after
 * the other, so the tamperer can also put the frame back together, corrupt
 * it whole and fragment it again: valid fragments of a corrupted item, which
 * honest relays reassemble, hold and pass on. Half the frames go that way,
 * the other half have each fragment corrupted. */
int adversary_on_send(sim *s, uint32_t i, uint32_t link, const uint8_t *frame, size_t len)
{
    sim_adv *a = adv_of(s, i);
    uint8_t out[FE_FRAME_MAX];
    if (!a || a->kind != SIM_ADV_TAMPER || len == 0 || len > sizeof out)
        return 0;
    memcpy(out, frame, len);
    if (((frame[0] >> 3) & 7u) != FE_T_FRAG) {
        len = tamper_whole(s, a, out, len);
        if (len == 0)
            return 0;
    } else {
        if (len <= FE_FRAG_HDR_BYTES + 1 || frame[2] < 2)
            return 0;
        unsigned index = frame[1], count = frame[2];
        size_t plen = len - FE_FRAG_HDR_BYTES;
        if (index == 0) {
            a->whole = sim_rng_below(&a->rng, 2) == 0;
            a->buf_len = 0;
            a->buf_chunk = plen;
            a->buf_link = link;
            memcpy(a->buf_hdr, frame, FE_FRAG_HDR_BYTES);
        }
        if (a->whole && index * a->buf_chunk == a->buf_len && link == a->buf_link &&
            memcmp(a->buf_hdr + 2, frame + 2, FE_FRAG_HDR_BYTES - 2) == 0 &&
            a->buf_len + plen <= sizeof a->buf) {
            memcpy(a->buf + a->buf_len, frame + FE_FRAG_HDR_BYTES, plen);
            a->buf_len += plen;
            if (index + 1 < count)
                return 1; /* held back until the frame is whole */
            a->whole = 0;
            size_t wl = tamper_whole(s, a, a->buf, a->buf_len);
            if (wl > 0 && world_up(s, i)) {
                (void)send_on(s, i, link, a->buf, wl);
                s->af.tampered++;
            }
            return 1;
        }
        a->whole = 0;
        note_fkey(s, a, out);
        len = tamper_frag(a, out, len);
    }
    if (fe_loopnet_send(s->net, i, link, out, len, s->now) == 0) {
        s->af.frames_sent++;
        s->af.tampered++;
    }
    return 1;
}

/* Made-up fragments: some fit a reassembly slot and never complete (more
 * of them than there are slots), some declare more than a whole frame, some
 * have a count no frame can have. */
static void frag_bomb(sim *s, sim_adv *a)
{
    uint8_t out[FE_FRAME_MAX];
    size_t chunk_max = s->o.mtu - FE_FRAG_HDR_BYTES;
    for (int b = 0; b < ADV_BOMB_FRAMES; b++) {
        unsigned count, index;
        size_t plen;
        switch (sim_rng_below(&a->rng, 3)) {
        case 0:
            count = 2 + (unsigned)sim_rng_below(&a->rng, FE_FRAG_MAX_COUNT - 1);
            plen = (FE_FRAME_MAX - 1) / (count - 1);
            plen = plen < chunk_max ? plen : chunk_max;
            index = (unsigned)sim_rng_below(&a->rng, count - 1);
            break;
        case 1:
            count = FE_FRAG_MAX_COUNT;
            plen = chunk_max;
            index = 0;
            break;
        default:
            count =
                FE_FRAG_MAX_COUNT + 1 + (unsigned)sim_rng_below(&a->rng, 255 - FE_FRAG_MAX_COUNT);
            plen = chunk_max;
            index = 0;
            break;
        }
        out[0] = fe_wire_type_byte(FE_T_FRAG, 0);
        out[1] = (uint8_t)index;
        out[2] = (uint8_t)count;
        sim_rng_fill(&a->rng, out + 3, 4 + plen);
        size_t len = FE_FRAG_HDR_BYTES + plen;
        note_fkey(s, a, out);
        s->af.tampered += (uint64_t)adv_send_on_all(s, a, out, len, 1);
    }
}

/* --- dispatch --- */

void adversary_on_rx(sim *s, uint32_t i, uint32_t link, const uint8_t *frame, size_t len)
{
    sim_adv *a = adv_of(s, i);
    (void)link;
    if (a && a->kind == SIM_ADV_REPLAY)
        record(a, frame, len, s->now);
}

int adversary_event(sim *s, const sim_ev *e)
{
    if (e->a >= s->adv_len)
        return -1;
    sim_adv *a = &s->adv[e->a];
    uint64_t next = UINT64_MAX;
    switch (a->kind) {
    case SIM_ADV_FORGE_RECEIPTS:
        forge_round(s, a);
        next = s->now + ADV_FORGE_PERIOD_MS;
        break;
    case SIM_ADV_REPLAY:
        replay_round(s, a);
        next = s->now + ADV_REPLAY_PERIOD_MS;
        break;
    case SIM_ADV_FLOOD:
        flood_one(s, a);
        if (a->flood_left > 0)
            next = s->now + a->flood_gap_ms;
        break;
    case SIM_ADV_FORGE_ANNOUNCE:
        forge_announce(s, a);
        next = s->now + ADV_ANNOUNCE_PERIOD_MS;
        break;
    case SIM_ADV_TAMPER:
        frag_bomb(s, a);
        next = s->now + ADV_BOMB_PERIOD_MS;
        break;
    default:
        return -1;
    }
    if (next <= s->end_ms && sim_ev_push(s, next, EV_ADV, e->a, 0, 0, 0, 0) < 0)
        return -1;
    return 0;
}
