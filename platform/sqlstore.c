/* SQLite store: see sqlstore.h. One connection, statements prepared once at
 * open, times stored as INTEGER (uint64 cast to int64, which round-trips). */
#include "sqlstore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>
#include <sqlite3.h>

#include "log.h"

#define APPLICATION_ID 0x46455259 /* "FERY" in the file header: marks our files */

/* Version 1. A later version appends a migration to `migrations` below. */
static const char schema_v1[] =
    "CREATE TABLE items(id BLOB NOT NULL, type INTEGER NOT NULL, own INTEGER NOT NULL,"
    " received_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL, frame BLOB NOT NULL,"
    " PRIMARY KEY(id, type));"
    "CREATE TABLE seen(id BLOB PRIMARY KEY, kinds INTEGER NOT NULL,"
    " expires_ms INTEGER NOT NULL);"
    "CREATE INDEX seen_expiry ON seen(expires_ms);"
    "CREATE TABLE inbox(rowid INTEGER PRIMARY KEY AUTOINCREMENT, id BLOB NOT NULL UNIQUE,"
    " type INTEGER NOT NULL, from_addr BLOB NOT NULL, group_id BLOB NOT NULL,"
    " received_ms INTEGER NOT NULL, text BLOB NOT NULL, shown INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX inbox_shown ON inbox(shown, rowid);"
    "CREATE TABLE sent(id BLOB PRIMARY KEY, to_addr BLOB NOT NULL, type INTEGER NOT NULL,"
    " sent_ms INTEGER NOT NULL, delivered_ms INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE directory(pk BLOB PRIMARY KEY, seq INTEGER NOT NULL, name TEXT NOT NULL,"
    " last_seen_ms INTEGER NOT NULL, online INTEGER NOT NULL, verified INTEGER NOT NULL);"
    "CREATE TABLE groups(id BLOB PRIMARY KEY, key BLOB NOT NULL, name TEXT NOT NULL);"
    "CREATE TABLE meta(key TEXT PRIMARY KEY, val BLOB NOT NULL);";

/* Version 2: the two tables written for every message keyed by their
 * primary key alone (WITHOUT ROWID), so a write updates one B-tree rather
 * than a table and its key index. Rows whose key could not be read back
 * (NULL) are dropped; they were skipped at load anyway. */
static const char schema_v2[] =
    "CREATE TABLE seen2(id BLOB NOT NULL PRIMARY KEY, kinds INTEGER NOT NULL,"
    " expires_ms INTEGER NOT NULL) WITHOUT ROWID;"
    "INSERT OR IGNORE INTO seen2 SELECT id, kinds, expires_ms FROM seen"
    " WHERE id IS NOT NULL AND kinds IS NOT NULL AND expires_ms IS NOT NULL;"
    "DROP TABLE seen;"
    "ALTER TABLE seen2 RENAME TO seen;"
    "CREATE INDEX seen_expiry ON seen(expires_ms);"
    "CREATE TABLE items2(id BLOB NOT NULL, type INTEGER NOT NULL, own INTEGER NOT NULL,"
    " received_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL, frame BLOB NOT NULL,"
    " PRIMARY KEY(id, type)) WITHOUT ROWID;"
    "INSERT OR IGNORE INTO items2 SELECT * FROM items;"
    "DROP TABLE items;"
    "ALTER TABLE items2 RENAME TO items;";

/* migrations[v] brings a store from user_version v to v + 1. */
static const char *const migrations[FE_SQLSTORE_SCHEMA_VERSION] = {schema_v1, schema_v2};

enum {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_ITEM_PUT,
    ST_ITEM_DEL,
    ST_ITEM_LOAD,
    ST_SEEN_PUT,
    ST_SEEN_LOAD,
    ST_SEEN_PRUNE,
    ST_INBOX_PUT,
    ST_INBOX_UNSHOWN,
    ST_INBOX_NEWEST,
    ST_INBOX_AFTER,
    ST_INBOX_MARK,
    ST_SENT_PUT,
    ST_SENT_DELIVERED,
    ST_SENT_GET,
    ST_SENT_NEWEST,
    ST_SENT_PENDING,
    ST_DIR_PUT,
    ST_DIR_LOAD,
    ST_GROUP_PUT,
    ST_GROUP_DEL,
    ST_GROUP_LOAD,
    ST_META_PUT,
    ST_META_GET,
    ST_COUNTS,
    ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_ITEM_PUT] = "INSERT INTO items(id, type, own, received_ms, expires_ms, frame)"
                    " VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(id, type) DO UPDATE SET"
                    " own = ?3, received_ms = ?4, expires_ms = ?5, frame = ?6",
    [ST_ITEM_DEL] = "DELETE FROM items WHERE id = ?1 AND type = ?2",
    [ST_ITEM_LOAD] = "SELECT id, type, own, received_ms, expires_ms, frame FROM items",
    [ST_SEEN_PUT] = "INSERT INTO seen(id, kinds, expires_ms) VALUES(?1, ?2, ?3)"
                    " ON CONFLICT(id) DO UPDATE SET kinds = ?2, expires_ms = ?3",
    [ST_SEEN_LOAD] = "SELECT id, kinds, expires_ms FROM seen",
    /* Negative values are uint64 times >= 2^63 ("never"): not expired. */
    [ST_SEEN_PRUNE] = "DELETE FROM seen WHERE expires_ms >= 0 AND expires_ms <= ?1",
    /* The same message is kept once, so it is shown once even if delivered
     * again after a crash lost its seen entry. */
    [ST_INBOX_PUT] = "INSERT OR IGNORE INTO inbox(id, type, from_addr, group_id, received_ms,"
                     " text) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_INBOX_UNSHOWN] = "SELECT rowid, id, type, from_addr, group_id, received_ms, text, shown"
                         " FROM inbox WHERE shown = 0 ORDER BY rowid LIMIT ?1",
    [ST_INBOX_NEWEST] = "SELECT * FROM (SELECT rowid, id, type, from_addr, group_id,"
                        " received_ms, text, shown FROM inbox ORDER BY rowid DESC LIMIT ?1)"
                        " ORDER BY rowid",
    [ST_INBOX_AFTER] = "SELECT rowid, id, type, from_addr, group_id, received_ms, text, shown"
                       " FROM inbox WHERE rowid > ?2 ORDER BY rowid LIMIT ?1",
    [ST_INBOX_MARK] = "UPDATE inbox SET shown = 1 WHERE rowid = ?1",
    [ST_SENT_PUT] = "INSERT INTO sent(id, to_addr, type, sent_ms, delivered_ms)"
                    " VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(id) DO UPDATE SET"
                    " to_addr = ?2, type = ?3, sent_ms = ?4, delivered_ms = ?5",
    [ST_SENT_DELIVERED] = "UPDATE sent SET delivered_ms = ?2 WHERE id = ?1",
    [ST_SENT_GET] = "SELECT id, to_addr, type, sent_ms, delivered_ms FROM sent WHERE id = ?1",
    [ST_SENT_NEWEST] = "SELECT * FROM (SELECT rowid AS r, id, to_addr, type, sent_ms,"
                       " delivered_ms FROM sent ORDER BY r DESC LIMIT ?1) ORDER BY r",
    [ST_SENT_PENDING] = "SELECT * FROM (SELECT rowid AS r, id, to_addr, type, sent_ms,"
                        " delivered_ms FROM sent WHERE delivered_ms = 0 ORDER BY r DESC"
                        " LIMIT ?1) ORDER BY r",
    [ST_DIR_PUT] = "INSERT INTO directory(pk, seq, name, last_seen_ms, online, verified)"
                   " VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(pk) DO UPDATE SET"
                   " seq = ?2, name = ?3, last_seen_ms = ?4, online = ?5, verified = ?6",
    /* In the order keys were first heard: the first key to announce a name
     * keeps it after a restart (core/directory.c). */
    [ST_DIR_LOAD] = "SELECT pk, seq, name, last_seen_ms, online, verified FROM directory"
                    " ORDER BY rowid",
    [ST_GROUP_PUT] = "INSERT INTO groups(id, key, name) VALUES(?1, ?2, ?3)"
                     " ON CONFLICT(id) DO UPDATE SET key = ?2, name = ?3",
    [ST_GROUP_DEL] = "DELETE FROM groups WHERE id = ?1",
    [ST_GROUP_LOAD] = "SELECT id, key, name FROM groups",
    [ST_META_PUT] = "INSERT INTO meta(key, val) VALUES(?1, ?2)"
                    " ON CONFLICT(key) DO UPDATE SET val = ?2",
    [ST_META_GET] = "SELECT val FROM meta WHERE key = ?1",
    [ST_COUNTS] = "SELECT (SELECT count(*) FROM items), (SELECT count(*) FROM items WHERE own),"
                  " (SELECT count(*) FROM seen), (SELECT count(*) FROM inbox),"
                  " (SELECT count(*) FROM inbox WHERE shown = 0), (SELECT count(*) FROM sent),"
                  " (SELECT count(*) FROM sent WHERE delivered_ms = 0),"
                  " (SELECT count(*) FROM directory), (SELECT count(*) FROM groups)",
};

struct fe_sqlstore {
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
    int autobatch;
    uint64_t bad_rows;
    /* One seen write held back inside a batch: the engine writes the same id
     * two or three times while handling one frame (seen, delivered, receipt
     * made), and those become one statement. */
    int seen_held;
    uint8_t held_id[FE_MSG_ID_BYTES];
    uint8_t held_kinds;
    uint64_t held_expires;
    int wal_pages; /* WAL size after the last commit, from the WAL hook */
    uint64_t checkpoint_failures;
    char errmsg[FE_SQLSTORE_ERRMSG_MAX];
};

/* WAL pages after which a commit is followed by a checkpoint (SQLite's own
 * automatic default). */
#define CHECKPOINT_PAGES 1000

/* Replaces SQLite's automatic checkpoint, which runs inside the COMMIT step
 * and makes sqlite3_step report a failed checkpoint (a full disk) as a failed
 * COMMIT although the transaction is durable: the daemon would tell a user
 * "not accepted" about a message that is on disk and will be delivered. */
static int wal_hook(void *ctx, sqlite3 *db, const char *name, int pages)
{
    (void)db;
    (void)name;
    ((fe_sqlstore *)ctx)->wal_pages = pages;
    return SQLITE_OK;
}

/* --- errors and binding --- */

/* Keep SQLite's text for the failure of `what` and return FE_ERR_STORE. */
static int fail(fe_sqlstore *s, const char *what)
{
    snprintf(s->errmsg, sizeof(s->errmsg), "%s (%s)", sqlite3_errmsg(s->db), what);
    return FE_ERR_STORE;
}

static int fail_msg(fe_sqlstore *s, const char *msg, const char *what)
{
    snprintf(s->errmsg, sizeof(s->errmsg), "%s (%s)", msg, what);
    return FE_ERR_STORE;
}

static void done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* A zero-length blob, not NULL, even for an empty buffer. */
static int bind_blob(sqlite3_stmt *st, int i, const void *p, size_t n)
{
    if (n > (size_t)INT32_MAX)
        return SQLITE_TOOBIG;
    return sqlite3_bind_blob(st, i, n ? p : "", (int)n, SQLITE_STATIC);
}

static int bind_u64(sqlite3_stmt *st, int i, uint64_t v)
{
    return sqlite3_bind_int64(st, i, (sqlite3_int64)v);
}

static uint64_t col_u64(sqlite3_stmt *st, int i)
{
    return (uint64_t)sqlite3_column_int64(st, i);
}

/* Copy a blob column of exactly n bytes into dst; -1 if it has another size. */
static int col_fixed(sqlite3_stmt *st, int i, uint8_t *dst, size_t n)
{
    const void *p = sqlite3_column_blob(st, i);
    if ((size_t)sqlite3_column_bytes(st, i) != n || (n > 0 && !p))
        return -1;
    memcpy(dst, p, n);
    return 0;
}

/* A blob column's bytes; never NULL, so callers may memcpy zero bytes. */
static const uint8_t *col_blob(sqlite3_stmt *st, int i, size_t *len)
{
    static const uint8_t empty[1];
    const uint8_t *p = sqlite3_column_blob(st, i);
    *len = (size_t)sqlite3_column_bytes(st, i);
    return p && *len ? p : empty;
}

/* Copy a text column into dst[cap] (cut, NUL-terminated). */
static void col_text(sqlite3_stmt *st, int i, char *dst, size_t cap)
{
    const unsigned char *p = sqlite3_column_text(st, i);
    size_t n = p ? (size_t)sqlite3_column_bytes(st, i) : 0;
    if (n >= cap)
        n = cap - 1;
    if (n)
        memcpy(dst, p, n);
    dst[n] = '\0';
}

/* Step a statement that returns no rows and reset it. */
static int exec_stmt(fe_sqlstore *s, int which, const char *what)
{
    sqlite3_stmt *st = s->st[which];
    int rc = sqlite3_step(st);
    int ret = (rc == SQLITE_DONE || rc == SQLITE_ROW) ? 0 : fail(s, what);
    done(st);
    return ret;
}

/* A write through the fe_store ops: open the batch first when autobatching. */
static int write_prologue(fe_sqlstore *s)
{
    if (s->autobatch && sqlite3_get_autocommit(s->db))
        return fe_sqlstore_begin(s);
    return 0;
}

/* A load must not start while the same statement is being stepped (a
 * callback that reloads the same table). */
static sqlite3_stmt *load_stmt(fe_sqlstore *s, int which, const char *what)
{
    sqlite3_stmt *st = s->st[which];
    if (sqlite3_stmt_busy(st)) {
        fail_msg(s, "a load was started from inside the same load", what);
        return NULL;
    }
    return st;
}

/* Step through a load: SQLITE_ROW rows to visit, else 0 at the end or an error. */
static int load_step(fe_sqlstore *s, sqlite3_stmt *st, const char *what, int *ret)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        return 1;
    *ret = rc == SQLITE_DONE ? 0 : fail(s, what);
    return 0;
}

/* --- the held seen write --- */

static int seen_write(fe_sqlstore *s, const uint8_t *id, uint8_t kinds, uint64_t expires_ms)
{
    sqlite3_stmt *st = s->st[ST_SEEN_PUT];
    bind_blob(st, 1, id, FE_MSG_ID_BYTES);
    sqlite3_bind_int(st, 2, kinds);
    bind_u64(st, 3, expires_ms);
    return exec_stmt(s, ST_SEEN_PUT, "seen_put");
}

/* Write the held seen entry, if any. Before anything reads the seen table
 * and before the batch commits. */
static int seen_flush(fe_sqlstore *s)
{
    if (!s->seen_held)
        return 0;
    s->seen_held = 0;
    /* A batch that SQLite rolled back on an error took the held write
     * with it: writing it now would record an id whose item is not here. */
    if (sqlite3_get_autocommit(s->db))
        return 0;
    return seen_write(s, s->held_id, s->held_kinds, s->held_expires);
}

/* --- batching --- */

int fe_sqlstore_begin(fe_sqlstore *s)
{
    if (!sqlite3_get_autocommit(s->db))
        return 0;
    s->seen_held = 0;
    return exec_stmt(s, ST_BEGIN, "begin");
}

int fe_sqlstore_commit(fe_sqlstore *s)
{
    if (sqlite3_get_autocommit(s->db))
        return 0;
    int rc = seen_flush(s);
    if (rc == 0)
        rc = exec_stmt(s, ST_COMMIT, "commit");
    if (rc == 0 && s->wal_pages >= CHECKPOINT_PAGES) {
        /* The commit stands whatever happens here; a failed checkpoint only
         * leaves the WAL longer, and is retried after the next commit. */
        if (sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL) !=
            SQLITE_OK)
            s->checkpoint_failures++;
        else
            s->wal_pages = 0;
    }
    if (rc != 0 && !sqlite3_get_autocommit(s->db)) {
        /* Keep the commit's error text, not the rollback's. */
        char keep[sizeof(s->errmsg)];
        memcpy(keep, s->errmsg, sizeof(keep));
        (void)exec_stmt(s, ST_ROLLBACK, "rollback");
        memcpy(s->errmsg, keep, sizeof(keep));
    }
    return rc;
}

int fe_sqlstore_rollback(fe_sqlstore *s)
{
    s->seen_held = 0;
    if (sqlite3_get_autocommit(s->db))
        return 0;
    return exec_stmt(s, ST_ROLLBACK, "rollback");
}

int fe_sqlstore_in_batch(const fe_sqlstore *s)
{
    return !sqlite3_get_autocommit(s->db);
}

void fe_sqlstore_set_autobatch(fe_sqlstore *s, int on)
{
    s->autobatch = on != 0;
}

const char *fe_sqlstore_errmsg(const fe_sqlstore *s)
{
    return s ? s->errmsg : "no store";
}

/* --- fe_store ops --- */

static int op_item_put(void *ctx, const fe_item_rec *r)
{
    fe_sqlstore *s = ctx;
    if (!r || (!r->frame && r->frame_len > 0))
        return fail_msg(s, "invalid argument", "item_put");
    int rc = write_prologue(s);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = s->st[ST_ITEM_PUT];
    if (bind_blob(st, 1, r->id, FE_MSG_ID_BYTES) || sqlite3_bind_int(st, 2, r->type) ||
        sqlite3_bind_int(st, 3, r->own) || bind_u64(st, 4, r->received_ms) ||
        bind_u64(st, 5, r->expires_ms) || bind_blob(st, 6, r->frame, r->frame_len)) {
        rc = fail(s, "item_put");
        done(st);
        return rc;
    }
    return exec_stmt(s, ST_ITEM_PUT, "item_put");
}

static int op_item_del(void *ctx, const uint8_t id[FE_MSG_ID_BYTES], uint8_t type)
{
    fe_sqlstore *s = ctx;
    if (!id)
        return fail_msg(s, "invalid argument", "item_del");
    int rc = write_prologue(s);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = s->st[ST_ITEM_DEL];
    bind_blob(st, 1, id, FE_MSG_ID_BYTES);
    sqlite3_bind_int(st, 2, type);
    return exec_stmt(s, ST_ITEM_DEL, "item_del");
}

static int op_item_load(void *ctx, fe_store_item_cb cb, void *cbctx)
{
    fe_sqlstore *s = ctx;
    sqlite3_stmt *st = load_stmt(s, ST_ITEM_LOAD, "item_load");
    if (!st || !cb)
        return st ? fail_msg(s, "invalid argument", "item_load") : FE_ERR_STORE;
    int ret = 0;
    while (load_step(s, st, "item_load", &ret)) {
        fe_item_rec r;
        memset(&r, 0, sizeof(r));
        int type = sqlite3_column_int(st, 1);
        r.frame = col_blob(st, 5, &r.frame_len);
        if (col_fixed(st, 0, r.id, FE_MSG_ID_BYTES) != 0 || type < 0 || type > 255 ||
            r.frame_len > FE_FRAME_MAX) {
            s->bad_rows++;
            continue;
        }
        r.type = (uint8_t)type;
        r.own = sqlite3_column_int(st, 2) != 0;
        r.received_ms = col_u64(st, 3);
        r.expires_ms = col_u64(st, 4);
        ret = cb(cbctx, &r);
        if (ret != 0)
            break;
    }
    done(st);
    return ret;
}

static int op_seen_put(void *ctx, const uint8_t id[FE_MSG_ID_BYTES], uint8_t kinds,
                       uint64_t expires_ms)
{
    fe_sqlstore *s = ctx;
    if (!id)
        return fail_msg(s, "invalid argument", "seen_put");
    int rc = write_prologue(s);
    if (rc != 0)
        return rc;
    if (sqlite3_get_autocommit(s->db)) {
        s->seen_held = 0;
        return seen_write(s, id, kinds, expires_ms); /* no batch: write now */
    }
    if (s->seen_held && memcmp(s->held_id, id, FE_MSG_ID_BYTES) != 0 && (rc = seen_flush(s)) != 0)
        return rc;
    /* The later write of an id replaces the earlier, as the upsert would. */
    memcpy(s->held_id, id, FE_MSG_ID_BYTES);
    s->held_kinds = kinds;
    s->held_expires = expires_ms;
    s->seen_held = 1;
    return 0;
}

static int op_seen_load(void *ctx, fe_store_seen_cb cb, void *cbctx)
{
    fe_sqlstore *s = ctx;
    if (seen_flush(s) != 0)
        return FE_ERR_STORE;
    sqlite3_stmt *st = load_stmt(s, ST_SEEN_LOAD, "seen_load");
    if (!st || !cb)
        return st ? fail_msg(s, "invalid argument", "seen_load") : FE_ERR_STORE;
    int ret = 0;
    while (load_step(s, st, "seen_load", &ret)) {
        uint8_t id[FE_MSG_ID_BYTES];
        int kinds = sqlite3_column_int(st, 1);
        if (col_fixed(st, 0, id, sizeof(id)) != 0 || kinds < 0 || kinds > 255) {
            s->bad_rows++;
            continue;
        }
        ret = cb(cbctx, id, (uint8_t)kinds, col_u64(st, 2));
        if (ret != 0)
            break;
    }
    done(st);
    return ret;
}

static int op_inbox_put(void *ctx, const fe_inbox_rec *r)
{
    fe_sqlstore *s = ctx;
    if (!r || (!r->text && r->text_len > 0))
        return fail_msg(s, "invalid argument", "inbox_put");
    int rc = write_prologue(s);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = s->st[ST_INBOX_PUT];
    if (bind_blob(st, 1, r->id, FE_MSG_ID_BYTES) || sqlite3_bind_int(st, 2, r->type) ||
        bind_blob(st, 3, r->from, FE_ADDR_BYTES) || bind_blob(st, 4, r->group, FE_GROUP_ID_BYTES) ||
        bind_u64(st, 5, r->received_ms) || bind_blob(st, 6, r->text, r->text_len)) {
        rc = fail(s, "inbox_put");
        done(st);
        return rc;
    }
    return exec_stmt(s, ST_INBOX_PUT, "inbox_put");
}

static int op_sent_put(void *ctx, const fe_sent_rec *r)
{
    fe_sqlstore *s = ctx;
    if (!r)
        return fail_msg(s, "invalid argument", "sent_put");
    int rc = write_prologue(s);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = s->st[ST_SENT_PUT];
    bind_blob(st, 1, r->id, FE_MSG_ID_BYTES);
    bind_blob(st, 2, r->to, FE_ADDR_BYTES);
    sqlite3_bind_int(st, 3, r->type);
    bind_u64(st, 4, r->sent_ms);
    bind_u64(st, 5, r->delivered_ms);
    return exec_stmt(s, ST_SENT_PUT, "sent_put");
}

static int op_sent_delivered(void *ctx, const uint8_t id[FE_MSG_ID_BYTES], uint64_t delivered_ms)
{
    fe_sqlstore *s = ctx;
    int rc = write_prologue(s);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = s->st[ST_SENT_DELIVERED];
    bind_blob(st, 1, id, FE_MSG_ID_BYTES);
    bind_u64(st, 2, delivered_ms);
    return exec_stmt(s, ST_SENT_DELIVERED, "sent_delivered"); /* no row: not an error */
}

static int op_dir_put(void *ctx, const fe_dir_rec *r)
{
    fe_sqlstore *s = ctx;
    if (!r)
        return fail_msg(s, "invalid argument", "dir_put");
    int rc = write_prologue(s);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = s->st[ST_DIR_PUT];
    bind_blob(st, 1, r->pk, FE_PK_BYTES);
    sqlite3_bind_int64(st, 2, r->seq);
    sqlite3_bind_text(st, 3, r->name, (int)strnlen(r->name, FE_NAME_MAX), SQLITE_STATIC);
    bind_u64(st, 4, r->last_seen_ms);
    sqlite3_bind_int(st, 5, r->online);
    sqlite3_bind_int(st, 6, r->verified);
    return exec_stmt(s, ST_DIR_PUT, "dir_put");
}

static int op_dir_load(void *ctx, fe_store_dir_cb cb, void *cbctx)
{
    fe_sqlstore *s = ctx;
    sqlite3_stmt *st = load_stmt(s, ST_DIR_LOAD, "dir_load");
    if (!st || !cb)
        return st ? fail_msg(s, "invalid argument", "dir_load") : FE_ERR_STORE;
    int ret = 0;
    while (load_step(s, st, "dir_load", &ret)) {
        fe_dir_rec r;
        memset(&r, 0, sizeof(r));
        sqlite3_int64 seq = sqlite3_column_int64(st, 1);
        int online = sqlite3_column_int(st, 4), verified = sqlite3_column_int(st, 5);
        if (col_fixed(st, 0, r.pk, FE_PK_BYTES) != 0 || seq < 0 || seq > UINT32_MAX || online < 0 ||
            online > 255 || verified < 0 || verified > 255) {
            s->bad_rows++;
            continue;
        }
        r.seq = (uint32_t)seq;
        col_text(st, 2, r.name, sizeof(r.name));
        r.last_seen_ms = col_u64(st, 3);
        r.online = (uint8_t)online;
        r.verified = (uint8_t)verified;
        ret = cb(cbctx, &r);
        if (ret != 0)
            break;
    }
    done(st);
    return ret;
}

static int op_group_put(void *ctx, const fe_group_rec *r)
{
    fe_sqlstore *s = ctx;
    if (!r)
        return fail_msg(s, "invalid argument", "group_put");
    int rc = write_prologue(s);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = s->st[ST_GROUP_PUT];
    bind_blob(st, 1, r->id, FE_GROUP_ID_BYTES);
    bind_blob(st, 2, r->key, FE_GROUP_KEY_BYTES);
    sqlite3_bind_text(st, 3, r->name, (int)strnlen(r->name, FE_NAME_MAX), SQLITE_STATIC);
    return exec_stmt(s, ST_GROUP_PUT, "group_put");
}

static int op_group_del(void *ctx, const uint8_t id[FE_GROUP_ID_BYTES])
{
    fe_sqlstore *s = ctx;
    if (!id)
        return fail_msg(s, "invalid argument", "group_del");
    int rc = write_prologue(s);
    if (rc != 0)
        return rc;
    bind_blob(s->st[ST_GROUP_DEL], 1, id, FE_GROUP_ID_BYTES);
    return exec_stmt(s, ST_GROUP_DEL, "group_del");
}

static int op_group_load(void *ctx, fe_store_group_cb cb, void *cbctx)
{
    fe_sqlstore *s = ctx;
    sqlite3_stmt *st = load_stmt(s, ST_GROUP_LOAD, "group_load");
    if (!st || !cb)
        return st ? fail_msg(s, "invalid argument", "group_load") : FE_ERR_STORE;
    int ret = 0;
    fe_group_rec r;
    while (load_step(s, st, "group_load", &ret)) {
        memset(&r, 0, sizeof(r));
        if (col_fixed(st, 0, r.id, FE_GROUP_ID_BYTES) != 0 ||
            col_fixed(st, 1, r.key, FE_GROUP_KEY_BYTES) != 0) {
            s->bad_rows++;
            continue;
        }
        col_text(st, 2, r.name, sizeof(r.name));
        ret = cb(cbctx, &r);
        if (ret != 0)
            break;
    }
    sodium_memzero(&r, sizeof(r)); /* the group key */
    done(st);
    return ret;
}

static int op_meta_put(void *ctx, const char *key, const uint8_t *val, size_t len)
{
    fe_sqlstore *s = ctx;
    if (!key || strnlen(key, FE_SQLSTORE_META_KEY_MAX + 1) > FE_SQLSTORE_META_KEY_MAX ||
        (!val && len > 0))
        return fail_msg(s, "invalid argument", "meta_put");
    int rc = write_prologue(s);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = s->st[ST_META_PUT];
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    if (bind_blob(st, 2, val, len) != SQLITE_OK) {
        rc = fail(s, "meta_put");
        done(st);
        return rc;
    }
    return exec_stmt(s, ST_META_PUT, "meta_put");
}

/* FE_ERR_NOTFOUND if key is absent; FE_ERR_TOOBIG (with *len set to the
 * size needed) if the value is longer than cap, as in the memory store. */
static int op_meta_get(void *ctx, const char *key, uint8_t *val, size_t cap, size_t *len)
{
    fe_sqlstore *s = ctx;
    if (!key)
        return fail_msg(s, "invalid argument", "meta_get");
    sqlite3_stmt *st = s->st[ST_META_GET];
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int ret;
    if (rc == SQLITE_ROW) {
        const void *p = sqlite3_column_blob(st, 0);
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        if (len)
            *len = n;
        if (n > cap || (n > 0 && (!val || !p))) {
            ret = FE_ERR_TOOBIG;
        } else {
            if (n)
                memcpy(val, p, n);
            ret = 0;
        }
    } else if (rc == SQLITE_DONE) {
        ret = FE_ERR_NOTFOUND;
    } else {
        ret = fail(s, "meta_get");
    }
    done(st);
    return ret;
}

static const fe_store_ops sqlstore_ops = {
    .item_put = op_item_put,
    .item_del = op_item_del,
    .item_load = op_item_load,
    .seen_put = op_seen_put,
    .seen_load = op_seen_load,
    .inbox_put = op_inbox_put,
    .sent_put = op_sent_put,
    .sent_delivered = op_sent_delivered,
    .dir_put = op_dir_put,
    .dir_load = op_dir_load,
    .group_put = op_group_put,
    .group_del = op_group_del,
    .group_load = op_group_load,
    .meta_put = op_meta_put,
    .meta_get = op_meta_get,
};

void fe_sqlstore_bind(fe_sqlstore *s, fe_store *out)
{
    out->ops = &sqlstore_ops;
    out->ctx = s;
}

/* --- queries for the daemon --- */

static sqlite3_int64 sql_limit(size_t limit)
{
    return limit == 0 || limit > INT64_MAX ? -1 : (sqlite3_int64)limit; /* -1: no limit */
}

static int inbox_walk(fe_sqlstore *s, int which, int64_t after, size_t limit,
                      fe_sqlstore_inbox_cb cb, void *ctx)
{
    sqlite3_stmt *st = load_stmt(s, which, "inbox_list");
    if (!st || !cb)
        return st ? fail_msg(s, "invalid argument", "inbox_list") : FE_ERR_STORE;
    sqlite3_bind_int64(st, 1, sql_limit(limit));
    if (which == ST_INBOX_AFTER)
        sqlite3_bind_int64(st, 2, after);
    int ret = 0;
    while (load_step(s, st, "inbox_list", &ret)) {
        fe_inbox_rec r;
        memset(&r, 0, sizeof(r));
        int type = sqlite3_column_int(st, 2);
        if (col_fixed(st, 1, r.id, FE_MSG_ID_BYTES) != 0 ||
            col_fixed(st, 3, r.from, FE_ADDR_BYTES) != 0 ||
            col_fixed(st, 4, r.group, FE_GROUP_ID_BYTES) != 0 || type < 0 || type > 255) {
            s->bad_rows++;
            continue;
        }
        r.type = (uint8_t)type;
        r.received_ms = col_u64(st, 5);
        r.text = col_blob(st, 6, &r.text_len);
        ret = cb(ctx, sqlite3_column_int64(st, 0), &r, sqlite3_column_int(st, 7) != 0);
        if (ret != 0)
            break;
    }
    done(st);
    return ret;
}

int fe_sqlstore_inbox_list(fe_sqlstore *s, int unshown_only, size_t limit, fe_sqlstore_inbox_cb cb,
                           void *ctx)
{
    return inbox_walk(s, unshown_only ? ST_INBOX_UNSHOWN : ST_INBOX_NEWEST, 0, limit, cb, ctx);
}

int fe_sqlstore_inbox_after(fe_sqlstore *s, int64_t after, size_t limit, fe_sqlstore_inbox_cb cb,
                            void *ctx)
{
    return inbox_walk(s, ST_INBOX_AFTER, after, limit, cb, ctx);
}

int fe_sqlstore_inbox_mark_shown(fe_sqlstore *s, int64_t rowid)
{
    int prc = write_prologue(s);
    if (prc != 0)
        return prc;
    sqlite3_bind_int64(s->st[ST_INBOX_MARK], 1, rowid);
    int rc = exec_stmt(s, ST_INBOX_MARK, "inbox_mark_shown");
    if (rc == 0 && sqlite3_changes(s->db) == 0) {
        /* Already shown rows are updated too, so 0 changes means no row. */
        return FE_ERR_NOTFOUND;
    }
    return rc;
}

/* Fill a sent record from columns first..first+4 (id, to, type, sent, delivered). */
static int sent_from_row(sqlite3_stmt *st, int first, fe_sent_rec *out)
{
    memset(out, 0, sizeof(*out));
    int type = sqlite3_column_int(st, first + 2);
    if (col_fixed(st, first, out->id, FE_MSG_ID_BYTES) != 0 ||
        col_fixed(st, first + 1, out->to, FE_ADDR_BYTES) != 0 || type < 0 || type > 255)
        return -1;
    out->type = (uint8_t)type;
    out->sent_ms = col_u64(st, first + 3);
    out->delivered_ms = col_u64(st, first + 4);
    return 0;
}

int fe_sqlstore_sent_get(fe_sqlstore *s, const uint8_t id[static FE_MSG_ID_BYTES], fe_sent_rec *out)
{
    sqlite3_stmt *st = s->st[ST_SENT_GET];
    bind_blob(st, 1, id, FE_MSG_ID_BYTES);
    int rc = sqlite3_step(st);
    int ret;
    if (rc == SQLITE_ROW)
        ret = sent_from_row(st, 0, out) == 0 ? 0 : fail_msg(s, "malformed row", "sent_get");
    else if (rc == SQLITE_DONE)
        ret = FE_ERR_NOTFOUND;
    else
        ret = fail(s, "sent_get");
    done(st);
    return ret;
}

int fe_sqlstore_sent_list(fe_sqlstore *s, int pending_only, size_t limit, fe_sqlstore_sent_cb cb,
                          void *ctx)
{
    int which = pending_only ? ST_SENT_PENDING : ST_SENT_NEWEST;
    sqlite3_stmt *st = load_stmt(s, which, "sent_list");
    if (!st || !cb)
        return st ? fail_msg(s, "invalid argument", "sent_list") : FE_ERR_STORE;
    sqlite3_bind_int64(st, 1, sql_limit(limit));
    int ret = 0;
    while (load_step(s, st, "sent_list", &ret)) {
        fe_sent_rec r;
        if (sent_from_row(st, 1, &r) != 0) {
            s->bad_rows++;
            continue;
        }
        ret = cb(ctx, &r);
        if (ret != 0)
            break;
    }
    done(st);
    return ret;
}

void fe_sqlstore_memory(uint64_t *used, uint64_t *peak)
{
    *used = (uint64_t)sqlite3_memory_used();
    *peak = (uint64_t)sqlite3_memory_highwater(0);
}

int fe_sqlstore_counts(fe_sqlstore *s, fe_sqlstore_rowcounts *out)
{
    memset(out, 0, sizeof(*out));
    if (seen_flush(s) != 0)
        return FE_ERR_STORE;
    sqlite3_stmt *st = s->st[ST_COUNTS];
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        rc = fail(s, "counts");
        done(st);
        return rc;
    }
    uint64_t *f[] = {&out->items,        &out->own_items,     &out->seen,
                     &out->inbox,        &out->inbox_unshown, &out->sent,
                     &out->sent_pending, &out->directory,     &out->groups};
    for (int i = 0; i < (int)(sizeof(f) / sizeof(f[0])); i++)
        *f[i] = col_u64(st, i);
    out->bad_rows = s->bad_rows;
    done(st);
    return 0;
}

int fe_sqlstore_seen_prune(fe_sqlstore *s, uint64_t now_ms, uint64_t *pruned)
{
    if (pruned)
        *pruned = 0;
    int prc = write_prologue(s);
    if (prc == 0)
        prc = seen_flush(s);
    if (prc != 0)
        return prc;
    sqlite3_int64 now = now_ms > INT64_MAX ? INT64_MAX : (sqlite3_int64)now_ms;
    sqlite3_bind_int64(s->st[ST_SEEN_PRUNE], 1, now);
    int rc = exec_stmt(s, ST_SEEN_PRUNE, "seen_prune");
    if (rc == 0 && pruned)
        *pruned = (uint64_t)sqlite3_changes64(s->db);
    return rc;
}

/* --- opening --- */

/* Run a statement and copy the first column of its first row into out.
 * Returns the SQLite result code (SQLITE_OK when it ran). */
static int query_text(sqlite3 *db, const char *sql, char *out, size_t cap)
{
    sqlite3_stmt *st;
    out[0] = '\0';
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        snprintf(out, cap, "%s", t ? (const char *)t : "");
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

static int query_int(sqlite3 *db, const char *sql, long long *out)
{
    char buf[32];
    int rc = query_text(db, sql, buf, sizeof(buf));
    if (rc == SQLITE_OK)
        *out = strtoll(buf, NULL, 10); /* SQLite's own integer output */
    return rc;
}

static int is_damage(int rc)
{
    return (rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB;
}

static void damaged(const char *path, const char *why_text, char *err, size_t err_len)
{
    /* quick_check's findings span lines; the message must be one line. */
    char why[160];
    snprintf(why, sizeof(why), "%s", why_text);
    for (char *p = why; *p; p++) {
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
    }
    fe_errf(err, err_len,
            "store %s is damaged (%s). To recover, stop ferryd and move it aside together "
            "with any %s-wal and %s-shm (e.g. mv %s %s.broken); ferryd then starts with an "
            "empty store. The identity is not affected: it is kept in its own key file",
            path, why, path, path, path, path);
}

static void open_failed(fe_sqlstore *s, const char *path, int rc, char *err, size_t err_len)
{
    int prim = rc & 0xff;
    const char *hint = "";
    if (prim == SQLITE_CANTOPEN || prim == SQLITE_READONLY || prim == SQLITE_PERM ||
        prim == SQLITE_AUTH)
        hint = "; check that the file and its directory exist and are writable by this user";
    else if (prim == SQLITE_FULL)
        hint = "; free some disk space";
    else if (prim == SQLITE_BUSY)
        hint = "; is another ferryd using the same data directory?";
    fe_errf(err, err_len, "cannot open store %s: %s%s", path,
            s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc), hint);
}

/* Create or upgrade the schema, one version per transaction. */
static int migrate(fe_sqlstore *s, const char *path, char *err, size_t err_len)
{
    long long version = 0, app_id = 0, tables = 0;
    int rc = query_int(s->db, "PRAGMA user_version", &version);
    if (rc == SQLITE_OK)
        rc = query_int(s->db, "PRAGMA application_id", &app_id);
    if (rc == SQLITE_OK)
        rc = query_int(s->db, "SELECT count(*) FROM sqlite_master", &tables);
    if (rc != SQLITE_OK) {
        open_failed(s, path, rc, err, err_len);
        return FE_ERR_STORE;
    }
    if (app_id != APPLICATION_ID && !(app_id == 0 && version == 0 && tables == 0)) {
        fe_errf(err, err_len, "%s is not a ferry store (it holds other data); use another path",
                path);
        return FE_ERR_STORE;
    }
    if (version > FE_SQLSTORE_SCHEMA_VERSION) {
        fe_errf(err, err_len,
                "store %s was written by a newer ferryd (schema %lld, this one knows up to %d)",
                path, version, FE_SQLSTORE_SCHEMA_VERSION);
        return FE_ERR_STORE;
    }
    for (long long v = version; v < FE_SQLSTORE_SCHEMA_VERSION; v++) {
        char tail[96];
        snprintf(tail, sizeof(tail), "PRAGMA user_version = %lld; PRAGMA application_id = %d;",
                 v + 1, APPLICATION_ID);
        rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(s->db, migrations[v], NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(s->db, tail, NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
            open_failed(s, path, rc, err, err_len);
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
            return FE_ERR_STORE;
        }
    }
    return 0;
}

static int setup(fe_sqlstore *s, const char *path, char *err, size_t err_len)
{
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, FE_SQLSTORE_BUSY_TIMEOUT_MS);
    /* Before SQLite creates -wal and -shm, which copy the file's mode. */
    (void)chmod(path, S_IRUSR | S_IWUSR);

    char res[160];
    int rc = query_text(s->db, "PRAGMA quick_check", res, sizeof(res));
    if (is_damage(rc)) {
        damaged(path, sqlite3_errmsg(s->db), err, err_len);
        return FE_ERR_STORE;
    }
    if (rc != SQLITE_OK) {
        open_failed(s, path, rc, err, err_len);
        return FE_ERR_STORE;
    }
    if (strcmp(res, "ok") != 0) {
        damaged(path, res, err, err_len);
        return FE_ERR_STORE;
    }
    rc = query_text(s->db, "PRAGMA journal_mode = WAL", res, sizeof(res));
    if (rc != SQLITE_OK) {
        open_failed(s, path, rc, err, err_len);
        return FE_ERR_STORE;
    }
    if (strcmp(res, "wal") != 0) {
        fe_errf(err, err_len, "cannot open store %s: WAL mode refused (journal mode %s)", path,
                res);
        return FE_ERR_STORE;
    }
    sqlite3_wal_hook(s->db, wal_hook, s); /* also turns off automatic checkpoints */
    /* FULL: see the header. The size limit trims the WAL after a checkpoint,
     * so one burst of writes does not keep its space on a small SD card. The
     * cache size is set, not left to how SQLite was built (see the header). */
    char pragmas[160];
    snprintf(pragmas, sizeof(pragmas),
             "PRAGMA synchronous = FULL; PRAGMA journal_size_limit = 8388608; "
             "PRAGMA cache_size = -%d",
             FE_SQLSTORE_CACHE_KIB);
    rc = sqlite3_exec(s->db, pragmas, NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        open_failed(s, path, rc, err, err_len);
        return FE_ERR_STORE;
    }
    int mrc = migrate(s, path, err, err_len);
    if (mrc != 0)
        return mrc;
    for (int i = 0; i < ST_COUNT; i++) {
        rc = sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL);
        if (rc != SQLITE_OK) {
            /* Our SQL is fixed, so this means a schema changed behind our back. */
            fe_errf(err, err_len, "store %s: cannot prepare statement %d: %s", path, i,
                    sqlite3_errmsg(s->db));
            return FE_ERR_STORE;
        }
    }
    return 0;
}

int fe_sqlstore_open(fe_sqlstore **out, const char *path, char *err, size_t err_len)
{
    if (!out)
        return FE_ERR_INVALID;
    *out = NULL;
    if (!path || !*path) {
        fe_errf(err, err_len, "no store path given");
        return FE_ERR_INVALID;
    }
    fe_sqlstore *s = calloc(1, sizeof(*s));
    if (!s) {
        fe_errf(err, err_len, "out of memory opening store %s", path);
        return FE_ERR_NOMEM;
    }
    /* NOMUTEX: one thread uses a store, so SQLite's own locking is waste. */
    int rc = sqlite3_open_v2(
        path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    int ret;
    if (rc != SQLITE_OK) {
        open_failed(s, path, rc, err, err_len);
        ret = s->db ? FE_ERR_STORE : FE_ERR_NOMEM;
    } else {
        ret = setup(s, path, err, err_len);
    }
    if (ret != 0) {
        fe_sqlstore_close(s);
        return ret;
    }
    *out = s;
    return 0;
}

void fe_sqlstore_close(fe_sqlstore *s)
{
    if (!s)
        return;
    if (s->db && s->st[ST_COMMIT])
        (void)fe_sqlstore_commit(s);
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->st[i]); /* accepts NULL */
    sqlite3_close(s->db);           /* accepts NULL */
    free(s);
}
