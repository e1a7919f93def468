/* util/path.c — validation of names that become directory entries of a checkpoint.
 * Why reject instead of escape, and why control characters are accepted: see path.h. */
#include "util/path.h"

#include "ckpt/layout.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/arena.h"

static const char *const k_reserved[] = {
    "_METADATA",      "_CHECKSUMS",           "_strings.json",
    "_sharding",      "array_metadatas",      "commit_success.txt",
    "manifest.ocdbt", "_CHECKPOINT_METADATA", "_CHECKPOINT_CHECKSUMS",
    "_PACKED", /* ckpt's packed layout (storage/packed.h); its data files are _PACKED.<n> */
};

bool ckpt_path_is_reserved(const char *name) {
  for (size_t i = 0; i < sizeof k_reserved / sizeof k_reserved[0]; i++)
    if (strcmp(name, k_reserved[i]) == 0)
      return true;
  if (strncmp(name, "_PACKED.", 8) == 0)
    return true;
  /* A name ending like a checkpointer's temporary directory would be cleaned up as one. */
  static const char tmp[] = ".orbax-checkpoint-tmp";
  size_t n = strlen(name), t = sizeof tmp - 1;
  return n >= t && strcmp(name + n - t, tmp) == 0;
}

ckpt_status ckpt_path_check_name(const char *name, const char *what, ckpt_error *err) {
  if (what == NULL)
    what = "name";
  if (name == NULL)
    return ckpt_error_set(err, CKPT_EUNSAFE, "%s is NULL", what);
  size_t n = strlen(name);
  if (n == 0)
    return ckpt_error_set(err, CKPT_EUNSAFE, "%s is empty", what);
  if (n > CKPT_PATH_NAME_MAX)
    return ckpt_error_set(err, CKPT_EUNSAFE, "%s '%.40s...' is %zu bytes long (at most %d)", what,
                          name, n, CKPT_PATH_NAME_MAX);
  if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
    return ckpt_error_set(err, CKPT_EUNSAFE, "%s '%s' would name a directory itself", what, name);
  if (name[0] == '.')
    return ckpt_error_set(err, CKPT_EUNSAFE,
                          "%s '%s' starts with '.' (hidden files such as .zarray are reserved; "
                          "is a key empty?)",
                          what, name);
  /* '/' is the only byte besides NUL (which a C string cannot hold) that the kernel treats
   * specially in one directory entry. Control characters are ordinary bytes there: TensorStore
   * (so Orbax) writes them as they are, and refusing them would make such trees unsavable
   * and such checkpoints unreadable here. */
  const char *slash = strchr(name, '/');
  if (slash != NULL)
    return ckpt_error_set(err, CKPT_EUNSAFE, "%s '%s' contains '/' at byte %zu", what, name,
                          (size_t)(slash - name));
  if (ckpt_path_is_reserved(name))
    return ckpt_error_set(err, CKPT_EUNSAFE, "%s '%s' is reserved by the checkpoint layout", what,
                          name);
  return CKPT_OK;
}

static char *concat3(const char *a, const char *sep, const char *b) {
  size_t x = strlen(a), y = strlen(sep), z = strlen(b);
  char *p = malloc(x + y + z + 1);
  if (p == NULL)
    return NULL;
  memcpy(p, a, x);
  memcpy(p + x, sep, y);
  memcpy(p + x + y, b, z + 1);
  return p;
}

char *ckpt_path_join(const char *dir, const char *name) {
  size_t n = strlen(dir);
  return concat3(dir, n == 0 || dir[n - 1] == '/' ? "" : "/", name);
}

char *ckpt_path_join_arena(ckpt_arena *a, const char *dir, const char *name) {
  size_t x = strlen(dir), z = strlen(name);
  size_t y = x == 0 || dir[x - 1] == '/' ? 0 : 1;
  if (z > SIZE_MAX - x - y - 1)
    return NULL;
  char *p = ckpt_arena_alloc(a, x + y + z + 1);
  if (p == NULL)
    return NULL;
  memcpy(p, dir, x);
  if (y)
    p[x] = '/';
  memcpy(p + x + y, name, z + 1);
  return p;
}

char *ckpt_path_with_suffix(const char *path, const char *suffix) {
  return concat3(path, "", suffix);
}

char *ckpt_path_normalize(const char *path) {
  size_t n = strlen(path);
  while (n > 1 && path[n - 1] == '/')
    n--;
  char *p = malloc(n + 1);
  if (p != NULL) {
    memcpy(p, path, n);
    p[n] = '\0';
  }
  return p;
}

char *ckpt_path_parent(const char *path) {
  const char *slash = strrchr(path, '/');
  if (slash == NULL)
    return strdup(".");
  size_t n = slash == path ? 1 : (size_t)(slash - path);
  char *p = malloc(n + 1);
  if (p != NULL) {
    memcpy(p, path, n);
    p[n] = '\0';
  }
  return p;
}

const char *ckpt_path_base(const char *path) {
  const char *slash = strrchr(path, '/');
  return slash != NULL ? slash + 1 : path;
}

bool ckpt_path_is_tmp(const char *path) {
  return strstr(ckpt_path_base(path), CKPT_TMP_SUFFIX) != NULL;
}
