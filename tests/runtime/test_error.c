/* test_error.c — status names, first-error-wins, errno mapping and prefixes (error.c). */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "ckpt/error.h"

Test(error, names_and_texts_come_from_the_list) {
  cr_assert_str_eq(ckpt_status_name(CKPT_OK), "CKPT_OK");
  cr_assert_str_eq(ckpt_status_name(CKPT_ENOENT), "CKPT_ENOENT");
  cr_assert_str_eq(ckpt_status_name(CKPT_EVERSION), "CKPT_EVERSION");
  cr_assert_str_eq(ckpt_status_text(CKPT_ENOSPC), "no space left on device");
  cr_assert_str_eq(ckpt_status_text(CKPT_EINCOMPLETE), "incomplete checkpoint");
  cr_assert_str_eq(ckpt_status_name((ckpt_status)999), "CKPT_UNKNOWN");
  cr_assert_str_eq(ckpt_status_name(CKPT_STATUS_COUNT_), "CKPT_UNKNOWN");
  /* Every code has a distinct name. */
  for (int i = 0; i < CKPT_STATUS_COUNT_; i++)
    for (int j = i + 1; j < CKPT_STATUS_COUNT_; j++)
      cr_assert_str_neq(ckpt_status_name((ckpt_status)i), ckpt_status_name((ckpt_status)j));
}

Test(error, first_error_wins) {
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_error_set(&err, CKPT_ENOENT, "missing '%s'", "a/b"), CKPT_ENOENT);
  cr_assert_eq(ckpt_error_set(&err, CKPT_EIO, "later failure"), CKPT_EIO);
  cr_assert_eq(err.code, CKPT_ENOENT);
  cr_assert_str_eq(err.message, "missing 'a/b'");
  ckpt_error_clear(&err);
  cr_assert_eq(err.code, CKPT_OK);
  cr_assert_str_eq(err.message, "");
}

Test(error, ok_is_not_recorded_and_null_err_is_allowed) {
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_error_set(&err, CKPT_OK, "nothing"), CKPT_OK);
  cr_assert_eq(err.code, CKPT_OK);
  cr_assert_eq(ckpt_error_set(NULL, CKPT_EINVAL, "x"), CKPT_EINVAL);
  cr_assert_eq(ckpt_error_errno(NULL, ENOSPC, "x"), CKPT_ENOSPC);
  ckpt_error_prefix(NULL, "x");
}

Test(error, errno_mapping_and_text) {
  struct {
    int e;
    ckpt_status want;
  } cases[] = {{ENOSPC, CKPT_ENOSPC},   {ENOENT, CKPT_ENOENT}, {EEXIST, CKPT_EEXIST},
               {ENOMEM, CKPT_ENOMEM},   {EIO, CKPT_EIO},       {EACCES, CKPT_EIO},
               {ENOTEMPTY, CKPT_EEXIST}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ckpt_error err = CKPT_ERROR_INIT;
    cr_assert_eq(ckpt_error_errno(&err, cases[i].e, "open '%s'", "/x/y"), cases[i].want);
    cr_assert_eq(err.code, cases[i].want);
    cr_assert_eq(err.sys_errno, cases[i].e);
    cr_assert(strstr(err.message, "open '/x/y': ") == err.message, "%s", err.message);
    cr_assert(strstr(err.message, strerror(cases[i].e)) != NULL, "%s", err.message);
  }
}

Test(error, errno_does_not_overwrite_an_earlier_error) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_error_set(&err, CKPT_ECORRUPT, "root cause");
  ckpt_error_errno(&err, EIO, "cleanup");
  cr_assert_eq(err.code, CKPT_ECORRUPT);
  cr_assert_eq(err.sys_errno, 0);
  cr_assert_str_eq(err.message, "root cause");
}

Test(error, prefix_adds_context_and_keeps_the_code) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_error_prefix(&err, "ignored: ");
  cr_assert_str_eq(err.message, "");
  ckpt_error_set(&err, CKPT_EMISMATCH, "shape differs");
  ckpt_error_prefix(&err, "while restoring item '%s': ", "params");
  cr_assert_eq(err.code, CKPT_EMISMATCH);
  cr_assert_str_eq(err.message, "while restoring item 'params': shape differs");
}

Test(error, long_messages_are_truncated_not_overflowed) {
  ckpt_error err = CKPT_ERROR_INIT;
  char big[3000];
  memset(big, 'a', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  ckpt_error_set(&err, CKPT_EINVAL, "%s", big);
  cr_assert_eq(strlen(err.message), CKPT_ERROR_MESSAGE_MAX - 1);
  ckpt_error_prefix(&err, "%s", big);
  cr_assert_eq(strlen(err.message), CKPT_ERROR_MESSAGE_MAX - 1);
  ckpt_error e2 = CKPT_ERROR_INIT;
  ckpt_error_errno(&e2, EIO, "%s", big);
  cr_assert_eq(strlen(e2.message), CKPT_ERROR_MESSAGE_MAX - 1);
}
