/* Tests for platform/log.c: line format with and without the journal, level
 * filtering, one line per call, truncation. stderr is redirected to a file. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

static int saved_stderr = -1;
static int capture_fd = -1;
static char capture_path[64];

static void capture_begin(void)
{
    snprintf(capture_path, sizeof(capture_path), "/tmp/ferry-log-XXXXXX");
    capture_fd = mkstemp(capture_path);
    assert_true(capture_fd >= 0);
    saved_stderr = dup(STDERR_FILENO);
    assert_true(saved_stderr >= 0);
    assert_true(dup2(capture_fd, STDERR_FILENO) >= 0);
}

/* Restore stderr and return what was written, NUL-terminated. */
static void capture_end(char *buf, size_t cap)
{
    assert_true(dup2(saved_stderr, STDERR_FILENO) >= 0);
    close(saved_stderr);
    ssize_t n = pread(capture_fd, buf, cap - 1, 0);
    assert_true(n >= 0);
    buf[n] = '\0';
    close(capture_fd);
    unlink(capture_path);
}

static int matches(const char *text, const char *pattern)
{
    regex_t re;
    assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    int rc = regexec(&re, text, 0, NULL, 0);
    regfree(&re);
    return rc == 0;
}

static int setup(void **state)
{
    (void)state;
    unsetenv("JOURNAL_STREAM");
    fe_log_set_level(FE_LOG_INFO);
    fe_log_set_ident(NULL);
    return 0;
}

static void test_level_parse(void **state)
{
    (void)state;
    int lvl = -7;
    assert_int_equal(fe_log_level_parse("error", &lvl), 0);
    assert_int_equal(lvl, FE_LOG_ERROR);
    assert_int_equal(fe_log_level_parse("WARN", &lvl), 0);
    assert_int_equal(lvl, FE_LOG_WARN);
    assert_int_equal(fe_log_level_parse("warning", &lvl), 0);
    assert_int_equal(lvl, FE_LOG_WARN);
    assert_int_equal(fe_log_level_parse("Info", &lvl), 0);
    assert_int_equal(lvl, FE_LOG_INFO);
    assert_int_equal(fe_log_level_parse("debug", &lvl), 0);
    assert_int_equal(lvl, FE_LOG_DEBUG);
    lvl = -7;
    assert_int_equal(fe_log_level_parse("verbose", &lvl), -1);
    assert_int_equal(fe_log_level_parse("", &lvl), -1);
    assert_int_equal(fe_log_level_parse(NULL, &lvl), -1);
    assert_int_equal(lvl, -7);
    assert_string_equal(fe_log_level_name(FE_LOG_DEBUG), "debug");
    assert_string_equal(fe_log_level_name(9), "?");
}

static void test_plain_line(void **state)
{
    (void)state;
    char out[4096], pat[256];
    capture_begin();
    fe_log(FE_LOG_INFO, "hello %d", 42);
    fe_log(FE_LOG_ERROR, "bad %s", "thing");
    capture_end(out, sizeof(out));
    snprintf(pat, sizeof(pat),
             "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}[+-][0-9]{4} "
             "ferryd\\[%ld\\]: info: hello 42\n"
             "[0-9]{4}-[^ ]+ ferryd\\[%ld\\]: error: bad thing\n$",
             (long)getpid(), (long)getpid());
    assert_true(matches(out, pat));
}

static void test_journal_prefix(void **state)
{
    (void)state;
    char out[4096], js[64], expect[256];
    capture_begin();
    struct stat st;
    assert_int_equal(fstat(STDERR_FILENO, &st), 0);
    snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    setenv("JOURNAL_STREAM", js, 1);
    fe_log_set_ident("ferry-test");
    fe_log(FE_LOG_INFO, "up");
    fe_log(FE_LOG_WARN, "careful");
    fe_log(FE_LOG_ERROR, "down");
    /* A stream inherited from a parent that is not our stderr: no prefix. */
    snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino + 1);
    setenv("JOURNAL_STREAM", js, 1);
    fe_log(FE_LOG_INFO, "plain");
    unsetenv("JOURNAL_STREAM");
    capture_end(out, sizeof(out));
    long pid = (long)getpid();
    snprintf(expect, sizeof(expect),
             "<6>ferry-test[%ld]: info: up\n<4>ferry-test[%ld]: warn: careful\n"
             "<3>ferry-test[%ld]: error: down\n",
             pid, pid, pid);
    assert_memory_equal(out, expect, strlen(expect));
    const char *rest = out + strlen(expect);
    assert_true(matches(rest, "^[0-9]{4}-[^<]* ferry-test\\[[0-9]+\\]: info: plain\n$"));
}

static void test_level_filter(void **state)
{
    (void)state;
    char out[4096];
    capture_begin();
    fe_log_set_level(FE_LOG_WARN);
    fe_log(FE_LOG_INFO, "hidden-info");
    fe_log(FE_LOG_DEBUG, "hidden-debug");
    fe_log(FE_LOG_WARN, "shown-warn");
    fe_log_set_level(FE_LOG_DEBUG);
    fe_log(FE_LOG_DEBUG, "shown-debug");
    fe_log_set_level(99); /* clamped to debug */
    assert_int_equal(fe_log_get_level(), FE_LOG_DEBUG);
    capture_end(out, sizeof(out));
    assert_null(strstr(out, "hidden"));
    assert_non_null(strstr(out, "warn: shown-warn\n"));
    assert_non_null(strstr(out, "debug: shown-debug\n"));
}

static void test_one_line_per_call(void **state)
{
    (void)state;
    char out[4096];
    capture_begin();
    fe_log(FE_LOG_INFO, "first\nsecond\r\nthird\n");
    capture_end(out, sizeof(out));
    const char *nl = strchr(out, '\n');
    assert_non_null(nl);
    assert_int_equal(nl[1], '\0');
    assert_non_null(strstr(out, "info: first second  third\n"));
}

static void test_long_message_cut(void **state)
{
    (void)state;
    static char big[5000], out[8192];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    capture_begin();
    fe_log(FE_LOG_INFO, "%s", big);
    capture_end(out, sizeof(out));
    size_t n = strlen(out);
    assert_true(n <= FE_LOG_LINE_MAX + 1);
    assert_true(n > FE_LOG_LINE_MAX - 10);
    assert_memory_equal(out + n - 4, "...\n", 4);
    assert_ptr_equal(strchr(out, '\n'), out + n - 1); /* one line */
}

static void test_errno_kept(void **state)
{
    (void)state;
    char out[4096];
    capture_begin();
    errno = ENOENT;
    fe_log(FE_LOG_ERROR, "open: %s", strerror(errno));
    assert_int_equal(errno, ENOENT);
    capture_end(out, sizeof(out));
    assert_non_null(strstr(out, "error: open: No such file or directory\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_level_parse, setup),
        cmocka_unit_test_setup(test_plain_line, setup),
        cmocka_unit_test_setup(test_journal_prefix, setup),
        cmocka_unit_test_setup(test_level_filter, setup),
        cmocka_unit_test_setup(test_one_line_per_call, setup),
        cmocka_unit_test_setup(test_long_message_cut, setup),
        cmocka_unit_test_setup(test_errno_kept, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
