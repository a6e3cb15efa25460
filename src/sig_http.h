/* HTTP/1.1: request parsing (http-parser behind this interface, so it can be
 * swapped for llhttp) and every byte of HTTP text the server sends. No I/O:
 * bytes in, requests out; responses are formatted into buffers. */
#ifndef SIG_HTTP_H
#define SIG_HTTP_H

#include <stddef.h>

typedef struct sig_http_s sig_http_t;

typedef enum {
  SIG_HTTP_GET = 1,
  SIG_HTTP_POST,
  SIG_HTTP_OPTIONS,
  SIG_HTTP_HEAD,
  SIG_HTTP_OTHER
} sig_http_method_t;

/* The headers the server acts on; absent ones are NULL. Repeated headers are
 * joined with ", " as RFC 9110 allows. */
typedef struct {
  sig_http_method_t method;
  const char *method_name;
  const char *path; /* without the query string */
  size_t path_len;
  const char *query; /* after '?' and before any '#', as sent (not decoded); "" when none */
  int http_major, http_minor;
  int keep_alive; /* the client wants the connection kept */
  int upgrade;    /* the client asked for an upgrade and the parser stopped after this request */
  int has_body;   /* Content-Length > 0 or chunked */
  const char *h_upgrade, *h_connection, *h_ws_key, *h_ws_version, *h_expect, *h_host;
  const char *h_forwarded_for, *h_forwarded; /* X-Forwarded-For, Forwarded */
  const char *h_authorization, *h_origin;
  int forwarded_unusable; /* one of those two was too long to keep: believe neither */
  const char *body;       /* NUL-terminated copy of this request's body ("" when it has none) */
  size_t body_len;
} sig_http_request_t;

/* sig_http_feed's events (an incremental decoder: a non-negative event or a negative error). */
typedef enum {
  SIG_HTTP_NEED_MORE = 0, /* everything consumed, request incomplete */
  SIG_HTTP_REQUEST = 1,   /* a request is complete: see sig_http_request() */
} sig_http_event_t;

/* max_header_bytes bounds the request line plus headers; max_body_bytes the
 * (de-chunked) body. */
sig_http_t *sig_http_new(size_t max_header_bytes, size_t max_body_bytes);
/* Accepts NULL. */
void sig_http_free(sig_http_t *h);

/* Feeds len bytes. Sets *consumed to the bytes used. Returns SIG_HTTP_NEED_MORE,
 * SIG_HTTP_REQUEST (stops right after the request; feed the rest after handling it,
 * unless it was an upgrade), or SIG_EBADMSG: then sig_http_error() says the status
 * and message to answer with before closing. The outcome does not depend on how the
 * bytes are split between calls: limits count bytes by position, and every check
 * runs where the parser has already read the whole of what it judges. */
int sig_http_feed(sig_http_t *h, const char *buf, size_t len, size_t *consumed);

/* The completed request, valid until the next sig_http_feed or sig_http_free. */
const sig_http_request_t *sig_http_request(const sig_http_t *h);

/* After a failed feed: the HTTP status (400, 413, 431) and a message naming the problem. */
int sig_http_error(const sig_http_t *h, const char **msg);

/* True once a request has started arriving and until it is complete (for the request
 * timeout). */
int sig_http_in_request(const sig_http_t *h);

/* True (once) when the head asked for "Expect: 100-continue" and a body is still to come:
 * send sig_http_continue() then. */
int sig_http_take_expect_continue(sig_http_t *h);

/* The interim response "100 Continue" and its length. */
const char *sig_http_continue(size_t *len);

/* A header line "name: value" to add to a response. */
typedef struct {
  const char *name, *value;
} sig_http_header_t;

/* A response. Fields left 0/NULL are left out. */
typedef struct {
  int status;
  const char *content_type;
  const char *body;
  size_t body_len;
  int keep_alive;
  int head;                /* answering HEAD: the headers a GET gets, without the body */
  const char *cors_origin; /* Access-Control-Allow-Origin */
  int vary_origin;         /* Vary: Origin (the answer depends on the request's Origin) */
  int preflight;           /* the CORS preflight's Allow-Methods, Allow-Headers, Max-Age */
  int preflight_auth;      /* ... with Authorization among the allowed headers */
  const char *allow;       /* Allow: the methods of the resource (405) */
  int no_cache;            /* Cache-Control: no-cache */
  sig_http_header_t extra[2];
} sig_http_response_t;

/* Formats a complete response: status line, headers in a fixed order, Content-Length
 * (none on 1xx and 204), Connection, and the body unless r->head. Returns a malloc'ed
 * buffer (caller frees) and its length in *len. */
char *sig_http_format(const sig_http_response_t *r, size_t *len);

/* The reason phrase of a status ("Not Found"), "Unknown" for others. */
const char *sig_http_reason(int status);

/* Case-insensitive search for token in a comma-separated header value (NULL: not found). */
int sig_http_has_token(const char *value, const char *token);

/* The value of the first `name` parameter of a query string (a=1&b=2), percent-decoded into out
 * (cap bytes, cap > 0, NUL-terminated). Returns its length; -1 when absent; -2 when malformed (a
 * bad %XX) or longer than cap - 1. */
long sig_http_query_param(const char *query, const char *name, char *out, size_t cap);

#endif
