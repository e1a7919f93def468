/* cli/array_read.c — reading parts of a stored array for `ckpt cat` and `ckpt diff`.
 *
 * Arrays in a checkpoint can be far larger than memory, so the tool never loads one whole:
 * it walks the array in C-order boxes of bounded size and reads each box through the runtime's
 * own chunk reader (storage/zarr_io.h), which checks every chunk's size and checksum on the
 * way. Two checkpoints with different chunkings are compared box by box the same way. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "inspect/inspect.h"

ckpt_status cli_array_open(ckpt_io *io, const cli_pytree *p, const cli_leaf *leaf, cli_array *a,
                           ckpt_error *err) {
  memset(a, 0, sizeof *a);
  if (!leaf->is_array)
    return ckpt_error_set(err, CKPT_EINVAL, "'%s' is a %s leaf, not an array", leaf->param,
                          leaf->value_type);
  if (!leaf->zarr_ok) {
    ckpt_error_set(err, leaf->zarr_err.code, "%s", leaf->zarr_err.message);
    return leaf->zarr_err.code;
  }
  a->io = io;
  a->name = leaf->param;
  a->meta = leaf->zarr;
  a->packed = leaf->packed;
  a->ocdbt = leaf->ocdbt;
  a->sums = p->checksums ? ckpt_checksums_array(p->checksums, leaf->param) : NULL;
  a->require_sums = p->checksums != NULL;
  a->missing_is_error = p->meta.store_array_data_equal_to_fill_value;
  a->dir = ckpt_path_join(p->dir, leaf->param);
  if (a->dir == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  return CKPT_OK;
}

void cli_array_close(cli_array *a) {
  free(a->dir);
  memset(a, 0, sizeof *a);
}

static ckpt_status run_task(void *ctx, size_t index, ckpt_scratch *scratch, ckpt_error *err) {
  const ckpt_zarr_chunk_task *tasks = ctx;
  return ckpt_zarr_run_read(&tasks[index], scratch, err);
}

ckpt_status cli_array_read(cli_array *a, const int64_t *off, const int64_t *shape, ckpt_dtype dtype,
                           void *dst, ckpt_error *err) {
  ckpt_zarr_dest dest;
  memset(&dest, 0, sizeof dest);
  for (int k = 0; k < a->meta.ndim; k++) {
    dest.offset[k] = off[k];
    dest.shape[k] = shape[k];
  }
  dest.data = dst;
  ckpt_zarr_read_req req;
  memset(&req, 0, sizeof req);
  req.io = a->io;
  req.array_dir = a->dir;
  req.packed = a->packed;
  req.ocdbt = a->ocdbt;
  req.name = a->name;
  req.meta = &a->meta;
  req.dtype = dtype;
  req.checksums = a->sums;
  req.require_checksums = a->require_sums;
  req.missing_is_error = a->missing_is_error;
  req.n_dest = 1;
  req.dest = &dest;
  ckpt_zarr_chunk_task *tasks = NULL;
  size_t n = 0, cap = 0;
  ckpt_status st = ckpt_zarr_plan_read(&req, &tasks, &n, &cap, err);
  if (st == CKPT_OK)
    st = ckpt_task_run(cli_task_engine(), "array read", n, run_task, NULL, tasks, err);
  free(tasks);
  return st;
}

ckpt_status cli_for_each_box(int ndim, const int64_t *shape, uint64_t max_elems, cli_box_fn fn,
                             void *ctx, ckpt_error *err) {
  int64_t off[CKPT_MAX_RANK] = {0}, box[CKPT_MAX_RANK] = {0};
  if (max_elems == 0)
    max_elems = 1;
  for (int k = 0; k < ndim; k++)
    if (shape[k] == 0)
      return CKPT_OK;
  if (ndim == 0)
    return fn(ctx, off, box, 1, err);
  /* j: the outermost axis from which on everything inside fits; boxes take `rows` entries of
   * axis j and all of the axes after it, and one entry of the axes before it. */
  int j = ndim - 1;
  uint64_t inner = 1;
  while (j > 0 && (uint64_t)shape[j] <= max_elems / inner) {
    inner *= (uint64_t)shape[j];
    j--;
  }
  uint64_t rows = max_elems / inner;
  if (rows == 0)
    rows = 1;
  if (rows > (uint64_t)shape[j])
    rows = (uint64_t)shape[j];
  for (int k = 0; k < ndim; k++)
    box[k] = k < j ? 1 : shape[k];
  for (;;) {
    int64_t r = shape[j] - off[j];
    box[j] = r < (int64_t)rows ? r : (int64_t)rows;
    ckpt_status st = fn(ctx, off, box, (uint64_t)box[j] * inner, err);
    if (st != CKPT_OK)
      return st;
    off[j] += box[j];
    int k = j;
    while (k >= 0 && off[k] >= shape[k]) {
      off[k] = 0;
      if (--k >= 0)
        off[k]++;
    }
    if (k < 0)
      return CKPT_OK;
  }
}
