/* ferryd: options, configuration, daemonizing; the rest is in daemon.c. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "links.h"
#include "log.h"
#ifdef FE_HAVE_SERIAL
#include "serial.h"
#endif

enum { EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ferryd [OPTIONS]\n"
            "Store-and-forward mesh messenger daemon. Clients talk to it over a control\n"
            "socket (see the ferry command).\n\n"
            "  --config FILE      read this INI configuration (default: none, built-in defaults)\n"
            "  --data-dir DIR     identity, message store and log (created 0700 if missing)\n"
            "  --socket PATH      control socket (default: DIR/ferryd.sock)\n"
            "  --name NAME        name announced to other nodes (default: host name)\n"
            "  --log-level LEVEL  error, warn, info or debug\n"
            "  --foreground       stay attached and log to stderr (use under systemd)\n"
            "  --udp-port N       UDP port ([udp] port)\n"
            "  --peer IP:PORT     static UDP peer; repeatable; replaces the [udp] peers\n"
            "  --no-multicast     no multicast discovery: static peers only\n"
            "  --no-udp           no UDP transport at all ([udp] enabled = false)\n"
            "  --serial PATH[:PROFILE]\n"
            "                     a serial radio modem on PATH, PROFILE hdlc (default), kiss,\n"
            "                     transparent or at; repeatable; adds to the [serial NAME]\n"
            "                     sections of the file\n"
            "  --rfcomm           Bluetooth RFCOMM links, with the [rfcomm] settings or defaults\n"
            "  --list-ports       list the serial ports of this system and exit\n"
            "  --help, --version\n\n"
            "Configuration sections: [node], [udp], [serial NAME] (one per serial radio\n"
            "modem, several allowed) and [rfcomm] (Bluetooth, at most one); their keys are\n"
            "described in hw/README.md and hw/bluetooth.md, examples in hw/examples/.\n"
            "Serial support: %s; Bluetooth RFCOMM support: %s.\n\n"
            "Without --foreground ferryd detaches and logs to DIR/ferryd.log.\n"
            "Exit status: 0 stopped by SIGTERM/SIGINT, 1 could not start or run, 2 usage or\n"
            "configuration error.\n",
#ifdef FE_HAVE_SERIAL
            "yes",
#else
            "no (built without libserialport)",
#endif
#ifdef FE_HAVE_RFCOMM
            "yes"
#else
            "no (built without libbluetooth)"
#endif
    );
}

typedef struct options {
    const char *config, *data_dir, *socket, *name, *log_level, *udp_port;
    const char *peers[FE_CONFIG_PEERS_MAX];
    size_t peer_count;
    const char *serials[FE_CONFIG_DRIVERS_MAX];
    size_t serial_count;
    int foreground, no_multicast, no_udp, rfcomm, list_ports;
} options;

static int parse_args(options *o, int argc, char **argv)
{
    enum {
        O_CONFIG = 256,
        O_DATA,
        O_SOCKET,
        O_NAME,
        O_LOG,
        O_FG,
        O_PORT,
        O_PEER,
        O_NOMC,
        O_NOUDP,
        O_SERIAL,
        O_RFCOMM,
        O_PORTS,
        O_HELP,
        O_VERSION
    };
    static const struct option longopts[] = {
        {"config", required_argument, NULL, O_CONFIG},
        {"data-dir", required_argument, NULL, O_DATA},
        {"socket", required_argument, NULL, O_SOCKET},
        {"name", required_argument, NULL, O_NAME},
        {"log-level", required_argument, NULL, O_LOG},
        {"foreground", no_argument, NULL, O_FG},
        {"udp-port", required_argument, NULL, O_PORT},
        {"peer", required_argument, NULL, O_PEER},
        {"no-multicast", no_argument, NULL, O_NOMC},
        {"no-udp", no_argument, NULL, O_NOUDP},
        {"serial", required_argument, NULL, O_SERIAL},
        {"rfcomm", no_argument, NULL, O_RFCOMM},
        {"list-ports", no_argument, NULL, O_PORTS},
        {"help", no_argument, NULL, O_HELP},
        {"version", no_argument, NULL, O_VERSION},
        {NULL, 0, NULL, 0},
    };
    int c;
    memset(o, 0, sizeof(*o));
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case O_CONFIG:
            o->config = optarg;
            break;
        case O_DATA:
            o->data_dir = optarg;
            break;
        case O_SOCKET:
            o->socket = optarg;
            break;
        case O_NAME:
            o->name = optarg;
            break;
        case O_LOG:
            o->log_level = optarg;
            break;
        case O_FG:
            o->foreground = 1;
            break;
        case O_PORT:
            o->udp_port = optarg;
            break;
        case O_NOMC:
            o->no_multicast = 1;
            break;
        case O_NOUDP:
            o->no_udp = 1;
            break;
        case O_SERIAL:
            if (o->serial_count == FE_CONFIG_DRIVERS_MAX) {
                fprintf(stderr, "ferryd: at most %d --serial options\n", FE_CONFIG_DRIVERS_MAX);
                return EXIT_USAGE;
            }
            o->serials[o->serial_count++] = optarg;
            break;
        case O_RFCOMM:
            o->rfcomm = 1;
            break;
        case O_PORTS:
            o->list_ports = 1;
            break;
        case O_PEER:
            if (o->peer_count == FE_CONFIG_PEERS_MAX) {
                fprintf(stderr, "ferryd: at most %d --peer options\n", FE_CONFIG_PEERS_MAX);
                return EXIT_USAGE;
            }
            o->peers[o->peer_count++] = optarg;
            break;
        case O_HELP:
            usage(stdout);
            exit(0);
        case O_VERSION:
            printf("ferryd %s\n", FE_VERSION);
            exit(0);
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "ferryd: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    return 0;
}

/* Apply one [udp] setting through the config parser, so the command line is
 * checked exactly like the file. */
static int udp_override(fe_config *c, const char *opt, const char *key, const char *value)
{
    char text[FE_CONFIG_LINE_MAX], err[256];
    int n = snprintf(text, sizeof(text), "[udp]\n%s = %s\n", key, value);
    if (n < 0 || (size_t)n >= sizeof(text) || strchr(value, '\n')) {
        fprintf(stderr, "ferryd: %s %s: too long\n", opt, value);
        return -1;
    }
    if (fe_config_load_string(c, text, err, sizeof(err)) != 0) {
        const char *msg = strstr(err, ": ");
        msg = msg ? strstr(msg + 2, ": ") : NULL; /* skip "<string>:LINE: " */
        fprintf(stderr, "ferryd: %s %s: %s\n", opt, value, msg ? msg + 2 : err);
        return -1;
    }
    return 0;
}

static int copy_opt(char *dst, size_t cap, const char *value, const char *opt)
{
    size_t n = strlen(value);
    if (n >= cap) {
        fprintf(stderr, "ferryd: %s is too long (at most %zu bytes)\n", opt, cap - 1);
        return -1;
    }
    memcpy(dst, value, n + 1);
    return 0;
}

/* --serial PATH[:PROFILE]: a [serial NAME] section named after the
 * device ("ttyUSB0", then "ttyUSB0-2"...), so logs and `ferry peers` say
 * which one. The driver checks path and profile with the rest. */
static int serial_option(fe_config *c, const char *arg)
{
    char path[FE_CONFIG_LINE_MAX], name[FE_CONFIG_DRIVER_NAME_MAX], err[256];
    const char *profile = NULL;
    size_t n = strlen(arg);
    const char *colon = strrchr(arg, ':');
    /* A ':' followed by a '/' is part of the path, not a profile. */
    if (colon && !strchr(colon, '/')) {
        profile = colon + 1;
        n = (size_t)(colon - arg);
    }
    if (n == 0 || n >= sizeof(path)) {
        fprintf(stderr, "ferryd: --serial %s: expected PATH[:PROFILE], PATH at most %zu bytes\n",
                arg, sizeof(path) - 1);
        return -1;
    }
    memcpy(path, arg, n);
    path[n] = '\0';
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    char stem[FE_CONFIG_DRIVER_NAME_MAX - 4];
    size_t k = 0;
    for (; k < sizeof(stem) - 1 && base[k]; k++) {
        unsigned char ch = (unsigned char)base[k];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '_' || ch == '.' || ch == '-';
        stem[k] = ok ? (char)ch : '_';
    }
    stem[k] = '\0';
    if (k == 0)
        snprintf(stem, sizeof(stem), "serial");
    snprintf(name, sizeof(name), "%s", stem);
    for (int i = 2; fe_config_driver_find(c, FE_CONFIG_SERIAL, name) && i < 100; i++)
        snprintf(name, sizeof(name), "%s-%d", stem, i);
    int idx = fe_config_driver_add(c, FE_CONFIG_SERIAL, name, 0, err, sizeof(err));
    if (idx < 0 || fe_config_driver_add_pair(c, (size_t)idx, "path", path, 0, err, sizeof(err)) ||
        (profile &&
         fe_config_driver_add_pair(c, (size_t)idx, "profile", profile, 0, err, sizeof(err)))) {
        fprintf(stderr, "ferryd: --serial %s: %s\n", arg, err);
        return -1;
    }
    return 0;
}

/* --rfcomm: the [rfcomm] section, or one with the defaults, enabled. */
static int rfcomm_option(fe_config *c)
{
    char err[256];
    int idx = -1;
    for (size_t i = 0; i < c->driver_count; i++)
        if (c->drivers[i].kind == FE_CONFIG_RFCOMM)
            idx = (int)i;
    if (idx < 0)
        idx = fe_config_driver_add(c, FE_CONFIG_RFCOMM, "", 0, err, sizeof(err));
    /* Last, so it overrides an "enabled = false" of the file. */
    if (idx < 0 ||
        fe_config_driver_add_pair(c, (size_t)idx, "enabled", "true", 0, err, sizeof(err)) != 0) {
        fprintf(stderr, "ferryd: --rfcomm: %s\n", err);
        return -1;
    }
    return 0;
}

static int build_config(fe_config *c, const options *o)
{
    char err[512];
    fe_config_defaults(c);
    if (o->config && fe_config_load(c, o->config, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    if (o->name && copy_opt(c->name, sizeof(c->name), o->name, "--name") != 0)
        return -1;
    if (o->data_dir && copy_opt(c->data_dir, sizeof(c->data_dir), o->data_dir, "--data-dir") != 0)
        return -1;
    if (o->socket && copy_opt(c->socket, sizeof(c->socket), o->socket, "--socket") != 0)
        return -1;
    if (o->log_level && fe_log_level_parse(o->log_level, &c->log_level) != 0) {
        fprintf(stderr, "ferryd: --log-level is error, warn, info or debug\n");
        return -1;
    }
    if (o->udp_port && udp_override(c, "--udp-port", "port", o->udp_port) != 0)
        return -1;
    if (o->peer_count)
        c->udp.peers_count = 0; /* the command line replaces the file's peers */
    for (size_t i = 0; i < o->peer_count; i++)
        if (udp_override(c, "--peer", "peer", o->peers[i]) != 0)
            return -1;
    if (o->no_multicast)
        c->udp.group.s_addr = 0;
    if (o->no_udp)
        c->udp.enabled = 0;
    for (size_t i = 0; i < o->serial_count; i++)
        if (serial_option(c, o->serials[i]) != 0)
            return -1;
    if (o->rfcomm && rfcomm_option(c) != 0)
        return -1;
    if (fe_config_finish(c, err, sizeof(err)) != 0) {
        fprintf(stderr, "ferryd: %s\n", err);
        return -1;
    }
    /* The drivers check their own sections, before anything starts. */
    if (fe_links_check_config(c, o->config, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    return 0;
}

#ifdef FE_HAVE_SERIAL
static void print_port(void *ctx, const fe_serial_port_info *p)
{
    (void)ctx;
    printf("%s", p->path);
    if (p->description[0])
        printf("  %s", p->description);
    if (p->usb) {
        printf("  usb %04x:%04x", p->usb_vid, p->usb_pid);
        if (p->usb_serial[0])
            printf("  serial %s", p->usb_serial);
    }
    printf("\n");
}
#endif

/* --list-ports: one line per port (path, description, USB VID:PID and
 * serial number when known), for the [serial NAME] path or usb key. */
static int list_ports(void)
{
#ifdef FE_HAVE_SERIAL
    int n = fe_serial_list_ports(print_port, NULL);
    if (n < 0) {
        fprintf(stderr, "ferryd: cannot list the serial ports: %s\n", fe_strerror(n));
        return EXIT_RUNTIME;
    }
    if (n == 0)
        printf("no serial ports found\n");
    return 0;
#else
    fprintf(stderr, "ferryd: built without serial support (libserialport): no ports to list\n");
    return EXIT_RUNTIME;
#endif
}

/* mkdir -p, new directories owner-only. */
static int make_dirs(const char *path)
{
    char p[FE_CONFIG_PATH_MAX];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof(p))
        return -1;
    memcpy(p, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        char keep = p[i];
        p[i] = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST)
            return -1;
        p[i] = keep;
    }
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

/* Absolute paths: the daemon changes to / when it detaches. */
static int absolute(fe_config *c)
{
    char cwd[FE_CONFIG_PATH_MAX], sock[sizeof(c->socket)];
    char *real = realpath(c->data_dir, NULL);
    if (!real || strlen(real) >= sizeof(c->data_dir)) {
        fprintf(stderr, "ferryd: data directory %s: %s\n", c->data_dir,
                real ? "path too long" : strerror(errno));
        free(real);
        return -1;
    }
    memcpy(c->data_dir, real, strlen(real) + 1);
    free(real);
    if (c->socket[0] != '/') {
        int n =
            getcwd(cwd, sizeof(cwd)) ? snprintf(sock, sizeof(sock), "%s/%s", cwd, c->socket) : -1;
        if (n < 0 || (size_t)n >= sizeof(sock)) {
            fprintf(stderr,
                    "ferryd: socket path %s is relative and too long once absolute "
                    "(at most %zu bytes)\n",
                    c->socket, sizeof(sock) - 1);
            return -1;
        }
        memcpy(c->socket, sock, (size_t)n + 1);
    }
    return 0;
}

/* Detach: the parent waits for the child to report its start (so a failed
 * start still gives a failed exit status), then exits. In the child, stdio
 * goes to /dev/null and the log to log_path; *report is a copy of the
 * original stderr for a start-up failure, *notify the pipe to the parent. */
static int daemonize(const char *log_path, int *report, int *notify)
{
    int p[2];
    if (pipe(p) != 0) {
        fprintf(stderr, "ferryd: pipe: %s\n", strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "ferryd: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid > 0) {
        unsigned char status = EXIT_RUNTIME;
        close(p[1]);
        ssize_t n;
        do
            n = read(p[0], &status, 1);
        while (n < 0 && errno == EINTR);
        _exit(n == 1 ? status : EXIT_RUNTIME);
    }
    close(p[0]);
    setsid();
    umask(077);
    int logfd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    int null = open("/dev/null", O_RDWR);
    if (logfd < 0 || null < 0) {
        fprintf(stderr, "ferryd: cannot open %s: %s\n", log_path, strerror(errno));
        return -1;
    }
    *report = fcntl(2, F_DUPFD_CLOEXEC, 3);
    dup2(null, 0);
    dup2(null, 1);
    dup2(logfd, 2);
    close(null);
    close(logfd);
    *notify = p[1];
    return chdir("/") == 0 ? 0 : -1;
}

static void tell_parent(int *notify, unsigned char status)
{
    if (*notify < 0)
        return;
    ssize_t w = write(*notify, &status, 1);
    (void)w; /* the parent exits 1 on EOF anyway */
    close(*notify);
    *notify = -1;
}

int main(int argc, char **argv)
{
    options o;
    fe_config cfg;
    char err[1024], log_path[FE_CONFIG_PATH_MAX + 16];
    int report = -1, notify = -1;

    int rc = parse_args(&o, argc, argv);
    if (rc != 0)
        return rc;
    if (o.list_ports)
        return list_ports();
    if (build_config(&cfg, &o) != 0)
        return EXIT_USAGE;
    fe_log_set_ident("ferryd");
    fe_log_set_level(cfg.log_level);
    if (make_dirs(cfg.data_dir) != 0) {
        fprintf(stderr, "ferryd: cannot create data directory %s: %s\n", cfg.data_dir,
                strerror(errno));
        return EXIT_RUNTIME;
    }
    if (absolute(&cfg) != 0)
        return EXIT_RUNTIME;
    snprintf(log_path, sizeof(log_path), "%s/ferryd.log", cfg.data_dir);
    if (!o.foreground && daemonize(log_path, &report, &notify) != 0)
        return EXIT_RUNTIME;

    fe_daemon *d = NULL;
    if (fe_daemon_new(&d, &cfg, err, sizeof(err)) != 0) {
        fe_log(FE_LOG_ERROR, "%s", err);
        if (report >= 0)
            dprintf(report, "ferryd: %s\n", err);
        tell_parent(&notify, EXIT_RUNTIME);
        return EXIT_RUNTIME;
    }
    tell_parent(&notify, 0);
    if (report >= 0)
        close(report);
    rc = fe_daemon_run(d);
    fe_daemon_del(d);
    return rc;
}
