/* The router: which connection owns which domain, the open exchanges between
 * peers, and where every offer, answer, candidate and bye goes. It is the one
 * place that decides delivery; transports (WebSocket connections today, a
 * cluster engine later) plug in through sig_router_transport_t. No I/O here. */
#ifndef SIG_ROUTER_H
#define SIG_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#include "sig_acl.h"
#include "sig_msg.h"
#include "sig_proto.h"

typedef struct sig_router_s sig_router_t;
typedef struct sig_router_peer_s sig_router_peer_t;

typedef struct {
  /* Queues a text frame on conn. */
  void (*send)(void *conn, const char *data, size_t len);
  /* Closes conn with a WebSocket close code. The router has already unregistered
   * the peer: the transport must forget it and not unregister it again.
   * send and close are called while the router walks its peers and exchanges: they
   * must not call back into the router (a failing write defers the connection's
   * end to a safe point; see sig_conn.h). */
  void (*close)(void *conn, uint16_t code, const char *reason);
  /* Monotonic milliseconds. */
  uint64_t (*now_ms)(void *ctx);
  void *ctx;
} sig_router_transport_t;

typedef struct {
  int reject_duplicates;           /* duplicate = "reject" */
  uint64_t max_domains;            /* registrations beyond this are refused (4503) */
  uint32_t max_pending_offers;     /* per answer domain */
  uint32_t max_exchanges_per_peer; /* beyond it the oldest answered exchange is forgotten */
  uint64_t answer_timeout_ms;
} sig_router_limits_t;

/* t and l are copied. */
sig_router_t *sig_router_new(const sig_router_transport_t *t, const sig_router_limits_t *l);
/* Frees every peer and exchange without notifying anyone. Accepts NULL. */
void sig_router_free(sig_router_t *r);

/* Registers domain (already validated) for conn, which may offer to whom calls allows
 * (NULL: anyone; the router takes ownership of calls, even on failure). Returns 0 with
 * *out set, or SIG_EREFUSED with the WebSocket close code and reason in why: 4409
 * "domain taken" (reject policy), 4503 "server full". Under the replace policy the
 * previous owner is closed with 4000 first. */
int sig_router_register(sig_router_t *r, const char *domain, size_t len, void *conn,
                        sig_acl_t *calls, sig_router_peer_t **out, sig_refusal_t *why);
/* Ends p's registration and its exchanges; counterparts get a bye with reason
 * "disconnected" unless the router is shutting down. Frees p. Accepts NULL. */
void sig_router_unregister(sig_router_t *r, sig_router_peer_t *p);

const char *sig_router_peer_domain(const sig_router_peer_t *p);

/* POST /offer with a decoded OfferReq. Returns 0 with the exchange id in id_out,
 * or SIG_EREFUSED with the HTTP status (404, 409, 429, 503) and "field: reason" in
 * why. */
int sig_router_offer(sig_router_t *r, const sig_msg_t *m, char id_out[SIG_MSG_ID_MAX + 1],
                     sig_refusal_t *why);

/* A text message from a registered peer: carried out, or answered with an error frame. */
void sig_router_on_message(sig_router_t *r, sig_router_peer_t *from, const char *buf, size_t len);

/* Expires pending offers whose answer_timeout has passed. */
void sig_router_tick(sig_router_t *r);

/* From now on offers are refused (503) and disconnects send no bye. */
void sig_router_shutdown(sig_router_t *r);

uint64_t sig_router_domains(const sig_router_t *r);
uint64_t sig_router_exchanges(const sig_router_t *r);

#endif
