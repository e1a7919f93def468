/* cli/diff.h — the parts of `ckpt diff` (private to runtime/cli):
 *   diff_values.c  comparing the values of two arrays, slab by slab, within a tolerance
 *   cmd_diff.c     the command: pairing items, comparing structure, JSON and proto items */
#ifndef CKPT_CLI_DIFF_H
#define CKPT_CLI_DIFF_H

#include "cli.h"

typedef struct diff_ctx {
  ckpt_io *io;
  bool json;
  double rtol, atol;
  size_t n_diffs;
  cJSON *diffs; /* JSON output */
  bool oom;
  int error; /* exit status of a failure that stopped a comparison (2), or 0 */
} diff_ctx;

/* Records one difference: the text line "<kind>: <item>/<key>: <detail>", or with JSON output
 * an object with kind, item, key, detail and the fields of extra (taken over; may be NULL). */
void diff_record(diff_ctx *c, const char *kind, const char *item, const char *key,
                 const char *detail, cJSON *extra);
/* A comparison that could not run (damaged or unreadable data): reported on stderr, and the
 * command exits 2. */
void diff_fail(diff_ctx *c, const ckpt_error *err);
/* Compares the values of two array leaves of the same shape; records a "values" difference
 * with the count, the first differing element and the largest difference. */
void diff_values(diff_ctx *c, const char *item, const cli_pytree *pa, const cli_leaf *la,
                 const cli_pytree *pb, const cli_leaf *lb);

#endif
