/* HTTP/1.1 request parsing on http-parser, with our own limits on head and body
 * size, and the response formatter. Only this file sees http_parser.h. */
#include "sig_http.h"

#include <http_parser.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sig_util.h"

/* Header values we keep are short (a WebSocket key is 24 bytes); anything longer
 * than this in a header we act on is refused rather than truncated. */
#define HVAL_MAX 256
#define HNAME_MAX 32

enum { H_UPGRADE, H_CONNECTION, H_WS_KEY, H_WS_VERSION, H_EXPECT, H_HOST, H_COUNT, H_NONE = -1 };
static const char *const header_names[H_COUNT] = {
    "upgrade", "connection", "sec-websocket-key", "sec-websocket-version", "expect", "host"};

struct sig_http_s {
  http_parser parser;
  size_t max_header_bytes, max_body_bytes;
  size_t head_bytes;
  char *url;
  size_t url_len;
  char name[HNAME_MAX + 1];
  size_t name_len; /* > HNAME_MAX means "a name we don't care about" */
  int cur;         /* header being read, or H_NONE */
  int in_value;
  char values[H_COUNT][HVAL_MAX + 1];
  size_t value_len[H_COUNT];
  int present[H_COUNT];
  char *body;
  size_t body_len, body_cap;
  int started, head_done, complete, expect_continue, has_body;
  int err_status;
  const char *err_msg;
  char err_buf[160];
  sig_http_request_t req;
};

static int fail(sig_http_t *h, int status, const char *msg) {
  h->err_status = status;
  h->err_msg = msg;
  return -1;
}

static int count_head(sig_http_t *h, size_t len) {
  h->head_bytes += len;
  if (h->head_bytes > h->max_header_bytes) return fail(h, 431, "head: request head too large");
  return 0;
}

static int on_message_begin(http_parser *p) {
  sig_http_t *h = p->data;
  h->started = 1;
  return 0;
}

static int on_url(http_parser *p, const char *at, size_t len) {
  sig_http_t *h = p->data;
  if (count_head(h, len)) return -1;
  h->url = sig_realloc(h->url, h->url_len + len + 1);
  memcpy(h->url + h->url_len, at, len);
  h->url_len += len;
  h->url[h->url_len] = '\0';
  return 0;
}

static void finish_name(sig_http_t *h) {
  h->cur = H_NONE;
  if (h->name_len > HNAME_MAX) return;
  h->name[h->name_len] = '\0';
  for (int i = 0; i < H_COUNT; i++)
    if (strcasecmp(h->name, header_names[i]) == 0) h->cur = i;
}

static int on_header_field(http_parser *p, const char *at, size_t len) {
  sig_http_t *h = p->data;
  /* A name may arrive in pieces: its ": " and CRLF count once, with the first. */
  int first_piece = h->in_value || h->name_len == 0;
  if (count_head(h, len + (first_piece ? 4 : 0))) return -1;
  if (h->in_value) {
    h->in_value = 0;
    h->name_len = 0;
  }
  if (h->name_len + len <= HNAME_MAX) memcpy(h->name + h->name_len, at, len);
  h->name_len += len;
  return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len) {
  sig_http_t *h = p->data;
  if (count_head(h, len)) return -1;
  if (!h->in_value) {
    h->in_value = 1;
    finish_name(h);
    if (h->cur != H_NONE && h->present[h->cur]) { /* repeated header: join */
      if (h->value_len[h->cur] + 2 > HVAL_MAX) goto too_long;
      memcpy(h->values[h->cur] + h->value_len[h->cur], ", ", 2);
      h->value_len[h->cur] += 2;
    }
    if (h->cur != H_NONE) h->present[h->cur] = 1;
  }
  if (h->cur == H_NONE) return 0;
  if (h->value_len[h->cur] + len > HVAL_MAX) goto too_long;
  memcpy(h->values[h->cur] + h->value_len[h->cur], at, len);
  h->value_len[h->cur] += len;
  h->values[h->cur][h->value_len[h->cur]] = '\0';
  return 0;
too_long:
  snprintf(h->err_buf, sizeof(h->err_buf), "%s: header value too long", header_names[h->cur]);
  return fail(h, 400, h->err_buf);
}

static int on_headers_complete(http_parser *p) {
  sig_http_t *h = p->data;
  h->head_done = 1;
  /* Read now: the parser counts content_length down as the body arrives. */
  h->has_body =
      (p->flags & F_CHUNKED) || (p->content_length != ULLONG_MAX && p->content_length > 0);
  if ((p->flags & F_CHUNKED) == 0 && p->content_length != ULLONG_MAX &&
      p->content_length > h->max_body_bytes) {
    snprintf(h->err_buf, sizeof(h->err_buf), "body: larger than %zu bytes", h->max_body_bytes);
    return fail(h, 413, h->err_buf);
  }
  if ((p->flags & F_CHUNKED) == 0 && p->content_length != ULLONG_MAX &&
      p->content_length + 1 > h->body_cap) { /* one allocation for the whole body */
    h->body_cap = (size_t)p->content_length + 1;
    h->body = sig_realloc(h->body, h->body_cap);
  }
  if (h->present[H_EXPECT] && strcasecmp(h->values[H_EXPECT], "100-continue") == 0 &&
      p->http_major == 1 && p->http_minor >= 1 && /* never to HTTP/1.0 (RFC 9110 10.1.1) */
      ((p->flags & F_CHUNKED) || (p->content_length != ULLONG_MAX && p->content_length > 0)))
    h->expect_continue = 1;
  return 0;
}

static int on_body(http_parser *p, const char *at, size_t len) {
  sig_http_t *h = p->data;
  if (h->body_len + len > h->max_body_bytes) {
    snprintf(h->err_buf, sizeof(h->err_buf), "body: larger than %zu bytes", h->max_body_bytes);
    return fail(h, 413, h->err_buf);
  }
  if (h->body_len + len + 1 > h->body_cap) {
    size_t cap = h->body_cap ? h->body_cap : 1024;
    while (cap < h->body_len + len + 1) cap *= 2;
    h->body = sig_realloc(h->body, cap);
    h->body_cap = cap;
  }
  memcpy(h->body + h->body_len, at, len);
  h->body_len += len;
  h->body[h->body_len] = '\0';
  return 0;
}

static int on_message_complete(http_parser *p) {
  sig_http_t *h = p->data;
  h->complete = 1;
  http_parser_pause(p, 1); /* one request at a time: the caller answers before reading on */
  return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void reset_request(sig_http_t *h) {
  free(h->url);
  h->url = NULL;
  h->url_len = 0;
  h->head_bytes = 0;
  h->name_len = 0;
  h->cur = H_NONE;
  h->in_value = 0;
  memset(h->value_len, 0, sizeof(h->value_len));
  memset(h->present, 0, sizeof(h->present));
  h->body_len = 0;
  if (h->body_cap > 4096) { /* don't keep a big body buffer on a keep-alive connection */
    free(h->body);
    h->body = NULL;
    h->body_cap = 0;
  }
  h->started = h->head_done = h->complete = h->expect_continue = h->has_body = 0;
}

sig_http_t *sig_http_new(size_t max_header_bytes, size_t max_body_bytes) {
  sig_http_t *h = sig_calloc(1, sizeof(*h));
  http_parser_init(&h->parser, HTTP_REQUEST);
  h->parser.data = h;
  h->max_header_bytes = max_header_bytes;
  h->max_body_bytes = max_body_bytes;
  h->cur = H_NONE;
  return h;
}

void sig_http_free(sig_http_t *h) {
  if (h == NULL) return;
  free(h->url);
  free(h->body);
  free(h);
}

static sig_http_method_t map_method(unsigned m) {
  switch (m) {
    case HTTP_GET: return SIG_HTTP_GET;
    case HTTP_POST: return SIG_HTTP_POST;
    case HTTP_OPTIONS: return SIG_HTTP_OPTIONS;
    case HTTP_HEAD: return SIG_HTTP_HEAD;
    default: return SIG_HTTP_OTHER;
  }
}

static void build_request(sig_http_t *h) {
  sig_http_request_t *r = &h->req;
  http_parser *p = &h->parser;
  memset(r, 0, sizeof(*r));
  r->method = map_method(p->method);
  r->method_name = http_method_str((enum http_method)p->method);
  r->path = h->url ? h->url : "";
  char *q = h->url ? strpbrk(h->url, "?#") : NULL;
  if (q != NULL) *q = '\0';
  r->path_len = strlen(r->path);
  r->http_major = p->http_major;
  r->http_minor = p->http_minor;
  r->keep_alive = http_should_keep_alive(p);
  r->upgrade = p->upgrade;
  r->has_body = h->has_body;
  const char **slots[H_COUNT] = {&r->h_upgrade,    &r->h_connection, &r->h_ws_key,
                                 &r->h_ws_version, &r->h_expect,     &r->h_host};
  for (int i = 0; i < H_COUNT; i++) {
    h->values[i][h->value_len[i]] = '\0';
    *slots[i] = h->present[i] ? h->values[i] : NULL;
  }
  r->body = h->body ? h->body : "";
  r->body_len = h->body_len;
}

int sig_http_feed(sig_http_t *h, const char *buf, size_t len, size_t *consumed) {
  if (h->complete) { /* the previous request was handled: start the next */
    reset_request(h);
    http_parser_pause(&h->parser, 0);
  }
  size_t n = http_parser_execute(&h->parser, &settings, buf, len);
  *consumed = n;
  enum http_errno e = HTTP_PARSER_ERRNO(&h->parser);
  if (e != HPE_OK && e != HPE_PAUSED) {
    if (h->err_status != 0) return -1; /* one of our limits */
    if (e == HPE_HEADER_OVERFLOW) return fail(h, 431, "head: request head too large");
    snprintf(h->err_buf, sizeof(h->err_buf), "http: %s", http_errno_description(e));
    return fail(h, 400, h->err_buf);
  }
  if (h->complete || h->parser.upgrade) {
    h->complete = 1;
    build_request(h);
    return SIG_HTTP_REQUEST;
  }
  return SIG_HTTP_NEED_MORE;
}

const sig_http_request_t *sig_http_request(const sig_http_t *h) {
  return &h->req;
}

int sig_http_error(const sig_http_t *h, const char **msg) {
  *msg = h->err_msg ? h->err_msg : "http: bad request";
  return h->err_status ? h->err_status : 400;
}

int sig_http_in_request(const sig_http_t *h) {
  return h->started && !h->complete;
}

int sig_http_take_expect_continue(sig_http_t *h) {
  int r = h->expect_continue && !h->complete;
  h->expect_continue = 0;
  return r;
}

const char *sig_http_reason(int status) {
  switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
  }
}

char *sig_http_format_response(int status, const char *extra_headers, const char *content_type,
                               const char *body, size_t body_len, int keep_alive, size_t *len) {
  if (extra_headers == NULL) extra_headers = "";
  size_t cap = 256 + strlen(extra_headers) + (content_type ? strlen(content_type) : 0) + body_len;
  char *out = sig_malloc(cap);
  char length[48] = ""; /* none on 1xx and 204 (RFC 9110 8.6) */
  if (status >= 200 && status != 204)
    snprintf(length, sizeof(length), "Content-Length: %zu\r\n", body_len);
  int n = snprintf(out, cap, "HTTP/1.1 %d %s\r\n%s%s%s%s%sConnection: %s\r\n\r\n", status,
                   sig_http_reason(status), extra_headers, content_type ? "Content-Type: " : "",
                   content_type ? content_type : "", content_type ? "\r\n" : "", length,
                   keep_alive ? "keep-alive" : "close");
  memcpy(out + n, body, body_len);
  *len = (size_t)n + body_len;
  return out;
}

int sig_http_has_token(const char *value, const char *token) {
  if (value == NULL) return 0;
  size_t tl = strlen(token);
  const char *p = value;
  while (*p) {
    while (*p == ' ' || *p == '\t' || *p == ',') p++;
    const char *start = p;
    while (*p && *p != ',') p++;
    const char *end = p;
    while (end > start && (end[-1] == ' ' || end[-1] == '\t')) end--;
    if ((size_t)(end - start) == tl && strncasecmp(start, token, tl) == 0) return 1;
  }
  return 0;
}
