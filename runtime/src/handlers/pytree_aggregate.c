/* handlers/pytree_aggregate.c — leaves whose value is in the legacy aggregate file
 * (storage/aggregate.h) rather than in a zarr array: turning them into what the target asks
 * for. The file holds whole values (no shards): an array leaf comes back
 * as one array of the target's dtype and shape, cast as the zarr path casts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers/pytree_internal.h"

static ckpt_status fail(char *msg, size_t size, ckpt_status code, const char *text) {
  snprintf(msg, size, "%s", text);
  return code;
}

/* A copy of a (whole) array cast to dtype dt. */
static ckpt_array *cast_array(const ckpt_array *a, ckpt_dtype dt) {
  ckpt_array *out;
  if (ckpt_array_new(dt, a->ndim, a->shape, &out, NULL) != CKPT_OK)
    return NULL;
  size_t n = (size_t)ckpt_array_num_elements(a);
  void *dst = ckpt_array_data(out), *src = ckpt_array_data(a);
  if (n > 0 && (dst == NULL || src == NULL)) {
    ckpt_array_free(out);
    return NULL;
  }
  if (n > 0)
    ckpt_dtype_convert(dt, dst, a->dtype, src, n);
  return out;
}

ckpt_status ckpt_pt_aggregate_leaf(const ckpt_tree *v, const ckpt_tree *tnode,
                                   const ckpt_pytree_leaf_restore *la, ckpt_tree **out, char *msg,
                                   size_t msg_size) {
  *out = NULL;
  ckpt_node_kind vk = ckpt_tree_kind(v);
  ckpt_node_kind tk = tnode != NULL ? ckpt_tree_kind(tnode) : vk;
  bool has_dt = la != NULL && la->has_dtype;
  const ckpt_array *va = ckpt_tree_array(v);
  ckpt_scalar vs;
  bool v_scalar = ckpt_tree_scalar(v, &vs);
  if (tk == CKPT_NODE_ARRAY && (va != NULL || v_scalar)) {
    const ckpt_array *ta = tnode != NULL ? ckpt_tree_array(tnode) : NULL;
    ckpt_array *scalar_arr = NULL;
    if (va == NULL) { /* a number saved where the target wants an array: a 0-d one */
      int64_t none[CKPT_MAX_RANK] = {0};
      if (ckpt_array_new(vs.dtype, 0, none, &scalar_arr, NULL) != CKPT_OK)
        return CKPT_ENOMEM;
      ckpt_scalar_store(&vs, ckpt_array_data(scalar_arr));
      va = scalar_arr;
    }
    if (ta != NULL && (ta->ndim != va->ndim ||
                       memcmp(ta->shape, va->shape, sizeof(int64_t) * (size_t)va->ndim) != 0)) {
      ckpt_array_free(scalar_arr);
      return fail(msg, msg_size, CKPT_EMISMATCH,
                  "the aggregate file holds an array of another shape than the target's");
    }
    ckpt_dtype dt = has_dt ? la->dtype : ta != NULL ? ta->dtype : va->dtype;
    ckpt_array *a = cast_array(va, dt);
    ckpt_array_free(scalar_arr);
    *out = a != NULL ? ckpt_tree_new_array(a) : NULL;
    return *out ? CKPT_OK : CKPT_ENOMEM;
  }
  if (tk == CKPT_NODE_SCALAR && (v_scalar || (va != NULL && va->ndim == 0))) {
    /* The leaf's dtype, else the target's, else the saved value's (vs is set only when the
     * saved value is a number, not a 0-d array). */
    ckpt_scalar ts;
    ckpt_dtype dt = has_dt                                            ? la->dtype
                    : tnode != NULL && ckpt_tree_scalar(tnode, &ts) ? ts.dtype
                    : va != NULL                                    ? va->dtype
                                                                    : vs.dtype;
    unsigned char from[16] = {0}, to[16] = {0};
    ckpt_dtype from_dt = va != NULL ? va->dtype : vs.dtype;
    if (va != NULL)
      memcpy(from, ckpt_array_data(va), ckpt_dtype_size(va->dtype));
    else
      ckpt_scalar_store(&vs, from);
    if (ckpt_dtype_class_of(dt) == CKPT_DTYPE_CLASS_COMPLEX)
      return fail(msg, msg_size, CKPT_ETYPE, "a complex number cannot be a scalar leaf");
    ckpt_dtype_convert(dt, to, from_dt, from, 1);
    *out = ckpt_tree_new_scalar(ckpt_scalar_load(dt, to));
    return *out ? CKPT_OK : CKPT_ENOMEM;
  }
  if (tk == vk && (vk == CKPT_NODE_STRING || vk == CKPT_NODE_BYTES || vk == CKPT_NODE_NONE ||
                   vk == CKPT_NODE_DICT || vk == CKPT_NODE_LIST || vk == CKPT_NODE_TUPLE)) {
    if (has_dt)
      return fail(msg, msg_size, CKPT_ETYPE, "restore_args.dtype for a leaf that is not a number");
    *out = ckpt_tree_clone(v);
    return *out ? CKPT_OK : CKPT_ENOMEM;
  }
  char text[160];
  snprintf(text, sizeof text, "the aggregate file holds a %s but the target leaf is a %s",
           ckpt_node_kind_name(vk), ckpt_node_kind_name(tk));
  return fail(msg, msg_size, CKPT_ETYPE, text);
}
