/* Serial radio modem transport: LoRa and other UART radios as one broadcast
 * link, opened and configured with libserialport.
 *
 * Profiles (what is spoken on the UART):
 *   hdlc         raw byte link: stream.h framing (flags, byte stuffing,
 *                CRC-16) and the whole frame written at once;
 *   kiss         a KISS TNC (RNode-style LoRa firmware, packet TNCs): one
 *                KISS data frame per ferry frame, see kiss.h;
 *   transparent  a transparent UART module (Ebyte E32/E22...): stream.h
 *                framing, written in sub-packets of the module's size (58,
 *                240...) paced by the air data rate, since the module sends
 *                each sub-packet as one radio packet;
 *   at           a REYAX RYLR896/998-style AT modem: one AT+SEND per frame,
 *                data in the Z85 alphabet, see at_modem.h.
 *
 * Sending: frames go through a bounded priority queue (receipts first, sync
 * last; airtime.h) and leave one at a time, each after the previous one has
 * had its time on the wire and on air (the radio is half-duplex), and only
 * while the duty-cycle budget allows. next_deadline/tick drive all of it.
 *
 * A port that vanishes (USB unplugged, read or write error, hang-up) is
 * logged in one line, closed and reopened with exponential backoff from
 * FE_SERIAL_BACKOFF_MIN_MS to FE_SERIAL_BACKOFF_MAX_MS; frames sent
 * meanwhile wait in the queue. A device that is missing when the driver
 * opens is handled the same way: open succeeds and the driver keeps trying.
 *
 * poll_fd is an epoll set that stays the same across reopens, so the event
 * loop registers it once. The driver reads no clock: every call that needs
 * the time takes now_ms. Not thread-safe. */
#ifndef FE_SERIAL_H
#define FE_SERIAL_H

#include <stddef.h>
#include <stdint.h>

#include "../core/err.h"
#include "airtime.h"
#include "at_modem.h"
#include "transport.h"

#define FE_SERIAL_PATH_MAX 256
#define FE_SERIAL_USB_SERIAL_MAX 64
#define FE_SERIAL_AT_INIT_MAX 8    /* at_init commands */
#define FE_SERIAL_QUEUE_DEFAULT 64 /* frames waiting to be sent */
#define FE_SERIAL_BAUD_DEFAULT 9600
#define FE_SERIAL_SUBPACKET_DEFAULT 58 /* Ebyte E32 */
#define FE_SERIAL_SUBPACKET_MIN 16
#define FE_SERIAL_SUBPACKET_MAX 1024
#define FE_SERIAL_MTU_DEFAULT 255 /* hdlc and kiss: one LoRa packet */
#define FE_SERIAL_BACKOFF_MIN_MS 1000u
#define FE_SERIAL_BACKOFF_MAX_MS 60000u
#define FE_SERIAL_STABLE_MS 60000u  /* an open lasting this long resets the backoff */
#define FE_SERIAL_AT_REPLY_MS 1000u /* AT: wait this long for +OK/+ERR past the airtime */
#define FE_SERIAL_AT_ATTEMPTS 3     /* AT: sends of a frame the modem refuses as busy */
#define FE_SERIAL_RX_BURST 16       /* reads per on_readable call */

enum fe_serial_profile {
    FE_SERIAL_HDLC = 0,
    FE_SERIAL_KISS = 1,
    FE_SERIAL_TRANSPARENT = 2,
    FE_SERIAL_AT = 3
};

enum fe_serial_parity {
    FE_SERIAL_PARITY_NONE = 0,
    FE_SERIAL_PARITY_ODD,
    FE_SERIAL_PARITY_EVEN,
    FE_SERIAL_PARITY_MARK,
    FE_SERIAL_PARITY_SPACE
};

enum fe_serial_flow {
    FE_SERIAL_FLOW_NONE = 0,
    FE_SERIAL_FLOW_RTSCTS,
    FE_SERIAL_FLOW_XONXOFF,
    FE_SERIAL_FLOW_DTRDSR
};

/* Log levels are those of the daemon's log (0 error, 1 warn, 2 info,
 * 3 debug). msg is one line without a newline, valid during the call. */
typedef void (*fe_serial_log_fn)(void *ctx, int level, const char *msg);

typedef struct fe_serial_config {
    /* Which port: a device path (symlinks such as a udev name are followed),
     * or else the first USB adapter with this VID:PID (and serial number). */
    char path[FE_SERIAL_PATH_MAX];
    int usb_match;
    uint16_t usb_vid, usb_pid;
    char usb_serial[FE_SERIAL_USB_SERIAL_MAX]; /* empty: any */

    uint32_t baud;     /* default 9600 */
    uint8_t data_bits; /* 5..8, default 8 */
    enum fe_serial_parity parity;
    uint8_t stop_bits; /* 1 or 2 */
    enum fe_serial_flow flow;

    enum fe_serial_profile profile;
    size_t subpacket;      /* transparent: bytes per radio packet; 0 = 58 */
    uint32_t air_rate_bps; /* air data rate of a transparent module; 0 = unknown */
    int lora_set;          /* lora holds the modulation: airtime by AN1200.13 */
    fe_lora_params lora;
    uint32_t duty_ppm;       /* duty-cycle limit in parts per million; 0 = none */
    uint64_t duty_window_ms; /* default one hour */
    size_t mtu;              /* 0 = the profile's (fe_serial_config_mtu) */
    size_t queue_frames;     /* 1..FE_AIRTIME_QUEUE_MAX, default 64 */

    uint16_t at_dest; /* at: destination address, 0 = broadcast */
    size_t at_init_count;
    char at_init[FE_SERIAL_AT_INIT_MAX][FE_AT_CMD_MAX + 1]; /* sent in order at each open */

    fe_serial_log_fn log; /* NULL: lines go to stderr */
    void *log_ctx;
} fe_serial_config;

/* Defaults: no port, 9600 8N1, no flow control, profile hdlc, no airtime
 * model, no duty-cycle limit, one-hour window, queue of 64. */
void fe_serial_config_default(fe_serial_config *cfg);

/* Apply one "key = value" of a config section (keys in hw/README.md):
 * path, usb, usb_serial, baud, data_bits, parity, stop_bits, flow, profile,
 * subpacket, air_rate, sf, bw, cr, preamble, header, crc, ldro, duty_cycle,
 * duty_window, mtu, queue, at_dest, at_init (repeatable). Returns 0, or -1
 * with one line in err ("unknown key", "bad value ...") and cfg unchanged. */
int fe_serial_config_set(fe_serial_config *cfg, const char *key, const char *value, char *err,
                         size_t err_len);

/* Check the whole after all keys: a port (path or usb, not both), values
 * that fit the profile, an airtime model when a duty cycle is set.
 * 0, or -1 with one line in err. */
int fe_serial_config_check(const fe_serial_config *cfg, char *err, size_t err_len);

/* The MTU the driver will report for cfg: mtu if set, else 192 (at), 255
 * (hdlc, kiss) or what fits one sub-packet after framing (transparent),
 * never below FE_MTU_MIN. */
size_t fe_serial_config_mtu(const fe_serial_config *cfg);

const char *fe_serial_profile_name(enum fe_serial_profile p);

/* Create a closed driver with copies of cfg and ev (cfg must pass
 * fe_serial_config_check). Nothing is opened until t->ops->open. Returns
 * 0, FE_ERR_INVALID or FE_ERR_NOMEM. */
FE_MUST_CHECK int fe_serial_new(fe_transport **out, const fe_serial_config *cfg,
                                const fe_transport_events *ev);

/* Close (if open) and free, queued frames included. Accepts NULL. */
void fe_serial_del(fe_transport *t);

typedef struct fe_serial_stats {
    uint64_t frames_in, bytes_in;   /* frames reported through frame_in, and their bytes */
    uint64_t frames_out, bytes_out; /* frames written to the port (at: and taken with +OK) */
    uint64_t crc_errors;            /* hdlc/transparent: frames with a bad FCS */
    uint64_t rx_rejects;        /* other bad input: runts, oversize, bad escapes, bad AT lines */
    uint64_t tx_dropped;        /* refused or evicted by the full queue */
    uint64_t tx_too_big;        /* frames over the MTU: refused */
    uint64_t tx_over_budget;    /* frames whose airtime alone exceeds the budget: refused */
    uint64_t tx_lost;           /* frames cut off by a vanished port */
    uint64_t modem_errors;      /* at: +ERR answers and missing replies (the frame is lost) */
    uint64_t tx_retries;        /* at: frames sent again after +ERR=17 (modem still busy) */
    uint64_t budget_waits;      /* times the queue had to wait for the duty cycle */
    size_t queued;              /* frames waiting now */
    uint64_t airtime_us;        /* all airtime spent since creation */
    uint64_t airtime_window_us; /* airtime in the budget window (an hour by default) up to now */
    uint64_t airtime_budget_us; /* allowed per window; UINT64_MAX: no limit */
    uint64_t opens;             /* successful opens */
    uint64_t reopens;           /* successful opens after losing the port */
    int is_open;
} fe_serial_stats;

/* Counters of a serial driver, the airtime window evaluated at now_ms. */
void fe_serial_get_stats(fe_transport *t, uint64_t now_ms, fe_serial_stats *out);

/* Airtime the driver accounts for sending frame (0 without an airtime
 * model), or UINT64_MAX if the frame cannot be sent (too big). */
uint64_t fe_serial_frame_airtime_us(const fe_transport *t, const uint8_t *frame, size_t len);

/* One line for logs, e.g. "serial /dev/ttyUSB0 (from /dev/ferry-lora) 9600
 * 8N1, transparent, sub-packet 58, mtu 50, duty 1%: open". */
void fe_serial_describe(const fe_transport *t, char *out, size_t out_len);

typedef struct fe_serial_port_info {
    const char *path;        /* "/dev/ttyUSB0" */
    const char *description; /* from the OS or the USB descriptor; may be "" */
    int usb;                 /* 1 when the fields below are known */
    uint16_t usb_vid, usb_pid;
    const char *usb_serial;   /* "" when unknown */
    const char *manufacturer; /* "" when unknown */
    const char *product;      /* "" when unknown */
} fe_serial_port_info;

/* Call cb once per serial port of the system, sorted by path (strings
 * valid during the call). Returns the number of ports, or FE_ERR_INVALID
 * (NULL cb), FE_ERR_NOMEM or FE_ERR_NOTFOUND (the system could not be
 * asked) with nothing reported. */
int fe_serial_list_ports(void (*cb)(void *ctx, const fe_serial_port_info *port), void *ctx);

#endif
