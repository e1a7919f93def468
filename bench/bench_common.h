/* bench/bench_common.h — what every C program of `make bench` shares: the benchmark states
 * (read from a manifest written by scripts/bench, filled by a deterministic generator that
 * bench/state.py reproduces byte for byte in NumPy), timing, JSON-lines output and the file
 * system helpers the durable and cold measurements need.
 *
 * These are measurement tools, not library code: on failure they print to stderr and exit
 * with status 1 (the orchestrator reports the failure and keeps going without that figure). */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BENCH_MAX_RANK 8

/* Generator: array word i = base[i % BENCH_BASE_WORDS] ^ key(seed, i / BENCH_BASE_WORDS).
 * base holds float32 bit patterns of magnitude 2^-10..2^-3 with random sign and mantissa (like
 * trained weights: low-entropy exponent bytes, random mantissas); key only touches mantissa bits,
 * so every 1 MiB block differs from every other without changing the value distribution. */
#define BENCH_BASE_WORDS 262144u

typedef struct bench_array {
  char *name; /* dotted path, "params.layer_00.attn.wq"; owned */
  uint32_t seed;
  int ndim;
  int64_t shape[BENCH_MAX_RANK];
  size_t nbytes; /* float32 elements * 4 */
  float *data;   /* malloc'ed, owned; NULL until bench_state_generate */
} bench_array;

typedef struct bench_state {
  char *name; /* "llm", "large", ... from the manifest header; owned */
  size_t n_arrays;
  bench_array *arrays; /* owned */
  size_t total_bytes;
} bench_state;

/* Reads a manifest (see bench/state.py for the format). Exits on malformed input, naming the
 * file and line. Release with bench_state_free. */
void bench_state_load(const char *manifest_path, bench_state *state);
/* Allocates and fills every array's data with the generator (which also pre-faults it). */
void bench_state_generate(bench_state *state);
void bench_state_free(bench_state *state);
/* Fills n float32 words of array seed (same bytes as bench/state.py's fill()). */
void bench_fill(uint32_t seed, uint32_t *words, size_t n);
/* Words first .. first+n-1 of array seed (the slice bench_fill would put there): what one
 * rank of the MPI benchmarks holds, generated without the rest of the array. */
void bench_fill_range(uint32_t seed, size_t first, uint32_t *words, size_t n);
/* Sum over arrays k of (k + 1) * (sum of the array's uint32 words), mod 2^64. bench/state.py
 * computes the same, so the orchestrator can check every peer saw the same bytes. */
uint64_t bench_state_fingerprint(const bench_state *state);

/* Monotonic seconds. */
double bench_now(void);

/* A malloc'ed buffer of n bytes with every page touched (so copies into it measure copying,
 * not page faults). Exits on allocation failure. */
void *bench_alloc_faulted(size_t n);

/* Touches `bytes` of fresh anonymous memory and unmaps it again, right before a timed section.
 * Why: on this machine kind (a VM whose balloon reports free pages to the host), the first touch
 * of a page the host has reclaimed costs several microseconds, which made one write+fsync of
 * 1 GiB take anywhere from 0.6 s to 3.5 s depending on what ran before. Pages freed just now are
 * not yet reported, so the timed section's page cache and buffers come from warm memory and the
 * figure measures the file system and the device. Every program (C and Python) does the same. */
void bench_prewarm(size_t bytes);
/* The amount every program pre-warms for a state of total_bytes (bench/peer_common.py agrees). */
size_t bench_prewarm_bytes(size_t total_bytes);

/* JSON lines on stdout, one object per measurement:
 *   {"prog": P, "state": S, "op": O, "seconds": x, "bytes": n}
 * plus bench_emit_value for other figures (a byte count, a ratio) and bench_emit_note. */
void bench_emit_time(const char *prog, const char *state, const char *op, double seconds,
                     uint64_t bytes);
void bench_emit_value(const char *prog, const char *state, const char *key, double value);
void bench_emit_note(const char *prog, const char *state, const char *key, const char *text);
void bench_emit_fingerprint(const char *prog, const bench_state *state);

/* Prints "bench: <msg>: <strerror(errno)>" (when errno_too) and exits 1. */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3), noreturn))
#endif
void bench_die(bool errno_too, const char *fmt, ...);

/* mkdir -p; exits on failure. */
void bench_mkdirs(const char *path);
/* Open, fsync, close: a regular file, or a directory; exit on failure. */
void bench_fsync_file(const char *path);
void bench_fsync_dir(const char *path);
/* fsyncs every file and directory below root (directories after their contents). */
void bench_fsync_tree(const char *root);
/* Writes back and drops path from the page cache (posix_fadvise DONTNEED), so the next read
 * comes from the device. Returns the fraction of its pages still resident afterwards (mincore),
 * or -1 when that cannot be determined. */
double bench_drop_cache(const char *path);
/* bench_drop_cache on every regular file below root. */
void bench_drop_cache_tree(const char *root);

/* Retiring instead of deleting (docs/performance.md, "Deleted inodes"): ext4 without a journal
 * (this machine kind's disk) skips every inode freed in the last 1-6 minutes when it allocates
 * one, with a lookup per skipped inode, so a save right after the deletion of a checkpoint with
 * a thousand files paid 0.2-0.3 s more to create its own, while a peer that writes one file
 * paid nothing. The benchmark programs therefore never free inodes while a run measures:
 * retiring truncates every regular file (its blocks and page cache are freed, as by deleting)
 * and keeps the names; bench/run.py removes the whole data directory after the last job.
 * bench_retire_tree also renames root to a fresh name beside it, so the path can be reused. */
void bench_retire_file(const char *path);
void bench_retire_tree(const char *root);

/* Resident set size and its high-water mark of this process, in bytes (from /proc/self/status). */
uint64_t bench_rss_bytes(void);
uint64_t bench_hwm_bytes(void);
/* Resets VmHWM to the current RSS (writes 5 to /proc/self/clear_refs); false when not permitted. */
bool bench_reset_hwm(void);
/* read_bytes (from the device) and rchar (through read syscalls) of /proc/self/io; 0 when
 * unavailable. */
void bench_io_counters(uint64_t *read_bytes, uint64_t *rchar);

/* The limit loops (performance.md, "Limits"): n bytes of buf written to a new file at path in
 * 4 MiB write()s, then fsync when durable (open to close); and read back into buf in 4 MiB
 * read()s. Exit on failure or a short file. */
#define BENCH_IO_CHUNK ((size_t)4 << 20)
void bench_write_file(const char *path, const char *buf, size_t n, bool durable);
void bench_read_file(const char *path, char *buf, size_t n);

/* "a.b.c" → "a/b/c" in a malloc'ed string (exits on allocation failure). */
char *bench_dots_to_slashes(const char *dotted);

#endif
