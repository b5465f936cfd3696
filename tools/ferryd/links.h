/* Inside ferryd: the transports it runs and the engine links they carry.
 *
 * Transports: UDP (at most one), one serial radio per [serial NAME] section,
 * Bluetooth RFCOMM (at most one). A broadcast transport (UDP, serial) is one
 * engine link with a fixed id: UDP is link 1, the serial sections follow in
 * file order. A point-to-point transport (RFCOMM) reports peers; each peer
 * that connects gets a link id from a pool, taken in turn so that a fresh
 * link never reuses the id of one that just went (frames held for the
 * commit may still name it), and the engine's table bounds how many are up.
 *
 * The table maps both ways: the node's send callback names a link, which
 * leads to (transport, driver peer); a driver's frame_in names (transport,
 * peer), which leads to the link.
 *
 * A serial link is up in the engine while its port is open: a radio that is
 * unplugged takes no frames, and when it comes back the engine starts
 * anti-entropy on it again. The driver itself retries the port. */
#ifndef FE_FERRYD_LINKS_H
#define FE_FERRYD_LINKS_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "node.h"
#include "transport.h"

#define FE_DAEMON_LINK_UDP 1u          /* engine link id of the UDP transport */
#define FE_DAEMON_LINK_SERIAL_FIRST 2u /* serial sections: 2, 3, ... in file order */
#define FE_DAEMON_LINK_P2P_FIRST 256u  /* RFCOMM peers: ids from this pool, taken in turn */
#define FE_DAEMON_LINK_P2P_IDS 65536u
#define FE_DAEMON_TRANSPORTS_MAX (1 + FE_CONFIG_DRIVERS_MAX) /* udp, serial sections, rfcomm */
#define FE_DAEMON_LINKS_MAX FE_LINKS_MAX                     /* as many as the engine holds */
#define FE_DAEMON_DRAIN_MS 2000u /* at shutdown: wait this long at most for radio queues */

_Static_assert(FE_DAEMON_LINK_SERIAL_FIRST + FE_CONFIG_DRIVERS_MAX <= FE_DAEMON_LINK_P2P_FIRST,
               "broadcast and p2p link ids must not overlap");

typedef struct fe_daemon fe_daemon;

enum fe_dtransport_type { FE_DT_UDP = 1, FE_DT_SERIAL = 2, FE_DT_RFCOMM = 3 };

typedef struct fe_dtransport {
    fe_daemon *d;
    enum fe_dtransport_type type;
    char name[64]; /* "udp", "serial lora0", "rfcomm": for logs and the control API */
    fe_transport *t;
    int open;                   /* open succeeded, its fd is watched */
    int fd;                     /* watched fd, or -1 */
    uint32_t link;              /* broadcast transports: their engine link id */
    int64_t t_reopen;           /* after a fatal read error: reopen timer, 0 when not armed */
    uint64_t rx_seen;           /* frames reported by the driver, for read bursts */
    uint64_t airtime_window_ms; /* serial: the duty-cycle window its airtime is counted in */
} fe_dtransport;

typedef struct fe_dlink {
    uint32_t id; /* engine link id; 0: free slot */
    fe_dtransport *tr;
    uint32_t peer;                             /* the driver's peer number; 0 on broadcast */
    int up;                                    /* the engine knows it */
    uint64_t up_ms;                            /* when it last came up */
    uint64_t rx_frames, tx_frames, tx_refused; /* as the daemon saw them */
} fe_dlink;

/* Check the [serial NAME] and [rfcomm] sections of c with their drivers'
 * own parsers, without starting anything. origin names the config file in
 * messages ("FILE:LINE: serial NAME: message"; sections added from the
 * command line say "command line" instead). 0, or -1 with one line in err. */
int fe_links_check_config(const fe_config *c, const char *origin, char *err, size_t err_len);

/* Create and open every configured transport, watch their fds, bring the
 * broadcast links up. A missing serial port or Bluetooth adapter is not an
 * error (the drivers retry); a UDP port in use is. 0, or -1 with one line
 * in err. Needs d->loop and d->node. */
int fe_links_start(fe_daemon *d, char *err, size_t err_len);

/* Close and free every transport (RFCOMM reports its peers down, which
 * tells the node). Needs the node still alive. Idempotent. */
void fe_links_stop(fe_daemon *d);

/* Give the radios' queues up to max_ms to go out (the going-offline notice)
 * before the daemon exits. Frames that arrive meanwhile are ignored. */
void fe_links_drain(fe_daemon *d, uint64_t max_ms);

/* Hand a frame the node produced to the transport of link. 0, or -1 if
 * there is no such link any more or the driver refused it. */
int fe_links_send(fe_daemon *d, uint32_t link, const uint8_t *frame, size_t len, enum fe_prio prio,
                  uint64_t now_ms);

/* Tell a freshly loaded node every link that is up. */
void fe_links_relink(fe_daemon *d, uint64_t now_ms);

/* Is any link up? */
int fe_links_any_up(const fe_daemon *d);

/* The earliest driver deadline (absolute ms), or UINT64_MAX. */
uint64_t fe_links_deadline(const fe_daemon *d);

/* Run the driver timers that are due. */
void fe_links_tick(fe_daemon *d, uint64_t now_ms);

/* One log line per transport, for the start. */
void fe_links_log_start(fe_daemon *d);

/* The transport's one-line state ("serial /dev/ttyUSB0 9600 8N1, at,
 * mtu 192: open"). */
void fe_links_describe(const fe_dtransport *tr, char *out, size_t out_len);

/* The link with that engine id, or NULL. */
fe_dlink *fe_links_find(fe_daemon *d, uint32_t id);

#endif
