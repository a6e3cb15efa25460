/* Unit tests for the router across nodes (sig_relay.c, and what sig_router.c sends to peers on
 * other nodes): two routers, "n1" and "n2", over a fake cluster that records every claim,
 * release, route and send and completes nothing by itself. The test runs each callback when it
 * chooses (always after the call returned, as sig_cluster does) and carries each message to the
 * router it names. Frames to peers are recorded by a fake transport as in test_router.c and
 * compared whole; node messages are decoded with sig_nodemsg_decode and compared field by
 * field. Peers on n1 use conns 1-9, peers on n2 conns 11-19. */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
/* cmocka needs the headers above first */
#include <cmocka.h>

#include "sig_log.h"
#include "sig_msg.h"
#include "sig_nodemsg.h"
#include "sig_router.h"
#include "sig_util.h"

#define TIMEOUT_MS 2000 /* the cluster's request_timeout_ms */

#define SDP "dj0wDQpvPS0gMSAxIElOIElQNCAxMjcuMC4wLjENCg=="
#define ASDP "dj0wDQo="
/* clang-format off */
#define OFFER_BODY(ad, od, extra)                                        \
  "{\"offer_sdp\":\"" SDP "\",\"candidate\":[\"c1\"],"                   \
  "\"answer_domain\":\"" ad "\",\"offer_domain\":\"" od "\"" extra "}"
#define WS_OFFER(id, ad)                                                 \
  "{\"ty\":\"offer\",\"id\":\"" id "\",\"offer_req\":{\"offer_sdp\":\""  \
  SDP "\",\"candidate\":[\"c1\"],\"answer_domain\":\"" ad "\"}}"
#define OFFER_PUSH(id, ad, od)                                           \
  "{\"ty\":\"offer\",\"id\":\"" id "\","                                 \
  "\"offer_req\":{\"offer_sdp\":\"" SDP "\",\"candidate\":[\"c1\"],"     \
  "\"answer_domain\":\"" ad "\",\"offer_domain\":\"" od "\"},"           \
  "\"answer_resp\":{\"answer_sdp\":\"\",\"candidate\":[],"               \
  "\"answer_domain\":\"" ad "\"}}"
#define ANSWER_PUSH(id, ad, od)                                          \
  "{\"ty\":\"answer\",\"id\":\"" id "\","                                \
  "\"answer_resp\":{\"answer_sdp\":\"" ASDP "\",\"candidate\":[\"c2\"]," \
  "\"answer_domain\":\"" ad "\"},"                                       \
  "\"offer_req\":{\"offer_sdp\":\"\",\"candidate\":[],"                  \
  "\"answer_domain\":\"" ad "\",\"offer_domain\":\"" od "\"}}"
/* clang-format on */
#define WS_ANSWER(id)                                                            \
  "{\"ty\":\"answer\",\"id\":\"" id "\",\"answer_resp\":{\"answer_sdp\":\"" ASDP \
  "\",\"candidate\":[\"c2\"]}}"
#define CAND(id, from, list) \
  "{\"ty\":\"candidate\",\"id\":\"" id "\",\"from\":\"" from "\",\"candidate\":[" list "]}"
#define BYE(id, from, reason) \
  "{\"ty\":\"bye\",\"id\":\"" id "\",\"from\":\"" from "\",\"reason\":\"" reason "\"}"
#define ERR(status, msg, id) \
  "{\"ty\":\"error\",\"status\":" #status ",\"msg\":\"" msg "\",\"id\":" id "}"

/* ---- the fake transport (both routers): frames and closes, in order */

#define CONN(n) ((void *)(uintptr_t)(n))

typedef struct {
  char kind; /* 's'end or 'c'lose */
  void *conn;
  char *data; /* the frame, or the close reason */
  uint16_t code;
} event_t;

#define MAX_EVENTS 256
static event_t events[MAX_EVENTS];
static size_t nevents, next_event;
static uint64_t clock_ms;

static void record(char kind, void *conn, const char *data, size_t len, uint16_t code) {
  assert_true(nevents < MAX_EVENTS);
  event_t *e = &events[nevents++];
  e->kind = kind;
  e->conn = conn;
  e->data = malloc(len + 1);
  memcpy(e->data, data, len);
  e->data[len] = '\0';
  e->code = code;
}

static void fake_send(void *conn, const char *data, size_t len) {
  record('s', conn, data, len, 0);
}

static void fake_close(void *conn, uint16_t code, const char *reason) {
  record('c', conn, reason, strlen(reason), code);
}

static uint64_t fake_now(void *ctx) {
  return *(uint64_t *)ctx;
}

static void dump_events(void) {
  for (size_t i = next_event; i < nevents; i++)
    print_error("  event %zu: %c conn=%zu code=%u %s\n", i, events[i].kind,
                (size_t)(uintptr_t)events[i].conn, events[i].code, events[i].data);
}

static void expect_frame_at(int conn, const char *frame, int line) {
  event_t *e = next_event < nevents ? &events[next_event] : NULL;
  if (e == NULL || e->kind != 's' || e->conn != CONN(conn) || strcmp(e->data, frame) != 0) {
    print_error("line %d: expected a frame to %d:\n  %s\n", line, conn, frame);
    dump_events();
    fail();
  }
  next_event++;
}

static void expect_close_at(int conn, uint16_t code, const char *reason, int line) {
  event_t *e = next_event < nevents ? &events[next_event] : NULL;
  if (e == NULL || e->kind != 'c' || e->conn != CONN(conn) || e->code != code ||
      strcmp(e->data, reason) != 0) {
    print_error("line %d: expected close of %d with %u %s\n", line, conn, code, reason);
    dump_events();
    fail();
  }
  next_event++;
}

#define expect_frame(conn, frame) expect_frame_at((conn), (frame), __LINE__)
#define expect_close(conn, code, reason) expect_close_at((conn), (code), (reason), __LINE__)

/* ---- the fake cluster: every call recorded, in order; nothing completes by itself */

enum { N1, N2, NNODES };

typedef struct {
  const char *name;
  sig_router_t *r;
  int up;   /* what up() says */
  int away; /* claim, route and send fail at once */
} node_t;

static node_t nodes[NNODES];

typedef struct {
  char kind; /* 'c'laim, 'r'elease, 'o' route, 's'end */
  int from;  /* N1 or N2 */
  char *domain, *also, *node;
  uint64_t reg;
  int mode;
  char *msg;
  size_t len;
  void (*claim_done)(void *arg, int rc);
  void (*route_done)(void *arg, int rc, const char *node);
  void *arg;
  int finished;
} call_t;

#define MAX_CALLS 256
static call_t calls[MAX_CALLS];
static size_t ncalls, next_call;

static const char *const call_names[] = {
    ['c'] = "claim", ['r'] = "release", ['o'] = "route", ['s'] = "send"};

static char *dup_or_null(const char *s) {
  return s != NULL ? strdup(s) : NULL;
}

static call_t *new_call(char kind, void *ctx) {
  assert_true(ncalls < MAX_CALLS);
  call_t *c = &calls[ncalls++];
  memset(c, 0, sizeof *c);
  c->kind = kind;
  c->from = (int)((node_t *)ctx - nodes);
  return c;
}

static int fake_up(void *ctx) {
  return ((node_t *)ctx)->up;
}

static int fake_claim(void *ctx, const char *domain, uint64_t reg, int mode,
                      void (*done)(void *arg, int rc), void *arg) {
  if (((node_t *)ctx)->away) return -1;
  call_t *c = new_call('c', ctx);
  c->domain = strdup(domain);
  c->reg = reg;
  c->mode = mode;
  c->claim_done = done;
  c->arg = arg;
  return 0;
}

static void fake_release(void *ctx, const char *domain, uint64_t reg) {
  call_t *c = new_call('r', ctx);
  c->domain = strdup(domain);
  c->reg = reg;
  c->finished = 1;
}

static int fake_route(void *ctx, const char *domain, const char *also, const char *msg, size_t len,
                      void (*done)(void *arg, int rc, const char *node), void *arg) {
  if (((node_t *)ctx)->away) return -1;
  call_t *c = new_call('o', ctx);
  c->domain = strdup(domain);
  c->also = dup_or_null(also);
  c->msg = malloc(len);
  memcpy(c->msg, msg, len);
  c->len = len;
  c->route_done = done;
  c->arg = arg;
  c->finished = done == NULL;
  return 0;
}

static int fake_publish(void *ctx, const char *node, const char *msg, size_t len) {
  if (((node_t *)ctx)->away) return -1;
  call_t *c = new_call('s', ctx);
  c->node = strdup(node);
  c->msg = malloc(len);
  memcpy(c->msg, msg, len);
  c->len = len;
  c->finished = 1;
  return 0;
}

static void dump_calls(void) {
  for (size_t i = next_call; i < ncalls; i++) {
    const call_t *c = &calls[i];
    print_error("  call %zu: %s from %s domain=%s also=%s node=%s reg=%" PRIu64 " %.*s\n", i,
                call_names[(int)c->kind], nodes[c->from].name, c->domain, c->also, c->node, c->reg,
                (int)c->len, c->msg != NULL ? c->msg : "");
  }
}

static call_t *take_call_at(char kind, int from, int line) {
  call_t *c = next_call < ncalls ? &calls[next_call] : NULL;
  if (c == NULL || c->kind != kind || c->from != from) {
    print_error("line %d: expected a %s from %s\n", line, call_names[(int)kind], nodes[from].name);
    dump_calls();
    fail();
  }
  next_call++;
  return c;
}

static int64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The first field in which two node messages differ, or NULL. */
static const char *differs(const sig_nodemsg_t *a, const sig_nodemsg_t *b) {
  if (a->op != b->op) return "op";
  if (strcmp(a->node, b->node) != 0) return "n";
  if (a->rid != b->rid) return "rid";
  if (a->deadline_ms != b->deadline_ms) return "dl";
  if (strcmp(a->id, b->id) != 0) return "x";
  if (strcmp(a->a, b->a) != 0) return "a";
  if (strcmp(a->b, b->b) != 0) return "b";
  if (strcmp(a->to, b->to) != 0) return "to";
  if (a->reg != b->reg) return "reg";
  if (a->status != b->status) return "st";
  if (strcmp(a->msg, b->msg) != 0) return "m";
  if (a->f_len != b->f_len || (a->f_len != 0 && memcmp(a->f, b->f, a->f_len) != 0)) return "f";
  return NULL;
}

/* The call's message must decode to want (and frame f, or none). A request's deadline must be
 * TIMEOUT_MS from now on the wall clock, give or take the test's own time. */
static void check_msg(const call_t *c, const sig_nodemsg_t *want, const char *f, int line) {
  sig_nodemsg_t got, w = *want;
  if (f != NULL) w.f = f, w.f_len = strlen(f);
  if (sig_nodemsg_decode(&got, c->msg, c->len) != 0) {
    print_error("line %d: undecodable node message %.*s\n", line, (int)c->len, c->msg);
    fail();
  }
  if (w.op == SIG_NODE_FWD || w.op == SIG_NODE_OFFER) {
    int64_t now = wall_ms();
    if (got.deadline_ms > now + TIMEOUT_MS || got.deadline_ms < now + TIMEOUT_MS - 5000) {
      print_error("line %d: deadline %" PRId64 " is not %d ms from %" PRId64 "\n", line,
                  got.deadline_ms, TIMEOUT_MS, now);
      fail();
    }
    w.deadline_ms = got.deadline_ms;
  }
  const char *field = differs(&got, &w);
  if (field != NULL) {
    print_error("line %d: node message %.*s\n  field %s is not as expected (op %s)\n", line,
                (int)c->len, c->msg, field, sig_nodemsg_op_name(w.op));
    fail();
  }
}

#define NM(...) (&(const sig_nodemsg_t){__VA_ARGS__})

static call_t *expect_claim_at(int from, const char *domain, uint64_t reg, int mode, int line) {
  call_t *c = take_call_at('c', from, line);
  if (strcmp(c->domain, domain) != 0 || c->reg != reg || c->mode != mode) {
    print_error("line %d: claim of %s reg %" PRIu64 " mode %d, want %s reg %" PRIu64 " mode %d\n",
                line, c->domain, c->reg, c->mode, domain, reg, mode);
    fail();
  }
  return c;
}

static void expect_release_at(int from, const char *domain, uint64_t reg, int line) {
  call_t *c = take_call_at('r', from, line);
  if (strcmp(c->domain, domain) != 0 || c->reg != reg) {
    print_error("line %d: release of %s reg %" PRIu64 ", want %s reg %" PRIu64 "\n", line,
                c->domain, c->reg, domain, reg);
    fail();
  }
}

static call_t *expect_route_at(int from, const char *domain, const char *also,
                               const sig_nodemsg_t *want, const char *f, int line) {
  call_t *c = take_call_at('o', from, line);
  if (strcmp(c->domain, domain) != 0 || (c->also == NULL) != (also == NULL) ||
      (also != NULL && strcmp(c->also, also) != 0)) {
    print_error("line %d: route to %s also %s, want %s also %s\n", line, c->domain, c->also, domain,
                also);
    fail();
  }
  check_msg(c, want, f, line);
  return c;
}

static call_t *expect_publish_at(int from, const char *node, const sig_nodemsg_t *want,
                                 const char *f, int line) {
  call_t *c = take_call_at('s', from, line);
  if (strcmp(c->node, node) != 0) {
    print_error("line %d: sent to node %s, want %s\n", line, c->node, node);
    fail();
  }
  check_msg(c, want, f, line);
  return c;
}

#define expect_claim(from, domain, reg, mode) \
  expect_claim_at((from), (domain), (reg), (mode), __LINE__)
#define expect_release(from, domain, reg) expect_release_at((from), (domain), (reg), __LINE__)
#define expect_route(from, domain, also, want, f) \
  expect_route_at((from), (domain), (also), (want), (f), __LINE__)
#define expect_publish(from, node, want, f) expect_publish_at((from), (node), (want), (f), __LINE__)

static void expect_quiet_at(int line) {
  if (next_event != nevents || next_call != ncalls) {
    print_error("line %d: unexpected frames or calls:\n", line);
    dump_events();
    dump_calls();
    fail();
  }
}
#define expect_quiet() expect_quiet_at(__LINE__)

static void finish_claim(call_t *c, int rc) {
  assert_int_equal(c->kind, 'c');
  assert_false(c->finished);
  c->finished = 1;
  c->claim_done(c->arg, rc);
}

static void finish_route(call_t *c, int rc, const char *node) {
  assert_int_equal(c->kind, 'o');
  assert_false(c->finished);
  c->finished = 1;
  c->route_done(c->arg, rc, node);
}

/* The message of a route or send reaches node `to`. */
static void deliver(const call_t *c, int to) {
  sig_router_node_message(nodes[to].r, c->msg, c->len);
}

/* A message written by hand reaches node `to`. */
static void deliver_text(int to, const char *text) {
  sig_router_node_message(nodes[to].r, text, strlen(text));
}

/* ---- the fixture */

static sig_router_peer_t *peers[20]; /* by conn */
static uint64_t regs[20];            /* by conn: the registration's number */

static sig_router_limits_t default_limits(void) {
  sig_router_limits_t l = {.reject_duplicates = 0,
                           .max_domains = 16,
                           .max_pending_offers = 4,
                           .max_exchanges_per_peer = 16,
                           .answer_timeout_ms = 30000};
  return l;
}

static int setup_with(const sig_router_limits_t *l) {
  static const char *const names[NNODES] = {"n1", "n2"};
  sig_router_transport_t t = {fake_send, fake_close, fake_now, &clock_ms, NULL};
  clock_ms = 1000;
  nevents = next_event = ncalls = next_call = 0;
  memset(peers, 0, sizeof peers);
  memset(regs, 0, sizeof regs);
  for (int i = 0; i < NNODES; i++) {
    nodes[i] = (node_t){.name = names[i], .up = 1};
    nodes[i].r = sig_router_new(&t, l);
    sig_router_cluster_t c = {.ctx = &nodes[i],
                              .self = names[i],
                              .up = fake_up,
                              .claim = fake_claim,
                              .release = fake_release,
                              .route = fake_route,
                              .send = fake_publish,
                              .request_timeout_ms = TIMEOUT_MS};
    sig_router_set_cluster(nodes[i].r, &c);
  }
  return 0;
}

static int setup(void **state) {
  sig_router_limits_t l = default_limits();
  (void)state;
  return setup_with(&l);
}

static int setup_reject(void **state) {
  sig_router_limits_t l = default_limits();
  (void)state;
  l.reject_duplicates = 1;
  return setup_with(&l);
}

static int setup_one_exchange(void **state) {
  sig_router_limits_t l = default_limits();
  (void)state;
  l.max_exchanges_per_peer = 1;
  return setup_with(&l);
}

/* As sig_cluster_free does, every callback still owed runs (unavailable) before the routers go. */
static int teardown(void **state) {
  (void)state;
  for (size_t i = 0; i < ncalls; i++) {
    call_t *c = &calls[i];
    if (c->finished) continue;
    c->finished = 1;
    if (c->kind == 'c') c->claim_done(c->arg, -1);
    if (c->kind == 'o') c->route_done(c->arg, -1, NULL);
  }
  for (int i = 0; i < NNODES; i++) sig_router_free(nodes[i].r);
  for (size_t i = 0; i < ncalls; i++) {
    free(calls[i].domain);
    free(calls[i].also);
    free(calls[i].node);
    free(calls[i].msg);
  }
  for (size_t i = 0; i < nevents; i++) free(events[i].data);
  return 0;
}

/* ---- registering, offering, messages */

static sig_router_t *router_of(int conn) {
  return nodes[conn < 10 ? N1 : N2].r;
}

typedef struct {
  int calls;
  sig_router_peer_t *p;
  sig_refusal_t why;
} registered_t;

static void on_registered(void *arg, sig_router_peer_t *p, const sig_refusal_t *why) {
  registered_t *res = arg;
  res->calls++;
  res->p = p;
  if (why != NULL) res->why = *why;
}

/* sig_router_register_async for domain on conn: its return value. */
static int reg_async(const char *domain, int conn, registered_t *res, sig_router_wait_t **wait,
                     sig_refusal_t *why) {
  sig_router_peer_t *p = NULL;
  memset(res, 0, sizeof *res);
  int rc = sig_router_register_async(router_of(conn), domain, strlen(domain), CONN(conn), NULL, &p,
                                     why, on_registered, res, wait);
  if (rc == 0) res->p = p;
  return rc;
}

/* Registers domain on conn; its node's claim is won. */
static sig_router_peer_t *reg_at(const char *domain, int conn, int line) {
  registered_t res;
  sig_router_wait_t *wait = NULL;
  sig_refusal_t why;
  int node = conn < 10 ? N1 : N2;
  assert_int_equal(reg_async(domain, conn, &res, &wait, &why), SIG_EINPROGRESS);
  call_t *c = take_call_at('c', node, line);
  assert_string_equal(c->domain, domain);
  assert_int_equal(res.calls, 0);
  finish_claim(c, 0);
  assert_int_equal(res.calls, 1);
  assert_non_null(res.p);
  peers[conn] = res.p;
  regs[conn] = c->reg;
  return res.p;
}
#define reg(domain, conn) reg_at((domain), (conn), __LINE__)

static void ws(int conn, const char *msg) {
  sig_router_on_message(router_of(conn), peers[conn], msg, strlen(msg));
}

typedef struct {
  int calls, status;
  char msg[SIG_MSG_ERR_MAX];
  char id[SIG_MSG_ID_MAX + 1];
} offered_t;

static void on_offered(void *arg, int status, const char *msg, const char *id) {
  offered_t *res = arg;
  res->calls++;
  res->status = status;
  snprintf(res->msg, sizeof res->msg, "%s", msg != NULL ? msg : "(null)");
  snprintf(res->id, sizeof res->id, "%s", id != NULL ? id : "(null)");
}

/* sig_router_offer_async on node with body: its return value (id_out, why or res filled). */
static int post(int node, const char *body, offered_t *res, char id_out[SIG_MSG_ID_MAX + 1],
                sig_refusal_t *why) {
  sig_msg_t m;
  char err[SIG_MSG_ERR_MAX];
  sig_router_wait_t *wait = NULL;
  memset(res, 0, sizeof *res);
  id_out[0] = '\0';
  assert_int_equal(sig_msg_decode_offer_body(&m, body, strlen(body), err, sizeof err), 0);
  int rc = sig_router_offer_async(nodes[node].r, &m, body, strlen(body), id_out, why, on_offered,
                                  res, &wait);
  if (rc == SIG_EINPROGRESS) assert_non_null(wait);
  sig_msg_free(&m);
  return rc;
}

static void expect_offered_at(const offered_t *res, int status, const char *msg, const char *id,
                              int line) {
  if (res->calls != 1 || res->status != status || strcmp(res->msg, msg) != 0 ||
      strcmp(res->id, id) != 0) {
    print_error("line %d: offer completed %d times: %d '%s' id %s; want %d '%s' id %s\n", line,
                res->calls, res->status, res->msg, res->id, status, msg, id);
    fail();
  }
}
#define expect_offered(res, status, msg, id) \
  expect_offered_at((res), (status), (msg), (id), __LINE__)

/* A on n1 (conn 1) and B on n2 (conn 11). */
static void reg_ab(void) {
  reg("A", 1);
  reg("B", 11);
}

/* m with exchange id `id` (for ids known only at run time). */
static sig_nodemsg_t with_id(const sig_nodemsg_t *m, const char *id) {
  sig_nodemsg_t out = *m;
  snprintf(out.id, sizeof out.id, "%s", id);
  return out;
}

/* A (n1, conn 1) offers to B over its WebSocket with id, as n1's request rid: n1 routes it to
 * B's node. Returns the route, not yet completed. */
static call_t *offer_ab_at(const char *id, uint64_t rid, int line) {
  char msg[512], push[1024];
  snprintf(msg, sizeof msg, WS_OFFER("%s", "B"), id);
  snprintf(push, sizeof push, OFFER_PUSH("%s", "B", "A"), id);
  ws(1, msg);
  sig_nodemsg_t want =
      with_id(NM(.op = SIG_NODE_OFFER, .node = "n1", .rid = rid, .a = "A", .b = "B"), id);
  call_t *c = expect_route_at(N1, "B", NULL, &want, push, line);
  expect_quiet_at(line);
  return c;
}
#define offer_ab(id, rid) offer_ab_at((id), (rid), __LINE__)

/* The route of an offer from A finds n2, and the offer reaches B (conn 11). Returns n2's reply,
 * not yet delivered. */
static call_t *reach_b_at(call_t *route, const char *id, uint64_t rid, int line) {
  char push[1024];
  snprintf(push, sizeof push, OFFER_PUSH("%s", "B", "A"), id);
  finish_route(route, 1, "n2");
  expect_quiet_at(line);
  deliver(route, N2);
  expect_frame_at(11, push, line);
  sig_nodemsg_t want =
      with_id(NM(.op = SIG_NODE_RE, .node = "n2", .rid = rid, .status = 200, .msg = "ok"), id);
  call_t *re = expect_publish_at(N2, "n1", &want, NULL, line);
  expect_quiet_at(line);
  return re;
}
#define reach_b(route, id, rid) reach_b_at((route), (id), (rid), __LINE__)

/* An answered exchange between A (n1) and B (n2): A offers with id (n1's request rid), B
 * answers, and the answer reaches A. */
static void open_ab_at(const char *id, uint64_t rid, int line) {
  char msg[512], push[1024];
  deliver(reach_b_at(offer_ab_at(id, rid, line), id, rid, line), N1);
  expect_quiet_at(line); /* success is silent for a WebSocket offer */
  snprintf(msg, sizeof msg, WS_ANSWER("%s"), id);
  ws(11, msg);
  snprintf(push, sizeof push, ANSWER_PUSH("%s", "B", "A"), id);
  sig_nodemsg_t want = with_id(NM(.op = SIG_NODE_ANS, .node = "n2", .a = "A", .b = "B"), id);
  deliver(expect_publish_at(N2, "n1", &want, push, line), N1);
  expect_frame_at(1, push, line);
  expect_quiet_at(line);
}
#define open_ab(id, rid) open_ab_at((id), (rid), __LINE__)

static void add_home(void *arg, const char *node) {
  char *out = arg;
  if (out[0] != '\0') strcat(out, ",");
  strcat(out, node);
}

/* The nodes `node` has exchanges with, sorted, comma-separated (two at most here). */
static const char *homes(int node) {
  static char out[256];
  char a[128] = "", b[128] = "";
  out[0] = '\0';
  sig_router_each_home(nodes[node].r, add_home, out);
  char *comma = strchr(out, ',');
  if (comma == NULL) return out;
  snprintf(a, sizeof a, "%.*s", (int)(comma - out), out);
  snprintf(b, sizeof b, "%s", comma + 1);
  snprintf(out, sizeof out, "%s,%s", strcmp(a, b) < 0 ? a : b, strcmp(a, b) < 0 ? b : a);
  return out;
}

static uint64_t exchanges(int node) {
  return sig_router_exchanges(nodes[node].r);
}

static uint64_t domains(int node) {
  return sig_router_domains(nodes[node].r);
}

/* ---- registration */

static void test_register_claim_won(void **state) {
  static registered_t res;
  sig_router_wait_t *wait = NULL;
  sig_refusal_t why;
  (void)state;
  assert_int_equal(reg_async("A", 1, &res, &wait, &why), SIG_EINPROGRESS);
  assert_non_null(wait);
  call_t *c = expect_claim(N1, "A", 1, SIG_CLAIM_REPLACE);
  expect_quiet();
  assert_int_equal(domains(N1), 0); /* not until the claim is won */
  finish_claim(c, 0);
  assert_int_equal(res.calls, 1);
  assert_non_null(res.p);
  assert_string_equal(sig_router_peer_domain(res.p), "A");
  assert_int_equal(domains(N1), 1);
  expect_quiet();
  /* each registration has its own number, which its release names */
  sig_router_peer_t *c2 = reg("C", 2);
  assert_int_equal(regs[2], 2);
  sig_router_unregister(nodes[N1].r, res.p);
  expect_release(N1, "A", 1);
  sig_router_unregister(nodes[N1].r, c2);
  expect_release(N1, "C", 2);
  expect_quiet();
  assert_int_equal(domains(N1), 0);
}

static void test_register_reject(void **state) {
  static registered_t res;
  sig_router_wait_t *wait = NULL;
  sig_refusal_t why;
  (void)state;
  /* taken on another node */
  assert_int_equal(reg_async("A", 1, &res, &wait, &why), SIG_EINPROGRESS);
  finish_claim(expect_claim(N1, "A", 1, SIG_CLAIM_REJECT), SIG_EREFUSED);
  assert_int_equal(res.calls, 1);
  assert_null(res.p);
  assert_int_equal(res.why.code, 4409);
  assert_string_equal(res.why.msg, "domain taken");
  expect_quiet(); /* nothing to release: it was not ours */
  /* the claim failed: "reject" cannot promise the name is free anywhere */
  assert_int_equal(reg_async("A", 1, &res, &wait, &why), SIG_EINPROGRESS);
  finish_claim(expect_claim(N1, "A", 2, SIG_CLAIM_REJECT), -1);
  assert_int_equal(res.calls, 1);
  assert_null(res.p);
  assert_int_equal(res.why.code, 1013);
  assert_string_equal(res.why.msg, "cluster: unavailable");
  /* Redis away: refused at once */
  nodes[N1].away = 1;
  assert_int_equal(reg_async("A", 1, &res, &wait, &why), SIG_EREFUSED);
  assert_int_equal(why.code, 1013);
  assert_string_equal(why.msg, "cluster: unavailable");
  assert_int_equal(res.calls, 0);
  nodes[N1].away = 0;
  expect_quiet();
  assert_int_equal(domains(N1), 0);
  /* won; then a second connection for A is refused here at once */
  reg("A", 1);
  assert_int_equal(regs[1], 4);
  assert_int_equal(reg_async("A", 2, &res, &wait, &why), SIG_EREFUSED);
  assert_int_equal(why.code, 4409);
  assert_string_equal(why.msg, "domain taken");
  expect_quiet();
  assert_int_equal(domains(N1), 1);
}

/* Under "replace", a peer is served here when Redis cannot be asked, and published later. */
static void test_register_unavailable_replace(void **state) {
  static registered_t res;
  sig_router_wait_t *wait = NULL;
  sig_refusal_t why;
  (void)state;
  nodes[N1].away = 1;
  assert_int_equal(reg_async("A", 1, &res, &wait, &why), 0);
  assert_non_null(res.p);
  assert_int_equal(res.calls, 0);
  nodes[N1].away = 0;
  expect_quiet();
  assert_int_equal(domains(N1), 1);
  assert_int_equal(reg_async("C", 2, &res, &wait, &why), SIG_EINPROGRESS);
  finish_claim(expect_claim(N1, "C", 2, SIG_CLAIM_REPLACE), -1);
  assert_int_equal(res.calls, 1);
  assert_non_null(res.p);
  expect_quiet();
  assert_int_equal(domains(N1), 2);
}

/* No answer to the claim in time: "replace" serves the peer, and the late answer changes
 * nothing. */
static void test_register_deadline_replace(void **state) {
  static registered_t res;
  sig_router_wait_t *wait = NULL;
  sig_refusal_t why;
  (void)state;
  assert_int_equal(reg_async("A", 1, &res, &wait, &why), SIG_EINPROGRESS);
  call_t *c = expect_claim(N1, "A", 1, SIG_CLAIM_REPLACE);
  clock_ms += TIMEOUT_MS - 1;
  sig_router_tick(nodes[N1].r);
  assert_int_equal(res.calls, 0);
  clock_ms += 1;
  sig_router_tick(nodes[N1].r);
  assert_int_equal(res.calls, 1);
  assert_non_null(res.p);
  assert_int_equal(domains(N1), 1);
  finish_claim(c, 0);
  assert_int_equal(res.calls, 1);
  expect_quiet();
  assert_int_equal(domains(N1), 1);
}

/* No answer to the claim in time: "reject" refuses, and releases a claim won too late. */
static void test_register_deadline_reject(void **state) {
  static registered_t res;
  sig_router_wait_t *wait = NULL;
  sig_refusal_t why;
  (void)state;
  assert_int_equal(reg_async("A", 1, &res, &wait, &why), SIG_EINPROGRESS);
  call_t *c = expect_claim(N1, "A", 1, SIG_CLAIM_REJECT);
  clock_ms += TIMEOUT_MS;
  sig_router_tick(nodes[N1].r);
  assert_int_equal(res.calls, 1);
  assert_null(res.p);
  assert_int_equal(res.why.code, 1013);
  assert_string_equal(res.why.msg, "cluster: unavailable");
  finish_claim(c, 0);
  expect_release(N1, "A", 1);
  assert_int_equal(res.calls, 1);
  /* a late refusal has nothing to release */
  assert_int_equal(reg_async("A", 1, &res, &wait, &why), SIG_EINPROGRESS);
  c = expect_claim(N1, "A", 2, SIG_CLAIM_REJECT);
  clock_ms += TIMEOUT_MS;
  sig_router_tick(nodes[N1].r);
  assert_int_equal(res.why.code, 1013);
  finish_claim(c, SIG_EREFUSED);
  expect_quiet();
  assert_int_equal(domains(N1), 0);
}

/* The connection is gone before its claim returns: a won claim is released, nobody is told. */
static void test_register_cancel(void **state) {
  static registered_t res;
  sig_router_wait_t *wait = NULL;
  sig_refusal_t why;
  (void)state;
  assert_int_equal(reg_async("A", 1, &res, &wait, &why), SIG_EINPROGRESS);
  call_t *c = expect_claim(N1, "A", 1, SIG_CLAIM_REPLACE);
  sig_router_cancel(wait);
  finish_claim(c, 0);
  expect_release(N1, "A", 1);
  assert_int_equal(res.calls, 0);
  assert_int_equal(domains(N1), 0);
  /* lost: nothing to release */
  assert_int_equal(reg_async("A", 1, &res, &wait, &why), SIG_EINPROGRESS);
  c = expect_claim(N1, "A", 2, SIG_CLAIM_REPLACE);
  sig_router_cancel(wait);
  finish_claim(c, SIG_EREFUSED);
  expect_quiet();
  /* cancelled, then its deadline passes, then the claim is won */
  assert_int_equal(reg_async("A", 1, &res, &wait, &why), SIG_EINPROGRESS);
  c = expect_claim(N1, "A", 3, SIG_CLAIM_REPLACE);
  sig_router_cancel(wait);
  clock_ms += TIMEOUT_MS;
  sig_router_tick(nodes[N1].r);
  assert_int_equal(res.calls, 0);
  finish_claim(c, 0);
  expect_release(N1, "A", 3);
  expect_quiet();
  assert_int_equal(res.calls, 0);
  assert_int_equal(domains(N1), 0);
}

/* Two connections for A on one node while their claims are out: the newer wins (replace). */
static void test_register_replace_meanwhile(void **state) {
  static registered_t first, second;
  sig_router_wait_t *wait = NULL;
  sig_refusal_t why;
  (void)state;
  assert_int_equal(reg_async("A", 1, &first, &wait, &why), SIG_EINPROGRESS);
  assert_int_equal(reg_async("A", 2, &second, &wait, &why), SIG_EINPROGRESS);
  call_t *c1 = expect_claim(N1, "A", 1, SIG_CLAIM_REPLACE);
  call_t *c2 = expect_claim(N1, "A", 2, SIG_CLAIM_REPLACE);
  finish_claim(c1, 0);
  assert_non_null(first.p);
  finish_claim(c2, 0);
  assert_non_null(second.p);
  expect_release(N1, "A", 1);
  expect_close(1, 4000, "replaced");
  expect_quiet();
  assert_int_equal(domains(N1), 1);
}

/* ---- offers across nodes */

static void test_ws_offer_across(void **state) {
  (void)state;
  reg_ab();
  open_ab("w1", 1);
  assert_int_equal(exchanges(N1), 1);
  assert_int_equal(exchanges(N2), 1);
  assert_string_equal(homes(N1), "n2");
  assert_string_equal(homes(N2), "n1");
  /* candidates both ways */
  ws(1, "{\"ty\":\"candidate\",\"to\":\"B\",\"candidate\":[\"k1\"]}");
  call_t *c = expect_publish(N1, "n2", NM(.op = SIG_NODE_REL, .node = "n1", .id = "w1", .to = "B"),
                             CAND("w1", "A", "\"k1\""));
  deliver(c, N2);
  expect_frame(11, CAND("w1", "A", "\"k1\""));
  ws(11, "{\"ty\":\"candidate\",\"id\":\"w1\",\"to\":\"A\",\"candidate\":[\"k2\"]}");
  c = expect_publish(N2, "n1", NM(.op = SIG_NODE_REL, .node = "n2", .id = "w1", .to = "A"),
                     CAND("w1", "B", "\"k2\""));
  deliver(c, N1);
  expect_frame(1, CAND("w1", "B", "\"k2\""));
  expect_quiet();
  /* bye from the answer side: its half goes at once, the other when the end arrives */
  ws(11, "{\"ty\":\"bye\",\"to\":\"A\"}");
  c = expect_publish(N2, "n1", NM(.op = SIG_NODE_END, .node = "n2", .id = "w1", .to = "A"),
                     BYE("w1", "B", "hangup"));
  expect_quiet();
  assert_int_equal(exchanges(N2), 0);
  deliver(c, N1);
  expect_frame(1, BYE("w1", "B", "hangup"));
  assert_int_equal(exchanges(N1), 0);
  assert_string_equal(homes(N1), "");
  assert_string_equal(homes(N2), "");
  deliver(c, N1); /* again: nothing left to end */
  ws(1, "{\"ty\":\"candidate\",\"to\":\"B\",\"candidate\":[]}");
  expect_frame(1, ERR(404, "to: no exchange with 'B'", "null"));
  expect_quiet();
}

/* A POST /offer whose answer domain is on another node completes when that node replies. */
static void test_post_offer_across(void **state) {
  static offered_t res;
  char id[SIG_MSG_ID_MAX + 1], id2[SIG_MSG_ID_MAX + 1];
  sig_refusal_t why;
  (void)state;
  reg_ab();
  assert_int_equal(post(N1, OFFER_BODY("B", "A", ",\"id\":\"p1\""), &res, id, &why),
                   SIG_EINPROGRESS);
  assert_string_equal(id, "p1");
  call_t *c =
      expect_route(N1, "B", NULL,
                   NM(.op = SIG_NODE_OFFER, .node = "n1", .rid = 1, .id = "p1", .a = "A", .b = "B"),
                   OFFER_PUSH("p1", "B", "A"));
  call_t *re = reach_b(c, "p1", 1);
  assert_int_equal(res.calls, 0);
  deliver(re, N1);
  expect_offered(&res, 200, "ok", "p1");
  expect_quiet();
  /* ids made on different nodes differ: each carries a tag of its node's id */
  char push[1024];
  assert_int_equal(post(N1, OFFER_BODY("B", "A", ""), &res, id, &why), SIG_EINPROGRESS);
  snprintf(push, sizeof push, OFFER_PUSH("%s", "B", "A"), id);
  sig_nodemsg_t want =
      with_id(NM(.op = SIG_NODE_OFFER, .node = "n1", .rid = 2, .a = "A", .b = "B"), id);
  finish_route(expect_route(N1, "B", NULL, &want, push), 0, NULL);
  expect_offered(&res, 404, "answer_domain: 'B' is not connected", "(null)");
  assert_int_equal(post(N2, OFFER_BODY("A", "B", ""), &res, id2, &why), SIG_EINPROGRESS);
  snprintf(push, sizeof push, OFFER_PUSH("%s", "A", "B"), id2);
  want = with_id(NM(.op = SIG_NODE_OFFER, .node = "n2", .rid = 1, .a = "B", .b = "A"), id2);
  finish_route(expect_route(N2, "A", NULL, &want, push), 0, NULL);
  expect_offered(&res, 404, "answer_domain: 'A' is not connected", "(null)");
  assert_int_equal(strlen(id), 8);
  assert_int_equal(strlen(id2), 8);
  assert_true(id[0] == 'x' && id[7] == '1' && id2[0] == 'x' && id2[7] == '1');
  assert_string_not_equal(id, id2);
  expect_quiet();
  assert_int_equal(exchanges(N1), 1); /* p1 */
  assert_int_equal(exchanges(N2), 1);
}

/* What the route or the answer node refuses, with the field path of a WebSocket offer. */
static void test_remote_offer_refused(void **state) {
  static offered_t res;
  char id[SIG_MSG_ID_MAX + 1];
  sig_refusal_t why;
  (void)state;
  reg("A", 1);
  /* the route: B is not registered anywhere */
  ws(1, WS_OFFER("w1", "B"));
  call_t *c =
      expect_route(N1, "B", NULL,
                   NM(.op = SIG_NODE_OFFER, .node = "n1", .rid = 1, .id = "w1", .a = "A", .b = "B"),
                   OFFER_PUSH("w1", "B", "A"));
  assert_int_equal(exchanges(N1), 1); /* its half waits */
  finish_route(c, 0, NULL);
  expect_frame(1, ERR(404, "offer_req.answer_domain: 'B' is not connected", "\"w1\""));
  assert_int_equal(exchanges(N1), 0);
  assert_int_equal(post(N1, OFFER_BODY("B", "A", ",\"id\":\"p1\""), &res, id, &why),
                   SIG_EINPROGRESS);
  finish_route(
      expect_route(N1, "B", NULL,
                   NM(.op = SIG_NODE_OFFER, .node = "n1", .rid = 2, .id = "p1", .a = "A", .b = "B"),
                   OFFER_PUSH("p1", "B", "A")),
      0, NULL);
  expect_offered(&res, 404, "answer_domain: 'B' is not connected", "(null)");
  /* the route failed */
  ws(1, WS_OFFER("w2", "B"));
  finish_route(
      expect_route(N1, "B", NULL,
                   NM(.op = SIG_NODE_OFFER, .node = "n1", .rid = 3, .id = "w2", .a = "A", .b = "B"),
                   OFFER_PUSH("w2", "B", "A")),
      -1, NULL);
  expect_frame(1, ERR(503, "cluster: unavailable", "\"w2\""));
  assert_int_equal(post(N1, OFFER_BODY("B", "A", ",\"id\":\"p2\""), &res, id, &why),
                   SIG_EINPROGRESS);
  finish_route(
      expect_route(N1, "B", NULL,
                   NM(.op = SIG_NODE_OFFER, .node = "n1", .rid = 4, .id = "p2", .a = "A", .b = "B"),
                   OFFER_PUSH("p2", "B", "A")),
      -1, NULL);
  expect_offered(&res, 503, "cluster: unavailable", "(null)");
  expect_quiet();
  /* Redis is down: refused at once, nothing routed */
  nodes[N1].up = 0;
  ws(1, WS_OFFER("w3", "B"));
  expect_frame(1, ERR(503, "cluster: unavailable", "\"w3\""));
  assert_int_equal(post(N1, OFFER_BODY("B", "A", ""), &res, id, &why), SIG_EREFUSED);
  assert_int_equal(why.code, 503);
  assert_string_equal(why.msg, "cluster: unavailable");
  nodes[N1].up = 1;
  /* the route cannot be sent */
  nodes[N1].away = 1;
  ws(1, WS_OFFER("w4", "B"));
  expect_frame(1, ERR(503, "cluster: unavailable", "\"w4\""));
  assert_int_equal(post(N1, OFFER_BODY("B", "A", ""), &res, id, &why), SIG_EREFUSED);
  assert_int_equal(why.code, 503);
  assert_string_equal(why.msg, "cluster: unavailable");
  nodes[N1].away = 0;
  assert_int_equal(res.calls, 0);
  expect_quiet();
  assert_int_equal(exchanges(N1), 0);
  /* the answer node: B is not there (any more) */
  ws(1, WS_OFFER("w5", "B"));
  c = expect_route(N1, "B", NULL,
                   NM(.op = SIG_NODE_OFFER, .node = "n1", .rid = 7, .id = "w5", .a = "A", .b = "B"),
                   OFFER_PUSH("w5", "B", "A"));
  finish_route(c, 1, "n2");
  deliver(c, N2);
  call_t *re = expect_publish(N2, "n1",
                              NM(.op = SIG_NODE_RE, .node = "n2", .rid = 7, .status = 404,
                                 .msg = "answer_domain: 'B' is not connected"),
                              NULL);
  deliver(re, N1);
  expect_frame(1, ERR(404, "offer_req.answer_domain: 'B' is not connected", "\"w5\""));
  assert_int_equal(exchanges(N1), 0);
  assert_string_equal(homes(N1), "");
  /* the answer node: the id is in use there */
  reg("B", 11);
  reg("D", 12);
  assert_int_equal(post(N2, OFFER_BODY("B", "D", ",\"id\":\"dup\""), &res, id, &why), 0);
  expect_frame(11, OFFER_PUSH("dup", "B", "D"));
  ws(1, WS_OFFER("dup", "B"));
  c = expect_route(
      N1, "B", NULL,
      NM(.op = SIG_NODE_OFFER, .node = "n1", .rid = 8, .id = "dup", .a = "A", .b = "B"),
      OFFER_PUSH("dup", "B", "A"));
  finish_route(c, 1, "n2");
  deliver(c, N2);
  re = expect_publish(N2, "n1",
                      NM(.op = SIG_NODE_RE, .node = "n2", .rid = 8, .status = 409,
                         .msg = "id: 'dup' is already in use"),
                      NULL);
  deliver(re, N1);
  expect_frame(1, ERR(409, "id: 'dup' is already in use", "\"dup\""));
  expect_quiet();
  assert_int_equal(exchanges(N1), 0);
  assert_int_equal(exchanges(N2), 1);
}

/* No reply within the request timeout: 503, and the answer node hears that the exchange ended
 * (it may have delivered the offer after all). */
static void test_remote_offer_deadline(void **state) {
  static offered_t res;
  char id[SIG_MSG_ID_MAX + 1];
  sig_refusal_t why;
  (void)state;
  reg_ab();
  call_t *re = reach_b(offer_ab("w1", 1), "w1", 1); /* its reply is lost */
  clock_ms += TIMEOUT_MS - 1;
  sig_router_tick(nodes[N1].r);
  expect_quiet();
  clock_ms += 1;
  sig_router_tick(nodes[N1].r);
  call_t *end =
      expect_publish(N1, "n2", NM(.op = SIG_NODE_END, .node = "n1", .id = "w1", .to = "B"),
                     BYE("w1", "A", "timeout"));
  expect_frame(1, ERR(503, "cluster: no answer from node 'n2' within 2000 ms", "\"w1\""));
  expect_quiet();
  assert_int_equal(exchanges(N1), 0);
  deliver(end, N2);
  expect_frame(11, BYE("w1", "A", "timeout"));
  assert_int_equal(exchanges(N2), 0);
  deliver(re, N1); /* too late */
  expect_quiet();
  /* not even the route answered: the node is unknown, the end goes by B's domain */
  assert_int_equal(post(N1, OFFER_BODY("B", "A", ",\"id\":\"p2\""), &res, id, &why),
                   SIG_EINPROGRESS);
  call_t *c =
      expect_route(N1, "B", NULL,
                   NM(.op = SIG_NODE_OFFER, .node = "n1", .rid = 2, .id = "p2", .a = "A", .b = "B"),
                   OFFER_PUSH("p2", "B", "A"));
  clock_ms += TIMEOUT_MS;
  sig_router_tick(nodes[N1].r);
  expect_route(N1, "B", NULL, NM(.op = SIG_NODE_END, .node = "n1", .id = "p2", .to = "B"),
               BYE("p2", "A", "timeout"));
  expect_offered(&res, 503, "cluster: unavailable", "(null)");
  finish_route(c, 1, "n2"); /* too late */
  expect_offered(&res, 503, "cluster: unavailable", "(null)");
  expect_quiet();
  assert_int_equal(exchanges(N1), 0);
}

/* n2's reply may come before the route's own answer (another Redis connection): the reply
 * teaches n1 where B is. */
static void test_reply_before_route(void **state) {
  (void)state;
  reg_ab();
  call_t *c = offer_ab("w1", 1);
  deliver(c, N2);
  expect_frame(11, OFFER_PUSH("w1", "B", "A"));
  deliver(expect_publish(
              N2, "n1",
              NM(.op = SIG_NODE_RE, .node = "n2", .rid = 1, .id = "w1", .status = 200, .msg = "ok"),
              NULL),
          N1);
  expect_quiet();
  assert_string_equal(homes(N1), "n2");
  ws(1, "{\"ty\":\"candidate\",\"to\":\"B\",\"candidate\":[]}");
  expect_publish(N1, "n2", NM(.op = SIG_NODE_REL, .node = "n1", .id = "w1", .to = "B"),
                 CAND("w1", "A", ""));
  finish_route(c, 1, "n2");
  expect_quiet();
  assert_string_equal(homes(N1), "n2");
}

/* ---- POST /offer for an offer domain on another node */

static void test_forwarded_post(void **state) {
  static offered_t res;
  char id[SIG_MSG_ID_MAX + 1];
  sig_refusal_t why;
  (void)state;
  reg("A", 1);
  reg("B", 2);
  /* neither is on n2: n1 carries it out, both being there */
  const char *body = OFFER_BODY("B", "A", ",\"id\":\"f1\"");
  assert_int_equal(post(N2, body, &res, id, &why), SIG_EINPROGRESS);
  call_t *c = expect_route(N2, "A", "B", NM(.op = SIG_NODE_FWD, .node = "n2", .rid = 1), body);
  finish_route(c, 1, "n1");
  expect_quiet();
  deliver(c, N1);
  expect_frame(2, OFFER_PUSH("f1", "B", "A"));
  call_t *re = expect_publish(
      N1, "n2",
      NM(.op = SIG_NODE_RE, .node = "n1", .rid = 1, .id = "f1", .status = 200, .msg = "ok"), NULL);
  assert_int_equal(res.calls, 0);
  deliver(re, N2);
  expect_offered(&res, 200, "ok", "f1");
  expect_quiet();
  /* the route's refusals: the answer domain first */
  body = OFFER_BODY("Z", "A", "");
  assert_int_equal(post(N2, body, &res, id, &why), SIG_EINPROGRESS);
  finish_route(expect_route(N2, "A", "Z", NM(.op = SIG_NODE_FWD, .node = "n2", .rid = 2), body), 2,
               NULL);
  expect_offered(&res, 404, "answer_domain: 'Z' is not connected", "(null)");
  body = OFFER_BODY("B", "Y", "");
  assert_int_equal(post(N2, body, &res, id, &why), SIG_EINPROGRESS);
  finish_route(expect_route(N2, "Y", "B", NM(.op = SIG_NODE_FWD, .node = "n2", .rid = 3), body), 0,
               NULL);
  expect_offered(&res, 409, "offer_domain: 'Y' is not connected", "(null)");
  assert_int_equal(post(N2, body, &res, id, &why), SIG_EINPROGRESS);
  finish_route(expect_route(N2, "Y", "B", NM(.op = SIG_NODE_FWD, .node = "n2", .rid = 4), body), -1,
               NULL);
  expect_offered(&res, 503, "cluster: unavailable", "(null)");
  nodes[N2].up = 0;
  assert_int_equal(post(N2, body, &res, id, &why), SIG_EREFUSED);
  assert_int_equal(why.code, 503);
  assert_string_equal(why.msg, "cluster: unavailable");
  nodes[N2].up = 1;
  /* no reply in time (nothing to end: the forward made no exchange here) */
  body = OFFER_BODY("B", "A", ",\"id\":\"f2\"");
  assert_int_equal(post(N2, body, &res, id, &why), SIG_EINPROGRESS);
  finish_route(expect_route(N2, "A", "B", NM(.op = SIG_NODE_FWD, .node = "n2", .rid = 5), body), 1,
               "n1");
  clock_ms += TIMEOUT_MS;
  sig_router_tick(nodes[N2].r);
  expect_offered(&res, 503, "cluster: no answer from node 'n1' within 2000 ms", "(null)");
  expect_quiet();
}

/* POST on n2 from A (n1) to B (n2): forwarded to n1, whose offer comes back to n2. */
static void test_forwarded_post_back(void **state) {
  static offered_t res;
  char id[SIG_MSG_ID_MAX + 1];
  sig_refusal_t why;
  (void)state;
  reg_ab();
  const char *body = OFFER_BODY("B", "A", ",\"id\":\"f1\"");
  assert_int_equal(post(N2, body, &res, id, &why), SIG_EINPROGRESS);
  call_t *c = expect_route(N2, "A", NULL, NM(.op = SIG_NODE_FWD, .node = "n2", .rid = 1), body);
  finish_route(c, 1, "n1");
  deliver(c, N1);
  c = expect_route(N1, "B", NULL,
                   NM(.op = SIG_NODE_OFFER, .node = "n1", .rid = 1, .id = "f1", .a = "A", .b = "B"),
                   OFFER_PUSH("f1", "B", "A"));
  expect_quiet();
  deliver(reach_b(c, "f1", 1), N1);
  call_t *re = expect_publish(
      N1, "n2",
      NM(.op = SIG_NODE_RE, .node = "n1", .rid = 1, .id = "f1", .status = 200, .msg = "ok"), NULL);
  assert_int_equal(res.calls, 0);
  deliver(re, N2);
  expect_offered(&res, 200, "ok", "f1");
  expect_quiet();
  /* the exchange has a half on each node */
  ws(11, WS_ANSWER("f1"));
  deliver(
      expect_publish(N2, "n1", NM(.op = SIG_NODE_ANS, .node = "n2", .id = "f1", .a = "A", .b = "B"),
                     ANSWER_PUSH("f1", "B", "A")),
      N1);
  expect_frame(1, ANSWER_PUSH("f1", "B", "A"));
  expect_quiet();
}

/* Forwards that the offer node refuses, and requests that arrive after their deadline. */
static void test_forwarded_refusals(void **state) {
  char text[1024];
  long long future = (long long)wall_ms() + 60000;
  (void)state;
  reg("A", 1);
  snprintf(text, sizeof text,
           "{\"op\":\"fwd\",\"n\":\"n2\",\"rid\":5,\"dl\":%lld,\"f\":{\"offer_sdp\":1}}", future);
  deliver_text(N1, text);
  expect_publish(N1, "n2",
                 NM(.op = SIG_NODE_RE, .node = "n1", .rid = 5, .status = 400,
                    .msg = "offer_sdp: expected a string"),
                 NULL);
  snprintf(text, sizeof text, "{\"op\":\"fwd\",\"n\":\"n2\",\"rid\":6,\"dl\":%lld,\"f\":%s}",
           future, OFFER_BODY("B", "Q", ""));
  deliver_text(N1, text);
  expect_publish(N1, "n2",
                 NM(.op = SIG_NODE_RE, .node = "n1", .rid = 6, .status = 409,
                    .msg = "offer_domain: 'Q' is not connected"),
                 NULL);
  expect_quiet();
  /* past their deadline: dropped, unanswered */
  snprintf(text, sizeof text, "{\"op\":\"fwd\",\"n\":\"n2\",\"rid\":7,\"dl\":1,\"f\":%s}",
           OFFER_BODY("B", "A", ""));
  deliver_text(N1, text);
  deliver_text(N1,
               "{\"op\":\"offer\",\"n\":\"n2\",\"rid\":8,\"dl\":1,\"x\":\"o1\",\"a\":\"B\","
               "\"b\":\"A\",\"f\":{}}");
  expect_quiet();
  assert_int_equal(exchanges(N1), 0);
}

/* ---- ends */

static void test_disconnect_sends_end(void **state) {
  static offered_t res;
  char id[SIG_MSG_ID_MAX + 1];
  sig_refusal_t why;
  (void)state;
  reg_ab();
  reg("C", 2);
  open_ab("d1", 1);
  assert_int_equal(post(N1, OFFER_BODY("C", "A", ",\"id\":\"d2\""), &res, id, &why), 0);
  expect_frame(2, OFFER_PUSH("d2", "C", "A"));
  sig_router_unregister(nodes[N1].r, peers[1]);
  call_t *end =
      expect_publish(N1, "n2", NM(.op = SIG_NODE_END, .node = "n1", .id = "d1", .to = "B"),
                     BYE("d1", "A", "disconnected"));
  expect_frame(2, BYE("d2", "A", "disconnected"));
  expect_release(N1, "A", regs[1]);
  expect_quiet();
  assert_string_equal(homes(N1), "");
  deliver(end, N2);
  expect_frame(11, BYE("d1", "A", "disconnected"));
  expect_quiet();
  assert_int_equal(exchanges(N1), 0);
  assert_int_equal(exchanges(N2), 0);
}

/* A peer that leaves while its offer waits for the answer node is told nothing more; a POST's
 * wait is refused, as the offer domain left. */
static void test_disconnect_while_offer_waits(void **state) {
  static offered_t res;
  char id[SIG_MSG_ID_MAX + 1];
  sig_refusal_t why;
  (void)state;
  reg_ab();
  call_t *c = offer_ab("w1", 1);
  finish_route(c, 1, "n2");
  sig_router_unregister(nodes[N1].r, peers[1]);
  call_t *end =
      expect_publish(N1, "n2", NM(.op = SIG_NODE_END, .node = "n1", .id = "w1", .to = "B"),
                     BYE("w1", "A", "disconnected"));
  expect_release(N1, "A", regs[1]);
  expect_quiet();
  assert_int_equal(exchanges(N1), 0);
  /* Redis keeps the order: the offer arrives, then its end */
  deliver(c, N2);
  expect_frame(11, OFFER_PUSH("w1", "B", "A"));
  call_t *re = expect_publish(
      N2, "n1",
      NM(.op = SIG_NODE_RE, .node = "n2", .rid = 1, .id = "w1", .status = 200, .msg = "ok"), NULL);
  deliver(end, N2);
  expect_frame(11, BYE("w1", "A", "disconnected"));
  deliver(re, N1);
  expect_quiet();
  assert_int_equal(exchanges(N2), 0);
  /* a POST /offer from A that waits, then A leaves */
  reg("A", 3);
  assert_int_equal(post(N1, OFFER_BODY("B", "A", ",\"id\":\"p1\""), &res, id, &why),
                   SIG_EINPROGRESS);
  finish_route(
      expect_route(N1, "B", NULL,
                   NM(.op = SIG_NODE_OFFER, .node = "n1", .rid = 2, .id = "p1", .a = "A", .b = "B"),
                   OFFER_PUSH("p1", "B", "A")),
      1, "n2");
  sig_router_unregister(nodes[N1].r, peers[3]);
  expect_publish(N1, "n2", NM(.op = SIG_NODE_END, .node = "n1", .id = "p1", .to = "B"),
                 BYE("p1", "A", "disconnected"));
  expect_release(N1, "A", regs[3]);
  expect_offered(&res, 409, "offer_domain: 'A' is not connected", "(null)");
  expect_quiet();
}

/* A bye while the offer waits for the answer node ends the exchange as it would on one node:
 * the sender hears nothing more, and a POST /offer that waits gets its id. */
static void test_bye_while_offer_waits(void **state) {
  static offered_t res;
  char id[SIG_MSG_ID_MAX + 1];
  sig_refusal_t why;
  (void)state;
  reg_ab();
  call_t *c = offer_ab("w1", 1);
  finish_route(c, 1, "n2");
  ws(1, "{\"ty\":\"bye\",\"to\":\"B\"}");
  call_t *end =
      expect_publish(N1, "n2", NM(.op = SIG_NODE_END, .node = "n1", .id = "w1", .to = "B"),
                     BYE("w1", "A", "hangup"));
  expect_quiet();
  deliver(c, N2);
  expect_frame(11, OFFER_PUSH("w1", "B", "A"));
  call_t *re = expect_publish(
      N2, "n1",
      NM(.op = SIG_NODE_RE, .node = "n2", .rid = 1, .id = "w1", .status = 200, .msg = "ok"), NULL);
  deliver(end, N2);
  expect_frame(11, BYE("w1", "A", "hangup"));
  deliver(re, N1);
  expect_quiet();
  assert_int_equal(post(N1, OFFER_BODY("B", "A", ",\"id\":\"p1\""), &res, id, &why),
                   SIG_EINPROGRESS);
  finish_route(
      expect_route(N1, "B", NULL,
                   NM(.op = SIG_NODE_OFFER, .node = "n1", .rid = 2, .id = "p1", .a = "A", .b = "B"),
                   OFFER_PUSH("p1", "B", "A")),
      1, "n2");
  ws(1, "{\"ty\":\"bye\",\"id\":\"p1\",\"to\":\"B\"}");
  expect_publish(N1, "n2", NM(.op = SIG_NODE_END, .node = "n1", .id = "p1", .to = "B"),
                 BYE("p1", "A", "hangup"));
  expect_offered(&res, 200, "ok", "p1");
  expect_quiet();
  assert_int_equal(exchanges(N1), 0);
}

/* The answer node times the offer out: the offer node gets the 408 error frame in an end, the
 * answer peer a bye "timeout". The offer node's half never expires by itself. */
static void test_answer_timeout_across(void **state) {
  (void)state;
  reg_ab();
  deliver(reach_b(offer_ab("t1", 1), "t1", 1), N1);
  expect_quiet();
  clock_ms += 29999;
  sig_router_tick(nodes[N1].r);
  sig_router_tick(nodes[N2].r);
  expect_quiet();
  clock_ms += 1;
  sig_router_tick(nodes[N1].r);
  expect_quiet();
  sig_router_tick(nodes[N2].r);
  call_t *end =
      expect_publish(N2, "n1", NM(.op = SIG_NODE_END, .node = "n2", .id = "t1", .to = "A"),
                     ERR(408, "no answer from 'B' within 30 s", "\"t1\""));
  expect_frame(11, BYE("t1", "A", "timeout"));
  expect_quiet();
  assert_int_equal(exchanges(N2), 0);
  deliver(end, N1);
  expect_frame(1, ERR(408, "no answer from 'B' within 30 s", "\"t1\""));
  expect_quiet();
  assert_int_equal(exchanges(N1), 0);
  ws(11, WS_ANSWER("t1"));
  expect_frame(11, ERR(404, "id: no pending offer 't1' for you", "\"t1\""));
  expect_quiet();
}

/* max_exchanges_per_peer (1 here) forgets the oldest answered exchange: its other half, on
 * another node, is forgotten too (fgt), whichever node forgets first. */
static void test_max_exchanges_forget(void **state) {
  static offered_t res;
  char id[SIG_MSG_ID_MAX + 1];
  sig_refusal_t why;
  (void)state;
  reg_ab();
  reg("C", 2);
  open_ab("g1", 1);
  assert_int_equal(post(N1, OFFER_BODY("C", "A", ",\"id\":\"g2\""), &res, id, &why), 0);
  call_t *f =
      expect_publish(N1, "n2", NM(.op = SIG_NODE_FGT, .node = "n1", .id = "g1", .to = "B"), NULL);
  expect_frame(2, OFFER_PUSH("g2", "C", "A"));
  expect_quiet();
  assert_int_equal(exchanges(N1), 1);
  deliver(f, N2);
  expect_quiet();
  assert_int_equal(exchanges(N2), 0);
  ws(11, "{\"ty\":\"candidate\",\"to\":\"A\",\"candidate\":[]}");
  expect_frame(11, ERR(404, "to: no exchange with 'A'", "null"));
  expect_quiet();
  /* the answer node forgets: B's answered exchange with D goes when E's offer arrives */
  reg("D", 3);
  reg("E", 4);
  ws(3, WS_OFFER("g3", "B"));
  call_t *c =
      expect_route(N1, "B", NULL,
                   NM(.op = SIG_NODE_OFFER, .node = "n1", .rid = 2, .id = "g3", .a = "D", .b = "B"),
                   OFFER_PUSH("g3", "B", "D"));
  finish_route(c, 1, "n2");
  deliver(c, N2);
  expect_frame(11, OFFER_PUSH("g3", "B", "D"));
  deliver(expect_publish(
              N2, "n1",
              NM(.op = SIG_NODE_RE, .node = "n2", .rid = 2, .id = "g3", .status = 200, .msg = "ok"),
              NULL),
          N1);
  ws(11, WS_ANSWER("g3"));
  deliver(
      expect_publish(N2, "n1", NM(.op = SIG_NODE_ANS, .node = "n2", .id = "g3", .a = "D", .b = "B"),
                     ANSWER_PUSH("g3", "B", "D")),
      N1);
  expect_frame(3, ANSWER_PUSH("g3", "B", "D"));
  ws(4, WS_OFFER("g4", "B"));
  c = expect_route(N1, "B", NULL,
                   NM(.op = SIG_NODE_OFFER, .node = "n1", .rid = 3, .id = "g4", .a = "E", .b = "B"),
                   OFFER_PUSH("g4", "B", "E"));
  finish_route(c, 1, "n2");
  deliver(c, N2);
  f = expect_publish(N2, "n1", NM(.op = SIG_NODE_FGT, .node = "n2", .id = "g3", .to = "D"), NULL);
  expect_frame(11, OFFER_PUSH("g4", "B", "E"));
  expect_publish(
      N2, "n1",
      NM(.op = SIG_NODE_RE, .node = "n2", .rid = 3, .id = "g4", .status = 200, .msg = "ok"), NULL);
  deliver(f, N1);
  expect_quiet();
  ws(3, "{\"ty\":\"candidate\",\"to\":\"B\",\"candidate\":[]}");
  expect_frame(3, ERR(404, "to: no exchange with 'B'", "null"));
  expect_quiet();
  assert_int_equal(exchanges(N1), 2); /* g2, g4 */
  assert_int_equal(exchanges(N2), 1); /* g4 */
}

/* A node is gone: every exchange with a peer on it ends, as a disconnect would. */
static void test_node_gone(void **state) {
  char text[1024];
  (void)state;
  reg_ab();
  reg("C", 2);
  open_ab("h1", 1);
  /* an offer to C from Z on a third node */
  snprintf(text, sizeof text,
           "{\"op\":\"offer\",\"n\":\"n3\",\"rid\":9,\"dl\":%lld,\"x\":\"h3\",\"a\":\"Z\","
           "\"b\":\"C\",\"f\":{\"ty\":\"offer\"}}",
           (long long)wall_ms() + 60000);
  deliver_text(N1, text);
  expect_frame(2, "{\"ty\":\"offer\"}");
  expect_publish(
      N1, "n3",
      NM(.op = SIG_NODE_RE, .node = "n1", .rid = 9, .id = "h3", .status = 200, .msg = "ok"), NULL);
  assert_string_equal(homes(N1), "n2,n3");
  sig_router_node_gone(nodes[N1].r, "n2");
  expect_frame(1, BYE("h1", "B", "disconnected"));
  expect_quiet();
  assert_int_equal(exchanges(N1), 1);
  assert_string_equal(homes(N1), "n3");
  sig_router_node_gone(nodes[N1].r, "n2");
  sig_router_node_gone(nodes[N1].r, "n9");
  expect_quiet();
  sig_router_node_gone(nodes[N1].r, "n3");
  expect_frame(2, BYE("h3", "Z", "disconnected"));
  expect_quiet();
  assert_int_equal(exchanges(N1), 0);
  assert_string_equal(homes(N1), "");
  /* the pending offer to C went too */
  ws(2, WS_ANSWER("h3"));
  expect_frame(2, ERR(404, "id: no pending offer 'h3' for you", "\"h3\""));
  sig_router_node_gone(nodes[N2].r, "n1");
  expect_frame(11, BYE("h1", "A", "disconnected"));
  expect_quiet();
  assert_int_equal(exchanges(N2), 0);
}

/* Another node took over a registration (rep): that registration closes with 4000, its
 * exchanges end; a rep for another registration of the domain changes nothing. */
static void test_replaced_elsewhere(void **state) {
  (void)state;
  reg_ab();
  open_ab("r1", 1);
  deliver_text(N1, "{\"op\":\"rep\",\"n\":\"n2\",\"to\":\"A\",\"reg\":2}");
  deliver_text(N1, "{\"op\":\"rep\",\"n\":\"n2\",\"to\":\"Q\",\"reg\":1}");
  expect_quiet();
  assert_int_equal(regs[1], 1);
  deliver_text(N1, "{\"op\":\"rep\",\"n\":\"n2\",\"to\":\"A\",\"reg\":1}");
  call_t *end =
      expect_publish(N1, "n2", NM(.op = SIG_NODE_END, .node = "n1", .id = "r1", .to = "B"),
                     BYE("r1", "A", "disconnected"));
  expect_release(N1, "A", 0); /* the directory names the new owner: nothing to release */
  expect_close(1, 4000, "replaced");
  expect_quiet();
  assert_int_equal(domains(N1), 0);
  deliver(end, N2);
  expect_frame(11, BYE("r1", "A", "disconnected"));
  expect_quiet();
}

static call_t *claim_of(call_t *c1, call_t *c2, const char *domain) {
  return strcmp(c1->domain, domain) == 0 ? c1 : c2;
}

/* Redis is back: every registration is claimed again; one lost meanwhile closes with 4000. */
static void test_republish(void **state) {
  static registered_t res;
  sig_router_wait_t *wait = NULL;
  sig_refusal_t why;
  (void)state;
  reg("A", 1);
  reg("C", 2);
  sig_router_republish(nodes[N1].r);
  call_t *c1 = take_call_at('c', N1, __LINE__), *c2 = take_call_at('c', N1, __LINE__);
  call_t *ca = claim_of(c1, c2, "A"), *cc = claim_of(c2, c1, "C");
  assert_string_equal(ca->domain, "A");
  assert_string_equal(cc->domain, "C");
  assert_int_equal(ca->reg, regs[1]);
  assert_int_equal(cc->reg, regs[2]);
  assert_int_equal(ca->mode, SIG_CLAIM_RESTORE);
  assert_int_equal(cc->mode, SIG_CLAIM_RESTORE);
  finish_claim(ca, SIG_EREFUSED);
  expect_release(N1, "A", 0);
  expect_close(1, 4000, "replaced");
  finish_claim(cc, 0);
  expect_quiet();
  assert_int_equal(domains(N1), 1);
  /* a lost claim for a registration that is gone changes nothing: C registered again */
  sig_router_republish(nodes[N1].r);
  cc = expect_claim(N1, "C", regs[2], SIG_CLAIM_RESTORE);
  assert_int_equal(reg_async("C", 3, &res, &wait, &why), SIG_EINPROGRESS);
  expect_release(N1, "C", regs[2]);
  expect_close(2, 4000, "replaced");
  finish_claim(expect_claim(N1, "C", 3, SIG_CLAIM_REPLACE), 0);
  assert_non_null(res.p);
  peers[3] = res.p;
  finish_claim(cc, SIG_EREFUSED);
  expect_quiet();
  assert_int_equal(domains(N1), 1);
  /* away again: republishing stops */
  nodes[N1].away = 1;
  sig_router_republish(nodes[N1].r);
  expect_quiet();
}

/* Messages about exchanges that are not there, or not as they say, change nothing. */
static void test_stale_messages(void **state) {
  (void)state;
  reg_ab();
  reg("C", 2);
  open_ab("s1", 1);
  static const char *const msgs[] = {
      "{\"op\":\"rel\",\"n\":\"n2\",\"x\":\"zz\",\"to\":\"A\",\"f\":{}}",
      "{\"op\":\"rel\",\"n\":\"n2\",\"x\":\"s1\",\"to\":\"C\",\"f\":{}}",
      "{\"op\":\"ans\",\"n\":\"n2\",\"x\":\"s1\",\"a\":\"A\",\"b\":\"B\",\"f\":{}}",
      "{\"op\":\"end\",\"n\":\"n2\",\"x\":\"s1\",\"to\":\"B\"}",
      "{\"op\":\"fgt\",\"n\":\"n2\",\"x\":\"zz\",\"to\":\"A\"}",
      "{\"op\":\"re\",\"n\":\"n2\",\"rid\":77,\"x\":\"\",\"st\":200,\"m\":\"ok\"}",
      "{\"op\":\"re\",\"n\":\"n2\",\"rid\":1,\"x\":\"s1\",\"st\":200,\"m\":\"ok\"}",
      "{\"op\":\"nope\"}",
      "not json",
      "",
  };
  for (size_t i = 0; i < SIG_ARRAY_SIZE(msgs); i++) deliver_text(N1, msgs[i]);
  /* on n2 an answer is not for its half (B answered there) */
  deliver_text(N2,
               "{\"op\":\"ans\",\"n\":\"n1\",\"x\":\"s1\",\"a\":\"A\",\"b\":\"B\","
               "\"f\":{}}");
  expect_quiet();
  assert_int_equal(exchanges(N1), 1);
  assert_int_equal(exchanges(N2), 1);
  /* the exchange still works */
  ws(11, "{\"ty\":\"candidate\",\"to\":\"A\",\"candidate\":[]}");
  deliver(expect_publish(N2, "n1", NM(.op = SIG_NODE_REL, .node = "n2", .id = "s1", .to = "A"),
                         CAND("s1", "B", "")),
          N1);
  expect_frame(1, CAND("s1", "B", ""));
  expect_quiet();
}

/* A node that shuts down refuses offers from elsewhere but still tells other nodes of ends. */
static void test_shutdown(void **state) {
  (void)state;
  reg_ab();
  reg("C", 12);
  open_ab("s1", 1);
  sig_router_shutdown(nodes[N2].r);
  ws(1, WS_OFFER("s2", "C"));
  call_t *c =
      expect_route(N1, "C", NULL,
                   NM(.op = SIG_NODE_OFFER, .node = "n1", .rid = 2, .id = "s2", .a = "A", .b = "C"),
                   OFFER_PUSH("s2", "C", "A"));
  finish_route(c, 1, "n2");
  deliver(c, N2);
  deliver(expect_publish(N2, "n1",
                         NM(.op = SIG_NODE_RE, .node = "n2", .rid = 2, .status = 503,
                            .msg = "server: shutting down"),
                         NULL),
          N1);
  expect_frame(1, ERR(503, "server: shutting down", "\"s2\""));
  sig_router_unregister(nodes[N2].r, peers[11]);
  deliver(expect_publish(N2, "n1", NM(.op = SIG_NODE_END, .node = "n2", .id = "s1", .to = "A"),
                         BYE("s1", "B", "disconnected")),
          N1);
  expect_release(N2, "B", regs[11]);
  expect_frame(1, BYE("s1", "B", "disconnected"));
  expect_quiet();
}

/* The routers are freed (teardown) while requests wait: nobody is told, nothing leaks (ASan). */
static void test_free_with_waits(void **state) {
  static offered_t res;
  static registered_t registered;
  sig_router_wait_t *wait = NULL;
  char id[SIG_MSG_ID_MAX + 1];
  sig_refusal_t why;
  (void)state;
  reg_ab();
  finish_route(offer_ab("w1", 1), 1, "n2"); /* a WebSocket offer waits for n2's reply */
  const char *body = OFFER_BODY("B", "A", ",\"id\":\"f1\"");
  assert_int_equal(post(N2, body, &res, id, &why), SIG_EINPROGRESS);
  call_t *c = expect_route(N2, "A", NULL, NM(.op = SIG_NODE_FWD, .node = "n2", .rid = 1), body);
  finish_route(c, 1, "n1");
  deliver(c, N1); /* n1 carries the forward out: it waits for n2 too */
  finish_route(
      expect_route(N1, "B", NULL,
                   NM(.op = SIG_NODE_OFFER, .node = "n1", .rid = 2, .id = "f1", .a = "A", .b = "B"),
                   OFFER_PUSH("f1", "B", "A")),
      1, "n2");
  assert_int_equal(reg_async("C", 2, &registered, &wait, &why), SIG_EINPROGRESS);
  expect_claim(N1, "C", 2, SIG_CLAIM_REPLACE);
  assert_int_equal(reg_async("D", 3, &registered, &wait, &why), SIG_EINPROGRESS);
  expect_claim(N1, "D", 3, SIG_CLAIM_REPLACE);
  sig_router_cancel(wait);
  expect_quiet();
  assert_int_equal(res.calls, 0);
}

int main(void) {
  sig_log_set_level(SIG_LOG_ERROR); /* the router logs every offer at INFO */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_register_claim_won, setup, teardown),
      cmocka_unit_test_setup_teardown(test_register_reject, setup_reject, teardown),
      cmocka_unit_test_setup_teardown(test_register_unavailable_replace, setup, teardown),
      cmocka_unit_test_setup_teardown(test_register_deadline_replace, setup, teardown),
      cmocka_unit_test_setup_teardown(test_register_deadline_reject, setup_reject, teardown),
      cmocka_unit_test_setup_teardown(test_register_cancel, setup, teardown),
      cmocka_unit_test_setup_teardown(test_register_replace_meanwhile, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ws_offer_across, setup, teardown),
      cmocka_unit_test_setup_teardown(test_post_offer_across, setup, teardown),
      cmocka_unit_test_setup_teardown(test_remote_offer_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_remote_offer_deadline, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reply_before_route, setup, teardown),
      cmocka_unit_test_setup_teardown(test_forwarded_post, setup, teardown),
      cmocka_unit_test_setup_teardown(test_forwarded_post_back, setup, teardown),
      cmocka_unit_test_setup_teardown(test_forwarded_refusals, setup, teardown),
      cmocka_unit_test_setup_teardown(test_disconnect_sends_end, setup, teardown),
      cmocka_unit_test_setup_teardown(test_disconnect_while_offer_waits, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bye_while_offer_waits, setup, teardown),
      cmocka_unit_test_setup_teardown(test_answer_timeout_across, setup, teardown),
      cmocka_unit_test_setup_teardown(test_max_exchanges_forget, setup_one_exchange, teardown),
      cmocka_unit_test_setup_teardown(test_node_gone, setup, teardown),
      cmocka_unit_test_setup_teardown(test_replaced_elsewhere, setup, teardown),
      cmocka_unit_test_setup_teardown(test_republish, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stale_messages, setup, teardown),
      cmocka_unit_test_setup_teardown(test_shutdown, setup, teardown),
      cmocka_unit_test_setup_teardown(test_free_with_waits, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
