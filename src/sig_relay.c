/* The router across nodes (docs/CLUSTER.md). An exchange between a peer here and one on
 * another node has a half on each node; the two halves agree through node messages
 * (sig_nodemsg) that carry the frame the other node delivers. What must wait for another
 * node (a registration's claim on its domain, an offer to a domain elsewhere, a POST /offer
 * for a domain elsewhere) is a wait: its completion runs when the cluster answers, or with a
 * 503 when its deadline passes first. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sig_log.h"
#include "sig_metrics.h"
#include "sig_proto.h"
#include "sig_router_int.h"
#include "sig_util.h"

enum { W_REGISTER, W_OFFER, W_FWD };

struct sig_router_wait_s {
  sig_list_t link;         /* in r->waits (deadline order) */
  sig_map_node_t rid_node; /* in r->rids while a node's reply is awaited */
  sig_router_t *r;
  int kind;
  int cancelled;     /* the caller is gone */
  int finished;      /* the completion ran (or will not) */
  int route_pending; /* the cluster's callback has not come yet */
  int inserted;      /* a registration that went ahead without the cluster */
  int own_arg;       /* arg is the router's: freed here if the completion never runs */
  uint64_t rid, deadline;
  sig_router_registered_fn reg_done;
  sig_router_offered_fn offer_done;
  void *arg;
  sig_router_peer_t *peer; /* W_REGISTER: the peer to insert */
  char rid_key[24];
  char prefix[16];                /* W_OFFER: "" or "offer_req." */
  char id[SIG_MSG_ID_MAX + 1];    /* W_OFFER: the local exchange */
  char a[SIG_MSG_DOMAIN_MAX + 1]; /* the offer domain */
  char b[SIG_MSG_DOMAIN_MAX + 1]; /* the answer domain */
  char node[SIG_NODE_ID_MAX + 1]; /* the node that holds the request, once known */
};

static int64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static sig_router_wait_t *new_wait(sig_router_t *r, int kind) {
  sig_router_wait_t *w = sig_calloc(1, sizeof(*w));
  w->r = r;
  w->kind = kind;
  sig_list_init(&w->link);
  w->deadline = r->t.now_ms(r->t.ctx) + r->c.request_timeout_ms;
  sig_list_append(&r->waits, &w->link);
  return w;
}

/* Registers w as awaiting the reply to request w->rid. */
static void await_reply(sig_router_t *r, sig_router_wait_t *w) {
  w->rid = ++r->next_rid;
  int n = snprintf(w->rid_key, sizeof(w->rid_key), "%" PRIu64, w->rid);
  sig_map_put(&r->rids, &w->rid_node, w->rid_key, (size_t)n);
}

static void drop_wait(sig_router_wait_t *w) {
  if (w->finished && !w->route_pending) {
    if (w->peer != NULL && !w->inserted) sig_router_free_peer(w->peer);
    free(w);
  }
}

/* The waiting exchange of a W_OFFER, if it is still there. */
static exchange_t *waiting_exchange(sig_router_wait_t *w) {
  exchange_t *x = sig_router_find_exchange(w->r, w->id);
  return x != NULL && x->wait == w ? x : NULL;
}

/* Completes an offer or forward: done runs (unless cancelled); a W_OFFER that failed forgets its
 * half (no word to anyone). */
static void finish_offer(sig_router_wait_t *w, int status, const char *msg, const char *id) {
  sig_router_t *r = w->r;
  char text[ERR_MAX];
  if (w->finished) return;
  w->finished = 1;
  sig_list_remove(&w->link);
  if (w->rid != 0) sig_map_remove(&r->rids, &w->rid_node), w->rid = 0;
  if (w->kind == W_OFFER) {
    exchange_t *x = waiting_exchange(w);
    if (x != NULL) {
      x->wait = NULL;
      if (status != SIG_STATUS_OK) sig_router_end(r, x);
    }
  }
  /* A refusal from the answer node names answer_domain; a WebSocket offer says offer_req. */
  if (msg != NULL && w->prefix[0] != '\0' && strncmp(msg, "answer_domain:", 14) == 0) {
    snprintf(text, sizeof(text), "%s%s", w->prefix, msg);
    msg = text;
  }
  if (!w->cancelled && w->offer_done != NULL) w->offer_done(w->arg, status, msg, id);
  drop_wait(w);
}

void sig_router_cancel(sig_router_wait_t *w) {
  if (w != NULL) w->cancelled = 1;
}

void sig_relay_own_arg(sig_router_wait_t *w) {
  w->own_arg = 1;
}

/* ---- sending */

static char *encode(sig_router_t *r, sig_nodemsg_t *m, size_t *len) {
  snprintf(m->node, sizeof(m->node), "%s", r->c.self);
  return sig_nodemsg_encode(m, len);
}

int sig_relay_send(sig_router_t *r, exchange_t *x, sig_router_peer_t *p, sig_nodemsg_op_t op,
                   char *frame, size_t len) {
  sig_nodemsg_t m = {.op = op, .f = frame, .f_len = frame != NULL ? len : 0};
  size_t mlen;
  snprintf(m.id, sizeof(m.id), "%s", x->id);
  snprintf(m.a, sizeof(m.a), "%s", x->offer.peer->domain);
  snprintf(m.b, sizeof(m.b), "%s", x->answer.peer->domain);
  snprintf(m.to, sizeof(m.to), "%s", p->domain);
  char *msg = encode(r, &m, &mlen);
  /* Until the node of an offer's answer peer is known, its domain's owner is the way there:
   * the same Redis connection keeps this after the offer. */
  int rc = x->home[0] != '\0' ? r->c.send(r->c.ctx, x->home, msg, mlen)
                              : r->c.route(r->c.ctx, p->domain, NULL, msg, mlen, NULL, NULL);
  free(msg);
  free(frame);
  return rc;
}

static void reply(sig_router_t *r, const char *node, uint64_t rid, int status, const char *msg,
                  const char *id) {
  sig_nodemsg_t m = {.op = SIG_NODE_RE, .rid = rid, .status = status};
  size_t len;
  snprintf(m.msg, sizeof(m.msg), "%s", msg != NULL ? msg : "");
  snprintf(m.id, sizeof(m.id), "%s", id != NULL ? id : "");
  char *out = encode(r, &m, &len);
  r->c.send(r->c.ctx, node, out, len);
  free(out);
}

/* ---- registration */

static void on_claimed(void *arg, int rc) {
  sig_router_wait_t *w = arg;
  sig_router_t *r = w->r;
  sig_router_peer_t *p = w->peer;
  sig_refusal_t why;
  w->route_pending = 0;
  if (w->finished || w->cancelled) {
    /* The registration went ahead without us, or its connection is gone. */
    if (rc == 0 && !w->inserted) r->c.release(r->c.ctx, p->domain, p->reg);
    w->finished = 1;
    sig_list_remove(&w->link);
    drop_wait(w);
    return;
  }
  w->finished = 1;
  sig_list_remove(&w->link);
  int ok = 0;
  if (rc == SIG_EREFUSED) {
    sig_router_refuse(&why, SIG_CLOSE_TAKEN, "domain taken");
  } else if (rc < 0 && r->l.reject_duplicates) {
    sig_router_refuse(&why, SIG_CLOSE_TRY_AGAIN, "cluster: unavailable");
  } else if (sig_router_find_local(r, p->domain) != NULL && r->l.reject_duplicates) {
    sig_router_refuse(&why, SIG_CLOSE_TAKEN, "domain taken");
  } else {
    sig_router_peer_t *old = sig_router_find_local(r, p->domain);
    if (old != NULL) { /* one that registered meanwhile: the newer wins (replace); the
                        * directory names the newer already, so the older's release is void */
      void *conn = old->conn;
      sig_router_unregister(r, old);
      r->t.close(conn, SIG_CLOSE_REPLACED, "replaced");
    }
    if (r->domains.count >= r->l.max_domains) {
      sig_router_refuse(&why, SIG_CLOSE_FULL, "server full");
    } else {
      ok = 1;
      sig_router_insert(r, p);
      w->inserted = 1;
    }
  }
  if (!ok && rc == 0) r->c.release(r->c.ctx, p->domain, p->reg);
  w->reg_done(w->arg, ok ? p : NULL, ok ? NULL : &why);
  drop_wait(w);
}

int sig_relay_register(sig_router_t *r, sig_router_peer_t *p, sig_router_peer_t **out,
                       sig_refusal_t *why, sig_router_registered_fn done, void *arg,
                       sig_router_wait_t **wait) {
  sig_router_wait_t *w = new_wait(r, W_REGISTER);
  w->peer = p;
  w->reg_done = done;
  w->arg = arg;
  int mode = r->l.reject_duplicates ? SIG_CLAIM_REJECT : SIG_CLAIM_REPLACE;
  if (r->c.claim(r->c.ctx, p->domain, p->reg, mode, on_claimed, w) != 0) {
    /* Redis is away: under "replace" the peer is served here and published when Redis is
     * back; "reject" cannot promise the name is free anywhere. */
    sig_list_remove(&w->link);
    free(w);
    if (r->l.reject_duplicates) {
      sig_router_free_peer(p);
      return sig_router_refuse(why, SIG_CLOSE_TRY_AGAIN, "cluster: unavailable");
    }
    sig_router_insert(r, p);
    *out = p;
    return 0;
  }
  w->route_pending = 1;
  *wait = w;
  return SIG_EINPROGRESS;
}

/* ---- an offer to a domain on another node */

static void on_offer_routed(void *arg, int rc, const char *node) {
  sig_router_wait_t *w = arg;
  w->route_pending = 0;
  if (w->finished) {
    drop_wait(w);
    return;
  }
  if (rc == 1) {
    snprintf(w->node, sizeof(w->node), "%s", node);
    exchange_t *x = waiting_exchange(w);
    if (x != NULL && x->home[0] == '\0') sig_router_set_home(w->r, x, node);
    return; /* the node's reply comes next */
  }
  char msg[ERR_MAX];
  if (rc == 0) {
    snprintf(msg, sizeof(msg), "answer_domain: '%s' is not connected", w->b);
    finish_offer(w, SIG_STATUS_NOT_FOUND, msg, NULL);
  } else {
    finish_offer(w, SIG_STATUS_UNAVAILABLE, "cluster: unavailable", NULL);
  }
}

int sig_relay_offer(sig_router_t *r, sig_router_peer_t *offer, const sig_msg_t *m,
                    const char *prefix, char id_out[SIG_MSG_ID_MAX + 1], sig_refusal_t *why,
                    sig_router_offered_fn done, void *arg, sig_router_wait_t **wait) {
  char id[SIG_MSG_ID_MAX + 1];
  if (!r->c.up(r->c.ctx))
    return sig_router_refuse(why, SIG_STATUS_UNAVAILABLE, "cluster: unavailable");
  if (m->id != NULL && sig_router_find_exchange(r, m->id) != NULL)
    return sig_router_refuse(why, SIG_STATUS_CONFLICT, "id: '%s' is already in use", m->id);
  if (!sig_router_has_room(r, offer))
    return sig_router_refuse(why, SIG_STATUS_TOO_MANY,
                             "%soffer_domain: '%s' has too many open exchanges", prefix,
                             offer->domain);
  if (m->id != NULL)
    snprintf(id, sizeof(id), "%s", m->id);
  else
    sig_router_new_id(r, id);
  sig_router_wait_t *w = new_wait(r, W_OFFER);
  w->offer_done = done;
  w->arg = arg;
  snprintf(w->prefix, sizeof(w->prefix), "%s", prefix);
  snprintf(w->id, sizeof(w->id), "%s", id);
  snprintf(w->a, sizeof(w->a), "%s", offer->domain);
  snprintf(w->b, sizeof(w->b), "%s", m->answer_domain);
  await_reply(r, w);

  size_t flen, len;
  char *frame = sig_msg_encode_offer_push(m, id, offer->domain, &flen);
  sig_nodemsg_t nm = {.op = SIG_NODE_OFFER,
                      .rid = w->rid,
                      .deadline_ms = wall_ms() + (int64_t)r->c.request_timeout_ms,
                      .f = frame,
                      .f_len = flen};
  snprintf(nm.id, sizeof(nm.id), "%s", id);
  snprintf(nm.a, sizeof(nm.a), "%s", offer->domain);
  snprintf(nm.b, sizeof(nm.b), "%s", m->answer_domain);
  char *msg = encode(r, &nm, &len);
  free(frame);
  int rc = r->c.route(r->c.ctx, m->answer_domain, NULL, msg, len, on_offer_routed, w);
  free(msg);
  if (rc != 0) {
    w->finished = 1;
    sig_list_remove(&w->link);
    sig_map_remove(&r->rids, &w->rid_node);
    free(w);
    return sig_router_refuse(why, SIG_STATUS_UNAVAILABLE, "cluster: unavailable");
  }
  w->route_pending = 1;
  sig_router_make_room(r, offer);
  exchange_t *x = sig_router_link(r, id, offer, sig_router_stand_in(r, m->answer_domain), "", 0);
  x->wait = w;
  SIG_EVENT(SIG_LOG_INFO, "router", offer->domain, "offer", SIG_KV("id", id),
            SIG_KV("offer_domain", offer->domain), SIG_KV("answer_domain", m->answer_domain),
            SIG_KVI("candidates", m->ncandidates), SIG_KV("via", "cluster"));
  memcpy(id_out, id, sizeof(id));
  *wait = w;
  return SIG_EINPROGRESS;
}

void sig_relay_exchange_gone(sig_router_t *r, exchange_t *x) {
  sig_router_wait_t *w = x->wait;
  char msg[ERR_MAX];
  x->wait = NULL;
  if (sig_router_find_local(r, w->a) == x->offer.peer) { /* as on one node: made, then ended */
    finish_offer(w, SIG_STATUS_OK, "ok", x->id);
    return;
  }
  snprintf(msg, sizeof(msg), "%soffer_domain: '%s' is not connected", w->prefix, w->a);
  finish_offer(w, SIG_STATUS_CONFLICT, msg, NULL);
}

/* ---- POST /offer for an offer domain elsewhere: its node carries it out */

static void on_forward_routed(void *arg, int rc, const char *node) {
  sig_router_wait_t *w = arg;
  char msg[ERR_MAX];
  w->route_pending = 0;
  if (w->finished) {
    drop_wait(w);
    return;
  }
  if (rc == 1) {
    snprintf(w->node, sizeof(w->node), "%s", node);
  } else if (rc == 2) {
    snprintf(msg, sizeof(msg), "answer_domain: '%s' is not connected", w->b);
    finish_offer(w, SIG_STATUS_NOT_FOUND, msg, NULL);
  } else if (rc == 0) {
    snprintf(msg, sizeof(msg), "offer_domain: '%s' is not connected", w->a);
    finish_offer(w, SIG_STATUS_CONFLICT, msg, NULL);
  } else {
    finish_offer(w, SIG_STATUS_UNAVAILABLE, "cluster: unavailable", NULL);
  }
}

int sig_relay_forward(sig_router_t *r, const sig_msg_t *m, const char *body, size_t body_len,
                      int answer_is_local, sig_refusal_t *why, sig_router_offered_fn done,
                      void *arg, sig_router_wait_t **wait) {
  size_t len;
  if (!r->c.up(r->c.ctx))
    return sig_router_refuse(why, SIG_STATUS_UNAVAILABLE, "cluster: unavailable");
  sig_router_wait_t *w = new_wait(r, W_FWD);
  w->offer_done = done;
  w->arg = arg;
  snprintf(w->a, sizeof(w->a), "%s", m->offer_domain);
  snprintf(w->b, sizeof(w->b), "%s", m->answer_domain);
  await_reply(r, w);
  sig_nodemsg_t nm = {.op = SIG_NODE_FWD,
                      .rid = w->rid,
                      .deadline_ms = wall_ms() + (int64_t)r->c.request_timeout_ms,
                      .f = body,
                      .f_len = body_len};
  char *msg = encode(r, &nm, &len);
  int rc = r->c.route(r->c.ctx, m->offer_domain, answer_is_local ? NULL : m->answer_domain, msg,
                      len, on_forward_routed, w);
  free(msg);
  if (rc != 0) {
    w->finished = 1;
    sig_list_remove(&w->link);
    sig_map_remove(&r->rids, &w->rid_node);
    free(w);
    return sig_router_refuse(why, SIG_STATUS_UNAVAILABLE, "cluster: unavailable");
  }
  w->route_pending = 1;
  *wait = w;
  return SIG_EINPROGRESS;
}

/* ---- messages from other nodes */

/* A forwarded POST /offer, carried out here; the reply goes back when it completes. */
typedef struct {
  sig_router_t *r;
  uint64_t rid;
  char node[SIG_NODE_ID_MAX + 1];
} fwd_t;

static void on_forwarded(void *arg, int status, const char *msg, const char *id) {
  fwd_t *f = arg;
  reply(f->r, f->node, f->rid, status, status == SIG_STATUS_OK ? "ok" : msg, id);
  free(f);
}

static void handle_fwd(sig_router_t *r, const sig_nodemsg_t *nm) {
  sig_msg_t m;
  sig_refusal_t why;
  char id[SIG_MSG_ID_MAX + 1], err[ERR_MAX];
  if (sig_msg_decode_offer_body(&m, nm->f, nm->f_len, err, sizeof(err)) != 0) {
    reply(r, nm->node, nm->rid, SIG_STATUS_BAD_REQUEST, err, NULL);
    sig_msg_free(&m);
    return;
  }
  int rc;
  sig_router_peer_t *offer = sig_router_find_local(r, m.offer_domain);
  if (r->shutting_down) {
    rc = sig_router_refuse(&why, SIG_STATUS_UNAVAILABLE, "server: shutting down");
  } else if (offer == NULL) { /* it left meanwhile: never forwarded twice */
    rc = sig_router_refuse(&why, SIG_STATUS_CONFLICT, "offer_domain: '%s' is not connected",
                           m.offer_domain);
  } else if (sig_router_find_local(r, m.answer_domain) != NULL) {
    rc = sig_router_offer(r, &m, id, &why);
  } else {
    fwd_t *f = sig_calloc(1, sizeof(*f));
    f->r = r;
    f->rid = nm->rid;
    snprintf(f->node, sizeof(f->node), "%s", nm->node);
    sig_router_wait_t *w;
    rc = sig_relay_offer(r, offer, &m, "", id, &why, on_forwarded, f, &w);
    if (rc == SIG_EINPROGRESS)
      sig_relay_own_arg(w);
    else
      free(f);
  }
  if (rc == 0)
    reply(r, nm->node, nm->rid, SIG_STATUS_OK, "ok", id);
  else if (rc != SIG_EINPROGRESS)
    reply(r, nm->node, nm->rid, why.code, why.msg, NULL);
  sig_msg_free(&m);
}

/* An offer from a peer on nm->node to one of ours: the answer side's half of the exchange. */
static void handle_offer(sig_router_t *r, const sig_nodemsg_t *nm) {
  sig_router_peer_t *b = sig_router_find_local(r, nm->b);
  int status = SIG_STATUS_OK;
  char msg[ERR_MAX] = "ok";
  if (r->shutting_down)
    status = SIG_STATUS_UNAVAILABLE, snprintf(msg, sizeof(msg), "server: shutting down");
  else if (strcmp(nm->node, r->c.self) == 0) /* it registered here after the offer left */
    status = SIG_STATUS_UNAVAILABLE,
    snprintf(msg, sizeof(msg),
             "answer_domain: '%s' moved while the offer was on its way; "
             "try again",
             nm->b);
  else if (b == NULL)
    status = SIG_STATUS_NOT_FOUND,
    snprintf(msg, sizeof(msg), "answer_domain: '%s' is not connected", nm->b);
  else if (sig_router_find_exchange(r, nm->id) != NULL)
    status = SIG_STATUS_CONFLICT, snprintf(msg, sizeof(msg), "id: '%s' is already in use", nm->id);
  else if (b->npending_in >= r->l.max_pending_offers)
    status = SIG_STATUS_TOO_MANY,
    snprintf(msg, sizeof(msg), "answer_domain: '%s' has too many pending offers", nm->b);
  else if (!sig_router_has_room(r, b))
    status = SIG_STATUS_TOO_MANY,
    snprintf(msg, sizeof(msg), "answer_domain: '%s' has too many open exchanges", nm->b);
  if (status == SIG_STATUS_OK) {
    sig_router_make_room(r, b);
    sig_router_link(r, nm->id, sig_router_stand_in(r, nm->a), b, nm->node, 1);
    SIG_EVENT(SIG_LOG_INFO, "router", nm->a, "offer", SIG_KV("id", nm->id),
              SIG_KV("offer_domain", nm->a), SIG_KV("answer_domain", nm->b),
              SIG_KV("from_node", nm->node));
    char *frame = sig_malloc(nm->f_len);
    memcpy(frame, nm->f, nm->f_len);
    sig_router_send_local(r, b, frame, nm->f_len);
    sig_metrics_inc(SIG_M_OFFERS);
  }
  reply(r, nm->node, nm->rid, status, msg, status == SIG_STATUS_OK ? nm->id : NULL);
}

static void handle_reply(sig_router_t *r, const sig_nodemsg_t *nm) {
  char key[24];
  int n = snprintf(key, sizeof(key), "%" PRIu64, nm->rid);
  sig_map_node_t *node = sig_map_get(&r->rids, key, (size_t)n);
  if (node == NULL) return; /* it timed out: the node dropped it too, or it ended */
  sig_router_wait_t *w = SIG_CONTAINER_OF(node, sig_router_wait_t, rid_node);
  if (w->kind == W_OFFER && nm->status == SIG_STATUS_OK) {
    exchange_t *x = waiting_exchange(w);
    if (x != NULL && x->home[0] == '\0') sig_router_set_home(r, x, nm->node);
  }
  finish_offer(w, nm->status, nm->msg, nm->id[0] != '\0' ? nm->id : NULL);
}

/* The local peer `to` of exchange id, whose other peer is on another node; else NULL. */
static exchange_t *half(sig_router_t *r, const sig_nodemsg_t *nm, sig_router_peer_t **local) {
  exchange_t *x = sig_router_find_exchange(r, nm->id);
  if (x == NULL || !x->remote) return NULL;
  sig_router_peer_t *p = !is_remote(x->offer.peer) ? x->offer.peer : x->answer.peer;
  if (is_remote(p) || strcmp(p->domain, nm->to) != 0) return NULL;
  *local = p;
  return x;
}

static void deliver_copy(sig_router_t *r, sig_router_peer_t *p, const sig_nodemsg_t *nm) {
  if (nm->f_len == 0) return;
  char *frame = sig_malloc(nm->f_len);
  memcpy(frame, nm->f, nm->f_len);
  sig_router_send_local(r, p, frame, nm->f_len);
}

void sig_router_node_message(sig_router_t *r, const char *buf, size_t len) {
  sig_nodemsg_t nm;
  sig_router_peer_t *p;
  exchange_t *x;
  sig_metrics_inc(SIG_M_NODE_MESSAGES);
  if (sig_nodemsg_decode(&nm, buf, len) != 0) {
    SIG_EVENT(SIG_LOG_WARN, "cluster", "nodemsg", "malformed node message dropped",
              SIG_KVN("msg", buf, len < 200 ? len : 200));
    return;
  }
  if ((nm.op == SIG_NODE_FWD || nm.op == SIG_NODE_OFFER) && nm.deadline_ms < wall_ms())
    return; /* its sender has given up on it */
  switch (nm.op) {
    case SIG_NODE_RE: handle_reply(r, &nm); break;
    case SIG_NODE_FWD: handle_fwd(r, &nm); break;
    case SIG_NODE_OFFER: handle_offer(r, &nm); break;
    case SIG_NODE_ANS:
      snprintf(nm.to, sizeof(nm.to), "%s", nm.a);
      if ((x = half(r, &nm, &p)) == NULL || x->offer.peer != p || x->answered) break;
      x->answered = 1;
      x->answer.peer->npending_in--;
      if (x->wait != NULL) finish_offer(x->wait, SIG_STATUS_OK, "ok", x->id);
      deliver_copy(r, p, &nm);
      break;
    case SIG_NODE_REL:
      if (half(r, &nm, &p) != NULL) deliver_copy(r, p, &nm);
      break;
    case SIG_NODE_END:
    case SIG_NODE_FGT:
      if ((x = half(r, &nm, &p)) == NULL) break;
      if (nm.op == SIG_NODE_END) deliver_copy(r, p, &nm);
      sig_router_end(r, x);
      break;
    case SIG_NODE_REP:
      p = sig_router_find_local(r, nm.to);
      if (p != NULL && p->reg == nm.reg) {
        void *conn = p->conn;
        char was[SIG_ROUTER_ADDR_MAX];
        SIG_EVENT(SIG_LOG_INFO, "router", p->domain, "replaced", SIG_KV("domain", p->domain),
                  SIG_KV("peer", sig_router_address(r, conn, was)), SIG_KV("by_node", nm.node));
        p->reg = 0; /* the directory names the new owner already */
        sig_router_unregister(r, p);
        r->t.close(conn, SIG_CLOSE_REPLACED, "replaced");
      }
      break;
    default: break;
  }
}

void sig_router_node_gone(sig_router_t *r, const char *node) {
  SIG_EVENT(SIG_LOG_WARN, "cluster", node, "node gone", SIG_KV("node", node));
  /* Every exchange with it ends as a disconnect would end it. */
  for (sig_map_node_t *n = sig_map_first(&r->remote), *next; n != NULL; n = next) {
    sig_router_peer_t *s = SIG_CONTAINER_OF(n, sig_router_peer_t, node);
    s->pinned++;
    sig_list_t *it, *tmp;
    SIG_LIST_FOREACH_SAFE(it, tmp, &s->exchanges) {
      xlink_t *xl = SIG_LIST_DATA(it, xlink_t, link);
      exchange_t *x = xl->is_answer ? SIG_LIST_DATA(xl, exchange_t, answer)
                                    : SIG_LIST_DATA(xl, exchange_t, offer);
      if (strcmp(x->home, node) != 0) continue;
      sig_router_peer_t *local = x->offer.peer == s ? x->answer.peer : x->offer.peer;
      size_t len;
      char *f = sig_msg_encode_bye(x->id, s->domain, "disconnected", &len);
      sig_router_send_local(r, local, f, len);
      sig_router_end(r, x);
    }
    next = sig_map_next(&r->remote, n);
    s->pinned--;
    if (s->nexchanges == 0) {
      sig_map_remove(&r->remote, &s->node);
      free(s);
    }
  }
}

/* ---- Redis came back */

typedef struct {
  sig_router_t *r;
  uint64_t reg;
  char domain[];
} restore_t;

static void on_restored(void *arg, int rc) {
  restore_t *o = arg;
  sig_router_peer_t *p = sig_router_find_local(o->r, o->domain);
  if (rc == SIG_EREFUSED && p != NULL && p->reg == o->reg) { /* another node took it meanwhile */
    void *conn = p->conn;
    char was[SIG_ROUTER_ADDR_MAX];
    SIG_EVENT(SIG_LOG_INFO, "router", p->domain, "replaced", SIG_KV("domain", p->domain),
              SIG_KV("peer", sig_router_address(o->r, conn, was)),
              SIG_KV("while", "redis was away"));
    p->reg = 0;
    sig_router_unregister(o->r, p);
    o->r->t.close(conn, SIG_CLOSE_REPLACED, "replaced");
  }
  free(o);
}

void sig_router_republish(sig_router_t *r) {
  uint64_t n = 0;
  for (sig_map_node_t *it = sig_map_first(&r->domains); it != NULL;
       it = sig_map_next(&r->domains, it)) {
    sig_router_peer_t *p = SIG_CONTAINER_OF(it, sig_router_peer_t, node);
    size_t len = strlen(p->domain);
    restore_t *o = sig_calloc(1, sizeof(*o) + len + 1);
    o->r = r;
    o->reg = p->reg;
    memcpy(o->domain, p->domain, len);
    if (r->c.claim(r->c.ctx, p->domain, p->reg, SIG_CLAIM_RESTORE, on_restored, o) != 0) {
      free(o);
      break; /* away again: the next reconnection does it */
    }
    n++;
  }
  SIG_INFO("cluster", "registrations published again count=%" PRIu64, n);
}

/* ---- deadlines */

void sig_relay_tick(sig_router_t *r, uint64_t now) {
  while (!sig_list_empty(&r->waits)) {
    sig_router_wait_t *w = SIG_LIST_DATA(r->waits.next, sig_router_wait_t, link);
    if (w->deadline > now) break;
    char msg[ERR_MAX];
    if (w->kind == W_REGISTER) {
      /* Redis did not answer the claim in time: as when it is away. */
      sig_list_remove(&w->link);
      w->finished = 1;
      sig_router_peer_t *p = w->peer;
      if (w->cancelled) {
      } else if (r->l.reject_duplicates || sig_router_find_local(r, p->domain) != NULL ||
                 r->domains.count >= r->l.max_domains) {
        sig_refusal_t why;
        sig_router_refuse(&why, SIG_CLOSE_TRY_AGAIN, "cluster: unavailable");
        w->reg_done(w->arg, NULL, &why);
      } else {
        sig_router_insert(r, p);
        w->inserted = 1;
        w->reg_done(w->arg, p, NULL);
      }
      drop_wait(w);
      continue;
    }
    if (w->node[0] != '\0')
      snprintf(msg, sizeof(msg), "cluster: no answer from node '%s' within %" PRIu64 " ms", w->node,
               r->c.request_timeout_ms);
    else
      snprintf(msg, sizeof(msg), "cluster: unavailable");
    exchange_t *x = w->kind == W_OFFER ? waiting_exchange(w) : NULL;
    if (x != NULL) { /* the answer node may have it after all: it hears of the end */
      size_t len;
      char *f = sig_msg_encode_bye(x->id, w->a, "timeout", &len);
      sig_relay_send(r, x, x->answer.peer, SIG_NODE_END, f, len);
    }
    finish_offer(w, SIG_STATUS_UNAVAILABLE, msg, NULL);
  }
}

void sig_relay_free(sig_router_t *r) {
  /* The cluster has run every callback by now (it is freed first): what waits is only
   * replies, which will not come. */
  while (!sig_list_empty(&r->waits)) {
    sig_router_wait_t *w = SIG_LIST_DATA(r->waits.next, sig_router_wait_t, link);
    w->cancelled = 1;
    w->route_pending = 0;
    if (w->kind == W_REGISTER) {
      sig_list_remove(&w->link);
      w->finished = 1;
      drop_wait(w);
    } else {
      if (w->own_arg) free(w->arg);
      finish_offer(w, SIG_STATUS_UNAVAILABLE, "server: shutting down", NULL);
    }
  }
}
