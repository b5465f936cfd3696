/* ferryd as a user runs it: real daemons, SQLite stores with full sync,
 * UDP over 127.0.0.1, the control socket. Prints figures; asserts nothing.
 *
 *   bench_daemon [FERRYD [MESSAGES]]
 *
 * FERRYD defaults to the ferryd next to this program; MESSAGES (default
 * 5000) is the count per throughput run. Keep it well below
 * FE_OUTBOX_CAPACITY (8192): each delivered message leaves a receipt held
 * in both outboxes for the receipt's lifetime (about a day), and a full
 * outbox refuses further sends. Each figure is the median of 3
 * runs, each in fresh temporary data directories:
 *   - end-to-end rate: one client pipelines `send` requests to alice on one
 *     connection without waiting for replies (a `full` reply is retried),
 *     and the rate is the number of `message` events bob's subscriber saw
 *     over the time from the first request to the last event; also the CPU
 *     time each daemon spent per delivered message (/proc/PID/stat);
 *   - resident memory (VmRSS) of an idle daemon, and of one started on a
 *     store holding 100,000 delivered messages (written beforehand through
 *     platform/sqlstore), and how long that start takes until the control
 *     socket answers `id`. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "limits.h"
#include "sqlstore.h"

#define RUNS 3
#define STORED 100000
/* Send requests in flight on the connection: the engine holds at most
 * FE_ORIGIN_QUOTA unacknowledged messages of one sender, and a wider window
 * only earns `full` replies (which cost the sender CPU). */
#define WINDOW FE_ORIGIN_QUOTA
#define RUN_TIMEOUT_S 120.0
#define STALL_S 10.0 /* all sent, nothing delivered for this long: stop the run */
#define LINE_MAX_BYTES 8192

static const char *ferryd;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        perror("bench_daemon: udp port");
        exit(1);
    }
    close(fd);
    return ntohs(a.sin_port);
}

/* Start ferryd in the foreground in dir/name; its log goes to dir/name.log. */
static pid_t spawn(const char *dir, const char *name, int port, int peer)
{
    char data[512], logp[512], portv[16], peerv[32];
    snprintf(data, sizeof(data), "%s/%s", dir, name);
    snprintf(logp, sizeof(logp), "%s/%s.log", dir, name);
    snprintf(portv, sizeof(portv), "%d", port);
    snprintf(peerv, sizeof(peerv), "127.0.0.1:%d", peer);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* no daemon outlives an interrupted benchmark */
        int fd = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0)
            dup2(fd, 2);
        execl(ferryd, ferryd, "--foreground", "--data-dir", data, "--name", name, "--udp-port",
              portv, "--peer", peerv, "--no-multicast", "--log-level", "warn", (char *)NULL);
        _exit(127);
    }
    if (pid < 0) {
        perror("bench_daemon: fork");
        exit(1);
    }
    return pid;
}

static void stop(pid_t pid)
{
    int status;
    kill(pid, SIGTERM);
    for (int i = 0; i < 300; i++) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return;
        sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
}

/* CPU time (user + system) the process used so far, in seconds. */
static double cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    /* Fields after the command name, which is in parentheses: utime is
     * the 12th of them and stime the 13th. */
    char *p = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static long rss_kb(pid_t pid)
{
    char path[64], line[256];
    long kb = -1;
    snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kb;
}

/* --- a control connection with a line reader --- */

typedef struct conn {
    int fd;
    char in[1 << 16];
    size_t in_len;
} conn;

static int conn_open(conn *c, const char *dir, const char *name)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s/%s/ferryd.sock", dir, name);
    c->in_len = 0;
    c->fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (c->fd >= 0 && connect(c->fd, (struct sockaddr *)&a, sizeof(a)) == 0)
        return 0;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    return -1;
}

/* Next line into out (without newline), waiting up to timeout_ms. 1, or 0
 * on timeout or EOF. */
static int conn_line(conn *c, char *out, size_t cap, int timeout_ms)
{
    double end = now_s() + timeout_ms / 1000.0;
    for (;;) {
        char *nl = memchr(c->in, '\n', c->in_len);
        if (nl) {
            size_t n = (size_t)(nl - c->in);
            size_t m = n < cap - 1 ? n : cap - 1;
            memcpy(out, c->in, m);
            out[m] = '\0';
            memmove(c->in, nl + 1, c->in_len - n - 1);
            c->in_len -= n + 1;
            return 1;
        }
        int left = (int)((end - now_s()) * 1000);
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, left) <= 0)
            return 0;
        ssize_t r = read(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len);
        if (r <= 0)
            return 0;
        c->in_len += (size_t)r;
    }
}

static int request(conn *c, const char *req, char *reply, size_t cap)
{
    size_t n = strlen(req);
    return write(c->fd, req, n) == (ssize_t)n && conn_line(c, reply, cap, 10000);
}

/* Connect once the daemon answers `id` (up to 30 s). 0 or -1. */
static int wait_ready(conn *c, const char *dir, const char *name)
{
    char reply[LINE_MAX_BYTES];
    for (int i = 0; i < 3000; i++) {
        if (conn_open(c, dir, name) == 0) {
            if (request(c, "{\"cmd\":\"id\"}\n", reply, sizeof(reply)) &&
                strstr(reply, "\"ok\":true"))
                return 0;
            close(c->fd);
        }
        sleep_ms(10);
    }
    return -1;
}

static int wait_user(conn *c, const char *user)
{
    char reply[LINE_MAX_BYTES], want[64];
    snprintf(want, sizeof(want), "\"name\":\"%s\"", user);
    for (int i = 0; i < 400; i++) {
        if (request(c, "{\"cmd\":\"users\"}\n", reply, sizeof(reply)) && strstr(reply, want))
            return 0;
        sleep_ms(50);
    }
    return -1;
}

static void make_tmp(char *dir, size_t cap)
{
    snprintf(dir, cap, "%s/ferry-bench.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) {
        perror("bench_daemon: mkdtemp");
        exit(1);
    }
}

static void remove_tree(const char *dir)
{
    pid_t pid = fork();
    if (pid == 0) {
        execlp("rm", "rm", "-rf", dir, (char *)NULL);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
}

/* --- throughput --- */

typedef struct run_result {
    double e2e_rate, ack_rate;
    double cpu_us_sender, cpu_us_receiver; /* CPU time per delivered message */
    long idle_rss_kb;
    unsigned long full_replies, errors, delivered, acked;
} run_result;

static int throughput(int messages, run_result *res)
{
    char dir[256], reply[LINE_MAX_BYTES];
    conn *ca = calloc(1, sizeof(conn)), *cb = calloc(1, sizeof(conn));
    conn *snd = calloc(1, sizeof(conn)), *sub = calloc(1, sizeof(conn));
    int pa = free_port(), pb = free_port(), rc = -1;
    make_tmp(dir, sizeof(dir));
    pid_t bob = spawn(dir, "bob", pb, pa), alice = spawn(dir, "alice", pa, pb);
    memset(res, 0, sizeof(*res));
    if (wait_ready(ca, dir, "alice") || wait_ready(cb, dir, "bob") || wait_user(ca, "bob") ||
        wait_user(cb, "alice")) {
        fprintf(stderr, "bench_daemon: daemons did not start or meet (logs in %s)\n", dir);
        goto out;
    }
    sleep_ms(500);
    res->idle_rss_kb = rss_kb(alice);
    if (conn_open(sub, dir, "bob") ||
        !request(sub, "{\"cmd\":\"subscribe\"}\n", reply, sizeof(reply)) ||
        conn_open(snd, dir, "alice"))
        goto out;
    fcntl(snd->fd, F_SETFL, O_NONBLOCK);

    /* Requests carry their message number as id; `full` puts it back. */
    int *retry = malloc(sizeof(int) * (size_t)messages);
    size_t retry_n = 0;
    int next = 0, inflight = 0;
    unsigned long acked = 0;
    char *out = malloc(1 << 20);
    size_t out_len = 0;
    double cpu_a = cpu_s(alice), cpu_b = cpu_s(bob);
    double start = now_s(), last_ack = start, last_event = start, pause_until = 0;
    while (res->delivered < (unsigned long)messages && now_s() - start < RUN_TIMEOUT_S) {
        double t = now_s();
        if (next == messages && !retry_n && inflight == 0 && t - last_event > STALL_S)
            break; /* lost frames that nothing recovers: report what arrived */
        while (inflight < WINDOW && t >= pause_until && out_len < (1 << 20) - 256 &&
               (retry_n || next < messages)) {
            int i = retry_n ? retry[--retry_n] : next++;
            out_len += (size_t)snprintf(out + out_len, 256,
                                        "{\"id\":%d,\"cmd\":\"send\",\"to\":\"bob\","
                                        "\"text\":\"benchmark message number %d\"}\n",
                                        i, i);
            inflight++;
        }
        if (out_len) {
            ssize_t w = write(snd->fd, out, out_len);
            if (w > 0) {
                memmove(out, out + w, out_len - (size_t)w);
                out_len -= (size_t)w;
            }
        }
        struct pollfd p[2] = {{.fd = snd->fd, .events = POLLIN | (out_len ? POLLOUT : 0)},
                              {.fd = sub->fd, .events = POLLIN}};
        if (poll(p, 2, 5) < 0)
            break;
        if (p[0].revents & POLLIN) {
            ssize_t r = read(snd->fd, snd->in + snd->in_len, sizeof(snd->in) - snd->in_len);
            if (r <= 0)
                break;
            snd->in_len += (size_t)r;
            while (conn_line(snd, reply, sizeof(reply), 0)) {
                inflight--;
                if (strstr(reply, "\"ok\":true")) {
                    acked++;
                    last_ack = now_s();
                } else if (strstr(reply, "\"code\":\"full\"")) {
                    /* The engine's outbox is full until receipts come
                     * back: resend this one a little later. */
                    res->full_replies++;
                    retry[retry_n++] = (int)strtol(reply + 6, NULL, 10); /* {"id":N,... */
                    pause_until = now_s() + 0.002;
                } else {
                    res->errors++;
                }
            }
        }
        if (p[1].revents & POLLIN) {
            ssize_t r = read(sub->fd, sub->in + sub->in_len, sizeof(sub->in) - sub->in_len);
            if (r <= 0)
                break;
            sub->in_len += (size_t)r;
            while (conn_line(sub, reply, sizeof(reply), 0))
                if (strstr(reply, "\"event\":\"message\"")) {
                    res->delivered++;
                    last_event = now_s();
                }
        }
    }
    res->acked = acked;
    if (res->delivered > 0) {
        res->cpu_us_sender = (cpu_s(alice) - cpu_a) * 1e6 / (double)res->delivered;
        res->cpu_us_receiver = (cpu_s(bob) - cpu_b) * 1e6 / (double)res->delivered;
        res->e2e_rate = (double)res->delivered / (last_event - start);
        res->ack_rate = (double)acked / (last_ack - start);
        rc = 0;
    }
    if (res->delivered < (unsigned long)messages)
        fprintf(stderr,
                "bench_daemon: only %lu of %d delivered (%lu acknowledged, %lu `full`, %lu "
                "errors); the rest was lost and not recovered; logs in %s\n",
                res->delivered, messages, acked, res->full_replies, res->errors, dir);
    free(retry);
    free(out);
out:
    for (conn *c = ca; c; c = c == ca ? cb : c == cb ? snd : c == snd ? sub : NULL)
        if (c->fd > 0)
            close(c->fd);
    free(ca);
    free(cb);
    free(snd);
    free(sub);
    stop(alice);
    stop(bob);
    if (rc == 0 && res->delivered == (unsigned long)messages)
        remove_tree(dir);
    return rc;
}

/* --- a store with many messages --- */

static int fill_store(const char *dir)
{
    char data[300], path[320], err[512], text[128];
    fe_sqlstore *s;
    fe_store st;
    snprintf(data, sizeof(data), "%s/big", dir);
    snprintf(path, sizeof(path), "%s/ferry.db", data);
    mkdir(data, 0700);
    if (fe_sqlstore_open(&s, path, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench_daemon: %s\n", err);
        return -1;
    }
    fe_sqlstore_bind(s, &st);
    int rc = fe_sqlstore_begin(s);
    for (uint32_t i = 0; rc == 0 && i < STORED; i++) {
        fe_inbox_rec r = {.type = 0, .received_ms = 86400000u + i};
        int n = snprintf(text, sizeof(text), "stored message number %u, kept for the benchmark", i);
        memcpy(r.id, &i, sizeof(i));
        r.id[7] = 0xbe;
        memset(r.from, 0x11, sizeof(r.from));
        r.text = (const uint8_t *)text;
        r.text_len = (size_t)n;
        rc = st.ops->inbox_put(st.ctx, &r);
        /* Delivered ids are remembered (FE_SEEN_MSG | FE_SEEN_DELIVERED)
         * for 30 days, as the engine does. */
        if (rc == 0)
            rc = st.ops->seen_put(st.ctx, r.id, 1u | 4u, 86400000u + 30ull * 86400000u);
    }
    if (rc == 0)
        rc = fe_sqlstore_commit(s);
    if (rc != 0)
        fprintf(stderr, "bench_daemon: filling the store: %s\n", fe_sqlstore_errmsg(s));
    fe_sqlstore_close(s);
    return rc;
}

static int big_start(const char *dir, double *start_ms, long *rss)
{
    conn c;
    double t0 = now_s();
    pid_t pid = spawn(dir, "big", free_port(), free_port());
    int rc = wait_ready(&c, dir, "big");
    *start_ms = (now_s() - t0) * 1000.0;
    if (rc == 0) {
        close(c.fd);
        sleep_ms(500);
        *rss = rss_kb(pid);
    }
    stop(pid);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double v[RUNS])
{
    qsort(v, RUNS, sizeof(double), cmp_double);
    return v[RUNS / 2];
}

int main(int argc, char **argv)
{
    static char self[512];
    long messages_arg = argc > 2 ? strtol(argv[2], NULL, 10) : 5000;
    if (messages_arg < 1 || messages_arg > 1000000) {
        fprintf(stderr, "bench_daemon: MESSAGES must be 1..1000000\n");
        return 2;
    }
    int messages = (int)messages_arg;
    if (argc > 1) {
        ferryd = argv[1];
    } else {
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 16);
        if (n <= 0)
            return 1;
        self[n] = '\0';
        snprintf(self + strlen(dirname(self)), 16, "/ferryd");
        ferryd = self;
    }
    if (access(ferryd, X_OK) != 0 || messages <= 0) {
        fprintf(stderr, "usage: bench_daemon [FERRYD [MESSAGES]] (no ferryd at %s)\n", ferryd);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    printf("ferryd benchmark: %s, %d messages per run, median of %d runs\n", ferryd, messages,
           RUNS);

    double e2e[RUNS], ack[RUNS], idle[RUNS], big_rss[RUNS], big_ms[RUNS], cpu_tx[RUNS],
        cpu_rx[RUNS];
    for (int i = 0; i < RUNS; i++) {
        run_result r;
        if (throughput(messages, &r) != 0)
            return 1;
        e2e[i] = r.e2e_rate;
        ack[i] = r.ack_rate;
        idle[i] = (double)r.idle_rss_kb;
        cpu_tx[i] = r.cpu_us_sender;
        cpu_rx[i] = r.cpu_us_receiver;
        printf("  run %d: %.0f msg/s delivered end to end (%lu of %d), %.0f sends/s "
               "acknowledged (%lu `full` replies retried), CPU per message: sender %.0f us, "
               "receiver %.0f us; idle RSS %ld KiB\n",
               i + 1, r.e2e_rate, r.delivered, messages, r.ack_rate, r.full_replies,
               r.cpu_us_sender, r.cpu_us_receiver, r.idle_rss_kb);
        fflush(stdout);
    }

    char dir[256];
    make_tmp(dir, sizeof(dir));
    double t0 = now_s();
    if (fill_store(dir) != 0)
        return 1;
    printf("  wrote %d delivered messages into a store in %.1f s\n", STORED, now_s() - t0);
    for (int i = 0; i < RUNS; i++) {
        long rss = -1;
        if (big_start(dir, &big_ms[i], &rss) != 0) {
            fprintf(stderr, "bench_daemon: the daemon on the big store did not start (%s)\n", dir);
            return 1;
        }
        big_rss[i] = (double)rss;
        printf("  run %d: start with %d stored messages %.0f ms, RSS %ld KiB\n", i + 1, STORED,
               big_ms[i], rss);
    }
    remove_tree(dir);

    printf("\nend-to-end delivery, durable, pipelined client:  %8.0f msg/s\n", median(e2e));
    printf("sends acknowledged (stored) by the sender:       %8.0f msg/s\n", median(ack));
    printf("CPU per delivered message, sender / receiver: %5.0f / %.0f us\n", median(cpu_tx),
           median(cpu_rx));
    printf("RSS of an idle daemon:                           %8.0f KiB\n", median(idle));
    printf("RSS with %d stored messages:                 %8.0f KiB\n", STORED, median(big_rss));
    printf("start-up with %d stored messages:            %8.0f ms\n", STORED, median(big_ms));
    return 0;
}
