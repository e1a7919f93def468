/* diag.c — printing diagnostics with the offending source line and a caret (see diag.h). */
#include "diag.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

void diag_init(diag *d, FILE *out, int max_errors) {
  d->out = out;
  d->errors = 0;
  d->max_errors = max_errors;
  d->stopped = false;
}

static void index_lines(src_file *f) {
  if (f->line_starts != NULL) return;
  size_t n = 1;
  for (const char *p = f->text, *end = f->text + f->len; (p = memchr(p, '\n', (size_t)(end - p))) != NULL; p++)
    n++;
  f->line_starts = xmalloc(n * sizeof *f->line_starts);
  f->n_lines = n;
  size_t i = 0;
  f->line_starts[i++] = 0;
  for (size_t k = 0; k < f->len; k++)
    if (f->text[k] == '\n') f->line_starts[i++] = k + 1;
}

void src_file_release(src_file *f) {
  free(f->line_starts);
  f->line_starts = NULL;
  f->n_lines = 0;
}

/* Lines longer than this are shown as a window around the column. */
#define SHOW_MAX 160

static void print_source(diag *d, src_file *f, src_loc loc) {
  if (f == NULL || loc.line <= 0) return;
  index_lines(f);
  if ((size_t)loc.line > f->n_lines) return;
  size_t start = f->line_starts[loc.line - 1];
  size_t end = start;
  while (end < f->len && f->text[end] != '\n') end++;
  if (end > start && f->text[end - 1] == '\r') end--;
  size_t col0 = loc.col > 0 ? (size_t)loc.col - 1 : 0;
  if (col0 > end - start) col0 = end - start;
  size_t from = start, to = end;
  bool cut_left = false, cut_right = false;
  if (end - start > SHOW_MAX) {
    from = start + col0 > start + SHOW_MAX / 2 ? start + col0 - SHOW_MAX / 2 : start;
    to = from + SHOW_MAX < end ? from + SHOW_MAX : end;
    cut_left = from > start;
    cut_right = to < end;
  }
  buf line, caret;
  buf_init(&line);
  buf_init(&caret);
  if (cut_left) {
    buf_puts(&line, "...");
    buf_puts(&caret, "   ");
  }
  size_t ulen = loc.len > 0 ? (size_t)loc.len : 1;
  for (size_t k = from; k < to; k++) {
    unsigned char c = (unsigned char)f->text[k];
    size_t rel = k - start;
    char cc = rel == col0 ? '^' : (rel > col0 && rel < col0 + ulen ? '~' : ' ');
    if (c == '\t') {
      buf_putc(&line, '\t');
      buf_putc(&caret, cc == ' ' ? '\t' : cc);
    } else if (c < 0x20 || c == 0x7f) {
      buf_putc(&line, '?'); /* control bytes (NUL, ESC, ...) would garble the terminal */
      buf_putc(&caret, cc);
    } else if (c >= 0x80 && c < 0xc0) {
      buf_putc(&line, (char)c); /* UTF-8 continuation: no column of its own */
    } else {
      buf_putc(&line, (char)c);
      buf_putc(&caret, cc);
    }
  }
  if (col0 >= to - start) buf_putc(&caret, '^'); /* at end of line */
  while (caret.len > 0 && (caret.data[caret.len - 1] == ' ' || caret.data[caret.len - 1] == '\t'))
    caret.data[--caret.len] = '\0';
  if (cut_right) buf_puts(&line, "...");
  fprintf(d->out, "%s\n%s\n", line.data ? line.data : "", caret.data ? caret.data : "^");
  buf_free(&line);
  buf_free(&caret);
}

static bool diag_count(diag *d) {
  if (d->stopped) return false;
  d->errors++;
  if (d->max_errors > 0 && d->errors > d->max_errors) {
    d->stopped = true;
    fprintf(d->out, "ckptgen: error: too many errors (%d); stopping\n", d->max_errors);
    return false;
  }
  return true;
}

void diag_verror(diag *d, src_file *f, src_loc loc, const char *fmt, va_list ap) {
  if (!diag_count(d)) return;
  if (f != NULL && loc.line > 0)
    fprintf(d->out, "%s:%d:%d: error: ", f->display, loc.line, loc.col);
  else if (f != NULL)
    fprintf(d->out, "%s: error: ", f->display);
  else
    fputs("ckptgen: error: ", d->out);
  vfprintf(d->out, fmt, ap);
  fputc('\n', d->out);
  print_source(d, f, loc);
}

void diag_error(diag *d, src_file *f, src_loc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  diag_verror(d, f, loc, fmt, ap);
  va_end(ap);
}

void diag_plain(diag *d, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  src_loc none = {0, 0, 0};
  diag_verror(d, NULL, none, fmt, ap);
  va_end(ap);
}

char *diag_quote(char *dst, size_t dst_size, const char *s, size_t n) {
  size_t o = 0;
  size_t i = 0;
  for (; i < n && o + 8 < dst_size; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      dst[o++] = (char)c;
    } else if (c == '\\') {
      dst[o++] = '\\';
      dst[o++] = '\\';
    } else {
      o += (size_t)snprintf(dst + o, dst_size - o, "\\x%02x", c);
    }
  }
  if (i < n && o + 4 <= dst_size) {
    memcpy(dst + o, "...", 3);
    o += 3;
  }
  dst[o < dst_size ? o : dst_size - 1] = '\0';
  return dst;
}
