/* bench/bench_ckpt.c — ckpt's side of `make bench`: the benchmark state saved and restored
 * through libckpt's public API (a StandardCheckpointHandler checkpointer, a ckpt_tree of arrays
 * that wrap the state's memory), in the same process shape as the peers.
 *
 * Ops (in the order given on the command line):
 *   save      durable save: ckpt_checkpointer_save of a synchronous checkpointer (handler
 *             save, commit, fsyncs, rename), timed around that one call
 *   restore   StandardRestore into caller buffers: a target tree of arrays wrapping
 *             already-faulted memory (hot: right after the save); verified afterwards
 *   save_ocdbt  the same save with use_ocdbt (every array in the item's OCDBT databases: a few
 *             large data files instead of a directory per array; docs/format.md "OCDBT"), then a
 *             restore of it into caller buffers ("restore_ocdbt", verified). It replaced
 *             "save_packed"/"restore_packed" when OCDBT retired the packed layout
 *   save_chunked  the same save with every array's SaveArgs.chunk_byte_size = 4 MiB, so the
 *             arrays above 4 MiB are stored as several chunks (the library's default chunk is
 *             64 MiB: one chunk per llm array, which no shard could cut across)
 *   reshard   two restores of the chunked checkpoint (or, without save_chunked, the saved
 *             one): into shards equal to the saved chunks ("restore_aligned"), and into shards
 *             of the chunks' size moved half a chunk along the first axis split into several
 *             chunks, so each needs two chunks ("restore_reshard"; an array stored as one chunk
 *             is halved)
 *   partial   the first quarter (along axis 0) of every array of the same checkpoint, restored
 *             after its files were dropped from the page cache; reports bytes read from the
 *             device and through read calls, and the bytes of the chunk files the request touches
 *   restore_cold  the saved checkpoint's files dropped from the page cache (posix_fadvise
 *             DONTNEED, as partial does), then the same restore as "restore" ("restore_cold",
 *             verified); give it after restore
 *   async     two saves with an async checkpointer: the first (cold buffer pool) gives the peak
 *             extra RSS, the second the blocking time with a warm pool ("async_blocking") and
 *             the time until wait_until_finished returned ("async_total")
 * reshard and partial need a previous save or save_chunked. Every timed section
 * starts right after bench_prewarm (bench_common.h says why).
 *
 * Two more ops measure the machine's limits in this process, right next to the ckpt ops they
 * are compared with (so a slow minute of the shared machine moves both sides of a ratio), with
 * the same code as bench_limits and reported under its name ("prog": "limits"):
 *   limits    write_fsync: S bytes from one flat buffer written to a new file in 4 MiB writes
 *             and fsync'd, then read_hot: read back in 4 MiB reads; the file is truncated before
 *             the next op, so the save that follows fills the page cache from the same warm
 *             memory (bench_limits.c explains why that matters here). Give it right before save.
 *   memcpy    the state's arrays copied into that flat, already-faulted buffer; give it right
 *             before async.
 *   device    the device's best durable write and best cold read of S bytes, measured with fio
 *             (bench_device.h), reported as "prog": "device", ops "write" and "read_cold" (and
 *             one op per fio setting); the goals save_vs_device and restore_cold_vs_device use
 *             them. Give it before limits/save.
 *
 * Usage: bench_ckpt MANIFEST DIR OP...   (DIR must exist; checkpoints are left for the caller)
 * Output: JSON lines (bench_common.h); a failed optional op prints a note and the others go on. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench_common.h"
#include "bench_device.h"
#include "ckpt/ckpt.h"

/* The name this program's records carry: "ckpt", or BENCH_PROG when bench/run.py runs it as a
 * variant (another I/O backend or durability mode, set through the engine's environment), so
 * the variant's figures do not mix with the default's. */
static const char *prog_label(void) {
  const char *e = getenv("BENCH_PROG");
  return e != NULL && *e != '\0' ? e : "ckpt";
}
#define PROG prog_label()

typedef struct run {
  bench_state st;
  const char *dir;
  char *flat;    /* the state's bytes in one faulted buffer, for the limits; NULL until needed */
  char *saved;   /* path of the checkpoint the save op wrote, or NULL */
  char *chunked; /* path of the one save_chunked wrote, or NULL */
  size_t warm;
} run;

/* The chunk size of save_chunked: small enough that every array above 4 MiB (most of the llm
 * state's bytes) is stored as several chunks, so shards can cut across them. */
#define CHUNKED_BYTES ((int64_t)4 << 20)

/* Every save op first retires the checkpoints earlier ops left (so the ops that read one must
 * come right after the save that wrote it). A second gigabyte of page cache, filled while the
 * first stays cached, comes from memory this VM's host has reclaimed and writes 2-4x slower
 * (docs/performance.md, "Page cache and deleted files"): without this, whichever save ran
 * second in the process measured 1.5-2x the first (0.89 s and 1.65 s for the same two saves,
 * swapped). Truncating hands the pages back, as bench_limits does with its files; the files
 * themselves stay until the run ends (bench_retire_tree says why they are not deleted). */
static void drop_checkpoints(run *r) {
  char **kept[] = {&r->saved, &r->chunked};
  for (size_t i = 0; i < 2; i++) {
    if (*kept[i] != NULL) {
      bench_retire_tree(*kept[i]);
      free(*kept[i]);
      *kept[i] = NULL;
    }
  }
  sync();
}

static char *path_join(const char *a, const char *b) {
  size_t len = strlen(a) + strlen(b) + 2;
  char *p = malloc(len);
  if (p == NULL)
    bench_die(false, "out of memory");
  snprintf(p, len, "%s/%s", a, b);
  return p;
}

static void note_error(const run *r, const char *op, const ckpt_error *err) {
  char text[CKPT_ERROR_MESSAGE_MAX + 64];
  snprintf(text, sizeof text, "%s failed: %s: %s", op, ckpt_status_name(err->code), err->message);
  bench_emit_note(PROG, r->st.name, op, text);
  fprintf(stderr, "bench ckpt %s: %s\n", r->st.name, text);
}

/* ---------------------------------------------------------------- trees */

/* Puts leaf at the dotted path name below root, creating the dicts on the way. */
static ckpt_status tree_put(ckpt_tree *root, const char *name, ckpt_tree *leaf, ckpt_error *err) {
  char *copy = strdup(name);
  if (copy == NULL) {
    ckpt_tree_free(leaf);
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  }
  ckpt_tree *node = root;
  char *part = copy;
  for (char *dot; (dot = strchr(part, '.')) != NULL; part = dot + 1) {
    *dot = '\0';
    ckpt_tree *child = ckpt_tree_dict_get(node, part);
    if (child == NULL) {
      child = ckpt_tree_new_dict();
      if (ckpt_tree_dict_set(node, part, child, err) != CKPT_OK) {
        ckpt_tree_free(leaf);
        free(copy);
        return err->code;
      }
    }
    node = child;
  }
  ckpt_status s = ckpt_tree_dict_set(node, part, leaf, err);
  free(copy);
  return s;
}

/* The state as a tree of arrays wrapping its memory (not copied). */
static ckpt_tree *state_tree(const bench_state *st, ckpt_error *err) {
  ckpt_tree *root = ckpt_tree_new_dict();
  if (root == NULL) {
    ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
    return NULL;
  }
  for (size_t k = 0; k < st->n_arrays; k++) {
    const bench_array *a = &st->arrays[k];
    ckpt_array *arr = NULL;
    if (ckpt_array_wrap(CKPT_DTYPE_FLOAT32, a->ndim, a->shape, a->data, &arr, err) != CKPT_OK ||
        tree_put(root, a->name, ckpt_tree_new_array(arr), err) != CKPT_OK) {
      ckpt_tree_free(root);
      return NULL;
    }
  }
  return root;
}

/* A shard plan: per array, boxes that partition it, each to be filled in a buffer of its own
 * (all carved from one already-faulted allocation per array). */
typedef struct box {
  int64_t offset[BENCH_MAX_RANK];
  int64_t shape[BENCH_MAX_RANK];
} box;

typedef struct plan {
  size_t n_boxes;
  box *boxes;
} plan;

static size_t box_elems(const box *b, int ndim) {
  size_t n = 1;
  for (int d = 0; d < ndim; d++)
    n *= (size_t)b->shape[d];
  return n;
}

/* A target tree whose arrays have the planned shards (a NULL plan: one shard covering the
 * array), with data in *buffers (one faulted allocation per array, owned by the caller). */
static ckpt_tree *target_tree(const bench_state *st, const plan *plans, char ***buffers,
                              ckpt_error *err) {
  ckpt_tree *root = ckpt_tree_new_dict();
  char **bufs = calloc(st->n_arrays, sizeof *bufs);
  if (root == NULL || bufs == NULL)
    bench_die(false, "out of memory");
  for (size_t k = 0; k < st->n_arrays; k++) {
    const bench_array *a = &st->arrays[k];
    ckpt_array *arr = NULL;
    size_t need = a->nbytes;
    if (plans != NULL) {
      need = 0;
      for (size_t i = 0; i < plans[k].n_boxes; i++)
        need += box_elems(&plans[k].boxes[i], a->ndim) * 4;
    }
    bufs[k] = bench_alloc_faulted(need);
    ckpt_status s;
    if (plans == NULL) {
      s = ckpt_array_wrap(CKPT_DTYPE_FLOAT32, a->ndim, a->shape, bufs[k], &arr, err);
    } else {
      s = ckpt_array_new_sharded(CKPT_DTYPE_FLOAT32, a->ndim, a->shape, &arr, err);
      size_t off = 0;
      for (size_t i = 0; s == CKPT_OK && i < plans[k].n_boxes; i++) {
        const box *b = &plans[k].boxes[i];
        s = ckpt_array_add_shard(arr, b->offset, b->shape, bufs[k] + off, 0, err);
        off += box_elems(b, a->ndim) * 4;
      }
      if (s != CKPT_OK)
        ckpt_array_free(arr);
    }
    if (s != CKPT_OK || tree_put(root, a->name, ckpt_tree_new_array(arr), err) != CKPT_OK) {
      ckpt_tree_free(root);
      for (size_t j = 0; j <= k; j++)
        free(bufs[j]);
      free(bufs);
      return NULL;
    }
  }
  *buffers = bufs;
  return root;
}

static void free_buffers(const bench_state *st, char **bufs) {
  if (bufs == NULL)
    return;
  for (size_t k = 0; k < st->n_arrays; k++)
    free(bufs[k]);
  free(bufs);
}

/* ---------------------------------------------------------------- verification */

/* Does the C-order box data of shard equal that box of the full array a? */
static bool shard_matches(const bench_array *a, const ckpt_shard *sh) {
  const float *full = a->data;
  const char *data = sh->data;
  int nd = a->ndim;
  if (nd == 0)
    return memcmp(full, data, 4) == 0;
  for (int d = 0; d < nd; d++)
    if (sh->offset[d] < 0 || sh->shape[d] < 0 || sh->offset[d] + sh->shape[d] > a->shape[d])
      return false;
  size_t row = (size_t)sh->shape[nd - 1] * 4;
  int64_t idx[BENCH_MAX_RANK] = {0}; /* position inside the box, dims 0..nd-2 */
  for (int d = 0; d < nd; d++)
    if (sh->shape[d] == 0)
      return true;
  for (;;) {
    size_t lin = 0; /* element index in the full array of the row's start */
    for (int d = 0; d < nd; d++) {
      int64_t i = d < nd - 1 ? sh->offset[d] + idx[d] : sh->offset[d];
      lin = lin * (size_t)a->shape[d] + (size_t)i;
    }
    if (memcmp(full + lin, data, row) != 0)
      return false;
    data += row;
    int d = nd - 2;
    for (; d >= 0; d--) {
      if (++idx[d] < sh->shape[d])
        break;
      idx[d] = 0;
    }
    if (d < 0)
      return true;
  }
}

/* Checks every array of the restored value against the state; counts elements restored and
 * how many arrays landed in the caller's buffers (bufs, may be NULL). Exits on a mismatch:
 * a benchmark of wrong results is worthless. */
static void verify(const run *r, const char *op, const ckpt_value *v, char **bufs, size_t *in_place,
                   size_t *elements) {
  if (v->kind != CKPT_VALUE_TREE)
    bench_die(false, "%s %s: restore returned a %s, not a tree", r->st.name, op,
              ckpt_value_kind_name(v->kind));
  *in_place = 0;
  *elements = 0;
  for (size_t k = 0; k < r->st.n_arrays; k++) {
    const bench_array *a = &r->st.arrays[k];
    ckpt_array *arr = ckpt_tree_array(ckpt_tree_get(v->u.tree, a->name));
    if (arr == NULL)
      bench_die(false, "%s %s: %s missing from the restored tree", r->st.name, op, a->name);
    if (arr->dtype != CKPT_DTYPE_FLOAT32 || arr->ndim != a->ndim)
      bench_die(false, "%s %s: %s restored with another dtype or rank", r->st.name, op, a->name);
    for (size_t i = 0; i < arr->n_shards; i++) {
      if (!shard_matches(a, &arr->shards[i]))
        bench_die(false, "%s %s: %s shard %zu holds other data than was saved", r->st.name, op,
                  a->name, i);
      size_t n = 1;
      for (int d = 0; d < a->ndim; d++)
        n *= (size_t)arr->shards[i].shape[d];
      *elements += n;
      if (bufs != NULL && i == 0 && arr->shards[i].data == bufs[k])
        (*in_place)++;
    }
  }
}

/* ---------------------------------------------------------------- save / restore */

/* Per-leaf SaveArgs giving every array of st the chunk_byte_size chunk (owned by args). */
static ckpt_status set_chunk_bytes(ckpt_StandardSave *args, const bench_state *st, int64_t chunk,
                                   ckpt_error *err) {
  args->save_args = calloc(st->n_arrays, sizeof *args->save_args);
  if (args->save_args == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  args->has_save_args = true;
  for (size_t k = 0; k < st->n_arrays; k++) {
    ckpt_StandardSave_save_args_entry *e = &args->save_args[k];
    args->n_save_args = k + 1;
    if (ckpt_SaveArgs_init(&e->value) != CKPT_OK || (e->key = strdup(st->arrays[k].name)) == NULL)
      return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
    e->value.has_chunk_byte_size = true;
    e->value.chunk_byte_size = chunk;
  }
  return CKPT_OK;
}

/* chunk_bytes 0: the library's default chunking. */
static ckpt_status do_save(ckpt_checkpointer *c, const char *path, const bench_state *st,
                           int64_t chunk_bytes, double *seconds, ckpt_error *err) {
  ckpt_StandardSave args;
  ckpt_status s = ckpt_StandardSave_init(&args);
  if (s != CKPT_OK)
    return ckpt_error_set(err, s, "StandardSave init");
  args.item = state_tree(st, err);
  if (args.item == NULL ||
      (chunk_bytes > 0 && set_chunk_bytes(&args, st, chunk_bytes, err) != CKPT_OK)) {
    ckpt_StandardSave_free(&args);
    return err->code;
  }
  double t0 = bench_now();
  s = ckpt_checkpointer_save(c, path, &args.base, false, NULL, err);
  *seconds = bench_now() - t0;
  /* Frees the tree; the arrays only wrap the state's memory. In an async save the library
   * snapshotted (or, zero-copy, kept) what it needs before returning. */
  ckpt_StandardSave_free(&args);
  return s;
}

/* Restores the checkpoint at path into a target built from plans; fills *seconds and
 * verifies. */
static ckpt_status do_restore(run *r, const char *path, const char *op, const plan *plans,
                              double *seconds, size_t *in_place, size_t *elements,
                              ckpt_error *err) {
  ckpt_checkpointer *c = NULL;
  if (ckpt_checkpointer_new(&ckpt_StandardCheckpointHandler_desc, NULL, &c, err) != CKPT_OK)
    return err->code;
  char **bufs = NULL;
  ckpt_StandardRestore args;
  ckpt_status s = ckpt_StandardRestore_init(&args);
  if (s != CKPT_OK) {
    ckpt_checkpointer_close(c, NULL);
    return ckpt_error_set(err, s, "StandardRestore init");
  }
  args.item = target_tree(&r->st, plans, &bufs, err);
  if (args.item == NULL) {
    ckpt_StandardRestore_free(&args);
    ckpt_checkpointer_close(c, NULL);
    return err->code;
  }
  ckpt_value v = {0};
  bench_prewarm(r->warm);
  double t0 = bench_now();
  s = ckpt_checkpointer_restore(c, path, &args.base, &v, err);
  *seconds = bench_now() - t0;
  if (s == CKPT_OK) {
    verify(r, op, &v, bufs, in_place, elements);
    /* The timing means what it says only if the library filled the boxes asked for. */
    size_t requested = 0;
    for (size_t k = 0; k < r->st.n_arrays; k++) {
      if (plans == NULL) {
        requested += r->st.arrays[k].nbytes / 4;
        continue;
      }
      for (size_t i = 0; i < plans[k].n_boxes; i++)
        requested += box_elems(&plans[k].boxes[i], r->st.arrays[k].ndim);
    }
    if (*elements != requested) {
      char text[256];
      snprintf(text, sizeof text,
               "%s returned %zu elements for the %zu the target's shards ask for", op, *elements,
               requested);
      bench_emit_note(PROG, r->st.name, op, text);
    }
  }
  ckpt_value_free(&v);
  ckpt_StandardRestore_free(&args);
  free_buffers(&r->st, bufs);
  ckpt_error close_err = CKPT_ERROR_INIT;
  ckpt_checkpointer_close(c, &close_err);
  return s;
}

/* op "save" (chunk_bytes 0, the default chunking), "save_chunked" or, with ocdbt,
 * "save_ocdbt" (whose checkpoint is then restored as "restore_ocdbt"). */
static bool op_save(run *r, const char *op, int64_t chunk_bytes, bool ocdbt) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_checkpointer *c = NULL;
  ckpt_checkpointer_options opts = CKPT_CHECKPOINTER_OPTIONS_INIT;
  opts.use_ocdbt = ocdbt;
  if (ckpt_checkpointer_new(&ckpt_StandardCheckpointHandler_desc, &opts, &c, &err) != CKPT_OK) {
    note_error(r, op, &err);
    return false;
  }
  drop_checkpoints(r);
  char *path = path_join(r->dir, ocdbt ? "ckpt_ocdbt" : chunk_bytes ? "ckpt_chunked" : "ckpt_sync");
  double seconds = 0;
  bench_prewarm(r->warm);
  ckpt_status s = do_save(c, path, &r->st, chunk_bytes, &seconds, &err);
  ckpt_error close_err = CKPT_ERROR_INIT;
  if (ckpt_checkpointer_close(c, &close_err) != CKPT_OK && s == CKPT_OK) {
    err = close_err;
    s = err.code;
  }
  if (s != CKPT_OK) {
    note_error(r, op, &err);
    free(path);
    return false;
  }
  bench_emit_time(PROG, r->st.name, op, seconds, r->st.total_bytes);
  if (ocdbt) {
    size_t in_place = 0, elements = 0;
    s = do_restore(r, path, "restore_ocdbt", NULL, &seconds, &in_place, &elements, &err);
    if (s == CKPT_OK)
      bench_emit_time(PROG, r->st.name, "restore_ocdbt", seconds, r->st.total_bytes);
    else
      note_error(r, "restore_ocdbt", &err);
    bench_retire_tree(path); /* read by nothing else: dropped now (drop_checkpoints says why) */
    free(path);
    return s == CKPT_OK;
  }
  if (chunk_bytes)
    r->chunked = path;
  else
    r->saved = path;
  return true;
}

/* op "restore", or "restore_cold" (the checkpoint's files dropped from the page cache first). */
static bool op_restore(run *r, bool cold) {
  const char *op = cold ? "restore_cold" : "restore";
  ckpt_error err = CKPT_ERROR_INIT;
  double seconds = 0;
  size_t in_place = 0, elements = 0;
  if (cold)
    bench_drop_cache_tree(r->saved);
  if (do_restore(r, r->saved, op, NULL, &seconds, &in_place, &elements, &err) != CKPT_OK) {
    note_error(r, op, &err);
    return false;
  }
  bench_emit_time(PROG, r->st.name, op, seconds, r->st.total_bytes);
  if (cold)
    return true;
  /* 1.0 when the library filled the caller's buffers, 0.0 when it returned new arrays (the
   * figure then includes allocating them). */
  bench_emit_value(PROG, r->st.name, "restore_in_place_fraction",
                   (double)in_place / (double)r->st.n_arrays);
  return true;
}

/* ---------------------------------------------------------------- the limits, in process */

/* Copies the state's arrays into r->flat (allocated and faulted on first use); returns the
 * seconds the copy took. */
static double fill_flat(run *r) {
  if (r->flat == NULL)
    r->flat = bench_alloc_faulted(r->st.total_bytes);
  double t0 = bench_now();
  size_t off = 0;
  for (size_t k = 0; k < r->st.n_arrays; k++) {
    memcpy(r->flat + off, r->st.arrays[k].data, r->st.arrays[k].nbytes);
    off += r->st.arrays[k].nbytes;
  }
  return bench_now() - t0;
}

/* op "limits": write_fsync then read_hot of S bytes, as bench_limits measures them. */
static void op_limits(run *r) {
  const size_t S = r->st.total_bytes;
  if (r->flat == NULL)
    (void)fill_flat(r);
  char *path = path_join(r->dir, "limits-fsync.bin");
  bench_prewarm(r->warm);
  double t0 = bench_now();
  bench_write_file(path, r->flat, S, true);
  bench_emit_time("limits", r->st.name, "write_fsync", bench_now() - t0, S);
  char *back = bench_alloc_faulted(S);
  bench_prewarm(r->warm);
  t0 = bench_now();
  bench_read_file(path, back, S);
  bench_emit_time("limits", r->st.name, "read_hot", bench_now() - t0, S);
  if (memcmp(back, r->flat, S) != 0)
    bench_die(false, "%s reads back different bytes", path);
  free(back);
  bench_retire_file(path);
  free(path);
}

/* op "memcpy": the snapshot floor, into the already-faulted flat buffer. */
static void op_memcpy(run *r) {
  if (r->flat == NULL)
    (void)fill_flat(r); /* faults the buffer in; the timed copy below finds it warm */
  bench_emit_time("limits", r->st.name, "memcpy", fill_flat(r), r->st.total_bytes);
}

/* ---------------------------------------------------------------- chunk grids on disk */

typedef struct stored_array {
  char *dir; /* the array's directory in the checkpoint */
  int ndim;
  int64_t chunks[BENCH_MAX_RANK];
  char separator; /* zarr v2 dimension_separator */
} stored_array;

/* Finds the .zarray of the parameter `name` below root: first <root>/<name>/ (Orbax's layout,
 * one directory per '.'-joined parameter name), then <root>/<name with '/' for '.'>/. */
static bool find_stored(const char *root, const char *name, stored_array *out) {
  char *slashed = bench_dots_to_slashes(name);
  const char *candidates[2] = {name, slashed};
  bool found = false;
  for (int i = 0; i < 2 && !found; i++) {
    char *dir = path_join(root, candidates[i]);
    char *zarray = path_join(dir, ".zarray");
    FILE *f = fopen(zarray, "r");
    if (f != NULL) {
      char *text = NULL;
      size_t cap = 0, len = 0;
      for (;;) {
        if (len + 4096 + 1 > cap) {
          cap = cap ? cap * 2 : 8192;
          char *grown = realloc(text, cap);
          if (grown == NULL)
            bench_die(false, "out of memory");
          text = grown;
        }
        size_t got = fread(text + len, 1, 4096, f);
        len += got;
        if (got == 0)
          break;
      }
      fclose(f);
      text[len] = '\0';
      cJSON *json = cJSON_Parse(text);
      cJSON *chunks = cJSON_GetObjectItemCaseSensitive(json, "chunks");
      cJSON *sep = cJSON_GetObjectItemCaseSensitive(json, "dimension_separator");
      if (cJSON_IsArray(chunks) && cJSON_GetArraySize(chunks) <= BENCH_MAX_RANK) {
        out->ndim = cJSON_GetArraySize(chunks);
        bool ok = true;
        for (int d = 0; d < out->ndim; d++) {
          cJSON *c = cJSON_GetArrayItem(chunks, d);
          ok = ok && cJSON_IsNumber(c) && c->valuedouble >= 1;
          if (ok)
            out->chunks[d] = (int64_t)c->valuedouble;
        }
        out->separator = cJSON_IsString(sep) && sep->valuestring[0] == '/' ? '/' : '.';
        if (ok) {
          out->dir = dir;
          dir = NULL;
          found = true;
        }
      }
      cJSON_Delete(json);
      free(text);
    }
    free(zarray);
    free(dir);
  }
  free(slashed);
  return found;
}

/* Intervals along one axis of length n: the chunk grid of chunk c, or (shifted) the grid moved
 * by half a chunk: [0, c/2), [c/2, c/2 + c), ... Returns the count; starts/lens hold n/c + 2. */
static size_t axis_cuts(int64_t n, int64_t c, bool shifted, int64_t *starts, int64_t *lens) {
  size_t count = 0;
  int64_t half = c / 2 > 0 ? c / 2 : 1;
  for (int64_t s = 0; s < n;) {
    int64_t e = shifted && s == 0 ? half : s + c;
    if (e > n)
      e = n;
    starts[count] = s;
    lens[count++] = e - s;
    s = e;
  }
  return count;
}

/* Boxes equal to the saved chunks (aligned), or shifted by half a chunk along the first axis
 * that is split into several chunks, so every shard spans two chunks. An array stored as one
 * chunk is halved along its first axis longer than 1 instead: two shards that both need the
 * one chunk. */
static void make_plan(const bench_array *a, const stored_array *s, bool shifted, plan *p) {
  int nd = a->ndim;
  int64_t *starts[BENCH_MAX_RANK], *lens[BENCH_MAX_RANK];
  size_t counts[BENCH_MAX_RANK], n = 1;
  int axis = -1, halve = -1;
  for (int d = 0; d < nd; d++) {
    if (axis < 0 && a->shape[d] > s->chunks[d])
      axis = d;
    if (halve < 0 && a->shape[d] > 1)
      halve = d;
  }
  for (int d = 0; d < nd; d++) {
    int64_t c = s->chunks[d];
    if (shifted && axis < 0 && d == halve)
      c = (a->shape[d] + 1) / 2;
    size_t cap = (size_t)(a->shape[d] / c) + 3;
    starts[d] = malloc(cap * sizeof(int64_t));
    lens[d] = malloc(cap * sizeof(int64_t));
    if (starts[d] == NULL || lens[d] == NULL)
      bench_die(false, "out of memory");
    counts[d] = axis_cuts(a->shape[d], c, shifted && d == axis, starts[d], lens[d]);
    n *= counts[d];
  }
  p->n_boxes = n;
  p->boxes = calloc(n, sizeof *p->boxes);
  if (p->boxes == NULL)
    bench_die(false, "out of memory");
  size_t idx[BENCH_MAX_RANK] = {0};
  for (size_t i = 0; i < n; i++) {
    for (int d = 0; d < nd; d++) {
      p->boxes[i].offset[d] = starts[d][idx[d]];
      p->boxes[i].shape[d] = lens[d][idx[d]];
    }
    for (int d = nd - 1; d >= 0; d--) {
      if (++idx[d] < counts[d])
        break;
      idx[d] = 0;
    }
  }
  for (int d = 0; d < nd; d++) {
    free(starts[d]);
    free(lens[d]);
  }
}

static void free_plans(plan *plans, size_t n) {
  if (plans == NULL)
    return;
  for (size_t k = 0; k < n; k++)
    free(plans[k].boxes);
  free(plans);
}

static stored_array *find_all_stored(run *r, const char *path) {
  stored_array *stored = calloc(r->st.n_arrays, sizeof *stored);
  if (stored == NULL)
    bench_die(false, "out of memory");
  for (size_t k = 0; k < r->st.n_arrays; k++) {
    if (!find_stored(path, r->st.arrays[k].name, &stored[k]) ||
        stored[k].ndim != r->st.arrays[k].ndim) {
      char text[512];
      snprintf(text, sizeof text, "no readable .zarray with chunks for %s below %s",
               r->st.arrays[k].name, path);
      bench_emit_note(PROG, r->st.name, "layout", text);
      for (size_t j = 0; j <= k; j++)
        free(stored[j].dir);
      free(stored);
      return NULL;
    }
  }
  return stored;
}

static void free_stored(stored_array *stored, size_t n) {
  if (stored == NULL)
    return;
  for (size_t k = 0; k < n; k++)
    free(stored[k].dir);
  free(stored);
}

/* The checkpoint reshard and partial read: save_chunked's when it ran (shards can only cut
 * across chunks of arrays stored as several), else save's. */
static const char *resharding_source(const run *r, const char *op) {
  const char *path = r->chunked != NULL ? r->chunked : r->saved;
  if (path == NULL)
    bench_emit_note(PROG, r->st.name, op, "needs a successful save first");
  return path;
}

static void op_reshard(run *r) {
  const char *path = resharding_source(r, "reshard");
  if (path == NULL)
    return;
  stored_array *stored = find_all_stored(r, path);
  if (stored == NULL)
    return;
  size_t boxes[2] = {0, 0};
  for (int shifted = 0; shifted < 2; shifted++) {
    plan *plans = calloc(r->st.n_arrays, sizeof *plans);
    if (plans == NULL)
      bench_die(false, "out of memory");
    for (size_t k = 0; k < r->st.n_arrays; k++) {
      make_plan(&r->st.arrays[k], &stored[k], shifted != 0, &plans[k]);
      boxes[shifted] += plans[k].n_boxes;
    }
    const char *op = shifted ? "restore_reshard" : "restore_aligned";
    ckpt_error err = CKPT_ERROR_INIT;
    double seconds = 0;
    size_t in_place = 0, elements = 0;
    ckpt_status s = do_restore(r, path, op, plans, &seconds, &in_place, &elements, &err);
    free_plans(plans, r->st.n_arrays);
    if (s != CKPT_OK) {
      note_error(r, op, &err);
      break;
    }
    bench_emit_time(PROG, r->st.name, op, seconds, r->st.total_bytes);
    bench_emit_value(PROG, r->st.name, shifted ? "reshard_shards" : "aligned_shards",
                     (double)boxes[shifted]);
  }
  free_stored(stored, r->st.n_arrays);
}

/* Bytes of the chunk files of s that the box [0, rows) x (whole other axes) touches. */
static uint64_t touched_chunk_bytes(const bench_array *a, const stored_array *s, int64_t rows,
                                    bool *missing) {
  int nd = a->ndim;
  int64_t grid[BENCH_MAX_RANK];
  size_t n = 1;
  for (int d = 0; d < nd; d++) {
    int64_t extent = d == 0 ? rows : a->shape[d];
    grid[d] = (extent + s->chunks[d] - 1) / s->chunks[d];
    n *= (size_t)grid[d];
  }
  uint64_t total = 0;
  int64_t idx[BENCH_MAX_RANK] = {0};
  for (size_t i = 0; i < n; i++) {
    char key[BENCH_MAX_RANK * 24 + 4] = "0"; /* a 0-d array's one chunk is "0" */
    size_t len = 0;
    for (int d = 0; d < nd; d++) {
      if (d > 0)
        key[len++] = s->separator;
      len += (size_t)snprintf(key + len, sizeof key - len, "%lld", (long long)idx[d]);
    }
    char *path = path_join(s->dir, key);
    struct stat st;
    if (stat(path, &st) == 0)
      total += (uint64_t)st.st_size;
    else
      *missing = true;
    free(path);
    for (int d = nd - 1; d >= 0; d--) {
      if (++idx[d] < grid[d])
        break;
      idx[d] = 0;
    }
  }
  return total;
}

static void op_partial(run *r) {
  const char *path = resharding_source(r, "partial");
  if (path == NULL)
    return;
  stored_array *stored = find_all_stored(r, path);
  if (stored == NULL)
    return;
  plan *plans = calloc(r->st.n_arrays, sizeof *plans);
  if (plans == NULL)
    bench_die(false, "out of memory");
  uint64_t requested = 0, rounded = 0;
  bool missing = false;
  for (size_t k = 0; k < r->st.n_arrays; k++) {
    const bench_array *a = &r->st.arrays[k];
    plans[k].boxes = calloc(1, sizeof *plans[k].boxes);
    if (plans[k].boxes == NULL)
      bench_die(false, "out of memory");
    plans[k].n_boxes = 1;
    box *b = &plans[k].boxes[0];
    for (int d = 0; d < a->ndim; d++)
      b->shape[d] = a->shape[d];
    int64_t rows = a->ndim > 0 ? (a->shape[0] + 3) / 4 : 1;
    if (a->ndim > 0)
      b->shape[0] = rows;
    requested += box_elems(b, a->ndim) * 4;
    rounded += touched_chunk_bytes(a, &stored[k], rows, &missing);
  }
  bench_drop_cache_tree(path);
  uint64_t dev0, rchar0, dev1, rchar1;
  bench_io_counters(&dev0, &rchar0);
  ckpt_error err = CKPT_ERROR_INIT;
  double seconds = 0;
  size_t in_place = 0, elements = 0;
  ckpt_status s =
      do_restore(r, path, "restore_partial", plans, &seconds, &in_place, &elements, &err);
  bench_io_counters(&dev1, &rchar1);
  free_plans(plans, r->st.n_arrays);
  free_stored(stored, r->st.n_arrays);
  if (s != CKPT_OK) {
    note_error(r, "restore_partial", &err);
    return;
  }
  bench_emit_time(PROG, r->st.name, "restore_partial_cold", seconds, requested);
  bench_emit_value(PROG, r->st.name, "partial_requested_bytes", (double)requested);
  bench_emit_value(PROG, r->st.name, "partial_chunk_bytes", (double)rounded);
  bench_emit_value(PROG, r->st.name, "partial_device_read_bytes", (double)(dev1 - dev0));
  bench_emit_value(PROG, r->st.name, "partial_rchar_bytes", (double)(rchar1 - rchar0));
  bench_emit_value(PROG, r->st.name, "partial_restored_bytes", (double)elements * 4);
  if (missing)
    bench_emit_note(PROG, r->st.name, "partial",
                    "some chunk files the request touches are absent (fill-value chunks?)");
}

/* ---------------------------------------------------------------- async */

typedef struct sampler {
  atomic_bool stop;
  uint64_t peak;
} sampler;

static void *sample_rss(void *arg) {
  sampler *s = arg;
  struct timespec pause = {0, 2 * 1000 * 1000};
  while (!atomic_load(&s->stop)) {
    uint64_t rss = bench_rss_bytes();
    if (rss > s->peak)
      s->peak = rss;
    nanosleep(&pause, NULL);
  }
  return NULL;
}

/* Peak extra RSS is measured from before the checkpointer exists, so staging memory it
 * allocates up front (a pre-faulted buffer pool) counts as what an async save costs.
 * The checkpointer is created with snapshot_bytes_hint = S, as a training program that knows
 * its state's size would: its staging pool is pre-faulted in the background from creation on.
 * The first save comes once ckpt_checkpointer_snapshot_pool_ready says the pool is ready (a
 * training program's first save comes many steps after it created its checkpointer); the time
 * that took is reported as async_pool_prepare_seconds, and the first save's blocking time as
 * async_blocking_cold (goal blocking_cold_vs_memcpy). BENCH_SNAPSHOT_HINT=N sets another hint
 * (0: none). */
static void op_async(run *r) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_checkpointer_options opts = CKPT_CHECKPOINTER_OPTIONS_INIT;
  opts.async = true;
  /* BENCH_SNAPSHOT_HINT=0 measures the first save without the hint (the pool built by the
   * save itself, on the caller's time), for before/after comparisons. */
  const char *hint = getenv("BENCH_SNAPSHOT_HINT");
  opts.snapshot_bytes_hint =
      hint != NULL && *hint != '\0' ? strtoull(hint, NULL, 10) : r->st.total_bytes;
  sampler smp = {.peak = 0};
  atomic_init(&smp.stop, false);
  pthread_t thread;
  drop_checkpoints(r);
  /* The first round's pre-warm maps, touches and unmaps 1.25 S + 64 MiB: done before the
   * baseline and the high-water-mark reset, or that transient mapping would be counted as the
   * save's extra memory (it was: 1.31 S, all of it the pre-warm). */
  bench_prewarm(r->warm);
  bool sampling = pthread_create(&thread, NULL, sample_rss, &smp) == 0;
  bool hwm_reset = bench_reset_hwm();
  uint64_t base = bench_rss_bytes();
  ckpt_checkpointer *c = NULL;
  if (ckpt_checkpointer_new(&ckpt_StandardCheckpointHandler_desc, &opts, &c, &err) != CKPT_OK) {
    note_error(r, "async", &err);
    c = NULL;
  }
  if (c != NULL) {
    double t0 = bench_now();
    struct timespec pause = {0, 5 * 1000 * 1000};
    while (!ckpt_checkpointer_snapshot_pool_ready(c) && bench_now() - t0 < 60)
      nanosleep(&pause, NULL);
    bench_emit_value(PROG, r->st.name, "async_pool_prepare_seconds", bench_now() - t0);
  }
  for (int round = 0; c != NULL && round < 2; round++) {
    char name[32];
    snprintf(name, sizeof name, "ckpt_async%d", round);
    char *path = path_join(r->dir, name);
    if (round > 0)
      bench_prewarm(r->warm); /* round 0's ran before the RSS baseline (above) */
    double blocking = 0;
    ckpt_status s = do_save(c, path, &r->st, 0, &blocking, &err);
    double t0 = bench_now();
    if (s == CKPT_OK)
      s = ckpt_checkpointer_wait_until_finished(c, &err);
    double waited = bench_now() - t0;
    if (round == 0 && s == CKPT_OK)
      bench_retire_tree(path); /* the second save's page cache from warm memory (drop_checkpoints) */
    free(path);
    if (round == 0 && sampling) {
      atomic_store(&smp.stop, true);
      pthread_join(thread, NULL);
      sampling = false;
    }
    if (s != CKPT_OK) {
      note_error(r, "async", &err);
      break;
    }
    if (round == 0) {
      uint64_t peak = smp.peak, hwm = bench_hwm_bytes();
      if (hwm_reset && hwm > peak)
        peak = hwm;
      bench_emit_value(PROG, r->st.name, "async_extra_rss_bytes",
                       peak > base ? (double)(peak - base) : 0.0);
      bench_emit_time(PROG, r->st.name, "async_blocking_cold", blocking, r->st.total_bytes);
    } else {
      bench_emit_time(PROG, r->st.name, "async_blocking", blocking, r->st.total_bytes);
      bench_emit_time(PROG, r->st.name, "async_total", blocking + waited, r->st.total_bytes);
    }
  }
  if (sampling) {
    atomic_store(&smp.stop, true);
    pthread_join(thread, NULL);
  }
  ckpt_error close_err = CKPT_ERROR_INIT;
  if (c != NULL && ckpt_checkpointer_close(c, &close_err) != CKPT_OK)
    note_error(r, "async close", &close_err);
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr,
            "usage: %s MANIFEST DIR OP...  (ops: device limits save restore restore_cold "
            "save_ocdbt save_chunked reshard partial memcpy async)\n",
            argv[0]);
    return 2;
  }
  run r = {.dir = argv[2]};
  bench_state_load(argv[1], &r.st);
  bench_state_generate(&r.st);
  bench_emit_fingerprint(PROG, &r.st);
  r.warm = bench_prewarm_bytes(r.st.total_bytes);
  int status = 0;
  for (int i = 3; i < argc; i++) {
    const char *op = argv[i];
    if (strcmp(op, "save") == 0) {
      if (!op_save(&r, op, 0, false))
        status = 1;
    } else if (strcmp(op, "save_ocdbt") == 0) {
      if (!op_save(&r, op, 0, true))
        status = 1;
    } else if (strcmp(op, "save_chunked") == 0) {
      if (!op_save(&r, op, CHUNKED_BYTES, false))
        status = 1;
    } else if (strcmp(op, "restore") == 0 || strcmp(op, "restore_cold") == 0) {
      if (r.saved == NULL)
        bench_emit_note(PROG, r.st.name, op, "needs a successful save first");
      else if (!op_restore(&r, strcmp(op, "restore_cold") == 0))
        status = 1;
    } else if (strcmp(op, "device") == 0) {
      /* fio's files go next to the checkpoints; a missing fio is a note, not a failure. */
      (void)bench_device_limits(r.dir, r.st.name, r.st.total_bytes, r.warm);
    } else if (strcmp(op, "reshard") == 0) {
      op_reshard(&r);
    } else if (strcmp(op, "partial") == 0) {
      op_partial(&r);
    } else if (strcmp(op, "async") == 0) {
      op_async(&r);
    } else if (strcmp(op, "limits") == 0) {
      op_limits(&r);
    } else if (strcmp(op, "memcpy") == 0) {
      op_memcpy(&r);
    } else {
      fprintf(stderr, "bench ckpt: unknown op %s\n", op);
      status = 2;
    }
  }
  free(r.saved);
  free(r.chunked);
  free(r.flat);
  bench_state_free(&r.st);
  return status;
}
