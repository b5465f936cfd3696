/* Human-readable output of the ferry CLI. */
#include "format.h"

#include "client.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Decodes one UTF-8 sequence at s. Returns its length (1..4) and *cp, or 0
 * if the bytes are not valid UTF-8 (overlong, surrogate, out of range). */
static size_t utf8_next(const unsigned char *s, uint32_t *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    size_t n;
    uint32_t v, min;
    if ((s[0] & 0xe0) == 0xc0) {
        n = 2, v = s[0] & 0x1f, min = 0x80;
    } else if ((s[0] & 0xf0) == 0xe0) {
        n = 3, v = s[0] & 0x0f, min = 0x800;
    } else if ((s[0] & 0xf8) == 0xf0) {
        n = 4, v = s[0] & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) /* also stops at the terminating NUL */
            return 0;
        v = (v << 6) | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return n;
}

/* Characters that could move the cursor, change colours, or reorder what
 * the user sees (bidirectional overrides and isolates). */
static int unsafe(uint32_t cp)
{
    return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f) ||
           (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

void fe_fmt_text(FILE *out, const char *s, const char *indent)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        uint32_t cp;
        size_t n = utf8_next(p, &cp);
        if (n == 0) {
            fputc('?', out);
            p++;
            continue;
        }
        if (cp == '\n') {
            fputc('\n', out);
            fputs(indent ? indent : "", out);
        } else if (cp == '\t') {
            fputc(' ', out);
        } else if (unsafe(cp)) {
            fputc('?', out);
        } else {
            fwrite(p, 1, n, out);
        }
        p += n;
    }
}

size_t fe_fmt_clean(char *out, size_t out_len, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t w = 0, cols = 0;
    if (out_len == 0)
        return 0;
    while (*p) {
        uint32_t cp;
        size_t n = utf8_next(p, &cp);
        const char *src = (const char *)p;
        size_t src_len = n;
        if (n == 0 || unsafe(cp)) {
            src = (n != 0 && (cp == '\n' || cp == '\t')) ? " " : "?";
            src_len = 1;
            if (n == 0)
                n = 1;
        }
        if (w + src_len >= out_len)
            break; /* never split a character */
        memcpy(out + w, src, src_len);
        w += src_len;
        cols++;
        p += n;
    }
    out[w] = '\0';
    return cols;
}

size_t fe_fmt_width(const char *s)
{
    size_t cols = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        cols += (*p & 0xc0) != 0x80; /* count lead bytes only */
    return cols;
}

void fe_fmt_ago(char *out, size_t out_len, double s_ago)
{
    if (s_ago < 0 || isnan(s_ago))
        snprintf(out, out_len, "never");
    else if (s_ago < 1)
        snprintf(out, out_len, "now");
    else if (s_ago < 60)
        snprintf(out, out_len, "%.0fs ago", floor(s_ago));
    else if (s_ago < 3600)
        snprintf(out, out_len, "%.0fm ago", floor(s_ago / 60));
    else if (s_ago < 86400)
        snprintf(out, out_len, "%.0fh ago", floor(s_ago / 3600));
    else
        snprintf(out, out_len, "%.0fd ago", floor(s_ago / 86400));
}

const char *fe_fmt_label(const char *name, const char *address)
{
    static char prefix[9];
    if (name && *name)
        return name;
    if (address && *address) {
        snprintf(prefix, sizeof prefix, "%.8s", address);
        return prefix;
    }
    return "?";
}

int fe_fmt_is_invite(const char *text)
{
    static const char tag[] = "ferry-invite:";
    if (strncmp(text, tag, sizeof tag - 1) != 0)
        return 0;
    const char *colon = strrchr(text, ':');
    if (colon == text + sizeof tag - 2)
        return 0; /* no name part */
    size_t hex = strspn(colon + 1, "0123456789abcdefABCDEF");
    return hex == 64 && colon[1 + hex] == '\0';
}

void fe_fmt_message(FILE *out, const cJSON *msg, int with_age)
{
    const char *type = fe_json_str(msg, "type");
    if (with_age) {
        char ago[32];
        fe_fmt_ago(ago, sizeof ago, fe_json_num(msg, "received_s_ago", 0));
        fprintf(out, "[%s] ", ago);
    }
    if (strcmp(type, "group") == 0) {
        fputc('#', out);
        fe_fmt_text(out, fe_fmt_label(fe_json_str(msg, "group_name"), fe_json_str(msg, "group_id")),
                    NULL);
        fputc(' ', out);
    }
    if (strcmp(type, "anonymous") == 0)
        fputs("(anonymous)", out);
    else
        fe_fmt_text(out, fe_fmt_label(fe_json_str(msg, "from_name"), fe_json_str(msg, "from")),
                    NULL);
    fputs(": ", out);
    fe_fmt_text(out, fe_json_str(msg, "text"), "    ");
    fputc('\n', out);
}

/* --- tables --- */

#define CELL_BYTES (FE_FMT_CELL_MAX * 4 + 8) /* one character more than fits, so cutting shows */

struct table {
    size_t ncols;
    size_t nrows;
    size_t width[FE_FMT_TABLE_COLS_MAX];
    char (*cells)[FE_FMT_TABLE_COLS_MAX][CELL_BYTES]; /* row 0 is the heading */
};

static int table_init(struct table *t, size_t nrows, size_t ncols, const char *const *head)
{
    memset(t, 0, sizeof *t);
    t->ncols = ncols;
    t->nrows = nrows + 1;
    t->cells = calloc(t->nrows, sizeof *t->cells);
    if (!t->cells)
        return -1;
    for (size_t c = 0; c < ncols; c++) {
        snprintf(t->cells[0][c], CELL_BYTES, "%s", head[c]);
        t->width[c] = fe_fmt_width(head[c]);
    }
    return 0;
}

/* Sets a cell from untrusted text, cut to FE_FMT_CELL_MAX columns. */
static void table_set(struct table *t, size_t row, size_t col, const char *s)
{
    char *cell = t->cells[row + 1][col];
    size_t cols = fe_fmt_clean(cell, CELL_BYTES, s);
    if (cols > FE_FMT_CELL_MAX) {
        size_t keep = 0, seen = 0;
        while (cell[keep] && seen < FE_FMT_CELL_MAX - 1) {
            keep++;
            while ((cell[keep] & 0xc0) == 0x80)
                keep++;
            seen++;
        }
        memcpy(cell + keep, "\xe2\x80\xa6", 4); /* an ellipsis and the terminator */
        cols = FE_FMT_CELL_MAX;
    }
    if (cols > t->width[col])
        t->width[col] = cols;
}

static void table_print(struct table *t, FILE *out)
{
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            const char *cell = t->cells[r][c];
            fputs(cell, out);
            if (c + 1 < t->ncols) {
                for (size_t pad = fe_fmt_width(cell); pad < t->width[c] + 2; pad++)
                    fputc(' ', out);
            }
        }
        fputc('\n', out);
    }
    free(t->cells);
    t->cells = NULL;
}

void fe_fmt_users(FILE *out, const cJSON *users)
{
    static const char *const head[] = {"NAME",      "ADDRESS",     "ONLINE",
                                       "LAST SEEN", "FINGERPRINT", "FLAGS"};
    struct table t;
    if (table_init(&t, (size_t)cJSON_GetArraySize(users), 6, head) != 0)
        return;
    size_t r = 0;
    const cJSON *u;
    cJSON_ArrayForEach(u, users)
    {
        char addr[16], ago[32], flags[64];
        snprintf(addr, sizeof addr, "%.8s", fe_json_str(u, "address"));
        fe_fmt_ago(ago, sizeof ago, fe_json_num(u, "last_seen_s_ago", -1));
        int verified = fe_json_bool(u, "verified"), conflict = fe_json_bool(u, "name_conflict");
        snprintf(flags, sizeof flags, "%s%s%s", verified ? "verified" : "",
                 verified && conflict ? "," : "", conflict ? "name-conflict" : "");
        table_set(&t, r, 0, fe_json_str(u, "name"));
        table_set(&t, r, 1, addr);
        table_set(&t, r, 2, fe_json_bool(u, "online") ? "yes" : "no");
        table_set(&t, r, 3, ago);
        table_set(&t, r, 4, fe_json_str(u, "fingerprint"));
        table_set(&t, r, 5, flags[0] ? flags : "-");
        r++;
    }
    table_print(&t, out);
}

static void num_cell(char *out, size_t out_len, const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsNumber(v))
        snprintf(out, out_len, "%.0f", v->valuedouble);
    else
        snprintf(out, out_len, "-");
}

void fe_fmt_links(FILE *out, const cJSON *links)
{
    static const char *const head[] = {"NAME", "KIND", "MTU", "UP", "RX", "TX", "DROPPED"};
    static const char *const nums[] = {"mtu", "rx_frames", "tx_frames", "rx_dropped"};
    static const size_t num_col[] = {2, 4, 5, 6};
    struct table t;
    if (table_init(&t, (size_t)cJSON_GetArraySize(links), 7, head) != 0)
        return;
    size_t r = 0;
    const cJSON *l;
    cJSON_ArrayForEach(l, links)
    {
        table_set(&t, r, 0, fe_json_str(l, "name"));
        table_set(&t, r, 1, fe_json_str(l, "kind"));
        table_set(&t, r, 3, fe_json_bool(l, "up") ? "up" : "down");
        for (size_t i = 0; i < 4; i++) {
            char n[32];
            num_cell(n, sizeof n, l, nums[i]);
            table_set(&t, r, num_col[i], n);
        }
        r++;
    }
    table_print(&t, out);
}

void fe_fmt_groups(FILE *out, const cJSON *groups)
{
    static const char *const head[] = {"NAME", "GROUP ID"};
    struct table t;
    if (table_init(&t, (size_t)cJSON_GetArraySize(groups), 2, head) != 0)
        return;
    size_t r = 0;
    const cJSON *g;
    cJSON_ArrayForEach(g, groups)
    {
        char name[CELL_BYTES];
        snprintf(name, sizeof name, "#%s", fe_json_str(g, "name"));
        table_set(&t, r, 0, name);
        table_set(&t, r, 1, fe_json_str(g, "group_id"));
        r++;
    }
    table_print(&t, out);
}

void fe_fmt_object(FILE *out, const cJSON *obj, int depth)
{
    const cJSON *v;
    int ind = depth * 2;
    cJSON_ArrayForEach(v, obj)
    {
        if (v->string) {
            fprintf(out, "%*s", ind, "");
            fe_fmt_text(out, v->string, NULL);
            fputc(':', out);
        } else {
            fprintf(out, "%*s-", ind, "");
        }
        if (cJSON_IsObject(v) || cJSON_IsArray(v)) {
            fputc('\n', out);
            fe_fmt_object(out, v, depth + 1);
        } else if (cJSON_IsNumber(v)) {
            double d = v->valuedouble;
            if (d == floor(d) && fabs(d) < 1e15)
                fprintf(out, " %.0f\n", d);
            else
                fprintf(out, " %.3f\n", d);
        } else if (cJSON_IsBool(v)) {
            fprintf(out, " %s\n", cJSON_IsTrue(v) ? "yes" : "no");
        } else if (cJSON_IsString(v)) {
            fputc(' ', out);
            fe_fmt_text(out, v->valuestring, NULL);
            fputc('\n', out);
        } else {
            fputs(" -\n", out);
        }
    }
}
