/* Load generator of `make bench`. One process opens and holds up to ~19,900
 * peers (the 20,000-file limit) from one 127.x.y.z source address and drives
 * offer/answer exchanges between pairs of them against one of three protocols:
 *
 *   sig     the seed protocol (signal-server, the Go peer): peers register with
 *           GET /ws/{domain}; A sends POST /offer on its own keep-alive HTTP
 *           connection; B answers on its WebSocket; A receives the answer there.
 *   peerjs  PeerJS server: /peerjs?key=peerjs&id=..&token=..; OFFER and ANSWER
 *           travel over the WebSockets (PeerJS has no HTTP offer API).
 *   floor   bench/floor.c: [4-byte dst][4-byte length][payload] over TCP.
 *
 * With --tokens FILE (sig only), peer i registers with the token on line i of FILE in the
 * access_token query parameter (/ws/{domain}?access_token=...). A close from the server is
 * an error of its own kind: refused for the auth codes 4401 and 4403, closed for any other.
 *
 * With --port-b PORT (sig only), the B peer of each pair registers on a second server, another
 * node of a cluster, so that every exchange crosses nodes; A, its POST /offer and the idle peers
 * stay on --port. With --retries N, a peer closed before its 101, or closed with 4503 (full) or
 * 1013 (try again), connects anew (N times in all, counted): with workers sharing a port, the
 * kernel may hand a connection to a worker that is full while another has room.
 *
 * Every delivery is verified, so that a server cannot score by delivering the wrong thing:
 * each exchange carries its own nonce inside its SDP (4,096 characters) and its candidate,
 * and the receiver checks, with a real JSON parse (bjson.c), that it is the addressed peer,
 * the exchange id, the domains, the whole payload byte for byte and every other field of
 * the frame; the POST /offer reply's status and body (with the exchange id) are checked too.
 * A delivery for an exchange that is not open is a duplicate or an unknown id. Anything
 * unexpected is an error of a named kind (err_names below), and so is an exchange that is
 * not complete when its phase ends. The orchestrator fails the run on any error.
 *
 * Each phase also reports where an exchange's time goes: the offer's way to B (from its send),
 * the answer's way back to A (from B's receipt of the offer, which it answers at once) and, for
 * the seed protocol, the POST /offer reply (from its send).
 *
 * Exchanges are scheduled open-loop (exchange i at start + i/rate, latency counted from that
 * scheduled time, so a stall of the generator or the server is not hidden) or closed-loop (a
 * fixed number in flight, for the maximum rate). Latencies go into log-linear histograms.
 *
 * The orchestrator (bench/run.py) talks to it over stdin/stdout, one JSON object per line:
 *   start-up        opens the peers, then prints {"event":"ready",...}
 *   rate R D        open loop at R exchanges/s for D seconds -> {"event":"phase",...}
 *   closed W D N    W in flight for D seconds or N exchanges -> {"event":"phase",...}
 *   stats           connection and error counters          -> {"event":"stats",...}
 *   quit / EOF      exit */
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <uv.h>

#include "bjson.h"

#define READ_BUF_SIZE (256 * 1024)
#define SCRATCH_SIZE (256 * 1024)
#define MAX_HEAD 8192
#define MAX_TOKS 64
#define RING_BITS 20
#define RING_SIZE (1u << RING_BITS)
#define MAX_QUEUE 65536
#define HBUCKETS 2432
#define EPHEMERAL_LO 32768 /* source ports: the ephemeral range, as the kernel would pick */
#define EPHEMERAL_HI 61000
#define NONCE_PREFIX "v=0\r\na=x-bench-nonce:" /* 21 bytes: the nonce starts on a base64 group */
#define NONCE_B64_OFF 28                       /* 21 / 3 * 4 */
#define NONCE_B64_LEN 24                       /* 16 hex digits and CRLF: 18 bytes */
#define CAND_LEN 80
#define MAX_TOKEN 8192 /* the server's bound on a token */

typedef enum { TGT_SIG, TGT_PEERJS, TGT_FLOOR } target_t;
typedef enum { CS_NEW, CS_HANDSHAKE, CS_WAIT_OPEN, CS_OPEN, CS_DEAD } conn_state_t;
typedef enum { CK_PEER, CK_HTTP } conn_kind_t;
typedef enum { DIR_OFFER, DIR_ANSWER } dir_t;

typedef enum {
  ERR_SEND,
  ERR_TIMEOUT,
  ERR_JSON,
  ERR_FIELDS,
  ERR_ID,
  ERR_MISROUTE,
  ERR_DOMAIN,
  ERR_PAYLOAD,
  ERR_DUPLICATE,
  ERR_HTTP_STATUS,
  ERR_HTTP_BODY,
  ERR_UNEXPECTED,
  ERR_REFUSED,
  ERR_CLOSED,
  ERR_KINDS
} err_t;

static const char *const err_names[ERR_KINDS] = {
    "send_failed",   /* a send on a dead connection, or a full HTTP queue */
    "timeout",       /* not complete when its phase ended */
    "bad_json",      /* a text frame or reply body that is not JSON */
    "bad_fields",    /* a field missing, of the wrong type, duplicated, or one too many */
    "unknown_id",    /* an exchange id this generator never sent */
    "misrouted",     /* delivered to a peer other than the addressed one */
    "wrong_domain",  /* the domains (or PeerJS src/dst) do not name the exchange's peers */
    "wrong_payload", /* SDP or candidates differ from what was sent, by a single byte */
    "duplicate",     /* a second delivery of an offer or answer */
    "http_status",   /* POST /offer answered with a status other than 200 */
    "http_body",     /* a 200 reply whose body is not {"code":0,"msg":"ok","data":{"id":id}} */
    "unexpected",    /* an error frame, bye, or a message nobody asked for */
    "refused",       /* closed with 4401 or 4403: auth refused the registration */
    "closed",        /* a close frame from the server with any other code */
};

typedef struct {
  uint64_t n[ERR_KINDS];
  char first[ERR_KINDS][200];
} errs_t;

typedef struct peer_s peer_t;

typedef struct {
  uv_tcp_t tcp;
  uv_connect_t creq;
  peer_t *peer;
  char *rbuf; /* bytes of an incomplete frame or response, or NULL */
  uint32_t rlen, rcap;
  char *frag; /* a fragmented text message being reassembled, or NULL */
  uint32_t flen;
  uint8_t kind, state, in_frag;
  uint8_t retry; /* refused because the server (or its worker) is full: open it again */
} conn_t;

struct peer_s {
  conn_t ws;
  conn_t *http; /* sig target, A side: the keep-alive connection for POST /offer */
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

enum { X_FREE, X_OPEN, X_DONE };
enum { XF_HTTP = 1, XF_OFFER = 2, XF_ANSWER = 4, XF_TIMEDOUT = 8, XF_FAILED = 16 };
typedef struct {
  uint64_t seq, sched_ns, sent_ns;
  uint64_t offer_ns; /* when B had the offer (and sent its answer) */
  uint8_t st, flags;
} xslot_t;

static struct {
  target_t target;
  struct sockaddr_in server, server_b, src;
  int has_b; /* --port-b: the B peers of the pairs register there */
  uint32_t npeers, npairs, window;
  uint32_t retries; /* --retries: registrations refused as full connect again, this many */
  uint32_t id_base;
  char prefix[32];
  uint32_t sdp_bytes;
  double heartbeat_s, drain_s;
} cfg = {.window = 256, .sdp_bytes = 4096, .heartbeat_s = 20, .drain_s = 3};

static uv_loop_t *loop;
static peer_t *peers;
static char read_buf[READ_BUF_SIZE];
static char scratch[SCRATCH_SIZE];
static char *sdp_tmpl;            /* the SDP field (base64 of an SDP text) with a blank nonce */
static char *sdp_send, *sdp_want; /* the template with one exchange's nonce: to send, to compare */
static size_t sdp_len;
static char *tokens;        /* --tokens: every line of the file, each ended by '\0' */
static uint32_t *token_off; /* peer i's token starts at tokens + token_off[i] */
static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t secret; /* nonces are unpredictable to the server */

/* Opening. */
static uint32_t open_next, open_done, open_ok, open_fail, open_inflight, http_pending;
static uint64_t open_t0, open_t1;
static int ready_sent;

/* Connection and error counters for `stats` (the whole life of the process). */
static uint64_t n_pings, n_pongs, n_drops, n_heartbeats, n_closes, n_late, n_retries;
static errs_t errs_all;

/* The current phase. */
static struct {
  int active, closed, sending_done;
  double rate;
  uint64_t total;  /* exchanges to schedule (open loop) or to complete (closed loop, 0 = no cap) */
  uint64_t next_i; /* open loop: next exchange to schedule */
  uint64_t start_ns, end_ns, drain_ns;
  uint64_t first_seq, launched, completed, failed, late;
  uint64_t inflight, window, completed_in_window, queued_max, relaunch;
  uint64_t last_done_ns;
  struct rusage ru0;
  errs_t errs;
  hist_t lat, svc, lag;
  hist_t leg_offer, leg_answer, reply; /* sent -> B has the offer -> A has the answer; reply */
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
static void check_phase_done(void);
static void conn_fail(conn_t *c);
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

static uint64_t splitmix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/* ---- errors */

static void report(err_t kind, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void report(err_t kind, const char *fmt, ...) {
  errs_t *sets[2] = {&errs_all, &ph.errs};
  for (int i = 0; i < 2; i++) {
    if (sets[i]->n[kind]++ == 0) {
      va_list ap;
      va_start(ap, fmt);
      vsnprintf(sets[i]->first[kind], sizeof(sets[i]->first[kind]), fmt, ap);
      va_end(ap);
    }
  }
}

static uint64_t errs_sum(const errs_t *e) {
  uint64_t s = 0;
  for (int k = 0; k < ERR_KINDS; k++) s += e->n[k];
  return s;
}

/* A JSON string body without quotes: the printable ASCII of s, others as '?'. */
static void print_json_text(const char *s) {
  for (; *s != '\0'; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      printf("\\%c", c);
    else
      putchar(c >= 0x20 && c < 0x7f ? c : '?');
  }
}

/* "errors":N,"error_kinds":{"kind":n,...},"first_errors":{"kind":"text",...} */
static void print_errs(const errs_t *e) {
  printf("\"errors\":%llu,\"error_kinds\":{", (unsigned long long)errs_sum(e));
  int first = 1;
  for (int k = 0; k < ERR_KINDS; k++) {
    if (e->n[k] == 0) continue;
    printf("%s\"%s\":%llu", first ? "" : ",", err_names[k], (unsigned long long)e->n[k]);
    first = 0;
  }
  printf("},\"first_errors\":{");
  first = 1;
  for (int k = 0; k < ERR_KINDS; k++) {
    if (e->n[k] == 0) continue;
    printf("%s\"%s\":\"", first ? "" : ",", err_names[k]);
    print_json_text(e->first[k]);
    putchar('"');
    first = 0;
  }
  putchar('}');
}

/* A short, printable excerpt of a message for an error text. */
static const char *excerpt(const char *m, size_t len) {
  static char out[72];
  size_t n = len < sizeof(out) - 4 ? len : sizeof(out) - 4;
  for (size_t i = 0; i < n; i++) out[i] = m[i] >= 0x20 && m[i] < 0x7f ? m[i] : '.';
  strcpy(out + n, len > n ? "..." : "");
  return out;
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

/* ---- names and payloads */

static int peer_name(const peer_t *p, char *out, size_t outlen) {
  return snprintf(out, outlen, "%s-%u", cfg.prefix, p->idx);
}

static uint32_t floor_id(const peer_t *p) {
  return cfg.id_base + p->idx;
}

static int xid(uint64_t seq, char *out, size_t outlen) {
  return snprintf(out, outlen, "%sx%llu", cfg.prefix, (unsigned long long)seq);
}

/* The exchange number of an id "<prefix>x<seq>" that this process made, or 0. */
static uint64_t parse_xid(const char *s, size_t len) {
  size_t pl = strlen(cfg.prefix);
  if (len < pl + 2 || len > pl + 21 || memcmp(s, cfg.prefix, pl) != 0 || s[pl] != 'x') return 0;
  uint64_t v = 0;
  for (size_t i = pl + 1; i < len; i++) {
    if (s[i] < '0' || s[i] > '9') return 0;
    v = v * 10 + (uint64_t)(s[i] - '0');
  }
  return v;
}

/* The two peers of an exchange: A = 2k, B = 2k + 1 for pair k = seq mod pairs. */
static peer_t *peer_a(uint64_t seq) {
  return &peers[2 * (seq % cfg.npairs)];
}

static peer_t *peer_b(uint64_t seq) {
  return peer_a(seq) + 1;
}

static uint64_t nonce(uint64_t seq, dir_t dir) {
  return splitmix(secret ^ (seq << 1 | (uint64_t)dir));
}

/* Writes into out the SDP field of exchange seq in direction dir: the template with its nonce. */
static void make_sdp_field(uint64_t seq, dir_t dir, char *out) {
  char line[19];
  unsigned char b64[NONCE_B64_LEN + 1];
  snprintf(line, sizeof(line), "%016llx\r\n", (unsigned long long)nonce(seq, dir));
  EVP_EncodeBlock(b64, (const unsigned char *)line, 18);
  memcpy(out, sdp_tmpl, sdp_len);
  memcpy(out + NONCE_B64_OFF, b64, NONCE_B64_LEN);
}

/* The candidate string of exchange seq in direction dir (CAND_LEN bytes or fewer). */
static int make_cand(uint64_t seq, dir_t dir, char *out) {
  return snprintf(out, CAND_LEN,
                  "candidate:%d 1 udp 2122260223 127.0.0.1 %d typ host ufrag %016llx",
                  dir == DIR_OFFER ? 1 : 2, dir == DIR_OFFER ? 54321 : 54322,
                  (unsigned long long)nonce(seq, dir) ^ 0x5555555555555555ull);
}

/* ---- writes */

static void on_write(uv_write_t *req, int status) {
  (void)status; /* a failed write shows up as a read error too */
  free(req);
}

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

/* Ends an open exchange: completed (its latency recorded) or failed (the error is reported by
 * whoever found it). */
static void finish(xslot_t *x, int ok) {
  if (x->st != X_OPEN) return;
  x->st = X_DONE;
  if (!ok) x->flags |= XF_FAILED;
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

/* The legs of an exchange, where its time goes: the offer's way to B (from its send), the
 * answer's way back to A (from B's receipt of the offer, when B answers at once). */
static void offer_arrived(xslot_t *x) {
  x->offer_ns = uv_hrtime();
  hist_add(&ph.leg_offer, x->offer_ns - x->sent_ns);
}

static void answer_arrived(xslot_t *x) {
  hist_add(&ph.leg_answer, uv_hrtime() - x->offer_ns);
}

static void send_failed(uint64_t seq, const char *why) {
  report(ERR_SEND, "exchange %llu: %s", (unsigned long long)seq, why);
  finish(slot_of(seq), 0);
}

/* The open exchange that a delivery of `what` to peer p names, with every check that does not
 * need the message's fields: known id, the addressed receiver, not delivered before. NULL
 * (after reporting, or counting a late delivery of an exchange that already timed out) when
 * the delivery must go no further. */
static xslot_t *claim(peer_t *p, uint64_t seq, int flag, const char *what) {
  xslot_t *x = slot_of(seq);
  char got[48], want[48];
  if (seq == 0 || cfg.npairs == 0 || x->seq != seq || x->st == X_FREE) {
    peer_name(p, got, sizeof(got));
    report(ERR_ID, "%s for an exchange this generator never opened, delivered to %s", what, got);
    return NULL;
  }
  peer_t *to = flag == XF_ANSWER ? peer_a(seq) : peer_b(seq);
  if (p != to) {
    peer_name(p, got, sizeof(got));
    peer_name(to, want, sizeof(want));
    report(ERR_MISROUTE, "%s of exchange %llu delivered to %s, addressed to %s", what,
           (unsigned long long)seq, got, want);
    finish(x, 0);
    return NULL;
  }
  if (x->flags & XF_TIMEDOUT) {
    ph.late++;
    n_late++;
    return NULL;
  }
  if (x->flags & flag) {
    report(ERR_DUPLICATE, "%s of exchange %llu delivered twice to %s", what,
           (unsigned long long)seq, (peer_name(p, got, sizeof(got)), got));
    finish(x, 0);
    return NULL;
  }
  if (x->st != X_OPEN) return NULL; /* it failed earlier: that error is counted already */
  if (flag == XF_ANSWER && !(x->flags & XF_OFFER)) {
    report(ERR_UNEXPECTED, "answer of exchange %llu arrived before its offer was delivered",
           (unsigned long long)seq);
    finish(x, 0);
    return NULL;
  }
  x->flags |= (uint8_t)flag;
  return x;
}

/* Marks a protocol step as done and completes the exchange once all of its steps are in. */
static void step_done(xslot_t *x) {
  int need = XF_OFFER | XF_ANSWER | (cfg.target == TGT_SIG ? XF_HTTP : 0);
  if ((x->flags & need) == need) finish(x, 1);
}

static void http_post(peer_t *a, uint64_t seq) {
  peer_t *b = a + 1;
  char an[48], bn[48], id[64], head[160], cand[CAND_LEN];
  peer_name(a, an, sizeof(an));
  peer_name(b, bn, sizeof(bn));
  xid(seq, id, sizeof(id));
  make_sdp_field(seq, DIR_OFFER, sdp_send);
  make_cand(seq, DIR_OFFER, cand);
  char tail[400];
  int tl = snprintf(tail, sizeof(tail),
                    "\",\"candidate\":[\"%s\"],\"answer_domain\":\"%s\",\"offer_domain\":\"%s\","
                    "\"id\":\"%s\"}",
                    cand, bn, an, id);
  static const char pre[] = "{\"offer_sdp\":\"";
  size_t blen = sizeof(pre) - 1 + sdp_len + (size_t)tl;
  int hl = snprintf(head, sizeof(head),
                    "POST /offer HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    "Content-Length: %zu\r\n\r\n",
                    blen);
  char *p = scratch;
  memcpy(p, head, (size_t)hl);
  p += hl;
  memcpy(p, pre, sizeof(pre) - 1);
  p += sizeof(pre) - 1;
  memcpy(p, sdp_send, sdp_len);
  p += sdp_len;
  memcpy(p, tail, (size_t)tl);
  p += tl;
  a->http_busy = 1;
  a->http_seq = seq;
  slot_of(seq)->sent_ns = uv_hrtime();
  if (conn_write(a->http, scratch, (size_t)(p - scratch)) != 0) {
    a->http_busy = 0;
    send_failed(seq, "the HTTP connection is closed");
  }
}

static void queue_push(peer_t *a, uint64_t seq) {
  if (a->qlen == a->qcap) {
    if (a->qcap >= MAX_QUEUE) {
      send_failed(seq, "the HTTP queue is full");
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

/* The floor's message body: [seq][O or A][SDP field]\n[candidate]. */
static size_t floor_body(uint64_t seq, dir_t dir, char *p) {
  memcpy(p, &seq, 8);
  p[8] = dir == DIR_OFFER ? 'O' : 'A';
  make_sdp_field(seq, dir, p + 9);
  p[9 + sdp_len] = '\n';
  return 10 + sdp_len + (size_t)make_cand(seq, dir, p + 10 + sdp_len);
}

static void send_offer(peer_t *a, uint64_t seq) {
  peer_t *b = a + 1;
  xslot_t *x = slot_of(seq);
  if (a->ws.state != CS_OPEN || b->ws.state != CS_OPEN) {
    x->sent_ns = uv_hrtime();
    send_failed(seq, "a peer of the pair is disconnected");
    return;
  }
  switch (cfg.target) {
    case TGT_SIG:
      if (a->http == NULL || a->http->state != CS_OPEN) {
        send_failed(seq, "the HTTP connection is closed");
      } else if (a->http_busy) {
        queue_push(a, seq);
      } else {
        http_post(a, seq);
      }
      return;
    case TGT_PEERJS: {
      char bn[48], id[64], pre[200], post[200], cand[CAND_LEN];
      peer_name(b, bn, sizeof(bn));
      xid(seq, id, sizeof(id));
      make_sdp_field(seq, DIR_OFFER, sdp_send);
      make_cand(seq, DIR_OFFER, cand);
      int pl = snprintf(
          pre, sizeof(pre),
          "{\"type\":\"OFFER\",\"dst\":\"%s\",\"payload\":{\"connectionId\":\"%s\","
          "\"type\":\"media\",\"browser\":\"bench\",\"sdp\":{\"type\":\"offer\",\"sdp\":\"",
          bn, id);
      int ql = snprintf(post, sizeof(post), "\"},\"candidates\":[\"%s\"]}}", cand);
      const char *parts[3] = {pre, sdp_send, post};
      size_t lens[3] = {(size_t)pl, sdp_len, (size_t)ql};
      x->sent_ns = uv_hrtime();
      if (ws_send_text(&a->ws, parts, lens, 3) != 0) send_failed(seq, "the WebSocket is closed");
      return;
    }
    case TGT_FLOOR: {
      uint32_t dst = floor_id(b);
      uint32_t len = (uint32_t)floor_body(seq, DIR_OFFER, scratch + 8);
      memcpy(scratch, &dst, 4);
      memcpy(scratch + 4, &len, 4);
      x->sent_ns = uv_hrtime();
      if (conn_write(&a->ws, scratch, 8 + len) != 0) send_failed(seq, "the connection is closed");
      return;
    }
  }
}

static void launch(uint64_t sched_ns) {
  uint64_t seq = next_seq++;
  xslot_t *x = slot_of(seq);
  if (x->st == X_OPEN) { /* RING_SIZE exchanges ago and still open: call it lost */
    report(ERR_TIMEOUT, "exchange %llu still open %u exchanges later", (unsigned long long)x->seq,
           RING_SIZE);
    if (ph.inflight > 0) ph.inflight--;
  }
  x->seq = seq;
  x->sched_ns = sched_ns;
  x->sent_ns = sched_ns;
  x->st = X_OPEN;
  x->flags = 0;
  ph.inflight++;
  ph.launched++;
  send_offer(peer_a(seq), seq);
}

static void send_answer(peer_t *b, uint64_t seq) {
  char bn[48], an[48], id[64], pre[200], post[300], cand[CAND_LEN];
  peer_name(b, bn, sizeof(bn));
  peer_name(b - 1, an, sizeof(an));
  xid(seq, id, sizeof(id));
  int rc = 0;
  switch (cfg.target) {
    case TGT_SIG: {
      make_sdp_field(seq, DIR_ANSWER, sdp_send);
      make_cand(seq, DIR_ANSWER, cand);
      int pl = snprintf(pre, sizeof(pre),
                        "{\"ty\":\"answer\",\"id\":\"%s\",\"answer_resp\":{\"answer_sdp\":\"", id);
      int ql = snprintf(post, sizeof(post), "\",\"candidate\":[\"%s\"],\"answer_domain\":\"%s\"}}",
                        cand, bn);
      const char *parts[3] = {pre, sdp_send, post};
      size_t lens[3] = {(size_t)pl, sdp_len, (size_t)ql};
      rc = ws_send_text(&b->ws, parts, lens, 3);
      break;
    }
    case TGT_PEERJS: {
      make_sdp_field(seq, DIR_ANSWER, sdp_send);
      make_cand(seq, DIR_ANSWER, cand);
      int pl = snprintf(
          pre, sizeof(pre),
          "{\"type\":\"ANSWER\",\"dst\":\"%s\",\"payload\":{\"connectionId\":\"%s\","
          "\"type\":\"media\",\"browser\":\"bench\",\"sdp\":{\"type\":\"answer\",\"sdp\":\"",
          an, id);
      int ql = snprintf(post, sizeof(post), "\"},\"candidates\":[\"%s\"]}}", cand);
      const char *parts[3] = {pre, sdp_send, post};
      size_t lens[3] = {(size_t)pl, sdp_len, (size_t)ql};
      rc = ws_send_text(&b->ws, parts, lens, 3);
      break;
    }
    case TGT_FLOOR: {
      uint32_t dst = floor_id(b - 1);
      uint32_t len = (uint32_t)floor_body(seq, DIR_ANSWER, scratch + 8);
      memcpy(scratch, &dst, 4);
      memcpy(scratch + 4, &len, 4);
      rc = conn_write(&b->ws, scratch, 8 + len);
      break;
    }
  }
  if (rc != 0) send_failed(seq, "the answering peer's connection is closed");
}

/* ---- verification of JSON messages */

typedef struct {
  const char *s;
  bj_tok_t t[MAX_TOKS];
  int n;
  const char *where; /* for error texts: "offer push", ... */
} msg_t;

static int msg_parse(msg_t *m, const char *s, size_t len, const char *where) {
  m->s = s;
  m->where = where;
  m->n = bj_parse(s, len, m->t, MAX_TOKS);
  if (m->n < 0) {
    report(ERR_JSON, "%s: not a JSON text (%s): %s", where,
           m->n == BJ_ENOMEM ? "too many values" : "syntax", excerpt(s, len));
    return -1;
  }
  return 0;
}

/* Checks that token obj is an object with exactly nkeys members; reports bad_fields if not. */
static int want_object(msg_t *m, int obj, uint32_t nkeys, const char *name) {
  if (m->t[obj].type != BJ_OBJECT || m->t[obj].size != nkeys) {
    report(ERR_FIELDS, "%s: %s is not an object of %u members: %s", m->where, name, nkeys,
           excerpt(m->s + m->t[obj].start, m->t[obj].len));
    return -1;
  }
  return 0;
}

/* The token of member key of obj, which must be present once and of the given type. */
static int want_field(msg_t *m, int obj, const char *key, bj_type_t type) {
  int i = bj_get(m->t, obj, m->s, key);
  if (i < 0 || m->t[i].type != type) {
    report(ERR_FIELDS, "%s: field %s %s", m->where, key,
           i == -1   ? "missing"
           : i == -2 ? "given twice"
                     : "of the wrong type");
    return -1;
  }
  return i;
}

static int str_is(msg_t *m, int i, const char *want) {
  return bj_str_eq(m->t, i, m->s, want, strlen(want));
}

/* Member key of obj is the string want; else reports kind. */
static int want_str(msg_t *m, int obj, const char *key, const char *want, err_t kind,
                    uint64_t seq) {
  int i = want_field(m, obj, key, BJ_STRING);
  if (i < 0) return -1;
  if (!str_is(m, i, want)) {
    report(kind, "%s of exchange %llu: %s is \"%s\", expected \"%s\"", m->where,
           (unsigned long long)seq, key, excerpt(m->s + m->t[i].start, m->t[i].len), want);
    return -1;
  }
  return 0;
}

/* Member key of obj is exactly the SDP field of (seq, dir), or "" when empty is set. */
static int want_sdp(msg_t *m, int obj, const char *key, uint64_t seq, dir_t dir, int empty) {
  int i = want_field(m, obj, key, BJ_STRING);
  if (i < 0) return -1;
  if (!empty) make_sdp_field(seq, dir, sdp_want);
  if (!bj_str_eq(m->t, i, m->s, sdp_want, empty ? 0 : sdp_len)) {
    report(ERR_PAYLOAD, "%s of exchange %llu: %s differs from the one sent (%u bytes, %zu sent)",
           m->where, (unsigned long long)seq, key, m->t[i].len, empty ? 0 : sdp_len);
    return -1;
  }
  return 0;
}

/* Member key of obj is an array of exactly the candidate of (seq, dir), or [] when empty. */
static int want_cands(msg_t *m, int obj, const char *key, uint64_t seq, dir_t dir, int empty) {
  int i = want_field(m, obj, key, BJ_ARRAY);
  if (i < 0) return -1;
  char cand[CAND_LEN];
  int cl = make_cand(seq, dir, cand);
  int e = m->t[i].size == (empty ? 0u : 1u) ? bj_elem(m->t, i, 0) : -1;
  if (e < 0 || (!empty && !bj_str_eq(m->t, e, m->s, cand, (size_t)cl))) {
    report(ERR_PAYLOAD, "%s of exchange %llu: %s is %s, expected [\"%s\"]", m->where,
           (unsigned long long)seq, key, excerpt(m->s + m->t[i].start, m->t[i].len),
           empty ? "" : cand);
    return -1;
  }
  return 0;
}

/* The exchange named by member key of obj (a string id of this process). */
static uint64_t want_xid(msg_t *m, int obj, const char *key) {
  int i = want_field(m, obj, key, BJ_STRING);
  if (i < 0) return 0;
  uint64_t seq = m->t[i].escaped ? 0 : parse_xid(m->s + m->t[i].start, m->t[i].len);
  if (seq == 0) {
    report(ERR_ID, "%s: %s \"%s\" is not an exchange of this generator", m->where, key,
           excerpt(m->s + m->t[i].start, m->t[i].len));
  }
  return seq;
}

/* {"ty":"offer","id":X,"offer_req":{"offer_sdp":S,"candidate":[C],"answer_domain":B,
 *  "offer_domain":A},"answer_resp":{"answer_sdp":"","candidate":[],"answer_domain":B}}
 * {"ty":"answer","id":X,"answer_resp":{"answer_sdp":S,"candidate":[C],"answer_domain":B},
 *  "offer_req":{"offer_sdp":"","candidate":[],"answer_domain":B,"offer_domain":A}} */
static void on_sig_push(peer_t *p, msg_t *m, int is_offer) {
  char an[48], bn[48];
  m->where = is_offer ? "offer push" : "answer push";
  if (want_object(m, 0, 4, "the frame") != 0) return;
  int oreq = want_field(m, 0, "offer_req", BJ_OBJECT);
  int aresp = want_field(m, 0, "answer_resp", BJ_OBJECT);
  if (oreq < 0 || aresp < 0 || want_object(m, oreq, 4, "offer_req") != 0 ||
      want_object(m, aresp, 3, "answer_resp") != 0)
    return;
  uint64_t seq = want_xid(m, 0, "id");
  if (seq == 0) return;
  xslot_t *x = claim(p, seq, is_offer ? XF_OFFER : XF_ANSWER, m->where);
  if (x == NULL) return;
  peer_name(peer_a(seq), an, sizeof(an));
  peer_name(peer_b(seq), bn, sizeof(bn));
  if (want_str(m, oreq, "answer_domain", bn, ERR_DOMAIN, seq) != 0 ||
      want_str(m, oreq, "offer_domain", an, ERR_DOMAIN, seq) != 0 ||
      want_str(m, aresp, "answer_domain", bn, ERR_DOMAIN, seq) != 0 ||
      want_sdp(m, oreq, "offer_sdp", seq, DIR_OFFER, !is_offer) != 0 ||
      want_cands(m, oreq, "candidate", seq, DIR_OFFER, !is_offer) != 0 ||
      want_sdp(m, aresp, "answer_sdp", seq, DIR_ANSWER, is_offer) != 0 ||
      want_cands(m, aresp, "candidate", seq, DIR_ANSWER, is_offer) != 0) {
    finish(x, 0);
    return;
  }
  if (is_offer) {
    offer_arrived(x);
    send_answer(p, seq);
  } else {
    answer_arrived(x);
    step_done(x);
  }
}

static void on_sig_text(peer_t *p, const char *s, size_t len) {
  msg_t m;
  if (msg_parse(&m, s, len, "WebSocket message") != 0) return;
  int ty = m.t[0].type == BJ_OBJECT ? bj_get(m.t, 0, s, "ty") : -1;
  if (ty >= 0 && m.t[ty].type == BJ_STRING && str_is(&m, ty, "offer")) {
    on_sig_push(p, &m, 1);
  } else if (ty >= 0 && m.t[ty].type == BJ_STRING && str_is(&m, ty, "answer")) {
    on_sig_push(p, &m, 0);
  } else {
    char name[48];
    peer_name(p, name, sizeof(name));
    report(ERR_UNEXPECTED, "%s received %s", name, excerpt(s, len));
    int id = m.t[0].type == BJ_OBJECT ? bj_get(m.t, 0, s, "id") : -1;
    uint64_t seq =
        id >= 0 && m.t[id].type == BJ_STRING ? parse_xid(s + m.t[id].start, m.t[id].len) : 0;
    if (seq != 0 && slot_of(seq)->seq == seq) finish(slot_of(seq), 0);
  }
}

/* {"type":"OFFER"|"ANSWER","src":FROM,"dst":TO,"payload":{"connectionId":X,"type":"media",
 *  "browser":"bench","sdp":{"type":"offer"|"answer","sdp":S},"candidates":[C]}} */
static void on_peerjs_text(peer_t *p, const char *s, size_t len) {
  msg_t m;
  char name[48];
  if (msg_parse(&m, s, len, "WebSocket message") != 0) return;
  int ty = m.t[0].type == BJ_OBJECT ? bj_get(m.t, 0, s, "type") : -1;
  int is_offer = ty >= 0 && m.t[ty].type == BJ_STRING && str_is(&m, ty, "OFFER");
  int is_answer = ty >= 0 && m.t[ty].type == BJ_STRING && str_is(&m, ty, "ANSWER");
  if (p->ws.state == CS_WAIT_OPEN) {
    if (m.t[0].type == BJ_OBJECT && m.t[0].size == 1 && ty >= 0 && str_is(&m, ty, "OPEN")) {
      p->ws.state = CS_OPEN;
      return;
    }
  }
  if (!is_offer && !is_answer) {
    peer_name(p, name, sizeof(name));
    report(ERR_UNEXPECTED, "%s received %s", name, excerpt(s, len));
    return;
  }
  m.where = is_offer ? "OFFER" : "ANSWER";
  if (want_object(&m, 0, 4, "the message") != 0) return;
  int pl = want_field(&m, 0, "payload", BJ_OBJECT);
  if (pl < 0 || want_object(&m, pl, 5, "payload") != 0) return;
  int sdp = want_field(&m, pl, "sdp", BJ_OBJECT);
  if (sdp < 0 || want_object(&m, sdp, 2, "payload.sdp") != 0) return;
  uint64_t seq = want_xid(&m, pl, "connectionId");
  if (seq == 0) return;
  xslot_t *x = claim(p, seq, is_offer ? XF_OFFER : XF_ANSWER, m.where);
  if (x == NULL) return;
  char an[48], bn[48];
  peer_name(peer_a(seq), an, sizeof(an));
  peer_name(peer_b(seq), bn, sizeof(bn));
  dir_t dir = is_offer ? DIR_OFFER : DIR_ANSWER;
  if (want_str(&m, 0, "src", is_offer ? an : bn, ERR_DOMAIN, seq) != 0 ||
      want_str(&m, 0, "dst", is_offer ? bn : an, ERR_DOMAIN, seq) != 0 ||
      want_str(&m, pl, "type", "media", ERR_FIELDS, seq) != 0 ||
      want_str(&m, pl, "browser", "bench", ERR_FIELDS, seq) != 0 ||
      want_str(&m, sdp, "type", is_offer ? "offer" : "answer", ERR_FIELDS, seq) != 0 ||
      want_sdp(&m, sdp, "sdp", seq, dir, 0) != 0 ||
      want_cands(&m, pl, "candidates", seq, dir, 0) != 0) {
    finish(x, 0);
    return;
  }
  if (is_offer) {
    offer_arrived(x);
    send_answer(p, seq);
  } else {
    answer_arrived(x);
    step_done(x);
  }
}

static void on_text(peer_t *p, const char *m, size_t len) {
  if (cfg.target == TGT_SIG)
    on_sig_text(p, m, len);
  else
    on_peerjs_text(p, m, len);
}

/* [src id][length][seq][O|A][SDP field]\n[candidate] */
static void on_floor_message(peer_t *p, const char *m, size_t len) {
  char name[48];
  peer_name(p, name, sizeof(name));
  if (len < 17 || (m[16] != 'O' && m[16] != 'A')) {
    report(ERR_FIELDS, "floor message of %zu bytes to %s: %s", len, name, excerpt(m, len));
    return;
  }
  uint64_t seq;
  uint32_t src;
  memcpy(&seq, m + 8, 8);
  memcpy(&src, m, 4);
  int is_offer = m[16] == 'O';
  xslot_t *x = claim(p, seq, is_offer ? XF_OFFER : XF_ANSWER, is_offer ? "offer" : "answer");
  if (x == NULL) return;
  uint32_t want_src = floor_id(is_offer ? peer_a(seq) : peer_b(seq));
  if (src != want_src) {
    report(ERR_DOMAIN, "floor message of exchange %llu from id %u, expected %u",
           (unsigned long long)seq, src, want_src);
    finish(x, 0);
    return;
  }
  size_t want_len = floor_body(seq, is_offer ? DIR_OFFER : DIR_ANSWER, sdp_want);
  if (len - 8 != want_len || memcmp(m + 8, sdp_want, want_len) != 0) {
    report(ERR_PAYLOAD, "floor message of exchange %llu: payload differs (%zu bytes, %zu sent)",
           (unsigned long long)seq, len - 8, want_len);
    finish(x, 0);
    return;
  }
  if (is_offer) {
    offer_arrived(x);
    send_answer(p, seq);
  } else {
    answer_arrived(x);
    step_done(x);
  }
}

static void registered(peer_t *p);

/* Appends a fragment of a text message; returns -1 past the message size limit. */
static int frag_add(conn_t *c, const char *pl, size_t n) {
  if (c->flen + n > (1u << 24)) return -1;
  c->frag = xrealloc(c->frag, c->flen + n + 1);
  memcpy(c->frag + c->flen, pl, n);
  c->flen += (uint32_t)n;
  return 0;
}

static void deliver_text(conn_t *c, const char *pl, size_t n) {
  int was_waiting = c->state == CS_WAIT_OPEN;
  on_text(c->peer, pl, n);
  if (was_waiting && c->state == CS_OPEN) registered(c->peer);
}

/* The server closed the WebSocket: an error, whose kind says whether auth refused the peer. */
static void on_close_frame(conn_t *c, const char *pl, size_t n) {
  char name[48];
  unsigned code = n >= 2 ? (unsigned)((uint8_t)pl[0] << 8 | (uint8_t)pl[1]) : 0;
  if ((code == 4503 || code == 1013) && n_retries < cfg.retries) { /* full, or try again */
    c->retry = 1;
    return;
  }
  peer_name(c->peer, name, sizeof(name));
  report(code == 4401 || code == 4403 ? ERR_REFUSED : ERR_CLOSED,
         "%s closed by the server with code %u (%s)", name, code,
         n > 2 ? excerpt(pl + 2, n - 2) : "no reason");
}

/* Frames from the server (unmasked). Returns the bytes consumed, or -1 to drop the connection. */
static ssize_t parse_frames(conn_t *c, const char *buf, size_t len) {
  size_t off = 0;
  while (len - off >= 2) {
    const uint8_t *h = (const uint8_t *)buf + off;
    unsigned op = h[0] & 0x0f, fin = h[0] & 0x80;
    uint64_t plen = h[1] & 0x7f;
    size_t hl = 2;
    if ((h[1] & 0x80) || (h[0] & 0x70)) return -1; /* servers do not mask; no extensions */
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
    switch (op) {
      case 0x0: /* continuation */
        if (!c->in_frag || frag_add(c, pl, (size_t)plen) != 0) return -1;
        if (fin) { /* detached first: delivering may close c, which frees c->frag */
          char *msg = c->frag;
          uint32_t n = c->flen;
          c->frag = NULL;
          c->flen = 0;
          c->in_frag = 0;
          deliver_text(c, msg, n);
          free(msg);
        }
        break;
      case 0x1:
        if (c->in_frag) return -1;
        if (fin) {
          deliver_text(c, pl, (size_t)plen);
        } else {
          c->in_frag = 1;
          if (frag_add(c, pl, (size_t)plen) != 0) return -1;
        }
        break;
      case 0x9: {
        if (!fin || plen > 125) return -1;
        n_pings++;
        const char *parts[1] = {pl};
        size_t lens[1] = {(size_t)plen};
        if (ws_send(c, 0xA, parts, lens, 1) == 0) n_pongs++;
        break;
      }
      case 0xA: break;
      case 0x8: on_close_frame(c, pl, (size_t)plen); return -1;
      default: { /* binary or reserved */
        char name[48];
        peer_name(c->peer, name, sizeof(name));
        report(ERR_UNEXPECTED, "%s received a frame with opcode %u", name, op);
        return -1;
      }
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
    if (plen > (1u << 24)) return -1;
    if (len - off < 8 + (size_t)plen) break;
    on_floor_message(c->peer, buf + off, 8 + (size_t)plen);
    off += 8 + (size_t)plen;
    if (c->state == CS_DEAD) return -1;
  }
  return (ssize_t)off;
}

/* The value of header `name` (case-insensitive) in the head [s, e), or NULL; -1 in *n if the
 * header is repeated. */
static const char *header(const char *s, const char *e, const char *name, size_t *n) {
  size_t nl = strlen(name);
  const char *found = NULL;
  const char *l = memchr(s, '\n', (size_t)(e - s));
  while (l != NULL && l + 1 < e) {
    const char *line = l + 1, *end = memchr(line, '\r', (size_t)(e - line));
    if (end == NULL) end = e;
    if ((size_t)(end - line) > nl && line[nl] == ':' && strncasecmp(line, name, nl) == 0) {
      if (found != NULL) {
        *n = (size_t)-1;
        return found;
      }
      found = line + nl + 1;
      while (found < end && (*found == ' ' || *found == '\t')) found++;
      *n = (size_t)(end - found);
    }
    l = memchr(line, '\n', (size_t)(e - line));
  }
  return found;
}

/* The reply to POST /offer: 200 and exactly {"code":0,"msg":"ok","data":{"id":<the id sent>}}. */
static void on_offer_reply(peer_t *a, int status, const char *body, size_t blen) {
  uint64_t seq = a->http_seq;
  xslot_t *x = slot_of(seq);
  char id[64];
  xid(seq, id, sizeof(id));
  if (status != 200) {
    report(ERR_HTTP_STATUS, "POST /offer of exchange %llu: status %d: %s", (unsigned long long)seq,
           status, excerpt(body, blen));
    if (x->seq == seq) finish(x, 0);
    return;
  }
  msg_t m;
  m.where = "POST /offer reply";
  m.s = body;
  m.n = bj_parse(body, blen, m.t, MAX_TOKS);
  int code = -1, msg = -1, data = -1, rid = -1;
  if (m.n > 0 && m.t[0].type == BJ_OBJECT && m.t[0].size == 3) {
    code = bj_get(m.t, 0, body, "code");
    msg = bj_get(m.t, 0, body, "msg");
    data = bj_get(m.t, 0, body, "data");
    if (data >= 0 && m.t[data].type == BJ_OBJECT && m.t[data].size == 1)
      rid = bj_get(m.t, data, body, "id");
  }
  if (code < 0 || msg < 0 || rid < 0 || m.t[code].type != BJ_NUMBER || m.t[code].len != 1 ||
      body[m.t[code].start] != '0' || !str_is(&m, msg, "ok") || !str_is(&m, rid, id)) {
    report(ERR_HTTP_BODY, "POST /offer of exchange %llu (id %s): reply %s", (unsigned long long)seq,
           id, excerpt(body, blen));
    if (x->seq == seq) finish(x, 0);
    return;
  }
  if (x->seq != seq || x->st != X_OPEN) return; /* failed or timed out: already counted */
  hist_add(&ph.reply, uv_hrtime() - x->sent_ns);
  x->flags |= XF_HTTP;
  step_done(x);
}

/* HTTP responses on A's offer connection: status line, headers, Content-Length body. */
static ssize_t parse_http(conn_t *c, const char *buf, size_t len) {
  size_t off = 0;
  peer_t *a = c->peer;
  while (off < len) {
    const char *s = buf + off;
    const char *e = memmem(s, len - off, "\r\n\r\n", 4);
    if (e == NULL) return len - off > MAX_HEAD ? -1 : (ssize_t)off;
    size_t hlen = (size_t)(e - s) + 4, vl = 0;
    if (hlen < 16 || memcmp(s, "HTTP/1.1 ", 9) != 0 || s[12] != ' ') return -1;
    int status = 0;
    for (int i = 9; i < 12; i++) {
      if (s[i] < '0' || s[i] > '9') return -1;
      status = status * 10 + (s[i] - '0');
    }
    const char *v = header(s, e + 2, "Content-Length", &vl);
    size_t te_len = 0;
    if (v == NULL || vl == (size_t)-1 || vl == 0 || vl > 9 ||
        header(s, e + 2, "Transfer-Encoding", &te_len) != NULL) {
      report(ERR_HTTP_BODY, "POST /offer reply without one Content-Length: %s", excerpt(s, hlen));
      return -1;
    }
    size_t clen = 0;
    for (size_t i = 0; i < vl; i++) {
      if (v[i] < '0' || v[i] > '9') return -1;
      clen = clen * 10 + (size_t)(v[i] - '0');
    }
    if (len - off < hlen + clen) break;
    off += hlen + clen;
    if (!a->http_busy) {
      report(ERR_UNEXPECTED, "an HTTP response that no request asked for: %s", excerpt(s, hlen));
      return -1;
    }
    a->http_busy = 0;
    on_offer_reply(a, status, s + hlen, clen);
    if (a->qlen > 0 && c->state == CS_OPEN) {
      uint64_t seq = a->q[a->qhead];
      a->qhead = (a->qhead + 1) % a->qcap;
      a->qlen--;
      http_post(a, seq);
      if (c->state == CS_DEAD) return -1; /* buf was c's and is gone */
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

static int conn_open(conn_t *c);

static void on_closed(uv_handle_t *h) {
  conn_t *c = h->data;
  n_closes++;
  if (c->retry) { /* the handle is free again: the same peer connects anew */
    c->retry = 0;
    conn_open(c);
  }
}

static void open_one_done(int ok);

static void conn_fail(conn_t *c) {
  if (c->state == CS_DEAD) return;
  uint8_t was = c->state;
  c->state = CS_DEAD;
  free(c->rbuf);
  c->rbuf = NULL;
  c->rlen = c->rcap = 0;
  free(c->frag);
  c->frag = NULL;
  c->flen = 0;
  /* A peer closed before its 101 (a full server closes at once): retried, like one refused
   * with 4503 (full) or 1013 (try again), while the budget lasts. */
  if (c->kind == CK_PEER && !c->peer->registered && was != CS_NEW && n_retries < cfg.retries)
    c->retry = 1;
  uv_close((uv_handle_t *)&c->tcp, on_closed);
  if (c->retry) {
    n_retries++;
    return; /* neither a drop nor a failure: on_closed opens it again */
  }
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
  char name[48], req_buf[512 + MAX_TOKEN];
  int n;
  switch (cfg.target) {
    case TGT_SIG:
    case TGT_PEERJS:
      peer_name(p, name, sizeof(name));
      if (cfg.target == TGT_PEERJS)
        n = snprintf(req_buf, sizeof(req_buf),
                     "GET /peerjs?key=peerjs&id=%s&token=t%u HTTP/1.1\r\n", name, p->idx);
      else if (tokens != NULL)
        n = snprintf(req_buf, sizeof(req_buf), "GET /ws/%s?access_token=%s HTTP/1.1\r\n", name,
                     tokens + token_off[p->idx]);
      else
        n = snprintf(req_buf, sizeof(req_buf), "GET /ws/%s HTTP/1.1\r\n", name);
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
  c->in_frag = 0;
  /* --port-b: the B peer of each pair (odd index) registers on the second server */
  const struct sockaddr_in *to =
      cfg.has_b && c->kind == CK_PEER && c->peer->idx < 2 * cfg.npairs && (c->peer->idx & 1)
          ? &cfg.server_b
          : &cfg.server;
  int rc = open_socket();
  if (rc >= 0) {
    int fd = rc;
    rc = uv_tcp_open(&c->tcp, fd);
    if (rc != 0) close(fd);
  }
  if (rc == 0) rc = uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)to, on_connect);
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
      "\"upgrades_per_s\":%.1f,\"retries\":%llu,",
      cfg.npeers, open_ok, open_fail, el, el > 0 ? open_ok / el : 0.0,
      (unsigned long long)n_retries);
  print_errs(&errs_all);
  printf("}\n");
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
    if (a->http == NULL) die("out of memory");
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
  if (p->registered) return; /* registered again after a retry: counted once */
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
    xslot_t *x = &ring[i];
    if (x->st == X_OPEN && x->seq >= ph.first_seq) {
      x->st = X_DONE;
      x->flags |= XF_TIMEDOUT;
      report(ERR_TIMEOUT,
             "exchange %llu not complete %.1f s after the phase (offer %s, answer %s%s)",
             (unsigned long long)x->seq, cfg.drain_s,
             x->flags & XF_OFFER ? "delivered" : "not delivered",
             x->flags & XF_ANSWER ? "delivered" : "not delivered",
             cfg.target != TGT_SIG ? ""
             : x->flags & XF_HTTP  ? ", POST /offer replied"
                                   : ", no POST /offer reply");
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
  printf(
      "{\"event\":\"phase\",\"mode\":\"%s\",\"rate\":%.1f,\"window\":%llu,\"duration_s\":%.3f,"
      "\"launched\":%llu,\"completed\":%llu,\"failed\":%llu,\"late\":%llu,"
      "\"achieved_per_s\":%.1f,\"queued_max\":%llu,\"cpu_s\":%.3f,\"drops\":%llu,",
      ph.closed ? "closed" : "open", ph.rate, (unsigned long long)ph.window, dur,
      (unsigned long long)ph.launched, (unsigned long long)ph.completed,
      (unsigned long long)ph.failed, (unsigned long long)ph.late,
      dur > 0 ? (double)(ph.closed ? ph.completed_in_window : ph.completed) / dur : 0.0,
      (unsigned long long)ph.queued_max, cpu, (unsigned long long)n_drops);
  print_errs(&ph.errs);
  putchar(',');
  hist_print("latency_us", &ph.lat);
  putchar(',');
  hist_print("service_us", &ph.svc);
  putchar(',');
  hist_print("send_lag_us", &ph.lag);
  putchar(',');
  hist_print("offer_leg_us", &ph.leg_offer);
  putchar(',');
  hist_print("answer_leg_us", &ph.leg_answer);
  putchar(',');
  hist_print("reply_us", &ph.reply);
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
  /* a timer left from the last phase must not hold back this one */
  timerfd_settime(tfd, 0, &off, NULL);
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
      "\"heartbeats\":%llu,\"late\":%llu,\"retries\":%llu,",
      cfg.npeers, open, (unsigned long long)n_drops, (unsigned long long)n_pings,
      (unsigned long long)n_pongs, (unsigned long long)n_heartbeats, (unsigned long long)n_late,
      (unsigned long long)n_retries);
  print_errs(&errs_all);
  printf("}\n");
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
  printf("{\"event\":\"error\",\"msg\":\"bad command: ");
  print_json_text(line);
  printf("\"}\n");
  fflush(stdout);
}

static void on_stdin_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  (void)suggested;
  static char b[1024];
  *buf = uv_buf_init(b, sizeof(b));
}

static void on_stdin(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
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

/* The SDP field: base64 of an SDP text whose second line holds the exchange's nonce (left as
 * zeros here; make_sdp_field writes it), padded to sdp_bytes characters. */
static void make_sdp(void) {
  size_t raw_len = cfg.sdp_bytes / 4 * 3;
  char *raw = xmalloc(raw_len + 1);
  static const char head[] = NONCE_PREFIX
      "0000000000000000\r\n"
      "o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";
  size_t n = sizeof(head) - 1 < raw_len ? sizeof(head) - 1 : raw_len;
  memcpy(raw, head, n);
  while (n < raw_len) {
    char line[80];
    int l = snprintf(line, sizeof(line), "a=x-bench-padding:%016llx\r\n",
                     (unsigned long long)xorshift());
    size_t take = (size_t)l < raw_len - n ? (size_t)l : raw_len - n;
    memcpy(raw + n, line, take);
    n += take;
  }
  sdp_tmpl = xmalloc(raw_len / 3 * 4 + 8);
  sdp_len = (size_t)EVP_EncodeBlock((unsigned char *)sdp_tmpl, (unsigned char *)raw, (int)raw_len);
  /* sized for the floor's body too: [seq][kind][SDP field]\n[candidate] */
  sdp_send = xmalloc(sdp_len + 16 + CAND_LEN);
  sdp_want = xmalloc(sdp_len + 16 + CAND_LEN);
  free(raw);
}

static int is_token_char(char c) { /* base64url and the dots of a JWS compact serialization */
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.';
}

/* --tokens FILE: exactly one token per peer, line i for peer i, each of base64url and dots (so
 * it goes into the query string as it is) and at most MAX_TOKEN bytes. Read whole before any
 * peer is opened, so that nothing timed waits for the file. */
static void read_tokens(const char *path) {
  FILE *f = fopen(path, "rb");
  struct stat st;
  if (f == NULL || fstat(fileno(f), &st) != 0) {
    fprintf(stderr, "loadgen: --tokens %s: cannot open the file\n", path);
    exit(1);
  }
  if (st.st_size <= 0 || (uint64_t)st.st_size > (uint64_t)cfg.npeers * (MAX_TOKEN + 1)) {
    fprintf(stderr, "loadgen: --tokens %s: %lld bytes: empty, or more than %u tokens can be\n",
            path, (long long)st.st_size, cfg.npeers);
    exit(1);
  }
  size_t len = (size_t)st.st_size;
  tokens = xmalloc(len + 1);
  if (fread(tokens, 1, len, f) != len) die("--tokens: cannot read the file");
  fclose(f);
  tokens[len] = '\0';
  token_off = xmalloc(cfg.npeers * sizeof(*token_off));
  uint32_t n = 0;
  size_t start = 0;
  for (size_t i = 0; i <= len; i++) {
    if (i < len && tokens[i] != '\n') {
      if (is_token_char(tokens[i])) continue;
      fprintf(stderr, "loadgen: --tokens %s:%u: byte 0x%02x is not base64url or a dot\n", path,
              n + 1, (unsigned char)tokens[i]);
      exit(1);
    }
    if (i == len && start == len) break; /* the file ends with a newline */
    if (i == start || i - start > MAX_TOKEN || n == cfg.npeers) {
      fprintf(stderr, "loadgen: --tokens %s:%u: %s\n", path, n + 1,
              n == cfg.npeers ? "more lines than --peers: one token per peer"
              : i == start    ? "an empty line: one token per peer"
                              : "a token longer than 8,192 bytes");
      exit(1);
    }
    tokens[i] = '\0';
    token_off[n++] = (uint32_t)start;
    start = i + 1;
  }
  if (n != cfg.npeers) {
    fprintf(stderr, "loadgen: --tokens %s: %u lines for %u peers: one token per peer\n", path, n,
            cfg.npeers);
    exit(1);
  }
}

static void usage(void) {
  fprintf(
      stderr,
      "usage: loadgen --target sig|peerjs|floor --port PORT [--host 127.0.0.1] [--src 127.0.0.2]\n"
      "               --peers N [--pairs K] [--prefix NAME] [--id-base N] [--window W]\n"
      "               [--sdp-bytes 4096] [--heartbeat-s 20] [--drain-s 3] [--trace FILE]\n"
      "               [--tokens FILE] [--port-b PORT] [--retries N]\n"
      "The first 2K peers form K offer/answer pairs; the rest are idle. With --tokens (sig\n"
      "only), peer i (named PREFIX-i) registers with the token on line i of FILE. With\n"
      "--port-b (sig only), the B peer of each pair registers on that port (another node of a\n"
      "cluster) and the A peers, their POST /offer and the idle peers on --port. With\n"
      "--retries N, a registration closed before its 101 or with 4503 (full) or 1013 (try\n"
      "again) connects anew, N times in all (a worker of a shared port may be full while\n"
      "another has room). Commands on stdin:\n"
      "rate R D | closed W D [N] | stats | quit\n");
  exit(2);
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1", *src = "127.0.0.1", *tokens_path = NULL;
  int port = 0, port_b = 0;
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
    else if (strcmp(k, "--port-b") == 0)
      port_b = atoi(v);
    else if (strcmp(k, "--retries") == 0)
      cfg.retries = (uint32_t)strtoul(v, NULL, 10);
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
    else if (strcmp(k, "--tokens") == 0)
      tokens_path = v;
    else if (strcmp(k, "--trace") == 0) {
      trace = fopen(v, "w");
      if (trace == NULL) die("--trace: cannot open the file");
    } else
      usage();
  }
  /* The prefix begins every domain and exchange id: it must be of the protocol's alphabet. */
  for (const char *c = cfg.prefix; *c != '\0'; c++)
    if (strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~", *c) == NULL)
      usage();
  if (port <= 0 || port > 65535 || cfg.npeers == 0 || cfg.npeers < 2 * cfg.npairs ||
      cfg.window == 0 || cfg.sdp_bytes < 64 || cfg.sdp_bytes > 65536 || cfg.prefix[0] == '\0' ||
      (tokens_path != NULL && cfg.target != TGT_SIG) || port_b < 0 || port_b > 65535 ||
      (port_b != 0 && cfg.target != TGT_SIG))
    usage();
  if (uv_ip4_addr(host, port, &cfg.server) != 0 || uv_ip4_addr(src, 0, &cfg.src) != 0 ||
      uv_ip4_addr(host, port_b, &cfg.server_b) != 0)
    usage();
  cfg.has_b = port_b != 0;
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
  secret = splitmix(xorshift());

  make_sdp();
  if (tokens_path != NULL) read_tokens(tokens_path);
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
