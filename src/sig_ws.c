/* WebSocket (RFC 6455), server side: the handshake's accept key, framing of what
 * the server sends, and a streaming parser for what clients send. The parser
 * takes bytes in any split, unmasks a word at a time, checks UTF-8 as the bytes
 * arrive, and holds memory only while a frame or message is in flight: the caller
 * frees it whenever sig_ws_idle() says so, so an idle connection costs nothing here.
 * (It replaced wslay, whose per-byte unmasking and UTF-8 check cost ~113 k
 * instructions of a 167 k-instruction exchange, and whose context is ~9 KB.) */
#include "sig_ws.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sig_http.h"
#include "sig_proto.h"
#include "sig_text.h"
#include "sig_util.h"

enum { OP_CONT = 0x0 };

struct sig_ws_s {
  const sig_ws_callbacks_t *cb;
  void *user;
  uint64_t max_message;
  /* the frame being read */
  uint8_t hdr[14];
  uint8_t hdr_len, in_payload, fin, opcode;
  uint8_t mask[4];
  uint64_t remaining; /* payload bytes still to come */
  uint64_t offset;    /* payload bytes already read (the mask's phase) */
  /* the text message being assembled */
  uint8_t in_message;
  char *msg;
  size_t msg_len, msg_cap;
  uint8_t utf8_need, utf8_lo, utf8_hi; /* continuation bytes still expected, next byte's range */
  /* a control frame's payload (at most 125 bytes) */
  uint8_t ctl[125];
  uint8_t ctl_len;
  uint8_t closed, close_received, dead, stop;
  uint16_t close_code;
  uint64_t frames;
};

sig_ws_t *sig_ws_new(const sig_ws_callbacks_t *cb, void *user, uint64_t max_message) {
  sig_ws_t *ws = sig_calloc(1, sizeof(*ws));
  ws->cb = cb;
  ws->user = user;
  ws->max_message = max_message;
  ws->utf8_lo = 0x80;
  ws->utf8_hi = 0xbf;
  return ws;
}

void sig_ws_free(sig_ws_t *ws) {
  if (ws == NULL) return;
  free(ws->msg);
  free(ws);
}

static int send_frame(sig_ws_t *ws, unsigned opcode, const uint8_t *payload, size_t len) {
  uint8_t f[2 + 125];
  f[0] = (uint8_t)(0x80 | opcode);
  f[1] = (uint8_t)len;
  memcpy(f + 2, payload, len);
  if (ws->dead || ws->cb->write(ws->user, (const char *)f, 2 + len) != 0) {
    ws->dead = 1;
    return -1;
  }
  return 0;
}

/* Sends our close frame and stops reading. */
static void close_with(sig_ws_t *ws, uint16_t code, const char *reason) {
  uint8_t f[127];
  size_t n = sig_ws_close_frame(f, code, reason);
  ws->closed = 1;
  ws->close_code = code;
  if (ws->dead || ws->cb->write(ws->user, (const char *)f, n) != 0) ws->dead = 1;
}

static void protocol_error(sig_ws_t *ws) {
  close_with(ws, SIG_CLOSE_PROTOCOL, "protocol error");
}

/* XORs n bytes of in with the mask (at phase off) into out, eight at a time. */
static void unmask(uint8_t *out, const uint8_t *in, size_t n, const uint8_t mask[4], uint64_t off) {
  uint8_t m8[8];
  for (int i = 0; i < 8; i++) m8[i] = mask[(off + (uint64_t)i) & 3];
  uint64_t m;
  memcpy(&m, m8, 8);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, in + i, 8);
    w ^= m;
    memcpy(out + i, &w, 8);
  }
  for (; i < n; i++) out[i] = in[i] ^ m8[i & 7];
}

/* Advances the streaming UTF-8 check over s[0..n). Returns 0, or -1 at a byte that
 * cannot occur here (overlongs, surrogates and code points past U+10FFFF included). */
static int utf8_step(sig_ws_t *ws, const uint8_t *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    if (ws->utf8_need == 0) {
      while (i + 8 <= n) { /* ASCII runs, a word at a time */
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (w & 0x8080808080808080ull) break;
        i += 8;
      }
      if (i == n) break;
      uint8_t c = s[i++];
      if (c < 0x80) continue;
      uint8_t lo = 0x80, hi = 0xbf;
      if (c >= 0xc2 && c <= 0xdf) {
        ws->utf8_need = 1;
      } else if (c >= 0xe0 && c <= 0xef) {
        ws->utf8_need = 2;
        if (c == 0xe0) lo = 0xa0; /* overlong */
        if (c == 0xed) hi = 0x9f; /* surrogates */
      } else if (c >= 0xf0 && c <= 0xf4) {
        ws->utf8_need = 3;
        if (c == 0xf0) lo = 0x90; /* overlong */
        if (c == 0xf4) hi = 0x8f; /* past U+10FFFF */
      } else {
        return -1;
      }
      ws->utf8_lo = lo;
      ws->utf8_hi = hi;
    } else {
      uint8_t c = s[i++];
      if (c < ws->utf8_lo || c > ws->utf8_hi) return -1;
      ws->utf8_need--;
      ws->utf8_lo = 0x80;
      ws->utf8_hi = 0xbf;
    }
  }
  return 0;
}

static int close_code_valid(uint16_t code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
         (code >= 3000 && code <= 4999);
}

static void on_close_frame(sig_ws_t *ws) {
  ws->close_received = 1;
  if (ws->ctl_len == 1) {
    protocol_error(ws);
    return;
  }
  uint16_t code = SIG_CLOSE_NO_STATUS;
  if (ws->ctl_len >= 2) {
    code = (uint16_t)(ws->ctl[0] << 8 | ws->ctl[1]);
    if (!close_code_valid(code)) {
      protocol_error(ws);
      return;
    }
    ws->utf8_need = 0;
    if (utf8_step(ws, ws->ctl + 2, ws->ctl_len - 2u) != 0 || ws->utf8_need != 0) {
      close_with(ws, SIG_CLOSE_INVALID_DATA, "invalid UTF-8");
      return;
    }
  }
  /* Echo the peer's close (code and reason), as RFC 6455 5.5.1 suggests. */
  ws->closed = 1;
  ws->close_code = code;
  send_frame(ws, SIG_WS_OP_CLOSE, ws->ctl, ws->ctl_len);
}

static void end_frame(sig_ws_t *ws) {
  ws->in_payload = 0;
  ws->hdr_len = 0;
  ws->frames++;
  switch (ws->opcode) {
    case SIG_WS_OP_PING: send_frame(ws, SIG_WS_OP_PONG, ws->ctl, ws->ctl_len); return;
    case SIG_WS_OP_PONG: return;
    case SIG_WS_OP_CLOSE: on_close_frame(ws); return;
    default: break;
  }
  if (!ws->fin) return;
  if (ws->utf8_need != 0) { /* the message ends inside a character */
    close_with(ws, SIG_CLOSE_INVALID_DATA, "invalid UTF-8");
    return;
  }
  ws->in_message = 0;
  size_t len = ws->msg_len;
  ws->msg_len = 0;
  if (!ws->dead && ws->cb->on_text(ws->user, len ? ws->msg : "", len) != 0) ws->stop = 1;
}

/* Bytes of header needed so far: 2, then the extended length and the mask. */
static size_t header_size(const uint8_t *h, size_t have) {
  if (have < 2) return 2;
  size_t n = h[1] & 0x7f;
  return 2 + (n == 126 ? 2 : n == 127 ? 8 : 0) + ((h[1] & 0x80) ? 4 : 0);
}

/* Checks a complete frame header. Returns 0, or -1 after refusing the frame. */
static int start_frame(sig_ws_t *ws) {
  const uint8_t *h = ws->hdr;
  uint64_t len = h[1] & 0x7f;
  size_t p = 2;
  if (len == 126) {
    len = (uint64_t)h[2] << 8 | h[3];
    p = 4;
    if (len < 126) goto proto; /* not the shortest form */
  } else if (len == 127) {
    len = 0;
    for (int i = 0; i < 8; i++) len = len << 8 | h[2 + i];
    p = 10;
    if (len < 65536 || (len >> 63) != 0) goto proto;
  }
  ws->fin = h[0] >> 7;
  ws->opcode = h[0] & 0x0f;
  if ((h[0] & 0x70) != 0 || (h[1] & 0x80) == 0) goto proto; /* reserved bits, unmasked */
  memcpy(ws->mask, h + p, 4);
  ws->remaining = len;
  ws->offset = 0;
  if (ws->opcode >= 0x8) {
    if (ws->opcode > SIG_WS_OP_PONG || !ws->fin || len > 125) goto proto;
    ws->ctl_len = 0;
    return 0;
  }
  if (ws->opcode == OP_CONT ? !ws->in_message : ws->in_message) goto proto;
  if (ws->opcode == SIG_WS_OP_BINARY) {
    close_with(ws, SIG_CLOSE_UNSUPPORTED, "binary frames are not supported");
    return -1;
  }
  if (ws->opcode != OP_CONT && ws->opcode != SIG_WS_OP_TEXT) goto proto;
  if (ws->msg_len + len > ws->max_message) {
    close_with(ws, SIG_CLOSE_TOO_BIG, "message too big");
    return -1;
  }
  ws->in_message = 1;
  if (ws->msg_len + len > ws->msg_cap) { /* bounded by max_message, checked above */
    ws->msg_cap = ws->msg_len + (size_t)len;
    ws->msg = sig_realloc(ws->msg, ws->msg_cap);
  }
  if (ws->opcode == OP_CONT) ws->opcode = SIG_WS_OP_TEXT;
  return 0;
proto:
  protocol_error(ws);
  return -1;
}

int sig_ws_feed(sig_ws_t *ws, const char *buf, size_t len, size_t *consumed) {
  const uint8_t *in = (const uint8_t *)buf, *start = in;
  ws->stop = 0;
  while (len > 0 && !ws->closed && !ws->dead && !ws->stop) {
    if (!ws->in_payload) {
      size_t need = header_size(ws->hdr, ws->hdr_len);
      while (ws->hdr_len < need && len > 0) {
        ws->hdr[ws->hdr_len++] = *in++;
        len--;
        need = header_size(ws->hdr, ws->hdr_len);
      }
      if (ws->hdr_len < need) break;
      if (start_frame(ws) != 0) break;
      ws->in_payload = 1;
      if (ws->remaining == 0) end_frame(ws);
      continue;
    }
    size_t n = ws->remaining < len ? (size_t)ws->remaining : len;
    if (ws->opcode >= 0x8) {
      unmask(ws->ctl + ws->ctl_len, in, n, ws->mask, ws->offset);
      ws->ctl_len = (uint8_t)(ws->ctl_len + n);
    } else {
      uint8_t *out = (uint8_t *)ws->msg + ws->msg_len;
      unmask(out, in, n, ws->mask, ws->offset);
      ws->msg_len += n;
      if (utf8_step(ws, out, n) != 0) {
        close_with(ws, SIG_CLOSE_INVALID_DATA, "invalid UTF-8");
        break;
      }
    }
    in += n;
    len -= n;
    ws->offset += n;
    ws->remaining -= n;
    if (ws->remaining == 0) end_frame(ws);
  }
  *consumed = ws->closed || ws->dead ? (size_t)(in - start) + len : (size_t)(in - start);
  if (ws->dead) return SIG_EPROTO;
  return ws->closed ? SIG_WS_CLOSED : SIG_WS_OPEN;
}

uint64_t sig_ws_frames(const sig_ws_t *ws) {
  return ws->frames;
}

int sig_ws_idle(const sig_ws_t *ws) {
  return ws->hdr_len == 0 && !ws->in_payload && !ws->in_message && !ws->closed;
}

int sig_ws_close_received(const sig_ws_t *ws) {
  return ws->close_received;
}

uint16_t sig_ws_close_code(const sig_ws_t *ws) {
  return ws->closed ? ws->close_code : 0;
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
  for (int i = 0; i < 22; i++)
    if (sig_base64_value((unsigned char)key[i]) < 0) return 0;
  return (sig_base64_value((unsigned char)key[21]) & 0xf) == 0; /* the last 4 bits: padding */
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

int sig_ws_handshake(const sig_http_request_t *r, char *out, size_t cap, size_t *len,
                     sig_refusal_t *why, sig_http_header_t *hint) {
  const char *msg = NULL;
  int status = SIG_STATUS_BAD_REQUEST;
  hint->name = hint->value = NULL;
  if (r->http_major != 1 || r->http_minor < 1) {
    msg = "version: a WebSocket upgrade needs HTTP/1.1";
  } else if (r->h_upgrade == NULL) {
    status = SIG_STATUS_UPGRADE_REQUIRED;
    hint->name = "Upgrade", hint->value = "websocket";
    msg = "upgrade: this endpoint needs a WebSocket upgrade";
  } else if (!sig_http_has_token(r->h_upgrade, "websocket")) {
    msg = "upgrade: expected websocket";
  } else if (!sig_http_has_token(r->h_connection, "upgrade")) {
    msg = "connection: expected upgrade";
  } else if (r->h_ws_version == NULL || strcmp(r->h_ws_version, "13") != 0) {
    status = SIG_STATUS_UPGRADE_REQUIRED;
    hint->name = "Sec-WebSocket-Version", hint->value = "13";
    msg = "sec-websocket-version: only version 13 is supported";
  } else if (!sig_ws_key_valid(r->h_ws_key)) {
    msg = "sec-websocket-key: must be base64 of 16 bytes";
  } else if (r->has_body) { /* what follows the head would be read as WebSocket frames */
    msg = "body: a WebSocket upgrade has no body";
  }
  if (msg != NULL) {
    why->code = status;
    snprintf(why->msg, sizeof(why->msg), "%s", msg);
    return SIG_EREFUSED;
  }
  char accept[29];
  sig_ws_accept_key(r->h_ws_key, accept);
  int n = snprintf(out, cap,
                   "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                   accept);
  if (n < 0 || (size_t)n >= cap) return SIG_ETOOBIG;
  *len = (size_t)n;
  return 0;
}
