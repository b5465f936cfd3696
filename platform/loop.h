/* A small poll(2) event loop: readable fds, timers, a before-sleep hook and
 * SIGINT/SIGTERM/SIGHUP delivered as ordinary callbacks.
 *
 * One turn of fe_loop_run:
 *   1. before_sleep hook (the daemon commits the turn's SQLite transaction
 *      here, before anything it queued goes out on the next turn);
 *   2. stop if fe_loop_stop was called;
 *   3. wait in poll(2) until an fd is readable or the earliest timer is due;
 *   4. call the callbacks of readable fds (and of caught signals);
 *   5. call the callbacks of due timers, earliest first.
 * So before_sleep runs once per turn, including one last time after the
 * turn in which fe_loop_stop was called.
 *
 * Timers are absolute times on the loop's clock (fe_clock_mono_ms unless
 * another one is set, e.g. the node's time line or a fake clock in tests).
 * Deleting a timer only marks it: it is freed after the timer pass, so any
 * callback may delete its own timer or any other one safely. A timer fires
 * at most once per turn; one added during a turn fires on a later turn.
 *
 * Single-threaded. Only one loop at a time may handle signals. */
#ifndef FE_LOOP_H
#define FE_LOOP_H

#include <stddef.h>
#include <stdint.h>

#include "../core/err.h"

#define FE_LOOP_NOMORE UINT64_MAX /* timer callback result: do not fire again */
#define FE_LOOP_FDS_MAX 1024      /* upper bound for fe_loop_new's fds_max */
#define FE_LOOP_TIMERS_MAX 1024   /* live timers per loop */

typedef struct fe_loop fe_loop;

/* A time source in milliseconds; must not go backwards. */
typedef uint64_t (*fe_loop_clock_fn)(void *ctx);
/* fd is readable, or at EOF, or in error: read it to find out. */
typedef void (*fe_loop_fd_fn)(fe_loop *loop, int fd, void *ctx);
/* Timer id is due (now_ms >= its time). Return the next absolute time to
 * fire at, or FE_LOOP_NOMORE to delete the timer. */
typedef uint64_t (*fe_loop_timer_fn)(fe_loop *loop, int64_t id, uint64_t now_ms, void *ctx);
typedef void (*fe_loop_hook_fn)(fe_loop *loop, void *ctx);
typedef void (*fe_loop_signal_fn)(fe_loop *loop, int signo, void *ctx);

/* Create a loop that watches at most fds_max fds (1..FE_LOOP_FDS_MAX).
 * 0, FE_ERR_INVALID or FE_ERR_NOMEM. */
FE_MUST_CHECK int fe_loop_new(fe_loop **out, size_t fds_max);

/* Free the loop and its timers, restore the signal dispositions it changed.
 * Does not close the fds it watched. Accepts NULL. Not from a callback. */
void fe_loop_del(fe_loop *loop);

/* Use now(ctx) as the time source; NULL restores fe_clock_mono_ms. */
void fe_loop_set_clock(fe_loop *loop, fe_loop_clock_fn now, void *ctx);
/* The loop's current time. */
uint64_t fe_loop_now(fe_loop *loop);

/* Call cb whenever fd is readable. 0, FE_ERR_INVALID (bad fd, NULL cb),
 * FE_ERR_DUPLICATE (fd already watched) or FE_ERR_FULL (fds_max reached). */
FE_MUST_CHECK int fe_loop_fd_add(fe_loop *loop, int fd, fe_loop_fd_fn cb, void *ctx);
/* Stop watching fd; safe from any callback (a pending readiness of fd in the
 * current turn is then not reported). 0 or FE_ERR_NOTFOUND. */
int fe_loop_fd_del(fe_loop *loop, int fd);

/* Fire cb at when_ms (now or in the past: on the next turn). Returns the
 * timer id (> 0), or FE_ERR_INVALID (NULL cb, when_ms == FE_LOOP_NOMORE),
 * FE_ERR_FULL (FE_LOOP_TIMERS_MAX live timers) or FE_ERR_NOMEM. */
FE_MUST_CHECK int64_t fe_loop_timer_add(fe_loop *loop, uint64_t when_ms, fe_loop_timer_fn cb,
                                        void *ctx);
/* Move a live timer to when_ms. 0, FE_ERR_NOTFOUND or FE_ERR_INVALID. */
int fe_loop_timer_set(fe_loop *loop, int64_t id, uint64_t when_ms);
/* Delete a timer (deferred, see above). 0 or FE_ERR_NOTFOUND. */
int fe_loop_timer_del(fe_loop *loop, int64_t id);

/* Call cb at the start of every turn, before waiting. NULL removes it. */
void fe_loop_set_before_sleep(fe_loop *loop, fe_loop_hook_fn cb, void *ctx);

/* Catch SIGINT, SIGTERM and SIGHUP and report each, inside the loop, to cb.
 * A self-pipe carries them from the handler to the loop, so cb may do
 * anything. Signals of the same kind that arrive together may be reported
 * once. 0, FE_ERR_INVALID (NULL cb), FE_ERR_DUPLICATE (another loop owns
 * the signals) or FE_ERR_FULL (no pipe: out of fds). The daemon should also
 * ignore SIGPIPE itself; the loop does not touch it. */
FE_MUST_CHECK int fe_loop_signals(fe_loop *loop, fe_loop_signal_fn cb, void *ctx);

/* Run turns until fe_loop_stop. Returns 0 when stopped, or -1 with errno
 * set if poll(2) fails for a reason other than EINTR. */
int fe_loop_run(fe_loop *loop);
/* Make fe_loop_run return after the current turn (see the turn above). */
void fe_loop_stop(fe_loop *loop);

#endif
