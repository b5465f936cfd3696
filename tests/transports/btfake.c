/* Scripted discovery for tests: see btfake.h. */
#include "btfake.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE_MAX_CHARS 128

struct fe_btfake {
    fe_bt_discovery d;
    char path[512];
    pthread_mutex_t mu;
    fe_btfake_counts n;
    fe_bt_addr asked[FE_BTFAKE_ADDRS_MAX];
    unsigned asked_n[FE_BTFAKE_ADDRS_MAX];
    size_t asked_count;
};

typedef struct script_line {
    fe_bt_addr addr;
    int kind; /* 'c' channel, '-' no ferry, 'x' no answer */
    uint8_t channel;
} script_line;

/* Read the script: up to max device lines into out; *reg_fail for
 * "register fail". Returns the number of device lines (a missing file is an
 * empty world). */
static size_t script_read(const fe_btfake *f, script_line *out, size_t max, int *reg_fail)
{
    *reg_fail = 0;
    FILE *fp = fopen(f->path, "r");
    if (fp == NULL)
        return 0;
    char line[LINE_MAX_CHARS];
    size_t n = 0;
    while (fgets(line, sizeof(line), fp) != NULL && n < max) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '#' || line[0] == '\0')
            continue;
        if (strcmp(line, "register fail") == 0) {
            *reg_fail = 1;
            continue;
        }
        char a[FE_BT_ADDR_CHARS];
        if (strlen(line) < FE_BT_ADDR_CHARS + 1)
            continue;
        memcpy(a, line, FE_BT_ADDR_CHARS - 1);
        a[FE_BT_ADDR_CHARS - 1] = '\0';
        script_line sl;
        memset(&sl, 0, sizeof(sl));
        if (fe_bt_addr_parse(&sl.addr, a) != 0)
            continue;
        const char *v = line + FE_BT_ADDR_CHARS;
        if (v[0] == '-' || v[0] == 'x') {
            sl.kind = v[0];
        } else {
            char *end = NULL;
            long ch = strtol(v, &end, 10);
            if (end == v || ch < FE_BT_CHANNEL_MIN || ch > FE_BT_CHANNEL_MAX)
                continue;
            sl.kind = 'c';
            sl.channel = (uint8_t)ch;
        }
        out[n++] = sl;
    }
    fclose(fp);
    return n;
}

static int fake_inquiry(void *ctx, int dev_id, unsigned length, fe_bt_addr *out, size_t max)
{
    fe_btfake *f = ctx;
    (void)dev_id;
    (void)length;
    script_line lines[FE_BTFAKE_ADDRS_MAX];
    int reg_fail;
    pthread_mutex_lock(&f->mu);
    f->n.inquiries++;
    size_t n = script_read(f, lines, FE_BTFAKE_ADDRS_MAX, &reg_fail);
    pthread_mutex_unlock(&f->mu);
    size_t k = 0;
    for (size_t i = 0; i < n && k < max; i++)
        out[k++] = lines[i].addr;
    return (int)k;
}

static int fake_lookup(void *ctx, const fe_bt_addr *local, const fe_bt_addr *peer, uint8_t *channel)
{
    fe_btfake *f = ctx;
    (void)local;
    script_line lines[FE_BTFAKE_ADDRS_MAX];
    int reg_fail;
    pthread_mutex_lock(&f->mu);
    f->n.lookups++;
    size_t slot = f->asked_count;
    for (size_t i = 0; i < f->asked_count; i++) {
        if (fe_bt_addr_eq(&f->asked[i], peer))
            slot = i;
    }
    if (slot == f->asked_count && f->asked_count < FE_BTFAKE_ADDRS_MAX) {
        f->asked[slot] = *peer;
        f->asked_n[slot] = 0;
        f->asked_count++;
    }
    if (slot < f->asked_count)
        f->asked_n[slot]++;
    size_t n = script_read(f, lines, FE_BTFAKE_ADDRS_MAX, &reg_fail);
    pthread_mutex_unlock(&f->mu);
    for (size_t i = 0; i < n; i++) {
        if (!fe_bt_addr_eq(&lines[i].addr, peer))
            continue;
        if (lines[i].kind == '-')
            return FE_ERR_NOTFOUND;
        if (lines[i].kind == 'x')
            return FE_ERR_EXPIRED;
        *channel = lines[i].channel;
        return 0;
    }
    return FE_ERR_EXPIRED;
}

static int fake_register(void *ctx, const fe_bt_addr *local, uint8_t channel, char *err,
                         size_t err_len)
{
    fe_btfake *f = ctx;
    (void)local;
    script_line lines[FE_BTFAKE_ADDRS_MAX];
    int reg_fail;
    pthread_mutex_lock(&f->mu);
    f->n.registers++;
    script_read(f, lines, FE_BTFAKE_ADDRS_MAX, &reg_fail);
    if (!reg_fail) {
        f->n.registered = 1;
        f->n.registered_channel = channel;
    }
    pthread_mutex_unlock(&f->mu);
    if (reg_fail) {
        snprintf(err, err_len, "cannot register the SDP record: scripted failure");
        return FE_ERR_NOTFOUND;
    }
    return 0;
}

static void fake_unregister(void *ctx)
{
    fe_btfake *f = ctx;
    pthread_mutex_lock(&f->mu);
    f->n.unregisters++;
    f->n.registered = 0;
    pthread_mutex_unlock(&f->mu);
}

static const fe_bt_discovery_ops fake_ops = {
    .name = "btfake",
    .inquiry = fake_inquiry,
    .lookup = fake_lookup,
    .register_service = fake_register,
    .unregister_service = fake_unregister,
};

int fe_btfake_new(fe_btfake **out, const char *script_path)
{
    if (out == NULL || script_path == NULL || strlen(script_path) >= sizeof(((fe_btfake *)0)->path))
        return FE_ERR_INVALID;
    fe_btfake *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return FE_ERR_NOMEM;
    if (pthread_mutex_init(&f->mu, NULL) != 0) {
        free(f);
        return FE_ERR_NOMEM;
    }
    snprintf(f->path, sizeof(f->path), "%s", script_path);
    f->d.ops = &fake_ops;
    f->d.ctx = f;
    *out = f;
    return 0;
}

void fe_btfake_del(fe_btfake *f)
{
    if (f == NULL)
        return;
    pthread_mutex_destroy(&f->mu);
    free(f);
}

const fe_bt_discovery *fe_btfake_discovery(fe_btfake *f)
{
    return &f->d;
}

void fe_btfake_counts_get(fe_btfake *f, fe_btfake_counts *out)
{
    pthread_mutex_lock(&f->mu);
    *out = f->n;
    pthread_mutex_unlock(&f->mu);
}

unsigned fe_btfake_lookups_of(fe_btfake *f, const char *addr)
{
    fe_bt_addr a;
    if (fe_bt_addr_parse(&a, addr) != 0)
        return 0;
    unsigned n = 0;
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < f->asked_count; i++) {
        if (fe_bt_addr_eq(&f->asked[i], &a))
            n = f->asked_n[i];
    }
    pthread_mutex_unlock(&f->mu);
    return n;
}
