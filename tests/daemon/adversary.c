/* A rogue UDP peer for the multi-process tests: it speaks protocol v1 with
 * the core's own encoders (wire.h, seal.h, frag.h), but deviates on
 * purpose. Every datagram goes to 127.0.0.1 only; every run is bounded in
 * datagrams and in time (--seconds).
 *
 *   forge-announce --to PORT --name NAME [--steal-pk HEX] [--seq N] [--below-pk HEX]
 *       A fresh identity announces NAME, validly signed. With --steal-pk the
 *       announce carries someone else's key but our signature (must fail).
 *       With --below-pk the fresh key sorts before the given one, so a store
 *       that loads keys in key order meets the impostor first.
 *   forge-receipt --listen PORT --to PORT... --want N [--per-id K] [--ids-out FILE]
 *       For every private message a daemon relays to us: K receipts with
 *       made-up secrets and a summary claiming to hold its receipt.
 *   record --listen PORT --out FILE
 *       Every datagram received, as [u16 length][bytes], until SIGTERM.
 *   inspect --in FILE      counts of a recording by frame type
 *   replay --in FILE --to PORT... [--refresh]
 *       Resend a recording; --refresh gives items a fresh hop budget and the
 *       longest lifetime (those bytes are not authenticated).
 *   flood --to PORT --to-pk HEX --count N [--announce NAME] [--prefix P] [--rate N]
 *       N valid private messages from one fresh origin to the key's owner,
 *       ignoring every quota a daemon would apply to its own user.
 *   tamper --in FILE --to PORT [--dst HEX] [--no-control]
 *       Damaged copies of the first recorded private message (to --dst):
 *       flipped bits, truncations, bad headers, broken and oversized
 *       fragments; then one intact fragmented copy as a control. Prints how
 *       many the recipient must count as malformed and as failing to open.
 *
 * Exit status: 0 done, 1 failure (said on stderr), 2 usage. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "frag.h"
#include "ident.h"
#include "limits.h"
#include "seal.h"
#include "wire.h"

#define ADV_TO_MAX 8
#define ADV_IDS_MAX 4096         /* message ids remembered by forge-receipt */
#define ADV_RECORD_MAX 100000    /* datagrams in a recording */
#define ADV_FLOOD_MAX 100000     /* messages in one flood */
#define ADV_SECONDS_DEFAULT 30.0 /* time bound of every command */
#define ADV_POLL_MS 100
#define ADV_HOPS 64
#define ADV_FRAG_MTU 24   /* small enough to cut any message into 3+ fragments */
#define ADV_NESTED_MTU 16 /* for a fragment of a fragment */
#define ADV_BURST 50      /* datagrams sent between two pauses */

typedef struct opts {
    const char *cmd, *name, *steal_pk, *below_pk, *ids_out, *out, *in, *to_pk, *announce, *prefix,
        *dst;
    unsigned listen;
    unsigned to[ADV_TO_MAX];
    size_t to_count;
    double seconds;
    unsigned long seq, per_id, want, count, rate;
    int refresh, no_control;
} opts;

static volatile sig_atomic_t stop_flag;

static void on_stop(int signo)
{
    (void)signo;
    stop_flag = 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int die(const char *what)
{
    fprintf(stderr, "adversary: %s\n", what);
    return 1;
}

static int parse_ulong(const char *s, unsigned long max, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v > max)
        return -1;
    *out = v;
    return 0;
}

static int hex_key(uint8_t pk[FE_PK_BYTES], const char *hex)
{
    size_t n = 0;
    if (strlen(hex) != 2 * FE_PK_BYTES ||
        sodium_hex2bin(pk, FE_PK_BYTES, hex, strlen(hex), NULL, &n, NULL) != 0 || n != FE_PK_BYTES)
        return -1;
    return 0;
}

/* ------------------------------------------------------------------ */
/* The socket: bound to 127.0.0.1 (port 0: any), sending to 127.0.0.1. */

static int open_socket(unsigned port)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int big = 4 << 20;
    if (fd < 0)
        return -1;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* One datagram to every --to port. 0, or -1 if a send failed for another
 * reason than a daemon not listening (ECONNREFUSED from an earlier one). */
static int send_all(int fd, const opts *o, const uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < o->to_count; i++) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->to[i])};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        for (int attempt = 0; attempt < 3; attempt++) {
            if (sendto(fd, buf, len, 0, (struct sockaddr *)&sa, sizeof(sa)) == (ssize_t)len)
                break;
            if (errno != ECONNREFUSED && errno != EINTR && errno != ENOBUFS)
                return -1;
            if (errno == ENOBUFS)
                pause_ms(1);
        }
    }
    return 0;
}

/* Pace a burst: a short pause after every ADV_BURST datagrams, so a
 * receiver on the same machine is flooded at a known, bounded rate. */
static void pace(unsigned long sent, unsigned long rate)
{
    if (rate && sent % ADV_BURST == 0) {
        long ms = (long)(1000.0 * ADV_BURST / (double)rate);
        pause_ms(ms > 0 ? ms : 1);
    }
}

/* Wait up to ADV_POLL_MS for a datagram. Its length, 0 if none came, -1. */
static ssize_t recv_one(int fd, uint8_t *buf, size_t cap)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = poll(&p, 1, ADV_POLL_MS);
    if (r <= 0)
        return r < 0 && errno != EINTR ? -1 : 0;
    ssize_t n = recv(fd, buf, cap, 0);
    if (n < 0)
        return errno == EINTR || errno == EAGAIN || errno == ECONNREFUSED ? 0 : -1;
    return n;
}

static int fresh_identity(fe_identity *id)
{
    uint8_t seed[FE_SEED_BYTES];
    randombytes_buf(seed, sizeof(seed));
    int rc = fe_ident_from_seed(id, seed);
    sodium_memzero(seed, sizeof(seed));
    return rc;
}

static void print_hex(const char *label, const uint8_t *b, size_t len)
{
    char hex[2 * FE_FRAME_MAX + 1];
    sodium_bin2hex(hex, sizeof(hex), b, len);
    printf("%s %s\n", label, hex);
}

/* ------------------------------------------------------------------ */
/* forge-announce */

static int cmd_forge_announce(const opts *o, int fd)
{
    fe_identity id, signer;
    uint8_t frame[FE_FRAME_MAX], addr[FE_ADDR_BYTES];
    fe_frame f;

    if (!o->name || !o->to_count)
        return die("forge-announce needs --name and --to");
    uint8_t below[FE_PK_BYTES];
    memset(below, 0xff, sizeof(below));
    if (o->below_pk && hex_key(below, o->below_pk) != 0)
        return die("--below-pk takes 64 hex digits");
    /* Half of all keys sort below a random one: a few tries suffice. */
    int tries = 0;
    do {
        if (tries++ == 100000 || fresh_identity(&id) != 0)
            return die("cannot make an identity (below --below-pk)");
    } while (memcmp(id.pk, below, FE_PK_BYTES) >= 0);
    signer = id;
    if (o->steal_pk && hex_key(signer.pk, o->steal_pk) != 0)
        return die("--steal-pk takes 64 hex digits");
    /* With a stolen key the frame carries that key, but the signature is
     * made with our secret key: fe_seal_announce writes signer.pk and signs
     * with signer.sk. */
    ptrdiff_t len = fe_seal_announce(frame, sizeof(frame), &signer, (uint32_t)o->seq, o->name, 0,
                                     ADV_HOPS, 30u * 60u * 1000u);
    if (len <= 0 || fe_wire_decode(&f, frame, (size_t)len) != 0)
        return die("cannot build the announce");
    if (!o->steal_pk && fe_verify_announce(&f) != 0)
        return die("our own announce does not verify");
    if (send_all(fd, o, frame, (size_t)len) != 0)
        return die("send failed");
    fe_ident_addr(addr, signer.pk);
    print_hex("address", addr, sizeof(addr));
    print_hex("public_key", signer.pk, sizeof(signer.pk));
    fe_ident_wipe(&id);
    fe_ident_wipe(&signer);
    return 0;
}

/* ------------------------------------------------------------------ */
/* forge-receipt */

static int cmd_forge_receipt(const opts *o, int fd)
{
    static uint8_t ids[ADV_IDS_MAX][FE_MSG_ID_BYTES];
    size_t id_count = 0;
    unsigned long receipts = 0, summaries = 0;
    uint8_t buf[FE_FRAME_MAX + 1], frame[FE_FRAME_MAX];
    FILE *out = NULL;

    if (!o->listen || !o->to_count || !o->want)
        return die("forge-receipt needs --listen, --to and --want");
    if (o->ids_out && !(out = fopen(o->ids_out, "w")))
        return die("cannot open --ids-out");
    double end = now_s() + o->seconds, next_ask = 0;
    opts relay = *o;
    relay.to_count = 1; /* the first --to: the daemon relaying to us */
    while (!stop_flag && now_s() < end && id_count < o->want) {
        /* Every second, a summary holding nothing, as a peer that just
         * arrived would send: the relay offers whatever it holds, even if
         * it suppressed its first relay (it had heard the copy from enough
         * other peers, who are not us). Only to the relay, so the sender
         * is not prompted to resend to it. */
        if (now_s() >= next_ask) {
            ptrdiff_t len = fe_wire_summary(frame, sizeof(frame), randombytes_random(), 0, 0,
                                            UINT32_MAX, NULL, 0);
            if (len > 0 && send_all(fd, &relay, frame, (size_t)len) == 0)
                summaries++;
            next_ask = now_s() + 1.0;
        }
        ssize_t n = recv_one(fd, buf, sizeof(buf));
        fe_frame f;
        if (n < 0)
            return die("receive failed");
        if (n == 0 || (size_t)n > FE_FRAME_MAX || fe_wire_decode(&f, buf, (size_t)n) != 0 ||
            (f.type != FE_T_DM && f.type != FE_T_ANON))
            continue;
        size_t i = 0;
        while (i < id_count && memcmp(ids[i], f.id, FE_MSG_ID_BYTES) != 0)
            i++;
        if (i < id_count || id_count == ADV_IDS_MAX)
            continue;
        memcpy(ids[id_count++], f.id, FE_MSG_ID_BYTES);
        if (out) {
            char hex[2 * FE_MSG_ID_BYTES + 1];
            sodium_bin2hex(hex, sizeof(hex), f.id, FE_MSG_ID_BYTES);
            fprintf(out, "%s\n", hex);
            fflush(out);
        }
        for (unsigned long k = 0; k < o->per_id; k++) {
            uint8_t secret[FE_RECEIPT_SECRET_BYTES], rid[FE_MSG_ID_BYTES];
            randombytes_buf(secret, sizeof(secret));
            fe_wire_receipt_id(rid, secret);
            if (memcmp(rid, f.id, FE_MSG_ID_BYTES) == 0)
                continue; /* a preimage by luck (p = 2^-64): not a forgery */
            fe_wire_receipt(frame, ADV_HOPS, FE_LIFETIME_DEFAULT_MS, secret);
            if (send_all(fd, o, frame, FE_RECEIPT_BYTES) != 0)
                return die("send failed");
            pace(++receipts, 5000);
        }
        /* "I hold its receipt": the message's token with the receipt bit. */
        uint32_t tok = fe_wire_token(f.id, 1);
        ptrdiff_t len =
            fe_wire_summary(frame, sizeof(frame), randombytes_random(), 1, 0, UINT32_MAX, &tok, 1);
        if (len > 0 && send_all(fd, o, frame, (size_t)len) == 0)
            summaries++;
    }
    if (out)
        fclose(out);
    printf("ids=%zu receipts=%lu summaries=%lu\n", id_count, receipts, summaries);
    if (id_count < o->want) {
        fprintf(stderr, "adversary: saw %zu of %lu private messages within %.0f s\n", id_count,
                o->want, o->seconds);
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* record, inspect, replay */

static int cmd_record(const opts *o, int fd)
{
    uint8_t buf[FE_FRAME_MAX + 1];
    unsigned long n_rec = 0;
    FILE *out;

    if (!o->listen || !o->out)
        return die("record needs --listen and --out");
    if (!(out = fopen(o->out, "wb")))
        return die("cannot open --out");
    double end = now_s() + o->seconds;
    while (!stop_flag && now_s() < end && n_rec < ADV_RECORD_MAX) {
        ssize_t n = recv_one(fd, buf, sizeof(buf));
        if (n < 0) {
            fclose(out);
            return die("receive failed");
        }
        if (n == 0)
            continue;
        uint8_t hdr[2];
        fe_put_be16(hdr, (uint16_t)n);
        if (fwrite(hdr, 1, 2, out) != 2 || fwrite(buf, 1, (size_t)n, out) != (size_t)n) {
            fclose(out);
            return die("cannot write the recording");
        }
        fflush(out); /* readable by inspect while recording */
        n_rec++;
    }
    fclose(out);
    printf("recorded %lu datagrams\n", n_rec);
    return 0;
}

typedef struct recording {
    uint8_t *data;
    size_t len;
} recording;

static int load(recording *r, const char *path)
{
    FILE *f = fopen(path, "rb");
    long size = -1;
    r->data = NULL;
    r->len = 0;
    if (f && fseek(f, 0, SEEK_END) == 0)
        size = ftell(f);
    /* A recording is bounded; a longer file is read up to the bound. */
    size_t cap = (size_t)ADV_RECORD_MAX * (FE_FRAME_MAX + 3);
    if (size >= 0 && (size_t)size < cap)
        cap = (size_t)size;
    if (size >= 0 && fseek(f, 0, SEEK_SET) == 0)
        r->data = malloc(cap ? cap : 1);
    if (r->data)
        r->len = fread(r->data, 1, cap, f);
    if (f)
        fclose(f);
    return r->data ? 0 : -1;
}

/* The next datagram of a recording: its length, 0 at the end or at a
 * damaged tail. */
static size_t next(const recording *r, size_t *pos, const uint8_t **dg)
{
    if (*pos + 2 > r->len)
        return 0;
    size_t n = fe_get_be16(r->data + *pos);
    if (n == 0 || n > FE_FRAME_MAX + 1 || *pos + 2 + n > r->len)
        return 0;
    *dg = r->data + *pos + 2;
    *pos += 2 + n;
    return n;
}

static int cmd_inspect(const opts *o)
{
    static const char *const names[7] = {"dm",       "anon",    "group", "receipt",
                                         "announce", "summary", "frag"};
    unsigned long by_type[7] = {0}, total = 0, bad = 0;
    recording r;
    const uint8_t *dg;
    size_t pos = 0, n;

    if (!o->in || load(&r, o->in) != 0)
        return die("inspect needs a readable --in");
    while ((n = next(&r, &pos, &dg)) != 0) {
        fe_frame f;
        total++;
        if (n <= FE_FRAME_MAX && fe_wire_decode(&f, dg, n) == 0 && f.type < 7)
            by_type[f.type]++;
        else
            bad++;
    }
    free(r.data);
    printf("datagrams=%lu", total);
    for (int i = 0; i < 7; i++)
        printf(" %s=%lu", names[i], by_type[i]);
    printf(" malformed=%lu\n", bad);
    return 0;
}

static int cmd_replay(const opts *o, int fd)
{
    recording r;
    const uint8_t *dg;
    uint8_t buf[FE_FRAME_MAX + 1];
    size_t pos = 0, n;
    unsigned long sent = 0, refreshed = 0;

    if (!o->in || !o->to_count || load(&r, o->in) != 0)
        return die("replay needs a readable --in and --to");
    double end = now_s() + o->seconds;
    while (!stop_flag && now_s() < end && (n = next(&r, &pos, &dg)) != 0) {
        fe_frame f;
        memcpy(buf, dg, n);
        if (o->refresh && n <= FE_FRAME_MAX && fe_wire_decode(&f, buf, n) == 0 &&
            f.type <= FE_T_ANNOUNCE) {
            fe_wire_patch_item(buf, n, ADV_HOPS, FE_LIFETIME_MAX_MS);
            refreshed++;
        }
        if (send_all(fd, o, buf, n) != 0) {
            free(r.data);
            return die("send failed");
        }
        pace(++sent, 5000);
    }
    free(r.data);
    printf("replayed=%lu refreshed=%lu\n", sent, refreshed);
    return 0;
}

/* ------------------------------------------------------------------ */
/* flood */

static int cmd_flood(const opts *o, int fd)
{
    fe_identity me;
    uint8_t to_pk[FE_PK_BYTES], to_xpk[FE_XPK_BYTES], to_addr[FE_ADDR_BYTES];
    uint8_t k[FE_SHARED_KEY_BYTES], frame[FE_FRAME_MAX], id[FE_MSG_ID_BYTES];
    char text[FE_TEXT_MAX + 1];
    unsigned long sent = 0;

    if (!o->to_pk || !o->to_count || !o->count || hex_key(to_pk, o->to_pk) != 0)
        return die("flood needs --to, --count and --to-pk (64 hex digits)");
    if (fresh_identity(&me) != 0 || fe_ident_xpk(to_xpk, to_pk) != 0 ||
        fe_seal_shared_key(k, to_xpk, me.xsk) != 0)
        return die("cannot set up the keys");
    fe_ident_addr(to_addr, to_pk);
    if (o->announce) {
        /* So that the recipient can open what follows: a flood of messages
         * it can read is the hardest case for the relay in between. */
        ptrdiff_t len = fe_seal_announce(frame, sizeof(frame), &me, 1, o->announce, 0, ADV_HOPS,
                                         30u * 60u * 1000u);
        if (len <= 0 || send_all(fd, o, frame, (size_t)len) != 0)
            return die("cannot send the announce");
        pause_ms(500); /* let it spread before the messages that need it */
    }
    double t0 = now_s(), end = t0 + o->seconds;
    while (sent < o->count && !stop_flag && now_s() < end) {
        uint8_t salt[FE_SALT_BYTES];
        int tl = snprintf(text, sizeof(text), "%s-%lu", o->prefix, sent);
        randombytes_buf(salt, sizeof(salt));
        ptrdiff_t len =
            fe_seal_dm(frame, sizeof(frame), id, k, me.addr, to_addr, salt, (const uint8_t *)text,
                       (size_t)tl, ADV_HOPS, FE_LIFETIME_DEFAULT_MS);
        if (len <= 0)
            return die("cannot seal a message");
        if (send_all(fd, o, frame, (size_t)len) != 0)
            return die("send failed");
        pace(++sent, o->rate);
    }
    char hint[2 * FE_HINT_BYTES + 1];
    sodium_bin2hex(hint, sizeof(hint), me.addr, FE_HINT_BYTES);
    printf("sent=%lu origin=%s ms=%.0f\n", sent, hint, (now_s() - t0) * 1000.0);
    sodium_memzero(k, sizeof(k));
    fe_ident_wipe(&me);
    return sent == o->count ? 0 : die("the flood ran out of time");
}

/* ------------------------------------------------------------------ */
/* tamper */

typedef struct tally {
    unsigned long malformed, auth, control;
} tally;

static int put(int fd, const opts *o, const uint8_t *b, size_t len)
{
    int rc = send_all(fd, o, b, len);
    pause_ms(2); /* a handful of frames: no reason to race the receiver */
    return rc;
}

/* All fragments of frame at mtu, in order or reversed; fragment `bad`
 * (if < count) with one payload byte flipped, or cut by `cut` bytes
 * and the fragments after it left out. */
static int put_frags(int fd, const opts *o, const uint8_t *frame, size_t len, size_t mtu,
                     int reverse, size_t bad, size_t cut)
{
    size_t count = fe_frag_count(len, mtu);
    uint8_t frag[FE_FRAME_MAX];
    if (count < 2)
        return -1;
    for (size_t j = 0; j < count; j++) {
        size_t i = reverse ? count - 1 - j : j;
        ptrdiff_t fl = fe_frag_make(frag, sizeof(frag), frame, len, mtu, (unsigned)i);
        if (fl <= FE_FRAG_HDR_BYTES + 1)
            return -1;
        if (i == bad && cut == 0)
            frag[fl - 1] ^= 0x01;
        if (i == bad && cut) {
            return put(fd, o, frag, (size_t)fl - cut);
        }
        if (put(fd, o, frag, (size_t)fl) != 0)
            return -1;
    }
    return 0;
}

/* A fragment header with nothing behind it that fits: index, count, and
 * a payload of plen bytes. */
static int put_frag_header(int fd, const opts *o, unsigned index, unsigned count, size_t plen)
{
    uint8_t frag[FE_FRAG_HDR_BYTES + FE_FRAME_MAX];
    frag[0] = fe_wire_type_byte(FE_T_FRAG, 0);
    frag[1] = (uint8_t)index;
    frag[2] = (uint8_t)count;
    randombytes_buf(frag + 3, 4 + plen);
    return put(fd, o, frag, FE_FRAG_HDR_BYTES + plen);
}

static int tamper_dm(int fd, const opts *o, const uint8_t *dm, size_t len, tally *t)
{
    uint8_t b[FE_FRAME_MAX], outer[FE_FRAME_MAX];
    int rc = 0;

    /* Frames that open to nothing: each one is one failed open at the
     * recipient (the copies with the genuine id are retried, as the
     * genuine copy might come after them). */
    const size_t flips[] = {
        len - 1,                                                 /* the text's last byte */
        FE_ITEM_HDR_BYTES + 2 * FE_HINT_BYTES + FE_MSG_ID_BYTES, /* the tag */
        FE_ITEM_HDR_BYTES + 2 * FE_HINT_BYTES,                   /* the message id */
    };
    for (size_t i = 0; i < sizeof(flips) / sizeof(flips[0]); i++) {
        memcpy(b, dm, len);
        b[flips[i]] ^= 0x20;
        rc |= put(fd, o, b, len);
        t->auth++;
    }
    if (len >= FE_DM_OVERHEAD + 5) { /* shortened text, same header */
        rc |= put(fd, o, dm, len - 5);
        t->auth++;
    }
    /* Frames no decoder accepts. */
    rc |= put(fd, o, dm, FE_DM_OVERHEAD - 1); /* shorter than the header */
    memcpy(b, dm, len);
    b[0] = (uint8_t)((b[0] & 0x3f) | 0x80); /* protocol version 2 */
    rc |= put(fd, o, b, len);
    b[0] = fe_wire_type_byte(7, 0); /* no such type */
    rc |= put(fd, o, b, len);
    t->malformed += 3;
    /* Fragment headers declaring sizes no frame has: a count over the
     * limit, 64 chunks of 100 bytes, a last fragment of 800 of 2. */
    rc |= put_frag_header(fd, o, 0, 200, 20);
    rc |= put_frag_header(fd, o, 0, FE_FRAG_MAX_COUNT, 100);
    rc |= put_frag_header(fd, o, 1, 2, 800);
    t->malformed += 3;
    /* Fragments of the message itself. Each variant uses its own hop
     * budget, so its frame (and fragment key) differs from the others'. */
    memcpy(b, dm, len);
    fe_wire_patch_item(b, len, 10, FE_LIFETIME_DEFAULT_MS);
    rc |= put_frags(fd, o, b, len, ADV_FRAG_MTU, 0, 1, 3); /* middle one truncated */
    t->malformed++;
    fe_wire_patch_item(b, len, 11, FE_LIFETIME_DEFAULT_MS);
    rc |= put_frags(fd, o, b, len, ADV_FRAG_MTU, 0, 1, 0); /* one bit flipped */
    t->malformed++;
    /* A fragment whose reassembled frame is itself a fragment. */
    fe_wire_patch_item(b, len, 12, FE_LIFETIME_DEFAULT_MS);
    ptrdiff_t ol = fe_frag_make(outer, sizeof(outer), b, len, ADV_FRAG_MTU, 0);
    if (ol <= 0 || put_frags(fd, o, outer, (size_t)ol, ADV_NESTED_MTU, 0, SIZE_MAX, 0) != 0)
        rc = -1;
    t->malformed++;
    return rc;
}

static int cmd_tamper(const opts *o, int fd)
{
    recording r;
    const uint8_t *dg;
    uint8_t dst[FE_ADDR_BYTES], dm[FE_FRAME_MAX];
    size_t pos = 0, n, dm_len = 0, dst_len = 0;
    tally t = {0, 0, 0};

    if (!o->in || !o->to_count || load(&r, o->in) != 0)
        return die("tamper needs a readable --in and --to");
    if (o->dst) {
        int d = fe_addr_from_hex(dst, o->dst);
        if (d < FE_HINT_BYTES) {
            free(r.data);
            return die("--dst takes at least 8 hex digits of an address");
        }
        dst_len = FE_HINT_BYTES;
    }
    while (!dm_len && (n = next(&r, &pos, &dg)) != 0) {
        fe_frame f;
        if (n <= FE_FRAME_MAX && fe_wire_decode(&f, dg, n) == 0 && f.type == FE_T_DM &&
            (!dst_len || memcmp(f.dst, dst, dst_len) == 0)) {
            memcpy(dm, dg, n);
            dm_len = n;
        }
    }
    free(r.data);
    if (!dm_len)
        return die("no private message (to --dst) in the recording");
    if (tamper_dm(fd, o, dm, dm_len, &t) != 0)
        return die("send failed");
    if (!o->no_control) {
        /* The control: the genuine frame, fragmented by us, last fragment
         * first. It must be delivered, once, after all the damage above. */
        fe_wire_patch_item(dm, dm_len, 13, FE_LIFETIME_DEFAULT_MS);
        if (put_frags(fd, o, dm, dm_len, ADV_FRAG_MTU, 1, SIZE_MAX, 0) != 0)
            return die("send failed");
        t.control++;
    }
    printf("malformed=%lu auth=%lu control=%lu\n", t.malformed, t.auth, t.control);
    return 0;
}

/* ------------------------------------------------------------------ */

static int usage(void)
{
    fprintf(stderr, "usage: adversary forge-announce|forge-receipt|record|inspect|replay|flood|"
                    "tamper [OPTIONS] (see the comment at the top of adversary.c)\n");
    return 2;
}

static int parse(opts *o, int argc, char **argv)
{
    enum {
        O_LISTEN = 256,
        O_TO,
        O_SECONDS,
        O_NAME,
        O_STEAL,
        O_SEQ,
        O_PER_ID,
        O_WANT,
        O_IDS_OUT,
        O_OUT,
        O_IN,
        O_REFRESH,
        O_TO_PK,
        O_COUNT,
        O_RATE,
        O_ANNOUNCE,
        O_PREFIX,
        O_DST,
        O_NO_CONTROL,
        O_BELOW
    };
    static const struct option lo[] = {{"listen", required_argument, NULL, O_LISTEN},
                                       {"to", required_argument, NULL, O_TO},
                                       {"seconds", required_argument, NULL, O_SECONDS},
                                       {"name", required_argument, NULL, O_NAME},
                                       {"steal-pk", required_argument, NULL, O_STEAL},
                                       {"seq", required_argument, NULL, O_SEQ},
                                       {"per-id", required_argument, NULL, O_PER_ID},
                                       {"want", required_argument, NULL, O_WANT},
                                       {"ids-out", required_argument, NULL, O_IDS_OUT},
                                       {"out", required_argument, NULL, O_OUT},
                                       {"in", required_argument, NULL, O_IN},
                                       {"refresh", no_argument, NULL, O_REFRESH},
                                       {"to-pk", required_argument, NULL, O_TO_PK},
                                       {"count", required_argument, NULL, O_COUNT},
                                       {"rate", required_argument, NULL, O_RATE},
                                       {"announce", required_argument, NULL, O_ANNOUNCE},
                                       {"prefix", required_argument, NULL, O_PREFIX},
                                       {"dst", required_argument, NULL, O_DST},
                                       {"no-control", no_argument, NULL, O_NO_CONTROL},
                                       {"below-pk", required_argument, NULL, O_BELOW},
                                       {NULL, 0, NULL, 0}};
    unsigned long v;
    int c;

    memset(o, 0, sizeof(*o));
    o->seconds = ADV_SECONDS_DEFAULT;
    o->seq = 1;
    o->per_id = 10;
    o->rate = 20000;
    o->prefix = "flood";
    if (argc < 2)
        return -1;
    o->cmd = argv[1];
    optind = 2;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case O_LISTEN:
            if (parse_ulong(optarg, 65535, &v) != 0 || v == 0)
                return -1;
            o->listen = (unsigned)v;
            break;
        case O_TO:
            if (o->to_count == ADV_TO_MAX || parse_ulong(optarg, 65535, &v) != 0 || v == 0)
                return -1;
            o->to[o->to_count++] = (unsigned)v;
            break;
        case O_SECONDS:
            if (parse_ulong(optarg, 600, &v) != 0 || v == 0)
                return -1;
            o->seconds = (double)v;
            break;
        case O_NAME:
            o->name = optarg;
            break;
        case O_STEAL:
            o->steal_pk = optarg;
            break;
        case O_SEQ:
            if (parse_ulong(optarg, UINT32_MAX, &o->seq) != 0)
                return -1;
            break;
        case O_PER_ID:
            if (parse_ulong(optarg, 1000, &o->per_id) != 0)
                return -1;
            break;
        case O_WANT:
            if (parse_ulong(optarg, ADV_IDS_MAX, &o->want) != 0)
                return -1;
            break;
        case O_IDS_OUT:
            o->ids_out = optarg;
            break;
        case O_OUT:
            o->out = optarg;
            break;
        case O_IN:
            o->in = optarg;
            break;
        case O_REFRESH:
            o->refresh = 1;
            break;
        case O_TO_PK:
            o->to_pk = optarg;
            break;
        case O_COUNT:
            if (parse_ulong(optarg, ADV_FLOOD_MAX, &o->count) != 0)
                return -1;
            break;
        case O_RATE:
            if (parse_ulong(optarg, 1000000, &o->rate) != 0)
                return -1;
            break;
        case O_ANNOUNCE:
            o->announce = optarg;
            break;
        case O_PREFIX:
            o->prefix = optarg;
            break;
        case O_DST:
            o->dst = optarg;
            break;
        case O_NO_CONTROL:
            o->no_control = 1;
            break;
        case O_BELOW:
            o->below_pk = optarg;
            break;
        default:
            return -1;
        }
    }
    return optind == argc ? 0 : -1;
}

int main(int argc, char **argv)
{
    opts o;
    int rc;

    if (parse(&o, argc, argv) != 0)
        return usage();
    if (sodium_init() < 0)
        return die("libsodium failed to initialise");
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop; /* no SA_RESTART: poll returns, the loop ends */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    setvbuf(stdout, NULL, _IOLBF, 0);

    if (strcmp(o.cmd, "inspect") == 0)
        return cmd_inspect(&o);
    int fd = open_socket(o.listen);
    if (fd < 0) {
        fprintf(stderr, "adversary: cannot bind 127.0.0.1:%u: %s\n", o.listen, strerror(errno));
        return 1;
    }
    if (o.listen)
        printf("listening port=%u\n", o.listen); /* the tests wait for this line */
    if (strcmp(o.cmd, "forge-announce") == 0)
        rc = cmd_forge_announce(&o, fd);
    else if (strcmp(o.cmd, "forge-receipt") == 0)
        rc = cmd_forge_receipt(&o, fd);
    else if (strcmp(o.cmd, "record") == 0)
        rc = cmd_record(&o, fd);
    else if (strcmp(o.cmd, "replay") == 0)
        rc = cmd_replay(&o, fd);
    else if (strcmp(o.cmd, "flood") == 0)
        rc = cmd_flood(&o, fd);
    else if (strcmp(o.cmd, "tamper") == 0)
        rc = cmd_tamper(&o, fd);
    else
        rc = usage();
    close(fd);
    return rc;
}
