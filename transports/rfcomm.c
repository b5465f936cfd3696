/* Bluetooth RFCOMM transport: see rfcomm.h for what it does; this file says
 * how.
 *
 * One epoll set is the driver's poll fd. It holds the listening socket, one
 * socket per connection and an eventfd that the discovery thread signals.
 * Every epoll entry carries (kind, serial): serials are never reused, so an
 * event for a connection closed earlier in the same batch finds nothing.
 *
 * Connections live in a table of max_links slots allocated at creation; each
 * slot embeds its deframer and its send buffer, so a running driver does not
 * allocate. Remote devices we dial (static peers, and discovered ones) live in
 * a fixed table with their backoff state.
 *
 * Sockets are non-blocking. An outgoing connect normally answers EINPROGRESS
 * and completes with EPOLLOUT; SO_ERROR then says how it went. */
#define _GNU_SOURCE /* accept4 */
#include "rfcomm.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bluetooth/bluetooth.h>
#include <bluetooth/hci.h>
#include <bluetooth/hci_lib.h>
#include <bluetooth/rfcomm.h>

#include "stream.h"

#define TAG_WAKE 1u
#define TAG_LISTEN 2u
#define TAG_CONN 3u
#define EPOLL_BATCH 32
#define LISTEN_BACKLOG 4
#define DIAL_WINDOW_MS 60000u
#define HCI_DEVS_MAX 16 /* adapters searched when the adapter is given by address */

_Static_assert(FE_RFCOMM_PEERS_MAX <= FE_RFCOMM_REMOTES_MAX, "static peers fit the remote table");
_Static_assert(FE_RFCOMM_TXBUF_BYTES >= 2 * FE_STREAM_ENCODED_MAX(FE_FRAME_MAX),
               "the send buffer holds two of the largest encoded frames");

enum conn_state { C_FREE = 0, C_CONNECTING = 1, C_UP = 2 };

struct rfcomm_state;

typedef struct conn {
    enum conn_state st;
    int fd;
    uint32_t serial; /* epoll tag, and the peer number once up */
    int outgoing;
    fe_bt_addr addr;
    uint8_t channel;
    uint64_t started_ms; /* dial time, then up time */
    uint64_t last_rx_ms; /* last good frame */
    int want_out;        /* EPOLLOUT is registered */
    int failed;          /* errno of a failed send; tick drops the link */
    int garbage;         /* bad_frames_max reached during a feed */
    uint64_t bad_mark;   /* bad frames counted at the last good frame */
    uint64_t skip_mark;  /* skipped bytes counted at the last good frame */
    uint64_t bad_seen;   /* bad frames already added to the driver's stats */
    size_t tx_start, tx_end;
    struct rfcomm_state *s;
    fe_stream_dec dec;
    uint8_t tx[FE_RFCOMM_TXBUF_BYTES];
} conn;

enum remote_kind { R_STATIC = 1, R_DISCOVERED = 2 };

typedef struct remote {
    int used;
    int kind;
    fe_bt_addr addr;
    uint8_t channel_cfg;  /* static peers: the configured channel, 0 = look it up */
    uint8_t channel;      /* channel to dial; 0 = unknown, look it up first */
    int fallback;         /* channel is the default, guessed after "no record" */
    int in_lookup;        /* queued in the discovery thread */
    unsigned failures;    /* consecutive failed attempts and short-lived links: the backoff */
    unsigned dial_streak; /* consecutive failed dials (for the log) */
    uint64_t next_ms;     /* earliest next attempt */
} remote;

typedef struct neg_entry {
    fe_bt_addr addr;
    uint64_t until_ms;
} neg_entry;

enum job_kind { JOB_NONE = 0, JOB_INQUIRY = 1, JOB_LOOKUP = 2 };

/* One request to the discovery thread and its answer. */
typedef struct disc_job {
    int kind;
    int dev_id;
    unsigned length;
    fe_bt_addr local;
    size_t n;
    fe_bt_addr addrs[FE_RFCOMM_LOOKUPS_PER_JOB];
    int lrc[FE_RFCOMM_LOOKUPS_PER_JOB];
    uint8_t lch[FE_RFCOMM_LOOKUPS_PER_JOB];
    int found_rc; /* inquiry: count or error */
    fe_bt_addr found[FE_BT_INQUIRY_MAX];
} disc_job;

typedef struct rfcomm_state {
    fe_rfcomm_config cfg;
    fe_rfcomm_stats st;
    fe_transport *t;
    const fe_bt_discovery *disc;
    fe_bt_discovery *own_disc; /* BlueZ, when the config gave none */

    int is_open;
    enum fe_rfcomm_state state;
    char reason[160]; /* why not running, for describe */
    int ep, wake_fd, lfd;
    uint8_t bound_channel;
    int dev_id;
    fe_bt_addr local;
    int registered;
    int listen_warned, sdp_warned, thread_warned;

    int have_now;
    uint64_t now;
    int adapter_armed;
    uint64_t adapter_check_at;
    uint64_t inquiry_at;
    int inquiry_warned;

    uint32_t next_serial;
    uint32_t rng;
    uint64_t dial_times[FE_RFCOMM_DIALS_PER_MIN];
    size_t dial_head, dial_count;

    conn *conns; /* cfg.max_links slots */
    remote remotes[FE_RFCOMM_REMOTES_MAX];
    neg_entry neg[FE_RFCOMM_NEGCACHE_MAX];
    size_t neg_next;

    /* Discovery thread. job is owned by the thread while job_pending is set,
     * by this side otherwise; both flags are under mu. */
    pthread_t th;
    int th_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int th_stop, job_pending, job_done;
    int job_busy; /* this side: a job is out and not collected */
    disc_job job;
} rfcomm_state;

static rfcomm_state *state_of(const fe_transport *t)
{
    return (rfcomm_state *)t->state;
}

/* --- logging --- */

static void logf_(rfcomm_state *s, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void logf_(rfcomm_state *s, int level, const char *fmt, ...)
{
    char line[FE_RFCOMM_LINE_MAX];
    const char *label = s->t != NULL && s->t->label[0] != '\0' ? s->t->label : "rfcomm";
    int n = snprintf(line, sizeof(line), "%s: ", label);
    if (n < 0 || (size_t)n >= sizeof(line))
        n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    if (s->cfg.log != NULL)
        s->cfg.log(s->cfg.log_ctx, level, line);
    else
        fprintf(stderr, "%s\n", line);
}

static const char *addr_str(const fe_bt_addr *a, char buf[FE_BT_ADDR_CHARS])
{
    fe_bt_addr_format(buf, FE_BT_ADDR_CHARS, a);
    return buf;
}

/* --- configuration --- */

void fe_rfcomm_config_default(fe_rfcomm_config *cfg)
{
    if (cfg == NULL)
        return;
    memset(cfg, 0, sizeof(*cfg));
    cfg->enabled = 1;
    snprintf(cfg->adapter, sizeof(cfg->adapter), "hci0");
    cfg->channel = FE_RFCOMM_CHANNEL_DEFAULT;
    cfg->advertise = 1;
    cfg->max_links = FE_RFCOMM_LINKS_DEFAULT;
    cfg->mtu = FE_RFCOMM_MTU_DEFAULT;
    cfg->inquiry = 1;
    cfg->inquiry_interval_ms = 120000u;
    cfg->inquiry_length = 8;
    cfg->connect_timeout_ms = 20000u;
    cfg->idle_timeout_ms = 20u * 60u * 1000u;
    cfg->backoff_min_ms = 1000u;
    cfg->backoff_max_ms = 300000u;
    cfg->bad_frames_max = 8;
}

static int err_line(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int err_line(char *err, size_t err_len, const char *fmt, ...)
{
    if (err != NULL && err_len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_len, fmt, ap);
        va_end(ap);
    }
    return FE_ERR_INVALID;
}

static int parse_bool(const char *v, int *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

/* A whole decimal number in [lo, hi]. */
static int parse_ulong(const char *v, unsigned long lo, unsigned long hi, unsigned long *out)
{
    if (v[0] < '0' || v[0] > '9')
        return -1;
    char *end = NULL;
    errno = 0;
    unsigned long x = strtoul(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || x < lo || x > hi)
        return -1;
    *out = x;
    return 0;
}

/* "500ms", "90s", "15m", "2h", "1d" or plain seconds, at most 30 days. */
static int parse_duration(const char *v, uint64_t *ms)
{
    if (v[0] < '0' || v[0] > '9')
        return -1;
    char *end = NULL;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno != 0 || end == v)
        return -1;
    uint64_t unit;
    if (*end == '\0' || strcmp(end, "s") == 0)
        unit = 1000u;
    else if (strcmp(end, "ms") == 0)
        unit = 1u;
    else if (strcmp(end, "m") == 0)
        unit = 60000u;
    else if (strcmp(end, "h") == 0)
        unit = 3600000u;
    else if (strcmp(end, "d") == 0)
        unit = 86400000u;
    else
        return -1;
    const uint64_t max_ms = 30ull * 86400000u;
    if (x > max_ms / unit)
        return -1;
    *ms = (uint64_t)x * unit;
    return 0;
}

/* "hciN" with N in 0..15 gives N; an address gives -2 and sets *addr. */
static int parse_adapter(const char *v, fe_bt_addr *addr)
{
    if (strncmp(v, "hci", 3) == 0) {
        unsigned long n;
        if (parse_ulong(v + 3, 0, HCI_DEVS_MAX - 1, &n) != 0)
            return -1;
        return (int)n;
    }
    if (fe_bt_addr_parse(addr, v) == 0)
        return -2;
    return -1;
}

static int parse_peer(const char *v, fe_rfcomm_peer *p, char *err, size_t err_len)
{
    char a[FE_BT_ADDR_CHARS];
    size_t n = strcspn(v, " \t");
    if (n != FE_BT_ADDR_CHARS - 1)
        return err_line(err, err_len, "peer: expected AA:BB:CC:DD:EE:FF [CHANNEL], got '%s'", v);
    memcpy(a, v, n);
    a[n] = '\0';
    fe_rfcomm_peer out = {0};
    if (fe_bt_addr_parse(&out.addr, a) != 0)
        return err_line(err, err_len, "peer: '%s' is not a Bluetooth address", a);
    if (fe_bt_addr_is_any(&out.addr))
        return err_line(err, err_len, "peer: 00:00:00:00:00:00 is not a device");
    const char *rest = v + n;
    rest += strspn(rest, " \t");
    if (*rest != '\0') {
        unsigned long ch;
        if (parse_ulong(rest, FE_BT_CHANNEL_MIN, FE_BT_CHANNEL_MAX, &ch) != 0)
            return err_line(err, err_len, "peer: channel must be 1..30, got '%s'", rest);
        out.channel = (uint8_t)ch;
    }
    *p = out;
    return 0;
}

int fe_rfcomm_config_set(fe_rfcomm_config *cfg, const char *key, const char *value, char *err,
                         size_t err_len)
{
    if (cfg == NULL || key == NULL || value == NULL)
        return err_line(err, err_len, "missing key or value");
    unsigned long n;
    uint64_t ms;
    int b;
    if (strcmp(key, "enabled") == 0 || strcmp(key, "advertise") == 0 ||
        strcmp(key, "inquiry") == 0) {
        if (parse_bool(value, &b) != 0)
            return err_line(err, err_len, "%s: expected true or false, got '%s'", key, value);
        if (key[0] == 'e')
            cfg->enabled = b;
        else if (key[0] == 'a')
            cfg->advertise = b;
        else
            cfg->inquiry = b;
        return 0;
    }
    if (strcmp(key, "adapter") == 0) {
        fe_bt_addr a;
        if (strlen(value) >= sizeof(cfg->adapter) || parse_adapter(value, &a) == -1)
            return err_line(err, err_len, "adapter: expected hci0..hci15 or an address, got '%s'",
                            value);
        snprintf(cfg->adapter, sizeof(cfg->adapter), "%s", value);
        return 0;
    }
    if (strcmp(key, "channel") == 0) {
        if (strcasecmp(value, "auto") == 0) {
            cfg->channel = FE_RFCOMM_CHANNEL_AUTO;
            return 0;
        }
        if (parse_ulong(value, FE_BT_CHANNEL_MIN, FE_BT_CHANNEL_MAX, &n) != 0)
            return err_line(err, err_len, "channel: expected 1..30 or auto, got '%s'", value);
        cfg->channel = (uint8_t)n;
        return 0;
    }
    if (strcmp(key, "max_links") == 0) {
        if (parse_ulong(value, 1, FE_RFCOMM_LINKS_MAX, &n) != 0)
            return err_line(err, err_len, "max_links: expected 1..%u, got '%s'",
                            (unsigned)FE_RFCOMM_LINKS_MAX, value);
        cfg->max_links = n;
        return 0;
    }
    if (strcmp(key, "mtu") == 0) {
        if (parse_ulong(value, FE_MTU_MIN, FE_FRAME_MAX, &n) != 0)
            return err_line(err, err_len, "mtu: expected %u..%u, got '%s'", (unsigned)FE_MTU_MIN,
                            (unsigned)FE_FRAME_MAX, value);
        cfg->mtu = n;
        return 0;
    }
    if (strcmp(key, "inquiry_length") == 0) {
        if (parse_ulong(value, 1, FE_BT_INQUIRY_LENGTH_MAX, &n) != 0)
            return err_line(err, err_len, "inquiry_length: expected 1..48 (x 1.28 s), got '%s'",
                            value);
        cfg->inquiry_length = (unsigned)n;
        return 0;
    }
    if (strcmp(key, "bad_frames") == 0) {
        if (parse_ulong(value, 1, 1000, &n) != 0)
            return err_line(err, err_len, "bad_frames: expected 1..1000, got '%s'", value);
        cfg->bad_frames_max = (unsigned)n;
        return 0;
    }
    if (strcmp(key, "peer") == 0) {
        fe_rfcomm_peer p;
        int rc = parse_peer(value, &p, err, err_len);
        if (rc != 0)
            return rc;
        if (cfg->peer_count >= FE_RFCOMM_PEERS_MAX)
            return err_line(err, err_len, "peer: at most %u peers", (unsigned)FE_RFCOMM_PEERS_MAX);
        cfg->peers[cfg->peer_count++] = p;
        return 0;
    }
    static const char *const durations[] = {"inquiry_interval", "connect_timeout", "idle_timeout",
                                            "backoff_min", "backoff_max"};
    for (size_t i = 0; i < sizeof(durations) / sizeof(durations[0]); i++) {
        if (strcmp(key, durations[i]) != 0)
            continue;
        if (parse_duration(value, &ms) != 0 || ms == 0)
            return err_line(err, err_len,
                            "%s: expected a duration such as 500ms, 20s, 5m or 1h, got '%s'", key,
                            value);
        uint64_t *fields[] = {&cfg->inquiry_interval_ms, &cfg->connect_timeout_ms,
                              &cfg->idle_timeout_ms, &cfg->backoff_min_ms, &cfg->backoff_max_ms};
        *fields[i] = ms;
        return 0;
    }
    if (err != NULL && err_len > 0)
        snprintf(err, err_len, "unknown key '%s' in the rfcomm section", key);
    return FE_ERR_NOTFOUND;
}

int fe_rfcomm_config_check(const fe_rfcomm_config *c, char *err, size_t err_len)
{
    fe_bt_addr a;
    if (c == NULL)
        return err_line(err, err_len, "no configuration");
    if (parse_adapter(c->adapter, &a) == -1)
        return err_line(err, err_len, "adapter: expected hci0..hci15 or an address, got '%s'",
                        c->adapter);
    if (c->channel > FE_BT_CHANNEL_MAX)
        return err_line(err, err_len, "channel: expected 1..30 or auto");
    if (c->max_links < 1 || c->max_links > FE_RFCOMM_LINKS_MAX)
        return err_line(err, err_len, "max_links: expected 1..%u", (unsigned)FE_RFCOMM_LINKS_MAX);
    if (c->mtu < FE_MTU_MIN || c->mtu > FE_FRAME_MAX)
        return err_line(err, err_len, "mtu: expected %u..%u", (unsigned)FE_MTU_MIN,
                        (unsigned)FE_FRAME_MAX);
    if (c->inquiry_length < 1 || c->inquiry_length > FE_BT_INQUIRY_LENGTH_MAX)
        return err_line(err, err_len, "inquiry_length: expected 1..48");
    if (c->inquiry_interval_ms < 10000u)
        return err_line(err, err_len, "inquiry_interval: at least 10s");
    if (c->connect_timeout_ms == 0 || c->idle_timeout_ms == 0)
        return err_line(err, err_len, "connect_timeout and idle_timeout must be positive");
    if (c->backoff_min_ms < 10 || c->backoff_min_ms > c->backoff_max_ms)
        return err_line(err, err_len, "backoff_min must be at least 10ms and at most backoff_max");
    if (c->backoff_max_ms > 86400000u)
        return err_line(err, err_len, "backoff_max: at most 1d");
    if (c->bad_frames_max < 1)
        return err_line(err, err_len, "bad_frames: at least 1");
    if (c->peer_count > FE_RFCOMM_PEERS_MAX)
        return err_line(err, err_len, "at most %u peers", (unsigned)FE_RFCOMM_PEERS_MAX);
    for (size_t i = 0; i < c->peer_count; i++) {
        char buf[FE_BT_ADDR_CHARS];
        if (fe_bt_addr_is_any(&c->peers[i].addr) || c->peers[i].channel > FE_BT_CHANNEL_MAX)
            return err_line(err, err_len, "peer %zu: bad address or channel", i + 1);
        for (size_t j = 0; j < i; j++) {
            if (fe_bt_addr_eq(&c->peers[i].addr, &c->peers[j].addr))
                return err_line(err, err_len, "peer %s is listed twice",
                                addr_str(&c->peers[i].addr, buf));
        }
    }
    return 0;
}

/* --- small helpers --- */

static uint32_t rng_next(rfcomm_state *s)
{
    uint32_t x = s->rng; /* xorshift32: jitter only, not security */
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    s->rng = x;
    return x;
}

/* Delay before the next attempt after `failures` consecutive failures:
 * backoff_min doubled per failure up to backoff_max, then a random point in
 * its upper half so that two nodes do not redial in lockstep. */
static uint64_t backoff_ms(rfcomm_state *s, unsigned failures)
{
    uint64_t d = s->cfg.backoff_min_ms;
    for (unsigned i = 1; i < failures && d < s->cfg.backoff_max_ms; i++)
        d *= 2;
    if (d > s->cfg.backoff_max_ms)
        d = s->cfg.backoff_max_ms;
    uint64_t half = d / 2;
    return d - half + (half > 0 ? rng_next(s) % (half + 1) : 0);
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static size_t count_active(const rfcomm_state *s, size_t *up, size_t *connecting)
{
    size_t u = 0, c = 0;
    for (size_t i = 0; i < s->cfg.max_links; i++) {
        if (s->conns[i].st == C_UP)
            u++;
        else if (s->conns[i].st == C_CONNECTING)
            c++;
    }
    if (up != NULL)
        *up = u;
    if (connecting != NULL)
        *connecting = c;
    return u + c;
}

static conn *conn_by_serial(rfcomm_state *s, uint32_t serial)
{
    for (size_t i = 0; i < s->cfg.max_links; i++) {
        if (s->conns[i].st != C_FREE && s->conns[i].serial == serial)
            return &s->conns[i];
    }
    return NULL;
}

static conn *conn_by_addr(rfcomm_state *s, const fe_bt_addr *a, const conn *except)
{
    for (size_t i = 0; i < s->cfg.max_links; i++) {
        conn *c = &s->conns[i];
        if (c != except && c->st != C_FREE && fe_bt_addr_eq(&c->addr, a))
            return c;
    }
    return NULL;
}

static conn *conn_free_slot(rfcomm_state *s)
{
    for (size_t i = 0; i < s->cfg.max_links; i++) {
        if (s->conns[i].st == C_FREE)
            return &s->conns[i];
    }
    return NULL;
}

static remote *remote_by_addr(rfcomm_state *s, const fe_bt_addr *a)
{
    for (size_t i = 0; i < FE_RFCOMM_REMOTES_MAX; i++) {
        if (s->remotes[i].used && fe_bt_addr_eq(&s->remotes[i].addr, a))
            return &s->remotes[i];
    }
    return NULL;
}

static int neg_cached(rfcomm_state *s, const fe_bt_addr *a)
{
    for (size_t i = 0; i < FE_RFCOMM_NEGCACHE_MAX; i++) {
        if (s->neg[i].until_ms > s->now && fe_bt_addr_eq(&s->neg[i].addr, a))
            return 1;
    }
    return 0;
}

static void neg_add(rfcomm_state *s, const fe_bt_addr *a)
{
    s->neg[s->neg_next].addr = *a;
    s->neg[s->neg_next].until_ms = s->now + FE_RFCOMM_NEGCACHE_MS;
    s->neg_next = (s->neg_next + 1) % FE_RFCOMM_NEGCACHE_MAX;
}

/* The dial window: at most FE_RFCOMM_DIALS_PER_MIN dials in any minute. */
static uint64_t dial_window_free_at(const rfcomm_state *s)
{
    if (s->dial_count < FE_RFCOMM_DIALS_PER_MIN)
        return 0;
    return s->dial_times[s->dial_head] + DIAL_WINDOW_MS;
}

static void dial_window_note(rfcomm_state *s)
{
    if (s->dial_count < FE_RFCOMM_DIALS_PER_MIN) {
        s->dial_times[(s->dial_head + s->dial_count) % FE_RFCOMM_DIALS_PER_MIN] = s->now;
        s->dial_count++;
    } else {
        s->dial_times[s->dial_head] = s->now;
        s->dial_head = (s->dial_head + 1) % FE_RFCOMM_DIALS_PER_MIN;
    }
}

static int ep_set(rfcomm_state *s, int op, int fd, uint32_t events, uint32_t kind, uint32_t serial)
{
    struct epoll_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.events = events;
    ev.data.u64 = (uint64_t)kind << 32 | serial;
    return epoll_ctl(s->ep, op, fd, &ev);
}

static void set_security_low(int fd)
{
    /* Low: no pairing and no PIN; see hw/bluetooth.md for the trade-off.
     * It is the kernel's default too; said here so it cannot drift. */
    struct bt_security sec;
    memset(&sec, 0, sizeof(sec));
    sec.level = BT_SECURITY_LOW;
    (void)setsockopt(fd, SOL_BLUETOOTH, BT_SECURITY, &sec, sizeof(sec));
}

/* --- the discovery thread --- */

static void *disc_main(void *arg)
{
    rfcomm_state *s = arg;
    const fe_bt_discovery *d = s->disc;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->th_stop && !s->job_pending)
            pthread_cond_wait(&s->cv, &s->mu);
        if (s->th_stop)
            break;
        disc_job job = s->job;
        pthread_mutex_unlock(&s->mu);

        if (job.kind == JOB_INQUIRY) {
            job.found_rc =
                d->ops->inquiry(d->ctx, job.dev_id, job.length, job.found, FE_BT_INQUIRY_MAX);
        } else {
            for (size_t i = 0; i < job.n; i++) {
                int stop;
                pthread_mutex_lock(&s->mu);
                stop = s->th_stop;
                pthread_mutex_unlock(&s->mu);
                job.lrc[i] = FE_ERR_EXPIRED;
                job.lch[i] = 0;
                if (!stop)
                    job.lrc[i] = d->ops->lookup(d->ctx, &job.local, &job.addrs[i], &job.lch[i]);
            }
        }

        pthread_mutex_lock(&s->mu);
        s->job = job;
        s->job_pending = 0;
        s->job_done = 1;
        uint64_t one = 1;
        (void)!write(s->wake_fd, &one, sizeof(one));
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* Hand job to the thread, starting it on first use. 0 or -1. */
static int disc_submit(rfcomm_state *s, const disc_job *job)
{
    if (s->job_busy)
        return -1;
    if (!s->th_started) {
        if (pthread_create(&s->th, NULL, disc_main, s) != 0) {
            if (!s->thread_warned)
                logf_(s, FE_RFCOMM_LOG_WARN,
                      "cannot start the discovery thread; no inquiry or SDP lookups");
            s->thread_warned = 1;
            return -1;
        }
        s->th_started = 1;
    }
    pthread_mutex_lock(&s->mu);
    s->job = *job;
    s->job_pending = 1;
    s->job_done = 0;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    s->job_busy = 1;
    return 0;
}

static void disc_stop_thread(rfcomm_state *s)
{
    if (!s->th_started)
        return;
    pthread_mutex_lock(&s->mu);
    s->th_stop = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    /* Waits for a lookup or inquiry in progress: at most one step of it. */
    pthread_join(s->th, NULL);
    s->th_started = 0;
    s->th_stop = 0;
    s->job_pending = s->job_done = s->job_busy = 0;
}

/* --- connections --- */

static void on_frame(void *ctx, const uint8_t *frame, size_t len);

static uint64_t bad_sum(const fe_stream_dec_stats *d)
{
    return d->crc_errors + d->runts + d->oversize + d->aborted;
}

/* Bad frames since the last good one, unframed bytes counted in chunks. */
static uint64_t bad_since_good(const conn *c)
{
    return (bad_sum(&c->dec.stats) - c->bad_mark) +
           (c->dec.stats.skipped - c->skip_mark) / FE_RFCOMM_GARBAGE_BYTES;
}

static conn *conn_new(rfcomm_state *s, int fd, const fe_bt_addr *addr, uint8_t channel,
                      int outgoing)
{
    conn *c = conn_free_slot(s);
    if (c == NULL)
        return NULL;
    memset(c, 0, offsetof(conn, dec));
    c->s = s;
    c->fd = fd;
    c->serial = ++s->next_serial;
    if (c->serial == 0) /* 2^32 connections later: skip 0, which means "no peer" */
        c->serial = ++s->next_serial;
    c->outgoing = outgoing;
    c->addr = *addr;
    c->channel = channel;
    c->started_ms = s->now;
    c->last_rx_ms = s->now;
    if (fe_stream_dec_init(&c->dec, FE_FRAME_MAX, on_frame, c) != 0)
        return NULL;      /* cannot happen: constant arguments */
    c->st = C_CONNECTING; /* conn_up makes it C_UP, also for accepted ones */
    return c;
}

/* A link ended. up_for_ms decides whether the remote's backoff restarts. */
static void remote_after_link(rfcomm_state *s, const fe_bt_addr *a, uint64_t up_for_ms)
{
    remote *r = remote_by_addr(s, a);
    if (r == NULL || conn_by_addr(s, a, NULL) != NULL)
        return; /* still connected through another link */
    if (up_for_ms >= FE_RFCOMM_STABLE_MS)
        r->failures = 0;
    else if (r->failures < 64)
        r->failures++;
    r->next_ms = s->now + backoff_ms(s, r->failures);
}

/* Close c; report peer_down if it was up. `dup` marks the loser of a
 * duplicate pair, whose remote is still connected through the winner. */
static void conn_drop(rfcomm_state *s, conn *c, const char *why, int level, int dup)
{
    char a[FE_BT_ADDR_CHARS];
    int was_up = c->st == C_UP;
    uint64_t up_for = s->now - c->started_ms;
    uint32_t peer = c->serial;
    fe_bt_addr addr = c->addr;

    uint64_t bad = bad_sum(&c->dec.stats);
    s->st.rx_bad_frames += bad - c->bad_seen;
    c->bad_seen = bad;
    if (c->fd >= 0) {
        epoll_ctl(s->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->st = C_FREE;
    c->tx_start = c->tx_end = 0;
    if (was_up) {
        size_t up;
        count_active(s, &up, NULL);
        logf_(s, level, "link down: %s (peer %u): %s; %zu/%zu links", addr_str(&addr, a),
              (unsigned)peer, why, up, s->cfg.max_links);
        if (!dup)
            remote_after_link(s, &addr, up_for);
        if (s->t->ev.peer_down != NULL)
            s->t->ev.peer_down(s->t->ev.ctx, s->t, peer);
    }
}

static void dial_failed(rfcomm_state *s, remote *r, const char *why)
{
    char a[FE_BT_ADDR_CHARS];
    s->st.dial_failures++;
    if (r == NULL)
        return;
    if (r->failures < 64)
        r->failures++;
    r->dial_streak++;
    uint64_t delay = backoff_ms(s, r->failures);
    r->next_ms = s->now + delay;
    /* The first failure of a streak is worth a line; the rest would flood. */
    int level = r->dial_streak == 1 ? FE_RFCOMM_LOG_INFO : FE_RFCOMM_LOG_DEBUG;
    logf_(s, level,
          "cannot connect to %s channel %u: %s; retrying in %llu ms (attempt %u; backoff up to "
          "%llu ms)",
          addr_str(&r->addr, a), (unsigned)r->channel, why, (unsigned long long)delay,
          r->dial_streak, (unsigned long long)s->cfg.backoff_max_ms);
    if (r->channel_cfg == 0) {
        /* The channel came from SDP or a guess: ask again next time, the
         * node may have restarted on another one. */
        r->channel = 0;
        r->fallback = 0;
    }
    if (r->kind == R_DISCOVERED && r->failures >= FE_RFCOMM_DISCOVERED_FAILS) {
        /* Seen by inquiry but never answering: leave it alone for a while,
         * as a device without ferry. */
        logf_(s, FE_RFCOMM_LOG_DEBUG, "giving up on %s for %u min", addr_str(&r->addr, a),
              (unsigned)(FE_RFCOMM_NEGCACHE_MS / 60000u));
        neg_add(s, &r->addr);
        memset(r, 0, sizeof(*r));
    }
}

static void update_out_interest(rfcomm_state *s, conn *c)
{
    int want = c->tx_start < c->tx_end && !c->failed;
    if (c->st != C_UP || want == c->want_out)
        return;
    uint32_t ev = EPOLLIN | (want ? EPOLLOUT : 0u);
    if (ep_set(s, EPOLL_CTL_MOD, c->fd, ev, TAG_CONN, c->serial) == 0)
        c->want_out = want;
}

static void conn_flush(rfcomm_state *s, conn *c)
{
    while (c->tx_start < c->tx_end && !c->failed) {
        ssize_t n =
            send(c->fd, c->tx + c->tx_start, c->tx_end - c->tx_start, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            c->tx_start += (size_t)n;
            s->st.tx_bytes += (uint64_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else {
            c->failed = n < 0 ? errno : EPIPE;
        }
    }
    if (c->tx_start == c->tx_end)
        c->tx_start = c->tx_end = 0;
    update_out_interest(s, c);
}

/* Which of two connections to the same device to keep, the same on both
 * ends: the one dialled by the higher address; between two dialled by the
 * same end, the newer (the older is likely dead and not yet noticed). */
static int keep_newer(const rfcomm_state *s, const conn *old, const conn *nu)
{
    if (old->outgoing == nu->outgoing)
        return 1;
    int we_are_higher = fe_bt_addr_cmp(&s->local, &nu->addr) > 0;
    return nu->outgoing ? we_are_higher : !we_are_higher;
}

/* c just connected (outgoing) or was accepted (incoming). */
static void conn_up(rfcomm_state *s, conn *c)
{
    char a[FE_BT_ADDR_CHARS];
    conn *other = conn_by_addr(s, &c->addr, c);
    if (other != NULL && other->st == C_UP) {
        s->st.duplicates++;
        if (!keep_newer(s, other, c)) {
            logf_(s, FE_RFCOMM_LOG_DEBUG,
                  "closing a second connection with %s (%s): the other one wins",
                  addr_str(&c->addr, a), c->outgoing ? "outgoing" : "incoming");
            epoll_ctl(s->ep, EPOLL_CTL_DEL, c->fd, NULL);
            close(c->fd);
            c->fd = -1;
            c->st = C_FREE;
            return;
        }
        conn_drop(s, other, "replaced by a connection the other end also keeps",
                  FE_RFCOMM_LOG_DEBUG, 1);
    }
    c->st = C_UP;
    c->started_ms = s->now;
    c->last_rx_ms = s->now;
    c->want_out = 0;
    if (ep_set(s, EPOLL_CTL_MOD, c->fd, EPOLLIN, TAG_CONN, c->serial) != 0) {
        conn_drop(s, c, "epoll failed", FE_RFCOMM_LOG_WARN, 0);
        return;
    }
    remote *r = remote_by_addr(s, &c->addr);
    if (r != NULL && r->dial_streak > 0)
        logf_(s, FE_RFCOMM_LOG_INFO, "connected with %s after %u failed attempts",
              addr_str(&c->addr, a), r->dial_streak);
    if (r != NULL)
        r->dial_streak = 0;
    size_t up;
    count_active(s, &up, NULL);
    s->st.links_up_total++;
    logf_(s, FE_RFCOMM_LOG_INFO, "link up: %s channel %u (%s), peer %u; %zu/%zu links",
          addr_str(&c->addr, a), (unsigned)c->channel, c->outgoing ? "outgoing" : "incoming",
          (unsigned)c->serial, up, s->cfg.max_links);
    if (s->t->ev.peer_up != NULL)
        s->t->ev.peer_up(s->t->ev.ctx, s->t, c->serial);
}

static void on_frame(void *ctx, const uint8_t *frame, size_t len)
{
    conn *c = ctx;
    rfcomm_state *s = c->s;
    if (c->garbage || c->st != C_UP)
        return;
    if (bad_since_good(c) >= s->cfg.bad_frames_max) {
        c->garbage = 1; /* the run of bad frames was long enough: no more frames */
        return;
    }
    c->bad_mark = bad_sum(&c->dec.stats);
    c->skip_mark = c->dec.stats.skipped;
    c->last_rx_ms = s->now;
    s->st.rx_frames++;
    if (s->t->ev.frame_in != NULL)
        s->t->ev.frame_in(s->t->ev.ctx, s->t, c->serial, frame, len);
}

static void conn_read(rfcomm_state *s, conn *c)
{
    uint8_t buf[FE_RFCOMM_RXBUF_BYTES];
    for (int i = 0; i < FE_RFCOMM_RX_READS && c->st == C_UP; i++) {
        ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0) {
            s->st.rx_bytes += (uint64_t)n;
            uint32_t serial = c->serial;
            fe_stream_dec_feed(&c->dec, buf, (size_t)n);
            if (c->st != C_UP || c->serial != serial)
                return; /* cannot happen unless a callback closed the driver */
            uint64_t bad = bad_sum(&c->dec.stats);
            s->st.rx_bad_frames += bad - c->bad_seen;
            c->bad_seen = bad;
            if (c->garbage || bad_since_good(c) >= s->cfg.bad_frames_max) {
                char msg[96];
                snprintf(msg, sizeof(msg), "%llu bad frames in a row (not ferry, or a broken link)",
                         (unsigned long long)bad_since_good(c));
                s->st.garbage_drops++;
                conn_drop(s, c, msg, FE_RFCOMM_LOG_INFO, 0);
                return;
            }
            continue;
        }
        if (n == 0) {
            conn_drop(s, c, "closed by the other end", FE_RFCOMM_LOG_INFO, 0);
            return;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return;
        conn_drop(s, c, strerror(errno), FE_RFCOMM_LOG_INFO, 0);
        return;
    }
}

/* --- dialling --- */

static void dial(rfcomm_state *s, remote *r)
{
    char a[FE_BT_ADDR_CHARS];
    dial_window_note(s);
    s->st.dials++;
    int fd = socket(AF_BLUETOOTH, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, BTPROTO_RFCOMM);
    if (fd < 0) {
        dial_failed(s, r, strerror(errno));
        return;
    }
    set_security_low(fd);
    /* Bind to our adapter so the connection leaves through it, not through
     * whichever adapter the kernel would pick. */
    struct sockaddr_rc loc;
    memset(&loc, 0, sizeof(loc));
    loc.rc_family = AF_BLUETOOTH;
    memcpy(&loc.rc_bdaddr, s->local.b, sizeof(loc.rc_bdaddr));
    loc.rc_channel = 0;
    if (bind(fd, (struct sockaddr *)&loc, sizeof(loc)) != 0) {
        int e = errno;
        close(fd);
        dial_failed(s, r, strerror(e));
        return;
    }
    struct sockaddr_rc rem;
    memset(&rem, 0, sizeof(rem));
    rem.rc_family = AF_BLUETOOTH;
    memcpy(&rem.rc_bdaddr, r->addr.b, sizeof(rem.rc_bdaddr));
    rem.rc_channel = r->channel;
    int rc = connect(fd, (struct sockaddr *)&rem, sizeof(rem));
    if (rc != 0 && errno != EINPROGRESS && errno != EAGAIN) {
        int e = errno;
        close(fd);
        dial_failed(s, r, strerror(e));
        return;
    }
    conn *c = conn_new(s, fd, &r->addr, r->channel, 1);
    if (c == NULL || ep_set(s, EPOLL_CTL_ADD, fd, EPOLLOUT, TAG_CONN, c->serial) != 0) {
        if (c != NULL)
            c->st = C_FREE;
        close(fd);
        dial_failed(s, r, "no room for another connection");
        return;
    }
    logf_(s, FE_RFCOMM_LOG_DEBUG, "dialling %s channel %u%s", addr_str(&r->addr, a),
          (unsigned)r->channel, r->fallback ? " (no SDP record: trying the default channel)" : "");
    if (rc == 0)
        conn_up(s, c);
}

static void connect_done(rfcomm_state *s, conn *c)
{
    int e = 0;
    socklen_t len = sizeof(e);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0)
        e = errno;
    if (e == EINPROGRESS)
        return; /* spurious wake-up */
    if (e == 0) {
        conn_up(s, c);
        return;
    }
    fe_bt_addr addr = c->addr;
    epoll_ctl(s->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->st = C_FREE;
    const char *why = strerror(e);
    char msg[128];
    if (e == ECONNREFUSED) {
        snprintf(msg, sizeof(msg), "%s (ferry not running there, or on another channel)", why);
        why = msg;
    } else if (e == EHOSTDOWN || e == ETIMEDOUT) {
        snprintf(msg, sizeof(msg), "%s (out of range or switched off)", why);
        why = msg;
    }
    dial_failed(s, remote_by_addr(s, &addr), why);
}

/* --- adapter --- */

/* Look at the configured adapter: RUNNING with dev_id and local filled, or
 * another state with a reason. Changes nothing else. */
static enum fe_rfcomm_state adapter_probe(rfcomm_state *s, int *dev_id, fe_bt_addr *local,
                                          char *why, size_t why_len)
{
    fe_bt_addr want;
    int id = parse_adapter(s->cfg.adapter, &want);
    struct hci_dev_info di;
    s->st.adapter_checks++;
    int found = 0, e = ENODEV;
    if (id >= 0) {
        memset(&di, 0, sizeof(di));
        if (hci_devinfo(id, &di) == 0)
            found = 1;
        else
            e = errno;
    } else {
        for (int i = 0; i < HCI_DEVS_MAX && !found; i++) {
            memset(&di, 0, sizeof(di));
            if (hci_devinfo(i, &di) != 0) {
                if (errno != ENODEV)
                    e = errno;
                continue;
            }
            if (memcmp(&di.bdaddr, want.b, FE_BT_ADDR_BYTES) == 0) {
                found = 1;
                id = i;
            }
        }
    }
    if (!found) {
        if (e == EAFNOSUPPORT || e == EPROTONOSUPPORT || e == ESOCKTNOSUPPORT) {
            snprintf(why, why_len, "this kernel has no Bluetooth support (%s)", strerror(e));
            return FE_RFCOMM_NO_KERNEL;
        }
        if (e == EPERM || e == EACCES) {
            snprintf(why, why_len, "permission denied on Bluetooth adapter %s (%s)", s->cfg.adapter,
                     strerror(e));
            return FE_RFCOMM_NO_PERMISSION;
        }
        snprintf(why, why_len, "no Bluetooth adapter (%s not found)", s->cfg.adapter);
        return FE_RFCOMM_NO_ADAPTER;
    }
    if (!hci_test_bit(HCI_UP, &di.flags)) {
        snprintf(why, why_len,
                 "Bluetooth adapter %s is powered off or blocked (try: rfkill unblock "
                 "bluetooth; bluetoothctl power on)",
                 s->cfg.adapter);
        return FE_RFCOMM_ADAPTER_DOWN;
    }
    *dev_id = id;
    memcpy(local->b, &di.bdaddr, FE_BT_ADDR_BYTES);
    why[0] = '\0';
    return FE_RFCOMM_RUNNING;
}

static void listener_start(rfcomm_state *s)
{
    char a[FE_BT_ADDR_CHARS];
    int fd = socket(AF_BLUETOOTH, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, BTPROTO_RFCOMM);
    const char *step = "socket";
    if (fd < 0)
        goto fail;
    set_security_low(fd);
    struct sockaddr_rc sa;
    memset(&sa, 0, sizeof(sa));
    sa.rc_family = AF_BLUETOOTH;
    memcpy(&sa.rc_bdaddr, s->local.b, sizeof(sa.rc_bdaddr));
    sa.rc_channel = s->cfg.channel; /* 0: the kernel picks one at listen */
    step = "bind";
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        goto fail;
    step = "listen";
    if (listen(fd, LISTEN_BACKLOG) != 0)
        goto fail;
    socklen_t len = sizeof(sa);
    step = "getsockname";
    if (getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
        goto fail;
    step = "epoll";
    if (ep_set(s, EPOLL_CTL_ADD, fd, EPOLLIN, TAG_LISTEN, 0) != 0)
        goto fail;
    s->lfd = fd;
    s->bound_channel = sa.rc_channel;
    s->listen_warned = 0;
    logf_(s, FE_RFCOMM_LOG_INFO, "listening on %s (%s) channel %u", s->cfg.adapter,
          addr_str(&s->local, a), (unsigned)s->bound_channel);
    return;
fail:;
    int e = errno;
    if (fd >= 0)
        close(fd);
    if (!s->listen_warned) {
        if (e == EADDRINUSE)
            logf_(s, FE_RFCOMM_LOG_WARN,
                  "channel %u on %s is taken by another service; set channel = auto or another "
                  "channel; dialling out only for now",
                  (unsigned)s->cfg.channel, s->cfg.adapter);
        else
            logf_(s, FE_RFCOMM_LOG_WARN, "cannot listen (%s: %s); dialling out only for now", step,
                  strerror(e));
    }
    s->listen_warned = 1;
}

/* Register the SDP record, or make sure it is still there: called at start
 * and at every adapter check, so a record lost when bluetoothd restarted
 * comes back within FE_RFCOMM_ADAPTER_RETRY_MS. */
static void advertise(rfcomm_state *s)
{
    if (!s->cfg.advertise || s->lfd < 0)
        return;
    char err[200] = "";
    int rc =
        s->disc->ops->register_service(s->disc->ctx, &s->local, s->bound_channel, err, sizeof(err));
    if (rc == 0) {
        if (!s->registered)
            logf_(s, FE_RFCOMM_LOG_INFO, "advertising the ferry service (SDP) on channel %u",
                  (unsigned)s->bound_channel);
        s->registered = 1;
        s->sdp_warned = 0;
        return;
    }
    s->registered = 0;
    if (!s->sdp_warned) {
        if (s->bound_channel == FE_RFCOMM_CHANNEL_DEFAULT)
            logf_(s, FE_RFCOMM_LOG_WARN,
                  "%s; other nodes will still find this one on the default channel %u", err,
                  (unsigned)s->bound_channel);
        else
            logf_(s, FE_RFCOMM_LOG_WARN,
                  "%s; other nodes must list this one as 'peer = <address> %u'", err,
                  (unsigned)s->bound_channel);
    }
    s->sdp_warned = 1;
}

static void add_static_remotes(rfcomm_state *s)
{
    memset(s->remotes, 0, sizeof(s->remotes));
    for (size_t i = 0; i < s->cfg.peer_count && i < FE_RFCOMM_PEERS_MAX; i++) {
        remote *r = &s->remotes[i];
        r->used = 1;
        r->kind = R_STATIC;
        r->addr = s->cfg.peers[i].addr;
        r->channel_cfg = s->cfg.peers[i].channel;
        r->channel = r->channel_cfg;
        r->next_ms = 0;
    }
}

static void go_running(rfcomm_state *s)
{
    s->state = FE_RFCOMM_RUNNING;
    s->reason[0] = '\0';
    if (s->lfd < 0)
        listener_start(s);
    advertise(s);
    for (size_t i = 0; i < FE_RFCOMM_REMOTES_MAX; i++) {
        if (s->remotes[i].used) {
            s->remotes[i].failures = 0;
            s->remotes[i].dial_streak = 0;
            s->remotes[i].next_ms = 0;
        }
    }
    s->inquiry_at = 0;
}

/* Leave the running state: every link ends (peer_down for those up). */
static void go_inert(rfcomm_state *s, enum fe_rfcomm_state st, const char *why)
{
    for (size_t i = 0; i < s->cfg.max_links; i++) {
        conn *c = &s->conns[i];
        if (c->st == C_UP)
            conn_drop(s, c, why, FE_RFCOMM_LOG_DEBUG, 1);
        else if (c->st == C_CONNECTING)
            conn_drop(s, c, why, FE_RFCOMM_LOG_DEBUG, 1);
    }
    if (s->lfd >= 0) {
        epoll_ctl(s->ep, EPOLL_CTL_DEL, s->lfd, NULL);
        close_fd(&s->lfd);
    }
    s->bound_channel = 0;
    if (s->registered)
        s->disc->ops->unregister_service(s->disc->ctx);
    s->registered = 0;
    s->state = st;
    snprintf(s->reason, sizeof(s->reason), "%s", why);
}

/* Probe the adapter and move between running and inert. `first`: at open,
 * where even "unchanged" deserves its line. */
static void adapter_check(rfcomm_state *s, int first)
{
    char why[160];
    int dev_id = -1;
    fe_bt_addr local;
    memset(&local, 0, sizeof(local));
    enum fe_rfcomm_state st = adapter_probe(s, &dev_id, &local, why, sizeof(why));
    if (st == FE_RFCOMM_RUNNING) {
        if (s->state == FE_RFCOMM_RUNNING && fe_bt_addr_eq(&local, &s->local)) {
            if (s->lfd < 0)
                listener_start(s); /* retry a listener that failed */
            advertise(s);
            return;
        }
        if (s->state == FE_RFCOMM_RUNNING)
            go_inert(s, FE_RFCOMM_NO_ADAPTER, "the adapter changed");
        char a[FE_BT_ADDR_CHARS];
        s->dev_id = dev_id;
        s->local = local;
        logf_(s, FE_RFCOMM_LOG_INFO, "Bluetooth adapter %s (%s) is up%s", s->cfg.adapter,
              addr_str(&local, a), first ? "" : " again");
        go_running(s);
        return;
    }
    if (s->state == st && !first)
        return; /* still the same problem: said already */
    if (s->state == FE_RFCOMM_RUNNING)
        logf_(s, FE_RFCOMM_LOG_WARN, "%s; Bluetooth paused, other transports keep running", why);
    else
        logf_(s, first ? FE_RFCOMM_LOG_WARN : FE_RFCOMM_LOG_INFO,
              "%s; Bluetooth disabled, other transports keep running (checking again every %u s)",
              why, (unsigned)(FE_RFCOMM_ADAPTER_RETRY_MS / 1000u));
    go_inert(s, st, why);
}

/* --- discovery results --- */

static remote *remote_add_discovered(rfcomm_state *s, const fe_bt_addr *a)
{
    remote *slot = NULL;
    for (size_t i = 0; i < FE_RFCOMM_REMOTES_MAX && slot == NULL; i++) {
        if (!s->remotes[i].used)
            slot = &s->remotes[i];
    }
    if (slot == NULL) {
        /* Full: replace the discovered device that failed most, if it is
         * not connected or being looked up. Static peers stay. */
        for (size_t i = 0; i < FE_RFCOMM_REMOTES_MAX; i++) {
            remote *r = &s->remotes[i];
            if (r->kind != R_DISCOVERED || r->in_lookup || conn_by_addr(s, &r->addr, NULL))
                continue;
            if (slot == NULL || r->failures > slot->failures)
                slot = r;
        }
        if (slot == NULL)
            return NULL;
    }
    memset(slot, 0, sizeof(*slot));
    slot->used = 1;
    slot->kind = R_DISCOVERED;
    slot->addr = *a;
    slot->next_ms = s->now;
    return slot;
}

static void job_collect(rfcomm_state *s)
{
    char a[FE_BT_ADDR_CHARS];
    uint64_t v;
    while (read(s->wake_fd, &v, sizeof(v)) > 0) {
    }
    disc_job job;
    pthread_mutex_lock(&s->mu);
    int done = s->job_done;
    if (done) {
        job = s->job;
        s->job_done = 0;
    }
    pthread_mutex_unlock(&s->mu);
    if (!done)
        return;
    s->job_busy = 0;

    if (job.kind == JOB_INQUIRY) {
        if (job.found_rc < 0) {
            if (!s->inquiry_warned)
                logf_(s, FE_RFCOMM_LOG_WARN, "inquiry failed (%s); trying again in %llu s",
                      fe_strerror(job.found_rc),
                      (unsigned long long)(s->cfg.inquiry_interval_ms / 1000u));
            s->inquiry_warned = 1;
            return;
        }
        s->inquiry_warned = 0;
        size_t added = 0;
        for (int i = 0; i < job.found_rc && i < FE_BT_INQUIRY_MAX; i++) {
            const fe_bt_addr *f = &job.found[i];
            if (fe_bt_addr_eq(f, &s->local) || neg_cached(s, f) || remote_by_addr(s, f) != NULL)
                continue;
            if (s->state == FE_RFCOMM_RUNNING && remote_add_discovered(s, f) != NULL)
                added++;
        }
        logf_(s, FE_RFCOMM_LOG_DEBUG, "inquiry: %d devices, %zu new to ask for ferry", job.found_rc,
              added);
        return;
    }

    for (size_t i = 0; i < job.n; i++) {
        remote *r = remote_by_addr(s, &job.addrs[i]);
        if (r == NULL)
            continue;
        r->in_lookup = 0;
        if (s->state != FE_RFCOMM_RUNNING)
            continue;
        int rc = job.lrc[i];
        if (rc == 0) {
            r->channel = job.lch[i];
            r->fallback = 0;
            logf_(s, FE_RFCOMM_LOG_DEBUG, "%s offers ferry on channel %u", addr_str(&r->addr, a),
                  (unsigned)r->channel);
        } else if (rc == FE_ERR_NOTFOUND && r->kind == R_STATIC) {
            /* A configured peer without a record (bluetoothd without
             * --compat there): try the default channel. */
            r->channel = FE_RFCOMM_CHANNEL_DEFAULT;
            r->fallback = 1;
        } else if (rc == FE_ERR_NOTFOUND) {
            logf_(s, FE_RFCOMM_LOG_DEBUG, "%s does not run ferry; not asking again for %u min",
                  addr_str(&r->addr, a), (unsigned)(FE_RFCOMM_NEGCACHE_MS / 60000u));
            neg_add(s, &r->addr);
            memset(r, 0, sizeof(*r));
            continue;
        } else {
            s->st.lookup_failures++;
            dial_failed(s, r, "no answer to the SDP query");
            continue;
        }
        /* Connect now if a link slot is free and the dial window allows
         * (the connect counts in it like the lookup did); else schedule()
         * dials when both do. */
        r->next_ms = s->now;
        if (count_active(s, NULL, NULL) < s->cfg.max_links &&
            conn_by_addr(s, &r->addr, NULL) == NULL && dial_window_free_at(s) <= s->now)
            dial(s, r);
    }
}

/* --- scheduling --- */

/* When r may next be tried, or UINT64_MAX when nothing is to be done for it
 * now (connected, being looked up, or waiting for the busy thread). */
static uint64_t remote_ready_at(rfcomm_state *s, const remote *r)
{
    if (!r->used || r->in_lookup || conn_by_addr(s, &r->addr, NULL) != NULL)
        return UINT64_MAX;
    if (r->channel == 0 && s->job_busy && !s->thread_warned)
        return UINT64_MAX; /* needs SDP and the thread is busy: its answer wakes us */
    uint64_t w = dial_window_free_at(s);
    return r->next_ms > w ? r->next_ms : w;
}

static void schedule(rfcomm_state *s)
{
    if (s->state != FE_RFCOMM_RUNNING)
        return;
    /* Dial every remote that is due, while links and the window allow. */
    for (size_t i = 0; i < FE_RFCOMM_REMOTES_MAX; i++) {
        remote *r = &s->remotes[i];
        if (count_active(s, NULL, NULL) >= s->cfg.max_links)
            break;
        if (remote_ready_at(s, r) > s->now)
            continue;
        if (r->channel == 0 && s->thread_warned) {
            r->channel = FE_RFCOMM_CHANNEL_DEFAULT; /* no thread, no SDP: guess */
            r->fallback = 1;
        }
        if (r->channel != 0) {
            dial(s, r);
            continue;
        }
        if (s->job_busy)
            continue;
        /* Collect up to FE_RFCOMM_LOOKUPS_PER_JOB due remotes for SDP. */
        disc_job job;
        memset(&job, 0, sizeof(job));
        job.kind = JOB_LOOKUP;
        job.local = s->local;
        for (size_t j = i; j < FE_RFCOMM_REMOTES_MAX && job.n < FE_RFCOMM_LOOKUPS_PER_JOB; j++) {
            remote *q = &s->remotes[j];
            if (q->channel != 0 || remote_ready_at(s, q) > s->now)
                continue;
            if (job.n > 0 && dial_window_free_at(s) > s->now)
                break;
            dial_window_note(s);
            q->in_lookup = 1;
            job.addrs[job.n++] = q->addr;
        }
        if (disc_submit(s, &job) == 0) {
            s->st.lookups += job.n;
        } else {
            for (size_t k = 0; k < FE_RFCOMM_REMOTES_MAX; k++)
                s->remotes[k].in_lookup = 0;
        }
    }
    /* Inquiry, when there is room for more links and the thread is free. */
    if (s->cfg.inquiry && !s->job_busy && !s->thread_warned && s->now >= s->inquiry_at &&
        count_active(s, NULL, NULL) < s->cfg.max_links) {
        disc_job job;
        memset(&job, 0, sizeof(job));
        job.kind = JOB_INQUIRY;
        job.dev_id = s->dev_id;
        job.length = s->cfg.inquiry_length;
        s->inquiry_at = s->now + s->cfg.inquiry_interval_ms;
        if (disc_submit(s, &job) == 0)
            s->st.inquiries++;
    }
}

static void set_now(rfcomm_state *s, uint64_t now_ms)
{
    if (!s->have_now || now_ms > s->now)
        s->now = now_ms; /* never backwards */
    s->have_now = 1;
}

/* --- the vtable --- */

static int rf_open(fe_transport *t, char *err, size_t err_len)
{
    rfcomm_state *s = state_of(t);
    if (s->is_open)
        return 0;
    s->ep = epoll_create1(EPOLL_CLOEXEC);
    if (s->ep < 0) {
        err_line(err, err_len, "rfcomm: epoll_create1: %s", strerror(errno));
        return -1;
    }
    s->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->wake_fd < 0 || ep_set(s, EPOLL_CTL_ADD, s->wake_fd, EPOLLIN, TAG_WAKE, 0) != 0) {
        err_line(err, err_len, "rfcomm: eventfd: %s", strerror(errno));
        close_fd(&s->wake_fd);
        close_fd(&s->ep);
        return -1;
    }
    s->lfd = -1;
    s->is_open = 1;
    s->state = FE_RFCOMM_CLOSED;
    s->registered = 0;
    s->adapter_armed = 0;
    s->job_busy = 0;
    s->dial_count = s->dial_head = 0;
    memset(s->neg, 0, sizeof(s->neg));
    add_static_remotes(s);
    adapter_check(s, 1);
    return 0;
}

static void rf_close(fe_transport *t)
{
    rfcomm_state *s = state_of(t);
    if (!s->is_open)
        return;
    go_inert(s, FE_RFCOMM_CLOSED, "closing");
    disc_stop_thread(s);
    close_fd(&s->wake_fd);
    close_fd(&s->ep);
    s->is_open = 0;
    s->state = FE_RFCOMM_CLOSED;
    s->reason[0] = '\0';
}

static int rf_poll_fd(fe_transport *t)
{
    rfcomm_state *s = state_of(t);
    return s->is_open ? s->ep : -1;
}

static int rf_on_readable(fe_transport *t, uint64_t now_ms)
{
    rfcomm_state *s = state_of(t);
    if (!s->is_open)
        return 0;
    set_now(s, now_ms);
    struct epoll_event evs[EPOLL_BATCH];
    int n = epoll_wait(s->ep, evs, EPOLL_BATCH, 0);
    if (n < 0)
        return errno == EINTR ? 0 : -1;
    for (int i = 0; i < n; i++) {
        uint32_t kind = (uint32_t)(evs[i].data.u64 >> 32);
        uint32_t serial = (uint32_t)evs[i].data.u64;
        uint32_t what = evs[i].events;
        if (kind == TAG_WAKE) {
            job_collect(s);
        } else if (kind == TAG_LISTEN) {
            for (int k = 0; k < FE_RFCOMM_ACCEPTS && s->lfd >= 0; k++) {
                struct sockaddr_rc sa;
                socklen_t len = sizeof(sa);
                memset(&sa, 0, sizeof(sa));
                int fd =
                    accept4(s->lfd, (struct sockaddr *)&sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0)
                    break; /* EAGAIN, or a connection that died in the queue */
                s->st.accepted++;
                fe_bt_addr a;
                memcpy(a.b, &sa.rc_bdaddr, FE_BT_ADDR_BYTES);
                char as[FE_BT_ADDR_CHARS];
                if (count_active(s, NULL, NULL) >= s->cfg.max_links) {
                    s->st.rejected_cap++;
                    logf_(s, FE_RFCOMM_LOG_DEBUG, "refusing %s: already %zu links (max_links)",
                          addr_str(&a, as), s->cfg.max_links);
                    close(fd);
                    continue;
                }
                conn *c = conn_new(s, fd, &a, s->bound_channel, 0);
                if (c == NULL || ep_set(s, EPOLL_CTL_ADD, fd, EPOLLIN, TAG_CONN, c->serial) != 0) {
                    if (c != NULL)
                        c->st = C_FREE;
                    close(fd);
                    continue;
                }
                conn_up(s, c);
            }
        } else if (kind == TAG_CONN) {
            conn *c = conn_by_serial(s, serial);
            if (c == NULL)
                continue;
            if (c->st == C_CONNECTING) {
                connect_done(s, c);
                continue;
            }
            if (what & (EPOLLIN | EPOLLHUP | EPOLLERR))
                conn_read(s, c);
            if (c->st == C_UP && c->serial == serial && (what & EPOLLOUT))
                conn_flush(s, c);
        }
    }
    schedule(s);
    return 0;
}

static int rf_send(fe_transport *t, uint32_t peer, const uint8_t *frame, size_t len,
                   enum fe_prio prio, uint64_t now_ms)
{
    rfcomm_state *s = state_of(t);
    if (!s->is_open || frame == NULL || len == 0 || len > s->cfg.mtu) {
        s->st.tx_refused++;
        return -1;
    }
    set_now(s, now_ms);
    conn *c = peer != 0 ? conn_by_serial(s, peer) : NULL;
    if (c == NULL || c->st != C_UP || c->failed) {
        s->st.tx_refused++;
        return -1;
    }
    /* Bulk and sync traffic may fill 3/4 of the buffer; the last quarter is
     * kept for receipts and small messages. */
    size_t limit = prio >= FE_PRIO_BULK ? FE_RFCOMM_TXBUF_BYTES / 4 * 3 : FE_RFCOMM_TXBUF_BYTES;
    if (c->tx_start > 0 && c->tx_end + FE_STREAM_ENCODED_MAX(len) > FE_RFCOMM_TXBUF_BYTES) {
        memmove(c->tx, c->tx + c->tx_start, c->tx_end - c->tx_start);
        c->tx_end -= c->tx_start;
        c->tx_start = 0;
    }
    ptrdiff_t n =
        fe_stream_encode(c->tx + c->tx_end, FE_RFCOMM_TXBUF_BYTES - c->tx_end, frame, len);
    if (n < 0 || c->tx_end - c->tx_start + (size_t)n > limit) {
        s->st.tx_refused++;
        return -1;
    }
    c->tx_end += (size_t)n;
    s->st.tx_frames++;
    conn_flush(s, c);
    return 0;
}

static size_t rf_mtu(fe_transport *t)
{
    return state_of(t)->cfg.mtu;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static uint64_t rf_next_deadline(fe_transport *t)
{
    rfcomm_state *s = state_of(t);
    if (!s->is_open)
        return UINT64_MAX;
    if (!s->have_now || !s->adapter_armed)
        return 0;
    uint64_t d = s->adapter_check_at;
    if (s->state != FE_RFCOMM_RUNNING)
        return d;
    for (size_t i = 0; i < s->cfg.max_links; i++) {
        const conn *c = &s->conns[i];
        if (c->st == C_CONNECTING)
            d = min_u64(d, c->started_ms + s->cfg.connect_timeout_ms);
        else if (c->st == C_UP)
            d = min_u64(d, c->failed ? s->now : c->last_rx_ms + s->cfg.idle_timeout_ms);
    }
    if (count_active(s, NULL, NULL) < s->cfg.max_links) {
        for (size_t i = 0; i < FE_RFCOMM_REMOTES_MAX; i++)
            d = min_u64(d, remote_ready_at(s, &s->remotes[i]));
        if (s->cfg.inquiry && !s->job_busy && !s->thread_warned)
            d = min_u64(d, s->inquiry_at);
    }
    return d;
}

static int rf_tick(fe_transport *t, uint64_t now_ms)
{
    rfcomm_state *s = state_of(t);
    if (!s->is_open)
        return 0;
    set_now(s, now_ms);
    if (!s->adapter_armed) {
        s->adapter_armed = 1;
        s->adapter_check_at = s->now + FE_RFCOMM_ADAPTER_RETRY_MS;
    } else if (s->now >= s->adapter_check_at) {
        s->adapter_check_at = s->now + FE_RFCOMM_ADAPTER_RETRY_MS;
        adapter_check(s, 0);
    }
    if (s->state != FE_RFCOMM_RUNNING)
        return 0;
    for (size_t i = 0; i < s->cfg.max_links; i++) {
        conn *c = &s->conns[i];
        if (c->st == C_UP && c->failed) {
            conn_drop(s, c, strerror(c->failed), FE_RFCOMM_LOG_INFO, 0);
        } else if (c->st == C_UP && s->now >= c->last_rx_ms + s->cfg.idle_timeout_ms) {
            s->st.idle_timeouts++;
            char msg[80];
            snprintf(msg, sizeof(msg), "no frame for %llu s (idle timeout)",
                     (unsigned long long)((s->now - c->last_rx_ms) / 1000u));
            conn_drop(s, c, msg, FE_RFCOMM_LOG_INFO, 0);
        } else if (c->st == C_CONNECTING && s->now >= c->started_ms + s->cfg.connect_timeout_ms) {
            s->st.connect_timeouts++;
            fe_bt_addr addr = c->addr;
            epoll_ctl(s->ep, EPOLL_CTL_DEL, c->fd, NULL);
            close(c->fd);
            c->fd = -1;
            c->st = C_FREE;
            char msg[80];
            snprintf(msg, sizeof(msg), "no answer within %llu s (connect timeout)",
                     (unsigned long long)(s->cfg.connect_timeout_ms / 1000u));
            dial_failed(s, remote_by_addr(s, &addr), msg);
        }
    }
    schedule(s);
    return 0;
}

static const fe_transport_ops rfcomm_ops = {
    .name = "rfcomm",
    .kind = FE_LINK_P2P,
    .open = rf_open,
    .close = rf_close,
    .poll_fd = rf_poll_fd,
    .on_readable = rf_on_readable,
    .send = rf_send,
    .mtu = rf_mtu,
    .next_deadline = rf_next_deadline,
    .tick = rf_tick,
};

/* --- creation and queries --- */

int fe_rfcomm_new(fe_transport **out, const fe_rfcomm_config *cfg, const fe_transport_events *ev,
                  char *err, size_t err_len)
{
    if (out == NULL || cfg == NULL || ev == NULL) {
        err_line(err, err_len, "rfcomm: missing argument");
        return FE_ERR_INVALID;
    }
    int rc = fe_rfcomm_config_check(cfg, err, err_len);
    if (rc != 0)
        return rc;
    fe_transport *t = calloc(1, sizeof(*t));
    rfcomm_state *s = calloc(1, sizeof(*s));
    conn *conns = calloc(cfg->max_links, sizeof(conn));
    if (t == NULL || s == NULL || conns == NULL)
        goto nomem;
    s->cfg = *cfg;
    s->conns = conns;
    s->t = t;
    s->ep = s->wake_fd = s->lfd = -1;
    s->rng = cfg->seed ^ 0x9E3779B9u;
    if (s->rng == 0)
        s->rng = 1;
    for (size_t i = 0; i < cfg->max_links; i++)
        conns[i].fd = -1;
    if (cfg->discovery != NULL) {
        s->disc = cfg->discovery;
    } else {
        if (fe_bt_bluez_new(&s->own_disc) != 0)
            goto nomem;
        s->disc = s->own_disc;
    }
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        fe_bt_bluez_del(s->own_disc);
        goto nomem;
    }
    if (pthread_cond_init(&s->cv, NULL) != 0) {
        pthread_mutex_destroy(&s->mu);
        fe_bt_bluez_del(s->own_disc);
        goto nomem;
    }
    t->ops = &rfcomm_ops;
    t->state = s;
    t->ev = *ev;
    snprintf(t->label, sizeof(t->label), "rfcomm");
    *out = t;
    return 0;
nomem:
    free(conns);
    free(s);
    free(t);
    err_line(err, err_len, "rfcomm: out of memory");
    return FE_ERR_NOMEM;
}

void fe_rfcomm_del(fe_transport *t)
{
    if (t == NULL)
        return;
    rfcomm_state *s = state_of(t);
    rf_close(t);
    fe_bt_bluez_del(s->own_disc);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s->conns);
    free(s);
    free(t);
}

void fe_rfcomm_get_stats(const fe_transport *t, fe_rfcomm_stats *out)
{
    if (t == NULL || out == NULL)
        return;
    rfcomm_state *s = state_of(t);
    *out = s->st;
    /* Bad frames of live links that were not yet folded in. */
    for (size_t i = 0; i < s->cfg.max_links; i++) {
        const conn *c = &s->conns[i];
        if (c->st == C_UP)
            out->rx_bad_frames += bad_sum(&c->dec.stats) - c->bad_seen;
    }
    count_active(s, &out->links_up, &out->links_connecting);
}

enum fe_rfcomm_state fe_rfcomm_get_state(const fe_transport *t)
{
    return t == NULL ? FE_RFCOMM_CLOSED : state_of(t)->state;
}

uint8_t fe_rfcomm_channel(const fe_transport *t)
{
    return t == NULL ? 0 : state_of(t)->bound_channel;
}

int fe_rfcomm_local_addr(const fe_transport *t, fe_bt_addr *out)
{
    if (t == NULL || out == NULL || state_of(t)->state != FE_RFCOMM_RUNNING)
        return FE_ERR_NOTFOUND;
    *out = state_of(t)->local;
    return 0;
}

int fe_rfcomm_peer_addr(const fe_transport *t, uint32_t peer, fe_bt_addr *out)
{
    if (t == NULL || out == NULL || peer == 0)
        return FE_ERR_NOTFOUND;
    conn *c = conn_by_serial(state_of(t), peer);
    if (c == NULL || c->st != C_UP)
        return FE_ERR_NOTFOUND;
    *out = c->addr;
    return 0;
}

void fe_rfcomm_describe(const fe_transport *t, char *out, size_t out_len)
{
    if (out == NULL || out_len == 0)
        return;
    if (t == NULL) {
        out[0] = '\0';
        return;
    }
    rfcomm_state *s = state_of(t);
    if (!s->is_open) {
        snprintf(out, out_len, "rfcomm %s: closed", s->cfg.adapter);
        return;
    }
    if (s->state != FE_RFCOMM_RUNNING) {
        snprintf(out, out_len, "rfcomm %s: inert: %s", s->cfg.adapter, s->reason);
        return;
    }
    char a[FE_BT_ADDR_CHARS];
    size_t up, known = 0;
    count_active(s, &up, NULL);
    for (size_t i = 0; i < FE_RFCOMM_REMOTES_MAX; i++)
        known += s->remotes[i].used ? 1u : 0u;
    if (s->lfd >= 0)
        snprintf(out, out_len, "rfcomm %s %s channel %u, %zu/%zu links, %zu known peers%s",
                 s->cfg.adapter, addr_str(&s->local, a), (unsigned)s->bound_channel, up,
                 s->cfg.max_links, known, s->registered ? ", advertised" : "");
    else
        snprintf(out, out_len, "rfcomm %s %s not listening (dialling out only), %zu/%zu links",
                 s->cfg.adapter, addr_str(&s->local, a), up, s->cfg.max_links);
}
