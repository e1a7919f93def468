/* text/json_write.c — cJSON tree → JSON text: the one JSON writer of libckpt, in the layouts
 * of text/json.h (Python's json.dumps, its compact form, TensorStore's sorted compact form),
 * without losing any value; plus the string and number primitives the hand-built _METADATA
 * and _PACKED writers append with (see json.h for the rules and why cJSON_Print is not used).
 *
 * The writer is on the save path of large states (_CHECKSUMS of 10,000 arrays), so the common
 * case is kept cheap: plain text is copied in runs, integers are formatted without printf, and
 * the "$.a[3].b" path of a value is only worked out when there is an error to report. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/json.h"
#include "util/text.h"

/* ---------------------------------------------------------------- primitives */

static const char hex_digits[] = "0123456789abcdef";

static void put_u_escape(ckpt_tf_buf *b, uint32_t u) {
  char e[6] = {'\\',
               'u',
               hex_digits[(u >> 12) & 0xF],
               hex_digits[(u >> 8) & 0xF],
               hex_digits[(u >> 4) & 0xF],
               hex_digits[u & 0xF]};
  ckpt_tf_buf_append(b, e, sizeof e);
}

void ckpt_json_put_string_style(ckpt_tf_buf *b, const char *s, size_t n, unsigned style) {
  bool utf8 = (style & CKPT_JSON_UTF8) != 0;
  const unsigned char *p = (const unsigned char *)s;
  ckpt_tf_buf_putc(b, '"');
  size_t i = 0;
  while (i < n) {
    size_t run = i; /* text that needs no escape is copied in runs */
    if (utf8) {
      while (run < n && p[run] >= 0x20 && p[run] != '"' && p[run] != '\\')
        run++;
    } else {
      while (run < n && p[run] >= 0x20 && p[run] < 0x7f && p[run] != '"' && p[run] != '\\')
        run++;
    }
    ckpt_tf_buf_append(b, p + i, run - i);
    i = run;
    if (i >= n)
      break;
    unsigned char c = p[i];
    if (c < 0x80) {
      i++;
      switch (c) {
        case '"':
          ckpt_tf_buf_append(b, "\\\"", 2);
          break;
        case '\\':
          ckpt_tf_buf_append(b, "\\\\", 2);
          break;
        case '\n':
          ckpt_tf_buf_append(b, "\\n", 2);
          break;
        case '\r':
          ckpt_tf_buf_append(b, "\\r", 2);
          break;
        case '\t':
          ckpt_tf_buf_append(b, "\\t", 2);
          break;
        case '\b':
          ckpt_tf_buf_append(b, "\\b", 2);
          break;
        case '\f':
          ckpt_tf_buf_append(b, "\\f", 2);
          break;
        default: /* other control characters, and DEL when escaping to ASCII (as Python) */
          put_u_escape(b, c);
      }
      continue;
    }
    /* non-ASCII with ensure_ascii: \uXXXX, a UTF-16 surrogate pair above the BMP */
    uint32_t cp;
    i += ckpt_tf_utf8_decode(p + i, n - i, &cp); /* an invalid byte decodes as its value */
    if (cp >= 0x10000) {
      uint32_t v = cp - 0x10000;
      put_u_escape(b, 0xD800u + (v >> 10));
      put_u_escape(b, 0xDC00u + (v & 0x3FFu));
    } else {
      put_u_escape(b, cp);
    }
  }
  ckpt_tf_buf_putc(b, '"');
}

void ckpt_json_put_string(ckpt_tf_buf *b, const char *s) {
  ckpt_json_put_string_style(b, s, strlen(s), CKPT_JSON_STYLE_NLOHMANN);
}

void ckpt_json_put_number(ckpt_tf_buf *b, double d) {
  if (isnan(d)) {
    ckpt_tf_buf_append(b, "NaN", 3);
  } else if (isinf(d)) {
    if (d < 0)
      ckpt_tf_buf_append(b, "-Infinity", 9);
    else
      ckpt_tf_buf_append(b, "Infinity", 8);
  } else if (d == floor(d) && fabs(d) < 1e17 && !(d == 0 && signbit(d))) {
    /* integral: all digits, exactly (Python reads it back as an int of the same value) */
    char digits[24];
    char *q = digits + sizeof digits;
    unsigned long long u = (unsigned long long)fabs(d);
    do {
      *--q = (char)('0' + u % 10);
      u /= 10;
    } while (u);
    if (d < 0)
      *--q = '-';
    ckpt_tf_buf_append(b, q, (size_t)(digits + sizeof digits - q));
  } else {
    char num[CKPT_TF_NUM_MAX];
    ckpt_tf_buf_append(b, num, ckpt_tf_double_repr(d, num));
  }
}

/* ---------------------------------------------------------------- the tree writer */

typedef struct writer {
  ckpt_tf_buf out;
  unsigned style;
  ckpt_error *err;
  /* stack[0] is the root, stack[d] the value being written at depth d: enough to name the
   * path of a value in an error message without formatting it for every value written. */
  const cJSON *stack[CKPT_JSON_MAX_DEPTH + 2];
} writer;

#if defined(__GNUC__)
#define JW_NOINLINE __attribute__((noinline))
#else
#define JW_NOINLINE
#endif

/* "$.a[3].b" for the value at depth (truncated to fit buf). */
static void path_of(const writer *w, int depth, char *buf, size_t size) {
  size_t len = (size_t)snprintf(buf, size, "$");
  for (int d = 1; d <= depth && len < size; d++) {
    const cJSON *parent = w->stack[d - 1], *child = w->stack[d];
    int n;
    if ((parent->type & 0xFF) == cJSON_Object) {
      n = snprintf(buf + len, size - len, ".%s", child->string ? child->string : "");
    } else {
      size_t index = 0;
      for (const cJSON *c = parent->child; c && c != child; c = c->next)
        index++;
      n = snprintf(buf + len, size - len, "[%zu]", index);
    }
    if (n < 0)
      break;
    len += (size_t)n;
  }
}

/* Reports "<what> at <path of the value at depth> <tail>". Out of line, so the recursive
 * frames do not carry the message buffers. */
#if defined(__GNUC__)
__attribute__((format(printf, 5, 6)))
#endif
JW_NOINLINE static ckpt_status
fail(writer *w, int depth, ckpt_status code, const char *what, const char *fmt, ...) {
  char path[512], tail[CKPT_ERROR_MESSAGE_MAX];
  path_of(w, depth, path, sizeof path);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(tail, sizeof tail, fmt, ap);
  va_end(ap);
  return ckpt_error_set(w->err, code, "%s at %s %s", what, path, tail);
}

static ckpt_status write_string(writer *w, int depth, const char *s, const char *what) {
  size_t n = strlen(s), bad;
  if (!ckpt_tf_utf8_valid((const uint8_t *)s, n, &bad))
    return fail(w, depth, CKPT_EINVAL, what,
                "is not valid UTF-8 (byte %zu); Python could not read it", bad);
  ckpt_json_put_string_style(&w->out, s, n, w->style);
  return CKPT_OK;
}

/* A raw item verbatim, but only if it is one valid JSON value: never write a corrupt file. */
JW_NOINLINE static ckpt_status write_raw(writer *w, int depth, const cJSON *item) {
  if (!item->valuestring)
    return fail(w, depth, CKPT_EINVAL, "JSON raw item", "is NULL");
  cJSON *check = NULL;
  ckpt_error sub = CKPT_ERROR_INIT;
  if (ckpt_json_load(item->valuestring, strlen(item->valuestring), "raw", &check, &sub) != CKPT_OK)
    return fail(w, depth, CKPT_EINVAL, "JSON raw item", "is not valid JSON: %s", sub.message);
  cJSON_Delete(check);
  ckpt_tf_buf_puts(&w->out, item->valuestring);
  return CKPT_OK;
}

static int key_cmp(const void *x, const void *y) {
  const cJSON *a = *(const cJSON *const *)x, *b = *(const cJSON *const *)y;
  return strcmp(a->string, b->string);
}

static ckpt_status duplicate_key(writer *w, int depth, const char *key) {
  return fail(w, depth, CKPT_EINVAL, "JSON object", "has duplicate key '%s'", key);
}

/* The members of obj in the order they are written: *members points at small (which holds 8)
 * or at a malloc'ed array. Python keeps one value per key, so an object with a repeated key
 * cannot be written without losing one of them: refused. */
static ckpt_status members_of(writer *w, int depth, const cJSON *obj, const cJSON **small,
                              const cJSON ***members, size_t *count) {
  size_t n = 0;
  for (const cJSON *c = obj->child; c; c = c->next) {
    if (!c->string)
      return fail(w, depth, CKPT_EINVAL, "JSON object member", "has no key");
    n++;
  }
  *count = n;
  *members = small;
  bool sort = (w->style & CKPT_JSON_SORT_KEYS) != 0;
  if (n <= 8) {
    size_t i = 0;
    for (const cJSON *c = obj->child; c; c = c->next)
      small[i++] = c;
    for (size_t a = 0; a < n; a++) /* small objects: pairwise, and insertion sort if asked */
      for (size_t b = a + 1; b < n; b++) {
        int cmp = strcmp(small[a]->string, small[b]->string);
        if (cmp == 0)
          return duplicate_key(w, depth, small[a]->string);
        if (sort && cmp > 0) {
          const cJSON *t = small[a];
          small[a] = small[b];
          small[b] = t;
        }
      }
    return CKPT_OK;
  }
  const cJSON **keys = malloc(n * sizeof *keys);
  if (!keys)
    return fail(w, depth, CKPT_ENOMEM, "out of memory writing the JSON object", "(%zu members)", n);
  size_t i = 0;
  for (const cJSON *c = obj->child; c; c = c->next)
    keys[i++] = c;
  qsort(keys, n, sizeof *keys, key_cmp);
  for (i = 1; i < n; i++) {
    if (strcmp(keys[i - 1]->string, keys[i]->string) == 0) {
      ckpt_status st = duplicate_key(w, depth, keys[i]->string);
      free(keys);
      return st;
    }
  }
  if (sort) {
    *members = keys;
    return CKPT_OK;
  }
  free(keys); /* checked; written in the tree's order */
  *members = NULL;
  return CKPT_OK;
}

static ckpt_status write_value(writer *w, const cJSON *item, int depth) {
  w->stack[depth] = item; /* depth <= CKPT_JSON_MAX_DEPTH + 1: within the stack */
  if (depth > CKPT_JSON_MAX_DEPTH)
    return fail(w, depth, CKPT_EINVAL, "JSON value", "is nested deeper than %d (cycle?)",
                CKPT_JSON_MAX_DEPTH);
  bool compact = (w->style & CKPT_JSON_COMPACT) != 0;
  const char *item_sep = compact ? "," : ", ";
  const char *key_sep = compact ? ":" : ": ";
  size_t sep_len = compact ? 1 : 2;
  ckpt_status st = CKPT_OK;
  switch (item->type & 0xFF) {
    case cJSON_False:
      ckpt_tf_buf_append(&w->out, "false", 5);
      break;
    case cJSON_True:
      ckpt_tf_buf_append(&w->out, "true", 4);
      break;
    case cJSON_NULL:
      ckpt_tf_buf_append(&w->out, "null", 4);
      break;
    case cJSON_Number:
      ckpt_json_put_number(&w->out, item->valuedouble);
      break;
    case cJSON_String:
      if (!item->valuestring)
        return fail(w, depth, CKPT_EINVAL, "JSON string", "is NULL");
      st = write_string(w, depth, item->valuestring, "JSON string");
      break;
    case cJSON_Raw:
      st = write_raw(w, depth, item);
      break;
    case cJSON_Array: {
      ckpt_tf_buf_putc(&w->out, '[');
      for (const cJSON *c = item->child; c && st == CKPT_OK; c = c->next) {
        if (c != item->child)
          ckpt_tf_buf_append(&w->out, item_sep, sep_len);
        st = write_value(w, c, depth + 1);
      }
      ckpt_tf_buf_putc(&w->out, ']');
      break;
    }
    case cJSON_Object: {
      const cJSON *small[8], **members = NULL;
      size_t n = 0;
      st = members_of(w, depth, item, small, &members, &n);
      if (st != CKPT_OK)
        return st;
      ckpt_tf_buf_putc(&w->out, '{');
      const cJSON *c = item->child;
      for (size_t i = 0; i < n && st == CKPT_OK; i++) {
        if (members)
          c = members[i];
        if (i)
          ckpt_tf_buf_append(&w->out, item_sep, sep_len);
        w->stack[depth + 1] = c;
        st = write_string(w, depth + 1, c->string, "JSON key");
        if (st == CKPT_OK) {
          ckpt_tf_buf_append(&w->out, key_sep, sep_len);
          st = write_value(w, c, depth + 1);
        }
        c = c->next;
      }
      if (members != small && members != NULL)
        free(members);
      ckpt_tf_buf_putc(&w->out, '}');
      break;
    }
    default:
      return fail(w, depth, CKPT_EINVAL, "JSON item", "has invalid cJSON type %d",
                  item->type & 0xFF);
  }
  return st;
}

ckpt_status ckpt_json_dumps(const cJSON *item, unsigned style, char **out, size_t *len,
                            ckpt_error *err) {
  if (out)
    *out = NULL;
  if (len)
    *len = 0;
  if (!item || !out)
    return ckpt_error_set(err, CKPT_EINVAL, "ckpt_json_dump: %s is NULL", item ? "out" : "item");
  writer *w = malloc(sizeof *w); /* the path stack is 8 KB: not on a worker thread's stack */
  if (!w)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory writing JSON");
  w->out = (ckpt_tf_buf)CKPT_TF_BUF_INIT;
  w->style = style;
  w->err = err;
  ckpt_status st = write_value(w, item, 0);
  if (st == CKPT_OK)
    st = ckpt_tf_buf_take(&w->out, "JSON", out, len, err);
  ckpt_tf_buf_free(&w->out);
  free(w);
  return st;
}

ckpt_status ckpt_json_dump(const cJSON *item, char **out, size_t *len, ckpt_error *err) {
  return ckpt_json_dumps(item, CKPT_JSON_STYLE_PYTHON, out, len, err);
}

ckpt_status ckpt_json_dump_compact(const cJSON *value, char **text, size_t *len, ckpt_error *err) {
  return ckpt_json_dumps(value, CKPT_JSON_STYLE_NLOHMANN, text, len, err);
}
