/* ferry: the command-line client of ferryd (docs/API.md). Parses the global
 * options and hands the rest to a command. */
#include "commands.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    static struct fe_cli cli; /* static: zeroed, and the client's buffers stay off the stack */
    int i = 1;

    /* A daemon that vanishes mid-write must give an error, not kill us. */
    signal(SIGPIPE, SIG_IGN);

    if (fe_client_default_path(cli.socket_path, sizeof cli.socket_path) != 0) {
        fputs("ferry: the default socket path is too long; give --socket PATH\n", stderr);
        return FE_EXIT_USAGE;
    }
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0) {
            cli.json = 1;
        } else if (strcmp(a, "--socket") == 0 || strncmp(a, "--socket=", 9) == 0) {
            const char *v = a[8] == '=' ? a + 9 : (i + 1 < argc ? argv[++i] : NULL);
            if (!v || !*v) {
                fputs("ferry: --socket needs a path\n", stderr);
                return FE_EXIT_USAGE;
            }
            if (strlen(v) >= sizeof cli.socket_path) {
                fputs("ferry: --socket path too long\n", stderr);
                return FE_EXIT_USAGE;
            }
            snprintf(cli.socket_path, sizeof cli.socket_path, "%s", v);
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            return fe_command_find("help")->run(&cli, 0, NULL);
        } else if (strcmp(a, "--version") == 0) {
            printf("ferry %s\n", FE_VERSION);
            return FE_EXIT_OK;
        } else {
            fprintf(stderr, "ferry: unknown option '%s' (try: ferry --help)\n", a);
            return FE_EXIT_USAGE;
        }
    }
    if (i >= argc) {
        fputs("ferry: which command? (try: ferry help)\n", stderr);
        return FE_EXIT_USAGE;
    }
    const struct fe_command *cmd = fe_command_find(argv[i]);
    if (!cmd) {
        fprintf(stderr, "ferry: no command '%s' (try: ferry help)\n", argv[i]);
        return FE_EXIT_USAGE;
    }
    int rc = cmd->run(&cli, argc - i - 1, argv + i + 1);
    if (cli.connected)
        fe_client_free(&cli.client);
    return rc;
}
