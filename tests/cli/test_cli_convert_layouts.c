/* test_cli_convert_layouts.c — `ckpt convert` between every layout: each source (zarr v2
 * directories, zarr v2 in OCDBT, zarr v3 directories, zarr v3 in OCDBT, the retired packed
 * layout) into each target (--to zarr2, zarr3, ocdbt, ocdbt+zarr2, ocdbt+zarr3) gives a copy in
 * that layout that verifies and holds the zarr v2 save's values, and converting it back gives
 * them again; Orbax's own checkpoints (zarr v2 and zarr v3 in OCDBT) convert to every target,
 * and zarr-python reads the zarr v2 copy; a damaged chunk in the source is an error naming it
 * and leaves nothing at DST; `ckpt ls` reports an OCDBT array's stored bytes as the sum of its
 * chunk values. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

TestSuite(cli_convert_layouts, .init = setup, .fini = teardown);

static const char *const targets[] = {"zarr2", "zarr3", "ocdbt", "ocdbt+zarr2", "ocdbt+zarr3"};
#define N_TARGETS (sizeof targets / sizeof targets[0])

/* The composite (variant 0) saved at path in layout `kind` (a target name, or "packed"). */
static void save_source(const char *kind, const char *path) {
  tc_use_ocdbt = strncmp(kind, "ocdbt", 5) == 0;
  tc_use_zarr3 = strcmp(kind, "zarr3") == 0 || strcmp(kind, "ocdbt+zarr3") == 0;
  tc_save_composite(path, 0);
  tc_use_ocdbt = tc_use_zarr3 = false;
  if (strcmp(kind, "packed") == 0) {
    char *item = tc_join(path, "params");
    const char *arrays[] = {"layer0.b", "layer0.w", "layer1.w", "lr", "step"};
    pack_by_hand(item, arrays, 5);
    free(item);
  }
}

static void convert_ok(const char *src, const char *dst, const char *to) {
  tc_run r;
  TC_TOOL(&r, "convert", "--json", "--to", to, src, dst);
  cr_assert_eq(r.status, 0, "%s -> %s (%s): %s%s", src, dst, to, r.out, r.err);
  tc_run_free(&r);
}

/* ck verifies and holds the values of other (diff reads every leaf of both). */
static void verify_and_same_values(const char *ck, const char *other, bool verify) {
  tc_run r;
  if (verify) {
    TC_TOOL(&r, "verify", ck);
    cr_assert_eq(r.status, 0, "%s: %s%s", ck, r.out, r.err);
    tc_run_free(&r);
  }
  TC_TOOL(&r, "diff", ck, other);
  cr_assert_eq(r.status, 0, "%s vs %s: %s%s", ck, other, r.out, r.err);
  cr_assert(strstr(r.out, "no differences"), "%s", r.out);
  tc_run_free(&r);
}

/* The item dir of ck is in layout `to`; v3_source: the source's values were zarr v3 (what
 * "ocdbt" keeps). */
static void assert_layout(const char *item, const char *to, bool v3_source, const char *arr) {
  bool ocdbt = strncmp(to, "ocdbt", 5) == 0;
  bool v3 = strstr(to, "zarr3") != NULL || (strcmp(to, "ocdbt") == 0 && v3_source);
  char *adir = tc_join(item, arr);
  cr_assert_eq(tc_has(item, "manifest.ocdbt"), ocdbt, "%s (%s)", item, to);
  cr_assert_eq(tc_exists(adir), !ocdbt, "%s (%s)", adir, to);
  if (!ocdbt) {
    cr_assert(tc_has(adir, v3 ? "zarr.json" : ".zarray"), "%s (%s)", adir, to);
    cr_assert(!tc_has(adir, v3 ? ".zarray" : "zarr.json"), "%s (%s)", adir, to);
  }
  char *meta = tc_join(item, "_METADATA");
  char *text = tc_read(meta, NULL);
  cr_assert(strstr(text, ocdbt ? "\"use_ocdbt\": true" : "\"use_ocdbt\": false"), "%s", text);
  cr_assert_eq(strstr(text, "\"use_zarr3\": true") != NULL, v3, "%s: %s", to, text);
  free(text);
  free(meta);
  free(adir);
}

/* Source `kind` into every target, each copy verified and compared with the zarr v2 save, and
 * each copy converted back (to zarr v2 directories for a packed source) and compared again. */
static void every_target_and_back(const char *kind) {
  char *src = tc_join(dir, "src");
  save_source(kind, src);
  /* Back to the source's layout, its value format named ("ocdbt" would keep the copy's). */
  const char *back_to = strcmp(kind, "packed") == 0  ? "zarr2"
                        : strcmp(kind, "ocdbt") == 0 ? "ocdbt+zarr2"
                                                     : kind;
  bool v3 = strstr(kind, "zarr3") != NULL;
  for (size_t t = 0; t < N_TARGETS; t++) {
    char name[64], bname[64];
    snprintf(name, sizeof name, "to_%zu", t);
    snprintf(bname, sizeof bname, "back_%zu", t);
    char *out = tc_join(dir, name), *back = tc_join(dir, bname);
    char *item = tc_join(out, "params"), *bitem = tc_join(back, "params");
    convert_ok(src, out, targets[t]);
    assert_layout(item, targets[t], v3, "layer0.w");
    assert_layout(item, targets[t], v3, "step"); /* a 0-d array: one chunk, key "0" or "c" */
    verify_and_same_values(out, plain, true);
    /* The items that are not PyTrees, byte for byte. */
    char *a = tc_join(out, "config/metadata"), *b = tc_join(plain, "config/metadata");
    size_t na = 0, nb = 0;
    char *ta = tc_read(a, &na), *tb = tc_read(b, &nb);
    cr_assert(na == nb && memcmp(ta, tb, na) == 0, "config/metadata differs");
    free(ta);
    free(tb);
    free(a);
    free(b);
    convert_ok(out, back, back_to);
    assert_layout(bitem, back_to, v3, "layer0.w");
    verify_and_same_values(back, plain, true);
    free(item);
    free(bitem);
    free(out);
    free(back);
  }
  free(src);
}

Test(cli_convert_layouts, from_zarr2_directories) {
  every_target_and_back("zarr2");
}
Test(cli_convert_layouts, from_zarr2_in_ocdbt) {
  every_target_and_back("ocdbt");
}
Test(cli_convert_layouts, from_zarr3_directories) {
  every_target_and_back("zarr3");
}
Test(cli_convert_layouts, from_zarr3_in_ocdbt) {
  every_target_and_back("ocdbt+zarr3");
}
Test(cli_convert_layouts, from_packed) {
  every_target_and_back("packed");
}

/* Same value format, directories to OCDBT and back: the chunks are moved, not re-encoded. */
Test(cli_convert_layouts, same_value_format_moves_bytes) {
  char *v3 = tc_join(dir, "v3"), *oc = tc_join(dir, "oc"), *back = tc_join(dir, "back");
  save_source("zarr3", v3);
  convert_ok(v3, oc, "ocdbt");
  convert_ok(oc, back, "zarr3");
  const char *files[] = {"params/layer0.w/zarr.json", "params/layer0.w/c.1.0", "params/_METADATA"};
  for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
    char *a = tc_join(v3, files[i]), *b = tc_join(back, files[i]);
    size_t na = 0, nb = 0;
    char *ta = tc_read(a, &na), *tb = tc_read(b, &nb);
    cr_assert(na == nb && memcmp(ta, tb, na) == 0, "%s differs after zarr3 -> ocdbt -> zarr3",
              files[i]);
    free(ta);
    free(tb);
    free(a);
    free(b);
  }
  free(v3);
  free(oc);
  free(back);
}

/* ---------------------------------------------------------------- Orbax's checkpoints */

static char *fixture(const char *name) {
  char *rel = tc_join("../shared/orbax-fixtures", name);
  char *p = tc_join(CKPT_SOURCE_DIR, rel);
  free(rel);
  if (!tc_exists(p)) {
    free(p);
    return NULL;
  }
  return p;
}
#define SKIP_WITHOUT(f)                                                                 \
  if ((f) == NULL)                                                                      \
  cr_skip_test("Orbax fixtures not found at %s/../shared/orbax-fixtures: test skipped", \
               CKPT_SOURCE_DIR)

/* `ckpt cat ck key` prints want (the README's values of the fixtures' tree). */
static void assert_cat(const char *ck, const char *key, const char *want) {
  tc_run r;
  TC_TOOL(&r, "cat", ck, key);
  cr_assert_eq(r.status, 0, "%s %s: %s%s", ck, key, r.out, r.err);
  cr_assert(strstr(r.out, want), "%s %s: %s", ck, key, r.out);
  tc_run_free(&r);
}

/* A fixture into every target (values read back), and back to its own layout (values read
 * back, and no differences from the fixture where diff understands all its items). */
static void fixture_everywhere(const char *name, const char *item, const char *own) {
  char *f = fixture(name);
  SKIP_WITHOUT(f);
  for (size_t t = 0; t < N_TARGETS; t++) {
    char oname[64], bname[64], ka[64], kb[64];
    snprintf(oname, sizeof oname, "orbax_%zu", t);
    snprintf(bname, sizeof bname, "orbax_back_%zu", t);
    snprintf(ka, sizeof ka, "%s%sa", item, *item ? "/" : "");
    snprintf(kb, sizeof kb, "%s%sb.c", item, *item ? "/" : "");
    char *out = tc_join(dir, oname), *back = tc_join(dir, bname);
    convert_ok(f, out, targets[t]);
    char *it = *item ? tc_join(out, item) : tc_join(out, ".");
    assert_layout(it, targets[t], strstr(own, "zarr3") != NULL, "a");
    assert_cat(out, ka, "[0 1 2 3 4 5 6 7]");
    assert_cat(out, kb, "[1 2 3]");
    convert_ok(out, back, own);
    assert_cat(back, ka, "[0 1 2 3 4 5 6 7]");
    assert_cat(back, kb, "[1 2 3]");
    if (strcmp(name, "v1_composite_zarr3") != 0) /* diff knows no v1 handler (its other items) */
      verify_and_same_values(back, f, false);
    free(it);
    free(out);
    free(back);
  }
  free(f);
}

Test(cli_convert_layouts, orbax_zarr2_in_ocdbt_to_every_layout) {
  fixture_everywhere("v0_standard", "", "ocdbt+zarr2");
}
Test(cli_convert_layouts, orbax_composite_to_every_layout) {
  fixture_everywhere("v0_composite", "state", "ocdbt+zarr2");
}
Test(cli_convert_layouts, orbax_zarr3_in_ocdbt_to_every_layout) {
  fixture_everywhere("v1_composite_zarr3", "state", "ocdbt+zarr3");
}

/* TensorStore's zstd frames record no content size, which Debian's numcodecs cannot decode:
 * the zarr v2 directories convert writes have frames that do, and zarr-python reads them. */
Test(cli_convert_layouts, zarr_python_reads_the_converted_orbax_checkpoint) {
  char *f = fixture("v0_standard");
  SKIP_WITHOUT(f);
  char *out = tc_join(dir, "orbax_zarr2");
  convert_ok(f, out, "zarr2");
  const char *keys[] = {"a", "b.c"}, *want[] = {"[0 1 2 3 4 5 6 7]", "[1 2 3]"};
  for (size_t i = 0; i < 2; i++) {
    char *adir = tc_join(out, keys[i]);
    tc_run p;
    TC_PEER(&p, "print", adir);
    cr_assert_eq(p.status, 0, "zarr-python on %s: %s%s", adir, p.out, p.err);
    cr_assert(strstr(p.out, want[i]), "%s: %s", keys[i], p.out);
    tc_run_free(&p);
    free(adir);
  }
  free(out);
  free(f);
}

/* ---------------------------------------------------------------- damage */

static void damaged_chunk_is_named(const char *kind, const char *chunk, const char *to,
                                   const char *key) {
  char *src = tc_join(dir, "src"), *out = tc_join(dir, "out");
  save_source(kind, src);
  char *p = tc_join(src, chunk);
  struct stat sb;
  cr_assert(stat(p, &sb) == 0 && sb.st_size > 4, "%s", p);
  tc_flip_bit(p, (uint64_t)sb.st_size / 2);
  tc_run r;
  TC_TOOL(&r, "convert", "--to", to, src, out);
  cr_assert_eq(r.status, 1, "damaged: %s%s", r.out, r.err);
  cr_assert(strstr(r.err, "layer0.w") && strstr(r.err, key), "names the chunk: %s", r.err);
  cr_assert(!tc_exists(out), "nothing at DST");
  char *tmp = tc_join(dir, "out.orbax-checkpoint-tmp");
  cr_assert(!tc_exists(tmp), "the temporary copy is removed");
  tc_run_free(&r);
  free(tmp);
  free(p);
  free(src);
  free(out);
}

Test(cli_convert_layouts, damaged_zarr2_chunk_into_zarr3) {
  damaged_chunk_is_named("zarr2", "params/layer0.w/1.0", "zarr3", "'1.0'");
}
Test(cli_convert_layouts, damaged_zarr3_shard_into_ocdbt_zarr2) {
  damaged_chunk_is_named("zarr3", "params/layer0.w/c.1.0", "ocdbt+zarr2", "'c.1.0'");
}

/* ---------------------------------------------------------------- ls */

/* stored_bytes of leaf key in `ckpt ls --json ck`. */
static unsigned long long ls_stored(const char *ck, const char *key) {
  tc_run r;
  TC_TOOL(&r, "ls", "--json", ck);
  cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
  char pat[128];
  snprintf(pat, sizeof pat, "\"key\": \"%s\"", key);
  const char *at = strstr(r.out, pat);
  cr_assert(at != NULL, "%s in %s", key, r.out);
  at = strstr(at, "\"stored_bytes\": ");
  cr_assert(at != NULL, "%s", r.out);
  unsigned long long v = strtoull(at + strlen("\"stored_bytes\": "), NULL, 10);
  tc_run_free(&r);
  return v;
}

static unsigned long long file_size(const char *dir_, const char *rel) {
  char *p = tc_join(dir_, rel);
  struct stat sb;
  cr_assert(stat(p, &sb) == 0, "%s", p);
  free(p);
  return (unsigned long long)sb.st_size;
}

/* An OCDBT array's stored bytes are its chunk values' lengths: the chunk files' sizes once the
 * same values are moved to directories (not the data file's size, not the metadata's). */
Test(cli_convert_layouts, ls_reports_ocdbt_chunk_bytes) {
  const char *kinds[] = {"ocdbt", "ocdbt+zarr3"}, *dirs[] = {"zarr2", "zarr3"};
  const char *chunks[][2] = {{"params/layer0.w/0.0", "params/layer0.w/1.0"},
                             {"params/layer0.w/c/0/0", "params/layer0.w/c/1/0"}};
  for (size_t k = 0; k < 2; k++) {
    char *src = tc_join(dir, kinds[k]), *moved = tc_join(dir, dirs[k]);
    save_source(kinds[k], src);
    convert_ok(src, moved, dirs[k]); /* same value format: bytes moved as stored */
    unsigned long long want = file_size(moved, chunks[k][0]) + file_size(moved, chunks[k][1]);
    cr_assert_eq(ls_stored(src, "layer0.w"), want, "%s", kinds[k]);
    cr_assert_eq(ls_stored(moved, "layer0.w"), want, "%s", dirs[k]);
    free(src);
    free(moved);
  }
  char *f = fixture("v1_composite_zarr3");
  SKIP_WITHOUT(f);
  char *moved = tc_join(dir, "orbax_v3");
  convert_ok(f, moved, "zarr3");    /* Orbax's keys "a/c/0": a nested chunk file */
  char *item = tc_join(f, "state"); /* the item alone: ls flags the fixture's v1 items */
  cr_assert_eq(ls_stored(item, "a"), file_size(moved, "state/a/c/0"));
  cr_assert_eq(ls_stored(item, "b.c"), file_size(moved, "state/b.c/c/0"));
  free(item);
  free(moved);
  free(f);
}
