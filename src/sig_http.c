/* HTTP/1.1 request parsing on http-parser, with our own limits on head and body
 * size, and the response formatter. Only this file sees http_parser.h.
 *
 * The same bytes must give the same outcome however they are split, yet
 * http-parser calls the data callbacks (URL, header value, body) wherever a read
 * happens to end. So nothing here refuses from a data callback: the head limit
 * caps the bytes fed to the parser while the head is incomplete; a header value
 * too long to keep is refused at on_headers_complete, and a chunked body too
 * large at on_chunk_header: notifications that fire at fixed byte positions. */
#include "sig_http.h"

#include <http_parser.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sig_proto.h"
#include "sig_text.h"
#include "sig_util.h"

/* Header values we keep are short (a WebSocket key is 24 bytes); anything longer
 * than this in a header we act on is refused rather than truncated. */
#define HVAL_MAX 256
/* A proxy chain's list may be longer; past this it is not believed (the socket's peer counts). */
#define HFWD_MAX 1024
#define HNAME_MAX 32

/* A token (a JWT with its claims) may be long; the head limit still bounds it. */
#define HAUTH_MAX (8192 + 64) /* a token of SIG_AUTH_TOKEN_MAX bytes, "Bearer " and spaces */

enum {
  H_UPGRADE,
  H_CONNECTION,
  H_WS_KEY,
  H_WS_VERSION,
  H_EXPECT,
  H_HOST,
  H_XFF,
  H_FORWARDED,
  H_AUTHORIZATION,
  H_ORIGIN,
  H_COUNT,
  H_NONE = -1
};
static const char *const header_names[H_COUNT] = {
    "upgrade", "connection",      "sec-websocket-key", "sec-websocket-version", "expect",
    "host",    "x-forwarded-for", "forwarded",         "authorization",         "origin"};
/* The longest value kept of each (a value's buffer grows on demand up to it). */
static const size_t value_room[H_COUNT] = {HVAL_MAX, HVAL_MAX, HVAL_MAX, HVAL_MAX,  HVAL_MAX,
                                           HVAL_MAX, HFWD_MAX, HFWD_MAX, HAUTH_MAX, HVAL_MAX};

struct sig_http_s {
  http_parser parser;
  size_t max_header_bytes, max_body_bytes;
  size_t head_bytes;     /* fed to the parser since this request began, while its head was open */
  size_t body_announced; /* chunked: the sum of the chunk sizes so far */
  char *url;
  size_t url_len;
  char name[HNAME_MAX + 1];
  size_t name_len; /* > HNAME_MAX means "a name we don't care about" */
  int cur;         /* header being read, or H_NONE */
  int in_value;
  char *values[H_COUNT]; /* heap, made for the headers a request has */
  size_t value_cap[H_COUNT];
  size_t value_len[H_COUNT];
  int present[H_COUNT];
  char *body;
  size_t body_len, body_cap;
  int started, head_done, complete, expect_continue, has_body;
  int too_long;     /* a header we act on whose value is longer than its room, or H_NONE */
  int fwd_too_long; /* bit per forwarded-for header past HFWD_MAX: not believed */
  int err_status;
  const char *err_msg;
  char err_buf[160];
  sig_http_request_t req;
};

/* Records the refusal; returns what a callback returns to stop the parser (nonzero) and
 * what sig_http_feed returns (negative). */
static int refuse(sig_http_t *h, int status, const char *msg) {
  h->err_status = status;
  h->err_msg = msg;
  return SIG_EBADMSG;
}

static int on_message_begin(http_parser *p) {
  sig_http_t *h = p->data;
  h->started = 1;
  return 0;
}

static int on_url(http_parser *p, const char *at, size_t len) {
  sig_http_t *h = p->data;
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

/* Trailers (header lines after a chunked body) are ignored: what a request means is settled by
 * its head. (http-parser also hands their pieces over differently depending on how the bytes
 * were split, which the fuzz target found.) */
static int on_header_field(http_parser *p, const char *at, size_t len) {
  sig_http_t *h = p->data;
  if (h->head_done) return 0;
  if (h->in_value) {
    h->in_value = 0;
    h->name_len = 0;
  }
  if (h->name_len + len <= HNAME_MAX) memcpy(h->name + h->name_len, at, len);
  h->name_len += len;
  return 0;
}

/* Appends to the value of the header being read; past HVAL_MAX it only notes which header
 * was too long (refused once the head is complete). */
static void append_value(sig_http_t *h, const char *at, size_t len) {
  if (h->value_len[h->cur] + len > value_room[h->cur]) {
    if (h->cur == H_XFF || h->cur == H_FORWARDED)
      h->fwd_too_long |= 1 << (h->cur - H_XFF);
    else if (h->too_long == H_NONE)
      h->too_long = h->cur;
    return;
  }
  size_t need = h->value_len[h->cur] + len + 1;
  if (need > h->value_cap[h->cur]) {
    size_t cap = h->value_cap[h->cur] != 0 ? h->value_cap[h->cur] : 64;
    while (cap < need) cap *= 2;
    h->values[h->cur] = sig_realloc(h->values[h->cur], cap);
    h->value_cap[h->cur] = cap;
  }
  memcpy(h->values[h->cur] + h->value_len[h->cur], at, len);
  h->value_len[h->cur] += len;
  h->values[h->cur][h->value_len[h->cur]] = '\0';
}

static int on_header_value(http_parser *p, const char *at, size_t len) {
  sig_http_t *h = p->data;
  if (h->head_done) return 0;
  if (!h->in_value) {
    h->in_value = 1;
    finish_name(h);
    if (h->cur != H_NONE && h->present[h->cur]) append_value(h, ", ", 2); /* repeated: join */
    if (h->cur != H_NONE) h->present[h->cur] = 1;
  }
  if (h->cur != H_NONE) append_value(h, at, len);
  return 0;
}

static int on_headers_complete(http_parser *p) {
  sig_http_t *h = p->data;
  h->head_done = 1;
  if (h->too_long != H_NONE) {
    snprintf(h->err_buf, sizeof(h->err_buf), "%s: header value too long",
             header_names[h->too_long]);
    return refuse(h, SIG_STATUS_BAD_REQUEST, h->err_buf);
  }
  /* Read now: the parser counts content_length down as the body arrives. */
  h->has_body =
      (p->flags & F_CHUNKED) || (p->content_length != ULLONG_MAX && p->content_length > 0);
  if ((p->flags & F_CHUNKED) == 0 && p->content_length != ULLONG_MAX &&
      p->content_length > h->max_body_bytes) {
    snprintf(h->err_buf, sizeof(h->err_buf), "body: larger than %zu bytes", h->max_body_bytes);
    return refuse(h, SIG_STATUS_TOO_LARGE, h->err_buf);
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

/* A chunked body is bounded by what its chunk headers announce, before the data arrives. */
static int on_chunk_header(http_parser *p) {
  sig_http_t *h = p->data;
  h->body_announced += (size_t)p->content_length;
  if (p->content_length > h->max_body_bytes || h->body_announced > h->max_body_bytes) {
    snprintf(h->err_buf, sizeof(h->err_buf), "body: larger than %zu bytes", h->max_body_bytes);
    return refuse(h, SIG_STATUS_TOO_LARGE, h->err_buf);
  }
  return 0;
}

/* Never refuses: the size was checked when the head or the chunk header announced it. */
static int on_body(http_parser *p, const char *at, size_t len) {
  sig_http_t *h = p->data;
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
    .on_chunk_header = on_chunk_header,
};

static void reset_request(sig_http_t *h) {
  free(h->url);
  h->url = NULL;
  h->url_len = 0;
  h->head_bytes = h->body_announced = 0;
  h->too_long = H_NONE;
  h->fwd_too_long = 0;
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
  h->cur = h->too_long = H_NONE;
  return h;
}

void sig_http_free(sig_http_t *h) {
  if (h == NULL) return;
  for (int i = 0; i < H_COUNT; i++) free(h->values[i]);
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
  r->query = "";
  if (q != NULL) {
    if (*q == '?') {
      char *frag = strchr(q + 1, '#');
      if (frag != NULL) *frag = '\0';
      r->query = q + 1;
    }
    *q = '\0';
  }
  r->path_len = strlen(r->path);
  r->http_major = p->http_major;
  r->http_minor = p->http_minor;
  r->keep_alive = http_should_keep_alive(p);
  r->upgrade = p->upgrade;
  r->has_body = h->has_body;
  const char **slots[H_COUNT] = {
      &r->h_upgrade, &r->h_connection,    &r->h_ws_key,    &r->h_ws_version,    &r->h_expect,
      &r->h_host,    &r->h_forwarded_for, &r->h_forwarded, &r->h_authorization, &r->h_origin};
  for (int i = 0; i < H_COUNT; i++)
    *slots[i] = !h->present[i] ? NULL : h->value_len[i] > 0 ? h->values[i] : "";
  r->forwarded_unusable = h->fwd_too_long != 0;
  r->body = h->body_len > 0 ? h->body : ""; /* never an earlier request's body */
  r->body_len = h->body_len;
}

int sig_http_feed(sig_http_t *h, const char *buf, size_t len, size_t *consumed) {
  if (h->complete) { /* the previous request was handled: start the next */
    reset_request(h);
    http_parser_pause(&h->parser, 0);
  }
  size_t used = 0;
  *consumed = 0;
  while (used < len && !h->complete) {
    size_t n = len - used;
    if (!h->head_done) { /* the head may not pass max_header_bytes, by position */
      if (h->head_bytes == h->max_header_bytes)
        return refuse(h, SIG_STATUS_HEADERS_TOO_LARGE, "head: request head too large");
      if (n > h->max_header_bytes - h->head_bytes) n = h->max_header_bytes - h->head_bytes;
    }
    size_t k = http_parser_execute(&h->parser, &settings, buf + used, n);
    enum http_errno e = HTTP_PARSER_ERRNO(&h->parser);
    used += k;
    *consumed = used;
    if (e != HPE_OK && e != HPE_PAUSED) {
      if (h->err_status != 0) return SIG_EBADMSG; /* one of our checks */
      if (e == HPE_HEADER_OVERFLOW)
        return refuse(h, SIG_STATUS_HEADERS_TOO_LARGE, "head: request head too large");
      snprintf(h->err_buf, sizeof(h->err_buf), "http: %s", http_errno_description(e));
      return refuse(h, SIG_STATUS_BAD_REQUEST, h->err_buf);
    }
    if (!h->head_done) h->head_bytes += k;
  }
  if (!h->complete && !h->head_done && h->head_bytes == h->max_header_bytes)
    return refuse(h, SIG_STATUS_HEADERS_TOO_LARGE, "head: request head too large");
  if (h->complete) {
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
  return h->err_status ? h->err_status : SIG_STATUS_BAD_REQUEST;
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
    case 401: return "Unauthorized";
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

const char *sig_http_continue(size_t *len) {
  static const char text[] = "HTTP/1.1 100 Continue\r\n\r\n";
  *len = sizeof(text) - 1;
  return text;
}

/* Appends "name: value\r\n" when value is not NULL. */
static size_t header(char *out, const char *name, const char *value) {
  if (value == NULL) return 0;
  size_t n = strlen(name), v = strlen(value);
  memcpy(out, name, n);
  memcpy(out + n, ": ", 2);
  memcpy(out + n + 2, value, v);
  memcpy(out + n + 2 + v, "\r\n", 2);
  return n + v + 4;
}

static size_t header_size(const char *name, const char *value) {
  return value == NULL ? 0 : strlen(name) + strlen(value) + 4;
}

char *sig_http_format(const sig_http_response_t *r, size_t *len) {
  const char *const preflight[][2] = {
      {"Access-Control-Allow-Methods", "GET, POST, OPTIONS"},
      {"Access-Control-Allow-Headers",
       r->preflight_auth ? "Content-Type, Authorization" : "Content-Type"},
      {"Access-Control-Max-Age", "86400"},
  };
  char length[24] = "", status[48];
  const char *clen = NULL;
  if (r->status >= 200 && r->status != 204) { /* none on 1xx and 204 (RFC 9110 8.6) */
    snprintf(length, sizeof(length), "%zu", r->body_len);
    clen = length;
  }
  snprintf(status, sizeof(status), "HTTP/1.1 %d %s\r\n", r->status, sig_http_reason(r->status));
  /* Every header, in order; the last is Connection. */
  const char *lines[16][2];
  size_t n = 0;
  lines[n][0] = "Access-Control-Allow-Origin", lines[n++][1] = r->cors_origin;
  lines[n][0] = "Vary", lines[n++][1] = r->vary_origin ? "Origin" : NULL;
  lines[n][0] = "Allow", lines[n++][1] = r->allow;
  for (size_t i = 0; i < SIG_ARRAY_SIZE(preflight); i++)
    lines[n][0] = preflight[i][0], lines[n++][1] = r->preflight ? preflight[i][1] : NULL;
  lines[n][0] = "Cache-Control", lines[n++][1] = r->no_cache ? "no-cache" : NULL;
  for (size_t i = 0; i < SIG_ARRAY_SIZE(r->extra); i++)
    lines[n][0] = r->extra[i].name, lines[n++][1] = r->extra[i].name ? r->extra[i].value : NULL;
  lines[n][0] = "Content-Type", lines[n++][1] = r->content_type;
  lines[n][0] = "Content-Length", lines[n++][1] = clen;
  lines[n][0] = "Connection", lines[n++][1] = r->keep_alive ? "keep-alive" : "close";

  size_t body = r->head ? 0 : r->body_len, cap = strlen(status) + 2 + body;
  for (size_t i = 0; i < n; i++) cap += header_size(lines[i][0], lines[i][1]);
  char *out = sig_malloc(cap);
  size_t o = strlen(status);
  memcpy(out, status, o);
  for (size_t i = 0; i < n; i++) o += header(out + o, lines[i][0], lines[i][1]);
  memcpy(out + o, "\r\n", 2);
  o += 2;
  if (body > 0) memcpy(out + o, r->body, body);
  *len = o + body;
  return out;
}

long sig_http_query_param(const char *query, const char *name, char *out, size_t cap) {
  size_t nlen = strlen(name);
  for (const char *p = query; p != NULL && *p != '\0';) {
    const char *end = strchr(p, '&');
    size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
    if (len > nlen && memcmp(p, name, nlen) == 0 && p[nlen] == '=') {
      size_t o = 0;
      for (size_t i = nlen + 1; i < len; i++) {
        int c = (unsigned char)p[i];
        if (c == '%') {
          int hi = i + 2 < len ? sig_hex_value((unsigned char)p[i + 1]) : -1;
          int lo = i + 2 < len ? sig_hex_value((unsigned char)p[i + 2]) : -1;
          if (hi < 0 || lo < 0) return -2;
          c = hi << 4 | lo, i += 2;
        } else if (c == '+') {
          c = ' ';
        }
        if (o + 1 >= cap) return -2;
        out[o++] = (char)c;
      }
      out[o] = '\0';
      return (long)o;
    }
    p = end != NULL ? end + 1 : NULL;
  }
  return -1;
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
