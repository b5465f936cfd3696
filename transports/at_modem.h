/* The AT line protocol of REYAX RYLR896/RYLR998-style LoRa modules.
 *
 * Host to module, one command per line ending in CR LF:
 *     AT+SEND=<address>,<length>,<data>
 * Module to host:
 *     +OK                                   command accepted
 *     +ERR=<n>                              command refused (fe_at_err_text)
 *     +RCV=<address>,<length>,<data>,<rssi>,<snr>   a packet was received
 *     +READY                                the module (re)started
 *     +<NAME>=<value>                       answer to a query (AT+ADDRESS? ...)
 *
 * The REYAX AT command guides give <data> as ASCII, at most 240 bytes
 * (+ERR=13 beyond), and a line ends at CR LF, so a binary frame cannot go
 * as is. Frames are carried in the Z85 alphabet (ZeroMQ RFC 32: 85
 * printable characters, no comma, no quote, no CR or LF): each 4 bytes
 * become 5 characters, big-endian, and a final group of 1..3 bytes becomes
 * 2..4 characters (the value padded with zero bytes, as in Ascii85). 240
 * characters thus carry 192 bytes: FE_AT_FRAME_MAX is the MTU of the AT
 * profile. Address 0 is the broadcast address of these modules.
 *
 * The decoder is a bounded line parser: lines longer than FE_AT_LINE_MAX
 * are dropped up to the next LF and counted, garbage between lines is
 * counted, and nothing is allocated. */
#ifndef FE_AT_MODEM_H
#define FE_AT_MODEM_H

#include <stddef.h>
#include <stdint.h>

#include "../core/err.h"
#include "../core/limits.h"

#define FE_AT_DATA_MAX 240  /* characters of <data> in one AT+SEND */
#define FE_AT_FRAME_MAX 192 /* frame bytes that fit FE_AT_DATA_MAX characters */
#define FE_AT_LINE_MAX 300  /* longest line kept, CR LF excluded; a +RCV line is at most 265 */
#define FE_AT_CMD_MAX 64    /* longest configuration command accepted by fe_at_build_cmd */
#define FE_AT_ADDR_BROADCAST 0
/* "AT+SEND=65535,240," + data + CR LF */
#define FE_AT_SEND_LINE_MAX (18u + FE_AT_DATA_MAX + 2u)
/* These modules add 8 bytes of their own to every packet on air (REYAX AT
 * command guide, AT+SEND): the LoRa payload is <length> + 8. */
#define FE_AT_AIR_OVERHEAD 8

_Static_assert(FE_AT_FRAME_MAX * 5 / 4 == FE_AT_DATA_MAX, "Z85 capacity of one AT+SEND");
_Static_assert(FE_AT_FRAME_MAX >= FE_MTU_MIN, "the AT profile must carry the core's smallest MTU");

/* Characters that fe_at_data_encode makes of len bytes. */
size_t fe_at_encoded_len(size_t len);

/* Encode len bytes (1..FE_AT_FRAME_MAX) into out (no NUL). Returns the
 * characters written, FE_ERR_TOOBIG (len too big or out_len too small) or
 * FE_ERR_INVALID. */
FE_MUST_CHECK ptrdiff_t fe_at_data_encode(char *out, size_t out_len, const uint8_t *in, size_t len);

/* Decode len characters of fe_at_data_encode output into out. Returns the
 * bytes written, FE_ERR_MALFORMED (a character outside the alphabet, a
 * group worth 2^32 or more, a dangling single character, an empty input, or
 * a short final group not spelled the way the encoder spells it) or
 * FE_ERR_TOOBIG (out_len too small). */
FE_MUST_CHECK ptrdiff_t fe_at_data_decode(uint8_t *out, size_t out_len, const char *in, size_t len);

/* Build "AT+SEND=<addr>,<n>,<encoded frame>\r\n" for a frame of
 * 1..FE_AT_FRAME_MAX bytes. A NUL follows when there is room; it is not
 * counted. Returns the bytes of the line, FE_ERR_TOOBIG (frame too big for
 * one packet, or out_len too small: FE_AT_SEND_LINE_MAX + 1 always
 * suffices) or FE_ERR_INVALID. */
FE_MUST_CHECK ptrdiff_t fe_at_build_send(char *out, size_t out_len, uint16_t addr,
                                         const uint8_t *frame, size_t len);

/* Build "<cmd>\r\n" for a configuration command such as "AT+NETWORKID=5":
 * cmd must start with "AT", be printable ASCII and at most FE_AT_CMD_MAX
 * characters. NUL-terminated when there is room. Returns the bytes of the
 * line, FE_ERR_INVALID or FE_ERR_TOOBIG. */
FE_MUST_CHECK ptrdiff_t fe_at_build_cmd(char *out, size_t out_len, const char *cmd);

/* The meaning of +ERR=<code> from the REYAX AT command guides (RYLR896 and
 * RYLR998 editions); "unknown error code" for others. Never NULL. */
const char *fe_at_err_text(int code);

enum fe_at_event_kind {
    FE_AT_EV_RCV = 1,   /* a packet in our encoding: frame, addr, rssi, snr */
    FE_AT_EV_OK = 2,    /* +OK */
    FE_AT_EV_ERR = 3,   /* +ERR=<err> */
    FE_AT_EV_READY = 4, /* +READY */
    FE_AT_EV_INFO = 5   /* any other +NAME=value line: line */
};

typedef struct fe_at_event {
    enum fe_at_event_kind kind;
    uint16_t addr;        /* RCV: sender's address */
    int rssi, snr;        /* RCV: as reported by the module */
    int err;              /* ERR: the code */
    const uint8_t *frame; /* RCV: the decoded frame */
    size_t frame_len;
    const char *line; /* the line without CR LF, not NUL-terminated */
    size_t line_len;
} fe_at_event;

/* Views in ev are valid only during the call. */
typedef void (*fe_at_event_cb)(void *ctx, const fe_at_event *ev);

typedef struct fe_at_dec_stats {
    uint64_t lines; /* non-empty lines seen, overlong ones excluded */
    uint64_t rcv;   /* +RCV packets delivered */
    uint64_t ok, err, ready, info;
    uint64_t malformed; /* +RCV or +ERR lines that do not parse */
    uint64_t bad_data;  /* +RCV whose data is not in our encoding (another application) */
    uint64_t overlong;  /* lines over FE_AT_LINE_MAX: dropped */
    uint64_t unknown;   /* lines that are no module response (noise, echo) */
} fe_at_dec_stats;

/* Caller-embedded decoder; fields are private except stats. */
typedef struct fe_at_dec {
    fe_at_event_cb on_event;
    void *ctx;
    size_t len;
    uint8_t discarding; /* inside an overlong line */
    fe_at_dec_stats stats;
    char line[FE_AT_LINE_MAX + 1]; /* room for the CR */
    uint8_t frame[FE_AT_FRAME_MAX];
} fe_at_dec;

/* 0 or FE_ERR_INVALID. Nothing to free. */
FE_MUST_CHECK int fe_at_dec_init(fe_at_dec *d, fe_at_event_cb on_event, void *ctx);

/* Forget a partial line (after reopening the port); counters are kept. */
void fe_at_dec_reset(fe_at_dec *d);

/* Push len bytes; calls on_event for each complete line that is a module
 * response. Always consumes everything and returns len. on_event must not
 * call back into d. */
size_t fe_at_dec_feed(fe_at_dec *d, const uint8_t *bytes, size_t len);

#endif
