/* test_cli_packed.c — the `ckpt` tool on items in the retired packed layout (_PACKED +
 * _PACKED.0; ckpt no longer writes it, so the item is packed by the test's own code,
 * tests/runtime/packed_by_hand.h): ls, cat, verify (a flipped bit and a truncated data file are
 * found and named) and diff against the same state in the plain layout; and `ckpt unpack`,
 * whose output zarr-python reads (CKPT_PYTHON) with the same values, which verifies and diffs
 * clean, and which refuses a damaged source or an existing destination. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../runtime/packed_by_hand.h"
#include "test_cli_support.h"

static char *dir, *packed, *plain;

static void setup(void) {
  dir = tc_mkdtemp();
  packed = tc_join(dir, "packed");
  plain = tc_join(dir, "plain");
  tc_save_composite(packed, 0);
  char *item = tc_join(packed, "params");
  const char *arrays[] = {"layer0.b", "layer0.w", "layer1.w", "lr", "step"};
  pack_by_hand(item, arrays, 5);
  free(item);
  tc_save_composite(plain, 0);
}
static void teardown(void) {
  free(packed);
  free(plain);
  tc_rmdir(dir);
  dir = packed = plain = NULL;
}

TestSuite(cli_packed, .init = setup, .fini = teardown);

Test(cli_packed, layout_is_packed) {
  cr_assert(tc_has(packed, "params/_PACKED") && tc_has(packed, "params/_PACKED.0"));
  cr_assert(!tc_has(packed, "params/layer0.w") && !tc_has(packed, "params/step"));
  cr_assert(tc_has(plain, "params/layer0.w/.zarray") && !tc_has(plain, "params/_PACKED"));
}

Test(cli_packed, ls_cat_verify_and_diff_agree_with_the_plain_layout) {
  tc_run a, b;
  TC_TOOL(&a, "cat", packed, "params/layer0.w");
  TC_TOOL(&b, "cat", plain, "params/layer0.w");
  cr_assert_eq(a.status, 0, "%s", a.err);
  cr_assert_str_eq(a.out, b.out);
  tc_run_free(&a);
  tc_run_free(&b);
  TC_TOOL(&a, "verify", packed);
  cr_assert_eq(a.status, 0, "%s%s", a.out, a.err);
  tc_run_free(&a);
  TC_TOOL(&a, "diff", packed, plain);
  cr_assert_eq(a.status, 0, "%s%s", a.out, a.err);
  cr_assert(strstr(a.out, "no differences"), "%s", a.out);
  tc_run_free(&a);
  TC_TOOL(&a, "ls", packed);
  cr_assert_eq(a.status, 0, "%s", a.err);
  cr_assert(strstr(a.out, "layer0.w"), "%s", a.out);
  cr_assert(strstr(a.out, "zstd"), "layer1.w is listed with its compressor: %s", a.out);
  tc_run_free(&a);
}

Test(cli_packed, verify_finds_damage_in_the_data_file) {
  char *data = tc_join(packed, "params/_PACKED.0");
  tc_flip_bit(data, 3);
  tc_run r;
  TC_TOOL(&r, "verify", "--json", packed);
  cr_assert_eq(r.status, 1, "%s%s", r.out, r.err);
  cr_assert(strstr(r.out, "is corrupt (crc32c"), "%s", r.out);
  cr_assert(strstr(r.out, "_PACKED.0\""), "the problem names the data file: %s", r.out);
  tc_run_free(&r);
  cr_assert_eq(truncate(data, 8), 0);
  TC_TOOL(&r, "verify", packed);
  cr_assert_eq(r.status, 1, "%s%s", r.out, r.err);
  cr_assert(strstr(r.out, "lie past the end"), "%s", r.out);
  tc_run_free(&r);
  free(data);
}

Test(cli_packed, unpack_gives_what_zarr_python_reads) {
  char *out = tc_join(dir, "unpacked");
  tc_run r;
  TC_TOOL(&r, "unpack", "--json", packed, out);
  cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
  cr_assert(strstr(r.out, "\"items\": 1") && strstr(r.out, "\"to\": \"zarr2\""), "%s", r.out);
  tc_run_free(&r);
  cr_assert(!tc_has(out, "params/_PACKED") && !tc_has(out, "params/_PACKED.0"));
  cr_assert(tc_has(out, "params/layer0.w/.zarray") && tc_has(out, "params/layer0.w/0.0") &&
            tc_has(out, "params/layer0.w/1.0") && tc_has(out, "config/metadata"));
  /* Same files as the plain save where the layouts agree. */
  const char *same[] = {"params/_METADATA", "params/layer0.w/.zarray", "params/layer0.w/0.0",
                        "params/layer1.w/0.0", "params/step/0"};
  for (size_t i = 0; i < sizeof same / sizeof *same; i++) {
    char *x = tc_join(out, same[i]), *y = tc_join(plain, same[i]);
    size_t nx, ny;
    char *bx = tc_read(x, &nx), *by = tc_read(y, &ny);
    cr_assert(nx == ny && memcmp(bx, by, nx) == 0, "%s differs from the plain save", same[i]);
    free(bx);
    free(by);
    free(x);
    free(y);
  }
  /* zarr-python reads the unpacked arrays as it reads the plain ones. */
  const char *arrays[] = {"params/layer0.w", "params/layer0.b", "params/layer1.w", "params/step",
                          "params/lr"};
  for (size_t i = 0; i < sizeof arrays / sizeof *arrays; i++) {
    char *x = tc_join(out, arrays[i]), *y = tc_join(plain, arrays[i]);
    tc_run p, q;
    TC_PEER(&p, "print", x);
    TC_PEER(&q, "print", y);
    cr_assert_eq(p.status, 0, "%s%s", p.out, p.err);
    cr_assert_str_eq(p.out, q.out, "%s", arrays[i]);
    tc_run_free(&p);
    tc_run_free(&q);
    free(x);
    free(y);
  }
  TC_TOOL(&r, "verify", out);
  cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
  tc_run_free(&r);
  TC_TOOL(&r, "diff", out, plain);
  cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
  tc_run_free(&r);
  /* An existing destination is refused. */
  TC_TOOL(&r, "unpack", packed, out);
  cr_assert_eq(r.status, 2);
  cr_assert(strstr(r.err, "already exists"), "%s", r.err);
  tc_run_free(&r);
  free(out);
}

Test(cli_packed, unpack_refuses_a_damaged_source) {
  char *data = tc_join(packed, "params/_PACKED.0");
  tc_flip_bit(data, 3);
  char *out = tc_join(dir, "unpacked");
  tc_run r;
  TC_TOOL(&r, "unpack", packed, out);
  cr_assert_eq(r.status, 1, "damaged: %s%s", r.out, r.err);
  cr_assert(strstr(r.err, "is corrupt"), "%s", r.err);
  cr_assert(!tc_exists(out));
  char *tmp = tc_join(dir, "unpacked.orbax-checkpoint-tmp");
  cr_assert(!tc_exists(tmp), "the temporary copy is removed");
  tc_run_free(&r);
  free(tmp);
  free(out);
  free(data);
}
