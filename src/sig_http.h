/* HTTP/1.1 request parsing (http-parser behind this interface, so it can be
 * swapped for llhttp) and response formatting. No I/O: bytes in, requests out. */
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
  int http_major, http_minor;
  int keep_alive; /* the client wants the connection kept */
  int upgrade;    /* the parser stopped at an upgrade: the rest is another protocol */
  int has_body;   /* Content-Length > 0 or chunked */
  const char *h_upgrade, *h_connection, *h_ws_key, *h_ws_version, *h_expect, *h_host;
  const char *body; /* NUL-terminated copy; body_len bytes */
  size_t body_len;
} sig_http_request_t;

typedef enum {
  SIG_HTTP_NEED_MORE = 0, /* everything consumed, request incomplete */
  SIG_HTTP_REQUEST = 1,   /* a request is complete: see sig_http_request() */
} sig_http_status_t;

/* max_header_bytes bounds the request line plus headers; max_body_bytes the
 * (de-chunked) body. */
sig_http_t *sig_http_new(size_t max_header_bytes, size_t max_body_bytes);
void sig_http_free(sig_http_t *h);

/* Feeds len bytes. Sets *consumed to the bytes used. Returns SIG_HTTP_NEED_MORE,
 * SIG_HTTP_REQUEST (stops right after the request; feed the rest after handling it,
 * unless it was an upgrade), or a negative error: then sig_http_error() says the
 * status and message to answer with before closing. */
int sig_http_feed(sig_http_t *h, const char *buf, size_t len, size_t *consumed);

/* The completed request, valid until the next sig_http_feed or sig_http_free. */
const sig_http_request_t *sig_http_request(const sig_http_t *h);

/* After a failed feed: the HTTP status (400, 408, 413, 431) and a message naming the problem. */
int sig_http_error(const sig_http_t *h, const char **msg);

/* True once a request head has started arriving (for the header timeout). */
int sig_http_in_request(const sig_http_t *h);

/* True (once) when the head asked for "Expect: 100-continue" and a body is still to come. */
int sig_http_take_expect_continue(sig_http_t *h);

/* Formats a complete response. extra_headers is "Name: value\r\n"... or NULL.
 * Returns a malloc'ed buffer (caller frees) and its length in *len. */
char *sig_http_format_response(int status, const char *extra_headers, const char *content_type,
                               const char *body, size_t body_len, int keep_alive, size_t *len);

const char *sig_http_reason(int status);

/* Case-insensitive search for token in a comma-separated header value. */
int sig_http_has_token(const char *value, const char *token);

#endif
