/* Unit tests for core/dedupe.c: table-driven selftest, a model-checked
 * random walk, eviction and bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "dedupe.h"

/* Any key does for the table tests; the hashing test uses two. */
static const uint8_t KEY[FE_DEDUPE_KEY_BYTES] = {1, 2,  3,  4,  5,  6,  7,  8,
                                                 9, 10, 11, 12, 13, 14, 15, 16};
static const uint8_t KEY2[FE_DEDUPE_KEY_BYTES] = {16, 15, 14, 13, 12, 11, 10, 9,
                                                  8,  7,  6,  5,  4,  3,  2,  1};

static uint64_t rng_next(uint64_t *s)
{
    /* splitmix64 with a fixed seed: every run is the same run */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Id number n as 8 bytes. Small n give ids differing only in a low byte, which
 * also checks that the hash mixes all of them. */
static void id_of(uint8_t id[FE_MSG_ID_BYTES], uint64_t n)
{
    for (int i = 0; i < FE_MSG_ID_BYTES; i++)
        id[i] = (uint8_t)(n >> (8 * i));
}

enum op { ADD, GET, EXPIRE, COUNT, EVICTED };

typedef struct step {
    enum op op;
    uint64_t id;
    uint8_t kinds;
    uint64_t expires_ms;
    uint64_t now_ms;
    long expect; /* ADD: dup flag; GET: kinds; EXPIRE: dropped; COUNT; EVICTED */
} step;

#define M FE_SEEN_MSG
#define R FE_SEEN_RECEIPT
#define D FE_SEEN_DELIVERED

/* The contract of dedupe.h, one line at a time. Capacity 16, max_count 12. */
static const step selftest[] = {
    {GET, 1, 0, 0, 0, 0},   /* unknown */
    {ADD, 1, M, 100, 0, 0}, /* new */
    {ADD, 1, M, 100, 1, 1}, /* duplicate */
    {GET, 1, 0, 0, 1, M},
    {ADD, 1, R, 50, 2, 0}, /* the receipt is new: bits OR-ed */
    {GET, 1, 0, 0, 2, M | R},
    {ADD, 1, M | R, 10, 3, 1}, /* both already known */
    {ADD, 1, M | D, 10, 3, 0}, /* D is new */
    {GET, 1, 0, 0, 3, M | R | D},
    {GET, 1, 0, 0, 99, M | R | D}, /* expiry stayed at 100, not 50 or 10 */
    {GET, 1, 0, 0, 100, 0},        /* expired at exactly expires_ms */
    {ADD, 1, M, 200, 100, 0},      /* dead record: new again, old bits gone */
    {GET, 1, 0, 0, 150, M},
    {ADD, 1, M, 300, 150, 1}, /* extends expiry to the later value */
    {GET, 1, 0, 0, 250, M},
    {COUNT, 0, 0, 0, 0, 1},
    {ADD, 2, M, 10, 20, 0}, /* already dead when added: not stored */
    {COUNT, 0, 0, 0, 0, 1},
    {GET, 2, 0, 0, 0, 0},
    {ADD, 3, R, 400, 0, 0},
    {ADD, 4, M, 500, 0, 0},
    {ADD, 5, M, 600, 0, 0},
    {COUNT, 0, 0, 0, 0, 4},
    {EXPIRE, 0, 0, 0, 299, 0},
    {EXPIRE, 0, 0, 0, 400, 2}, /* ids 1 (300) and 3 (400) */
    {COUNT, 0, 0, 0, 0, 2},
    {GET, 1, 0, 0, 0, 0},
    {GET, 3, 0, 0, 0, 0},
    {GET, 4, 0, 0, 0, M},
    {GET, 5, 0, 0, 0, M},
    {ADD, 6, 0, 900, 0, 1}, /* no kind bits: nothing new, nothing stored */
    {COUNT, 0, 0, 0, 0, 2},
    {EVICTED, 0, 0, 0, 0, 0},
    {EXPIRE, 0, 0, 0, UINT64_MAX, 2},
    {COUNT, 0, 0, 0, 0, 0},
};

static void test_selftest_table(void **state)
{
    (void)state;
    fe_dedupe d;
    assert_int_equal(fe_dedupe_init(&d, 16, KEY), 0);
    assert_int_equal(d.max_count, 12);
    for (size_t i = 0; i < sizeof(selftest) / sizeof(selftest[0]); i++) {
        const step *s = &selftest[i];
        uint8_t id[FE_MSG_ID_BYTES];
        id_of(id, s->id);
        long got = -1;
        switch (s->op) {
        case ADD:
            got = fe_dedupe_add(&d, id, s->kinds, s->expires_ms, s->now_ms);
            break;
        case GET:
            got = fe_dedupe_get(&d, id, s->now_ms);
            break;
        case EXPIRE:
            got = (long)fe_dedupe_expire(&d, s->now_ms);
            break;
        case COUNT:
            got = (long)d.count;
            break;
        case EVICTED:
            got = (long)d.evicted;
            break;
        }
        if (got != s->expect)
            fail_msg("selftest step %zu: got %ld, want %ld", i, got, s->expect);
    }
    fe_dedupe_free(&d);
}

static void test_init_args(void **state)
{
    (void)state;
    fe_dedupe d;
    assert_int_equal(fe_dedupe_init(&d, 0, KEY), FE_ERR_INVALID);
    assert_int_equal(fe_dedupe_init(&d, 8, KEY), FE_ERR_INVALID);
    assert_int_equal(fe_dedupe_init(&d, 24, KEY), FE_ERR_INVALID);
    assert_int_equal(fe_dedupe_init(NULL, 16, KEY), FE_ERR_INVALID);
    assert_int_equal(fe_dedupe_init(&d, FE_DEDUPE_CAPACITY, KEY), 0);
    assert_int_equal(d.capacity, FE_DEDUPE_CAPACITY);
    assert_int_equal(d.max_count, FE_DEDUPE_CAPACITY * 3 / 4);
    fe_dedupe_free(&d);
    assert_null(d.slots);
    fe_dedupe_free(&d); /* twice is fine */
    fe_dedupe_free(NULL);
}

/* The earliest-expiring entry goes first when the table is full. In a small
 * table the eviction window covers every entry, so the choice is exact. */
static void test_evicts_earliest(void **state)
{
    (void)state;
    fe_dedupe d;
    assert_int_equal(fe_dedupe_init(&d, 16, KEY), 0);
    /* 12 entries, expiries 1000..1011 in scrambled order, id 7 expiring at 500 */
    for (uint64_t k = 0; k < 12; k++) {
        uint64_t n = (k * 5) % 12;
        uint8_t id[FE_MSG_ID_BYTES];
        id_of(id, 100 + n);
        uint64_t exp = n == 7 ? 500 : 1000 + n;
        assert_int_equal(fe_dedupe_add(&d, id, M, exp, 0), 0);
    }
    assert_int_equal(d.count, 12);
    uint8_t id[FE_MSG_ID_BYTES];
    id_of(id, 200);
    assert_int_equal(fe_dedupe_add(&d, id, M, 5000, 0), 0);
    assert_int_equal(d.count, 12);
    assert_int_equal(d.evicted, 1);
    id_of(id, 107);
    assert_int_equal(fe_dedupe_get(&d, id, 0), 0); /* the 500 one went */
    id_of(id, 201);
    assert_int_equal(fe_dedupe_add(&d, id, M, 5000, 0), 0);
    assert_int_equal(d.evicted, 2);
    id_of(id, 100);
    assert_int_equal(fe_dedupe_get(&d, id, 0), 0); /* then the 1000 one */
    for (uint64_t n = 1; n < 12; n++) {
        if (n == 7)
            continue;
        id_of(id, 100 + n);
        assert_int_equal(fe_dedupe_get(&d, id, 0), M);
    }

    /* Full of entries of which one has expired: it is reclaimed, not evicted. */
    id_of(id, 105);
    assert_int_equal(fe_dedupe_get(&d, id, 1004), M);
    assert_int_equal(fe_dedupe_get(&d, id, 1005), 0);
    id_of(id, 202);
    assert_int_equal(fe_dedupe_add(&d, id, M, 5000, 1001), 0);
    assert_int_equal(d.evicted, 2); /* id 101 (expiring at 1001) was dead at 1001 */
    assert_int_equal(d.count, 12);
    id_of(id, 101);
    assert_int_equal(fe_dedupe_get(&d, id, 0), 0);
    for (uint64_t n = 2; n < 12; n++) {
        if (n == 7)
            continue;
        id_of(id, 100 + n);
        assert_int_equal(fe_dedupe_get(&d, id, 1001), M);
    }
    fe_dedupe_free(&d);
}

/* A big table, 100k ids: the count never passes max_count, a freshly added id
 * is always found, and the evicted ones come from the early-expiring tail. */
static void test_100k_random(void **state)
{
    (void)state;
    fe_dedupe d;
    assert_int_equal(fe_dedupe_init(&d, 65536, KEY), 0);
    uint64_t seed = 42;
    const uint64_t N = 100000;
    const uint64_t RANGE = 1000000;
    for (uint64_t n = 0; n < N; n++) {
        uint8_t id[FE_MSG_ID_BYTES];
        uint64_t v = rng_next(&seed);
        memcpy(id, &v, sizeof(v));
        uint64_t exp = 1000 + rng_next(&seed) % RANGE;
        uint64_t before = d.evicted;
        (void)fe_dedupe_add(&d, id, M, exp, 0);
        assert_true(d.count <= d.max_count);
        assert_int_equal(fe_dedupe_get(&d, id, 0), M);
        if (n < d.max_count)
            assert_int_equal(d.evicted, 0);
        else
            assert_int_equal(d.evicted, before + 1);
    }
    assert_int_equal(d.count, d.max_count);
    assert_int_equal(d.evicted, N - d.max_count);

    /* Survivors skew late: with a 64-entry window the evicted ones are
     * mostly from the early tail, so survivors' mean expiry is well above
     * the uniform mean (1000 + RANGE / 2). */
    long double sum = 0;
    size_t live = 0;
    for (size_t i = 0; i < d.capacity; i++) {
        if (d.slots[i].kinds) {
            sum += (long double)d.slots[i].expires_ms;
            live++;
        }
    }
    assert_int_equal(live, d.count);
    assert_true(sum / live > 1000 + RANGE * 0.6);

    /* Everything expires; the table empties and works again. */
    assert_int_equal(fe_dedupe_expire(&d, 1000 + RANGE), d.max_count);
    assert_int_equal(d.count, 0);
    for (size_t i = 0; i < d.capacity; i++)
        assert_int_equal(d.slots[i].kinds, 0);
    uint8_t id[FE_MSG_ID_BYTES];
    id_of(id, 1);
    assert_int_equal(fe_dedupe_add(&d, id, R, UINT64_MAX, 1000 + RANGE), 0);
    assert_int_equal(fe_dedupe_get(&d, id, 1000 + RANGE), R);
    fe_dedupe_free(&d);
}

/* Random walk against a trivially correct model. Live entries are kept below
 * max_count (each add lives at most 40 steps), so nothing is ever evicted and
 * the model is exact; the small table makes runs wrap around and deletions
 * shift entries constantly. */
typedef struct model_entry {
    uint8_t kinds;
    uint64_t expires_ms;
} model_entry;

static void test_model_random_walk(void **state)
{
    (void)state;
    enum { POOL = 200, STEPS = 200000 };
    static model_entry model[POOL];
    memset(model, 0, sizeof(model));
    fe_dedupe d;
    assert_int_equal(fe_dedupe_init(&d, 64, KEY), 0);
    uint64_t seed = 7;
    for (uint64_t now = 1; now <= STEPS; now++) {
        uint64_t r = rng_next(&seed);
        uint64_t n = r % POOL;
        uint8_t id[FE_MSG_ID_BYTES];
        id_of(id, n * 0x10001ull); /* a sparse pattern of ids */
        model_entry *e = &model[n];
        int live = e->kinds && e->expires_ms > now;
        switch ((r >> 20) % 4) {
        case 0:
        case 1: {
            uint8_t kinds = (uint8_t)(1 + (r >> 24) % 7);
            uint64_t exp = now + (r >> 32) % 41; /* may be "already dead" */
            int want;
            if (!live) {
                want = 0;
                e->kinds = exp > now ? kinds : 0;
                e->expires_ms = exp;
            } else {
                want = (e->kinds & kinds) == kinds;
                e->kinds |= kinds;
                if (exp > e->expires_ms)
                    e->expires_ms = exp;
            }
            assert_int_equal(fe_dedupe_add(&d, id, kinds, exp, now), want);
            break;
        }
        case 2:
            assert_int_equal(fe_dedupe_get(&d, id, now), live ? e->kinds : 0);
            break;
        case 3:
            if ((r >> 40) % 16 == 0) {
                /* After a full sweep the table holds exactly the live entries.
                 * (Dead ones may also have been reclaimed earlier by adds to a
                 * full table, so the dropped count alone is not exact.) */
                size_t before = d.count;
                size_t got = fe_dedupe_expire(&d, now);
                size_t live_n = 0;
                for (size_t k = 0; k < POOL; k++) {
                    if (model[k].kinds && model[k].expires_ms <= now)
                        model[k].kinds = 0;
                    if (model[k].kinds)
                        live_n++;
                }
                assert_int_equal(d.count, live_n);
                assert_int_equal(got, before - live_n);
            }
            break;
        }
        assert_true(d.count <= d.max_count);
    }
    assert_int_equal(d.evicted, 0);
    /* final full comparison */
    uint64_t now = STEPS;
    for (uint64_t n = 0; n < POOL; n++) {
        uint8_t id[FE_MSG_ID_BYTES];
        id_of(id, n * 0x10001ull);
        int live = model[n].kinds && model[n].expires_ms > now;
        assert_int_equal(fe_dedupe_get(&d, id, now), live ? model[n].kinds : 0);
    }
    fe_dedupe_free(&d);
}

/* Entries whose home slots collide form one long run; deleting from the
 * middle of it must keep every other member reachable. */
static void test_collision_runs(void **state)
{
    (void)state;
    fe_dedupe d;
    assert_int_equal(fe_dedupe_init(&d, 16, KEY), 0);
    /* 12 entries in 16 slots: runs are long and wrap around */
    for (uint64_t n = 0; n < 12; n++) {
        uint8_t id[FE_MSG_ID_BYTES];
        id_of(id, n);
        assert_int_equal(fe_dedupe_add(&d, id, M, 100 + n, 0), 0);
    }
    /* remove every other one by expiry order: expire at 100, 102, ... */
    for (uint64_t cut = 100; cut < 112; cut++) {
        assert_int_equal(fe_dedupe_expire(&d, cut), 1);
        for (uint64_t n = 0; n < 12; n++) {
            uint8_t id[FE_MSG_ID_BYTES];
            id_of(id, n);
            uint8_t want = (100 + n > cut) ? M : 0;
            assert_int_equal(fe_dedupe_get(&d, id, 0), want);
        }
        assert_int_equal(d.count, 111 - cut);
    }
    fe_dedupe_free(&d);
}

/* An attacker who knew a node's key could aim ids at one slot: here 40 ids
 * found by trying ids until they share home slot 0 under KEY. Under another
 * key, as every other node has, they scatter; under the same key they
 * collide again (the home depends on the key and the id only). */
static void test_keyed_homes(void **state)
{
    (void)state;
    enum { AIMED = 40 };
    fe_dedupe a, b, a_again;
    assert_int_equal(fe_dedupe_init(&a, 64, KEY), 0);
    assert_int_equal(fe_dedupe_init(&b, 64, KEY2), 0);
    assert_int_equal(fe_dedupe_init(&a_again, 64, KEY), 0);
    uint8_t ids[AIMED][FE_MSG_ID_BYTES];
    size_t found = 0;
    for (uint64_t n = 0; n < 1000000 && found < AIMED; n++) {
        id_of(ids[found], n);
        if (fe_dedupe_home(&a, ids[found]) == 0)
            found++;
    }
    assert_int_equal(found, AIMED);
    int used[64] = {0};
    size_t distinct = 0;
    for (size_t i = 0; i < AIMED; i++) {
        assert_int_equal(fe_dedupe_home(&a_again, ids[i]), 0);
        size_t h = fe_dedupe_home(&b, ids[i]);
        assert_true(h < 64);
        distinct += !used[h];
        used[h] = 1;
    }
    /* 40 ids thrown at random into 64 slots land in about 30 distinct ones. */
    assert_true(distinct >= 20);
    /* And the aimed ids still work in the table they were aimed at. */
    for (size_t i = 0; i < AIMED; i++)
        assert_int_equal(fe_dedupe_add(&a, ids[i], M, 100, 0), 0);
    for (size_t i = 0; i < AIMED; i++)
        assert_int_equal(fe_dedupe_get(&a, ids[i], 0), M);
    fe_dedupe_free(&a);
    fe_dedupe_free(&b);
    fe_dedupe_free(&a_again);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_selftest_table),    cmocka_unit_test(test_init_args),
        cmocka_unit_test(test_evicts_earliest),   cmocka_unit_test(test_100k_random),
        cmocka_unit_test(test_model_random_walk), cmocka_unit_test(test_collision_runs),
        cmocka_unit_test(test_keyed_homes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
