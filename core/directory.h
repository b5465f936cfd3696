/* The directory of known users: keys heard in signed announces (trusted on
 * first use), their names, presence, and the cached shared box key so the
 * key exchange is paid once per peer, not per message. */
#ifndef FE_DIRECTORY_H
#define FE_DIRECTORY_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "ident.h"
#include "limits.h"
#include "store.h"

typedef struct fe_dir_entry {
    fe_dir_rec rec;
    uint8_t addr[FE_ADDR_BYTES];
    uint8_t xpk[FE_XPK_BYTES];
    uint8_t k[FE_SHARED_KEY_BYTES];
    uint8_t have_k;
    uint8_t name_conflict;   /* its name was already bound to another key */
    uint8_t ann_id[FE_MSG_ID_BYTES]; /* id of its announce we hold */
    uint8_t have_ann;
    uint64_t expires_ms;     /* online until then */
    uint64_t accepted_ms;    /* last announce accepted (rate limit) */
    uint8_t have_accepted;   /* accepted_ms is valid (not for entries loaded from the store) */
} fe_dir_entry;

typedef struct fe_dir {
    fe_dir_entry *e;
    size_t count, cap, alloc; /* used, bound, allocated */
} fe_dir;

FE_MUST_CHECK int fe_dir_init(fe_dir *d, size_t cap);
void fe_dir_free(fe_dir *d);

fe_dir_entry *fe_dir_find_pk(const fe_dir *d, const uint8_t pk[static FE_PK_BYTES]);
/* By address prefix; *ambiguous set when more than one matches. */
fe_dir_entry *fe_dir_find_addr(const fe_dir *d, const uint8_t *prefix, size_t len, int *ambiguous);
/* First entry with this name that holds it rightfully (not a conflict). */
fe_dir_entry *fe_dir_find_name(const fe_dir *d, const char *name);

/* Add a key. Its name is a conflict if another entry holds the name or if
 * rec->name_conflict says so (a record loaded from the store).
 * FE_ERR_CRYPTO for a key that is not a valid point, FE_ERR_FULL. */
FE_MUST_CHECK int fe_dir_add(fe_dir *d, fe_dir_entry **out, const fe_dir_rec *rec);

/* The shared box key with this entry, computed once. */
FE_MUST_CHECK int fe_dir_shared_key(fe_dir_entry *e, const fe_identity *own);

#endif
