/* libFuzzer harness for the control socket server (platform/ctl.c): its
 * line splitting, JSON parsing, dispatch, staging and flushing.
 *
 * The request parser is only reachable through a socket, so the harness
 * runs a real fe_ctl server on a Unix socket in a private temporary
 * directory, with a small command table, inside a real fe_loop. Each input
 * is one client connection: the client writes the bytes, shuts down its
 * sending side and reads replies until the server closes. The directory
 * ($TMPDIR or /tmp) is removed at exit, but not after a crash.
 *
 * Input layout: byte 0 holds options, the rest is what the client sends.
 *   bit 0: the turn's "commit" fails (flush with a store failure);
 *   bit 1: send in chunks of 1 + 37 * (byte 0 >> 3) bytes over several
 *          loop turns (lines split across reads);
 *   bits 2 and 7 both: prefix a line longer than FE_CTL_LINE_MAX (the
 *          too_large path; two bits so that the slow case stays rare).
 *
 * Checked, beyond "no crash, no leak, no sanitizer report":
 *   - the server closes the connection in bounded time (no hang);
 *   - every reply line is a JSON object: either an event, or a reply
 *     with a boolean "ok", and failed replies carry error.code;
 *   - no more replies than request lines (blank lines excepted) + events;
 *   - after the connection, no client is left, and the stats count as many
 *     error replies as the client received. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "ctl.h"
#include "loop.h"

#define INPUT_MAX (256 * 1024) /* bigger inputs are cut */
#define TIMEOUT_MS 5000u       /* a connection that outlives this is a hang */
#define REPLY_MAX (4u << 20)   /* replies kept for checking */

static fe_loop *loop;
static fe_ctl *ctl;
static char dir[64];
static char path[128];

typedef struct run {
    int fd;
    const uint8_t *out; /* what the client still has to send */
    size_t out_len;
    size_t chunk;
    int sent_all;
    int eof;
    int timed_out;
    char *in; /* replies received */
    size_t in_len;
    int truncated;
    int store_fail;
    size_t events; /* events the handlers broadcast */
} run;

static run *cur;
static char reply_buf[REPLY_MAX]; /* static: a fresh 4 MiB per input costs time */

/* --- a trivial command table --- */

static cJSON *cmd_echo(void *ctx, fe_ctl_client *cl, const cJSON *req, fe_ctl_error *err)
{
    (void)ctx;
    (void)cl;
    (void)err;
    cJSON *r = cJSON_CreateObject();
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, "text");
    if (r && cJSON_IsString(v))
        cJSON_AddStringToObject(r, "text", v->valuestring);
    return r;
}

static cJSON *cmd_fail(void *ctx, fe_ctl_client *cl, const cJSON *req, fe_ctl_error *err)
{
    (void)ctx;
    (void)cl;
    (void)req;
    /* Alternate between a named code and the NULL code (reported as internal). */
    static unsigned n;
    err->code = (n++ & 1) ? "unknown_user" : NULL;
    snprintf(err->message, sizeof(err->message), "no such user");
    return NULL;
}

static cJSON *cmd_subscribe(void *ctx, fe_ctl_client *cl, const cJSON *req, fe_ctl_error *err)
{
    (void)ctx;
    (void)req;
    (void)err;
    fe_ctl_subscribe(cl);
    return cJSON_CreateObject();
}

/* Durable like "send": its reply waits for the commit. Also broadcasts one
 * durable event, dropped if the commit fails. */
static cJSON *cmd_send(void *ctx, fe_ctl_client *cl, const cJSON *req, fe_ctl_error *err)
{
    (void)ctx;
    (void)cl;
    (void)err;
    cJSON *ev = cJSON_CreateObject();
    if (ev) {
        cJSON_AddStringToObject(ev, "event", "message");
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, "text");
        cJSON_AddStringToObject(ev, "text", cJSON_IsString(v) ? v->valuestring : "");
        fe_ctl_broadcast(ctl, ev, FE_CTL_DURABLE);
        cJSON_Delete(ev);
        cur->events++;
    }
    cJSON *r = cJSON_CreateObject();
    if (r)
        cJSON_AddStringToObject(r, "message_id", "0011223344556677");
    return r;
}

static const fe_ctl_command commands[] = {
    {"echo", cmd_echo, 0},
    {"fail", cmd_fail, 0},
    {"subscribe", cmd_subscribe, 0},
    {"send", cmd_send, FE_CTL_DURABLE},
};

/* --- the loop --- */

static void before_sleep(fe_loop *l, void *ctx)
{
    (void)l;
    (void)ctx;
    fe_ctl_flush(ctl, cur && cur->store_fail ? "disk full" : NULL);
}

static void on_reply(fe_loop *l, int fd, void *ctx)
{
    run *r = ctx;
    char buf[65536];
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR)
            return;
        n = 0; /* reset by the server: same as closed */
    }
    if (n == 0) {
        r->eof = 1;
        fe_loop_fd_del(l, fd);
        fe_loop_stop(l);
        return;
    }
    if (r->in_len + (size_t)n <= REPLY_MAX) {
        memcpy(r->in + r->in_len, buf, (size_t)n);
        r->in_len += (size_t)n;
    } else {
        r->truncated = 1; /* too much to keep: the reply checks are skipped */
    }
}

static uint64_t on_write(fe_loop *l, int64_t id, uint64_t now_ms, void *ctx)
{
    run *r = ctx;
    (void)l;
    (void)id;
    if (r->eof)
        return FE_LOOP_NOMORE;
    size_t n = r->out_len < r->chunk ? r->out_len : r->chunk;
    if (n > 0) {
        ssize_t w = send(r->fd, r->out, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                r->out_len = 0; /* the server dropped us: stop sending */
        } else {
            r->out += w;
            r->out_len -= (size_t)w;
        }
    }
    if (r->out_len > 0)
        return now_ms + (n == r->chunk ? 0 : 1);
    shutdown(r->fd, SHUT_WR);
    r->sent_all = 1;
    return FE_LOOP_NOMORE;
}

static uint64_t on_timeout(fe_loop *l, int64_t id, uint64_t now_ms, void *ctx)
{
    run *r = ctx;
    (void)id;
    (void)now_ms;
    r->timed_out = 1;
    fe_loop_stop(l);
    return FE_LOOP_NOMORE;
}

static void cleanup(void)
{
    fe_ctl_del(ctl);
    fe_loop_del(loop);
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    signal(SIGPIPE, SIG_IGN);
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp || strlen(tmp) > 40) /* the socket path must stay short */
        tmp = "/tmp";
    snprintf(dir, sizeof(dir), "%s/fe-fuzz-ctl-XXXXXX", tmp);
    if (!mkdtemp(dir))
        abort();
    snprintf(path, sizeof(path), "%s/ctl.sock", dir);
    if (fe_loop_new(&loop, 64) != 0)
        abort();
    char err[256];
    fe_ctl_config cfg = {
        .path = path,
        .commands = commands,
        .command_count = sizeof(commands) / sizeof(commands[0]),
    };
    if (fe_ctl_new(&ctl, loop, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "fe_ctl_new: %s\n", err);
        abort();
    }
    fe_loop_set_before_sleep(loop, before_sleep, NULL);
    atexit(cleanup);
    return 0;
}

static size_t count_requests(const uint8_t *p, size_t n)
{
    /* Upper bound on the requests the server may answer: non-blank lines,
     * plus one for an unterminated last line. */
    size_t count = 0;
    int blank = 1;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n') {
            count += !blank;
            blank = 1;
        } else if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r') {
            blank = 0;
        }
    }
    return count + !blank;
}

/* Returns the number of error replies. */
static size_t check_replies(const run *r, size_t requests)
{
    size_t replies = 0, events = 0, failed = 0;
    const char *p = r->in, *end = r->in + r->in_len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) /* every reply ends in a newline */
            abort();
        cJSON *j = cJSON_ParseWithLength(p, (size_t)(nl - p));
        if (!j || !cJSON_IsObject(j))
            abort();
        if (cJSON_GetObjectItemCaseSensitive(j, "event")) {
            events++;
        } else {
            const cJSON *ok = cJSON_GetObjectItemCaseSensitive(j, "ok");
            if (!cJSON_IsBool(ok))
                abort();
            if (cJSON_IsFalse(ok)) {
                const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
                const cJSON *code = cJSON_GetObjectItemCaseSensitive(e, "code");
                if (!cJSON_IsString(code) || code->valuestring[0] == '\0')
                    abort();
                failed++;
            }
            replies++;
        }
        cJSON_Delete(j);
        p = nl + 1;
    }
    if (replies > requests)
        abort();
    if (events > r->events)
        abort();
    return failed;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t opt = data[0];
    data++;
    size--;
    if (size > INPUT_MAX)
        size = INPUT_MAX;

    uint8_t *msg = NULL;
    size_t msg_len = size;
    if ((opt & 0x84) == 0x84) {
        /* One over-long line first: the server must answer too_large and
         * resynchronise at the next newline. */
        msg_len = FE_CTL_LINE_MAX + 16 + size;
        msg = malloc(msg_len);
        if (!msg)
            return 0;
        memset(msg, 'x', FE_CTL_LINE_MAX + 15);
        msg[FE_CTL_LINE_MAX + 15] = '\n';
        if (size)
            memcpy(msg + FE_CTL_LINE_MAX + 16, data, size);
    }

    fe_ctl_stats st0, st1;
    fe_ctl_get_stats(ctl, &st0);

    run r = {.fd = -1};
    r.in = reply_buf;
    r.out = msg ? msg : data;
    r.out_len = msg_len;
    r.chunk = (opt & 2) ? 1 + 37 * (size_t)(opt >> 3) : 65536;
    r.store_fail = opt & 1;
    cur = &r;

    r.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (r.fd < 0)
        abort();
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (connect(r.fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        abort();
    fcntl(r.fd, F_SETFL, fcntl(r.fd, F_GETFL) | O_NONBLOCK);

    if (fe_loop_fd_add(loop, r.fd, on_reply, &r) != 0)
        abort();
    int64_t tw = fe_loop_timer_add(loop, fe_loop_now(loop), on_write, &r);
    int64_t tt = fe_loop_timer_add(loop, fe_loop_now(loop) + TIMEOUT_MS, on_timeout, &r);
    if (tw <= 0 || tt <= 0)
        abort();
    if (fe_loop_run(loop) != 0)
        abort();
    if (r.timed_out) {
        fprintf(stderr, "fuzz_ctl: the server did not close the connection in %u ms\n", TIMEOUT_MS);
        abort();
    }
    fe_loop_timer_del(loop, tt);
    if (!r.sent_all)
        fe_loop_timer_del(loop, tw);
    close(r.fd);

    size_t requests = count_requests(r.out - (msg_len - r.out_len), msg_len);
    size_t failed = r.truncated ? 0 : check_replies(&r, requests);

    fe_ctl_get_stats(ctl, &st1);
    if (st1.clients != 0 || st1.accepted != st0.accepted + 1)
        abort();
    /* stats.errors counts error replies: exactly those the client got. */
    if (st1.errors - st0.errors > st1.requests - st0.requests)
        abort();
    if (!r.truncated && st1.errors - st0.errors != failed)
        abort();

    cur = NULL;
    free(msg);
    return 0;
}
