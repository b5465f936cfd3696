/* Tests of transports/rfcomm.c: the real driver, over btshim (preloaded; it
 * maps RFCOMM sockets onto Unix sockets in a fresh directory per test) with
 * the scripted discovery of btfake.c.
 *
 * Two drivers run in this process on two fake adapters (hci0 = ...:01,
 * hci1 = ...:02); raw RFCOMM sockets made by the test itself use hci2..4
 * (...:03 to ...:05) when a test plays a misbehaving peer. Driver time is virtual
 * (now_ms below), advanced by the pump; socket readiness is real, so every
 * pump round also waits a few real milliseconds in poll(). Every loop is
 * bounded in rounds, and so in time. */
#define _GNU_SOURCE /* RTLD_DEFAULT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <dlfcn.h>
#include <errno.h>
#include <ftw.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bluetooth/bluetooth.h>
#include <bluetooth/rfcomm.h>

#include "btfake.h"
#include "rfcomm.h"
#include "stream.h"

#define ADDR_A "00:00:00:00:00:01"
#define ADDR_B "00:00:00:00:00:02"
#define ADDR_RAW "00:00:00:00:00:03"
#define ADDR_RAW2 "00:00:00:00:00:04"
#define ADDR_RAW3 "00:00:00:00:00:05"
#define ADDR_NOBODY "00:00:00:00:00:09"
#define ADDR_SILENT "00:00:00:00:00:0A"
#define ADDR_HOLE "00:00:00:00:00:0B"
#define ALL_ADAPTERS ADDR_A "," ADDR_B "," ADDR_RAW "," ADDR_RAW2 "," ADDR_RAW3

#define LOG_LINES 256
#define RX_MAX 4096
#define UPS_MAX 64

static uint64_t now_ms = 1000000; /* virtual; never 0 */
static char dir[64];
static char script[128];

typedef struct node {
    const char *name;
    fe_transport *t;
    fe_btfake *fake;
    size_t ups, downs;
    uint32_t up_ids[UPS_MAX];
    uint32_t last_up, last_down;
    size_t rx;
    uint32_t rx_seq[RX_MAX];
    uint32_t rx_peer[RX_MAX];
    int rx_corrupt; /* a frame whose content does not match its sequence number */
    size_t log_n;
    int log_level[LOG_LINES];
    char log[LOG_LINES][FE_RFCOMM_LINE_MAX];
} node;

/* --- frames with checkable content --- */

static size_t frame_len(uint32_t seq)
{
    return 4 + (seq * 37u) % (FE_FRAME_MAX - 4 + 1); /* 4..FE_FRAME_MAX bytes */
}

static void frame_fill(uint8_t *f, uint32_t seq, size_t len)
{
    f[0] = (uint8_t)(seq >> 24);
    f[1] = (uint8_t)(seq >> 16);
    f[2] = (uint8_t)(seq >> 8);
    f[3] = (uint8_t)seq;
    for (size_t j = 4; j < len; j++)
        f[j] = (uint8_t)(seq * 31u + j * 7u); /* hits 0x7E and 0x7D: escaping is used */
}

static int frame_check(const uint8_t *f, size_t len, uint32_t *seq)
{
    if (len < 4)
        return -1;
    uint32_t s = (uint32_t)f[0] << 24 | (uint32_t)f[1] << 16 | (uint32_t)f[2] << 8 | f[3];
    if (len != frame_len(s))
        return -1;
    for (size_t j = 4; j < len; j++) {
        if (f[j] != (uint8_t)(s * 31u + j * 7u))
            return -1;
    }
    *seq = s;
    return 0;
}

/* --- events --- */

static void ev_frame(void *ctx, fe_transport *t, uint32_t peer, const uint8_t *f, size_t len)
{
    node *n = ctx;
    (void)t;
    uint32_t seq;
    if (frame_check(f, len, &seq) != 0) {
        n->rx_corrupt++;
        return;
    }
    if (n->rx < RX_MAX) {
        n->rx_seq[n->rx] = seq;
        n->rx_peer[n->rx] = peer;
    }
    n->rx++;
}

static void ev_up(void *ctx, fe_transport *t, uint32_t peer)
{
    node *n = ctx;
    (void)t;
    if (n->ups < UPS_MAX)
        n->up_ids[n->ups] = peer;
    n->ups++;
    n->last_up = peer;
}

static void ev_down(void *ctx, fe_transport *t, uint32_t peer)
{
    node *n = ctx;
    (void)t;
    n->downs++;
    n->last_down = peer;
}

static void on_log(void *ctx, int level, const char *line)
{
    node *n = ctx;
    if (getenv("FE_TEST_VERBOSE") != NULL)
        fprintf(stderr, "[%s %d] %s\n", n->name, level, line);
    if (n->log_n < LOG_LINES) {
        n->log_level[n->log_n] = level;
        snprintf(n->log[n->log_n], sizeof(n->log[0]), "%s", line);
    }
    n->log_n++;
}

/* Lines containing needle at level <= max_level. */
static size_t log_count(const node *n, const char *needle, int max_level)
{
    size_t c = 0;
    for (size_t i = 0; i < n->log_n && i < LOG_LINES; i++) {
        if (n->log_level[i] <= max_level && strstr(n->log[i], needle) != NULL)
            c++;
    }
    return c;
}

/* --- setup --- */

static void config_for(fe_rfcomm_config *c, node *n, const char *adapter)
{
    fe_rfcomm_config_default(c);
    snprintf(c->adapter, sizeof(c->adapter), "%s", adapter);
    c->inquiry = 0;
    c->log = on_log;
    c->log_ctx = n;
    c->seed = 42;
    c->discovery = fe_btfake_discovery(n->fake);
}

static void node_init(node *n, const char *name)
{
    memset(n, 0, sizeof(*n));
    n->name = name;
    assert_int_equal(fe_btfake_new(&n->fake, script), 0);
}

static void node_start(node *n, const fe_rfcomm_config *c)
{
    fe_transport_events ev = {
        .ctx = n, .frame_in = ev_frame, .peer_up = ev_up, .peer_down = ev_down};
    char err[200];
    assert_int_equal(fe_rfcomm_new(&n->t, c, &ev, err, sizeof(err)), 0);
    assert_int_equal(n->t->ops->open(n->t, err, sizeof(err)), 0);
    assert_true(n->t->ops->poll_fd(n->t) >= 0);
}

static void node_free(node *n)
{
    fe_rfcomm_del(n->t);
    fe_btfake_del(n->fake);
    n->t = NULL;
    n->fake = NULL;
}

static void write_script(const char *text)
{
    FILE *f = fopen(script, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    (void)state;
    if (dlsym(RTLD_DEFAULT, "fe_btshim_active") == NULL) {
        fprintf(stderr, "test_rfcomm needs the Bluetooth shim: run it through ctest, or with "
                        "LD_PRELOAD=<build>/tests/transports/libferry_btshim.so\n");
        return -1;
    }
    snprintf(dir, sizeof(dir), "/tmp/ferry-bt-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(script, sizeof(script), "%s/discovery.txt", dir);
    setenv("FERRY_BTSHIM_DIR", dir, 1);
    setenv("FERRY_BTSHIM_ADDR", ALL_ADAPTERS, 1);
    unsetenv("FERRY_BTSHIM_POWER");
    unsetenv("FERRY_BTSHIM_EPERM");
    write_script("");
    now_ms += 3600000u; /* far from anything the previous test left */
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* --- the pump --- */

typedef int (*cond_fn)(void *ctx);

/* Up to `rounds` turns: each waits up to wait_ms (real) for readiness, feeds
 * readable drivers, ticks those whose deadline has come, then advances
 * virtual time by step_ms. Returns 1 as soon as cond holds (NULL: never). */
static int pump(node **nodes, size_t count, uint64_t step_ms, int rounds, int wait_ms, cond_fn cond,
                void *ctx)
{
    for (int r = 0; r < rounds; r++) {
        struct pollfd p[4];
        for (size_t i = 0; i < count; i++) {
            p[i].fd = nodes[i]->t->ops->poll_fd(nodes[i]->t);
            p[i].events = POLLIN;
            p[i].revents = 0;
        }
        poll(p, (nfds_t)count, wait_ms);
        for (size_t i = 0; i < count; i++) {
            fe_transport *t = nodes[i]->t;
            if (p[i].revents & POLLIN)
                assert_int_equal(t->ops->on_readable(t, now_ms), 0);
            if (t->ops->next_deadline(t) <= now_ms)
                assert_int_equal(t->ops->tick(t, now_ms), 0);
        }
        if (cond != NULL && cond(ctx))
            return 1;
        now_ms += step_ms;
    }
    return cond == NULL;
}

static size_t links_up(const node *n)
{
    fe_rfcomm_stats st;
    fe_rfcomm_get_stats(n->t, &st);
    return st.links_up;
}

typedef struct pair {
    node *a, *b;
} pair;

static int both_up(void *ctx)
{
    pair *p = ctx;
    return links_up(p->a) == 1 && links_up(p->b) == 1;
}

static int both_down(void *ctx)
{
    pair *p = ctx;
    return links_up(p->a) == 0 && links_up(p->b) == 0;
}

/* A connected to B: A dials B (static peer, channel 7), B listens on 7. */
static void start_pair(node *a, node *b, int b_dials_too)
{
    fe_rfcomm_config ca, cb;
    node_init(a, "A");
    node_init(b, "B");
    config_for(&ca, a, "hci0");
    config_for(&cb, b, "hci1");
    assert_int_equal(fe_rfcomm_config_set(&ca, "peer", ADDR_B " 7", NULL, 0), 0);
    if (b_dials_too)
        assert_int_equal(fe_rfcomm_config_set(&cb, "peer", ADDR_A " 7", NULL, 0), 0);
    node_start(b, &cb);
    node_start(a, &ca);
    node *nodes[2] = {a, b};
    pair p = {a, b};
    assert_true(pump(nodes, 2, 10, 400, 5, both_up, &p));
}

/* Send frames seq first..first+count-1 from a to peer, pumping when the
 * buffer is full. Returns how many send accepted (all, unless the link
 * went down). */
static size_t send_run(node **nodes, size_t count_nodes, node *from, uint32_t peer, uint32_t first,
                       uint32_t count)
{
    uint8_t f[FE_FRAME_MAX];
    size_t accepted = 0;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t seq = first + i;
        size_t len = frame_len(seq);
        frame_fill(f, seq, len);
        int tries = 0;
        while (from->t->ops->send(from->t, peer, f, len, FE_PRIO_SMALL, now_ms) != 0) {
            if (++tries > 200)
                return accepted;
            pump(nodes, count_nodes, 1, 1, 2, NULL, NULL);
        }
        accepted++;
    }
    return accepted;
}

/* --- tests --- */

static void test_config(void **state)
{
    (void)state;
    fe_rfcomm_config c;
    char err[200];
    fe_rfcomm_config_default(&c);
    assert_int_equal(c.channel, 7);
    assert_int_equal(c.max_links, 7);
    assert_string_equal(c.adapter, "hci0");
    assert_int_equal(fe_rfcomm_config_check(&c, err, sizeof(err)), 0);

    assert_int_equal(fe_rfcomm_config_set(&c, "channel", "auto", err, sizeof(err)), 0);
    assert_int_equal(c.channel, FE_RFCOMM_CHANNEL_AUTO);
    assert_int_equal(fe_rfcomm_config_set(&c, "channel", "12", err, sizeof(err)), 0);
    assert_int_equal(c.channel, 12);
    assert_int_equal(fe_rfcomm_config_set(&c, "channel", "31", err, sizeof(err)), FE_ERR_INVALID);
    assert_non_null(strstr(err, "channel"));
    assert_int_equal(c.channel, 12);
    assert_int_equal(fe_rfcomm_config_set(&c, "channel", "7x", err, sizeof(err)), FE_ERR_INVALID);
    assert_int_equal(fe_rfcomm_config_set(&c, "max_links", "17", err, sizeof(err)), FE_ERR_INVALID);
    assert_int_equal(fe_rfcomm_config_set(&c, "max_links", "3", err, sizeof(err)), 0);
    assert_int_equal(c.max_links, 3);
    assert_int_equal(fe_rfcomm_config_set(&c, "inquiry", "off", err, sizeof(err)), 0);
    assert_int_equal(c.inquiry, 0);
    assert_int_equal(fe_rfcomm_config_set(&c, "inquiry", "maybe", err, sizeof(err)),
                     FE_ERR_INVALID);
    assert_int_equal(fe_rfcomm_config_set(&c, "idle_timeout", "5m", err, sizeof(err)), 0);
    assert_int_equal(c.idle_timeout_ms, 300000u);
    assert_int_equal(fe_rfcomm_config_set(&c, "backoff_min", "250ms", err, sizeof(err)), 0);
    assert_int_equal(c.backoff_min_ms, 250u);
    assert_int_equal(fe_rfcomm_config_set(&c, "connect_timeout", "15", err, sizeof(err)), 0);
    assert_int_equal(c.connect_timeout_ms, 15000u);
    assert_int_equal(fe_rfcomm_config_set(&c, "connect_timeout", "-1", err, sizeof(err)),
                     FE_ERR_INVALID);
    assert_int_equal(fe_rfcomm_config_set(&c, "adapter", "hci3", err, sizeof(err)), 0);
    assert_int_equal(fe_rfcomm_config_set(&c, "adapter", "AA:BB:CC:DD:EE:FF", err, sizeof(err)), 0);
    assert_int_equal(fe_rfcomm_config_set(&c, "adapter", "wlan0", err, sizeof(err)),
                     FE_ERR_INVALID);
    assert_int_equal(fe_rfcomm_config_set(&c, "colour", "blue", err, sizeof(err)), FE_ERR_NOTFOUND);
    assert_non_null(strstr(err, "colour"));

    assert_int_equal(fe_rfcomm_config_set(&c, "peer", "aa:bb:cc:dd:ee:01", err, sizeof(err)), 0);
    assert_int_equal(fe_rfcomm_config_set(&c, "peer", "AA:BB:CC:DD:EE:02  5", err, sizeof(err)), 0);
    assert_int_equal(c.peer_count, 2);
    assert_int_equal(c.peers[0].channel, 0);
    assert_int_equal(c.peers[1].channel, 5);
    assert_int_equal(c.peers[0].addr.b[0], 0x01); /* bdaddr_t order: last text byte first */
    assert_int_equal(c.peers[0].addr.b[5], 0xAA);
    assert_int_equal(fe_rfcomm_config_set(&c, "peer", "AA:BB:CC:DD:EE", err, sizeof(err)),
                     FE_ERR_INVALID);
    assert_int_equal(fe_rfcomm_config_set(&c, "peer", "AA:BB:CC:DD:EE:03 0", err, sizeof(err)),
                     FE_ERR_INVALID);
    assert_int_equal(fe_rfcomm_config_set(&c, "peer", "00:00:00:00:00:00", err, sizeof(err)),
                     FE_ERR_INVALID);
    assert_int_equal(c.peer_count, 2);
    assert_int_equal(fe_rfcomm_config_check(&c, err, sizeof(err)), 0);
    assert_int_equal(fe_rfcomm_config_set(&c, "peer", "AA:BB:CC:DD:EE:01 3", err, sizeof(err)), 0);
    assert_int_equal(fe_rfcomm_config_check(&c, err, sizeof(err)), FE_ERR_INVALID);
    assert_non_null(strstr(err, "twice"));
    c.peer_count = 2;
    c.backoff_min_ms = c.backoff_max_ms + 1;
    assert_int_equal(fe_rfcomm_config_check(&c, err, sizeof(err)), FE_ERR_INVALID);

    /* fe_rfcomm_new refuses what check refuses. */
    fe_transport *t = NULL;
    fe_transport_events ev = {0};
    assert_int_equal(fe_rfcomm_new(&t, &c, &ev, err, sizeof(err)), FE_ERR_INVALID);
    assert_null(t);
    fe_rfcomm_del(NULL);
}

/* The example of hw/examples/rfcomm.conf is accepted key by key, the way
 * ferryd reads its INI file (";" starts a comment after a value). */
static void test_config_example(void **state)
{
    (void)state;
    FILE *f = fopen(FE_RFCOMM_EXAMPLE, "r");
    assert_non_null(f);
    fe_rfcomm_config c;
    fe_rfcomm_config_default(&c);
    char line[256], err[200];
    int in_section = 0, keys = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, ";#\r\n")] = '\0';
        char *eq = strchr(line, '=');
        if (line[0] == '[') {
            in_section = strncmp(line, "[rfcomm]", 8) == 0;
            continue;
        }
        if (!in_section || eq == NULL)
            continue;
        char *key = line, *val = eq + 1;
        *eq = '\0';
        while (*key == ' ')
            key++;
        for (char *e = key + strlen(key); e > key && e[-1] == ' ';)
            *--e = '\0';
        while (*val == ' ')
            val++;
        for (char *e = val + strlen(val); e > val && e[-1] == ' ';)
            *--e = '\0';
        if (fe_rfcomm_config_set(&c, key, val, err, sizeof(err)) != 0)
            fail_msg("%s = %s: %s", key, val, err);
        keys++;
    }
    fclose(f);
    assert_true(keys >= 8);
    assert_int_equal(c.peer_count, 2);
    assert_int_equal(c.peers[1].channel, 7);
    assert_int_equal(fe_rfcomm_config_check(&c, err, sizeof(err)), 0);
}

/* Open with a broken Bluetooth environment: one clear line, inert, no busy
 * loop, and it comes back on its own once the problem is gone. */
static void check_inert(const char *var, const char *value, enum fe_rfcomm_state want,
                        const char *needle)
{
    node a;
    node_init(&a, "A");
    fe_rfcomm_config c;
    config_for(&c, &a, "hci0");
    assert_int_equal(fe_rfcomm_config_set(&c, "peer", ADDR_B " 7", NULL, 0), 0);
    if (value == NULL)
        unsetenv(var);
    else
        setenv(var, value, 1);
    node_start(&a, &c);
    assert_int_equal(fe_rfcomm_get_state(a.t), want);
    assert_int_equal(log_count(&a, needle, FE_RFCOMM_LOG_WARN), 1);
    assert_int_equal(log_count(&a, "other transports keep running", FE_RFCOMM_LOG_WARN), 1);
    assert_int_equal(a.log_n, 1);
    assert_int_equal(fe_rfcomm_channel(a.t), 0);
    char line[200];
    fe_rfcomm_describe(a.t, line, sizeof(line));
    assert_non_null(strstr(line, "inert"));

    /* No busy loop: after the first tick, nothing is due for a minute, and
     * ticking anyway does nothing and says nothing. */
    fe_transport *t = a.t;
    assert_int_equal(t->ops->tick(t, now_ms), 0);
    assert_true(t->ops->next_deadline(t) >= now_ms + FE_RFCOMM_ADAPTER_RETRY_MS);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(t->ops->tick(t, now_ms), 0);
        assert_int_equal(t->ops->on_readable(t, now_ms), 0);
    }
    uint8_t f[8] = {1, 2, 3, 4};
    assert_int_equal(t->ops->send(t, 1, f, sizeof(f), FE_PRIO_SMALL, now_ms), -1);
    fe_rfcomm_stats st;
    fe_rfcomm_get_stats(t, &st);
    assert_int_equal(st.dials, 0);
    assert_int_equal(st.adapter_checks, 1);

    /* A minute later: checked again, same problem, not said again. */
    now_ms += FE_RFCOMM_ADAPTER_RETRY_MS;
    assert_int_equal(t->ops->tick(t, now_ms), 0);
    fe_rfcomm_get_stats(t, &st);
    assert_int_equal(st.adapter_checks, 2);
    assert_int_equal(a.log_n, 1);

    /* Fixed: the next check starts the driver. */
    setenv("FERRY_BTSHIM_DIR", dir, 1);
    setenv("FERRY_BTSHIM_ADDR", ALL_ADAPTERS, 1);
    unsetenv("FERRY_BTSHIM_POWER");
    unsetenv("FERRY_BTSHIM_EPERM");
    now_ms += FE_RFCOMM_ADAPTER_RETRY_MS;
    assert_int_equal(t->ops->tick(t, now_ms), 0);
    assert_int_equal(fe_rfcomm_get_state(t), FE_RFCOMM_RUNNING);
    assert_int_equal(fe_rfcomm_channel(t), 7);
    assert_int_equal(log_count(&a, "is up again", FE_RFCOMM_LOG_INFO), 1);
    node_free(&a);
}

static void test_no_adapter(void **state)
{
    (void)state;
    check_inert("FERRY_BTSHIM_ADDR", NULL, FE_RFCOMM_NO_ADAPTER,
                "no Bluetooth adapter (hci0 not found)");
}

static void test_no_kernel_support(void **state)
{
    (void)state;
    check_inert("FERRY_BTSHIM_DIR", NULL, FE_RFCOMM_NO_KERNEL, "no Bluetooth support");
}

static void test_adapter_powered_off(void **state)
{
    (void)state;
    check_inert("FERRY_BTSHIM_POWER", "off", FE_RFCOMM_ADAPTER_DOWN, "powered off");
}

static void test_permission_denied(void **state)
{
    (void)state;
    check_inert("FERRY_BTSHIM_EPERM", "1", FE_RFCOMM_NO_PERMISSION, "permission denied");
}

static void test_exchange(void **state)
{
    (void)state;
    node a, b;
    start_pair(&a, &b, 0);
    node *nodes[2] = {&a, &b};
    assert_int_equal(a.ups, 1);
    assert_int_equal(b.ups, 1);
    fe_bt_addr pa, want;
    assert_int_equal(fe_rfcomm_peer_addr(a.t, a.last_up, &pa), 0);
    assert_int_equal(fe_bt_addr_parse(&want, ADDR_B), 0);
    assert_true(fe_bt_addr_eq(&pa, &want));
    assert_int_equal(fe_rfcomm_peer_addr(b.t, b.last_up, &pa), 0);
    assert_int_equal(fe_bt_addr_parse(&want, ADDR_A), 0);
    assert_true(fe_bt_addr_eq(&pa, &want));
    assert_int_equal(fe_rfcomm_peer_addr(a.t, 0, &pa), FE_ERR_NOTFOUND);
    assert_int_equal(a.t->ops->mtu(a.t), FE_FRAME_MAX);
    assert_int_equal(a.t->ops->send(a.t, 0, (const uint8_t *)"x", 1, FE_PRIO_SMALL, now_ms), -1);

    /* Both advertised channel 7. */
    fe_btfake_counts fc;
    fe_btfake_counts_get(a.fake, &fc);
    assert_true(fc.registered);
    assert_int_equal(fc.registered_channel, 7);

    assert_int_equal(send_run(nodes, 2, &a, a.last_up, 0, 300), 300);
    assert_int_equal(send_run(nodes, 2, &b, b.last_up, 1000, 100), 100);
    for (int i = 0; i < 400 && (b.rx < 300 || a.rx < 100); i++)
        pump(nodes, 2, 1, 1, 2, NULL, NULL);
    assert_int_equal(b.rx, 300);
    assert_int_equal(a.rx, 100);
    assert_int_equal(a.rx_corrupt + b.rx_corrupt, 0);
    for (uint32_t i = 0; i < 300; i++) {
        assert_int_equal(b.rx_seq[i], i); /* in order */
        assert_int_equal(b.rx_peer[i], b.last_up);
    }
    for (uint32_t i = 0; i < 100; i++)
        assert_int_equal(a.rx_seq[i], 1000 + i);

    fe_rfcomm_stats sa, sb;
    fe_rfcomm_get_stats(a.t, &sa);
    fe_rfcomm_get_stats(b.t, &sb);
    assert_int_equal(sa.tx_frames, 300);
    assert_int_equal(sb.rx_frames, 300);
    assert_int_equal(sa.tx_bytes, sb.rx_bytes);
    assert_int_equal(sb.rx_bad_frames, 0);
    assert_int_equal(sa.dials, 1);
    assert_int_equal(sb.accepted, 1);

    /* Closing reports the link down, and the other end sees it go. */
    a.t->ops->close(a.t);
    assert_int_equal(a.downs, 1);
    assert_int_equal(a.last_down, a.last_up);
    for (int i = 0; i < 100 && b.downs == 0; i++)
        pump(&nodes[1], 1, 10, 1, 5, NULL, NULL);
    assert_int_equal(b.downs, 1);
    fe_btfake_counts_get(a.fake, &fc);
    assert_false(fc.registered);
    node_free(&a);
    node_free(&b);
}

static void test_reconnect_after_drop(void **state)
{
    (void)state;
    node a, b;
    start_pair(&a, &b, 0);
    node *nodes[2] = {&a, &b};
    pair p = {&a, &b};
    uint32_t old_a = a.last_up, old_b = b.last_up;

    /* Mid-transfer: frames queued, some read, then the radio link breaks. */
    assert_int_equal(send_run(nodes, 2, &a, old_a, 0, 50), 50);
    pump(nodes, 2, 1, 3, 2, NULL, NULL);
    int (*brk)(const char *) = (int (*)(const char *))dlsym(RTLD_DEFAULT, "fe_btshim_break");
    assert_non_null(brk);
    assert_true(brk(NULL) >= 2);
    uint64_t broke_at = now_ms;
    assert_true(pump(nodes, 2, 10, 200, 5, both_down, &p));
    assert_int_equal(a.downs, 1);
    assert_int_equal(b.downs, 1);
    assert_int_equal(a.last_down, old_a);
    assert_int_equal(b.last_down, old_b);
    uint8_t f[16];
    frame_fill(f, 7, sizeof(f));
    assert_int_equal(a.t->ops->send(a.t, old_a, f, sizeof(f), FE_PRIO_SMALL, now_ms), -1);

    /* A redials after its backoff (1 s, jittered in its upper half). */
    assert_true(pump(nodes, 2, 10, 600, 5, both_up, &p));
    assert_int_equal(a.ups, 2);
    assert_int_equal(b.ups, 2);
    assert_true(a.last_up != old_a);
    assert_true(now_ms - broke_at >= 500);
    assert_true(now_ms - broke_at <= 3000);

    /* Everything accepted after the reconnect arrives, in order. */
    size_t before = b.rx;
    assert_int_equal(send_run(nodes, 2, &a, a.last_up, 5000, 400), 400);
    for (int i = 0; i < 600 && b.rx < before + 400; i++)
        pump(nodes, 2, 1, 1, 2, NULL, NULL);
    assert_int_equal(b.rx, before + 400);
    for (uint32_t i = 0; i < 400; i++)
        assert_int_equal(b.rx_seq[before + i], 5000 + i);
    assert_int_equal(b.rx_corrupt, 0);
    node_free(&a);
    node_free(&b);
}

static void test_refused_backs_off(void **state)
{
    (void)state;
    node a;
    node_init(&a, "A");
    fe_rfcomm_config c;
    config_for(&c, &a, "hci0");
    assert_int_equal(fe_rfcomm_config_set(&c, "peer", ADDR_NOBODY " 7", NULL, 0), 0);
    node_start(&a, &c);
    node *nodes[1] = {&a};
    uint64_t start = now_ms;
    pump(nodes, 1, 50, 1200, 0, NULL, NULL); /* one virtual minute */
    assert_true(now_ms - start >= 60000);
    fe_rfcomm_stats st;
    fe_rfcomm_get_stats(a.t, &st);
    /* 1 s doubling, jittered: attempts near 0, 1, 3, 7, 15, 31 s. */
    assert_true(st.dials >= 4);
    assert_true(st.dials <= 8);
    assert_int_equal(st.dial_failures, st.dials);
    assert_int_equal(a.ups, 0);
    /* One clear line; the repeats go to debug. */
    assert_int_equal(log_count(&a, ADDR_NOBODY, FE_RFCOMM_LOG_INFO), 1);
    assert_int_equal(log_count(&a, "Connection refused", FE_RFCOMM_LOG_INFO), 1);
    assert_true(log_count(&a, "Connection refused", FE_RFCOMM_LOG_DEBUG) >= 3);
    /* Nothing due before the backoff ends. */
    assert_int_equal(a.t->ops->tick(a.t, now_ms), 0);
    assert_true(a.t->ops->next_deadline(a.t) > now_ms);
    node_free(&a);
}

static void test_dials_capped_per_minute(void **state)
{
    (void)state;
    node a;
    node_init(&a, "A");
    fe_rfcomm_config c;
    config_for(&c, &a, "hci0");
    /* Backoff that would allow a dial every 100-200 ms: the global cap of
     * FE_RFCOMM_DIALS_PER_MIN is what holds it. */
    assert_int_equal(fe_rfcomm_config_set(&c, "backoff_min", "100ms", NULL, 0), 0);
    assert_int_equal(fe_rfcomm_config_set(&c, "backoff_max", "200ms", NULL, 0), 0);
    assert_int_equal(fe_rfcomm_config_set(&c, "peer", ADDR_NOBODY " 7", NULL, 0), 0);
    assert_int_equal(fe_rfcomm_config_set(&c, "peer", ADDR_SILENT " 7", NULL, 0), 0);
    node_start(&a, &c);
    node *nodes[1] = {&a};
    pump(nodes, 1, 50, 1199, 0, NULL, NULL); /* just under a minute */
    fe_rfcomm_stats st;
    fe_rfcomm_get_stats(a.t, &st);
    assert_int_equal(st.dials, FE_RFCOMM_DIALS_PER_MIN);
    pump(nodes, 1, 50, 1200, 0, NULL, NULL); /* the next minute */
    fe_rfcomm_get_stats(a.t, &st);
    assert_true(st.dials <= 2 * FE_RFCOMM_DIALS_PER_MIN);
    assert_true(st.dials > FE_RFCOMM_DIALS_PER_MIN);
    node_free(&a);
}

/* A raw RFCOMM socket of the test, from adapter `from`, connected to `to`. */
static int raw_connect_from(const char *from, uint8_t channel, const char *to)
{
    int fd = socket(AF_BLUETOOTH, SOCK_STREAM, BTPROTO_RFCOMM);
    assert_true(fd >= 0);
    struct sockaddr_rc loc = {.rc_family = AF_BLUETOOTH};
    str2ba(from, &loc.rc_bdaddr);
    assert_int_equal(bind(fd, (struct sockaddr *)&loc, sizeof(loc)), 0);
    struct sockaddr_rc rem = {.rc_family = AF_BLUETOOTH, .rc_channel = channel};
    str2ba(to, &rem.rc_bdaddr);
    assert_int_equal(connect(fd, (struct sockaddr *)&rem, sizeof(rem)), 0);
    return fd;
}

static int raw_connect(uint8_t channel, const char *to)
{
    return raw_connect_from(ADDR_RAW, channel, to);
}

static void raw_write(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        assert_true(n > 0);
        p += n;
        len -= (size_t)n;
    }
}

static void raw_write_frame(int fd, uint32_t seq)
{
    uint8_t f[FE_FRAME_MAX], enc[FE_STREAM_ENCODED_MAX(FE_FRAME_MAX)];
    size_t len = frame_len(seq);
    frame_fill(f, seq, len);
    ptrdiff_t n = fe_stream_encode(enc, sizeof(enc), f, len);
    assert_true(n > 0);
    raw_write(fd, enc, (size_t)n);
}

/* A frame with a wrong FCS. */
static void raw_write_bad(int fd, uint8_t salt)
{
    uint8_t enc[8] = {0x7E, 0x10, 0x20, salt, 0x40, 0x11, 0x22, 0x7E};
    raw_write(fd, enc, sizeof(enc));
}

/* 1 when fd reads end-of-file within about wait_ms (real). */
static int raw_sees_eof(int fd, int wait_ms)
{
    for (int i = 0; i < wait_ms / 10 + 1; i++) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 10) > 0) {
            uint8_t buf[4096];
            ssize_t n = read(fd, buf, sizeof(buf));
            if (n == 0 || (n < 0 && errno == ECONNRESET))
                return 1;
        }
    }
    return 0;
}

static void start_listener(node *a, fe_rfcomm_config *c)
{
    node_init(a, "A");
    config_for(c, a, "hci0");
}

static void test_garbage_dropped(void **state)
{
    (void)state;
    node a;
    fe_rfcomm_config c;
    start_listener(&a, &c);
    node_start(&a, &c);
    node *nodes[1] = {&a};
    int fd = raw_connect(7, ADDR_A);
    for (int i = 0; i < 100 && a.ups == 0; i++)
        pump(nodes, 1, 10, 1, 5, NULL, NULL);
    assert_int_equal(a.ups, 1);

    /* Isolated bad frames between good ones are tolerated... */
    for (uint32_t i = 0; i < 20; i++) {
        raw_write_bad(fd, (uint8_t)i);
        raw_write_frame(fd, i);
    }
    for (int i = 0; i < 100 && a.rx < 20; i++)
        pump(nodes, 1, 10, 1, 5, NULL, NULL);
    assert_int_equal(a.rx, 20);
    assert_int_equal(a.downs, 0);
    fe_rfcomm_stats st;
    fe_rfcomm_get_stats(a.t, &st);
    assert_int_equal(st.rx_bad_frames, 20);

    /* ...a run of bad_frames_max (8) of them is not. */
    for (int i = 0; i < 12; i++)
        raw_write_bad(fd, (uint8_t)(0x80 + i));
    raw_write_frame(fd, 99); /* too late: must not be delivered */
    for (int i = 0; i < 100 && a.downs == 0; i++)
        pump(nodes, 1, 10, 1, 5, NULL, NULL);
    assert_int_equal(a.downs, 1);
    assert_int_equal(a.rx, 20);
    fe_rfcomm_get_stats(a.t, &st);
    assert_int_equal(st.garbage_drops, 1);
    assert_true(st.rx_bad_frames >= 28);
    assert_int_equal(log_count(&a, "bad frames in a row", FE_RFCOMM_LOG_INFO), 1);
    assert_true(raw_sees_eof(fd, 1000));
    close(fd);

    /* Unframed noise (no flag at all) counts too. */
    fd = raw_connect(7, ADDR_A);
    for (int i = 0; i < 100 && a.ups < 2; i++)
        pump(nodes, 1, 10, 1, 5, NULL, NULL);
    assert_int_equal(a.ups, 2);
    uint8_t noise[4096];
    memset(noise, 0x55, sizeof(noise));
    for (int i = 0; i < 20 && a.downs < 2; i++) {
        raw_write(fd, noise, sizeof(noise));
        pump(nodes, 1, 10, 2, 5, NULL, NULL);
    }
    for (int i = 0; i < 100 && a.downs < 2; i++)
        pump(nodes, 1, 10, 1, 5, NULL, NULL);
    assert_int_equal(a.downs, 2);
    fe_rfcomm_get_stats(a.t, &st);
    assert_int_equal(st.garbage_drops, 2);
    close(fd);
    node_free(&a);
}

static void test_idle_timeout(void **state)
{
    (void)state;
    node a;
    fe_rfcomm_config c;
    start_listener(&a, &c);
    assert_int_equal(fe_rfcomm_config_set(&c, "idle_timeout", "5s", NULL, 0), 0);
    node_start(&a, &c);
    node *nodes[1] = {&a};
    int fd = raw_connect(7, ADDR_A);
    for (int i = 0; i < 100 && a.ups == 0; i++)
        pump(nodes, 1, 10, 1, 5, NULL, NULL);
    assert_int_equal(a.ups, 1);
    uint64_t up_at = now_ms;

    /* A good frame at 3 s keeps it; silence after it ends it 5 s later. */
    while (now_ms < up_at + 3000)
        pump(nodes, 1, 100, 1, 0, NULL, NULL);
    raw_write_frame(fd, 1);
    for (int i = 0; i < 100 && a.rx == 0; i++)
        pump(nodes, 1, 0, 1, 5, NULL, NULL);
    assert_int_equal(a.rx, 1);
    uint64_t heard_at = now_ms;
    while (now_ms < up_at + 6000)
        pump(nodes, 1, 100, 1, 0, NULL, NULL);
    assert_int_equal(a.downs, 0);
    for (int i = 0; i < 100 && a.downs == 0; i++)
        pump(nodes, 1, 100, 1, 0, NULL, NULL);
    assert_int_equal(a.downs, 1);
    assert_true(now_ms >= heard_at + 5000);
    assert_true(now_ms <= heard_at + 5200);
    fe_rfcomm_stats st;
    fe_rfcomm_get_stats(a.t, &st);
    assert_int_equal(st.idle_timeouts, 1);
    assert_true(raw_sees_eof(fd, 1000));
    close(fd);
    node_free(&a);
}

static void test_connect_timeout(void **state)
{
    (void)state;
    char hole[128];
    snprintf(hole, sizeof(hole), "%s/%s.blackhole", dir, ADDR_HOLE);
    FILE *f = fopen(hole, "w");
    assert_non_null(f);
    fclose(f);

    node a;
    node_init(&a, "A");
    fe_rfcomm_config c;
    config_for(&c, &a, "hci0");
    assert_int_equal(fe_rfcomm_config_set(&c, "peer", ADDR_HOLE " 7", NULL, 0), 0);
    assert_int_equal(fe_rfcomm_config_set(&c, "connect_timeout", "2s", NULL, 0), 0);
    node_start(&a, &c);
    node *nodes[1] = {&a};
    pump(nodes, 1, 100, 2, 0, NULL, NULL);
    fe_rfcomm_stats st;
    fe_rfcomm_get_stats(a.t, &st);
    assert_int_equal(st.dials, 1);
    assert_int_equal(st.links_connecting, 1);
    uint64_t dialled = now_ms;
    for (int i = 0; i < 100 && st.connect_timeouts == 0; i++) {
        pump(nodes, 1, 100, 1, 0, NULL, NULL);
        fe_rfcomm_get_stats(a.t, &st);
    }
    assert_int_equal(st.connect_timeouts, 1);
    assert_true(now_ms - dialled >= 1800 && now_ms - dialled <= 2200);
    assert_int_equal(st.links_connecting, 0);
    assert_int_equal(st.dial_failures, 1);
    assert_int_equal(a.ups, 0);
    assert_int_equal(log_count(&a, "connect timeout", FE_RFCOMM_LOG_INFO), 1);
    node_free(&a);
}

static void test_link_cap(void **state)
{
    (void)state;
    node a;
    fe_rfcomm_config c;
    start_listener(&a, &c);
    assert_int_equal(fe_rfcomm_config_set(&c, "max_links", "2", NULL, 0), 0);
    node_start(&a, &c);
    node *nodes[1] = {&a};
    /* Three devices (one connection per device is the rule). */
    static const char *const from[3] = {ADDR_RAW, ADDR_RAW2, ADDR_RAW3};
    int fd[3];
    for (int k = 0; k < 3; k++) {
        fd[k] = raw_connect_from(from[k], 7, ADDR_A);
        for (int i = 0; i < 50 && a.ups < (size_t)(k < 2 ? k + 1 : 2); i++)
            pump(nodes, 1, 10, 1, 5, NULL, NULL);
    }
    pump(nodes, 1, 10, 10, 5, NULL, NULL);
    assert_int_equal(a.ups, 2);
    fe_rfcomm_stats st;
    fe_rfcomm_get_stats(a.t, &st);
    assert_int_equal(st.links_up, 2);
    assert_int_equal(st.accepted, 3);
    assert_int_equal(st.rejected_cap, 1);
    assert_true(raw_sees_eof(fd[2], 1000));
    assert_false(raw_sees_eof(fd[0], 50));

    /* One slot frees: a new connection is taken again. */
    close(fd[0]);
    for (int i = 0; i < 100 && a.downs == 0; i++)
        pump(nodes, 1, 10, 1, 5, NULL, NULL);
    close(fd[2]);
    fd[2] = raw_connect_from(from[2], 7, ADDR_A);
    for (int i = 0; i < 100 && a.ups < 3; i++)
        pump(nodes, 1, 10, 1, 5, NULL, NULL);
    assert_int_equal(a.ups, 3);
    close(fd[1]);
    close(fd[2]);
    node_free(&a);
}

/* A device that connects again while its first connection is still up:
 * the newer one stays (the older is most likely dead), never two. */
static void test_same_device_twice(void **state)
{
    (void)state;
    node a;
    fe_rfcomm_config c;
    start_listener(&a, &c);
    node_start(&a, &c);
    node *nodes[1] = {&a};
    int first = raw_connect(7, ADDR_A);
    for (int i = 0; i < 50 && a.ups < 1; i++)
        pump(nodes, 1, 10, 1, 5, NULL, NULL);
    int second = raw_connect(7, ADDR_A);
    for (int i = 0; i < 50 && a.ups < 2; i++)
        pump(nodes, 1, 10, 1, 5, NULL, NULL);
    assert_int_equal(a.ups, 2);
    assert_int_equal(a.downs, 1);
    assert_int_equal(a.last_down, a.up_ids[0]);
    assert_int_equal(links_up(&a), 1);
    assert_true(raw_sees_eof(first, 1000));
    raw_write_frame(second, 5);
    for (int i = 0; i < 50 && a.rx < 1; i++)
        pump(nodes, 1, 10, 1, 5, NULL, NULL);
    assert_int_equal(a.rx, 1);
    assert_int_equal(a.rx_peer[0], a.up_ids[1]);
    fe_rfcomm_stats st;
    fe_rfcomm_get_stats(a.t, &st);
    assert_int_equal(st.duplicates, 1);
    close(first);
    close(second);
    node_free(&a);
}

static void test_outgoing_cap(void **state)
{
    (void)state;
    node a, b;
    node_init(&a, "A");
    node_init(&b, "B");
    fe_rfcomm_config ca, cb;
    config_for(&ca, &a, "hci0");
    config_for(&cb, &b, "hci1");
    assert_int_equal(fe_rfcomm_config_set(&ca, "max_links", "1", NULL, 0), 0);
    assert_int_equal(fe_rfcomm_config_set(&ca, "peer", ADDR_B " 7", NULL, 0), 0);
    assert_int_equal(fe_rfcomm_config_set(&ca, "peer", ADDR_NOBODY " 7", NULL, 0), 0);
    node_start(&b, &cb);
    node_start(&a, &ca);
    node *nodes[2] = {&a, &b};
    pump(nodes, 2, 100, 300, 2, NULL, NULL); /* 30 virtual seconds */
    fe_rfcomm_stats st;
    fe_rfcomm_get_stats(a.t, &st);
    assert_int_equal(a.ups, 1);
    assert_int_equal(st.links_up, 1);
    /* With the one slot taken by B, the other peer is never dialled. */
    assert_int_equal(st.dials, 1);
    node_free(&a);
    node_free(&b);
}

static void test_both_dial_one_link(void **state)
{
    (void)state;
    node a, b;
    start_pair(&a, &b, 1);
    node *nodes[2] = {&a, &b};
    pump(nodes, 2, 100, 100, 2, NULL, NULL); /* let both dials settle */
    assert_int_equal(links_up(&a), 1);
    assert_int_equal(links_up(&b), 1);
    assert_int_equal(a.ups - a.downs, 1);
    assert_int_equal(b.ups - b.downs, 1);
    /* The surviving link carries frames both ways. */
    size_t before_a = a.rx, before_b = b.rx;
    assert_int_equal(send_run(nodes, 2, &a, a.last_up, 0, 20), 20);
    assert_int_equal(send_run(nodes, 2, &b, b.last_up, 100, 20), 20);
    for (int i = 0; i < 200 && (a.rx < before_a + 20 || b.rx < before_b + 20); i++)
        pump(nodes, 2, 1, 1, 2, NULL, NULL);
    assert_int_equal(a.rx, before_a + 20);
    assert_int_equal(b.rx, before_b + 20);
    node_free(&a);
    node_free(&b);
}

static int a_up(void *ctx)
{
    return links_up((node *)ctx) == 1;
}

static void test_discovery(void **state)
{
    (void)state;
    write_script(ADDR_A " 7\n" ADDR_B " 7\n" ADDR_NOBODY " -\n" ADDR_SILENT " x\n");
    node a, b;
    node_init(&a, "A");
    node_init(&b, "B");
    fe_rfcomm_config ca, cb;
    config_for(&ca, &a, "hci0");
    config_for(&cb, &b, "hci1");
    assert_int_equal(fe_rfcomm_config_set(&ca, "inquiry", "on", NULL, 0), 0);
    assert_int_equal(fe_rfcomm_config_set(&ca, "inquiry_interval", "10s", NULL, 0), 0);
    node_start(&b, &cb);
    node_start(&a, &ca);
    node *nodes[2] = {&a, &b};
    assert_true(pump(nodes, 2, 10, 500, 5, a_up, &a));
    fe_bt_addr pa, want;
    assert_int_equal(fe_rfcomm_peer_addr(a.t, a.last_up, &pa), 0);
    assert_int_equal(fe_bt_addr_parse(&want, ADDR_B), 0);
    assert_true(fe_bt_addr_eq(&pa, &want));
    assert_int_equal(fe_btfake_lookups_of(a.fake, ADDR_B), 1);

    /* Let the other lookups finish, then a few more inquiries: the device
     * without ferry is not asked again; the silent one is asked a few times
     * with backoff, then left alone too. */
    pump(nodes, 2, 100, 50, 5, NULL, NULL);
    assert_int_equal(fe_btfake_lookups_of(a.fake, ADDR_NOBODY), 1);
    pump(nodes, 2, 250, 200, 2, NULL, NULL); /* 50 virtual seconds */
    fe_btfake_counts fc;
    fe_btfake_counts_get(a.fake, &fc);
    assert_true(fc.inquiries >= 3);
    assert_int_equal(fe_btfake_lookups_of(a.fake, ADDR_NOBODY), 1);
    unsigned silent = fe_btfake_lookups_of(a.fake, ADDR_SILENT);
    assert_int_equal(silent, FE_RFCOMM_DISCOVERED_FAILS);
    fe_rfcomm_stats st;
    fe_rfcomm_get_stats(a.t, &st);
    assert_int_equal(st.lookup_failures, FE_RFCOMM_DISCOVERED_FAILS);
    assert_int_equal(links_up(&a), 1);
    /* Own address is never looked up. */
    assert_int_equal(fe_btfake_lookups_of(a.fake, ADDR_A), 0);
    node_free(&a);
    node_free(&b);
}

static void test_auto_channel_and_lookup(void **state)
{
    (void)state;
    node a, b;
    node_init(&a, "A");
    node_init(&b, "B");
    fe_rfcomm_config ca, cb;
    config_for(&ca, &a, "hci0");
    config_for(&cb, &b, "hci1");
    /* Something else holds channel 1 on A's adapter. */
    int squat = socket(AF_BLUETOOTH, SOCK_STREAM, BTPROTO_RFCOMM);
    struct sockaddr_rc sa = {.rc_family = AF_BLUETOOTH, .rc_channel = 1};
    str2ba(ADDR_A, &sa.rc_bdaddr);
    assert_int_equal(bind(squat, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(squat, 1), 0);

    assert_int_equal(fe_rfcomm_config_set(&ca, "channel", "auto", NULL, 0), 0);
    node_start(&a, &ca);
    uint8_t ch = fe_rfcomm_channel(a.t);
    assert_int_equal(ch, 2);
    fe_btfake_counts fc;
    fe_btfake_counts_get(a.fake, &fc);
    assert_true(fc.registered);
    assert_int_equal(fc.registered_channel, ch);

    /* B knows A only by address: SDP (the script) tells it the channel. */
    char line[64];
    snprintf(line, sizeof(line), "%s %u\n", ADDR_A, (unsigned)ch);
    write_script(line);
    assert_int_equal(fe_rfcomm_config_set(&cb, "peer", ADDR_A, NULL, 0), 0);
    node_start(&b, &cb);
    node *nodes[2] = {&a, &b};
    pair p = {&a, &b};
    assert_true(pump(nodes, 2, 10, 500, 5, both_up, &p));
    assert_int_equal(fe_btfake_lookups_of(b.fake, ADDR_A), 1);
    close(squat);
    node_free(&a);
    node_free(&b);
}

static void test_no_sdp_record_falls_back(void **state)
{
    (void)state;
    /* bluetoothd without --compat on both: registering fails, and the
     * lookup finds no record; the default channel still connects them. */
    write_script("register fail\n" ADDR_A " -\n");
    node a, b;
    node_init(&a, "A");
    node_init(&b, "B");
    fe_rfcomm_config ca, cb;
    config_for(&ca, &a, "hci0");
    config_for(&cb, &b, "hci1");
    node_start(&a, &ca);
    assert_int_equal(fe_rfcomm_get_state(a.t), FE_RFCOMM_RUNNING);
    assert_int_equal(log_count(&a, "default channel 7", FE_RFCOMM_LOG_WARN), 1);
    assert_int_equal(fe_rfcomm_config_set(&cb, "peer", ADDR_A, NULL, 0), 0);
    node_start(&b, &cb);
    node *nodes[2] = {&a, &b};
    pair p = {&a, &b};
    assert_true(pump(nodes, 2, 10, 500, 5, both_up, &p));
    assert_int_equal(log_count(&a, "advertising", FE_RFCOMM_LOG_INFO), 0);

    /* bluetoothd fixed (restarted with --compat): the next adapter check
     * registers the record, and says so once. */
    write_script(ADDR_A " -\n");
    now_ms += FE_RFCOMM_ADAPTER_RETRY_MS;
    pump(nodes, 2, 10, 3, 1, NULL, NULL);
    fe_btfake_counts fc;
    fe_btfake_counts_get(a.fake, &fc);
    assert_true(fc.registered);
    assert_int_equal(fc.registered_channel, 7);
    now_ms += FE_RFCOMM_ADAPTER_RETRY_MS;
    pump(nodes, 2, 10, 3, 1, NULL, NULL);
    assert_int_equal(log_count(&a, "advertising", FE_RFCOMM_LOG_INFO), 1);
    assert_int_equal(log_count(&a, "default channel 7", FE_RFCOMM_LOG_WARN), 1);
    assert_int_equal(links_up(&a), 1);
    node_free(&a);
    node_free(&b);
}

static void test_adapter_goes_away(void **state)
{
    (void)state;
    node a, b;
    start_pair(&a, &b, 0);
    node *nodes[2] = {&a, &b};
    pair p = {&a, &b};
    /* Powered off while running: A notices at its next check, ends the
     * link (B sees it end too), says so once, and waits. */
    setenv("FERRY_BTSHIM_POWER", "off", 1);
    now_ms += FE_RFCOMM_ADAPTER_RETRY_MS;
    assert_true(pump(nodes, 2, 10, 200, 5, both_down, &p));
    assert_int_equal(fe_rfcomm_get_state(a.t), FE_RFCOMM_ADAPTER_DOWN);
    assert_int_equal(log_count(&a, "powered off", FE_RFCOMM_LOG_WARN), 1);
    assert_int_equal(a.downs, 1);
    unsetenv("FERRY_BTSHIM_POWER");
    now_ms += FE_RFCOMM_ADAPTER_RETRY_MS;
    assert_true(pump(nodes, 2, 10, 500, 5, both_up, &p));
    assert_int_equal(fe_rfcomm_get_state(a.t), FE_RFCOMM_RUNNING);
    node_free(&a);
    node_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_config_example),
        cmocka_unit_test_setup_teardown(test_no_adapter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_kernel_support, setup, teardown),
        cmocka_unit_test_setup_teardown(test_adapter_powered_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_permission_denied, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exchange, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconnect_after_drop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_backs_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dials_capped_per_minute, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_link_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_device_twice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outgoing_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_both_dial_one_link, setup, teardown),
        cmocka_unit_test_setup_teardown(test_discovery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auto_channel_and_lookup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_sdp_record_falls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_adapter_goes_away, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
