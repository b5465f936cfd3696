/* Monotonic clock and the node's time line: see clock.h. */
#include "clock.h"

#include <time.h>

uint64_t fe_clock_mono_ms(void)
{
    struct timespec ts;
    /* Cannot fail for CLOCK_MONOTONIC with a valid pointer on Linux. */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void fe_timeline_init(fe_timeline *t, uint64_t resume_ms)
{
    t->resume_ms = resume_ms;
    t->mono_at_init_ms = fe_clock_mono_ms();
}

uint64_t fe_timeline_now(const fe_timeline *t)
{
    uint64_t mono = fe_clock_mono_ms();
    uint64_t elapsed = mono >= t->mono_at_init_ms ? mono - t->mono_at_init_ms : 0;
    /* Saturate rather than wrap if resume_ms is absurdly large (a bad file). */
    return elapsed > UINT64_MAX - t->resume_ms ? UINT64_MAX : t->resume_ms + elapsed;
}
