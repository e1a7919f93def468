/* cli/verify_check.c — the checks `ckpt verify` runs on one checkpoint: the commit markers (no
 * tmp name, commit_success.txt, a commit timestamp in _CHECKPOINT_METADATA), every item's files
 * (_METADATA, _strings.json, _CHECKSUMS, every .zarray, the JSON `metadata`, proto.pbtxt), and
 * every chunk of every array: present, of the right size, matching its CRC-32C from _CHECKSUMS,
 * decompressing to the right size.
 *
 * Unlike a restore, which stops at the first problem, verify reports all of them, each naming
 * the item, the array and the chunk, so one run shows the extent of the damage. Chunks are
 * checked in parallel with the runtime's own chunk checker (ckpt_zarr_verify_chunk). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "inspect/inspect.h"
#include "verify.h"

/* ---------------------------------------------------------------- chunk tasks */

/* Chunk problems reported per array; past this only their number is (a whole array gone would
 * otherwise print one line per chunk). */
#define MAX_CHUNK_PROBLEMS 20
/* Arrays whose .zarray describes more chunks than this are reported as implausible instead of
 * checked chunk by chunk (a damaged .zarray must not make verify run for days). */
#define MAX_ARRAY_CHUNKS ((uint64_t)1 << 24)

typedef struct varray {
  cli_array a;
  const char *item;  /* label, borrowed from the checkpoint */
  uint64_t first;    /* number of the array's first chunk in the checkpoint's task list */
  uint64_t count;    /* chunks in its grid */
  uint64_t problems; /* chunk problems found (guarded by the run's mutex) */
} varray;

typedef struct vrun {
  vreport *report;
  varray *arrays;
  size_t n_arrays;
  cli_progress *progress;
  pthread_mutex_t mu;
} vrun;

/* The array holding task i (arrays are in task order). */
static varray *array_of(const vrun *v, uint64_t i) {
  size_t lo = 0, hi = v->n_arrays;
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    if (v->arrays[mid].first <= i)
      lo = mid;
    else
      hi = mid;
  }
  return &v->arrays[lo];
}

static ckpt_status run_chunk(void *ctx, size_t i, ckpt_scratch *scratch, ckpt_error *unused) {
  (void)unused;
  vrun *v = ctx;
  varray *va = array_of(v, i);
  uint64_t linear = i - va->first;
  cli_array *a = &va->a;
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_status st =
      ckpt_zarr_verify_chunk(a->io, a->dir, a->packed, a->ocdbt, a->name, &a->meta, linear, a->sums,
                             a->require_sums, a->missing_is_error, scratch, &err);
  if (st != CKPT_OK) {
    int64_t grid[CKPT_MAX_RANK], index[CKPT_MAX_RANK];
    char key[CKPT_ZARR_KEY_MAX];
    ckpt_zarr_grid(&a->meta, grid);
    ckpt_zarr_chunk_index(&a->meta, grid, linear, index);
    ckpt_zarr_chunk_key(&a->meta, index, key);
    /* The file holding the chunk: its own, or for a packed array the data file (the index when
     * the chunk is not listed). */
    const ckpt_packed_chunk *pc = a->packed ? ckpt_packed_chunk_find(a->packed, linear) : NULL;
    char *file = a->packed == NULL ? cli_asprintf("%s/%s", a->dir, key)
                 : pc != NULL      ? cli_asprintf("%s", a->packed->index->files[pc->file].path)
                              : cli_asprintf("%.*s/%s", (int)(strlen(a->dir) - strlen(a->name) - 1),
                                             a->dir, CKPT_PACKED_INDEX_FILE);
    pthread_mutex_lock(&v->mu);
    if (va->problems++ < MAX_CHUNK_PROBLEMS)
      vreport_problem(v->report, st, va->item, a->name, key, linear, file, err.message);
    pthread_mutex_unlock(&v->mu);
    free(file);
  }
  cli_progress_add(v->progress, 1);
  return CKPT_OK;
}

/* ---------------------------------------------------------------- items */

typedef struct vctx {
  ckpt_io *io;
  vreport *r;
  bool progress;
  /* PyTrees stay open until their chunks are checked */
  size_t n_trees, cap_trees;
  cli_pytree **trees;
  size_t n_arrays, cap_arrays;
  varray *arrays;
  uint64_t n_tasks;
  /* Written by someone else (Orbax): no _CHECKPOINT_CHECKSUMS, no pending commit marker and a
   * commit timestamp. Such a checkpoint may lack commit_success.txt (Orbax writes it only on
   * some file systems and versions): its absence is then noted, not damage. */
  bool foreign;
} vctx;

static bool keep_tree(vctx *c, cli_pytree *p) {
  if (c->n_trees == c->cap_trees) {
    size_t nc = c->cap_trees ? c->cap_trees * 2 : 4;
    cli_pytree **g = realloc(c->trees, nc * sizeof *g);
    if (g == NULL)
      return false;
    c->trees = g;
    c->cap_trees = nc;
  }
  c->trees[c->n_trees++] = p;
  return true;
}

static bool add_array(vctx *c, varray va) {
  if (c->n_arrays == c->cap_arrays) {
    size_t nc = c->cap_arrays ? c->cap_arrays * 2 : 16;
    varray *g = realloc(c->arrays, nc * sizeof *g);
    if (g == NULL)
      return false;
    c->arrays = g;
    c->cap_arrays = nc;
  }
  c->arrays[c->n_arrays++] = va;
  return true;
}

static void problem_err(vctx *c, const char *item, const char *array, const char *file,
                        const ckpt_error *err) {
  vreport_problem(c->r, err->code, item, array, NULL, 0, file, err->message);
}

static void check_pytree(vctx *c, const cli_item *it) {
  cli_pytree *p = calloc(1, sizeof *p);
  if (p == NULL) {
    c->r->oom = true;
    return;
  }
  ckpt_error err = CKPT_ERROR_INIT;
  if (cli_pytree_open(c->io, it->dir, false, p, &err) != CKPT_OK) {
    problem_err(c, it->label, NULL, it->dir, &err);
    cli_pytree_free(p);
    free(p);
    return;
  }
  if (!keep_tree(c, p)) {
    cli_pytree_free(p);
    free(p);
    c->r->oom = true;
    return;
  }
  c->r->n_files += 1 + (p->strings != NULL) + (p->checksums != NULL);
  if (p->packed != NULL && p->packed->present)
    c->r->n_files += 1 + p->packed->n_files; /* _PACKED and its data files */
  /* the restore's own checks (storage/): _CHECKSUMS disagreeing with _METADATA, _PACKED or
   * _strings.json is damage */
  if (!p->check_ok)
    problem_err(c, it->label, NULL, it->dir, &p->check_err);
  if (!p->readable_ok) {
    problem_err(c, it->label, NULL, it->dir, &p->readable_err);
    return;
  }
  if (p->source != CKPT_META_FROM_FILE)
    vreport_note(c->r, cli_asprintf("%s%sno %s (written by an older Orbax): the tree was rebuilt "
                                    "from %s",
                                    it->label, it->label[0] ? ": " : "", CKPT_METADATA_FILE,
                                    cli_meta_source_name(p->source)));
  if (p->aggregate != NULL) {
    size_t kept = 0;
    for (size_t i = 0; i < p->n; i++)
      kept += p->leaves[i].aggregated != NULL;
    c->r->n_files++;
    vreport_note(c->r, cli_asprintf("%s%s%zu lea%s kept in the legacy aggregate file '%s': "
                                    "decoded, not checked against checksums (it has none)",
                                    it->label, it->label[0] ? ": " : "", kept,
                                    kept == 1 ? "f" : "ves", CKPT_AGGREGATE_FILE));
  }
  if (p->checksums == NULL)
    vreport_note(c->r, cli_asprintf("%s%sno _CHECKSUMS (not written by ckpt?): chunk sizes and "
                                    "decompression checked, contents and metadata files not",
                                    it->label, it->label[0] ? ": " : ""));
  else if (!ckpt_checksums_has_files(p->checksums))
    vreport_note(c->r, cli_asprintf("%s%s_CHECKSUMS records no metadata files (written by an "
                                    "older ckpt): _METADATA, _strings.json and .zarray not checked",
                                    it->label, it->label[0] ? ": " : ""));
  for (size_t i = 0; i < p->n; i++) {
    cli_leaf *l = &p->leaves[i];
    if (l->is_string && l->string_value == NULL) {
      ckpt_error_set(&err, CKPT_ECORRUPT, "string leaf '%s' is missing from %s%s", l->param,
                     CKPT_STRINGS_FILE, p->strings ? "" : " (the file does not exist)");
      problem_err(c, it->label, l->param, CKPT_STRINGS_FILE, &err);
      ckpt_error_clear(&err);
    }
    if (!l->is_array)
      continue;
    c->r->n_arrays++;
    if (!l->zarr_ok) {
      vreport_problem(c->r, l->zarr_err.code, it->label, l->param, NULL, 0, CKPT_ZARR_METADATA_FILE,
                      l->zarr_err.message);
      continue;
    }
    if (l->packed == NULL)
      c->r->n_files++; /* its .zarray */
    if (l->n_chunks > MAX_ARRAY_CHUNKS) {
      char *msg = cli_asprintf(
          "array '%s': .zarray describes %llu chunks, too many to be real "
          "(damaged .zarray?); its chunks were not checked",
          l->param, (unsigned long long)l->n_chunks);
      vreport_problem(c->r, CKPT_ECORRUPT, it->label, l->param, NULL, 0, CKPT_ZARR_METADATA_FILE,
                      msg ? msg : "implausible chunk grid");
      free(msg);
      continue;
    }
    varray va;
    memset(&va, 0, sizeof va);
    va.item = it->label;
    va.first = c->n_tasks;
    va.count = l->n_chunks;
    if (cli_array_open(c->io, p, l, &va.a, &err) != CKPT_OK) {
      problem_err(c, it->label, l->param, NULL, &err);
      ckpt_error_clear(&err);
      continue;
    }
    if (!add_array(c, va)) {
      cli_array_close(&va.a);
      c->r->oom = true;
      return;
    }
    c->n_tasks += l->n_chunks;
  }
}

/* The item kind a handler typestr's class writes (core/orbax_handlers.h); -1 when not known. */
static int expected_kind(const char *typestr) {
  const ckpt_orbax_handler *h = ckpt_orbax_handler_find(typestr);
  if (h == NULL)
    return -1;
  switch (h->item) {
    case CKPT_ORBAX_ITEM_PYTREE:
      return CLI_ITEM_PYTREE;
    case CKPT_ORBAX_ITEM_JSON:
      return CLI_ITEM_JSON;
    case CKPT_ORBAX_ITEM_PROTO:
      return CLI_ITEM_PROTO;
    case CKPT_ORBAX_ITEM_COMPOSITE:
      return CLI_ITEM_COMPOSITE;
    case CKPT_ORBAX_ITEM_DESCRIPTOR:
      break;
  }
  return -1;
}

static void check_item(vctx *c, const cli_item *it, bool composite_top) {
  ckpt_error err = CKPT_ERROR_INIT;
  c->r->n_items++;
  if (composite_top && it->listed && it->dir && it->kind != CLI_ITEM_MISSING) {
    char *cf = ckpt_path_join(it->dir, CKPT_COMMIT_FILE);
    ckpt_io_kind kind = CKPT_IO_KIND_MISSING;
    uint64_t size;
    if (cf == NULL) {
      c->r->oom = true;
    } else if (ckpt_io_stat(c->io, cf, &kind, &size, &err) != CKPT_OK) {
      problem_err(c, it->label, NULL, cf, &err);
      ckpt_error_clear(&err);
    } else if (kind != CKPT_IO_KIND_FILE && c->foreign) {
      vreport_note(c->r, cli_asprintf("item %s has no " CKPT_COMMIT_FILE " (not written by ckpt; "
                                      "Orbax does not always write it)",
                                      it->label));
    } else if (kind != CKPT_IO_KIND_FILE) {
      vreport_problem(c->r, CKPT_EINCOMPLETE, it->label, NULL, NULL, 0, cf,
                      "the item's commit marker " CKPT_COMMIT_FILE " is missing");
    } else {
      c->r->n_files++;
    }
    free(cf);
  }
  /* The typestr restore-all looks up in the registry: an Orbax handler that ckpt does not
   * know (a damaged or edited _CHECKPOINT_METADATA) fails that restore; other handlers (a
   * program's own, ckptgen records) may be registered by the program that restores them. */
  const ckpt_handler_desc *hd = NULL;
  if (it->typestr != NULL && ckpt_get_handler_by_typestr(it->typestr, &hd, &err) != CKPT_OK) {
    if (strncmp(it->typestr, "orbax.checkpoint.", 17) == 0) {
      char *msg = cli_asprintf(CKPT_CHECKPOINT_METADATA_FILE
                               " item_handlers names the handler '%s', which does not exist (a "
                               "restore without args fails): %s",
                               it->typestr, err.message);
      vreport_problem(c->r, CKPT_ECORRUPT, it->label, NULL, NULL, 0, CKPT_CHECKPOINT_METADATA_FILE,
                      msg ? msg : "unknown handler");
      free(msg);
    } else {
      vreport_note(c->r, cli_asprintf("item %s: handler '%s' is not built into ckpt; a restore "
                                      "without args needs it registered",
                                      it->label, it->typestr));
    }
    ckpt_error_clear(&err);
  }
  int want = expected_kind(it->typestr);
  if (want >= 0 && it->kind != CLI_ITEM_MISSING && it->kind != CLI_ITEM_UNKNOWN &&
      (cli_item_kind)want != it->kind) {
    char *msg = cli_asprintf("handler %s writes a %s item, but the directory holds a %s item",
                             cli_handler_short(it->typestr),
                             cli_item_kind_name((cli_item_kind)want), cli_item_kind_name(it->kind));
    vreport_problem(c->r, CKPT_ECORRUPT, it->label, NULL, NULL, 0, it->dir, msg ? msg : "mismatch");
    free(msg);
  }
  switch (it->kind) {
    case CLI_ITEM_MISSING:
      vreport_problem(c->r, CKPT_EINCOMPLETE, it->label, NULL, NULL, 0, it->dir,
                      "the item is named in _CHECKPOINT_METADATA but its directory is missing");
      break;
    case CLI_ITEM_UNKNOWN:
      if (it->dir == NULL)
        vreport_problem(c->r, CKPT_EUNSAFE, it->label, NULL, NULL, 0, NULL,
                        "_CHECKPOINT_METADATA names an item that is not a valid directory name");
      else
        vreport_problem(c->r, want == CLI_ITEM_JSON ? CKPT_EINCOMPLETE : CKPT_ECORRUPT, it->label,
                        NULL, NULL, 0, it->dir,
                        want == CLI_ITEM_JSON    ? "the JSON item's 'metadata' file is missing"
                        : want == CLI_ITEM_PROTO ? "the proto item's 'proto.pbtxt' file is missing"
                        : want == CLI_ITEM_PYTREE
                            ? "the PyTree item's _METADATA file is missing"
                            : "the item's contents are not recognised (no _METADATA, metadata or "
                              "proto.pbtxt)");
      break;
    case CLI_ITEM_JSON: {
      cJSON *v = NULL;
      if (cli_item_load_json(c->io, it, &v, &err) != CKPT_OK) {
        char *f = cli_item_file(c->io, it);
        problem_err(c, it->label, NULL, f, &err);
        free(f);
      } else {
        c->r->n_files++;
      }
      cJSON_Delete(v);
      break;
    }
    case CLI_ITEM_PROTO: {
      char *text = NULL;
      size_t len = 0, bad = 0;
      char *f = cli_item_file(c->io, it);
      if (cli_item_load_text(c->io, it, &text, &len, &err) != CKPT_OK) {
        problem_err(c, it->label, NULL, f, &err);
      } else if (!ckpt_tf_utf8_valid((const uint8_t *)text, len, &bad)) {
        char *msg = cli_asprintf("proto.pbtxt is not valid UTF-8 text (byte %zu)", bad);
        vreport_problem(c->r, CKPT_ECORRUPT, it->label, NULL, NULL, 0, f, msg ? msg : "bad text");
        free(msg);
      } else {
        c->r->n_files++;
      }
      free(f);
      free(text);
      break;
    }
    case CLI_ITEM_PYTREE:
      check_pytree(c, it);
      break;
    case CLI_ITEM_COMPOSITE:
      for (size_t i = 0; i < it->n_children; i++)
        check_item(c, &it->children[i], false);
      break;
  }
}

/* Largest file the manifest check reads (the item files it lists are JSON and text). */
#define MANIFEST_FILE_MAX ((size_t)1 << 30)

/* The checkpoint's manifest (_CHECKPOINT_CHECKSUMS): every file it lists is read and checked
 * with the storage layer's own check, the one a restore runs. */
static void check_manifest(vctx *c, const cli_ckpt *k) {
  ckpt_checksums *m = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  if (ckpt_checksums_read_named(c->io, k->path, CKPT_MANIFEST_FILE, &m, &err) != CKPT_OK) {
    vreport_problem(c->r, err.code, NULL, NULL, NULL, 0, CKPT_MANIFEST_FILE, err.message);
    return;
  }
  if (m == NULL) {
    if (!k->bare_item)
      vreport_note(c->r, cli_strdup("no " CKPT_MANIFEST_FILE " (written by Orbax or an older "
                                    "ckpt): _CHECKPOINT_METADATA, _CHECKSUMS and the JSON and "
                                    "proto item files were parsed, not checked against "
                                    "checksums"));
    return;
  }
  c->r->n_files++;
  for (size_t i = 0; i < ckpt_checksums_n_files(m); i++) {
    const char *rel = ckpt_checksums_file_name(m, i);
    char *path = ckpt_path_join(k->path, rel);
    if (path == NULL) {
      c->r->oom = true;
      break;
    }
    void *data = NULL;
    size_t n = 0;
    ckpt_file_sum sum = {false, 0, 0};
    ckpt_status st = ckpt_io_read_file(c->io, path, MANIFEST_FILE_MAX, &data, &n, &err);
    if (st == CKPT_OK)
      ckpt_file_sum_of(&sum, data, n);
    if (st == CKPT_OK || st == CKPT_ENOENT) {
      ckpt_error_clear(&err);
      st = ckpt_checksums_check_file(m, k->path, rel, &sum, &err);
    }
    if (st != CKPT_OK)
      vreport_problem(c->r, err.code, NULL, NULL, NULL, 0, rel, err.message);
    ckpt_error_clear(&err);
    free(data);
    free(path);
  }
  ckpt_checksums_free(m);
}

/* Verifies one checkpoint (or item directory) into *r. */
void verify_checkpoint(ckpt_io *io, const char *path, bool progress, vreport *r) {
  cli_ckpt k;
  ckpt_error err = CKPT_ERROR_INIT;
  vctx c;
  memset(&c, 0, sizeof c);
  c.io = io;
  c.r = r;
  c.progress = progress;
  if (cli_ckpt_open(io, path, &k, &err) != CKPT_OK) {
    vreport_problem(r, err.code, NULL, NULL, NULL, 0, path, err.message);
    cli_ckpt_free(&k);
    return;
  }
  if (k.tmp)
    vreport_problem(r, CKPT_EINCOMPLETE, NULL, NULL, NULL, 0, k.path,
                    "the directory has the temporary name of an unfinished save (" CKPT_TMP_SUFFIX
                    "): it is not a checkpoint");
  if (!k.bare_item) {
    bool not_ckpt = cli_kind_of(io, k.path, CKPT_COMMIT_PENDING_FILE) == CKPT_IO_KIND_MISSING &&
                    cli_kind_of(io, k.path, CKPT_MANIFEST_FILE) == CKPT_IO_KIND_MISSING;
    c.foreign = !k.has_commit_file && k.meta_ok && k.meta.has_commit_timestamp && not_ckpt;
    /* Orbax before step metadata (2024) wrote neither _CHECKPOINT_METADATA nor, in rename
     * mode, a commit file: such a directory is finalized by its name (Orbax's local rule). */
    bool old_orbax = !k.has_meta_file && not_ckpt && !k.tmp;
    if (old_orbax) {
      c.foreign = true;
      vreport_note(r, cli_strdup("no " CKPT_CHECKPOINT_METADATA_FILE " (written by an older "
                                 "Orbax): items and handlers were decided from the files"));
      if (k.has_commit_file)
        r->n_files++;
    } else if (c.foreign)
      vreport_note(r, cli_strdup("no " CKPT_COMMIT_FILE " (not written by ckpt; Orbax does not "
                                 "always write it): finalized by its commit timestamp"));
    else if (!k.has_commit_file)
      vreport_problem(r, CKPT_EINCOMPLETE, NULL, NULL, NULL, 0, CKPT_COMMIT_FILE,
                      "the commit marker " CKPT_COMMIT_FILE " is missing");
    else
      r->n_files++;
    if (old_orbax)
      ; /* noted above */
    else if (!k.has_meta_file)
      vreport_problem(r, CKPT_EINCOMPLETE, NULL, NULL, NULL, 0, CKPT_CHECKPOINT_METADATA_FILE,
                      CKPT_CHECKPOINT_METADATA_FILE " is missing");
    else if (!k.meta_ok)
      vreport_problem(r, k.meta_err.code == CKPT_ENOENT ? CKPT_EINCOMPLETE : k.meta_err.code, NULL,
                      NULL, NULL, 0, CKPT_CHECKPOINT_METADATA_FILE, k.meta_err.message);
    else if (!k.meta.has_commit_timestamp)
      vreport_problem(r, CKPT_EINCOMPLETE, NULL, NULL, NULL, 0, CKPT_CHECKPOINT_METADATA_FILE,
                      CKPT_CHECKPOINT_METADATA_FILE
                      " has no commit_timestamp_nsecs: the save was "
                      "never committed");
    else
      r->n_files++;
  }
  check_manifest(&c, &k);
  if (k.orbax_descriptor)
    vreport_note(r, cli_strdup("item descriptor (Orbax v1's description of the checkpoint, no "
                               "user data) is not read"));
  for (size_t i = 0; i < k.n_tmp_items; i++)
    vreport_note(r,
                 cli_asprintf("leftover temporary item directory %s (not part of the checkpoint; "
                              "'ckpt gc' on the checkpoint removes it)",
                              k.tmp_items[i]));
  for (size_t i = 0; i < k.n_items; i++) {
    if (!k.items[i].listed && k.composite && k.meta_ok)
      vreport_note(r,
                   cli_asprintf("item %s is not named in _CHECKPOINT_METADATA", k.items[i].label));
    check_item(&c, &k.items[i], k.composite);
  }
  /* The chunks of every array, all at once (task i is chunk i - first of its array). */
  if (c.n_tasks > 0 && (uint64_t)(size_t)c.n_tasks != c.n_tasks) {
    r->oom = true;
  } else if (c.n_tasks > 0) {
    size_t n = (size_t)c.n_tasks;
    vrun v;
    v.report = r;
    v.arrays = c.arrays;
    v.n_arrays = c.n_arrays;
    const char *base = ckpt_path_base(r->path);
    char *label = cli_asprintf("verify %s", base);
    v.progress = cli_progress_new(progress, label ? label : "verify", n);
    free(label);
    if (pthread_mutex_init(&v.mu, NULL) != 0) {
      r->oom = true;
    } else {
      ckpt_error perr = CKPT_ERROR_INIT;
      ckpt_task_run(cli_task_engine(), "verify", n, run_chunk, NULL, &v, &perr);
      pthread_mutex_destroy(&v.mu);
      r->n_chunks = n;
      for (size_t i = 0; i < c.n_arrays; i++) {
        const varray *va = &c.arrays[i];
        if (va->problems <= MAX_CHUNK_PROBLEMS)
          continue;
        char *msg =
            cli_asprintf("array '%s': %llu more damaged chunks (%llu of %llu in all)", va->a.name,
                         (unsigned long long)(va->problems - MAX_CHUNK_PROBLEMS),
                         (unsigned long long)va->problems, (unsigned long long)va->count);
        vreport_problem(r, CKPT_ECORRUPT, va->item, va->a.name, NULL, UINT64_MAX, va->a.dir,
                        msg ? msg : "more damaged chunks");
        free(msg);
      }
    }
    cli_progress_done(v.progress);
  }
  for (size_t i = 0; i < c.n_arrays; i++)
    cli_array_close(&c.arrays[i].a);
  free(c.arrays);
  for (size_t i = 0; i < c.n_trees; i++) {
    cli_pytree_free(c.trees[i]);
    free(c.trees[i]);
  }
  free(c.trees);
  cli_ckpt_free(&k);
  vreport_sort(r);
}
