/* The router's own data, shared by its two files: sig_router.c (registrations, exchanges and
 * every message between local peers) and sig_relay.c (the same across the nodes of a cluster).
 * Nothing else includes this. */
#ifndef SIG_ROUTER_INT_H
#define SIG_ROUTER_INT_H

#include <stddef.h>
#include <stdint.h>

#include "sig_list.h"
#include "sig_map.h"
#include "sig_nodemsg.h"
#include "sig_router.h"

/* A peer: local (conn set; in r->domains), or a stand-in for a domain on another node (conn
 * NULL; in r->remote), which lives as long as it has exchanges here. */
struct sig_router_peer_s {
  sig_map_node_t node;
  void *conn;
  sig_acl_t *calls;     /* whom it may call (its token's `calls`); NULL: anyone */
  sig_list_t exchanges; /* xlinks, oldest first */
  uint32_t npending_in; /* unanswered offers to this peer */
  uint32_t nexchanges;
  uint32_t pinned; /* a stand-in is not freed while a walk holds it */
  uint64_t reg;    /* local: its registration's number (the cluster's directory names it) */
  char domain[];
};

typedef struct {
  sig_list_t link; /* in peer->exchanges */
  sig_router_peer_t *peer;
  int is_answer; /* which member of its exchange this is */
} xlink_t;

typedef struct {
  sig_map_node_t node;
  xlink_t offer, answer;
  sig_list_t pending; /* in r->pending while unanswered (on the answer peer's node) */
  uint64_t created_ms;
  int answered;
  /* Across nodes: the other peer's node ("" while an offer waits to learn it), and the
   * request this node's offer waits on (until the answer node took the offer). */
  int remote;
  sig_router_wait_t *wait;
  char home[SIG_NODE_ID_MAX + 1];
  char id[SIG_MSG_ID_MAX + 1];
} exchange_t;

/* A node this one has exchanges with, and how many. */
typedef struct {
  sig_map_node_t node;
  uint32_t count;
  char id[];
} home_t;

struct sig_router_s {
  sig_router_transport_t t;
  sig_router_limits_t l;
  sig_router_cluster_t c; /* c.self == NULL: a single node */
  sig_map_t domains;      /* local peers */
  sig_map_t remote;       /* stand-ins for peers on other nodes */
  sig_map_t ids;
  sig_map_t homes;
  sig_map_t rids;     /* waits for a node's reply, by request number */
  sig_list_t pending; /* exchanges whose offer awaits an answer */
  sig_list_t waits;   /* every wait with a deadline, oldest first */
  uint64_t next_id, next_reg, next_rid;
  char id_tag[16]; /* in a cluster, generated exchange ids carry it: unique across nodes */
  int shutting_down;
};

#define ERR_MAX SIG_MSG_ERR_MAX

static inline int is_remote(const sig_router_peer_t *p) {
  return p->conn == NULL;
}

static inline int in_cluster(const sig_router_t *r) {
  return r->c.self != NULL;
}

/* ---- sig_router.c, for sig_relay.c */

int sig_router_refuse(sig_refusal_t *why, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
sig_router_peer_t *sig_router_find_local(sig_router_t *r, const char *domain);
exchange_t *sig_router_find_exchange(sig_router_t *r, const char *id);
void sig_router_new_id(sig_router_t *r, char id[SIG_MSG_ID_MAX + 1]);
int sig_router_has_room(const sig_router_t *r, sig_router_peer_t *p);
void sig_router_make_room(sig_router_t *r, sig_router_peer_t *p);
/* A new exchange between offer and answer (either may be a stand-in; home names the remote
 * one's node, "" when not known yet); on the pending list when pending. */
exchange_t *sig_router_link(sig_router_t *r, const char *id, sig_router_peer_t *offer,
                            sig_router_peer_t *answer, const char *home, int pending);
/* Forgets x (no word to anyone). */
void sig_router_end(sig_router_t *r, exchange_t *x);
void sig_router_set_home(sig_router_t *r, exchange_t *x, const char *home);
/* The stand-in for domain on another node, made when missing. */
sig_router_peer_t *sig_router_stand_in(sig_router_t *r, const char *domain);
/* Sends a frame (frees it) to local peer p. */
void sig_router_send_local(sig_router_t *r, sig_router_peer_t *p, char *frame, size_t len);
/* conn's client address for a log line, "-" when the transport does not know it. */
const char *sig_router_address(const sig_router_t *r, void *conn, char buf[SIG_ROUTER_ADDR_MAX]);
void sig_router_send_error(sig_router_t *r, sig_router_peer_t *p, int status, const char *msg,
                           const char *id);
/* Frees a peer that left the maps (its calls too). */
void sig_router_free_peer(sig_router_peer_t *p);
/* Adds local peer p (its reg set) to the domains. */
void sig_router_insert(sig_router_t *r, sig_router_peer_t *p);
/* A new local peer (not yet in the map). */
sig_router_peer_t *sig_router_new_peer(const char *domain, size_t len, void *conn,
                                       sig_acl_t *calls);

/* ---- sig_relay.c, for sig_router.c */

/* Sends frame (freed here; may be NULL) to p, a stand-in, as a node message of kind op about
 * x. Returns 0, or negative when Redis is away. */
int sig_relay_send(sig_router_t *r, exchange_t *x, sig_router_peer_t *p, sig_nodemsg_op_t op,
                   char *frame, size_t len);
/* An offer from local peer `offer` to a domain that is not local. Returns SIG_EINPROGRESS
 * (done runs later) or a refusal now. */
int sig_relay_offer(sig_router_t *r, sig_router_peer_t *offer, const sig_msg_t *m,
                    const char *prefix, char id_out[SIG_MSG_ID_MAX + 1], sig_refusal_t *why,
                    sig_router_offered_fn done, void *arg, sig_router_wait_t **wait);
/* POST /offer for an offer_domain that is not local: forwarded to its node. */
int sig_relay_forward(sig_router_t *r, const sig_msg_t *m, const char *body, size_t body_len,
                      int answer_is_local, sig_refusal_t *why, sig_router_offered_fn done,
                      void *arg, sig_router_wait_t **wait);
/* Registration through the cluster's directory. */
int sig_relay_register(sig_router_t *r, sig_router_peer_t *p, sig_router_peer_t **out,
                       sig_refusal_t *why, sig_router_registered_fn done, void *arg,
                       sig_router_wait_t **wait);
/* The argument of w's completion is the router's own (malloc'ed, holding no pointer it owns):
 * freed with w should the completion never run (sig_router_free). */
void sig_relay_own_arg(sig_router_wait_t *w);
/* x, which waited on a request, ended: the request completes as made (200 with its id) when x's
 * offer peer is still registered (its bye, the other node's end or loss ended x), else as
 * refused (409, the offer domain left). */
void sig_relay_exchange_gone(sig_router_t *r, exchange_t *x);
void sig_relay_tick(sig_router_t *r, uint64_t now);
void sig_relay_free(sig_router_t *r);

#endif
