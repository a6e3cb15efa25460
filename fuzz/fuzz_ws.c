/* libFuzzer target for sig_ws: the parser's outcome (messages delivered, bytes written, the final
 * state) is the same whether the stream comes whole, split at a point the input chooses, or a
 * byte at a time; when the parser is freed and remade whenever it is idle (as the server does);
 * and when on_text asks it to stop after every message and the rest is fed again (as a
 * connection that spent its turn's budget does). Input: one byte choosing the split, one
 * choosing the limits, then the stream. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sig_ws.h"

typedef struct {
  unsigned char *bytes; /* messages, each prefixed by its length, then written bytes */
  size_t len, cap;
  size_t nmsgs, written;
  int fail_after; /* writes allowed before the transport reports it is gone; -1: never */
  int writes;
  int pause; /* on_text asks the parser to stop after each message */
} outcome_t;

static void add(outcome_t *o, const void *p, size_t n) {
  if (o->len + n > o->cap) {
    o->cap = (o->len + n) * 2 + 64;
    o->bytes = realloc(o->bytes, o->cap);
  }
  if (n > 0) memcpy(o->bytes + o->len, p, n);
  o->len += n;
}

static int on_text(void *user, const char *msg, size_t len) {
  outcome_t *o = user;
  add(o, "M", 1);
  add(o, &len, sizeof len);
  add(o, msg, len);
  o->nmsgs++;
  return o->pause;
}

static int on_write(void *user, const char *data, size_t len) {
  outcome_t *o = user;
  if (o->fail_after >= 0 && o->writes++ >= o->fail_after) return -1;
  add(o, "W", 1);
  add(o, data, len);
  o->written += len;
  return 0;
}

static const sig_ws_callbacks_t callbacks = {on_text, on_write};

/* Feeds the stream in chunks of at most step bytes (0: whole); returns the last state. */
static int run(const char *s, size_t n, size_t step, uint64_t max, int fail_after, int pause,
               outcome_t *o) {
  memset(o, 0, sizeof *o);
  o->fail_after = fail_after;
  o->pause = pause;
  sig_ws_t *ws = NULL;
  int rc = SIG_WS_OPEN;
  for (size_t at = 0; at < n && rc == SIG_WS_OPEN;) {
    size_t k = step == 0 || n - at < step ? n - at : step, used = 0;
    if (ws == NULL) ws = sig_ws_new(&callbacks, o, max);
    rc = sig_ws_feed(ws, s + at, k, &used);
    if (used > k || (used < k && rc == SIG_WS_OPEN && !pause)) abort();
    at += used;
    if (rc == SIG_WS_OPEN && sig_ws_idle(ws)) {
      sig_ws_free(ws);
      ws = NULL;
    }
  }
  if (rc == SIG_WS_CLOSED && sig_ws_close_code(ws) == 0) abort();
  sig_ws_free(ws);
  return rc < 0 ? -1 : rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  size_t n = size - 2;
  const char *s = (const char *)data + 2;
  uint64_t max = data[1] & 1 ? 64 : 65536;
  int fail_after = data[1] & 2 ? (data[1] >> 2) & 7 : -1;
  size_t steps[] = {0, 1 + data[0] % (n ? n : 1), 1};
  outcome_t want, got;
  int want_rc = run(s, n, steps[0], max, fail_after, 0, &want);
  for (size_t i = 0; i < 2 * (sizeof steps / sizeof steps[0]); i++) {
    size_t step = steps[i % 3];
    int pause = i >= 3;
    if ((step == 1 && n > 4096) || i == 0) continue;
    int rc = run(s, n, step, max, fail_after, pause, &got);
    if (rc != want_rc || got.len != want.len ||
        (want.len > 0 && memcmp(got.bytes, want.bytes, want.len) != 0))
      abort();
    free(got.bytes);
  }
  free(want.bytes);
  return 0;
}
