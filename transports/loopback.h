/* The loopback pseudo-transport: an in-process medium that connects many
 * engines in one process, for integration tests and the simulator.
 *
 * A fe_loopnet holds endpoints (one per engine) and the links between them,
 * and a queue of frames in flight ordered by (delivery time, sequence
 * number), so equal inputs give equal runs. Two media:
 *
 * - broadcast: an endpoint attached to the broadcast medium sees it as one
 *   FE_LINK_BROADCAST link; fe_loopnet_connect() makes two endpoints
 *   neighbours (symmetric), and one send reaches every current neighbour;
 * - point-to-point: fe_loopnet_p2p_up() joins two endpoints by a FE_LINK_P2P
 *   link that each side knows under its own link id.
 *
 * Each medium has a latency (fixed part plus serialisation time), a loss and
 * a duplication probability, drawn per receiver from the fe_env given at
 * creation. A cut hook models partitions, asymmetric ones included.
 *
 * The loopnet does not read a clock: every call that can move frames takes
 * now_ms, the caller's (virtual) time. Not thread-safe. */
#ifndef FE_LOOPBACK_H
#define FE_LOOPBACK_H

#include <stddef.h>
#include <stdint.h>

#include "../core/env.h"
#include "../core/err.h"
#include "../core/node.h"

typedef struct fe_loopnet fe_loopnet;

/* Frames in flight at once; a send beyond this is dropped and counted. */
#define FE_LOOPNET_QUEUE_MAX (1u << 22)
/* Endpoints per loopnet. */
#define FE_LOOPNET_ENDPOINTS_MAX (1u << 20)
/* Broadcast neighbours and point-to-point links per endpoint. */
#define FE_LOOPNET_NEIGHBOURS_MAX 4096u
#define FE_LOOPNET_P2P_PER_EP_MAX FE_LINKS_MAX

typedef struct fe_loopnet_medium {
    uint64_t latency_ms;  /* fixed part of every frame's delay */
    uint64_t bitrate_bps; /* adds ceil(len * 8 * 1000 / bitrate) ms; 0 = no serialisation cost */
    double loss;          /* probability that one receiver misses a frame, 0..1 */
    double dup;           /* probability that a received frame arrives twice, 0..1 */
    size_t mtu;           /* largest frame, reported to the engine at link up */
} fe_loopnet_medium;

/* 1 if frames from endpoint `from` to endpoint `to` are cut at now_ms. Asked
 * once per receiver when a frame is sent. */
typedef int (*fe_loopnet_cut_fn)(void *ctx, uint32_t from, uint32_t to, uint64_t now_ms);

/* Called after each frame was handed to the engine of endpoint `to` (after
 * fe_node_on_frame returned rc), so the owner can re-read that node's
 * deadline and check it. May not call fe_loopnet_step. */
typedef void (*fe_loopnet_rx_fn)(void *ctx, uint32_t to, uint32_t from, uint32_t link,
                                 const uint8_t *frame, size_t len, int rc, uint64_t now_ms);

typedef struct fe_loopnet_counters {
    /* Transmissions: one per accepted send, whatever the number of receivers. */
    uint64_t frames_sent, bytes_sent;
    /* Frames handed to an engine, one per receiver. */
    uint64_t frames_delivered, bytes_delivered;
    uint64_t frames_lost;       /* dropped by the loss probability, per receiver */
    uint64_t frames_duplicated; /* extra copies made by the duplication probability */
    uint64_t frames_cut;        /* per receiver, by the cut hook */
    uint64_t frames_dropped;    /* receiver offline or crashed, link gone, or queue full */
    uint64_t sends_refused;     /* sender offline or crashed, unknown link, too big */
} fe_loopnet_counters;

/* Create an empty loopnet. rng (borrowed, must outlive the loopnet) draws
 * loss and duplication; NULL means libsodium's randombytes_buf. Both media
 * start with no latency, no loss, no duplication and an MTU of FE_FRAME_MAX.
 * 0 or FE_ERR_NOMEM. */
FE_MUST_CHECK int fe_loopnet_new(fe_loopnet **out, const fe_env *rng);
/* Free the loopnet and the frames in flight; never touches the engines.
 * Accepts NULL. */
void fe_loopnet_del(fe_loopnet *net);

/* Set the knobs of a medium (FE_LINK_BROADCAST or FE_LINK_P2P). They apply
 * to frames sent afterwards; the MTU to links brought up afterwards.
 * 0 or FE_ERR_INVALID (probabilities outside 0..1, MTU below FE_MTU_MIN). */
int fe_loopnet_set_medium(fe_loopnet *net, enum fe_link_kind kind, const fe_loopnet_medium *m);
void fe_loopnet_set_cut(fe_loopnet *net, fe_loopnet_cut_fn fn, void *ctx);
void fe_loopnet_set_observer(fe_loopnet *net, fe_loopnet_rx_fn fn, void *ctx);

/* Add an endpoint for node (may be NULL: a node not running yet) with an
 * opaque user pointer; it starts online, with no link. Writes its index
 * (0, 1, 2, ... in order of addition). 0, FE_ERR_FULL or FE_ERR_NOMEM. */
FE_MUST_CHECK int fe_loopnet_add(fe_loopnet *net, uint32_t *ep, fe_node *node, void *user);

/* Swap the engine of an endpoint, for a crash (node = NULL) and a restart
 * (the new engine). The old engine is never called again, so the caller may
 * delete it before or after. Point-to-point links of the endpoint go down
 * (the peer gets fe_node_link_down); while the endpoint has no engine,
 * frames arriving for it are dropped. A new engine on an online endpoint
 * gets fe_node_link_up for the broadcast link. Returns 0, FE_ERR_INVALID, or the
 * error of fe_node_link_up. */
int fe_loopnet_replace(fe_loopnet *net, uint32_t ep, fe_node *node, uint64_t now_ms);

fe_node *fe_loopnet_node(const fe_loopnet *net, uint32_t ep);
void *fe_loopnet_user(const fe_loopnet *net, uint32_t ep);
size_t fe_loopnet_endpoint_count(const fe_loopnet *net);

/* Attach the endpoint to the broadcast medium as its link `link`; if online
 * and running, the engine gets fe_node_link_up. 0, FE_ERR_INVALID (already
 * attached or link id in use on that endpoint) or the error of link_up. */
int fe_loopnet_bcast_attach(fe_loopnet *net, uint32_t ep, uint32_t link, uint64_t now_ms);

/* Make a and b broadcast neighbours (symmetric), or undo it. Frames already
 * in flight still arrive. connect: 0, FE_ERR_DUPLICATE (already neighbours),
 * FE_ERR_FULL, FE_ERR_NOMEM or FE_ERR_INVALID (a == b, bad index);
 * disconnect: 0, FE_ERR_NOTFOUND or FE_ERR_INVALID. */
int fe_loopnet_connect(fe_loopnet *net, uint32_t a, uint32_t b);
int fe_loopnet_disconnect(fe_loopnet *net, uint32_t a, uint32_t b);
/* 1 if a and b are broadcast neighbours. */
int fe_loopnet_connected(const fe_loopnet *net, uint32_t a, uint32_t b);

/* Take an endpoint off the air or back. Offline endpoints neither send nor
 * receive. Going offline: its engine gets fe_node_link_down for the
 * broadcast link and its point-to-point links go down (both sides told);
 * coming back: its engine gets fe_node_link_up for the broadcast link, so
 * anti-entropy starts again. 0 (also when nothing changes), FE_ERR_INVALID
 * or the error of link_up. */
int fe_loopnet_set_online(fe_loopnet *net, uint32_t ep, int online, uint64_t now_ms);
int fe_loopnet_online(const fe_loopnet *net, uint32_t ep);

/* Open a point-to-point link between a (as its link link_a) and b (as
 * link_b) and call fe_node_link_up on both running engines. Both endpoints
 * must be online. 0, FE_ERR_INVALID (offline, a == b, link id in use),
 * FE_ERR_FULL, FE_ERR_NOMEM, or the error of link_up (then the link is not
 * created and neither side keeps it up). */
int fe_loopnet_p2p_up(fe_loopnet *net, uint32_t a, uint32_t link_a, uint32_t b, uint32_t link_b,
                      uint64_t now_ms);
/* Close the point-to-point link that endpoint a knows as link_a: frames in
 * flight on it are dropped, both running engines get fe_node_link_down.
 * 0 or FE_ERR_NOTFOUND. */
int fe_loopnet_p2p_down(fe_loopnet *net, uint32_t a, uint32_t link_a, uint64_t now_ms);

/* Transmit a frame from endpoint ep on its link `link`; meant to be called
 * from the engine's send callback. The bytes are copied. On the broadcast
 * link one transmission reaches every neighbour that is not cut and does not
 * lose it. Returns 0 when transmitted (even if nobody hears it),
 * FE_ERR_INVALID (offline sender, unknown link), FE_ERR_TOOBIG (over the
 * medium's MTU), FE_ERR_FULL (queue full) or FE_ERR_NOMEM; refused sends are
 * counted, never queued. */
int fe_loopnet_send(fe_loopnet *net, uint32_t ep, uint32_t link, const uint8_t *frame, size_t len,
                    uint64_t now_ms);

/* Delivery time of the earliest frame in flight, or UINT64_MAX. */
uint64_t fe_loopnet_next_event_ms(const fe_loopnet *net);
/* Deliver frames due at or before now_ms in (time, sequence) order by
 * calling fe_node_on_frame, at most max_frames of them (frames sent by the
 * engines meanwhile join the queue and may be among them). Returns how many
 * frames left the queue (delivered or dropped). */
size_t fe_loopnet_step(fe_loopnet *net, uint64_t now_ms, size_t max_frames);
/* Frames in flight. */
size_t fe_loopnet_pending(const fe_loopnet *net);

void fe_loopnet_get_counters(const fe_loopnet *net, fe_loopnet_counters *out);

#endif
