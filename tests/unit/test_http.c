/* Unit tests for sig_http: every request is fed whole, byte by byte, and split at every point, and
 * must parse the same way each time; limits, errors, and the response formatter's exact bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
/* cmocka needs the headers above first */
#include <cmocka.h>

#include "sig_http.h"

#define MAX_HEAD 8192
#define MAX_BODY 65536

/* What a request looked like, copied before the next feed invalidates it. */
typedef struct {
  sig_http_method_t method;
  char method_name[16];
  char path[256];
  size_t path_len;
  int http_major, http_minor, keep_alive, upgrade;
  char *h_upgrade, *h_connection, *h_ws_key, *h_ws_version, *h_expect;
  char *query, *h_authorization, *h_origin, *h_forwarded_for;
  char *body;
  size_t body_len;
  size_t consumed; /* bytes of the stream up to and including this request */
} req_t;

/* The outcome of feeding a whole stream. */
typedef struct {
  req_t reqs[4];
  int nreqs;
  int err_status; /* 0, or the status of a failed feed */
  char err_msg[160];
  int expect_continue; /* how many times sig_http_take_expect_continue said yes */
  int drained;         /* every byte was fed: no error, no upgrade */
  size_t consumed;
} run_t;

static char *dup_or_null(const char *s) {
  return s ? strdup(s) : NULL;
}

static void copy_request(const sig_http_request_t *r, req_t *q, size_t consumed) {
  memset(q, 0, sizeof *q);
  q->method = r->method;
  snprintf(q->method_name, sizeof q->method_name, "%s", r->method_name);
  assert_true(r->path_len < sizeof q->path);
  assert_int_equal(strlen(r->path), r->path_len);
  memcpy(q->path, r->path, r->path_len + 1);
  q->path_len = r->path_len;
  q->http_major = r->http_major;
  q->http_minor = r->http_minor;
  q->keep_alive = r->keep_alive;
  q->upgrade = r->upgrade;
  q->h_upgrade = dup_or_null(r->h_upgrade);
  q->h_connection = dup_or_null(r->h_connection);
  q->h_ws_key = dup_or_null(r->h_ws_key);
  q->h_ws_version = dup_or_null(r->h_ws_version);
  q->h_expect = dup_or_null(r->h_expect);
  q->query = dup_or_null(r->query);
  q->h_authorization = dup_or_null(r->h_authorization);
  q->h_origin = dup_or_null(r->h_origin);
  q->h_forwarded_for = dup_or_null(r->h_forwarded_for);
  q->body = malloc(r->body_len + 1);
  memcpy(q->body, r->body, r->body_len + 1); /* the body is NUL-terminated */
  q->body_len = r->body_len;
  q->consumed = consumed;
}

static void free_run(run_t *run) {
  for (int i = 0; i < run->nreqs; i++) {
    req_t *q = &run->reqs[i];
    free(q->h_upgrade);
    free(q->h_connection);
    free(q->h_ws_key);
    free(q->h_ws_version);
    free(q->h_expect);
    free(q->query);
    free(q->h_authorization);
    free(q->h_origin);
    free(q->h_forwarded_for);
    free(q->body);
  }
  memset(run, 0, sizeof *run);
}

/* Feeds buf[0..n) as the chunks that end at cuts[] (ascending, inside (0, n)) and at n, the way the
 * server does: after a request, the rest of the chunk is fed again; an upgrade ends the stream. */
static void run_chunks(size_t max_head, size_t max_body, const char *buf, size_t n,
                       const size_t *cuts, size_t ncuts, run_t *run) {
  sig_http_t *h = sig_http_new(max_head, max_body);
  size_t start = 0;
  memset(run, 0, sizeof *run);
  for (size_t k = 0; k <= ncuts; k++) {
    size_t end = k < ncuts ? cuts[k] : n;
    while (start < end) {
      size_t used = 0;
      int rc = sig_http_feed(h, buf + start, end - start, &used);
      assert_true(used <= end - start);
      start += used;
      run->consumed = start;
      if (rc < 0) {
        const char *msg;
        run->err_status = sig_http_error(h, &msg);
        snprintf(run->err_msg, sizeof run->err_msg, "%s", msg);
        goto done;
      }
      if (rc == SIG_HTTP_NEED_MORE) {
        assert_int_equal(start, end); /* everything was consumed */
        run->expect_continue += sig_http_take_expect_continue(h);
        assert_int_equal(sig_http_take_expect_continue(h), 0);
        break;
      }
      assert_int_equal(rc, SIG_HTTP_REQUEST);
      assert_false(sig_http_in_request(h));
      assert_int_equal(sig_http_take_expect_continue(h), 0);
      assert_true(run->nreqs < 4);
      copy_request(sig_http_request(h), &run->reqs[run->nreqs++], start);
      if (run->reqs[run->nreqs - 1].upgrade) goto done;
    }
    start = end;
  }
  run->drained = 1;
done:
  sig_http_free(h);
}

static void run_whole(size_t max_head, size_t max_body, const char *buf, size_t n, run_t *run) {
  run_chunks(max_head, max_body, buf, n, NULL, 0, run);
}

static int str_or_null_equal(const char *a, const char *b) {
  return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

/* 1 if the two requests parsed the same, else 0. */
static int same_req(const req_t *a, const req_t *b) {
  return a->method == b->method && strcmp(a->method_name, b->method_name) == 0 &&
         strcmp(a->path, b->path) == 0 && a->path_len == b->path_len &&
         a->http_major == b->http_major && a->http_minor == b->http_minor &&
         a->keep_alive == b->keep_alive && a->upgrade == b->upgrade &&
         str_or_null_equal(a->h_upgrade, b->h_upgrade) &&
         str_or_null_equal(a->h_connection, b->h_connection) &&
         str_or_null_equal(a->h_ws_key, b->h_ws_key) &&
         str_or_null_equal(a->h_ws_version, b->h_ws_version) &&
         str_or_null_equal(a->h_expect, b->h_expect) && str_or_null_equal(a->query, b->query) &&
         str_or_null_equal(a->h_authorization, b->h_authorization) &&
         str_or_null_equal(a->h_origin, b->h_origin) &&
         str_or_null_equal(a->h_forwarded_for, b->h_forwarded_for) && a->body_len == b->body_len &&
         memcmp(a->body, b->body, a->body_len + 1) == 0 && a->consumed == b->consumed;
}

/* 1 if got matches want; else says how it differs and returns 0. */
static int same_run(const run_t *got, const run_t *want, const char *how) {
  int same = got->nreqs == want->nreqs && got->err_status == want->err_status &&
             strcmp(got->err_msg, want->err_msg) == 0 && got->drained == want->drained;
  for (int i = 0; same && i < want->nreqs; i++) same = same_req(&got->reqs[i], &want->reqs[i]);
  if (!same)
    print_error("%s: got %d requests, error %d '%s'; want %d requests, error %d '%s'\n", how,
                got->nreqs, got->err_status, got->err_msg, want->nreqs, want->err_status,
                want->err_msg);
  return same;
}

/* Feeds buf byte by byte, then split in two at every point: each run must match want, the whole
 * feed's run (expect_continue aside, which depends on the split). Frees want, so that a failure
 * leaks nothing. */
static void check_every_split(size_t max_head, size_t max_body, const char *buf, size_t n,
                              run_t *want) {
  run_t run;
  char how[48];
  int bad = 0;
  size_t *cuts = calloc(n, sizeof *cuts);
  for (size_t i = 1; i < n; i++) cuts[i - 1] = i;
  run_chunks(max_head, max_body, buf, n, cuts, n - 1, &run);
  bad += !same_run(&run, want, "byte by byte");
  free_run(&run);
  for (size_t i = 1; i < n; i++) {
    run_chunks(max_head, max_body, buf, n, &i, 1, &run);
    snprintf(how, sizeof how, "split at %zu", i);
    bad += !same_run(&run, want, how);
    free_run(&run);
  }
  free(cuts);
  free_run(want);
  assert_int_equal(bad, 0);
}

#define S(lit) lit, sizeof(lit) - 1

static const char get_req[] =
    "GET /healthz?verbose=1 HTTP/1.1\r\n"
    "Host: example.com\r\n"
    "User-Agent: test/1.0\r\n"
    "Accept: */*\r\n"
    "\r\n";

static void test_get_with_headers(void **state) {
  run_t run;
  (void)state;
  run_whole(MAX_HEAD, MAX_BODY, S(get_req), &run);
  assert_int_equal(run.err_status, 0);
  assert_int_equal(run.nreqs, 1);
  req_t *q = &run.reqs[0];
  assert_int_equal(q->method, SIG_HTTP_GET);
  assert_string_equal(q->method_name, "GET");
  assert_string_equal(q->path, "/healthz");
  assert_int_equal(q->path_len, 8);
  assert_int_equal(q->http_major, 1);
  assert_int_equal(q->http_minor, 1);
  assert_true(q->keep_alive);
  assert_false(q->upgrade);
  assert_null(q->h_upgrade);
  assert_null(q->h_connection);
  assert_null(q->h_ws_key);
  assert_null(q->h_ws_version);
  assert_null(q->h_expect);
  assert_int_equal(q->body_len, 0);
  assert_string_equal(q->body, "");
  assert_int_equal(q->consumed, sizeof get_req - 1);
  check_every_split(MAX_HEAD, MAX_BODY, S(get_req), &run);
}

static void test_methods(void **state) {
  static const struct {
    const char *req;
    sig_http_method_t method;
    const char *name;
  } rows[] = {
      {"GET / HTTP/1.1\r\n\r\n", SIG_HTTP_GET, "GET"},
      {"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", SIG_HTTP_POST, "POST"},
      {"OPTIONS /offer HTTP/1.1\r\n\r\n", SIG_HTTP_OPTIONS, "OPTIONS"},
      {"HEAD / HTTP/1.1\r\n\r\n", SIG_HTTP_HEAD, "HEAD"},
      {"DELETE / HTTP/1.1\r\n\r\n", SIG_HTTP_OTHER, "DELETE"},
      {"PUT / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", SIG_HTTP_OTHER, "PUT"},
  };
  (void)state;
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    run_t run;
    run_whole(MAX_HEAD, MAX_BODY, rows[i].req, strlen(rows[i].req), &run);
    assert_int_equal(run.nreqs, 1);
    assert_int_equal(run.reqs[0].method, rows[i].method);
    assert_string_equal(run.reqs[0].method_name, rows[i].name);
    free_run(&run);
  }
}

static const char post_req[] =
    "POST /offer HTTP/1.1\r\n"
    "Host: x\r\n"
    "Content-Type: application/json\r\n"
    "Content-Length: 27\r\n"
    "\r\n"
    "{\"offer_sdp\":\"dj0=\",\"a\":[]}";

static void test_post_content_length(void **state) {
  run_t run;
  (void)state;
  run_whole(MAX_HEAD, MAX_BODY, S(post_req), &run);
  assert_int_equal(run.nreqs, 1);
  assert_int_equal(run.reqs[0].method, SIG_HTTP_POST);
  assert_string_equal(run.reqs[0].path, "/offer");
  assert_int_equal(run.reqs[0].body_len, 27);
  assert_string_equal(run.reqs[0].body, "{\"offer_sdp\":\"dj0=\",\"a\":[]}");
  assert_int_equal(run.reqs[0].consumed, sizeof post_req - 1);
  assert_int_equal(run.expect_continue, 0);
  check_every_split(MAX_HEAD, MAX_BODY, S(post_req), &run);
  /* the body may be exactly max_body_bytes */
  free_run(&run);
  run_whole(MAX_HEAD, 27, S(post_req), &run);
  assert_int_equal(run.nreqs, 1);
  check_every_split(MAX_HEAD, 27, S(post_req), &run);
}

static const char chunked_req[] =
    "POST /offer HTTP/1.1\r\n"
    "Host: x\r\n"
    "Transfer-Encoding: chunked\r\n"
    "\r\n"
    "5\r\nhello\r\n"
    "1;ext=1\r\n,\r\n"
    "10\r\n world, chunked!\r\n"
    "0\r\n"
    "\r\n";

static void test_chunked(void **state) {
  run_t run;
  (void)state;
  run_whole(MAX_HEAD, MAX_BODY, S(chunked_req), &run);
  assert_int_equal(run.err_status, 0);
  assert_int_equal(run.nreqs, 1);
  assert_string_equal(run.reqs[0].body, "hello, world, chunked!");
  assert_int_equal(run.reqs[0].body_len, 22);
  assert_int_equal(run.reqs[0].consumed, sizeof chunked_req - 1);
  check_every_split(MAX_HEAD, MAX_BODY, S(chunked_req), &run);
}

static const char pipelined[] =
    "GET /healthz HTTP/1.1\r\n"
    "Host: x\r\n"
    "\r\n"
    "POST /offer HTTP/1.1\r\n"
    "Content-Length: 3\r\n"
    "Connection: close\r\n"
    "\r\n"
    "abc";
#define FIRST_LEN (sizeof "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" - 1)

static void test_pipelined(void **state) {
  (void)state;
  /* the parser stops right after the first request */
  sig_http_t *h = sig_http_new(MAX_HEAD, MAX_BODY);
  size_t used = 0;
  assert_int_equal(sig_http_feed(h, S(pipelined), &used), SIG_HTTP_REQUEST);
  assert_int_equal(used, FIRST_LEN);
  const sig_http_request_t *r = sig_http_request(h);
  assert_int_equal(r->method, SIG_HTTP_GET);
  assert_string_equal(r->path, "/healthz");
  assert_true(r->keep_alive);
  assert_int_equal(r->body_len, 0);
  /* then the rest is the second */
  assert_int_equal(sig_http_feed(h, pipelined + used, sizeof pipelined - 1 - used, &used),
                   SIG_HTTP_REQUEST);
  assert_int_equal(used, sizeof pipelined - 1 - FIRST_LEN);
  r = sig_http_request(h);
  assert_int_equal(r->method, SIG_HTTP_POST);
  assert_string_equal(r->path, "/offer");
  assert_false(r->keep_alive);
  assert_string_equal(r->body, "abc");
  sig_http_free(h);

  run_t run;
  run_whole(MAX_HEAD, MAX_BODY, S(pipelined), &run);
  assert_int_equal(run.nreqs, 2);
  assert_int_equal(run.reqs[0].consumed, FIRST_LEN);
  assert_int_equal(run.reqs[1].consumed, sizeof pipelined - 1);
  check_every_split(MAX_HEAD, MAX_BODY, S(pipelined), &run);
}

#define UPGRADE_HEAD                                \
  "GET /ws/alice?token=1 HTTP/1.1\r\n"              \
  "Host: x\r\n"                                     \
  "Upgrade: websocket\r\n"                          \
  "Connection: Upgrade\r\n"                         \
  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" \
  "Sec-WebSocket-Version: 13\r\n"                   \
  "\r\n"
static const char upgrade_req[] = UPGRADE_HEAD "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";

static void test_upgrade(void **state) {
  run_t run;
  (void)state;
  run_whole(MAX_HEAD, MAX_BODY, S(upgrade_req), &run);
  assert_int_equal(run.nreqs, 1);
  req_t *q = &run.reqs[0];
  assert_true(q->upgrade);
  assert_string_equal(q->path, "/ws/alice");
  assert_string_equal(q->h_upgrade, "websocket");
  assert_string_equal(q->h_connection, "Upgrade");
  assert_string_equal(q->h_ws_key, "dGhlIHNhbXBsZSBub25jZQ==");
  assert_string_equal(q->h_ws_version, "13");
  /* consumed stops at the end of the head: the rest is WebSocket */
  assert_int_equal(q->consumed, sizeof UPGRADE_HEAD - 1);
  assert_int_equal(run.consumed, sizeof UPGRADE_HEAD - 1);
  check_every_split(MAX_HEAD, MAX_BODY, S(upgrade_req), &run);

  /* "Connection: upgrade" alone is not an upgrade */
  static const char not_upgrade[] = "GET /ws/a HTTP/1.1\r\nConnection: upgrade\r\n\r\n";
  run_whole(MAX_HEAD, MAX_BODY, S(not_upgrade), &run);
  assert_int_equal(run.nreqs, 1);
  assert_false(run.reqs[0].upgrade);
  assert_null(run.reqs[0].h_upgrade);
  free_run(&run);
}

static const char repeated_req[] =
    "GET /ws/a HTTP/1.1\r\n"
    "connection: keep-alive\r\n"
    "X-Other: 1\r\n"
    "CONNECTION: Upgrade\r\n"
    "uPgRaDe: websocket\r\n"
    "X-Empty:\r\n"
    "SEC-WEBSOCKET-KEY: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "sec-websocket-version: 8\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Expect: 100-continue\r\n"
    "\r\n";

static void test_repeated_and_case_insensitive_headers(void **state) {
  run_t run;
  (void)state;
  run_whole(MAX_HEAD, MAX_BODY, S(repeated_req), &run);
  assert_int_equal(run.nreqs, 1);
  req_t *q = &run.reqs[0];
  assert_string_equal(q->h_connection, "keep-alive, Upgrade");
  assert_string_equal(q->h_upgrade, "websocket");
  assert_string_equal(q->h_ws_key, "dGhlIHNhbXBsZSBub25jZQ==");
  assert_string_equal(q->h_ws_version, "8, 13");
  assert_string_equal(q->h_expect, "100-continue");
  assert_true(q->upgrade);
  /* no body follows: nothing to continue */
  assert_int_equal(run.expect_continue, 0);
  check_every_split(MAX_HEAD, MAX_BODY, S(repeated_req), &run);
}

static void test_query_string(void **state) {
  static const struct {
    const char *req, *path, *query;
  } rows[] = {
      {"GET /offer?x=1 HTTP/1.1\r\n\r\n", "/offer", "x=1"},
      {"GET /offer? HTTP/1.1\r\n\r\n", "/offer", ""},
      {"GET /ws/a?b=c?d HTTP/1.1\r\n\r\n", "/ws/a", "b=c?d"},
      {"GET /ws/a#frag HTTP/1.1\r\n\r\n", "/ws/a", ""},
      {"GET /ws/a?t=1#frag?x HTTP/1.1\r\n\r\n", "/ws/a", "t=1"},
      {"GET /?q HTTP/1.1\r\n\r\n", "/", "q"},
      {"GET /plain HTTP/1.1\r\n\r\n", "/plain", ""},
  };
  (void)state;
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    run_t run;
    run_whole(MAX_HEAD, MAX_BODY, rows[i].req, strlen(rows[i].req), &run);
    assert_int_equal(run.nreqs, 1);
    assert_string_equal(run.reqs[0].path, rows[i].path);
    assert_int_equal(run.reqs[0].path_len, strlen(rows[i].path));
    assert_string_equal(run.reqs[0].query, rows[i].query);
    check_every_split(MAX_HEAD, MAX_BODY, rows[i].req, strlen(rows[i].req), &run);
  }
}

static void test_keep_alive(void **state) {
  static const struct {
    const char *req;
    int keep_alive, minor;
  } rows[] = {
      {"GET / HTTP/1.1\r\n\r\n", 1, 1},
      {"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", 0, 1},
      {"GET / HTTP/1.1\r\nConnection: Close\r\n\r\n", 0, 1},
      {"GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n", 1, 1},
      {"GET / HTTP/1.0\r\n\r\n", 0, 0},
      {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 1, 0},
      {"GET / HTTP/1.0\r\nConnection: close\r\n\r\n", 0, 0},
  };
  (void)state;
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    run_t run;
    run_whole(MAX_HEAD, MAX_BODY, rows[i].req, strlen(rows[i].req), &run);
    assert_int_equal(run.nreqs, 1);
    if (run.reqs[0].keep_alive != rows[i].keep_alive) print_error("row %zu\n", i);
    assert_int_equal(run.reqs[0].keep_alive, rows[i].keep_alive);
    assert_int_equal(run.reqs[0].http_major, 1);
    assert_int_equal(run.reqs[0].http_minor, rows[i].minor);
    free_run(&run);
  }
}

/* A request whose head is big: several headers, most of them ignored. */
static const char big_head[] =
    "GET /ws/alice HTTP/1.1\r\n"
    "Host: signal.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Connection: keep-alive, Upgrade\r\n"
    "Pragma: no-cache\r\n"
    "Cache-Control: no-cache\r\n"
    "Upgrade: websocket\r\n"
    "\r\n";

static void test_head_limit(void **state) {
  run_t run, want;
  (void)state;
  /* far over the limit: 431 however the bytes arrive */
  run_whole(100, MAX_BODY, S(big_head), &run);
  assert_int_equal(run.err_status, 431);
  assert_string_equal(run.err_msg, "head: request head too large");
  assert_int_equal(run.nreqs, 0);
  check_every_split(100, MAX_BODY, S(big_head), &run);

  /* a head of exactly max_header_bytes is accepted however the bytes arrive */
  run_whole(sizeof big_head - 1, MAX_BODY, S(big_head), &want);
  assert_int_equal(want.err_status, 0);
  assert_int_equal(want.nreqs, 1);
  check_every_split(sizeof big_head - 1, MAX_BODY, S(big_head), &want);
}

static void test_header_value_too_long(void **state) {
  char req[1024];
  char key[300];
  run_t run;
  (void)state;
  memset(key, 'A', 257);
  key[257] = '\0';
  int n = snprintf(req, sizeof req, "GET /ws/a HTTP/1.1\r\nSec-WebSocket-Key: %s\r\n\r\n", key);
  run_whole(MAX_HEAD, MAX_BODY, req, (size_t)n, &run);
  assert_int_equal(run.err_status, 400);
  assert_string_equal(run.err_msg, "sec-websocket-key: header value too long");
  check_every_split(MAX_HEAD, MAX_BODY, req, (size_t)n, &run);
  /* an ignored header may be long */
  n = snprintf(req, sizeof req, "GET /ws/a HTTP/1.1\r\nX-Long: %s\r\n\r\n", key);
  run_whole(MAX_HEAD, MAX_BODY, req, (size_t)n, &run);
  assert_int_equal(run.nreqs, 1);
  free_run(&run);
}

static void test_content_length_too_big(void **state) {
  static const char head[] =
      "POST /offer HTTP/1.1\r\n"
      "Host: x\r\n"
      "Content-Length: 101\r\n"
      "\r\n";
  run_t run;
  (void)state;
  /* refused as soon as the head is complete, before any of the body arrives */
  run_whole(MAX_HEAD, 100, S(head), &run);
  assert_int_equal(run.err_status, 413);
  assert_string_equal(run.err_msg, "body: larger than 100 bytes");
  assert_int_equal(run.nreqs, 0);
  check_every_split(MAX_HEAD, 100, S(head), &run);
}

static void test_chunked_too_big(void **state) {
  run_t run;
  (void)state;
  run_whole(MAX_HEAD, 21, S(chunked_req), &run); /* the body is 22 bytes */
  assert_int_equal(run.err_status, 413);
  assert_string_equal(run.err_msg, "body: larger than 21 bytes");
  assert_int_equal(run.nreqs, 0);
  check_every_split(MAX_HEAD, 21, S(chunked_req), &run);
  run_whole(MAX_HEAD, 22, S(chunked_req), &run);
  assert_int_equal(run.nreqs, 1);
  free_run(&run);
}

static void test_malformed(void **state) {
  static const struct {
    const char *req, *msg;
  } rows[] = {
      {"BLAH / HTTP/1.1\r\n\r\n", "http: invalid HTTP method"},
      {"GET / HTTP/1.1 junk\r\n\r\n", NULL},
      {"GET / HTTP/x.1\r\n\r\n", NULL},
      {"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", NULL},
      {"GET  HTTP/1.1\r\n\r\n", NULL},
      {"GET / HTTP/1.1\r\nNo-Colon\r\n\r\n", "http: invalid character in header"},
      {"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n", NULL},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", NULL},
  };
  (void)state;
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    run_t run;
    run_whole(MAX_HEAD, MAX_BODY, rows[i].req, strlen(rows[i].req), &run);
    if (run.err_status != 400) print_error("row %zu: %d %s\n", i, run.err_status, run.err_msg);
    assert_int_equal(run.err_status, 400);
    assert_int_equal(run.nreqs, 0);
    assert_memory_equal(run.err_msg, "http: ", 6);
    assert_true(strlen(run.err_msg) > 6);
    if (rows[i].msg != NULL) assert_string_equal(run.err_msg, rows[i].msg);
    check_every_split(MAX_HEAD, MAX_BODY, rows[i].req, strlen(rows[i].req), &run);
  }
}

static void test_expect_continue(void **state) {
  static const char head[] =
      "POST /offer HTTP/1.1\r\n"
      "Expect: 100-continue\r\n"
      "Content-Length: 5\r\n"
      "\r\n";
  static const char req[] =
      "POST /offer HTTP/1.1\r\n"
      "Expect: 100-continue\r\n"
      "Content-Length: 5\r\n"
      "\r\n"
      "hello";
  const size_t head_len = sizeof head - 1, n = sizeof req - 1;
  size_t used;
  (void)state;

  sig_http_t *h = sig_http_new(MAX_HEAD, MAX_BODY);
  assert_int_equal(sig_http_take_expect_continue(h), 0);
  assert_int_equal(sig_http_feed(h, req, head_len, &used), SIG_HTTP_NEED_MORE);
  assert_int_equal(used, head_len);
  assert_int_equal(sig_http_take_expect_continue(h), 1);
  assert_int_equal(sig_http_take_expect_continue(h), 0); /* once */
  assert_int_equal(sig_http_feed(h, req + head_len, 2, &used), SIG_HTTP_NEED_MORE);
  assert_int_equal(sig_http_take_expect_continue(h), 0);
  assert_int_equal(sig_http_feed(h, req + head_len + 2, 3, &used), SIG_HTTP_REQUEST);
  assert_int_equal(sig_http_take_expect_continue(h), 0);
  assert_string_equal(sig_http_request(h)->body, "hello");
  assert_string_equal(sig_http_request(h)->h_expect, "100-continue");
  sig_http_free(h);

  /* head and body together: nothing to wait for */
  h = sig_http_new(MAX_HEAD, MAX_BODY);
  assert_int_equal(sig_http_feed(h, req, n, &used), SIG_HTTP_REQUEST);
  assert_int_equal(sig_http_take_expect_continue(h), 0);
  sig_http_free(h);

  /* every split: reported once exactly when the first part holds the head but not all the body */
  for (size_t i = 1; i < n; i++) {
    run_t run;
    run_chunks(MAX_HEAD, MAX_BODY, req, n, &i, 1, &run);
    assert_int_equal(run.nreqs, 1);
    assert_string_equal(run.reqs[0].body, "hello");
    assert_int_equal(run.expect_continue, i >= head_len ? 1 : 0);
    free_run(&run);
  }

  /* no body, or another expectation: nothing */
  static const char no_body[] =
      "POST /offer HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n";
  static const char other[] =
      "POST /offer HTTP/1.1\r\nExpect: something\r\nContent-Length: 5\r\n\r\n";
  h = sig_http_new(MAX_HEAD, MAX_BODY);
  assert_int_equal(sig_http_feed(h, S(no_body), &used), SIG_HTTP_REQUEST);
  assert_int_equal(sig_http_take_expect_continue(h), 0);
  sig_http_free(h);
  h = sig_http_new(MAX_HEAD, MAX_BODY);
  assert_int_equal(sig_http_feed(h, S(other), &used), SIG_HTTP_NEED_MORE);
  assert_int_equal(sig_http_take_expect_continue(h), 0);
  sig_http_free(h);

  /* chunked */
  static const char chunked[] =
      "POST /offer HTTP/1.1\r\nExpect: 100-Continue\r\nTransfer-Encoding: chunked\r\n\r\n";
  h = sig_http_new(MAX_HEAD, MAX_BODY);
  assert_int_equal(sig_http_feed(h, S(chunked), &used), SIG_HTTP_NEED_MORE);
  assert_int_equal(sig_http_take_expect_continue(h), 1);
  assert_int_equal(sig_http_take_expect_continue(h), 0);
  sig_http_free(h);
}

static void test_in_request(void **state) {
  size_t used;
  (void)state;
  sig_http_t *h = sig_http_new(MAX_HEAD, MAX_BODY);
  assert_false(sig_http_in_request(h));
  assert_int_equal(sig_http_feed(h, "G", 1, &used), SIG_HTTP_NEED_MORE);
  assert_true(sig_http_in_request(h));
  assert_int_equal(sig_http_feed(h, get_req + 1, sizeof get_req - 2, &used), SIG_HTTP_REQUEST);
  assert_false(sig_http_in_request(h));
  /* the next request on the keep-alive connection */
  assert_int_equal(sig_http_feed(h, post_req, 10, &used), SIG_HTTP_NEED_MORE);
  assert_true(sig_http_in_request(h));
  assert_int_equal(sig_http_feed(h, post_req + 10, sizeof post_req - 11, &used), SIG_HTTP_REQUEST);
  assert_false(sig_http_in_request(h));
  assert_string_equal(sig_http_request(h)->path, "/offer");
  sig_http_free(h);
  sig_http_free(NULL);
}

static void assert_response_n(const sig_http_response_t *r, const char *want, size_t want_len) {
  size_t len = 0;
  char *out = sig_http_format(r, &len);
  if (len != want_len || memcmp(out, want, len) != 0)
    print_error("got  %.*s\nwant %.*s\n", (int)len, out, (int)want_len, want);
  assert_int_equal(len, want_len);
  assert_memory_equal(out, want, len);
  free(out);
}

#define assert_response(r, want) assert_response_n(r, S(want))

static void test_format_response(void **state) {
  (void)state;
  sig_http_response_t ok = {.status = 200,
                            .cors_origin = "*",
                            .content_type = "application/json",
                            .body = "{\"code\":0}",
                            .body_len = 10,
                            .keep_alive = 1};
  assert_response(&ok,
                  "HTTP/1.1 200 OK\r\n"
                  "Access-Control-Allow-Origin: *\r\n"
                  "Content-Type: application/json\r\n"
                  "Content-Length: 10\r\n"
                  "Connection: keep-alive\r\n"
                  "\r\n"
                  "{\"code\":0}");
  /* HEAD: the same headers, no body */
  ok.head = 1;
  assert_response(&ok,
                  "HTTP/1.1 200 OK\r\n"
                  "Access-Control-Allow-Origin: *\r\n"
                  "Content-Type: application/json\r\n"
                  "Content-Length: 10\r\n"
                  "Connection: keep-alive\r\n"
                  "\r\n");
  /* no Content-Length on a 204 (RFC 9110 8.6); the preflight's headers */
  sig_http_response_t pre = {.status = 204, .cors_origin = "https://a.example", .preflight = 1};
  assert_response(&pre,
                  "HTTP/1.1 204 No Content\r\n"
                  "Access-Control-Allow-Origin: https://a.example\r\n"
                  "Access-Control-Allow-Methods: GET, POST, OPTIONS\r\n"
                  "Access-Control-Allow-Headers: Content-Type\r\n"
                  "Access-Control-Max-Age: 86400\r\n"
                  "Connection: close\r\n"
                  "\r\n");
  sig_http_response_t big = {
      .status = 431, .content_type = "application/json", .body = "{}", .body_len = 2};
  assert_response(&big,
                  "HTTP/1.1 431 Request Header Fields Too Large\r\n"
                  "Content-Type: application/json\r\n"
                  "Content-Length: 2\r\n"
                  "Connection: close\r\n"
                  "\r\n"
                  "{}");
  sig_http_response_t na = {.status = 405,
                            .allow = "POST, OPTIONS",
                            .content_type = "text/plain",
                            .body = "no",
                            .body_len = 2,
                            .keep_alive = 1,
                            .extra = {{"X-A", "b"}, {"X-C", "d"}}};
  assert_response(&na,
                  "HTTP/1.1 405 Method Not Allowed\r\n"
                  "Allow: POST, OPTIONS\r\nX-A: b\r\nX-C: d\r\n"
                  "Content-Type: text/plain\r\n"
                  "Content-Length: 2\r\n"
                  "Connection: keep-alive\r\n"
                  "\r\n"
                  "no");
  sig_http_response_t asset = {
      .status = 200, .no_cache = 1, .content_type = "text/css", .body = "a", .body_len = 1};
  assert_response(&asset,
                  "HTTP/1.1 200 OK\r\nCache-Control: no-cache\r\nContent-Type: text/css\r\n"
                  "Content-Length: 1\r\nConnection: close\r\n\r\na");
  /* a body with NUL bytes is copied whole */
  sig_http_response_t nul = {.status = 200, .body = "a\0b", .body_len = 3, .keep_alive = 1};
  assert_response(&nul,
                  "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\na\0b");
  size_t n;
  const char *cont = sig_http_continue(&n);
  assert_int_equal(n, 25);
  assert_memory_equal(cont, "HTTP/1.1 100 Continue\r\n\r\n", 25);
}

static void test_format_response_big(void **state) {
  (void)state;
  size_t n = 100000, len;
  char *body = malloc(n);
  memset(body, 'x', n);
  sig_http_response_t r = {.status = 200,
                           .content_type = "application/json",
                           .body = body,
                           .body_len = n,
                           .keep_alive = 1};
  char *out = sig_http_format(&r, &len);
  const char *head =
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n"
      "Connection: keep-alive\r\n\r\n";
  assert_int_equal(len, strlen(head) + n);
  assert_memory_equal(out, head, strlen(head));
  assert_memory_equal(out + strlen(head), body, n);
  free(out);
  free(body);
}

/* A long Content-Type: the buffer must have room for it. Run in a child process because the
 * overflow this checks for would corrupt the heap of the rest of the suite. */
static void test_format_response_long_content_type(void **state) {
  (void)state;
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    char ctype[301], want[1024];
    memset(ctype, 'c', 300);
    ctype[300] = '\0';
    int wn = snprintf(want, sizeof want,
                      "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: 2\r\n"
                      "Connection: close\r\n\r\n{}",
                      ctype);
    size_t len;
    sig_http_response_t r = {.status = 200, .content_type = ctype, .body = "{}", .body_len = 2};
    char *out = sig_http_format(&r, &len);
    int ok = len == (size_t)wn && memcmp(out, want, len) == 0;
    if (!ok) fprintf(stderr, "long Content-Type: response truncated or overflowed\n");
    free(out);
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
}

/* Contract: r->body is this request's body, NUL-terminated; "" when it has none, never an earlier
 * request's body on the same connection and never uninitialised memory (Content-Length: 0). */
static void test_body_never_stale(void **state) {
  static const char reqs[] =
      "POST /offer HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nSECRET"
      "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
      "POST /offer HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n";
  run_t run;
  (void)state;
  run_whole(MAX_HEAD, MAX_BODY, S(reqs), &run);
  assert_int_equal(run.err_status, 0);
  assert_int_equal(run.nreqs, 3);
  assert_string_equal(run.reqs[0].body, "SECRET");
  for (int i = 1; i < 3; i++) {
    assert_int_equal(run.reqs[i].body_len, 0);
    assert_string_equal(run.reqs[i].body, "");
  }
  check_every_split(MAX_HEAD, MAX_BODY, S(reqs), &run);
}

/* Contract: an upgrade request is complete only once its body (if any) is parsed, so a bad body
 * is the same 400 whole and split right after the head. */
static void test_upgrade_with_body(void **state) {
  static const char bad_chunk[] =
      "GET /ws/a HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Transfer-Encoding: chunked\r\n\r\nzz\r\n";
  static const char with_body[] =
      "GET /ws/a HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Content-Length: 3\r\n\r\nabc\x81\x80";
  run_t run;
  (void)state;
  run_whole(MAX_HEAD, MAX_BODY, S(bad_chunk), &run);
  assert_int_equal(run.err_status, 400);
  assert_int_equal(run.nreqs, 0);
  check_every_split(MAX_HEAD, MAX_BODY, S(bad_chunk), &run);
  /* a well-formed body: the request comes with it, and what follows is left unread */
  run_whole(MAX_HEAD, MAX_BODY, S(with_body), &run);
  assert_int_equal(run.err_status, 0);
  assert_int_equal(run.nreqs, 1);
  assert_true(run.reqs[0].upgrade);
  assert_string_equal(run.reqs[0].body, "abc");
  assert_int_equal(run.consumed, sizeof with_body - 3);
  check_every_split(MAX_HEAD, MAX_BODY, S(with_body), &run);
}

/* Contract: a limit gives the same outcome however the bytes are split, even when the bytes past
 * the point where a data callback would first see the excess hold a syntax error. */
static void test_limits_split_invariant(void **state) {
  char req[1024], val[300];
  run_t run;
  int n;
  (void)state;
  /* a head longer than the limit whose syntax error lies past the limit: 431 */
  n = snprintf(req, sizeof req, "GET /%0200d HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 0);
  run_whole(100, MAX_BODY, req, (size_t)n, &run);
  assert_int_equal(run.err_status, 431);
  check_every_split(100, MAX_BODY, req, (size_t)n, &run);
  /* the same error inside the limit: http-parser's 400 */
  run_whole(MAX_HEAD, MAX_BODY, req, (size_t)n, &run);
  assert_int_equal(run.err_status, 400);
  check_every_split(MAX_HEAD, MAX_BODY, req, (size_t)n, &run);
  /* a header value too long to keep, with an invalid character at its end: the syntax error */
  memset(val, 'k', 299);
  val[299] = '\0';
  n = snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost: x\r\nSec-WebSocket-Key: %s\x01\r\n\r\n",
               val);
  run_whole(MAX_HEAD, MAX_BODY, req, (size_t)n, &run);
  assert_int_equal(run.err_status, 400);
  assert_memory_equal(run.err_msg, "http: ", 6);
  check_every_split(MAX_HEAD, MAX_BODY, req, (size_t)n, &run);
  /* a chunk larger than the body limit, not followed by CRLF: refused at its chunk header */
  static const char chunk[] =
      "POST /offer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "20\r\n0123456789abcdef0123456789abcdefXX";
  run_whole(MAX_HEAD, 16, S(chunk), &run);
  assert_int_equal(run.err_status, 413);
  check_every_split(MAX_HEAD, 16, S(chunk), &run);
}

static void test_reason(void **state) {
  (void)state;
  assert_string_equal(sig_http_reason(101), "Switching Protocols");
  assert_string_equal(sig_http_reason(401), "Unauthorized");
  assert_string_equal(sig_http_reason(413), "Content Too Large");
  assert_string_equal(sig_http_reason(426), "Upgrade Required");
  assert_string_equal(sig_http_reason(503), "Service Unavailable");
  assert_string_equal(sig_http_reason(599), "Unknown");
}

static void test_has_token(void **state) {
  static const struct {
    const char *value, *token;
    int want;
  } rows[] = {
      {"upgrade", "upgrade", 1},
      {"Upgrade", "upgrade", 1},
      {"websocket", "WebSocket", 1},
      {"keep-alive, Upgrade", "upgrade", 1},
      {"keep-alive,Upgrade", "upgrade", 1},
      {"Upgrade, keep-alive", "upgrade", 1},
      {"  upgrade  ", "upgrade", 1},
      {"\tupgrade\t, close", "upgrade", 1},
      {"a,,upgrade,", "upgrade", 1},
      {", ,upgrade", "upgrade", 1},
      {"upgrades", "upgrade", 0},
      {"upgrad", "upgrade", 0},
      {"keep-alive, upgrade-x", "upgrade", 0},
      {"x-upgrade", "upgrade", 0},
      {"up grade", "upgrade", 0},
      {"upgrade;q=1", "upgrade", 0},
      {"", "upgrade", 0},
      {",,, ", "upgrade", 0},
      {"close", "upgrade", 0},
  };
  (void)state;
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    if (sig_http_has_token(rows[i].value, rows[i].token) != rows[i].want)
      print_error("row %zu: '%s' '%s'\n", i, rows[i].value, rows[i].token);
    assert_int_equal(sig_http_has_token(rows[i].value, rows[i].token), rows[i].want);
  }
  assert_int_equal(sig_http_has_token(NULL, "upgrade"), 0);
}

/* The headers auth reads: kept whole up to their room (8 KiB for Authorization), repeated
 * ones joined, anything longer refused by name; and the same at every split. */
static void test_auth_headers(void **state) {
  static const char req[] =
      "GET /ws/a?access_token=abc HTTP/1.1\r\n"
      "Authorization: Bearer eyJ.eyJ.sig\r\n"
      "Origin: https://app.example.com\r\n"
      "X-Forwarded-For: 192.0.2.1\r\n"
      "\r\n";
  run_t run;
  (void)state;
  run_whole(MAX_HEAD, MAX_BODY, S(req), &run);
  assert_int_equal(run.nreqs, 1);
  assert_string_equal(run.reqs[0].query, "access_token=abc");
  assert_string_equal(run.reqs[0].h_authorization, "Bearer eyJ.eyJ.sig");
  assert_string_equal(run.reqs[0].h_origin, "https://app.example.com");
  assert_string_equal(run.reqs[0].h_forwarded_for, "192.0.2.1");
  check_every_split(MAX_HEAD, MAX_BODY, S(req), &run);

  /* 8256 bytes of value fit (a token of 8192, "Bearer " and spaces); 8257 do not (with a head
   * limit that allows them) */
  size_t cap = 20000;
  char *big = malloc(cap);
  for (int extra = 0; extra <= 1; extra++) {
    size_t vlen = 8256 + (size_t)extra;
    int n = snprintf(big, cap, "GET /ws/a HTTP/1.1\r\nAuthorization: ");
    memset(big + n, 'x', vlen);
    n += (int)vlen;
    n += snprintf(big + n, cap - (size_t)n, "\r\n\r\n");
    run_whole(16384, MAX_BODY, big, (size_t)n, &run);
    if (extra == 0) {
      assert_int_equal(run.nreqs, 1);
      assert_int_equal(strlen(run.reqs[0].h_authorization), vlen);
      free_run(&run);
    } else {
      assert_int_equal(run.err_status, 400);
      assert_string_equal(run.err_msg, "authorization: header value too long");
    }
  }
  free(big);

  static const char twice[] =
      "GET /ws/a HTTP/1.1\r\nAuthorization: Bearer a\r\nauthorization: Bearer b\r\n\r\n";
  run_whole(MAX_HEAD, MAX_BODY, S(twice), &run);
  assert_string_equal(run.reqs[0].h_authorization, "Bearer a, Bearer b");
  check_every_split(MAX_HEAD, MAX_BODY, S(twice), &run);
}

static void test_query_param(void **state) {
  static const struct {
    const char *query, *name;
    long want; /* length, or -1 absent, -2 malformed or too long */
    const char *value;
  } rows[] = {
      {"access_token=abc", "access_token", 3, "abc"},
      {"a=1&access_token=abc&b=2", "access_token", 3, "abc"},
      {"access_token=abc&access_token=def", "access_token", 3, "abc"}, /* the first */
      {"access_token=", "access_token", 0, ""},
      {"access_token", "access_token", -1, NULL},      /* no '=' */
      {"xaccess_token=abc", "access_token", -1, NULL}, /* a longer name */
      {"access_tokenx=abc", "access_token", -1, NULL},
      {"ACCESS_TOKEN=abc", "access_token", -1, NULL}, /* names are case-sensitive */
      {"", "access_token", -1, NULL},
      {"&&access_token=a%2Eb", "access_token", 3, "a.b"},
      {"access_token=a%2eb", "access_token", 3, "a.b"},
      {"access_token=a+b", "access_token", 3, "a b"},
      {"access_token=%41%42", "access_token", 2, "AB"},
      {"access_token=a%", "access_token", -2, NULL},
      {"access_token=a%4", "access_token", -2, NULL},
      {"access_token=a%4g", "access_token", -2, NULL},
      {"access_token=a%zz&b=1", "access_token", -2, NULL},
      {"access_token=%00", "access_token", 1, "\0"},
      {"access_token=0123456789", "access_token", -2, NULL}, /* longer than cap - 1 */
      {"access_token=012345678", "access_token", 9, "012345678"},
  };
  (void)state;
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    char out[10];
    memset(out, 0x55, sizeof out);
    long got = sig_http_query_param(rows[i].query, rows[i].name, out, sizeof out);
    if (got != rows[i].want) print_error("row %zu: '%s' gave %ld\n", i, rows[i].query, got);
    assert_int_equal(got, rows[i].want);
    if (got >= 0) {
      assert_memory_equal(out, rows[i].value, (size_t)got);
      assert_int_equal(out[got], '\0');
    }
  }
}

/* Trailers after a chunked body are ignored: they cannot set a header the head did not (found by
 * the fuzz target: http-parser hands a trailer's pieces over differently by split). */
static void test_trailers_ignored(void **state) {
  static const char req[] =
      "POST /offer HTTP/1.1\r\n"
      "Host: example.com\r\n"
      "Transfer-Encoding: chunked\r\n"
      "\r\n"
      "3\r\nabc\r\n"
      "0\r\n"
      "Host: evil.example\r\n"
      "Authorization: Bearer injected\r\n"
      "Origin: https://evil.example\r\n"
      "\r\n";
  run_t run;
  (void)state;
  run_whole(MAX_HEAD, MAX_BODY, S(req), &run);
  assert_int_equal(run.nreqs, 1);
  assert_string_equal(run.reqs[0].body, "abc");
  assert_null(run.reqs[0].h_authorization);
  assert_null(run.reqs[0].h_origin);
  check_every_split(MAX_HEAD, MAX_BODY, S(req), &run);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_get_with_headers),
      cmocka_unit_test(test_methods),
      cmocka_unit_test(test_post_content_length),
      cmocka_unit_test(test_chunked),
      cmocka_unit_test(test_trailers_ignored),
      cmocka_unit_test(test_pipelined),
      cmocka_unit_test(test_upgrade),
      cmocka_unit_test(test_repeated_and_case_insensitive_headers),
      cmocka_unit_test(test_query_string),
      cmocka_unit_test(test_auth_headers),
      cmocka_unit_test(test_query_param),
      cmocka_unit_test(test_keep_alive),
      cmocka_unit_test(test_head_limit),
      cmocka_unit_test(test_header_value_too_long),
      cmocka_unit_test(test_content_length_too_big),
      cmocka_unit_test(test_chunked_too_big),
      cmocka_unit_test(test_malformed),
      cmocka_unit_test(test_expect_continue),
      cmocka_unit_test(test_in_request),
      cmocka_unit_test(test_format_response),
      cmocka_unit_test(test_format_response_big),
      cmocka_unit_test(test_format_response_long_content_type),
      cmocka_unit_test(test_body_never_stale),
      cmocka_unit_test(test_upgrade_with_body),
      cmocka_unit_test(test_limits_split_invariant),
      cmocka_unit_test(test_reason),
      cmocka_unit_test(test_has_token),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
