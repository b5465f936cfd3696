/* KISS framing, the host-to-TNC protocol of amateur packet radio TNCs and
 * of RNode-style LoRa firmware (KISS, Chepponis and Karn, 1987).
 *
 * One frame on the serial line is:
 *
 *     FEND  command  escape(data)  FEND
 *
 * FEND is 0xC0; escape() replaces 0xC0 with FESC TFEND (0xDB 0xDC) and 0xDB
 * with FESC TFESC (0xDB 0xDD). The command byte holds the TNC port in its
 * high nibble and the command in its low nibble; ferry sends and accepts
 * data frames (command 0) on port 0 only.
 *
 * KISS has no checksum: the radio checks its own packets, and a byte spoiled
 * on the serial line between host and TNC is caught only by the layers
 * above (ferry's frames are authenticated). The decoder rejects what it can
 * see is broken: bad escapes, oversize frames, other commands or ports.
 *
 * The decoder is a bounded push parser like stream.h: a fixed buffer in the
 * struct, every byte consumed, malformed input counted, never reported as an
 * error. */
#ifndef FE_KISS_H
#define FE_KISS_H

#include <stddef.h>
#include <stdint.h>

#include "../core/err.h"
#include "../core/limits.h"

#define FE_KISS_FEND 0xC0u
#define FE_KISS_FESC 0xDBu
#define FE_KISS_TFEND 0xDCu
#define FE_KISS_TFESC 0xDDu
#define FE_KISS_CMD_DATA 0x00u /* data frame, port 0 */

/* Worst case of fe_kiss_encode for len data bytes: two FENDs, the command
 * byte and every data byte escaped. */
#define FE_KISS_ENCODED_MAX(len) (3u + 2u * (size_t)(len))

/* Encode frame (1..FE_FRAME_MAX bytes) as a KISS data frame on port 0.
 * Returns the bytes written, FE_ERR_TOOBIG (len > FE_FRAME_MAX, or out_len
 * too small: FE_KISS_ENCODED_MAX(len) always suffices) or FE_ERR_INVALID
 * (NULL or empty frame). out is untouched on error. */
FE_MUST_CHECK ptrdiff_t fe_kiss_encode(uint8_t *out, size_t out_len, const uint8_t *frame,
                                       size_t len);

typedef void (*fe_kiss_frame_cb)(void *ctx, const uint8_t *frame, size_t len);

typedef struct fe_kiss_dec_stats {
    uint64_t frames_ok;  /* data frames delivered */
    uint64_t other;      /* well-formed frames with another command or port: ignored */
    uint64_t empty;      /* a command byte and no data */
    uint64_t oversize;   /* longer than max_frame: dropped up to the next FEND */
    uint64_t bad_escape; /* FESC followed by anything but TFEND/TFESC: frame dropped */
    uint64_t skipped;    /* bytes thrown away while hunting for a FEND */
} fe_kiss_dec_stats;

/* Caller-embedded decoder; fields are private except stats. */
typedef struct fe_kiss_dec {
    fe_kiss_frame_cb on_frame;
    void *ctx;
    size_t max_frame; /* data bytes, command excluded */
    size_t len;       /* bytes in buf, command byte included */
    uint8_t state;
    fe_kiss_dec_stats stats;
    uint8_t buf[1 + FE_FRAME_MAX];
} fe_kiss_dec;

/* Prepare d to deliver data frames of 1..max_frame bytes (at most
 * FE_FRAME_MAX) to on_frame, which gets a view valid only during the call.
 * Bytes before the first FEND are skipped. 0, or FE_ERR_INVALID. Nothing to
 * free. */
FE_MUST_CHECK int fe_kiss_dec_init(fe_kiss_dec *d, size_t max_frame, fe_kiss_frame_cb on_frame,
                                   void *ctx);

/* Forget any partial frame and hunt for the next FEND; counters are kept. */
void fe_kiss_dec_reset(fe_kiss_dec *d);

/* Push len bytes; calls on_frame for each data frame they complete. Always
 * consumes everything and returns len. on_frame must not call back into d. */
size_t fe_kiss_dec_feed(fe_kiss_dec *d, const uint8_t *bytes, size_t len);

#endif
