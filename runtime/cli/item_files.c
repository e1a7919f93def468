/* cli/item_files.c — the files behind an item, for the subcommands that read them: which file
 * a handler wrote (_METADATA, `metadata` or the manager's `metrics/metrics`, proto.pbtxt),
 * loading JSON and text with a size bound, one-line summaries for listings, and the exact
 * timestamps of _CHECKPOINT_METADATA. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "inspect/inspect.h"

static bool is_file(ckpt_io *io, const char *dir, const char *name) {
  char *p = ckpt_path_join(dir, name);
  ckpt_io_kind kind = CKPT_IO_KIND_MISSING;
  uint64_t size;
  bool ok =
      p != NULL && ckpt_io_stat(io, p, &kind, &size, NULL) == CKPT_OK && kind == CKPT_IO_KIND_FILE;
  free(p);
  return ok;
}

/* ---------------------------------------------------------------- item files */

/* Largest JSON or proto text file read (as the handlers' own bound). */
#define ITEM_FILE_MAX ((size_t)1 << 30)

char *cli_item_file(ckpt_io *io, const cli_item *it) {
  if (it->dir == NULL)
    return NULL;
  switch (it->kind) {
    case CLI_ITEM_PYTREE:
      return ckpt_path_join(it->dir, CKPT_METADATA_FILE);
    case CLI_ITEM_PROTO:
      return ckpt_path_join(it->dir, "proto.pbtxt");
    case CLI_ITEM_JSON:
      if (it->file != NULL)
        return ckpt_path_join(it->dir, it->file);
      return ckpt_path_join(it->dir, is_file(io, it->dir, "metadata")          ? "metadata"
                                     : is_file(io, it->dir, CKPT_JSON_V1_FILE) ? CKPT_JSON_V1_FILE
                                                                               : ckpt_path_base(it->dir));
    default:
      return NULL;
  }
}

ckpt_status cli_item_load_json(ckpt_io *io, const cli_item *it, cJSON **out, ckpt_error *err) {
  *out = NULL;
  char *path = cli_item_file(io, it);
  if (path == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  ckpt_status st = ckpt_json_read_file(io, path, ITEM_FILE_MAX, out, err);
  free(path);
  return st;
}

ckpt_status cli_item_load_text(ckpt_io *io, const cli_item *it, char **out, size_t *len,
                               ckpt_error *err) {
  *out = NULL;
  *len = 0;
  char *path = cli_item_file(io, it);
  if (path == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  void *data = NULL;
  ckpt_status st = ckpt_io_read_file(io, path, ITEM_FILE_MAX, &data, len, err);
  free(path);
  *out = data;
  return st;
}

#define SUMMARY_MAX 72

/* Copies at most SUMMARY_MAX bytes of text (newlines and tabs as spaces, runs of blanks
 * collapsed), cut at a UTF-8 boundary, with "..." when cut. */
static char *clip(const char *text, size_t len) {
  char *o = malloc(SUMMARY_MAX + 8);
  if (o == NULL)
    return NULL;
  size_t n = 0;
  bool cut = false;
  for (size_t i = 0; i < len; i++) {
    char ch = text[i];
    if (ch == '\n' || ch == '\t' || ch == '\r')
      ch = ' ';
    if (ch == ' ' && (n == 0 || o[n - 1] == ' '))
      continue;
    if (n >= SUMMARY_MAX) {
      cut = true;
      break;
    }
    o[n++] = ch;
  }
  if (cut) {
    /* never end inside a UTF-8 sequence (dropping the last non-ASCII character whole) */
    while (n > 0 && ((unsigned char)o[n - 1] & 0xC0) == 0x80)
      n--;
    if (n > 0 && ((unsigned char)o[n - 1] & 0x80))
      n--;
    memcpy(o + n, "...", 3);
    n += 3;
  }
  while (n > 0 && o[n - 1] == ' ')
    n--;
  o[n] = '\0';
  return o;
}

char *cli_json_summary(const cJSON *v) {
  char *text = NULL;
  size_t len = 0;
  if (ckpt_json_dump(v, &text, &len, NULL) != CKPT_OK)
    return NULL;
  char *c = clip(text, len);
  free(text);
  if (c == NULL)
    return NULL;
  int n = cJSON_GetArraySize(v);
  char *out;
  if (cJSON_IsObject(v))
    out = cli_asprintf("object, %d key%s: %s", n, n == 1 ? "" : "s", c);
  else if (cJSON_IsArray(v))
    out = cli_asprintf("array, %d item%s: %s", n, n == 1 ? "" : "s", c);
  else
    out = cli_asprintf("%s", c);
  free(c);
  return out;
}

char *cli_text_summary(const char *text, size_t len) {
  size_t lines = 0;
  for (size_t i = 0; i < len; i++)
    lines += text[i] == '\n';
  if (len > 0 && text[len - 1] != '\n')
    lines++;
  char *c = clip(text, len);
  if (c == NULL)
    return NULL;
  char *out = cli_asprintf("%zu line%s: %s", lines, lines == 1 ? "" : "s", c);
  free(c);
  return out;
}

/* ---------------------------------------------------------------- exact timestamps */

/* The exact digits of an integer timestamp (a double beyond 2^53, or outside int64's range,
 * is no timestamp: converting it would be undefined behaviour). */
static void timestamp_text(const cJSON *v, char *out) {
  out[0] = '\0';
  int64_t t;
  if (ckpt_json_get_int64(v, &t))
    snprintf(out, 32, "%lld", (long long)t);
}

void cli_read_timestamps(ckpt_io *io, const char *dir, char *init, char *commit) {
  init[0] = commit[0] = '\0';
  char *path = ckpt_path_join(dir, CKPT_CHECKPOINT_METADATA_FILE);
  cJSON *doc = NULL;
  if (path && ckpt_json_read_file(io, path, CKPT_STEP_METADATA_MAX_BYTES, &doc, NULL) == CKPT_OK) {
    timestamp_text(cJSON_GetObjectItemCaseSensitive(doc, "init_timestamp_nsecs"), init);
    timestamp_text(cJSON_GetObjectItemCaseSensitive(doc, "commit_timestamp_nsecs"), commit);
  }
  cJSON_Delete(doc);
  free(path);
}

cJSON *cli_jtimestamp(const char *text) {
  return text && text[0] ? cJSON_CreateRaw(text) : cJSON_CreateNull();
}
