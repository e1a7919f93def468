/* diag.h — diagnostics: `file:line:col: error: message`, the source line and a caret line.
 *
 * The sink is a value the driver owns (no globals); it counts errors and, past a limit, stops
 * reporting so that a binary file fed to ckptgen yields a short report instead of millions of
 * lines. Columns are 1-based byte offsets. */
#ifndef CKPTGEN_DIAG_H
#define CKPTGEN_DIAG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* A schema or proto file held in memory for the whole run (text owned by the driver). */
typedef struct src_file {
  const char *display; /* name used in diagnostics: the path as given or as found */
  const char *text;    /* contents; may contain NUL bytes; text[len] == '\0' */
  size_t len;
  size_t *line_starts; /* computed on first diagnostic; heap, freed by src_file_release */
  size_t n_lines;
} src_file;

typedef struct src_loc {
  int line; /* 1-based; 0 = no position */
  int col;  /* 1-based byte column */
  int len;  /* bytes to underline (>= 1), on this line */
} src_loc;

typedef struct diag {
  FILE *out;
  int errors;
  int max_errors; /* stop reporting after this many (0 = no limit) */
  bool stopped;   /* the limit was reached: callers should wind down */
} diag;

void diag_init(diag *d, FILE *out, int max_errors);
#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
void diag_error(diag *d, src_file *f, src_loc loc, const char *fmt, ...);
void diag_verror(diag *d, src_file *f, src_loc loc, const char *fmt, va_list ap);
/* An error with no source position: "ckptgen: error: message". */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void diag_plain(diag *d, const char *fmt, ...);

void src_file_release(src_file *f);

/* Writes at most max bytes of s[0..n) as printable text ('\x00' style escapes for the rest),
 * for quoting user input inside a message; appends "..." when cut. Returns dst. */
char *diag_quote(char *dst, size_t dst_size, const char *s, size_t n);

#endif
