/* cli/pytree_view.c — a PyTree item as `ckpt ls`, `cat` and `diff` see it: the leaves of
 * _METADATA with, for array leaves, the .zarray metadata (dtype, shape, chunks, compressor)
 * and optionally the bytes actually stored in chunk files. A leaf whose .zarray cannot be read
 * keeps its error, so listing a damaged checkpoint still shows everything else. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "inspect/inspect.h"

void cli_pytree_free(cli_pytree *p) {
  free(p->leaves);
  cJSON_Delete(p->strings);
  ckpt_tree_free(p->aggregate);
  ckpt_checksums_free(p->checksums);
  ckpt_packed_free(p->packed);
  free(p->packed);
  ckpt_ocdbt_close(p->ocdbt);
  ckpt_pytree_meta_free(&p->meta);
  free(p->dir);
  memset(p, 0, sizeof *p);
}

/* Beyond this many chunks in a grid, stored sizes come from listing the array directory: a
 * damaged .zarray can describe astronomically many chunks, and listing must stay quick. */
#define STAT_EACH_MAX ((uint64_t)1 << 20)

/* Counts adir/name in l when it is a regular file (anything else, or a stat that fails,
 * counts as absent, not as an error); fails only when memory runs out. */
static ckpt_status count_chunk_file(ckpt_io *io, const char *adir, const char *name, cli_leaf *l,
                                    ckpt_error *err) {
  char *p = ckpt_path_join(adir, name);
  if (p == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  ckpt_io_kind kind = CKPT_IO_KIND_MISSING;
  uint64_t size = 0;
  if (ckpt_io_stat(io, p, &kind, &size, NULL) == CKPT_OK && kind == CKPT_IO_KIND_FILE) {
    l->chunks_present++;
    l->stored_bytes += size;
  }
  free(p);
  return CKPT_OK;
}

/* Sizes of the files in the array directory (nested chunk directories are not descended). */
static ckpt_status list_chunks(ckpt_io *io, const char *adir, cli_leaf *l, ckpt_error *err) {
  char **names = NULL;
  size_t n = 0;
  if (ckpt_io_list_dir(io, adir, &names, &n, NULL) != CKPT_OK)
    return CKPT_OK;
  ckpt_status st = CKPT_OK;
  for (size_t i = 0; i < n && st == CKPT_OK; i++) {
    if (strcmp(names[i], CKPT_ZARR_METADATA_FILE) == 0 ||
        strcmp(names[i], CKPT_ZARR3_METADATA_FILE) == 0)
      continue;
    st = count_chunk_file(io, adir, names[i], l, err);
  }
  ckpt_io_free_names(names, n);
  return st;
}

/* Sizes of the chunk files of one array (missing ones count as absent, not as errors). */
static ckpt_status stat_chunks(ckpt_io *io, const char *adir, cli_leaf *l, ckpt_error *err) {
  if (l->n_chunks > STAT_EACH_MAX)
    return list_chunks(io, adir, l, err);
  int64_t grid[CKPT_MAX_RANK], index[CKPT_MAX_RANK];
  char key[CKPT_ZARR_KEY_MAX];
  ckpt_zarr_grid(&l->zarr, grid);
  for (uint64_t k = 0; k < l->n_chunks; k++) {
    ckpt_zarr_chunk_index(&l->zarr, grid, k, index);
    ckpt_zarr_chunk_key(&l->zarr, index, key);
    ckpt_status st = count_chunk_file(io, adir, key, l, err);
    if (st != CKPT_OK)
      return st;
  }
  return CKPT_OK;
}

/* The stored chunks of an OCDBT array: the sum of the value lengths (inline or in a data file)
 * of its chunk keys "<param>/<chunk key>" — zarr v3 keys ("c/0/1") included, the metadata key
 * (.zarray or zarr.json) not. Each key of the grid is looked up in the database's key table
 * (no file is touched); a grid too large for that (a damaged .zarray) takes every key under
 * the prefix but the metadata instead. */
static void stat_ocdbt_chunks(ckpt_ocdbt *db, cli_leaf *l) {
  size_t pl = strlen(l->param);
  char *k = malloc(pl + 2 + CKPT_ZARR_KEY_MAX);
  if (k == NULL)
    return;
  memcpy(k, l->param, pl);
  memcpy(k + pl, "/", 2);
  if (l->n_chunks <= STAT_EACH_MAX) {
    int64_t grid[CKPT_MAX_RANK], index[CKPT_MAX_RANK];
    ckpt_zarr_grid(&l->zarr, grid);
    for (uint64_t c = 0; c < l->n_chunks; c++) {
      size_t i;
      ckpt_zarr_chunk_index(&l->zarr, grid, c, index);
      ckpt_zarr_chunk_key(&l->zarr, index, k + pl + 1);
      if (ckpt_ocdbt_find(db, k, &i)) {
        l->chunks_present++;
        l->stored_bytes += ckpt_ocdbt_value_at(db, i)->length;
      }
    }
  } else {
    size_t b, e;
    ckpt_ocdbt_prefix_range(db, k, &b, &e);
    for (size_t i = b; i < e; i++) {
      const char *key = ckpt_ocdbt_key(db, i, NULL) + pl + 1;
      if (strcmp(key, ckpt_zarr_meta_file(&l->zarr)) == 0)
        continue;
      l->chunks_present++;
      l->stored_bytes += ckpt_ocdbt_value_at(db, i)->length;
    }
  }
  free(k);
}

ckpt_status cli_pytree_open(ckpt_io *io, const char *dir, bool stat, cli_pytree *p,
                            ckpt_error *err) {
  memset(p, 0, sizeof *p);
  p->dir = cli_strdup(dir);
  if (p->dir == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  ckpt_status st = ckpt_pytree_meta_read_any(io, dir, &p->meta, &p->aggregate, &p->source, err);
  if (st != CKPT_OK)
    return st;
  bool any_string = false;
  for (size_t i = 0; i < p->meta.n; i++)
    any_string |= strcmp(p->meta.entries[i].value_type, CKPT_VT_STRING) == 0;
  ckpt_file_sum strings = {false, 0, 0};
  if (any_string)
    st = ckpt_pytree_strings_read(io, dir, &p->strings, &strings, err);
  if (st == CKPT_OK)
    st = ckpt_checksums_read(io, dir, &p->checksums, err);
  if (st == CKPT_OK && (p->packed = calloc(1, sizeof *p->packed)) == NULL)
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  if (st == CKPT_OK)
    st = ckpt_packed_read(io, dir, p->packed, err);
  if (st == CKPT_OK)
    st = ckpt_packed_check_meta(p->packed, &p->meta, dir, err);
  if (st != CKPT_OK)
    return st;
  /* What the restore refuses before reading any array (storage's checks, not the tool's):
   * recorded, not fatal, so that listings still show a damaged item. */
  p->check_ok = ckpt_checksums_check_item(p->checksums, dir, &p->meta, p->packed,
                                          any_string ? &strings : NULL, &p->check_err) == CKPT_OK;
  /* An OCDBT database that does not read (a data file missing, damage) is recorded the same
   * way: the listing still shows the item, every array says why it cannot be read. */
  p->readable_ok = true;
  if (p->meta.use_ocdbt)
    p->readable_ok = ckpt_ocdbt_open(io, dir, &p->ocdbt, &p->readable_err) == CKPT_OK;
  p->leaves = calloc(p->meta.n ? p->meta.n : 1, sizeof *p->leaves);
  if (p->leaves == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  for (size_t i = 0; st == CKPT_OK && i < p->meta.n; i++) {
    const ckpt_meta_entry *e = &p->meta.entries[i];
    cli_leaf *l = &p->leaves[p->n++];
    l->entry = e;
    l->param = e->param;
    l->value_type = e->value_type;
    l->is_empty = ckpt_meta_is_empty_type(e->value_type);
    l->is_string = strcmp(e->value_type, CKPT_VT_STRING) == 0;
    l->is_array = ckpt_meta_is_array_type(e->value_type);
    /* A value kept in the legacy aggregate file (the restore reads it from there). */
    l->aggregated = p->aggregate != NULL && !l->is_empty
                        ? ckpt_meta_entry_aggregate(p->aggregate, e)
                        : NULL;
    if (l->aggregated != NULL) {
      l->is_array = false;
      l->is_string = false;
      continue;
    }
    if (l->is_string) {
      const cJSON *v = cJSON_GetObjectItemCaseSensitive(p->strings, e->param);
      l->string_value = cJSON_IsString(v) ? v->valuestring : NULL;
    }
    if (!l->is_array)
      continue;
    if (ckpt_path_check_name(e->param, "parameter name", &l->zarr_err) != CKPT_OK)
      continue;
    if (p->meta.use_ocdbt) {
      if (p->ocdbt == NULL) {
        ckpt_error_set(&l->zarr_err, p->readable_err.code, "array '%s': %s", e->param,
                       p->readable_err.message);
        continue;
      }
      l->ocdbt = p->ocdbt;
      l->zarr_ok =
          ckpt_zarr_read_meta_ocdbt(p->ocdbt, e->param, p->checksums, &l->zarr, &l->zarr_err) ==
              CKPT_OK &&
          ckpt_zarr_check_format(&l->zarr, p->meta.use_zarr3, e->param, &l->zarr_err) == CKPT_OK;
      if (l->zarr_ok) {
        int64_t grid[CKPT_MAX_RANK];
        l->n_chunks = ckpt_zarr_grid(&l->zarr, grid);
        if (stat)
          stat_ocdbt_chunks(p->ocdbt, l);
      }
      continue;
    }
    l->packed = ckpt_packed_find(p->packed, e->param);
    if (l->packed != NULL) {
      l->zarr_ok = true;
      l->zarr = l->packed->meta;
      int64_t grid[CKPT_MAX_RANK];
      l->n_chunks = ckpt_zarr_grid(&l->zarr, grid);
      if (stat) {
        l->chunks_present = l->packed->n_chunks;
        l->stored_bytes = ckpt_packed_stored_bytes(l->packed);
      }
      continue;
    }
    char *adir = ckpt_path_join(dir, e->param);
    if (adir == NULL)
      return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
    l->zarr_ok =
        ckpt_zarr_read_meta(io, adir, e->param, p->checksums, &l->zarr, &l->zarr_err) == CKPT_OK &&
        ckpt_zarr_check_format(&l->zarr, p->meta.use_zarr3, e->param, &l->zarr_err) == CKPT_OK;
    if (l->zarr_ok) {
      int64_t grid[CKPT_MAX_RANK];
      l->n_chunks = ckpt_zarr_grid(&l->zarr, grid);
      if (stat)
        st = stat_chunks(io, adir, l, err);
    }
    free(adir);
  }
  return st;
}

const char *cli_meta_source_name(ckpt_meta_source s) {
  switch (s) {
    case CKPT_META_FROM_FILE:
      return CKPT_METADATA_FILE;
    case CKPT_META_FROM_AGGREGATE:
      return "the legacy aggregate file '" CKPT_AGGREGATE_FILE "'";
    case CKPT_META_FROM_ARRAY_METADATAS:
      return CKPT_ARRAY_METADATAS_FILE " and the zarr arrays";
    case CKPT_META_FROM_ZARRAYS:
      break;
  }
  return "the zarr arrays";
}

cli_leaf *cli_pytree_find(const cli_pytree *p, const char *param) {
  for (size_t i = 0; i < p->n; i++)
    if (strcmp(p->leaves[i].param, param) == 0)
      return &p->leaves[i];
  return NULL;
}
