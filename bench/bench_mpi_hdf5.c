/* bench/bench_mpi_hdf5.c — the parallel HDF5 peer of the MPI section of `make bench`: the
 * benchmark state split across the ranks of an MPI job exactly as bench_mpi_ckpt.c splits it
 * (bench_split.h: rank r holds block r of every array's rows), saved into one shared HDF5 file
 * through the MPI-IO driver (Debian's libhdf5-openmpi-dev), one contiguous float32 dataset per
 * array (dotted names become nested groups), as the HDF5 documentation recommends for
 * checkpoints of distributed arrays:
 *
 *   save     H5Pset_fapl_mpio .. H5Fcreate (collective) .. per array H5Dcreate2 (collective)
 *            and H5Dwrite of the rank's rows as a hyperslab with H5FD_MPIO_COLLECTIVE
 *            transfers .. H5Fflush (MPI_File_sync) .. H5Fclose; then, after a barrier, rank 0
 *            fsyncs the file and its directory (as bench_hdf5.c does: whatever the MPI-IO
 *            layer left unsynced is on the device when the clock stops). Timed on rank 0
 *            from a barrier before H5Fcreate to a barrier after the last fsync
 *   restore  H5Fopen (collective) .. per array H5Dread of the rank's rows, collective, into
 *            already-faulted buffers .. H5Fclose (hot: the file is still in the page cache);
 *            verified
 *
 * Records are labelled "phdf5_<N>" and printed by rank 0 only.
 * Usage: mpirun -np N bench_mpi_hdf5 MANIFEST DIR   (DIR must exist; the file is truncated at
 * exit). Output: JSON lines (bench_common.h). */
#include <hdf5.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_common.h"
#include "bench_split.h"

#ifndef H5_HAVE_PARALLEL
#error "bench_mpi_hdf5 needs parallel HDF5 (Debian: libhdf5-openmpi-dev, pkg-config hdf5-openmpi)"
#endif

static int rank_;

static void check(herr_t status, const char *what, const char *name) {
  if (status < 0)
    bench_die(false, "rank %d: libhdf5: %s %s failed", rank_, what, name);
}

static void check_id(hid_t id, const char *what, const char *name) {
  if (id < 0)
    bench_die(false, "rank %d: libhdf5: %s %s failed", rank_, what, name);
}

static hid_t mpio_fapl(void) {
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  check_id(fapl, "H5Pcreate", "fapl");
  check(H5Pset_fapl_mpio(fapl, MPI_COMM_WORLD, MPI_INFO_NULL), "H5Pset_fapl_mpio", "");
  return fapl;
}

static hid_t collective_dxpl(void) {
  hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
  check_id(dxpl, "H5Pcreate", "dxpl");
  check(H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE), "H5Pset_dxpl_mpio", "");
  return dxpl;
}

/* The rank's rows of dataset dset as a file space and a matching memory space. */
static void row_spaces(const bench_array *a, const bench_slice *s, hid_t dset, hid_t *file_space,
                       hid_t *mem_space, const char *name) {
  hsize_t start[BENCH_MAX_RANK] = {0}, count[BENCH_MAX_RANK];
  for (int d = 0; d < a->ndim; d++)
    count[d] = (hsize_t)a->shape[d];
  start[0] = (hsize_t)s->lo;
  count[0] = (hsize_t)s->rows;
  *file_space = H5Dget_space(dset);
  check_id(*file_space, "H5Dget_space", name);
  check(H5Sselect_hyperslab(*file_space, H5S_SELECT_SET, start, NULL, count, NULL),
        "H5Sselect_hyperslab", name);
  *mem_space = H5Screate_simple(a->ndim, count, NULL);
  check_id(*mem_space, "H5Screate_simple", name);
}

static void save(const bench_state *st, const bench_slice *mine, const char *path) {
  hid_t fapl = mpio_fapl(), dxpl = collective_dxpl();
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  check_id(lcpl, "H5Pcreate", "lcpl");
  check(H5Pset_create_intermediate_group(lcpl, 1), "H5Pset_create_intermediate_group", "");
  hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
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
    hid_t fs, ms;
    row_spaces(a, &mine[k], dset, &fs, &ms, name);
    check(H5Dwrite(dset, H5T_NATIVE_FLOAT, ms, fs, dxpl, mine[k].data), "H5Dwrite", name);
    check(H5Sclose(ms), "H5Sclose", name);
    check(H5Sclose(fs), "H5Sclose", name);
    check(H5Dclose(dset), "H5Dclose", name);
    check(H5Sclose(space), "H5Sclose", name);
    free(name);
  }
  check(H5Fflush(file, H5F_SCOPE_GLOBAL), "H5Fflush", path);
  check(H5Fclose(file), "H5Fclose", path);
  check(H5Pclose(lcpl), "H5Pclose", "lcpl");
  check(H5Pclose(dxpl), "H5Pclose", "dxpl");
  check(H5Pclose(fapl), "H5Pclose", "fapl");
}

static void restore(const bench_state *st, const bench_slice *mine, const char *path, float **out) {
  hid_t fapl = mpio_fapl(), dxpl = collective_dxpl();
  hid_t file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
  check_id(file, "H5Fopen", path);
  for (size_t k = 0; k < st->n_arrays; k++) {
    const bench_array *a = &st->arrays[k];
    char *name = bench_dots_to_slashes(a->name);
    hid_t dset = H5Dopen2(file, name, H5P_DEFAULT);
    check_id(dset, "H5Dopen2", name);
    hid_t fs, ms;
    row_spaces(a, &mine[k], dset, &fs, &ms, name);
    check(H5Dread(dset, H5T_NATIVE_FLOAT, ms, fs, dxpl, out[k]), "H5Dread", name);
    check(H5Sclose(ms), "H5Sclose", name);
    check(H5Sclose(fs), "H5Sclose", name);
    check(H5Dclose(dset), "H5Dclose", name);
    free(name);
  }
  check(H5Fclose(file), "H5Fclose", path);
  check(H5Pclose(dxpl), "H5Pclose", "dxpl");
  check(H5Pclose(fapl), "H5Pclose", "fapl");
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (argc != 3) {
    if (rank_ == 0)
      fprintf(stderr, "usage: mpirun -np N %s MANIFEST DIR\n", argv[0]);
    MPI_Finalize();
    return 2;
  }
  char label[32];
  snprintf(label, sizeof label, "phdf5_%d", size);
  bench_state st;
  bench_state_load(argv[1], &st);
  size_t mine_bytes = 0;
  bench_slice *mine = bench_slices_new(&st, size, rank_, &mine_bytes);
  bench_slices_generate(&st, mine);
  const char *dir = argv[2];
  size_t len = strlen(dir) + 16;
  char *path = malloc(len);
  if (path == NULL)
    bench_die(false, "out of memory");
  snprintf(path, len, "%s/state.h5", dir);
  if (H5open() < 0)
    bench_die(false, "libhdf5: H5open failed");
  size_t warm = bench_prewarm_bytes(mine_bytes);

  bench_prewarm(warm);
  MPI_Barrier(MPI_COMM_WORLD);
  double t0 = bench_now();
  save(&st, mine, path);
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank_ == 0) {
    bench_fsync_file(path);
    bench_fsync_dir(dir);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank_ == 0)
    bench_emit_time(label, st.name, "save", bench_now() - t0, st.total_bytes);

  float **out = malloc(st.n_arrays * sizeof *out);
  if (out == NULL)
    bench_die(false, "out of memory");
  for (size_t k = 0; k < st.n_arrays; k++)
    out[k] = bench_alloc_faulted(mine[k].nbytes ? mine[k].nbytes : 4);
  bench_prewarm(warm);
  MPI_Barrier(MPI_COMM_WORLD);
  t0 = bench_now();
  restore(&st, mine, path, out);
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank_ == 0)
    bench_emit_time(label, st.name, "restore", bench_now() - t0, st.total_bytes);
  for (size_t k = 0; k < st.n_arrays; k++) {
    if (memcmp(out[k], mine[k].data, mine[k].nbytes) != 0)
      bench_die(false, "%s: rank %d restored different bytes of %s", path, rank_,
                st.arrays[k].name);
    free(out[k]);
  }
  free(out);

  MPI_Barrier(MPI_COMM_WORLD);
  if (rank_ == 0)
    bench_retire_file(path);
  free(path);
  bench_slices_free(&st, mine);
  bench_state_free(&st);
  H5close();
  MPI_Finalize();
  return 0;
}
