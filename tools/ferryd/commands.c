/* The control commands of docs/API.md. Each handler checks its arguments,
 * asks the engine or the store, and returns its result object; the control
 * server (platform/ctl.c) does the framing and error replies. */
#include "ferryd.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
#define HAVE_MALLINFO2 1
#include <malloc.h>
#endif

#include <sodium.h>

#include "log.h"
#ifdef FE_HAVE_SERIAL
#include "serial.h"
#endif
#ifdef FE_HAVE_RFCOMM
#include "rfcomm.h"
#endif

#define HEX_ID (2 * FE_MSG_ID_BYTES)
#define HEX_ADDR (2 * FE_ADDR_BYTES)
#define HEX_GROUP (2 * FE_GROUP_ID_BYTES)
#define HEX_KEY (2 * FE_GROUP_KEY_BYTES)
#define ADDR_PREFIX_MIN 4 /* hex digits: shorter prefixes match too many users to be useful */
#define INVITE_PREFIX "ferry-invite:"
#define ANNOUNCE_GAP_MS 60000u
#define SHOWN_MAX 40 /* bytes of a user-supplied string quoted in an error */

static cJSON *fail(fe_ctl_error *err, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static cJSON *fail(fe_ctl_error *err, const char *code, const char *fmt, ...)
{
    va_list ap;
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    return NULL;
}

/* An engine or store failure as the reply the API documents. */
static cJSON *engine_fail(fe_daemon *d, fe_ctl_error *err, int rc, const char *what)
{
    switch (rc) {
    case FE_ERR_UNKNOWN_KEY:
        return fail(err, "unknown_user", "the key of %.*s is not known yet (no announce heard)",
                    SHOWN_MAX, what);
    case FE_ERR_TOOBIG:
        return fail(err, "too_big", "message text over %d bytes", FE_TEXT_MAX);
    case FE_ERR_FULL:
        return fail(err, "full", "the outbox or this node's quota is full: try later");
    case FE_ERR_NOTFOUND:
        return fail(err, "not_found", "%.*s not found", SHOWN_MAX, what);
    case FE_ERR_STORE:
        return fail(err, "store", "the database failed (%s); the request was NOT accepted",
                    fe_sqlstore_errmsg(d->sql));
    case FE_ERR_INVALID:
        return fail(err, "bad_request", "%.*s: invalid request", SHOWN_MAX, what);
    default:
        return fail(err, "internal", "%s", fe_strerror(rc));
    }
}

/* --- arguments --- */

static const char *arg_string(const cJSON *req, const char *key, fe_ctl_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, key);
    if (!cJSON_IsString(v) || !v->valuestring) {
        fail(err, "bad_request", "\"%s\" must be given as a string", key);
        return NULL;
    }
    return v->valuestring;
}

static int arg_bool(const cJSON *req, const char *key, int def, int *out, fe_ctl_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, key);
    *out = def;
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsBool(v)) {
        fail(err, "bad_request", "\"%s\" must be true or false", key);
        return -1;
    }
    *out = cJSON_IsTrue(v);
    return 0;
}

/* A whole number >= 0; values above max are taken as max. */
static int arg_count(const cJSON *req, const char *key, size_t def, size_t max, size_t *out,
                     fe_ctl_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, key);
    *out = def;
    if (!v || cJSON_IsNull(v))
        return 0;
    double x = cJSON_IsNumber(v) ? v->valuedouble : -1;
    if (!(x >= 0) || (x < (double)max && x != (double)(size_t)x)) {
        fail(err, "bad_request", "\"%s\" must be a whole number >= 0", key);
        return -1;
    }
    *out = x >= (double)max ? max : (size_t)x;
    return 0;
}

static int all_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return 0;
    }
    return n > 0;
}

/* Exactly 2 * len hex digits into bin. 0 or -1. */
static int parse_hex(uint8_t *bin, size_t len, const char *s)
{
    size_t got = 0;
    if (strlen(s) != 2 * len || !all_hex(s, 2 * len))
        return -1;
    return sodium_hex2bin(bin, len, s, 2 * len, NULL, &got, NULL) == 0 && got == len ? 0 : -1;
}

/* A local or announced name: 1..FE_NAME_MAX bytes, no control characters. */
static int check_name(const char *name, fe_ctl_error *err)
{
    size_t n = strlen(name);
    if (n == 0 || n > FE_NAME_MAX) {
        fail(err, "bad_request", "a name must have 1 to %d bytes", FE_NAME_MAX);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f) {
            fail(err, "bad_request", "a name must not contain control characters");
            return -1;
        }
    return 0;
}

/* --- JSON building --- */

/* Bytes as a JSON string: JSON wants valid UTF-8 and cJSON stops at NUL, so
 * invalid sequences and NULs become U+FFFD. NULL when out of memory. */
static char *clean_utf8(const uint8_t *p, size_t n)
{
    char *out = malloc(3 * n + 1); /* each bad byte may become 3 */
    size_t o = 0;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n;) {
        uint8_t c = p[i];
        size_t len = 0;
        uint32_t cp = 0;
        if (c >= 0x01 && c < 0x80) {
            out[o++] = (char)c;
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF)
            len = 2, cp = c & 0x1Fu;
        else if (c >= 0xE0 && c <= 0xEF)
            len = 3, cp = c & 0x0Fu;
        else if (c >= 0xF0 && c <= 0xF4)
            len = 4, cp = c & 0x07u;
        if (len && i + len <= n) {
            size_t k = 1;
            for (; k < len && (p[i + k] & 0xC0) == 0x80; k++)
                cp = cp << 6 | (p[i + k] & 0x3Fu);
            int bad = k != len || (len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
                      (len == 4 && (cp < 0x10000 || cp > 0x10FFFF));
            if (!bad) {
                memcpy(out + o, p + i, len);
                o += len;
                i += len;
                continue;
            }
        }
        memcpy(out + o, "\xEF\xBF\xBD", 3);
        o += 3;
        i++;
    }
    out[o] = '\0';
    return out;
}

static int add_text(cJSON *o, const char *key, const void *p, size_t n)
{
    char *s = clean_utf8(p, n);
    int ok = s && cJSON_AddStringToObject(o, key, s);
    free(s);
    return ok;
}

static int add_hex(cJSON *o, const char *key, const uint8_t *bin, size_t n)
{
    char hex[2 * FE_PK_BYTES + 1];
    sodium_bin2hex(hex, sizeof(hex), bin, n);
    return cJSON_AddStringToObject(o, key, hex) != NULL;
}

static int add_num(cJSON *o, const char *key, uint64_t v)
{
    return cJSON_AddNumberToObject(o, key, (double)v) != NULL;
}

static uint64_t ago_s(uint64_t now, uint64_t then)
{
    return now > then ? (now - then) / 1000u : 0;
}

/* An object, or NULL (and freed) if any part failed. */
static cJSON *done(cJSON *o, int ok)
{
    if (ok)
        return o;
    cJSON_Delete(o);
    return NULL;
}

static cJSON *oom(fe_ctl_error *err)
{
    return fail(err, "internal", "out of memory");
}

static cJSON *empty(fe_ctl_error *err)
{
    cJSON *o = cJSON_CreateObject();
    return o ? o : oom(err);
}

static fe_daemon_group *group_by_id(fe_daemon *d, const uint8_t id[FE_GROUP_ID_BYTES])
{
    for (size_t i = 0; i < FE_GROUPS_MAX; i++)
        if (d->groups[i].in_use && memcmp(d->groups[i].rec.id, id, FE_GROUP_ID_BYTES) == 0)
            return &d->groups[i];
    return NULL;
}

static fe_daemon_group *group_by_name(fe_daemon *d, const char *name)
{
    for (size_t i = 0; i < FE_GROUPS_MAX; i++)
        if (d->groups[i].in_use && strcmp(d->groups[i].rec.name, name) == 0)
            return &d->groups[i];
    return NULL;
}

cJSON *fe_daemon_user_json(fe_daemon *d, const fe_dir_rec *u, uint64_t now_ms)
{
    uint8_t addr[FE_ADDR_BYTES];
    char fpr[FE_DAEMON_FPR_BUF];
    fe_dir_rec holder;
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    fe_ident_addr(addr, u->pk);
    fe_ident_fingerprint(fpr, sizeof(fpr), u->pk);
    /* The engine keeps a name with its first key; a later key claiming it
     * is the conflicting one. */
    int conflict = u->name[0] && fe_node_user_by_name(d->node, &holder, u->name) == 0 &&
                   memcmp(holder.pk, u->pk, FE_PK_BYTES) != 0;
    int ok = add_text(o, "name", u->name, strnlen(u->name, sizeof(u->name))) &&
             add_hex(o, "address", addr, FE_ADDR_BYTES) &&
             cJSON_AddStringToObject(o, "fingerprint", fpr) &&
             cJSON_AddBoolToObject(o, "online", u->online) &&
             add_num(o, "last_seen_s_ago", ago_s(now_ms, u->last_seen_ms)) &&
             cJSON_AddBoolToObject(o, "verified", u->verified || fe_daemon_is_verified(d, u->pk)) &&
             cJSON_AddBoolToObject(o, "name_conflict", conflict);
    return done(o, ok);
}

static const char *type_name(uint8_t type)
{
    return type == FE_T_GROUP ? "group" : type == FE_T_ANON ? "anonymous" : "private";
}

cJSON *fe_daemon_message_json(fe_daemon *d, const fe_inbox_rec *m, uint64_t now_ms)
{
    static const uint8_t zero[FE_ADDR_BYTES];
    fe_dir_rec from;
    const char *from_name = "";
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    int anon = m->type == FE_T_ANON || memcmp(m->from, zero, FE_ADDR_BYTES) == 0;
    if (!anon && fe_node_user_by_addr(d->node, &from, m->from, FE_ADDR_BYTES) == 0)
        from_name = from.name;
    const fe_daemon_group *g = m->type == FE_T_GROUP ? group_by_id(d, m->group) : NULL;
    int ok = add_hex(o, "message_id", m->id, FE_MSG_ID_BYTES) &&
             cJSON_AddStringToObject(o, "type", type_name(m->type)) &&
             (anon ? cJSON_AddStringToObject(o, "from", "") != NULL
                   : add_hex(o, "from", m->from, FE_ADDR_BYTES)) &&
             add_text(o, "from_name", from_name, strlen(from_name)) &&
             (m->type == FE_T_GROUP ? add_hex(o, "group_id", m->group, FE_GROUP_ID_BYTES)
                                    : cJSON_AddStringToObject(o, "group_id", "") != NULL) &&
             add_text(o, "group_name", g ? g->rec.name : "", g ? strlen(g->rec.name) : 0) &&
             add_text(o, "text", m->text, m->text_len) &&
             add_num(o, "received_s_ago", ago_s(now_ms, m->received_ms));
    return done(o, ok);
}

/* --- links and transports --- */

static const char *transport_type(enum fe_dtransport_type t)
{
    switch (t) {
    case FE_DT_UDP:
        return "udp";
    case FE_DT_SERIAL:
        return "serial";
    case FE_DT_RFCOMM:
        return "rfcomm";
    }
    return "unknown";
}

/* udp: the driver's counters. */
static int udp_fields(cJSON *o, const fe_dtransport *tr)
{
    fe_udp_stats st;
    fe_udp_get_stats(tr->t, &st);
    return add_num(o, "rx_frames", st.rx_frames) && add_num(o, "tx_frames", st.tx_frames) &&
           add_num(o, "rx_dropped", st.rx_dropped) && add_num(o, "tx_errors", st.tx_errors) &&
           add_num(o, "port", fe_udp_port(tr->t));
}

/* serial: the driver's counters, its port and its airtime. */
static int serial_fields(cJSON *o, const fe_dtransport *tr, uint64_t now)
{
#ifdef FE_HAVE_SERIAL
    fe_serial_stats st;
    fe_serial_get_stats(tr->t, now, &st);
    uint64_t tx_errors =
        st.tx_dropped + st.tx_too_big + st.tx_over_budget + st.tx_lost + st.modem_errors;
    int ok = add_num(o, "rx_frames", st.frames_in) && add_num(o, "tx_frames", st.frames_out) &&
             add_num(o, "rx_dropped", st.crc_errors + st.rx_rejects) &&
             add_num(o, "tx_errors", tx_errors) &&
             cJSON_AddStringToObject(o, "port_state", st.is_open ? "open" : "retrying") &&
             add_num(o, "opens", st.opens) && add_num(o, "reopens", st.reopens) &&
             add_num(o, "queued", st.queued) &&
             add_num(o, "airtime_used_ms", st.airtime_window_us / 1000u) &&
             add_num(o, "airtime_window_s", tr->airtime_window_ms / 1000u) &&
             (st.airtime_budget_us == UINT64_MAX
                  ? cJSON_AddNullToObject(o, "airtime_budget_ms") != NULL
                  : add_num(o, "airtime_budget_ms", st.airtime_budget_us / 1000u)) &&
             add_num(o, "airtime_total_ms", st.airtime_us / 1000u) &&
             add_num(o, "crc_errors", st.crc_errors) && add_num(o, "rx_rejects", st.rx_rejects) &&
             add_num(o, "tx_dropped", st.tx_dropped) && add_num(o, "tx_too_big", st.tx_too_big) &&
             add_num(o, "tx_over_budget", st.tx_over_budget) && add_num(o, "tx_lost", st.tx_lost) &&
             add_num(o, "modem_errors", st.modem_errors) &&
             add_num(o, "tx_retries", st.tx_retries) && add_num(o, "budget_waits", st.budget_waits);
    return ok;
#else
    (void)o;
    (void)tr;
    (void)now;
    return 0;
#endif
}

static void peer_address(char *out, size_t cap, const fe_dlink *l)
{
    snprintf(out, cap, "unknown");
#ifdef FE_HAVE_RFCOMM
    fe_bt_addr a;
    if (l->tr->type == FE_DT_RFCOMM && fe_rfcomm_peer_addr(l->tr->t, l->peer, &a) == 0)
        fe_bt_addr_format(out, cap, &a);
#else
    (void)l;
#endif
}

cJSON *fe_daemon_link_json(fe_daemon *d, const fe_dlink *l)
{
    const fe_dtransport *tr = l->tr;
    uint64_t now = fe_daemon_now(d);
    char detail[512], name[96], peer[32] = "";
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    fe_links_describe(tr, detail, sizeof(detail));
    if (tr->type == FE_DT_RFCOMM) {
        peer_address(peer, sizeof(peer), l);
        snprintf(name, sizeof(name), "%s %s", tr->name, peer);
    } else {
        snprintf(name, sizeof(name), "%s", tr->name);
    }
    int ok = cJSON_AddStringToObject(o, "name", name) &&
             cJSON_AddStringToObject(o, "transport", transport_type(tr->type)) &&
             add_num(o, "link_id", l->id) &&
             cJSON_AddStringToObject(o, "kind", l->peer ? "p2p" : "broadcast") &&
             add_num(o, "mtu", tr->t->ops->mtu(tr->t)) && cJSON_AddBoolToObject(o, "up", l->up) &&
             (l->up ? add_num(o, "up_s", ago_s(now, l->up_ms))
                    : cJSON_AddNullToObject(o, "up_s") != NULL);
    switch (tr->type) {
    case FE_DT_UDP:
        ok = ok && udp_fields(o, tr);
        break;
    case FE_DT_SERIAL:
        ok = ok && serial_fields(o, tr, now);
        break;
    case FE_DT_RFCOMM:
        /* The driver counts for all peers together: these are the link's own. */
        ok = ok && cJSON_AddStringToObject(o, "peer", peer) &&
             add_num(o, "rx_frames", l->rx_frames) && add_num(o, "tx_frames", l->tx_frames) &&
             add_num(o, "rx_dropped", 0) && add_num(o, "tx_errors", l->tx_refused);
        break;
    }
    ok = ok && cJSON_AddStringToObject(o, "detail", detail);
    return done(o, ok);
}

/* Every link: broadcast ones in id order (udp, then serial), then p2p. */
static cJSON *links_json(fe_daemon *d)
{
    cJSON *a = cJSON_CreateArray();
    uint32_t last = 0;
    for (size_t round = 0; a && round < FE_DAEMON_LINKS_MAX; round++) {
        const fe_dlink *next = NULL;
        for (size_t i = 0; i < FE_DAEMON_LINKS_MAX; i++) {
            const fe_dlink *l = &d->links[i];
            if (l->id > last && (!next || l->id < next->id))
                next = l;
        }
        if (!next)
            break;
        last = next->id;
        cJSON *l = fe_daemon_link_json(d, next);
        if (!l || !cJSON_AddItemToArray(a, l)) {
            cJSON_Delete(l);
            return done(a, 0);
        }
    }
    return a;
}

#ifdef FE_HAVE_RFCOMM
static const char *rfcomm_state_name(enum fe_rfcomm_state s)
{
    switch (s) {
    case FE_RFCOMM_CLOSED:
        return "closed";
    case FE_RFCOMM_RUNNING:
        return "running";
    case FE_RFCOMM_NO_KERNEL:
        return "no_kernel_support";
    case FE_RFCOMM_NO_ADAPTER:
        return "no_adapter";
    case FE_RFCOMM_ADAPTER_DOWN:
        return "adapter_down";
    case FE_RFCOMM_NO_PERMISSION:
        return "no_permission";
    }
    return "unknown";
}
#endif

/* One object per transport, links or not (an RFCOMM with no adapter has
 * none, but its state is what the user wants to see). */
static cJSON *transports_json(fe_daemon *d)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < d->tr_count; i++) {
        const fe_dtransport *tr = &d->tr[i];
        char detail[512];
        size_t up = 0;
        for (size_t k = 0; k < FE_DAEMON_LINKS_MAX; k++)
            up += d->links[k].id && d->links[k].tr == tr && d->links[k].up;
        fe_links_describe(tr, detail, sizeof(detail));
        cJSON *o = cJSON_CreateObject();
        int ok = o && cJSON_AddStringToObject(o, "name", tr->name) &&
                 cJSON_AddStringToObject(o, "transport", transport_type(tr->type)) &&
                 cJSON_AddBoolToObject(o, "open", tr->open) && add_num(o, "links_up", up) &&
                 cJSON_AddStringToObject(o, "detail", detail);
#ifdef FE_HAVE_RFCOMM
        if (ok && tr->type == FE_DT_RFCOMM) {
            fe_rfcomm_stats st;
            fe_rfcomm_get_stats(tr->t, &st);
            ok = cJSON_AddStringToObject(o, "state",
                                         rfcomm_state_name(fe_rfcomm_get_state(tr->t))) &&
                 add_num(o, "channel", fe_rfcomm_channel(tr->t)) && add_num(o, "dials", st.dials) &&
                 add_num(o, "dial_failures", st.dial_failures) &&
                 add_num(o, "accepted", st.accepted) &&
                 add_num(o, "rx_bad_frames", st.rx_bad_frames) &&
                 add_num(o, "tx_refused", st.tx_refused);
        }
#endif
        if (!done(o, ok) || !cJSON_AddItemToArray(a, o)) {
            if (ok)
                cJSON_Delete(o);
            return done(a, 0);
        }
    }
    return a;
}

/* --- users and groups named in requests --- */

typedef struct prefix_match {
    const char *prefix;
    size_t len, count;
    fe_dir_rec found;
} prefix_match;

static int match_prefix(void *ctx, const fe_dir_rec *u)
{
    prefix_match *m = ctx;
    uint8_t addr[FE_ADDR_BYTES];
    char hex[HEX_ADDR + 1];
    fe_ident_addr(addr, u->pk);
    fe_addr_to_hex(hex, sizeof(hex), addr);
    if (strncasecmp(hex, m->prefix, m->len) == 0) {
        m->count++;
        m->found = *u;
    }
    return 0;
}

/* A user by exact name, else by address prefix (4 to 32 hex digits). */
static int resolve_user(fe_daemon *d, const char *who, fe_dir_rec *out, fe_ctl_error *err)
{
    size_t n = strlen(who);
    if (n == 0) {
        fail(err, "bad_request", "no user given");
        return -1;
    }
    if (fe_node_user_by_name(d->node, out, who) == 0)
        return 0;
    if (n < ADDR_PREFIX_MIN || n > HEX_ADDR || !all_hex(who, n)) {
        fail(err, "unknown_user", "no user named '%.*s' is known yet (no announce heard)",
             SHOWN_MAX, who);
        return -1;
    }
    int rc = FE_ERR_NOTFOUND;
    if (n % 2 == 0) {
        uint8_t prefix[FE_ADDR_BYTES];
        int len = fe_addr_from_hex(prefix, who);
        rc = len > 0 ? fe_node_user_by_addr(d->node, out, prefix, (size_t)len) : FE_ERR_NOTFOUND;
    } else {
        /* Half a byte at the end: compare digits instead. */
        prefix_match m = {.prefix = who, .len = n};
        fe_node_users(d->node, match_prefix, &m);
        rc = m.count == 1 ? 0 : m.count > 1 ? FE_ERR_INVALID : FE_ERR_NOTFOUND;
        if (rc == 0)
            *out = m.found;
    }
    if (rc == FE_ERR_INVALID) {
        fail(err, "ambiguous_user",
             "address prefix %s matches more than one user: give more digits", who);
        return -1;
    }
    if (rc != 0) {
        fail(err, "unknown_user", "no user with address %s is known yet (no announce heard)", who);
        return -1;
    }
    return 0;
}

/* A group by its 32-digit id or its local name. */
static fe_daemon_group *resolve_group(fe_daemon *d, const char *s, fe_ctl_error *err)
{
    uint8_t id[FE_GROUP_ID_BYTES];
    fe_daemon_group *g = NULL;
    if (parse_hex(id, sizeof(id), s) == 0)
        g = group_by_id(d, id);
    if (!g)
        g = group_by_name(d, s);
    if (!g)
        fail(err, "not_found", "no group '%.*s' here (see `groups`)", SHOWN_MAX, s);
    return g;
}

/* --- commands --- */

static cJSON *cmd_id(void *ctx, fe_ctl_client *cl, const cJSON *req, fe_ctl_error *err)
{
    fe_daemon *d = ctx;
    char fpr[FE_DAEMON_FPR_BUF];
    (void)cl;
    (void)req;
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return oom(err);
    fe_ident_fingerprint(fpr, sizeof(fpr), d->id.pk);
    int ok = add_text(o, "name", d->ncfg.name, strlen(d->ncfg.name)) &&
             add_hex(o, "address", d->id.addr, FE_ADDR_BYTES) &&
             cJSON_AddStringToObject(o, "fingerprint", fpr) &&
             add_hex(o, "public_key", d->id.pk, FE_PK_BYTES);
    return done(o, ok) ? o : oom(err);
}

/* Queue text to user u; writes the message id. */
static int send_private(fe_daemon *d, uint8_t id[FE_MSG_ID_BYTES], const fe_dir_rec *u,
                        const char *text, unsigned flags, fe_ctl_error *err)
{
    uint8_t to[FE_ADDR_BYTES];
    size_t len = strlen(text);
    if (len > FE_TEXT_MAX) {
        fail(err, "too_big", "message text is %zu bytes; at most %d", len, FE_TEXT_MAX);
        return -1;
    }
    fe_ident_addr(to, u->pk);
    int rc = fe_node_send(d->node, id, to, (const uint8_t *)text, len, flags, fe_daemon_now(d));
    if (rc != 0) {
        engine_fail(d, err, rc, u->name[0] ? u->name : "this user");
        return -1;
    }
    return 0;
}

static cJSON *cmd_send(void *ctx, fe_ctl_client *cl, const cJSON *req, fe_ctl_error *err)
{
    fe_daemon *d = ctx;
    fe_dir_rec u;
    uint8_t id[FE_MSG_ID_BYTES], to[FE_ADDR_BYTES];
    int anon;
    (void)cl;
    const char *who = arg_string(req, "to", err);
    const char *text = who ? arg_string(req, "text", err) : NULL;
    if (!text || arg_bool(req, "anonymous", 0, &anon, err) != 0)
        return NULL;
    if (resolve_user(d, who, &u, err) != 0 ||
        send_private(d, id, &u, text, anon ? FE_SEND_ANONYMOUS : 0, err) != 0)
        return NULL;
    fe_ident_addr(to, u.pk);
    cJSON *o = cJSON_CreateObject();
    int ok = o && add_hex(o, "message_id", id, FE_MSG_ID_BYTES) &&
             add_hex(o, "to", to, FE_ADDR_BYTES) &&
             add_text(o, "to_name", u.name, strnlen(u.name, sizeof(u.name)));
    return done(o, ok) ? o : oom(err);
}

static cJSON *cmd_status(void *ctx, fe_ctl_client *cl, const cJSON *req, fe_ctl_error *err)
{
    fe_daemon *d = ctx;
    uint8_t id[FE_MSG_ID_BYTES];
    fe_sent_rec r;
    (void)cl;
    const char *s = arg_string(req, "message_id", err);
    if (!s)
        return NULL;
    if (parse_hex(id, sizeof(id), s) != 0)
        return fail(err, "bad_request", "a message id is %d hex digits", HEX_ID);
    int rc = fe_sqlstore_sent_get(d->sql, id, &r);
    if (rc == FE_ERR_NOTFOUND)
        return fail(err, "not_found", "no message %s was sent from this node", s);
    if (rc != 0)
        return engine_fail(d, err, rc, s);
    uint64_t now = fe_daemon_now(d);
    /* Our own copy leaves the outbox only with the receipt or at the end of
     * its lifetime: not delivered and no longer held means it expired. */
    const char *state = r.delivered_ms                 ? "delivered"
                        : fe_node_holds(d->node, r.id) ? "queued"
                                                       : "expired";
    cJSON *o = cJSON_CreateObject();
    int ok = o && add_hex(o, "message_id", id, FE_MSG_ID_BYTES) &&
             cJSON_AddStringToObject(o, "state", state) && add_hex(o, "to", r.to, FE_ADDR_BYTES) &&
             cJSON_AddStringToObject(o, "type", type_name(r.type)) &&
             add_num(o, "age_s", ago_s(now, r.sent_ms)) &&
             (r.delivered_ms ? add_num(o, "delivered_after_s", ago_s(r.delivered_ms, r.sent_ms))
                             : cJSON_AddNullToObject(o, "delivered_after_s") != NULL);
    return done(o, ok) ? o : oom(err);
}

typedef struct inbox_walk {
    fe_daemon *d;
    cJSON *list;
    int64_t *unshown;
    size_t unshown_count;
    uint64_t now;
    int failed;
} inbox_walk;

static int inbox_row(void *ctx, int64_t rowid, const fe_inbox_rec *r, int shown)
{
    inbox_walk *w = ctx;
    cJSON *m = fe_daemon_message_json(w->d, r, w->now);
    if (!m || !add_num(m, "seq", (uint64_t)rowid) || !cJSON_AddItemToArray(w->list, m)) {
        cJSON_Delete(m);
        w->failed = 1;
        return 1;
    }
    if (!shown)
        w->unshown[w->unshown_count++] = rowid;
    return 0;
}

static cJSON *cmd_inbox(void *ctx, fe_ctl_client *cl, const cJSON *req, fe_ctl_error *err)
{
    fe_daemon *d = ctx;
    int unread_only, mark_read;
    size_t limit, after;
    (void)cl;
    if (arg_bool(req, "unread_only", 1, &unread_only, err) != 0 ||
        arg_bool(req, "mark_read", 1, &mark_read, err) != 0 ||
        arg_count(req, "limit", 100, FE_DAEMON_INBOX_LIMIT_MAX, &limit, err) != 0 ||
        arg_count(req, "after", 0, (size_t)INT64_MAX, &after, err) != 0)
        return NULL;
    /* "after" pages through the whole inbox, read or not. */
    int paging = cJSON_GetObjectItemCaseSensitive(req, "after") != NULL;
    if (limit == 0)
        limit = FE_DAEMON_INBOX_LIMIT_MAX; /* "all" as far as one reply goes */
    cJSON *o = cJSON_CreateObject();
    inbox_walk w = {.d = d, .now = fe_daemon_now(d), .unshown = malloc(limit * sizeof(int64_t))};
    w.list = o ? cJSON_AddArrayToObject(o, "messages") : NULL;
    if (!w.list || !w.unshown) {
        free(w.unshown);
        cJSON_Delete(o);
        return oom(err);
    }
    int rc = paging ? fe_sqlstore_inbox_after(d->sql, (int64_t)after, limit, inbox_row, &w)
                    : fe_sqlstore_inbox_list(d->sql, unread_only, limit, inbox_row, &w);
    if (rc != 0 || w.failed) {
        free(w.unshown);
        cJSON_Delete(o);
        return w.failed ? oom(err) : engine_fail(d, err, rc, "inbox");
    }
    /* Marked in the turn's transaction; should that fail, the messages are
     * shown again later (the turn is rolled back like any failed write). */
    for (size_t i = 0; mark_read && i < w.unshown_count; i++)
        if (fe_daemon_batch(d) != 0 ||
            fe_daemon_wrote(d, fe_sqlstore_inbox_mark_shown(d->sql, w.unshown[i])) != 0) {
            fe_log(FE_LOG_WARN, "store %s: cannot mark inbox messages read: %s", d->db_path,
                   fe_sqlstore_errmsg(d->sql));
            break;
        }
    free(w.unshown);
    return o;
}

typedef struct users_walk {
    fe_daemon *d;
    cJSON *list;
    int filter; /* -1 all, else the online value wanted */
    uint64_t now;
    int failed;
} users_walk;

static int users_row(void *ctx, const fe_dir_rec *u)
{
    users_walk *w = ctx;
    if (w->filter >= 0 && (int)u->online != w->filter)
        return 0;
    cJSON *j = fe_daemon_user_json(w->d, u, w->now);
    if (!j || !cJSON_AddItemToArray(w->list, j)) {
        cJSON_Delete(j);
        w->failed = 1;
        return 1;
    }
    return 0;
}

static cJSON *cmd_users(void *ctx, fe_ctl_client *cl, const cJSON *req, fe_ctl_error *err)
{
    fe_daemon *d = ctx;
    const char *f = "all";
    (void)cl;
    if (cJSON_GetObjectItemCaseSensitive(req, "filter") && !(f = arg_string(req, "filter", err)))
        return NULL;
    users_walk w = {.d = d, .now = fe_daemon_now(d), .filter = -1};
    if (strcmp(f, "online") == 0)
        w.filter = 1;
    else if (strcmp(f, "offline") == 0)
        w.filter = 0;
    else if (strcmp(f, "all") != 0)
        return fail(err, "bad_request", "\"filter\" is \"all\", \"online\" or \"offline\"");
    cJSON *o = cJSON_CreateObject();
    w.list = o ? cJSON_AddArrayToObject(o, "users") : NULL;
    if (!w.list) {
        cJSON_Delete(o);
        return oom(err);
    }
    fe_node_users(d->node, users_row, &w);
    return done(o, !w.failed) ? o : oom(err);
}

static cJSON *cmd_peers(void *ctx, fe_ctl_client *cl, const cJSON *req, fe_ctl_error *err)
{
    fe_daemon *d = ctx;
    (void)cl;
    (void)req;
    cJSON *o = cJSON_CreateObject(), *links = links_json(d), *trs = transports_json(d);
    int ok = o && links && trs;
    if (ok && cJSON_AddItemToObject(o, "links", links))
        links = NULL;
    else
        ok = 0;
    if (ok && cJSON_AddItemToObject(o, "transports", trs))
        trs = NULL;
    else
        ok = 0;
    cJSON_Delete(links);
    cJSON_Delete(trs);
    return done(o, ok) ? o : oom(err);
}

#ifdef FE_HAVE_SERIAL
typedef struct port_walk {
    cJSON *list;
    int failed;
} port_walk;

static void port_row(void *ctx, const fe_serial_port_info *p)
{
    port_walk *w = ctx;
    char usb[16];
    cJSON *o = cJSON_CreateObject();
    snprintf(usb, sizeof(usb), "%04x:%04x", p->usb_vid, p->usb_pid);
    int ok = o && add_text(o, "path", p->path, strlen(p->path)) &&
             add_text(o, "description", p->description, strlen(p->description)) &&
             (p->usb ? cJSON_AddStringToObject(o, "usb_id", usb) != NULL
                     : cJSON_AddNullToObject(o, "usb_id") != NULL) &&
             add_text(o, "usb_serial", p->usb_serial, strlen(p->usb_serial)) &&
             add_text(o, "manufacturer", p->manufacturer, strlen(p->manufacturer)) &&
             add_text(o, "product", p->product, strlen(p->product));
    if (!done(o, ok) || !cJSON_AddItemToArray(w->list, o)) {
        if (ok)
            cJSON_Delete(o);
        w->failed = 1;
    }
}
#endif

static cJSON *cmd_ports(void *ctx, fe_ctl_client *cl, const cJSON *req, fe_ctl_error *err)
{
    (void)ctx;
    (void)cl;
    (void)req;
#ifdef FE_HAVE_SERIAL
    port_walk w = {cJSON_CreateArray(), 0};
    if (!w.list)
        return oom(err);
    int rc = fe_serial_list_ports(port_row, &w);
    if (rc < 0) {
        cJSON_Delete(w.list);
        return fail(err, "internal", "cannot list the serial ports: %s", fe_strerror(rc));
    }
    cJSON *o = cJSON_CreateObject();
    int ok = !w.failed && o && cJSON_AddItemToObject(o, "ports", w.list);
    if (!ok)
        cJSON_Delete(w.list);
    return done(o, ok) ? o : oom(err);
#else
    return fail(err, "internal", "this ferryd was built without serial support (libserialport)");
#endif
}

static cJSON *cmd_announce(void *ctx, fe_ctl_client *cl, const cJSON *req, fe_ctl_error *err)
{
    fe_daemon *d = ctx;
    (void)cl;
    (void)req;
    int rc = fe_node_announce(d->node, fe_daemon_now(d));
    if (rc == FE_ERR_FULL)
        return fail(err, "full", "announced less than a minute ago: try again later");
    if (rc != 0)
        return engine_fail(d, err, rc, "announce");
    return empty(err);
}

static cJSON *cmd_verify(void *ctx, fe_ctl_client *cl, const cJSON *req, fe_ctl_error *err)
{
    fe_daemon *d = ctx;
    fe_dir_rec u;
    (void)cl;
    const char *who = arg_string(req, "user", err);
    if (!who || resolve_user(d, who, &u, err) != 0)
        return NULL;
    if (!fe_daemon_is_verified(d, u.pk)) {
        if (d->verified_count >= FE_DIR_CAPACITY)
            return fail(err, "full", "too many verified keys (%d)", FE_DIR_CAPACITY);
        memcpy(d->verified[d->verified_count++], u.pk, FE_PK_BYTES);
        if (fe_daemon_save_verified(d) != 0) {
            d->verified_count--;
            return engine_fail(d, err, FE_ERR_STORE, "verify");
        }
    }
    return empty(err);
}

static cJSON *group_json(const fe_daemon_group *g)
{
    cJSON *o = cJSON_CreateObject();
    int ok = o && add_hex(o, "group_id", g->rec.id, FE_GROUP_ID_BYTES) &&
             add_text(o, "name", g->rec.name, strlen(g->rec.name));
    return done(o, ok);
}

static cJSON *cmd_groups(void *ctx, fe_ctl_client *cl, const cJSON *req, fe_ctl_error *err)
{
    fe_daemon *d = ctx;
    (void)cl;
    (void)req;
    cJSON *o = cJSON_CreateObject();
    cJSON *list = o ? cJSON_AddArrayToObject(o, "groups") : NULL;
    int ok = list != NULL;
    for (size_t i = 0; ok && i < FE_GROUPS_MAX; i++) {
        if (!d->groups[i].in_use)
            continue;
        cJSON *g = group_json(&d->groups[i]);
        ok = g && cJSON_AddItemToArray(list, g);
        if (!ok)
            cJSON_Delete(g);
    }
    return done(o, ok) ? o : oom(err);
}

/* Join the group with key under name; returns its entry. */
static fe_daemon_group *join(fe_daemon *d, const uint8_t key[FE_GROUP_KEY_BYTES], const char *name,
                             fe_ctl_error *err)
{
    uint8_t id[FE_GROUP_ID_BYTES];
    int rc = fe_node_group_join(d->node, id, key, name, fe_daemon_now(d));
    if (rc == FE_ERR_FULL) {
        fail(err, "full", "this node is in %d groups already: leave one first", FE_GROUPS_MAX);
        return NULL;
    }
    if (rc != 0) {
        engine_fail(d, err, rc, name);
        return NULL;
    }
    fe_daemon_group *g = group_by_id(d, id);
    for (size_t i = 0; !g && i < FE_GROUPS_MAX; i++)
        if (!d->groups[i].in_use) {
            g = &d->groups[i];
            g->in_use = 1;
            memcpy(g->rec.id, id, sizeof(id));
            memcpy(g->rec.key, key, FE_GROUP_KEY_BYTES);
            snprintf(g->rec.name, sizeof(g->rec.name), "%s", name);
        }
    if (!g)
        fail(err, "internal", "group table out of step with the engine");
    return g;
}

static cJSON *cmd_group_create(void *ctx, fe_ctl_client *cl, const cJSON *req, fe_ctl_error *err)
{
    fe_daemon *d = ctx;
    uint8_t key[FE_GROUP_KEY_BYTES];
    char khex[HEX_KEY + 1], invite[sizeof(INVITE_PREFIX) + FE_NAME_MAX + HEX_KEY + 2];
    (void)cl;
    const char *name = arg_string(req, "name", err);
    if (!name || check_name(name, err) != 0)
        return NULL;
    if (group_by_name(d, name))
        return fail(err, "bad_request", "a group named '%s' exists here already", name);
    randombytes_buf(key, sizeof(key));
    fe_daemon_group *g = join(d, key, name, err);
    sodium_bin2hex(khex, sizeof(khex), key, sizeof(key));
    sodium_memzero(key, sizeof(key));
    if (!g)
        return NULL;
    snprintf(invite, sizeof(invite), "%s%s:%s", INVITE_PREFIX, g->rec.name, khex);
    sodium_memzero(khex, sizeof(khex));
    cJSON *o = group_json(g);
    int ok = o && cJSON_AddStringToObject(o, "invite", invite);
    sodium_memzero(invite, sizeof(invite));
    return done(o, ok) ? o : oom(err);
}

static cJSON *cmd_group_join(void *ctx, fe_ctl_client *cl, const cJSON *req, fe_ctl_error *err)
{
    fe_daemon *d = ctx;
    uint8_t key[FE_GROUP_KEY_BYTES];
    char name[FE_NAME_MAX + 1];
    (void)cl;
    const char *inv = arg_string(req, "invite", err);
    if (!inv)
        return NULL;
    size_t plen = strlen(INVITE_PREFIX);
    const char *colon = strrchr(inv, ':');
    /* The name may hold ':' itself: the key follows the last one. */
    if (strncmp(inv, INVITE_PREFIX, plen) != 0 || colon < inv + plen ||
        parse_hex(key, sizeof(key), colon + 1) != 0)
        return fail(err, "bad_request", "an invite looks like %sNAME:<%d hex digits>",
                    INVITE_PREFIX, HEX_KEY);
    size_t nlen = (size_t)(colon - (inv + plen));
    if (nlen > FE_NAME_MAX) {
        sodium_memzero(key, sizeof(key));
        return fail(err, "bad_request", "the group name in the invite is over %d bytes",
                    FE_NAME_MAX);
    }
    memcpy(name, inv + plen, nlen);
    name[nlen] = '\0';
    if (nlen && check_name(name, err) != 0) {
        sodium_memzero(key, sizeof(key));
        return NULL;
    }
    if (nlen == 0)
        snprintf(name, sizeof(name), "group"); /* a local label is needed to name it */
    fe_daemon_group *g = join(d, key, name, err);
    sodium_memzero(key, sizeof(key));
    if (!g)
        return NULL;
    cJSON *o = group_json(g);
    return o ? o : oom(err);
}

static cJSON *cmd_group_leave(void *ctx, fe_ctl_client *cl, const cJSON *req, fe_ctl_error *err)
{
    fe_daemon *d = ctx;
    (void)cl;
    const char *s = arg_string(req, "group", err);
    fe_daemon_group *g = s ? resolve_group(d, s, err) : NULL;
    if (!g)
        return NULL;
    int rc = fe_node_group_leave(d->node, g->rec.id);
    if (rc != 0 && rc != FE_ERR_NOTFOUND)
        return engine_fail(d, err, rc, s);
    sodium_memzero(g, sizeof(*g));
    return empty(err);
}

static cJSON *message_id_json(const uint8_t id[FE_MSG_ID_BYTES], fe_ctl_error *err)
{
    cJSON *o = cJSON_CreateObject();
    int ok = o && add_hex(o, "message_id", id, FE_MSG_ID_BYTES);
    return done(o, ok) ? o : oom(err);
}

static cJSON *cmd_group_invite(void *ctx, fe_ctl_client *cl, const cJSON *req, fe_ctl_error *err)
{
    fe_daemon *d = ctx;
    fe_dir_rec u;
    uint8_t id[FE_MSG_ID_BYTES];
    char khex[HEX_KEY + 1], invite[sizeof(INVITE_PREFIX) + FE_NAME_MAX + HEX_KEY + 2];
    (void)cl;
    const char *gs = arg_string(req, "group", err);
    const char *who = gs ? arg_string(req, "user", err) : NULL;
    fe_daemon_group *g = who ? resolve_group(d, gs, err) : NULL;
    if (!g || resolve_user(d, who, &u, err) != 0)
        return NULL;
    sodium_bin2hex(khex, sizeof(khex), g->rec.key, FE_GROUP_KEY_BYTES);
    snprintf(invite, sizeof(invite), "%s%s:%s", INVITE_PREFIX, g->rec.name, khex);
    int rc = send_private(d, id, &u, invite, 0, err);
    sodium_memzero(khex, sizeof(khex));
    sodium_memzero(invite, sizeof(invite));
    return rc == 0 ? message_id_json(id, err) : NULL;
}

static cJSON *cmd_group_send(void *ctx, fe_ctl_client *cl, const cJSON *req, fe_ctl_error *err)
{
    fe_daemon *d = ctx;
    uint8_t id[FE_MSG_ID_BYTES];
    (void)cl;
    const char *gs = arg_string(req, "group", err);
    const char *text = gs ? arg_string(req, "text", err) : NULL;
    fe_daemon_group *g = text ? resolve_group(d, gs, err) : NULL;
    if (!g)
        return NULL;
    size_t len = strlen(text);
    if (len > FE_TEXT_MAX)
        return fail(err, "too_big", "message text is %zu bytes; at most %d", len, FE_TEXT_MAX);
    int rc =
        fe_node_group_send(d->node, id, g->rec.id, (const uint8_t *)text, len, fe_daemon_now(d));
    if (rc != 0)
        return engine_fail(d, err, rc, g->rec.name);
    return message_id_json(id, err);
}

static cJSON *engine_stats(const fe_node_stats *s)
{
    cJSON *o = cJSON_CreateObject();
    int ok =
        o && add_num(o, "frames_in", s->frames_in) && add_num(o, "frames_out", s->frames_out) &&
        add_num(o, "bytes_in", s->bytes_in) && add_num(o, "bytes_out", s->bytes_out) &&
        add_num(o, "malformed", s->malformed) && add_num(o, "duplicates", s->duplicates) &&
        add_num(o, "suppressed", s->suppressed) && add_num(o, "relayed", s->relayed) &&
        add_num(o, "delivered", s->delivered) && add_num(o, "receipts_valid", s->receipts_valid) &&
        add_num(o, "receipts_unmatched", s->receipts_unmatched) &&
        add_num(o, "purged", s->purged) && add_num(o, "expired", s->expired) &&
        add_num(o, "quota_rejects", s->quota_rejects) &&
        add_num(o, "auth_failures", s->auth_failures) &&
        add_num(o, "store_errors", s->store_errors) &&
        add_num(o, "summaries_out", s->summaries_out) && add_num(o, "items_held", s->items_held) &&
        add_num(o, "item_bytes_held", s->item_bytes_held) &&
        add_num(o, "dedupe_entries", s->dedupe_entries) &&
        add_num(o, "reasm_in_use", s->reasm_in_use) &&
        add_num(o, "directory_entries", s->directory_entries);
    return done(o, ok);
}

static cJSON *store_stats(fe_daemon *d)
{
    fe_sqlstore_rowcounts c;
    cJSON *o = cJSON_CreateObject();
    if (!o || fe_sqlstore_counts(d->sql, &c) != 0)
        return done(o, o != NULL); /* counts unavailable: an empty object says so */
    int ok = add_num(o, "items", c.items) && add_num(o, "own_items", c.own_items) &&
             add_num(o, "seen", c.seen) && add_num(o, "inbox", c.inbox) &&
             add_num(o, "inbox_unread", c.inbox_unshown) && add_num(o, "sent", c.sent) &&
             add_num(o, "sent_pending", c.sent_pending) && add_num(o, "directory", c.directory) &&
             add_num(o, "groups", c.groups) && add_num(o, "bad_rows", c.bad_rows);
    uint64_t used, peak;
    fe_sqlstore_memory(&used, &peak);
    ok = ok && add_num(o, "sqlite_memory_bytes", used) &&
         add_num(o, "sqlite_memory_peak_bytes", peak);
    return done(o, ok);
}

static cJSON *daemon_stats(fe_daemon *d)
{
    const fe_daemon_counters *n = &d->n;
    fe_ctl_stats cs;
    fe_ctl_get_stats(d->ctl, &cs);
    cJSON *o = cJSON_CreateObject();
    int ok =
        o && add_num(o, "turns", n->turns) && add_num(o, "commits", n->commits) &&
        add_num(o, "commit_failures", n->commit_failures) &&
        add_num(o, "engine_reloads", n->resyncs) && add_num(o, "store_writes", n->store_writes) &&
        add_num(o, "frames_queued", n->frames_queued) &&
        add_num(o, "frames_sent", n->frames_sent) &&
        add_num(o, "frames_dropped", n->frames_dropped) &&
        add_num(o, "events_dropped", n->events_dropped) && add_num(o, "clients", cs.clients) &&
        add_num(o, "clients_accepted", cs.accepted) && add_num(o, "clients_refused", cs.refused) &&
        add_num(o, "clients_dropped_slow", cs.dropped_slow) &&
        add_num(o, "requests", cs.requests) && add_num(o, "request_errors", cs.errors);
#ifdef HAVE_MALLINFO2
    /* What the program has allocated and not freed, unlike RSS, which also
     * counts pages the allocator keeps for reuse. Left out when another
     * allocator stands in for glibc's (a sanitizer, a preloaded one): its
     * figures are then all zero. */
    struct mallinfo2 mi = mallinfo2();
    if (mi.arena + mi.hblkhd > 0)
        ok = ok && add_num(o, "heap_in_use_bytes", (uint64_t)mi.uordblks + (uint64_t)mi.hblkhd);
#endif
    return done(o, ok);
}

static cJSON *cmd_stats(void *ctx, fe_ctl_client *cl, const cJSON *req, fe_ctl_error *err)
{
    fe_daemon *d = ctx;
    fe_node_stats s;
    (void)cl;
    (void)req;
    fe_node_get_stats(d->node, &s);
    cJSON *o = cJSON_CreateObject();
    cJSON *parts[5] = {engine_stats(&s), store_stats(d), links_json(d), transports_json(d),
                       daemon_stats(d)};
    static const char *const keys[5] = {"engine", "store", "links", "transports", "daemon"};
    int ok = o != NULL;
    for (size_t i = 0; i < 5; i++) {
        if (ok && parts[i] && cJSON_AddItemToObject(o, keys[i], parts[i]))
            continue;
        ok = 0;
        cJSON_Delete(parts[i]);
    }
    ok = ok && add_num(o, "uptime_s", ago_s(fe_daemon_now(d), d->started_ms));
    return done(o, ok) ? o : oom(err);
}

static cJSON *cmd_subscribe(void *ctx, fe_ctl_client *cl, const cJSON *req, fe_ctl_error *err)
{
    (void)ctx;
    (void)req;
    fe_ctl_subscribe(cl);
    return empty(err);
}

/* Commands that change state the user relies on answer only after the
 * turn's commit (FE_CTL_DURABLE): "queued" means on disk. */
const fe_ctl_command fe_daemon_commands[] = {
    {"id", cmd_id, 0},
    {"send", cmd_send, FE_CTL_DURABLE},
    {"status", cmd_status, 0},
    {"inbox", cmd_inbox, 0},
    {"users", cmd_users, 0},
    {"peers", cmd_peers, 0},
    {"ports", cmd_ports, 0},
    {"announce", cmd_announce, 0},
    {"verify", cmd_verify, FE_CTL_DURABLE},
    {"groups", cmd_groups, 0},
    {"group_create", cmd_group_create, FE_CTL_DURABLE},
    {"group_join", cmd_group_join, FE_CTL_DURABLE},
    {"group_leave", cmd_group_leave, FE_CTL_DURABLE},
    {"group_invite", cmd_group_invite, FE_CTL_DURABLE},
    {"group_send", cmd_group_send, FE_CTL_DURABLE},
    {"stats", cmd_stats, 0},
    {"subscribe", cmd_subscribe, 0},
};
const size_t fe_daemon_command_count = sizeof(fe_daemon_commands) / sizeof(fe_daemon_commands[0]);
