/* util/buf.c — the growable output buffer the text-format writers append to.
 *
 * Appends never fail loudly: the first allocation failure sets a sticky flag and later appends
 * do nothing, so a printer can build its whole output and report CKPT_ENOMEM once. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/text.h"

static bool reserve(ckpt_tf_buf *b, size_t extra) {
  if (b->oom)
    return false;
  if (extra > SIZE_MAX - b->len - 1) {
    b->oom = true;
    return false;
  }
  size_t need = b->len + extra + 1; /* room for the NUL */
  if (need <= b->cap)
    return true;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < need)
    cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  char *p = realloc(b->data, cap);
  if (!p) {
    b->oom = true;
    return false;
  }
  b->data = p;
  b->cap = cap;
  return true;
}

void ckpt_tf_buf_append(ckpt_tf_buf *b, const void *data, size_t n) {
  if (!reserve(b, n))
    return;
  if (n)
    memcpy(b->data + b->len, data, n);
  b->len += n;
  b->data[b->len] = '\0';
}

void ckpt_tf_buf_puts(ckpt_tf_buf *b, const char *s) {
  ckpt_tf_buf_append(b, s, strlen(s));
}

void ckpt_tf_buf_putc(ckpt_tf_buf *b, char c) {
  ckpt_tf_buf_append(b, &c, 1);
}

void ckpt_tf_buf_spaces(ckpt_tf_buf *b, size_t n) {
  if (!reserve(b, n))
    return;
  memset(b->data + b->len, ' ', n);
  b->len += n;
  b->data[b->len] = '\0';
}

void ckpt_tf_buf_printf(ckpt_tf_buf *b, const char *fmt, ...) {
  char small[128];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) {
    b->oom = true; /* only an encoding error can get here; treat as failure, never drop text */
    return;
  }
  if ((size_t)n < sizeof small) {
    ckpt_tf_buf_append(b, small, (size_t)n);
    return;
  }
  if (!reserve(b, (size_t)n))
    return;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

ckpt_status ckpt_tf_buf_take(ckpt_tf_buf *b, const char *what, char **out, size_t *len,
                             ckpt_error *err) {
  if (b->oom) {
    ckpt_tf_buf_free(b);
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory while writing %s", what);
  }
  if (!b->data) { /* empty output still gets a real, NUL-terminated buffer */
    if (!reserve(b, 0)) {
      ckpt_tf_buf_free(b);
      return ckpt_error_set(err, CKPT_ENOMEM, "out of memory while writing %s", what);
    }
    b->data[0] = '\0';
  }
  *out = b->data;
  if (len)
    *len = b->len;
  b->data = NULL;
  b->len = b->cap = 0;
  return CKPT_OK;
}

void ckpt_tf_buf_free(ckpt_tf_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
  b->oom = false;
}
