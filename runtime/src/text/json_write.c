/* text/json_write.c — cJSON tree → JSON text, as Python's json.dumps writes it and
 * without losing any value (see json.h for the rules and why cJSON_Print is not used). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/json.h"
#include "util/text.h"

typedef struct writer {
  ckpt_tf_buf out;
  ckpt_error *err;
  char path[512]; /* "$.a[3].b" for error messages */
  size_t path_len;
} writer;

static size_t path_set(writer *w, int n, size_t room, size_t saved) {
  if (n > 0)
    w->path_len = (size_t)n >= room ? sizeof w->path - 1 : w->path_len + (size_t)n;
  return saved;
}
static size_t path_push_key(writer *w, const char *key) {
  size_t room = sizeof w->path - w->path_len;
  return path_set(w, snprintf(w->path + w->path_len, room, ".%s", key), room, w->path_len);
}
static size_t path_push_index(writer *w, size_t i) {
  size_t room = sizeof w->path - w->path_len;
  return path_set(w, snprintf(w->path + w->path_len, room, "[%zu]", i), room, w->path_len);
}
static void path_pop(writer *w, size_t saved) {
  w->path_len = saved;
  w->path[saved] = '\0';
}

static ckpt_status write_string(writer *w, const char *s, const char *what) {
  size_t n = strlen(s), bad;
  if (!ckpt_tf_utf8_valid((const uint8_t *)s, n, &bad))
    return ckpt_error_set(w->err, CKPT_EINVAL,
                          "JSON %s at %s is not valid UTF-8 (byte %zu); Python could not read it",
                          what, w->path, bad);
  ckpt_tf_buf *b = &w->out;
  ckpt_tf_buf_putc(b, '"');
  size_t i = 0;
  while (i < n) {
    size_t run = i; /* plain printable ASCII is copied in runs */
    while (run < n && (unsigned char)s[run] >= 0x20 && (unsigned char)s[run] < 0x7f &&
           s[run] != '"' && s[run] != '\\')
      run++;
    ckpt_tf_buf_append(b, s + i, run - i);
    i = run;
    if (i >= n)
      break;
    uint32_t cp;
    i += ckpt_tf_utf8_decode((const uint8_t *)s + i, n - i, &cp);
    switch (cp) {
      case '"':
        ckpt_tf_buf_puts(b, "\\\"");
        break;
      case '\\':
        ckpt_tf_buf_puts(b, "\\\\");
        break;
      case '\n':
        ckpt_tf_buf_puts(b, "\\n");
        break;
      case '\r':
        ckpt_tf_buf_puts(b, "\\r");
        break;
      case '\t':
        ckpt_tf_buf_puts(b, "\\t");
        break;
      case '\b':
        ckpt_tf_buf_puts(b, "\\b");
        break;
      case '\f':
        ckpt_tf_buf_puts(b, "\\f");
        break;
      default:
        if (cp >= 0x10000) { /* UTF-16 surrogate pair, as json.dumps(ensure_ascii=True) */
          uint32_t v = cp - 0x10000;
          ckpt_tf_buf_printf(b, "\\u%04x\\u%04x", 0xD800u + (v >> 10), 0xDC00u + (v & 0x3FFu));
        } else {
          ckpt_tf_buf_printf(b, "\\u%04x", (unsigned)cp);
        }
    }
  }
  ckpt_tf_buf_putc(b, '"');
  return CKPT_OK;
}

static void write_number(writer *w, double d) {
  ckpt_tf_buf *b = &w->out;
  if (isnan(d)) {
    ckpt_tf_buf_puts(b, "NaN");
  } else if (isinf(d)) {
    ckpt_tf_buf_puts(b, d < 0 ? "-Infinity" : "Infinity");
  } else if (d == floor(d) && fabs(d) < 1e17 && !(d == 0 && signbit(d))) {
    /* integral: all digits, exactly (Python reads it back as an int of the same value) */
    ckpt_tf_buf_printf(b, "%.0f", d);
  } else {
    char num[CKPT_TF_NUM_MAX];
    ckpt_tf_buf_append(b, num, ckpt_tf_double_repr(d, num));
  }
}

static int key_cmp(const void *x, const void *y) {
  const cJSON *a = *(const cJSON *const *)x, *b = *(const cJSON *const *)y;
  return strcmp(a->string, b->string);
}

/* Python keeps one value per key, so a cJSON object with a repeated key cannot be written
 * without losing one of them. */
static ckpt_status check_unique_keys(writer *w, const cJSON *obj) {
  size_t n = 0;
  for (const cJSON *c = obj->child; c; c = c->next) {
    if (!c->string)
      return ckpt_error_set(w->err, CKPT_EINVAL, "JSON object member at %s has no key", w->path);
    n++;
  }
  if (n < 2)
    return CKPT_OK;
  if (n <= 8) { /* small objects: pairwise */
    for (const cJSON *a = obj->child; a; a = a->next)
      for (const cJSON *b = a->next; b; b = b->next)
        if (strcmp(a->string, b->string) == 0)
          return ckpt_error_set(w->err, CKPT_EINVAL, "JSON object at %s has duplicate key '%s'",
                                w->path, a->string);
    return CKPT_OK;
  }
  const cJSON **keys = malloc(n * sizeof *keys);
  if (!keys)
    return ckpt_error_set(w->err, CKPT_ENOMEM, "out of memory checking keys of %s", w->path);
  size_t i = 0;
  for (const cJSON *c = obj->child; c; c = c->next)
    keys[i++] = c;
  qsort(keys, n, sizeof *keys, key_cmp);
  ckpt_status st = CKPT_OK;
  for (i = 1; i < n; i++) {
    if (strcmp(keys[i - 1]->string, keys[i]->string) == 0) {
      st = ckpt_error_set(w->err, CKPT_EINVAL, "JSON object at %s has duplicate key '%s'", w->path,
                          keys[i]->string);
      break;
    }
  }
  free(keys);
  return st;
}

static ckpt_status write_value(writer *w, const cJSON *item, int depth) {
  if (depth > CKPT_JSON_MAX_DEPTH)
    return ckpt_error_set(w->err, CKPT_EINVAL, "JSON value at %s is nested deeper than %d (cycle?)",
                          w->path, CKPT_JSON_MAX_DEPTH);
  ckpt_status st = CKPT_OK;
  switch (item->type & 0xFF) {
    case cJSON_False:
      ckpt_tf_buf_puts(&w->out, "false");
      break;
    case cJSON_True:
      ckpt_tf_buf_puts(&w->out, "true");
      break;
    case cJSON_NULL:
      ckpt_tf_buf_puts(&w->out, "null");
      break;
    case cJSON_Number:
      write_number(w, item->valuedouble);
      break;
    case cJSON_String:
      if (!item->valuestring)
        return ckpt_error_set(w->err, CKPT_EINVAL, "JSON string at %s is NULL", w->path);
      st = write_string(w, item->valuestring, "string");
      break;
    case cJSON_Raw: {
      /* verbatim, but only if it is one valid JSON value: never write a corrupt file */
      if (!item->valuestring)
        return ckpt_error_set(w->err, CKPT_EINVAL, "JSON raw item at %s is NULL", w->path);
      cJSON *check = NULL;
      ckpt_error sub = CKPT_ERROR_INIT;
      if (ckpt_json_load(item->valuestring, strlen(item->valuestring), "raw", &check, &sub) !=
          CKPT_OK)
        return ckpt_error_set(w->err, CKPT_EINVAL, "JSON raw item at %s is not valid JSON: %s",
                              w->path, sub.message);
      cJSON_Delete(check);
      ckpt_tf_buf_puts(&w->out, item->valuestring);
      break;
    }
    case cJSON_Array: {
      ckpt_tf_buf_putc(&w->out, '[');
      size_t i = 0;
      for (const cJSON *c = item->child; c && st == CKPT_OK; c = c->next, i++) {
        if (i)
          ckpt_tf_buf_puts(&w->out, ", ");
        size_t saved = path_push_index(w, i);
        st = write_value(w, c, depth + 1);
        path_pop(w, saved);
      }
      ckpt_tf_buf_putc(&w->out, ']');
      break;
    }
    case cJSON_Object: {
      st = check_unique_keys(w, item);
      if (st != CKPT_OK)
        return st;
      ckpt_tf_buf_putc(&w->out, '{');
      size_t i = 0;
      for (const cJSON *c = item->child; c && st == CKPT_OK; c = c->next, i++) {
        if (i)
          ckpt_tf_buf_puts(&w->out, ", ");
        size_t saved = path_push_key(w, c->string);
        st = write_string(w, c->string, "key");
        if (st == CKPT_OK) {
          ckpt_tf_buf_puts(&w->out, ": ");
          st = write_value(w, c, depth + 1);
        }
        path_pop(w, saved);
      }
      ckpt_tf_buf_putc(&w->out, '}');
      break;
    }
    default:
      return ckpt_error_set(w->err, CKPT_EINVAL, "JSON item at %s has invalid cJSON type %d",
                            w->path, item->type & 0xFF);
  }
  return st;
}

ckpt_status ckpt_json_dump(const cJSON *item, char **out, size_t *len, ckpt_error *err) {
  if (out)
    *out = NULL;
  if (len)
    *len = 0;
  if (!item || !out)
    return ckpt_error_set(err, CKPT_EINVAL, "ckpt_json_dump: %s is NULL", item ? "out" : "item");
  writer w = {CKPT_TF_BUF_INIT, err, "$", 1};
  ckpt_status st = write_value(&w, item, 0);
  if (st != CKPT_OK) {
    ckpt_tf_buf_free(&w.out);
    return st;
  }
  return ckpt_tf_buf_take(&w.out, "JSON", out, len, err);
}

ckpt_status ckpt_json_write_file(ckpt_io *io, const char *path, const cJSON *item, bool durable,
                                 ckpt_error *err) {
  char *text;
  size_t len;
  ckpt_status st = ckpt_json_dump(item, &text, &len, err);
  if (st != CKPT_OK) {
    ckpt_error_prefix(err, "while writing '%s': ", path ? path : "(null)");
    return st;
  }
  st = ckpt_io_write_file(io, path, text, len, durable, err);
  free(text);
  return st;
}
