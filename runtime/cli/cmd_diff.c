/* cli/cmd_diff.c — `ckpt diff A B`: do two checkpoints hold the same thing? Items are paired
 * by name; PyTree items are compared leaf by leaf (keys only in A or only in B, value types,
 * dtypes, shapes, then the values, within --rtol/--atol as numpy.isclose does, exact by
 * default); JSON items as JSON values; proto items by their text.
 *
 * Values are read slab by slab from both sides over the same boxes, so arrays larger than
 * memory compare in bounded memory and the two checkpoints may be chunked differently. NaN
 * equals NaN (numpy.array_equal(equal_nan=True)), and integers of the same dtype compare
 * exactly, whatever their size. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "diff.h"
#include "inspect/inspect.h"

static const char help[] =
    "Usage: ckpt diff [--json] [--rtol R] [--atol A] [--item NAME] A B\n"
    "\n"
    "Compare two checkpoints (or two item directories): items only in A or B, handler\n"
    "types, and for PyTree items the keys only in A or B, value types, dtypes, shapes and\n"
    "values; JSON items as JSON values, proto items by their text format.\n"
    "Values are equal when |a - b| <= atol + rtol * |b| (numpy.isclose); the default is\n"
    "exact equality. NaN equals NaN.\n"
    "\n"
    "Options:\n"
    "  --rtol R     relative tolerance (default 0)\n"
    "  --atol A     absolute tolerance (default 0)\n"
    "  --item NAME  compare only this item\n"
    "  --json       print one JSON document (keys documented in docs/cli.md)\n"
    "  -h, --help   show this help\n"
    "\n"
    "Exit status: 0 equal; 1 different; 2 usage error, a path missing or not a checkpoint,\n"
    "damaged data that cannot be compared, I/O error.\n";

/* ---------------------------------------------------------------- PyTrees */

static int cmp_leaf_ptr(const void *x, const void *y) {
  const cli_leaf *a = *(const cli_leaf *const *)x, *b = *(const cli_leaf *const *)y;
  return strcmp(a->param, b->param);
}

static const cli_leaf **sorted_leaves(const cli_pytree *p) {
  const cli_leaf **v = malloc((p->n ? p->n : 1) * sizeof *v);
  if (v == NULL)
    return NULL;
  for (size_t i = 0; i < p->n; i++)
    v[i] = &p->leaves[i];
  if (p->n > 1)
    qsort(v, p->n, sizeof *v, cmp_leaf_ptr);
  return v;
}

/* np.ndarray and jax.Array hold the same kind of data; only the restore type differs. */
static bool same_type(const char *a, const char *b) {
  bool aa = strcmp(a, "np.ndarray") == 0 || strcmp(a, "jax.Array") == 0;
  bool ba = strcmp(b, "np.ndarray") == 0 || strcmp(b, "jax.Array") == 0;
  return (aa && ba) || strcmp(a, b) == 0;
}

static void compare_leaf(diff_ctx *c, const char *item, const cli_pytree *pa, const cli_leaf *a,
                         const cli_pytree *pb, const cli_leaf *b) {
  if (!same_type(a->value_type, b->value_type)) {
    char *d = cli_asprintf("%s != %s", a->value_type, b->value_type);
    diff_record(c, "type", item, a->param, d, NULL);
    free(d);
    return;
  }
  if (a->aggregated != NULL || b->aggregated != NULL) {
    /* values kept in the legacy aggregate file, compared whole */
    if (a->aggregated == NULL || b->aggregated == NULL)
      diff_record(c, "storage", item, a->param,
                  a->aggregated ? "aggregate file != zarr array" : "zarr array != aggregate file",
                  NULL);
    else if (!ckpt_tree_equal(a->aggregated, b->aggregated))
      diff_record(c, "values", item, a->param, "the aggregate file's values differ", NULL);
    return;
  }
  if (a->is_string) {
    if (a->string_value == NULL || b->string_value == NULL) {
      ckpt_error err = CKPT_ERROR_INIT;
      ckpt_error_set(&err, CKPT_ECORRUPT, "string leaf '%s' is missing from %s", a->param,
                     CKPT_STRINGS_FILE);
      diff_fail(c, &err);
    } else if (strcmp(a->string_value, b->string_value) != 0) {
      char *d = cli_asprintf("\"%s\" != \"%s\"", a->string_value, b->string_value);
      diff_record(c, "values", item, a->param, d, NULL);
      free(d);
    }
    return;
  }
  if (!a->is_array)
    return;
  if (!a->zarr_ok || !b->zarr_ok) {
    diff_fail(c, a->zarr_ok ? &b->zarr_err : &a->zarr_err);
    return;
  }
  if (a->zarr.dtype != b->zarr.dtype) {
    char *d =
        cli_asprintf("%s != %s", ckpt_dtype_name(a->zarr.dtype), ckpt_dtype_name(b->zarr.dtype));
    diff_record(c, "dtype", item, a->param, d, NULL);
    free(d);
  }
  bool same_shape = a->zarr.ndim == b->zarr.ndim;
  for (int k = 0; same_shape && k < a->zarr.ndim; k++)
    same_shape = a->zarr.shape[k] == b->zarr.shape[k];
  if (!same_shape) {
    char *sa = cli_format_shape(a->zarr.ndim, a->zarr.shape);
    char *sb = cli_format_shape(b->zarr.ndim, b->zarr.shape);
    char *d = cli_asprintf("%s != %s", sa ? sa : "?", sb ? sb : "?");
    diff_record(c, "shape", item, a->param, d, NULL);
    free(d);
    free(sa);
    free(sb);
    return;
  }
  diff_values(c, item, pa, a, pb, b);
}

static void compare_pytrees(diff_ctx *c, const char *item, const cli_item *ia, const cli_item *ib) {
  cli_pytree pa, pb;
  ckpt_error err = CKPT_ERROR_INIT;
  bool oka = cli_pytree_open(c->io, ia->dir, false, &pa, &err) == CKPT_OK;
  bool okb = oka && cli_pytree_open(c->io, ib->dir, false, &pb, &err) == CKPT_OK;
  if (!okb) {
    diff_fail(c, &err);
    cli_pytree_free(&pa);
    if (oka)
      cli_pytree_free(&pb);
    return;
  }
  const cli_leaf **la = sorted_leaves(&pa), **lb = sorted_leaves(&pb);
  if (la == NULL || lb == NULL) {
    c->oom = true;
  } else {
    size_t i = 0, j = 0;
    while (i < pa.n || j < pb.n) {
      int cmp = i == pa.n ? 1 : j == pb.n ? -1 : strcmp(la[i]->param, lb[j]->param);
      if (cmp < 0) {
        diff_record(c, "only in A", item, la[i]->param, la[i]->value_type, NULL);
        i++;
      } else if (cmp > 0) {
        diff_record(c, "only in B", item, lb[j]->param, lb[j]->value_type, NULL);
        j++;
      } else {
        compare_leaf(c, item, &pa, la[i], &pb, lb[j]);
        i++;
        j++;
      }
    }
  }
  free(la);
  free(lb);
  cli_pytree_free(&pa);
  cli_pytree_free(&pb);
}

/* ---------------------------------------------------------------- JSON and proto items */

/* The first place where a and b differ, as a dotted path into the value (malloc'ed) with
 * the two sub-values; NULL path when equal. */
static char *json_first_diff(const cJSON *a, const cJSON *b, const char *prefix, const cJSON **da,
                             const cJSON **db) {
  if (cJSON_Compare(a, b, true))
    return NULL;
  if (cJSON_IsObject(a) && cJSON_IsObject(b)) {
    const cJSON *x;
    cJSON_ArrayForEach(x, a) {
      const cJSON *y = cJSON_GetObjectItemCaseSensitive(b, x->string);
      char *p = prefix[0] ? cli_asprintf("%s.%s", prefix, x->string) : cli_strdup(x->string);
      if (p == NULL)
        return NULL;
      if (y == NULL) {
        *da = x;
        *db = NULL;
        return p;
      }
      char *deeper = json_first_diff(x, y, p, da, db);
      if (deeper) {
        free(p);
        return deeper;
      }
      free(p);
    }
    cJSON_ArrayForEach(x, b) {
      if (cJSON_GetObjectItemCaseSensitive(a, x->string) == NULL) {
        *da = NULL;
        *db = x;
        return prefix[0] ? cli_asprintf("%s.%s", prefix, x->string) : cli_strdup(x->string);
      }
    }
  } else if (cJSON_IsArray(a) && cJSON_IsArray(b) &&
             cJSON_GetArraySize(a) == cJSON_GetArraySize(b)) {
    int i = 0;
    for (const cJSON *x = a->child, *y = b->child; x && y; x = x->next, y = y->next, i++) {
      char *p = prefix[0] ? cli_asprintf("%s.%d", prefix, i) : cli_asprintf("%d", i);
      if (p == NULL)
        return NULL;
      char *deeper = json_first_diff(x, y, p, da, db);
      free(p);
      if (deeper)
        return deeper;
    }
  }
  *da = a;
  *db = b;
  return cli_strdup(prefix[0] ? prefix : "(root)");
}

static char *json_short(const cJSON *v) {
  if (v == NULL)
    return cli_strdup("(absent)");
  char *text = NULL;
  size_t len = 0;
  if (ckpt_json_dump(v, &text, &len, NULL) != CKPT_OK)
    return cli_strdup("?");
  if (len > 60)
    strcpy(text + 57, "...");
  return text;
}

static void compare_json(diff_ctx *c, const char *item, const cli_item *ia, const cli_item *ib) {
  cJSON *a = NULL, *b = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  if (cli_item_load_json(c->io, ia, &a, &err) != CKPT_OK ||
      cli_item_load_json(c->io, ib, &b, &err) != CKPT_OK) {
    diff_fail(c, &err);
  } else {
    const cJSON *da = NULL, *db = NULL;
    char *path = json_first_diff(a, b, "", &da, &db);
    if (path) {
      char *sa = json_short(da), *sb = json_short(db);
      char *d = cli_asprintf("at %s: %s != %s", path, sa ? sa : "?", sb ? sb : "?");
      diff_record(c, "json", item, NULL, d, NULL);
      free(d);
      free(sa);
      free(sb);
      free(path);
    }
  }
  cJSON_Delete(a);
  cJSON_Delete(b);
}

static void compare_proto(diff_ctx *c, const char *item, const cli_item *ia, const cli_item *ib) {
  char *a = NULL, *b = NULL;
  size_t la = 0, lb = 0;
  ckpt_error err = CKPT_ERROR_INIT;
  if (cli_item_load_text(c->io, ia, &a, &la, &err) != CKPT_OK ||
      cli_item_load_text(c->io, ib, &b, &lb, &err) != CKPT_OK) {
    diff_fail(c, &err);
  } else if (la != lb || memcmp(a, b, la) != 0) {
    size_t line = 1;
    for (size_t i = 0; i < la && i < lb && a[i] == b[i]; i++)
      line += a[i] == '\n';
    char *d = cli_asprintf("proto.pbtxt differs from line %zu", line);
    diff_record(c, "proto", item, NULL, d, NULL);
    free(d);
  }
  free(a);
  free(b);
}

/* ---------------------------------------------------------------- items */

static void compare_items(diff_ctx *c, const cli_item *a, const cli_item *b);

static void compare_item_lists(diff_ctx *c, const cli_item *a, size_t na, const cli_item *b,
                               size_t nb) {
  for (size_t i = 0; i < na; i++) {
    const cli_item *m = NULL;
    for (size_t j = 0; j < nb && !m; j++)
      if (strcmp(a[i].name ? a[i].name : "", b[j].name ? b[j].name : "") == 0)
        m = &b[j];
    if (m)
      compare_items(c, &a[i], m);
    else
      diff_record(c, "only in A", a[i].label, NULL, "item", NULL);
  }
  for (size_t j = 0; j < nb; j++) {
    bool found = false;
    for (size_t i = 0; i < na && !found; i++)
      found = strcmp(a[i].name ? a[i].name : "", b[j].name ? b[j].name : "") == 0;
    if (!found)
      diff_record(c, "only in B", b[j].label, NULL, "item", NULL);
  }
}

/* Two typestrs of one handler: equal, or two of Orbax's spellings (v0/v1 API, older module
 * paths) of classes the same built-in reads (core/orbax_handlers.h). */
static bool same_handler(const char *a, const char *b) {
  if (strcmp(a, b) == 0)
    return true;
  const ckpt_orbax_handler *ha = ckpt_orbax_handler_find(a), *hb = ckpt_orbax_handler_find(b);
  return ha != NULL && hb != NULL && ha->builtin != NULL && ha->builtin == hb->builtin;
}

static void compare_items(diff_ctx *c, const cli_item *a, const cli_item *b) {
  const char *item = a->label;
  if (a->typestr && b->typestr && !same_handler(a->typestr, b->typestr)) {
    char *d =
        cli_asprintf("%s != %s", cli_handler_short(a->typestr), cli_handler_short(b->typestr));
    diff_record(c, "handler", item, NULL, d, NULL);
    free(d);
  }
  if (a->kind != b->kind) {
    char *d = cli_asprintf("%s != %s", cli_item_kind_name(a->kind), cli_item_kind_name(b->kind));
    diff_record(c, "kind", item, NULL, d, NULL);
    free(d);
    return;
  }
  switch (a->kind) {
    case CLI_ITEM_PYTREE:
      compare_pytrees(c, item, a, b);
      break;
    case CLI_ITEM_JSON:
      compare_json(c, item, a, b);
      break;
    case CLI_ITEM_PROTO:
      compare_proto(c, item, a, b);
      break;
    case CLI_ITEM_COMPOSITE:
      compare_item_lists(c, a->children, a->n_children, b->children, b->n_children);
      break;
    case CLI_ITEM_MISSING:
    case CLI_ITEM_UNKNOWN: {
      ckpt_error err = CKPT_ERROR_INIT;
      ckpt_error_set(&err, CKPT_ECORRUPT, "item '%s' is %s in both checkpoints", item,
                     a->kind == CLI_ITEM_MISSING ? "missing" : "unrecognised");
      diff_fail(c, &err);
      break;
    }
  }
}

static bool single(const cli_ckpt *k) {
  return k->n_items == 1 && k->items[0].name == NULL;
}

int cli_cmd_diff(int argc, char **argv) {
  static const struct option opts[] = {
      {"json", no_argument, NULL, 'j'},       {"rtol", required_argument, NULL, 'r'},
      {"atol", required_argument, NULL, 'a'}, {"item", required_argument, NULL, 'i'},
      {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0}};
  diff_ctx c;
  memset(&c, 0, sizeof c);
  c.io = ckpt_io_default();
  const char *only = NULL;
  opterr = 0;
  int ch;
  while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (ch) {
      case 'j':
        c.json = true;
        break;
      case 'r':
        if (!cli_parse_tolerance(optarg, &c.rtol))
          return cli_usage_error("diff", "--rtol needs a finite number >= 0, not '%s'", optarg);
        break;
      case 'a':
        if (!cli_parse_tolerance(optarg, &c.atol))
          return cli_usage_error("diff", "--atol needs a finite number >= 0, not '%s'", optarg);
        break;
      case 'i':
        only = optarg;
        break;
      case 'h':
        fputs(help, stdout);
        return CLI_EXIT_OK;
      default:
        return cli_usage_error("diff", "unknown or incomplete option '%s'", argv[optind - 1]);
    }
  }
  if (argc - optind != 2)
    return cli_usage_error("diff", "%s",
                           argc - optind < 2 ? "missing A or B" : "expected two paths");
  const char *pa = argv[optind], *pb = argv[optind + 1];
  ckpt_error err = CKPT_ERROR_INIT;
  cli_path_kind ka, kb;
  if (cli_classify(c.io, pa, &ka, &err) != CKPT_OK || cli_classify(c.io, pb, &kb, &err) != CKPT_OK)
    return cli_report(&err);
  if (ka == CLI_PATH_MANAGER || kb == CLI_PATH_MANAGER)
    return cli_usage_error("diff", "'%s' is a directory of steps; compare step directories",
                           ka == CLI_PATH_MANAGER ? pa : pb);
  cli_ckpt a, b;
  if (cli_ckpt_open(c.io, pa, &a, &err) != CKPT_OK) {
    cli_ckpt_free(&a);
    return cli_report(&err);
  }
  if (cli_ckpt_open(c.io, pb, &b, &err) != CKPT_OK) {
    cli_ckpt_free(&a);
    cli_ckpt_free(&b);
    return cli_report(&err);
  }
  if (c.json)
    c.diffs = cJSON_CreateArray();
  int rc = CLI_EXIT_OK;
  if (only) {
    cli_item *ia = cli_ckpt_find_item(&a, only), *ib = cli_ckpt_find_item(&b, only);
    if (ia == NULL && ib == NULL) {
      fprintf(stderr, "ckpt: diff: neither checkpoint has an item '%s'\n", only);
      rc = CLI_EXIT_ERROR;
    } else if (ia == NULL || ib == NULL) {
      diff_record(&c, ia ? "only in A" : "only in B", only, NULL, "item", NULL);
    } else {
      compare_items(&c, ia, ib);
    }
  } else if (single(&a) || single(&b)) {
    if (a.n_items == 1 && b.n_items == 1)
      compare_items(&c, &a.items[0], &b.items[0]);
    else {
      fprintf(stderr,
              "ckpt: diff: one side is a single-item checkpoint and the other has %zu "
              "items; use --item to pick one\n",
              single(&a) ? b.n_items : a.n_items);
      rc = CLI_EXIT_ERROR;
    }
  } else {
    compare_item_lists(&c, a.items, a.n_items, b.items, b.n_items);
  }
  if (rc == CLI_EXIT_OK && c.error)
    rc = c.error;
  if (rc == CLI_EXIT_OK) {
    if (c.json) {
      cJSON *doc = cJSON_CreateObject();
      cli_jadd(doc, "a", cJSON_CreateString(a.path), &c.oom);
      cli_jadd(doc, "b", cJSON_CreateString(b.path), &c.oom);
      cli_jadd(doc, "equal", cJSON_CreateBool(c.n_diffs == 0), &c.oom);
      cli_jadd(doc, "rtol", cli_jdouble(c.rtol), &c.oom);
      cli_jadd(doc, "atol", cli_jdouble(c.atol), &c.oom);
      cli_jadd(doc, "differences", c.diffs, &c.oom);
      c.diffs = NULL;
      rc = cli_json_emit(doc, c.oom);
    } else if (c.oom) {
      fprintf(stderr, "ckpt: out of memory\n");
      rc = CLI_EXIT_ERROR;
    } else if (c.n_diffs == 0) {
      printf("no differences\n");
    } else {
      printf("%zu difference%s\n", c.n_diffs, c.n_diffs == 1 ? "" : "s");
    }
    if (rc == CLI_EXIT_OK && c.n_diffs)
      rc = CLI_EXIT_DIFFERENT;
  }
  cJSON_Delete(c.diffs);
  cli_ckpt_free(&a);
  cli_ckpt_free(&b);
  return rc;
}
