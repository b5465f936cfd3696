/* Airtime, duty-cycle budget and priority queue: see airtime.h. */
#include "airtime.h"

#include <stdlib.h>
#include <string.h>

#define US_PER_S 1000000ull
#define WINDOW_MAX_MS (7ull * 24u * 3600u * 1000u)

void fe_lora_params_default(fe_lora_params *p)
{
    if (p == NULL)
        return;
    memset(p, 0, sizeof(*p));
    p->sf = 7;
    p->bw_hz = 125000;
    p->cr = 1;
    p->preamble = 8;
    p->implicit_header = 0;
    p->crc_on = 1;
    p->ldro = -1;
}

int fe_lora_params_check(const fe_lora_params *p)
{
    if (p == NULL)
        return FE_ERR_INVALID;
    if (p->sf < FE_LORA_SF_MIN || p->sf > FE_LORA_SF_MAX)
        return FE_ERR_INVALID;
    if (p->bw_hz < FE_LORA_BW_MIN_HZ || p->bw_hz > FE_LORA_BW_MAX_HZ)
        return FE_ERR_INVALID;
    if (p->cr < 1 || p->cr > 4 || p->preamble < 6)
        return FE_ERR_INVALID;
    if (p->implicit_header > 1 || p->crc_on > 1 || p->ldro < -1 || p->ldro > 1)
        return FE_ERR_INVALID;
    return 0;
}

uint64_t fe_lora_symbol_us(const fe_lora_params *p)
{
    if (fe_lora_params_check(p) != 0)
        return 0;
    uint64_t num = (1ull << p->sf) * US_PER_S;
    return (num + p->bw_hz - 1) / p->bw_hz;
}

static int ldro_on(const fe_lora_params *p)
{
    if (p->ldro >= 0)
        return p->ldro;
    /* 2^SF / BW > 16 ms, compared exactly in integers. */
    return (1ull << p->sf) * US_PER_S > (uint64_t)FE_LORA_LDRO_SYMBOL_US * p->bw_hz;
}

int fe_airtime_lora_us(uint64_t *us, const fe_lora_params *p, size_t len)
{
    if (us == NULL || fe_lora_params_check(p) != 0)
        return FE_ERR_INVALID;
    if (len > FE_LORA_PAYLOAD_MAX)
        return FE_ERR_TOOBIG;
    int64_t sf = p->sf;
    int64_t de = ldro_on(p);
    int64_t num =
        8 * (int64_t)len - 4 * sf + 28 + 16 * (int64_t)p->crc_on - 20 * (int64_t)p->implicit_header;
    int64_t den = 4 * (sf - 2 * de);
    int64_t blocks = num > 0 ? (num + den - 1) / den : 0;
    uint64_t payload_syms = 8u + (uint64_t)blocks * (uint64_t)(p->cr + 4);
    /* Counted in quarter symbols so that the 4.25 preamble tail stays exact. */
    uint64_t quarters = 4u * (uint64_t)p->preamble + 17u + 4u * payload_syms;
    uint64_t num_us = quarters * (1ull << p->sf) * US_PER_S;
    uint64_t den_us = 4ull * p->bw_hz;
    *us = (num_us + den_us - 1) / den_us;
    return 0;
}

uint64_t fe_airtime_rate_us(size_t len, uint32_t bits_per_s)
{
    if (bits_per_s == 0)
        return 0;
    uint64_t bits = (uint64_t)len * 8u;
    return (bits * US_PER_S + bits_per_s - 1) / bits_per_s;
}

/* --- budget --- */

int fe_airtime_budget_init(fe_airtime_budget *b, uint32_t duty_ppm, uint64_t window_ms)
{
    if (b == NULL || window_ms == 0 || window_ms > WINDOW_MAX_MS)
        return FE_ERR_INVALID;
    memset(b, 0, sizeof(*b));
    b->window_ms = window_ms;
    if (duty_ppm == 0 || duty_ppm >= FE_AIRTIME_PPM)
        b->budget_us = UINT64_MAX;
    else /* window_ms * 1000 us * duty_ppm / 10^6 */
        b->budget_us = window_ms * duty_ppm / 1000u;
    return 0;
}

int fe_airtime_budget_unlimited(const fe_airtime_budget *b)
{
    return b == NULL || b->budget_us == UINT64_MAX;
}

/* Move the clock to now (never back) and drop what left the window. */
static uint64_t expire(fe_airtime_budget *b, uint64_t now_ms)
{
    if (now_ms < b->last_ms)
        now_ms = b->last_ms;
    b->last_ms = now_ms;
    while (b->count > 0) {
        fe_airtime_entry *e = &b->log[b->head];
        if (e->t_ms + b->window_ms > now_ms)
            break;
        b->used_us -= e->us;
        b->head = (b->head + 1) % FE_AIRTIME_LOG_MAX;
        b->count--;
    }
    return now_ms;
}

uint64_t fe_airtime_budget_used_us(fe_airtime_budget *b, uint64_t now_ms)
{
    if (b == NULL)
        return 0;
    expire(b, now_ms);
    return b->used_us;
}

int fe_airtime_budget_may_send(fe_airtime_budget *b, uint64_t now_ms, uint64_t us)
{
    if (b == NULL)
        return 0;
    if (b->budget_us == UINT64_MAX)
        return 1;
    expire(b, now_ms);
    return us <= b->budget_us && b->used_us <= b->budget_us - us;
}

int fe_airtime_budget_take(fe_airtime_budget *b, uint64_t now_ms, uint64_t us)
{
    if (b == NULL)
        return FE_ERR_INVALID;
    if (!fe_airtime_budget_may_send(b, now_ms, us)) {
        b->refused++;
        return FE_ERR_FULL;
    }
    now_ms = expire(b, now_ms);
    b->granted++;
    b->total_us += us;
    /* Remembered even without a limit, for the "airtime in the last window"
     * figure. */
    if (b->count == FE_AIRTIME_LOG_MAX) {
        /* Fold the oldest entry into the next one: it now leaves the window
         * later than it should, which only errs on the strict side. */
        size_t next = (b->head + 1) % FE_AIRTIME_LOG_MAX;
        b->log[next].us += b->log[b->head].us;
        b->head = next;
        b->count--;
        b->merged++;
    }
    size_t tail = (b->head + b->count) % FE_AIRTIME_LOG_MAX;
    b->log[tail].t_ms = now_ms;
    b->log[tail].us = us;
    b->count++;
    b->used_us += us;
    return 0;
}

uint64_t fe_airtime_budget_next_ms(fe_airtime_budget *b, uint64_t now_ms, uint64_t us)
{
    if (b == NULL)
        return UINT64_MAX;
    if (b->budget_us == UINT64_MAX)
        return now_ms;
    if (us > b->budget_us)
        return UINT64_MAX;
    now_ms = expire(b, now_ms);
    if (b->used_us <= b->budget_us - us)
        return now_ms;
    /* Walk from the oldest until enough airtime has left the window. */
    uint64_t need = b->used_us - (b->budget_us - us);
    uint64_t freed = 0;
    for (size_t i = 0; i < b->count; i++) {
        const fe_airtime_entry *e = &b->log[(b->head + i) % FE_AIRTIME_LOG_MAX];
        freed += e->us;
        if (freed >= need)
            return e->t_ms + b->window_ms;
    }
    return UINT64_MAX; /* not reached: used_us is the sum of the log */
}

/* --- queue --- */

int fe_airtime_queue_init(fe_airtime_queue *q, size_t slots, size_t frame_max)
{
    if (q == NULL)
        return FE_ERR_INVALID;
    memset(q, 0, sizeof(*q));
    if (slots == 0 || slots > FE_AIRTIME_QUEUE_MAX || frame_max == 0 || frame_max > FE_FRAME_MAX)
        return FE_ERR_INVALID;
    q->data = malloc(slots * frame_max);
    q->len = calloc(slots, sizeof(*q->len));
    q->free_list = calloc(slots, sizeof(*q->free_list));
    int ok = q->data != NULL && q->len != NULL && q->free_list != NULL;
    for (size_t c = 0; c < FE_PRIO_CLASSES; c++) {
        q->ring[c] = calloc(slots, sizeof(*q->ring[c]));
        ok = ok && q->ring[c] != NULL;
    }
    if (!ok) {
        fe_airtime_queue_free(q);
        return FE_ERR_NOMEM;
    }
    q->slots = slots;
    q->frame_max = frame_max;
    for (size_t i = 0; i < slots; i++)
        q->free_list[i] = (uint16_t)(slots - 1 - i);
    q->free_count = slots;
    return 0;
}

void fe_airtime_queue_free(fe_airtime_queue *q)
{
    if (q == NULL)
        return;
    free(q->data);
    free(q->len);
    free(q->free_list);
    for (size_t c = 0; c < FE_PRIO_CLASSES; c++)
        free(q->ring[c]);
    memset(q, 0, sizeof(*q));
}

static int valid_prio(enum fe_prio prio)
{
    return (int)prio >= 0 && (int)prio < FE_PRIO_CLASSES;
}

/* Remove the newest frame of class c and return its slot to the free list. */
static void evict_newest(fe_airtime_queue *q, size_t c)
{
    size_t pos = (q->ring_head[c] + q->ring_count[c] - 1) % q->slots;
    q->free_list[q->free_count++] = q->ring[c][pos];
    q->ring_count[c]--;
    q->count--;
    q->stats.dropped[c]++;
}

int fe_airtime_queue_push(fe_airtime_queue *q, const uint8_t *frame, size_t len, enum fe_prio prio)
{
    if (q == NULL || q->data == NULL || frame == NULL || len == 0 || !valid_prio(prio))
        return FE_ERR_INVALID;
    if (len > q->frame_max)
        return FE_ERR_TOOBIG;
    size_t c = (size_t)prio;
    if (q->free_count == 0) {
        size_t lowest = FE_PRIO_CLASSES - 1;
        while (q->ring_count[lowest] == 0)
            lowest--; /* the queue is full, so some class is not empty */
        if (c >= lowest) {
            q->stats.dropped[c]++;
            return FE_ERR_FULL;
        }
        evict_newest(q, lowest);
    }
    uint16_t slot = q->free_list[--q->free_count];
    memcpy(q->data + (size_t)slot * q->frame_max, frame, len);
    q->len[slot] = (uint16_t)len;
    q->ring[c][(q->ring_head[c] + q->ring_count[c]) % q->slots] = slot;
    q->ring_count[c]++;
    q->count++;
    q->stats.pushed[c]++;
    return 0;
}

/* The most urgent non-empty class, or FE_PRIO_CLASSES when empty. */
static size_t first_class(const fe_airtime_queue *q)
{
    size_t c = 0;
    while (c < FE_PRIO_CLASSES && q->ring_count[c] == 0)
        c++;
    return c;
}

const uint8_t *fe_airtime_queue_peek(const fe_airtime_queue *q, size_t *len, enum fe_prio *prio)
{
    if (q == NULL || q->count == 0)
        return NULL;
    size_t c = first_class(q);
    uint16_t slot = q->ring[c][q->ring_head[c]];
    if (len != NULL)
        *len = q->len[slot];
    if (prio != NULL)
        *prio = (enum fe_prio)c;
    return q->data + (size_t)slot * q->frame_max;
}

ptrdiff_t fe_airtime_queue_pop(fe_airtime_queue *q, uint8_t *out, size_t out_len,
                               enum fe_prio *prio)
{
    if (q == NULL || q->count == 0)
        return FE_ERR_NOTFOUND;
    size_t c = first_class(q);
    uint16_t slot = q->ring[c][q->ring_head[c]];
    size_t len = q->len[slot];
    if (out == NULL || out_len < len)
        return FE_ERR_TOOBIG;
    memcpy(out, q->data + (size_t)slot * q->frame_max, len);
    q->ring_head[c] = (q->ring_head[c] + 1) % q->slots;
    q->ring_count[c]--;
    q->count--;
    q->free_list[q->free_count++] = slot;
    q->stats.popped++;
    if (prio != NULL)
        *prio = (enum fe_prio)c;
    return (ptrdiff_t)len;
}

size_t fe_airtime_queue_len(const fe_airtime_queue *q)
{
    return q == NULL ? 0 : q->count;
}

size_t fe_airtime_queue_class_len(const fe_airtime_queue *q, enum fe_prio prio)
{
    if (q == NULL || !valid_prio(prio))
        return 0;
    return q->ring_count[(size_t)prio];
}
