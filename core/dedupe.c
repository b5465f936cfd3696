/* Dedupe cache: see dedupe.h.
 *
 * A fixed open-addressing table of capacity slots, at most 3/4 full. Linear
 * probing with backward-shift deletion: removing an entry pulls the later
 * members of its probe run back, so there are no tombstones and expiry and
 * eviction keep probe runs as short as the load allows. */
#include "dedupe.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* When the table is full and nothing near the new id's home has expired, the
 * add examines at most this many occupied slots, starting at the new id's
 * home slot, and evicts the earliest-expiring of them. The start is the hash
 * of a fresh id, so the window moves around the table like a rotating cursor
 * without needing state. At 3/4 load the window spans about 85 slots. */
#define FE_DEDUPE_EVICT_WINDOW 64u

/* ids come off the wire, and a peer may choose them freely: with a public
 * hash it could aim thousands at one slot and turn every lookup into a walk
 * along the table. With a secret key it cannot tell which ids collide. */
static size_t dd_home(const fe_dedupe *d, const uint8_t id[FE_MSG_ID_BYTES])
{
    uint8_t h[crypto_shorthash_siphash24_BYTES];
    uint64_t v;
    crypto_shorthash_siphash24(h, id, FE_MSG_ID_BYTES, d->key);
    memcpy(&v, h, sizeof v);
    return (size_t)v & (d->capacity - 1);
}

_Static_assert(FE_DEDUPE_KEY_BYTES == crypto_shorthash_siphash24_KEYBYTES, "SipHash key size");
_Static_assert(crypto_shorthash_siphash24_BYTES == sizeof(uint64_t), "SipHash output size");

size_t fe_dedupe_home(const fe_dedupe *d, const uint8_t id[static FE_MSG_ID_BYTES])
{
    return d && d->slots ? dd_home(d, id) : 0;
}

int fe_dedupe_init(fe_dedupe *d, size_t capacity, const uint8_t key[static FE_DEDUPE_KEY_BYTES])
{
    if (!d)
        return FE_ERR_INVALID;
    memset(d, 0, sizeof(*d));
    if (!key || capacity < 16 || (capacity & (capacity - 1)) != 0 ||
        capacity > SIZE_MAX / sizeof(fe_dedupe_entry))
        return FE_ERR_INVALID;
    d->slots = calloc(capacity, sizeof(fe_dedupe_entry));
    if (!d->slots)
        return FE_ERR_NOMEM;
    memcpy(d->key, key, FE_DEDUPE_KEY_BYTES);
    d->capacity = capacity;
    d->max_count = capacity / 4 * 3;
    return 0;
}

void fe_dedupe_free(fe_dedupe *d)
{
    if (!d)
        return;
    free(d->slots);
    sodium_memzero(d, sizeof(*d));
}

/* Slot holding id, or SIZE_MAX. Terminates: at least a quarter of the slots
 * are empty. */
static size_t dd_find(const fe_dedupe *d, const uint8_t id[FE_MSG_ID_BYTES])
{
    size_t mask = d->capacity - 1;
    for (size_t i = dd_home(d, id);; i = (i + 1) & mask) {
        const fe_dedupe_entry *e = &d->slots[i];
        if (e->kinds == 0)
            return SIZE_MAX;
        if (memcmp(e->id, id, FE_MSG_ID_BYTES) == 0)
            return i;
    }
}

/* Empty slot i, pulling back later members of the run whose home allows it. */
static void dd_remove_at(fe_dedupe *d, size_t i)
{
    size_t mask = d->capacity - 1;
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (d->slots[j].kinds == 0)
            break;
        size_t home = dd_home(d, d->slots[j].id);
        /* The entry at j must stay if its home lies cyclically in (i, j]. */
        int stays = (i <= j) ? (i < home && home <= j) : (i < home || home <= j);
        if (stays)
            continue;
        d->slots[i] = d->slots[j];
        i = j;
    }
    memset(&d->slots[i], 0, sizeof(d->slots[i]));
    d->count--;
}

uint8_t fe_dedupe_get(const fe_dedupe *d, const uint8_t id[static FE_MSG_ID_BYTES], uint64_t now_ms)
{
    if (!d || !d->slots)
        return 0;
    size_t i = dd_find(d, id);
    if (i == SIZE_MAX || d->slots[i].expires_ms <= now_ms)
        return 0;
    return d->slots[i].kinds;
}

/* Free one slot in a full table. Looks at up to FE_DEDUPE_EVICT_WINDOW
 * occupied slots from start and removes the earliest-expiring one; if that
 * one had expired already it is an expiry, else an eviction. Visits at most
 * capacity slots. */
static void dd_make_room(fe_dedupe *d, size_t start, uint64_t now_ms)
{
    size_t mask = d->capacity - 1;
    size_t best = SIZE_MAX;
    size_t seen = 0;
    for (size_t k = 0, i = start; k < d->capacity && seen < FE_DEDUPE_EVICT_WINDOW;
         k++, i = (i + 1) & mask) {
        const fe_dedupe_entry *e = &d->slots[i];
        if (e->kinds == 0)
            continue;
        seen++;
        if (best == SIZE_MAX || e->expires_ms < d->slots[best].expires_ms)
            best = i;
        if (e->expires_ms <= now_ms)
            break; /* an expired entry: reclaiming it costs no information */
    }
    if (best == SIZE_MAX)
        return; /* unreachable while count > 0 */
    if (d->slots[best].expires_ms > now_ms)
        d->evicted++;
    dd_remove_at(d, best);
}

int fe_dedupe_add(fe_dedupe *d, const uint8_t id[static FE_MSG_ID_BYTES], uint8_t kinds,
                  uint64_t expires_ms, uint64_t now_ms)
{
    if (!d || !d->slots || kinds == 0)
        return 1; /* no kind bits: nothing new to record */
    size_t i = dd_find(d, id);
    if (i != SIZE_MAX) {
        fe_dedupe_entry *e = &d->slots[i];
        if (e->expires_ms <= now_ms) {
            /* The old record is dead: start over as if the id were new. */
            if (expires_ms <= now_ms) {
                dd_remove_at(d, i);
                return 0;
            }
            e->kinds = kinds;
            e->expires_ms = expires_ms;
            return 0;
        }
        int dup = (e->kinds & kinds) == kinds;
        e->kinds |= kinds;
        if (expires_ms > e->expires_ms)
            e->expires_ms = expires_ms;
        return dup;
    }
    /* Something that is already dead would be forgotten at once: skip it. */
    if (expires_ms <= now_ms)
        return 0;
    size_t home = dd_home(d, id);
    if (d->count >= d->max_count)
        dd_make_room(d, home, now_ms);
    size_t mask = d->capacity - 1;
    for (i = home; d->slots[i].kinds != 0; i = (i + 1) & mask)
        ;
    memcpy(d->slots[i].id, id, FE_MSG_ID_BYTES);
    d->slots[i].kinds = kinds;
    d->slots[i].expires_ms = expires_ms;
    d->count++;
    return 0;
}

size_t fe_dedupe_expire(fe_dedupe *d, uint64_t now_ms)
{
    if (!d || !d->slots)
        return 0;
    size_t dropped = 0;
    /* Removal pulls later entries back into slot i, so re-check i before
     * moving on. Entries only ever move backwards within their run, so an
     * entry not yet visited never lands behind the cursor. */
    size_t i = 0;
    while (i < d->capacity) {
        fe_dedupe_entry *e = &d->slots[i];
        if (e->kinds != 0 && e->expires_ms <= now_ms) {
            dd_remove_at(d, i);
            dropped++;
        } else {
            i++;
        }
    }
    return dropped;
}
