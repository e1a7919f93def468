/* storage/pytree_meta.c — encoding and parsing Orbax's _METADATA, plus the two JSON text
 * styles the layout needs (Python's json.dumps for Orbax's files, compact sorted UTF-8 for
 * TensorStore's). Matching the bytes matters: tools diff checkpoints written by Python and C. */
#include "storage/pytree_meta.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/json.h"
#include "util/text.h"

bool ckpt_meta_is_empty_type(const char *vt) {
  return strcmp(vt, CKPT_VT_DICT) == 0 || strcmp(vt, CKPT_VT_LIST) == 0 ||
         strcmp(vt, CKPT_VT_TUPLE) == 0 || strcmp(vt, CKPT_VT_NAMEDTUPLE) == 0 ||
         strcmp(vt, CKPT_VT_NONE) == 0;
}

/* ---------------------------------------------------------------- Python repr of str */

static void put_py_str_repr(ckpt_tf_buf *b, const char *s) {
  bool has_sq = strchr(s, '\'') != NULL, has_dq = strchr(s, '"') != NULL;
  char q = (has_sq && !has_dq) ? '"' : '\'';
  ckpt_tf_buf_putc(b, q);
  const unsigned char *p = (const unsigned char *)s;
  size_t n = strlen(s);
  size_t i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      if (c == '\\' || c == (unsigned char)q) {
        ckpt_tf_buf_putc(b, '\\');
        ckpt_tf_buf_putc(b, (char)c);
      } else if (c == '\n') {
        ckpt_tf_buf_puts(b, "\\n");
      } else if (c == '\r') {
        ckpt_tf_buf_puts(b, "\\r");
      } else if (c == '\t') {
        ckpt_tf_buf_puts(b, "\\t");
      } else if (c < 0x20 || c == 0x7f) {
        ckpt_tf_buf_printf(b, "\\x%02x", c);
      } else {
        ckpt_tf_buf_putc(b, (char)c);
      }
      i++;
      continue;
    }
    size_t bad;
    uint32_t cp;
    if (!ckpt_tf_utf8_valid(p + i, n - i, &bad) && bad == 0) {
      /* Not UTF-8 (Python keys always are); show the byte. */
      ckpt_tf_buf_printf(b, "\\x%02x", c);
      i++;
      continue;
    }
    size_t len = ckpt_tf_utf8_decode(p + i, n - i, &cp);
    if (len == 0)
      len = 1;
    if ((cp >= 0x80 && cp <= 0xa0) || cp == 0xad)
      ckpt_tf_buf_printf(b, "\\x%02x", (unsigned)cp); /* Python's non-printable Latin-1 range */
    else
      ckpt_tf_buf_append(b, p + i, len);
    i += len;
  }
  ckpt_tf_buf_putc(b, q);
}

char *ckpt_py_tuple_repr(const char *const *keys, size_t n) {
  ckpt_tf_buf b = CKPT_TF_BUF_INIT;
  ckpt_tf_buf_putc(&b, '(');
  for (size_t i = 0; i < n; i++) {
    if (i)
      ckpt_tf_buf_puts(&b, ", ");
    put_py_str_repr(&b, keys[i]);
  }
  if (n == 1)
    ckpt_tf_buf_putc(&b, ',');
  ckpt_tf_buf_putc(&b, ')');
  char *out = NULL;
  size_t len;
  if (ckpt_tf_buf_take(&b, "tuple repr", &out, &len, NULL) != CKPT_OK)
    return NULL;
  return out;
}

/* ---------------------------------------------------------------- JSON text */

static void put_json_string(ckpt_tf_buf *b, const char *s, bool ascii);

void ckpt_json_put_string(ckpt_tf_buf *b, const char *s) {
  put_json_string(b, s, false);
}

static void put_json_string(ckpt_tf_buf *b, const char *s, bool ascii) {
  ckpt_tf_buf_putc(b, '"');
  const unsigned char *p = (const unsigned char *)s;
  size_t n = strlen(s), i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c == '"')
      ckpt_tf_buf_puts(b, "\\\"");
    else if (c == '\\')
      ckpt_tf_buf_puts(b, "\\\\");
    else if (c == '\n')
      ckpt_tf_buf_puts(b, "\\n");
    else if (c == '\r')
      ckpt_tf_buf_puts(b, "\\r");
    else if (c == '\t')
      ckpt_tf_buf_puts(b, "\\t");
    else if (c == '\b')
      ckpt_tf_buf_puts(b, "\\b");
    else if (c == '\f')
      ckpt_tf_buf_puts(b, "\\f");
    else if (c < 0x20 || (ascii && c == 0x7f))
      ckpt_tf_buf_printf(b, "\\u%04x", c);
    else if (c < 0x80 || !ascii)
      ckpt_tf_buf_putc(b, (char)c);
    else {
      uint32_t cp;
      size_t len = ckpt_tf_utf8_decode(p + i, n - i, &cp);
      if (len == 0) { /* invalid UTF-8: cJSON let it through; keep the byte as a code point */
        cp = c;
        len = 1;
      }
      if (cp >= 0x10000) {
        uint32_t v = cp - 0x10000;
        ckpt_tf_buf_printf(b, "\\u%04x\\u%04x", 0xd800u + (v >> 10), 0xdc00u + (v & 0x3ffu));
      } else {
        ckpt_tf_buf_printf(b, "\\u%04x", cp);
      }
      i += len;
      continue;
    }
    i++;
  }
  ckpt_tf_buf_putc(b, '"');
}

static void put_json_number(ckpt_tf_buf *b, double v) {
  if (isnan(v)) {
    ckpt_tf_buf_puts(b, "NaN");
  } else if (isinf(v)) {
    ckpt_tf_buf_puts(b, v > 0 ? "Infinity" : "-Infinity");
  } else if (v == floor(v) && fabs(v) < 9007199254740992.0) {
    ckpt_tf_buf_printf(b, "%lld", (long long)v);
  } else {
    char num[CKPT_TF_NUM_MAX];
    /* Shortest round-trip digits, as Python's repr; nlohmann's dump() also prints a shortest
     * form (exponent spelling may differ, which JSON readers do not care about). */
    ckpt_tf_double_repr(v, num);
    ckpt_tf_buf_puts(b, num);
  }
}

static int cmp_items(const void *a, const void *b) {
  const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
  return strcmp(x->string, y->string);
}

/* Compact JSON with sorted keys and raw UTF-8: nlohmann's dump(), which TensorStore uses. */
static bool put_json(ckpt_tf_buf *b, const cJSON *v) {
  const char *isep = ",";
  const char *ksep = ":";
  if (v == NULL || cJSON_IsNull(v)) {
    ckpt_tf_buf_puts(b, "null");
  } else if (cJSON_IsTrue(v)) {
    ckpt_tf_buf_puts(b, "true");
  } else if (cJSON_IsFalse(v)) {
    ckpt_tf_buf_puts(b, "false");
  } else if (cJSON_IsNumber(v)) {
    put_json_number(b, v->valuedouble);
  } else if (cJSON_IsString(v)) {
    put_json_string(b, v->valuestring, false);
  } else if (cJSON_IsArray(v)) {
    ckpt_tf_buf_putc(b, '[');
    const cJSON *e;
    bool first = true;
    cJSON_ArrayForEach(e, v) {
      if (!first)
        ckpt_tf_buf_puts(b, isep);
      first = false;
      if (!put_json(b, e))
        return false;
    }
    ckpt_tf_buf_putc(b, ']');
  } else if (cJSON_IsObject(v)) {
    size_t n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, v) n++;
    const cJSON **items = malloc((n ? n : 1) * sizeof *items);
    if (items == NULL)
      return false;
    n = 0;
    cJSON_ArrayForEach(e, v) items[n++] = e;
    /* nlohmann's objects are std::map, i.e. sorted. */
    qsort(items, n, sizeof *items, cmp_items);
    ckpt_tf_buf_putc(b, '{');
    for (size_t i = 0; i < n; i++) {
      if (i)
        ckpt_tf_buf_puts(b, isep);
      put_json_string(b, items[i]->string ? items[i]->string : "", false);
      ckpt_tf_buf_puts(b, ksep);
      if (!put_json(b, items[i])) {
        free(items);
        return false;
      }
    }
    free(items);
    ckpt_tf_buf_putc(b, '}');
  } else if (cJSON_IsRaw(v) && v->valuestring != NULL) {
    ckpt_tf_buf_puts(b, v->valuestring); /* an integer too large for a double, kept verbatim */
  } else {
    ckpt_tf_buf_puts(b, "null");
  }
  return true;
}

ckpt_status ckpt_json_dump_compact(const cJSON *value, char **text, size_t *len, ckpt_error *err) {
  ckpt_tf_buf b = CKPT_TF_BUF_INIT;
  if (!put_json(&b, value))
    b.oom = true;
  return ckpt_tf_buf_take(&b, "JSON", text, len, err);
}

/* ---------------------------------------------------------------- _METADATA encode */

ckpt_status ckpt_pytree_meta_encode(const ckpt_pytree_meta *meta, char **text, size_t *len,
                                    ckpt_error *err) {
  *text = NULL;
  ckpt_tf_buf b = CKPT_TF_BUF_INIT;
  ckpt_tf_buf_puts(&b, "{\"tree_metadata\": {");
  for (size_t i = 0; i < meta->n; i++) {
    const ckpt_meta_entry *e = &meta->entries[i];
    const char **names = malloc((e->depth ? e->depth : 1) * sizeof *names);
    if (names == NULL) {
      ckpt_tf_buf_free(&b);
      return ckpt_error_set(err, CKPT_ENOMEM, "out of memory encoding _METADATA");
    }
    for (size_t k = 0; k < e->depth; k++)
      names[k] = e->keys[k].key;
    char *repr = ckpt_py_tuple_repr(names, e->depth);
    free(names);
    if (repr == NULL) {
      ckpt_tf_buf_free(&b);
      return ckpt_error_set(err, CKPT_ENOMEM, "out of memory encoding _METADATA");
    }
    if (i)
      ckpt_tf_buf_puts(&b, ", ");
    put_json_string(&b, repr, true);
    free(repr);
    ckpt_tf_buf_puts(&b, ": {\"key_metadata\": [");
    for (size_t k = 0; k < e->depth; k++) {
      if (k)
        ckpt_tf_buf_puts(&b, ", ");
      ckpt_tf_buf_puts(&b, "{\"key\": ");
      put_json_string(&b, e->keys[k].key, true);
      ckpt_tf_buf_printf(&b, ", \"key_type\": %d}", e->keys[k].key_type);
    }
    ckpt_tf_buf_puts(&b, "], \"value_metadata\": {\"value_type\": ");
    put_json_string(&b, e->value_type, true);
    ckpt_tf_buf_printf(&b, ", \"skip_deserialize\": %s", e->skip_deserialize ? "true" : "false");
    if (e->has_write_shape) {
      ckpt_tf_buf_puts(&b, ", \"write_shape\": [");
      for (int d = 0; d < e->write_ndim; d++)
        ckpt_tf_buf_printf(&b, "%s%lld", d ? ", " : "", (long long)e->write_shape[d]);
      ckpt_tf_buf_putc(&b, ']');
    }
    ckpt_tf_buf_puts(&b, "}}");
  }
  ckpt_tf_buf_printf(&b,
                     "}, \"use_ocdbt\": %s, \"use_zarr3\": %s, "
                     "\"store_array_data_equal_to_fill_value\": %s, \"custom_metadata\": ",
                     meta->use_ocdbt ? "true" : "false", meta->use_zarr3 ? "true" : "false",
                     meta->store_array_data_equal_to_fill_value ? "true" : "false");
  if (meta->custom_metadata == NULL) {
    ckpt_tf_buf_puts(&b, "null");
  } else {
    /* The JSON handler's json.dumps-compatible writer, so custom metadata reads back in Python
     * as the same value (NaN, big integers and non-ASCII included). */
    char *cm = NULL;
    size_t cml = 0;
    ckpt_status st = ckpt_json_dump(meta->custom_metadata, &cm, &cml, err);
    if (st != CKPT_OK) {
      ckpt_tf_buf_free(&b);
      ckpt_error_prefix(err, "custom_metadata: ");
      return st;
    }
    ckpt_tf_buf_append(&b, cm, cml);
    free(cm);
  }
  ckpt_tf_buf_putc(&b, '}');
  return ckpt_tf_buf_take(&b, "_METADATA", text, len, err);
}

/* ---------------------------------------------------------------- _METADATA parse */

void ckpt_pytree_meta_free(ckpt_pytree_meta *meta) {
  if (meta == NULL)
    return;
  for (size_t i = 0; i < meta->n; i++) {
    ckpt_meta_entry *e = &meta->entries[i];
    for (size_t k = 0; k < e->depth; k++)
      free(e->keys[k].key);
    free(e->keys);
    free(e->param);
    free(e->value_type);
  }
  free(meta->entries);
  cJSON_Delete(meta->custom_metadata);
  memset(meta, 0, sizeof *meta);
}

static bool get_bool(const cJSON *obj, const char *key, bool dflt) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  return cJSON_IsBool(v) ? cJSON_IsTrue(v) : dflt;
}

static ckpt_status parse_entry(const cJSON *item, const char *where, ckpt_meta_entry *e,
                               ckpt_error *err) {
  const char *tk = item->string ? item->string : "?";
  const cJSON *km = cJSON_GetObjectItemCaseSensitive(item, "key_metadata");
  const cJSON *vm = cJSON_GetObjectItemCaseSensitive(item, "value_metadata");
  if (!cJSON_IsArray(km) || !cJSON_IsObject(vm))
    return ckpt_error_set(err, CKPT_ECORRUPT,
                          "%s: entry %.80s lacks key_metadata or value_metadata", where, tk);
  const cJSON *vt = cJSON_GetObjectItemCaseSensitive(vm, "value_type");
  if (!cJSON_IsString(vt))
    return ckpt_error_set(err, CKPT_ECORRUPT, "%s: entry %.80s has no value_type", where, tk);
  e->value_type = strdup(vt->valuestring);
  if (e->value_type == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  e->skip_deserialize = get_bool(vm, "skip_deserialize", false);
  const cJSON *ws = cJSON_GetObjectItemCaseSensitive(vm, "write_shape");
  if (cJSON_IsArray(ws) && cJSON_GetArraySize(ws) <= CKPT_MAX_RANK) {
    e->has_write_shape = true;
    const cJSON *d;
    cJSON_ArrayForEach(d, ws) {
      e->write_shape[e->write_ndim++] = cJSON_IsNumber(d) ? (int64_t)d->valuedouble : 0;
    }
  }
  size_t depth = (size_t)cJSON_GetArraySize(km);
  e->keys = calloc(depth ? depth : 1, sizeof *e->keys);
  if (e->keys == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  size_t plen = 0;
  const cJSON *k;
  cJSON_ArrayForEach(k, km) {
    const cJSON *kn = cJSON_GetObjectItemCaseSensitive(k, "key");
    const cJSON *kt = cJSON_GetObjectItemCaseSensitive(k, "key_type");
    char buf[32];
    const char *name;
    if (cJSON_IsString(kn)) {
      name = kn->valuestring;
    } else if (cJSON_IsNumber(kn) && kn->valuedouble >= 0 && kn->valuedouble < 1e15 &&
               kn->valuedouble == floor(kn->valuedouble)) {
      /* Newer Orbax versions store sequence indices as numbers. */
      snprintf(buf, sizeof buf, "%lld", (long long)kn->valuedouble);
      name = buf;
    } else {
      return ckpt_error_set(err, CKPT_ECORRUPT, "%s: entry %.80s has a malformed key", where, tk);
    }
    int type = cJSON_IsNumber(kt) ? (int)kt->valuedouble : 0;
    if (type != CKPT_KEY_SEQUENCE && type != CKPT_KEY_DICT)
      return ckpt_error_set(err, CKPT_ECORRUPT, "%s: entry %.80s has key_type %d", where, tk, type);
    if (type == CKPT_KEY_SEQUENCE) {
      bool digits = name[0] != '\0';
      for (const char *c = name; *c; c++)
        digits &= *c >= '0' && *c <= '9';
      if (!digits || strlen(name) > 15)
        return ckpt_error_set(err, CKPT_ECORRUPT,
                              "%s: entry %.80s has a sequence key that is not an index", where, tk);
    }
    e->keys[e->depth].key = strdup(name);
    if (e->keys[e->depth].key == NULL)
      return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
    e->keys[e->depth].key_type = type;
    plen += strlen(name) + 1;
    e->depth++;
  }
  if (e->depth == 0 && !ckpt_meta_is_empty_type(e->value_type))
    return ckpt_error_set(err, CKPT_ECORRUPT, "%s: a %s leaf at the root of the tree", where,
                          e->value_type);
  e->param = malloc(plen + 1);
  if (e->param == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  size_t pos = 0;
  for (size_t i = 0; i < e->depth; i++) {
    size_t l = strlen(e->keys[i].key);
    if (i)
      e->param[pos++] = '.';
    memcpy(e->param + pos, e->keys[i].key, l);
    pos += l;
  }
  e->param[pos] = '\0';
  return CKPT_OK;
}

ckpt_status ckpt_pytree_meta_parse(const char *text, size_t len, const char *where,
                                   ckpt_pytree_meta *meta, ckpt_error *err) {
  memset(meta, 0, sizeof *meta);
  cJSON *doc = NULL;
  ckpt_status st = ckpt_json_load(text, len, where, &doc, err);
  if (st != CKPT_OK)
    return st;
  const cJSON *tm = cJSON_GetObjectItemCaseSensitive(doc, "tree_metadata");
  if (!cJSON_IsObject(doc) || !cJSON_IsObject(tm)) {
    st = ckpt_error_set(err, CKPT_ECORRUPT, "%s: no \"tree_metadata\" object", where);
    goto done;
  }
  meta->use_ocdbt = get_bool(doc, "use_ocdbt", false);
  meta->use_zarr3 = get_bool(doc, "use_zarr3", false);
  meta->store_array_data_equal_to_fill_value =
      get_bool(doc, "store_array_data_equal_to_fill_value", false);
  const cJSON *cm = cJSON_GetObjectItemCaseSensitive(doc, "custom_metadata");
  if (cm != NULL && !cJSON_IsNull(cm)) {
    meta->custom_metadata = cJSON_Duplicate(cm, true);
    if (meta->custom_metadata == NULL) {
      st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory reading %s", where);
      goto done;
    }
  }
  size_t n = (size_t)cJSON_GetArraySize(tm);
  meta->entries = calloc(n ? n : 1, sizeof *meta->entries);
  if (meta->entries == NULL) {
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory reading %s", where);
    goto done;
  }
  const cJSON *item;
  cJSON_ArrayForEach(item, tm) {
    ckpt_meta_entry *e = &meta->entries[meta->n++];
    st = parse_entry(item, where, e, err);
    if (st != CKPT_OK)
      goto done;
  }
done:
  cJSON_Delete(doc);
  return st;
}
