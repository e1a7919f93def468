/* util/text.h — small helpers shared by the text formats libckpt writes and reads
 * (protobuf text format, JSON): a growable output buffer, Python-compatible number rendering,
 * locale-independent number parsing and UTF-8 checks.
 *
 * Private to libckpt (names start with ckpt_tf_). Why these exist: the files the JSON and proto
 * handlers write must be byte-compatible with what Python's json / text_format produce and read,
 * whatever LC_NUMERIC the host program set. */
#ifndef CKPT_TEXTFMT_H
#define CKPT_TEXTFMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ckpt/error.h"

/* ---- Growable byte buffer. Allocation failure is sticky (oom) so writers can append freely
 * and check once at the end. */
typedef struct ckpt_tf_buf {
  char *data; /* malloc'ed, NUL-terminated when not NULL */
  size_t len;
  size_t cap;
  bool oom;
} ckpt_tf_buf;

#define CKPT_TF_BUF_INIT \
  { NULL, 0, 0, false }

void ckpt_tf_buf_append(ckpt_tf_buf *b, const void *data, size_t n);
void ckpt_tf_buf_puts(ckpt_tf_buf *b, const char *s);
void ckpt_tf_buf_putc(ckpt_tf_buf *b, char c);
void ckpt_tf_buf_spaces(ckpt_tf_buf *b, size_t n);
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void ckpt_tf_buf_printf(ckpt_tf_buf *b, const char *fmt, ...);
/* Hands the NUL-terminated contents to the caller (who frees them with free()) and resets b.
 * Returns CKPT_ENOMEM (recorded in err, naming what) if any append failed; then b is freed. */
ckpt_status ckpt_tf_buf_take(ckpt_tf_buf *b, const char *what, char **out, size_t *len,
                             ckpt_error *err);
void ckpt_tf_buf_free(ckpt_tf_buf *b);

/* ---- Numbers, as Python renders them. out must hold CKPT_TF_NUM_MAX bytes; returns length. */
#define CKPT_TF_NUM_MAX 40
/* repr(float(v)): shortest digits that round-trip, "1e+16", "0.0001", "1.0", "inf", "nan". */
size_t ckpt_tf_double_repr(double v, char *out);
/* protobuf text_format's rendering of a 32-bit float field:
 * str(ToShortestFloat(v)), i.e. the shortest "%.{p}g" (p >= 6) that maps back to v, as a
 * Python float repr ("0.1", "3.4028235e+38", "inf"). */
size_t ckpt_tf_float_repr(float v, char *out);
/* strtod in the "C" locale. */
double ckpt_tf_strtod(const char *s, char **end);

/* ---- UTF-8 */
/* True when s[0..n) is valid UTF-8 as Python decodes it (no overlongs, surrogates or code
 * points above U+10FFFF). On false, *bad_offset is the offset of the first bad byte. */
bool ckpt_tf_utf8_valid(const uint8_t *s, size_t n, size_t *bad_offset);
/* Decodes one code point of valid UTF-8 at s (n bytes available); returns its length. */
size_t ckpt_tf_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp);
/* Appends cp (<= 0x10FFFF, not a surrogate) as UTF-8. */
void ckpt_tf_buf_put_utf8(ckpt_tf_buf *b, uint32_t cp);

#endif
