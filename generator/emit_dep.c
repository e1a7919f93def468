/* emit_dep.c — the --depfile output: a make rule like gcc -MD -MP writes, so a build reruns
 * ckptgen when the schema or anything it imports (.ckpt or .proto) changes. */
#include <string.h>

#include "emit.h"

/* make needs spaces, '#' and '$' escaped in file names. */
static void put_make_path(buf *out, const char *p) {
  for (; *p; p++) {
    if (*p == ' ' || *p == '#') buf_putc(out, '\\');
    if (*p == '$') buf_putc(out, '$');
    buf_putc(out, *p);
  }
}

void emit_depfile(buf *out, const char *const *targets, size_t n_targets,
                  const char *const *prereqs, size_t n_prereqs) {
  for (size_t i = 0; i < n_targets; i++) {
    if (i > 0) buf_putc(out, ' ');
    put_make_path(out, targets[i]);
  }
  buf_putc(out, ':');
  for (size_t i = 0; i < n_prereqs; i++) {
    buf_puts(out, " \\\n  ");
    put_make_path(out, prereqs[i]);
  }
  buf_putc(out, '\n');
  /* the first prerequisite is the schema itself; the rest get empty rules */
  for (size_t i = 1; i < n_prereqs; i++) {
    buf_putc(out, '\n');
    put_make_path(out, prereqs[i]);
    buf_puts(out, ":\n");
  }
}
