#include "directory.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "seal.h"

int fe_dir_init(fe_dir *d, size_t cap)
{
    memset(d, 0, sizeof *d);
    if (cap == 0)
        return FE_ERR_INVALID;
    d->cap = cap;
    return FE_OK;
}

void fe_dir_free(fe_dir *d)
{
    if (!d)
        return;
    if (d->e)
        sodium_memzero(d->e, d->count * sizeof *d->e);
    free(d->e);
    memset(d, 0, sizeof *d);
}

fe_dir_entry *fe_dir_find_pk(const fe_dir *d, const uint8_t pk[static FE_PK_BYTES])
{
    for (size_t i = 0; i < d->count; i++)
        if (memcmp(d->e[i].rec.pk, pk, FE_PK_BYTES) == 0)
            return &d->e[i];
    return NULL;
}

fe_dir_entry *fe_dir_find_addr(const fe_dir *d, const uint8_t *prefix, size_t len, int *ambiguous)
{
    fe_dir_entry *hit = NULL;

    *ambiguous = 0;
    if (len == 0 || len > FE_ADDR_BYTES)
        return NULL;
    for (size_t i = 0; i < d->count; i++)
        if (memcmp(d->e[i].addr, prefix, len) == 0) {
            if (hit) {
                *ambiguous = 1;
                return NULL;
            }
            hit = &d->e[i];
        }
    return hit;
}

fe_dir_entry *fe_dir_find_name(const fe_dir *d, const char *name)
{
    for (size_t i = 0; i < d->count; i++)
        if (!d->e[i].name_conflict && d->e[i].rec.name[0] && strcmp(d->e[i].rec.name, name) == 0)
            return &d->e[i];
    return NULL;
}

int fe_dir_add(fe_dir *d, fe_dir_entry **out, const fe_dir_rec *rec)
{
    fe_dir_entry e;

    memset(&e, 0, sizeof e);
    e.rec = *rec;
    e.rec.name[FE_NAME_MAX] = '\0';
    if (fe_ident_xpk(e.xpk, rec->pk) != FE_OK)
        return FE_ERR_CRYPTO;
    fe_ident_addr(e.addr, rec->pk);
    if (e.rec.name[0]) {
        /* A record the store kept as a conflict stays one: otherwise the
         * binding after a restart would follow the store's load order, and
         * an impostor loaded before the rightful key would take the name. */
        fe_dir_entry *holder = fe_dir_find_name(d, e.rec.name);
        e.name_conflict = rec->name_conflict || holder != NULL;
    }
    e.rec.name_conflict = e.name_conflict;
    if (d->count == d->cap)
        return FE_ERR_FULL;
    if (d->count == d->alloc) {
        /* Grow by doubling. Entries may move: callers look entries up again
         * after an add instead of keeping pointers. */
        size_t ncap = d->alloc ? d->alloc * 2 : 16;
        if (ncap > d->cap)
            ncap = d->cap;
        fe_dir_entry *ne = realloc(d->e, ncap * sizeof *ne);
        if (!ne)
            return FE_ERR_NOMEM;
        d->e = ne;
        d->alloc = ncap;
    }
    d->e[d->count] = e;
    *out = &d->e[d->count++];
    return FE_OK;
}

int fe_dir_shared_key(fe_dir_entry *e, const fe_identity *own)
{
    if (e->have_k)
        return FE_OK;
    if (fe_seal_shared_key(e->k, e->xpk, own->xsk) != FE_OK)
        return FE_ERR_CRYPTO;
    e->have_k = 1;
    return FE_OK;
}
