/* fuzz/fuzz_metadata.c — storage/pytree_meta.c's _METADATA parser (ckpt_pytree_meta_parse),
 * run on every PyTree restore and by `ckpt ls/cat/verify`.
 *
 * Properties: no crash, leak or UB; a failure carries a message and leaves *meta freeable;
 * accepted sizes are sizes (write_shape >= 0); an accepted document, encoded in Orbax's text and
 * parsed again, gives the same entries (keys, key types, value types, flags). */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "storage/pytree_meta.h"

static bool same_entry(const ckpt_meta_entry *a, const ckpt_meta_entry *b) {
  if (a->depth != b->depth || strcmp(a->param, b->param) != 0 ||
      strcmp(a->value_type, b->value_type) != 0 || a->skip_deserialize != b->skip_deserialize ||
      a->has_write_shape != b->has_write_shape || a->write_ndim != b->write_ndim)
    return false;
  for (size_t i = 0; i < a->depth; i++) {
    if (strcmp(a->keys[i].key, b->keys[i].key) != 0 || a->keys[i].key_type != b->keys[i].key_type)
      return false;
  }
  return a->write_ndim == 0 || memcmp(a->write_shape, b->write_shape,
                                      (size_t)a->write_ndim * sizeof a->write_shape[0]) == 0;
}

/* Two entries for the same key path are encoded under the same tree_metadata key, so the second
 * replaces the first on reading: such a file does not round-trip (restore refuses it). */
static bool distinct_paths(const ckpt_pytree_meta *m) {
  for (size_t i = 0; i < m->n; i++) {
    for (size_t j = i + 1; j < m->n; j++) {
      const ckpt_meta_entry *a = &m->entries[i], *b = &m->entries[j];
      bool same = a->depth == b->depth;
      for (size_t k = 0; same && k < a->depth; k++)
        same = strcmp(a->keys[k].key, b->keys[k].key) == 0;
      if (same)
        return false;
    }
  }
  return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_pytree_meta meta;
  ckpt_status st = ckpt_pytree_meta_parse((const char *)data, size, "fuzz/_METADATA", &meta, &err);
  fuzz_require_error(st, &err, "ckpt_pytree_meta_parse");
  if (st == CKPT_OK) {
    for (size_t i = 0; i < meta.n; i++) {
      const ckpt_meta_entry *e = &meta.entries[i];
      for (int d = 0; d < e->write_ndim; d++)
        fuzz_require(e->write_shape[d] >= 0, "an accepted write_shape has a negative size");
      (void)ckpt_meta_is_array_type(meta.entries[i].value_type);
      (void)ckpt_meta_is_empty_type(meta.entries[i].value_type);
    }
    char *text = NULL;
    size_t len = 0;
    st = ckpt_pytree_meta_encode(&meta, &text, &len, &err);
    fuzz_require_error(st, &err, "ckpt_pytree_meta_encode");
    if (st == CKPT_OK && distinct_paths(&meta)) {
      ckpt_pytree_meta back;
      ckpt_error err2 = CKPT_ERROR_INIT;
      st = ckpt_pytree_meta_parse(text, len, "encoded", &back, &err2);
      fuzz_require(st == CKPT_OK, "encoded _METADATA is not parsed");
      fuzz_require(back.n == meta.n && back.use_ocdbt == meta.use_ocdbt &&
                       back.use_zarr3 == meta.use_zarr3 &&
                       back.store_array_data_equal_to_fill_value ==
                           meta.store_array_data_equal_to_fill_value &&
                       (back.custom_metadata == NULL) == (meta.custom_metadata == NULL),
                   "parse(encode(meta)) differs from meta");
      for (size_t i = 0; i < meta.n; i++)
        fuzz_require(same_entry(&meta.entries[i], &back.entries[i]),
                     "parse(encode(meta)) has a different entry");
      ckpt_pytree_meta_free(&back);
    }
    free(text);
  }
  ckpt_pytree_meta_free(&meta);
  return 0;
}
