/* tests/bench/test_bench_state.c — pins what every figure of `make bench` rests on: the C
 * programs (bench_common.c) and the Python peers (bench/state.py, run with Debian's python3)
 * generate the same bytes for the same manifest, agree on the fingerprint the orchestrator
 * compares, that the MPI benchmarks' ranks together generate exactly those bytes, and that a
 * malformed manifest stops a benchmark program instead of measuring garbage.
 *
 * bench_common.c belongs to the bench programs, which scripts/bench compiles on its own; it is
 * included here so this suite tests exactly that source without a second build rule. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../bench/bench_common.c"
#include "../../bench/bench_split.c"

static char tmpdir[64];

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static void remove_tmpdir(void) {
  if (tmpdir[0] != '\0')
    nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  tmpdir[0] = '\0';
}

static void make_tmpdir(void) {
  strcpy(tmpdir, "/tmp/ckpt-bench-test-XXXXXX");
  cr_assert_not_null(mkdtemp(tmpdir));
  /* The tests that expect exit(1) never reach .fini. */
  atexit(remove_tmpdir);
}

static char *tmp_path(const char *name) {
  static char buf[4][256];
  static int next;
  char *p = buf[next++ % 4];
  snprintf(p, sizeof buf[0], "%s/%s", tmpdir, name);
  return p;
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f, "cannot create %s", path);
  fputs(text, f);
  fclose(f);
}

/* Arrays straddling the generator's 1 MiB block (with and without a tail), tiny ones, a
 * 0-d scalar and a 3-d array: every path through fill() in both languages. */
static const char *manifest_text =
    "ckpt-bench-state 1 mixed 6\n"
    "a.big 11 float32 2 600 1000\n"
    "a.exact 12 float32 1 262144\n"
    "b.tiny 13 float32 1 3\n"
    "b.scalar 14 float32 0\n"
    "c.cube 15 float32 3 7 9 11\n"
    "d.blocks 4000000000 float32 1 524289\n";

/* Runs the Python generator on manifest and writes its bytes (all arrays, in order) to out,
 * its fingerprint to a text file. Returns the exit status. */
static int python_generate(const char *manifest, const char *out, const char *fp_out) {
  char script[1024];
  snprintf(script, sizeof script,
           "import sys; sys.path.insert(0, '%s/bench'); import state\n"
           "name, arrays = state.generate('%s')\n"
           "open('%s', 'wb').write(b''.join(a.tobytes() for _, a in arrays))\n"
           "open('%s', 'w').write(str(state.fingerprint(arrays)))\n",
           CKPT_SOURCE_DIR, manifest, out, fp_out);
  char *script_path = tmp_path("gen.py");
  write_text(script_path, script);
  char cmd[512];
  snprintf(cmd, sizeof cmd, "%s %s", CKPT_PYTHON, script_path);
  return system(cmd);
}

TestSuite(bench_state, .init = make_tmpdir, .fini = remove_tmpdir);

Test(bench_state, c_and_numpy_generate_the_same_bytes) {
  char *manifest = tmp_path("mixed.manifest");
  write_text(manifest, manifest_text);
  bench_state st;
  bench_state_load(manifest, &st);
  cr_assert_eq(st.n_arrays, 6);
  cr_assert_eq(st.arrays[3].ndim, 0);
  cr_assert_eq(st.arrays[3].nbytes, 4);
  bench_state_generate(&st);

  char *py_bytes = tmp_path("py.bin"), *py_fp = tmp_path("py.fp");
  cr_assert_eq(python_generate(manifest, py_bytes, py_fp), 0, "state.py failed");
  FILE *f = fopen(py_bytes, "rb");
  cr_assert_not_null(f);
  for (size_t k = 0; k < st.n_arrays; k++) {
    char *got = malloc(st.arrays[k].nbytes);
    cr_assert_not_null(got);
    cr_assert_eq(fread(got, 1, st.arrays[k].nbytes, f), st.arrays[k].nbytes, "%s short",
                 st.arrays[k].name);
    cr_assert(memcmp(got, st.arrays[k].data, st.arrays[k].nbytes) == 0,
              "array %s differs between bench_common.c and state.py", st.arrays[k].name);
    free(got);
  }
  cr_assert_eq(fgetc(f), EOF, "state.py generated more bytes than the manifest describes");
  fclose(f);

  char fp_text[64] = {0};
  f = fopen(py_fp, "r");
  cr_assert_not_null(f);
  cr_assert_not_null(fgets(fp_text, sizeof fp_text, f));
  fclose(f);
  cr_assert_eq(strtoull(fp_text, NULL, 10), bench_state_fingerprint(&st));
  bench_state_free(&st);
}

Test(bench_state, arrays_differ_and_look_like_weights) {
  char *manifest = tmp_path("two.manifest");
  write_text(manifest, "ckpt-bench-state 1 two 2\nx 1 float32 1 524288\ny 2 float32 1 524288\n");
  bench_state st;
  bench_state_load(manifest, &st);
  bench_state_generate(&st);
  const float *x = st.arrays[0].data, *y = st.arrays[1].data;
  /* No two arrays (or the two 1 MiB blocks of one array) share their bytes: a compressor or
   * deduplicating store would otherwise see a state easier than real weights. */
  cr_assert(memcmp(x, y, st.arrays[0].nbytes) != 0);
  cr_assert(memcmp(x, x + BENCH_BASE_WORDS, BENCH_BASE_WORDS * 4) != 0);
  size_t negative = 0;
  for (size_t i = 0; i < 524288; i++) {
    float m = x[i] < 0 ? -x[i] : x[i];
    cr_assert(m >= 0x1p-10f && m < 0x1p-2f, "element %zu = %g outside the weight range", i,
              (double)x[i]);
    negative += x[i] < 0;
  }
  cr_assert(negative > 524288 / 3 && negative < 2 * 524288 / 3, "signs are not mixed");
  bench_state_free(&st);
}

/* The MPI benchmarks (bench_split.h) generate each rank's rows alone with bench_fill_range:
 * the ranks' slices, in rank order, must be the array bench_state_generate makes, for any
 * number of ranks, rows that do not divide evenly, and rows that straddle the generator's
 * 1 MiB blocks. */
Test(bench_state, ranks_slices_put_together_are_the_state) {
  char *manifest = tmp_path("split.manifest");
  /* 7 rows of 100,003 words: every block boundary falls inside a row; 5 rows of 1 word. */
  write_text(manifest, "ckpt-bench-state 1 split 2\nw 11 float32 2 7 100003\nb 12 float32 1 5\n");
  bench_state st;
  bench_state_load(manifest, &st);
  bench_state_generate(&st);
  for (int size = 1; size <= 5; size++) {
    for (size_t k = 0; k < st.n_arrays; k++) {
      size_t covered = 0;
      for (int r = 0; r < size; r++) {
        size_t bytes = 0;
        bench_slice *s = bench_slices_new(&st, size, r, &bytes);
        bench_slices_generate(&st, s);
        cr_assert_eq((size_t)s[k].lo * s[k].row_elems * 4, covered,
                     "rank %d of %d does not start where rank %d ended", r, size, r - 1);
        cr_assert(memcmp((const char *)st.arrays[k].data + covered, s[k].data, s[k].nbytes) == 0,
                  "rank %d of %d holds other bytes of %s than the whole state", r, size,
                  st.arrays[k].name);
        covered += s[k].nbytes;
        bench_slices_free(&st, s);
      }
      cr_assert_eq(covered, st.arrays[k].nbytes, "%d ranks do not cover %s", size,
                   st.arrays[k].name);
    }
  }
  bench_state_free(&st);
}

Test(bench_state, manifest_counts_its_bytes) {
  char *manifest = tmp_path("sum.manifest");
  write_text(manifest, "ckpt-bench-state 1 sum 2\na 1 float32 2 3 5\nb 2 float32 1 7\n");
  bench_state st;
  bench_state_load(manifest, &st);
  cr_assert_str_eq(st.name, "sum");
  cr_assert_eq(st.total_bytes, (15 + 7) * 4);
  cr_assert_eq(st.arrays[0].shape[1], 5);
  cr_assert_str_eq(st.arrays[1].name, "b");
  bench_state_free(&st);
}

/* A malformed manifest must stop the program (exit status 1, a message naming file and line),
 * never produce figures for a state other than the one described. */
static void load_text(const char *text) {
  char *manifest = tmp_path("bad.manifest");
  write_text(manifest, text);
  bench_state st;
  bench_state_load(manifest, &st);
}

Test(bench_state, truncated_manifest_exits, .exit_code = 1) {
  load_text("ckpt-bench-state 1 t 3\na 1 float32 1 4\n");
}

Test(bench_state, wrong_header_exits, .exit_code = 1) {
  load_text("ckpt-state 1 t 1\n");
}

Test(bench_state, bad_dimension_exits, .exit_code = 1) {
  load_text("ckpt-bench-state 1 t 1\na 1 float32 2 4 -1\n");
}

Test(bench_state, unsupported_dtype_exits, .exit_code = 1) {
  load_text("ckpt-bench-state 1 t 1\na 1 int8 1 4\n");
}

Test(bench_state, missing_manifest_exits, .exit_code = 1) {
  bench_state st;
  bench_state_load("/nonexistent/ckpt-bench.manifest", &st);
}

Test(bench_state, dotted_names_become_paths) {
  char *p = bench_dots_to_slashes("params.layer_00.attn.wq");
  cr_assert_str_eq(p, "params/layer_00/attn/wq");
  free(p);
}

Test(bench_state, fsync_tree_and_drop_cache_handle_a_real_tree) {
  char *sub = tmp_path("t/a/b");
  bench_mkdirs(sub);
  char *file = tmp_path("t/a/b/f.bin");
  char data[8192];
  memset(data, 7, sizeof data);
  FILE *f = fopen(file, "wb");
  cr_assert_not_null(f);
  cr_assert_eq(fwrite(data, 1, sizeof data, f), sizeof data);
  fclose(f);
  bench_fsync_tree(tmp_path("t"));
  double resident = bench_drop_cache(file);
  /* mincore may be unavailable (-1); otherwise a fraction. */
  cr_assert(resident == -1 || (resident >= 0 && resident <= 1), "resident %g", resident);
  bench_drop_cache_tree(tmp_path("t"));
}

/* Retiring a checkpoint tree frees its data but no inode (bench_retire_tree): every file is
 * truncated to 0 bytes, keeps its inode, and the tree moves aside so its path is free again. */
Test(bench_state, retire_tree_truncates_files_keeps_inodes_and_frees_the_path) {
  char *root = tmp_path("ckpt");
  cr_assert_eq(mkdir(root, 0777), 0);
  char sub[300], file[320], top[320];
  snprintf(sub, sizeof sub, "%s/params.w", root);
  cr_assert_eq(mkdir(sub, 0777), 0);
  snprintf(file, sizeof file, "%s/0", sub);
  snprintf(top, sizeof top, "%s/_METADATA", root);
  write_text(file, "chunk bytes");
  write_text(top, "{}");
  struct stat before, after;
  cr_assert_eq(stat(file, &before), 0);

  bench_retire_tree(root);

  struct stat gone;
  cr_assert_neq(stat(root, &gone), 0, "%s should have moved aside", root);
  DIR *d = opendir(tmpdir);
  cr_assert_not_null(d);
  char moved[600] = "";
  for (struct dirent *e; (e = readdir(d)) != NULL;)
    if (strncmp(e->d_name, "ckpt.retired-", 13) == 0)
      snprintf(moved, sizeof moved, "%s/%s", tmpdir, e->d_name);
  closedir(d);
  cr_assert_neq(moved[0], '\0', "no ckpt.retired-* beside %s", root);
  char moved_file[700], moved_top[700];
  snprintf(moved_file, sizeof moved_file, "%s/params.w/0", moved);
  snprintf(moved_top, sizeof moved_top, "%s/_METADATA", moved);
  cr_assert_eq(stat(moved_file, &after), 0);
  cr_expect_eq(after.st_ino, before.st_ino, "the chunk file's inode changed");
  cr_expect_eq(after.st_size, 0);
  cr_assert_eq(stat(moved_top, &after), 0);
  cr_expect_eq(after.st_size, 0);
  /* The path can be written again, as the next save op does. */
  cr_expect_eq(mkdir(root, 0777), 0);
}
