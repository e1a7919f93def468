/* bench/bench_common.c — the benchmark states, their generator, timing, JSON-lines output and
 * file system helpers shared by bench_limits, bench_hdf5 and bench_ckpt (see bench_common.h). */
#include "bench_common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void bench_die(bool errno_too, const char *fmt, ...) {
  int saved = errno;
  va_list ap;
  fputs("bench: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  if (errno_too)
    fprintf(stderr, ": %s", strerror(saved));
  fputc('\n', stderr);
  exit(1);
}

double bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---------------------------------------------------------------- the generator */

/* Chris Wellons' lowbias32: a cheap, well-mixed 32-bit hash that NumPy can vectorise exactly. */
static uint32_t lowbias32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}

static uint32_t base_word(uint32_t i) {
  uint32_t h = lowbias32(i + 0x9E3779B9u);
  uint32_t exponent = 117u + ((h >> 23) & 7u);
  return (h & 0x80000000u) | (exponent << 23) | (h & 0x007FFFFFu);
}

static uint32_t block_key(uint32_t seed, uint32_t block) {
  return lowbias32(seed * 0x9E3779B9u + block * 0x85EBCA6Bu + 1u) & 0x007FFFFFu;
}

static const uint32_t *base_block(void) {
  /* Built once per process; the programs are single-threaded while generating. */
  static uint32_t *base;
  if (base == NULL) {
    base = malloc(BENCH_BASE_WORDS * sizeof *base);
    if (base == NULL)
      bench_die(false, "out of memory for the generator's base block");
    for (uint32_t i = 0; i < BENCH_BASE_WORDS; i++)
      base[i] = base_word(i);
  }
  return base;
}

void bench_fill(uint32_t seed, uint32_t *words, size_t n) {
  const uint32_t *base = base_block();
  for (size_t start = 0, block = 0; start < n; start += BENCH_BASE_WORDS, block++) {
    uint32_t key = block_key(seed, (uint32_t)block);
    size_t len = n - start < BENCH_BASE_WORDS ? n - start : BENCH_BASE_WORDS;
    for (size_t i = 0; i < len; i++)
      words[start + i] = base[i] ^ key;
  }
}

void bench_fill_range(uint32_t seed, size_t first, uint32_t *words, size_t n) {
  const uint32_t *base = base_block();
  for (size_t i = 0; i < n;) {
    size_t g = first + i, in = g % BENCH_BASE_WORDS;
    size_t len = BENCH_BASE_WORDS - in < n - i ? BENCH_BASE_WORDS - in : n - i;
    uint32_t key = block_key(seed, (uint32_t)(g / BENCH_BASE_WORDS));
    for (size_t j = 0; j < len; j++)
      words[i + j] = base[in + j] ^ key;
    i += len;
  }
}

/* ---------------------------------------------------------------- manifests */

static char *dup_or_die(const char *s) {
  char *d = strdup(s);
  if (d == NULL)
    bench_die(false, "out of memory");
  return d;
}

void bench_state_load(const char *path, bench_state *state) {
  memset(state, 0, sizeof *state);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    bench_die(true, "cannot open manifest %s", path);
  char line[4096];
  char name[256];
  int version = 0;
  size_t count = 0;
  if (fgets(line, sizeof line, f) == NULL ||
      sscanf(line, "ckpt-bench-state %d %255s %zu", &version, name, &count) != 3 || version != 1)
    bench_die(false, "%s:1: expected 'ckpt-bench-state 1 NAME COUNT'", path);
  if (count == 0 || count > 10000000)
    bench_die(false, "%s:1: implausible array count %zu", path, count);
  state->name = dup_or_die(name);
  state->arrays = calloc(count, sizeof *state->arrays);
  if (state->arrays == NULL)
    bench_die(false, "out of memory for %zu arrays", count);
  for (size_t k = 0; k < count; k++) {
    size_t lineno = k + 2;
    if (fgets(line, sizeof line, f) == NULL)
      bench_die(false, "%s:%zu: expected %zu arrays, file ends early", path, lineno, count);
    bench_array *a = &state->arrays[k];
    char aname[2048], dtype[32];
    unsigned seed;
    int consumed = 0;
    if (sscanf(line, "%2047s %u %31s %d%n", aname, &seed, dtype, &a->ndim, &consumed) != 4)
      bench_die(false, "%s:%zu: expected 'NAME SEED DTYPE NDIM DIMS...'", path, lineno);
    if (strcmp(dtype, "float32") != 0)
      bench_die(false, "%s:%zu: dtype %s (only float32 is generated)", path, lineno, dtype);
    if (a->ndim < 0 || a->ndim > BENCH_MAX_RANK)
      bench_die(false, "%s:%zu: rank %d out of range", path, lineno, a->ndim);
    const char *p = line + consumed;
    size_t elems = 1;
    for (int d = 0; d < a->ndim; d++) {
      long long v;
      int used = 0;
      if (sscanf(p, "%lld%n", &v, &used) != 1 || v <= 0 || v > (1LL << 40))
        bench_die(false, "%s:%zu: dimension %d missing or out of range", path, lineno, d);
      a->shape[d] = v;
      elems *= (size_t)v;
      p += used;
    }
    a->name = dup_or_die(aname);
    a->seed = seed;
    a->nbytes = elems * sizeof(float);
    state->total_bytes += a->nbytes;
  }
  state->n_arrays = count;
  fclose(f);
}

void bench_state_generate(bench_state *state) {
  for (size_t k = 0; k < state->n_arrays; k++) {
    bench_array *a = &state->arrays[k];
    a->data = malloc(a->nbytes ? a->nbytes : 1);
    if (a->data == NULL)
      bench_die(false, "out of memory for %s (%zu bytes)", a->name, a->nbytes);
    bench_fill(a->seed, (uint32_t *)(void *)a->data, a->nbytes / sizeof(uint32_t));
  }
}

void bench_state_free(bench_state *state) {
  for (size_t k = 0; k < state->n_arrays; k++) {
    free(state->arrays[k].name);
    free(state->arrays[k].data);
  }
  free(state->arrays);
  free(state->name);
  memset(state, 0, sizeof *state);
}

uint64_t bench_state_fingerprint(const bench_state *state) {
  uint64_t total = 0;
  for (size_t k = 0; k < state->n_arrays; k++) {
    const uint32_t *w = (const uint32_t *)(const void *)state->arrays[k].data;
    size_t n = state->arrays[k].nbytes / sizeof(uint32_t);
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++)
      sum += w[i];
    total += (uint64_t)(k + 1) * sum;
  }
  return total;
}

/* ---------------------------------------------------------------- memory */

void *bench_alloc_faulted(size_t n) {
  void *p = malloc(n ? n : 1);
  if (p == NULL)
    bench_die(false, "out of memory for a %zu-byte buffer", n);
  memset(p, 0x5a, n);
  return p;
}

void bench_prewarm(size_t bytes) {
  if (bytes == 0)
    return;
  /* MAP_POPULATE faults every page in inside the kernel: the same pages touched as a loop
   * writing one byte per page, in about 60% of its time (no trap per page). */
  char *p =
      mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (p == MAP_FAILED)
    bench_die(true, "mmap %zu bytes to pre-warm", bytes);
  munmap(p, bytes);
}

size_t bench_prewarm_bytes(size_t total_bytes) {
  return total_bytes + total_bytes / 4 + ((size_t)64 << 20);
}

static uint64_t status_field_kib(const char *field) {
  FILE *f = fopen("/proc/self/status", "r");
  if (f == NULL)
    return 0;
  char line[256];
  size_t len = strlen(field);
  uint64_t value = 0;
  while (fgets(line, sizeof line, f) != NULL) {
    if (strncmp(line, field, len) == 0 && line[len] == ':') {
      value = strtoull(line + len + 1, NULL, 10);
      break;
    }
  }
  fclose(f);
  return value;
}

uint64_t bench_rss_bytes(void) {
  return status_field_kib("VmRSS") * 1024;
}
uint64_t bench_hwm_bytes(void) {
  return status_field_kib("VmHWM") * 1024;
}

bool bench_reset_hwm(void) {
  int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  bool ok = write(fd, "5", 1) == 1;
  close(fd);
  return ok;
}

void bench_io_counters(uint64_t *read_bytes, uint64_t *rchar) {
  *read_bytes = 0;
  *rchar = 0;
  FILE *f = fopen("/proc/self/io", "r");
  if (f == NULL)
    return;
  char line[256];
  while (fgets(line, sizeof line, f) != NULL) {
    if (strncmp(line, "read_bytes:", 11) == 0)
      *read_bytes = strtoull(line + 11, NULL, 10);
    if (strncmp(line, "rchar:", 6) == 0)
      *rchar = strtoull(line + 6, NULL, 10);
  }
  fclose(f);
}

/* ---------------------------------------------------------------- output */

/* Names in the manifests and ops are plain identifiers and dotted paths; still, never emit a
 * quote or backslash that would break the JSON line. */
static void put_json_string(const char *s) {
  putchar('"');
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      printf("\\%c", c);
    else if (c < 0x20)
      printf("\\u%04x", c);
    else
      putchar(c);
  }
  putchar('"');
}

static void emit_head(const char *prog, const char *state) {
  fputs("{\"prog\": ", stdout);
  put_json_string(prog);
  fputs(", \"state\": ", stdout);
  put_json_string(state);
}

void bench_emit_time(const char *prog, const char *state, const char *op, double seconds,
                     uint64_t bytes) {
  emit_head(prog, state);
  fputs(", \"op\": ", stdout);
  put_json_string(op);
  printf(", \"seconds\": %.9f, \"bytes\": %llu}\n", seconds, (unsigned long long)bytes);
  fflush(stdout);
}

void bench_emit_value(const char *prog, const char *state, const char *key, double value) {
  emit_head(prog, state);
  fputs(", \"key\": ", stdout);
  put_json_string(key);
  printf(", \"value\": %.9g}\n", value);
  fflush(stdout);
}

void bench_emit_note(const char *prog, const char *state, const char *key, const char *text) {
  emit_head(prog, state);
  fputs(", \"key\": ", stdout);
  put_json_string(key);
  fputs(", \"note\": ", stdout);
  put_json_string(text);
  fputs("}\n", stdout);
  fflush(stdout);
}

void bench_emit_fingerprint(const char *prog, const bench_state *state) {
  emit_head(prog, state->name);
  /* As a string: JSON numbers beyond 2^53 lose precision in some readers. */
  printf(", \"fingerprint\": \"%llu\", \"bytes\": %zu, \"arrays\": %zu}\n",
         (unsigned long long)bench_state_fingerprint(state), state->total_bytes, state->n_arrays);
  fflush(stdout);
}

/* ---------------------------------------------------------------- file system */

void bench_write_file(const char *path, const char *buf, size_t n, bool durable) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    bench_die(true, "open %s", path);
  for (size_t done = 0; done < n;) {
    size_t len = n - done < BENCH_IO_CHUNK ? n - done : BENCH_IO_CHUNK;
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

void bench_read_file(const char *path, char *buf, size_t n) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    bench_die(true, "open %s", path);
  size_t done = 0;
  while (done < n) {
    size_t len = n - done < BENCH_IO_CHUNK ? n - done : BENCH_IO_CHUNK;
    ssize_t r = read(fd, buf + done, len);
    if (r < 0)
      bench_die(true, "read %s", path);
    if (r == 0)
      bench_die(false, "%s: %zu of %zu bytes, then end of file", path, done, n);
    done += (size_t)r;
  }
  close(fd);
}

char *bench_dots_to_slashes(const char *dotted) {
  char *s = dup_or_die(dotted);
  for (char *p = s; *p; p++)
    if (*p == '.')
      *p = '/';
  return s;
}

void bench_mkdirs(const char *path) {
  char *p = dup_or_die(path);
  for (char *s = p + 1; *s; s++) {
    if (*s != '/')
      continue;
    *s = '\0';
    if (mkdir(p, 0777) != 0 && errno != EEXIST)
      bench_die(true, "mkdir %s", p);
    *s = '/';
  }
  if (mkdir(p, 0777) != 0 && errno != EEXIST)
    bench_die(true, "mkdir %s", p);
  free(p);
}

static void fsync_path(const char *path, int flags) {
  int fd = open(path, flags | O_CLOEXEC);
  if (fd < 0)
    bench_die(true, "open %s for fsync", path);
  if (fsync(fd) != 0)
    bench_die(true, "fsync %s", path);
  close(fd);
}

void bench_fsync_file(const char *path) {
  fsync_path(path, O_RDONLY);
}
void bench_fsync_dir(const char *path) {
  fsync_path(path, O_RDONLY | O_DIRECTORY);
}

typedef void (*tree_fn)(const char *path, bool is_dir);

static void walk(const char *root, tree_fn fn) {
  DIR *d = opendir(root);
  if (d == NULL)
    bench_die(true, "opendir %s", root);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    size_t len = strlen(root) + strlen(e->d_name) + 2;
    char *child = malloc(len);
    if (child == NULL)
      bench_die(false, "out of memory");
    snprintf(child, len, "%s/%s", root, e->d_name);
    struct stat st;
    if (lstat(child, &st) != 0)
      bench_die(true, "lstat %s", child);
    if (S_ISDIR(st.st_mode))
      walk(child, fn);
    else if (S_ISREG(st.st_mode))
      fn(child, false);
    free(child);
  }
  closedir(d);
  fn(root, true);
}

static void fsync_entry(const char *path, bool is_dir) {
  fsync_path(path, is_dir ? O_RDONLY | O_DIRECTORY : O_RDONLY);
}

void bench_fsync_tree(const char *root) {
  walk(root, fsync_entry);
}

void bench_retire_file(const char *path) {
  if (truncate(path, 0) != 0)
    bench_die(true, "truncate %s", path);
}

static void retire_entry(const char *path, bool is_dir) {
  if (!is_dir)
    bench_retire_file(path);
}

void bench_retire_tree(const char *root) {
  static unsigned retired;
  walk(root, retire_entry);
  size_t len = strlen(root) + 32;
  char *aside = malloc(len);
  if (aside == NULL)
    bench_die(false, "out of memory");
  snprintf(aside, len, "%s.retired-%u-%u", root, (unsigned)getpid(), retired++);
  if (rename(root, aside) != 0)
    bench_die(true, "rename %s to %s", root, aside);
  free(aside);
}

double bench_drop_cache(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    bench_die(true, "open %s", path);
  /* DONTNEED skips dirty pages: write them back first. */
  if (fdatasync(fd) != 0)
    bench_die(true, "fdatasync %s", path);
  if (posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) != 0)
    bench_die(false, "fadvise %s", path);
  double resident = -1;
  struct stat st;
  if (fstat(fd, &st) == 0 && st.st_size > 0) {
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (map != MAP_FAILED) {
      long page = sysconf(_SC_PAGESIZE);
      size_t pages = ((size_t)st.st_size + (size_t)page - 1) / (size_t)page;
      unsigned char *vec = malloc(pages);
      if (vec != NULL && mincore(map, (size_t)st.st_size, vec) == 0) {
        size_t in = 0;
        for (size_t i = 0; i < pages; i++)
          in += vec[i] & 1u;
        resident = (double)in / (double)pages;
      }
      free(vec);
      munmap(map, (size_t)st.st_size);
    }
  } else if (fstat(fd, &st) == 0) {
    resident = 0;
  }
  close(fd);
  return resident;
}

static void drop_entry(const char *path, bool is_dir) {
  if (!is_dir)
    (void)bench_drop_cache(path);
}

void bench_drop_cache_tree(const char *root) {
  walk(root, drop_entry);
}
