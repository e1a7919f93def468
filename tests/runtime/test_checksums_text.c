/* test_checksums_text.c — _CHECKSUMS printed straight from the write plan
 * (storage/checksums_text.h): the file a save leaves is, byte for byte, what the JSON writer
 * (text/json.h, TensorStore's sorted compact layout) writes of the same document, for the zarr
 * and the OCDBT writer: names that need escaping or are not ASCII, parameter names whose sorted
 * order is not the tree's, an array of more than ten chunks along one axis ("10.0" sorts before
 * "2.0"), an empty array (no entry), a string leaf (_strings.json listed). */
#include "test_pytree_util.h"

#include "storage/zarr_io.h"
#include "text/json.h"

/* A tree whose sorted parameter names differ from its order; "big" has 12 chunks of one row. */
static ckpt_tree *awkward_tree(void) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *t = ckpt_tree_new_dict();
  ckpt_tree *a = ckpt_tree_new_dict();
  int64_t s1[1] = {3}, s0[1] = {0}, big[2] = {12, 8};
  cr_assert_eq(
      ckpt_tree_dict_set(a, "b", ckpt_tree_new_array(pt_array(CKPT_DTYPE_FLOAT32, 1, s1, 1)), &err),
      CKPT_OK);
  cr_assert_eq(ckpt_tree_dict_set(t, "a", a, &err), CKPT_OK);
  const char *names[] = {"a_c",       "x10",         "x2",          "q\"uo\\te",
                         "tab\there", "caf\xc3\xa9", "\xe2\x82\xac"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    cr_assert_eq(ckpt_tree_dict_set(
                     t, names[i],
                     ckpt_tree_new_array(pt_array(CKPT_DTYPE_INT32, 1, s1, (uint32_t)i + 2)), &err),
                 CKPT_OK, "%s", err.message);
  cr_assert_eq(ckpt_tree_dict_set(
                   t, "empty", ckpt_tree_new_array(pt_array(CKPT_DTYPE_FLOAT32, 1, s0, 9)), &err),
               CKPT_OK);
  cr_assert_eq(ckpt_tree_dict_set(
                   t, "big", ckpt_tree_new_array(pt_array(CKPT_DTYPE_FLOAT64, 2, big, 10)), &err),
               CKPT_OK);
  cr_assert_eq(ckpt_tree_dict_set(t, "s", ckpt_tree_new_string("text"), &err), CKPT_OK);
  return t;
}

static void save_and_compare(bool ocdbt) {
  char *dir = pt_tmpdir();
  ckpt_tree *t = awkward_tree();
  ckpt_pytree_leaf_save la = {.param = "big", .chunk_byte_size = 64}; /* one row of 8 doubles */
  ckpt_pytree_save_spec spec;
  memset(&spec, 0, sizeof spec);
  spec.tree = t;
  spec.leaf_args = &la;
  spec.n_leaf_args = 1;
  spec.use_ocdbt = ocdbt;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_pytree_save_sync(NULL, false, dir, &spec, &err), CKPT_OK, "%s", err.message);
  char *path = pt_fmt("%s/%s", dir, CKPT_CHECKSUMS_FILE);
  size_t n = 0;
  char *text = pt_read(path, &n);
  cJSON *doc = NULL;
  cr_assert_eq(ckpt_json_load(text, n, path, &doc, &err), CKPT_OK, "%s", err.message);
  char *again = NULL;
  size_t m = 0;
  cr_assert_eq(ckpt_json_dump_compact(doc, &again, &m, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(m, n, "printed %zu bytes, the JSON writer %zu:\n%s\n%s", n, m, text, again);
  cr_assert(memcmp(text, again, n) == 0, "printed:\n%s\nthe JSON writer:\n%s", text, again);
  /* What it lists: every array with data, each chunk of "big", the metadata files. */
  const cJSON *arrays = cJSON_GetObjectItemCaseSensitive(doc, "arrays");
  cr_assert_eq(cJSON_GetArraySize(arrays), 9, "a.b, seven names, big: not empty");
  cr_assert_null(cJSON_GetObjectItemCaseSensitive(arrays, "empty"));
  const cJSON *b = cJSON_GetObjectItemCaseSensitive(arrays, "big");
  cr_assert_eq(cJSON_GetArraySize(b), 12);
  cr_assert_not_null(cJSON_GetObjectItemCaseSensitive(b, "11.0"));
  cr_assert_str_eq(b->child->string, "0.0");
  cr_assert_str_eq(b->child->next->next->string, "10.0");
  const cJSON *files = cJSON_GetObjectItemCaseSensitive(doc, "files");
  cr_assert_not_null(cJSON_GetObjectItemCaseSensitive(files, "_METADATA"));
  cr_assert_not_null(cJSON_GetObjectItemCaseSensitive(files, "_strings.json"));
  cr_assert_not_null(cJSON_GetObjectItemCaseSensitive(files, "empty/.zarray"));
  cr_assert_not_null(cJSON_GetObjectItemCaseSensitive(files, "q\"uo\\te/.zarray"));
  cr_assert_eq(cJSON_GetObjectItemCaseSensitive(files, "manifest.ocdbt") != NULL, ocdbt);
  /* And the library reads it back: the restore checks every chunk and file against it. */
  pt_roundtrip(dir, t);
  cJSON_Delete(doc);
  free(again);
  free(text);
  free(path);
  ckpt_tree_free(t);
  pt_rmtree(dir);
}

Test(checksums_text, zarr_save_prints_what_the_json_writer_dumps) {
  save_and_compare(false);
}

Test(checksums_text, ocdbt_save_prints_what_the_json_writer_dumps) {
  save_and_compare(true);
}

/* A parameter name that is not UTF-8 cannot be a JSON key: the save fails, naming it, rather
 * than writing a _CHECKSUMS no JSON reader accepts. */
Test(checksums_text, name_not_utf8_fails_the_save) {
  for (int ocdbt = 0; ocdbt < 2; ocdbt++) {
    char *dir = pt_tmpdir();
    ckpt_error err = CKPT_ERROR_INIT;
    ckpt_tree *t = ckpt_tree_new_dict();
    int64_t s1[1] = {3};
    cr_assert_eq(
        ckpt_tree_dict_set(t, "bad\xff",
                           ckpt_tree_new_array(pt_array(CKPT_DTYPE_FLOAT32, 1, s1, 1)), &err),
        CKPT_OK, "%s", err.message);
    ckpt_pytree_save_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.tree = t;
    spec.use_ocdbt = ocdbt;
    cr_assert_eq(ckpt_pytree_save_sync(NULL, false, dir, &spec, &err), CKPT_EINVAL);
    cr_assert(strstr(err.message, "UTF-8") != NULL, "%s", err.message);
    ckpt_tree_free(t);
    pt_rmtree(dir);
  }
}
