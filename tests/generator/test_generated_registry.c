/* test_generated_registry.c — the registration code ckptgen generates (<package>_register) makes
 * the schema's @register_with_handler declarations and `handler H for R` args visible through
 * the real registry, exactly as Orbax's register_with_handler does: get_registered_handler,
 * get_registered_args and the typestr look-up. Criterion runs each test in its own process, so
 * every test starts from an empty registry (built-ins aside). */
#include <criterion/criterion.h>

#include <string.h>

#include "ckpt/ckpt.h"
#include "examples/alltypes/all_types.ckpt.h"
#include "examples/demo/train_state.ckpt.h"
#include "examples/embedding/embedding.ckpt.h"

static const ckpt_handler_desc *handler_of(const ckpt_args_desc *args) {
  ckpt_error err = CKPT_ERROR_INIT;
  const ckpt_handler_desc *h = NULL;
  cr_assert_eq(ckpt_get_registered_handler(args, &h, &err), CKPT_OK, "%s: %s", args->full_name,
               err.message);
  cr_assert_not_null(h);
  return h;
}

static void expect_args_of(const ckpt_handler_desc *h, const ckpt_args_desc *save,
                           const ckpt_args_desc *restore) {
  ckpt_error err = CKPT_ERROR_INIT;
  const ckpt_args_desc *s = NULL, *r = NULL;
  cr_assert_eq(ckpt_get_registered_args(h, &s, &r, &err), CKPT_OK, "%s: %s", h->full_name,
               err.message);
  cr_assert_eq(s, save, "save args of %s: %s", h->full_name, s ? s->full_name : "(null)");
  cr_assert_eq(r, restore, "restore args of %s: %s", h->full_name, r ? r->full_name : "(null)");
  cr_assert(ckpt_has_registered_args(h));
}

Test(generated_registry, nothing_registered_before_register_is_called) {
  ckpt_error err = CKPT_ERROR_INIT;
  const ckpt_handler_desc *h = NULL;
  cr_assert_eq(ckpt_get_registered_handler(&emb_EmbeddingTableSave_desc, &h, &err),
               CKPT_EUNREGISTERED);
  cr_assert(strstr(err.message, "EmbeddingTableSave") != NULL,
            "the error names the args type: %s", err.message);
  cr_assert_not(ckpt_has_registered_args(&emb_EmbeddingTableHandler_desc));
}

Test(generated_registry, hand_written_handler_registration) {
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(emb_register(&err), CKPT_OK, "%s", err.message);
  cr_assert_eq(handler_of(&emb_EmbeddingTableSave_desc), &emb_EmbeddingTableHandler_desc);
  cr_assert_eq(handler_of(&emb_EmbeddingTableRestore_desc), &emb_EmbeddingTableHandler_desc);
  expect_args_of(&emb_EmbeddingTableHandler_desc, &emb_EmbeddingTableSave_desc,
                 &emb_EmbeddingTableRestore_desc);

  const ckpt_handler_desc *by_typestr = NULL;
  cr_assert_eq(ckpt_get_handler_by_typestr("ckpt.examples.EmbeddingTableHandler", &by_typestr,
                                           &err),
               CKPT_OK, "%s", err.message);
  cr_assert_eq(by_typestr, &emb_EmbeddingTableHandler_desc);
}

Test(generated_registry, generated_record_handler_registration) {
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(demo_register(&err), CKPT_OK, "%s", err.message);
  cr_assert_eq(handler_of(&demo_TrainStateSave_desc), &demo_TrainStateHandler_desc);
  cr_assert_eq(handler_of(&demo_TrainStateRestore_desc), &demo_TrainStateHandler_desc);
  expect_args_of(&demo_TrainStateHandler_desc, &demo_TrainStateSave_desc,
                 &demo_TrainStateRestore_desc);
  const ckpt_handler_desc *by_typestr = NULL;
  cr_assert_eq(ckpt_get_handler_by_typestr(demo_TrainStateHandler_desc.typestr, &by_typestr,
                                           &err),
               CKPT_OK, "%s", err.message);
  cr_assert_eq(by_typestr, &demo_TrainStateHandler_desc);
}

Test(generated_registry, one_args_type_for_save_and_restore) {
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(alltypes_register(&err), CKPT_OK, "%s", err.message);
  cr_assert_eq(handler_of(&alltypes_KitchenSink_desc), &alltypes_KitchenSinkHandler_desc);
  expect_args_of(&alltypes_KitchenSinkHandler_desc, &alltypes_KitchenSink_desc,
                 &alltypes_KitchenSink_desc);
  expect_args_of(&alltypes_EverythingHandler_desc, &alltypes_EverythingSave_desc,
                 &alltypes_EverythingRestore_desc);
  const ckpt_handler_desc *by_typestr = NULL;
  cr_assert_eq(ckpt_get_handler_by_typestr("ckpt.examples.alltypes.KitchenSinkHandler",
                                           &by_typestr, &err),
               CKPT_OK, "%s", err.message);
  cr_assert_eq(by_typestr, &alltypes_KitchenSinkHandler_desc);
}

Test(generated_registry, registering_again_and_together_is_fine) {
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(demo_register(&err), CKPT_OK, "%s", err.message);
  cr_assert_eq(emb_register(&err), CKPT_OK, "%s", err.message);
  cr_assert_eq(alltypes_register(&err), CKPT_OK, "%s", err.message);
  cr_assert_eq(demo_register(&err), CKPT_OK, "registering twice: %s", err.message);
  cr_assert_eq(emb_register(&err), CKPT_OK, "registering twice: %s", err.message);
  cr_assert_eq(handler_of(&demo_TrainStateSave_desc), &demo_TrainStateHandler_desc);
  cr_assert_eq(handler_of(&emb_EmbeddingTableSave_desc), &emb_EmbeddingTableHandler_desc);
  cr_assert_eq(handler_of(&alltypes_KitchenSink_desc), &alltypes_KitchenSinkHandler_desc);
  /* the built-ins stay where they were */
  cr_assert_eq(handler_of(&ckpt_StandardSave_desc), &ckpt_StandardCheckpointHandler_desc);
  cr_assert_eq(handler_of(&ckpt_Composite_desc), &ckpt_CompositeCheckpointHandler_desc);
}

Test(generated_registry, builtin_args_need_no_registration_call) {
  cr_assert_eq(handler_of(&ckpt_JsonSave_desc), &ckpt_JsonCheckpointHandler_desc);
  expect_args_of(&ckpt_JsonCheckpointHandler_desc, &ckpt_JsonSave_desc, &ckpt_JsonRestore_desc);
  expect_args_of(&ckpt_CompositeCheckpointHandler_desc, &ckpt_Composite_desc,
                 &ckpt_Composite_desc);
}

/* Distinct handlers never share a typestr (the typestr registry rejects that), and generated
 * typestrs are non-empty. */
Test(generated_registry, typestrs_are_distinct) {
  const ckpt_handler_desc *all[] = {
      &demo_TrainStateHandler_desc,      &emb_EmbeddingTableHandler_desc,
      &alltypes_EverythingHandler_desc,  &alltypes_KitchenSinkHandler_desc,
      &ckpt_StandardCheckpointHandler_desc, &ckpt_CompositeCheckpointHandler_desc};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
    cr_assert_not_null(all[i]->typestr);
    cr_assert_gt(strlen(all[i]->typestr), 0);
    for (size_t j = 0; j < i; j++) {
      cr_assert_str_neq(all[i]->typestr, all[j]->typestr);
    }
  }
}
