/* Unit tests for sig_tls against an OpenSSL client over memory BIOs: the handshake and data
 * whatever the ciphertext's split (every chunk size from 1 byte, records cut anywhere), at most
 * one record per read, large writes, the ALPN choice, close_notify, errors as one reason, and a
 * reload (new connections get the new pair, open ones keep theirs; a failed reload changes
 * nothing). The certificates are made here with OpenSSL's own API. */
#include <limits.h>
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
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "sig_config.h"
#include "sig_tls.h"
#include "sig_util.h"

static char dir[PATH_MAX];

/* A self-signed certificate for localhost with serial `serial` and its key, written as
 * dir/NAME.crt and dir/NAME.key. */
static void make_pair(const char *name, long serial) {
  char path[PATH_MAX + 32];
  EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  X509 *x = X509_new();
  assert_non_null(key);
  assert_non_null(x);
  assert_int_equal(X509_set_version(x, 2), 1);
  assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial), 1);
  assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -3600));
  assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
  X509_NAME *n = X509_get_subject_name(x);
  assert_int_equal(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                                              (const unsigned char *)"localhost", -1, -1, 0),
                   1);
  assert_int_equal(X509_set_issuer_name(x, n), 1);
  assert_int_equal(X509_set_pubkey(x, key), 1);
  assert_true(X509_sign(x, key, EVP_sha256()) > 0);
  snprintf(path, sizeof(path), "%s/%s.crt", dir, name);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  assert_int_equal(PEM_write_X509(f, x), 1);
  fclose(f);
  snprintf(path, sizeof(path), "%s/%s.key", dir, name);
  f = fopen(path, "w");
  assert_non_null(f);
  assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
  fclose(f);
  X509_free(x);
  EVP_PKEY_free(key);
}

static void copy_file(const char *from, const char *to) {
  char a[PATH_MAX + 32], b[PATH_MAX + 32], buf[8192];
  snprintf(a, sizeof(a), "%s/%s", dir, from);
  snprintf(b, sizeof(b), "%s/%s", dir, to);
  FILE *in = fopen(a, "rb"), *out = fopen(b, "wb");
  assert_non_null(in);
  assert_non_null(out);
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), in)) > 0) assert_int_equal(fwrite(buf, 1, n, out), n);
  fclose(in);
  fclose(out);
}

static void config_for(sig_config_t *cfg, const char *cert, const char *key) {
  char path[PATH_MAX + 32];
  sig_config_init(cfg);
  cfg->tls = 1;
  free(cfg->tls_cert_file);
  free(cfg->tls_key_file);
  snprintf(path, sizeof(path), "%s/%s", dir, cert);
  cfg->tls_cert_file = sig_strdup(path);
  snprintf(path, sizeof(path), "%s/%s", dir, key);
  cfg->tls_key_file = sig_strdup(path);
}

/* ---- a connection between an OpenSSL client (memory BIOs) and a sig_tls server */

typedef struct {
  SSL_CTX *cctx;
  SSL *client;
  BIO *to_client; /* what the server sent, for the client to read */
  BIO *from_client;
  sig_tls_t *server;
  char plain[1 << 20]; /* what the server decrypted */
  size_t plain_len;
  int eof;
  int fail_sends; /* the send callback fails */
} pair_t;

static int on_send(void *user, const char *data, size_t len) {
  pair_t *p = user;
  if (p->fail_sends) return -1;
  assert_int_equal(BIO_write(p->to_client, data, (int)len), (int)len);
  return 0;
}

static void pair_open(pair_t *p, sig_tls_ctx_t *ctx, const char *alpn, size_t alpn_len) {
  memset(p, 0, sizeof(*p));
  p->cctx = SSL_CTX_new(TLS_client_method());
  assert_non_null(p->cctx);
  if (alpn != NULL)
    assert_int_equal(
        SSL_CTX_set_alpn_protos(p->cctx, (const unsigned char *)alpn, (unsigned)alpn_len), 0);
  p->client = SSL_new(p->cctx);
  p->to_client = BIO_new(BIO_s_mem());
  p->from_client = BIO_new(BIO_s_mem());
  SSL_set_bio(p->client, p->to_client, p->from_client);
  SSL_set_connect_state(p->client);
  p->server = sig_tls_new(ctx, on_send, p);
}

static void pair_close(pair_t *p) {
  sig_tls_free(p->server);
  SSL_free(p->client);
  SSL_CTX_free(p->cctx);
}

/* Feeds what the client wrote to the server in chunks of `chunk` bytes, as the connection layer
 * does: each call's plaintext collected, its unconsumed rest fed again. Returns the last
 * sig_tls_read outcome (0, SIG_TLS_EOF or an error). */
static int feed_server(pair_t *p, size_t chunk, const char **why) {
  char buf[65536], out[SIG_TLS_RECORD_MAX];
  int n, rc = 0;
  *why = NULL;
  while ((n = BIO_read(p->from_client, buf, sizeof(buf))) > 0) {
    for (size_t at = 0; at < (size_t)n;) {
      size_t len = (size_t)n - at < chunk ? (size_t)n - at : chunk, pos = 0;
      for (;;) {
        size_t used, got;
        rc = sig_tls_read(p->server, buf + at + pos, len - pos, &used, out, sizeof(out), &got, why);
        pos += used;
        if (rc != 0) return rc;
        assert_true(got <= SIG_TLS_RECORD_MAX);
        if (got == 0) {
          assert_int_equal(pos, len); /* nothing produced: everything consumed */
          break;
        }
        memcpy(p->plain + p->plain_len, out, got);
        p->plain_len += got;
      }
      at += len;
    }
  }
  return rc;
}

/* Runs the handshake to its end, feeding the server `chunk` bytes at a time. */
static void handshake(pair_t *p, size_t chunk) {
  const char *why;
  for (int i = 0; i < 20; i++) {
    int rc = SSL_do_handshake(p->client);
    if (rc == 1 && sig_tls_ready(p->server)) return;
    if (rc != 1) assert_int_equal(SSL_get_error(p->client, rc), SSL_ERROR_WANT_READ);
    assert_int_equal(feed_server(p, chunk, &why), 0);
  }
  fail_msg("no handshake after 20 rounds (chunk %zu)", chunk);
}

static sig_tls_ctx_t *ctx_for(sig_config_t *cfg, const char *cert, const char *key) {
  sig_tls_ctx_t *ctx = NULL;
  char err[512] = "";
  config_for(cfg, cert, key);
  if (sig_tls_ctx_new(&ctx, cfg, err, sizeof(err)) != 0) fail_msg("%s", err);
  return ctx;
}

static void test_split_invariance(void **state) {
  static const size_t chunks[] = {1, 2, 3, 5, 7, 13, 64, 517, 1400, 16389, 65536};
  char msg[40000];
  sig_config_t cfg;
  sig_tls_ctx_t *ctx = ctx_for(&cfg, "a.crt", "a.key");
  (void)state;
  for (size_t i = 0; i < sizeof(msg); i++) msg[i] = (char)('a' + i % 26);
  for (size_t k = 0; k < SIG_ARRAY_SIZE(chunks); k++) {
    pair_t *p = malloc(sizeof(*p));
    const char *why;
    pair_open(p, ctx, "\x08http/1.1", 9);
    handshake(p, chunks[k]);
    /* three records (16 KB, 16 KB, the rest), cut wherever the chunk size falls */
    assert_int_equal(SSL_write(p->client, msg, sizeof(msg)), (int)sizeof(msg));
    assert_int_equal(feed_server(p, chunks[k], &why), 0);
    assert_int_equal(p->plain_len, sizeof(msg));
    assert_memory_equal(p->plain, msg, sizeof(msg));
    pair_close(p);
    free(p);
  }
  sig_tls_ctx_free(ctx);
  sig_config_free(&cfg);
}

static void test_write_and_alpn(void **state) {
  static char big[100000], got[sizeof(big)];
  sig_config_t cfg;
  sig_tls_ctx_t *ctx = ctx_for(&cfg, "a.crt", "a.key");
  pair_t *p = malloc(sizeof(*p));
  const unsigned char *alpn;
  unsigned alpn_len;
  size_t have = 0;
  (void)state;
  pair_open(p, ctx, "\x02h2\x08http/1.1", 12);
  assert_int_equal(sig_tls_write(p->server, "x", 1), SIG_EPROTO); /* no handshake yet */
  handshake(p, 4096);
  SSL_get0_alpn_selected(p->client, &alpn, &alpn_len);
  assert_int_equal(alpn_len, 8);
  assert_memory_equal(alpn, "http/1.1", 8);
  for (size_t i = 0; i < sizeof(big); i++) big[i] = (char)(i * 7);
  assert_int_equal(sig_tls_write(p->server, big, sizeof(big)), 0);
  while (have < sizeof(big)) {
    int n = SSL_read(p->client, got + have, (int)(sizeof(got) - have));
    assert_true(n > 0);
    have += (size_t)n;
  }
  assert_memory_equal(got, big, sizeof(big));
  /* close_notify both ways: ours reaches the client; the client's reads as EOF */
  sig_tls_close(p->server);
  char c;
  assert_int_equal(SSL_read(p->client, &c, 1), 0);
  assert_int_equal(SSL_get_error(p->client, 0), SSL_ERROR_ZERO_RETURN);
  pair_close(p);

  pair_open(p, ctx, NULL, 0); /* no ALPN at all: fine */
  handshake(p, 4096);
  SSL_get0_alpn_selected(p->client, &alpn, &alpn_len);
  assert_int_equal(alpn_len, 0);
  const char *why;
  assert_true(SSL_shutdown(p->client) >= 0);
  assert_int_equal(feed_server(p, 4096, &why), SIG_TLS_EOF);
  pair_close(p);

  pair_open(p, ctx, "\x02h2", 3); /* h2 only: no_application_protocol */
  assert_int_equal(SSL_do_handshake(p->client), -1);
  assert_int_equal(feed_server(p, 4096, &why), SIG_EPROTO);
  assert_string_equal(why, "no application protocol");
  assert_false(sig_tls_ready(p->server));
  assert_int_equal(SSL_do_handshake(p->client), -1); /* the client reads the alert */
  assert_int_equal(SSL_get_error(p->client, -1), SSL_ERROR_SSL);
  pair_close(p);
  free(p);
  sig_tls_ctx_free(ctx);
  sig_config_free(&cfg);
}

static void test_errors_are_one_reason(void **state) {
  sig_config_t cfg;
  sig_tls_ctx_t *ctx = ctx_for(&cfg, "a.crt", "a.key");
  static const struct {
    const char *bytes;
    size_t len;
    const char *why;
  } cases[] = {
      {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27, "plain HTTP on the TLS port"},
      {"POST /offer HTTP/1.1\r\n", 22, "plain HTTP on the TLS port"},
      /* a ClientHello that announces 16 MB: refused at its 4-byte header */
      {"\x16\x03\x01\x00\x04\x01\xff\xff\xff", 9, "excessive message size"},
      {"\x15\x03\x03\x00\x02\x02\x28", 7,
       "unexpected message"}, /* an alert instead of a ClientHello */
  };
  (void)state;
  for (size_t i = 0; i < SIG_ARRAY_SIZE(cases); i++) {
    char out[SIG_TLS_RECORD_MAX];
    size_t used, got;
    const char *why;
    pair_t *sink = calloc(1, sizeof(*sink));
    sink->to_client = BIO_new(BIO_s_mem());
    sig_tls_t *t = sig_tls_new(ctx, on_send, sink);
    int rc = sig_tls_read(t, cases[i].bytes, cases[i].len, &used, out, sizeof(out), &got, &why);
    if (rc != SIG_EPROTO) fail_msg("case %zu: rc %d used %zu", i, rc, used);
    assert_string_equal(why, cases[i].why);
    assert_int_equal(got, 0);
    /* a failed connection stays failed */
    assert_int_equal(sig_tls_read(t, "x", 1, &used, out, sizeof(out), &got, &why), SIG_EPROTO);
    sig_tls_close(t); /* nothing to say after a failure */
    sig_tls_free(t);
    BIO_free(sink->to_client);
    free(sink);
  }
  sig_tls_ctx_free(ctx);
  sig_config_free(&cfg);
}

/* The serial of the certificate the client got. */
static long peer_serial(SSL *client) {
  X509 *x = SSL_get0_peer_certificate(client);
  assert_non_null(x);
  return ASN1_INTEGER_get(X509_get0_serialNumber(x));
}

static void test_reload(void **state) {
  char path[PATH_MAX + 32], err[1024] = "";
  sig_config_t cfg;
  pair_t *old = malloc(sizeof(*old)), *fresh = malloc(sizeof(*fresh));
  const char *why;
  (void)state;
  make_pair("live", 1);
  sig_tls_ctx_t *ctx = ctx_for(&cfg, "live.crt", "live.key");
  pair_open(old, ctx, "\x08http/1.1", 9);
  handshake(old, 1000);
  assert_int_equal(peer_serial(old->client), 1);

  /* a new pair on disk, then the reload */
  make_pair("live", 2);
  assert_int_equal(sig_tls_ctx_reload(ctx, err, sizeof(err)), 0);
  pair_open(fresh, ctx, "\x08http/1.1", 9);
  handshake(fresh, 1000);
  assert_int_equal(peer_serial(fresh->client), 2);
  /* the old connection goes on, on its old keys */
  assert_int_equal(SSL_write(old->client, "still here", 10), 10);
  assert_int_equal(feed_server(old, 7, &why), 0);
  assert_int_equal(old->plain_len, 10);
  assert_memory_equal(old->plain, "still here", 10);
  pair_close(fresh);

  /* a failed reload: the certificate of another key, then garbage; the pair in use stays */
  make_pair("other", 3);
  copy_file("other.crt", "live.crt");
  assert_int_equal(sig_tls_ctx_reload(ctx, err, sizeof(err)), SIG_ECONFIG);
  assert_non_null(strstr(err, "tls.key_file: "));
  assert_non_null(strstr(err, "does not match the certificate in "));
  snprintf(path, sizeof(path), "%s/live.crt", dir);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs("garbage\n", f);
  fclose(f);
  assert_int_equal(sig_tls_ctx_reload(ctx, err, sizeof(err)), SIG_ECONFIG);
  assert_non_null(strstr(err, "tls.cert_file: "));
  assert_non_null(strstr(err, "not a PEM certificate chain (no start line)"));
  pair_open(fresh, ctx, "\x08http/1.1", 9);
  handshake(fresh, 1000);
  assert_int_equal(peer_serial(fresh->client), 2);
  char about[512];
  assert_non_null(strstr(sig_tls_ctx_describe(ctx, about, sizeof(about)), "serial=02 "));
  pair_close(fresh);
  pair_close(old);
  free(fresh);
  free(old);
  sig_tls_ctx_free(ctx);
  sig_config_free(&cfg);
}

static void test_ctx_errors(void **state) {
  static const struct {
    const char *cert, *key, *field, *file, *reason;
  } cases[] = {
      {"missing.crt", "a.key", "cert_file", "missing.crt",
       "cannot read: No such file or directory"},
      {"a.key", "a.key", "cert_file", "a.key", "not a PEM certificate chain (no start line)"},
      {"a.crt", "missing.key", "key_file", "missing.key", "cannot read: No such file or directory"},
      {"a.crt", "b.key", "key_file", "b.key", "does not match the certificate in "},
      {"a.crt", "a.crt", "key_file", "a.crt", "not a PEM private key (nothing OpenSSL can decode)"},
  };
  (void)state;
  make_pair("b", 9);
  for (size_t i = 0; i < SIG_ARRAY_SIZE(cases); i++) {
    sig_config_t cfg;
    sig_tls_ctx_t *ctx = NULL;
    char err[1024] = "", want[PATH_MAX + 256];
    config_for(&cfg, cases[i].cert, cases[i].key);
    cfg.path = sig_strdup("x.toml");
    snprintf(want, sizeof(want), "x.toml: tls.%s: %s/%s: %s", cases[i].field, dir, cases[i].file,
             cases[i].reason);
    assert_int_equal(sig_tls_ctx_new(&ctx, &cfg, err, sizeof(err)), SIG_ECONFIG);
    assert_null(ctx);
    if (strncmp(err, want, strlen(want)) != 0) fail_msg("want: %s\ngot:  %s", want, err);
    sig_config_free(&cfg);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_split_invariance),
      cmocka_unit_test(test_write_and_alpn),
      cmocka_unit_test(test_errors_are_one_reason),
      cmocka_unit_test(test_reload),
      cmocka_unit_test(test_ctx_errors),
  };
  snprintf(dir, sizeof(dir), "/tmp/sig-test-tls-XXXXXX");
  if (mkdtemp(dir) == NULL) return 1;
  make_pair("a", 7);
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  char cmd[PATH_MAX + 16];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
  if (system(cmd) != 0) rc = rc != 0 ? rc : 1;
  return rc;
}
