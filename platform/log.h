/* Logging for the daemon and tools: one line per call on stderr.
 *
 *   under systemd (stderr is the journal):  <6>ferryd[123]: info: message
 *   otherwise:  2024-05-01T12:00:00.123+0200 ferryd[123]: info: message
 *
 * The journal stamps its own time and reads the <N> syslog priority; a
 * terminal or a log file is given the local wall-clock time instead. Wall-clock
 * time is only ever used here, for humans: the protocol never sees it.
 * Each line is written with a single write(2), so lines from several
 * processes sharing stderr do not interleave. Not thread-safe to configure;
 * fe_log itself may be called from any thread. */
#ifndef FE_LOG_H
#define FE_LOG_H

#include <stddef.h>

enum fe_log_level {
    FE_LOG_ERROR = 0,
    FE_LOG_WARN = 1,
    FE_LOG_INFO = 2, /* the default */
    FE_LOG_DEBUG = 3
};

#define FE_LOG_LINE_MAX 1024 /* longer messages are cut and end in "..." */

/* Log a printf-style message at level, if level is enabled. Newlines in the
 * message become spaces, so one call is always one line. */
void fe_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Show messages up to and including level (clamped to error..debug). */
void fe_log_set_level(int level);
int fe_log_get_level(void);

/* The program name shown in each line ("ferryd" by default). ident is
 * borrowed: it must stay valid while logging. NULL restores the default. */
void fe_log_set_ident(const char *ident);

/* "error", "warn" (or "warning"), "info", "debug", case-insensitive, into
 * *out. Returns 0, or -1 for an unknown name (then *out is unchanged). */
int fe_log_level_parse(const char *name, int *out);

/* The name of a level ("error", ...), or "?" when out of range. */
const char *fe_log_level_name(int level);

/* For the platform's "char *err, size_t err_len" out-parameters: format a
 * one-line message for the user into err (cut to err_len, NUL-terminated).
 * Does nothing when err is NULL or err_len is 0. */
void fe_errf(char *err, size_t err_len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
