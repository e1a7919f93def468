/* cli/util.c — small helpers every subcommand uses: exit codes, error output, number and time
 * formatting, and JSON builders that keep going after an allocation failure so documents can
 * be built in straight lines and checked once. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "inspect/inspect.h"

int cli_exit_for(ckpt_status st) {
  switch (st) {
    case CKPT_OK:
      return CLI_EXIT_OK;
    case CKPT_ECORRUPT:
    case CKPT_EINCOMPLETE:
    case CKPT_EUNSAFE:
      return CLI_EXIT_DAMAGED;
    default:
      return CLI_EXIT_ERROR;
  }
}

int cli_report(const ckpt_error *err) {
  fprintf(stderr, "ckpt: %s\n", err->message[0] ? err->message : ckpt_status_text(err->code));
  return cli_exit_for(err->code);
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "ckpt: %s%s", cmd ? cmd : "", cmd ? ": " : "");
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\nTry 'ckpt %s%s--help' for more information.\n", cmd ? cmd : "",
          cmd ? " " : "");
  return CLI_EXIT_ERROR;
}

char *cli_strdup(const char *s) {
  if (s == NULL)
    return NULL;
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d)
    memcpy(d, s, n);
  return d;
}

char *cli_asprintf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0)
    return NULL;
  char *s = malloc((size_t)n + 1);
  if (s == NULL)
    return NULL;
  va_start(ap, fmt);
  vsnprintf(s, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return s;
}

char *cli_format_bytes(uint64_t bytes, char *buf) {
  static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) {
    snprintf(buf, 32, "%" PRIu64 " B", bytes);
    return buf;
  }
  double v = (double)bytes / 1024.0;
  int u = 0;
  while (v >= 1024.0 && u < 5) {
    v /= 1024.0;
    u++;
  }
  snprintf(buf, 32, "%.1f %s", v, units[u]);
  return buf;
}

char *cli_format_time(int64_t nsecs, char *buf) {
  time_t secs = (time_t)(nsecs / 1000000000);
  if (nsecs < 0 && nsecs % 1000000000 != 0)
    secs -= 1;
  struct tm tm;
  if (gmtime_r(&secs, &tm) == NULL || strftime(buf, 64, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
    snprintf(buf, 64, "@%" PRId64 "ns", nsecs);
  return buf;
}

char *cli_format_shape(int ndim, const int64_t *shape) {
  size_t cap = 3 + (size_t)(ndim > 0 ? ndim : 0) * 22;
  char *s = malloc(cap);
  if (s == NULL)
    return NULL;
  size_t n = 0;
  s[n++] = '[';
  for (int d = 0; d < ndim; d++)
    n += (size_t)snprintf(s + n, cap - n, "%s%" PRId64, d ? ", " : "", shape[d]);
  s[n++] = ']';
  s[n] = '\0';
  return s;
}



const char *cli_handler_short(const char *typestr) {
  if (typestr == NULL)
    return "?";
  const char *s = strrchr(typestr, '.');
  return s ? s + 1 : typestr;
}

bool cli_parse_i64(const char *s, int64_t *out) {
  if (s == NULL || *s < '0' || *s > '9')
    return false;
  errno = 0;
  char *end;
  long long v = strtoll(s, &end, 10);
  if (errno != 0 || *end != '\0' || v < 0)
    return false;
  *out = (int64_t)v;
  return true;
}

bool cli_parse_tolerance(const char *s, double *out) {
  if (s == NULL || *s == '\0')
    return false;
  char *end;
  double v = ckpt_tf_strtod(s, &end);
  if (*end != '\0' || !isfinite(v) || v < 0)
    return false;
  *out = v;
  return true;
}

/* ---------------------------------------------------------------- JSON */

void cli_jadd(cJSON *obj, const char *key, cJSON *item, bool *oom) {
  if (item == NULL || obj == NULL || !cJSON_AddItemToObject(obj, key, item)) {
    cJSON_Delete(item);
    *oom = true;
  }
}

void cli_jpush(cJSON *arr, cJSON *item, bool *oom) {
  if (item == NULL || arr == NULL || !cJSON_AddItemToArray(arr, item)) {
    cJSON_Delete(item);
    *oom = true;
  }
}

cJSON *cli_jint(int64_t v) {
  char buf[32];
  snprintf(buf, sizeof buf, "%" PRId64, v);
  return cJSON_CreateRaw(buf);
}

cJSON *cli_juint(uint64_t v) {
  char buf[32];
  snprintf(buf, sizeof buf, "%" PRIu64, v);
  return cJSON_CreateRaw(buf);
}

cJSON *cli_jdouble(double v) {
  if (isnan(v))
    return cJSON_CreateString("nan");
  if (isinf(v))
    return cJSON_CreateString(v > 0 ? "inf" : "-inf");
  char buf[CKPT_TF_NUM_MAX];
  ckpt_tf_double_repr(v, buf);
  return cJSON_CreateRaw(buf);
}

cJSON *cli_jshape(int ndim, const int64_t *shape) {
  cJSON *a = cJSON_CreateArray();
  bool oom = a == NULL;
  for (int d = 0; !oom && d < ndim; d++)
    cli_jpush(a, cli_jint(shape[d]), &oom);
  if (oom) {
    cJSON_Delete(a);
    return NULL;
  }
  return a;
}

cJSON *cli_jstr(const char *s) {
  return s ? cJSON_CreateString(s) : cJSON_CreateNull();
}

int cli_json_emit(cJSON *doc, bool oom) {
  if (oom || doc == NULL) {
    cJSON_Delete(doc);
    fprintf(stderr, "ckpt: out of memory building the JSON output\n");
    return CLI_EXIT_ERROR;
  }
  char *text = NULL;
  size_t len = 0;
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_status st = ckpt_json_dump(doc, &text, &len, &err);
  cJSON_Delete(doc);
  if (st != CKPT_OK)
    return cli_report(&err);
  fwrite(text, 1, len, stdout);
  fputc('\n', stdout);
  free(text);
  return CLI_EXIT_OK;
}

bool cli_wants_help(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0)
      return false;
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
      return true;
  }
  return false;
}
