/* TLS on the loop, with OpenSSL 3: a server context (certificate chain, key and settings,
 * reloadable while connections go on) and the state of one connection. It does no I/O of
 * its own: ciphertext comes in from the caller's buffer and goes out through the caller's
 * send callback (a BIO over those, no memory BIOs), so an idle connection holds no record
 * buffer, only OpenSSL's session state. Only this module includes OpenSSL's ssl.h. */
#ifndef SIG_TLS_H
#define SIG_TLS_H

#include <stddef.h>

#include "sig_config.h"

typedef struct sig_tls_ctx_s sig_tls_ctx_t;
typedef struct sig_tls_s sig_tls_t;

/* Where a connection's ciphertext goes: send(user, data, len) queues or writes all len
 * bytes and returns 0, or a negative error (the connection is failing). */
typedef int (*sig_tls_send_fn)(void *user, const char *data, size_t len);

/* Loads cfg->tls_cert_file (PEM: the certificate, then any chain), cfg->tls_key_file (PEM,
 * unencrypted) and checks that they match; applies min_version, ciphers, ALPN http/1.1,
 * session tickets. cfg is borrowed for the context's life (reloads read the same paths).
 * Returns 0 with *out set, or SIG_ECONFIG with "FILE: tls.KEY: PATH: reason" in err. */
int sig_tls_ctx_new(sig_tls_ctx_t **out, const sig_config_t *cfg, char *err, size_t errlen);
/* Reads the certificate and key again: new handshakes use the new pair, open connections
 * keep theirs. Returns 0, or SIG_ECONFIG with the reason in err and the old pair kept. */
int sig_tls_ctx_reload(sig_tls_ctx_t *ctx, char *err, size_t errlen);
/* One line on the certificate in use ("subject=… serial=… not_after=…") in buf. */
const char *sig_tls_ctx_describe(const sig_tls_ctx_t *ctx, char *buf, size_t len);
/* Accepts NULL. Every connection made from it must be freed first. */
void sig_tls_ctx_free(sig_tls_ctx_t *ctx);

/* A server-side connection on ctx's current certificate (taken when its first byte
 * arrives); its records go out through send(user, …). */
sig_tls_t *sig_tls_new(sig_tls_ctx_t *ctx, sig_tls_send_fn send, void *user);
/* Accepts NULL. Sends nothing (see sig_tls_close). */
void sig_tls_free(sig_tls_t *t);

/* sig_tls_read's outcomes besides 0 and errors. */
#define SIG_TLS_EOF 1 /* the peer sent close_notify */

/* Feeds the ciphertext in[0..len) and decrypts at most one record into out (outcap must be
 * at least SIG_TLS_RECORD_MAX), running the handshake on the way (its replies go out
 * through send). *used = ciphertext bytes consumed, *outlen = plaintext bytes produced;
 * *outlen is 0 only once all of in is consumed. Returns 0; SIG_TLS_EOF; or SIG_EPROTO
 * with the reason for humans in *why (static), the connection unusable (an alert may have
 * gone out). */
int sig_tls_read(sig_tls_t *t, const char *in, size_t len, size_t *used, char *out, size_t outcap,
                 size_t *outlen, const char **why);
#define SIG_TLS_RECORD_MAX 16384

/* Encrypts len bytes (records of at most SIG_TLS_RECORD_MAX) and sends them. Returns 0, or a
 * negative error (send failed, or the handshake is not complete). */
int sig_tls_write(sig_tls_t *t, const char *data, size_t len);

/* 1 once the handshake has completed (also after a later error). */
int sig_tls_ready(const sig_tls_t *t);

/* Sends close_notify if the connection is established and healthy (never blocks). */
void sig_tls_close(sig_tls_t *t);

#endif
