/* The HTTP side of a connection: requests parsed by sig_http, answered by the
 * route table (GET /ws/{domain}, POST /offer, GET /healthz, GET /readyz,
 * GET /turn-credentials, the files of web/),
 * with CORS and preflight; an accepted upgrade hands the connection to a
 * WebSocket session. Policies (auth, limits) are consulted here, never inside
 * the parsers. */
#ifndef SIG_ENDPOINTS_H
#define SIG_ENDPOINTS_H

#include <stdint.h>

#include "sig_addr.h"
#include "sig_auth.h"
#include "sig_config.h"
#include "sig_conn.h"
#include "sig_limits.h"
#include "sig_metrics.h"
#include "sig_router.h"
#include "sig_session.h"
#include "sig_turn.h"

/* What every endpoint shares: plain data owned by the server, borrowed here. */
typedef struct {
  const sig_config_t *cfg;
  sig_router_t *router;
  sig_conns_t *conns;
  const sig_sessions_t *sessions;
  sig_limits_t *limits;       /* per-address connections and request rate */
  sig_auth_t *auth;           /* tokens (mode "none": nothing is required) */
  sig_turn_t *turn;           /* GET /turn-credentials; NULL: [turn] absent (404) */
  sig_limits_t *turn_limits;  /* its own per-address request rate ([turn] requests_per_ip_*) */
  int any_origin;             /* allowed_origins is "*" */
  const char *const *origins; /* else the allowed origins (patterns) */
  size_t norigins;
  const sig_cidr_t *trusted; /* trusted_proxies, parsed */
  size_t ntrusted;
  int shutting_down; /* set by the server: upgrades and offers are refused (503) */
  int metrics_only;  /* the metrics listener: GET /metrics and nothing else */
  /* GET /metrics: the server's gauges now. */
  void (*gauges)(void *arg, sig_metrics_gauges_t *g);
  void *gauges_arg;
  /* GET /readyz: NULL when the server should get traffic, else why not. */
  const char *(*not_ready)(void *arg);
  void *ready_arg;
} sig_endpoints_t;

/* Starts serving HTTP on a freshly accepted connection; counts it against its address
 * (unless it comes through a trusted proxy: then its upgrade is counted, against the
 * client the proxy names). */
void sig_endpoints_attach(sig_conn_t *c, sig_endpoints_t *ep);

/* Whether a page on origin may use the server (allowed_origins). */
int sig_endpoints_origin_allowed(const sig_endpoints_t *ep, const char *origin);

/* A connection is gone (from any handler): what was counted for it is given back. */
void sig_endpoints_release(sig_endpoints_t *ep, sig_conn_t *c);

#endif
