/* test_pytree_restore.c — restoring into a target: resharding across chunk boundaries (each
 * chunk read once, straight into caller memory where possible), structure checks and partial
 * restore, strict / non-strict shapes, dtype casts and restore args, key transforms and
 * placeholders. */
#include "test_pytree_util.h"

Test(pytree_restore, reshard_across_chunk_boundaries) {
  for (int comp = 0; comp < 2; comp++) {
    char *dir = pt_tmpdir();
    ckpt_array *src =
        pt_save_grid(dir, 10, 7, 4, comp ? CKPT_COMPRESSION_ZSTD : CKPT_COMPRESSION_NONE, false);
    ckpt_error err = CKPT_ERROR_INIT;
    int64_t shape[2] = {10, 7};
    ckpt_array *tgt = NULL;
    cr_assert_eq(ckpt_array_new_sharded(CKPT_DTYPE_INT32, 2, shape, &tgt, &err), CKPT_OK);
    /* 3-row x (3|4)-col boxes cutting through 4-row chunks, plus a replicated full copy. */
    int32_t caller_mem[3 * 4];
    memset(caller_mem, 0x7f, sizeof caller_mem);
    for (int64_t r = 0; r < 10; r += 3) {
      int64_t rows = r + 3 <= 10 ? 3 : 10 - r;
      int64_t o0[2] = {r, 0}, s0[2] = {rows, 3}, o1[2] = {r, 3}, s1[2] = {rows, 4};
      cr_assert_eq(ckpt_array_add_shard(tgt, o0, s0, NULL, 0, &err), CKPT_OK);
      cr_assert_eq(ckpt_array_add_shard(tgt, o1, s1, r == 3 ? caller_mem : NULL, 0, &err), CKPT_OK);
    }
    int64_t z[2] = {0, 0};
    cr_assert_eq(ckpt_array_add_shard(tgt, z, shape, NULL, 1, &err), CKPT_OK);
    ckpt_tree *target = ckpt_tree_new_dict();
    ckpt_tree_dict_set(target, "w", ckpt_tree_new_array(tgt), &err);
    ckpt_tree *back = NULL;
    cr_assert_eq(pt_restore(dir, target, &back, &err), CKPT_OK, "%s", err.message);
    const ckpt_array *b = ckpt_tree_array(ckpt_tree_dict_get(back, "w"));
    cr_assert_eq(b->n_shards, 9);
    pt_check_grid(b);
    cr_assert_eq(b->shards[3].data, caller_mem, "borrowed caller memory is filled in place");
    cr_assert_eq(caller_mem[0], 3003);
    cr_assert_eq(b->shards[8].replica_id, 1);
    ckpt_tree_free(back);
    ckpt_tree_free(target);
    ckpt_array_free(src);
    pt_rmtree(dir);
  }
}

Test(pytree_restore, aligned_restore_reads_in_place) {
  /* Chunks of 2 rows restored into 4-row shards of caller memory: every chunk is one
   * contiguous run of its destination, read with pread straight into it. */
  char *dir = pt_tmpdir();
  ckpt_array *src = pt_save_grid(dir, 8, 5, 2, CKPT_COMPRESSION_NONE, false);
  ckpt_error err = CKPT_ERROR_INIT;
  int64_t shape[2] = {8, 5};
  int32_t mem[40];
  memset(mem, 0, sizeof mem);
  ckpt_array *tgt = NULL;
  cr_assert_eq(ckpt_array_new_sharded(CKPT_DTYPE_INT32, 2, shape, &tgt, &err), CKPT_OK);
  int64_t o0[2] = {0, 0}, o1[2] = {4, 0}, s[2] = {4, 5};
  cr_assert_eq(ckpt_array_add_shard(tgt, o0, s, mem, 0, &err), CKPT_OK);
  cr_assert_eq(ckpt_array_add_shard(tgt, o1, s, mem + 20, 0, &err), CKPT_OK);
  ckpt_tree *target = ckpt_tree_new_dict();
  ckpt_tree_dict_set(target, "w", ckpt_tree_new_array(tgt), &err);
  ckpt_tree *back = NULL;
  cr_assert_eq(pt_restore(dir, target, &back, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(memcmp(mem, ckpt_array_data(src), sizeof mem), 0);
  ckpt_tree_free(back);
  ckpt_tree_free(target);
  ckpt_array_free(src);
  pt_rmtree(dir);
}

/* Caller memory at every alignment a direct read meets: a destination misaligned with the file
 * offset goes through an aligned bounce buffer (io/read_copy.h), an aligned one is read in
 * place; both must land the same bytes and verify the same checksum, piece after piece (the
 * chunk spans three 256 KiB pieces and a tail). */
Test(pytree_restore, direct_reads_into_misaligned_caller_memory) {
  char *dir = pt_tmpdir();
  const int64_t rows = 1200, cols = 128; /* 600 KiB, one chunk */
  ckpt_array *src = pt_save_grid(dir, rows, cols, rows, CKPT_COMPRESSION_NONE, false);
  size_t bytes = (size_t)(rows * cols * 4);
  unsigned char *base = NULL;
  cr_assert_eq(posix_memalign((void **)&base, 4096, bytes + 4096), 0);
  static const size_t shifts[] = {0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 60, 64, 4092};
  for (size_t i = 0; i < sizeof shifts / sizeof shifts[0]; i++) {
    ckpt_error err = CKPT_ERROR_INIT;
    unsigned char *mem = base + shifts[i];
    memset(mem, 0xA5, bytes);
    int64_t shape[2] = {rows, cols}, o[2] = {0, 0};
    ckpt_array *tgt = NULL;
    cr_assert_eq(ckpt_array_new_sharded(CKPT_DTYPE_INT32, 2, shape, &tgt, &err), CKPT_OK);
    cr_assert_eq(ckpt_array_add_shard(tgt, o, shape, mem, 0, &err), CKPT_OK);
    ckpt_tree *target = ckpt_tree_new_dict();
    ckpt_tree_dict_set(target, "w", ckpt_tree_new_array(tgt), &err);
    ckpt_tree *back = NULL;
    cr_assert_eq(pt_restore(dir, target, &back, &err), CKPT_OK, "shift %zu: %s", shifts[i],
                 err.message);
    cr_assert_eq(memcmp(mem, ckpt_array_data(src), bytes), 0, "shift %zu", shifts[i]);
    ckpt_tree_free(back);
    ckpt_tree_free(target);
  }
  /* One flipped byte in the second piece is caught on both paths. */
  char chunk[512];
  snprintf(chunk, sizeof chunk, "%s/w/0.0", dir);
  FILE *f = fopen(chunk, "r+b");
  cr_assert_not_null(f, "%s", chunk);
  cr_assert_eq(fseek(f, 300 << 10, SEEK_SET), 0);
  int c = fgetc(f);
  cr_assert_eq(fseek(f, 300 << 10, SEEK_SET), 0);
  fputc(c ^ 1, f);
  fclose(f);
  for (size_t shift = 0; shift <= 16; shift += 16) {
    ckpt_error err = CKPT_ERROR_INIT;
    int64_t shape[2] = {rows, cols}, o[2] = {0, 0};
    ckpt_array *tgt = NULL;
    cr_assert_eq(ckpt_array_new_sharded(CKPT_DTYPE_INT32, 2, shape, &tgt, &err), CKPT_OK);
    cr_assert_eq(ckpt_array_add_shard(tgt, o, shape, base + shift, 0, &err), CKPT_OK);
    ckpt_tree *target = ckpt_tree_new_dict();
    ckpt_tree_dict_set(target, "w", ckpt_tree_new_array(tgt), &err);
    ckpt_tree *back = NULL;
    cr_assert_eq(pt_restore(dir, target, &back, &err), CKPT_ECORRUPT, "shift %zu", shift);
    cr_assert(strstr(err.message, "0.0") != NULL && strstr(err.message, "corrupt") != NULL,
              "shift %zu: %s", shift, err.message);
    cr_assert_null(back);
    ckpt_tree_free(target);
  }
  free(base);
  ckpt_array_free(src);
  pt_rmtree(dir);
}

static ckpt_tree *three_leaves(void) {
  ckpt_error err = CKPT_ERROR_INIT;
  int64_t s[1] = {4};
  ckpt_tree *t = ckpt_tree_new_dict();
  ckpt_tree *p = ckpt_tree_new_dict();
  ckpt_tree_dict_set(p, "w", ckpt_tree_new_array(pt_array(CKPT_DTYPE_FLOAT32, 1, s, 1)), &err);
  ckpt_tree_dict_set(p, "b", ckpt_tree_new_array(pt_array(CKPT_DTYPE_FLOAT32, 1, s, 2)), &err);
  ckpt_tree_dict_set(t, "params", p, &err);
  ckpt_tree *o = ckpt_tree_new_list();
  ckpt_tree_append(o, ckpt_tree_new_array(pt_array(CKPT_DTYPE_FLOAT32, 1, s, 3)), &err);
  ckpt_tree_dict_set(t, "opt", o, &err);
  ckpt_tree_dict_set(t, "step", ckpt_tree_new_int(CKPT_DTYPE_INT64, 7), &err);
  cr_assert_eq(err.code, CKPT_OK);
  return t;
}

Test(pytree_restore, structure_mismatch_lists_paths) {
  char *dir = pt_tmpdir();
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *t = three_leaves();
  cr_assert_eq(pt_save(dir, t, &err), CKPT_OK, "%s", err.message);
  /* Target lacks opt and step, and has an extra leaf. */
  ckpt_tree *target = ckpt_tree_clone(t);
  ckpt_tree_dict_remove(target, "opt");
  ckpt_tree_dict_remove(target, "step");
  ckpt_tree_dict_set(target, "extra", ckpt_tree_new_int(CKPT_DTYPE_INT8, 0), &err);
  ckpt_tree *back = NULL;
  cr_assert_eq(pt_restore(dir, target, &back, &err), CKPT_EMISMATCH);
  cr_assert(strstr(err.message, "('extra',)") != NULL, "%s", err.message);
  cr_assert(strstr(err.message, "('opt', '0')") != NULL, "%s", err.message);
  cr_assert(strstr(err.message, "('step',)") != NULL, "%s", err.message);
  cr_assert_null(back);
  /* partial_restore reads the subset; a leaf the checkpoint lacks is still an error. */
  ckpt_pytree_restore_spec spec;
  memset(&spec, 0, sizeof spec);
  spec.target = target;
  spec.partial_restore = true;
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_pytree_restore_io(NULL, dir, &spec, &back, &err), CKPT_EMISMATCH);
  cr_assert(strstr(err.message, "('extra',)") != NULL, "%s", err.message);
  ckpt_tree_dict_remove(target, "extra");
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_pytree_restore_io(NULL, dir, &spec, &back, &err), CKPT_OK, "%s", err.message);
  cr_assert(ckpt_tree_equal(back, target));
  cr_assert_null(ckpt_tree_dict_get(back, "opt"));
  ckpt_tree_free(back);
  /* partial_restore without a target is refused. */
  spec.target = NULL;
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_pytree_restore_io(NULL, dir, &spec, &back, &err), CKPT_EINVAL);
  ckpt_tree_free(target);
  ckpt_tree_free(t);
  pt_rmtree(dir);
}

Test(pytree_restore, partial_restore_reads_only_requested_chunks) {
  char *dir = pt_tmpdir();
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *t = three_leaves();
  cr_assert_eq(pt_save(dir, t, &err), CKPT_OK, "%s", err.message);
  /* Deleting the other leaves' chunks proves they are not read. */
  char *c = pt_fmt("%s/opt.0/0", dir);
  cr_assert_eq(unlink(c), 0);
  free(c);
  c = pt_fmt("%s/params.b/0", dir);
  cr_assert_eq(unlink(c), 0);
  free(c);
  ckpt_tree *target = ckpt_tree_new_dict();
  ckpt_tree *p = ckpt_tree_new_dict();
  ckpt_tree_dict_set(p, "w", ckpt_tree_clone(ckpt_tree_get(t, "params.w")), &err);
  ckpt_tree_dict_set(target, "params", p, &err);
  ckpt_pytree_restore_spec spec;
  memset(&spec, 0, sizeof spec);
  spec.target = target;
  spec.partial_restore = true;
  ckpt_tree *back = NULL;
  cr_assert_eq(ckpt_pytree_restore_io(NULL, dir, &spec, &back, &err), CKPT_OK, "%s", err.message);
  cr_assert(ckpt_tree_equal(back, target));
  ckpt_tree_free(back);
  ckpt_tree_free(target);
  ckpt_tree_free(t);
  pt_rmtree(dir);
}

Test(pytree_restore, placeholders_skip_leaves_and_subtrees) {
  char *dir = pt_tmpdir();
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *t = three_leaves();
  cr_assert_eq(pt_save(dir, t, &err), CKPT_OK, "%s", err.message);
  ckpt_tree *target = ckpt_tree_clone(t);
  ckpt_tree_dict_set(target, "opt", ckpt_tree_new_placeholder(), &err); /* a whole subtree */
  ckpt_tree_dict_set(ckpt_tree_dict_get(target, "params"), "b", ckpt_tree_new_placeholder(), &err);
  char *c = pt_fmt("%s/opt.0/0", dir);
  unlink(c); /* never read */
  free(c);
  ckpt_tree *back = NULL;
  cr_assert_eq(pt_restore(dir, target, &back, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(ckpt_tree_kind(ckpt_tree_dict_get(back, "opt")), CKPT_NODE_PLACEHOLDER);
  cr_assert_eq(ckpt_tree_kind(ckpt_tree_get(back, "params.b")), CKPT_NODE_PLACEHOLDER);
  cr_assert(ckpt_tree_equal(ckpt_tree_get(back, "params.w"), ckpt_tree_get(t, "params.w")));
  ckpt_tree_free(back);
  ckpt_tree_free(target);
  /* PyTree saves may contain placeholders themselves; they come back as placeholders. */
  char *dir2 = pt_tmpdir();
  ckpt_tree *withp = ckpt_tree_new_dict();
  ckpt_tree_dict_set(withp, "x", ckpt_tree_new_placeholder(), &err);
  ckpt_tree_dict_set(withp, "y", ckpt_tree_new_int(CKPT_DTYPE_UINT8, 3), &err);
  cr_assert_eq(pt_save(dir2, withp, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(pt_restore(dir2, NULL, &back, &err), CKPT_OK, "%s", err.message);
  cr_assert(ckpt_tree_equal(back, withp));
  ckpt_tree_free(back);
  ckpt_tree_free(withp);
  ckpt_tree_free(t);
  pt_rmtree(dir2);
  pt_rmtree(dir);
}

Test(pytree_restore, strict_and_non_strict_shapes) {
  char *dir = pt_tmpdir();
  ckpt_array *src = pt_save_grid(dir, 6, 4, 4, CKPT_COMPRESSION_NONE, false);
  ckpt_error err = CKPT_ERROR_INIT;
  /* A bigger target: strict → error naming both shapes; non-strict → zero padding. */
  int64_t big[2] = {8, 3};
  ckpt_array *tb = NULL;
  cr_assert_eq(ckpt_array_new(CKPT_DTYPE_INT32, 2, big, &tb, &err), CKPT_OK);
  memset(ckpt_array_data(tb), 0x11, 8 * 3 * 4); /* owned by the target: not reused */
  ckpt_tree *target = ckpt_tree_new_dict();
  ckpt_tree_dict_set(target, "w", ckpt_tree_new_array(tb), &err);
  ckpt_tree *back = NULL;
  cr_assert_eq(pt_restore(dir, target, &back, &err), CKPT_EMISMATCH);
  cr_assert(strstr(err.message, "(6, 4)") != NULL && strstr(err.message, "(8, 3)") != NULL, "%s",
            err.message);
  ckpt_pytree_restore_spec spec;
  memset(&spec, 0, sizeof spec);
  spec.target = target;
  spec.non_strict = true;
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_pytree_restore_io(NULL, dir, &spec, &back, &err), CKPT_OK, "%s", err.message);
  const int32_t *d = ckpt_array_data(ckpt_tree_array(ckpt_tree_dict_get(back, "w")));
  for (int r = 0; r < 8; r++)
    for (int c = 0; c < 3; c++)
      cr_assert_eq(d[r * 3 + c], r < 6 ? r * 1000 + c : 0, "(%d,%d)", r, c);
  ckpt_tree_free(back);
  /* Per-leaf restore args: strict=false, a global shape and a dtype cast, without a target. */
  int64_t gs[2] = {3, 5};
  ckpt_pytree_leaf_restore la;
  memset(&la, 0, sizeof la);
  la.param = "w";
  la.has_global_shape = true;
  la.ndim = 2;
  la.global_shape = gs;
  la.has_strict = true;
  la.strict = false;
  la.has_dtype = true;
  la.dtype = CKPT_DTYPE_FLOAT64;
  memset(&spec, 0, sizeof spec);
  spec.n_leaf_args = 1;
  spec.leaf_args = &la;
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_pytree_restore_io(NULL, dir, &spec, &back, &err), CKPT_OK, "%s", err.message);
  const ckpt_array *b = ckpt_tree_array(ckpt_tree_dict_get(back, "w"));
  cr_assert_eq(b->dtype, CKPT_DTYPE_FLOAT64);
  cr_assert_eq(b->shape[0], 3);
  cr_assert_eq(b->shape[1], 5);
  const double *dd = ckpt_array_data(b);
  for (int r = 0; r < 3; r++)
    for (int c = 0; c < 5; c++)
      cr_assert_eq(dd[r * 5 + c], c < 4 ? r * 1000.0 + c : 0.0);
  ckpt_tree_free(back);
  /* A rank change is an error even when not strict; a typo in restore_args too. */
  int64_t gs1[1] = {24};
  la.ndim = 1;
  la.global_shape = gs1;
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_pytree_restore_io(NULL, dir, &spec, &back, &err), CKPT_EMISMATCH);
  cr_assert(strstr(err.message, "ranks") != NULL, "%s", err.message);
  la.param = "nope";
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_pytree_restore_io(NULL, dir, &spec, &back, &err), CKPT_EINVAL);
  cr_assert(strstr(err.message, "'nope'") != NULL, "%s", err.message);
  ckpt_tree_free(target);
  ckpt_array_free(src);
  pt_rmtree(dir);
}

Test(pytree_restore, target_types_and_casts) {
  char *dir = pt_tmpdir();
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *t = three_leaves();
  cr_assert_eq(pt_save(dir, t, &err), CKPT_OK, "%s", err.message);
  /* Target dtypes cast the stored data; a scalar target of another dtype casts the scalar. */
  ckpt_tree *target = ckpt_tree_clone(t);
  int64_t s[1] = {4};
  ckpt_array *bf = NULL;
  ckpt_array_new(CKPT_DTYPE_BFLOAT16, 1, s, &bf, &err);
  ckpt_tree_dict_set(ckpt_tree_dict_get(target, "params"), "w", ckpt_tree_new_array(bf), &err);
  ckpt_tree_dict_set(target, "step", ckpt_tree_new_float(CKPT_DTYPE_FLOAT32, 0), &err);
  ckpt_tree *back = NULL;
  cr_assert_eq(pt_restore(dir, target, &back, &err), CKPT_OK, "%s", err.message);
  const ckpt_array *w = ckpt_tree_array(ckpt_tree_get(back, "params.w"));
  cr_assert_eq(w->dtype, CKPT_DTYPE_BFLOAT16);
  const float *orig = ckpt_array_data(ckpt_tree_array(ckpt_tree_get(t, "params.w")));
  const uint16_t *h = ckpt_array_data(w);
  for (int i = 0; i < 4; i++)
    cr_assert_eq(h[i], ckpt_float_to_bfloat16(orig[i]));
  ckpt_scalar sc;
  cr_assert(ckpt_tree_scalar(ckpt_tree_dict_get(back, "step"), &sc));
  cr_assert_eq(sc.dtype, CKPT_DTYPE_FLOAT32);
  cr_assert_eq(sc.v.f, 7.0);
  ckpt_tree_free(back);
  /* A string target for an array leaf is a type error naming the leaf. */
  ckpt_tree_dict_set(target, "step", ckpt_tree_new_string("x"), &err);
  cr_assert_eq(pt_restore(dir, target, &back, &err), CKPT_ETYPE);
  cr_assert(strstr(err.message, "('step',)") != NULL, "%s", err.message);
  ckpt_tree_free(target);
  ckpt_tree_free(t);
  pt_rmtree(dir);
}

Test(pytree_restore, transforms_rename_keys) {
  char *dir = pt_tmpdir();
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *t = three_leaves();
  cr_assert_eq(pt_save(dir, t, &err), CKPT_OK, "%s", err.message);
  ckpt_pytree_transform tf[1] = {{"params\\.(.*)", "model.layer.\\1"}};
  ckpt_pytree_restore_spec spec;
  memset(&spec, 0, sizeof spec);
  spec.transforms = tf;
  spec.n_transforms = 1;
  spec.has_transforms = true;
  spec.transforms_default_to_original = true;
  ckpt_tree *back = NULL;
  cr_assert_eq(ckpt_pytree_restore_io(NULL, dir, &spec, &back, &err), CKPT_OK, "%s", err.message);
  cr_assert(ckpt_tree_equal(ckpt_tree_get(back, "model.layer.w"), ckpt_tree_get(t, "params.w")));
  cr_assert_not_null(ckpt_tree_get(back, "step"), "unmatched names keep their name");
  cr_assert_null(ckpt_tree_dict_get(back, "params"));
  ckpt_tree_free(back);
  /* Into a target named the new way, with unmatched names dropped. */
  ckpt_tree *target = ckpt_tree_new_dict();
  ckpt_tree *m = ckpt_tree_new_dict();
  ckpt_tree_dict_set(m, "w", ckpt_tree_clone(ckpt_tree_get(t, "params.w")), &err);
  ckpt_tree_dict_set(m, "b", ckpt_tree_clone(ckpt_tree_get(t, "params.b")), &err);
  ckpt_tree_dict_set(target, "new", m, &err);
  ckpt_pytree_transform tf2[1] = {{"params\\.([wb])", "new.\\1"}};
  spec.transforms = tf2;
  spec.target = target;
  spec.transforms_default_to_original = false;
  cr_assert_eq(ckpt_pytree_restore_io(NULL, dir, &spec, &back, &err), CKPT_OK, "%s", err.message);
  cr_assert(ckpt_tree_equal(back, target));
  ckpt_tree_free(back);
  /* A bad regex is a clear error. */
  ckpt_pytree_transform bad[1] = {{"(", "x"}};
  spec.transforms = bad;
  cr_assert_eq(ckpt_pytree_restore_io(NULL, dir, &spec, &back, &err), CKPT_EINVAL);
  cr_assert(strstr(err.message, "'('") != NULL, "%s", err.message);
  ckpt_tree_free(target);
  ckpt_tree_free(t);
  pt_rmtree(dir);
}

Test(pytree_restore, placeholder_prefix_with_sorting_neighbours) {
  /* "a-x" sorts between "a" and "a.b"; a placeholder at "a" must still cover "a.b". */
  char *dir = pt_tmpdir();
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *t = ckpt_tree_new_dict();
  ckpt_tree *a = ckpt_tree_new_dict();
  ckpt_tree_dict_set(a, "b", ckpt_tree_new_int(CKPT_DTYPE_INT32, 1), &err);
  ckpt_tree_dict_set(t, "a", a, &err);
  ckpt_tree_dict_set(t, "a-x", ckpt_tree_new_int(CKPT_DTYPE_INT32, 2), &err);
  cr_assert_eq(pt_save(dir, t, &err), CKPT_OK, "%s", err.message);
  ckpt_tree *target = ckpt_tree_clone(t);
  ckpt_tree_dict_set(target, "a", ckpt_tree_new_placeholder(), &err);
  ckpt_tree *back = NULL;
  cr_assert_eq(pt_restore(dir, target, &back, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(ckpt_tree_kind(ckpt_tree_dict_get(back, "a")), CKPT_NODE_PLACEHOLDER);
  ckpt_scalar s;
  cr_assert(ckpt_tree_scalar(ckpt_tree_dict_get(back, "a-x"), &s));
  cr_assert_eq(s.v.i, 2);
  ckpt_tree_free(back);
  ckpt_tree_free(target);
  ckpt_tree_free(t);
  pt_rmtree(dir);
}
