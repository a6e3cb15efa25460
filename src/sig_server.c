/* Connections and endpoints. Each connection is in exactly one deadline list
 * (request, keep-alive, ping, pong, closing); every list has one fixed
 * duration, so appending keeps it sorted and one loop-wide timer only looks at
 * list heads. An idle registered WebSocket holds no parser and no buffer:
 * reads land in one loop-wide buffer and are parsed before the callback returns. */
#include "sig_server.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "sig_assets.h"
#include "sig_http.h"
#include "sig_list.h"
#include "sig_log.h"
#include "sig_msg.h"
#include "sig_router.h"
#include "sig_util.h"
#include "sig_ws.h"

#define READ_BUF_SIZE 65536
#define TICK_MS 100
#define CLOSE_LINGER_MS 2000
/* 5,000 pings a second at most: a full server's (~20,000 peers) wave in 4 s. */
#define PINGS_PER_TICK 500
/* TCP connections allowed beyond max_connections, so that refusals can be explained. */
#define CONN_SLACK 64

/* C_DOOMED: a write failed; it is destroyed from the reaper, never from inside the
 * router's loops that sent to it. */
typedef enum { C_HTTP, C_WS, C_CLOSING, C_DRAIN, C_DOOMED, C_CLOSED } conn_state_t;

/* The deadline lists. */
typedef enum { T_REQUEST, T_KEEPALIVE, T_PING, T_PONG, T_LINGER, T_COUNT } tlist_t;

typedef struct conn_s {
  uv_tcp_t tcp;
  sig_server_t *srv;
  sig_list_t tlink;
  uint64_t tstamp; /* when it entered its deadline list */
  sig_http_t *http;
  sig_ws_t *ws;
  sig_router_peer_t *peer;
  uint32_t wq_bytes;
  uint8_t state;
  uint8_t tlist;
  uint8_t head; /* answering a HEAD request: headers only (RFC 9112 6.3) */
} conn_t;

typedef struct {
  uv_write_t req;
  conn_t *conn;
  size_t len;
  char data[];
} wreq_t;

struct sig_server_s {
  uv_loop_t *loop;
  const sig_config_t *cfg;
  uv_tcp_t listener;
  uv_timer_t timer;
  uv_timer_t shutdown_timer;
  uv_idle_t reaper;
  sig_list_t doomed;
  sig_router_t *router;
  sig_list_t lists[T_COUNT];
  uint64_t durations[T_COUNT];
  uint64_t nconns;
  int shutting_down;
  int handles_open;
  void (*done)(void *);
  void *done_arg;
  char address[80];
  char *cors; /* the Access-Control-Allow-Origin header line */
};

static char read_buf[READ_BUF_SIZE];

static void conn_destroy(conn_t *c);
static void conn_finish(conn_t *c);
static void conn_doom(conn_t *c);
static void conn_ws_close(conn_t *c, uint16_t code, const char *reason);
static void process_ws(conn_t *c, const char *buf, size_t len);
static int conn_write(conn_t *c, const char *data, size_t len);
static void respond_error(conn_t *c, int status, const char *extra, const char *msg,
                          int keep_alive);

static void format_address(const struct sockaddr_storage *ss, char *out, size_t outlen);

/* "ip:port" of the remote end, for log lines (computed on demand: nothing stored). */
static const char *peer_str(conn_t *c, char buf[80]) {
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0) return "-";
  format_address(&ss, buf, 80);
  return buf;
}

#define PEER(c) peer_str((c), (char[80]){0})
#define DOMAIN(c) ((c)->peer ? sig_router_peer_domain((c)->peer) : "-")

/* ---- deadlines */

static void set_deadline(conn_t *c, tlist_t l) {
  sig_list_remove(&c->tlink);
  c->tlist = (uint8_t)l;
  c->tstamp = uv_now(c->srv->loop);
  sig_list_append(&c->srv->lists[l], &c->tlink);
}

static void ws_alive(conn_t *c) {
  if (c->tlist == T_PING && c->tstamp == uv_now(c->srv->loop)) return;
  set_deadline(c, T_PING);
}

static void on_deadline(conn_t *c) {
  switch (c->tlist) {
    case T_REQUEST:
      if (c->state == C_HTTP && c->http != NULL && sig_http_in_request(c->http)) {
        char msg[96];
        snprintf(msg, sizeof(msg), "request: not complete within %" PRId64 " s",
                 c->srv->cfg->header_timeout_s);
        SIG_INFO("http", "request timeout peer=%s", PEER(c));
        respond_error(c, 408, NULL, msg, 0);
        conn_finish(c);
      } else {
        conn_destroy(c);
      }
      return;
    case T_KEEPALIVE: conn_destroy(c); return;
    case T_PING: {
      static const char ping[2] = {(char)(0x80 | SIG_WS_OP_PING), 0};
      set_deadline(c, T_PONG);
      conn_write(c, ping, sizeof(ping));
      return;
    }
    case T_PONG:
      SIG_INFO("ws", "ping timeout domain=%s peer=%s", DOMAIN(c), PEER(c));
      conn_ws_close(c, 4408, "ping timeout");
      conn_destroy(c); /* a silent peer will not complete a close handshake */
      return;
    default: conn_destroy(c); return;
  }
}

static void on_tick(uv_timer_t *t) {
  sig_server_t *s = t->data;
  uint64_t now = uv_now(s->loop);
  for (int l = 0; l < T_COUNT; l++) {
    /* Peers that registered together (all of them, after a restart) come due together:
     * pings go out at most PINGS_PER_TICK at a time, so a wave never stalls the loop,
     * and the wave spreads out, since each peer's next deadline counts from its ping. */
    int budget = l == T_PING ? PINGS_PER_TICK : -1;
    while (!sig_list_empty(&s->lists[l]) && budget-- != 0) {
      conn_t *c = SIG_LIST_DATA(s->lists[l].next, conn_t, tlink);
      if (c->tstamp + s->durations[l] > now) break;
      on_deadline(c);
    }
  }
  sig_router_tick(s->router);
}

/* ---- writes */

static void on_write(uv_write_t *req, int status) {
  wreq_t *w = (wreq_t *)req;
  w->conn->wq_bytes -= (uint32_t)w->len;
  (void)status; /* a failed write shows up as a read error or EOF too */
  free(w);
}

/* Writes the buffers in order: straight to the socket when it takes them,
 * otherwise the rest is copied into one queued write. A connection whose queue
 * would pass max_write_queue_bytes is dropped. Returns 0 or negative. */
static int conn_writev(conn_t *c, const uv_buf_t *bufs, unsigned n) {
  if (c->state == C_CLOSED || c->state == C_DRAIN || c->state == C_DOOMED) return UV_EPIPE;
  size_t total = 0;
  for (unsigned i = 0; i < n; i++) total += bufs[i].len;
  int w = uv_try_write((uv_stream_t *)&c->tcp, bufs, n);
  if (w == UV_EAGAIN || w == UV_ENOSYS) w = 0;
  if (w < 0) {
    conn_doom(c);
    return w;
  }
  if ((size_t)w == total) return 0;
  size_t rest = total - (size_t)w;
  /* One frame larger than the cap may wait alone (max_message_bytes can exceed it); a
   * reader that stops reading is caught by the next write. */
  if (c->wq_bytes > 0 && c->wq_bytes + rest > (uint64_t)c->srv->cfg->max_write_queue_bytes) {
    SIG_WARN("conn",
             "write queue over %" PRId64 " bytes: disconnecting slow reader domain=%s peer=%s",
             c->srv->cfg->max_write_queue_bytes, DOMAIN(c), PEER(c));
    conn_doom(c);
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
    conn_doom(c);
    return rc;
  }
  c->wq_bytes += (uint32_t)rest;
  return 0;
}

static int conn_write(conn_t *c, const char *data, size_t len) {
  uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
  return conn_writev(c, &b, 1);
}

static void ws_send_text(conn_t *c, const char *data, size_t len) {
  if (c->state != C_WS) return;
  uint8_t hdr[10];
  uv_buf_t b[2] = {
      uv_buf_init((char *)hdr, (unsigned)sig_ws_frame_header(hdr, SIG_WS_OP_TEXT, len)),
      uv_buf_init((char *)data, (unsigned)len)};
  conn_writev(c, b, 2);
}

/* ---- closing */

static void on_close(uv_handle_t *h) {
  conn_t *c = h->data;
  sig_server_t *s = c->srv;
  free(c);
  s->nconns--;
  if (s->shutting_down && s->nconns == 0 && s->done != NULL) {
    uv_timer_stop(&s->shutdown_timer);
    void (*done)(void *) = s->done;
    s->done = NULL;
    done(s->done_arg);
  }
}

static void release_peer(conn_t *c) {
  if (c->peer == NULL) return;
  SIG_INFO("ws", "unregistered domain=%s peer=%s", DOMAIN(c), PEER(c));
  sig_router_peer_t *p = c->peer;
  c->peer = NULL;
  sig_router_unregister(c->srv->router, p);
}

/* Immediate close: pending writes are dropped. */
static void conn_destroy(conn_t *c) {
  if (c->state == C_CLOSED) return;
  release_peer(c);
  c->state = C_CLOSED;
  sig_list_remove(&c->tlink);
  sig_http_free(c->http);
  c->http = NULL;
  sig_ws_free(c->ws);
  c->ws = NULL;
  uv_close((uv_handle_t *)&c->tcp, on_close);
}

static void on_reap(uv_idle_t *h) {
  sig_server_t *s = h->data;
  while (!sig_list_empty(&s->doomed)) conn_destroy(SIG_LIST_DATA(s->doomed.next, conn_t, tlink));
  uv_idle_stop(h);
}

/* Destroys c soon, from the loop: a failed write must not free the connection
 * under a caller that is iterating over peers or exchanges. */
static void conn_doom(conn_t *c) {
  if (c->state == C_CLOSED || c->state == C_DOOMED) return;
  c->state = C_DOOMED;
  uv_read_stop((uv_stream_t *)&c->tcp);
  sig_list_remove(&c->tlink);
  sig_list_append(&c->srv->doomed, &c->tlink);
  uv_idle_start(&c->srv->reaper, on_reap);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  conn_t *c = req->data;
  free(req);
  if (status != 0 && status != UV_ECANCELED) conn_destroy(c);
}

/* Graceful close: flush what is queued, send FIN, then read and discard until the
 * peer closes too (or CLOSE_LINGER_MS), so that it sees our last words rather
 * than a reset. */
static void conn_finish(conn_t *c) {
  if (c->state == C_CLOSED || c->state == C_DRAIN || c->state == C_DOOMED) return;
  release_peer(c);
  c->state = C_DRAIN;
  sig_http_free(c->http);
  c->http = NULL;
  sig_ws_free(c->ws);
  c->ws = NULL;
  set_deadline(c, T_LINGER);
  uv_shutdown_t *req = sig_malloc(sizeof(*req));
  req->data = c;
  if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
    free(req);
    conn_destroy(c);
  }
}

/* Starts the closing handshake from our side. */
static void conn_ws_close(conn_t *c, uint16_t code, const char *reason) {
  if (c->state != C_WS) return;
  uint8_t frame[127];
  size_t n = sig_ws_close_frame(frame, code, reason);
  conn_write(c, (const char *)frame, n);
  if (c->state != C_WS) return; /* the write failed and closed it */
  release_peer(c);
  c->state = C_CLOSING;
  set_deadline(c, T_LINGER);
}

/* ---- router transport */

static void transport_send(void *conn, const char *data, size_t len) {
  ws_send_text(conn, data, len);
}

static void transport_close(void *conn, uint16_t code, const char *reason) {
  conn_t *c = conn;
  c->peer = NULL; /* the router has already let it go */
  conn_ws_close(c, code, reason);
}

static uint64_t transport_now(void *ctx) {
  return uv_now(ctx);
}

/* ---- HTTP */

static void respond_typed(conn_t *c, int status, const char *extra, const char *type,
                          const char *body, size_t blen, int keep_alive) {
  if (extra == NULL) extra = "";
  size_t hlen = strlen(c->srv->cors) + strlen(extra) + 1;
  char *headers = sig_malloc(hlen);
  snprintf(headers, hlen, "%s%s", c->srv->cors, extra);
  size_t len;
  char *resp =
      sig_http_format_response(status, headers, type, body ? body : "", blen, keep_alive, &len);
  conn_write(c, resp, c->head ? len - blen : len); /* the body comes last */
  free(resp);
  free(headers);
}

static void respond(conn_t *c, int status, const char *extra, const char *body, size_t blen,
                    int keep_alive) {
  respond_typed(c, status, extra, body ? "application/json" : NULL, body, blen, keep_alive);
}

static void respond_error(conn_t *c, int status, const char *extra, const char *msg,
                          int keep_alive) {
  size_t blen;
  char *body = sig_msg_encode_resp_error(msg, &blen);
  respond(c, status, extra, body, blen, keep_alive);
  free(body);
}

typedef struct {
  const char *path;
  int prefix; /* path is a prefix (/ws/) */
  sig_http_method_t method;
  const char *allow;
  /* Returns 1 when the connection was taken over (upgrade) or closed. */
  int (*handle)(conn_t *c, const sig_http_request_t *r, int keep_alive);
} route_t;

static int handle_health(conn_t *c, const sig_http_request_t *r, int keep_alive) {
  (void)r;
  size_t blen;
  sig_router_t *rt = c->srv->router;
  char *body = sig_msg_encode_resp_health(c->srv->nconns, sig_router_domains(rt),
                                          sig_router_exchanges(rt), &blen);
  respond(c, 200, NULL, body, blen, keep_alive);
  free(body);
  return 0;
}

static int handle_offer(conn_t *c, const sig_http_request_t *r, int keep_alive) {
  sig_msg_t m;
  char err[SIG_MSG_ERR_MAX], id[SIG_MSG_ID_MAX + 1];
  int status = sig_msg_decode_offer_body(&m, r->body, r->body_len, err, sizeof(err));
  if (status == 0)
    status = sig_router_offer(c->srv->router, &m, id, err, sizeof(err));
  else
    status = 400;
  sig_msg_free(&m);
  if (status == 200)
    SIG_INFO("http", "POST /offer status=200 id=%s peer=%s", id, PEER(c));
  else
    SIG_INFO("http", "POST /offer status=%d peer=%s msg=\"%s\"", status, PEER(c), err);
  if (status == 200) {
    size_t blen;
    char *body = sig_msg_encode_resp_id(id, &blen);
    respond(c, 200, NULL, body, blen, keep_alive);
    free(body);
  } else {
    respond_error(c, status, NULL, err, keep_alive);
  }
  return 0;
}

static int refuse_upgrade(conn_t *c, int status, const char *extra, const char *msg) {
  SIG_INFO("http", "upgrade refused status=%d peer=%s msg=\"%s\"", status, PEER(c), msg);
  respond_error(c, status, extra, msg, 0);
  conn_finish(c);
  return 1;
}

static int handle_ws(conn_t *c, const sig_http_request_t *r, int keep_alive) {
  (void)keep_alive;
  const char *domain = r->path + 4;
  size_t dlen = r->path_len - 4;
  if (!sig_msg_domain_valid(domain, dlen))
    return refuse_upgrade(c, 400, NULL, "domain: must be 1-128 characters of A-Z a-z 0-9 . _ ~ -");
  if (r->http_major != 1 || r->http_minor < 1)
    return refuse_upgrade(c, 400, NULL, "version: a WebSocket upgrade needs HTTP/1.1");
  if (r->h_upgrade == NULL)
    return refuse_upgrade(c, 426, "Upgrade: websocket\r\n",
                          "upgrade: this endpoint needs a WebSocket upgrade");
  if (!sig_http_has_token(r->h_upgrade, "websocket"))
    return refuse_upgrade(c, 400, NULL, "upgrade: expected websocket");
  if (!sig_http_has_token(r->h_connection, "upgrade"))
    return refuse_upgrade(c, 400, NULL, "connection: expected upgrade");
  if (r->h_ws_version == NULL || strcmp(r->h_ws_version, "13") != 0)
    return refuse_upgrade(c, 426, "Sec-WebSocket-Version: 13\r\n",
                          "sec-websocket-version: only version 13 is supported");
  if (!sig_ws_key_valid(r->h_ws_key))
    return refuse_upgrade(c, 400, NULL, "sec-websocket-key: must be base64 of 16 bytes");
  if (r->has_body) /* what follows the head would be read as WebSocket frames */
    return refuse_upgrade(c, 400, NULL, "body: a WebSocket upgrade has no body");
  if (c->srv->shutting_down) return refuse_upgrade(c, 503, NULL, "server: shutting down");

  char accept[29], resp[256];
  sig_ws_accept_key(r->h_ws_key, accept);
  int n = snprintf(resp, sizeof(resp),
                   "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                   accept);
  if (conn_write(c, resp, (size_t)n) != 0) return 1;
  c->state = C_WS;
  set_deadline(c, T_PING);

  sig_router_peer_t *peer = NULL;
  int refused = sig_router_register(c->srv->router, domain, dlen, c, &peer);
  if (refused != 0) {
    SIG_INFO("ws", "registration refused domain=%.*s code=%d peer=%s", (int)dlen, domain, refused,
             PEER(c));
    conn_ws_close(c, (uint16_t)refused, refused == 4409 ? "domain taken" : "server full");
  } else {
    c->peer = peer;
    SIG_INFO("ws", "registered domain=%s peer=%s", sig_router_peer_domain(peer), PEER(c));
  }
  sig_http_free(c->http); /* domain pointed into it */
  c->http = NULL;
  return 1;
}

static const route_t routes[] = {
    {"/ws/", 1, SIG_HTTP_GET, "GET, OPTIONS", handle_ws},
    {"/offer", 0, SIG_HTTP_POST, "POST, OPTIONS", handle_offer},
    {"/healthz", 0, SIG_HTTP_GET, "GET, HEAD, OPTIONS", handle_health},
};

/* Answers one request. Returns 1 when the connection is no longer reading HTTP. */
static int handle_request(conn_t *c, const sig_http_request_t *r) {
  int keep_alive = r->keep_alive && !r->upgrade && !c->srv->shutting_down;
  c->head = r->method == SIG_HTTP_HEAD;
  if (r->http_major == 1 && r->http_minor >= 1 && r->h_host == NULL) { /* RFC 9112 3.2 */
    SIG_INFO("http", "%s %.200s status=400 peer=%s msg=\"host: required\"", r->method_name, r->path,
             PEER(c));
    respond_error(c, 400, NULL, "host: required", 0);
    conn_finish(c);
    return 1;
  }
  const route_t *route = NULL;
  for (size_t i = 0; i < SIG_ARRAY_SIZE(routes); i++) {
    const route_t *rt = &routes[i];
    if (rt->prefix ? strncmp(r->path, rt->path, strlen(rt->path)) == 0
                   : strcmp(r->path, rt->path) == 0) {
      route = rt;
      break;
    }
  }
  char msg[SIG_MSG_ERR_MAX];
  const sig_asset_t *asset = route ? NULL : sig_assets_find(r->path, r->path_len);
  /* HEAD is GET without the body (respond_typed drops it), except for the upgrade. */
  sig_http_method_t method = r->method;
  if (method == SIG_HTTP_HEAD && !(route != NULL && route->handle == handle_ws))
    method = SIG_HTTP_GET;
  if (asset != NULL && method == SIG_HTTP_GET) {
    respond_typed(c, 200, "Cache-Control: no-cache\r\n", asset->content_type,
                  (const char *)asset->data, asset->len, keep_alive);
  } else if (asset != NULL && r->method != SIG_HTTP_OPTIONS) {
    snprintf(msg, sizeof(msg), "method: %s is not allowed on %.200s", r->method_name, r->path);
    respond_error(c, 405, "Allow: GET, HEAD, OPTIONS\r\n", msg, keep_alive);
  } else if (route == NULL && asset == NULL) {
    snprintf(msg, sizeof(msg), "path: no such endpoint '%.200s'", r->path);
    SIG_INFO("http", "%s %.200s status=404 peer=%s", r->method_name, r->path, PEER(c));
    respond_error(c, 404, NULL, msg, keep_alive);
  } else if (r->method == SIG_HTTP_OPTIONS) { /* on a route or an asset */
    respond(c, 204,
            "Access-Control-Allow-Methods: GET, POST, OPTIONS\r\n"
            "Access-Control-Allow-Headers: Content-Type\r\nAccess-Control-Max-Age: 86400\r\n",
            NULL, 0, keep_alive);
  } else if (method != route->method) {
    char allow[64];
    snprintf(allow, sizeof(allow), "Allow: %s\r\n", route->allow);
    snprintf(msg, sizeof(msg), "method: %s is not allowed on %s", r->method_name,
             route->prefix ? "/ws/{domain}" : route->path);
    SIG_INFO("http", "%s %.200s status=405 peer=%s", r->method_name, r->path, PEER(c));
    respond_error(c, 405, allow, msg, keep_alive);
  } else if (r->upgrade && route->handle != handle_ws) {
    respond_error(c, 400, NULL, "upgrade: not supported on this endpoint", 0);
    keep_alive = 0;
  } else if (route->handle(c, r, keep_alive)) {
    return 1;
  }
  if (c->state != C_HTTP) return 1;
  if (!keep_alive) {
    conn_finish(c);
    return 1;
  }
  set_deadline(c, T_KEEPALIVE);
  return 0;
}

static void process_http(conn_t *c, const char *buf, size_t len) {
  if (c->tlist == T_KEEPALIVE) set_deadline(c, T_REQUEST);
  while (c->state == C_HTTP) {
    size_t used = 0;
    int rc = sig_http_feed(c->http, buf, len, &used);
    if (rc < 0) {
      const char *msg;
      int status = sig_http_error(c->http, &msg);
      SIG_INFO("http", "bad request status=%d peer=%s msg=\"%s\"", status, PEER(c), msg);
      respond_error(c, status, NULL, msg, 0);
      conn_finish(c);
      return;
    }
    buf += used;
    len -= used;
    if (rc == SIG_HTTP_NEED_MORE) {
      if (c->tlist == T_KEEPALIVE && sig_http_in_request(c->http))
        set_deadline(c, T_REQUEST); /* a pipelined request began in this read */
      if (sig_http_take_expect_continue(c->http))
        conn_write(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
      return;
    }
    int upgrade = sig_http_request(c->http)->upgrade;
    if (handle_request(c, sig_http_request(c->http))) {
      if ((c->state == C_WS || c->state == C_CLOSING) && len > 0) process_ws(c, buf, len);
      return;
    }
    if (upgrade || len == 0) return;
  }
}

/* ---- WebSocket */

static void ws_on_text(void *user, const char *msg, size_t len) {
  conn_t *c = user;
  if (c->state != C_WS || c->peer == NULL) return;
  sig_router_on_message(c->srv->router, c->peer, msg, len);
}

static int ws_write(void *user, const char *data, size_t len) {
  conn_t *c = user;
  if (c->state != C_WS) return 0; /* our own close went out already: drop wslay's echo */
  return conn_write(c, data, len) == 0 || c->state == C_WS ? 0 : -1;
}

static const sig_ws_callbacks_t ws_callbacks = {ws_on_text, ws_write};

static void process_ws(conn_t *c, const char *buf, size_t len) {
  if (c->state == C_WS) ws_alive(c);
  if (c->ws == NULL) c->ws = sig_ws_new(&ws_callbacks, c, (uint64_t)c->srv->cfg->max_message_bytes);
  int rc = sig_ws_feed(c->ws, buf, len);
  if (c->state != C_WS && c->state != C_CLOSING) return;
  if (rc < 0) {
    conn_destroy(c);
  } else if (rc == SIG_WS_CLOSED) {
    uint16_t code = sig_ws_close_code(c->ws);
    if (code != 1000 && code != 1001 && code != 1005 && c->state == C_WS)
      SIG_INFO("ws", "closed by server code=%u domain=%s peer=%s", code, DOMAIN(c), PEER(c));
    /* Handshake complete and nothing left to send: close now (RFC 6455 7.1.1, the server
     * closes first). Otherwise flush and linger for the peer's side. */
    if (sig_ws_close_received(c->ws) && c->wq_bytes == 0)
      conn_destroy(c);
    else
      conn_finish(c);
  } else if (sig_ws_idle(c->ws)) {
    sig_ws_free(c->ws);
    c->ws = NULL;
  }
}

/* ---- reading and accepting */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  (void)suggested;
  *buf = uv_buf_init(read_buf, sizeof(read_buf));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  conn_t *c = stream->data;
  if (nread < 0) {
    conn_destroy(c);
    return;
  }
  if (nread == 0) return;
  switch (c->state) {
    case C_HTTP: process_http(c, buf->base, (size_t)nread); return;
    case C_WS:
    case C_CLOSING: process_ws(c, buf->base, (size_t)nread); return;
    default: return; /* draining: discard */
  }
}

static void on_connection(uv_stream_t *server, int status) {
  sig_server_t *s = server->data;
  if (status < 0) {
    SIG_WARN("server", "accept failed error=\"%s\"", sig_strerror(status));
    return;
  }
  conn_t *c = sig_calloc(1, sizeof(*c));
  c->srv = s;
  sig_list_init(&c->tlink);
  uv_tcp_init(s->loop, &c->tcp);
  c->tcp.data = c;
  s->nconns++;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 ||
      s->nconns > (uint64_t)s->cfg->max_connections + CONN_SLACK) {
    c->state = C_CLOSED;
    uv_close((uv_handle_t *)&c->tcp, on_close);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  c->http = sig_http_new((size_t)s->cfg->max_header_bytes, (size_t)s->cfg->max_body_bytes);
  c->state = C_HTTP;
  set_deadline(c, T_REQUEST);
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* ---- lifecycle */

static int resolve(uv_loop_t *loop, const sig_config_t *cfg, struct sockaddr_storage *ss, char *err,
                   size_t errlen) {
  uv_getaddrinfo_t req;
  struct addrinfo hints;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  char port[8];
  snprintf(port, sizeof(port), "%d", cfg->host_port);
  int rc = uv_getaddrinfo(loop, &req, NULL, cfg->host_addr, port, &hints);
  if (rc != 0) {
    snprintf(err, errlen, "%s%sserver.host: cannot resolve %s: %s", cfg->path ? cfg->path : "",
             cfg->path ? ": " : "", cfg->host, uv_strerror(rc));
    return rc;
  }
  memcpy(ss, req.addrinfo->ai_addr, req.addrinfo->ai_addrlen);
  uv_freeaddrinfo(req.addrinfo);
  return 0;
}

static void format_address(const struct sockaddr_storage *ss, char *out, size_t outlen) {
  char ip[64] = "?";
  int port = 0;
  if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
    uv_ip6_name(a, ip, sizeof(ip));
    port = ntohs(a->sin6_port);
    snprintf(out, outlen, "[%s]:%d", ip, port);
  } else {
    const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
    uv_ip4_name(a, ip, sizeof(ip));
    port = ntohs(a->sin_port);
    snprintf(out, outlen, "%s:%d", ip, port);
  }
}

int sig_server_start(sig_server_t **out, uv_loop_t *loop, const sig_config_t *cfg, char *err,
                     size_t errlen) {
  struct sockaddr_storage ss;
  int rc = resolve(loop, cfg, &ss, err, errlen);
  if (rc != 0) return rc;

  sig_server_t *s = sig_calloc(1, sizeof(*s));
  s->loop = loop;
  s->cfg = cfg;
  size_t cors_len = strlen(cfg->cors_origin) + 32;
  s->cors = sig_malloc(cors_len);
  snprintf(s->cors, cors_len, "Access-Control-Allow-Origin: %s\r\n", cfg->cors_origin);
  for (int l = 0; l < T_COUNT; l++) sig_list_init(&s->lists[l]);
  s->durations[T_REQUEST] = (uint64_t)cfg->header_timeout_s * 1000;
  s->durations[T_KEEPALIVE] = (uint64_t)cfg->keepalive_timeout_s * 1000;
  s->durations[T_PING] = (uint64_t)cfg->ping_interval_s * 1000;
  s->durations[T_PONG] = (uint64_t)cfg->pong_timeout_s * 1000;
  s->durations[T_LINGER] = CLOSE_LINGER_MS;

  uv_tcp_init(loop, &s->listener);
  s->listener.data = s;
  rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&ss, 0);
  if (rc == 0) rc = uv_listen((uv_stream_t *)&s->listener, 511, on_connection);
  if (rc != 0) {
    /* libuv's codes are negated errnos here: strerror gives the OS's own words. */
    snprintf(err, errlen, "%s%sserver.host: cannot listen on %s: %s", cfg->path ? cfg->path : "",
             cfg->path ? ": " : "", cfg->host, strerror(-rc));
    uv_close((uv_handle_t *)&s->listener, NULL);
    uv_run(loop, UV_RUN_NOWAIT); /* let the close finish before freeing */
    free(s->cors);
    free(s);
    return rc;
  }
  int namelen = sizeof(ss);
  uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &namelen);
  format_address(&ss, s->address, sizeof(s->address));

  sig_router_transport_t t = {transport_send, transport_close, transport_now, loop};
  sig_router_limits_t l = {
      .reject_duplicates = cfg->duplicate == SIG_DUP_REJECT,
      .max_domains = (uint64_t)cfg->max_connections,
      .max_pending_offers = (uint32_t)cfg->max_pending_offers,
      .max_exchanges_per_peer = (uint32_t)cfg->max_exchanges_per_peer,
      .answer_timeout_ms = (uint64_t)cfg->answer_timeout_s * 1000,
  };
  s->router = sig_router_new(&t, &l);
  s->handles_open = 4; /* listener, two timers, reaper */
  uv_timer_init(loop, &s->timer);
  s->timer.data = s;
  uv_timer_start(&s->timer, on_tick, TICK_MS, TICK_MS);
  uv_timer_init(loop, &s->shutdown_timer);
  s->shutdown_timer.data = s;
  uv_idle_init(loop, &s->reaper);
  s->reaper.data = s;
  sig_list_init(&s->doomed);
  *out = s;
  return 0;
}

const char *sig_server_address(const sig_server_t *s) {
  return s->address;
}

/* The server's own handles live inside it: it is freed when the last one is closed. */
static void on_handle_closed(uv_handle_t *h) {
  sig_server_t *s = h->data;
  if (--s->handles_open == 0) {
    free(s->cors);
    free(s);
  }
}

static void on_shutdown_timeout(uv_timer_t *t) {
  sig_server_t *s = t->data;
  SIG_WARN("server", "shutdown timeout: cutting %" PRIu64 " connections", s->nconns);
  for (int l = 0; l < T_COUNT; l++) {
    while (!sig_list_empty(&s->lists[l]))
      conn_destroy(SIG_LIST_DATA(s->lists[l].next, conn_t, tlink));
  }
  on_reap(&s->reaper);
}

void sig_server_shutdown(sig_server_t *s, void (*done)(void *arg), void *arg) {
  if (s->shutting_down) return;
  s->shutting_down = 1;
  s->done = done;
  s->done_arg = arg;
  SIG_INFO("server", "shutting down connections=%" PRIu64 " domains=%" PRIu64, s->nconns,
           sig_router_domains(s->router));
  sig_router_shutdown(s->router);
  uv_close((uv_handle_t *)&s->listener, on_handle_closed);
  uv_timer_start(&s->shutdown_timer, on_shutdown_timeout,
                 (uint64_t)s->cfg->shutdown_timeout_s * 1000, 0);
  for (int l = 0; l < T_COUNT; l++) {
    sig_list_t *it, *tmp;
    SIG_LIST_FOREACH_SAFE(it, tmp, &s->lists[l]) {
      conn_t *c = SIG_LIST_DATA(it, conn_t, tlink);
      if (c->state == C_WS)
        conn_ws_close(c, 1001, "server shutting down");
      else if (c->state == C_HTTP && !sig_http_in_request(c->http))
        conn_destroy(c);
    }
  }
  if (s->nconns == 0) {
    uv_timer_stop(&s->shutdown_timer);
    s->done = NULL;
    done(arg);
  }
}

void sig_server_free(sig_server_t *s) {
  if (s == NULL) return;
  sig_router_free(s->router);
  s->router = NULL;
  if (!s->shutting_down) uv_close((uv_handle_t *)&s->listener, on_handle_closed);
  uv_close((uv_handle_t *)&s->timer, on_handle_closed);
  uv_close((uv_handle_t *)&s->shutdown_timer, on_handle_closed);
  uv_close((uv_handle_t *)&s->reaper, on_handle_closed);
}
