/* Test-only LD_PRELOAD shim: Bluetooth RFCOMM on a kernel without Bluetooth.
 *
 * The kernels that run CI have no Bluetooth (socket(AF_BLUETOOTH) fails with
 * EAFNOSUPPORT). This shim gives the real RFCOMM driver, unmodified, a fake
 * world built from Unix stream sockets:
 *
 *   FERRY_BTSHIM_DIR   directory of the fake air; unset = no Bluetooth in the
 *                      kernel (EAFNOSUPPORT from socket and the hci_* calls)
 *   FERRY_BTSHIM_ADDR  this process's adapters, "AA:..:01,AA:..:02": hci0,
 *                      hci1, ...; unset or empty = no adapter (ENODEV)
 *   FERRY_BTSHIM_POWER "off": every adapter is powered off (no HCI_UP)
 *   FERRY_BTSHIM_EPERM "1": asking for an adapter fails with EPERM
 *
 * Mapping:
 *   - socket(AF_BLUETOOTH, SOCK_STREAM, BTPROTO_RFCOMM) is an AF_UNIX stream
 *     socket (same flags); other Bluetooth sockets are EPROTONOSUPPORT;
 *   - bind() only records the sockaddr_rc (BDADDR_ANY means hci0); the
 *     address must be one of this process's adapters;
 *   - listen() binds DIR/<ADDR>_<channel> (channel 0: the first free one,
 *     1..30, as the kernel does) and removes it at close; a file left by a
 *     dead process is reused;
 *   - connect() binds the client to the abstract name
 *     "ferry-btshim/<ADDR>/<pid>/<n>", so accept() can report the caller's
 *     address, then connects to DIR/<ADDR>_<channel>. Like the kernel, a
 *     non-blocking connect answers EINPROGRESS and completes later: success
 *     shows as writable with SO_ERROR 0; no listener (ECONNREFUSED) shows as
 *     a hang-up with SO_ERROR ECONNREFUSED;
 *   - a file DIR/<ADDR>.blackhole makes every connect to that device hang
 *     forever (the fd becomes a pipe that never turns writable), for connect
 *     timeouts;
 *   - getsockname/getpeername return sockaddr_rc; SOL_BLUETOOTH and
 *     SOL_RFCOMM options are accepted and remembered;
 *   - hci_get_route, hci_devid and hci_devinfo describe the fake adapters.
 *
 * Tests reach two helpers with dlsym: fe_btshim_active() and
 * fe_btshim_break(addr or NULL), which shuts down this process's connected
 * RFCOMM sockets (those of addr, or all), as a radio link lost at both ends.
 * Not thread-safe beyond a lock around its table. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <bluetooth/bluetooth.h>
#include <bluetooth/hci.h>
#include <bluetooth/rfcomm.h>

#define SHIM_FDS 4096
#define SHIM_ADAPTERS 8
#define ABSTRACT_PREFIX "ferry-btshim/"

typedef struct bt_fd {
    int used;
    int listening;
    int bound;
    bdaddr_t local;
    uint8_t local_ch;
    int connected;
    bdaddr_t remote;
    uint8_t remote_ch;
    int pending_err; /* reported once through SO_ERROR */
    int bh_w;        /* blackhole: write end of the pipe, or -1 */
    uint8_t sec_level;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
} bt_fd;

static bt_fd table[SHIM_FDS];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned counter;

typedef int (*socket_fn)(int, int, int);
typedef int (*bind_fn)(int, const struct sockaddr *, socklen_t);
typedef int (*listen_fn)(int, int);
typedef int (*accept4_fn)(int, struct sockaddr *, socklen_t *, int);
typedef int (*connect_fn)(int, const struct sockaddr *, socklen_t);
typedef int (*name_fn)(int, struct sockaddr *, socklen_t *);
typedef int (*setsockopt_fn)(int, int, int, const void *, socklen_t);
typedef int (*getsockopt_fn)(int, int, int, void *, socklen_t *);
typedef int (*close_fn)(int);

static void *next_symbol(const char *name)
{
    void *p = dlsym(RTLD_NEXT, name);
    if (p == NULL) {
        fprintf(stderr, "btshim: no next %s\n", name);
        abort();
    }
    return p;
}

#define REAL(type, name) ((type)real_sym(&real_##name, #name))
static void *real_socket, *real_bind, *real_listen, *real_accept4, *real_connect, *real_getsockname,
    *real_getpeername, *real_setsockopt, *real_getsockopt, *real_close;

static void *real_sym(void **slot, const char *name)
{
    void *p = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (p == NULL) {
        p = next_symbol(name);
        __atomic_store_n(slot, p, __ATOMIC_RELEASE);
    }
    return p;
}

/* Own address helpers: the shim must not need libbluetooth itself. */
static int parse_ba(const char *str, bdaddr_t *ba)
{
    unsigned v[6];
    char tail;
    if (strlen(str) != 17 || sscanf(str, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3],
                                    &v[4], &v[5], &tail) != 6)
        return -1;
    for (int i = 0; i < 6; i++)
        ba->b[5 - i] = (uint8_t)v[i];
    return 0;
}

static void format_ba(const bdaddr_t *ba, char out[18])
{
    snprintf(out, 18, "%02X:%02X:%02X:%02X:%02X:%02X", ba->b[5], ba->b[4], ba->b[3], ba->b[2],
             ba->b[1], ba->b[0]);
}

/* --- the environment --- */

static const char *shim_dir(void)
{
    const char *d = getenv("FERRY_BTSHIM_DIR");
    return d != NULL && d[0] != '\0' ? d : NULL;
}

/* Adapters of this process, in hci order. */
static int adapters(bdaddr_t *out, int max)
{
    const char *list = getenv("FERRY_BTSHIM_ADDR");
    int n = 0;
    if (list == NULL)
        return 0;
    while (*list != '\0' && n < max) {
        char one[18];
        size_t len = strcspn(list, ",");
        if (len == 17) {
            memcpy(one, list, 17);
            one[17] = '\0';
            if (parse_ba(one, &out[n]) == 0)
                n++;
        }
        list += len;
        if (*list == ',')
            list++;
    }
    return n;
}

static int is_adapter(const bdaddr_t *a)
{
    bdaddr_t ad[SHIM_ADAPTERS];
    int n = adapters(ad, SHIM_ADAPTERS);
    for (int i = 0; i < n; i++) {
        if (bacmp(&ad[i], a) == 0)
            return 1;
    }
    return 0;
}

static int first_adapter(bdaddr_t *out)
{
    bdaddr_t ad[SHIM_ADAPTERS];
    if (adapters(ad, SHIM_ADAPTERS) < 1)
        return -1;
    *out = ad[0];
    return 0;
}

static bt_fd *entry(int fd)
{
    return fd >= 0 && fd < SHIM_FDS && table[fd].used ? &table[fd] : NULL;
}

static int listen_path(char *out, size_t out_len, const bdaddr_t *a, unsigned ch)
{
    char s[18];
    format_ba(a, s);
    int n = snprintf(out, out_len, "%s/%s_%u", shim_dir(), s, ch);
    return n > 0 && (size_t)n < out_len ? 0 : -1;
}

/* --- sockets --- */

int socket(int domain, int type, int protocol)
{
    if (domain != AF_BLUETOOTH)
        return REAL(socket_fn, socket)(domain, type, protocol);
    if (shim_dir() == NULL) {
        errno = EAFNOSUPPORT; /* what this kernel says */
        return -1;
    }
    int base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (base != SOCK_STREAM || protocol != BTPROTO_RFCOMM) {
        errno = EPROTONOSUPPORT;
        return -1;
    }
    int fd = REAL(socket_fn, socket)(AF_UNIX, type, 0);
    if (fd < 0)
        return -1;
    if (fd >= SHIM_FDS) {
        REAL(close_fn, close)(fd);
        errno = EMFILE;
        return -1;
    }
    pthread_mutex_lock(&mu);
    memset(&table[fd], 0, sizeof(table[fd]));
    table[fd].used = 1;
    table[fd].bh_w = -1;
    table[fd].sec_level = BT_SECURITY_LOW;
    pthread_mutex_unlock(&mu);
    return fd;
}

int bind(int fd, const struct sockaddr *sa, socklen_t len)
{
    bt_fd *e = entry(fd);
    if (e == NULL)
        return REAL(bind_fn, bind)(fd, sa, len);
    const struct sockaddr_rc *rc = (const struct sockaddr_rc *)sa;
    if (sa == NULL || len < sizeof(*rc) || rc->rc_family != AF_BLUETOOTH) {
        errno = EINVAL;
        return -1;
    }
    bdaddr_t a = rc->rc_bdaddr;
    if (bacmp(&a, BDADDR_ANY) == 0 ? first_adapter(&a) != 0 : !is_adapter(&a)) {
        errno = EADDRNOTAVAIL;
        return -1;
    }
    if (rc->rc_channel > 30) {
        errno = EINVAL;
        return -1;
    }
    pthread_mutex_lock(&mu);
    e->local = a;
    e->local_ch = rc->rc_channel;
    e->bound = 1;
    pthread_mutex_unlock(&mu);
    return 0;
}

/* A socket file with nobody listening, left by a process that died. */
static int stale(const char *path)
{
    int probe = REAL(socket_fn, socket)(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe < 0)
        return 0;
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    snprintf(un.sun_path, sizeof(un.sun_path), "%s", path);
    int rc = REAL(connect_fn, connect)(probe, (struct sockaddr *)&un, sizeof(un));
    int e = errno;
    REAL(close_fn, close)(probe);
    return rc != 0 && e == ECONNREFUSED;
}

static int bind_path(int fd, const char *path)
{
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    snprintf(un.sun_path, sizeof(un.sun_path), "%s", path);
    if (REAL(bind_fn, bind)(fd, (struct sockaddr *)&un, sizeof(un)) == 0)
        return 0;
    if (errno == EADDRINUSE && stale(path)) {
        unlink(path);
        return REAL(bind_fn, bind)(fd, (struct sockaddr *)&un, sizeof(un));
    }
    return -1;
}

int listen(int fd, int backlog)
{
    bt_fd *e = entry(fd);
    if (e == NULL)
        return REAL(listen_fn, listen)(fd, backlog);
    if (!e->bound) {
        if (first_adapter(&e->local) != 0) {
            errno = EADDRNOTAVAIL;
            return -1;
        }
        e->bound = 1;
    }
    char path[sizeof(e->path)];
    unsigned ch = e->local_ch, lo = ch, hi = ch;
    if (ch == 0) {
        lo = 1;
        hi = 30;
    }
    int ok = 0;
    for (ch = lo; ch <= hi && !ok; ch++) {
        if (listen_path(path, sizeof(path), &e->local, ch) != 0) {
            errno = ENAMETOOLONG;
            return -1;
        }
        if (bind_path(fd, path) == 0) {
            ok = 1;
            break;
        }
        if (errno != EADDRINUSE)
            return -1;
    }
    if (!ok) {
        errno = EADDRINUSE;
        return -1;
    }
    if (REAL(listen_fn, listen)(fd, backlog) != 0) {
        int err = errno;
        unlink(path);
        errno = err;
        return -1;
    }
    pthread_mutex_lock(&mu);
    e->local_ch = (uint8_t)ch;
    e->listening = 1;
    snprintf(e->path, sizeof(e->path), "%s", path);
    pthread_mutex_unlock(&mu);
    return 0;
}

int accept4(int fd, struct sockaddr *sa, socklen_t *len, int flags)
{
    bt_fd *e = entry(fd);
    if (e == NULL)
        return REAL(accept4_fn, accept4)(fd, sa, len, flags);
    struct sockaddr_un un;
    socklen_t ulen = sizeof(un);
    memset(&un, 0, sizeof(un));
    int nfd = REAL(accept4_fn, accept4)(fd, (struct sockaddr *)&un, &ulen, flags);
    if (nfd < 0)
        return -1;
    bdaddr_t peer = {{0}};
    const char *name = un.sun_path + 1; /* abstract: leading NUL */
    size_t plen = strlen(ABSTRACT_PREFIX);
    if (ulen > offsetof(struct sockaddr_un, sun_path) + 1 + plen + 17 &&
        memcmp(name, ABSTRACT_PREFIX, plen) == 0) {
        char s[18];
        memcpy(s, name + plen, 17);
        s[17] = '\0';
        parse_ba(s, &peer);
    }
    if (nfd >= SHIM_FDS) {
        REAL(close_fn, close)(nfd);
        errno = EMFILE;
        return -1;
    }
    pthread_mutex_lock(&mu);
    memset(&table[nfd], 0, sizeof(table[nfd]));
    table[nfd].used = 1;
    table[nfd].bh_w = -1;
    table[nfd].bound = 1;
    table[nfd].local = e->local;
    table[nfd].local_ch = e->local_ch;
    table[nfd].connected = 1;
    table[nfd].remote = peer;
    table[nfd].remote_ch = e->local_ch;
    table[nfd].sec_level = e->sec_level;
    pthread_mutex_unlock(&mu);
    if (sa != NULL && len != NULL) {
        struct sockaddr_rc rc = {
            .rc_family = AF_BLUETOOTH, .rc_bdaddr = peer, .rc_channel = e->local_ch};
        socklen_t n = *len < sizeof(rc) ? *len : (socklen_t)sizeof(rc);
        memcpy(sa, &rc, n);
        *len = sizeof(rc);
    }
    return nfd;
}

int accept(int fd, struct sockaddr *sa, socklen_t *len)
{
    return accept4(fd, sa, len, 0);
}

/* Replace fd by something that never completes (blackhole) or by a socket
 * whose peer is gone and whose SO_ERROR is err. */
static int pend(int fd, bt_fd *e, int err, int blackhole)
{
    int p[2];
    if (blackhole) {
        if (pipe2(p, O_CLOEXEC) != 0)
            return -1;
        dup3(p[0], fd, O_CLOEXEC);
        REAL(close_fn, close)(p[0]);
        e->bh_w = p[1];
    } else {
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, p) != 0)
            return -1;
        dup3(p[0], fd, O_CLOEXEC);
        REAL(close_fn, close)(p[0]);
        REAL(close_fn, close)(p[1]);
        e->pending_err = err;
    }
    errno = EINPROGRESS;
    return -1;
}

int connect(int fd, const struct sockaddr *sa, socklen_t len)
{
    bt_fd *e = entry(fd);
    if (e == NULL)
        return REAL(connect_fn, connect)(fd, sa, len);
    const struct sockaddr_rc *rc = (const struct sockaddr_rc *)sa;
    if (sa == NULL || len < sizeof(*rc) || rc->rc_family != AF_BLUETOOTH || rc->rc_channel < 1 ||
        rc->rc_channel > 30) {
        errno = EINVAL;
        return -1;
    }
    int nonblock = (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0;
    pthread_mutex_lock(&mu);
    if (!e->bound && first_adapter(&e->local) == 0)
        e->bound = 1;
    e->remote = rc->rc_bdaddr;
    e->remote_ch = rc->rc_channel;
    unsigned n = ++counter;
    pthread_mutex_unlock(&mu);
    if (!e->bound) {
        errno = EADDRNOTAVAIL;
        return -1;
    }

    char dst[18], src[18], path[sizeof(e->path)], marker[sizeof(e->path) + 16];
    format_ba(&rc->rc_bdaddr, dst);
    format_ba(&e->local, src);
    snprintf(marker, sizeof(marker), "%s/%s.blackhole", shim_dir(), dst);
    if (access(marker, F_OK) == 0) {
        if (!nonblock) {
            errno = ETIMEDOUT;
            return -1;
        }
        return pend(fd, e, 0, 1);
    }

    /* Our own name, so that accept() on the other side can tell who we are. */
    struct sockaddr_un me = {.sun_family = AF_UNIX};
    int nlen = snprintf(me.sun_path + 1, sizeof(me.sun_path) - 1, ABSTRACT_PREFIX "%s/%d/%u", src,
                        (int)getpid(), n);
    if (REAL(bind_fn, bind)(fd, (struct sockaddr *)&me,
                            (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + nlen)) != 0)
        return -1;

    if (listen_path(path, sizeof(path), &rc->rc_bdaddr, rc->rc_channel) != 0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    snprintf(un.sun_path, sizeof(un.sun_path), "%s", path);
    int r = REAL(connect_fn, connect)(fd, (struct sockaddr *)&un, sizeof(un));
    if (r != 0) {
        int err = errno;
        if (err == ENOENT || err == ECONNREFUSED || err == EAGAIN)
            err = ECONNREFUSED; /* no listener on that channel, or its queue is full */
        if (nonblock)
            return pend(fd, e, err, 0);
        errno = err;
        return -1;
    }
    pthread_mutex_lock(&mu);
    e->connected = 1;
    pthread_mutex_unlock(&mu);
    if (nonblock) {
        errno = EINPROGRESS; /* as RFCOMM always answers; writable at once */
        return -1;
    }
    return 0;
}

static int fill_rc(struct sockaddr *sa, socklen_t *len, const bdaddr_t *a, uint8_t ch)
{
    if (sa == NULL || len == NULL) {
        errno = EFAULT;
        return -1;
    }
    struct sockaddr_rc rc = {.rc_family = AF_BLUETOOTH, .rc_bdaddr = *a, .rc_channel = ch};
    socklen_t n = *len < sizeof(rc) ? *len : (socklen_t)sizeof(rc);
    memcpy(sa, &rc, n);
    *len = sizeof(rc);
    return 0;
}

int getsockname(int fd, struct sockaddr *sa, socklen_t *len)
{
    bt_fd *e = entry(fd);
    if (e == NULL)
        return REAL(name_fn, getsockname)(fd, sa, len);
    return fill_rc(sa, len, &e->local, e->listening ? e->local_ch : 0);
}

int getpeername(int fd, struct sockaddr *sa, socklen_t *len)
{
    bt_fd *e = entry(fd);
    if (e == NULL)
        return REAL(name_fn, getpeername)(fd, sa, len);
    if (!e->connected) {
        errno = ENOTCONN;
        return -1;
    }
    return fill_rc(sa, len, &e->remote, e->remote_ch);
}

int setsockopt(int fd, int level, int opt, const void *val, socklen_t len)
{
    bt_fd *e = entry(fd);
    if (e == NULL || (level != SOL_BLUETOOTH && level != SOL_RFCOMM))
        return REAL(setsockopt_fn, setsockopt)(fd, level, opt, val, len);
    if (level == SOL_BLUETOOTH && opt == BT_SECURITY) {
        if (val == NULL || len < sizeof(struct bt_security)) {
            errno = EINVAL;
            return -1;
        }
        e->sec_level = ((const struct bt_security *)val)->level;
    }
    return 0;
}

int getsockopt(int fd, int level, int opt, void *val, socklen_t *len)
{
    bt_fd *e = entry(fd);
    if (e != NULL && level == SOL_SOCKET && opt == SO_ERROR && e->pending_err != 0) {
        if (val == NULL || len == NULL || *len < sizeof(int)) {
            errno = EINVAL;
            return -1;
        }
        pthread_mutex_lock(&mu);
        *(int *)val = e->pending_err;
        e->pending_err = 0;
        pthread_mutex_unlock(&mu);
        *len = sizeof(int);
        return 0;
    }
    if (e != NULL && level == SOL_BLUETOOTH && opt == BT_SECURITY) {
        struct bt_security sec = {.level = e->sec_level};
        if (val == NULL || len == NULL || *len < sizeof(sec)) {
            errno = EINVAL;
            return -1;
        }
        memcpy(val, &sec, sizeof(sec));
        *len = sizeof(sec);
        return 0;
    }
    return REAL(getsockopt_fn, getsockopt)(fd, level, opt, val, len);
}

int close(int fd)
{
    if (fd >= 0 && fd < SHIM_FDS && table[fd].used) {
        pthread_mutex_lock(&mu);
        bt_fd e = table[fd];
        memset(&table[fd], 0, sizeof(table[fd]));
        pthread_mutex_unlock(&mu);
        if (e.listening && e.path[0] != '\0')
            unlink(e.path);
        if (e.bh_w >= 0)
            REAL(close_fn, close)(e.bh_w);
    }
    return REAL(close_fn, close)(fd);
}

/* --- adapters (libbluetooth's hci_* entry points) --- */

int hci_devinfo(int dev_id, struct hci_dev_info *di)
{
    if (shim_dir() == NULL) {
        errno = EAFNOSUPPORT;
        return -1;
    }
    const char *eperm = getenv("FERRY_BTSHIM_EPERM");
    if (eperm != NULL && strcmp(eperm, "1") == 0) {
        errno = EPERM;
        return -1;
    }
    bdaddr_t ad[SHIM_ADAPTERS];
    int n = adapters(ad, SHIM_ADAPTERS);
    if (dev_id < 0 || dev_id >= n || di == NULL) {
        errno = ENODEV;
        return -1;
    }
    memset(di, 0, sizeof(*di));
    di->dev_id = (uint16_t)dev_id;
    snprintf(di->name, sizeof(di->name), "hci%u", (unsigned)(dev_id % SHIM_ADAPTERS));
    di->bdaddr = ad[dev_id];
    const char *power = getenv("FERRY_BTSHIM_POWER");
    if (power == NULL || strcmp(power, "off") != 0)
        di->flags = 1u << HCI_UP | 1u << HCI_RUNNING | 1u << HCI_PSCAN;
    return 0;
}

int hci_get_route(bdaddr_t *bdaddr)
{
    struct hci_dev_info di;
    for (int i = 0; i < SHIM_ADAPTERS; i++) {
        if (hci_devinfo(i, &di) != 0)
            return -1;
        if ((di.flags & (1u << HCI_UP)) &&
            (bdaddr == NULL || bacmp(bdaddr, BDADDR_ANY) == 0 || bacmp(bdaddr, &di.bdaddr) != 0))
            return i;
    }
    errno = ENODEV;
    return -1;
}

int hci_devid(const char *str)
{
    if (str != NULL && strncmp(str, "hci", 3) == 0) {
        struct hci_dev_info di;
        char *end = NULL;
        errno = 0;
        long id = strtol(str + 3, &end, 10);
        if (errno != 0 || end == str + 3 || *end != '\0' || id < 0 || id >= SHIM_ADAPTERS) {
            errno = ENODEV;
            return -1;
        }
        if (hci_devinfo((int)id, &di) != 0)
            return -1;
        if (!(di.flags & (1u << HCI_UP))) {
            errno = ENETDOWN;
            return -1;
        }
        return (int)id;
    }
    errno = ENODEV;
    return -1;
}

/* --- test helpers --- */

int fe_btshim_active(void);
int fe_btshim_break(const char *addr);

int fe_btshim_active(void)
{
    return 1;
}

int fe_btshim_break(const char *addr)
{
    bdaddr_t want;
    int filter = addr != NULL && parse_ba(addr, &want) == 0;
    int n = 0;
    pthread_mutex_lock(&mu);
    for (int fd = 0; fd < SHIM_FDS; fd++) {
        bt_fd *e = &table[fd];
        if (!e->used || !e->connected)
            continue;
        if (filter && bacmp(&e->local, &want) != 0 && bacmp(&e->remote, &want) != 0)
            continue;
        if (shutdown(fd, SHUT_RDWR) == 0)
            n++;
    }
    pthread_mutex_unlock(&mu);
    return n;
}
