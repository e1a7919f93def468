/* storage/ocdbt/ocdbt_merge.c — the root database of a multi-process OCDBT save
 * (ocdbt_write.h, ckpt_ocdbt_write_root; docs/format.md "OCDBT: several processes").
 *
 * Each process wrote its own database ocdbt.process_<i>/ (ocdbt_write.c) and sent its key table
 * to the primary (handlers/pytree_multiprocess_ocdbt.c). Here the primary encodes the root
 * database over those tables — every key, the large values referred to in place in each
 * process's value files through the base path "ocdbt.process_<i>/" — and writes its node file
 * and manifest.ocdbt durably. It runs after every process's database is durable (an agreed
 * step of the save), so the root never names a file that is not on disk; readers open only the
 * root manifest, and until the commit renames the tmp directory nothing is visible at all. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "storage/ocdbt/ocdbt_write.h"
#include "storage/zarr_io.h"
#include "util/crc32c.h"
#include "util/path.h"

/* Writes <item>/rel durably and appends its sum to plan->ocdbt_files (for _CHECKSUMS). */
static ckpt_status write_root_file(ckpt_write_plan *j, const char *rel, const ckpt_ocdbt_buf *b,
                                   ckpt_error *err) {
  ckpt_write_file_sum *nf = realloc(j->ocdbt_files, (j->n_ocdbt_files + 1) * sizeof *nf);
  if (nf == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  j->ocdbt_files = nf;
  char *path = ckpt_path_join(j->dir, rel);
  char *r = strdup(rel);
  if (path == NULL || r == NULL) {
    free(path);
    free(r);
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  }
  ckpt_status st =
      ckpt_io_write_file(j->io, path, b->p ? (const void *)b->p : "", b->n, true, err);
  free(path);
  if (st != CKPT_OK) {
    free(r);
    return st;
  }
  nf[j->n_ocdbt_files++] = (ckpt_write_file_sum){r, ckpt_crc32c(0, b->p, b->n), b->n};
  return CKPT_OK;
}

static void note(ckpt_write_plan *j, const char *rel) {
  if (j->note_durable == NULL)
    return;
  char *path = ckpt_path_join(j->dir, rel);
  if (path != NULL) /* out of memory: the commit fsyncs it */
    j->note_durable(j->note_durable_ctx, path);
  free(path);
}

ckpt_status ckpt_ocdbt_write_root(ckpt_write_plan *j, const ckpt_ocdbt_process_table *tables,
                                  size_t n_tables, ckpt_error *err) {
  ckpt_ocdbt_config rc;
  char node[CKPT_OCDBT_DATA_NAME_HEX + 3];
  ckpt_ocdbt_buf nodes = {0}, manifest = {0};
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t when = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
  char *ddir = ckpt_path_join(j->dir, CKPT_OCDBT_DATA_DIR);
  ckpt_status st = ddir != NULL ? CKPT_OK : ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  if (st == CKPT_OK)
    st = ckpt_ocdbt_config_init(&rc, err);
  if (st == CKPT_OK)
    st = ckpt_ocdbt_data_file_name(node, err);
  if (st == CKPT_OK)
    st = ckpt_ocdbt_merge_encode(tables, n_tables, &rc, node, j->ocdbt_node_bytes, when, &nodes,
                                 &manifest, err);
  if (st == CKPT_OK)
    st = ckpt_zarr_make_array_dir(j->io, ddir, err);
  /* The node file before the manifest naming it; d/ fsync'd after its entry. The item
   * directory (which gains d/ and manifest.ocdbt) is fsync'd with the item files. */
  if (st == CKPT_OK)
    st = write_root_file(j, node, &nodes, err);
  if (st == CKPT_OK)
    st = ckpt_io_fsync_dir(j->io, ddir, err);
  if (st == CKPT_OK)
    st = write_root_file(j, CKPT_OCDBT_MANIFEST_FILE, &manifest, err);
  if (st == CKPT_OK) {
    note(j, CKPT_OCDBT_DATA_DIR);
    note(j, CKPT_OCDBT_MANIFEST_FILE);
    /* Each process made its own database durable before the save agreed to merge. */
    for (size_t t = 0; t < n_tables; t++) {
      if (tables[t].n == 0)
        continue; /* a process that stored nothing has no database */
      char rel[64];
      snprintf(rel, sizeof rel, "%s%u", CKPT_OCDBT_PROCESS_DIR_PREFIX, tables[t].process);
      note(j, rel);
    }
  }
  if (st != CKPT_OK)
    ckpt_error_prefix(err, "while writing the root OCDBT database of '%s': ", j->dir);
  free(ddir);
  ckpt_ocdbt_buf_free(&nodes);
  ckpt_ocdbt_buf_free(&manifest);
  return st;
}
