/* Unit tests for sig_limits: the token bucket (burst, refill, the wait it reports), connection
 * counts per address (IPv6 by /64), and a table that forgets idle addresses and never grows past
 * its bound, with the clock moved by hand; new limits on a live table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* cmocka needs the headers above first */
#include <cmocka.h>

#include "sig_limits.h"
#include "sig_util.h"

static sig_addr_t addr(const char *s) {
  sig_addr_t a;
  assert_int_equal(sig_addr_parse(&a, s, strlen(s)), 0);
  return a;
}

static void test_bucket(void **state) {
  sig_bucket_t b = {0, 0};
  uint64_t wait = 0, t = 1000;
  (void)state;
  assert_true(sig_bucket_full(&b, t, 10, 5));
  for (int i = 0; i < 5; i++) assert_true(sig_bucket_take(&b, t, 10, 5, &wait)); /* the burst */
  assert_false(sig_bucket_take(&b, t, 10, 5, &wait));
  assert_int_equal(wait, 100); /* 10 a second: one every 100 ms */
  assert_false(sig_bucket_take(&b, t + 99, 10, 5, &wait));
  assert_int_equal(wait, 1);
  assert_true(sig_bucket_take(&b, t + 100, 10, 5, NULL));
  assert_false(sig_bucket_full(&b, t + 100, 10, 5));
  assert_true(sig_bucket_full(&b, t + 600, 10, 5)); /* 5 tokens back after 500 ms */
  /* a long silence fills it to the burst, no further */
  for (int i = 0; i < 5; i++) assert_true(sig_bucket_take(&b, t + 100000000, 10, 5, NULL));
  assert_false(sig_bucket_take(&b, t + 100000000, 10, 5, NULL));
  /* a rate of one a second, a burst of one */
  sig_bucket_t one = {0, 0};
  assert_true(sig_bucket_take(&one, 5, 1, 1, NULL));
  assert_false(sig_bucket_take(&one, 500, 1, 1, &wait));
  assert_int_equal(wait, 505);
  assert_true(sig_bucket_take(&one, 1005, 1, 1, NULL));
}

static void test_connections(void **state) {
  sig_limits_config_t cfg = {2, 100, 100, 1000};
  sig_limits_t *l = sig_limits_new(&cfg);
  sig_addr_t a = addr("10.0.0.1:1"), a2 = addr("10.0.0.1:2"), b = addr("10.0.0.2");
  sig_addr_t v6 = addr("2001:db8::1"), v6same = addr("2001:db8::ffff"),
             v6other = addr("2001:db9::1");
  (void)state;
  assert_int_equal(sig_limits_conn_add(l, &a, 1), 0);
  assert_int_equal(sig_limits_conn_add(l, &a2, 1), 0); /* ports do not matter */
  assert_int_equal(sig_limits_conn_add(l, &a, 1), SIG_EREFUSED);
  assert_int_equal(sig_limits_conns(l, &a), 2);
  assert_int_equal(sig_limits_conn_add(l, &b, 1), 0);
  sig_limits_conn_remove(l, &a, 2);
  assert_int_equal(sig_limits_conn_add(l, &a, 2), 0);
  assert_int_equal(sig_limits_conn_add(l, &v6, 1), 0);
  assert_int_equal(sig_limits_conn_add(l, &v6same, 1), 0);
  assert_int_equal(sig_limits_conn_add(l, &v6same, 1), SIG_EREFUSED); /* one /64 */
  assert_int_equal(sig_limits_conn_add(l, &v6other, 1), 0);
  sig_limits_conn_remove(l, &b, 3);
  sig_limits_conn_remove(l, &b, 3); /* one too many: ignored */
  assert_int_equal(sig_limits_conns(l, &b), 0);
  sig_limits_free(l);
  sig_limits_free(NULL);
}

static void test_requests(void **state) {
  sig_limits_config_t cfg = {10, 2, 3, 1000};
  sig_limits_t *l = sig_limits_new(&cfg);
  sig_addr_t a = addr("10.0.0.1"), b = addr("10.0.0.2");
  uint32_t retry = 0;
  (void)state;
  for (int i = 0; i < 3; i++) assert_int_equal(sig_limits_request(l, &a, 1000, &retry), 0);
  assert_int_equal(sig_limits_request(l, &a, 1000, &retry), SIG_EREFUSED);
  assert_int_equal(retry, 1); /* 500 ms, rounded up to a whole second */
  assert_int_equal(sig_limits_request(l, &b, 1000, &retry), 0); /* another address: its own */
  assert_int_equal(sig_limits_request(l, &a, 1500, &retry), 0);
  sig_limits_free(l);
}

/* New limits on a live table (SIGHUP): a lowered burst holds at once, even in the same
 * millisecond, a lowered connection cap refuses the next connection and keeps those counted. */
static void test_set(void **state) {
  sig_limits_config_t cfg = {3, 1, 100, 1000};
  sig_limits_t *l = sig_limits_new(&cfg);
  sig_addr_t a = addr("10.0.0.1");
  uint32_t retry = 0;
  (void)state;
  for (int i = 0; i < 10; i++) assert_int_equal(sig_limits_request(l, &a, 1000, &retry), 0);
  for (int i = 0; i < 3; i++) assert_int_equal(sig_limits_conn_add(l, &a, 1000), 0);
  sig_limits_config_t lower = {1, 1, 4, 5}; /* max_addrs is not changed */
  sig_limits_set(l, &lower);
  for (int i = 0; i < 4; i++) assert_int_equal(sig_limits_request(l, &a, 1000, &retry), 0);
  assert_int_equal(sig_limits_request(l, &a, 1000, &retry), SIG_EREFUSED);
  assert_int_equal(sig_limits_conn_add(l, &a, 1000), SIG_EREFUSED);
  assert_int_equal(sig_limits_conns(l, &a), 3);
  for (int i = 0; i < 3; i++) sig_limits_conn_remove(l, &a, 1000);
  assert_int_equal(sig_limits_conn_add(l, &a, 1000), 0);
  assert_int_equal(sig_limits_conn_add(l, &a, 1000), SIG_EREFUSED);
  /* more than five addresses are still tracked: the table keeps its size */
  for (int i = 0; i < 20; i++) {
    char ip[32];
    snprintf(ip, sizeof ip, "192.0.2.%d", i + 1);
    sig_addr_t b = addr(ip);
    assert_int_equal(sig_limits_conn_add(l, &b, 1000), 0);
  }
  assert_int_equal(sig_limits_addrs(l), 21);
  sig_limits_free(l);
}

/* Idle addresses are forgotten once their bucket has refilled; a full table drops the least
 * recently seen idle address, never one that holds a connection. */
static void test_bounded(void **state) {
  sig_limits_config_t cfg = {10, 10, 10, 100};
  sig_limits_t *l = sig_limits_new(&cfg);
  char ip[32];
  uint32_t retry;
  (void)state;
  sig_addr_t busy = addr("192.0.2.1");
  assert_int_equal(sig_limits_conn_add(l, &busy, 1), 0);
  for (int i = 0; i < 5000; i++) {
    snprintf(ip, sizeof ip, "10.%d.%d.%d", i >> 16 & 255, i >> 8 & 255, i & 255);
    sig_addr_t a = addr(ip);
    assert_int_equal(sig_limits_request(l, &a, 1000, &retry), 0);
    assert_true(sig_limits_addrs(l) <= 100);
  }
  assert_int_equal(sig_limits_conns(l, &busy), 1); /* kept through it all */
  sig_limits_sweep(l, 1050);                       /* one token back every 100 ms: not yet */
  assert_int_equal(sig_limits_addrs(l), 100);
  sig_limits_sweep(l, 1100);                /* full again */
  assert_int_equal(sig_limits_addrs(l), 1); /* only the one with a connection */
  sig_limits_conn_remove(l, &busy, 3000);
  sig_limits_sweep(l, 3000);
  assert_int_equal(sig_limits_addrs(l), 0);
  sig_limits_free(l);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bucket),   cmocka_unit_test(test_connections),
      cmocka_unit_test(test_requests), cmocka_unit_test(test_set),
      cmocka_unit_test(test_bounded),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
