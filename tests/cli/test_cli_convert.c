/* test_cli_convert.c — `ckpt convert SRC DST --to zarr2|ocdbt`: a composite checkpoint
 * (PyTree, JSON and proto items) converted to OCDBT and back gives the zarr save's files byte for
 * byte; each copy verifies, diffs clean against the source, and keeps the non-PyTree items and
 * _CHECKPOINT_METADATA byte for byte; zarr-python reads the zarr copy; a packed (hand-built) item
 * converts; Orbax's own OCDBT checkpoint converts to zarr directories; bad options are refused;
 * a damaged source leaves nothing (every layout pair: test_cli_convert_layouts.c). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../runtime/packed_by_hand.h"
#include "test_cli_support.h"

static char *dir, *plain;

static void setup(void) {
  dir = tc_mkdtemp();
  plain = tc_join(dir, "plain");
  tc_save_composite(plain, 0);
}
static void teardown(void) {
  free(plain);
  tc_rmdir(dir);
  dir = plain = NULL;
}

TestSuite(cli_convert, .init = setup, .fini = teardown);

/* dst/rel and src/rel hold the same bytes. */
static void assert_same_file(const char *a, const char *b, const char *rel) {
  char *x = tc_join(a, rel), *y = tc_join(b, rel);
  size_t nx = 0, ny = 0;
  char *bx = tc_read(x, &nx), *by = tc_read(y, &ny);
  cr_assert(nx == ny && memcmp(bx, by, nx) == 0, "%s differs between %s and %s", rel, a, b);
  free(bx);
  free(by);
  free(x);
  free(y);
}

static void convert_ok(const char *src, const char *dst, const char *to) {
  tc_run r;
  TC_TOOL(&r, "convert", "--json", "--to", to, src, dst);
  cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
  cr_assert(strstr(r.out, "\"items\": 1"), "one PyTree item: %s", r.out);
  tc_run_free(&r);
}

static void verify_and_diff_clean(const char *ck, const char *other) {
  tc_run r;
  TC_TOOL(&r, "verify", ck);
  cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
  tc_run_free(&r);
  TC_TOOL(&r, "diff", ck, other);
  cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
  cr_assert(strstr(r.out, "no differences"), "%s", r.out);
  tc_run_free(&r);
}

Test(cli_convert, zarr_to_ocdbt_and_back_is_the_zarr_save_byte_for_byte) {
  char *oc = tc_join(dir, "oc"), *back = tc_join(dir, "back");
  convert_ok(plain, oc, "ocdbt");
  cr_assert(tc_has(oc, "params/manifest.ocdbt") && tc_has(oc, "params/ocdbt.process_0/manifest.ocdbt"));
  cr_assert(!tc_has(oc, "params/layer0.w"));
  char *meta = tc_join(oc, "params/_METADATA");
  char *text = tc_read(meta, NULL);
  cr_assert(strstr(text, "\"use_ocdbt\": true"), "%s", text);
  free(text);
  free(meta);
  /* Everything but the PyTree item's arrays, byte for byte. */
  const char *same[] = {"_CHECKPOINT_METADATA", "config/metadata", "run/proto.pbtxt",
                        "params/commit_success.txt"};
  for (size_t i = 0; i < sizeof same / sizeof *same; i++)
    if (tc_has(plain, same[i]))
      assert_same_file(oc, plain, same[i]);
  verify_and_diff_clean(oc, plain);
  /* And back: the zarr save's files again. */
  convert_ok(oc, back, "zarr2");
  const char *files[] = {"params/_METADATA",    "params/layer0.w/.zarray", "params/layer0.w/0.0",
                         "params/layer0.w/1.0", "params/layer1.w/0.0",     "params/step/0",
                         "params/_CHECKSUMS"};
  for (size_t i = 0; i < sizeof files / sizeof *files; i++)
    assert_same_file(back, plain, files[i]);
  cr_assert(!tc_has(back, "params/manifest.ocdbt") && !tc_has(back, "params/d"));
  verify_and_diff_clean(back, plain);
  /* zarr-python reads the converted arrays as it reads the saved ones. */
  char *x = tc_join(back, "params/layer0.w"), *y = tc_join(plain, "params/layer0.w");
  tc_run p, q;
  TC_PEER(&p, "print", x);
  TC_PEER(&q, "print", y);
  cr_assert_eq(p.status, 0, "%s%s", p.out, p.err);
  cr_assert_str_eq(p.out, q.out);
  tc_run_free(&p);
  tc_run_free(&q);
  free(x);
  free(y);
  free(oc);
  free(back);
}

Test(cli_convert, ocdbt_save_converts_to_zarr) {
  char *saved = tc_join(dir, "saved"), *out = tc_join(dir, "out");
  tc_use_ocdbt = true;
  tc_save_composite(saved, 0);
  tc_use_ocdbt = false;
  cr_assert(tc_has(saved, "params/manifest.ocdbt"));
  convert_ok(saved, out, "zarr2");
  assert_same_file(out, plain, "params/layer1.w/0.0");
  assert_same_file(out, plain, "params/_METADATA");
  verify_and_diff_clean(out, plain);
  free(saved);
  free(out);
}

Test(cli_convert, packed_item_converts_to_ocdbt) {
  char *packed = tc_join(dir, "packed"), *out = tc_join(dir, "out");
  tc_save_composite(packed, 0);
  char *item = tc_join(packed, "params");
  const char *arrays[] = {"layer0.b", "layer0.w", "layer1.w", "lr", "step"};
  pack_by_hand(item, arrays, 5);
  free(item);
  convert_ok(packed, out, "ocdbt");
  cr_assert(!tc_has(out, "params/_PACKED") && !tc_has(out, "params/_PACKED.0"));
  cr_assert(tc_has(out, "params/manifest.ocdbt"));
  verify_and_diff_clean(out, plain);
  free(packed);
  free(out);
}

Test(cli_convert, orbax_ocdbt_checkpoint_converts_to_zarr) {
  char *fixture = tc_join(CKPT_SOURCE_DIR, "../shared/orbax-fixtures/v0_standard");
  if (!tc_exists(fixture)) {
    free(fixture);
    cr_skip_test("Orbax fixtures not found at %s/../shared/orbax-fixtures: test skipped",
                 CKPT_SOURCE_DIR);
  }
  char *out = tc_join(dir, "orbax");
  tc_run r;
  TC_TOOL(&r, "convert", "--to", "zarr2", fixture, out);
  cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
  tc_run_free(&r);
  cr_assert(tc_has(out, "a/.zarray") && tc_has(out, "a/0") && tc_has(out, "b.c/0"));
  cr_assert(!tc_has(out, "manifest.ocdbt") && !tc_has(out, "ocdbt.process_0") && !tc_has(out, "d"));
  /* Orbax's own files beside the arrays stay, byte for byte. */
  assert_same_file(out, fixture, "_sharding");
  assert_same_file(out, fixture, "_CHECKPOINT_METADATA");
  TC_TOOL(&r, "cat", out, "a");
  cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
  cr_assert(strstr(r.out, "[0 1 2 3 4 5 6 7]"), "%s", r.out);
  tc_run_free(&r);
  TC_TOOL(&r, "verify", out);
  cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
  tc_run_free(&r);
  TC_TOOL(&r, "diff", out, fixture);
  cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
  tc_run_free(&r);
  free(out);
  free(fixture);
}

Test(cli_convert, bad_options_are_refused) {
  char *out = tc_join(dir, "z3");
  tc_run r;
  TC_TOOL(&r, "convert", plain, out);
  cr_assert_eq(r.status, 2);
  cr_assert(strstr(r.err, "--to"), "%s", r.err);
  tc_run_free(&r);
  TC_TOOL(&r, "convert", "--to", "hdf5", plain, out);
  cr_assert_eq(r.status, 2);
  tc_run_free(&r);
  TC_TOOL(&r, "convert", "--to", "ocdbt", plain, plain);
  cr_assert_eq(r.status, 2);
  cr_assert(strstr(r.err, "already exists"), "%s", r.err);
  tc_run_free(&r);
  free(out);
}

Test(cli_convert, damaged_source_leaves_nothing) {
  char *saved = tc_join(dir, "saved"), *out = tc_join(dir, "out");
  tc_use_ocdbt = true;
  tc_save_composite(saved, 0);
  tc_use_ocdbt = false;
  /* The root database's manifest fails its CRC-32C. */
  tc_run r;
  char *man = tc_join(saved, "params/manifest.ocdbt");
  tc_flip_bit(man, 20);
  TC_TOOL(&r, "convert", "--to", "zarr2", saved, out);
  cr_assert_eq(r.status, 1, "damaged: %s%s", r.out, r.err);
  cr_assert(!tc_exists(out));
  char *tmp = tc_join(dir, "out.orbax-checkpoint-tmp");
  cr_assert(!tc_exists(tmp), "the temporary copy is removed");
  tc_run_free(&r);
  free(tmp);
  free(man);
  free(saved);
  free(out);
}
