/* emit_h.c — writes NAME.ckpt.h: structs laid out as ckpt/desc.h's table says, descriptor
 * declarations, typed one-line wrappers, handler prototypes and the registration function.
 *
 * The header must compile as C11 and as C++ (extern "C", no designated initializers or
 * compound literals), and refuses to compile against a runtime of another ABI. */
#include <string.h>

#include "emit.h"
#include "resolve.h"

static void emit_member(buf *out, arena *a, const ast_decl *d, const ast_field *fl) {
  emit_doc_comment(out, "  ", fl->doc);
  if (fl->has_presence) buf_printf(out, "  bool has_%s;\n", fl->name);
  const ast_type *t = fl->type;
  const char *entry = t->kind == CKPT_KIND_MAP ? emit_entry_name(a, d, fl) : NULL;
  if (t->kind == CKPT_KIND_LIST || t->kind == CKPT_KIND_MAP)
    buf_printf(out, "  size_t n_%s;\n", fl->name);
  buf_puts(out, "  ");
  emit_declarator(out, emit_c_type(a, t, entry), fl->name);
  buf_puts(out, ";\n");
}

static void emit_struct(buf *out, arena *a, const ast_decl *d) {
  emit_doc_comment(out, "", d->doc);
  buf_printf(out, "typedef struct %s {\n", d->c_name);
  if (d->kind == D_ARGS) buf_puts(out, "  ckpt_args base; /* first: makes this a CheckpointArgs */\n");
  for (const ast_field *fl = d->fields; fl != NULL; fl = fl->next) emit_member(out, a, d, fl);
  if (d->kind == D_RECORD && d->fields == NULL)
    buf_puts(out, "  char reserved_; /* C has no empty structs; unused */\n");
  buf_printf(out, "} %s;\n\n", d->c_name);
}

/* Structs that embed other local records by value come after them (the resolver already
 * rejected cycles); pointers need only the forward typedefs. */
static void emit_struct_ordered(buf *out, arena *a, ast_file *f, ast_decl *d) {
  if (d->visit == 2 || d->file != f) return;
  d->visit = 2;
  for (const ast_field *fl = d->fields; fl != NULL; fl = fl->next)
    if (fl->type->kind == CKPT_KIND_RECORD && fl->type->record != NULL)
      emit_struct_ordered(out, a, f, fl->type->record);
  emit_struct(out, a, d);
}

/* "CKPT_API " for the declarations of package ckpt, whose generated code is compiled into
 * libckpt (built with -fvisibility=hidden): its descriptors and ckpt_register are libckpt's
 * public API and must be exported from libckpt.so. Any other package's generated code is
 * compiled into the user's program, where CKPT_API would only export its symbols from the
 * user's own shared library, so it gets none. Handler hooks never get it: the runtime reaches
 * them through the handler's descriptor. */
static const char *api_mark(const ast_file *f) {
  return f->package != NULL && strcmp(f->package, "ckpt") == 0 ? "CKPT_API " : "";
}

static void emit_record_api(buf *out, const ast_decl *d) {
  const char *n = d->c_name;
  buf_printf(out, "%sextern const %s %s_desc;\n", api_mark(d->file),
             d->kind == D_ARGS ? "ckpt_args_desc" : "ckpt_record_desc", n);
  buf_printf(out,
             "/* Sets every field to its default (zero, NULL or the schema default)%s. */\n"
             "static inline ckpt_status %s_init(%s *m) { return ckpt_record_init(&%s_desc, m); }\n",
             d->kind == D_ARGS ? " and base.desc" : "", n, n, n);
  buf_printf(out,
             "/* Releases everything *m owns (not m itself) and zeroes it. */\n"
             "static inline void %s_free(%s *m) { ckpt_record_free(&%s_desc, m); }\n",
             n, n, n);
  buf_printf(out,
             "static inline bool %s_equal(const %s *a, const %s *b) {\n"
             "  return ckpt_record_equal(&%s_desc, a, b);\n"
             "}\n",
             n, n, n, n);
  if (d->kind == D_ARGS) {
    buf_printf(out,
               "/* A heap-allocated, initialised %s (NULL when out of memory); the caller owns it:\n"
               " * release with ckpt_args_delete(&m->base). */\n"
               "static inline %s *%s_new(void) { return (%s *)(void *)ckpt_args_new(&%s_desc); }\n",
               d->name, n, n, n, n);
    buf_printf(out,
               "/* a as a %s, or NULL when a is NULL or another args type. */\n"
               "static inline const %s *%s_cast(const ckpt_args *a) {\n"
               "  return a != NULL && a->desc == &%s_desc ? (const %s *)(const void *)a : NULL;\n"
               "}\n",
               d->name, n, n, n, n);
  }
  buf_putc(out, '\n');
}

static void emit_handler_api(buf *out, const ast_decl *h) {
  emit_doc_comment(out, "", h->doc);
  buf_printf(out, "%sextern const ckpt_handler_desc %s_desc;\n", api_mark(h->file), h->c_name);
  if (h->for_name != NULL) {
    buf_printf(out,
               "/* Saved and restored by the runtime's record handler (%s_desc.impl is %s_desc);\n"
               " * its args are %s and %s. */\n\n",
               h->c_name, h->for_record->c_name, h->gen_save ? h->gen_save->c_name : "?",
               h->gen_restore ? h->gen_restore->c_name : "?");
    return;
  }
  const char *n = h->c_name;
  buf_puts(out, "/* Implemented by the user: */\n");
  if (h->hooks & HOOK_INIT)
    buf_printf(out, "ckpt_status %s_init(ckpt_handler *self, ckpt_error *err);\n", n);
  buf_printf(out,
             "ckpt_status %s_save(ckpt_handler *self, ckpt_op *op, const char *dir,\n"
             "                    const ckpt_args *args, ckpt_error *err);\n",
             n);
  buf_printf(out,
             "ckpt_status %s_restore(ckpt_handler *self, ckpt_op *op, const char *dir,\n"
             "                       const ckpt_args *args, ckpt_value *out, ckpt_error *err);\n",
             n);
  if (h->hooks & HOOK_METADATA)
    buf_printf(out,
               "ckpt_status %s_metadata(ckpt_handler *self, ckpt_op *op, const char *dir, cJSON **out,\n"
               "                        ckpt_error *err);\n",
               n);
  if (h->hooks & HOOK_FINALIZE)
    buf_printf(out,
               "ckpt_status %s_finalize(ckpt_handler *self, ckpt_op *op, const char *dir,\n"
               "                        ckpt_error *err);\n",
               n);
  if (h->hooks & HOOK_CLOSE) buf_printf(out, "void %s_close(ckpt_handler *self);\n", n);
  buf_putc(out, '\n');
}

void emit_header(buf *out, const emit_info *info, ast_file *f) {
  arena a;
  arena_init(&a);
  buf_printf(out,
             "/* %s.h — generated by ckptgen %s from %s; do not edit.\n"
             " * Schema hash (FNV-1a 64 of the schema text): 0x%016llx. */\n",
             info->rel, CKPT_VERSION_STRING, info->rel, (unsigned long long)info->hash);
  /* <ckpt/ckpt.h> comes before the guard: ckpt.h itself includes the built-in schema's header
   * and then headers that use its types, so that nested inclusion must see the whole body. */
  buf_puts(out, "#include <ckpt/ckpt.h>\n\n");
  buf_printf(out, "#ifndef %s\n#define %s\n\n", info->guard, info->guard);
  buf_puts(out, "#include <stdbool.h>\n#include <stddef.h>\n#include <stdint.h>\n\n");
  if (file_uses_bare_proto(f)) buf_puts(out, "#include <protobuf-c/protobuf-c.h>\n");
  for (const ast_import *im = f->imports; im != NULL; im = im->next) {
    if (im->is_proto) {
      size_t n = strlen(im->path);
      buf_printf(out, "#include \"%.*s.pb-c.h\"\n", (int)(n - 6), im->path);
    } else {
      buf_printf(out, "#include \"%s.h\"\n", im->path);
    }
  }
  buf_printf(out,
             "\n#if CKPT_ABI_VERSION != %d\n"
             "#error \"%s.h was generated by ckptgen %s for ckpt ABI %d; regenerate it\"\n"
             "#endif\n\n",
             CKPT_ABI_VERSION, info->rel, CKPT_VERSION_STRING, CKPT_ABI_VERSION);
  buf_printf(out, "#define %s UINT64_C(0x%016llx)\n\n", info->hash_macro,
             (unsigned long long)info->hash);
  buf_puts(out, "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n");

  /* forward typedefs: records may point at each other in any order */
  bool any = false;
  for (ast_decl *d = f->decls; d != NULL; d = d->next) {
    if (d->kind == D_HANDLER) continue;
    buf_printf(out, "typedef struct %s %s;\n", d->c_name, d->c_name);
    for (const ast_field *fl = d->fields; fl != NULL; fl = fl->next)
      if (fl->type->kind == CKPT_KIND_MAP) {
        const char *e = emit_entry_name(&a, d, fl);
        buf_printf(out, "typedef struct %s %s;\n", e, e);
      }
    any = true;
  }
  if (any) buf_putc(out, '\n');

  for (ast_decl *d = f->decls; d != NULL; d = d->next) d->visit = 0;
  for (ast_decl *d = f->decls; d != NULL; d = d->next)
    if (d->kind != D_HANDLER) emit_struct_ordered(out, &a, f, d);
  /* map entries last: an entry holds its value by value, and nothing holds an entry so */
  for (ast_decl *d = f->decls; d != NULL; d = d->next)
    for (const ast_field *fl = d->fields; fl != NULL; fl = fl->next) {
      if (fl->type->kind != CKPT_KIND_MAP) continue;
      const char *e = emit_entry_name(&a, d, fl);
      buf_printf(out, "/* One entry of %s.%s (kept sorted by key). */\n", d->name, fl->name);
      buf_printf(out, "typedef struct %s {\n  char *key;\n  ", e);
      emit_declarator(out, emit_c_type(&a, fl->type->elem, NULL), "value");
      buf_printf(out, ";\n} %s;\n\n", e);
    }

  for (ast_decl *d = f->decls; d != NULL; d = d->next)
    if (d->kind != D_HANDLER) emit_record_api(out, d);
  for (ast_decl *d = f->decls; d != NULL; d = d->next)
    if (d->kind == D_HANDLER) emit_handler_api(out, d);

  buf_printf(out,
             "/* Registers every args type of package %s with its handler (imported packages\n"
             " * first). Safe to call more than once; returns the first failure. */\n"
             "%sckpt_status %s_register(ckpt_error *err);\n\n",
             f->package, api_mark(f), f->c_prefix);
  buf_puts(out, "#ifdef __cplusplus\n}\n#endif\n\n");
  buf_printf(out, "#endif /* %s */\n", info->guard);
  arena_free(&a);
}
