/* test_cli_robust.c — hostile or broken checkpoints get a clear report, never a crash, a hang
 * or a look outside the checkpoint: a .zarray describing 10^15 chunks, parameter and item names
 * that try to leave the directory, a chunk replaced by a symlink, malformed _CHECKSUMS, deeply
 * nested JSON. Every subcommand is run on each and must exit 0, 1 or 2 with a message. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_cli_support.h"

static char *dir, *ck;

static void setup(void) {
  dir = tc_mkdtemp();
  ck = tc_join(dir, "ckpt");
  tc_save_composite(ck, 0);
}
static void teardown(void) {
  free(ck);
  tc_rmdir(dir);
  dir = ck = NULL;
}

TestSuite(cli_robust, .init = setup, .fini = teardown);

static void put(const char *rel, const char *text) {
  char *p = tc_join(ck, rel);
  tc_write(p, text, strlen(text));
  free(p);
}

/* Every subcommand on the damaged checkpoint: a status in {0, 1, 2}, no signal. */
static void all_commands_survive(void) {
  char *other = tc_join(dir, "other");
  if (!tc_exists(other))
    tc_save_composite(other, 0);
  const char *const cmds[][5] = {{"ls", ck, NULL},
                                 {"ls", "--json", ck, NULL},
                                 {"verify", ck, NULL},
                                 {"verify", "--json", ck, NULL},
                                 {"cat", ck, "params/layer0.w", NULL},
                                 {"cat", ck, "config", NULL},
                                 {"diff", other, ck, NULL},
                                 {"gc", "--dry-run", ck, NULL}};
  for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
    tc_run r;
    tc_tool(&r, cmds[i]);
    cr_assert(r.status >= 0 && r.status <= 2, "%s: exit %d\n%s", cmds[i][0], r.status, r.err);
    if (r.status == 2)
      cr_assert_neq(strlen(r.err), 0, "%s: exit 2 without a message", cmds[i][0]);
    tc_run_free(&r);
  }
  free(other);
}

static char *verify_out(int want) {
  tc_run r;
  TC_TOOL(&r, "verify", ck);
  cr_assert_eq(r.status, want, "exit %d\n%s%s", r.status, r.out, r.err);
  char *out = strdup(r.out);
  tc_run_free(&r);
  return out;
}

Test(cli_robust, implausible_chunk_grid) {
  /* an item whose _CHECKSUMS records no metadata files (older ckpt): else its CRC catches the
   * changed .zarray before its grid is looked at */
  char *k = tc_join(ck, "params/_CHECKSUMS");
  size_t len = 0;
  char *sums = tc_read(k, &len);
  char *files = strstr(sums, ",\"files\":{");
  cr_assert_not_null(files);
  memcpy(files, ",\"fileZ\":{", 10);
  tc_write(k, sums, len);
  free(sums);
  free(k);
  put("params/layer0.w/.zarray",
      "{\"chunks\":[1,1],\"compressor\":null,\"dimension_separator\":\".\",\"dtype\":\"<f4\","
      "\"fill_value\":null,\"filters\":null,\"order\":\"C\",\"shape\":[1000000000,1000000],"
      "\"zarr_format\":2}");
  char *out = verify_out(1);
  cr_assert(strstr(out, "array 'layer0.w': .zarray describes 1000000000000000 chunks, too many"),
            "%s", out);
  free(out);
  all_commands_survive();
}

Test(cli_robust, parameter_name_leaving_the_directory) {
  /* a file outside the checkpoint that an unsafe name would reach */
  char *outside = tc_join(dir, "secret");
  tc_write(outside, "x", 1);
  put("params/_METADATA",
      "{\"tree_metadata\": {\"('..', 'secret')\": {\"key_metadata\": [{\"key\": \"../secret\", "
      "\"key_type\": 2}], \"value_metadata\": {\"value_type\": \"np.ndarray\", "
      "\"skip_deserialize\": false}}}, \"use_ocdbt\": false, \"use_zarr3\": false, "
      "\"store_array_data_equal_to_fill_value\": true, \"custom_metadata\": null}");
  char *out = verify_out(1);
  cr_assert(strstr(out, "parameter name"), "%s", out);
  free(out);
  all_commands_survive();
  cr_assert(tc_exists(outside));
  free(outside);
}

Test(cli_robust, item_name_leaving_the_directory) {
  char *meta = tc_join(ck, "_CHECKPOINT_METADATA");
  char *text = tc_read(meta, NULL);
  char *at = strstr(text, "\"config\"");
  cr_assert_not_null(at);
  /* rename the item "config" to "../cfg" in item_handlers (same length keeps it simple) */
  char *fixed = malloc(strlen(text) + 8);
  size_t pre = (size_t)(at - text);
  memcpy(fixed, text, pre);
  strcpy(fixed + pre, "\"../cfg\"");
  strcat(fixed, at + strlen("\"config\""));
  tc_write(meta, fixed, strlen(fixed));
  char *out = verify_out(1);
  cr_assert(strstr(out,
                   "item '../cfg': _CHECKPOINT_METADATA names an item that is not a valid "
                   "directory name"),
            "%s", out);
  free(out);
  all_commands_survive();
  free(fixed);
  free(text);
  free(meta);
}

Test(cli_robust, chunk_replaced_by_a_symlink) {
  char *chunk = tc_join2(ck, "params/layer0.w", "0.0");
  char *outside = tc_join(dir, "outside-chunk");
  tc_write(outside, "012345678901234567890123", 24);
  cr_assert_eq(unlink(chunk), 0);
  cr_assert_eq(symlink(outside, chunk), 0);
  char *out = verify_out(1);
  cr_assert(strstr(out, "array 'layer0.w': chunk '0.0' is a symlink"), "%s", out);
  free(out);
  all_commands_survive();
  free(outside);
  free(chunk);
}

Test(cli_robust, malformed_checksums) {
  put("params/_CHECKSUMS", "{\"format\": \"ckpt-checksums\", \"arrays\": 5}");
  char *out = verify_out(1);
  cr_assert(strstr(out, "_CHECKSUMS"), "%s", out);
  free(out);
  all_commands_survive();
  put("params/_CHECKSUMS",
      "{\"algorithm\":\"crc32c\",\"arrays\":{\"layer0.w\":{\"0.0\":[1e300,-5]}},"
      "\"format\":\"ckpt-checksums\",\"version\":1}");
  out = verify_out(1);
  cr_assert(strstr(out, "chunk '0.0': malformed _CHECKSUMS entry"), "%s", out);
  free(out);
  all_commands_survive();
}

Test(cli_robust, deeply_nested_json_item) {
  size_t depth = 100000;
  char *deep = malloc(2 * depth + 1);
  memset(deep, '[', depth);
  memset(deep + depth, ']', depth);
  deep[2 * depth] = '\0';
  put("config/metadata", deep);
  free(deep);
  char *out = verify_out(1);
  cr_assert(strstr(out, "item 'config'"), "%s", out);
  free(out);
  all_commands_survive();
}

/* An item whose _METADATA says use_ocdbt but that has no OCDBT database (manifest.ocdbt absent:
 * the arrays were never merged, or were deleted) is damage every command names. */
Test(cli_robust, ocdbt_item_without_database_is_damaged) {
  char *item = tc_join(dir, "orbax_item");
  tc_run r;
  TC_PEER(&r, "orbax", item);
  tc_run_free(&r);
  char *meta = tc_join(item, "_METADATA");
  char *text = tc_read(meta, NULL);
  char *at = strstr(text, "\"use_ocdbt\": false");
  cr_assert_not_null(at);
  memcpy(at, "\"use_ocdbt\": true ", strlen("\"use_ocdbt\": true "));
  tc_write(meta, text, strlen(text));
  TC_TOOL(&r, "ls", item);
  cr_assert_eq(r.status, 1, "%s%s", r.out, r.err);
  cr_assert(strstr(r.out, "(OCDBT)"), "%s", r.out);
  cr_assert(strstr(r.out, "! OCDBT manifest '"), "%s", r.out);
  cr_assert(strstr(r.out, "manifest.ocdbt' is missing"), "%s", r.out);
  tc_run_free(&r);
  TC_TOOL(&r, "verify", item);
  cr_assert_eq(r.status, 1, "%s%s", r.out, r.err);
  cr_assert(strstr(r.out, "DAMAGED"), "%s", r.out);
  cr_assert(strstr(r.out, "manifest.ocdbt' is missing"), "%s", r.out);
  tc_run_free(&r);
  TC_TOOL(&r, "cat", item, "w");
  cr_assert_eq(r.status, 1, "%s%s", r.out, r.err);
  cr_assert(strstr(r.err, "array 'w': OCDBT manifest '"), "%s", r.err);
  tc_run_free(&r);
  free(text);
  free(meta);
  free(item);
}

/* Timestamps no int64 holds (1e300, NaN-free but far out of range) are shown as absent, not
 * converted: the conversion was undefined behaviour (caught under make check's UBSan). */
Test(cli_robust, timestamps_out_of_int64_range) {
  put("_CHECKPOINT_METADATA",
      "{\"item_handlers\": null, \"metrics\": {}, \"performance_metrics\": {}, "
      "\"init_timestamp_nsecs\": 1e300, \"commit_timestamp_nsecs\": -1e300, "
      "\"custom_metadata\": {}}");
  all_commands_survive();
  tc_run r;
  TC_TOOL(&r, "ls", "--json", ck);
  cr_assert(r.status == 0 || r.status == 1, "exit %d\n%s", r.status, r.err);
  cr_assert_null(strstr(r.out, "e+300"), "%s", r.out);
  tc_run_free(&r);
}
