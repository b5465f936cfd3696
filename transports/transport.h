/* The transport driver interface: a small const vtable plus an opaque
 * context. Drivers move frames and report neighbours; they know nothing of
 * messages, receipts or keys.
 *
 * A driver exposes one or more links to the engine. A broadcast driver (UDP
 * multicast, a LoRa modem) is one FE_LINK_BROADCAST link; a point-to-point
 * driver (RFCOMM) reports one FE_LINK_P2P link per connected peer through
 * link_up/link_down. Link ids are assigned by the daemon. */
#ifndef FE_TRANSPORT_H
#define FE_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "../core/node.h"

typedef struct fe_transport fe_transport;

typedef struct fe_transport_events {
    void *ctx;
    /* A whole frame arrived from peer (a driver-local peer number; 0 on broadcast media). */
    void (*frame_in)(void *ctx, fe_transport *t, uint32_t peer, const uint8_t *frame, size_t len);
    /* A point-to-point peer connected / went away. */
    void (*peer_up)(void *ctx, fe_transport *t, uint32_t peer);
    void (*peer_down)(void *ctx, fe_transport *t, uint32_t peer);
} fe_transport_events;

typedef struct fe_transport_ops {
    const char *name;
    enum fe_link_kind kind;
    /* Start the driver. On failure returns -1 and writes a one-line reason to err. */
    int (*open)(fe_transport *t, char *err, size_t err_len);
    void (*close)(fe_transport *t);
    /* Fd to poll for reading, or -1 (then on_readable is called every loop turn). */
    int (*poll_fd)(fe_transport *t);
    /* The fd is readable: read and report frames. 0 or -1 on a fatal error. */
    int (*on_readable)(fe_transport *t, uint64_t now_ms);
    /* Send a frame to peer (0 = everyone on a broadcast medium). 0, or -1 if dropped. */
    int (*send)(fe_transport *t, uint32_t peer, const uint8_t *frame, size_t len,
                enum fe_prio prio, uint64_t now_ms);
    /* Largest frame the medium carries in one piece. */
    size_t (*mtu)(fe_transport *t);
    /* Timers of the driver (reconnects, airtime queue), or UINT64_MAX. */
    uint64_t (*next_deadline)(fe_transport *t);
    int (*tick)(fe_transport *t, uint64_t now_ms);
} fe_transport_ops;

struct fe_transport {
    const fe_transport_ops *ops;
    void *state;                  /* driver-owned */
    fe_transport_events ev;
    char label[32];               /* config section name, for logs */
};

#endif
