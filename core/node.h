/* The ferry protocol engine. Sans-I/O: it never reads a clock, opens a
 * socket or touches a file. Callers feed it frames and time; it answers
 * through the callbacks below and through the store.
 *
 * Single-threaded: one fe_node is driven from one thread. Callbacks may not
 * call back into the same node. */
#ifndef FE_NODE_H
#define FE_NODE_H

#include <stddef.h>
#include <stdint.h>

#include "env.h"
#include "err.h"
#include "ident.h"
#include "limits.h"
#include "store.h"

typedef struct fe_node fe_node;

enum fe_policy {
    FE_POLICY_FERRY = 0, /* summaries, suppression, verified receipts that purge */
    FE_POLICY_NAIVE = 1  /* baseline: resend whole outbox every round, no suppression, unverified ACKs */
};

typedef struct fe_node_config {
    enum fe_policy policy;
    int purge_on_receipt;             /* 1: a valid receipt purges relay copies (default) */
    char name[FE_NAME_MAX + 1];       /* announced name; empty = do not announce a name */
    uint8_t hops;                     /* hop budget of new messages */
    uint64_t lifetime_ms;             /* lifetime of new messages */
    uint64_t announce_interval_ms;    /* re-announce period; 0 = only when asked */
    uint64_t announce_lifetime_ms;    /* a user is online while its last announce is this fresh */
    uint32_t relay_delay_max_ms;      /* broadcast links: random wait before relaying */
    uint8_t redundancy_k;             /* broadcast links: suppress after hearing this many copies */
    uint64_t trickle_imin_ms;         /* anti-entropy summary interval bounds */
    uint64_t trickle_imax_ms;
    uint64_t naive_round_ms;          /* FE_POLICY_NAIVE: resend period */
    size_t outbox_items_max;          /* 0 = FE_OUTBOX_CAPACITY */
    size_t outbox_bytes_max;          /* 0 = FE_OUTBOX_BYTES_MAX */
    size_t origin_quota;              /* items per origin; 0 = FE_ORIGIN_QUOTA */
    size_t dedupe_capacity;           /* ids remembered, power of two; 0 = FE_DEDUPE_CAPACITY */
} fe_node_config;

/* Fill cfg with the defaults (policy ferry, 24 h lifetime, 32 hops, ...). */
void fe_node_config_default(fe_node_config *cfg);

enum fe_link_kind {
    FE_LINK_BROADCAST = 1, /* shared medium: one send reaches every neighbour in range */
    FE_LINK_P2P = 2        /* one peer at the other end */
};

typedef struct fe_link_info {
    enum fe_link_kind kind;
    size_t mtu; /* largest frame the link carries; bigger frames are fragmented */
    /* Broadcast links whose neighbours need not hear each other, such as
     * UDP sent to a list of peers: copies heard there say nothing about
     * what the other neighbours have, so no relay or summary is suppressed
     * for them. */
    int no_suppression;
} fe_link_info;

/* Priority of an outgoing frame: lower is more urgent. Transports with an
 * airtime budget send lower classes first. */
enum fe_prio {
    FE_PRIO_RECEIPT = 0,
    FE_PRIO_SMALL = 1, /* private messages that fit one frame */
    FE_PRIO_BULK = 2,  /* fragments, group messages */
    FE_PRIO_SYNC = 3   /* announces and summaries */
};

typedef struct fe_message {
    uint8_t id[FE_MSG_ID_BYTES];
    uint8_t type;                     /* FE_T_DM, FE_T_ANON or FE_T_GROUP */
    uint8_t from[FE_ADDR_BYTES];      /* authenticated sender; zero for FE_T_ANON */
    uint8_t group[FE_GROUP_ID_BYTES]; /* FE_T_GROUP only */
    const uint8_t *text;
    size_t text_len;
} fe_message;

enum fe_presence_event {
    FE_PRESENCE_NEW = 1,      /* first announce from this key */
    FE_PRESENCE_ONLINE,       /* fresh announce after being offline */
    FE_PRESENCE_OFFLINE,      /* going-offline notice or announce expired */
    FE_PRESENCE_NAME_CONFLICT /* a new key claims a name another key holds: not rebound */
};

typedef struct fe_node_callbacks {
    void *ctx;
    /* Transmit frame on link. frame is borrowed for the call. Required. */
    void (*send)(void *ctx, uint32_t link, const uint8_t *frame, size_t len, enum fe_prio prio);
    /* A message for this node's user, exactly once. Optional. */
    void (*deliver)(void *ctx, const fe_message *m, uint64_t now_ms);
    /* The receipt for a message this node sent came back. Optional. */
    void (*delivered)(void *ctx, const uint8_t id[FE_MSG_ID_BYTES], uint64_t now_ms);
    /* A directory change. Optional. */
    void (*presence)(void *ctx, const fe_dir_rec *user, enum fe_presence_event ev, uint64_t now_ms);
} fe_node_callbacks;

typedef struct fe_node_stats {
    uint64_t frames_in, frames_out, bytes_in, bytes_out;
    uint64_t malformed;          /* frames rejected by a decoder */
    uint64_t duplicates;         /* item frames already seen */
    uint64_t suppressed;         /* relays cancelled because enough copies were heard */
    uint64_t relayed;            /* item frames relayed */
    uint64_t delivered;          /* messages delivered to this user */
    uint64_t receipts_valid;     /* receipts that matched a held or sent message */
    uint64_t receipts_unmatched; /* receipts for ids never seen here: dropped, purge nothing */
    uint64_t purged;             /* copies purged by receipts */
    uint64_t expired;            /* copies dropped at end of lifetime */
    uint64_t quota_rejects;      /* items refused by the per-origin quota or outbox bounds */
    uint64_t auth_failures;      /* boxes for us that failed to open */
    uint64_t store_errors;
    uint64_t summaries_out;
    size_t items_held, item_bytes_held, dedupe_entries, reasm_in_use, directory_entries;
} fe_node_stats;

/* Create a node and load its state from store. id and store must outlive it.
 * Returns 0, FE_ERR_NOMEM, FE_ERR_STORE or FE_ERR_INVALID. */
FE_MUST_CHECK int fe_node_new(fe_node **out, const fe_node_config *cfg, const fe_identity *id,
                              const fe_env *env, const fe_store *store,
                              const fe_node_callbacks *cb, uint64_t now_ms);

/* Free the node. Accepts NULL. Does not touch the store. */
void fe_node_del(fe_node *n);

/* A link came up (or a broadcast medium became usable). Starts anti-entropy
 * on it. FE_ERR_FULL when FE_LINKS_MAX links are up, FE_ERR_INVALID. */
FE_MUST_CHECK int fe_node_link_up(fe_node *n, uint32_t link, const fe_link_info *info,
                                  uint64_t now_ms);
/* The link went away. FE_ERR_NOTFOUND if it was not up. */
int fe_node_link_down(fe_node *n, uint32_t link, uint64_t now_ms);

/* A frame arrived on link. Malformed input is counted and answered with
 * FE_ERR_MALFORMED; nothing the bytes say can crash the node or grow memory
 * beyond the bounds in limits.h. Returns 0 or a negative code, for
 * information only (the node has already dealt with it), except
 * fe_err_is_fatal() codes. */
int fe_node_on_frame(fe_node *n, uint32_t link, const uint8_t *frame, size_t len,
                     uint64_t now_ms);

/* Run timers due at now_ms: relays, summaries, announces, expiry. */
int fe_node_tick(fe_node *n, uint64_t now_ms);

/* The earliest time fe_node_tick has work, or UINT64_MAX. */
uint64_t fe_node_next_deadline(const fe_node *n);

#define FE_SEND_ANONYMOUS 1u /* hide the sender (sealed box); the recipient cannot reply */

/* Queue a private message to the user with address to. Writes the message id.
 * Returns 0, FE_ERR_UNKNOWN_KEY (no announce from that address yet),
 * FE_ERR_TOOBIG (> FE_TEXT_MAX), FE_ERR_FULL, FE_ERR_STORE. When it returns
 * 0 the message is in the store. */
FE_MUST_CHECK int fe_node_send(fe_node *n, uint8_t id[static FE_MSG_ID_BYTES],
                               const uint8_t to[static FE_ADDR_BYTES], const uint8_t *text,
                               size_t len, unsigned flags, uint64_t now_ms);

/* Join a group by its key (also used to create one with a fresh key). */
/* Messages of the group this node already holds as a relay are delivered
 * now: a late joiner gets the recent history its neighbours kept. */
FE_MUST_CHECK int fe_node_group_join(fe_node *n, uint8_t group_id[static FE_GROUP_ID_BYTES],
                                     const uint8_t key[static FE_GROUP_KEY_BYTES],
                                     const char *name, uint64_t now_ms);
int fe_node_group_leave(fe_node *n, const uint8_t group_id[static FE_GROUP_ID_BYTES]);
/* Group message; no receipts for groups, it lives until its lifetime ends. */
FE_MUST_CHECK int fe_node_group_send(fe_node *n, uint8_t id[static FE_MSG_ID_BYTES],
                                     const uint8_t group_id[static FE_GROUP_ID_BYTES],
                                     const uint8_t *text, size_t len, uint64_t now_ms);

/* Announce this node now (signed; rate-limited to one per minute). */
int fe_node_announce(fe_node *n, uint64_t now_ms);
/* Send a signed going-offline notice. */
int fe_node_going_offline(fe_node *n, uint64_t now_ms);
/* Send that notice once more, unchanged, on every link. On a shared
 * half-duplex radio one copy can be lost to a collision, and a node that is
 * leaving is not there to repair it. FE_ERR_NOTFOUND if the newest announce
 * is not a going-offline notice (or has left the outbox). */
int fe_node_repeat_going_offline(fe_node *n, uint64_t now_ms);

/* Directory lookups. Return 0 and fill out, or FE_ERR_NOTFOUND.
 * by_name is exact; by_addr takes a prefix of prefix_len bytes and returns
 * FE_ERR_INVALID when the prefix is ambiguous. */
int fe_node_user_by_name(const fe_node *n, fe_dir_rec *out, const char *name);
int fe_node_user_by_addr(const fe_node *n, fe_dir_rec *out, const uint8_t *prefix,
                         size_t prefix_len);
/* Call cb for every known user; stops early if cb returns non-zero. */
void fe_node_users(const fe_node *n, int (*cb)(void *ctx, const fe_dir_rec *u), void *ctx);

/* Mark a user's key as checked by fingerprint (kept across announces and
 * restarts). 0, FE_ERR_NOTFOUND or FE_ERR_STORE. */
int fe_node_user_verify(fe_node *n, const uint8_t pk[static FE_PK_BYTES], int verified);
/* Call cb for every group joined (the record holds the key: do not log it). */
void fe_node_groups(const fe_node *n, int (*cb)(void *ctx, const fe_group_rec *g), void *ctx);

void fe_node_get_stats(const fe_node *n, fe_node_stats *out);
const fe_identity *fe_node_identity(const fe_node *n);

/* 1 if the node holds a forwardable copy of message id (simulator, tests,
 * the daemon telling queued from expired). */
int fe_node_holds(const fe_node *n, const uint8_t id[static FE_MSG_ID_BYTES]);

#endif
