/* Bluetooth discovery: address helpers and the BlueZ implementation of
 * fe_bt_discovery (see rfcomm_disc.h for what and why).
 *
 * libbluetooth's SDP calls block; the driver calls inquiry and lookup from
 * its discovery thread only. Registration talks to the local bluetoothd over
 * a Unix socket and returns at once. */
#include "rfcomm_disc.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bluetooth/bluetooth.h>
#include <bluetooth/hci.h>
#include <bluetooth/hci_lib.h>
#include <bluetooth/sdp.h>
#include <bluetooth/sdp_lib.h>

_Static_assert(sizeof(bdaddr_t) == FE_BT_ADDR_BYTES, "fe_bt_addr mirrors bdaddr_t");

static const uint8_t ferry_uuid[16] = FE_BT_FERRY_UUID;

#define SDP_CSTATE_MAX 16        /* continuation state bytes, by the spec */
#define SDP_ROUNDS_MAX 16        /* continued answers we accept per lookup */
#define SDP_ATTR_BYTES_MAX 1024u /* attribute bytes the server may put in one answer */

/* --- addresses --- */

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int fe_bt_addr_parse(fe_bt_addr *out, const char *text)
{
    if (out == NULL || text == NULL || strlen(text) != FE_BT_ADDR_CHARS - 1)
        return FE_ERR_INVALID;
    fe_bt_addr a;
    for (int i = 0; i < FE_BT_ADDR_BYTES; i++) {
        const char *p = text + 3 * i;
        int hi = hex_digit(p[0]), lo = hex_digit(p[1]);
        if (hi < 0 || lo < 0 || (i < FE_BT_ADDR_BYTES - 1 && p[2] != ':'))
            return FE_ERR_INVALID;
        /* Text is most significant first; bdaddr_t is least significant first. */
        a.b[FE_BT_ADDR_BYTES - 1 - i] = (uint8_t)(hi << 4 | lo);
    }
    *out = a;
    return 0;
}

void fe_bt_addr_format(char *out, size_t out_len, const fe_bt_addr *a)
{
    if (out == NULL || out_len == 0)
        return;
    if (a == NULL) {
        out[0] = '\0';
        return;
    }
    snprintf(out, out_len, "%02X:%02X:%02X:%02X:%02X:%02X", a->b[5], a->b[4], a->b[3], a->b[2],
             a->b[1], a->b[0]);
}

int fe_bt_addr_eq(const fe_bt_addr *a, const fe_bt_addr *b)
{
    return memcmp(a->b, b->b, FE_BT_ADDR_BYTES) == 0;
}

int fe_bt_addr_cmp(const fe_bt_addr *a, const fe_bt_addr *b)
{
    for (int i = FE_BT_ADDR_BYTES - 1; i >= 0; i--) {
        if (a->b[i] != b->b[i])
            return a->b[i] < b->b[i] ? -1 : 1;
    }
    return 0;
}

int fe_bt_addr_is_any(const fe_bt_addr *a)
{
    static const fe_bt_addr any = {{0}};
    return fe_bt_addr_eq(a, &any);
}

/* --- SDP data elements ---
 *
 * libbluetooth 5.66 parses SDP data without guarding against every
 * malformed input: a nested sequence whose header is cut short makes
 * extract_seq() loop for ever, allocating on each turn (found by this
 * module's test, which truncates our own record at every length). Remote
 * devices choose the bytes of their SDP answers, so nothing reaches
 * sdp_extract_pdu() from here before the checks below have passed: every
 * element's header is complete, its length fits its container exactly,
 * sequences nest at most SDP_DEPTH_MAX deep, and there are no alternatives
 * (whose contents sdp_record_free() does not free). */

#define SDP_DEPTH_MAX 8
#define SDP_T_NIL 0u
#define SDP_T_UINT 1u
#define SDP_T_INT 2u
#define SDP_T_UUID 3u
#define SDP_T_TEXT 4u
#define SDP_T_BOOL 5u
#define SDP_T_SEQ 6u
#define SDP_T_ALT 7u
#define SDP_T_URL 8u

/* Header and body sizes of the element at p (len bytes available). */
static int elem_span(const uint8_t *p, size_t len, size_t *hdr, size_t *body)
{
    static const size_t fixed[] = {1, 2, 4, 8, 16};
    if (len < 1)
        return -1;
    unsigned type = p[0] >> 3, idx = p[0] & 7u;
    size_t h = 1, b;
    if (type == SDP_T_NIL) {
        if (idx != 0)
            return -1;
        b = 0;
    } else if (type == SDP_T_BOOL) {
        if (idx != 0)
            return -1;
        b = 1;
    } else if (type == SDP_T_UINT || type == SDP_T_INT) {
        if (idx > 4)
            return -1;
        b = fixed[idx];
    } else if (type == SDP_T_UUID) {
        if (idx != 1 && idx != 2 && idx != 4)
            return -1;
        b = fixed[idx];
    } else if (type == SDP_T_TEXT || type == SDP_T_SEQ || type == SDP_T_ALT || type == SDP_T_URL) {
        if (idx < 5)
            return -1;
        size_t n = idx == 5 ? 1 : idx == 6 ? 2 : 4;
        if (len < 1 + n)
            return -1;
        b = 0;
        for (size_t i = 0; i < n; i++)
            b = b << 8 | p[1 + i];
        h = 1 + n;
    } else {
        return -1;
    }
    if (b > len - h)
        return -1;
    *hdr = h;
    *body = b;
    return 0;
}

/* The len bytes at p are exactly one well-formed element. */
static int elem_check(const uint8_t *p, size_t len, int depth)
{
    size_t h, b;
    if (depth > SDP_DEPTH_MAX || elem_span(p, len, &h, &b) != 0 || h + b != len)
        return -1;
    unsigned type = p[0] >> 3;
    if (type == SDP_T_ALT)
        return -1; /* unused by ferry, and libbluetooth leaks their contents */
    if (type != SDP_T_SEQ)
        return 0;
    for (size_t off = h; off < len;) {
        size_t ch, cb;
        if (elem_span(p + off, len - off, &ch, &cb) != 0 ||
            elem_check(p + off, ch + cb, depth + 1) != 0)
            return -1;
        off += ch + cb;
    }
    return 0;
}

/* The len bytes at p are exactly one service record: a sequence of
 * (16-bit attribute id, value) pairs. */
static int record_check(const uint8_t *p, size_t len)
{
    size_t h, b;
    if (elem_check(p, len, 0) != 0 || (p[0] >> 3) != SDP_T_SEQ || elem_span(p, len, &h, &b) != 0)
        return -1;
    for (size_t off = h; off < len;) {
        if (len - off < 3 || p[off] != (SDP_T_UINT << 3 | 1u))
            return -1; /* attribute ids are uint16 elements */
        off += 3;
        size_t ch, cb;
        if (elem_span(p + off, len - off, &ch, &cb) != 0)
            return -1;
        off += ch + cb;
    }
    return 0;
}

/* --- the service record --- */

/* Our record: service class = the ferry UUID, public browse group, protocol
 * stack L2CAP + RFCOMM(channel), and a service name. Returns NULL when out of
 * memory. The sdp_set_* calls copy their lists, so ours are freed here. */
static sdp_record_t *record_build(uint8_t channel)
{
    sdp_record_t *rec = sdp_record_alloc();
    if (rec == NULL)
        return NULL;
    uuid_t svc, root, l2cap, rfcomm;
    sdp_uuid128_create(&svc, ferry_uuid);
    sdp_uuid16_create(&root, PUBLIC_BROWSE_GROUP);
    sdp_uuid16_create(&l2cap, L2CAP_UUID);
    sdp_uuid16_create(&rfcomm, RFCOMM_UUID);

    int ok = 0;
    sdp_data_t *ch = sdp_data_alloc(SDP_UINT8, &channel);
    sdp_list_t *classes = sdp_list_append(NULL, &svc);
    sdp_list_t *browse = sdp_list_append(NULL, &root);
    sdp_list_t *l2 = sdp_list_append(NULL, &l2cap);
    sdp_list_t *rf = sdp_list_append(NULL, &rfcomm);
    sdp_list_t *proto = NULL, *access = NULL;
    if (ch == NULL || classes == NULL || browse == NULL || l2 == NULL || rf == NULL)
        goto out;
    if (sdp_list_append(rf, ch) == NULL)
        goto out;
    proto = sdp_list_append(NULL, l2);
    if (proto == NULL || sdp_list_append(proto, rf) == NULL)
        goto out;
    access = sdp_list_append(NULL, proto);
    if (access == NULL)
        goto out;
    sdp_set_service_id(rec, svc);
    if (sdp_set_service_classes(rec, classes) < 0 || sdp_set_browse_groups(rec, browse) < 0 ||
        sdp_set_access_protos(rec, access) < 0)
        goto out;
    sdp_set_info_attr(rec, FE_BT_SERVICE_NAME, FE_BT_SERVICE_NAME,
                      "ferry store-and-forward messenger");
    ok = 1;
out:
    sdp_data_free(ch);
    sdp_list_free(classes, NULL);
    sdp_list_free(browse, NULL);
    sdp_list_free(l2, NULL);
    sdp_list_free(rf, NULL);
    sdp_list_free(proto, NULL);
    sdp_list_free(access, NULL);
    if (!ok) {
        sdp_record_free(rec);
        return NULL;
    }
    return rec;
}

static void free_uuid(void *p)
{
    free(p);
}

static void free_proto_seq(void *p, void *unused)
{
    (void)unused;
    sdp_list_free((sdp_list_t *)p, NULL);
}

/* 0 with *channel for a ferry record, else FE_ERR_NOTFOUND. */
static int record_channel(const sdp_record_t *rec, uint8_t *channel)
{
    sdp_list_t *classes = NULL;
    if (sdp_get_service_classes(rec, &classes) < 0)
        return FE_ERR_NOTFOUND;
    int ours = 0;
    for (sdp_list_t *l = classes; l != NULL; l = l->next) {
        const uuid_t *u = l->data;
        if (u != NULL && u->type == SDP_UUID128 &&
            memcmp(&u->value.uuid128, ferry_uuid, sizeof(ferry_uuid)) == 0)
            ours = 1;
    }
    sdp_list_free(classes, free_uuid);
    if (!ours)
        return FE_ERR_NOTFOUND;

    sdp_list_t *protos = NULL;
    if (sdp_get_access_protos(rec, &protos) < 0)
        return FE_ERR_NOTFOUND;
    int port = sdp_get_proto_port(protos, RFCOMM_UUID);
    sdp_list_foreach(protos, free_proto_seq, NULL);
    sdp_list_free(protos, NULL);
    if (port < FE_BT_CHANNEL_MIN || port > FE_BT_CHANNEL_MAX)
        return FE_ERR_NOTFOUND;
    *channel = (uint8_t)port;
    return 0;
}

ptrdiff_t fe_bt_sdp_record_encode(uint8_t *out, size_t out_len, uint8_t channel)
{
    if (out == NULL || channel < FE_BT_CHANNEL_MIN || channel > FE_BT_CHANNEL_MAX)
        return FE_ERR_INVALID;
    sdp_record_t *rec = record_build(channel);
    if (rec == NULL)
        return FE_ERR_NOMEM;
    sdp_buf_t buf;
    memset(&buf, 0, sizeof(buf));
    ptrdiff_t rc;
    if (sdp_gen_record_pdu(rec, &buf) < 0) {
        rc = FE_ERR_NOMEM;
    } else if (buf.data_size > out_len) {
        rc = FE_ERR_TOOBIG;
    } else {
        memcpy(out, buf.data, buf.data_size);
        rc = (ptrdiff_t)buf.data_size;
    }
    free(buf.data);
    sdp_record_free(rec);
    return rc;
}

int fe_bt_sdp_record_channel(const uint8_t *pdu, size_t len, uint8_t *channel)
{
    if (pdu == NULL || channel == NULL || len == 0 || len > FE_BT_SDP_RESPONSE_MAX ||
        record_check(pdu, len) != 0)
        return FE_ERR_MALFORMED;
    int scanned = 0;
    sdp_record_t *rec = sdp_extract_pdu(pdu, (int)len, &scanned);
    if (rec == NULL)
        return FE_ERR_MALFORMED;
    int rc = record_channel(rec, channel);
    sdp_record_free(rec);
    return rc;
}

int fe_bt_sdp_lists_channel(const uint8_t *lists, size_t len, uint8_t *channel)
{
    size_t h, b;
    if (lists == NULL || channel == NULL || len == 0 || len > FE_BT_SDP_RESPONSE_MAX ||
        elem_check(lists, len, 0) != 0 || (lists[0] >> 3) != SDP_T_SEQ ||
        elem_span(lists, len, &h, &b) != 0)
        return FE_ERR_MALFORMED;
    int rc = FE_ERR_NOTFOUND;
    for (size_t off = h; off < len;) {
        size_t ch, cb;
        if (elem_span(lists + off, len - off, &ch, &cb) != 0)
            return FE_ERR_MALFORMED;
        int r = fe_bt_sdp_record_channel(lists + off, ch + cb, channel);
        if (r == 0)
            return 0;
        if (r == FE_ERR_MALFORMED)
            rc = FE_ERR_MALFORMED; /* keep looking: another record may be ours */
        off += ch + cb;
    }
    return rc;
}

/* One ServiceSearchAttribute exchange, continued until the server is done:
 * the attribute lists of every record of our UUID into out (at most
 * out_max bytes). 0 with *out_len, or a negative code. */
static int search_attr(sdp_session_t *s, uint8_t *rsp, uint8_t *out, size_t out_max,
                       size_t *out_len)
{
    uint8_t cstate[SDP_CSTATE_MAX] = {0};
    size_t cstate_len = 0, have = 0;
    for (int round = 0; round < SDP_ROUNDS_MAX; round++) {
        uint8_t req[64];
        size_t n = 5; /* pdu id, transaction id, parameter length */
        req[0] = SDP_SVC_SEARCH_ATTR_REQ;
        uint16_t tid = sdp_gen_tid(s);
        req[1] = (uint8_t)(tid >> 8);
        req[2] = (uint8_t)tid;
        req[n++] = SDP_SEQ8; /* search pattern: { our UUID } */
        req[n++] = 17;
        req[n++] = SDP_UUID128;
        memcpy(req + n, ferry_uuid, sizeof(ferry_uuid));
        n += sizeof(ferry_uuid);
        req[n++] = (uint8_t)(SDP_ATTR_BYTES_MAX >> 8); /* attribute bytes per answer */
        req[n++] = (uint8_t)SDP_ATTR_BYTES_MAX;
        req[n++] = SDP_SEQ8; /* attribute ids: { 0x0000-0xffff } */
        req[n++] = 5;
        req[n++] = SDP_UINT32;
        req[n++] = 0x00;
        req[n++] = 0x00;
        req[n++] = 0xff;
        req[n++] = 0xff;
        req[n++] = (uint8_t)cstate_len;
        memcpy(req + n, cstate, cstate_len);
        n += cstate_len;
        req[3] = (uint8_t)((n - 5) >> 8);
        req[4] = (uint8_t)(n - 5);

        uint32_t got = 0;
        if (sdp_send_req_w4_rsp(s, req, rsp, (uint32_t)n, &got) < 0)
            return FE_ERR_EXPIRED;
        if (got < 5 || rsp[0] != SDP_SVC_SEARCH_ATTR_RSP)
            return rsp[0] == SDP_ERROR_RSP ? FE_ERR_NOTFOUND : FE_ERR_MALFORMED;
        size_t plen = (size_t)rsp[3] << 8 | rsp[4];
        if (plen > got - 5 || plen < 3)
            return FE_ERR_MALFORMED;
        size_t count = (size_t)rsp[5] << 8 | rsp[6];
        if (count + 3 > plen)
            return FE_ERR_MALFORMED;
        if (count > out_max - have)
            return FE_ERR_TOOBIG;
        memcpy(out + have, rsp + 7, count);
        have += count;
        cstate_len = rsp[7 + count];
        if (cstate_len == 0) {
            *out_len = have;
            return 0;
        }
        if (cstate_len > sizeof(cstate) || 8 + count + cstate_len > plen + 5)
            return FE_ERR_MALFORMED;
        memcpy(cstate, rsp + 8 + count, cstate_len);
    }
    return FE_ERR_MALFORMED; /* a server that never finishes */
}

/* --- the BlueZ implementation --- */

typedef struct bluez_ctx {
    sdp_session_t *reg;    /* session that keeps our record alive; owner thread */
    sdp_record_t *reg_rec; /* freed by sdp_record_unregister */
    uint8_t reg_channel;
} bluez_ctx;

/* bluetoothd drops a record when the session that registered it closes,
 * and closes every session when it stops: a session that hung up or has
 * something to read (EOF) means the record is gone. */
static int session_alive(const sdp_session_t *s)
{
    struct pollfd p = {.fd = sdp_get_socket(s), .events = POLLIN};
    return poll(&p, 1, 0) == 0;
}

static int bluez_inquiry(void *ctx, int dev_id, unsigned length, fe_bt_addr *out, size_t max)
{
    (void)ctx;
    if (out == NULL || max == 0 || length == 0 || length > FE_BT_INQUIRY_LENGTH_MAX)
        return FE_ERR_INVALID;
    if (max > FE_BT_INQUIRY_MAX)
        max = FE_BT_INQUIRY_MAX;
    inquiry_info *ii = NULL;
    /* IREQ_CACHE_FLUSH: report only devices that answer now, not the
     * kernel's cache of earlier inquiries. */
    int n = hci_inquiry(dev_id, (int)length, (int)max, NULL, &ii, IREQ_CACHE_FLUSH);
    if (n < 0) {
        free(ii);
        return errno == ENOMEM ? FE_ERR_NOMEM : FE_ERR_EXPIRED;
    }
    size_t count = (size_t)n < max ? (size_t)n : max;
    for (size_t i = 0; i < count; i++)
        memcpy(out[i].b, &ii[i].bdaddr, FE_BT_ADDR_BYTES);
    free(ii);
    return (int)count;
}

static int bluez_lookup(void *ctx, const fe_bt_addr *local, const fe_bt_addr *peer,
                        uint8_t *channel)
{
    (void)ctx;
    if (local == NULL || peer == NULL || channel == NULL)
        return FE_ERR_INVALID;
    bdaddr_t src, dst;
    memcpy(&src, local->b, sizeof(src));
    memcpy(&dst, peer->b, sizeof(dst));
    /* Blocks for the L2CAP connection to the peer's SDP server: up to the
     * page timeout when the device is away. */
    sdp_session_t *s = sdp_connect(&src, &dst, SDP_RETRY_IF_BUSY);
    if (s == NULL)
        return FE_ERR_EXPIRED; /* out of range, switched off or busy */

    /* Not sdp_service_search_attr_req(): it hands the remote's bytes to the
     * parser unchecked (see "SDP data elements" above). */
    uint8_t *rsp = malloc(SDP_RSP_BUFFER_SIZE);
    uint8_t *lists = malloc(FE_BT_SDP_RESPONSE_MAX);
    size_t len = 0;
    int rc = FE_ERR_NOMEM;
    if (rsp != NULL && lists != NULL) {
        rc = search_attr(s, rsp, lists, FE_BT_SDP_RESPONSE_MAX, &len);
        if (rc == 0)
            rc = len == 0 ? FE_ERR_NOTFOUND : fe_bt_sdp_lists_channel(lists, len, channel);
        if (rc == FE_ERR_MALFORMED || rc == FE_ERR_TOOBIG)
            rc = FE_ERR_NOTFOUND; /* answered, but nothing usable: not ferry */
    }
    free(rsp);
    free(lists);
    sdp_close(s);
    return rc;
}

static void bluez_unregister(void *ctx)
{
    bluez_ctx *b = ctx;
    if (b->reg != NULL) {
        if (b->reg_rec != NULL && sdp_record_unregister(b->reg, b->reg_rec) < 0)
            sdp_record_free(b->reg_rec); /* unregister frees it only on success */
        sdp_close(b->reg);
    }
    b->reg = NULL;
    b->reg_rec = NULL;
}

static int bluez_register(void *ctx, const fe_bt_addr *local, uint8_t channel, char *err,
                          size_t err_len)
{
    bluez_ctx *b = ctx;
    (void)local; /* the record is offered on every adapter of this host */
    if (channel < FE_BT_CHANNEL_MIN || channel > FE_BT_CHANNEL_MAX) {
        snprintf(err, err_len, "bad channel %u", (unsigned)channel);
        return FE_ERR_INVALID;
    }
    if (b->reg != NULL && b->reg_channel == channel && session_alive(b->reg))
        return 0;
    bluez_unregister(b);
    /* BDADDR_LOCAL means the local SDP server's Unix socket (/run/sdp). */
    sdp_session_t *s = sdp_connect(BDADDR_ANY, BDADDR_LOCAL, SDP_RETRY_IF_BUSY);
    if (s == NULL) {
        int e = errno;
        if (e == EACCES || e == EPERM)
            snprintf(err, err_len,
                     "cannot register the SDP record: permission denied on %s (let the "
                     "bluetooth group use it, see hw/bluetooth.md)",
                     SDP_UNIX_PATH);
        else
            snprintf(err, err_len,
                     "cannot register the SDP record: no local SDP server at %s (%s); "
                     "bluetoothd must run with --compat",
                     SDP_UNIX_PATH, strerror(e));
        return FE_ERR_NOTFOUND;
    }
    sdp_record_t *rec = record_build(channel);
    if (rec == NULL) {
        sdp_close(s);
        snprintf(err, err_len, "cannot register the SDP record: out of memory");
        return FE_ERR_NOMEM;
    }
    if (sdp_record_register(s, rec, 0) < 0) {
        int e = errno;
        sdp_record_free(rec);
        sdp_close(s);
        snprintf(err, err_len, "bluetoothd refused our SDP record: %s", strerror(e));
        return FE_ERR_INVALID;
    }
    b->reg = s;
    b->reg_rec = rec;
    b->reg_channel = channel;
    return 0;
}

static const fe_bt_discovery_ops bluez_ops = {
    .name = "bluez",
    .inquiry = bluez_inquiry,
    .lookup = bluez_lookup,
    .register_service = bluez_register,
    .unregister_service = bluez_unregister,
};

int fe_bt_bluez_new(fe_bt_discovery **out)
{
    if (out == NULL)
        return FE_ERR_INVALID;
    fe_bt_discovery *d = calloc(1, sizeof(*d));
    bluez_ctx *b = calloc(1, sizeof(*b));
    if (d == NULL || b == NULL) {
        free(d);
        free(b);
        return FE_ERR_NOMEM;
    }
    d->ops = &bluez_ops;
    d->ctx = b;
    *out = d;
    return 0;
}

void fe_bt_bluez_del(fe_bt_discovery *d)
{
    if (d == NULL)
        return;
    bluez_unregister(d->ctx);
    free(d->ctx);
    free(d);
}
