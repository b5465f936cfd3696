/* The control socket server (platform/ctl.c) on a real Unix socket and a
 * real event loop: framing, protocol errors, durable replies when a commit
 * fails, client limits, slow clients, stale sockets. */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "ctl.h"
#include "loop.h"

typedef struct fixture {
    char dir[64];
    char path[108];
    fe_loop *loop;
    fe_ctl *ctl;
    const char *failure; /* what before_sleep passes to fe_ctl_flush */
    int handled;
} fixture;

static cJSON *cmd_echo(void *ctx, fe_ctl_client *cl, const cJSON *req, fe_ctl_error *err)
{
    fixture *f = ctx;
    (void)cl;
    (void)err;
    f->handled++;
    cJSON *r = cJSON_CreateObject();
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(req, "x");
    cJSON_AddItemToObject(r, "got", x ? cJSON_Duplicate(x, 1) : cJSON_CreateNull());
    return r;
}

static cJSON *cmd_fails(void *ctx, fe_ctl_client *cl, const cJSON *req, fe_ctl_error *err)
{
    (void)ctx;
    (void)cl;
    (void)req;
    err->code = "full";
    snprintf(err->message, sizeof(err->message), "try later");
    return NULL;
}

/* Broadcasts one durable and one plain event, then answers like echo. */
static cJSON *cmd_events(void *ctx, fe_ctl_client *cl, const cJSON *req, fe_ctl_error *err)
{
    fixture *f = ctx;
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "event", "durable");
    fe_ctl_broadcast(f->ctl, ev, FE_CTL_DURABLE);
    cJSON_ReplaceItemInObject(ev, "event", cJSON_CreateString("plain"));
    fe_ctl_broadcast(f->ctl, ev, 0);
    cJSON_Delete(ev);
    return cmd_echo(ctx, cl, req, err);
}

static cJSON *cmd_subscribe(void *ctx, fe_ctl_client *cl, const cJSON *req, fe_ctl_error *err)
{
    (void)ctx;
    (void)req;
    (void)err;
    fe_ctl_subscribe(cl);
    return cJSON_CreateObject();
}

static const fe_ctl_command commands[] = {
    {"echo", cmd_echo, 0},
    {"save", cmd_echo, FE_CTL_DURABLE},
    {"fails", cmd_fails, FE_CTL_DURABLE},
    {"events", cmd_events, 0},
    {"subscribe", cmd_subscribe, 0},
};

static void before_sleep(fe_loop *loop, void *ctx)
{
    fixture *f = ctx;
    (void)loop;
    fe_ctl_flush(f->ctl, f->failure);
}

static uint64_t stop_timer(fe_loop *loop, int64_t id, uint64_t now_ms, void *ctx)
{
    (void)id;
    (void)now_ms;
    (void)ctx;
    fe_loop_stop(loop);
    return FE_LOOP_NOMORE;
}

/* Run the loop for ms milliseconds of real time. */
static void spin(fixture *f, uint64_t ms)
{
    assert_true(fe_loop_timer_add(f->loop, fe_loop_now(f->loop) + ms, stop_timer, NULL) > 0);
    assert_int_equal(fe_loop_run(f->loop), 0);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/fe-ctl-test.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/ctl.sock", f->dir);
    assert_int_equal(fe_loop_new(&f->loop, 64), 0);
    fe_ctl_config cfg = {.path = f->path,
                         .commands = commands,
                         .command_count = sizeof(commands) / sizeof(commands[0]),
                         .ctx = f};
    char err[256];
    assert_int_equal(fe_ctl_new(&f->ctl, f->loop, &cfg, err, sizeof(err)), 0);
    fe_loop_set_before_sleep(f->loop, before_sleep, f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    fe_ctl_del(f->ctl);
    fe_loop_del(f->loop);
    unlink(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

static int client(const fixture *f)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", f->path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

static void put(int fd, const char *s)
{
    size_t n = strlen(s);
    assert_int_equal(write(fd, s, n), (ssize_t)n);
}

/* Everything readable on fd within a short wait, NUL-terminated. */
static char *drain(int fd, size_t *len_out)
{
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (poll(&p, 1, 100) > 0) {
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    if (len_out)
        *len_out = len;
    return buf;
}

/* The n-th line (from 0) of text as JSON. */
static cJSON *line_json(const char *text, int n)
{
    const char *p = text;
    for (int i = 0; i < n && p; i++) {
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    assert_non_null(p);
    const char *end = strchr(p, '\n');
    assert_non_null(end);
    cJSON *j = cJSON_ParseWithLength(p, (size_t)(end - p));
    assert_non_null(j);
    return j;
}

static int count_lines(const char *text)
{
    int n = 0;
    for (; *text; text++)
        n += *text == '\n';
    return n;
}

static const char *error_code(const cJSON *reply)
{
    const cJSON *ok = cJSON_GetObjectItemCaseSensitive(reply, "ok");
    assert_true(cJSON_IsFalse(ok));
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(reply, "error");
    return cJSON_GetObjectItemCaseSensitive(e, "code")->valuestring;
}

static void test_reply_echoes_id(void **state)
{
    fixture *f = *state;
    int fd = client(f);
    put(fd, "{\"id\": {\"k\": [1, \"two\"]}, \"cmd\": \"echo\", \"x\": 42}\n"
            "{\"cmd\": \"echo\", \"x\": \"no id\"}\n");
    spin(f, 30);
    char *out = drain(fd, NULL);
    assert_int_equal(count_lines(out), 2);
    cJSON *r = line_json(out, 0);
    char *id = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(r, "id"));
    assert_string_equal(id, "{\"k\":[1,\"two\"]}");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "ok")));
    cJSON *res = cJSON_GetObjectItemCaseSensitive(r, "result");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(res, "got")->valueint, 42);
    cJSON *r2 = line_json(out, 1);
    assert_null(cJSON_GetObjectItemCaseSensitive(r2, "id")); /* none given, none echoed */
    free(id);
    cJSON_Delete(r);
    cJSON_Delete(r2);
    free(out);
    close(fd);
}

static void test_protocol_errors_keep_connection(void **state)
{
    fixture *f = *state;
    int fd = client(f);
    put(fd, "{\"cmd\": \n"         /* not JSON */
            "[1,2]\n"              /* not an object */
            "{\"id\": 5}\n"        /* no cmd */
            "{\"cmd\": \"fly\"}\n" /* unknown */
            "{\"cmd\": \"fails\", \"id\": 6}\n"
            "\n" /* blank: ignored */
            "{\"cmd\": \"echo\", \"id\": 7}\n");
    spin(f, 30);
    char *out = drain(fd, NULL);
    assert_int_equal(count_lines(out), 6);
    static const char *const want[] = {"bad_request", "bad_request", "bad_request",
                                       "unknown_command", "full"};
    for (int i = 0; i < 5; i++) {
        cJSON *r = line_json(out, i);
        assert_string_equal(error_code(r), want[i]);
        cJSON_Delete(r);
    }
    cJSON *r = line_json(out, 2);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(r, "id")->valueint, 5);
    cJSON_Delete(r);
    r = line_json(out, 5);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(r, "id")->valueint, 7);
    cJSON_Delete(r);
    free(out);
    close(fd);
}

/* An echo request of exactly n bytes before its newline. */
static char *echo_line(size_t n)
{
    const char *head = "{\"cmd\": \"echo\", \"x\": \"";
    size_t h = strlen(head);
    char *line = malloc(n + 2);
    memcpy(line, head, h);
    memset(line + h, 'a', n - h - 2);
    memcpy(line + n - 2, "\"}\n", 4);
    return line;
}

static void test_line_limit(void **state)
{
    fixture *f = *state;
    int fd = client(f);
    /* Exactly the limit is served; one byte more is too_large, and the
     * rest of that line is discarded up to its newline. */
    char *line = echo_line(FE_CTL_LINE_MAX);
    assert_int_equal(strlen(line), FE_CTL_LINE_MAX + 1);
    put(fd, line);
    spin(f, 20);
    free(line);
    line = echo_line(FE_CTL_LINE_MAX + 1);
    put(fd, line);
    spin(f, 20);
    put(fd, "{\"cmd\": \"echo\", \"x\": 1}\n");
    spin(f, 20);
    size_t len;
    char *out = drain(fd, &len);
    assert_int_equal(count_lines(out), 3);
    cJSON *r = line_json(out, 0);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "ok")));
    cJSON_Delete(r);
    r = line_json(out, 1);
    assert_string_equal(error_code(r), "too_large");
    cJSON_Delete(r);
    r = line_json(out, 2);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "ok")));
    cJSON_Delete(r);
    free(line);
    free(out);
    close(fd);
}

static void test_failed_commit_turns_durable_replies_into_store(void **state)
{
    fixture *f = *state;
    int sub = client(f), fd = client(f);
    put(sub, "{\"cmd\": \"subscribe\"}\n");
    spin(f, 20);
    free(drain(sub, NULL));
    f->failure = "disk full";
    put(fd, "{\"id\": 1, \"cmd\": \"echo\"}\n"
            "{\"id\": 2, \"cmd\": \"save\"}\n"
            "{\"id\": 3, \"cmd\": \"events\"}\n"
            "{\"id\": 4, \"cmd\": \"fails\"}\n");
    spin(f, 30);
    char *out = drain(fd, NULL);
    assert_int_equal(count_lines(out), 4);
    for (int i = 0; i < 4; i++) {
        cJSON *r = line_json(out, i);
        assert_int_equal(cJSON_GetObjectItemCaseSensitive(r, "id")->valueint, i + 1);
        if (i == 1) {
            assert_string_equal(error_code(r), "store");
            const cJSON *e = cJSON_GetObjectItemCaseSensitive(r, "error");
            assert_string_equal(cJSON_GetObjectItemCaseSensitive(e, "message")->valuestring,
                                "disk full");
        } else if (i == 3) {
            assert_string_equal(error_code(r), "full"); /* not a durable success: unchanged */
        } else {
            assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "ok")));
        }
        cJSON_Delete(r);
    }
    free(out);
    /* The subscriber gets the plain event only: the durable one described
     * state that was not committed. */
    out = drain(sub, NULL);
    assert_int_equal(count_lines(out), 1);
    assert_non_null(strstr(out, "\"plain\""));
    free(out);

    f->failure = NULL;
    put(fd, "{\"id\": 5, \"cmd\": \"save\"}\n{\"id\": 6, \"cmd\": \"events\"}\n");
    spin(f, 30);
    out = drain(fd, NULL);
    assert_int_equal(count_lines(out), 2);
    assert_null(strstr(out, "\"ok\":false"));
    free(out);
    out = drain(sub, NULL);
    assert_int_equal(count_lines(out), 2);
    assert_non_null(strstr(out, "\"durable\""));
    free(out);
    close(fd);
    close(sub);
}

static void test_unterminated_request_at_eof(void **state)
{
    fixture *f = *state;
    int fd = client(f);
    put(fd, "{\"cmd\": \"echo\", \"x\": 3}");
    shutdown(fd, SHUT_WR);
    spin(f, 30);
    char *out = drain(fd, NULL);
    assert_int_equal(count_lines(out), 1);
    assert_non_null(strstr(out, "\"got\":3"));
    free(out);
    fe_ctl_stats st;
    fe_ctl_get_stats(f->ctl, &st);
    assert_int_equal(st.clients, 0); /* closed once the reply was written */
    close(fd);
}

static void test_client_limit(void **state)
{
    fixture *f = *state;
    int fds[FE_CTL_CLIENTS_MAX + 1];
    for (int i = 0; i <= FE_CTL_CLIENTS_MAX; i++) {
        fds[i] = client(f);
        spin(f, 2);
    }
    fe_ctl_stats st;
    fe_ctl_get_stats(f->ctl, &st);
    assert_int_equal(st.clients, FE_CTL_CLIENTS_MAX);
    assert_int_equal(st.refused, 1);
    char *out = drain(fds[FE_CTL_CLIENTS_MAX], NULL);
    assert_non_null(strstr(out, "\"full\""));
    free(out);
    /* The others are served. */
    put(fds[0], "{\"cmd\": \"echo\"}\n");
    spin(f, 20);
    out = drain(fds[0], NULL);
    assert_int_equal(count_lines(out), 1);
    free(out);
    for (int i = 0; i <= FE_CTL_CLIENTS_MAX; i++)
        close(fds[i]);
}

static void test_slow_subscriber_is_dropped(void **state)
{
    fixture *f = *state;
    int slow = client(f), fast = client(f);
    int small = 4096;
    setsockopt(slow, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    put(slow, "{\"cmd\": \"subscribe\"}\n");
    spin(f, 20);
    /* Events of 64 KiB each until far more than FE_CTL_OUT_MAX is queued
     * for a client that never reads. */
    char *pad = malloc(65536);
    memset(pad, 'e', 65535);
    pad[65535] = '\0';
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "event", pad);
    for (int turn = 0; turn < 40; turn++) {
        for (int i = 0; i < 8; i++)
            fe_ctl_broadcast(f->ctl, ev, 0);
        spin(f, 1);
    }
    cJSON_Delete(ev);
    free(pad);
    fe_ctl_stats st;
    fe_ctl_get_stats(f->ctl, &st);
    assert_int_equal(st.dropped_slow, 1);
    assert_int_equal(st.clients, 1);
    /* The daemon side never blocked, and still serves others. */
    put(fast, "{\"cmd\": \"echo\"}\n");
    spin(f, 20);
    char *out = drain(fast, NULL);
    assert_int_equal(count_lines(out), 1);
    free(out);
    close(fast);
    close(slow);
}

static void test_pipelined_burst_is_answered_in_order(void **state)
{
    fixture *f = *state;
    int fd = client(f);
    enum { N = 3000 };
    char *req = malloc(N * 40);
    size_t len = 0;
    for (int i = 0; i < N; i++)
        len += (size_t)snprintf(req + len, 40, "{\"id\":%d,\"cmd\":\"save\"}\n", i);
    /* Write and read at once: the client does not wait for replies. */
    size_t sent = 0, got_len = 0;
    char *got = malloc(N * 64);
    for (int rounds = 0; rounds < 2000 && (sent < len || count_lines(got) < N); rounds++) {
        struct pollfd p = {.fd = fd, .events = POLLIN | (sent < len ? POLLOUT : 0)};
        if (poll(&p, 1, 0) > 0) {
            if ((p.revents & POLLOUT) && sent < len) {
                ssize_t w = send(fd, req + sent, len - sent, MSG_DONTWAIT);
                if (w > 0)
                    sent += (size_t)w;
            }
            if (p.revents & POLLIN) {
                ssize_t r = read(fd, got + got_len, N * 64 - 1 - got_len);
                if (r > 0)
                    got_len += (size_t)r;
            }
        }
        got[got_len] = '\0';
        spin(f, 1);
    }
    assert_int_equal(count_lines(got), N);
    for (int i = 0; i < N; i += 499) {
        cJSON *r = line_json(got, i);
        assert_int_equal(cJSON_GetObjectItemCaseSensitive(r, "id")->valueint, i);
        cJSON_Delete(r);
    }
    free(req);
    free(got);
    close(fd);
}

static void test_live_socket_refused_stale_replaced(void **state)
{
    fixture *f = *state;
    char err[256];
    fe_ctl *second = NULL;
    fe_ctl_config cfg = {.path = f->path, .commands = commands, .command_count = 1, .ctx = f};
    assert_int_equal(fe_ctl_new(&second, f->loop, &cfg, err, sizeof(err)), FE_ERR_DUPLICATE);
    assert_non_null(strstr(err, "already listening"));

    /* A socket file nobody listens on (left by a crash) is replaced. */
    char stale[108];
    snprintf(stale, sizeof(stale), "%s/stale.sock", f->dir);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", stale);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    close(s);
    cfg.path = stale;
    assert_int_equal(fe_ctl_new(&second, f->loop, &cfg, err, sizeof(err)), 0);
    fe_ctl_del(second);
    assert_int_equal(access(stale, F_OK), -1); /* removed on close */

    /* A regular file in the way is not touched. */
    FILE *fp = fopen(stale, "w");
    fclose(fp);
    assert_int_equal(fe_ctl_new(&second, f->loop, &cfg, err, sizeof(err)), FE_ERR_INVALID);
    assert_int_equal(access(stale, F_OK), 0);
    unlink(stale);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reply_echoes_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_protocol_errors_keep_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_line_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_commit_turns_durable_replies_into_store, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unterminated_request_at_eof, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_subscriber_is_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipelined_burst_is_answered_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_live_socket_refused_stale_replaced, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
