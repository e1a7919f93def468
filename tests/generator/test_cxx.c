/* test_cxx.c — generated headers (and the runtime headers they include) are C++-includable:
 * each compiles alone in a C++ translation unit without warnings, and a C++ program calling the
 * generated functions links against the C libraries (so every declaration has C linkage) and
 * runs. The C++ compiler is the sibling of the C compiler the project was built with (CKPT_CC:
 * gcc → g++, clang → clang++, cc → c++). */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen_support.h"

#define GEN_DIR CKPT_BUILD_DIR "/gen"

TestSuite(cxx, .fini = gs_cleanup_tmpdirs);

#define CXX_WARN "-Wall -Wextra -Wpedantic -Werror"
#define CXX_INCLUDES \
  "-I" CKPT_SOURCE_DIR "/runtime/include -I" GEN_DIR " $(pkg-config --cflags libcjson libprotobuf-c)"

/* The generated headers of the build: the built-in schema and every example (relative to
 * GEN_DIR), as the examples library compiles them. */
static gs_list generated_headers(void) {
  static const char *const suffix[] = {".ckpt.h", NULL};
  gs_list found = gs_list_files(GEN_DIR, suffix);
  gs_list out = {NULL, 0, 0};
  for (size_t i = 0; i < found.count; i++) {
    if (strncmp(found.items[i], "ckpt/", 5) == 0 || strncmp(found.items[i], "examples/", 9) == 0) {
      gs_list_push(&out, found.items[i]);
      found.items[i] = NULL;
    }
  }
  gs_free_list(&found);
  cr_assert(out.count >= 4, "expected the built-in header and at least 3 example headers in %s",
            GEN_DIR);
  return out;
}

/* Compiles `source` as C++ with the given standard (-fsyntax-only) and fails with the
 * compiler's messages if it does not compile cleanly. */
static void expect_cxx_compiles(const char *dir, const char *name, const char *source,
                                const char *std) {
  char *path = gs_fmt("%s/%s", dir, name);
  gs_write_file(path, source);
  char *cxx = gs_cxx_for(CKPT_CC);
  char *cmd = gs_fmt("%s -std=%s " CXX_WARN " -D_GNU_SOURCE " CXX_INCLUDES " -fsyntax-only %s",
                     cxx, std, path);
  gs_result r = gs_sh(dir, NULL, cmd);
  char *what = gs_fmt("C++ (%s, %s) compilation of %s", cxx, std, name);
  gs_expect_success(&r, what);
  free(what);
  gs_result_free(&r);
  free(cmd);
  free(cxx);
  free(path);
}

Test(cxx, each_generated_header_compiles_alone_as_cxx11) {
  gs_list headers = generated_headers();
  char *dir = gs_mkdtemp("cxx");
  for (size_t i = 0; i < headers.count; i++) {
    /* Included twice: the include guard must hold in C++ too. */
    char *src = gs_fmt("#include \"%s\"\n#include \"%s\"\nint main() { return 0; }\n",
                       headers.items[i], headers.items[i]);
    char *name = gs_fmt("h%zu.cpp", i);
    expect_cxx_compiles(dir, name, src, "c++11");
    free(name);
    free(src);
  }
  gs_rmtree(dir);
  free(dir);
  gs_free_list(&headers);
}

Test(cxx, all_headers_together_compile_as_cxx17) {
  gs_list headers = generated_headers();
  char *dir = gs_mkdtemp("cxx");
  size_t cap = 256;
  for (size_t i = 0; i < headers.count; i++) cap += strlen(headers.items[i]) + 16;
  char *src = calloc(1, cap);
  cr_assert(src != NULL);
  strcat(src, "#include <ckpt/ckpt.h>\n");
  for (size_t i = 0; i < headers.count; i++) {
    strcat(src, "#include \"");
    strcat(src, headers.items[i]);
    strcat(src, "\"\n");
  }
  strcat(src, "int main() { return 0; }\n");
  expect_cxx_compiles(dir, "all.cpp", src, "c++17");
  free(src);
  gs_rmtree(dir);
  free(dir);
  gs_free_list(&headers);
}

/* A C++ program using the generated API of the demo schema: init with defaults, deep equality,
 * args allocation and casting, registration through the real registry. Linking proves the
 * generated declarations have C linkage; running proves they work from C++. */
static const char cxx_program[] =
    "#include <cstdio>\n"
    "#include <cstring>\n"
    "#include <ckpt/ckpt.h>\n"
    "#include \"examples/demo/train_state.ckpt.h\"\n"
    "#define CHECK(c) do { if (!(c)) { std::printf(\"FAILED: %s\\n\", #c); return 1; } } "
    "while (0)\n"
    "int main() {\n"
    "  demo_Hparams a, b;\n"
    "  CHECK(demo_Hparams_init(&a) == CKPT_OK);\n"
    "  CHECK(demo_Hparams_init(&b) == CKPT_OK);\n"
    "  CHECK(a.batch_size == 32 && a.learning_rate == 0.001);\n"
    "  CHECK(a.optimizer != nullptr && std::strcmp(a.optimizer, \"adam\") == 0);\n"
    "  CHECK(demo_Hparams_equal(&a, &b));\n"
    "  b.batch_size = 64;\n"
    "  CHECK(!demo_Hparams_equal(&a, &b));\n"
    "  demo_Hparams_free(&a);\n"
    "  demo_Hparams_free(&b);\n"
    "  demo_TrainStateSave *save = demo_TrainStateSave_new();\n"
    "  CHECK(save != nullptr);\n"
    "  CHECK(demo_TrainStateSave_cast(&save->base) == save);\n"
    "  CHECK(demo_TrainStateRestore_cast(&save->base) == nullptr);\n"
    "  ckpt_error err = CKPT_ERROR_INIT;\n"
    "  CHECK(demo_register(&err) == CKPT_OK);\n"
    "  const ckpt_handler_desc *h = nullptr;\n"
    "  CHECK(ckpt_get_registered_handler(&demo_TrainStateSave_desc, &h, &err) == CKPT_OK);\n"
    "  CHECK(h == &demo_TrainStateHandler_desc);\n"
    "  ckpt_args_delete(&save->base);\n"
    "  std::printf(\"cxx ok\\n\");\n"
    "  return 0;\n"
    "}\n";

Test(cxx, cxx_program_links_and_runs) {
  char *dir = gs_mkdtemp("cxxrun");
  char *src = gs_fmt("%s/main.cpp", dir);
  gs_write_file(src, cxx_program);
  char *cxx = gs_cxx_for(CKPT_CC);
  /* Link flags from scripts/ckpt.pc.in, the one list of libckpt's dependencies (what
   * `make install` turns into ckpt.pc): the static libraries by path, then the rest. */
  char *cmd = gs_fmt(
      "sed -e 's|@PREFIX@|/nonexistent|g' -e 's|@VERSION@|0|g' " CKPT_SOURCE_DIR
      "/scripts/ckpt.pc.in > ckpt.pc && "
      "libs=$(PKG_CONFIG_PATH=. pkg-config --static --libs-only-l ckpt | sed 's/-lckpt //') && "
      "%s -std=c++11 " CXX_WARN " -D_GNU_SOURCE " CXX_INCLUDES " " GS_SAN_FLAGS
      " -o main main.cpp " CKPT_BUILD_DIR "/lib/libckpt_examples.a " CKPT_BUILD_DIR
      "/lib/libckpt.a $libs && ./main",
      cxx);
  gs_result r = gs_sh(dir, NULL, cmd);
  gs_expect_success(&r, "building and running a C++ program against the generated code");
  cr_assert(strstr(r.output, "cxx ok") != NULL, "unexpected output:\n%s", r.output);
  gs_result_free(&r);
  free(cmd);
  free(cxx);
  free(src);
  gs_rmtree(dir);
  free(dir);
}
