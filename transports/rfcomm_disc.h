/* Bluetooth discovery for the RFCOMM driver: finding nearby devices, finding
 * the ferry service on one of them, and advertising our own.
 *
 * The driver only sees the small fe_bt_discovery vtable below, so tests can
 * replace BlueZ with a scripted fake. The BlueZ implementation in this module
 * uses the classic libbluetooth API:
 *   - inquiry: hci_inquiry() (the HCIINQUIRY ioctl; no capability needed);
 *   - lookup: an SDP ServiceSearchAttribute request over L2CAP to the
 *     remote's SDP server, for the ferry service class UUID below (built
 *     here, so that the answer is checked before libbluetooth parses it);
 *   - register: the legacy local SDP server API (sdp_record_register over
 *     the /run/sdp Unix socket), which BlueZ 5 only offers when bluetoothd
 *     runs with --compat, and whose socket is mode 0660 root:root unless the
 *     service is told otherwise (hw/bluetooth.md has the two-line drop-in).
 * D-Bus ProfileManager1 would avoid --compat but needs a D-Bus client
 * library and a D-Bus main loop in the daemon; it can be added later as a
 * second implementation of this same vtable.
 *
 * Without a registered record a ferry node is still reachable on its fixed
 * channel (7 by default): peers that find no record fall back to it. */
#ifndef FE_RFCOMM_DISC_H
#define FE_RFCOMM_DISC_H

#include <stddef.h>
#include <stdint.h>

#include "../core/err.h"

/* The ferry service class, d2a46c50-88cb-4056-b50c-f97f4d6228c2, in the
 * big-endian byte order of SDP. Generated once for ferry; never change it. */
#define FE_BT_FERRY_UUID                                                                           \
    {                                                                                              \
        0xd2, 0xa4, 0x6c, 0x50, 0x88, 0xcb, 0x40, 0x56, 0xb5, 0x0c, 0xf9, 0x7f, 0x4d, 0x62, 0x28,  \
            0xc2                                                                                   \
    }
#define FE_BT_FERRY_UUID_STR "d2a46c50-88cb-4056-b50c-f97f4d6228c2"
#define FE_BT_SERVICE_NAME "ferry"

#define FE_BT_ADDR_BYTES 6
#define FE_BT_ADDR_CHARS 18 /* "AA:BB:CC:DD:EE:FF" and its NUL */
#define FE_BT_CHANNEL_MIN 1
#define FE_BT_CHANNEL_MAX 30
#define FE_BT_INQUIRY_MAX 32        /* devices reported by one inquiry */
#define FE_BT_INQUIRY_LENGTH_MAX 48 /* units of 1.28 s, as HCI allows */
#define FE_BT_SDP_RECORD_MAX 512    /* bytes of our encoded service record */
#define FE_BT_SDP_RESPONSE_MAX 8192 /* bytes of service records accepted from one device */

/* A Bluetooth device address in BlueZ's bdaddr_t order: b[0] is the LAST
 * byte of the text form "AA:BB:CC:DD:EE:FF". */
typedef struct fe_bt_addr {
    uint8_t b[FE_BT_ADDR_BYTES];
} fe_bt_addr;

/* Parse "AA:BB:CC:DD:EE:FF" (hex digits of either case, exactly this shape).
 * 0 or FE_ERR_INVALID; *out is untouched on error. */
FE_MUST_CHECK int fe_bt_addr_parse(fe_bt_addr *out, const char *text);

/* Write the upper-case text form into out (at least FE_BT_ADDR_CHARS). */
void fe_bt_addr_format(char *out, size_t out_len, const fe_bt_addr *a);

/* 1 if equal, else 0. */
int fe_bt_addr_eq(const fe_bt_addr *a, const fe_bt_addr *b);

/* -1, 0 or 1, comparing addresses as the numbers their text form spells. */
int fe_bt_addr_cmp(const fe_bt_addr *a, const fe_bt_addr *b);

/* 1 for 00:00:00:00:00:00 (BDADDR_ANY). */
int fe_bt_addr_is_any(const fe_bt_addr *a);

/* Threads: inquiry and lookup are called from the driver's discovery thread
 * and may block (an inquiry lasts length * 1.28 s; a lookup of an absent
 * device waits for the page timeout, about 5 s). register_service and
 * unregister_service are called from the driver's owner thread and must be
 * quick. The two groups must not share unsynchronised state. */
typedef struct fe_bt_discovery_ops {
    const char *name;
    /* Inquiry on adapter dev_id for length units of 1.28 s (1..48): up to max
     * addresses of nearby discoverable devices into out. Returns the count, or
     * a negative FE_ERR_*. */
    int (*inquiry)(void *ctx, int dev_id, unsigned length, fe_bt_addr *out, size_t max);
    /* The RFCOMM channel of the ferry service on peer, asked from the local
     * adapter address local. Returns 0 with *channel set; FE_ERR_NOTFOUND when
     * the device answered but has no ferry record; another negative code when
     * it could not be reached. */
    int (*lookup)(void *ctx, const fe_bt_addr *local, const fe_bt_addr *peer, uint8_t *channel);
    /* Advertise the ferry service on channel of the adapter local until
     * unregister_service. 0, or a negative code with one line in err saying
     * why and what to do. The driver calls it again every minute: with the
     * same channel and the record still in place it must do nothing; when
     * the record was lost (bluetoothd restarted) it registers it again. */
    int (*register_service)(void *ctx, const fe_bt_addr *local, uint8_t channel, char *err,
                            size_t err_len);
    /* Withdraw the record, if any. */
    void (*unregister_service)(void *ctx);
} fe_bt_discovery_ops;

typedef struct fe_bt_discovery {
    const fe_bt_discovery_ops *ops;
    void *ctx;
} fe_bt_discovery;

/* The BlueZ implementation (see the top of this file). 0, or FE_ERR_INVALID,
 * FE_ERR_NOMEM. Nothing touches the radio until a method is called. */
FE_MUST_CHECK int fe_bt_bluez_new(fe_bt_discovery **out);

/* Withdraw any record and free. Accepts NULL. */
void fe_bt_bluez_del(fe_bt_discovery *d);

/* The service record we register for channel (1..30), serialised as an SDP
 * data element sequence (what a remote SDP server returns). Returns its
 * length, FE_ERR_INVALID for a bad channel, FE_ERR_TOOBIG if out_len is too
 * small (FE_BT_SDP_RECORD_MAX suffices) or FE_ERR_NOMEM. */
FE_MUST_CHECK ptrdiff_t fe_bt_sdp_record_encode(uint8_t *out, size_t out_len, uint8_t channel);

/* Read a serialised service record (len bytes, exactly one data element
 * sequence of attribute id / value pairs): 0 with *channel set when it is a
 * ferry record (our service class UUID, an RFCOMM channel 1..30);
 * FE_ERR_NOTFOUND for a record of another service or one without a usable
 * channel; FE_ERR_MALFORMED when the bytes are not well-formed SDP data.
 * Bounded and safe on any input: the bytes are checked before libbluetooth
 * parses them. */
FE_MUST_CHECK int fe_bt_sdp_record_channel(const uint8_t *pdu, size_t len, uint8_t *channel);

/* The same for the AttributeLists of a ServiceSearchAttribute answer (a
 * sequence of records): the channel of the first ferry record in it. */
FE_MUST_CHECK int fe_bt_sdp_lists_channel(const uint8_t *lists, size_t len, uint8_t *channel);

#endif
