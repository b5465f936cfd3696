/* Storage interface the core calls. The daemon implements it with SQLite
 * (platform/sqlstore.c), the simulator and tests with core/memstore.c.
 *
 * Time values are on the node's own monotonic time line in milliseconds; the
 * platform keeps that line from going backwards across restarts.
 * Records passed to put functions are only borrowed for the call.
 * Every function returns 0 or FE_ERR_STORE (FE_ERR_NOTFOUND for meta_get). */
#ifndef FE_STORE_H
#define FE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "limits.h"

/* An item held for forwarding: a message, receipt or announce frame. */
typedef struct fe_item_rec {
    uint8_t id[FE_MSG_ID_BYTES];
    uint8_t type;             /* enum fe_frame_type: FE_T_DM, FE_T_ANON, FE_T_GROUP, FE_T_RECEIPT, FE_T_ANNOUNCE */
    uint8_t own;              /* 1 if this node originated it */
    uint64_t received_ms;     /* local time it was stored */
    uint64_t expires_ms;      /* local time its lifetime runs out */
    const uint8_t *frame;     /* the whole frame as it will be sent (hops, lifetime patched at send) */
    size_t frame_len;
} fe_item_rec;

/* A message delivered to this node's user. */
typedef struct fe_inbox_rec {
    uint8_t id[FE_MSG_ID_BYTES];
    uint8_t type;                    /* FE_T_DM, FE_T_ANON or FE_T_GROUP */
    uint8_t from[FE_ADDR_BYTES];     /* sender address; zero for anonymous */
    uint8_t group[FE_GROUP_ID_BYTES];/* group id for FE_T_GROUP, else zero */
    uint64_t received_ms;
    const uint8_t *text;
    size_t text_len;
} fe_inbox_rec;

/* A message this node sent, and whether its receipt came back. */
typedef struct fe_sent_rec {
    uint8_t id[FE_MSG_ID_BYTES];
    uint8_t to[FE_ADDR_BYTES];       /* recipient address, or group id for groups */
    uint8_t type;
    uint64_t sent_ms;
    uint64_t delivered_ms;           /* 0 while no receipt */
} fe_sent_rec;

/* A directory entry: a key we heard announced. */
typedef struct fe_dir_rec {
    uint8_t pk[FE_PK_BYTES];
    uint32_t seq;                    /* highest announce sequence accepted */
    char name[FE_NAME_MAX + 1];
    uint64_t last_seen_ms;
    uint8_t online;
    uint8_t verified;                /* fingerprint checked by the user */
    uint8_t name_conflict;           /* the name was bound to another key first; a store that
                                        keeps it makes the binding survive restarts whatever
                                        order dir_load gives records in */
} fe_dir_rec;

typedef struct fe_group_rec {
    uint8_t id[FE_GROUP_ID_BYTES];
    uint8_t key[FE_GROUP_KEY_BYTES];
    char name[FE_NAME_MAX + 1];
} fe_group_rec;

typedef int (*fe_store_item_cb)(void *cbctx, const fe_item_rec *r);
typedef int (*fe_store_seen_cb)(void *cbctx, const uint8_t id[FE_MSG_ID_BYTES], uint8_t kinds, uint64_t expires_ms);
typedef int (*fe_store_dir_cb)(void *cbctx, const fe_dir_rec *r);
typedef int (*fe_store_group_cb)(void *cbctx, const fe_group_rec *r);

typedef struct fe_store_ops {
    int (*item_put)(void *ctx, const fe_item_rec *r);            /* insert or replace by (id, type) */
    int (*item_del)(void *ctx, const uint8_t id[FE_MSG_ID_BYTES], uint8_t type);
    int (*item_load)(void *ctx, fe_store_item_cb cb, void *cbctx);
    int (*seen_put)(void *ctx, const uint8_t id[FE_MSG_ID_BYTES], uint8_t kinds, uint64_t expires_ms);
    int (*seen_load)(void *ctx, fe_store_seen_cb cb, void *cbctx); /* may skip expired ones */
    int (*inbox_put)(void *ctx, const fe_inbox_rec *r);
    int (*sent_put)(void *ctx, const fe_sent_rec *r);            /* insert or replace by id */
    int (*sent_delivered)(void *ctx, const uint8_t id[FE_MSG_ID_BYTES], uint64_t delivered_ms);
                                                                 /* set delivered_ms; 0 if id unknown */
    int (*dir_put)(void *ctx, const fe_dir_rec *r);              /* insert or replace by pk */
    int (*dir_load)(void *ctx, fe_store_dir_cb cb, void *cbctx);
    int (*group_put)(void *ctx, const fe_group_rec *r);
    int (*group_del)(void *ctx, const uint8_t id[FE_GROUP_ID_BYTES]);
    int (*group_load)(void *ctx, fe_store_group_cb cb, void *cbctx);
    int (*meta_put)(void *ctx, const char *key, const uint8_t *val, size_t len);
    int (*meta_get)(void *ctx, const char *key, uint8_t *val, size_t cap, size_t *len);
} fe_store_ops;

typedef struct fe_store {
    const fe_store_ops *ops;
    void *ctx;
} fe_store;

#endif
