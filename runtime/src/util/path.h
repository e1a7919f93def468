/* util/path.h — the one home of path strings in libckpt: joining, normalising, parents,
 * suffixes, and turning tree keys and parameter names into file names safely. Nothing else in
 * the runtime or the tool builds a path by hand.
 *
 * A parameter name (a leaf's keys joined by '.') becomes one directory name inside an item
 * directory, and parameter names read back from _METADATA are attacker-controlled. Everything
 * that becomes part of a path goes through ckpt_path_check_name first, so nothing is ever
 * written or read outside the checkpoint directory. Unsafe names are rejected (CKPT_EUNSAFE)
 * rather than escaped: Orbax and zarr-python must find the same directory under the same name,
 * and an escaping scheme they do not know would break that.
 *
 * What is unsafe is decided by what a name can do to a path, not by how it looks: '/', ".",
 * "..", a leading '.', over-long and reserved names are refused; every other byte (tabs,
 * newlines and other control characters, non-ASCII) is kept as is, exactly as TensorStore's
 * file driver (Orbax's storage) accepts it. Code that shows names to people escapes them for
 * display; the names themselves are never altered. */
#ifndef CKPT_UTIL_PATH_H
#define CKPT_UTIL_PATH_H

#include <stdbool.h>
#include <stddef.h>

#include "ckpt/error.h"

/* Longest name accepted for one directory entry (Linux allows 255; Orbax adds nothing, but
 * copies and tools add suffixes, so keep a margin). */
#define CKPT_PATH_NAME_MAX 200

/* Checks that name is safe as one directory entry inside a checkpoint: not empty, not "." or
 * "..", no '/', no leading '.', at most CKPT_PATH_NAME_MAX bytes, and not one of the names the
 * checkpoint layout itself uses (_METADATA, ...). Control characters are allowed (see above).
 * what names the thing in the message ("parameter name", "item name"). */
ckpt_status ckpt_path_check_name(const char *name, const char *what, ckpt_error *err);

/* True for the file names the layout reserves inside an item directory. */
bool ckpt_path_is_reserved(const char *name);

/* Every function below returns a new malloc'ed string the caller frees, or NULL when memory
 * runs out. */

/* "dir/name"; no separator is added when dir is empty or already ends with '/'. name may itself
 * hold several components ("a/b"). */
char *ckpt_path_join(const char *dir, const char *name);
/* ckpt_path_join into an arena (util/arena.h; freed with it, not by the caller): for the
 * per-leaf paths of a restore of thousands of arrays. */
struct ckpt_arena;
char *ckpt_path_join_arena(struct ckpt_arena *a, const char *dir, const char *name);
/* path + suffix, e.g. "<path>.orbax-checkpoint-tmp" (no separator). */
char *ckpt_path_with_suffix(const char *path, const char *suffix);
/* path without trailing slashes ("/" stays "/"). */
char *ckpt_path_normalize(const char *path);
/* The directory containing path: "." for a bare name, "/" for a top-level one. */
char *ckpt_path_parent(const char *path);
/* The last component of path (borrowed from path: no allocation). */
const char *ckpt_path_base(const char *path);

/* True when path's last component carries the tmp marker CKPT_TMP_SUFFIX anywhere: the one rule
 * for "this is not a checkpoint or item but a save in flight, interrupted, replaced or being
 * deleted" (<x>.orbax-checkpoint-tmp, ...-tmp-replaced, ...-tmp-deleting, a pending commit
 * marker). Savers refuse such names; readers never list them; cleanup removes them. */
bool ckpt_path_is_tmp(const char *path);

#endif
