/* Byte-stream framing: see stream.h for the format. */
#include "stream.h"

#include <string.h>

/* CRC-16/X.25 step table for the reflected polynomial 0x8408: entry i is the
 * CRC register after shifting byte i through eight rounds from zero. The unit
 * test recomputes it bit by bit. */
/* clang-format off */
static const uint16_t crc_table[256] = {
    0x0000, 0x1189, 0x2312, 0x329B, 0x4624, 0x57AD, 0x6536, 0x74BF,
    0x8C48, 0x9DC1, 0xAF5A, 0xBED3, 0xCA6C, 0xDBE5, 0xE97E, 0xF8F7,
    0x1081, 0x0108, 0x3393, 0x221A, 0x56A5, 0x472C, 0x75B7, 0x643E,
    0x9CC9, 0x8D40, 0xBFDB, 0xAE52, 0xDAED, 0xCB64, 0xF9FF, 0xE876,
    0x2102, 0x308B, 0x0210, 0x1399, 0x6726, 0x76AF, 0x4434, 0x55BD,
    0xAD4A, 0xBCC3, 0x8E58, 0x9FD1, 0xEB6E, 0xFAE7, 0xC87C, 0xD9F5,
    0x3183, 0x200A, 0x1291, 0x0318, 0x77A7, 0x662E, 0x54B5, 0x453C,
    0xBDCB, 0xAC42, 0x9ED9, 0x8F50, 0xFBEF, 0xEA66, 0xD8FD, 0xC974,
    0x4204, 0x538D, 0x6116, 0x709F, 0x0420, 0x15A9, 0x2732, 0x36BB,
    0xCE4C, 0xDFC5, 0xED5E, 0xFCD7, 0x8868, 0x99E1, 0xAB7A, 0xBAF3,
    0x5285, 0x430C, 0x7197, 0x601E, 0x14A1, 0x0528, 0x37B3, 0x263A,
    0xDECD, 0xCF44, 0xFDDF, 0xEC56, 0x98E9, 0x8960, 0xBBFB, 0xAA72,
    0x6306, 0x728F, 0x4014, 0x519D, 0x2522, 0x34AB, 0x0630, 0x17B9,
    0xEF4E, 0xFEC7, 0xCC5C, 0xDDD5, 0xA96A, 0xB8E3, 0x8A78, 0x9BF1,
    0x7387, 0x620E, 0x5095, 0x411C, 0x35A3, 0x242A, 0x16B1, 0x0738,
    0xFFCF, 0xEE46, 0xDCDD, 0xCD54, 0xB9EB, 0xA862, 0x9AF9, 0x8B70,
    0x8408, 0x9581, 0xA71A, 0xB693, 0xC22C, 0xD3A5, 0xE13E, 0xF0B7,
    0x0840, 0x19C9, 0x2B52, 0x3ADB, 0x4E64, 0x5FED, 0x6D76, 0x7CFF,
    0x9489, 0x8500, 0xB79B, 0xA612, 0xD2AD, 0xC324, 0xF1BF, 0xE036,
    0x18C1, 0x0948, 0x3BD3, 0x2A5A, 0x5EE5, 0x4F6C, 0x7DF7, 0x6C7E,
    0xA50A, 0xB483, 0x8618, 0x9791, 0xE32E, 0xF2A7, 0xC03C, 0xD1B5,
    0x2942, 0x38CB, 0x0A50, 0x1BD9, 0x6F66, 0x7EEF, 0x4C74, 0x5DFD,
    0xB58B, 0xA402, 0x9699, 0x8710, 0xF3AF, 0xE226, 0xD0BD, 0xC134,
    0x39C3, 0x284A, 0x1AD1, 0x0B58, 0x7FE7, 0x6E6E, 0x5CF5, 0x4D7C,
    0xC60C, 0xD785, 0xE51E, 0xF497, 0x8028, 0x91A1, 0xA33A, 0xB2B3,
    0x4A44, 0x5BCD, 0x6956, 0x78DF, 0x0C60, 0x1DE9, 0x2F72, 0x3EFB,
    0xD68D, 0xC704, 0xF59F, 0xE416, 0x90A9, 0x8120, 0xB3BB, 0xA232,
    0x5AC5, 0x4B4C, 0x79D7, 0x685E, 0x1CE1, 0x0D68, 0x3FF3, 0x2E7A,
    0xE70E, 0xF687, 0xC41C, 0xD595, 0xA12A, 0xB0A3, 0x8238, 0x93B1,
    0x6B46, 0x7ACF, 0x4854, 0x59DD, 0x2D62, 0x3CEB, 0x0E70, 0x1FF9,
    0xF78F, 0xE606, 0xD49D, 0xC514, 0xB1AB, 0xA022, 0x92B9, 0x8330,
    0x7BC7, 0x6A4E, 0x58D5, 0x495C, 0x3DE3, 0x2C6A, 0x1EF1, 0x0F78,
};
/* clang-format on */

/* Running over a frame and its own FCS (low byte first) leaves this value in
 * the register before the final xor: the HDLC "good FCS" residue. */
#define CRC_INIT 0xFFFFu
#define CRC_GOOD_RESIDUE 0xF0B8u

enum { ST_HUNT = 0, ST_DATA = 1, ST_ESC = 2 };

static inline uint16_t crc_step(uint16_t crc, uint8_t b)
{
    return (uint16_t)((crc >> 8) ^ crc_table[(crc ^ b) & 0xFFu]);
}

static uint16_t crc_update(uint16_t crc, const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        crc = crc_step(crc, p[i]);
    return crc;
}

uint16_t fe_stream_crc16(const uint8_t *data, size_t len)
{
    if (data == NULL)
        len = 0;
    return (uint16_t)(crc_update(CRC_INIT, data, len) ^ 0xFFFFu);
}

static inline int needs_escape(uint8_t b)
{
    return b == FE_STREAM_FLAG || b == FE_STREAM_ESC;
}

static size_t put_stuffed(uint8_t *out, size_t pos, uint8_t b)
{
    if (needs_escape(b)) {
        out[pos++] = FE_STREAM_ESC;
        out[pos++] = (uint8_t)(b ^ FE_STREAM_ESC_XOR);
    } else {
        out[pos++] = b;
    }
    return pos;
}

ptrdiff_t fe_stream_encode(uint8_t *out, size_t out_len, const uint8_t *frame, size_t len)
{
    if (frame == NULL || len == 0)
        return FE_ERR_INVALID;
    if (len > FE_FRAME_MAX)
        return FE_ERR_TOOBIG;

    uint16_t fcs = fe_stream_crc16(frame, len);
    uint8_t tail[FE_STREAM_FCS_BYTES] = {(uint8_t)(fcs & 0xFFu), (uint8_t)(fcs >> 8)};

    /* Size first, so that out is never written past out_len nor half-filled. */
    size_t need = 2 + len + FE_STREAM_FCS_BYTES;
    for (size_t i = 0; i < len; i++)
        need += (size_t)needs_escape(frame[i]);
    for (size_t i = 0; i < FE_STREAM_FCS_BYTES; i++)
        need += (size_t)needs_escape(tail[i]);
    if (out == NULL || need > out_len)
        return FE_ERR_TOOBIG;

    size_t pos = 0;
    out[pos++] = FE_STREAM_FLAG;
    for (size_t i = 0; i < len; i++)
        pos = put_stuffed(out, pos, frame[i]);
    for (size_t i = 0; i < FE_STREAM_FCS_BYTES; i++)
        pos = put_stuffed(out, pos, tail[i]);
    out[pos++] = FE_STREAM_FLAG;
    return (ptrdiff_t)pos;
}

static void start_frame(fe_stream_dec *d)
{
    d->len = 0;
    d->crc = CRC_INIT;
    d->state = ST_DATA;
}

int fe_stream_dec_init(fe_stream_dec *d, size_t max_frame, fe_stream_frame_cb on_frame, void *ctx)
{
    if (d == NULL || on_frame == NULL || max_frame == 0 || max_frame > FE_FRAME_MAX)
        return FE_ERR_INVALID;
    memset(d, 0, sizeof(*d));
    d->on_frame = on_frame;
    d->ctx = ctx;
    d->max_frame = max_frame;
    fe_stream_dec_reset(d);
    return 0;
}

void fe_stream_dec_reset(fe_stream_dec *d)
{
    if (d == NULL)
        return;
    d->len = 0;
    d->crc = CRC_INIT;
    d->state = ST_HUNT;
}

/* A flag closed the bytes collected so far. */
static void end_frame(fe_stream_dec *d)
{
    size_t len = d->len;
    if (len == 0) {
        /* Back-to-back flags are idle fill, not an error. */
    } else if (len <= FE_STREAM_FCS_BYTES) {
        d->stats.runts++;
    } else if (d->crc != CRC_GOOD_RESIDUE) {
        d->stats.crc_errors++;
    } else {
        d->stats.frames_ok++;
        d->on_frame(d->ctx, d->buf, len - FE_STREAM_FCS_BYTES);
    }
    start_frame(d);
}

/* Append one unstuffed byte; an over-long frame is dropped whole. */
static inline void put_byte(fe_stream_dec *d, uint8_t b)
{
    if (d->len == d->max_frame + FE_STREAM_FCS_BYTES) {
        d->stats.oversize++;
        d->state = ST_HUNT;
        return;
    }
    d->buf[d->len++] = b;
    d->crc = crc_step(d->crc, b);
}

size_t fe_stream_dec_feed(fe_stream_dec *d, const uint8_t *bytes, size_t len)
{
    if (d == NULL || bytes == NULL)
        return len;
    size_t i = 0;
    while (i < len) {
        uint8_t b = bytes[i];
        switch (d->state) {
        case ST_HUNT:
            if (b == FE_STREAM_FLAG)
                start_frame(d);
            else
                d->stats.skipped++;
            i++;
            break;
        case ST_DATA: {
            /* Fast path: copy the run of plain bytes up to the next special
             * byte or the end of the room, whichever is first. */
            size_t room = d->max_frame + FE_STREAM_FCS_BYTES - d->len;
            size_t run = 0;
            while (run < room && i + run < len && !needs_escape(bytes[i + run]))
                run++;
            if (run > 0) {
                memcpy(d->buf + d->len, bytes + i, run);
                d->crc = crc_update(d->crc, bytes + i, run);
                d->len += run;
                i += run;
                break;
            }
            if (b == FE_STREAM_FLAG)
                end_frame(d);
            else if (b == FE_STREAM_ESC)
                d->state = ST_ESC;
            else
                put_byte(d, b); /* no room left: counts the frame as oversize */
            i++;
            break;
        }
        case ST_ESC:
            if (b == FE_STREAM_FLAG) {
                /* 0x7D 0x7E is the HDLC abort sequence; the flag still opens
                 * the next frame. */
                d->stats.aborted++;
                start_frame(d);
            } else if (b == (FE_STREAM_FLAG ^ FE_STREAM_ESC_XOR) ||
                       b == (FE_STREAM_ESC ^ FE_STREAM_ESC_XOR)) {
                d->state = ST_DATA;
                put_byte(d, (uint8_t)(b ^ FE_STREAM_ESC_XOR));
            } else {
                d->stats.aborted++;
                d->state = ST_HUNT;
            }
            i++;
            break;
        default:
            d->state = ST_HUNT;
            break;
        }
    }
    return len;
}
