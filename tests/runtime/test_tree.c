/* test_tree.c — ckpt_tree: building (sorted dict keys, NULL children reported as ENOMEM),
 * look-ups by path (keys containing '.'), walking, clone/equal, and leaf accessors. */
#include <criterion/criterion.h>
#include <string.h>

#include "ckpt/ckpt.h"

static ckpt_tree *sample(void) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *t = ckpt_tree_new_dict();
  ckpt_tree *opt = ckpt_tree_new_list();
  ckpt_tree_append(opt, ckpt_tree_new_float(CKPT_DTYPE_FLOAT32, 0.5), &err);
  ckpt_tree_append(opt, ckpt_tree_new_string("adam"), &err);
  ckpt_tree_append(opt, ckpt_tree_new_tuple(), &err);
  ckpt_tree_dict_set(t, "opt", opt, &err);
  ckpt_tree_dict_set(t, "b", ckpt_tree_new_int(CKPT_DTYPE_INT32, -3), &err);
  ckpt_tree_dict_set(t, "a.b", ckpt_tree_new_none(), &err);
  int64_t shape[1] = {3};
  ckpt_array *arr = NULL;
  ckpt_array_new(CKPT_DTYPE_UINT8, 1, shape, &arr, &err);
  ((unsigned char *)ckpt_array_data(arr))[1] = 9;
  ckpt_tree *a = ckpt_tree_new_dict();
  ckpt_tree_dict_set(a, "b", ckpt_tree_new_array(arr), &err);
  ckpt_tree_dict_set(t, "a", a, &err);
  ckpt_tree_dict_set(t, "p", ckpt_tree_new_placeholder(), &err);
  ckpt_tree_dict_set(t, "raw", ckpt_tree_new_bytes("xy", 2), &err);
  cr_assert_eq(err.code, CKPT_OK, "%s", err.message);
  return t;
}

Test(tree, dict_keys_sorted_and_replaced) {
  ckpt_tree *t = sample();
  cr_assert_eq(ckpt_tree_count(t), 6);
  const char *want[] = {"a", "a.b", "b", "opt", "p", "raw"};
  for (size_t i = 0; i < 6; i++)
    cr_assert_str_eq(ckpt_tree_key(t, i), want[i]);
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_tree_dict_set(t, "b", ckpt_tree_new_int(CKPT_DTYPE_INT32, 4), &err), CKPT_OK);
  cr_assert_eq(ckpt_tree_count(t), 6);
  ckpt_scalar s;
  cr_assert(ckpt_tree_scalar(ckpt_tree_dict_get(t, "b"), &s));
  cr_assert_eq(s.v.i, 4);
  cr_assert(ckpt_tree_dict_remove(t, "p"));
  cr_assert(!ckpt_tree_dict_remove(t, "p"));
  cr_assert_eq(ckpt_tree_count(t), 5);
  ckpt_tree_free(t);
}

Test(tree, null_children_are_enomem) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *t = ckpt_tree_new_dict();
  cr_assert_eq(ckpt_tree_dict_set(t, "x", NULL, &err), CKPT_ENOMEM);
  cr_assert(strstr(err.message, "'x'") != NULL);
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_tree_append(t, ckpt_tree_new_none(), &err), CKPT_EINVAL, "not a sequence");
  ckpt_error_clear(&err);
  ckpt_tree *l = ckpt_tree_new_list();
  cr_assert_eq(ckpt_tree_append(l, NULL, &err), CKPT_ENOMEM);
  cr_assert_null(ckpt_tree_new_array(NULL));
  ckpt_tree_free(l);
  ckpt_tree_free(t);
}

Test(tree, get_by_path) {
  ckpt_tree *t = sample();
  cr_assert_eq(ckpt_tree_kind(ckpt_tree_get(t, "a.b")), CKPT_NODE_NONE,
               "a key equal to the whole path wins over the nested a -> b");
  cr_assert_eq(ckpt_tree_kind(ckpt_tree_get(t, "opt.1")), CKPT_NODE_STRING);
  cr_assert_str_eq(ckpt_tree_string(ckpt_tree_get(t, "opt.1")), "adam");
  cr_assert_null(ckpt_tree_get(t, "opt.3"));
  cr_assert_null(ckpt_tree_get(t, "opt.01"), "no leading zeros");
  cr_assert_null(ckpt_tree_get(t, "nope"));
  cr_assert_eq(ckpt_tree_get(t, ""), t);
  ckpt_tree_free(t);
}

Test(tree, dotted_keys_backtrack) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *t = ckpt_tree_new_dict();
  ckpt_tree *x = ckpt_tree_new_dict();
  ckpt_tree_dict_set(x, "y", ckpt_tree_new_int(CKPT_DTYPE_INT8, 1), &err);
  ckpt_tree_dict_set(t, "x", x, &err);
  ckpt_tree *xy = ckpt_tree_new_dict();
  ckpt_tree_dict_set(xy, "z", ckpt_tree_new_int(CKPT_DTYPE_INT8, 2), &err);
  ckpt_tree_dict_set(t, "x.y", xy, &err);
  ckpt_scalar s;
  cr_assert(ckpt_tree_scalar(ckpt_tree_get(t, "x.y.z"), &s), "found through the key 'x.y'");
  cr_assert_eq(s.v.i, 2);
  cr_assert_eq(ckpt_tree_kind(ckpt_tree_get(t, "x.y")), CKPT_NODE_DICT, "the exact key wins");
  ckpt_tree_free(t);
}

typedef struct walk_log {
  char lines[16][64];
  int n;
} walk_log;

static ckpt_status visit(void *ctx, const char *const *path, size_t depth, const ckpt_tree *node,
                         ckpt_error *err) {
  (void)err;
  walk_log *w = ctx;
  char *l = w->lines[w->n++];
  l[0] = '\0';
  for (size_t i = 0; i < depth; i++) {
    strcat(l, path[i]);
    strcat(l, "/");
  }
  strcat(l, ckpt_node_kind_name(ckpt_tree_kind(node)));
  return CKPT_OK;
}

Test(tree, walk_in_key_order_with_empty_nodes) {
  ckpt_tree *t = sample();
  walk_log w;
  memset(&w, 0, sizeof w);
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_tree_walk(t, visit, &w, &err), CKPT_OK);
  const char *want[] = {"a/b/array",    "a.b/None",    "b/scalar",      "opt/0/scalar",
                        "opt/1/string", "opt/2/tuple", "p/placeholder", "raw/bytes"};
  cr_assert_eq(w.n, 8);
  for (int i = 0; i < 8; i++)
    cr_assert_str_eq(w.lines[i], want[i]);
  ckpt_tree_free(t);
}

static ckpt_status stop_at_second(void *ctx, const char *const *path, size_t depth,
                                  const ckpt_tree *node, ckpt_error *err) {
  (void)path;
  (void)depth;
  (void)node;
  int *n = ctx;
  if (++*n == 2)
    return ckpt_error_set(err, CKPT_ECANCELED, "stop");
  return CKPT_OK;
}

Test(tree, walk_stops_on_error) {
  ckpt_tree *t = sample();
  int n = 0;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_tree_walk(t, stop_at_second, &n, &err), CKPT_ECANCELED);
  cr_assert_eq(n, 2);
  ckpt_tree_free(t);
}

Test(tree, clone_equal_and_leaves) {
  ckpt_tree *t = sample();
  ckpt_tree *c = ckpt_tree_clone(t);
  cr_assert(ckpt_tree_equal(t, c));
  const void *data;
  size_t len;
  cr_assert(ckpt_tree_bytes(ckpt_tree_get(c, "raw"), &data, &len));
  cr_assert_eq(len, 2);
  cr_assert_eq(memcmp(data, "xy", 2), 0);
  ckpt_array *arr = ckpt_tree_array(ckpt_tree_dict_get(ckpt_tree_dict_get(c, "a"), "b"));
  cr_assert_not_null(arr);
  ((unsigned char *)ckpt_array_data(arr))[2] = 1;
  cr_assert(!ckpt_tree_equal(t, c), "array bytes compared");
  ckpt_tree_free(c);
  c = ckpt_tree_clone(t);
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree_dict_set(c, "b", ckpt_tree_new_int(CKPT_DTYPE_INT64, -3), &err);
  cr_assert(!ckpt_tree_equal(t, c), "scalar dtype compared");
  ckpt_tree_free(c);
  /* take_array leaves None behind and transfers ownership. */
  ckpt_tree *ab = ckpt_tree_dict_get(ckpt_tree_dict_get(t, "a"), "b");
  ckpt_array *taken = ckpt_tree_take_array(ab);
  cr_assert_not_null(taken);
  cr_assert_eq(ckpt_tree_kind(ab), CKPT_NODE_NONE);
  ckpt_array_free(taken);
  cr_assert_eq(ckpt_tree_num_leaves(t), 5);
  cr_assert_eq(ckpt_tree_set_child(t, 0, ckpt_tree_new_string("s"), &err), CKPT_OK);
  cr_assert_str_eq(ckpt_tree_string(ckpt_tree_dict_get(t, "a")), "s");
  cr_assert_eq(ckpt_tree_set_child(t, 99, ckpt_tree_new_none(), &err), CKPT_EINVAL);
  ckpt_tree_free(t);
}

Test(tree, scalars_store_and_load) {
  ckpt_tree *f = ckpt_tree_new_float(CKPT_DTYPE_FLOAT32, 0.1);
  ckpt_scalar s;
  cr_assert(ckpt_tree_scalar(f, &s));
  cr_assert_eq(s.v.f, (double)0.1f, "held exactly as the float32 it will be stored as");
  float b;
  ckpt_scalar_store(&s, &b);
  cr_assert_eq(b, 0.1f);
  ckpt_tree_free(f);
  ckpt_tree *u = ckpt_tree_new_int(CKPT_DTYPE_UINT64, -1);
  cr_assert(ckpt_tree_scalar(u, &s));
  cr_assert_eq(s.v.u, UINT64_MAX);
  ckpt_tree_free(u);
  uint16_t h = 0x3c00;
  s = ckpt_scalar_load(CKPT_DTYPE_FLOAT16, &h);
  cr_assert_eq(s.v.f, 1.0);
  unsigned char t = 1;
  s = ckpt_scalar_load(CKPT_DTYPE_BOOL, &t);
  cr_assert(s.v.b);
}
