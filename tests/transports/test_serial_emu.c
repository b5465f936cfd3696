/* The serial driver against emulated radio modems (ferry-modem-emu): real
 * driver code on ptys (through the preloaded ptyshim), real time.
 *
 *   - AT profile (REYAX-style modems) and transparent profile (Ebyte-style
 *     modules with sub-packets): frames cross the emulated air intact;
 *   - a chain of three modems where the ends cannot hear each other;
 *   - a lossy air: what arrives is intact and unique, the rest is gone.
 *
 * The relay over three daemons is tests/transports/serial_relay.sh. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "serial_harness.h"

#ifndef FE_TEST_MODEM_EMU
#error "FE_TEST_MODEM_EMU must name the ferry-modem-emu program"
#endif

#define NODES_MAX 3

typedef struct emu {
    pid_t pid;
    char dir[256];
    char path[NODES_MAX][300];
    h_node node[NODES_MAX];
    size_t n;
} emu;

/* Start the emulator with n modems and extra arguments (NULL-terminated),
 * and a driver on each modem. */
static emu *emu_start(size_t n, const char *profile, void (*tune)(fe_serial_config *),
                      const char *const *extra)
{
    emu *e = calloc(1, sizeof(*e));
    assert_non_null(e);
    e->n = n;
    assert_int_equal(h_tmpdir(e->dir, sizeof(e->dir)), 0);
    char modems[16];
    snprintf(modems, sizeof(modems), "%zu", n);
    const char *argv[32] = {FE_TEST_MODEM_EMU, "--dir", e->dir,   "--modems", modems,
                            "--profile",       profile, "--seed", "7"};
    size_t argc = 9;
    for (size_t i = 0; extra != NULL && extra[i] != NULL && argc < 31; i++)
        argv[argc++] = extra[i];
    argv[argc] = NULL;
    e->pid = fork();
    assert_true(e->pid >= 0);
    if (e->pid == 0) {
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    char ready[300];
    snprintf(ready, sizeof(ready), "%s/ready", e->dir);
    struct stat st;
    for (int i = 0; i < 500 && stat(ready, &st) != 0; i++)
        h_sleep_ms(10);
    assert_int_equal(stat(ready, &st), 0);
    for (size_t i = 0; i < n; i++) {
        snprintf(e->path[i], sizeof(e->path[i]), "%s/modem%zu", e->dir, i);
        fe_serial_config cfg;
        h_config(&cfg, e->path[i], profile, &e->node[i]);
        if (tune != NULL)
            tune(&cfg);
        assert_int_equal(h_start(&e->node[i], &cfg), 0);
    }
    return e;
}

static void emu_stop(emu *e)
{
    for (size_t i = 0; i < e->n; i++)
        fe_serial_del(e->node[i].t);
    kill(e->pid, SIGTERM);
    int status = 0;
    assert_int_equal(waitpid(e->pid, &status, 0), e->pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    const char *names[] = {"modem0", "modem1", "modem2", "ready"};
    h_rmdir(e->dir, names, 4);
    free(e);
}

/* Run the drivers for up to ms, or until node `until` has `count` frames. */
static void emu_run(emu *e, size_t until, size_t count, uint64_t ms)
{
    h_node *nodes[NODES_MAX];
    for (size_t i = 0; i < e->n; i++)
        nodes[i] = &e->node[i];
    uint64_t end = h_mono_ms() + ms;
    for (int turn = 0; turn < 100000 && h_mono_ms() < end; turn++) {
        if (until < e->n && e->node[until].count >= count)
            break;
        h_turn(nodes, e->n, NULL, 20);
    }
}

/* Send n frames from node `from`, one class, and wait for them at `to`. */
static void one_way(emu *e, size_t from, size_t to, uint32_t first_id, size_t n, uint64_t ms)
{
    fe_transport *t = e->node[from].t;
    size_t mtu = t->ops->mtu(t);
    size_t before = e->node[to].count;
    for (uint32_t i = 0; i < n; i++) {
        uint8_t f[FE_FRAME_MAX];
        size_t len = i == 0 ? mtu : H_FRAME_MIN + h_rnd() % (mtu - H_FRAME_MIN + 1);
        len = h_make_frame(f, len, first_id + i);
        assert_int_equal(t->ops->send(t, 0, f, len, FE_PRIO_SMALL, h_mono_ms()), 0);
    }
    emu_run(e, to, before + n, ms);
}

static void tune_at(fe_serial_config *c)
{
    h_set(c, "air_rate", "19200");
    h_set(c, "at_init", "AT+NETWORKID=5");
    h_set(c, "at_init", "AT+PARAMETER=9,7,1,12");
}

static void check_received(const h_node *rx, size_t from_index, uint32_t first_id, size_t n)
{
    if (rx->count < from_index + n) {
        for (size_t i = 0; i < rx->count && i < H_REC_MAX; i++)
            fprintf(stderr, "  received #%zu: id %ld\n", i, rx->ids[i]);
        fail_msg("%zu frames received, %zu expected", rx->count, from_index + n);
    }
    for (size_t i = 0; i < n; i++)
        assert_int_equal(rx->ids[from_index + i], (long)(first_id + i));
}

static void test_at_exchange(void **state)
{
    (void)state;
    emu *e = emu_start(2, "at", tune_at, NULL);
    /* One direction at a time: the radios are half-duplex. */
    one_way(e, 0, 1, 100, 15, 20000);
    check_received(&e->node[1], 0, 100, 15);
    one_way(e, 1, 0, 200, 15, 20000);
    check_received(&e->node[0], 0, 200, 15);
    for (size_t i = 0; i < 2; i++) {
        fe_serial_stats st;
        fe_serial_get_stats(e->node[i].t, h_mono_ms(), &st);
        assert_int_equal(st.modem_errors, 0);
        assert_int_equal(st.frames_out, 15);
        assert_int_equal(st.frames_in, 15);
        assert_int_equal(st.rx_rejects, 0);
        assert_true(st.airtime_us > 0);
        assert_int_equal(e->node[i].bad_peer, 0);
    }
    emu_stop(e);
}

static void tune_e32(fe_serial_config *c)
{
    h_set(c, "subpacket", "58");
    h_set(c, "air_rate", "19200");
}

static void tune_e22_big(fe_serial_config *c)
{
    h_set(c, "subpacket", "64");
    h_set(c, "air_rate", "19200");
    h_set(c, "mtu", "200"); /* frames of up to four sub-packets */
}

static void test_transparent_exchange(void **state)
{
    (void)state;
    const char *const e32[] = {"--subpacket", "58", "--air-rate", "19200", NULL};
    emu *e = emu_start(2, "transparent", tune_e32, e32);
    one_way(e, 0, 1, 300, 20, 20000);
    check_received(&e->node[1], 0, 300, 20);
    one_way(e, 1, 0, 400, 20, 20000);
    check_received(&e->node[0], 0, 400, 20);
    emu_stop(e);

    const char *const e22[] = {"--subpacket", "64", "--air-rate", "19200", NULL};
    e = emu_start(2, "transparent", tune_e22_big, e22);
    one_way(e, 0, 1, 500, 12, 20000);
    check_received(&e->node[1], 0, 500, 12);
    fe_serial_stats st;
    fe_serial_get_stats(e->node[1].t, h_mono_ms(), &st);
    assert_int_equal(st.crc_errors, 0);
    emu_stop(e);
}

/* A hears B, B hears A and C, C hears B. */
static void test_chain_topology(void **state)
{
    (void)state;
    const char *const chain[] = {"--link", "0-1", "--link", "1-2", NULL};
    emu *e = emu_start(3, "at", tune_at, chain);
    one_way(e, 0, 1, 600, 5, 10000);
    check_received(&e->node[1], 0, 600, 5);
    one_way(e, 2, 1, 700, 5, 10000);
    check_received(&e->node[1], 5, 700, 5);
    emu_run(e, NODES_MAX, 0, 500); /* anything in flight lands */
    assert_int_equal(e->node[0].count, 0);
    assert_int_equal(e->node[2].count, 0);
    one_way(e, 1, 0, 800, 5, 10000);
    emu_run(e, 2, 5, 5000); /* both ends hear the middle */
    check_received(&e->node[0], 0, 800, 5);
    check_received(&e->node[2], 0, 800, 5);
    emu_stop(e);
}

/* 30% loss on the air: what arrives is intact, in order and unique. */
static void test_lossy_air(void **state)
{
    (void)state;
    const char *const lossy[] = {"--loss", "0.3", NULL};
    emu *e = emu_start(2, "at", tune_at, lossy);
    enum { N = 40 };
    one_way(e, 0, 1, 1000, N, 4000);
    emu_run(e, NODES_MAX, 0, 1500); /* the sender finishes; nothing more comes */
    h_node *rx = &e->node[1];
    assert_true(rx->count >= N / 3);
    assert_true(rx->count < N);
    long last = -1;
    for (size_t i = 0; i < rx->count; i++) {
        assert_true(rx->ids[i] > last);
        assert_true(rx->ids[i] < 1000 + N);
        last = rx->ids[i];
    }
    fe_serial_stats st;
    fe_serial_get_stats(e->node[0].t, h_mono_ms(), &st);
    assert_int_equal(st.frames_out, N);
    assert_int_equal(st.modem_errors, 0);
    emu_stop(e);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_at_exchange),
        cmocka_unit_test(test_transparent_exchange),
        cmocka_unit_test(test_chain_topology),
        cmocka_unit_test(test_lossy_air),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
