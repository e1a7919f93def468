/* packed_by_hand.h — builds items in ckpt's retired packed layout (storage/packed.h,
 * docs/format.md "Packed arrays") for the packed READER's tests, since ckpt no longer writes it:
 * an item saved as zarr v2 directories has some of its arrays moved, by this code alone, into
 * _PACKED.0 (each chunk file's bytes at a 64-byte aligned offset, in the order given) and the
 * _PACKED index (the .zarray text and [file, offset, bytes, crc32c] per chunk), their
 * directories removed and _CHECKSUMS updated as the packed writer left it (no entry for packed
 * arrays; _PACKED listed under "files").
 *
 * Header-only; used by tests/runtime/test_packed.c and tests/cli/test_cli_packed.c. */
#ifndef CKPT_TESTS_PACKED_BY_HAND_H
#define CKPT_TESTS_PACKED_BY_HAND_H

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/crc32c.h"

static inline char *pbh_read(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  cr_assert_not_null(f, "open %s: %s", path, strerror(errno));
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *b = malloc((size_t)len + 1);
  cr_assert_eq(fread(b, 1, (size_t)len, f), (size_t)len);
  b[len] = '\0';
  fclose(f);
  *n = (size_t)len;
  return b;
}

static inline void pbh_write(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f, "create %s: %s", path, strerror(errno));
  cr_assert_eq(fwrite(data, 1, n, f), n);
  cr_assert_eq(fclose(f), 0);
}

static inline char *pbh_join(const char *a, const char *b) {
  size_t n = strlen(a) + strlen(b) + 2;
  char *p = malloc(n);
  snprintf(p, n, "%s/%s", a, b);
  return p;
}

/* Moves the arrays params[0 .. n) of item (zarr v2 directories) into the packed layout. */
static inline void pack_by_hand(const char *item, const char *const *params, size_t n) {
  cJSON *index = cJSON_CreateObject();
  cJSON *arrays = cJSON_AddObjectToObject(index, "arrays");
  char *sums_path = pbh_join(item, "_CHECKSUMS");
  size_t sl = 0;
  char *sums_text = pbh_read(sums_path, &sl);
  cJSON *sums = cJSON_Parse(sums_text);
  cr_assert_not_null(sums);
  free(sums_text);
  char *data = NULL;
  size_t used = 0;
  for (size_t i = 0; i < n; i++) {
    char *dir = pbh_join(item, params[i]);
    char *zpath = pbh_join(dir, ".zarray");
    size_t zl = 0;
    char *ztext = pbh_read(zpath, &zl);
    cJSON *entry = cJSON_AddObjectToObject(arrays, params[i]);
    cJSON *chunks = cJSON_AddObjectToObject(entry, "chunks");
    cJSON_AddItemToObject(entry, "zarray", cJSON_Parse(ztext));
    free(ztext);
    unlink(zpath);
    free(zpath);
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "%s", dir);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      if (e->d_name[0] == '.')
        continue; /* ".", ".." (.zarray is gone) */
      char *cpath = pbh_join(dir, e->d_name);
      size_t cl = 0;
      char *bytes = pbh_read(cpath, &cl);
      used = (used + 63) / 64 * 64;
      data = realloc(data, used + cl + 1);
      memcpy(data + used, bytes, cl);
      cJSON *row = cJSON_CreateArray();
      cJSON_AddItemToArray(row, cJSON_CreateNumber(0));
      cJSON_AddItemToArray(row, cJSON_CreateNumber((double)used));
      cJSON_AddItemToArray(row, cJSON_CreateNumber((double)cl));
      cJSON_AddItemToArray(row, cJSON_CreateNumber((double)ckpt_crc32c(0, bytes, cl)));
      cJSON_AddItemToObject(chunks, e->d_name, row);
      used += cl;
      free(bytes);
      cr_assert_eq(unlink(cpath), 0);
      free(cpath);
    }
    closedir(d);
    cr_assert_eq(rmdir(dir), 0, "rmdir %s: %s", dir, strerror(errno));
    free(dir);
    cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItem(sums, "arrays"), params[i]);
    char *zrel = pbh_join(params[i], ".zarray");
    cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItem(sums, "files"), zrel);
    free(zrel);
  }
  cJSON *files = cJSON_AddArrayToObject(index, "files");
  cJSON_AddItemToArray(files, cJSON_CreateString("_PACKED.0"));
  cJSON_AddStringToObject(index, "format", "ckpt-packed");
  cJSON_AddNumberToObject(index, "version", 1);
  char *p = pbh_join(item, "_PACKED.0");
  pbh_write(p, data ? data : "", used);
  free(p);
  free(data);
  char *text = cJSON_PrintUnformatted(index);
  p = pbh_join(item, "_PACKED");
  pbh_write(p, text, strlen(text));
  free(p);
  cJSON *row = cJSON_CreateArray();
  cJSON_AddItemToArray(row, cJSON_CreateNumber((double)ckpt_crc32c(0, text, strlen(text))));
  cJSON_AddItemToArray(row, cJSON_CreateNumber((double)strlen(text)));
  cJSON_AddItemToObject(cJSON_GetObjectItem(sums, "files"), "_PACKED", row);
  free(text);
  cJSON_Delete(index);
  text = cJSON_PrintUnformatted(sums);
  pbh_write(sums_path, text, strlen(text));
  /* A checkpoint's manifest lists the item's _CHECKSUMS: its new CRC and size. */
  const char *slash = strrchr(item, '/');
  cr_assert_not_null(slash);
  char *parent = strndup(item, (size_t)(slash - item));
  char *mpath = pbh_join(parent, "_CHECKPOINT_CHECKSUMS");
  if (access(mpath, F_OK) == 0) {
    size_t ml = 0;
    char *mtext = pbh_read(mpath, &ml);
    cJSON *m = cJSON_Parse(mtext);
    cr_assert_not_null(m);
    char *rel = pbh_join(slash + 1, "_CHECKSUMS");
    cJSON *row = cJSON_CreateArray();
    cJSON_AddItemToArray(row, cJSON_CreateNumber((double)ckpt_crc32c(0, text, strlen(text))));
    cJSON_AddItemToArray(row, cJSON_CreateNumber((double)strlen(text)));
    cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetObjectItem(m, "files"), rel, row);
    free(rel);
    free(mtext);
    mtext = cJSON_PrintUnformatted(m);
    pbh_write(mpath, mtext, strlen(mtext));
    free(mtext);
    cJSON_Delete(m);
  }
  free(mpath);
  free(parent);
  free(text);
  free(sums_path);
  cJSON_Delete(sums);
}

#endif
