/* Unit tests for core/memstore.c: the in-memory fe_store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "memstore.h"
#include "wire.h"

static uint64_t rng_next(uint64_t *s)
{
    /* splitmix64: a fixed seed gives the same ids on every run */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void make_id(uint8_t id[FE_MSG_ID_BYTES], uint64_t n)
{
    uint64_t s = n;
    uint64_t v = rng_next(&s);
    memcpy(id, &v, FE_MSG_ID_BYTES);
}

typedef struct fixture {
    fe_memstore *m;
    fe_store st;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    if (!f || fe_memstore_new(&f->m) != 0)
        return -1;
    fe_memstore_bind(f->m, &f->st);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    fe_memstore_del(f->m);
    free(f);
    return 0;
}

static int put_item(fe_store *st, uint64_t n, uint8_t type, const uint8_t *frame, size_t len,
                    uint64_t expires_ms)
{
    fe_item_rec r = {0};
    make_id(r.id, n);
    r.type = type;
    r.own = (uint8_t)(n & 1);
    r.received_ms = n;
    r.expires_ms = expires_ms;
    r.frame = frame;
    r.frame_len = len;
    return st->ops->item_put(st->ctx, &r);
}

/* --- items --- */

static void test_item_put_get_replace(void **state)
{
    fixture *f = *state;
    uint8_t a[] = {1, 2, 3, 4, 5};
    uint8_t b[] = {9, 8, 7};
    assert_int_equal(put_item(&f->st, 1, FE_T_DM, a, sizeof(a), 100), 0);
    /* same id, other type: a separate item (a message and its receipt) */
    assert_int_equal(put_item(&f->st, 1, FE_T_RECEIPT, b, sizeof(b), 200), 0);
    assert_int_equal(fe_memstore_item_count(f->m), 2);

    /* the store copied the bytes: scribbling on the caller's buffer changes nothing */
    a[0] = 0xee;
    uint8_t id[FE_MSG_ID_BYTES];
    make_id(id, 1);
    fe_item_rec r;
    assert_int_equal(fe_memstore_item_get(f->m, id, FE_T_DM, &r), 0);
    assert_int_equal(r.frame_len, 5);
    assert_int_equal(r.frame[0], 1);
    assert_int_equal(r.expires_ms, 100);
    assert_int_equal(r.own, 1);
    assert_int_equal(r.received_ms, 1);

    /* replace by (id, type): new frame, new fields, count unchanged */
    assert_int_equal(put_item(&f->st, 1, FE_T_DM, b, sizeof(b), 300), 0);
    assert_int_equal(fe_memstore_item_count(f->m), 2);
    assert_int_equal(fe_memstore_item_get(f->m, id, FE_T_DM, &r), 0);
    assert_int_equal(r.frame_len, 3);
    assert_memory_equal(r.frame, b, 3);
    assert_int_equal(r.expires_ms, 300);

    /* replacing an item with its own stored frame (aliasing) must work */
    fe_item_rec again = r;
    again.expires_ms = 400;
    assert_int_equal(f->st.ops->item_put(f->st.ctx, &again), 0);
    assert_int_equal(fe_memstore_item_get(f->m, id, FE_T_DM, &r), 0);
    assert_memory_equal(r.frame, b, 3);
    assert_int_equal(r.expires_ms, 400);

    /* the receipt is untouched */
    assert_int_equal(fe_memstore_item_get(f->m, id, FE_T_RECEIPT, &r), 0);
    assert_int_equal(r.expires_ms, 200);
    assert_int_equal(fe_memstore_item_get(f->m, id, FE_T_GROUP, &r), FE_ERR_NOTFOUND);

    /* an empty frame is a legal (if odd) item */
    assert_int_equal(put_item(&f->st, 2, FE_T_DM, NULL, 0, 1), 0);
    make_id(id, 2);
    assert_int_equal(fe_memstore_item_get(f->m, id, FE_T_DM, &r), 0);
    assert_int_equal(r.frame_len, 0);
}

static void test_item_del(void **state)
{
    fixture *f = *state;
    uint8_t fr[] = {1};
    uint8_t id[FE_MSG_ID_BYTES];
    assert_int_equal(put_item(&f->st, 1, FE_T_DM, fr, 1, 1), 0);
    assert_int_equal(put_item(&f->st, 1, FE_T_RECEIPT, fr, 1, 1), 0);
    make_id(id, 1);
    /* missing (id, type) and unknown ids: not an error, nothing removed */
    assert_int_equal(f->st.ops->item_del(f->st.ctx, id, FE_T_ANON), 0);
    make_id(id, 99);
    assert_int_equal(f->st.ops->item_del(f->st.ctx, id, FE_T_DM), 0);
    assert_int_equal(fe_memstore_item_count(f->m), 2);

    make_id(id, 1);
    assert_int_equal(f->st.ops->item_del(f->st.ctx, id, FE_T_DM), 0);
    assert_int_equal(fe_memstore_item_count(f->m), 1);
    fe_item_rec r;
    assert_int_equal(fe_memstore_item_get(f->m, id, FE_T_DM, &r), FE_ERR_NOTFOUND);
    assert_int_equal(fe_memstore_item_get(f->m, id, FE_T_RECEIPT, &r), 0);
    /* deleting twice is fine */
    assert_int_equal(f->st.ops->item_del(f->st.ctx, id, FE_T_DM), 0);
    assert_int_equal(fe_memstore_item_count(f->m), 1);
}

typedef struct collect {
    uint8_t seen[64]; /* bitmap over n = 0..511 */
    size_t calls;
    size_t stop_after; /* return 7 at this call (1-based); 0 = never */
    fe_store *st;      /* when set, delete every visited item */
    uint64_t n_base, n_count;
} collect;

/* Which n made this id (ids come from make_id(n) for n in [base, base+count)). */
static long id_to_n(const collect *c, const uint8_t *id)
{
    for (uint64_t n = c->n_base; n < c->n_base + c->n_count; n++) {
        uint8_t want[FE_MSG_ID_BYTES];
        make_id(want, n);
        if (memcmp(want, id, FE_MSG_ID_BYTES) == 0)
            return (long)(n - c->n_base);
    }
    return -1;
}

static int collect_item(void *ctx, const fe_item_rec *r)
{
    collect *c = ctx;
    c->calls++;
    long k = id_to_n(c, r->id);
    assert_true(k >= 0 && k < 512);
    /* every item is visited at most once */
    assert_false(c->seen[k / 8] & (1u << (k % 8)));
    c->seen[k / 8] |= (uint8_t)(1u << (k % 8));
    assert_int_equal(r->frame_len, 1);
    assert_int_equal(r->frame[0], (uint8_t)k);
    if (c->st)
        assert_int_equal(c->st->ops->item_del(c->st->ctx, r->id, r->type), 0);
    if (c->stop_after && c->calls == c->stop_after)
        return 7;
    return 0;
}

static void test_item_load(void **state)
{
    fixture *f = *state;
    /* insert in scrambled order; the load must give exactly the set, in any order */
    const uint64_t N = 300;
    for (uint64_t i = 0; i < N; i++) {
        uint64_t k = (i * 7919) % N;
        uint8_t fr = (uint8_t)k;
        assert_int_equal(put_item(&f->st, 1000 + k, FE_T_DM, &fr, 1, 5), 0);
    }
    collect c = {.n_base = 1000, .n_count = N};
    assert_int_equal(f->st.ops->item_load(f->st.ctx, collect_item, &c), 0);
    assert_int_equal(c.calls, N);
    for (uint64_t k = 0; k < N; k++)
        assert_true(c.seen[k / 8] & (1u << (k % 8)));

    /* a non-zero callback result stops the load and is returned */
    collect c2 = {.n_base = 1000, .n_count = N, .stop_after = 10};
    assert_int_equal(f->st.ops->item_load(f->st.ctx, collect_item, &c2), 7);
    assert_int_equal(c2.calls, 10);

    /* fe_memstore_item_iter is the same walk without fault injection */
    collect c3 = {.n_base = 1000, .n_count = N};
    assert_int_equal(fe_memstore_item_iter(f->m, collect_item, &c3), 0);
    assert_int_equal(c3.calls, N);

    /* a callback may delete the item it visits: all are visited, none remain */
    collect c4 = {.n_base = 1000, .n_count = N, .st = &f->st};
    assert_int_equal(f->st.ops->item_load(f->st.ctx, collect_item, &c4), 0);
    assert_int_equal(c4.calls, N);
    assert_int_equal(fe_memstore_item_count(f->m), 0);
}

static void test_items_10k(void **state)
{
    fixture *f = *state;
    const uint64_t N = 10000;
    uint8_t frame[200];
    for (size_t i = 0; i < sizeof(frame); i++)
        frame[i] = (uint8_t)i;
    size_t empty_bytes = fe_memstore_bytes(f->m);
    for (uint64_t n = 0; n < N; n++) {
        frame[0] = (uint8_t)n;
        assert_int_equal(put_item(&f->st, n, (uint8_t)(n % 3), frame, 100 + n % 100, n), 0);
    }
    assert_int_equal(fe_memstore_item_count(f->m), N);
    assert_true(fe_memstore_bytes(f->m) > empty_bytes + N * 100);

    /* delete the odd ones, then check every remaining item's contents */
    for (uint64_t n = 1; n < N; n += 2) {
        uint8_t id[FE_MSG_ID_BYTES];
        make_id(id, n);
        assert_int_equal(f->st.ops->item_del(f->st.ctx, id, (uint8_t)(n % 3)), 0);
    }
    assert_int_equal(fe_memstore_item_count(f->m), N / 2);
    for (uint64_t n = 0; n < N; n++) {
        uint8_t id[FE_MSG_ID_BYTES];
        make_id(id, n);
        fe_item_rec r;
        int rc = fe_memstore_item_get(f->m, id, (uint8_t)(n % 3), &r);
        if (n & 1) {
            assert_int_equal(rc, FE_ERR_NOTFOUND);
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(r.frame_len, 100 + n % 100);
            assert_int_equal(r.frame[0], (uint8_t)n);
            assert_int_equal(r.frame[50], 50);
            assert_int_equal(r.expires_ms, n);
        }
    }
    /* re-insert half of the deleted ones, delete everything, store is empty */
    for (uint64_t n = 1; n < N; n += 4)
        assert_int_equal(put_item(&f->st, n, (uint8_t)(n % 3), frame, 10, n), 0);
    for (uint64_t n = 0; n < N; n++) {
        uint8_t id[FE_MSG_ID_BYTES];
        make_id(id, n);
        assert_int_equal(f->st.ops->item_del(f->st.ctx, id, (uint8_t)(n % 3)), 0);
    }
    assert_int_equal(fe_memstore_item_count(f->m), 0);
}

/* --- seen --- */

typedef struct seen_sum {
    size_t calls;
    uint64_t expires_sum;
    unsigned kinds_or;
} seen_sum;

static int sum_seen(void *ctx, const uint8_t id[FE_MSG_ID_BYTES], uint8_t kinds,
                    uint64_t expires_ms)
{
    seen_sum *s = ctx;
    (void)id;
    s->calls++;
    s->expires_sum += expires_ms;
    s->kinds_or |= kinds;
    return 0;
}

static void test_seen(void **state)
{
    fixture *f = *state;
    const uint64_t N = 100000;
    uint64_t want_sum = 0;
    for (uint64_t n = 0; n < N; n++) {
        uint8_t id[FE_MSG_ID_BYTES];
        make_id(id, n);
        assert_int_equal(f->st.ops->seen_put(f->st.ctx, id, 1, n), 0);
    }
    /* replace the first 10: kinds and expiry overwritten, not merged */
    for (uint64_t n = 0; n < 10; n++) {
        uint8_t id[FE_MSG_ID_BYTES];
        make_id(id, n);
        assert_int_equal(f->st.ops->seen_put(f->st.ctx, id, 2, 1000000 + n), 0);
    }
    for (uint64_t n = 0; n < N; n++)
        want_sum += n < 10 ? 1000000 + n : n;
    assert_int_equal(fe_memstore_seen_count(f->m), N);

    uint8_t id[FE_MSG_ID_BYTES];
    uint8_t kinds = 0;
    uint64_t exp = 0;
    make_id(id, 3);
    assert_int_equal(fe_memstore_seen_get(f->m, id, &kinds, &exp), 0);
    assert_int_equal(kinds, 2);
    assert_int_equal(exp, 1000003);
    make_id(id, 50);
    assert_int_equal(fe_memstore_seen_get(f->m, id, &kinds, &exp), 0);
    assert_int_equal(kinds, 1);
    assert_int_equal(exp, 50);

    seen_sum s = {0};
    assert_int_equal(f->st.ops->seen_load(f->st.ctx, sum_seen, &s), 0);
    assert_int_equal(s.calls, N);
    assert_int_equal(s.expires_sum, want_sum);
    assert_int_equal(s.kinds_or, 3);

    /* expire everything with expires_ms <= 49999: 50000 entries, minus the 10 replaced */
    assert_int_equal(fe_memstore_seen_expire(f->m, 49999), 50000 - 10);
    assert_int_equal(fe_memstore_seen_count(f->m), 50000 + 10);
    make_id(id, 50);
    assert_int_equal(fe_memstore_seen_get(f->m, id, NULL, NULL), FE_ERR_NOTFOUND);
    make_id(id, 50000);
    assert_int_equal(fe_memstore_seen_get(f->m, id, &kinds, &exp), 0);
    assert_int_equal(exp, 50000);
    make_id(id, 5);
    assert_int_equal(fe_memstore_seen_get(f->m, id, &kinds, &exp), 0);
    assert_int_equal(fe_memstore_seen_expire(f->m, 49999), 0);
}

/* --- inbox and sent --- */

static void test_inbox(void **state)
{
    fixture *f = *state;
    fe_inbox_rec r = {0};
    char text[16] = "hello";
    make_id(r.id, 1);
    r.type = FE_T_DM;
    memset(r.from, 0xab, sizeof(r.from));
    r.received_ms = 42;
    r.text = (const uint8_t *)text;
    r.text_len = 5;
    assert_int_equal(f->st.ops->inbox_put(f->st.ctx, &r), 0);
    memcpy(text, "world", 5); /* the store keeps its own copy */
    r.text_len = 5;
    make_id(r.id, 2);
    r.type = FE_T_GROUP;
    memset(r.group, 0xcd, sizeof(r.group));
    assert_int_equal(f->st.ops->inbox_put(f->st.ctx, &r), 0);
    /* appending the same id again keeps both: the checker must be able to see it */
    assert_int_equal(f->st.ops->inbox_put(f->st.ctx, &r), 0);
    assert_int_equal(fe_memstore_inbox_count(f->m), 3);

    fe_inbox_rec out;
    assert_int_equal(fe_memstore_inbox_get(f->m, 0, &out), 0);
    assert_int_equal(out.type, FE_T_DM);
    assert_int_equal(out.text_len, 5);
    assert_memory_equal(out.text, "hello", 5);
    assert_int_equal(out.from[3], 0xab);
    assert_int_equal(out.received_ms, 42);
    assert_int_equal(fe_memstore_inbox_get(f->m, 1, &out), 0);
    assert_memory_equal(out.text, "world", 5);
    assert_int_equal(out.group[0], 0xcd);
    assert_int_equal(fe_memstore_inbox_get(f->m, 3, &out), FE_ERR_NOTFOUND);

    /* many more: earlier text pointers stay valid as the inbox grows */
    assert_int_equal(fe_memstore_inbox_get(f->m, 0, &out), 0);
    const uint8_t *first = out.text;
    for (int i = 0; i < 1000; i++)
        assert_int_equal(f->st.ops->inbox_put(f->st.ctx, &r), 0);
    assert_memory_equal(first, "hello", 5);
    assert_int_equal(fe_memstore_inbox_count(f->m), 1003);
}

static void test_sent(void **state)
{
    fixture *f = *state;
    fe_sent_rec s = {0};
    make_id(s.id, 5);
    memset(s.to, 0x11, sizeof(s.to));
    s.type = FE_T_DM;
    s.sent_ms = 10;
    assert_int_equal(f->st.ops->sent_put(f->st.ctx, &s), 0);
    fe_sent_rec out;
    assert_int_equal(fe_memstore_sent_get(f->m, s.id, &out), 0);
    assert_int_equal(out.sent_ms, 10);
    assert_int_equal(out.delivered_ms, 0);
    /* the receipt came back: replace by id */
    s.delivered_ms = 99;
    assert_int_equal(f->st.ops->sent_put(f->st.ctx, &s), 0);
    assert_int_equal(fe_memstore_sent_get(f->m, s.id, &out), 0);
    assert_int_equal(out.delivered_ms, 99);
    assert_int_equal(out.to[15], 0x11);
    uint8_t other[FE_MSG_ID_BYTES];
    make_id(other, 6);
    assert_int_equal(fe_memstore_sent_get(f->m, other, &out), FE_ERR_NOTFOUND);
}

/* --- directory and groups --- */

typedef struct dir_seen {
    size_t calls;
    uint32_t seq_sum;
    int found_bob;
} dir_seen;

static int collect_dir(void *ctx, const fe_dir_rec *r)
{
    dir_seen *d = ctx;
    d->calls++;
    d->seq_sum += r->seq;
    if (strcmp(r->name, "bob") == 0)
        d->found_bob = 1;
    return 0;
}

static void test_dir(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < 50; i++) {
        fe_dir_rec d = {0};
        memset(d.pk, i + 1, sizeof(d.pk));
        d.seq = (uint32_t)i;
        snprintf(d.name, sizeof(d.name), "user%d", i);
        assert_int_equal(f->st.ops->dir_put(f->st.ctx, &d), 0);
    }
    /* replace by pk */
    fe_dir_rec d = {0};
    memset(d.pk, 8, sizeof(d.pk));
    d.seq = 1000;
    d.online = 1;
    snprintf(d.name, sizeof(d.name), "bob");
    assert_int_equal(f->st.ops->dir_put(f->st.ctx, &d), 0);
    assert_int_equal(fe_memstore_dir_count(f->m), 50);

    dir_seen s = {0};
    assert_int_equal(f->st.ops->dir_load(f->st.ctx, collect_dir, &s), 0);
    assert_int_equal(s.calls, 50);
    /* sum 0..49 = 1225, minus the replaced seq 7, plus 1000 */
    assert_int_equal(s.seq_sum, 1225 - 7 + 1000);
    assert_true(s.found_bob);
}

typedef struct group_seen {
    size_t calls;
    uint8_t key0_or;
} group_seen;

static int collect_group(void *ctx, const fe_group_rec *r)
{
    group_seen *g = ctx;
    g->calls++;
    g->key0_or |= r->key[0];
    return 0;
}

static void test_groups(void **state)
{
    fixture *f = *state;
    fe_group_rec g = {0};
    memset(g.id, 1, sizeof(g.id));
    memset(g.key, 0x01, sizeof(g.key));
    snprintf(g.name, sizeof(g.name), "camp");
    assert_int_equal(f->st.ops->group_put(f->st.ctx, &g), 0);
    memset(g.id, 2, sizeof(g.id));
    memset(g.key, 0x02, sizeof(g.key));
    assert_int_equal(f->st.ops->group_put(f->st.ctx, &g), 0);
    /* replace group 2's key */
    memset(g.key, 0x04, sizeof(g.key));
    assert_int_equal(f->st.ops->group_put(f->st.ctx, &g), 0);
    assert_int_equal(fe_memstore_group_count(f->m), 2);

    group_seen s = {0};
    assert_int_equal(f->st.ops->group_load(f->st.ctx, collect_group, &s), 0);
    assert_int_equal(s.calls, 2);
    assert_int_equal(s.key0_or, 0x05);

    uint8_t gid[FE_GROUP_ID_BYTES];
    memset(gid, 1, sizeof(gid));
    assert_int_equal(f->st.ops->group_del(f->st.ctx, gid), 0);
    assert_int_equal(f->st.ops->group_del(f->st.ctx, gid), 0); /* missing: fine */
    assert_int_equal(fe_memstore_group_count(f->m), 1);
    group_seen s2 = {0};
    assert_int_equal(f->st.ops->group_load(f->st.ctx, collect_group, &s2), 0);
    assert_int_equal(s2.calls, 1);
    assert_int_equal(s2.key0_or, 0x04);
}

/* --- meta --- */

static void test_meta(void **state)
{
    fixture *f = *state;
    uint8_t buf[16];
    size_t len = 12345;
    assert_int_equal(f->st.ops->meta_get(f->st.ctx, "clock", buf, sizeof(buf), &len),
                     FE_ERR_NOTFOUND);
    const uint8_t v1[] = {1, 2, 3, 4, 5, 6, 7, 8};
    assert_int_equal(f->st.ops->meta_put(f->st.ctx, "clock", v1, sizeof(v1)), 0);
    assert_int_equal(f->st.ops->meta_put(f->st.ctx, "seq", v1, 4), 0);
    assert_int_equal(f->st.ops->meta_get(f->st.ctx, "clock", buf, sizeof(buf), &len), 0);
    assert_int_equal(len, 8);
    assert_memory_equal(buf, v1, 8);
    /* too small a buffer: TOOBIG and the needed length */
    len = 0;
    assert_int_equal(f->st.ops->meta_get(f->st.ctx, "clock", buf, 7, &len), FE_ERR_TOOBIG);
    assert_int_equal(len, 8);
    /* replace with a shorter value */
    const uint8_t v2[] = {9, 9};
    assert_int_equal(f->st.ops->meta_put(f->st.ctx, "clock", v2, sizeof(v2)), 0);
    assert_int_equal(f->st.ops->meta_get(f->st.ctx, "clock", buf, sizeof(buf), &len), 0);
    assert_int_equal(len, 2);
    assert_memory_equal(buf, v2, 2);
    assert_int_equal(f->st.ops->meta_get(f->st.ctx, "seq", buf, sizeof(buf), &len), 0);
    assert_int_equal(len, 4);
    /* an empty value is a value */
    assert_int_equal(f->st.ops->meta_put(f->st.ctx, "empty", NULL, 0), 0);
    len = 99;
    assert_int_equal(f->st.ops->meta_get(f->st.ctx, "empty", NULL, 0, &len), 0);
    assert_int_equal(len, 0);
    /* many keys */
    for (int i = 0; i < 100; i++) {
        char key[32];
        snprintf(key, sizeof(key), "k%d", i);
        uint8_t v = (uint8_t)i;
        assert_int_equal(f->st.ops->meta_put(f->st.ctx, key, &v, 1), 0);
    }
    assert_int_equal(f->st.ops->meta_get(f->st.ctx, "k77", buf, sizeof(buf), &len), 0);
    assert_int_equal(buf[0], 77);
    /* an absurdly long key is refused */
    char big[400];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(f->st.ops->meta_put(f->st.ctx, big, v1, 1), FE_ERR_STORE);
}

/* --- fault injection --- */

static int never_called(void *ctx, const fe_item_rec *r)
{
    (void)ctx;
    (void)r;
    fail_msg("callback ran while the store was failing");
    return 0;
}
static int never_seen(void *ctx, const uint8_t id[FE_MSG_ID_BYTES], uint8_t k, uint64_t e)
{
    (void)ctx;
    (void)id;
    (void)k;
    (void)e;
    fail_msg("callback ran while the store was failing");
    return 0;
}
static int never_dir(void *ctx, const fe_dir_rec *r)
{
    (void)ctx;
    (void)r;
    fail_msg("callback ran while the store was failing");
    return 0;
}
static int never_group(void *ctx, const fe_group_rec *r)
{
    (void)ctx;
    (void)r;
    fail_msg("callback ran while the store was failing");
    return 0;
}

static void test_fail_injection(void **state)
{
    fixture *f = *state;
    const fe_store_ops *o = f->st.ops;
    void *c = f->st.ctx;
    uint8_t fr[] = {1, 2};
    assert_int_equal(put_item(&f->st, 1, FE_T_DM, fr, 2, 1), 0);
    assert_int_equal(o->meta_put(c, "k", fr, 2), 0);
    size_t bytes = fe_memstore_bytes(f->m);

    fe_memstore_set_fail(f->m, 1);
    uint8_t id[FE_MSG_ID_BYTES];
    make_id(id, 1);
    fe_inbox_rec in = {0};
    fe_sent_rec se = {0};
    fe_dir_rec di = {0};
    fe_group_rec gr = {0};
    uint8_t buf[8];
    size_t len;
    assert_int_equal(put_item(&f->st, 2, FE_T_DM, fr, 2, 1), FE_ERR_STORE);
    assert_int_equal(o->item_del(c, id, FE_T_DM), FE_ERR_STORE);
    assert_int_equal(o->item_load(c, never_called, NULL), FE_ERR_STORE);
    assert_int_equal(o->seen_put(c, id, 1, 1), FE_ERR_STORE);
    assert_int_equal(o->seen_load(c, never_seen, NULL), FE_ERR_STORE);
    assert_int_equal(o->inbox_put(c, &in), FE_ERR_STORE);
    assert_int_equal(o->sent_put(c, &se), FE_ERR_STORE);
    assert_int_equal(o->dir_put(c, &di), FE_ERR_STORE);
    assert_int_equal(o->dir_load(c, never_dir, NULL), FE_ERR_STORE);
    assert_int_equal(o->group_put(c, &gr), FE_ERR_STORE);
    assert_int_equal(o->group_del(c, gr.id), FE_ERR_STORE);
    assert_int_equal(o->group_load(c, never_group, NULL), FE_ERR_STORE);
    assert_int_equal(o->meta_put(c, "k", fr, 1), FE_ERR_STORE);
    assert_int_equal(o->meta_get(c, "k", buf, sizeof(buf), &len), FE_ERR_STORE);

    /* nothing changed, and inspection still works */
    assert_int_equal(fe_memstore_item_count(f->m), 1);
    assert_int_equal(fe_memstore_seen_count(f->m), 0);
    assert_int_equal(fe_memstore_inbox_count(f->m), 0);
    assert_int_equal(fe_memstore_dir_count(f->m), 0);
    assert_int_equal(fe_memstore_group_count(f->m), 0);
    assert_int_equal(fe_memstore_bytes(f->m), bytes);
    fe_item_rec r;
    assert_int_equal(fe_memstore_item_get(f->m, id, FE_T_DM, &r), 0);

    fe_memstore_set_fail(f->m, 0);
    assert_int_equal(o->item_del(c, id, FE_T_DM), 0);
    assert_int_equal(fe_memstore_item_count(f->m), 0);
    assert_int_equal(o->meta_get(c, "k", buf, sizeof(buf), &len), 0);
    assert_int_equal(len, 2);
}

static void test_lifecycle(void **state)
{
    (void)state;
    fe_memstore_del(NULL);
    assert_int_equal(fe_memstore_new(NULL), FE_ERR_INVALID);
    assert_int_equal(fe_memstore_item_count(NULL), 0);
    assert_int_equal(fe_memstore_bytes(NULL), 0);
    /* a populated store frees everything (ASan's leak check holds us to it) */
    fe_memstore *m;
    assert_int_equal(fe_memstore_new(&m), 0);
    fe_store st;
    fe_memstore_bind(m, &st);
    assert_ptr_equal(st.ctx, m);
    uint8_t fr[] = {1, 2, 3};
    assert_int_equal(put_item(&st, 1, FE_T_DM, fr, 3, 1), 0);
    fe_inbox_rec in = {0};
    in.text = fr;
    in.text_len = 3;
    assert_int_equal(st.ops->inbox_put(st.ctx, &in), 0);
    assert_int_equal(st.ops->meta_put(st.ctx, "a", fr, 3), 0);
    fe_group_rec g = {0};
    assert_int_equal(st.ops->group_put(st.ctx, &g), 0);
    fe_memstore_del(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_item_put_get_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_item_del, setup, teardown),
        cmocka_unit_test_setup_teardown(test_item_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_items_10k, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inbox, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_groups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_meta, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fail_injection, setup, teardown),
        cmocka_unit_test(test_lifecycle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
