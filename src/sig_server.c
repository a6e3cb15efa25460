/* The listener and the server's life: it binds, accepts connections into the
 * set that sig_conn keeps and gives each to the HTTP endpoints; it wires the
 * router to the WebSocket sessions; and it shuts down in order. */
#include "sig_server.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "sig_conn.h"
#include "sig_endpoints.h"
#include "sig_limits.h"
#include "sig_log.h"
#include "sig_router.h"
#include "sig_session.h"
#include "sig_tls.h"
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
  uv_tcp_t listener;
  sig_tls_ctx_t *tls; /* the listener speaks TLS ([tls] present) */
  uv_timer_t shutdown_timer;
  int handles_open;
  sig_conns_t *conns;
  sig_router_t *router;
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

static void on_tick(void *arg) {
  sig_server_t *s = arg;
  sig_router_tick(s->router);
  sig_limits_sweep(s->limits, sig_now_ms());
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

static int resolve(const sig_config_t *cfg, struct sockaddr_storage *ss, socklen_t *sslen,
                   char *err, size_t errlen) {
  struct addrinfo hints, *res = NULL;
  char port[8];
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  snprintf(port, sizeof(port), "%d", cfg->host_port);
  int rc = getaddrinfo(cfg->host_addr, port, &hints, &res);
  if (rc != 0) {
    snprintf(err, errlen, "%s%sserver.host: cannot resolve %s: %s", cfg->path ? cfg->path : "",
             cfg->path ? ": " : "", cfg->host, gai_strerror(rc));
    return UV_EAI_NONAME;
  }
  memcpy(ss, res->ai_addr, res->ai_addrlen);
  *sslen = res->ai_addrlen;
  freeaddrinfo(res);
  return 0;
}

/* A listening socket on ss: returns its descriptor, or a negative errno. */
static int listen_on(const struct sockaddr_storage *ss, socklen_t len) {
  int one = 1;
  int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
      bind(fd, (const struct sockaddr *)ss, len) != 0 || listen(fd, BACKLOG) != 0) {
    int rc = -errno;
    close(fd);
    return rc;
  }
  return fd;
}

int sig_server_check(const sig_config_t *cfg, char *err, size_t errlen) {
  sig_tls_ctx_t *tls = NULL;
  int rc = cfg->tls ? sig_tls_ctx_new(&tls, cfg, err, errlen) : 0;
  sig_tls_ctx_free(tls);
  return rc;
}

int sig_server_start(sig_server_t **out, uv_loop_t *loop, const sig_config_t *cfg, char *err,
                     size_t errlen) {
  struct sockaddr_storage ss;
  socklen_t sslen = sizeof(ss);
  sig_tls_ctx_t *tls = NULL;
  int rc = resolve(cfg, &ss, &sslen, err, errlen);
  if (rc != 0) return rc;
  if (cfg->tls && (rc = sig_tls_ctx_new(&tls, cfg, err, errlen)) != 0) return rc;
  int fd = listen_on(&ss, sslen);
  if (fd < 0) {
    /* errno's own words: "Address already in use", "Cannot assign requested address". */
    snprintf(err, errlen, "%s%sserver.host: cannot listen on %s: %s", cfg->path ? cfg->path : "",
             cfg->path ? ": " : "", cfg->host, strerror(-fd));
    sig_tls_ctx_free(tls);
    return fd;
  }
  sig_server_t *s = sig_calloc(1, sizeof(*s));
  s->loop = loop;
  s->cfg = cfg;
  s->tls = tls;
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
  s->sessions = (sig_sessions_t){s->router, (uint64_t)cfg->max_message_bytes,
                                 (uint32_t)cfg->messages_per_s, (uint32_t)cfg->messages_burst};
  s->max_conns = connection_cap(cfg);
  sig_limits_config_t lc = {
      .max_conns_per_addr = (uint32_t)cfg->max_connections_per_ip,
      .requests_per_s = (uint32_t)cfg->requests_per_ip_per_s,
      .requests_burst = (uint32_t)cfg->requests_per_ip_burst,
      .max_addrs = (size_t)cfg->max_tracked_ips > s->max_conns ? (size_t)cfg->max_tracked_ips
                                                               : (size_t)s->max_conns + 1,
  };
  s->limits = sig_limits_new(&lc);
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
                                   .ntrusted = cfg->trusted_proxies.n};
  *out = s;
  return 0;
}

const char *sig_server_address(const sig_server_t *s) {
  return s->address;
}

int sig_server_reload(sig_server_t *s) {
  char err[1024], about[512];
  if (s->tls == NULL) return 0;
  int rc = sig_tls_ctx_reload(s->tls, err, sizeof(err));
  if (rc != 0)
    SIG_ERROR("tls", "reload failed, the previous certificate stays in use: %s", err);
  else
    SIG_INFO("tls", "certificate reloaded %s", sig_tls_ctx_describe(s->tls, about, sizeof(about)));
  return rc;
}

/* ---- shutdown */

static void on_all_closed(void *arg) {
  sig_server_t *s = arg;
  SIG_MUST(uv_timer_stop(&s->shutdown_timer));
  void (*done)(void *) = s->done;
  s->done = NULL;
  if (done != NULL) done(s->done_arg);
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
  SIG_MUST(uv_timer_start(&s->shutdown_timer, on_shutdown_timeout,
                          (uint64_t)s->cfg->shutdown_timeout_s * 1000, 0));
  sig_conns_on_empty(s->conns, on_all_closed, s);
  sig_conns_shutdown(s->conns);
  if (sig_conns_count(s->conns) == 0) on_all_closed(s);
}

void sig_server_free(sig_server_t *s) {
  if (s == NULL) return;
  sig_router_free(s->router);
  s->router = NULL;
  sig_limits_free(s->limits);
  s->limits = NULL;
  free(s->trusted);
  s->trusted = NULL;
  sig_conns_free(s->conns);
  s->conns = NULL;
  sig_tls_ctx_free(s->tls); /* every connection is gone */
  s->tls = NULL;
  if (!uv_is_closing((uv_handle_t *)&s->listener))
    uv_close((uv_handle_t *)&s->listener, on_handle_closed);
  uv_close((uv_handle_t *)&s->shutdown_timer, on_handle_closed);
}
