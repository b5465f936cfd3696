/* Logging: see log.h. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int log_level = FE_LOG_INFO;
static const char *log_ident = "ferryd";

static const char *const level_names[] = {"error", "warn", "info", "debug"};
static const int syslog_prio[] = {3, 4, 6, 7}; /* LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG */

void fe_log_set_level(int level)
{
    if (level < FE_LOG_ERROR)
        level = FE_LOG_ERROR;
    if (level > FE_LOG_DEBUG)
        level = FE_LOG_DEBUG;
    log_level = level;
}

int fe_log_get_level(void)
{
    return log_level;
}

void fe_log_set_ident(const char *ident)
{
    log_ident = ident ? ident : "ferryd";
}

const char *fe_log_level_name(int level)
{
    if (level < FE_LOG_ERROR || level > FE_LOG_DEBUG)
        return "?";
    return level_names[level];
}

int fe_log_level_parse(const char *name, int *out)
{
    if (!name || !out)
        return -1;
    for (int i = FE_LOG_ERROR; i <= FE_LOG_DEBUG; i++) {
        if (strcasecmp(name, level_names[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    if (strcasecmp(name, "warning") == 0) {
        *out = FE_LOG_WARN;
        return 0;
    }
    return -1;
}

/* systemd sets JOURNAL_STREAM to "DEV:INODE" of the journal stream it gave
 * us. It is inherited by children whose stderr may go elsewhere, so compare
 * it with what stderr really is. */
static int stderr_is_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    if (!js || !*js)
        return 0;
    char *end;
    errno = 0;
    unsigned long long dev = strtoull(js, &end, 10);
    if (errno || end == js || *end != ':')
        return 0;
    const char *ino_s = end + 1;
    unsigned long long ino = strtoull(ino_s, &end, 10);
    if (errno || end == ino_s || *end != '\0')
        return 0;
    struct stat st;
    if (fstat(STDERR_FILENO, &st) != 0)
        return 0;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

/* Appends to buf at *pos, never past cap - 1; *pos stops at cap - 1. */
static void append_v(char *buf, size_t cap, size_t *pos, const char *fmt, va_list ap)
{
    if (*pos >= cap - 1)
        return;
    int n = vsnprintf(buf + *pos, cap - *pos, fmt, ap);
    if (n < 0)
        return;
    *pos = ((size_t)n >= cap - *pos) ? cap - 1 : *pos + (size_t)n;
}

static void append(char *buf, size_t cap, size_t *pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void append(char *buf, size_t cap, size_t *pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    append_v(buf, cap, pos, fmt, ap);
    va_end(ap);
}

void fe_log(int level, const char *fmt, ...)
{
    if (level > log_level || !fmt)
        return;
    if (level < FE_LOG_ERROR)
        level = FE_LOG_ERROR;
    int saved_errno = errno; /* so callers may log and then report errno */
    char line[FE_LOG_LINE_MAX + 2];
    size_t cap = FE_LOG_LINE_MAX + 1; /* leave room for the newline */
    size_t pos = 0;

    if (stderr_is_journal()) {
        append(line, cap, &pos, "<%d>", syslog_prio[level]);
    } else {
        struct timespec ts;
        struct tm tm;
        char stamp[40];
        clock_gettime(CLOCK_REALTIME, &ts);
        if (localtime_r(&ts.tv_sec, &tm) &&
            strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm)) {
            char zone[8];
            if (strftime(zone, sizeof(zone), "%z", &tm) == 0)
                zone[0] = '\0';
            append(line, cap, &pos, "%s.%03ld%s ", stamp, ts.tv_nsec / 1000000L, zone);
        }
    }
    append(line, cap, &pos, "%s[%ld]: %s: ", log_ident, (long)getpid(), level_names[level]);
    size_t msg_start = pos;

    va_list ap;
    va_start(ap, fmt);
    errno = saved_errno; /* %m must see the caller's errno */
    append_v(line, cap, &pos, fmt, ap);
    va_end(ap);

    /* vsnprintf stops at cap - 1; a message that filled the buffer was cut. */
    if (pos >= cap - 1 && cap > msg_start + 3)
        memcpy(line + cap - 4, "...", 3);
    for (size_t i = msg_start; i < pos; i++) {
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    }
    while (pos > msg_start && line[pos - 1] == ' ')
        pos--; /* a trailing newline in fmt is not part of the message */
    line[pos++] = '\n';

    const char *p = line;
    size_t left = pos;
    while (left > 0) {
        ssize_t w = write(STDERR_FILENO, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break; /* nowhere to report a failing stderr */
        p += w;
        left -= (size_t)w;
    }
    errno = saved_errno;
}

void fe_errf(char *err, size_t err_len, const char *fmt, ...)
{
    if (!err || err_len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}
