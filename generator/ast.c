/* ast.c — node constructors and doc-comment look-up for the syntax tree (see ast.h). */
#include "ast.h"

ast_type *ast_type_new(arena *a, type_tag tag, src_loc loc) {
  ast_type *t = arena_alloc(a, sizeof *t);
  t->tag = tag;
  t->loc = loc;
  t->dtype = CKPT_DTYPE_COUNT_;
  return t;
}

/* docs[] is appended in lexing order, which is source order, so a binary search finds the
 * comment that directly precedes a declaration or field in O(log n). */
const char *ast_doc_at(const ast_file *f, src_loc at) {
  size_t lo = 0, hi = f->n_docs;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    const doc_entry *e = &f->docs[mid];
    if (e->line < at.line || (e->line == at.line && e->col < at.col))
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo < f->n_docs && f->docs[lo].line == at.line && f->docs[lo].col == at.col)
    return f->docs[lo].text;
  return NULL;
}
