/* test_cli_verify.c — `ckpt verify` finds real damage in real checkpoints: a flipped bit, a
 * truncated chunk, a deleted chunk, a deleted .zarray (each named by array and chunk, exit 1),
 * all of them at once, a corrupt zstd chunk, missing commit markers and metadata, a broken
 * JSON item, a missing string; on manager directories every step (tmp dirs skipped); an Orbax-
 * style item without checksums; the progress bar only on a terminal. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pty.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
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

TestSuite(cli_verify, .init = setup, .fini = teardown);

static char *at(const char *rel) {
  return tc_join(ck, rel);
}

/* Runs verify on path; checks the status and that every needle is in stdout. */
static void expect(const char *path, int status, const char *const *needles) {
  tc_run r;
  TC_TOOL(&r, "verify", path);
  cr_assert_eq(r.status, status, "exit %d (want %d)\nstdout: %s\nstderr: %s", r.status, status,
               r.out, r.err);
  for (size_t i = 0; needles && needles[i]; i++)
    cr_assert(strstr(r.out, needles[i]), "'%s' not in:\n%s", needles[i], r.out);
  tc_run_free(&r);
}

Test(cli_verify, sound_checkpoint) {
  tc_run r;
  TC_TOOL(&r, "verify", ck);
  cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
  char *norm = tc_normalize(r.out, dir);
  tc_golden("verify_ok.txt", norm);
  cr_assert_str_eq(r.err, "", "no progress bar when stderr is not a terminal");
  free(norm);
  tc_run_free(&r);
}

Test(cli_verify, flipped_bit) {
  char *c = at("params/layer0.w/1.0");
  tc_flip_bit(c, 5);
  expect(ck, 1,
         (const char *const[]){"DAMAGED", "item 'params': array 'layer0.w': chunk '1.0' is corrupt",
                               NULL});
  free(c);
}

Test(cli_verify, truncated_chunk) {
  char *c = at("params/layer0.w/0.0");
  cr_assert_eq(truncate(c, 10), 0);
  expect(ck, 1,
         (const char *const[]){"array 'layer0.w': chunk '0.0' has 10 bytes but 24 were written",
                               NULL});
  free(c);
}

Test(cli_verify, deleted_chunk) {
  char *c = at("params/layer0.w/1.0");
  cr_assert_eq(unlink(c), 0);
  expect(ck, 1, (const char *const[]){"array 'layer0.w': chunk '1.0' is missing", NULL});
  free(c);
}

Test(cli_verify, deleted_zarray) {
  char *z = at("params/layer0.b/.zarray");
  cr_assert_eq(unlink(z), 0);
  expect(ck, 1, (const char *const[]){"item 'params': array 'layer0.b':", ".zarray", NULL});
  free(z);
}

Test(cli_verify, corrupt_zstd_chunk) {
  char *c = at("params/layer1.w/0.0");
  tc_flip_bit(c, 8);
  expect(ck, 1, (const char *const[]){"array 'layer1.w': chunk '0.0' is corrupt", NULL});
  free(c);
}

Test(cli_verify, every_problem_is_reported_in_one_run) {
  char *flip = at("params/layer0.w/1.0"), *trunc = at("params/layer0.w/0.0");
  char *zarray = at("params/layer0.b/.zarray"), *gone = at("params/step/0");
  tc_flip_bit(flip, 0);
  cr_assert_eq(truncate(trunc, 3), 0);
  cr_assert_eq(unlink(zarray), 0);
  cr_assert_eq(unlink(gone), 0);
  tc_run r;
  TC_TOOL(&r, "verify", ck);
  cr_assert_eq(r.status, 1, "%s", r.err);
  char *norm = tc_normalize(r.out, dir);
  tc_golden("verify_damaged.txt", norm);
  free(norm);
  tc_run_free(&r);

  /* the same in JSON: one entry per problem, with array and chunk */
  TC_TOOL(&r, "verify", "--json", ck);
  cr_assert_eq(r.status, 1);
  cJSON *doc = cJSON_Parse(r.out);
  cr_assert_not_null(doc, "%s", r.out);
  cr_assert(cJSON_IsFalse(cJSON_GetObjectItem(doc, "ok")));
  cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "checkpoints"), 0);
  cJSON *problems = cJSON_GetObjectItem(c0, "problems");
  cr_assert_eq(cJSON_GetArraySize(problems), 4, "%s", r.out);
  const char *want[][2] = {
      {"layer0.b", NULL}, {"layer0.w", "0.0"}, {"layer0.w", "1.0"}, {"step", "0"}};
  for (int i = 0; i < 4; i++) {
    cJSON *p = cJSON_GetArrayItem(problems, i);
    cr_assert_str_eq(cJSON_GetObjectItem(p, "kind")->valuestring, "damaged");
    cr_assert_str_eq(cJSON_GetObjectItem(p, "item")->valuestring, "params");
    cr_assert_str_eq(cJSON_GetObjectItem(p, "array")->valuestring, want[i][0]);
    cJSON *chunk = cJSON_GetObjectItem(p, "chunk");
    if (want[i][1])
      cr_assert_str_eq(chunk->valuestring, want[i][1]);
    else
      cr_assert(cJSON_IsNull(chunk));
  }
  cJSON_Delete(doc);
  tc_run_free(&r);
  free(flip);
  free(trunc);
  free(zarray);
  free(gone);
}

Test(cli_verify, missing_commit_marker) {
  char *f = at("commit_success.txt");
  cr_assert_eq(unlink(f), 0);
  expect(ck, 1, (const char *const[]){"commit marker commit_success.txt is missing", NULL});
  free(f);
}

Test(cli_verify, missing_item_commit_marker) {
  char *f = at("config/commit_success.txt");
  cr_assert_eq(unlink(f), 0);
  expect(ck, 1, (const char *const[]){"item 'config': the item's commit marker", NULL});
  free(f);
}

/* A checkpoint that carries no sign of ckpt (no _CHECKPOINT_CHECKSUMS, no pending marker) and
 * is committed by its timestamp is what Orbax writes where it leaves out commit_success.txt:
 * the missing markers are noted, not damage. With the manifest present they are damage (the
 * two tests above). */
Test(cli_verify, foreign_checkpoint_without_commit_markers) {
  const char *gone[] = {"commit_success.txt", "config/commit_success.txt", "_CHECKPOINT_CHECKSUMS"};
  for (size_t i = 0; i < sizeof gone / sizeof *gone; i++) {
    char *f = at(gone[i]);
    cr_assert_eq(unlink(f), 0, "%s", f);
    free(f);
  }
  tc_run r;
  TC_TOOL(&r, "verify", ck);
  cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
  cr_assert(strstr(r.out, "note: no commit_success.txt (not written by ckpt"), "%s", r.out);
  cr_assert(strstr(r.out, "note: item config has no commit_success.txt"), "%s", r.out);
  tc_run_free(&r);
}

Test(cli_verify, missing_or_uncommitted_checkpoint_metadata) {
  char *f = at("_CHECKPOINT_METADATA");
  char *saved = tc_read(f, NULL);
  cr_assert_eq(unlink(f), 0);
  expect(ck, 1, (const char *const[]){"_CHECKPOINT_METADATA is missing", NULL});
  /* the file as written before the commit: no commit timestamp */
  const char *uncommitted = "{\"item_handlers\": null, \"init_timestamp_nsecs\": 1}";
  tc_write(f, uncommitted, strlen(uncommitted));
  expect(ck, 1, (const char *const[]){"never committed", NULL});
  tc_write(f, "{\"item_", 7);
  expect(ck, 1, (const char *const[]){"damaged: ", "_CHECKPOINT_METADATA", NULL});
  free(saved);
  free(f);
}

Test(cli_verify, broken_json_item) {
  char *f = at("config/metadata");
  tc_write(f, "{\"lr\": ", 7);
  expect(ck, 1, (const char *const[]){"item 'config': ", NULL});
  cr_assert_eq(unlink(f), 0);
  expect(ck, 1,
         (const char *const[]){"item 'config': the JSON item's 'metadata' file is missing", NULL});
  free(f);
}

Test(cli_verify, missing_item_directory) {
  char *params = at("params");
  char *moved = tc_join(dir, "params-elsewhere");
  cr_assert_eq(rename(params, moved), 0);
  expect(ck, 1,
         (const char *const[]){"item 'params': the item is named in _CHECKPOINT_METADATA "
                               "but its directory is missing",
                               NULL});
  free(params);
  free(moved);
}

Test(cli_verify, missing_metadata_of_pytree) {
  char *f = at("params/_METADATA");
  cr_assert_eq(unlink(f), 0);
  expect(ck, 1,
         (const char *const[]){"item 'params': the PyTree item's _METADATA file is missing", NULL});
  free(f);
}

Test(cli_verify, missing_string_leaf) {
  char *p = tc_join(dir, "strings");
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *t = ckpt_tree_new_dict();
  ckpt_tree_dict_set(t, "name", ckpt_tree_new_string("adam"), &err);
  ckpt_tree_dict_set(t, "n", ckpt_tree_new_int(CKPT_DTYPE_INT32, 3), &err);
  ckpt_PyTreeSave *s = ckpt_PyTreeSave_new();
  s->item = t;
  tc_save_args(&ckpt_PyTreeCheckpointHandler_desc, p, &s->base);
  expect(p, 0, NULL);
  char *sj = tc_join(p, "_strings.json");
  tc_write(sj, "{}", 2);
  expect(p, 1, (const char *const[]){"string leaf 'name' is missing from _strings.json", NULL});
  free(sj);
  free(p);
}

Test(cli_verify, tmp_directory_is_not_a_checkpoint) {
  char *tmp = tc_join(dir, "ckpt.orbax-checkpoint-tmp");
  cr_assert_eq(rename(ck, tmp), 0);
  expect(tmp, 1, (const char *const[]){"temporary name of an unfinished save", NULL});
  free(tmp);
}

Test(cli_verify, manager_directory_every_step) {
  char *m = tc_join(dir, "run");
  tc_save_step(m, NULL, 0, 1, 0.5);
  tc_save_step(m, NULL, 0, 2, 0.25);
  tc_save_step(m, NULL, 0, 3, 0.125);
  char *tmp = tc_join(m, "4.orbax-checkpoint-tmp");
  cr_assert_eq(mkdir(tmp, 0755), 0);
  tc_run r;
  TC_TOOL(&r, "verify", m);
  cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
  tc_run_free(&r);
  /* damage step 2 only */
  char *c = tc_join2(m, "2", "default/w/0");
  tc_flip_bit(c, 1);
  TC_TOOL(&r, "verify", m);
  cr_assert_eq(r.status, 1, "%s%s", r.out, r.err);
  char *norm = tc_normalize(r.out, dir);
  tc_golden("verify_manager.txt", norm);
  free(norm);
  tc_run_free(&r);
  /* --step picks one */
  TC_TOOL(&r, "verify", "--step", "3", m);
  cr_assert_eq(r.status, 0, "%s", r.out);
  cr_assert(strstr(r.out, "/run/3: ok"), "%s", r.out);
  cr_assert_null(strstr(r.out, "/run/2"), "%s", r.out);
  tc_run_free(&r);
  TC_TOOL(&r, "verify", "--step", "2", m);
  cr_assert_eq(r.status, 1, "%s", r.out);
  tc_run_free(&r);
  free(c);
  free(tmp);
  free(m);
}

Test(cli_verify, orbax_item_without_checksums) {
  char *item = tc_join(dir, "orbax_item");
  tc_run r;
  TC_PEER(&r, "orbax", item);
  tc_run_free(&r);
  TC_TOOL(&r, "verify", item);
  cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
  cr_assert(strstr(r.out, "note: no _CHECKSUMS"), "%s", r.out);
  cr_assert(strstr(r.out, "2 arrays, 3 chunks"), "%s", r.out);
  tc_run_free(&r);
  /* without checksums, a truncated chunk is still caught by its size */
  char *c = tc_join2(item, "w", "1.0");
  cr_assert_eq(truncate(c, 20), 0);
  TC_TOOL(&r, "verify", item);
  cr_assert_eq(r.status, 1, "%s", r.out);
  cr_assert(strstr(r.out, "array 'w': chunk '1.0' has 20 bytes, expected 64 (truncated)"), "%s",
            r.out);
  tc_run_free(&r);
  free(c);
  free(item);
}

/* Runs verify with stderr on a pseudo-terminal; returns what the terminal received. */
static char *verify_on_tty(const char *path, int *status) {
  int master, slave;
  cr_assert_eq(openpty(&master, &slave, NULL, NULL, NULL), 0, "openpty: %s", strerror(errno));
  fflush(NULL);
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    int devnull = open("/dev/null", O_RDWR);
    dup2(devnull, 0);
    dup2(devnull, 1);
    dup2(slave, 2);
    close(master);
    execl(CKPT_TOOL_PATH, CKPT_TOOL_PATH, "verify", path, (char *)NULL);
    _exit(127);
  }
  close(slave);
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap + 1);
  for (;;) {
    ssize_t got = read(master, buf + n, cap - n);
    if (got <= 0)
      break; /* EIO once the child closed its side */
    n += (size_t)got;
    if (n == cap)
      break;
  }
  buf[n] = '\0';
  close(master);
  int st;
  cr_assert_eq(waitpid(pid, &st, 0), pid);
  *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return buf;
}

Test(cli_verify, progress_bar_only_on_a_terminal) {
  int status;
  char *tty = verify_on_tty(ck, &status);
  cr_assert_eq(status, 0);
  cr_assert(strstr(tty, "verify ckpt ["), "no progress bar on the terminal: %s", tty);
  cr_assert(strstr(tty, "100%"), "%s", tty);
  cr_assert(strchr(tty, '\r'), "%s", tty);
  free(tty);
  tc_run r;
  TC_TOOL(&r, "verify", ck);
  cr_assert_str_eq(r.err, "");
  tc_run_free(&r);
}

Test(cli_verify, item_directories_alone) {
  char *rng = tc_join(dir, "rng");
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_Composite *c = ckpt_composite_new();
  ckpt_NumpyRandomKeySave *n = ckpt_NumpyRandomKeySave_new();
  n->item = calloc(1, sizeof *n->item);
  ckpt_numpy_rng_seed(n->item, 42);
  ckpt_composite_add(c, "np_rng", &n->base, &err);
  tc_save_args(NULL, rng, &c->base);
  /* the whole checkpoint, a top-level item, a nested item: each sound on its own */
  char *item = tc_join(rng, "np_rng"), *nested = tc_join2(rng, "np_rng", "np_random_key");
  char *params = at("params");
  expect(rng, 0, (const char *const[]){"ok (3 items, 4 arrays, 4 chunks", NULL});
  expect(item, 0, (const char *const[]){"ok (2 items, 4 arrays", NULL});
  expect(nested, 0, (const char *const[]){"ok (1 item, 4 arrays", NULL});
  expect(params, 0, (const char *const[]){"ok (1 item, 5 arrays, 6 chunks", NULL});
  /* and the MT19937 key reads back as numpy's seed(42) state starts */
  tc_run r;
  TC_TOOL(&r, "cat", rng, "np_rng/np_random_key/0");
  cr_assert_str_eq(r.out, "MT19937\n", "%s", r.err);
  tc_run_free(&r);
  TC_TOOL(&r, "cat", "--json", rng, "np_rng/np_random_key/1");
  cr_assert(strstr(r.out, "\"shape\": [624], \"values\": [42, 3107752595, 1895908407,"), "%s",
            r.out);
  tc_run_free(&r);
  free(params);
  free(nested);
  free(item);
  free(rng);
}

/* The random-key handlers' metadata file ({"legacy": bool}) is in the checkpoint's manifest like
 * every file ckpt writes: any edit of it is damage verify names. */
Test(cli_verify, edited_random_key_metadata) {
  char *rng = tc_join(dir, "rng");
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_Composite *c = ckpt_composite_new();
  ckpt_NumpyRandomKeySave *n = ckpt_NumpyRandomKeySave_new();
  n->item = calloc(1, sizeof *n->item);
  ckpt_numpy_rng_seed(n->item, 7);
  ckpt_composite_add(c, "np_rng", &n->base, &err);
  tc_save_args(NULL, rng, &c->base);
  expect(rng, 0, (const char *const[]){"ok", NULL});
  char *meta = tc_join(rng, "np_rng/np_random_key_metadata/metadata");
  char *text = tc_read(meta, NULL);
  cr_assert_str_eq(text, "{\"legacy\": true}");
  /* The same value in other bytes: parsers accept it, only the manifest's CRC can tell. */
  const char *edited = "{\"legacy\":  true}";
  tc_write(meta, edited, strlen(edited));
  expect(rng, 1, (const char *const[]){"np_rng/np_random_key_metadata/metadata", NULL});
  free(text);
  free(meta);
  free(rng);
}

Test(cli_verify, unfinalized_step_is_skipped_not_damaged) {
  char *m = tc_join(dir, "run");
  tc_save_step(m, NULL, 0, 1, 0.5);
  /* a commit-file-mode save that never finished: no tmp name, no marker, no commit time */
  char *s2 = tc_join(m, "2");
  cr_assert_eq(mkdir(s2, 0755), 0);
  char *meta = tc_join(s2, "_CHECKPOINT_METADATA");
  const char *text = "{\"init_timestamp_nsecs\": 1}";
  tc_write(meta, text, strlen(text));
  tc_run r;
  TC_TOOL(&r, "verify", m);
  cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
  cr_assert(strstr(r.out, "/run/2: skipped: not finalized"), "%s", r.out);
  cr_assert(strstr(r.out, "1 checkpoint verified, 0 damaged"), "%s", r.out);
  tc_run_free(&r);
  TC_TOOL(&r, "ls", m);
  cr_assert(strstr(r.out, "2     2          unfinalized"), "%s", r.out);
  tc_run_free(&r);
  free(meta);
  free(s2);
  free(m);
}
