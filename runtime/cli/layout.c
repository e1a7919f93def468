/* cli/layout.c — what a path holds, read from the outside: a checkpoint (its
 * _CHECKPOINT_METADATA, commit marker and items), a bare item directory, or a directory of
 * steps. Items are recognised by the files their handlers write (docs/format.md):
 * _METADATA (or, from older Orbax, the aggregate `checkpoint` file or array_metadatas/) for
 * PyTrees, `metadata` (or `metrics/metrics`, or Orbax v1's `data.json`) for JSON, proto.pbtxt
 * for protos, and subdirectories holding such items for nested composites (the random-key
 * handlers). Handler typestrs are read through core/orbax_handlers.h (both Orbax APIs).
 * Nothing here trusts names read from files: item names from _CHECKPOINT_METADATA are checked
 * before they become paths. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "inspect/inspect.h"

#define MAX_NESTING 4

const char *cli_item_kind_name(cli_item_kind kind) {
  switch (kind) {
    case CLI_ITEM_PYTREE:
      return "pytree";
    case CLI_ITEM_JSON:
      return "json";
    case CLI_ITEM_PROTO:
      return "proto";
    case CLI_ITEM_COMPOSITE:
      return "composite";
    case CLI_ITEM_MISSING:
      return "missing";
    case CLI_ITEM_UNKNOWN:
      break;
  }
  return "unknown";
}

ckpt_io_kind cli_kind_of(ckpt_io *io, const char *dir, const char *name) {
  char *p = name ? ckpt_path_join(dir, name) : cli_strdup(dir);
  if (p == NULL)
    return CKPT_IO_KIND_MISSING;
  ckpt_io_kind kind = CKPT_IO_KIND_MISSING;
  uint64_t size;
  if (ckpt_io_stat(io, p, &kind, &size, NULL) != CKPT_OK)
    kind = CKPT_IO_KIND_MISSING;
  free(p);
  return kind;
}

static bool is_file(ckpt_io *io, const char *dir, const char *name) {
  return cli_kind_of(io, dir, name) == CKPT_IO_KIND_FILE;
}

bool cli_dir_is_item(ckpt_io *io, const char *dir) {
  return is_file(io, dir, CKPT_METADATA_FILE) || is_file(io, dir, "metadata") ||
         is_file(io, dir, "proto.pbtxt") || is_file(io, dir, ckpt_path_base(dir)) ||
         is_file(io, dir, CKPT_JSON_V1_FILE) || is_file(io, dir, CKPT_AGGREGATE_FILE);
}

static void item_free(cli_item *it) {
  for (size_t i = 0; i < it->n_children; i++)
    item_free(&it->children[i]);
  free(it->children);
  free(it->name);
  free(it->label);
  free(it->dir);
  free(it->typestr);
  free(it->file);
  memset(it, 0, sizeof *it);
}

static ckpt_status oom(ckpt_error *err) {
  return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
}

static ckpt_status detect(ckpt_io *io, cli_item *it, int depth, ckpt_error *err);

/* Nested items: the subdirectories of it->dir that are items themselves. */
static ckpt_status detect_children(ckpt_io *io, cli_item *it, int depth, ckpt_error *err) {
  char **names = NULL;
  size_t n = 0;
  ckpt_status st = ckpt_io_list_dir(io, it->dir, &names, &n, err);
  if (st != CKPT_OK)
    return st;
  it->children = calloc(n ? n : 1, sizeof *it->children);
  if (it->children == NULL)
    st = oom(err);
  for (size_t i = 0; st == CKPT_OK && i < n; i++) {
    if (ckpt_path_is_tmp(names[i]) || cli_kind_of(io, it->dir, names[i]) != CKPT_IO_KIND_DIR)
      continue;
    cli_item *c = &it->children[it->n_children];
    c->name = cli_strdup(names[i]);
    c->dir = ckpt_path_join(it->dir, names[i]);
    c->label = it->label[0] ? cli_asprintf("%s/%s", it->label, names[i]) : cli_strdup(names[i]);
    if (c->name == NULL || c->dir == NULL || c->label == NULL) {
      item_free(c);
      st = oom(err);
      break;
    }
    st = detect(io, c, depth + 1, err);
    if (st != CKPT_OK || c->kind == CLI_ITEM_UNKNOWN)
      item_free(c);
    else
      it->n_children++;
  }
  ckpt_io_free_names(names, n);
  return st;
}

/* A JSON item saved under its own file name (JsonCheckpointHandler(filename=...),
 * docs/handlers-json-proto.md): item_handlers names the JSON handler and the directory holds
 * one regular file besides the commit marker; that file is the item's. */
static ckpt_status detect_named_json(ckpt_io *io, cli_item *it, ckpt_error *err) {
  const ckpt_orbax_handler *oh = ckpt_orbax_handler_find(it->typestr);
  if (oh == NULL || oh->item != CKPT_ORBAX_ITEM_JSON)
    return CKPT_OK;
  char **names = NULL;
  size_t n = 0;
  ckpt_status st = ckpt_io_list_dir(io, it->dir, &names, &n, err);
  if (st != CKPT_OK)
    return st;
  const char *only = NULL;
  size_t files = 0;
  for (size_t i = 0; i < n; i++) {
    if (strcmp(names[i], CKPT_COMMIT_FILE) == 0 || !is_file(io, it->dir, names[i]))
      continue;
    files++;
    only = names[i];
  }
  if (files == 1) {
    it->file = cli_strdup(only);
    if (it->file == NULL)
      st = oom(err);
    else
      it->kind = CLI_ITEM_JSON;
  }
  ckpt_io_free_names(names, n);
  return st;
}

/* True when a subdirectory of dir is a zarr array (holds .zarray): a PyTree item whose
 * _METADATA is missing (older Orbax), whose tree the view rebuilds from its arrays. */
static bool has_zarr_child(ckpt_io *io, const char *dir) {
  char **names = NULL;
  size_t n = 0;
  if (ckpt_io_list_dir(io, dir, &names, &n, NULL) != CKPT_OK)
    return false;
  bool found = false;
  for (size_t i = 0; i < n && !found; i++) {
    if (names[i][0] == '.' || ckpt_path_is_tmp(names[i]))
      continue;
    char *sub = ckpt_path_join(dir, names[i]);
    found = sub != NULL && cli_kind_of(io, dir, names[i]) == CKPT_IO_KIND_DIR &&
            (is_file(io, sub, CKPT_ZARR_METADATA_FILE) || is_file(io, sub, CKPT_ZARR3_METADATA_FILE));
    free(sub);
  }
  ckpt_io_free_names(names, n);
  return found;
}

/* Decides it->kind from the files in it->dir. */
static ckpt_status detect(ckpt_io *io, cli_item *it, int depth, ckpt_error *err) {
  ckpt_io_kind k = cli_kind_of(io, it->dir, NULL);
  if (k == CKPT_IO_KIND_MISSING) {
    it->kind = CLI_ITEM_MISSING;
    return CKPT_OK;
  }
  if (k != CKPT_IO_KIND_DIR) {
    it->kind = CLI_ITEM_UNKNOWN;
    return CKPT_OK;
  }
  /* A PyTree item without _METADATA (older Orbax) still has its legacy aggregate file,
   * array_metadatas/ or its OCDBT database (storage/pytree_meta.h, ckpt_pytree_meta_read_any). */
  if (is_file(io, it->dir, CKPT_METADATA_FILE) || is_file(io, it->dir, CKPT_AGGREGATE_FILE) ||
      cli_kind_of(io, it->dir, CKPT_ARRAY_METADATAS_DIR) == CKPT_IO_KIND_DIR ||
      ckpt_ocdbt_present(io, it->dir))
    it->kind = CLI_ITEM_PYTREE;
  else if (is_file(io, it->dir, "proto.pbtxt"))
    it->kind = CLI_ITEM_PROTO;
  else if (is_file(io, it->dir, "metadata") || is_file(io, it->dir, ckpt_path_base(it->dir)) ||
           is_file(io, it->dir, CKPT_JSON_V1_FILE))
    it->kind = CLI_ITEM_JSON;
  else
    it->kind = CLI_ITEM_UNKNOWN;
  ckpt_status st = CKPT_OK;
  if (it->kind == CLI_ITEM_UNKNOWN)
    st = detect_named_json(io, it, err);
  /* (ckpt writes _METADATA in every item with _CHECKSUMS: without it, that is damage) */
  if (st == CKPT_OK && it->kind == CLI_ITEM_UNKNOWN && !is_file(io, it->dir, CKPT_CHECKSUMS_FILE) &&
      has_zarr_child(io, it->dir))
    it->kind = CLI_ITEM_PYTREE;
  if (st != CKPT_OK || it->kind != CLI_ITEM_UNKNOWN || depth >= MAX_NESTING)
    return st;
  st = detect_children(io, it, depth, err);
  if (st == CKPT_OK && it->n_children > 0)
    it->kind = CLI_ITEM_COMPOSITE;
  return st;
}

void cli_ckpt_free(cli_ckpt *c) {
  for (size_t i = 0; i < c->n_items; i++)
    item_free(&c->items[i]);
  free(c->items);
  ckpt_io_free_names(c->tmp_items, c->n_tmp_items);
  ckpt_step_metadata_clear(&c->meta);
  free(c->path);
  free(c->enclosing);
  memset(c, 0, sizeof *c);
}

static int cmp_items(const void *a, const void *b) {
  const cli_item *x = a, *y = b;
  return strcmp(x->name ? x->name : "", y->name ? y->name : "");
}

static cli_item *find_named(cli_ckpt *c, const char *name) {
  for (size_t i = 0; i < c->n_items; i++)
    if (c->items[i].name && strcmp(c->items[i].name, name) == 0)
      return &c->items[i];
  return NULL;
}

static ckpt_status add_item(cli_ckpt *c, const char *name, const char *typestr, bool listed,
                            ckpt_io *io, ckpt_error *err) {
  cli_item *it = &c->items[c->n_items];
  memset(it, 0, sizeof *it);
  it->name = cli_strdup(name);
  it->label = cli_strdup(name);
  it->typestr = typestr ? cli_strdup(typestr) : NULL;
  it->listed = listed;
  it->top = true;
  if (it->name == NULL || it->label == NULL || (typestr && it->typestr == NULL)) {
    item_free(it);
    return oom(err);
  }
  ckpt_error local = CKPT_ERROR_INIT;
  if (ckpt_composite_check_item_name(name, &local) != CKPT_OK) {
    /* A hostile or broken item name never becomes a path. */
    it->kind = CLI_ITEM_UNKNOWN;
    c->n_items++;
    return CKPT_OK;
  }
  it->dir = ckpt_path_join(c->path, name);
  if (it->dir == NULL) {
    item_free(it);
    return oom(err);
  }
  ckpt_status st = detect(io, it, 1, err);
  if (st != CKPT_OK) {
    item_free(it);
    return st;
  }
  c->n_items++;
  return CKPT_OK;
}

/* Items of a composite: those _CHECKPOINT_METADATA names plus the subdirectories that hold
 * items; tmp subdirectories are collected separately. */
static ckpt_status open_composite(ckpt_io *io, cli_ckpt *c, const cJSON *handlers,
                                  ckpt_error *err) {
  char **names = NULL;
  size_t n = 0;
  ckpt_status st = ckpt_io_list_dir(io, c->path, &names, &n, err);
  if (st != CKPT_OK)
    return st;
  size_t cap = n + (size_t)cJSON_GetArraySize(handlers) + 1;
  c->items = calloc(cap, sizeof *c->items);
  c->tmp_items = calloc(n ? n : 1, sizeof *c->tmp_items);
  if (c->items == NULL || c->tmp_items == NULL)
    st = oom(err);
  const cJSON *h;
  cJSON_ArrayForEach(h, handlers) {
    if (st != CKPT_OK)
      break;
    if (h->string == NULL || find_named(c, h->string))
      continue;
    /* Orbax v1's descriptor item: no user data; noted, not listed as an item. */
    if (cJSON_IsString(h) && ckpt_orbax_is_descriptor(h->valuestring)) {
      c->orbax_descriptor = true;
      continue;
    }
    st = add_item(c, h->string, cJSON_IsString(h) ? h->valuestring : NULL, true, io, err);
  }
  for (size_t i = 0; st == CKPT_OK && i < n; i++) {
    if (cli_kind_of(io, c->path, names[i]) != CKPT_IO_KIND_DIR)
      continue;
    if (ckpt_path_is_tmp(names[i])) {
      c->tmp_items[c->n_tmp_items] = cli_strdup(names[i]);
      if (c->tmp_items[c->n_tmp_items] == NULL)
        st = oom(err);
      else
        c->n_tmp_items++;
      continue;
    }
    if (find_named(c, names[i]) ||
        (c->orbax_descriptor && strcmp(names[i], CKPT_COMPOSITE_RESERVED_ITEM) == 0))
      continue; /* (the descriptor's directory, when Orbax left it) */
    char *dir = ckpt_path_join(c->path, names[i]);
    cli_item probe = {0};
    probe.dir = dir;
    probe.label = cli_strdup(names[i]);
    if (dir == NULL || probe.label == NULL) {
      free(probe.label);
      free(dir);
      st = oom(err);
      break;
    }
    st = detect(io, &probe, 1, err);
    bool is_item = probe.kind != CLI_ITEM_UNKNOWN && probe.kind != CLI_ITEM_MISSING;
    item_free(&probe);
    if (st == CKPT_OK && is_item)
      st = add_item(c, names[i], NULL, false, io, err);
  }
  ckpt_io_free_names(names, n);
  if (st == CKPT_OK && c->n_items > 1)
    qsort(c->items, c->n_items, sizeof *c->items, cmp_items);
  return st;
}

static ckpt_status open_single(ckpt_io *io, cli_ckpt *c, const char *typestr, ckpt_error *err) {
  c->items = calloc(1, sizeof *c->items);
  if (c->items == NULL)
    return oom(err);
  cli_item *it = &c->items[0];
  it->label = cli_strdup("");
  it->dir = cli_strdup(c->path);
  it->typestr = typestr ? cli_strdup(typestr) : NULL;
  if (it->label == NULL || it->dir == NULL || (typestr && it->typestr == NULL)) {
    item_free(it);
    return oom(err);
  }
  c->n_items = 1;
  return detect(io, it, 1, err);
}

/* The path as given, normalised; a symlink given on the command line is resolved (only the
 * inside of a checkpoint is untrusted). */
static ckpt_status resolve(ckpt_io *io, const char *path, char **out, ckpt_io_kind *kind,
                           ckpt_error *err) {
  *out = NULL;
  char *p = ckpt_path_normalize(path);
  if (p == NULL)
    return oom(err);
  uint64_t size;
  ckpt_status st = ckpt_io_stat(io, p, kind, &size, err);
  if (st == CKPT_OK && *kind == CKPT_IO_KIND_SYMLINK) {
    char *real = realpath(p, NULL);
    if (real == NULL) {
      *kind = CKPT_IO_KIND_MISSING;
    } else {
      free(p);
      p = real;
      st = ckpt_io_stat(io, p, kind, &size, err);
    }
  }
  if (st != CKPT_OK) {
    free(p);
    return st;
  }
  if (*kind == CKPT_IO_KIND_MISSING) {
    ckpt_error_set(err, CKPT_ENOENT, "'%s' does not exist", path);
    free(p);
    return CKPT_ENOENT;
  }
  if (*kind != CKPT_IO_KIND_DIR) {
    ckpt_error_set(err, CKPT_EINVAL, "'%s' is not a directory", path);
    free(p);
    return CKPT_EINVAL;
  }
  *out = p;
  return CKPT_OK;
}

/* The checkpoint directory (holding _CHECKPOINT_METADATA) at most MAX_NESTING levels above
 * path, as a malloc'ed path; NULL when there is none. */
static char *enclosing_checkpoint(ckpt_io *io, const char *path) {
  /* "./x" so that the parent of a bare relative name is the working directory */
  char *p = strchr(path, '/') ? cli_strdup(path) : cli_asprintf("./%s", path);
  for (int level = 0; p && level < MAX_NESTING; level++) {
    char *slash = strrchr(p, '/');
    if (slash == NULL)
      break;
    if (slash == p)
      slash[1] = '\0';
    else
      *slash = '\0';
    if (cli_kind_of(io, p, CKPT_CHECKPOINT_METADATA_FILE) == CKPT_IO_KIND_FILE)
      return p;
    if (slash == p)
      break;
  }
  free(p);
  return NULL;
}

ckpt_status cli_ckpt_open(ckpt_io *io, const char *path, cli_ckpt *c, ckpt_error *err) {
  memset(c, 0, sizeof *c);
  ckpt_io_kind kind;
  ckpt_status st = resolve(io, path, &c->path, &kind, err);
  if (st != CKPT_OK)
    return st;
  c->tmp = ckpt_path_is_tmp(ckpt_path_base(c->path));
  /* Finalized by the rule the library applies (storage/step_dirs.h), which knows the pending
   * marker of an interrupted commit-file save. */
  ckpt_dir_info info;
  st = ckpt_dir_classify(io, c->path, CKPT_FINALIZED_ANY, &info, err);
  if (st != CKPT_OK)
    return st;
  c->finalized = info.state == CKPT_DIR_FINALIZED;
  c->commit_pending = info.pending;
  c->has_commit_file = is_file(io, c->path, CKPT_COMMIT_FILE);
  c->has_meta_file = cli_kind_of(io, c->path, CKPT_CHECKPOINT_METADATA_FILE) != CKPT_IO_KIND_MISSING;
  if (c->has_meta_file) {
    c->meta_ok = ckpt_step_metadata_read(io, c->path, &c->meta, &c->meta_err) == CKPT_OK;
    if (!c->meta_ok)
      ckpt_step_metadata_clear(&c->meta);
  }
  if (c->meta_ok)
    cli_read_timestamps(io, c->path, c->init_text, c->commit_text);
  const cJSON *ih = c->meta_ok ? c->meta.item_handlers : NULL;
  if (cJSON_IsObject(ih)) {
    c->composite = true;
    return open_composite(io, c, ih, err);
  }
  if (cJSON_IsString(ih))
    return open_single(io, c, ih->valuestring, err);
  /* No usable item_handlers: decide from the contents. */
  if (!c->has_meta_file) {
    c->enclosing = enclosing_checkpoint(io, c->path);
    c->bare_item = c->enclosing != NULL;
  }
  if (cli_dir_is_item(io, c->path)) {
    c->bare_item = !c->has_meta_file;
    return open_single(io, c, NULL, err);
  }
  c->composite = true;
  cJSON *none = cJSON_CreateObject();
  if (none == NULL)
    return oom(err);
  st = open_composite(io, c, none, err);
  cJSON_Delete(none);
  if (st == CKPT_OK && c->n_items == 0 && !c->has_meta_file && !c->has_commit_file && !c->tmp)
    st =
        ckpt_error_set(err, CKPT_EINVAL, "'%s' is not a checkpoint (no %s, %s or item directories)",
                       path, CKPT_CHECKPOINT_METADATA_FILE, CKPT_COMMIT_FILE);
  return st;
}

static cli_item *find_in(cli_item *items, size_t n, const char *label) {
  for (size_t i = 0; i < n; i++) {
    cli_item *it = &items[i];
    if (strcmp(it->label, label) == 0)
      return it;
    size_t l = strlen(it->label);
    if (it->n_children && strncmp(label, it->label, l) == 0 && (l == 0 || label[l] == '/')) {
      cli_item *c = find_in(it->children, it->n_children, label);
      if (c)
        return c;
    }
  }
  return NULL;
}

cli_item *cli_ckpt_find_item(cli_ckpt *c, const char *label) {
  return find_in(c->items, c->n_items, label);
}

bool cli_ckpt_finalized(const cli_ckpt *c) {
  return c->finalized;
}

ckpt_status cli_classify(ckpt_io *io, const char *path, cli_path_kind *kind, ckpt_error *err) {
  char *p = NULL;
  ckpt_io_kind k;
  ckpt_status st = resolve(io, path, &p, &k, err);
  if (st != CKPT_OK)
    return st;
  *kind = CLI_PATH_CHECKPOINT;
  if (cli_kind_of(io, p, CKPT_CHECKPOINT_METADATA_FILE) != CKPT_IO_KIND_MISSING ||
      is_file(io, p, CKPT_COMMIT_FILE) || cli_dir_is_item(io, p) ||
      ckpt_path_is_tmp(ckpt_path_base(p))) {
    free(p);
    return CKPT_OK;
  }
  char **names = NULL;
  size_t n = 0;
  st = ckpt_io_list_dir(io, p, &names, &n, err);
  bool steps = false, items = false;
  for (size_t i = 0; st == CKPT_OK && i < n && !steps; i++) {
    if (cli_kind_of(io, p, names[i]) != CKPT_IO_KIND_DIR)
      continue;
    int64_t step;
    bool tmp;
    if (cli_parse_step_name(names[i], &step, &tmp)) {
      steps = true;
    } else if (!items) {
      char *d = ckpt_path_join(p, names[i]);
      items = d != NULL && cli_dir_is_item(io, d);
      free(d);
    }
  }
  if (st == CKPT_OK) {
    if (steps || n == 0)
      *kind = CLI_PATH_MANAGER;
    else if (!items)
      st = ckpt_error_set(err, CKPT_EINVAL,
                          "'%s' is neither a checkpoint nor a directory of checkpoint steps", path);
  }
  ckpt_io_free_names(names, n);
  free(p);
  return st;
}
