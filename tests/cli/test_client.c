/* Tests of the ferry CLI's control-socket client (tools/ferry/client.c):
 * socket path defaults, connect failures, request/reply matching, events
 * queued during a call, partial and junk lines, bounds, and a daemon that
 * goes away. The "daemon" is the test itself on the other end of a
 * Unix-domain socket in a temporary directory; everything it says is
 * written before the client reads, so no threads are needed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "client.h"

struct fixture {
    char dir[64];
    char path[128];
    int listener;
    int server; /* the accepted end: plays the daemon */
    struct fe_client c;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/ferry-cli-test-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/ferryd.sock", f->dir);

    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, f->path, strlen(f->path) + 1);
    f->listener = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(f->listener >= 0);
    assert_int_equal(bind(f->listener, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(f->listener, 4), 0);

    /* connect() completes against the backlog before we accept. */
    assert_int_equal(fe_client_connect(&f->c, f->path), FE_CLIENT_OK);
    f->server = accept(f->listener, NULL, NULL);
    assert_true(f->server >= 0);
    f->c.call_timeout_ms = 300;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    fe_client_free(&f->c);
    if (f->server >= 0)
        close(f->server);
    close(f->listener);
    unlink(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void say(struct fixture *f, const char *text)
{
    size_t n = strlen(text);
    assert_int_equal(write(f->server, text, n), (ssize_t)n);
}

/* Reads one request line the client sent and parses it. */
static cJSON *heard(struct fixture *f)
{
    char buf[4096];
    size_t len = 0;
    while (len < sizeof buf - 1) {
        ssize_t n = read(f->server, buf + len, 1);
        assert_int_equal(n, 1);
        if (buf[len++] == '\n')
            break;
    }
    buf[len] = '\0';
    assert_int_equal(buf[len - 1], '\n');
    cJSON *o = cJSON_Parse(buf);
    assert_non_null(o);
    return o;
}

static void test_default_path(void **state)
{
    (void)state;
    char out[256];
    setenv("FERRY_SOCKET", "/run/x.sock", 1);
    setenv("XDG_DATA_HOME", "/xdg", 1);
    setenv("HOME", "/home/u", 1);
    assert_int_equal(fe_client_default_path(out, sizeof out), 0);
    assert_string_equal(out, "/run/x.sock");
    unsetenv("FERRY_SOCKET");
    assert_int_equal(fe_client_default_path(out, sizeof out), 0);
    assert_string_equal(out, "/xdg/ferry/ferryd.sock");
    setenv("XDG_DATA_HOME", "", 1); /* empty counts as unset */
    assert_int_equal(fe_client_default_path(out, sizeof out), 0);
    assert_string_equal(out, "/home/u/.local/share/ferry/ferryd.sock");
    assert_int_equal(fe_client_default_path(out, 10), FE_CLIENT_ERR_USAGE);
}

static void test_connect_failures(void **state)
{
    (void)state;
    struct fe_client c;
    assert_int_equal(fe_client_connect(&c, "/nonexistent-dir/ferryd.sock"), FE_CLIENT_ERR_CONN);
    assert_non_null(strstr(c.err, "cannot reach ferryd at /nonexistent-dir/ferryd.sock: "));
    assert_non_null(strstr(c.err, "(is ferryd running? start it with: ferryd)"));
    fe_client_free(&c);

    char longpath[200];
    memset(longpath, 'a', sizeof longpath - 1);
    longpath[0] = '/';
    longpath[sizeof longpath - 1] = '\0';
    assert_int_equal(fe_client_connect(&c, longpath), FE_CLIENT_ERR_CONN);
    assert_non_null(strstr(c.err, "too long"));
    fe_client_free(&c);
    fe_client_free(NULL);
}

static void test_call_sends_request_and_matches_reply(void **state)
{
    struct fixture *f = *state;
    /* The daemon's answer is ready before the question: an event, a stale
     * reply, a non-object line, junk, then the reply to id 1. */
    say(f, "{\"event\":\"delivered\",\"message_id\":\"00000000000000aa\"}\n"
           "{\"id\":7,\"ok\":true,\"result\":{\"stale\":1}}\n"
           "[1,2]\n"
           "not json at all\n"
           "{\"id\":1,\"ok\":true,\"result\":{\"message_id\":\"3f9c0a1b2c3d4e5f\"}}\n");
    cJSON *args = cJSON_CreateObject(), *res = NULL;
    cJSON_AddStringToObject(args, "to", "bob");
    cJSON_AddStringToObject(args, "text", "water \"at\" the\ngate");
    assert_int_equal(fe_client_call(&f->c, &res, "send", args), FE_CLIENT_OK);
    assert_string_equal(fe_json_str(res, "message_id"), "3f9c0a1b2c3d4e5f");
    assert_null(cJSON_GetObjectItem(res, "stale"));
    cJSON_Delete(res);

    cJSON *req = heard(f);
    assert_int_equal((int)fe_json_num(req, "id", -1), 1);
    assert_string_equal(fe_json_str(req, "cmd"), "send");
    assert_string_equal(fe_json_str(req, "to"), "bob");
    assert_string_equal(fe_json_str(req, "text"), "water \"at\" the\ngate");
    cJSON_Delete(req);

    /* The event that came first was kept for later. */
    assert_true(fe_client_has_event(&f->c));
    cJSON *ev = NULL;
    assert_int_equal(fe_client_next_event(&f->c, &ev, 0), FE_CLIENT_OK);
    assert_string_equal(fe_json_str(ev, "event"), "delivered");
    assert_string_equal(fe_json_str(ev, "message_id"), "00000000000000aa");
    cJSON_Delete(ev);
    assert_false(fe_client_has_event(&f->c));
    assert_int_equal(fe_client_next_event(&f->c, &ev, 20), FE_CLIENT_ERR_TIMEOUT);
    assert_null(ev);

    /* Ids go up, so a late reply to an old request cannot be taken for a new one. */
    say(f, "{\"id\":1,\"ok\":true,\"result\":{\"old\":1}}\n{\"id\":2,\"ok\":true}\n");
    assert_int_equal(fe_client_call(&f->c, &res, "id", NULL), FE_CLIENT_OK);
    assert_true(cJSON_IsObject(res)); /* a reply without result reads as {} */
    assert_null(cJSON_GetObjectItem(res, "old"));
    cJSON_Delete(res);
    req = heard(f);
    assert_int_equal((int)fe_json_num(req, "id", -1), 2);
    assert_null(cJSON_GetObjectItem(req, "to"));
    cJSON_Delete(req);
}

static void test_call_error_reply(void **state)
{
    struct fixture *f = *state;
    say(f, "{\"id\":1,\"ok\":false,\"error\":{\"code\":\"unknown_user\","
           "\"message\":\"no user named 'dave' is known yet (no announce heard)\"}}\n");
    cJSON *res = (cJSON *)1;
    assert_int_equal(fe_client_call(&f->c, &res, "send", NULL), FE_CLIENT_ERR_REPLY);
    assert_null(res);
    assert_string_equal(f->c.err_code, "unknown_user");
    assert_string_equal(f->c.err, "no user named 'dave' is known yet (no announce heard)");

    say(f, "{\"id\":2,\"ok\":false}\n"); /* an error with no detail still is one */
    assert_int_equal(fe_client_call(&f->c, &res, "x", NULL), FE_CLIENT_ERR_REPLY);
    assert_string_equal(f->c.err_code, "internal");
}

static void test_partial_lines(void **state)
{
    struct fixture *f = *state;
    cJSON *ev = NULL;
    say(f, "{\"event\":\"message\",\"message\":{\"text\":\"he");
    assert_int_equal(fe_client_next_event(&f->c, &ev, 30), FE_CLIENT_ERR_TIMEOUT);
    say(f, "llo\"}}\n{\"event\":\"link\"");
    assert_int_equal(fe_client_next_event(&f->c, &ev, 30), FE_CLIENT_OK);
    assert_string_equal(fe_json_str(cJSON_GetObjectItem(ev, "message"), "text"), "hello");
    cJSON_Delete(ev);
    assert_int_equal(fe_client_next_event(&f->c, &ev, 30), FE_CLIENT_ERR_TIMEOUT);
    say(f, ",\"state\":\"up\"}\n");
    assert_int_equal(fe_client_pump(&f->c), FE_CLIENT_OK);
    assert_true(fe_client_has_event(&f->c));
    assert_int_equal(fe_client_next_event(&f->c, &ev, 0), FE_CLIENT_OK);
    assert_string_equal(fe_json_str(ev, "state"), "up");
    cJSON_Delete(ev);
}

static void test_event_queue_is_bounded(void **state)
{
    struct fixture *f = *state;
    const int sent = FE_CLIENT_EVENTS_MAX + 44;
    char line[96];
    /* One write: each small write costs a whole buffer slot in the kernel,
     * and a few hundred of them would block us before the client reads. */
    static char all[(FE_CLIENT_EVENTS_MAX + 44) * 64 + 64];
    size_t len = 0;
    for (int i = 0; i < sent; i++)
        len += (size_t)snprintf(all + len, sizeof all - len,
                                "{\"event\":\"delivered\",\"message_id\":\"%016d\"}\n", i);
    snprintf(all + len, sizeof all - len, "{\"id\":1,\"ok\":true,\"result\":{}}\n");
    say(f, all);
    cJSON *res, *ev;
    assert_int_equal(fe_client_call(&f->c, &res, "stats", NULL), FE_CLIENT_OK);
    cJSON_Delete(res);
    /* The oldest were dropped; the newest FE_CLIENT_EVENTS_MAX remain, in order. */
    assert_int_equal(f->c.ev_dropped, 44);
    for (int i = 44; i < sent; i++) {
        assert_int_equal(fe_client_next_event(&f->c, &ev, 0), FE_CLIENT_OK);
        snprintf(line, sizeof line, "%016d", i);
        assert_string_equal(fe_json_str(ev, "message_id"), line);
        cJSON_Delete(ev);
    }
    assert_false(fe_client_has_event(&f->c));
}

static void test_daemon_goes_away(void **state)
{
    struct fixture *f = *state;
    cJSON *res, *ev;
    /* An event, then the daemon closes: the event is still handed out. */
    say(f, "{\"event\":\"presence\",\"state\":\"offline\"}\n");
    close(f->server);
    f->server = -1;
    assert_int_equal(fe_client_pump(&f->c), FE_CLIENT_OK);
    assert_int_equal(fe_client_next_event(&f->c, &ev, 0), FE_CLIENT_OK);
    cJSON_Delete(ev);
    assert_int_equal(fe_client_next_event(&f->c, &ev, 100), FE_CLIENT_ERR_CONN);
    assert_non_null(strstr(f->c.err, "lost connection to ferryd"));
    assert_int_equal(fe_client_call(&f->c, &res, "id", NULL), FE_CLIENT_ERR_CONN);
}

static void test_call_times_out(void **state)
{
    struct fixture *f = *state;
    cJSON *res;
    /* The daemon reads but never answers: the call gives up after call_timeout_ms. */
    assert_int_equal(fe_client_call(&f->c, &res, "id", NULL), FE_CLIENT_ERR_CONN);
    assert_non_null(strstr(f->c.err, "timed out"));
}

static void test_overlong_line_is_refused(void **state)
{
    struct fixture *f = *state;
    /* Far more than the socket buffer: feed it while the client reads, in
     * chunks, from a child process. */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        static char chunk[65536];
        memset(chunk, 'x', sizeof chunk);
        if (write(f->server, "{\"id\":1,\"ok\":true,\"result\":\"", 29) != 29)
            _exit(1);
        for (size_t sent = 0; sent <= FE_CLIENT_LINE_MAX; sent += sizeof chunk)
            if (write(f->server, chunk, sizeof chunk) != (ssize_t)sizeof chunk)
                _exit(0); /* the client hung up: expected */
        _exit(0);
    }
    cJSON *res;
    f->c.call_timeout_ms = 20000;
    assert_int_equal(fe_client_call(&f->c, &res, "id", NULL), FE_CLIENT_ERR_CONN);
    assert_non_null(strstr(f->c.err, "line too long"));
    fe_client_free(&f->c); /* closes the socket, so the writer stops */
    close(f->server);
    f->server = -1;
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_path),
        cmocka_unit_test(test_connect_failures),
        cmocka_unit_test_setup_teardown(test_call_sends_request_and_matches_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_call_error_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partial_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_queue_is_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_daemon_goes_away, setup, teardown),
        cmocka_unit_test_setup_teardown(test_call_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overlong_line_is_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
