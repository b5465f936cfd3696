/* UDP transport: see udp.h for what it does; this file says how.
 *
 * Sockets: rx4 is bound to 0.0.0.0:port with SO_REUSEADDR and joins the
 * group; every node on the machine binds the same port, and Linux hands a
 * copy of each multicast or broadcast datagram to every such socket
 * (SO_REUSEADDR is enough there; BSDs want SO_REUSEPORT, set below where it
 * is not Linux). tx4 is bound to 0.0.0.0:<ephemeral> and sends everything,
 * so that our own datagrams, looped back by IP_MULTICAST_LOOP, carry a
 * source port no other socket on this host can have. rx6/tx6 exist only when
 * a static peer is IPv6. With two receive sockets, poll_fd is an epoll set.
 *
 * Multicast on a machine whose only interface is lo (no MULTICAST flag),
 * as measured in a fresh Linux network namespace with lo up (the unit test
 * repeats it in such a namespace):
 *   - IP_ADD_MEMBERSHIP with imr_interface 0.0.0.0 fails with ENODEV (the
 *     kernel picks the interface by routing the group, and there is no
 *     route), and sendto(group) fails with ENETUNREACH;
 *   - IP_ADD_MEMBERSHIP on 127.0.0.1 plus IP_MULTICAST_IF 127.0.0.1 works:
 *     every socket joined there gets each datagram, the sender included
 *     when IP_MULTICAST_LOOP is on (the default);
 *   - with lo down, even the 127.0.0.1 join fails with ENODEV.
 * So with no interface configured we join on the default interface and, in
 * any case, on 127.0.0.1; if the default join fails we send via 127.0.0.1
 * ("fallback"). A node started before its network (a Pi booting) would stay
 * on loopback forever, so tick() retries the default interface every
 * FE_UDP_RESCAN_MS, and a multicast send that finds no route switches to the
 * fallback at once. */
#include "udp.h"

#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#define LOCAL_ADDRS_MAX 64
#define LOCAL_REFRESH_MIN_MS 1000u /* at most one getifaddrs per second on a cache miss */

enum iface_kind { IFACE_DEFAULT = 0, IFACE_ADDR = 1, IFACE_INDEX = 2 };

typedef struct udp_peer {
    struct sockaddr_storage sa;
    socklen_t sa_len;
} udp_peer;

typedef struct local_addr {
    int family;
    uint8_t a[16];
} local_addr;

typedef struct udp_state {
    fe_udp_config cfg;
    fe_udp_stats st;
    int is_open;
    int rx4, tx4, rx6, tx6, ep; /* -1 when absent */
    uint16_t port, tx4_port, tx6_port;
    size_t mtu;

    int mcast; /* a group is configured */
    struct in_addr group;
    enum iface_kind iface_kind;
    struct in_addr iface_addr;
    unsigned iface_index;
    int fallback; /* default interface unusable: multicast goes via 127.0.0.1 */

    struct sockaddr_in bcast[FE_UDP_BCAST_MAX];
    size_t bcast_count;
    udp_peer peers[FE_UDP_PEERS_MAX];
    size_t peer_count;
    int need_v6;

    local_addr local[LOCAL_ADDRS_MAX];
    size_t local_count;
    uint64_t local_refreshed_ms;
    int local_ever_refreshed;
    uint64_t rescan_at_ms;

    uint8_t buf[FE_FRAME_MAX + 1]; /* one byte more than the largest MTU: spots oversize */
} udp_state;

static udp_state *state_of(const fe_transport *t)
{
    return (udp_state *)t->state;
}

static int fail(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t err_len, const char *fmt, ...)
{
    if (err != NULL && err_len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_len, fmt, ap);
        va_end(ap);
    }
    return -1;
}

void fe_udp_config_default(fe_udp_config *cfg)
{
    if (cfg == NULL)
        return;
    memset(cfg, 0, sizeof(*cfg));
    cfg->port = FE_UDP_PORT_DEFAULT;
    snprintf(cfg->group, sizeof(cfg->group), "%s", FE_UDP_GROUP_DEFAULT);
    cfg->mtu = FE_UDP_MTU_DEFAULT;
}

/* --- sockets --- */

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void close_all(udp_state *s)
{
    close_fd(&s->ep);
    close_fd(&s->rx4);
    close_fd(&s->tx4);
    close_fd(&s->rx6);
    close_fd(&s->tx6);
    s->is_open = 0;
    s->port = s->tx4_port = s->tx6_port = 0;
    s->fallback = 0;
}

static int set_int(int fd, int level, int opt, int v)
{
    return setsockopt(fd, level, opt, &v, sizeof(v));
}

static uint16_t bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return 0;
}

/* A socket of family bound to the wildcard address and port (0 = any).
 * shared: SO_REUSEADDR so that other nodes on this host may bind it too.
 * Returns the fd, or -1 with errno set. */
static int open_socket(int family, uint16_t port, int shared)
{
    int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (shared && set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1) != 0)
        goto fail;
#if defined(SO_REUSEPORT) && !defined(__linux__)
    if (shared && set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1) != 0)
        goto fail;
#endif
    if (family == AF_INET6 && set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1) != 0)
        goto fail;
    /* Best effort: the privileged call passes net.core.rmem_max, the plain
     * one is capped by it; a smaller buffer only makes bursts lossier. */
    if (set_int(fd, SOL_SOCKET, SO_RCVBUFFORCE, (int)FE_UDP_RCVBUF_BYTES) != 0)
        (void)set_int(fd, SOL_SOCKET, SO_RCVBUF, (int)FE_UDP_RCVBUF_BYTES);
    int rc;
    if (family == AF_INET) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
        a.sin_addr.s_addr = htonl(INADDR_ANY);
        rc = bind(fd, (struct sockaddr *)&a, sizeof(a));
    } else {
        struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
        a.sin6_addr = in6addr_any;
        rc = bind(fd, (struct sockaddr *)&a, sizeof(a));
    }
    if (rc != 0)
        goto fail;
    return fd;
fail:;
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}

/* --- multicast membership and interface --- */

/* Join the group on the configured interface, on the default one
 * (use_loopback 0) or on 127.0.0.1 (use_loopback 1). 0 or -1 with errno;
 * being already a member there counts as success. */
static int join_group(udp_state *s, int use_loopback)
{
    int rc;
    if (!use_loopback && s->iface_kind == IFACE_INDEX) {
        struct ip_mreqn m = {.imr_multiaddr = s->group, .imr_ifindex = (int)s->iface_index};
        rc = setsockopt(s->rx4, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof(m));
    } else {
        struct ip_mreq m = {.imr_multiaddr = s->group};
        if (use_loopback)
            m.imr_interface.s_addr = htonl(INADDR_LOOPBACK);
        else if (s->iface_kind == IFACE_ADDR)
            m.imr_interface = s->iface_addr;
        else
            m.imr_interface.s_addr = htonl(INADDR_ANY);
        rc = setsockopt(s->rx4, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof(m));
    }
    if (rc != 0 && errno == EADDRINUSE)
        return 0;
    return rc;
}

/* Route our multicast out of the configured interface, the default one, or
 * 127.0.0.1. 0 or -1 with errno. */
static int set_mcast_if(udp_state *s, int use_loopback)
{
    if (!use_loopback && s->iface_kind == IFACE_INDEX) {
        struct ip_mreqn m = {.imr_ifindex = (int)s->iface_index};
        return setsockopt(s->tx4, IPPROTO_IP, IP_MULTICAST_IF, &m, sizeof(m));
    }
    struct in_addr a;
    if (use_loopback)
        a.s_addr = htonl(INADDR_LOOPBACK);
    else if (s->iface_kind == IFACE_ADDR)
        a = s->iface_addr;
    else
        a.s_addr = htonl(INADDR_ANY); /* back to the kernel's choice */
    return setsockopt(s->tx4, IPPROTO_IP, IP_MULTICAST_IF, &a, sizeof(a));
}

static int enter_fallback(udp_state *s)
{
    if (join_group(s, 1) != 0 || set_mcast_if(s, 1) != 0)
        return -1;
    s->fallback = 1;
    return 0;
}

/* In fallback, try the default interface again (the network may have come up). */
static void retry_default(udp_state *s)
{
    if (!s->mcast || !s->fallback || s->iface_kind != IFACE_DEFAULT)
        return;
    if (join_group(s, 0) == 0 && set_mcast_if(s, 0) == 0)
        s->fallback = 0;
}

static int setup_multicast(udp_state *s, char *err, size_t err_len)
{
    char g[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &s->group, g, sizeof(g));
    if (set_int(s->tx4, IPPROTO_IP, IP_MULTICAST_LOOP, 1) != 0 ||
        set_int(s->tx4, IPPROTO_IP, IP_MULTICAST_TTL, 1) != 0)
        return fail(err, err_len, "udp: cannot set multicast options: %s", strerror(errno));
#ifdef IP_MULTICAST_ALL
    /* Only the groups this socket joined, not every group some other
     * program on the host joined on the same port. Best effort. */
    (void)set_int(s->rx4, IPPROTO_IP, IP_MULTICAST_ALL, 0);
#endif
    if (s->iface_kind != IFACE_DEFAULT) {
        if (join_group(s, 0) != 0)
            return fail(err, err_len, "udp: cannot join multicast group %s on %s: %s", g,
                        s->cfg.iface, strerror(errno));
        if (set_mcast_if(s, 0) != 0)
            return fail(err, err_len, "udp: cannot send multicast on %s: %s", s->cfg.iface,
                        strerror(errno));
        return 0;
    }
    int def_rc = join_group(s, 0);
    int def_errno = errno;
    /* Also on loopback, so that a local node in fallback is heard. */
    int lo_rc = join_group(s, 1);
    int lo_errno = errno;
    if (def_rc == 0)
        return 0;
    if (lo_rc != 0)
        return fail(err, err_len,
                    "udp: cannot join multicast group %s on the default interface (%s) "
                    "nor on 127.0.0.1 (%s)",
                    g, strerror(def_errno), strerror(lo_errno));
    if (enter_fallback(s) != 0)
        return fail(err, err_len, "udp: cannot send multicast via 127.0.0.1: %s", strerror(errno));
    return 0;
}

/* --- interface addresses --- */

static int iface_matches(const udp_state *s, const struct ifaddrs *ifa)
{
    switch (s->iface_kind) {
    case IFACE_DEFAULT:
        return 1;
    case IFACE_ADDR:
        return ((const struct sockaddr_in *)ifa->ifa_addr)->sin_addr.s_addr == s->iface_addr.s_addr;
    case IFACE_INDEX:
        return strcmp(ifa->ifa_name, s->cfg.iface) == 0;
    }
    return 0;
}

static void add_bcast(udp_state *s, struct in_addr a)
{
    for (size_t i = 0; i < s->bcast_count; i++)
        if (s->bcast[i].sin_addr.s_addr == a.s_addr)
            return;
    if (s->bcast_count == FE_UDP_BCAST_MAX)
        return;
    struct sockaddr_in *d = &s->bcast[s->bcast_count++];
    memset(d, 0, sizeof(*d));
    d->sin_family = AF_INET;
    d->sin_port = htons(s->port);
    d->sin_addr = a;
}

/* The subnet broadcast address of each matching interface that is up. lo
 * has no broadcast flag, yet its 127.255.255.255 reaches every socket on the
 * host: it is used when lo is asked for by name or address, or when no other
 * interface can broadcast (the one-machine case). 255.255.255.255 only when
 * nothing else was found. */
static void refresh_bcast(udp_state *s)
{
    struct ifaddrs *list = NULL;
    struct in_addr lo_bcast = {0};
    int have_lo = 0;
    s->bcast_count = 0;
    if (getifaddrs(&list) == 0) {
        for (struct ifaddrs *ifa = list; ifa != NULL; ifa = ifa->ifa_next) {
            if (ifa->ifa_addr == NULL || ifa->ifa_addr->sa_family != AF_INET ||
                !(ifa->ifa_flags & IFF_UP) || !iface_matches(s, ifa))
                continue;
            if ((ifa->ifa_flags & IFF_BROADCAST) && ifa->ifa_broadaddr != NULL) {
                add_bcast(s, ((struct sockaddr_in *)ifa->ifa_broadaddr)->sin_addr);
            } else if ((ifa->ifa_flags & IFF_LOOPBACK) && ifa->ifa_netmask != NULL) {
                struct in_addr a = ((struct sockaddr_in *)ifa->ifa_addr)->sin_addr;
                struct in_addr m = ((struct sockaddr_in *)ifa->ifa_netmask)->sin_addr;
                lo_bcast.s_addr = a.s_addr | ~m.s_addr;
                have_lo = 1;
            }
        }
        freeifaddrs(list);
    }
    if (have_lo && (s->iface_kind != IFACE_DEFAULT || s->bcast_count == 0))
        add_bcast(s, lo_bcast);
    if (s->bcast_count == 0) {
        struct in_addr all = {.s_addr = htonl(INADDR_BROADCAST)};
        add_bcast(s, all);
    }
}

static void refresh_local(udp_state *s, uint64_t now_ms)
{
    struct ifaddrs *list = NULL;
    s->local_refreshed_ms = now_ms;
    s->local_ever_refreshed = 1;
    if (getifaddrs(&list) != 0)
        return; /* keep the old table */
    s->local_count = 0;
    for (struct ifaddrs *ifa = list; ifa != NULL && s->local_count < LOCAL_ADDRS_MAX;
         ifa = ifa->ifa_next) {
        if (ifa->ifa_addr == NULL)
            continue;
        local_addr *l = &s->local[s->local_count];
        memset(l, 0, sizeof(*l));
        if (ifa->ifa_addr->sa_family == AF_INET) {
            l->family = AF_INET;
            memcpy(l->a, &((struct sockaddr_in *)ifa->ifa_addr)->sin_addr, 4);
        } else if (ifa->ifa_addr->sa_family == AF_INET6) {
            l->family = AF_INET6;
            memcpy(l->a, &((struct sockaddr_in6 *)ifa->ifa_addr)->sin6_addr, 16);
        } else {
            continue;
        }
        s->local_count++;
    }
    freeifaddrs(list);
}

static int in_local_table(const udp_state *s, int family, const uint8_t *a)
{
    size_t n = family == AF_INET ? 4 : 16;
    for (size_t i = 0; i < s->local_count; i++)
        if (s->local[i].family == family && memcmp(s->local[i].a, a, n) == 0)
            return 1;
    return 0;
}

/* Was this datagram sent by one of our own sending sockets? Only a socket on
 * this host can have our tx port as its source port, and that holds only for
 * local source addresses; a remote host may use the same port number. */
static int is_own(udp_state *s, const struct sockaddr_storage *src, uint64_t now_ms)
{
    int family = src->ss_family;
    const uint8_t *a;
    if (family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)src;
        if (s->tx4 < 0 || ntohs(v4->sin_port) != s->tx4_port)
            return 0;
        /* Loopback, or no source address at all, which some stacks use for
         * multicast looped back from a socket with no multicast interface. */
        if ((ntohl(v4->sin_addr.s_addr) >> 24) == 127 || v4->sin_addr.s_addr == htonl(INADDR_ANY))
            return 1;
        a = (const uint8_t *)&v4->sin_addr;
    } else if (family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)src;
        if (s->tx6 < 0 || ntohs(v6->sin6_port) != s->tx6_port)
            return 0;
        if (IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr) || IN6_IS_ADDR_UNSPECIFIED(&v6->sin6_addr))
            return 1;
        a = (const uint8_t *)&v6->sin6_addr;
    } else {
        return 0;
    }
    if (in_local_table(s, family, a))
        return 1;
    /* Addresses change (DHCP); look again, but not on every datagram. */
    if (!s->local_ever_refreshed || now_ms - s->local_refreshed_ms >= LOCAL_REFRESH_MIN_MS) {
        refresh_local(s, now_ms);
        return in_local_table(s, family, a);
    }
    return 0;
}

/* --- configuration parsing --- */

static int parse_port(const char *p, uint16_t *out)
{
    if (*p < '0' || *p > '9')
        return -1;
    errno = 0;
    char *end = NULL;
    unsigned long v = strtoul(p, &end, 10);
    if (errno != 0 || end == p || *end != '\0' || v == 0 || v > 65535)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

/* Split "host:port", "[v6]:port", "host", "[v6]" or a bare IPv6 address
 * into host and port (default_port when absent). 0 or -1. */
static int split_peer(const char *spec, char *host, size_t host_len, uint16_t *port,
                      uint16_t default_port)
{
    const char *h = spec, *p = NULL;
    size_t hlen;
    if (spec[0] == '[') {
        const char *close = strchr(spec, ']');
        if (close == NULL)
            return -1;
        h = spec + 1;
        hlen = (size_t)(close - h);
        if (close[1] == ':')
            p = close + 2;
        else if (close[1] != '\0')
            return -1;
    } else {
        const char *colon = strchr(spec, ':');
        if (colon != NULL && strchr(colon + 1, ':') == NULL) {
            hlen = (size_t)(colon - spec);
            p = colon + 1;
        } else {
            hlen = strlen(spec); /* no port, or a bare IPv6 address */
        }
    }
    if (hlen == 0 || hlen >= host_len)
        return -1;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    if (p != NULL)
        return parse_port(p, port);
    if (default_port == 0)
        return -1;
    *port = default_port;
    return 0;
}

static int resolve_peer(udp_peer *out, const char *spec, uint16_t default_port, char *err,
                        size_t err_len)
{
    char host[FE_UDP_PEER_CHARS];
    uint16_t port = 0;
    if (split_peer(spec, host, sizeof(host), &port, default_port) != 0)
        return fail(err, err_len, "udp: bad peer \"%s\": expected host:port, [IPv6]:port or a name",
                    spec);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0)
        return fail(err, err_len, "udp: cannot resolve peer \"%s\": %s", spec,
                    rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
    /* IPv4 first: it is what a LAN speaks, and it needs no extra sockets. */
    const struct addrinfo *pick = NULL;
    for (const struct addrinfo *ai = res; ai != NULL && pick == NULL; ai = ai->ai_next)
        if (ai->ai_family == AF_INET)
            pick = ai;
    for (const struct addrinfo *ai = res; ai != NULL && pick == NULL; ai = ai->ai_next)
        if (ai->ai_family == AF_INET6)
            pick = ai;
    if (pick == NULL || pick->ai_addrlen > sizeof(out->sa)) {
        freeaddrinfo(res);
        return fail(err, err_len, "udp: peer \"%s\" has no IPv4 or IPv6 address", spec);
    }
    memset(out, 0, sizeof(*out));
    memcpy(&out->sa, pick->ai_addr, pick->ai_addrlen);
    out->sa_len = pick->ai_addrlen;
    if (pick->ai_family == AF_INET)
        ((struct sockaddr_in *)&out->sa)->sin_port = htons(port);
    else
        ((struct sockaddr_in6 *)&out->sa)->sin6_port = htons(port);
    freeaddrinfo(res);
    return 0;
}

static int parse_config(udp_state *s, char *err, size_t err_len)
{
    const fe_udp_config *c = &s->cfg;
    s->mtu = c->mtu == 0 ? FE_UDP_MTU_DEFAULT : c->mtu;
    if (s->mtu < FE_MTU_MIN || s->mtu > FE_FRAME_MAX)
        return fail(err, err_len, "udp: mtu %zu out of range %d..%d", s->mtu, FE_MTU_MIN,
                    FE_FRAME_MAX);

    s->iface_kind = IFACE_DEFAULT;
    if (c->iface[0] != '\0') {
        if (inet_pton(AF_INET, c->iface, &s->iface_addr) == 1) {
            s->iface_kind = IFACE_ADDR;
        } else {
            s->iface_index = if_nametoindex(c->iface);
            if (s->iface_index == 0)
                return fail(err, err_len, "udp: no interface \"%s\"", c->iface);
            s->iface_kind = IFACE_INDEX;
        }
    }

    s->mcast = c->group[0] != '\0';
    if (s->mcast &&
        (inet_pton(AF_INET, c->group, &s->group) != 1 || !IN_MULTICAST(ntohl(s->group.s_addr))))
        return fail(err, err_len, "udp: \"%s\" is not an IPv4 multicast group", c->group);

    s->need_v6 = 0;
    s->peer_count = c->peer_count;
    for (size_t i = 0; i < c->peer_count; i++) {
        char spec[FE_UDP_PEER_CHARS];
        /* The config array is fixed-size; do not trust it to be terminated. */
        memcpy(spec, c->peers[i], sizeof(spec) - 1);
        spec[sizeof(spec) - 1] = '\0';
        if (resolve_peer(&s->peers[i], spec, c->port, err, err_len) != 0)
            return -1;
        if (s->peers[i].sa.ss_family == AF_INET6)
            s->need_v6 = 1;
    }
    if (!s->mcast && !c->broadcast && c->peer_count == 0)
        return fail(err, err_len,
                    "udp: nothing to send to: no multicast group, broadcast off, no peers");
    return 0;
}

/* --- driver operations --- */

static int udp_open(fe_transport *t, char *err, size_t err_len)
{
    udp_state *s = state_of(t);
    if (s->is_open)
        return fail(err, err_len, "udp: already open");
    if (parse_config(s, err, err_len) != 0)
        return -1;

    s->rx4 = open_socket(AF_INET, s->cfg.port, 1);
    if (s->rx4 < 0) {
        fail(err, err_len, "udp: cannot bind port %u: %s", (unsigned)s->cfg.port, strerror(errno));
        goto fail;
    }
    s->port = bound_port(s->rx4);
    s->tx4 = open_socket(AF_INET, 0, 0);
    if (s->tx4 < 0) {
        fail(err, err_len, "udp: cannot open a sending socket: %s", strerror(errno));
        goto fail;
    }
    s->tx4_port = bound_port(s->tx4);
    if (s->cfg.broadcast && set_int(s->tx4, SOL_SOCKET, SO_BROADCAST, 1) != 0) {
        fail(err, err_len, "udp: cannot enable broadcast: %s", strerror(errno));
        goto fail;
    }
    if (s->mcast && setup_multicast(s, err, err_len) != 0)
        goto fail;

    if (s->need_v6) {
        s->rx6 = open_socket(AF_INET6, s->port, 1);
        if (s->rx6 < 0) {
            fail(err, err_len, "udp: cannot bind IPv6 port %u (an IPv6 peer is configured): %s",
                 (unsigned)s->port, strerror(errno));
            goto fail;
        }
        s->tx6 = open_socket(AF_INET6, 0, 0);
        if (s->tx6 < 0) {
            fail(err, err_len, "udp: cannot open an IPv6 sending socket: %s", strerror(errno));
            goto fail;
        }
        s->tx6_port = bound_port(s->tx6);
        s->ep = epoll_create1(EPOLL_CLOEXEC);
        struct epoll_event e4 = {.events = EPOLLIN, .data.fd = s->rx4};
        struct epoll_event e6 = {.events = EPOLLIN, .data.fd = s->rx6};
        if (s->ep < 0 || epoll_ctl(s->ep, EPOLL_CTL_ADD, s->rx4, &e4) != 0 ||
            epoll_ctl(s->ep, EPOLL_CTL_ADD, s->rx6, &e6) != 0) {
            fail(err, err_len, "udp: cannot create an epoll set: %s", strerror(errno));
            goto fail;
        }
    }

    if (s->cfg.broadcast)
        refresh_bcast(s);
    s->local_ever_refreshed = 0;
    s->rescan_at_ms = 0; /* the first tick takes a fresh look */
    s->is_open = 1;
    return 0;
fail:
    close_all(s);
    return -1;
}

static void udp_close(fe_transport *t)
{
    if (t != NULL && t->state != NULL)
        close_all(state_of(t));
}

static int udp_poll_fd(fe_transport *t)
{
    udp_state *s = state_of(t);
    if (!s->is_open)
        return -1;
    return s->ep >= 0 ? s->ep : s->rx4;
}

/* Read one datagram from fd. 1 if one was handled, 0 if none was waiting,
 * -1 on an error that is not about one datagram. */
static int read_one(fe_transport *t, udp_state *s, int fd, uint64_t now_ms)
{
    struct sockaddr_storage src;
    socklen_t src_len = sizeof(src);
    memset(&src, 0, sizeof(src));
    /* mtu + 1 bytes: a longer datagram is truncated to that, which still
     * tells it apart from one that fits. */
    ssize_t n = recvfrom(fd, s->buf, s->mtu + 1, 0, (struct sockaddr *)&src, &src_len);
    if (n < 0) {
        switch (errno) {
        case EAGAIN:
#if EWOULDBLOCK != EAGAIN
        case EWOULDBLOCK:
#endif
            return 0;
        case EINTR:
            return 1;
        case ECONNREFUSED: /* ICMP errors surfacing on the socket */
        case EHOSTUNREACH:
        case ENETUNREACH:
        case ENOBUFS:
        case ENOMEM:
            s->st.rx_errors++;
            return 1;
        default:
            s->st.rx_errors++;
            return -1;
        }
    }
    if (n == 0 || (size_t)n > s->mtu) {
        s->st.rx_dropped++;
        return 1;
    }
    if (is_own(s, &src, now_ms)) {
        s->st.rx_own++;
        return 1;
    }
    s->st.rx_frames++;
    if (t->ev.frame_in != NULL)
        t->ev.frame_in(t->ev.ctx, t, 0, s->buf, (size_t)n);
    return 1;
}

static int udp_on_readable(fe_transport *t, uint64_t now_ms)
{
    udp_state *s = state_of(t);
    if (!s->is_open)
        return -1;
    int fds[2] = {s->rx4, s->rx6};
    int live[2] = {s->rx4 >= 0, s->rx6 >= 0};
    /* Round robin over the sockets with one budget, so a flood on one can
     * neither starve the other nor the rest of the event loop. */
    for (int budget = FE_UDP_RX_BURST; budget > 0 && (live[0] || live[1]);) {
        for (int i = 0; i < 2 && budget > 0; i++) {
            if (!live[i])
                continue;
            int rc = read_one(t, s, fds[i], now_ms);
            if (rc < 0)
                return -1;
            if (rc == 0) {
                live[i] = 0;
                continue;
            }
            budget--;
            if (!s->is_open) /* the callback closed us */
                return 0;
        }
    }
    return 0;
}

/* One datagram; 0, or -1 with errno. One retry after a signal. */
static int send_to(int fd, const struct sockaddr *sa, socklen_t sa_len, const uint8_t *frame,
                   size_t len)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (sendto(fd, frame, len, 0, sa, sa_len) == (ssize_t)len)
            return 0;
        if (errno != EINTR)
            break;
    }
    return -1;
}

static int is_no_route(int e)
{
    return e == ENETUNREACH || e == EHOSTUNREACH || e == ENODEV || e == EADDRNOTAVAIL;
}

static int udp_send(fe_transport *t, uint32_t peer, const uint8_t *frame, size_t len,
                    enum fe_prio prio, uint64_t now_ms)
{
    (void)prio; /* no airtime budget on a LAN: everything goes at once */
    (void)now_ms;
    udp_state *s = state_of(t);
    if (!s->is_open || peer != 0 || frame == NULL || len == 0 || len > s->mtu) {
        s->st.tx_errors++;
        return -1;
    }
    int sent = 0;
    if (s->mcast) {
        struct sockaddr_in g = {.sin_family = AF_INET, .sin_port = htons(s->port)};
        g.sin_addr = s->group;
        int rc = send_to(s->tx4, (struct sockaddr *)&g, sizeof(g), frame, len);
        if (rc != 0 && is_no_route(errno) && s->iface_kind == IFACE_DEFAULT && !s->fallback &&
            enter_fallback(s) == 0)
            rc = send_to(s->tx4, (struct sockaddr *)&g, sizeof(g), frame, len);
        if (rc == 0)
            sent++;
        else
            s->st.tx_errors++;
    }
    for (size_t i = 0; i < s->bcast_count && s->cfg.broadcast; i++) {
        if (send_to(s->tx4, (struct sockaddr *)&s->bcast[i], sizeof(s->bcast[i]), frame, len) == 0)
            sent++;
        else
            s->st.tx_errors++;
    }
    for (size_t i = 0; i < s->peer_count; i++) {
        const udp_peer *p = &s->peers[i];
        int fd = p->sa.ss_family == AF_INET6 ? s->tx6 : s->tx4;
        if (send_to(fd, (const struct sockaddr *)&p->sa, p->sa_len, frame, len) == 0)
            sent++;
        else
            s->st.tx_errors++;
    }
    if (sent == 0)
        return -1;
    s->st.tx_frames++;
    return 0;
}

static size_t udp_mtu(fe_transport *t)
{
    udp_state *s = state_of(t);
    return s->mtu != 0 ? s->mtu : (s->cfg.mtu != 0 ? s->cfg.mtu : FE_UDP_MTU_DEFAULT);
}

static uint64_t udp_next_deadline(fe_transport *t)
{
    udp_state *s = state_of(t);
    return s->is_open ? s->rescan_at_ms : UINT64_MAX;
}

/* Periodic re-check of the network: interfaces and addresses come and go. */
static int udp_tick(fe_transport *t, uint64_t now_ms)
{
    udp_state *s = state_of(t);
    if (!s->is_open || now_ms < s->rescan_at_ms)
        return 0;
    retry_default(s);
    if (s->cfg.broadcast)
        refresh_bcast(s);
    refresh_local(s, now_ms);
    s->rescan_at_ms = now_ms + FE_UDP_RESCAN_MS;
    return 0;
}

static const fe_transport_ops udp_ops = {
    .name = "udp",
    .kind = FE_LINK_BROADCAST,
    .open = udp_open,
    .close = udp_close,
    .poll_fd = udp_poll_fd,
    .on_readable = udp_on_readable,
    .send = udp_send,
    .mtu = udp_mtu,
    .next_deadline = udp_next_deadline,
    .tick = udp_tick,
};

int fe_udp_new(fe_transport **out, const fe_udp_config *cfg, const fe_transport_events *ev)
{
    if (out == NULL || cfg == NULL || ev == NULL || cfg->peer_count > FE_UDP_PEERS_MAX)
        return FE_ERR_INVALID;
    *out = NULL;
    fe_transport *t = calloc(1, sizeof(*t));
    udp_state *s = calloc(1, sizeof(*s));
    if (t == NULL || s == NULL) {
        free(t);
        free(s);
        return FE_ERR_NOMEM;
    }
    s->cfg = *cfg;
    s->rx4 = s->tx4 = s->rx6 = s->tx6 = s->ep = -1;
    t->ops = &udp_ops;
    t->state = s;
    t->ev = *ev;
    snprintf(t->label, sizeof(t->label), "udp");
    *out = t;
    return 0;
}

void fe_udp_del(fe_transport *t)
{
    if (t == NULL)
        return;
    udp_close(t);
    free(t->state);
    free(t);
}

/* What the kernel granted: the budget queued datagrams are counted against
 * (twice the size asked for, for its bookkeeping). */
static size_t rcvbuf_of(int fd)
{
    int v = 0;
    socklen_t len = sizeof(v);
    if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, &len) != 0 || v <= 0)
        return 0;
    return (size_t)v;
}

void fe_udp_get_stats(const fe_transport *t, fe_udp_stats *out)
{
    const udp_state *s = state_of(t);
    *out = s->st;
    out->mcast_on_loopback = s->is_open && s->mcast && s->fallback;
    out->rcvbuf_bytes = s->is_open ? rcvbuf_of(s->rx4) : 0;
}

uint16_t fe_udp_port(const fe_transport *t)
{
    return state_of(t)->port;
}

void fe_udp_describe(const fe_transport *t, char *out, size_t out_len)
{
    const udp_state *s = state_of(t);
    if (out == NULL || out_len == 0)
        return;
    if (!s->is_open) {
        snprintf(out, out_len, "udp closed");
        return;
    }
    char mc[160] = "no multicast";
    if (s->mcast) {
        char g[INET_ADDRSTRLEN] = "";
        inet_ntop(AF_INET, &s->group, g, sizeof(g));
        const char *via = s->fallback
                              ? "127.0.0.1 (fallback: the default interface has no multicast route)"
                          : s->iface_kind == IFACE_DEFAULT ? "the default interface and 127.0.0.1"
                                                           : s->cfg.iface;
        snprintf(mc, sizeof(mc), "group %s via %s", g, via);
    }
    snprintf(out, out_len, "udp port %u, %s, broadcast %s, %zu static peer%s", (unsigned)s->port,
             mc, s->cfg.broadcast ? "on" : "off", s->peer_count, s->peer_count == 1 ? "" : "s");
}
