/* Shared helpers of the serial driver tests: pseudo-terminals, symlinks the
 * test controls, numbered and checksummed frames, and a driver wrapper that
 * records what comes out. Header-only, test-only. */
#ifndef FE_TEST_SERIAL_HARNESS_H
#define FE_TEST_SERIAL_HARNESS_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "serial.h"

static uint64_t h_rng = 0x6A09E667F3BCC909ull;
static inline uint32_t h_rnd(void)
{
    h_rng ^= h_rng << 13;
    h_rng ^= h_rng >> 7;
    h_rng ^= h_rng << 17;
    return (uint32_t)(h_rng >> 11);
}

static inline uint64_t h_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static inline void h_sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* --- frames: id (4 bytes), random body, FNV-1a of the rest (4 bytes) --- */

#define H_FRAME_MIN 8

static inline uint32_t h_fnv(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

static inline size_t h_make_frame(uint8_t *f, size_t len, uint32_t id)
{
    if (len < H_FRAME_MIN)
        len = H_FRAME_MIN;
    memcpy(f, &id, 4);
    for (size_t i = 4; i < len - 4; i++) /* framing bytes of every profile, often */
        f[i] = h_rnd() % 6 == 0 ? (uint8_t) "\x7e\x7d\xc0\xdb\r\n"[h_rnd() % 6] : (uint8_t)h_rnd();
    uint32_t h = h_fnv(f, len - 4);
    memcpy(f + len - 4, &h, 4);
    return len;
}

/* The frame's id, or -1 if it is damaged. */
static inline long h_check_frame(const uint8_t *f, size_t len)
{
    if (len < H_FRAME_MIN)
        return -1;
    uint32_t h, id;
    memcpy(&h, f + len - 4, 4);
    if (h != h_fnv(f, len - 4))
        return -1;
    memcpy(&id, f, 4);
    return (long)id;
}

/* --- ptys and paths --- */

typedef struct h_pty {
    int master, slave; /* slave: the test's own copy, or -1 */
    char name[64];
} h_pty;

/* A raw pty pair with a non-blocking master. */
static inline int h_pty_open(h_pty *p)
{
    struct termios raw;
    memset(&raw, 0, sizeof(raw));
    cfmakeraw(&raw);
    if (openpty(&p->master, &p->slave, p->name, &raw, NULL) != 0)
        return -1;
    fcntl(p->master, F_SETFL, fcntl(p->master, F_GETFL) | O_NONBLOCK);
    return 0;
}

static inline void h_pty_close(h_pty *p)
{
    if (p->master >= 0)
        close(p->master);
    if (p->slave >= 0)
        close(p->slave);
    p->master = p->slave = -1;
}

/* Make link point at target, atomically (a new link renamed over it). */
static inline int h_point(const char *link, const char *target)
{
    char tmp[512];
    snprintf(tmp, sizeof(tmp), "%s.new", link);
    unlink(tmp);
    if (symlink(target, tmp) != 0)
        return -1;
    return rename(tmp, link);
}

static inline int h_tmpdir(char *out, size_t len)
{
    const char *base = getenv("TMPDIR");
    snprintf(out, len, "%s/ferry-serial-XXXXXX", base && *base ? base : "/tmp");
    return mkdtemp(out) != NULL ? 0 : -1;
}

/* Remove the test directory and the few files tests make in it. */
static inline void h_rmdir(const char *dir, const char *const *names, size_t n)
{
    char p[512];
    for (size_t i = 0; i < n; i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
        unlink(p);
        snprintf(p, sizeof(p), "%s/%s.new", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

/* Write all of buf to a non-blocking fd, waiting up to 2 s for room. */
static inline int h_write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *b = buf;
    uint64_t until = h_mono_ms() + 2000;
    while (len > 0 && h_mono_ms() < until) {
        ssize_t w = write(fd, b, len);
        if (w > 0) {
            b += w;
            len -= (size_t)w;
        } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
            return -1;
        } else {
            h_sleep_ms(1);
        }
    }
    return len == 0 ? 0 : -1;
}

/* --- a driver under test --- */

#define H_REC_MAX 1024
#define H_LOG_MAX 64

typedef struct h_node {
    fe_transport *t;
    size_t count;        /* frames received */
    long ids[H_REC_MAX]; /* their ids, -1 when damaged */
    size_t bad_peer;     /* frame_in with a peer other than 0 */
    size_t logs;
    char log[H_LOG_MAX][256];
    int log_level[H_LOG_MAX];
} h_node;

static inline void h_on_frame(void *ctx, fe_transport *t, uint32_t peer, const uint8_t *f,
                              size_t len)
{
    h_node *n = ctx;
    if (t != n->t || peer != 0)
        n->bad_peer++;
    if (n->count < H_REC_MAX)
        n->ids[n->count] = h_check_frame(f, len);
    n->count++;
}

static inline void h_on_log(void *ctx, int level, const char *msg)
{
    h_node *n = ctx;
    if (getenv("FE_TEST_VERBOSE") != NULL)
        fprintf(stderr, "[log %d] %s\n", level, msg);
    if (n->logs < H_LOG_MAX) {
        snprintf(n->log[n->logs], sizeof(n->log[0]), "%s", msg);
        n->log_level[n->logs] = level;
    }
    n->logs++;
}

/* How many log lines at level <= max_level contain needle. */
static inline size_t h_logs_with(const h_node *n, int max_level, const char *needle)
{
    size_t k = 0;
    for (size_t i = 0; i < n->logs && i < H_LOG_MAX; i++)
        if (n->log_level[i] <= max_level && strstr(n->log[i], needle) != NULL)
            k++;
    return k;
}

static inline void h_config(fe_serial_config *cfg, const char *path, const char *profile, h_node *n)
{
    char err[160];
    fe_serial_config_default(cfg);
    if (fe_serial_config_set(cfg, "path", path, err, sizeof(err)) != 0 ||
        fe_serial_config_set(cfg, "profile", profile, err, sizeof(err)) != 0 ||
        fe_serial_config_set(cfg, "baud", "115200", err, sizeof(err)) != 0) {
        fprintf(stderr, "config: %s\n", err);
        abort();
    }
    cfg->log = h_on_log;
    cfg->log_ctx = n;
}

static inline void h_set(fe_serial_config *cfg, const char *key, const char *value)
{
    char err[160];
    if (fe_serial_config_set(cfg, key, value, err, sizeof(err)) != 0) {
        fprintf(stderr, "config %s = %s: %s\n", key, value, err);
        abort();
    }
}

static inline int h_start(h_node *n, const fe_serial_config *cfg)
{
    fe_transport_events ev = {.ctx = n, .frame_in = h_on_frame};
    char err[160] = "";
    if (fe_serial_new(&n->t, cfg, &ev) != 0)
        return -1;
    if (n->t->ops->open(n->t, err, sizeof(err)) != 0) {
        fprintf(stderr, "open: %s\n", err);
        return -1;
    }
    return 0;
}

/* One turn of a real-time loop over drivers and a null-modem "cable" that
 * copies bytes between the masters of two ptys (cable may be NULL). The
 * cable flips one bit in about 1 of flip_one_in bytes (0: never). */
typedef struct h_cable {
    h_pty end[2];
    unsigned flip_one_in;
    uint64_t flipped;
} h_cable;

static inline void h_turn(h_node **nodes, size_t n_nodes, h_cable *c, int wait_ms_max)
{
    struct pollfd pfd[8];
    size_t np = 0;
    uint64_t now = h_mono_ms();
    int wait = wait_ms_max;
    for (size_t i = 0; i < n_nodes; i++) {
        fe_transport *t = nodes[i]->t;
        pfd[np++] = (struct pollfd){.fd = t->ops->poll_fd(t), .events = POLLIN};
        uint64_t d = t->ops->next_deadline(t);
        if (d <= now)
            wait = 0;
        else if (d - now < (uint64_t)wait)
            wait = (int)(d - now);
    }
    if (c != NULL)
        for (int k = 0; k < 2; k++)
            pfd[np++] = (struct pollfd){.fd = c->end[k].master, .events = POLLIN};
    poll(pfd, (nfds_t)np, wait);
    now = h_mono_ms();
    for (size_t i = 0; i < n_nodes; i++)
        if (pfd[i].revents)
            nodes[i]->t->ops->on_readable(nodes[i]->t, now);
    if (c != NULL) {
        for (int k = 0; k < 2; k++) {
            if (!(pfd[n_nodes + (size_t)k].revents & POLLIN))
                continue;
            uint8_t buf[4096];
            ssize_t r = read(c->end[k].master, buf, sizeof(buf));
            for (ssize_t j = 0; j < r; j++) {
                if (c->flip_one_in != 0 && h_rnd() % c->flip_one_in == 0) {
                    buf[j] ^= (uint8_t)(1u << (h_rnd() % 8));
                    c->flipped++;
                }
            }
            if (r > 0 && h_write_all(c->end[1 - k].master, buf, (size_t)r) != 0)
                fprintf(stderr, "cable: write failed\n");
        }
    }
    for (size_t i = 0; i < n_nodes; i++) {
        fe_transport *t = nodes[i]->t;
        if (t->ops->next_deadline(t) <= now)
            t->ops->tick(t, now);
    }
}

#endif
