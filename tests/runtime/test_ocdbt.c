/* test_ocdbt.c — the OCDBT reader (storage/ocdbt/ocdbt.h): databases built byte by byte here
 * (ocdbt_build.h) — inline and indirect values, zstd and stored nodes, interior nodes with
 * subtree prefixes and base paths, numbered manifests, version tree nodes — and damaged ones
 * (truncated, bad CRC, bad magic, key prefix overflow, ranges past the end of a file, missing
 * files, unsafe paths), each an error naming the file; then Orbax's own checkpoints
 * (../shared/orbax-fixtures, skipped when absent). */
#include <errno.h>

#include "test_pytree_util.h"

#include "ocdbt_build.h"
#include "storage/ocdbt/ocdbt.h"

static ckpt_ocdbt *open_ok(const char *dir) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_ocdbt *db = NULL;
  cr_assert_eq(ckpt_ocdbt_open(NULL, dir, &db, &err), CKPT_OK, "%s", err.message);
  cr_assert_not_null(db);
  return db;
}

/* Opening dir fails with code and a message containing want (and want2 when not NULL). */
static void open_fails(const char *dir, ckpt_status code, const char *want, const char *want2) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_ocdbt *db = NULL;
  cr_assert_eq(ckpt_ocdbt_open(NULL, dir, &db, &err), code, "%s: %s", ckpt_status_name(err.code),
               err.message);
  cr_assert_null(db);
  cr_assert(strstr(err.message, want), "'%s' not in: %s", want, err.message);
  if (want2)
    cr_assert(strstr(err.message, want2), "'%s' not in: %s", want2, err.message);
}

static char *value_of(ckpt_ocdbt *db, const char *key) {
  void *data = NULL;
  size_t n = 0;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_ocdbt_read_key(db, key, 1 << 20, &data, &n, &err), CKPT_OK, "%s", err.message);
  return data;
}

#define INLINE UINT32_MAX
#define INDIRECT 0u

static void simple_db(const char *dir, bool zstd) {
  ob_kv kv[] = {
      {"a/.zarray", "{zarray a}", 10, INLINE, 0},
      {"a/0", "chunk a0 bytes", 14, INDIRECT, 0},
      {"a/1", "", 0, INLINE, 0},
      {"b.c/.zarray", "{zarray bc}", 11, INDIRECT, 0},
      {"b.c/0", "bc0", 3, INLINE, 0},
  };
  ob_simple_db(dir, 5, kv, zstd);
}

Test(ocdbt, leaf_with_inline_and_indirect_values) {
  for (int zstd = 0; zstd < 2; zstd++) {
    char *dir = pt_tmpdir();
    simple_db(dir, zstd);
    ckpt_ocdbt *db = open_ok(dir);
    cr_assert_eq(ckpt_ocdbt_generation(db), 1);
    const char *want[] = {"a/.zarray", "a/0", "a/1", "b.c/.zarray", "b.c/0"};
    cr_assert_eq(ckpt_ocdbt_count(db), 5);
    for (size_t i = 0; i < 5; i++)
      cr_assert_str_eq(ckpt_ocdbt_key(db, i, NULL), want[i]);
    cr_assert(ckpt_ocdbt_value_at(db, 0)->is_inline);
    cr_assert(!ckpt_ocdbt_value_at(db, 1)->is_inline);
    char *v = value_of(db, "a/0");
    cr_assert_str_eq(v, "chunk a0 bytes");
    free(v);
    v = value_of(db, "b.c/.zarray");
    cr_assert_str_eq(v, "{zarray bc}");
    free(v);
    v = value_of(db, "a/1");
    cr_assert_str_eq(v, "");
    free(v);
    size_t i;
    cr_assert(ckpt_ocdbt_find(db, "b.c/0", &i) && i == 4);
    cr_assert(!ckpt_ocdbt_find(db, "b.c", &i));
    cr_assert(!ckpt_ocdbt_find(db, "a/00", &i));
    size_t b, e;
    ckpt_ocdbt_prefix_range(db, "a/", &b, &e);
    cr_assert(b == 0 && e == 3, "%zu %zu", b, e);
    ckpt_ocdbt_prefix_range(db, "b.c/", &b, &e);
    cr_assert(b == 3 && e == 5);
    ckpt_ocdbt_prefix_range(db, "c", &b, &e);
    cr_assert_eq(b, e);
    cr_assert_eq(ckpt_ocdbt_n_files(db), 1);
    char *data = pt_fmt("%s/d/data", dir);
    cr_assert_str_eq(ckpt_ocdbt_file_path(db, 0), data);
    free(data);
    ckpt_error err = CKPT_ERROR_INIT;
    void *p;
    size_t n;
    cr_assert_eq(ckpt_ocdbt_read_key(db, "nope", 100, &p, &n, &err), CKPT_ENOENT);
    cr_assert(strstr(err.message, "'nope'") && strstr(err.message, dir), "%s", err.message);
    ckpt_ocdbt_close(db);
    pt_rmtree(dir);
  }
}

/* A root of height 1 over two leaves: keys below an interior entry are relative to its subtree
 * common prefix, and the second leaf is reached through base path "sub/", which then prefixes
 * the paths of its own data-file table (transitive paths). */
Test(ocdbt, interior_node_prefixes_and_transitive_paths) {
  char *dir = pt_tmpdir();
  char *sub = pt_fmt("%s/sub", dir);
  cr_assert_eq(mkdir(sub, 0755), 0);
  /* leaf 1 in d/one: keys "a/" + {".zarray", "0"} */
  ob_kv k1[] = {{".zarray", "za", 2, INLINE, 0}, {"0", "a-zero", 6, INLINE, 0}};
  ob_buf n1 = {0}, f1 = {0};
  ob_leaf_body(&n1, 0, NULL, NULL, 2, k1);
  ob_envelope(&f1, CKPT_OCDBT_BTREE_NODE_MAGIC, &n1, true);
  ob_write(dir, "d/one", f1.p, f1.n);
  /* leaf 2 in sub/d/two: keys "b.c/" + {".zarray", "0"}, "0" stored in its table's "d/vals",
   * which is sub/d/vals from the database's root */
  ob_buf vals = {0};
  ob_put(&vals, "xxxxBC-ZERO", 11);
  ob_write(sub, "d/vals", vals.p, vals.n);
  const char *t2[] = {"d/vals"};
  ob_kv k2[] = {{".zarray", "zbc", 3, INLINE, 0}, {"0", NULL, 7, 0, 4}};
  ob_buf n2 = {0}, f2 = {0};
  ob_leaf_body(&n2, 1, t2, NULL, 2, k2);
  ob_envelope(&f2, CKPT_OCDBT_BTREE_NODE_MAGIC, &n2, false);
  ob_write(sub, "d/two", f2.p, f2.n);
  /* the root in d/root: its table names d/one and sub/d/two (base path "sub/") */
  const char *tr[] = {"d/one", "sub/d/two"};
  size_t base[] = {0, 4};
  const char *keys[] = {"a/.zarray", "b.c/.zarray"};
  size_t scpl[] = {2, 4};
  ob_ref refs[] = {{0, 0, f1.n}, {1, 0, f2.n}};
  ob_buf nr = {0}, fr = {0}, man = {0};
  ob_interior_body(&nr, 1, 2, tr, base, 2, keys, scpl, refs);
  ob_envelope(&fr, CKPT_OCDBT_BTREE_NODE_MAGIC, &nr, true);
  ob_write(dir, "d/root", fr.p, fr.n);
  const char *tm[] = {"d/root"};
  ob_manifest(&man, 1, tm, 3, 1, (ob_ref){0, 0, fr.n}, true);
  ob_write(dir, CKPT_OCDBT_MANIFEST_FILE, man.p, man.n);

  ckpt_ocdbt *db = open_ok(dir);
  cr_assert_eq(ckpt_ocdbt_generation(db), 3);
  const char *want[] = {"a/.zarray", "a/0", "b.c/.zarray", "b.c/0"};
  cr_assert_eq(ckpt_ocdbt_count(db), 4);
  for (size_t i = 0; i < 4; i++)
    cr_assert_str_eq(ckpt_ocdbt_key(db, i, NULL), want[i]);
  char *v = value_of(db, "b.c/0");
  cr_assert_str_eq(v, "BC-ZERO");
  free(v);
  v = value_of(db, "a/0");
  cr_assert_str_eq(v, "a-zero");
  free(v);
  size_t i;
  cr_assert(ckpt_ocdbt_find(db, "b.c/0", &i));
  char *path = pt_fmt("%s/sub/d/vals", dir);
  cr_assert_str_eq(ckpt_ocdbt_file_path(db, ckpt_ocdbt_value_at(db, i)->file), path);
  free(path);
  ckpt_ocdbt_close(db);

  /* the interior node's height must match the manifest's root height */
  ob_buf bad = {0};
  ob_manifest(&bad, 1, tm, 3, 2, (ob_ref){0, 0, fr.n}, false);
  ob_write(dir, CKPT_OCDBT_MANIFEST_FILE, bad.p, bad.n);
  open_fails(dir, CKPT_ECORRUPT, "d/root': B+tree node at offset 0", "height 1, expected 2");
  ob_free(&bad);
  /* a subtree common prefix longer than its key */
  ob_buf nr2 = {0}, fr2 = {0};
  size_t scpl_bad[] = {2, 40};
  ob_interior_body(&nr2, 1, 2, tr, base, 2, keys, scpl_bad, refs);
  ob_envelope(&fr2, CKPT_OCDBT_BTREE_NODE_MAGIC, &nr2, false);
  ob_write(dir, "d/root", fr2.p, fr2.n);
  ob_manifest(&bad, 1, tm, 3, 1, (ob_ref){0, 0, fr2.n}, false);
  ob_write(dir, CKPT_OCDBT_MANIFEST_FILE, bad.p, bad.n);
  open_fails(dir, CKPT_ECORRUPT, "subtree common prefix length 40 exceeds", "d/root'");
  ob_free(&bad);
  ob_free(&nr2);
  ob_free(&fr2);
  /* both children the same node: refused (shared nodes would let a crafted tree cost
   * exponentially many reads) */
  ob_buf nr3 = {0}, fr3 = {0};
  const char *same[] = {"d/one", "d/one"};
  ob_ref twice[] = {{0, 0, f1.n}, {0, 0, f1.n}};
  size_t scpl3[] = {2, 2};
  const char *keys3[] = {"a/.zarray", "a/0"};
  ob_interior_body(&nr3, 1, 1, same, NULL, 2, keys3, scpl3, twice);
  ob_envelope(&fr3, CKPT_OCDBT_BTREE_NODE_MAGIC, &nr3, false);
  ob_write(dir, "d/root", fr3.p, fr3.n);
  ob_manifest(&bad, 1, tm, 3, 1, (ob_ref){0, 0, fr3.n}, false);
  ob_write(dir, CKPT_OCDBT_MANIFEST_FILE, bad.p, bad.n);
  open_fails(dir, CKPT_ECORRUPT, "d/one': B+tree node at offset 0", "referenced twice");
  ob_free(&bad);
  ob_free(&nr3);
  ob_free(&fr3);

  ob_free(&n1);
  ob_free(&f1);
  ob_free(&n2);
  ob_free(&f2);
  ob_free(&nr);
  ob_free(&fr);
  ob_free(&man);
  ob_free(&vals);
  free(sub);
  pt_rmtree(dir);
}

/* A root over 150 leaves (more than one batch of a level; the leaves are read in parallel): every
 * key, in order, with its value; and a damaged leaf in the middle is the error reported, naming
 * its offset. */
Test(ocdbt, wide_level) {
  char *dir = pt_tmpdir();
  enum { N = 150 };
  ob_buf data = {0}, root = {0}, man = {0};
  char *keys[N];
  size_t scpl[N];
  ob_ref refs[N];
  for (int i = 0; i < N; i++) {
    char value[16];
    snprintf(value, sizeof value, "v%03d", i);
    ob_kv kv[] = {{"", value, strlen(value), INLINE, 0}};
    ob_buf leaf = {0};
    ob_leaf_body(&leaf, 0, NULL, NULL, 1, kv);
    refs[i] = (ob_ref){0, data.n, 0};
    ob_envelope(&data, CKPT_OCDBT_BTREE_NODE_MAGIC, &leaf, i % 2);
    refs[i].length = data.n - refs[i].offset;
    ob_free(&leaf);
    keys[i] = pt_fmt("k%03d", i);
    scpl[i] = 4; /* the whole key: each leaf's one relative key is "" */
  }
  ob_interior_body(&root, 1, 1, (const char *[]){"d/data"}, NULL, N, (const char *const *)keys,
                   scpl, refs);
  size_t root_at = data.n;
  ob_envelope(&data, CKPT_OCDBT_BTREE_NODE_MAGIC, &root, true);
  ob_write(dir, "d/data", data.p, data.n);
  const char *files[] = {"d/data"};
  ob_manifest(&man, 1, files, 1, 1, (ob_ref){0, root_at, data.n - root_at}, false);
  ob_write(dir, CKPT_OCDBT_MANIFEST_FILE, man.p, man.n);
  ckpt_ocdbt *db = open_ok(dir);
  cr_assert_eq(ckpt_ocdbt_count(db), N);
  for (int i = 0; i < N; i++) {
    cr_assert_str_eq(ckpt_ocdbt_key(db, (size_t)i, NULL), keys[i]);
    char *v = value_of(db, keys[i]);
    char want[16];
    snprintf(want, sizeof want, "v%03d", i);
    cr_assert_str_eq(v, want);
    free(v);
  }
  ckpt_ocdbt_close(db);
  /* leaves 70 and 100 damaged: the report names 70, whatever thread got there first */
  char *dp = pt_fmt("%s/d/data", dir);
  pt_flip(dp, (long)(refs[100].offset + refs[100].length - 6));
  pt_flip(dp, (long)(refs[70].offset + refs[70].length - 6));
  char at[64];
  snprintf(at, sizeof at, "B+tree node at offset %llu:", (unsigned long long)refs[70].offset);
  open_fails(dir, CKPT_ECORRUPT, at, "CRC-32C mismatch");
  free(dp);
  for (int i = 0; i < N; i++)
    free(keys[i]);
  ob_free(&data);
  ob_free(&root);
  ob_free(&man);
  pt_rmtree(dir);
}

/* Writes a one-leaf B+tree holding {key: value} to dir/<file> and returns its reference. */
static ob_ref leaf_file(const char *dir, const char *file, const char *key, const char *value) {
  ob_kv kv[] = {{key, value, strlen(value), INLINE, 0}};
  ob_buf n = {0}, f = {0};
  ob_leaf_body(&n, 0, NULL, NULL, 1, kv);
  ob_envelope(&f, CKPT_OCDBT_BTREE_NODE_MAGIC, &n, false);
  ob_write(dir, file, f.p, f.n);
  ob_ref r = {0, 0, f.n};
  ob_free(&n);
  ob_free(&f);
  return r;
}

/* manifest_kind numbered: manifest.ocdbt holds the configuration only; the version tree is in
 * manifest.<16 hex digits>, the highest of which is the latest. */
Test(ocdbt, numbered_manifests) {
  char *dir = pt_tmpdir();
  ob_buf cfg = {0}, man = {0};
  ob_config(&cfg, CKPT_OCDBT_MANIFEST_KIND_NUMBERED, 4);
  ob_envelope(&man, CKPT_OCDBT_MANIFEST_MAGIC, &cfg, false);
  ob_write(dir, CKPT_OCDBT_MANIFEST_FILE, man.p, man.n);
  /* without numbered manifests: a clear error */
  open_fails(dir, CKPT_EINCOMPLETE, "numbered manifests", CKPT_OCDBT_MANIFEST_FILE);
  const char *files[] = {"d/old", "d/new"};
  ob_ref r_old = leaf_file(dir, "d/old", "k", "old"), r_new = leaf_file(dir, "d/new", "k", "new");
  r_new.file = 1;
  for (int which = 0; which < 2; which++) {
    ob_buf m = {0};
    ob_manifest(&m, 2, files, which ? 0x11 : 0x2, 0, which ? r_new : r_old, which);
    ob_write(dir, which ? "manifest.0000000000000011" : "manifest.0000000000000002", m.p, m.n);
    ob_free(&m);
  }
  ob_write(dir, CKPT_OCDBT_LOCK_FILE, "", 0);
  ob_write(dir, "manifest.zzzzzzzzzzzzzzzz", "junk", 4); /* not hex: ignored */
  ckpt_ocdbt *db = open_ok(dir);
  cr_assert_eq(ckpt_ocdbt_generation(db), 0x11);
  char *v = value_of(db, "k");
  cr_assert_str_eq(v, "new");
  free(v);
  ckpt_ocdbt_close(db);
  /* the latest numbered manifest damaged: reported, not skipped for an older one */
  char *latest = pt_fmt("%s/manifest.0000000000000011", dir);
  pt_flip(latest, 20);
  open_fails(dir, CKPT_ECORRUPT, "manifest.0000000000000011", "CRC-32C");
  free(latest);
  ob_free(&cfg);
  ob_free(&man);
  pt_rmtree(dir);
}

/* A manifest whose versions are all behind version tree nodes (version_nodes): the reader
 * descends interior → leaf version node to the latest root. */
Test(ocdbt, version_tree_nodes) {
  char *dir = pt_tmpdir();
  ob_ref root = leaf_file(dir, "d/tree", "key", "value-17");
  /* leaf version node (height 0): generations 31 and 32 (arity log2 4: a leaf holds
   * generations 17..32, so two are allowed) */
  const char *vfiles[] = {"d/tree"};
  uint64_t gens[] = {31, 32};
  uint8_t heights[] = {0, 0};
  ob_ref roots[] = {root, root};
  ob_buf leafv = {0}, leafv_env = {0};
  ob_u8(&leafv, 4); /* arity log2 */
  ob_u8(&leafv, 0); /* height */
  ob_file_table(&leafv, 1, vfiles, NULL);
  ob_versions(&leafv, 2, gens, heights, roots);
  ob_envelope(&leafv_env, CKPT_OCDBT_VERSION_NODE_MAGIC, &leafv, true);
  ob_write(dir, "d/vleaf", leafv_env.p, leafv_env.n);
  /* interior version node (height 1) with that leaf as its only child */
  const char *ifiles[] = {"d/vleaf"};
  uint64_t igen[] = {32};
  ob_ref iref[] = {{0, 0, leafv_env.n}};
  ob_buf inner = {0}, inner_env = {0};
  ob_u8(&inner, 4);
  ob_u8(&inner, 1);
  ob_file_table(&inner, 1, ifiles, NULL);
  ob_version_refs(&inner, 1, igen, iref, NULL);
  ob_envelope(&inner_env, CKPT_OCDBT_VERSION_NODE_MAGIC, &inner, false);
  ob_write(dir, "d/vinner", inner_env.p, inner_env.n);
  /* manifest: no inline versions, one version node: the interior node above (height 1) */
  const char *mfiles[] = {"d/vinner"};
  uint8_t mh[] = {1};
  ob_ref mref[] = {{0, 0, inner_env.n}};
  ob_buf body = {0}, man = {0};
  ob_config(&body, CKPT_OCDBT_MANIFEST_KIND_SINGLE, 4);
  ob_file_table(&body, 1, mfiles, NULL);
  ob_versions(&body, 0, NULL, NULL, NULL);
  ob_version_refs(&body, 1, igen, mref, mh);
  ob_envelope(&man, CKPT_OCDBT_MANIFEST_MAGIC, &body, false);
  ob_write(dir, CKPT_OCDBT_MANIFEST_FILE, man.p, man.n);
  ckpt_ocdbt *db = open_ok(dir);
  cr_assert_eq(ckpt_ocdbt_generation(db), 32);
  char *v = value_of(db, "key");
  cr_assert_str_eq(v, "value-17");
  free(v);
  ckpt_ocdbt_close(db);
  /* the version node's arity must match the manifest's */
  inner.p[0] = 5;
  ob_buf env2 = {0};
  ob_envelope(&env2, CKPT_OCDBT_VERSION_NODE_MAGIC, &inner, false);
  ob_write(dir, "d/vinner", env2.p, env2.n);
  open_fails(dir, CKPT_ECORRUPT, "d/vinner': version tree node at offset 0", "arity");
  ob_free(&env2);
  ob_free(&leafv);
  ob_free(&leafv_env);
  ob_free(&inner);
  ob_free(&inner_env);
  ob_free(&body);
  ob_free(&man);
  pt_rmtree(dir);
}

/* ---------------------------------------------------------------- damage */

static char *manifest_path(const char *dir) {
  return pt_fmt("%s/%s", dir, CKPT_OCDBT_MANIFEST_FILE);
}

Test(ocdbt, missing_or_truncated_manifest) {
  char *dir = pt_tmpdir();
  open_fails(dir, CKPT_EINCOMPLETE, "manifest.ocdbt' is missing", dir);
  simple_db(dir, true);
  char *mp = manifest_path(dir);
  size_t n;
  char *m = pt_read(mp, &n);
  pt_write(mp, m, n - 5);
  open_fails(dir, CKPT_ECORRUPT, mp, "truncated");
  pt_write(mp, m, 10);
  open_fails(dir, CKPT_ECORRUPT, mp, "too short");
  free(m);
  free(mp);
  pt_rmtree(dir);
}

Test(ocdbt, bad_crc_and_bad_magic) {
  char *dir = pt_tmpdir();
  simple_db(dir, false);
  char *mp = manifest_path(dir), *dp = pt_fmt("%s/d/data", dir);
  size_t n;
  char *m = pt_read(mp, &n);
  pt_flip(mp, (long)n / 2);
  open_fails(dir, CKPT_ECORRUPT, mp, "CRC-32C mismatch");
  pt_write(mp, m, n);
  pt_flip(mp, 1);
  open_fails(dir, CKPT_ECORRUPT, mp, "bad magic");
  pt_write(mp, m, n);
  /* a B+tree node: its CRC, and its magic */
  size_t dn;
  char *d = pt_read(dp, &dn);
  pt_flip(dp, (long)dn - 10);
  open_fails(dir, CKPT_ECORRUPT, "d/data': B+tree node at offset", "CRC-32C mismatch");
  pt_write(dp, d, dn);
  ckpt_ocdbt_close(open_ok(dir));
  free(d);
  free(m);
  free(mp);
  free(dp);
  pt_rmtree(dir);
}

Test(ocdbt, key_prefix_longer_than_previous_key) {
  char *dir = pt_tmpdir();
  ob_buf body = {0};
  ob_u8(&body, 0);     /* height */
  ob_varint(&body, 0); /* no data files */
  ob_varint(&body, 2); /* entries */
  ob_varint(&body, 9); /* prefix of key 1: the previous key has 4 bytes */
  ob_varint(&body, 4);
  ob_varint(&body, 1);
  ob_put(&body, "abcde", 5);
  ob_varint(&body, 1);
  ob_varint(&body, 1);
  ob_varint(&body, 0);
  ob_varint(&body, 0);
  ob_put(&body, "xy", 2);
  ob_root_node_db(dir, "d/data", &body, false);
  open_fails(dir, CKPT_ECORRUPT, "d/data': B+tree node at offset 0",
             "key prefix length 9 exceeds previous key length 4");
  ob_free(&body);
  pt_rmtree(dir);
}

Test(ocdbt, ranges_past_the_end_of_a_file) {
  char *dir = pt_tmpdir();
  simple_db(dir, false);
  /* the B+tree root past the end: the manifest names a length the data file does not have */
  char *dp = pt_fmt("%s/d/data", dir);
  size_t dn;
  char *d = pt_read(dp, &dn);
  pt_write(dp, d, dn - 1);
  open_fails(dir, CKPT_ECORRUPT, "d/data': the B+tree node at offset", "past the end");
  free(d);
  /* a value past the end: the tree reads (values are checked when read), the read fails */
  const char *files[] = {"d/data"};
  ob_kv far[] = {{"big", NULL, 10, 0, 100000}};
  ob_buf leaf = {0};
  ob_leaf_body(&leaf, 1, files, NULL, 1, far);
  ob_root_node_db(dir, "d/data", &leaf, false);
  ckpt_ocdbt *db = open_ok(dir);
  char buf[16];
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_ocdbt_read(db, 0, buf, &err), CKPT_ECORRUPT);
  cr_assert(strstr(err.message, dp) && strstr(err.message, "'big'") &&
                strstr(err.message, "offset 100000") && strstr(err.message, "past the end"),
            "%s", err.message);
  ckpt_ocdbt_close(db);
  ob_free(&leaf);
  free(dp);
  pt_rmtree(dir);
}

Test(ocdbt, missing_data_file_and_unsafe_paths) {
  char *dir = pt_tmpdir();
  simple_db(dir, false);
  char *dp = pt_fmt("%s/d/data", dir);
  cr_assert_eq(unlink(dp), 0);
  open_fails(dir, CKPT_EINCOMPLETE, dp, "missing");
  char *dd = pt_fmt("%s/d", dir);
  cr_assert_eq(rmdir(dd), 0);
  open_fails(dir, CKPT_EINCOMPLETE, dd, "missing");
  /* a symlinked data directory is not followed */
  char *elsewhere = pt_tmpdir();
  simple_db(elsewhere, false);
  char *target = pt_fmt("%s/d", elsewhere);
  cr_assert_eq(symlink(target, dd), 0);
  open_fails(dir, CKPT_EUNSAFE, dd, "not a directory");
  /* paths leaving the database */
  const char *bad[] = {"../x", "/etc/passwd", "d/../../x", "d//x", "./d"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    ob_buf man = {0};
    ob_manifest(&man, 1, &bad[i], 1, 0, (ob_ref){0, 0, 30}, false);
    ob_write(dir, CKPT_OCDBT_MANIFEST_FILE, man.p, man.n);
    open_fails(dir, CKPT_EUNSAFE, "is not a plain relative path", bad[i]);
    ob_free(&man);
  }
  free(target);
  pt_rmtree(elsewhere);
  free(dd);
  free(dp);
  pt_rmtree(dir);
}

/* The tree reads but a value's data file is gone: reading that value is CKPT_EINCOMPLETE naming
 * the file and the key; the other values still read. */
Test(ocdbt, missing_value_file) {
  char *dir = pt_tmpdir();
  ob_buf vals = {0}, leaf = {0};
  ob_put(&vals, "VALUE", 5);
  ob_write(dir, "d/vals", vals.p, vals.n);
  const char *lt[] = {"d/vals"};
  ob_kv kv[] = {{"in", "x", 1, INLINE, 0}, {"out", NULL, 5, 0, 0}};
  ob_leaf_body(&leaf, 1, lt, NULL, 2, kv);
  ob_root_node_db(dir, "d/node", &leaf, true);
  char *vp = pt_fmt("%s/d/vals", dir);
  cr_assert_eq(unlink(vp), 0);
  ckpt_ocdbt *db = open_ok(dir);
  char buf[8];
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_ocdbt_read(db, 1, buf, &err), CKPT_EINCOMPLETE);
  cr_assert(
      strstr(err.message, vp) && strstr(err.message, "'out'") && strstr(err.message, "missing"),
      "%s", err.message);
  char *v = value_of(db, "in");
  cr_assert_str_eq(v, "x");
  free(v);
  ckpt_ocdbt_close(db);
  free(vp);
  ob_free(&vals);
  ob_free(&leaf);
  pt_rmtree(dir);
}

Test(ocdbt, duplicate_keys_and_trailing_bytes) {
  char *dir = pt_tmpdir();
  ob_kv kv[] = {{"k", "1", 1, INLINE, 0}, {"k", "2", 1, INLINE, 0}};
  ob_simple_db(dir, 2, kv, false);
  open_fails(dir, CKPT_ECORRUPT, "key 'k' appears twice", dir);
  /* a leaf node with a byte after its last entry */
  ob_buf leaf = {0};
  ob_leaf_body(&leaf, 0, NULL, NULL, 1, kv);
  ob_u8(&leaf, 0);
  ob_root_node_db(dir, "d/data", &leaf, false);
  open_fails(dir, CKPT_ECORRUPT, "d/data': B+tree node at offset 0",
             "1 unexpected bytes after the last entry");
  ob_free(&leaf);
  pt_rmtree(dir);
}

/* Faults from the I/O layer (ckpt/io.h) reach the caller with their kind. */
static int fail_reads(void *arg, ckpt_io_op op, const char *path) {
  (void)arg;
  return op == CKPT_IO_READ && strstr(path, "/d/") ? EIO : 0;
}

Test(ocdbt, io_faults_are_reported) {
  char *dir = pt_tmpdir();
  simple_db(dir, true);
  ckpt_io *io = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_io_new(&io, &err), CKPT_OK);
  ckpt_io_set_fault(io, fail_reads, NULL);
  ckpt_ocdbt *db = NULL;
  cr_assert_eq(ckpt_ocdbt_open(io, dir, &db, &err), CKPT_EIO, "%s", err.message);
  cr_assert(strstr(err.message, "d/data"), "%s", err.message);
  cr_assert_null(db);
  ckpt_io_free(io);
  pt_rmtree(dir);
}

/* Arbitrary bytes as a manifest (what the fuzz target does): an error or a database, never a
 * crash; here every truncation and every single-bit flip of a real manifest. */
Test(ocdbt, every_truncation_and_bit_flip_of_a_manifest) {
  char *dir = pt_tmpdir();
  simple_db(dir, false);
  char *mp = manifest_path(dir);
  size_t n;
  char *m = pt_read(mp, &n);
  for (size_t len = 0; len < n; len++) {
    ckpt_error err = CKPT_ERROR_INIT;
    ckpt_ocdbt *db = NULL;
    cr_assert_neq(ckpt_ocdbt_open_manifest(NULL, dir, m, len, "mem", &db, &err), CKPT_OK);
    cr_assert(strstr(err.message, "mem"), "%s", err.message);
  }
  for (size_t bit = 0; bit < 8 * n; bit++) {
    m[bit / 8] ^= (char)(1 << (bit % 8));
    ckpt_error err = CKPT_ERROR_INIT;
    ckpt_ocdbt *db = NULL;
    cr_assert_neq(ckpt_ocdbt_open_manifest(NULL, dir, m, n, "mem", &db, &err), CKPT_OK, "bit %zu",
                  bit);
    m[bit / 8] ^= (char)(1 << (bit % 8));
  }
  free(m);
  free(mp);
  pt_rmtree(dir);
}

/* ---------------------------------------------------------------- Orbax's checkpoints */

#define ORBAX_FIXTURES CKPT_SOURCE_DIR "/../shared/orbax-fixtures"

static bool have_fixtures(void) {
  return pt_exists(ORBAX_FIXTURES "/v0_standard");
}

#define NEED_FIXTURES()                                                             \
  do {                                                                              \
    if (!have_fixtures())                                                           \
      cr_skip_test("Orbax fixtures not found at %s: test skipped", ORBAX_FIXTURES); \
  } while (0)

static void expect_orbax_keys(const char *dir) {
  ckpt_ocdbt *db = open_ok(dir);
  const char *want[] = {"a/.zarray", "a/0", "b.c/.zarray", "b.c/0"};
  cr_assert_eq(ckpt_ocdbt_count(db), 4, "%s: %zu keys", dir, ckpt_ocdbt_count(db));
  for (size_t i = 0; i < 4; i++)
    cr_assert_str_eq(ckpt_ocdbt_key(db, i, NULL), want[i]);
  char *z = value_of(db, "a/.zarray");
  cr_assert(strstr(z, "\"shape\":[8]") && strstr(z, "\"dtype\":\"<i4\""), "%s", z);
  free(z);
  ckpt_ocdbt_close(db);
}

Test(ocdbt, orbax_databases_list_exactly_their_keys) {
  NEED_FIXTURES();
  expect_orbax_keys(ORBAX_FIXTURES "/v0_standard");
  expect_orbax_keys(ORBAX_FIXTURES "/v0_standard/ocdbt.process_0");
  expect_orbax_keys(ORBAX_FIXTURES "/v0_composite/state");
  expect_orbax_keys(ORBAX_FIXTURES "/v0_composite/state/ocdbt.process_0");
  /* zarr3 values: the keys are there (reading them is the zarr3 reader's job) */
  ckpt_ocdbt *db = open_ok(ORBAX_FIXTURES "/v1_composite_zarr3/state");
  size_t i;
  cr_assert(ckpt_ocdbt_find(db, "a/zarr.json", &i) && ckpt_ocdbt_find(db, "b.c/c/0", &i));
  ckpt_ocdbt_close(db);
}

Test(ocdbt, orbax_missing_data_directory) {
  NEED_FIXTURES();
  open_fails(ORBAX_FIXTURES "/v0_standard_missing_d", CKPT_EINCOMPLETE,
             "v0_standard_missing_d/d' is missing", "B+tree node");
}
