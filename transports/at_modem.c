/* REYAX-style AT line protocol: see at_modem.h. */
#include "at_modem.h"

#include <stdio.h>
#include <string.h>

/* The Z85 alphabet, ZeroMQ RFC 32. */
static const char z85_chars[86] = "0123456789abcdefghijklmnopqrstuvwxyz"
                                  "ABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

/* Digit value + 1 of each byte; 0 for bytes outside the alphabet. */
/* clang-format off */
static const int8_t z85_value[256] = {
    ['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,  ['6'] = 7,
    ['7'] = 8,  ['8'] = 9,  ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14,
    ['e'] = 15, ['f'] = 16, ['g'] = 17, ['h'] = 18, ['i'] = 19, ['j'] = 20, ['k'] = 21,
    ['l'] = 22, ['m'] = 23, ['n'] = 24, ['o'] = 25, ['p'] = 26, ['q'] = 27, ['r'] = 28,
    ['s'] = 29, ['t'] = 30, ['u'] = 31, ['v'] = 32, ['w'] = 33, ['x'] = 34, ['y'] = 35,
    ['z'] = 36, ['A'] = 37, ['B'] = 38, ['C'] = 39, ['D'] = 40, ['E'] = 41, ['F'] = 42,
    ['G'] = 43, ['H'] = 44, ['I'] = 45, ['J'] = 46, ['K'] = 47, ['L'] = 48, ['M'] = 49,
    ['N'] = 50, ['O'] = 51, ['P'] = 52, ['Q'] = 53, ['R'] = 54, ['S'] = 55, ['T'] = 56,
    ['U'] = 57, ['V'] = 58, ['W'] = 59, ['X'] = 60, ['Y'] = 61, ['Z'] = 62, ['.'] = 63,
    ['-'] = 64, [':'] = 65, ['+'] = 66, ['='] = 67, ['^'] = 68, ['!'] = 69, ['/'] = 70,
    ['*'] = 71, ['?'] = 72, ['&'] = 73, ['<'] = 74, ['>'] = 75, ['('] = 76, [')'] = 77,
    ['['] = 78, [']'] = 79, ['{'] = 80, ['}'] = 81, ['@'] = 82, ['%'] = 83, ['$'] = 84,
    ['#'] = 85,
};
/* clang-format on */

size_t fe_at_encoded_len(size_t len)
{
    return len / 4 * 5 + (len % 4 ? len % 4 + 1 : 0);
}

ptrdiff_t fe_at_data_encode(char *out, size_t out_len, const uint8_t *in, size_t len)
{
    if (in == NULL || len == 0)
        return FE_ERR_INVALID;
    if (len > FE_AT_FRAME_MAX)
        return FE_ERR_TOOBIG;
    size_t need = fe_at_encoded_len(len);
    if (out == NULL || out_len < need)
        return FE_ERR_TOOBIG;
    size_t pos = 0;
    for (size_t i = 0; i < len; i += 4) {
        size_t n = len - i < 4 ? len - i : 4;
        uint32_t v = 0;
        for (size_t k = 0; k < 4; k++)
            v = (v << 8) | (k < n ? in[i + k] : 0u);
        char digits[5];
        for (int k = 4; k >= 0; k--) {
            digits[k] = z85_chars[v % 85u];
            v /= 85u;
        }
        size_t emit = n == 4 ? 5 : n + 1;
        memcpy(out + pos, digits, emit);
        pos += emit;
    }
    return (ptrdiff_t)pos;
}

ptrdiff_t fe_at_data_decode(uint8_t *out, size_t out_len, const char *in, size_t len)
{
    if (in == NULL || len == 0 || len % 5 == 1)
        return FE_ERR_MALFORMED;
    size_t need = len / 5 * 4 + (len % 5 ? len % 5 - 1 : 0);
    if (out == NULL || out_len < need)
        return FE_ERR_TOOBIG;
    size_t pos = 0;
    for (size_t i = 0; i < len; i += 5) {
        size_t k = len - i < 5 ? len - i : 5;
        uint64_t v = 0;
        for (size_t j = 0; j < 5; j++) {
            int d = 84; /* a short final group is padded with the top digit */
            if (j < k) {
                d = z85_value[(uint8_t)in[i + j]] - 1;
                if (d < 0)
                    return FE_ERR_MALFORMED;
            }
            v = v * 85u + (uint64_t)d;
        }
        if (v > UINT32_MAX)
            return FE_ERR_MALFORMED;
        size_t n = k == 5 ? 4 : k - 1;
        for (size_t j = 0; j < n; j++)
            out[pos + j] = (uint8_t)(v >> (24 - 8 * j));
        if (k < 5) {
            /* A short group has slack: accept only the spelling the encoder
             * makes, so that one frame has exactly one text. */
            char again[5];
            if (fe_at_data_encode(again, sizeof(again), out + pos, n) != (ptrdiff_t)k ||
                memcmp(again, in + i, k) != 0)
                return FE_ERR_MALFORMED;
        }
        pos += n;
    }
    return (ptrdiff_t)pos;
}

ptrdiff_t fe_at_build_send(char *out, size_t out_len, uint16_t addr, const uint8_t *frame,
                           size_t len)
{
    if (frame == NULL || len == 0)
        return FE_ERR_INVALID;
    if (len > FE_AT_FRAME_MAX)
        return FE_ERR_TOOBIG;
    size_t enc = fe_at_encoded_len(len);
    char head[32];
    int h = snprintf(head, sizeof(head), "AT+SEND=%u,%zu,", (unsigned)addr, enc);
    if (h < 0 || (size_t)h >= sizeof(head))
        return FE_ERR_INVALID;
    size_t total = (size_t)h + enc + 2;
    if (out == NULL || out_len < total)
        return FE_ERR_TOOBIG;
    memcpy(out, head, (size_t)h);
    ptrdiff_t e = fe_at_data_encode(out + h, out_len - (size_t)h, frame, len);
    if (e < 0)
        return e;
    out[(size_t)h + enc] = '\r';
    out[(size_t)h + enc + 1] = '\n';
    if (out_len > total)
        out[total] = '\0';
    return (ptrdiff_t)total;
}

ptrdiff_t fe_at_build_cmd(char *out, size_t out_len, const char *cmd)
{
    if (cmd == NULL)
        return FE_ERR_INVALID;
    size_t n = strnlen(cmd, FE_AT_CMD_MAX + 1);
    if (n > FE_AT_CMD_MAX)
        return FE_ERR_TOOBIG;
    if (n < 2 || cmd[0] != 'A' || cmd[1] != 'T')
        return FE_ERR_INVALID;
    for (size_t i = 0; i < n; i++)
        if (cmd[i] < 0x20 || cmd[i] > 0x7E)
            return FE_ERR_INVALID;
    if (out == NULL || out_len < n + 2)
        return FE_ERR_TOOBIG;
    memcpy(out, cmd, n);
    out[n] = '\r';
    out[n + 1] = '\n';
    if (out_len > n + 2)
        out[n + 2] = '\0';
    return (ptrdiff_t)(n + 2);
}

const char *fe_at_err_text(int code)
{
    switch (code) {
    case 1:
        return "no CR LF at the end of the command";
    case 2:
        return "command does not start with AT";
    case 3:
        return "no '=' in the command";
    case 4:
        return "unknown command";
    case 5:
        return "data length does not match the given length";
    case 10:
        return "transmit timed out";
    case 11:
        return "receive timed out";
    case 12:
        return "CRC error";
    case 13:
        return "more than 240 bytes of data";
    case 14:
        return "flash write failed";
    case 15:
        return "unknown failure";
    case 17:
        return "last transmission not completed";
    case 18:
        return "preamble value not allowed";
    case 19:
        return "receive failed: header error";
    case 20:
        return "power saving time setting not allowed";
    default:
        return "unknown error code";
    }
}

/* --- line decoder --- */

int fe_at_dec_init(fe_at_dec *d, fe_at_event_cb on_event, void *ctx)
{
    if (d == NULL || on_event == NULL)
        return FE_ERR_INVALID;
    memset(d, 0, sizeof(*d));
    d->on_event = on_event;
    d->ctx = ctx;
    return 0;
}

void fe_at_dec_reset(fe_at_dec *d)
{
    if (d == NULL)
        return;
    d->len = 0;
    d->discarding = 0;
}

static int has_prefix(const char *s, size_t n, const char *prefix)
{
    size_t p = strlen(prefix);
    return n >= p && memcmp(s, prefix, p) == 0;
}

/* An unsigned decimal of 1..max_digits digits at s[*pos], at most max.
 * Advances *pos. 0 or -1. */
static int parse_uint(const char *s, size_t n, size_t *pos, size_t max_digits, long max, long *out)
{
    size_t i = *pos;
    long v = 0;
    size_t digits = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9' && digits < max_digits) {
        v = v * 10 + (s[i] - '0');
        i++;
        digits++;
    }
    if (digits == 0 || v > max || (i < n && s[i] >= '0' && s[i] <= '9'))
        return -1;
    *pos = i;
    *out = v;
    return 0;
}

/* An optionally negative decimal, |v| <= max. */
static int parse_int(const char *s, size_t n, size_t *pos, long max, long *out)
{
    int neg = 0;
    size_t i = *pos;
    if (i < n && s[i] == '-') {
        neg = 1;
        i++;
    }
    long v;
    if (parse_uint(s, n, &i, 4, max, &v) != 0)
        return -1;
    *pos = i;
    *out = neg ? -v : v;
    return 0;
}

static int expect(const char *s, size_t n, size_t *pos, char c)
{
    if (*pos >= n || s[*pos] != c)
        return -1;
    (*pos)++;
    return 0;
}

/* "+RCV=<addr>,<len>,<data>,<rssi>,<snr>": the data is taken by its length,
 * so whatever it holds cannot shift the fields after it. */
static void parse_rcv(fe_at_dec *d, const char *s, size_t n)
{
    size_t pos = 5; /* after "+RCV=" */
    long addr, len, rssi, snr;
    if (parse_uint(s, n, &pos, 5, 65535, &addr) != 0 || expect(s, n, &pos, ',') != 0 ||
        parse_uint(s, n, &pos, 3, FE_AT_DATA_MAX, &len) != 0 || expect(s, n, &pos, ',') != 0 ||
        len == 0 || n - pos < (size_t)len) {
        d->stats.malformed++;
        return;
    }
    const char *data = s + pos;
    pos += (size_t)len;
    if (expect(s, n, &pos, ',') != 0 || parse_int(s, n, &pos, 999, &rssi) != 0 ||
        expect(s, n, &pos, ',') != 0 || parse_int(s, n, &pos, 999, &snr) != 0 || pos != n) {
        d->stats.malformed++;
        return;
    }
    ptrdiff_t k = fe_at_data_decode(d->frame, sizeof(d->frame), data, (size_t)len);
    if (k <= 0) {
        d->stats.bad_data++;
        return;
    }
    d->stats.rcv++;
    fe_at_event ev = {.kind = FE_AT_EV_RCV,
                      .addr = (uint16_t)addr,
                      .rssi = (int)rssi,
                      .snr = (int)snr,
                      .frame = d->frame,
                      .frame_len = (size_t)k,
                      .line = s,
                      .line_len = n};
    d->on_event(d->ctx, &ev);
}

static void end_line(fe_at_dec *d)
{
    const char *s = d->line;
    size_t n = d->len;
    d->len = 0;
    while (n > 0 && s[n - 1] == '\r')
        n--;
    if (n == 0)
        return;
    d->stats.lines++;
    fe_at_event ev = {.line = s, .line_len = n};
    if (has_prefix(s, n, "+RCV=")) {
        parse_rcv(d, s, n);
        return;
    }
    if (n == 3 && has_prefix(s, n, "+OK")) {
        d->stats.ok++;
        ev.kind = FE_AT_EV_OK;
    } else if (n == 6 && has_prefix(s, n, "+READY")) {
        d->stats.ready++;
        ev.kind = FE_AT_EV_READY;
    } else if (has_prefix(s, n, "+ERR=")) {
        size_t pos = 5;
        long code;
        if (parse_uint(s, n, &pos, 3, 999, &code) != 0 || pos != n) {
            d->stats.malformed++;
            return;
        }
        d->stats.err++;
        ev.kind = FE_AT_EV_ERR;
        ev.err = (int)code;
    } else if (n >= 2 && s[0] == '+' && s[1] >= 'A' && s[1] <= 'Z') {
        for (size_t i = 0; i < n; i++) {
            if (s[i] < 0x20 || s[i] > 0x7E) {
                d->stats.unknown++;
                return;
            }
        }
        d->stats.info++;
        ev.kind = FE_AT_EV_INFO;
    } else {
        d->stats.unknown++;
        return;
    }
    d->on_event(d->ctx, &ev);
}

size_t fe_at_dec_feed(fe_at_dec *d, const uint8_t *bytes, size_t len)
{
    if (d == NULL || bytes == NULL)
        return len;
    size_t i = 0;
    while (i < len) {
        if (d->discarding) {
            const uint8_t *nl = memchr(bytes + i, '\n', len - i);
            if (nl == NULL)
                return len;
            i = (size_t)(nl - bytes) + 1;
            d->discarding = 0;
            continue;
        }
        const uint8_t *nl = memchr(bytes + i, '\n', len - i);
        size_t run = nl == NULL ? len - i : (size_t)(nl - (bytes + i));
        size_t room = sizeof(d->line) - d->len;
        if (run > room) {
            /* Too long to be a module line: drop it whole. */
            d->stats.overlong++;
            d->len = 0;
            d->discarding = 1;
            i += room;
            continue;
        }
        memcpy(d->line + d->len, bytes + i, run);
        d->len += run;
        i += run;
        if (nl != NULL) {
            i++; /* the LF */
            end_line(d);
        }
    }
    return len;
}
