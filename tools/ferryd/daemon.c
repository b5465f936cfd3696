/* ferryd's wiring: see daemon.h for the shape of a turn. */
#include "ferryd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "keyfile.h"
#include "log.h"

#define FQ_HDR 7           /* queued frame header: link (4), length (2), priority (1) */
#define NEVER_MS 86400000u /* "no deadline": wake once a day, harmlessly */
#define META_TIMELINE "timeline_ms"
#define META_VERIFIED "verified_keys"

static void put_be64(uint8_t b[8], uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        b[i] = (uint8_t)v;
}

static uint64_t get_be64(const uint8_t b[8])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | b[i];
    return v;
}

uint64_t fe_daemon_now(const fe_daemon *d)
{
    return fe_timeline_now(&d->tl);
}

static uint64_t loop_clock(void *ctx)
{
    return fe_daemon_now(ctx);
}

/* ------------------------------------------------------------------ */
/* The store the engine writes through: every write joins the turn's
 * transaction, which before_sleep commits. A write that fails spoils the
 * whole batch (SQLite may already have rolled it back), so the turn is
 * then treated as a failed commit. */

int fe_daemon_batch(fe_daemon *d)
{
    if (fe_sqlstore_in_batch(d->sql))
        return 0;
    if (fe_sqlstore_begin(d->sql) != 0) {
        d->batch_broken = 1;
        return FE_ERR_STORE;
    }
    return 0;
}

/* Account for one write through the wrapper. */
int fe_daemon_wrote(fe_daemon *d, int rc)
{
    d->n.store_writes++;
    if (rc != 0)
        d->batch_broken = 1;
    return rc;
}

#define BEGIN_WRITE(d)                                                                             \
    do {                                                                                           \
        if (fe_daemon_batch(d) != 0)                                                               \
            return FE_ERR_STORE;                                                                   \
    } while (0)

static int w_item_put(void *ctx, const fe_item_rec *r)
{
    fe_daemon *d = ctx;
    BEGIN_WRITE(d);
    return fe_daemon_wrote(d, d->raw.ops->item_put(d->raw.ctx, r));
}

static int w_item_del(void *ctx, const uint8_t id[FE_MSG_ID_BYTES], uint8_t type)
{
    fe_daemon *d = ctx;
    BEGIN_WRITE(d);
    return fe_daemon_wrote(d, d->raw.ops->item_del(d->raw.ctx, id, type));
}

static int w_seen_put(void *ctx, const uint8_t id[FE_MSG_ID_BYTES], uint8_t kinds,
                      uint64_t expires_ms)
{
    fe_daemon *d = ctx;
    BEGIN_WRITE(d);
    return fe_daemon_wrote(d, d->raw.ops->seen_put(d->raw.ctx, id, kinds, expires_ms));
}

static int w_inbox_put(void *ctx, const fe_inbox_rec *r)
{
    fe_daemon *d = ctx;
    BEGIN_WRITE(d);
    return fe_daemon_wrote(d, d->raw.ops->inbox_put(d->raw.ctx, r));
}

static int w_sent_put(void *ctx, const fe_sent_rec *r)
{
    fe_daemon *d = ctx;
    BEGIN_WRITE(d);
    return fe_daemon_wrote(d, d->raw.ops->sent_put(d->raw.ctx, r));
}

static int w_sent_delivered(void *ctx, const uint8_t id[FE_MSG_ID_BYTES], uint64_t delivered_ms)
{
    fe_daemon *d = ctx;
    BEGIN_WRITE(d);
    if (d->raw.ops->sent_delivered)
        return fe_daemon_wrote(d, d->raw.ops->sent_delivered(d->raw.ctx, id, delivered_ms));
    /* A store without the operation: read, update, write back. */
    fe_sent_rec r;
    int rc = fe_sqlstore_sent_get(d->sql, id, &r);
    if (rc == FE_ERR_NOTFOUND)
        return 0;
    if (rc == 0) {
        r.delivered_ms = delivered_ms;
        rc = d->raw.ops->sent_put(d->raw.ctx, &r);
    }
    return fe_daemon_wrote(d, rc);
}

static int w_dir_put(void *ctx, const fe_dir_rec *r)
{
    fe_daemon *d = ctx;
    BEGIN_WRITE(d);
    return fe_daemon_wrote(d, d->raw.ops->dir_put(d->raw.ctx, r));
}

static int w_group_put(void *ctx, const fe_group_rec *r)
{
    fe_daemon *d = ctx;
    BEGIN_WRITE(d);
    return fe_daemon_wrote(d, d->raw.ops->group_put(d->raw.ctx, r));
}

static int w_group_del(void *ctx, const uint8_t id[FE_GROUP_ID_BYTES])
{
    fe_daemon *d = ctx;
    BEGIN_WRITE(d);
    return fe_daemon_wrote(d, d->raw.ops->group_del(d->raw.ctx, id));
}

static int w_meta_put(void *ctx, const char *key, const uint8_t *val, size_t len)
{
    fe_daemon *d = ctx;
    BEGIN_WRITE(d);
    return fe_daemon_wrote(d, d->raw.ops->meta_put(d->raw.ctx, key, val, len));
}

/* Reads need no transaction of ours. */
static int w_item_load(void *ctx, fe_store_item_cb cb, void *cbctx)
{
    fe_daemon *d = ctx;
    return d->raw.ops->item_load(d->raw.ctx, cb, cbctx);
}

static int w_seen_load(void *ctx, fe_store_seen_cb cb, void *cbctx)
{
    fe_daemon *d = ctx;
    return d->raw.ops->seen_load(d->raw.ctx, cb, cbctx);
}

static int w_dir_load(void *ctx, fe_store_dir_cb cb, void *cbctx)
{
    fe_daemon *d = ctx;
    return d->raw.ops->dir_load(d->raw.ctx, cb, cbctx);
}

static int w_group_load(void *ctx, fe_store_group_cb cb, void *cbctx)
{
    fe_daemon *d = ctx;
    return d->raw.ops->group_load(d->raw.ctx, cb, cbctx);
}

static int w_meta_get(void *ctx, const char *key, uint8_t *val, size_t cap, size_t *len)
{
    fe_daemon *d = ctx;
    return d->raw.ops->meta_get(d->raw.ctx, key, val, cap, len);
}

static const fe_store_ops wrapped_ops = {
    .item_put = w_item_put,
    .item_del = w_item_del,
    .item_load = w_item_load,
    .seen_put = w_seen_put,
    .seen_load = w_seen_load,
    .inbox_put = w_inbox_put,
    .sent_put = w_sent_put,
    .sent_delivered = w_sent_delivered,
    .dir_put = w_dir_put,
    .dir_load = w_dir_load,
    .group_put = w_group_put,
    .group_del = w_group_del,
    .group_load = w_group_load,
    .meta_put = w_meta_put,
    .meta_get = w_meta_get,
};

/* ------------------------------------------------------------------ */
/* Commit, then release what the turn produced. */

static size_t queued_frames(const fe_daemon *d)
{
    size_t n = 0;
    for (size_t pos = 0; pos + FQ_HDR <= d->fq_len; n++) {
        uint16_t len;
        memcpy(&len, d->fq + pos + 4, sizeof(len));
        pos += FQ_HDR + len;
    }
    return n;
}

static void send_frames(fe_daemon *d)
{
    uint64_t now = fe_daemon_now(d);
    for (size_t pos = 0; pos + FQ_HDR <= d->fq_len;) {
        uint32_t link;
        uint16_t len;
        memcpy(&link, d->fq + pos, sizeof(link));
        memcpy(&len, d->fq + pos + 4, sizeof(len));
        enum fe_prio prio = (enum fe_prio)d->fq[pos + 6];
        const uint8_t *frame = d->fq + pos + FQ_HDR;
        if (fe_links_send(d, link, frame, len, prio, now) == 0)
            d->n.frames_sent++;
        else
            d->n.frames_dropped++;
        pos += FQ_HDR + len;
    }
    d->fq_len = 0;
}

static void free_events(fe_daemon *d)
{
    for (size_t i = 0; i < d->ev_count; i++)
        free((void *)d->ev[i].msg.text);
    d->ev_count = 0;
}

/* Commit the writes since the last commit; only when they are on disk may
 * the frames (receipts!) they back go out. On failure the frames are
 * dropped, the turn is marked failed (its durable replies will say
 * `store`), and the node is to be reloaded. Touches neither the node nor
 * the clients, so it may run inside a node callback. */
static void commit(fe_daemon *d)
{
    uint64_t now = fe_daemon_now(d);
    int in_batch = fe_sqlstore_in_batch(d->sql);
    int rc = d->batch_broken ? FE_ERR_STORE : in_batch ? fe_sqlstore_commit(d->sql) : 0;

    if (rc == 0) {
        if (in_batch && d->fail_streak) {
            fe_log(FE_LOG_INFO, "store %s: writing works again after %llu failed commits",
                   d->db_path, (unsigned long long)d->fail_streak);
            d->fail_streak = 0;
            d->next_resync_ms = 0; /* catch up with the disk at once */
        }
        d->n.commits += in_batch != 0;
        if (in_batch)
            fe_ctl_committed(d->ctl); /* replies staged so far are on disk now */
        if (d->resync_needed) {
            /* After a failed commit the engine's memory is ahead of the disk
             * until it is reloaded: what it sends now may be a message the
             * user was told was refused. Nothing goes out until the reload. */
            d->n.frames_dropped += queued_frames(d);
            d->fq_len = 0;
            return;
        }
        send_frames(d);
        return;
    }
    char why[FE_SQLSTORE_ERRMSG_MAX];
    snprintf(why, sizeof(why), "%s", fe_sqlstore_errmsg(d->sql)); /* before the rollback */
    (void)fe_sqlstore_rollback(d->sql); /* if the failure left it open */
    d->batch_broken = 0;
    d->n.commit_failures++;
    snprintf(d->failure, sizeof(d->failure),
             "the database failed (%s); the request was NOT accepted", why);
    /* One line when it starts, then one a minute while it lasts. */
    if (d->fail_streak++ == 0 || now - d->fail_logged_ms >= 60000u) {
        fe_log(FE_LOG_ERROR,
               "store %s: writing failed (%s); %llu commit%s failed so far. What they held was "
               "rolled back and its requests answered `store`. Free disk space or fix the "
               "file's permissions; ferryd keeps running and retries",
               d->db_path, why, (unsigned long long)d->fail_streak, d->fail_streak == 1 ? "" : "s");
        d->fail_logged_ms = now;
    }
    d->n.frames_dropped += queued_frames(d);
    d->fq_len = 0;
    free_events(d); /* they describe state that is not on disk */
    d->turn_failed = 1;
    d->resync_needed = 1;
}

/* For the control server: do writes wait for a commit? */
static int pending_writes(void *ctx)
{
    fe_daemon *d = ctx;
    return d->batch_broken || fe_sqlstore_in_batch(d->sql);
}

/* End of a turn: the commit, then replies and events may go out. If any
 * commit of the turn failed, every durable reply of the turn says `store`:
 * some may be on disk after all, but none is claimed that is not. */
static void commit_and_release(fe_daemon *d)
{
    commit(d);
    fe_ctl_flush(d->ctl, d->turn_failed ? d->failure : NULL);
    d->turn_failed = 0;
}

/* After a failed commit the node's memory is ahead of the store: rebuild
 * it from what is on disk, so that nothing the store lost is acted on (a
 * delivery whose inbox row is gone would otherwise block the message's
 * next copy as a duplicate). While the disk keeps failing, reloads back
 * off (each one reads the whole store and re-announces). */
static void resync(fe_daemon *d)
{
    uint64_t now = fe_daemon_now(d);
    fe_node *fresh = NULL;
    if (now < d->next_resync_ms)
        return;
    uint64_t backoff = d->resync_backoff_ms * 2;
    if (d->fail_streak == 0 || backoff < FE_DAEMON_RESYNC_MIN_MS)
        backoff = FE_DAEMON_RESYNC_MIN_MS;
    d->resync_backoff_ms = backoff < FE_DAEMON_RESYNC_MAX_MS ? backoff : FE_DAEMON_RESYNC_MAX_MS;
    d->next_resync_ms = now + d->resync_backoff_ms;
    int rc = fe_node_new(&fresh, &d->ncfg, &d->id, NULL, &d->wrapped, &d->ncb, now);
    if (rc != 0) {
        fe_log(FE_LOG_ERROR,
               "cannot reload the engine from %s after the failed write (%s); trying again in "
               "%llu s",
               d->db_path, fe_strerror(rc), (unsigned long long)(d->resync_backoff_ms / 1000u));
        return;
    }
    fe_node_del(d->node);
    d->node = fresh;
    d->resync_needed = 0;
    d->n.resyncs++;
    fe_links_relink(d, now);
    fe_log(d->n.resyncs == 1 || d->fail_streak == 0 ? FE_LOG_WARN : FE_LOG_DEBUG,
           "engine reloaded from %s after the failed write", d->db_path);
}

/* ------------------------------------------------------------------ */
/* Node callbacks. They only queue: frames until the commit, events until
 * the node call has returned. */

static void on_send(void *ctx, uint32_t link, const uint8_t *frame, size_t len, enum fe_prio prio)
{
    fe_daemon *d = ctx;
    if (len == 0 || len > FE_FRAME_MAX)
        return;
    if (d->fq_len + FQ_HDR + len > FE_DAEMON_FRAMEQ_BYTES)
        commit(d); /* a big turn: commit what we have so far, and send it */
    uint16_t l16 = (uint16_t)len;
    memcpy(d->fq + d->fq_len, &link, sizeof(link));
    memcpy(d->fq + d->fq_len + 4, &l16, sizeof(l16));
    d->fq[d->fq_len + 6] = (uint8_t)prio;
    memcpy(d->fq + d->fq_len + FQ_HDR, frame, len);
    d->fq_len += FQ_HDR + len;
    d->n.frames_queued++;
}

static fe_daemon_event *push_event(fe_daemon *d, enum fe_daemon_event_kind kind)
{
    if (fe_ctl_subscribers(d->ctl) == 0)
        return NULL; /* nobody listens; the inbox keeps messages anyway */
    if (d->ev_count == d->ev_cap) {
        size_t cap = d->ev_cap ? d->ev_cap * 2 : 64;
        fe_daemon_event *ev =
            cap <= FE_DAEMON_EVENTS_MAX ? realloc(d->ev, cap * sizeof(*ev)) : NULL;
        if (!ev) {
            d->n.events_dropped++;
            return NULL;
        }
        d->ev = ev;
        d->ev_cap = cap;
    }
    fe_daemon_event *e = &d->ev[d->ev_count++];
    memset(e, 0, sizeof(*e));
    e->kind = kind;
    return e;
}

static void on_deliver(void *ctx, const fe_message *m, uint64_t now_ms)
{
    fe_daemon *d = ctx;
    fe_log(FE_LOG_DEBUG, "delivered %s message of %zu bytes",
           m->type == FE_T_GROUP  ? "a group"
           : m->type == FE_T_ANON ? "an anonymous"
                                  : "a private",
           m->text_len);
    fe_daemon_event *e = push_event(d, FE_DEV_MESSAGE);
    if (!e)
        return;
    uint8_t *text = malloc(m->text_len ? m->text_len : 1);
    if (!text) {
        d->ev_count--;
        d->n.events_dropped++;
        return;
    }
    memcpy(text, m->text, m->text_len);
    memcpy(e->msg.id, m->id, sizeof(e->msg.id));
    e->msg.type = m->type;
    memcpy(e->msg.from, m->from, sizeof(e->msg.from));
    memcpy(e->msg.group, m->group, sizeof(e->msg.group));
    e->msg.received_ms = now_ms;
    e->msg.text = text;
    e->msg.text_len = m->text_len;
}

static void on_delivered(void *ctx, const uint8_t id[FE_MSG_ID_BYTES], uint64_t now_ms)
{
    fe_daemon *d = ctx;
    (void)now_ms;
    fe_daemon_event *e = push_event(d, FE_DEV_DELIVERED);
    if (e)
        memcpy(e->msg.id, id, FE_MSG_ID_BYTES);
}

static const char *presence_name(enum fe_presence_event ev)
{
    switch (ev) {
    case FE_PRESENCE_NEW:
        return "new";
    case FE_PRESENCE_ONLINE:
        return "online";
    case FE_PRESENCE_OFFLINE:
        return "offline";
    case FE_PRESENCE_NAME_CONFLICT:
        return "name_conflict";
    }
    return "unknown";
}

static void on_presence(void *ctx, const fe_dir_rec *user, enum fe_presence_event ev,
                        uint64_t now_ms)
{
    fe_daemon *d = ctx;
    char addr[2 * FE_ADDR_BYTES + 1];
    uint8_t a[FE_ADDR_BYTES];
    (void)now_ms;
    fe_ident_addr(a, user->pk);
    fe_addr_to_hex(addr, sizeof(addr), a);
    fe_log(ev == FE_PRESENCE_NAME_CONFLICT ? FE_LOG_WARN : FE_LOG_INFO,
           ev == FE_PRESENCE_NAME_CONFLICT
               ? "user %s (%.32s): this key claims a name another key holds; the name stays "
                 "with the first key. Compare fingerprints before trusting it"
               : "user %s (%.32s): %s",
           addr, user->name, presence_name(ev));
    fe_daemon_event *e = push_event(d, FE_DEV_PRESENCE);
    if (e) {
        e->user = *user;
        e->presence = ev;
    }
}

/* Turn the queued node events into JSON for subscribers. */
static void emit_events(fe_daemon *d)
{
    uint64_t now = fe_daemon_now(d);
    char hex[2 * FE_MSG_ID_BYTES + 1];

    for (size_t i = 0; i < d->ev_count; i++) {
        const fe_daemon_event *e = &d->ev[i];
        cJSON *j = cJSON_CreateObject(), *item = NULL;
        if (!j)
            break;
        switch (e->kind) {
        case FE_DEV_MESSAGE:
            cJSON_AddStringToObject(j, "event", "message");
            item = fe_daemon_message_json(d, &e->msg, now);
            if (item)
                cJSON_AddItemToObject(j, "message", item);
            break;
        case FE_DEV_DELIVERED:
            cJSON_AddStringToObject(j, "event", "delivered");
            sodium_bin2hex(hex, sizeof(hex), e->msg.id, FE_MSG_ID_BYTES);
            item = cJSON_AddStringToObject(j, "message_id", hex);
            break;
        case FE_DEV_PRESENCE:
            cJSON_AddStringToObject(j, "event", "presence");
            cJSON_AddStringToObject(j, "state", presence_name(e->presence));
            item = fe_daemon_user_json(d, &e->user, now);
            if (item)
                cJSON_AddItemToObject(j, "user", item);
            break;
        }
        if (item)
            fe_ctl_broadcast(d->ctl, j, FE_CTL_DURABLE);
        else
            d->n.events_dropped++;
        cJSON_Delete(j);
    }
    free_events(d);
}

void fe_daemon_link_event(fe_daemon *d, const fe_dlink *link, const char *state)
{
    if (!d->ctl)
        return; /* still starting: nobody can be subscribed */
    cJSON *j = cJSON_CreateObject();
    cJSON *l = fe_daemon_link_json(d, link);
    if (j && l && cJSON_AddStringToObject(j, "event", "link") &&
        cJSON_AddStringToObject(j, "state", state) && cJSON_AddItemToObject(j, "link", l)) {
        l = NULL;
        fe_ctl_broadcast(d->ctl, j, 0);
    }
    cJSON_Delete(l);
    cJSON_Delete(j);
}

/* ------------------------------------------------------------------ */
/* Timers and the turn. */

static uint64_t node_deadline(const fe_daemon *d, uint64_t now)
{
    uint64_t t = fe_node_next_deadline(d->node);
    return t == UINT64_MAX ? now + NEVER_MS : t;
}

static uint64_t on_node_timer(fe_loop *loop, int64_t id, uint64_t now_ms, void *ctx)
{
    fe_daemon *d = ctx;
    (void)loop;
    (void)id;
    int rc = fe_node_tick(d->node, now_ms);
    if (rc < 0 && fe_err_is_fatal(rc))
        fe_log(FE_LOG_ERROR, "engine: %s in its timers", fe_strerror(rc));
    return node_deadline(d, now_ms);
}

static uint64_t transport_deadline(const fe_daemon *d, uint64_t now)
{
    uint64_t t = fe_links_deadline(d);
    return t == UINT64_MAX ? now + NEVER_MS : t;
}

static uint64_t on_transport_timer(fe_loop *loop, int64_t id, uint64_t now_ms, void *ctx)
{
    fe_daemon *d = ctx;
    (void)loop;
    (void)id;
    fe_links_tick(d, now_ms);
    return transport_deadline(d, now_ms);
}

static void persist_timeline(fe_daemon *d, uint64_t now)
{
    uint8_t b[8];
    put_be64(b, now);
    if (d->wrapped.ops->meta_put(d->wrapped.ctx, META_TIMELINE, b, sizeof(b)) != 0)
        fe_log(FE_LOG_ERROR, "store %s: cannot save the time line: %s", d->db_path,
               fe_sqlstore_errmsg(d->sql));
}

static void traffic_summary(fe_daemon *d)
{
    fe_node_stats s;
    fe_node_get_stats(d->node, &s);
    const fe_node_stats *o = &d->last_stats;
    if (s.frames_in != o->frames_in || s.frames_out != o->frames_out)
        fe_log(FE_LOG_DEBUG,
               "traffic in the last minute: %llu frames in (%llu malformed, %llu duplicates), "
               "%llu out (%llu relayed, %llu suppressed), %llu delivered, %zu items held, "
               "%zu users known",
               (unsigned long long)(s.frames_in - o->frames_in),
               (unsigned long long)(s.malformed - o->malformed),
               (unsigned long long)(s.duplicates - o->duplicates),
               (unsigned long long)(s.frames_out - o->frames_out),
               (unsigned long long)(s.relayed - o->relayed),
               (unsigned long long)(s.suppressed - o->suppressed),
               (unsigned long long)(s.delivered - o->delivered), s.items_held, s.directory_entries);
    d->last_stats = s;
}

static uint64_t on_persist(fe_loop *loop, int64_t id, uint64_t now_ms, void *ctx)
{
    fe_daemon *d = ctx;
    (void)loop;
    (void)id;
    persist_timeline(d, now_ms);
    traffic_summary(d);
    return now_ms + FE_DAEMON_PERSIST_MS;
}

static void prune_seen(fe_daemon *d, uint64_t now)
{
    uint64_t pruned = 0;
    if (fe_daemon_batch(d) != 0 ||
        fe_daemon_wrote(d, fe_sqlstore_seen_prune(d->sql, now, &pruned)) != 0)
        fe_log(FE_LOG_ERROR, "store %s: cannot prune expired ids: %s", d->db_path,
               fe_sqlstore_errmsg(d->sql));
    else if (pruned)
        fe_log(FE_LOG_DEBUG, "store: forgot %llu expired message ids", (unsigned long long)pruned);
}

static uint64_t on_prune(fe_loop *loop, int64_t id, uint64_t now_ms, void *ctx)
{
    (void)loop;
    (void)id;
    prune_seen(ctx, now_ms);
    return now_ms + FE_DAEMON_PRUNE_MS;
}

static void before_sleep(fe_loop *loop, void *ctx)
{
    fe_daemon *d = ctx;
    uint64_t now = fe_daemon_now(d);
    d->n.turns++;
    if (d->resync_needed)
        resync(d);
    if (d->ev_count)
        emit_events(d);
    commit_and_release(d);
    /* Whatever the turn's calls into the node changed, its next deadline
     * is armed before the loop sleeps. */
    uint64_t wake = node_deadline(d, now);
    if (d->resync_needed && d->next_resync_ms < wake)
        wake = d->next_resync_ms; /* the node timer doubles as the reload timer */
    fe_loop_timer_set(loop, d->t_node, wake);
    fe_loop_timer_set(loop, d->t_transport, transport_deadline(d, now));
}

static void on_signal(fe_loop *loop, int signo, void *ctx)
{
    fe_daemon *d = ctx;
    (void)d;
    if (signo == SIGHUP) {
        fe_log(FE_LOG_INFO, "SIGHUP ignored: restart ferryd to apply a changed configuration");
        return;
    }
    fe_log(FE_LOG_INFO, "%s received: shutting down", signo == SIGTERM ? "SIGTERM" : "SIGINT");
    fe_loop_stop(loop);
}

/* ------------------------------------------------------------------ */
/* Verified keys: the engine's directory has no way to set its verified
 * flag, so the daemon keeps its own list, stored under one meta key. */

int fe_daemon_is_verified(const fe_daemon *d, const uint8_t pk[FE_PK_BYTES])
{
    for (size_t i = 0; i < d->verified_count; i++)
        if (memcmp(d->verified[i], pk, FE_PK_BYTES) == 0)
            return 1;
    return 0;
}

int fe_daemon_save_verified(fe_daemon *d)
{
    return d->wrapped.ops->meta_put(d->wrapped.ctx, META_VERIFIED, (const uint8_t *)d->verified,
                                    d->verified_count * FE_PK_BYTES);
}

static int load_verified(fe_daemon *d)
{
    size_t cap = (size_t)FE_DIR_CAPACITY * FE_PK_BYTES, len = 0;
    d->verified = malloc(cap);
    if (!d->verified)
        return FE_ERR_NOMEM;
    int rc = d->raw.ops->meta_get(d->raw.ctx, META_VERIFIED, (uint8_t *)d->verified, cap, &len);
    if (rc == FE_ERR_NOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    d->verified_count = len / FE_PK_BYTES;
    return 0;
}

static int load_group(void *ctx, const fe_group_rec *r)
{
    fe_daemon *d = ctx;
    for (size_t i = 0; i < FE_GROUPS_MAX; i++)
        if (!d->groups[i].in_use) {
            d->groups[i].in_use = 1;
            d->groups[i].rec = *r;
            return 0;
        }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Life cycle. */

/* One daemon per data directory: two on one store would undo each other's
 * durability. The lock dies with the process, so a crash leaves none. */
static int lock_data_dir(fe_daemon *d, char *err, size_t err_len)
{
    char path[sizeof(d->db_path)], pid[32];
    snprintf(path, sizeof(path), "%s/ferryd.lock", d->cfg.data_dir);
    d->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (d->lock_fd < 0) {
        snprintf(err, err_len, "cannot open %s: %s (is the data directory writable?)", path,
                 strerror(errno));
        return -1;
    }
    if (flock(d->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        ssize_t n = pread(d->lock_fd, pid, sizeof(pid) - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        snprintf(err, err_len,
                 "another ferryd (pid %s) is already using data directory %s: stop it, or give "
                 "this one its own --data-dir",
                 pid[0] ? pid : "unknown", d->cfg.data_dir);
        close(d->lock_fd);
        d->lock_fd = -1;
        return -1;
    }
    int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(d->lock_fd, 0) != 0 || pwrite(d->lock_fd, pid, (size_t)n, 0) != n)
        fe_log(FE_LOG_WARN, "cannot write the pid into %s", path);
    return 0;
}

static int open_state(fe_daemon *d, char *err, size_t err_len)
{
    int created = 0;
    if (lock_data_dir(d, err, err_len) != 0)
        return -1;
    if (fe_keyfile_load_or_create(&d->id, d->key_path, &created, err, err_len) != 0)
        return -1;
    if (created)
        fe_log(FE_LOG_INFO, "identity: created a new key in %s", d->key_path);
    if (fe_sqlstore_open(&d->sql, d->db_path, err, err_len) != 0)
        return -1;
    fe_sqlstore_bind(d->sql, &d->raw);
    d->wrapped.ops = &wrapped_ops;
    d->wrapped.ctx = d;

    uint8_t b[8];
    size_t len = 0;
    /* A new node starts its line at one day rather than at 0, which the
     * engine uses for "never" in places (last announce, for one). */
    uint64_t resume = FE_DAEMON_TIMELINE_START_MS;
    if (d->raw.ops->meta_get(d->raw.ctx, META_TIMELINE, b, sizeof(b), &len) == 0 && len == 8 &&
        get_be64(b) > resume)
        resume = get_be64(b);
    fe_timeline_init(&d->tl, resume);
    d->started_ms = fe_daemon_now(d);

    if (load_verified(d) != 0 || d->raw.ops->group_load(d->raw.ctx, load_group, d) != 0) {
        snprintf(err, err_len, "store %s: cannot read it: %s", d->db_path,
                 fe_sqlstore_errmsg(d->sql));
        return -1;
    }
    return 0;
}

static int start_node(fe_daemon *d, char *err, size_t err_len)
{
    fe_node_config_default(&d->ncfg);
    snprintf(d->ncfg.name, sizeof(d->ncfg.name), "%s", d->cfg.name);
    d->ncfg.hops = d->cfg.hops;
    d->ncfg.lifetime_ms = d->cfg.lifetime_ms;
    d->ncfg.announce_interval_ms = FE_DAEMON_ANNOUNCE_MS;
    d->ncfg.announce_lifetime_ms = FE_DAEMON_ANNOUNCE_LIFETIME_MS;
    d->ncb = (fe_node_callbacks){.ctx = d,
                                 .send = on_send,
                                 .deliver = on_deliver,
                                 .delivered = on_delivered,
                                 .presence = on_presence};
    uint64_t now = fe_daemon_now(d);
    prune_seen(d, now); /* before the node loads them */
    int rc = fe_node_new(&d->node, &d->ncfg, &d->id, NULL, &d->wrapped, &d->ncb, now);
    if (rc != 0) {
        snprintf(err, err_len, "engine: cannot start from %s: %s%s%s", d->db_path, fe_strerror(rc),
                 rc == FE_ERR_STORE ? ": " : "",
                 rc == FE_ERR_STORE ? fe_sqlstore_errmsg(d->sql) : "");
        return -1;
    }
    /* What loading wrote (expired items removed) is committed now. */
    if (d->batch_broken || fe_sqlstore_commit(d->sql) != 0) {
        snprintf(err, err_len, "store %s: cannot write: %s (free disk space or fix permissions)",
                 d->db_path, fe_sqlstore_errmsg(d->sql));
        return -1;
    }
    return 0;
}

static int start_io(fe_daemon *d, char *err, size_t err_len)
{
    if (fe_loop_new(&d->loop, FE_DAEMON_FDS_MAX) != 0 ||
        !(d->fq = malloc(FE_DAEMON_FRAMEQ_BYTES))) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    fe_loop_set_clock(d->loop, loop_clock, d);
    if (fe_loop_signals(d->loop, on_signal, d) != 0) {
        snprintf(err, err_len, "cannot catch signals");
        return -1;
    }
    signal(SIGPIPE, SIG_IGN);
    if (fe_links_start(d, err, err_len) != 0)
        return -1;
    fe_ctl_config cc = {.path = d->cfg.socket,
                        .group = d->cfg.socket_group,
                        .commands = fe_daemon_commands,
                        .command_count = fe_daemon_command_count,
                        .ctx = d,
                        .pending_writes = pending_writes};
    if (fe_ctl_new(&d->ctl, d->loop, &cc, err, err_len) != 0)
        return -1;
    uint64_t now = fe_daemon_now(d);
    d->t_node = fe_loop_timer_add(d->loop, node_deadline(d, now), on_node_timer, d);
    d->t_transport = fe_loop_timer_add(d->loop, transport_deadline(d, now), on_transport_timer, d);
    d->t_persist = fe_loop_timer_add(d->loop, now + FE_DAEMON_PERSIST_MS, on_persist, d);
    d->t_prune = fe_loop_timer_add(d->loop, now + FE_DAEMON_PRUNE_MS, on_prune, d);
    if (d->t_node <= 0 || d->t_transport <= 0 || d->t_persist <= 0 || d->t_prune <= 0) {
        snprintf(err, err_len, "cannot create timers");
        return -1;
    }
    fe_loop_set_before_sleep(d->loop, before_sleep, d);
    return 0;
}

static void log_start(fe_daemon *d)
{
    char addr[2 * FE_ADDR_BYTES + 1], fpr[FE_DAEMON_FPR_BUF];
    fe_sqlstore_rowcounts rc;
    fe_addr_to_hex(addr, sizeof(addr), d->id.addr);
    fe_ident_fingerprint(fpr, sizeof(fpr), d->id.pk);
    fe_log(FE_LOG_INFO, "ferryd %s starting: name '%s', address %s, fingerprint %s", FE_VERSION,
           d->cfg.name, addr, fpr);
    if (fe_sqlstore_counts(d->sql, &rc) == 0)
        fe_log(FE_LOG_INFO,
               "data dir %s: %llu items held (%llu own), %llu in the inbox (%llu unread), "
               "%llu users, %llu groups",
               d->cfg.data_dir, (unsigned long long)rc.items, (unsigned long long)rc.own_items,
               (unsigned long long)rc.inbox, (unsigned long long)rc.inbox_unshown,
               (unsigned long long)rc.directory, (unsigned long long)rc.groups);
    fe_links_log_start(d);
    fe_log(FE_LOG_INFO, "control socket %s; ready", d->cfg.socket);
}

int fe_daemon_new(fe_daemon **out, const fe_config *cfg, char *err, size_t err_len)
{
    *out = NULL;
    if (sodium_init() < 0) {
        snprintf(err, err_len, "libsodium failed to initialise");
        return -1;
    }
    fe_daemon *d = calloc(1, sizeof(*d));
    if (!d) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    d->cfg = *cfg;
    d->lock_fd = -1;
    snprintf(d->key_path, sizeof(d->key_path), "%s/identity.key", cfg->data_dir);
    snprintf(d->db_path, sizeof(d->db_path), "%s/ferry.db", cfg->data_dir);
    if (open_state(d, err, err_len) != 0 || start_node(d, err, err_len) != 0 ||
        start_io(d, err, err_len) != 0) {
        fe_daemon_del(d);
        return -1;
    }
    fe_node_get_stats(d->node, &d->last_stats);
    log_start(d);
    *out = d;
    return 0;
}

int fe_daemon_run(fe_daemon *d)
{
    int rc = fe_loop_run(d->loop);
    if (rc != 0)
        fe_log(FE_LOG_ERROR, "event loop failed: %s; shutting down", strerror(errno));
    /* The last turn has been committed. Leave cleanly: time line saved,
     * peers told we go offline, and that notice actually sent. */
    uint64_t now = fe_daemon_now(d);
    persist_timeline(d, now);
    if (fe_links_any_up(d))
        (void)fe_node_going_offline(d->node, now);
    commit_and_release(d);
    fe_links_drain(d, FE_DAEMON_DRAIN_MS); /* radios: let the notice leave the queue */
    fe_log(FE_LOG_INFO, "stopped");
    return rc == 0 ? 0 : 1;
}

void fe_daemon_del(fe_daemon *d)
{
    if (!d)
        return;
    /* Transports first: RFCOMM reports its peers down to the node as it
     * closes. */
    fe_links_stop(d);
    fe_ctl_del(d->ctl);
    fe_node_del(d->node);
    fe_sqlstore_close(d->sql);
    fe_loop_del(d->loop);
    free_events(d);
    free(d->ev);
    free(d->fq);
    free(d->verified);
    fe_ident_wipe(&d->id);
    sodium_memzero(d->groups, sizeof(d->groups));
    if (d->lock_fd >= 0)
        close(d->lock_fd); /* releases the lock; the file stays, harmlessly */
    free(d);
}
