/* storage/subdirs.h — listing the real subdirectories of a checkpoint directory (private).
 *
 * Both a composite checkpoint (its items) and a manager step (the same items, seen from the
 * manager) are found by listing a directory and keeping the entries that are real directories
 * with acceptable names; one function does it so both see exactly the same set. */
#ifndef CKPT_STORAGE_SUBDIRS_H
#define CKPT_STORAGE_SUBDIRS_H

#include <stddef.h>

#include "ckpt/error.h"
#include "ckpt/io.h"

/* Decides whether a name is acceptable; called with err NULL, only the status matters
 * (ckpt_composite_check_item_name fits). */
typedef ckpt_status (*ckpt_subdir_name_check)(const char *name, ckpt_error *err);

/* Lists dir and keeps the entries whose name passes check and that are real directories
 * (lstat-like: a symlink planted in a checkpoint is never followed). On success *names (sorted
 * as ckpt_io_list_dir returns them) and *count are owned by the caller: release with
 * ckpt_io_free_names. On error *names is NULL, *count 0 and nothing is left allocated. */
ckpt_status ckpt_list_subdirs(ckpt_io *io, const char *dir, ckpt_subdir_name_check check,
                              char ***names, size_t *count, ckpt_error *err);

#endif
