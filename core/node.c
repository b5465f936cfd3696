/* The ferry engine: decode, dedupe, deliver or hold, relay with
 * suppression, anti-entropy, receipts that purge. See docs/PROTOCOL.md. */
#include "node.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dedupe.h"
#include "directory.h"
#include "frag.h"
#include "outbox.h"
#include "seal.h"
#include "timerq.h"
#include "wire.h"

enum { T_RELAY = 1, T_EXPIRE = 2 };

#define ANNOUNCE_MIN_GAP_MS 60000u /* own announces and accepted announces per key */
#define HOUSEKEEPING_MS 60000u     /* dedupe sweep */
#define SUMMARY_TOKENS_MAX 256     /* per summary frame, whatever the MTU */

typedef struct fe_link {
    uint32_t id;
    enum fe_link_kind kind;
    size_t mtu;
    int in_use;
    int bidx;           /* broadcast link index for item relay bookkeeping, or -1 */
    int no_suppression; /* see fe_link_info */
    /* Trickle (RFC 6206) state for anti-entropy summaries. */
    uint64_t interval_ms, fire_ms, end_ms;
    unsigned heard_consistent;
} fe_link;

typedef struct fe_group {
    int in_use;
    fe_group_rec rec;
} fe_group;

struct fe_node {
    fe_node_config cfg;
    const fe_identity *id;
    fe_env env;
    fe_store store;
    fe_node_callbacks cb;
    fe_outbox ob;
    fe_dedupe dd;
    fe_timerq tq;
    fe_reasm *reasm;
    fe_dir dir;
    fe_link links[FE_LINKS_MAX];
    fe_link *bcast[FE_BCAST_LINKS_MAX];
    fe_group groups[FE_GROUPS_MAX];
    uint32_t announce_seq;
    uint64_t announce_due_ms, last_announce_ms;
    int announced;    /* last_announce_ms is valid */
    int said_offline; /* our newest announce is a going-offline notice */
    uint64_t naive_due_ms;
    uint64_t housekeeping_ms;
    uint64_t presence_due_ms;
    uint64_t jitter_state; /* fast PRNG for relay timing; seeded from env */
    fe_node_stats st;
    uint32_t *tokens; /* scratch for summaries, outbox capacity */
    uint8_t frame[FE_FRAME_MAX];
    uint8_t text[FE_FRAME_MAX];
};

/* ------------------------------------------------------------------ */
/* small helpers */

/* Timing jitter needs no cryptographic randomness, only independence between
 * nodes: splitmix64, seeded once per node from the environment's source. */
static uint64_t rand_below(fe_node *n, uint64_t bound)
{
    uint64_t z = (n->jitter_state += 0x9E3779B97F4A7C15ULL);
    if (bound == 0)
        return 0;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return (z ^ (z >> 31)) % bound;
}

static void store_err(fe_node *n, int rc)
{
    if (rc != FE_OK)
        n->st.store_errors++;
}

/* How long an id must be remembered: its lifetime plus the worst drift
 * between nodes' views of it (rounding per hop and in-flight time), so a
 * copy still alive elsewhere is never taken for a new message. */
static uint64_t dedupe_expiry(uint64_t now, uint64_t lifetime_ms)
{
    return now + lifetime_ms + lifetime_ms / 16 + 120000u;
}

static fe_link *link_find(fe_node *n, uint32_t id)
{
    for (size_t i = 0; i < FE_LINKS_MAX; i++)
        if (n->links[i].in_use && n->links[i].id == id)
            return &n->links[i];
    return NULL;
}

static enum fe_prio prio_of(uint8_t type, size_t len)
{
    switch (type) {
    case FE_T_RECEIPT:
        return FE_PRIO_RECEIPT;
    case FE_T_DM:
    case FE_T_ANON:
        return len <= 255 ? FE_PRIO_SMALL : FE_PRIO_BULK;
    case FE_T_GROUP:
        return FE_PRIO_BULK;
    default:
        return FE_PRIO_SYNC;
    }
}

/* Put a whole frame on a link, fragmenting it for small MTUs. */
static void emit(fe_node *n, const fe_link *l, const uint8_t *frame, size_t len, enum fe_prio prio)
{
    size_t count = fe_frag_count(len, l->mtu);

    if (count == 0)
        return;
    if (count == 1) {
        n->cb.send(n->cb.ctx, l->id, frame, len, prio);
        n->st.frames_out++;
        n->st.bytes_out += len;
        return;
    }
    uint8_t frag[FE_FRAME_MAX];
    for (unsigned i = 0; i < count; i++) {
        ptrdiff_t fl =
            fe_frag_make(frag, l->mtu < sizeof frag ? l->mtu : sizeof frag, frame, len, l->mtu, i);
        if (fl <= 0)
            return;
        n->cb.send(n->cb.ctx, l->id, frag, (size_t)fl, prio == FE_PRIO_SMALL ? FE_PRIO_BULK : prio);
        n->st.frames_out++;
        n->st.bytes_out += (size_t)fl;
    }
}

/* Send a held item on a link with its hop budget and what is left of its
 * lifetime, minus one hop's worth for time in flight. */
static void send_item(fe_node *n, const fe_link *l, const fe_item *it, uint64_t now)
{
    uint8_t buf[FE_FRAME_MAX];

    if (it->expires_ms <= now + FE_HOP_COST_MS)
        return;
    memcpy(buf, it->frame, it->len);
    fe_wire_patch_item(buf, it->len, it->hops, it->expires_ms - now - FE_HOP_COST_MS);
    emit(n, l, buf, it->len, prio_of(it->type, it->len));
    n->st.relayed += !it->own;
}

/* A timer still matters if its item is alive and it is the item's current
 * timer of that kind. */
static int timer_live(void *ctx, const fe_timer *t)
{
    const fe_node *n = ctx;
    if (t->slot >= n->ob.cap)
        return 0;
    const fe_item *it = &n->ob.items[t->slot];
    if (!it->in_use || it->gen != t->gen)
        return 0;
    return t->kind == T_EXPIRE ? t->due_ms == it->expires_ms
                               : it->pend != 0 && t->due_ms == it->relay_due_ms;
}

static int push_timer(fe_node *n, const fe_item *it, uint8_t kind, uint64_t due)
{
    fe_timer t = {
        .due_ms = due, .slot = (uint32_t)(it - n->ob.items), .gen = it->gen, .kind = kind};
    int rc = fe_timerq_push(&n->tq, &t);
    if (rc == FE_ERR_FULL) {
        /* Timers of removed items are cancelled lazily; drop them now. At
         * most two live timers per item against a capacity of four per item,
         * so this frees at least half the heap: amortised O(1). */
        fe_timerq_filter(&n->tq, timer_live, n);
        rc = fe_timerq_push(&n->tq, &t);
    }
    return rc;
}

/* Schedule a relay of it on broadcast link l after a random wait, unless one
 * is already pending there. heard is the number of copies already heard. */
static void schedule_bcast(fe_node *n, fe_item *it, const fe_link *l, uint8_t heard, uint64_t now)
{
    uint8_t bit = (uint8_t)(1u << l->bidx);

    if (it->pend & bit)
        return;
    it->pend |= bit;
    it->heard[l->bidx] = heard;
    uint64_t due = now + rand_below(n, (uint64_t)n->cfg.relay_delay_max_ms + 1);
    if (it->pend == bit || due < it->relay_due_ms) {
        it->relay_due_ms = due;
        if (push_timer(n, it, T_RELAY, due) != FE_OK) {
            /* Timer table full: send now rather than lose the relay. */
            it->pend &= (uint8_t)~bit;
            send_item(n, l, it, now);
        }
    }
}

/* A new item arrived on link `from` (NULL for our own): pass it on. */
static void spread(fe_node *n, fe_item *it, const fe_link *from, uint64_t now)
{
    if (n->cfg.policy == FE_POLICY_NAIVE) {
        /* The baseline also sends at once; its rounds resend everything. */
        for (size_t i = 0; i < FE_LINKS_MAX; i++)
            if (n->links[i].in_use && &n->links[i] != from)
                send_item(n, &n->links[i], it, now);
        return;
    }
    for (size_t i = 0; i < FE_LINKS_MAX; i++) {
        fe_link *l = &n->links[i];
        if (!l->in_use)
            continue;
        if (l->kind == FE_LINK_P2P || from == NULL || l->bidx < 0) {
            if (l != from)
                send_item(n, l, it, now);
        } else {
            schedule_bcast(n, it, l, l == from ? 1 : 0, now);
        }
    }
}

/* ------------------------------------------------------------------ */
/* outbox with persistence and eviction */

static void forget_item(fe_node *n, fe_item *it)
{
    store_err(n, n->store.ops->item_del(n->store.ctx, it->id, it->type));
    fe_outbox_remove(&n->ob, it);
}

/* Quota buckets ignore one bit of the hint (see outbox.c). */
static int same_origin(const uint8_t a[FE_HINT_BYTES], const uint8_t b[FE_HINT_BYTES])
{
    uint32_t x, y;
    memcpy(&x, a, sizeof x);
    memcpy(&y, b, sizeof y);
    return (x | 1u) == (y | 1u);
}

/* When the outbox is full, make room by dropping the oldest item of the
 * origin holding the most, but only if that is not the newcomer's own
 * origin: one noisy origin cannot push everyone else out. */
static int evict_for(fe_node *n, const uint8_t origin[FE_HINT_BYTES])
{
    uint8_t heavy[FE_HINT_BYTES];
    uint16_t heavy_count = fe_outbox_heaviest_origin(&n->ob, heavy);
    fe_item *oldest = NULL;

    if (heavy_count <= fe_outbox_origin_count(&n->ob, origin) + 1)
        return FE_ERR_FULL;
    for (size_t i = 0; i < n->ob.cap; i++) {
        fe_item *it = fe_outbox_slot(&n->ob, i);
        if (it->in_use && !it->own && same_origin(it->origin, heavy) &&
            (!oldest || it->received_ms < oldest->received_ms))
            oldest = it;
    }
    if (!oldest)
        return FE_ERR_FULL;
    forget_item(n, oldest);
    return FE_OK;
}

static void item_state(fe_node *n, fe_item *it, int own, uint8_t hops)
{
    it->own = (uint8_t)own;
    it->hops = hops;
    /* A copy sent with one hop left is not kept by its receiver: leave it out
     * of summaries, or neighbours would never agree. */
    fe_outbox_set_in_digest(&n->ob, it, own || hops >= 2);
}

static fe_item *hold(fe_node *n, const uint8_t id[FE_MSG_ID_BYTES], uint8_t type,
                     const uint8_t origin[FE_HINT_BYTES], const uint8_t *frame, size_t len,
                     uint8_t hops, int own, uint64_t expires, uint64_t now, int *err)
{
    fe_item *it = fe_outbox_add(&n->ob, id, type, origin, frame, len, now, expires, err);

    /* An origin at its quota gets nothing evicted for it: rejecting costs
     * nothing, so a flooder cannot make every frame it sends expensive.
     * Otherwise the oldest receipt goes first (its purge work is mostly
     * done, and dedupe still stops late copies here), then the oldest item
     * of the heaviest origin. Bounded: a few tries, each freeing one slot. */
    for (int tries = 0; !it && *err == FE_ERR_FULL && tries < 4; tries++) {
        if (fe_outbox_origin_count(&n->ob, origin) >= n->ob.origin_quota)
            break;
        fe_item *victim = fe_outbox_oldest_receipt(&n->ob);
        if (victim)
            forget_item(n, victim);
        else if (evict_for(n, origin) != FE_OK)
            break;
        it = fe_outbox_add(&n->ob, id, type, origin, frame, len, now, expires, err);
    }
    if (!it) {
        if (*err == FE_ERR_FULL)
            n->st.quota_rejects++;
        return NULL;
    }
    item_state(n, it, own, hops);
    fe_item_rec rec = {.type = type,
                       .own = (uint8_t)own,
                       .received_ms = now,
                       .expires_ms = expires,
                       .frame = it->frame,
                       .frame_len = it->len};
    memcpy(rec.id, id, FE_MSG_ID_BYTES);
    int rc = n->store.ops->item_put(n->store.ctx, &rec);
    if (rc != FE_OK) {
        store_err(n, rc);
        fe_outbox_remove(&n->ob, it);
        *err = FE_ERR_STORE;
        return NULL;
    }
    if (push_timer(n, it, T_EXPIRE, expires) != FE_OK) {
        /* Without an expiry timer the item would never leave. */
        forget_item(n, it);
        *err = FE_ERR_FULL;
        return NULL;
    }
    return it;
}

static void remember(fe_node *n, const uint8_t id[FE_MSG_ID_BYTES], uint8_t kinds, uint64_t expires,
                     uint64_t now)
{
    fe_dedupe_add(&n->dd, id, kinds, expires, now);
    uint8_t all = fe_dedupe_get(&n->dd, id, now);
    store_err(n, n->store.ops->seen_put(n->store.ctx, id, all, expires));
}

/* ------------------------------------------------------------------ */
/* delivery and receipts */

static void make_receipt(fe_node *n, const uint8_t secret[FE_RECEIPT_SECRET_BYTES],
                         uint64_t lifetime_ms, uint64_t now);

static void deliver(fe_node *n, const fe_frame *f, const uint8_t from[FE_ADDR_BYTES],
                    const uint8_t group[FE_GROUP_ID_BYTES], size_t text_len, uint64_t now)
{
    uint8_t kinds = fe_dedupe_get(&n->dd, f->id, now);

    if (kinds & FE_SEEN_DELIVERED)
        return;
    /* Remember deliveries for the longest lifetime there is, so a copy
     * replayed with a fresh lifetime is still recognised. */
    remember(n, f->id, FE_SEEN_MSG | FE_SEEN_DELIVERED, dedupe_expiry(now, FE_LIFETIME_MAX_MS),
             now);

    fe_inbox_rec rec = {.type = f->type, .received_ms = now, .text = n->text, .text_len = text_len};
    memcpy(rec.id, f->id, FE_MSG_ID_BYTES);
    if (from)
        memcpy(rec.from, from, FE_ADDR_BYTES);
    if (group)
        memcpy(rec.group, group, FE_GROUP_ID_BYTES);
    store_err(n, n->store.ops->inbox_put(n->store.ctx, &rec));
    n->st.delivered++;
    if (n->cb.deliver) {
        fe_message m = {.type = f->type, .text = n->text, .text_len = text_len};
        memcpy(m.id, f->id, FE_MSG_ID_BYTES);
        memcpy(m.from, rec.from, FE_ADDR_BYTES);
        memcpy(m.group, rec.group, FE_GROUP_ID_BYTES);
        n->cb.deliver(n->cb.ctx, &m, now);
    }
}

/* Try to open a DM or anonymous message addressed to us. 1 delivered, 0 not
 * ours (or from a sender whose key we do not know yet), -1 ours but it does
 * not open with the key that should open it: a corrupted copy. */
static int try_open_private(fe_node *n, const fe_frame *f, uint64_t now)
{
    uint8_t secret[FE_RECEIPT_SECRET_BYTES];
    size_t text_len = 0;
    int known = 0;

    if (memcmp(f->dst, n->id->addr, FE_HINT_BYTES) != 0)
        return 0;
    if (f->type == FE_T_ANON) {
        if (fe_open_anon(n->text, sizeof n->text, &text_len, secret, f, n->id) != FE_OK) {
            n->st.auth_failures++;
            return -1;
        }
        deliver(n, f, NULL, NULL, text_len, now);
        make_receipt(n, secret, f->lifetime_ms, now);
        sodium_memzero(secret, sizeof secret);
        return 1;
    }
    for (size_t i = 0; i < n->dir.count; i++) {
        fe_dir_entry *e = &n->dir.e[i];
        if (memcmp(e->addr, f->src, FE_HINT_BYTES) != 0 || fe_dir_shared_key(e, n->id) != FE_OK)
            continue;
        known = 1;
        if (fe_open_dm(n->text, sizeof n->text, &text_len, secret, f, e->k, e->addr) == FE_OK) {
            deliver(n, f, e->addr, NULL, text_len, now);
            make_receipt(n, secret, f->lifetime_ms, now);
            sodium_memzero(secret, sizeof secret);
            return 1;
        }
    }
    n->st.auth_failures++;
    return known ? -1 : 0;
}

static void try_open_group(fe_node *n, const fe_frame *f, uint64_t now)
{
    uint8_t sender[FE_ADDR_BYTES];
    size_t text_len = 0;

    for (size_t i = 0; i < FE_GROUPS_MAX; i++) {
        fe_group *g = &n->groups[i];
        if (!g->in_use || memcmp(g->rec.id, f->dst, FE_HINT_BYTES) != 0)
            continue;
        if (fe_open_group(n->text, sizeof n->text, &text_len, sender, f, g->rec.key) == FE_OK) {
            if (memcmp(sender, n->id->addr, FE_ADDR_BYTES) != 0)
                deliver(n, f, sender, g->rec.id, text_len, now);
            return;
        }
    }
}

/* A valid receipt for id: tell our user if it was theirs, purge our copy. */
static void apply_receipt(fe_node *n, const uint8_t id[FE_MSG_ID_BYTES], uint8_t kinds,
                          uint64_t now)
{
    if (kinds & FE_SEEN_OWN) {
        store_err(n, n->store.ops->sent_delivered(n->store.ctx, id, now));
        if (n->cb.delivered)
            n->cb.delivered(n->cb.ctx, id, now);
    }
    static const uint8_t types[] = {FE_T_DM, FE_T_ANON};
    for (size_t i = 0; i < sizeof types; i++) {
        fe_item *it = fe_outbox_find(&n->ob, id, types[i]);
        /* With purging off (a measurement baseline) every copy, the
         * sender's included, lives out its lifetime. */
        if (it && (n->cfg.purge_on_receipt || n->cfg.policy == FE_POLICY_NAIVE)) {
            n->st.purged += !it->own;
            forget_item(n, it);
        }
    }
}

/* Receipts live as long as any copy of their message might. */
static uint64_t receipt_lifetime(uint64_t msg_lifetime_ms)
{
    uint64_t l = msg_lifetime_ms + msg_lifetime_ms / 16 + 60000u;
    return l > FE_LIFETIME_MAX_MS ? FE_LIFETIME_MAX_MS : l;
}

static void make_receipt(fe_node *n, const uint8_t secret[FE_RECEIPT_SECRET_BYTES],
                         uint64_t lifetime_ms, uint64_t now)
{
    uint8_t frame[FE_RECEIPT_BYTES], id[FE_MSG_ID_BYTES];
    uint64_t life = receipt_lifetime(lifetime_ms);
    int err;

    fe_wire_receipt(frame, n->cfg.hops, life, secret);
    fe_wire_receipt_id(id, secret);
    if (fe_dedupe_get(&n->dd, id, now) & FE_SEEN_RECEIPT)
        return;
    remember(n, id, FE_SEEN_RECEIPT, dedupe_expiry(now, life), now);
    fe_item *it =
        hold(n, id, FE_T_RECEIPT, id, frame, sizeof frame, n->cfg.hops, 1, now + life, now, &err);
    if (it)
        spread(n, it, NULL, now);
}

/* ------------------------------------------------------------------ */
/* announces and the directory */

static void presence(fe_node *n, const fe_dir_entry *e, enum fe_presence_event ev, uint64_t now)
{
    if (n->cb.presence)
        n->cb.presence(n->cb.ctx, &e->rec, ev, now);
}

static void dir_persist(fe_node *n, const fe_dir_entry *e)
{
    store_err(n, n->store.ops->dir_put(n->store.ctx, &e->rec));
}

/* Messages for us that arrived before we knew the sender's key. */
static void retry_held_for(fe_node *n, const uint8_t addr[FE_ADDR_BYTES], uint64_t now)
{
    for (size_t i = 0; i < n->ob.cap; i++) {
        fe_item *it = fe_outbox_slot(&n->ob, i);
        fe_frame f;
        if (!it->in_use || it->type != FE_T_DM || it->own)
            continue;
        if (fe_wire_decode(&f, it->frame, it->len) != FE_OK ||
            memcmp(f.src, addr, FE_HINT_BYTES) != 0 ||
            memcmp(f.dst, n->id->addr, FE_HINT_BYTES) != 0)
            continue;
        f.lifetime_ms = it->expires_ms > now ? it->expires_ms - now : 0;
        if (try_open_private(n, &f, now) != 0)
            forget_item(n, it); /* delivered, or a corrupted copy (see on_item) */
    }
}

/* Returns 1 if the announce is new information worth holding and relaying. */
static int on_announce(fe_node *n, const fe_frame *f, uint64_t now)
{
    fe_dir_entry *e;
    int offline = (f->flags & FE_ANNOUNCE_OFFLINE) != 0;

    if (fe_verify_announce(f) != FE_OK) {
        n->st.auth_failures++;
        return 0;
    }
    if (memcmp(f->pk, n->id->pk, FE_PK_BYTES) == 0)
        return 0;
    e = fe_dir_find_pk(&n->dir, f->pk);
    if (!e) {
        fe_dir_rec rec;
        memset(&rec, 0, sizeof rec);
        memcpy(rec.pk, f->pk, FE_PK_BYTES);
        memcpy(rec.name, f->name, f->name_len);
        rec.seq = f->seq;
        rec.last_seen_ms = now;
        rec.online = !offline;
        if (fe_dir_add(&n->dir, &e, &rec) != FE_OK)
            return 0;
        e->expires_ms = offline ? 0 : now + f->lifetime_ms;
        e->accepted_ms = now;
        e->have_accepted = 1;
        dir_persist(n, e);
        presence(n, e, e->name_conflict ? FE_PRESENCE_NAME_CONFLICT : FE_PRESENCE_NEW, now);
        uint8_t addr[FE_ADDR_BYTES];
        memcpy(addr, e->addr, sizeof addr);
        retry_held_for(n, addr, now);
        return 1;
    }
    if (f->seq <= e->rec.seq)
        return 0; /* replayed or stale */
    /* Rate limit per key, for a key that is online: coming back online (a
     * restart right after a going-offline notice) is always news, and the
     * higher sequence number already rules out a replay. */
    if (!offline && e->rec.online && e->have_accepted && now - e->accepted_ms < ANNOUNCE_MIN_GAP_MS)
        return 0;
    int was_online = e->rec.online;
    e->rec.seq = f->seq;
    e->rec.last_seen_ms = now;
    e->accepted_ms = now;
    e->have_accepted = 1;
    if (f->name_len != strlen(e->rec.name) || memcmp(f->name, e->rec.name, f->name_len) != 0) {
        char name[FE_NAME_MAX + 1];
        memcpy(name, f->name, f->name_len);
        name[f->name_len] = '\0';
        fe_dir_entry *holder = name[0] ? fe_dir_find_name(&n->dir, name) : NULL;
        memcpy(e->rec.name, name, sizeof name);
        e->name_conflict = holder != NULL && holder != e;
        e->rec.name_conflict = e->name_conflict;
        if (e->name_conflict)
            presence(n, e, FE_PRESENCE_NAME_CONFLICT, now);
    }
    e->rec.online = !offline;
    e->expires_ms = offline ? 0 : now + f->lifetime_ms;
    dir_persist(n, e);
    if (offline && was_online)
        presence(n, e, FE_PRESENCE_OFFLINE, now);
    else if (!offline && !was_online)
        presence(n, e, FE_PRESENCE_ONLINE, now);
    if (!offline && e->expires_ms < n->presence_due_ms)
        n->presence_due_ms = e->expires_ms;
    return 1;
}

/* Keep only the newest announce of each key in the outbox. */
static void replace_announce(fe_node *n, const uint8_t pk[FE_PK_BYTES], const fe_item *newer)
{
    fe_dir_entry *e = fe_dir_find_pk(&n->dir, pk);
    if (!e)
        return;
    if (e->have_ann) {
        fe_item *old = fe_outbox_find(&n->ob, e->ann_id, FE_T_ANNOUNCE);
        if (old && old != newer)
            forget_item(n, old);
    }
    memcpy(e->ann_id, newer->id, FE_MSG_ID_BYTES);
    e->have_ann = 1;
}

static void check_presence(fe_node *n, uint64_t now)
{
    uint64_t next = UINT64_MAX;
    for (size_t i = 0; i < n->dir.count; i++) {
        fe_dir_entry *e = &n->dir.e[i];
        if (!e->rec.online)
            continue;
        if (e->expires_ms <= now) {
            e->rec.online = 0;
            dir_persist(n, e);
            presence(n, e, FE_PRESENCE_OFFLINE, now);
        } else if (e->expires_ms < next) {
            next = e->expires_ms;
        }
    }
    n->presence_due_ms = next;
}

/* ------------------------------------------------------------------ */
/* anti-entropy */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void send_summary(fe_node *n, fe_link *l)
{
    size_t count = 0, per;

    for (size_t i = 0; i < n->ob.cap; i++) {
        const fe_item *it = fe_outbox_slot(&n->ob, i);
        if (it->in_use && (it->in_digest || it->type == FE_T_RECEIPT))
            n->tokens[count++] = it->token;
    }
    qsort(n->tokens, count, sizeof *n->tokens, cmp_u32);
    /* Equal tokens (prefix collisions) are listed once. */
    size_t u = 0;
    for (size_t i = 0; i < count; i++)
        if (u == 0 || n->tokens[u - 1] != n->tokens[i])
            n->tokens[u++] = n->tokens[i];
    count = u;
    per = l->mtu > FE_SUMMARY_HDR_BYTES ? (l->mtu - FE_SUMMARY_HDR_BYTES) / FE_TOKEN_BYTES : 0;
    if (per > SUMMARY_TOKENS_MAX)
        per = SUMMARY_TOKENS_MAX;
    if (per == 0)
        return;
    uint16_t total = n->ob.digest_count > 0xFFFF ? 0xFFFF : (uint16_t)n->ob.digest_count;
    size_t start = 0;
    uint32_t lo = 0;
    do {
        size_t m = count - start < per ? count - start : per;
        uint32_t hi = (start + m >= count) ? UINT32_MAX : n->tokens[start + m - 1];
        ptrdiff_t len = fe_wire_summary(n->frame, sizeof n->frame, n->ob.digest, total, lo, hi,
                                        n->tokens + start, m);
        if (len > 0)
            emit(n, l, n->frame, (size_t)len, FE_PRIO_SYNC);
        n->st.summaries_out++;
        start += m;
        lo = hi + 1;
    } while (start < count);
}

static int token_listed(const fe_frame *f, uint32_t tok)
{
    size_t lo = 0, hi = f->token_count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        uint32_t t = fe_get_be32(f->tokens + mid * FE_TOKEN_BYTES);
        if (t == tok)
            return 1;
        if (t < tok)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

static void trickle_start(fe_node *n, fe_link *l, uint64_t now)
{
    uint64_t half = l->interval_ms / 2;
    l->fire_ms = now + half + rand_below(n, l->interval_ms - half);
    l->end_ms = now + l->interval_ms;
    l->heard_consistent = 0;
}

static void trickle_reset(fe_node *n, fe_link *l, uint64_t now)
{
    if (l->interval_ms == n->cfg.trickle_imin_ms && l->end_ms > now)
        return;
    l->interval_ms = n->cfg.trickle_imin_ms;
    trickle_start(n, l, now);
}

static void on_summary(fe_node *n, fe_link *l, const fe_frame *f, uint64_t now)
{
    if (n->cfg.policy == FE_POLICY_NAIVE)
        return;
    if (f->digest == n->ob.digest &&
        f->total == (n->ob.digest_count > 0xFFFF ? 0xFFFF : n->ob.digest_count)) {
        l->heard_consistent++;
        return;
    }
    trickle_reset(n, l, now);
    /* Offer what the peer lacks in the range this page covers. */
    for (size_t i = 0; i < n->ob.cap; i++) {
        fe_item *it = fe_outbox_slot(&n->ob, i);
        if (!it->in_use || it->token < f->range_lo || it->token > f->range_hi)
            continue;
        if (it->type == FE_T_RECEIPT) {
            /* A receipt is an anti-packet: only peers holding its message
             * need it (and nodes that never saw the message refuse it). */
            if (!token_listed(f, it->token & ~1u) || token_listed(f, it->token))
                continue;
        } else if (token_listed(f, it->token) || token_listed(f, it->token | 1u)) {
            continue; /* they have it, or its receipt: the message is done */
        }
        if (l->kind == FE_LINK_P2P || l->bidx < 0)
            send_item(n, l, it, now);
        else
            schedule_bcast(n, it, l, 0, now);
    }
}

/* ------------------------------------------------------------------ */
/* frames in */

static int origin_of(const fe_frame *f, uint8_t origin[FE_HINT_BYTES])
{
    switch (f->type) {
    case FE_T_DM:
        memcpy(origin, f->src, FE_HINT_BYTES);
        break;
    case FE_T_ANON:
    case FE_T_GROUP:
        memcpy(origin, f->dst, FE_HINT_BYTES);
        break;
    case FE_T_ANNOUNCE:
        memcpy(origin, f->pk, FE_HINT_BYTES);
        break;
    default:
        memcpy(origin, f->id, FE_HINT_BYTES);
        break;
    }
    return 0;
}

static void heard_again(fe_node *n, fe_link *l, const fe_frame *f)
{
    n->st.duplicates++;
    if (l->bidx < 0)
        return;
    fe_item *it = fe_outbox_find(&n->ob, f->id, f->type);
    if (it && (it->pend & (1u << l->bidx)) && it->heard[l->bidx] < 255)
        it->heard[l->bidx]++;
}

static int on_receipt(fe_node *n, fe_link *l, const fe_frame *f, const uint8_t *buf, size_t len,
                      uint64_t now)
{
    uint8_t kinds = fe_dedupe_get(&n->dd, f->id, now);
    int err;

    if (kinds & FE_SEEN_RECEIPT) {
        heard_again(n, l, f);
        return FE_ERR_DUPLICATE;
    }
    /* Only a receipt whose secret hashes to a message id we know counts:
     * forging one means inverting BLAKE2b, and receipts for unknown ids are
     * not spread, so they cannot be used to flood. */
    if (!(kinds & FE_SEEN_MSG) && n->cfg.policy != FE_POLICY_NAIVE) {
        n->st.receipts_unmatched++;
        return FE_ERR_NOTFOUND;
    }
    if (f->lifetime_ms == 0) {
        n->st.expired++;
        return FE_ERR_EXPIRED;
    }
    n->st.receipts_valid++;
    remember(n, f->id, FE_SEEN_RECEIPT, dedupe_expiry(now, f->lifetime_ms), now);
    apply_receipt(n, f->id, kinds, now);
    if (f->hops <= 1)
        return FE_OK;
    fe_item *it = hold(n, f->id, FE_T_RECEIPT, f->id, buf, len, (uint8_t)(f->hops - 1), 0,
                       now + f->lifetime_ms, now, &err);
    if (it)
        spread(n, it, l, now);
    return FE_OK;
}

static void retry_duplicate(fe_node *n, const fe_frame *f, uint64_t now)
{
    if (f->type == FE_T_GROUP) {
        try_open_group(n, f, now);
        return;
    }
    if ((f->type == FE_T_DM || f->type == FE_T_ANON) &&
        memcmp(f->dst, n->id->addr, FE_HINT_BYTES) == 0 && try_open_private(n, f, now) > 0) {
        /* Delivered: whatever copy we held under this id is not needed. */
        fe_item *it = fe_outbox_find(&n->ob, f->id, f->type);
        if (it && !it->own)
            forget_item(n, it);
    }
}

static int on_item(fe_node *n, fe_link *l, const fe_frame *f, const uint8_t *buf, size_t len,
                   uint64_t now)
{
    uint8_t origin[FE_HINT_BYTES];
    int err, relay = 1, opened = 0;

    if (f->type == FE_T_RECEIPT)
        return on_receipt(n, l, f, buf, len, now);

    uint8_t kinds = fe_dedupe_get(&n->dd, f->id, now);
    if (kinds & FE_SEEN_MSG) {
        /* A copy for us that was not delivered yet: an earlier copy with the
         * same id may have been corrupted or forged, so try this one too.
         * Opening costs one MAC check; it cannot deliver twice. */
        if (!(kinds & (FE_SEEN_DELIVERED | FE_SEEN_RECEIPT | FE_SEEN_OWN)))
            retry_duplicate(n, f, now);
        heard_again(n, l, f);
        return FE_ERR_DUPLICATE;
    }
    if (f->lifetime_ms == 0) {
        n->st.expired++;
        return FE_ERR_EXPIRED;
    }
    if (f->type == FE_T_ANNOUNCE && !on_announce(n, f, now)) {
        /* Invalid or stale announces are not remembered, so a forged copy
         * cannot shadow the real one. */
        return FE_OK;
    }
    remember(n, f->id, FE_SEEN_MSG, dedupe_expiry(now, f->lifetime_ms), now);
    if (kinds & FE_SEEN_RECEIPT)
        return FE_OK; /* already delivered: the receipt has purged it */

    switch (f->type) {
    case FE_T_DM:
    case FE_T_ANON:
        /* Delivered here: the receipt will purge the copies, so this node
         * keeps none, unless purging is off and copies live out their time. */
        opened = try_open_private(n, f, now);
        if (opened > 0 && n->cfg.purge_on_receipt)
            relay = 0;
        /* A corrupted copy for us is not kept: holding it would list its
         * token in our summaries, and peers would never offer us the real
         * copy (same id, or another id with the same token). The id stays
         * remembered; a later copy is still tried (retry_duplicate). */
        if (opened < 0)
            relay = 0;
        break;
    case FE_T_GROUP:
        try_open_group(n, f, now);
        break;
    default:
        break;
    }
    /* Hold only what can still be passed on (a frame that arrives with one
     * hop left goes no further). */
    if (!relay || f->hops <= 1)
        return FE_OK;
    origin_of(f, origin);
    fe_item *it = hold(n, f->id, f->type, origin, buf, len, (uint8_t)(f->hops - 1), 0,
                       now + f->lifetime_ms, now, &err);
    if (!it)
        return err;
    if (f->type == FE_T_ANNOUNCE)
        replace_announce(n, f->pk, it);
    spread(n, it, l, now);
    return FE_OK;
}

static int on_whole_frame(fe_node *n, fe_link *l, const uint8_t *buf, size_t len, uint64_t now,
                          int inner)
{
    fe_frame f;

    if (fe_wire_decode(&f, buf, len) != FE_OK) {
        n->st.malformed++;
        return FE_ERR_MALFORMED;
    }
    switch (f.type) {
    case FE_T_SUMMARY:
        on_summary(n, l, &f, now);
        return FE_OK;
    case FE_T_FRAG: {
        const uint8_t *whole;
        size_t whole_len;
        if (inner) {
            n->st.malformed++;
            return FE_ERR_MALFORMED;
        }
        int rc = fe_reasm_feed(n->reasm, l->id, buf, len, now, &whole, &whole_len);
        if (rc < 0) {
            n->st.malformed++;
            return rc;
        }
        if (rc == 0)
            return FE_OK;
        /* The reassembly buffer is reused by the next feed: work on a copy. */
        uint8_t copy[FE_FRAME_MAX];
        memcpy(copy, whole, whole_len);
        return on_whole_frame(n, l, copy, whole_len, now, 1);
    }
    default:
        return on_item(n, l, &f, buf, len, now);
    }
}

int fe_node_on_frame(fe_node *n, uint32_t link, const uint8_t *frame, size_t len, uint64_t now_ms)
{
    fe_link *l = link_find(n, link);

    if (!l || !frame)
        return FE_ERR_INVALID;
    n->st.frames_in++;
    n->st.bytes_in += len;
    return on_whole_frame(n, l, frame, len, now_ms, 0);
}

/* ------------------------------------------------------------------ */
/* timers */

static void fire_relay(fe_node *n, fe_item *it, uint64_t now)
{
    uint8_t pend = it->pend;
    it->pend = 0;
    for (int b = 0; b < FE_BCAST_LINKS_MAX; b++) {
        if (!(pend & (1u << b)) || !n->bcast[b])
            continue;
        if (it->heard[b] >= n->cfg.redundancy_k && !n->bcast[b]->no_suppression) {
            n->st.suppressed++;
            continue;
        }
        send_item(n, n->bcast[b], it, now);
    }
}

static void naive_round(fe_node *n, uint64_t now)
{
    for (size_t li = 0; li < FE_LINKS_MAX; li++) {
        if (!n->links[li].in_use)
            continue;
        for (size_t i = 0; i < n->ob.cap; i++) {
            fe_item *it = fe_outbox_slot(&n->ob, i);
            if (it->in_use)
                send_item(n, &n->links[li], it, now);
        }
    }
}

static void own_announce(fe_node *n, int offline, uint64_t now)
{
    uint8_t frame[FE_FRAME_MAX];
    fe_frame f;
    int err;

    n->announce_seq++;
    uint8_t seqb[4];
    fe_put_be32(seqb, n->announce_seq);
    store_err(n, n->store.ops->meta_put(n->store.ctx, "announce_seq", seqb, sizeof seqb));
    ptrdiff_t len = fe_seal_announce(frame, sizeof frame, n->id, n->announce_seq, n->cfg.name,
                                     offline, n->cfg.hops, n->cfg.announce_lifetime_ms);
    if (len <= 0 || fe_wire_decode(&f, frame, (size_t)len) != FE_OK)
        return;
    remember(n, f.id, FE_SEEN_MSG | FE_SEEN_OWN, dedupe_expiry(now, f.lifetime_ms), now);
    /* Drop our previous announce from the outbox: only the newest matters. */
    for (size_t i = 0; i < n->ob.cap; i++) {
        fe_item *it = fe_outbox_slot(&n->ob, i);
        if (it->in_use && it->own && it->type == FE_T_ANNOUNCE)
            forget_item(n, it);
    }
    fe_item *it = hold(n, f.id, FE_T_ANNOUNCE, n->id->pk, frame, (size_t)len, n->cfg.hops, 1,
                       now + f.lifetime_ms, now, &err);
    if (it)
        spread(n, it, NULL, now);
    n->last_announce_ms = now;
    n->announced = 1;
    n->said_offline = offline;
}

int fe_node_tick(fe_node *n, uint64_t now)
{
    fe_timer t;

    while (fe_timerq_pop_due(&n->tq, now, &t)) {
        if (t.slot >= n->ob.cap)
            continue;
        fe_item *it = fe_outbox_slot(&n->ob, t.slot);
        if (!it->in_use || it->gen != t.gen)
            continue;
        if (t.kind == T_EXPIRE && it->expires_ms <= now) {
            n->st.expired++;
            forget_item(n, it);
        } else if (t.kind == T_RELAY && it->pend && it->relay_due_ms <= now) {
            fire_relay(n, it, now);
        }
    }
    for (size_t i = 0; i < FE_LINKS_MAX; i++) {
        fe_link *l = &n->links[i];
        if (!l->in_use || n->cfg.policy == FE_POLICY_NAIVE)
            continue;
        if (l->fire_ms && l->fire_ms <= now) {
            l->fire_ms = 0;
            if (l->heard_consistent < n->cfg.redundancy_k || l->no_suppression)
                send_summary(n, l);
        }
        if (l->end_ms <= now) {
            l->interval_ms *= 2;
            if (l->interval_ms > n->cfg.trickle_imax_ms)
                l->interval_ms = n->cfg.trickle_imax_ms;
            trickle_start(n, l, now);
        }
    }
    if (n->cfg.policy == FE_POLICY_NAIVE && n->naive_due_ms <= now) {
        naive_round(n, now);
        n->naive_due_ms = now + n->cfg.naive_round_ms;
    }
    if (n->announce_due_ms <= now) {
        own_announce(n, 0, now);
        n->announce_due_ms =
            n->cfg.announce_interval_ms ? now + n->cfg.announce_interval_ms : UINT64_MAX;
    }
    if (n->presence_due_ms <= now)
        check_presence(n, now);
    if (n->housekeeping_ms <= now) {
        /* A full sweep touches every slot; expired entries are also reclaimed
         * on insert, so sweep only once they could crowd the table. */
        if (n->dd.count > n->dd.max_count / 2)
            fe_dedupe_expire(&n->dd, now);
        fe_reasm_expire(n->reasm, now);
        n->housekeeping_ms = now + HOUSEKEEPING_MS;
    }
    return FE_OK;
}

uint64_t fe_node_next_deadline(const fe_node *n)
{
    uint64_t d = fe_timerq_peek(&n->tq);

    for (size_t i = 0; i < FE_LINKS_MAX; i++) {
        const fe_link *l = &n->links[i];
        if (!l->in_use || n->cfg.policy == FE_POLICY_NAIVE)
            continue;
        if (l->fire_ms && l->fire_ms < d)
            d = l->fire_ms;
        if (l->end_ms < d)
            d = l->end_ms;
    }
    if (n->cfg.policy == FE_POLICY_NAIVE && n->naive_due_ms < d)
        d = n->naive_due_ms;
    if (n->announce_due_ms < d)
        d = n->announce_due_ms;
    if (n->presence_due_ms < d)
        d = n->presence_due_ms;
    /* Housekeeping only matters while there is something to sweep. */
    if ((n->dd.count || fe_reasm_in_use(n->reasm)) && n->housekeeping_ms < d)
        d = n->housekeeping_ms;
    return d;
}

/* ------------------------------------------------------------------ */
/* links */

int fe_node_link_up(fe_node *n, uint32_t link, const fe_link_info *info, uint64_t now)
{
    fe_link *l = link_find(n, link);

    if (!info || info->mtu < FE_MTU_MIN ||
        (info->kind != FE_LINK_BROADCAST && info->kind != FE_LINK_P2P))
        return FE_ERR_INVALID;
    if (!l) {
        for (size_t i = 0; i < FE_LINKS_MAX && !l; i++)
            if (!n->links[i].in_use)
                l = &n->links[i];
        if (!l)
            return FE_ERR_FULL;
        memset(l, 0, sizeof *l);
        l->bidx = -1;
        if (info->kind == FE_LINK_BROADCAST)
            for (int b = 0; b < FE_BCAST_LINKS_MAX; b++)
                if (!n->bcast[b]) {
                    n->bcast[b] = l;
                    l->bidx = b;
                    break;
                }
    }
    l->id = link;
    l->in_use = 1;
    l->kind = info->kind;
    l->no_suppression = info->no_suppression != 0;
    l->mtu = info->mtu > FE_FRAME_MAX ? FE_FRAME_MAX : info->mtu;
    l->interval_ms = n->cfg.trickle_imin_ms;
    l->end_ms = 0;
    if (n->cfg.policy == FE_POLICY_NAIVE) {
        for (size_t i = 0; i < n->ob.cap; i++) {
            fe_item *it = fe_outbox_slot(&n->ob, i);
            if (it->in_use)
                send_item(n, l, it, now);
        }
        return FE_OK;
    }
    trickle_start(n, l, now);
    if (info->kind == FE_LINK_P2P) {
        /* A new peer: tell it at once what we hold. */
        send_summary(n, l);
    }
    return FE_OK;
}

int fe_node_link_down(fe_node *n, uint32_t link, uint64_t now)
{
    fe_link *l = link_find(n, link);
    (void)now;

    if (!l)
        return FE_ERR_NOTFOUND;
    if (l->bidx >= 0)
        n->bcast[l->bidx] = NULL;
    memset(l, 0, sizeof *l);
    return FE_OK;
}

/* ------------------------------------------------------------------ */
/* the user's side */

/* Refuse before sealing: a client that pipelines past the quota would
 * otherwise pay for the encryption of every refused send. hold() would
 * refuse it anyway (nothing is evicted for an origin at its quota). */
static int own_quota_full(fe_node *n)
{
    if (fe_outbox_origin_count(&n->ob, n->id->addr) < n->ob.origin_quota)
        return 0;
    n->st.quota_rejects++;
    return 1;
}

int fe_node_send(fe_node *n, uint8_t id[static FE_MSG_ID_BYTES],
                 const uint8_t to[static FE_ADDR_BYTES], const uint8_t *text, size_t len,
                 unsigned flags, uint64_t now)
{
    int amb, err;
    fe_dir_entry *e;
    ptrdiff_t flen;
    uint8_t frame[FE_FRAME_MAX];

    if (len > FE_TEXT_MAX)
        return FE_ERR_TOOBIG;
    if ((len && !text) || (flags & ~FE_SEND_ANONYMOUS))
        return FE_ERR_INVALID;
    if (memcmp(to, n->id->addr, FE_ADDR_BYTES) == 0)
        return FE_ERR_INVALID;
    e = fe_dir_find_addr(&n->dir, to, FE_ADDR_BYTES, &amb);
    if (!e)
        return FE_ERR_UNKNOWN_KEY;
    if (own_quota_full(n))
        return FE_ERR_FULL;
    if (flags & FE_SEND_ANONYMOUS) {
        uint8_t secret[FE_RECEIPT_SECRET_BYTES];
        fe_env_rand(&n->env, secret, sizeof secret);
        flen = fe_seal_anon(frame, sizeof frame, id, e->xpk, e->addr, secret, text, len,
                            n->cfg.hops, n->cfg.lifetime_ms);
        sodium_memzero(secret, sizeof secret);
    } else {
        uint8_t salt[FE_SALT_BYTES];
        if (fe_dir_shared_key(e, n->id) != FE_OK)
            return FE_ERR_CRYPTO;
        fe_env_rand(&n->env, salt, sizeof salt);
        flen = fe_seal_dm(frame, sizeof frame, id, e->k, n->id->addr, e->addr, salt, text, len,
                          n->cfg.hops, n->cfg.lifetime_ms);
    }
    if (flen < 0)
        return (int)flen;
    if (fe_dedupe_get(&n->dd, id, now) & FE_SEEN_MSG)
        return FE_ERR_DUPLICATE; /* same salt and text twice: 2^-32 */
    fe_item *it = hold(n, id, flags & FE_SEND_ANONYMOUS ? FE_T_ANON : FE_T_DM, n->id->addr, frame,
                       (size_t)flen, n->cfg.hops, 1, now + n->cfg.lifetime_ms, now, &err);
    if (!it)
        return err;
    remember(n, id, FE_SEEN_MSG | FE_SEEN_OWN, dedupe_expiry(now, n->cfg.lifetime_ms), now);
    fe_sent_rec sent = {.type = it->type, .sent_ms = now};
    memcpy(sent.id, id, FE_MSG_ID_BYTES);
    memcpy(sent.to, to, FE_ADDR_BYTES);
    int rc = n->store.ops->sent_put(n->store.ctx, &sent);
    if (rc != FE_OK) {
        store_err(n, rc);
        return FE_ERR_STORE;
    }
    spread(n, it, NULL, now);
    return FE_OK;
}

static fe_group *group_find(fe_node *n, const uint8_t gid[FE_GROUP_ID_BYTES])
{
    for (size_t i = 0; i < FE_GROUPS_MAX; i++)
        if (n->groups[i].in_use && memcmp(n->groups[i].rec.id, gid, FE_GROUP_ID_BYTES) == 0)
            return &n->groups[i];
    return NULL;
}

/* Deliver group messages we already hold as a relay (late join: history). */
static void group_backfill(fe_node *n, const fe_group *g, uint64_t now)
{
    for (size_t i = 0; i < n->ob.cap; i++) {
        fe_item *it = fe_outbox_slot(&n->ob, i);
        fe_frame f;
        if (!it->in_use || it->type != FE_T_GROUP || it->own ||
            memcmp(it->frame + 4, g->rec.id, FE_HINT_BYTES) != 0)
            continue;
        if (fe_wire_decode(&f, it->frame, it->len) == FE_OK)
            try_open_group(n, &f, now);
    }
}

static int group_add(fe_node *n, const fe_group_rec *rec)
{
    if (group_find(n, rec->id))
        return FE_ERR_DUPLICATE;
    for (size_t i = 0; i < FE_GROUPS_MAX; i++)
        if (!n->groups[i].in_use) {
            n->groups[i].in_use = 1;
            n->groups[i].rec = *rec;
            return FE_OK;
        }
    return FE_ERR_FULL;
}

int fe_node_group_join(fe_node *n, uint8_t group_id[static FE_GROUP_ID_BYTES],
                       const uint8_t key[static FE_GROUP_KEY_BYTES], const char *name, uint64_t now)
{
    fe_group_rec rec;
    int rc;

    memset(&rec, 0, sizeof rec);
    memcpy(rec.key, key, FE_GROUP_KEY_BYTES);
    fe_seal_group_id(rec.id, key);
    if (name)
        snprintf(rec.name, sizeof rec.name, "%s", name);
    memcpy(group_id, rec.id, FE_GROUP_ID_BYTES);
    rc = group_add(n, &rec);
    if (rc == FE_ERR_DUPLICATE)
        return FE_OK;
    if (rc != FE_OK)
        return rc;
    rc = n->store.ops->group_put(n->store.ctx, &rec);
    sodium_memzero(&rec, sizeof rec);
    if (rc != FE_OK) {
        store_err(n, rc);
        fe_node_group_leave(n, group_id);
        return FE_ERR_STORE;
    }
    group_backfill(n, group_find(n, group_id), now);
    return FE_OK;
}

int fe_node_group_leave(fe_node *n, const uint8_t group_id[static FE_GROUP_ID_BYTES])
{
    fe_group *g = group_find(n, group_id);
    if (!g)
        return FE_ERR_NOTFOUND;
    store_err(n, n->store.ops->group_del(n->store.ctx, group_id));
    sodium_memzero(g, sizeof *g);
    return FE_OK;
}

int fe_node_group_send(fe_node *n, uint8_t id[static FE_MSG_ID_BYTES],
                       const uint8_t group_id[static FE_GROUP_ID_BYTES], const uint8_t *text,
                       size_t len, uint64_t now)
{
    uint8_t frame[FE_FRAME_MAX], salt[FE_SALT_BYTES];
    fe_group *g = group_find(n, group_id);
    int err;

    if (!g)
        return FE_ERR_NOTFOUND;
    if (len > FE_TEXT_MAX)
        return FE_ERR_TOOBIG;
    if (len && !text)
        return FE_ERR_INVALID;
    fe_env_rand(&n->env, salt, sizeof salt);
    ptrdiff_t flen = fe_seal_group(frame, sizeof frame, id, g->rec.key, n->id->addr, salt, text,
                                   len, n->cfg.hops, n->cfg.lifetime_ms);
    if (flen < 0)
        return (int)flen;
    fe_item *it = hold(n, id, FE_T_GROUP, group_id, frame, (size_t)flen, n->cfg.hops, 1,
                       now + n->cfg.lifetime_ms, now, &err);
    if (!it)
        return err;
    remember(n, id, FE_SEEN_MSG | FE_SEEN_OWN, dedupe_expiry(now, n->cfg.lifetime_ms), now);
    fe_sent_rec sent = {.type = FE_T_GROUP, .sent_ms = now};
    memcpy(sent.id, id, FE_MSG_ID_BYTES);
    memcpy(sent.to, group_id, FE_GROUP_ID_BYTES);
    store_err(n, n->store.ops->sent_put(n->store.ctx, &sent));
    spread(n, it, NULL, now);
    return FE_OK;
}

int fe_node_announce(fe_node *n, uint64_t now)
{
    if (n->announced && now - n->last_announce_ms < ANNOUNCE_MIN_GAP_MS)
        return FE_ERR_FULL;
    own_announce(n, 0, now);
    return FE_OK;
}

int fe_node_going_offline(fe_node *n, uint64_t now)
{
    own_announce(n, 1, now);
    return FE_OK;
}

int fe_node_repeat_going_offline(fe_node *n, uint64_t now)
{
    if (!n->said_offline)
        return FE_ERR_NOTFOUND;
    for (size_t i = 0; i < n->ob.cap; i++) {
        fe_item *it = fe_outbox_slot(&n->ob, i);
        if (!it->in_use || !it->own || it->type != FE_T_ANNOUNCE)
            continue;
        /* The same frame, so whoever heard the first copy drops this one. */
        for (size_t k = 0; k < FE_LINKS_MAX; k++)
            if (n->links[k].in_use)
                send_item(n, &n->links[k], it, now);
        return FE_OK;
    }
    return FE_ERR_NOTFOUND;
}

/* ------------------------------------------------------------------ */
/* queries */

int fe_node_user_by_name(const fe_node *n, fe_dir_rec *out, const char *name)
{
    fe_dir_entry *e = fe_dir_find_name(&n->dir, name);
    if (!e)
        return FE_ERR_NOTFOUND;
    *out = e->rec;
    return FE_OK;
}

int fe_node_user_by_addr(const fe_node *n, fe_dir_rec *out, const uint8_t *prefix,
                         size_t prefix_len)
{
    int amb;
    fe_dir_entry *e = fe_dir_find_addr(&n->dir, prefix, prefix_len, &amb);
    if (amb)
        return FE_ERR_INVALID;
    if (!e)
        return FE_ERR_NOTFOUND;
    *out = e->rec;
    return FE_OK;
}

void fe_node_users(const fe_node *n, int (*cb)(void *ctx, const fe_dir_rec *u), void *ctx)
{
    for (size_t i = 0; i < n->dir.count; i++)
        if (cb(ctx, &n->dir.e[i].rec))
            return;
}

int fe_node_user_verify(fe_node *n, const uint8_t pk[static FE_PK_BYTES], int verified)
{
    fe_dir_entry *e = fe_dir_find_pk(&n->dir, pk);
    if (!e)
        return FE_ERR_NOTFOUND;
    e->rec.verified = verified ? 1 : 0;
    int rc = n->store.ops->dir_put(n->store.ctx, &e->rec);
    store_err(n, rc);
    return rc == FE_OK ? FE_OK : FE_ERR_STORE;
}

void fe_node_groups(const fe_node *n, int (*cb)(void *ctx, const fe_group_rec *g), void *ctx)
{
    for (size_t i = 0; i < FE_GROUPS_MAX; i++)
        if (n->groups[i].in_use && cb(ctx, &n->groups[i].rec))
            return;
}

void fe_node_get_stats(const fe_node *n, fe_node_stats *out)
{
    *out = n->st;
    out->items_held = n->ob.used;
    out->item_bytes_held = n->ob.bytes;
    out->dedupe_entries = n->dd.count;
    out->reasm_in_use = fe_reasm_in_use(n->reasm);
    out->directory_entries = n->dir.count;
}

const fe_identity *fe_node_identity(const fe_node *n)
{
    return n->id;
}

int fe_node_holds(const fe_node *n, const uint8_t id[static FE_MSG_ID_BYTES])
{
    return fe_outbox_find(&n->ob, id, FE_T_DM) || fe_outbox_find(&n->ob, id, FE_T_ANON) ||
           fe_outbox_find(&n->ob, id, FE_T_GROUP);
}

/* ------------------------------------------------------------------ */
/* life cycle */

void fe_node_config_default(fe_node_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->policy = FE_POLICY_FERRY;
    cfg->purge_on_receipt = 1;
    cfg->hops = FE_HOPS_DEFAULT;
    cfg->lifetime_ms = FE_LIFETIME_DEFAULT_MS;
    cfg->announce_interval_ms = 10u * 60u * 1000u;
    cfg->announce_lifetime_ms = 30u * 60u * 1000u;
    cfg->relay_delay_max_ms = 500;
    cfg->redundancy_k = 3;
    cfg->trickle_imin_ms = 5000;
    cfg->trickle_imax_ms = 10u * 60u * 1000u;
    cfg->naive_round_ms = 30000;
}

static int load_item(void *ctx, const fe_item_rec *r)
{
    fe_node *n = ctx;
    fe_frame f;
    uint8_t origin[FE_HINT_BYTES];
    int err;

    if (fe_wire_decode(&f, r->frame, r->frame_len) != FE_OK || f.type != r->type) {
        n->st.malformed++;
        return 0;
    }
    if (r->expires_ms <= n->housekeeping_ms) {
        store_err(n, n->store.ops->item_del(n->store.ctx, r->id, r->type));
        return 0;
    }
    origin_of(&f, origin);
    if (r->own && (r->type == FE_T_DM || r->type == FE_T_ANON))
        memcpy(origin, n->id->addr, FE_HINT_BYTES);
    fe_item *it = fe_outbox_add(&n->ob, r->id, r->type, origin, r->frame, r->frame_len,
                                r->received_ms, r->expires_ms, &err);
    if (!it)
        return 0;
    item_state(n, it, r->own, r->own ? n->cfg.hops : (f.hops ? (uint8_t)(f.hops - 1) : 0));
    if (push_timer(n, it, T_EXPIRE, r->expires_ms) != FE_OK)
        fe_outbox_remove(&n->ob, it);
    if (r->type == FE_T_ANNOUNCE && !r->own) {
        fe_dir_entry *e = fe_dir_find_pk(&n->dir, f.pk);
        if (e) {
            memcpy(e->ann_id, r->id, FE_MSG_ID_BYTES);
            e->have_ann = 1;
        }
    }
    return 0;
}

static int load_seen(void *ctx, const uint8_t id[FE_MSG_ID_BYTES], uint8_t kinds,
                     uint64_t expires_ms)
{
    fe_node *n = ctx;
    if (expires_ms > n->housekeeping_ms)
        fe_dedupe_add(&n->dd, id, kinds, expires_ms, n->housekeeping_ms);
    return 0;
}

static int load_dir(void *ctx, const fe_dir_rec *r)
{
    fe_node *n = ctx;
    fe_dir_entry *e;
    fe_dir_rec rec = *r;
    rec.online = 0; /* presence is re-learned from fresh announces */
    if (!fe_dir_find_pk(&n->dir, r->pk) && fe_dir_add(&n->dir, &e, &rec) != FE_OK)
        n->st.store_errors++; /* a bad or surplus record: skip it, keep loading */
    return 0;
}

static int load_group(void *ctx, const fe_group_rec *r)
{
    (void)group_add(ctx, r);
    return 0;
}

int fe_node_new(fe_node **out, const fe_node_config *cfg, const fe_identity *id, const fe_env *env,
                const fe_store *store, const fe_node_callbacks *cb, uint64_t now)
{
    fe_node *n;
    int rc;

    *out = NULL;
    if (!cfg || !id || !store || !store->ops || !cb || !cb->send || cfg->hops == 0 ||
        cfg->lifetime_ms == 0 || cfg->lifetime_ms > FE_LIFETIME_MAX_MS ||
        cfg->trickle_imin_ms == 0 || cfg->trickle_imax_ms < cfg->trickle_imin_ms ||
        cfg->redundancy_k == 0 || (cfg->policy == FE_POLICY_NAIVE && cfg->naive_round_ms == 0) ||
        strnlen(cfg->name, sizeof cfg->name) > FE_NAME_MAX)
        return FE_ERR_INVALID;
    if (sodium_init() < 0)
        return FE_ERR_CRYPTO;
    n = calloc(1, sizeof *n);
    if (!n)
        return FE_ERR_NOMEM;
    n->cfg = *cfg;
    n->id = id;
    if (env)
        n->env = *env;
    n->store = *store;
    n->cb = *cb;
    size_t items_max = cfg->outbox_items_max ? cfg->outbox_items_max : FE_OUTBOX_CAPACITY;
    size_t dd_cap = cfg->dedupe_capacity ? cfg->dedupe_capacity : FE_DEDUPE_CAPACITY;
    uint8_t dd_key[FE_DEDUPE_KEY_BYTES];
    fe_env_rand(&n->env, dd_key, sizeof dd_key);
    if ((rc = fe_outbox_init(&n->ob, items_max,
                             cfg->outbox_bytes_max ? cfg->outbox_bytes_max : FE_OUTBOX_BYTES_MAX,
                             cfg->origin_quota ? cfg->origin_quota : FE_ORIGIN_QUOTA)) != FE_OK ||
        (rc = fe_dedupe_init(&n->dd, dd_cap, dd_key)) != FE_OK ||
        (rc = fe_timerq_init(&n->tq, 4 * items_max + 64)) != FE_OK ||
        (rc = fe_dir_init(&n->dir, FE_DIR_CAPACITY)) != FE_OK)
        goto fail;
    sodium_memzero(dd_key, sizeof dd_key);
    rc = FE_ERR_NOMEM;
    n->reasm = malloc(sizeof *n->reasm);
    n->tokens = malloc(items_max * sizeof *n->tokens);
    if (!n->reasm || !n->tokens)
        goto fail;
    fe_reasm_init(n->reasm, FE_REASM_TIMEOUT_MS);
    fe_env_rand(&n->env, (uint8_t *)&n->jitter_state, sizeof n->jitter_state);

    /* Load state: the housekeeping field holds "now" during loading. */
    n->housekeeping_ms = now;
    uint8_t seqb[4];
    size_t seqlen = 0;
    if (store->ops->meta_get(store->ctx, "announce_seq", seqb, sizeof seqb, &seqlen) == FE_OK &&
        seqlen == 4)
        n->announce_seq = fe_get_be32(seqb);
    rc = FE_ERR_STORE;
    if (store->ops->group_load(store->ctx, load_group, n) != FE_OK ||
        store->ops->dir_load(store->ctx, load_dir, n) != FE_OK ||
        store->ops->seen_load(store->ctx, load_seen, n) != FE_OK ||
        store->ops->item_load(store->ctx, load_item, n) != FE_OK)
        goto fail;

    n->housekeeping_ms = now + HOUSEKEEPING_MS;
    n->presence_due_ms = UINT64_MAX;
    n->naive_due_ms = now + cfg->naive_round_ms;
    /* Announce at start when announcing is on: peers need our key. */
    n->announce_due_ms = cfg->announce_interval_ms ? now : UINT64_MAX;
    *out = n;
    return FE_OK;
fail:
    fe_node_del(n);
    return rc;
}

void fe_node_del(fe_node *n)
{
    if (!n)
        return;
    fe_outbox_free(&n->ob);
    fe_dedupe_free(&n->dd);
    fe_timerq_free(&n->tq);
    fe_dir_free(&n->dir);
    free(n->reasm);
    free(n->tokens);
    sodium_memzero(n->groups, sizeof n->groups);
    sodium_memzero(n->text, sizeof n->text);
    free(n);
}
