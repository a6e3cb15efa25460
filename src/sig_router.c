/* Domain registry and exchange routing (docs/PROTOCOL.md). An exchange links
 * two peers from the offer until a bye or a disconnect; while unanswered it is
 * also on the pending list, which is in creation order because every offer gets
 * the same timeout, so expiry only ever looks at its head. A peer on another node
 * of a cluster is a stand-in here, and what is sent to it goes to sig_relay.c. */
#include "sig_router.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sig_acl.h"
#include "sig_log.h"
#include "sig_metrics.h"
#include "sig_proto.h"
#include "sig_router_int.h"
#include "sig_text.h"
#include "sig_util.h"

static const char *other_domain(const exchange_t *x, const sig_router_peer_t *p) {
  return (x->offer.peer == p ? x->answer.peer : x->offer.peer)->domain;
}

static exchange_t *xlink_exchange(sig_list_t *l) {
  xlink_t *xl = SIG_LIST_DATA(l, xlink_t, link);
  return xl->is_answer ? SIG_LIST_DATA(xl, exchange_t, answer)
                       : SIG_LIST_DATA(xl, exchange_t, offer);
}

const char *sig_router_address(const sig_router_t *r, void *conn, char buf[SIG_ROUTER_ADDR_MAX]) {
  const char *a = r->t.address != NULL ? r->t.address(conn, buf) : NULL;
  return a != NULL ? a : "-";
}

void sig_router_send_local(sig_router_t *r, sig_router_peer_t *p, char *frame, size_t len) {
  r->t.send(p->conn, frame, len);
  free(frame);
}

/* A frame to p, which may be a stand-in (then a node message of kind op about x). */
static int send_to(sig_router_t *r, exchange_t *x, sig_router_peer_t *p, sig_nodemsg_op_t op,
                   char *frame, size_t len) {
  if (!is_remote(p)) {
    sig_router_send_local(r, p, frame, len);
    return 0;
  }
  return sig_relay_send(r, x, p, op, frame, len);
}

void sig_router_send_error(sig_router_t *r, sig_router_peer_t *p, int status, const char *msg,
                           const char *id) {
  size_t len;
  char *f = sig_msg_encode_error(status, msg, id, &len);
  sig_metrics_error(status);
  SIG_EVENT(SIG_LOG_INFO, "router", p->domain, "error frame", SIG_KV("domain", p->domain),
            SIG_KVI("status", status), SIG_KV("id", id), SIG_KV("msg", msg));
  sig_router_send_local(r, p, f, len);
}

static char *bye_frame(const char *id, const char *from, const char *reason, size_t *len) {
  return sig_msg_encode_bye(id, from, reason, len);
}

static void free_stand_in(sig_router_t *r, sig_router_peer_t *p) {
  if (p->nexchanges > 0 || p->pinned > 0) return;
  sig_map_remove(&r->remote, &p->node);
  free(p);
}

static void home_ref(sig_router_t *r, const char *home, int delta) {
  sig_map_node_t *n = sig_map_get(&r->homes, home, strlen(home));
  home_t *h = n != NULL ? SIG_CONTAINER_OF(n, home_t, node) : NULL;
  if (delta > 0) {
    if (h == NULL) {
      size_t len = strlen(home);
      h = sig_calloc(1, sizeof(*h) + len + 1);
      memcpy(h->id, home, len);
      sig_map_put(&r->homes, &h->node, h->id, len);
    }
    h->count++;
  } else if (h != NULL && --h->count == 0) {
    sig_map_remove(&r->homes, &h->node);
    free(h);
  }
}

void sig_router_set_home(sig_router_t *r, exchange_t *x, const char *home) {
  if (x->home[0] != '\0') home_ref(r, x->home, -1);
  snprintf(x->home, sizeof(x->home), "%s", home);
  if (x->home[0] != '\0') home_ref(r, x->home, +1);
}

void sig_router_end(sig_router_t *r, exchange_t *x) {
  sig_router_peer_t *offer = x->offer.peer, *answer = x->answer.peer;
  if (!x->answered) {
    sig_list_remove(&x->pending);
    answer->npending_in--;
  }
  sig_list_remove(&x->offer.link);
  sig_list_remove(&x->answer.link);
  offer->nexchanges--;
  answer->nexchanges--;
  sig_map_remove(&r->ids, &x->node);
  if (x->wait != NULL) sig_relay_exchange_gone(r, x);
  if (x->home[0] != '\0') home_ref(r, x->home, -1);
  free(x);
  if (is_remote(offer)) free_stand_in(r, offer);
  if (is_remote(answer)) free_stand_in(r, answer);
}

sig_router_t *sig_router_new(const sig_router_transport_t *t, const sig_router_limits_t *l) {
  sig_router_t *r = sig_calloc(1, sizeof(*r));
  r->t = *t;
  r->l = *l;
  sig_map_init(&r->domains);
  sig_map_init(&r->remote);
  sig_map_init(&r->ids);
  sig_map_init(&r->homes);
  sig_map_init(&r->rids);
  sig_list_init(&r->pending);
  sig_list_init(&r->waits);
  return r;
}

void sig_router_set_cluster(sig_router_t *r, const sig_router_cluster_t *c) {
  static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  r->c = *c;
  /* Generated ids carry a tag of this node's id, so that two nodes never make the same one. */
  uint32_t h = sig_fnv1a(SIG_FNV1A_INIT, c->self, strlen(c->self));
  char *p = r->id_tag;
  for (int i = 0; i < 6; i++, h /= 36) *p++ = digits[h % 36];
  *p = '\0';
}

void sig_router_free(sig_router_t *r) {
  if (r == NULL) return;
  r->shutting_down = 1; /* no bye to anyone */
  sig_relay_free(r);
  for (sig_map_node_t *n = sig_map_first(&r->domains), *next; n != NULL; n = next) {
    next = sig_map_next(&r->domains, n);
    sig_router_peer_t *p = SIG_CONTAINER_OF(n, sig_router_peer_t, node);
    while (!sig_list_empty(&p->exchanges)) sig_router_end(r, xlink_exchange(p->exchanges.next));
    sig_map_remove(&r->domains, &p->node);
    sig_router_free_peer(p);
  }
  sig_map_free(&r->domains);
  sig_map_free(&r->remote); /* stand-ins went with their exchanges */
  sig_map_free(&r->ids);
  sig_map_free(&r->homes);
  sig_map_free(&r->rids);
  free(r);
}

int sig_router_refuse(sig_refusal_t *why, int code, const char *fmt, ...) {
  va_list ap;
  why->code = code;
  va_start(ap, fmt);
  vsnprintf(why->msg, sizeof(why->msg), fmt, ap);
  va_end(ap);
  return SIG_EREFUSED;
}
#define refuse sig_router_refuse

static sig_router_peer_t *find_peer_n(sig_router_t *r, const char *domain, size_t len) {
  sig_map_node_t *n = sig_map_get(&r->domains, domain, len);
  return n != NULL ? SIG_CONTAINER_OF(n, sig_router_peer_t, node) : NULL;
}

sig_router_peer_t *sig_router_find_local(sig_router_t *r, const char *domain) {
  return find_peer_n(r, domain, strlen(domain));
}

sig_router_peer_t *sig_router_stand_in(sig_router_t *r, const char *domain) {
  size_t len = strlen(domain);
  sig_map_node_t *n = sig_map_get(&r->remote, domain, len);
  if (n != NULL) return SIG_CONTAINER_OF(n, sig_router_peer_t, node);
  sig_router_peer_t *p = sig_calloc(1, sizeof(*p) + len + 1);
  memcpy(p->domain, domain, len);
  sig_list_init(&p->exchanges);
  sig_map_put(&r->remote, &p->node, p->domain, len);
  return p;
}

sig_router_peer_t *sig_router_new_peer(const char *domain, size_t len, void *conn,
                                       sig_acl_t *calls) {
  sig_router_peer_t *p = sig_calloc(1, sizeof(*p) + len + 1);
  memcpy(p->domain, domain, len);
  p->conn = conn;
  p->calls = calls;
  sig_list_init(&p->exchanges);
  return p;
}

void sig_router_free_peer(sig_router_peer_t *p) {
  sig_acl_free(p->calls);
  free(p);
}

void sig_router_insert(sig_router_t *r, sig_router_peer_t *p) {
  sig_map_put(&r->domains, &p->node, p->domain, strlen(p->domain));
}

/* The checks every registration makes at once: a local duplicate (refused, or closed under
 * the replace policy; the log line names both connections) and the cap. Returns 0 or the
 * refusal. */
static int admit(sig_router_t *r, const char *domain, size_t len, void *conn, sig_refusal_t *why) {
  sig_router_peer_t *old = find_peer_n(r, domain, len);
  if (old != NULL) {
    if (r->l.reject_duplicates) return refuse(why, SIG_CLOSE_TAKEN, "domain taken");
    void *old_conn = old->conn;
    char was[SIG_ROUTER_ADDR_MAX], by[SIG_ROUTER_ADDR_MAX];
    SIG_EVENT(SIG_LOG_INFO, "router", old->domain, "replaced", SIG_KVN("domain", domain, len),
              SIG_KV("peer", sig_router_address(r, old_conn, was)),
              SIG_KV("by", sig_router_address(r, conn, by)));
    sig_router_unregister(r, old);
    r->t.close(old_conn, SIG_CLOSE_REPLACED, "replaced");
  } else if (r->domains.count >= r->l.max_domains) {
    return refuse(why, SIG_CLOSE_FULL, "server full");
  }
  return 0;
}

int sig_router_register(sig_router_t *r, const char *domain, size_t len, void *conn,
                        sig_acl_t *calls, sig_router_peer_t **out, sig_refusal_t *why) {
  if (admit(r, domain, len, conn, why) != 0) {
    sig_acl_free(calls);
    return SIG_EREFUSED;
  }
  sig_router_peer_t *p = sig_router_new_peer(domain, len, conn, calls);
  p->reg = ++r->next_reg;
  sig_router_insert(r, p);
  *out = p;
  return 0;
}

int sig_router_register_async(sig_router_t *r, const char *domain, size_t len, void *conn,
                              sig_acl_t *calls, sig_router_peer_t **out, sig_refusal_t *why,
                              sig_router_registered_fn done, void *arg, sig_router_wait_t **wait) {
  if (!in_cluster(r)) return sig_router_register(r, domain, len, conn, calls, out, why);
  if (admit(r, domain, len, conn, why) != 0) {
    sig_acl_free(calls);
    return SIG_EREFUSED;
  }
  sig_router_peer_t *p = sig_router_new_peer(domain, len, conn, calls);
  p->reg = ++r->next_reg;
  return sig_relay_register(r, p, out, why, done, arg, wait);
}

void sig_router_unregister(sig_router_t *r, sig_router_peer_t *p) {
  if (p == NULL) return;
  /* Gone first: completions that run as its exchanges end (an offer of its that waited on
   * another node) must not find it. */
  sig_map_remove(&r->domains, &p->node);
  while (!sig_list_empty(&p->exchanges)) {
    exchange_t *x = xlink_exchange(p->exchanges.next);
    sig_router_peer_t *other = x->offer.peer == p ? x->answer.peer : x->offer.peer;
    /* A peer on another node hears of it even during a shutdown: it stays up. */
    if (is_remote(other) || !r->shutting_down) {
      size_t len;
      char *f = bye_frame(x->id, p->domain, "disconnected", &len);
      send_to(r, x, other, SIG_NODE_END, f, len);
    }
    sig_router_end(r, x);
  }
  if (in_cluster(r)) r->c.release(r->c.ctx, p->domain, p->reg);
  sig_router_free_peer(p);
}

const char *sig_router_peer_domain(const sig_router_peer_t *p) {
  return p->domain;
}

static sig_router_peer_t *find_peer(sig_router_t *r, const char *domain) {
  return find_peer_n(r, domain, strlen(domain));
}

exchange_t *sig_router_find_exchange(sig_router_t *r, const char *id) {
  sig_map_node_t *n = sig_map_get(&r->ids, id, strlen(id));
  return n != NULL ? SIG_CONTAINER_OF(n, exchange_t, node) : NULL;
}
#define find_exchange sig_router_find_exchange

/* p's oldest answered exchange (forgotten first when p is at its cap), or NULL. */
static exchange_t *oldest_answered(sig_router_peer_t *p) {
  for (sig_list_t *it = p->exchanges.next; it != &p->exchanges; it = it->next) {
    exchange_t *x = xlink_exchange(it);
    if (x->answered) return x;
  }
  return NULL;
}

int sig_router_has_room(const sig_router_t *r, sig_router_peer_t *p) {
  return p->nexchanges < r->l.max_exchanges_per_peer || oldest_answered(p) != NULL;
}

void sig_router_make_room(sig_router_t *r, sig_router_peer_t *p) {
  if (p->nexchanges < r->l.max_exchanges_per_peer) return;
  exchange_t *x = oldest_answered(p);
  sig_router_peer_t *other = x->offer.peer == p ? x->answer.peer : x->offer.peer;
  if (is_remote(other)) send_to(r, x, other, SIG_NODE_FGT, NULL, 0); /* its half goes too */
  sig_router_end(r, x);
}
#define has_room sig_router_has_room
#define make_room sig_router_make_room

void sig_router_new_id(sig_router_t *r, char id[SIG_MSG_ID_MAX + 1]) {
  do snprintf(id, SIG_MSG_ID_MAX + 1, "x%s%" PRIx64, r->id_tag, ++r->next_id);
  while (sig_map_get(&r->ids, id, strlen(id)) != NULL);
}

exchange_t *sig_router_link(sig_router_t *r, const char *id, sig_router_peer_t *offer,
                            sig_router_peer_t *answer, const char *home, int pending) {
  exchange_t *x = sig_calloc(1, sizeof(*x));
  snprintf(x->id, sizeof(x->id), "%s", id);
  x->offer.peer = offer;
  x->answer.peer = answer;
  x->answer.is_answer = 1;
  x->remote = is_remote(offer) || is_remote(answer);
  x->created_ms = r->t.now_ms(r->t.ctx);
  sig_list_init(&x->pending);
  sig_list_append(&offer->exchanges, &x->offer.link);
  sig_list_append(&answer->exchanges, &x->answer.link);
  if (pending) sig_list_append(&r->pending, &x->pending);
  offer->nexchanges++;
  answer->nexchanges++;
  answer->npending_in++; /* also off the pending list: sig_router_end takes it back */
  if (home != NULL) sig_router_set_home(r, x, home);
  sig_map_put(&r->ids, &x->node, x->id, strlen(x->id));
  return x;
}

/* The common part of POST /offer and a WebSocket offer between two local peers. prefix is
 * "" or "offer_req.". */
static int do_offer(sig_router_t *r, const sig_msg_t *m, const char *offer_domain,
                    const char *prefix, char id_out[SIG_MSG_ID_MAX + 1], sig_refusal_t *why) {
  if (r->shutting_down) return refuse(why, SIG_STATUS_UNAVAILABLE, "server: shutting down");
  sig_router_peer_t *answer = find_peer(r, m->answer_domain);
  if (answer == NULL)
    return refuse(why, SIG_STATUS_NOT_FOUND, "%sanswer_domain: '%s' is not connected", prefix,
                  m->answer_domain);
  sig_router_peer_t *offer = find_peer(r, offer_domain);
  if (offer == NULL)
    return refuse(why, SIG_STATUS_CONFLICT, "%soffer_domain: '%s' is not connected", prefix,
                  offer_domain);
  if (m->id != NULL && find_exchange(r, m->id) != NULL)
    return refuse(why, SIG_STATUS_CONFLICT, "id: '%s' is already in use", m->id);
  if (answer->npending_in >= r->l.max_pending_offers)
    return refuse(why, SIG_STATUS_TOO_MANY, "%sanswer_domain: '%s' has too many pending offers",
                  prefix, answer->domain);
  /* Both are checked before anything is forgotten: a refused offer changes nothing. */
  if (!has_room(r, offer) || !has_room(r, answer)) {
    int off = !has_room(r, offer);
    return refuse(why, SIG_STATUS_TOO_MANY, "%s%s_domain: '%s' has too many open exchanges", prefix,
                  off ? "offer" : "answer", off ? offer->domain : answer->domain);
  }
  make_room(r, offer);
  make_room(r, answer); /* forgetting one of offer's may already have made room here */
  char id[SIG_MSG_ID_MAX + 1];
  if (m->id != NULL)
    snprintf(id, sizeof(id), "%s", m->id);
  else
    sig_router_new_id(r, id);
  exchange_t *x = sig_router_link(r, id, offer, answer, NULL, 1);

  size_t len;
  char *push = sig_msg_encode_offer_push(m, x->id, offer_domain, &len);
  SIG_EVENT(SIG_LOG_INFO, "router", offer_domain, "offer", SIG_KV("id", x->id),
            SIG_KV("offer_domain", offer_domain), SIG_KV("answer_domain", answer->domain),
            SIG_KVI("candidates", m->ncandidates));
  SIG_EVENT(SIG_LOG_DEBUG, "router", offer_domain, "offer sdp", SIG_KV("id", x->id),
            SIG_KV("sdp", m->offer_sdp));
  sig_router_send_local(r, answer, push, len);
  sig_metrics_inc(SIG_M_OFFERS);
  memcpy(id_out, x->id, sizeof(x->id));
  return 0;
}

int sig_router_offer(sig_router_t *r, const sig_msg_t *m, char id_out[SIG_MSG_ID_MAX + 1],
                     sig_refusal_t *why) {
  return do_offer(r, m, m->offer_domain, "", id_out, why);
}

int sig_router_offer_async(sig_router_t *r, const sig_msg_t *m, const char *body, size_t body_len,
                           char id_out[SIG_MSG_ID_MAX + 1], sig_refusal_t *why,
                           sig_router_offered_fn done, void *arg, sig_router_wait_t **wait) {
  if (!in_cluster(r) || r->shutting_down) return do_offer(r, m, m->offer_domain, "", id_out, why);
  sig_router_peer_t *answer = find_peer(r, m->answer_domain);
  sig_router_peer_t *offer = find_peer(r, m->offer_domain);
  if (offer != NULL && answer != NULL) return do_offer(r, m, m->offer_domain, "", id_out, why);
  if (offer != NULL) return sig_relay_offer(r, offer, m, "", id_out, why, done, arg, wait);
  return sig_relay_forward(r, m, body, body_len, answer != NULL, why, done, arg, wait);
}

/* The completion of a WebSocket offer that went to another node: only a refusal is said, as
 * an error frame to the offer peer, if it is still the same registration. */
typedef struct {
  sig_router_t *r;
  uint64_t reg;
  int has_id;
  char id[SIG_MSG_ID_MAX + 1];
  char domain[];
} ws_offer_t;

static void on_ws_offered(void *arg, int status, const char *msg, const char *id) {
  ws_offer_t *o = arg;
  (void)id;
  sig_router_peer_t *p = find_peer(o->r, o->domain);
  if (status != SIG_STATUS_OK && p != NULL && p->reg == o->reg)
    sig_router_send_error(o->r, p, status, msg, o->has_id ? o->id : NULL);
  free(o);
}

static void on_offer(sig_router_t *r, sig_router_peer_t *from, const sig_msg_t *m) {
  char err[ERR_MAX], id[SIG_MSG_ID_MAX + 1];
  sig_refusal_t why;
  if (m->offer_domain != NULL && strcmp(m->offer_domain, from->domain) != 0) {
    snprintf(err, sizeof(err), "offer_req.offer_domain: must be your own domain '%s'",
             from->domain);
    sig_router_send_error(r, from, SIG_STATUS_FORBIDDEN, err, m->id);
    return;
  }
  if (strcmp(m->answer_domain, from->domain) == 0) {
    sig_router_send_error(r, from, SIG_STATUS_BAD_REQUEST,
                          "offer_req.answer_domain: must differ from offer_domain", m->id);
    return;
  }
  if (!sig_acl_allows(from->calls, m->answer_domain)) {
    snprintf(err, sizeof(err), "offer_req.answer_domain: your token does not allow calling '%s'",
             m->answer_domain);
    sig_router_send_error(r, from, SIG_STATUS_FORBIDDEN, err, m->id);
    return;
  }
  int rc;
  if (!in_cluster(r) || r->shutting_down || find_peer(r, m->answer_domain) != NULL) {
    rc = do_offer(r, m, from->domain, "offer_req.", id, &why);
  } else {
    size_t dlen = strlen(from->domain);
    ws_offer_t *o = sig_calloc(1, sizeof(*o) + dlen + 1);
    o->r = r;
    o->reg = from->reg;
    memcpy(o->domain, from->domain, dlen);
    if (m->id != NULL) o->has_id = 1, snprintf(o->id, sizeof(o->id), "%s", m->id);
    sig_router_wait_t *w;
    rc = sig_relay_offer(r, from, m, "offer_req.", id, &why, on_ws_offered, o, &w);
    if (rc == SIG_EINPROGRESS) {
      sig_relay_own_arg(w);
      return;
    }
    free(o);
  }
  if (rc != 0) sig_router_send_error(r, from, why.code, why.msg, m->id);
}

/* The pending offer an answer from `from` answers: by id, else by the echoed offer_domain,
 * else the single one. NULL with the refusal otherwise. */
static exchange_t *find_pending_for_answer(sig_router_t *r, sig_router_peer_t *from,
                                           const sig_msg_t *m, sig_refusal_t *why) {
  if (m->id != NULL) {
    exchange_t *x = find_exchange(r, m->id);
    if (x != NULL && x->answer.peer == from && !x->answered) return x;
    refuse(why, SIG_STATUS_NOT_FOUND, "id: no pending offer '%s' for you", m->id);
    return NULL;
  }
  exchange_t *found = NULL;
  int n = 0;
  sig_list_t *it;
  for (it = from->exchanges.next; it != &from->exchanges; it = it->next) {
    exchange_t *x = xlink_exchange(it);
    if (x->answer.peer != from || x->answered) continue;
    if (m->echo_offer_domain != NULL) {
      if (strcmp(x->offer.peer->domain, m->echo_offer_domain) == 0) return x;
      continue;
    }
    if (n++ == 0) found = x;
  }
  if (m->echo_offer_domain != NULL)
    refuse(why, SIG_STATUS_NOT_FOUND, "offer_req.offer_domain: no pending offer from '%s'",
           m->echo_offer_domain);
  else if (n == 1)
    return found;
  else if (n == 0)
    refuse(why, SIG_STATUS_NOT_FOUND, "answer: no pending offer for you");
  else
    refuse(why, SIG_STATUS_CONFLICT, "answer: %d offers are pending; give id", n);
  return NULL;
}

/* Whether a message to p (local, or on a node Redis can reach now) can go; else a 503. */
static int reachable(sig_router_t *r, const sig_router_peer_t *p, sig_refusal_t *why) {
  if (!is_remote(p) || r->c.up(r->c.ctx)) return 0;
  return refuse(why, SIG_STATUS_UNAVAILABLE, "cluster: unavailable");
}

static void on_answer(sig_router_t *r, sig_router_peer_t *from, const sig_msg_t *m) {
  sig_refusal_t why;
  if (m->answer_domain != NULL && strcmp(m->answer_domain, from->domain) != 0) {
    refuse(&why, SIG_STATUS_FORBIDDEN, "answer_resp.answer_domain: must be your own domain '%s'",
           from->domain);
    sig_router_send_error(r, from, why.code, why.msg, m->id);
    return;
  }
  exchange_t *x = find_pending_for_answer(r, from, m, &why);
  if (x != NULL && reachable(r, x->offer.peer, &why) != 0) x = NULL;
  if (x == NULL) {
    sig_router_send_error(r, from, why.code, why.msg, m->id);
    return;
  }
  x->answered = 1;
  sig_list_remove(&x->pending);
  from->npending_in--;
  sig_metrics_inc(SIG_M_ANSWERS);
  sig_metrics_observe(SIG_H_OFFER_ANSWER,
                      (double)(r->t.now_ms(r->t.ctx) - x->created_ms) / 1000.0);
  size_t len;
  char *push = sig_msg_encode_answer_push(m, x->id, from->domain, x->offer.peer->domain, &len);
  SIG_EVENT(SIG_LOG_INFO, "router", from->domain, "answer", SIG_KV("id", x->id),
            SIG_KV("offer_domain", x->offer.peer->domain), SIG_KV("answer_domain", from->domain),
            SIG_KVI("candidates", m->ncandidates));
  SIG_EVENT(SIG_LOG_DEBUG, "router", from->domain, "answer sdp", SIG_KV("id", x->id),
            SIG_KV("sdp", m->answer_sdp));
  send_to(r, x, x->offer.peer, SIG_NODE_ANS, push, len);
}

/* The exchange a candidate or bye refers to: by id (it must link from and to),
 * else the most recent between the two. NULL with the refusal (404) otherwise. */
static exchange_t *find_between(sig_router_t *r, sig_router_peer_t *from, const sig_msg_t *m,
                                sig_refusal_t *why) {
  if (m->id != NULL) {
    exchange_t *x = find_exchange(r, m->id);
    if (x != NULL && (x->offer.peer == from || x->answer.peer == from) &&
        strcmp(other_domain(x, from), m->to) == 0)
      return x;
    refuse(why, SIG_STATUS_NOT_FOUND, "id: no exchange '%s' with '%s'", m->id, m->to);
    return NULL;
  }
  for (sig_list_t *it = from->exchanges.prev; it != &from->exchanges; it = it->prev) {
    exchange_t *x = xlink_exchange(it);
    if (strcmp(other_domain(x, from), m->to) == 0) return x;
  }
  refuse(why, SIG_STATUS_NOT_FOUND, "to: no exchange with '%s'", m->to);
  return NULL;
}

static sig_router_peer_t *other_peer(exchange_t *x, sig_router_peer_t *p) {
  return x->offer.peer == p ? x->answer.peer : x->offer.peer;
}

/* A candidate or bye goes to whom the sender's token lets it call, or back to a peer that
 * called it (a callee replies within the call it was given, whatever its own `calls`). Returns
 * 0, or 403 with the refusal. */
static int may_send(const sig_router_peer_t *from, const exchange_t *x, const sig_msg_t *m,
                    sig_refusal_t *why) {
  if (x->answer.peer == from || sig_acl_allows(from->calls, m->to)) return 0;
  return refuse(why, SIG_STATUS_FORBIDDEN, "to: your token does not allow calling '%s'", m->to);
}

static void on_candidate(sig_router_t *r, sig_router_peer_t *from, const sig_msg_t *m) {
  sig_refusal_t why;
  exchange_t *x = find_between(r, from, m, &why);
  if (x != NULL && (may_send(from, x, m, &why) != 0 || reachable(r, other_peer(x, from), &why)))
    x = NULL;
  if (x == NULL) {
    sig_router_send_error(r, from, why.code, why.msg, m->id);
    return;
  }
  size_t len;
  char *f = sig_msg_encode_candidate(m, x->id, from->domain, &len);
  SIG_EVENT(SIG_LOG_DEBUG, "router", from->domain, "candidate", SIG_KV("id", x->id),
            SIG_KV("from", from->domain), SIG_KV("to", m->to), SIG_KVI("n", m->ncandidates));
  send_to(r, x, other_peer(x, from), SIG_NODE_REL, f, len);
  sig_metrics_inc(SIG_M_CANDIDATES);
}

static void on_bye(sig_router_t *r, sig_router_peer_t *from, const sig_msg_t *m) {
  sig_refusal_t why;
  exchange_t *x = find_between(r, from, m, &why);
  if (x != NULL && (may_send(from, x, m, &why) != 0 || reachable(r, other_peer(x, from), &why)))
    x = NULL;
  if (x == NULL) {
    sig_router_send_error(r, from, why.code, why.msg, m->id);
    return;
  }
  do {
    SIG_EVENT(SIG_LOG_INFO, "router", from->domain, "bye", SIG_KV("id", x->id),
              SIG_KV("from", from->domain), SIG_KV("to", m->to));
    size_t len;
    char *f = bye_frame(x->id, from->domain, "hangup", &len);
    send_to(r, x, other_peer(x, from), SIG_NODE_END, f, len);
    sig_router_end(r, x);
    sig_metrics_inc(SIG_M_BYES);
  } while (m->id == NULL && (x = find_between(r, from, m, &why)) != NULL &&
           may_send(from, x, m, &why) == 0);
}

typedef void (*handler_t)(sig_router_t *r, sig_router_peer_t *from, const sig_msg_t *m);

static const handler_t handlers[] = {
    [SIG_MSG_OFFER] = on_offer,
    [SIG_MSG_ANSWER] = on_answer,
    [SIG_MSG_CANDIDATE] = on_candidate,
    [SIG_MSG_BYE] = on_bye,
};

void sig_router_on_message(sig_router_t *r, sig_router_peer_t *from, const char *buf, size_t len) {
  sig_msg_t m;
  char err[ERR_MAX];
  if (sig_msg_decode_frame(&m, buf, len, err, sizeof(err)) != 0)
    sig_router_send_error(r, from, SIG_STATUS_BAD_REQUEST, err, m.id);
  else
    handlers[m.type](r, from, &m);
  sig_msg_free(&m);
}

void sig_router_tick(sig_router_t *r) {
  uint64_t now = r->t.now_ms(r->t.ctx);
  while (!sig_list_empty(&r->pending)) {
    exchange_t *x = SIG_LIST_DATA(r->pending.next, exchange_t, pending);
    if (x->created_ms + r->l.answer_timeout_ms > now) break;
    char msg[ERR_MAX];
    size_t len;
    snprintf(msg, sizeof(msg), "no answer from '%s' within %" PRIu64 " s", x->answer.peer->domain,
             r->l.answer_timeout_ms / 1000);
    SIG_EVENT(SIG_LOG_INFO, "router", x->offer.peer->domain, "offer expired", SIG_KV("id", x->id),
              SIG_KV("offer_domain", x->offer.peer->domain),
              SIG_KV("answer_domain", x->answer.peer->domain));
    char *err = sig_msg_encode_error(SIG_STATUS_TIMEOUT, msg, x->id, &len);
    send_to(r, x, x->offer.peer, SIG_NODE_END, err, len);
    char *bye = bye_frame(x->id, x->offer.peer->domain, "timeout", &len);
    send_to(r, x, x->answer.peer, SIG_NODE_END, bye, len);
    sig_router_end(r, x);
  }
  if (in_cluster(r)) sig_relay_tick(r, now);
}

void sig_router_shutdown(sig_router_t *r) {
  r->shutting_down = 1;
}

uint64_t sig_router_domains(const sig_router_t *r) {
  return r->domains.count;
}

uint64_t sig_router_exchanges(const sig_router_t *r) {
  return r->ids.count;
}

void sig_router_each_home(const sig_router_t *r, void (*each)(void *arg, const char *node),
                          void *arg) {
  for (sig_map_node_t *n = sig_map_first(&r->homes); n != NULL; n = sig_map_next(&r->homes, n))
    each(arg, SIG_CONTAINER_OF(n, home_t, node)->id);
}
