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
 *   [serial NAME]            ; one serial radio modem (several, NAME unique)
 *   [rfcomm]                 ; Bluetooth RFCOMM (at most one)
 *
 * The keys of [serial NAME] and [rfcomm] belong to their transport drivers,
 * which this layer does not know: it keeps each such section's kind, name
 * and "key = value" lines (with line numbers) for the daemon to hand to the
 * driver, which checks them. A section is recorded from its header line, so
 * an [rfcomm] with no keys at all still counts (inih alone never reports a
 * section without keys). NAME is 1..31 of A-Z a-z 0-9 _ . -
 *
 * Booleans: true/false, yes/no, on/off, 1/0. Comments start with ';' or '#'
 * at the start of a line, or with ';' after a value. "~/" at the start of
 * a path means $HOME. Any other section is refused.
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
#define FE_CONFIG_DRIVERS_MAX 16         /* [serial NAME] and [rfcomm] sections together */
#define FE_CONFIG_DRIVER_KEYS_MAX 32     /* key = value lines per such section */
#define FE_CONFIG_DRIVER_NAME_MAX 32     /* NAME of [serial NAME], with the NUL */
#define FE_CONFIG_DRIVER_TEXT_MAX 16384  /* their keys and values, NULs included */

_Static_assert(FE_CONFIG_DRIVER_TEXT_MAX <= UINT16_MAX, "pair offsets are 16-bit");

enum fe_config_driver_kind { FE_CONFIG_SERIAL = 1, FE_CONFIG_RFCOMM = 2 };

/* One "key = value" line of a driver section. The strings live in
 * fe_config.driver_text (offsets, so that the struct can be copied);
 * fe_config_key/fe_config_value turn them into pointers. */
typedef struct fe_config_pair {
    uint16_t key, value;
    int line; /* in the file; 0 when added by fe_config_driver_add_pair from elsewhere */
} fe_config_pair;

typedef struct fe_config_driver {
    enum fe_config_driver_kind kind;
    char name[FE_CONFIG_DRIVER_NAME_MAX]; /* NAME of [serial NAME]; "" for [rfcomm] */
    int line;                             /* of the [section] header; 0: not from a file */
    size_t pair_count;
    fe_config_pair pairs[FE_CONFIG_DRIVER_KEYS_MAX]; /* in file order */
} fe_config_driver;

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

    /* [serial NAME] and [rfcomm], in file order */
    fe_config_driver drivers[FE_CONFIG_DRIVERS_MAX];
    size_t driver_count;
    size_t driver_text_len;
    char driver_text[FE_CONFIG_DRIVER_TEXT_MAX];
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

/* The strings of a pair of c's driver sections. */
const char *fe_config_key(const fe_config *c, const fe_config_pair *p);
const char *fe_config_value(const fe_config *c, const fe_config_pair *p);

/* Add a driver section (what a [serial NAME] or [rfcomm] header does), for
 * sections that come from elsewhere than a file, e.g. the command line.
 * line is reported in messages; 0 means "not from a file". Returns the
 * section's index, or -1 with a message in err: a bad or duplicate NAME
 * (or any NAME for rfcomm), a second [rfcomm], or FE_CONFIG_DRIVERS_MAX
 * sections already. */
int fe_config_driver_add(fe_config *c, enum fe_config_driver_kind kind, const char *name, int line,
                         char *err, size_t err_len);

/* Append "key = value" to driver section index. 0, or -1 with a message in
 * err: no such section, FE_CONFIG_DRIVER_KEYS_MAX keys already, the text
 * space (FE_CONFIG_DRIVER_TEXT_MAX) used up, or an empty key. */
int fe_config_driver_add_pair(fe_config *c, size_t index, const char *key, const char *value,
                              int line, char *err, size_t err_len);

/* The driver section of that kind and name (name ignored for rfcomm), or
 * NULL. */
const fe_config_driver *fe_config_driver_find(const fe_config *c, enum fe_config_driver_kind kind,
                                              const char *name);

/* Parse a duration ("90s", "15m", "24h", "7d", or seconds) into *ms.
 * 0 or -1. No range check beyond overflow. */
int fe_config_parse_duration(const char *s, uint64_t *ms);

#endif
