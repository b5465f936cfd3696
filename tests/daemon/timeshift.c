/* An LD_PRELOAD shim for the clock-jump test: shifts the wall clock
 * (CLOCK_REALTIME and its coarse variant, time(), gettimeofday()) by a
 * number of seconds read, at every call, from the file named by
 * $FE_TIMESHIFT_FILE, so that a test can jump the clock of a running process
 * by rewriting that file. A missing or unreadable file means no shift. The
 * monotonic clocks are left alone: that is the point of the test.
 *
 * Build: cc -shared -fPIC -o timeshift.so timeshift.c -ldl */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);

static long shift_s(void)
{
    const char *path = getenv("FE_TIMESHIFT_FILE");
    if (!path)
        return 0;
    int saved = errno; /* callers must not see our file errors */
    long s = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        char buf[32];
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n > 0) {
            buf[n] = '\0';
            char *end;
            long v = strtol(buf, &end, 10);
            if (end != buf)
                s = v;
        }
    }
    errno = saved;
    return s;
}

static clock_gettime_fn real_clock_gettime(void)
{
    static clock_gettime_fn fn;
    if (!fn)
        fn = (clock_gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
    return fn;
}

int clock_gettime(clockid_t clk, struct timespec *ts)
{
    clock_gettime_fn real = real_clock_gettime();
    if (!real) {
        errno = ENOSYS;
        return -1;
    }
    int rc = real(clk, ts);
    if (rc == 0 && (clk == CLOCK_REALTIME || clk == CLOCK_REALTIME_COARSE))
        ts->tv_sec += shift_s();
    return rc;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
    struct timespec ts;
    (void)tz; /* obsolete; glibc ignores it too */
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return -1;
    tv->tv_sec = ts.tv_sec; /* tv is declared nonnull */
    tv->tv_usec = ts.tv_nsec / 1000;
    return 0;
}

time_t time(time_t *t)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return (time_t)-1;
    if (t)
        *t = ts.tv_sec;
    return ts.tv_sec;
}
