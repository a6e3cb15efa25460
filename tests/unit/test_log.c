/* Unit tests for sig_log: the line format, values escaped (controls, invalid UTF-8, C1 and bidi
 * characters, quotes), free text escaped too, and throttling per (event, scope) with the
 * "suppressed" line, through a real log file in a temporary folder; JSON lines (escapes, a
 * field named like a member, a line too long); out_file "-" on standard output. */
#include <fcntl.h>
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

/* The line after its timestamp ({"ts":"…", or "… "), which must be the 24 characters of
 * "2024-05-01T12:00:00.123Z". */
static const char *after_ts(const char *line, int json) {
  const char *ts = line + (json ? strlen("{\"ts\":\"") : 0);
  assert_int_equal(ts[4], '-');
  assert_int_equal(ts[10], 'T');
  assert_int_equal(ts[23], 'Z');
  return ts + 24;
}

static void test_json_lines(void **state) {
  (void)state;
  sig_log_set_format(SIG_LOG_JSON);
  SIG_EVENT(SIG_LOG_INFO, "http", NULL, "request refused",
            SIG_KV("path", "/a\tb\x0c\xc2\x9b[31m\xff"),
            SIG_KV("msg", "offer_sdp: not an SDP (decoded text must start with \"v=\")"),
            SIG_KV("bare", "1.2.3.4:5"), SIG_KV("empty", ""), SIG_KV("null", NULL),
            SIG_KVI("status", -404),
            SIG_KV("bidi",
                   "a\xe2\x80\xae"
                   "b"),
            SIG_KVN("cut", "abcdef", 3), SIG_KV("nl", "x\ny"),
            SIG_KV("event", "a field named like a member"));
  char *text = take();
  assert_int_equal(count(text, "\n"), 1);
  assert_string_equal(after_ts(text, 1),
                      "\",\"level\":\"info\",\"module\":\"http\",\"event\":\"request refused\","
                      "\"path\":\"/a\\tb\\f\\u009b[31m\\\\xff\","
                      "\"msg\":\"offer_sdp: not an SDP (decoded text must start with \\\"v=\\\")\","
                      "\"bare\":\"1.2.3.4:5\",\"empty\":\"\",\"null\":\"-\",\"status\":-404,"
                      "\"bidi\":\"a\\u202eb\",\"cut\":\"abc\",\"nl\":\"x\\ny\","
                      "\"event_\":\"a field named like a member\"}\n");
  free(text);
  /* free text: its words in "msg" */
  SIG_WARN("server", "free text %s", "with \"quotes\"\tand\x1b[2J");
  text = take();
  assert_string_equal(after_ts(text, 1),
                      "\",\"level\":\"warn\",\"module\":\"server\","
                      "\"msg\":\"free text with \\\"quotes\\\"\\tand\\u001b[2J\"}\n");
  free(text);
  /* a line too long: the value is cut at a whole character, the object still ends */
  char big[6000];
  for (size_t i = 0; i < sizeof big; i++) big[i] = i % 2 ? '"' : 'x';
  SIG_EVENT(SIG_LOG_INFO, "http", NULL, "big", SIG_KVN("v", big, sizeof big), SIG_KVI("after", 1));
  text = take();
  size_t len = strlen(text);
  assert_true(len <= 2048);
  assert_int_equal(count(text, "\n"), 1);
  assert_non_null(strstr(text, "\"v\":\"x\\\"x\\\""));
  assert_string_equal(text + len - strlen("...\",\"truncated\":true}\n"),
                      "...\",\"truncated\":true}\n");
  assert_null(strstr(text, "\"after\""));
  free(text);
  sig_log_set_format(SIG_LOG_TEXT);
}

/* out_file "-": the lines go to standard output, and reopen and close leave it open. */
static void test_stdout(void **state) {
  char err[256], out[96];
  (void)state;
  snprintf(out, sizeof out, "%s/stdout.txt", dir);
  int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644), saved = dup(STDOUT_FILENO);
  assert_true(fd >= 0 && saved >= 0);
  fflush(stdout);
  assert_int_equal(dup2(fd, STDOUT_FILENO), STDOUT_FILENO);
  assert_int_equal(sig_log_open("/nonexistent/never/made", "-", SIG_LOG_INFO, err, sizeof err), 0);
  assert_string_equal(sig_log_path(), "-");
  SIG_INFO("server", "to standard output");
  assert_int_equal(sig_log_reopen(), 0);
  sig_log_close();
  assert_int_equal(write(STDOUT_FILENO, "still open\n", 11), 11);
  assert_int_equal(dup2(saved, STDOUT_FILENO), STDOUT_FILENO);
  close(saved);
  close(fd);
  FILE *f = fopen(out, "r");
  char buf[512] = {0};
  assert_non_null(f);
  assert_true(fread(buf, 1, sizeof buf - 1, f) > 0);
  fclose(f);
  unlink(out);
  assert_string_equal(after_ts(buf, 0), " INFO  server to standard output\nstill open\n");
  assert_null(strstr(buf, "reopened"));
  assert_int_equal(sig_log_open(dir, "t.log", SIG_LOG_DEBUG, err, sizeof err), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_values_escaped),
      cmocka_unit_test(test_throttled),
      cmocka_unit_test(test_json_lines),
      cmocka_unit_test(test_stdout),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
