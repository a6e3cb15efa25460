/* Unit tests for sig_router over a fake transport that records every send and close in order, and
 * a clock advanced by hand. Every frame a peer receives is compared whole. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* cmocka needs the headers above first */
#include <cmocka.h>

#include "sig_log.h"
#include "sig_msg.h"
#include "sig_router.h"
#include "sig_util.h"

#define SDP "dj0wDQpvPS0gMSAxIElOIElQNCAxMjcuMC4wLjENCg=="
#define ASDP "dj0wDQo="
/* The expected frames, piece by piece in the server's key order. */
/* clang-format off */
#define OFFER_BODY(ad, od, extra)                                        \
  "{\"offer_sdp\":\"" SDP "\",\"candidate\":[\"c1\"],"                   \
  "\"answer_domain\":\"" ad "\",\"offer_domain\":\"" od "\"" extra "}"
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
#define ANSWER_RESP "\"answer_resp\":{\"answer_sdp\":\"" ASDP "\",\"candidate\":[\"c2\"]}"
#define BYE(id, from, reason) \
  "{\"ty\":\"bye\",\"id\":\"" id "\",\"from\":\"" from "\",\"reason\":\"" reason "\"}"
#define ERR(status, msg, id) \
  "{\"ty\":\"error\",\"status\":" #status ",\"msg\":\"" msg "\",\"id\":" id "}"

/* The fake transport: conns are small integers cast to pointers. */
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

static void clear_events(void) {
  for (size_t i = 0; i < nevents; i++) free(events[i].data);
  nevents = next_event = 0;
}

static void dump_events(void) {
  for (size_t i = next_event; i < nevents; i++)
    print_error("  event %zu: %c conn=%zu code=%u %s\n", i, events[i].kind,
                (size_t)(uintptr_t)events[i].conn, events[i].code, events[i].data);
}

/* The next recorded event must be this send. */
static void expect_send_at(int conn, const char *frame, int line) {
  if (next_event >= nevents) {
    print_error("line %d: expected a send to %d of %s, got nothing\n", line, conn, frame);
    fail();
  }
  event_t *e = &events[next_event];
  if (e->kind != 's' || e->conn != CONN(conn) || strcmp(e->data, frame) != 0) {
    print_error("line %d: expected send to %d:\n  %s\n", line, conn, frame);
    dump_events();
    fail();
  }
  next_event++;
}

static void expect_close_at(int conn, uint16_t code, const char *reason, int line) {
  if (next_event >= nevents) {
    print_error("line %d: expected a close of %d, got nothing\n", line, conn);
    fail();
  }
  event_t *e = &events[next_event];
  if (e->kind != 'c' || e->conn != CONN(conn) || e->code != code || strcmp(e->data, reason) != 0) {
    print_error("line %d: expected close of %d with %u %s\n", line, conn, code, reason);
    dump_events();
    fail();
  }
  next_event++;
}

static void expect_nothing_at(int line) {
  if (next_event != nevents) {
    print_error("line %d: unexpected events:\n", line);
    dump_events();
    fail();
  }
}

#define expect_send(conn, frame) expect_send_at((conn), (frame), __LINE__)
#define expect_close(conn, code, reason) expect_close_at((conn), (code), (reason), __LINE__)
#define expect_nothing() expect_nothing_at(__LINE__)

typedef struct {
  sig_router_t *r;
  sig_router_peer_t *peers[8];
} fixture_t;

static sig_router_limits_t default_limits(void) {
  sig_router_limits_t l = {.reject_duplicates = 0,
                           .max_domains = 16,
                           .max_pending_offers = 4,
                           .max_exchanges_per_peer = 16,
                           .answer_timeout_ms = 30000};
  return l;
}

static sig_router_t *new_router(const sig_router_limits_t *l) {
  sig_router_transport_t t = {fake_send, fake_close, fake_now, &clock_ms, NULL};
  return sig_router_new(&t, l);
}

static int setup_with(void **state, const sig_router_limits_t *l) {
  fixture_t *f = calloc(1, sizeof *f);
  clock_ms = 1000;
  nevents = next_event = 0;
  f->r = new_router(l);
  *state = f;
  return 0;
}

static int setup(void **state) {
  sig_router_limits_t l = default_limits();
  return setup_with(state, &l);
}

static int teardown(void **state) {
  fixture_t *f = *state;
  sig_router_free(f->r);
  clear_events();
  free(f);
  return 0;
}

/* sig_router_register, as 0 or the refusal's close code (and its reason). */
static int reg_code(fixture_t *f, const char *domain, size_t len, int n, sig_router_peer_t **p) {
  sig_refusal_t why;
  int rc = sig_router_register(f->r, domain, len, CONN(n), NULL, p, &why);
  if (rc == 0) return 0;
  assert_int_equal(rc, SIG_EREFUSED);
  if (why.code == 4409) assert_string_equal(why.msg, "domain taken");
  if (why.code == 4503) assert_string_equal(why.msg, "server full");
  return why.code;
}

/* Registers domain on conn n (peers[n] gets the peer). */
static sig_router_peer_t *reg(fixture_t *f, const char *domain, int n) {
  sig_router_peer_t *p = NULL;
  assert_int_equal(reg_code(f, domain, strlen(domain), n, &p), 0);
  assert_non_null(p);
  assert_string_equal(sig_router_peer_domain(p), domain);
  f->peers[n] = p;
  return p;
}

/* POST /offer with body: returns the status; id or err filled in. */
static int post(fixture_t *f, const char *body, char id[SIG_MSG_ID_MAX + 1],
                char err[SIG_MSG_ERR_MAX]) {
  sig_msg_t m;
  char derr[SIG_MSG_ERR_MAX];
  assert_int_equal(sig_msg_decode_offer_body(&m, body, strlen(body), derr, sizeof derr), 0);
  id[0] = err[0] = '\0';
  sig_refusal_t why;
  int status = 200;
  if (sig_router_offer(f->r, &m, id, &why) != 0) {
    status = why.code;
    snprintf(err, SIG_MSG_ERR_MAX, "%s", why.msg);
  }
  sig_msg_free(&m);
  return status;
}

/* A POST /offer that must succeed with want_id. */
static void post_ok_at(fixture_t *f, const char *body, const char *want_id, int line) {
  char id[SIG_MSG_ID_MAX + 1], err[SIG_MSG_ERR_MAX];
  int status = post(f, body, id, err);
  if (status != 200) print_error("line %d: POST /offer: %d %s\n", line, status, err);
  assert_int_equal(status, 200);
  assert_string_equal(id, want_id);
}
#define post_ok(f, body, want_id) post_ok_at((f), (body), (want_id), __LINE__)

static void post_fails_at(fixture_t *f, const char *body, int want_status, const char *want_err,
                          int line) {
  char id[SIG_MSG_ID_MAX + 1], err[SIG_MSG_ERR_MAX];
  int status = post(f, body, id, err);
  if (status != want_status || strcmp(err, want_err) != 0)
    print_error("line %d: POST /offer: got %d '%s', want %d '%s'\n", line, status, err, want_status,
                want_err);
  assert_int_equal(status, want_status);
  assert_string_equal(err, want_err);
}
#define post_fails(f, body, status, err) post_fails_at((f), (body), (status), (err), __LINE__)

static void ws(fixture_t *f, int n, const char *msg) {
  sig_router_on_message(f->r, f->peers[n], msg, strlen(msg));
}

/* A (conn 1) and B (conn 2), the pair most tests use. */
static void reg_ab(fixture_t *f) {
  reg(f, "A", 1);
  reg(f, "B", 2);
}

/* A offers to B with id and B answers it: an open exchange. */
static void open_ab(fixture_t *f, const char *id) {
  char body[512], push[1024], msg[512];
  snprintf(body, sizeof body, OFFER_BODY("B", "A", ",\"id\":\"%s\""), id);
  post_ok(f, body, id);
  snprintf(push, sizeof push, OFFER_PUSH("%s", "B", "A"), id);
  expect_send(2, push);
  snprintf(msg, sizeof msg, "{\"ty\":\"answer\",\"id\":\"%s\"," ANSWER_RESP "}", id);
  ws(f, 2, msg);
  snprintf(push, sizeof push, ANSWER_PUSH("%s", "B", "A"), id);
  expect_send(1, push);
}

static void test_register_unregister(void **state) {
  fixture_t *f = *state;
  assert_int_equal(sig_router_domains(f->r), 0);
  reg_ab(f);
  assert_int_equal(sig_router_domains(f->r), 2);
  /* the domain is taken by length, not up to a NUL */
  sig_router_peer_t *p = NULL;
  assert_int_equal(reg_code(f, "Carol-and-more", 5, 3, &p), 0);
  assert_string_equal(sig_router_peer_domain(p), "Carol");
  assert_int_equal(sig_router_domains(f->r), 3);

  sig_router_unregister(f->r, f->peers[1]);
  assert_int_equal(sig_router_domains(f->r), 2);
  sig_router_unregister(f->r, NULL);
  assert_int_equal(sig_router_domains(f->r), 2);
  /* gone: an offer to A is refused, and A may register again */
  post_fails(f, OFFER_BODY("A", "B", ""), 404, "answer_domain: 'A' is not connected");
  reg(f, "A", 4);
  post_ok(f, OFFER_BODY("A", "B", ""), "x1");
  expect_send(4, OFFER_PUSH("x1", "A", "B"));
  sig_router_unregister(f->r, p);
  assert_int_equal(sig_router_domains(f->r), 2);
  expect_nothing();
}

static void test_duplicate_replace(void **state) {
  fixture_t *f = *state;
  reg_ab(f);
  reg(f, "C", 3);
  open_ab(f, "ab");                           /* A-B open */
  post_ok(f, OFFER_BODY("A", "C", ""), "x1"); /* C->A pending */
  expect_send(1, OFFER_PUSH("x1", "A", "C"));
  post_ok(f, OFFER_BODY("C", "B", ",\"id\":\"bc\""), "bc"); /* B->C, not A's */
  expect_send(3, OFFER_PUSH("bc", "C", "B"));
  assert_int_equal(sig_router_exchanges(f->r), 3);

  sig_router_peer_t *old = f->peers[1];
  sig_router_peer_t *p = reg(f, "A", 4);
  assert_ptr_not_equal(p, old);
  /* the counterparts hear first, then the old connection is closed */
  expect_send(2, BYE("ab", "A", "disconnected"));
  expect_send(3, BYE("x1", "A", "disconnected"));
  expect_close(1, 4000, "replaced");
  expect_nothing();
  assert_int_equal(sig_router_domains(f->r), 3);
  assert_int_equal(sig_router_exchanges(f->r), 1);

  /* the new connection receives what goes to A */
  post_ok(f, OFFER_BODY("A", "B", ""), "x2");
  expect_send(4, OFFER_PUSH("x2", "A", "B"));
  expect_nothing();
}

static int setup_reject(void **state) {
  sig_router_limits_t l = default_limits();
  l.reject_duplicates = 1;
  return setup_with(state, &l);
}

static void test_duplicate_reject(void **state) {
  fixture_t *f = *state;
  reg_ab(f);
  open_ab(f, "ab");
  sig_router_peer_t *p = (sig_router_peer_t *)0x1;
  assert_int_equal(reg_code(f, "A", 1, 4, &p), 4409);
  assert_ptr_equal(p, (sig_router_peer_t *)0x1);
  expect_nothing();
  assert_int_equal(sig_router_domains(f->r), 2);
  assert_int_equal(sig_router_exchanges(f->r), 1);
  /* the first owner keeps the domain and its exchange */
  ws(f, 2, "{\"ty\":\"candidate\",\"to\":\"A\",\"candidate\":[\"k\"]}");
  expect_send(1, "{\"ty\":\"candidate\",\"id\":\"ab\",\"from\":\"B\",\"candidate\":[\"k\"]}");
  expect_nothing();
}

static int setup_two_domains(void **state) {
  sig_router_limits_t l = default_limits();
  l.max_domains = 2;
  return setup_with(state, &l);
}

static void test_full(void **state) {
  fixture_t *f = *state;
  sig_router_peer_t *p = NULL;
  reg_ab(f);
  assert_int_equal(reg_code(f, "C", 1, 3, &p), 4503);
  assert_null(p);
  assert_int_equal(sig_router_domains(f->r), 2);
  expect_nothing();
  /* replacing a domain needs no room */
  reg(f, "A", 4);
  expect_close(1, 4000, "replaced");
  assert_int_equal(sig_router_domains(f->r), 2);
  /* a freed slot can be used */
  sig_router_unregister(f->r, f->peers[2]);
  reg(f, "C", 3);
  assert_int_equal(sig_router_domains(f->r), 2);
  expect_nothing();
}

static void test_post_offer(void **state) {
  fixture_t *f = *state;
  reg_ab(f);
  /* a server-made id */
  post_ok(f, OFFER_BODY("B", "A", ""), "x1");
  expect_send(2, OFFER_PUSH("x1", "B", "A"));
  /* the client's id; unknown fields are not relayed */
  post_ok(f, OFFER_BODY("B", "A", ",\"id\":\"call-1\",\"extra\":1"), "call-1");
  expect_send(2, OFFER_PUSH("call-1", "B", "A"));
  /* the posted values are relayed unchanged */
  post_ok(f,
          "{\"offer_sdp\":\"" ASDP
          "\",\"candidate\":[],\"answer_domain\":\"B\","
          "\"offer_domain\":\"A\"}",
          "x2");
  expect_send(2, "{\"ty\":\"offer\",\"id\":\"x2\",\"offer_req\":{\"offer_sdp\":\"" ASDP
                 "\","
                 "\"candidate\":[],\"answer_domain\":\"B\",\"offer_domain\":\"A\"},"
                 "\"answer_resp\":{\"answer_sdp\":\"\",\"candidate\":[],\"answer_domain\":\"B\"}}");
  expect_nothing();
  assert_int_equal(sig_router_exchanges(f->r), 3);
}

static int setup_two_pending(void **state) {
  sig_router_limits_t l = default_limits();
  l.max_pending_offers = 2;
  return setup_with(state, &l);
}

static void test_post_offer_errors(void **state) {
  fixture_t *f = *state;
  reg(f, "A", 1);
  post_fails(f, OFFER_BODY("B", "A", ""), 404, "answer_domain: 'B' is not connected");
  /* both missing: the answer domain is reported */
  post_fails(f, OFFER_BODY("B", "Z", ""), 404, "answer_domain: 'B' is not connected");
  reg(f, "B", 2);
  post_fails(f, OFFER_BODY("B", "Z", ""), 409, "offer_domain: 'Z' is not connected");
  post_ok(f, OFFER_BODY("B", "A", ",\"id\":\"call-1\""), "call-1");
  expect_send(2, OFFER_PUSH("call-1", "B", "A"));
  post_fails(f, OFFER_BODY("B", "A", ",\"id\":\"call-1\""), 409, "id: 'call-1' is already in use");
  /* an id in use is refused whatever the direction */
  post_fails(f, OFFER_BODY("A", "B", ",\"id\":\"call-1\""), 409, "id: 'call-1' is already in use");
  /* pending cap (2) on B */
  post_ok(f, OFFER_BODY("B", "A", ""), "x1");
  expect_send(2, OFFER_PUSH("x1", "B", "A"));
  post_fails(f, OFFER_BODY("B", "A", ""), 429, "answer_domain: 'B' has too many pending offers");
  /* the cap is per answer domain */
  post_ok(f, OFFER_BODY("A", "B", ""), "x2");
  expect_send(1, OFFER_PUSH("x2", "A", "B"));
  /* an answer frees a slot */
  ws(f, 2, "{\"ty\":\"answer\",\"id\":\"x1\"," ANSWER_RESP "}");
  expect_send(1, ANSWER_PUSH("x1", "B", "A"));
  post_ok(f, OFFER_BODY("B", "A", ""), "x3");
  expect_send(2, OFFER_PUSH("x3", "B", "A"));
  expect_nothing();
  assert_int_equal(sig_router_exchanges(f->r), 4);
}

static void test_answer_by_id(void **state) {
  fixture_t *f = *state;
  reg_ab(f);
  post_ok(f, OFFER_BODY("B", "A", ""), "x1");
  post_ok(f, OFFER_BODY("B", "A", ""), "x2");
  expect_send(2, OFFER_PUSH("x1", "B", "A"));
  expect_send(2, OFFER_PUSH("x2", "B", "A"));
  ws(f, 2, "{\"ty\":\"answer\",\"id\":\"x2\"," ANSWER_RESP "}");
  expect_send(1, ANSWER_PUSH("x2", "B", "A"));
  /* answered: the id names no pending offer any more */
  ws(f, 2, "{\"ty\":\"answer\",\"id\":\"x2\"," ANSWER_RESP "}");
  expect_send(2, ERR(404, "id: no pending offer 'x2' for you", "\"x2\""));
  /* now x1 is the single pending offer */
  ws(f, 2, "{\"ty\":\"answer\"," ANSWER_RESP "}");
  expect_send(1, ANSWER_PUSH("x1", "B", "A"));
  expect_nothing();
}

static void test_answer_by_echoed_offer_domain(void **state) {
  fixture_t *f = *state;
  reg_ab(f);
  reg(f, "C", 3);
  post_ok(f, OFFER_BODY("B", "A", ""), "x1");
  post_ok(f, OFFER_BODY("B", "C", ""), "x2");
  post_ok(f, OFFER_BODY("B", "A", ""), "x3");
  expect_send(2, OFFER_PUSH("x1", "B", "A"));
  expect_send(2, OFFER_PUSH("x2", "B", "C"));
  expect_send(2, OFFER_PUSH("x3", "B", "A"));
  ws(f, 2,
     "{\"ty\":\"answer\",\"offer_req\":{\"offer_sdp\":\"" SDP
     "\",\"candidate\":[],"
     "\"answer_domain\":\"B\",\"offer_domain\":\"C\"}," ANSWER_RESP "}");
  expect_send(3, ANSWER_PUSH("x2", "B", "C"));
  /* the oldest pending offer from that domain */
  ws(f, 2, "{\"ty\":\"answer\",\"offer_req\":{\"offer_domain\":\"A\"}," ANSWER_RESP "}");
  expect_send(1, ANSWER_PUSH("x1", "B", "A"));
  ws(f, 2, "{\"ty\":\"answer\",\"offer_req\":{\"offer_domain\":\"C\"}," ANSWER_RESP "}");
  expect_send(2, ERR(404, "offer_req.offer_domain: no pending offer from 'C'", "null"));
  /* an id wins over the echoed domain */
  post_ok(f, OFFER_BODY("B", "C", ""), "x4");
  expect_send(2, OFFER_PUSH("x4", "B", "C"));
  ws(f, 2,
     "{\"ty\":\"answer\",\"id\":\"x4\",\"offer_req\":{\"offer_domain\":\"A\"}," ANSWER_RESP "}");
  expect_send(3, ANSWER_PUSH("x4", "B", "C"));
  expect_nothing();
}

static void test_answer_errors(void **state) {
  fixture_t *f = *state;
  reg_ab(f);
  reg(f, "C", 3);
  ws(f, 2, "{\"ty\":\"answer\"," ANSWER_RESP "}");
  expect_send(2, ERR(404, "answer: no pending offer for you", "null"));
  post_ok(f, OFFER_BODY("B", "A", ""), "x1");
  post_ok(f, OFFER_BODY("B", "C", ""), "x2");
  expect_send(2, OFFER_PUSH("x1", "B", "A"));
  expect_send(2, OFFER_PUSH("x2", "B", "C"));
  ws(f, 2, "{\"ty\":\"answer\"," ANSWER_RESP "}");
  expect_send(2, ERR(409, "answer: 2 offers are pending; give id", "null"));
  ws(f, 2, "{\"ty\":\"answer\",\"id\":\"nope\"," ANSWER_RESP "}");
  expect_send(2, ERR(404, "id: no pending offer 'nope' for you", "\"nope\""));
  /* an offer pending for B cannot be answered by A, nor by C */
  ws(f, 1, "{\"ty\":\"answer\",\"id\":\"x1\"," ANSWER_RESP "}");
  expect_send(1, ERR(404, "id: no pending offer 'x1' for you", "\"x1\""));
  ws(f, 3, "{\"ty\":\"answer\",\"id\":\"x1\"," ANSWER_RESP "}");
  expect_send(3, ERR(404, "id: no pending offer 'x1' for you", "\"x1\""));
  /* answering in another's name */
  ws(f, 2,
     "{\"ty\":\"answer\",\"id\":\"x1\",\"answer_resp\":{\"answer_sdp\":\"" ASDP
     "\","
     "\"candidate\":[],\"answer_domain\":\"C\"}}");
  expect_send(2, ERR(403, "answer_resp.answer_domain: must be your own domain 'B'", "\"x1\""));
  /* the refusals left both offers pending */
  ws(f, 2,
     "{\"ty\":\"answer\",\"id\":\"x1\",\"answer_resp\":{\"answer_sdp\":\"" ASDP
     "\","
     "\"candidate\":[\"c2\"],\"answer_domain\":\"B\"}}");
  expect_send(1, ANSWER_PUSH("x1", "B", "A"));
  ws(f, 2, "{\"ty\":\"answer\"," ANSWER_RESP "}");
  expect_send(3, ANSWER_PUSH("x2", "B", "C"));
  expect_nothing();
}

static void test_bad_message(void **state) {
  fixture_t *f = *state;
  reg_ab(f);
  ws(f, 1, "{\"ty\":\"hello\",\"id\":\"q1\"}");
  expect_send(1, ERR(400, "ty: unknown message type 'hello'", "\"q1\""));
  ws(f, 1, "[]");
  expect_send(1, ERR(400, "body: expected a JSON object", "null"));
  expect_nothing();
}

static void test_ws_offer(void **state) {
  fixture_t *f = *state;
  reg_ab(f);
  reg(f, "C", 3);
  /* offer_domain omitted: the sender's; success is silent for the sender */
  ws(f, 1,
     "{\"ty\":\"offer\",\"id\":\"w1\",\"offer_req\":{\"offer_sdp\":\"" SDP
     "\","
     "\"candidate\":[\"c1\"],\"answer_domain\":\"B\"}}");
  expect_send(2, OFFER_PUSH("w1", "B", "A"));
  /* offer_domain given and right */
  ws(f, 1,
     "{\"ty\":\"offer\",\"offer_req\":{\"offer_sdp\":\"" SDP
     "\","
     "\"candidate\":[\"c1\"],\"answer_domain\":\"B\",\"offer_domain\":\"A\"}}");
  expect_send(2, OFFER_PUSH("x1", "B", "A"));
  /* spoofed */
  ws(f, 1,
     "{\"ty\":\"offer\",\"id\":\"w2\",\"offer_req\":{\"offer_sdp\":\"" SDP
     "\","
     "\"candidate\":[],\"answer_domain\":\"B\",\"offer_domain\":\"C\"}}");
  expect_send(1, ERR(403, "offer_req.offer_domain: must be your own domain 'A'", "\"w2\""));
  /* to oneself */
  ws(f, 1,
     "{\"ty\":\"offer\",\"offer_req\":{\"offer_sdp\":\"" SDP
     "\","
     "\"candidate\":[],\"answer_domain\":\"A\"}}");
  expect_send(1, ERR(400, "offer_req.answer_domain: must differ from offer_domain", "null"));
  /* the POST /offer checks, with the field path */
  ws(f, 1,
     "{\"ty\":\"offer\",\"id\":\"w3\",\"offer_req\":{\"offer_sdp\":\"" SDP
     "\","
     "\"candidate\":[],\"answer_domain\":\"Z\"}}");
  expect_send(1, ERR(404, "offer_req.answer_domain: 'Z' is not connected", "\"w3\""));
  ws(f, 3,
     "{\"ty\":\"offer\",\"id\":\"w1\",\"offer_req\":{\"offer_sdp\":\"" SDP
     "\","
     "\"candidate\":[],\"answer_domain\":\"B\"}}");
  expect_send(3, ERR(409, "id: 'w1' is already in use", "\"w1\""));
  expect_nothing();
  assert_int_equal(sig_router_exchanges(f->r), 2);
}

static void test_candidate(void **state) {
  fixture_t *f = *state;
  reg_ab(f);
  reg(f, "C", 3);
  /* no exchange yet */
  ws(f, 1, "{\"ty\":\"candidate\",\"to\":\"B\",\"candidate\":[\"k1\"]}");
  expect_send(1, ERR(404, "to: no exchange with 'B'", "null"));
  /* a pending exchange is enough, both ways */
  post_ok(f, OFFER_BODY("B", "A", ""), "x1");
  expect_send(2, OFFER_PUSH("x1", "B", "A"));
  ws(f, 1, "{\"ty\":\"candidate\",\"to\":\"B\",\"candidate\":[\"k1\",\"k2\"]}");
  expect_send(2,
              "{\"ty\":\"candidate\",\"id\":\"x1\",\"from\":\"A\",\"candidate\":[\"k1\",\"k2\"]}");
  ws(f, 2, "{\"ty\":\"candidate\",\"to\":\"A\",\"candidate\":[]}");
  expect_send(1, "{\"ty\":\"candidate\",\"id\":\"x1\",\"from\":\"B\",\"candidate\":[]}");
  /* without id: the most recent exchange between the two */
  open_ab(f, "ab2");
  ws(f, 2, "{\"ty\":\"candidate\",\"to\":\"A\",\"candidate\":[\"k3\"]}");
  expect_send(1, "{\"ty\":\"candidate\",\"id\":\"ab2\",\"from\":\"B\",\"candidate\":[\"k3\"]}");
  /* with id */
  ws(f, 2, "{\"ty\":\"candidate\",\"id\":\"x1\",\"to\":\"A\",\"candidate\":[\"k4\"]}");
  expect_send(1, "{\"ty\":\"candidate\",\"id\":\"x1\",\"from\":\"B\",\"candidate\":[\"k4\"]}");
  /* an id that is not between the two */
  ws(f, 2, "{\"ty\":\"candidate\",\"id\":\"zz\",\"to\":\"A\",\"candidate\":[]}");
  expect_send(2, ERR(404, "id: no exchange 'zz' with 'A'", "\"zz\""));
  ws(f, 3, "{\"ty\":\"candidate\",\"id\":\"x1\",\"to\":\"A\",\"candidate\":[]}");
  expect_send(3, ERR(404, "id: no exchange 'x1' with 'A'", "\"x1\""));
  ws(f, 2, "{\"ty\":\"candidate\",\"id\":\"x1\",\"to\":\"C\",\"candidate\":[]}");
  expect_send(2, ERR(404, "id: no exchange 'x1' with 'C'", "\"x1\""));
  ws(f, 3, "{\"ty\":\"candidate\",\"to\":\"A\",\"candidate\":[]}");
  expect_send(3, ERR(404, "to: no exchange with 'A'", "null"));
  expect_nothing();
}

static void test_bye(void **state) {
  fixture_t *f = *state;
  reg_ab(f);
  reg(f, "C", 3);
  open_ab(f, "ab1");
  open_ab(f, "ab2");
  post_ok(f, OFFER_BODY("B", "A", ",\"id\":\"ab3\""), "ab3"); /* pending */
  expect_send(2, OFFER_PUSH("ab3", "B", "A"));
  post_ok(f, OFFER_BODY("C", "A", ",\"id\":\"ac\""), "ac");
  expect_send(3, OFFER_PUSH("ac", "C", "A"));
  assert_int_equal(sig_router_exchanges(f->r), 4);

  /* with id: that exchange only */
  ws(f, 2, "{\"ty\":\"bye\",\"id\":\"ab1\",\"to\":\"A\"}");
  expect_send(1, BYE("ab1", "B", "hangup"));
  expect_nothing();
  assert_int_equal(sig_router_exchanges(f->r), 3);
  ws(f, 2, "{\"ty\":\"bye\",\"id\":\"ab1\",\"to\":\"A\"}");
  expect_send(2, ERR(404, "id: no exchange 'ab1' with 'A'", "\"ab1\""));

  /* without id: every exchange between the pair (the most recent first), pending ones too */
  ws(f, 1, "{\"ty\":\"bye\",\"to\":\"B\"}");
  expect_send(2, BYE("ab3", "A", "hangup"));
  expect_send(2, BYE("ab2", "A", "hangup"));
  expect_nothing();
  assert_int_equal(sig_router_exchanges(f->r), 1);
  ws(f, 1, "{\"ty\":\"bye\",\"to\":\"B\"}");
  expect_send(1, ERR(404, "to: no exchange with 'B'", "null"));
  /* the pending offer ended: B has nothing to answer */
  ws(f, 2, "{\"ty\":\"answer\"," ANSWER_RESP "}");
  expect_send(2, ERR(404, "answer: no pending offer for you", "null"));
  /* A-C is untouched */
  ws(f, 3, "{\"ty\":\"candidate\",\"to\":\"A\",\"candidate\":[]}");
  expect_send(1, "{\"ty\":\"candidate\",\"id\":\"ac\",\"from\":\"C\",\"candidate\":[]}");
  expect_nothing();
}

static void test_unregister_sends_bye(void **state) {
  fixture_t *f = *state;
  reg_ab(f);
  reg(f, "C", 3);
  reg(f, "D", 4);
  open_ab(f, "ab");
  post_ok(f, OFFER_BODY("A", "C", ""), "x1"); /* C->A pending */
  expect_send(1, OFFER_PUSH("x1", "A", "C"));
  post_ok(f, OFFER_BODY("C", "A", ""), "x2"); /* A->C pending */
  expect_send(3, OFFER_PUSH("x2", "C", "A"));
  post_ok(f, OFFER_BODY("D", "C", ""), "x3"); /* not A's */
  expect_send(4, OFFER_PUSH("x3", "D", "C"));

  sig_router_unregister(f->r, f->peers[1]);
  expect_send(2, BYE("ab", "A", "disconnected"));
  expect_send(3, BYE("x1", "A", "disconnected"));
  expect_send(3, BYE("x2", "A", "disconnected"));
  expect_nothing();
  assert_int_equal(sig_router_exchanges(f->r), 1);
  assert_int_equal(sig_router_domains(f->r), 3);
  /* the pending count of C was released along with the exchange */
  ws(f, 3, "{\"ty\":\"answer\"," ANSWER_RESP "}");
  expect_send(3, ERR(404, "answer: no pending offer for you", "null"));
  expect_nothing();
}

static void test_answer_timeout(void **state) {
  fixture_t *f = *state;
  reg_ab(f);
  reg(f, "C", 3);
  post_ok(f, OFFER_BODY("B", "A", ",\"id\":\"call-1\""), "call-1");
  expect_send(2, OFFER_PUSH("call-1", "B", "A"));
  clock_ms += 10000;
  post_ok(f, OFFER_BODY("B", "C", ""), "x1");
  expect_send(2, OFFER_PUSH("x1", "B", "C"));
  open_ab(f, "open");
  sig_router_tick(f->r);
  expect_nothing();

  clock_ms += 19999; /* call-1 is 29.999 s old */
  sig_router_tick(f->r);
  expect_nothing();
  clock_ms += 1;
  sig_router_tick(f->r);
  expect_send(1, ERR(408, "no answer from 'B' within 30 s", "\"call-1\""));
  expect_send(2, BYE("call-1", "A", "timeout"));
  expect_nothing();
  assert_int_equal(sig_router_exchanges(f->r), 2);
  sig_router_tick(f->r);
  expect_nothing();

  clock_ms += 10000;
  sig_router_tick(f->r);
  expect_send(3, ERR(408, "no answer from 'B' within 30 s", "\"x1\""));
  expect_send(2, BYE("x1", "C", "timeout"));
  expect_nothing();
  /* the answered exchange never expires */
  clock_ms += 1000000;
  sig_router_tick(f->r);
  expect_nothing();
  assert_int_equal(sig_router_exchanges(f->r), 1);
  /* an expired offer cannot be answered */
  ws(f, 2, "{\"ty\":\"answer\",\"id\":\"call-1\"," ANSWER_RESP "}");
  expect_send(2, ERR(404, "id: no pending offer 'call-1' for you", "\"call-1\""));
  expect_nothing();
}

static int setup_two_exchanges(void **state) {
  sig_router_limits_t l = default_limits();
  l.max_exchanges_per_peer = 2;
  return setup_with(state, &l);
}

static void test_max_exchanges_eviction(void **state) {
  fixture_t *f = *state;
  reg_ab(f);
  open_ab(f, "ab1");
  open_ab(f, "ab2");
  /* a third: the oldest answered exchange (ab1) is forgotten, silently */
  post_ok(f, OFFER_BODY("B", "A", ",\"id\":\"ab3\""), "ab3");
  expect_send(2, OFFER_PUSH("ab3", "B", "A"));
  expect_nothing();
  assert_int_equal(sig_router_exchanges(f->r), 2);
  ws(f, 1, "{\"ty\":\"candidate\",\"id\":\"ab1\",\"to\":\"B\",\"candidate\":[]}");
  expect_send(1, ERR(404, "id: no exchange 'ab1' with 'B'", "\"ab1\""));
  ws(f, 1, "{\"ty\":\"candidate\",\"id\":\"ab2\",\"to\":\"B\",\"candidate\":[]}");
  expect_send(2, "{\"ty\":\"candidate\",\"id\":\"ab2\",\"from\":\"A\",\"candidate\":[]}");
  /* ab2 answered, ab3 pending: the next offer evicts ab2 */
  post_ok(f, OFFER_BODY("B", "A", ",\"id\":\"ab4\""), "ab4");
  expect_send(2, OFFER_PUSH("ab4", "B", "A"));
  assert_int_equal(sig_router_exchanges(f->r), 2);
  /* both pending: nothing can be evicted */
  post_fails(f, OFFER_BODY("B", "A", ""), 429, "offer_domain: 'A' has too many open exchanges");
  expect_nothing();
  assert_int_equal(sig_router_exchanges(f->r), 2);
}

/* A refused offer must not have evicted anything (a failing call leaves its inputs unchanged). */
static void test_max_exchanges_refusal_evicts_nothing(void **state) {
  fixture_t *f = *state;
  reg_ab(f);
  reg(f, "C", 3);
  reg(f, "D", 4);
  /* A: two answered exchanges (with C and D) */
  post_ok(f, OFFER_BODY("C", "A", ",\"id\":\"ac\""), "ac");
  expect_send(3, OFFER_PUSH("ac", "C", "A"));
  ws(f, 3, "{\"ty\":\"answer\"," ANSWER_RESP "}");
  expect_send(1, ANSWER_PUSH("ac", "C", "A"));
  post_ok(f, OFFER_BODY("D", "A", ",\"id\":\"ad\""), "ad");
  expect_send(4, OFFER_PUSH("ad", "D", "A"));
  ws(f, 4, "{\"ty\":\"answer\"," ANSWER_RESP "}");
  expect_send(1, ANSWER_PUSH("ad", "D", "A"));
  /* B: two pending offers (from C and D) */
  post_ok(f, OFFER_BODY("B", "C", ",\"id\":\"cb\""), "cb");
  expect_send(2, OFFER_PUSH("cb", "B", "C"));
  post_ok(f, OFFER_BODY("B", "D", ",\"id\":\"db\""), "db");
  expect_send(2, OFFER_PUSH("db", "B", "D"));
  assert_int_equal(sig_router_exchanges(f->r), 4);

  /* B has no room and nothing to evict: refused, and A's exchanges are all still there */
  post_fails(f, OFFER_BODY("B", "A", ""), 429, "answer_domain: 'B' has too many open exchanges");
  expect_nothing();
  assert_int_equal(sig_router_exchanges(f->r), 4);
  ws(f, 1, "{\"ty\":\"candidate\",\"id\":\"ac\",\"to\":\"C\",\"candidate\":[]}");
  expect_send(3, "{\"ty\":\"candidate\",\"id\":\"ac\",\"from\":\"A\",\"candidate\":[]}");
  expect_nothing();
}

/* Forgetting the offer peer's oldest exchange may make room on the answer peer too: then nothing
 * more is forgotten. */
static void test_max_exchanges_one_eviction_for_both(void **state) {
  fixture_t *f = *state;
  reg_ab(f);
  reg(f, "C", 3);
  reg(f, "D", 4);
  open_ab(f, "ab"); /* the oldest of A's and of B's */
  post_ok(f, OFFER_BODY("C", "A", ",\"id\":\"ac\""), "ac");
  expect_send(3, OFFER_PUSH("ac", "C", "A"));
  ws(f, 3, "{\"ty\":\"answer\"," ANSWER_RESP "}");
  expect_send(1, ANSWER_PUSH("ac", "C", "A"));
  post_ok(f, OFFER_BODY("B", "D", ",\"id\":\"db\""), "db");
  expect_send(2, OFFER_PUSH("db", "B", "D"));
  ws(f, 2, "{\"ty\":\"answer\"," ANSWER_RESP "}");
  expect_send(4, ANSWER_PUSH("db", "B", "D"));

  post_ok(f, OFFER_BODY("B", "A", ",\"id\":\"ab2\""), "ab2");
  expect_send(2, OFFER_PUSH("ab2", "B", "A"));
  assert_int_equal(sig_router_exchanges(f->r), 3);
  ws(f, 4, "{\"ty\":\"candidate\",\"to\":\"B\",\"candidate\":[]}");
  expect_send(2, "{\"ty\":\"candidate\",\"id\":\"db\",\"from\":\"D\",\"candidate\":[]}");
  ws(f, 1, "{\"ty\":\"candidate\",\"id\":\"ab\",\"to\":\"B\",\"candidate\":[]}");
  expect_send(1, ERR(404, "id: no exchange 'ab' with 'B'", "\"ab\""));
  expect_nothing();
}

static void test_shutdown(void **state) {
  fixture_t *f = *state;
  reg_ab(f);
  reg(f, "C", 3);
  open_ab(f, "ab");
  post_ok(f, OFFER_BODY("C", "A", ""), "x1");
  expect_send(3, OFFER_PUSH("x1", "C", "A"));
  sig_router_shutdown(f->r);
  post_fails(f, OFFER_BODY("B", "A", ""), 503, "server: shutting down");
  ws(f, 1,
     "{\"ty\":\"offer\",\"id\":\"w1\",\"offer_req\":{\"offer_sdp\":\"" SDP
     "\","
     "\"candidate\":[],\"answer_domain\":\"B\"}}");
  expect_send(1, ERR(503, "server: shutting down", "\"w1\""));
  expect_nothing();
  /* disconnects send no bye */
  sig_router_unregister(f->r, f->peers[1]);
  expect_nothing();
  assert_int_equal(sig_router_exchanges(f->r), 0);
  assert_int_equal(sig_router_domains(f->r), 2);
}

/* The teardown frees the router with live peers and exchanges: no notification, no leak. */
static void test_free_live(void **state) {
  fixture_t *f = *state;
  char name[16];
  reg_ab(f);
  for (int i = 2; i < 6; i++) {
    snprintf(name, sizeof name, "p%d", i);
    reg(f, name, i + 1);
  }
  open_ab(f, "open1");
  post_ok(f, OFFER_BODY("p2", "p3", ""), "x1");
  post_ok(f, OFFER_BODY("p4", "p3", ""), "x2");
  post_ok(f, OFFER_BODY("A", "p5", ""), "x3");
  clear_events();
  assert_int_equal(sig_router_exchanges(f->r), 4);
  sig_router_free(f->r);
  f->r = NULL;
  expect_nothing();
  sig_router_free(NULL);
}

/* Many peers (past the map's initial size) freed by the teardown. */
static void test_free_many(void **state) {
  fixture_t *f = *state;
  sig_router_free(f->r);
  sig_router_limits_t l = default_limits();
  l.max_domains = 1000;
  f->r = new_router(&l);
  char name[16], body[512];
  for (int i = 0; i < 300; i++) {
    sig_router_peer_t *p = NULL;
    snprintf(name, sizeof name, "peer%d", i);
    assert_int_equal(reg_code(f, name, strlen(name), 100 + i, &p), 0);
  }
  assert_int_equal(sig_router_domains(f->r), 300);
  for (int i = 0; i + 1 < 300; i += 2) {
    char id[SIG_MSG_ID_MAX + 1], err[SIG_MSG_ERR_MAX];
    snprintf(body, sizeof body,
             "{\"offer_sdp\":\"" SDP
             "\",\"candidate\":[],\"answer_domain\":\"peer%d\","
             "\"offer_domain\":\"peer%d\"}",
             i, i + 1);
    assert_int_equal(post(f, body, id, err), 200);
  }
  assert_int_equal(sig_router_exchanges(f->r), 150);
  clear_events();
  sig_router_free(f->r);
  f->r = NULL;
  expect_nothing();
}

int main(void) {
  sig_log_set_level(SIG_LOG_ERROR); /* the router logs every offer at INFO */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_register_unregister, setup, teardown),
      cmocka_unit_test_setup_teardown(test_duplicate_replace, setup, teardown),
      cmocka_unit_test_setup_teardown(test_duplicate_reject, setup_reject, teardown),
      cmocka_unit_test_setup_teardown(test_full, setup_two_domains, teardown),
      cmocka_unit_test_setup_teardown(test_post_offer, setup, teardown),
      cmocka_unit_test_setup_teardown(test_post_offer_errors, setup_two_pending, teardown),
      cmocka_unit_test_setup_teardown(test_answer_by_id, setup, teardown),
      cmocka_unit_test_setup_teardown(test_answer_by_echoed_offer_domain, setup, teardown),
      cmocka_unit_test_setup_teardown(test_answer_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_message, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ws_offer, setup, teardown),
      cmocka_unit_test_setup_teardown(test_candidate, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bye, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unregister_sends_bye, setup, teardown),
      cmocka_unit_test_setup_teardown(test_answer_timeout, setup, teardown),
      cmocka_unit_test_setup_teardown(test_max_exchanges_eviction, setup_two_exchanges, teardown),
      cmocka_unit_test_setup_teardown(test_max_exchanges_refusal_evicts_nothing,
                                      setup_two_exchanges, teardown),
      cmocka_unit_test_setup_teardown(test_max_exchanges_one_eviction_for_both, setup_two_exchanges,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_shutdown, setup, teardown),
      cmocka_unit_test_setup_teardown(test_free_live, setup, teardown),
      cmocka_unit_test_setup_teardown(test_free_many, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
