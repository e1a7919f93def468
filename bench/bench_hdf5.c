/* bench/bench_hdf5.c — the libhdf5 peer: the benchmark state saved and restored through
 * HDF5's C API, one contiguous float32 dataset per array (dotted names become nested groups).
 *
 *   save     H5Fcreate .. H5Dwrite of every array .. H5Fflush, fsync of the file, H5Fclose,
 *            fsync of the directory: a durable save, timed from create to the last fsync
 *   restore  H5Fopen .. H5Dread of every array into already-faulted caller buffers .. H5Fclose
 *            (hot: right after the save, the file is still in the page cache)
 *
 * Usage: bench_hdf5 MANIFEST DIR   (DIR must exist; the file is truncated at exit)
 * Output: JSON lines (bench_common.h). */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_common.h"

#define PROG "hdf5"

static void check(herr_t status, const char *what, const char *name) {
  if (status < 0)
    bench_die(false, "libhdf5: %s %s failed", what, name);
}

static void check_id(hid_t id, const char *what, const char *name) {
  if (id < 0)
    bench_die(false, "libhdf5: %s %s failed", what, name);
}

static void save(const bench_state *st, const char *dir, const char *path) {
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  check_id(lcpl, "H5Pcreate", "lcpl");
  check(H5Pset_create_intermediate_group(lcpl, 1), "H5Pset_create_intermediate_group", "");
  hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  check_id(file, "H5Fcreate", path);
  for (size_t k = 0; k < st->n_arrays; k++) {
    const bench_array *a = &st->arrays[k];
    hsize_t dims[BENCH_MAX_RANK];
    for (int d = 0; d < a->ndim; d++)
      dims[d] = (hsize_t)a->shape[d];
    char *name = bench_dots_to_slashes(a->name);
    hid_t space = H5Screate_simple(a->ndim, dims, NULL);
    check_id(space, "H5Screate_simple", name);
    hid_t dset = H5Dcreate2(file, name, H5T_IEEE_F32LE, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    check_id(dset, "H5Dcreate2", name);
    check(H5Dwrite(dset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, a->data), "H5Dwrite",
          name);
    check(H5Dclose(dset), "H5Dclose", name);
    check(H5Sclose(space), "H5Sclose", name);
    free(name);
  }
  check(H5Fflush(file, H5F_SCOPE_GLOBAL), "H5Fflush", path);
  void *handle = NULL;
  check(H5Fget_vfd_handle(file, H5P_DEFAULT, &handle), "H5Fget_vfd_handle", path);
  if (fsync(*(int *)handle) != 0)
    bench_die(true, "fsync %s", path);
  check(H5Fclose(file), "H5Fclose", path);
  check(H5Pclose(lcpl), "H5Pclose", "lcpl");
  /* H5Fclose may still write the superblock's end-of-file mark: make sure nothing stays dirty.
   * Free when nothing is. Then the directory entry of the new file. */
  bench_fsync_file(path);
  bench_fsync_dir(dir);
}

static void restore(const bench_state *st, const char *path, float **out) {
  hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  check_id(file, "H5Fopen", path);
  for (size_t k = 0; k < st->n_arrays; k++) {
    char *name = bench_dots_to_slashes(st->arrays[k].name);
    hid_t dset = H5Dopen2(file, name, H5P_DEFAULT);
    check_id(dset, "H5Dopen2", name);
    check(H5Dread(dset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out[k]), "H5Dread", name);
    check(H5Dclose(dset), "H5Dclose", name);
    free(name);
  }
  check(H5Fclose(file), "H5Fclose", path);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s MANIFEST DIR\n", argv[0]);
    return 2;
  }
  bench_state st;
  bench_state_load(argv[1], &st);
  bench_state_generate(&st);
  bench_emit_fingerprint(PROG, &st);
  const char *dir = argv[2];
  size_t len = strlen(dir) + 16;
  char *path = malloc(len);
  if (path == NULL)
    bench_die(false, "out of memory");
  snprintf(path, len, "%s/state.h5", dir);
  if (H5open() < 0)
    bench_die(false, "libhdf5: H5open failed");

  bench_prewarm(bench_prewarm_bytes(st.total_bytes));
  double t0 = bench_now();
  save(&st, dir, path);
  bench_emit_time(PROG, st.name, "save", bench_now() - t0, st.total_bytes);

  float **out = malloc(st.n_arrays * sizeof *out);
  if (out == NULL)
    bench_die(false, "out of memory");
  for (size_t k = 0; k < st.n_arrays; k++)
    out[k] = bench_alloc_faulted(st.arrays[k].nbytes);
  bench_prewarm(bench_prewarm_bytes(st.total_bytes));
  t0 = bench_now();
  restore(&st, path, out);
  bench_emit_time(PROG, st.name, "restore", bench_now() - t0, st.total_bytes);
  for (size_t k = 0; k < st.n_arrays; k++) {
    if (memcmp(out[k], st.arrays[k].data, st.arrays[k].nbytes) != 0)
      bench_die(false, "%s: %s restored different bytes", path, st.arrays[k].name);
    free(out[k]);
  }
  free(out);

  bench_retire_file(path);
  free(path);
  bench_state_free(&st);
  H5close();
  return 0;
}
