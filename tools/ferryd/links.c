/* ferryd's transports and engine links: see links.h. */
#include "ferryd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "log.h"
#include "udp.h"
#ifdef FE_HAVE_SERIAL
#include "serial.h"
#endif
#ifdef FE_HAVE_RFCOMM
#include "rfcomm.h"
#endif

#define DRAIN_ROUNDS 1000 /* poll rounds of the shutdown drain, whatever the clock says */
#define DRAIN_POLL_MS 100 /* longest single wait of the drain */
#define DRAIN_QUIET_MIN_MS 200u    /* air quiet this long, plus up to ... */
#define DRAIN_QUIET_SPREAD_MS 400u /* ... this, before the notice goes again */

/* ------------------------------------------------------------------ */
/* Driver configuration from the [serial NAME] and [rfcomm] sections. */

/* "FILE:LINE" for a line of the file, or the option that made the section. */
static void where(char *out, size_t cap, const char *origin, const fe_config_driver *dr, int line)
{
    if (line > 0)
        snprintf(out, cap, "%s:%d", origin ? origin : "config", line);
    else
        snprintf(out, cap, "%s", dr->kind == FE_CONFIG_SERIAL ? "--serial" : "--rfcomm");
}

static void section_name(char *out, size_t cap, const fe_config_driver *dr)
{
    if (dr->kind == FE_CONFIG_SERIAL)
        snprintf(out, cap, "serial %s", dr->name);
    else
        snprintf(out, cap, "rfcomm");
}

#ifdef FE_HAVE_SERIAL
static int serial_build(const fe_config *c, const fe_config_driver *dr, const char *origin,
                        fe_serial_config *out, char *err, size_t err_len)
{
    char msg[256] = "", at[FE_CONFIG_PATH_MAX + 16];
    fe_serial_config_default(out);
    for (size_t i = 0; i < dr->pair_count; i++) {
        const fe_config_pair *p = &dr->pairs[i];
        if (fe_serial_config_set(out, fe_config_key(c, p), fe_config_value(c, p), msg,
                                 sizeof(msg)) != 0) {
            where(at, sizeof(at), origin, dr, p->line);
            fe_errf(err, err_len, "%s: serial %s: %s", at, dr->name, msg);
            return -1;
        }
    }
    if (fe_serial_config_check(out, msg, sizeof(msg)) != 0) {
        where(at, sizeof(at), origin, dr, dr->line);
        fe_errf(err, err_len, "%s: serial %s: %s", at, dr->name, msg);
        return -1;
    }
    return 0;
}
#endif

#ifdef FE_HAVE_RFCOMM
static int rfcomm_build(const fe_config *c, const fe_config_driver *dr, const char *origin,
                        fe_rfcomm_config *out, char *err, size_t err_len)
{
    char msg[256] = "", at[FE_CONFIG_PATH_MAX + 16];
    fe_rfcomm_config_default(out);
    for (size_t i = 0; i < dr->pair_count; i++) {
        const fe_config_pair *p = &dr->pairs[i];
        if (fe_rfcomm_config_set(out, fe_config_key(c, p), fe_config_value(c, p), msg,
                                 sizeof(msg)) != 0) {
            where(at, sizeof(at), origin, dr, p->line);
            fe_errf(err, err_len, "%s: rfcomm: %s", at, msg);
            return -1;
        }
    }
    if (fe_rfcomm_config_check(out, msg, sizeof(msg)) != 0) {
        where(at, sizeof(at), origin, dr, dr->line);
        fe_errf(err, err_len, "%s: rfcomm: %s", at, msg);
        return -1;
    }
    return 0;
}
#endif

int fe_links_check_config(const fe_config *c, const char *origin, char *err, size_t err_len)
{
    for (size_t i = 0; i < c->driver_count; i++) {
        const fe_config_driver *dr = &c->drivers[i];
        char at[FE_CONFIG_PATH_MAX + 16], name[64];
        where(at, sizeof(at), origin, dr, dr->line);
        section_name(name, sizeof(name), dr);
        if (dr->kind == FE_CONFIG_SERIAL) {
#ifdef FE_HAVE_SERIAL
            fe_serial_config sc;
            if (serial_build(c, dr, origin, &sc, err, err_len) != 0)
                return -1;
#else
            fe_errf(err, err_len,
                    "%s: %s: this ferryd was built without serial support (libserialport)", at,
                    name);
            return -1;
#endif
        } else {
#ifdef FE_HAVE_RFCOMM
            fe_rfcomm_config rc;
            if (rfcomm_build(c, dr, origin, &rc, err, err_len) != 0)
                return -1;
#else
            fe_errf(err, err_len,
                    "%s: %s: this ferryd was built without Bluetooth support (libbluetooth)", at,
                    name);
            return -1;
#endif
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* The table. */

fe_dlink *fe_links_find(fe_daemon *d, uint32_t id)
{
    for (size_t i = 0; id && i < FE_DAEMON_LINKS_MAX; i++)
        if (d->links[i].id == id)
            return &d->links[i];
    return NULL;
}

static fe_dlink *find_peer(fe_daemon *d, const fe_dtransport *tr, uint32_t peer)
{
    for (size_t i = 0; i < FE_DAEMON_LINKS_MAX; i++) {
        fe_dlink *l = &d->links[i];
        if (l->id && l->tr == tr && l->peer == peer)
            return l;
    }
    return NULL;
}

/* A free slot with the given id, or for id 0 the next free id of the p2p
 * pool; NULL when the table is full. */
static fe_dlink *alloc_link(fe_daemon *d, fe_dtransport *tr, uint32_t peer, uint32_t id)
{
    fe_dlink *slot = NULL;
    for (size_t i = 0; i < FE_DAEMON_LINKS_MAX && !slot; i++)
        if (d->links[i].id == 0)
            slot = &d->links[i];
    if (!slot)
        return NULL;
    /* At most FE_DAEMON_LINKS_MAX ids are taken, so this finds one within
     * that many + 1 tries. */
    for (unsigned tries = 0; id == 0 && tries <= FE_DAEMON_LINKS_MAX; tries++) {
        uint32_t cand = FE_DAEMON_LINK_P2P_FIRST + d->next_p2p % FE_DAEMON_LINK_P2P_IDS;
        d->next_p2p = (d->next_p2p + 1) % FE_DAEMON_LINK_P2P_IDS;
        if (!fe_links_find(d, cand))
            id = cand;
    }
    if (id == 0)
        return NULL;
    memset(slot, 0, sizeof(*slot));
    slot->id = id;
    slot->tr = tr;
    slot->peer = peer;
    return slot;
}

static fe_dlink *bcast_link(fe_daemon *d, const fe_dtransport *tr)
{
    return tr->link ? fe_links_find(d, tr->link) : NULL;
}

static size_t mtu_of(const fe_dtransport *tr)
{
    return tr->t->ops->mtu(tr->t);
}

/* Tell the engine link l is up; 0 or -1 (logged). */
static int engine_up(fe_daemon *d, fe_dlink *l, uint64_t now)
{
    fe_link_info li = {.kind = l->peer ? FE_LINK_P2P : FE_LINK_BROADCAST, .mtu = mtu_of(l->tr)};
    /* Static UDP peers get their own copy of each datagram and need not
     * hear one another: what we hear from some says nothing of the rest. */
    li.no_suppression = l->tr->type == FE_DT_UDP && d->cfg.udp.peers_count > 0;
    int rc = fe_node_link_up(d->node, l->id, &li, now);
    if (rc != 0) {
        fe_log(FE_LOG_ERROR, "engine: cannot bring link %u (%s) up: %s (mtu %zu)", (unsigned)l->id,
               l->tr->name, fe_strerror(rc), li.mtu);
        return -1;
    }
    l->up = 1;
    l->up_ms = now;
    return 0;
}

static void engine_down(fe_daemon *d, fe_dlink *l, uint64_t now)
{
    if (!l->up)
        return;
    l->up = 0;
    if (d->node)
        (void)fe_node_link_down(d->node, l->id, now);
}

static void set_up(fe_daemon *d, fe_dlink *l, int up, uint64_t now)
{
    if (!l || up == l->up)
        return;
    if (up) {
        if (engine_up(d, l, now) == 0 && !d->stopping)
            fe_daemon_link_event(d, l, "up");
    } else {
        engine_down(d, l, now);
        if (!d->stopping)
            fe_daemon_link_event(d, l, "down");
    }
}

void fe_links_relink(fe_daemon *d, uint64_t now_ms)
{
    for (size_t i = 0; i < FE_DAEMON_LINKS_MAX; i++) {
        fe_dlink *l = &d->links[i];
        if (l->id && l->up && engine_up(d, l, now_ms) != 0)
            l->up = 0;
    }
}

int fe_links_any_up(const fe_daemon *d)
{
    for (size_t i = 0; i < FE_DAEMON_LINKS_MAX; i++)
        if (d->links[i].id && d->links[i].up)
            return 1;
    return 0;
}

int fe_links_send(fe_daemon *d, uint32_t link, const uint8_t *frame, size_t len, enum fe_prio prio,
                  uint64_t now_ms)
{
    fe_dlink *l = fe_links_find(d, link);
    if (!l || !l->up || !l->tr->open)
        return -1;
    if (l->tr->t->ops->send(l->tr->t, l->peer, frame, len, prio, now_ms) != 0) {
        l->tx_refused++;
        return -1;
    }
    l->tx_frames++;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Driver events. */

static void on_frame_in(void *ctx, fe_transport *t, uint32_t peer, const uint8_t *frame, size_t len)
{
    fe_dtransport *tr = ctx;
    fe_daemon *d = tr->d;
    (void)t;
    tr->rx_seen++;
    if (d->stopping)
        return; /* the last commit is done: nothing more goes into the store */
    fe_dlink *l = tr->link ? bcast_link(d, tr) : find_peer(d, tr, peer);
    if (!l || !l->up)
        return;
    l->rx_frames++;
    int rc = fe_node_on_frame(d->node, l->id, frame, len, fe_daemon_now(d));
    if (rc < 0 && fe_err_is_fatal(rc))
        fe_log(FE_LOG_ERROR, "engine: %s while handling a frame (see the store error above)",
               fe_strerror(rc));
}

#ifdef FE_HAVE_RFCOMM
static void peer_text(char *out, size_t cap, const fe_dtransport *tr, uint32_t peer)
{
    fe_bt_addr a;
    if (fe_rfcomm_peer_addr(tr->t, peer, &a) == 0)
        fe_bt_addr_format(out, cap, &a);
    else
        snprintf(out, cap, "unknown address");
}
#endif

static void on_peer_up(void *ctx, fe_transport *t, uint32_t peer)
{
    fe_dtransport *tr = ctx;
    fe_daemon *d = tr->d;
    char who[32] = "";
    (void)t;
    if (d->stopping || tr->link)
        return;
#ifdef FE_HAVE_RFCOMM
    peer_text(who, sizeof(who), tr, peer);
#endif
    if (find_peer(d, tr, peer))
        return; /* reported twice: the driver promises not to */
    uint64_t now = fe_daemon_now(d);
    fe_dlink *l = alloc_link(d, tr, peer, 0);
    if (!l) {
        fe_log(FE_LOG_WARN,
               "%s: peer %u (%s) connected, but all %d engine links are taken: its frames are "
               "ignored",
               tr->name, (unsigned)peer, who, FE_DAEMON_LINKS_MAX);
        return;
    }
    /* Words chosen so as not to read like the driver's own "link up" lines. */
    fe_log(FE_LOG_INFO, "%s: peer %u (%s) joins the mesh as engine link %u", tr->name,
           (unsigned)peer, who, (unsigned)l->id);
    set_up(d, l, 1, now);
    if (!l->up)
        memset(l, 0, sizeof(*l)); /* the engine refused it; logged */
}

static void on_peer_down(void *ctx, fe_transport *t, uint32_t peer)
{
    fe_dtransport *tr = ctx;
    fe_daemon *d = tr->d;
    (void)t;
    fe_dlink *l = tr->link ? NULL : find_peer(d, tr, peer);
    if (!l)
        return;
    if (!d->stopping)
        fe_log(FE_LOG_INFO, "%s: peer %u left; engine link %u closed", tr->name, (unsigned)peer,
               (unsigned)l->id);
    set_up(d, l, 0, fe_daemon_now(d));
    memset(l, 0, sizeof(*l));
}

#if defined(FE_HAVE_SERIAL) || defined(FE_HAVE_RFCOMM)
/* For the drivers' log callbacks: the line is complete ("serial lora0:
 * ..." or "rfcomm: ..."), the levels are fe_log's. */
static void driver_log(void *ctx, int level, const char *line)
{
    (void)ctx;
    fe_log(level, "%s", line);
}
#endif

/* A serial link is up in the engine while its port is open. */
static void serial_sync(fe_dtransport *tr, uint64_t now)
{
#ifdef FE_HAVE_SERIAL
    if (tr->type != FE_DT_SERIAL || !tr->open)
        return;
    fe_serial_stats st;
    fe_serial_get_stats(tr->t, now, &st);
    set_up(tr->d, bcast_link(tr->d, tr), st.is_open != 0, now);
#else
    (void)tr;
    (void)now;
#endif
}

/* ------------------------------------------------------------------ */
/* Reading, failing, reopening. */

static uint64_t on_reopen(fe_loop *loop, int64_t id, uint64_t now_ms, void *ctx);
static void on_fd(fe_loop *loop, int fd, void *ctx);

static uint64_t udp_seen(const fe_dtransport *tr)
{
    fe_udp_stats st;
    fe_udp_get_stats(tr->t, &st);
    return st.rx_frames + st.rx_dropped + st.rx_own + st.rx_errors;
}

/* Open tr, watch its fd, bring its broadcast link up (UDP; a serial link
 * follows its port). 0, or -1 with err, tr left closed. */
static int tr_open(fe_dtransport *tr, char *err, size_t err_len)
{
    fe_daemon *d = tr->d;
    if (tr->t->ops->open(tr->t, err, err_len) != 0) {
        tr->t->ops->close(tr->t);
        return -1;
    }
    int fd = tr->t->ops->poll_fd(tr->t);
    if (fd < 0 || fe_loop_fd_add(d->loop, fd, on_fd, tr) != 0) {
        fe_errf(err, err_len, "%s: cannot watch its file descriptor", tr->name);
        tr->t->ops->close(tr->t);
        return -1;
    }
    tr->fd = fd;
    tr->open = 1;
    uint64_t now = fe_daemon_now(d);
    if (tr->type == FE_DT_UDP) {
        fe_dlink *l = bcast_link(d, tr);
        set_up(d, l, 1, now);
        if (!l || !l->up) {
            fe_errf(err, err_len, "engine: cannot bring the %s link up (mtu %zu)", tr->name,
                    mtu_of(tr));
            fe_loop_fd_del(d->loop, fd);
            tr->fd = -1;
            tr->open = 0;
            tr->t->ops->close(tr->t);
            return -1;
        }
    }
    serial_sync(tr, now);
    return 0;
}

/* Close tr: its links go down (RFCOMM reports each peer down from close). */
static void tr_close(fe_dtransport *tr)
{
    fe_daemon *d = tr->d;
    if (tr->fd >= 0)
        fe_loop_fd_del(d->loop, tr->fd);
    tr->fd = -1;
    if (tr->open)
        tr->t->ops->close(tr->t);
    tr->open = 0;
    set_up(d, bcast_link(d, tr), 0, fe_daemon_now(d));
}

static void tr_failed(fe_dtransport *tr)
{
    fe_daemon *d = tr->d;
    fe_log(FE_LOG_ERROR, "%s: receiving failed (%s); link down, reopening every %u s", tr->name,
           strerror(errno), FE_DAEMON_REOPEN_MS / 1000u);
    tr_close(tr);
    if (tr->t_reopen <= 0) {
        int64_t t =
            fe_loop_timer_add(d->loop, fe_daemon_now(d) + FE_DAEMON_REOPEN_MS, on_reopen, tr);
        tr->t_reopen = t > 0 ? t : 0;
    }
}

static uint64_t on_reopen(fe_loop *loop, int64_t id, uint64_t now_ms, void *ctx)
{
    fe_dtransport *tr = ctx;
    char err[256];
    (void)loop;
    (void)id;
    if (tr_open(tr, err, sizeof(err)) != 0) {
        fe_log(FE_LOG_DEBUG, "%s; trying again in %u s", err, FE_DAEMON_REOPEN_MS / 1000u);
        return now_ms + FE_DAEMON_REOPEN_MS;
    }
    if (tr->link)
        fe_log(FE_LOG_INFO, "%s: link up again", tr->name);
    else
        fe_log(FE_LOG_INFO, "%s: reopened", tr->name);
    tr->t_reopen = 0;
    return FE_LOOP_NOMORE;
}

static void on_fd(fe_loop *loop, int fd, void *ctx)
{
    fe_dtransport *tr = ctx;
    fe_daemon *d = tr->d;
    (void)loop;
    (void)fd;
    if (!tr->open)
        return;
    if (tr->type != FE_DT_UDP) {
        uint64_t now = fe_daemon_now(d);
        if (tr->t->ops->on_readable(tr->t, now) != 0) {
            tr_failed(tr);
            return;
        }
        serial_sync(tr, now);
        return;
    }
    /* The UDP driver reads FE_UDP_RX_BURST datagrams per call; read a few
     * bursts while it keeps finding some, so a busy turn costs one commit
     * for many frames rather than one per burst. Bounded, so control
     * clients are still served between. */
    for (int round = 0; round < FE_DAEMON_RX_ROUNDS; round++) {
        uint64_t before = udp_seen(tr);
        if (tr->t->ops->on_readable(tr->t, fe_daemon_now(d)) != 0) {
            tr_failed(tr);
            return;
        }
        if (udp_seen(tr) - before < FE_UDP_RX_BURST)
            return;
    }
}

uint64_t fe_links_deadline(const fe_daemon *d)
{
    uint64_t t = UINT64_MAX;
    for (size_t i = 0; i < d->tr_count; i++) {
        const fe_dtransport *tr = &d->tr[i];
        if (!tr->open)
            continue;
        uint64_t dl = tr->t->ops->next_deadline(tr->t);
        if (dl < t)
            t = dl;
    }
    return t;
}

void fe_links_tick(fe_daemon *d, uint64_t now_ms)
{
    for (size_t i = 0; i < d->tr_count; i++) {
        fe_dtransport *tr = &d->tr[i];
        if (!tr->open || tr->t->ops->next_deadline(tr->t) > now_ms)
            continue;
        tr->t->ops->tick(tr->t, now_ms);
        serial_sync(tr, now_ms);
    }
}

/* ------------------------------------------------------------------ */
/* Start and stop. */

static void udp_config(const fe_config *c, fe_udp_config *u)
{
    fe_udp_config_default(u);
    u->port = c->udp.port;
    u->group[0] = '\0';
    if (c->udp.group.s_addr != 0)
        inet_ntop(AF_INET, &c->udp.group, u->group, sizeof(u->group));
    snprintf(u->iface, sizeof(u->iface), "%s", c->udp.interface);
    u->broadcast = c->udp.broadcast;
    u->mtu = c->udp.mtu;
    for (size_t i = 0; i < c->udp.peers_count && i < FE_UDP_PEERS_MAX; i++) {
        char a[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &c->udp.peers[i].addr, a, sizeof(a));
        snprintf(u->peers[i], sizeof(u->peers[i]), "%s:%u", a, (unsigned)c->udp.peers[i].port);
        u->peer_count = i + 1;
    }
}

static fe_dtransport *new_tr(fe_daemon *d, enum fe_dtransport_type type, const char *name)
{
    if (d->tr_count >= FE_DAEMON_TRANSPORTS_MAX)
        return NULL;
    fe_dtransport *tr = &d->tr[d->tr_count];
    memset(tr, 0, sizeof(*tr));
    tr->d = d;
    tr->type = type;
    tr->fd = -1;
    snprintf(tr->name, sizeof(tr->name), "%s", name);
    return tr;
}

static fe_transport_events events_for(fe_dtransport *tr)
{
    return (fe_transport_events){
        .ctx = tr, .frame_in = on_frame_in, .peer_up = on_peer_up, .peer_down = on_peer_down};
}

/* Create the driver of section dr into tr (not opened). 0 or -1 with err. */
static int create_driver(fe_daemon *d, fe_dtransport *tr, const fe_config_driver *dr, char *err,
                         size_t err_len)
{
    fe_transport_events ev = events_for(tr);
#ifdef FE_HAVE_SERIAL
    if (dr->kind == FE_CONFIG_SERIAL) {
        fe_serial_config sc;
        if (serial_build(&d->cfg, dr, "config", &sc, err, err_len) != 0)
            return -1;
        sc.log = driver_log;
        sc.log_ctx = tr;
        tr->airtime_window_ms = sc.duty_window_ms;
        if (fe_serial_new(&tr->t, &sc, &ev) != 0) {
            fe_errf(err, err_len, "%s: cannot create the transport (out of memory?)", tr->name);
            return -1;
        }
        /* Logs then say "serial NAME: ...", as the section is called. */
        snprintf(tr->t->label, sizeof(tr->t->label), "%s", dr->name);
        return 0;
    }
#endif
#ifdef FE_HAVE_RFCOMM
    if (dr->kind == FE_CONFIG_RFCOMM) {
        fe_rfcomm_config rc;
        char msg[256] = "";
        if (rfcomm_build(&d->cfg, dr, "config", &rc, err, err_len) != 0)
            return -1;
        rc.log = driver_log;
        rc.log_ctx = tr;
        /* Backoff jitter differs from node to node, and stays the same
         * across restarts of one. */
        rc.seed = (uint32_t)d->id.pk[0] << 24 | (uint32_t)d->id.pk[1] << 16 |
                  (uint32_t)d->id.pk[2] << 8 | d->id.pk[3];
        if (fe_rfcomm_new(&tr->t, &rc, &ev, msg, sizeof(msg)) != 0) {
            fe_errf(err, err_len, "rfcomm: cannot create the transport: %s",
                    msg[0] ? msg : "out of memory");
            return -1;
        }
        return 0;
    }
#endif
    (void)d;
    (void)dr;
    (void)ev;
    fe_errf(err, err_len, "%s: not supported by this build", tr->name);
    return -1;
}

/* Whether the [rfcomm] section asks for the transport (enabled = ...). */
static int rfcomm_enabled(const fe_config *c, const fe_config_driver *dr)
{
#ifdef FE_HAVE_RFCOMM
    fe_rfcomm_config rc;
    char err[256];
    return rfcomm_build(c, dr, "config", &rc, err, sizeof(err)) == 0 && rc.enabled;
#else
    (void)c;
    (void)dr;
    return 1; /* then refused as unsupported */
#endif
}

int fe_links_start(fe_daemon *d, char *err, size_t err_len)
{
    fe_dtransport *tr;
    d->next_p2p = 0;
    if (d->cfg.udp.enabled) {
        fe_udp_config u;
        udp_config(&d->cfg, &u);
        tr = new_tr(d, FE_DT_UDP, "udp");
        fe_transport_events ev = events_for(tr);
        if (fe_udp_new(&tr->t, &u, &ev) != 0) {
            fe_errf(err, err_len, "udp: cannot create the transport");
            return -1;
        }
        d->tr_count++;
        tr->link = FE_DAEMON_LINK_UDP;
        if (!alloc_link(d, tr, 0, tr->link) || tr_open(tr, err, err_len) != 0)
            return -1;
    }
    uint32_t next_serial = FE_DAEMON_LINK_SERIAL_FIRST;
    for (size_t i = 0; i < d->cfg.driver_count; i++) {
        const fe_config_driver *dr = &d->cfg.drivers[i];
        char name[64];
        section_name(name, sizeof(name), dr);
        if (dr->kind == FE_CONFIG_RFCOMM && !rfcomm_enabled(&d->cfg, dr)) {
            fe_log(FE_LOG_INFO, "rfcomm: disabled in the configuration (enabled = false)");
            continue;
        }
        tr = new_tr(d, dr->kind == FE_CONFIG_SERIAL ? FE_DT_SERIAL : FE_DT_RFCOMM, name);
        if (!tr) {
            fe_errf(err, err_len, "%s: too many transports (at most %d)", name,
                    FE_DAEMON_TRANSPORTS_MAX);
            return -1;
        }
        if (create_driver(d, tr, dr, err, err_len) != 0)
            return -1;
        d->tr_count++;
        if (dr->kind == FE_CONFIG_SERIAL) {
            tr->link = next_serial++;
            if (!alloc_link(d, tr, 0, tr->link)) {
                fe_errf(err, err_len, "%s: no engine link left", name);
                return -1;
            }
        }
        /* Fails only when the system is short of epoll sets or eventfds: a
         * missing port or adapter is retried by the driver. */
        if (tr_open(tr, err, err_len) != 0)
            return -1;
    }
    return 0;
}

void fe_links_stop(fe_daemon *d)
{
    d->stopping = 1;
    for (size_t i = 0; i < d->tr_count; i++) {
        fe_dtransport *tr = &d->tr[i];
        if (tr->t_reopen > 0)
            fe_loop_timer_del(d->loop, tr->t_reopen);
        tr->t_reopen = 0;
        tr_close(tr);
        switch (tr->type) {
        case FE_DT_UDP:
            fe_udp_del(tr->t);
            break;
        case FE_DT_SERIAL:
#ifdef FE_HAVE_SERIAL
            fe_serial_del(tr->t);
#endif
            break;
        case FE_DT_RFCOMM:
#ifdef FE_HAVE_RFCOMM
            fe_rfcomm_del(tr->t);
#endif
            break;
        }
        tr->t = NULL;
    }
    d->tr_count = 0;
    memset(d->links, 0, sizeof(d->links));
}

#ifdef FE_HAVE_SERIAL
/* Poll the open radios until their queues are empty and, when quiet_ms is
 * set, nothing has come in from them for that long; or until end. Returns
 * how many radios are open. */
static size_t drain_radios(fe_daemon *d, uint64_t end, uint64_t quiet_ms)
{
    uint64_t heard_ms = fe_daemon_now(d);
    size_t n = 0;
    for (int round = 0; round < DRAIN_ROUNDS; round++) {
        struct pollfd pfd[FE_DAEMON_TRANSPORTS_MAX];
        fe_dtransport *who[FE_DAEMON_TRANSPORTS_MAX];
        uint64_t now = fe_daemon_now(d), next = UINT64_MAX;
        n = 0;
        for (size_t i = 0; i < d->tr_count; i++) {
            fe_dtransport *tr = &d->tr[i];
            fe_serial_stats st;
            if (tr->type != FE_DT_SERIAL || !tr->open)
                continue;
            fe_serial_get_stats(tr->t, now, &st);
            if (!st.is_open)
                continue; /* nowhere to send it */
            uint64_t dl = tr->t->ops->next_deadline(tr->t);
            if (dl <= now) {
                tr->t->ops->tick(tr->t, now);
                dl = tr->t->ops->next_deadline(tr->t);
            }
            if (dl < next)
                next = dl; /* UINT64_MAX: nothing left to send */
            pfd[n] = (struct pollfd){.fd = tr->fd, .events = POLLIN};
            who[n++] = tr;
        }
        if (n == 0 || now >= end)
            return n;
        if (next == UINT64_MAX) {
            if (now - heard_ms >= quiet_ms)
                return n;
            next = heard_ms + quiet_ms;
        }
        uint64_t wait = next > now ? next - now : 0;
        if (wait > end - now)
            wait = end - now;
        if (wait > DRAIN_POLL_MS)
            wait = DRAIN_POLL_MS;
        if (poll(pfd, n, (int)wait) < 0 && errno != EINTR)
            return n;
        now = fe_daemon_now(d);
        for (size_t i = 0; i < n; i++) {
            if (!pfd[i].revents)
                continue;
            (void)who[i]->t->ops->on_readable(who[i]->t, now); /* frames in: ignored */
            heard_ms = now;                                    /* someone is on the air */
        }
    }
    return n;
}
#endif

void fe_links_drain(fe_daemon *d, uint64_t max_ms)
{
    d->stopping = 1;
#ifdef FE_HAVE_SERIAL
    uint64_t end = fe_daemon_now(d) + max_ms;
    if (drain_radios(d, end, 0) == 0)
        return;
    /* A radio is half-duplex and shared: a neighbour that was sending while
     * our notice was on the air missed it, and we will not be here to repair
     * that. So once the air has been quiet for a random while, say it again. */
    uint64_t quiet = DRAIN_QUIET_MIN_MS + randombytes_uniform(DRAIN_QUIET_SPREAD_MS);
    if (drain_radios(d, end, quiet) == 0 || fe_daemon_now(d) >= end)
        return;
    if (fe_node_repeat_going_offline(d->node, fe_daemon_now(d)) != FE_OK)
        return;
    fe_log(FE_LOG_DEBUG, "going-offline notice sent again, after %u ms of quiet air",
           (unsigned)quiet);
    (void)drain_radios(d, end, 0);
#else
    (void)max_ms;
#endif
}

/* ------------------------------------------------------------------ */
/* Descriptions. */

void fe_links_describe(const fe_dtransport *tr, char *out, size_t out_len)
{
    switch (tr->type) {
    case FE_DT_UDP:
        fe_udp_describe(tr->t, out, out_len);
        return;
    case FE_DT_SERIAL:
#ifdef FE_HAVE_SERIAL
        fe_serial_describe(tr->t, out, out_len);
        return;
#else
        break;
#endif
    case FE_DT_RFCOMM:
#ifdef FE_HAVE_RFCOMM
        fe_rfcomm_describe(tr->t, out, out_len);
        return;
#else
        break;
#endif
    }
    snprintf(out, out_len, "%s", tr->name);
}

/* A small receive buffer drops bursts, which anti-entropy repairs only
 * seconds later: say so once, with the fix. */
static void log_rcvbuf(const fe_dtransport *tr)
{
    fe_udp_stats st;
    fe_udp_get_stats(tr->t, &st);
    if (st.rcvbuf_bytes >= FE_UDP_RCVBUF_BYTES) {
        fe_log(FE_LOG_DEBUG, "udp receive buffer %zu KiB", st.rcvbuf_bytes / 1024);
        return;
    }
    fe_log(FE_LOG_WARN,
           "udp receive buffer is %zu KiB (wanted %u KiB): bursts of more than about %zu "
           "frames will be dropped and resent seconds later; raise the limit with "
           "'sysctl -w net.core.rmem_max=%u' or run ferryd with CAP_NET_ADMIN",
           st.rcvbuf_bytes / 1024, 2 * FE_UDP_RCVBUF_BYTES / 1024,
           st.rcvbuf_bytes / FE_UDP_DATAGRAM_COST, 2 * FE_UDP_RCVBUF_BYTES);
}

void fe_links_log_start(fe_daemon *d)
{
    char line[512];
    int udp = 0;
    for (size_t i = 0; i < d->tr_count; i++) {
        const fe_dtransport *tr = &d->tr[i];
        fe_links_describe(tr, line, sizeof(line));
        if (tr->type == FE_DT_UDP) {
            udp = 1;
            for (size_t p = 0; p < d->cfg.udp.peers_count; p++) {
                char a[INET_ADDRSTRLEN];
                size_t n = strlen(line);
                inet_ntop(AF_INET, &d->cfg.udp.peers[p].addr, a, sizeof(a));
                snprintf(line + n, sizeof(line) - n, "%s%s:%u", p ? ", " : ": ", a,
                         (unsigned)d->cfg.udp.peers[p].port);
            }
        }
        if (tr->link)
            fe_log(FE_LOG_INFO, "%s (engine link %u)", line, (unsigned)tr->link);
        else
            fe_log(FE_LOG_INFO, "%s", line);
        if (tr->type == FE_DT_UDP && tr->open)
            log_rcvbuf(tr);
    }
    if (!udp)
        fe_log(FE_LOG_INFO, "udp disabled");
    if (d->tr_count == 0)
        fe_log(FE_LOG_WARN, "no transport is configured: this node can reach nobody");
}
