/* Inside ferryd: the daemon's state, shared by daemon.c (wiring, turns,
 * durability) and commands.c (the control commands of docs/API.md). */
#ifndef FE_FERRYD_H
#define FE_FERRYD_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "clock.h"
#include "config.h"
#include "ctl.h"
#include "daemon.h"
#include "links.h"
#include "loop.h"
#include "node.h"
#include "sqlstore.h"
#include "udp.h"
#include "wire.h" /* FE_T_*: message types */

#define FE_DAEMON_FRAMEQ_BYTES (512u << 10) /* frames held until the turn's commit */
#define FE_DAEMON_EVENTS_MAX 4096           /* events queued per turn; more are dropped */
#define FE_DAEMON_INBOX_LIMIT_MAX 1000      /* messages per inbox reply */
#define FE_DAEMON_PERSIST_MS 60000u         /* time line written this often */
#define FE_DAEMON_PRUNE_MS 3600000u         /* expired seen ids removed this often */
#define FE_DAEMON_REOPEN_MS 10000u          /* a failed transport is reopened this often */
#define FE_DAEMON_RX_ROUNDS 16              /* UDP reads per readiness (64 frames each) */
#define FE_DAEMON_FDS_MAX 128 /* watched fds: control socket and clients, signals, transports */
/* Fingerprint buffer: room to spare, as fe_ident_fingerprint wants more
 * than FE_FINGERPRINT_CHARS + 1 to write the last group whole. */
#define FE_DAEMON_FPR_BUF (FE_FINGERPRINT_CHARS + 8)
#define FE_DAEMON_TIMELINE_START_MS 86400000u /* where a new node's time line begins */
#define FE_DAEMON_RESYNC_MIN_MS 1000u         /* engine reloads while the store fails: back-off */
#define FE_DAEMON_RESYNC_MAX_MS 30000u
#define FE_DAEMON_ANNOUNCE_MS (10u * 60u * 1000u)
#define FE_DAEMON_ANNOUNCE_LIFETIME_MS (30u * 60u * 1000u)

enum fe_daemon_event_kind { FE_DEV_MESSAGE = 1, FE_DEV_DELIVERED, FE_DEV_PRESENCE };

/* Something a node callback reported, kept until the node call returns:
 * building its JSON needs directory lookups, and callbacks may not call
 * back into the node. */
typedef struct fe_daemon_event {
    enum fe_daemon_event_kind kind;
    enum fe_presence_event presence;
    fe_inbox_rec msg; /* FE_DEV_MESSAGE: text points at an allocated copy */
    fe_dir_rec user;  /* FE_DEV_PRESENCE */
} fe_daemon_event;

typedef struct fe_daemon_group {
    int in_use;
    fe_group_rec rec;
} fe_daemon_group;

typedef struct fe_daemon_counters {
    uint64_t turns, commits, commit_failures, resyncs;
    uint64_t store_writes;
    uint64_t frames_queued, frames_sent,
        frames_dropped; /* dropped: transport refused or commit failed */
    uint64_t events_dropped;
} fe_daemon_counters;

struct fe_daemon {
    fe_config cfg;
    char key_path[FE_CONFIG_PATH_MAX + 32];
    char db_path[FE_CONFIG_PATH_MAX + 32];
    int lock_fd; /* flock on <data_dir>/ferryd.lock while running */

    fe_identity id;
    fe_sqlstore *sql;
    fe_store raw;     /* the SQLite store itself */
    fe_store wrapped; /* what the engine writes through: opens the turn's batch */
    fe_timeline tl;
    uint64_t started_ms;

    fe_loop *loop;
    fe_node_config ncfg;
    fe_node_callbacks ncb;
    fe_node *node;
    int batch_broken;  /* a write of the open batch failed: the batch cannot be committed */
    int resync_needed; /* a commit failed: reload the node from the store */
    uint64_t next_resync_ms, resync_backoff_ms;
    uint64_t fail_streak; /* commits failed in a row */
    uint64_t fail_logged_ms;
    int turn_failed; /* a commit of this turn failed: its durable replies fail */
    char failure[FE_SQLSTORE_ERRMSG_MAX + 96];

    /* transports and engine links (links.c) */
    fe_dtransport tr[FE_DAEMON_TRANSPORTS_MAX];
    size_t tr_count;
    fe_dlink links[FE_DAEMON_LINKS_MAX];
    uint32_t next_p2p; /* next p2p link id to try, from the pool */
    int stopping;      /* shutting down: frames in are ignored, no link events */

    fe_ctl *ctl;
    int64_t t_node, t_transport, t_persist, t_prune;

    /* frames the node produced this turn: [link u32][len u16][prio u8][bytes] */
    uint8_t *fq;
    size_t fq_len;

    fe_daemon_event *ev;
    size_t ev_count, ev_cap;

    fe_daemon_group groups[FE_GROUPS_MAX];
    uint8_t (*verified)[FE_PK_BYTES]; /* keys the user checked by fingerprint */
    size_t verified_count;

    uint64_t last_announce_cmd_ms;
    fe_node_stats last_stats; /* for the traffic summary in the debug log */
    fe_daemon_counters n;
    int exit_code;
};

/* daemon.c */
/* Open the turn's transaction if none is open (before writing to the
 * SQLite store directly, not through the engine). 0 or FE_ERR_STORE. */
int fe_daemon_batch(fe_daemon *d);
/* Account for a direct write's result rc (returned): a failure spoils the
 * turn's batch, which is then rolled back as a whole. */
int fe_daemon_wrote(fe_daemon *d, int rc);
uint64_t fe_daemon_now(const fe_daemon *d);
/* Write the list of verified keys to the store. 0 or FE_ERR_STORE. */
int fe_daemon_save_verified(fe_daemon *d);
int fe_daemon_is_verified(const fe_daemon *d, const uint8_t pk[FE_PK_BYTES]);

/* commands.c */
extern const fe_ctl_command fe_daemon_commands[];
extern const size_t fe_daemon_command_count;
/* JSON objects of docs/API.md; NULL when out of memory. */
cJSON *fe_daemon_user_json(fe_daemon *d, const fe_dir_rec *u, uint64_t now_ms);
cJSON *fe_daemon_message_json(fe_daemon *d, const fe_inbox_rec *m, uint64_t now_ms);
cJSON *fe_daemon_link_json(fe_daemon *d, const fe_dlink *l);

/* daemon.c: tell subscribers a link went up or down (state "up"/"down"). */
void fe_daemon_link_event(fe_daemon *d, const fe_dlink *l, const char *state);

#endif
