/* Tests for platform/sqlstore.c: every fe_store op, replace semantics,
 * durability across reopen and a simulated crash, damaged files, read-only
 * places, a full disk, and a bulk insert timing (printed, not asserted). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "sqlstore.h"
#include "testdir.h"

static char tmpdir[64];
static char dbpath[128];

static int setup(void **state)
{
    (void)state;
    if (testdir_make(tmpdir, sizeof(tmpdir), "sql") != 0)
        return -1;
    snprintf(dbpath, sizeof(dbpath), "%s/store.db", tmpdir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return testdir_remove(tmpdir);
}

/* Each test starts from no file at all. */
static int fresh(void **state)
{
    (void)state;
    const char *suffix[] = {"", "-wal", "-shm"};
    char p[160];
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s%s", dbpath, suffix[i]);
        unlink(p);
    }
    return 0;
}

static fe_sqlstore *open_ok(fe_store *st)
{
    fe_sqlstore *s = NULL;
    char err[512] = "";
    int rc = fe_sqlstore_open(&s, dbpath, err, sizeof(err));
    if (rc != 0)
        print_error("open: %s\n", err);
    assert_int_equal(rc, 0);
    assert_non_null(s);
    if (st)
        fe_sqlstore_bind(s, st);
    return s;
}

static void make_id(uint8_t id[FE_MSG_ID_BYTES], uint32_t n)
{
    memset(id, 0, FE_MSG_ID_BYTES);
    for (int i = 0; i < 4; i++)
        id[i] = (uint8_t)(n >> (8 * i));
    id[7] = 0xee;
}

static fe_item_rec item(uint32_t n, uint8_t type, const uint8_t *frame, size_t len)
{
    fe_item_rec r;
    memset(&r, 0, sizeof(r));
    make_id(r.id, n);
    r.type = type;
    r.own = (uint8_t)(n & 1);
    r.received_ms = 1000 + n;
    r.expires_ms = 90000000000ull + n;
    r.frame = frame;
    r.frame_len = len;
    return r;
}

/* --- collectors --- */

typedef struct items_seen {
    size_t n;
    fe_item_rec recs[16];
    uint8_t frames[16][64];
    int stop_after;
} items_seen;

static int collect_item(void *ctx, const fe_item_rec *r)
{
    items_seen *c = ctx;
    if (c->n < 16) {
        c->recs[c->n] = *r;
        size_t len = r->frame_len < 64 ? r->frame_len : 64;
        memcpy(c->frames[c->n], r->frame, len);
        c->recs[c->n].frame = c->frames[c->n];
    }
    c->n++;
    return c->stop_after && (int)c->n == c->stop_after ? 5 : 0;
}

static const fe_item_rec *find_item(const items_seen *c, uint32_t n, uint8_t type)
{
    uint8_t id[FE_MSG_ID_BYTES];
    make_id(id, n);
    for (size_t i = 0; i < c->n && i < 16; i++) {
        if (memcmp(c->recs[i].id, id, FE_MSG_ID_BYTES) == 0 && c->recs[i].type == type)
            return &c->recs[i];
    }
    return NULL;
}

typedef struct seen_rows {
    size_t n;
    uint8_t id[8][FE_MSG_ID_BYTES];
    uint8_t kinds[8];
    uint64_t expires[8];
} seen_rows;

static int collect_seen(void *ctx, const uint8_t id[FE_MSG_ID_BYTES], uint8_t kinds,
                        uint64_t expires_ms)
{
    seen_rows *c = ctx;
    if (c->n < 8) {
        memcpy(c->id[c->n], id, FE_MSG_ID_BYTES);
        c->kinds[c->n] = kinds;
        c->expires[c->n] = expires_ms;
    }
    c->n++;
    return 0;
}

typedef struct inbox_rows {
    size_t n;
    int64_t rowid[8];
    fe_inbox_rec rec[8];
    char text[8][32];
    int shown[8];
} inbox_rows;

static int collect_inbox(void *ctx, int64_t rowid, const fe_inbox_rec *r, int shown)
{
    inbox_rows *c = ctx;
    if (c->n < 8) {
        c->rowid[c->n] = rowid;
        c->rec[c->n] = *r;
        size_t len = r->text_len < 31 ? r->text_len : 31;
        memcpy(c->text[c->n], r->text, len);
        c->text[c->n][len] = '\0';
        c->rec[c->n].text = NULL;
        c->shown[c->n] = shown;
    }
    c->n++;
    return 0;
}

typedef struct sent_rows {
    size_t n;
    fe_sent_rec rec[8];
} sent_rows;

static int collect_sent(void *ctx, const fe_sent_rec *r)
{
    sent_rows *c = ctx;
    if (c->n < 8)
        c->rec[c->n] = *r;
    c->n++;
    return 0;
}

typedef struct dir_rows {
    size_t n;
    fe_dir_rec rec[4];
} dir_rows;

static int collect_dir(void *ctx, const fe_dir_rec *r)
{
    dir_rows *c = ctx;
    if (c->n < 4)
        c->rec[c->n] = *r;
    c->n++;
    return 0;
}

typedef struct group_rows {
    size_t n;
    fe_group_rec rec[4];
} group_rows;

static int collect_group(void *ctx, const fe_group_rec *r)
{
    group_rows *c = ctx;
    if (c->n < 4)
        c->rec[c->n] = *r;
    c->n++;
    return 0;
}

/* --- tests --- */

static void test_items(void **state)
{
    (void)state;
    fe_store st;
    fe_sqlstore *s = open_ok(&st);
    const uint8_t f1[] = {1, 2, 3, 4, 5};
    const uint8_t f2[] = {9, 9};
    fe_item_rec a = item(1, 10, f1, sizeof(f1));
    fe_item_rec b = item(2, 11, f2, sizeof(f2));
    fe_item_rec a_receipt = item(1, 13, f2, sizeof(f2)); /* same id, other type */
    assert_int_equal(st.ops->item_put(st.ctx, &a), 0);
    assert_int_equal(st.ops->item_put(st.ctx, &b), 0);
    assert_int_equal(st.ops->item_put(st.ctx, &a_receipt), 0);

    items_seen c;
    memset(&c, 0, sizeof(c));
    assert_int_equal(st.ops->item_load(st.ctx, collect_item, &c), 0);
    assert_int_equal(c.n, 3);
    const fe_item_rec *got = find_item(&c, 1, 10);
    assert_non_null(got);
    assert_int_equal(got->own, a.own);
    assert_int_equal(got->received_ms, a.received_ms);
    assert_int_equal(got->expires_ms, a.expires_ms);
    assert_int_equal(got->frame_len, sizeof(f1));
    assert_memory_equal(got->frame, f1, sizeof(f1));
    assert_non_null(find_item(&c, 1, 13));

    /* Replace by (id, type): still three rows, new values. */
    const uint8_t f3[] = {7, 7, 7};
    fe_item_rec a2 = item(1, 10, f3, sizeof(f3));
    a2.own = 0;
    a2.expires_ms = UINT64_MAX; /* uint64 values beyond int64 round-trip */
    assert_int_equal(st.ops->item_put(st.ctx, &a2), 0);
    memset(&c, 0, sizeof(c));
    assert_int_equal(st.ops->item_load(st.ctx, collect_item, &c), 0);
    assert_int_equal(c.n, 3);
    got = find_item(&c, 1, 10);
    assert_non_null(got);
    assert_int_equal(got->own, 0);
    assert_int_equal(got->expires_ms, UINT64_MAX);
    assert_int_equal(got->frame_len, sizeof(f3));
    assert_memory_equal(got->frame, f3, sizeof(f3));

    /* A callback's non-zero result stops the load and is returned. */
    memset(&c, 0, sizeof(c));
    c.stop_after = 1;
    assert_int_equal(st.ops->item_load(st.ctx, collect_item, &c), 5);
    assert_int_equal(c.n, 1);

    /* Delete one type of an id; deleting again is not an error. */
    assert_int_equal(st.ops->item_del(st.ctx, a.id, 10), 0);
    assert_int_equal(st.ops->item_del(st.ctx, a.id, 10), 0);
    memset(&c, 0, sizeof(c));
    assert_int_equal(st.ops->item_load(st.ctx, collect_item, &c), 0);
    assert_int_equal(c.n, 2);
    assert_null(find_item(&c, 1, 10));
    assert_non_null(find_item(&c, 1, 13));

    /* An empty frame is stored as empty, not as NULL. */
    fe_item_rec e = item(3, 10, NULL, 0);
    assert_int_equal(st.ops->item_put(st.ctx, &e), 0);
    memset(&c, 0, sizeof(c));
    assert_int_equal(st.ops->item_load(st.ctx, collect_item, &c), 0);
    assert_int_equal(c.n, 3);
    assert_int_equal(find_item(&c, 3, 10)->frame_len, 0);

    fe_sqlstore_rowcounts n;
    assert_int_equal(fe_sqlstore_counts(s, &n), 0);
    assert_int_equal(n.items, 3);
    assert_int_equal(n.own_items, 2); /* ids 1 (receipt) and 3 are odd: own */
    fe_sqlstore_close(s);
}

static void test_seen_and_prune(void **state)
{
    (void)state;
    fe_store st;
    fe_sqlstore *s = open_ok(&st);
    uint8_t id1[FE_MSG_ID_BYTES], id2[FE_MSG_ID_BYTES], id3[FE_MSG_ID_BYTES];
    make_id(id1, 1);
    make_id(id2, 2);
    make_id(id3, 3);
    assert_int_equal(st.ops->seen_put(st.ctx, id1, 1, 10), 0);
    assert_int_equal(st.ops->seen_put(st.ctx, id2, 3, 20), 0);
    assert_int_equal(st.ops->seen_put(st.ctx, id3, 4, UINT64_MAX), 0);
    assert_int_equal(st.ops->seen_put(st.ctx, id1, 7, 15), 0); /* replaces */
    seen_rows c;
    memset(&c, 0, sizeof(c));
    assert_int_equal(st.ops->seen_load(st.ctx, collect_seen, &c), 0);
    assert_int_equal(c.n, 3);
    int found = 0;
    for (size_t i = 0; i < c.n; i++) {
        if (memcmp(c.id[i], id1, FE_MSG_ID_BYTES) == 0) {
            assert_int_equal(c.kinds[i], 7);
            assert_int_equal(c.expires[i], 15);
            found++;
        }
        if (memcmp(c.id[i], id3, FE_MSG_ID_BYTES) == 0) {
            assert_int_equal(c.expires[i], UINT64_MAX);
            found++;
        }
    }
    assert_int_equal(found, 2);

    uint64_t pruned = 99;
    assert_int_equal(fe_sqlstore_seen_prune(s, 15, &pruned), 0); /* expires <= now goes */
    assert_int_equal(pruned, 1);
    assert_int_equal(fe_sqlstore_seen_prune(s, UINT64_MAX - 1, &pruned), 0);
    assert_int_equal(pruned, 1); /* id2; the "never" entry stays */
    memset(&c, 0, sizeof(c));
    assert_int_equal(st.ops->seen_load(st.ctx, collect_seen, &c), 0);
    assert_int_equal(c.n, 1);
    assert_memory_equal(c.id[0], id3, FE_MSG_ID_BYTES);
    fe_sqlstore_close(s);
}

static fe_inbox_rec inbox_rec(uint32_t n, const char *text)
{
    fe_inbox_rec r;
    memset(&r, 0, sizeof(r));
    make_id(r.id, n);
    r.type = (uint8_t)(n % 3);
    memset(r.from, (int)n, FE_ADDR_BYTES);
    memset(r.group, (int)(n + 100), FE_GROUP_ID_BYTES);
    r.received_ms = 5000 + n;
    r.text = (const uint8_t *)text;
    r.text_len = strlen(text);
    return r;
}

static void test_inbox(void **state)
{
    (void)state;
    fe_store st;
    fe_sqlstore *s = open_ok(&st);
    const char *texts[] = {"one", "two", "", "four"};
    for (uint32_t i = 0; i < 4; i++) {
        fe_inbox_rec r = inbox_rec(i + 1, texts[i]);
        assert_int_equal(st.ops->inbox_put(st.ctx, &r), 0);
    }
    /* The same message again (a redelivery after a crash) is kept once. */
    fe_inbox_rec dup = inbox_rec(2, "two again");
    assert_int_equal(st.ops->inbox_put(st.ctx, &dup), 0);

    inbox_rows c;
    memset(&c, 0, sizeof(c));
    assert_int_equal(fe_sqlstore_inbox_list(s, 0, 0, collect_inbox, &c), 0);
    assert_int_equal(c.n, 4);
    for (uint32_t i = 0; i < 4; i++) {
        fe_inbox_rec want = inbox_rec(i + 1, texts[i]);
        assert_memory_equal(c.rec[i].id, want.id, FE_MSG_ID_BYTES);
        assert_int_equal(c.rec[i].type, want.type);
        assert_memory_equal(c.rec[i].from, want.from, FE_ADDR_BYTES);
        assert_memory_equal(c.rec[i].group, want.group, FE_GROUP_ID_BYTES);
        assert_int_equal(c.rec[i].received_ms, want.received_ms);
        assert_int_equal(c.rec[i].text_len, strlen(texts[i]));
        assert_string_equal(c.text[i], texts[i]);
        assert_int_equal(c.shown[i], 0);
        if (i > 0)
            assert_true(c.rowid[i] > c.rowid[i - 1]);
    }
    int64_t rows[4];
    for (int i = 0; i < 4; i++)
        rows[i] = c.rowid[i];

    /* Newest two, in arrival order. */
    memset(&c, 0, sizeof(c));
    assert_int_equal(fe_sqlstore_inbox_list(s, 0, 2, collect_inbox, &c), 0);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.text[0], "");
    assert_string_equal(c.text[1], "four");

    /* Show the first two; the oldest unshown one is then the third. */
    assert_int_equal(fe_sqlstore_inbox_mark_shown(s, rows[0]), 0);
    assert_int_equal(fe_sqlstore_inbox_mark_shown(s, rows[1]), 0);
    assert_int_equal(fe_sqlstore_inbox_mark_shown(s, rows[1]), 0); /* again: fine */
    assert_int_equal(fe_sqlstore_inbox_mark_shown(s, rows[3] + 100), FE_ERR_NOTFOUND);
    memset(&c, 0, sizeof(c));
    assert_int_equal(fe_sqlstore_inbox_list(s, 1, 1, collect_inbox, &c), 0);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.rowid[0], rows[2]);
    memset(&c, 0, sizeof(c));
    assert_int_equal(fe_sqlstore_inbox_list(s, 0, 0, collect_inbox, &c), 0);
    assert_int_equal(c.shown[0] + c.shown[1] + c.shown[2] + c.shown[3], 2);
    assert_true(c.shown[0] && c.shown[1]);

    fe_sqlstore_rowcounts n;
    assert_int_equal(fe_sqlstore_counts(s, &n), 0);
    assert_int_equal(n.inbox, 4);
    assert_int_equal(n.inbox_unshown, 2);
    fe_sqlstore_close(s);
}

static fe_sent_rec sent_rec(uint32_t n, uint64_t delivered)
{
    fe_sent_rec r;
    memset(&r, 0, sizeof(r));
    make_id(r.id, n);
    memset(r.to, (int)(0x40 + n), FE_ADDR_BYTES);
    r.type = 1;
    r.sent_ms = 100 * n;
    r.delivered_ms = delivered;
    return r;
}

static void test_sent(void **state)
{
    (void)state;
    fe_store st;
    fe_sqlstore *s = open_ok(&st);
    for (uint32_t i = 1; i <= 3; i++) {
        fe_sent_rec r = sent_rec(i, 0);
        assert_int_equal(st.ops->sent_put(st.ctx, &r), 0);
    }
    fe_sent_rec got;
    uint8_t id[FE_MSG_ID_BYTES];
    make_id(id, 2);
    assert_int_equal(fe_sqlstore_sent_get(s, id, &got), 0);
    fe_sent_rec want = sent_rec(2, 0);
    assert_memory_equal(&got, &want, sizeof(got));
    make_id(id, 9);
    assert_int_equal(fe_sqlstore_sent_get(s, id, &got), FE_ERR_NOTFOUND);

    /* The receipt for #1 comes back: replaced in place, order kept. */
    fe_sent_rec d = sent_rec(1, 777);
    assert_int_equal(st.ops->sent_put(st.ctx, &d), 0);
    make_id(id, 1);
    assert_int_equal(fe_sqlstore_sent_get(s, id, &got), 0);
    assert_int_equal(got.delivered_ms, 777);

    sent_rows c;
    memset(&c, 0, sizeof(c));
    assert_int_equal(fe_sqlstore_sent_list(s, 0, 0, collect_sent, &c), 0);
    assert_int_equal(c.n, 3);
    assert_int_equal(c.rec[0].sent_ms, 100);
    assert_int_equal(c.rec[0].delivered_ms, 777);
    assert_int_equal(c.rec[2].sent_ms, 300);
    memset(&c, 0, sizeof(c));
    assert_int_equal(fe_sqlstore_sent_list(s, 1, 0, collect_sent, &c), 0);
    assert_int_equal(c.n, 2);
    assert_int_equal(c.rec[0].sent_ms, 200);
    memset(&c, 0, sizeof(c));
    assert_int_equal(fe_sqlstore_sent_list(s, 1, 1, collect_sent, &c), 0);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.rec[0].sent_ms, 300); /* the newest pending one */

    fe_sqlstore_rowcounts n;
    assert_int_equal(fe_sqlstore_counts(s, &n), 0);
    assert_int_equal(n.sent, 3);
    assert_int_equal(n.sent_pending, 2);
    /* sent_delivered marks a message without touching its other fields;
     * an unknown id is not an error. */
    fe_sent_rec r4 = sent_rec(4, 0);
    assert_int_equal(st.ops->sent_put(st.ctx, &r4), 0);
    make_id(id, 4);
    assert_non_null(st.ops->sent_delivered);
    assert_int_equal(st.ops->sent_delivered(st.ctx, id, 888), 0);
    assert_int_equal(fe_sqlstore_sent_get(s, id, &got), 0);
    want = sent_rec(4, 888);
    assert_memory_equal(&got, &want, sizeof(got));
    make_id(id, 9);
    assert_int_equal(st.ops->sent_delivered(st.ctx, id, 1), 0);
    assert_int_equal(fe_sqlstore_sent_get(s, id, &got), FE_ERR_NOTFOUND);
    fe_sqlstore_close(s);
}

static void test_directory_groups_meta(void **state)
{
    (void)state;
    fe_store st;
    fe_sqlstore *s = open_ok(&st);
    fe_dir_rec u;
    memset(&u, 0, sizeof(u));
    memset(u.pk, 0x11, FE_PK_BYTES);
    u.seq = 4000000000u;
    memcpy(u.name, "alice", 6);
    u.last_seen_ms = 123;
    u.online = 1;
    assert_int_equal(st.ops->dir_put(st.ctx, &u), 0);
    fe_dir_rec v = u;
    memset(v.pk, 0x22, FE_PK_BYTES);
    memset(v.name, 'n', FE_NAME_MAX); /* a name of the full length */
    v.name[FE_NAME_MAX] = '\0';
    assert_int_equal(st.ops->dir_put(st.ctx, &v), 0);
    u.seq = 4000000001u;
    memcpy(u.name, "alice2", 7);
    u.online = 0;
    u.verified = 1;
    assert_int_equal(st.ops->dir_put(st.ctx, &u), 0); /* replace by pk */

    dir_rows d;
    memset(&d, 0, sizeof(d));
    assert_int_equal(st.ops->dir_load(st.ctx, collect_dir, &d), 0);
    assert_int_equal(d.n, 2);
    const fe_dir_rec *du = d.rec[0].pk[0] == 0x11 ? &d.rec[0] : &d.rec[1];
    const fe_dir_rec *dv = d.rec[0].pk[0] == 0x11 ? &d.rec[1] : &d.rec[0];
    assert_memory_equal(du, &u, sizeof(u));
    assert_string_equal(dv->name, v.name);

    fe_group_rec g;
    memset(&g, 0, sizeof(g));
    memset(g.id, 0x33, FE_GROUP_ID_BYTES);
    memset(g.key, 0x44, FE_GROUP_KEY_BYTES);
    memcpy(g.name, "camp", 5);
    assert_int_equal(st.ops->group_put(st.ctx, &g), 0);
    memcpy(g.name, "camp-2", 7);
    assert_int_equal(st.ops->group_put(st.ctx, &g), 0);
    fe_group_rec h = g;
    memset(h.id, 0x55, FE_GROUP_ID_BYTES);
    assert_int_equal(st.ops->group_put(st.ctx, &h), 0);
    group_rows gr;
    memset(&gr, 0, sizeof(gr));
    assert_int_equal(st.ops->group_load(st.ctx, collect_group, &gr), 0);
    assert_int_equal(gr.n, 2);
    assert_int_equal(st.ops->group_del(st.ctx, h.id), 0);
    memset(&gr, 0, sizeof(gr));
    assert_int_equal(st.ops->group_load(st.ctx, collect_group, &gr), 0);
    assert_int_equal(gr.n, 1);
    assert_memory_equal(&gr.rec[0], &g, sizeof(g));

    uint8_t val[16];
    size_t len = 0;
    assert_int_equal(st.ops->meta_get(st.ctx, "clock", val, sizeof(val), &len), FE_ERR_NOTFOUND);
    const uint8_t v1[] = {1, 2, 3, 4, 5, 6, 7, 8};
    assert_int_equal(st.ops->meta_put(st.ctx, "clock", v1, sizeof(v1)), 0);
    assert_int_equal(st.ops->meta_get(st.ctx, "clock", val, sizeof(val), &len), 0);
    assert_int_equal(len, sizeof(v1));
    assert_memory_equal(val, v1, sizeof(v1));
    assert_int_equal(st.ops->meta_put(st.ctx, "clock", v1, 3), 0); /* replace */
    assert_int_equal(st.ops->meta_get(st.ctx, "clock", val, sizeof(val), &len), 0);
    assert_int_equal(len, 3);
    assert_int_equal(st.ops->meta_get(st.ctx, "clock", val, 2, &len), FE_ERR_TOOBIG);
    assert_int_equal(len, 3);
    assert_int_equal(st.ops->meta_put(st.ctx, "empty", NULL, 0), 0);
    assert_int_equal(st.ops->meta_get(st.ctx, "empty", val, sizeof(val), &len), 0);
    assert_int_equal(len, 0);
    char longkey[FE_SQLSTORE_META_KEY_MAX + 2];
    memset(longkey, 'k', sizeof(longkey) - 1);
    longkey[sizeof(longkey) - 1] = '\0';
    assert_int_equal(st.ops->meta_put(st.ctx, longkey, v1, 1), FE_ERR_STORE);
    assert_non_null(strstr(fe_sqlstore_errmsg(s), "invalid argument"));

    fe_sqlstore_rowcounts n;
    assert_int_equal(fe_sqlstore_counts(s, &n), 0);
    assert_int_equal(n.directory, 2);
    assert_int_equal(n.groups, 1);
    fe_sqlstore_close(s);
}

/* Fill one of everything; check() verifies it is all there. */
static void fill(fe_store *st)
{
    const uint8_t frame[] = "frame";
    fe_item_rec it = item(42, 10, frame, sizeof(frame));
    assert_int_equal(st->ops->item_put(st->ctx, &it), 0);
    assert_int_equal(st->ops->seen_put(st->ctx, it.id, 5, 99), 0);
    fe_inbox_rec in = inbox_rec(42, "hello");
    assert_int_equal(st->ops->inbox_put(st->ctx, &in), 0);
    fe_sent_rec se = sent_rec(42, 0);
    assert_int_equal(st->ops->sent_put(st->ctx, &se), 0);
    fe_dir_rec u;
    memset(&u, 0, sizeof(u));
    memset(u.pk, 0x42, FE_PK_BYTES);
    memcpy(u.name, "bob", 4);
    assert_int_equal(st->ops->dir_put(st->ctx, &u), 0);
    fe_group_rec g;
    memset(&g, 0x42, sizeof(g));
    memcpy(g.name, "g", 2);
    assert_int_equal(st->ops->group_put(st->ctx, &g), 0);
    assert_int_equal(st->ops->meta_put(st->ctx, "k", frame, 3), 0);
}

static void check_filled(fe_sqlstore *s)
{
    fe_sqlstore_rowcounts n;
    assert_int_equal(fe_sqlstore_counts(s, &n), 0);
    assert_int_equal(n.items, 1);
    assert_int_equal(n.seen, 1);
    assert_int_equal(n.inbox, 1);
    assert_int_equal(n.sent, 1);
    assert_int_equal(n.directory, 1);
    assert_int_equal(n.groups, 1);
    fe_store st;
    fe_sqlstore_bind(s, &st);
    items_seen c;
    memset(&c, 0, sizeof(c));
    assert_int_equal(st.ops->item_load(st.ctx, collect_item, &c), 0);
    assert_int_equal(c.n, 1);
    assert_memory_equal(c.frames[0], "frame", 6);
    uint8_t v[8];
    size_t len;
    assert_int_equal(st.ops->meta_get(st.ctx, "k", v, sizeof(v), &len), 0);
    assert_int_equal(len, 3);
}

static void test_reopen_keeps_everything(void **state)
{
    (void)state;
    fe_store st;
    fe_sqlstore *s = open_ok(&st);
    fill(&st);
    fe_sqlstore_close(s);
    s = open_ok(NULL);
    check_filled(s);
    fe_sqlstore_close(s);

    /* The file and its companions are private. */
    struct stat sb;
    assert_int_equal(stat(dbpath, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);

    /* Close commits an open batch. */
    fresh(state);
    s = open_ok(&st);
    assert_int_equal(fe_sqlstore_begin(s), 0);
    fill(&st);
    fe_sqlstore_close(s);
    s = open_ok(NULL);
    check_filled(s);
    fe_sqlstore_close(s);
}

/* Seen writes in a batch: repeated writes of one id end as the last one,
 * every id written is there after the commit, none after a rollback, and a
 * reader inside the batch sees them. */
static void test_seen_writes_in_batches(void **state)
{
    (void)state;
    fe_store st;
    fe_sqlstore *s = open_ok(&st);
    uint8_t a[FE_MSG_ID_BYTES], b[FE_MSG_ID_BYTES], c[FE_MSG_ID_BYTES];
    make_id(a, 1);
    make_id(b, 2);
    make_id(c, 3);
    fe_sqlstore_rowcounts n;

    assert_int_equal(fe_sqlstore_begin(s), 0);
    assert_int_equal(st.ops->seen_put(st.ctx, a, 1, 100), 0);
    assert_int_equal(st.ops->seen_put(st.ctx, a, 3, 200), 0);
    assert_int_equal(st.ops->seen_put(st.ctx, b, 1, 300), 0);
    assert_int_equal(st.ops->seen_put(st.ctx, a, 7, 400), 0);
    assert_int_equal(fe_sqlstore_counts(s, &n), 0); /* reads what the batch wrote */
    assert_int_equal(n.seen, 2);
    assert_int_equal(st.ops->seen_put(st.ctx, c, 1, 500), 0);
    assert_int_equal(fe_sqlstore_commit(s), 0);
    seen_rows r;
    memset(&r, 0, sizeof(r));
    assert_int_equal(st.ops->seen_load(st.ctx, collect_seen, &r), 0);
    assert_int_equal(r.n, 3);
    for (size_t i = 0; i < r.n; i++) {
        if (memcmp(r.id[i], a, FE_MSG_ID_BYTES) == 0) {
            assert_int_equal(r.kinds[i], 7);
            assert_int_equal(r.expires[i], 400);
        } else if (memcmp(r.id[i], c, FE_MSG_ID_BYTES) == 0) {
            assert_int_equal(r.kinds[i], 1);
            assert_int_equal(r.expires[i], 500);
        }
    }

    /* Rolled back: the held write goes too, and does not reappear. */
    uint8_t d[FE_MSG_ID_BYTES];
    make_id(d, 4);
    assert_int_equal(fe_sqlstore_begin(s), 0);
    assert_int_equal(st.ops->seen_put(st.ctx, d, 1, 600), 0);
    assert_int_equal(fe_sqlstore_rollback(s), 0);
    assert_int_equal(fe_sqlstore_begin(s), 0);
    assert_int_equal(fe_sqlstore_commit(s), 0);
    assert_int_equal(fe_sqlstore_counts(s, &n), 0);
    assert_int_equal(n.seen, 3);

    /* Outside a batch a write goes straight in. */
    assert_int_equal(st.ops->seen_put(st.ctx, d, 1, 600), 0);
    fe_sqlstore_close(s);
    s = open_ok(&st);
    assert_int_equal(fe_sqlstore_counts(s, &n), 0);
    assert_int_equal(n.seen, 4);
    fe_sqlstore_close(s);
}

static void test_batches(void **state)
{
    (void)state;
    fe_store st;
    fe_sqlstore *s = open_ok(&st);
    assert_false(fe_sqlstore_in_batch(s));
    assert_int_equal(fe_sqlstore_commit(s), 0); /* nothing open: fine */
    assert_int_equal(fe_sqlstore_begin(s), 0);
    assert_int_equal(fe_sqlstore_begin(s), 0); /* already open: fine */
    assert_true(fe_sqlstore_in_batch(s));
    const uint8_t f[] = {1};
    fe_item_rec a = item(1, 10, f, 1);
    assert_int_equal(st.ops->item_put(st.ctx, &a), 0);
    assert_int_equal(fe_sqlstore_rollback(s), 0);
    assert_false(fe_sqlstore_in_batch(s));
    fe_sqlstore_rowcounts n;
    assert_int_equal(fe_sqlstore_counts(s, &n), 0);
    assert_int_equal(n.items, 0);

    /* Autobatch: the first write opens a batch, commit closes it. */
    fe_sqlstore_set_autobatch(s, 1);
    assert_int_equal(st.ops->item_put(st.ctx, &a), 0);
    assert_true(fe_sqlstore_in_batch(s));
    fe_item_rec b = item(2, 10, f, 1);
    assert_int_equal(st.ops->item_put(st.ctx, &b), 0);
    assert_int_equal(fe_sqlstore_commit(s), 0);
    assert_false(fe_sqlstore_in_batch(s));
    assert_int_equal(fe_sqlstore_counts(s, &n), 0);
    assert_int_equal(n.items, 2);
    /* Reads do not open a batch. */
    assert_int_equal(fe_sqlstore_counts(s, &n), 0);
    assert_false(fe_sqlstore_in_batch(s));
    fe_sqlstore_close(s);
}

/* The child of a simulated crash: commit some, then die inside a batch. */
static void crash_child(void)
{
    fe_sqlstore *s = NULL;
    char err[256];
    if (fe_sqlstore_open(&s, dbpath, err, sizeof(err)) != 0)
        _exit(2);
    fe_store st;
    fe_sqlstore_bind(s, &st);
    const uint8_t f[] = "x";
    fe_item_rec committed_alone = item(10, 10, f, 2); /* no batch: commits at once */
    fe_item_rec committed_batch = item(11, 10, f, 2);
    fe_item_rec lost = item(12, 10, f, 2);
    if (st.ops->item_put(st.ctx, &committed_alone) != 0 || fe_sqlstore_begin(s) != 0 ||
        st.ops->item_put(st.ctx, &committed_batch) != 0 || fe_sqlstore_commit(s) != 0 ||
        fe_sqlstore_begin(s) != 0 || st.ops->item_put(st.ctx, &lost) != 0 ||
        st.ops->meta_put(st.ctx, "lost", f, 1) != 0)
        _exit(3);
    _exit(0); /* no commit, no close: like kill -9 */
}

static void test_crash_loses_only_uncommitted(void **state)
{
    (void)state;
    fe_store st;
    fe_sqlstore *s = open_ok(&st);
    fill(&st);
    fe_sqlstore_close(s); /* no connection may cross a fork */

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        crash_child();
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    s = open_ok(&st);
    items_seen c;
    memset(&c, 0, sizeof(c));
    assert_int_equal(st.ops->item_load(st.ctx, collect_item, &c), 0);
    assert_int_equal(c.n, 3);
    assert_non_null(find_item(&c, 42, 10));
    assert_non_null(find_item(&c, 10, 10));
    assert_non_null(find_item(&c, 11, 10));
    assert_null(find_item(&c, 12, 10));
    uint8_t v[4];
    size_t len;
    assert_int_equal(st.ops->meta_get(st.ctx, "lost", v, sizeof(v), &len), FE_ERR_NOTFOUND);
    fe_sqlstore_close(s);
}

static void expect_open_fails(const char *must_contain1, const char *must_contain2)
{
    fe_sqlstore *s = (fe_sqlstore *)1;
    char err[1024] = "";
    assert_int_equal(fe_sqlstore_open(&s, dbpath, err, sizeof(err)), FE_ERR_STORE);
    assert_null(s);
    printf("# %s\n", err);
    assert_null(strchr(err, '\n')); /* one line, for a log */
    assert_non_null(strstr(err, dbpath));
    assert_non_null(strstr(err, must_contain1));
    assert_non_null(strstr(err, must_contain2));
}

/* A real store with enough rows to span many pages, closed cleanly. */
static off_t make_big_store(void)
{
    fe_store st;
    fe_sqlstore *s = open_ok(&st);
    uint8_t frame[600];
    memset(frame, 0x5a, sizeof(frame));
    assert_int_equal(fe_sqlstore_begin(s), 0);
    for (uint32_t i = 0; i < 2000; i++) {
        fe_item_rec r = item(i, 10, frame, sizeof(frame));
        assert_int_equal(st.ops->item_put(st.ctx, &r), 0);
        assert_int_equal(st.ops->seen_put(st.ctx, r.id, 1, i), 0);
    }
    assert_int_equal(fe_sqlstore_commit(s), 0);
    fe_sqlstore_close(s);
    struct stat sb;
    assert_int_equal(stat(dbpath, &sb), 0);
    assert_true(sb.st_size > 1000000);
    return sb.st_size;
}

static void test_damaged_header(void **state)
{
    (void)state;
    make_big_store();
    int fd = open(dbpath, O_WRONLY);
    assert_true(fd >= 0);
    uint8_t junk[100];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)(i * 37 + 11);
    assert_int_equal(pwrite(fd, junk, sizeof(junk), 0), (ssize_t)sizeof(junk));
    close(fd);
    expect_open_fails("is damaged", "move it aside");
    expect_open_fails("empty store", "key file");
}

static void test_damaged_truncated(void **state)
{
    (void)state;
    off_t size = make_big_store();
    assert_int_equal(truncate(dbpath, size / 2), 0);
    expect_open_fails("is damaged", "move it aside");
}

static void test_damaged_pages(void **state)
{
    (void)state;
    off_t size = make_big_store();
    /* Scribble over a few pages in the middle, keeping the size. */
    int fd = open(dbpath, O_WRONLY);
    assert_true(fd >= 0);
    uint8_t junk[4096 * 3];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof(junk); i++) {
        x = x * 1103515245u + 12345u;
        junk[i] = (uint8_t)(x >> 16);
    }
    assert_int_equal(pwrite(fd, junk, sizeof(junk), (size / 2) & ~(off_t)4095),
                     (ssize_t)sizeof(junk));
    close(fd);
    expect_open_fails("is damaged", "move it aside");
}

static void test_not_a_store(void **state)
{
    (void)state;
    /* Plain garbage. */
    int fd = open(dbpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    char text[8192];
    memset(text, 'g', sizeof(text));
    assert_int_equal(write(fd, text, sizeof(text)), (ssize_t)sizeof(text));
    close(fd);
    expect_open_fails("is damaged", "not a database");

    /* Somebody else's SQLite database. */
    fresh(state);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    expect_open_fails("not a ferry store", "another path");

    /* Ours, from a newer version. */
    fresh(state);
    fe_sqlstore *s = open_ok(NULL);
    fe_sqlstore_close(s);
    assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    expect_open_fails("newer ferryd", "schema 99");
}

/* A store written by schema version 1 (rowid tables for items and seen) is
 * upgraded at open and keeps its rows. The v1 tables are spelled out here
 * as they shipped. */
static void test_upgrade_from_v1(void **state)
{
    (void)state;
    sqlite3 *db;
    char sql[1024];
    assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
    snprintf(sql, sizeof(sql),
             "CREATE TABLE items(id BLOB NOT NULL, type INTEGER NOT NULL, own INTEGER NOT NULL,"
             " received_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL, frame BLOB NOT NULL,"
             " PRIMARY KEY(id, type));"
             "CREATE TABLE seen(id BLOB PRIMARY KEY, kinds INTEGER NOT NULL,"
             " expires_ms INTEGER NOT NULL);"
             "CREATE INDEX seen_expiry ON seen(expires_ms);"
             "INSERT INTO items VALUES(x'%s', 10, 1, 5, 99, x'0a0b0c');"
             "INSERT INTO seen VALUES(x'%s', 3, 77);"
             "INSERT INTO seen VALUES(NULL, 1, 0);"
             "PRAGMA user_version = 1; PRAGMA application_id = %d;",
             "0011223344556677", "0011223344556677", 0x46455259);
    /* The other v1 tables, so that only items and seen change. */
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db,
                     "CREATE TABLE inbox(rowid INTEGER PRIMARY KEY AUTOINCREMENT, id BLOB NOT NULL"
                     " UNIQUE, type INTEGER NOT NULL, from_addr BLOB NOT NULL, group_id BLOB NOT"
                     " NULL, received_ms INTEGER NOT NULL, text BLOB NOT NULL, shown INTEGER NOT"
                     " NULL DEFAULT 0);"
                     "CREATE INDEX inbox_shown ON inbox(shown, rowid);"
                     "CREATE TABLE sent(id BLOB PRIMARY KEY, to_addr BLOB NOT NULL, type INTEGER"
                     " NOT NULL, sent_ms INTEGER NOT NULL, delivered_ms INTEGER NOT NULL DEFAULT"
                     " 0);"
                     "CREATE TABLE directory(pk BLOB PRIMARY KEY, seq INTEGER NOT NULL, name TEXT"
                     " NOT NULL, last_seen_ms INTEGER NOT NULL, online INTEGER NOT NULL, verified"
                     " INTEGER NOT NULL);"
                     "CREATE TABLE groups(id BLOB PRIMARY KEY, key BLOB NOT NULL, name TEXT NOT"
                     " NULL);"
                     "CREATE TABLE meta(key TEXT PRIMARY KEY, val BLOB NOT NULL);",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);

    fe_store st;
    fe_sqlstore *s = open_ok(&st);
    items_seen c;
    memset(&c, 0, sizeof(c));
    assert_int_equal(st.ops->item_load(st.ctx, collect_item, &c), 0);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.recs[0].type, 10);
    assert_int_equal(c.recs[0].own, 1);
    assert_int_equal(c.recs[0].expires_ms, 99);
    assert_int_equal(c.recs[0].frame_len, 3);
    seen_rows sr;
    memset(&sr, 0, sizeof(sr));
    assert_int_equal(st.ops->seen_load(st.ctx, collect_seen, &sr), 0);
    assert_int_equal(sr.n, 1); /* the NULL-keyed row is gone */
    assert_int_equal(sr.kinds[0], 3);
    assert_int_equal(sr.expires[0], 77);
    fe_sqlstore_close(s);

    /* Now version 2, and without rowids. */
    assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(q, 0), FE_SQLSTORE_SCHEMA_VERSION);
    sqlite3_finalize(q);
    assert_int_not_equal(sqlite3_exec(db, "SELECT rowid FROM seen", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static void test_bad_rows_skipped(void **state)
{
    (void)state;
    fe_store st;
    fe_sqlstore *s = open_ok(&st);
    const uint8_t f[] = {1};
    fe_item_rec a = item(1, 10, f, 1);
    assert_int_equal(st.ops->item_put(st.ctx, &a), 0);
    fe_sqlstore_close(s);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "INSERT INTO items VALUES(x'0102', 10, 0, 0, 0, x'00');"
                                  "INSERT INTO items VALUES(x'0102030405060708', 999, 0, 0, 0,"
                                  " x'00');"
                                  "INSERT INTO seen VALUES(x'01', 1, 0);",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    s = open_ok(&st);
    items_seen c;
    memset(&c, 0, sizeof(c));
    assert_int_equal(st.ops->item_load(st.ctx, collect_item, &c), 0);
    assert_int_equal(c.n, 1);
    seen_rows sr;
    memset(&sr, 0, sizeof(sr));
    assert_int_equal(st.ops->seen_load(st.ctx, collect_seen, &sr), 0);
    assert_int_equal(sr.n, 0);
    fe_sqlstore_rowcounts n;
    assert_int_equal(fe_sqlstore_counts(s, &n), 0);
    assert_int_equal(n.bad_rows, 3);
    fe_sqlstore_close(s);
}

static fe_store *nested_store;
static int nested_rc;

static int nested_load(void *ctx, const fe_item_rec *r)
{
    (void)ctx;
    (void)r;
    nested_rc = nested_store->ops->item_load(nested_store->ctx, collect_item, ctx);
    return 0;
}

static void test_nested_load_refused(void **state)
{
    (void)state;
    fe_store st;
    fe_sqlstore *s = open_ok(&st);
    const uint8_t f[] = {1};
    fe_item_rec a = item(1, 10, f, 1);
    assert_int_equal(st.ops->item_put(st.ctx, &a), 0);
    nested_store = &st;
    nested_rc = 0;
    items_seen c;
    memset(&c, 0, sizeof(c));
    assert_int_equal(st.ops->item_load(st.ctx, nested_load, &c), 0);
    assert_int_equal(nested_rc, FE_ERR_STORE);
    assert_non_null(strstr(fe_sqlstore_errmsg(s), "inside the same load"));
    fe_sqlstore_close(s);
}

/* Run fn in a child and return its exit status; what it writes into msg
 * comes back in msg. With drop_root, a child running as root first becomes
 * nobody, so that file permissions apply. */
static int in_child(int (*fn)(char *msg, size_t cap), int drop_root, char *msg, size_t cap)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        if (drop_root && geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
            _exit(100);
        char m[512] = "";
        int rc = fn(m, sizeof(m));
        ssize_t w = write(p[1], m, strlen(m));
        (void)w;
        _exit(rc);
    }
    close(p[1]);
    ssize_t n = read(p[0], msg, cap - 1);
    msg[n > 0 ? n : 0] = '\0';
    close(p[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static char ro_path[160];

static int open_in_readonly_place(char *msg, size_t cap)
{
    fe_sqlstore *s = NULL;
    int rc = fe_sqlstore_open(&s, ro_path, msg, cap);
    if (rc == 0) {
        fe_sqlstore_close(s);
        return 0;
    }
    return rc == FE_ERR_STORE ? 1 : 2;
}

static void test_readonly_directory(void **state)
{
    (void)state;
    char dir[128], msg[512];
    snprintf(dir, sizeof(dir), "%s/ro", tmpdir);
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_int_equal(chmod(tmpdir, 0755), 0);
    assert_int_equal(chmod(dir, 0555), 0);

    /* No store yet, and the directory cannot take one. */
    snprintf(ro_path, sizeof(ro_path), "%s/store.db", dir);
    assert_int_equal(in_child(open_in_readonly_place, 1, msg, sizeof(msg)), 1);
    printf("# read-only directory, new store: %s\n", msg);
    assert_non_null(strstr(msg, ro_path));
    assert_non_null(strstr(msg, "unable to open database file"));
    assert_non_null(strstr(msg, "writable"));

    /* A store exists there, readable but neither it nor the directory writable. */
    assert_int_equal(chmod(dir, 0755), 0);
    fe_sqlstore *s = NULL;
    char err[512];
    assert_int_equal(fe_sqlstore_open(&s, ro_path, err, sizeof(err)), 0);
    fe_sqlstore_close(s);
    assert_int_equal(chmod(ro_path, 0644), 0);
    assert_int_equal(chmod(dir, 0555), 0);
    assert_int_equal(in_child(open_in_readonly_place, 1, msg, sizeof(msg)), 1);
    printf("# read-only directory, existing store: %s\n", msg);
    assert_non_null(strstr(msg, ro_path));
    assert_true(strstr(msg, "readonly") || strstr(msg, "unable to open"));
    assert_non_null(strstr(msg, "writable"));
    assert_int_equal(chmod(dir, 0755), 0);
    assert_int_equal(chmod(tmpdir, 0700), 0);
}

/* In a child: a file size limit makes the disk "full" mid-batch. */
static int fill_until_full(char *msg, size_t cap)
{
    fe_sqlstore *s = NULL;
    char err[256];
    if (fe_sqlstore_open(&s, dbpath, err, sizeof(err)) != 0)
        return 10;
    fe_store st;
    fe_sqlstore_bind(s, &st);
    signal(SIGXFSZ, SIG_IGN); /* get EFBIG instead of being killed */
    struct rlimit rl;
    if (getrlimit(RLIMIT_FSIZE, &rl) != 0)
        return 11;
    struct rlimit small = {256 * 1024, rl.rlim_max};
    if (setrlimit(RLIMIT_FSIZE, &small) != 0)
        return 12;
    static uint8_t frame[1200];
    memset(frame, 0x77, sizeof(frame));
    int rc = fe_sqlstore_begin(s);
    for (uint32_t i = 0; rc == 0 && i < 5000; i++) {
        fe_item_rec r = item(1000 + i, 10, frame, sizeof(frame));
        rc = st.ops->item_put(st.ctx, &r);
    }
    if (rc == 0)
        rc = fe_sqlstore_commit(s);
    if (rc != FE_ERR_STORE)
        return 13;
    snprintf(msg, cap, "%s", fe_sqlstore_errmsg(s));
    /* The batch is gone; with room again the store works. */
    fe_sqlstore_rollback(s);
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
        return 14;
    fe_item_rec ok = item(7, 10, frame, 10);
    if (st.ops->item_put(st.ctx, &ok) != 0)
        return 15;
    fe_sqlstore_close(s);
    return 0;
}

static void test_disk_full(void **state)
{
    (void)state;
    fe_store st;
    fe_sqlstore *s = open_ok(&st);
    fill(&st);
    fe_sqlstore_close(s);
    char msg[512];
    assert_int_equal(in_child(fill_until_full, 0, msg, sizeof(msg)), 0);
    printf("# disk full: %s\n", msg);
    assert_true(strstr(msg, "full") || strstr(msg, "I/O"));
    /* What was committed before is intact; the failed batch left nothing. */
    s = open_ok(&st);
    fe_sqlstore_rowcounts n;
    assert_int_equal(fe_sqlstore_counts(s, &n), 0);
    assert_int_equal(n.items, 2); /* fill()'s item and the one written after */
    fe_sqlstore_close(s);
}

typedef struct item_count {
    size_t n;
} item_count;

static int count_item(void *ctx, const fe_item_rec *r)
{
    (void)r;
    ((item_count *)ctx)->n++;
    return 0;
}

static void test_bulk_insert_and_memory(void **state)
{
    (void)state;
    fe_store st;
    fe_sqlstore *s = open_ok(&st);
    uint8_t frame[120];
    memset(frame, 0x3c, sizeof(frame));
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (uint32_t batch = 0; batch < 100; batch++) {
        assert_int_equal(fe_sqlstore_begin(s), 0);
        for (uint32_t i = 0; i < 1000; i++) {
            fe_item_rec r = item(batch * 1000 + i, 10, frame, sizeof(frame));
            assert_int_equal(st.ops->item_put(st.ctx, &r), 0);
        }
        assert_int_equal(fe_sqlstore_commit(s), 0);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("# 100000 items in 100 batches of 1000: %.3f s (%.0f items/s)\n", secs, 100000.0 / secs);
    fe_sqlstore_rowcounts n;
    assert_int_equal(fe_sqlstore_counts(s, &n), 0);
    assert_int_equal(n.items, 100000);
    /* Every page written and then read back, a database far larger than the
     * cache: SQLite's memory stays near the cache limit instead of following
     * the database. The margin is for statements and the schema. */
    item_count ic = {0};
    assert_int_equal(st.ops->item_load(st.ctx, count_item, &ic), 0);
    assert_int_equal(ic.n, 100000);
    uint64_t used, peak;
    fe_sqlstore_memory(&used, &peak);
    printf("# SQLite memory after writing and reading 100000 items: %llu KiB (peak %llu KiB)\n",
           (unsigned long long)(used / 1024), (unsigned long long)(peak / 1024));
    assert_true(used <= (uint64_t)FE_SQLSTORE_CACHE_KIB * 1024 + (1u << 20));
    fe_sqlstore_close(s);
}

static void test_open_arguments(void **state)
{
    (void)state;
    char err[128];
    fe_sqlstore *s = (fe_sqlstore *)1;
    assert_int_equal(fe_sqlstore_open(&s, "", err, sizeof(err)), FE_ERR_INVALID);
    assert_null(s);
    assert_int_equal(fe_sqlstore_open(NULL, dbpath, err, sizeof(err)), FE_ERR_INVALID);
    fe_sqlstore_close(NULL);
    assert_string_equal(fe_sqlstore_errmsg(NULL), "no store");
}

#define T(fn) cmocka_unit_test_setup(fn, fresh)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_items),
        T(test_seen_and_prune),
        T(test_inbox),
        T(test_sent),
        T(test_directory_groups_meta),
        T(test_reopen_keeps_everything),
        T(test_batches),
        T(test_seen_writes_in_batches),
        T(test_crash_loses_only_uncommitted),
        T(test_damaged_header),
        T(test_damaged_truncated),
        T(test_damaged_pages),
        T(test_not_a_store),
        T(test_upgrade_from_v1),
        T(test_bad_rows_skipped),
        T(test_nested_load_refused),
        T(test_readonly_directory),
        T(test_disk_full),
        T(test_bulk_insert_and_memory),
        T(test_open_arguments),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
