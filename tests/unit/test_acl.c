/* Unit tests for sig_acl: which patterns are accepted, and which domains each allows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
/* cmocka needs the headers above first */
#include <cmocka.h>

#include "sig_acl.h"
#include "sig_util.h"

static void test_patterns(void **state) {
  static char long_name[130], long_prefix[130];
  memset(long_name, 'a', 128);
  memset(long_prefix, 'a', 127);
  long_prefix[127] = '*';
  static const struct {
    const char *p;
    int ok;
  } rows[] = {
      {"alice", 1},     {"cam-*", 1}, {"*", 1},   {"a.b_c~d-e", 1}, {long_name, 1},
      {long_prefix, 1}, {"", 0},      {"a/b", 0}, {"a b", 0},       {"**", 0},
      {"a*b", 0},       {"*a", 0},    {"é", 0},   {"a\n", 0},
  };
  (void)state;
  for (size_t i = 0; i < SIG_ARRAY_SIZE(rows); i++) {
    sig_acl_t *acl = sig_acl_new();
    int rc = sig_acl_add(acl, rows[i].p, strlen(rows[i].p));
    if ((rc == 0) != rows[i].ok) print_error("row %zu: '%s'\n", i, rows[i].p);
    assert_int_equal(rc == 0, rows[i].ok);
    sig_acl_free(acl);
  }
  /* 128 characters before a '*' is one too many; so is 129 without */
  char over[131];
  memset(over, 'a', 128);
  over[128] = '*';
  sig_acl_t *acl = sig_acl_new();
  assert_int_not_equal(sig_acl_add(acl, over, 129), 0);
  memset(over, 'a', 129);
  assert_int_not_equal(sig_acl_add(acl, over, 129), 0);
  /* a pattern is its n bytes: what follows is not read */
  assert_int_equal(sig_acl_add(acl, "bob/ignored", 3), 0);
  assert_true(sig_acl_allows(acl, "bob"));
  sig_acl_free(acl);
}

static void test_allows(void **state) {
  static const char *const list[] = {"alice", "cam-*", "room.1"};
  static const struct {
    const char *domain;
    int allowed;
  } rows[] = {
      {"alice", 1},  {"cam-", 1},  {"cam-1", 1}, {"cam-front.door", 1}, {"room.1", 1},  {"alic", 0},
      {"alice2", 0}, {"Alice", 0}, {"cam", 0},   {"cam_1", 0},          {"room.10", 0}, {"room", 0},
      {"xcam-1", 0}, {"", 0},
  };
  (void)state;
  sig_acl_t *acl = sig_acl_new();
  for (size_t i = 0; i < SIG_ARRAY_SIZE(list); i++)
    assert_int_equal(sig_acl_add(acl, list[i], strlen(list[i])), 0);
  for (size_t i = 0; i < SIG_ARRAY_SIZE(rows); i++) {
    if (sig_acl_allows(acl, rows[i].domain) != rows[i].allowed)
      print_error("row %zu: '%s'\n", i, rows[i].domain);
    assert_int_equal(sig_acl_allows(acl, rows[i].domain), rows[i].allowed);
  }
  sig_acl_free(acl);
  /* no list: anyone; an empty list: no one; "*": anyone */
  assert_true(sig_acl_allows(NULL, "x"));
  acl = sig_acl_new();
  assert_false(sig_acl_allows(acl, "x"));
  assert_int_equal(sig_acl_add(acl, "*", 1), 0);
  assert_true(sig_acl_allows(acl, "x"));
  sig_acl_free(acl);
  sig_acl_free(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_patterns),
      cmocka_unit_test(test_allows),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
