/* Test-only LD_PRELOAD shim that lets libserialport 0.1.1 (Debian 12) open
 * a pseudo-terminal, so that the real serial driver runs over a pty.
 *
 * What fails without it, as traced with strace on a /dev/pts/N slave:
 *
 *   1. sp_get_port_by_name("/dev/pts/N") looks the port up in sysfs:
 *      lstat("/sys/class/tty/pts/N") (through the old __lxstat entry point)
 *      fails with ENOENT, as ptys have no sysfs entry, and the port is
 *      refused ("Device not found"). When the entry is a symlink it then
 *      calls readlink() on it to learn the transport (usb, bluetooth,
 *      native).
 *   2. sp_open() and sp_set_config() read and raise the modem lines with
 *      ioctl(TIOCMGET) and ioctl(TIOCMBIS) (traced; lowering them uses
 *      TIOCMBIC), which a pty answers with ENOTTY; sp_open then fails.
 *
 * So this shim answers exactly those, and only for Unix98 pty slaves
 * (character devices with majors 136..143): the sysfs lstat says "a
 * symlink", readlink gives a path under devices/virtual (a native port),
 * and the modem-line ioctls succeed on a set of fake lines (DTR, RTS, CTS,
 * DSR and DCD up; one set for the whole process, which is all the tests
 * need). Every other call goes to the C library unchanged. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <unistd.h>

#define SYSFS_PTS "/sys/class/tty/pts/"
#define PTY_SLAVE_MAJOR_FIRST 136 /* UNIX98_PTY_SLAVE_MAJOR */
#define PTY_SLAVE_MAJOR_LAST 143

static int fake_lines = TIOCM_DTR | TIOCM_RTS | TIOCM_CTS | TIOCM_DSR | TIOCM_CAR;

typedef int (*lstat_fn)(const char *, struct stat *);
typedef ssize_t (*readlink_fn)(const char *, char *, size_t);
typedef int (*ioctl_fn)(int, unsigned long, ...);

static void *next_symbol(const char *name)
{
    void *p = dlsym(RTLD_NEXT, name);
    if (p == NULL) {
        fprintf(stderr, "ptyshim: no next %s\n", name);
        abort();
    }
    return p;
}

static int real_lstat(const char *path, struct stat *st)
{
    static lstat_fn fn;
    if (fn == NULL)
        fn = (lstat_fn)next_symbol("lstat");
    return fn(path, st);
}

static int is_pty_slave(const struct stat *st)
{
    return S_ISCHR(st->st_mode) && major(st->st_rdev) >= PTY_SLAVE_MAJOR_FIRST &&
           major(st->st_rdev) <= PTY_SLAVE_MAJOR_LAST;
}

/* For "/sys/class/tty/pts/N" or ".../pts/N/device": the pty number, if
 * /dev/pts/N is a pty slave; else -1. */
static long sysfs_pty(const char *path)
{
    if (path == NULL || strncmp(path, SYSFS_PTS, strlen(SYSFS_PTS)) != 0)
        return -1;
    const char *p = path + strlen(SYSFS_PTS);
    char *end = NULL;
    errno = 0;
    long n = strtol(p, &end, 10);
    if (errno != 0 || end == p || n < 0 || (*end != '\0' && strcmp(end, "/device") != 0))
        return -1;
    char dev[64];
    snprintf(dev, sizeof(dev), "/dev/pts/%ld", n);
    struct stat st;
    if (stat(dev, &st) != 0 || !is_pty_slave(&st))
        return -1;
    return n;
}

static int fake_lstat(const char *path, struct stat *st)
{
    if (sysfs_pty(path) < 0)
        return 0;
    memset(st, 0, sizeof(*st));
    st->st_mode = S_IFLNK | 0777;
    return 1;
}

int lstat(const char *path, struct stat *st)
{
    if (fake_lstat(path, st))
        return 0;
    return real_lstat(path, st);
}

/* The pre-2.33 glibc entry point that Debian's libserialport was built
 * against; ver selects a struct layout that matches struct stat here. */
int __lxstat(int ver, const char *path, struct stat *st);
int __lxstat(int ver, const char *path, struct stat *st)
{
    (void)ver;
    if (fake_lstat(path, st))
        return 0;
    return real_lstat(path, st);
}

ssize_t readlink(const char *path, char *buf, size_t size)
{
    static readlink_fn fn;
    long n = sysfs_pty(path);
    if (n >= 0) {
        char target[96];
        int len = snprintf(target, sizeof(target), "../../devices/virtual/tty/pts%ld", n);
        size_t k = (size_t)len < size ? (size_t)len : size;
        memcpy(buf, target, k);
        return (ssize_t)k;
    }
    if (fn == NULL)
        fn = (readlink_fn)next_symbol("readlink");
    return fn(path, buf, size);
}

static int fd_is_pty_slave(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 && is_pty_slave(&st);
}

int ioctl(int fd, unsigned long request, ...)
{
    static ioctl_fn fn;
    if (fn == NULL)
        fn = (ioctl_fn)next_symbol("ioctl");
    va_list ap;
    va_start(ap, request);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    int rc = fn(fd, request, arg);
    int e = errno;
    if (rc == 0 || e != ENOTTY || arg == NULL || !fd_is_pty_slave(fd)) {
        errno = e;
        return rc;
    }
    int *lines = arg;
    switch (request) {
    case TIOCMGET:
        *lines = fake_lines;
        return 0;
    case TIOCMSET:
        fake_lines = *lines;
        return 0;
    case TIOCMBIS:
        fake_lines |= *lines;
        return 0;
    case TIOCMBIC:
        fake_lines &= ~*lines;
        return 0;
    default:
        errno = e;
        return rc;
    }
}
