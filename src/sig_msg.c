/* JSON codec for docs/PROTOCOL.md: strict validation with field-path error messages, and encoders
 * that build jansson trees sharing the decoded strings and arrays instead of copying them. */
#include "sig_msg.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sig_util.h"

#define XSTR(x) STR(x)
#define STR(x) #x
#define NAME_CHARS " characters of A-Z a-z 0-9 . _ ~ -"
#define DOMAIN_RULE "must be 1-" XSTR(SIG_MSG_DOMAIN_MAX) NAME_CHARS
#define ID_RULE "must be 1-" XSTR(SIG_MSG_ID_MAX) NAME_CHARS
#define TY_QUOTE_MAX 32

static int name_char(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '~' || c == '-';
}

static int name_valid(const char *s, size_t len, size_t max) {
  if (s == NULL || len == 0 || len > max) return 0;
  for (size_t i = 0; i < len; i++) {
    if (!name_char((unsigned char)s[i])) return 0;
  }
  return 1;
}

int sig_msg_domain_valid(const char *s, size_t len) {
  return name_valid(s, len, SIG_MSG_DOMAIN_MAX);
}

int sig_msg_id_valid(const char *s, size_t len) {
  return name_valid(s, len, SIG_MSG_ID_MAX);
}

static int utf8_valid(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  uint32_t cp;
  for (size_t i = 0, k; i < n; i += k) {
    if ((k = sig_utf8_next(p + i, n - i, &cp)) == 0) return 0;
  }
  return 1;
}

/* Format characters that would hide or reorder text (zero-width, bidi controls, BOM). */
static int invisible(uint32_t cp) {
  return (cp >= 0x200b && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202e) ||
         (cp >= 0x2066 && cp <= 0x2069) || cp == 0xfeff;
}

/* Copies s[0..n) into out for a message read by humans, who must see what was sent without a
 * terminal or log being fooled: printable ASCII and visible UTF-8 from U+00A0 stay, other bytes
 * become \xNN; with quote, ' and \ are escaped too. Past max characters or outsz: "...". */
static void escape_text(char *out, size_t outsz, const char *s, size_t n, size_t max, int quote) {
  const unsigned char *p = (const unsigned char *)s;
  size_t o = 0, chars = 0, i = 0;
  while (i < n) {
    char piece[4 * 4 + 1];
    size_t plen, k;
    uint32_t cp;
    if (chars == max) break;
    k = sig_utf8_next(p + i, n - i, &cp);
    if (k == 0) k = 1, cp = 0x80; /* an invalid byte shows as \xNN like a C1 control */
    if (k == 1 && cp >= 0x20 && cp < 0x7f) {
      if (quote && (cp == '\'' || cp == '\\')) {
        piece[0] = '\\', piece[1] = (char)cp, plen = 2;
      } else {
        piece[0] = (char)cp, plen = 1;
      }
    } else if (cp >= 0xa0 && !invisible(cp)) {
      memcpy(piece, p + i, k), plen = k;
    } else {
      for (size_t j = plen = 0; j < k; j++)
        plen += (size_t)sprintf(piece + plen, "\\x%02x", p[i + j]);
    }
    if (o + plen + 4 > outsz) break; /* keep room for "..." and the NUL */
    memcpy(out + o, piece, plen);
    o += plen, i += k, chars++;
  }
  if (i < n && o + 4 <= outsz) memcpy(out + o, "...", 3), o += 3;
  if (outsz > 0) out[o < outsz ? o : outsz - 1] = '\0';
}

typedef struct {
  char *err;
  size_t errlen;
  const char *path; /* prefix naming the enclosing object: "" or "offer_req." */
} check_t;

__attribute__((format(printf, 2, 3))) static int fail(check_t *c, const char *fmt, ...) {
  if (c->err != NULL && c->errlen > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, c->errlen, fmt, ap);
    va_end(ap);
  }
  return 400;
}

static void jansson_oom(const char *file, int line) {
  fprintf(stderr, "%s:%d: out of memory in jansson\n", file, line);
  abort();
}

static int parse(check_t *c, const char *buf, size_t len, json_t **out) {
  json_error_t je;
  /* DECODE_ANY so that "42" is reported as "not an object" rather than as a syntax error; ALLOW_NUL
   * so that "\u0000" reaches the per-field "must not contain NUL" check. */
  json_t *root = json_loadb(buf != NULL ? buf : "", buf != NULL ? len : 0,
                            JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
  *out = NULL;
  if (root == NULL) {
    char text[4 * JSON_ERROR_TEXT_LENGTH];
    if (json_error_code(&je) == json_error_out_of_memory) jansson_oom(__FILE__, __LINE__);
    escape_text(text, sizeof text, je.text, strlen(je.text), SIZE_MAX, 0);
    return fail(c, "body: invalid JSON: %s at line %d column %d", text, je.line, je.column);
  }
  if (!json_is_object(root)) {
    json_decref(root);
    return fail(c, "body: expected a JSON object");
  }
  *out = root;
  return 0;
}

static int has_nul(json_t *s) {
  return memchr(json_string_value(s), '\0', json_string_length(s)) != NULL;
}

/* Sets *out to the string at key, or to NULL when it is absent and optional. */
static int get_string(check_t *c, json_t *obj, const char *key, int required, json_t **out) {
  json_t *v = json_object_get(obj, key);
  *out = NULL;
  if (v == NULL) return required ? fail(c, "%s%s: required", c->path, key) : 0;
  if (!json_is_string(v)) return fail(c, "%s%s: expected a string", c->path, key);
  if (has_nul(v)) return fail(c, "%s%s: must not contain NUL", c->path, key);
  *out = v;
  return 0;
}

static int get_name(check_t *c, json_t *obj, const char *key, int required, size_t max,
                    const char *rule, const char **out) {
  json_t *v;
  int rc = get_string(c, obj, key, required, &v);
  *out = NULL;
  if (rc != 0 || v == NULL) return rc;
  if (!name_valid(json_string_value(v), json_string_length(v), max))
    return fail(c, "%s%s: %s", c->path, key, rule);
  *out = json_string_value(v);
  return 0;
}

static int get_domain(check_t *c, json_t *obj, const char *key, int required, const char **out) {
  return get_name(c, obj, key, required, SIG_MSG_DOMAIN_MAX, DOMAIN_RULE, out);
}

static int get_id(check_t *c, json_t *obj, const char **out) {
  return get_name(c, obj, "id", 0, SIG_MSG_ID_MAX, ID_RULE, out);
}

static int b64_value(unsigned char ch) {
  if (ch >= 'A' && ch <= 'Z') return ch - 'A';
  if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
  if (ch >= '0' && ch <= '9') return ch - '0' + 52;
  if (ch == '+') return 62;
  if (ch == '/') return 63;
  return -1;
}

enum { SDP_OK, SDP_NOT_BASE64, SDP_NOT_SDP };

/* Validates all of s as padded standard base64 but decodes only the first quantum: "v=" is all we
 * check of the content, and the SDP is relayed as sent. */
static int sdp_check(const char *s, size_t n) {
  size_t pad = 0, ndecoded;
  int v[4];
  if (n == 0) return SDP_NOT_SDP;
  if (n % 4 != 0) return SDP_NOT_BASE64;
  if (s[n - 1] == '=') pad = s[n - 2] == '=' ? 2 : 1;
  for (size_t i = 0; i < n - pad; i++) {
    if (b64_value((unsigned char)s[i]) < 0) return SDP_NOT_BASE64;
  }
  for (int i = 0; i < 4; i++) {
    v[i] = b64_value((unsigned char)s[i]);
    if (v[i] < 0) v[i] = 0; /* padding */
  }
  ndecoded = n > 4 ? 3 : 3 - pad;
  if (ndecoded < 2 || (v[0] << 2 | v[1] >> 4) != 'v' || ((v[1] & 0xf) << 4 | v[2] >> 2) != '=')
    return SDP_NOT_SDP;
  return SDP_OK;
}

static int get_sdp(check_t *c, json_t *obj, const char *key, const char **out, void **json) {
  json_t *v;
  int rc = get_string(c, obj, key, 1, &v);
  if (rc != 0) return rc;
  switch (sdp_check(json_string_value(v), json_string_length(v))) {
    case SDP_NOT_BASE64: return fail(c, "%s%s: not valid base64", c->path, key);
    case SDP_NOT_SDP:
      return fail(c, "%s%s: not an SDP (decoded text must start with \"v=\")", c->path, key);
    default: break;
  }
  *out = json_string_value(v);
  *json = v;
  return 0;
}

static int get_candidates(check_t *c, json_t *obj, sig_msg_t *m) {
  json_t *arr = json_object_get(obj, "candidate"), *e;
  size_t i;
  if (arr == NULL) return fail(c, "%scandidate: required", c->path);
  if (!json_is_array(arr)) return fail(c, "%scandidate: expected an array of strings", c->path);
  json_array_foreach(arr, i, e) {
    if (!json_is_string(e)) return fail(c, "%scandidate[%zu]: expected a string", c->path, i);
    if (has_nul(e)) return fail(c, "%scandidate[%zu]: must not contain NUL", c->path, i);
  }
  m->candidates = arr;
  m->ncandidates = json_array_size(arr);
  return 0;
}

static int get_object(check_t *c, json_t *obj, const char *key, int required, json_t **out) {
  json_t *v = json_object_get(obj, key);
  *out = NULL;
  if (v == NULL) return required ? fail(c, "%s%s: required", c->path, key) : 0;
  if (!json_is_object(v)) return fail(c, "%s%s: expected an object", c->path, key);
  *out = v;
  return 0;
}

static int decode_offer_req(check_t *c, json_t *req, int offer_domain_required, sig_msg_t *m) {
  int rc;
  if ((rc = get_sdp(c, req, "offer_sdp", &m->offer_sdp, &m->sdp)) != 0 ||
      (rc = get_candidates(c, req, m)) != 0 ||
      (rc = get_domain(c, req, "answer_domain", 1, &m->answer_domain)) != 0 ||
      (rc = get_domain(c, req, "offer_domain", offer_domain_required, &m->offer_domain)) != 0)
    return rc;
  m->type = SIG_MSG_OFFER;
  return 0;
}

static int check_domains_differ(check_t *c, const sig_msg_t *m) {
  if (m->offer_domain != NULL && strcmp(m->answer_domain, m->offer_domain) == 0)
    return fail(c, "%sanswer_domain: must differ from %soffer_domain", c->path, c->path);
  return 0;
}

int sig_msg_decode_offer_body(sig_msg_t *m, const char *buf, size_t len, char *err, size_t errlen) {
  check_t c = {err, errlen, ""};
  json_t *root;
  int rc;
  memset(m, 0, sizeof *m);
  if ((rc = parse(&c, buf, len, &root)) != 0) return rc;
  if ((rc = decode_offer_req(&c, root, 1, m)) != 0 || (rc = get_id(&c, root, &m->id)) != 0 ||
      (rc = check_domains_differ(&c, m)) != 0) {
    json_decref(root);
    memset(m, 0, sizeof *m);
    return rc;
  }
  m->doc = root;
  return 0;
}

static int decode_offer_frame(check_t *c, json_t *root, sig_msg_t *m) {
  json_t *req;
  int rc;
  if ((rc = get_object(c, root, "offer_req", 1, &req)) != 0) return rc;
  c->path = "offer_req.";
  if ((rc = decode_offer_req(c, req, 0, m)) != 0) return rc;
  if ((rc = check_domains_differ(c, m)) != 0) return rc;
  c->path = "";
  return get_id(c, root, &m->id);
}

static int decode_answer_frame(check_t *c, json_t *root, sig_msg_t *m) {
  json_t *resp, *req;
  int rc;
  if ((rc = get_object(c, root, "answer_resp", 1, &resp)) != 0) return rc;
  c->path = "answer_resp.";
  if ((rc = get_sdp(c, resp, "answer_sdp", &m->answer_sdp, &m->sdp)) != 0 ||
      (rc = get_candidates(c, resp, m)) != 0 ||
      (rc = get_domain(c, resp, "answer_domain", 0, &m->answer_domain)) != 0)
    return rc;
  c->path = "";
  if ((rc = get_object(c, root, "offer_req", 0, &req)) != 0) return rc;
  if (req != NULL) {
    c->path = "offer_req.";
    if ((rc = get_domain(c, req, "offer_domain", 0, &m->echo_offer_domain)) != 0) return rc;
    c->path = "";
  }
  return get_id(c, root, &m->id);
}

static int decode_candidate_frame(check_t *c, json_t *root, sig_msg_t *m) {
  int rc;
  if ((rc = get_domain(c, root, "to", 1, &m->to)) != 0 || (rc = get_candidates(c, root, m)) != 0)
    return rc;
  return get_id(c, root, &m->id);
}

static int decode_bye_frame(check_t *c, json_t *root, sig_msg_t *m) {
  int rc;
  if ((rc = get_domain(c, root, "to", 1, &m->to)) != 0) return rc;
  return get_id(c, root, &m->id);
}

static const struct {
  const char *name;
  sig_msg_type_t type;
  int (*decode)(check_t *c, json_t *root, sig_msg_t *m);
} frame_types[] = {
    {"offer", SIG_MSG_OFFER, decode_offer_frame},
    {"answer", SIG_MSG_ANSWER, decode_answer_frame},
    {"candidate", SIG_MSG_CANDIDATE, decode_candidate_frame},
    {"bye", SIG_MSG_BYE, decode_bye_frame},
};

static int decode_typed(check_t *c, json_t *root, sig_msg_t *m) {
  json_t *ty;
  int rc;
  char quoted[12 * TY_QUOTE_MAX + 8]; /* 3-byte format characters become 12 */
  if ((rc = get_string(c, root, "ty", 1, &ty)) != 0) return rc;
  for (size_t i = 0; i < SIG_ARRAY_SIZE(frame_types); i++) {
    if (strcmp(json_string_value(ty), frame_types[i].name) == 0) {
      if ((rc = frame_types[i].decode(c, root, m)) != 0) return rc;
      m->type = frame_types[i].type;
      return 0;
    }
  }
  escape_text(quoted, sizeof quoted, json_string_value(ty), json_string_length(ty), TY_QUOTE_MAX,
              1);
  return fail(c, "ty: unknown message type '%s'", quoted);
}

int sig_msg_decode_frame(sig_msg_t *m, const char *buf, size_t len, char *err, size_t errlen) {
  check_t c = {err, errlen, ""};
  json_t *root, *id;
  const char *echo_id = NULL;
  int rc;
  memset(m, 0, sizeof *m);
  if ((rc = parse(&c, buf, len, &root)) != 0) return rc;
  if ((rc = decode_typed(&c, root, m)) == 0) {
    m->doc = root;
    return 0;
  }
  /* The id is judged apart from the failed checks so that the error frame can still name it. */
  id = json_object_get(root, "id");
  if (json_is_string(id) && sig_msg_id_valid(json_string_value(id), json_string_length(id)))
    echo_id = json_string_value(id);
  memset(m, 0, sizeof *m);
  if (echo_id != NULL) {
    m->doc = root;
    m->id = echo_id;
  } else {
    json_decref(root);
  }
  return rc;
}

void sig_msg_free(sig_msg_t *m) {
  if (m == NULL) return;
  json_decref((json_t *)m->doc);
  memset(m, 0, sizeof *m);
}

#define must(j) must_at((j), __FILE__, __LINE__)

/* Every jansson constructor here gets valid arguments, so NULL can only mean out of memory. */
static json_t *must_at(json_t *j, const char *file, int line) {
  if (j == NULL) jansson_oom(file, line);
  return j;
}

/* Takes ownership of val. */
static void put(json_t *obj, const char *key, json_t *val) {
  if (json_object_set_new_nocheck(obj, key, must(val)) != 0) jansson_oom(__FILE__, __LINE__);
}

/* A string from any bytes (NULL gives null): invalid UTF-8 is replaced rather than refused, since
 * messages quote what peers sent. */
static json_t *text(const char *s) {
  size_t n, o = 0;
  char *fixed;
  json_t *j;
  if (s == NULL) return must(json_null());
  n = strlen(s);
  if (utf8_valid(s, n)) return must(json_stringn_nocheck(s, n));
  fixed = sig_malloc(3 * n + 1);
  for (size_t i = 0, k; i < n; i += k) {
    uint32_t cp;
    if ((k = sig_utf8_next((const unsigned char *)s + i, n - i, &cp)) == 0) {
      memcpy(fixed + o, "\xef\xbf\xbd", 3), o += 3, k = 1;
    } else {
      memcpy(fixed + o, s + i, k), o += k;
    }
  }
  j = must(json_stringn_nocheck(fixed, o));
  free(fixed);
  return j;
}

/* The decoded SDP string shared with the new tree, or a copy of str for a hand-built message. */
static json_t *shared_sdp(void *sdp, const char *str) {
  return sdp != NULL ? json_incref((json_t *)sdp) : text(str != NULL ? str : "");
}

static json_t *shared_candidates(const sig_msg_t *m) {
  return m->candidates != NULL ? json_incref((json_t *)m->candidates) : must(json_array());
}

static json_t *frame(const char *ty, const char *id) {
  json_t *root = must(json_object());
  put(root, "ty", must(json_string_nocheck(ty)));
  put(root, "id", text(id));
  return root;
}

static json_t *empty_offer_req(const char *answer_domain, const char *offer_domain) {
  json_t *req = must(json_object());
  put(req, "offer_sdp", must(json_string_nocheck("")));
  put(req, "candidate", must(json_array()));
  put(req, "answer_domain", text(answer_domain));
  put(req, "offer_domain", text(offer_domain));
  return req;
}

static json_t *empty_answer_resp(const char *answer_domain) {
  json_t *resp = must(json_object());
  put(resp, "answer_sdp", must(json_string_nocheck("")));
  put(resp, "candidate", must(json_array()));
  put(resp, "answer_domain", text(answer_domain));
  return resp;
}

/* A first guess at the output size so that dumping usually needs a single allocation. */
static size_t size_hint(const sig_msg_t *m) {
  size_t n = 256;
  json_t *e;
  size_t i;
  if (m->sdp != NULL) n += json_string_length((json_t *)m->sdp);
  if (m->candidates != NULL) {
    json_array_foreach((json_t *)m->candidates, i, e) n += json_string_length(e) + 8;
  }
  return n;
}

typedef struct {
  char *buf;
  size_t len, cap;
} out_t;

static void out_reserve(out_t *o, size_t more) {
  if (o->len + more <= o->cap) return;
  while (o->len + more > o->cap) o->cap *= 2;
  o->buf = sig_realloc(o->buf, o->cap);
}

static int on_dump(const char *buffer, size_t size, void *data) {
  out_t *o = data;
  out_reserve(o, size);
  memcpy(o->buf + o->len, buffer, size);
  o->len += size;
  return 0;
}

/* Takes ownership of root. */
static char *dump(json_t *root, size_t hint, size_t *len) {
  out_t o = {sig_malloc(hint), 0, hint};
  if (json_dump_callback(root, on_dump, &o, JSON_COMPACT | JSON_PRESERVE_ORDER) != 0)
    jansson_oom(__FILE__, __LINE__);
  json_decref(root);
  out_reserve(&o, 1);
  o.buf[o.len] = '\0';
  if (len != NULL) *len = o.len;
  return o.buf;
}

char *sig_msg_encode_offer_push(const sig_msg_t *offer, const char *id, const char *offer_domain,
                                size_t *len) {
  json_t *root = frame("offer", id), *req = must(json_object());
  put(req, "offer_sdp", shared_sdp(offer->sdp, offer->offer_sdp));
  put(req, "candidate", shared_candidates(offer));
  put(req, "answer_domain", text(offer->answer_domain));
  put(req, "offer_domain", text(offer_domain != NULL ? offer_domain : offer->offer_domain));
  put(root, "offer_req", req);
  put(root, "answer_resp", empty_answer_resp(offer->answer_domain));
  return dump(root, size_hint(offer), len);
}

char *sig_msg_encode_answer_push(const sig_msg_t *answer, const char *id, const char *answer_domain,
                                 const char *offer_domain, size_t *len) {
  json_t *root = frame("answer", id), *resp = must(json_object());
  put(resp, "answer_sdp", shared_sdp(answer->sdp, answer->answer_sdp));
  put(resp, "candidate", shared_candidates(answer));
  put(resp, "answer_domain", text(answer_domain));
  put(root, "answer_resp", resp);
  put(root, "offer_req", empty_offer_req(answer_domain, offer_domain));
  return dump(root, size_hint(answer), len);
}

char *sig_msg_encode_candidate(const sig_msg_t *cand, const char *id, const char *from,
                               size_t *len) {
  json_t *root = frame("candidate", id);
  put(root, "from", text(from));
  put(root, "candidate", shared_candidates(cand));
  return dump(root, size_hint(cand), len);
}

char *sig_msg_encode_bye(const char *id, const char *from, const char *reason, size_t *len) {
  json_t *root = frame("bye", id);
  put(root, "from", text(from));
  put(root, "reason", text(reason));
  return dump(root, 128, len);
}

char *sig_msg_encode_error(int status, const char *msg, const char *id, size_t *len) {
  json_t *root = must(json_object());
  put(root, "ty", must(json_string_nocheck("error")));
  put(root, "status", must(json_integer(status)));
  put(root, "msg", text(msg));
  put(root, "id", text(id));
  return dump(root, 256, len);
}

static json_t *resp(int code, const char *msg, json_t *data) {
  json_t *root = must(json_object());
  put(root, "code", must(json_integer(code)));
  put(root, "msg", text(msg));
  put(root, "data", data);
  return root;
}

char *sig_msg_encode_resp_id(const char *id, size_t *len) {
  json_t *data = must(json_object());
  put(data, "id", text(id));
  return dump(resp(0, "ok", data), 128, len);
}

char *sig_msg_encode_resp_error(const char *msg, size_t *len) {
  return dump(resp(-1, msg, must(json_null())), 256, len);
}

static json_t *count(uint64_t n) {
  return must(json_integer(n > INT64_MAX ? INT64_MAX : (json_int_t)n));
}

char *sig_msg_encode_resp_health(uint64_t connections, uint64_t domains, uint64_t exchanges,
                                 size_t *len) {
  json_t *data = must(json_object());
  put(data, "connections", count(connections));
  put(data, "domains", count(domains));
  put(data, "exchanges", count(exchanges));
  return dump(resp(0, "ok", data), 128, len);
}
