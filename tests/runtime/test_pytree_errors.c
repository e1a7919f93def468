/* test_pytree_errors.c — the bad days: corrupt, truncated and missing chunks and metadata,
 * unsafe keys and planted symlinks, structure errors at save time, and I/O failures injected
 * at every call site of a save and a restore. Every failure must be an error naming the array
 * and chunk (or file), never a crash or silent zeros. */
#include "test_pytree_util.h"

static ckpt_tree *small_tree(void) {
  ckpt_error err = CKPT_ERROR_INIT;
  int64_t shape[2] = {6, 5};
  ckpt_tree *t = ckpt_tree_new_dict();
  ckpt_tree *p = ckpt_tree_new_dict();
  ckpt_tree_dict_set(p, "w", ckpt_tree_new_array(pt_array(CKPT_DTYPE_FLOAT32, 2, shape, 5)), &err);
  ckpt_tree_dict_set(t, "params", p, &err);
  ckpt_tree_dict_set(t, "name", ckpt_tree_new_string("run"), &err);
  ckpt_tree_dict_set(t, "step", ckpt_tree_new_int(CKPT_DTYPE_INT64, 3), &err);
  cr_assert_eq(err.code, CKPT_OK);
  return t;
}

/* Saves small_tree with 2-row chunks (3 chunk files for params.w). */
static void save_small(const char *dir, ckpt_tree *t, ckpt_compression comp) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_pytree_leaf_save la;
  memset(&la, 0, sizeof la);
  la.param = "params.w";
  la.chunk_byte_size = 2 * 5 * 4;
  la.compression = comp;
  ckpt_pytree_save_spec spec;
  memset(&spec, 0, sizeof spec);
  spec.tree = t;
  spec.n_leaf_args = 1;
  spec.leaf_args = &la;
  cr_assert_eq(ckpt_pytree_save_sync(NULL, false, dir, &spec, &err), CKPT_OK, "%s", err.message);
}

static void expect_restore_error(const char *dir, ckpt_status code, const char *n1,
                                 const char *n2) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *back = NULL;
  cr_assert_eq(pt_restore(dir, NULL, &back, &err), code, "got %s: %s", ckpt_status_name(err.code),
               err.message);
  cr_assert_null(back);
  if (n1)
    cr_assert(strstr(err.message, n1) != NULL, "'%s' not in: %s", n1, err.message);
  if (n2)
    cr_assert(strstr(err.message, n2) != NULL, "'%s' not in: %s", n2, err.message);
  /* verify finds array-data problems too. */
  if (code == CKPT_ECORRUPT || code == CKPT_EINCOMPLETE) {
    ckpt_error e2 = CKPT_ERROR_INIT;
    cr_assert_neq(ckpt_pytree_verify(NULL, dir, NULL, &e2), CKPT_OK);
  }
}

Test(pytree_errors, corrupt_chunk) {
  for (int comp = 0; comp < 2; comp++) {
    char *dir = pt_tmpdir();
    ckpt_tree *t = small_tree();
    save_small(dir, t, comp ? CKPT_COMPRESSION_ZSTD : CKPT_COMPRESSION_NONE);
    char *c = pt_fmt("%s/params.w/1.0", dir);
    pt_flip(c, 5);
    expect_restore_error(dir, CKPT_ECORRUPT, "params.w", "chunk '1.0'");
    free(c);
    ckpt_tree_free(t);
    pt_rmtree(dir);
  }
}

Test(pytree_errors, corrupt_chunk_in_direct_read_path) {
  /* A target whose shard covers exactly one chunk makes restore pread straight into it; the
   * checksum must still catch the flipped bit. */
  char *dir = pt_tmpdir();
  ckpt_tree *t = small_tree();
  save_small(dir, t, CKPT_COMPRESSION_NONE);
  char *c = pt_fmt("%s/params.w/2.0", dir);
  pt_flip(c, 39);
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *target = ckpt_tree_clone(t);
  ckpt_tree *back = NULL;
  cr_assert_eq(pt_restore(dir, target, &back, &err), CKPT_ECORRUPT, "%s", err.message);
  cr_assert(strstr(err.message, "chunk '2.0'") != NULL, "%s", err.message);
  free(c);
  ckpt_tree_free(target);
  ckpt_tree_free(t);
  pt_rmtree(dir);
}

Test(pytree_errors, corrupt_piece_of_a_large_direct_read) {
  /* A direct read of a chunk larger than the 256 KiB pieces it is read and checksummed in:
   * the intact chunk restores bit for bit, and a flipped bit in the first piece, a middle one
   * or the short last one is caught. */
  char *dir = pt_tmpdir();
  int64_t shape[1] = {300000}; /* 1,200,000 bytes: four whole pieces and a short one */
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *t = ckpt_tree_new_dict();
  cr_assert_eq(ckpt_tree_dict_set(
                   t, "w", ckpt_tree_new_array(pt_array(CKPT_DTYPE_FLOAT32, 1, shape, 9)), &err),
               CKPT_OK);
  cr_assert_eq(pt_save(dir, t, &err), CKPT_OK, "%s", err.message);
  ckpt_tree *target = ckpt_tree_clone(t);
  ckpt_tree *back = NULL;
  cr_assert_eq(pt_restore(dir, target, &back, &err), CKPT_OK, "%s", err.message);
  cr_assert(ckpt_tree_equal(back, t));
  ckpt_tree_free(back);
  char *c = pt_fmt("%s/w/0", dir);
  long offsets[] = {10, 600001, 1199999};
  for (size_t i = 0; i < 3; i++) {
    pt_flip(c, offsets[i]);
    ckpt_error e = CKPT_ERROR_INIT;
    back = NULL;
    cr_assert_eq(pt_restore(dir, target, &back, &e), CKPT_ECORRUPT, "offset %ld: %s", offsets[i],
                 e.message);
    cr_assert(strstr(e.message, "crc32c") != NULL, "%s", e.message);
    cr_assert_null(back);
    pt_flip(c, offsets[i]);
  }
  free(c);
  ckpt_tree_free(target);
  ckpt_tree_free(t);
  pt_rmtree(dir);
}

Test(pytree_errors, truncated_missing_and_extended_chunks) {
  char *dir = pt_tmpdir();
  ckpt_tree *t = small_tree();
  save_small(dir, t, CKPT_COMPRESSION_NONE);
  char *c = pt_fmt("%s/params.w/0.0", dir);
  cr_assert_eq(truncate(c, 17), 0);
  expect_restore_error(dir, CKPT_ECORRUPT, "chunk '0.0'", "params.w");
  cr_assert_eq(truncate(c, 40), 0); /* back to size but with zeros: the checksum catches it */
  expect_restore_error(dir, CKPT_ECORRUPT, "chunk '0.0'", "crc32c");
  cr_assert_eq(truncate(c, 41), 0);
  expect_restore_error(dir, CKPT_ECORRUPT, "chunk '0.0'", NULL);
  cr_assert_eq(unlink(c), 0);
  expect_restore_error(dir, CKPT_EINCOMPLETE, "chunk '0.0' is missing", "params.w");
  free(c);
  ckpt_tree_free(t);
  pt_rmtree(dir);
}

Test(pytree_errors, damaged_metadata_files) {
  char *dir = pt_tmpdir();
  ckpt_tree *t = small_tree();
  save_small(dir, t, CKPT_COMPRESSION_NONE);
  pt_forget_file_sums(dir);
  char *z = pt_fmt("%s/params.w/.zarray", dir);
  size_t n;
  char *orig = pt_read(z, &n);
  pt_write(z, orig, n / 2);
  expect_restore_error(dir, CKPT_ECORRUPT, "params.w/.zarray", NULL);
  cr_assert_eq(unlink(z), 0);
  expect_restore_error(dir, CKPT_EINCOMPLETE, "params.w", ".zarray");
  /* A .zarray describing another shape makes the chunk sizes disagree. */
  char *other = strdup(orig);
  char *p = strstr(other, "\"shape\":[6,5]");
  cr_assert_not_null(p);
  memcpy(p, "\"shape\":[6,4]", 13);
  char *q = strstr(other, "\"chunks\":[2,5]");
  memcpy(q, "\"chunks\":[2,4]", 14);
  pt_write(z, other, strlen(other));
  expect_restore_error(dir, CKPT_ECORRUPT, "chunk '0.0'", "expected");
  pt_write(z, orig, n);
  free(other);
  free(orig);
  free(z);

  char *m = pt_fmt("%s/_METADATA", dir);
  orig = pt_read(m, &n);
  pt_write(m, orig, n - 3);
  expect_restore_error(dir, CKPT_ECORRUPT, "_METADATA", NULL);
  pt_write(m, "{\"tree_metadata\": 5}", 20);
  expect_restore_error(dir, CKPT_ECORRUPT, "_METADATA", NULL);
  cr_assert_eq(unlink(m), 0);
  expect_restore_error(dir, CKPT_ENOENT, "_METADATA", NULL);
  pt_write(m, orig, n);
  free(orig);
  free(m);

  char *s = pt_fmt("%s/_strings.json", dir);
  pt_write(s, "{}", 2);
  expect_restore_error(dir, CKPT_ECORRUPT, "('name',)", "_strings.json");
  free(s);

  char *k = pt_fmt("%s/_CHECKSUMS", dir);
  pt_write(k, "{\"arrays\": 3}", 13);
  expect_restore_error(dir, CKPT_ECORRUPT, "_CHECKSUMS", NULL);
  /* An array listed twice: which entry a reader would check is undefined, so it is refused. */
  static const char twice[] = "{\"algorithm\":\"crc32c\",\"arrays\":{\"a\":{},\"b\":{},\"a\":{}}}";
  pt_write(k, twice, sizeof twice - 1);
  expect_restore_error(dir, CKPT_ECORRUPT, "_CHECKSUMS", "key \"a\" more than once");
  free(k);
  ckpt_tree_free(t);
  pt_rmtree(dir);
}

Test(pytree_errors, missing_chunk_of_an_old_checkpoint_reads_fill_value) {
  /* Checkpoints written before store_array_data_equal_to_fill_value read a missing chunk as the
   * fill value, as TensorStore does; ckpt's own are strict (test above). */
  char *dir = pt_tmpdir();
  ckpt_tree *t = small_tree();
  save_small(dir, t, CKPT_COMPRESSION_NONE);
  char *m = pt_fmt("%s/_METADATA", dir);
  char *text = pt_read(m, NULL);
  char *p = strstr(text, "\"store_array_data_equal_to_fill_value\": true");
  cr_assert_not_null(p);
  memcpy(p + strlen("\"store_array_data_equal_to_fill_value\": "), "0   ", 4);
  pt_write(m, text, strlen(text));
  char *k = pt_fmt("%s/_CHECKSUMS", dir);
  unlink(k);
  char *c = pt_fmt("%s/params.w/1.0", dir);
  unlink(c);
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *back = NULL;
  cr_assert_eq(pt_restore(dir, NULL, &back, &err), CKPT_OK, "%s", err.message);
  const float *got = ckpt_array_data(ckpt_tree_array(ckpt_tree_get(back, "params.w")));
  const float *want = ckpt_array_data(ckpt_tree_array(ckpt_tree_get(t, "params.w")));
  for (int i = 0; i < 30; i++)
    cr_assert_eq(got[i], (i >= 10 && i < 20) ? 0.0f : want[i]);
  ckpt_tree_free(back);
  free(c);
  free(k);
  free(text);
  free(m);
  ckpt_tree_free(t);
  pt_rmtree(dir);
}

static ckpt_status save_key(const char *dir, const char *key, ckpt_error *err) {
  ckpt_tree *t = ckpt_tree_new_dict();
  ckpt_tree_dict_set(t, key, ckpt_tree_new_int(CKPT_DTYPE_INT32, 1), err);
  ckpt_status st = pt_save(dir, t, err);
  ckpt_tree_free(t);
  return st;
}

Test(pytree_errors, unsafe_keys_are_rejected) {
  char *base = pt_tmpdir();
  char *dir = pt_fmt("%s/item", base);
  cr_assert_eq(mkdir(dir, 0777), 0);
  char longkey[4001];
  memset(longkey, 'k', 4000);
  longkey[4000] = '\0';
  const char *bad[] = {"../x", "/etc/x", "a/b", ".", "..", "", ".hidden", "_METADATA", longkey};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ckpt_error err = CKPT_ERROR_INIT;
    cr_assert_eq(save_key(dir, bad[i], &err), CKPT_EUNSAFE, "key '%.20s': %s", bad[i], err.message);
    cr_assert(strstr(err.message, "leaf (") != NULL, "the message names the key: %s", err.message);
  }
  /* Nothing was written anywhere: not in the item, not beside it. */
  char *x = pt_fmt("%s/x", base);
  cr_assert(!pt_exists(x));
  free(x);
  DIR *d = opendir(dir);
  struct dirent *e;
  int entries = 0;
  while ((e = readdir(d)) != NULL)
    entries += e->d_name[0] != '.';
  closedir(d);
  cr_assert_eq(entries, 0);
  /* A NUL inside a C key cannot exist; keys with '.' that collide are refused. */
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *t = ckpt_tree_new_dict();
  ckpt_tree *a = ckpt_tree_new_dict();
  ckpt_tree_dict_set(a, "b", ckpt_tree_new_int(CKPT_DTYPE_INT32, 1), &err);
  ckpt_tree_dict_set(t, "a", a, &err);
  ckpt_tree_dict_set(t, "a.b", ckpt_tree_new_int(CKPT_DTYPE_INT32, 2), &err);
  cr_assert_eq(pt_save(dir, t, &err), CKPT_EINVAL);
  cr_assert(strstr(err.message, "('a', 'b')") != NULL && strstr(err.message, "('a.b',)") != NULL,
            "%s", err.message);
  ckpt_tree_free(t);
  free(dir);
  pt_rmtree(base);
}

Test(pytree_errors, unsafe_names_in_metadata_are_not_followed) {
  /* A crafted _METADATA naming "../outside" must not make restore read outside the item. */
  char *base = pt_tmpdir();
  char *dir = pt_fmt("%s/item", base);
  cr_assert_eq(mkdir(dir, 0777), 0);
  ckpt_tree *t = small_tree();
  save_small(dir, t, CKPT_COMPRESSION_NONE);
  char *outside = pt_fmt("%s/outside", base);
  char *inside = pt_fmt("%s/params.w", dir);
  cr_assert_eq(rename(inside, outside), 0, "a real array directory outside the item");
  char *m = pt_fmt("%s/_METADATA", dir);
  char *text = pt_read(m, NULL);
  char *p =
      strstr(text, "{\"key\": \"params\", \"key_type\": 2}, {\"key\": \"w\", \"key_type\": 2}");
  cr_assert_not_null(p);
  const char *repl = "{\"key\": \"..\", \"key_type\": 2}, {\"key\": \"/outside\", \"key_type\": 2}";
  char *fixed = pt_fmt(
      "%.*s%s%s", (int)(p - text), text, repl,
      p + strlen("{\"key\": \"params\", \"key_type\": 2}, {\"key\": \"w\", \"key_type\": 2}"));
  pt_write(m, fixed, strlen(fixed));
  /* the attacker deletes _CHECKSUMS too (it would name the leaf missing from _METADATA) */
  char *k = pt_fmt("%s/_CHECKSUMS", dir);
  cr_assert_eq(unlink(k), 0);
  free(k);
  expect_restore_error(dir, CKPT_EUNSAFE, "parameter name", NULL);
  free(fixed);
  free(text);
  free(m);
  free(inside);
  free(outside);
  ckpt_tree_free(t);
  free(dir);
  pt_rmtree(base);
}

Test(pytree_errors, planted_symlinks_are_not_followed) {
  char *base = pt_tmpdir();
  char *dir = pt_fmt("%s/item", base);
  cr_assert_eq(mkdir(dir, 0777), 0);
  ckpt_tree *t = small_tree();
  save_small(dir, t, CKPT_COMPRESSION_NONE);
  /* The array directory replaced by a link to a copy outside. */
  char *arr = pt_fmt("%s/params.w", dir);
  char *moved = pt_fmt("%s/elsewhere", base);
  cr_assert_eq(rename(arr, moved), 0);
  cr_assert_eq(symlink(moved, arr), 0);
  expect_restore_error(dir, CKPT_EUNSAFE, "params.w", "symlink");
  cr_assert_eq(unlink(arr), 0);
  cr_assert_eq(rename(moved, arr), 0);
  /* One chunk file replaced by a link to a same-sized file outside. */
  char *chunk = pt_fmt("%s/1.0", arr);
  char *target = pt_fmt("%s/evil", base);
  size_t n;
  char *data = pt_read(chunk, &n);
  pt_write(target, data, n);
  cr_assert_eq(unlink(chunk), 0);
  cr_assert_eq(symlink(target, chunk), 0);
  expect_restore_error(dir, CKPT_EUNSAFE, "chunk '1.0'", "symlink");
  /* And _METADATA itself as a link. */
  cr_assert_eq(unlink(chunk), 0);
  pt_write(chunk, data, n);
  char *m = pt_fmt("%s/_METADATA", dir);
  char *m2 = pt_fmt("%s/meta_elsewhere", base);
  cr_assert_eq(rename(m, m2), 0);
  cr_assert_eq(symlink(m2, m), 0);
  expect_restore_error(dir, CKPT_EUNSAFE, NULL, NULL);
  free(m);
  free(m2);
  free(data);
  free(target);
  free(chunk);
  free(moved);
  free(arr);
  ckpt_tree_free(t);
  free(dir);
  pt_rmtree(base);
}

Test(pytree_errors, save_rules) {
  char *dir = pt_tmpdir();
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *t = small_tree();
  ckpt_pytree_save_spec spec;
  memset(&spec, 0, sizeof spec);
  spec.tree = t;
  spec.standard = true;
  spec.what = "StandardSave";
  cr_assert_eq(ckpt_pytree_save_sync(NULL, false, dir, &spec, &err), CKPT_ETYPE);
  cr_assert(strstr(err.message, "('name',)") != NULL, "%s", err.message);
  cr_assert(strstr(err.message, "PyTreeSave") != NULL, "%s", err.message);
  cr_assert(strstr(err.message, "StandardSave") != NULL, "%s", err.message);
  /* A bare leaf is not a tree. */
  ckpt_tree *leaf = ckpt_tree_new_int(CKPT_DTYPE_INT32, 1);
  spec.tree = leaf;
  spec.standard = false;
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_pytree_save_sync(NULL, false, dir, &spec, &err), CKPT_EINVAL);
  cr_assert(strstr(err.message, "ArraySave") != NULL, "%s", err.message);
  ckpt_tree_free(leaf);
  /* save_args must name leaves. */
  ckpt_pytree_leaf_save la;
  memset(&la, 0, sizeof la);
  la.param = "params.typo";
  spec.tree = t;
  spec.n_leaf_args = 1;
  spec.leaf_args = &la;
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_pytree_save_sync(NULL, false, dir, &spec, &err), CKPT_EINVAL);
  cr_assert(strstr(err.message, "params.typo") != NULL, "%s", err.message);
  /* An array whose shards leave a gap. */
  int64_t shape[1] = {8}, o[1] = {0}, s[1] = {4};
  ckpt_array *gap = NULL;
  ckpt_array_new_sharded(CKPT_DTYPE_INT8, 1, shape, &gap, &err);
  ckpt_array_add_shard(gap, o, s, NULL, 0, &err);
  ckpt_tree *g = ckpt_tree_new_dict();
  ckpt_tree_dict_set(g, "g", ckpt_tree_new_array(gap), &err);
  spec.tree = g;
  spec.n_leaf_args = 0;
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_pytree_save_sync(NULL, false, dir, &spec, &err), CKPT_EINVAL);
  cr_assert(strstr(err.message, "('g',)") != NULL, "%s", err.message);
  ckpt_tree_free(g);
  ckpt_tree_free(t);
  pt_rmtree(dir);
}

/* ---- fault injection ---- */

typedef struct fault_plan {
  ckpt_io_op op;
  uint64_t fail_at; /* 1-based index among calls of op */
  uint64_t seen;
  int errnum;
} fault_plan;

static int fault_hook(void *arg, ckpt_io_op op, const char *path) {
  (void)path;
  fault_plan *f = arg;
  if (op != f->op)
    return 0;
  f->seen++;
  return f->seen == f->fail_at ? f->errnum : 0;
}

Test(pytree_errors, every_io_call_of_a_save_can_fail) {
  ckpt_tree *t = small_tree();
  ckpt_io *io = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_io_new(&io, &err), CKPT_OK);
  static const ckpt_io_op ops[] = {CKPT_IO_OPEN, CKPT_IO_WRITE, CKPT_IO_FSYNC, CKPT_IO_CLOSE,
                                   CKPT_IO_MKDIR};
  ckpt_pytree_leaf_save la;
  memset(&la, 0, sizeof la);
  la.param = "params.w";
  la.chunk_byte_size = 2 * 5 * 4;
  ckpt_pytree_save_spec spec;
  memset(&spec, 0, sizeof spec);
  spec.tree = t;
  spec.n_leaf_args = 1;
  spec.leaf_args = &la;
  int failures = 0;
  for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
    for (uint64_t at = 1;; at++) {
      char *dir = pt_tmpdir();
      fault_plan f = {ops[k], at, 0, at % 2 ? ENOSPC : EIO};
      ckpt_io_set_fault(io, fault_hook, &f);
      ckpt_error e = CKPT_ERROR_INIT;
      ckpt_status st = ckpt_pytree_save_sync(io, false, dir, &spec, &e);
      ckpt_io_set_fault(io, NULL, NULL);
      if (f.seen < at) { /* this op has fewer calls: the sweep for it is done */
        cr_assert_eq(st, CKPT_OK, "%s", e.message);
        pt_rmtree(dir);
        break;
      }
      cr_assert_neq(st, CKPT_OK, "%s call %llu failed but the save succeeded",
                    ckpt_io_op_name(ops[k]), (unsigned long long)at);
      cr_assert(st == CKPT_ENOSPC || st == CKPT_EIO, "%s", e.message);
      cr_assert(strstr(e.message, dir) != NULL, "names the path: %s", e.message);
      failures++;
      /* The next save of the same tree into a fresh directory succeeds. */
      char *dir2 = pt_tmpdir();
      cr_assert_eq(ckpt_pytree_save_sync(io, false, dir2, &spec, &e), CKPT_OK, "%s", e.message);
      pt_rmtree(dir2);
      pt_rmtree(dir);
    }
  }
  cr_assert_gt(failures, 20);
  ckpt_io_free(io);
  ckpt_tree_free(t);
}

Test(pytree_errors, every_io_call_of_a_restore_can_fail) {
  char *dir = pt_tmpdir();
  ckpt_tree *t = small_tree();
  save_small(dir, t, CKPT_COMPRESSION_NONE);
  ckpt_io *io = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_io_new(&io, &err), CKPT_OK);
  static const ckpt_io_op ops[] = {CKPT_IO_OPEN, CKPT_IO_READ, CKPT_IO_STAT};
  int failures = 0;
  for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
    for (uint64_t at = 1;; at++) {
      fault_plan f = {ops[k], at, 0, EIO};
      ckpt_io_set_fault(io, fault_hook, &f);
      ckpt_error e = CKPT_ERROR_INIT;
      ckpt_tree *back = NULL;
      ckpt_status st = ckpt_pytree_restore_io(io, dir, NULL, &back, &e);
      ckpt_io_set_fault(io, NULL, NULL);
      if (f.seen < at) {
        cr_assert_eq(st, CKPT_OK, "%s", e.message);
        cr_assert(ckpt_tree_equal(back, t));
        ckpt_tree_free(back);
        break;
      }
      cr_assert_eq(st, CKPT_EIO, "%s call %llu: %s: %s", ckpt_io_op_name(ops[k]),
                   (unsigned long long)at, ckpt_status_name(st), e.message);
      cr_assert_null(back);
      failures++;
    }
  }
  cr_assert_gt(failures, 8);
  ckpt_io_free(io);
  ckpt_tree_free(t);
  pt_rmtree(dir);
}

Test(pytree_errors, each_chunk_is_opened_once) {
  /* Resharding into boxes that each need parts of several chunks still opens every chunk file
   * once: 3 chunks + .zarray + _METADATA + _CHECKSUMS (+ nothing for strings not asked for). */
  char *dir = pt_tmpdir();
  ckpt_tree *t = small_tree();
  save_small(dir, t, CKPT_COMPRESSION_NONE);
  ckpt_error err = CKPT_ERROR_INIT;
  int64_t shape[2] = {6, 5};
  ckpt_array *a = NULL;
  ckpt_array_new_sharded(CKPT_DTYPE_FLOAT32, 2, shape, &a, &err);
  for (int64_t c = 0; c < 5; c++) {
    int64_t o[2] = {0, c}, s[2] = {6, 1};
    ckpt_array_add_shard(a, o, s, NULL, 0, &err);
  }
  ckpt_tree *target = ckpt_tree_new_dict();
  ckpt_tree *p = ckpt_tree_new_dict();
  ckpt_tree_dict_set(p, "w", ckpt_tree_new_array(a), &err);
  ckpt_tree_dict_set(target, "params", p, &err);
  ckpt_pytree_restore_spec spec;
  memset(&spec, 0, sizeof spec);
  spec.target = target;
  spec.partial_restore = true;
  ckpt_io *io = NULL;
  cr_assert_eq(ckpt_io_new(&io, &err), CKPT_OK);
  ckpt_tree *back = NULL;
  cr_assert_eq(ckpt_pytree_restore_io(io, dir, &spec, &back, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(ckpt_io_count(io, CKPT_IO_OPEN), 6);
  const ckpt_array *b = ckpt_tree_array(ckpt_tree_get(back, "params.w"));
  const float *want = ckpt_array_data(ckpt_tree_array(ckpt_tree_get(t, "params.w")));
  for (int64_t c = 0; c < 5; c++)
    for (int64_t r = 0; r < 6; r++)
      cr_assert_eq(((const float *)b->shards[c].data)[r], want[r * 5 + c]);
  ckpt_tree_free(back);
  ckpt_io_free(io);
  ckpt_tree_free(target);
  ckpt_tree_free(t);
  pt_rmtree(dir);
}

/* A tree of n float32 arrays "a00", "a01", ... (4 x 3 each). */
static ckpt_tree *many_arrays(int n) {
  ckpt_error err = CKPT_ERROR_INIT;
  int64_t shape[2] = {4, 3};
  ckpt_tree *t = ckpt_tree_new_dict();
  for (int i = 0; i < n; i++) {
    char key[16];
    snprintf(key, sizeof key, "a%02d", i);
    ckpt_tree_dict_set(t, key, ckpt_tree_new_array(pt_array(CKPT_DTYPE_FLOAT32, 2, shape, i)),
                       &err);
  }
  cr_assert_eq(err.code, CKPT_OK);
  return t;
}

Test(pytree_errors, metadata_read_ahead_reports_the_first_leaf) {
  /* The arrays' .zarray files are read in parallel on the engine; what a restore reports must
   * still be the first broken leaf in leaf order, every time, whichever read finished first. */
  char *dir = pt_tmpdir();
  ckpt_tree *t = many_arrays(16);
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(pt_save(dir, t, &err), CKPT_OK, "%s", err.message);
  const char *broken[] = {"a11", "a05", "a14"};
  for (size_t i = 0; i < 3; i++) {
    char *p = pt_fmt("%s/%s/.zarray", dir, broken[i]);
    cr_assert_eq(unlink(p), 0);
    free(p);
  }
  for (int round = 0; round < 8; round++) {
    ckpt_error e = CKPT_ERROR_INIT;
    ckpt_tree *back = NULL;
    cr_assert_eq(pt_restore(dir, NULL, &back, &e), CKPT_EINCOMPLETE, "%s", e.message);
    cr_assert_null(back);
    cr_assert(strstr(e.message, "array 'a05'") != NULL, "round %d: %s", round, e.message);
    ckpt_tree *target = ckpt_tree_clone(t);
    cr_assert_eq(pt_restore(dir, target, &back, &e), CKPT_EINCOMPLETE, "%s", e.message);
    cr_assert(strstr(e.message, "array 'a05'") != NULL, "round %d, target: %s", round, e.message);
    ckpt_tree_free(target);
  }
  ckpt_tree_free(t);
  pt_rmtree(dir);
}

Test(pytree_errors, metadata_read_ahead_reads_only_restored_leaves) {
  /* A partial restore reads the metadata of the leaves it restores and no other: a damaged
   * array the target leaves out does not fail it. */
  char *dir = pt_tmpdir();
  ckpt_tree *t = many_arrays(6);
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(pt_save(dir, t, &err), CKPT_OK, "%s", err.message);
  char *p = pt_fmt("%s/a04/.zarray", dir);
  cr_assert_eq(unlink(p), 0);
  free(p);
  int64_t shape[2] = {4, 3};
  ckpt_tree *target = ckpt_tree_new_dict();
  ckpt_tree_dict_set(target, "a01", ckpt_tree_new_array(pt_array(CKPT_DTYPE_FLOAT32, 2, shape, 99)),
                     &err);
  ckpt_tree_dict_set(target, "a03", ckpt_tree_new_array(pt_array(CKPT_DTYPE_FLOAT32, 2, shape, 99)),
                     &err);
  ckpt_pytree_restore_spec spec;
  memset(&spec, 0, sizeof spec);
  spec.target = target;
  spec.partial_restore = true;
  spec.transforms_default_to_original = true;
  ckpt_tree *back = NULL;
  cr_assert_eq(ckpt_pytree_restore_io(NULL, dir, &spec, &back, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(ckpt_tree_count(back), 2);
  cr_assert(ckpt_tree_equal(ckpt_tree_dict_get(back, "a03"), ckpt_tree_dict_get(t, "a03")));
  ckpt_tree_free(back);
  ckpt_tree_free(target);
  ckpt_tree_free(t);
  pt_rmtree(dir);
}
