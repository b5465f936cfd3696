/* KISS framing: see kiss.h for the format. */
#include "kiss.h"

#include <string.h>

enum { ST_HUNT = 0, ST_DATA = 1, ST_ESC = 2 };

static inline int needs_escape(uint8_t b)
{
    return b == FE_KISS_FEND || b == FE_KISS_FESC;
}

static size_t put_escaped(uint8_t *out, size_t pos, uint8_t b)
{
    if (b == FE_KISS_FEND) {
        out[pos++] = FE_KISS_FESC;
        out[pos++] = FE_KISS_TFEND;
    } else if (b == FE_KISS_FESC) {
        out[pos++] = FE_KISS_FESC;
        out[pos++] = FE_KISS_TFESC;
    } else {
        out[pos++] = b;
    }
    return pos;
}

ptrdiff_t fe_kiss_encode(uint8_t *out, size_t out_len, const uint8_t *frame, size_t len)
{
    if (frame == NULL || len == 0)
        return FE_ERR_INVALID;
    if (len > FE_FRAME_MAX)
        return FE_ERR_TOOBIG;
    size_t need = 3 + len;
    for (size_t i = 0; i < len; i++)
        need += (size_t)needs_escape(frame[i]);
    if (out == NULL || need > out_len)
        return FE_ERR_TOOBIG;
    size_t pos = 0;
    out[pos++] = FE_KISS_FEND;
    pos = put_escaped(out, pos, FE_KISS_CMD_DATA);
    for (size_t i = 0; i < len; i++)
        pos = put_escaped(out, pos, frame[i]);
    out[pos++] = FE_KISS_FEND;
    return (ptrdiff_t)pos;
}

int fe_kiss_dec_init(fe_kiss_dec *d, size_t max_frame, fe_kiss_frame_cb on_frame, void *ctx)
{
    if (d == NULL || on_frame == NULL || max_frame == 0 || max_frame > FE_FRAME_MAX)
        return FE_ERR_INVALID;
    memset(d, 0, sizeof(*d));
    d->on_frame = on_frame;
    d->ctx = ctx;
    d->max_frame = max_frame;
    d->state = ST_HUNT;
    return 0;
}

void fe_kiss_dec_reset(fe_kiss_dec *d)
{
    if (d == NULL)
        return;
    d->len = 0;
    d->state = ST_HUNT;
}

static void start_frame(fe_kiss_dec *d)
{
    d->len = 0;
    d->state = ST_DATA;
}

/* A FEND closed the bytes collected so far. */
static void end_frame(fe_kiss_dec *d)
{
    if (d->len == 0) {
        /* FEND FEND is idle fill between frames. */
    } else if (d->buf[0] != FE_KISS_CMD_DATA) {
        d->stats.other++;
    } else if (d->len == 1) {
        d->stats.empty++;
    } else {
        d->stats.frames_ok++;
        d->on_frame(d->ctx, d->buf + 1, d->len - 1);
    }
    start_frame(d);
}

static inline void put_byte(fe_kiss_dec *d, uint8_t b)
{
    if (d->len == 1 + d->max_frame) {
        d->stats.oversize++;
        d->state = ST_HUNT;
        return;
    }
    d->buf[d->len++] = b;
}

size_t fe_kiss_dec_feed(fe_kiss_dec *d, const uint8_t *bytes, size_t len)
{
    if (d == NULL || bytes == NULL)
        return len;
    for (size_t i = 0; i < len; i++) {
        uint8_t b = bytes[i];
        switch (d->state) {
        case ST_HUNT:
            if (b == FE_KISS_FEND)
                start_frame(d);
            else
                d->stats.skipped++;
            break;
        case ST_DATA: {
            /* Fast path: copy the run of plain bytes up to the next special
             * byte or the end of the room, whichever is first. */
            size_t room = 1 + d->max_frame - d->len;
            size_t run = 0;
            while (run < room && i + run < len && !needs_escape(bytes[i + run]))
                run++;
            if (run > 0) {
                memcpy(d->buf + d->len, bytes + i, run);
                d->len += run;
                i += run - 1; /* the loop adds the last one */
                break;
            }
            if (b == FE_KISS_FEND)
                end_frame(d);
            else if (b == FE_KISS_FESC)
                d->state = ST_ESC;
            else
                put_byte(d, b); /* no room left: counts the frame as oversize */
            break;
        }
        case ST_ESC:
            if (b == FE_KISS_TFEND || b == FE_KISS_TFESC) {
                d->state = ST_DATA;
                put_byte(d, b == FE_KISS_TFEND ? FE_KISS_FEND : FE_KISS_FESC);
            } else if (b == FE_KISS_FEND) {
                /* The FEND still opens the next frame. */
                d->stats.bad_escape++;
                start_frame(d);
            } else {
                d->stats.bad_escape++;
                d->state = ST_HUNT;
            }
            break;
        default:
            d->state = ST_HUNT;
            break;
        }
    }
    return len;
}
