/* cli/table.c — aligned text tables for `ckpt ls` and friends: columns padded to their widest
 * cell, two spaces apart, the last column left unpadded so lines carry no trailing blanks. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

void cli_table_init(cli_table *t, size_t ncols) {
  memset(t, 0, sizeof *t);
  t->ncols = ncols;
}

void cli_table_row(cli_table *t, const char *const *cells) {
  if (t->oom)
    return;
  if (t->nrows == t->cap) {
    size_t nc = t->cap ? t->cap * 2 : 8;
    char **g = realloc(t->cells, nc * t->ncols * sizeof *g);
    if (g == NULL) {
      t->oom = true;
      return;
    }
    t->cells = g;
    t->cap = nc;
  }
  char **row = t->cells + t->nrows * t->ncols;
  for (size_t c = 0; c < t->ncols; c++) {
    row[c] = cli_strdup(cells[c] ? cells[c] : "-");
    if (row[c] == NULL)
      t->oom = true;
  }
  t->nrows++;
}

bool cli_table_print(const cli_table *t, FILE *out, int indent) {
  if (t->oom)
    return false;
  size_t *w = calloc(t->ncols ? t->ncols : 1, sizeof *w);
  if (w == NULL)
    return false;
  for (size_t r = 0; r < t->nrows; r++)
    for (size_t c = 0; c < t->ncols; c++) {
      size_t n = strlen(t->cells[r * t->ncols + c]);
      if (n > w[c])
        w[c] = n;
    }
  for (size_t r = 0; r < t->nrows; r++) {
    fprintf(out, "%*s", indent, "");
    for (size_t c = 0; c < t->ncols; c++) {
      const char *cell = t->cells[r * t->ncols + c];
      if (c + 1 == t->ncols)
        fprintf(out, "%s\n", cell);
      else
        fprintf(out, "%-*s  ", (int)w[c], cell);
    }
  }
  free(w);
  return true;
}

void cli_table_free(cli_table *t) {
  for (size_t i = 0; i < t->nrows * t->ncols; i++)
    free(t->cells[i]);
  free(t->cells);
  memset(t, 0, sizeof *t);
}
