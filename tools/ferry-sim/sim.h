/* ferry-sim: N real engines on the loopback medium, in virtual time, driven
 * by one seed. Shared types of the simulator's modules:
 *
 *   main.c      flags and named scenarios
 *   sim.c       set-up, the event loop, the engines' callbacks
 *   world.c     topologies, partitions, churn, crashes, contacts
 *   workload.c  messages and the keys exchanged beforehand
 *   metrics.c   the store wrapper that counts copies, invariants, figures
 *   oracle.c    which messages an ideal flood could have delivered
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
    EV_CONTACT_END
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

/* --- oracle.c --- */
int oracle_init(sim *s);
void oracle_on_send(sim *s, uint32_t k);
void oracle_on_node_up(sim *s, uint32_t v);
void oracle_on_edge_up(sim *s, uint32_t a, uint32_t b);
void oracle_expand_all(sim *s);

/* --- output.c --- */
void output_report(const sim *s, FILE *out);
void output_undelivered(const sim *s, FILE *out);

#endif
