/* HTTP requests on a connection, one at a time, answered from the route table.
 * The stage holds the parser for as long as the connection speaks HTTP; HEAD is
 * GET without the body everywhere but the upgrade. */
#include "sig_endpoints.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "sig_acl.h"
#include "sig_assets.h"
#include "sig_auth.h"
#include "sig_http.h"
#include "sig_log.h"
#include "sig_metrics.h"
#include "sig_msg.h"
#include "sig_proto.h"
#include "sig_text.h"
#include "sig_util.h"
#include "sig_ws.h"

typedef struct {
  sig_http_t *http; /* made when the first byte arrives */
  sig_endpoints_t *ep;
  uint8_t head;            /* answering a HEAD request: headers only (RFC 9112 6.3) */
  uint8_t upgraded;        /* the 101 went out: a session takes the connection over */
  uint8_t proxied;         /* the socket's peer is a trusted proxy */
  uint8_t over_limit;      /* its address held max_connections_per_ip already */
  sig_refusal_t *auth_why; /* the upgrade's token was refused: the session closes with this */
  sig_acl_t *grant;        /* the upgrade's token's `calls`, until the session takes it */
  const char *origin;      /* the request's Origin header (for CORS), during the request */
  sig_router_wait_t *wait; /* a POST /offer that waits for the cluster */
  uint8_t wait_keep_alive;
} stage_t;

/* handle_request's answer: the request was answered (0), the connection was taken over or is
 * closing (1), or the answer comes later (WAITING: reading pauses until then). */
enum { WAITING = 2 };

/* Returns 1 when the connection was taken over (upgrade) or is closing. */
typedef int (*endpoint_fn)(sig_conn_t *c, const sig_http_request_t *r, int keep_alive);

/* What a route does with a request that asks for an upgrade. */
typedef enum { UPGRADE_REFUSE, UPGRADE_TAKE, UPGRADE_IGNORE } upgrade_t;

typedef struct {
  const char *path;
  int prefix; /* path is a prefix (/ws/) */
  sig_http_method_t method;
  const char *allow;
  const char *name; /* in messages; NULL: the request's path */
  upgrade_t upgrade;
  endpoint_fn handle;
} route_t;

static const sig_conn_handler_t handler;

/* ---- responses */

/* The origin a response names in Access-Control-Allow-Origin, or NULL: "*" when any is
 * allowed; the only allowed one (always, as cors_origin always did); else the request's
 * Origin when it is allowed. */
static const char *cors_origin(const sig_endpoints_t *ep, const char *origin) {
  if (ep->any_origin) return "*";
  if (ep->norigins == 1 && strchr(ep->origins[0], '*') == NULL) return ep->origins[0];
  return origin != NULL && sig_endpoints_origin_allowed(ep, origin) ? origin : NULL;
}

static void send_response(sig_conn_t *c, sig_http_response_t *resp) {
  stage_t *st = sig_conn_data(c);
  size_t len;
  resp->cors_origin = cors_origin(st->ep, st->origin);
  resp->vary_origin = !st->ep->any_origin;
  resp->preflight_auth = sig_auth_required(st->ep->auth);
  resp->head = st->head;
  char *out = sig_http_format(resp, &len);
  sig_conn_write(c, out, len);
  free(out);
}

static void respond_json(sig_conn_t *c, int status, char *body, size_t len, int keep_alive) {
  sig_http_response_t resp = {.status = status,
                              .content_type = "application/json",
                              .body = body,
                              .body_len = len,
                              .keep_alive = keep_alive};
  send_response(c, &resp);
  free(body);
}

/* A Resp error body; hint is a header to add, or NULL. */
static void respond_error(sig_conn_t *c, int status, const char *msg, int keep_alive,
                          const sig_http_header_t *hint) {
  size_t len;
  char *body = sig_msg_encode_resp_error(msg, &len);
  sig_metrics_error(status);
  sig_http_response_t resp = {.status = status,
                              .content_type = "application/json",
                              .body = body,
                              .body_len = len,
                              .keep_alive = keep_alive};
  if (hint != NULL) resp.extra[0] = *hint;
  send_response(c, &resp);
  free(body);
}

/* Refuses with a Resp body, logged; keeps the connection when keep_alive. */
static void refuse_request(sig_conn_t *c, const sig_http_request_t *r, int status, const char *msg,
                           int keep_alive, const sig_http_header_t *hint) {
  SIG_EVENT(SIG_LOG_INFO, "http", SIG_CONN_IP(c), "request refused",
            SIG_KV("method", r->method_name),
            SIG_KVN("path", r->path, r->path_len < 200 ? r->path_len : 200),
            SIG_KVI("status", status), SIG_KV("peer", SIG_CONN_PEER(c)), SIG_KV("msg", msg));
  respond_error(c, status, msg, keep_alive, hint);
}

/* ---- endpoints */

static int handle_health(sig_conn_t *c, const sig_http_request_t *r, int keep_alive) {
  stage_t *st = sig_conn_data(c);
  size_t len;
  (void)r;
  char *body =
      sig_msg_encode_resp_health(sig_conns_count(st->ep->conns), sig_router_domains(st->ep->router),
                                 sig_router_exchanges(st->ep->router), &len);
  respond_json(c, SIG_STATUS_OK, body, len, keep_alive);
  return 0;
}

/* GET /metrics (on the metrics listener only): the Prometheus text exposition. */
static int handle_metrics(sig_conn_t *c, const sig_http_request_t *r, int keep_alive) {
  stage_t *st = sig_conn_data(c);
  sig_metrics_gauges_t g = {0};
  size_t len;
  (void)r;
  if (st->ep->gauges != NULL) st->ep->gauges(st->ep->gauges_arg, &g);
  char *body = sig_metrics_render(&g, &len);
  sig_http_response_t resp = {.status = SIG_STATUS_OK,
                              .content_type = "text/plain; version=0.0.4; charset=utf-8",
                              .body = body,
                              .body_len = len,
                              .keep_alive = keep_alive};
  send_response(c, &resp);
  free(body);
  return 0;
}

/* GET /readyz: 200 while the server should get traffic; 503 with the reason while it drains or
 * its cluster's Redis is away (a load balancer takes it out; /healthz stays 200). */
static int handle_ready(sig_conn_t *c, const sig_http_request_t *r, int keep_alive) {
  stage_t *st = sig_conn_data(c);
  (void)r;
  const char *why = st->ep->not_ready != NULL ? st->ep->not_ready(st->ep->ready_arg) : NULL;
  if (why != NULL) {
    respond_error(c, SIG_STATUS_UNAVAILABLE, why, keep_alive, NULL);
    return 0;
  }
  static const char ok[] = "{\"code\":0,\"msg\":\"ready\",\"data\":null}";
  respond_json(c, SIG_STATUS_OK, sig_strdup(ok), sizeof(ok) - 1, keep_alive);
  return 0;
}

/* The request's bearer token (RFC 6750): "Authorization: Bearer …", else the access_token
 * query parameter (for browsers, which cannot set headers on a WebSocket). Copies it into buf
 * (cap bytes); returns its length, 0 when there is none. One too long to be a token gives a
 * length past SIG_AUTH_TOKEN_MAX, which the verification refuses. */
static size_t request_token(const sig_http_request_t *r, char *buf, size_t cap) {
  const char *h = r->h_authorization;
  if (h != NULL && strncasecmp(h, "bearer ", 7) == 0) {
    h += 7;
    while (*h == ' ' || *h == '\t') h++;
    size_t n = strlen(h);
    while (n > 0 && (h[n - 1] == ' ' || h[n - 1] == '\t')) n--;
    if (n >= cap) return cap;
    memcpy(buf, h, n);
    buf[n] = '\0';
    return n;
  }
  long n = sig_http_query_param(r->query, "access_token", buf, cap);
  return n == -1 ? 0 : n < 0 ? cap : (size_t)n; /* a malformed one is no token of ours */
}

/* Verifies the request's token: SIG_AUTH_OK with claims, or the refusal. */
static sig_auth_result_t authorize(sig_conn_t *c, const sig_http_request_t *r,
                                   sig_auth_claims_t *claims) {
  stage_t *st = sig_conn_data(c);
  char token[SIG_AUTH_TOKEN_MAX + 2];
  size_t n = request_token(r, token, sizeof(token));
  return sig_auth_verify(st->ep->auth, token, n, (int64_t)time(NULL), claims);
}

/* 401 for POST /offer, with WWW-Authenticate as RFC 6750 3 says. */
static void refuse_unauthorized(sig_conn_t *c, const sig_http_request_t *r, sig_auth_result_t res,
                                int keep_alive) {
  char msg[64];
  sig_http_header_t hint = {"WWW-Authenticate", "Bearer realm=\"signal-server\""};
  if (res == SIG_AUTH_EXPIRED)
    hint.value =
        "Bearer realm=\"signal-server\", error=\"invalid_token\", "
        "error_description=\"token expired\"";
  else if (res == SIG_AUTH_INVALID)
    hint.value = "Bearer realm=\"signal-server\", error=\"invalid_token\"";
  snprintf(msg, sizeof(msg), "authorization: %s", sig_auth_reason(res));
  refuse_request(c, r, SIG_STATUS_UNAUTHORIZED, msg, keep_alive, &hint);
}

/* The Resp to POST /offer. */
static void answer_offer(sig_conn_t *c, int status, const char *msg, const char *id,
                         int keep_alive) {
  if (status != SIG_STATUS_OK) {
    SIG_EVENT(SIG_LOG_INFO, "http", SIG_CONN_IP(c), "POST /offer", SIG_KVI("status", status),
              SIG_KV("peer", SIG_CONN_PEER(c)), SIG_KV("msg", msg));
    respond_error(c, status, msg, keep_alive, NULL);
    return;
  }
  SIG_EVENT(SIG_LOG_INFO, "http", SIG_CONN_IP(c), "POST /offer", SIG_KVI("status", SIG_STATUS_OK),
            SIG_KV("id", id), SIG_KV("peer", SIG_CONN_PEER(c)));
  size_t len;
  char *body = sig_msg_encode_resp_id(id, &len);
  respond_json(c, SIG_STATUS_OK, body, len, keep_alive);
}

static int finish_request(sig_conn_t *c, int keep_alive);

/* The cluster answered a POST /offer: the response goes out, and the connection reads on. */
static void on_offered(void *arg, int status, const char *msg, const char *id) {
  sig_conn_t *c = arg;
  stage_t *st = sig_conn_data(c);
  st->wait = NULL;
  answer_offer(c, status, msg, id, st->wait_keep_alive);
  st->origin = NULL;
  if (finish_request(c, st->wait_keep_alive) == 0) sig_conn_resume(c);
}

static int handle_offer(sig_conn_t *c, const sig_http_request_t *r, int keep_alive) {
  stage_t *st = sig_conn_data(c);
  sig_msg_t m;
  sig_refusal_t why = {SIG_STATUS_BAD_REQUEST, ""};
  sig_auth_claims_t claims = {.calls = NULL};
  char id[SIG_MSG_ID_MAX + 1];
  if (sig_auth_required(st->ep->auth)) {
    sig_auth_result_t res = authorize(c, r, &claims);
    if (res != SIG_AUTH_OK) {
      refuse_unauthorized(c, r, res, keep_alive);
      return 0;
    }
  }
  int rc = sig_msg_decode_offer_body(&m, r->body, r->body_len, why.msg, sizeof(why.msg));
  if (rc == 0 && sig_auth_required(st->ep->auth)) {
    if (strcmp(claims.sub, m.offer_domain) != 0)
      rc = sig_refuse(&why, SIG_STATUS_FORBIDDEN,
                      "authorization: token is not for offer_domain '%s'", m.offer_domain);
    else if (!sig_acl_allows(claims.calls, m.answer_domain))
      rc = sig_refuse(&why, SIG_STATUS_FORBIDDEN,
                      "answer_domain: your token does not allow calling '%s'", m.answer_domain);
  }
  sig_acl_free(claims.calls);
  if (rc == 0)
    rc = sig_router_offer_async(st->ep->router, &m, r->body, r->body_len, id, &why, on_offered, c,
                                &st->wait);
  sig_msg_free(&m);
  if (rc == SIG_EINPROGRESS) {
    st->wait_keep_alive = (uint8_t)keep_alive;
    return WAITING;
  }
  answer_offer(c, rc == 0 ? SIG_STATUS_OK : why.code, why.msg, id, keep_alive);
  return 0;
}

/* GET /turn-credentials: TURN REST credentials for the caller's domain (docs/PROTOCOL.md). With
 * auth the domain is the token's sub; without, ?domain= names it and a bucket per address of its
 * own bounds how fast one address mints them (charged only for what would be minted: refusals
 * are the server-wide bucket's). With auth the token is the bound: an address that many people
 * share (carrier NAT, an office) would otherwise lose TURN to whoever sends the most. */
static int handle_turn(sig_conn_t *c, const sig_http_request_t *r, int keep_alive) {
  stage_t *st = sig_conn_data(c);
  const sig_config_t *cfg = st->ep->cfg;
  char domain[SIG_MSG_DOMAIN_MAX + 2], msg[SIG_REFUSAL_MAX], retry[16];
  uint32_t retry_s;
  if (st->ep->turn == NULL) {
    refuse_request(c, r, SIG_STATUS_NOT_FOUND, "turn: not configured", keep_alive, NULL);
    return 0;
  }
  long dlen = sig_http_query_param(r->query, "domain", domain, sizeof(domain));
  if (dlen != -1 && !(dlen > 0 && sig_msg_domain_valid(domain, (size_t)dlen))) {
    snprintf(msg, sizeof(msg), "domain: must be 1-%d characters of A-Z a-z 0-9 . _ ~ -",
             SIG_MSG_DOMAIN_MAX);
    refuse_request(c, r, SIG_STATUS_BAD_REQUEST, msg, keep_alive, NULL);
    return 0;
  }
  if (sig_auth_required(st->ep->auth)) {
    sig_auth_claims_t claims = {.calls = NULL};
    sig_auth_result_t res = authorize(c, r, &claims);
    if (res != SIG_AUTH_OK) {
      refuse_unauthorized(c, r, res, keep_alive);
      return 0;
    }
    sig_acl_free(claims.calls);
    if (dlen != -1 && strcmp(domain, claims.sub) != 0) {
      snprintf(msg, sizeof(msg), "domain: your token is not for '%s'", domain);
      refuse_request(c, r, SIG_STATUS_FORBIDDEN, msg, keep_alive, NULL);
      return 0;
    }
    snprintf(domain, sizeof(domain), "%s", claims.sub);
  } else if (dlen == -1) {
    refuse_request(c, r, SIG_STATUS_BAD_REQUEST, "domain: required (?domain=NAME)", keep_alive,
                   NULL);
    return 0;
  } else if (sig_limits_request(st->ep->turn_limits, sig_conn_client(c), sig_now_ms(), &retry_s) !=
             0) {
    sig_http_header_t hint = {"Retry-After", retry};
    snprintf(retry, sizeof(retry), "%" PRIu32, retry_s);
    snprintf(msg, sizeof(msg),
             "turn: more than %" PRId64
             " credentials a second from your address; retry after %" PRIu32 " s",
             cfg->turn_requests_per_ip_per_s, retry_s);
    refuse_request(c, r, SIG_STATUS_TOO_MANY, msg, keep_alive, &hint);
    return 0;
  }
  size_t len;
  char *body = sig_turn_encode(st->ep->turn, domain, (int64_t)time(NULL), &len);
  SIG_EVENT(SIG_LOG_INFO, "http", SIG_CONN_IP(c), "GET /turn-credentials",
            SIG_KVI("status", SIG_STATUS_OK), SIG_KV("domain", domain),
            SIG_KV("peer", SIG_CONN_PEER(c)));
  sig_http_response_t resp = {.status = SIG_STATUS_OK,
                              .content_type = "application/json",
                              .body = body,
                              .body_len = len,
                              .keep_alive = keep_alive,
                              .extra = {{"Cache-Control", "no-store"}}};
  send_response(c, &resp);
  memset(body, 0, len); /* it holds a credential */
  free(body);
  return 0;
}

static int refuse_upgrade(sig_conn_t *c, const sig_refusal_t *why, const sig_http_header_t *hint) {
  SIG_EVENT(SIG_LOG_INFO, "http", SIG_CONN_IP(c), "upgrade refused", SIG_KVI("status", why->code),
            SIG_KV("peer", SIG_CONN_PEER(c)), SIG_KV("msg", why->msg));
  respond_error(c, why->code, why->msg, 0, hint);
  sig_conn_close(c, SIG_CONN_FLUSH);
  return 1;
}

static int handle_ws(sig_conn_t *c, const sig_http_request_t *r, int keep_alive) {
  stage_t *st = sig_conn_data(c);
  const char *domain = r->path + SIG_PATH_WS_LEN;
  size_t dlen = r->path_len - SIG_PATH_WS_LEN;
  sig_refusal_t why = {SIG_STATUS_BAD_REQUEST, ""};
  sig_http_header_t hint = {NULL, NULL};
  char resp[SIG_WS_HANDSHAKE_MAX];
  size_t len;
  (void)keep_alive;
  if (!sig_msg_domain_valid(domain, dlen)) {
    snprintf(why.msg, sizeof(why.msg), "domain: must be 1-%d characters of A-Z a-z 0-9 . _ ~ -",
             SIG_MSG_DOMAIN_MAX);
    return refuse_upgrade(c, &why, NULL);
  }
  if (sig_ws_handshake(r, resp, sizeof(resp), &len, &why, &hint) != 0)
    return refuse_upgrade(c, &why, hint.name != NULL ? &hint : NULL);
  /* A page on another origin must not take a name (cross-site WebSocket hijacking). */
  if (r->h_origin != NULL && !st->ep->any_origin &&
      !sig_endpoints_origin_allowed(st->ep, r->h_origin)) {
    char quoted[200];
    sig_text_escape(quoted, sizeof(quoted), r->h_origin, strlen(r->h_origin), 100, '\'');
    sig_refuse(&why, SIG_STATUS_FORBIDDEN, "origin: '%s' is not allowed", quoted);
    return refuse_upgrade(c, &why, NULL);
  }
  if (st->ep->shutting_down) {
    why.code = SIG_STATUS_UNAVAILABLE;
    snprintf(why.msg, sizeof(why.msg), "server: shutting down");
    return refuse_upgrade(c, &why, NULL);
  }
  /* Through a proxy, the connection is counted against its client when it upgrades. */
  if (st->proxied && !sig_conn_counted(c)) {
    if (sig_limits_conn_add(st->ep->limits, sig_conn_client(c), sig_now_ms()) != 0) {
      why.code = SIG_STATUS_TOO_MANY;
      snprintf(why.msg, sizeof(why.msg), "connections: more than %" PRId64 " from your address",
               st->ep->cfg->max_connections_per_ip);
      return refuse_upgrade(c, &why, NULL);
    }
    sig_conn_set_counted(c);
  }
  /* A refused token still gets the upgrade, and then a close code a browser can read. */
  if (sig_auth_required(st->ep->auth)) {
    sig_auth_claims_t claims;
    sig_auth_result_t res = authorize(c, r, &claims);
    if (res != SIG_AUTH_OK) {
      st->auth_why = sig_calloc(1, sizeof(*st->auth_why));
      sig_refuse(st->auth_why, SIG_CLOSE_UNAUTHORIZED, "%s", sig_auth_reason(res));
    } else if (strlen(claims.sub) != dlen || memcmp(claims.sub, domain, dlen) != 0) {
      st->auth_why = sig_calloc(1, sizeof(*st->auth_why));
      sig_refuse(st->auth_why, SIG_CLOSE_FORBIDDEN, "token is not for this domain");
      sig_acl_free(claims.calls);
    } else {
      st->grant = claims.calls;
    }
  }
  if (sig_conn_write(c, resp, len) == 0) { /* on_data starts the session */
    st->upgraded = 1;
    sig_metrics_inc(SIG_M_UPGRADES);
  }
  return 1;
}

static int handle_asset(sig_conn_t *c, const sig_http_request_t *r, int keep_alive) {
  const sig_asset_t *asset = sig_assets_find(r->path, r->path_len);
  sig_http_response_t resp = {.status = SIG_STATUS_OK,
                              .content_type = asset->content_type,
                              .body = (const char *)asset->data,
                              .body_len = asset->len,
                              .keep_alive = keep_alive,
                              .no_cache = 1};
  send_response(c, &resp);
  return 0;
}

static const route_t routes[] = {
    {SIG_PATH_WS, 1, SIG_HTTP_GET, "GET, OPTIONS", "/ws/{domain}", UPGRADE_TAKE, handle_ws},
    {"/offer", 0, SIG_HTTP_POST, "POST, OPTIONS", "/offer", UPGRADE_REFUSE, handle_offer},
    {"/healthz", 0, SIG_HTTP_GET, "GET, HEAD, OPTIONS", "/healthz", UPGRADE_REFUSE, handle_health},
    {"/readyz", 0, SIG_HTTP_GET, "GET, HEAD, OPTIONS", "/readyz", UPGRADE_REFUSE, handle_ready},
    {"/turn-credentials", 0, SIG_HTTP_GET, "GET, HEAD, OPTIONS", "/turn-credentials",
     UPGRADE_REFUSE, handle_turn},
};

/* The files of web/ (sig_assets), after the routes. */
static const route_t asset_route = {
    NULL, 0, SIG_HTTP_GET, "GET, HEAD, OPTIONS", NULL, UPGRADE_IGNORE, handle_asset};

static int handle_metrics(sig_conn_t *c, const sig_http_request_t *r, int keep_alive);

/* The metrics listener's only route. */
static const route_t metrics_route = {
    "/metrics", 0, SIG_HTTP_GET, "GET, HEAD, OPTIONS", "/metrics", UPGRADE_REFUSE, handle_metrics};

static const route_t *find_route(const sig_endpoints_t *ep, const sig_http_request_t *r) {
  if (ep->metrics_only) return strcmp(r->path, metrics_route.path) == 0 ? &metrics_route : NULL;
  for (size_t i = 0; i < SIG_ARRAY_SIZE(routes); i++) {
    const route_t *rt = &routes[i];
    if (rt->prefix ? strncmp(r->path, rt->path, strlen(rt->path)) == 0
                   : strcmp(r->path, rt->path) == 0)
      return rt;
  }
  return sig_assets_find(r->path, r->path_len) != NULL ? &asset_route : NULL;
}

/* The per-address limits: who the client is (through a trusted proxy), how many connections it
 * holds, how fast it asks. Returns 0, or 1 after refusing with 429 (the connection closes). */
static int refuse_by_limits(sig_conn_t *c, const sig_http_request_t *r) {
  stage_t *st = sig_conn_data(c);
  sig_endpoints_t *ep = st->ep;
  char msg[SIG_REFUSAL_MAX], retry[16];
  uint32_t retry_s;
  if (st->proxied) {
    sig_addr_t peer, client;
    sig_conn_socket_peer(c, &peer);
    if (!r->forwarded_unusable)
      sig_addr_client(&peer, ep->trusted, ep->ntrusted, r->h_forwarded, r->h_forwarded_for,
                      &client);
    else
      client = peer;
    sig_conn_set_client(c, &client);
  }
  if (st->over_limit) {
    snprintf(msg, sizeof(msg), "connections: more than %" PRId64 " from your address",
             ep->cfg->max_connections_per_ip);
    refuse_request(c, r, SIG_STATUS_TOO_MANY, msg, 0, NULL);
    return 1;
  }
  if (sig_limits_request(ep->limits, sig_conn_client(c), sig_now_ms(), &retry_s) != 0) {
    sig_http_header_t hint = {"Retry-After", retry};
    snprintf(retry, sizeof(retry), "%" PRIu32, retry_s);
    snprintf(msg, sizeof(msg),
             "requests: more than %" PRId64 " a second from your address; retry after %" PRIu32
             " s",
             ep->cfg->requests_per_ip_per_s, retry_s);
    refuse_request(c, r, SIG_STATUS_TOO_MANY, msg, 0, &hint);
    return 1;
  }
  return 0;
}

/* Answers one request. Returns 1 when the connection no longer reads HTTP. */
static int handle_request(sig_conn_t *c, const sig_http_request_t *r) {
  stage_t *st = sig_conn_data(c);
  int keep_alive = r->keep_alive && !r->upgrade && !st->ep->shutting_down;
  const route_t *route = find_route(st->ep, r);
  char msg[SIG_REFUSAL_MAX];
  st->head = r->method == SIG_HTTP_HEAD;
  st->origin = r->h_origin;
  /* HEAD is GET without the body (send_response drops it), except for the upgrade. */
  sig_http_method_t method = r->method;
  if (method == SIG_HTTP_HEAD && !(route != NULL && route->upgrade == UPGRADE_TAKE))
    method = SIG_HTTP_GET;
  if (refuse_by_limits(c, r)) {
    keep_alive = 0;
  } else if (r->http_major == 1 && r->http_minor >= 1 && r->h_host == NULL) { /* RFC 9112 3.2 */
    refuse_request(c, r, SIG_STATUS_BAD_REQUEST, "host: required", 0, NULL);
    keep_alive = 0;
  } else if (route == NULL) {
    snprintf(msg, sizeof(msg), "path: no such endpoint '%.200s'", r->path);
    refuse_request(c, r, SIG_STATUS_NOT_FOUND, msg, keep_alive, NULL);
  } else if (r->method == SIG_HTTP_OPTIONS) {
    sig_http_response_t resp = {
        .status = SIG_STATUS_NO_CONTENT, .keep_alive = keep_alive, .preflight = 1};
    send_response(c, &resp);
  } else if (method != route->method) {
    sig_http_header_t allow = {"Allow", route->allow};
    snprintf(msg, sizeof(msg), "method: %s is not allowed on %.200s", r->method_name,
             route->name != NULL ? route->name : r->path);
    refuse_request(c, r, SIG_STATUS_METHOD_NOT_ALLOWED, msg, keep_alive, &allow);
  } else if (r->upgrade && route->upgrade == UPGRADE_REFUSE) {
    refuse_request(c, r, SIG_STATUS_BAD_REQUEST, "upgrade: not supported on this endpoint", 0,
                   NULL);
    keep_alive = 0;
  } else {
    int taken = route->handle(c, r, keep_alive);
    if (taken != 0) return taken;
  }
  return finish_request(c, keep_alive);
}

/* After a response: the connection waits for the next request, or closes. Returns 1 when it
 * no longer reads HTTP. */
static int finish_request(sig_conn_t *c, int keep_alive) {
  if (sig_conn_state(c) != SIG_CONN_OPEN) return 1;
  if (!keep_alive) {
    sig_conn_close(c, SIG_CONN_FLUSH);
    return 1;
  }
  sig_conn_set_deadline(c, SIG_DEADLINE_KEEPALIVE);
  return 0;
}

/* ---- the connection's handler */

static void free_stage(stage_t *st) {
  sig_http_free(st->http);
  sig_acl_free(st->grant);
  free(st->auth_why);
  free(st);
}

static size_t on_data(sig_conn_t *c, const char *buf, size_t len) {
  stage_t *st = sig_conn_data(c);
  size_t done = 0;
  if (st->http == NULL)
    st->http =
        sig_http_new((size_t)st->ep->cfg->max_header_bytes, (size_t)st->ep->cfg->max_body_bytes);
  sig_deadline_t d = sig_conn_deadline(c);
  if (d == SIG_DEADLINE_FIRST_BYTE || d == SIG_DEADLINE_KEEPALIVE)
    sig_conn_set_deadline(c, SIG_DEADLINE_REQUEST);
  while (done < len) {
    size_t used = 0;
    if (!sig_conn_spend(c)) return done; /* the rest waits for the next turn */
    int rc = sig_http_feed(st->http, buf + done, len - done, &used);
    if (rc < 0) {
      const char *msg;
      int status = sig_http_error(st->http, &msg);
      SIG_EVENT(SIG_LOG_INFO, "http", SIG_CONN_IP(c), "bad request", SIG_KVI("status", status),
                SIG_KV("peer", SIG_CONN_PEER(c)), SIG_KV("msg", msg));
      respond_error(c, status, msg, 0, NULL);
      sig_conn_close(c, SIG_CONN_FLUSH);
      return len;
    }
    done += used;
    if (rc == SIG_HTTP_NEED_MORE) {
      if (sig_conn_deadline(c) == SIG_DEADLINE_KEEPALIVE && sig_http_in_request(st->http))
        sig_conn_set_deadline(c, SIG_DEADLINE_REQUEST); /* a pipelined request began */
      if (sig_http_take_expect_continue(st->http)) {
        size_t n;
        const char *text = sig_http_continue(&n);
        sig_conn_write(c, text, n);
      }
      return len;
    }
    const sig_http_request_t *r = sig_http_request(st->http);
    sig_metrics_inc(SIG_M_REQUESTS);
    int taken = handle_request(c, r);
    if (sig_conn_state(c) != SIG_CONN_OPEN) return len; /* closing: the stage may be gone */
    sig_conn_set_served(c);
    if (taken == WAITING) { /* what follows waits for the answer (pipelined requests in order) */
      sig_conn_pause(c);
      return done;
    }
    st->head = 0;
    if (taken) {
      /* An accepted upgrade: the rest of this read is the first WebSocket frames. */
      if (st->upgraded) {
        const char *domain = r->path + SIG_PATH_WS_LEN;
        size_t dlen = r->path_len - SIG_PATH_WS_LEN;
        sig_acl_t *grant = st->grant;
        st->grant = NULL;
        sig_conn_set_handler(c, NULL, NULL);
        done += sig_session_start(c, st->ep->sessions, domain, dlen, grant, st->auth_why,
                                  buf + done, len - done);
        free_stage(st); /* domain pointed into it: the router copied it */
        return done;
      }
      return len;
    }
  }
  return done;
}

static void on_deadline(sig_conn_t *c, sig_deadline_t d) {
  stage_t *st = sig_conn_data(c);
  if (d == SIG_DEADLINE_REQUEST && st->http != NULL && sig_http_in_request(st->http)) {
    char msg[96];
    snprintf(msg, sizeof(msg), "request: not complete within %" PRId64 " s",
             st->ep->cfg->header_timeout_s);
    SIG_EVENT(SIG_LOG_INFO, "http", SIG_CONN_IP(c), "request timeout",
              SIG_KV("peer", SIG_CONN_PEER(c)));
    respond_error(c, SIG_STATUS_TIMEOUT, msg, 0, NULL);
    sig_conn_close(c, SIG_CONN_FLUSH);
  } else {
    sig_conn_close(c, SIG_CONN_NOW);
  }
}

static void on_close(sig_conn_t *c) {
  stage_t *st = sig_conn_data(c);
  sig_router_cancel(st->wait);
  free_stage(st);
}

static void on_shutdown(sig_conn_t *c) {
  stage_t *st = sig_conn_data(c);
  if (st->wait != NULL) return; /* its answer comes within the cluster's request timeout */
  if (st->http == NULL || !sig_http_in_request(st->http)) sig_conn_close(c, SIG_CONN_NOW);
}

static const sig_conn_handler_t handler = {on_data, on_deadline, on_close, on_shutdown, NULL};

static int trusted(const sig_endpoints_t *ep, const sig_addr_t *a) {
  for (size_t i = 0; i < ep->ntrusted; i++)
    if (sig_cidr_contains(&ep->trusted[i], a)) return 1;
  return 0;
}

void sig_endpoints_attach(sig_conn_t *c, sig_endpoints_t *ep) {
  stage_t *st = sig_calloc(1, sizeof(*st));
  st->ep = ep;
  st->proxied = (uint8_t)trusted(ep, sig_conn_client(c));
  if (!st->proxied) {
    if (sig_limits_conn_add(ep->limits, sig_conn_client(c), sig_now_ms()) == 0)
      sig_conn_set_counted(c);
    else
      st->over_limit = 1;
  }
  sig_conn_set_handler(c, &handler, st);
  sig_conn_set_deadline(c, SIG_DEADLINE_FIRST_BYTE);
}

void sig_endpoints_release(sig_endpoints_t *ep, sig_conn_t *c) {
  if (sig_conn_counted(c)) sig_limits_conn_remove(ep->limits, sig_conn_client(c), sig_now_ms());
}

/* "scheme://host[:port]" against a pattern that may open its host with "*." (one label or
 * more). */
static int origin_matches(const char *pattern, const char *origin) {
  const char *star = strstr(pattern, "://*.");
  if (star == NULL) return strcasecmp(pattern, origin) == 0;
  size_t scheme = (size_t)(star - pattern) + 3, suffix = strlen(star + 4), n = strlen(origin);
  if (strncasecmp(pattern, origin, scheme) != 0 || n < scheme + 1 + suffix) return 0;
  const char *tail = origin + n - suffix;
  if (strcasecmp(tail, star + 4) != 0) return 0;
  for (const char *p = origin + scheme; p < tail; p++) /* the labels before: letters, digits, - . */
    if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.') return 0;
  return 1;
}

int sig_endpoints_origin_allowed(const sig_endpoints_t *ep, const char *origin) {
  if (ep->any_origin) return 1;
  for (size_t i = 0; i < ep->norigins; i++)
    if (origin_matches(ep->origins[i], origin)) return 1;
  return 0;
}
