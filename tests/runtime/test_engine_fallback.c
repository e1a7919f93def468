/* tests/runtime/test_engine_fallback.c — what happens where the kernel refuses io_uring. A
 * seccomp filter, installed in the test's own process (Criterion runs each test in one), makes
 * io_uring_setup fail with EPERM or ENOSYS as a locked-down kernel or container would: the
 * automatic choice must fall back to pread/pwrite and still work, and requiring io_uring must
 * fail with CKPT_EUNSUPPORTED and a message. */
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "test_engine_util.h"

static void refuse_io_uring(int errnum) {
#if !defined(__x86_64__)
  (void)errnum;
  cr_skip_test("the seccomp filter of this test is written for x86_64");
#endif
  struct sock_filter prog[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((unsigned)errnum & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog fprog = {.len = sizeof prog / sizeof prog[0], .filter = prog};
  cr_assert_eq(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0, "no_new_privs: %s", strerror(errno));
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog) != 0)
    cr_skip_test("cannot install a seccomp filter here: %s", strerror(errno));
}

static void falls_back(int errnum) {
  refuse_io_uring(errnum);
  unsetenv("CKPT_IO_BACKEND");
  ckpt_engine *e = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_engine_new(NULL, &e, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(ckpt_engine_backend_used(e), CKPT_ENGINE_BACKEND_PWRITE);
  /* And it works. */
  char *dir = te_mkdtemp();
  char *p = te_path(dir, "f");
  ckpt_engine_group *g;
  cr_assert_eq(ckpt_engine_group_new(e, "fallback", &g, &err), CKPT_OK);
  ckpt_engine_file *f;
  cr_assert_eq(ckpt_engine_file_open(g, p, O_WRONLY | O_CREAT | O_TRUNC, 0644,
                                     CKPT_ENGINE_FILE_DURABLE, &f, &err),
               CKPT_OK);
  unsigned char data[5000];
  te_fill(data, sizeof data, 77, 0);
  cr_assert_eq(ckpt_engine_write(g, f, data, sizeof data, 0, NULL, NULL, &err), CKPT_OK);
  cr_assert_eq(ckpt_engine_file_close(g, f, NULL, NULL, &err), CKPT_OK);
  cr_assert_eq(ckpt_engine_group_wait(g, &err), CKPT_OK, "%s", err.message);
  te_check_file(p, sizeof data, 77);
  ckpt_engine_group_free(g);
  ckpt_engine_free(e);
  free(p);
  te_rmdir(dir);

  /* Required io_uring: a clear refusal, not a silent fallback. */
  ckpt_engine_options o;
  ckpt_engine_options_init(&o);
  o.backend = CKPT_ENGINE_BACKEND_URING;
  e = (ckpt_engine *)1;
  cr_assert_eq(ckpt_engine_new(&o, &e, &err), CKPT_EUNSUPPORTED);
  cr_assert_null(e);
  cr_assert(strstr(err.message, "io_uring") != NULL, "%s", err.message);
  ckpt_error_clear(&err);
  setenv("CKPT_IO_BACKEND", "uring", 1);
  cr_assert_eq(ckpt_engine_new(NULL, &e, &err), CKPT_EUNSUPPORTED);
  cr_assert(strstr(err.message, "CKPT_IO_BACKEND") != NULL, "%s", err.message);
}

Test(engine_fallback, eperm_falls_back_to_pwrite) { falls_back(EPERM); }
Test(engine_fallback, enosys_falls_back_to_pwrite) { falls_back(ENOSYS); }
