/* Serial radio modem transport: see serial.h for what it does; this file
 * says how.
 *
 * State: the port is either open (fd >= 0, registered in the epoll set ep)
 * or closed with a reopen time. One frame at a time is in flight: encoded
 * into tx[], written chunk by chunk (one chunk per radio packet for the
 * transparent profile, else the whole frame), each chunk followed by a
 * pause for its time on the UART and on air. The AT profile also waits for
 * the module's +OK or +ERR after each command.
 *
 * Reading: libserialport opens ttys with VMIN = 0, so a read of 0 bytes
 * means "nothing now", not end of file. A vanished device shows up as
 * EPOLLHUP/EPOLLERR on the fd or as a failed read or write. */
#include "serial.h"

#include <ctype.h>
#include <errno.h>
#include <libserialport.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "kiss.h"
#include "stream.h"

#define TX_BUF_MAX FE_STREAM_ENCODED_MAX(FE_FRAME_MAX)
_Static_assert(FE_KISS_ENCODED_MAX(FE_FRAME_MAX) <= TX_BUF_MAX, "tx buffer holds a KISS frame");
_Static_assert(FE_AT_SEND_LINE_MAX + 1 <= TX_BUF_MAX, "tx buffer holds an AT+SEND line");

#define RX_CHUNK 4096
#define NEVER UINT64_MAX

enum at_phase { AT_INIT = 0, AT_READY = 1 };

typedef struct serial_state {
    fe_serial_config cfg;
    fe_transport *t;
    size_t mtu;

    /* port */
    struct sp_port *port;
    int fd;                       /* -1 when closed */
    int ep;                       /* epoll set; -1 before open() */
    int started;                  /* between open() and close() */
    char dev[FE_SERIAL_PATH_MAX]; /* device of the current or last open */
    uint64_t reopen_at;           /* when closed: next attempt; 0 = at the next call */
    uint64_t backoff_ms;          /* delay before the attempt after the next failure */
    uint64_t opened_at;
    int opened_at_unknown; /* opened in open(), which has no clock */
    int lost;              /* the port was open and went away */
    int failing_logged;    /* the current run of failed opens was logged */
    uint64_t failed_attempts;
    uint64_t down_since;

    /* receive */
    fe_stream_dec hdlc;
    fe_kiss_dec kiss;
    fe_at_dec at;
    uint8_t rx[RX_CHUNK];

    /* transmit */
    fe_airtime_queue q;
    fe_airtime_budget budget;
    int waiting_budget; /* counted once per wait */
    int tx_active;
    size_t frame_len; /* raw bytes of the frame in flight */
    uint8_t frame[FE_FRAME_MAX];
    unsigned frame_attempts; /* at: writes of this frame so far */
    int retry_frame;         /* at: the modem was busy, send frame[] again */
    uint64_t now_ms;         /* the latest time a caller gave */
    uint8_t tx[TX_BUF_MAX];
    uint8_t scratch[TX_BUF_MAX]; /* encodings that only measure */
    size_t tx_len, tx_off, chunk_start;
    uint64_t next_write_ms; /* tx_active: when the next chunk may go */
    uint64_t idle_at;       /* the radio is free again */

    /* at profile */
    enum at_phase at_phase;
    size_t at_init_next;
    int at_waiting;
    uint64_t at_deadline;
    uint32_t at_err_logged; /* bit per +ERR code < 32 already logged at warn */

    fe_serial_stats st;
} serial_state;

static serial_state *state_of(const fe_transport *t)
{
    return (serial_state *)t->state;
}

/* --- small helpers --- */

static void slog(serial_state *s, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void slog(serial_state *s, int level, const char *fmt, ...)
{
    char msg[512];
    const char *name = s->t->label[0] ? s->t->label : (s->cfg.path[0] ? s->cfg.path : "usb");
    int n = snprintf(msg, sizeof(msg), "serial %s: ", name);
    if (n < 0 || (size_t)n >= sizeof(msg))
        n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
    va_end(ap);
    if (s->cfg.log != NULL)
        s->cfg.log(s->cfg.log_ctx, level, msg);
    else
        fprintf(stderr, "%s\n", msg);
}

static void set_err(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t err_len, const char *fmt, ...)
{
    if (err == NULL || err_len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

/* Copy as much of src as fits, always NUL-terminated (labels for logs). */
static void copy_trunc(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static uint64_t us_to_ms_up(uint64_t us)
{
    return (us + 999u) / 1000u;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

/* "8N1" style letter of a parity setting. */
static char parity_letter(enum fe_serial_parity p)
{
    static const char letters[] = "NOEMS";
    return (unsigned)p < sizeof(letters) - 1 ? letters[p] : '?';
}

const char *fe_serial_profile_name(enum fe_serial_profile p)
{
    switch (p) {
    case FE_SERIAL_HDLC:
        return "hdlc";
    case FE_SERIAL_KISS:
        return "kiss";
    case FE_SERIAL_TRANSPARENT:
        return "transparent";
    case FE_SERIAL_AT:
        return "at";
    }
    return "?";
}

/* --- configuration --- */

void fe_serial_config_default(fe_serial_config *cfg)
{
    if (cfg == NULL)
        return;
    memset(cfg, 0, sizeof(*cfg));
    cfg->baud = FE_SERIAL_BAUD_DEFAULT;
    cfg->data_bits = 8;
    cfg->parity = FE_SERIAL_PARITY_NONE;
    cfg->stop_bits = 1;
    cfg->flow = FE_SERIAL_FLOW_NONE;
    cfg->profile = FE_SERIAL_HDLC;
    cfg->duty_window_ms = FE_AIRTIME_WINDOW_DEFAULT_MS;
    cfg->queue_frames = FE_SERIAL_QUEUE_DEFAULT;
    fe_lora_params_default(&cfg->lora);
}

static size_t subpacket_of(const fe_serial_config *cfg)
{
    return cfg->subpacket ? cfg->subpacket : FE_SERIAL_SUBPACKET_DEFAULT;
}

size_t fe_serial_config_mtu(const fe_serial_config *cfg)
{
    if (cfg == NULL)
        return 0;
    if (cfg->mtu != 0)
        return cfg->mtu;
    size_t mtu;
    switch (cfg->profile) {
    case FE_SERIAL_AT:
        mtu = FE_AT_FRAME_MAX;
        break;
    case FE_SERIAL_TRANSPARENT: {
        /* Two flags and the FCS, plus room for the escapes a frame of random
         * bytes needs (2 in 256 bytes on average): a frame then fits one
         * sub-packet nearly always, and spills into a second one otherwise. */
        size_t sp = subpacket_of(cfg);
        size_t overhead = 2 + FE_STREAM_FCS_BYTES + (sp + 15) / 16;
        mtu = sp > overhead ? sp - overhead : 0;
        break;
    }
    default:
        mtu = FE_SERIAL_MTU_DEFAULT;
        break;
    }
    if (mtu < FE_MTU_MIN)
        mtu = FE_MTU_MIN;
    return mtu;
}

/* Case-insensitive equality. */
static int eq(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0;
}

/* An unsigned decimal with optional fraction: "62.5" -> mant 625, frac 1.
 * Returns the position after it, or NULL. */
static const char *parse_decimal(const char *s, uint64_t *mant, unsigned *frac)
{
    uint64_t m = 0;
    unsigned f = 0, digits = 0;
    int dot = 0;
    for (; *s; s++) {
        if (*s == '.' && !dot) {
            dot = 1;
            continue;
        }
        if (*s < '0' || *s > '9')
            break;
        if (m > (UINT64_MAX - 9) / 10 || digits >= 18)
            return NULL;
        m = m * 10 + (uint64_t)(*s - '0');
        digits++;
        if (dot)
            f++;
    }
    if (digits == 0)
        return NULL;
    *mant = m;
    *frac = f;
    return s;
}

/* mant / 10^frac * mul, exact integers only. 0 or -1. */
static int scale_value(uint64_t mant, unsigned frac, uint64_t mul, uint64_t *out)
{
    uint64_t div = 1;
    for (unsigned i = 0; i < frac; i++)
        div *= 10;
    if (mul != 0 && mant > UINT64_MAX / mul)
        return -1;
    uint64_t v = mant * mul;
    if (v % div != 0)
        return -1;
    *out = v / div;
    return 0;
}

static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    if (s == NULL || *s == '\0' || *s == '-' || *s == '+' || isspace((unsigned char)*s))
        return -1;
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_bool(const char *s, int *out)
{
    if (eq(s, "true") || eq(s, "yes") || eq(s, "on") || eq(s, "1")) {
        *out = 1;
        return 0;
    }
    if (eq(s, "false") || eq(s, "no") || eq(s, "off") || eq(s, "0")) {
        *out = 0;
        return 0;
    }
    return -1;
}

/* "1a86:7523" */
static int parse_usb(const char *s, uint16_t *vid, uint16_t *pid)
{
    unsigned v[2];
    for (int k = 0; k < 2; k++) {
        size_t n = 0;
        unsigned x = 0;
        while (n < 4 && isxdigit((unsigned char)s[n])) {
            char c = (char)tolower((unsigned char)s[n]);
            x = x * 16 + (unsigned)(c <= '9' ? c - '0' : c - 'a' + 10);
            n++;
        }
        if (n == 0)
            return -1;
        s += n;
        if (k == 0 && *s++ != ':')
            return -1;
        v[k] = x;
    }
    if (*s != '\0')
        return -1;
    *vid = (uint16_t)v[0];
    *pid = (uint16_t)v[1];
    return 0;
}

/* "2400", "2.4k", "62.5k" bits per second. */
static int parse_rate(const char *s, uint32_t *out)
{
    uint64_t mant, v;
    unsigned frac;
    const char *p = parse_decimal(s, &mant, &frac);
    if (p == NULL)
        return -1;
    uint64_t mul = 1;
    if (eq(p, "k") || eq(p, "kbps") || eq(p, "kb/s"))
        mul = 1000;
    else if (!(*p == '\0' || eq(p, "bps") || eq(p, "b/s")))
        return -1;
    if (scale_value(mant, frac, mul, &v) != 0 || v == 0 || v > 10000000u)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

/* "125k", "125khz", "125000", "7.8k"; a bare number under 1000 is in kHz. */
static int parse_bw(const char *s, uint32_t *out)
{
    uint64_t mant, v;
    unsigned frac;
    const char *p = parse_decimal(s, &mant, &frac);
    if (p == NULL)
        return -1;
    uint64_t mul;
    if (eq(p, "k") || eq(p, "khz"))
        mul = 1000;
    else if (eq(p, "hz"))
        mul = 1;
    else if (*p == '\0')
        mul = (frac > 0 || mant < 1000) ? 1000 : 1;
    else
        return -1;
    if (scale_value(mant, frac, mul, &v) != 0)
        return -1;
    /* 7.8, 10.4, 15.6, 20.8, 41.7 kHz are rounded names of 7812.5 Hz ... */
    if (v < FE_LORA_BW_MIN_HZ || v > FE_LORA_BW_MAX_HZ)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

/* "1%", "0.1%", "10 %", "off" -> parts per million. */
static int parse_duty(const char *s, uint32_t *out)
{
    if (eq(s, "off") || eq(s, "none") || eq(s, "0")) {
        *out = 0;
        return 0;
    }
    uint64_t mant, v;
    unsigned frac;
    const char *p = parse_decimal(s, &mant, &frac);
    if (p == NULL)
        return -1;
    while (*p == ' ')
        p++;
    if (!(*p == '\0' || (p[0] == '%' && p[1] == '\0')))
        return -1;
    if (frac > 4 || scale_value(mant, frac, 10000, &v) != 0 || v > FE_AIRTIME_PPM)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

/* "1h", "30m", "3600s", "3600" (seconds) -> ms, 1 s .. 7 d. */
static int parse_window(const char *s, uint64_t *out)
{
    uint64_t mant, v;
    unsigned frac;
    const char *p = parse_decimal(s, &mant, &frac);
    if (p == NULL || frac != 0)
        return -1;
    uint64_t mul;
    if (*p == '\0' || eq(p, "s"))
        mul = 1000;
    else if (eq(p, "m"))
        mul = 60000;
    else if (eq(p, "h"))
        mul = 3600000;
    else if (eq(p, "d"))
        mul = 86400000;
    else
        return -1;
    if (scale_value(mant, 0, mul, &v) != 0 || v < 1000 || v > 7ull * 86400000u)
        return -1;
    *out = v;
    return 0;
}

static int copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap);
    if (n == 0 || n >= cap)
        return -1;
    memcpy(dst, src, n + 1);
    return 0;
}

int fe_serial_config_set(fe_serial_config *cfg, const char *key, const char *value, char *err,
                         size_t err_len)
{
    if (cfg == NULL || key == NULL || value == NULL) {
        set_err(err, err_len, "missing key or value");
        return -1;
    }
    fe_serial_config c = *cfg; /* changed only on success */
    uint64_t u;
    int b;
    int ok = 0;
    if (eq(key, "path")) {
        ok = copy_str(c.path, sizeof(c.path), value) == 0;
    } else if (eq(key, "usb")) {
        ok = parse_usb(value, &c.usb_vid, &c.usb_pid) == 0;
        c.usb_match = ok;
    } else if (eq(key, "usb_serial")) {
        ok = copy_str(c.usb_serial, sizeof(c.usb_serial), value) == 0;
    } else if (eq(key, "baud")) {
        ok = parse_u64(value, 50, 4000000, &u) == 0;
        c.baud = (uint32_t)u;
    } else if (eq(key, "data_bits")) {
        ok = parse_u64(value, 5, 8, &u) == 0;
        c.data_bits = (uint8_t)u;
    } else if (eq(key, "parity")) {
        ok = 1;
        if (eq(value, "none") || eq(value, "n"))
            c.parity = FE_SERIAL_PARITY_NONE;
        else if (eq(value, "odd") || eq(value, "o"))
            c.parity = FE_SERIAL_PARITY_ODD;
        else if (eq(value, "even") || eq(value, "e"))
            c.parity = FE_SERIAL_PARITY_EVEN;
        else if (eq(value, "mark") || eq(value, "m"))
            c.parity = FE_SERIAL_PARITY_MARK;
        else if (eq(value, "space") || eq(value, "s"))
            c.parity = FE_SERIAL_PARITY_SPACE;
        else
            ok = 0;
    } else if (eq(key, "stop_bits")) {
        ok = parse_u64(value, 1, 2, &u) == 0;
        c.stop_bits = (uint8_t)u;
    } else if (eq(key, "flow")) {
        ok = 1;
        if (eq(value, "none"))
            c.flow = FE_SERIAL_FLOW_NONE;
        else if (eq(value, "rtscts"))
            c.flow = FE_SERIAL_FLOW_RTSCTS;
        else if (eq(value, "xonxoff"))
            c.flow = FE_SERIAL_FLOW_XONXOFF;
        else if (eq(value, "dtrdsr"))
            c.flow = FE_SERIAL_FLOW_DTRDSR;
        else
            ok = 0;
    } else if (eq(key, "profile")) {
        ok = 1;
        if (eq(value, "hdlc"))
            c.profile = FE_SERIAL_HDLC;
        else if (eq(value, "kiss"))
            c.profile = FE_SERIAL_KISS;
        else if (eq(value, "transparent"))
            c.profile = FE_SERIAL_TRANSPARENT;
        else if (eq(value, "at"))
            c.profile = FE_SERIAL_AT;
        else
            ok = 0;
    } else if (eq(key, "subpacket")) {
        ok = parse_u64(value, FE_SERIAL_SUBPACKET_MIN, FE_SERIAL_SUBPACKET_MAX, &u) == 0;
        c.subpacket = (size_t)u;
    } else if (eq(key, "air_rate")) {
        ok = parse_rate(value, &c.air_rate_bps) == 0;
    } else if (eq(key, "sf")) {
        ok = parse_u64(value, FE_LORA_SF_MIN, FE_LORA_SF_MAX, &u) == 0;
        c.lora.sf = (uint8_t)u;
        c.lora_set = 1;
    } else if (eq(key, "bw")) {
        ok = parse_bw(value, &c.lora.bw_hz) == 0;
        c.lora_set = 1;
    } else if (eq(key, "cr")) {
        /* "4/5".."4/8", or 5..8, or the 1..4 index the modules use */
        const char *v = value;
        if (v[0] == '4' && v[1] == '/')
            v += 2;
        ok = parse_u64(v, 1, 8, &u) == 0 && (v == value || u >= 5);
        c.lora.cr = (uint8_t)(u >= 5 ? u - 4 : u);
        c.lora_set = 1;
    } else if (eq(key, "preamble")) {
        ok = parse_u64(value, 6, 65535, &u) == 0;
        c.lora.preamble = (uint16_t)u;
        c.lora_set = 1;
    } else if (eq(key, "header")) {
        ok = eq(value, "explicit") || eq(value, "implicit");
        c.lora.implicit_header = (uint8_t)eq(value, "implicit");
        c.lora_set = 1;
    } else if (eq(key, "crc")) {
        ok = parse_bool(value, &b) == 0;
        c.lora.crc_on = (uint8_t)b;
        c.lora_set = 1;
    } else if (eq(key, "ldro")) {
        ok = 1;
        if (eq(value, "auto"))
            c.lora.ldro = -1;
        else if (parse_bool(value, &b) == 0)
            c.lora.ldro = (int8_t)b;
        else
            ok = 0;
        c.lora_set = 1;
    } else if (eq(key, "duty_cycle")) {
        ok = parse_duty(value, &c.duty_ppm) == 0;
    } else if (eq(key, "duty_window")) {
        ok = parse_window(value, &c.duty_window_ms) == 0;
    } else if (eq(key, "mtu")) {
        ok = parse_u64(value, FE_MTU_MIN, FE_FRAME_MAX, &u) == 0;
        c.mtu = (size_t)u;
    } else if (eq(key, "queue")) {
        ok = parse_u64(value, 1, FE_AIRTIME_QUEUE_MAX, &u) == 0;
        c.queue_frames = (size_t)u;
    } else if (eq(key, "at_dest")) {
        ok = parse_u64(value, 0, 65535, &u) == 0;
        c.at_dest = (uint16_t)u;
    } else if (eq(key, "at_init")) {
        char line[FE_AT_CMD_MAX + 3];
        if (c.at_init_count >= FE_SERIAL_AT_INIT_MAX) {
            set_err(err, err_len, "at most %d at_init commands", FE_SERIAL_AT_INIT_MAX);
            return -1;
        }
        ok = fe_at_build_cmd(line, sizeof(line), value) > 0 &&
             copy_str(c.at_init[c.at_init_count], sizeof(c.at_init[0]), value) == 0;
        c.at_init_count += (size_t)ok;
    } else {
        set_err(err, err_len, "unknown key '%s'", key);
        return -1;
    }
    if (!ok) {
        set_err(err, err_len, "bad value for %s: '%s'", key, value);
        return -1;
    }
    *cfg = c;
    return 0;
}

int fe_serial_config_check(const fe_serial_config *cfg, char *err, size_t err_len)
{
    if (cfg == NULL) {
        set_err(err, err_len, "no configuration");
        return -1;
    }
    if ((cfg->path[0] != '\0') == (cfg->usb_match != 0)) {
        set_err(err, err_len, "give exactly one of path and usb");
        return -1;
    }
    if (cfg->usb_serial[0] != '\0' && !cfg->usb_match) {
        set_err(err, err_len, "usb_serial needs usb");
        return -1;
    }
    if (cfg->baud < 50 || cfg->data_bits < 5 || cfg->data_bits > 8 || cfg->stop_bits < 1 ||
        cfg->stop_bits > 2) {
        set_err(err, err_len, "bad line settings");
        return -1;
    }
    if ((int)cfg->profile < FE_SERIAL_HDLC || (int)cfg->profile > FE_SERIAL_AT) {
        set_err(err, err_len, "bad profile");
        return -1;
    }
    if (cfg->profile != FE_SERIAL_KISS && cfg->profile != FE_SERIAL_AT && cfg->data_bits != 8) {
        set_err(err, err_len, "profile %s needs 8 data bits", fe_serial_profile_name(cfg->profile));
        return -1;
    }
    if (cfg->profile == FE_SERIAL_KISS && cfg->data_bits != 8) {
        set_err(err, err_len, "profile kiss needs 8 data bits");
        return -1;
    }
    if (cfg->subpacket != 0 &&
        (cfg->subpacket < FE_SERIAL_SUBPACKET_MIN || cfg->subpacket > FE_SERIAL_SUBPACKET_MAX)) {
        set_err(err, err_len, "subpacket must be %d..%d", FE_SERIAL_SUBPACKET_MIN,
                FE_SERIAL_SUBPACKET_MAX);
        return -1;
    }
    if (cfg->lora_set && fe_lora_params_check(&cfg->lora) != 0) {
        set_err(err, err_len,
                "bad LoRa settings (sf 6..12, bw 7.8k..500k, cr 4/5..4/8, "
                "preamble >= 6)");
        return -1;
    }
    size_t mtu = fe_serial_config_mtu(cfg);
    size_t mtu_max = FE_FRAME_MAX;
    if (cfg->profile == FE_SERIAL_AT)
        mtu_max = FE_AT_FRAME_MAX;
    else if (cfg->profile == FE_SERIAL_KISS && cfg->lora_set)
        mtu_max = FE_LORA_PAYLOAD_MAX;
    if (mtu < FE_MTU_MIN || mtu > mtu_max) {
        set_err(err, err_len, "mtu %zu out of range %d..%zu for profile %s", mtu, FE_MTU_MIN,
                mtu_max, fe_serial_profile_name(cfg->profile));
        return -1;
    }
    if (cfg->duty_ppm != 0 && cfg->duty_ppm < FE_AIRTIME_PPM && !cfg->lora_set &&
        cfg->air_rate_bps == 0) {
        set_err(err, err_len, "duty_cycle needs an airtime model: air_rate, or sf and bw");
        return -1;
    }
    if (cfg->duty_window_ms < 1000 || cfg->duty_window_ms > 7ull * 86400000u) {
        set_err(err, err_len, "duty_window must be 1s..7d");
        return -1;
    }
    if (cfg->queue_frames == 0 || cfg->queue_frames > FE_AIRTIME_QUEUE_MAX) {
        set_err(err, err_len, "queue must be 1..%d", FE_AIRTIME_QUEUE_MAX);
        return -1;
    }
    if (cfg->at_init_count > FE_SERIAL_AT_INIT_MAX) {
        set_err(err, err_len, "too many at_init commands");
        return -1;
    }
    if (cfg->at_init_count > 0 && cfg->profile != FE_SERIAL_AT) {
        set_err(err, err_len, "at_init needs profile at");
        return -1;
    }
    return 0;
}

/* --- airtime and wire time --- */

/* Airtime of one radio packet of len bytes under the configured model. */
static uint64_t packet_airtime_us(const fe_serial_config *cfg, size_t len)
{
    if (cfg->lora_set) {
        uint64_t total = 0;
        while (len > 0) { /* a packet over the LoRa limit cannot exist: count it as several */
            size_t n = len > FE_LORA_PAYLOAD_MAX ? FE_LORA_PAYLOAD_MAX : len;
            uint64_t us = 0;
            if (fe_airtime_lora_us(&us, &cfg->lora, n) != 0)
                return 0;
            total += us;
            len -= n;
        }
        return total;
    }
    return fe_airtime_rate_us(len, cfg->air_rate_bps);
}

/* Time to shift len bytes through the UART. */
static uint64_t uart_us(const fe_serial_config *cfg, size_t len)
{
    unsigned bits = 1u + cfg->data_bits + cfg->stop_bits + (cfg->parity != FE_SERIAL_PARITY_NONE);
    return ((uint64_t)len * bits * 1000000u + cfg->baud - 1) / cfg->baud;
}

/* Bytes of the chunk that starts at off in an encoded frame of len bytes. */
static size_t chunk_len(const fe_serial_config *cfg, size_t off, size_t len)
{
    size_t rest = len - off;
    if (cfg->profile == FE_SERIAL_TRANSPARENT) {
        size_t sp = subpacket_of(cfg);
        return rest < sp ? rest : sp;
    }
    return rest;
}

/* Airtime of one chunk as the radio sends it. */
static uint64_t chunk_airtime_us(const fe_serial_config *cfg, size_t chunk, size_t frame_len)
{
    switch (cfg->profile) {
    case FE_SERIAL_KISS: /* the TNC sends the frame itself, without KISS framing */
        return packet_airtime_us(cfg, frame_len);
    case FE_SERIAL_AT: /* the data characters plus the module's own 8 bytes */
        return packet_airtime_us(cfg, fe_at_encoded_len(frame_len) + FE_AT_AIR_OVERHEAD);
    default:
        return packet_airtime_us(cfg, chunk);
    }
}

static uint64_t encoded_airtime_us(const fe_serial_config *cfg, size_t enc_len, size_t frame_len)
{
    uint64_t total = 0;
    for (size_t off = 0; off < enc_len;) {
        size_t n = chunk_len(cfg, off, enc_len);
        total += chunk_airtime_us(cfg, n, frame_len);
        off += n;
    }
    return total;
}

/* Encode frame for the profile into out. Returns the bytes or a negative code. */
static ptrdiff_t encode_frame(const fe_serial_config *cfg, uint8_t *out, size_t out_len,
                              const uint8_t *frame, size_t len)
{
    switch (cfg->profile) {
    case FE_SERIAL_KISS:
        return fe_kiss_encode(out, out_len, frame, len);
    case FE_SERIAL_AT:
        return fe_at_build_send((char *)out, out_len, cfg->at_dest, frame, len);
    default:
        return fe_stream_encode(out, out_len, frame, len);
    }
}

uint64_t fe_serial_frame_airtime_us(const fe_transport *t, const uint8_t *frame, size_t len)
{
    if (t == NULL || frame == NULL || len == 0)
        return NEVER;
    serial_state *s = state_of(t);
    if (len > s->mtu)
        return NEVER;
    static _Thread_local uint8_t buf[TX_BUF_MAX];
    ptrdiff_t n = encode_frame(&s->cfg, buf, sizeof(buf), frame, len);
    if (n <= 0)
        return NEVER;
    return encoded_airtime_us(&s->cfg, (size_t)n, len);
}

/* --- receive callbacks --- */

static void deliver(serial_state *s, const uint8_t *frame, size_t len)
{
    s->st.frames_in++;
    s->st.bytes_in += len;
    if (s->t->ev.frame_in != NULL)
        s->t->ev.frame_in(s->t->ev.ctx, s->t, 0, frame, len);
}

static void on_stream_frame(void *ctx, const uint8_t *frame, size_t len)
{
    deliver(ctx, frame, len);
}

static void at_reply(serial_state *s, int is_err, int code);

static void on_at_event(void *ctx, const fe_at_event *ev)
{
    serial_state *s = ctx;
    switch (ev->kind) {
    case FE_AT_EV_RCV:
        deliver(s, ev->frame, ev->frame_len);
        break;
    case FE_AT_EV_OK:
        at_reply(s, 0, 0);
        break;
    case FE_AT_EV_ERR:
        at_reply(s, 1, ev->err);
        break;
    case FE_AT_EV_READY:
        slog(s, 2, "modem reports +READY (it restarted)");
        break;
    case FE_AT_EV_INFO:
        slog(s, 3, "modem: %.*s", (int)ev->line_len, ev->line);
        break;
    }
}

static void at_reply(serial_state *s, int is_err, int code)
{
    if (!s->at_waiting) {
        if (is_err)
            s->st.modem_errors++;
        return; /* a late or unsolicited answer */
    }
    s->at_waiting = 0;
    if (s->at_phase == AT_INIT) {
        const char *cmd = s->cfg.at_init[s->at_init_next];
        if (is_err)
            slog(s, 1, "modem refused %s: +ERR=%d (%s)", cmd, code, fe_at_err_text(code));
        s->at_init_next++;
        return;
    }
    if (!is_err) {
        s->st.frames_out++; /* the modem took it */
        s->st.bytes_out += s->frame_len;
        return;
    }
    if (code == 17 && s->frame_attempts < FE_SERIAL_AT_ATTEMPTS) {
        /* "Last TX not completed": the radio needed longer than we counted.
         * Send the same frame again once another airtime has passed. */
        uint64_t air = chunk_airtime_us(&s->cfg, 0, s->frame_len);
        s->idle_at = max_u64(s->idle_at, s->now_ms + us_to_ms_up(air) + 1);
        s->retry_frame = 1;
        s->st.tx_retries++;
        slog(s, 3, "modem still busy (+ERR=17); the frame goes again");
        return;
    }
    if (is_err) {
        s->st.modem_errors++;
        uint32_t bit = code >= 0 && code < 32 ? 1u << code : 0;
        int level = (s->at_err_logged & bit) ? 3 : 1;
        s->at_err_logged |= bit;
        slog(s, level, "modem refused a frame: +ERR=%d (%s)", code, fe_at_err_text(code));
    }
}

/* Decoder counters that mean "bad input", summed over the profiles. */
static void collect_rx_errors(serial_state *s)
{
    const fe_stream_dec_stats *h = &s->hdlc.stats;
    const fe_kiss_dec_stats *k = &s->kiss.stats;
    const fe_at_dec_stats *a = &s->at.stats;
    s->st.crc_errors = h->crc_errors;
    s->st.rx_rejects = h->runts + h->oversize + h->aborted + k->oversize + k->bad_escape +
                       k->empty + a->malformed + a->bad_data + a->overlong;
}

/* --- opening and losing the port --- */

static void close_port(serial_state *s)
{
    if (s->port == NULL)
        return;
    if (s->fd >= 0 && s->ep >= 0)
        epoll_ctl(s->ep, EPOLL_CTL_DEL, s->fd, NULL);
    sp_close(s->port);
    sp_free_port(s->port);
    s->port = NULL;
    s->fd = -1;
    s->st.is_open = 0;
}

static const char *sp_reason(enum sp_return r, char *buf, size_t len)
{
    switch (r) {
    case SP_ERR_FAIL: {
        int e = sp_last_error_code();
        snprintf(buf, len, "%s", strerror(e));
        if (e == EACCES)
            snprintf(buf, len, "%s (is the user in the dialout group?)", strerror(e));
        return buf;
    }
    case SP_ERR_ARG:
        return "not a serial port";
    case SP_ERR_MEM:
        return "out of memory";
    case SP_ERR_SUPP:
        return "setting not supported by the port";
    default:
        return "error";
    }
}

/* Find the first USB port matching the configuration; 0 with its name in
 * s->dev, or -1 with a reason. */
static int find_usb(serial_state *s, char *why, size_t why_len)
{
    struct sp_port **list = NULL;
    if (sp_list_ports(&list) != SP_OK) {
        snprintf(why, why_len, "cannot list serial ports");
        return -1;
    }
    const char *best = NULL;
    for (size_t i = 0; list[i] != NULL; i++) {
        struct sp_port *p = list[i];
        int vid, pid;
        if (sp_get_port_transport(p) != SP_TRANSPORT_USB ||
            sp_get_port_usb_vid_pid(p, &vid, &pid) != SP_OK || vid != s->cfg.usb_vid ||
            pid != s->cfg.usb_pid)
            continue;
        if (s->cfg.usb_serial[0] != '\0') {
            const char *sn = sp_get_port_usb_serial(p);
            if (sn == NULL || strcmp(sn, s->cfg.usb_serial) != 0)
                continue;
        }
        const char *name = sp_get_port_name(p);
        if (name != NULL && (best == NULL || strcmp(name, best) < 0))
            best = name; /* the lowest name, so that the choice is stable */
    }
    int rc = -1;
    if (best != NULL && strlen(best) < sizeof(s->dev)) {
        snprintf(s->dev, sizeof(s->dev), "%s", best);
        rc = 0;
    } else {
        snprintf(why, why_len, "no USB serial adapter %04x:%04x%s%s is plugged in", s->cfg.usb_vid,
                 s->cfg.usb_pid, s->cfg.usb_serial[0] ? " with serial " : "", s->cfg.usb_serial);
    }
    sp_free_port_list(list);
    return rc;
}

static int configure(serial_state *s, char *why, size_t why_len)
{
    static const enum sp_parity parity[] = {SP_PARITY_NONE, SP_PARITY_ODD, SP_PARITY_EVEN,
                                            SP_PARITY_MARK, SP_PARITY_SPACE};
    static const enum sp_flowcontrol flow[] = {SP_FLOWCONTROL_NONE, SP_FLOWCONTROL_RTSCTS,
                                               SP_FLOWCONTROL_XONXOFF, SP_FLOWCONTROL_DTRDSR};
    struct sp_port_config *pc = NULL;
    enum sp_return r = sp_new_config(&pc);
    if (r == SP_OK)
        r = sp_get_config(s->port, pc);
    if (r == SP_OK)
        r = sp_set_config_baudrate(pc, (int)s->cfg.baud);
    if (r == SP_OK)
        r = sp_set_config_bits(pc, s->cfg.data_bits);
    if (r == SP_OK)
        r = sp_set_config_parity(pc, parity[s->cfg.parity]);
    if (r == SP_OK)
        r = sp_set_config_stopbits(pc, s->cfg.stop_bits);
    if (r == SP_OK)
        r = sp_set_config_flowcontrol(pc, flow[s->cfg.flow]);
    if (r == SP_OK)
        r = sp_set_config(s->port, pc);
    if (pc != NULL)
        sp_free_config(pc);
    if (r != SP_OK) {
        char buf[160];
        snprintf(why, why_len, "cannot set %u baud %u%c%u: %s", (unsigned)s->cfg.baud,
                 (unsigned)s->cfg.data_bits, parity_letter(s->cfg.parity),
                 (unsigned)s->cfg.stop_bits, sp_reason(r, buf, sizeof(buf)));
        return -1;
    }
    return 0;
}

/* Try to open and configure the port. 0, or -1 with a reason. */
static int try_open(serial_state *s, char *why, size_t why_len)
{
    if (s->cfg.usb_match) {
        if (find_usb(s, why, why_len) != 0)
            return -1;
    } else {
        /* libserialport wants the kernel's name (it looks the port up in
         * sysfs by it), so follow symlinks such as a udev alias first. */
        char *real = realpath(s->cfg.path, NULL);
        if (real == NULL) {
            snprintf(why, why_len, "%.200s: %s", s->cfg.path, strerror(errno));
            return -1;
        }
        size_t n = strlen(real);
        if (n >= sizeof(s->dev)) {
            snprintf(why, why_len, "%.200s: path too long", s->cfg.path);
            free(real);
            return -1;
        }
        memcpy(s->dev, real, n + 1);
        free(real);
    }
    char buf[160];
    enum sp_return r = sp_get_port_by_name(s->dev, &s->port);
    if (r != SP_OK) {
        s->port = NULL;
        snprintf(why, why_len, "%.200s: %s", s->dev, sp_reason(r, buf, sizeof(buf)));
        return -1;
    }
    r = sp_open(s->port, SP_MODE_READ_WRITE);
    if (r != SP_OK) {
        snprintf(why, why_len, "%.200s: %s", s->dev, sp_reason(r, buf, sizeof(buf)));
        sp_free_port(s->port);
        s->port = NULL;
        return -1;
    }
    int fd = -1;
    if (configure(s, why, why_len) != 0 || sp_get_port_handle(s->port, &fd) != SP_OK || fd < 0) {
        if (fd < 0 && why[0] == '\0')
            snprintf(why, why_len, "%.200s: no file descriptor", s->dev);
        sp_close(s->port);
        sp_free_port(s->port);
        s->port = NULL;
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN};
    ev.data.fd = fd;
    if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        snprintf(why, why_len, "epoll: %s", strerror(errno));
        sp_close(s->port);
        sp_free_port(s->port);
        s->port = NULL;
        return -1;
    }
    s->fd = fd;
    sp_flush(s->port, SP_BUF_INPUT); /* bytes from before we were listening */
    fe_stream_dec_reset(&s->hdlc);
    fe_kiss_dec_reset(&s->kiss);
    fe_at_dec_reset(&s->at);
    s->tx_active = 0;
    s->retry_frame = 0;
    s->idle_at = 0;
    s->at_waiting = 0;
    s->at_phase = s->cfg.profile == FE_SERIAL_AT && s->cfg.at_init_count > 0 ? AT_INIT : AT_READY;
    s->at_init_next = 0;
    s->at_err_logged = 0;
    s->st.is_open = 1;
    s->st.opens++;
    return 0;
}

static void describe_line(const serial_state *s, char *out, size_t len)
{
    snprintf(out, len, "%u %u%c%u, %s", (unsigned)s->cfg.baud, (unsigned)s->cfg.data_bits,
             parity_letter(s->cfg.parity), (unsigned)s->cfg.stop_bits,
             fe_serial_profile_name(s->cfg.profile));
}

/* Attempt an open at now_ms (UINT64_MAX when the time is not known, from
 * open()) and log what changed. */
static void attempt(serial_state *s, uint64_t now_ms)
{
    char why[256] = "";
    if (try_open(s, why, sizeof(why)) == 0) {
        char line[96];
        describe_line(s, line, sizeof(line));
        if (s->lost) {
            s->st.reopens++;
            slog(s, 2, "%s is back (%s) after %llu failed attempt%s", s->dev, line,
                 (unsigned long long)s->failed_attempts, s->failed_attempts == 1 ? "" : "s");
        } else {
            slog(s, 2, "opened %s (%s, mtu %zu)", s->dev, line, s->mtu);
        }
        s->failed_attempts = 0;
        s->failing_logged = 0;
        s->reopen_at = NEVER;
        s->opened_at = now_ms == NEVER ? 0 : now_ms;
        s->opened_at_unknown = now_ms == NEVER;
        return;
    }
    s->failed_attempts++;
    uint64_t delay = s->backoff_ms;
    s->backoff_ms = min_u64(s->backoff_ms * 2, FE_SERIAL_BACKOFF_MAX_MS);
    /* From open() there is no clock: try again at the first call that has one. */
    s->reopen_at = now_ms == NEVER ? 0 : now_ms + delay;
    if (!s->failing_logged) {
        slog(s, 1, "cannot open %s; retrying every %u..%u s", why, FE_SERIAL_BACKOFF_MIN_MS / 1000,
             FE_SERIAL_BACKOFF_MAX_MS / 1000);
        s->failing_logged = 1;
    } else {
        slog(s, 3, "still cannot open %s (attempt %llu, next in %llu ms)", why,
             (unsigned long long)s->failed_attempts, (unsigned long long)delay);
    }
}

/* The open port went away. */
static void lose_port(serial_state *s, uint64_t now_ms, const char *what)
{
    if (s->port == NULL)
        return;
    if (s->opened_at_unknown || now_ms - s->opened_at >= FE_SERIAL_STABLE_MS)
        s->backoff_ms = FE_SERIAL_BACKOFF_MIN_MS;
    uint64_t delay = s->backoff_ms;
    s->backoff_ms = min_u64(s->backoff_ms * 2, FE_SERIAL_BACKOFF_MAX_MS);
    close_port(s);
    if (s->tx_active || s->retry_frame) {
        s->st.tx_lost++;
        s->tx_active = 0;
        s->retry_frame = 0;
    }
    s->at_waiting = 0;
    s->lost = 1;
    s->failing_logged = 1; /* this line says it all; failed reopens log at debug */
    s->failed_attempts = 0;
    s->reopen_at = now_ms + delay;
    s->down_since = now_ms;
    slog(s, 1, "lost %s (%s); reopening in %llu s, %zu frame%s kept queued", s->dev, what,
         (unsigned long long)(delay / 1000), fe_airtime_queue_len(&s->q),
         fe_airtime_queue_len(&s->q) == 1 ? "" : "s");
}

/* Calls with a clock settle what open() could not time. */
static void clock_in(serial_state *s, uint64_t now_ms)
{
    s->now_ms = now_ms;
    if (s->opened_at_unknown && s->port != NULL) {
        s->opened_at = now_ms;
        s->opened_at_unknown = 0;
    }
}

/* --- sending --- */

static void at_send_init(serial_state *s, uint64_t now_ms)
{
    char line[FE_AT_CMD_MAX + 3];
    ptrdiff_t n = fe_at_build_cmd(line, sizeof(line), s->cfg.at_init[s->at_init_next]);
    if (n <= 0) {
        s->at_init_next++;
        return;
    }
    int w = sp_nonblocking_write(s->port, line, (size_t)n);
    if (w < 0) {
        lose_port(s, now_ms, strerror(sp_last_error_code()));
        return;
    }
    /* A 66-byte command fits any tty buffer; a short write here means a
     * stuck port, which the missing reply will show. */
    s->at_waiting = 1;
    s->at_deadline = now_ms + us_to_ms_up(uart_us(&s->cfg, (size_t)n)) + FE_SERIAL_AT_REPLY_MS;
}

/* Write what the current chunk still needs. */
static void write_some(serial_state *s, uint64_t now_ms)
{
    size_t clen = chunk_len(&s->cfg, s->chunk_start, s->tx_len);
    size_t end = s->chunk_start + clen;
    int w = sp_nonblocking_write(s->port, s->tx + s->tx_off, end - s->tx_off);
    if (w < 0) {
        lose_port(s, now_ms, strerror(sp_last_error_code()));
        return;
    }
    s->tx_off += (size_t)w;
    if (s->tx_off < end) {
        /* The kernel's buffer is full: come back when some of it has drained. */
        size_t rest = end - s->tx_off;
        s->next_write_ms =
            now_ms + max_u64(1, us_to_ms_up(uart_us(&s->cfg, rest < 64 ? rest : 64)));
        return;
    }
    /* The chunk is out: the modem takes it in over the UART, then sends it. */
    uint64_t busy_us = uart_us(&s->cfg, clen) + chunk_airtime_us(&s->cfg, clen, s->frame_len);
    uint64_t busy_ms = us_to_ms_up(busy_us);
    if (s->tx_off < s->tx_len) {
        s->chunk_start = s->tx_off;
        s->next_write_ms = now_ms + busy_ms;
        return;
    }
    s->tx_active = 0;
    s->idle_at = now_ms + busy_ms;
    if (s->cfg.profile == FE_SERIAL_AT) {
        /* Counted out when the modem answers +OK. */
        s->at_waiting = 1;
        s->at_deadline = now_ms + busy_ms + FE_SERIAL_AT_REPLY_MS;
        return;
    }
    s->st.frames_out++;
    s->st.bytes_out += s->frame_len;
}

/* Move the transmitter as far as now_ms allows. */
static void pump(serial_state *s, uint64_t now_ms)
{
    for (int round = 0; round < 4 && s->port != NULL; round++) {
        if (s->at_waiting && now_ms >= s->at_deadline) {
            s->st.modem_errors++;
            slog(s, s->at_phase == AT_INIT ? 1 : 3, "no reply from the modem%s%s",
                 s->at_phase == AT_INIT ? " to " : "",
                 s->at_phase == AT_INIT ? s->cfg.at_init[s->at_init_next] : "");
            s->at_waiting = 0;
            if (s->at_phase == AT_INIT)
                s->at_init_next++;
        }
        if (s->at_waiting)
            return;
        if (s->at_phase == AT_INIT) {
            if (s->at_init_next >= s->cfg.at_init_count) {
                s->at_phase = AT_READY;
                slog(s, 3, "modem configured");
                continue;
            }
            at_send_init(s, now_ms);
            continue;
        }
        if (s->tx_active) {
            if (now_ms < s->next_write_ms)
                return;
            write_some(s, now_ms);
            continue;
        }
        if (now_ms < s->idle_at)
            return;
        if (s->retry_frame) {
            /* Its airtime was counted on the first attempt, which the modem
             * refused without sending. */
            s->retry_frame = 0;
            ptrdiff_t n = encode_frame(&s->cfg, s->tx, sizeof(s->tx), s->frame, s->frame_len);
            if (n <= 0)
                continue;
            s->frame_attempts++;
            s->tx_len = (size_t)n;
            s->tx_off = 0;
            s->chunk_start = 0;
            s->tx_active = 1;
            s->next_write_ms = now_ms;
            continue;
        }
        size_t len = 0;
        const uint8_t *head = fe_airtime_queue_peek(&s->q, &len, NULL);
        if (head == NULL)
            return;
        ptrdiff_t n = encode_frame(&s->cfg, s->tx, sizeof(s->tx), head, len);
        if (n <= 0) {
            /* send() admits only frames that encode; keep the queue moving anyway. */
            if (fe_airtime_queue_pop(&s->q, s->frame, sizeof(s->frame), NULL) >= 0)
                s->st.tx_too_big++;
            continue;
        }
        uint64_t air = encoded_airtime_us(&s->cfg, (size_t)n, len);
        if (fe_airtime_budget_take(&s->budget, now_ms, air) != 0) {
            if (!s->waiting_budget)
                s->st.budget_waits++;
            s->waiting_budget = 1;
            return;
        }
        s->waiting_budget = 0;
        if (fe_airtime_queue_pop(&s->q, s->frame, sizeof(s->frame), NULL) < 0)
            return; /* not reached: peek found it */
        s->frame_len = len;
        s->frame_attempts = 1;
        s->tx_len = (size_t)n;
        s->tx_off = 0;
        s->chunk_start = 0;
        s->tx_active = 1;
        s->next_write_ms = now_ms;
    }
}

/* --- the driver --- */

static void feed(serial_state *s, const uint8_t *bytes, size_t len)
{
    switch (s->cfg.profile) {
    case FE_SERIAL_KISS:
        fe_kiss_dec_feed(&s->kiss, bytes, len);
        break;
    case FE_SERIAL_AT:
        fe_at_dec_feed(&s->at, bytes, len);
        break;
    default:
        fe_stream_dec_feed(&s->hdlc, bytes, len);
        break;
    }
}

static int op_open(fe_transport *t, char *err, size_t err_len)
{
    serial_state *s = state_of(t);
    if (s->started)
        return 0;
    s->ep = epoll_create1(EPOLL_CLOEXEC);
    if (s->ep < 0) {
        set_err(err, err_len, "serial: epoll_create1: %s", strerror(errno));
        return -1;
    }
    s->started = 1;
    s->lost = 0;
    s->backoff_ms = FE_SERIAL_BACKOFF_MIN_MS;
    s->failing_logged = 0;
    s->failed_attempts = 0;
    attempt(s, NEVER);
    return 0;
}

static void op_close(fe_transport *t)
{
    serial_state *s = state_of(t);
    close_port(s);
    if (s->ep >= 0)
        close(s->ep);
    s->ep = -1;
    s->started = 0;
    s->tx_active = 0;
    s->retry_frame = 0;
    s->at_waiting = 0;
    s->reopen_at = NEVER;
}

static int op_poll_fd(fe_transport *t)
{
    return state_of(t)->ep;
}

static int op_on_readable(fe_transport *t, uint64_t now_ms)
{
    serial_state *s = state_of(t);
    if (!s->started || s->port == NULL)
        return 0;
    clock_in(s, now_ms);
    struct epoll_event ev;
    int n = epoll_wait(s->ep, &ev, 1, 0);
    uint32_t events = n > 0 ? ev.events : 0;
    for (int i = 0; i < FE_SERIAL_RX_BURST && s->port != NULL; i++) {
        int r = sp_nonblocking_read(s->port, s->rx, sizeof(s->rx));
        if (r < 0) {
            lose_port(s, now_ms, strerror(sp_last_error_code()));
            break;
        }
        if (r == 0)
            break;
        feed(s, s->rx, (size_t)r);
        if ((size_t)r < sizeof(s->rx))
            break;
    }
    /* Read what was left first: a hang-up may follow the last bytes. */
    if (s->port != NULL && (events & (EPOLLHUP | EPOLLERR)))
        lose_port(s, now_ms, (events & EPOLLHUP) ? "hang-up: device gone" : "device error");
    collect_rx_errors(s);
    pump(s, now_ms);
    return 0;
}

static int op_send(fe_transport *t, uint32_t peer, const uint8_t *frame, size_t len,
                   enum fe_prio prio, uint64_t now_ms)
{
    serial_state *s = state_of(t);
    (void)peer; /* one broadcast medium */
    if (frame == NULL || len == 0)
        return -1;
    if (len > s->mtu) {
        s->st.tx_too_big++;
        return -1;
    }
    clock_in(s, now_ms);
    ptrdiff_t n = encode_frame(&s->cfg, s->scratch, sizeof(s->scratch), frame, len);
    if (n <= 0) {
        s->st.tx_too_big++;
        return -1;
    }
    uint64_t air = encoded_airtime_us(&s->cfg, (size_t)n, len);
    if (!fe_airtime_budget_unlimited(&s->budget) && air > s->budget.budget_us) {
        s->st.tx_over_budget++;
        return -1;
    }
    int rc = fe_airtime_queue_push(&s->q, frame, len, prio);
    if (rc != 0)
        return -1; /* counted by the queue */
    if (s->started && s->port != NULL)
        pump(s, now_ms);
    return 0;
}

static size_t op_mtu(fe_transport *t)
{
    return state_of(t)->mtu;
}

static uint64_t op_next_deadline(fe_transport *t)
{
    serial_state *s = state_of(t);
    if (!s->started)
        return NEVER;
    if (s->port == NULL)
        return s->reopen_at;
    if (s->at_waiting)
        return s->at_deadline;
    if (s->at_phase == AT_INIT)
        return 0; /* the next init command is due now */
    if (s->tx_active)
        return s->next_write_ms;
    if (s->retry_frame)
        return s->idle_at;
    size_t len = 0;
    const uint8_t *head = fe_airtime_queue_peek(&s->q, &len, NULL);
    if (head == NULL)
        return NEVER;
    ptrdiff_t n = encode_frame(&s->cfg, s->scratch, sizeof(s->scratch), head, len);
    if (n <= 0)
        return s->idle_at;
    uint64_t air = encoded_airtime_us(&s->cfg, (size_t)n, len);
    return max_u64(s->idle_at, fe_airtime_budget_next_ms(&s->budget, s->budget.last_ms, air));
}

static int op_tick(fe_transport *t, uint64_t now_ms)
{
    serial_state *s = state_of(t);
    if (!s->started)
        return 0;
    clock_in(s, now_ms);
    if (s->port == NULL && s->reopen_at != NEVER && now_ms >= s->reopen_at)
        attempt(s, now_ms);
    if (s->port != NULL)
        pump(s, now_ms);
    collect_rx_errors(s);
    return 0;
}

static const fe_transport_ops serial_ops = {
    .name = "serial",
    .kind = FE_LINK_BROADCAST,
    .open = op_open,
    .close = op_close,
    .poll_fd = op_poll_fd,
    .on_readable = op_on_readable,
    .send = op_send,
    .mtu = op_mtu,
    .next_deadline = op_next_deadline,
    .tick = op_tick,
};

int fe_serial_new(fe_transport **out, const fe_serial_config *cfg, const fe_transport_events *ev)
{
    if (out == NULL || cfg == NULL || ev == NULL)
        return FE_ERR_INVALID;
    *out = NULL;
    if (fe_serial_config_check(cfg, NULL, 0) != 0)
        return FE_ERR_INVALID;
    fe_transport *t = calloc(1, sizeof(*t));
    serial_state *s = calloc(1, sizeof(*s));
    if (t == NULL || s == NULL) {
        free(t);
        free(s);
        return FE_ERR_NOMEM;
    }
    s->cfg = *cfg;
    s->t = t;
    s->fd = s->ep = -1;
    s->reopen_at = NEVER;
    s->backoff_ms = FE_SERIAL_BACKOFF_MIN_MS;
    s->mtu = fe_serial_config_mtu(cfg);
    int rc = fe_airtime_queue_init(&s->q, cfg->queue_frames, s->mtu);
    if (rc == 0)
        rc = fe_airtime_budget_init(&s->budget, cfg->duty_ppm, cfg->duty_window_ms);
    if (rc == 0)
        rc = fe_stream_dec_init(&s->hdlc, FE_FRAME_MAX, on_stream_frame, s);
    if (rc == 0)
        rc = fe_kiss_dec_init(&s->kiss, FE_FRAME_MAX, on_stream_frame, s);
    if (rc == 0)
        rc = fe_at_dec_init(&s->at, on_at_event, s);
    if (rc != 0) {
        fe_airtime_queue_free(&s->q);
        free(s);
        free(t);
        return rc == FE_ERR_NOMEM ? FE_ERR_NOMEM : FE_ERR_INVALID;
    }
    t->ops = &serial_ops;
    t->state = s;
    t->ev = *ev;
    if (cfg->usb_match)
        snprintf(t->label, sizeof(t->label), "usb %04x:%04x", cfg->usb_vid, cfg->usb_pid);
    else
        copy_trunc(t->label, sizeof(t->label), cfg->path);
    *out = t;
    return 0;
}

void fe_serial_del(fe_transport *t)
{
    if (t == NULL)
        return;
    serial_state *s = state_of(t);
    op_close(t);
    fe_airtime_queue_free(&s->q);
    free(s);
    free(t);
}

void fe_serial_get_stats(fe_transport *t, uint64_t now_ms, fe_serial_stats *out)
{
    if (t == NULL || out == NULL)
        return;
    serial_state *s = state_of(t);
    collect_rx_errors(s);
    *out = s->st;
    out->queued = fe_airtime_queue_len(&s->q);
    out->tx_dropped = 0;
    for (size_t c = 0; c < FE_PRIO_CLASSES; c++)
        out->tx_dropped += s->q.stats.dropped[c];
    out->airtime_us = s->budget.total_us;
    out->airtime_window_us = fe_airtime_budget_used_us(&s->budget, now_ms);
    out->airtime_budget_us = s->budget.budget_us;
    out->is_open = s->port != NULL;
}

void fe_serial_describe(const fe_transport *t, char *out, size_t out_len)
{
    if (t == NULL || out == NULL || out_len == 0)
        return;
    const serial_state *s = state_of(t);
    char where[FE_SERIAL_PATH_MAX + 48];
    if (s->cfg.usb_match)
        snprintf(where, sizeof(where), "usb %04x:%04x%s%s", s->cfg.usb_vid, s->cfg.usb_pid,
                 s->dev[0] ? " at " : "", s->dev);
    else if (s->dev[0] && strcmp(s->dev, s->cfg.path) != 0)
        snprintf(where, sizeof(where), "%.*s (from %.*s)", 140, s->dev, 140, s->cfg.path);
    else
        snprintf(where, sizeof(where), "%.*s", 280, s->cfg.path);
    char line[96], sub[48] = "", duty[48] = "";
    describe_line(s, line, sizeof(line));
    if (s->cfg.profile == FE_SERIAL_TRANSPARENT)
        snprintf(sub, sizeof(sub), ", sub-packet %zu", subpacket_of(&s->cfg));
    if (s->cfg.duty_ppm != 0 && s->cfg.duty_ppm < FE_AIRTIME_PPM) {
        /* ppm as a percentage without trailing zeros: 10000 -> "1", 1000 -> "0.1" */
        char frac[8];
        unsigned f = (unsigned)(s->cfg.duty_ppm % 10000);
        snprintf(frac, sizeof(frac), ".%04u", f);
        size_t n = strlen(frac);
        while (n > 1 && frac[n - 1] == '0')
            frac[--n] = '\0';
        snprintf(duty, sizeof(duty), ", duty %u%s%%", (unsigned)(s->cfg.duty_ppm / 10000),
                 f ? frac : "");
    }
    const char *state = s->port != NULL ? "open" : (s->started ? "retrying" : "closed");
    snprintf(out, out_len, "serial %s %s%s, mtu %zu%s: %s", where, line, sub, s->mtu, duty, state);
}

/* --- enumeration --- */

static int cmp_port(const void *a, const void *b)
{
    const char *x = sp_get_port_name(*(struct sp_port *const *)a);
    const char *y = sp_get_port_name(*(struct sp_port *const *)b);
    return strcmp(x ? x : "", y ? y : "");
}

static const char *or_empty(const char *s)
{
    return s != NULL ? s : "";
}

int fe_serial_list_ports(void (*cb)(void *ctx, const fe_serial_port_info *port), void *ctx)
{
    if (cb == NULL)
        return FE_ERR_INVALID;
    struct sp_port **list = NULL;
    enum sp_return r = sp_list_ports(&list);
    if (r != SP_OK)
        return r == SP_ERR_MEM ? FE_ERR_NOMEM : FE_ERR_NOTFOUND;
    size_t n = 0;
    while (list[n] != NULL)
        n++;
    qsort(list, n, sizeof(list[0]), cmp_port);
    for (size_t i = 0; i < n; i++) {
        struct sp_port *p = list[i];
        fe_serial_port_info info = {.path = or_empty(sp_get_port_name(p)),
                                    .description = or_empty(sp_get_port_description(p)),
                                    .usb_serial = "",
                                    .manufacturer = "",
                                    .product = ""};
        int vid, pid;
        if (sp_get_port_transport(p) == SP_TRANSPORT_USB &&
            sp_get_port_usb_vid_pid(p, &vid, &pid) == SP_OK) {
            info.usb = 1;
            info.usb_vid = (uint16_t)vid;
            info.usb_pid = (uint16_t)pid;
            info.usb_serial = or_empty(sp_get_port_usb_serial(p));
            info.manufacturer = or_empty(sp_get_port_usb_manufacturer(p));
            info.product = or_empty(sp_get_port_usb_product(p));
        }
        cb(ctx, &info);
    }
    sp_free_port_list(list);
    return n > INT_MAX ? INT_MAX : (int)n;
}
