/* Tests of the ferry CLI's output formatting (tools/ferry/format.c): the
 * cleaning of untrusted text, durations, invites, messages and tables. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "format.h"

/* Captures what f writes to a FILE into a string the caller frees. */
struct capture {
    char *buf;
    size_t len;
    FILE *f;
};

static void cap_open(struct capture *c)
{
    c->buf = NULL;
    c->len = 0;
    c->f = open_memstream(&c->buf, &c->len);
    assert_non_null(c->f);
}

static char *cap_close(struct capture *c)
{
    fclose(c->f);
    return c->buf;
}

static char *text_of(const char *in, const char *indent)
{
    struct capture c;
    cap_open(&c);
    fe_fmt_text(c.f, in, indent);
    return cap_close(&c);
}

static void test_text_keeps_plain_and_utf8(void **state)
{
    (void)state;
    char *s = text_of("water at the north gate, caf\xc3\xa9 \xf0\x9f\x8c\x8a", NULL);
    assert_string_equal(s, "water at the north gate, caf\xc3\xa9 \xf0\x9f\x8c\x8a");
    free(s);
}

static void test_text_replaces_terminal_controls(void **state)
{
    (void)state;
    /* ESC sequences, a C1 CSI (U+009B), BEL, CR and DEL must never reach the terminal. */
    char *s = text_of("a\x1b[2Jb\xc2\x9b"
                      "31mc\x07\rd\x7f",
                      NULL);
    assert_string_equal(s, "a?[2Jb?31mc??d?");
    free(s);
}

static void test_text_replaces_bidi_overrides(void **state)
{
    (void)state;
    /* U+202E RIGHT-TO-LEFT OVERRIDE and U+2066 LEFT-TO-RIGHT ISOLATE */
    char *s = text_of("pay \xe2\x80\xae"
                      "0001\xe2\x81\xa6!",
                      NULL);
    assert_string_equal(s, "pay ?0001?!");
    free(s);
}

static void test_text_replaces_invalid_utf8(void **state)
{
    (void)state;
    /* a stray continuation, an overlong '/', a surrogate, a truncated sequence at the end */
    char *s = text_of("x\x80y\xc0\xafz\xed\xa0\x80w\xe2\x82", NULL);
    /* Each undecodable byte becomes one '?', so nothing valid is swallowed. */
    assert_string_equal(s, "x?y??z???w??");
    free(s);
}

static void test_text_indents_continued_lines(void **state)
{
    (void)state;
    char *s = text_of("one\ntwo\tthree", "    ");
    assert_string_equal(s, "one\n    two three");
    free(s);
}

static void test_clean_bounds_and_whole_characters(void **state)
{
    (void)state;
    char out[6];
    /* "é" is two bytes: "aéé" is 5 bytes and fits; "aééé" must stop before splitting. */
    size_t cols = fe_fmt_clean(out, sizeof out, "a\xc3\xa9\xc3\xa9\xc3\xa9");
    assert_string_equal(out, "a\xc3\xa9\xc3\xa9");
    assert_int_equal(cols, 3);

    char line[32];
    cols = fe_fmt_clean(line, sizeof line, "two\nlines\x1b");
    assert_string_equal(line, "two lines?");
    assert_int_equal(cols, 10);
    assert_int_equal(fe_fmt_clean(line, 0, "x"), 0);
}

static void test_width_counts_code_points(void **state)
{
    (void)state;
    assert_int_equal(fe_fmt_width(""), 0);
    assert_int_equal(fe_fmt_width("bob"), 3);
    assert_int_equal(fe_fmt_width("\xc3\xa9t\xc3\xa9"), 3);
    assert_int_equal(fe_fmt_width("\xe2\x9c\x93 ok"), 4);
}

static void test_ago(void **state)
{
    (void)state;
    static const struct {
        double s;
        const char *want;
    } t[] = {{-1, "never"},
             {0, "now"},
             {0.9, "now"},
             {1, "1s ago"},
             {59.9, "59s ago"},
             {60, "1m ago"},
             {3599, "59m ago"},
             {3600, "1h ago"},
             {86399, "23h ago"},
             {86400, "1d ago"},
             {10 * 86400 + 5, "10d ago"}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char out[32];
        fe_fmt_ago(out, sizeof out, t[i].s);
        assert_string_equal(out, t[i].want);
    }
}

static void test_label(void **state)
{
    (void)state;
    assert_string_equal(fe_fmt_label("bob", "9a1c0000"), "bob");
    assert_string_equal(fe_fmt_label("", "9a1c2b3c4d5e6f70"), "9a1c2b3c");
    assert_string_equal(fe_fmt_label(NULL, ""), "?");
}

static void test_invite(void **state)
{
    (void)state;
    char good[128], bad[128];
    snprintf(good, sizeof good, "ferry-invite:camp:%064d", 0);
    assert_true(fe_fmt_is_invite(good));
    snprintf(good, sizeof good, "ferry-invite:my:group:%s",
             "0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789abcdef");
    assert_true(fe_fmt_is_invite(good)); /* a name may hold colons: the key is the last field */

    snprintf(bad, sizeof bad, "ferry-invite:camp:%063d", 0);
    assert_false(fe_fmt_is_invite(bad)); /* 63 digits */
    snprintf(bad, sizeof bad, "ferry-invite:camp:%064dx", 0);
    assert_false(fe_fmt_is_invite(bad));
    snprintf(bad, sizeof bad, "ferry-invite:%064d", 0);
    assert_false(fe_fmt_is_invite(bad)); /* no name */
    snprintf(bad, sizeof bad, "see ferry-invite:camp:%064d", 0);
    assert_false(fe_fmt_is_invite(bad));
    assert_false(fe_fmt_is_invite(""));
}

static char *message_of(const char *json, int with_age)
{
    cJSON *m = cJSON_Parse(json);
    assert_non_null(m);
    struct capture c;
    cap_open(&c);
    fe_fmt_message(c.f, m, with_age);
    cJSON_Delete(m);
    return cap_close(&c);
}

static void test_message_kinds(void **state)
{
    (void)state;
    char *s = message_of("{\"type\":\"private\",\"from\":\"9a1c2b3c4d\",\"from_name\":\"bob\","
                         "\"text\":\"hi\",\"received_s_ago\":125}",
                         1);
    assert_string_equal(s, "[2m ago] bob: hi\n");
    free(s);
    s = message_of("{\"type\":\"private\",\"from\":\"9a1c2b3c4d\",\"from_name\":\"\","
                   "\"text\":\"who am i\"}",
                   0);
    assert_string_equal(s, "9a1c2b3c: who am i\n");
    free(s);
    s = message_of("{\"type\":\"group\",\"from_name\":\"carol\",\"group_name\":\"camp\","
                   "\"group_id\":\"ab\",\"text\":\"a\\nb\"}",
                   0);
    assert_string_equal(s, "#camp carol: a\n    b\n");
    free(s);
    s = message_of("{\"type\":\"anonymous\",\"from\":\"\",\"from_name\":\"\",\"text\":\"psst\"}",
                   0);
    assert_string_equal(s, "(anonymous): psst\n");
    free(s);
    /* A sender's name is as untrusted as the text. */
    s = message_of("{\"type\":\"private\",\"from_name\":\"\\u001b[1mroot\",\"text\":\"x\"}", 0);
    assert_string_equal(s, "?[1mroot: x\n");
    free(s);
}

/* Splits s into lines; returns how many (at most max). */
static size_t lines_of(char *s, char **line, size_t max)
{
    size_t n = 0;
    for (char *p = s; *p && n < max;) {
        line[n++] = p;
        char *nl = strchr(p, '\n');
        if (!nl)
            break;
        *nl = '\0';
        p = nl + 1;
    }
    return n;
}

/* The display column where needle starts in line. */
static size_t col_of(const char *line, const char *needle)
{
    const char *at = strstr(line, needle);
    assert_non_null(at);
    size_t cols = 0;
    for (const char *p = line; p < at; p++)
        cols += ((unsigned char)*p & 0xc0) != 0x80;
    return cols;
}

static void test_users_table_aligns_and_cuts(void **state)
{
    (void)state;
    char longname[128];
    memset(longname, 'n', 60);
    longname[60] = '\0';
    char json[1024];
    snprintf(json, sizeof json,
             "[{\"name\":\"b\\u00e9b\",\"address\":\"9a1c2b3c4d5e\",\"fingerprint\":\"ffff-0000\","
             "\"online\":true,\"last_seen_s_ago\":5,\"verified\":true,\"name_conflict\":false},"
             "{\"name\":\"%s\",\"address\":\"77778888aaaa\",\"fingerprint\":\"1111-2222\","
             "\"online\":false,\"last_seen_s_ago\":7200,\"verified\":false,"
             "\"name_conflict\":true}]",
             longname);
    cJSON *users = cJSON_Parse(json);
    assert_non_null(users);
    struct capture c;
    cap_open(&c);
    fe_fmt_users(c.f, users);
    cJSON_Delete(users);
    char *s = cap_close(&c), *line[8];
    assert_int_equal(lines_of(s, line, 8), 3);

    assert_non_null(strstr(line[0], "NAME"));
    assert_non_null(strstr(line[1], "b\xc3\xa9"
                                    "b"));
    assert_non_null(strstr(line[1], "9a1c2b3c ")); /* address cut to 8 hex digits */
    assert_null(strstr(line[1], "9a1c2b3c4"));
    assert_non_null(strstr(line[1], "verified"));
    assert_non_null(strstr(line[2], "name-conflict"));
    assert_non_null(strstr(line[2], "2h ago"));
    /* the 60-character name is cut to FE_FMT_CELL_MAX columns, ending in an ellipsis */
    assert_non_null(strstr(line[2], "nnn\xe2\x80\xa6"));
    assert_null(strstr(line[2], longname));
    /* columns line up by display width, though "béb" has more bytes than letters */
    assert_int_equal(col_of(line[0], "ADDRESS"), col_of(line[1], "9a1c"));
    assert_int_equal(col_of(line[1], "9a1c"), col_of(line[2], "7777"));
    assert_int_equal(col_of(line[1], "ffff"), col_of(line[2], "1111"));
    assert_int_equal(col_of(line[0], "ADDRESS"), FE_FMT_CELL_MAX + 2);
    free(s);
}

static void test_links_and_groups_tables(void **state)
{
    (void)state;
    cJSON *links = cJSON_Parse("[{\"name\":\"udp\",\"kind\":\"broadcast\",\"mtu\":1200,"
                               "\"up\":true,\"rx_frames\":7,\"tx_frames\":9,\"rx_dropped\":1}]");
    struct capture c;
    cap_open(&c);
    fe_fmt_links(c.f, links);
    cJSON_Delete(links);
    char *s = cap_close(&c), *line[4];
    assert_int_equal(lines_of(s, line, 4), 2);
    assert_string_equal(line[1], "udp   broadcast  1200  up  7   9   1");
    free(s);

    cJSON *groups = cJSON_Parse("[{\"group_id\":\"00ff\",\"name\":\"camp\"}]");
    cap_open(&c);
    fe_fmt_groups(c.f, groups);
    cJSON_Delete(groups);
    s = cap_close(&c);
    assert_string_equal(s, "NAME   GROUP ID\n#camp  00ff\n");
    free(s);
}

static void test_object(void **state)
{
    (void)state;
    cJSON *o = cJSON_Parse("{\"engine\":{\"delivered\":3,\"ratio\":0.5},\"ok\":true,"
                           "\"name\":\"a\\u001bb\"}");
    struct capture c;
    cap_open(&c);
    fe_fmt_object(c.f, o, 0);
    cJSON_Delete(o);
    char *s = cap_close(&c);
    assert_string_equal(s, "engine:\n  delivered: 3\n  ratio: 0.500\nok: yes\nname: a?b\n");
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_keeps_plain_and_utf8),
        cmocka_unit_test(test_text_replaces_terminal_controls),
        cmocka_unit_test(test_text_replaces_bidi_overrides),
        cmocka_unit_test(test_text_replaces_invalid_utf8),
        cmocka_unit_test(test_text_indents_continued_lines),
        cmocka_unit_test(test_clean_bounds_and_whole_characters),
        cmocka_unit_test(test_width_counts_code_points),
        cmocka_unit_test(test_ago),
        cmocka_unit_test(test_label),
        cmocka_unit_test(test_invite),
        cmocka_unit_test(test_message_kinds),
        cmocka_unit_test(test_users_table_aligns_and_cuts),
        cmocka_unit_test(test_links_and_groups_tables),
        cmocka_unit_test(test_object),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
