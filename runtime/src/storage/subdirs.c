/* storage/subdirs.c — listing the real subdirectories of a checkpoint directory whose names
 * pass a check (see subdirs.h). */
#include "storage/subdirs.h"

#include <stdbool.h>
#include <stdlib.h>

#include "storage/commit.h"
#include "util/path.h"

ckpt_status ckpt_list_subdirs(ckpt_io *io, const char *dir, ckpt_subdir_name_check check,
                              char ***names, size_t *count, ckpt_error *err) {
  char **all;
  size_t n;
  *names = NULL;
  *count = 0;
  ckpt_status st = ckpt_io_list_dir(io, dir, &all, &n, err);
  if (st != CKPT_OK)
    return st;
  size_t kept = 0;
  /* Keeps walking after an error so that every name not kept is freed. */
  for (size_t i = 0; i < n; i++) {
    bool keep = st == CKPT_OK && check(all[i], NULL) == CKPT_OK;
    if (keep) {
      char *p = ckpt_path_join(dir, all[i]);
      ckpt_io_kind kind = CKPT_IO_KIND_MISSING;
      if (p == NULL)
        st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory listing '%s'", dir);
      else
        st = ckpt_io_stat(io, p, &kind, NULL, err);
      free(p);
      /* Only real directories: a symlink planted in a checkpoint is never followed. */
      keep = st == CKPT_OK && kind == CKPT_IO_KIND_DIR;
    }
    if (keep)
      all[kept++] = all[i];
    else
      free(all[i]);
  }
  if (st != CKPT_OK) {
    ckpt_io_free_names(all, kept);
    return st;
  }
  *names = all;
  *count = kept;
  return CKPT_OK;
}
