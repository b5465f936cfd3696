/* The ferry CLI's commands: each maps one or a few control requests
 * (docs/API.md) to readable output, or to the daemon's result with --json. */
#ifndef FE_COMMANDS_H
#define FE_COMMANDS_H

#include "client.h"

#include <stdio.h>

/* Exit codes, as documented in docs/API.md. */
enum fe_exit {
    FE_EXIT_OK = 0,
    FE_EXIT_DAEMON = 1,  /* the daemon answered with an error */
    FE_EXIT_USAGE = 2,   /* bad command line */
    FE_EXIT_CONN = 3,    /* the daemon is not running or cannot be reached */
    FE_EXIT_TIMEOUT = 4, /* send --wait saw no receipt in time */
};

#define FE_WAIT_DEFAULT_S 60
#define FE_WAIT_MAX_S (7 * 24 * 3600)
#define FE_ARGS_MAX 256         /* words on one command line (a long text is many words) */
#define FE_INBOX_LIMIT_MAX 1000 /* messages per inbox request the daemon allows */

struct fe_cli {
    char socket_path[256];
    int json;
    int connected;
    struct fe_client client;
};

/* Command line options of one command. kind: 0 flag (sets *flag = 1),
 * 1 required value (*value), 2 optional whole number that follows (*flag = 1,
 * *value set only if the next word is a number). */
struct fe_opt {
    const char *name;
    int kind;
    int *flag;
    const char **value;
};

struct fe_command {
    const char *name;
    int (*run)(struct fe_cli *cli, int argc, char **argv);
    const char *usage; /* the synopsis after "ferry " */
    const char *help;  /* what it does, a few lines */
};

/* The command table, ending with a NULL name. */
extern const struct fe_command fe_commands[];

const struct fe_command *fe_command_find(const char *name);
void fe_command_usage(FILE *out, const struct fe_command *cmd);

/* Splits argv (after the command word) into options and positional words.
 * --json, --socket PATH and --help are accepted anywhere before "--".
 * Returns 0, 1 if help was printed (exit 0), or FE_EXIT_USAGE after printing
 * the problem and the synopsis to stderr. */
int fe_cli_args(struct fe_cli *cli, const struct fe_command *cmd, int argc, char **argv,
                const struct fe_opt *opts, char **pos, int pos_max, int *npos);

/* Connects once per process; prints the reason and returns FE_EXIT_CONN when
 * the daemon cannot be reached. */
int fe_cli_connect(struct fe_cli *cli);

/* Sends one request. On failure prints "ferry: <reason>" and returns the exit
 * code (FE_EXIT_DAEMON or FE_EXIT_CONN); on success 0 and *result. */
int fe_cli_call(struct fe_cli *cli, cJSON **result, const char *cmd, cJSON *args);

/* Prints a result object as one JSON line (for --json). */
void fe_cli_print_json(const cJSON *obj);

/* Joins words with single spaces into a new string (NULL on no memory). */
char *fe_cli_join(char **words, int n);

/* The entry of users (a users result's array) named by who: an exact name,
 * else an address prefix of 4+ hex digits. NULL if none. */
const cJSON *fe_cli_find_user(const cJSON *users, const char *who);

/* The interactive chat (chat.c); target is a user, "#group", or NULL. */
int fe_chat_run(struct fe_cli *cli, const char *target);

#endif
