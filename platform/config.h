/* ferryd's configuration: an INI file read with inih.
 *
 *   [node]
 *   name = alice             ; announced name; default: host name; may be empty
 *   data_dir = /var/lib/ferry; default: $XDG_DATA_HOME/ferry or ~/.local/share/ferry
 *   socket = /run/ferry.sock ; control socket; default: <data_dir>/ferryd.sock
 *   log_level = info         ; error | warn | info | debug
 *   lifetime = 24h           ; of new messages: 90s, 15m, 24h, 7d or seconds; 1s..30d
 *   hops = 32                ; hop budget of new messages, 1..255
 *   socket_group = ferry     ; group allowed to use the control socket; default: owner only
 *
 *   [udp]
 *   enabled = true
 *   port = 4747              ; 1..65535
 *   group = 239.255.70.1     ; IPv4 multicast group for LAN discovery
 *   interface = eth0         ; name or IPv4 address; empty: default route, else loopback
 *   broadcast = false        ; also send to the subnet broadcast address
 *   peer = 192.0.2.10:4747   ; static unicast peer, repeatable (FE_CONFIG_PEERS_MAX);
 *                            ; without :PORT the [udp] port is used
 *   mtu = 1200               ; 64..1400
 *
 * Booleans: true/false, yes/no, on/off, 1/0. Comments start with ';' or '#'
 * at the start of a line, or with ';' after a value. "~/" at the start of
 * a path means $HOME. Any other section is refused for now.
 *
 * Every problem is reported as "FILE:LINE: message" (the first one found)
 * and fails the whole load: a daemon should not run on half a config. */
#ifndef FE_CONFIG_H
#define FE_CONFIG_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/limits.h"

#define FE_CONFIG_PATH_MAX 512     /* data_dir */
#define FE_CONFIG_SOCKET_MAX 108   /* sizeof(sockaddr_un.sun_path), with the NUL */
#define FE_CONFIG_GROUPNAME_MAX 33 /* socket_group, with the NUL */
#define FE_CONFIG_IFACE_MAX 16     /* IF_NAMESIZE and INET_ADDRSTRLEN, with the NUL */
#define FE_CONFIG_PEERS_MAX 32
#define FE_CONFIG_FILE_MAX (1024 * 1024) /* bigger files are refused */
#define FE_CONFIG_LINE_MAX 200           /* longest line, inih's line buffer minus CR LF NUL */

typedef struct fe_config_peer {
    struct in_addr addr;
    uint16_t port; /* 0 until fe_config_finish: "the [udp] port" */
} fe_config_peer;

typedef struct fe_config {
    /* [node] */
    char name[FE_NAME_MAX + 1];
    char data_dir[FE_CONFIG_PATH_MAX];
    char socket[FE_CONFIG_SOCKET_MAX]; /* empty until fe_config_finish */
    int log_level;                     /* enum fe_log_level */
    uint64_t lifetime_ms;
    uint8_t hops;
    char socket_group[FE_CONFIG_GROUPNAME_MAX]; /* empty: owner only */

    /* [udp] */
    struct {
        int enabled;
        uint16_t port;
        struct in_addr group;
        char interface[FE_CONFIG_IFACE_MAX]; /* empty: automatic */
        int broadcast;
        fe_config_peer peers[FE_CONFIG_PEERS_MAX];
        size_t peers_count;
        size_t mtu;
    } udp;
} fe_config;

/* Fill c with the defaults above. data_dir comes from the environment and is
 * left empty when neither XDG_DATA_HOME nor HOME is set. */
void fe_config_defaults(fe_config *c);

/* Read the INI file at path over the values already in c (normally the
 * defaults). Returns 0, or -1 with one line "FILE:LINE: message" (or
 * "FILE: message") in err and c unchanged; errno is ENOENT when the file does
 * not exist, so a daemon may treat a missing default file as empty. */
int fe_config_load(fe_config *c, const char *path, char *err, size_t err_len);

/* The same for INI text in memory; messages name it "<string>". */
int fe_config_load_string(fe_config *c, const char *text, char *err, size_t err_len);

/* After command-line overrides: derive what was left to default (socket from
 * data_dir, peer ports from the [udp] port) and check the whole. Returns 0,
 * or -1 with a message in err. */
int fe_config_finish(fe_config *c, char *err, size_t err_len);

/* Parse a duration ("90s", "15m", "24h", "7d", or seconds) into *ms.
 * 0 or -1. No range check beyond overflow. */
int fe_config_parse_duration(const char *s, uint64_t *ms);

#endif
