/* The server: the listener, the connections it accepts (sig_conn) served by the
 * HTTP endpoints (sig_endpoints) and WebSocket sessions (sig_session), the
 * router between the sessions, and an orderly shutdown. */
#ifndef SIG_SERVER_H
#define SIG_SERVER_H

#include <stddef.h>

#include "sig_config.h"

struct uv_loop_s;
typedef struct sig_server_s sig_server_t;

/* Binds cfg->host and starts accepting on loop. cfg is borrowed for the server's
 * life. Returns 0 with *out set, or a negative error with a message naming the
 * address and the OS error in err. Never runs the loop; a failure may leave handles
 * closing, which the caller's next run of the loop finishes. */
int sig_server_start(sig_server_t **out, struct uv_loop_s *loop, const sig_config_t *cfg, char *err,
                     size_t errlen);

/* What --check-config can check beyond the file without binding: the TLS certificate and
 * key (readable, PEM, matching). Returns 0, or SIG_ECONFIG with the message in err. */
int sig_server_check(const sig_config_t *cfg, char *err, size_t errlen);

/* The address actually bound, "127.0.0.1:9091" or "[::1]:9091". */
const char *sig_server_address(const sig_server_t *s);

/* SIGHUP: reads the auth key file and the TLS certificate and key again (new handshakes
 * and tokens use them, open connections keep theirs) and logs the outcome; a failure keeps
 * the old key or pair and logs an ERROR naming the file and the reason. Returns 0, or
 * SIG_ECONFIG when something failed. */
int sig_server_reload(sig_server_t *s);

/* Stops accepting, closes every WebSocket with 1001 and lets in-flight requests
 * finish; calls done(arg) once every connection is gone or shutdown_timeout_s
 * has passed (then the rest are cut). Idempotent. */
void sig_server_shutdown(sig_server_t *s, void (*done)(void *arg), void *arg);

/* Releases the server after shutdown's done callback has run: its handles are
 * closed and the memory goes when the loop has run their close callbacks.
 * Accepts NULL. */
void sig_server_free(sig_server_t *s);

#endif
