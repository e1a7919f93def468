/* test_json_pbtxt_locale.c — JSON and protobuf text stay "0.5" when the host program sets a
 * comma-decimal LC_NUMERIC. The test builds such a locale with localedef into a temporary
 * LOCPATH (skipped only when the system cannot build locales) and checks that printf really
 * switched to "0,5" before checking our writers and readers. */
#include <fcntl.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "jsonproto_testfs.h"
#include "text/json.h"
#include "pbtxt_test2.pb-c.h"
#include "pbtxt_testutil.h"

static const char comma_locale_src[] =
    "LC_NUMERIC\ndecimal_point \",\"\nthousands_sep \".\"\ngrouping 3;3\nEND LC_NUMERIC\n";

/* Builds the comma locale under dir; true when setlocale accepted it. */
static bool use_comma_locale(const char *dir) {
  char *src = jp_path(dir, "comma.src");
  char *out = jp_path(dir, "xx_COMMA.UTF-8");
  jp_spit(src, comma_locale_src, sizeof comma_locale_src - 1);
  pid_t pid = fork();
  cr_assert_neq(pid, -1);
  if (pid == 0) {
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    dup2(null, 2);
    /* -c: a locale with only LC_NUMERIC is incomplete on purpose */
    execlp("localedef", "localedef", "-c", "-i", src, "-f", "UTF-8", out, (char *)NULL);
    _exit(127);
  }
  int status;
  waitpid(pid, &status, 0);
  free(src);
  free(out);
  setenv("LOCPATH", dir, 1);
  return setlocale(LC_NUMERIC, "xx_COMMA.UTF-8") != NULL;
}

Test(text_locale, numbers_ignore_a_comma_decimal_lc_numeric) {
  char *dir = jp_mkdtemp();
  if (!use_comma_locale(dir)) {
    jp_rmtree(dir);
    cr_skip_test("cannot build a test locale with localedef here");
  }
  char probe[16];
  snprintf(probe, sizeof probe, "%.1f", 0.5);
  cr_assert_str_eq(probe, "0,5", "the comma locale is not active, the test would prove nothing");

  ckpt_error err = CKPT_ERROR_INIT;
  cJSON *v = cJSON_CreateArray();
  cJSON_AddItemToArray(v, cJSON_CreateNumber(0.1));
  cJSON_AddItemToArray(v, cJSON_CreateNumber(1e-7));
  char *text;
  cr_assert_eq(ckpt_json_dump(v, &text, NULL, &err), CKPT_OK);
  cr_assert_str_eq(text, "[0.1, 1e-07]");
  cJSON *back = NULL;
  cr_assert_eq(ckpt_json_load(text, strlen(text), "metadata", &back, &err), CKPT_OK, "%s",
               err.message);
  cr_assert_eq(cJSON_GetArrayItem(back, 0)->valuedouble, 0.1);
  cr_assert_eq(cJSON_GetArrayItem(back, 1)->valuedouble, 1e-7);
  free(text);
  cJSON_Delete(back);
  cJSON_Delete(v);

  CkptPbtest2__Scalars s = CKPT_PBTEST2__SCALARS__INIT;
  s.has_db = s.has_fl = 1;
  s.db = 0.1;
  s.fl = 1.1f;
  char *pb = pbt_print(&s.base);
  cr_assert_str_eq(pb, "fl: 1.1\ndb: 0.1\n");
  CkptPbtest2__Scalars *parsed =
      (CkptPbtest2__Scalars *)pbt_parse(&ckpt_pbtest2__scalars__descriptor, pb);
  cr_assert_eq(parsed->db, 0.1);
  cr_assert_eq(parsed->fl, 1.1f);
  protobuf_c_message_free_unpacked(&parsed->base, NULL);
  free(pb);
  setlocale(LC_NUMERIC, "C");
  jp_rmtree(dir);
}
