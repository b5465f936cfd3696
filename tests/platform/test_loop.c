/* Tests for platform/loop.c. Most use a fake clock, so that which timers are
 * due is decided by the test, not by the machine's speed. Every run is
 * bounded by a real-time safety timer or by a stop in the same turn. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "loop.h"

typedef struct fake_clock {
    uint64_t now;
} fake_clock;

static uint64_t fake_now(void *ctx)
{
    return ((fake_clock *)ctx)->now;
}

/* Record of what fired, as a string of labels. */
typedef struct trace {
    char log[64];
    size_t len;
    int count;
    int64_t ids[8];
    fe_loop *loop;
    uint64_t last_now;
} trace;

static void trace_add(trace *t, char c)
{
    if (t->len + 1 < sizeof(t->log)) {
        t->log[t->len++] = c;
        t->log[t->len] = '\0';
    }
}

/* A timer's ctx: the trace plus its label. */
typedef struct labelled {
    trace *t;
    char label;
} labelled;

static uint64_t record_once(fe_loop *l, int64_t id, uint64_t now, void *ctx)
{
    (void)l;
    (void)id;
    labelled *lb = ctx;
    trace_add(lb->t, lb->label);
    lb->t->last_now = now;
    return FE_LOOP_NOMORE;
}

static uint64_t stop_timer(fe_loop *l, int64_t id, uint64_t now, void *ctx)
{
    (void)id;
    (void)now;
    trace_add(ctx, 'S');
    fe_loop_stop(l);
    return FE_LOOP_NOMORE;
}

/* Real-time guard: a test that hangs fails instead. */
static uint64_t guard_timer(fe_loop *l, int64_t id, uint64_t now, void *ctx)
{
    (void)id;
    (void)now;
    *(int *)ctx = 1;
    fe_loop_stop(l);
    return FE_LOOP_NOMORE;
}

static void test_new_bounds(void **state)
{
    (void)state;
    fe_loop *l = (fe_loop *)1;
    assert_int_equal(fe_loop_new(&l, 0), FE_ERR_INVALID);
    assert_null(l);
    assert_int_equal(fe_loop_new(&l, FE_LOOP_FDS_MAX + 1), FE_ERR_INVALID);
    assert_int_equal(fe_loop_new(&l, 2), 0);
    int p[2], q[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(pipe(q), 0);
    static char ctx;
    assert_int_equal(fe_loop_fd_add(l, -1, (fe_loop_fd_fn)1, &ctx), FE_ERR_INVALID);
    assert_int_equal(fe_loop_fd_add(l, p[0], NULL, &ctx), FE_ERR_INVALID);
    assert_int_equal(fe_loop_fd_add(l, p[0], (fe_loop_fd_fn)1, &ctx), 0);
    assert_int_equal(fe_loop_fd_add(l, p[0], (fe_loop_fd_fn)1, &ctx), FE_ERR_DUPLICATE);
    assert_int_equal(fe_loop_fd_add(l, p[1], (fe_loop_fd_fn)1, &ctx), 0);
    assert_int_equal(fe_loop_fd_add(l, q[0], (fe_loop_fd_fn)1, &ctx), FE_ERR_FULL);
    assert_int_equal(fe_loop_fd_del(l, p[1]), 0);
    assert_int_equal(fe_loop_fd_del(l, p[1]), FE_ERR_NOTFOUND);
    assert_int_equal(fe_loop_fd_add(l, q[0], (fe_loop_fd_fn)1, &ctx), 0);

    trace t;
    memset(&t, 0, sizeof(t));
    assert_int_equal(fe_loop_timer_add(l, 5, NULL, &t), FE_ERR_INVALID);
    assert_int_equal(fe_loop_timer_add(l, FE_LOOP_NOMORE, stop_timer, &t), FE_ERR_INVALID);
    int64_t first = 0;
    for (int i = 0; i < FE_LOOP_TIMERS_MAX; i++) {
        int64_t id = fe_loop_timer_add(l, 1000 + (uint64_t)i, stop_timer, &t);
        assert_true(id > 0);
        if (i == 0)
            first = id;
    }
    assert_int_equal(fe_loop_timer_add(l, 5, stop_timer, &t), FE_ERR_FULL);
    assert_int_equal(fe_loop_timer_del(l, first), 0);
    assert_int_equal(fe_loop_timer_del(l, first), FE_ERR_NOTFOUND);
    assert_true(fe_loop_timer_add(l, 5, stop_timer, &t) > first);
    assert_int_equal(fe_loop_timer_set(l, first, 7), FE_ERR_NOTFOUND);
    fe_loop_del(l);
    fe_loop_del(NULL);
    close(p[0]);
    close(p[1]);
    close(q[0]);
    close(q[1]);
}

typedef struct reader {
    char got[16];
    size_t len;
    int calls;
} reader;

static void on_readable(fe_loop *l, int fd, void *ctx)
{
    reader *r = ctx;
    r->calls++;
    ssize_t n = read(fd, r->got + r->len, sizeof(r->got) - 1 - r->len);
    if (n > 0)
        r->len += (size_t)n;
    r->got[r->len] = '\0';
    if (strchr(r->got, '!'))
        fe_loop_stop(l); /* stop from an fd callback */
}

static void test_fd_readable(void **state)
{
    (void)state;
    fe_loop *l;
    assert_int_equal(fe_loop_new(&l, 4), 0);
    int p[2];
    assert_int_equal(pipe(p), 0);
    reader r;
    memset(&r, 0, sizeof(r));
    assert_int_equal(fe_loop_fd_add(l, p[0], on_readable, &r), 0);
    int timed_out = 0;
    assert_true(fe_loop_timer_add(l, fe_clock_mono_ms() + 5000, guard_timer, &timed_out) > 0);
    assert_int_equal(write(p[1], "hi!", 3), 3);
    assert_int_equal(fe_loop_run(l), 0);
    assert_false(timed_out);
    assert_string_equal(r.got, "hi!");
    assert_true(r.calls >= 1);
    fe_loop_del(l);
    close(p[0]);
    close(p[1]);
}

/* Two readable fds; whichever callback runs first unwatches the other, whose
 * callback must then not run in the same turn. */
typedef struct pair {
    int fds[2];
    int calls[2];
} pair;

static void pair_cb(fe_loop *l, int fd, void *ctx)
{
    pair *p = ctx;
    int me = fd == p->fds[0] ? 0 : 1;
    p->calls[me]++;
    char c;
    assert_int_equal(read(fd, &c, 1), 1);
    assert_int_equal(fe_loop_fd_del(l, p->fds[1 - me]), 0);
    fe_loop_stop(l);
}

static void test_fd_del_from_callback(void **state)
{
    (void)state;
    fe_loop *l;
    assert_int_equal(fe_loop_new(&l, 4), 0);
    int a[2], b[2];
    assert_int_equal(pipe(a), 0);
    assert_int_equal(pipe(b), 0);
    pair p = {{a[0], b[0]}, {0, 0}};
    assert_int_equal(fe_loop_fd_add(l, a[0], pair_cb, &p), 0);
    assert_int_equal(fe_loop_fd_add(l, b[0], pair_cb, &p), 0);
    assert_int_equal(write(a[1], "x", 1), 1);
    assert_int_equal(write(b[1], "y", 1), 1);
    int timed_out = 0;
    assert_true(fe_loop_timer_add(l, fe_clock_mono_ms() + 5000, guard_timer, &timed_out) > 0);
    assert_int_equal(fe_loop_run(l), 0);
    assert_false(timed_out);
    assert_int_equal(p.calls[0] + p.calls[1], 1);
    fe_loop_del(l);
    close(a[0]);
    close(a[1]);
    close(b[0]);
    close(b[1]);
}

static void test_timers_in_order(void **state)
{
    (void)state;
    fe_loop *l;
    assert_int_equal(fe_loop_new(&l, 1), 0);
    fake_clock fc = {100};
    fe_loop_set_clock(l, fake_now, &fc);
    assert_int_equal(fe_loop_now(l), 100);
    trace t;
    memset(&t, 0, sizeof(t));
    labelled a = {&t, 'a'}, b = {&t, 'b'}, c = {&t, 'c'}, d = {&t, 'd'}, e = {&t, 'e'};
    assert_true(fe_loop_timer_add(l, 50, record_once, &a) > 0);
    assert_true(fe_loop_timer_add(l, 30, record_once, &b) > 0);
    assert_true(fe_loop_timer_add(l, 70, record_once, &c) > 0);
    assert_true(fe_loop_timer_add(l, 200, record_once, &d) > 0); /* not due */
    assert_true(fe_loop_timer_add(l, 50, record_once, &e) > 0);  /* tie with a: added later */
    assert_true(fe_loop_timer_add(l, 90, stop_timer, &t) > 0);
    assert_int_equal(fe_loop_run(l), 0);
    assert_string_equal(t.log, "baecS");
    assert_int_equal(t.last_now, 100);

    /* The clock moves on: d is due now; a moved timer fires at its new time. */
    memset(&t, 0, sizeof(t));
    int64_t late = fe_loop_timer_add(l, 150, record_once, &a);
    assert_true(late > 0);
    assert_int_equal(fe_loop_timer_set(l, late, 500), 0);
    fc.now = 300;
    assert_true(fe_loop_timer_add(l, 300, stop_timer, &t) > 0);
    assert_int_equal(fe_loop_run(l), 0);
    assert_string_equal(t.log, "dS");
    memset(&t, 0, sizeof(t));
    fc.now = 500;
    assert_true(fe_loop_timer_add(l, 501, stop_timer, &t) > 0);
    fc.now = 501;
    assert_int_equal(fe_loop_run(l), 0);
    assert_string_equal(t.log, "aS");
    fe_loop_del(l);
}

/* x deletes itself and y; z fires and stops. */
typedef struct killer {
    trace *t;
    int64_t self, victim;
    int fired;
} killer;

static uint64_t kill_timer(fe_loop *l, int64_t id, uint64_t now, void *ctx)
{
    (void)now;
    killer *k = ctx;
    assert_int_equal(id, k->self);
    k->fired++;
    trace_add(k->t, 'x');
    assert_int_equal(fe_loop_timer_del(l, k->self), 0);
    assert_int_equal(fe_loop_timer_del(l, k->victim), 0);
    assert_int_equal(fe_loop_timer_del(l, k->victim), FE_ERR_NOTFOUND);
    return now; /* ignored: the timer is deleted */
}

static void test_timer_deletes_itself_and_another(void **state)
{
    (void)state;
    fe_loop *l;
    assert_int_equal(fe_loop_new(&l, 1), 0);
    fake_clock fc = {100};
    fe_loop_set_clock(l, fake_now, &fc);
    trace t;
    memset(&t, 0, sizeof(t));
    killer k = {&t, 0, 0, 0};
    labelled y = {&t, 'y'};
    k.self = fe_loop_timer_add(l, 10, kill_timer, &k);
    k.victim = fe_loop_timer_add(l, 20, record_once, &y);
    assert_true(k.self > 0 && k.victim > 0);
    assert_true(fe_loop_timer_add(l, 30, stop_timer, &t) > 0);
    assert_int_equal(fe_loop_run(l), 0);
    assert_string_equal(t.log, "xS");
    assert_int_equal(k.fired, 1);
    assert_int_equal(fe_loop_timer_del(l, k.self), FE_ERR_NOTFOUND);
    assert_int_equal(fe_loop_timer_set(l, k.victim, 5), FE_ERR_NOTFOUND);
    fe_loop_del(l);
}

typedef struct turns {
    int hooks;
    int fires;
    int stop_at_fire;
    int stop_at_hook;
} turns;

static void count_hook(fe_loop *l, void *ctx)
{
    turns *t = ctx;
    t->hooks++;
    if (t->stop_at_hook && t->hooks == t->stop_at_hook)
        fe_loop_stop(l);
}

/* Due again at once: fires exactly once per turn, never twice in one. */
static uint64_t every_turn(fe_loop *l, int64_t id, uint64_t now, void *ctx)
{
    (void)id;
    turns *t = ctx;
    t->fires++;
    if (t->stop_at_fire && t->fires == t->stop_at_fire)
        fe_loop_stop(l);
    return now;
}

static void test_before_sleep_once_per_turn(void **state)
{
    (void)state;
    fe_loop *l;
    assert_int_equal(fe_loop_new(&l, 1), 0);
    fake_clock fc = {1000};
    fe_loop_set_clock(l, fake_now, &fc);
    turns t = {0, 0, 5, 0};
    fe_loop_set_before_sleep(l, count_hook, &t);
    assert_true(fe_loop_timer_add(l, 0, every_turn, &t) > 0);
    assert_int_equal(fe_loop_run(l), 0);
    /* 5 turns with a timer pass, plus the final before_sleep that flushes
     * the turn in which the stop came. */
    assert_int_equal(t.fires, 5);
    assert_int_equal(t.hooks, 6);

    /* Stop from the hook itself: the loop returns before waiting again. */
    turns u = {0, 0, 0, 3};
    fe_loop_set_before_sleep(l, count_hook, &u);
    assert_true(fe_loop_timer_add(l, 0, every_turn, &u) > 0);
    assert_int_equal(fe_loop_run(l), 0);
    assert_int_equal(u.hooks, 3);
    assert_int_equal(u.fires, 2);     /* 2 turns passed timers before the hook stopped */
    assert_int_equal(t.fires, 5 + 2); /* the first timer is still live */
    fe_loop_del(l);
}

static void test_real_clock_timer(void **state)
{
    (void)state;
    fe_loop *l;
    assert_int_equal(fe_loop_new(&l, 1), 0);
    trace t;
    memset(&t, 0, sizeof(t));
    uint64_t start = fe_clock_mono_ms();
    assert_true(fe_loop_timer_add(l, start + 30, stop_timer, &t) > 0);
    assert_int_equal(fe_loop_run(l), 0);
    assert_string_equal(t.log, "S");
    assert_true(fe_clock_mono_ms() - start >= 30);
    fe_loop_del(l);
}

typedef struct sigs {
    int got[3];
    int n;
} sigs;

static void on_sig(fe_loop *l, int signo, void *ctx)
{
    sigs *s = ctx;
    if (s->n < 3)
        s->got[s->n++] = signo;
    if (signo == SIGTERM)
        fe_loop_stop(l);
}

static void test_signals(void **state)
{
    (void)state;
    struct sigaction before;
    assert_int_equal(sigaction(SIGTERM, NULL, &before), 0);
    fe_loop *l, *other;
    assert_int_equal(fe_loop_new(&l, 1), 0);
    assert_int_equal(fe_loop_new(&other, 1), 0);
    sigs s;
    memset(&s, 0, sizeof(s));
    assert_int_equal(fe_loop_signals(l, NULL, &s), FE_ERR_INVALID);
    assert_int_equal(fe_loop_signals(l, on_sig, &s), 0);
    assert_int_equal(fe_loop_signals(other, on_sig, &s), FE_ERR_DUPLICATE);
    int timed_out = 0;
    assert_true(fe_loop_timer_add(l, fe_clock_mono_ms() + 5000, guard_timer, &timed_out) > 0);
    assert_int_equal(raise(SIGHUP), 0); /* would kill the test if not caught */
    assert_int_equal(raise(SIGTERM), 0);
    assert_int_equal(fe_loop_run(l), 0);
    assert_false(timed_out);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.got[0], SIGHUP);
    assert_int_equal(s.got[1], SIGTERM);

    /* Signals again, from a timer inside the loop. */
    memset(&s, 0, sizeof(s));
    assert_int_equal(raise(SIGINT), 0);
    assert_int_equal(raise(SIGTERM), 0);
    assert_int_equal(fe_loop_run(l), 0);
    assert_false(timed_out);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.got[0], SIGINT);

    fe_loop_del(l);
    struct sigaction after;
    assert_int_equal(sigaction(SIGTERM, NULL, &after), 0);
    assert_ptr_equal(after.sa_handler, before.sa_handler);
    /* The other loop may take the signals now. */
    assert_int_equal(fe_loop_signals(other, on_sig, &s), 0);
    fe_loop_del(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_bounds),
        cmocka_unit_test(test_fd_readable),
        cmocka_unit_test(test_fd_del_from_callback),
        cmocka_unit_test(test_timers_in_order),
        cmocka_unit_test(test_timer_deletes_itself_and_another),
        cmocka_unit_test(test_before_sleep_once_per_turn),
        cmocka_unit_test(test_real_clock_timer),
        cmocka_unit_test(test_signals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
