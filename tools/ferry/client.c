/* ferryd control-socket client: connect, line framing, request/reply, events. */
#include "client.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define READ_CHUNK 65536

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set_err(struct fe_client *c, const char *what, const char *reason)
{
    snprintf(c->err, sizeof c->err, "%s ferryd at %s: %s", what, c->path, reason);
}

int fe_client_default_path(char *out, size_t out_len)
{
    const char *env = getenv("FERRY_SOCKET");
    int n;
    if (env && *env) {
        n = snprintf(out, out_len, "%s", env);
    } else if ((env = getenv("XDG_DATA_HOME")) && *env) {
        n = snprintf(out, out_len, "%s/ferry/ferryd.sock", env);
    } else {
        env = getenv("HOME");
        /* With no home at all, a relative path at least names the file. */
        n = snprintf(out, out_len, "%s/.local/share/ferry/ferryd.sock", env && *env ? env : ".");
    }
    return (n < 0 || (size_t)n >= out_len) ? FE_CLIENT_ERR_USAGE : FE_CLIENT_OK;
}

int fe_client_connect(struct fe_client *c, const char *path)
{
    struct sockaddr_un sa;
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->next_id = 1;
    c->call_timeout_ms = FE_CLIENT_CALL_TIMEOUT_MS;
    snprintf(c->path, sizeof c->path, "%s", path);
    if (strlen(path) >= sizeof c->path || strlen(path) >= sizeof sa.sun_path) {
        snprintf(c->err, sizeof c->err,
                 "cannot reach ferryd at %.200s...: socket path too long (at most %zu bytes)", path,
                 sizeof sa.sun_path - 1);
        return FE_CLIENT_ERR_CONN;
    }
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path) + 1);

    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        set_err(c, "cannot reach", strerror(errno));
        return FE_CLIENT_ERR_CONN;
    }
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        char reason[256];
        snprintf(reason, sizeof reason, "%s (is ferryd running? start it with: ferryd)",
                 strerror(errno));
        set_err(c, "cannot reach", reason);
        close(c->fd);
        c->fd = -1;
        return FE_CLIENT_ERR_CONN;
    }
    return FE_CLIENT_OK;
}

void fe_client_free(struct fe_client *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->buf);
    c->buf = NULL;
    c->len = c->cap = 0;
    while (c->ev_count > 0) {
        cJSON_Delete(c->events[c->ev_head]);
        c->ev_head = (c->ev_head + 1) % FE_CLIENT_EVENTS_MAX;
        c->ev_count--;
    }
}

static void queue_event(struct fe_client *c, cJSON *ev)
{
    if (c->ev_count == FE_CLIENT_EVENTS_MAX) {
        /* A client that stops reading must not grow without bound: forget the oldest. */
        cJSON_Delete(c->events[c->ev_head]);
        c->ev_head = (c->ev_head + 1) % FE_CLIENT_EVENTS_MAX;
        c->ev_count--;
        c->ev_dropped++;
    }
    c->events[(c->ev_head + c->ev_count) % FE_CLIENT_EVENTS_MAX] = ev;
    c->ev_count++;
}

int fe_client_has_event(const struct fe_client *c)
{
    return c->ev_count > 0;
}

/* Takes one complete line off the buffer and parses it. Returns 1 and *obj
 * (NULL if the line was not a JSON object: skipped), 0 if no complete line
 * is buffered, or FE_CLIENT_ERR_CONN if a line is longer than we accept. */
static int take_line(struct fe_client *c, cJSON **obj)
{
    char *nl = c->len ? memchr(c->buf, '\n', c->len) : NULL;
    *obj = NULL;
    if (!nl) {
        if (c->len >= FE_CLIENT_LINE_MAX) {
            set_err(c, "garbled reply from", "line too long");
            return FE_CLIENT_ERR_CONN;
        }
        return 0;
    }
    size_t line_len = (size_t)(nl - c->buf);
    cJSON *o = cJSON_ParseWithLength(c->buf, line_len);
    if (o && !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        o = NULL;
    }
    memmove(c->buf, nl + 1, c->len - line_len - 1);
    c->len -= line_len + 1;
    *obj = o;
    return 1;
}

/* Reads once if the socket becomes readable within timeout_ms (negative:
 * forever). Returns 1 if bytes arrived, 0 on timeout or signal, or
 * FE_CLIENT_ERR_CONN at end of stream or on error. */
static int read_some(struct fe_client *c, int timeout_ms)
{
    if (c->eof) {
        set_err(c, "lost connection to", "the daemon closed the connection");
        return FE_CLIENT_ERR_CONN;
    }
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    int r = poll(&p, 1, timeout_ms);
    if (r < 0 && errno == EINTR)
        return 0;
    if (r < 0) {
        set_err(c, "lost connection to", strerror(errno));
        return FE_CLIENT_ERR_CONN;
    }
    if (r == 0)
        return 0;
    if (c->cap - c->len < READ_CHUNK) {
        size_t cap = c->cap ? c->cap * 2 : 2 * READ_CHUNK;
        if (cap > FE_CLIENT_LINE_MAX + READ_CHUNK)
            cap = FE_CLIENT_LINE_MAX + READ_CHUNK;
        if (cap - c->len < READ_CHUNK) {
            set_err(c, "garbled reply from", "line too long");
            return FE_CLIENT_ERR_CONN;
        }
        char *nb = realloc(c->buf, cap);
        if (!nb) {
            set_err(c, "cannot read from", "out of memory");
            return FE_CLIENT_ERR_CONN;
        }
        c->buf = nb;
        c->cap = cap;
    }
    ssize_t n = read(c->fd, c->buf + c->len, READ_CHUNK);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return 0;
    if (n < 0) {
        set_err(c, "lost connection to", strerror(errno));
        return FE_CLIENT_ERR_CONN;
    }
    if (n == 0) {
        c->eof = 1;
        set_err(c, "lost connection to", "the daemon closed the connection");
        return FE_CLIENT_ERR_CONN;
    }
    c->len += (size_t)n;
    return 1;
}

static int write_all(struct fe_client *c, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            set_err(c, "lost connection to", strerror(errno));
            return FE_CLIENT_ERR_CONN;
        }
        p += w;
        n -= (size_t)w;
    }
    return FE_CLIENT_OK;
}

static int send_request(struct fe_client *c, long long id, const char *cmd, cJSON *args)
{
    cJSON *req = cJSON_CreateObject();
    if (!req) {
        cJSON_Delete(args);
        set_err(c, "cannot talk to", "out of memory");
        return FE_CLIENT_ERR_CONN;
    }
    cJSON_AddNumberToObject(req, "id", (double)id);
    cJSON_AddStringToObject(req, "cmd", cmd);
    if (args) {
        /* Move the arguments over rather than copying them. */
        cJSON *item;
        while ((item = args->child) != NULL) {
            cJSON_DetachItemViaPointer(args, item);
            cJSON_AddItemToObject(req, item->string, item);
        }
        cJSON_Delete(args);
    }
    char *line = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    if (!line) {
        set_err(c, "cannot talk to", "out of memory");
        return FE_CLIENT_ERR_CONN;
    }
    size_t n = strlen(line);
    int rc = write_all(c, line, n);
    if (rc == FE_CLIENT_OK)
        rc = write_all(c, "\n", 1);
    cJSON_free(line);
    return rc;
}

static int handle_reply(struct fe_client *c, cJSON *reply, cJSON **result)
{
    cJSON *ok = cJSON_GetObjectItemCaseSensitive(reply, "ok");
    if (cJSON_IsTrue(ok)) {
        cJSON *res = cJSON_DetachItemFromObjectCaseSensitive(reply, "result");
        if (!res)
            res = cJSON_CreateObject();
        *result = res;
        return res ? FE_CLIENT_OK : FE_CLIENT_ERR_CONN;
    }
    cJSON *e = cJSON_GetObjectItemCaseSensitive(reply, "error");
    const char *code = fe_json_str(e, "code");
    const char *msg = fe_json_str(e, "message");
    snprintf(c->err_code, sizeof c->err_code, "%s", *code ? code : "internal");
    snprintf(c->err, sizeof c->err, "%s", *msg ? msg : c->err_code);
    return FE_CLIENT_ERR_REPLY;
}

int fe_client_call(struct fe_client *c, cJSON **result, const char *cmd, cJSON *args)
{
    long long id = c->next_id++;
    *result = NULL;
    c->err[0] = c->err_code[0] = '\0';
    int rc = send_request(c, id, cmd, args);
    if (rc != FE_CLIENT_OK)
        return rc;

    long long deadline = now_ms() + c->call_timeout_ms;
    for (;;) {
        cJSON *o;
        int got = take_line(c, &o);
        if (got < 0)
            return got;
        if (got == 1) {
            if (!o)
                continue;
            if (cJSON_GetObjectItemCaseSensitive(o, "event")) {
                queue_event(c, o);
                continue;
            }
            cJSON *rid = cJSON_GetObjectItemCaseSensitive(o, "id");
            if (cJSON_IsNumber(rid) && (long long)rid->valuedouble == id) {
                rc = handle_reply(c, o, result);
                cJSON_Delete(o);
                return rc;
            }
            /* A reply to something we no longer wait for: ignore it. */
            cJSON_Delete(o);
            continue;
        }
        long long left = deadline - now_ms();
        if (left <= 0) {
            set_err(c, "no answer from", "timed out waiting for a reply");
            return FE_CLIENT_ERR_CONN;
        }
        rc = read_some(c, (int)left);
        if (rc < 0)
            return rc;
    }
}

/* Moves every complete buffered line that is an event into the queue. */
static int drain_lines(struct fe_client *c)
{
    for (;;) {
        cJSON *o;
        int got = take_line(c, &o);
        if (got <= 0)
            return got;
        if (o && cJSON_GetObjectItemCaseSensitive(o, "event"))
            queue_event(c, o);
        else
            cJSON_Delete(o); /* stray reply or junk */
    }
}

int fe_client_pump(struct fe_client *c)
{
    int rc = read_some(c, 0);
    int drc = drain_lines(c);
    if (drc < 0)
        return drc;
    return rc < 0 ? rc : FE_CLIENT_OK;
}

int fe_client_next_event(struct fe_client *c, cJSON **event, int timeout_ms)
{
    long long deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    *event = NULL;
    for (;;) {
        int rc = drain_lines(c);
        if (rc < 0)
            return rc;
        if (c->ev_count > 0) {
            *event = c->events[c->ev_head];
            c->ev_head = (c->ev_head + 1) % FE_CLIENT_EVENTS_MAX;
            c->ev_count--;
            return FE_CLIENT_OK;
        }
        int wait = -1;
        if (deadline >= 0) {
            long long left = deadline - now_ms();
            if (left <= 0)
                return FE_CLIENT_ERR_TIMEOUT;
            wait = left > INT32_MAX ? INT32_MAX : (int)left;
        }
        rc = read_some(c, wait);
        if (rc < 0)
            return rc;
        if (rc == 0)
            return FE_CLIENT_ERR_TIMEOUT; /* deadline, or a signal: the caller checks its flags */
    }
}

const char *fe_json_str(const cJSON *obj, const char *key)
{
    const cJSON *v = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    return cJSON_IsString(v) && v->valuestring ? v->valuestring : "";
}

double fe_json_num(const cJSON *obj, const char *key, double fallback)
{
    const cJSON *v = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    return cJSON_IsNumber(v) ? v->valuedouble : fallback;
}

int fe_json_bool(const cJSON *obj, const char *key)
{
    const cJSON *v = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    return cJSON_IsTrue(v);
}
