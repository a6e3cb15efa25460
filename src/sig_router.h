/* The router: which connection owns which domain, the open exchanges between
 * peers, and where every offer, answer, candidate and bye goes. It is the one
 * place that decides delivery: local peers through sig_router_transport_t (the
 * WebSocket sessions), peers on other nodes of a cluster through
 * sig_router_cluster_t (sig_cluster, on Redis). No I/O here. */
#ifndef SIG_ROUTER_H
#define SIG_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#include "sig_acl.h"
#include "sig_msg.h"
#include "sig_proto.h"

typedef struct sig_router_s sig_router_t;

/* Room for a client address in a log line. */
#define SIG_ROUTER_ADDR_MAX 80
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
  /* conn's client address for log lines ("192.0.2.7:51234") in buf; NULL: not known. */
  const char *(*address)(void *conn, char buf[SIG_ROUTER_ADDR_MAX]);
} sig_router_transport_t;

typedef struct {
  int reject_duplicates;           /* duplicate = "reject" */
  uint64_t max_domains;            /* registrations beyond this are refused (4503) */
  uint32_t max_pending_offers;     /* per answer domain */
  uint32_t max_exchanges_per_peer; /* beyond it the oldest answered exchange is forgotten */
  uint64_t answer_timeout_ms;
} sig_router_limits_t;

/* The cluster behind the router (sig_cluster implements it; docs/CLUSTER.md): where domains
 * that are not local live, and a way to reach their nodes. Every callback runs later, from
 * the loop, never from within the call that started it; each runs exactly once. */
typedef struct {
  void *ctx;
  const char *self; /* this node's id */
  /* Whether Redis answers now. */
  int (*up)(void *ctx);
  /* Claims domain for registration reg (mode: SIG_CLAIM_*). Returns 0 and later calls
   * done(arg, rc): 0 won, SIG_EREFUSED taken (reject) or lost (restore), negative unavailable.
   * Returns negative (and never calls done) when Redis is away. */
  int (*claim)(void *ctx, const char *domain, uint64_t reg, int mode,
               void (*done)(void *arg, int rc), void *arg);
  /* Removes the directory entry of domain if it is still registration reg (best effort). */
  void (*release)(void *ctx, const char *domain, uint64_t reg);
  /* Publishes msg to the node that holds domain, only if `also` (when not NULL) is registered
   * too. Returns 0 and later calls done(arg, rc, node) (done may be NULL): rc 1 delivered to
   * node, 0 domain not registered or its node gone, 2 `also` not registered, negative
   * unavailable. Returns negative (never calling done) when Redis is away. */
  int (*route)(void *ctx, const char *domain, const char *also, const char *msg, size_t len,
               void (*done)(void *arg, int rc, const char *node), void *arg);
  /* Publishes msg to node. Returns 0, or negative when Redis is away. */
  int (*send)(void *ctx, const char *node, const char *msg, size_t len);
  uint64_t request_timeout_ms;
} sig_router_cluster_t;

enum { SIG_CLAIM_REPLACE, SIG_CLAIM_REJECT, SIG_CLAIM_RESTORE };

/* t and l are copied. */
sig_router_t *sig_router_new(const sig_router_transport_t *t, const sig_router_limits_t *l);

/* Puts the router in a cluster (c is copied): domains that are not local are looked up and
 * reached through it. Call before any registration. */
void sig_router_set_cluster(sig_router_t *r, const sig_router_cluster_t *c);

/* A message from another node (sig_nodemsg), carried out. */
void sig_router_node_message(sig_router_t *r, const char *buf, size_t len);
/* node is gone: every exchange with a peer on it ends (bye "disconnected" to ours). */
void sig_router_node_gone(sig_router_t *r, const char *node);
/* Redis is back (or was restarted empty): every local registration is claimed again; one that
 * another node took meanwhile is closed with 4000. */
void sig_router_republish(sig_router_t *r);
/* Calls each(arg, node) for every node this one has exchanges with. */
void sig_router_each_home(const sig_router_t *r, void (*each)(void *arg, const char *node),
                          void *arg);
/* Frees every peer and exchange without notifying anyone. Accepts NULL. */
void sig_router_free(sig_router_t *r);

/* Registers domain (already validated) for conn, which may offer to whom calls allows
 * (NULL: anyone; the router takes ownership of calls, even on failure). Returns 0 with
 * *out set, or SIG_EREFUSED with the WebSocket close code and reason in why: 4409
 * "domain taken" (reject policy), 4503 "server full". Under the replace policy the
 * previous owner is closed with 4000 first. */
int sig_router_register(sig_router_t *r, const char *domain, size_t len, void *conn,
                        sig_acl_t *calls, sig_router_peer_t **out, sig_refusal_t *why);

/* Something that completes later (a registration or an offer that waits for the cluster). */
typedef struct sig_router_wait_s sig_router_wait_t;
/* The completions: p is the registered peer (NULL with why on a refusal); an offer's status is
 * 200 with its exchange id, or the refusal's status and message. */
typedef void (*sig_router_registered_fn)(void *arg, sig_router_peer_t *p, const sig_refusal_t *why);
typedef void (*sig_router_offered_fn)(void *arg, int status, const char *msg, const char *id);

/* sig_router_register, which in a cluster first claims the domain: then it returns
 * SIG_EINPROGRESS with *wait set, and done(arg, …) runs later, unless sig_router_cancel(wait)
 * ran first. A refusal that comes later is 4409 "domain taken", 4503 "server full", or 1013
 * "cluster: unavailable" (duplicate = "reject" while Redis is away). */
int sig_router_register_async(sig_router_t *r, const char *domain, size_t len, void *conn,
                              sig_acl_t *calls, sig_router_peer_t **out, sig_refusal_t *why,
                              sig_router_registered_fn done, void *arg, sig_router_wait_t **wait);
/* The caller is gone: its completion will not run (what it started still completes). */
void sig_router_cancel(sig_router_wait_t *wait);
/* Ends p's registration and its exchanges; counterparts get a bye with reason
 * "disconnected" unless the router is shutting down. Frees p. Accepts NULL. */
void sig_router_unregister(sig_router_t *r, sig_router_peer_t *p);

const char *sig_router_peer_domain(const sig_router_peer_t *p);

/* POST /offer with a decoded OfferReq. Returns 0 with the exchange id in id_out,
 * or SIG_EREFUSED with the HTTP status (404, 409, 429, 503) and "field: reason" in
 * why. */
int sig_router_offer(sig_router_t *r, const sig_msg_t *m, char id_out[SIG_MSG_ID_MAX + 1],
                     sig_refusal_t *why);
/* sig_router_offer, which in a cluster may need other nodes (offer_domain or answer_domain
 * not local): then SIG_EINPROGRESS with *wait set and done(arg, status, msg, id) later, unless
 * cancelled. body is the request's raw JSON (forwarded to offer_domain's node when that is
 * elsewhere). */
int sig_router_offer_async(sig_router_t *r, const sig_msg_t *m, const char *body, size_t body_len,
                           char id_out[SIG_MSG_ID_MAX + 1], sig_refusal_t *why,
                           sig_router_offered_fn done, void *arg, sig_router_wait_t **wait);

/* A text message from a registered peer: carried out, or answered with an error frame. */
void sig_router_on_message(sig_router_t *r, sig_router_peer_t *from, const char *buf, size_t len);

/* Expires pending offers whose answer_timeout has passed, and cluster requests past their
 * deadline. */
void sig_router_tick(sig_router_t *r);

/* From now on offers are refused (503) and disconnects send no bye. */
void sig_router_shutdown(sig_router_t *r);

uint64_t sig_router_domains(const sig_router_t *r);
uint64_t sig_router_exchanges(const sig_router_t *r);

#endif
