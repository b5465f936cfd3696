/* Configuration: see config.h. inih does the INI syntax; this file only
 * knows the keys. inih's handler is not told line numbers, so the text is fed
 * through ini_parse_stream with a reader of our own that counts lines (inih
 * calls it once per line) and also refuses lines inih would otherwise cut or
 * misread: over-long lines and lines with NUL bytes. */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <ini.h>

#include "log.h"

#define SECONDS_MAX (30ull * 24 * 3600) /* 30d, the longest lifetime */

typedef struct parse_state {
    fe_config *c;
    const char *origin;  /* file name in messages */
    const char *p, *end; /* text not yet handed to inih */
    int line;            /* line inih is working on */
    int section_line;    /* line of the last [section] header */
    int err_line;        /* line of the first error, 0 if none */
    char *err;
    size_t err_len;
    uint32_t seen[2]; /* single-valued keys already set, per section */
    int driver;       /* driver section the lines belong to; -1: none (or its header failed) */
    int key_seen;     /* a key since the last header: inih reads an indented line as more value */
} parse_state;

/* Keep the first problem only: later ones are often its consequences. */
static void line_err(parse_state *ps, int line, const char *msg)
{
    if (ps->err_line != 0)
        return;
    ps->err_line = line;
    fe_errf(ps->err, ps->err_len, "%s:%d: %s", ps->origin, line, msg);
    /* Keys and sections from a garbage file may hold control bytes: keep
     * them out of a terminal or a log. */
    for (char *p = ps->err; p && *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    }
}

/* --- values --- */

/* Decimal digits only (no sign, no space) within [min, max]. */
static int parse_uint(const char *s, unsigned long long min, unsigned long long max,
                      unsigned long long *out)
{
    if (!isdigit((unsigned char)s[0]))
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int fe_config_parse_duration(const char *s, uint64_t *ms)
{
    if (!s || !isdigit((unsigned char)s[0]))
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0)
        return -1;
    static const char units[] = "smhd";
    static const unsigned long long unit_s[] = {1, 60, 3600, 86400};
    unsigned long long unit = 1; /* plain seconds */
    if (*end != '\0') {
        const char *u = strchr(units, *end);
        if (!u || end[1] != '\0')
            return -1;
        unit = unit_s[u - units];
    }
    if (v > UINT64_MAX / 1000u / unit)
        return -1;
    *ms = (uint64_t)v * unit * 1000u;
    return 0;
}

static int parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

/* Copy a path, expanding a leading "~/" to $HOME. */
static int copy_path(char *dst, size_t cap, const char *v, const char *key, char *why,
                     size_t why_len)
{
    const char *home = "";
    if (v[0] == '~' && v[1] == '/') {
        home = getenv("HOME");
        if (!home || !*home) {
            fe_errf(why, why_len, "%s starts with ~/ but HOME is not set", key);
            return -1;
        }
        v++;
    }
    int n = snprintf(dst, cap, "%s%s", home, v);
    if (n < 0 || (size_t)n >= cap) {
        fe_errf(why, why_len, "%s is too long (at most %zu bytes)", key, cap - 1);
        return -1;
    }
    return 0;
}

static int has_control(const char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 1;
    }
    return 0;
}

/* --- keys --- */

typedef int (*setter_fn)(fe_config *c, const char *v, char *why, size_t why_len);

#define SETTER(name) static int name(fe_config *c, const char *v, char *why, size_t why_len)

SETTER(set_name)
{
    if (strlen(v) > FE_NAME_MAX) {
        fe_errf(why, why_len, "name must be at most %d bytes", FE_NAME_MAX);
        return -1;
    }
    if (has_control(v)) {
        fe_errf(why, why_len, "name must not contain control characters");
        return -1;
    }
    memcpy(c->name, v, strlen(v) + 1);
    return 0;
}

SETTER(set_data_dir)
{
    if (!*v) {
        fe_errf(why, why_len, "data_dir must not be empty");
        return -1;
    }
    return copy_path(c->data_dir, sizeof(c->data_dir), v, "data_dir", why, why_len);
}

SETTER(set_socket)
{
    return copy_path(c->socket, sizeof(c->socket), v, "socket", why, why_len);
}

SETTER(set_log_level)
{
    if (fe_log_level_parse(v, &c->log_level) != 0) {
        fe_errf(why, why_len, "log_level must be error, warn, info or debug");
        return -1;
    }
    return 0;
}

SETTER(set_lifetime)
{
    uint64_t ms;
    if (fe_config_parse_duration(v, &ms) != 0) {
        fe_errf(why, why_len, "lifetime must be a duration like 90s, 15m, 24h, 7d or seconds");
        return -1;
    }
    if (ms < 1000 || ms > SECONDS_MAX * 1000) {
        fe_errf(why, why_len, "lifetime must be 1s..30d");
        return -1;
    }
    c->lifetime_ms = ms;
    return 0;
}

SETTER(set_hops)
{
    unsigned long long n;
    if (parse_uint(v, 1, 255, &n) != 0) {
        fe_errf(why, why_len, "hops must be 1..255");
        return -1;
    }
    c->hops = (uint8_t)n;
    return 0;
}

SETTER(set_socket_group)
{
    size_t n = strlen(v);
    if (n >= sizeof(c->socket_group) || has_control(v) || strpbrk(v, " \t:/")) {
        fe_errf(why, why_len, "socket_group must be a group name (at most %zu characters)",
                sizeof(c->socket_group) - 1);
        return -1;
    }
    memcpy(c->socket_group, v, n + 1);
    return 0;
}

static int set_bool(int *dst, const char *v, const char *key, char *why, size_t why_len)
{
    if (parse_bool(v, dst) != 0) {
        fe_errf(why, why_len, "%s must be true or false (or yes/no, on/off, 1/0)", key);
        return -1;
    }
    return 0;
}

SETTER(set_udp_enabled)
{
    return set_bool(&c->udp.enabled, v, "enabled", why, why_len);
}

SETTER(set_udp_broadcast)
{
    return set_bool(&c->udp.broadcast, v, "broadcast", why, why_len);
}

SETTER(set_udp_port)
{
    unsigned long long n;
    if (parse_uint(v, 1, 65535, &n) != 0) {
        fe_errf(why, why_len, "port must be 1..65535");
        return -1;
    }
    c->udp.port = (uint16_t)n;
    return 0;
}

SETTER(set_udp_group)
{
    struct in_addr a;
    if (inet_pton(AF_INET, v, &a) != 1 || (ntohl(a.s_addr) >> 28) != 0xe) {
        fe_errf(why, why_len,
                "group must be an IPv4 multicast address (224.0.0.0 to 239.255.255.255)");
        return -1;
    }
    c->udp.group = a;
    return 0;
}

SETTER(set_udp_interface)
{
    struct in_addr a;
    size_t n = strlen(v);
    int is_addr = inet_pton(AF_INET, v, &a) == 1;
    /* Interface names are up to 15 bytes without '/' or blanks; something
     * made of digits and dots was meant as an address and must be one. */
    int looks_addr = n > 0 && strspn(v, "0123456789.") == n;
    if (!is_addr &&
        (looks_addr || n >= sizeof(c->udp.interface) || has_control(v) || strpbrk(v, " \t/:"))) {
        fe_errf(why, why_len,
                "interface must be an interface name (at most %zu characters) or an IPv4 address",
                sizeof(c->udp.interface) - 1);
        return -1;
    }
    memcpy(c->udp.interface, v, n + 1);
    return 0;
}

SETTER(set_udp_peer)
{
    if (c->udp.peers_count >= FE_CONFIG_PEERS_MAX) {
        fe_errf(why, why_len, "too many peers (at most %d)", FE_CONFIG_PEERS_MAX);
        return -1;
    }
    char host[INET_ADDRSTRLEN];
    const char *colon = strchr(v, ':');
    size_t hlen = colon ? (size_t)(colon - v) : strlen(v);
    fe_config_peer p = {{0}, 0};
    if (hlen >= sizeof(host))
        goto bad;
    memcpy(host, v, hlen);
    host[hlen] = '\0';
    if (inet_pton(AF_INET, host, &p.addr) != 1)
        goto bad;
    if (colon) {
        unsigned long long port;
        if (parse_uint(colon + 1, 1, 65535, &port) != 0) {
            fe_errf(why, why_len, "peer port must be 1..65535");
            return -1;
        }
        p.port = (uint16_t)port;
    }
    c->udp.peers[c->udp.peers_count++] = p;
    return 0;
bad:
    fe_errf(why, why_len, "peer must be IPV4-ADDRESS[:PORT], like 192.0.2.10:4747");
    return -1;
}

SETTER(set_udp_mtu)
{
    unsigned long long n;
    if (parse_uint(v, 64, 1400, &n) != 0) {
        fe_errf(why, why_len, "mtu must be 64..1400");
        return -1;
    }
    c->udp.mtu = (size_t)n;
    return 0;
}

typedef struct key_def {
    const char *name;
    setter_fn set;
    int repeatable;
} key_def;

static const key_def node_keys[] = {
    {"name", set_name, 0},
    {"data_dir", set_data_dir, 0},
    {"socket", set_socket, 0},
    {"log_level", set_log_level, 0},
    {"lifetime", set_lifetime, 0},
    {"hops", set_hops, 0},
    {"socket_group", set_socket_group, 0},
};

static const key_def udp_keys[] = {
    {"enabled", set_udp_enabled, 0},
    {"port", set_udp_port, 0},
    {"group", set_udp_group, 0},
    {"interface", set_udp_interface, 0},
    {"broadcast", set_udp_broadcast, 0},
    {"peer", set_udp_peer, 1},
    {"mtu", set_udp_mtu, 0},
};

typedef struct section_def {
    const char *name;
    const key_def *keys;
    size_t nkeys;
} section_def;

/* Indexed by enum section_kind (SEC_NODE, SEC_UDP). */
static const section_def sections[] = {
    {"node", node_keys, sizeof(node_keys) / sizeof(node_keys[0])},
    {"udp", udp_keys, sizeof(udp_keys) / sizeof(udp_keys[0])},
};

_Static_assert(sizeof(node_keys) / sizeof(node_keys[0]) <= 32, "seen bits");
_Static_assert(sizeof(udp_keys) / sizeof(udp_keys[0]) <= 32, "seen bits");

/* --- sections --- */

enum section_kind { SEC_UNKNOWN = -1, SEC_NODE = 0, SEC_UDP = 1, SEC_SERIAL, SEC_RFCOMM };

static int is_blank(char ch)
{
    return ch == ' ' || ch == '\t';
}

/* What a section header's text (between the brackets) names: its first
 * word is the kind; serial takes a NAME as second word, which goes to
 * name (cut to cap, checked by fe_config_driver_add). *extra is set when
 * words follow that the kind does not take. */
static enum section_kind section_kind(const char *sec, char *name, size_t cap, int *extra)
{
    static const char *const kinds[] = {"node", "udp", "serial", "rfcomm"};
    while (is_blank(*sec))
        sec++;
    size_t kl = 0;
    while (sec[kl] && !is_blank(sec[kl]))
        kl++;
    const char *rest = sec + kl;
    while (is_blank(*rest))
        rest++;
    size_t rl = strlen(rest);
    while (rl > 0 && is_blank(rest[rl - 1]))
        rl--;
    name[0] = '\0';
    if (cap > 0) {
        size_t n = rl < cap - 1 ? rl : cap - 1;
        memcpy(name, rest, n);
        name[n] = '\0';
    }
    *extra = rl > 0;
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        if (strlen(kinds[k]) == kl && strncmp(sec, kinds[k], kl) == 0)
            return (enum section_kind)k;
    }
    return SEC_UNKNOWN;
}

static int valid_driver_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n >= FE_CONFIG_DRIVER_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (!isalnum(ch) && ch != '_' && ch != '.' && ch != '-')
            return 0;
    }
    return 1;
}

const char *fe_config_key(const fe_config *c, const fe_config_pair *p)
{
    return c->driver_text + p->key;
}

const char *fe_config_value(const fe_config *c, const fe_config_pair *p)
{
    return c->driver_text + p->value;
}

const fe_config_driver *fe_config_driver_find(const fe_config *c, enum fe_config_driver_kind kind,
                                              const char *name)
{
    for (size_t i = 0; c && i < c->driver_count; i++) {
        const fe_config_driver *dr = &c->drivers[i];
        if (dr->kind == kind && (kind == FE_CONFIG_RFCOMM || (name && !strcmp(dr->name, name))))
            return dr;
    }
    return NULL;
}

int fe_config_driver_add(fe_config *c, enum fe_config_driver_kind kind, const char *name, int line,
                         char *err, size_t err_len)
{
    if (!c || (kind != FE_CONFIG_SERIAL && kind != FE_CONFIG_RFCOMM)) {
        fe_errf(err, err_len, "no such kind of section");
        return -1;
    }
    if (!name)
        name = "";
    if (kind == FE_CONFIG_RFCOMM && name[0]) {
        fe_errf(err, err_len, "[rfcomm] takes no name (there is at most one rfcomm section)");
        return -1;
    }
    if (kind == FE_CONFIG_SERIAL && !name[0]) {
        fe_errf(err, err_len, "[serial] needs a name: [serial NAME], like [serial lora0]");
        return -1;
    }
    if (kind == FE_CONFIG_SERIAL && !valid_driver_name(name)) {
        fe_errf(err, err_len,
                "serial section name '%.40s' must be 1..%d characters of A-Z, a-z, 0-9, _ . -",
                name, FE_CONFIG_DRIVER_NAME_MAX - 1);
        return -1;
    }
    const fe_config_driver *dup = fe_config_driver_find(c, kind, name);
    if (dup) {
        char where[48] = "";
        if (dup->line > 0)
            snprintf(where, sizeof(where), " (the first is on line %d)", dup->line);
        if (kind == FE_CONFIG_RFCOMM)
            fe_errf(err, err_len, "a second [rfcomm] section: there may be only one%s", where);
        else
            fe_errf(err, err_len, "a second [serial %s] section: names must be unique%s", name,
                    where);
        return -1;
    }
    if (c->driver_count >= FE_CONFIG_DRIVERS_MAX) {
        fe_errf(err, err_len, "too many [serial NAME] and [rfcomm] sections (at most %d)",
                FE_CONFIG_DRIVERS_MAX);
        return -1;
    }
    fe_config_driver *dr = &c->drivers[c->driver_count];
    memset(dr, 0, sizeof(*dr));
    dr->kind = kind;
    memcpy(dr->name, name, strlen(name) + 1); /* checked above: fits */
    dr->line = line;
    return (int)c->driver_count++;
}

/* Copy s into the text space; its offset, or -1 when full. */
static int add_text(fe_config *c, const char *s)
{
    size_t n = strlen(s) + 1;
    if (n > sizeof(c->driver_text) - c->driver_text_len)
        return -1;
    size_t at = c->driver_text_len;
    memcpy(c->driver_text + at, s, n);
    c->driver_text_len += n;
    return (int)at;
}

int fe_config_driver_add_pair(fe_config *c, size_t index, const char *key, const char *value,
                              int line, char *err, size_t err_len)
{
    if (!c || index >= c->driver_count || !key || !value) {
        fe_errf(err, err_len, "no such section");
        return -1;
    }
    fe_config_driver *dr = &c->drivers[index];
    if (!key[0]) {
        fe_errf(err, err_len, "empty key");
        return -1;
    }
    if (dr->pair_count >= FE_CONFIG_DRIVER_KEYS_MAX) {
        fe_errf(err, err_len, "too many keys in one section (at most %d)",
                FE_CONFIG_DRIVER_KEYS_MAX);
        return -1;
    }
    size_t keep = c->driver_text_len;
    int k = add_text(c, key), v = k < 0 ? -1 : add_text(c, value);
    if (k < 0 || v < 0) {
        c->driver_text_len = keep;
        fe_errf(err, err_len,
                "the [serial NAME] and [rfcomm] sections hold too much text (at most %d bytes "
                "of keys and values)",
                FE_CONFIG_DRIVER_TEXT_MAX);
        return -1;
    }
    dr->pairs[dr->pair_count++] = (fe_config_pair){(uint16_t)k, (uint16_t)v, line};
    return 0;
}

/* A [section] header on line: check the kind, and start a driver section.
 * Called from the line reader, so that sections without keys count too. */
static void on_section(parse_state *ps, const char *sec, int line)
{
    char name[FE_CONFIG_DRIVER_NAME_MAX + 8], msg[256];
    int extra;
    enum section_kind k = section_kind(sec, name, sizeof(name), &extra);
    ps->driver = -1;
    ps->key_seen = 0;
    if (k == SEC_NODE || k == SEC_UDP) {
        if (!extra)
            return;
        k = SEC_UNKNOWN;
    }
    if (k == SEC_UNKNOWN) {
        snprintf(msg, sizeof(msg), "section [%s] is not supported by this build", sec);
        line_err(ps, line, msg);
        return;
    }
    int idx = fe_config_driver_add(ps->c, k == SEC_SERIAL ? FE_CONFIG_SERIAL : FE_CONFIG_RFCOMM,
                                   name, line, msg, sizeof(msg));
    if (idx < 0) {
        line_err(ps, line, msg);
        return;
    }
    ps->driver = idx;
}

/* inih calls this for each "key = value"; nonzero means accepted. */
static int on_key(void *user, const char *section, const char *name, const char *value)
{
    parse_state *ps = user;
    char msg[256];
    ps->key_seen = 1;
    if (!value)
        value = ""; /* only if inih was built to allow keys without '=' */
    if (!*section) {
        snprintf(msg, sizeof(msg), "key '%s' is outside any section (put it under [node] or [udp])",
                 name);
        line_err(ps, ps->line, msg);
        return 0;
    }
    char sname[FE_CONFIG_DRIVER_NAME_MAX + 8];
    int extra;
    enum section_kind kind = section_kind(section, sname, sizeof(sname), &extra);
    if (kind == SEC_SERIAL || kind == SEC_RFCOMM) {
        /* The driver checks these keys; here they are only kept. A header
         * that failed has been reported already. */
        if (ps->driver < 0)
            return 0;
        if (fe_config_driver_add_pair(ps->c, (size_t)ps->driver, name, value, ps->line, msg,
                                      sizeof(msg)) != 0) {
            line_err(ps, ps->line, msg);
            return 0;
        }
        return 1;
    }
    for (size_t s = 0; s < sizeof(sections) / sizeof(sections[0]); s++) {
        const section_def *sd = &sections[s];
        if (extra || (int)s != (int)kind)
            continue;
        for (size_t k = 0; k < sd->nkeys; k++) {
            const key_def *kd = &sd->keys[k];
            if (strcmp(name, kd->name) != 0)
                continue;
            uint32_t bit = 1u << k;
            if (!kd->repeatable && (ps->seen[s] & bit)) {
                snprintf(msg, sizeof(msg), "duplicate key '%s' in [%s] (it may appear only once)",
                         name, sd->name);
                line_err(ps, ps->line, msg);
                return 0;
            }
            ps->seen[s] |= bit;
            if (kd->set(ps->c, value, msg, sizeof(msg)) != 0) {
                line_err(ps, ps->line, msg);
                return 0;
            }
            return 1;
        }
        snprintf(msg, sizeof(msg), "unknown key '%s' in [%s]", name, sd->name);
        line_err(ps, ps->line, msg);
        return 0;
    }
    snprintf(msg, sizeof(msg), "section [%s] is not supported by this build", section);
    line_err(ps, ps->section_line ? ps->section_line : ps->line, msg);
    return 0;
}

/* fgets-like reader over the text; inih calls it once per line. */
static char *read_line(char *str, int num, void *stream)
{
    parse_state *ps = stream;
    if (ps->p >= ps->end || num < 4)
        return NULL;
    const char *nl = memchr(ps->p, '\n', (size_t)(ps->end - ps->p));
    size_t len = nl ? (size_t)(nl - ps->p) + 1 : (size_t)(ps->end - ps->p);
    const char *line = ps->p;
    ps->p += len;
    ps->line++;
    size_t content = len;
    while (content > 0 && (line[content - 1] == '\n' || line[content - 1] == '\r'))
        content--;
    if (memchr(line, '\0', len)) {
        line_err(ps, ps->line, "line contains a NUL byte (is this a text file?)");
        str[0] = '\0';
    } else if (content > (size_t)num - 3) {
        char msg[64];
        snprintf(msg, sizeof(msg), "line is too long (at most %d characters)", num - 3);
        line_err(ps, ps->line, msg);
        str[0] = '\0';
    } else {
        size_t lead = 0;
        while (lead < content && (line[lead] == ' ' || line[lead] == '\t'))
            lead++;
        memcpy(str, line, content);
        str[content] = '\n';
        str[content + 1] = '\0';
        /* A header, as inih will see it: an indented line after a key is
         * a continuation of that key's value, whatever it holds. */
        if (lead < content && line[lead] == '[' && !(lead > 0 && ps->key_seen)) {
            ps->section_line = ps->line; /* for messages about the section */
            /* inih takes the text up to the first ']' as the section; without
             * one it reports a syntax error itself. */
            char *close = strchr(str + lead + 1, ']');
            if (close) {
                char sec[FE_CONFIG_LINE_MAX];
                size_t n = (size_t)(close - (str + lead + 1));
                memcpy(sec, str + lead + 1, n);
                sec[n] = '\0';
                on_section(ps, sec, ps->line);
            }
        }
    }
    return str;
}

static int parse_text(fe_config *c, const char *text, size_t len, const char *origin, char *err,
                      size_t err_len)
{
    fe_config work = *c;
    parse_state ps;
    memset(&ps, 0, sizeof(ps));
    ps.c = &work;
    ps.origin = origin;
    ps.p = text;
    ps.end = text + len;
    ps.err = err;
    ps.err_len = err_len;
    ps.driver = -1;
    int rc = ini_parse_stream(read_line, &ps, on_key, &ps);
    if (rc < 0) {
        fe_errf(err, err_len, "%s: out of memory while parsing", origin);
        return -1;
    }
    /* inih reports the first line it could not parse, or where on_key said
     * no; if the former came first it is a syntax error. */
    if (rc > 0 && (ps.err_line == 0 || rc < ps.err_line)) {
        ps.err_line = 0;
        line_err(&ps, rc, "syntax error: expected [section] or key = value");
    }
    if (ps.err_line != 0)
        return -1;
    *c = work;
    return 0;
}

int fe_config_load_string(fe_config *c, const char *text, char *err, size_t err_len)
{
    if (!c || !text) {
        fe_errf(err, err_len, "<string>: no text");
        return -1;
    }
    return parse_text(c, text, strlen(text), "<string>", err, err_len);
}

int fe_config_load(fe_config *c, const char *path, char *err, size_t err_len)
{
    if (!c || !path) {
        fe_errf(err, err_len, "no config file given");
        errno = EINVAL;
        return -1;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        fe_errf(err, err_len, "%s: cannot open: %s", path, strerror(e));
        errno = e;
        return -1;
    }
    /* Read one byte more than allowed to tell "too big" from "just fits". */
    char *buf = malloc(FE_CONFIG_FILE_MAX + 1);
    if (!buf) {
        close(fd);
        fe_errf(err, err_len, "%s: out of memory", path);
        errno = ENOMEM;
        return -1;
    }
    size_t len = 0;
    while (len < FE_CONFIG_FILE_MAX + 1) {
        ssize_t n = read(fd, buf + len, FE_CONFIG_FILE_MAX + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            fe_errf(err, err_len, "%s: cannot read: %s", path, strerror(e));
            free(buf);
            close(fd);
            errno = e;
            return -1;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    int rc;
    if (len > FE_CONFIG_FILE_MAX) {
        fe_errf(err, err_len, "%s: file is larger than %d bytes; not a ferry config?", path,
                FE_CONFIG_FILE_MAX);
        errno = EFBIG;
        rc = -1;
    } else {
        rc = parse_text(c, buf, len, path, err, err_len);
        if (rc != 0)
            errno = EINVAL;
    }
    free(buf);
    return rc;
}

void fe_config_defaults(fe_config *c)
{
    memset(c, 0, sizeof(*c));
    /* The short host name: "raspberrypi" for "raspberrypi.local". */
    char host[256];
    if (gethostname(host, sizeof(host)) == 0) {
        host[sizeof(host) - 1] = '\0';
        size_t n = strcspn(host, ".");
        if (n > FE_NAME_MAX)
            n = FE_NAME_MAX;
        memcpy(c->name, host, n);
        c->name[n] = '\0';
        if (has_control(c->name))
            c->name[0] = '\0';
    }
    /* XDG says relative XDG_DATA_HOME values are to be ignored. */
    const char *xdg = getenv("XDG_DATA_HOME");
    const char *home = getenv("HOME");
    int n = -1;
    if (xdg && xdg[0] == '/')
        n = snprintf(c->data_dir, sizeof(c->data_dir), "%s/ferry", xdg);
    else if (home && home[0])
        n = snprintf(c->data_dir, sizeof(c->data_dir), "%s/.local/share/ferry", home);
    if (n < 0 || (size_t)n >= sizeof(c->data_dir))
        c->data_dir[0] = '\0';
    c->log_level = FE_LOG_INFO;
    c->lifetime_ms = FE_LIFETIME_DEFAULT_MS;
    c->hops = FE_HOPS_DEFAULT;
    c->udp.enabled = 1;
    c->udp.port = 4747;
    inet_pton(AF_INET, "239.255.70.1", &c->udp.group);
    c->udp.broadcast = 0;
    c->udp.mtu = 1200;
}

int fe_config_finish(fe_config *c, char *err, size_t err_len)
{
    if (!c->data_dir[0]) {
        fe_errf(err, err_len, "no data directory: set data_dir in [node] (HOME is not set)");
        return -1;
    }
    if (!c->socket[0]) {
        int n = snprintf(c->socket, sizeof(c->socket), "%s/ferryd.sock", c->data_dir);
        if (n < 0 || (size_t)n >= sizeof(c->socket)) {
            c->socket[0] = '\0';
            fe_errf(err, err_len,
                    "control socket path %s/ferryd.sock is too long (at most %zu bytes): "
                    "set socket in [node]",
                    c->data_dir, sizeof(c->socket) - 1);
            return -1;
        }
    }
    for (size_t i = 0; i < c->udp.peers_count; i++) {
        if (c->udp.peers[i].port == 0)
            c->udp.peers[i].port = c->udp.port;
    }
    return 0;
}
