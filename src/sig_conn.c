/* Connections (see the lifecycle in sig_conn.h). Each connection is on exactly one
 * list: a deadline's or the doomed list; a deadline's list is in the order its
 * connections joined it, so one loop-wide timer only looks at list heads. Reads
 * land in one loop-wide buffer and are handled before the callback returns: an
 * idle connection holds no buffer. */
#include "sig_conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "sig_list.h"
#include "sig_log.h"
#include "sig_util.h"

#define READ_BUF_SIZE 65536
#define TICK_MS 100

struct sig_conn_s {
  uv_tcp_t tcp;
  sig_conns_t *set;
  sig_list_t link; /* in a deadline's list or the doomed list */
  uint64_t since;  /* when it joined its deadline's list */
  const sig_conn_handler_t *handler;
  void *data;
  uint32_t queued; /* bytes in the user-space write queue */
  uint8_t state;
  uint8_t deadline;
};

struct sig_conns_s {
  uv_loop_t *loop;
  sig_conns_config_t cfg;
  uv_timer_t timer;
  uv_idle_t reaper;
  sig_list_t lists[SIG_DEADLINE_COUNT];
  sig_list_t doomed;
  uint64_t count;
  int handles_open;
  void (*on_empty)(void *arg);
  void *empty_arg;
};

typedef struct {
  uv_write_t req;
  sig_conn_t *conn;
  size_t len;
  char data[];
} wreq_t;

static char read_buf[READ_BUF_SIZE];

/* ---- the byte stream: between the socket and the handler. Plain TCP passes bytes
 * through; TLS will decrypt in read and encrypt in writev, on the same connection. */

static void stream_read(sig_conn_t *c, const char *buf, size_t len) {
  c->handler->on_data(c, buf, len);
}

/* Returns the bytes the socket took at once (all, some or none), or a negative error. */
static int stream_try_write(sig_conn_t *c, const uv_buf_t *bufs, unsigned n) {
  int w = uv_try_write((uv_stream_t *)&c->tcp, bufs, n);
  return w == UV_EAGAIN || w == UV_ENOSYS ? 0 : w;
}

/* ---- closing */

static void on_close(uv_handle_t *h) {
  sig_conn_t *c = h->data;
  sig_conns_t *s = c->set;
  free(c);
  if (--s->count == 0 && s->on_empty != NULL) {
    void (*done)(void *) = s->on_empty;
    s->on_empty = NULL;
    done(s->empty_arg);
  }
}

/* c leaves OPEN (or is reaped): its handler lets go. */
static void release(sig_conn_t *c) {
  if (c->handler != NULL && c->handler->on_close != NULL) c->handler->on_close(c);
  c->handler = NULL;
  c->data = NULL;
}

static void destroy(sig_conn_t *c) {
  if (c->state == SIG_CONN_CLOSED) return;
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

static void drain(sig_conn_t *c) {
  release(c);
  c->state = SIG_CONN_DRAINING;
  sig_conn_set_deadline(c, SIG_DEADLINE_LINGER);
  uv_shutdown_t *req = sig_malloc(sizeof(*req));
  req->data = c;
  if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
    free(req);
    destroy(c);
  }
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

/* ---- writes */

static void on_write(uv_write_t *req, int status) {
  wreq_t *w = (wreq_t *)req;
  w->conn->queued -= (uint32_t)w->len;
  (void)status; /* a failed write shows up as a read error or EOF too */
  free(w);
}

int sig_conn_writev(sig_conn_t *c, const sig_conn_buf_t *pieces, unsigned n) {
  if (c->state != SIG_CONN_OPEN) return UV_EPIPE;
  uv_buf_t bufs[8] = {{0}};
  size_t total = 0;
  if (n > SIG_ARRAY_SIZE(bufs)) return UV_EINVAL;
  for (unsigned i = 0; i < n; i++) {
    bufs[i] = uv_buf_init((char *)pieces[i].base, (unsigned)pieces[i].len);
    total += pieces[i].len;
  }
  int w = stream_try_write(c, bufs, n); /* libuv takes nothing while its queue is not empty */
  if (w < 0) {
    doom(c);
    return w;
  }
  if ((size_t)w == total) return 0;
  size_t rest = total - (size_t)w;
  /* One piece larger than the cap may wait alone (max_message_bytes can exceed it); a
   * reader that stops reading is caught by the next write. */
  if (c->queued > 0 && c->queued + rest > c->set->cfg.max_queue_bytes) {
    SIG_WARN("conn", "write queue over %zu bytes: disconnecting slow reader domain=%s peer=%s",
             c->set->cfg.max_queue_bytes, sig_conn_label(c), SIG_CONN_PEER(c));
    doom(c);
    return SIG_ETOOBIG;
  }
  wreq_t *q = sig_malloc(sizeof(*q) + rest);
  q->conn = c;
  q->len = rest;
  size_t skip = (size_t)w, off = 0;
  for (unsigned i = 0; i < n; i++) {
    size_t bl = bufs[i].len;
    if (skip >= bl) {
      skip -= bl;
      continue;
    }
    memcpy(q->data + off, bufs[i].base + skip, bl - skip);
    off += bl - skip;
    skip = 0;
  }
  uv_buf_t b = uv_buf_init(q->data, (unsigned)rest);
  int rc = uv_write(&q->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
  if (rc != 0) {
    free(q);
    doom(c);
    return rc;
  }
  c->queued += (uint32_t)rest;
  return 0;
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

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  sig_conn_t *c = stream->data;
  if (nread < 0) {
    destroy(c);
    return;
  }
  if (nread == 0 || c->state != SIG_CONN_OPEN || c->handler == NULL) return; /* draining: drop */
  stream_read(c, buf->base, (size_t)nread);
}

sig_conn_t *sig_conn_accept(sig_conns_t *s, uv_stream_t *listener) {
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
  rc = uv_accept(listener, (uv_stream_t *)&c->tcp);
  if (rc == 0) rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  if (rc != 0) {
    SIG_WARN("conn", "accept failed error=\"%s\"", sig_strerror(rc));
    destroy(c);
    return NULL;
  }
  uv_tcp_nodelay(&c->tcp, 1); /* best effort: a failure changes only latency */
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

void sig_conn_format_address(const struct sockaddr_storage *ss, char *out, size_t outlen) {
  char ip[64] = "?";
  if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
    uv_ip6_name(a, ip, sizeof(ip));
    snprintf(out, outlen, "[%s]:%d", ip, ntohs(a->sin6_port));
  } else {
    const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
    uv_ip4_name(a, ip, sizeof(ip));
    snprintf(out, outlen, "%s:%d", ip, ntohs(a->sin_port));
  }
}

const char *sig_conn_peer(const sig_conn_t *c, char buf[SIG_CONN_ADDR_MAX]) {
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0) return "-";
  sig_conn_format_address(&ss, buf, SIG_CONN_ADDR_MAX);
  return buf;
}

const char *sig_conn_label(sig_conn_t *c) {
  const char *l = c->handler != NULL && c->handler->label != NULL ? c->handler->label(c) : NULL;
  return l != NULL ? l : "-";
}

/* ---- the set */

sig_conns_t *sig_conns_new(uv_loop_t *loop, const sig_conns_config_t *cfg) {
  sig_conns_t *s = sig_calloc(1, sizeof(*s));
  s->loop = loop;
  s->cfg = *cfg;
  for (int l = 0; l < SIG_DEADLINE_COUNT; l++) sig_list_init(&s->lists[l]);
  sig_list_init(&s->doomed);
  SIG_MUST(uv_timer_init(loop, &s->timer));
  s->timer.data = s;
  SIG_MUST(uv_idle_init(loop, &s->reaper));
  s->reaper.data = s;
  s->handles_open = 2;
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
