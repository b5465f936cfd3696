/* ferry-sim: N real engines on the loopback medium, in virtual time, driven
 * by one seed. Shared types of the simulator's modules:
 *
 *   main.c      flags and named scenarios
 *   sim.c       set-up, the event loop, the engines' callbacks
 *   world.c     topologies, partitions, churn, crashes, contacts
 *   workload.c  messages and the keys exchanged beforehand
 *   metrics.c   the store wrapper that counts copies, invariants, figures
 *   oracle.c    which messages an ideal flood could have delivered
 *   adversary.c nodes that forge, replay, flood or tamper, and their figures
 *   output.c    JSON and text reports
 *
 * Nothing here may depend on pointer values, hash order of pointer keys or
 * the wall clock: the same arguments give byte-identical output. */
#ifndef SIM_H
#define SIM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "loopback.h"
#include "memstore.h"
#include "node.h"
#include "rng.h"

#define SIM_BCAST_LINK 1u     /* every node's broadcast link id */
#define SIM_P2P_LINK_BASE 2u  /* P2P link ids are BASE + slot, slot < FE_LINKS_MAX */
#define SIM_NODES_MAX 100000u /* --nodes bound */
#define SIM_MESSAGES_MAX 1000000u
#define SIM_TEXT_MAX 96
#define SIM_MARKER "ferry-sim msg " /* every workload text starts with it */
#define SIM_VIOLATIONS_SHOWN 10     /* the first ones are printed to stderr */

enum sim_topology { SIM_TOPO_LINE, SIM_TOPO_GRID, SIM_TOPO_RANDOM, SIM_TOPO_CONTACTS };
enum sim_workload { SIM_WL_RANDOM, SIM_WL_FIRST_TO_LAST };
enum sim_partition { SIM_PART_NONE, SIM_PART_HALVES };

/* Adversary kinds (docs/SIMULATOR.md, "Adversaries"). */
enum sim_adv_kind {
    SIM_ADV_NONE = 0,
    SIM_ADV_FORGE_RECEIPTS, /* receipts with made-up secrets for every id it relays */
    SIM_ADV_REPLAY,         /* re-sends old frames, some with a fresh lifetime */
    SIM_ADV_FLOOD,          /* sends valid messages past its own quota */
    SIM_ADV_FORGE_ANNOUNCE, /* announces an honest node's name with its own key */
    SIM_ADV_TAMPER,         /* corrupts everything it relays, sends fragment bombs */
    SIM_ADV_KINDS
};
#define SIM_ADV_MAX 64u        /* adversary nodes per run */
#define SIM_FLOOD_MAX 1000000u /* --flood-messages bound */

typedef struct sim_opts {
    char scenario[32];
    enum sim_topology topology;
    uint32_t nodes;
    double radius;             /* random: in units where node density is 1 per unit^2 */
    double contact_rate;       /* contacts: per pair, per second */
    double contact_duration_s; /* contacts: how long a link stays up */
    double loss, dup;          /* per receiver, per frame */
    double latency_ms;         /* fixed part of the link delay */
    double bitrate_bps;        /* serialisation delay; 0 = none */
    uint32_t mtu;
    double churn;     /* fraction of nodes that leave and come back */
    uint32_t crashes; /* nodes that crash and restart from their store */
    enum sim_partition partition;
    double heal_s; /* the partition heals then; < 0 = half the duration */
    uint32_t messages;
    enum sim_workload workload;
    double send_start_s, send_end_s; /* messages go out uniformly in [start, end] */
    double late_join_s;              /* > 0: the last node is offline until then */
    double duration_s, lifetime_s;
    uint64_t seed;
    enum fe_policy policy;
    int purge;
    double naive_round_s;
    int until_acked;          /* stop once every message's receipt reached its sender */
    uint32_t dedupe_capacity; /* engine config; 0 = the engine's default */
    uint32_t hops;            /* engine config: hop budget of new messages; 0 = default */
    int json, bench;
    int verbose; /* list undelivered messages to stderr at the end */
    uint64_t max_events;
    uint32_t adv_count[SIM_ADV_KINDS]; /* adversary nodes of each kind */
    int adv_idle;            /* adversary nodes are picked but behave honestly (a baseline) */
    uint32_t flood_messages; /* each flooder sends this many */
} sim_opts;

typedef struct sim_msg {
    uint32_t src, dst;
    uint64_t send_ms;
    uint8_t id[FE_MSG_ID_BYTES];
    int send_rc; /* of fe_node_send; 1 until it ran */
    char text[SIM_TEXT_MAX];
    size_t text_len;
    /* delivery and receipt */
    uint32_t deliveries;
    uint64_t delivered_ms;
    uint8_t acked;
    uint64_t acked_ms;
    /* copies held (store wrapper) */
    uint32_t holders;
    uint64_t zero_ms; /* last time holders fell to 0 */
    uint8_t early_drop;
    /* oracle */
    uint8_t reachable;
    uint8_t oracle_done; /* reached, or past its lifetime */
    uint64_t reach_ms;
} sim_msg;

typedef struct sim_contacts {
    uint32_t peer[FE_LINKS_MAX];
    uint32_t link[FE_LINKS_MAX];   /* this node's link id for it */
    uint32_t serial[FE_LINKS_MAX]; /* which contact, so a stale end event is ignored */
    uint32_t count;
} sim_contacts;

typedef struct sim_node {
    struct sim *sim;
    uint32_t idx;
    fe_node *node; /* NULL while crashed */
    fe_identity ident;
    fe_memstore *mem;
    fe_store inner; /* the memstore */
    fe_store store; /* the counting wrapper around it, given to the engine */
    sim_rng rng;
    fe_env env;
    uint64_t dl; /* deadline registered in the heap, UINT64_MAX = none */
    uint32_t dl_stamp;
    uint8_t online, crashed, touched;
    uint64_t link_slots; /* P2P link slots in use */
    double x, y;
    uint8_t half;           /* side of the halves partition */
    sim_contacts *contacts; /* contacts topology only */
    uint8_t adv;            /* enum sim_adv_kind; SIM_ADV_NONE for honest nodes */
    uint64_t purged_seen;   /* the engine's purged counter at the last item_del */
    uint32_t flood_items;   /* items held whose id a flooder made */
} sim_node;

enum sim_ev_kind {
    EV_SEND,
    EV_ONLINE,
    EV_OFFLINE,
    EV_CRASH,
    EV_RESTART,
    EV_CUT,
    EV_HEAL,
    EV_CONTACT_NEXT,
    EV_CONTACT_END,
    EV_ADV /* a = adversary index */
};

typedef struct sim_ev {
    uint64_t t;
    uint64_t seq;
    uint32_t kind;
    uint32_t a, b, la, lb, c;
} sim_ev;

typedef struct sim_dl {
    uint64_t t;
    uint32_t node, stamp;
} sim_dl;

/* What the adversaries did and what it caused. */
typedef struct sim_adv_figures {
    uint64_t frames_sent;       /* frames adversaries injected (not their engines' own) */
    uint64_t forged_receipts;   /* receipt frames with made-up secrets */
    uint64_t replays;           /* recorded frames sent again */
    uint64_t replayed_receipts; /* of which receipts */
    uint64_t flood_sent;        /* messages flooders sent */
    uint64_t flood_items_max;   /* most flooder items one honest node held at once */
    uint64_t forged_announces;
    uint64_t name_conflicts; /* NAME_CONFLICT events at honest nodes */
    uint64_t name_rebinds;   /* honest lookups of the victim's name giving another key */
    uint64_t tampered;       /* frames corrupted or made up by tamperers */
    uint64_t adv_malformed;  /* frames from adversaries rejected as malformed */
    uint64_t frags_poisoned; /* honest fragments refused after a tamperer's lie (same key) */
    uint64_t foreign_items;  /* honest item_put of ids only an adversary made */
} sim_adv_figures;

struct sim_adv;

typedef struct sim {
    sim_opts o;
    const char *const *argv; /* for the reproduce line */
    int argc;
    uint64_t now, end_ms, stop_ms;
    fe_node_config cfg;
    fe_node_callbacks cb_template;

    fe_loopnet *net;
    sim_rng medium_rng, world_rng, contact_rng, workload_rng;
    fe_env medium_env;

    sim_node *nodes;
    uint32_t n;
    sim_msg *msgs;
    uint32_t m;
    size_t bits_stride; /* bytes per per-message node bitset */
    uint8_t *held;      /* m bitsets: which nodes hold a copy */
    uint8_t *infected;  /* m bitsets: which nodes the ideal flood reached */
    uint64_t *id_keys;  /* id -> message index hash (open addressing) */
    uint32_t *id_vals;  /* index + 1, 0 = empty */
    size_t id_cap;
    int64_t sending; /* message being handed to fe_node_send, or -1 */

    /* static broadcast graph, CSR */
    uint32_t *adj_off, *adj;
    double mean_degree;
    uint8_t cut_active;

    /* world events and node deadlines: binary heaps */
    sim_ev *ev;
    size_t ev_len, ev_cap;
    uint64_t ev_seq;
    sim_dl *dlh;
    size_t dlh_len, dlh_cap;
    uint32_t *touched;
    size_t touched_len;

    /* oracle: message indices still being expanded */
    uint32_t *active;
    size_t active_len;
    uint32_t *bfs; /* scratch queue, n entries */

    /* figures */
    uint64_t copies, copy_acc_ms, copy_last_ms;
    uint64_t violations, events, stalls, acks, contacts_made, contacts_skipped;
    uint64_t send_failures;
    uint64_t malformed;     /* frames an engine rejected as malformed */
    uint64_t tx_by_type[8]; /* transmissions by frame type (wire.h enum fe_frame_type) */
    uint64_t purges_early;  /* copies purged before their message was delivered */
    uint64_t reentries;     /* copies stored again after a receipt purged them there */
    uint64_t resurrected;   /* the same, after the message's lifetime (a replay) */
    uint8_t *purged;        /* m bitsets: nodes where a receipt removed the copy */

    /* adversaries (adversary.c) */
    struct sim_adv *adv;
    uint32_t adv_len;
    uint32_t *honest; /* nodes the workload uses, ascending */
    uint32_t honest_len;
    int has_victim; /* a forge-announce adversary is configured */
    uint32_t victim;
    char victim_name[FE_NAME_MAX + 1];
    uint64_t *adv_keys; /* ids adversaries made -> kind | index << 8 */
    uint32_t *adv_vals;
    size_t adv_map_cap, adv_map_len;
    uint8_t *flood_held; /* flood_len bitsets: which nodes hold a copy */
    uint32_t flood_len, flood_cap;
    sim_adv_figures af;
    fe_node_stats honest_dead; /* counters of honest engines lost in crashes, summed */
} sim;

/* --- sim.c --- */
int sim_setup(sim *s);
int sim_run(sim *s);
void sim_free(sim *s);
/* Re-read node i's deadline after any call into it. */
void sim_requery(sim *s, uint32_t i);
int sim_ev_push(sim *s, uint64_t t, uint32_t kind, uint32_t a, uint32_t b, uint32_t la, uint32_t lb,
                uint32_t c);
void sim_violation(sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int sim_crash(sim *s, uint32_t i);
int sim_restart(sim *s, uint32_t i);
uint64_t sim_ms(double seconds);

/* --- world.c --- */
int world_build(sim *s);    /* positions, graph, loopnet links */
int world_schedule(sim *s); /* churn, crashes, partition, first contact */
int world_event(sim *s, const sim_ev *e);
int world_cut(void *ctx, uint32_t from, uint32_t to, uint64_t now_ms);
int world_up(const sim *s, uint32_t i); /* online and running */

/* --- workload.c --- */
int workload_build(sim *s);         /* messages, texts, send events */
int workload_exchange_keys(sim *s); /* directory entries into the stores */
int workload_send(sim *s, uint32_t k);
int64_t workload_find(const sim *s, const uint8_t id[FE_MSG_ID_BYTES]);
int workload_bind_id(sim *s, uint32_t k, const uint8_t id[FE_MSG_ID_BYTES]);

/* --- metrics.c --- */
void metrics_wrap_store(sim_node *sn);
void metrics_advance(sim *s); /* integrate copies up to s->now */
void metrics_check_node(sim *s, uint32_t i);
void metrics_on_deliver(sim *s, uint32_t i, const fe_message *m, uint64_t now_ms);
void metrics_on_delivered(sim *s, uint32_t i, const uint8_t id[FE_MSG_ID_BYTES], uint64_t now_ms);
int sim_bit(const uint8_t *bits, uint32_t i);
void sim_bit_set(uint8_t *bits, uint32_t i, int v);

void metrics_on_presence(sim *s, uint32_t i, enum fe_presence_event ev);
/* Counters summed over honest engines, the crashed ones included. */
void metrics_honest_stats(const sim *s, fe_node_stats *out);
void metrics_add_stats(fe_node_stats *sum, const fe_node_stats *st);

/* --- adversary.c --- */
int adversary_parse(sim_opts *o, const char *spec); /* KIND[:COUNT], or all[:COUNT] */
int adversary_pick(sim *s);  /* before the workload: adversary nodes and the honest list */
int adversary_setup(sim *s); /* after the workload: victim, tables, first events */
/* Per-node changes to the engine config (the victim announces its name). */
void adversary_node_config(const sim *s, uint32_t i, fe_node_config *cfg);
void adversary_free(sim *s);
int adversary_active(const sim *s, uint32_t i); /* node i is an adversary that acts */
int adversary_event(sim *s, const sim_ev *e);
/* Node i (an active adversary) received frame on link. */
void adversary_on_rx(sim *s, uint32_t i, uint32_t link, const uint8_t *frame, size_t len);
/* Engine of node i (an active adversary) sends frame: 1 if the adversary
 * sent something else instead. */
int adversary_on_send(sim *s, uint32_t i, uint32_t link, const uint8_t *frame, size_t len);
/* 1 if frame is a fragment with the reassembly key of one an active
 * tamperer sent within the reassembly timeout: a receiver may have taken the
 * tamperer's lie first and then refuse the honest piece. */
int adversary_frag_poisoned(const sim *s, const uint8_t *frame, size_t len);
/* Engine of node i (an active adversary) stores an item. */
void adversary_on_item(sim *s, uint32_t i, const uint8_t id[FE_MSG_ID_BYTES], uint8_t type);
/* Kind of the adversary that made id (index in *index), or SIM_ADV_NONE. */
int adversary_lookup(const sim *s, const uint8_t id[FE_MSG_ID_BYTES], uint32_t *index);
/* "kind:count,..." of the configured adversaries into out. */
void adversary_describe(const sim *s, char *out, size_t cap);

/* --- oracle.c --- */
int oracle_init(sim *s);
void oracle_on_send(sim *s, uint32_t k);
void oracle_on_node_up(sim *s, uint32_t v);
void oracle_on_edge_up(sim *s, uint32_t a, uint32_t b);
void oracle_expand_all(sim *s);

/* --- output.c --- */
void output_report(const sim *s, FILE *out);
void output_undelivered(const sim *s, FILE *out);

/* Open-addressing helpers for tables keyed by message id (workload.c,
 * adversary.c). Ids are random already; a multiply spreads any structure
 * anyway. cap is a power of two. */
static inline uint64_t sim_id_key(const uint8_t id[FE_MSG_ID_BYTES])
{
    uint64_t k = 0;
    for (int i = 0; i < FE_MSG_ID_BYTES; i++)
        k = (k << 8) | id[i];
    return k;
}

static inline size_t sim_id_slot(uint64_t k, size_t cap)
{
    return (size_t)((k * 0x9e3779b97f4a7c15ull) >> 17) & (cap - 1);
}

#endif
