/* Load generator of `make bench`. One process opens and holds up to ~19,900
 * peers (the 20,000-file limit) from one 127.0.0.x source address and drives
 * offer/answer exchanges between pairs of them against one of three targets:
 *
 *   sig     signal-server: peers register with GET /ws/{domain}; A sends
 *           POST /offer on its own keep-alive HTTP connection; B answers on
 *           its WebSocket; A receives the answer on its WebSocket.
 *   peerjs  PeerJS server: /peerjs?key=peerjs&id=..&token=..; OFFER and ANSWER
 *           travel over the WebSockets (PeerJS has no HTTP offer API).
 *   floor   bench/floor.c: [4-byte dst][4-byte length][payload] over TCP.
 *
 * Each offer and answer carries a 4,096-character SDP field. Exchanges are
 * scheduled open-loop (exchange i at start + i/rate, latency counted from that
 * scheduled time, so a stall of the generator or the server is not hidden) or
 * closed-loop (a fixed number in flight, for the maximum rate). Latencies go
 * into log-linear histograms with microsecond resolution.
 *
 * The orchestrator (bench/run.py) talks to it over stdin/stdout, one JSON
 * object per output line:
 *   start-up        opens the peers, then prints {"event":"ready",...}
 *   rate R D        open loop at R exchanges/s for D seconds -> {"event":"phase",...}
 *   closed W D N    W in flight for D seconds or N exchanges -> {"event":"phase",...}
 *   stats           connection counters                    -> {"event":"stats",...}
 *   quit / EOF      exit */
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <uv.h>

#define READ_BUF_SIZE (256 * 1024)
#define SCRATCH_SIZE (256 * 1024)
#define MAX_HEAD 8192
#define RING_BITS 20
#define RING_SIZE (1u << RING_BITS)
#define MAX_QUEUE 65536
#define HBUCKETS 2432
#define EPHEMERAL_LO 32768 /* source ports: the ephemeral range, as the kernel would pick */
#define EPHEMERAL_HI 61000

typedef enum { TGT_SIG, TGT_PEERJS, TGT_FLOOR } target_t;
typedef enum { CS_NEW, CS_HANDSHAKE, CS_WAIT_OPEN, CS_OPEN, CS_DEAD } conn_state_t;
typedef enum { CK_PEER, CK_HTTP } conn_kind_t;

typedef struct peer_s peer_t;

typedef struct {
  uv_tcp_t tcp;
  uv_connect_t creq;
  peer_t *peer;
  char *rbuf; /* bytes of an incomplete frame or response, or NULL */
  uint32_t rlen, rcap;
  uint8_t kind, state;
} conn_t;

struct peer_s {
  conn_t ws;
  conn_t *http; /* signal-server target, A side: the keep-alive connection for POST /offer */
  uint32_t idx;
  uint8_t registered, http_busy;
  uint64_t http_seq; /* the exchange whose POST /offer awaits its response */
  uint64_t *q;       /* exchanges waiting for the HTTP connection (a ring) */
  uint32_t qhead, qlen, qcap;
};

typedef struct {
  uv_write_t req;
  size_t len;
  char data[];
} wreq_t;

typedef struct {
  uint64_t n, sum_ns, min_ns, max_ns;
  uint64_t b[HBUCKETS];
} hist_t;

enum { X_FREE, X_PENDING };
typedef struct {
  uint64_t seq, sched_ns, sent_ns;
  uint8_t st;
} xslot_t;

static struct {
  target_t target;
  struct sockaddr_in server, src;
  uint32_t npeers, npairs, window;
  uint32_t id_base;
  char prefix[32];
  uint32_t sdp_bytes;
  double heartbeat_s, drain_s;
} cfg = {.window = 256, .sdp_bytes = 4096, .heartbeat_s = 60, .drain_s = 3};

static uv_loop_t *loop;
static peer_t *peers;
static char read_buf[READ_BUF_SIZE];
static char scratch[SCRATCH_SIZE];
static char *sdp; /* the SDP field: base64 of an SDP text */
static size_t sdp_len;
static uint64_t rng = 0x9E3779B97F4A7C15ull;

/* Opening. */
static uint32_t open_next, open_done, open_ok, open_fail, open_inflight, http_pending;
static uint64_t open_t0, open_t1;
static int ready_sent;

/* Connection counters for `stats`. */
static uint64_t n_pings, n_pongs, n_drops, n_heartbeats, n_closes, n_unexpected;

/* The current phase. */
static struct {
  int active, closed, sending_done;
  double rate;
  uint64_t total;  /* exchanges to schedule (open loop) or to complete (closed loop, 0 = no cap) */
  uint64_t next_i; /* open loop: next exchange to schedule */
  uint64_t start_ns, end_ns, drain_ns;
  uint64_t first_seq, launched, completed, failed, http_errors, error_frames, timeouts, stale;
  uint64_t inflight, window, completed_in_window, queued_max, relaunch;
  uint64_t last_done_ns;
  struct rusage ru0;
  hist_t lat, svc, lag;
} ph;
static uint64_t next_seq = 1;
static xslot_t *ring;

static int tfd = -1;
static uv_poll_t tpoll;
static uint64_t tfd_armed;
static uv_check_t check;
static uv_timer_t tick;
static uv_pipe_t in_pipe;
static char in_line[256];
static size_t in_len;
static uint32_t hb_next;
static int quit_after_phase;
static FILE *trace; /* --trace FILE: one line per completed exchange, for diagnosis */
static char pending_cmds[16][256]; /* commands that came while a phase ran */
static int npending_cmds;

static void pump(void);
static void command(char *line);
static void launch(uint64_t sched_ns);
static void phase_finish(void);
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);
static void on_stdin_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_stdin(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void die(const char *what) {
  fprintf(stderr, "loadgen: %s\n", what);
  exit(1);
}

static void *xmalloc(size_t n) {
  void *p = malloc(n);
  if (p == NULL) die("out of memory");
  return p;
}

static void *xrealloc(void *p, size_t n) {
  p = realloc(p, n);
  if (p == NULL) die("out of memory");
  return p;
}

static uint64_t xorshift(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* ---- histograms: exact below 128 us, then 64 sub-buckets per power of two (<1.6% error) */

static int hidx(uint64_t us) {
  if (us < 128) return (int)us;
  int msb = 63 - __builtin_clzll(us);
  int shift = msb - 6;
  int i = 128 + (shift - 1) * 64 + (int)((us >> shift) - 64);
  return i < HBUCKETS ? i : HBUCKETS - 1;
}

static double hval(int i) { /* the bucket's midpoint */
  if (i < 128) return i;
  int k = i - 128, shift = k / 64 + 1;
  uint64_t top = (uint64_t)(k % 64 + 64);
  return (double)((top << shift) + ((1ull << shift) - 1) / 2);
}

static void hist_add(hist_t *h, uint64_t ns) {
  if (h->n == 0 || ns < h->min_ns) h->min_ns = ns;
  if (ns > h->max_ns) h->max_ns = ns;
  h->n++;
  h->sum_ns += ns;
  h->b[hidx(ns / 1000)]++;
}

static double hist_pct(const hist_t *h, double p) {
  if (h->n == 0) return 0;
  uint64_t want = (uint64_t)ceil(p / 100.0 * (double)h->n), seen = 0;
  if (want == 0) want = 1;
  for (int i = 0; i < HBUCKETS; i++) {
    seen += h->b[i];
    if (seen >= want) {
      double v = hval(i), mx = (double)h->max_ns / 1000.0;
      return v < mx ? v : mx;
    }
  }
  return (double)h->max_ns / 1000.0;
}

static void hist_print(const char *name, const hist_t *h) {
  printf(
      "\"%s\":{\"n\":%llu,\"mean\":%.1f,\"min\":%.1f,\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,"
      "\"p999\":%.1f,\"max\":%.1f}",
      name, (unsigned long long)h->n, h->n ? (double)h->sum_ns / (double)h->n / 1000.0 : 0.0,
      (double)h->min_ns / 1000.0, hist_pct(h, 50), hist_pct(h, 90), hist_pct(h, 99),
      hist_pct(h, 99.9), (double)h->max_ns / 1000.0);
}

/* ---- names */

static int peer_name(const peer_t *p, char *out, size_t outlen) {
  return snprintf(out, outlen, "%s-%u", cfg.prefix, p->idx);
}

static uint32_t floor_id(const peer_t *p) {
  return cfg.id_base + p->idx;
}

static int xid(uint64_t seq, char *out, size_t outlen) {
  return snprintf(out, outlen, "%sx%llu", cfg.prefix, (unsigned long long)seq);
}

/* The exchange number at the end of an id "<prefix>x<seq>", or 0. */
static uint64_t parse_xid(const char *s, size_t len) {
  uint64_t v = 0;
  size_t i = len;
  while (i > 0 && s[i - 1] >= '0' && s[i - 1] <= '9') i--;
  if (i == 0 || s[i - 1] != 'x' || i == len) return 0;
  for (; i < len; i++) v = v * 10 + (uint64_t)(s[i] - '0');
  return v;
}

/* The string value after `key` (which ends with the opening quote), or NULL. */
static const char *str_value(const char *s, size_t len, const char *key, size_t *vlen) {
  size_t klen = strlen(key);
  const char *k = memmem(s, len, key, klen);
  if (k == NULL) return NULL;
  const char *v = k + klen, *end = s + len;
  const char *q = memchr(v, '"', (size_t)(end - v));
  if (q == NULL) return NULL;
  *vlen = (size_t)(q - v);
  return v;
}

/* ---- writes */

static void on_write(uv_write_t *req, int status) {
  (void)status; /* a failed write shows up as a read error too */
  free(req);
}

static void conn_fail(conn_t *c);

static int conn_write(conn_t *c, const char *data, size_t len) {
  if (c->state == CS_DEAD) return -1;
  uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
  int w = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
  if (w == UV_EAGAIN) w = 0;
  if (w < 0) {
    conn_fail(c);
    return -1;
  }
  if ((size_t)w == len) return 0;
  size_t rest = len - (size_t)w;
  wreq_t *q = xmalloc(sizeof(*q) + rest);
  q->len = rest;
  memcpy(q->data, data + w, rest);
  uv_buf_t qb = uv_buf_init(q->data, (unsigned)rest);
  if (uv_write(&q->req, (uv_stream_t *)&c->tcp, &qb, 1, on_write) != 0) {
    free(q);
    conn_fail(c);
    return -1;
  }
  return 0;
}

/* Sends one masked client frame whose payload is the concatenation of parts. */
static int ws_send(conn_t *c, unsigned opcode, const char *const *parts, const size_t *lens,
                   int n) {
  size_t total = 0;
  for (int i = 0; i < n; i++) total += lens[i];
  if (total + 14 > SCRATCH_SIZE) die("frame larger than the scratch buffer");
  uint8_t *f = (uint8_t *)scratch;
  size_t h = 0;
  f[h++] = (uint8_t)(0x80 | opcode);
  if (total < 126) {
    f[h++] = (uint8_t)(0x80 | total);
  } else if (total < 65536) {
    f[h++] = 0x80 | 126;
    f[h++] = (uint8_t)(total >> 8);
    f[h++] = (uint8_t)total;
  } else {
    f[h++] = 0x80 | 127;
    for (int i = 0; i < 8; i++) f[h++] = (uint8_t)((uint64_t)total >> (56 - 8 * i));
  }
  uint32_t m32 = (uint32_t)xorshift();
  memcpy(f + h, &m32, 4);
  h += 4;
  uint8_t *p = f + h;
  for (int i = 0; i < n; i++) {
    memcpy(p, parts[i], lens[i]);
    p += lens[i];
  }
  p = f + h;
  uint64_t m64 = (uint64_t)m32 | (uint64_t)m32 << 32;
  size_t i = 0;
  for (; i + 8 <= total; i += 8) {
    uint64_t v;
    memcpy(&v, p + i, 8);
    v ^= m64;
    memcpy(p + i, &v, 8);
  }
  const uint8_t *mk = f + h - 4;
  for (; i < total; i++) p[i] ^= mk[i & 3];
  return conn_write(c, scratch, h + total);
}

static int ws_send_text(conn_t *c, const char *const *parts, const size_t *lens, int n) {
  return ws_send(c, 0x1, parts, lens, n);
}

/* ---- exchanges */

static xslot_t *slot_of(uint64_t seq) {
  return &ring[seq & (RING_SIZE - 1)];
}

static void check_phase_done(void);

static void complete(uint64_t seq, int ok) {
  xslot_t *x = slot_of(seq);
  if (seq == 0 || x->seq != seq || x->st != X_PENDING) {
    ph.stale++;
    return;
  }
  x->st = X_FREE;
  if (ph.inflight > 0) ph.inflight--;
  uint64_t now = uv_hrtime();
  if (ok) {
    ph.completed++;
    hist_add(&ph.lat, now - x->sched_ns);
    hist_add(&ph.svc, now - x->sent_ns);
    if (trace != NULL)
      fprintf(trace, "%.3f %.1f %.1f\n", (double)(x->sched_ns - ph.start_ns) / 1e6,
              (double)(now - x->sched_ns) / 1e3, (double)(x->sent_ns - x->sched_ns) / 1e3);
    if (ph.closed && now <= ph.end_ns) ph.completed_in_window++;
  } else {
    ph.failed++;
  }
  ph.last_done_ns = now;
  if (ph.active && ph.closed && !ph.sending_done) {
    if (now >= ph.end_ns) {
      ph.sending_done = 1;
      ph.drain_ns = now + (uint64_t)(cfg.drain_s * 1e9);
    } else if (ph.total == 0 || ph.launched + ph.relaunch < ph.total) {
      ph.relaunch++; /* from pump(), never recursively: a failed send completes at once */
    }
  }
  check_phase_done();
}

static void http_post(peer_t *a, uint64_t seq) {
  peer_t *b = a + 1;
  char an[48], bn[48], id[64], head[160];
  peer_name(a, an, sizeof(an));
  peer_name(b, bn, sizeof(bn));
  xid(seq, id, sizeof(id));
  static const char pre[] = "{\"offer_sdp\":\"";
  static const char mid[] =
      "\",\"candidate\":[\"candidate:1 1 udp 2122260223 127.0.0.1 54321 typ host\"],"
      "\"answer_domain\":\"";
  char tail[200];
  int tl = snprintf(tail, sizeof(tail), "%s\",\"offer_domain\":\"%s\",\"id\":\"%s\"}", bn, an, id);
  size_t blen = sizeof(pre) - 1 + sdp_len + sizeof(mid) - 1 + (size_t)tl;
  int hl = snprintf(head, sizeof(head),
                    "POST /offer HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    "Content-Length: %zu\r\n\r\n",
                    blen);
  char *p = scratch;
  memcpy(p, head, (size_t)hl);
  p += hl;
  memcpy(p, pre, sizeof(pre) - 1);
  p += sizeof(pre) - 1;
  memcpy(p, sdp, sdp_len);
  p += sdp_len;
  memcpy(p, mid, sizeof(mid) - 1);
  p += sizeof(mid) - 1;
  memcpy(p, tail, (size_t)tl);
  p += tl;
  a->http_busy = 1;
  a->http_seq = seq;
  slot_of(seq)->sent_ns = uv_hrtime();
  if (conn_write(a->http, scratch, (size_t)(p - scratch)) != 0) {
    a->http_busy = 0;
    complete(seq, 0);
  }
}

static void queue_push(peer_t *a, uint64_t seq) {
  if (a->qlen == a->qcap) {
    if (a->qcap >= MAX_QUEUE) {
      complete(seq, 0);
      return;
    }
    uint32_t ncap = a->qcap ? a->qcap * 2 : 16;
    uint64_t *nq = xmalloc(ncap * sizeof(*nq));
    for (uint32_t i = 0; i < a->qlen; i++) nq[i] = a->q[(a->qhead + i) % a->qcap];
    free(a->q);
    a->q = nq;
    a->qhead = 0;
    a->qcap = ncap;
  }
  a->q[(a->qhead + a->qlen) % a->qcap] = seq;
  a->qlen++;
  if (a->qlen > ph.queued_max) ph.queued_max = a->qlen;
}

static void send_offer(peer_t *a, uint64_t seq) {
  peer_t *b = a + 1;
  xslot_t *x = slot_of(seq);
  if (a->ws.state != CS_OPEN || b->ws.state != CS_OPEN) {
    x->sent_ns = uv_hrtime();
    complete(seq, 0);
    return;
  }
  switch (cfg.target) {
    case TGT_SIG:
      if (a->http == NULL || a->http->state != CS_OPEN) {
        complete(seq, 0);
      } else if (a->http_busy) {
        queue_push(a, seq);
      } else {
        http_post(a, seq);
      }
      return;
    case TGT_PEERJS: {
      char bn[48], id[64], pre[200];
      peer_name(b, bn, sizeof(bn));
      xid(seq, id, sizeof(id));
      int pl = snprintf(
          pre, sizeof(pre),
          "{\"type\":\"OFFER\",\"dst\":\"%s\",\"payload\":{\"connectionId\":\"%s\","
          "\"type\":\"media\",\"browser\":\"bench\",\"sdp\":{\"type\":\"offer\",\"sdp\":\"",
          bn, id);
      static const char post[] = "\"}}}";
      const char *parts[3] = {pre, sdp, post};
      size_t lens[3] = {(size_t)pl, sdp_len, sizeof(post) - 1};
      x->sent_ns = uv_hrtime();
      if (ws_send_text(&a->ws, parts, lens, 3) != 0) complete(seq, 0);
      return;
    }
    case TGT_FLOOR: {
      char *p = scratch;
      uint32_t dst = floor_id(b), len = (uint32_t)(9 + sdp_len);
      memcpy(p, &dst, 4);
      memcpy(p + 4, &len, 4);
      memcpy(p + 8, &seq, 8);
      p[16] = 'O';
      memcpy(p + 17, sdp, sdp_len);
      x->sent_ns = uv_hrtime();
      if (conn_write(&a->ws, scratch, 17 + sdp_len) != 0) complete(seq, 0);
      return;
    }
  }
}

static void launch(uint64_t sched_ns) {
  uint64_t seq = next_seq++;
  xslot_t *x = slot_of(seq);
  if (x->st == X_PENDING) { /* RING_SIZE exchanges ago and still open: call it lost */
    ph.timeouts++;
    if (ph.inflight > 0) ph.inflight--;
  }
  x->seq = seq;
  x->sched_ns = sched_ns;
  x->sent_ns = sched_ns;
  x->st = X_PENDING;
  ph.inflight++;
  ph.launched++;
  peer_t *a = &peers[2 * (seq % cfg.npairs)];
  send_offer(a, seq);
}

static void answer_offer(peer_t *b, const char *id, size_t idlen, const char *src_id,
                         uint64_t seq) {
  switch (cfg.target) {
    case TGT_SIG: {
      char bn[48];
      peer_name(b, bn, sizeof(bn));
      char pre[160], post[200];
      int pl = snprintf(pre, sizeof(pre),
                        "{\"ty\":\"answer\",\"id\":\"%.*s\",\"answer_resp\":{\"answer_sdp\":\"",
                        (int)idlen, id);
      int ql =
          snprintf(post, sizeof(post),
                   "\",\"candidate\":[\"candidate:2 1 udp 2122260223 127.0.0.1 54322 typ host\"],"
                   "\"answer_domain\":\"%s\"}}",
                   bn);
      const char *parts[3] = {pre, sdp, post};
      size_t lens[3] = {(size_t)pl, sdp_len, (size_t)ql};
      ws_send_text(&b->ws, parts, lens, 3);
      return;
    }
    case TGT_PEERJS: {
      char an[48], pre[200];
      peer_name(b - 1, an, sizeof(an));
      int pl = snprintf(
          pre, sizeof(pre),
          "{\"type\":\"ANSWER\",\"dst\":\"%s\",\"payload\":{\"connectionId\":\"%.*s\","
          "\"type\":\"media\",\"browser\":\"bench\",\"sdp\":{\"type\":\"answer\",\"sdp\":\"",
          an, (int)idlen, id);
      static const char post[] = "\"}}}";
      const char *parts[3] = {pre, sdp, post};
      size_t lens[3] = {(size_t)pl, sdp_len, sizeof(post) - 1};
      ws_send_text(&b->ws, parts, lens, 3);
      return;
    }
    case TGT_FLOOR: {
      char *p = scratch;
      uint32_t len = (uint32_t)(9 + sdp_len);
      memcpy(p, src_id, 4);
      memcpy(p + 4, &len, 4);
      memcpy(p + 8, &seq, 8);
      p[16] = 'A';
      memcpy(p + 17, sdp, sdp_len);
      conn_write(&b->ws, scratch, 17 + sdp_len);
      return;
    }
  }
}

/* ---- incoming messages */

static void on_text(peer_t *p, const char *m, size_t len) {
  size_t tl, il;
  if (cfg.target == TGT_SIG) {
    const char *ty = str_value(m, len, "\"ty\":\"", &tl);
    const char *id = str_value(m, len, "\"id\":\"", &il);
    if (ty == NULL) {
      ph.error_frames++;
    } else if (tl == 5 && memcmp(ty, "offer", 5) == 0 && id != NULL) {
      answer_offer(p, id, il, NULL, 0);
    } else if (tl == 6 && memcmp(ty, "answer", 6) == 0 && id != NULL) {
      complete(parse_xid(id, il), 1);
    } else {
      ph.error_frames++; /* error, bye, or something unexpected */
      n_unexpected++;
      if (id != NULL) complete(parse_xid(id, il), 0);
    }
    return;
  }
  const char *ty = str_value(m, len, "\"type\":\"", &tl);
  const char *id = str_value(m, len, "\"connectionId\":\"", &il);
  if (ty != NULL && tl == 4 && memcmp(ty, "OPEN", 4) == 0 && p->ws.state == CS_WAIT_OPEN) {
    p->ws.state = CS_OPEN;
    return;
  }
  if (ty != NULL && tl == 5 && memcmp(ty, "OFFER", 5) == 0 && id != NULL) {
    answer_offer(p, id, il, NULL, 0);
  } else if (ty != NULL && tl == 6 && memcmp(ty, "ANSWER", 6) == 0 && id != NULL) {
    complete(parse_xid(id, il), 1);
  } else {
    ph.error_frames++; /* ERROR, ID-TAKEN, LEAVE, EXPIRE, ... */
    n_unexpected++;
    if (id != NULL) complete(parse_xid(id, il), 0);
  }
}

static void on_floor_message(peer_t *p, const char *m, size_t len) {
  if (len < 17) {
    ph.error_frames++;
    return;
  }
  uint64_t seq;
  memcpy(&seq, m + 8, 8);
  if (m[16] == 'O')
    answer_offer(p, NULL, 0, m, seq);
  else if (m[16] == 'A')
    complete(seq, 1);
  else
    ph.error_frames++;
}

static void registered(peer_t *p);

/* Frames from the server (unmasked). Returns the bytes consumed, or -1 to drop the connection. */
static ssize_t parse_frames(conn_t *c, const char *buf, size_t len) {
  size_t off = 0;
  while (len - off >= 2) {
    const uint8_t *h = (const uint8_t *)buf + off;
    unsigned op = h[0] & 0x0f;
    uint64_t plen = h[1] & 0x7f;
    size_t hl = 2;
    if (h[1] & 0x80) return -1; /* servers do not mask */
    if (plen == 126) {
      if (len - off < 4) break;
      plen = (uint64_t)h[2] << 8 | h[3];
      hl = 4;
    } else if (plen == 127) {
      if (len - off < 10) break;
      plen = 0;
      for (int i = 0; i < 8; i++) plen = plen << 8 | h[2 + i];
      hl = 10;
    }
    if (plen > (1u << 24)) return -1;
    if (len - off < hl + plen) break;
    const char *pl = buf + off + hl;
    off += hl + (size_t)plen;
    if (!(h[0] & 0x80) || op == 0) return -1; /* neither server fragments */
    switch (op) {
      case 0x1: {
        int was_waiting = c->state == CS_WAIT_OPEN;
        on_text(c->peer, pl, (size_t)plen);
        if (was_waiting && c->state == CS_OPEN) registered(c->peer);
        break;
      }
      case 0x9: {
        n_pings++;
        const char *parts[1] = {pl};
        size_t lens[1] = {(size_t)plen};
        if (ws_send(c, 0xA, parts, lens, 1) == 0) n_pongs++;
        break;
      }
      case 0x8: return -1;
      default: break; /* pong, binary */
    }
    if (c->state == CS_DEAD) return -1;
  }
  return (ssize_t)off;
}

static ssize_t parse_floor(conn_t *c, const char *buf, size_t len) {
  size_t off = 0;
  while (len - off >= 8) {
    uint32_t plen;
    memcpy(&plen, buf + off + 4, 4);
    if (len - off < 8 + (size_t)plen) break;
    on_floor_message(c->peer, buf + off, 8 + (size_t)plen);
    off += 8 + (size_t)plen;
    if (c->state == CS_DEAD) return -1;
  }
  return (ssize_t)off;
}

/* HTTP responses on A's offer connection. */
static ssize_t parse_http(conn_t *c, const char *buf, size_t len) {
  size_t off = 0;
  peer_t *a = c->peer;
  while (off < len) {
    const char *s = buf + off;
    const char *e = memmem(s, len - off, "\r\n\r\n", 4);
    if (e == NULL) return len - off > MAX_HEAD ? -1 : (ssize_t)off;
    size_t hlen = (size_t)(e - s) + 4, clen = 0;
    if (hlen < 12 || memcmp(s, "HTTP/1.1 ", 9) != 0) return -1;
    int status = atoi(s + 9);
    for (const char *l = s; l < e; l++) {
      if ((*l == 'C' || *l == 'c') && (size_t)(e - l) > 15 &&
          strncasecmp(l, "Content-Length:", 15) == 0) {
        clen = (size_t)strtoul(l + 15, NULL, 10);
        break;
      }
    }
    if (len - off < hlen + clen) break;
    off += hlen + clen;
    if (!a->http_busy) return -1; /* a response we did not ask for */
    a->http_busy = 0;
    if (status != 200) {
      ph.http_errors++;
      n_unexpected++;
      complete(a->http_seq, 0);
    }
    if (a->qlen > 0 && c->state == CS_OPEN) {
      uint64_t seq = a->q[a->qhead];
      a->qhead = (a->qhead + 1) % a->qcap;
      a->qlen--;
      http_post(a, seq);
    }
  }
  return (ssize_t)off;
}

static ssize_t parse_handshake(conn_t *c, const char *buf, size_t len) {
  if (cfg.target == TGT_FLOOR) {
    if (len < 4) return 0;
    if (memcmp(buf, "OK!\n", 4) != 0) return -1;
    c->state = CS_OPEN;
    registered(c->peer);
    return 4;
  }
  const char *e = memmem(buf, len, "\r\n\r\n", 4);
  if (e == NULL) return len > MAX_HEAD ? -1 : 0;
  if (len < 12 || memcmp(buf, "HTTP/1.1 101", 12) != 0) return -1;
  if (cfg.target == TGT_SIG) {
    c->state = CS_OPEN;
    registered(c->peer);
  } else {
    c->state = CS_WAIT_OPEN;
  }
  return (ssize_t)(e - buf + 4);
}

static ssize_t parse_any(conn_t *c, const char *buf, size_t len) {
  size_t off = 0;
  for (;;) {
    ssize_t n;
    uint8_t st = c->state;
    if (c->kind == CK_HTTP)
      n = parse_http(c, buf + off, len - off);
    else if (st == CS_HANDSHAKE)
      n = parse_handshake(c, buf + off, len - off);
    else if (cfg.target == TGT_FLOOR)
      n = parse_floor(c, buf + off, len - off);
    else
      n = parse_frames(c, buf + off, len - off);
    if (n < 0) return -1;
    off += (size_t)n;
    if (c->state == st || off == len) return (ssize_t)off; /* no state change: no more progress */
  }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  (void)suggested;
  *buf = uv_buf_init(read_buf, sizeof(read_buf));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  conn_t *c = s->data;
  if (n == 0) return;
  if (n < 0) {
    conn_fail(c);
    return;
  }
  const char *data = buf->base;
  size_t len = (size_t)n;
  if (c->rlen > 0) {
    if (c->rlen + len > c->rcap) {
      c->rcap = (uint32_t)(c->rlen + len);
      c->rbuf = xrealloc(c->rbuf, c->rcap);
    }
    memcpy(c->rbuf + c->rlen, data, len);
    c->rlen += (uint32_t)len;
    data = c->rbuf;
    len = c->rlen;
  }
  ssize_t used = parse_any(c, data, len);
  if (used < 0) {
    conn_fail(c);
    return;
  }
  size_t rest = len - (size_t)used;
  if (rest == 0) {
    free(c->rbuf);
    c->rbuf = NULL;
    c->rlen = c->rcap = 0;
  } else if (data == c->rbuf) {
    memmove(c->rbuf, c->rbuf + used, rest);
    c->rlen = (uint32_t)rest;
  } else {
    c->rbuf = xrealloc(c->rbuf, rest);
    memcpy(c->rbuf, data + used, rest);
    c->rlen = c->rcap = (uint32_t)rest;
  }
}

/* ---- connections */

static void on_closed(uv_handle_t *h) {
  (void)h;
  n_closes++;
}

static void open_one_done(int ok);

static void conn_fail(conn_t *c) {
  if (c->state == CS_DEAD) return;
  uint8_t was = c->state;
  c->state = CS_DEAD;
  free(c->rbuf);
  c->rbuf = NULL;
  c->rlen = c->rcap = 0;
  uv_close((uv_handle_t *)&c->tcp, on_closed);
  if (c->kind == CK_HTTP) {
    if (was == CS_OPEN)
      n_drops++;
    else if (http_pending > 0) {
      open_fail++;
      if (--http_pending == 0) open_one_done(1);
    }
    return;
  }
  if (c->peer->registered) {
    n_drops++;
  } else {
    open_one_done(0);
  }
}

static void on_connect(uv_connect_t *req, int status) {
  conn_t *c = req->data;
  if (c->state == CS_DEAD) return;
  if (status != 0) {
    conn_fail(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  if (c->kind == CK_HTTP) {
    c->state = CS_OPEN;
    if (--http_pending == 0) open_one_done(1);
    return;
  }
  c->state = CS_HANDSHAKE;
  peer_t *p = c->peer;
  char name[48], req_buf[512];
  int n;
  switch (cfg.target) {
    case TGT_SIG:
    case TGT_PEERJS:
      peer_name(p, name, sizeof(name));
      n = snprintf(req_buf, sizeof(req_buf),
                   cfg.target == TGT_SIG ? "GET /ws/%s HTTP/1.1\r\n"
                                         : "GET /peerjs?key=peerjs&id=%s&token=t%u HTTP/1.1\r\n",
                   name, p->idx);
      n += snprintf(
          req_buf + n, sizeof(req_buf) - (size_t)n,
          "Host: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
      conn_write(c, req_buf, (size_t)n);
      return;
    case TGT_FLOOR: {
      uint32_t id = floor_id(p);
      conn_write(c, (const char *)&id, 4);
      return;
    }
  }
}

/* A socket bound to the source address and a port of our choosing, walking the ephemeral range:
 * the kernel's own choice (bind to port 0) searches for a free port in time that grows with the
 * ports in use, up to milliseconds per socket past a few thousand. */
static int open_socket(void) {
  static uint32_t next_port;
  if (next_port == 0)
    next_port = EPHEMERAL_LO + (uint32_t)(xorshift() % (EPHEMERAL_HI - EPHEMERAL_LO));
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  for (uint32_t i = 0; i < EPHEMERAL_HI - EPHEMERAL_LO; i++) {
    struct sockaddr_in a = cfg.src;
    a.sin_port = htons((uint16_t)next_port);
    if (++next_port >= EPHEMERAL_HI) next_port = EPHEMERAL_LO;
    if (bind(fd, (const struct sockaddr *)&a, sizeof(a)) == 0) return fd;
    if (errno != EADDRINUSE) break;
  }
  int rc = -errno;
  close(fd);
  return rc;
}

static int conn_open(conn_t *c) {
  uv_tcp_init(loop, &c->tcp);
  c->tcp.data = c;
  c->creq.data = c;
  c->state = CS_NEW;
  int rc = open_socket();
  if (rc >= 0) {
    int fd = rc;
    rc = uv_tcp_open(&c->tcp, fd);
    if (rc != 0) close(fd);
  }
  if (rc == 0)
    rc = uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&cfg.server, on_connect);
  if (rc != 0) {
    static int told;
    if (!told++)
      fprintf(stderr, "loadgen: connect: %s (further failures are only counted)\n",
              uv_strerror(rc));
    conn_fail(c);
    return rc;
  }
  return 0;
}

static void print_ready(void) {
  double el = (double)(open_t1 - open_t0) / 1e9;
  printf(
      "{\"event\":\"ready\",\"peers\":%u,\"registered\":%u,\"failed\":%u,\"elapsed_s\":%.3f,"
      "\"upgrades_per_s\":%.1f}\n",
      cfg.npeers, open_ok, open_fail, el, el > 0 ? open_ok / el : 0.0);
  fflush(stdout);
  ready_sent = 1;
  /* Commands are read only now, so that a phase never starts before its peers are open. */
  if (uv_pipe_open(&in_pipe, 0) == 0)
    uv_read_start((uv_stream_t *)&in_pipe, on_stdin_alloc, on_stdin);
}

/* The HTTP connections of the A peers are opened after every peer has registered
 * (they are not part of the upgrade rate). */
static void open_http(void) {
  if (cfg.target != TGT_SIG || cfg.npairs == 0) {
    print_ready();
    return;
  }
  http_pending = cfg.npairs + 1; /* +1 so that it cannot reach 0 before the loop ends */
  for (uint32_t i = 0; i < cfg.npairs; i++) {
    peer_t *a = &peers[2 * i];
    a->http = calloc(1, sizeof(conn_t));
    a->http->kind = CK_HTTP;
    a->http->peer = a;
    conn_open(a->http);
  }
  if (--http_pending == 0) open_one_done(1);
}

static void start_opening(void);

static void open_one_done(int ok) {
  if (open_done == cfg.npeers) { /* the HTTP stage */
    if (http_pending == 0) print_ready();
    return;
  }
  open_done++;
  open_inflight--;
  if (ok)
    open_ok++;
  else
    open_fail++;
  if (open_done == cfg.npeers) {
    open_t1 = uv_hrtime();
    open_http();
    return;
  }
  start_opening();
}

static void registered(peer_t *p) {
  p->registered = 1;
  open_one_done(1);
}

static void start_opening(void) {
  static int running; /* a connection that fails at once calls back here */
  if (running) return;
  running = 1;
  while (open_inflight < cfg.window && open_next < cfg.npeers) {
    peer_t *p = &peers[open_next++];
    open_inflight++;
    conn_open(&p->ws);
  }
  running = 0;
}

/* ---- phases */

static void arm_timer(uint64_t t_ns) {
  if (tfd_armed != 0 && tfd_armed <= t_ns) return; /* it fires first, and pump() re-arms */
  struct itimerspec its = {.it_value = {.tv_sec = (time_t)(t_ns / 1000000000ull),
                                        .tv_nsec = (long)(t_ns % 1000000000ull)}};
  timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
  tfd_armed = t_ns;
}

static void on_tfd(uv_poll_t *h, int status, int events) {
  (void)h;
  (void)status;
  (void)events;
  uint64_t expirations;
  if (read(tfd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN) die("timerfd read");
  tfd_armed = 0;
  pump();
}

static void on_check(uv_check_t *h) {
  (void)h;
  pump();
}

/* Sends every open-loop exchange whose time has come, or the closed loop's replacements. */
static void pump(void) {
  if (!ph.active || ph.sending_done) return;
  uint64_t now = uv_hrtime();
  if (ph.closed) {
    uint64_t n = ph.relaunch;
    ph.relaunch = 0;
    for (uint64_t i = 0; i < n && ph.active && !ph.sending_done; i++) launch(now);
    if (ph.active && !ph.sending_done && ph.total > 0 && ph.launched >= ph.total) {
      ph.sending_done = 1;
      ph.drain_ns = now + (uint64_t)(cfg.drain_s * 1e9);
      check_phase_done();
    }
    return;
  }
  while (ph.next_i < ph.total) {
    uint64_t t = ph.start_ns + (uint64_t)((double)ph.next_i * 1e9 / ph.rate);
    if (t > now) {
      arm_timer(t);
      return;
    }
    hist_add(&ph.lag, now - t);
    ph.next_i++;
    launch(t);
    if (!ph.active) return;
  }
  ph.sending_done = 1;
  ph.drain_ns = now + (uint64_t)(cfg.drain_s * 1e9);
  check_phase_done();
}

static double tv_s(struct timeval tv) {
  return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static void phase_finish(void) {
  for (uint32_t i = 0; i < RING_SIZE; i++) {
    if (ring[i].st == X_PENDING && ring[i].seq >= ph.first_seq) {
      ring[i].st = X_FREE;
      ph.timeouts++;
    }
  }
  for (uint32_t i = 0; i < cfg.npeers; i++) peers[i].qlen = 0;
  ph.inflight = 0;
  ph.relaunch = 0;
  ph.active = 0;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  uint64_t end = ph.closed ? ph.end_ns : ph.start_ns + (uint64_t)((double)ph.total * 1e9 / ph.rate);
  if (ph.closed && ph.total > 0 && ph.last_done_ns < end) end = ph.last_done_ns;
  double dur = (double)(end - ph.start_ns) / 1e9;
  double cpu =
      tv_s(ru.ru_utime) + tv_s(ru.ru_stime) - tv_s(ph.ru0.ru_utime) - tv_s(ph.ru0.ru_stime);
  uint64_t errors = ph.failed + ph.timeouts + ph.http_errors + ph.error_frames;
  printf(
      "{\"event\":\"phase\",\"mode\":\"%s\",\"rate\":%.1f,\"window\":%llu,\"duration_s\":%.3f,"
      "\"launched\":%llu,\"completed\":%llu,\"failed\":%llu,\"timeouts\":%llu,\"http_errors\":%llu,"
      "\"error_frames\":%llu,\"stale\":%llu,\"errors\":%llu,\"achieved_per_s\":%.1f,"
      "\"queued_max\":%llu,\"cpu_s\":%.3f,\"drops\":%llu,",
      ph.closed ? "closed" : "open", ph.rate, (unsigned long long)ph.window, dur,
      (unsigned long long)ph.launched, (unsigned long long)ph.completed,
      (unsigned long long)ph.failed, (unsigned long long)ph.timeouts,
      (unsigned long long)ph.http_errors, (unsigned long long)ph.error_frames,
      (unsigned long long)ph.stale, (unsigned long long)errors,
      dur > 0 ? (double)(ph.closed ? ph.completed_in_window : ph.completed) / dur : 0.0,
      (unsigned long long)ph.queued_max, cpu, (unsigned long long)n_drops);
  hist_print("latency_us", &ph.lat);
  putchar(',');
  hist_print("service_us", &ph.svc);
  putchar(',');
  hist_print("send_lag_us", &ph.lag);
  printf("}\n");
  fflush(stdout);
  /* Run what came meanwhile, until one of the commands starts a phase. */
  while (npending_cmds > 0 && !ph.active) {
    char line[256];
    memcpy(line, pending_cmds[0], sizeof(line));
    memmove(pending_cmds[0], pending_cmds[1], (size_t)(--npending_cmds) * sizeof(pending_cmds[0]));
    command(line);
  }
  if (trace != NULL) fflush(trace);
  if (quit_after_phase && !ph.active) _exit(0);
}

static void check_phase_done(void) {
  if (!ph.active || !ph.sending_done) return;
  if (ph.inflight == 0 || uv_hrtime() >= ph.drain_ns) phase_finish();
}

static void phase_start(int closed, double rate, double dur_s, uint64_t window, uint64_t count) {
  memset(&ph, 0, sizeof(ph));
  struct itimerspec off = {{0, 0}, {0, 0}};
  timerfd_settime(tfd, 0, &off,
                  NULL); /* a timer left from the last phase must not hold back this one */
  tfd_armed = 0;
  ph.active = 1;
  ph.closed = closed;
  ph.rate = rate;
  ph.window = window;
  ph.first_seq = next_seq;
  getrusage(RUSAGE_SELF, &ph.ru0);
  ph.start_ns = uv_hrtime();
  if (closed) {
    ph.total = count;
    ph.end_ns = ph.start_ns + (uint64_t)(dur_s * 1e9);
    for (uint64_t i = 0; i < window && (count == 0 || i < count) && ph.active && !ph.sending_done;
         i++)
      launch(ph.start_ns);
  } else {
    ph.total = (uint64_t)(rate * dur_s);
    pump();
  }
}

static void on_tick(uv_timer_t *t) {
  (void)t;
  if (ph.active) {
    uint64_t now = uv_hrtime();
    if (ph.closed && !ph.sending_done && now >= ph.end_ns) {
      ph.sending_done = 1;
      ph.drain_ns = now + (uint64_t)(cfg.drain_s * 1e9);
    }
    check_phase_done();
  }
  /* PeerJS clients must send HEARTBEAT within alive_timeout: a slice of the peers each tick,
   * so that each sends one every heartbeat_s. */
  if (cfg.target == TGT_PEERJS && cfg.heartbeat_s > 0 && ready_sent) {
    uint32_t per_tick = (uint32_t)ceil(cfg.npeers / (cfg.heartbeat_s * 10));
    static const char hb[] = "{\"type\":\"HEARTBEAT\"}";
    const char *parts[1] = {hb};
    size_t lens[1] = {sizeof(hb) - 1};
    for (uint32_t i = 0; i < per_tick; i++) {
      peer_t *p = &peers[hb_next];
      hb_next = (hb_next + 1) % cfg.npeers;
      if (p->ws.state == CS_OPEN && ws_send_text(&p->ws, parts, lens, 1) == 0) n_heartbeats++;
    }
  }
}

/* ---- commands */

static void print_stats(void) {
  uint32_t open = 0;
  for (uint32_t i = 0; i < cfg.npeers; i++) open += peers[i].ws.state == CS_OPEN;
  printf(
      "{\"event\":\"stats\",\"peers\":%u,\"open\":%u,\"drops\":%llu,\"pings\":%llu,\"pongs\":%llu,"
      "\"heartbeats\":%llu,\"unexpected\":%llu}\n",
      cfg.npeers, open, (unsigned long long)n_drops, (unsigned long long)n_pings,
      (unsigned long long)n_pongs, (unsigned long long)n_heartbeats,
      (unsigned long long)n_unexpected);
  fflush(stdout);
}

static void command(char *line) {
  double a = 0, b = 0, c = 0;
  if (ph.active) {
    if (npending_cmds < 16)
      snprintf(pending_cmds[npending_cmds++], sizeof(pending_cmds[0]), "%s", line);
    return;
  }
  if (strncmp(line, "rate ", 5) == 0 && sscanf(line + 5, "%lf %lf", &a, &b) == 2 && a > 0 &&
      b > 0) {
    if (cfg.npairs == 0) goto bad;
    phase_start(0, a, b, 0, 0);
  } else if (strncmp(line, "closed ", 7) == 0 && sscanf(line + 7, "%lf %lf %lf", &a, &b, &c) >= 2 &&
             a >= 1 && b > 0) {
    if (cfg.npairs == 0) goto bad;
    phase_start(1, 0, b, (uint64_t)a, (uint64_t)c);
  } else if (strcmp(line, "stats") == 0) {
    print_stats();
  } else if (strcmp(line, "quit") == 0) {
    fflush(stdout);
    _exit(0);
  } else if (line[0] == '\0') {
    return;
  } else {
    goto bad;
  }
  return;
bad:
  printf("{\"event\":\"error\",\"msg\":\"bad command: %s\"}\n", line);
  fflush(stdout);
}

static void on_stdin_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  (void)suggested;
  static char b[1024];
  *buf = uv_buf_init(b, sizeof(b));
}

static void on_stdin(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  (void)s;
  if (n < 0) { /* end of input: leave once the current phase is reported */
    if (!ph.active) _exit(0);
    quit_after_phase = 1;
    uv_read_stop(s);
    return;
  }
  for (ssize_t i = 0; i < n; i++) {
    char ch = buf->base[i];
    if (ch == '\n') {
      in_line[in_len] = '\0';
      in_len = 0;
      command(in_line);
    } else if (in_len + 1 < sizeof(in_line)) {
      in_line[in_len++] = ch;
    }
  }
}

/* ---- start-up */

static void make_sdp(void) {
  size_t raw_len = cfg.sdp_bytes / 4 * 3;
  char *raw = xmalloc(raw_len + 1);
  static const char head[] =
      "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";
  size_t n = 0;
  memcpy(raw, head, sizeof(head) - 1);
  n = sizeof(head) - 1;
  while (n < raw_len) {
    char line[80];
    int l = snprintf(line, sizeof(line), "a=x-bench-padding:%016llx\r\n",
                     (unsigned long long)xorshift());
    size_t take = (size_t)l < raw_len - n ? (size_t)l : raw_len - n;
    memcpy(raw + n, line, take);
    n += take;
  }
  sdp = xmalloc(raw_len / 3 * 4 + 8);
  sdp_len = (size_t)EVP_EncodeBlock((unsigned char *)sdp, (unsigned char *)raw, (int)raw_len);
  free(raw);
}

static void usage(void) {
  fprintf(
      stderr,
      "usage: loadgen --target sig|peerjs|floor --port PORT [--host 127.0.0.1] [--src 127.0.0.2]\n"
      "               --peers N [--pairs K] [--prefix NAME] [--id-base N] [--window W]\n"
      "               [--sdp-bytes 4096] [--heartbeat-s 60] [--drain-s 3] [--trace FILE]\n"
      "The first 2K peers form K offer/answer pairs; the rest are idle. Commands on stdin:\n"
      "rate R D | closed W D [N] | stats | quit\n");
  exit(2);
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1", *src = "127.0.0.1";
  int port = 0;
  snprintf(cfg.prefix, sizeof(cfg.prefix), "p%d", (int)getpid());
  for (int i = 1; i < argc; i++) {
    const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (v == NULL) usage();
    i++;
    if (strcmp(k, "--target") == 0) {
      if (strcmp(v, "sig") == 0)
        cfg.target = TGT_SIG;
      else if (strcmp(v, "peerjs") == 0)
        cfg.target = TGT_PEERJS;
      else if (strcmp(v, "floor") == 0)
        cfg.target = TGT_FLOOR;
      else
        usage();
    } else if (strcmp(k, "--port") == 0)
      port = atoi(v);
    else if (strcmp(k, "--host") == 0)
      host = v;
    else if (strcmp(k, "--src") == 0)
      src = v;
    else if (strcmp(k, "--peers") == 0)
      cfg.npeers = (uint32_t)strtoul(v, NULL, 10);
    else if (strcmp(k, "--pairs") == 0)
      cfg.npairs = (uint32_t)strtoul(v, NULL, 10);
    else if (strcmp(k, "--prefix") == 0)
      snprintf(cfg.prefix, sizeof(cfg.prefix), "%s", v);
    else if (strcmp(k, "--id-base") == 0)
      cfg.id_base = (uint32_t)strtoul(v, NULL, 10);
    else if (strcmp(k, "--window") == 0)
      cfg.window = (uint32_t)strtoul(v, NULL, 10);
    else if (strcmp(k, "--sdp-bytes") == 0)
      cfg.sdp_bytes = (uint32_t)strtoul(v, NULL, 10);
    else if (strcmp(k, "--heartbeat-s") == 0)
      cfg.heartbeat_s = atof(v);
    else if (strcmp(k, "--drain-s") == 0)
      cfg.drain_s = atof(v);
    else if (strcmp(k, "--trace") == 0) {
      trace = fopen(v, "w");
      if (trace == NULL) die("--trace: cannot open the file");
    } else
      usage();
  }
  if (port <= 0 || port > 65535 || cfg.npeers == 0 || cfg.npeers < 2 * cfg.npairs ||
      cfg.window == 0 || cfg.sdp_bytes < 64 || cfg.sdp_bytes > 65536)
    usage();
  if (uv_ip4_addr(host, port, &cfg.server) != 0 || uv_ip4_addr(src, 0, &cfg.src) != 0) usage();
  /* Traffic stays on this machine. */
  if ((ntohl(cfg.server.sin_addr.s_addr) >> 24) != 127 ||
      (ntohl(cfg.src.sin_addr.s_addr) >> 24) != 127)
    die("--host and --src must be loopback addresses (127.0.0.0/8)");

  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < (rlim_t)cfg.npeers + cfg.npairs + 32)
    die("--peers: more than the open-file limit");
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0); /* wake up on time for the open-loop schedule */
  rng ^= (uint64_t)getpid() << 32 ^ uv_hrtime();

  make_sdp();
  ring = calloc(RING_SIZE, sizeof(*ring));
  peers = calloc(cfg.npeers, sizeof(*peers));
  if (ring == NULL || peers == NULL) die("out of memory");
  for (uint32_t i = 0; i < cfg.npeers; i++) {
    peers[i].idx = i;
    peers[i].ws.peer = &peers[i];
    peers[i].ws.kind = CK_PEER;
  }

  loop = uv_default_loop();
  tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (tfd < 0) die("timerfd_create failed");
  uv_poll_init(loop, &tpoll, tfd);
  uv_poll_start(&tpoll, UV_READABLE, on_tfd);
  uv_check_init(loop, &check);
  uv_check_start(&check, on_check);
  uv_timer_init(loop, &tick);
  uv_timer_start(&tick, on_tick, 100, 100);
  uv_pipe_init(loop, &in_pipe, 0);

  open_t0 = uv_hrtime();
  start_opening();
  uv_run(loop, UV_RUN_DEFAULT);
  return 0;
}
