/* libFuzzer harness for the configuration parser (platform/config.c):
 * fe_config_load_string on arbitrary text, then fe_config_finish.
 *
 * The input is used as the file's text up to its first NUL (as a file read
 * into memory would be). Errors are expected; what is checked, beyond "no
 * crash, no leak, no sanitizer report":
 *   - a failed load leaves the config exactly as it was, with a message;
 *   - a successful load respects every documented range (lifetime, hops,
 *     mtu, peer and driver counts) and every driver key/value string lies
 *     inside driver_text and is NUL-terminated there;
 *   - fe_config_finish either fails with a message or gives a socket path. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define TEXT_MAX (64 * 1024) /* longer inputs are cut: the parser's line limit is far below */

static char text[TEXT_MAX + 1];
/* static: the struct is ~20 KiB, and three copies are needed */
static fe_config defaults, cfg, before;

static void check_string_in_text(const fe_config *c, const char *s)
{
    const char *lo = c->driver_text;
    const char *hi = c->driver_text + c->driver_text_len;
    if (s < lo || s >= hi)
        abort();
    if (!memchr(s, '\0', (size_t)(hi - s)))
        abort();
}

static void check_loaded(const fe_config *c)
{
    if (c->lifetime_ms < 1000 || c->lifetime_ms > 30ull * 24 * 3600 * 1000)
        abort();
    if (c->hops < 1)
        abort();
    if (c->udp.mtu < 64 || c->udp.mtu > 1400)
        abort();
    if (c->udp.peers_count > FE_CONFIG_PEERS_MAX)
        abort();
    if (c->driver_count > FE_CONFIG_DRIVERS_MAX)
        abort();
    if (c->driver_text_len > FE_CONFIG_DRIVER_TEXT_MAX)
        abort();
    if (!memchr(c->name, '\0', sizeof(c->name)) || !memchr(c->data_dir, '\0', sizeof(c->data_dir)))
        abort();
    int rfcomm = 0;
    for (size_t i = 0; i < c->driver_count; i++) {
        const fe_config_driver *d = &c->drivers[i];
        if (d->kind != FE_CONFIG_SERIAL && d->kind != FE_CONFIG_RFCOMM)
            abort();
        if (d->kind == FE_CONFIG_RFCOMM && ++rfcomm > 1)
            abort();
        if (d->pair_count > FE_CONFIG_DRIVER_KEYS_MAX)
            abort();
        if (!memchr(d->name, '\0', sizeof(d->name)))
            abort();
        if (fe_config_driver_find(c, d->kind, d->name) == NULL)
            abort();
        for (size_t k = 0; k < d->pair_count; k++) {
            const char *key = fe_config_key(c, &d->pairs[k]);
            const char *val = fe_config_value(c, &d->pairs[k]);
            check_string_in_text(c, key);
            check_string_in_text(c, val);
            if (key[0] == '\0') /* documented: empty keys are refused */
                abort();
        }
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* The defaults read the environment: pin it so every run is the same. */
    setenv("HOME", "/nonexistent-home", 1);
    unsetenv("XDG_DATA_HOME");
    fe_config_defaults(&defaults);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    size_t n = size < TEXT_MAX ? size : TEXT_MAX;
    memcpy(text, data, n);
    text[n] = '\0';

    cfg = defaults;
    before = cfg;
    err[0] = '\0';
    if (fe_config_load_string(&cfg, text, err, sizeof(err)) != 0) {
        if (err[0] == '\0' || !memchr(err, '\0', sizeof(err)))
            abort();
        if (memcmp(&cfg, &before, sizeof(cfg)) != 0) /* documented: c unchanged */
            abort();
        return 0;
    }
    check_loaded(&cfg);

    err[0] = '\0';
    if (fe_config_finish(&cfg, err, sizeof(err)) != 0) {
        if (err[0] == '\0')
            abort();
        return 0;
    }
    check_loaded(&cfg);
    if (cfg.socket[0] == '\0' || !memchr(cfg.socket, '\0', sizeof(cfg.socket)))
        abort();
    for (size_t i = 0; i < cfg.udp.peers_count; i++)
        if (cfg.udp.peers[i].port == 0) /* finish fills in the [udp] port */
            abort();
    return 0;
}
