/* fuzz/fuzz_ocdbt.c — the OCDBT reader (storage/ocdbt/ocdbt.h), which restore, verify and the
 * `ckpt` tool run on every item Orbax writes by default.
 *
 * The first input byte (mode) chooses what the rest is. Every form starts with a 2-byte
 * little-endian length m splitting the rest into A (m bytes) and B (the others):
 *   mode even            A is a whole manifest (ckpt_ocdbt_open_manifest), B the data file
 *                        d/fuzz its references may reach;
 *   mode odd, (mode >> 1) & 3 ==
 *     0                  A is the body of a B+tree node of height (mode >> 3) & 3, and
 *     1                  A is the body of a version tree node of that height: wrapped in a
 *                        valid envelope (header, CRC; zstd when mode & 0x80) at the start of
 *                        d/fuzz (followed by B), and reached from a fixed manifest;
 *     2, 3               A is the body of a manifest, wrapped likewise; d/fuzz is B.
 * The bodies get past the CRC, so the fuzzer explores the decoders behind it; the raw form
 * covers the envelope itself. The seeds (fuzz/corpus/ocdbt) are small databases written with
 * the tests' encoder (tests/runtime/ocdbt_build.h).
 *
 * Properties: no crash, leak, UB or unbounded work; a failure carries a message; an accepted
 * database has strictly sorted keys that ckpt_ocdbt_find finds, prefix ranges that hold
 * exactly the keys with the prefix, and values that read or fail with a message. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "storage/ocdbt/ocdbt.h"
/* The tests' byte-by-byte encoder builds the fixed manifests (header-only). */
#include "../tests/runtime/ocdbt_build.h"

static int cmp_keys(const char *a, size_t an, const char *b, size_t bn) {
  int c = memcmp(a, b, an < bn ? an : bn);
  return c ? c : (an < bn ? -1 : an > bn);
}

static void check_db(ckpt_ocdbt *db) {
  size_t n = ckpt_ocdbt_count(db);
  for (size_t i = 0; i < n; i++) {
    size_t len, prev_len, at;
    const char *k = ckpt_ocdbt_key(db, i, &len);
    if (i > 0) {
      const char *p = ckpt_ocdbt_key(db, i - 1, &prev_len);
      fuzz_require(cmp_keys(p, prev_len, k, len) < 0, "keys not strictly sorted");
    }
    if (strlen(k) == len) {
      fuzz_require(ckpt_ocdbt_find(db, k, &at) && at == i, "a listed key is not found");
      size_t b, e;
      ckpt_ocdbt_prefix_range(db, k, &b, &e);
      fuzz_require(b == i && e > i && e <= n, "a key's prefix range does not start at it");
    }
    const ckpt_ocdbt_value *v = ckpt_ocdbt_value_at(db, i);
    if (v->length > (1u << 20))
      continue;
    void *buf = malloc(v->length ? (size_t)v->length : 1);
    fuzz_require(buf != NULL, "out of memory");
    ckpt_error err = CKPT_ERROR_INIT;
    ckpt_status st = ckpt_ocdbt_read(db, i, buf, &err);
    fuzz_require_error(st, &err, "ckpt_ocdbt_read");
    free(buf);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  const char *dir = fuzz_tmpdir();
  uint8_t mode = data[0];
  data++;
  size--;
  size_t m = size < 2 ? 0 : (size_t)data[0] | (size_t)data[1] << 8;
  data += size < 2 ? size : 2;
  size -= size < 2 ? size : 2;
  if (m > size)
    m = size;
  ob_buf a = {0}, b = {0}, man = {0}, file = {0};
  ob_put(&a, data, m);
  ob_put(&b, data + m, size - m);
  const char *files[] = {"d/fuzz"};
  unsigned kind = (mode >> 1) & 3;
  bool zstd = mode & 0x80;
  if (!(mode & 1)) {
    ob_put(&man, a.p, a.n);
    ob_put(&file, b.p, b.n);
  } else if (kind >= 2) {
    ob_envelope(&man, CKPT_OCDBT_MANIFEST_MAGIC, &a, zstd);
    ob_put(&file, b.p, b.n);
  } else {
    uint8_t height = (uint8_t)((mode >> 3) & 3);
    ob_envelope(&file, kind ? CKPT_OCDBT_VERSION_NODE_MAGIC : CKPT_OCDBT_BTREE_NODE_MAGIC, &a,
                zstd);
    ob_ref ref = {0, 0, file.n};
    ob_put(&file, b.p, b.n);
    if (kind == 1) {
      uint64_t gen = 1;
      ob_buf body = {0};
      ob_config(&body, CKPT_OCDBT_MANIFEST_KIND_SINGLE, 4);
      ob_file_table(&body, 1, files, NULL);
      ob_versions(&body, 0, NULL, NULL, NULL);
      ob_version_refs(&body, 1, &gen, &ref, &height);
      ob_envelope(&man, CKPT_OCDBT_MANIFEST_MAGIC, &body, false);
      ob_free(&body);
    } else {
      ob_manifest(&man, 1, files, 1, height, ref, false);
    }
  }
  ob_write(dir, "d/fuzz", file.p, file.n);
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_ocdbt *db = NULL;
  ckpt_status st = ckpt_ocdbt_open_manifest(NULL, dir, man.p, man.n, "fuzz/manifest", &db, &err);
  fuzz_require_error(st, &err, "ckpt_ocdbt_open_manifest");
  fuzz_require((st == CKPT_OK) == (db != NULL), "a database exactly when it succeeds");
  if (db != NULL) {
    check_db(db);
    ckpt_ocdbt_close(db);
  }
  ob_free(&a);
  ob_free(&b);
  ob_free(&man);
  ob_free(&file);
  return 0;
}
