/* bench/bench_limits.c — the machine's limits for a state of S bytes, measured in the same run
 * as ckpt and the peers (performance.md, "Limits measured in the same run"):
 *
 *   memcpy        the state's arrays copied into one already-faulted buffer (snapshot floor)
 *   write_fsync   those S bytes written to one new file in 4 MiB write()s, then fsync
 *                 (durable-save floor; open to close)
 *   write_nosync  the same into another new file without fsync
 *   read_hot      the fsync'd file read back into a faulted buffer in 4 MiB read()s
 *   read_cold     the same after posix_fadvise(DONTNEED) dropped it from the page cache
 *
 * Each timed section starts right after bench_prewarm (see bench_common.h for why).
 *
 * Usage: bench_limits MANIFEST DIR   (DIR must exist; the files are removed at exit)
 * Output: JSON lines (bench_common.h). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_common.h"

#define PROG "limits"
#define IO_CHUNK ((size_t)4 << 20)

static void write_file(const char *path, const char *buf, size_t n, bool durable) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    bench_die(true, "open %s", path);
  for (size_t done = 0; done < n;) {
    size_t len = n - done < IO_CHUNK ? n - done : IO_CHUNK;
    ssize_t w = write(fd, buf + done, len);
    if (w < 0)
      bench_die(true, "write %s", path);
    done += (size_t)w;
  }
  if (durable && fsync(fd) != 0)
    bench_die(true, "fsync %s", path);
  if (close(fd) != 0)
    bench_die(true, "close %s", path);
}

static void read_file(const char *path, char *buf, size_t n) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    bench_die(true, "open %s", path);
  size_t done = 0;
  while (done < n) {
    size_t len = n - done < IO_CHUNK ? n - done : IO_CHUNK;
    ssize_t r = read(fd, buf + done, len);
    if (r < 0)
      bench_die(true, "read %s", path);
    if (r == 0)
      bench_die(false, "%s: %zu of %zu bytes, then end of file", path, done, n);
    done += (size_t)r;
  }
  close(fd);
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
  const size_t S = st.total_bytes;
  const char *dir = argv[2];

  const size_t warm = bench_prewarm_bytes(S);
  char *flat = bench_alloc_faulted(S);
  double t0 = bench_now();
  size_t off = 0;
  for (size_t k = 0; k < st.n_arrays; k++) {
    memcpy(flat + off, st.arrays[k].data, st.arrays[k].nbytes);
    off += st.arrays[k].nbytes;
  }
  bench_emit_time(PROG, st.name, "memcpy", bench_now() - t0, S);

  size_t len = strlen(dir) + 32;
  char *durable_path = malloc(len), *buffered_path = malloc(len);
  if (durable_path == NULL || buffered_path == NULL)
    bench_die(false, "out of memory");
  snprintf(durable_path, len, "%s/limits-fsync.bin", dir);
  snprintf(buffered_path, len, "%s/limits-nosync.bin", dir);

  bench_prewarm(warm);
  t0 = bench_now();
  write_file(durable_path, flat, S, true);
  bench_emit_time(PROG, st.name, "write_fsync", bench_now() - t0, S);

  bench_prewarm(warm);
  t0 = bench_now();
  write_file(buffered_path, flat, S, false);
  bench_emit_time(PROG, st.name, "write_nosync", bench_now() - t0, S);
  /* Its write-back must not run behind the reads below. */
  (void)bench_drop_cache(buffered_path);
  if (unlink(buffered_path) != 0)
    bench_die(true, "unlink %s", buffered_path);

  char *back = bench_alloc_faulted(S);
  bench_prewarm(warm);
  t0 = bench_now();
  read_file(durable_path, back, S);
  bench_emit_time(PROG, st.name, "read_hot", bench_now() - t0, S);
  if (memcmp(back, flat, S) != 0)
    bench_die(false, "%s reads back different bytes", durable_path);

  double resident = bench_drop_cache(durable_path);
  memset(back, 0x5a, S);
  bench_prewarm(warm);
  t0 = bench_now();
  read_file(durable_path, back, S);
  bench_emit_time(PROG, st.name, "read_cold", bench_now() - t0, S);
  if (memcmp(back, flat, S) != 0)
    bench_die(false, "%s reads back different bytes", durable_path);
  /* How cold the cold read really was: the fraction of pages fadvise left in the cache. */
  bench_emit_value(PROG, st.name, "cold_resident_fraction", resident);

  if (unlink(durable_path) != 0)
    bench_die(true, "unlink %s", durable_path);
  free(durable_path);
  free(buffered_path);
  free(back);
  free(flat);
  bench_state_free(&st);
  return 0;
}
