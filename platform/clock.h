/* The node's time line, in milliseconds.
 *
 * ferry never uses the wall clock for protocol time: a Raspberry Pi has no
 * real-time clock and may boot without NTP, so wall time can jump by years.
 * Instead the node keeps its own line: the monotonic clock, offset so that
 * it continues where the previous run stopped. The daemon persists the
 * current value now and then (and at shutdown) and passes the last persisted
 * value to fe_timeline_init at the next start.
 *
 * Consequence, by design: time does not pass on this line while the node is
 * powered off (or suspended: CLOCK_MONOTONIC stops then too). A message with
 * 1 h of lifetime left on a node switched off for a day still has up to 1 h
 * left when the node comes back; lifetimes measure time spent running, which
 * is what bounds how long a copy can circulate. After a crash the line may
 * resume slightly behind its last value in memory, by at most the daemon's
 * persist interval; it never resumes behind the last persisted value. */
#ifndef FE_CLOCK_H
#define FE_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC in milliseconds: arbitrary origin, never goes backwards. */
uint64_t fe_clock_mono_ms(void);

typedef struct fe_timeline {
    uint64_t resume_ms;       /* value of the line when it was (re)started */
    uint64_t mono_at_init_ms; /* fe_clock_mono_ms() at that moment */
} fe_timeline;

/* Start the line at resume_ms (0 on the very first run). */
void fe_timeline_init(fe_timeline *t, uint64_t resume_ms);

/* resume_ms + monotonic time elapsed since fe_timeline_init. Never less than
 * resume_ms and never decreasing. */
uint64_t fe_timeline_now(const fe_timeline *t);

#endif
