/* test_value.c — ckpt_value (value.c): freeing every kind, composite put/get/replace. Leaks
 * would show under `make check`. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ckpt/ckpt.h"

static ckpt_value json_value(const char *text) {
  ckpt_value v = {.kind = CKPT_VALUE_JSON};
  v.u.json = cJSON_Parse(text);
  cr_assert_not_null(v.u.json);
  return v;
}

Test(value, every_kind_is_freed_and_reset) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_value v = json_value("[1, 2]");
  ckpt_value_free(&v);
  cr_assert_eq(v.kind, CKPT_VALUE_NONE);
  cr_assert_null(v.u.json);

  int64_t n = 3;
  v.kind = CKPT_VALUE_ARRAY;
  cr_assert_eq(ckpt_array_new(CKPT_DTYPE_INT32, 1, &n, &v.u.array, &err), CKPT_OK);
  ckpt_value_free(&v);
  cr_assert_eq(v.kind, CKPT_VALUE_NONE);

  v.kind = CKPT_VALUE_TREE;
  v.u.tree = ckpt_tree_new_dict();
  ckpt_tree_dict_set(v.u.tree, "x", ckpt_tree_new_string("s"), &err);
  ckpt_value_free(&v);

  v.kind = CKPT_VALUE_NUMPY_RNG;
  v.u.numpy_rng = calloc(1, sizeof *v.u.numpy_rng);
  ckpt_value_free(&v);

  v.kind = CKPT_VALUE_JAX_KEY;
  v.u.jax_key = calloc(1, sizeof *v.u.jax_key);
  v.u.jax_key->impl = strdup("threefry2x32");
  ckpt_value_free(&v);

  /* A record value owns its struct and what the struct owns. */
  v.kind = CKPT_VALUE_RECORD;
  v.u.record.desc = &ckpt_JsonSave_desc;
  v.u.record.data = ckpt_args_new(&ckpt_JsonSave_desc);
  ((ckpt_JsonSave *)v.u.record.data)->item = cJSON_CreateString("owned");
  ckpt_value_free(&v);
  cr_assert_eq(v.kind, CKPT_VALUE_NONE);

  /* NONE and NULL are no-ops. */
  ckpt_value_free(&v);
  ckpt_value_free(NULL);
}

Test(value, composite_put_keeps_names_sorted_and_replaces) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_value c = {0};
  const char *names[] = {"m", "a", "z", "b"};
  for (int i = 0; i < 4; i++) {
    ckpt_value item = json_value("1");
    cr_assert_eq(ckpt_value_composite_put(&c, names[i], &item, &err), CKPT_OK, "%s", err.message);
    cr_assert_eq(item.kind, CKPT_VALUE_NONE, "moved");
  }
  cr_assert_eq(c.kind, CKPT_VALUE_COMPOSITE);
  cr_assert_eq(c.u.composite.count, 4);
  const char *sorted[] = {"a", "b", "m", "z"};
  for (int i = 0; i < 4; i++)
    cr_assert_str_eq(c.u.composite.items[i].name, sorted[i]);
  ckpt_value item = json_value("\"replacement\"");
  cr_assert_eq(ckpt_value_composite_put(&c, "m", &item, &err), CKPT_OK);
  cr_assert_eq(c.u.composite.count, 4);
  ckpt_value *m = ckpt_value_item_get(&c, "m");
  cr_assert_str_eq(cJSON_GetStringValue(m->u.json), "replacement");
  cr_assert_null(ckpt_value_item_get(&c, "nope"));
  cr_assert_null(ckpt_value_item_get(m, "m"), "not a composite");
  /* Putting into a non-composite is a type error and leaves the item with the caller. */
  ckpt_value other = json_value("2");
  ckpt_value keep = json_value("3");
  cr_assert_eq(ckpt_value_composite_put(&other, "x", &keep, &err), CKPT_ETYPE);
  cr_assert_eq(keep.kind, CKPT_VALUE_JSON);
  ckpt_value_free(&keep);
  ckpt_value_free(&other);
  /* Composites nest. */
  ckpt_value outer = {0};
  cr_assert_eq(ckpt_value_composite_put(&outer, "inner", &c, &err), CKPT_OK);
  cr_assert_eq(c.kind, CKPT_VALUE_NONE);
  cr_assert_eq(ckpt_value_item_get(&outer, "inner")->u.composite.count, 4);
  ckpt_value_free(&outer);
}

Test(value, kind_names) {
  cr_assert_str_eq(ckpt_value_kind_name(CKPT_VALUE_COMPOSITE), "composite");
  cr_assert_str_eq(ckpt_value_kind_name(CKPT_VALUE_NONE), "none");
  cr_assert_str_eq(ckpt_value_kind_name(CKPT_VALUE_NUMPY_RNG), "numpy_rng");
  cr_assert_str_eq(ckpt_value_kind_name((ckpt_value_kind)99), "unknown");
}
