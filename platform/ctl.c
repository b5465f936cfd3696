/* Control socket server: see ctl.h.
 *
 * Each client has three buffers: the line being assembled, the output
 * staged during this turn (with the spans of durable replies and events,
 * which depend on the commit), and the output released by fe_ctl_flush and
 * not yet written. The loop only polls for input, so when the kernel's
 * socket buffer is full a short timer retries the writes. */
#include "ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define ACCEPT_BURST 8        /* connections accepted per readiness */
#define WRITE_ROUNDS 64       /* send calls per client per attempt */
#define BUF_KEEP (256u << 10) /* a drained buffer larger than this is freed */
#define CMD_SHOWN_MAX 64      /* bytes of an unknown command name quoted back */

typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

/* A durable reply or event in the stage. If the commit fails, a reply is
 * replaced by a `store` error for its request id, and an event is dropped. */
typedef struct span {
    size_t off, len;
    int is_reply;
    cJSON *id; /* the request's id (a copy), or NULL */
} span;

struct fe_ctl_client {
    fe_ctl *ctl;
    int fd;
    int subscribed;
    int eof;        /* no more input: close once the output is written */
    int watched;    /* fd is in the loop (not paused, not at EOF) */
    int discarding; /* inside a line that was too long */
    buf line;
    buf stage;
    span *spans;
    size_t span_count, span_cap;
    buf out;
    size_t out_pos; /* bytes of out already written */
};

struct fe_ctl {
    fe_loop *loop;
    int lfd;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    dev_t dev;
    ino_t ino;
    const fe_ctl_command *cmds;
    size_t cmd_count;
    void *ctx;
    int (*pending_writes)(void *ctx);
    fe_ctl_client *clients[FE_CTL_CLIENTS_MAX];
    char *rbuf;
    int64_t retry_timer; /* 0: not armed */
    uint64_t retry_ms;
    fe_ctl_stats st;
};

static void set_err(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t err_len, const char *fmt, ...)
{
    if (!err || err_len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

/* --- buffers --- */

/* Make room for extra more bytes; -1 when the allocation fails. */
static int buf_reserve(buf *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < extra)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static int buf_append(buf *b, const char *p, size_t n)
{
    if (n == 0)
        return 0; /* b->p may still be NULL: no memcpy from or to it */
    if (buf_reserve(b, n) != 0)
        return -1;
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

static void buf_free(buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* Empty b, giving back memory a burst left behind. */
static void buf_reset(buf *b)
{
    b->len = 0;
    if (b->cap > BUF_KEEP)
        buf_free(b);
}

/* --- clients --- */

static void client_close(fe_ctl_client *cl)
{
    fe_ctl *c = cl->ctl;
    for (size_t i = 0; i < FE_CTL_CLIENTS_MAX; i++)
        if (c->clients[i] == cl)
            c->clients[i] = NULL;
    if (cl->watched)
        fe_loop_fd_del(c->loop, cl->fd);
    close(cl->fd);
    for (size_t i = 0; i < cl->span_count; i++)
        cJSON_Delete(cl->spans[i].id);
    free(cl->spans);
    buf_free(&cl->line);
    buf_free(&cl->stage);
    buf_free(&cl->out);
    free(cl);
    c->st.clients--;
}

static size_t pending(const fe_ctl_client *cl)
{
    return cl->out.len - cl->out_pos;
}

/* Stage one line (text without its newline). sp NULL: the line does not
 * depend on the commit; else its span, whose id the stage takes over (also
 * on failure). -1 when out of memory. */
static int stage_line(fe_ctl_client *cl, const char *text, const span *sp)
{
    size_t off = cl->stage.len, n = strlen(text);
    int rc = buf_reserve(&cl->stage, n + 1);
    if (rc == 0 && sp && cl->span_count == cl->span_cap) {
        size_t cap = cl->span_cap ? cl->span_cap * 2 : 16;
        span *s = realloc(cl->spans, cap * sizeof(*s));
        if (s) {
            cl->spans = s;
            cl->span_cap = cap;
        }
        rc = s ? 0 : -1;
    }
    if (rc != 0) {
        if (sp)
            cJSON_Delete(sp->id);
        return -1;
    }
    buf_append(&cl->stage, text, n);
    buf_append(&cl->stage, "\n", 1);
    if (sp) {
        span *s = &cl->spans[cl->span_count++];
        *s = *sp;
        s->off = off;
        s->len = n + 1;
    }
    return 0;
}

/* Stop reading a client and close it once its output is written. */
static void abandon(fe_ctl_client *cl);

/* Print obj as one line; NULL when out of memory. */
static char *print_line(const cJSON *obj)
{
    return obj ? cJSON_PrintUnformatted(obj) : NULL;
}

static cJSON *reply_head(const cJSON *id, int ok)
{
    cJSON *r = cJSON_CreateObject();
    if (!r)
        return NULL;
    if (id) {
        cJSON *dup = cJSON_Duplicate(id, 1);
        if (!dup || !cJSON_AddItemToObject(r, "id", dup)) {
            cJSON_Delete(dup);
            cJSON_Delete(r);
            return NULL;
        }
    }
    if (!cJSON_AddBoolToObject(r, "ok", ok)) {
        cJSON_Delete(r);
        return NULL;
    }
    return r;
}

static char *error_line(const cJSON *id, const char *code, const char *message)
{
    cJSON *r = reply_head(id, 0);
    cJSON *e = r ? cJSON_AddObjectToObject(r, "error") : NULL;
    char *s = NULL;
    if (e && cJSON_AddStringToObject(e, "code", code) &&
        cJSON_AddStringToObject(e, "message", message))
        s = print_line(r);
    cJSON_Delete(r);
    return s;
}

/* A reply we could not build: the client must still get one line, in order. */
static const char oom_line[] =
    "{\"ok\":false,\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";

/* Stage line (taken over; NULL when building it failed) or, failing that,
 * the out-of-memory reply. sp as for stage_line. */
static void stage_or_oom(fe_ctl_client *cl, char *line, const span *sp)
{
    int ok = line && stage_line(cl, line, sp) == 0;
    if (!line && sp)
        cJSON_Delete(sp->id);
    free(line);
    if (!ok && stage_line(cl, oom_line, NULL) != 0)
        abandon(cl); /* cannot even say so */
}

static void reply_error(fe_ctl_client *cl, const cJSON *id, const char *code, const char *message)
{
    cl->ctl->st.errors++;
    stage_or_oom(cl, error_line(id, code, message), NULL);
}

static const fe_ctl_command *find_cmd(const fe_ctl *c, const char *name)
{
    for (size_t i = 0; i < c->cmd_count; i++)
        if (strcmp(c->cmds[i].name, name) == 0)
            return &c->cmds[i];
    return NULL;
}

static void dispatch(fe_ctl_client *cl, const cJSON *req)
{
    fe_ctl *c = cl->ctl;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(req, "id");
    const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(req, "cmd");
    char msg[FE_CTL_MESSAGE_MAX];

    if (!cJSON_IsString(cmd) || !cmd->valuestring) {
        reply_error(cl, id, "bad_request", "a request needs a string \"cmd\"");
        return;
    }
    const fe_ctl_command *def = find_cmd(c, cmd->valuestring);
    if (!def) {
        /* Quote at most CMD_SHOWN_MAX bytes, cut at a character boundary. */
        int n = (int)strnlen(cmd->valuestring, CMD_SHOWN_MAX + 1);
        if (n > CMD_SHOWN_MAX)
            for (n = CMD_SHOWN_MAX; n > 0 && (cmd->valuestring[n] & 0xC0) == 0x80; n--)
                ;
        snprintf(msg, sizeof(msg), "unknown command '%.*s'", n, cmd->valuestring);
        reply_error(cl, id, "unknown_command", msg);
        return;
    }
    fe_ctl_error err = {.code = NULL};
    cJSON *result = def->fn(c->ctx, cl, req, &err);
    if (!result) {
        reply_error(cl, id, err.code ? err.code : "internal",
                    err.message[0] ? err.message : "the command failed");
        return;
    }
    cJSON *r = reply_head(id, 1);
    if (!r || !cJSON_AddItemToObject(r, "result", result)) {
        cJSON_Delete(result);
        cJSON_Delete(r);
        stage_or_oom(cl, NULL, NULL);
        return;
    }
    char *line = print_line(r);
    cJSON_Delete(r);
    if (!(def->flags & FE_CTL_DURABLE) || (c->pending_writes && !c->pending_writes(c->ctx))) {
        stage_or_oom(cl, line, NULL);
        return;
    }
    span sp = {.is_reply = 1, .id = id ? cJSON_Duplicate(id, 1) : NULL};
    if (id && !sp.id) {
        free(line);
        line = NULL; /* a store failure could not be reported against its id */
    }
    stage_or_oom(cl, line, &sp);
}

static int all_space(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
            return 0;
    return 1;
}

/* One complete request line (without its newline). Blank lines are
 * ignored, so a person typing into the socket may press Enter freely. */
static void handle_line(fe_ctl_client *cl, const char *p, size_t n)
{
    if (all_space(p, n))
        return;
    cl->ctl->st.requests++;
    const char *end = NULL;
    cJSON *req = cJSON_ParseWithLengthOpts(p, n, &end, 0);
    if (!req) {
        reply_error(cl, NULL, "bad_request", "the request is not valid JSON");
        return;
    }
    if (end && !all_space(end, (size_t)(p + n - end))) {
        reply_error(cl, NULL, "bad_request", "more than one JSON value on the line");
    } else if (!cJSON_IsObject(req)) {
        reply_error(cl, NULL, "bad_request", "a request must be a JSON object");
    } else {
        dispatch(cl, req);
    }
    cJSON_Delete(req);
}

static void too_large(fe_ctl_client *cl)
{
    char msg[FE_CTL_MESSAGE_MAX];
    cl->ctl->st.requests++;
    snprintf(msg, sizeof(msg), "request line longer than %d bytes: discarded", FE_CTL_LINE_MAX);
    reply_error(cl, NULL, "too_large", msg);
}

/* Split input into lines. A line that fits entirely in data is handled in
 * place; only a line split across reads is copied. */
static void feed(fe_ctl_client *cl, const char *data, size_t n)
{
    while (n > 0) {
        const char *nl = memchr(data, '\n', n);
        size_t seg = nl ? (size_t)(nl - data) : n;
        if (!cl->discarding) {
            if (cl->line.len + seg > FE_CTL_LINE_MAX) {
                cl->discarding = 1;
                buf_reset(&cl->line);
                too_large(cl);
            } else if (nl && cl->line.len == 0) {
                handle_line(cl, data, seg);
            } else if (buf_append(&cl->line, data, seg) != 0) {
                cl->discarding = 1; /* out of memory: treat as too large */
                buf_reset(&cl->line);
                too_large(cl);
            } else if (nl) {
                handle_line(cl, cl->line.p, cl->line.len);
                buf_reset(&cl->line);
            }
        }
        if (!nl)
            return;
        cl->discarding = 0;
        data += seg + 1;
        n -= seg + 1;
    }
}

static void on_client(fe_loop *loop, int fd, void *ctx);

static void watch(fe_ctl_client *cl, int on)
{
    if (on && !cl->watched && !cl->eof) {
        cl->watched = fe_loop_fd_add(cl->ctl->loop, cl->fd, on_client, cl) == 0;
    } else if (!on && cl->watched) {
        fe_loop_fd_del(cl->ctl->loop, cl->fd);
        cl->watched = 0;
    }
}

static void abandon(fe_ctl_client *cl)
{
    watch(cl, 0);
    cl->eof = 1;
}

static void on_client(fe_loop *loop, int fd, void *ctx)
{
    fe_ctl_client *cl = ctx;
    (void)loop;
    ssize_t n = read(fd, cl->ctl->rbuf, FE_CTL_READ_MAX);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        client_close(cl);
        return;
    }
    if (n == 0) {
        /* The client may have shut down only its sending side and still
         * wait for replies: treat an unterminated last line as a request,
         * and close once everything is written. */
        if (cl->line.len > 0 && !cl->discarding)
            handle_line(cl, cl->line.p, cl->line.len);
        buf_reset(&cl->line);
        abandon(cl);
        return;
    }
    feed(cl, cl->ctl->rbuf, (size_t)n);
}

/* --- writing --- */

/* Write what is released. 1 if output remains, 0 if all written, -1 if the
 * client is gone (closed here). */
static int client_write(fe_ctl_client *cl, int *progress)
{
    for (int round = 0; round < WRITE_ROUNDS && pending(cl) > 0; round++) {
        ssize_t w = send(cl->fd, cl->out.p + cl->out_pos, pending(cl), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            client_close(cl);
            return -1;
        }
        cl->out_pos += (size_t)w;
        *progress = 1;
    }
    if (pending(cl) == 0) {
        cl->out_pos = 0;
        buf_reset(&cl->out);
    }
    /* Read requests again once the backlog is well below the pause mark. */
    if (!cl->watched && !cl->eof && pending(cl) < FE_CTL_OUT_PAUSE / 2)
        watch(cl, 1);
    if (cl->eof && pending(cl) == 0 && cl->stage.len == 0) {
        client_close(cl);
        return -1;
    }
    return pending(cl) > 0;
}

static uint64_t on_retry(fe_loop *loop, int64_t id, uint64_t now_ms, void *ctx);

/* Write every client's released output; keep a retry timer while some
 * remains (the loop does not poll for writability). */
static void write_all(fe_ctl *c)
{
    int left = 0, progress = 0;
    for (size_t i = 0; i < FE_CTL_CLIENTS_MAX; i++)
        if (c->clients[i] && client_write(c->clients[i], &progress) > 0)
            left = 1;
    if (progress)
        c->retry_ms = FE_CTL_RETRY_MIN_MS;
    if (!left)
        return;
    if (c->retry_timer > 0)
        return;
    int64_t t = fe_loop_timer_add(c->loop, fe_loop_now(c->loop) + c->retry_ms, on_retry, c);
    c->retry_timer = t > 0 ? t : 0;
}

static uint64_t on_retry(fe_loop *loop, int64_t id, uint64_t now_ms, void *ctx)
{
    fe_ctl *c = ctx;
    (void)loop;
    (void)id;
    int left = 0, progress = 0;
    for (size_t i = 0; i < FE_CTL_CLIENTS_MAX; i++)
        if (c->clients[i] && client_write(c->clients[i], &progress) > 0)
            left = 1;
    if (!left) {
        c->retry_timer = 0;
        c->retry_ms = FE_CTL_RETRY_MIN_MS;
        return FE_LOOP_NOMORE;
    }
    if (progress)
        c->retry_ms = FE_CTL_RETRY_MIN_MS;
    else if (c->retry_ms < FE_CTL_RETRY_MAX_MS)
        c->retry_ms *= 2;
    return now_ms + c->retry_ms;
}

/* Append the line of a durable span whose commit failed. */
static int append_failed(fe_ctl_client *cl, const span *s, const char *store_failure)
{
    if (!s->is_reply)
        return 0; /* an event about state that is not on disk: drop it */
    char *line = error_line(s->id, "store", store_failure);
    const char *text = line ? line : oom_line;
    int rc = buf_append(&cl->out, text, strlen(text));
    if (rc == 0)
        rc = buf_append(&cl->out, "\n", 1);
    free(line);
    return rc;
}

/* Move the stage to the output, resolving durable spans. */
static int release(fe_ctl_client *cl, const char *store_failure)
{
    int rc = 0;
    if (cl->out_pos) {
        /* Drop what was written, so a client that reads steadily but never
         * quite catches up does not make the buffer grow forever. */
        memmove(cl->out.p, cl->out.p + cl->out_pos, pending(cl));
        cl->out.len -= cl->out_pos;
        cl->out_pos = 0;
    }
    if (!store_failure || cl->span_count == 0) {
        rc = buf_append(&cl->out, cl->stage.p, cl->stage.len);
    } else {
        size_t pos = 0;
        for (size_t i = 0; i < cl->span_count && rc == 0; i++) {
            const span *s = &cl->spans[i];
            rc = buf_append(&cl->out, cl->stage.p + pos, s->off - pos);
            if (rc == 0)
                rc = append_failed(cl, s, store_failure);
            pos = s->off + s->len;
        }
        if (rc == 0)
            rc = buf_append(&cl->out, cl->stage.p + pos, cl->stage.len - pos);
        for (size_t i = 0; i < cl->span_count; i++)
            cl->ctl->st.errors += cl->spans[i].is_reply; /* dropped events are not errors */
    }
    for (size_t i = 0; i < cl->span_count; i++)
        cJSON_Delete(cl->spans[i].id);
    cl->span_count = 0;
    buf_reset(&cl->stage);
    return rc;
}

void fe_ctl_committed(fe_ctl *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < FE_CTL_CLIENTS_MAX; i++) {
        fe_ctl_client *cl = c->clients[i];
        if (cl && cl->stage.len)
            (void)release(cl, NULL); /* out of memory: stays staged, resolved at the flush */
    }
}

void fe_ctl_flush(fe_ctl *c, const char *store_failure)
{
    if (!c)
        return;
    for (size_t i = 0; i < FE_CTL_CLIENTS_MAX; i++) {
        fe_ctl_client *cl = c->clients[i];
        if (!cl || (cl->stage.len == 0 && pending(cl) == 0 && !cl->eof))
            continue;
        if (cl->stage.len && release(cl, store_failure) != 0) {
            client_close(cl); /* out of memory: it would miss replies */
            continue;
        }
        if (pending(cl) > FE_CTL_OUT_MAX) {
            c->st.dropped_slow++;
            client_close(cl);
            continue;
        }
        if (pending(cl) > FE_CTL_OUT_PAUSE)
            watch(cl, 0);
    }
    write_all(c);
}

void fe_ctl_subscribe(fe_ctl_client *client)
{
    if (client)
        client->subscribed = 1;
}

void fe_ctl_broadcast(fe_ctl *c, const cJSON *event, unsigned flags)
{
    if (!c || !event)
        return;
    char *line = NULL;
    for (size_t i = 0; i < FE_CTL_CLIENTS_MAX; i++) {
        fe_ctl_client *cl = c->clients[i];
        if (!cl || !cl->subscribed || cl->eof)
            continue;
        if (!line && !(line = print_line(event)))
            return; /* out of memory: the event is lost, the inbox still has it */
        span sp = {.is_reply = 0, .id = NULL};
        if (stage_line(cl, line, (flags & FE_CTL_DURABLE) ? &sp : NULL) != 0)
            abandon(cl); /* out of memory: it would miss events */
    }
    free(line);
}

/* --- accepting --- */

static void refuse(fe_ctl *c, int fd)
{
    static const char msg[] = "{\"ok\":false,\"error\":{\"code\":\"full\",\"message\":"
                              "\"too many control clients connected\"}}\n";
    ssize_t w = send(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)w; /* best effort: the close says it anyway */
    close(fd);
    c->st.refused++;
}

static void on_listen(fe_loop *loop, int lfd, void *ctx)
{
    fe_ctl *c = ctx;
    (void)loop;
    for (int i = 0; i < ACCEPT_BURST; i++) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0)
            return;
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 ||
            fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
            close(fd);
            continue;
        }
        size_t slot = FE_CTL_CLIENTS_MAX;
        for (size_t j = 0; j < FE_CTL_CLIENTS_MAX && slot == FE_CTL_CLIENTS_MAX; j++)
            if (!c->clients[j])
                slot = j;
        fe_ctl_client *cl = slot < FE_CTL_CLIENTS_MAX ? calloc(1, sizeof(*cl)) : NULL;
        if (!cl) {
            refuse(c, fd);
            continue;
        }
        cl->ctl = c;
        cl->fd = fd;
        c->clients[slot] = cl;
        c->st.clients++;
        c->st.accepted++;
        watch(cl, 1);
        if (!cl->watched)
            client_close(cl);
    }
}

/* Is something listening on path? 1 yes, 0 no (stale), -1 cannot tell. */
static int socket_alive(const char *path)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    memcpy(a.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
    int e = errno;
    close(fd);
    if (rc == 0 || e == EAGAIN)
        return 1;
    return e == ECONNREFUSED || e == ENOENT ? 0 : -1;
}

static int prepare_path(const char *path, char *err, size_t err_len)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT)
            return 0;
        set_err(err, err_len, "control socket %s: %s", path, strerror(errno));
        return FE_ERR_INVALID;
    }
    if (!S_ISSOCK(st.st_mode)) {
        set_err(err, err_len,
                "control socket %s: a file that is not a socket is in the way; remove it or "
                "choose another path with --socket",
                path);
        return FE_ERR_INVALID;
    }
    int alive = socket_alive(path);
    if (alive > 0) {
        set_err(err, err_len,
                "another ferryd is already listening on %s (stop it, or give this one its own "
                "--data-dir and --socket)",
                path);
        return FE_ERR_DUPLICATE;
    }
    if (alive < 0) {
        set_err(err, err_len,
                "control socket %s exists and cannot be checked; remove it if no ferryd runs",
                path);
        return FE_ERR_INVALID;
    }
    /* Left behind by a daemon that crashed: nobody listens there. */
    if (unlink(path) != 0) {
        set_err(err, err_len, "cannot remove stale control socket %s: %s", path, strerror(errno));
        return FE_ERR_INVALID;
    }
    return 0;
}

static int set_mode(fe_ctl *c, const char *group, char *err, size_t err_len)
{
    if (!group || !group[0]) {
        if (chmod(c->path, S_IRUSR | S_IWUSR) == 0)
            return 0;
        set_err(err, err_len, "cannot chmod %s: %s", c->path, strerror(errno));
        return FE_ERR_STORE;
    }
    struct group *g = getgrnam(group);
    if (!g) {
        set_err(err, err_len, "socket_group %s: no such group", group);
        return FE_ERR_INVALID;
    }
    if (chown(c->path, (uid_t)-1, g->gr_gid) != 0 ||
        chmod(c->path, S_IRUSR | S_IWUSR | S_IRGRP | S_IWGRP) != 0) {
        set_err(err, err_len, "cannot give %s to group %s: %s", c->path, group, strerror(errno));
        return FE_ERR_STORE;
    }
    return 0;
}

static int open_listener(fe_ctl *c, const char *group, char *err, size_t err_len)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    memcpy(a.sun_path, c->path, strlen(c->path) + 1);
    c->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->lfd < 0) {
        set_err(err, err_len, "cannot create the control socket: %s", strerror(errno));
        return FE_ERR_STORE;
    }
    /* Created owner-only from the start, not narrowed after a window. */
    mode_t old = umask(0177);
    int rc = bind(c->lfd, (struct sockaddr *)&a, sizeof(a));
    int e = errno;
    umask(old);
    if (rc != 0) {
        set_err(err, err_len, "cannot bind control socket %s: %s", c->path, strerror(e));
        return FE_ERR_STORE;
    }
    struct stat st;
    if (stat(c->path, &st) == 0) {
        c->dev = st.st_dev;
        c->ino = st.st_ino;
    }
    rc = set_mode(c, group, err, err_len);
    if (rc != 0)
        return rc;
    if (listen(c->lfd, 64) != 0) {
        set_err(err, err_len, "cannot listen on control socket %s: %s", c->path, strerror(errno));
        return FE_ERR_STORE;
    }
    if (fe_loop_fd_add(c->loop, c->lfd, on_listen, c) != 0) {
        set_err(err, err_len, "cannot watch the control socket: event loop full");
        return FE_ERR_STORE;
    }
    return 0;
}

int fe_ctl_new(fe_ctl **out, fe_loop *loop, const fe_ctl_config *cfg, char *err, size_t err_len)
{
    if (!out)
        return FE_ERR_INVALID;
    *out = NULL;
    if (!loop || !cfg || !cfg->path || (!cfg->commands && cfg->command_count)) {
        set_err(err, err_len, "control socket: bad arguments");
        return FE_ERR_INVALID;
    }
    fe_ctl *c = calloc(1, sizeof(*c));
    if (!c || !(c->rbuf = malloc(FE_CTL_READ_MAX))) {
        free(c);
        set_err(err, err_len, "out of memory creating the control socket");
        return FE_ERR_NOMEM;
    }
    c->lfd = -1;
    c->loop = loop;
    c->cmds = cfg->commands;
    c->cmd_count = cfg->command_count;
    c->ctx = cfg->ctx;
    c->pending_writes = cfg->pending_writes;
    c->retry_ms = FE_CTL_RETRY_MIN_MS;
    size_t n = strlen(cfg->path);
    if (n == 0 || n >= sizeof(c->path)) {
        set_err(err, err_len, "control socket path %s is empty or longer than %zu bytes", cfg->path,
                sizeof(c->path) - 1);
        free(c->rbuf);
        free(c);
        return FE_ERR_INVALID;
    }
    memcpy(c->path, cfg->path, n + 1);
    int rc = prepare_path(c->path, err, err_len);
    if (rc == 0 && (rc = open_listener(c, cfg->group, err, err_len)) != 0 && c->ino)
        unlink(c->path);
    if (rc != 0) {
        if (c->lfd >= 0)
            close(c->lfd);
        free(c->rbuf);
        free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void fe_ctl_del(fe_ctl *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < FE_CTL_CLIENTS_MAX; i++)
        if (c->clients[i])
            client_close(c->clients[i]);
    if (c->retry_timer > 0)
        fe_loop_timer_del(c->loop, c->retry_timer);
    fe_loop_fd_del(c->loop, c->lfd);
    close(c->lfd);
    /* Only our own socket: a newer daemon may have replaced the file. */
    struct stat st;
    if (stat(c->path, &st) == 0 && st.st_dev == c->dev && st.st_ino == c->ino)
        unlink(c->path);
    free(c->rbuf);
    free(c);
}

void fe_ctl_get_stats(const fe_ctl *c, fe_ctl_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (c)
        *out = c->st;
}

size_t fe_ctl_subscribers(const fe_ctl *c)
{
    size_t n = 0;
    for (size_t i = 0; c && i < FE_CTL_CLIENTS_MAX; i++)
        n += c->clients[i] && c->clients[i]->subscribed && !c->clients[i]->eof;
    return n;
}
