/* test_install.c — `make install PREFIX=<tmp>` produces an installation a user can build against
 * with nothing but pkg-config: the out-of-tree project in tests/fixtures/out_of_tree/ (two
 * schemas, one importing the other and the installed built-in schema; a main.c that saves and
 * restores through the generated handler) is built with its own Makefile (the installed make
 * fragment, found through pkg-config) and with CMake (the installed CkptGen.cmake), each linked
 * against the shared and the static libckpt, and run.
 *
 * The installation comes from the build this test belongs to (CKPT_BUILD_DIR), built with the
 * same compiler and sanitizer settings; concurrent installs from one build are serialised by a
 * lock so two make processes never race in one build directory. */
#include <criterion/criterion.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "../generator/gen_support.h"
#include "ckpt/desc.h"

#define FIXTURE_DIR CKPT_SOURCE_DIR "/tests/fixtures/out_of_tree"

TestSuite(install, .fini = gs_cleanup_tmpdirs);

#ifdef GS_SANITIZED
#define SAN_MAKE_ARG "SAN=1"
#else
#define SAN_MAKE_ARG "SAN="
#endif

/* A nested make must not inherit the jobserver or command-line variables of a make that may be
 * running this test (`make test`): it gets exactly the variables given on its command line. */
static const char *const clean_make_env[] = {"MAKEFLAGS", "MFLAGS", "MAKELEVEL",
                                             "MAKEOVERRIDES", "GNUMAKEFLAGS", NULL};

/* Installs the build into a fresh prefix; the caller removes it and frees the string. */
static char *install_into_tmp_prefix(void) {
  char *prefix = gs_mkdtemp("prefix");
  char *lock_path = gs_fmt("%s/.install-test.lock", CKPT_BUILD_DIR);
  int lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  cr_assert(lock >= 0, "open %s", lock_path);
  cr_assert_eq(flock(lock, LOCK_EX), 0);
  /* BUILD spelled as the outer build spelled it (relative to the source directory when it is
   * inside it), so that make matches the targets of its dependency files. */
  const char *build = CKPT_BUILD_DIR;
  size_t src_len = strlen(CKPT_SOURCE_DIR);
  if (strncmp(build, CKPT_SOURCE_DIR, src_len) == 0 && build[src_len] == '/') {
    build += src_len + 1;
  }
  char *cmd = gs_fmt("make -s -C '%s' BUILD='%s' CC='%s' " SAN_MAKE_ARG " PREFIX='%s' install",
                     CKPT_SOURCE_DIR, build, CKPT_CC, prefix);
  gs_result r = gs_sh(NULL, clean_make_env, cmd);
  flock(lock, LOCK_UN);
  close(lock);
  gs_expect_success(&r, "make install");
  gs_result_free(&r);
  free(cmd);
  free(lock_path);
  return prefix;
}

/* Environment of a user's build: pkg-config looks in the prefix, the compiler is the project's,
 * and under sanitizers the program is instrumented like the library it links. */
typedef struct user_env {
  char *vars[8];
  const char *list[9];
} user_env;

static void user_env_init(user_env *e, const char *prefix) {
  memset(e, 0, sizeof *e);
  e->vars[0] = gs_fmt("PKG_CONFIG_PATH=%s/lib/pkgconfig", prefix);
  e->vars[1] = gs_fmt("CC=%s", CKPT_CC);
  e->vars[2] = gs_fmt("CFLAGS=-O1 -g %s", GS_SAN_FLAGS);
  e->vars[3] = gs_fmt("LDFLAGS=%s", GS_SAN_FLAGS);
  size_t n = 0;
  for (size_t i = 0; i < 4; i++) e->list[n++] = e->vars[i];
  for (size_t i = 0; clean_make_env[i] != NULL; i++) {
    if (n < 8) e->list[n++] = clean_make_env[i];
  }
  e->list[n] = NULL;
}

static void user_env_free(user_env *e) {
  for (size_t i = 0; i < 8; i++) free(e->vars[i]);
}

static char *copy_fixture(const char *tag) {
  char *work = gs_mkdtemp(tag);
  char *cmd = gs_fmt("cp -R '%s/.' '%s/'", FIXTURE_DIR, work);
  gs_result r = gs_sh(NULL, NULL, cmd);
  gs_expect_success(&r, "copying the out-of-tree fixture");
  gs_result_free(&r);
  free(cmd);
  return work;
}

/* Runs a built program and checks it reports success. ld_path: LD_LIBRARY_PATH or NULL. */
static void expect_program_ok(const char *program, const char *ld_path) {
  char *env_ld = ld_path ? gs_fmt("LD_LIBRARY_PATH=%s", ld_path) : gs_fmt("LD_LIBRARY_PATH");
  const char *const env[] = {env_ld, NULL};
  char *argv[] = {(char *)program, NULL};
  gs_result r = gs_run(NULL, argv, env);
  gs_expect_success(&r, program);
  cr_assert(strstr(r.output, "out-of-tree ok") != NULL, "%s printed:\n%s", program, r.output);
  gs_result_free(&r);
  free(env_ld);
}

/* True when the ELF file lists a NEEDED entry containing name. */
static bool needs_library(const char *program, const char *name) {
  char *cmd = gs_fmt("readelf -d '%s'", program);
  gs_result r = gs_sh(NULL, NULL, cmd);
  gs_expect_success(&r, "readelf");
  bool found = false;
  for (char *line = strtok(r.output, "\n"); line != NULL; line = strtok(NULL, "\n")) {
    if (strstr(line, "(NEEDED)") != NULL && strstr(line, name) != NULL) found = true;
  }
  gs_result_free(&r);
  free(cmd);
  return found;
}

Test(install, installs_every_part, .timeout = 600) {
  char *prefix = install_into_tmp_prefix();
  static const char *const parts[] = {
      "bin/ckptgen",
      "include/ckpt/ckpt.h",
      "include/ckpt/desc.h",
      "include/ckpt/builtin.ckpt.h",
      "lib/libckpt.a",
      "lib/libckpt.so",
      "lib/libckpt.so.0",
      "lib/pkgconfig/ckpt.pc",
      "share/ckpt/ckptgen.mk",
      "share/ckpt/schemas/ckpt/builtin.ckpt",
      "lib/cmake/ckpt/CkptGen.cmake",
  };
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
    char *path = gs_fmt("%s/%s", prefix, parts[i]);
    cr_assert(gs_exists(path), "make install did not install %s", parts[i]);
    free(path);
  }

  user_env env;
  user_env_init(&env, prefix);
  gs_result r = gs_sh(NULL, env.list, "pkg-config --modversion ckpt");
  gs_expect_success(&r, "pkg-config --modversion ckpt");
  cr_assert_eq(strncmp(r.output, CKPT_VERSION_STRING "\n", strlen(CKPT_VERSION_STRING) + 1), 0,
               "version %s, expected " CKPT_VERSION_STRING, r.output);
  gs_result_free(&r);

  r = gs_sh(NULL, env.list, "pkg-config --cflags --libs ckpt");
  gs_expect_success(&r, "pkg-config --cflags --libs ckpt");
  char *want_inc = gs_fmt("-I%s/include", prefix);
  cr_assert(strstr(r.output, want_inc) != NULL, "cflags: %s", r.output);
  cr_assert(strstr(r.output, "-lckpt") != NULL, "libs: %s", r.output);
  cr_assert(strstr(r.output, "-lcjson") != NULL, "the public API uses cJSON: %s", r.output);
  cr_assert(strstr(r.output, "-lzstd") == NULL, "zstd is private to libckpt: %s", r.output);
  gs_result_free(&r);

  r = gs_sh(NULL, env.list, "pkg-config --static --libs ckpt");
  gs_expect_success(&r, "pkg-config --static --libs ckpt");
  static const char *const static_libs[] = {"-lckpt", "-lcjson", "-lprotobuf-c", "-lzstd",
                                            "-lisal", "-lblosc", "-lz", "-lmsgpackc", "-lpthread",
                                            "-lm"};
  for (size_t i = 0; i < sizeof static_libs / sizeof static_libs[0]; i++) {
    cr_assert(strstr(r.output, static_libs[i]) != NULL, "static libs lack %s: %s",
              static_libs[i], r.output);
  }
  gs_result_free(&r);

  r = gs_sh(NULL, env.list, "pkg-config --variable=ckptgen ckpt");
  char *want_gen = gs_fmt("%s/bin/ckptgen\n", prefix);
  cr_assert_str_eq(r.output, want_gen);
  gs_result_free(&r);

  /* the installed generator runs and knows its version */
  char *gen = gs_fmt("%s/bin/ckptgen", prefix);
  char *argv[] = {gen, (char *)"--version", NULL};
  r = gs_run(NULL, argv, NULL);
  gs_expect_success(&r, "ckptgen --version");
  cr_assert(strstr(r.output, CKPT_VERSION_STRING) != NULL, "%s", r.output);
  gs_result_free(&r);

  free(gen);
  free(want_gen);
  free(want_inc);
  user_env_free(&env);
  gs_rmtree(prefix);
  free(prefix);
}

Test(install, out_of_tree_make_project, .timeout = 600) {
  char *prefix = install_into_tmp_prefix();
  char *work = copy_fixture("oot-make");
  user_env env;
  user_env_init(&env, prefix);

  gs_result r = gs_sh(work, env.list, "make");
  gs_expect_success(&r, "building the out-of-tree project with make");
  gs_result_free(&r);

  char *gen_c = gs_fmt("%s/gen/app/run.ckpt.c", work);
  char *gen_d = gs_fmt("%s/gen/app/run.ckpt.d", work);
  cr_assert(gs_exists(gen_c), "the pattern rule generated %s", gen_c);
  cr_assert(gs_exists(gen_d), "ckptgen wrote the depfile %s", gen_d);

  char *app = gs_fmt("%s/oot_app", work);
  char *app_static = gs_fmt("%s/oot_app_static", work);
  char *libdir = gs_fmt("%s/lib", prefix);
  cr_assert(needs_library(app, "libckpt.so"), "oot_app links the shared libckpt");
  cr_assert_not(needs_library(app_static, "libckpt"), "oot_app_static links libckpt.a");
  expect_program_ok(app, libdir);
  expect_program_ok(app_static, NULL);

  /* Up to date now; editing the imported schema makes the importer's outputs stale too (the
   * depfile at work), and the generated sources survive the build (not intermediate). */
  r = gs_sh(work, env.list, "make -q all");
  cr_assert_eq(r.status, 0, "a second make has nothing to do:\n%s", r.output);
  gs_result_free(&r);
  r = gs_sh(work, env.list, "touch schemas/app/model.ckpt && make -n all");
  cr_assert_eq(r.status, 0, "%s", r.output);
  cr_assert(strstr(r.output, "schemas/app/run.ckpt") != NULL,
            "run.ckpt imports model.ckpt, so it is regenerated:\n%s", r.output);
  gs_result_free(&r);

  free(libdir);
  free(app_static);
  free(app);
  free(gen_d);
  free(gen_c);
  user_env_free(&env);
  gs_rmtree(work);
  gs_rmtree(prefix);
  free(work);
  free(prefix);
}

Test(install, out_of_tree_cmake_project, .timeout = 600) {
  gs_result probe = gs_sh(NULL, NULL, "command -v cmake");
  bool have_cmake = probe.status == 0;
  gs_result_free(&probe);
  if (!have_cmake) {
    cr_skip_test("cmake is not installed");
  }
  char *prefix = install_into_tmp_prefix();
  char *work = copy_fixture("oot-cmake");
  user_env env;
  user_env_init(&env, prefix);

  char *cmd = gs_fmt("cmake -S . -B build -DCMAKE_C_COMPILER='%s' -DCMAKE_C_FLAGS='%s' "
                     "-DCMAKE_EXE_LINKER_FLAGS='%s' && cmake --build build -j 2",
                     CKPT_CC, GS_SAN_FLAGS, GS_SAN_FLAGS);
  gs_result r = gs_sh(work, env.list, cmd);
  gs_expect_success(&r, "configuring and building the out-of-tree project with CMake");
  gs_result_free(&r);

  char *gen_h = gs_fmt("%s/build/app/run.ckpt.h", work);
  cr_assert(gs_exists(gen_h), "ckpt_generate wrote %s", gen_h);
  char *app = gs_fmt("%s/build/oot_app", work);
  char *app_static = gs_fmt("%s/build/oot_app_static", work);
  char *libdir = gs_fmt("%s/lib", prefix);
  cr_assert(needs_library(app, "libckpt.so"));
  cr_assert_not(needs_library(app_static, "libckpt"));
  expect_program_ok(app, libdir);
  expect_program_ok(app_static, NULL);

  free(libdir);
  free(app_static);
  free(app);
  free(gen_h);
  free(cmd);
  user_env_free(&env);
  gs_rmtree(work);
  gs_rmtree(prefix);
  free(work);
  free(prefix);
}

/* With Open MPI present, `make install` also installs libckpt_mpi, ckpt/mpi.h and ckpt-mpi.pc,
 * and a user's MPI program builds against them with pkg-config alone and runs on two ranks. */
Test(install, installs_libckpt_mpi, .timeout = 600) {
  if (!CKPT_HAVE_MPI || CKPT_MPIRUN[0] == '\0')
    cr_skip_test("ckpt was built without Open MPI: libckpt_mpi is not installed (skipped)");
  char *prefix = install_into_tmp_prefix();
  static const char *const parts[] = {"include/ckpt/mpi.h", "include/ckpt/process_group.h",
                                      "lib/libckpt_mpi.a", "lib/libckpt_mpi.so",
                                      "lib/libckpt_mpi.so.0", "lib/pkgconfig/ckpt-mpi.pc"};
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
    char *path = gs_fmt("%s/%s", prefix, parts[i]);
    cr_assert(gs_exists(path), "make install did not install %s", parts[i]);
    free(path);
  }
  user_env env;
  user_env_init(&env, prefix);
  gs_result r = gs_sh(NULL, env.list, "pkg-config --cflags --libs ckpt-mpi");
  gs_expect_success(&r, "pkg-config --cflags --libs ckpt-mpi");
  static const char *const flags[] = {"-lckpt_mpi", "-lckpt", "-lmpi", "-lcjson"};
  for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
    cr_assert(strstr(r.output, flags[i]) != NULL, "ckpt-mpi lacks %s: %s", flags[i], r.output);
  gs_result_free(&r);

  char *work = gs_mkdtemp("mpi-user");
  char *src = gs_fmt("%s/app.c", work);
  FILE *f = fopen(src, "w");
  cr_assert_not_null(f);
  fputs("#include <stdio.h>\n#include <ckpt/mpi.h>\n"
        "int main(int argc, char **argv) {\n"
        "  int provided, rank;\n"
        "  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);\n"
        "  MPI_Comm_rank(MPI_COMM_WORLD, &rank);\n"
        "  ckpt_error err = CKPT_ERROR_INIT;\n"
        "  ckpt_process_group *pg = NULL;\n"
        "  ckpt_status st = ckpt_process_group_mpi(MPI_COMM_WORLD, &pg, &err);\n"
        "  if (st == CKPT_OK) st = ckpt_process_group_agree(pg, CKPT_OK, &err);\n"
        "  if (st == CKPT_OK && ckpt_process_group_size(pg) == 2) printf(\"mpi install ok %d\\n\", rank);\n"
        "  else printf(\"failed: %s\\n\", err.message);\n"
        "  ckpt_process_group_free(pg);\n"
        "  MPI_Finalize();\n"
        "  return st == CKPT_OK ? 0 : 1;\n}\n",
        f);
  fclose(f);
  char *cmd = gs_fmt("$CC $CFLAGS -o '%s/app' '%s' $LDFLAGS $(pkg-config --cflags --libs ckpt-mpi)",
                     work, src);
  r = gs_sh(work, env.list, cmd);
  gs_expect_success(&r, "building an MPI program against the installed ckpt-mpi");
  gs_result_free(&r);
  /* LeakSanitizer is off in this one program: Open MPI unloads its components at finalize
   * (tests/mpi checks ckpt's leaks before that point). */
  char *run = gs_fmt("LD_LIBRARY_PATH='%s/lib' ASAN_OPTIONS=detect_leaks=0 "
                     "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
                     "'%s' --oversubscribe -np 2 '%s/app'",
                     prefix, CKPT_MPIRUN, work);
  r = gs_sh(work, NULL, run);
  gs_expect_success(&r, "the installed MPI program on two ranks");
  cr_assert(strstr(r.output, "mpi install ok 0") && strstr(r.output, "mpi install ok 1"), "%s",
            r.output);
  gs_result_free(&r);
  free(run);
  free(cmd);
  free(src);
  gs_rmtree(work);
  free(work);
  user_env_free(&env);
  gs_rmtree(prefix);
  free(prefix);
}
