/* text/pbtxt_values.c — text-format scalar values: integers (decimal, 0x hex, 0 octal)
 * with exact range checks, floats (including inf/nan and a trailing 'f'), bools, enums by name
 * or number, and C-style string escapes. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "text/pbtxt_internal.h"
#include "text/pbtxt_values.h"

static ckpt_status bad_token(const pbtxt_lexer *lx, const char *what,
                             const ProtobufCFieldDescriptor *f) {
  char d[96];
  return pbtxt_error_at(lx, &lx->tok, "expected %s for field '%s', found %s", what, f->name,
                        pbtxt_tok_describe(&lx->tok, d, sizeof d));
}

/* Parses an integer token into sign and magnitude. Returns 0 when the token is not an integer,
 * -1 when the magnitude exceeds 64 bits. */
static int parse_integer(const char *s, size_t n, int *negative, uint64_t *mag) {
  size_t i = 0;
  *negative = 0;
  if (i < n && (s[i] == '-' || s[i] == '+'))
    *negative = s[i++] == '-';
  if (i >= n)
    return 0;
  unsigned base = 10;
  if (s[i] == '0' && i + 1 < n && (s[i + 1] == 'x' || s[i + 1] == 'X')) {
    base = 16;
    i += 2;
    if (i >= n)
      return 0;
  } else if (s[i] == '0' && i + 1 < n) {
    base = 8; /* C-style octal, as text_format's _ParseAbstractInteger */
    i += 1;
  }
  uint64_t v = 0;
  int overflow = 0;
  for (; i < n; i++) {
    char c = s[i];
    unsigned digit;
    if (c >= '0' && c <= '9')
      digit = (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f')
      digit = (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F')
      digit = (unsigned)(c - 'A' + 10);
    else
      return 0;
    if (digit >= base)
      return 0;
    if (v > (UINT64_MAX - digit) / base)
      overflow = 1;
    v = v * base + digit;
  }
  *mag = v;
  return overflow ? -1 : 1;
}

static ckpt_status int_value(const pbtxt_lexer *lx, const ProtobufCFieldDescriptor *f,
                             int is_signed, int bits, pbtxt_scalar *out) {
  const pbtxt_token *t = &lx->tok;
  if (t->kind != PBTXT_TOK_NUMBER)
    return bad_token(lx, "an integer", f);
  int neg;
  uint64_t mag;
  int r = parse_integer(t->start, t->len, &neg, &mag);
  char d[96];
  if (r == 0)
    return bad_token(lx, "an integer", f);
  uint64_t max_pos = bits == 32 ? (is_signed ? INT32_MAX : UINT32_MAX)
                                : (is_signed ? (uint64_t)INT64_MAX : UINT64_MAX);
  uint64_t max_neg = !is_signed   ? 0
                     : bits == 32 ? (uint64_t)INT32_MAX + 1
                                  : (uint64_t)INT64_MAX + 1;
  if (r < 0 || (neg ? mag > max_neg : mag > max_pos))
    return pbtxt_error_at(lx, t, "integer %s is out of range for %s%d field '%s'",
                          pbtxt_tok_describe(t, d, sizeof d), is_signed ? "int" : "uint", bits,
                          f->name);
  if (is_signed) {
    /* two's complement from sign and magnitude without signed overflow */
    int64_t v = neg ? (mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag) : (int64_t)mag;
    if (bits == 32)
      out->i32 = (int32_t)v;
    else
      out->i64 = v;
  } else {
    if (bits == 32)
      out->u32 = (uint32_t)mag;
    else
      out->u64 = mag;
  }
  return CKPT_OK;
}

static int ieq(const char *a, size_t n, const char *b) {
  if (strlen(b) != n)
    return 0;
  for (size_t i = 0; i < n; i++) {
    char c = a[i];
    if (c >= 'A' && c <= 'Z')
      c = (char)(c - 'A' + 'a');
    if (c != b[i])
      return 0;
  }
  return 1;
}

/* Validates the decimal float grammar Python's float() accepts (without underscores):
 * digits[.digits][e[+-]digits] or .digits[...], optionally followed by 'f'/'F'. */
static int is_decimal_float(const char *s, size_t n, size_t *body_len) {
  size_t i = 0, digits = 0;
  while (i < n && s[i] >= '0' && s[i] <= '9')
    i++, digits++;
  if (i < n && s[i] == '.') {
    i++;
    while (i < n && s[i] >= '0' && s[i] <= '9')
      i++, digits++;
  }
  if (!digits)
    return 0;
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    if (i < n && (s[i] == '+' || s[i] == '-'))
      i++;
    size_t ed = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9')
      i++, ed++;
    if (!ed)
      return 0;
  }
  *body_len = i;
  if (i < n && (s[i] == 'f' || s[i] == 'F'))
    i++;
  return i == n;
}

static ckpt_status float_value(const pbtxt_lexer *lx, const ProtobufCFieldDescriptor *f,
                               double *out) {
  const pbtxt_token *t = &lx->tok;
  if (t->kind != PBTXT_TOK_NUMBER && t->kind != PBTXT_TOK_IDENT)
    return bad_token(lx, "a number", f);
  const char *s = t->start;
  size_t n = t->len;
  int neg = 0;
  if (n && (s[0] == '-' || s[0] == '+')) {
    neg = s[0] == '-';
    s++;
    n--;
  }
  if (ieq(s, n, "inf") || ieq(s, n, "inff") || ieq(s, n, "infinity") || ieq(s, n, "infinityf")) {
    *out = neg ? -INFINITY : INFINITY;
    return CKPT_OK;
  }
  if (ieq(s, n, "nan") || ieq(s, n, "nanf")) {
    *out = NAN;
    return CKPT_OK;
  }
  size_t body;
  char buf[128];
  if (!is_decimal_float(s, n, &body) || body + 2 > sizeof buf)
    return bad_token(lx, "a number", f);
  buf[0] = neg ? '-' : '+';
  memcpy(buf + 1, s, body);
  buf[body + 1] = '\0';
  *out = ckpt_tf_strtod(buf, NULL); /* overflow gives +-inf, as Python's float() */
  return CKPT_OK;
}

/* double -> float rounding to nearest, with overflow to infinity made explicit. */
static float to_float(double d) {
  if (isnan(d) || isinf(d))
    return (float)d;
  double a = fabs(d);
  if (a > FLT_MAX) {
    /* halfway between FLT_MAX and the next power of two rounds (to even) to infinity */
    if (a >= 0x1.ffffffp127)
      return d < 0 ? -INFINITY : INFINITY;
    return d < 0 ? -FLT_MAX : FLT_MAX;
  }
  return (float)d;
}

static ckpt_status enum_value(const pbtxt_lexer *lx, const ProtobufCFieldDescriptor *f,
                              pbtxt_scalar *out) {
  const pbtxt_token *t = &lx->tok;
  const ProtobufCEnumDescriptor *ed = f->descriptor;
  if (t->kind == PBTXT_TOK_NUMBER) {
    pbtxt_scalar v;
    ckpt_status st = int_value(lx, f, 1, 32, &v);
    if (st != CKPT_OK)
      return st;
    out->e = v.i32;
    return CKPT_OK;
  }
  if (t->kind != PBTXT_TOK_IDENT)
    return bad_token(lx, "an enum value name or number", f);
  char name[256];
  const ProtobufCEnumValue *ev = NULL;
  if (t->len < sizeof name && ed) {
    memcpy(name, t->start, t->len);
    name[t->len] = '\0';
    ev = protobuf_c_enum_descriptor_get_value_by_name(ed, name);
  }
  if (!ev) {
    char d[96];
    return pbtxt_error_at(lx, t, "enum type %s has no value named %s (field '%s')",
                          ed ? ed->name : "?", pbtxt_tok_describe(t, d, sizeof d), f->name);
  }
  out->e = ev->value;
  return CKPT_OK;
}

static ckpt_status bool_value(const pbtxt_lexer *lx, const ProtobufCFieldDescriptor *f,
                              pbtxt_scalar *out) {
  const pbtxt_token *t = &lx->tok;
  static const char *const yes[] = {"true", "t", "1", "True"};
  static const char *const no[] = {"false", "f", "0", "False"};
  for (size_t i = 0; i < 4; i++) {
    if (strlen(yes[i]) == t->len && memcmp(t->start, yes[i], t->len) == 0) {
      out->b = 1;
      return CKPT_OK;
    }
    if (strlen(no[i]) == t->len && memcmp(t->start, no[i], t->len) == 0) {
      out->b = 0;
      return CKPT_OK;
    }
  }
  return bad_token(lx, "true or false", f);
}

ckpt_status pbtxt_parse_scalar(const pbtxt_lexer *lx, const ProtobufCFieldDescriptor *f,
                               pbtxt_scalar *out) {
  memset(out, 0, sizeof *out);
  switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
      return int_value(lx, f, 1, 32, out);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
      return int_value(lx, f, 1, 64, out);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
      return int_value(lx, f, 0, 32, out);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
      return int_value(lx, f, 0, 64, out);
    case PROTOBUF_C_TYPE_FLOAT: {
      double d;
      ckpt_status st = float_value(lx, f, &d);
      if (st == CKPT_OK)
        out->f = to_float(d);
      return st;
    }
    case PROTOBUF_C_TYPE_DOUBLE:
      return float_value(lx, f, &out->d);
    case PROTOBUF_C_TYPE_BOOL:
      return bool_value(lx, f, out);
    case PROTOBUF_C_TYPE_ENUM:
      return enum_value(lx, f, out);
    default:
      return bad_token(lx, "a scalar", f);
  }
}

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

ckpt_status pbtxt_unescape(const pbtxt_lexer *lx, const pbtxt_token *t, ckpt_tf_buf *b) {
  const char *s = t->start + 1;
  size_t n = t->len - 2; /* the lexer guarantees both quotes */
  size_t i = 0;
  while (i < n) {
    size_t run = i;
    while (run < n && s[run] != '\\')
      run++;
    ckpt_tf_buf_append(b, s + i, run - i);
    i = run;
    if (i >= n)
      break;
    char c = s[i + 1]; /* the lexer guarantees a character after each backslash */
    i += 2;
    switch (c) {
      case 'n':
        ckpt_tf_buf_putc(b, '\n');
        break;
      case 't':
        ckpt_tf_buf_putc(b, '\t');
        break;
      case 'r':
        ckpt_tf_buf_putc(b, '\r');
        break;
      case 'a':
        ckpt_tf_buf_putc(b, '\a');
        break;
      case 'b':
        ckpt_tf_buf_putc(b, '\b');
        break;
      case 'f':
        ckpt_tf_buf_putc(b, '\f');
        break;
      case 'v':
        ckpt_tf_buf_putc(b, '\v');
        break;
      case '\\':
        ckpt_tf_buf_putc(b, '\\');
        break;
      case '\'':
        ckpt_tf_buf_putc(b, '\'');
        break;
      case '"':
        ckpt_tf_buf_putc(b, '"');
        break;
      case '?':
        ckpt_tf_buf_putc(b, '?');
        break;
      case 'x':
      case 'X': {
        int v = 0, k = 0;
        while (k < 2 && i < n && hexval(s[i]) >= 0)
          v = v * 16 + hexval(s[i++]), k++;
        if (!k)
          return pbtxt_error_at(lx, t, "\\x escape without hex digits in string literal");
        ckpt_tf_buf_putc(b, (char)v);
        break;
      }
      case 'u':
      case 'U': {
        int want = c == 'u' ? 4 : 8;
        uint32_t cp = 0;
        for (int k = 0; k < want; k++) {
          if (i >= n || hexval(s[i]) < 0)
            return pbtxt_error_at(lx, t, "\\%c escape needs %d hex digits in string literal", c,
                                  want);
          cp = cp * 16 + (uint32_t)hexval(s[i++]);
        }
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
          return pbtxt_error_at(lx, t, "\\%c escape U+%04X is not a Unicode scalar value", c,
                                (unsigned)cp);
        ckpt_tf_buf_put_utf8(b, cp);
        break;
      }
      default:
        if (c >= '0' && c <= '7') {
          int v = c - '0', k = 1;
          while (k < 3 && i < n && s[i] >= '0' && s[i] <= '7')
            v = v * 8 + (s[i++] - '0'), k++;
          if (v > 0377)
            return pbtxt_error_at(lx, t, "octal escape \\%o is larger than a byte", (unsigned)v);
          ckpt_tf_buf_putc(b, (char)v);
          break;
        }
        if ((unsigned char)c >= 32 && (unsigned char)c < 127)
          return pbtxt_error_at(lx, t, "unknown escape sequence '\\%c' in string literal", c);
        return pbtxt_error_at(lx, t, "unknown escape sequence (backslash before byte 0x%02x)",
                              (unsigned char)c);
    }
  }
  return CKPT_OK;
}
