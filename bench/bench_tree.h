/* bench/bench_tree.h — building ckpt trees from the benchmark states' dotted array names, for
 * the C programs of `make bench` that link libckpt (bench_ckpt, bench_mpi_ckpt). Header-only
 * and apart from bench_common.h, which the HDF5 and limit programs use without libckpt. */
#ifndef BENCH_TREE_H
#define BENCH_TREE_H

#include <stdlib.h>
#include <string.h>

#include "ckpt/ckpt.h"

/* Puts leaf at the dotted path name below root, creating the dicts on the way. leaf is owned
 * by the tree on success and freed on failure. */
static inline ckpt_status bench_tree_put(ckpt_tree *root, const char *name, ckpt_tree *leaf,
                                         ckpt_error *err) {
  char *copy = strdup(name);
  if (copy == NULL) {
    ckpt_tree_free(leaf);
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  }
  ckpt_tree *node = root;
  char *part = copy;
  for (char *dot; (dot = strchr(part, '.')) != NULL; part = dot + 1) {
    *dot = '\0';
    ckpt_tree *child = ckpt_tree_dict_get(node, part);
    if (child == NULL) {
      child = ckpt_tree_new_dict();
      if (child == NULL || ckpt_tree_dict_set(node, part, child, err) != CKPT_OK) {
        free(copy);
        ckpt_tree_free(leaf);
        return child == NULL ? ckpt_error_set(err, CKPT_ENOMEM, "out of memory") : err->code;
      }
    }
    node = child;
  }
  ckpt_status s = ckpt_tree_dict_set(node, part, leaf, err);
  free(copy);
  return s;
}

#endif
