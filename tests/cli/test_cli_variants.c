/* test_cli_variants.c — `ckpt ls`, `cat`, `verify` and `diff` on checkpoints in the shapes
 * other Orbax versions leave: the v1 API (typestrs, data.json, descriptor item, root
 * `orbax.checkpoint` file), no _CHECKPOINT_METADATA, no _METADATA, and the legacy msgpack
 * aggregate file (tests/runtime/orbax_legacy.py, Flax's encoding). Checkpoints are ckpt saves
 * with Orbax's files edited in; the real Orbax checkpoints of ../shared/orbax-fixtures are used
 * where their metadata suffices (skipped, saying so, when absent). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "test_cli_support.h"

#define LEGACY CKPT_PYTHON " " CKPT_SOURCE_DIR "/tests/runtime/orbax_legacy.py"
#define ORBAX_FIXTURES CKPT_SOURCE_DIR "/../shared/orbax-fixtures"
#define V1 "orbax.checkpoint.experimental.v1._src.handlers."

static void legacy(const char *cmd, const char *dir) {
  char line[4096];
  snprintf(line, sizeof line, LEGACY " %s '%s'", cmd, dir);
  cr_assert_eq(system(line), 0, "%s", line);
}

static void rm(const char *dir, const char *name) {
  char *p = tc_join(dir, name);
  cr_assert_eq(remove(p), 0, "remove %s", p);
  free(p);
}

static const char V1_META[] =
    "{\"item_handlers\": {\"params\": \"" V1 "pytree_handler.PyTreeHandler\", \"config\": \"" V1
    "json_handler.JsonHandler\", \"run\": \"" V1 "proto_handler.ProtoHandler\", \"descriptor\": \"" V1
    "descriptor_handler.DescriptorHandler\"}, \"metrics\": {}, \"performance_metrics\": {}, "
    "\"init_timestamp_nsecs\": 1778718401651849216, \"commit_timestamp_nsecs\": "
    "1778718403065544708, \"custom_metadata\": {}}";

/* tc_save_composite's checkpoint (items params, config, run) as Orbax's v1 API leaves it. */
static void make_v1(const char *ck) {
  char *meta = tc_join(ck, "_CHECKPOINT_METADATA");
  tc_write(meta, V1_META, strlen(V1_META));
  char *from = tc_join2(ck, "config", "metadata"), *to = tc_join2(ck, "config", "data.json");
  cr_assert_eq(rename(from, to), 0);
  char *marker = tc_join(ck, "orbax.checkpoint");
  tc_write(marker, "", 0);
  rm(ck, "_CHECKPOINT_CHECKSUMS"); /* Orbax writes none; the edits would not match it */
  free(marker);
  free(from);
  free(to);
  free(meta);
}

Test(cli_variants, v1_layout_lists_reads_verifies_and_compares) {
  char *dir = tc_mkdtemp();
  char *ck = tc_join(dir, "ck"), *orig = tc_join(dir, "orig");
  tc_save_composite(ck, 0);
  tc_save_composite(orig, 0);
  make_v1(ck);
  /* the descriptor's directory, as Orbax v1 writes it (its contents are Orbax's own) */
  char *desc = tc_join(ck, "descriptor");
  cr_assert_eq(mkdir(desc, 0755), 0);
  char *desc_file = tc_join(desc, "descriptor.pbtxt");
  tc_write(desc_file, "x: 1\n", 5);
  free(desc_file);
  free(desc);
  tc_run r;
  TC_TOOL(&r, "ls", ck);
  cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
  cr_assert(strstr(r.out, "items      3"), "%s", r.out);
  cr_assert(strstr(r.out, "descriptor Orbax v1's description"), "%s", r.out);
  cr_assert(strstr(r.out, "item config: JsonHandler") && strstr(r.out, "\"lr\": 0.001"), "%s",
            r.out);
  cr_assert(strstr(r.out, "layer0.w"), "%s", r.out);
  tc_run_free(&r);
  TC_TOOL(&r, "cat", ck, "config");
  cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
  cr_assert(strstr(r.out, "\"name\": \"mlp\""), "%s", r.out);
  tc_run_free(&r);
  TC_TOOL(&r, "verify", ck);
  cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
  cr_assert(strstr(r.out, ": ok ("), "%s", r.out);
  cr_assert(strstr(r.out, "item descriptor (Orbax v1's description"), "%s", r.out);
  cr_assert(!strstr(r.out, "damaged"), "%s", r.out);
  tc_run_free(&r);
  /* v1's PyTreeHandler and JsonHandler are the handlers v0 names otherwise: no difference; v0's
   * StandardCheckpointHandler writes what v1's PyTreeHandler reads but is another class */
  TC_TOOL(&r, "diff", orig, ck);
  cr_assert(strstr(r.out, "config") == NULL, "%s", r.out);
  cr_assert(strstr(r.out, "handler: params: StandardCheckpointHandler != PyTreeHandler"), "%s",
            r.out);
  cr_assert(!strstr(r.out, "values"), "%s", r.out);
  tc_run_free(&r);
  tc_rmdir(dir);
  free(ck);
  free(orig);
}

Test(cli_variants, checkpoint_metadata_missing) {
  char *dir = tc_mkdtemp();
  char *ck = tc_join(dir, "ck");
  tc_save_composite(ck, 0);
  rm(ck, "_CHECKPOINT_METADATA");
  rm(ck, "_CHECKPOINT_CHECKSUMS");
  tc_run r;
  TC_TOOL(&r, "ls", ck);
  cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
  cr_assert(strstr(r.out, "item config: json") && strstr(r.out, "item params: pytree"), "%s",
            r.out);
  tc_run_free(&r);
  TC_TOOL(&r, "verify", ck);
  cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
  cr_assert(strstr(r.out, "no _CHECKPOINT_METADATA (written by an older Orbax)"), "%s", r.out);
  tc_run_free(&r);
  TC_TOOL(&r, "cat", ck, "params/layer0.b");
  cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
  tc_run_free(&r);
  tc_rmdir(dir);
  free(ck);
}

Test(cli_variants, metadata_missing_tree_from_the_arrays) {
  char *dir = tc_mkdtemp();
  char *ck = tc_join(dir, "ck");
  tc_save_composite(ck, 0);
  char *params = tc_join(ck, "params");
  legacy("no-metadata", params);
  tc_run r;
  TC_TOOL(&r, "ls", ck);
  cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
  cr_assert(strstr(r.out, "no _METADATA (an older Orbax): tree rebuilt from the zarr arrays"),
            "%s", r.out);
  cr_assert(strstr(r.out, "layer1.w"), "%s", r.out);
  tc_run_free(&r);
  TC_TOOL(&r, "cat", ck, "params/layer0.b");
  cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
  cr_assert(strstr(r.out, "["), "%s", r.out);
  tc_run_free(&r);
  TC_TOOL(&r, "verify", ck);
  cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
  cr_assert(strstr(r.out, "no _METADATA (written by an older Orbax)"), "%s", r.out);
  tc_run_free(&r);
  tc_rmdir(dir);
  free(params);
  free(ck);
}

Test(cli_variants, aggregate_file_items) {
  char *dir = tc_mkdtemp();
  char *a = tc_join(dir, "a"), *b = tc_join(dir, "b");
  cr_assert_eq(mkdir(a, 0755), 0);
  cr_assert_eq(mkdir(b, 0755), 0);
  legacy("all", a);
  legacy("chunked", b);
  tc_run r;
  TC_TOOL(&r, "ls", a);
  cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
  cr_assert(strstr(r.out, "tree rebuilt from the legacy aggregate file 'checkpoint'"), "%s",
            r.out);
  cr_assert(strstr(r.out, "params.w   np.ndarray  float32     [2, 3]  -       in checkpoint"),
            "%s", r.out);
  tc_run_free(&r);
  TC_TOOL(&r, "cat", a, "params.w");
  cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
  cr_assert_str_eq(r.out, "[[0.0, 0.25, 0.5], [0.75, 1.0, 1.25]]\n");
  tc_run_free(&r);
  TC_TOOL(&r, "cat", a, "lr");
  cr_assert_str_eq(r.out, "0.125\n");
  tc_run_free(&r);
  TC_TOOL(&r, "verify", a);
  cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
  cr_assert(strstr(r.out, "14 leaves kept in the legacy aggregate file"), "%s", r.out);
  tc_run_free(&r);
  TC_TOOL(&r, "diff", a, a);
  cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
  tc_run_free(&r);
  TC_TOOL(&r, "diff", a, b);
  cr_assert_eq(r.status, 1, "%s%s", r.out, r.err);
  cr_assert(strstr(r.out, "only in A") && strstr(r.out, "params.w"), "%s", r.out);
  tc_run_free(&r);
  /* a damaged file: reported as damage naming it, not a crash */
  char *file = tc_join(a, "checkpoint");
  size_t len;
  char *bytes = tc_read(file, &len);
  tc_write(file, bytes, len / 2);
  TC_TOOL(&r, "verify", a);
  cr_assert_neq(r.status, 0, "%s%s", r.out, r.err);
  cr_assert(strstr(r.out, "checkpoint") && strstr(r.out, "msgpack"), "%s", r.out);
  tc_run_free(&r);
  free(bytes);
  free(file);
  tc_rmdir(dir);
  free(a);
  free(b);
}

/* The real v1 checkpoint's metadata: its JSON item, its descriptor, its root marker file. */
Test(cli_variants, orbax_v1_fixture) {
  const char *v1 = ORBAX_FIXTURES "/v1_composite_zarr3";
  if (!tc_exists(v1))
    cr_skip_test("Orbax fixtures not found at %s: test skipped", ORBAX_FIXTURES);
  tc_run r;
  TC_TOOL(&r, "ls", v1);
  cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
  cr_assert(strstr(r.out, "items      2") && strstr(r.out, "descriptor Orbax v1"), "%s", r.out);
  cr_assert(!strstr(r.out, "not recognised") && !strstr(r.out, "not valid"), "%s", r.out);
  tc_run_free(&r);
  TC_TOOL(&r, "cat", v1, "metadata");
  cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
  cr_assert_str_eq(r.out, "{\"metadata\": \"json_data\"}\n");
  tc_run_free(&r);
  /* (its arrays are zarr3 in OCDBT: checked once ckpt reads zarr3, an error saying so before;
   * never damage, and nothing about the descriptor or the JSON item but the note) */
  TC_TOOL(&r, "verify", v1);
  cr_assert(!strstr(r.out, "damaged:"), "%s", r.out);
  cr_assert(!strstr(r.out, "item 'metadata':") && !strstr(r.out, "item 'descriptor'"), "%s",
            r.out);
  cr_assert(strstr(r.out, "note: item descriptor (Orbax v1's description"), "%s", r.out);
  tc_run_free(&r);
  TC_TOOL(&r, "ls", "--json", v1);
  cr_assert(strstr(r.out, "\"orbax_descriptor\": true"), "%s", r.out);
  tc_run_free(&r);
}
