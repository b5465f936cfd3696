/* In-memory store: see memstore.h.
 *
 * Each keyed table is a dense array of fixed-size records plus an
 * open-addressing index (linear probing, backward-shift deletion) that maps a
 * key to its position in the array. Deleting swaps the last record into the
 * hole, so the array stays dense, loads are a plain walk and put/del are O(1)
 * on average. The key is always the first key_len bytes of a record. */
#include "memstore.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#define MS_TABLE_MIN 16u
#define MS_META_KEY_MAX 255u   /* longer meta keys are refused */
#define MS_REC_MAX 0x7fffffffu /* positions must fit the uint32_t index */

typedef struct ms_item {
    uint8_t id[FE_MSG_ID_BYTES];
    uint8_t type; /* key = id || type: 9 contiguous bytes */
    uint8_t own;
    uint64_t received_ms;
    uint64_t expires_ms;
    uint8_t *frame; /* owned copy */
    size_t frame_len;
} ms_item;

typedef struct ms_seen {
    uint8_t id[FE_MSG_ID_BYTES];
    uint8_t kinds;
    uint64_t expires_ms;
} ms_seen;

typedef struct ms_meta {
    char *key;
    uint8_t *val;
    size_t len;
} ms_meta;

_Static_assert(offsetof(ms_item, type) == FE_MSG_ID_BYTES, "item key must be id || type");
_Static_assert(offsetof(fe_sent_rec, id) == 0, "sent key must lead the record");
_Static_assert(offsetof(fe_dir_rec, pk) == 0, "dir key must lead the record");
_Static_assert(offsetof(fe_group_rec, id) == 0, "group key must lead the record");

typedef struct ms_table {
    uint8_t *recs; /* cap records of rec_size bytes, the first count in use */
    size_t rec_size;
    size_t key_len;
    size_t count, cap;
    uint32_t *index;  /* 0 = empty, else record position + 1 */
    size_t index_cap; /* 0 or a power of two; kept at most half full */
} ms_table;

struct fe_memstore {
    ms_table items, seen, sent, dir, groups;
    fe_inbox_rec *inbox; /* text points to owned copies */
    size_t inbox_count, inbox_cap;
    ms_meta *meta; /* a handful of keys: linear search is enough */
    size_t meta_count, meta_cap;
    size_t frame_bytes, text_bytes, meta_bytes;
    int fail;
};

/* --- generic keyed table --- */

static uint64_t ms_mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

/* Unkeyed: this is the simulator's disk, not a table fed by an adversary. */
static uint64_t ms_hash(const uint8_t *key, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, key, 8);
        h = ms_mix(h ^ w);
        key += 8;
        n -= 8;
    }
    if (n > 0) {
        uint64_t w = 0;
        memcpy(&w, key, n);
        h = ms_mix(h ^ w);
    }
    return h;
}

static void tab_init(ms_table *t, size_t rec_size, size_t key_len)
{
    memset(t, 0, sizeof(*t));
    t->rec_size = rec_size;
    t->key_len = key_len;
}

static void tab_free(ms_table *t)
{
    if (t->recs)
        sodium_memzero(t->recs, t->cap * t->rec_size); /* group keys live here */
    free(t->recs);
    free(t->index);
    t->recs = NULL;
    t->index = NULL;
    t->count = t->cap = t->index_cap = 0;
}

static uint8_t *tab_rec(const ms_table *t, size_t pos)
{
    return t->recs + pos * t->rec_size;
}

/* Index slot holding key, or (if absent) the empty slot where it would go.
 * Returns 1 if found. The caller guarantees index_cap > 0. */
static int tab_probe(const ms_table *t, const uint8_t *key, size_t *slot)
{
    size_t mask = t->index_cap - 1;
    size_t i = (size_t)ms_hash(key, t->key_len) & mask;
    /* Terminates: the index is never more than half full. */
    for (;;) {
        uint32_t v = t->index[i];
        if (v == 0) {
            *slot = i;
            return 0;
        }
        if (memcmp(tab_rec(t, v - 1), key, t->key_len) == 0) {
            *slot = i;
            return 1;
        }
        i = (i + 1) & mask;
    }
}

static uint8_t *tab_get(const ms_table *t, const uint8_t *key)
{
    size_t slot;
    if (t->index_cap == 0 || !tab_probe(t, key, &slot))
        return NULL;
    return tab_rec(t, t->index[slot] - 1);
}

/* Rebuild the index at new_cap slots; the old one is kept on failure. */
static int tab_reindex(ms_table *t, size_t new_cap)
{
    uint32_t *idx = calloc(new_cap, sizeof(*idx));
    if (!idx)
        return FE_ERR_STORE;
    free(t->index);
    t->index = idx;
    t->index_cap = new_cap;
    for (size_t pos = 0; pos < t->count; pos++) {
        size_t slot;
        (void)tab_probe(t, tab_rec(t, pos), &slot);
        t->index[slot] = (uint32_t)(pos + 1);
    }
    return 0;
}

/* Make room for one more record. Leaves the table unchanged on failure. */
static int tab_reserve(ms_table *t)
{
    if (t->count >= MS_REC_MAX)
        return FE_ERR_STORE;
    if (t->count == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : MS_TABLE_MIN;
        uint8_t *r = realloc(t->recs, ncap * t->rec_size);
        if (!r)
            return FE_ERR_STORE;
        t->recs = r;
        t->cap = ncap;
    }
    if ((t->count + 1) * 2 > t->index_cap) {
        size_t ncap = t->index_cap ? t->index_cap * 2 : (size_t)MS_TABLE_MIN * 2;
        int rc = tab_reindex(t, ncap);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* The record for key: the existing one (*existed = 1) or a new zeroed one
 * with the key filled in (*existed = 0). NULL on allocation failure. The
 * pointer is valid until the next change to the table. */
static uint8_t *tab_upsert(ms_table *t, const uint8_t *key, int *existed)
{
    uint8_t *r = tab_get(t, key);
    if (r) {
        *existed = 1;
        return r;
    }
    if (tab_reserve(t) != 0)
        return NULL;
    size_t slot;
    (void)tab_probe(t, key, &slot);
    size_t pos = t->count++;
    t->index[slot] = (uint32_t)(pos + 1);
    r = tab_rec(t, pos);
    memset(r, 0, t->rec_size);
    memcpy(r, key, t->key_len);
    *existed = 0;
    return r;
}

/* Remove index slot i with backward shift: later members of the probe run
 * move back so that lookups never need tombstones. */
static void tab_unindex(ms_table *t, size_t i)
{
    size_t mask = t->index_cap - 1;
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        uint32_t v = t->index[j];
        if (v == 0)
            break;
        size_t home = (size_t)ms_hash(tab_rec(t, v - 1), t->key_len) & mask;
        /* The entry at j may fill the hole at i only if its home is not in (i, j]. */
        int stays = (i <= j) ? (i < home && home <= j) : (i < home || home <= j);
        if (stays)
            continue;
        t->index[i] = v;
        i = j;
    }
    t->index[i] = 0;
}

/* Remove record key; copy it into removed (rec_size bytes) if not NULL.
 * Returns 1 if it was present. */
static int tab_remove(ms_table *t, const uint8_t *key, void *removed)
{
    size_t slot;
    if (t->index_cap == 0 || !tab_probe(t, key, &slot))
        return 0;
    size_t pos = t->index[slot] - 1;
    if (removed)
        memcpy(removed, tab_rec(t, pos), t->rec_size);
    tab_unindex(t, slot);
    size_t last = t->count - 1;
    if (pos != last) {
        size_t lslot;
        int found = tab_probe(t, tab_rec(t, last), &lslot);
        (void)found; /* always found: the last record is indexed */
        t->index[lslot] = (uint32_t)(pos + 1);
        memcpy(tab_rec(t, pos), tab_rec(t, last), t->rec_size);
    }
    sodium_memzero(tab_rec(t, last), t->rec_size);
    t->count--;
    return 1;
}

/* Walk records from last to first so that a callback deleting the record it
 * visits (which swaps an already visited one into its place) skips nothing.
 * visit copies the record out before calling the user's callback. */
typedef int (*tab_visit_fn)(const uint8_t *rec, void *arg);

static int tab_walk(const ms_table *t, tab_visit_fn visit, void *arg)
{
    size_t i = t->count;
    while (i > 0) {
        i--;
        if (i >= t->count) { /* the callback shrank the table */
            i = t->count;
            continue;
        }
        int rc = visit(tab_rec(t, i), arg);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static size_t tab_bytes(const ms_table *t)
{
    return t->cap * t->rec_size + t->index_cap * sizeof(uint32_t);
}

/* --- items --- */

static void item_to_rec(fe_item_rec *out, const ms_item *it)
{
    memcpy(out->id, it->id, FE_MSG_ID_BYTES);
    out->type = it->type;
    out->own = it->own;
    out->received_ms = it->received_ms;
    out->expires_ms = it->expires_ms;
    out->frame = it->frame;
    out->frame_len = it->frame_len;
}

static void item_key(uint8_t key[FE_MSG_ID_BYTES + 1], const uint8_t *id, uint8_t type)
{
    memcpy(key, id, FE_MSG_ID_BYTES);
    key[FE_MSG_ID_BYTES] = type;
}

static int ms_item_put(void *ctx, const fe_item_rec *r)
{
    fe_memstore *m = ctx;
    if (m->fail || !r || (!r->frame && r->frame_len > 0))
        return FE_ERR_STORE;
    /* Copy first: r->frame may point at the copy being replaced. */
    uint8_t *copy = malloc(r->frame_len ? r->frame_len : 1);
    if (!copy)
        return FE_ERR_STORE;
    if (r->frame_len)
        memcpy(copy, r->frame, r->frame_len);
    uint8_t key[FE_MSG_ID_BYTES + 1];
    item_key(key, r->id, r->type);
    int existed;
    ms_item *it = (ms_item *)tab_upsert(&m->items, key, &existed);
    if (!it) {
        free(copy);
        return FE_ERR_STORE;
    }
    if (existed) {
        m->frame_bytes -= it->frame_len;
        free(it->frame);
    }
    it->own = r->own;
    it->received_ms = r->received_ms;
    it->expires_ms = r->expires_ms;
    it->frame = copy;
    it->frame_len = r->frame_len;
    m->frame_bytes += r->frame_len;
    return 0;
}

static int ms_item_del(void *ctx, const uint8_t id[FE_MSG_ID_BYTES], uint8_t type)
{
    fe_memstore *m = ctx;
    if (m->fail || !id)
        return FE_ERR_STORE;
    uint8_t key[FE_MSG_ID_BYTES + 1];
    item_key(key, id, type);
    ms_item gone;
    if (tab_remove(&m->items, key, &gone)) {
        m->frame_bytes -= gone.frame_len;
        free(gone.frame);
    }
    return 0; /* deleting a missing item is not an error */
}

typedef struct item_walk {
    fe_store_item_cb cb;
    void *cbctx;
} item_walk;

static int item_visit(const uint8_t *rec, void *arg)
{
    const item_walk *w = arg;
    ms_item it;
    memcpy(&it, rec, sizeof(it)); /* the callback may move the table */
    fe_item_rec r;
    item_to_rec(&r, &it);
    return w->cb(w->cbctx, &r);
}

int fe_memstore_item_iter(const fe_memstore *m, fe_store_item_cb cb, void *cbctx)
{
    if (!m || !cb)
        return FE_ERR_INVALID;
    item_walk w = {cb, cbctx};
    return tab_walk(&m->items, item_visit, &w);
}

static int ms_item_load(void *ctx, fe_store_item_cb cb, void *cbctx)
{
    fe_memstore *m = ctx;
    if (m->fail || !cb)
        return FE_ERR_STORE;
    return fe_memstore_item_iter(m, cb, cbctx);
}

int fe_memstore_item_get(const fe_memstore *m, const uint8_t id[static FE_MSG_ID_BYTES],
                         uint8_t type, fe_item_rec *out)
{
    uint8_t key[FE_MSG_ID_BYTES + 1];
    item_key(key, id, type);
    const ms_item *it = (const ms_item *)tab_get(&m->items, key);
    if (!it)
        return FE_ERR_NOTFOUND;
    item_to_rec(out, it);
    return 0;
}

size_t fe_memstore_item_count(const fe_memstore *m)
{
    return m ? m->items.count : 0;
}

/* --- seen --- */

static int ms_seen_put(void *ctx, const uint8_t id[FE_MSG_ID_BYTES], uint8_t kinds,
                       uint64_t expires_ms)
{
    fe_memstore *m = ctx;
    if (m->fail || !id)
        return FE_ERR_STORE;
    int existed;
    ms_seen *s = (ms_seen *)tab_upsert(&m->seen, id, &existed);
    if (!s)
        return FE_ERR_STORE;
    s->kinds = kinds;
    s->expires_ms = expires_ms;
    return 0;
}

typedef struct seen_walk {
    fe_store_seen_cb cb;
    void *cbctx;
} seen_walk;

static int seen_visit(const uint8_t *rec, void *arg)
{
    const seen_walk *w = arg;
    ms_seen s;
    memcpy(&s, rec, sizeof(s));
    return w->cb(w->cbctx, s.id, s.kinds, s.expires_ms);
}

static int ms_seen_load(void *ctx, fe_store_seen_cb cb, void *cbctx)
{
    fe_memstore *m = ctx;
    if (m->fail || !cb)
        return FE_ERR_STORE;
    seen_walk w = {cb, cbctx};
    return tab_walk(&m->seen, seen_visit, &w);
}

size_t fe_memstore_seen_count(const fe_memstore *m)
{
    return m ? m->seen.count : 0;
}

int fe_memstore_seen_get(const fe_memstore *m, const uint8_t id[static FE_MSG_ID_BYTES],
                         uint8_t *kinds, uint64_t *expires_ms)
{
    const ms_seen *s = (const ms_seen *)tab_get(&m->seen, id);
    if (!s)
        return FE_ERR_NOTFOUND;
    if (kinds)
        *kinds = s->kinds;
    if (expires_ms)
        *expires_ms = s->expires_ms;
    return 0;
}

size_t fe_memstore_seen_expire(fe_memstore *m, uint64_t now_ms)
{
    if (!m)
        return 0;
    size_t dropped = 0;
    /* Backwards: a removal swaps in the last record, which was already checked. */
    size_t i = m->seen.count;
    while (i > 0) {
        i--;
        ms_seen s;
        memcpy(&s, tab_rec(&m->seen, i), sizeof(s));
        if (s.expires_ms <= now_ms) {
            (void)tab_remove(&m->seen, s.id, NULL);
            dropped++;
        }
    }
    return dropped;
}

/* --- inbox --- */

static int ms_inbox_put(void *ctx, const fe_inbox_rec *r)
{
    fe_memstore *m = ctx;
    if (m->fail || !r || (!r->text && r->text_len > 0))
        return FE_ERR_STORE;
    if (m->inbox_count == m->inbox_cap) {
        size_t ncap = m->inbox_cap ? m->inbox_cap * 2 : MS_TABLE_MIN;
        fe_inbox_rec *n = realloc(m->inbox, ncap * sizeof(*n));
        if (!n)
            return FE_ERR_STORE;
        m->inbox = n;
        m->inbox_cap = ncap;
    }
    uint8_t *text = malloc(r->text_len ? r->text_len : 1);
    if (!text)
        return FE_ERR_STORE;
    if (r->text_len)
        memcpy(text, r->text, r->text_len);
    fe_inbox_rec *dst = &m->inbox[m->inbox_count++];
    *dst = *r;
    dst->text = text;
    m->text_bytes += r->text_len;
    return 0;
}

size_t fe_memstore_inbox_count(const fe_memstore *m)
{
    return m ? m->inbox_count : 0;
}

int fe_memstore_inbox_get(const fe_memstore *m, size_t index, fe_inbox_rec *out)
{
    if (!m || index >= m->inbox_count)
        return FE_ERR_NOTFOUND;
    *out = m->inbox[index];
    return 0;
}

/* --- sent --- */

static int ms_sent_put(void *ctx, const fe_sent_rec *r)
{
    fe_memstore *m = ctx;
    if (m->fail || !r)
        return FE_ERR_STORE;
    int existed;
    uint8_t *dst = tab_upsert(&m->sent, r->id, &existed);
    if (!dst)
        return FE_ERR_STORE;
    memcpy(dst, r, sizeof(*r));
    return 0;
}

static int ms_sent_delivered(void *ctx, const uint8_t id[FE_MSG_ID_BYTES], uint64_t delivered_ms)
{
    fe_memstore *m = ctx;
    fe_sent_rec rec;
    if (m->fail)
        return FE_ERR_STORE;
    const uint8_t *r = tab_get(&m->sent, id);
    if (!r)
        return 0; /* unknown ids are not an error: the record may predate the store */
    memcpy(&rec, r, sizeof rec);
    rec.delivered_ms = delivered_ms;
    return ms_sent_put(m, &rec);
}

int fe_memstore_sent_get(const fe_memstore *m, const uint8_t id[static FE_MSG_ID_BYTES],
                         fe_sent_rec *out)
{
    const uint8_t *r = tab_get(&m->sent, id);
    if (!r)
        return FE_ERR_NOTFOUND;
    memcpy(out, r, sizeof(*out));
    return 0;
}

/* --- directory --- */

static int ms_dir_put(void *ctx, const fe_dir_rec *r)
{
    fe_memstore *m = ctx;
    if (m->fail || !r)
        return FE_ERR_STORE;
    int existed;
    fe_dir_rec *dst = (fe_dir_rec *)tab_upsert(&m->dir, r->pk, &existed);
    if (!dst)
        return FE_ERR_STORE;
    *dst = *r;
    dst->name[FE_NAME_MAX] = '\0'; /* loaders may treat it as a C string */
    return 0;
}

typedef struct dir_walk {
    fe_store_dir_cb cb;
    void *cbctx;
} dir_walk;

static int dir_visit(const uint8_t *rec, void *arg)
{
    const dir_walk *w = arg;
    fe_dir_rec d;
    memcpy(&d, rec, sizeof(d));
    return w->cb(w->cbctx, &d);
}

static int ms_dir_load(void *ctx, fe_store_dir_cb cb, void *cbctx)
{
    fe_memstore *m = ctx;
    if (m->fail || !cb)
        return FE_ERR_STORE;
    dir_walk w = {cb, cbctx};
    return tab_walk(&m->dir, dir_visit, &w);
}

size_t fe_memstore_dir_count(const fe_memstore *m)
{
    return m ? m->dir.count : 0;
}

/* --- groups --- */

static int ms_group_put(void *ctx, const fe_group_rec *r)
{
    fe_memstore *m = ctx;
    if (m->fail || !r)
        return FE_ERR_STORE;
    int existed;
    fe_group_rec *dst = (fe_group_rec *)tab_upsert(&m->groups, r->id, &existed);
    if (!dst)
        return FE_ERR_STORE;
    *dst = *r;
    dst->name[FE_NAME_MAX] = '\0';
    return 0;
}

static int ms_group_del(void *ctx, const uint8_t id[FE_GROUP_ID_BYTES])
{
    fe_memstore *m = ctx;
    if (m->fail || !id)
        return FE_ERR_STORE;
    fe_group_rec gone;
    if (tab_remove(&m->groups, id, &gone))
        sodium_memzero(&gone, sizeof(gone));
    return 0;
}

typedef struct group_walk {
    fe_store_group_cb cb;
    void *cbctx;
} group_walk;

static int group_visit(const uint8_t *rec, void *arg)
{
    const group_walk *w = arg;
    fe_group_rec g;
    memcpy(&g, rec, sizeof(g));
    int rc = w->cb(w->cbctx, &g);
    sodium_memzero(&g, sizeof(g));
    return rc;
}

static int ms_group_load(void *ctx, fe_store_group_cb cb, void *cbctx)
{
    fe_memstore *m = ctx;
    if (m->fail || !cb)
        return FE_ERR_STORE;
    group_walk w = {cb, cbctx};
    return tab_walk(&m->groups, group_visit, &w);
}

size_t fe_memstore_group_count(const fe_memstore *m)
{
    return m ? m->groups.count : 0;
}

/* --- meta --- */

static ms_meta *meta_find(const fe_memstore *m, const char *key)
{
    for (size_t i = 0; i < m->meta_count; i++)
        if (strcmp(m->meta[i].key, key) == 0)
            return &m->meta[i];
    return NULL;
}

static int ms_meta_put(void *ctx, const char *key, const uint8_t *val, size_t len)
{
    fe_memstore *m = ctx;
    if (m->fail || !key || (!val && len > 0))
        return FE_ERR_STORE;
    size_t klen = strnlen(key, MS_META_KEY_MAX + 1);
    if (klen > MS_META_KEY_MAX)
        return FE_ERR_STORE;
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return FE_ERR_STORE;
    if (len)
        memcpy(copy, val, len);
    ms_meta *e = meta_find(m, key);
    if (!e) {
        if (m->meta_count == m->meta_cap) {
            size_t ncap = m->meta_cap ? m->meta_cap * 2 : 8;
            ms_meta *n = realloc(m->meta, ncap * sizeof(*n));
            if (!n) {
                free(copy);
                return FE_ERR_STORE;
            }
            m->meta = n;
            m->meta_cap = ncap;
        }
        char *kcopy = malloc(klen + 1);
        if (!kcopy) {
            free(copy);
            return FE_ERR_STORE;
        }
        memcpy(kcopy, key, klen + 1);
        e = &m->meta[m->meta_count++];
        e->key = kcopy;
        e->val = NULL;
        e->len = 0;
        m->meta_bytes += klen + 1;
    }
    m->meta_bytes -= e->len;
    free(e->val);
    e->val = copy;
    e->len = len;
    m->meta_bytes += len;
    return 0;
}

static int ms_meta_get(void *ctx, const char *key, uint8_t *val, size_t cap, size_t *len)
{
    fe_memstore *m = ctx;
    if (m->fail || !key)
        return FE_ERR_STORE;
    const ms_meta *e = meta_find(m, key);
    if (!e)
        return FE_ERR_NOTFOUND;
    if (len)
        *len = e->len;
    if (e->len > cap || (!val && e->len > 0))
        return FE_ERR_TOOBIG;
    if (e->len)
        memcpy(val, e->val, e->len);
    return 0;
}

/* --- lifecycle --- */

static const fe_store_ops memstore_ops = {
    .item_put = ms_item_put,
    .item_del = ms_item_del,
    .item_load = ms_item_load,
    .seen_put = ms_seen_put,
    .seen_load = ms_seen_load,
    .inbox_put = ms_inbox_put,
    .sent_put = ms_sent_put,
    .sent_delivered = ms_sent_delivered,
    .dir_put = ms_dir_put,
    .dir_load = ms_dir_load,
    .group_put = ms_group_put,
    .group_del = ms_group_del,
    .group_load = ms_group_load,
    .meta_put = ms_meta_put,
    .meta_get = ms_meta_get,
};

int fe_memstore_new(fe_memstore **out)
{
    if (!out)
        return FE_ERR_INVALID;
    fe_memstore *m = calloc(1, sizeof(*m));
    *out = m;
    if (!m)
        return FE_ERR_NOMEM;
    tab_init(&m->items, sizeof(ms_item), FE_MSG_ID_BYTES + 1);
    tab_init(&m->seen, sizeof(ms_seen), FE_MSG_ID_BYTES);
    tab_init(&m->sent, sizeof(fe_sent_rec), FE_MSG_ID_BYTES);
    tab_init(&m->dir, sizeof(fe_dir_rec), FE_PK_BYTES);
    tab_init(&m->groups, sizeof(fe_group_rec), FE_GROUP_ID_BYTES);
    return 0;
}

void fe_memstore_del(fe_memstore *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->items.count; i++)
        free(((ms_item *)tab_rec(&m->items, i))->frame);
    tab_free(&m->items);
    tab_free(&m->seen);
    tab_free(&m->sent);
    tab_free(&m->dir);
    tab_free(&m->groups);
    for (size_t i = 0; i < m->inbox_count; i++)
        free((void *)m->inbox[i].text);
    free(m->inbox);
    for (size_t i = 0; i < m->meta_count; i++) {
        free(m->meta[i].key);
        free(m->meta[i].val);
    }
    free(m->meta);
    free(m);
}

void fe_memstore_bind(fe_memstore *m, fe_store *out)
{
    out->ops = &memstore_ops;
    out->ctx = m;
}

void fe_memstore_set_fail(fe_memstore *m, int fail)
{
    m->fail = fail != 0;
}

size_t fe_memstore_bytes(const fe_memstore *m)
{
    if (!m)
        return 0;
    return sizeof(*m) + tab_bytes(&m->items) + tab_bytes(&m->seen) + tab_bytes(&m->sent) +
           tab_bytes(&m->dir) + tab_bytes(&m->groups) + m->frame_bytes +
           m->inbox_cap * sizeof(fe_inbox_rec) + m->text_bytes + m->meta_cap * sizeof(ms_meta) +
           m->meta_bytes;
}
