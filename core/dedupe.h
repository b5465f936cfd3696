/* Dedupe cache: which ids this node has seen, remembered until the item
 * could no longer be circulating (its expiry). Fixed capacity, allocated once
 * at init; no allocation afterwards. When full, the entry closest to expiry
 * is forgotten first. Each id carries a small set of kind bits so that a
 * message and its receipt (same id) are tracked apart. */
#ifndef FE_DEDUPE_H
#define FE_DEDUPE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "limits.h"

#define FE_SEEN_MSG 1u       /* the message (or announce) with this id */
#define FE_SEEN_RECEIPT 2u   /* its receipt */
#define FE_SEEN_DELIVERED 4u /* delivered to this node's user */
#define FE_SEEN_OWN 8u       /* originated by this node */

typedef struct fe_dedupe_entry {
    uint8_t id[FE_MSG_ID_BYTES];
    uint8_t kinds;   /* 0 = empty slot */
    uint64_t expires_ms;
} fe_dedupe_entry;

/* The table's hash is keyed (SipHash-2-4), so a peer that picks ids cannot
 * aim them at one slot and make every lookup walk a long run. */
#define FE_DEDUPE_KEY_BYTES 16

typedef struct fe_dedupe {
    fe_dedupe_entry *slots;
    uint8_t key[FE_DEDUPE_KEY_BYTES];
    size_t capacity; /* power of two */
    size_t count;
    size_t max_count; /* capacity * 3 / 4 */
    uint64_t evicted; /* entries forgotten before expiry because the table was full */
} fe_dedupe;

/* Allocate capacity slots (power of two, >= 16), hashed with key (random,
 * and kept from peers). 0, FE_ERR_INVALID or FE_ERR_NOMEM. */
FE_MUST_CHECK int fe_dedupe_init(fe_dedupe *d, size_t capacity,
                                 const uint8_t key[static FE_DEDUPE_KEY_BYTES]);
/* Release the slots; d may be reused after init. Accepts NULL. */
void fe_dedupe_free(fe_dedupe *d);

/* Returns the kind bits recorded for id (0 if unknown or expired at now_ms). */
uint8_t fe_dedupe_get(const fe_dedupe *d, const uint8_t id[static FE_MSG_ID_BYTES], uint64_t now_ms);

/* Add kind bits for id. The entry's expiry becomes the later of the old and
 * the new one. Returns 1 if all of kinds were already recorded (a duplicate),
 * 0 if something was new. Never fails: when full it evicts. */
int fe_dedupe_add(fe_dedupe *d, const uint8_t id[static FE_MSG_ID_BYTES], uint8_t kinds,
                  uint64_t expires_ms, uint64_t now_ms);

/* The slot where the search for id starts (for tests and diagnostics). */
size_t fe_dedupe_home(const fe_dedupe *d, const uint8_t id[static FE_MSG_ID_BYTES]);

/* Drop entries expired at now_ms. Returns how many were dropped. */
size_t fe_dedupe_expire(fe_dedupe *d, uint64_t now_ms);

#endif
