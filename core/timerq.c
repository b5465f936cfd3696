#include "timerq.h"

#include <stdlib.h>
#include <string.h>

int fe_timerq_init(fe_timerq *q, size_t max)
{
    memset(q, 0, sizeof *q);
    if (max == 0)
        return FE_ERR_INVALID;
    q->max = max;
    return FE_OK;
}

void fe_timerq_free(fe_timerq *q)
{
    if (!q)
        return;
    free(q->heap);
    memset(q, 0, sizeof *q);
}

static void sift_up(fe_timer *h, size_t i)
{
    fe_timer t = h[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h[p].due_ms <= t.due_ms)
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = t;
}

static void sift_down(fe_timer *h, size_t len, size_t i)
{
    fe_timer t = h[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= len)
            break;
        if (c + 1 < len && h[c + 1].due_ms < h[c].due_ms)
            c++;
        if (h[c].due_ms >= t.due_ms)
            break;
        h[i] = h[c];
        i = c;
    }
    h[i] = t;
}

int fe_timerq_push(fe_timerq *q, const fe_timer *t)
{
    if (q->len == q->cap) {
        if (q->cap >= q->max)
            return FE_ERR_FULL;
        size_t ncap = q->cap ? q->cap * 2 : 64;
        if (ncap > q->max)
            ncap = q->max;
        fe_timer *h = realloc(q->heap, ncap * sizeof *h);
        if (!h)
            return FE_ERR_NOMEM;
        q->heap = h;
        q->cap = ncap;
    }
    q->heap[q->len] = *t;
    sift_up(q->heap, q->len++);
    return FE_OK;
}

uint64_t fe_timerq_peek(const fe_timerq *q)
{
    return q->len ? q->heap[0].due_ms : UINT64_MAX;
}

int fe_timerq_pop_due(fe_timerq *q, uint64_t now_ms, fe_timer *out)
{
    if (q->len == 0 || q->heap[0].due_ms > now_ms)
        return 0;
    *out = q->heap[0];
    q->heap[0] = q->heap[--q->len];
    if (q->len)
        sift_down(q->heap, q->len, 0);
    return 1;
}

void fe_timerq_filter(fe_timerq *q, int (*keep)(void *ctx, const fe_timer *t), void *ctx)
{
    size_t n = 0;
    for (size_t i = 0; i < q->len; i++)
        if (keep(ctx, &q->heap[i]))
            q->heap[n++] = q->heap[i];
    q->len = n;
    for (size_t i = n / 2; i-- > 0;)
        sift_down(q->heap, q->len, i);
}
