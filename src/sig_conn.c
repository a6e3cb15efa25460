/* Connections (see the lifecycle in sig_conn.h). Each connection is on exactly one
 * list: a deadline's or the doomed list; a deadline's list is in the order its
 * connections joined it, so one loop-wide timer only looks at list heads. Reads
 * land in one loop-wide buffer and are handled before the callback returns: an
 * idle connection holds no buffer. A connection that spends its turn's budget
 * keeps the unhandled rest of its read (the only buffer it ever holds), stops
 * reading, and waits on the yielded list for the next turn.
 *
 * On a TLS listener the byte stream decrypts: a read is decrypted one record at a
 * time into a second loop-wide buffer and handed over; when the handler yields, what
 * it kept is the plaintext it did not take (decrypted already: TLS cannot decrypt a
 * record twice) followed by the ciphertext not yet decrypted (decrypted next turn, so
 * a turn never decrypts much more than the handler takes). Writes are encrypted and
 * the records go into the same write queue as plain bytes. */
#include "sig_conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <uv.h>

#include "sig_list.h"
#include "sig_log.h"
#include "sig_metrics.h"
#include "sig_tls.h"
#include "sig_util.h"

#define READ_BUF_SIZE 65536
#define TICK_MS 100

/* A write: in flight, or gathering what is written while another is. */
typedef struct {
  uv_write_t req;
  sig_conn_t *conn;
  size_t len, cap;
  char data[];
} wreq_t;

/* What a yielded connection has not handled yet: plen bytes of plaintext, then (TLS)
 * clen bytes of ciphertext not yet decrypted. */
typedef struct {
  sig_list_t link; /* in the set's yielded list */
  sig_conn_t *conn;
  size_t plen, clen, cap;
  char data[];
} pending_t;

/* The same, while it is still in someone else's buffers. */
typedef struct {
  const char *plain, *cipher;
  size_t plen, clen;
} rest_t;

struct sig_conn_s {
  uv_tcp_t tcp;
  sig_conns_t *set;
  sig_list_t link; /* in a deadline's list or the doomed list */
  uint64_t since;  /* when it joined its deadline's list */
  const sig_conn_handler_t *handler;
  void *data;
  pending_t *pending; /* while yielded */
  wreq_t *inflight;   /* the write libuv is doing */
  wreq_t *gather;     /* what waits for it to finish */
  sig_tls_t *tls;     /* on a TLS listener */
  sig_addr_t client;
  uint32_t queued; /* bytes in the user-space write queue */
  uint32_t turn;   /* the turn its budget was last spent in, and how much */
  uint16_t spent;
  uint8_t state;
  uint8_t deadline;
  uint8_t served;
  uint8_t counted;
  uint8_t eof;        /* the peer closed or reset: no last words */
  uint8_t last_words; /* closing now: TLS's close_notify goes out only if the socket takes it */
  uint8_t fin;        /* DRAINING: the FIN is requested */
  uint8_t paused; /* its handler waits for something: no reading, what is left is held */
};

struct sig_conns_s {
  uv_loop_t *loop;
  sig_conns_config_t cfg;
  uv_timer_t timer;
  uv_idle_t reaper;
  uv_prepare_t turner; /* counts the loop's turns */
  uv_idle_t resumer;   /* runs the yielded connections, once a turn */
  uint32_t turn;
  sig_list_t lists[SIG_DEADLINE_COUNT];
  sig_list_t doomed;
  sig_list_t yielded; /* of pending_t */
  uint64_t count;
  int handles_open;
  void (*on_empty)(void *arg);
  void *empty_arg;
};

static char read_buf[READ_BUF_SIZE];
static char plain_buf[SIG_TLS_RECORD_MAX]; /* one decrypted record */

static void destroy(sig_conn_t *c);

/* Returns the bytes the socket took at once (all, some or none), or a negative error. */
static int socket_try_write(sig_conn_t *c, const uv_buf_t *bufs, unsigned n) {
  int w = uv_try_write((uv_stream_t *)&c->tcp, bufs, n);
  return w == UV_EAGAIN || w == UV_ENOSYS ? 0 : w;
}

/* ---- closing */

static void on_close(uv_handle_t *h) {
  sig_conn_t *c = h->data;
  sig_conns_t *s = c->set;
  free(c->gather); /* the write in flight was cancelled, and freed, before this */
  sig_tls_free(c->tls);
  free(c);
  if (--s->count == 0 && s->on_empty != NULL) {
    void (*done)(void *) = s->on_empty;
    s->on_empty = NULL;
    done(s->empty_arg);
  }
}

static void drop_pending(sig_conn_t *c) {
  if (c->pending == NULL) return;
  sig_list_remove(&c->pending->link);
  free(c->pending);
  c->pending = NULL;
}

/* c leaves OPEN (or is reaped): its handler lets go. */
static void release(sig_conn_t *c) {
  drop_pending(c);
  if (c->handler != NULL && c->handler->on_close != NULL) c->handler->on_close(c);
  c->handler = NULL;
  c->data = NULL;
  if (c->set->cfg.on_release != NULL) c->set->cfg.on_release(c->set->cfg.release_arg, c);
}

static void destroy(sig_conn_t *c) {
  if (c->state == SIG_CONN_CLOSED) return;
  if (c->state == SIG_CONN_OPEN && c->tls != NULL && c->queued == 0 && !c->eof) {
    c->last_words = 1; /* close_notify, if the socket takes it at once */
    sig_tls_close(c->tls);
  }
  if (c->state == SIG_CONN_OPEN || c->state == SIG_CONN_DOOMED) release(c);
  c->state = SIG_CONN_CLOSED;
  sig_list_remove(&c->link);
  c->deadline = SIG_DEADLINE_NONE;
  uv_close((uv_handle_t *)&c->tcp, on_close);
}

static void on_reap(uv_idle_t *h) {
  sig_conns_t *s = h->data;
  while (!sig_list_empty(&s->doomed)) destroy(SIG_LIST_DATA(s->doomed.next, sig_conn_t, link));
  SIG_MUST(uv_idle_stop(h));
}

static void doom(sig_conn_t *c) {
  c->state = SIG_CONN_DOOMED;
  SIG_MUST(uv_read_stop((uv_stream_t *)&c->tcp));
  sig_list_remove(&c->link);
  c->deadline = SIG_DEADLINE_NONE;
  sig_list_append(&c->set->doomed, &c->link);
  SIG_MUST(uv_idle_start(&c->set->reaper, on_reap));
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  sig_conn_t *c = req->data;
  free(req);
  if (status != 0 && status != UV_ECANCELED) destroy(c);
}

/* The FIN, after everything queued (libuv orders it after the writes it has). */
static void send_fin(sig_conn_t *c) {
  uv_shutdown_t *req = sig_malloc(sizeof(*req));
  req->data = c;
  c->fin = 1;
  if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
    free(req);
    destroy(c);
  }
}

static void drain(sig_conn_t *c) {
  if (c->tls != NULL) { /* close_notify goes out before the FIN */
    sig_tls_close(c->tls);
    if (c->state != SIG_CONN_OPEN) return; /* the write failed: doomed, reaped soon */
  }
  release(c);
  c->state = SIG_CONN_DRAINING;
  sig_conn_set_deadline(c, SIG_DEADLINE_LINGER);
  /* What is still gathering behind a write in flight must go out before the FIN: a
   * shut-down stream takes no new write (on_write sends the FIN then). */
  if (c->gather == NULL) send_fin(c);
}

void sig_conn_close(sig_conn_t *c, sig_conn_close_t how) {
  switch (how) {
    case SIG_CONN_NOW: destroy(c); return;
    case SIG_CONN_FLUSH:
      if (c->state == SIG_CONN_OPEN) drain(c);
      return;
    case SIG_CONN_DEFER:
      if (c->state == SIG_CONN_OPEN) doom(c);
      return;
  }
}

/* ---- writes: at most one write in flight; what the connection produces meanwhile gathers
 * in one buffer that becomes the next write, so a burst of small frames costs one write. */

static void submit(sig_conn_t *c);

static void on_write(uv_write_t *req, int status) {
  wreq_t *w = (wreq_t *)req;
  sig_conn_t *c = w->conn;
  c->queued -= (uint32_t)w->len;
  c->inflight = NULL;
  free(w);
  /* A failed write shows up as a read error or EOF too; a closed handle cancels. */
  if (status != 0 || c->state == SIG_CONN_CLOSED) return;
  submit(c);
  if (c->state == SIG_CONN_DRAINING && !c->fin && c->gather == NULL) send_fin(c);
}

/* Starts writing the gathered bytes, if any and if nothing is in flight. */
static void submit(sig_conn_t *c) {
  wreq_t *q = c->gather;
  if (q == NULL || c->inflight != NULL) return;
  c->gather = NULL;
  uv_buf_t b = uv_buf_init(q->data, (unsigned)q->len);
  int rc = uv_write(&q->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
  if (rc != 0) {
    c->queued -= (uint32_t)q->len;
    free(q);
    if (c->state == SIG_CONN_OPEN)
      doom(c);
    else
      destroy(c); /* draining: its handler is gone already */
    return;
  }
  c->inflight = q;
}

/* Appends bufs[], from byte `skip` of the whole, to the gathering buffer. */
static void gather(sig_conn_t *c, const uv_buf_t *bufs, unsigned n, size_t skip, size_t rest) {
  wreq_t *q = c->gather;
  size_t have = q != NULL ? q->len : 0, cap = q != NULL ? q->cap : 0;
  if (have + rest > cap) {
    cap = cap != 0 ? cap : 1024;
    while (cap < have + rest) cap *= 2;
    q = sig_realloc(q, sizeof(*q) + cap);
    q->conn = c, q->cap = cap, q->len = have;
    c->gather = q;
  }
  for (unsigned i = 0; i < n; i++) {
    size_t bl = bufs[i].len;
    if (skip >= bl) {
      skip -= bl;
      continue;
    }
    memcpy(q->data + q->len, bufs[i].base + skip, bl - skip);
    q->len += bl - skip;
    skip = 0;
  }
  c->queued += (uint32_t)rest;
}

/* Writes to the socket what it takes at once and queues the rest (plain bytes or TLS
 * records). Returns 0, or a negative error with c DOOMED. c is OPEN. */
static int socket_writev(sig_conn_t *c, const uv_buf_t *bufs, unsigned n) {
  size_t total = 0;
  int w = 0;
  for (unsigned i = 0; i < n; i++) total += bufs[i].len;
  sig_metrics_add(SIG_M_BYTES_OUT, total);
  if (c->queued == 0) { /* nothing waits: straight to the socket, as much as it takes */
    w = socket_try_write(c, bufs, n);
    if (w < 0) {
      doom(c);
      return w;
    }
    if ((size_t)w == total) return 0;
  }
  size_t rest = total - (size_t)w;
  /* One piece larger than the cap may wait alone (max_message_bytes can exceed it); a
   * reader that stops reading is caught by the next write. */
  if (c->queued > 0 && c->queued + rest > c->set->cfg.max_queue_bytes) {
    SIG_EVENT(SIG_LOG_WARN, "conn", SIG_CONN_IP(c), "write queue full: dropping a slow reader",
              SIG_KVI("limit", c->set->cfg.max_queue_bytes), SIG_KV("domain", sig_conn_label(c)),
              SIG_KV("peer", SIG_CONN_PEER(c)));
    doom(c);
    return SIG_ETOOBIG;
  }
  gather(c, bufs, n, (size_t)w, rest);
  submit(c);
  return c->state == SIG_CONN_OPEN ? 0 : UV_EPIPE;
}

/* TLS's records on their way out (sig_tls_send_fn). */
static int tls_send(void *user, const char *data, size_t len) {
  sig_conn_t *c = user;
  uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
  if (c->state != SIG_CONN_OPEN) return UV_EPIPE;
  if (c->last_words) { /* closing now: what the socket does not take is lost anyway */
    socket_try_write(c, &b, 1);
    return 0;
  }
  return socket_writev(c, &b, 1);
}

/* Encrypts the pieces, gathered into records (a frame header and its payload make one
 * record, not two). */
static int tls_writev(sig_conn_t *c, const sig_conn_buf_t *pieces, unsigned n) {
  static char rec[SIG_TLS_RECORD_MAX];
  size_t fill = 0;
  int rc = 0;
  for (unsigned i = 0; i < n && rc == 0; i++) {
    const char *p = pieces[i].base;
    size_t left = pieces[i].len;
    while (left > 0 && rc == 0) {
      if (fill == 0 && left >= sizeof(rec)) { /* whole records straight from the piece */
        size_t whole = left - left % sizeof(rec);
        rc = sig_tls_write(c->tls, p, whole);
        p += whole, left -= whole;
        continue;
      }
      size_t k = left < sizeof(rec) - fill ? left : sizeof(rec) - fill;
      memcpy(rec + fill, p, k);
      fill += k, p += k, left -= k;
      if (fill == sizeof(rec)) rc = sig_tls_write(c->tls, rec, fill), fill = 0;
    }
  }
  if (rc == 0 && fill > 0) rc = sig_tls_write(c->tls, rec, fill);
  if (rc != 0 && c->state == SIG_CONN_OPEN) doom(c); /* a failing write always dooms */
  return rc != 0 ? UV_EPIPE : c->state == SIG_CONN_OPEN ? 0 : UV_EPIPE;
}

int sig_conn_writev(sig_conn_t *c, const sig_conn_buf_t *pieces, unsigned n) {
  uv_buf_t bufs[8] = {{0}};
  if (c->state != SIG_CONN_OPEN) return UV_EPIPE;
  if (n > SIG_ARRAY_SIZE(bufs)) return UV_EINVAL;
  if (c->tls != NULL) return tls_writev(c, pieces, n);
  for (unsigned i = 0; i < n; i++)
    bufs[i] = uv_buf_init((char *)pieces[i].base, (unsigned)pieces[i].len);
  return socket_writev(c, bufs, n);
}

int sig_conn_write(sig_conn_t *c, const void *data, size_t len) {
  sig_conn_buf_t b = {data, len};
  return sig_conn_writev(c, &b, 1);
}

size_t sig_conn_queued(const sig_conn_t *c) {
  return c->queued;
}

/* ---- deadlines */

void sig_conn_set_deadline(sig_conn_t *c, sig_deadline_t d) {
  uint64_t now = uv_now(c->set->loop);
  if (c->deadline == d && c->since == now) return; /* already there, in order */
  sig_list_remove(&c->link);
  c->deadline = (uint8_t)d;
  c->since = now;
  if (d != SIG_DEADLINE_NONE) sig_list_append(&c->set->lists[d], &c->link);
}

sig_deadline_t sig_conn_deadline(const sig_conn_t *c) {
  return (sig_deadline_t)c->deadline;
}

static void expire(sig_conn_t *c, sig_deadline_t d) {
  if (d == SIG_DEADLINE_LINGER || c->state != SIG_CONN_OPEN || c->handler == NULL ||
      c->handler->on_deadline == NULL) {
    destroy(c);
    return;
  }
  uint64_t since = c->since;
  c->handler->on_deadline(c, d);
  /* A handler that left it where it was would be asked again at once. */
  if (c->state != SIG_CONN_CLOSED && c->deadline == d && c->since == since) destroy(c);
}

static void on_tick(uv_timer_t *t) {
  sig_conns_t *s = t->data;
  uint64_t now = uv_now(s->loop);
  for (int l = 0; l < SIG_DEADLINE_COUNT; l++) {
    /* Peers that registered together (all of them, after a restart) come due together:
     * pings go out a bounded number at a time, so a wave never stalls the loop, and the
     * wave spreads out, since each peer's next deadline counts from its ping. */
    int64_t budget = l == SIG_DEADLINE_PING ? (int64_t)s->cfg.pings_per_tick : -1;
    while (!sig_list_empty(&s->lists[l]) && budget-- != 0) {
      sig_conn_t *c = SIG_LIST_DATA(s->lists[l].next, sig_conn_t, link);
      if (c->since + s->cfg.durations_ms[l] > now) break;
      expire(c, (sig_deadline_t)l);
    }
  }
  if (s->cfg.on_tick != NULL) s->cfg.on_tick(s->cfg.tick_arg);
}

/* ---- reading and accepting */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  (void)suggested;
  *buf = uv_buf_init(read_buf, sizeof(read_buf));
}

int sig_conn_spend(sig_conn_t *c) {
  if (c->turn != c->set->turn) c->turn = c->set->turn, c->spent = 0;
  return ++c->spent <= SIG_CONN_TURN_UNITS;
}

static void on_resume(uv_idle_t *h);
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

/* ---- the byte stream: between the socket and the handler. Plain TCP passes bytes
 * through; TLS decrypts them a record at a time. */

/* Hands plaintext to the handler. Returns 0 when it took all, 1 when it yielded (the rest
 * in *r), -1 when c is no longer OPEN. */
static int hand_over(sig_conn_t *c, const char *buf, size_t len, rest_t *r) {
  size_t used = c->handler->on_data(c, buf, len);
  if (c->state != SIG_CONN_OPEN) return -1;
  if (used >= len) return 0;
  r->plain = buf + used;
  r->plen = len - used;
  return 1;
}

/* Logged with the peer's address and one reason, never OpenSSL's whole error stack; the
 * alert TLS may have written goes out before the FIN. */
static void tls_failed(sig_conn_t *c, const char *why) {
  SIG_EVENT(SIG_LOG_INFO, "tls", SIG_CONN_IP(c),
            sig_tls_ready(c->tls) ? "tls error" : "handshake failed", SIG_KV("reason", why),
            SIG_KV("peer", SIG_CONN_PEER(c)));
  sig_conn_close(c, SIG_CONN_FLUSH);
}

/* Bytes from the socket, through the stream to the handler. Returns as hand_over; on 1, *r
 * holds the plaintext not taken and then the ciphertext not yet decrypted. */
static int stream_read(sig_conn_t *c, const char *in, size_t len, rest_t *r) {
  memset(r, 0, sizeof(*r));
  if (c->tls == NULL) return hand_over(c, in, len, r);
  /* A handshake that began is a request under way: it must be done by the request
   * deadline, and nothing the handler sees has arrived yet to move it there. */
  if (c->deadline == SIG_DEADLINE_FIRST_BYTE) sig_conn_set_deadline(c, SIG_DEADLINE_REQUEST);
  for (size_t pos = 0;;) {
    size_t used, n;
    const char *why;
    int rc =
        sig_tls_read(c->tls, in + pos, len - pos, &used, plain_buf, sizeof(plain_buf), &n, &why);
    pos += used;
    if (c->state != SIG_CONN_OPEN) return -1; /* a handshake write failed: doomed */
    if (rc == SIG_TLS_EOF) { /* close_notify: the peer is done, as at EOF; ours answers it */
      destroy(c);
      return -1;
    }
    if (rc < 0) {
      tls_failed(c, why);
      return -1;
    }
    if (n == 0) return 0; /* all the input is in */
    int h = hand_over(c, plain_buf, n, r);
    if (h == 1) r->cipher = in + pos, r->clen = len - pos;
    if (h != 0) return h;
  }
}

static int inside(const pending_t *p, const char *at) {
  return (uintptr_t)at >= (uintptr_t)p->data && (uintptr_t)at < (uintptr_t)(p->data + p->cap);
}

/* Stops reading c until the next turn, keeping what *r describes. */
static void yield(sig_conn_t *c, const rest_t *r) {
  pending_t *p = c->pending;
  size_t need = r->plen + r->clen;
  if (p == NULL || p->cap < need) {
    pending_t *q = sig_malloc(sizeof(*q) + need);
    if (r->plen > 0) memcpy(q->data, r->plain, r->plen);
    if (r->clen > 0) memcpy(q->data + r->plen, r->cipher, r->clen);
    q->cap = need;
    drop_pending(c);
    p = c->pending = q;
    p->conn = c;
    sig_list_init(&p->link);
  } else if (r->plen > 0 && inside(p, r->plain)) {
    /* both lie in p, the plaintext first: moved down in that order, neither clobbers the
     * other */
    memmove(p->data, r->plain, r->plen);
    if (r->clen > 0) memmove(p->data + r->plen, r->cipher, r->clen);
  } else { /* the plaintext is a fresh record (outside p); the ciphertext may be in p */
    if (r->clen > 0) memmove(p->data + r->plen, r->cipher, r->clen);
    if (r->plen > 0) memcpy(p->data, r->plain, r->plen);
  }
  p->plen = r->plen;
  p->clen = r->clen;
  sig_list_remove(&p->link);
  SIG_MUST(uv_read_stop((uv_stream_t *)&c->tcp));
  if (c->paused) return; /* held until sig_conn_resume */
  sig_list_append(&c->set->yielded, &p->link);
  SIG_MUST(uv_idle_start(&c->set->resumer, on_resume));
}

/* Hands bytes to the handler; yields when it handled fewer or the read filled the buffer
 * (more is likely waiting: it comes next turn, after everyone else's). */
static void deliver(sig_conn_t *c, const char *buf, size_t len, int full) {
  rest_t r;
  int rc = stream_read(c, buf, len, &r);
  if (rc < 0) return;
  if (rc == 1 || full) yield(c, &r);
}

/* Each turn: every connection that yielded before this turn gets its bytes again, and reads
 * again once they are all handled. */
static void on_resume(uv_idle_t *h) {
  sig_conns_t *s = h->data;
  sig_list_t batch;
  sig_list_init(&batch);
  while (!sig_list_empty(&s->yielded)) { /* one that yields again now waits for the next turn */
    sig_list_t *n = s->yielded.next;
    sig_list_remove(n);
    sig_list_append(&batch, n);
  }
  while (!sig_list_empty(&batch)) {
    pending_t *p = SIG_LIST_DATA(batch.next, pending_t, link);
    sig_conn_t *c = p->conn;
    rest_t r = {0};
    int rc = 0;
    sig_list_remove(&p->link);
    if (p->plen > 0 && (rc = hand_over(c, p->data, p->plen, &r)) == 1)
      r.cipher = p->data + p->plen, r.clen = p->clen;
    if (rc == 0 && p->clen > 0) rc = stream_read(c, p->data + p->plen, p->clen, &r);
    if (rc < 0 || c->state != SIG_CONN_OPEN || c->pending != p) continue; /* closed: p is gone */
    if (rc == 1) {
      yield(c, &r);
    } else {
      drop_pending(c);
      if (!c->paused && uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) destroy(c);
    }
  }
  if (sig_list_empty(&s->yielded)) SIG_MUST(uv_idle_stop(h));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  sig_conn_t *c = stream->data;
  if (nread < 0) {
    c->eof = 1;
    destroy(c);
    return;
  }
  if (nread == 0 || c->state != SIG_CONN_OPEN || c->handler == NULL) return; /* draining: drop */
  sig_metrics_add(SIG_M_BYTES_IN, (uint64_t)nread);
  deliver(c, buf->base, (size_t)nread, (size_t)nread == READ_BUF_SIZE);
}

void sig_conn_pause(sig_conn_t *c) {
  if (c->state != SIG_CONN_OPEN || c->paused) return;
  c->paused = 1;
  SIG_MUST(uv_read_stop((uv_stream_t *)&c->tcp));
  if (c->pending != NULL) sig_list_remove(&c->pending->link); /* not resumed next turn */
}

void sig_conn_resume(sig_conn_t *c) {
  if (!c->paused) return;
  c->paused = 0;
  if (c->state != SIG_CONN_OPEN) return;
  if (c->pending != NULL) { /* what it held comes first, next turn */
    sig_list_remove(&c->pending->link);
    sig_list_append(&c->set->yielded, &c->pending->link);
    SIG_MUST(uv_idle_start(&c->set->resumer, on_resume));
  } else if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
    doom(c);
  }
}

sig_conn_t *sig_conn_accept(sig_conns_t *s, uv_stream_t *listener, sig_tls_ctx_t *tls) {
  sig_conn_t *c = sig_calloc(1, sizeof(*c));
  c->set = s;
  c->deadline = SIG_DEADLINE_NONE;
  sig_list_init(&c->link);
  int rc = uv_tcp_init(s->loop, &c->tcp);
  if (rc != 0) {
    SIG_WARN("conn", "accept failed error=\"%s\"", sig_strerror(rc));
    free(c);
    return NULL;
  }
  c->tcp.data = c;
  s->count++;
  c->state = SIG_CONN_OPEN;
  if (tls != NULL) c->tls = sig_tls_new(tls, tls_send, c);
  rc = uv_accept(listener, (uv_stream_t *)&c->tcp);
  if (rc == 0) rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  if (rc != 0) {
    SIG_WARN("conn", "accept failed error=\"%s\"", sig_strerror(rc));
    destroy(c);
    return NULL;
  }
  uv_tcp_nodelay(&c->tcp, 1); /* best effort: a failure changes only latency */
  struct sockaddr_storage ss;
  int sslen = sizeof(ss);
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sslen) == 0)
    sig_addr_from_sockaddr(&c->client, (struct sockaddr *)&ss);
  if (s->cfg.sndbuf_bytes > 0) { /* a fixed buffer: the kernel's queue stays bounded */
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
      setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &s->cfg.sndbuf_bytes, sizeof(s->cfg.sndbuf_bytes));
  }
  return c;
}

void sig_conn_set_handler(sig_conn_t *c, const sig_conn_handler_t *h, void *data) {
  c->handler = h;
  c->data = data;
}

void *sig_conn_data(const sig_conn_t *c) {
  return c->data;
}

sig_conn_state_t sig_conn_state(const sig_conn_t *c) {
  return (sig_conn_state_t)c->state;
}

const char *sig_conn_peer(const sig_conn_t *c, char buf[SIG_CONN_ADDR_MAX]) {
  sig_addr_format(&c->client, 1, buf);
  return buf;
}

const char *sig_conn_peer_ip(const sig_conn_t *c, char buf[SIG_CONN_ADDR_MAX]) {
  sig_addr_format(&c->client, 0, buf);
  return buf;
}

const sig_addr_t *sig_conn_client(const sig_conn_t *c) {
  return &c->client;
}

void sig_conn_set_client(sig_conn_t *c, const sig_addr_t *a) {
  c->client = *a;
}

void sig_conn_socket_peer(const sig_conn_t *c, sig_addr_t *a) {
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  memset(a, 0, sizeof(*a));
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0)
    sig_addr_from_sockaddr(a, (struct sockaddr *)&ss);
}

void sig_conn_set_served(sig_conn_t *c) {
  c->served = 1;
}

void sig_conn_set_counted(sig_conn_t *c) {
  c->counted = 1;
}

int sig_conn_counted(const sig_conn_t *c) {
  return c->counted;
}

const char *sig_conn_label(sig_conn_t *c) {
  const char *l = c->handler != NULL && c->handler->label != NULL ? c->handler->label(c) : NULL;
  return l != NULL ? l : "-";
}

/* ---- the set */

static void on_turn(uv_prepare_t *h) {
  sig_conns_t *s = h->data;
  s->turn++;
}

sig_conns_t *sig_conns_new(uv_loop_t *loop, const sig_conns_config_t *cfg) {
  sig_conns_t *s = sig_calloc(1, sizeof(*s));
  s->loop = loop;
  s->cfg = *cfg;
  for (int l = 0; l < SIG_DEADLINE_COUNT; l++) sig_list_init(&s->lists[l]);
  sig_list_init(&s->doomed);
  sig_list_init(&s->yielded);
  SIG_MUST(uv_timer_init(loop, &s->timer));
  s->timer.data = s;
  SIG_MUST(uv_idle_init(loop, &s->reaper));
  s->reaper.data = s;
  SIG_MUST(uv_idle_init(loop, &s->resumer));
  s->resumer.data = s;
  SIG_MUST(uv_prepare_init(loop, &s->turner));
  s->turner.data = s;
  SIG_MUST(uv_prepare_start(&s->turner, on_turn));
  uv_unref((uv_handle_t *)&s->turner); /* it alone does not keep the loop alive */
  s->handles_open = 4;
  SIG_MUST(uv_timer_start(&s->timer, on_tick, TICK_MS, TICK_MS));
  return s;
}

static void on_handle_closed(uv_handle_t *h) {
  sig_conns_t *s = h->data;
  if (--s->handles_open == 0) free(s);
}

void sig_conns_free(sig_conns_t *s) {
  if (s == NULL) return;
  uv_close((uv_handle_t *)&s->timer, on_handle_closed);
  uv_close((uv_handle_t *)&s->reaper, on_handle_closed);
  uv_close((uv_handle_t *)&s->resumer, on_handle_closed);
  uv_close((uv_handle_t *)&s->turner, on_handle_closed);
}

/* The oldest connection on list l that has not proved itself, or NULL. */
static sig_conn_t *oldest_unproven(sig_conns_t *s, int l) {
  for (sig_list_t *it = s->lists[l].next; it != &s->lists[l]; it = it->next) {
    sig_conn_t *c = SIG_LIST_DATA(it, sig_conn_t, link);
    if (!c->served && c->state == SIG_CONN_OPEN) return c;
  }
  return NULL;
}

int sig_conns_evict(sig_conns_t *s) {
  sig_conn_t *c = oldest_unproven(s, SIG_DEADLINE_FIRST_BYTE);
  if (c == NULL) c = oldest_unproven(s, SIG_DEADLINE_REQUEST);
  if (c == NULL) return 0;
  destroy(c);
  return 1;
}

uint64_t sig_conns_count(const sig_conns_t *s) {
  return s->count;
}

void sig_conns_on_empty(sig_conns_t *s, void (*done)(void *arg), void *arg) {
  s->on_empty = done;
  s->empty_arg = arg;
}

/* Every connection on a deadline's list, in an array: handlers may move connections
 * between lists while we go through them, but none is freed before the loop runs. */
static sig_conn_t **snapshot(sig_conns_t *s, size_t *n) {
  sig_conn_t **all = sig_malloc((size_t)(s->count + 1) * sizeof(*all));
  *n = 0;
  for (int l = 0; l < SIG_DEADLINE_COUNT; l++)
    for (sig_list_t *it = s->lists[l].next; it != &s->lists[l] && *n < s->count; it = it->next)
      all[(*n)++] = SIG_LIST_DATA(it, sig_conn_t, link);
  return all;
}

void sig_conns_shutdown(sig_conns_t *s) {
  size_t n;
  sig_conn_t **all = snapshot(s, &n);
  for (size_t i = 0; i < n; i++) {
    sig_conn_t *c = all[i];
    if (c->state == SIG_CONN_OPEN && c->handler != NULL && c->handler->on_shutdown != NULL)
      c->handler->on_shutdown(c);
  }
  free(all);
}

void sig_conns_cut(sig_conns_t *s) {
  for (int again = 1; again;) {
    again = 0;
    for (int l = 0; l < SIG_DEADLINE_COUNT; l++)
      while (!sig_list_empty(&s->lists[l])) {
        destroy(SIG_LIST_DATA(s->lists[l].next, sig_conn_t, link));
        again = 1;
      }
    if (!sig_list_empty(&s->doomed)) {
      on_reap(&s->reaper);
      again = 1;
    }
  }
}
