/* Tests for platform/config.c: defaults, every key, every kind of error with
 * its exact line, and files that are not config files at all. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "testdir.h"
#include "log.h"

static char tmpdir[64];

static int setup(void **state)
{
    (void)state;
    if (testdir_make(tmpdir, sizeof(tmpdir), "config") != 0)
        return -1;
    setenv("HOME", "/home/tester", 1);
    unsetenv("XDG_DATA_HOME");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return testdir_remove(tmpdir);
}

static void write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static const char *addr_str(struct in_addr a)
{
    static char buf[INET_ADDRSTRLEN];
    return inet_ntop(AF_INET, &a, buf, sizeof(buf));
}

static void test_defaults(void **state)
{
    (void)state;
    fe_config c;
    fe_config_defaults(&c);
    char host[256] = "";
    assert_int_equal(gethostname(host, sizeof(host)), 0);
    host[strcspn(host, ".")] = '\0';
    host[FE_NAME_MAX] = '\0';
    assert_string_equal(c.name, host);
    assert_string_equal(c.data_dir, "/home/tester/.local/share/ferry");
    assert_string_equal(c.socket, "");
    assert_int_equal(c.log_level, FE_LOG_INFO);
    assert_int_equal(c.lifetime_ms, 24ull * 3600 * 1000);
    assert_int_equal(c.hops, FE_HOPS_DEFAULT);
    assert_string_equal(c.socket_group, "");
    assert_true(c.udp.enabled);
    assert_int_equal(c.udp.port, 4747);
    assert_string_equal(addr_str(c.udp.group), "239.255.70.1");
    assert_string_equal(c.udp.interface, "");
    assert_false(c.udp.broadcast);
    assert_int_equal(c.udp.peers_count, 0);
    assert_int_equal(c.udp.mtu, 1200);
    assert_int_equal(c.driver_count, 0);
    assert_int_equal(c.driver_text_len, 0);

    char err[256];
    assert_int_equal(fe_config_finish(&c, err, sizeof(err)), 0);
    assert_string_equal(c.socket, "/home/tester/.local/share/ferry/ferryd.sock");

    /* An empty file changes nothing. */
    fe_config d;
    fe_config_defaults(&d);
    assert_int_equal(fe_config_load_string(&d, "", err, sizeof(err)), 0);
    assert_int_equal(fe_config_load_string(&d, "; only a comment\n\n# another\n", err, sizeof(err)),
                     0);
    fe_config e;
    fe_config_defaults(&e);
    assert_memory_equal(&d, &e, sizeof(d));
}

static void test_defaults_from_environment(void **state)
{
    (void)state;
    fe_config c;
    setenv("XDG_DATA_HOME", "/xdg/data", 1);
    fe_config_defaults(&c);
    assert_string_equal(c.data_dir, "/xdg/data/ferry");
    setenv("XDG_DATA_HOME", "relative/ignored", 1);
    fe_config_defaults(&c);
    assert_string_equal(c.data_dir, "/home/tester/.local/share/ferry");
    unsetenv("XDG_DATA_HOME");
    unsetenv("HOME");
    fe_config_defaults(&c);
    assert_string_equal(c.data_dir, "");
    char err[256];
    assert_int_equal(fe_config_finish(&c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "data_dir"));
    setenv("HOME", "/home/tester", 1);
}

static void test_every_key(void **state)
{
    (void)state;
    const char *text = "# a full config\n"
                       "[node]\n"
                       "name = alice the relay\n"
                       "data_dir = /var/lib/ferry\n"
                       "socket = /run/ferry/ctl.sock\n"
                       "log_level = debug\n"
                       "lifetime = 7d ; a week\n"
                       "hops = 7\n"
                       "socket_group = ferry\n"
                       "\n"
                       "[udp]\n"
                       "enabled = no\n"
                       "port = 5000\n"
                       "group = 239.1.2.3\n"
                       "interface = wlan0\n"
                       "broadcast = on\n"
                       "peer = 192.0.2.10:4800\n"
                       "peer = 198.51.100.7\n"
                       "mtu = 512\n";
    fe_config c;
    fe_config_defaults(&c);
    char err[256] = "";
    assert_int_equal(fe_config_load_string(&c, text, err, sizeof(err)), 0);
    assert_string_equal(c.name, "alice the relay");
    assert_string_equal(c.data_dir, "/var/lib/ferry");
    assert_string_equal(c.socket, "/run/ferry/ctl.sock");
    assert_int_equal(c.log_level, FE_LOG_DEBUG);
    assert_int_equal(c.lifetime_ms, 7ull * 86400 * 1000);
    assert_int_equal(c.hops, 7);
    assert_string_equal(c.socket_group, "ferry");
    assert_false(c.udp.enabled);
    assert_int_equal(c.udp.port, 5000);
    assert_string_equal(addr_str(c.udp.group), "239.1.2.3");
    assert_string_equal(c.udp.interface, "wlan0");
    assert_true(c.udp.broadcast);
    assert_int_equal(c.udp.peers_count, 2);
    assert_string_equal(addr_str(c.udp.peers[0].addr), "192.0.2.10");
    assert_int_equal(c.udp.peers[0].port, 4800);
    assert_string_equal(addr_str(c.udp.peers[1].addr), "198.51.100.7");
    assert_int_equal(c.udp.peers[1].port, 0);
    assert_int_equal(c.udp.mtu, 512);
    assert_int_equal(fe_config_finish(&c, err, sizeof(err)), 0);
    assert_int_equal(c.udp.peers[1].port, 5000);          /* the [udp] port */
    assert_string_equal(c.socket, "/run/ferry/ctl.sock"); /* kept */

    /* Empty name is allowed; an interface may be an address; ~/ is HOME. */
    assert_int_equal(fe_config_load_string(&c,
                                           "[node]\nname =\ndata_dir = ~/ferry\n"
                                           "[udp]\ninterface = 192.168.1.20\n",
                                           err, sizeof(err)),
                     0);
    assert_string_equal(c.name, "");
    assert_string_equal(c.data_dir, "/home/tester/ferry");
    assert_string_equal(c.udp.interface, "192.168.1.20");
}

static void test_booleans(void **state)
{
    (void)state;
    const char *yes[] = {"true", "YES", "on", "1", "True"};
    const char *no[] = {"false", "no", "OFF", "0"};
    char text[64], err[256];
    fe_config c;
    fe_config_defaults(&c);
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        c.udp.broadcast = 0;
        snprintf(text, sizeof(text), "[udp]\nbroadcast = %s\n", yes[i]);
        assert_int_equal(fe_config_load_string(&c, text, err, sizeof(err)), 0);
        assert_true(c.udp.broadcast);
    }
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        c.udp.enabled = 1;
        snprintf(text, sizeof(text), "[udp]\nenabled = %s\n", no[i]);
        assert_int_equal(fe_config_load_string(&c, text, err, sizeof(err)), 0);
        assert_false(c.udp.enabled);
    }
    assert_int_equal(fe_config_load_string(&c, "[udp]\nenabled = maybe\n", err, sizeof(err)), -1);
    assert_string_equal(err, "<string>:2: enabled must be true or false (or yes/no, on/off, 1/0)");
}

static void test_durations(void **state)
{
    (void)state;
    struct {
        const char *s;
        uint64_t ms;
    } good[] = {{"90s", 90000},    {"15m", 900000}, {"24h", 86400000},      {"7d", 604800000},
                {"3600", 3600000}, {"1s", 1000},    {"30d", 2592000000ull}, {"0", 0}};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        uint64_t ms = 1;
        assert_int_equal(fe_config_parse_duration(good[i].s, &ms), 0);
        assert_int_equal(ms, good[i].ms);
    }
    const char *bad[] = {"",   "s",   "1x",  "-5",    "+5",
                         " 5", "5 m", "5mm", "1h30m", "99999999999999999999d"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t ms = 7;
        assert_int_equal(fe_config_parse_duration(bad[i], &ms), -1);
        assert_int_equal(ms, 7);
    }
    char err[256];
    fe_config c;
    fe_config_defaults(&c);
    assert_int_equal(fe_config_load_string(&c, "[node]\nlifetime = 30d\n", err, sizeof(err)), 0);
    assert_int_equal(c.lifetime_ms, 30ull * 86400 * 1000);
    assert_int_equal(fe_config_load_string(&c, "[node]\nlifetime = 31d\n", err, sizeof(err)), -1);
    assert_string_equal(err, "<string>:2: lifetime must be 1s..30d");
    assert_int_equal(fe_config_load_string(&c, "[node]\nlifetime = 0s\n", err, sizeof(err)), -1);
    assert_string_equal(err, "<string>:2: lifetime must be 1s..30d");
    assert_int_equal(fe_config_load_string(&c, "[node]\n\nlifetime = soon\n", err, sizeof(err)),
                     -1);
    assert_string_equal(
        err, "<string>:3: lifetime must be a duration like 90s, 15m, 24h, 7d or seconds");
}

/* text must fail with exactly msg. */
static void expect_error(const char *text, const char *msg)
{
    fe_config c, before;
    fe_config_defaults(&c);
    before = c;
    char err[512] = "";
    int rc = fe_config_load_string(&c, text, err, sizeof(err));
    if (rc != -1 || strcmp(err, msg) != 0)
        print_error("config:\n%s\nexpected: %s\ngot (%d): %s\n", text, msg, rc, err);
    assert_int_equal(rc, -1);
    assert_string_equal(err, msg);
    assert_memory_equal(&c, &before, sizeof(c)); /* untouched on failure */
}

static void test_value_errors(void **state)
{
    (void)state;
    expect_error("[udp]\nport = 0\n", "<string>:2: port must be 1..65535");
    expect_error("[udp]\n\n\nport = 65536\n", "<string>:4: port must be 1..65535");
    expect_error("[udp]\nport = 47x\n", "<string>:2: port must be 1..65535");
    expect_error("[udp]\nport = -1\n", "<string>:2: port must be 1..65535");
    expect_error("[udp]\nmtu = 63\n", "<string>:2: mtu must be 64..1400");
    expect_error("[udp]\nmtu = 1401\n", "<string>:2: mtu must be 64..1400");
    expect_error("[node]\nhops = 0\n", "<string>:2: hops must be 1..255");
    expect_error("[node]\nhops = 256\n", "<string>:2: hops must be 1..255");
    expect_error("[node]\nlog_level = loud\n",
                 "<string>:2: log_level must be error, warn, info or debug");
    expect_error("[udp]\ngroup = 192.168.1.1\n",
                 "<string>:2: group must be an IPv4 multicast address (224.0.0.0 to "
                 "239.255.255.255)");
    expect_error("[udp]\ngroup = 240.0.0.1\n",
                 "<string>:2: group must be an IPv4 multicast address (224.0.0.0 to "
                 "239.255.255.255)");
    expect_error("[udp]\ninterface = 999.1.1.1\n",
                 "<string>:2: interface must be an interface name (at most 15 characters) or "
                 "an IPv4 address");
    expect_error("[udp]\ninterface = averyveryverylongname\n",
                 "<string>:2: interface must be an interface name (at most 15 characters) or "
                 "an IPv4 address");
    expect_error("[udp]\npeer = example.org:4747\n",
                 "<string>:2: peer must be IPV4-ADDRESS[:PORT], like 192.0.2.10:4747");
    expect_error("[udp]\npeer = 192.0.2.1:0\n", "<string>:2: peer port must be 1..65535");
    expect_error("[udp]\npeer = 192.0.2.1:\n", "<string>:2: peer port must be 1..65535");
    expect_error("[node]\nname = this name is far too long for an announce\n",
                 "<string>:2: name must be at most 32 bytes");
    expect_error("[node]\ndata_dir =\n", "<string>:2: data_dir must not be empty");
    expect_error("[node]\nsocket_group = two words\n",
                 "<string>:2: socket_group must be a group name (at most 32 characters)");

    char text[512];
    snprintf(text, sizeof(text), "[node]\nsocket = /%0120d\n", 0);
    expect_error(text, "<string>:2: socket is too long (at most 107 bytes)");

    /* The 33rd peer is one too many. */
    char many[2048];
    size_t n = (size_t)snprintf(many, sizeof(many), "[udp]\n");
    for (int i = 0; i < FE_CONFIG_PEERS_MAX + 1; i++)
        n += (size_t)snprintf(many + n, sizeof(many) - n, "peer = 10.0.0.%d\n", i + 1);
    expect_error(many, "<string>:34: too many peers (at most 32)");
}

static void test_structure_errors(void **state)
{
    (void)state;
    expect_error("[node]\nname = a\ncolour = red\n", "<string>:3: unknown key 'colour' in [node]");
    expect_error("[udp]\nname = a\n", "<string>:2: unknown key 'name' in [udp]");
    expect_error("[node]\nhops = 3\n; comment\nhops = 4\n",
                 "<string>:4: duplicate key 'hops' in [node] (it may appear only once)");
    /* The same key in a repeated section is still a duplicate. */
    expect_error("[udp]\nport = 1\n[node]\nhops = 2\n[udp]\nport = 2\n",
                 "<string>:6: duplicate key 'port' in [udp] (it may appear only once)");
    expect_error("name = a\n",
                 "<string>:1: key 'name' is outside any section (put it under [node] or [udp])");
    expect_error("[node]\nname = a\n\n[lora radio]\ndevice = /dev/ttyUSB0\n",
                 "<string>:4: section [lora radio] is not supported by this build");
    /* A section is refused at its header, even with no keys under it. */
    expect_error("[node]\nname = a\n[bluetooth]\n",
                 "<string>:3: section [bluetooth] is not supported by this build");
    expect_error("[node extra]\nname = a\n",
                 "<string>:1: section [node extra] is not supported by this build");
    expect_error("[node]\nname = a\nthis line has no equals sign\n",
                 "<string>:3: syntax error: expected [section] or key = value");
    expect_error("[node\nname = a\n",
                 "<string>:1: syntax error: expected [section] or key = value");
    /* The first problem is reported, whichever kind it is. */
    expect_error("[node]\ngarbage\nhops = 0\n",
                 "<string>:2: syntax error: expected [section] or key = value");
    expect_error("[node]\nhops = 0\ngarbage\n", "<string>:2: hops must be 1..255");

    /* inih would cut a long line and read the rest as a line of its own. */
    char longline[400], ys[251];
    memset(ys, 'y', 250);
    ys[250] = '\0';
    snprintf(longline, sizeof(longline), "[node]\nname = x\nname = %s\n", ys);
    expect_error(longline, "<string>:3: line is too long (at most 197 characters)");
    /* 197 characters still fit: the error is then about the value. */
    ys[197 - 7] = '\0';
    snprintf(longline, sizeof(longline), "[node]\nname = %s\n", ys);
    assert_int_equal(strlen(longline), 7 + 197 + 1);
    expect_error(longline, "<string>:2: name must be at most 32 bytes");
    memset(ys, 'y', 250);
    ys[198 - 7] = '\0';
    snprintf(longline, sizeof(longline), "[node]\nname = %s\n", ys);
    expect_error(longline, "<string>:2: line is too long (at most 197 characters)");
}

/* The pair at index i of dr is key = value, from line. */
static void expect_pair(const fe_config *c, const fe_config_driver *dr, size_t i, const char *key,
                        const char *value, int line)
{
    assert_true(i < dr->pair_count);
    assert_string_equal(fe_config_key(c, &dr->pairs[i]), key);
    assert_string_equal(fe_config_value(c, &dr->pairs[i]), value);
    assert_int_equal(dr->pairs[i].line, line);
}

/* [serial NAME] and [rfcomm]: kept as (key, value, line) for the drivers,
 * whatever the keys are. */
static void test_driver_sections(void **state)
{
    (void)state;
    fe_config c;
    char err[512];
    fe_config_defaults(&c);
    const char *text = "[node]\n"
                       "name = relay\n"
                       "[serial lora0]\n"
                       "path = /dev/ttyUSB0   ; the E32\n"
                       "profile = at\n"
                       "at_init = AT+NETWORKID=5\n"
                       "at_init = AT+BAND=868500000\n"
                       "[ serial\tcable-2.b ]\n"
                       "anything = goes here\n"
                       "[rfcomm]\n"
                       "\n"
                       "[udp]\n"
                       "port = 4800\n";
    assert_int_equal(fe_config_load_string(&c, text, err, sizeof(err)), 0);
    assert_string_equal(c.name, "relay");
    assert_int_equal(c.udp.port, 4800);
    assert_int_equal(c.driver_count, 3);

    const fe_config_driver *lora = &c.drivers[0];
    assert_int_equal(lora->kind, FE_CONFIG_SERIAL);
    assert_string_equal(lora->name, "lora0");
    assert_int_equal(lora->line, 3);
    assert_int_equal(lora->pair_count, 4);
    expect_pair(&c, lora, 0, "path", "/dev/ttyUSB0", 4);
    expect_pair(&c, lora, 1, "profile", "at", 5);
    expect_pair(&c, lora, 2, "at_init", "AT+NETWORKID=5", 6);
    expect_pair(&c, lora, 3, "at_init", "AT+BAND=868500000", 7);

    const fe_config_driver *cable = &c.drivers[1];
    assert_int_equal(cable->kind, FE_CONFIG_SERIAL);
    assert_string_equal(cable->name, "cable-2.b");
    assert_int_equal(cable->line, 8);
    assert_int_equal(cable->pair_count, 1);
    expect_pair(&c, cable, 0, "anything", "goes here", 9);

    /* No keys at all: still a section (inih alone would never report it). */
    const fe_config_driver *bt = &c.drivers[2];
    assert_int_equal(bt->kind, FE_CONFIG_RFCOMM);
    assert_string_equal(bt->name, "");
    assert_int_equal(bt->line, 10);
    assert_int_equal(bt->pair_count, 0);

    assert_ptr_equal(fe_config_driver_find(&c, FE_CONFIG_SERIAL, "cable-2.b"), cable);
    assert_ptr_equal(fe_config_driver_find(&c, FE_CONFIG_RFCOMM, NULL), bt);
    assert_null(fe_config_driver_find(&c, FE_CONFIG_SERIAL, "lora1"));

    /* A copy of the struct carries its strings along (offsets, not pointers). */
    fe_config *copy = malloc(sizeof(*copy));
    assert_non_null(copy);
    *copy = c;
    memset(&c, 0, sizeof(c));
    expect_pair(copy, &copy->drivers[0], 3, "at_init", "AT+BAND=868500000", 7);

    /* A second load adds to the sections; names stay unique across loads. */
    assert_int_equal(
        fe_config_load_string(copy, "[serial lora1]\npath = /dev/ttyS0\n", err, sizeof(err)), 0);
    assert_int_equal(copy->driver_count, 4);
    expect_pair(copy, &copy->drivers[3], 0, "path", "/dev/ttyS0", 2);
    assert_int_equal(fe_config_load_string(copy, "\n[serial lora0]\n", err, sizeof(err)), -1);
    assert_string_equal(err, "<string>:2: a second [serial lora0] section: names must be unique "
                             "(the first is on line 3)");
    assert_int_equal(copy->driver_count, 4);
    free(copy);

    /* inih reads an indented line after a key as more of its value, even
     * one that looks like a header: it must not start a section here
     * either. Indented at the start of a section, it is a header. */
    fe_config_defaults(&c);
    assert_int_equal(fe_config_load_string(&c,
                                           "[serial a]\npath = x\n  [serial b]\nbaud = 9600\n"
                                           "[node]\n  [serial c]\n",
                                           err, sizeof(err)),
                     0);
    assert_int_equal(c.driver_count, 2);
    assert_string_equal(c.drivers[0].name, "a");
    assert_int_equal(c.drivers[0].pair_count, 3);
    expect_pair(&c, &c.drivers[0], 1, "path", "[serial b]", 3);
    expect_pair(&c, &c.drivers[0], 2, "baud", "9600", 4);
    assert_string_equal(c.drivers[1].name, "c");
    assert_int_equal(c.drivers[1].line, 6);
}

static void test_driver_section_errors(void **state)
{
    (void)state;
    expect_error("[serial a]\npath = x\n[serial a]\n",
                 "<string>:3: a second [serial a] section: names must be unique (the first is "
                 "on line 1)");
    expect_error("[rfcomm]\n[node]\nhops = 2\n[rfcomm]\nchannel = 3\n",
                 "<string>:4: a second [rfcomm] section: there may be only one (the first is on "
                 "line 1)");
    expect_error("[serial]\npath = x\n",
                 "<string>:1: [serial] needs a name: [serial NAME], like [serial lora0]");
    expect_error("[rfcomm bt0]\n",
                 "<string>:1: [rfcomm] takes no name (there is at most one rfcomm section)");
    expect_error("[serial lora 0]\n", "<string>:1: serial section name 'lora 0' must be 1..31 "
                                      "characters of A-Z, a-z, 0-9, _ . -");
    expect_error("[serial lora/0]\n", "<string>:1: serial section name 'lora/0' must be 1..31 "
                                      "characters of A-Z, a-z, 0-9, _ . -");
    /* 31 characters fit, 32 do not. */
    char text[256];
    snprintf(text, sizeof(text), "[serial %031d]\n[serial %032d]\n", 1, 2);
    expect_error(text, "<string>:2: serial section name '00000000000000000000000000000002' must "
                       "be 1..31 characters of A-Z, a-z, 0-9, _ . -");
    /* A key before any section is still refused. */
    expect_error("path = x\n[serial a]\n",
                 "<string>:1: key 'path' is outside any section (put it under [node] or [udp])");

    /* Bounds: sections, keys per section, text. */
    static char many[FE_CONFIG_DRIVER_TEXT_MAX * 2];
    size_t n = 0;
    for (int i = 0; i < FE_CONFIG_DRIVERS_MAX + 1; i++)
        n += (size_t)snprintf(many + n, sizeof(many) - n, "[serial s%d]\n", i);
    expect_error(many, "<string>:17: too many [serial NAME] and [rfcomm] sections (at most 16)");

    n = (size_t)snprintf(many, sizeof(many), "[serial a]\n");
    for (int i = 0; i < FE_CONFIG_DRIVER_KEYS_MAX + 1; i++)
        n += (size_t)snprintf(many + n, sizeof(many) - n, "at_init = AT+X=%d\n", i);
    expect_error(many, "<string>:34: too many keys in one section (at most 32)");

    /* 16 sections x 32 lines of ~190 bytes: far more than the text space. */
    char value[180];
    memset(value, 'v', sizeof(value) - 1);
    value[sizeof(value) - 1] = '\0';
    n = 0;
    int line = 0, full_at = 0;
    size_t used = 0;
    for (int sec = 0; sec < FE_CONFIG_DRIVERS_MAX && !full_at; sec++) {
        n += (size_t)snprintf(many + n, sizeof(many) - n, "[serial s%d]\n", sec);
        line++;
        for (int k = 0; k < FE_CONFIG_DRIVER_KEYS_MAX && !full_at; k++) {
            n += (size_t)snprintf(many + n, sizeof(many) - n, "key = %s\n", value);
            line++;
            used += 4 + sizeof(value);
            if (used > FE_CONFIG_DRIVER_TEXT_MAX)
                full_at = line;
        }
    }
    assert_true(full_at > 0);
    char msg[256];
    snprintf(msg, sizeof(msg),
             "<string>:%d: the [serial NAME] and [rfcomm] sections hold too much text (at most "
             "%d bytes of keys and values)",
             full_at, FE_CONFIG_DRIVER_TEXT_MAX);
    expect_error(many, msg);
}

/* Sections from elsewhere than a file (ferryd's --serial and --rfcomm). */
static void test_driver_add(void **state)
{
    (void)state;
    fe_config c;
    char err[256];
    fe_config_defaults(&c);
    int a = fe_config_driver_add(&c, FE_CONFIG_SERIAL, "ttyUSB0", 0, err, sizeof(err));
    assert_int_equal(a, 0);
    assert_int_equal(fe_config_driver_add_pair(&c, 0, "path", "/dev/ttyUSB0", 0, err, sizeof(err)),
                     0);
    assert_int_equal(fe_config_driver_add(&c, FE_CONFIG_SERIAL, "ttyUSB0", 0, err, sizeof(err)),
                     -1);
    assert_string_equal(err, "a second [serial ttyUSB0] section: names must be unique");
    assert_int_equal(fe_config_driver_add(&c, FE_CONFIG_RFCOMM, "", 0, err, sizeof(err)), 1);
    assert_int_equal(fe_config_driver_add(&c, FE_CONFIG_RFCOMM, "", 0, err, sizeof(err)), -1);
    assert_int_equal(fe_config_driver_add_pair(&c, 1, "enabled", "true", 0, err, sizeof(err)), 0);
    assert_int_equal(fe_config_driver_add_pair(&c, 2, "path", "x", 0, err, sizeof(err)), -1);
    assert_string_equal(err, "no such section");
    assert_int_equal(fe_config_driver_add_pair(&c, 0, "", "x", 0, err, sizeof(err)), -1);
    assert_int_equal(
        fe_config_driver_add(&c, (enum fe_config_driver_kind)7, "x", 0, err, sizeof(err)), -1);
    assert_int_equal(c.driver_count, 2);
    expect_pair(&c, &c.drivers[0], 0, "path", "/dev/ttyUSB0", 0);
    expect_pair(&c, &c.drivers[1], 0, "enabled", "true", 0);
    /* A file loaded afterwards sees them: its [rfcomm] is a second one. */
    assert_int_equal(fe_config_load_string(&c, "[rfcomm]\n", err, sizeof(err)), -1);
    assert_string_equal(err, "<string>:1: a second [rfcomm] section: there may be only one");
}

static void test_files(void **state)
{
    (void)state;
    char path[128], err[512];
    fe_config c, before;
    fe_config_defaults(&c);
    before = c;

    snprintf(path, sizeof(path), "%s/missing.conf", tmpdir);
    errno = 0;
    assert_int_equal(fe_config_load(&c, path, err, sizeof(err)), -1);
    assert_int_equal(errno, ENOENT);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "No such file"));

    snprintf(path, sizeof(path), "%s/ferryd.conf", tmpdir);
    const char *good = "[node]\r\nhops = 9\r\n[udp]\r\nport = 4800\r\n"; /* CRLF too */
    write_file(path, good, strlen(good));
    assert_int_equal(fe_config_load(&c, path, err, sizeof(err)), 0);
    assert_int_equal(c.hops, 9);
    assert_int_equal(c.udp.port, 4800);

    const char *bad = "[node]\nhops = 9\n[udp]\nport = 99999\n";
    write_file(path, bad, strlen(bad));
    c = before;
    assert_int_equal(fe_config_load(&c, path, err, sizeof(err)), -1);
    char expect[256];
    snprintf(expect, sizeof(expect), "%s:4: port must be 1..65535", path);
    assert_string_equal(err, expect);
    assert_memory_equal(&c, &before, sizeof(c));

    /* A NUL byte in the middle of a line. */
    const char nul[] = "[node]\nhops = 9\nname = a\0b\n";
    write_file(path, nul, sizeof(nul) - 1);
    assert_int_equal(fe_config_load(&c, path, err, sizeof(err)), -1);
    snprintf(expect, sizeof(expect), "%s:3: line contains a NUL byte (is this a text file?)", path);
    assert_string_equal(err, expect);

    /* A directory is not a config file. */
    assert_int_equal(fe_config_load(&c, tmpdir, err, sizeof(err)), -1);
    assert_non_null(strstr(err, tmpdir));

    /* Over the size limit. */
    size_t big = FE_CONFIG_FILE_MAX + 10;
    char *huge = malloc(big);
    assert_non_null(huge);
    memset(huge, '\n', big);
    write_file(path, huge, big);
    free(huge);
    assert_int_equal(fe_config_load(&c, path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "larger than"));
    assert_memory_equal(&c, &before, sizeof(c));
}

/* Binary garbage: always an error with a line number, never a crash. */
static void test_garbage_files(void **state)
{
    (void)state;
    char path[128], err[512], prefix[160];
    snprintf(path, sizeof(path), "%s/garbage.conf", tmpdir);
    snprintf(prefix, sizeof(prefix), "%s:", path);
    uint64_t x = 0x9e3779b97f4a7c15ull; /* fixed seed: the same bytes every run */
    static uint8_t buf[8192];
    for (int round = 0; round < 200; round++) {
        size_t len = 1 + (size_t)(round * 41) % sizeof(buf);
        for (size_t i = 0; i < len; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf[i] = (uint8_t)x;
            if (round % 2 && buf[i] == 0)
                buf[i] = '='; /* half the rounds without NUL bytes */
        }
        buf[0] = 0xff; /* not a valid first line of any config */
        write_file(path, buf, len);
        fe_config c;
        fe_config_defaults(&c);
        err[0] = '\0';
        assert_int_equal(fe_config_load(&c, path, err, sizeof(err)), -1);
        assert_memory_equal(err, prefix, strlen(prefix));
        long line = strtol(err + strlen(prefix), NULL, 10);
        assert_true(line >= 1);
        for (const char *p = err; *p; p++)
            assert_true((unsigned char)*p >= 0x20 && *p != 0x7f); /* printable, one line */
    }
}

static void test_finish_socket_too_long(void **state)
{
    (void)state;
    fe_config c;
    fe_config_defaults(&c);
    memset(c.data_dir, 'd', 100);
    c.data_dir[0] = '/';
    c.data_dir[100] = '\0';
    char err[512];
    assert_int_equal(fe_config_finish(&c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "too long"));
    assert_string_equal(c.socket, "");
    /* With an explicit socket it is fine. */
    memcpy(c.socket, "/run/f.sock", 12);
    assert_int_equal(fe_config_finish(&c, err, sizeof(err)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),         cmocka_unit_test(test_defaults_from_environment),
        cmocka_unit_test(test_every_key),        cmocka_unit_test(test_booleans),
        cmocka_unit_test(test_durations),        cmocka_unit_test(test_value_errors),
        cmocka_unit_test(test_structure_errors), cmocka_unit_test(test_files),
        cmocka_unit_test(test_garbage_files),    cmocka_unit_test(test_finish_socket_too_long),
        cmocka_unit_test(test_driver_sections),  cmocka_unit_test(test_driver_section_errors),
        cmocka_unit_test(test_driver_add),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
