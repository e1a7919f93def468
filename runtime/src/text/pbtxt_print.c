/* text/pbtxt_print.c — protobuf text format printer driven by protoc-c descriptors.
 *
 * The output is byte-identical to Python's text_format.MessageToString(msg) (default options),
 * which is what Orbax's ProtoCheckpointHandler writes to proto.pbtxt. Presence follows
 * protobuf-c's packing rules, so a field is printed exactly when protobuf_c_message_pack would
 * emit it (except that implicit-presence floats count -0.0 as set, as C++/Python do). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/pbtxt.h"
#include "text/pbtxt_internal.h"
#include "util/text.h"

typedef struct printer {
  ckpt_tf_buf out;
  ckpt_error *err;
  char path[512]; /* dotted field path for error messages, e.g. "layers[2].name" */
  size_t path_len;
} printer;

static size_t path_append(printer *p, int n, size_t room, size_t saved) {
  if (n > 0)
    p->path_len = (size_t)n >= room ? sizeof p->path - 1 : p->path_len + (size_t)n;
  return saved;
}

static size_t path_push_name(printer *p, const char *name) {
  size_t room = sizeof p->path - p->path_len;
  int n = snprintf(p->path + p->path_len, room, "%s%s", p->path_len ? "." : "", name);
  return path_append(p, n, room, p->path_len);
}

static size_t path_push_index(printer *p, size_t index) {
  size_t room = sizeof p->path - p->path_len;
  int n = snprintf(p->path + p->path_len, room, "[%zu]", index);
  return path_append(p, n, room, p->path_len);
}

static void path_pop(printer *p, size_t saved) {
  p->path_len = saved;
  p->path[saved] = '\0';
}

static const char *path_str(const printer *p) {
  return p->path_len ? p->path : "<root>";
}

/* Python's text_encoding.CEscape(value, as_utf8=False). */
static void put_escaped(ckpt_tf_buf *b, const uint8_t *s, size_t n) {
  ckpt_tf_buf_putc(b, '"');
  for (size_t i = 0; i < n; i++) {
    uint8_t c = s[i];
    switch (c) {
      case '\t':
        ckpt_tf_buf_puts(b, "\\t");
        break;
      case '\n':
        ckpt_tf_buf_puts(b, "\\n");
        break;
      case '\r':
        ckpt_tf_buf_puts(b, "\\r");
        break;
      case '"':
        ckpt_tf_buf_puts(b, "\\\"");
        break;
      case '\'':
        ckpt_tf_buf_puts(b, "\\'");
        break;
      case '\\':
        ckpt_tf_buf_puts(b, "\\\\");
        break;
      default:
        if (c < 32 || c >= 127)
          ckpt_tf_buf_printf(b, "\\%03o", (unsigned)c);
        else
          ckpt_tf_buf_putc(b, (char)c);
    }
  }
  ckpt_tf_buf_putc(b, '"');
}

static ckpt_status print_message(printer *p, const ProtobufCMessage *msg, size_t indent, int depth);

/* Prints the value of one element (v points at the member or the array slot). */
static ckpt_status print_value(printer *p, const ProtobufCFieldDescriptor *f, const void *v,
                               size_t indent, int depth) {
  ckpt_tf_buf *b = &p->out;
  char num[CKPT_TF_NUM_MAX];
  switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
      ckpt_tf_buf_printf(b, "%" PRId32, *(const int32_t *)v);
      break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
      ckpt_tf_buf_printf(b, "%" PRId64, *(const int64_t *)v);
      break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
      ckpt_tf_buf_printf(b, "%" PRIu32, *(const uint32_t *)v);
      break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
      ckpt_tf_buf_printf(b, "%" PRIu64, *(const uint64_t *)v);
      break;
    case PROTOBUF_C_TYPE_FLOAT:
      ckpt_tf_buf_append(b, num, ckpt_tf_float_repr(*(const float *)v, num));
      break;
    case PROTOBUF_C_TYPE_DOUBLE:
      ckpt_tf_buf_append(b, num, ckpt_tf_double_repr(*(const double *)v, num));
      break;
    case PROTOBUF_C_TYPE_BOOL:
      ckpt_tf_buf_puts(b, *(const protobuf_c_boolean *)v ? "true" : "false");
      break;
    case PROTOBUF_C_TYPE_ENUM: {
      int value = *(const int *)v;
      const ProtobufCEnumValue *ev =
          f->descriptor ? protobuf_c_enum_descriptor_get_value(f->descriptor, value) : NULL;
      if (ev)
        ckpt_tf_buf_puts(b, ev->name);
      else /* an open enum's unknown value, as Python prints it */
        ckpt_tf_buf_printf(b, "%d", value);
      break;
    }
    case PROTOBUF_C_TYPE_STRING: {
      const char *s = *(const char *const *)v;
      if (!s) /* only a repeated element gets here NULL; presence rules handle the rest */
        return ckpt_error_set(p->err, CKPT_EINVAL, "string field '%s' holds a NULL element",
                              path_str(p));
      size_t n = strlen(s), bad;
      if (!ckpt_tf_utf8_valid((const uint8_t *)s, n, &bad))
        return ckpt_error_set(p->err, CKPT_EINVAL,
                              "string field '%s' is not valid UTF-8 (byte %zu); text format "
                              "readers would reject it (use a bytes field for binary data)",
                              path_str(p), bad);
      put_escaped(b, (const uint8_t *)s, n);
      break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
      const ProtobufCBinaryData *bd = v;
      if (bd->len && !bd->data)
        return ckpt_error_set(p->err, CKPT_EINVAL, "bytes field '%s' has len %zu but no data",
                              path_str(p), bd->len);
      put_escaped(b, bd->data, bd->len);
      break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
      const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)v;
      if (!sub)
        return ckpt_error_set(p->err, CKPT_EINVAL, "message field '%s' holds a NULL element",
                              path_str(p));
      ckpt_tf_buf_puts(b, "{\n");
      ckpt_status st = print_message(p, sub, indent + 2, depth + 1);
      if (st != CKPT_OK)
        return st;
      ckpt_tf_buf_spaces(b, indent);
      ckpt_tf_buf_putc(b, '}');
      break;
    }
    default:
      return ckpt_error_set(p->err, CKPT_EUNSUPPORTED, "field '%s' has unknown protobuf type %d",
                            path_str(p), (int)f->type);
  }
  return CKPT_OK;
}

static ckpt_status print_field_line(printer *p, const ProtobufCFieldDescriptor *f, const void *v,
                                    size_t indent, int depth) {
  ckpt_tf_buf_spaces(&p->out, indent);
  ckpt_tf_buf_puts(&p->out, f->name);
  ckpt_tf_buf_puts(&p->out, f->type == PROTOBUF_C_TYPE_MESSAGE ? " " : ": ");
  ckpt_status st = print_value(p, f, v, indent, depth);
  ckpt_tf_buf_putc(&p->out, '\n');
  return st;
}

/* Is a field without explicit presence (proto3 implicit) set? Same rule as protobuf-c's
 * packer, except floats compare bits so that -0.0 is kept (as C++ and Python do). */
static bool implicit_present(const ProtobufCFieldDescriptor *f, const void *v) {
  switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
      const char *s = *(const char *const *)v;
      return s && s[0];
    }
    case PROTOBUF_C_TYPE_BYTES:
      return ((const ProtobufCBinaryData *)v)->len != 0;
    case PROTOBUF_C_TYPE_MESSAGE:
      return *(const ProtobufCMessage *const *)v != NULL;
    case PROTOBUF_C_TYPE_BOOL:
      return *(const protobuf_c_boolean *)v != 0;
    default: {
      size_t n = ckpt_pb_elem_size(f->type);
      static const uint8_t zero[8];
      return memcmp(v, zero, n) != 0;
    }
  }
}

/* ---- map entries: printed sorted by key, as Python iterates sorted(map) */

typedef struct map_item {
  const ProtobufCMessage *entry;
  size_t index; /* keeps duplicates in their original order (stable) */
} map_item;

static int compare_keys(const ProtobufCFieldDescriptor *kf, const ProtobufCMessage *a,
                        const ProtobufCMessage *b) {
  const void *ka = CKPT_PB_CMEMBER(a, kf->offset);
  const void *kb = CKPT_PB_CMEMBER(b, kf->offset);
  switch (kf->type) {
    case PROTOBUF_C_TYPE_STRING: {
      const char *sa = *(const char *const *)ka, *sb = *(const char *const *)kb;
      return strcmp(sa ? sa : "", sb ? sb : ""); /* byte order == code point order in UTF-8 */
    }
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32: {
      int32_t x = *(const int32_t *)ka, y = *(const int32_t *)kb;
      return (x > y) - (x < y);
    }
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64: {
      int64_t x = *(const int64_t *)ka, y = *(const int64_t *)kb;
      return (x > y) - (x < y);
    }
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: {
      uint32_t x = *(const uint32_t *)ka, y = *(const uint32_t *)kb;
      return (x > y) - (x < y);
    }
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: {
      uint64_t x = *(const uint64_t *)ka, y = *(const uint64_t *)kb;
      return (x > y) - (x < y);
    }
    case PROTOBUF_C_TYPE_BOOL: {
      int x = *(const protobuf_c_boolean *)ka != 0, y = *(const protobuf_c_boolean *)kb != 0;
      return x - y;
    }
    default:
      return 0; /* protoc allows no other key types */
  }
}

/* qsort has no context argument in C11; the key descriptor travels in each item instead. */
typedef struct map_sort_item {
  map_item item;
  const ProtobufCFieldDescriptor *key;
} map_sort_item;

static int map_item_cmp(const void *x, const void *y) {
  const map_sort_item *a = x, *b = y;
  int c = compare_keys(a->key, a->item.entry, b->item.entry);
  if (c)
    return c;
  return (a->item.index > b->item.index) - (a->item.index < b->item.index);
}

static ckpt_status print_map(printer *p, const ProtobufCFieldDescriptor *f, size_t n,
                             const ProtobufCMessage *const *arr, size_t indent, int depth) {
  const ProtobufCMessageDescriptor *ed = f->descriptor;
  map_sort_item *items = malloc(n * sizeof *items);
  if (!items)
    return ckpt_error_set(p->err, CKPT_ENOMEM, "out of memory sorting map field '%s'", path_str(p));
  for (size_t i = 0; i < n; i++) {
    if (!arr[i]) {
      free(items);
      return ckpt_error_set(p->err, CKPT_EINVAL, "map field '%s' holds a NULL entry at %zu",
                            path_str(p), i);
    }
    items[i].item.entry = arr[i];
    items[i].item.index = i;
    items[i].key = &ed->fields[0];
  }
  qsort(items, n, sizeof *items, map_item_cmp);
  ckpt_status st = CKPT_OK;
  for (size_t i = 0; i < n && st == CKPT_OK; i++) {
    size_t saved = path_push_index(p, items[i].item.index);
    st = print_field_line(p, f, &items[i].item.entry, indent, depth);
    path_pop(p, saved);
  }
  free(items);
  return st;
}

static ckpt_status print_field(printer *p, const ProtobufCMessage *msg,
                               const ProtobufCFieldDescriptor *f, size_t indent, int depth) {
  const void *member = CKPT_PB_CMEMBER(msg, f->offset);
  if (f->label == PROTOBUF_C_LABEL_REPEATED) {
    size_t n = *(const size_t *)CKPT_PB_CMEMBER(msg, f->quantifier_offset);
    const void *arr = *(const void *const *)member;
    if (n == 0)
      return CKPT_OK;
    if (!arr)
      return ckpt_error_set(p->err, CKPT_EINVAL, "repeated field '%s' has n=%zu but no array",
                            path_str(p), n);
    if (ckpt_pb_is_map_field(msg->descriptor, f))
      return print_map(p, f, n, arr, indent, depth);
    size_t es = ckpt_pb_elem_size(f->type);
    for (size_t i = 0; i < n; i++) {
      size_t saved = path_push_index(p, i);
      ckpt_status st = print_field_line(p, f, (const char *)arr + i * es, indent, depth);
      path_pop(p, saved);
      if (st != CKPT_OK)
        return st;
    }
    return CKPT_OK;
  }
  bool present;
  if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
    present = *(const uint32_t *)CKPT_PB_CMEMBER(msg, f->quantifier_offset) == f->id;
    if (present && f->type == PROTOBUF_C_TYPE_MESSAGE && !*(const void *const *)member)
      return ckpt_error_set(p->err, CKPT_EINVAL,
                            "oneof field '%s' is selected but its message is NULL", path_str(p));
    if (present && f->type == PROTOBUF_C_TYPE_STRING && !*(const void *const *)member) {
      static const char *const empty = "";
      return print_field_line(p, f, &empty, indent, depth);
    }
  } else if (f->label == PROTOBUF_C_LABEL_REQUIRED) {
    if ((f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE) &&
        !*(const void *const *)member)
      return ckpt_error_set(p->err, CKPT_EINVAL, "required field '%s' of message %s is not set",
                            path_str(p), msg->descriptor->name);
    present = true;
  } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL) {
    if (f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE) {
      const void *ptr = *(const void *const *)member;
      present = ptr && ptr != f->default_value;
    } else {
      present = *(const protobuf_c_boolean *)CKPT_PB_CMEMBER(msg, f->quantifier_offset) != 0;
    }
  } else {
    present = implicit_present(f, member);
  }
  if (!present)
    return CKPT_OK;
  return print_field_line(p, f, member, indent, depth);
}

static ckpt_status print_message(printer *p, const ProtobufCMessage *msg, size_t indent,
                                 int depth) {
  const ProtobufCMessageDescriptor *d = msg->descriptor;
  if (!d || d->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC)
    return ckpt_error_set(p->err, CKPT_EINVAL,
                          "'%s' is not a protobuf-c message (bad or missing descriptor)",
                          path_str(p));
  if (depth > CKPT_PBTXT_MAX_DEPTH)
    return ckpt_error_set(p->err, CKPT_EINVAL,
                          "message '%s' is nested deeper than %d levels (a cycle?)", path_str(p),
                          CKPT_PBTXT_MAX_DEPTH);
  if (msg->n_unknown_fields)
    return ckpt_error_set(p->err, CKPT_EINVAL,
                          "message '%s' (%s) carries %u unknown field(s) (first tag %u), which "
                          "text format cannot represent; refusing to drop them",
                          path_str(p), d->name, msg->n_unknown_fields,
                          msg->unknown_fields ? msg->unknown_fields[0].tag : 0u);
  for (unsigned i = 0; i < d->n_fields; i++) { /* fields[] is sorted by number */
    size_t saved = path_push_name(p, d->fields[i].name);
    ckpt_status st = print_field(p, msg, &d->fields[i], indent, depth);
    path_pop(p, saved);
    if (st != CKPT_OK)
      return st;
  }
  return CKPT_OK;
}

ckpt_status ckpt_pbtxt_print(const ProtobufCMessage *msg, char **out, size_t *len,
                             ckpt_error *err) {
  if (out)
    *out = NULL;
  if (len)
    *len = 0;
  if (!msg || !out)
    return ckpt_error_set(err, CKPT_EINVAL, "ckpt_pbtxt_print: %s is NULL",
                          msg ? "out" : "message");
  printer p = {CKPT_TF_BUF_INIT, err, {0}, 0};
  ckpt_status st = print_message(&p, msg, 0, 0);
  if (st != CKPT_OK) {
    ckpt_tf_buf_free(&p.out);
    return st;
  }
  return ckpt_tf_buf_take(&p.out, "protobuf text", out, len, err);
}
