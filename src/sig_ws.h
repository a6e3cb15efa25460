/* WebSocket (RFC 6455), server side: the handshake's accept key, framing of what
 * the server sends, and a streaming parser for what clients send that exists only
 * while a connection has a frame or message in flight. */
#ifndef SIG_WS_H
#define SIG_WS_H

#include <stddef.h>
#include <stdint.h>

#include "sig_http.h"
#include "sig_proto.h"

typedef struct sig_ws_s sig_ws_t;

enum {
  SIG_WS_OP_TEXT = 0x1,
  SIG_WS_OP_BINARY = 0x2,
  SIG_WS_OP_CLOSE = 0x8,
  SIG_WS_OP_PING = 0x9,
  SIG_WS_OP_PONG = 0xa
};

typedef struct {
  /* A complete, UTF-8-valid text message. Returns 0 to go on, or 1 to stop the feed right
   * after this message (the bytes after it are left unconsumed). */
  int (*on_text)(void *user, const char *msg, size_t len);
  /* Bytes to put on the wire, in order. Returns 0, or negative when the transport
   * is gone (the parser then stops: no
   * further callback). */
  int (*write)(void *user, const char *data, size_t len);
} sig_ws_callbacks_t;

/* sig_ws_feed's events (an incremental decoder: a non-negative event or a negative error). */
typedef enum {
  SIG_WS_OPEN = 0,  /* keep reading */
  SIG_WS_CLOSED = 1 /* a close frame was sent (as an echo or for an error): flush and close */
} sig_ws_state_t;

/* cb is borrowed for the parser's life. */
sig_ws_t *sig_ws_new(const sig_ws_callbacks_t *cb, void *user, uint64_t max_message);
/* Accepts NULL. */
void sig_ws_free(sig_ws_t *ws);

/* Parses received bytes (any split), calling on_text for each complete message
 * (the text is valid only during the call) and answering pings and closes itself.
 * *consumed gets the bytes used: all of them unless on_text asked to stop.
 * Refusals send a close frame at the first offending byte: 1003 "binary frames are
 * not supported", 1007 "invalid UTF-8", 1009 "message too big" (on the frame header
 * that announces it), 1002 "protocol error" (RFC 6455 violations). A peer's close is
 * echoed. Returns SIG_WS_OPEN, SIG_WS_CLOSED (a close frame went out: flush and
 * close), or a negative error when the write callback failed. */
int sig_ws_feed(sig_ws_t *ws, const char *buf, size_t len, size_t *consumed);

/* Complete frames parsed so far, of every kind: a peer's sign of life. */
uint64_t sig_ws_frames(const sig_ws_t *ws);

/* True when no frame or fragmented message is in progress: the parser may be freed
 * and a new one made for the next bytes. */
int sig_ws_idle(const sig_ws_t *ws);

/* True once the peer's close frame has arrived. */
int sig_ws_close_received(const sig_ws_t *ws);

/* Close code sent by the parser (after SIG_WS_CLOSED), or 0. */
uint16_t sig_ws_close_code(const sig_ws_t *ws);

/* Writes an unmasked frame header for a payload of len bytes into hdr (10 bytes
 * at most) and returns its length. */
size_t sig_ws_frame_header(uint8_t hdr[10], unsigned opcode, size_t len);

/* Builds a close frame (at most 127 bytes; the reason is cut to fit) into out. */
size_t sig_ws_close_frame(uint8_t out[127], uint16_t code, const char *reason);

/* Room for the 101 response of sig_ws_handshake. */
#define SIG_WS_HANDSHAKE_MAX 160

/* Checks an upgrade request (RFC 6455 4.2.1: HTTP/1.1, Upgrade: websocket, Connection:
 * upgrade, version 13, a valid key, no body). Returns 0 with the "101 Switching Protocols"
 * response in out (cap bytes, at least SIG_WS_HANDSHAKE_MAX) and its length in *len; or
 * SIG_EREFUSED with the status (400 or 426) and a message in why, and in hint a header the
 * refusal should carry (426: Upgrade or Sec-WebSocket-Version; else name NULL). */
int sig_ws_handshake(const sig_http_request_t *r, char *out, size_t cap, size_t *len,
                     sig_refusal_t *why, sig_http_header_t *hint);

/* True if key is the base64 of 16 bytes, as Sec-WebSocket-Key must be. */
int sig_ws_key_valid(const char *key);

/* Sec-WebSocket-Accept for a client key: out gets 28 characters and a NUL. */
void sig_ws_accept_key(const char *key, char out[29]);

#endif
