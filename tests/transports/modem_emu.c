/* ferry-modem-emu: emulated radio modems on pseudo-terminals, for tests.
 *
 * Creates N pty pairs and a symlink DIR/modemI to each slave, then plays a
 * radio modem on each master: the program under test opens DIR/modemI as
 * its serial port. Modems are joined by an emulated "air" with a loss
 * probability, a fixed delay, an air bit rate and half-duplex radios (a
 * modem that is transmitting hears nothing). Which modem hears which is set
 * by --link (default: everyone hears everyone).
 *
 * Profiles (what the modem speaks on its serial side):
 *   at           REYAX RYLR-style AT lines: AT, AT+SEND=a,n,data (+OK, then
 *                the data goes on air; +ERR=13 over 240 characters, +ERR=5
 *                on a length mismatch, +ERR=17 while still transmitting),
 *                AT+ADDRESS=n / AT+ADDRESS?, other AT+X=... answered +OK;
 *                receivers print +RCV=<from>,<n>,<data>,<rssi>,<snr>. Modem
 *                I has address I+1; AT+SEND to 0 is broadcast.
 *   transparent  bytes in, bytes out: a packet goes on air when the buffer
 *                holds --subpacket bytes or the host paused for --gap ms.
 *
 * Usage: ferry-modem-emu --dir DIR [--modems N] [--profile at|transparent]
 *          [--link I-J]... [--loss P] [--delay MS] [--air-rate BPS]
 *          [--subpacket N] [--gap MS] [--seed S] [--max-seconds S]
 * When the links are ready it creates DIR/ready. It stops on SIGTERM or
 * SIGINT, when its parent exits, or after --max-seconds (default 600), and
 * prints its counters to stderr. Test-only: not installed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define MODEMS_MAX 16
#define LINE_MAX_AT 300 /* longest AT line the modem keeps */
#define BUF_MAX 1024    /* transparent: module input buffer */
#define PACKET_MAX 300  /* bytes of one packet on air */
#define FLIGHT_MAX 4096 /* packets in the air at once */
#define AT_DATA_MAX 240
#define AT_AIR_OVERHEAD 8
#define TX_HISTORY 8 /* transmissions remembered per modem for half-duplex */

enum profile { P_AT, P_TRANSPARENT };

typedef struct modem {
    int master, slave;
    char slave_name[64];
    unsigned addr;
    uint64_t busy_until;           /* transmitting until then */
    uint64_t tx_iv[TX_HISTORY][2]; /* recent transmissions: start, end */
    size_t tx_next;
    char line[LINE_MAX_AT + 2];
    size_t line_len;
    int line_overlong;
    uint8_t buf[BUF_MAX]; /* transparent */
    size_t buf_len;
    uint64_t last_in_ms;
} modem;

typedef struct flight {
    int used;
    int from, to;
    uint64_t start_ms, end_ms, deliver_ms;
    unsigned src_addr, dest_addr;
    size_t len;
    uint8_t data[PACKET_MAX];
} flight;

static modem modems[MODEMS_MAX];
static flight flights[FLIGHT_MAX];
static int hears[MODEMS_MAX][MODEMS_MAX];
static int n_modems = 2;
static enum profile profile = P_AT;
static double loss;
static uint64_t delay_ms = 5, gap_ms = 5;
static uint32_t air_bps = 19200;
static size_t subpacket = 58;
static uint64_t rng_state = 1;
static volatile sig_atomic_t stop;
static struct {
    unsigned long sent, delivered, lost, deaf, busy, overflow;
} count;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static double uniform(void)
{
    /* xorshift64*: reproducible with --seed */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void to_host(modem *m, const void *p, size_t len)
{
    const uint8_t *b = p;
    while (len > 0) {
        ssize_t w = write(m->master, b, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            count.overflow++; /* nobody reads the port: the bytes are lost */
            return;
        }
        b += w;
        len -= (size_t)w;
    }
}

static void say(modem *m, const char *text)
{
    to_host(m, text, strlen(text));
    to_host(m, "\r\n", 2);
}

static uint64_t airtime_ms(size_t len)
{
    return ((uint64_t)len * 8u * 1000u + air_bps - 1) / air_bps;
}

/* Put a packet on air from modem i. 0, or -1 when the radio is busy. */
static int transmit(int i, unsigned dest, const uint8_t *data, size_t len, size_t air_len)
{
    modem *m = &modems[i];
    uint64_t now = now_ms();
    if (now < m->busy_until)
        return -1;
    uint64_t end = now + airtime_ms(air_len);
    m->busy_until = end;
    m->tx_iv[m->tx_next][0] = now;
    m->tx_iv[m->tx_next][1] = end;
    m->tx_next = (m->tx_next + 1) % TX_HISTORY;
    count.sent++;
    for (int j = 0; j < n_modems; j++) {
        if (j == i || !hears[j][i])
            continue;
        if (uniform() < loss) {
            count.lost++;
            continue;
        }
        flight *f = NULL;
        for (size_t k = 0; k < FLIGHT_MAX && f == NULL; k++)
            if (!flights[k].used)
                f = &flights[k];
        if (f == NULL) {
            count.lost++;
            continue;
        }
        f->used = 1;
        f->from = i;
        f->to = j;
        f->start_ms = now;
        f->end_ms = end;
        f->deliver_ms = end + delay_ms;
        f->src_addr = m->addr;
        f->dest_addr = dest;
        f->len = len;
        memcpy(f->data, data, len);
    }
    return 0;
}

/* Did modem m transmit at any time in [start, end]? */
static int was_transmitting(const modem *m, uint64_t start, uint64_t end)
{
    for (size_t k = 0; k < TX_HISTORY; k++) {
        const uint64_t *iv = m->tx_iv[k];
        if (iv[1] != 0 && iv[0] < end && iv[1] > start)
            return 1;
    }
    return 0;
}

static void deliver(flight *f)
{
    modem *r = &modems[f->to];
    f->used = 0;
    if (was_transmitting(r, f->start_ms, f->end_ms)) {
        count.deaf++; /* half-duplex: it was sending and heard nothing */
        return;
    }
    count.delivered++;
    if (profile == P_TRANSPARENT) {
        to_host(r, f->data, f->len);
        return;
    }
    if (f->dest_addr != 0 && f->dest_addr != r->addr)
        return;
    char head[64];
    int n = snprintf(head, sizeof(head), "+RCV=%u,%zu,", f->src_addr, f->len);
    to_host(r, head, (size_t)n);
    to_host(r, f->data, f->len);
    to_host(r, ",-40,10\r\n", 9);
}

/* Parse "AT+SEND=<addr>,<len>,<data>". */
static void at_send(int i, const char *args, size_t n)
{
    modem *m = &modems[i];
    char *end = NULL;
    unsigned long addr = strtoul(args, &end, 10);
    if (end == args || *end != ',' || addr > 65535) {
        say(m, "+ERR=4");
        return;
    }
    const char *p = end + 1;
    unsigned long len = strtoul(p, &end, 10);
    if (end == p || *end != ',') {
        say(m, "+ERR=4");
        return;
    }
    const char *data = end + 1;
    size_t have = n - (size_t)(data - args);
    if (len > AT_DATA_MAX) {
        say(m, "+ERR=13");
        return;
    }
    if (len == 0 || have != len) {
        say(m, "+ERR=5");
        return;
    }
    if (transmit(i, (unsigned)addr, (const uint8_t *)data, len, len + AT_AIR_OVERHEAD) != 0) {
        count.busy++;
        say(m, "+ERR=17");
        return;
    }
    say(m, "+OK");
}

static void at_line(int i, const char *s, size_t n)
{
    modem *m = &modems[i];
    if (n == 0)
        return;
    if (n < 2 || s[0] != 'A' || s[1] != 'T') {
        say(m, "+ERR=2");
        return;
    }
    if (n == 2) {
        say(m, "+OK");
        return;
    }
    if (strncmp(s, "AT+SEND=", 8) == 0) {
        at_send(i, s + 8, n - 8);
        return;
    }
    if (strncmp(s, "AT+ADDRESS?", 11) == 0) {
        char out[32];
        snprintf(out, sizeof(out), "+ADDRESS=%u", m->addr);
        say(m, out);
        return;
    }
    if (strncmp(s, "AT+ADDRESS=", 11) == 0) {
        char *end = NULL;
        unsigned long a = strtoul(s + 11, &end, 10);
        if (end == s + 11 || a > 65535) {
            say(m, "+ERR=4");
            return;
        }
        m->addr = (unsigned)a;
        say(m, "+OK");
        return;
    }
    if (strncmp(s, "AT+", 3) == 0 && memchr(s, '=', n) != NULL) {
        say(m, "+OK"); /* NETWORKID, BAND, PARAMETER ...: accepted, no effect */
        return;
    }
    say(m, "+ERR=4");
}

static void from_host(int i, const uint8_t *b, size_t len)
{
    modem *m = &modems[i];
    m->last_in_ms = now_ms();
    if (profile == P_TRANSPARENT) {
        for (size_t k = 0; k < len; k++) {
            if (m->buf_len == BUF_MAX) {
                count.overflow++;
                continue;
            }
            m->buf[m->buf_len++] = b[k];
        }
        return;
    }
    for (size_t k = 0; k < len; k++) {
        char c = (char)b[k];
        if (c == '\n') {
            size_t n = m->line_len;
            if (n > 0 && m->line[n - 1] == '\r')
                n--;
            m->line[n] = '\0'; /* the parsers below stop at it */
            if (m->line_overlong)
                say(m, "+ERR=1");
            else
                at_line(i, m->line, n);
            m->line_len = 0;
            m->line_overlong = 0;
        } else if (m->line_len < LINE_MAX_AT + 1) {
            m->line[m->line_len++] = c;
        } else {
            m->line_overlong = 1;
        }
    }
}

/* Transparent modules send a full sub-packet at once, the rest after a pause. */
static void flush_transparent(int i, uint64_t now)
{
    modem *m = &modems[i];
    while (m->buf_len > 0) {
        size_t n = m->buf_len < subpacket ? m->buf_len : subpacket;
        if (n < subpacket && now - m->last_in_ms < gap_ms)
            return;
        if (transmit(i, 0, m->buf, n, n) != 0)
            return; /* still on air: the buffer waits */
        memmove(m->buf, m->buf + n, m->buf_len - n);
        m->buf_len -= n;
    }
}

/* A whole decimal number in [lo, hi]. 0 or -1. */
static int parse_u64(const char *v, uint64_t lo, uint64_t hi, uint64_t *out)
{
    if (v == NULL || *v < '0' || *v > '9')
        return -1;
    errno = 0;
    char *end = NULL;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno != 0 || *end != '\0' || x < lo || x > hi)
        return -1;
    *out = x;
    return 0;
}

static int parse_args(int argc, char **argv, const char **dir, uint64_t *max_s)
{
    int links = 0;
    for (int k = 1; k < argc; k += 2) {
        const char *a = argv[k];
        const char *v = k + 1 < argc ? argv[k + 1] : NULL;
        uint64_t u = 0;
        if (v == NULL)
            return -1;
        if (strcmp(a, "--dir") == 0) {
            *dir = v;
        } else if (strcmp(a, "--modems") == 0) {
            if (parse_u64(v, 1, MODEMS_MAX, &u) != 0)
                return -1;
            n_modems = (int)u;
        } else if (strcmp(a, "--profile") == 0) {
            if (strcmp(v, "at") == 0)
                profile = P_AT;
            else if (strcmp(v, "transparent") == 0)
                profile = P_TRANSPARENT;
            else
                return -1;
        } else if (strcmp(a, "--link") == 0) {
            char buf[16];
            uint64_t x, y;
            const char *dash = strchr(v, '-');
            if (dash == NULL || (size_t)(dash - v) >= sizeof(buf))
                return -1;
            memcpy(buf, v, (size_t)(dash - v));
            buf[dash - v] = '\0';
            if (parse_u64(buf, 0, MODEMS_MAX - 1, &x) != 0 ||
                parse_u64(dash + 1, 0, MODEMS_MAX - 1, &y) != 0 || x == y)
                return -1;
            hears[x][y] = hears[y][x] = 1;
            links++;
        } else if (strcmp(a, "--loss") == 0) {
            errno = 0;
            char *end = NULL;
            loss = strtod(v, &end);
            if (errno != 0 || end == v || *end != '\0' || !(loss >= 0 && loss <= 1))
                return -1;
        } else if (strcmp(a, "--delay") == 0) {
            if (parse_u64(v, 0, 60000, &delay_ms) != 0)
                return -1;
        } else if (strcmp(a, "--air-rate") == 0) {
            if (parse_u64(v, 1, 10000000, &u) != 0)
                return -1;
            air_bps = (uint32_t)u;
        } else if (strcmp(a, "--subpacket") == 0) {
            if (parse_u64(v, 1, PACKET_MAX, &u) != 0)
                return -1;
            subpacket = (size_t)u;
        } else if (strcmp(a, "--gap") == 0) {
            if (parse_u64(v, 0, 10000, &gap_ms) != 0)
                return -1;
        } else if (strcmp(a, "--seed") == 0) {
            if (parse_u64(v, 0, UINT64_MAX, &u) != 0)
                return -1;
            rng_state = u | 1u;
        } else if (strcmp(a, "--max-seconds") == 0) {
            if (parse_u64(v, 1, 86400, max_s) != 0)
                return -1;
        } else {
            return -1;
        }
    }
    if (*dir == NULL)
        return -1;
    if (links == 0)
        for (int x = 0; x < n_modems; x++)
            for (int y = 0; y < n_modems; y++)
                hears[x][y] = x != y;
    return 0;
}

static int setup(const char *dir)
{
    struct termios raw;
    memset(&raw, 0, sizeof(raw));
    cfmakeraw(&raw);
    for (int i = 0; i < n_modems; i++) {
        modem *m = &modems[i];
        if (openpty(&m->master, &m->slave, m->slave_name, &raw, NULL) != 0) {
            perror("ferry-modem-emu: openpty");
            return -1;
        }
        fcntl(m->master, F_SETFL, fcntl(m->master, F_GETFL) | O_NONBLOCK);
        m->addr = (unsigned)i + 1;
        char link[512];
        snprintf(link, sizeof(link), "%s/modem%d", dir, i);
        unlink(link);
        if (symlink(m->slave_name, link) != 0) {
            perror("ferry-modem-emu: symlink");
            return -1;
        }
    }
    char ready[512];
    snprintf(ready, sizeof(ready), "%s/ready", dir);
    FILE *f = fopen(ready, "w");
    if (f == NULL) {
        perror("ferry-modem-emu: ready file");
        return -1;
    }
    fprintf(f, "%d\n", (int)getpid());
    fclose(f);
    return 0;
}

int main(int argc, char **argv)
{
    const char *dir = NULL;
    uint64_t max_s = 600;
    if (parse_args(argc, argv, &dir, &max_s) != 0) {
        fprintf(stderr, "usage: ferry-modem-emu --dir DIR [--modems N] [--profile at|transparent] "
                        "[--link I-J]... [--loss P] [--delay MS] [--air-rate BPS] "
                        "[--subpacket N] [--gap MS] [--seed S] [--max-seconds S]\n");
        return 2;
    }
    pid_t parent = getppid();
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    if (getppid() != parent)
        return 0;
    if (setup(dir) != 0)
        return 1;
    uint64_t deadline = now_ms() + max_s * 1000u;
    struct pollfd pfd[MODEMS_MAX];
    while (!stop && now_ms() < deadline) {
        uint64_t now = now_ms();
        uint64_t next = now + 50;
        for (size_t k = 0; k < FLIGHT_MAX; k++) {
            if (!flights[k].used)
                continue;
            if (flights[k].deliver_ms <= now)
                deliver(&flights[k]);
            else if (flights[k].deliver_ms < next)
                next = flights[k].deliver_ms;
        }
        if (profile == P_TRANSPARENT) {
            for (int i = 0; i < n_modems; i++) {
                flush_transparent(i, now);
                if (modems[i].buf_len > 0 && now + 1 < next)
                    next = now + 1;
            }
        }
        for (int i = 0; i < n_modems; i++)
            pfd[i] = (struct pollfd){.fd = modems[i].master, .events = POLLIN};
        int wait = next > now ? (int)(next - now) : 0;
        int r = poll(pfd, (nfds_t)n_modems, wait);
        if (r < 0 && errno != EINTR)
            break;
        for (int i = 0; r > 0 && i < n_modems; i++) {
            if (!(pfd[i].revents & POLLIN))
                continue;
            uint8_t b[4096];
            ssize_t n = read(modems[i].master, b, sizeof(b));
            if (n > 0)
                from_host(i, b, (size_t)n);
        }
    }
    fprintf(stderr,
            "ferry-modem-emu: %lu packets sent, %lu delivered, %lu lost, %lu missed by busy "
            "radios, %lu refused busy, %lu overflows\n",
            count.sent, count.delivered, count.lost, count.deaf, count.busy, count.overflow);
    char path[512];
    for (int i = 0; i < n_modems; i++) {
        snprintf(path, sizeof(path), "%s/modem%d", dir, i);
        unlink(path);
    }
    snprintf(path, sizeof(path), "%s/ready", dir);
    unlink(path);
    return 0;
}
