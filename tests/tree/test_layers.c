/* test_layers.c — scripts/check-layers catches every kind of violation it promises to
 * (docs/architecture.md, "Layers"): each test copies the runtime's sources to a temporary tree,
 * plants one violation, and expects the check to fail naming the planted file and line. The
 * real tree itself is checked by `make test` before the suites run. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHECK_LAYERS CKPT_SOURCE_DIR "/scripts/check-layers"

static char g_root[] = "/tmp/ckpt-layers-XXXXXX";

static void run(const char *cmd) {
  int rc = system(cmd);
  cr_assert_eq(rc, 0, "failed: %s", cmd);
}

static void copy_tree(void) {
  cr_assert_not_null(mkdtemp(g_root));
  char cmd[4096];
  snprintf(cmd, sizeof cmd,
           "mkdir -p %s/runtime && cp -r %s/runtime/src %s/runtime/include "
           "%s/runtime/cli %s/runtime/",
           g_root, CKPT_SOURCE_DIR, CKPT_SOURCE_DIR, CKPT_SOURCE_DIR, g_root);
  run(cmd);
}

static void remove_tree(void) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf %s", g_root);
  run(cmd);
}

TestSuite(layers, .init = copy_tree, .fini = remove_tree);

/* Runs the check on the copy; returns its exit status and its output in out. */
static int check(char *out, size_t cap) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "%s %s %s 2>&1", CKPT_PYTHON, CHECK_LAYERS, g_root);
  FILE *p = popen(cmd, "r");
  cr_assert_not_null(p);
  size_t n = fread(out, 1, cap - 1, p);
  out[n] = '\0';
  int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Appends text to rel (a file of the copy) and returns the number of its last line. */
static int plant(const char *rel, const char *text) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", g_root, rel);
  FILE *f = fopen(path, "a");
  cr_assert_not_null(f, "%s", path);
  fputs(text, f);
  fclose(f);
  f = fopen(path, "r");
  int lines = 0, c;
  while ((c = fgetc(f)) != EOF)
    lines += c == '\n';
  fclose(f);
  return lines;
}

static void expect_caught(const char *rel, const char *text, const char *why) {
  int line = plant(rel, text);
  static char out[1 << 16];
  cr_assert_eq(check(out, sizeof out), 1, "the check passed with %s planted:\n%s", why, out);
  char where[512];
  snprintf(where, sizeof where, "%s:%d: ", rel, line);
  cr_assert_not_null(strstr(out, where), "no violation reported at %s (%s):\n%s", where, why, out);
}

Test(layers, lower_layer_including_a_higher_one) {
  expect_caught("runtime/src/storage/commit.c", "#include \"handlers/op.h\"\n",
                "storage including a handler header");
}

Test(layers, angle_bracket_includes_are_checked_too) {
  expect_caught("runtime/src/storage/commit.c", "#include <manager/manager_internal.h>\n",
                "storage including a manager header in angle brackets");
}

Test(layers, layer_including_a_public_header_of_a_higher_layer) {
  expect_caught("runtime/src/storage/zarr.c", "#include \"ckpt/checkpointer.h\"\n",
                "storage including the checkpointer's public header");
}

Test(layers, public_header_leaking_an_internal_one) {
  expect_caught("runtime/include/ckpt/array.h", "#include \"io/engine.h\"\n",
                "a public header including a private one");
}

Test(layers, tool_bypassing_the_inspection_interface) {
  expect_caught("runtime/cli/cmd_ls.c", "#include \"storage/zarr_io.h\"\n",
                "the tool including a storage header directly");
}

Test(layers, cjson_text_outside_the_json_module) {
  expect_caught("runtime/src/storage/zarr.c",
                "static char *leak(const cJSON *j) { return cJSON_PrintUnformatted(j); }\n",
                "cJSON_PrintUnformatted in storage");
}

Test(layers, cjson_in_a_comment_is_not_a_call) {
  int line = plant("runtime/src/storage/zarr.c", "/* cJSON_Parse( is mentioned, not called */\n");
  static char out[1 << 16];
  check(out, sizeof out);
  char where[512];
  snprintf(where, sizeof where, "runtime/src/storage/zarr.c:%d: ", line);
  cr_assert_null(strstr(out, where), "a comment was reported as a call:\n%s", out);
}

Test(layers, file_outside_every_layer) {
  char dir[4096];
  snprintf(dir, sizeof dir, "mkdir -p %s/runtime/src/misc && touch %s/runtime/src/misc/helper.c",
           g_root, g_root);
  run(dir);
  static char out[1 << 16];
  cr_assert_eq(check(out, sizeof out), 1);
  cr_assert_not_null(strstr(out, "runtime/src/misc/helper.c: runtime/src/misc is not a layer"),
                     "%s", out);
}
