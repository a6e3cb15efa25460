/* WebSocket sessions. A session holds no parser while idle: one is made when a
 * frame starts and freed when no frame or message is in flight. Closing from our
 * side (a policy, a shutdown, a ping timeout) sends the close frame, lets the
 * router forget the peer at once, and lingers for the peer's close. */
#include "sig_session.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

#include "sig_limits.h"
#include "sig_log.h"
#include "sig_metrics.h"
#include "sig_msg.h"
#include "sig_proto.h"
#include "sig_util.h"
#include "sig_ws.h"

typedef struct {
  sig_conn_t *conn;
  const sig_sessions_t *env;
  sig_ws_t *ws;            /* while a frame or message is in flight */
  sig_router_peer_t *peer; /* while registered */
  sig_router_wait_t *wait; /* while the cluster decides on the registration */
  uint8_t closing;         /* our close frame went out */
  uint8_t completed;       /* a message completed during the current feed */
  uint32_t refused;        /* messages refused in a row for the message rate */
  sig_bucket_t rate;
} session_t;

static const char *label(sig_conn_t *c) {
  session_t *s = sig_conn_data(c);
  return s->peer != NULL ? sig_router_peer_domain(s->peer) : NULL;
}

static void release_peer(session_t *s) {
  if (s->peer == NULL) return;
  sig_router_peer_t *p = s->peer;
  SIG_EVENT(SIG_LOG_INFO, "ws", SIG_CONN_IP(s->conn), "unregistered",
            SIG_KV("domain", sig_router_peer_domain(p)), SIG_KV("peer", SIG_CONN_PEER(s->conn)));
  s->peer = NULL;
  sig_router_unregister(s->env->router, p);
}

/* Starts the closing handshake from our side. */
static void session_close(session_t *s, uint16_t code, const char *reason) {
  if (s->closing || sig_conn_state(s->conn) != SIG_CONN_OPEN) return;
  uint8_t frame[127];
  size_t n = sig_ws_close_frame(frame, code, reason);
  sig_metrics_close(code, 1);
  if (sig_conn_write(s->conn, frame, n) != 0) return; /* doomed: on_close releases the peer */
  release_peer(s);
  s->closing = 1;
  sig_conn_set_deadline(s->conn, SIG_DEADLINE_LINGER);
}

static void send_text(session_t *s, const char *data, size_t len) {
  if (s->closing) return;
  uint8_t hdr[10];
  sig_conn_buf_t b[2] = {{hdr, sig_ws_frame_header(hdr, SIG_WS_OP_TEXT, len)}, {data, len}};
  sig_conn_writev(s->conn, b, 2); /* a failure dooms the connection: nothing more to do here */
}

/* ---- the parser's callbacks */

/* A message past the connection's rate: an error frame, and the end for one that keeps on. */
static void refuse_rate(session_t *s) {
  char text[96];
  size_t len;
  if (++s->refused > s->env->messages_burst) {
    SIG_EVENT(SIG_LOG_INFO, "ws", SIG_CONN_IP(s->conn), "message rate: closing",
              SIG_KV("domain", sig_conn_label(s->conn)), SIG_KV("peer", SIG_CONN_PEER(s->conn)));
    session_close(s, SIG_CLOSE_POLICY, "message rate");
    return;
  }
  snprintf(text, sizeof(text), "messages: more than %" PRIu32 " a second", s->env->messages_per_s);
  SIG_EVENT(SIG_LOG_INFO, "ws", SIG_CONN_IP(s->conn), "message refused: rate",
            SIG_KV("domain", sig_conn_label(s->conn)), SIG_KV("peer", SIG_CONN_PEER(s->conn)));
  char *frame = sig_msg_encode_error(SIG_STATUS_TOO_MANY, text, NULL, &len);
  send_text(s, frame, len);
  free(frame);
}

static int ws_on_text(void *user, const char *msg, size_t len) {
  session_t *s = user;
  s->completed = 1;
  if (!s->closing && s->peer != NULL) {
    if (!sig_bucket_take(&s->rate, sig_now_ms(), s->env->messages_per_s, s->env->messages_burst,
                         NULL)) {
      refuse_rate(s);
    } else {
      s->refused = 0;
      sig_router_on_message(s->env->router, s->peer, msg, len);
    }
  }
  return !sig_conn_spend(s->conn); /* the turn's budget is spent: the rest waits */
}

static int ws_write(void *user, const char *data, size_t len) {
  session_t *s = user;
  if (s->closing) return 0; /* our own close went out already: drop the parser's echo */
  return sig_conn_write(s->conn, data, len) == 0 ? 0 : -1;
}

static const sig_ws_callbacks_t ws_callbacks = {ws_on_text, ws_write};

/* ---- the connection's handler */

static size_t on_data(sig_conn_t *c, const char *buf, size_t len) {
  session_t *s = sig_conn_data(c);
  size_t used = 0;
  if (s->ws == NULL) s->ws = sig_ws_new(&ws_callbacks, s, s->env->max_message_bytes);
  int was_idle = sig_ws_idle(s->ws);
  uint64_t frames = sig_ws_frames(s->ws);
  s->completed = 0;
  int rc = sig_ws_feed(s->ws, buf, len, &used);
  if (sig_conn_state(c) != SIG_CONN_OPEN) return len; /* a write failed: the session is gone */
  if (rc < 0) {
    sig_conn_close(c, SIG_CONN_NOW);
    return len;
  }
  if (rc == SIG_WS_CLOSED) {
    uint16_t code = sig_ws_close_code(s->ws);
    if (!s->closing) sig_metrics_close(code, 0); /* the peer began it */
    if (code != SIG_CLOSE_NORMAL && code != SIG_CLOSE_GOING_AWAY && code != SIG_CLOSE_NO_STATUS &&
        !s->closing)
      SIG_EVENT(SIG_LOG_INFO, "ws", SIG_CONN_IP(c), "closed by server", SIG_KVI("code", code),
                SIG_KV("domain", sig_conn_label(c)), SIG_KV("peer", SIG_CONN_PEER(c)));
    /* Handshake complete and nothing left to send: close now (RFC 6455 7.1.1, the server
     * closes first). Otherwise flush and linger for the peer's side. */
    if (sig_ws_close_received(s->ws) && sig_conn_queued(c) == 0)
      sig_conn_close(c, SIG_CONN_NOW);
    else
      sig_conn_close(c, SIG_CONN_FLUSH);
    return len;
  }
  /* Only a whole frame is a sign of life. A message that begins must end in time: its clock
   * starts when it begins (after the last one completed), and neither its fragments nor
   * control frames between them wind it back. */
  if (!s->closing) {
    if (!sig_ws_idle(s->ws)) {
      if (was_idle || s->completed) sig_conn_set_deadline(c, SIG_DEADLINE_MESSAGE);
    } else if (sig_ws_frames(s->ws) != frames) {
      sig_conn_set_deadline(c, SIG_DEADLINE_PING);
    }
  }
  if (sig_ws_idle(s->ws)) {
    sig_ws_free(s->ws);
    s->ws = NULL;
  }
  return used;
}

static void on_deadline(sig_conn_t *c, sig_deadline_t d) {
  session_t *s = sig_conn_data(c);
  if (d == SIG_DEADLINE_PING) {
    uint8_t ping[10];
    sig_conn_set_deadline(c, SIG_DEADLINE_PONG);
    sig_conn_write(c, ping, sig_ws_frame_header(ping, SIG_WS_OP_PING, 0));
  } else if (d == SIG_DEADLINE_PONG) {
    SIG_EVENT(SIG_LOG_INFO, "ws", SIG_CONN_IP(c), "ping timeout",
              SIG_KV("domain", sig_conn_label(c)), SIG_KV("peer", SIG_CONN_PEER(c)));
    session_close(s, SIG_CLOSE_PING_TIMEOUT, "ping timeout");
    sig_conn_close(c, SIG_CONN_NOW); /* a silent peer will not complete a close handshake */
  } else if (d == SIG_DEADLINE_MESSAGE) {
    SIG_EVENT(SIG_LOG_INFO, "ws", SIG_CONN_IP(c), "message timeout",
              SIG_KV("domain", sig_conn_label(c)), SIG_KV("peer", SIG_CONN_PEER(c)));
    session_close(s, SIG_CLOSE_POLICY, "message timeout");
    sig_conn_close(c, SIG_CONN_NOW); /* its frame is still open: it cannot read ours properly */
  } else {
    sig_conn_close(c, SIG_CONN_NOW);
  }
}

static void on_close(sig_conn_t *c) {
  session_t *s = sig_conn_data(c);
  sig_router_cancel(s->wait);
  release_peer(s);
  sig_ws_free(s->ws);
  free(s);
}

static void on_shutdown(sig_conn_t *c) {
  session_close(sig_conn_data(c), SIG_CLOSE_GOING_AWAY, "server shutting down");
}

static const sig_conn_handler_t handler = {on_data, on_deadline, on_close, on_shutdown, label};

static void registered(session_t *s, const char *domain, size_t len, const sig_refusal_t *why) {
  sig_conn_t *c = s->conn;
  if (why != NULL) {
    SIG_EVENT(SIG_LOG_INFO, "ws", SIG_CONN_IP(c), "registration refused",
              SIG_KVN("domain", domain, len), SIG_KVI("code", why->code),
              SIG_KV("peer", SIG_CONN_PEER(c)));
    session_close(s, (uint16_t)why->code, why->msg);
  } else {
    sig_metrics_inc(SIG_M_REGISTERED);
    SIG_EVENT(SIG_LOG_INFO, "ws", SIG_CONN_IP(c), "registered",
              SIG_KV("domain", sig_router_peer_domain(s->peer)), SIG_KV("peer", SIG_CONN_PEER(c)));
  }
}

/* The cluster decided: the session goes on (or closes), and reads what arrived meanwhile. */
static void on_registered(void *arg, sig_router_peer_t *p, const sig_refusal_t *why) {
  session_t *s = arg;
  s->wait = NULL;
  if (p != NULL && s->closing) { /* a shutdown closed it meanwhile */
    sig_router_unregister(s->env->router, p);
  } else {
    s->peer = p;
    registered(s, p != NULL ? sig_router_peer_domain(p) : "", 0, why);
  }
  sig_conn_resume(s->conn);
}

size_t sig_session_start(sig_conn_t *c, const sig_sessions_t *env, const char *domain, size_t len,
                         sig_acl_t *calls, const sig_refusal_t *refused, const char *rest,
                         size_t rest_len) {
  session_t *s = sig_calloc(1, sizeof(*s));
  sig_refusal_t why;
  s->conn = c;
  s->env = env;
  sig_conn_set_handler(c, &handler, s);
  sig_conn_set_deadline(c, SIG_DEADLINE_PING);
  int rc;
  if (refused != NULL) {
    why = *refused;
    sig_acl_free(calls);
    rc = SIG_EREFUSED;
  } else {
    rc = sig_router_register_async(env->router, domain, len, s, calls, &s->peer, &why,
                                   on_registered, s, &s->wait);
  }
  if (rc == SIG_EINPROGRESS) { /* frames wait until the cluster has decided */
    sig_conn_pause(c);
    return 0;
  }
  registered(s, domain, len, rc == 0 ? NULL : &why);
  if (rest_len == 0 || sig_conn_state(c) != SIG_CONN_OPEN) return rest_len;
  return on_data(c, rest, rest_len);
}

/* ---- the router's transport */

static void transport_send(void *conn, const char *data, size_t len) {
  send_text(conn, data, len);
}

static void transport_close(void *conn, uint16_t code, const char *reason) {
  session_t *s = conn;
  s->peer = NULL; /* the router has already let it go */
  session_close(s, code, reason);
}

static uint64_t transport_now(void *ctx) {
  return uv_now(ctx);
}

_Static_assert(SIG_ROUTER_ADDR_MAX >= SIG_CONN_ADDR_MAX, "room for sig_conn_peer");

static const char *transport_address(void *conn, char buf[SIG_ROUTER_ADDR_MAX]) {
  session_t *s = conn;
  return sig_conn_peer(s->conn, buf);
}

sig_router_transport_t sig_sessions_transport(uv_loop_t *loop) {
  sig_router_transport_t t = {transport_send, transport_close, transport_now, loop,
                              transport_address};
  return t;
}
