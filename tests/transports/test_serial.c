/* Tests of transports/serial.c over pseudo-terminals: the real driver, with
 * libserialport made to accept ptys by the preloaded ptyshim.
 *
 *   - configuration keys and checks;
 *   - two drivers joined by a null-modem "cable" (two pty pairs whose
 *     masters the test copies into each other) exchange frames in the hdlc,
 *     kiss and transparent profiles, with and without line noise;
 *   - priority order and the duty cycle, over a simulated hour (virtual
 *     time: the driver takes now_ms from the test);
 *   - the AT profile against a modem scripted by the test;
 *   - unplugging: the pty behind a symlink vanishes and comes back;
 *   - port enumeration. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "kiss.h"
#include "serial_harness.h"
#include "stream.h"

/* --- configuration --- */

static void test_config_keys(void **state)
{
    (void)state;
    fe_serial_config c;
    char err[160];
    fe_serial_config_default(&c);
    assert_int_equal(fe_serial_config_check(&c, err, sizeof(err)), -1); /* no port */
    assert_non_null(strstr(err, "path"));
    const char *kv[][2] = {
        {"path", "/dev/ferry-lora"}, {"baud", "9600"},      {"data_bits", "8"},
        {"parity", "none"},          {"stop_bits", "1"},    {"flow", "rtscts"},
        {"profile", "transparent"},  {"subpacket", "240"},  {"air_rate", "2.4k"},
        {"duty_cycle", "1%"},        {"duty_window", "1h"}, {"queue", "32"},
    };
    for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
        assert_int_equal(fe_serial_config_set(&c, kv[i][0], kv[i][1], err, sizeof(err)), 0);
    assert_int_equal(fe_serial_config_check(&c, err, sizeof(err)), 0);
    assert_string_equal(c.path, "/dev/ferry-lora");
    assert_int_equal(c.air_rate_bps, 2400);
    assert_int_equal(c.duty_ppm, 10000);
    assert_int_equal(c.duty_window_ms, 3600000);
    assert_int_equal(c.flow, FE_SERIAL_FLOW_RTSCTS);
    assert_int_equal(c.profile, FE_SERIAL_TRANSPARENT);
    /* 240 - 2 flags - 2 FCS - 15 escapes allowance */
    assert_int_equal(fe_serial_config_mtu(&c), 221);

    /* LoRa keys in their several spellings. */
    assert_int_equal(fe_serial_config_set(&c, "sf", "12", err, sizeof(err)), 0);
    assert_int_equal(fe_serial_config_set(&c, "bw", "125k", err, sizeof(err)), 0);
    assert_int_equal(c.lora.bw_hz, 125000);
    assert_int_equal(fe_serial_config_set(&c, "bw", "62.5", err, sizeof(err)), 0);
    assert_int_equal(c.lora.bw_hz, 62500);
    assert_int_equal(fe_serial_config_set(&c, "bw", "250000", err, sizeof(err)), 0);
    assert_int_equal(c.lora.bw_hz, 250000);
    assert_int_equal(fe_serial_config_set(&c, "cr", "4/7", err, sizeof(err)), 0);
    assert_int_equal(c.lora.cr, 3);
    assert_int_equal(fe_serial_config_set(&c, "cr", "1", err, sizeof(err)), 0);
    assert_int_equal(c.lora.cr, 1);
    assert_int_equal(fe_serial_config_set(&c, "duty_cycle", "0.1%", err, sizeof(err)), 0);
    assert_int_equal(c.duty_ppm, 1000);
    assert_int_equal(fe_serial_config_set(&c, "duty_cycle", "off", err, sizeof(err)), 0);
    assert_int_equal(c.duty_ppm, 0);
    assert_true(c.lora_set);

    /* Bad values leave the config as it was and say why. */
    fe_serial_config before = c;
    const char *bad[][2] = {
        {"baud", "fast"},     {"baud", "-9600"},    {"data_bits", "9"},     {"parity", "maybe"},
        {"profile", "bogus"}, {"subpacket", "8"},   {"sf", "13"},           {"bw", "3k"},
        {"cr", "4/9"},        {"cr", "4/3"},        {"duty_cycle", "101%"}, {"duty_cycle", "1%%"},
        {"duty_window", "0"}, {"usb", "1a86-7523"}, {"usb", "12345:1"},     {"mtu", "20"},
        {"at_init", "+OK"},   {"air_rate", "2.4m"}, {"queue", "0"},         {"path", ""},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(fe_serial_config_set(&c, bad[i][0], bad[i][1], err, sizeof(err)), -1);
        assert_non_null(strstr(err, bad[i][0]));
        assert_memory_equal(&c, &before, sizeof(c));
    }
    assert_int_equal(fe_serial_config_set(&c, "colour", "blue", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "unknown key"));

    /* Whole-config checks. */
    assert_int_equal(fe_serial_config_set(&c, "usb", "1a86:7523", err, sizeof(err)), 0);
    assert_int_equal(c.usb_vid, 0x1a86);
    assert_int_equal(c.usb_pid, 0x7523);
    assert_int_equal(fe_serial_config_check(&c, err, sizeof(err)), -1); /* path and usb */
    c.path[0] = '\0';
    assert_int_equal(fe_serial_config_check(&c, err, sizeof(err)), 0);
    fe_serial_config_default(&c);
    assert_int_equal(fe_serial_config_set(&c, "path", "/dev/x", err, sizeof(err)), 0);
    assert_int_equal(fe_serial_config_set(&c, "duty_cycle", "1%", err, sizeof(err)), 0);
    assert_int_equal(fe_serial_config_check(&c, err, sizeof(err)), -1); /* no airtime model */
    assert_non_null(strstr(err, "airtime"));
    assert_int_equal(fe_serial_config_set(&c, "at_init", "AT+NETWORKID=5", err, sizeof(err)), 0);
    assert_int_equal(fe_serial_config_set(&c, "air_rate", "2400", err, sizeof(err)), 0);
    assert_int_equal(fe_serial_config_check(&c, err, sizeof(err)), -1); /* at_init without at */
    assert_int_equal(fe_serial_config_set(&c, "profile", "at", err, sizeof(err)), 0);
    assert_int_equal(fe_serial_config_check(&c, err, sizeof(err)), 0);
    assert_int_equal(fe_serial_config_mtu(&c), FE_AT_FRAME_MAX);
    assert_int_equal(fe_serial_config_set(&c, "mtu", "200", err, sizeof(err)), 0);
    assert_int_equal(fe_serial_config_check(&c, err, sizeof(err)), -1); /* over 192 */
    for (int i = 1; i < FE_SERIAL_AT_INIT_MAX; i++)
        assert_int_equal(fe_serial_config_set(&c, "at_init", "AT", err, sizeof(err)), 0);
    assert_int_equal(fe_serial_config_set(&c, "at_init", "AT", err, sizeof(err)), -1);

    /* Profile MTUs. */
    fe_serial_config_default(&c);
    assert_int_equal(fe_serial_config_mtu(&c), FE_SERIAL_MTU_DEFAULT);
    c.profile = FE_SERIAL_TRANSPARENT;
    assert_int_equal(fe_serial_config_mtu(&c), 58 - 4 - 4); /* E32: 50 */
    c.subpacket = 32;
    assert_int_equal(fe_serial_config_mtu(&c), FE_MTU_MIN); /* never below the core's minimum */
}

/* Every [serial NAME] section of the files in hw/examples is a valid
 * configuration: the documentation uses the keys the driver knows. */
static void test_hw_examples(void **state)
{
    (void)state;
    static const char *const files[] = {"ebyte-e32.conf", "ebyte-e22.conf", "reyax-rylr998.conf",
                                        "rnode-kiss.conf", "wire-hdlc.conf"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char path[512], line[256], err[160];
        snprintf(path, sizeof(path), "%s/%s", FE_TEST_HW_EXAMPLES, files[i]);
        FILE *f = fopen(path, "r");
        assert_non_null(f);
        fe_serial_config c;
        int sections = 0, lineno = 0;
        while (fgets(line, sizeof(line), f) != NULL) {
            lineno++;
            char *semi = strstr(line, " ;"); /* a comment after a value */
            if (semi != NULL)
                *semi = '\0';
            size_t n = strlen(line);
            while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == ' '))
                line[--n] = '\0';
            if (n == 0 || line[0] == ';' || line[0] == '#')
                continue;
            if (line[0] == '[') {
                if (sections > 0)
                    assert_int_equal(fe_serial_config_check(&c, err, sizeof(err)), 0);
                assert_memory_equal(line, "[serial ", 8);
                fe_serial_config_default(&c);
                sections++;
                continue;
            }
            char *eq = strchr(line, '=');
            assert_non_null(eq);
            char *key = line, *value = eq + 1;
            char *k_end = eq;
            while (k_end > key && k_end[-1] == ' ')
                k_end--;
            *k_end = '\0';
            while (*value == ' ')
                value++;
            if (fe_serial_config_set(&c, key, value, err, sizeof(err)) != 0)
                fail_msg("%s:%d: %s", files[i], lineno, err);
        }
        fclose(f);
        assert_int_equal(sections, 1);
        if (fe_serial_config_check(&c, err, sizeof(err)) != 0)
            fail_msg("%s: %s", files[i], err);
    }
}

/* --- two drivers on a cable --- */

typedef struct pair {
    char dir[256];
    char link[2][300];
    h_cable cable;
    h_node node[2];
} pair;

static pair *pair_new(const char *profile, void (*tune)(fe_serial_config *))
{
    pair *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    assert_int_equal(h_tmpdir(p->dir, sizeof(p->dir)), 0);
    for (int k = 0; k < 2; k++) {
        assert_int_equal(h_pty_open(&p->cable.end[k]), 0);
        snprintf(p->link[k], sizeof(p->link[k]), "%s/%c", p->dir, 'a' + k);
        assert_int_equal(h_point(p->link[k], p->cable.end[k].name), 0);
        fe_serial_config cfg;
        h_config(&cfg, p->link[k], profile, &p->node[k]);
        if (tune != NULL)
            tune(&cfg);
        assert_int_equal(h_start(&p->node[k], &cfg), 0);
        fe_serial_stats st;
        fe_serial_get_stats(p->node[k].t, 0, &st);
        assert_int_equal(st.is_open, 1);
        assert_int_equal(h_logs_with(&p->node[k], 2, "opened /dev/pts/"), 1);
    }
    return p;
}

static void pair_del(pair *p)
{
    for (int k = 0; k < 2; k++) {
        fe_serial_del(p->node[k].t);
        h_pty_close(&p->cable.end[k]);
    }
    const char *names[] = {"a", "b"};
    h_rmdir(p->dir, names, 2);
    free(p);
}

/* Run until each node received want[k] frames or timeout_ms passed. */
static void pair_run(pair *p, const size_t want[2], uint64_t timeout_ms)
{
    h_node *nodes[2] = {&p->node[0], &p->node[1]};
    uint64_t until = h_mono_ms() + timeout_ms;
    for (int turn = 0; turn < 100000 && h_mono_ms() < until; turn++) {
        if (p->node[0].count >= want[0] && p->node[1].count >= want[1])
            break;
        h_turn(nodes, 2, &p->cable, 20);
    }
}

static void exchange(const char *profile, void (*tune)(fe_serial_config *))
{
    enum { N = 40 };
    pair *p = pair_new(profile, tune);
    size_t mtu = p->node[0].t->ops->mtu(p->node[0].t);
    uint64_t now = h_mono_ms();
    for (uint32_t i = 0; i < N; i++) {
        for (int k = 0; k < 2; k++) {
            uint8_t f[FE_FRAME_MAX];
            /* Sizes from the smallest to exactly the MTU. */
            size_t len = i == 0 ? mtu : H_FRAME_MIN + h_rnd() % (mtu - H_FRAME_MIN + 1);
            len = h_make_frame(f, len, (uint32_t)(k * 1000 + i));
            fe_transport *t = p->node[k].t;
            assert_int_equal(t->ops->send(t, 0, f, len, FE_PRIO_BULK, now), 0);
        }
    }
    /* A frame over the MTU is refused and counted. */
    uint8_t big[FE_FRAME_MAX] = {0};
    assert_int_equal(p->node[0].t->ops->send(p->node[0].t, 0, big, mtu + 1, FE_PRIO_BULK, now), -1);
    const size_t want[2] = {N, N};
    pair_run(p, want, 20000);
    for (int k = 0; k < 2; k++) {
        h_node *rx = &p->node[1 - k];
        assert_int_equal(rx->count, N);
        assert_int_equal(rx->bad_peer, 0);
        for (uint32_t i = 0; i < N; i++) /* one class: FIFO */
            assert_int_equal(rx->ids[i], (long)(k * 1000 + i));
        fe_serial_stats st;
        fe_serial_get_stats(p->node[k].t, h_mono_ms(), &st);
        assert_int_equal(st.frames_out, N);
        assert_int_equal(st.queued, 0);
        assert_int_equal(st.tx_dropped, 0);
        fe_serial_get_stats(rx->t, h_mono_ms(), &st);
        assert_int_equal(st.frames_in, N);
        assert_int_equal(st.crc_errors + st.rx_rejects, 0);
    }
    fe_serial_stats st;
    fe_serial_get_stats(p->node[0].t, h_mono_ms(), &st);
    assert_int_equal(st.tx_too_big, 1);
    pair_del(p);
}

static void test_exchange_hdlc(void **state)
{
    (void)state;
    exchange("hdlc", NULL);
}

static void test_exchange_kiss(void **state)
{
    (void)state;
    exchange("kiss", NULL);
}

static void tune_e32(fe_serial_config *c)
{
    h_set(c, "subpacket", "58");
    h_set(c, "air_rate", "19.2k");
}

static void tune_e22(fe_serial_config *c)
{
    h_set(c, "subpacket", "240");
    h_set(c, "air_rate", "62.5k");
    h_set(c, "mtu", "400"); /* frames over two sub-packets */
}

static void test_exchange_transparent(void **state)
{
    (void)state;
    exchange("transparent", tune_e32);
    exchange("transparent", tune_e22);
}

/* Line noise on the cable: damaged frames are rejected and counted, all
 * frames that arrive are intact, most arrive. */
static void noisy(const char *profile, void (*tune)(fe_serial_config *))
{
    enum { N = 150 };
    pair *p = pair_new(profile, tune);
    p->cable.flip_one_in = 1500;
    size_t mtu = p->node[0].t->ops->mtu(p->node[0].t);
    for (uint32_t i = 0; i < N; i++) {
        uint8_t f[FE_FRAME_MAX];
        size_t len = h_make_frame(f, H_FRAME_MIN + h_rnd() % (mtu - H_FRAME_MIN + 1), i);
        /* Keep the queue (64 frames) from overflowing. */
        h_node *nodes[2] = {&p->node[0], &p->node[1]};
        fe_serial_stats q;
        fe_serial_get_stats(p->node[0].t, h_mono_ms(), &q);
        for (int turn = 0; turn < 10000 && q.queued > 16; turn++) {
            h_turn(nodes, 2, &p->cable, 20);
            fe_serial_get_stats(p->node[0].t, h_mono_ms(), &q);
        }
        assert_int_equal(
            p->node[0].t->ops->send(p->node[0].t, 0, f, len, FE_PRIO_BULK, h_mono_ms()), 0);
    }
    const size_t want[2] = {0, N};
    pair_run(p, want, 3000);
    h_node *rx = &p->node[1];
    fe_serial_stats st;
    fe_serial_get_stats(rx->t, h_mono_ms(), &st);
    assert_true(p->cable.flipped > 0);
    assert_true(st.crc_errors > 0);
    assert_true(rx->count >= N / 2);
    assert_true(rx->count < N);
    long last = -1;
    for (size_t i = 0; i < rx->count; i++) {
        assert_true(rx->ids[i] > last); /* intact, in order, never twice */
        last = rx->ids[i];
    }
    /* Nearly every frame is accounted for: delivered, or rejected (a hit on
     * a flag can merge two frames into one reject). */
    assert_true(st.frames_in + st.crc_errors + st.rx_rejects >= N - 10);
    pair_del(p);
}

static void test_noise_hdlc(void **state)
{
    (void)state;
    noisy("hdlc", NULL);
}

static void test_noise_transparent(void **state)
{
    (void)state;
    noisy("transparent", tune_e32);
}

/* --- one driver, the test at the other end of the pty, virtual time --- */

typedef struct solo {
    char dir[256];
    char link[300];
    h_pty pty;
    h_node node;
    fe_stream_dec hdlc;
    fe_kiss_dec kiss;
    size_t got;
    long ids[H_REC_MAX];
    size_t lens[H_REC_MAX];
    uint64_t at_ms[H_REC_MAX];
    uint64_t vt; /* virtual now */
} solo;

static void solo_frame(void *ctx, const uint8_t *f, size_t len)
{
    solo *s = ctx;
    if (s->got < H_REC_MAX) {
        s->ids[s->got] = h_check_frame(f, len);
        s->lens[s->got] = len;
        s->at_ms[s->got] = s->vt;
    }
    s->got++;
}

static solo *solo_new(const char *profile, void (*tune)(fe_serial_config *))
{
    solo *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    assert_int_equal(h_tmpdir(s->dir, sizeof(s->dir)), 0);
    assert_int_equal(h_pty_open(&s->pty), 0);
    snprintf(s->link, sizeof(s->link), "%s/lora", s->dir);
    assert_int_equal(h_point(s->link, s->pty.name), 0);
    assert_int_equal(fe_stream_dec_init(&s->hdlc, FE_FRAME_MAX, solo_frame, s), 0);
    assert_int_equal(fe_kiss_dec_init(&s->kiss, FE_FRAME_MAX, solo_frame, s), 0);
    fe_serial_config cfg;
    h_config(&cfg, s->link, profile, &s->node);
    if (tune != NULL)
        tune(&cfg);
    assert_int_equal(h_start(&s->node, &cfg), 0);
    return s;
}

static void solo_del(solo *s)
{
    fe_serial_del(s->node.t);
    h_pty_close(&s->pty);
    const char *names[] = {"lora"};
    h_rmdir(s->dir, names, 1);
    free(s);
}

/* Read what the driver wrote so far (it writes during the calls, so the
 * bytes are there at once) and decode it; returns the bytes read. */
static size_t solo_drain(solo *s, int kiss)
{
    size_t total = 0;
    for (int i = 0; i < 1000; i++) {
        uint8_t buf[4096];
        ssize_t r = read(s->pty.master, buf, sizeof(buf));
        if (r <= 0)
            break;
        total += (size_t)r;
        if (kiss)
            fe_kiss_dec_feed(&s->kiss, buf, (size_t)r);
        else
            fe_stream_dec_feed(&s->hdlc, buf, (size_t)r);
    }
    return total;
}

/* Advance virtual time to the driver's next deadline (at most to limit). */
static void solo_step(solo *s, uint64_t limit)
{
    fe_transport *t = s->node.t;
    uint64_t d = t->ops->next_deadline(t);
    s->vt = d > s->vt ? (d < limit ? d : limit) : s->vt;
    t->ops->tick(t, s->vt);
}

static void tune_slow(fe_serial_config *c)
{
    h_set(c, "air_rate", "1200"); /* every frame keeps the radio busy a while */
}

static void test_priority_order(void **state)
{
    (void)state;
    solo *s = solo_new("hdlc", tune_slow);
    fe_transport *t = s->node.t;
    const enum fe_prio order[] = {FE_PRIO_SYNC,    FE_PRIO_SYNC,    FE_PRIO_BULK, FE_PRIO_SMALL,
                                  FE_PRIO_RECEIPT, FE_PRIO_RECEIPT, FE_PRIO_SYNC, FE_PRIO_SMALL};
    size_t n = sizeof(order) / sizeof(order[0]);
    s->vt = 1000;
    for (uint32_t i = 0; i < n; i++) {
        uint8_t f[64];
        size_t len = h_make_frame(f, 40, i);
        assert_int_equal(t->ops->send(t, 0, f, len, order[i], s->vt), 0);
    }
    /* Frame 0 went out at once; the radio is busy for its airtime. */
    solo_drain(s, 0);
    assert_int_equal(s->got, 1);
    assert_true(t->ops->next_deadline(t) > s->vt);
    for (int step = 0; step < 100 && s->got < n; step++) {
        solo_step(s, UINT64_MAX);
        solo_drain(s, 0);
    }
    const long want[] = {0, 4, 5, 3, 7, 2, 1, 6};
    assert_int_equal(s->got, n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(s->ids[i], want[i]);
    /* Paced by airtime: 40 bytes + 4 of framing at 1200 b/s is ~293 ms. */
    for (size_t i = 1; i < n; i++)
        assert_true(s->at_ms[i] - s->at_ms[i - 1] >= 290);
    solo_del(s);
}

static void tune_duty(fe_serial_config *c)
{
    h_set(c, "sf", "7");
    h_set(c, "bw", "125k");
    h_set(c, "cr", "4/5");
    h_set(c, "preamble", "8");
    h_set(c, "duty_cycle", "1%");
    h_set(c, "queue", "16");
}

/* A simulated hour and a half of offered load ten times the 1% budget: no
 * hour ever holds more than 36 s of airtime, the link still uses most of it,
 * and the excess is dropped by the bounded queue, receipts last. */
static void test_duty_cycle_hour(void **state)
{
    (void)state;
    solo *s = solo_new("kiss", tune_duty);
    fe_transport *t = s->node.t;
    fe_lora_params lora;
    fe_lora_params_default(&lora); /* SF7, 125 kHz, CR 4/5, 8 symbols: as configured */
    const uint64_t budget_us = 36000000, hour = 3600000, end = hour * 3 / 2;
    uint64_t offered_us = 0, next_offer = 0;
    uint32_t id = 0;
    static enum fe_prio prio_of[8192];
    for (int step = 0; step < 200000 && s->vt < end; step++) {
        while (next_offer <= s->vt) {
            uint8_t f[FE_SERIAL_MTU_DEFAULT];
            size_t len = h_make_frame(f, 20 + h_rnd() % 200, id++);
            enum fe_prio prio = (enum fe_prio)(h_rnd() % 4);
            assert_true(id <= 8192);
            prio_of[id - 1] = prio;
            uint64_t us = 0;
            assert_int_equal(fe_airtime_lora_us(&us, &lora, len), 0);
            assert_int_equal(fe_serial_frame_airtime_us(t, f, len), us);
            offered_us += us;
            t->ops->send(t, 0, f, len, prio, s->vt);
            next_offer += 1 + h_rnd() % 3600; /* ~200 ms of air every 1.8 s: 11% */
        }
        solo_drain(s, 1);
        solo_step(s, next_offer);
    }
    solo_drain(s, 1);
    assert_true(offered_us > 10 * budget_us * 3 / 2 * 9 / 10);
    assert_true(s->got < H_REC_MAX);
    /* The heaviest hour of what actually went out. */
    uint64_t worst = 0, first_hour = 0;
    for (size_t hi = 0; hi < s->got; hi++) {
        uint64_t sum = 0;
        for (size_t lo = 0; lo <= hi; lo++) {
            if (s->at_ms[lo] + hour <= s->at_ms[hi])
                continue;
            uint64_t us = 0;
            assert_int_equal(fe_airtime_lora_us(&us, &lora, s->lens[lo]), 0);
            sum += us;
        }
        worst = sum > worst ? sum : worst;
        if (s->at_ms[hi] < hour) {
            uint64_t us = 0;
            assert_int_equal(fe_airtime_lora_us(&us, &lora, s->lens[hi]), 0);
            first_hour += us;
        }
        assert_true(s->ids[hi] >= 0);
    }
    assert_true(worst <= budget_us);
    assert_true(first_hour >= budget_us * 9 / 10);
    char desc[400];
    fe_serial_describe(t, desc, sizeof(desc));
    assert_non_null(strstr(desc, "kiss, mtu 255, duty 1%: open"));
    fe_serial_stats st;
    fe_serial_get_stats(t, s->vt, &st);
    assert_int_equal(st.frames_out, s->got);
    assert_true(st.tx_dropped > 0);
    assert_true(st.budget_waits > 0);
    assert_true(st.airtime_window_us <= budget_us);
    assert_int_equal(st.airtime_budget_us, budget_us);
    assert_true(st.airtime_us >= first_hour);
    /* The sliding hour lets the first 36 s of airtime go in one burst (every
     * class goes then); after that the budget frees slowly and the queue,
     * which drops the least urgent first, sends receipts first. So receipts
     * get the best share of all classes. */
    size_t offered[4] = {0}, out[4] = {0};
    for (uint32_t i = 0; i < id; i++)
        offered[prio_of[i]]++;
    for (size_t i = 0; i < s->got; i++)
        out[prio_of[s->ids[i]]]++;
    for (int c = 1; c < 4; c++)
        assert_true(out[FE_PRIO_RECEIPT] * offered[c] > out[c] * offered[FE_PRIO_RECEIPT]);
    assert_true(out[FE_PRIO_RECEIPT] * offered[FE_PRIO_SYNC] * 10 >
                out[FE_PRIO_SYNC] * offered[FE_PRIO_RECEIPT] * 13);
    solo_del(s);
}

/* --- the AT profile against a modem played by the test --- */

static void tune_at(fe_serial_config *c)
{
    h_set(c, "at_init", "AT+ADDRESS=3");
    h_set(c, "at_init", "AT+NETWORKID=5");
    h_set(c, "air_rate", "9600");
}

/* Read one CR LF line from the master within wait_ms (virtual time does
 * not move); returns its length, 0 if nothing came. */
static int read_line_within(solo *s, char *out, size_t cap, unsigned wait_ms)
{
    size_t n = 0;
    uint64_t until = h_mono_ms() + wait_ms;
    while (h_mono_ms() < until && n + 1 < cap) {
        char c;
        ssize_t r = read(s->pty.master, &c, 1);
        if (r == 1) {
            out[n++] = c;
            if (c == '\n')
                break;
        } else {
            h_sleep_ms(1);
        }
    }
    out[n] = '\0';
    return (int)n;
}

static int read_line(solo *s, char *out, size_t cap)
{
    return read_line_within(s, out, cap, 2000);
}

static void modem_says(solo *s, const char *text)
{
    assert_int_equal(h_write_all(s->pty.master, text, strlen(text)), 0);
    fe_transport *t = s->node.t;
    /* Let the bytes cross the pty, then let the driver read them. */
    struct pollfd pfd = {.fd = t->ops->poll_fd(t), .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 2000), 1);
    t->ops->on_readable(t, s->vt);
}

static void test_at_scripted_modem(void **state)
{
    (void)state;
    solo *s = solo_new("at", tune_at);
    fe_transport *t = s->node.t;
    char line[512];
    s->vt = 5000;
    assert_int_equal(t->ops->next_deadline(t), 0); /* init is due */
    t->ops->tick(t, s->vt);
    read_line(s, line, sizeof(line));
    assert_string_equal(line, "AT+ADDRESS=3\r\n");
    /* Frames sent during init wait for it. */
    uint8_t f[FE_AT_FRAME_MAX];
    size_t len = h_make_frame(f, 100, 42);
    assert_int_equal(t->ops->send(t, 0, f, len, FE_PRIO_SMALL, s->vt), 0);
    modem_says(s, "+OK\r\n");
    read_line(s, line, sizeof(line));
    assert_string_equal(line, "AT+NETWORKID=5\r\n");
    modem_says(s, "+ERR=4\r\n");
    assert_int_equal(h_logs_with(&s->node, 1, "+ERR=4 (unknown command)"), 1);
    /* Init done: the frame goes out as AT+SEND with Z85 data. */
    read_line(s, line, sizeof(line));
    assert_memory_equal(line, "AT+SEND=0,125,", 14);
    uint8_t back[FE_AT_FRAME_MAX];
    size_t enc_len = strlen(line) - 14 - 2;
    assert_int_equal(fe_at_data_decode(back, sizeof(back), line + 14, enc_len), (ptrdiff_t)len);
    assert_memory_equal(back, f, len);
    /* No second frame before the modem answered. */
    const char *first = "AT+SEND=0,125,";
    char first_line[512];
    snprintf(first_line, sizeof(first_line), "%s", line);
    len = h_make_frame(f, 50, 43);
    assert_int_equal(t->ops->send(t, 0, f, len, FE_PRIO_SMALL, s->vt), 0);
    assert_true(read(s->pty.master, line, sizeof(line)) <= 0);
    /* "Still transmitting": the same frame goes again after another airtime. */
    modem_says(s, "+ERR=17\r\n");
    fe_serial_stats st;
    fe_serial_get_stats(t, s->vt, &st);
    assert_int_equal(st.modem_errors, 0);
    assert_int_equal(st.tx_retries, 1);
    assert_int_equal(st.frames_out, 0);
    assert_true(t->ops->next_deadline(t) > s->vt);
    solo_step(s, UINT64_MAX);
    read_line(s, line, sizeof(line));
    assert_string_equal(line, first_line);
    assert_memory_equal(line, first, strlen(first));
    modem_says(s, "+OK\r\n");
    fe_serial_get_stats(t, s->vt, &st);
    assert_int_equal(st.frames_out, 1);
    /* The second frame waits for the first one's airtime, then goes. */
    assert_true(t->ops->next_deadline(t) > s->vt);
    solo_step(s, UINT64_MAX);
    read_line(s, line, sizeof(line));
    assert_memory_equal(line, "AT+SEND=0,63,", 13);
    /* No answer at all: counted after the reply timeout. */
    uint64_t d = t->ops->next_deadline(t);
    assert_true(d >= s->vt + FE_SERIAL_AT_REPLY_MS);
    solo_step(s, UINT64_MAX);
    fe_serial_get_stats(t, s->vt, &st);
    assert_int_equal(st.modem_errors, 1);
    /* A refusal that is not "busy" loses the frame, logged once per code. */
    for (uint32_t i = 0; i < 2; i++) {
        len = h_make_frame(f, 20, 44 + i);
        assert_int_equal(t->ops->send(t, 0, f, len, FE_PRIO_SMALL, s->vt), 0);
        if (read_line_within(s, line, sizeof(line), 100) == 0) { /* the radio was busy */
            solo_step(s, UINT64_MAX);
            read_line(s, line, sizeof(line));
        }
        assert_memory_equal(line, "AT+SEND=0,25,", 13);
        modem_says(s, "+ERR=13\r\n");
    }
    fe_serial_get_stats(t, s->vt, &st);
    assert_int_equal(st.modem_errors, 3);
    assert_int_equal(st.frames_out, 1);
    assert_int_equal(h_logs_with(&s->node, 1, "+ERR=13"), 1);
    /* Received packets come up as frames; foreign data is counted. */
    len = h_make_frame(f, FE_AT_FRAME_MAX, 77);
    char enc[FE_AT_DATA_MAX];
    ptrdiff_t e = fe_at_data_encode(enc, sizeof(enc), f, len);
    assert_int_equal(e, FE_AT_DATA_MAX);
    snprintf(line, sizeof(line), "+RCV=9,%d,%.*s,-97,-3\r\n+RCV=9,5,hi yo,-97,-3\r\n", (int)e,
             (int)e, enc);
    modem_says(s, line);
    assert_int_equal(s->node.count, 1);
    assert_int_equal(s->node.ids[0], 77);
    fe_serial_get_stats(t, s->vt, &st);
    assert_int_equal(st.frames_in, 1);
    assert_int_equal(st.rx_rejects, 1);
    /* Over the AT MTU: refused. */
    assert_int_equal(t->ops->send(t, 0, f, FE_AT_FRAME_MAX + 1, FE_PRIO_SMALL, s->vt), -1);
    solo_del(s);
}

/* --- unplugging --- */

static void test_unplug_and_return(void **state)
{
    (void)state;
    solo *s = solo_new("hdlc", NULL);
    fe_transport *t = s->node.t;
    fe_serial_stats st;
    fe_serial_get_stats(t, 0, &st);
    assert_int_equal(st.is_open, 1);
    int ep = t->ops->poll_fd(t);
    /* Pull the plug: the pty vanishes, with the test's own slave copy. */
    h_pty_close(&s->pty);
    struct pollfd pfd = {.fd = ep, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 2000), 1);
    s->vt = 10000;
    assert_int_equal(t->ops->on_readable(t, s->vt), 0);
    fe_serial_get_stats(t, s->vt, &st);
    assert_int_equal(st.is_open, 0);
    assert_int_equal(h_logs_with(&s->node, 1, "lost /dev/pts/"), 1);
    assert_int_equal(t->ops->poll_fd(t), ep); /* the loop keeps its fd */
    assert_int_equal(t->ops->next_deadline(t), s->vt + 1000);
    /* Frames sent meanwhile wait in the queue. */
    for (uint32_t i = 0; i < 3; i++) {
        uint8_t f[64];
        size_t len = h_make_frame(f, 30 + i, 100 + i);
        assert_int_equal(t->ops->send(t, 0, f, len, FE_PRIO_SMALL, s->vt + 10), 0);
    }
    fe_serial_get_stats(t, s->vt, &st);
    assert_int_equal(st.queued, 3);
    /* Reopen attempts back off: 1 s, then 2 s, 4 s, 8 s ... */
    uint64_t expect_gap = 2000;
    for (int attempt = 0; attempt < 4; attempt++) {
        s->vt = t->ops->next_deadline(t);
        t->ops->tick(t, s->vt);
        assert_int_equal(t->ops->next_deadline(t), s->vt + expect_gap);
        expect_gap *= 2;
    }
    assert_int_equal(h_logs_with(&s->node, 1, "cannot open"), 0); /* one line per outage */
    /* The backoff stops growing at 60 s. */
    for (int attempt = 0; attempt < 6; attempt++) {
        s->vt = t->ops->next_deadline(t);
        t->ops->tick(t, s->vt);
    }
    assert_int_equal(t->ops->next_deadline(t), s->vt + FE_SERIAL_BACKOFF_MAX_MS);
    /* A new device appears at the same path. */
    assert_int_equal(h_pty_open(&s->pty), 0);
    assert_int_equal(h_point(s->link, s->pty.name), 0);
    s->vt = t->ops->next_deadline(t);
    t->ops->tick(t, s->vt);
    fe_serial_get_stats(t, s->vt, &st);
    assert_int_equal(st.is_open, 1);
    assert_int_equal(st.reopens, 1);
    assert_int_equal(h_logs_with(&s->node, 2, "is back"), 1);
    for (int step = 0; step < 20 && s->got < 3; step++) {
        solo_drain(s, 0);
        solo_step(s, UINT64_MAX);
    }
    solo_drain(s, 0);
    assert_int_equal(s->got, 3);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(s->ids[i], (long)(100 + i));
    /* Frames still flow both ways on the new port. */
    uint8_t f[64];
    uint8_t enc[FE_STREAM_ENCODED_MAX(64)];
    size_t len = h_make_frame(f, 40, 555);
    ptrdiff_t n = fe_stream_encode(enc, sizeof(enc), f, len);
    assert_true(n > 0);
    assert_int_equal(h_write_all(s->pty.master, enc, (size_t)n), 0);
    struct pollfd p2 = {.fd = ep, .events = POLLIN};
    assert_int_equal(poll(&p2, 1, 2000), 1);
    t->ops->on_readable(t, s->vt);
    assert_int_equal(s->node.count, 1);
    assert_int_equal(s->node.ids[0], 555);
    solo_del(s);
}

/* A device that is not there when the daemon starts: open still succeeds,
 * the driver says so once and picks the device up when it appears. */
static void test_missing_at_start(void **state)
{
    (void)state;
    solo *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    assert_int_equal(h_tmpdir(s->dir, sizeof(s->dir)), 0);
    snprintf(s->link, sizeof(s->link), "%s/lora", s->dir);
    s->pty.master = s->pty.slave = -1;
    assert_int_equal(fe_stream_dec_init(&s->hdlc, FE_FRAME_MAX, solo_frame, s), 0);
    fe_serial_config cfg;
    h_config(&cfg, s->link, "hdlc", &s->node);
    assert_int_equal(h_start(&s->node, &cfg), 0);
    fe_transport *t = s->node.t;
    fe_serial_stats st;
    fe_serial_get_stats(t, 0, &st);
    assert_int_equal(st.is_open, 0);
    assert_int_equal(h_logs_with(&s->node, 1, "cannot open"), 1);
    assert_non_null(strstr(s->node.log[0], "No such file"));
    assert_int_equal(t->ops->next_deadline(t), 0); /* tries again at the first tick */
    s->vt = 500;
    t->ops->tick(t, s->vt);
    assert_true(t->ops->next_deadline(t) > s->vt);
    assert_int_equal(h_logs_with(&s->node, 1, "cannot open"), 1);
    char desc[400];
    fe_serial_describe(t, desc, sizeof(desc));
    assert_non_null(strstr(desc, "retrying"));
    assert_int_equal(h_pty_open(&s->pty), 0);
    assert_int_equal(h_point(s->link, s->pty.name), 0);
    s->vt = t->ops->next_deadline(t);
    t->ops->tick(t, s->vt);
    fe_serial_get_stats(t, s->vt, &st);
    assert_int_equal(st.is_open, 1);
    assert_int_equal(st.reopens, 0);
    assert_int_equal(h_logs_with(&s->node, 2, "opened /dev/pts/"), 1);
    fe_serial_describe(t, desc, sizeof(desc));
    assert_non_null(strstr(desc, "(from "));
    assert_non_null(strstr(desc, ": open"));
    assert_non_null(strstr(desc, "115200 8N1, hdlc, mtu 255"));
    solo_del(s);
}

/* --- enumeration --- */

typedef struct listing {
    int count;
    char last[256];
    int sorted, complete;
} listing;

static void on_port(void *ctx, const fe_serial_port_info *p)
{
    listing *l = ctx;
    if (p->path == NULL || p->description == NULL || p->usb_serial == NULL ||
        p->manufacturer == NULL || p->product == NULL || p->path[0] == '\0')
        l->complete = 0;
    if (l->count > 0 && strcmp(l->last, p->path) > 0)
        l->sorted = 0;
    snprintf(l->last, sizeof(l->last), "%s", p->path);
    l->count++;
}

static void test_list_ports(void **state)
{
    (void)state;
    listing l = {.sorted = 1, .complete = 1};
    int n = fe_serial_list_ports(on_port, &l);
    assert_true(n >= 0);
    assert_int_equal(n, l.count);
    assert_true(l.sorted);
    assert_true(l.complete);
    assert_int_equal(fe_serial_list_ports(NULL, NULL), FE_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_keys),          cmocka_unit_test(test_hw_examples),
        cmocka_unit_test(test_exchange_hdlc),        cmocka_unit_test(test_exchange_kiss),
        cmocka_unit_test(test_exchange_transparent), cmocka_unit_test(test_noise_hdlc),
        cmocka_unit_test(test_noise_transparent),    cmocka_unit_test(test_priority_order),
        cmocka_unit_test(test_duty_cycle_hour),      cmocka_unit_test(test_at_scripted_modem),
        cmocka_unit_test(test_unplug_and_return),    cmocka_unit_test(test_missing_at_start),
        cmocka_unit_test(test_list_ports),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
