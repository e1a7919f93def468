/* test_zarr3_restore.c — zarr v3 arrays through the PyTree save and restore paths: a
 * use_zarr3 save writes zarr.json with Orbax's chain and _METADATA "use_zarr3": true, and
 * restores exactly, resharded and partially, with casts, every dtype; missing chunks read as
 * the fill value only when store_array_data_equal_to_fill_value is false; a corrupted shard
 * index is an error naming the array and the chunk; hand-written zarr.json variants (transpose,
 * big-endian bytes, gzip, blosc, index at the start, v2 keys, "/" keys) restore. */
#include "test_pytree_util.h"

#include "storage/zarr.h"
#include "storage/zarr_io.h"

/* A short-lived path in one of a few static buffers (no free; valid for the next 7 calls). */
static char *tp(const char *fmt, ...) {
  static char ring[8][4096];
  static int next;
  char *b = ring[next++ % 8];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(b, sizeof ring[0], fmt, ap);
  va_end(ap);
  cr_assert(n > 0 && (size_t)n < sizeof ring[0]);
  return b;
}

Test(zarr3_restore, save_writes_orbax_layout) {
  char *dir = pt_tmpdir();
  ckpt_array *src = pt_save_grid(dir, 10, 7, 4, CKPT_COMPRESSION_DEFAULT, true);
  char *meta = pt_read(tp("%s/_METADATA", dir), NULL);
  cr_assert(strstr(meta, "\"use_zarr3\": true"), "%s", meta);
  cr_assert(!pt_exists(tp("%s/w/.zarray", dir)));
  size_t n = 0;
  char *zj = pt_read(tp("%s/w/zarr.json", dir), &n);
  cr_assert(strstr(zj, "\"sharding_indexed\""), "%s", zj);
  cr_assert(!strstr(zj, "index_location"), "the default (end) is left out: %s", zj);
  cr_assert(strstr(zj, "\"level\":3"), "Orbax's zstd level: %s", zj);
  cr_assert(strstr(zj, "\"crc32c\""), "%s", zj);
  cr_assert(strstr(zj, "\"zstd\""), "%s", zj);
  cr_assert(strstr(zj, "\"chunk_shape\":[4,7]"), "%s", zj);
  /* chunks c.0.0, c.1.0, c.2.0 (the last one padded) */
  for (int i = 0; i < 3; i++)
    cr_assert(pt_exists(tp("%s/w/c.%d.0", dir, i)), "chunk %d", i);
  /* every chunk file ends in its index: one (offset, nbytes) pair and a CRC-32C */
  ckpt_zarr_meta m;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_zarr3_meta_decode(zj, n, "zarr.json", &m, &err), CKPT_OK, "%s", err.message);
  size_t cn = 0;
  char *chunk = pt_read(tp("%s/w/c.1.0", dir), &cn);
  uint64_t *pairs = NULL, n_inner = 0;
  cr_assert_eq(ckpt_zarr3_shard_index(&m, chunk, cn, &pairs, &n_inner, "w", "c.1.0", &err), CKPT_OK,
               "%s", err.message);
  cr_assert_eq(n_inner, 1);
  cr_assert_eq(pairs[0], 0);
  cr_assert_eq(pairs[1], cn - 20);
  free(pairs);
  free(chunk);
  free(zj);
  free(meta);
  ckpt_tree *back = NULL;
  cr_assert_eq(pt_restore(dir, NULL, &back, &err), CKPT_OK, "%s", err.message);
  cr_assert(ckpt_array_equal(ckpt_tree_array(ckpt_tree_dict_get(back, "w")), src));
  ckpt_tree_free(back);
  ckpt_array_free(src);
  pt_rmtree(dir);
}

Test(zarr3_restore, reshard_across_chunk_boundaries) {
  for (int comp = 0; comp < 2; comp++) {
    char *dir = pt_tmpdir();
    ckpt_array *src =
        pt_save_grid(dir, 10, 7, 4, comp ? CKPT_COMPRESSION_ZSTD : CKPT_COMPRESSION_NONE, true);
    ckpt_error err = CKPT_ERROR_INIT;
    int64_t shape[2] = {10, 7};
    ckpt_array *tgt = NULL;
    cr_assert_eq(ckpt_array_new_sharded(CKPT_DTYPE_INT32, 2, shape, &tgt, &err), CKPT_OK);
    for (int64_t r = 0; r < 10; r += 3) {
      int64_t rows = r + 3 <= 10 ? 3 : 10 - r;
      int64_t o0[2] = {r, 0}, s0[2] = {rows, 3}, o1[2] = {r, 3}, s1[2] = {rows, 4};
      cr_assert_eq(ckpt_array_add_shard(tgt, o0, s0, NULL, 0, &err), CKPT_OK);
      cr_assert_eq(ckpt_array_add_shard(tgt, o1, s1, NULL, 0, &err), CKPT_OK);
    }
    ckpt_tree *target = ckpt_tree_new_dict();
    ckpt_tree_dict_set(target, "w", ckpt_tree_new_array(tgt), &err);
    ckpt_tree *back = NULL;
    cr_assert_eq(pt_restore(dir, target, &back, &err), CKPT_OK, "%s", err.message);
    const ckpt_array *b = ckpt_tree_array(ckpt_tree_dict_get(back, "w"));
    cr_assert_eq(b->n_shards, 8);
    pt_check_grid(b);
    ckpt_tree_free(back);
    ckpt_tree_free(target);
    ckpt_array_free(src);
    pt_rmtree(dir);
  }
}

Test(zarr3_restore, partial_restore_and_cast) {
  char *dir = pt_tmpdir();
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *t = ckpt_tree_new_dict();
  int64_t s1[1] = {9};
  ckpt_array *a = pt_array(CKPT_DTYPE_FLOAT32, 1, s1, 3), *b = pt_array(CKPT_DTYPE_INT16, 1, s1, 4);
  ckpt_tree_dict_set(t, "a", ckpt_tree_new_array(ckpt_array_clone(a)), &err);
  ckpt_tree_dict_set(t, "b", ckpt_tree_new_array(ckpt_array_clone(b)), &err);
  ckpt_pytree_save_spec spec;
  memset(&spec, 0, sizeof spec);
  spec.tree = t;
  spec.use_zarr3 = true;
  cr_assert_eq(ckpt_pytree_save_sync(NULL, false, dir, &spec, &err), CKPT_OK, "%s", err.message);
  /* only "b", as float64 */
  ckpt_tree *target = ckpt_tree_new_dict();
  ckpt_array *tb = NULL;
  cr_assert_eq(ckpt_array_new(CKPT_DTYPE_FLOAT64, 1, s1, &tb, &err), CKPT_OK);
  ckpt_tree_dict_set(target, "b", ckpt_tree_new_array(tb), &err);
  ckpt_pytree_restore_spec rs;
  memset(&rs, 0, sizeof rs);
  rs.target = target;
  rs.partial_restore = true;
  ckpt_tree *back = NULL;
  cr_assert_eq(ckpt_pytree_restore_io(NULL, dir, &rs, &back, &err), CKPT_OK, "%s", err.message);
  cr_assert_null(ckpt_tree_dict_get(back, "a"));
  const ckpt_array *rb = ckpt_tree_array(ckpt_tree_dict_get(back, "b"));
  cr_assert_eq(rb->dtype, CKPT_DTYPE_FLOAT64);
  const int16_t *want = ckpt_array_data(b);
  const double *got = ckpt_array_data(rb);
  for (int i = 0; i < 9; i++)
    cr_assert_eq(got[i], (double)want[i]);
  ckpt_tree_free(back);
  ckpt_tree_free(target);
  ckpt_tree_free(t);
  ckpt_array_free(a);
  ckpt_array_free(b);
  pt_rmtree(dir);
}

Test(zarr3_restore, every_dtype_round_trip) {
  char *dir = pt_tmpdir();
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *t = pt_every_dtype_tree(true);
  ckpt_pytree_save_spec spec;
  memset(&spec, 0, sizeof spec);
  spec.tree = t;
  spec.use_zarr3 = true;
  cr_assert_eq(ckpt_pytree_save_sync(NULL, false, dir, &spec, &err), CKPT_OK, "%s", err.message);
  ckpt_tree *back = NULL;
  cr_assert_eq(pt_restore(dir, NULL, &back, &err), CKPT_OK, "%s", err.message);
  for (int d = 0; d < CKPT_DTYPE_COUNT_; d++) {
    const char *name = ckpt_dtype_name((ckpt_dtype)d);
    const ckpt_tree *per = ckpt_tree_dict_get(t, name), *bper = ckpt_tree_dict_get(back, name);
    cr_assert_not_null(bper, "%s", name);
    const char *keys[] = {"r0", "r1", "r4"};
    for (int k = 0; k < 3; k++)
      cr_assert(ckpt_array_equal(ckpt_tree_array(ckpt_tree_dict_get(per, keys[k])),
                                 ckpt_tree_array(ckpt_tree_dict_get(bper, keys[k]))),
                "%s/%s", name, keys[k]);
  }
  ckpt_tree_free(back);
  ckpt_tree_free(t);
  pt_rmtree(dir);
}

/* Replaces the first occurrence of from by to in the text file at path. */
static void edit_file(const char *path, const char *from, const char *to) {
  size_t n = 0;
  char *s = pt_read(path, &n);
  char *at = strstr(s, from);
  cr_assert_not_null(at, "'%s' not in %s: %s", from, path, s);
  char *out = pt_fmt("%.*s%s%s", (int)(at - s), s, to, at + strlen(from));
  pt_write(path, out, strlen(out));
  free(out);
  free(s);
}

Test(zarr3_restore, missing_chunk_is_fill_or_error) {
  char *dir = pt_tmpdir();
  ckpt_array *src = pt_save_grid(dir, 10, 7, 4, CKPT_COMPRESSION_ZSTD, true);
  pt_forget_file_sums(dir);
  cr_assert_eq(unlink(tp("%s/w/c.1.0", dir)), 0);
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *back = NULL;
  /* ckpt's own _CHECKSUMS records the chunk as written: damage */
  cr_assert_neq(pt_restore(dir, NULL, &back, &err), CKPT_OK);
  cr_assert(strstr(err.message, "c.1.0"), "%s", err.message);
  cr_assert_eq(unlink(tp("%s/_CHECKSUMS", dir)), 0);
  /* store_array_data_equal_to_fill_value true (Orbax's and ckpt's): every chunk is stored */
  err = (ckpt_error)CKPT_ERROR_INIT;
  cr_assert_eq(pt_restore(dir, NULL, &back, &err), CKPT_EINCOMPLETE, "%s", err.message);
  cr_assert(strstr(err.message, "'w'") && strstr(err.message, "c.1.0"), "%s", err.message);
  /* false: the fill value, here a hand-set 5 */
  edit_file(tp("%s/_METADATA", dir), "\"store_array_data_equal_to_fill_value\": true",
            "\"store_array_data_equal_to_fill_value\": false");
  edit_file(tp("%s/w/zarr.json", dir), "\"fill_value\":0", "\"fill_value\":5");
  err = (ckpt_error)CKPT_ERROR_INIT;
  cr_assert_eq(pt_restore(dir, NULL, &back, &err), CKPT_OK, "%s", err.message);
  const int32_t *d = ckpt_array_data(ckpt_tree_array(ckpt_tree_dict_get(back, "w")));
  for (int r = 0; r < 10; r++)
    for (int c = 0; c < 7; c++)
      cr_assert_eq(d[r * 7 + c], r >= 4 && r < 8 ? 5 : r * 1000 + c, "(%d,%d)", r, c);
  ckpt_tree_free(back);
  ckpt_array_free(src);
  pt_rmtree(dir);
}

Test(zarr3_restore, corrupt_index_crc_names_array_and_chunk) {
  char *dir = pt_tmpdir();
  ckpt_array *src = pt_save_grid(dir, 10, 7, 4, CKPT_COMPRESSION_ZSTD, true);
  pt_forget_file_sums(dir);
  cr_assert_eq(unlink(tp("%s/_CHECKSUMS", dir)), 0); /* the shard's own CRC must catch it */
  char *path = tp("%s/w/c.2.0", dir);
  struct stat st;
  cr_assert_eq(stat(path, &st), 0);
  pt_flip(path, (long)st.st_size - 12); /* inside the index's nbytes */
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *back = NULL;
  cr_assert_eq(pt_restore(dir, NULL, &back, &err), CKPT_ECORRUPT, "%s", err.message);
  cr_assert(strstr(err.message, "'w'") && strstr(err.message, "c.2.0") &&
                strstr(err.message, "shard index") && strstr(err.message, "crc32c"),
            "%s", err.message);
  ckpt_array_free(src);
  pt_rmtree(dir);
}

Test(zarr3_restore, format_must_match_metadata) {
  char *dir = pt_tmpdir();
  ckpt_array *src = pt_save_grid(dir, 4, 3, 4, CKPT_COMPRESSION_ZSTD, true);
  pt_forget_file_sums(dir);
  unlink(tp("%s/_CHECKSUMS", dir));
  edit_file(tp("%s/_METADATA", dir), "\"use_zarr3\": true", "\"use_zarr3\": false");
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *back = NULL;
  cr_assert_eq(pt_restore(dir, NULL, &back, &err), CKPT_ECORRUPT, "%s", err.message);
  cr_assert(strstr(err.message, "zarr.json") && strstr(err.message, "use_zarr3"), "%s",
            err.message);
  ckpt_array_free(src);
  pt_rmtree(dir);
}

/* ---------------------------------------------------------------- hand-written arrays */

/* Writes an item {"x": array} by hand: _METADATA with use_zarr3, x/zarr.json, and chunks
 * encoded by ckpt's own encoder for that zarr.json (the codecs are checked against external
 * vectors in test_zarr3.c). data: the whole array, C order. */
static void write_item(const char *dir, const char *zarr_json, const void *data) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_zarr_meta m;
  cr_assert_eq(ckpt_zarr3_meta_decode(zarr_json, strlen(zarr_json), "zarr.json", &m, &err), CKPT_OK,
               "%s", err.message);
  char *meta = pt_fmt(
      "{\"tree_metadata\": {\"('x',)\": {\"key_metadata\": [{\"key\": \"x\", \"key_type\": 2}], "
      "\"value_metadata\": {\"value_type\": \"jax.Array\", \"skip_deserialize\": false}}}, "
      "\"use_zarr3\": true, \"store_array_data_equal_to_fill_value\": true}");
  pt_write(tp("%s/_METADATA", dir), meta, strlen(meta));
  free(meta);
  char *adir = pt_fmt("%s/x", dir);
  cr_assert_eq(mkdir(adir, 0777), 0);
  pt_write(tp("%s/zarr.json", adir), zarr_json, strlen(zarr_json));
  int64_t grid[CKPT_MAX_RANK], index[CKPT_MAX_RANK], off[CKPT_MAX_RANK], ext[CKPT_MAX_RANK];
  uint64_t n = ckpt_zarr_grid(&m, grid);
  size_t es = ckpt_dtype_size(m.dtype);
  uint64_t ce = ckpt_zarr_chunk_elements(&m);
  unsigned char *raw = calloc(ce, es);
  int64_t zero[CKPT_MAX_RANK] = {0};
  for (uint64_t k = 0; k < n; k++) {
    ckpt_zarr_chunk_index(&m, grid, k, index);
    ckpt_zarr_chunk_box(&m, index, off, ext);
    memset(raw, 0, ce * es);
    ckpt_box_copy(m.ndim, ext, raw, m.dtype, m.chunks, zero, data, m.dtype, m.shape, off);
    char key[CKPT_ZARR_KEY_MAX];
    ckpt_zarr_chunk_key(&m, index, key);
    void *enc = NULL;
    size_t en = 0;
    cr_assert_eq(ckpt_zarr3_encode_chunk(&m, raw, &enc, &en, "x", key, &err), CKPT_OK, "%s",
                 err.message);
    char *path = tp("%s/%s", adir, key);
    for (char *p = path + strlen(adir) + 1; *p; p++)
      if (*p == '/') {
        *p = '\0';
        mkdir(path, 0777);
        *p = '/';
      }
    pt_write(path, enc, en);
    free(enc);
  }
  free(raw);
  free(adir);
}

static void restore_and_compare(const char *dir, ckpt_dtype dt, int ndim, const int64_t *shape,
                                const void *data) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *back = NULL;
  cr_assert_eq(pt_restore(dir, NULL, &back, &err), CKPT_OK, "%s", err.message);
  const ckpt_array *a = ckpt_tree_array(ckpt_tree_dict_get(back, "x"));
  cr_assert_not_null(a);
  cr_assert_eq(a->dtype, dt);
  cr_assert_eq(a->ndim, ndim);
  for (int d = 0; d < ndim; d++)
    cr_assert_eq(a->shape[d], shape[d]);
  cr_assert_eq(memcmp(ckpt_array_data(a), data, ckpt_array_nbytes(a)), 0);
  ckpt_tree_free(back);
}

Test(zarr3_restore, hand_written_variants) {
  int32_t data[6 * 5];
  for (int i = 0; i < 30; i++)
    data[i] = i * 7 - 50;
  int64_t shape[2] = {6, 5};
  const char *variants[] = {
      /* transpose + big-endian bytes + gzip, "/" keys, partial edge chunks */
      "{\"zarr_format\":3,\"node_type\":\"array\",\"shape\":[6,5],\"data_type\":\"int32\","
      "\"chunk_grid\":{\"name\":\"regular\",\"configuration\":{\"chunk_shape\":[4,2]}},"
      "\"chunk_key_encoding\":{\"name\":\"default\"},\"fill_value\":0,"
      "\"codecs\":[{\"name\":\"transpose\",\"configuration\":{\"order\":[1,0]}},"
      "{\"name\":\"bytes\",\"configuration\":{\"endian\":\"big\"}},"
      "{\"name\":\"gzip\",\"configuration\":{\"level\":5}}],\"attributes\":{\"a\":1},"
      "\"dimension_names\":[\"r\",null]}",
      /* sharding with 2x1 inner chunks, index at the start, blosc inside, crc32c outside */
      "{\"zarr_format\":3,\"node_type\":\"array\",\"shape\":[6,5],\"data_type\":\"int32\","
      "\"chunk_grid\":{\"name\":\"regular\",\"configuration\":{\"chunk_shape\":[4,2]}},"
      "\"chunk_key_encoding\":{\"name\":\"v2\",\"configuration\":{\"separator\":\".\"}},"
      "\"fill_value\":-1,\"codecs\":[{\"name\":\"sharding_indexed\",\"configuration\":{"
      "\"chunk_shape\":[2,1],\"codecs\":[{\"name\":\"bytes\",\"configuration\":{\"endian\":"
      "\"little\"}},{\"name\":\"blosc\",\"configuration\":{\"cname\":\"lz4\",\"clevel\":5,"
      "\"shuffle\":\"shuffle\",\"typesize\":4,\"blocksize\":0}}],\"index_codecs\":[{\"name\":"
      "\"bytes\",\"configuration\":{\"endian\":\"little\"}},\"crc32c\"],\"index_location\":"
      "\"start\"}},\"crc32c\"]}",
      /* Orbax's chain with "/" keys (nested directories) */
      "{\"zarr_format\":3,\"node_type\":\"array\",\"shape\":[6,5],\"data_type\":\"int32\","
      "\"chunk_grid\":{\"name\":\"regular\",\"configuration\":{\"chunk_shape\":[3,5]}},"
      "\"chunk_key_encoding\":{\"name\":\"default\",\"configuration\":{\"separator\":\"/\"}},"
      "\"fill_value\":0,\"codecs\":[{\"name\":\"sharding_indexed\",\"configuration\":{"
      "\"chunk_shape\":[3,5],\"codecs\":[{\"name\":\"bytes\",\"configuration\":{\"endian\":"
      "\"little\"}},{\"name\":\"zstd\",\"configuration\":{\"level\":1,\"checksum\":false}}],"
      "\"index_codecs\":[{\"name\":\"bytes\",\"configuration\":{\"endian\":\"little\"}},"
      "{\"name\":\"crc32c\"}],\"index_location\":\"end\"}}]}",
  };
  for (size_t v = 0; v < sizeof variants / sizeof *variants; v++) {
    char *dir = pt_tmpdir();
    write_item(dir, variants[v], data);
    restore_and_compare(dir, CKPT_DTYPE_INT32, 2, shape, data);
    pt_rmtree(dir);
  }
}

/* ---------------------------------------------------------------- Orbax's zarr3 checkpoint */

#define ORBAX_FIXTURES CKPT_SOURCE_DIR "/../shared/orbax-fixtures"
#define ZARR3_FIXTURE ORBAX_FIXTURES "/v1_composite_zarr3"

static const int32_t WANT_A[8] = {0, 1, 2, 3, 4, 5, 6, 7}, WANT_BC[3] = {1, 2, 3};

static void expect_int32(const ckpt_tree *t, const char *path, size_t n, const int32_t *want) {
  const ckpt_array *a = ckpt_tree_array(ckpt_tree_get(t, path));
  cr_assert_not_null(a, "no array at %s", path);
  cr_assert_eq(a->dtype, CKPT_DTYPE_INT32);
  cr_assert(a->ndim == 1 && a->shape[0] == (int64_t)n, "%s", path);
  cr_assert_arr_eq(ckpt_array_data(a), want, n * sizeof *want, "%s", path);
}

Test(zarr3_restore, orbax_zarr3_in_ocdbt) {
  if (!pt_exists(ZARR3_FIXTURE "/state"))
    cr_skip_test("Orbax fixtures not found at %s: test skipped", ORBAX_FIXTURES);
  const char *item = ZARR3_FIXTURE "/state";
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *out = NULL;
  cr_assert_eq(ckpt_pytree_restore_io(NULL, item, NULL, &out, &err), CKPT_OK, "%s", err.message);
  expect_int32(out, "a", 8, WANT_A);
  expect_int32(out, "b.c", 3, WANT_BC);
  ckpt_tree_free(out);
  /* partial, resharded through the one stored shard, cast to float64 */
  int64_t shape[1] = {8}, o0[1] = {0}, s0[1] = {5}, o1[1] = {5}, s1[1] = {3};
  ckpt_array *tgt = NULL;
  cr_assert_eq(ckpt_array_new_sharded(CKPT_DTYPE_FLOAT64, 1, shape, &tgt, &err), CKPT_OK);
  cr_assert_eq(ckpt_array_add_shard(tgt, o0, s0, NULL, 0, &err), CKPT_OK);
  cr_assert_eq(ckpt_array_add_shard(tgt, o1, s1, NULL, 0, &err), CKPT_OK);
  ckpt_tree *target = ckpt_tree_new_dict();
  ckpt_tree_dict_set(target, "a", ckpt_tree_new_array(tgt), &err);
  ckpt_pytree_restore_spec spec;
  memset(&spec, 0, sizeof spec);
  spec.target = target;
  spec.partial_restore = true;
  cr_assert_eq(ckpt_pytree_restore_io(NULL, item, &spec, &out, &err), CKPT_OK, "%s", err.message);
  const ckpt_array *a = ckpt_tree_array(ckpt_tree_get(out, "a"));
  cr_assert_eq(a->n_shards, 2);
  const double *d0 = a->shards[0].data, *d1 = a->shards[1].data;
  for (int i = 0; i < 5; i++)
    cr_assert_eq(d0[i], (double)i);
  for (int i = 0; i < 3; i++)
    cr_assert_eq(d1[i], (double)(5 + i));
  cr_assert_null(ckpt_tree_get(out, "b"));
  ckpt_tree_free(out);
  ckpt_tree_free(target);
  uint64_t chunks = 0;
  cr_assert_eq(ckpt_pytree_verify(NULL, item, &chunks, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(chunks, 2);
}

/* ---------------------------------------------------------------- the public options */

Test(zarr3_restore, checkpointer_and_manager_use_zarr3) {
  char *root = pt_tmpdir();
  ckpt_error err = CKPT_ERROR_INIT;
  int64_t s2[2] = {5, 3};
  ckpt_array *w = pt_array(CKPT_DTYPE_FLOAT32, 2, s2, 11);
  /* an async checkpointer */
  ckpt_checkpointer_options o = CKPT_CHECKPOINTER_OPTIONS_INIT;
  o.async = true;
  o.use_zarr3 = true;
  ckpt_checkpointer *c = NULL;
  cr_assert_eq(ckpt_checkpointer_new(&ckpt_StandardCheckpointHandler_desc, &o, &c, &err), CKPT_OK,
               "%s", err.message);
  ckpt_tree *t = ckpt_tree_new_dict();
  ckpt_tree_dict_set(t, "w", ckpt_tree_new_array(ckpt_array_clone(w)), &err);
  ckpt_tree_dict_set(t, "step", ckpt_tree_new_int(CKPT_DTYPE_INT64, 42), &err);
  ckpt_StandardSave *sa = ckpt_StandardSave_new();
  sa->item = t;
  char *path = pt_fmt("%s/ck", root);
  cr_assert_eq(ckpt_checkpointer_save(c, path, &sa->base, false, NULL, &err), CKPT_OK, "%s",
               err.message);
  cr_assert_eq(ckpt_checkpointer_wait_until_finished(c, &err), CKPT_OK, "%s", err.message);
  cr_assert(pt_exists(tp("%s/w/zarr.json", path)));
  cr_assert(pt_exists(tp("%s/step/zarr.json", path)));
  cr_assert(!pt_exists(tp("%s/manifest.ocdbt", path)));
  ckpt_value v = {0};
  cr_assert_eq(ckpt_checkpointer_restore(c, path, NULL, &v, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(v.kind, CKPT_VALUE_TREE);
  cr_assert(ckpt_array_equal(ckpt_tree_array(ckpt_tree_get(v.u.tree, "w")), w));
  ckpt_value_free(&v);
  ckpt_args_delete(&sa->base);
  cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK, "%s", err.message);
  /* a manager */
  ckpt_manager_options mo = CKPT_MANAGER_OPTIONS_INIT;
  mo.use_zarr3 = true;
  ckpt_manager *m = NULL;
  char *mdir = pt_fmt("%s/run", root);
  cr_assert_eq(ckpt_manager_new(mdir, &mo, &m, &err), CKPT_OK, "%s", err.message);
  t = ckpt_tree_new_dict();
  ckpt_tree_dict_set(t, "w", ckpt_tree_new_array(ckpt_array_clone(w)), &err);
  sa = ckpt_StandardSave_new();
  sa->item = t;
  bool saved = false;
  cr_assert_eq(ckpt_manager_save(m, 3, &sa->base, NULL, false, &saved, &err), CKPT_OK, "%s",
               err.message);
  cr_assert(saved);
  cr_assert_eq(ckpt_manager_wait_until_finished(m, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(ckpt_manager_restore(m, 3, NULL, &v, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(v.kind, CKPT_VALUE_TREE);
  cr_assert(ckpt_array_equal(ckpt_tree_array(ckpt_tree_get(v.u.tree, "w")), w));
  ckpt_value_free(&v);
  ckpt_args_delete(&sa->base);
  cr_assert_eq(ckpt_manager_close(m, &err), CKPT_OK, "%s", err.message);
  cr_assert(pt_exists(tp("%s/3/default/w/zarr.json", mdir)), "manager step layout");
  ckpt_array_free(w);
  free(path);
  free(mdir);
  pt_rmtree(root);
}

/* ---------------------------------------------------------------- zarr v3 in OCDBT */

#include "storage/ocdbt/ocdbt.h"

Test(zarr3_restore, ocdbt_and_zarr3_round_trip) {
  char *dir = pt_tmpdir();
  ckpt_error err = CKPT_ERROR_INIT;
  int64_t shape[2] = {10, 7};
  ckpt_array *a = NULL;
  cr_assert_eq(ckpt_array_new(CKPT_DTYPE_INT32, 2, shape, &a, &err), CKPT_OK);
  int32_t *d = ckpt_array_data(a);
  for (int i = 0; i < 70; i++)
    d[i] = (i / 7) * 1000 + i % 7;
  ckpt_tree *t = ckpt_tree_new_dict();
  ckpt_tree_dict_set(t, "w", ckpt_tree_new_array(ckpt_array_clone(a)), &err);
  ckpt_pytree_leaf_save la;
  memset(&la, 0, sizeof la);
  la.param = "w";
  la.chunk_byte_size = 4 * 7 * 4;
  ckpt_pytree_save_spec spec;
  memset(&spec, 0, sizeof spec);
  spec.tree = t;
  spec.n_leaf_args = 1;
  spec.leaf_args = &la;
  spec.use_zarr3 = true;
  spec.use_ocdbt = true;
  cr_assert_eq(ckpt_pytree_save_sync(NULL, false, dir, &spec, &err), CKPT_OK, "%s", err.message);
  char *meta = pt_read(tp("%s/_METADATA", dir), NULL);
  cr_assert(strstr(meta, "\"use_ocdbt\": true") && strstr(meta, "\"use_zarr3\": true"), "%s", meta);
  free(meta);
  cr_assert(!pt_exists(tp("%s/w", dir)), "no array directory: the arrays are in OCDBT");
  /* Orbax's keys: <param>/zarr.json and c/<i>/<j> */
  ckpt_ocdbt *db = NULL;
  cr_assert_eq(ckpt_ocdbt_open(NULL, dir, &db, &err), CKPT_OK, "%s", err.message);
  size_t idx;
  cr_assert(ckpt_ocdbt_find(db, "w/zarr.json", &idx));
  cr_assert(ckpt_ocdbt_find(db, "w/c/2/0", &idx));
  cr_assert(!ckpt_ocdbt_find(db, "w/.zarray", &idx));
  void *zj = NULL;
  size_t zn = 0;
  cr_assert_eq(ckpt_ocdbt_read_key(db, "w/zarr.json", 1 << 16, &zj, &zn, &err), CKPT_OK, "%s",
               err.message);
  char *text = strndup(zj, zn);
  /* Orbax's text: default keys without a separator, zstd level 3 */
  cr_assert(strstr(text, "\"chunk_key_encoding\":{\"name\":\"default\"}") &&
                strstr(text, "\"level\":3"),
            "%s", text);
  free(text);
  free(zj);
  ckpt_ocdbt_close(db);
  /* restored resharded: rows cut through the 4-row chunks */
  ckpt_array *tgt = NULL;
  cr_assert_eq(ckpt_array_new_sharded(CKPT_DTYPE_INT32, 2, shape, &tgt, &err), CKPT_OK);
  int64_t o0[2] = {0, 0}, s0[2] = {5, 7}, o1[2] = {5, 0}, s1[2] = {5, 7};
  cr_assert_eq(ckpt_array_add_shard(tgt, o0, s0, NULL, 0, &err), CKPT_OK);
  cr_assert_eq(ckpt_array_add_shard(tgt, o1, s1, NULL, 0, &err), CKPT_OK);
  ckpt_tree *target = ckpt_tree_new_dict();
  ckpt_tree_dict_set(target, "w", ckpt_tree_new_array(tgt), &err);
  ckpt_tree *back = NULL;
  cr_assert_eq(pt_restore(dir, target, &back, &err), CKPT_OK, "%s", err.message);
  pt_check_grid(ckpt_tree_array(ckpt_tree_dict_get(back, "w")));
  ckpt_tree_free(back);
  ckpt_tree_free(target);
  uint64_t chunks = 0;
  cr_assert_eq(ckpt_pytree_verify(NULL, dir, &chunks, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(chunks, 3);
  ckpt_tree_free(t);
  ckpt_array_free(a);
  pt_rmtree(dir);
}
