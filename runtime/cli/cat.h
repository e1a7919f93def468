/* cli/cat.h — the parts of `ckpt cat` (private to runtime/cli):
 *   cat_array.c  one array leaf: numpy-style values, statistics, JSON values
 *   cmd_cat.c    the command: resolving KEY to an item and a leaf, scalars, strings, JSON and
 *                proto items */
#ifndef CKPT_CLI_CAT_H
#define CKPT_CLI_CAT_H

#include "cli.h"

typedef struct cat_opts {
  bool json, stats, values;
  const char *item;
} cat_opts;

/* Prints array leaf l of p (values for at most CLI_NP_THRESHOLD elements or with --values,
 * statistics otherwise or with --stats); with doc (JSON output) adds dtype, shape and values or
 * stats to it instead. Returns the exit status (errors already reported on stderr). */
int cat_array(const cat_opts *o, ckpt_io *io, const cli_pytree *p, const cli_leaf *l, cJSON *doc,
              bool *oom);

/* The value of a leaf kept in the legacy aggregate file (cli_leaf.aggregated) as JSON: arrays as
 * nested lists (complex numbers as [re, im]), numbers, strings, bytes as a list of byte values,
 * None and empty containers as null, {} and []; NULL when memory runs out. */
cJSON *cli_tree_value_json(const ckpt_tree *t);

#endif
