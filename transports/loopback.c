/* The loopback pseudo-transport (loopback.h). */
#include "loopback.h"

#include <stdlib.h>
#include <string.h>

#define NONE UINT32_MAX

/* One frame's bytes, shared by every receiver of a broadcast. */
typedef struct lb_buf {
    uint32_t refs;
    size_t len;
    uint8_t data[];
} lb_buf;

/* One frame in flight to one receiver. */
typedef struct lb_pending {
    uint64_t due_ms;
    uint64_t seq; /* ties on due_ms go in send order */
    lb_buf *buf;
    uint32_t from, to;
    uint32_t link_to; /* the receiver's link id */
    uint32_t p2p;     /* index into net->p2p, or NONE for the broadcast medium */
    uint32_t gen;     /* p2p link generation at send: a mismatch means it went down */
} lb_pending;

typedef struct lb_p2p {
    uint32_t ep[2];
    uint32_t link[2];
    uint32_t gen; /* bumped when the slot is closed, so old frames are recognised */
    uint8_t up;
} lb_p2p;

typedef struct lb_ep {
    fe_node *node;
    void *user;
    uint8_t online;
    uint8_t bcast; /* attached to the broadcast medium */
    uint32_t bcast_link;
    uint32_t *nbr; /* broadcast neighbours, in order of connection */
    size_t nbr_len, nbr_cap;
    uint32_t p2p[FE_LOOPNET_P2P_PER_EP_MAX]; /* indices into net->p2p */
    size_t p2p_len;
} lb_ep;

struct fe_loopnet {
    const fe_env *rng;
    fe_loopnet_medium medium[2]; /* [0] broadcast, [1] point-to-point */
    fe_loopnet_cut_fn cut;
    void *cut_ctx;
    fe_loopnet_rx_fn rx;
    void *rx_ctx;

    lb_ep *ep;
    size_t ep_len, ep_cap;

    lb_p2p *p2p;
    size_t p2p_len, p2p_cap;
    uint32_t p2p_free; /* head of the free list threaded through ep[0], or NONE */

    lb_pending *heap; /* binary min-heap on (due_ms, seq) */
    size_t heap_len, heap_cap;
    uint64_t seq;

    fe_loopnet_counters c;
};

static fe_loopnet_medium *medium_of(fe_loopnet *net, enum fe_link_kind kind)
{
    return &net->medium[kind == FE_LINK_P2P ? 1 : 0];
}

static int valid_ep(const fe_loopnet *net, uint32_t ep)
{
    return net && ep < net->ep_len;
}

/* A uniform double in [0, 1) from 53 random bits. */
static double rand_unit(const fe_loopnet *net)
{
    uint8_t b[8];
    uint64_t v = 0;
    fe_env_rand(net->rng, b, sizeof b);
    for (size_t i = 0; i < sizeof b; i++)
        v = (v << 8) | b[i];
    return (double)(v >> 11) * (1.0 / 9007199254740992.0);
}

/* Draw only when the probability is strictly between 0 and 1, so a clean
 * medium consumes no randomness. */
static int chance(const fe_loopnet *net, double p)
{
    if (p <= 0.0)
        return 0;
    if (p >= 1.0)
        return 1;
    return rand_unit(net) < p;
}

/* --- the frame queue --- */

static int before(const lb_pending *a, const lb_pending *b)
{
    return a->due_ms < b->due_ms || (a->due_ms == b->due_ms && a->seq < b->seq);
}

static void buf_unref(lb_buf *b)
{
    if (b && --b->refs == 0)
        free(b);
}

static int heap_push(fe_loopnet *net, const lb_pending *p)
{
    if (net->heap_len >= FE_LOOPNET_QUEUE_MAX)
        return FE_ERR_FULL;
    if (net->heap_len == net->heap_cap) {
        size_t cap = net->heap_cap ? net->heap_cap * 2 : 256;
        lb_pending *h = realloc(net->heap, cap * sizeof *h);
        if (!h)
            return FE_ERR_NOMEM;
        net->heap = h;
        net->heap_cap = cap;
    }
    size_t i = net->heap_len++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(p, &net->heap[parent]))
            break;
        net->heap[i] = net->heap[parent];
        i = parent;
    }
    net->heap[i] = *p;
    return 0;
}

static void heap_pop(fe_loopnet *net, lb_pending *out)
{
    *out = net->heap[0];
    lb_pending last = net->heap[--net->heap_len];
    size_t n = net->heap_len, i = 0;
    if (n == 0)
        return;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const lb_pending *best = &last;
        if (l < n && before(&net->heap[l], best)) {
            m = l;
            best = &net->heap[l];
        }
        if (r < n && before(&net->heap[r], best))
            m = r;
        if (m == i)
            break;
        net->heap[i] = net->heap[m];
        i = m;
    }
    net->heap[i] = last;
}

/* --- lifetime --- */

int fe_loopnet_new(fe_loopnet **out, const fe_env *rng)
{
    if (!out)
        return FE_ERR_INVALID;
    *out = NULL;
    fe_loopnet *net = calloc(1, sizeof *net);
    if (!net)
        return FE_ERR_NOMEM;
    net->rng = rng;
    for (int i = 0; i < 2; i++)
        net->medium[i].mtu = FE_FRAME_MAX;
    net->p2p_free = NONE;
    *out = net;
    return 0;
}

void fe_loopnet_del(fe_loopnet *net)
{
    if (!net)
        return;
    for (size_t i = 0; i < net->heap_len; i++)
        buf_unref(net->heap[i].buf);
    free(net->heap);
    for (size_t i = 0; i < net->ep_len; i++)
        free(net->ep[i].nbr);
    free(net->ep);
    free(net->p2p);
    free(net);
}

int fe_loopnet_set_medium(fe_loopnet *net, enum fe_link_kind kind, const fe_loopnet_medium *m)
{
    if (!net || !m || (kind != FE_LINK_BROADCAST && kind != FE_LINK_P2P))
        return FE_ERR_INVALID;
    /* Written so that NaN fails too. */
    if (!(m->loss >= 0.0 && m->loss <= 1.0) || !(m->dup >= 0.0 && m->dup <= 1.0))
        return FE_ERR_INVALID;
    if (m->mtu < FE_MTU_MIN)
        return FE_ERR_INVALID;
    *medium_of(net, kind) = *m;
    return 0;
}

void fe_loopnet_set_cut(fe_loopnet *net, fe_loopnet_cut_fn fn, void *ctx)
{
    if (!net)
        return;
    net->cut = fn;
    net->cut_ctx = ctx;
}

void fe_loopnet_set_observer(fe_loopnet *net, fe_loopnet_rx_fn fn, void *ctx)
{
    if (!net)
        return;
    net->rx = fn;
    net->rx_ctx = ctx;
}

int fe_loopnet_add(fe_loopnet *net, uint32_t *ep, fe_node *node, void *user)
{
    if (!net || !ep)
        return FE_ERR_INVALID;
    if (net->ep_len >= FE_LOOPNET_ENDPOINTS_MAX)
        return FE_ERR_FULL;
    if (net->ep_len == net->ep_cap) {
        size_t cap = net->ep_cap ? net->ep_cap * 2 : 16;
        lb_ep *e = realloc(net->ep, cap * sizeof *e);
        if (!e)
            return FE_ERR_NOMEM;
        net->ep = e;
        net->ep_cap = cap;
    }
    lb_ep *e = &net->ep[net->ep_len];
    memset(e, 0, sizeof *e);
    e->node = node;
    e->user = user;
    e->online = 1;
    *ep = (uint32_t)net->ep_len++;
    return 0;
}

fe_node *fe_loopnet_node(const fe_loopnet *net, uint32_t ep)
{
    return valid_ep(net, ep) ? net->ep[ep].node : NULL;
}

void *fe_loopnet_user(const fe_loopnet *net, uint32_t ep)
{
    return valid_ep(net, ep) ? net->ep[ep].user : NULL;
}

size_t fe_loopnet_endpoint_count(const fe_loopnet *net)
{
    return net ? net->ep_len : 0;
}

/* --- point-to-point links --- */

static lb_p2p *p2p_find(fe_loopnet *net, uint32_t ep, uint32_t link, int *side)
{
    lb_ep *e = &net->ep[ep];
    for (size_t i = 0; i < e->p2p_len; i++) {
        lb_p2p *p = &net->p2p[e->p2p[i]];
        for (int s = 0; s < 2; s++) {
            if (p->ep[s] == ep && p->link[s] == link) {
                if (side)
                    *side = s;
                return p;
            }
        }
    }
    return NULL;
}

static int link_in_use(fe_loopnet *net, uint32_t ep, uint32_t link)
{
    const lb_ep *e = &net->ep[ep];
    return (e->bcast && e->bcast_link == link) || p2p_find(net, ep, link, NULL) != NULL;
}

static void ep_forget_p2p(lb_ep *e, uint32_t idx)
{
    for (size_t i = 0; i < e->p2p_len; i++) {
        if (e->p2p[i] == idx) {
            /* Keep the order: link ids are visited in order of creation. */
            memmove(&e->p2p[i], &e->p2p[i + 1], (e->p2p_len - i - 1) * sizeof e->p2p[0]);
            e->p2p_len--;
            return;
        }
    }
}

/* Close link idx. tell[s] says whether side s's engine hears of it. */
static void p2p_close(fe_loopnet *net, uint32_t idx, const int tell[2], uint64_t now_ms)
{
    lb_p2p *p = &net->p2p[idx];
    uint32_t ep[2] = {p->ep[0], p->ep[1]}, link[2] = {p->link[0], p->link[1]};
    p->up = 0;
    p->gen++;
    ep_forget_p2p(&net->ep[ep[0]], idx);
    ep_forget_p2p(&net->ep[ep[1]], idx);
    /* The free list reuses ep[0] as its next pointer. */
    p->ep[0] = net->p2p_free;
    net->p2p_free = idx;
    for (int s = 0; s < 2; s++) {
        fe_node *n = net->ep[ep[s]].node;
        if (tell[s] && n)
            (void)fe_node_link_down(n, link[s], now_ms);
    }
}

int fe_loopnet_p2p_up(fe_loopnet *net, uint32_t a, uint32_t link_a, uint32_t b, uint32_t link_b,
                      uint64_t now_ms)
{
    if (!valid_ep(net, a) || !valid_ep(net, b) || a == b)
        return FE_ERR_INVALID;
    lb_ep *ea = &net->ep[a], *eb = &net->ep[b];
    if (!ea->online || !eb->online || link_in_use(net, a, link_a) || link_in_use(net, b, link_b))
        return FE_ERR_INVALID;
    if (ea->p2p_len >= FE_LOOPNET_P2P_PER_EP_MAX || eb->p2p_len >= FE_LOOPNET_P2P_PER_EP_MAX)
        return FE_ERR_FULL;
    uint32_t idx;
    if (net->p2p_free != NONE) {
        idx = net->p2p_free;
        net->p2p_free = net->p2p[idx].ep[0];
    } else {
        if (net->p2p_len >= UINT32_MAX - 1)
            return FE_ERR_FULL;
        if (net->p2p_len == net->p2p_cap) {
            size_t cap = net->p2p_cap ? net->p2p_cap * 2 : 16;
            lb_p2p *p = realloc(net->p2p, cap * sizeof *p);
            if (!p)
                return FE_ERR_NOMEM;
            net->p2p = p;
            net->p2p_cap = cap;
        }
        idx = (uint32_t)net->p2p_len++;
        net->p2p[idx].gen = 0;
    }
    lb_p2p *p = &net->p2p[idx];
    p->ep[0] = a;
    p->ep[1] = b;
    p->link[0] = link_a;
    p->link[1] = link_b;
    p->up = 1;
    ea->p2p[ea->p2p_len++] = idx;
    eb->p2p[eb->p2p_len++] = idx;

    fe_link_info info = {.kind = FE_LINK_P2P, .mtu = net->medium[1].mtu};
    int told[2] = {0, 0};
    for (int s = 0; s < 2; s++) {
        fe_node *n = net->ep[p->ep[s]].node;
        if (!n)
            continue;
        int rc = fe_node_link_up(n, p->link[s], &info, now_ms);
        if (rc < 0) {
            /* Undo: the side that already accepted the link hears it go. */
            p2p_close(net, idx, told, now_ms);
            return rc;
        }
        told[s] = 1;
    }
    return 0;
}

int fe_loopnet_p2p_down(fe_loopnet *net, uint32_t a, uint32_t link_a, uint64_t now_ms)
{
    if (!valid_ep(net, a))
        return FE_ERR_NOTFOUND;
    lb_p2p *p = p2p_find(net, a, link_a, NULL);
    if (!p)
        return FE_ERR_NOTFOUND;
    const int tell[2] = {1, 1};
    p2p_close(net, (uint32_t)(p - net->p2p), tell, now_ms);
    return 0;
}

/* Close every point-to-point link of ep; tell_self says whether ep's own
 * engine hears of it (not when it crashed). */
static void p2p_close_all(fe_loopnet *net, uint32_t ep, int tell_self, uint64_t now_ms)
{
    lb_ep *e = &net->ep[ep];
    while (e->p2p_len > 0) {
        uint32_t idx = e->p2p[e->p2p_len - 1];
        int tell[2];
        for (int s = 0; s < 2; s++)
            tell[s] = net->p2p[idx].ep[s] == ep ? tell_self : 1;
        p2p_close(net, idx, tell, now_ms);
    }
}

/* --- broadcast medium and presence --- */

static int bcast_up(fe_loopnet *net, uint32_t ep, uint64_t now_ms)
{
    lb_ep *e = &net->ep[ep];
    if (!e->bcast || !e->online || !e->node)
        return 0;
    fe_link_info info = {.kind = FE_LINK_BROADCAST, .mtu = net->medium[0].mtu};
    return fe_node_link_up(e->node, e->bcast_link, &info, now_ms);
}

int fe_loopnet_bcast_attach(fe_loopnet *net, uint32_t ep, uint32_t link, uint64_t now_ms)
{
    if (!valid_ep(net, ep) || net->ep[ep].bcast || link_in_use(net, ep, link))
        return FE_ERR_INVALID;
    net->ep[ep].bcast = 1;
    net->ep[ep].bcast_link = link;
    int rc = bcast_up(net, ep, now_ms);
    if (rc < 0)
        net->ep[ep].bcast = 0;
    return rc;
}

int fe_loopnet_replace(fe_loopnet *net, uint32_t ep, fe_node *node, uint64_t now_ms)
{
    if (!valid_ep(net, ep))
        return FE_ERR_INVALID;
    /* A connection does not survive its engine: the peer sees it go. */
    p2p_close_all(net, ep, 0, now_ms);
    net->ep[ep].node = node;
    return bcast_up(net, ep, now_ms);
}

static int nbr_index(const lb_ep *e, uint32_t other)
{
    for (size_t i = 0; i < e->nbr_len; i++)
        if (e->nbr[i] == other)
            return (int)i;
    return -1;
}

static int nbr_add(lb_ep *e, uint32_t other)
{
    if (e->nbr_len >= FE_LOOPNET_NEIGHBOURS_MAX)
        return FE_ERR_FULL;
    if (e->nbr_len == e->nbr_cap) {
        size_t cap = e->nbr_cap ? e->nbr_cap * 2 : 8;
        uint32_t *n = realloc(e->nbr, cap * sizeof *n);
        if (!n)
            return FE_ERR_NOMEM;
        e->nbr = n;
        e->nbr_cap = cap;
    }
    e->nbr[e->nbr_len++] = other;
    return 0;
}

static void nbr_remove(lb_ep *e, uint32_t other)
{
    int i = nbr_index(e, other);
    if (i < 0)
        return;
    /* Keep the order: receivers are visited, and randomness drawn, in it. */
    memmove(&e->nbr[i], &e->nbr[i + 1], (e->nbr_len - (size_t)i - 1) * sizeof e->nbr[0]);
    e->nbr_len--;
}

int fe_loopnet_connect(fe_loopnet *net, uint32_t a, uint32_t b)
{
    if (!valid_ep(net, a) || !valid_ep(net, b) || a == b)
        return FE_ERR_INVALID;
    lb_ep *ea = &net->ep[a], *eb = &net->ep[b];
    if (nbr_index(ea, b) >= 0)
        return FE_ERR_DUPLICATE;
    if (ea->nbr_len >= FE_LOOPNET_NEIGHBOURS_MAX || eb->nbr_len >= FE_LOOPNET_NEIGHBOURS_MAX)
        return FE_ERR_FULL;
    int rc = nbr_add(ea, b);
    if (rc < 0)
        return rc;
    rc = nbr_add(eb, a);
    if (rc < 0)
        nbr_remove(ea, b);
    return rc;
}

int fe_loopnet_disconnect(fe_loopnet *net, uint32_t a, uint32_t b)
{
    if (!valid_ep(net, a) || !valid_ep(net, b) || a == b)
        return FE_ERR_INVALID;
    if (nbr_index(&net->ep[a], b) < 0)
        return FE_ERR_NOTFOUND;
    nbr_remove(&net->ep[a], b);
    nbr_remove(&net->ep[b], a);
    return 0;
}

int fe_loopnet_connected(const fe_loopnet *net, uint32_t a, uint32_t b)
{
    return valid_ep(net, a) && valid_ep(net, b) && nbr_index(&net->ep[a], b) >= 0;
}

int fe_loopnet_set_online(fe_loopnet *net, uint32_t ep, int online, uint64_t now_ms)
{
    if (!valid_ep(net, ep))
        return FE_ERR_INVALID;
    lb_ep *e = &net->ep[ep];
    online = online ? 1 : 0;
    if (e->online == online)
        return 0;
    if (!online) {
        p2p_close_all(net, ep, 1, now_ms);
        if (e->bcast && e->node)
            (void)fe_node_link_down(e->node, e->bcast_link, now_ms);
        e->online = 0;
        return 0;
    }
    e->online = 1;
    return bcast_up(net, ep, now_ms);
}

int fe_loopnet_online(const fe_loopnet *net, uint32_t ep)
{
    return valid_ep(net, ep) && net->ep[ep].online;
}

/* --- moving frames --- */

static uint64_t delay_ms(const fe_loopnet_medium *m, size_t len)
{
    uint64_t d = m->latency_ms;
    if (m->bitrate_bps > 0)
        d += ((uint64_t)len * 8u * 1000u + m->bitrate_bps - 1) / m->bitrate_bps;
    return d;
}

/* Queue the frame for one receiver, with the medium's loss, duplication and
 * the cut hook applied. */
static int enqueue(fe_loopnet *net, const fe_loopnet_medium *m, lb_buf *buf, uint32_t from,
                   uint32_t to, uint32_t link_to, uint32_t p2p, uint32_t gen, uint64_t now_ms)
{
    if (net->cut && net->cut(net->cut_ctx, from, to, now_ms)) {
        net->c.frames_cut++;
        return 0;
    }
    if (chance(net, m->loss)) {
        net->c.frames_lost++;
        return 0;
    }
    int copies = 1 + chance(net, m->dup);
    lb_pending p = {.due_ms = now_ms + delay_ms(m, buf->len),
                    .buf = buf,
                    .from = from,
                    .to = to,
                    .link_to = link_to,
                    .p2p = p2p,
                    .gen = gen};
    for (int i = 0; i < copies; i++) {
        p.seq = net->seq++;
        int rc = heap_push(net, &p);
        if (rc < 0) {
            net->c.frames_dropped++;
            return rc;
        }
        buf->refs++;
        if (i > 0)
            net->c.frames_duplicated++;
    }
    return 0;
}

int fe_loopnet_send(fe_loopnet *net, uint32_t ep, uint32_t link, const uint8_t *frame, size_t len,
                    uint64_t now_ms)
{
    if (!valid_ep(net, ep))
        return FE_ERR_INVALID;
    lb_ep *e = &net->ep[ep];
    int is_bcast = e->bcast && e->bcast_link == link;
    int side = 0;
    lb_p2p *p = is_bcast ? NULL : p2p_find(net, ep, link, &side);
    if (!e->online || !e->node || (!is_bcast && !p) || (!frame && len > 0)) {
        net->c.sends_refused++;
        return FE_ERR_INVALID;
    }
    const fe_loopnet_medium *m = &net->medium[is_bcast ? 0 : 1];
    if (len > m->mtu) {
        net->c.sends_refused++;
        return FE_ERR_TOOBIG;
    }
    lb_buf *buf = malloc(sizeof *buf + len);
    if (!buf) {
        net->c.sends_refused++;
        return FE_ERR_NOMEM;
    }
    /* The creator's reference keeps buf alive while receivers are queued. */
    buf->refs = 1;
    buf->len = len;
    if (len > 0)
        memcpy(buf->data, frame, len);
    net->c.frames_sent++;
    net->c.bytes_sent += len;

    int rc = 0;
    if (is_bcast) {
        for (size_t i = 0; i < e->nbr_len && rc == 0; i++) {
            uint32_t to = e->nbr[i];
            const lb_ep *r = &net->ep[to];
            if (!r->bcast)
                continue;
            rc = enqueue(net, m, buf, ep, to, r->bcast_link, NONE, 0, now_ms);
        }
    } else {
        uint32_t idx = (uint32_t)(p - net->p2p);
        int other = 1 - side;
        rc = enqueue(net, m, buf, ep, p->ep[other], p->link[other], idx, p->gen, now_ms);
    }
    buf_unref(buf);
    return rc;
}

uint64_t fe_loopnet_next_event_ms(const fe_loopnet *net)
{
    return net && net->heap_len > 0 ? net->heap[0].due_ms : UINT64_MAX;
}

size_t fe_loopnet_pending(const fe_loopnet *net)
{
    return net ? net->heap_len : 0;
}

/* Whether a frame popped from the queue may still reach its receiver. */
static int deliverable(const fe_loopnet *net, const lb_pending *p)
{
    const lb_ep *r = &net->ep[p->to];
    if (!r->online || !r->node)
        return 0;
    if (p->p2p == NONE)
        return r->bcast && r->bcast_link == p->link_to;
    const lb_p2p *l = &net->p2p[p->p2p];
    return l->up && l->gen == p->gen;
}

size_t fe_loopnet_step(fe_loopnet *net, uint64_t now_ms, size_t max_frames)
{
    size_t done = 0;
    while (net && done < max_frames && net->heap_len > 0 && net->heap[0].due_ms <= now_ms) {
        lb_pending p;
        heap_pop(net, &p);
        done++;
        if (!deliverable(net, &p)) {
            net->c.frames_dropped++;
            buf_unref(p.buf);
            continue;
        }
        net->c.frames_delivered++;
        net->c.bytes_delivered += p.buf->len;
        /* The engine may send (and so grow the queue) while it handles the
         * frame; p is a copy and buf holds its own reference. */
        int rc = fe_node_on_frame(net->ep[p.to].node, p.link_to, p.buf->data, p.buf->len, now_ms);
        if (net->rx)
            net->rx(net->rx_ctx, p.to, p.from, p.link_to, p.buf->data, p.buf->len, rc, now_ms);
        buf_unref(p.buf);
    }
    return done;
}

void fe_loopnet_get_counters(const fe_loopnet *net, fe_loopnet_counters *out)
{
    if (!out)
        return;
    if (!net) {
        memset(out, 0, sizeof *out);
        return;
    }
    *out = net->c;
}
