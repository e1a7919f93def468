/* emit_c.c — writes NAME.ckpt.c: the const descriptor tables (types, dims, fields, records,
 * handlers with their vtables) and the package's registration function.
 *
 * Tables use designated initializers (the .c is C only) and offsetof/sizeof, so the layout
 * facts come from the compiler, never from ckptgen's guesses. Strings longer than C's
 * guaranteed literal length (4095) become char arrays, keeping -Wpedantic quiet. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "emit.h"
#include "resolve.h"

#define MAX_LITERAL 4000

typedef struct cgen {
  buf *out;
  arena a;
  unsigned n_long; /* long strings emitted as arrays */
} cgen;

static const char *const kind_enum[] = {
    "CKPT_KIND_BOOL",   "CKPT_KIND_INT8",    "CKPT_KIND_INT16",     "CKPT_KIND_INT32",
    "CKPT_KIND_INT64",  "CKPT_KIND_UINT8",   "CKPT_KIND_UINT16",    "CKPT_KIND_UINT32",
    "CKPT_KIND_UINT64", "CKPT_KIND_FLOAT32", "CKPT_KIND_FLOAT64",   "CKPT_KIND_STRING",
    "CKPT_KIND_BYTES",  "CKPT_KIND_ARRAY",   "CKPT_KIND_RECORD",    "CKPT_KIND_LIST",
    "CKPT_KIND_MAP",    "CKPT_KIND_JSON",    "CKPT_KIND_PROTO",     "CKPT_KIND_JAX_KEY",
    "CKPT_KIND_NUMPY_RNG", "CKPT_KIND_TREE", "CKPT_KIND_ARGS",      "CKPT_KIND_RECORD_REF",
};

static const char *const dtype_enum[] = {
#define DT_ENUM_(id, name, zarr, size) "CKPT_DTYPE_" #id,
    CKPT_DTYPE_LIST(DT_ENUM_)
#undef DT_ENUM_
};

/* A string expression for s[0..n): a literal, or the name of a char array defined just
 * before the current table (pre) when the literal would be too long for ISO C. */
static const char *str_expr(cgen *g, buf *pre, const char *s, size_t n) {
  buf b;
  buf_init(&b);
  if (n <= MAX_LITERAL) {
    emit_c_string(&b, s, n);
  } else {
    unsigned id = g->n_long++;
    buf_printf(pre, "static const char ckptgen__str%u[%zu] = {", id, n + 1);
    for (size_t i = 0; i < n; i++) /* octal char constants: right for signed and unsigned char */
      buf_printf(pre, "%s'\\%03o'", i % 12 ? ", " : "\n  ", (unsigned)(unsigned char)s[i]);
    buf_puts(pre, ",\n  '\\0'};\n");
    buf_printf(&b, "ckptgen__str%u", id);
  }
  const char *r = arena_strndup(&g->a, b.data, b.len);
  buf_free(&b);
  return r;
}

static const char *opt_str(cgen *g, buf *pre, const char *s) {
  return s == NULL ? "NULL" : str_expr(g, pre, s, strlen(s));
}

/* Emits the type table(s) of t under the name base_type (and base_dims / base_elem for its
 * parts); pre receives the tables, children first. */
static void emit_type(cgen *g, buf *pre, const char *base, const ast_type *t, const char *entry) {
  const char *dims = NULL;
  const char *elem = NULL;
  if (t->kind == CKPT_KIND_ARRAY && t->n_dims > 0) {
    dims = arena_printf(&g->a, "%s_dims", base);
    buf_printf(pre, "static const ckpt_dim_desc %s[%u] = {", dims, t->n_dims);
    for (const ast_dim *d = t->dims; d != NULL; d = d->next) {
      if (d->tag == DIM_FIXED)
        buf_printf(pre, "{.size = %" PRId64 ", .name = NULL}", d->size);
      else if (d->tag == DIM_NAMED)
        buf_printf(pre, "{.size = -1, .name = \"%s\"}", d->name);
      else
        buf_puts(pre, "{.size = -1, .name = NULL}");
      buf_puts(pre, d->next ? ", " : "};\n");
    }
  }
  if (t->kind == CKPT_KIND_LIST || t->kind == CKPT_KIND_MAP) {
    elem = arena_printf(&g->a, "%s_elem", base);
    emit_type(g, pre, elem, t->elem, NULL);
  }
  buf_printf(pre, "static const ckpt_type_desc %s_type = {\n  .kind = %s,\n", base, kind_enum[t->kind]);
  if (t->kind == CKPT_KIND_ARRAY) {
    if (t->dtype == CKPT_DTYPE_COUNT_)
      buf_puts(pre, "  .dtype = CKPT_DTYPE_COUNT_, /* any dtype */\n");
    else
      buf_printf(pre, "  .dtype = %s,\n", dtype_enum[t->dtype]);
    if (dims != NULL)
      buf_printf(pre, "  .n_dims = %u,\n  .dims = %s,\n", t->n_dims, dims);
    else
      buf_puts(pre, "  .n_dims = 0, /* any rank */\n  .dims = NULL,\n");
  }
  if (t->kind == CKPT_KIND_RECORD || t->kind == CKPT_KIND_RECORD_REF)
    buf_printf(pre, "  .record = &%s_desc,\n", t->record->c_name);
  if (t->kind == CKPT_KIND_PROTO)
    buf_printf(pre, "  .proto = %s%s,\n", t->proto ? "&" : "NULL", t->proto ? t->proto->c_desc : "");
  if (t->kind == CKPT_KIND_LIST) {
    buf_printf(pre, "  .elem = &%s_type,\n  .elem_size = sizeof(%s),\n", elem,
               emit_c_type(&g->a, t->elem, NULL));
  }
  if (t->kind == CKPT_KIND_MAP)
    buf_printf(pre, "  .elem = &%s_type,\n  .elem_size = sizeof(%s),\n  .entry_value_offset = offsetof(%s, value),\n",
               elem, entry, entry);
  buf_puts(pre, "};\n");
}

static void emit_default(cgen *g, buf *pre, buf *out, const ast_field *fl) {
  const ast_value *v = fl->def;
  ckpt_kind k = fl->type->kind;
  buf_puts(out, "    .def = {");
  if (k == CKPT_KIND_BOOL) {
    buf_printf(out, ".b = %s", v->b ? "true" : "false");
  } else if (k >= CKPT_KIND_INT8 && k <= CKPT_KIND_INT64) {
    if (v->neg && v->u == (uint64_t)1 << 63)
      buf_puts(out, ".i = INT64_MIN");
    else
      buf_printf(out, ".i = %s%" PRIu64, v->neg ? "-" : "", v->u);
  } else if (k >= CKPT_KIND_UINT8 && k <= CKPT_KIND_UINT64) {
    buf_printf(out, ".u = UINT64_C(%" PRIu64 ")", v->u);
  } else if (k == CKPT_KIND_FLOAT32 || k == CKPT_KIND_FLOAT64) {
    char num[64];
    snprintf(num, sizeof num, "%.17g", v->f);
    if (strpbrk(num, ".eEn") == NULL) strcat(num, ".0"); /* stay a floating constant */
    buf_printf(out, ".f = %s", num);
  } else {
    buf_printf(out, ".s = %s, .len = %zu", str_expr(g, pre, v->s, v->slen), v->slen);
  }
  buf_puts(out, "},\n");
}

static void emit_leaf(buf *out, const ckpt_leaf_options *l) {
  if (l->chunk_bytes == 0 && l->compression == CKPT_COMPRESSION_DEFAULT && !l->has_save_dtype) return;
  buf_puts(out, "    .leaf = {");
  const char *sep = "";
  if (l->chunk_bytes != 0) {
    buf_printf(out, ".chunk_bytes = INT64_C(%" PRId64 ")", l->chunk_bytes);
    sep = ", ";
  }
  if (l->compression != CKPT_COMPRESSION_DEFAULT) {
    buf_printf(out, "%s.compression = %s", sep,
               l->compression == CKPT_COMPRESSION_ZSTD ? "CKPT_COMPRESSION_ZSTD" : "CKPT_COMPRESSION_NONE");
    sep = ", ";
  }
  if (l->compression_level != 0) {
    buf_printf(out, "%s.compression_level = %d", sep, l->compression_level);
    sep = ", ";
  }
  if (l->has_save_dtype)
    buf_printf(out, "%s.has_save_dtype = true, .save_dtype = %s", sep, dtype_enum[l->save_dtype]);
  buf_puts(out, "},\n");
}

static void emit_record(cgen *g, const ast_decl *d) {
  buf pre, tbl;
  buf_init(&pre);
  buf_init(&tbl);
  buf_printf(&pre, "/* ---- %s %s ---- */\n", d->kind == D_ARGS ? "args" : "record", d->full_name);
  if (d->fields != NULL) {
    buf_printf(&tbl, "static const ckpt_field_desc %s__fields[%u] = {\n", d->c_name, d->n_fields);
    for (const ast_field *fl = d->fields; fl != NULL; fl = fl->next) {
      const char *base = arena_printf(&g->a, "%s__%s", d->c_name, fl->name);
      const char *entry = fl->type->kind == CKPT_KIND_MAP ? emit_entry_name(&g->a, d, fl) : NULL;
      emit_type(g, &pre, base, fl->type, entry);
      buf_puts(&tbl, "  {\n");
      buf_printf(&tbl, "    .name = \"%s\",\n    .type = &%s_type,\n", fl->name, base);
      buf_puts(&tbl, "    .flags = ");
      const char *sep = "";
      if (fl->optional) {
        buf_puts(&tbl, "CKPT_FIELD_OPTIONAL");
        sep = " | ";
      }
      if (fl->def != NULL) {
        buf_printf(&tbl, "%sCKPT_FIELD_HAS_DEFAULT", sep);
        sep = " | ";
      }
      if (fl->has_presence) {
        buf_printf(&tbl, "%sCKPT_FIELD_HAS_PRESENCE", sep);
        sep = " | ";
      }
      buf_puts(&tbl, *sep ? ",\n" : "0,\n");
      buf_printf(&tbl, "    .offset = offsetof(%s, %s),\n", d->c_name, fl->name);
      if (fl->type->kind == CKPT_KIND_LIST || fl->type->kind == CKPT_KIND_MAP)
        buf_printf(&tbl, "    .count_offset = offsetof(%s, n_%s),\n", d->c_name, fl->name);
      if (fl->has_presence)
        buf_printf(&tbl, "    .presence_offset = offsetof(%s, has_%s),\n", d->c_name, fl->name);
      if (fl->def != NULL) emit_default(g, &pre, &tbl, fl);
      emit_leaf(&tbl, &fl->leaf);
      buf_printf(&tbl, "    .doc = %s,\n", opt_str(g, &pre, fl->doc));
      buf_puts(&tbl, "  },\n");
    }
    buf_puts(&tbl, "};\n");
  }
  const char *doc = opt_str(g, &pre, d->doc);
  buf_printf(&tbl,
             "const %s %s_desc = {\n"
             "  .magic = CKPT_RECORD_DESC_MAGIC,\n"
             "  .abi_version = CKPT_ABI_VERSION,\n"
             "  .name = \"%s\",\n"
             "  .full_name = \"%s\",\n"
             "  .c_name = \"%s\",\n"
             "  .size = sizeof(%s),\n"
             "  .n_fields = %u,\n",
             d->kind == D_ARGS ? "ckpt_args_desc" : "ckpt_record_desc", d->c_name, d->name,
             d->full_name, d->c_name, d->c_name, d->n_fields);
  if (d->fields != NULL)
    buf_printf(&tbl, "  .fields = %s__fields,\n", d->c_name);
  else
    buf_puts(&tbl, "  .fields = NULL,\n");
  buf_printf(&tbl, "  .is_args = %s,\n  .doc = %s,\n};\n\n", d->kind == D_ARGS ? "true" : "false", doc);
  buf_putn(g->out, pre.data, pre.len);
  buf_putn(g->out, tbl.data, tbl.len);
  buf_free(&pre);
  buf_free(&tbl);
}

static void emit_handler(cgen *g, const ast_decl *h) {
  buf pre, tbl;
  buf_init(&pre);
  buf_init(&tbl);
  buf_printf(&pre, "/* ---- handler %s ---- */\n", h->full_name);
  const char *vtable;
  if (h->for_name != NULL) {
    vtable = "ckpt_record_handler_vtable";
  } else {
    const char *n = h->c_name;
    vtable = arena_printf(&g->a, "%s_vtable", n);
    buf_printf(&tbl,
               "static const ckpt_handler_vtable %s_vtable = {\n"
               "  .init = %s%s,\n  .save = %s_save,\n  .restore = %s_restore,\n"
               "  .metadata = %s%s,\n  .finalize = %s%s,\n  .close = %s%s,\n};\n",
               n, h->hooks & HOOK_INIT ? n : "NULL", h->hooks & HOOK_INIT ? "_init" : "", n, n,
               h->hooks & HOOK_METADATA ? n : "NULL", h->hooks & HOOK_METADATA ? "_metadata" : "",
               h->hooks & HOOK_FINALIZE ? n : "NULL", h->hooks & HOOK_FINALIZE ? "_finalize" : "",
               h->hooks & HOOK_CLOSE ? n : "NULL", h->hooks & HOOK_CLOSE ? "_close" : "");
  }
  const char *typestr = str_expr(g, &pre, h->typestr_final, strlen(h->typestr_final));
  const char *doc = opt_str(g, &pre, h->doc);
  buf_printf(&tbl,
             "const ckpt_handler_desc %s_desc = {\n"
             "  .name = \"%s\",\n  .full_name = \"%s\",\n  .typestr = %s,\n"
             "  .vtable = &%s,\n",
             h->c_name, h->name, h->full_name, typestr, vtable);
  if (h->for_record != NULL)
    buf_printf(&tbl, "  .impl = &%s_desc,\n", h->for_record->c_name);
  else
    buf_puts(&tbl, "  .impl = NULL,\n");
  buf_printf(&tbl, "  .doc = %s,\n};\n\n", doc);
  buf_putn(g->out, pre.data, pre.len);
  buf_putn(g->out, tbl.data, tbl.len);
  buf_free(&pre);
  buf_free(&tbl);
}

static void emit_register(cgen *g, const ast_file *f) {
  buf *o = g->out;
  buf_printf(o, "/* ---- registration ---- */\n");
  buf_printf(o,
             "/* No once-flag: the registry overwrites identical registrations, so calling this\n"
             " * again is harmless, thread-safe, and retries what failed before. */\n"
             "ckpt_status %s_register(ckpt_error *err) {\n"
             "  ckpt_status st = CKPT_OK;\n",
             f->c_prefix);
  bool any = false;
  for (const ast_import *im = f->imports; im != NULL; im = im->next) {
    if (im->is_proto || im->file == NULL) continue;
    bool dup = false; /* one call per imported package */
    for (const ast_import *o2 = f->imports; o2 != im; o2 = o2->next)
      if (!o2->is_proto && o2->file == im->file) dup = true;
    if (dup) continue;
    buf_printf(o, "  if ((st = %s_register(err)) != CKPT_OK) return st;\n", im->file->c_prefix);
    any = true;
  }
  for (const ast_decl *d = f->decls; d != NULL; d = d->next)
    for (const ast_reg *r = d->regs; r != NULL; r = r->next) {
      buf_printf(o,
                 "  if ((st = ckpt_register_with_handler(&%s_desc, &%s_desc, %s, %s, err)) != CKPT_OK)\n"
                 "    return st;\n",
                 r->handler->c_name, d->c_name, r->for_save ? "true" : "false",
                 r->for_restore ? "true" : "false");
      any = true;
    }
  if (!any) buf_puts(o, "  (void)err;\n");
  buf_puts(o, "  return st;\n}\n");
}

void emit_source(buf *out, const emit_info *info, ast_file *f) {
  cgen g;
  g.out = out;
  arena_init(&g.a);
  g.n_long = 0;
  buf_printf(out,
             "/* %s.c — generated by ckptgen %s from %s; do not edit.\n"
             " * Schema hash (FNV-1a 64 of the schema text): 0x%016llx. */\n",
             info->rel, CKPT_VERSION_STRING, info->rel, (unsigned long long)info->hash);
  buf_printf(out, "#include \"%s\"\n\n#include <stddef.h>\n#include <stdint.h>\n\n", info->header_base);
  for (const ast_decl *d = f->decls; d != NULL; d = d->next) {
    if (d->kind == D_HANDLER)
      emit_handler(&g, d);
    else
      emit_record(&g, d);
  }
  emit_register(&g, f);
  arena_free(&g.a);
}
