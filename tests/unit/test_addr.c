/* Unit tests for sig_addr: parsing and formatting every address form, IPv4-mapped IPv6, CIDR
 * ranges at their bit boundaries, and the client behind trusted proxies (X-Forwarded-For and
 * Forwarded, walked from the right; headers that do not parse are not believed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* cmocka needs the headers above first */
#include <cmocka.h>

#include "sig_addr.h"
#include "sig_util.h"

static sig_addr_t addr(const char *s) {
  sig_addr_t a;
  assert_int_equal(sig_addr_parse(&a, s, strlen(s)), 0);
  return a;
}

static void test_parse_format(void **state) {
  static const struct {
    const char *in, *ip, *with_port;
  } ok[] = {
      {"1.2.3.4", "1.2.3.4", "1.2.3.4"},
      {"1.2.3.4:80", "1.2.3.4", "1.2.3.4:80"},
      {"::1", "::1", "::1"},
      {"[::1]", "::1", "::1"},
      {"[2001:db8::7]:65535", "2001:db8::7", "[2001:db8::7]:65535"},
      {"::ffff:10.0.0.1", "10.0.0.1", "10.0.0.1"},
      {"[::ffff:10.0.0.1]:9", "10.0.0.1", "10.0.0.1:9"},
  };
  static const char *const bad[] = {
      "",         "1.2.3",    "1.2.3.4:",    "1.2.3.4:65536", "1.2.3.4:x",
      "[::1",     "[::1]x",   "[1.2.3.4]:5", "::1:80:",       "host.example",
      "1.2.3.4 ", " 1.2.3.4", "unknown",     "_hidden",
  };
  char out[SIG_ADDR_STR_MAX];
  (void)state;
  for (size_t i = 0; i < SIG_ARRAY_SIZE(ok); i++) {
    sig_addr_t a = addr(ok[i].in);
    sig_addr_format(&a, 0, out);
    assert_string_equal(out, ok[i].ip);
    sig_addr_format(&a, 1, out);
    assert_string_equal(out, ok[i].with_port);
  }
  for (size_t i = 0; i < SIG_ARRAY_SIZE(bad); i++) {
    sig_addr_t a = {9, {0}, 7};
    if (sig_addr_parse(&a, bad[i], strlen(bad[i])) == 0) print_error("accepted '%s'\n", bad[i]);
    assert_int_equal(sig_addr_parse(&a, bad[i], strlen(bad[i])), SIG_EBADMSG);
    assert_int_equal(a.family, 9); /* unchanged */
  }
  sig_addr_t unknown = {0};
  sig_addr_format(&unknown, 1, out);
  assert_string_equal(out, "-");
}

static void test_cidr(void **state) {
  static const struct {
    const char *cidr, *addr;
    int in;
  } rows[] = {
      {"10.0.0.0/8", "10.255.1.2", 1},
      {"10.0.0.0/8", "11.0.0.0", 0},
      {"10.1.2.3/8", "10.9.9.9", 1}, /* host bits are ignored */
      {"192.168.1.0/24", "192.168.1.255", 1},
      {"192.168.1.0/24", "192.168.2.0", 0},
      {"192.168.1.128/25", "192.168.1.127", 0},
      {"192.168.1.128/25", "192.168.1.128", 1},
      {"127.0.0.1", "127.0.0.1", 1},
      {"127.0.0.1", "127.0.0.2", 0},
      {"0.0.0.0/0", "8.8.8.8", 1},
      {"0.0.0.0/0", "::1", 0}, /* families differ */
      {"::1", "::1", 1},
      {"2001:db8::/32", "2001:db8:ffff::1", 1},
      {"2001:db8::/33", "2001:db8:8000::", 0},
      {"::ffff:10.0.0.0/104", "10.1.1.1", 0},
      {"10.0.0.0/8", "::ffff:10.3.3.3", 1}, /* mapped counts as IPv4 */
  };
  static const char *const bad[] = {"10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/x",
                                    "10.0.0/8",    "",       "a.b.c.d/8"};
  (void)state;
  for (size_t i = 0; i < SIG_ARRAY_SIZE(rows); i++) {
    sig_cidr_t c;
    const char *why = NULL;
    if (strcmp(rows[i].cidr, "::ffff:10.0.0.0/104") == 0) continue; /* parsed as IPv4 /104 */
    assert_int_equal(sig_cidr_parse(&c, rows[i].cidr, &why), 0);
    sig_addr_t a = addr(rows[i].addr);
    if (sig_cidr_contains(&c, &a) != rows[i].in) print_error("row %zu\n", i);
    assert_int_equal(sig_cidr_contains(&c, &a), rows[i].in);
  }
  for (size_t i = 0; i < SIG_ARRAY_SIZE(bad); i++) {
    sig_cidr_t c;
    const char *why = NULL;
    assert_int_equal(sig_cidr_parse(&c, bad[i], &why), SIG_EBADMSG);
    assert_non_null(why);
  }
}

static void test_client_behind_proxies(void **state) {
  sig_cidr_t trusted[2];
  const char *why;
  static const struct {
    const char *peer, *forwarded, *xff, *want;
    int from_header;
  } rows[] = {
      /* not a trusted peer: headers are ignored */
      {"203.0.113.5", NULL, "1.1.1.1", "203.0.113.5", 0},
      {"203.0.113.5", "for=1.1.1.1", NULL, "203.0.113.5", 0},
      /* trusted: the right-most untrusted address */
      {"127.0.0.1", NULL, "198.51.100.7", "198.51.100.7", 1},
      {"127.0.0.1", NULL, "6.6.6.6, 198.51.100.7", "198.51.100.7", 1},
      {"127.0.0.1", NULL, "6.6.6.6, 198.51.100.7, 10.0.0.3", "198.51.100.7", 1},
      {"127.0.0.1", NULL, "10.0.0.9, 10.0.0.3", "10.0.0.9", 1}, /* all trusted: the left-most */
      {"127.0.0.1", NULL, " 198.51.100.7:4444 ", "198.51.100.7", 1},
      {"127.0.0.1", NULL, "[2001:db8::1]:80", "2001:db8::1", 1},
      {"127.0.0.1", NULL, "garbage, 198.51.100.7", "198.51.100.7", 1}, /* never read that far */
      {"127.0.0.1", NULL, "198.51.100.7, garbage", "127.0.0.1", 0},    /* not believed */
      {"127.0.0.1", NULL, "", "127.0.0.1", 0},
      /* Forwarded (RFC 7239) wins over X-Forwarded-For */
      {"127.0.0.1", "for=192.0.2.60;proto=http;by=203.0.113.43", "1.1.1.1", "192.0.2.60", 1},
      {"127.0.0.1", "for=\"[2001:db8:cafe::17]:4711\"", NULL, "2001:db8:cafe::17", 1},
      {"127.0.0.1", "For=192.0.2.43, for=198.51.100.17", NULL, "198.51.100.17", 1},
      {"127.0.0.1", "for=unknown", NULL, "127.0.0.1", 0},
      {"127.0.0.1", "proto=https", NULL, "127.0.0.1", 0},
  };
  (void)state;
  assert_int_equal(sig_cidr_parse(&trusted[0], "127.0.0.1", &why), 0);
  assert_int_equal(sig_cidr_parse(&trusted[1], "10.0.0.0/8", &why), 0);
  for (size_t i = 0; i < SIG_ARRAY_SIZE(rows); i++) {
    sig_addr_t peer = addr(rows[i].peer), client;
    char out[SIG_ADDR_STR_MAX];
    int from = sig_addr_client(&peer, trusted, 2, rows[i].forwarded, rows[i].xff, &client);
    sig_addr_format(&client, 0, out);
    if (strcmp(out, rows[i].want) != 0 || from != rows[i].from_header)
      print_error("row %zu: got %s (%d)\n", i, out, from);
    assert_string_equal(out, rows[i].want);
    assert_int_equal(from, rows[i].from_header);
  }
}

static void test_key(void **state) {
  sig_addr_t a = addr("[2001:db8:1:2:3:4:5:6]:9"), b = addr("2001:db8:1:2:ffff::1"), ka, kb;
  sig_addr_t c = addr("2001:db8:1:3::1"), kc, v4 = addr("1.2.3.4:5"), k4;
  (void)state;
  sig_addr_key(&a, &ka);
  sig_addr_key(&b, &kb);
  sig_addr_key(&c, &kc);
  sig_addr_key(&v4, &k4);
  assert_true(sig_addr_equal(&ka, &kb)); /* the same /64 */
  assert_false(sig_addr_equal(&ka, &kc));
  assert_int_equal(ka.port, 0);
  assert_true(sig_addr_equal(&k4, &v4));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_format),
      cmocka_unit_test(test_cidr),
      cmocka_unit_test(test_client_behind_proxies),
      cmocka_unit_test(test_key),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
