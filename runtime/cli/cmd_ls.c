/* cli/cmd_ls.c — `ckpt ls PATH`: what a checkpoint holds (its items with their handler
 * typestrs; for PyTree items every leaf with dtype, shape, chunk shape, stored bytes and
 * compression; a one-line summary of JSON and proto items), or, for a directory of steps, each
 * step with its state, commit time and metrics, temporary directories flagged. Nothing bulk is
 * read: only metadata files and the sizes of chunk files. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char help[] =
    "Usage: ckpt ls [--json] [--step N] PATH\n"
    "\n"
    "List a checkpoint: its commit state and time, its items with their handler typestrs,\n"
    "and for PyTree items every leaf (key, value type, dtype, shape, chunk shape, stored\n"
    "bytes, compression); JSON and proto items get a one-line summary.\n"
    "When PATH is a directory of steps (a CheckpointManager directory), list the steps:\n"
    "state (finalized / temporary / unfinalized), commit time, items and metrics.\n"
    "\n"
    "Options:\n"
    "  --json      print one JSON document (keys documented in docs/cli.md)\n"
    "  --step N    with a directory of steps: list step N's checkpoint instead\n"
    "  -h, --help  show this help\n"
    "\n"
    "Exit status: 0 listed; 1 something listed is damaged (unreadable metadata);\n"
    "2 usage error, PATH missing or not a checkpoint, I/O error.\n";

typedef struct ls_ctx {
  ckpt_io *io;
  bool json;
  bool damaged; /* something could not be read: exit 1 after listing */
} ls_ctx;

/* ---------------------------------------------------------------- PyTree items */

static const char *compression_name(const cli_leaf *l) {
  if (!l->zarr_ok)
    return NULL;
  if (l->zarr.zarr3)
    return ckpt_zarr3_compression(&l->zarr);
  return l->zarr.compressor == CKPT_COMPRESSION_ZSTD ? "zstd" : "none";
}

static void leaf_json(const cli_leaf *l, cJSON *arr, bool *oom) {
  cJSON *o = cJSON_CreateObject();
  cli_jadd(o, "key", cJSON_CreateString(l->param), oom);
  cli_jadd(o, "value_type", cJSON_CreateString(l->value_type), oom);
  bool z = l->is_array && l->zarr_ok;
  cli_jadd(o, "dtype", z ? cJSON_CreateString(ckpt_dtype_name(l->zarr.dtype)) : cJSON_CreateNull(),
           oom);
  cli_jadd(o, "shape", z ? cli_jshape(l->zarr.ndim, l->zarr.shape) : cJSON_CreateNull(), oom);
  cli_jadd(o, "chunk_shape", z ? cli_jshape(l->zarr.ndim, l->zarr.chunks) : cJSON_CreateNull(),
           oom);
  cli_jadd(o, "n_chunks", z ? cli_juint(l->n_chunks) : cJSON_CreateNull(), oom);
  cli_jadd(o, "chunks_present", z ? cli_juint(l->chunks_present) : cJSON_CreateNull(), oom);
  cli_jadd(o, "stored_bytes", z ? cli_juint(l->stored_bytes) : cJSON_CreateNull(), oom);
  cli_jadd(o, "compression", cli_jstr(z ? compression_name(l) : NULL), oom);
  if (l->is_string)
    cli_jadd(o, "value", cli_jstr(l->string_value), oom);
  cli_jadd(o, "aggregated", cJSON_CreateBool(l->aggregated != NULL), oom);
  cli_jadd(
      o, "error",
      l->is_array && !l->zarr_ok ? cJSON_CreateString(l->zarr_err.message) : cJSON_CreateNull(),
      oom);
  cli_jpush(arr, o, oom);
}

static void leaf_row(const cli_leaf *l, cli_table *t) {
  char *shape = NULL, *chunks = NULL, stored[128] = "-";
  const char *dtype = NULL;
  if (l->is_array && l->zarr_ok) {
    dtype = ckpt_dtype_name(l->zarr.dtype);
    shape = cli_format_shape(l->zarr.ndim, l->zarr.shape);
    chunks = cli_format_shape(l->zarr.ndim, l->zarr.chunks);
    char b[32];
    cli_format_bytes(l->stored_bytes, b);
    if (l->chunks_present < l->n_chunks)
      snprintf(stored, sizeof stored, "%s (%llu/%llu chunks)", b,
               (unsigned long long)l->chunks_present, (unsigned long long)l->n_chunks);
    else
      snprintf(stored, sizeof stored, "%s", b);
  } else if (l->is_array) {
    dtype = "?";
  } else if (l->aggregated != NULL) {
    /* kept in the legacy aggregate file: its own dtype and shape */
    const ckpt_array *a = ckpt_tree_array(l->aggregated);
    ckpt_scalar s;
    if (a != NULL) {
      dtype = ckpt_dtype_name(a->dtype);
      shape = cli_format_shape(a->ndim, a->shape);
    } else if (ckpt_tree_scalar(l->aggregated, &s)) {
      dtype = ckpt_dtype_name(s.dtype);
    }
    snprintf(stored, sizeof stored, "in %s", CKPT_AGGREGATE_FILE);
  }
  const char *row[] = {l->param[0] ? l->param : "(root)",
                       l->value_type,
                       dtype,
                       shape,
                       chunks,
                       l->is_array || l->aggregated ? stored : NULL,
                       l->is_array ? (l->zarr_ok ? compression_name(l) : "?") : NULL};
  cli_table_row(t, row);
  free(shape);
  free(chunks);
}

static ckpt_status list_pytree(ls_ctx *c, const cli_item *it, cJSON *jitem, bool *oom,
                               ckpt_error *err) {
  cli_pytree p;
  ckpt_status st = cli_pytree_open(c->io, it->dir, true, &p, err);
  if (st != CKPT_OK) {
    cli_pytree_free(&p);
    return st;
  }
  uint64_t stored = 0, arrays = 0, leaves = 0;
  for (size_t i = 0; i < p.n; i++) {
    stored += p.leaves[i].stored_bytes;
    arrays += p.leaves[i].is_array;
    leaves += !p.leaves[i].is_empty;
    if (p.leaves[i].is_array && !p.leaves[i].zarr_ok &&
        cli_exit_for(p.leaves[i].zarr_err.code) == CLI_EXIT_DAMAGED)
      c->damaged = true;
  }
  if (c->json) {
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < p.n; i++)
      leaf_json(&p.leaves[i], arr, oom);
    cli_jadd(jitem, "leaves", arr, oom);
    cli_jadd(jitem, "stored_bytes", cli_juint(stored), oom);
    cli_jadd(jitem, "use_ocdbt", cJSON_CreateBool(p.meta.use_ocdbt), oom);
    cli_jadd(jitem, "tree_from", cJSON_CreateString(cli_meta_source_name(p.source)), oom);
    cli_pytree_free(&p);
    return CKPT_OK;
  }
  char b[32];
  printf("  tree     %llu lea%s, %llu arra%s, %s stored%s\n", (unsigned long long)leaves,
         leaves == 1 ? "f" : "ves", (unsigned long long)arrays, arrays == 1 ? "y" : "ys",
         cli_format_bytes(stored, b), p.meta.use_ocdbt ? " (OCDBT)" : "");
  if (p.source != CKPT_META_FROM_FILE)
    printf("  no %s (an older Orbax): tree rebuilt from %s\n", CKPT_METADATA_FILE,
           cli_meta_source_name(p.source));
  else if (p.aggregate != NULL)
    printf("  legacy   some leaves are kept in the aggregate file '%s'\n", CKPT_AGGREGATE_FILE);
  if (p.n > 0) {
    cli_table t;
    cli_table_init(&t, 7);
    const char *head[] = {"KEY", "TYPE", "DTYPE", "SHAPE", "CHUNKS", "STORED", "COMPRESSION"};
    cli_table_row(&t, head);
    for (size_t i = 0; i < p.n; i++)
      leaf_row(&p.leaves[i], &t);
    if (!cli_table_print(&t, stdout, 2))
      *oom = true;
    cli_table_free(&t);
  }
  /* An OCDBT database that does not read fails every array the same way: said once. */
  bool db_failed = p.meta.use_ocdbt && p.ocdbt == NULL && !p.readable_ok;
  if (db_failed)
    printf("  ! %s\n", p.readable_err.message);
  for (size_t i = 0; i < p.n && !db_failed; i++)
    if (p.leaves[i].is_array && !p.leaves[i].zarr_ok)
      printf("  ! %s: %s\n", p.leaves[i].param, p.leaves[i].zarr_err.message);
  cli_pytree_free(&p);
  return CKPT_OK;
}

/* ---------------------------------------------------------------- items */

static void list_item(ls_ctx *c, const cli_item *it, cJSON *jarr, bool *oom) {
  cJSON *j = NULL;
  if (c->json) {
    j = cJSON_CreateObject();
    cli_jadd(j, "name", cli_jstr(it->name), oom);
    cli_jadd(j, "label", cJSON_CreateString(it->label), oom);
    cli_jadd(j, "kind", cJSON_CreateString(cli_item_kind_name(it->kind)), oom);
    cli_jadd(j, "handler", cli_jstr(it->typestr), oom);
  } else {
    const char *what = it->typestr ? cli_handler_short(it->typestr) : cli_item_kind_name(it->kind);
    if (it->label[0])
      printf("\nitem %s: %s\n", it->label, what);
    else
      printf("\nitem: %s\n", what);
    if (it->typestr)
      printf("  handler  %s\n", it->typestr);
  }
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_status st = CKPT_OK;
  char *summary = NULL;
  switch (it->kind) {
    case CLI_ITEM_PYTREE:
      st = list_pytree(c, it, j, oom, &err);
      break;
    case CLI_ITEM_JSON: {
      cJSON *v = NULL;
      st = cli_item_load_json(c->io, it, &v, &err);
      if (st == CKPT_OK) {
        summary = cli_json_summary(v);
        if (summary == NULL)
          *oom = true;
      }
      cJSON_Delete(v);
      break;
    }
    case CLI_ITEM_PROTO: {
      char *text = NULL;
      size_t len = 0;
      st = cli_item_load_text(c->io, it, &text, &len, &err);
      if (st == CKPT_OK) {
        summary = cli_text_summary(text, len);
        if (summary == NULL)
          *oom = true;
      }
      free(text);
      break;
    }
    case CLI_ITEM_MISSING:
      st = ckpt_error_set(&err, CKPT_EINCOMPLETE,
                          "item '%s' is named in _CHECKPOINT_METADATA but has no directory",
                          it->label);
      break;
    case CLI_ITEM_UNKNOWN:
      st = ckpt_error_set(&err, CKPT_ECORRUPT,
                          it->dir ? "item '%s': contents not recognised"
                                  : "item name '%s' is not valid (not used as a path)",
                          it->label);
      break;
    case CLI_ITEM_COMPOSITE:
      break;
  }
  if (st != CKPT_OK)
    c->damaged = true;
  if (c->json) {
    if (summary)
      cli_jadd(j, "summary", cJSON_CreateString(summary), oom);
    cli_jadd(j, "error", st != CKPT_OK ? cJSON_CreateString(err.message) : cJSON_CreateNull(), oom);
    if (it->kind == CLI_ITEM_COMPOSITE) {
      cJSON *kids = cJSON_CreateArray();
      for (size_t i = 0; i < it->n_children; i++)
        list_item(c, &it->children[i], kids, oom);
      cli_jadd(j, "items", kids, oom);
    }
    cli_jpush(jarr, j, oom);
  } else {
    if (summary)
      printf("  %-7s  %s\n", it->kind == CLI_ITEM_JSON ? "json" : "proto", summary);
    if (st != CKPT_OK)
      printf("  ! %s\n", err.message);
    if (it->kind == CLI_ITEM_COMPOSITE) {
      printf("  items    %zu\n", it->n_children);
      for (size_t i = 0; i < it->n_children; i++)
        list_item(c, &it->children[i], NULL, oom);
    }
  }
  free(summary);
}

static const char *state_of(const cli_ckpt *k) {
  if (k->tmp)
    return "temporary";
  if (k->bare_item && !k->has_commit_file)
    return NULL; /* nested items have no marker */
  return cli_ckpt_finalized(k) ? "finalized" : "unfinalized";
}

static int list_checkpoint(ls_ctx *c, const char *path) {
  cli_ckpt k;
  ckpt_error err = CKPT_ERROR_INIT;
  if (cli_ckpt_open(c->io, path, &k, &err) != CKPT_OK) {
    cli_ckpt_free(&k);
    return cli_report(&err);
  }
  bool oom = false;
  const ckpt_step_metadata *m = k.meta_ok ? &k.meta : NULL;
  if (k.has_meta_file && !k.meta_ok)
    c->damaged = true;
  cJSON *doc = NULL, *items = NULL;
  if (c->json) {
    doc = cJSON_CreateObject();
    cli_jadd(doc, "type", cJSON_CreateString(k.bare_item ? "item" : "checkpoint"), &oom);
    cli_jadd(doc, "path", cJSON_CreateString(k.path), &oom);
    cli_jadd(doc, "state", cli_jstr(state_of(&k)), &oom);
    cli_jadd(doc, "enclosing_checkpoint", cli_jstr(k.enclosing), &oom);
    cli_jadd(doc, "finalized", cJSON_CreateBool(cli_ckpt_finalized(&k)), &oom);
    cli_jadd(doc, "commit_file", cJSON_CreateBool(k.has_commit_file), &oom);
    cli_jadd(doc, "init_timestamp_nsecs", cli_jtimestamp(k.init_text), &oom);
    cli_jadd(doc, "commit_timestamp_nsecs", cli_jtimestamp(k.commit_text), &oom);
    cli_jadd(doc, "metrics",
             m && m->metrics ? cJSON_Duplicate(m->metrics, true) : cJSON_CreateObject(), &oom);
    cli_jadd(
        doc, "custom_metadata",
        m && m->custom_metadata ? cJSON_Duplicate(m->custom_metadata, true) : cJSON_CreateObject(),
        &oom);
    cli_jadd(
        doc, "metadata_error",
        k.has_meta_file && !k.meta_ok ? cJSON_CreateString(k.meta_err.message) : cJSON_CreateNull(),
        &oom);
    cJSON *tmps = cJSON_CreateArray();
    for (size_t i = 0; i < k.n_tmp_items; i++)
      cli_jpush(tmps, cJSON_CreateString(k.tmp_items[i]), &oom);
    cli_jadd(doc, "tmp_items", tmps, &oom);
    cli_jadd(doc, "orbax_descriptor", cJSON_CreateBool(k.orbax_descriptor), &oom);
    items = cJSON_CreateArray();
  } else {
    char tb[64];
    printf("%s %s\n", k.bare_item ? "item directory" : "checkpoint", k.path);
    if (k.enclosing)
      printf("  inside     %s\n", k.enclosing);
    if (state_of(&k))
      printf("  state      %s%s\n", state_of(&k),
             k.has_commit_file || k.bare_item ? "" : " (no commit_success.txt)");
    if (m && m->has_commit_timestamp)
      printf("  committed  %s\n", cli_format_time(m->commit_timestamp_nsecs, tb));
    else if (m && m->has_init_timestamp)
      printf("  started    %s (not committed)\n", cli_format_time(m->init_timestamp_nsecs, tb));
    if (k.has_meta_file && !k.meta_ok)
      printf("  ! %s\n", k.meta_err.message);
    else if (!k.has_meta_file && !k.bare_item)
      printf("  ! no _CHECKPOINT_METADATA\n");
    if (m && m->metrics && m->metrics->child) {
      char *s = cli_json_summary(m->metrics);
      printf("  metrics    %s\n", s ? s : "?");
      free(s);
    }
    if (m && m->custom_metadata && m->custom_metadata->child) {
      char *s = cli_json_summary(m->custom_metadata);
      printf("  custom     %s\n", s ? s : "?");
      free(s);
    }
    if (k.composite)
      printf("  items      %zu\n", k.n_items);
    if (k.orbax_descriptor)
      printf("  descriptor Orbax v1's description of the checkpoint (no user data; not read)\n");
    for (size_t i = 0; i < k.n_tmp_items; i++)
      printf("  temporary  %s (leftover of an interrupted save)\n", k.tmp_items[i]);
  }
  for (size_t i = 0; i < k.n_items; i++)
    list_item(c, &k.items[i], items, &oom);
  cli_ckpt_free(&k);
  int rc = CLI_EXIT_OK;
  if (c->json) {
    cli_jadd(doc, "items", items, &oom);
    rc = cli_json_emit(doc, oom);
  } else if (oom) {
    fprintf(stderr, "ckpt: out of memory\n");
    rc = CLI_EXIT_ERROR;
  }
  if (rc == CLI_EXIT_OK && c->damaged)
    rc = CLI_EXIT_DAMAGED;
  return rc;
}

/* ---------------------------------------------------------------- manager directories */

static const char *step_state(const cli_step *s) {
  if (s->tmp)
    return "temporary";
  return s->finalized ? "finalized" : "unfinalized";
}

static char *join_items(const cli_step *s) {
  size_t n = 1;
  for (size_t i = 0; i < s->n_items; i++)
    n += strlen(s->items[i]) + 1;
  char *o = malloc(n);
  if (o == NULL)
    return NULL;
  o[0] = '\0';
  for (size_t i = 0; i < s->n_items; i++) {
    if (i)
      strcat(o, ",");
    strcat(o, s->items[i]);
  }
  return o;
}

static int list_manager(ls_ctx *c, const char *path) {
  cli_mgr m;
  ckpt_error err = CKPT_ERROR_INIT;
  if (cli_mgr_scan(c->io, path, &m, &err) != CKPT_OK) {
    cli_mgr_free(&m);
    return cli_report(&err);
  }
  bool oom = false;
  int rc = CLI_EXIT_OK;
  size_t fin = 0, tmp = 0;
  for (size_t i = 0; i < m.n; i++) {
    fin += m.steps[i].finalized;
    tmp += m.steps[i].tmp;
  }
  if (c->json) {
    cJSON *doc = cJSON_CreateObject(), *steps = cJSON_CreateArray();
    cli_jadd(doc, "type", cJSON_CreateString("manager"), &oom);
    cli_jadd(doc, "path", cJSON_CreateString(m.path), &oom);
    for (size_t i = 0; i < m.n; i++) {
      const cli_step *s = &m.steps[i];
      cJSON *o = cJSON_CreateObject(), *its = cJSON_CreateArray();
      cli_jadd(o, "step", cli_jint(s->step), &oom);
      cli_jadd(o, "name", cJSON_CreateString(s->name), &oom);
      cli_jadd(o, "path", cJSON_CreateString(s->path), &oom);
      cli_jadd(o, "state", cJSON_CreateString(step_state(s)), &oom);
      cli_jadd(o, "finalized", cJSON_CreateBool(s->finalized), &oom);
      cli_jadd(o, "tmp", cJSON_CreateBool(s->tmp), &oom);
      cli_jadd(o, "commit_timestamp_nsecs", cli_jtimestamp(s->commit_text), &oom);
      cli_jadd(o, "metrics", s->metrics ? cJSON_Duplicate(s->metrics, true) : cJSON_CreateNull(),
               &oom);
      for (size_t k = 0; k < s->n_items; k++)
        cli_jpush(its, cJSON_CreateString(s->items[k]), &oom);
      cli_jadd(o, "items", its, &oom);
      cli_jpush(steps, o, &oom);
    }
    cli_jadd(doc, "steps", steps, &oom);
    rc = cli_json_emit(doc, oom);
  } else {
    printf("steps in %s: %zu finalized", m.path, fin);
    if (tmp)
      printf(", %zu temporary", tmp);
    if (m.n - fin - tmp)
      printf(", %zu unfinalized", m.n - fin - tmp);
    printf("\n");
    if (m.n) {
      cli_table t;
      cli_table_init(&t, 6);
      const char *head[] = {"STEP", "DIRECTORY", "STATE", "COMMITTED", "ITEMS", "METRICS"};
      cli_table_row(&t, head);
      for (size_t i = 0; i < m.n; i++) {
        const cli_step *s = &m.steps[i];
        char num[32], tb[64];
        snprintf(num, sizeof num, "%lld", (long long)s->step);
        char *items = join_items(s);
        char *metrics = s->metrics ? cli_json_summary(s->metrics) : NULL;
        if (items == NULL || (s->metrics && metrics == NULL))
          oom = true;
        const char *row[] = {num,
                             s->name,
                             step_state(s),
                             s->has_commit_time ? cli_format_time(s->commit_nsecs, tb) : NULL,
                             items && items[0] ? items : NULL,
                             metrics};
        cli_table_row(&t, row);
        free(items);
        free(metrics);
      }
      if (!cli_table_print(&t, stdout, 0))
        oom = true;
      cli_table_free(&t);
    }
    if (oom) {
      fprintf(stderr, "ckpt: out of memory\n");
      rc = CLI_EXIT_ERROR;
    }
  }
  cli_mgr_free(&m);
  return rc;
}

static int list_checkpoint_run(void *ctx, const char *path) {
  return list_checkpoint(ctx, path);
}

int cli_cmd_ls(int argc, char **argv) {
  static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                       {"step", required_argument, NULL, 's'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  ls_ctx c = {ckpt_io_default(), false, false};
  int64_t step = -1;
  bool has_step = false;
  opterr = 0;
  int ch;
  while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (ch) {
      case 'j':
        c.json = true;
        break;
      case 's':
        if (!cli_parse_i64(optarg, &step))
          return cli_usage_error("ls", "--step needs a non-negative integer, not '%s'", optarg);
        has_step = true;
        break;
      case 'h':
        fputs(help, stdout);
        return CLI_EXIT_OK;
      default:
        return cli_usage_error("ls", "unknown or incomplete option '%s'", argv[optind - 1]);
    }
  }
  if (argc - optind != 1)
    return cli_usage_error("ls", "%s", argc - optind == 0 ? "missing PATH" : "expected one PATH");
  const char *path = argv[optind];
  cli_path_kind kind;
  ckpt_error err = CKPT_ERROR_INIT;
  if (cli_classify(c.io, path, &kind, &err) != CKPT_OK)
    return cli_report(&err);
  if (kind == CLI_PATH_MANAGER && !has_step)
    return list_manager(&c, path);
  return cli_run_on_checkpoint(c.io, "ls", path, kind, has_step, step, list_checkpoint_run, &c);
}
