/* test_cli_zarr3.c — the `ckpt` tool on items saved with use_zarr3 (zarr.json, one
 * sharding_indexed shard per chunk): ls names the codecs, cat prints the same values as the
 * zarr v2 layout, diff against the v2 save finds no differences and against a changed save
 * names the leaf, and verify finds a flipped bit in a shard (naming the array and the chunk)
 * and a missing zarr.json; convert turns a zarr v3 source into the zarr v2 save's values; the
 * same tools on zarr v3 in OCDBT. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_cli_support.h"

static char *dir, *v3, *v3b, *v2;

static void setup(void) {
  dir = tc_mkdtemp();
  v3 = tc_join(dir, "v3");
  v3b = tc_join(dir, "v3b");
  v2 = tc_join(dir, "v2");
  tc_use_zarr3 = true;
  tc_save_composite(v3, 0);
  tc_save_composite(v3b, 1);
  tc_use_zarr3 = false;
  tc_save_composite(v2, 0);
}
static void teardown(void) {
  free(v3);
  free(v3b);
  free(v2);
  tc_rmdir(dir);
  dir = v3 = v3b = v2 = NULL;
}

TestSuite(cli_zarr3, .init = setup, .fini = teardown);

Test(cli_zarr3, layout_ls_cat_and_diff) {
  cr_assert(tc_has(v3, "params/layer0.w/zarr.json") && tc_has(v3, "params/layer0.w/c.1.0"));
  cr_assert(!tc_has(v3, "params/layer0.w/.zarray"));
  tc_run a, b;
  TC_TOOL(&a, "ls", v3);
  cr_assert_eq(a.status, 0, "%s%s", a.out, a.err);
  /* Orbax's chain: zstd in every shard unless a leaf turns compression off */
  cr_assert(strstr(a.out, "zarr3 zstd") && !strstr(a.out, "zarr3 none"), "%s", a.out);
  tc_run_free(&a);
  const char *leaves[] = {"params/layer0.w", "params/layer1.w", "params/step"};
  for (int i = 0; i < 3; i++) {
    TC_TOOL(&a, "cat", v3, leaves[i]);
    TC_TOOL(&b, "cat", v2, leaves[i]);
    cr_assert_eq(a.status, 0, "%s", a.err);
    cr_assert_str_eq(a.out, b.out, "%s", leaves[i]);
    tc_run_free(&a);
    tc_run_free(&b);
  }
  TC_TOOL(&a, "diff", v3, v2);
  cr_assert_eq(a.status, 0, "%s%s", a.out, a.err);
  cr_assert(strstr(a.out, "no differences"), "%s", a.out);
  tc_run_free(&a);
  TC_TOOL(&a, "diff", v3, v3b);
  cr_assert_eq(a.status, 1, "%s%s", a.out, a.err);
  cr_assert(strstr(a.out, "layer0.b"), "%s", a.out);
  tc_run_free(&a);
  TC_TOOL(&a, "verify", v3);
  cr_assert_eq(a.status, 0, "%s%s", a.out, a.err);
  tc_run_free(&a);
}

Test(cli_zarr3, verify_finds_damage) {
  char *chunk = tc_join(v3, "params/layer0.w/c.1.0");
  tc_flip_bit(chunk, 2);
  tc_run r;
  TC_TOOL(&r, "verify", v3);
  cr_assert_eq(r.status, 1, "%s%s", r.out, r.err);
  cr_assert(strstr(r.out, "layer0.w") && strstr(r.out, "c.1.0") && strstr(r.out, "corrupt"), "%s",
            r.out);
  tc_run_free(&r);
  char *zj = tc_join(v3, "params/layer0.b/zarr.json");
  cr_assert_eq(unlink(zj), 0);
  TC_TOOL(&r, "verify", v3);
  cr_assert_eq(r.status, 1, "%s%s", r.out, r.err);
  cr_assert(strstr(r.out, "layer0.b"), "%s", r.out);
  tc_run_free(&r);
  free(zj);
  free(chunk);
}

Test(cli_zarr3, convert_decodes_zarr3_sources) {
  char *out = tc_join(dir, "converted");
  tc_run r;
  TC_TOOL(&r, "convert", "--to", "zarr2", v3, out);
  cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
  tc_run_free(&r);
  cr_assert(tc_has(out, "params/layer0.w/.zarray") && !tc_has(out, "params/layer0.w/zarr.json"));
  TC_TOOL(&r, "diff", out, v2);
  cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
  cr_assert(strstr(r.out, "no differences"), "%s", r.out);
  tc_run_free(&r);
  free(out);
}

Test(cli_zarr3, in_ocdbt) {
  char *ck = tc_join(dir, "ocdbt3");
  tc_use_zarr3 = true;
  tc_use_ocdbt = true;
  tc_save_composite(ck, 0);
  tc_use_zarr3 = false;
  tc_use_ocdbt = false;
  cr_assert(tc_has(ck, "params/manifest.ocdbt") && !tc_has(ck, "params/layer0.w"));
  tc_run a, b;
  TC_TOOL(&a, "ls", ck);
  cr_assert_eq(a.status, 0, "%s%s", a.out, a.err);
  cr_assert(strstr(a.out, "zarr3 zstd"), "%s", a.out);
  tc_run_free(&a);
  TC_TOOL(&a, "cat", ck, "params/layer0.w");
  TC_TOOL(&b, "cat", v2, "params/layer0.w");
  cr_assert_eq(a.status, 0, "%s", a.err);
  cr_assert_str_eq(a.out, b.out);
  tc_run_free(&a);
  tc_run_free(&b);
  TC_TOOL(&a, "verify", ck);
  cr_assert_eq(a.status, 0, "%s%s", a.out, a.err);
  tc_run_free(&a);
  TC_TOOL(&a, "diff", ck, v2);
  cr_assert_eq(a.status, 0, "%s%s", a.out, a.err);
  tc_run_free(&a);
  free(ck);
}
