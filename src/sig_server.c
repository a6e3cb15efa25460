/* The listener and the server's life: it binds, accepts connections into the
 * set that sig_conn keeps and gives each to the HTTP endpoints; it wires the
 * router to the WebSocket sessions; and it shuts down in order. */
#include "sig_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "sig_addr.h"
#include "sig_auth.h"
#include "sig_cluster.h"
#include "sig_conn.h"
#include "sig_endpoints.h"
#include "sig_limits.h"
#include "sig_log.h"
#include "sig_metrics.h"
#include "sig_router.h"
#include "sig_session.h"
#include "sig_tls.h"
#include "sig_turn.h"
#include "sig_util.h"

#define CLOSE_LINGER_MS 2000
/* 5,000 pings a second at most: a full server's (~20,000 peers) wave in 4 s. */
#define PINGS_PER_TICK 500
/* TCP connections allowed beyond max_connections, so that refusals can be explained. */
#define CONN_SLACK 64
#define BACKLOG 511
/* Descriptors kept free under the file limit for everything but client connections. */
#define FD_RESERVE 32
/* SO_SNDBUF of accepted sockets: Linux doubles it for its bookkeeping, so the kernel holds
 * at most 64 KiB for a peer, whatever the peer's receive window. */
#define SNDBUF_BYTES 32768

struct sig_server_s {
  uv_loop_t *loop;
  const sig_config_t *cfg;
  uint64_t
      max_conns; /* TCP connections held at most: max_connections + slack, under the file limit */
  sig_limits_t *limits;
  sig_cidr_t *trusted;
  sig_auth_t *auth;
  sig_turn_t *turn;          /* [turn] present */
  sig_limits_t *turn_limits; /* GET /turn-credentials per address */
  const char *cors_alias[1]; /* allowed_origins when only cors_origin is set */
  uv_tcp_t listener;
  uv_tcp_t metrics_listener; /* [metrics] host, when set */
  int metrics_on;
  sig_endpoints_t metrics_endpoints;
  uint64_t last_tick_ns; /* for the event loop's lag */
  sig_tls_ctx_t *tls;    /* the listener speaks TLS ([tls] present) */
  uv_timer_t shutdown_timer;
  int handles_open;
  sig_conns_t *conns;
  sig_router_t *router;
  sig_cluster_t *cluster; /* NULL: a single node */
  sig_sessions_t sessions;
  sig_endpoints_t endpoints;
  int shutting_down;
  void (*done)(void *);
  void *done_arg;
  char address[SIG_CONN_ADDR_MAX];
};

static void on_connection(uv_stream_t *listener, int status) {
  sig_server_t *s = listener->data;
  if (status == UV_EMFILE || status == UV_ENFILE) { /* out of descriptors: make room */
    SIG_EVENT(SIG_LOG_WARN, "server", "files", "accept failed: out of file descriptors",
              SIG_KV("error", sig_strerror(status)), SIG_KVI("evicted", sig_conns_evict(s->conns)));
    return;
  }
  if (status < 0) {
    SIG_EVENT(SIG_LOG_WARN, "server", "accept", "accept failed",
              SIG_KV("error", sig_strerror(status)));
    return;
  }
  sig_conn_t *c = sig_conn_accept(s->conns, listener, s->tls);
  if (c == NULL) return;
  /* Full: the oldest connection that has not yet proved itself makes room, so that idle
   * connects cannot lock real clients out. */
  if (sig_conns_count(s->conns) > s->max_conns && !sig_conns_evict(s->conns)) {
    sig_conn_close(c, SIG_CONN_NOW);
    return;
  }
  sig_endpoints_attach(c, &s->endpoints);
}

static void on_release(void *arg, sig_conn_t *c) {
  sig_server_t *s = arg;
  sig_endpoints_release(&s->endpoints, c);
}

static void on_metrics_connection(uv_stream_t *listener, int status) {
  sig_server_t *s = listener->data;
  if (status < 0) return;
  sig_conn_t *c = sig_conn_accept(s->conns, listener, NULL); /* metrics: plain HTTP */
  if (c == NULL) return;
  if (sig_conns_count(s->conns) > s->max_conns && !sig_conns_evict(s->conns)) {
    sig_conn_close(c, SIG_CONN_NOW);
    return;
  }
  sig_endpoints_attach(c, &s->metrics_endpoints);
}

static void on_tick(void *arg) {
  sig_server_t *s = arg;
  uint64_t now = uv_hrtime();
  if (s->last_tick_ns != 0) { /* the tick is every 100 ms: what is beyond it is lag */
    double late = (double)(now - s->last_tick_ns) / 1e9 - 0.1;
    sig_metrics_observe(SIG_H_LOOP_LAG, late > 0 ? late : 0);
  }
  s->last_tick_ns = now;
  sig_router_tick(s->router);
  sig_limits_sweep(s->limits, sig_now_ms());
  if (s->turn_limits != NULL) sig_limits_sweep(s->turn_limits, sig_now_ms());
  sig_log_flush_suppressed();
}

/* max_connections + CONN_SLACK, but never so many that accept runs out of descriptors
 * (some are kept for the log, the listener and the loop). */
static uint64_t connection_cap(const sig_config_t *cfg) {
  struct rlimit rl;
  uint64_t cap = (uint64_t)cfg->max_connections + CONN_SLACK;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
      rl.rlim_cur > FD_RESERVE && rl.rlim_cur - FD_RESERVE < cap)
    cap = rl.rlim_cur - FD_RESERVE;
  return cap;
}

/* ---- binding */

/* "KEY: cannot resolve HOST: reason" in err on failure. */
static int resolve_at(const char *key, const char *host, const char *addr, int port_num,
                      struct sockaddr_storage *ss, socklen_t *sslen, char *err, size_t errlen) {
  struct addrinfo hints, *res = NULL;
  char port[8];
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  snprintf(port, sizeof(port), "%d", port_num);
  int rc = getaddrinfo(addr, port, &hints, &res);
  if (rc != 0) {
    snprintf(err, errlen, "%s: cannot resolve %s: %s", key, host, gai_strerror(rc));
    return UV_EAI_NONAME;
  }
  memcpy(ss, res->ai_addr, res->ai_addrlen);
  *sslen = res->ai_addrlen;
  freeaddrinfo(res);
  return 0;
}

static int resolve(const sig_config_t *cfg, struct sockaddr_storage *ss, socklen_t *sslen,
                   char *err, size_t errlen) {
  return resolve_at("server.host", cfg->host, cfg->host_addr, cfg->host_port, ss, sslen, err,
                    errlen);
}

/* A listening socket on ss: returns its descriptor, or a negative errno. Workers share the
 * port (SO_REUSEPORT: the kernel spreads new connections over them). */
static int listen_on(const struct sockaddr_storage *ss, socklen_t len, int share) {
  int one = 1;
  int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
      (share && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) ||
      bind(fd, (const struct sockaddr *)ss, len) != 0 || listen(fd, BACKLOG) != 0) {
    int rc = -errno;
    close(fd);
    return rc;
  }
  return fd;
}

/* GET /metrics: the gauges. */
static void gauges(void *arg, sig_metrics_gauges_t *g) {
  sig_server_t *s = arg;
  g->connections = sig_conns_count(s->conns);
  g->domains = sig_router_domains(s->router);
  g->exchanges = sig_router_exchanges(s->router);
  g->cluster = s->cluster != NULL;
  g->redis_up = s->cluster != NULL && sig_cluster_up(s->cluster);
}

/* The private listener of GET /metrics (with workers, worker i on the port plus i). */
static int start_metrics(sig_server_t *s, char *err, size_t errlen) {
  const sig_config_t *cfg = s->cfg;
  struct sockaddr_storage ss;
  socklen_t sslen = sizeof(ss);
  int port = cfg->metrics_port != 0 ? cfg->metrics_port + cfg->worker_index : 0;
  char why[512];
  int rc = resolve_at("metrics.host", cfg->metrics_host, cfg->metrics_addr, port, &ss, &sslen, why,
                      sizeof(why));
  if (rc != 0) {
    snprintf(err, errlen, "%s%s%s", cfg->path ? cfg->path : "", cfg->path ? ": " : "", why);
    return rc;
  }
  int fd = listen_on(&ss, sslen, 0);
  if (fd < 0) {
    snprintf(err, errlen, "%s%smetrics.host: cannot listen on %s (port %d): %s",
             cfg->path ? cfg->path : "", cfg->path ? ": " : "", cfg->metrics_host, port,
             strerror(-fd));
    return fd;
  }
  SIG_MUST(uv_tcp_init(s->loop, &s->metrics_listener));
  s->metrics_listener.data = s;
  s->handles_open++;
  s->metrics_on = 1;
  rc = uv_tcp_open(&s->metrics_listener, fd);
  if (rc != 0) close(fd);
  if (rc == 0) rc = uv_listen((uv_stream_t *)&s->metrics_listener, BACKLOG, on_metrics_connection);
  if (rc != 0) {
    snprintf(err, errlen, "metrics.host: cannot listen on %s: %s", cfg->metrics_host,
             uv_strerror(rc));
    return rc;
  }
  s->metrics_endpoints = s->endpoints;
  s->metrics_endpoints.metrics_only = 1;
  int namelen = sizeof(ss);
  char addr[SIG_CONN_ADDR_MAX] = "?";
  sig_addr_t bound;
  if (uv_tcp_getsockname(&s->metrics_listener, (struct sockaddr *)&ss, &namelen) == 0) {
    sig_addr_from_sockaddr(&bound, (struct sockaddr *)&ss);
    sig_addr_format(&bound, 1, addr);
  }
  SIG_INFO("server", "metrics on http://%s/metrics", addr);
  return 0;
}

/* GET /readyz: why the server should get no traffic now, or NULL. */
static const char *not_ready(void *arg) {
  sig_server_t *s = arg;
  if (s->shutting_down) return "server: shutting down";
  if (s->cluster != NULL && !sig_cluster_up(s->cluster)) return "cluster: unavailable";
  return NULL;
}

static sig_limits_config_t limits_config(const sig_server_t *s, const sig_config_t *cfg) {
  sig_limits_config_t lc = {
      .max_conns_per_addr = (uint32_t)cfg->max_connections_per_ip,
      .requests_per_s = (uint32_t)cfg->requests_per_ip_per_s,
      .requests_burst = (uint32_t)cfg->requests_per_ip_burst,
      .max_addrs = (size_t)cfg->max_tracked_ips > s->max_conns ? (size_t)cfg->max_tracked_ips
                                                               : (size_t)s->max_conns + 1,
  };
  return lc;
}

/* GET /turn-credentials' own bucket per address (no connection limit of its own). */
static sig_limits_config_t turn_limits_config(const sig_server_t *s, const sig_config_t *cfg) {
  sig_limits_config_t lc = limits_config(s, cfg);
  lc.max_conns_per_addr = UINT32_MAX;
  lc.requests_per_s = (uint32_t)cfg->turn_requests_per_ip_per_s;
  lc.requests_burst = (uint32_t)cfg->turn_requests_per_ip_burst;
  return lc;
}

/* allowed_origins, or cors_origin (its older name) when only that is set. */
static void set_origins(sig_server_t *s, const sig_config_t *cfg) {
  const sig_config_list_t *l = &cfg->allowed_origins;
  int star = l->n == 1 && strcmp(l->items[0], "*") == 0;
  if (star && strcmp(cfg->cors_origin, "*") != 0) {
    s->cors_alias[0] = cfg->cors_origin;
    s->endpoints.origins = s->cors_alias;
    s->endpoints.norigins = 1;
    s->endpoints.any_origin = 0;
    return;
  }
  s->endpoints.any_origin = 0;
  for (size_t i = 0; i < l->n; i++)
    if (strcmp(l->items[i], "*") == 0) s->endpoints.any_origin = 1;
  s->endpoints.origins = (const char *const *)l->items;
  s->endpoints.norigins = l->n;
}

int sig_server_check_host(const sig_config_t *cfg, char *err, size_t errlen) {
  struct sockaddr_storage ss;
  socklen_t sslen = sizeof(ss);
  return resolve(cfg, &ss, &sslen, err, errlen);
}

int sig_server_listen(const sig_config_t *cfg, char *err, size_t errlen) {
  struct sockaddr_storage ss;
  socklen_t sslen = sizeof(ss);
  char why[512];
  int rc = resolve(cfg, &ss, &sslen, why, sizeof(why));
  if (rc != 0) {
    snprintf(err, errlen, "%s%s%s", cfg->path ? cfg->path : "", cfg->path ? ": " : "", why);
    return rc;
  }
  int fd = listen_on(&ss, sslen, cfg->workers > 1);
  if (fd < 0) /* errno's own words: "Address already in use", "Cannot assign requested address" */
    snprintf(err, errlen, "%s%sserver.host: cannot listen on %s: %s", cfg->path ? cfg->path : "",
             cfg->path ? ": " : "", cfg->host, strerror(-fd));
  return fd;
}

int sig_server_check(const sig_config_t *cfg, char *err, size_t errlen) {
  sig_tls_ctx_t *tls = NULL;
  int rc = cfg->tls ? sig_tls_ctx_new(&tls, cfg, err, errlen) : 0;
  sig_tls_ctx_free(tls);
  return rc;
}

int sig_server_start(sig_server_t **out, uv_loop_t *loop, const sig_config_t *cfg, int fd,
                     char *err, size_t errlen) {
  struct sockaddr_storage ss;
  sig_auth_t *auth = NULL;
  sig_tls_ctx_t *tls = NULL;
  sig_turn_t *turn = NULL;
  int rc = sig_auth_new(&auth, cfg, err, errlen);
  if (rc == 0 && cfg->tls) rc = sig_tls_ctx_new(&tls, cfg, err, errlen);
  if (rc == 0) rc = sig_turn_new(&turn, cfg, err, errlen);
  if (rc != 0) {
    sig_tls_ctx_free(tls);
    sig_auth_free(auth);
    close(fd);
    return rc;
  }
  sig_server_t *s = sig_calloc(1, sizeof(*s));
  s->loop = loop;
  s->cfg = cfg;
  s->auth = auth;
  s->tls = tls;
  s->turn = turn;
  /* uv_tcp_init (no socket yet) and uv_timer_init only fill in the handle. */
  SIG_MUST(uv_tcp_init(loop, &s->listener));
  s->listener.data = s;
  SIG_MUST(uv_timer_init(loop, &s->shutdown_timer));
  s->shutdown_timer.data = s;
  s->handles_open = 2;
  rc = uv_tcp_open(&s->listener, fd);
  if (rc != 0) close(fd); /* not adopted: the handle's close would not close it */
  if (rc == 0) rc = uv_listen((uv_stream_t *)&s->listener, BACKLOG, on_connection);
  if (rc != 0) {
    snprintf(err, errlen, "%s%sserver.host: cannot listen on %s: %s", cfg->path ? cfg->path : "",
             cfg->path ? ": " : "", cfg->host, uv_strerror(rc));
    s->shutting_down = 1; /* sig_server_free closes the handles; the loop frees s */
    sig_server_free(s);
    return rc;
  }
  int namelen = sizeof(ss);
  sig_addr_t bound;
  if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &namelen) == 0) {
    sig_addr_from_sockaddr(&bound, (struct sockaddr *)&ss);
    sig_addr_format(&bound, 1, s->address);
  }
  if (s->tls != NULL) {
    char about[512];
    SIG_INFO("tls", "TLS on %s (TLS %s and later) %s", s->address,
             cfg->tls_min_version == SIG_TLS_1_3 ? "1.3" : "1.2",
             sig_tls_ctx_describe(s->tls, about, sizeof(about)));
  }

  sig_conns_config_t cc = {
      .durations_ms =
          {
              [SIG_DEADLINE_FIRST_BYTE] = (uint64_t)cfg->first_byte_timeout_s * 1000,
              [SIG_DEADLINE_REQUEST] = (uint64_t)cfg->header_timeout_s * 1000,
              [SIG_DEADLINE_KEEPALIVE] = (uint64_t)cfg->keepalive_timeout_s * 1000,
              [SIG_DEADLINE_PING] = (uint64_t)cfg->ping_interval_s * 1000,
              [SIG_DEADLINE_PONG] = (uint64_t)cfg->pong_timeout_s * 1000,
              [SIG_DEADLINE_MESSAGE] = (uint64_t)cfg->message_timeout_s * 1000,
              [SIG_DEADLINE_LINGER] = CLOSE_LINGER_MS,
          },
      .max_queue_bytes = (size_t)cfg->max_write_queue_bytes,
      .sndbuf_bytes = SNDBUF_BYTES,
      .pings_per_tick = PINGS_PER_TICK,
      .on_tick = on_tick,
      .tick_arg = s,
      .on_release = on_release,
      .release_arg = s,
  };
  s->conns = sig_conns_new(loop, &cc);
  sig_router_transport_t t = sig_sessions_transport(loop);
  sig_router_limits_t l = {
      .reject_duplicates = cfg->duplicate == SIG_DUP_REJECT,
      .max_domains = (uint64_t)cfg->max_connections,
      .max_pending_offers = (uint32_t)cfg->max_pending_offers,
      .max_exchanges_per_peer = (uint32_t)cfg->max_exchanges_per_peer,
      .answer_timeout_ms = (uint64_t)cfg->answer_timeout_s * 1000,
  };
  s->router = sig_router_new(&t, &l);
  if (cfg->cluster_redis[0] != '\0') {
    rc = sig_cluster_new(&s->cluster, loop, cfg, s->address, err, errlen);
    if (rc != 0) {
      s->shutting_down = 1;
      sig_server_free(s);
      return rc;
    }
    sig_cluster_attach(s->cluster, s->router);
  }
  s->sessions = (sig_sessions_t){s->router, (uint64_t)cfg->max_message_bytes,
                                 (uint32_t)cfg->messages_per_s, (uint32_t)cfg->messages_burst};
  s->max_conns = connection_cap(cfg);
  sig_limits_config_t lc = limits_config(s, cfg);
  s->limits = sig_limits_new(&lc);
  if (s->turn != NULL) {
    sig_limits_config_t tc = turn_limits_config(s, cfg);
    s->turn_limits = sig_limits_new(&tc);
  }
  s->trusted = sig_calloc(cfg->trusted_proxies.n + 1, sizeof(*s->trusted));
  for (size_t i = 0; i < cfg->trusted_proxies.n; i++) {
    const char *why;
    sig_cidr_parse(&s->trusted[i], cfg->trusted_proxies.items[i], &why); /* checked by config */
  }
  s->endpoints = (sig_endpoints_t){.cfg = cfg,
                                   .router = s->router,
                                   .conns = s->conns,
                                   .sessions = &s->sessions,
                                   .limits = s->limits,
                                   .trusted = s->trusted,
                                   .ntrusted = cfg->trusted_proxies.n,
                                   .auth = s->auth,
                                   .turn = s->turn,
                                   .turn_limits = s->turn_limits,
                                   .not_ready = not_ready,
                                   .ready_arg = s,
                                   .gauges = gauges,
                                   .gauges_arg = s};
  set_origins(s, cfg);
  if (cfg->metrics_host[0] != '\0' && (rc = start_metrics(s, err, errlen)) != 0) {
    s->shutting_down = 1;
    sig_server_free(s);
    return rc;
  }
  *out = s;
  return 0;
}

int sig_server_reload(sig_server_t *s) {
  char err[512], about[512];
  int rc = 0;
  const sig_config_t *cfg = s->cfg;
  /* The live keys (sig_config.c's LIVE rows), as the caller has just set them. max_header_bytes,
   * max_body_bytes and shutdown_timeout_s are read where they are used. */
  sig_limits_config_t lc = limits_config(s, cfg);
  sig_limits_set(s->limits, &lc);
  if (s->turn_limits != NULL) {
    sig_limits_config_t tc = turn_limits_config(s, cfg);
    sig_limits_set(s->turn_limits, &tc);
  }
  s->sessions.max_message_bytes = (uint64_t)cfg->max_message_bytes;
  s->sessions.messages_per_s = (uint32_t)cfg->messages_per_s;
  s->sessions.messages_burst = (uint32_t)cfg->messages_burst;
  set_origins(s, cfg);
  if (sig_auth_reload(s->auth, err, sizeof(err)) != 0) {
    SIG_ERROR("server", "reload: keeping the old key: %s", err);
    rc = SIG_ECONFIG;
  } else if (sig_auth_required(s->auth)) {
    SIG_INFO("server", "reload: auth key read path=%s", cfg->auth_key_file);
  }
  if (sig_turn_reload(s->turn, err, sizeof(err)) != 0) {
    SIG_ERROR("server", "reload: keeping the old TURN secret: %s", err);
    rc = SIG_ECONFIG;
  } else if (s->turn != NULL) {
    SIG_INFO("server", "reload: turn secret read path=%s", sig_turn_secret_file(s->turn));
  }
  if (s->tls == NULL) return rc;
  if (sig_tls_ctx_reload(s->tls, err, sizeof(err)) != 0) {
    SIG_ERROR("tls", "reload failed, the previous certificate stays in use: %s", err);
    rc = SIG_ECONFIG;
  } else {
    SIG_INFO("tls", "certificate reloaded %s", sig_tls_ctx_describe(s->tls, about, sizeof(about)));
  }
  return rc;
}

/* A non-loopback address of this machine in the family of a wildcard address ("0.0.0.0" or
 * "::"), for the start line; "" when there is none. */
static void an_address(int family, char *buf, size_t n) {
  struct ifaddrs *ifs, *i;
  buf[0] = '\0';
  if (getifaddrs(&ifs) != 0) return;
  for (i = ifs; i != NULL && buf[0] == '\0'; i = i->ifa_next) {
    if (i->ifa_addr == NULL || i->ifa_addr->sa_family != family || (i->ifa_flags & IFF_LOOPBACK) ||
        !(i->ifa_flags & IFF_UP))
      continue;
    sig_addr_t a;
    char text[SIG_ADDR_STR_MAX];
    sig_addr_from_sockaddr(&a, i->ifa_addr);
    sig_addr_format(&a, 0, text);
    if (family == AF_INET6 && strncmp(text, "fe80:", 5) == 0) continue; /* needs a zone id */
    snprintf(buf, n, family == AF_INET6 ? "[%s]" : "%s", text);
  }
  freeifaddrs(ifs);
}

void sig_server_start_line(const sig_config_t *cfg, const char *address, char *buf, size_t n) {
  const char *colon = strrchr(address, ':'), *port = colon != NULL ? colon + 1 : "";
  char here[300], there[80];
  int v4_any = strcmp(cfg->host_addr, "0.0.0.0") == 0, v6_any = strcmp(cfg->host_addr, "::") == 0;
  if (v4_any || v6_any) {
    an_address(v4_any ? AF_INET : AF_INET6, there, sizeof(there));
    snprintf(buf, n,
             "listening on %s (every %sinterface), open http://%s:%s/ on this machine, or "
             "http://%s:%s/ from another",
             address, v4_any ? "IPv4 " : "", v4_any ? "127.0.0.1" : "[::1]", port,
             there[0] != '\0' ? there : "THIS-MACHINE", port);
    return;
  }
  /* A host name is what its user typed: the page is at that name. */
  int named = strchr(cfg->host_addr, ':') == NULL && inet_pton(AF_INET, cfg->host_addr, here) != 1;
  snprintf(here, sizeof(here), "%s:%s", cfg->host_addr, port);
  snprintf(buf, n, "listening on %s, open http://%s/", address, named ? here : address);
}

const char *sig_server_address(const sig_server_t *s) {
  return s->address;
}

/* ---- shutdown */

static void on_cluster_left(void *arg) {
  sig_server_t *s = arg;
  void (*done)(void *) = s->done;
  s->done = NULL;
  if (done != NULL) done(s->done_arg);
}

static void on_all_closed(void *arg) {
  sig_server_t *s = arg;
  SIG_MUST(uv_timer_stop(&s->shutdown_timer));
  /* Every session has released its domain by now: the node leaves the cluster last. */
  if (s->cluster != NULL)
    sig_cluster_shutdown(s->cluster, on_cluster_left, s);
  else
    on_cluster_left(s);
}

static void on_shutdown_timeout(uv_timer_t *t) {
  sig_server_t *s = t->data;
  SIG_WARN("server", "shutdown timeout: cutting %" PRIu64 " connections",
           sig_conns_count(s->conns));
  sig_conns_cut(s->conns);
}

static void on_handle_closed(uv_handle_t *h) {
  sig_server_t *s = h->data;
  if (--s->handles_open == 0) free(s);
}

void sig_server_shutdown(sig_server_t *s, void (*done)(void *arg), void *arg) {
  if (s->shutting_down) return;
  s->shutting_down = 1;
  s->endpoints.shutting_down = 1;
  s->done = done;
  s->done_arg = arg;
  SIG_INFO("server", "shutting down connections=%" PRIu64 " domains=%" PRIu64,
           sig_conns_count(s->conns), sig_router_domains(s->router));
  sig_router_shutdown(s->router);
  uv_close((uv_handle_t *)&s->listener, on_handle_closed);
  if (s->metrics_on) uv_close((uv_handle_t *)&s->metrics_listener, on_handle_closed);
  SIG_MUST(uv_timer_start(&s->shutdown_timer, on_shutdown_timeout,
                          (uint64_t)s->cfg->shutdown_timeout_s * 1000, 0));
  sig_conns_on_empty(s->conns, on_all_closed, s);
  sig_conns_shutdown(s->conns);
  if (sig_conns_count(s->conns) == 0) on_all_closed(s);
}

void sig_server_free(sig_server_t *s) {
  if (s == NULL) return;
  sig_cluster_free(s->cluster); /* first: what it owes the router runs now */
  s->cluster = NULL;
  sig_router_free(s->router);
  s->router = NULL;
  sig_limits_free(s->limits);
  s->limits = NULL;
  sig_auth_free(s->auth);
  s->auth = NULL;
  sig_turn_free(s->turn);
  s->turn = NULL;
  sig_limits_free(s->turn_limits);
  s->turn_limits = NULL;
  free(s->trusted);
  s->trusted = NULL;
  sig_conns_free(s->conns);
  s->conns = NULL;
  sig_tls_ctx_free(s->tls); /* every connection is gone */
  s->tls = NULL;
  if (!uv_is_closing((uv_handle_t *)&s->listener))
    uv_close((uv_handle_t *)&s->listener, on_handle_closed);
  if (s->metrics_on && !uv_is_closing((uv_handle_t *)&s->metrics_listener))
    uv_close((uv_handle_t *)&s->metrics_listener, on_handle_closed);
  uv_close((uv_handle_t *)&s->shutdown_timer, on_handle_closed);
}
