/* cli/cmd_cat.c — `ckpt cat PATH KEY`: the value of one leaf. Small arrays print as numpy
 * prints them; arrays above numpy's print threshold (or with --stats) get summary statistics
 * computed slab by slab, so a multi-gigabyte array is summarised in bounded memory. Scalars and
 * strings print plainly, JSON items as JSON (KEY may go inside: "config/optimizer.lr"), proto
 * items as their text format.
 *
 * KEY is "<item>/<param>" ("params/layer0.w"), or just the parameter name when --item is given,
 * when the checkpoint has a single item, or when exactly one item has a leaf of that name. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cat.h"
#include "inspect/inspect.h"

static const char help[] =
    "Usage: ckpt cat [--json] [--stats | --values] [--item NAME] [--step N] PATH KEY\n"
    "\n"
    "Print the value of one leaf of a checkpoint. KEY is the leaf's parameter name (its\n"
    "keys joined by '.', e.g. layer0.w or opt.1.mu), prefixed by the item and '/'\n"
    "(params/layer0.w) unless --item is given or the name is unambiguous.\n"
    "Arrays of at most 1000 elements are printed as numpy prints them; larger arrays get\n"
    "summary statistics (shape, dtype, min, max, mean, std over the finite elements, and\n"
    "the numbers of NaN, infinite and zero elements). Scalars and strings are printed\n"
    "plainly; a JSON item (or a value inside it, KEY = item/a.b.0) prints as JSON; a proto\n"
    "item prints its text format.\n"
    "\n"
    "Options:\n"
    "  --stats      summary statistics even for small arrays\n"
    "  --values     the values even of large arrays (numpy's summarised form, '...')\n"
    "  --item NAME  the item holding KEY\n"
    "  --step N     with a directory of steps: read step N (default: the latest)\n"
    "  --json       print one JSON document (keys documented in docs/cli.md)\n"
    "  -h, --help   show this help\n"
    "\n"
    "Exit status: 0 printed; 1 the data read is damaged (checksum, size, metadata);\n"
    "2 usage error, PATH or KEY not found, I/O error.\n";

/* ---------------------------------------------------------------- items */

/* Up to 8 leaf names below prefix (all when prefix is ""), comma-separated; malloc'ed. */
static char *leaf_list(const cli_pytree *p, const char *prefix, size_t *count) {
  size_t pl = strlen(prefix), cap = 256, len = 0, shown = 0;
  char *s = malloc(cap);
  if (s == NULL)
    return NULL;
  s[0] = '\0';
  *count = 0;
  for (size_t i = 0; i < p->n; i++) {
    const char *name = p->leaves[i].param;
    if (pl && (strncmp(name, prefix, pl) != 0 || name[pl] != '.'))
      continue;
    (*count)++;
    if (shown == 8)
      continue;
    size_t nl = strlen(name);
    if (len + nl + 8 > cap) {
      cap = (len + nl + 8) * 2;
      char *g = realloc(s, cap);
      if (g == NULL) {
        free(s);
        return NULL;
      }
      s = g;
    }
    len += (size_t)sprintf(s + len, "%s%s", shown ? ", " : "", name);
    shown++;
  }
  if (*count > shown) {
    char *g = realloc(s, len + 8);
    if (g == NULL) {
      free(s);
      return NULL;
    }
    s = g;
    strcpy(s + len, ", ...");
  }
  return s;
}

static int cat_pytree(const cat_opts *o, ckpt_io *io, const cli_item *it, const char *key,
                      cJSON *doc, bool *oom) {
  cli_pytree p;
  ckpt_error err = CKPT_ERROR_INIT;
  if (cli_pytree_open(io, it->dir, false, &p, &err) != CKPT_OK) {
    cli_pytree_free(&p);
    return cli_report(&err);
  }
  int rc = CLI_EXIT_OK;
  const char *where = it->label[0] ? it->label : ckpt_path_base(it->dir);
  cli_leaf *l = cli_pytree_find(&p, key);
  if (l == NULL) {
    size_t count = 0;
    char *list = leaf_list(&p, key, &count);
    if (key[0] == '\0')
      fprintf(stderr, "ckpt: cat: '%s' is a PyTree item; name one of its %zu leaves: %s\n", where,
              count, list ? list : "");
    else if (count)
      fprintf(stderr, "ckpt: cat: '%s' is a subtree of item '%s' with %zu leaves: %s\n", key, where,
              count, list ? list : "");
    else
      fprintf(stderr, "ckpt: cat: item '%s' has no leaf '%s'\n", where, key);
    free(list);
    cli_pytree_free(&p);
    return CLI_EXIT_ERROR;
  }
  if (doc) {
    cli_jadd(doc, "key", cJSON_CreateString(l->param), oom);
    cli_jadd(doc, "value_type", cJSON_CreateString(l->value_type), oom);
  }
  if (l->aggregated != NULL) {
    /* a value kept in the legacy aggregate file: printed as JSON */
    cJSON *v = cli_tree_value_json(l->aggregated);
    if (v == NULL) {
      *oom = true;
    } else if (doc) {
      cli_jadd(doc, "value", v, oom);
      v = NULL;
    } else {
      char *text = NULL;
      size_t len = 0;
      ckpt_error err = CKPT_ERROR_INIT;
      if (ckpt_json_dump(v, &text, &len, &err) != CKPT_OK)
        rc = cli_report(&err);
      else
        printf("%s\n", text);
      free(text);
    }
    cJSON_Delete(v);
  } else if (l->is_array) {
    rc = cat_array(o, io, &p, l, doc, oom);
  } else if (l->is_string) {
    if (l->string_value == NULL) {
      fprintf(stderr, "ckpt: cat: string leaf '%s' is missing from %s/%s\n", l->param, it->dir,
              CKPT_STRINGS_FILE);
      rc = CLI_EXIT_DAMAGED;
    } else if (doc) {
      cli_jadd(doc, "value", cJSON_CreateString(l->string_value), oom);
    } else {
      printf("%s\n", l->string_value);
    }
  } else {
    const char *vt = l->value_type;
    const char *text = strcmp(vt, "Dict") == 0    ? "{}"
                       : strcmp(vt, "List") == 0  ? "[]"
                       : strcmp(vt, "Tuple") == 0 ? "()"
                       : strcmp(vt, "None") == 0  ? "None"
                                                  : vt;
    if (doc)
      cli_jadd(doc, "value", cJSON_CreateString(text), oom);
    else
      printf("%s\n", text);
  }
  cli_pytree_free(&p);
  return rc;
}

static int print_json_value(const cJSON *v, cJSON *doc, bool *oom) {
  if (doc) {
    cli_jadd(doc, "value", cJSON_Duplicate(v, true), oom);
    return CLI_EXIT_OK;
  }
  if (cJSON_IsString(v)) {
    printf("%s\n", v->valuestring);
    return CLI_EXIT_OK;
  }
  char *text = NULL;
  size_t len = 0;
  ckpt_error err = CKPT_ERROR_INIT;
  if (ckpt_json_dump(v, &text, &len, &err) != CKPT_OK)
    return cli_report(&err);
  printf("%s\n", text);
  free(text);
  return CLI_EXIT_OK;
}

static int cat_json(ckpt_io *io, const cli_item *it, const char *key, cJSON *doc, bool *oom) {
  cJSON *root = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  if (cli_item_load_json(io, it, &root, &err) != CKPT_OK)
    return cli_report(&err);
  const cJSON *v = root;
  char *path = cli_strdup(key);
  if (path == NULL) {
    cJSON_Delete(root);
    fprintf(stderr, "ckpt: out of memory\n");
    return CLI_EXIT_ERROR;
  }
  /* a.b.0: object keys and array indices; a key containing '.' is tried whole first */
  char *rest = path[0] ? path : NULL;
  while (rest && v) {
    const cJSON *whole = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, rest) : NULL;
    if (whole) {
      v = whole;
      break;
    }
    char *dot = strchr(rest, '.');
    if (dot)
      *dot = '\0';
    if (cJSON_IsObject(v)) {
      v = cJSON_GetObjectItemCaseSensitive(v, rest);
    } else if (cJSON_IsArray(v)) {
      int64_t idx;
      v = cli_parse_i64(rest, &idx) && idx < cJSON_GetArraySize(v) ? cJSON_GetArrayItem(v, (int)idx)
                                                                   : NULL;
    } else {
      v = NULL;
    }
    rest = dot ? dot + 1 : NULL;
  }
  int rc;
  if (v == NULL) {
    fprintf(stderr, "ckpt: cat: JSON item '%s' has no value at '%s'\n",
            it->label[0] ? it->label : ckpt_path_base(it->dir), key);
    rc = CLI_EXIT_ERROR;
  } else {
    if (doc)
      cli_jadd(doc, "key", cJSON_CreateString(key), oom);
    rc = print_json_value(v, doc, oom);
  }
  free(path);
  cJSON_Delete(root);
  return rc;
}

static int cat_proto(ckpt_io *io, const cli_item *it, const char *key, cJSON *doc, bool *oom) {
  if (key[0]) {
    fprintf(stderr, "ckpt: cat: '%s' is a proto item, printed whole; give no key inside it\n",
            it->label);
    return CLI_EXIT_ERROR;
  }
  char *text = NULL;
  size_t len = 0;
  ckpt_error err = CKPT_ERROR_INIT;
  if (cli_item_load_text(io, it, &text, &len, &err) != CKPT_OK)
    return cli_report(&err);
  if (doc)
    cli_jadd(doc, "value", cJSON_CreateString(text), oom);
  else
    fwrite(text, 1, len, stdout);
  free(text);
  return CLI_EXIT_OK;
}

/* ---------------------------------------------------------------- resolving KEY */

/* Finds the item KEY starts with (the longest item label followed by '/' or the end). */
static cli_item *item_prefix(cli_ckpt *k, const char *key, const char **rest) {
  size_t n = strlen(key);
  char *buf = cli_strdup(key);
  if (buf == NULL)
    return NULL;
  for (size_t end = n;; end--) {
    if (end == n || key[end] == '/') {
      buf[end] = '\0';
      cli_item *it = cli_ckpt_find_item(k, buf);
      if (it && it->label[0]) {
        *rest = key[end] ? key + end + 1 : key + end;
        free(buf);
        return it;
      }
    }
    if (end == 0)
      break;
  }
  free(buf);
  return NULL;
}

/* The single PyTree item (anywhere in the checkpoint) with a leaf named key; NULL when none
 * or several (*ambiguous set). */
static cli_item *search_leaf(ckpt_io *io, cli_item *items, size_t n, const char *key,
                             cli_item *found, bool *ambiguous) {
  for (size_t i = 0; i < n; i++) {
    cli_item *it = &items[i];
    if (it->kind == CLI_ITEM_COMPOSITE) {
      found = search_leaf(io, it->children, it->n_children, key, found, ambiguous);
      continue;
    }
    if (it->kind != CLI_ITEM_PYTREE)
      continue;
    cli_pytree p;
    ckpt_error err = CKPT_ERROR_INIT;
    if (cli_pytree_open(io, it->dir, false, &p, &err) == CKPT_OK && cli_pytree_find(&p, key)) {
      if (found)
        *ambiguous = true;
      found = it;
    }
    cli_pytree_free(&p);
  }
  return found;
}

static int cat_checkpoint(const cat_opts *o, ckpt_io *io, const char *path, const char *key) {
  cli_ckpt k;
  ckpt_error err = CKPT_ERROR_INIT;
  if (cli_ckpt_open(io, path, &k, &err) != CKPT_OK) {
    cli_ckpt_free(&k);
    return cli_report(&err);
  }
  cli_item *it = NULL;
  const char *rest = key;
  int rc = CLI_EXIT_ERROR;
  if (o->item) {
    it = cli_ckpt_find_item(&k, o->item);
    if (it == NULL)
      fprintf(stderr, "ckpt: cat: '%s' has no item '%s'\n", path, o->item);
  } else if (k.n_items == 1 && k.items[0].name == NULL) {
    it = &k.items[0];
  } else {
    it = item_prefix(&k, key, &rest);
    if (it == NULL) {
      bool ambiguous = false;
      it = search_leaf(io, k.items, k.n_items, key, NULL, &ambiguous);
      rest = key;
      if (ambiguous) {
        fprintf(stderr,
                "ckpt: cat: several items have a leaf '%s'; prefix KEY with the item "
                "(ITEM/%s) or use --item\n",
                key, key);
        it = NULL;
      } else if (it == NULL) {
        fprintf(stderr, "ckpt: cat: '%s' has no item or leaf '%s' (items:", path, key);
        for (size_t i = 0; i < k.n_items; i++)
          fprintf(stderr, " %s", k.items[i].label);
        fprintf(stderr, ")\n");
      }
    }
  }
  if (it != NULL) {
    bool oom = false;
    cJSON *doc = NULL;
    if (o->json) {
      doc = cJSON_CreateObject();
      cli_jadd(doc, "path", cJSON_CreateString(k.path), &oom);
      cli_jadd(doc, "item", it->label[0] ? cJSON_CreateString(it->label) : cJSON_CreateNull(),
               &oom);
      cli_jadd(doc, "kind", cJSON_CreateString(cli_item_kind_name(it->kind)), &oom);
    }
    switch (it->kind) {
      case CLI_ITEM_PYTREE:
        rc = cat_pytree(o, io, it, rest, doc, &oom);
        break;
      case CLI_ITEM_JSON:
        rc = cat_json(io, it, rest, doc, &oom);
        break;
      case CLI_ITEM_PROTO:
        rc = cat_proto(io, it, rest, doc, &oom);
        break;
      case CLI_ITEM_COMPOSITE:
        fprintf(stderr, "ckpt: cat: '%s' holds items (", it->label);
        for (size_t i = 0; i < it->n_children; i++)
          fprintf(stderr, "%s%s", i ? ", " : "", it->children[i].label);
        fprintf(stderr, "); name one of them\n");
        rc = CLI_EXIT_ERROR;
        break;
      case CLI_ITEM_MISSING:
        fprintf(stderr, "ckpt: cat: item '%s' is named in _CHECKPOINT_METADATA but missing\n",
                it->label);
        rc = CLI_EXIT_DAMAGED;
        break;
      case CLI_ITEM_UNKNOWN:
        fprintf(stderr, "ckpt: cat: item '%s': contents not recognised\n", it->label);
        rc = CLI_EXIT_DAMAGED;
        break;
    }
    if (doc && rc == CLI_EXIT_OK)
      rc = cli_json_emit(doc, oom);
    else
      cJSON_Delete(doc);
  }
  cli_ckpt_free(&k);
  return rc;
}

/* What cat_checkpoint needs besides the path, for cli_run_on_checkpoint. */
typedef struct cat_target {
  const cat_opts *o;
  ckpt_io *io;
  const char *key;
} cat_target;

static int cat_target_run(void *ctx, const char *path) {
  const cat_target *t = ctx;
  return cat_checkpoint(t->o, t->io, path, t->key);
}

int cli_cmd_cat(int argc, char **argv) {
  static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                       {"stats", no_argument, NULL, 'S'},
                                       {"values", no_argument, NULL, 'v'},
                                       {"item", required_argument, NULL, 'i'},
                                       {"step", required_argument, NULL, 's'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  cat_opts o = {false, false, false, NULL};
  int64_t step = -1;
  bool has_step = false;
  opterr = 0;
  int ch;
  while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (ch) {
      case 'j':
        o.json = true;
        break;
      case 'S':
        o.stats = true;
        break;
      case 'v':
        o.values = true;
        break;
      case 'i':
        o.item = optarg;
        break;
      case 's':
        if (!cli_parse_i64(optarg, &step))
          return cli_usage_error("cat", "--step needs a non-negative integer, not '%s'", optarg);
        has_step = true;
        break;
      case 'h':
        fputs(help, stdout);
        return CLI_EXIT_OK;
      default:
        return cli_usage_error("cat", "unknown or incomplete option '%s'", argv[optind - 1]);
    }
  }
  if (o.stats && o.values)
    return cli_usage_error("cat", "--stats and --values exclude each other");
  int npos = argc - optind;
  if (npos != 2)
    return cli_usage_error("cat", "%s",
                           npos < 2 ? "missing PATH or KEY" : "expected PATH and one KEY");
  const char *path = argv[optind];
  cat_target t = {&o, ckpt_io_default(), argv[optind + 1]};
  cli_path_kind kind;
  ckpt_error err = CKPT_ERROR_INIT;
  if (cli_classify(t.io, path, &kind, &err) != CKPT_OK)
    return cli_report(&err);
  return cli_run_on_checkpoint(t.io, "cat", path, kind, has_step, step, cat_target_run, &t);
}
