/* The server: the listener, the connections it accepts (sig_conn) served by the
 * HTTP endpoints (sig_endpoints) and WebSocket sessions (sig_session), the
 * router between the sessions, and an orderly shutdown. */
#ifndef SIG_SERVER_H
#define SIG_SERVER_H

#include <stddef.h>

#include "sig_config.h"

struct uv_loop_s;
typedef struct sig_server_s sig_server_t;

/* Whether cfg->host resolves (a host name to an address), as sig_server_listen will need;
 * binds nothing. Returns 0, or a negative error with "server.host: cannot resolve …" in err. */
int sig_server_check_host(const sig_config_t *cfg, char *err, size_t errlen);

/* What --check-config can check beyond the file without binding: the TLS certificate and
 * key (readable, PEM, matching). Returns 0, or SIG_ECONFIG with the message in err. */
int sig_server_check(const sig_config_t *cfg, char *err, size_t errlen);

/* Resolves and binds cfg->host and listens (sharing the port through SO_REUSEPORT when
 * cfg->workers > 1). Returns the socket's descriptor, or a negative error with a message
 * naming the address and the reason in err. Logs nothing: a start that fails here has not
 * opened its log yet (the port in use may be another instance's, and so may the log). */
int sig_server_listen(const sig_config_t *cfg, char *err, size_t errlen);

/* Starts accepting on fd (from sig_server_listen; owned from now on, closed on failure) on
 * loop. cfg is borrowed for the server's life; its live keys may change (sig_server_reload).
 * Returns 0 with *out set, or a negative error with a message in err. Never runs the loop; a
 * failure may leave handles closing, which the caller's next run of the loop finishes. */
int sig_server_start(sig_server_t **out, struct uv_loop_s *loop, const sig_config_t *cfg, int fd,
                     char *err, size_t errlen);

/* The start line's words into buf (n bytes): "listening on ADDRESS, open URL", URL the demo
 * page where a person can open it. address is where the server listens ("127.0.0.1:9091",
 * "[::]:9091", "localhost:9091"); a host name (cfg->host_addr) is kept in the URL. A wildcard
 * address (every interface) names the loopback address for this machine and, as an example,
 * one of the machine's own addresses for the others. */
void sig_server_start_line(const sig_config_t *cfg, const char *address, char *buf, size_t n);

/* The address actually bound, "127.0.0.1:9091" or "[::1]:9091". */
const char *sig_server_address(const sig_server_t *s);

/* SIGHUP's work on the server: takes the values of the live keys from its configuration,
 * which the caller has just changed in place (sig_config_update; call this before the loop
 * runs again: the server's origin list points into it), and reads the auth key file, the
 * TLS certificate and key and the TURN secret file again (key rotation). New limits hold for
 * the next request, connection and message; open connections go on, new handshakes, tokens and
 * TURN credentials use the new key, pair or secret. A failure keeps the old one and logs an
 * ERROR naming the file and the reason. Returns 0, or SIG_ECONFIG when something failed. */
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
