/* `ferry chat`: an interactive chat on a plain terminal.
 *
 * The terminal is put in a raw-ish mode (no canonical input, no echo) and we
 * poll stdin and the daemon's socket together. We echo and edit the input
 * line ourselves, so when a message arrives we can erase the prompt line,
 * print the message, and draw the prompt with the half-typed text again.
 * No curses: the only escape sequences used are cursor-up, carriage return
 * and clear-to-end-of-screen, which every terminal emulator has.
 *
 * When stdin is not a terminal, input is taken line by line with no prompt,
 * so the chat can be scripted; it ends at end of input. */
#include "commands.h"

#include "format.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#define CHAT_INPUT_MAX 1024   /* bytes a typed line may hold: the largest message text */
#define CHAT_PENDING_MAX 64   /* sent messages whose receipt we wait to announce */
#define CHAT_SEEN_MAX 256     /* message ids already shown */
#define CHAT_EXCERPT_COLS 40  /* how much of a sent text the receipt notice repeats */
#define CHAT_TARGET_BYTES 160 /* "#" + a name or address, cleaned */

struct pending {
    char id[24];
    char to[CHAT_TARGET_BYTES];
    char excerpt[CHAT_EXCERPT_COLS * 4 + 8];
};

struct chat {
    struct fe_cli *cli;
    int tty;
    int raw; /* the terminal is in our mode and must be restored */
    struct termios saved;
    int prompt_shown;
    char target[CHAT_TARGET_BYTES]; /* "bob", "#camp", or "" */
    char line[CHAT_INPUT_MAX + 8];  /* room to finish the last UTF-8 character */
    size_t len;
    int dropping; /* the line is full: drop bytes until the next character starts */
    int esc;      /* 0 none, 1 after ESC, 2 inside a CSI/SS3 sequence being skipped */
    struct pending pending[CHAT_PENDING_MAX];
    size_t pending_next;
    char seen[CHAT_SEEN_MAX][24];
    size_t seen_next;
    char last_invite[256];
    int quit;
    int exit_code;
};

static volatile sig_atomic_t stop_signal;

static void on_stop(int sig)
{
    stop_signal = sig;
}

static struct termios *restore_on_exit;

static void restore_terminal(void)
{
    if (restore_on_exit)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, restore_on_exit);
}

static int enter_raw(struct chat *ch)
{
    struct termios t;
    if (tcgetattr(STDIN_FILENO, &ch->saved) != 0)
        return -1;
    t = ch->saved;
    /* Keep output processing (newline becomes CR LF); take keys one by one,
     * unechoed, with Ctrl-C and Ctrl-Z arriving as bytes we handle. */
    t.c_lflag &= ~(tcflag_t)(ICANON | ECHO | ISIG | IEXTEN);
    t.c_iflag &= ~(tcflag_t)(IXON | ICRNL);
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) != 0)
        return -1;
    ch->raw = 1;
    restore_on_exit = &ch->saved;
    atexit(restore_terminal);
    return 0;
}

static void leave_raw(struct chat *ch)
{
    if (ch->raw)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &ch->saved);
    ch->raw = 0;
    restore_on_exit = NULL;
}

static size_t term_cols(void)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return 80;
}

/* --- the prompt line --- */

static size_t prompt_width(const struct chat *ch)
{
    return fe_fmt_width(ch->target) + 2 + fe_fmt_width(ch->line);
}

static void draw_prompt(struct chat *ch)
{
    if (!ch->tty || ch->prompt_shown)
        return;
    ch->line[ch->len] = '\0';
    printf("%s> %s", ch->target, ch->line);
    fflush(stdout);
    ch->prompt_shown = 1;
}

/* Erases the prompt and the typed text, which may have wrapped onto several
 * rows; the cursor ends at the start of the prompt's first row. */
static void erase_prompt(struct chat *ch)
{
    if (!ch->tty || !ch->prompt_shown)
        return;
    ch->line[ch->len] = '\0';
    size_t w = prompt_width(ch), cols = term_cols();
    /* A row filled exactly leaves the cursor on it (pending wrap), hence w - 1. */
    size_t rows = w ? (w - 1) / cols : 0;
    if (rows > 0)
        printf("\033[%zuA", rows);
    fputs("\r\033[J", stdout);
    ch->prompt_shown = 0;
}

/* Prints one notice above the prompt. Untrusted parts must be cleaned by
 * the caller (or printed with fe_fmt_text between begin/end). */
static void begin_out(struct chat *ch)
{
    erase_prompt(ch);
}

static void end_out(struct chat *ch)
{
    fflush(stdout);
    draw_prompt(ch);
}

static void say(struct chat *ch, const char *fmt, ...)
{
    va_list ap;
    begin_out(ch);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    end_out(ch);
}

/* --- bookkeeping --- */

static int seen_check_add(struct chat *ch, const char *id)
{
    if (!*id)
        return 0;
    for (size_t i = 0; i < CHAT_SEEN_MAX; i++)
        if (strcmp(ch->seen[i], id) == 0)
            return 1;
    snprintf(ch->seen[ch->seen_next], sizeof ch->seen[0], "%s", id);
    ch->seen_next = (ch->seen_next + 1) % CHAT_SEEN_MAX;
    return 0;
}

static void pending_add(struct chat *ch, const char *id, const char *to, const char *text)
{
    struct pending *p = &ch->pending[ch->pending_next];
    ch->pending_next = (ch->pending_next + 1) % CHAT_PENDING_MAX;
    snprintf(p->id, sizeof p->id, "%s", id);
    snprintf(p->to, sizeof p->to, "%s", to);
    size_t cols = fe_fmt_clean(p->excerpt, sizeof p->excerpt, text);
    if (cols > CHAT_EXCERPT_COLS) {
        size_t keep = 0;
        for (size_t seen = 0; p->excerpt[keep] && seen < CHAT_EXCERPT_COLS - 1; seen++) {
            keep++;
            while ((p->excerpt[keep] & 0xc0) == 0x80)
                keep++;
        }
        memcpy(p->excerpt + keep, "\xe2\x80\xa6", 4);
    }
}

/* --- showing what arrives --- */

static void show_message(struct chat *ch, const cJSON *m, int with_age)
{
    if (seen_check_add(ch, fe_json_str(m, "message_id")))
        return;
    begin_out(ch);
    fe_fmt_message(stdout, m, with_age);
    const char *text = fe_json_str(m, "text");
    if (fe_fmt_is_invite(text)) {
        snprintf(ch->last_invite, sizeof ch->last_invite, "%s", text);
        puts("* that is a group invite: type /add to join it");
    }
    end_out(ch);
}

/* Sends one request; a refusal is shown as a "!" line, and a lost daemon
 * ends the chat. Returns 0 or the client's error. */
static int call(struct chat *ch, cJSON **res, const char *cmd, cJSON *args)
{
    int rc = fe_client_call(&ch->cli->client, res, cmd, args);
    if (rc == FE_CLIENT_OK)
        return 0;
    char msg[FE_CLIENT_ERR_CHARS];
    fe_fmt_clean(msg, sizeof msg, ch->cli->client.err);
    say(ch, "! %s", msg);
    if (rc != FE_CLIENT_ERR_REPLY)
        ch->quit = 1, ch->exit_code = FE_EXIT_CONN;
    return rc;
}

/* Reads unread messages through the inbox, which marks them read so the
 * next `ferry inbox` does not show them again. Returns 0 or an exit code. */
static int fetch_unread(struct chat *ch, int with_age, int *count)
{
    *count = 0;
    for (int batch = 0; batch < 100; batch++) { /* bounded: 100 batches of 100 */
        cJSON *args = cJSON_CreateObject(), *res;
        cJSON_AddBoolToObject(args, "unread_only", 1);
        cJSON_AddNumberToObject(args, "limit", 100);
        cJSON_AddBoolToObject(args, "mark_read", 1);
        int rc = call(ch, &res, "inbox", args);
        if (rc != 0)
            return rc;
        const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(res, "messages"), *m;
        int got = cJSON_GetArraySize(msgs);
        cJSON_ArrayForEach(m, msgs)
        {
            show_message(ch, m, with_age);
            (*count)++;
        }
        cJSON_Delete(res);
        if (got < 100)
            break;
    }
    return 0;
}

static void show_presence(struct chat *ch, const cJSON *ev)
{
    const char *state = fe_json_str(ev, "state");
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(ev, "user");
    const char *name = fe_fmt_label(fe_json_str(u, "name"), fe_json_str(u, "address"));
    char clean[128];
    fe_fmt_clean(clean, sizeof clean, name);
    if (strcmp(state, "online") == 0)
        say(ch, "* %s is online", clean);
    else if (strcmp(state, "offline") == 0)
        say(ch, "* %s went offline", clean);
    else if (strcmp(state, "new") == 0)
        say(ch, "* new user %s (%.8s)", clean, fe_json_str(u, "address"));
    else if (strcmp(state, "name_conflict") == 0)
        say(ch,
            "* warning: another key (%.8s) also calls itself %s; the name stays with the key "
            "heard first",
            fe_json_str(u, "address"), clean);
}

static void handle_event(struct chat *ch, cJSON *ev)
{
    const char *kind = fe_json_str(ev, "event");
    if (strcmp(kind, "message") == 0) {
        int count;
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(ev, "message");
        (void)fetch_unread(ch, 0, &count); /* a failure has been shown */
        show_message(ch, m, 0);            /* if another client read it first */
    } else if (strcmp(kind, "delivered") == 0) {
        const char *id = fe_json_str(ev, "message_id");
        for (size_t i = 0; i < CHAT_PENDING_MAX; i++) {
            struct pending *p = &ch->pending[i];
            if (p->id[0] && strcmp(p->id, id) == 0) {
                say(ch, "\xe2\x9c\x93 delivered to %s: %s", p->to, p->excerpt);
                p->id[0] = '\0';
                return;
            }
        }
        say(ch, "\xe2\x9c\x93 delivered: message %.16s", id);
    } else if (strcmp(kind, "presence") == 0) {
        show_presence(ch, ev);
    } else if (strcmp(kind, "link") == 0) {
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(ev, "link");
        char name[64];
        fe_fmt_clean(name, sizeof name, fe_json_str(l, "name"));
        say(ch, "* link %s is %s", name,
            strcmp(fe_json_str(ev, "state"), "up") == 0 ? "up" : "down");
    }
}

/* --- commands --- */

static void show_table(struct chat *ch, const char *filter)
{
    cJSON *args = cJSON_CreateObject(), *res;
    cJSON_AddStringToObject(args, "filter", filter);
    if (call(ch, &res, "users", args) != 0)
        return;
    const cJSON *users = cJSON_GetObjectItemCaseSensitive(res, "users");
    begin_out(ch);
    if (cJSON_GetArraySize(users) > 0)
        fe_fmt_users(stdout, users);
    else
        printf("* %s\n", strcmp(filter, "online") == 0    ? "no one is online"
                         : strcmp(filter, "offline") == 0 ? "no one is offline"
                                                          : "no users known yet");
    end_out(ch);
    cJSON_Delete(res);
}

static void show_links(struct chat *ch)
{
    cJSON *res, *users = NULL;
    if (call(ch, &res, "peers", NULL) != 0)
        return;
    cJSON *args = cJSON_CreateObject();
    cJSON_AddStringToObject(args, "filter", "online");
    if (call(ch, &users, "users", args) != 0)
        users = NULL;
    begin_out(ch);
    const cJSON *links = cJSON_GetObjectItemCaseSensitive(res, "links");
    if (cJSON_GetArraySize(links) > 0)
        fe_fmt_links(stdout, links);
    else
        puts("* no links");
    const cJSON *u, *list = cJSON_GetObjectItemCaseSensitive(users, "users");
    printf("* online:");
    if (cJSON_GetArraySize(list) == 0)
        printf(" no one");
    cJSON_ArrayForEach(u, list)
    {
        putchar(' ');
        fe_fmt_text(stdout, fe_fmt_label(fe_json_str(u, "name"), fe_json_str(u, "address")), NULL);
    }
    putchar('\n');
    end_out(ch);
    cJSON_Delete(users);
    cJSON_Delete(res);
}

static void set_target(struct chat *ch, const char *who)
{
    cJSON *res;
    char clean[CHAT_TARGET_BYTES];
    if (who[0] == '#') {
        const cJSON *g, *found = NULL;
        if (call(ch, &res, "groups", NULL) != 0)
            return;
        cJSON_ArrayForEach(g, cJSON_GetObjectItemCaseSensitive(res, "groups"))
        {
            if (strcmp(fe_json_str(g, "name"), who + 1) == 0 ||
                strcmp(fe_json_str(g, "group_id"), who + 1) == 0)
                found = g;
        }
        if (!found) {
            fe_fmt_clean(clean, sizeof clean, who);
            say(ch, "! you are not in a group %s (/add INVITE joins one)", clean);
        } else {
            char name[CHAT_TARGET_BYTES - 1];
            fe_fmt_clean(name, sizeof name, fe_json_str(found, "name"));
            begin_out(ch);
            snprintf(ch->target, sizeof ch->target, "#%s", name);
            printf("* now writing to %s\n", ch->target);
            end_out(ch);
        }
        cJSON_Delete(res);
        return;
    }
    if (call(ch, &res, "users", NULL) != 0)
        return;
    const cJSON *u = fe_cli_find_user(cJSON_GetObjectItemCaseSensitive(res, "users"), who);
    begin_out(ch);
    if (u) {
        /* An address prefix is kept as typed: the name may be taken by another key. */
        fe_fmt_clean(ch->target, sizeof ch->target,
                     strcmp(fe_json_str(u, "name"), who) == 0 ? who : fe_json_str(u, "address"));
        char ago[32];
        fe_fmt_ago(ago, sizeof ago, fe_json_num(u, "last_seen_s_ago", -1));
        if (fe_json_bool(u, "online"))
            printf("* now writing to %s (online)\n", ch->target);
        else
            printf("* now writing to %s (offline, last seen %s): messages wait in the mesh "
                   "until a path opens\n",
                   ch->target, ago);
    } else {
        fe_fmt_clean(ch->target, sizeof ch->target, who);
        printf("* now writing to %s, but no announce from %s has been heard yet, so sending "
               "will fail until one is\n",
               ch->target, ch->target);
    }
    end_out(ch);
    cJSON_Delete(res);
}

static void send_text(struct chat *ch, const char *text)
{
    cJSON *args = cJSON_CreateObject(), *res;
    if (!ch->target[0]) {
        cJSON_Delete(args);
        say(ch, "! choose who to write to first: /chat USER or /chat #GROUP");
        return;
    }
    int group = ch->target[0] == '#';
    if (group) {
        cJSON_AddStringToObject(args, "group", ch->target + 1);
        cJSON_AddStringToObject(args, "text", text);
    } else {
        cJSON_AddStringToObject(args, "to", ch->target);
        cJSON_AddStringToObject(args, "text", text);
    }
    if (call(ch, &res, group ? "group_send" : "send", args) != 0)
        return;
    if (!group)
        pending_add(ch, fe_json_str(res, "message_id"), ch->target, text);
    begin_out(ch);
    printf("me \xe2\x86\x92 %s: ", ch->target);
    fe_fmt_text(stdout, text, "    ");
    putchar('\n');
    end_out(ch);
    cJSON_Delete(res);
}

static void join_group(struct chat *ch, const char *invite)
{
    cJSON *args = cJSON_CreateObject(), *res;
    if (!*invite)
        invite = ch->last_invite;
    if (!*invite) {
        cJSON_Delete(args);
        say(ch, "! /add needs an invite (ferry-invite:NAME:KEY)");
        return;
    }
    cJSON_AddStringToObject(args, "invite", invite);
    if (call(ch, &res, "group_join", args) != 0)
        return;
    char name[128];
    fe_fmt_clean(name, sizeof name, fe_json_str(res, "name"));
    say(ch, "* joined #%s: /chat #%s to write there", name, name);
    cJSON_Delete(res);
}

static void show_help(struct chat *ch)
{
    say(ch, "* type a line to send it to the current conversation. Commands:\n"
            "  /chat USER|#GROUP  switch conversation       /users  everyone known\n"
            "  /online, /offline  who is (not) reachable    /link   links and who is online\n"
            "  /add [INVITE]      join a group (no INVITE: the last one received)\n"
            "  /quit              leave (also Ctrl-D on an empty line, or Ctrl-C)\n"
            "  //text             send a line that starts with a slash");
}

static void run_line(struct chat *ch, char *line)
{
    /* Trim the line's ends: a stray CR or trailing space is never meant. */
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\r' || line[n - 1] == '\t'))
        line[--n] = '\0';
    while (*line == ' ' || *line == '\t')
        line++;
    if (!*line)
        return;
    if (line[0] != '/' || line[1] == '/') {
        send_text(ch, line[0] == '/' ? line + 1 : line);
        return;
    }
    char *arg = strchr(line, ' ');
    if (arg) {
        *arg++ = '\0';
        while (*arg == ' ')
            arg++;
    } else {
        arg = line + n; /* "" */
    }
    const char *cmd = line + 1;
    if (strcmp(cmd, "quit") == 0 || strcmp(cmd, "exit") == 0 || strcmp(cmd, "q") == 0)
        ch->quit = 1;
    else if (strcmp(cmd, "help") == 0 || strcmp(cmd, "?") == 0)
        show_help(ch);
    else if (strcmp(cmd, "chat") == 0 && *arg)
        set_target(ch, arg);
    else if (strcmp(cmd, "chat") == 0)
        say(ch, "* writing to %s", ch->target[0] ? ch->target : "no one yet (/chat USER|#GROUP)");
    else if (strcmp(cmd, "users") == 0)
        show_table(ch, "all");
    else if (strcmp(cmd, "online") == 0)
        show_table(ch, "online");
    else if (strcmp(cmd, "offline") == 0)
        show_table(ch, "offline");
    else if (strcmp(cmd, "link") == 0 || strcmp(cmd, "links") == 0 || strcmp(cmd, "peers") == 0)
        show_links(ch);
    else if (strcmp(cmd, "add") == 0 || strcmp(cmd, "join") == 0)
        join_group(ch, arg);
    else {
        char clean[64];
        fe_fmt_clean(clean, sizeof clean, cmd);
        say(ch, "! unknown command /%s (try /help)", clean);
    }
}

/* --- input --- */

/* One key byte of the terminal. */
static void on_key(struct chat *ch, unsigned char c)
{
    if (ch->esc == 1) { /* ESC seen: a CSI "[" or SS3 "O" sequence follows, or nothing */
        ch->esc = (c == '[' || c == 'O') ? 2 : 0;
        return;
    }
    if (ch->esc == 2) { /* arrows and friends are not supported: skip to the final byte */
        if (c >= 0x40 && c <= 0x7e)
            ch->esc = 0;
        return;
    }
    switch (c) {
    case 0x1b:
        ch->esc = 1;
        return;
    case '\r':
    case '\n': {
        char copy[sizeof ch->line];
        ch->line[ch->len] = '\0';
        memcpy(copy, ch->line, ch->len + 1);
        erase_prompt(ch);
        ch->len = 0;
        ch->line[0] = '\0';
        ch->dropping = 0;
        draw_prompt(ch);
        run_line(ch, copy);
        return;
    }
    case 0x7f:
    case 0x08: /* backspace: drop the last whole character */
        if (ch->len == 0)
            return;
        erase_prompt(ch);
        while (ch->len > 0 && (ch->line[--ch->len] & 0xc0) == 0x80)
            ;
        ch->line[ch->len] = '\0';
        ch->dropping = 0;
        draw_prompt(ch);
        return;
    case 0x15: /* Ctrl-U: clear the line */
    case 0x17: /* Ctrl-W: delete the last word */
        erase_prompt(ch);
        if (c == 0x15) {
            ch->len = 0;
        } else {
            while (ch->len > 0 && ch->line[ch->len - 1] == ' ')
                ch->len--;
            while (ch->len > 0 && ch->line[ch->len - 1] != ' ')
                ch->len--;
        }
        ch->line[ch->len] = '\0';
        draw_prompt(ch);
        return;
    case 0x0c: /* Ctrl-L: clear the screen */
        fputs("\033[H\033[2J", stdout);
        ch->prompt_shown = 0;
        draw_prompt(ch);
        return;
    case 0x03: /* Ctrl-C */
        ch->quit = 1;
        return;
    case 0x04: /* Ctrl-D: leave on an empty line, as shells do */
        if (ch->len == 0)
            ch->quit = 1;
        return;
    default:
        break;
    }
    if (c < 0x20)
        return; /* other control keys mean nothing here */
    int continuation = (c & 0xc0) == 0x80;
    if (!continuation)
        ch->dropping = ch->len >= CHAT_INPUT_MAX;
    if (ch->dropping || ch->len >= sizeof ch->line - 1) {
        if (!continuation) {
            fputc('\a', stdout); /* full: the bell says so */
            fflush(stdout);
        }
        return;
    }
    ch->line[ch->len++] = (char)c;
    ch->line[ch->len] = '\0';
    fputc(c, stdout);
    fflush(stdout);
}

/* Line-by-line input when stdin is not a terminal. Returns 0, or -1 at EOF. */
static int read_lines(struct chat *ch, char *buf, size_t cap, size_t *len)
{
    ssize_t n = read(STDIN_FILENO, buf + *len, cap - *len);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return 0;
    if (n <= 0) {
        if (*len > 0 && !ch->quit) { /* a last line without newline */
            buf[*len] = '\0';
            run_line(ch, buf);
        }
        return -1;
    }
    *len += (size_t)n;
    char *start = buf, *nl;
    while (!ch->quit && (nl = memchr(start, '\n', *len - (size_t)(start - buf))) != NULL) {
        *nl = '\0';
        run_line(ch, start);
        start = nl + 1;
    }
    *len -= (size_t)(start - buf);
    memmove(buf, start, *len);
    if (*len == cap) { /* longer than any message may be: refuse it whole */
        say(ch, "! line too long (over %zu bytes), not sent", cap);
        *len = 0;
    }
    return 0;
}

static void greet(struct chat *ch)
{
    cJSON *res;
    if (call(ch, &res, "id", NULL) != 0)
        return;
    char name[128];
    fe_fmt_clean(name, sizeof name, fe_fmt_label(fe_json_str(res, "name"), ""));
    say(ch, "* ferry chat: you are %s (%.8s). /help lists the commands%s", name,
        fe_json_str(res, "address"), ch->tty ? ", /quit leaves" : "");
    cJSON_Delete(res);
}

int fe_chat_run(struct fe_cli *cli, const char *target)
{
    static struct chat chat; /* large: keep it off the stack */
    struct chat *ch = &chat;
    static char lines[CHAT_INPUT_MAX * 4];
    size_t lines_len = 0;
    cJSON *res;
    int count;

    memset(ch, 0, sizeof *ch);
    ch->cli = cli;
    ch->tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
    int rc = fe_cli_call(cli, &res, "subscribe", NULL);
    if (rc != 0)
        return rc;
    cJSON_Delete(res);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    if (ch->tty && enter_raw(ch) != 0)
        ch->tty = 0;

    greet(ch);
    (void)fetch_unread(ch, 1, &count);
    if (count > 0)
        say(ch, "* those were your %d unread message%s", count, count == 1 ? "" : "s");
    if (target && !ch->quit)
        set_target(ch, target);
    if (!ch->target[0] && !ch->quit)
        say(ch, "* choose who to write to: /chat USER or /chat #GROUP");
    draw_prompt(ch);

    while (!ch->quit && !stop_signal) {
        cJSON *ev;
        while (!ch->quit && fe_client_has_event(&cli->client) &&
               fe_client_next_event(&cli->client, &ev, 0) == FE_CLIENT_OK) {
            handle_event(ch, ev);
            cJSON_Delete(ev);
        }
        if (ch->quit)
            break;
        struct pollfd p[2] = {{.fd = STDIN_FILENO, .events = POLLIN},
                              {.fd = cli->client.fd, .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents) {
            if (fe_client_pump(&cli->client) != FE_CLIENT_OK) {
                while (fe_client_next_event(&cli->client, &ev, 0) == FE_CLIENT_OK) {
                    handle_event(ch, ev);
                    cJSON_Delete(ev);
                }
                say(ch, "! %s", cli->client.err);
                ch->exit_code = FE_EXIT_CONN;
                break;
            }
        }
        if (p[0].revents) {
            if (ch->tty) {
                unsigned char keys[256];
                ssize_t n = read(STDIN_FILENO, keys, sizeof keys);
                if (n <= 0 && !(n < 0 && errno == EINTR))
                    break;
                for (ssize_t i = 0; i < n && !ch->quit; i++)
                    on_key(ch, keys[i]);
            } else if (read_lines(ch, lines, sizeof lines, &lines_len) < 0) {
                break;
            }
        }
    }
    erase_prompt(ch);
    fflush(stdout);
    leave_raw(ch);
    return ch->exit_code;
}
