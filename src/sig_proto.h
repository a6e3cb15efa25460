/* The protocol's constants (docs/PROTOCOL.md), named once for every module:
 * WebSocket close codes, the HTTP statuses the endpoints answer with, paths, and
 * the refusal that carries a status or close code with its message beside a
 * function's 0 / negative return. web/signal-client.js mirrors the close codes. */
#ifndef SIG_PROTO_H
#define SIG_PROTO_H

/* WebSocket close codes (RFC 6455 7.4.1, and ours in the 4000 range). */
enum {
  SIG_CLOSE_NORMAL = 1000,
  SIG_CLOSE_GOING_AWAY = 1001,   /* server shutting down */
  SIG_CLOSE_PROTOCOL = 1002,     /* RFC 6455 violation */
  SIG_CLOSE_UNSUPPORTED = 1003,  /* binary frame */
  SIG_CLOSE_NO_STATUS = 1005,    /* a close frame without a code (never sent) */
  SIG_CLOSE_INVALID_DATA = 1007, /* invalid UTF-8 */
  SIG_CLOSE_POLICY = 1008,
  SIG_CLOSE_TOO_BIG = 1009,
  SIG_CLOSE_TRY_AGAIN = 1013,    /* the cluster cannot decide now (Redis away, duplicate = "reject") */
  SIG_CLOSE_REPLACED = 4000,     /* another connection registered the domain */
  SIG_CLOSE_UNAUTHORIZED = 4401, /* token missing, expired or invalid */
  SIG_CLOSE_FORBIDDEN = 4403,    /* the token is not for this domain */
  SIG_CLOSE_PING_TIMEOUT = 4408, /* no sign of life within pong_timeout_s */
  SIG_CLOSE_TAKEN = 4409,        /* domain registered already (duplicate = "reject") */
  SIG_CLOSE_FULL = 4503          /* max_connections reached */
};

/* HTTP statuses, also used in error frames. */
enum {
  SIG_STATUS_CONTINUE = 100,
  SIG_STATUS_SWITCHING = 101,
  SIG_STATUS_OK = 200,
  SIG_STATUS_NO_CONTENT = 204,
  SIG_STATUS_BAD_REQUEST = 400,
  SIG_STATUS_UNAUTHORIZED = 401,
  SIG_STATUS_FORBIDDEN = 403,
  SIG_STATUS_NOT_FOUND = 404,
  SIG_STATUS_METHOD_NOT_ALLOWED = 405,
  SIG_STATUS_TIMEOUT = 408,
  SIG_STATUS_CONFLICT = 409,
  SIG_STATUS_TOO_LARGE = 413,
  SIG_STATUS_UPGRADE_REQUIRED = 426,
  SIG_STATUS_TOO_MANY = 429,
  SIG_STATUS_HEADERS_TOO_LARGE = 431,
  SIG_STATUS_UNAVAILABLE = 503
};

/* GET /ws/{domain} registers domain. */
#define SIG_PATH_WS "/ws/"
#define SIG_PATH_WS_LEN (sizeof(SIG_PATH_WS) - 1)

/* A refusal message holds any decoder or router message untruncated. */
#define SIG_REFUSAL_MAX 768

/* Why something was refused: code is the HTTP status (or the status of an error
 * frame) or, for a registration, the WebSocket close code; msg names the field or
 * the reason ("answer_domain: 'B' is not connected"). */
typedef struct {
  int code;
  char msg[SIG_REFUSAL_MAX];
} sig_refusal_t;

/* Fills why with code and the formatted message; returns SIG_EREFUSED. */
int sig_refuse(sig_refusal_t *why, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
