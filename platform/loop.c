/* Event loop: see loop.h. Fds live in a fixed array of slots; timers in an
 * unsorted list scanned each turn (a daemon has a handful of timers). */
#include "loop.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"

typedef struct fe_timer {
    int64_t id;
    uint64_t when_ms;
    fe_loop_timer_fn cb;
    void *ctx;
    int deleted;
    uint64_t pass; /* timer pass it last fired in, or was added during */
    struct fe_timer *next;
} fe_timer;

typedef struct fd_slot {
    int fd;          /* -1: free */
    uint32_t serial; /* tells a slot reused within one turn from its old owner */
    fe_loop_fd_fn cb;
    void *ctx;
} fd_slot;

/* Longest single wait; waking once a day is harmless and keeps the value
 * far from int overflow. */
#define WAIT_MAX_MS 86400000

static const int caught_signals[] = {SIGINT, SIGTERM, SIGHUP};
#define NSIGNALS (sizeof(caught_signals) / sizeof(caught_signals[0]))

struct fe_loop {
    fe_loop_clock_fn now;
    void *now_ctx;

    fd_slot *slots;
    size_t fds_max;
    uint32_t next_serial;
    struct pollfd *pfds; /* fds_max + 1 (the signal pipe) */
    size_t *pfd_slot;    /* pfds[i] belongs to slots[pfd_slot[i]] */
    uint32_t *pfd_serial;

    fe_timer *timers;
    size_t timers_live;
    int64_t next_timer_id;
    uint64_t pass; /* number of the current or last timer pass */
    int in_timers; /* inside the timer pass: deletion must be deferred */

    fe_loop_hook_fn before_sleep;
    void *before_sleep_ctx;

    fe_loop_signal_fn sig_cb;
    void *sig_ctx;
    int sig_pipe[2];
    struct sigaction sig_old[NSIGNALS];

    int stop;
    int running;
};

/* The self-pipe's write end, read by the signal handler. */
static volatile sig_atomic_t sig_write_fd = -1;
static fe_loop *sig_owner;

static uint64_t default_clock(void *ctx)
{
    (void)ctx;
    return fe_clock_mono_ms();
}

int fe_loop_new(fe_loop **out, size_t fds_max)
{
    if (!out)
        return FE_ERR_INVALID;
    *out = NULL;
    if (fds_max == 0 || fds_max > FE_LOOP_FDS_MAX)
        return FE_ERR_INVALID;
    fe_loop *l = calloc(1, sizeof(*l));
    if (!l)
        return FE_ERR_NOMEM;
    l->slots = calloc(fds_max, sizeof(*l->slots));
    l->pfds = calloc(fds_max + 1, sizeof(*l->pfds));
    l->pfd_slot = calloc(fds_max + 1, sizeof(*l->pfd_slot));
    l->pfd_serial = calloc(fds_max + 1, sizeof(*l->pfd_serial));
    if (!l->slots || !l->pfds || !l->pfd_slot || !l->pfd_serial) {
        fe_loop_del(l);
        return FE_ERR_NOMEM;
    }
    for (size_t i = 0; i < fds_max; i++)
        l->slots[i].fd = -1;
    l->fds_max = fds_max;
    l->now = default_clock;
    l->next_timer_id = 1;
    l->sig_pipe[0] = l->sig_pipe[1] = -1;
    *out = l;
    return 0;
}

static void signals_release(fe_loop *l)
{
    if (sig_owner != l)
        return;
    for (size_t i = 0; i < NSIGNALS; i++)
        sigaction(caught_signals[i], &l->sig_old[i], NULL);
    sig_write_fd = -1;
    sig_owner = NULL;
    close(l->sig_pipe[0]);
    close(l->sig_pipe[1]);
    l->sig_pipe[0] = l->sig_pipe[1] = -1;
}

void fe_loop_del(fe_loop *l)
{
    if (!l)
        return;
    signals_release(l);
    fe_timer *t = l->timers;
    while (t) {
        fe_timer *next = t->next;
        free(t);
        t = next;
    }
    free(l->slots);
    free(l->pfds);
    free(l->pfd_slot);
    free(l->pfd_serial);
    free(l);
}

void fe_loop_set_clock(fe_loop *l, fe_loop_clock_fn now, void *ctx)
{
    l->now = now ? now : default_clock;
    l->now_ctx = now ? ctx : NULL;
}

uint64_t fe_loop_now(fe_loop *l)
{
    return l->now(l->now_ctx);
}

/* --- fds --- */

static fd_slot *slot_find(fe_loop *l, int fd)
{
    for (size_t i = 0; i < l->fds_max; i++) {
        if (l->slots[i].fd == fd)
            return &l->slots[i];
    }
    return NULL;
}

int fe_loop_fd_add(fe_loop *l, int fd, fe_loop_fd_fn cb, void *ctx)
{
    if (fd < 0 || !cb)
        return FE_ERR_INVALID;
    if (slot_find(l, fd))
        return FE_ERR_DUPLICATE;
    fd_slot *s = slot_find(l, -1);
    if (!s)
        return FE_ERR_FULL;
    s->fd = fd;
    s->serial = ++l->next_serial;
    s->cb = cb;
    s->ctx = ctx;
    return 0;
}

int fe_loop_fd_del(fe_loop *l, int fd)
{
    fd_slot *s = fd >= 0 ? slot_find(l, fd) : NULL;
    if (!s)
        return FE_ERR_NOTFOUND;
    s->fd = -1;
    s->cb = NULL;
    s->ctx = NULL;
    return 0;
}

/* --- timers --- */

static fe_timer *timer_find(fe_loop *l, int64_t id)
{
    for (fe_timer *t = l->timers; t; t = t->next) {
        if (t->id == id && !t->deleted)
            return t;
    }
    return NULL;
}

/* Free timers marked deleted. Only outside the timer pass. */
static void timers_sweep(fe_loop *l)
{
    fe_timer **pp = &l->timers;
    while (*pp) {
        fe_timer *t = *pp;
        if (t->deleted) {
            *pp = t->next;
            free(t);
        } else {
            pp = &t->next;
        }
    }
}

int64_t fe_loop_timer_add(fe_loop *l, uint64_t when_ms, fe_loop_timer_fn cb, void *ctx)
{
    if (!cb || when_ms == FE_LOOP_NOMORE)
        return FE_ERR_INVALID;
    if (l->timers_live >= FE_LOOP_TIMERS_MAX)
        return FE_ERR_FULL;
    fe_timer *t = calloc(1, sizeof(*t));
    if (!t)
        return FE_ERR_NOMEM;
    t->id = l->next_timer_id++;
    t->when_ms = when_ms;
    t->cb = cb;
    t->ctx = ctx;
    t->pass = l->in_timers ? l->pass : 0; /* added during a pass: not in this one */
    t->next = l->timers;
    l->timers = t;
    l->timers_live++;
    return t->id;
}

int fe_loop_timer_set(fe_loop *l, int64_t id, uint64_t when_ms)
{
    if (when_ms == FE_LOOP_NOMORE)
        return FE_ERR_INVALID;
    fe_timer *t = timer_find(l, id);
    if (!t)
        return FE_ERR_NOTFOUND;
    t->when_ms = when_ms;
    return 0;
}

int fe_loop_timer_del(fe_loop *l, int64_t id)
{
    fe_timer *t = timer_find(l, id);
    if (!t)
        return FE_ERR_NOTFOUND;
    t->deleted = 1;
    l->timers_live--;
    if (!l->in_timers)
        timers_sweep(l);
    return 0;
}

/* Fire due timers, earliest first (ties: oldest id), each at most once. */
static void timers_run(fe_loop *l)
{
    uint64_t now = fe_loop_now(l);
    l->pass++;
    l->in_timers = 1;
    for (;;) {
        fe_timer *best = NULL;
        for (fe_timer *t = l->timers; t; t = t->next) {
            if (t->deleted || t->pass == l->pass || t->when_ms > now)
                continue;
            if (!best || t->when_ms < best->when_ms ||
                (t->when_ms == best->when_ms && t->id < best->id))
                best = t;
        }
        if (!best)
            break;
        best->pass = l->pass;
        uint64_t next = best->cb(l, best->id, now, best->ctx);
        if (best->deleted)
            continue; /* the callback deleted its own timer */
        if (next == FE_LOOP_NOMORE) {
            best->deleted = 1;
            l->timers_live--;
        } else {
            best->when_ms = next;
        }
    }
    l->in_timers = 0;
    timers_sweep(l);
}

/* Milliseconds until the earliest timer, for poll(2): -1 if none. */
static int timers_timeout(fe_loop *l)
{
    uint64_t earliest = FE_LOOP_NOMORE;
    for (fe_timer *t = l->timers; t; t = t->next) {
        if (!t->deleted && t->when_ms < earliest)
            earliest = t->when_ms;
    }
    if (earliest == FE_LOOP_NOMORE)
        return -1;
    uint64_t now = fe_loop_now(l);
    if (earliest <= now)
        return 0;
    return earliest - now > WAIT_MAX_MS ? WAIT_MAX_MS : (int)(earliest - now);
}

/* --- signals --- */

static void on_signal(int signo)
{
    int saved = errno;
    unsigned char b = (unsigned char)signo;
    if (sig_write_fd >= 0) {
        ssize_t r = write(sig_write_fd, &b, 1); /* a full pipe already holds a wake-up */
        (void)r;
    }
    errno = saved;
}

static int set_nonblock_cloexec(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -1;
    return fcntl(fd, F_SETFD, FD_CLOEXEC);
}

int fe_loop_signals(fe_loop *l, fe_loop_signal_fn cb, void *ctx)
{
    if (!cb)
        return FE_ERR_INVALID;
    if (sig_owner && sig_owner != l)
        return FE_ERR_DUPLICATE;
    l->sig_cb = cb;
    l->sig_ctx = ctx;
    if (sig_owner == l)
        return 0;
    if (pipe(l->sig_pipe) != 0)
        return FE_ERR_FULL;
    if (set_nonblock_cloexec(l->sig_pipe[0]) != 0 || set_nonblock_cloexec(l->sig_pipe[1]) != 0) {
        close(l->sig_pipe[0]);
        close(l->sig_pipe[1]);
        l->sig_pipe[0] = l->sig_pipe[1] = -1;
        return FE_ERR_FULL;
    }
    sig_write_fd = l->sig_pipe[1];
    sig_owner = l;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigfillset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART; /* other blocking calls go on; poll(2) still wakes up */
    for (size_t i = 0; i < NSIGNALS; i++)
        sigaction(caught_signals[i], &sa, &l->sig_old[i]);
    return 0;
}

static void signals_dispatch(fe_loop *l)
{
    unsigned char buf[64];
    for (int rounds = 0; rounds < 16; rounds++) { /* bounded: at most 1 KiB per turn */
        ssize_t n = read(l->sig_pipe[0], buf, sizeof(buf));
        if (n <= 0)
            return;
        for (ssize_t i = 0; i < n; i++) {
            if (l->sig_cb)
                l->sig_cb(l, buf[i], l->sig_ctx);
        }
    }
}

/* --- running --- */

void fe_loop_set_before_sleep(fe_loop *l, fe_loop_hook_fn cb, void *ctx)
{
    l->before_sleep = cb;
    l->before_sleep_ctx = cb ? ctx : NULL;
}

void fe_loop_stop(fe_loop *l)
{
    l->stop = 1;
}

/* Wait for readiness and call fd and signal callbacks. -1 on poll failure. */
static int wait_and_dispatch(fe_loop *l)
{
    size_t n = 0;
    int sig_idx = -1;
    if (sig_owner == l) {
        sig_idx = 0;
        l->pfds[n].fd = l->sig_pipe[0];
        l->pfds[n].events = POLLIN;
        l->pfds[n].revents = 0;
        n++;
    }
    for (size_t i = 0; i < l->fds_max; i++) {
        if (l->slots[i].fd < 0)
            continue;
        l->pfds[n].fd = l->slots[i].fd;
        l->pfds[n].events = POLLIN;
        l->pfds[n].revents = 0;
        l->pfd_slot[n] = i;
        l->pfd_serial[n] = l->slots[i].serial;
        n++;
    }
    int rc = poll(l->pfds, (nfds_t)n, timers_timeout(l));
    if (rc < 0)
        return errno == EINTR ? 0 : -1;
    for (size_t i = 0; i < n && rc > 0; i++) {
        short re = l->pfds[i].revents;
        if (re == 0)
            continue;
        rc--;
        if ((int)i == sig_idx) {
            signals_dispatch(l);
            continue;
        }
        fd_slot *s = &l->slots[l->pfd_slot[i]];
        if (s->fd < 0 || s->serial != l->pfd_serial[i])
            continue; /* unwatched (or the slot reused) by an earlier callback */
        if (re & POLLNVAL) {
            /* The owner closed the fd without fe_loop_fd_del: forget it
             * rather than spin on it. */
            s->fd = -1;
            continue;
        }
        s->cb(l, s->fd, s->ctx);
    }
    return 0;
}

int fe_loop_run(fe_loop *l)
{
    if (l->running) {
        errno = EALREADY;
        return -1;
    }
    l->running = 1;
    int rc = 0;
    for (;;) {
        if (l->before_sleep)
            l->before_sleep(l, l->before_sleep_ctx);
        if (l->stop)
            break;
        if (wait_and_dispatch(l) != 0) {
            rc = -1;
            break;
        }
        timers_run(l);
    }
    int saved = errno;
    l->stop = 0;
    l->running = 0;
    errno = saved;
    return rc;
}
