/* text/json_read.c — JSON text → cJSON tree with Python json.loads semantics, exact
 * numbers and "source:line:col" errors (see json.h). Recursive descent bounded by
 * CKPT_JSON_MAX_DEPTH so hostile input cannot exhaust the stack. */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/json.h"
#include "util/arena.h"
#include "util/text.h"

/* Helpers with large locals stay out of the recursive frames, keeping deep nesting cheap. */
#if defined(__GNUC__)
#define JR_NOINLINE __attribute__((noinline))
#else
#define JR_NOINLINE
#endif

typedef struct reader {
  const char *s;
  size_t n, pos;
  const char *source;
  unsigned flags; /* CKPT_JSON_UNIQUE_KEYS */
  ckpt_error *err;
  /* ckpt_json_load_arena: items and strings come from here and are never freed one by one
   * (NULL: each is malloc'ed, the tree is the caller's to cJSON_Delete). */
  ckpt_arena *arena;
} reader;

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
JR_NOINLINE static ckpt_status
fail_at(reader *r, size_t at, const char *fmt, ...) {
  size_t line = 1, col = 1;
  for (size_t i = 0; i < at && i < r->n; i++) {
    if (r->s[i] == '\n') {
      line++;
      col = 1;
    } else {
      col++;
    }
  }
  char msg[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return ckpt_error_set(r->err, CKPT_ECORRUPT, "%s:%zu:%zu: %s", r->source, line, col, msg);
}

static ckpt_status oom(reader *r) {
  return ckpt_error_set(r->err, CKPT_ENOMEM, "%s: out of memory parsing JSON", r->source);
}

/* A printable rendering of the byte at pos for messages. */
static const char *found(reader *r, char *buf, size_t size) {
  if (r->pos >= r->n)
    return "end of input";
  unsigned char c = (unsigned char)r->s[r->pos];
  if (c >= 32 && c < 127)
    snprintf(buf, size, "'%c'", c);
  else
    snprintf(buf, size, "byte 0x%02x", c);
  return buf;
}

/* A new item of the given type: from the arena, or cJSON's allocator. */
static cJSON *new_item(reader *r, int type) {
  if (r->arena == NULL) {
    switch (type) {
      case cJSON_Object:
        return cJSON_CreateObject();
      case cJSON_Array:
        return cJSON_CreateArray();
      case cJSON_True:
        return cJSON_CreateTrue();
      case cJSON_False:
        return cJSON_CreateFalse();
      case cJSON_NULL:
        return cJSON_CreateNull();
      default:
        return cJSON_CreateNumber(0);
    }
  }
  cJSON *item = ckpt_arena_calloc(r->arena, sizeof *item);
  if (item != NULL)
    item->type = type;
  return item;
}

/* Drops an item that is not part of the result (an error path, a repeated key): freed
 * unless it lives in the arena, which goes as a whole. */
static void drop_item(reader *r, cJSON *item) {
  if (r->arena == NULL)
    cJSON_Delete(item);
}

static void drop_string(reader *r, char *s) {
  if (r->arena == NULL)
    free(s);
}

static void skip_ws(reader *r) {
  while (r->pos < r->n) {
    char c = r->s[r->pos];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
      break;
    r->pos++;
  }
}

static int match(reader *r, const char *word) {
  size_t l = strlen(word);
  if (r->n - r->pos < l || memcmp(r->s + r->pos, word, l) != 0)
    return 0;
  r->pos += l;
  return 1;
}

static int hex4(const char *s, uint32_t *v) {
  *v = 0;
  for (int i = 0; i < 4; i++) {
    char c = s[i];
    int d = (c >= '0' && c <= '9')   ? c - '0'
            : (c >= 'a' && c <= 'f') ? c - 'a' + 10
            : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                     : -1;
    if (d < 0)
      return 0;
    *v = *v * 16 + (uint32_t)d;
  }
  return 1;
}

/* Parses a string literal at pos (which is '"') into b (NUL-terminated by the buffer). */
JR_NOINLINE static ckpt_status parse_string(reader *r, ckpt_tf_buf *b) {
  size_t start = r->pos++;
  for (;;) {
    size_t run = r->pos;
    while (run < r->n && r->s[run] != '"' && r->s[run] != '\\' && (unsigned char)r->s[run] >= 0x20)
      run++;
    if (run > r->pos) {
      size_t bad;
      if (!ckpt_tf_utf8_valid((const uint8_t *)r->s + r->pos, run - r->pos, &bad))
        return fail_at(r, r->pos + bad, "invalid UTF-8 in string");
      ckpt_tf_buf_append(b, r->s + r->pos, run - r->pos);
    }
    r->pos = run;
    if (r->pos >= r->n)
      return fail_at(r, start, "unterminated string");
    char c = r->s[r->pos];
    if (c == '"') {
      r->pos++;
      break;
    }
    if (c != '\\')
      return fail_at(r, r->pos, "invalid control character 0x%02x in string", c);
    if (r->pos + 1 >= r->n)
      return fail_at(r, start, "unterminated string");
    char e = r->s[r->pos + 1];
    size_t esc = r->pos;
    r->pos += 2;
    switch (e) {
      case '"':
        ckpt_tf_buf_putc(b, '"');
        break;
      case '\\':
        ckpt_tf_buf_putc(b, '\\');
        break;
      case '/':
        ckpt_tf_buf_putc(b, '/');
        break;
      case 'b':
        ckpt_tf_buf_putc(b, '\b');
        break;
      case 'f':
        ckpt_tf_buf_putc(b, '\f');
        break;
      case 'n':
        ckpt_tf_buf_putc(b, '\n');
        break;
      case 'r':
        ckpt_tf_buf_putc(b, '\r');
        break;
      case 't':
        ckpt_tf_buf_putc(b, '\t');
        break;
      case 'u': {
        uint32_t cp;
        if (r->n - r->pos < 4 || !hex4(r->s + r->pos, &cp))
          return fail_at(r, esc, "invalid \\u escape (needs 4 hex digits)");
        r->pos += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          uint32_t lo;
          if (r->n - r->pos >= 6 && r->s[r->pos] == '\\' && r->s[r->pos + 1] == 'u' &&
              hex4(r->s + r->pos + 2, &lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
            r->pos += 6;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else {
            return fail_at(r, esc, "unpaired UTF-16 surrogate \\u%04x in string", (unsigned)cp);
          }
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
          return fail_at(r, esc, "unpaired UTF-16 surrogate \\u%04x in string", (unsigned)cp);
        }
        if (cp == 0)
          return fail_at(r, esc, "\\u0000 in string: cJSON strings cannot hold NUL characters");
        ckpt_tf_buf_put_utf8(b, cp);
        break;
      }
      default:
        return fail_at(r, esc, "invalid escape '\\%c' in string", e);
    }
  }
  if (b->oom)
    return oom(r);
  if (!b->data)
    ckpt_tf_buf_append(b, "", 0); /* make "" a real, NUL-terminated buffer */
  if (b->oom)
    return oom(r);
  return CKPT_OK;
}

/* A string literal at pos (which is '"') as a malloc'ed, NUL-terminated string of exactly its
 * length in *out (caller frees), to become a cJSON item's name or value as it is. Most strings
 * have no escape: they are copied straight from the text; the others go through parse_string
 * and its buffer is shrunk (it is at least 256 bytes: kept per item, that tripled the memory
 * and the time of a large document). */
static ckpt_status parse_string_owned(reader *r, char **out) {
  *out = NULL;
  size_t run = r->pos + 1;
  unsigned char any = 0; /* the bits of every byte: ASCII-only text needs no UTF-8 check */
  while (run < r->n && r->s[run] != '"' && r->s[run] != '\\' && (unsigned char)r->s[run] >= 0x20)
    any |= (unsigned char)r->s[run++];
  if (run < r->n && r->s[run] == '"') {
    size_t len = run - r->pos - 1, bad;
    if ((any & 0x80) && !ckpt_tf_utf8_valid((const uint8_t *)r->s + r->pos + 1, len, &bad))
      return fail_at(r, r->pos + 1 + bad, "invalid UTF-8 in string");
    char *str = r->arena ? ckpt_arena_strndup(r->arena, r->s + r->pos + 1, len) : malloc(len + 1);
    if (!str)
      return oom(r);
    if (r->arena == NULL) {
      memcpy(str, r->s + r->pos + 1, len);
      str[len] = '\0';
    }
    r->pos = run + 1;
    *out = str;
    return CKPT_OK;
  }
  ckpt_tf_buf b = CKPT_TF_BUF_INIT;
  ckpt_status st = parse_string(r, &b);
  if (st != CKPT_OK) {
    ckpt_tf_buf_free(&b);
    return st;
  }
  if (r->arena != NULL) {
    *out = ckpt_arena_strndup(r->arena, b.data, b.len);
    ckpt_tf_buf_free(&b);
    return *out ? CKPT_OK : oom(r);
  }
  char *shrunk = realloc(b.data, b.len + 1);
  *out = shrunk ? shrunk : b.data;
  return CKPT_OK;
}

/* A number item with valueint saturated the way cJSON does, without the UB of casting NaN
 * or infinity to int. */
static cJSON *make_number(reader *r, double d) {
  cJSON *item = new_item(r, cJSON_Number);
  if (!item)
    return NULL;
  item->valuedouble = d;
  if (isnan(d))
    item->valueint = 0;
  else if (d >= INT_MAX)
    item->valueint = INT_MAX;
  else if (d <= (double)INT_MIN)
    item->valueint = INT_MIN;
  else
    item->valueint = (int)d;
  return item;
}

/* True when the integer literal lit (JSON grammar, no fraction or exponent) equals d exactly. */
static int integer_is_exact(const char *lit, size_t len, double d) {
  size_t digits = len - (lit[0] == '-');
  if (digits <= 15)
    return 1; /* every integer below 10^15 is a double */
  char buf[400];
  if (!(fabs(d) < 1e300))
    return 0;
  int n = snprintf(buf, sizeof buf, "%.0f", d); /* exact decimal expansion of d */
  return n > 0 && (size_t)n == len && memcmp(buf, lit, len) == 0;
}

JR_NOINLINE static ckpt_status parse_number(reader *r, cJSON **out) {
  size_t start = r->pos, i = r->pos;
  if (i < r->n && r->s[i] == '-')
    i++;
  if (i >= r->n || r->s[i] < '0' || r->s[i] > '9')
    return fail_at(r, start, "invalid number");
  if (r->s[i] == '0') {
    i++;
  } else {
    while (i < r->n && r->s[i] >= '0' && r->s[i] <= '9')
      i++;
  }
  int integral = 1;
  if (i < r->n && r->s[i] == '.') {
    integral = 0;
    i++;
    size_t d0 = i;
    while (i < r->n && r->s[i] >= '0' && r->s[i] <= '9')
      i++;
    if (i == d0)
      return fail_at(r, start, "invalid number (digits expected after '.')");
  }
  if (i < r->n && (r->s[i] == 'e' || r->s[i] == 'E')) {
    integral = 0;
    i++;
    if (i < r->n && (r->s[i] == '+' || r->s[i] == '-'))
      i++;
    size_t d0 = i;
    while (i < r->n && r->s[i] >= '0' && r->s[i] <= '9')
      i++;
    if (i == d0)
      return fail_at(r, start, "invalid number (digits expected in exponent)");
  }
  size_t len = i - start;
  size_t digits = len - (r->s[start] == '-');
  if (integral && digits <= 15) {
    /* Below 10^15 every integer is a double exactly, which is what strtod would return: the
     * common case (sizes, CRCs, shapes) without strtod's general path. */
    uint64_t v = 0;
    for (size_t k = start + (r->s[start] == '-'); k < i; k++)
      v = v * 10 + (uint64_t)(r->s[k] - '0');
    double d = (double)v; /* "-0" is Python's int 0: integers have no signed zero */
    *out = make_number(r, r->s[start] == '-' && v != 0 ? -d : d);
    r->pos = i;
    return *out ? CKPT_OK : oom(r);
  }
  char small[64];
  char *lit = len < sizeof small ? small : malloc(len + 1);
  if (!lit)
    return oom(r);
  memcpy(lit, r->s + start, len);
  lit[len] = '\0';
  double d = ckpt_tf_strtod(lit, NULL);
  if (integral && d == 0)
    d = 0.0; /* "-0" is Python's int 0: integers have no signed zero */
  if (integral && !integer_is_exact(lit, len, d)) {
    /* keep every digit rather than round */
    if (r->arena == NULL) {
      *out = cJSON_CreateRaw(lit);
    } else {
      *out = new_item(r, cJSON_Raw);
      if (*out != NULL && ((*out)->valuestring = ckpt_arena_strdup(r->arena, lit)) == NULL)
        *out = NULL;
    }
  } else {
    *out = make_number(r, d);
  }
  if (lit != small)
    free(lit);
  r->pos = i;
  return *out ? CKPT_OK : oom(r);
}

static ckpt_status parse_value(reader *r, cJSON **out, int depth);

typedef struct member_ref {
  cJSON *item;
  size_t index; /* position in the object, so that equal keys keep their order */
} member_ref;

static int ref_cmp(const void *x, const void *y) {
  const member_ref *a = x, *b = y;
  int c = strcmp(a->item->string, b->item->string);
  if (c)
    return c;
  return (a->index > b->index) - (a->index < b->index);
}

/* Python's dict keeps the first position of a repeated key and the last value (or, with
 * CKPT_JSON_UNIQUE_KEYS, a repeated key is an error). */
JR_NOINLINE static ckpt_status dedupe_members(reader *r, cJSON *obj, size_t n, size_t open) {
  member_ref *refs = malloc(n * sizeof *refs);
  if (!refs)
    return oom(r);
  size_t i = 0;
  for (cJSON *c = obj->child; c; c = c->next)
    refs[i].item = c, refs[i].index = i, i++;
  qsort(refs, n, sizeof *refs, ref_cmp);
  for (i = 0; i < n;) {
    size_t j = i + 1;
    while (j < n && strcmp(refs[j].item->string, refs[i].item->string) == 0)
      j++;
    if (j - i > 1 && (r->flags & CKPT_JSON_UNIQUE_KEYS)) {
      ckpt_status st =
          fail_at(r, open, "object has the key \"%.60s\" more than once", refs[i].item->string);
      free(refs);
      return st;
    }
    if (j - i > 1) {
      cJSON *first = refs[i].item, *last = refs[j - 1].item;
      for (size_t k = i + 1; k + 1 < j; k++)
        drop_item(r, cJSON_DetachItemViaPointer(obj, refs[k].item));
      cJSON_DetachItemViaPointer(obj, last);
      if (r->arena == NULL) {
        cJSON_ReplaceItemViaPointer(obj, first, last); /* deletes first; last keeps its key */
      } else {
        /* first keeps its place and takes last's value (the keys are equal); nothing is
         * freed, the arena goes as a whole */
        first->type = last->type;
        first->child = last->child;
        first->valuestring = last->valuestring;
        first->valueint = last->valueint;
        first->valuedouble = last->valuedouble;
      }
    }
    i = j;
  }
  free(refs);
  return CKPT_OK;
}

static ckpt_status parse_object(reader *r, cJSON **out, int depth) {
  size_t open = r->pos++;
  cJSON *obj = new_item(r, cJSON_Object);
  if (!obj)
    return oom(r);
  ckpt_status st = CKPT_OK;
  size_t n = 0;
  const cJSON *last = NULL; /* the member added last */
  bool sorted = true;       /* the keys so far are strictly increasing (so unique) */
  char fb[24];
  skip_ws(r);
  if (r->pos < r->n && r->s[r->pos] == '}') {
    r->pos++;
    *out = obj;
    return CKPT_OK;
  }
  for (;;) {
    skip_ws(r);
    if (r->pos >= r->n || r->s[r->pos] != '"') {
      st = fail_at(r, r->pos, "expected a string key in object opened at offset %zu, found %s",
                   open, found(r, fb, sizeof fb));
      break;
    }
    char *key;
    st = parse_string_owned(r, &key);
    if (st != CKPT_OK)
      break;
    skip_ws(r);
    if (r->pos >= r->n || r->s[r->pos] != ':') {
      st = fail_at(r, r->pos, "expected ':' after object key \"%.60s\", found %s", key,
                   found(r, fb, sizeof fb));
      drop_string(r, key);
      break;
    }
    r->pos++;
    cJSON *value = NULL;
    st = parse_value(r, &value, depth + 1);
    if (st != CKPT_OK) {
      drop_string(r, key);
      break;
    }
    /* Keys that arrive in strictly increasing order are unique: dedupe_members (a malloc and
     * a sort of every key) is then skipped. Orbax's large flat documents (_METADATA's
     * tree_metadata, _CHECKSUMS' arrays) come sorted, so this is one strcmp per member. */
    if (sorted && last != NULL && strcmp(last->string, key) >= 0)
      sorted = false;
    /* The key becomes the member's name as it is (cJSON_AddItemToObject would copy it:
     * item->string is malloc'ed and freed by cJSON_Delete), one allocation and copy fewer
     * per member. value is new, so it has no name and no cJSON_StringIsConst. */
    value->string = key;
    if (!cJSON_AddItemToArray(obj, value)) {
      drop_item(r, value);
      st = oom(r);
      break;
    }
    last = value;
    n++;
    skip_ws(r);
    if (r->pos < r->n && r->s[r->pos] == ',') {
      r->pos++;
      continue;
    }
    if (r->pos < r->n && r->s[r->pos] == '}') {
      r->pos++;
      break;
    }
    st = fail_at(r, r->pos, "expected ',' or '}' after object member, found %s",
                 found(r, fb, sizeof fb));
    break;
  }
  if (st == CKPT_OK && n > 1 && !sorted)
    st = dedupe_members(r, obj, n, open);
  if (st != CKPT_OK) {
    drop_item(r, obj);
    return st;
  }
  *out = obj;
  return CKPT_OK;
}

static ckpt_status parse_array(reader *r, cJSON **out, int depth) {
  r->pos++;
  cJSON *arr = new_item(r, cJSON_Array);
  if (!arr)
    return oom(r);
  ckpt_status st = CKPT_OK;
  char fb[24];
  skip_ws(r);
  if (r->pos < r->n && r->s[r->pos] == ']') {
    r->pos++;
    *out = arr;
    return CKPT_OK;
  }
  for (;;) {
    cJSON *value = NULL;
    st = parse_value(r, &value, depth + 1);
    if (st != CKPT_OK)
      break;
    if (!cJSON_AddItemToArray(arr, value)) {
      drop_item(r, value);
      st = oom(r);
      break;
    }
    skip_ws(r);
    if (r->pos < r->n && r->s[r->pos] == ',') {
      r->pos++;
      continue;
    }
    if (r->pos < r->n && r->s[r->pos] == ']') {
      r->pos++;
      break;
    }
    st = fail_at(r, r->pos, "expected ',' or ']' after array element, found %s",
                 found(r, fb, sizeof fb));
    break;
  }
  if (st != CKPT_OK) {
    drop_item(r, arr);
    return st;
  }
  *out = arr;
  return CKPT_OK;
}

static ckpt_status parse_value(reader *r, cJSON **out, int depth) {
  *out = NULL;
  skip_ws(r);
  char fb[24];
  if (depth > CKPT_JSON_MAX_DEPTH)
    return fail_at(r, r->pos, "JSON nested deeper than %d levels", CKPT_JSON_MAX_DEPTH);
  if (r->pos >= r->n)
    return fail_at(r, r->pos, "expected a JSON value, found end of input");
  char c = r->s[r->pos];
  switch (c) {
    case '{':
      return parse_object(r, out, depth);
    case '[':
      return parse_array(r, out, depth);
    case '"': {
      char *str;
      ckpt_status st = parse_string_owned(r, &str);
      if (st != CKPT_OK)
        return st;
      /* The string becomes the item's as it is, rather than a copy of it: a reference item,
       * then owned (without cJSON_IsReference, cJSON_Delete frees valuestring). */
      if (r->arena != NULL) {
        *out = new_item(r, cJSON_String);
        if (*out == NULL)
          return oom(r);
        (*out)->valuestring = str;
        return CKPT_OK;
      }
      *out = cJSON_CreateStringReference(str);
      if (*out == NULL) {
        free(str);
        return oom(r);
      }
      (*out)->type &= ~cJSON_IsReference;
      return CKPT_OK;
    }
    default:
      break;
  }
  if (match(r, "true"))
    *out = new_item(r, cJSON_True);
  else if (match(r, "false"))
    *out = new_item(r, cJSON_False);
  else if (match(r, "null"))
    *out = new_item(r, cJSON_NULL);
  else if (match(r, "NaN"))
    *out = make_number(r, NAN);
  else if (match(r, "Infinity"))
    *out = make_number(r, INFINITY);
  else if (match(r, "-Infinity"))
    *out = make_number(r, -INFINITY);
  else if (c == '-' || (c >= '0' && c <= '9'))
    return parse_number(r, out);
  else
    return fail_at(r, r->pos, "expected a JSON value, found %s", found(r, fb, sizeof fb));
  return *out ? CKPT_OK : oom(r);
}

ckpt_status ckpt_json_load(const char *text, size_t len, const char *source, cJSON **out,
                           ckpt_error *err) {
  return ckpt_json_load_opts(text, len, source, 0, out, err);
}

static ckpt_status load(const char *text, size_t len, const char *source, unsigned flags,
                        ckpt_arena *arena, cJSON **out, ckpt_error *err) {
  if (out)
    *out = NULL;
  if (!source)
    source = "<json>";
  if (!out || (!text && len))
    return ckpt_error_set(err, CKPT_EINVAL, "ckpt_json_load(%s): %s is NULL", source,
                          out ? "text" : "out");
  reader r = {text ? text : "", len, 0, source, flags, err, arena};
  if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
    return fail_at(&r, 0, "unexpected UTF-8 byte order mark");
  cJSON *v = NULL;
  ckpt_status st = parse_value(&r, &v, 0);
  if (st != CKPT_OK)
    return st;
  skip_ws(&r);
  if (r.pos < r.n) {
    drop_item(&r, v);
    return fail_at(&r, r.pos, "extra data after the JSON value");
  }
  *out = v;
  return CKPT_OK;
}

ckpt_status ckpt_json_load_opts(const char *text, size_t len, const char *source, unsigned flags,
                                cJSON **out, ckpt_error *err) {
  return load(text, len, source, flags, NULL, out, err);
}

ckpt_status ckpt_json_load_arena(const char *text, size_t len, const char *source,
                                 unsigned flags, struct ckpt_arena *arena, cJSON **out,
                                 ckpt_error *err) {
  if (arena == NULL) {
    if (out)
      *out = NULL;
    return ckpt_error_set(err, CKPT_EINVAL, "ckpt_json_load_arena(%s): arena is NULL",
                          source ? source : "<json>");
  }
  return load(text, len, source, flags, arena, out, err);
}

ckpt_status ckpt_json_read_file(ckpt_io *io, const char *path, size_t max_bytes, cJSON **out,
                                ckpt_error *err) {
  if (out)
    *out = NULL;
  void *data = NULL;
  size_t n = 0;
  ckpt_status st = ckpt_io_read_file(io, path, max_bytes, &data, &n, err);
  if (st != CKPT_OK)
    return st;
  st = ckpt_json_load(data, n, path, out, err);
  free(data);
  return st;
}

/* ---------------------------------------------------------------- exact integers */

/* An integer literal ("-"? digits) as sign and magnitude; false if it is not one or the
 * magnitude does not fit 64 bits. */
static bool raw_integer(const cJSON *v, bool *negative, uint64_t *magnitude) {
  if (!cJSON_IsRaw(v) || v->valuestring == NULL)
    return false;
  const char *p = v->valuestring;
  *negative = *p == '-';
  p += *negative;
  if (*p < '0' || *p > '9')
    return false;
  uint64_t m = 0;
  for (; *p >= '0' && *p <= '9'; p++) {
    unsigned d = (unsigned)(*p - '0');
    if (m > (UINT64_MAX - d) / 10)
      return false;
    m = m * 10 + d;
  }
  if (*p != '\0')
    return false;
  *magnitude = m;
  return true;
}

bool ckpt_json_get_int64(const cJSON *v, int64_t *out) {
  if (cJSON_IsNumber(v)) {
    double d = v->valuedouble;
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || d != floor(d))
      return false;
    *out = (int64_t)d;
    return true;
  }
  bool neg;
  uint64_t m;
  if (!raw_integer(v, &neg, &m))
    return false;
  if (neg ? m > (uint64_t)INT64_MAX + 1 : m > (uint64_t)INT64_MAX)
    return false;
  *out = neg ? (int64_t)(0 - m) : (int64_t)m;
  return true;
}

bool ckpt_json_get_uint64(const cJSON *v, uint64_t *out) {
  if (cJSON_IsNumber(v)) {
    double d = v->valuedouble;
    if (!(d >= 0 && d < 18446744073709551616.0) || d != floor(d))
      return false;
    *out = (uint64_t)d;
    return true;
  }
  bool neg;
  uint64_t m;
  if (!raw_integer(v, &neg, &m) || (neg && m != 0))
    return false;
  *out = m;
  return true;
}
