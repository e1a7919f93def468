/* bench/bench_limits.c — the machine's limits for a state of S bytes, measured in the same run
 * as ckpt and the peers (performance.md, "Limits measured in the same run"):
 *
 *   memcpy        the state's arrays copied into one already-faulted buffer (snapshot floor)
 *   write_nosync  those S bytes written to one new file in 4 MiB write()s, no fsync (page
 *                 cache only); the file is then truncated
 *   write_fsync   the same into another new file, then fsync (durable-save floor; open to close)
 *   read_hot      the fsync'd file read back into a faulted buffer in 4 MiB read()s
 *   read_cold     the same after posix_fadvise(DONTNEED) dropped it from the page cache
 *
 * Why write_nosync comes first and its file is truncated: on this machine kind (a VM whose balloon
 * hands free memory back to the host) the page cache of a new file is fast to fill only while
 * it can take pages freed a moment ago; once a 1 GiB file stays cached, the next 1 GiB of page
 * cache comes from memory the host has reclaimed, and copying into it took 2-3 s instead of
 * 0.3 s (all system time: the first touch of each page faults in the host). Measured the other
 * way round, write_nosync came out 2-3x slower than write_fsync. Truncating a file frees its
 * pages (as deleting would, without freeing an inode: bench_retire_file), so every timed write
 * here starts with as much warm memory as the first one.
 *
 * For the llm state, bench_ckpt measures memcpy, write_fsync and read_hot itself, right next
 * to the ckpt ops they pair with; this program then runs once per run for the context figures
 * (OPs write_nosync read_cold).
 *
 * Each timed section starts right after bench_prewarm (see bench_common.h for why).
 *
 * Usage: bench_limits MANIFEST DIR [OP...]   (DIR must exist; the files are truncated at exit;
 *        without OPs every op is reported, else only those named; all of them run)
 * Output: JSON lines (bench_common.h). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_common.h"

#define PROG "limits"

static int g_argc;
static char **g_argv;

/* Is op one of the OPs on the command line (or were none given)? */
static bool wanted(const char *op) {
  if (g_argc <= 3)
    return true;
  for (int i = 3; i < g_argc; i++)
    if (strcmp(g_argv[i], op) == 0)
      return true;
  return false;
}

static void emit(const bench_state *st, const char *op, double seconds) {
  if (wanted(op))
    bench_emit_time(PROG, st->name, op, seconds, st->total_bytes);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s MANIFEST DIR [OP...]\n", argv[0]);
    return 2;
  }
  g_argc = argc;
  g_argv = argv;
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
  emit(&st, "memcpy", bench_now() - t0);

  size_t len = strlen(dir) + 32;
  char *durable_path = malloc(len), *buffered_path = malloc(len);
  if (durable_path == NULL || buffered_path == NULL)
    bench_die(false, "out of memory");
  snprintf(durable_path, len, "%s/limits-fsync.bin", dir);
  snprintf(buffered_path, len, "%s/limits-nosync.bin", dir);

  bench_prewarm(warm);
  t0 = bench_now();
  bench_write_file(buffered_path, flat, S, false);
  emit(&st, "write_nosync", bench_now() - t0);
  /* Truncating it drops its dirty pages (no write-back runs behind what follows) and frees
   * them for the next file (see the top of this file). */
  bench_retire_file(buffered_path);

  bench_prewarm(warm);
  t0 = bench_now();
  bench_write_file(durable_path, flat, S, true);
  emit(&st, "write_fsync", bench_now() - t0);

  char *back = bench_alloc_faulted(S);
  bench_prewarm(warm);
  t0 = bench_now();
  bench_read_file(durable_path, back, S);
  emit(&st, "read_hot", bench_now() - t0);
  if (memcmp(back, flat, S) != 0)
    bench_die(false, "%s reads back different bytes", durable_path);

  double resident = bench_drop_cache(durable_path);
  memset(back, 0x5a, S);
  bench_prewarm(warm);
  t0 = bench_now();
  bench_read_file(durable_path, back, S);
  emit(&st, "read_cold", bench_now() - t0);
  if (memcmp(back, flat, S) != 0)
    bench_die(false, "%s reads back different bytes", durable_path);
  /* How cold the cold read really was: the fraction of pages fadvise left in the cache. */
  if (wanted("read_cold"))
    bench_emit_value(PROG, st.name, "cold_resident_fraction", resident);

  bench_retire_file(durable_path);
  free(durable_path);
  free(buffered_path);
  free(back);
  free(flat);
  bench_state_free(&st);
  return 0;
}
