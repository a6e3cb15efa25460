/* WebSocket glue over wslay's event API. The server never keeps a wslay
 * context while a connection is idle (a context is ~9 KB): the caller makes
 * one when bytes arrive and frees it once sig_ws_idle() says no frame is in
 * flight, which we know by counting the bytes of the frames wslay reported. */
#include "sig_ws.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wslay/wslay.h>

#include "sig_util.h"

struct sig_ws_s {
  wslay_event_context_ptr ctx;
  const sig_ws_callbacks_t *cb;
  void *user;
  const uint8_t *in; /* the bytes of the current sig_ws_feed */
  size_t in_len;
  uint64_t fed;    /* bytes given to wslay */
  uint64_t framed; /* bytes of the frames whose start wslay reported */
  uint8_t in_frame, in_fragment, dead, protocol_error;
};

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                       void *user_data) {
  (void)flags;
  sig_ws_t *ws = user_data;
  if (ws->in_len == 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  size_t n = len < ws->in_len ? len : ws->in_len;
  memcpy(buf, ws->in, n);
  ws->in += n;
  ws->in_len -= n;
  ws->fed += n;
  return (ssize_t)n;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user_data) {
  (void)flags;
  sig_ws_t *ws = user_data;
  if (ws->dead || ws->cb->write(ws->user, (const char *)data, len) != 0) {
    ws->dead = 1;
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
  }
  return (ssize_t)len;
}

static void refuse(sig_ws_t *ws, uint16_t code, const char *reason) {
  wslay_event_queue_close(ws->ctx, code, (const uint8_t *)reason, strlen(reason));
  wslay_event_shutdown_read(ws->ctx);
}

static void on_frame_start(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_start_arg *arg, void *user_data) {
  (void)ctx;
  sig_ws_t *ws = user_data;
  uint64_t n = arg->payload_length;
  /* Client frames are masked (wslay refuses others) and use the shortest length form. */
  ws->framed += 2 + 4 + (n < 126 ? 0 : n < 65536 ? 2 : 8) + n;
  ws->in_frame = 1;
  if (arg->opcode < 0x8) ws->in_fragment = !arg->fin;
  /* RFC 6455 5.5.1: a close body is empty or starts with a 2-byte code; wslay lets one byte pass. */
  if (arg->opcode == WSLAY_CONNECTION_CLOSE && n == 1)
    refuse(ws, WSLAY_CODE_PROTOCOL_ERROR, "protocol error");
}

static void on_frame_end(wslay_event_context_ptr ctx, void *user_data) {
  (void)ctx;
  sig_ws_t *ws = user_data;
  ws->in_frame = 0;
}

static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                   void *user_data) {
  (void)ctx;
  sig_ws_t *ws = user_data;
  if (!wslay_event_get_read_enabled(ws->ctx)) return; /* refused earlier in this batch */
  switch (arg->opcode) {
    case WSLAY_TEXT_FRAME: /* wslay has checked UTF-8 as the bytes came (1007 otherwise) */
      /* wslay gives NULL for an empty message; callers get a valid pointer. */
      ws->cb->on_text(ws->user, arg->msg_length ? (const char *)arg->msg : "", arg->msg_length);
      return;
    case WSLAY_BINARY_FRAME:
      refuse(ws, WSLAY_CODE_UNSUPPORTED_DATA, "binary frames are not supported");
      return;
    default: /* ping, pong and close are answered by wslay itself */
      return;
  }
}

static const struct wslay_event_callbacks callbacks = {
    .recv_callback = recv_cb,
    .send_callback = send_cb,
    .on_frame_recv_start_callback = on_frame_start,
    .on_frame_recv_end_callback = on_frame_end,
    .on_msg_recv_callback = on_msg,
};

/* Parsers whose connection went idle at a clean frame boundary, kept for the next
 * connection that receives bytes: making a wslay context costs ~9 KB of allocation
 * and its initialisation on every message otherwise. Bounded, so idle memory stays
 * O(1) in the number of connections. */
#define POOL_MAX 16
static sig_ws_t *pool[POOL_MAX];
static size_t pool_len;

sig_ws_t *sig_ws_new(const sig_ws_callbacks_t *cb, void *user, uint64_t max_message) {
  sig_ws_t *ws;
  if (pool_len > 0) {
    ws = pool[--pool_len];
  } else {
    ws = sig_calloc(1, sizeof(*ws));
    if (wslay_event_context_server_init(&ws->ctx, &callbacks, ws) != 0) {
      fprintf(stderr, "%s:%d: out of memory creating a WebSocket context\n", __FILE__, __LINE__);
      abort();
    }
  }
  ws->cb = cb;
  ws->user = user;
  ws->fed = ws->framed = 0;
  /* Checked on each frame header, before wslay allocates for the payload. */
  wslay_event_config_set_max_recv_msg_length(ws->ctx, max_message);
  return ws;
}

void sig_ws_free(sig_ws_t *ws) {
  if (ws == NULL) return;
  /* Only a context that ended between frames, with nothing queued, closed or failed,
   * is as good as new. */
  if (pool_len < POOL_MAX && sig_ws_idle(ws) && !ws->dead && !ws->protocol_error &&
      !wslay_event_get_close_sent(ws->ctx) && !wslay_event_get_close_received(ws->ctx)) {
    pool[pool_len++] = ws;
    return;
  }
  wslay_event_context_free(ws->ctx);
  free(ws);
}

void sig_ws_pool_drain(void) {
  while (pool_len > 0) {
    sig_ws_t *ws = pool[--pool_len];
    wslay_event_context_free(ws->ctx);
    free(ws);
  }
}

int sig_ws_feed(sig_ws_t *ws, const char *buf, size_t len) {
  ws->in = (const uint8_t *)buf;
  ws->in_len = len;
  int rv = 0;
  if (wslay_event_get_read_enabled(ws->ctx)) rv = wslay_event_recv(ws->ctx);
  ws->in_len = 0;
  if (rv == 0 && wslay_event_want_write(ws->ctx)) rv = wslay_event_send(ws->ctx);
  if (ws->dead) return SIG_EPROTO;
  if (rv != 0) {
    /* wslay gives up on some violations (a fragmented or long control frame, a
     * one-byte close payload) without sending a close frame: send it ourselves. */
    ws->protocol_error = 1;
    if (!wslay_event_get_close_sent(ws->ctx)) {
      uint8_t frame[127];
      size_t n = sig_ws_close_frame(frame, WSLAY_CODE_PROTOCOL_ERROR, "protocol error");
      if (ws->cb->write(ws->user, (const char *)frame, n) != 0) return SIG_EPROTO;
    }
    return SIG_WS_CLOSED;
  }
  if (wslay_event_get_close_sent(ws->ctx)) return SIG_WS_CLOSED;
  return SIG_WS_OPEN;
}

int sig_ws_idle(const sig_ws_t *ws) {
  return ws->fed == ws->framed && !ws->in_frame && !ws->in_fragment &&
         !wslay_event_want_write(ws->ctx) && wslay_event_get_read_enabled(ws->ctx);
}

int sig_ws_close_received(const sig_ws_t *ws) {
  return wslay_event_get_close_received(ws->ctx);
}

uint16_t sig_ws_close_code(const sig_ws_t *ws) {
  if (ws->protocol_error && !wslay_event_get_close_sent(ws->ctx)) return WSLAY_CODE_PROTOCOL_ERROR;
  return wslay_event_get_close_sent(ws->ctx) ? wslay_event_get_status_code_sent(ws->ctx) : 0;
}

size_t sig_ws_frame_header(uint8_t hdr[10], unsigned opcode, size_t len) {
  hdr[0] = (uint8_t)(0x80 | (opcode & 0x0f));
  if (len < 126) {
    hdr[1] = (uint8_t)len;
    return 2;
  }
  if (len < 65536) {
    hdr[1] = 126;
    hdr[2] = (uint8_t)(len >> 8);
    hdr[3] = (uint8_t)len;
    return 4;
  }
  hdr[1] = 127;
  for (int i = 0; i < 8; i++) hdr[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
  return 10;
}

size_t sig_ws_close_frame(uint8_t out[127], uint16_t code, const char *reason) {
  size_t rlen = strlen(reason);
  if (rlen > 123) rlen = 123;
  out[0] = 0x80 | SIG_WS_OP_CLOSE;
  out[1] = (uint8_t)(2 + rlen);
  out[2] = (uint8_t)(code >> 8);
  out[3] = (uint8_t)code;
  memcpy(out + 4, reason, rlen);
  return 4 + rlen;
}

int sig_ws_key_valid(const char *key) {
  /* 16 bytes encode to 22 significant characters and "==". */
  if (key == NULL || strlen(key) != 24 || key[22] != '=' || key[23] != '=') return 0;
  for (int i = 0; i < 22; i++) {
    char c = key[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
          c == '/'))
      return 0;
  }
  return strchr("AQgw", key[21]) != NULL; /* the last 4 bits must be zero padding */
}

void sig_ws_accept_key(const char *key, char out[29]) {
  static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  unsigned char digest[SHA_DIGEST_LENGTH];
  char buf[128];
  size_t klen = strnlen(key, 64);
  memcpy(buf, key, klen);
  memcpy(buf + klen, guid, sizeof(guid) - 1);
  SHA1((const unsigned char *)buf, klen + sizeof(guid) - 1, digest);
  EVP_EncodeBlock((unsigned char *)out, digest, SHA_DIGEST_LENGTH);
  out[28] = '\0';
}
