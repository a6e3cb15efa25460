/* Unit tests for sig_log: the line format, values escaped (controls, invalid UTF-8, C1 and bidi
 * characters, quotes), free text escaped too, and throttling per (event, scope) with the
 * "suppressed" line, through a real log file in a temporary folder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
/* cmocka needs the headers above first */
#include <cmocka.h>

#include "sig_log.h"

static char dir[64], path[96];

static int setup(void **state) {
  char err[256];
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/sig-test-log-XXXXXX");
  assert_non_null(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/t.log", dir);
  assert_int_equal(sig_log_open(dir, "t.log", SIG_LOG_DEBUG, err, sizeof err), 0);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  sig_log_close();
  unlink(path);
  rmdir(dir);
  return 0;
}

/* The log's text since the last call. */
static char *take(void) {
  static long seen;
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  long end = ftell(f);
  char *text = calloc(1, (size_t)(end - seen) + 1);
  fseek(f, seen, SEEK_SET);
  assert_int_equal(fread(text, 1, (size_t)(end - seen), f), (size_t)(end - seen));
  fclose(f);
  seen = end;
  return text;
}

static size_t count(const char *text, const char *needle) {
  size_t n = 0;
  for (const char *p = text; (p = strstr(p, needle)) != NULL; p++) n++;
  return n;
}

static void test_values_escaped(void **state) {
  (void)state;
  SIG_EVENT(SIG_LOG_INFO, "http", NULL, "request refused",
            SIG_KV("path", "/a\tb\x0c\xc2\x9b[31m\xff"),
            SIG_KV("msg", "must start with \"v=\" \\ ok"), SIG_KV("bare", "1.2.3.4:5"),
            SIG_KV("empty", ""), SIG_KV("null", NULL), SIG_KVI("status", -404),
            SIG_KV("bidi",
                   "a\xe2\x80\xae"
                   "b"),
            SIG_KVN("cut", "abcdef", 3), SIG_KV("nl", "x\ny"));
  char *text = take();
  const char *line = strstr(text, " INFO  http   request refused ");
  assert_non_null(line);
  assert_non_null(strstr(line, " path=\"/a\\x09b\\x0c\\xc2\\x9b[31m\\xff\""));
  assert_non_null(strstr(line, " msg=\"must start with \\\"v=\\\" \\\\ ok\""));
  assert_non_null(strstr(line, " bare=1.2.3.4:5 "));
  assert_non_null(strstr(line, " empty=\"\" "));
  assert_non_null(strstr(line, " null=- "));
  assert_non_null(strstr(line, " status=-404 "));
  assert_non_null(strstr(line, " bidi=\"a\\xe2\\x80\\xaeb\""));
  assert_non_null(strstr(line, " cut=abc "));
  assert_non_null(strstr(line, " nl=\"x\\x0ay\"\n"));
  assert_int_equal(count(text, "\n"), 1); /* one line */
  free(text);
  SIG_INFO("server", "free text %s", "with\ta\x1b[2Jterminal trick\xe2\x80\xae");
  text = take();
  assert_non_null(strstr(text, "free text with\\x09a\\x1b[2Jterminal trick\\xe2\\x80\\xae\n"));
  free(text);
}

static void test_throttled(void **state) {
  static const char event[] = "error frame";
  (void)state;
  /* a flood from one scope: a few lines, the rest counted */
  for (int i = 0; i < 1000; i++) SIG_EVENT(SIG_LOG_INFO, "router", "alice", event, SIG_KVI("n", i));
  /* another scope and another event are not held back by it */
  SIG_EVENT(SIG_LOG_INFO, "router", "bob", event, SIG_KVI("n", 0));
  SIG_EVENT(SIG_LOG_INFO, "router", "alice", "bye", SIG_KVI("n", 0));
  char *text = take();
  size_t written = count(text, "error frame n=");
  assert_true(written >= SIG_LOG_BURST && written <= 2 * SIG_LOG_BURST + 1);
  assert_non_null(strstr(text, "router error frame n=0\n"));
  assert_non_null(strstr(text, "router bye n=0\n"));
  free(text);
  /* once the second is over, the count comes out */
  sleep(1);
  sig_log_flush_suppressed();
  text = take();
  const char *s = strstr(text, "suppressed similar lines event=\"error frame\" scope=alice count=");
  assert_non_null(s);
  unsigned long n = strtoul(
      s + strlen("suppressed similar lines event=\"error frame\" scope=alice count="), NULL, 10);
  assert_true(n + written >= 1000 && n < 1000); /* every line written or counted */
  free(text);
  /* unscoped events are never held back */
  for (int i = 0; i < 50; i++)
    SIG_EVENT(SIG_LOG_INFO, "server", NULL, "own event", SIG_KVI("n", i));
  text = take();
  assert_int_equal(count(text, "own event n="), 50);
  free(text);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_values_escaped),
      cmocka_unit_test(test_throttled),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
