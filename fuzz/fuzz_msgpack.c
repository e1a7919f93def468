/* fuzz/fuzz_msgpack.c — the legacy msgpack aggregate file `checkpoint` (storage/aggregate.c,
 * Flax's encoding decoded with msgpack-c) and what the restore builds from it when _METADATA is
 * missing (storage/pytree_meta_any.c).
 *
 * The input is written as <dir>/checkpoint into a private temporary directory and read the way
 * a restore reads an item without _METADATA (ckpt_pytree_meta_read_any), then decoded once more
 * from the bytes (ckpt_aggregate_parse).
 *
 * Properties: no crash, leak or UB, and no allocation the input's size does not justify
 * (msgpack-c sizes containers from their headers; the reader bounds them first); a failure
 * carries a message and leaves nothing to free; both paths agree on accepting the input; an
 * accepted tree gives one _METADATA entry per leaf or empty node, each of which finds its value
 * in the tree again unless it is a placeholder or an empty node. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "storage/aggregate.h"
#include "storage/pytree_meta.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_write_input(CKPT_AGGREGATE_FILE, data, size);
  const char *dir = fuzz_tmpdir();
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *direct = NULL;
  ckpt_status pst = ckpt_aggregate_parse(data, size, "checkpoint", &direct, &err);
  fuzz_require_error(pst, &err, "ckpt_aggregate_parse");
  fuzz_require((pst == CKPT_OK) == (direct != NULL), "a tree without success, or the reverse");
  ckpt_error_clear(&err);

  ckpt_pytree_meta meta;
  ckpt_tree *agg = NULL;
  ckpt_meta_source source;
  ckpt_status st = ckpt_pytree_meta_read_any(NULL, dir, &meta, &agg, &source, &err);
  fuzz_require_error(st, &err, "ckpt_pytree_meta_read_any");
  /* an empty map or list decodes but holds no entry of a tree: both are fine outcomes */
  fuzz_require(pst == CKPT_OK || st != CKPT_OK, "the item accepts a file the decoder refuses");
  if (st == CKPT_OK) {
    fuzz_require(source == CKPT_META_FROM_AGGREGATE && agg != NULL,
                 "the tree did not come from the aggregate file");
    fuzz_require(ckpt_tree_equal(agg, direct), "two decodings of one file differ");
    for (size_t i = 0; i < meta.n; i++) {
      const ckpt_meta_entry *e = &meta.entries[i];
      bool stored = !e->skip_deserialize;
      bool found = ckpt_meta_entry_aggregate(agg, e) != NULL;
      fuzz_require(stored || ckpt_meta_is_empty_type(e->value_type) || found,
                   "an aggregated entry does not find its value");
      fuzz_require(!stored || !found, "a placeholder entry finds a value");
    }
    ckpt_pytree_meta_free(&meta);
  }
  ckpt_tree_free(agg);
  ckpt_tree_free(direct);
  return 0;
}
