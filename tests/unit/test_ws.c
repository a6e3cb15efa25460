/* Unit tests for sig_ws: masked client frames built here and fed whole, byte by byte and split at
 * every point, with the server's replies recorded byte for byte (UTF-8 validation is checked the
 * same way, through text frames); the framing helpers and the handshake key functions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* cmocka needs the headers above first */
#include <cmocka.h>

#include "sig_util.h"
#include "sig_ws.h"

/* A growing byte buffer. */
typedef struct {
  uint8_t *data;
  size_t len, cap;
} buf_t;

static void buf_add(buf_t *b, const void *data, size_t len) {
  if (len == 0) return; /* data may be NULL */
  if (b->len + len > b->cap) {
    b->cap = (b->len + len) * 2 + 64;
    b->data = realloc(b->data, b->cap);
    assert_non_null(b->data);
  }
  memcpy(b->data + b->len, data, len);
  b->len += len;
}

static void buf_free(buf_t *b) {
  free(b->data);
  memset(b, 0, sizeof *b);
}

/* What the parser did: messages delivered and bytes written. */
typedef struct {
  char *msgs[8];
  size_t msg_lens[8];
  int nmsgs;
  buf_t written;
  int fail_writes; /* the write callback reports the transport gone */
} rec_t;

static int on_text(void *user, const char *msg, size_t len) {
  rec_t *r = user;
  assert_true(r->nmsgs < 8);
  r->msgs[r->nmsgs] = malloc(len + 1);
  if (len > 0) memcpy(r->msgs[r->nmsgs], msg, len); /* an empty message may come as NULL */
  r->msgs[r->nmsgs][len] = '\0';
  r->msg_lens[r->nmsgs++] = len;
  return 0;
}

static int on_write(void *user, const char *data, size_t len) {
  rec_t *r = user;
  if (r->fail_writes) return -1;
  buf_add(&r->written, data, len);
  return 0;
}

static const sig_ws_callbacks_t callbacks = {on_text, on_write};

static void rec_free(rec_t *r) {
  for (int i = 0; i < r->nmsgs; i++) free(r->msgs[i]);
  buf_free(&r->written);
  memset(r, 0, sizeof *r);
}

static const uint8_t mask_key[4] = {0x37, 0xfa, 0x21, 0x3d};

/* Appends a client frame (masked unless masked is 0) with the shortest length form. */
static void client_frame_m(buf_t *b, int fin, unsigned opcode, const void *payload, size_t len,
                           int masked) {
  uint8_t hdr[14];
  size_t n = 0;
  hdr[n++] = (uint8_t)((fin ? 0x80 : 0) | opcode);
  uint8_t m = masked ? 0x80 : 0;
  if (len < 126) {
    hdr[n++] = (uint8_t)(m | len);
  } else if (len < 65536) {
    hdr[n++] = m | 126;
    hdr[n++] = (uint8_t)(len >> 8);
    hdr[n++] = (uint8_t)len;
  } else {
    hdr[n++] = m | 127;
    for (int i = 7; i >= 0; i--) hdr[n++] = (uint8_t)((uint64_t)len >> (8 * i));
  }
  if (masked) {
    memcpy(hdr + n, mask_key, 4);
    n += 4;
  }
  buf_add(b, hdr, n);
  const uint8_t *p = payload;
  for (size_t i = 0; i < len; i++) {
    uint8_t c = masked ? (uint8_t)(p[i] ^ mask_key[i % 4]) : p[i];
    buf_add(b, &c, 1);
  }
}

static void client_frame(buf_t *b, int fin, unsigned opcode, const void *payload, size_t len) {
  client_frame_m(b, fin, opcode, payload, len, 1);
}

static void client_text(buf_t *b, const char *s) {
  client_frame(b, 1, SIG_WS_OP_TEXT, s, strlen(s));
}

/* The server's close frame, as the parser must write it. */
static void server_close(buf_t *b, uint16_t code, const char *reason) {
  uint8_t f[127];
  buf_add(b, f, sig_ws_close_frame(f, code, reason));
}

/* What feeding a stream produced. */
typedef struct {
  rec_t rec;
  int rc;        /* the last sig_ws_feed result */
  uint16_t code; /* sig_ws_close_code at the end */
} outcome_t;

/* sig_ws_feed, which must consume everything (these tests never ask it to stop). */
static int feed(sig_ws_t *ws, const char *buf, size_t len) {
  size_t used = 0;
  int rc = sig_ws_feed(ws, buf, len, &used);
  assert_int_equal(used, len);
  return rc;
}

/* Feeds data[0..n) in chunks ending at cuts[] and n; stops feeding once the parser has closed. */
static void feed_chunks(uint64_t max, const uint8_t *data, size_t n, const size_t *cuts,
                        size_t ncuts, outcome_t *out) {
  memset(out, 0, sizeof *out);
  sig_ws_t *ws = sig_ws_new(&callbacks, &out->rec, max);
  size_t start = 0;
  for (size_t k = 0; k <= ncuts && start < n; k++) {
    size_t end = k < ncuts ? cuts[k] : n;
    out->rc = feed(ws, (const char *)data + start, end - start);
    start = end;
    if (out->rc != SIG_WS_OPEN) break;
  }
  out->code = sig_ws_close_code(ws);
  sig_ws_free(ws);
}

/* 1 if got matches want; else says how it differs (how names the feed) and returns 0. */
static int same_outcome(const outcome_t *got, const outcome_t *want, const char *how) {
  int same = got->rc == want->rc && got->code == want->code && got->rec.nmsgs == want->rec.nmsgs &&
             got->rec.written.len == want->rec.written.len;
  for (int i = 0; same && i < want->rec.nmsgs; i++)
    same = got->rec.msg_lens[i] == want->rec.msg_lens[i] &&
           memcmp(got->rec.msgs[i], want->rec.msgs[i], want->rec.msg_lens[i]) == 0;
  if (same && want->rec.written.len > 0)
    same = memcmp(got->rec.written.data, want->rec.written.data, want->rec.written.len) == 0;
  if (!same)
    print_error(
        "%s: rc %d code %u, %d messages, %zu bytes written; want rc %d code %u, %d "
        "messages, %zu bytes written\n",
        how, got->rc, got->code, got->rec.nmsgs, got->rec.written.len, want->rc, want->code,
        want->rec.nmsgs, want->rec.written.len);
  return same;
}

/* Feeds the stream whole, byte by byte, and split in two at every point: each must give want.
 * Frees want, so that a failure leaks nothing. */
static void check_feeds(uint64_t max, const buf_t *in, outcome_t *want) {
  outcome_t got;
  char how[48];
  int bad = 0;
  feed_chunks(max, in->data, in->len, NULL, 0, &got);
  bad += !same_outcome(&got, want, "whole");
  rec_free(&got.rec);
  size_t *cuts = calloc(in->len, sizeof *cuts);
  for (size_t i = 1; i < in->len; i++) cuts[i - 1] = i;
  feed_chunks(max, in->data, in->len, cuts, in->len - 1, &got);
  bad += !same_outcome(&got, want, "byte by byte");
  rec_free(&got.rec);
  for (size_t i = 1; i < in->len; i++) {
    feed_chunks(max, in->data, in->len, &i, 1, &got);
    snprintf(how, sizeof how, "split at %zu", i);
    bad += !same_outcome(&got, want, how);
    rec_free(&got.rec);
  }
  free(cuts);
  rec_free(&want->rec);
  assert_int_equal(bad, 0);
}

/* Sets want to: these messages delivered, these bytes written, rc and close code. */
static void expect(outcome_t *want, int rc, uint16_t code, const buf_t *written, int nmsgs, ...) {
  va_list ap;
  memset(want, 0, sizeof *want);
  want->rc = rc;
  want->code = code;
  if (written != NULL) buf_add(&want->rec.written, written->data, written->len);
  va_start(ap, nmsgs);
  for (int i = 0; i < nmsgs; i++) {
    const char *m = va_arg(ap, const char *);
    on_text(&want->rec, m, strlen(m));
  }
  va_end(ap);
}

static void test_text_once(void **state) {
  buf_t in = {0};
  outcome_t want;
  (void)state;
  client_text(&in, "{\"ty\":\"bye\",\"to\":\"B\"}");
  expect(&want, SIG_WS_OPEN, 0, NULL, 1, "{\"ty\":\"bye\",\"to\":\"B\"}");
  check_feeds(1024, &in, &want);
  /* two messages, an empty one, and a 16-bit length */
  char big[300];
  memset(big, 'z', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  client_text(&in, "");
  client_text(&in, big);
  client_text(&in, "h\xc3\xa9llo \xf0\x9f\x98\x80");
  expect(&want, SIG_WS_OPEN, 0, NULL, 4, "{\"ty\":\"bye\",\"to\":\"B\"}", "", big,
         "h\xc3\xa9llo \xf0\x9f\x98\x80");
  check_feeds(1024, &in, &want);
  buf_free(&in);
}

static void test_text_64bit_length(void **state) {
  buf_t in = {0};
  outcome_t want, got;
  int same;
  (void)state;
  char *big = malloc(70001);
  memset(big, 'q', 70000);
  big[70000] = '\0';
  client_text(&in, big);
  expect(&want, SIG_WS_OPEN, 0, NULL, 1, big);
  free(big);
  feed_chunks(100000, in.data, in.len, NULL, 0, &got);
  same = same_outcome(&got, &want, "whole");
  rec_free(&got.rec);
  /* across wslay's 4096-byte read buffer */
  size_t cuts[] = {1, 2, 9, 13, 14, 4000, 4096, 4097, 65536, 70013};
  feed_chunks(100000, in.data, in.len, cuts, sizeof cuts / sizeof cuts[0], &got);
  same = same_outcome(&got, &want, "chunks") && same;
  rec_free(&got.rec);
  rec_free(&want.rec);
  buf_free(&in);
  assert_true(same);
}

/* Three fragments with a ping between the second and the third. */
static void fragmented_stream(buf_t *in, size_t bounds[4]) {
  client_frame(in, 0, SIG_WS_OP_TEXT, "Hel", 3);
  bounds[0] = in->len;
  client_frame(in, 0, 0, "lo, ", 4);
  bounds[1] = in->len;
  client_frame(in, 1, SIG_WS_OP_PING, "pp\x01", 3);
  bounds[2] = in->len;
  client_frame(in, 1, 0, "w\xc3\xb6rld", 6);
  bounds[3] = in->len;
}

static void test_fragmented_with_ping(void **state) {
  buf_t in = {0}, pong = {0};
  size_t bounds[4];
  outcome_t want;
  (void)state;
  fragmented_stream(&in, bounds);
  /* the pong carries the ping's payload, unmasked */
  buf_add(&pong, "\x8a\x03pp\x01", 5);
  expect(&want, SIG_WS_OPEN, 0, &pong, 1, "Hello, w\xc3\xb6rld");
  check_feeds(1024, &in, &want);
  buf_free(&pong);
  buf_free(&in);
}

static void test_idle(void **state) {
  buf_t in = {0};
  size_t bounds[4];
  rec_t rec = {0};
  (void)state;
  fragmented_stream(&in, bounds);
  size_t frag_end = in.len;
  client_text(&in, "next");
  client_frame(&in, 1, SIG_WS_OP_PONG, "", 0);
  size_t ends[] = {bounds[0], bounds[1], bounds[2], bounds[3], frag_end + 10, in.len};
  /* idle: a frame boundary outside a fragmented message */
  int idle_at[] = {0, 0, 0, 1, 1, 1};

  sig_ws_t *ws = sig_ws_new(&callbacks, &rec, 1024);
  assert_true(sig_ws_idle(ws));
  size_t k = 0;
  for (size_t i = 0; i < in.len; i++) {
    assert_int_equal(feed(ws, (const char *)in.data + i, 1), SIG_WS_OPEN);
    int boundary = k < sizeof ends / sizeof ends[0] && i + 1 == ends[k];
    int want = boundary ? idle_at[k] : 0;
    if (sig_ws_idle(ws) != want) print_error("after byte %zu: idle %d\n", i, !want);
    assert_int_equal(sig_ws_idle(ws), want);
    if (boundary) k++;
  }
  assert_int_equal(rec.nmsgs, 2);
  assert_string_equal(rec.msgs[0], "Hello, w\xc3\xb6rld");
  assert_string_equal(rec.msgs[1], "next");
  sig_ws_free(ws);
  rec_free(&rec);

  /* frame by frame, a fresh parser whenever the last one was idle (as the server does) */
  ws = sig_ws_new(&callbacks, &rec, 1024);
  size_t start = 0;
  for (k = 0; k < sizeof ends / sizeof ends[0]; k++) {
    if (ws == NULL) ws = sig_ws_new(&callbacks, &rec, 1024);
    assert_int_equal(feed(ws, (const char *)in.data + start, ends[k] - start), SIG_WS_OPEN);
    start = ends[k];
    assert_int_equal(sig_ws_idle(ws), idle_at[k]);
    if (sig_ws_idle(ws)) {
      sig_ws_free(ws);
      ws = NULL;
    }
  }
  assert_null(ws);
  assert_int_equal(rec.nmsgs, 2);
  assert_string_equal(rec.msgs[0], "Hello, w\xc3\xb6rld");
  assert_string_equal(rec.msgs[1], "next");
  rec_free(&rec);

  /* a whole frame and part of the next in one feed */
  ws = sig_ws_new(&callbacks, &rec, 1024);
  assert_int_equal(feed(ws, (const char *)in.data + bounds[3], in.len - bounds[3] - 1),
                   SIG_WS_OPEN);
  assert_false(sig_ws_idle(ws));
  assert_int_equal(feed(ws, (const char *)in.data + in.len - 1, 1), SIG_WS_OPEN);
  assert_true(sig_ws_idle(ws));
  sig_ws_free(ws);
  rec_free(&rec);
  buf_free(&in);
}

/* Each refusal: the frames that provoke it, then a text frame that must not be delivered. */
static void check_refusal(uint64_t max, buf_t *in, uint16_t code, const char *reason,
                          int nmsgs_before, const char *msg_before) {
  buf_t close = {0};
  outcome_t want;
  client_text(in, "after");
  server_close(&close, code, reason);
  if (nmsgs_before)
    expect(&want, SIG_WS_CLOSED, code, &close, 1, msg_before);
  else
    expect(&want, SIG_WS_CLOSED, code, &close, 0);
  check_feeds(max, in, &want);
  buf_free(&close);
}

static void test_binary_refused(void **state) {
  buf_t in = {0};
  (void)state;
  client_text(&in, "first");
  client_frame(&in, 1, SIG_WS_OP_BINARY, "\x00\x01\x02", 3);
  check_refusal(1024, &in, 1003, "binary frames are not supported", 1, "first");
  buf_free(&in);
  /* fragmented binary */
  client_frame(&in, 0, SIG_WS_OP_BINARY, "\x00", 1);
  client_frame(&in, 1, 0, "\x01", 1);
  check_refusal(1024, &in, 1003, "binary frames are not supported", 0, NULL);
  buf_free(&in);
}

/* 1007 "invalid UTF-8", at the first bad byte (docs/PROTOCOL.md). */
static void test_invalid_utf8_refused(void **state) {
  buf_t in = {0};
  (void)state;
  client_text(&in, "first");
  client_text(&in, "caf\xc3");
  check_refusal(1024, &in, 1007, "invalid UTF-8", 1, "first");
  buf_free(&in);
  /* across fragments, each half harmless alone: \xed\xa0\x80 is a surrogate */
  client_frame(&in, 0, SIG_WS_OP_TEXT, "a\xed", 2);
  client_frame(&in, 1, 0, "\xa0\x80", 2);
  check_refusal(1024, &in, 1007, "invalid UTF-8", 0, NULL);
  buf_free(&in);
  /* a bad byte in the first fragment is refused before the message ends */
  client_frame(&in, 0, SIG_WS_OP_TEXT, "\xff", 1);
  outcome_t got;
  feed_chunks(1024, in.data, in.len, NULL, 0, &got);
  assert_int_equal(got.rc, SIG_WS_CLOSED);
  assert_int_equal(got.code, 1007);
  rec_free(&got.rec);
  buf_free(&in);
}

/* 1009 "message too big", as soon as a frame header announces too much. */
static void test_too_big(void **state) {
  buf_t in = {0};
  char payload[200], exact[17];
  (void)state;
  memset(payload, 'x', sizeof payload);
  memset(exact, 'x', 16);
  exact[16] = '\0';
  /* one byte over, in one frame */
  client_frame(&in, 1, SIG_WS_OP_TEXT, payload, 17);
  check_refusal(16, &in, 1009, "message too big", 0, NULL);
  buf_free(&in);
  /* far over, in one frame */
  client_frame(&in, 1, SIG_WS_OP_TEXT, payload, 100);
  check_refusal(16, &in, 1009, "message too big", 0, NULL);
  buf_free(&in);
  /* over across fragments: 10 + 7 */
  client_frame(&in, 0, SIG_WS_OP_TEXT, payload, 10);
  client_frame(&in, 1, 0, payload, 7);
  check_refusal(16, &in, 1009, "message too big", 0, NULL);
  buf_free(&in);
  /* far over across fragments: 10 + 40 */
  client_frame(&in, 0, SIG_WS_OP_TEXT, payload, 10);
  client_frame(&in, 1, 0, payload, 40);
  check_refusal(16, &in, 1009, "message too big", 0, NULL);
  buf_free(&in);
  /* exactly the limit, in one frame and in fragments, is delivered; control frames don't count */
  outcome_t want;
  buf_t pong = {0};
  client_frame(&in, 1, SIG_WS_OP_TEXT, exact, 16);
  client_frame(&in, 0, SIG_WS_OP_TEXT, exact, 8);
  client_frame(&in, 1, SIG_WS_OP_PING, exact, 16);
  client_frame(&in, 1, 0, exact, 8);
  buf_add(&pong, "\x8a\x10", 2);
  buf_add(&pong, exact, 16);
  expect(&want, SIG_WS_OPEN, 0, &pong, 2, exact, exact);
  check_feeds(16, &in, &want);
  buf_free(&pong);
  buf_free(&in);
}

/* Violations of RFC 6455 close with 1002 "protocol error" (docs/PROTOCOL.md). */
static void test_protocol_errors(void **state) {
  static const struct {
    const char *what;
    uint8_t frame[16];
    size_t len;
    const char *reason;
  } rows[] = {
      {"unmasked", {0x81, 0x02, 'h', 'i'}, 4, "protocol error"},
      {"continuation first", {0x80, 0x81, 1, 2, 3, 4, 'x'}, 7, "protocol error"},
      {"reserved data opcode", {0x83, 0x81, 1, 2, 3, 4, 'x'}, 7, "protocol error"},
      {"reserved control opcode", {0x8b, 0x81, 1, 2, 3, 4, 'x'}, 7, "protocol error"},
      {"rsv bits", {0xc1, 0x81, 1, 2, 3, 4, 'x'}, 7, "protocol error"},
      {"text inside a fragmented text",
       {0x01, 0x81, 0, 0, 0, 0, 'a', 0x81, 0x81, 0, 0, 0, 0, 'b'},
       14,
       "protocol error"},
      {"close code 1005", {0x88, 0x82, 0, 0, 0, 0, 0x03, 0xed}, 8, "protocol error"},
      {"fragmented ping", {0x09, 0x81, 1, 2, 3, 4, 'x'}, 7, "protocol error"},
      {"126-byte ping", {0x89, 0xfe, 0x00, 0x7e, 0, 0, 0, 0}, 8, "protocol error"},
      {"one-byte close", {0x88, 0x81, 0, 0, 0, 0, 0x03}, 7, "protocol error"},
      {"non-minimal length",
       {0x81, 0xfe, 0x00, 0x05, 0, 0, 0, 0, 'h', 'e', 'l', 'l', 'o'},
       13,
       "protocol error"},
  };
  (void)state;
  for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
    buf_t in = {0}, close = {0};
    outcome_t want, got;
    buf_add(&in, rows[r].frame, rows[r].len);
    client_text(&in, "after");
    server_close(&close, 1002, rows[r].reason);
    expect(&want, SIG_WS_CLOSED, 1002, &close, 0);
    feed_chunks(1024, in.data, in.len, NULL, 0, &got);
    if (got.code != 1002 || got.rec.written.len != close.len)
      print_error("%s: rc %d code %u written %zu\n", rows[r].what, got.rc, got.code,
                  got.rec.written.len);
    rec_free(&got.rec);
    check_feeds(1024, &in, &want);
    buf_free(&close);
    buf_free(&in);
  }
}

static void test_client_close(void **state) {
  static const uint8_t bye[] = {0x03, 0xe8, 'b', 'y', 'e'};
  static const uint8_t echo_bye[] = {0x88, 0x05, 0x03, 0xe8, 'b', 'y', 'e'};
  buf_t in = {0}, echo = {0};
  outcome_t want;
  (void)state;
  /* echoed with its code and reason; what follows is not read */
  client_text(&in, "last");
  client_frame(&in, 1, SIG_WS_OP_CLOSE, bye, sizeof bye);
  client_text(&in, "after");
  buf_add(&echo, echo_bye, sizeof echo_bye);
  expect(&want, SIG_WS_CLOSED, 1000, &echo, 1, "last");
  check_feeds(1024, &in, &want);
  buf_free(&echo);
  buf_free(&in);
  /* an empty close is echoed empty (code 1005, "no status received") */
  client_frame(&in, 1, SIG_WS_OP_CLOSE, "", 0);
  buf_add(&echo, "\x88\x00", 2);
  expect(&want, SIG_WS_CLOSED, 1005, &echo, 0);
  check_feeds(1024, &in, &want);
  buf_free(&echo);
  buf_free(&in);
}

/* Contract: once the write callback fails, the parser stops: no message after it is delivered,
 * in this feed or a later one, whether the bytes come whole or split. */
static void test_write_failure(void **state) {
  buf_t in = {0};
  (void)state;
  client_frame(&in, 1, SIG_WS_OP_PING, "p", 1);
  client_frame(&in, 1, SIG_WS_OP_TEXT, "after", 5);
  for (size_t cut = 0; cut <= in.len; cut++) {
    rec_t rec = {0};
    rec.fail_writes = 1;
    sig_ws_t *ws = sig_ws_new(&callbacks, &rec, 1024);
    int a = cut > 0 ? feed(ws, (const char *)in.data, cut) : 0;
    int b = cut < in.len ? feed(ws, (const char *)in.data + cut, in.len - cut) : a;
    assert_true(a < 0 || b < 0);
    assert_int_equal(rec.nmsgs, 0);
    sig_ws_free(ws);
    rec_free(&rec);
  }
  buf_free(&in);
  sig_ws_free(NULL);
}

static void test_frame_header(void **state) {
  static const struct {
    size_t len;
    size_t n;
    uint8_t hdr[10];
  } rows[] = {
      {0, 2, {0x81, 0}},
      {1, 2, {0x81, 1}},
      {125, 2, {0x81, 125}},
      {126, 4, {0x81, 126, 0x00, 0x7e}},
      {65535, 4, {0x81, 126, 0xff, 0xff}},
      {65536, 10, {0x81, 127, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00}},
      {0x123456789aULL, 10, {0x81, 127, 0, 0, 0x00, 0x12, 0x34, 0x56, 0x78, 0x9a}},
  };
  uint8_t hdr[10];
  (void)state;
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    memset(hdr, 0xee, sizeof hdr);
    assert_int_equal(sig_ws_frame_header(hdr, SIG_WS_OP_TEXT, rows[i].len), rows[i].n);
    assert_memory_equal(hdr, rows[i].hdr, rows[i].n);
  }
  assert_int_equal(sig_ws_frame_header(hdr, SIG_WS_OP_PING, 3), 2);
  assert_memory_equal(hdr, "\x89\x03", 2);
  assert_int_equal(sig_ws_frame_header(hdr, SIG_WS_OP_CLOSE, 0), 2);
  assert_memory_equal(hdr, "\x88\x00", 2);
}

static void test_close_frame(void **state) {
  uint8_t out[127];
  char reason[201];
  (void)state;
  assert_int_equal(sig_ws_close_frame(out, 1000, ""), 4);
  assert_memory_equal(out, "\x88\x02\x03\xe8", 4);
  assert_int_equal(sig_ws_close_frame(out, 4000, "replaced"), 12);
  assert_memory_equal(out, "\x88\x0a\x0f\xa0replaced", 12);
  assert_int_equal(sig_ws_close_frame(out, 4503, "server full"), 15);
  assert_memory_equal(out, "\x88\x0d\x11\x97server full", 15);
  /* the reason is cut so that the payload fits a control frame (125 bytes) */
  memset(reason, 'r', 200);
  reason[200] = '\0';
  memset(out, 0, sizeof out);
  assert_int_equal(sig_ws_close_frame(out, 1001, reason), 127);
  assert_memory_equal(out, "\x88\x7d\x03\xe9", 4);
  assert_memory_equal(out + 4, reason, 123);
  reason[123] = '\0';
  assert_int_equal(sig_ws_close_frame(out, 1001, reason), 127);
  assert_int_equal(out[1], 125);
  reason[122] = '\0';
  assert_int_equal(sig_ws_close_frame(out, 1001, reason), 126);
  assert_int_equal(out[1], 124);
}

static void test_key_valid(void **state) {
  static const struct {
    const char *key;
    int valid;
  } rows[] = {
      {"dGhlIHNhbXBsZSBub25jZQ==", 1},
      {"AAAAAAAAAAAAAAAAAAAAAA==", 1},
      {"/+/+/+/+/+/+/+/+/+/+/w==", 1},
      {"dGhlIHNhbXBsZSBub25jZR==", 0},  /* padding bits not zero */
      {"dGhlIHNhbXBsZSBub25jZQ=", 0},   /* 23 characters */
      {"dGhlIHNhbXBsZSBub25jZQ===", 0}, /* 25 */
      {"dGhlIHNhbXBsZSBub25jZQAA", 0},  /* no padding */
      {"dGhlIHNhbXBsZSBub25jZ===", 0},
      {"dGhlIHNhbXBsZSBub2 jZQ==", 0},
      {"dGhlIHNhbXBsZSBub2-jZQ==", 0}, /* base64url is not base64 */
      {"dGhlIHNhbXBsZSBub2_jZQ==", 0},
      {"dGhlIHNhbXBsZSBub25j", 0},
      {"", 0},
      {"ZGVhZGJlZWZkZWFkYmVlZg==", 1},
      {"ZGVhZGJlZWZkZWFkYmVlZmY=", 0}, /* 17 bytes */
  };
  (void)state;
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    if (sig_ws_key_valid(rows[i].key) != rows[i].valid) print_error("row %zu\n", i);
    assert_int_equal(sig_ws_key_valid(rows[i].key), rows[i].valid);
  }
  assert_int_equal(sig_ws_key_valid(NULL), 0);
}

static void test_accept_key(void **state) {
  char out[29];
  (void)state;
  memset(out, 'X', sizeof out);
  sig_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out);
  assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

/* The upgrade checks, in order, each with its status, message and hint header; then the 101. */
static void test_handshake(void **state) {
  static const struct {
    int major, minor;
    const char *upgrade, *connection, *version, *key;
    int has_body;
    int status;
    const char *msg, *hint_name, *hint_value;
  } rows[] = {
      {1, 0, "websocket", "Upgrade", "13", "dGhlIHNhbXBsZSBub25jZQ==", 0, 400,
       "version: a WebSocket upgrade needs HTTP/1.1", NULL, NULL},
      {2, 0, "websocket", "Upgrade", "13", "dGhlIHNhbXBsZSBub25jZQ==", 0, 400,
       "version: a WebSocket upgrade needs HTTP/1.1", NULL, NULL},
      {1, 1, NULL, "Upgrade", "13", "dGhlIHNhbXBsZSBub25jZQ==", 0, 426,
       "upgrade: this endpoint needs a WebSocket upgrade", "Upgrade", "websocket"},
      {1, 1, "h2c", "Upgrade", "13", "dGhlIHNhbXBsZSBub25jZQ==", 0, 400,
       "upgrade: expected websocket", NULL, NULL},
      {1, 1, "websocket", "keep-alive", "13", "dGhlIHNhbXBsZSBub25jZQ==", 0, 400,
       "connection: expected upgrade", NULL, NULL},
      {1, 1, "websocket", NULL, "13", "dGhlIHNhbXBsZSBub25jZQ==", 0, 400,
       "connection: expected upgrade", NULL, NULL},
      {1, 1, "websocket", "Upgrade", "8", "dGhlIHNhbXBsZSBub25jZQ==", 0, 426,
       "sec-websocket-version: only version 13 is supported", "Sec-WebSocket-Version", "13"},
      {1, 1, "websocket", "Upgrade", NULL, "dGhlIHNhbXBsZSBub25jZQ==", 0, 426,
       "sec-websocket-version: only version 13 is supported", "Sec-WebSocket-Version", "13"},
      {1, 1, "websocket", "Upgrade", "13", "short", 0, 400,
       "sec-websocket-key: must be base64 of 16 bytes", NULL, NULL},
      {1, 1, "websocket", "Upgrade", "13", NULL, 0, 400,
       "sec-websocket-key: must be base64 of 16 bytes", NULL, NULL},
      {1, 1, "websocket", "Upgrade", "13", "dGhlIHNhbXBsZSBub25jZQ==", 1, 400,
       "body: a WebSocket upgrade has no body", NULL, NULL},
      {1, 1, "WebSocket, x", "keep-alive, Upgrade", "13", "dGhlIHNhbXBsZSBub25jZQ==", 0, 0, NULL,
       NULL, NULL},
  };
  (void)state;
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    sig_http_request_t r = {.http_major = rows[i].major,
                            .http_minor = rows[i].minor,
                            .h_upgrade = rows[i].upgrade,
                            .h_connection = rows[i].connection,
                            .h_ws_version = rows[i].version,
                            .h_ws_key = rows[i].key,
                            .has_body = rows[i].has_body};
    char out[SIG_WS_HANDSHAKE_MAX];
    size_t len = 0;
    sig_refusal_t why = {0, ""};
    sig_http_header_t hint = {"x", "y"};
    int rc = sig_ws_handshake(&r, out, sizeof out, &len, &why, &hint);
    if (rows[i].status == 0) {
      static const char want[] =
          "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
      assert_int_equal(rc, 0);
      assert_int_equal(len, sizeof want - 1);
      assert_memory_equal(out, want, len);
      continue;
    }
    if (rc != SIG_EREFUSED || why.code != rows[i].status) print_error("row %zu\n", i);
    assert_int_equal(rc, SIG_EREFUSED);
    assert_int_equal(why.code, rows[i].status);
    assert_string_equal(why.msg, rows[i].msg);
    if (rows[i].hint_name == NULL) {
      assert_null(hint.name);
    } else {
      assert_string_equal(hint.name, rows[i].hint_name);
      assert_string_equal(hint.value, rows[i].hint_value);
    }
  }
}

/* The UTF-8 rules, through text frames: valid text is delivered, anything else closed with 1007. */
static void test_utf8(void **state) {
#define U(s, v) \
  { (const uint8_t *)(s), sizeof(s) - 1, v }
  static const struct {
    const uint8_t *s;
    size_t len;
    int valid;
  } rows[] = {
      U("", 1),
      U("plain ascii", 1),
      U("\x00", 1),
      U("\x7f", 1),
      /* valid 2, 3 and 4 byte forms at their edges */
      U("\xc2\x80", 1),
      U("\xdf\xbf", 1),
      U("\xe0\xa0\x80", 1),
      U("\xed\x9f\xbf", 1), /* U+D7FF */
      U("\xee\x80\x80", 1), /* U+E000 */
      U("\xef\xbf\xbf", 1),
      U("\xf0\x90\x80\x80", 1),
      U("\xf4\x8f\xbf\xbf", 1), /* U+10FFFF */
      U("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 1),
      /* overlongs */
      U("\xc0\x80", 0),
      U("\xc1\xbf", 0),
      U("\xe0\x80\x80", 0),
      U("\xe0\x9f\xbf", 0),
      U("\xf0\x80\x80\x80", 0),
      U("\xf0\x8f\xbf\xbf", 0),
      /* surrogates */
      U("\xed\xa0\x80", 0),
      U("\xed\xbf\xbf", 0),
      U("\xed\xa0\xbd\xed\xb8\x80", 0),
      /* beyond U+10FFFF */
      U("\xf4\x90\x80\x80", 0),
      U("\xf5\x80\x80\x80", 0),
      U("\xf7\xbf\xbf\xbf", 0),
      U("\xf8\x88\x80\x80\x80", 0),
      U("\xfc\x84\x80\x80\x80\x80", 0),
      U("\xfe", 0),
      U("\xff", 0),
      /* truncated */
      U("\xc3", 0),
      U("a\xc3", 0),
      U("\xe2\x82", 0),
      U("\xf0\x9f\x98", 0),
      U("\xf0\x9f", 0),
      U("\xf0", 0),
      U("\xe2\x82x", 0),
      /* stray continuation bytes */
      U("\x80", 0),
      U("a\xbf", 0),
      U("\xc3\xa9\xa9", 0),
      /* a lead byte followed by a non-continuation */
      U("\xc3(", 0),
      U("\xe2(\xa1", 0),
      U("\xf0\x9f(\x80", 0),
  };
#undef U
  (void)state;
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    buf_t in = {0}, close = {0};
    outcome_t want;
    client_frame(&in, 1, SIG_WS_OP_TEXT, rows[i].s, rows[i].len);
    if (rows[i].valid) {
      expect(&want, SIG_WS_OPEN, 0, NULL, 0);
      on_text(&want.rec, (const char *)rows[i].s, rows[i].len);
    } else {
      server_close(&close, 1007, "invalid UTF-8");
      expect(&want, SIG_WS_CLOSED, 1007, &close, 0);
    }
    outcome_t got;
    feed_chunks(1024, in.data, in.len, NULL, 0, &got);
    if (got.rc != want.rc) print_error("row %zu: rc %d code %u\n", i, got.rc, got.code);
    rec_free(&got.rec);
    check_feeds(1024, &in, &want);
    buf_free(&close);
    buf_free(&in);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_text_once),
      cmocka_unit_test(test_text_64bit_length),
      cmocka_unit_test(test_fragmented_with_ping),
      cmocka_unit_test(test_idle),
      cmocka_unit_test(test_binary_refused),
      cmocka_unit_test(test_invalid_utf8_refused),
      cmocka_unit_test(test_too_big),
      cmocka_unit_test(test_protocol_errors),
      cmocka_unit_test(test_client_close),
      cmocka_unit_test(test_write_failure),
      cmocka_unit_test(test_frame_header),
      cmocka_unit_test(test_close_frame),
      cmocka_unit_test(test_key_valid),
      cmocka_unit_test(test_accept_key),
      cmocka_unit_test(test_handshake),
      cmocka_unit_test(test_utf8),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
