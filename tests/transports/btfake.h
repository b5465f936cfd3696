/* A scripted fe_bt_discovery for the RFCOMM tests: what inquiry finds and
 * what SDP answers come from a small text file, read again on every call so
 * a test can change the world while the driver runs.
 *
 *   # comment
 *   00:00:00:00:00:02 7     a ferry node on channel 7: inquiry finds it,
 *                           lookup answers 7
 *   00:00:00:00:00:09 -     a device without ferry: lookup says FE_ERR_NOTFOUND
 *   00:00:00:00:00:0A x     found by inquiry, but lookups get no answer
 *   register fail           register_service fails (bluetoothd without --compat)
 *
 * An address not in the file is not found by inquiry and does not answer a
 * lookup. Inquiry and lookup run on the driver's discovery thread; every
 * method is safe from any thread. */
#ifndef FE_BTFAKE_H
#define FE_BTFAKE_H

#include <stdint.h>

#include "rfcomm_disc.h"

#define FE_BTFAKE_ADDRS_MAX 32

typedef struct fe_btfake fe_btfake;

typedef struct fe_btfake_counts {
    unsigned inquiries, lookups, registers, unregisters;
    int registered;             /* a record is registered now */
    uint8_t registered_channel; /* its channel */
} fe_btfake_counts;

/* 0, FE_ERR_INVALID or FE_ERR_NOMEM. The path is copied. */
int fe_btfake_new(fe_btfake **out, const char *script_path);
void fe_btfake_del(fe_btfake *f);

/* The vtable to put in fe_rfcomm_config.discovery; valid until del. */
const fe_bt_discovery *fe_btfake_discovery(fe_btfake *f);

void fe_btfake_counts_get(fe_btfake *f, fe_btfake_counts *out);

/* Lookups asked about one address ("AA:BB:..."). */
unsigned fe_btfake_lookups_of(fe_btfake *f, const char *addr);

#endif
