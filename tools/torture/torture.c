/* ckpt-torture — SIGKILL a process saving through the CheckpointManager, then check what it left.
 *
 * The driver (default mode) runs N trials per atomicity mode (rename, commit file) in one
 * directory per mode. Each trial starts a child (this program, "child" mode) that opens an
 * async CheckpointManager (max_to_keep 3) on the directory, resumes after the latest step and
 * saves step after step until it is killed with SIGKILL:
 *
 *   - "time" kills: the driver sends SIGKILL after a random delay spanning the child's start and
 *     about three save cycles, so the moment falls in any part of a save in proportion to its
 *     duration (blocking part, background write, commit, retention);
 *   - "op" kills: the child's I/O hook (ckpt_io_set_fault, called before every file operation of
 *     the library) SIGKILLs its own process before the n-th operation of a chosen phase of its
 *     first save, so short phases (the commit, the deletions) are hit as often as long ones;
 *   - "edge" kills: the same, before or just after the n-th commit-protocol operation (a rename,
 *     a mkdir, an open or remove of commit_success.txt or _CHECKPOINT_METADATA) of the blocking,
 *     commit or retention phase: the exact points where a crash window would be. With
 *     --edge-trials, the first trials go through those of the commit and retention phases in
 *     turn (deterministic coverage), the rest are drawn at random.
 *
 * After each kill the driver checks the directory as a restarted job and a user would see it:
 *
 *   listing    the manager (reopened read-only) and `ckpt ls --json` list the same steps: the
 *              tool shows nothing as finalized that the library does not consider finalized;
 *   verify     `ckpt verify --json` passes, and covers every listed step;
 *   restore    the newest listed step restores bit-exactly (every item equals what the child
 *              built for that step: the state is a pure function of the step number);
 *   committed  no step the child logged as committed (its save's successor returned OK, so it
 *              was waited for; logged with fsync) is missing, unless retention may have deleted
 *              it: max_to_keep newer steps are listed;
 *   retention  when the child completed a save and its deletions, at most max_to_keep + 1 steps
 *              are listed (one more committed save whose deletions the kill prevented; kills
 *              between commit and deletions in a row legitimately leave more).
 *
 * A failure prints the seed, the mode, the trial, the kill, the check and the on-disk listing,
 * then the mode's directory is started afresh (a broken state would fail every later trial).
 * The exit status is 0 only when every trial passed. The last line is a plain summary. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ckpt/ckpt.h>

/* ================================================================ shared definitions */

#define KEEP 3 /* max_to_keep of the child's manager */
#define MAX_CYCLES 16

enum phase { PH_NONE, PH_OPEN, PH_BLOCKING, PH_WRITE, PH_COMMIT, PH_RETENTION, PH_COUNT };
static const char *const phase_names[PH_COUNT] = {"idle",  "open",   "blocking",
                                                  "write", "commit", "retention"};

enum kill_kind { KILL_TIME, KILL_OP, KILL_EDGE };
static const char *const kill_names[] = {"time", "op", "edge"};

/* The state shared by the driver and a child: a file both map. The driver sets the kill plan
 * before starting the child; the child reports what it did (phases, operation counts, the
 * operation it was killed before). Counters are atomics: the child's threads update them. */
typedef struct shared {
  /* ---- set by the driver */
  int32_t kill_kind;  /* enum kill_kind; KILL_TIME: the child never kills itself */
  int32_t kill_phase; /* enum phase */
  int32_t kill_n;     /* before the n-th (edge: protocol) operation of that phase */
  int32_t kill_after; /* edge: at the operation after the n-th instead */
  int32_t calibrate;  /* save this many steps, then exit 0 (0: save until killed) */
  int32_t n_small;    /* the state's shape */
  int64_t large_bytes;
  /* ---- written by the child */
  atomic_int main_phase; /* PH_OPEN, PH_BLOCKING or PH_NONE (computing) */
  atomic_int bg_phase;   /* what the background save did last */
  atomic_long cycle;     /* saves started by this child */
  atomic_long bg_cycle;  /* the save the background thread works on */
  atomic_llong bg_step;  /* its step */
  atomic_int armed;      /* edge kill "after": the next operation kills */
  atomic_int killed;     /* the child killed itself: phase + 1 */
  atomic_int fallback;   /* ... at a later phase than planned (the planned one was short) */
  /* Operations per save (cycle 0: the manager's opening) and phase: [all, protocol]. */
  atomic_int counts[MAX_CYCLES][PH_COUNT][2];
  atomic_llong t_open_ns, t_cycles_ns; /* calibration: open time, time of all saves */
  atomic_flag last_lock;
  char last_op[400]; /* the operation being started last ("rename <path>") */
} shared;

/* ================================================================ the state of a step */

/* splitmix64: the state's values and the driver's choices come from it. */
static uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

static const ckpt_dtype small_dtypes[] = {CKPT_DTYPE_FLOAT32, CKPT_DTYPE_INT32, CKPT_DTYPE_UINT8,
                                          CKPT_DTYPE_FLOAT64, CKPT_DTYPE_INT64, CKPT_DTYPE_INT16};
#define N_SMALL_DTYPES (sizeof small_dtypes / sizeof small_dtypes[0])

/* Small array i of step: 1..61 elements of a rotating dtype, every byte from the hash (floats
 * from small integers, so every value is finite and exact). */
static ckpt_array *small_array(int64_t step, int i) {
  ckpt_dtype dt = small_dtypes[(size_t)i % N_SMALL_DTYPES];
  int64_t n = 1 + (i * 7) % 61;
  ckpt_array *a = NULL;
  if (ckpt_array_new(dt, 1, &n, &a, NULL) != CKPT_OK)
    return NULL;
  unsigned char *p = ckpt_array_data(a);
  for (int64_t j = 0; j < n; j++) {
    uint64_t h = mix64(((uint64_t)step << 32) ^ ((uint64_t)i << 16) ^ (uint64_t)j);
    int32_t v = (int32_t)(h >> 40) - (1 << 23);
    if (dt == CKPT_DTYPE_FLOAT32) {
      float f = (float)v / 4.0f;
      memcpy(p + j * 4, &f, 4);
    } else if (dt == CKPT_DTYPE_FLOAT64) {
      double d = (double)v / 8.0;
      memcpy(p + j * 8, &d, 8);
    } else {
      size_t es = ckpt_dtype_size(dt);
      memcpy(p + (size_t)j * es, &h, es);
    }
  }
  return a;
}

/* Large array k: float32 values from (step, k, index), exact. */
static ckpt_array *large_array(int64_t step, int k, int64_t bytes) {
  int64_t n = bytes / 4 > 0 ? bytes / 4 : 1;
  ckpt_array *a = NULL;
  if (ckpt_array_new(CKPT_DTYPE_FLOAT32, 1, &n, &a, NULL) != CKPT_OK)
    return NULL;
  float *p = ckpt_array_data(a);
  uint64_t base = mix64((uint64_t)step * 2 + (uint64_t)k) % 100003u;
  for (int64_t j = 0; j < n; j++)
    p[j] = (float)((base + (uint64_t)j * 7u) % 100003u) * 0.5f;
  return a;
}

static char *small_name(int i, char buf[16]) {
  snprintf(buf, 16, "s%03d", i);
  return buf;
}

/* The PyTree item "params": n_small small arrays, two large ones, and the step. */
static ckpt_tree *make_params(int64_t step, int n_small, int64_t large_bytes) {
  ckpt_tree *t = ckpt_tree_new_dict();
  if (t == NULL)
    return NULL;
  bool ok = true;
  char name[16];
  for (int i = 0; ok && i < n_small; i++) {
    ckpt_array *a = small_array(step, i);
    ckpt_tree *leaf = a != NULL ? ckpt_tree_new_array(a) : NULL;
    if (leaf == NULL)
      ckpt_array_free(a);
    ok = leaf != NULL && ckpt_tree_dict_set(t, small_name(i, name), leaf, NULL) == CKPT_OK;
  }
  for (int k = 0; ok && k < 2; k++) {
    ckpt_array *a = large_array(step, k, large_bytes);
    ckpt_tree *leaf = a != NULL ? ckpt_tree_new_array(a) : NULL;
    if (leaf == NULL)
      ckpt_array_free(a);
    ok = leaf != NULL && ckpt_tree_dict_set(t, k == 0 ? "large0" : "large1", leaf, NULL) == CKPT_OK;
  }
  if (ok) {
    int64_t one = 1;
    ckpt_array *a = NULL;
    ok = ckpt_array_new(CKPT_DTYPE_INT64, 1, &one, &a, NULL) == CKPT_OK;
    if (ok) {
      memcpy(ckpt_array_data(a), &step, sizeof step);
      ckpt_tree *leaf = ckpt_tree_new_array(a);
      if (leaf == NULL)
        ckpt_array_free(a);
      ok = leaf != NULL && ckpt_tree_dict_set(t, "step", leaf, NULL) == CKPT_OK;
    }
  }
  if (!ok) {
    ckpt_tree_free(t);
    return NULL;
  }
  return t;
}

/* The JSON item "config". */
static cJSON *make_config(int64_t step) {
  cJSON *o = cJSON_CreateObject();
  cJSON *v = cJSON_CreateArray();
  if (o == NULL || v == NULL) {
    cJSON_Delete(o);
    cJSON_Delete(v);
    return NULL;
  }
  cJSON_AddItemToObject(o, "values", v);
  cJSON_AddNumberToObject(o, "step", (double)step);
  cJSON_AddStringToObject(o, "tag", "torture");
  for (int i = 0; i < 4; i++)
    cJSON_AddItemToArray(v,
                         cJSON_CreateNumber((double)(mix64((uint64_t)step + (uint64_t)i) >> 12)));
  return o;
}

/* The random-key item "rng": numpy's MT19937 seeded from the step, some draws in. */
static ckpt_numpy_rng *make_rng(int64_t step) {
  ckpt_numpy_rng *r = malloc(sizeof *r);
  if (r == NULL)
    return NULL;
  ckpt_numpy_rng_seed(r, (uint32_t)mix64((uint64_t)step));
  for (int64_t i = 0; i < step % 17; i++)
    ckpt_numpy_rng_next_u32(r);
  return r;
}

/* The Composite args of step: params, config, rng. NULL when out of memory. */
static ckpt_Composite *make_args(int64_t step, int n_small, int64_t large_bytes) {
  ckpt_Composite *c = ckpt_composite_new();
  ckpt_StandardSave *p = ckpt_StandardSave_new();
  ckpt_JsonSave *j = ckpt_JsonSave_new();
  ckpt_NumpyRandomKeySave *r = ckpt_NumpyRandomKeySave_new();
  if (c == NULL || p == NULL || j == NULL || r == NULL) {
    ckpt_args_delete(c != NULL ? &c->base : NULL);
    ckpt_args_delete(p != NULL ? &p->base : NULL);
    ckpt_args_delete(j != NULL ? &j->base : NULL);
    ckpt_args_delete(r != NULL ? &r->base : NULL);
    return NULL;
  }
  p->item = make_params(step, n_small, large_bytes);
  j->item = make_config(step);
  r->item = make_rng(step);
  bool ok = p->item != NULL && j->item != NULL && r->item != NULL;
  /* ckpt_composite_add takes the args in every case. */
  ok = ckpt_composite_add(c, "params", &p->base, NULL) == CKPT_OK && ok;
  ok = ckpt_composite_add(c, "config", &j->base, NULL) == CKPT_OK && ok;
  ok = ckpt_composite_add(c, "rng", &r->base, NULL) == CKPT_OK && ok;
  if (!ok) {
    ckpt_args_delete(&c->base);
    return NULL;
  }
  return c;
}

/* ================================================================ the child */

static shared *g_sh;
static _Thread_local bool on_main_thread;
static char g_dir[PATH_MAX];
static size_t g_dir_len;
static bool g_trace; /* CKPT_TORTURE_TRACE set: every operation on stderr */

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static const char *base_name(const char *path) {
  const char *s = strrchr(path, '/');
  return s != NULL ? s + 1 : path;
}

/* A commit-protocol operation: what orders a save's visibility. */
static bool is_protocol(ckpt_io_op op, const char *path) {
  if (op == CKPT_IO_RENAME || op == CKPT_IO_MKDIR)
    return true;
  const char *b = base_name(path);
  return (op == CKPT_IO_OPEN || op == CKPT_IO_REMOVE) &&
         (strcmp(b, CKPT_COMMIT_FILE) == 0 || strcmp(b, CKPT_CHECKPOINT_METADATA_FILE) == 0 ||
          strcmp(b, CKPT_COMMIT_FILE CKPT_TMP_SUFFIX) == 0 || /* the pending commit marker */
          strcmp(b, CKPT_CHECKPOINT_CHECKSUMS_FILE) == 0);
}

/* The phase of a background operation on path: the step directory being saved (write, then
 * commit from its first touch of the metadata or commit file), or another step / a directory
 * being deleted (retention). Phases only move forward within a save. */
static int bg_phase_of(const char *path, int current, long long step) {
  int ph = current < PH_WRITE ? PH_WRITE : current;
  if (strncmp(path, g_dir, g_dir_len) == 0 && path[g_dir_len] == '/') {
    const char *comp = path + g_dir_len + 1;
    char *end;
    long long s = strtoll(comp, &end, 10);
    size_t clen = strcspn(comp, "/");
    bool deleting = memmem(comp, clen, "-deleting", 9) != NULL;
    if (end != comp && (s != step || deleting))
      return PH_RETENTION;
  }
  const char *b = base_name(path);
  if (strcmp(b, CKPT_COMMIT_FILE) == 0 || strcmp(b, "_CHECKPOINT_METADATA") == 0)
    ph = ph < PH_COMMIT ? PH_COMMIT : ph;
  return ph;
}

static void note_last(ckpt_io_op op, const char *path) {
  while (atomic_flag_test_and_set(&g_sh->last_lock))
    ;
  snprintf(g_sh->last_op, sizeof g_sh->last_op, "%s %s", ckpt_io_op_name(op), path);
  atomic_flag_clear(&g_sh->last_lock);
}

static void die_here(int phase, bool fallback) {
  atomic_store(&g_sh->fallback, fallback ? 1 : 0);
  atomic_store(&g_sh->killed, phase + 1);
  kill(getpid(), SIGKILL);
  for (;;)
    pause();
}

/* Called by libckpt before every file operation, from any thread. */
static int io_hook(void *arg, ckpt_io_op op, const char *path) {
  (void)arg;
  shared *sh = g_sh;
  if (path == NULL)
    path = "?";
  int phase;
  long cyc;
  if (on_main_thread) {
    phase = atomic_load(&sh->main_phase);
    cyc = atomic_load(&sh->cycle);
    if (phase == PH_BLOCKING)
      atomic_store(&sh->bg_phase, PH_NONE); /* the save waited for the previous one */
  } else {
    cyc = atomic_load(&sh->bg_cycle);
    int cur = atomic_load(&sh->bg_phase);
    phase = bg_phase_of(path, cur, atomic_load(&sh->bg_step));
    if (phase != cur)
      atomic_store(&sh->bg_phase, phase);
  }
  note_last(op, path);
  if (phase <= PH_NONE || phase >= PH_COUNT)
    return 0;
  bool proto = is_protocol(op, path);
  if (g_trace)
    fprintf(stderr, "trace: cycle %ld %s %s%s %s\n", cyc, phase_names[phase], proto ? "*" : "",
            ckpt_io_op_name(op), path);
  if (atomic_load(&sh->armed))
    die_here(phase, false);
  int idx_all = -1, idx_proto = -1;
  if (cyc >= 0 && cyc < MAX_CYCLES) {
    idx_all = atomic_fetch_add(&sh->counts[cyc][phase][0], 1);
    if (proto)
      idx_proto = atomic_fetch_add(&sh->counts[cyc][phase][1], 1);
  }
  if (sh->kill_kind == KILL_TIME)
    return 0;
  /* Where this operation is, and where the kill was planned: (cycle, phase). */
  long tcyc = sh->kill_phase == PH_OPEN ? 0 : 1;
  bool past = cyc > tcyc || (cyc == tcyc && phase > sh->kill_phase);
  if (past)
    die_here(phase, true);
  if (cyc == tcyc && phase == sh->kill_phase) {
    int idx = sh->kill_kind == KILL_EDGE ? idx_proto : idx_all;
    if (idx == sh->kill_n) {
      if (sh->kill_kind == KILL_EDGE && sh->kill_after)
        atomic_store(&sh->armed, 1);
      else
        die_here(phase, false);
    }
  }
  return 0;
}

static int child_fail(const char *what, const ckpt_error *err) {
  fprintf(stderr, "ckpt-torture child: %s: %s: %s\n", what, ckpt_status_name(err->code),
          err->message);
  return 3;
}

static shared *map_shared(const char *path) {
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0)
    return NULL;
  void *p = mmap(NULL, sizeof(shared), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  return p == MAP_FAILED ? NULL : p;
}

/* Appends step to the committed log, durably, before going on. */
static bool log_committed(int fd, int64_t step) {
  char line[32];
  int n = snprintf(line, sizeof line, "%" PRId64 "\n", step);
  return write(fd, line, (size_t)n) == n && fsync(fd) == 0;
}

/* child DIR MODE SHARED LOG: save steps after the latest one until killed (or, calibrating,
 * save that many and exit 0). */
static int child_main(const char *dir, const char *mode, const char *shared_path,
                      const char *log_path) {
  on_main_thread = true;
  g_trace = getenv("CKPT_TORTURE_TRACE") != NULL;
  g_sh = map_shared(shared_path);
  if (g_sh == NULL) {
    perror("ckpt-torture child: shared state");
    return 3;
  }
  snprintf(g_dir, sizeof g_dir, "%s", dir);
  g_dir_len = strlen(g_dir);
  int log_fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    perror("ckpt-torture child: log");
    return 3;
  }
  long long t0 = now_ns();
  atomic_store(&g_sh->main_phase, PH_OPEN);
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_io *io = NULL;
  if (ckpt_io_new(&io, &err) != CKPT_OK)
    return child_fail("ckpt_io_new", &err);
  ckpt_io_set_fault(io, io_hook, NULL);
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT; /* async, Orbax's defaults */
  o.max_to_keep = KEEP;
  o.atomicity =
      strcmp(mode, "commit_file") == 0 ? CKPT_ATOMICITY_COMMIT_FILE : CKPT_ATOMICITY_RENAME;
  o.io = io;
  ckpt_manager *m = NULL;
  if (ckpt_manager_new(dir, &o, &m, &err) != CKPT_OK)
    return child_fail("opening the manager", &err);
  atomic_store(&g_sh->t_open_ns, now_ns() - t0);
  int64_t latest;
  int64_t step = ckpt_manager_latest_step(m, &latest) ? latest + 1 : 0;
  bool pending = false; /* a save of this process not yet known to be committed */
  long long t_saves = now_ns();
  for (int32_t saves = 0;; saves++, step++) {
    atomic_store(&g_sh->main_phase, PH_NONE);
    ckpt_Composite *args = make_args(step, g_sh->n_small, g_sh->large_bytes);
    if (args == NULL) {
      fprintf(stderr, "ckpt-torture child: out of memory building step %" PRId64 "\n", step);
      return 3;
    }
    /* The previous save (and its deletions) finish; only then is it logged as committed. The
     * background part overlaps the building of the next state, as in a training loop. */
    if (ckpt_manager_wait_until_finished(m, &err) != CKPT_OK)
      return child_fail("waiting for the previous save", &err);
    if (pending && !log_committed(log_fd, step - 1)) {
      perror("ckpt-torture child: writing the log");
      return 3;
    }
    pending = false;
    if (g_sh->calibrate > 0 && saves == g_sh->calibrate) {
      atomic_store(&g_sh->t_cycles_ns, now_ns() - t_saves);
      ckpt_args_delete(&args->base);
      if (ckpt_manager_close(m, &err) != CKPT_OK)
        return child_fail("closing the manager", &err);
      ckpt_io_free(io);
      return 0;
    }
    long cyc = atomic_fetch_add(&g_sh->cycle, 1) + 1;
    atomic_store(&g_sh->bg_step, (long long)step);
    atomic_store(&g_sh->bg_cycle, cyc);
    atomic_store(&g_sh->bg_phase, PH_NONE);
    atomic_store(&g_sh->main_phase, PH_BLOCKING);
    bool saved = false;
    ckpt_status st = ckpt_manager_save(m, step, &args->base, NULL, false, &saved, &err);
    atomic_store(&g_sh->main_phase, PH_NONE);
    ckpt_args_delete(&args->base);
    if (st != CKPT_OK)
      return child_fail("saving", &err);
    if (!saved) {
      fprintf(stderr, "ckpt-torture child: step %" PRId64 " was not saved\n", step);
      return 3;
    }
    pending = true;
  }
}

/* ================================================================ the driver */

typedef struct options {
  int trials; /* per mode */
  uint64_t seed;
  const char *tool; /* the ckpt tool */
  const char *base; /* where the modes' directories go */
  bool modes[2];    /* rename, commit_file */
  int edge_trials;  /* the first trials of each mode kill at the commit/retention protocol
                       points in turn (-1: all of them) */
  int n_small;
  int64_t large_bytes;
  bool keep;    /* keep the directories */
  bool verbose; /* one line per trial */
} options;

static const char *const mode_names[2] = {"rename", "commit_file"};

/* A text buffer for reports. */
typedef struct sbuf {
  char *s;
  size_t len, cap;
} sbuf;

__attribute__((format(printf, 2, 3))) static void sb_printf(sbuf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *t = NULL;
  int n = vasprintf(&t, fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  if (b->len + (size_t)n + 1 > b->cap) {
    size_t cap = (b->cap + (size_t)n + 1) * 2;
    char *s = realloc(b->s, cap);
    if (s == NULL) {
      free(t);
      return;
    }
    b->s = s;
    b->cap = cap;
  }
  memcpy(b->s + b->len, t, (size_t)n + 1);
  b->len += (size_t)n;
  free(t);
}

static void sb_free(sbuf *b) {
  free(b->s);
  memset(b, 0, sizeof *b);
}

static char *fmt_alloc(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *fmt_alloc(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  if (vasprintf(&s, fmt, ap) < 0) {
    fprintf(stderr, "ckpt-torture: out of memory\n");
    exit(2);
  }
  va_end(ap);
  return s;
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return NULL;
  sbuf b = {0};
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0)
    sb_printf(&b, "%.*s", (int)n, buf);
  fclose(f);
  if (b.s == NULL)
    b.s = strdup("");
  return b.s;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

static void rmtree(const char *path) {
  nftw(path, rm_entry, 32, FTW_DEPTH | FTW_PHYS);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names of a directory (no . and ..); *n of them. */
static char **list_names(const char *dir, size_t *n) {
  *n = 0;
  DIR *d = opendir(dir);
  if (d == NULL)
    return NULL;
  char **v = NULL;
  size_t cap = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    if (*n == cap) {
      cap = cap ? cap * 2 : 16;
      char **nv = realloc(v, cap * sizeof *v);
      if (nv == NULL)
        break;
      v = nv;
    }
    v[(*n)++] = strdup(e->d_name);
  }
  closedir(d);
  if (*n > 0)
    qsort(v, *n, sizeof *v, cmp_str);
  return v;
}

static void free_names(char **v, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

/* The on-disk state for a report: each entry of the directory, with the entries of each
 * subdirectory and the commit timestamp of its _CHECKPOINT_METADATA when it has one. */
static void describe_dir(sbuf *b, const char *dir) {
  size_t n;
  char **names = list_names(dir, &n);
  sb_printf(b, "  on disk, %s:\n", dir);
  for (size_t i = 0; i < n; i++) {
    char *p = fmt_alloc("%s/%s", dir, names[i]);
    struct stat st;
    if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
      size_t m;
      char **sub = list_names(p, &m);
      sb_printf(b, "    %s/ [", names[i]);
      for (size_t j = 0; j < m; j++)
        sb_printf(b, "%s%s", j ? " " : "", sub[j]);
      sb_printf(b, "]");
      char *meta_path = fmt_alloc("%s/_CHECKPOINT_METADATA", p);
      char *meta = slurp(meta_path);
      if (meta != NULL) {
        const char *c = strstr(meta, "\"commit_timestamp_nsecs\"");
        sb_printf(b, " metadata %s",
                  c != NULL ? "with commit_timestamp_nsecs" : "without commit time");
      }
      free(meta);
      free(meta_path);
      sb_printf(b, "\n");
      free_names(sub, m);
    } else {
      sb_printf(b, "    %s\n", names[i]);
    }
    free(p);
  }
  free_names(names, n);
}

/* ---------------------------------------------------------------- processes */

static char g_self[PATH_MAX];

/* Starts this program as a child of the given mode; output to err_path. */
static pid_t spawn_child(const char *dir, const char *mode, const char *shared_path,
                         const char *log_path, const char *err_path) {
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
      close(fd);
    }
    execl(g_self, g_self, "child", dir, mode, shared_path, log_path, (char *)NULL);
    _exit(127);
  }
  return pid;
}

static void sleep_ns(long long ns) {
  struct timespec ts = {(time_t)(ns / 1000000000LL), (long)(ns % 1000000000LL)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

/* Waits for pid at most timeout_ns; SIGKILLs it then. Returns the wait status. */
static int wait_bounded(pid_t pid, long long timeout_ns, bool *timed_out) {
  long long end = now_ns() + timeout_ns;
  int status = 0;
  *timed_out = false;
  for (;;) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid)
      return status;
    if (r < 0 && errno != EINTR)
      return status;
    if (now_ns() > end) {
      *timed_out = true;
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return status;
    }
    sleep_ns(2000000);
  }
}

/* Runs the ckpt tool with args and dir; its stdout in *out (malloc'ed). Returns its exit status
 * (128 + signal when killed, -1 when it could not run). */
static int run_tool(const options *o, const char *args, const char *dir, const char *tmp,
                    char **out) {
  char *out_path = fmt_alloc("%s/tool.out", tmp);
  char *err_path = fmt_alloc("%s/tool.err", tmp);
  char *cmd = fmt_alloc("'%s' %s '%s' >'%s' 2>'%s'", o->tool, args, dir, out_path, err_path);
  int st = system(cmd);
  int rc = st == -1 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  *out = slurp(out_path);
  if (rc != 0) {
    char *e = slurp(err_path);
    if (e != NULL && e[0] != '\0') {
      char *both = fmt_alloc("%s%s", *out != NULL ? *out : "", e);
      free(*out);
      *out = both;
    }
    free(e);
  }
  free(cmd);
  free(out_path);
  free(err_path);
  return rc;
}

/* ---------------------------------------------------------------- the checks */

typedef struct step_set {
  int64_t v[64];
  size_t n;
} step_set;

static bool set_has(const step_set *s, int64_t x) {
  for (size_t i = 0; i < s->n; i++)
    if (s->v[i] == x)
      return true;
  return false;
}

static void set_add(step_set *s, int64_t x) {
  if (!set_has(s, x) && s->n < sizeof s->v / sizeof s->v[0])
    s->v[s->n++] = x;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static void set_print(sbuf *b, const step_set *s) {
  step_set t = *s;
  qsort(t.v, t.n, sizeof t.v[0], cmp_i64);
  sb_printf(b, "{");
  for (size_t i = 0; i < t.n; i++)
    sb_printf(b, "%s%" PRId64, i ? ", " : "", t.v[i]);
  sb_printf(b, "}");
}

/* The first difference between the restored value of step and the state built for it; NULL
 * when they are bit-identical (malloc'ed message otherwise). */
static char *compare_restored(const ckpt_value *v, int64_t step, const options *o) {
  if (v->kind != CKPT_VALUE_COMPOSITE)
    return fmt_alloc("restore returned a %s, not a Composite", ckpt_value_kind_name(v->kind));
  if (v->u.composite.count != 3)
    return fmt_alloc("restore returned %zu items, not 3", v->u.composite.count);
  const ckpt_value *p = ckpt_value_item_get(v, "params");
  const ckpt_value *c = ckpt_value_item_get(v, "config");
  const ckpt_value *r = ckpt_value_item_get(v, "rng");
  if (p == NULL || p->kind != CKPT_VALUE_TREE || c == NULL || c->kind != CKPT_VALUE_JSON ||
      r == NULL || r->kind != CKPT_VALUE_NUMPY_RNG)
    return fmt_alloc("restore returned other items or kinds than params/config/rng");
  char *msg = NULL;
  ckpt_tree *want = make_params(step, o->n_small, o->large_bytes);
  if (want == NULL)
    return fmt_alloc("out of memory");
  if (!ckpt_tree_equal(want, p->u.tree)) {
    msg = fmt_alloc("item params differs (structure)");
    for (size_t i = 0; i < ckpt_tree_count(want); i++) {
      const char *key = ckpt_tree_key(want, i);
      ckpt_tree *got = ckpt_tree_dict_get(p->u.tree, key);
      if (got == NULL || !ckpt_tree_equal(ckpt_tree_child(want, i), got)) {
        free(msg);
        msg = fmt_alloc("item params: leaf '%s' %s", key,
                        got == NULL ? "is missing" : "differs from the state of that step");
        break;
      }
    }
  }
  ckpt_tree_free(want);
  if (msg != NULL)
    return msg;
  cJSON *cfg = make_config(step);
  bool same = cfg != NULL && cJSON_Compare(cfg, c->u.json, true);
  cJSON_Delete(cfg);
  if (!same)
    return fmt_alloc("item config differs from the state of that step");
  ckpt_numpy_rng *rng = make_rng(step);
  same = rng != NULL && ckpt_numpy_rng_equal(rng, r->u.numpy_rng);
  free(rng);
  if (!same)
    return fmt_alloc("item rng differs from the state of that step");
  return NULL;
}

typedef struct check_result {
  const char *failed; /* the name of the first check that failed; NULL: all passed */
  sbuf detail;
  int64_t listed; /* steps the manager lists */
  int64_t newest; /* -1: none */
} check_result;

__attribute__((format(printf, 3, 4))) static void fail(check_result *r, const char *check,
                                                       const char *fmt, ...) {
  if (r->failed == NULL)
    r->failed = check;
  va_list ap;
  va_start(ap, fmt);
  char *t = NULL;
  if (vasprintf(&t, fmt, ap) >= 0) {
    sb_printf(&r->detail, "  check %s failed: %s\n", check, t);
    free(t);
  }
  va_end(ap);
}

/* Everything checked after a kill (see the header comment). */
static void check_dir(const options *o, int mode, const char *dir, const char *log_path,
                      const char *tmp, bool full_cycle, check_result *r) {
  memset(r, 0, sizeof *r);
  r->newest = -1;
  ckpt_error err = CKPT_ERROR_INIT;

  /* The library's view: a manager reopened read-only (it changes nothing on disk). */
  ckpt_manager_options mo = CKPT_MANAGER_OPTIONS_INIT;
  mo.max_to_keep = KEEP;
  mo.read_only = true;
  mo.atomicity = mode == 1 ? CKPT_ATOMICITY_COMMIT_FILE : CKPT_ATOMICITY_RENAME;
  ckpt_manager *m = NULL;
  step_set lib = {0};
  if (ckpt_manager_new(dir, &mo, &m, &err) != CKPT_OK) {
    fail(r, "listing", "reopening the manager: %s", err.message);
    return;
  }
  int64_t *steps = NULL;
  size_t n_steps = 0;
  if (ckpt_manager_all_steps(m, &steps, &n_steps, &err) != CKPT_OK)
    fail(r, "listing", "listing the steps: %s", err.message);
  for (size_t i = 0; i < n_steps; i++)
    set_add(&lib, steps[i]);
  free(steps);
  r->listed = (int64_t)lib.n;

  /* The tool's view: ckpt ls lists as finalized exactly what the library lists. */
  char *out = NULL;
  int rc = run_tool(o, "ls --json", dir, tmp, &out);
  step_set tool = {0}, tool_all = {0};
  cJSON *j = out != NULL ? cJSON_Parse(out) : NULL;
  cJSON *js = cJSON_GetObjectItemCaseSensitive(j, "steps");
  if (rc != 0 || !cJSON_IsArray(js)) {
    fail(r, "listing", "ckpt ls --json exited %d: %.600s", rc, out != NULL ? out : "");
  } else {
    cJSON *e;
    cJSON_ArrayForEach(e, js) {
      cJSON *s = cJSON_GetObjectItemCaseSensitive(e, "step");
      cJSON *f = cJSON_GetObjectItemCaseSensitive(e, "finalized");
      if (!cJSON_IsNumber(s))
        continue;
      set_add(&tool_all, (int64_t)s->valuedouble);
      if (cJSON_IsTrue(f))
        set_add(&tool, (int64_t)s->valuedouble);
    }
    bool same = tool.n == lib.n;
    for (size_t i = 0; same && i < tool.n; i++)
      same = set_has(&lib, tool.v[i]);
    if (!same) {
      sbuf t = {0};
      sb_printf(&t, "ckpt ls lists as finalized ");
      set_print(&t, &tool);
      sb_printf(&t, ", the manager lists ");
      set_print(&t, &lib);
      fail(r, "listing", "%s", t.s);
      sb_free(&t);
    }
  }
  cJSON_Delete(j);
  free(out);

  /* ckpt verify passes and covers every step either lists. */
  step_set listed = lib;
  for (size_t i = 0; i < tool.n; i++)
    set_add(&listed, tool.v[i]);
  if (listed.n > 0) {
    rc = run_tool(o, "verify --json --no-progress", dir, tmp, &out);
    j = out != NULL ? cJSON_Parse(out) : NULL;
    cJSON *cps = cJSON_GetObjectItemCaseSensitive(j, "checkpoints");
    step_set verified = {0};
    cJSON *e;
    cJSON_ArrayForEach(e, cps) {
      cJSON *s = cJSON_GetObjectItemCaseSensitive(e, "step");
      cJSON *ok = cJSON_GetObjectItemCaseSensitive(e, "ok");
      cJSON *skipped = cJSON_GetObjectItemCaseSensitive(e, "skipped");
      if (cJSON_IsNumber(s) && cJSON_IsTrue(ok) && !cJSON_IsTrue(skipped))
        set_add(&verified, (int64_t)s->valuedouble);
    }
    for (size_t i = 0; i < listed.n; i++)
      if (!set_has(&verified, listed.v[i]))
        fail(r, "verify", "step %" PRId64 " is listed but ckpt verify does not pass it",
             listed.v[i]);
    if (rc != 0)
      fail(r, "verify", "ckpt verify exited %d", rc);
    if (r->failed != NULL && strcmp(r->failed, "verify") == 0) {
      /* What verify found, for the steps it did not pass (skipped directories are fine). */
      cJSON_ArrayForEach(e, cps) {
        cJSON *s = cJSON_GetObjectItemCaseSensitive(e, "step");
        if (!cJSON_IsNumber(s) || !set_has(&listed, (int64_t)s->valuedouble) ||
            set_has(&verified, (int64_t)s->valuedouble))
          continue;
        cJSON *why = cJSON_GetObjectItemCaseSensitive(e, "skip_reason"), *pb;
        if (cJSON_IsString(why))
          sb_printf(&r->detail, "  ckpt verify, step %" PRId64 ": skipped: %s\n",
                    (int64_t)s->valuedouble, why->valuestring);
        cJSON_ArrayForEach(pb, cJSON_GetObjectItemCaseSensitive(e, "problems")) {
          cJSON *reason = cJSON_GetObjectItemCaseSensitive(pb, "reason");
          sb_printf(&r->detail, "  ckpt verify, step %" PRId64 ": %s\n", (int64_t)s->valuedouble,
                    cJSON_IsString(reason) ? reason->valuestring : "(no reason)");
        }
      }
      if (cps == NULL)
        sb_printf(&r->detail, "  ckpt verify said: %.600s\n", out != NULL ? out : "");
    }
    cJSON_Delete(j);
    free(out);
  }

  /* The newest step restores bit-exactly. */
  int64_t newest;
  if (ckpt_manager_latest_step(m, &newest)) {
    r->newest = newest;
    ckpt_value v = {0};
    if (ckpt_manager_restore(m, newest, NULL, &v, &err) != CKPT_OK) {
      fail(r, "restore", "restoring step %" PRId64 ": %s", newest, err.message);
    } else {
      char *diff = compare_restored(&v, newest, o);
      if (diff != NULL)
        fail(r, "restore", "step %" PRId64 ": %s", newest, diff);
      free(diff);
    }
    ckpt_value_free(&v);
  }
  ckpt_error_clear(&err);
  if (ckpt_manager_close(m, &err) != CKPT_OK)
    fail(r, "listing", "closing the read-only manager: %s", err.message);

  /* No committed step lost: each logged step is listed, or max_to_keep newer ones are. */
  char *log = slurp(log_path);
  for (char *line = log; line != NULL && *line != '\0';) {
    char *end;
    int64_t s = strtoll(line, &end, 10);
    if (end == line)
      break;
    size_t newer = 0;
    for (size_t i = 0; i < lib.n; i++)
      newer += lib.v[i] > s;
    if (!set_has(&lib, s) && newer < KEEP)
      fail(r, "committed",
           "step %" PRId64 " was committed, is gone, and only %zu newer steps are listed", s,
           newer);
    line = *end == '\n' ? end + 1 : end;
  }
  free(log);

  /* Retention: once the child finished a save with its deletions (it logged a step), at most
   * one more save can have committed without them. Without such a save the count may grow:
   * a save's deletions run after its commit, and a kill in between keeps every step. */
  if (full_cycle && lib.n > KEEP + 1)
    fail(r, "retention",
         "%zu steps listed with max_to_keep %d, after the child completed a save and its "
         "deletions",
         lib.n, KEEP);
}

/* ---------------------------------------------------------------- trials */

typedef struct plan {
  int kind, phase, n, after;
  long long delay_ns; /* KILL_TIME */
} plan;

typedef struct mode_state {
  int mode;
  char *dir, *log, *tmp, *shared_path, *err_path;
  shared *sh;
  int max_all[PH_COUNT], max_proto[PH_COUNT]; /* operations per save, from the calibration */
  long long t_startup_ns, t_cycle_ns;
  int trials, failures;
  int kills[PH_COUNT][3]; /* by phase and kind */
  int failed_checks[5];   /* listing, verify, restore, committed, retention */
  plan edges[256];
  int n_edges;
} mode_state;

static const char *const check_names[5] = {"listing", "verify", "restore", "committed",
                                           "retention"};

static void reset_shared(mode_state *ms, const options *o) {
  memset(ms->sh, 0, sizeof *ms->sh);
  ms->sh->n_small = o->n_small;
  ms->sh->large_bytes = o->large_bytes;
}

static const char *ordinal_suffix(int k) {
  if (k % 100 >= 11 && k % 100 <= 13)
    return "th";
  return k % 10 == 1 ? "st" : k % 10 == 2 ? "nd" : k % 10 == 3 ? "rd" : "th";
}

static void describe_plan(sbuf *b, const plan *p) {
  sb_printf(b, "%s", kill_names[p->kind]);
  if (p->kind == KILL_TIME)
    sb_printf(b, " after %.1f ms", (double)p->delay_ns / 1e6);
  else
    sb_printf(b, " %s the %d%s %soperation of the %s phase of the first save",
              p->kind == KILL_EDGE && p->after ? "just after" : "before", p->n + 1,
              ordinal_suffix(p->n + 1), p->kind == KILL_EDGE ? "protocol " : "",
              phase_names[p->phase]);
}

static void report_failure(const options *o, mode_state *ms, int trial, const plan *p,
                           const char *killed_at, const char *last_op, check_result *r) {
  sbuf b = {0};
  sb_printf(&b, "FAIL seed=%" PRIu64 " mode=%s trial=%d check=%s\n", o->seed, mode_names[ms->mode],
            trial, r->failed);
  sb_printf(&b, "  kill: ");
  describe_plan(&b, p);
  sb_printf(&b, "; landed in %s, before \"%s\"\n", killed_at, last_op);
  sb_printf(&b, "%s", r->detail.s != NULL ? r->detail.s : "");
  describe_dir(&b, ms->dir);
  char *log = slurp(ms->log);
  sb_printf(&b, "  committed log: ");
  for (char *c = log; c != NULL && *c != '\0'; c++)
    sb_printf(&b, "%c", *c == '\n' ? ' ' : *c);
  sb_printf(&b, "\n");
  free(log);
  fputs(b.s, stdout);
  fflush(stdout);
  sb_free(&b);
}

/* A fresh directory and a calibration run: a child saves KEEP + 2 steps and exits (so the
 * deletions run too); it gives the number of operations per phase of a save and the timings.
 * The directory it leaves (KEEP steps) is where the trials start. */
static bool setup_mode(const options *o, mode_state *ms) {
  rmtree(ms->dir);
  if (mkdir(ms->dir, 0755) != 0) {
    fprintf(stderr, "ckpt-torture: mkdir %s: %s\n", ms->dir, strerror(errno));
    return false;
  }
  int fd = open(ms->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0)
    close(fd);
  reset_shared(ms, o);
  ms->sh->kill_kind = KILL_TIME;
  ms->sh->calibrate = KEEP + 2;
  long long t0 = now_ns();
  pid_t pid = spawn_child(ms->dir, mode_names[ms->mode], ms->shared_path, ms->log, ms->err_path);
  bool timed_out;
  int status = wait_bounded(pid, 600LL * 1000000000LL, &timed_out);
  long long total = now_ns() - t0;
  if (timed_out || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    char *e = slurp(ms->err_path);
    printf("FAIL seed=%" PRIu64 " mode=%s calibration run %s: %s\n", o->seed, mode_names[ms->mode],
           timed_out ? "timed out" : "failed", e != NULL ? e : "");
    free(e);
    return false;
  }
  for (int ph = 0; ph < PH_COUNT; ph++) {
    ms->max_all[ph] = ms->max_proto[ph] = 0;
    for (int c = ph == PH_OPEN ? 0 : 1; c <= (ph == PH_OPEN ? 0 : KEEP + 2); c++) {
      int a = atomic_load(&ms->sh->counts[c][ph][0]), p = atomic_load(&ms->sh->counts[c][ph][1]);
      ms->max_all[ph] = a > ms->max_all[ph] ? a : ms->max_all[ph];
      ms->max_proto[ph] = p > ms->max_proto[ph] ? p : ms->max_proto[ph];
    }
  }
  long long cycles = atomic_load(&ms->sh->t_cycles_ns);
  ms->t_cycle_ns = cycles / (KEEP + 2);
  ms->t_startup_ns = total - cycles;
  /* Every commit-protocol point of the commit and the deletions, before and just after, the
   * two phases interleaved so that a short sweep covers the first points of both. */
  ms->n_edges = 0;
  const int edge_phases[] = {PH_COMMIT, PH_RETENTION};
  int most = ms->max_proto[PH_COMMIT] > ms->max_proto[PH_RETENTION] ? ms->max_proto[PH_COMMIT]
                                                                    : ms->max_proto[PH_RETENTION];
  for (int n = 0; n < most; n++)
    for (int after = 0; after < 2; after++)
      for (size_t k = 0; k < 2; k++)
        if (n < ms->max_proto[edge_phases[k]] && ms->n_edges < 256)
          ms->edges[ms->n_edges++] = (plan){KILL_EDGE, edge_phases[k], n, after, 0};
  return true;
}

static void print_calibration(const mode_state *ms) {
  printf("%s: start-up %.0f ms, one save %.0f ms; operations per save (protocol):",
         mode_names[ms->mode], (double)ms->t_startup_ns / 1e6, (double)ms->t_cycle_ns / 1e6);
  for (int ph = PH_OPEN; ph < PH_COUNT; ph++)
    printf(" %s %d (%d)", phase_names[ph], ms->max_all[ph], ms->max_proto[ph]);
  printf("\n");
}

static plan choose_plan(const mode_state *ms, int trial, int edge_trials, uint64_t *rs) {
  int sweep = edge_trials < 0 || edge_trials > ms->n_edges ? ms->n_edges : edge_trials;
  if (trial < sweep)
    return ms->edges[trial];
  plan p = {KILL_TIME, PH_NONE, 0, 0, 0};
  *rs = mix64(*rs);
  unsigned r = (unsigned)(*rs % 100);
  *rs = mix64(*rs);
  uint64_t r2 = *rs;
  *rs = mix64(*rs);
  uint64_t r3 = *rs;
  if (r < 45) {
    long long span = ms->t_startup_ns + 3 * ms->t_cycle_ns;
    p.delay_ns = (long long)(r2 % (uint64_t)(span > 0 ? span : 1));
  } else if (r < 80) {
    static const int weights[PH_COUNT] = {0, 5, 20, 25, 25, 25};
    int w = (int)(r2 % 100), ph = PH_OPEN;
    while (ph < PH_COUNT - 1 && w >= weights[ph]) {
      w -= weights[ph];
      ph++;
    }
    p.kind = KILL_OP;
    p.phase = ph;
    p.n = ms->max_all[ph] > 0 ? (int)(r3 % (uint64_t)ms->max_all[ph]) : 0;
  } else {
    static const int phases[] = {PH_BLOCKING, PH_COMMIT, PH_RETENTION};
    p.kind = KILL_EDGE;
    p.phase = phases[r2 % 3];
    p.n = ms->max_proto[p.phase] > 0 ? (int)(r3 % (uint64_t)ms->max_proto[p.phase]) : 0;
    p.after = (int)((r3 >> 32) & 1);
  }
  return p;
}

static size_t count_lines(const char *path) {
  char *t = slurp(path);
  size_t n = 0;
  for (char *c = t; c != NULL && *c != '\0'; c++)
    n += *c == '\n';
  free(t);
  return n;
}

/* One trial: start, kill, check. False when a check failed. */
static bool run_trial(const options *o, mode_state *ms, int trial, const plan *p) {
  reset_shared(ms, o);
  ms->sh->kill_kind = p->kind;
  ms->sh->kill_phase = p->phase;
  ms->sh->kill_n = p->n;
  ms->sh->kill_after = p->after;
  size_t logged_before = count_lines(ms->log);
  pid_t pid = spawn_child(ms->dir, mode_names[ms->mode], ms->shared_path, ms->log, ms->err_path);
  int status;
  bool timed_out = false;
  if (p->kind == KILL_TIME) {
    sleep_ns(p->delay_ns);
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  } else {
    /* The child kills itself; bounded in case it never reaches the planned operation. */
    long long bound = 20 * (ms->t_startup_ns + 2 * ms->t_cycle_ns);
    status = wait_bounded(pid, bound > 30000000000LL ? bound : 30000000000LL, &timed_out);
  }
  /* Where the kill landed. */
  int killed = atomic_load(&ms->sh->killed);
  int phase;
  if (killed > 0) {
    phase = killed - 1;
  } else {
    int bg = atomic_load(&ms->sh->bg_phase), mp = atomic_load(&ms->sh->main_phase);
    phase = bg != PH_NONE ? bg : mp;
  }
  ms->kills[phase][p->kind]++;
  char last_op[sizeof ms->sh->last_op];
  memcpy(last_op, ms->sh->last_op, sizeof last_op);
  last_op[sizeof last_op - 1] = '\0';
  char killed_at[96];
  snprintf(killed_at, sizeof killed_at, "%s%s%s", phase_names[phase],
           atomic_load(&ms->sh->fallback) ? " (the planned phase was shorter)" : "",
           timed_out ? " (timed out: killed by the driver)" : "");

  check_result r;
  if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
    memset(&r, 0, sizeof r);
    char *e = slurp(ms->err_path);
    r.failed = "child";
    sb_printf(&r.detail, "  the child was not killed: wait status %d; its output: %s\n", status,
              e != NULL ? e : "");
    free(e);
  } else {
    check_dir(o, ms->mode, ms->dir, ms->log, ms->tmp, count_lines(ms->log) > logged_before, &r);
  }
  if (o->verbose) {
    sbuf b = {0};
    describe_plan(&b, p);
    printf("%s trial %d: %s -> %s: %s (%" PRId64 " steps, newest %" PRId64 ")\n",
           mode_names[ms->mode], trial, b.s, killed_at, r.failed ? r.failed : "ok", r.listed,
           r.newest);
    sb_free(&b);
  }
  bool ok = r.failed == NULL;
  if (!ok) {
    report_failure(o, ms, trial, p, killed_at, last_op, &r);
    for (int i = 0; i < 5; i++)
      if (strcmp(r.failed, check_names[i]) == 0)
        ms->failed_checks[i]++;
  }
  sb_free(&r.detail);
  return ok;
}

static void usage(FILE *f) {
  fprintf(
      f,
      "usage: ckpt-torture [options]\n"
      "  --trials N        trials per mode (default: $TORTURE_TRIALS, else 200)\n"
      "  --seed S          the plan's seed (default: $TORTURE_SEED, else from the clock)\n"
      "  --mode M          rename, commit_file or both (default both)\n"
      "  --edge-trials N   the first N trials kill at the commit/retention protocol points\n"
      "                    in turn, before and just after each (\"all\": every one; default 0)\n"
      "  --tool PATH       the ckpt tool (default: ckpt next to this program)\n"
      "  --dir DIR         where to work (default: $TORTURE_DIR, else a new /tmp dir)\n"
      "  --small N         small arrays per step (default 64)\n"
      "  --large-bytes B   bytes of each of the two large arrays (default 1048576)\n"
      "  --keep            keep the directories\n"
      "  --verbose         one line per trial\n");
}

int main(int argc, char **argv) {
  if (argc == 6 && strcmp(argv[1], "child") == 0)
    return child_main(argv[2], argv[3], argv[4], argv[5]);
  setvbuf(stdout, NULL, _IOLBF, 0);
  ssize_t sl = readlink("/proc/self/exe", g_self, sizeof g_self - 1);
  if (sl <= 0) {
    perror("ckpt-torture: /proc/self/exe");
    return 2;
  }
  g_self[sl] = '\0';

  options o = {0};
  o.trials = getenv("TORTURE_TRIALS") != NULL ? atoi(getenv("TORTURE_TRIALS")) : 200;
  const char *seed_env = getenv("TORTURE_SEED");
  o.seed = seed_env != NULL && seed_env[0] != '\0' ? strtoull(seed_env, NULL, 0)
                                                   : (uint64_t)time(NULL) ^ (uint64_t)getpid();
  o.base = getenv("TORTURE_DIR");
  o.modes[0] = o.modes[1] = true;
  o.n_small = 64;
  o.large_bytes = 1 << 20;
  char *tool_default = fmt_alloc("%.*s/ckpt", (int)(strrchr(g_self, '/') - g_self), g_self);
  o.tool = tool_default;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--trials") == 0 && v != NULL) {
      o.trials = atoi(v);
      i++;
    } else if (strcmp(a, "--seed") == 0 && v != NULL) {
      o.seed = strtoull(v, NULL, 0);
      i++;
    } else if (strcmp(a, "--mode") == 0 && v != NULL) {
      o.modes[0] = strcmp(v, "rename") == 0 || strcmp(v, "both") == 0;
      o.modes[1] = strcmp(v, "commit_file") == 0 || strcmp(v, "both") == 0;
      i++;
    } else if (strcmp(a, "--tool") == 0 && v != NULL) {
      o.tool = v;
      i++;
    } else if (strcmp(a, "--dir") == 0 && v != NULL) {
      o.base = v;
      i++;
    } else if (strcmp(a, "--small") == 0 && v != NULL) {
      o.n_small = atoi(v);
      i++;
    } else if (strcmp(a, "--large-bytes") == 0 && v != NULL) {
      o.large_bytes = strtoll(v, NULL, 0);
      i++;
    } else if (strcmp(a, "--edge-trials") == 0 && v != NULL) {
      o.edge_trials = strcmp(v, "all") == 0 ? -1 : atoi(v);
      i++;
    } else if (strcmp(a, "--keep") == 0) {
      o.keep = true;
    } else if (strcmp(a, "--verbose") == 0) {
      o.verbose = true;
    } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      return 0;
    } else {
      usage(stderr);
      return 2;
    }
  }
  if (o.trials < 0 || o.n_small < 0 || o.n_small > 999 || o.large_bytes < 4 ||
      (!o.modes[0] && !o.modes[1])) {
    usage(stderr);
    return 2;
  }
  if (access(o.tool, X_OK) != 0) {
    fprintf(stderr, "ckpt-torture: the ckpt tool '%s' is missing (make all builds it)\n", o.tool);
    return 2;
  }
  char *work;
  if (o.base != NULL) {
    mkdir(o.base, 0755);
    work = fmt_alloc("%s/ckpt-torture.%d", o.base, (int)getpid());
    if (mkdir(work, 0755) != 0) {
      fprintf(stderr, "ckpt-torture: mkdir %s: %s\n", work, strerror(errno));
      return 2;
    }
  } else {
    char tmpl[] = "/tmp/ckpt-torture.XXXXXX";
    if (mkdtemp(tmpl) == NULL) {
      perror("ckpt-torture: mkdtemp");
      return 2;
    }
    work = strdup(tmpl);
  }
  printf("ckpt-torture: seed %" PRIu64 " (TORTURE_SEED=%" PRIu64
         " repeats the plan), %d trials per mode%s, in %s\n",
         o.seed, o.seed, o.trials, o.edge_trials != 0 ? " (protocol points first)" : "", work);

  int total_trials = 0, total_failures = 0;
  bool setup_failed = false;
  for (int mode = 0; mode < 2; mode++) {
    if (!o.modes[mode])
      continue;
    mode_state *ms = calloc(1, sizeof *ms);
    ms->mode = mode;
    ms->dir = fmt_alloc("%s/%s", work, mode_names[mode]);
    ms->log = fmt_alloc("%s/%s.committed", work, mode_names[mode]);
    ms->tmp = work;
    ms->shared_path = fmt_alloc("%s/%s.shared", work, mode_names[mode]);
    ms->err_path = fmt_alloc("%s/%s.child", work, mode_names[mode]);
    int fd = open(ms->shared_path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || ftruncate(fd, sizeof(shared)) != 0 ||
        (ms->sh = map_shared(ms->shared_path)) == NULL) {
      fprintf(stderr, "ckpt-torture: %s: %s\n", ms->shared_path, strerror(errno));
      return 2;
    }
    close(fd);
    bool ready = setup_mode(&o, ms);
    if (ready)
      print_calibration(ms);
    else
      setup_failed = true;
    uint64_t rs = o.seed ^ mix64((uint64_t)mode + 1);
    for (int t = 0; ready && t < o.trials; t++) {
      plan p = choose_plan(ms, t, o.edge_trials, &rs);
      ms->trials++;
      if (!run_trial(&o, ms, t, &p)) {
        ms->failures++;
        /* A broken state would fail every later trial: start afresh. */
        if (!setup_mode(&o, ms)) {
          setup_failed = true;
          break;
        }
      }
      if (!o.verbose && (t + 1) % 50 == 0 && t + 1 < o.trials)
        printf("%s: %d/%d trials, %d failed\n", mode_names[mode], t + 1, o.trials, ms->failures);
    }
    printf("%s: %d trials, %d failed", mode_names[mode], ms->trials, ms->failures);
    const char *sep = " (first failed check:";
    for (int i = 0; i < 5; i++)
      if (ms->failed_checks[i] > 0) {
        printf("%s %s %d", sep, check_names[i], ms->failed_checks[i]);
        sep = ",";
      }
    if (ms->failures > 0)
      printf(")");
    printf("; kills landed in:");
    for (int ph = 0; ph < PH_COUNT; ph++) {
      int sum = ms->kills[ph][0] + ms->kills[ph][1] + ms->kills[ph][2];
      if (sum > 0)
        printf(" %s %d (time %d, op %d, edge %d)", phase_names[ph], sum, ms->kills[ph][0],
               ms->kills[ph][1], ms->kills[ph][2]);
    }
    printf("\n");
    total_trials += ms->trials;
    total_failures += ms->failures;
    munmap(ms->sh, sizeof(shared));
    if (!o.keep && ms->failures == 0)
      rmtree(ms->dir);
    free(ms->dir);
    free(ms->log);
    free(ms->shared_path);
    free(ms->err_path);
    free(ms);
  }
  bool ok = total_failures == 0 && !setup_failed;
  if (ok && !o.keep)
    rmtree(work);
  else
    printf("ckpt-torture: the directories are kept in %s\n", work);
  free(work);
  free(tool_default);
  printf("ckpt-torture: %s: %d trials, %d failed%s (seed %" PRIu64 ")\n", ok ? "PASS" : "FAIL",
         total_trials, total_failures, setup_failed ? ", a setup failed" : "", o.seed);
  return ok ? 0 : 1;
}
