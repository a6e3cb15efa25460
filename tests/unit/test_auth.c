/* Unit tests for sig_auth: tokens built here byte by byte (header and claims as written, signed
 * with OpenSSL's HMAC) checked at a fixed clock, one table row per rule; tokens minted by
 * sig_auth_mint; the structural refusals; algorithm confusion with an EC key; and key rotation. */
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
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "sig_auth.h"
#include "sig_config.h"
#include "sig_util.h"

#define NOW 1700000000
#define KEY "0123456789abcdef0123456789abcdef" /* 32 bytes: the least allowed */

static char key_path[64];

static void write_file(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, n, f), n);
  fclose(f);
}

static int make_key_file(void **state) {
  (void)state;
  snprintf(key_path, sizeof key_path, "/tmp/test_auth_key_XXXXXX");
  int fd = mkstemp(key_path);
  if (fd < 0) return -1;
  close(fd);
  write_file(key_path, KEY, strlen(KEY));
  return 0;
}

static int remove_key_file(void **state) {
  (void)state;
  unlink(key_path);
  return 0;
}

/* An auth for `[auth] mode = "jwt"` with extra lines (algorithm, issuer, …) and key_file. */
static sig_auth_t *new_auth(const char *extra, const char *key_file, char *err, size_t errlen) {
  char text[1024];
  sig_config_t cfg;
  sig_auth_t *a = NULL;
  sig_config_init(&cfg);
  int n = snprintf(text, sizeof text, "[auth]\nmode = \"jwt\"\nkey_file = \"%s\"\n%s\n", key_file,
                   extra);
  assert_int_equal(sig_config_parse(&cfg, "test", text, (size_t)n, err, errlen), 0);
  int rc = sig_auth_new(&a, &cfg, err, errlen);
  sig_config_free(&cfg);
  return rc == 0 ? a : NULL;
}

static size_t b64url(const unsigned char *in, size_t n, char *out) {
  static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  size_t o = 0;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
                 (i + 2 < n ? in[i + 2] : 0);
    size_t chars = n - i >= 3 ? 4 : n - i + 1;
    for (size_t k = 0; k < chars; k++) out[o++] = abc[(v >> (18 - 6 * k)) & 63];
  }
  out[o] = '\0';
  return o;
}

/* header.claims.HMAC-SHA256(key) as a JWS compact serialization, into out. */
static void sign(const char *header, const char *claims, const void *key, size_t key_len,
                 char *out) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  size_t o = b64url((const unsigned char *)header, strlen(header), out);
  out[o++] = '.';
  o += b64url((const unsigned char *)claims, strlen(claims), out + o);
  assert_non_null(HMAC(EVP_sha256(), key, (int)key_len, (unsigned char *)out, o, mac, &mac_len));
  out[o++] = '.';
  b64url(mac, mac_len, out + o);
}

#define HS "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define STR_(x) #x
#define STR(x) STR_(x)
#define EXP(n) "\"exp\":" STR(n)

static void test_claims_table(void **state) {
  static const struct {
    const char *header, *claims;
    sig_auth_result_t want;
    const char *sub;
  } rows[] = {
      {HS, "{\"sub\":\"alice\"," EXP(1700000060) "}", SIG_AUTH_OK, "alice"},
      {"{\"alg\":\"HS256\"}", "{\"sub\":\"alice\"," EXP(1700000060) "}", SIG_AUTH_OK, "alice"},
      {"{\"alg\":\"HS256\",\"kid\":\"k1\",\"x\":[1,{}]}", "{\"sub\":\"a\"," EXP(1700000060) "}",
       SIG_AUTH_OK, "a"},
      {HS, "{\"sub\":\"al\\u0069ce\"," EXP(1700000060) "}", SIG_AUTH_OK, "alice"},
      {HS, "{\"sub\":\"a\"," EXP(1700000060.9) "}", SIG_AUTH_OK, "a"},
      {HS, "{\"sub\":\"a\"," EXP(1.70000006e9) "}", SIG_AUTH_OK, "a"},
      /* expiry, with leeway_s = 30 */
      {HS, "{\"sub\":\"a\"," EXP(1700000000) "}", SIG_AUTH_OK, "a"},
      {HS, "{\"sub\":\"a\"," EXP(1699999971) "}", SIG_AUTH_OK, "a"},
      {HS, "{\"sub\":\"a\"," EXP(1699999970) "}", SIG_AUTH_EXPIRED, NULL},
      {HS, "{\"sub\":\"a\"," EXP(-1) "}", SIG_AUTH_EXPIRED, NULL},
      {HS, "{\"sub\":\"a\"," EXP(0) "}", SIG_AUTH_EXPIRED, NULL},
      {HS, "{\"sub\":\"a\"}", SIG_AUTH_INVALID, NULL},
      {HS, "{\"sub\":\"a\",\"exp\":\"1700000060\"}", SIG_AUTH_INVALID, NULL},
      {HS, "{\"sub\":\"a\",\"exp\":true}", SIG_AUTH_INVALID, NULL},
      {HS, "{\"sub\":\"a\",\"exp\":null}", SIG_AUTH_INVALID, NULL},
      {HS, "{\"sub\":\"a\",\"exp\":[1700000060]}", SIG_AUTH_INVALID, NULL},
      {HS, "{\"sub\":\"a\"," EXP(1e308) "}", SIG_AUTH_INVALID, NULL},
      {HS, "{\"sub\":\"a\"," EXP(9e15) "}", SIG_AUTH_OK, "a"},
      {HS, "{\"sub\":\"a\"," EXP(9.1e15) "}", SIG_AUTH_INVALID, NULL},
      {HS, "{\"sub\":\"a\"," EXP(-1e308) "}", SIG_AUTH_INVALID, NULL},
      /* nbf */
      {HS, "{\"sub\":\"a\"," EXP(1700000060) ",\"nbf\":1700000030}", SIG_AUTH_OK, "a"},
      {HS, "{\"sub\":\"a\"," EXP(1700000060) ",\"nbf\":1700000031}", SIG_AUTH_INVALID, NULL},
      {HS, "{\"sub\":\"a\"," EXP(1700000060) ",\"nbf\":\"0\"}", SIG_AUTH_INVALID, NULL},
      /* sub */
      {HS, "{" EXP(1700000060) "}", SIG_AUTH_INVALID, NULL},
      {HS, "{\"sub\":7," EXP(1700000060) "}", SIG_AUTH_INVALID, NULL},
      {HS, "{\"sub\":\"\"," EXP(1700000060) "}", SIG_AUTH_INVALID, NULL},
      {HS, "{\"sub\":\"a/b\"," EXP(1700000060) "}", SIG_AUTH_INVALID, NULL},
      {HS, "{\"sub\":\"a\\u002fb\"," EXP(1700000060) "}", SIG_AUTH_INVALID, NULL},
      {HS, "{\"sub\":\"a\\u0000\"," EXP(1700000060) "}", SIG_AUTH_INVALID, NULL},
      {HS, "{\"sub\":[\"a\"]," EXP(1700000060) "}", SIG_AUTH_INVALID, NULL},
      {HS, "{\"sub\":\"a\",\"sub\":\"b\"," EXP(1700000060) "}", SIG_AUTH_INVALID, NULL},
      {HS, "{\"sub\":\"a\"," EXP(1700000060) "," EXP(1700000060) "}", SIG_AUTH_INVALID, NULL},
      /* aud given but none configured; calls */
      {HS, "{\"sub\":\"a\"," EXP(1700000060) ",\"aud\":\"x\"}", SIG_AUTH_INVALID, NULL},
      {HS, "{\"sub\":\"a\"," EXP(1700000060) ",\"calls\":[\"b\",\"c-*\"]}", SIG_AUTH_OK, "a"},
      {HS, "{\"sub\":\"a\"," EXP(1700000060) ",\"calls\":[]}", SIG_AUTH_OK, "a"},
      {HS, "{\"sub\":\"a\"," EXP(1700000060) ",\"calls\":\"b\"}", SIG_AUTH_INVALID, NULL},
      {HS, "{\"sub\":\"a\"," EXP(1700000060) ",\"calls\":[1]}", SIG_AUTH_INVALID, NULL},
      {HS, "{\"sub\":\"a\"," EXP(1700000060) ",\"calls\":[\"b\",\"a/b\"]}", SIG_AUTH_INVALID, NULL},
      {HS, "{\"sub\":\"a\"," EXP(1700000060) ",\"calls\":[\"b\\u0000\"]}", SIG_AUTH_INVALID, NULL},
      /* expired and malformed: invalid */
      {HS, "{\"sub\":\"a\"," EXP(1) ",\"calls\":[\"a/b\"]}", SIG_AUTH_INVALID, NULL},
      {HS, "{\"sub\":\"a/b\"," EXP(1) "}", SIG_AUTH_INVALID, NULL},
      /* the header */
      {"{\"alg\":\"none\"}", "{\"sub\":\"a\"," EXP(1700000060) "}", SIG_AUTH_INVALID, NULL},
      {"{\"alg\":\"hs256\"}", "{\"sub\":\"a\"," EXP(1700000060) "}", SIG_AUTH_INVALID, NULL},
      {"{\"alg\":\"HS512\"}", "{\"sub\":\"a\"," EXP(1700000060) "}", SIG_AUTH_INVALID, NULL},
      {"{\"alg\":\"HS256 \"}", "{\"sub\":\"a\"," EXP(1700000060) "}", SIG_AUTH_INVALID, NULL},
      {"{\"alg\":\"HS256\\u0000\"}", "{\"sub\":\"a\"," EXP(1700000060) "}", SIG_AUTH_INVALID, NULL},
      {"{\"alg\":[\"HS256\"]}", "{\"sub\":\"a\"," EXP(1700000060) "}", SIG_AUTH_INVALID, NULL},
      {"{\"typ\":\"JWT\"}", "{\"sub\":\"a\"," EXP(1700000060) "}", SIG_AUTH_INVALID, NULL},
      {"{\"alg\":\"HS256\",\"alg\":\"HS256\"}", "{\"sub\":\"a\"," EXP(1700000060) "}",
       SIG_AUTH_INVALID, NULL},
      {"{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", "{\"sub\":\"a\"," EXP(1700000060) "}",
       SIG_AUTH_INVALID, NULL},
      {"[\"HS256\"]", "{\"sub\":\"a\"," EXP(1700000060) "}", SIG_AUTH_INVALID, NULL},
      {"{\"alg\":\"HS256\"", "{\"sub\":\"a\"," EXP(1700000060) "}", SIG_AUTH_INVALID, NULL},
      /* the claims must be one JSON object */
      {HS, "[\"a\"]", SIG_AUTH_INVALID, NULL},
      {HS, "{\"sub\":\"a\"," EXP(1700000060) "} ", SIG_AUTH_OK, "a"},
      {HS, "{\"sub\":\"a\"," EXP(1700000060) "}x", SIG_AUTH_INVALID, NULL},
      {HS, "", SIG_AUTH_INVALID, NULL},
  };
  char err[256];
  (void)state;
  sig_auth_t *a = new_auth("", key_path, err, sizeof err);
  assert_non_null(a);
  for (size_t i = 0; i < SIG_ARRAY_SIZE(rows); i++) {
    char token[2048];
    sig_auth_claims_t claims;
    sign(rows[i].header, rows[i].claims, KEY, strlen(KEY), token);
    sig_auth_result_t got = sig_auth_verify(a, token, strlen(token), NOW, &claims);
    if (got != rows[i].want)
      print_error("row %zu: %s %s gave %d\n", i, rows[i].header, rows[i].claims, got);
    assert_int_equal(got, rows[i].want);
    if (got == SIG_AUTH_OK) {
      assert_string_equal(claims.sub, rows[i].sub);
    } else {
      assert_null(claims.calls); /* nothing to free on a refusal */
    }
    sig_acl_free(claims.calls);
  }
  sig_auth_free(a);
}

/* The longest domain is a valid sub; one character more is not. */
static void test_sub_length(void **state) {
  char err[256], token[1024], claims_json[512], sub[130];
  sig_auth_claims_t claims;
  (void)state;
  sig_auth_t *a = new_auth("", key_path, err, sizeof err);
  for (size_t n = 126; n <= 129; n++) {
    memset(sub, 'a', n);
    sub[n] = '\0';
    snprintf(claims_json, sizeof claims_json, "{\"sub\":\"%s\"," EXP(1700000060) "}", sub);
    sign(HS, claims_json, KEY, strlen(KEY), token);
    sig_auth_result_t r = sig_auth_verify(a, token, strlen(token), NOW, &claims);
    assert_int_equal(r, n <= 128 ? SIG_AUTH_OK : SIG_AUTH_INVALID);
    if (r == SIG_AUTH_OK) assert_string_equal(claims.sub, sub);
  }
  sig_auth_free(a);
}

static void test_calls_claim(void **state) {
  char err[256], token[1024];
  sig_auth_claims_t claims;
  (void)state;
  sig_auth_t *a = new_auth("", key_path, err, sizeof err);
  sign(HS, "{\"sub\":\"a\"," EXP(1700000060) ",\"calls\":[\"b\",\"c-*\"]}", KEY, strlen(KEY),
       token);
  assert_int_equal(sig_auth_verify(a, token, strlen(token), NOW, &claims), SIG_AUTH_OK);
  assert_non_null(claims.calls);
  assert_true(sig_acl_allows(claims.calls, "b"));
  assert_true(sig_acl_allows(claims.calls, "c-1"));
  assert_false(sig_acl_allows(claims.calls, "d"));
  assert_int_equal(claims.exp, 1700000060);
  sig_acl_free(claims.calls);
  sign(HS, "{\"sub\":\"a\"," EXP(1700000060) "}", KEY, strlen(KEY), token);
  assert_int_equal(sig_auth_verify(a, token, strlen(token), NOW, &claims), SIG_AUTH_OK);
  assert_null(claims.calls); /* anyone */
  sig_auth_free(a);
}

static void test_form(void **state) {
  char err[256], good[1024], t[3000];
  sig_auth_claims_t claims;
  (void)state;
  sig_auth_t *a = new_auth("", key_path, err, sizeof err);
  sign(HS, "{\"sub\":\"a\"," EXP(1700000060) "}", KEY, strlen(KEY), good);
  size_t n = strlen(good);
  const char *dot2 = strrchr(good, '.');
  assert_int_equal(sig_auth_verify(a, "", 0, NOW, &claims), SIG_AUTH_MISSING);
  assert_int_equal(sig_auth_verify(a, good, n, NOW, &claims), SIG_AUTH_OK);
  /* only len bytes are read */
  snprintf(t, sizeof t, "%sgarbage", good);
  assert_int_equal(sig_auth_verify(a, t, n, NOW, &claims), SIG_AUTH_OK);
  /* every proper prefix is refused; so is every single-byte change */
  for (size_t k = 1; k < n; k++)
    assert_int_equal(sig_auth_verify(a, good, k, NOW, &claims), SIG_AUTH_INVALID);
  for (size_t k = 0; k < n; k++) {
    if (good[k] == '.') continue;
    memcpy(t, good, n + 1);
    t[k] = good[k] == 'A' ? 'B' : 'A';
    sig_auth_result_t r = sig_auth_verify(a, t, n, NOW, &claims);
    /* the last signature character also carries spare bits: some flips decode the same */
    if (r != SIG_AUTH_INVALID) {
      assert_int_equal(k, n - 1);
      sig_acl_free(claims.calls);
    }
  }
  const char *bad[] = {"a.b", "a.b.c.d", ".b.c", "a..c", "a.b.", "...", "a b.c.d"};
  for (size_t i = 0; i < SIG_ARRAY_SIZE(bad); i++)
    assert_int_equal(sig_auth_verify(a, bad[i], strlen(bad[i]), NOW, &claims), SIG_AUTH_INVALID);
  /* padding, the standard alphabet, a fourth segment, whitespace */
  const char *tails[] = {"=", "==", " ", ".x", "\n"};
  for (size_t i = 0; i < SIG_ARRAY_SIZE(tails); i++) {
    snprintf(t, sizeof t, "%s%s", good, tails[i]);
    assert_int_equal(sig_auth_verify(a, t, strlen(t), NOW, &claims), SIG_AUTH_INVALID);
  }
  memcpy(t, good, n + 1);
  t[dot2 - good + 1] = '+';
  assert_int_equal(sig_auth_verify(a, t, n, NOW, &claims), SIG_AUTH_INVALID);
  /* a signature with another key */
  sign(HS, "{\"sub\":\"a\"," EXP(1700000060) "}", "fedcba9876543210fedcba9876543210", 32, t);
  assert_int_equal(sig_auth_verify(a, t, strlen(t), NOW, &claims), SIG_AUTH_INVALID);
  /* longer than SIG_AUTH_TOKEN_MAX: refused before any decoding */
  char *big = malloc(SIG_AUTH_TOKEN_MAX + 2);
  memset(big, 'A', SIG_AUTH_TOKEN_MAX + 1);
  big[10] = big[20] = '.';
  assert_int_equal(sig_auth_verify(a, big, SIG_AUTH_TOKEN_MAX + 1, NOW, &claims), SIG_AUTH_INVALID);
  assert_int_equal(sig_auth_verify(a, big, SIG_AUTH_TOKEN_MAX, NOW, &claims), SIG_AUTH_INVALID);
  free(big);
  sig_auth_free(a);
}

/* A token of exactly SIG_AUTH_TOKEN_MAX bytes passes; one byte more does not. */
static void test_longest_token(void **state) {
  char err[256];
  sig_auth_claims_t claims;
  (void)state;
  sig_auth_t *a = new_auth("", key_path, err, sizeof err);
  char *claims_json = malloc(8192), *token = malloc(12000);
  for (size_t pad = 5900; pad < 6200; pad++) {
    snprintf(claims_json, 8192, "{\"sub\":\"a\"," EXP(1700000060) ",\"p\":\"%0*d\"}", (int)pad, 0);
    sign(HS, claims_json, KEY, strlen(KEY), token);
    size_t n = strlen(token);
    if (n < SIG_AUTH_TOKEN_MAX - 3 || n > SIG_AUTH_TOKEN_MAX + 3) continue;
    sig_auth_result_t want = n <= SIG_AUTH_TOKEN_MAX ? SIG_AUTH_OK : SIG_AUTH_INVALID;
    assert_int_equal(sig_auth_verify(a, token, n, NOW, &claims), want);
  }
  free(claims_json);
  free(token);
  sig_auth_free(a);
}

static void test_issuer_and_audience(void **state) {
  static const struct {
    const char *claims;
    sig_auth_result_t want;
  } rows[] = {
      {"{\"sub\":\"a\"," EXP(1700000060) ",\"iss\":\"https://id\",\"aud\":\"sig\"}", SIG_AUTH_OK},
      {"{\"sub\":\"a\"," EXP(1700000060) ",\"iss\":\"https://id\",\"aud\":[\"x\",\"sig\"]}",
       SIG_AUTH_OK},
      {"{\"sub\":\"a\"," EXP(1700000060) ",\"aud\":\"sig\"}", SIG_AUTH_INVALID},
      {"{\"sub\":\"a\"," EXP(1700000060) ",\"iss\":\"https://id\"}", SIG_AUTH_INVALID},
      {"{\"sub\":\"a\"," EXP(1700000060) ",\"iss\":\"https://id/\",\"aud\":\"sig\"}",
       SIG_AUTH_INVALID},
      {"{\"sub\":\"a\"," EXP(1700000060) ",\"iss\":\"https://id\",\"aud\":\"si\"}",
       SIG_AUTH_INVALID},
      {"{\"sub\":\"a\"," EXP(1700000060) ",\"iss\":\"https://id\",\"aud\":[]}", SIG_AUTH_INVALID},
      {"{\"sub\":\"a\"," EXP(1700000060) ",\"iss\":\"https://id\",\"aud\":[\"sig\",1]}",
       SIG_AUTH_INVALID},
      {"{\"sub\":\"a\"," EXP(1700000060) ",\"iss\":\"https://id\",\"aud\":{\"sig\":1}}",
       SIG_AUTH_INVALID},
      {"{\"sub\":\"a\"," EXP(1700000060) ",\"iss\":[\"https://id\"],\"aud\":\"sig\"}",
       SIG_AUTH_INVALID},
  };
  char err[256], token[1024];
  sig_auth_claims_t claims;
  (void)state;
  sig_auth_t *a = new_auth("issuer = \"https://id\"\naudience = \"sig\"\nleeway_s = 0", key_path,
                           err, sizeof err);
  assert_non_null(a);
  for (size_t i = 0; i < SIG_ARRAY_SIZE(rows); i++) {
    sign(HS, rows[i].claims, KEY, strlen(KEY), token);
    sig_auth_result_t got = sig_auth_verify(a, token, strlen(token), NOW, &claims);
    if (got != rows[i].want) print_error("row %zu: %s gave %d\n", i, rows[i].claims, got);
    assert_int_equal(got, rows[i].want);
    sig_acl_free(claims.calls);
  }
  /* leeway_s = 0: exp == now is expired */
  sign(HS, "{\"sub\":\"a\"," EXP(1700000000) ",\"iss\":\"https://id\",\"aud\":\"sig\"}", KEY,
       strlen(KEY), token);
  assert_int_equal(sig_auth_verify(a, token, strlen(token), NOW, &claims), SIG_AUTH_EXPIRED);
  sig_auth_free(a);
}

static void test_mint(void **state) {
  char err[256];
  sig_auth_claims_t claims;
  (void)state;
  sig_auth_t *a =
      new_auth("issuer = \"https://id\"\naudience = \"sig\"", key_path, err, sizeof err);
  const char *calls[] = {"cam-*", "bob"};
  char *t = sig_auth_mint(a, "alice", 600, calls, 2, NOW, err, sizeof err);
  assert_non_null(t);
  assert_int_equal(sig_auth_verify(a, t, strlen(t), NOW, &claims), SIG_AUTH_OK);
  assert_string_equal(claims.sub, "alice");
  assert_int_equal(claims.exp, NOW + 600);
  assert_true(sig_acl_allows(claims.calls, "cam-9") && sig_acl_allows(claims.calls, "bob"));
  assert_false(sig_acl_allows(claims.calls, "eve"));
  sig_acl_free(claims.calls);
  assert_int_equal(sig_auth_verify(a, t, strlen(t), NOW + 600 + 30, &claims), SIG_AUTH_EXPIRED);
  free(t);
  /* refusals */
  assert_null(sig_auth_mint(a, "a/b", 60, NULL, 0, NOW, err, sizeof err));
  assert_string_equal(err, "--sub: must be 1-128 characters of A-Z a-z 0-9 . _ ~ -");
  const char *bad[] = {"ok", "x y"};
  assert_null(sig_auth_mint(a, "a", 60, bad, 2, NOW, err, sizeof err));
  assert_string_equal(err, "--calls: 'x y' is not a domain or a prefix ending in '*'");
  sig_auth_free(a);
}

/* An EC public key: the token made with its PEM as an HMAC secret (libjwt would accept it, given
 * the PEM) and every other algorithm are refused; mode "none" verifies nothing. */
static void test_algorithm_confusion(void **state) {
  char err[256], token[1024], path[96], extra[64];
  sig_auth_claims_t claims;
  (void)state;
  EVP_PKEY *k = EVP_EC_gen("P-256");
  assert_non_null(k);
  BIO *bio = BIO_new(BIO_s_mem());
  assert_int_equal(PEM_write_bio_PUBKEY(bio, k), 1);
  char *pem;
  long pem_len = BIO_get_mem_data(bio, &pem);
  snprintf(path, sizeof path, "%s.pem", key_path);
  write_file(path, pem, (size_t)pem_len);
  snprintf(extra, sizeof extra, "algorithm = \"ES256\"");
  sig_auth_t *a = new_auth(extra, path, err, sizeof err);
  assert_non_null(a);
  const char *headers[] = {HS, "{\"alg\":\"ES256\"}", "{\"alg\":\"HS512\"}", "{\"alg\":\"none\"}"};
  for (size_t i = 0; i < SIG_ARRAY_SIZE(headers); i++) {
    sign(headers[i], "{\"sub\":\"a\"," EXP(1700000060) "}", pem, (size_t)pem_len, token);
    assert_int_equal(sig_auth_verify(a, token, strlen(token), NOW, &claims), SIG_AUTH_INVALID);
  }
  /* mint refuses a public-key configuration */
  assert_null(sig_auth_mint(a, "a", 60, NULL, 0, NOW, err, sizeof err));
  sig_auth_free(a);
  /* the wrong curve, and RS256 with an EC key, are configuration errors */
  assert_null(new_auth("algorithm = \"ES384\"", path, err, sizeof err));
  assert_non_null(strstr(err, "ES384 needs an EC public key on P-384"));
  assert_null(new_auth("algorithm = \"RS256\"", path, err, sizeof err));
  assert_non_null(strstr(err, "RS256 needs an RSA public key"));
  unlink(path);
  BIO_free(bio);
  EVP_PKEY_free(k);
  /* mode "none": every token is invalid (nothing is verified, nothing granted) */
  sig_config_t cfg;
  sig_config_init(&cfg);
  assert_int_equal(sig_auth_new(&a, &cfg, err, sizeof err), 0);
  assert_false(sig_auth_required(a));
  sign(HS, "{\"sub\":\"a\"," EXP(1700000060) "}", KEY, strlen(KEY), token);
  assert_int_equal(sig_auth_verify(a, token, strlen(token), NOW, &claims), SIG_AUTH_INVALID);
  sig_auth_free(a);
  sig_config_free(&cfg);
}

static void test_key_checks_and_rotation(void **state) {
  char err[256], path[96], t1[1024], t2[1024];
  sig_auth_claims_t claims;
  static const char other[] = "another secret of thirty-two bytes!!";
  (void)state;
  snprintf(path, sizeof path, "%s.rot", key_path);
  write_file(path, KEY, 31);
  assert_null(new_auth("", path, err, sizeof err));
  assert_non_null(strstr(err, "holds 31 bytes; an HS256 secret needs 32 at least"));
  assert_null(new_auth("", "/nonexistent/key", err, sizeof err));
  assert_non_null(strstr(err, "auth.key_file: cannot read /nonexistent/key"));
  /* a PEM key given to an HMAC algorithm: anyone with the public key could make tokens */
  static const char pem[] = "\n-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n"
                            "-----END PUBLIC KEY-----\n";
  write_file(path, pem, strlen(pem));
  assert_null(new_auth("", path, err, sizeof err));
  assert_non_null(strstr(err, "holds a PEM key, but HS256 needs a shared secret"));
  write_file(path, KEY, strlen(KEY));
  sig_auth_t *a = new_auth("", path, err, sizeof err);
  assert_non_null(a);
  sign(HS, "{\"sub\":\"a\"," EXP(1700000060) "}", KEY, strlen(KEY), t1);
  sign(HS, "{\"sub\":\"a\"," EXP(1700000060) "}", other, strlen(other), t2);
  assert_int_equal(sig_auth_verify(a, t1, strlen(t1), NOW, &claims), SIG_AUTH_OK);
  assert_int_equal(sig_auth_verify(a, t2, strlen(t2), NOW, &claims), SIG_AUTH_INVALID);
  write_file(path, other, strlen(other));
  assert_int_equal(sig_auth_reload(a, err, sizeof err), 0);
  assert_int_equal(sig_auth_verify(a, t1, strlen(t1), NOW, &claims), SIG_AUTH_INVALID);
  assert_int_equal(sig_auth_verify(a, t2, strlen(t2), NOW, &claims), SIG_AUTH_OK);
  /* a key file that no longer holds a key: the old one stays */
  write_file(path, "short", 5);
  assert_int_not_equal(sig_auth_reload(a, err, sizeof err), 0);
  assert_non_null(strstr(err, "holds 5 bytes"));
  assert_int_equal(sig_auth_verify(a, t2, strlen(t2), NOW, &claims), SIG_AUTH_OK);
  unlink(path);
  assert_int_not_equal(sig_auth_reload(a, err, sizeof err), 0);
  assert_int_equal(sig_auth_verify(a, t2, strlen(t2), NOW, &claims), SIG_AUTH_OK);
  sig_auth_free(a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_claims_table),
      cmocka_unit_test(test_sub_length),
      cmocka_unit_test(test_calls_claim),
      cmocka_unit_test(test_form),
      cmocka_unit_test(test_longest_token),
      cmocka_unit_test(test_issuer_and_audience),
      cmocka_unit_test(test_mint),
      cmocka_unit_test(test_algorithm_confusion),
      cmocka_unit_test(test_key_checks_and_rotation),
  };
  return cmocka_run_group_tests(tests, make_key_file, remove_key_file);
}
