/* TLS with OpenSSL 3 on the loop. A connection's SSL reads ciphertext straight from the
 * caller's buffer (the loop-wide read buffer, or what a yielded connection kept) and writes
 * records through the caller's send callback: one BIO of our own per connection, with no
 * buffer in it. With SSL_MODE_RELEASE_BUFFERS, OpenSSL holds its record buffers only while a
 * record is in flight, so an idle connection keeps only its session state. The SSL is made
 * when the first byte arrives: a connection that never speaks costs nothing here. */
#include "sig_tls.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/decodererr.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sig_util.h"

/* Handshake messages a client may send after the handshake (TLS 1.3 KeyUpdate) without data in
 * between: each costs a key derivation, and OpenSSL 3.0 does not bound them, so one connection
 * could spend ~30 ms of the loop on one 64 KiB read of them. */
#define MAX_POST_HANDSHAKE 32

struct sig_tls_ctx_s {
  SSL_CTX *ssl_ctx; /* the current pair; connections hold their own reference */
  const sig_config_t *cfg;
};

struct sig_tls_s {
  sig_tls_ctx_t *ctx;
  SSL *ssl; /* made on the first byte */
  sig_tls_send_fn send;
  void *user;
  int established;         /* the handshake completed (even if an error came after) */
  int failed;              /* a fatal error: no close_notify, no more I/O */
  unsigned post_handshake; /* handshake messages received since the last data, once established */
};

/* The ciphertext being fed (one connection at a time: the loop is single-threaded). */
static struct {
  const char *p;
  size_t len, pos;
} feed;

static BIO_METHOD *bio_method;

/* ---- the BIO: reads from `feed`, writes through the connection's send */

static int bio_read(BIO *b, char *out, int want) {
  size_t left = feed.len - feed.pos;
  const sig_tls_t *t = BIO_get_data(b);
  BIO_clear_retry_flags(b);
  if (t->post_handshake > MAX_POST_HANDSHAKE) return -1; /* no more input: sig_tls_read says why */
  if (left == 0 || want <= 0) {
    BIO_set_retry_read(b);
    return -1;
  }
  size_t n = (size_t)want < left ? (size_t)want : left;
  memcpy(out, feed.p + feed.pos, n);
  feed.pos += n;
  return (int)n;
}

static int bio_write(BIO *b, const char *data, int len) {
  sig_tls_t *t = BIO_get_data(b);
  BIO_clear_retry_flags(b);
  if (len <= 0) return 0;
  return t->send(t->user, data, (size_t)len) == 0 ? len : -1;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr) {
  (void)b, (void)num, (void)ptr;
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int bio_create(BIO *b) {
  BIO_set_init(b, 1);
  return 1;
}

static const BIO_METHOD *method(void) {
  if (bio_method != NULL) return bio_method;
  BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "signal-server");
  if (m == NULL || BIO_meth_set_read(m, bio_read) != 1 || BIO_meth_set_write(m, bio_write) != 1 ||
      BIO_meth_set_ctrl(m, bio_ctrl) != 1 || BIO_meth_set_create(m, bio_create) != 1) {
    fprintf(stderr, "%s:%d: cannot make the TLS BIO method (out of memory)\n", __FILE__, __LINE__);
    abort();
  }
  return bio_method = m;
}

/* ---- errors */

/* The reason of OpenSSL's last error for humans (static), never the whole stack. */
static const char *reason(unsigned long e) {
  if (e == 0) return "unknown error";
  if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
      (ERR_GET_REASON(e) == SSL_R_HTTP_REQUEST || ERR_GET_REASON(e) == SSL_R_HTTPS_PROXY_REQUEST))
    return "plain HTTP on the TLS port";
  if (ERR_GET_LIB(e) == ERR_LIB_OSSL_DECODER) return "nothing OpenSSL can decode";
  const char *r = ERR_reason_error_string(e);
  return r != NULL ? r : "unknown error";
}

static int failf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int failf(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  if (err != NULL && errlen > 0) {
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  ERR_clear_error();
  return SIG_ECONFIG;
}

/* ---- the context */

/* ALPN: http/1.1 when the client offers it; a client that offers only other protocols (h2
 * alone) is refused with no_application_protocol (RFC 7301 3.2); no ALPN at all is fine. */
static int on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg) {
  static const unsigned char http11[] = "http/1.1";
  (void)ssl, (void)arg;
  for (unsigned i = 0; i < inlen;) {
    unsigned n = in[i];
    if (i + 1 + n > inlen) break;
    if (n == sizeof(http11) - 1 && memcmp(in + i + 1, http11, n) == 0) {
      *out = in + i + 1;
      *outlen = (unsigned char)n;
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + n;
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

static void on_info(const SSL *ssl, int where, int ret) {
  (void)ret;
  if (where & SSL_CB_HANDSHAKE_DONE) {
    BIO *b = SSL_get_rbio(ssl); /* ours: its data is the connection (no ex_data to allocate) */
    sig_tls_t *t = b != NULL ? BIO_get_data(b) : NULL;
    if (t != NULL) t->established = 1;
  }
}

/* Counts what a client sends after the handshake (called before OpenSSL acts on it). */
static void on_message(int write_p, int version, int content_type, const void *buf, size_t len,
                       SSL *ssl, void *arg) {
  (void)version, (void)buf, (void)len, (void)arg;
  if (write_p || content_type != SSL3_RT_HANDSHAKE) return;
  BIO *b = SSL_get_rbio(ssl);
  sig_tls_t *t = b != NULL ? BIO_get_data(b) : NULL;
  if (t != NULL && t->established) t->post_handshake++;
}

/* An encrypted key would make OpenSSL ask the terminal for a passphrase: refuse instead. */
static int on_passphrase(char *buf, int size, int rwflag, void *arg) {
  (void)buf, (void)size, (void)rwflag;
  *(int *)arg = 1;
  return -1;
}

/* The file can be opened for reading (so that its error is the OS's own words). */
static int readable(const char *path, char *why, size_t whylen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    snprintf(why, whylen, "cannot read: %s", strerror(errno));
    return -1;
  }
  close(fd);
  return 0;
}

/* A new SSL_CTX with the files and settings of cfg, or NULL with the message in err. */
static SSL_CTX *load(const sig_config_t *cfg, char *err, size_t errlen) {
  const char *file = cfg->path != NULL ? cfg->path : "configuration";
  const char *cert = cfg->tls_cert_file, *key = cfg->tls_key_file;
  char why[256];
  int encrypted = 0;
  ERR_clear_error();
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == NULL) {
    failf(err, errlen, "%s: tls: cannot make a TLS context: %s", file, reason(ERR_get_error()));
    return NULL;
  }
  if (readable(cert, why, sizeof(why)) != 0) {
    failf(err, errlen, "%s: tls.cert_file: %s: %s", file, cert, why);
    goto fail;
  }
  if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
    failf(err, errlen, "%s: tls.cert_file: %s: not a PEM certificate chain (%s)", file, cert,
          reason(ERR_peek_error()));
    goto fail;
  }
  if (readable(key, why, sizeof(why)) != 0) {
    failf(err, errlen, "%s: tls.key_file: %s: %s", file, key, why);
    goto fail;
  }
  SSL_CTX_set_default_passwd_cb(ctx, on_passphrase);
  SSL_CTX_set_default_passwd_cb_userdata(ctx, &encrypted);
  if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
    unsigned long e = ERR_peek_error();
    if (ERR_GET_LIB(e) == ERR_LIB_X509 && (ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH ||
                                           ERR_GET_REASON(e) == X509_R_KEY_TYPE_MISMATCH))
      failf(err, errlen, "%s: tls.key_file: %s: does not match the certificate in %s (%s)", file,
            key, cert, reason(e));
    else if (encrypted)
      failf(err, errlen,
            "%s: tls.key_file: %s: the key is encrypted with a passphrase, which is not "
            "supported (store it unencrypted, readable by the server's user only)",
            file, key);
    else
      failf(err, errlen, "%s: tls.key_file: %s: not a PEM private key (%s)", file, key, reason(e));
    goto fail;
  }
  SSL_CTX_set_default_passwd_cb(ctx, NULL);
  SSL_CTX_set_default_passwd_cb_userdata(ctx, NULL);
  if (SSL_CTX_check_private_key(ctx) != 1) {
    failf(err, errlen, "%s: tls.key_file: %s: does not match the certificate in %s (%s)", file, key,
          cert, reason(ERR_peek_error()));
    goto fail;
  }
  if (cfg->tls_ciphers[0] != '\0' && SSL_CTX_set_cipher_list(ctx, cfg->tls_ciphers) != 1) {
    failf(err, errlen, "%s: tls.ciphers: no cipher suite that OpenSSL knows matches \"%s\" (%s)",
          file, cfg->tls_ciphers, reason(ERR_peek_error()));
    goto fail;
  }
  int min = cfg->tls_min_version == SIG_TLS_1_3 ? TLS1_3_VERSION : TLS1_2_VERSION;
  /* SSL_OP_NO_RENEGOTIATION: TLS 1.2 renegotiation is refused (1.3 has none). Tickets stay on
   * (stateless resumption); the server-side cache is off, so memory does not grow with the
   * number of handshakes. */
  if (SSL_CTX_set_min_proto_version(ctx, min) != 1) {
    failf(err, errlen, "%s: tls.min_version: not supported by this OpenSSL (%s)", file,
          reason(ERR_peek_last_error()));
    goto fail;
  }
  SSL_CTX_set_options(
      ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_alpn_select_cb(ctx, on_alpn, NULL);
  SSL_CTX_set_info_callback(ctx, on_info);
  SSL_CTX_set_msg_callback(ctx, on_message);
  ERR_clear_error();
  return ctx;

fail:
  SSL_CTX_free(ctx);
  return NULL;
}

int sig_tls_ctx_new(sig_tls_ctx_t **out, const sig_config_t *cfg, char *err, size_t errlen) {
  SSL_CTX *ssl_ctx = load(cfg, err, errlen);
  if (ssl_ctx == NULL) return SIG_ECONFIG;
  method();
  sig_tls_ctx_t *ctx = sig_calloc(1, sizeof(*ctx));
  ctx->ssl_ctx = ssl_ctx;
  ctx->cfg = cfg;
  *out = ctx;
  return 0;
}

int sig_tls_ctx_reload(sig_tls_ctx_t *ctx, char *err, size_t errlen) {
  unsigned char keys[80];
  SSL_CTX *fresh = load(ctx->cfg, err, errlen);
  if (fresh == NULL) return SIG_ECONFIG;
  /* The ticket keys carry over, so that sessions resume across a reload. */
  if (SSL_CTX_get_tlsext_ticket_keys(ctx->ssl_ctx, keys, sizeof(keys)) != 1 ||
      SSL_CTX_set_tlsext_ticket_keys(fresh, keys, sizeof(keys)) != 1) {
    SSL_CTX_free(fresh);
    OPENSSL_cleanse(keys, sizeof(keys));
    return failf(err, errlen, "tls: cannot carry the session ticket keys over: %s",
                 reason(ERR_peek_last_error()));
  }
  OPENSSL_cleanse(keys, sizeof(keys));
  SSL_CTX_free(ctx->ssl_ctx); /* open connections keep their own reference */
  ctx->ssl_ctx = fresh;
  return 0;
}

const char *sig_tls_ctx_describe(const sig_tls_ctx_t *ctx, char *buf, size_t len) {
  X509 *x = SSL_CTX_get0_certificate(ctx->ssl_ctx);
  char subject[256] = "?", serial[128] = "?", until[32] = "?";
  if (x != NULL) {
    if (X509_NAME_oneline(X509_get_subject_name(x), subject, sizeof(subject)) == NULL)
      snprintf(subject, sizeof(subject), "?");
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;
    if (hex != NULL) snprintf(serial, sizeof(serial), "%s", hex);
    OPENSSL_free(hex);
    BN_free(bn);
    struct tm tm;
    if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1)
      strftime(until, sizeof(until), "%Y-%m-%dT%H:%M:%SZ", &tm);
  }
  ERR_clear_error();
  snprintf(buf, len, "subject=\"%s\" serial=%s not_after=%s", subject, serial, until);
  return buf;
}

void sig_tls_ctx_free(sig_tls_ctx_t *ctx) {
  if (ctx == NULL) return;
  SSL_CTX_free(ctx->ssl_ctx);
  free(ctx);
}

/* ---- a connection */

sig_tls_t *sig_tls_new(sig_tls_ctx_t *ctx, sig_tls_send_fn send, void *user) {
  sig_tls_t *t = sig_calloc(1, sizeof(*t));
  t->ctx = ctx;
  t->send = send;
  t->user = user;
  return t;
}

void sig_tls_free(sig_tls_t *t) {
  if (t == NULL) return;
  SSL_free(t->ssl); /* frees the BIO too */
  free(t);
}

/* The SSL and its BIO, on the context's current pair. Out of memory aborts. */
static void start(sig_tls_t *t) {
  SSL *ssl = SSL_new(t->ctx->ssl_ctx);
  BIO *bio = ssl != NULL ? BIO_new(method()) : NULL;
  if (bio == NULL) {
    fprintf(stderr, "%s:%d: cannot make a TLS connection (out of memory)\n", __FILE__, __LINE__);
    abort();
  }
  BIO_set_data(bio, t);
  SSL_set_bio(ssl, bio, bio); /* the same BIO both ways: one reference, owned by ssl */
  SSL_set_accept_state(ssl);
  t->ssl = ssl;
}

int sig_tls_read(sig_tls_t *t, const char *in, size_t len, size_t *used, char *out, size_t outcap,
                 size_t *outlen, const char **why) {
  *used = 0;
  *outlen = 0;
  *why = NULL;
  if (t->failed) {
    *why = "connection failed before";
    return SIG_EPROTO;
  }
  if (t->ssl == NULL) start(t);
  int cap = outcap < INT_MAX ? (int)outcap : INT_MAX, n, e;
  feed.p = in, feed.len = len, feed.pos = 0;
  size_t before;
  do { /* WANT_READ with input left is not expected; it would only mean: go on */
    before = feed.pos;
    ERR_clear_error();
    n = SSL_read(t->ssl, out, cap);
    e = n > 0 ? SSL_ERROR_NONE : SSL_get_error(t->ssl, n);
  } while (e == SSL_ERROR_WANT_READ && feed.pos < feed.len && feed.pos > before);
  *used = feed.pos;
  feed.p = NULL, feed.len = feed.pos = 0;
  switch (e) {
    case SSL_ERROR_NONE:
      *outlen = (size_t)n;
      t->post_handshake = 0;
      return 0;
    case SSL_ERROR_WANT_READ:
      if (*used == len) return 0;
      *why = "no progress on the input"; /* never loop on it */
      break;
    case SSL_ERROR_ZERO_RETURN: return SIG_TLS_EOF;
    case SSL_ERROR_SYSCALL:
      *why = t->post_handshake > MAX_POST_HANDSHAKE ? "too many KeyUpdates without data"
                                                    : "sending failed";
      break;
    default: *why = reason(ERR_peek_last_error()); break;
  }
  t->failed = 1;
  ERR_clear_error();
  return SIG_EPROTO;
}

int sig_tls_write(sig_tls_t *t, const char *data, size_t len) {
  if (t->ssl == NULL || t->failed || !SSL_is_init_finished(t->ssl)) return SIG_EPROTO;
  while (len > 0) {
    int chunk = len < INT_MAX ? (int)len : INT_MAX;
    ERR_clear_error();
    int n = SSL_write(t->ssl, data, chunk);
    if (n <= 0) { /* send failed (our BIO never asks to retry) */
      t->failed = 1;
      ERR_clear_error();
      return SIG_EPROTO;
    }
    data += n;
    len -= (size_t)n;
  }
  return 0;
}

int sig_tls_ready(const sig_tls_t *t) {
  return t->established;
}

void sig_tls_close(sig_tls_t *t) {
  if (t == NULL || t->ssl == NULL || t->failed || !SSL_is_init_finished(t->ssl)) return;
  ERR_clear_error();
  SSL_shutdown(t->ssl); /* 0: our close_notify went out; the peer's is not awaited */
  ERR_clear_error();
  t->failed = 1; /* nothing more goes out */
}
