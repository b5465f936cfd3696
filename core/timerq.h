/* A binary min-heap of timers keyed by due time. Entries name an outbox slot
 * and its generation, so a timer for an item that is gone or reused is
 * recognised and skipped when it pops (lazy cancellation). */
#ifndef FE_TIMERQ_H
#define FE_TIMERQ_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct fe_timer {
    uint64_t due_ms;
    uint32_t slot;
    uint32_t gen;
    uint8_t kind;
} fe_timer;

typedef struct fe_timerq {
    fe_timer *heap;
    size_t len, cap, max;
} fe_timerq;

/* max bounds the heap; 0, FE_ERR_INVALID. */
FE_MUST_CHECK int fe_timerq_init(fe_timerq *q, size_t max);
void fe_timerq_free(fe_timerq *q);
/* 0, FE_ERR_FULL or FE_ERR_NOMEM. */
FE_MUST_CHECK int fe_timerq_push(fe_timerq *q, const fe_timer *t);
/* Earliest due time or UINT64_MAX. */
uint64_t fe_timerq_peek(const fe_timerq *q);
/* Pop the earliest into out if due at now_ms: 1 popped, 0 nothing due. */
int fe_timerq_pop_due(fe_timerq *q, uint64_t now_ms, fe_timer *out);
/* Drop every entry for which keep() returns 0 and re-heapify. */
void fe_timerq_filter(fe_timerq *q, int (*keep)(void *ctx, const fe_timer *t), void *ctx);

#endif
