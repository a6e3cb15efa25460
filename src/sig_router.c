/* Domain registry and exchange routing (docs/PROTOCOL.md). An exchange links
 * two peers from the offer until a bye or a disconnect; while unanswered it is
 * also on the pending list, which is in creation order because every offer gets
 * the same timeout, so expiry only ever looks at its head. */
#include "sig_router.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sig_acl.h"
#include "sig_list.h"
#include "sig_log.h"
#include "sig_map.h"
#include "sig_proto.h"
#include "sig_util.h"

struct sig_router_peer_s {
  sig_map_node_t node;
  void *conn;
  sig_acl_t *calls;     /* whom it may call (its token's `calls`); NULL: anyone */
  sig_list_t exchanges; /* xlinks, oldest first */
  uint32_t npending_in; /* unanswered offers to this peer */
  uint32_t nexchanges;
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
  sig_list_t pending; /* in r->pending while unanswered */
  uint64_t created_ms;
  int answered;
  char id[SIG_MSG_ID_MAX + 1];
} exchange_t;

struct sig_router_s {
  sig_router_transport_t t;
  sig_router_limits_t l;
  sig_map_t domains;
  sig_map_t ids;
  sig_list_t pending;
  uint64_t next_id;
  int shutting_down;
};

#define ERR_MAX SIG_MSG_ERR_MAX

static const char *other_domain(const exchange_t *x, const sig_router_peer_t *p) {
  return (x->offer.peer == p ? x->answer.peer : x->offer.peer)->domain;
}

static exchange_t *xlink_exchange(sig_list_t *l) {
  xlink_t *xl = SIG_LIST_DATA(l, xlink_t, link);
  return xl->is_answer ? SIG_LIST_DATA(xl, exchange_t, answer)
                       : SIG_LIST_DATA(xl, exchange_t, offer);
}

static void send_frame(sig_router_t *r, sig_router_peer_t *p, char *frame, size_t len) {
  r->t.send(p->conn, frame, len);
  free(frame);
}

static void send_error(sig_router_t *r, sig_router_peer_t *p, int status, const char *msg,
                       const char *id) {
  size_t len;
  char *f = sig_msg_encode_error(status, msg, id, &len);
  SIG_EVENT(SIG_LOG_INFO, "router", p->domain, "error frame", SIG_KV("domain", p->domain),
            SIG_KVI("status", status), SIG_KV("id", id), SIG_KV("msg", msg));
  send_frame(r, p, f, len);
}

static void send_bye(sig_router_t *r, sig_router_peer_t *to, const char *id, const char *from,
                     const char *reason) {
  size_t len;
  char *f = sig_msg_encode_bye(id, from, reason, &len);
  send_frame(r, to, f, len);
}

static void end_exchange(sig_router_t *r, exchange_t *x) {
  if (!x->answered) {
    sig_list_remove(&x->pending);
    x->answer.peer->npending_in--;
  }
  sig_list_remove(&x->offer.link);
  sig_list_remove(&x->answer.link);
  x->offer.peer->nexchanges--;
  x->answer.peer->nexchanges--;
  sig_map_remove(&r->ids, &x->node);
  free(x);
}

sig_router_t *sig_router_new(const sig_router_transport_t *t, const sig_router_limits_t *l) {
  sig_router_t *r = sig_calloc(1, sizeof(*r));
  r->t = *t;
  r->l = *l;
  sig_map_init(&r->domains);
  sig_map_init(&r->ids);
  sig_list_init(&r->pending);
  return r;
}

void sig_router_free(sig_router_t *r) {
  if (r == NULL) return;
  r->shutting_down = 1; /* no bye to anyone */
  for (sig_map_node_t *n = sig_map_first(&r->domains), *next; n != NULL; n = next) {
    next = sig_map_next(&r->domains, n);
    sig_router_unregister(r, SIG_CONTAINER_OF(n, sig_router_peer_t, node));
  }
  sig_map_free(&r->domains);
  sig_map_free(&r->ids);
  free(r);
}

static int refuse(sig_refusal_t *why, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int refuse(sig_refusal_t *why, int code, const char *fmt, ...) {
  va_list ap;
  why->code = code;
  va_start(ap, fmt);
  vsnprintf(why->msg, sizeof(why->msg), fmt, ap);
  va_end(ap);
  return SIG_EREFUSED;
}

static sig_router_peer_t *find_peer_n(sig_router_t *r, const char *domain, size_t len) {
  sig_map_node_t *n = sig_map_get(&r->domains, domain, len);
  return n != NULL ? SIG_CONTAINER_OF(n, sig_router_peer_t, node) : NULL;
}

int sig_router_register(sig_router_t *r, const char *domain, size_t len, void *conn,
                        sig_acl_t *calls, sig_router_peer_t **out, sig_refusal_t *why) {
  sig_router_peer_t *old = find_peer_n(r, domain, len);
  if (old != NULL) {
    if (r->l.reject_duplicates) {
      sig_acl_free(calls);
      return refuse(why, SIG_CLOSE_TAKEN, "domain taken");
    }
    void *old_conn = old->conn;
    SIG_EVENT(SIG_LOG_INFO, "router", old->domain, "replaced", SIG_KVN("domain", domain, len));
    sig_router_unregister(r, old);
    r->t.close(old_conn, SIG_CLOSE_REPLACED, "replaced");
  } else if (r->domains.count >= r->l.max_domains) {
    sig_acl_free(calls);
    return refuse(why, SIG_CLOSE_FULL, "server full");
  }
  sig_router_peer_t *p = sig_calloc(1, sizeof(*p) + len + 1);
  memcpy(p->domain, domain, len);
  p->conn = conn;
  p->calls = calls;
  sig_list_init(&p->exchanges);
  sig_map_put(&r->domains, &p->node, p->domain, len);
  *out = p;
  return 0;
}

void sig_router_unregister(sig_router_t *r, sig_router_peer_t *p) {
  if (p == NULL) return;
  sig_list_t *it, *tmp;
  SIG_LIST_FOREACH_SAFE(it, tmp, &p->exchanges) {
    exchange_t *x = xlink_exchange(it);
    sig_router_peer_t *other = x->offer.peer == p ? x->answer.peer : x->offer.peer;
    if (!r->shutting_down) send_bye(r, other, x->id, p->domain, "disconnected");
    end_exchange(r, x);
  }
  sig_map_remove(&r->domains, &p->node);
  sig_acl_free(p->calls);
  free(p);
}

const char *sig_router_peer_domain(const sig_router_peer_t *p) {
  return p->domain;
}

static sig_router_peer_t *find_peer(sig_router_t *r, const char *domain) {
  return find_peer_n(r, domain, strlen(domain));
}

static exchange_t *find_exchange(sig_router_t *r, const char *id) {
  sig_map_node_t *n = sig_map_get(&r->ids, id, strlen(id));
  return n != NULL ? SIG_CONTAINER_OF(n, exchange_t, node) : NULL;
}

/* p's oldest answered exchange (forgotten first when p is at its cap), or NULL. */
static exchange_t *oldest_answered(sig_router_peer_t *p) {
  for (sig_list_t *it = p->exchanges.next; it != &p->exchanges; it = it->next) {
    exchange_t *x = xlink_exchange(it);
    if (x->answered) return x;
  }
  return NULL;
}

static int has_room(const sig_router_t *r, sig_router_peer_t *p) {
  return p->nexchanges < r->l.max_exchanges_per_peer || oldest_answered(p) != NULL;
}

static void make_room(sig_router_t *r, sig_router_peer_t *p) {
  if (p->nexchanges >= r->l.max_exchanges_per_peer) end_exchange(r, oldest_answered(p));
}

static void new_id(sig_router_t *r, char id[SIG_MSG_ID_MAX + 1]) {
  do snprintf(id, SIG_MSG_ID_MAX + 1, "x%" PRIx64, ++r->next_id);
  while (sig_map_get(&r->ids, id, strlen(id)) != NULL);
}

/* The common part of POST /offer and a WebSocket offer. prefix is "" or "offer_req.". */
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
  exchange_t *x = sig_calloc(1, sizeof(*x));
  if (m->id != NULL)
    snprintf(x->id, sizeof(x->id), "%s", m->id);
  else
    new_id(r, x->id);
  x->offer.peer = offer;
  x->answer.peer = answer;
  x->answer.is_answer = 1;
  x->created_ms = r->t.now_ms(r->t.ctx);
  sig_list_append(&offer->exchanges, &x->offer.link);
  sig_list_append(&answer->exchanges, &x->answer.link);
  sig_list_append(&r->pending, &x->pending);
  offer->nexchanges++;
  answer->nexchanges++;
  answer->npending_in++;
  sig_map_put(&r->ids, &x->node, x->id, strlen(x->id));

  size_t len;
  char *push = sig_msg_encode_offer_push(m, x->id, offer_domain, &len);
  SIG_EVENT(SIG_LOG_INFO, "router", offer_domain, "offer", SIG_KV("id", x->id),
            SIG_KV("offer_domain", offer_domain), SIG_KV("answer_domain", answer->domain),
            SIG_KVI("candidates", m->ncandidates));
  SIG_EVENT(SIG_LOG_DEBUG, "router", offer_domain, "offer sdp", SIG_KV("id", x->id),
            SIG_KV("sdp", m->offer_sdp));
  send_frame(r, answer, push, len);
  memcpy(id_out, x->id, sizeof(x->id));
  return 0;
}

int sig_router_offer(sig_router_t *r, const sig_msg_t *m, char id_out[SIG_MSG_ID_MAX + 1],
                     sig_refusal_t *why) {
  return do_offer(r, m, m->offer_domain, "", id_out, why);
}

static void on_offer(sig_router_t *r, sig_router_peer_t *from, const sig_msg_t *m) {
  char err[ERR_MAX], id[SIG_MSG_ID_MAX + 1];
  sig_refusal_t why;
  if (m->offer_domain != NULL && strcmp(m->offer_domain, from->domain) != 0) {
    snprintf(err, sizeof(err), "offer_req.offer_domain: must be your own domain '%s'",
             from->domain);
    send_error(r, from, SIG_STATUS_FORBIDDEN, err, m->id);
    return;
  }
  if (strcmp(m->answer_domain, from->domain) == 0) {
    send_error(r, from, SIG_STATUS_BAD_REQUEST,
               "offer_req.answer_domain: must differ from offer_domain", m->id);
    return;
  }
  if (!sig_acl_allows(from->calls, m->answer_domain)) {
    snprintf(err, sizeof(err), "offer_req.answer_domain: your token does not allow calling '%s'",
             m->answer_domain);
    send_error(r, from, SIG_STATUS_FORBIDDEN, err, m->id);
    return;
  }
  if (do_offer(r, m, from->domain, "offer_req.", id, &why) != 0)
    send_error(r, from, why.code, why.msg, m->id);
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

static void on_answer(sig_router_t *r, sig_router_peer_t *from, const sig_msg_t *m) {
  sig_refusal_t why;
  if (m->answer_domain != NULL && strcmp(m->answer_domain, from->domain) != 0) {
    refuse(&why, SIG_STATUS_FORBIDDEN, "answer_resp.answer_domain: must be your own domain '%s'",
           from->domain);
    send_error(r, from, why.code, why.msg, m->id);
    return;
  }
  exchange_t *x = find_pending_for_answer(r, from, m, &why);
  if (x == NULL) {
    send_error(r, from, why.code, why.msg, m->id);
    return;
  }
  x->answered = 1;
  sig_list_remove(&x->pending);
  from->npending_in--;
  size_t len;
  char *push = sig_msg_encode_answer_push(m, x->id, from->domain, x->offer.peer->domain, &len);
  SIG_EVENT(SIG_LOG_INFO, "router", from->domain, "answer", SIG_KV("id", x->id),
            SIG_KV("offer_domain", x->offer.peer->domain), SIG_KV("answer_domain", from->domain),
            SIG_KVI("candidates", m->ncandidates));
  SIG_EVENT(SIG_LOG_DEBUG, "router", from->domain, "answer sdp", SIG_KV("id", x->id),
            SIG_KV("sdp", m->answer_sdp));
  send_frame(r, x->offer.peer, push, len);
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
  if (x != NULL && may_send(from, x, m, &why) != 0) x = NULL;
  if (x == NULL) {
    send_error(r, from, why.code, why.msg, m->id);
    return;
  }
  size_t len;
  char *f = sig_msg_encode_candidate(m, x->id, from->domain, &len);
  SIG_EVENT(SIG_LOG_DEBUG, "router", from->domain, "candidate", SIG_KV("id", x->id),
            SIG_KV("from", from->domain), SIG_KV("to", m->to), SIG_KVI("n", m->ncandidates));
  send_frame(r, other_peer(x, from), f, len);
}

static void on_bye(sig_router_t *r, sig_router_peer_t *from, const sig_msg_t *m) {
  sig_refusal_t why;
  exchange_t *x = find_between(r, from, m, &why);
  if (x != NULL && may_send(from, x, m, &why) != 0) x = NULL;
  if (x == NULL) {
    send_error(r, from, why.code, why.msg, m->id);
    return;
  }
  do {
    SIG_EVENT(SIG_LOG_INFO, "router", from->domain, "bye", SIG_KV("id", x->id),
              SIG_KV("from", from->domain), SIG_KV("to", m->to));
    send_bye(r, other_peer(x, from), x->id, from->domain, "hangup");
    end_exchange(r, x);
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
    send_error(r, from, SIG_STATUS_BAD_REQUEST, err, m.id);
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
    snprintf(msg, sizeof(msg), "no answer from '%s' within %" PRIu64 " s", x->answer.peer->domain,
             r->l.answer_timeout_ms / 1000);
    SIG_EVENT(SIG_LOG_INFO, "router", x->offer.peer->domain, "offer expired", SIG_KV("id", x->id),
              SIG_KV("offer_domain", x->offer.peer->domain),
              SIG_KV("answer_domain", x->answer.peer->domain));
    send_error(r, x->offer.peer, SIG_STATUS_TIMEOUT, msg, x->id);
    send_bye(r, x->answer.peer, x->id, x->offer.peer->domain, "timeout");
    end_exchange(r, x);
  }
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
