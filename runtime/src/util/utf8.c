/* util/utf8.c — UTF-8 validation, decoding and encoding with Python's strictness.
 *
 * Python decodes 'utf-8' strictly (no overlong forms, no surrogates, nothing above U+10FFFF),
 * so a string ckpt writes must pass the same test or Python could not read the file. */
#include "util/text.h"

/* Length of the valid sequence at s, or 0 when it is not valid. */
static size_t seq_len(const uint8_t *s, size_t n, uint32_t *cp) {
  uint8_t c = s[0];
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  size_t len;
  uint32_t v, min;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2, v = c & 0x1Fu, min = 0x80;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3, v = c & 0x0Fu, min = 0x800;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4, v = c & 0x07u, min = 0x10000;
  } else {
    return 0;
  }
  if (n < len)
    return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80)
      return 0;
    v = (v << 6) | (s[i] & 0x3Fu);
  }
  if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
    return 0;
  *cp = v;
  return len;
}

bool ckpt_tf_utf8_valid(const uint8_t *s, size_t n, size_t *bad_offset) {
  size_t i = 0;
  while (i < n) {
    uint32_t cp;
    size_t l = seq_len(s + i, n - i, &cp);
    if (l == 0) {
      if (bad_offset)
        *bad_offset = i;
      return false;
    }
    i += l;
  }
  return true;
}

size_t ckpt_tf_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp) {
  size_t l = seq_len(s, n, cp);
  if (l == 0) { /* callers validate first; stay safe anyway */
    *cp = s[0];
    return 1;
  }
  return l;
}

void ckpt_tf_buf_put_utf8(ckpt_tf_buf *b, uint32_t cp) {
  char out[4];
  size_t n;
  if (cp < 0x80) {
    out[0] = (char)cp;
    n = 1;
  } else if (cp < 0x800) {
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    n = 2;
  } else if (cp < 0x10000) {
    out[0] = (char)(0xE0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    n = 3;
  } else {
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    n = 4;
  }
  ckpt_tf_buf_append(b, out, n);
}
