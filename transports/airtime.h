/* Airtime of radio frames, per-link duty-cycle budgets and a bounded
 * priority queue of outgoing frames. Pure code: no clock, no I/O; every call
 * that depends on time takes now_ms.
 *
 * Time on air of a LoRa packet follows Semtech AN1200.13 ("LoRa Modem
 * Designer's Guide"), section 4:
 *
 *     Tsym      = 2^SF / BW
 *     Tpreamble = (n_preamble + 4.25) * Tsym
 *     n_payload = 8 + max(ceil((8 PL - 4 SF + 28 + 16 CRC - 20 IH) /
 *                              (4 (SF - 2 DE))) * (CR + 4), 0)
 *     T         = Tpreamble + n_payload * Tsym
 *
 * with PL the payload bytes, CRC 1 when the payload CRC is on, IH 1 for the
 * implicit header, DE 1 with low data rate optimisation and CR 1..4 for the
 * coding rates 4/5..4/8. Semtech's radios require low data rate optimisation
 * when a symbol lasts more than 16 ms (SF11 and SF12 at 125 kHz); that is
 * the automatic choice here.
 *
 * Transparent UART modules (Ebyte E32/E22 and the like) hide their modulation
 * behind an "air data rate"; for them the model is bytes * 8 / rate.
 *
 * A duty-cycle budget bounds the airtime a link spends in any sliding window
 * (1% of an hour on most EU868 sub-bands, ETSI EN 300 220). */
#ifndef FE_AIRTIME_H
#define FE_AIRTIME_H

#include <stddef.h>
#include <stdint.h>

#include "../core/err.h"
#include "../core/limits.h"
#include "../core/node.h"

#define FE_LORA_PAYLOAD_MAX 255 /* PHY payload limit of the LoRa packet */
#define FE_LORA_SF_MIN 6
#define FE_LORA_SF_MAX 12
#define FE_LORA_BW_MIN_HZ 7800u       /* 7.8 kHz, the narrowest SX127x bandwidth */
#define FE_LORA_BW_MAX_HZ 500000u     /* 500 kHz */
#define FE_LORA_LDRO_SYMBOL_US 16000u /* symbols longer than this need LDRO */

typedef struct fe_lora_params {
    uint8_t sf;              /* spreading factor, 6..12 */
    uint32_t bw_hz;          /* bandwidth, 7800..500000 Hz */
    uint8_t cr;              /* coding rate 4/(4+cr): 1..4 for 4/5..4/8 */
    uint16_t preamble;       /* programmed preamble symbols, 6..65535 */
    uint8_t implicit_header; /* 1: implicit header (no PHY header on air) */
    uint8_t crc_on;          /* 1: payload CRC on */
    int8_t ldro;             /* low data rate optimisation: -1 auto, 0 off, 1 on */
} fe_lora_params;

/* SF7, 125 kHz, CR 4/5, 8-symbol preamble, explicit header, CRC on, LDRO
 * automatic: the settings of the reference table in the tests. */
void fe_lora_params_default(fe_lora_params *p);

/* 0 if p describes a valid LoRa setting, FE_ERR_INVALID otherwise. */
FE_MUST_CHECK int fe_lora_params_check(const fe_lora_params *p);

/* Symbol time in microseconds (rounded up), or 0 for invalid p. */
uint64_t fe_lora_symbol_us(const fe_lora_params *p);

/* Time on air of a LoRa packet carrying len payload bytes, in microseconds,
 * rounded up, into *us. 0, FE_ERR_INVALID (bad p or NULL) or FE_ERR_TOOBIG
 * (len > FE_LORA_PAYLOAD_MAX). */
FE_MUST_CHECK int fe_airtime_lora_us(uint64_t *us, const fe_lora_params *p, size_t len);

/* Time on air of len bytes at bits_per_s, rounded up to a microsecond: the
 * model of transparent modules. 0 when bits_per_s is 0 (unknown rate). */
uint64_t fe_airtime_rate_us(size_t len, uint32_t bits_per_s);

/* --- duty-cycle budget --- */

/* Transmissions remembered one by one (with or without a limit, so that
 * used_us is always known); when more fall in the window, the two oldest
 * are merged into one entry dated at the later of the two, which can only
 * make the budget stricter (and used_us higher), never looser. */
#define FE_AIRTIME_LOG_MAX 512
#define FE_AIRTIME_PPM 1000000u               /* duty cycles are in parts per million */
#define FE_AIRTIME_WINDOW_DEFAULT_MS 3600000u /* one hour */

typedef struct fe_airtime_entry {
    uint64_t t_ms; /* start of the transmission */
    uint64_t us;   /* its airtime */
} fe_airtime_entry;

/* Caller-embedded; read the fields, change them only through the calls. */
typedef struct fe_airtime_budget {
    uint64_t window_ms;
    uint64_t budget_us; /* airtime allowed in any window; UINT64_MAX: no limit */
    uint64_t used_us;   /* sum of the entries in the log */
    uint64_t last_ms;   /* latest time seen; time never goes back here */
    uint64_t total_us;  /* all airtime granted since init */
    uint64_t granted, refused, merged;
    size_t head, count;
    fe_airtime_entry log[FE_AIRTIME_LOG_MAX];
} fe_airtime_budget;

/* Allow duty_ppm parts per million of any window of window_ms (e.g. 10000
 * for 1% of 3600000 ms). duty_ppm 0 or >= FE_AIRTIME_PPM means no limit.
 * 0, or FE_ERR_INVALID for a NULL b or a window of 0 ms or over 7 days. */
FE_MUST_CHECK int fe_airtime_budget_init(fe_airtime_budget *b, uint32_t duty_ppm,
                                         uint64_t window_ms);

/* 1 if the budget has no limit. */
int fe_airtime_budget_unlimited(const fe_airtime_budget *b);

/* Airtime counted in the window that ends at now_ms (transmissions that
 * started after now_ms - window_ms). Forgets what has left the window. */
uint64_t fe_airtime_budget_used_us(fe_airtime_budget *b, uint64_t now_ms);

/* May a transmission of us microseconds start at now_ms? 1 or 0. Does not
 * record anything. */
int fe_airtime_budget_may_send(fe_airtime_budget *b, uint64_t now_ms, uint64_t us);

/* Record a transmission of us microseconds at now_ms if the budget allows
 * it. 0, or FE_ERR_FULL (refused and counted: try at fe_airtime_budget_next_ms). */
FE_MUST_CHECK int fe_airtime_budget_take(fe_airtime_budget *b, uint64_t now_ms, uint64_t us);

/* The earliest time >= now_ms at which a transmission of us microseconds
 * would be allowed, or UINT64_MAX if it never would (us exceeds the budget
 * of a whole window). */
uint64_t fe_airtime_budget_next_ms(fe_airtime_budget *b, uint64_t now_ms, uint64_t us);

/* --- priority queue of outgoing frames --- */

#define FE_AIRTIME_QUEUE_MAX 1024 /* frames per queue, upper bound for slots */
#define FE_PRIO_CLASSES 4         /* FE_PRIO_RECEIPT .. FE_PRIO_SYNC */

typedef struct fe_airtime_queue_stats {
    uint64_t pushed[FE_PRIO_CLASSES];  /* accepted, per class */
    uint64_t dropped[FE_PRIO_CLASSES]; /* refused or evicted because the queue was full */
    uint64_t popped;
} fe_airtime_queue_stats;

/* Caller-embedded; fields are private except stats. */
typedef struct fe_airtime_queue {
    size_t slots, frame_max, count;
    uint8_t *data; /* slots * frame_max bytes */
    uint16_t *len; /* per slot */
    uint16_t *free_list;
    size_t free_count;
    uint16_t *ring[FE_PRIO_CLASSES]; /* per class: FIFO of slot numbers */
    size_t ring_head[FE_PRIO_CLASSES], ring_count[FE_PRIO_CLASSES];
    fe_airtime_queue_stats stats;
} fe_airtime_queue;

/* Allocate room for slots frames (1..FE_AIRTIME_QUEUE_MAX) of up to
 * frame_max bytes (1..FE_FRAME_MAX) each. 0, FE_ERR_INVALID or FE_ERR_NOMEM
 * (then q holds nothing to free, but fe_airtime_queue_free is harmless). */
FE_MUST_CHECK int fe_airtime_queue_init(fe_airtime_queue *q, size_t slots, size_t frame_max);

/* Free what init allocated. Accepts NULL and a queue whose init failed. */
void fe_airtime_queue_free(fe_airtime_queue *q);

/* Queue a copy of frame in class prio. When the queue is full the least
 * urgent class loses first: a frame more urgent than the least urgent one
 * queued evicts the newest frame of that class; otherwise the new frame is
 * refused. Both are counted in stats.dropped of the class that lost.
 * 0 (queued, maybe after an eviction), FE_ERR_FULL (refused),
 * FE_ERR_TOOBIG (len > frame_max) or FE_ERR_INVALID. */
FE_MUST_CHECK int fe_airtime_queue_push(fe_airtime_queue *q, const uint8_t *frame, size_t len,
                                        enum fe_prio prio);

/* The frame that pop would return (most urgent class, oldest first), as a
 * view valid until the next push or pop; NULL when empty. len and prio may
 * be NULL. */
const uint8_t *fe_airtime_queue_peek(const fe_airtime_queue *q, size_t *len, enum fe_prio *prio);

/* Remove the frame peek shows, copying it to out. Returns its length,
 * FE_ERR_NOTFOUND when empty, or FE_ERR_TOOBIG if out_len is too small (the
 * frame stays queued). prio may be NULL. */
FE_MUST_CHECK ptrdiff_t fe_airtime_queue_pop(fe_airtime_queue *q, uint8_t *out, size_t out_len,
                                             enum fe_prio *prio);

/* Frames queued (all classes, or one class). */
size_t fe_airtime_queue_len(const fe_airtime_queue *q);
size_t fe_airtime_queue_class_len(const fe_airtime_queue *q, enum fe_prio prio);

#endif
