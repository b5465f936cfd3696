/* UDP transport: the local network as one broadcast link.
 *
 * send(peer 0) puts the frame, unchanged, in one datagram to each of: the
 * IPv4 multicast group, the subnet broadcast address(es) when enabled, and
 * every static unicast peer. Datagrams arriving on the port are reported as
 * frames from peer 0; the driver does not look inside them.
 *
 * Zero configuration on one machine: every node binds the same port with
 * SO_REUSEADDR and joins the same group with multicast loopback on, so
 * several daemons on one desktop hear each other. A node sends from its own
 * socket bound to an ephemeral port and recognises its own datagrams by that
 * source port and a local source address, so nothing is added to frames.
 *
 * Static peers on the same machine as other nodes need distinct ports:
 * unicast to a port that several sockets share reaches only one of them. */
#ifndef FE_UDP_H
#define FE_UDP_H

#include <stddef.h>
#include <stdint.h>

#include "../core/err.h"
#include "transport.h"

#define FE_UDP_PORT_DEFAULT 4747
#define FE_UDP_GROUP_DEFAULT "239.255.70.1"
#define FE_UDP_MTU_DEFAULT 1200
#define FE_UDP_PEERS_MAX 32
#define FE_UDP_PEER_CHARS 80
#define FE_UDP_RX_BURST 64      /* datagrams read per on_readable call, all sockets together */
#define FE_UDP_BCAST_MAX 8      /* subnet broadcast destinations */
#define FE_UDP_RESCAN_MS 10000u /* interface re-check period (see tick) */
/* Receive buffer asked for on each socket. A small datagram costs about
 * FE_UDP_DATAGRAM_COST bytes of buffer on Linux, so the usual default (208 KiB) holds only
 * 256 of them: one window of a sender's unacknowledged messages
 * (FE_ORIGIN_QUOTA). A frame dropped there waits for anti-entropy, seconds
 * later. Asking for 2 MiB gets 4 MiB of budget (the kernel doubles it),
 * about 5,000 datagrams. Without CAP_NET_ADMIN the kernel caps the request
 * at net.core.rmem_max. */
#define FE_UDP_RCVBUF_BYTES (2u << 20)
#define FE_UDP_DATAGRAM_COST 832 /* buffer bytes one small datagram takes (measured, Linux) */

typedef struct fe_udp_config {
    uint16_t port;     /* default 4747; 0 = an ephemeral port (tests), see fe_udp_port */
    char group[64];    /* IPv4 multicast group, default "239.255.70.1"; empty = no multicast */
    char iface[64];    /* interface name or IPv4 address; empty = default */
    int broadcast;     /* also send to 255.255.255.255 / subnet broadcast */
    size_t mtu;        /* default 1200; FE_MTU_MIN..FE_FRAME_MAX */
    size_t peer_count; /* at most FE_UDP_PEERS_MAX */
    /* "host:port" static unicast peers: IPv4, [IPv6]:port or a name; the port
     * defaults to port when left out. Resolved once, at open. */
    char peers[FE_UDP_PEERS_MAX][FE_UDP_PEER_CHARS];
} fe_udp_config;

typedef struct fe_udp_stats {
    uint64_t rx_frames;    /* datagrams reported through frame_in */
    uint64_t tx_frames;    /* frames sent to at least one destination */
    uint64_t rx_dropped;   /* empty or larger than the MTU: ignored */
    uint64_t tx_errors;    /* failed sendto calls (one per destination), refused frames */
    uint64_t rx_own;       /* our own datagrams heard back (multicast loop): ignored */
    uint64_t rx_errors;    /* recvfrom failures other than "nothing to read" */
    int mcast_on_loopback; /* 1 when multicast runs over 127.0.0.1 as the fallback */
    size_t rcvbuf_bytes;   /* receive budget the kernel granted (IPv4), 0 when closed */
} fe_udp_stats;

/* Fill cfg with the defaults above: port 4747, group 239.255.70.1, default
 * interface, no broadcast, MTU 1200, no static peers. */
void fe_udp_config_default(fe_udp_config *cfg);

/* Create a closed UDP driver with a copy of cfg and ev; nothing is resolved
 * or bound until t->ops->open(t, err, err_len), which reports any problem
 * with the configuration as one line in err. Returns 0, FE_ERR_INVALID (NULL
 * argument, more than FE_UDP_PEERS_MAX peers) or FE_ERR_NOMEM. */
FE_MUST_CHECK int fe_udp_new(fe_transport **out, const fe_udp_config *cfg,
                             const fe_transport_events *ev);

/* Close (if open) and free. Accepts NULL. */
void fe_udp_del(fe_transport *t);

/* Counters since fe_udp_new. t must be a UDP driver. */
void fe_udp_get_stats(const fe_transport *t, fe_udp_stats *out);

/* The port bound by open (useful with port 0), or 0 when closed. */
uint16_t fe_udp_port(const fe_transport *t);

/* One line for logs, e.g. "udp port 4747, group 239.255.70.1 via 127.0.0.1
 * (fallback: no multicast route), 2 peers". */
void fe_udp_describe(const fe_transport *t, char *out, size_t out_len);

#endif
