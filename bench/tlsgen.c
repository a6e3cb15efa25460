/* TLS client load for `make bench` (bench/run.py): the TLS figures of issue 12, measured the same
 * way against signal-server's own TLS and against nginx terminating TLS in front of the plain
 * server.
 *
 *   --mode handshake  full TLS handshakes (resumed ones with --resume), --window at a time, for
 *                     --seconds: each connects, completes the handshake (ALPN http/1.1 and the
 *                     version checked), sends close_notify and waits until the server has closed
 *                     too, so that the server's whole handshake work is done when it is counted.
 *                     Prints one JSON line and exits.
 *   --mode idle       opens --count wss:// WebSockets: TLS handshake (the chain verified against
 *                     --ca, the name checked), GET /ws/{prefix}{i}, a 101 with the right
 *                     Sec-WebSocket-Accept; prints {"event":"ready",…}; holds them (a connection
 *                     the server closes counts as dropped) until stdin says quit or closes; then
 *                     prints {"event":"closed",…} and exits.
 *
 * One thread, epoll, non-blocking sockets with OpenSSL's socket BIO. Sources rotate over --nsrc
 * addresses from --src (127.x.y.z), so that short connections do not run out of ports. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define CONN_TIMEOUT_S 30.0

typedef enum { CONNECTING, HANDSHAKE, SHUTDOWN, REQUEST, RESPONSE, OPEN, DONE } state_t;

typedef struct {
  int fd;
  SSL *ssl;
  state_t state;
  unsigned index;
  double started;
  char key[25];
  char resp[1024];
  size_t resp_len;
} conn_t;

static struct {
  const char *mode, *ca, *prefix, *version;
  int port, window, count, nsrc, resume;
  double seconds;
  struct in_addr src;
} opt = {"handshake", NULL, "t", "1.3", 0, 64, 1000, 8, 0, 5.0, {0}};

static int ep;
static SSL_CTX *ctx;
static SSL_SESSION *saved; /* --resume: the session every handshake offers */
static unsigned long completed, errors, resumed, dropped, opened, launched;
static int priming; /* --resume's first handshake: not reported */
static char first_error[256];

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "tlsgen: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(2);
}

/* A JSON string: only the characters that need escaping in what we print (error texts). */
static void json_str(char *out, size_t n, const char *s) {
  size_t j = 0;
  for (; *s != '\0' && j + 7 < n; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\')
      out[j++] = '\\', out[j++] = (char)ch;
    else if (ch < 0x20)
      j += (size_t)snprintf(out + j, n - j, "\\u%04x", ch);
    else
      out[j++] = (char)ch;
  }
  out[j] = '\0';
}

static void fail(conn_t *c, const char *what) {
  errors++;
  if (first_error[0] == '\0') {
    unsigned long e = ERR_peek_error();
    snprintf(first_error, sizeof(first_error), "connection %u: %s%s%s", c->index, what,
             e ? ": " : "", e ? ERR_reason_error_string(e) : "");
  }
  ERR_clear_error();
}

static void release(conn_t *c) {
  if (c->ssl != NULL) SSL_free(c->ssl);
  if (c->fd >= 0) close(c->fd); /* closing also takes it out of the epoll set */
  free(c);
}

static void watch(conn_t *c, uint32_t events, int op) {
  struct epoll_event ev = {.events = events, .data.ptr = c};
  if (epoll_ctl(ep, op, c->fd, &ev) != 0) die("epoll_ctl: %s", strerror(errno));
}

static conn_t *start(unsigned index) {
  conn_t *c = calloc(1, sizeof(*c));
  if (c == NULL) die("out of memory");
  c->index = index;
  c->started = now();
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) die("socket: %s", strerror(errno));
  int one = 1;
  if (setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
    die("TCP_NODELAY: %s", strerror(errno));
  struct sockaddr_in src = {.sin_family = AF_INET, .sin_addr = opt.src};
  src.sin_addr.s_addr = htonl(ntohl(opt.src.s_addr) + (uint32_t)(index % (unsigned)opt.nsrc));
  if (bind(c->fd, (struct sockaddr *)&src, sizeof(src)) != 0)
    die("bind %s: %s", inet_ntoa(src.sin_addr), strerror(errno));
  struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port)};
  dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(c->fd, (struct sockaddr *)&dst, sizeof(dst)) != 0 && errno != EINPROGRESS)
    die("connect: %s", strerror(errno));
  c->ssl = SSL_new(ctx);
  if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) die("SSL_new: out of memory");
  if (SSL_set_tlsext_host_name(c->ssl, "localhost") != 1 || SSL_set1_host(c->ssl, "localhost") != 1)
    die("SSL host name");
  if (saved != NULL && SSL_set_session(c->ssl, saved) != 1) die("SSL_set_session");
  SSL_set_connect_state(c->ssl);
  c->state = CONNECTING;
  watch(c, EPOLLOUT, EPOLL_CTL_ADD);
  launched++;
  return c;
}

/* Waits for what OpenSSL asked for; 0, or -1 (a real error: counted). */
static int want(conn_t *c, int rc, const char *what) {
  switch (SSL_get_error(c->ssl, rc)) {
    case SSL_ERROR_WANT_READ: watch(c, EPOLLIN, EPOLL_CTL_MOD); return 0;
    case SSL_ERROR_WANT_WRITE: watch(c, EPOLLOUT, EPOLL_CTL_MOD); return 0;
    default: fail(c, what); return -1;
  }
}

static int check_handshake(conn_t *c) {
  const unsigned char *alpn;
  unsigned alpn_len;
  SSL_get0_alpn_selected(c->ssl, &alpn, &alpn_len);
  if (alpn_len != 8 || memcmp(alpn, "http/1.1", 8) != 0) {
    fail(c, "ALPN http/1.1 not selected");
    return -1;
  }
  int v = SSL_version(c->ssl);
  if ((strcmp(opt.version, "1.3") == 0) != (v == TLS1_3_VERSION)) {
    fail(c, "unexpected TLS version");
    return -1;
  }
  if (SSL_session_reused(c->ssl)) resumed++;
  return 0;
}

static void send_upgrade(conn_t *c) {
  unsigned char raw[16];
  char req[512];
  if (RAND_bytes(raw, sizeof(raw)) != 1) die("RAND_bytes");
  EVP_EncodeBlock((unsigned char *)c->key, raw, sizeof(raw));
  int n =
      snprintf(req, sizeof(req),
               "GET /ws/%s%u HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
               opt.prefix, c->index, c->key);
  int w = SSL_write(c->ssl, req, n); /* a few hundred bytes into an empty socket: all at once */
  if (w != n) {
    fail(c, "upgrade request not written at once");
    c->state = DONE;
    return;
  }
  c->state = RESPONSE;
  watch(c, EPOLLIN, EPOLL_CTL_MOD);
}

static int check_101(conn_t *c) {
  unsigned char sha[20];
  char src[64], accept[64], want_line[96];
  snprintf(src, sizeof(src), "%s%s", c->key, GUID);
  if (EVP_Digest(src, strlen(src), sha, NULL, EVP_sha1(), NULL) != 1) die("SHA-1");
  EVP_EncodeBlock((unsigned char *)accept, sha, sizeof(sha));
  snprintf(want_line, sizeof(want_line), "\r\nSec-WebSocket-Accept: %s\r\n", accept);
  if (strncmp(c->resp, "HTTP/1.1 101 ", 13) != 0) return -1;
  return strcasestr(c->resp, want_line) != NULL ? 0 : -1;
}

/* Runs c as far as it goes; returns 1 when it is finished (counted either way). */
static int step(conn_t *c, uint32_t events) {
  int rc;
  if (events & (EPOLLERR | EPOLLHUP) && c->state == CONNECTING) {
    fail(c, "connect failed");
    return 1;
  }
  switch (c->state) {
    case CONNECTING: c->state = HANDSHAKE; /* fall through */
    case HANDSHAKE:
      rc = SSL_connect(c->ssl);
      if (rc != 1) return want(c, rc, "handshake") != 0;
      if (check_handshake(c) != 0) return 1;
      if (strcmp(opt.mode, "idle") == 0) {
        send_upgrade(c);
        return c->state == DONE;
      }
      c->state = SHUTDOWN;
      if (priming) { /* a request, so that the session's tickets surely arrive before the end */
        static const char req[] = "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
        if (SSL_write(c->ssl, req, (int)sizeof(req) - 1) != (int)sizeof(req) - 1) {
          fail(c, "priming request");
          return 1;
        }
      } else {
        rc = SSL_shutdown(c->ssl); /* our close_notify; then read until the server's end */
        if (rc < 0) return want(c, rc, "close_notify") != 0;
      }
      watch(c, EPOLLIN, EPOLL_CTL_MOD);
      return 0;
    case SHUTDOWN: {
      char buf[4096];
      for (;;) {
        rc = SSL_read(c->ssl, buf, sizeof(buf));
        if (rc > 0) continue; /* nothing is expected, but drop it */
        int e = SSL_get_error(c->ssl, rc);
        if (e == SSL_ERROR_WANT_READ) return 0;
        if (e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL) break; /* close_notify, or FIN */
        fail(c, "reading the server's end");
        return 1;
      }
      if (priming && saved == NULL) {
        /* our close_notify too: a session whose connection did not send one is not resumable */
        SSL_shutdown(c->ssl);
        saved = SSL_get1_session(c->ssl);
      }
      completed++;
      ERR_clear_error();
      return 1;
    }
    case RESPONSE:
      rc = SSL_read(c->ssl, c->resp + c->resp_len, (int)(sizeof(c->resp) - 1 - c->resp_len));
      if (rc <= 0) {
        if (SSL_get_error(c->ssl, rc) == SSL_ERROR_WANT_READ) return 0;
        fail(c, "upgrade response");
        return 1;
      }
      c->resp_len += (size_t)rc;
      c->resp[c->resp_len] = '\0';
      if (strstr(c->resp, "\r\n\r\n") == NULL) {
        if (c->resp_len + 1 >= sizeof(c->resp)) {
          fail(c, "upgrade response too long");
          return 1;
        }
        return 0;
      }
      if (check_101(c) != 0) {
        fail(c, "not a 101 with the right Sec-WebSocket-Accept");
        return 1;
      }
      c->state = OPEN;
      opened++;
      return 0;
    case OPEN: { /* the server speaks to an idle peer only to close it (pings are off) */
      char buf[4096];
      rc = SSL_read(c->ssl, buf, sizeof(buf));
      if (rc <= 0 && SSL_get_error(c->ssl, rc) == SSL_ERROR_WANT_READ) return 0;
      dropped++;
      opened--;
      ERR_clear_error();
      return 1;
    }
    default: return 1;
  }
}

static void usage(void) {
  fprintf(
      stderr,
      "usage: tlsgen --port P --src 127.a.b.c [--nsrc N] [--mode handshake|idle] [--tls 1.2|1.3]\n"
      "              [--window W] [--seconds S] [--resume] [--count N] [--prefix P] [--ca FILE]\n");
  exit(2);
}

static void parse(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--resume") == 0) {
      opt.resume = 1;
      continue;
    }
    if (v == NULL) usage();
    i++;
    if (strcmp(a, "--port") == 0)
      opt.port = atoi(v);
    else if (strcmp(a, "--src") == 0) {
      if (inet_pton(AF_INET, v, &opt.src) != 1) usage();
    } else if (strcmp(a, "--nsrc") == 0)
      opt.nsrc = atoi(v);
    else if (strcmp(a, "--mode") == 0)
      opt.mode = v;
    else if (strcmp(a, "--tls") == 0)
      opt.version = v;
    else if (strcmp(a, "--window") == 0)
      opt.window = atoi(v);
    else if (strcmp(a, "--seconds") == 0)
      opt.seconds = atof(v);
    else if (strcmp(a, "--count") == 0)
      opt.count = atoi(v);
    else if (strcmp(a, "--prefix") == 0)
      opt.prefix = v;
    else if (strcmp(a, "--ca") == 0)
      opt.ca = v;
    else
      usage();
  }
  if (opt.port <= 0 || opt.src.s_addr == 0 || opt.nsrc < 1 || opt.window < 1 || opt.count < 1 ||
      (strcmp(opt.mode, "handshake") != 0 && strcmp(opt.mode, "idle") != 0) ||
      (strcmp(opt.version, "1.2") != 0 && strcmp(opt.version, "1.3") != 0))
    usage();
  if (strcmp(opt.mode, "idle") == 0 && opt.ca == NULL) die("--mode idle verifies: give --ca");
}

static void make_ctx(void) {
  static const unsigned char alpn[] = "\x08http/1.1";
  int v = strcmp(opt.version, "1.3") == 0 ? TLS1_3_VERSION : TLS1_2_VERSION;
  ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, v) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, v) != 1 ||
      SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn) - 1) != 0)
    die("SSL_CTX setup");
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  /* A server that closes without close_notify after ours still finished its handshake: an EOF
   * reads as the end here (the integration tests check close_notify itself). */
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
  if (opt.ca != NULL) {
    if (SSL_CTX_load_verify_locations(ctx, opt.ca, NULL) != 1) die("cannot load %s", opt.ca);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
  }
}

/* Connections by slot, for the timeout sweep. */
static conn_t **slots;

static void sweep(double t, int *live) {
  for (int i = 0; i < opt.count; i++) {
    conn_t *c = slots[i];
    if (c == NULL || c->state == OPEN || t - c->started < CONN_TIMEOUT_S) continue;
    fail(c, "timed out");
    release(c);
    slots[i] = NULL;
    (*live)--;
  }
}

static void print_errors(char *buf, size_t n) {
  json_str(buf, n, first_error);
}

static void run_handshakes(void) {
  struct epoll_event evs[256];
  double t0 = now(), cpu0 = cpu_s(), end = t0 + opt.seconds, last_sweep = t0;
  unsigned next = 0;
  int live = 0;
  opt.count = opt.window;
  slots = calloc((size_t)opt.window, sizeof(*slots));
  unsigned long done_in_window = 0;
  for (;;) {
    double t = now();
    while (t < end && live < opt.window) {
      int s = 0;
      while (slots[s] != NULL) s++;
      slots[s] = start(next++);
      live++;
    }
    if (t >= end && live == 0) break;
    if (t >= end + CONN_TIMEOUT_S) break;
    int n = epoll_wait(ep, evs, 256, 100);
    for (int i = 0; i < n; i++) {
      conn_t *c = evs[i].data.ptr;
      if (step(c, evs[i].events)) {
        if (now() <= end) done_in_window = completed;
        for (int s = 0; s < opt.window; s++)
          if (slots[s] == c) slots[s] = NULL;
        release(c);
        live--;
      }
    }
    if (t - last_sweep > 1) sweep(t, &live), last_sweep = t;
  }
  char err[300];
  print_errors(err, sizeof(err));
  if (priming) return;
  printf(
      "{\"event\":\"done\",\"mode\":\"handshake\",\"tls\":\"%s\",\"resume\":%d,"
      "\"launched\":%lu,\"completed\":%lu,\"completed_in_window\":%lu,\"seconds\":%.3f,"
      "\"per_s\":%.1f,\"resumed\":%lu,\"errors\":%lu,\"first_error\":\"%s\",\"cpu_s\":%.3f}\n",
      opt.version, opt.resume, launched, completed, done_in_window, opt.seconds,
      (double)done_in_window / opt.seconds, resumed, errors, err, cpu_s() - cpu0);
  fflush(stdout);
}

static void run_idle(void) {
  struct epoll_event evs[256];
  double t0 = now();
  int live = 0, next = 0;
  slots = calloc((size_t)opt.count, sizeof(*slots));
  /* open them, window at a time */
  while (opened + errors < (unsigned long)opt.count) {
    while (next < opt.count && live < opt.window) {
      slots[next] = start((unsigned)next);
      next++;
      live++;
    }
    int n = epoll_wait(ep, evs, 256, 100);
    for (int i = 0; i < n; i++) {
      conn_t *c = evs[i].data.ptr;
      state_t before = c->state;
      int finished = step(c, evs[i].events);
      if (finished) {
        slots[c->index] = NULL;
        release(c);
        live--;
      } else if (before != OPEN && c->state == OPEN) {
        live--; /* open: no longer in the window */
      }
    }
    sweep(now(), &live);
  }
  double secs = now() - t0;
  char err[300];
  print_errors(err, sizeof(err));
  printf(
      "{\"event\":\"ready\",\"mode\":\"idle\",\"tls\":\"%s\",\"count\":%d,\"open\":%lu,"
      "\"errors\":%lu,\"first_error\":\"%s\",\"seconds\":%.3f,\"per_s\":%.1f}\n",
      opt.version, opt.count, opened, errors, err, secs, (double)opened / secs);
  fflush(stdout);
  /* hold until stdin says quit or closes, noticing connections the server closes */
  struct epoll_event sev = {.events = EPOLLIN, .data.ptr = NULL};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, STDIN_FILENO, &sev) != 0) die("epoll stdin");
  for (int quit = 0; !quit;) {
    int n = epoll_wait(ep, evs, 256, 1000);
    for (int i = 0; i < n; i++) {
      if (evs[i].data.ptr == NULL) {
        char line[64];
        ssize_t r = read(STDIN_FILENO, line, sizeof(line));
        if (r <= 0 || memmem(line, (size_t)r, "quit", 4) != NULL) quit = 1;
        continue;
      }
      conn_t *c = evs[i].data.ptr;
      if (step(c, evs[i].events)) {
        slots[c->index] = NULL;
        release(c);
      }
    }
  }
  printf("{\"event\":\"closed\",\"open\":%lu,\"dropped\":%lu}\n", opened, dropped);
  fflush(stdout);
  for (int i = 0; i < opt.count; i++)
    if (slots[i] != NULL) release(slots[i]);
}

int main(int argc, char **argv) {
  parse(argc, argv);
  make_ctx();
  ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1: %s", strerror(errno));
  if (strcmp(opt.mode, "handshake") == 0) {
    if (opt.resume) { /* one full handshake first: its session is offered by all the others */
      int w = opt.window;
      double s = opt.seconds;
      opt.window = 1, opt.seconds = 0.001, priming = 1;
      run_handshakes();
      priming = 0;
      if (saved == NULL) die("no session to resume");
      completed = errors = resumed = launched = 0;
      free(slots);
      opt.window = w, opt.seconds = s;
    }
    run_handshakes();
  } else {
    run_idle();
  }
  SSL_SESSION_free(saved);
  SSL_CTX_free(ctx);
  return 0;
}
