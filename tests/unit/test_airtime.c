/* Tests of transports/airtime.c: LoRa time on air, the rate model, the
 * duty-cycle budget and the priority queue. Virtual time only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "airtime.h"

static uint64_t rng = 0x243F6A8885A308D3ull;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

static uint64_t lora_us(uint8_t sf, uint32_t bw, size_t len)
{
    fe_lora_params p;
    fe_lora_params_default(&p);
    p.sf = sf;
    p.bw_hz = bw;
    uint64_t us = 0;
    assert_int_equal(fe_airtime_lora_us(&us, &p, len), 0);
    return us;
}

static void assert_within_1pct(uint64_t got_us, uint64_t want_us)
{
    uint64_t diff = got_us > want_us ? got_us - want_us : want_us - got_us;
    if (diff * 100 > want_us)
        fail_msg("airtime %llu us, expected %llu us within 1%%", (unsigned long long)got_us,
                 (unsigned long long)want_us);
}

/* The reference table (Semtech AN1200.13; 125 kHz, CR 4/5, 8-symbol
 * preamble, explicit header, CRC on). */
static void test_lora_reference_table(void **state)
{
    (void)state;
    assert_within_1pct(lora_us(7, 125000, 32), 72000);
    assert_within_1pct(lora_us(7, 125000, 255), 400000);
    assert_within_1pct(lora_us(9, 125000, 32), 247000);
    assert_within_1pct(lora_us(9, 125000, 255), 1250000);
    assert_within_1pct(lora_us(12, 125000, 32), 1810000);
    assert_within_1pct(lora_us(12, 125000, 255), 9020000);
}

/* Hand-worked from the formula: SF7/125 kHz has 1.024 ms symbols; 32 bytes
 * take 8 + ceil(272 / 28) * 5 = 58 payload symbols, plus 12.25 preamble. */
static void test_lora_exact_symbols(void **state)
{
    (void)state;
    fe_lora_params p;
    fe_lora_params_default(&p);
    assert_int_equal(fe_lora_symbol_us(&p), 1024);
    assert_int_equal(lora_us(7, 125000, 32), (58 * 4 + 49) * 1024 / 4);
    /* Empty payload: 8 symbols (the max() floor is not reached with CRC on). */
    uint64_t us = 0;
    assert_int_equal(fe_airtime_lora_us(&us, &p, 0), 0);
    assert_true(us > 0);
    /* Airtime never decreases with the payload. */
    uint64_t prev = 0;
    for (size_t len = 0; len <= FE_LORA_PAYLOAD_MAX; len++) {
        assert_int_equal(fe_airtime_lora_us(&us, &p, len), 0);
        assert_true(us >= prev);
        prev = us;
    }
}

static void test_lora_ldro_and_options(void **state)
{
    (void)state;
    fe_lora_params p;
    fe_lora_params_default(&p);
    uint64_t a, b;
    /* LDRO is automatic above 16 ms symbols: SF11 at 125 kHz (16.384 ms). */
    p.sf = 11;
    assert_int_equal(fe_airtime_lora_us(&a, &p, 100), 0);
    p.ldro = 0;
    assert_int_equal(fe_airtime_lora_us(&b, &p, 100), 0);
    assert_true(a > b); /* DE = 1 makes fewer bits per symbol */
    p.ldro = 1;
    assert_int_equal(fe_airtime_lora_us(&b, &p, 100), 0);
    assert_int_equal(a, b);
    /* SF10 at 125 kHz (8.192 ms) and SF11 at 250 kHz stay without it. */
    p.ldro = -1;
    p.sf = 10;
    assert_int_equal(fe_airtime_lora_us(&a, &p, 100), 0);
    p.ldro = 0;
    assert_int_equal(fe_airtime_lora_us(&b, &p, 100), 0);
    assert_int_equal(a, b);
    p.sf = 11;
    p.bw_hz = 250000;
    assert_int_equal(fe_airtime_lora_us(&b, &p, 100), 0);
    p.ldro = -1;
    assert_int_equal(fe_airtime_lora_us(&a, &p, 100), 0);
    assert_int_equal(a, b);
    /* Implicit header and no CRC shorten; a stronger code lengthens. At SF7
     * 60 bytes are 496 bits of payload terms: 18 blocks of 28, or 17 without
     * the 20 header bits. */
    fe_lora_params_default(&p);
    assert_int_equal(fe_airtime_lora_us(&a, &p, 60), 0);
    p.implicit_header = 1;
    assert_int_equal(fe_airtime_lora_us(&b, &p, 60), 0);
    assert_int_equal(a - b, 5 * 1024); /* one block of CR 4/5: 5 symbols */
    fe_lora_params_default(&p);
    assert_int_equal(fe_airtime_lora_us(&a, &p, 62), 0); /* 512 / 28: 19 blocks */
    p.crc_on = 0;
    assert_int_equal(fe_airtime_lora_us(&b, &p, 62), 0); /* 496 / 28: 18 blocks */
    assert_int_equal(a - b, 5 * 1024);
    fe_lora_params_default(&p);
    assert_int_equal(fe_airtime_lora_us(&a, &p, 64), 0);
    fe_lora_params_default(&p);
    p.cr = 4;
    assert_int_equal(fe_airtime_lora_us(&b, &p, 64), 0);
    assert_true(b > a);
    /* Doubling the bandwidth halves the time. */
    fe_lora_params_default(&p);
    p.bw_hz = 250000;
    assert_int_equal(fe_airtime_lora_us(&b, &p, 64), 0);
    assert_true(b == (a + 1) / 2 || b == a / 2);
}

static void test_lora_invalid(void **state)
{
    (void)state;
    fe_lora_params p;
    fe_lora_params_default(&p);
    uint64_t us = 0;
    assert_int_equal(fe_airtime_lora_us(&us, &p, 256), FE_ERR_TOOBIG);
    assert_int_equal(fe_airtime_lora_us(NULL, &p, 10), FE_ERR_INVALID);
    assert_int_equal(fe_airtime_lora_us(&us, NULL, 10), FE_ERR_INVALID);
    p.sf = 13;
    assert_int_equal(fe_airtime_lora_us(&us, &p, 10), FE_ERR_INVALID);
    assert_int_equal(fe_lora_symbol_us(&p), 0);
    fe_lora_params_default(&p);
    p.bw_hz = 1000;
    assert_int_equal(fe_lora_params_check(&p), FE_ERR_INVALID);
    fe_lora_params_default(&p);
    p.cr = 0;
    assert_int_equal(fe_lora_params_check(&p), FE_ERR_INVALID);
    fe_lora_params_default(&p);
    p.preamble = 5;
    assert_int_equal(fe_lora_params_check(&p), FE_ERR_INVALID);
}

static void test_rate_model(void **state)
{
    (void)state;
    /* 58 bytes at 2.4 kb/s: 464 bits / 2400 = 193.33 ms, rounded up. */
    assert_int_equal(fe_airtime_rate_us(58, 2400), 193334);
    assert_int_equal(fe_airtime_rate_us(240, 62500), 30720);
    assert_int_equal(fe_airtime_rate_us(1, 8000000), 1);
    assert_int_equal(fe_airtime_rate_us(100, 0), 0);
}

/* --- budget --- */

#define HOUR_MS 3600000ull

typedef struct sent {
    uint64_t t_ms, us;
} sent;

/* The largest airtime that started in any window of window_ms: the
 * maximum is reached by a window ending at some transmission. */
static uint64_t max_window_us(const sent *s, size_t n, uint64_t window_ms)
{
    uint64_t best = 0, sum = 0;
    size_t lo = 0;
    for (size_t hi = 0; hi < n; hi++) {
        sum += s[hi].us;
        while (s[lo].t_ms + window_ms <= s[hi].t_ms)
            sum -= s[lo++].us;
        if (sum > best)
            best = sum;
    }
    return best;
}

/* Random traffic for three simulated hours at 10 times the budget: no
 * window ever holds more than 1%, and the link still uses most of it. */
static void test_budget_random_traffic(void **state)
{
    (void)state;
    static fe_airtime_budget b;
    assert_int_equal(fe_airtime_budget_init(&b, 10000, HOUR_MS), 0);
    assert_int_equal(b.budget_us, 36000000u); /* 36 s of every hour */
    enum { MAX_SENT = 20000 };
    static sent log[MAX_SENT];
    size_t n = 0;
    uint64_t offered = 0, refused = 0;
    uint64_t t = 0;
    while (t < 3 * HOUR_MS && n < MAX_SENT) {
        uint64_t us = 10000u + rnd() % 2000000u; /* 10 ms .. 2 s frames */
        offered += us;
        int may = fe_airtime_budget_may_send(&b, t, us);
        int rc = fe_airtime_budget_take(&b, t, us);
        assert_int_equal(rc == 0, may);
        if (rc == 0) {
            log[n].t_ms = t;
            log[n].us = us;
            n++;
        } else {
            assert_int_equal(rc, FE_ERR_FULL);
            refused++;
            uint64_t next = fe_airtime_budget_next_ms(&b, t, us);
            assert_true(next > t && next != UINT64_MAX);
            fe_airtime_budget copy = b;
            assert_true(fe_airtime_budget_may_send(&copy, next, us));
            copy = b;
            assert_false(fe_airtime_budget_may_send(&copy, next - 1, us));
        }
        assert_true(fe_airtime_budget_used_us(&b, t) <= b.budget_us);
        t += 1 + rnd() % 4000u; /* mean gap 2 s, mean frame 1 s: 50% load */
    }
    assert_true(offered > 10 * 3 * b.budget_us);
    assert_true(refused > 0);
    assert_true(max_window_us(log, n, HOUR_MS) <= b.budget_us);
    /* Over hours two and three the link is saturated: at least 90% used. */
    uint64_t used = 0;
    for (size_t i = 0; i < n; i++)
        if (log[i].t_ms >= HOUR_MS && log[i].t_ms < 3 * HOUR_MS)
            used += log[i].us;
    assert_true(used >= 2 * b.budget_us * 9 / 10);
    assert_int_equal(b.granted, n);
    assert_int_equal(b.refused, refused);
}

/* More transmissions than the log holds: entries merge, the budget stays
 * safe, and nothing is lost from the sum. */
static void test_budget_log_merges(void **state)
{
    (void)state;
    static fe_airtime_budget b;
    assert_int_equal(fe_airtime_budget_init(&b, 100000, HOUR_MS), 0); /* 10%: 360 s */
    enum { N = 3 * FE_AIRTIME_LOG_MAX };
    static sent log[N];
    size_t n = 0;
    uint64_t t = 0, sum = 0;
    for (size_t i = 0; i < N; i++, t += 1000) {
        if (fe_airtime_budget_take(&b, t, 50000) == 0) {
            log[n].t_ms = t;
            log[n].us = 50000;
            n++;
            sum += 50000;
        }
    }
    assert_true(b.merged > 0);
    assert_int_equal(b.count, FE_AIRTIME_LOG_MAX);
    assert_true(max_window_us(log, n, HOUR_MS) <= b.budget_us);
    assert_int_equal(b.total_us, sum);
    /* used_us counts at least what is truly in the window (it may count
     * more: merged entries leave late). */
    uint64_t truly = 0;
    for (size_t i = 0; i < n; i++)
        if (log[i].t_ms + HOUR_MS > t)
            truly += log[i].us;
    assert_true(fe_airtime_budget_used_us(&b, t) >= truly);
    /* After a quiet hour everything has left. */
    assert_int_equal(fe_airtime_budget_used_us(&b, t + 2 * HOUR_MS), 0);
}

static void test_budget_edges(void **state)
{
    (void)state;
    fe_airtime_budget b;
    assert_int_equal(fe_airtime_budget_init(&b, 0, HOUR_MS), 0);
    assert_true(fe_airtime_budget_unlimited(&b));
    for (int i = 0; i < 1000; i++)
        assert_int_equal(fe_airtime_budget_take(&b, 5, 10000000), 0);
    assert_int_equal(fe_airtime_budget_next_ms(&b, 7, UINT64_MAX / 2), 7);
    assert_int_equal(fe_airtime_budget_init(&b, FE_AIRTIME_PPM, HOUR_MS), 0);
    assert_true(fe_airtime_budget_unlimited(&b));
    assert_int_equal(fe_airtime_budget_init(&b, 10000, 0), FE_ERR_INVALID);
    assert_int_equal(fe_airtime_budget_init(NULL, 10000, HOUR_MS), FE_ERR_INVALID);

    /* 0.1% of a minute is 60 ms: a 61 ms frame can never go. */
    assert_int_equal(fe_airtime_budget_init(&b, 1000, 60000), 0);
    assert_int_equal(b.budget_us, 60000);
    assert_int_equal(fe_airtime_budget_next_ms(&b, 0, 61000), UINT64_MAX);
    assert_int_equal(fe_airtime_budget_take(&b, 0, 61000), FE_ERR_FULL);
    /* Exactly the budget goes; the next frame waits for the window to pass. */
    assert_int_equal(fe_airtime_budget_take(&b, 100, 60000), 0);
    assert_int_equal(fe_airtime_budget_take(&b, 200, 1), FE_ERR_FULL);
    assert_int_equal(fe_airtime_budget_next_ms(&b, 200, 1), 100 + 60000);
    assert_int_equal(fe_airtime_budget_take(&b, 60099, 1), FE_ERR_FULL);
    assert_int_equal(fe_airtime_budget_take(&b, 60100, 1), 0);
    /* Time going back is treated as "no time passed". */
    assert_int_equal(fe_airtime_budget_take(&b, 5, 59999), 0);
    assert_int_equal(fe_airtime_budget_used_us(&b, 0), 60000);
}

/* --- queue --- */

static void push(fe_airtime_queue *q, uint8_t tag, enum fe_prio prio, int want)
{
    uint8_t f[8] = {tag, (uint8_t)prio, 1, 2, 3, 4, 5, 6};
    assert_int_equal(fe_airtime_queue_push(q, f, 1 + tag % 8, prio), want);
}

static uint8_t pop_tag(fe_airtime_queue *q, enum fe_prio *prio)
{
    uint8_t out[16];
    size_t peek_len = 0;
    const uint8_t *p = fe_airtime_queue_peek(q, &peek_len, NULL);
    assert_non_null(p);
    uint8_t tag = p[0];
    ptrdiff_t n = fe_airtime_queue_pop(q, out, sizeof(out), prio);
    assert_int_equal(n, (ptrdiff_t)peek_len);
    assert_int_equal(out[0], tag);
    assert_int_equal(n, 1 + tag % 8);
    return tag;
}

static void test_queue_priority_order(void **state)
{
    (void)state;
    fe_airtime_queue q;
    assert_int_equal(fe_airtime_queue_init(&q, 32, 64), 0);
    /* Interleaved classes; tags give the arrival order. */
    const enum fe_prio order[] = {FE_PRIO_SYNC,  FE_PRIO_BULK,    FE_PRIO_SMALL, FE_PRIO_RECEIPT,
                                  FE_PRIO_SYNC,  FE_PRIO_RECEIPT, FE_PRIO_BULK,  FE_PRIO_SMALL,
                                  FE_PRIO_SMALL, FE_PRIO_RECEIPT};
    size_t n = sizeof(order) / sizeof(order[0]);
    for (size_t i = 0; i < n; i++)
        push(&q, (uint8_t)i, order[i], 0);
    assert_int_equal(fe_airtime_queue_len(&q), n);
    assert_int_equal(fe_airtime_queue_class_len(&q, FE_PRIO_RECEIPT), 3);
    /* Receipts (3, 5, 9), small (2, 7, 8), bulk (1, 6), sync (0, 4). */
    const uint8_t want[] = {3, 5, 9, 2, 7, 8, 1, 6, 0, 4};
    for (size_t i = 0; i < n; i++) {
        enum fe_prio p;
        assert_int_equal(pop_tag(&q, &p), want[i]);
        assert_int_equal(p, order[want[i]]);
    }
    assert_null(fe_airtime_queue_peek(&q, NULL, NULL));
    uint8_t out[8];
    assert_int_equal(fe_airtime_queue_pop(&q, out, sizeof(out), NULL), FE_ERR_NOTFOUND);
    assert_int_equal(q.stats.popped, n);
    fe_airtime_queue_free(&q);
}

static void test_queue_full_drops_lowest_class(void **state)
{
    (void)state;
    fe_airtime_queue q;
    assert_int_equal(fe_airtime_queue_init(&q, 4, 16), 0);
    push(&q, 0, FE_PRIO_SYNC, 0);
    push(&q, 1, FE_PRIO_BULK, 0);
    push(&q, 2, FE_PRIO_SYNC, 0);
    push(&q, 3, FE_PRIO_SMALL, 0);
    /* Full. Another sync frame is refused (nothing less urgent to evict). */
    push(&q, 4, FE_PRIO_SYNC, FE_ERR_FULL);
    assert_int_equal(q.stats.dropped[FE_PRIO_SYNC], 1);
    /* A receipt evicts the newest sync frame (2), then the older one (0). */
    push(&q, 5, FE_PRIO_RECEIPT, 0);
    push(&q, 6, FE_PRIO_RECEIPT, 0);
    assert_int_equal(q.stats.dropped[FE_PRIO_SYNC], 3);
    assert_int_equal(fe_airtime_queue_class_len(&q, FE_PRIO_SYNC), 0);
    /* Next the bulk frame goes for a small one; a bulk frame is refused. */
    push(&q, 7, FE_PRIO_BULK, FE_ERR_FULL);
    push(&q, 8, FE_PRIO_SMALL, 0);
    assert_int_equal(q.stats.dropped[FE_PRIO_BULK], 2);
    /* Now all urgent: a small frame is refused, receipts still evict small. */
    push(&q, 9, FE_PRIO_SMALL, FE_ERR_FULL);
    push(&q, 10, FE_PRIO_RECEIPT, 0);
    const uint8_t want[] = {5, 6, 10, 3};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(pop_tag(&q, NULL), want[i]);
    assert_int_equal(fe_airtime_queue_len(&q), 0);
    /* The queue refills to capacity after draining. */
    for (uint8_t i = 0; i < 4; i++)
        push(&q, i, FE_PRIO_BULK, 0);
    fe_airtime_queue_free(&q);
}

static void test_queue_errors(void **state)
{
    (void)state;
    fe_airtime_queue q;
    assert_int_equal(fe_airtime_queue_init(&q, 0, 16), FE_ERR_INVALID);
    assert_int_equal(fe_airtime_queue_init(&q, FE_AIRTIME_QUEUE_MAX + 1, 16), FE_ERR_INVALID);
    assert_int_equal(fe_airtime_queue_init(&q, 4, FE_FRAME_MAX + 1), FE_ERR_INVALID);
    fe_airtime_queue_free(&q);
    fe_airtime_queue_free(NULL);
    assert_int_equal(fe_airtime_queue_init(&q, 2, 4), 0);
    uint8_t f[5] = {1, 2, 3, 4, 5};
    assert_int_equal(fe_airtime_queue_push(&q, f, 5, FE_PRIO_SMALL), FE_ERR_TOOBIG);
    assert_int_equal(fe_airtime_queue_push(&q, f, 0, FE_PRIO_SMALL), FE_ERR_INVALID);
    assert_int_equal(fe_airtime_queue_push(&q, f, 4, (enum fe_prio)7), FE_ERR_INVALID);
    assert_int_equal(fe_airtime_queue_push(&q, f, 4, FE_PRIO_SMALL), 0);
    uint8_t out[3];
    assert_int_equal(fe_airtime_queue_pop(&q, out, sizeof(out), NULL), FE_ERR_TOOBIG);
    assert_int_equal(fe_airtime_queue_len(&q), 1); /* still there */
    fe_airtime_queue_free(&q);
}

/* Random pushes and pops against a simple model of the rules. */
static void test_queue_model(void **state)
{
    (void)state;
    enum { SLOTS = 8, STEPS = 20000 };
    fe_airtime_queue q;
    assert_int_equal(fe_airtime_queue_init(&q, SLOTS, 8), 0);
    /* Model: per class a FIFO of ids. */
    uint32_t fifo[FE_PRIO_CLASSES][SLOTS];
    size_t cnt[FE_PRIO_CLASSES] = {0};
    uint32_t next_id = 0;
    for (int step = 0; step < STEPS; step++) {
        size_t total = cnt[0] + cnt[1] + cnt[2] + cnt[3];
        if (rnd() % 3 != 0) {
            enum fe_prio p = (enum fe_prio)(rnd() % FE_PRIO_CLASSES);
            uint32_t id = next_id++;
            uint8_t f[4];
            memcpy(f, &id, 4);
            int rc = fe_airtime_queue_push(&q, f, 4, p);
            if (total == SLOTS) {
                size_t low = FE_PRIO_CLASSES - 1;
                while (cnt[low] == 0)
                    low--;
                if ((size_t)p >= low) {
                    assert_int_equal(rc, FE_ERR_FULL);
                    continue;
                }
                cnt[low]--; /* the newest of the lowest class goes */
            }
            assert_int_equal(rc, 0);
            fifo[p][cnt[p]++] = id;
        } else if (total > 0) {
            size_t c = 0;
            while (cnt[c] == 0)
                c++;
            uint8_t out[8];
            enum fe_prio p;
            assert_int_equal(fe_airtime_queue_pop(&q, out, sizeof(out), &p), 4);
            uint32_t id;
            memcpy(&id, out, 4);
            assert_int_equal(p, c);
            assert_int_equal(id, fifo[c][0]);
            memmove(fifo[c], fifo[c] + 1, (cnt[c] - 1) * sizeof(fifo[c][0]));
            cnt[c]--;
        }
        assert_int_equal(fe_airtime_queue_len(&q), cnt[0] + cnt[1] + cnt[2] + cnt[3]);
    }
    fe_airtime_queue_free(&q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lora_reference_table),
        cmocka_unit_test(test_lora_exact_symbols),
        cmocka_unit_test(test_lora_ldro_and_options),
        cmocka_unit_test(test_lora_invalid),
        cmocka_unit_test(test_rate_model),
        cmocka_unit_test(test_budget_random_traffic),
        cmocka_unit_test(test_budget_log_merges),
        cmocka_unit_test(test_budget_edges),
        cmocka_unit_test(test_queue_priority_order),
        cmocka_unit_test(test_queue_full_drops_lowest_class),
        cmocka_unit_test(test_queue_errors),
        cmocka_unit_test(test_queue_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
