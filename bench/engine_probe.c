/* bench/engine_probe.c — measures the durability strategies the I/O engine can use, on this
 * machine, so the engine's default is chosen from numbers rather than folklore.
 *
 * Not built by make: compile and run by hand from the top of the tree,
 *   cc -O2 -D_GNU_SOURCE -std=c11 -Iruntime/include -Iruntime/src -o /tmp/engine_probe \
 *      bench/engine_probe.c runtime/src/io/engine.c \
 *      runtime/src/io/pwrite_backend.c runtime/src/io/uring_backend.c \
 *      runtime/src/io/buffer_pool.c runtime/src/io/posix_io.c runtime/src/core/error.c \
 *      -luring -lpthread
 *   /tmp/engine_probe [DIR] [MiB] [reps] [write-behind MiB]
 * (defaults: /tmp, 1024 MiB, 5 repetitions, 8 MiB; modes interleaved so noise hits all alike).
 *
 * Modes, each writing S bytes to a new file in 4 MiB write()s and ending durable:
 *   plain       write everything, then one fsync (the page cache holds all of S dirty)
 *   writebehind after every N MiB, sync_file_range(SYNC_FILE_RANGE_WRITE) on the range just
 *               written, so the disk works while we write; final fsync has little left
 *   writebehind+wait  as above, and also wait for the range before last (bounded dirty
 *               pages, the pattern Linux developers recommend for streaming writes)
 *   direct      O_DIRECT from a 4 KiB-aligned buffer, then fsync (metadata)
 * Then the same through the engine (io/engine.h), 4 MiB write jobs into one durable file, for
 * each backend and flush strategy, to check the engine reaches what the raw loop reaches.
 * Finally the staging copies: memcpy into a warm buffer (the limit), into a buffer from the
 * pre-faulted pool (io/buffer_pool.h), and into fresh malloc memory (page faults). */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "io/buffer_pool.h"
#include "io/engine.h"

#define MiB (1024u * 1024u)
#define WRITE_UNIT (4u * MiB)

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

enum mode { PLAIN, WRITEBEHIND, WRITEBEHIND_WAIT, DIRECT, MODE_COUNT };
static const char *mode_name[] = {"plain write+fsync", "write-behind", "write-behind+wait",
                                  "O_DIRECT"};

static double run(enum mode m, const char *dir, const char *buf, size_t total, size_t flush_every) {
  char path[4096];
  snprintf(path, sizeof path, "%s/engine_probe.%d.dat", dir, (int)getpid());
  unlink(path);
  int flags = O_WRONLY | O_CREAT | O_TRUNC | (m == DIRECT ? O_DIRECT : 0);
  double t0 = now_s();
  int fd = open(path, flags, 0644);
  if (fd < 0) {
    perror(path);
    return -1;
  }
  size_t done = 0, flushed = 0;
  while (done < total) {
    size_t n = total - done < WRITE_UNIT ? total - done : WRITE_UNIT;
    if (write_all(fd, buf, n) != 0) {
      perror("write");
      close(fd);
      return -1;
    }
    done += n;
    if ((m == WRITEBEHIND || m == WRITEBEHIND_WAIT) && done - flushed >= flush_every) {
      sync_file_range(fd, (off64_t)flushed, (off64_t)(done - flushed), SYNC_FILE_RANGE_WRITE);
      if (m == WRITEBEHIND_WAIT && flushed >= flush_every) {
        sync_file_range(fd, (off64_t)(flushed - flush_every), (off64_t)flush_every,
                        SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                            SYNC_FILE_RANGE_WAIT_AFTER);
      }
      flushed = done;
    }
  }
  if (fsync(fd) != 0) perror("fsync");
  close(fd);
  double t = now_s() - t0;
  unlink(path);
  return t;
}

/* One durable file of `total` bytes through the engine in 4 MiB jobs; seconds, or -1. */
static double run_engine(ckpt_engine_backend backend, ckpt_engine_flush flush, const char *dir,
                         const char *buf, size_t total, size_t flush_every) {
  char path[4096];
  snprintf(path, sizeof path, "%s/engine_probe.%d.eng", dir, (int)getpid());
  unlink(path);
  ckpt_engine_options o;
  ckpt_engine_options_init(&o);
  o.backend = backend;
  o.flush = flush;
  o.writebehind_bytes = flush_every;
  ckpt_engine *e;
  ckpt_error err = CKPT_ERROR_INIT;
  if (ckpt_engine_new(&o, &e, &err) != CKPT_OK) {
    fprintf(stderr, "%s\n", err.message);
    return -1;
  }
  double t0 = now_s();
  ckpt_engine_group *g;
  ckpt_engine_file *f;
  ckpt_status st = ckpt_engine_group_new(e, "probe", &g, &err);
  if (st == CKPT_OK)
    st = ckpt_engine_file_open(g, path, O_WRONLY | O_CREAT | O_TRUNC, 0644,
                               CKPT_ENGINE_FILE_DURABLE, &f, &err);
  for (size_t off = 0; st == CKPT_OK && off < total; off += WRITE_UNIT) {
    size_t n = total - off < WRITE_UNIT ? total - off : WRITE_UNIT;
    st = ckpt_engine_write(g, f, buf, n, off, NULL, NULL, &err);
  }
  if (st == CKPT_OK) st = ckpt_engine_file_close(g, f, NULL, NULL, &err);
  if (st == CKPT_OK) st = ckpt_engine_group_wait(g, &err);
  double t = now_s() - t0;
  if (st != CKPT_OK) fprintf(stderr, "engine: %s\n", err.message);
  ckpt_engine_free(e);
  unlink(path);
  return st == CKPT_OK ? t : -1;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  const char *dir = argc > 1 ? argv[1] : "/tmp";
  size_t mib = argc > 2 ? (size_t)strtoul(argv[2], NULL, 10) : 1024;
  int reps = argc > 3 ? atoi(argv[3]) : 5;
  size_t flush_every = (argc > 4 ? (size_t)strtoul(argv[4], NULL, 10) : 8) * MiB;
  size_t total = mib * MiB;
  if (reps < 1 || reps > 50) reps = 5;

  char *buf = mmap(NULL, WRITE_UNIT, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (buf == MAP_FAILED) return 1;
  for (size_t i = 0; i < WRITE_UNIT; i++) buf[i] = (char)(i * 2654435761u >> 13);

  double t[MODE_COUNT][50];
  for (int r = 0; r < reps; r++) {
    for (int m = 0; m < MODE_COUNT; m++) {
      t[m][r] = run((enum mode)m, dir, buf, total, flush_every);
      fprintf(stderr, "rep %d %-20s %.3f s\n", r, mode_name[m], t[m][r]);
    }
  }
  double med[MODE_COUNT];
  for (int m = 0; m < MODE_COUNT; m++) {
    qsort(t[m], (size_t)reps, sizeof(double), cmp_double);
    med[m] = t[m][reps / 2];
  }
  printf("durable write of %zu MiB to %s, write-behind every %zu MiB, median of %d\n", mib, dir,
         flush_every / MiB, reps);
  for (int m = 0; m < MODE_COUNT; m++)
    printf("  %-20s %7.3f s  %7.1f MiB/s  %.2fx plain\n", mode_name[m], med[m],
           (double)mib / med[m], med[m] / med[PLAIN]);

  /* The same durable write through the engine. */
  static const ckpt_engine_backend backends[] = {CKPT_ENGINE_BACKEND_URING,
                                                 CKPT_ENGINE_BACKEND_PWRITE};
  static const ckpt_engine_flush flushes[] = {CKPT_ENGINE_FLUSH_END, CKPT_ENGINE_FLUSH_WRITEBEHIND,
                                              CKPT_ENGINE_FLUSH_DIRECT};
  double te[2][3][50];
  for (int r = 0; r < reps; r++) {
    for (int b = 0; b < 2; b++) {
      for (int f = 0; f < 3; f++) {
        te[b][f][r] = run_engine(backends[b], flushes[f], dir, buf, total, flush_every);
        fprintf(stderr, "rep %d engine %-6s %-12s %.3f s\n", r, ckpt_engine_backend_name(backends[b]),
                ckpt_engine_flush_name(flushes[f]), te[b][f][r]);
      }
    }
  }
  printf("through the engine (4 MiB write jobs, 4 threads):\n");
  for (int b = 0; b < 2; b++) {
    for (int f = 0; f < 3; f++) {
      qsort(te[b][f], (size_t)reps, sizeof(double), cmp_double);
      double m = te[b][f][reps / 2];
      printf("  %-6s %-12s %7.3f s  %7.1f MiB/s  %.2fx plain\n", ckpt_engine_backend_name(backends[b]),
             ckpt_engine_flush_name(flushes[f]), m, (double)mib / m, m / med[PLAIN]);
    }
  }

  /* Staging copies of 256 MiB: warm buffer (limit), pool buffer, fresh malloc. */
  size_t cs = 256 * MiB;
  char *src = malloc(cs), *warm = malloc(cs);
  if (!src || !warm) return 1;
  memset(src, 7, cs);
  memset(warm, 1, cs);
  ckpt_buffer_pool *pool;
  ckpt_error err = CKPT_ERROR_INIT;
  if (ckpt_buffer_pool_new(cs, &pool, &err) != CKPT_OK) {
    fprintf(stderr, "%s\n", err.message);
    return 1;
  }
  double tw[9], tp[9], tf[9];
  for (int r = 0; r < 9; r++) {
    double t0 = now_s();
    memcpy(warm, src, cs);
    tw[r] = now_s() - t0;
    void *pb;
    t0 = now_s();
    if (ckpt_buffer_pool_acquire(pool, cs, &pb, &err) != CKPT_OK) return 1;
    memcpy(pb, src, cs);
    tp[r] = now_s() - t0;
    ckpt_buffer_pool_release(pool, pb);
    char *fresh = malloc(cs);
    if (!fresh) return 1;
    t0 = now_s();
    memcpy(fresh, src, cs);
    tf[r] = now_s() - t0;
    volatile char sink = fresh[cs / 2];
    (void)sink;
    free(fresh);
  }
  qsort(tw, 9, sizeof(double), cmp_double);
  qsort(tp, 9, sizeof(double), cmp_double);
  qsort(tf, 9, sizeof(double), cmp_double);
  printf("copy 256 MiB (median of 9): warm memcpy %.4f s, pool buffer %.4f s (%.2fx), "
         "fresh malloc %.4f s (%.1fx)\n", tw[4], tp[4], tp[4] / tw[4], tf[4], tf[4] / tw[4]);
  ckpt_buffer_pool_free(pool);
  free(src);
  free(warm);
  munmap(buf, WRITE_UNIT);
  return 0;
}
