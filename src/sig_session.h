/* A registered WebSocket peer on a connection: frames in go to the router, the
 * router's frames go out, pings keep it honest, and the closing handshake ends
 * it. It is the router's transport for local peers (sig_sessions_transport). */
#ifndef SIG_SESSION_H
#define SIG_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "sig_acl.h"
#include "sig_conn.h"
#include "sig_proto.h"
#include "sig_router.h"

/* What every session shares: plain data owned by the server. */
typedef struct {
  sig_router_t *router;
  uint64_t max_message_bytes;
  uint32_t messages_per_s, messages_burst; /* each connection's message rate */
} sig_sessions_t;

/* The router transport that delivers to sessions (its ctx is the loop). */
sig_router_transport_t sig_sessions_transport(struct uv_loop_s *loop);

/* Takes over c right after the 101 response went out: registers domain (already
 * validated; copied) with the router, allowed to call whom calls allows (NULL: anyone;
 * ownership passes to the session), or closes c with the refusal's close code: refused
 * (not NULL: an auth refusal decided before the upgrade, such as 4401), else the
 * router's (4409, 4503). rest holds bytes that followed the request head in the same
 * read: they are the first WebSocket frames. Returns how many of them it handled (the
 * connection keeps the others for its next turn). */
size_t sig_session_start(sig_conn_t *c, const sig_sessions_t *env, const char *domain, size_t len,
                         sig_acl_t *calls, const sig_refusal_t *refused, const char *rest,
                         size_t rest_len);

#endif
