/* Unit tests for sig_notify: nothing happens without NOTIFY_SOCKET; READY with STATUS,
 * RELOADING with a CLOCK_MONOTONIC time stamp and STOPPING reach a datagram socket that
 * stands in for systemd; a socket that is gone is an error, not a crash; nothing but
 * STOPPING goes out once stopping (so the stopping test runs last). */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
/* cmocka needs the headers above first */
#include <cmocka.h>

#include "sig_notify.h"

static char dir[64], sock_path[96];
static int fd = -1;

static int setup(void **state) {
  struct sockaddr_un sa;
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/sig-test-notify-XXXXXX");
  assert_non_null(mkdtemp(dir));
  snprintf(sock_path, sizeof sock_path, "%s/notify", dir);
  fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock_path);
  assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  close(fd);
  unlink(sock_path);
  rmdir(dir);
  unsetenv("NOTIFY_SOCKET");
  return 0;
}

/* The next datagram, NUL-terminated, or "" when none is waiting. */
static const char *next_message(void) {
  static char buf[512];
  ssize_t n = recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT);
  buf[n > 0 ? n : 0] = '\0';
  return buf;
}

static uint64_t now_usec(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void test_without_notify_socket_does_nothing(void **state) {
  (void)state;
  unsetenv("NOTIFY_SOCKET");
  assert_int_equal(sig_notify_ready("127.0.0.1:9091"), 0);
  assert_int_equal(sig_notify_reloading(), 0);
  assert_string_equal(next_message(), "");
}

static void test_ready_with_status(void **state) {
  (void)state;
  setenv("NOTIFY_SOCKET", sock_path, 1);
  assert_int_equal(sig_notify_ready("127.0.0.1:9091"), 0);
  assert_string_equal(next_message(), "READY=1\nSTATUS=listening on 127.0.0.1:9091");
  assert_int_equal(sig_notify_ready(NULL), 0);
  assert_string_equal(next_message(), "READY=1");
}

static void test_reloading_has_monotonic_time(void **state) {
  uint64_t before, after, usec;
  const char *m, *p;
  (void)state;
  setenv("NOTIFY_SOCKET", sock_path, 1);
  before = now_usec();
  assert_int_equal(sig_notify_reloading(), 0);
  after = now_usec();
  m = next_message();
  assert_true(strncmp(m, "RELOADING=1\n", 12) == 0);
  p = strstr(m, "\nMONOTONIC_USEC=");
  assert_non_null(p);
  assert_int_equal(sscanf(p, "\nMONOTONIC_USEC=%" SCNu64, &usec), 1);
  assert_true(before <= usec && usec <= after);
}

static void test_socket_gone_is_an_error(void **state) {
  char gone[128];
  (void)state;
  snprintf(gone, sizeof gone, "%s/nobody-listens", dir);
  setenv("NOTIFY_SOCKET", gone, 1);
  assert_true(sig_notify_ready("127.0.0.1:9091") < 0);
}

static void test_stopping_then_silence(void **state) {
  (void)state;
  setenv("NOTIFY_SOCKET", sock_path, 1);
  assert_int_equal(sig_notify_stopping(), 0);
  assert_non_null(strstr(next_message(), "STOPPING=1"));
  assert_int_equal(sig_notify_reloading(), 0);
  assert_int_equal(sig_notify_ready("127.0.0.1:9091"), 0);
  assert_string_equal(next_message(), "");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_without_notify_socket_does_nothing),
      cmocka_unit_test(test_ready_with_status),
      cmocka_unit_test(test_reloading_has_monotonic_time),
      cmocka_unit_test(test_socket_gone_is_an_error),
      cmocka_unit_test(test_stopping_then_silence), /* last: stopping is for good */
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
