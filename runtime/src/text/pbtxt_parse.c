/* text/pbtxt_parse.c — protobuf text format parser that builds protoc-c messages.
 *
 * Accepts what Python's text_format.Parse accepts (see ckpt/pbtxt.h) and builds the message the
 * way protobuf_c_message_unpack does: the struct from the descriptor's sizeof_message and init,
 * every string, bytes buffer, repeated array and submessage malloc'ed separately, so that
 * protobuf_c_message_free_unpacked(msg, NULL) releases it. The message stays in that freeable
 * state after every step, so a syntax error anywhere just frees the partial result.
 *
 * Stricter than Python where Python would lose data or crash the C side: a non-repeated field
 * given twice, two members of one oneof, a missing required field, a NUL byte or invalid UTF-8
 * in a string field are errors. Recursion is bounded by CKPT_PBTXT_MAX_DEPTH. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/pbtxt.h"
#include "text/pbtxt_internal.h"
#include "text/pbtxt_lex.h"
#include "text/pbtxt_values.h"
#include "util/text.h"

typedef struct parser {
  pbtxt_lexer lx;
  ckpt_error *err;
} parser;

static ckpt_status parse_body(parser *ps, ProtobufCMessage *msg, char close,
                              const pbtxt_token *open, int depth);

static ckpt_status oom(parser *ps, const char *what, const ProtobufCFieldDescriptor *f) {
  return ckpt_error_set(ps->err, CKPT_ENOMEM, "%s:%zu:%zu: out of memory for %s of field '%s'",
                        ps->lx.source, ps->lx.tok.line, ps->lx.tok.col, what, f->name);
}

/* Makes room for one more element in the repeated array stored at member (a T * member,
 * accessed with memcpy since its pointee type varies). Capacity is implicit: a power of two of
 * at least 4, so that no extra state is kept next to the message. */
static int grow_repeated(void *member, size_t n, size_t es) {
  if (n != 0 && (n < 4 || (n & (n - 1)) != 0))
    return 1;
  size_t cap = n == 0 ? 4 : n * 2;
  if (cap > SIZE_MAX / es)
    return 0;
  void *arr;
  memcpy(&arr, member, sizeof arr);
  void *p = realloc(arr, cap * es);
  if (!p)
    return 0;
  memcpy(member, &p, sizeof p);
  return 1;
}

/* Pointer to the slot the next value of f goes into: the member itself, or a new element at
 * the end of the repeated array (the count is bumped by commit_slot once the value is in). */
static void *value_slot(parser *ps, ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f,
                        ckpt_status *st) {
  void *member = CKPT_PB_MEMBER(msg, f->offset);
  *st = CKPT_OK;
  if (f->label != PROTOBUF_C_LABEL_REPEATED)
    return member;
  size_t n = *(size_t *)CKPT_PB_MEMBER(msg, f->quantifier_offset);
  size_t es = ckpt_pb_elem_size(f->type);
  if (!grow_repeated(member, n, es)) {
    *st = oom(ps, "an element", f);
    return NULL;
  }
  char *arr;
  memcpy(&arr, member, sizeof arr);
  return arr + n * es;
}

/* Marks f as present once its value is stored: bumps n_NAME, sets has_NAME or the oneof case. */
static void commit_slot(ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f) {
  void *q = CKPT_PB_MEMBER(msg, f->quantifier_offset);
  if (f->label == PROTOBUF_C_LABEL_REPEATED)
    (*(size_t *)q)++;
  else if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
    *(uint32_t *)q = f->id;
  else if (ckpt_pb_has_has_flag(f))
    *(protobuf_c_boolean *)q = 1;
}

/* One or more adjacent string literals, concatenated and unescaped. */
static ckpt_status parse_string_value(parser *ps, const ProtobufCFieldDescriptor *f,
                                      ckpt_tf_buf *b) {
  pbtxt_token first = ps->lx.tok;
  if (first.kind != PBTXT_TOK_STRING) {
    char d[96];
    return pbtxt_error_at(&ps->lx, &first, "expected a quoted string for field '%s', found %s",
                          f->name, pbtxt_tok_describe(&first, d, sizeof d));
  }
  while (ps->lx.tok.kind == PBTXT_TOK_STRING) {
    ckpt_status st = pbtxt_unescape(&ps->lx, &ps->lx.tok, b);
    if (st != CKPT_OK)
      return st;
    st = pbtxt_lex_next(&ps->lx);
    if (st != CKPT_OK)
      return st;
  }
  if (b->oom)
    return oom(ps, "the string", f);
  if (f->type == PROTOBUF_C_TYPE_STRING) {
    size_t bad;
    if (b->len && memchr(b->data, '\0', b->len))
      return pbtxt_error_at(&ps->lx, &first,
                            "string field '%s' contains a NUL byte, which a C string cannot "
                            "hold (use a bytes field)",
                            f->name);
    if (b->len && !ckpt_tf_utf8_valid((const uint8_t *)b->data, b->len, &bad))
      return pbtxt_error_at(&ps->lx, &first,
                            "string field '%s' is not valid UTF-8 (byte %zu of the value)", f->name,
                            bad);
  }
  return CKPT_OK;
}

static ckpt_status parse_one_value(parser *ps, ProtobufCMessage *msg,
                                   const ProtobufCFieldDescriptor *f, int depth) {
  ckpt_status st;
  if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
    char close;
    if (pbtxt_lex_is(&ps->lx, '{')) {
      close = '}';
    } else if (pbtxt_lex_is(&ps->lx, '<')) {
      close = '>';
    } else {
      char d[96];
      return pbtxt_error_at(&ps->lx, &ps->lx.tok,
                            "expected '{' or '<' to start message field '%s', found %s", f->name,
                            pbtxt_tok_describe(&ps->lx.tok, d, sizeof d));
    }
    if (depth + 1 > CKPT_PBTXT_MAX_DEPTH)
      return pbtxt_error_at(&ps->lx, &ps->lx.tok, "messages nested deeper than %d levels",
                            CKPT_PBTXT_MAX_DEPTH);
    const ProtobufCMessageDescriptor *sd = f->descriptor;
    if (!sd || !sd->message_init)
      return ckpt_error_set(ps->err, CKPT_EUNSUPPORTED,
                            "field '%s' has no usable message descriptor", f->name);
    void *slot = value_slot(ps, msg, f, &st);
    if (!slot)
      return st;
    ProtobufCMessage *sub = malloc(sd->sizeof_message);
    if (!sub)
      return oom(ps, "a submessage", f);
    sd->message_init(sub);
    *(ProtobufCMessage **)slot = sub; /* owned by msg from here on */
    commit_slot(msg, f);
    pbtxt_token open = ps->lx.tok;
    st = pbtxt_lex_next(&ps->lx);
    if (st != CKPT_OK)
      return st;
    return parse_body(ps, sub, close, &open, depth + 1);
  }
  if (f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_BYTES) {
    ckpt_tf_buf b = CKPT_TF_BUF_INIT;
    st = parse_string_value(ps, f, &b);
    if (st != CKPT_OK) {
      ckpt_tf_buf_free(&b);
      return st;
    }
    char *data = NULL;
    size_t len = 0;
    if (f->type == PROTOBUF_C_TYPE_STRING || b.len) {
      st = ckpt_tf_buf_take(&b, "a string", &data, &len, ps->err);
      if (st != CKPT_OK)
        return st;
    }
    void *slot = value_slot(ps, msg, f, &st);
    if (!slot) {
      free(data);
      return st;
    }
    if (f->type == PROTOBUF_C_TYPE_STRING) {
      *(char **)slot = data;
    } else {
      ProtobufCBinaryData *bd = slot;
      bd->len = len;
      bd->data = (uint8_t *)data;
    }
    commit_slot(msg, f);
    return CKPT_OK;
  }
  pbtxt_scalar v;
  st = pbtxt_parse_scalar(&ps->lx, f, &v);
  if (st != CKPT_OK)
    return st;
  void *slot = value_slot(ps, msg, f, &st);
  if (!slot)
    return st;
  memcpy(slot, &v, ckpt_pb_elem_size(f->type));
  commit_slot(msg, f);
  return pbtxt_lex_next(&ps->lx);
}

/* Rejects a second value for a non-repeated field and a second member of a oneof. */
static ckpt_status check_single(parser *ps, ProtobufCMessage *msg,
                                const ProtobufCFieldDescriptor *f, unsigned char *seen,
                                unsigned index, const pbtxt_token *name_tok) {
  if (f->label == PROTOBUF_C_LABEL_REPEATED)
    return CKPT_OK;
  if (seen[index])
    return pbtxt_error_at(&ps->lx, name_tok, "message %s should not have multiple '%s' fields",
                          msg->descriptor->name, f->name);
  if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
    uint32_t cur = *(const uint32_t *)CKPT_PB_CMEMBER(msg, f->quantifier_offset);
    if (cur != 0 && cur != f->id) {
      const ProtobufCFieldDescriptor *other =
          protobuf_c_message_descriptor_get_field(msg->descriptor, cur);
      return pbtxt_error_at(&ps->lx, name_tok,
                            "field '%s' is specified along with field '%s', another member of "
                            "the same oneof in message %s",
                            f->name, other ? other->name : "?", msg->descriptor->name);
    }
  }
  seen[index] = 1;
  return CKPT_OK;
}

/* Field by name without copying the token: binary search of fields_sorted_by_name, whose
 * order is strcmp's. */
static const ProtobufCFieldDescriptor *find_field(const ProtobufCMessageDescriptor *d,
                                                  const char *name, size_t len) {
  size_t lo = 0, hi = d->n_fields;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    const ProtobufCFieldDescriptor *f = &d->fields[d->fields_sorted_by_name[mid]];
    int c = strncmp(f->name, name, len);
    if (c == 0 && f->name[len] != '\0')
      c = 1; /* f->name is longer: it sorts after */
    if (c == 0)
      return f;
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

static ckpt_status parse_field(parser *ps, ProtobufCMessage *msg, unsigned char *seen, int depth) {
  const ProtobufCMessageDescriptor *d = msg->descriptor;
  pbtxt_token name_tok = ps->lx.tok;
  char desc[96];
  const ProtobufCFieldDescriptor *f = find_field(d, name_tok.start, name_tok.len);
  if (!f)
    return pbtxt_error_at(&ps->lx, &name_tok, "message type %s has no field named %s", d->name,
                          pbtxt_tok_describe(&name_tok, desc, sizeof desc));
  ckpt_status st = pbtxt_lex_next(&ps->lx);
  if (st != CKPT_OK)
    return st;
  st = check_single(ps, msg, f, seen, (unsigned)(f - d->fields), &name_tok);
  if (st != CKPT_OK)
    return st;

  if (pbtxt_lex_is(&ps->lx, ':')) {
    st = pbtxt_lex_next(&ps->lx);
    if (st != CKPT_OK)
      return st;
  } else if (f->type != PROTOBUF_C_TYPE_MESSAGE) { /* the colon is optional before messages */
    return pbtxt_error_at(&ps->lx, &ps->lx.tok, "expected ':' after field name '%s', found %s",
                          f->name, pbtxt_tok_describe(&ps->lx.tok, desc, sizeof desc));
  }

  if (f->label == PROTOBUF_C_LABEL_REPEATED && pbtxt_lex_is(&ps->lx, '[')) {
    /* short list form: name: [v1, v2, ...] */
    st = pbtxt_lex_next(&ps->lx);
    if (st != CKPT_OK)
      return st;
    if (pbtxt_lex_is(&ps->lx, ']'))
      return pbtxt_lex_next(&ps->lx);
    for (;;) {
      st = parse_one_value(ps, msg, f, depth);
      if (st != CKPT_OK)
        return st;
      if (pbtxt_lex_is(&ps->lx, ']'))
        return pbtxt_lex_next(&ps->lx);
      if (!pbtxt_lex_is(&ps->lx, ','))
        return pbtxt_error_at(&ps->lx, &ps->lx.tok,
                              "expected ',' or ']' in the list of field '%s', found %s", f->name,
                              pbtxt_tok_describe(&ps->lx.tok, desc, sizeof desc));
      st = pbtxt_lex_next(&ps->lx);
      if (st != CKPT_OK)
        return st;
    }
  }
  return parse_one_value(ps, msg, f, depth);
}

static ckpt_status check_required(parser *ps, const ProtobufCMessage *msg,
                                  const unsigned char *seen) {
  const ProtobufCMessageDescriptor *d = msg->descriptor;
  for (unsigned i = 0; i < d->n_fields; i++) {
    if (d->fields[i].label == PROTOBUF_C_LABEL_REQUIRED && !seen[i])
      return pbtxt_error_at(&ps->lx, &ps->lx.tok, "message %s is missing required field '%s'",
                            d->name, d->fields[i].name);
  }
  return CKPT_OK;
}

/* Fields until `close` (or end of input for the top level, close == 0). */
static ckpt_status parse_body(parser *ps, ProtobufCMessage *msg, char close,
                              const pbtxt_token *open, int depth) {
  const ProtobufCMessageDescriptor *d = msg->descriptor;
  unsigned char *seen = calloc(d->n_fields ? d->n_fields : 1, 1);
  if (!seen)
    return ckpt_error_set(ps->err, CKPT_ENOMEM, "%s: out of memory parsing message %s",
                          ps->lx.source, d->name);
  ckpt_status st = CKPT_OK;
  char desc[96];
  for (;;) {
    pbtxt_token *t = &ps->lx.tok;
    if (t->kind == PBTXT_TOK_END) {
      if (close)
        st = pbtxt_error_at(&ps->lx, t, "expected '%c' to close message %s opened at %zu:%zu",
                            close, d->name, open->line, open->col);
      break;
    }
    if (close && pbtxt_lex_is(&ps->lx, close))
      break;
    if (pbtxt_lex_is(&ps->lx, '[')) {
      st = pbtxt_error_at(&ps->lx, t, "extension and Any field names ('[...]') are not supported");
      break;
    }
    if (t->kind != PBTXT_TOK_IDENT) {
      st = pbtxt_error_at(&ps->lx, t, "expected a field name of message %s%s, found %s", d->name,
                          close == '}'   ? " or '}'"
                          : close == '>' ? " or '>'"
                                         : "",
                          pbtxt_tok_describe(t, desc, sizeof desc));
      break;
    }
    st = parse_field(ps, msg, seen, depth);
    if (st != CKPT_OK)
      break;
    /* fields may be separated by one ',' or ';' */
    if (pbtxt_lex_is(&ps->lx, ',') || pbtxt_lex_is(&ps->lx, ';')) {
      st = pbtxt_lex_next(&ps->lx);
      if (st != CKPT_OK)
        break;
    }
  }
  if (st == CKPT_OK)
    st = check_required(ps, msg, seen);
  free(seen);
  if (st == CKPT_OK && close)
    st = pbtxt_lex_next(&ps->lx); /* consume the closing bracket */
  return st;
}

ckpt_status ckpt_pbtxt_parse(const ProtobufCMessageDescriptor *desc, const char *text, size_t len,
                             const char *source, ProtobufCMessage **out, ckpt_error *err) {
  if (out)
    *out = NULL;
  if (!source)
    source = "<pbtxt>";
  if (!desc || !out || (!text && len))
    return ckpt_error_set(err, CKPT_EINVAL, "ckpt_pbtxt_parse(%s): %s is NULL", source,
                          !desc  ? "descriptor"
                          : !out ? "out"
                                 : "text");
  if (desc->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC || !desc->message_init)
    return ckpt_error_set(err, CKPT_EINVAL,
                          "ckpt_pbtxt_parse(%s): not a protobuf-c message descriptor", source);
  ProtobufCMessage *msg = malloc(desc->sizeof_message);
  if (!msg)
    return ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory for message %s", source, desc->name);
  desc->message_init(msg);
  parser ps;
  ckpt_status st = pbtxt_lex_init(&ps.lx, text ? text : "", len, source, err);
  ps.err = err;
  if (st == CKPT_OK)
    st = parse_body(&ps, msg, 0, NULL, 0);
  if (st != CKPT_OK) {
    protobuf_c_message_free_unpacked(msg, NULL);
    return st;
  }
  *out = msg;
  return CKPT_OK;
}
