/* The node's identity on disk: a file holding the 32-byte Ed25519 seed and
 * nothing else, mode 0600, kept apart from the message store so that a
 * damaged store can be thrown away without losing the identity. */
#ifndef FE_KEYFILE_H
#define FE_KEYFILE_H

#include <stddef.h>

#include "../core/ident.h"

/* Load the identity from path, or create the file with a fresh random seed
 * if it does not exist (written to a temporary file, fsynced, then linked
 * into place, so a crash never leaves a half-written key and two processes
 * racing to create it end up with the same key). *created (may be NULL) is
 * set to 1 if the key was created now. The directory must exist.
 *
 * Returns 0, or with a one-line reason in err:
 *   FE_ERR_MALFORMED  the file is not exactly FE_SEED_BYTES long, or not a regular file;
 *   FE_ERR_INVALID    the file is accessible by group or others (the message says
 *                     how to fix it), or bad arguments;
 *   FE_ERR_STORE      it could not be read or created (permissions, disk);
 *   FE_ERR_CRYPTO     the seed was rejected by fe_ident_from_seed. */
FE_MUST_CHECK int fe_keyfile_load_or_create(fe_identity *id, const char *path, int *created,
                                            char *err, size_t err_len);

#endif
