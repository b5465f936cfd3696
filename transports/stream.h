/* Framing of whole frames over a byte stream (serial modems, RFCOMM).
 *
 * HDLC-like, one frame on the stream is:
 *
 *     0x7E  stuff(frame || fcs_lo || fcs_hi)  0x7E
 *
 * fcs is CRC-16/X.25, the HDLC frame check sequence (reflected polynomial
 * 0x8408, init 0xFFFF, final xor 0xFFFF), least significant byte first.
 * stuff() replaces 0x7E with 0x7D 0x5E and 0x7D with 0x7D 0x5D. Flags may
 * repeat between frames; the encoder writes both flags of every frame so a
 * receiver that lost the previous frame's end still sees this one's start.
 *
 * The decoder is a bounded push parser: no allocation, a fixed buffer inside
 * the struct, every byte consumed, and every malformed input counted rather
 * than reported as an error. It resynchronises on the next flag after
 * anything it cannot use. */
#ifndef FE_STREAM_H
#define FE_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "../core/err.h"
#include "../core/limits.h"

#define FE_STREAM_FLAG 0x7Eu
#define FE_STREAM_ESC 0x7Du
#define FE_STREAM_ESC_XOR 0x20u
#define FE_STREAM_FCS_BYTES 2

/* Worst case of fe_stream_encode for a frame of len bytes: two flags, and
 * every frame and FCS byte escaped. */
#define FE_STREAM_ENCODED_MAX(len) (2u + 2u * ((size_t)(len) + FE_STREAM_FCS_BYTES))

/* CRC-16/X.25 of data. The check value of "123456789" is 0x906E. */
uint16_t fe_stream_crc16(const uint8_t *data, size_t len);

/* Encode frame (1..FE_FRAME_MAX bytes) into out, flags included.
 * Returns the number of bytes written, FE_ERR_TOOBIG if len > FE_FRAME_MAX
 * or out_len is too small for this frame (FE_STREAM_ENCODED_MAX(len) always
 * suffices), or FE_ERR_INVALID for an empty or NULL frame. out is untouched
 * on error. */
FE_MUST_CHECK ptrdiff_t fe_stream_encode(uint8_t *out, size_t out_len, const uint8_t *frame,
                                         size_t len);

typedef void (*fe_stream_frame_cb)(void *ctx, const uint8_t *frame, size_t len);

typedef struct fe_stream_dec_stats {
    uint64_t frames_ok;  /* frames delivered through the callback */
    uint64_t crc_errors; /* complete frames whose FCS did not match: dropped */
    uint64_t runts;      /* 1 or 2 bytes between flags: too short to hold an FCS and data */
    uint64_t oversize;   /* frames longer than max_frame: dropped up to the next flag */
    uint64_t aborted;    /* frames cut by an invalid escape or by 0x7D 0x7E */
    uint64_t skipped;    /* bytes thrown away while hunting for a flag */
} fe_stream_dec_stats;

/* Caller-embedded decoder; fields are private except stats. */
typedef struct fe_stream_dec {
    fe_stream_frame_cb on_frame;
    void *ctx;
    size_t max_frame; /* frame bytes, FCS excluded */
    size_t len;       /* bytes in buf, FCS included */
    uint16_t crc;     /* running CRC over buf, without the final xor */
    uint8_t state;
    fe_stream_dec_stats stats;
    uint8_t buf[FE_FRAME_MAX + FE_STREAM_FCS_BYTES];
} fe_stream_dec;

/* Prepare d to deliver frames of 1..max_frame bytes (max_frame at most
 * FE_FRAME_MAX) to on_frame, which receives ctx and a view of the frame that
 * is valid only during the call. Bytes before the first flag are skipped.
 * Returns 0, or FE_ERR_INVALID for a NULL d or on_frame or a max_frame out of
 * range. There is nothing to free. */
FE_MUST_CHECK int fe_stream_dec_init(fe_stream_dec *d, size_t max_frame,
                                     fe_stream_frame_cb on_frame, void *ctx);

/* Forget any partial frame and hunt for the next flag (after a reconnect, for
 * instance). Counters are kept. */
void fe_stream_dec_reset(fe_stream_dec *d);

/* Push len bytes; calls on_frame for each good frame they complete. Always
 * consumes everything and returns len. on_frame must not call back into d. */
size_t fe_stream_dec_feed(fe_stream_dec *d, const uint8_t *bytes, size_t len);

#endif
