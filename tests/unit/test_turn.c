/* Unit tests for sig_turn: the credential against HMAC-SHA1 vectors computed outside the server
 * (RFC 2202's, Python's hmac and `openssl dgst -sha1 -hmac`), the response body byte for byte,
 * and the secret file: its line ending trimmed, an empty, missing or oversized one refused,
 * a failed reload keeping the old secret. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
/* cmocka needs the headers above first. */
#include <cmocka.h>

#include "sig_config.h"
#include "sig_turn.h"
#include "sig_util.h"

static char dir[64];
static char path[128];

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof(dir), "/tmp/sig-test-turn-XXXXXX");
  if (mkdtemp(dir) == NULL) return -1;
  snprintf(path, sizeof(path), "%s/turn.secret", dir);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  unlink(path);
  rmdir(dir);
  return 0;
}

static void write_secret(const char *bytes, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(bytes, 1, n, f), n);
  fclose(f);
}

/* A configuration with [turn] on, naming the secret file. */
static void turn_config(sig_config_t *cfg, int64_t ttl) {
  char text[512], err[256];
  sig_config_init(cfg);
  snprintf(text, sizeof(text),
           "[turn]\nsecret_file = \"%s\"\nuris = [\"turn:turn.example.com:3478?transport=udp\", "
           "\"turns:turn.example.com:5349\"]\nttl_s = %lld\n",
           path, (long long)ttl);
  if (sig_config_parse(cfg, "x.toml", text, strlen(text), err, sizeof(err)) != 0)
    fail_msg("%s", err);
}

static void test_credential_vectors(void **state) {
  char out[SIG_TURN_CREDENTIAL_SIZE];
  (void)state;
  /* RFC 2202 test case 2: effcdf6ae5eb2fa2d27416d5f184df9c259a7c79 */
  sig_turn_credential((const unsigned char *)"Jefe", 4, "what do ya want for nothing?", out);
  assert_string_equal(out, "7/zfauXrL6LSdBbV8YTfnCWafHk=");
  /* python3 hmac / openssl dgst -sha1 -hmac north-star-secret, then base64 */
  sig_turn_credential((const unsigned char *)"north-star-secret", 17, "1700000600:alice", out);
  assert_string_equal(out, "jRF1g6xhawTqbqmOSXsC7e4IxXg=");
  sig_turn_credential((const unsigned char *)"north-star-secret", 17, "1700086400:bob.example",
                      out);
  assert_string_equal(out, "8IFF+njnzIx/QoLjYJRWWzcpfek=");
  assert_int_equal(strlen(out), SIG_TURN_CREDENTIAL_SIZE - 1);
}

static void test_encode_exact(void **state) {
  sig_config_t cfg;
  sig_turn_t *t = NULL;
  char err[256];
  size_t len;
  (void)state;
  write_secret("north-star-secret\n", 18); /* as `echo` writes it */
  turn_config(&cfg, 600);
  assert_int_equal(sig_turn_new(&t, &cfg, err, sizeof(err)), 0);
  assert_non_null(t);
  char *body = sig_turn_encode(t, "alice", 1700000000, &len);
  assert_string_equal(
      body,
      "{\"code\":0,\"msg\":\"ok\",\"data\":{\"username\":\"1700000600:alice\","
      "\"credential\":\"jRF1g6xhawTqbqmOSXsC7e4IxXg=\",\"ttl\":600,"
      "\"uris\":[\"turn:turn.example.com:3478?transport=udp\",\"turns:turn.example.com:5349\"],"
      "\"ice_servers\":[{\"urls\":[\"turn:turn.example.com:3478?transport=udp\","
      "\"turns:turn.example.com:5349\"],\"username\":\"1700000600:alice\","
      "\"credential\":\"jRF1g6xhawTqbqmOSXsC7e4IxXg=\"}]}}");
  assert_int_equal(strlen(body), len);
  free(body);
  sig_turn_free(t);
  sig_config_free(&cfg);
}

/* The blank space around the secret goes (line endings, spaces, tabs), as coturn trims its value;
 * blank space inside stays. */
static void test_secret_trimming(void **state) {
  static const struct {
    const char *file;
    size_t n;
  } same[] = {{"north-star-secret", 17},
              {"north-star-secret\n", 18},
              {"north-star-secret\r\n", 19},
              {"north-star-secret\n\n", 19},
              {"north-star-secret \t\n", 20}, /* coturn trims blank space around its value */
              {" \tnorth-star-secret", 19}};
  (void)state;
  for (size_t i = 0; i < SIG_ARRAY_SIZE(same); i++) {
    sig_config_t cfg;
    sig_turn_t *t = NULL;
    char err[256];
    size_t len;
    write_secret(same[i].file, same[i].n);
    turn_config(&cfg, 600);
    assert_int_equal(sig_turn_new(&t, &cfg, err, sizeof(err)), 0);
    char *body = sig_turn_encode(t, "alice", 1700000000, &len);
    assert_non_null(strstr(body, "\"credential\":\"jRF1g6xhawTqbqmOSXsC7e4IxXg=\""));
    free(body);
    sig_turn_free(t);
    sig_config_free(&cfg);
  }
  /* blank space inside is part of the secret: another credential */
  sig_config_t cfg;
  sig_turn_t *t = NULL;
  char err[256];
  size_t len;
  write_secret("north-star secret\n", 18);
  turn_config(&cfg, 600);
  assert_int_equal(sig_turn_new(&t, &cfg, err, sizeof(err)), 0);
  char *body = sig_turn_encode(t, "alice", 1700000000, &len);
  assert_null(strstr(body, "jRF1g6xhawTqbqmOSXsC7e4IxXg="));
  free(body);
  sig_turn_free(t);
  sig_config_free(&cfg);
}

static void test_secret_refused(void **state) {
  sig_config_t cfg;
  sig_turn_t *t = (sig_turn_t *)&cfg; /* must become NULL */
  char err[512], want[512], big[600];
  (void)state;
  write_secret("\n", 1);
  turn_config(&cfg, 600);
  assert_int_equal(sig_turn_new(&t, &cfg, err, sizeof(err)), SIG_ECONFIG);
  assert_null(t);
  snprintf(want, sizeof(want),
           "turn.secret_file: %s is empty (put coturn's static-auth-secret in it)", path);
  assert_string_equal(err, want);
  memset(big, 'x', sizeof(big));
  write_secret(big, sizeof(big));
  assert_int_equal(sig_turn_new(&t, &cfg, err, sizeof(err)), SIG_ECONFIG);
  snprintf(want, sizeof(want), "turn.secret_file: %s holds more than 512 bytes", path);
  assert_string_equal(err, want);
  unlink(path);
  assert_int_equal(sig_turn_new(&t, &cfg, err, sizeof(err)), SIG_ECONFIG);
  snprintf(want, sizeof(want), "turn.secret_file: cannot read %s: No such file or directory", path);
  assert_string_equal(err, want);
  sig_config_free(&cfg);
  /* [turn] absent: off, nothing read */
  sig_config_init(&cfg);
  t = (sig_turn_t *)&cfg;
  assert_int_equal(sig_turn_new(&t, &cfg, err, sizeof(err)), 0);
  assert_null(t);
  assert_int_equal(sig_turn_reload(NULL, err, sizeof(err)), 0);
  sig_turn_free(NULL);
  sig_config_free(&cfg);
}

/* Rotation: a new secret gives new credentials; a failed reload keeps the old one. */
static void test_reload(void **state) {
  sig_config_t cfg;
  sig_turn_t *t = NULL;
  char err[512];
  size_t len;
  (void)state;
  write_secret("old-secret\n", 11);
  turn_config(&cfg, 600);
  assert_int_equal(sig_turn_new(&t, &cfg, err, sizeof(err)), 0);
  write_secret("north-star-secret\n", 18);
  assert_int_equal(sig_turn_reload(t, err, sizeof(err)), 0);
  char *body = sig_turn_encode(t, "alice", 1700000000, &len);
  assert_non_null(strstr(body, "jRF1g6xhawTqbqmOSXsC7e4IxXg="));
  free(body);
  write_secret("", 0);
  assert_int_equal(sig_turn_reload(t, err, sizeof(err)), SIG_ECONFIG);
  body = sig_turn_encode(t, "alice", 1700000000, &len);
  assert_non_null(strstr(body, "jRF1g6xhawTqbqmOSXsC7e4IxXg="));
  free(body);
  assert_string_equal(sig_turn_secret_file(t), path);
  sig_turn_free(t);
  sig_config_free(&cfg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_credential_vectors),
      cmocka_unit_test_setup_teardown(test_encode_exact, setup, teardown),
      cmocka_unit_test_setup_teardown(test_secret_trimming, setup, teardown),
      cmocka_unit_test_setup_teardown(test_secret_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reload, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
