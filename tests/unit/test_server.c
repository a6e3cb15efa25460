/* Unit tests for sig_server's start line: the address and the URL of the demo page a person can
 * open, for an address, a host name, and the wildcard addresses (every interface). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* cmocka needs the headers above first */
#include <cmocka.h>

#include "sig_server.h"

static void line_for(const char *host, const char *address, char *buf, size_t n) {
  char err[256];
  sig_config_t cfg;
  sig_config_init(&cfg);
  char text[128];
  snprintf(text, sizeof text, "[server]\nhost = \"%s\"\n", host);
  assert_int_equal(sig_config_parse(&cfg, "x.toml", text, strlen(text), err, sizeof err), 0);
  sig_server_start_line(&cfg, address, buf, n);
  sig_config_free(&cfg);
}

static void test_start_line(void **state) {
  char line[512];
  (void)state;
  line_for("127.0.0.1:9091", "127.0.0.1:9091", line, sizeof line);
  assert_string_equal(line, "listening on 127.0.0.1:9091, open http://127.0.0.1:9091/");
  /* port 0: the port the kernel picked */
  line_for("[::1]:0", "[::1]:40123", line, sizeof line);
  assert_string_equal(line, "listening on [::1]:40123, open http://[::1]:40123/");
  /* a host name stays in the URL: what its user typed */
  line_for("localhost:0", "127.0.0.1:40124", line, sizeof line);
  assert_string_equal(line, "listening on 127.0.0.1:40124, open http://localhost:40124/");
  /* every interface: the loopback address here, and an address of this machine as an example */
  line_for("0.0.0.0:9091", "0.0.0.0:9091", line, sizeof line);
  const char *here =
      "listening on 0.0.0.0:9091 (every IPv4 interface), open "
      "http://127.0.0.1:9091/ on this machine, or http://";
  assert_memory_equal(line, here, strlen(here));
  const char *there = line + strlen(here);
  assert_non_null(strstr(there, ":9091/ from another"));
  assert_null(strstr(there, "127.0.0.1"));
  line_for("[::]:9091", "[::]:9091", line, sizeof line);
  here =
      "listening on [::]:9091 (every interface), open http://[::1]:9091/ on this machine, or "
      "http://";
  assert_memory_equal(line, here, strlen(here));
  assert_non_null(strstr(line + strlen(here), ":9091/ from another"));
  /* a small buffer: cut, never overrun */
  char small[20];
  line_for("127.0.0.1:9091", "127.0.0.1:9091", small, sizeof small);
  assert_string_equal(small, "listening on 127.0.");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_start_line),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
