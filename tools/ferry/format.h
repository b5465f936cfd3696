/* Human-readable output of the ferry CLI: tables, messages, durations.
 * Every string that came from the mesh (names, message text) is untrusted and
 * goes through fe_fmt_text or a table cell, which replace control characters,
 * invalid UTF-8 and bidirectional overrides so a message cannot rewrite the
 * user's terminal or disguise itself. */
#ifndef FE_FORMAT_H
#define FE_FORMAT_H

#include <stddef.h>
#include <stdio.h>
#include <cjson/cJSON.h>

#define FE_FMT_TABLE_COLS_MAX 8
#define FE_FMT_CELL_MAX 40 /* display columns a table cell may take before it is cut */

/* Writes untrusted text s with unsafe characters replaced by '?'. Each
 * newline in s becomes a newline followed by indent (NULL: ""). */
void fe_fmt_text(FILE *out, const char *s, const char *indent);

/* Copies s into out (always terminated) with the same replacements, newlines
 * becoming spaces. Returns the number of display columns written. */
size_t fe_fmt_clean(char *out, size_t out_len, const char *s);

/* Display columns of valid UTF-8 text (one per code point; good enough for
 * the scripts names are written in, and it errs wide, never narrow). */
size_t fe_fmt_width(const char *s);

/* "now", "12s ago", "5m ago", "3h ago", "2d ago"; "never" if s_ago < 0. */
void fe_fmt_ago(char *out, size_t out_len, double s_ago);

/* The label for a user or sender: the name, else the first 8 hex digits of
 * the address, else "?" (untrusted: pass it through the cleaners). */
const char *fe_fmt_label(const char *name, const char *address);

/* One message from the inbox or an event, on one line (continued lines
 * indented): "[5m ago] bob: text", "#camp alice: text", "(anonymous): text".
 * with_age adds the "[... ago] " prefix. */
void fe_fmt_message(FILE *out, const cJSON *msg, int with_age);

/* 1 if text is a group invite ("ferry-invite:NAME:64 hex"). */
int fe_fmt_is_invite(const char *text);

/* Tables for the users, links and groups arrays of the daemon's results. */
void fe_fmt_users(FILE *out, const cJSON *users);
void fe_fmt_links(FILE *out, const cJSON *links);
void fe_fmt_groups(FILE *out, const cJSON *groups);

/* Any result object as indented "key: value" lines (for stats). */
void fe_fmt_object(FILE *out, const cJSON *obj, int depth);

#endif
