/* libFuzzer target for sig_http: a stream of requests gives the same outcome (the requests, with
 * every field the server reads; the error status and message; the bytes consumed) whether it
 * comes whole, split at a point the input chooses, or a byte at a time; each request's body is
 * its own, NUL-terminated. Input: one byte choosing the split, one choosing the limits, then the
 * stream. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sig_http.h"

typedef struct {
  char *bytes;
  size_t len, cap;
} outcome_t;

static void add(outcome_t *o, const void *p, size_t n) {
  if (o->len + n > o->cap) {
    o->cap = (o->len + n) * 2 + 256;
    o->bytes = realloc(o->bytes, o->cap);
  }
  if (n > 0) memcpy(o->bytes + o->len, p, n);
  o->len += n;
}

static void add_str(outcome_t *o, const char *s) {
  size_t n = s != NULL ? strlen(s) + 1 : 0;
  add(o, &n, sizeof n);
  add(o, s, n);
}

static void add_request(outcome_t *o, const sig_http_request_t *r, size_t consumed) {
  int ints[] = {(int)r->method, r->http_major, r->http_minor,
                r->keep_alive,  r->upgrade,    r->has_body};
  if (strlen(r->path) != r->path_len || r->body[r->body_len] != '\0') abort();
  if (r->body_len == 0 && r->body[0] != '\0') abort();
  add(o, "R", 1);
  add(o, ints, sizeof ints);
  add(o, &consumed, sizeof consumed);
  add_str(o, r->method_name);
  add_str(o, r->path);
  const char *h[] = {r->h_upgrade,       r->h_connection, r->h_ws_key,
                     r->h_ws_version,    r->h_expect,     r->h_host,
                     r->h_authorization, r->h_origin,     r->h_forwarded_for,
                     r->h_forwarded,     r->query};
  for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) add_str(o, h[i]);
  /* the query parameter auth reads: its value lies within the query, decoded */
  char token[64];
  long tn = sig_http_query_param(r->query, "access_token", token, sizeof token);
  if (tn < -2 || tn >= (long)sizeof token || (tn >= 0 && token[tn] != '\0')) abort();
  if (tn >= 0 && strstr(r->query, "access_token=") == NULL) abort();
  add(o, &tn, sizeof tn);
  if (tn > 0) add(o, token, (size_t)tn);
  add(o, &r->body_len, sizeof r->body_len);
  add(o, r->body, r->body_len);
}

/* Feeds the stream in chunks of at most step bytes (0: whole), the way the server does: after a
 * request the rest of the chunk is fed again; an upgrade or an error ends the stream. */
static void run(const char *s, size_t n, size_t step, size_t max_head, size_t max_body,
                outcome_t *o) {
  sig_http_t *h = sig_http_new(max_head, max_body);
  size_t at = 0;
  memset(o, 0, sizeof *o);
  while (at < n) {
    size_t end = step == 0 || n - at < step ? n : at + step;
    while (at < end) {
      size_t used = 0;
      int rc = sig_http_feed(h, s + at, end - at, &used);
      if (used > end - at) abort();
      at += used;
      if (rc < 0) {
        const char *msg;
        int status = sig_http_error(h, &msg);
        add(o, "E", 1);
        add(o, &status, sizeof status);
        add_str(o, msg);
        goto done;
      }
      if (rc == SIG_HTTP_NEED_MORE) {
        if (at != end) abort();
        break;
      }
      const sig_http_request_t *r = sig_http_request(h);
      add_request(o, r, at);
      if (r->upgrade) goto done;
    }
  }
done:
  add(o, &at, sizeof at);
  sig_http_free(h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  size_t n = size - 2;
  char *s = malloc(n ? n : 1); /* exactly n bytes: a read past the end is caught */
  memcpy(s, data + 2, n);
  size_t max_head = data[1] & 1 ? 64 : 8192, max_body = data[1] & 2 ? 16 : 65536;
  size_t steps[] = {0, 1 + data[0] % (n ? n : 1), 1};
  outcome_t want, got;
  run(s, n, 0, max_head, max_body, &want);
  for (size_t i = 1; i < sizeof steps / sizeof steps[0]; i++) {
    if (steps[i] == 1 && n > 4096) continue;
    run(s, n, steps[i], max_head, max_body, &got);
    if (got.len != want.len || (want.len > 0 && memcmp(got.bytes, want.bytes, want.len) != 0))
      abort();
    free(got.bytes);
  }
  free(want.bytes);
  free(s);
  return 0;
}
