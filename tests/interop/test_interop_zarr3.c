/* test_interop_zarr3.c — ckpt's zarr v3 codec pipeline (storage/zarr3.h) against an
 * independent implementation (zarr3_peer.py: NumPy layouts, numcodecs' zstd, blosc and gzip,
 * its own CRC-32C), both ways. Debian's zarr-python 2.13 cannot read v3, so the peer follows
 * the spec directly. Cases: Orbax's chain (sharding_indexed, bytes + zstd, index bytes + crc32c
 * at the end), a shard with an inner chunk not stored and the index at the start (blosc lz4
 * with byte shuffle inside), transpose + big-endian bytes + gzip, a rank-3 transpose with zstd
 * frame checksums under an outer crc32c, blosc zstd with bitshuffle, complex64 in a shard with
 * a big-endian index and no CRC. For each: the peer's bytes decode in C to the peer's array,
 * and C's encoding of that array decodes in the peer to the same values. */
#include <criterion/criterion.h>
#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "interop_util.h"
#include "storage/zarr.h"

/* A short-lived path in one of a few static buffers (no free; valid for the next 7 calls). */
static char *tp(const char *f, ...) {
  static char ring[8][4096];
  static int next;
  char *b = ring[next++ % 8];
  va_list ap;
  va_start(ap, f);
  int n = vsnprintf(b, sizeof ring[0], f, ap);
  va_end(ap);
  cr_assert(n > 0 && (size_t)n < sizeof ring[0]);
  return b;
}

static int peer(const char *mode, const char *dir, char **out) {
  char *args = fmt("%s %s", mode, dir);
  int st = run_peer("zarr3_peer.py", args, out);
  free(args);
  return st;
}

Test(interop_zarr3, codecs_both_ways_with_an_independent_peer) {
  char t[] = "/tmp/ckpt_t1_zarr3_XXXXXX";
  cr_assert_not_null(mkdtemp(t));
  char *out = NULL;
  cr_assert_eq(peer("make", t, &out), 0, "%s", out);
  free(out);
  size_t n;
  char *cases = read_file(tp("%s/cases.txt", t), &n);
  int count = 0;
  bool saw_missing = false;
  for (char *name = strtok(cases, "\n"); name != NULL; name = strtok(NULL, "\n"), count++) {
    ckpt_error err = CKPT_ERROR_INIT;
    size_t jn, bn, rn;
    char *json = read_file(tp("%s/%s.json", t, name), &jn);
    unsigned char *bin = read_file(tp("%s/%s.bin", t, name), &bn);
    unsigned char *raw = read_file(tp("%s/%s.raw", t, name), &rn);
    ckpt_zarr_meta m;
    cr_assert_eq(ckpt_zarr3_meta_decode(json, jn, name, &m, &err), CKPT_OK, "%s", err.message);
    cr_assert_eq(ckpt_zarr_chunk_elements(&m) * ckpt_dtype_size(m.dtype), rn, "%s", name);
    unsigned char *dec = malloc(rn);
    memset(dec, 0xa5, rn);
    cr_assert_eq(ckpt_zarr3_decode_chunk(&m, bin, bn, dec, NULL, NULL, "x", name, &err), CKPT_OK,
                 "%s: %s", name, err.message);
    cr_assert_eq(memcmp(dec, raw, rn), 0, "%s: the peer's bytes decode differently in C", name);
    if (m.v3.codecs.c[0].id == CKPT_ZARR3_SHARDING) {
      uint64_t *pairs = NULL, n_inner = 0;
      if (ckpt_zarr3_shard_index(&m, bin, bn, &pairs, &n_inner, "x", name, &err) == CKPT_OK)
        for (uint64_t i = 0; i < n_inner; i++)
          saw_missing |= pairs[2 * i] == UINT64_MAX;
      free(pairs);
    }
    void *enc = NULL;
    size_t en = 0;
    cr_assert_eq(ckpt_zarr3_encode_chunk(&m, raw, &enc, &en, "x", name, &err), CKPT_OK, "%s: %s",
                 name, err.message);
    FILE *f = fopen(tp("%s/%s.c.bin", t, name), "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(enc, 1, en, f), en);
    fclose(f);
    /* and C reads its own encoding back */
    memset(dec, 0x5a, rn);
    cr_assert_eq(ckpt_zarr3_decode_chunk(&m, enc, en, dec, NULL, NULL, "x", name, &err), CKPT_OK,
                 "%s: %s", name, err.message);
    cr_assert_eq(memcmp(dec, raw, rn), 0, "%s", name);
    free(enc);
    free(dec);
    free(json);
    free(bin);
    free(raw);
  }
  cr_assert_eq(count, 6);
  cr_assert(saw_missing, "no case had an inner chunk that is not stored");
  cr_assert_eq(peer("check", t, &out), 0, "%s", out);
  free(out);
  free(cases);
  nftw(t, interop_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}
