/* The ferry CLI's commands (docs/API.md, "The ferry CLI"). */
#include "commands.h"

#include "format.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* --- shared helpers --- */

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* Ctrl-C while following ends the loop cleanly instead of killing us mid-line. */
static void catch_interrupts(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static long long mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec;
}

const struct fe_command *fe_command_find(const char *name)
{
    for (const struct fe_command *c = fe_commands; c->name; c++)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

void fe_command_usage(FILE *out, const struct fe_command *cmd)
{
    fprintf(out, "usage: ferry [--socket PATH] [--json] %s\n", cmd->usage);
}

static int is_number(const char *s, unsigned long max, unsigned long *out)
{
    char *end;
    if (!s || *s < '0' || *s > '9')
        return 0;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max)
        return 0;
    *out = v;
    return 1;
}

static int usage_error(const struct fe_command *cmd, const char *fmt, const char *what)
{
    fputs("ferry: ", stderr);
    fprintf(stderr, fmt, what);
    fputc('\n', stderr);
    fe_command_usage(stderr, cmd);
    fprintf(stderr, "(ferry %s --help for more)\n", cmd->name);
    return FE_EXIT_USAGE;
}

int fe_cli_args(struct fe_cli *cli, const struct fe_command *cmd, int argc, char **argv,
                const struct fe_opt *opts, char **pos, int pos_max, int *npos)
{
    int options_done = 0;
    *npos = 0;
    for (int i = 0; i < argc; i++) {
        char *a = argv[i];
        if (options_done || a[0] != '-' || a[1] != '-') {
            if (*npos >= pos_max)
                return usage_error(cmd, "too many arguments at '%s'", a);
            pos[(*npos)++] = a;
            continue;
        }
        if (a[2] == '\0') { /* "--": the rest is text, even if it starts with dashes */
            options_done = 1;
            continue;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
        if (strncmp(name, "help", name_len) == 0 && name_len == 4) {
            fe_command_usage(stdout, cmd);
            fputs(cmd->help, stdout);
            return 1;
        }
        if (strncmp(name, "json", name_len) == 0 && name_len == 4 && !eq) {
            cli->json = 1;
            continue;
        }
        if (strncmp(name, "socket", name_len) == 0 && name_len == 6) {
            const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
            if (!v || !*v)
                return usage_error(cmd, "%s needs a path", "--socket");
            snprintf(cli->socket_path, sizeof cli->socket_path, "%s", v);
            continue;
        }
        const struct fe_opt *o = opts;
        while (o && o->name &&
               !(strncmp(o->name, name, name_len) == 0 && o->name[name_len] == '\0'))
            o++;
        if (!o || !o->name)
            return usage_error(cmd, "unknown option '%s'", a);
        if (o->kind == 0) {
            if (eq)
                return usage_error(cmd, "%s takes no value", o->name);
            *o->flag = 1;
        } else if (o->kind == 1) {
            const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
            if (!v)
                return usage_error(cmd, "--%s needs a value", o->name);
            *o->value = v;
        } else {
            unsigned long dummy;
            *o->flag = 1;
            if (eq)
                *o->value = eq + 1;
            else if (i + 1 < argc && is_number(argv[i + 1], ~0ul, &dummy))
                *o->value = argv[++i];
        }
    }
    return 0;
}

int fe_cli_connect(struct fe_cli *cli)
{
    if (cli->connected)
        return 0;
    if (fe_client_connect(&cli->client, cli->socket_path) != FE_CLIENT_OK) {
        fprintf(stderr, "ferry: %s\n", cli->client.err);
        fe_client_free(&cli->client);
        return FE_EXIT_CONN;
    }
    cli->connected = 1;
    return 0;
}

int fe_cli_call(struct fe_cli *cli, cJSON **result, const char *cmd, cJSON *args)
{
    int rc = fe_cli_connect(cli);
    if (rc != 0) {
        cJSON_Delete(args);
        return rc;
    }
    rc = fe_client_call(&cli->client, result, cmd, args);
    if (rc == FE_CLIENT_OK)
        return 0;
    fputs("ferry: ", stderr);
    fe_fmt_text(stderr, cli->client.err, NULL);
    fputc('\n', stderr);
    return rc == FE_CLIENT_ERR_REPLY ? FE_EXIT_DAEMON : FE_EXIT_CONN;
}

void fe_cli_print_json(const cJSON *obj)
{
    char *s = cJSON_PrintUnformatted(obj);
    if (s) {
        puts(s);
        cJSON_free(s);
    }
    fflush(stdout);
}

char *fe_cli_join(char **words, int n)
{
    size_t len = 1;
    for (int i = 0; i < n; i++)
        len += strlen(words[i]) + 1;
    char *s = malloc(len), *p = s;
    if (!s)
        return NULL;
    for (int i = 0; i < n; i++) {
        size_t l = strlen(words[i]);
        if (i > 0)
            *p++ = ' ';
        memcpy(p, words[i], l);
        p += l;
    }
    *p = '\0';
    return s;
}

/* Groups may be named "#camp" on the command line, as in the chat. */
static const char *group_arg(const char *g)
{
    return g[0] == '#' && g[1] ? g + 1 : g;
}

/* Runs a request whose result is shown by print (or as JSON). */
static int simple(struct fe_cli *cli, const char *cmd, cJSON *args,
                  void (*print)(const cJSON *result, void *ctx), void *ctx)
{
    cJSON *res;
    int rc = fe_cli_call(cli, &res, cmd, args);
    if (rc != 0)
        return rc;
    if (cli->json)
        fe_cli_print_json(res);
    else if (print)
        print(res, ctx);
    cJSON_Delete(res);
    return 0;
}

#define ARGS(cmdp, opts, pos, n)                                                                   \
    do {                                                                                           \
        int rc_ = fe_cli_args(cli, cmdp, argc, argv, opts, pos, FE_ARGS_MAX, &n);                  \
        if (rc_ != 0)                                                                              \
            return rc_ == 1 ? FE_EXIT_OK : rc_;                                                    \
    } while (0)

/* --- id --- */

static void print_id(const cJSON *r, void *ctx)
{
    (void)ctx;
    static const char *const keys[] = {"name", "address", "fingerprint", "public_key"};
    static const char *const labels[] = {
        "name:       ", "address:    ", "fingerprint:", "public key: "};
    for (size_t i = 0; i < 4; i++) {
        printf("%s ", labels[i]);
        fe_fmt_text(stdout, fe_json_str(r, keys[i]), NULL);
        putchar('\n');
    }
}

static int cmd_id(struct fe_cli *cli, int argc, char **argv)
{
    char *pos[FE_ARGS_MAX];
    int n;
    ARGS(fe_command_find("id"), NULL, pos, n);
    if (n != 0)
        return usage_error(fe_command_find("id"), "unexpected argument '%s'", pos[0]);
    return simple(cli, "id", NULL, print_id, NULL);
}

/* --- send --- */

/* Waits for the "delivered" event of id until deadline (monotonic seconds).
 * Returns 0 when it came, FE_EXIT_TIMEOUT, or FE_EXIT_CONN. */
static int wait_delivered(struct fe_cli *cli, const char *id, long long deadline)
{
    for (;;) {
        long long left = deadline - mono_s();
        if (left <= 0)
            return FE_EXIT_TIMEOUT;
        cJSON *ev;
        int rc = fe_client_next_event(&cli->client, &ev, (int)(left * 1000));
        if (rc == FE_CLIENT_ERR_TIMEOUT)
            continue;
        if (rc != FE_CLIENT_OK) {
            fprintf(stderr, "ferry: %s\n", cli->client.err);
            return FE_EXIT_CONN;
        }
        int hit = strcmp(fe_json_str(ev, "event"), "delivered") == 0 &&
                  strcmp(fe_json_str(ev, "message_id"), id) == 0;
        cJSON_Delete(ev);
        if (hit)
            return 0;
    }
}

/* Asks the daemon for the state of message id; *res is the status result. */
static int query_status(struct fe_cli *cli, const char *id, cJSON **res)
{
    cJSON *args = cJSON_CreateObject();
    cJSON_AddStringToObject(args, "message_id", id);
    return fe_cli_call(cli, res, "status", args);
}

static int cmd_send(struct fe_cli *cli, int argc, char **argv)
{
    const struct fe_command *me = fe_command_find("send");
    int anonymous = 0, wait = 0;
    const char *wait_s = NULL;
    const struct fe_opt opts[] = {
        {"anonymous", 0, &anonymous, NULL}, {"wait", 2, &wait, &wait_s}, {NULL, 0, NULL, NULL}};
    char *pos[FE_ARGS_MAX];
    int n;
    ARGS(me, opts, pos, n);
    if (n < 2)
        return usage_error(me, "%s", n == 0 ? "who to? (a user name or address)" : "no text given");
    unsigned long seconds = FE_WAIT_DEFAULT_S;
    if (wait_s && !is_number(wait_s, FE_WAIT_MAX_S, &seconds))
        return usage_error(me, "--wait takes whole seconds, not '%s'", wait_s);
    char *text = fe_cli_join(pos + 1, n - 1);
    if (!text) {
        fputs("ferry: out of memory\n", stderr);
        return FE_EXIT_DAEMON;
    }

    int rc;
    cJSON *res = NULL;
    if (wait) {
        /* Subscribe before sending, so the receipt cannot slip past unseen. */
        rc = fe_cli_call(cli, &res, "subscribe", NULL);
        cJSON_Delete(res);
        res = NULL;
        if (rc != 0) {
            free(text);
            return rc;
        }
    }
    cJSON *args = cJSON_CreateObject();
    cJSON_AddStringToObject(args, "to", pos[0]);
    cJSON_AddStringToObject(args, "text", text);
    cJSON_AddBoolToObject(args, "anonymous", anonymous);
    free(text);
    long long deadline = mono_s() + (long long)seconds;
    rc = fe_cli_call(cli, &res, "send", args);
    if (rc != 0)
        return rc;

    char id[64];
    snprintf(id, sizeof id, "%s", fe_json_str(res, "message_id"));
    if (cli->json) {
        fe_cli_print_json(res);
    } else {
        printf("queued for ");
        fe_fmt_text(stdout, fe_fmt_label(fe_json_str(res, "to_name"), ""), NULL);
        printf(" (%.8s): message %s%s\n", fe_json_str(res, "to"), id,
               anonymous ? " (anonymous)" : "");
        fflush(stdout);
    }
    cJSON_Delete(res);
    if (!wait)
        return 0;

    if (!cli->json) {
        printf("waiting up to %lu s for the delivery receipt...\n", seconds);
        fflush(stdout);
    }
    rc = wait_delivered(cli, id, deadline);
    if (rc == FE_EXIT_CONN)
        return rc;
    /* Ask once more either way: it gives the daemon's own delay figure, and
     * catches a receipt whose event we missed (queue overflow). */
    int src = query_status(cli, id, &res);
    if (src != 0)
        return src;
    int delivered = strcmp(fe_json_str(res, "state"), "delivered") == 0;
    if (delivered) {
        if (cli->json)
            fe_cli_print_json(res);
        else
            printf("delivered after %.0f s\n", fe_json_num(res, "delivered_after_s", 0));
        rc = 0;
    } else {
        fprintf(stderr,
                "ferry: no delivery receipt within %lu s; the message stays queued and the mesh "
                "keeps carrying it (check later: ferry status %s)\n",
                seconds, id);
        rc = FE_EXIT_TIMEOUT;
    }
    cJSON_Delete(res);
    return rc;
}

/* --- inbox --- */

#define SEEN_MAX 1024 /* message ids remembered by --follow to print each once */

struct seen {
    char ids[SEEN_MAX][20];
    size_t next;
};

static int seen_has(const struct seen *s, const char *id)
{
    for (size_t i = 0; i < SEEN_MAX; i++)
        if (s->ids[i][0] && strcmp(s->ids[i], id) == 0)
            return 1;
    return 0;
}

static void seen_add(struct seen *s, const char *id)
{
    snprintf(s->ids[s->next], sizeof s->ids[0], "%s", id);
    s->next = (s->next + 1) % SEEN_MAX;
}

static void print_message(struct fe_cli *cli, const cJSON *m)
{
    if (cli->json) {
        fe_cli_print_json(m);
        return;
    }
    fe_fmt_message(stdout, m, 1);
    const char *text = fe_json_str(m, "text");
    if (fe_fmt_is_invite(text)) {
        char clean[256];
        fe_fmt_clean(clean, sizeof clean, text);
        if (strcmp(clean, text) == 0 && !strchr(text, '\''))
            printf("    (a group invite; to join: ferry group join '%s')\n", text);
        else
            printf("    (a group invite; to join: ferry group join INVITE)\n");
    }
    fflush(stdout);
}

/* Fetches inbox batches and prints the messages not in seen (NULL: all).
 * Returns 0 or an exit code; *count is how many were printed. */
static int fetch_inbox(struct fe_cli *cli, int all, unsigned long limit, struct seen *seen,
                       int *count)
{
    *count = 0;
    /* Unread messages are marked read as they come, so asking again gets the
     * next batch; the bound keeps a flood from looping forever. */
    for (int batch = 0; batch < 1000; batch++) {
        cJSON *args = cJSON_CreateObject(), *res;
        cJSON_AddBoolToObject(args, "unread_only", !all);
        cJSON_AddNumberToObject(args, "limit", (double)limit);
        cJSON_AddBoolToObject(args, "mark_read", 1);
        int rc = fe_cli_call(cli, &res, "inbox", args);
        if (rc != 0)
            return rc;
        cJSON *msgs = cJSON_GetObjectItemCaseSensitive(res, "messages");
        int got = cJSON_GetArraySize(msgs);
        if (cli->json && !seen) {
            fe_cli_print_json(res);
            *count += got;
        } else {
            const cJSON *m;
            cJSON_ArrayForEach(m, msgs)
            {
                const char *id = fe_json_str(m, "message_id");
                if (seen && seen_has(seen, id))
                    continue;
                if (seen)
                    seen_add(seen, id);
                print_message(cli, m);
                (*count)++;
            }
        }
        cJSON_Delete(res);
        if (all || got < (int)limit)
            break;
    }
    return 0;
}

static int cmd_inbox(struct fe_cli *cli, int argc, char **argv)
{
    const struct fe_command *me = fe_command_find("inbox");
    int all = 0, follow = 0;
    const char *limit_s = NULL;
    const struct fe_opt opts[] = {{"all", 0, &all, NULL},
                                  {"follow", 0, &follow, NULL},
                                  {"limit", 1, NULL, &limit_s},
                                  {NULL, 0, NULL, NULL}};
    char *pos[FE_ARGS_MAX];
    int n, count, rc;
    ARGS(me, opts, pos, n);
    if (n != 0)
        return usage_error(me, "unexpected argument '%s'", pos[0]);
    unsigned long limit = 100;
    if (limit_s && (!is_number(limit_s, FE_INBOX_LIMIT_MAX, &limit) || limit == 0))
        return usage_error(me, "--limit takes a number from 1 to 1000, not '%s'", limit_s);

    if (!follow) {
        rc = fetch_inbox(cli, all, limit, NULL, &count);
        if (rc == 0 && count == 0 && !cli->json)
            puts(all ? "the inbox is empty" : "no new messages");
        return rc;
    }

    static struct seen seen; /* large: keep it off the stack */
    cJSON *res;
    /* Subscribe first, then read the inbox: nothing falls between the two,
     * and the seen set drops what shows up in both. */
    if ((rc = fe_cli_call(cli, &res, "subscribe", NULL)) != 0)
        return rc;
    cJSON_Delete(res);
    catch_interrupts();
    if ((rc = fetch_inbox(cli, all, limit, &seen, &count)) != 0)
        return rc;
    if (!cli->json) {
        printf("-- %s; waiting for messages (Ctrl-C to stop) --\n",
               count ? "that was all" : "no new messages");
        fflush(stdout);
    }
    while (!interrupted) {
        cJSON *ev;
        rc = fe_client_next_event(&cli->client, &ev, -1);
        if (rc == FE_CLIENT_ERR_TIMEOUT)
            continue;
        if (rc != FE_CLIENT_OK) {
            fprintf(stderr, "ferry: %s\n", cli->client.err);
            return FE_EXIT_CONN;
        }
        if (strcmp(fe_json_str(ev, "event"), "message") == 0) {
            /* Fetch through the inbox so what we show is marked read; fall
             * back to the event if another client got there first. */
            rc = fetch_inbox(cli, 0, limit, &seen, &count);
            const cJSON *m = cJSON_GetObjectItemCaseSensitive(ev, "message");
            const char *id = fe_json_str(m, "message_id");
            if (rc == 0 && *id && !seen_has(&seen, id)) {
                seen_add(&seen, id);
                print_message(cli, m);
            }
        }
        cJSON_Delete(ev);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* --- users, online, offline --- */

static int users_cmd(struct fe_cli *cli, const char *name, const char *filter, int argc,
                     char **argv)
{
    const struct fe_command *me = fe_command_find(name);
    char *pos[FE_ARGS_MAX];
    int n;
    ARGS(me, NULL, pos, n);
    if (n != 0)
        return usage_error(me, "unexpected argument '%s'", pos[0]);
    cJSON *args = cJSON_CreateObject(), *res;
    cJSON_AddStringToObject(args, "filter", filter);
    int rc = fe_cli_call(cli, &res, "users", args);
    if (rc != 0)
        return rc;
    const cJSON *users = cJSON_GetObjectItemCaseSensitive(res, "users");
    if (cli->json)
        fe_cli_print_json(res);
    else if (cJSON_GetArraySize(users) > 0)
        fe_fmt_users(stdout, users);
    else if (strcmp(filter, "online") == 0)
        puts("no one is online");
    else if (strcmp(filter, "offline") == 0)
        puts("no one is offline");
    else
        puts("no users known yet (they appear when their announces are heard)");
    cJSON_Delete(res);
    return 0;
}

static int cmd_users(struct fe_cli *cli, int argc, char **argv)
{
    return users_cmd(cli, "users", "all", argc, argv);
}

static int cmd_online(struct fe_cli *cli, int argc, char **argv)
{
    return users_cmd(cli, "online", "online", argc, argv);
}

static int cmd_offline(struct fe_cli *cli, int argc, char **argv)
{
    return users_cmd(cli, "offline", "offline", argc, argv);
}

/* --- peers, stats, announce --- */

static void print_links(const cJSON *r, void *ctx)
{
    (void)ctx;
    const cJSON *links = cJSON_GetObjectItemCaseSensitive(r, "links");
    if (cJSON_GetArraySize(links) > 0)
        fe_fmt_links(stdout, links);
    else
        puts("no links");
}

static int cmd_peers(struct fe_cli *cli, int argc, char **argv)
{
    const struct fe_command *me = fe_command_find("peers");
    char *pos[FE_ARGS_MAX];
    int n;
    ARGS(me, NULL, pos, n);
    if (n != 0)
        return usage_error(me, "unexpected argument '%s'", pos[0]);
    return simple(cli, "peers", NULL, print_links, NULL);
}

static void print_stats(const cJSON *r, void *ctx)
{
    (void)ctx;
    printf("uptime: %.0f s\n", fe_json_num(r, "uptime_s", 0));
    const cJSON *v;
    cJSON_ArrayForEach(v, r)
    {
        if (!v->string || strcmp(v->string, "links") == 0 || strcmp(v->string, "uptime_s") == 0)
            continue;
        cJSON *one = cJSON_CreateObject();
        cJSON_AddItemReferenceToObject(one, v->string, (cJSON *)v);
        fe_fmt_object(stdout, one, 0);
        cJSON_Delete(one);
    }
    const cJSON *links = cJSON_GetObjectItemCaseSensitive(r, "links");
    if (cJSON_GetArraySize(links) > 0) {
        puts("links:");
        fe_fmt_links(stdout, links);
    }
}

static int cmd_stats(struct fe_cli *cli, int argc, char **argv)
{
    const struct fe_command *me = fe_command_find("stats");
    char *pos[FE_ARGS_MAX];
    int n;
    ARGS(me, NULL, pos, n);
    if (n != 0)
        return usage_error(me, "unexpected argument '%s'", pos[0]);
    return simple(cli, "stats", NULL, print_stats, NULL);
}

static void print_announced(const cJSON *r, void *ctx)
{
    (void)r, (void)ctx;
    puts("announced");
}

static int cmd_announce(struct fe_cli *cli, int argc, char **argv)
{
    const struct fe_command *me = fe_command_find("announce");
    char *pos[FE_ARGS_MAX];
    int n;
    ARGS(me, NULL, pos, n);
    if (n != 0)
        return usage_error(me, "unexpected argument '%s'", pos[0]);
    return simple(cli, "announce", NULL, print_announced, NULL);
}

/* --- status, verify --- */

/* Finds the directory entry for a name or address prefix (NULL: none). */
const cJSON *fe_cli_find_user(const cJSON *users, const char *who)
{
    const cJSON *u;
    size_t wl = strlen(who);
    cJSON_ArrayForEach(u, users)
    {
        if (strcmp(fe_json_str(u, "name"), who) == 0)
            return u;
    }
    cJSON_ArrayForEach(u, users)
    {
        if (wl >= 4 && strncmp(fe_json_str(u, "address"), who, wl) == 0)
            return u;
    }
    return NULL;
}

static int cmd_status(struct fe_cli *cli, int argc, char **argv)
{
    const struct fe_command *me = fe_command_find("status");
    char *pos[FE_ARGS_MAX];
    int n;
    ARGS(me, NULL, pos, n);
    if (n != 1)
        return usage_error(me, "%s", "give one message id (16 hex digits, as send printed it)");
    cJSON *res, *users = NULL;
    int rc = query_status(cli, pos[0], &res);
    if (rc != 0)
        return rc;
    if (cli->json) {
        fe_cli_print_json(res);
        cJSON_Delete(res);
        return 0;
    }
    /* The status names the recipient by address; show the name if we know it. */
    const char *to = fe_json_str(res, "to");
    const char *label = NULL;
    if (fe_cli_call(cli, &users, "users", NULL) == 0) {
        const cJSON *u = fe_cli_find_user(cJSON_GetObjectItemCaseSensitive(users, "users"), to);
        if (u && *fe_json_str(u, "name"))
            label = fe_json_str(u, "name");
    }
    char ago[32];
    fe_fmt_ago(ago, sizeof ago, fe_json_num(res, "age_s", -1));
    printf("%s to ", fe_json_str(res, "message_id"));
    if (label)
        fe_fmt_text(stdout, label, NULL);
    else
        printf("%.8s", *to ? to : "?");
    if (strcmp(fe_json_str(res, "state"), "delivered") == 0)
        printf(": delivered after %.0f s (sent %s)\n", fe_json_num(res, "delivered_after_s", 0),
               ago);
    else if (strcmp(fe_json_str(res, "state"), "expired") == 0)
        printf(": expired (sent %s): its lifetime ran out with no delivery receipt; the mesh "
               "no longer carries it\n",
               ago);
    else
        printf(": %s (sent %s), no delivery receipt yet\n", fe_json_str(res, "state"), ago);
    cJSON_Delete(users);
    cJSON_Delete(res);
    return 0;
}

static int cmd_verify(struct fe_cli *cli, int argc, char **argv)
{
    const struct fe_command *me = fe_command_find("verify");
    char *pos[FE_ARGS_MAX];
    int n;
    ARGS(me, NULL, pos, n);
    if (n != 1)
        return usage_error(me, "%s", "give one user (name or address prefix)");
    cJSON *args = cJSON_CreateObject(), *res, *users = NULL;
    cJSON_AddStringToObject(args, "user", pos[0]);
    int rc = fe_cli_call(cli, &res, "verify", args);
    if (rc != 0)
        return rc;
    if (cli->json) {
        fe_cli_print_json(res);
    } else {
        const cJSON *u = NULL;
        if (fe_cli_call(cli, &users, "users", NULL) == 0)
            u = fe_cli_find_user(cJSON_GetObjectItemCaseSensitive(users, "users"), pos[0]);
        printf("marked the key of ");
        fe_fmt_text(stdout,
                    u ? fe_fmt_label(fe_json_str(u, "name"), fe_json_str(u, "address")) : pos[0],
                    NULL);
        printf(" as verified");
        if (u)
            printf(" (fingerprint %s)", fe_json_str(u, "fingerprint"));
        putchar('\n');
    }
    cJSON_Delete(users);
    cJSON_Delete(res);
    return 0;
}

/* --- group --- */

static void print_group_created(const cJSON *r, void *ctx)
{
    (void)ctx;
    printf("created group #");
    fe_fmt_text(stdout, fe_json_str(r, "name"), NULL);
    printf(" (%s)\ninvite: ", fe_json_str(r, "group_id"));
    fe_fmt_text(stdout, fe_json_str(r, "invite"), NULL);
    printf("\nwhoever holds the invite can read and write the group: share it only privately,\n"
           "for example: ferry group invite ");
    fe_fmt_text(stdout, fe_json_str(r, "name"), NULL);
    printf(" USER\n");
}

static void print_group_joined(const cJSON *r, void *ctx)
{
    (void)ctx;
    printf("joined group #");
    fe_fmt_text(stdout, fe_json_str(r, "name"), NULL);
    printf(" (%s)\n", fe_json_str(r, "group_id"));
}

static void print_sent_id(const cJSON *r, void *ctx)
{
    printf("%s (message %s)\n", (const char *)ctx, fe_json_str(r, "message_id"));
}

static void print_groups(const cJSON *r, void *ctx)
{
    (void)ctx;
    const cJSON *groups = cJSON_GetObjectItemCaseSensitive(r, "groups");
    if (cJSON_GetArraySize(groups) > 0)
        fe_fmt_groups(stdout, groups);
    else
        puts("no groups (create one with: ferry group create NAME)");
}

static void print_done(const cJSON *r, void *ctx)
{
    (void)r;
    puts((const char *)ctx);
}

static int cmd_group(struct fe_cli *cli, int argc, char **argv)
{
    const struct fe_command *me = fe_command_find("group");
    char *pos[FE_ARGS_MAX];
    int n;
    ARGS(me, NULL, pos, n);
    if (n == 0)
        return usage_error(me, "%s", "which group command?");
    const char *sub = pos[0];
    char line[512];
    cJSON *args = cJSON_CreateObject();
    if (strcmp(sub, "create") == 0 && n == 2) {
        cJSON_AddStringToObject(args, "name", group_arg(pos[1]));
        return simple(cli, "group_create", args, print_group_created, NULL);
    }
    if (strcmp(sub, "invite") == 0 && n == 3) {
        cJSON_AddStringToObject(args, "group", group_arg(pos[1]));
        cJSON_AddStringToObject(args, "user", pos[2]);
        snprintf(line, sizeof line, "sent the invite to %s as a private message", pos[2]);
        return simple(cli, "group_invite", args, print_sent_id, line);
    }
    if (strcmp(sub, "join") == 0 && n == 2) {
        cJSON_AddStringToObject(args, "invite", pos[1]);
        return simple(cli, "group_join", args, print_group_joined, NULL);
    }
    if (strcmp(sub, "leave") == 0 && n == 2) {
        cJSON_AddStringToObject(args, "group", group_arg(pos[1]));
        snprintf(line, sizeof line, "left group #%s", group_arg(pos[1]));
        return simple(cli, "group_leave", args, print_done, line);
    }
    if (strcmp(sub, "send") == 0 && n >= 3) {
        char *text = fe_cli_join(pos + 2, n - 2);
        if (!text) {
            cJSON_Delete(args);
            fputs("ferry: out of memory\n", stderr);
            return FE_EXIT_DAEMON;
        }
        cJSON_AddStringToObject(args, "group", group_arg(pos[1]));
        cJSON_AddStringToObject(args, "text", text);
        free(text);
        snprintf(line, sizeof line, "sent to #%s", group_arg(pos[1]));
        return simple(cli, "group_send", args, print_sent_id, line);
    }
    if (strcmp(sub, "list") == 0 && n == 1) {
        cJSON_Delete(args);
        return simple(cli, "groups", NULL, print_groups, NULL);
    }
    cJSON_Delete(args);
    if (strstr(" create invite join leave send list ", sub) && strlen(sub) > 2)
        return usage_error(me, "wrong number of arguments for 'group %s'", sub);
    return usage_error(me, "unknown group command '%s'", sub);
}

/* --- chat, help --- */

static int cmd_chat(struct fe_cli *cli, int argc, char **argv)
{
    const struct fe_command *me = fe_command_find("chat");
    char *pos[FE_ARGS_MAX];
    int n;
    ARGS(me, NULL, pos, n);
    if (n > 1)
        return usage_error(me, "%s", "chat takes one user or #group at most");
    return fe_chat_run(cli, n ? pos[0] : NULL);
}

static int cmd_help(struct fe_cli *cli, int argc, char **argv)
{
    (void)cli;
    if (argc >= 1) {
        const struct fe_command *c = fe_command_find(argv[0]);
        if (!c) {
            fprintf(stderr, "ferry: no command '%s' (try: ferry help)\n", argv[0]);
            return FE_EXIT_USAGE;
        }
        fe_command_usage(stdout, c);
        fputs(c->help, stdout);
        return 0;
    }
    puts("usage: ferry [--socket PATH] [--json] COMMAND ...\n\n"
         "Talks to the local ferryd, the store-and-forward mesh messenger daemon.\n\n"
         "commands:");
    for (const struct fe_command *c = fe_commands; c->name; c++)
        printf("  %s\n", c->usage);
    puts("\noptions:\n"
         "  --socket PATH  the daemon's control socket (default: $FERRY_SOCKET, else\n"
         "                 $XDG_DATA_HOME/ferry/ferryd.sock, else\n"
         "                 ~/.local/share/ferry/ferryd.sock)\n"
         "  --json         print the daemon's result as one JSON line\n"
         "  --help         after a command: what it does\n\n"
         "exit codes: 0 ok, 1 the daemon refused (reason on stderr), 2 usage error,\n"
         "3 ferryd not running or unreachable, 4 send --wait timed out");
    return 0;
}

const struct fe_command fe_commands[] = {
    {"id", cmd_id, "id", "Shows this node's name, address, key fingerprint and public key.\n"},
    {"send", cmd_send, "send USER TEXT... [--anonymous] [--wait [SECONDS]]",
     "Sends a private message to USER (a name or an address prefix of 4+ hex digits).\n"
     "The message is stored before this returns and travels whenever a path exists.\n"
     "  --anonymous      hide the sender from the recipient (no reply is possible)\n"
     "  --wait [SECONDS] wait for the delivery receipt (default 60 s); exits 4 if none\n"
     "                   came in time (the message stays queued)\n"
     "Use -- before a text that starts with dashes. A number right after --wait is\n"
     "taken as the seconds.\n"},
    {"inbox", cmd_inbox, "inbox [--all] [--follow] [--limit N]",
     "Shows unread messages, oldest first, and marks them read.\n"
     "  --all        show read messages too: the newest --limit (default 100, at most\n"
     "               1000), oldest first\n"
     "  --follow     then keep showing new messages until Ctrl-C\n"
     "With --json: the result object; with --follow also each new message object.\n"},
    {"users", cmd_users, "users",
     "Lists every known user: name, address, online, last seen,\n"
     "fingerprint, and flags (verified, name-conflict).\n"},
    {"online", cmd_online, "online", "Lists the users that are online now.\n"},
    {"offline", cmd_offline, "offline", "Lists the known users that are offline.\n"},
    {"peers", cmd_peers, "peers", "Lists this node's links (transports) and their counters.\n"},
    {"status", cmd_status, "status ID",
     "Shows whether message ID (from send) is still queued, was delivered, or\n"
     "expired undelivered.\n"},
    {"verify", cmd_verify, "verify USER",
     "Marks USER's key as checked, after comparing the fingerprint that users shows\n"
     "with the one USER's own `ferry id` shows (in person or over a trusted channel).\n"},
    {"group", cmd_group,
     "group create NAME | invite GROUP USER | join INVITE | leave GROUP | send GROUP TEXT... | "
     "list",
     "Group chats share one key; whoever holds the invite can read and write.\n"
     "  create NAME          make a group and print its invite\n"
     "  invite GROUP USER    send the invite to USER as a private message\n"
     "  join INVITE          join with an invite (ferry-invite:NAME:KEY)\n"
     "  leave GROUP          forget the group\n"
     "  send GROUP TEXT...   write to the group\n"
     "  list                 the groups this node is in\n"
     "GROUP is the group's name (with or without #) or its 32-hex-digit id.\n"},
    {"stats", cmd_stats, "stats",
     "Shows the engine's and the store's counters, links and uptime.\n"},
    {"announce", cmd_announce, "announce",
     "Announces this node now (at most once a minute) instead of waiting.\n"},
    {"chat", cmd_chat, "chat [USER|#GROUP]",
     "Interactive chat: type a line to send it to the current conversation; messages\n"
     "arrive while you type. Commands: /help, /chat USER|#GROUP, /users, /online,\n"
     "/offline, /add INVITE, /link, /quit. Without a terminal it reads lines from\n"
     "stdin (so it can be scripted) and ends at end of input.\n"},
    {"help", cmd_help, "help [COMMAND]", "Shows the commands, or what one does.\n"},
    {NULL, NULL, NULL, NULL},
};
