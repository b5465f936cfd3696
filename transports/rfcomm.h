/* Bluetooth RFCOMM transport (BlueZ): one point-to-point link per connected
 * peer.
 *
 * The driver listens on an RFCOMM channel of one local adapter and
 * advertises the ferry service there (rfcomm_disc.h); it dials the peers it
 * knows: static ones from the configuration and, with inquiry on, nearby
 * devices that turn out to offer the ferry service. Each connection that is
 * established is reported with peer_up under a fresh peer number (never
 * reused while the driver lives) and with peer_down when it ends; the owner
 * maps (transport, peer) to an engine link. Frames travel in the shared
 * HDLC-like framing of stream.h.
 *
 * Rules, each with its bound below:
 *   - at most max_links connections (connecting or up) at once; an incoming
 *     one beyond that is accepted and closed at once;
 *   - one connection per remote device: when both ends dial each other, the
 *     one dialled by the higher address survives, on both sides alike;
 *   - redial with exponential backoff and jitter, and never more than
 *     FE_RFCOMM_DIALS_PER_MIN dials (SDP lookups included) a minute;
 *   - a connection is dropped after bad_frames_max consecutive rejected
 *     frames (CRC errors, runts, oversize, aborts; FE_RFCOMM_GARBAGE_BYTES of
 *     unframed bytes count as one more), after connect_timeout without
 *     completing, and after idle_timeout without one good frame;
 *   - each connection buffers at most FE_RFCOMM_TXBUF_BYTES of encoded
 *     frames to send; a frame that does not fit is refused (send returns -1)
 *     and bulk and sync frames may only use 3/4 of it, so receipts and small
 *     messages still get through a congested link.
 *
 * No adapter, an adapter that is powered off or blocked, no Bluetooth in the
 * kernel, or permission denied: open still succeeds, logs one line saying
 * so, and leaves the driver inert (no sockets, no busy loop); it checks the
 * adapter again every FE_RFCOMM_ADAPTER_RETRY_MS and starts when it appears.
 * The same happens in reverse when the adapter goes away while running.
 *
 * The driver never reads a clock: time comes in through on_readable, tick
 * and send. Until the first of those calls next_deadline returns 0. After
 * each call into the driver, its owner should read next_deadline again.
 * Callbacks (frame_in, peer_up, peer_down) are made from on_readable, tick
 * and close only, never from send; frame_in may call send.
 *
 * Threads: discovery (inquiry, SDP lookups) blocks for seconds, so it runs
 * on one helper thread that the driver starts when it first needs it and
 * joins in close; results come back through an eventfd in the poll set. All
 * other work, and every callback, happens on the caller's thread. */
#ifndef FE_RFCOMM_H
#define FE_RFCOMM_H

#include <stddef.h>
#include <stdint.h>

#include "../core/err.h"
#include "rfcomm_disc.h"
#include "transport.h"

#define FE_RFCOMM_CHANNEL_DEFAULT 7
#define FE_RFCOMM_CHANNEL_AUTO 0  /* let the kernel pick a free channel at listen */
#define FE_RFCOMM_LINKS_DEFAULT 7 /* a classic piconet has at most 7 active peers */
#define FE_RFCOMM_LINKS_MAX 16
#define FE_RFCOMM_PEERS_MAX 32              /* static peers in the configuration */
#define FE_RFCOMM_REMOTES_MAX 64            /* devices we dial: static + discovered */
#define FE_RFCOMM_NEGCACHE_MAX 64           /* devices known not to run ferry */
#define FE_RFCOMM_ADAPTER_CHARS 18          /* "hci0" or an address, with the NUL */
#define FE_RFCOMM_MTU_DEFAULT FE_FRAME_MAX  /* a reliable stream: no need to fragment */
#define FE_RFCOMM_TXBUF_BYTES (16u * 1024u) /* encoded bytes queued per connection */
#define FE_RFCOMM_RXBUF_BYTES 4096u         /* bytes read per recv call */
#define FE_RFCOMM_RX_READS 8                /* recv calls per connection per on_readable */
#define FE_RFCOMM_ACCEPTS 8                 /* accepts per on_readable */
#define FE_RFCOMM_GARBAGE_BYTES 8192u       /* unframed bytes that count as one bad frame */
#define FE_RFCOMM_DIALS_PER_MIN 20
#define FE_RFCOMM_LOOKUPS_PER_JOB 4       /* SDP lookups handed to the thread at once */
#define FE_RFCOMM_ADAPTER_RETRY_MS 60000u /* adapter re-check, inert or running */
#define FE_RFCOMM_STABLE_MS 30000u        /* a link that lasted this long resets the backoff */
#define FE_RFCOMM_NEGCACHE_MS (30u * 60u * 1000u) /* how long "not a ferry device" holds */
#define FE_RFCOMM_DISCOVERED_FAILS 4 /* failures before a discovered device is forgotten */
#define FE_RFCOMM_LINE_MAX 256       /* one log line */

/* Log levels, as platform/log.h numbers them. */
enum {
    FE_RFCOMM_LOG_ERROR = 0,
    FE_RFCOMM_LOG_WARN = 1,
    FE_RFCOMM_LOG_INFO = 2,
    FE_RFCOMM_LOG_DEBUG = 3
};

/* One complete line, without a newline, already prefixed with the
 * transport's label ("rfcomm: ..."). */
typedef void (*fe_rfcomm_log_fn)(void *ctx, int level, const char *line);

typedef struct fe_rfcomm_peer {
    fe_bt_addr addr;
    uint8_t channel; /* 1..30, or 0: look it up with SDP, falling back to 7 */
} fe_rfcomm_peer;

typedef struct fe_rfcomm_config {
    int enabled;                           /* for the owner; the driver ignores it */
    char adapter[FE_RFCOMM_ADAPTER_CHARS]; /* "hci0" (default), "hciN", or the adapter's address */
    uint8_t channel;                       /* 1..30, or FE_RFCOMM_CHANNEL_AUTO; default 7 */
    int advertise;                         /* register the SDP record; default 1 */
    size_t max_links;                      /* 1..FE_RFCOMM_LINKS_MAX; default 7 */
    size_t mtu;                            /* FE_MTU_MIN..FE_FRAME_MAX; default FE_FRAME_MAX */
    int inquiry;                           /* look for nearby ferry nodes; default 1 */
    uint64_t inquiry_interval_ms;          /* between inquiries; default 2 min, >= 10 s */
    unsigned inquiry_length;               /* units of 1.28 s, 1..48; default 8 (10.24 s) */
    uint64_t connect_timeout_ms;           /* default 20 s */
    uint64_t idle_timeout_ms;              /* default 20 min: more than the engine's
                                            * longest summary gap (1.5 x 10 min) */
    uint64_t backoff_min_ms;               /* first redial delay; default 1 s */
    uint64_t backoff_max_ms;               /* default 5 min */
    unsigned bad_frames_max;               /* consecutive bad frames before a drop; default 8 */
    size_t peer_count;
    fe_rfcomm_peer peers[FE_RFCOMM_PEERS_MAX];

    /* Not from the file: */
    const fe_bt_discovery *discovery; /* NULL: BlueZ (created and freed by the driver);
                                       * else borrowed, must outlive the driver */
    fe_rfcomm_log_fn log;             /* NULL: lines go to stderr */
    void *log_ctx;
    uint32_t seed; /* backoff jitter; any value, e.g. from the node key */
} fe_rfcomm_config;

typedef struct fe_rfcomm_stats {
    uint64_t rx_frames, tx_frames; /* whole frames received / accepted by send() */
    uint64_t rx_bytes, tx_bytes;   /* bytes on the stream, framing included */
    uint64_t tx_refused;           /* send() returned -1: no such peer or buffer full */
    uint64_t rx_bad_frames;        /* frames the deframer rejected, all links */
    uint64_t dials, dial_failures; /* outgoing connection attempts and their failures */
    uint64_t connect_timeouts, idle_timeouts, garbage_drops;
    uint64_t accepted, rejected_cap; /* incoming connections, and those over max_links */
    uint64_t duplicates;             /* connections closed because another one won */
    uint64_t links_up_total;         /* peer_up reports */
    uint64_t inquiries, lookups, lookup_failures;
    uint64_t adapter_checks;
    size_t links_up;         /* current */
    size_t links_connecting; /* current */
} fe_rfcomm_stats;

enum fe_rfcomm_state {
    FE_RFCOMM_CLOSED = 0,
    FE_RFCOMM_RUNNING = 1,      /* adapter up, listening (or dialling only, see describe) */
    FE_RFCOMM_NO_KERNEL = 2,    /* socket(AF_BLUETOOTH) not supported */
    FE_RFCOMM_NO_ADAPTER = 3,   /* the configured adapter does not exist */
    FE_RFCOMM_ADAPTER_DOWN = 4, /* exists but powered off or rfkill-blocked */
    FE_RFCOMM_NO_PERMISSION = 5
};

/* Defaults as listed above, no peers, BlueZ discovery, stderr logging. */
void fe_rfcomm_config_default(fe_rfcomm_config *cfg);

/* Apply one "key = value" of an [rfcomm] config section:
 *   enabled, advertise, inquiry:  true/false, yes/no, on/off, 1/0
 *   adapter:                      hciN or AA:BB:CC:DD:EE:FF
 *   channel:                      1..30 or auto
 *   max_links:                    1..16
 *   mtu:                          32..1400
 *   peer:                         AA:BB:CC:DD:EE:FF [CHANNEL]  (repeatable, at most 32)
 *   inquiry_interval, connect_timeout, idle_timeout, backoff_min, backoff_max:
 *                                 durations: 500ms, 90s, 15m, 2h, or plain seconds
 *   inquiry_length:               1..48 (units of 1.28 s)
 *   bad_frames:                   1..1000
 * Returns 0, FE_ERR_NOTFOUND for an unknown key or FE_ERR_INVALID for a bad
 * value (or too many peers), with one line in err ("channel: expected 1..30
 * or auto, got '44'"). cfg is unchanged on error. */
FE_MUST_CHECK int fe_rfcomm_config_set(fe_rfcomm_config *cfg, const char *key, const char *value,
                                       char *err, size_t err_len);

/* Check the whole (ranges, backoff_min <= backoff_max, duplicate peers).
 * 0 or FE_ERR_INVALID with one line in err. fe_rfcomm_new checks too. */
FE_MUST_CHECK int fe_rfcomm_config_check(const fe_rfcomm_config *cfg, char *err, size_t err_len);

/* Create a closed driver with a copy of cfg and ev. Nothing touches
 * Bluetooth until t->ops->open. Returns 0, FE_ERR_INVALID (NULL argument or
 * a config that fails fe_rfcomm_config_check; err says why) or FE_ERR_NOMEM. */
FE_MUST_CHECK int fe_rfcomm_new(fe_transport **out, const fe_rfcomm_config *cfg,
                                const fe_transport_events *ev, char *err, size_t err_len);

/* Close (if open) and free. Accepts NULL. */
void fe_rfcomm_del(fe_transport *t);

/* Counters since fe_rfcomm_new. t must be an RFCOMM driver. */
void fe_rfcomm_get_stats(const fe_transport *t, fe_rfcomm_stats *out);

enum fe_rfcomm_state fe_rfcomm_get_state(const fe_transport *t);

/* The channel we listen on (useful with auto), or 0 when not listening. */
uint8_t fe_rfcomm_channel(const fe_transport *t);

/* The local adapter's address; 0, or FE_ERR_NOTFOUND when not running. */
int fe_rfcomm_local_addr(const fe_transport *t, fe_bt_addr *out);

/* The remote address of a connected peer: 0, or FE_ERR_NOTFOUND. */
int fe_rfcomm_peer_addr(const fe_transport *t, uint32_t peer, fe_bt_addr *out);

/* One line for logs and `ferry peers`, e.g. "rfcomm hci0 00:1A:7D:DA:71:13
 * channel 7, 2/7 links, 3 known peers" or "rfcomm: adapter hci0 powered off". */
void fe_rfcomm_describe(const fe_transport *t, char *out, size_t out_len);

#endif
