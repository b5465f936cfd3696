/* Tests for platform/clock.c: the monotonic clock and the node's time line. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <time.h>

#include "clock.h"

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static void test_mono_advances(void **state)
{
    (void)state;
    uint64_t a = fe_clock_mono_ms();
    uint64_t prev = a;
    for (int i = 0; i < 10000; i++) {
        uint64_t t = fe_clock_mono_ms();
        assert_true(t >= prev);
        prev = t;
    }
    sleep_ms(25);
    assert_true(fe_clock_mono_ms() - a >= 25);
}

static void test_timeline_starts_at_resume(void **state)
{
    (void)state;
    fe_timeline t;
    fe_timeline_init(&t, 123456789);
    uint64_t now = fe_timeline_now(&t);
    assert_true(now >= 123456789);
    assert_true(now < 123456789 + 60000); /* generous: only a few ms pass */
    sleep_ms(30);
    uint64_t later = fe_timeline_now(&t);
    assert_true(later - now >= 30);
    uint64_t prev = later;
    for (int i = 0; i < 10000; i++) {
        uint64_t x = fe_timeline_now(&t);
        assert_true(x >= prev);
        prev = x;
    }
}

/* A "restart": the second run resumes from the value the first persisted,
 * and the time spent "powered off" in between is not counted. */
static void test_timeline_pauses_while_off(void **state)
{
    (void)state;
    fe_timeline run1;
    fe_timeline_init(&run1, 0);
    sleep_ms(20);
    uint64_t persisted = fe_timeline_now(&run1);
    assert_true(persisted >= 20);
    sleep_ms(60); /* the node is off */
    fe_timeline run2;
    fe_timeline_init(&run2, persisted);
    uint64_t now = fe_timeline_now(&run2);
    assert_true(now >= persisted);
    assert_true(now - persisted < 60);
}

static void test_timeline_saturates(void **state)
{
    (void)state;
    fe_timeline t;
    fe_timeline_init(&t, UINT64_MAX - 1);
    sleep_ms(5);
    assert_int_equal(fe_timeline_now(&t), UINT64_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mono_advances),
        cmocka_unit_test(test_timeline_starts_at_resume),
        cmocka_unit_test(test_timeline_pauses_while_off),
        cmocka_unit_test(test_timeline_saturates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
