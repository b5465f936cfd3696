/* All sizes and bounds of the ferry core, in one place.
 * Wire sizes are part of protocol v1 (docs/PROTOCOL.md); changing one is a
 * protocol change. Memory bounds may be tuned per build. */
#ifndef FE_LIMITS_H
#define FE_LIMITS_H

#include <stddef.h>
#include <stdint.h>

/* --- identity --- */
#define FE_PK_BYTES 32         /* Ed25519 public key (the identity) */
#define FE_SK_BYTES 64         /* Ed25519 secret key (seed || pk) */
#define FE_SEED_BYTES 32       /* Ed25519 seed */
#define FE_XPK_BYTES 32        /* X25519 public key derived from the Ed25519 key */
#define FE_XSK_BYTES 32        /* X25519 secret key derived from the Ed25519 key */
#define FE_ADDR_BYTES 16       /* address = BLAKE2b-128(pk) */
#define FE_HINT_BYTES 4        /* address or group hint on the wire: first bytes of it */
#define FE_SIG_BYTES 64        /* Ed25519 signature */
#define FE_NAME_MAX 32         /* announce name, UTF-8 bytes, no terminator */
#define FE_FINGERPRINT_CHARS 39 /* "xxxx-xxxx-..." 8 groups of 4 hex + 7 dashes */

/* --- messages --- */
#define FE_MSG_ID_BYTES 8       /* message id = BLAKE2b(receipt secret) truncated */
#define FE_RECEIPT_SECRET_BYTES 16
#define FE_SALT_BYTES 4         /* per-message salt inside the ciphertext */
#define FE_MAC_BYTES 16         /* Poly1305 tag */
#define FE_SHARED_KEY_BYTES 32  /* crypto_box_beforenm output / group key */
#define FE_GROUP_KEY_BYTES 32
#define FE_GROUP_ID_BYTES 16    /* group id = BLAKE2b-128(key, "ferry-group-id") */
#define FE_SEALED_OVERHEAD 48   /* crypto_box_SEALBYTES: ephemeral pk + tag */
#define FE_TEXT_MAX 1024        /* largest message body the core accepts */

/* --- frames --- */
#define FE_FRAME_MAX 1400       /* largest whole (reassembled) frame */
#define FE_ITEM_HDR_BYTES 4     /* type byte, hops, lifetime (2) */
#define FE_DM_OVERHEAD (FE_ITEM_HDR_BYTES + 2 * FE_HINT_BYTES + FE_MSG_ID_BYTES + FE_MAC_BYTES + FE_SALT_BYTES)
#define FE_ANON_OVERHEAD (FE_ITEM_HDR_BYTES + FE_HINT_BYTES + FE_MSG_ID_BYTES + FE_SEALED_OVERHEAD + FE_RECEIPT_SECRET_BYTES)
#define FE_GROUP_OVERHEAD (FE_ITEM_HDR_BYTES + FE_HINT_BYTES + FE_MSG_ID_BYTES + FE_MAC_BYTES + FE_ADDR_BYTES + FE_SALT_BYTES)
#define FE_RECEIPT_BYTES (FE_ITEM_HDR_BYTES + FE_RECEIPT_SECRET_BYTES)
#define FE_ANNOUNCE_MIN_BYTES (FE_ITEM_HDR_BYTES + FE_PK_BYTES + 4 + 1 + FE_SIG_BYTES)
#define FE_FRAG_HDR_BYTES 7     /* type, index, count, key (4) */
#define FE_FRAG_MAX_COUNT 64    /* fragments per frame */
#define FE_MTU_MIN 32           /* smallest link MTU the core supports */
#define FE_SUMMARY_HDR_BYTES 16
#define FE_TOKEN_BYTES 4        /* anti-entropy token: id prefix with kind bit */

/* --- lifetime and hops --- */
#define FE_HOPS_DEFAULT 64     /* lifetime and dedupe bound floods; hops bound reach */
#define FE_LIFETIME_DEFAULT_MS (24u * 3600u * 1000u)
#define FE_LIFETIME_MAX_MS (30ull * 24u * 3600u * 1000u)
#define FE_HOP_COST_MS 1000u    /* each hop charges this much for time in flight */

/* --- memory bounds (per node) --- */
#define FE_DEDUPE_CAPACITY 65536     /* ids remembered; power of two */
#define FE_OUTBOX_CAPACITY 8192      /* items held for forwarding */
#define FE_OUTBOX_BYTES_MAX (4u * 1024u * 1024u)
#define FE_ORIGIN_QUOTA 256          /* items per origin hint in the outbox */
#define FE_REASM_SLOTS 16            /* frames in reassembly at once */
#define FE_REASM_TIMEOUT_MS 60000u
#define FE_KEYCACHE_SLOTS 256        /* cached shared keys */
#define FE_DIR_CAPACITY 4096         /* directory entries */
#define FE_GROUPS_MAX 32
#define FE_LINKS_MAX 64
#define FE_PENDING_MAX 4096          /* scheduled rebroadcasts */

_Static_assert((FE_DEDUPE_CAPACITY & (FE_DEDUPE_CAPACITY - 1)) == 0, "dedupe capacity must be 2^k");
_Static_assert(FE_DEDUPE_CAPACITY >= 4 * FE_OUTBOX_CAPACITY, "dedupe must outlive the outbox");
_Static_assert(FE_DM_OVERHEAD == 40, "DM overhead is part of protocol v1");
_Static_assert(FE_RECEIPT_BYTES == 20, "receipt size is part of protocol v1");
_Static_assert(FE_TEXT_MAX + FE_ANON_OVERHEAD + FE_ADDR_BYTES <= FE_FRAME_MAX, "largest message must fit a frame");
_Static_assert(FE_FRAME_MAX <= FE_FRAG_MAX_COUNT * (FE_MTU_MIN - FE_FRAG_HDR_BYTES), "frame must fragment into the smallest MTU");
_Static_assert(FE_ANNOUNCE_MIN_BYTES + FE_NAME_MAX <= 255, "an announce fits one LoRa frame");

#endif
