/* The protocol's codec (docs/PROTOCOL.md) on the generic JSON scanner (sig_json): a schema names
 * the protocol's fields, the checks then run on what the scan recorded, and only the strings the
 * server reads are copied out, into one allocation. The encoders write each frame into one buffer
 * sized up front, copying the client's SDP and candidate texts verbatim. A message type is one row
 * of frame_types with its decoder. */
#include "sig_msg.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sig_json.h"
#include "sig_text.h"
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

/* The protocol's fields. Each is recorded at the top level and one level down in offer_req and
 * answer_resp, under the same names, so that a check can name exactly what is missing where; only
 * the top level's offer_req and answer_resp are looked into. */
#define FIELDS(X)                              \
  X(TY, "ty", NULL)                            \
  X(ID, "id", NULL)                            \
  X(TO, "to", NULL)                            \
  X(CANDIDATE, "candidate", NULL)              \
  X(OFFER_SDP, "offer_sdp", NULL)              \
  X(ANSWER_SDP, "answer_sdp", NULL)            \
  X(ANSWER_DOMAIN, "answer_domain", NULL)      \
  X(OFFER_DOMAIN, "offer_domain", NULL)        \
  X(OFFER_REQ, "offer_req", &offer_req_schema) \
  X(ANSWER_RESP, "answer_resp", &answer_resp_schema)

#define AS_ENUM(id, name, object) F_##id,
enum { FIELDS(AS_ENUM) F_COUNT };
#define AS_NAME(id, name, object) name,
static const char *const field_names[F_COUNT] = {FIELDS(AS_NAME)};

/* Where each level's fields go among the scan's slots: slot = level + field. */
enum { R_TOP = 0, R_OFFER_REQ = F_COUNT, R_ANSWER_RESP = 2 * F_COUNT, NSLOTS = 3 * F_COUNT };

#define IN_OFFER_REQ(id, name, object) {name, R_OFFER_REQ + F_##id, NULL},
#define IN_ANSWER_RESP(id, name, object) {name, R_ANSWER_RESP + F_##id, NULL},
#define AT_TOP(id, name, object) {name, R_TOP + F_##id, object},
static const sig_json_member_t offer_req_fields[] = {FIELDS(IN_OFFER_REQ)};
static const sig_json_member_t answer_resp_fields[] = {FIELDS(IN_ANSWER_RESP)};
static const sig_json_schema_t offer_req_schema = {offer_req_fields, F_COUNT};
static const sig_json_schema_t answer_resp_schema = {answer_resp_fields, F_COUNT};
static const sig_json_member_t top_fields[] = {FIELDS(AT_TOP)};
static const sig_json_schema_t schema = {top_fields, F_COUNT};

/* The checks run on the recorded fields once the text is known to be JSON, in the order that
 * docs/PROTOCOL.md gives, and stop at the first problem. A check reads level + field. */
typedef struct {
  sig_json_val_t v[NSLOTS];
  struct {
    const char *s; /* a string's value or an array's compacted text, in the arena; else NULL */
    size_t len;
  } copy[NSLOTS];
} doc_t;

typedef struct {
  doc_t *doc;
  char *err;
  size_t errlen;
  const char *path; /* prefix naming the enclosing object: "" or "offer_req." */
  char *arena;      /* the decoded strings, allocated after the scan */
  size_t used;
} check_t;

__attribute__((format(printf, 2, 3))) static int refuse(check_t *c, const char *fmt, ...) {
  if (c->err != NULL && c->errlen > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, c->errlen, fmt, ap);
    va_end(ap);
  }
  return SIG_EBADMSG;
}

/* The string's value at slot, copied into the arena on first use. */
static const char *decoded(check_t *c, int slot) {
  if (c->doc->copy[slot].s == NULL) {
    char *o = c->arena + c->used;
    size_t n = sig_json_string_value(&c->doc->v[slot], o);
    o[n] = '\0';
    c->used += n + 1;
    c->doc->copy[slot].s = o, c->doc->copy[slot].len = n;
  }
  return c->doc->copy[slot].s;
}

/* A candidate array's text without the whitespace between its elements, in the arena. */
static void compact(check_t *c, int slot) {
  char *o = c->arena + c->used;
  size_t n = sig_json_compact(&c->doc->v[slot], o);
  c->used += n;
  c->doc->copy[slot].s = o, c->doc->copy[slot].len = n;
}

/* Sizes the arena for every string the checks may copy out and every array they may compact. */
static size_t arena_size(const doc_t *doc) {
  size_t n = 0;
  for (int i = 0; i < NSLOTS; i++) {
    const sig_json_val_t *v = &doc->v[i];
    if (v->kind == SIG_JSON_STRING) n += (size_t)(v->end - v->start) - 1;
    if (v->kind == SIG_JSON_ARRAY && v->spaced) n += (size_t)(v->end - v->start);
  }
  return n;
}

static int parse(check_t *c, const char *buf, size_t len) {
  char what[SIG_MSG_ERR_MAX];
  sig_json_val_t root;
  size_t size;
  if (sig_json_scan(buf, len, &schema, c->doc->v, &root, what, sizeof what) != 0)
    return refuse(c, "body: invalid JSON: %s", what);
  if (root.kind != SIG_JSON_OBJECT) return refuse(c, "body: expected a JSON object");
  if ((size = arena_size(c->doc)) > 0) c->arena = sig_malloc(size);
  return 0;
}

static int get_string(check_t *c, int slot, int required) {
  const sig_json_val_t *v = &c->doc->v[slot];
  const char *key = field_names[slot % F_COUNT];
  if (v->kind == SIG_JSON_NONE) return required ? refuse(c, "%s%s: required", c->path, key) : 0;
  if (v->kind != SIG_JSON_STRING) return refuse(c, "%s%s: expected a string", c->path, key);
  if (v->nul) return refuse(c, "%s%s: must not contain NUL", c->path, key);
  return 0;
}

static int get_name(check_t *c, int slot, int required, size_t max, const char *rule,
                    const char **out) {
  int rc = get_string(c, slot, required);
  *out = NULL;
  if (rc != 0 || c->doc->v[slot].kind == SIG_JSON_NONE) return rc;
  decoded(c, slot);
  if (!name_valid(c->doc->copy[slot].s, c->doc->copy[slot].len, max))
    return refuse(c, "%s%s: %s", c->path, field_names[slot % F_COUNT], rule);
  *out = c->doc->copy[slot].s;
  return 0;
}

static int get_domain(check_t *c, int slot, int required, const char **out) {
  return get_name(c, slot, required, SIG_MSG_DOMAIN_MAX, DOMAIN_RULE, out);
}

static int get_id(check_t *c, const char **out) {
  return get_name(c, R_TOP + F_ID, 0, SIG_MSG_ID_MAX, ID_RULE, out);
}

enum { SDP_OK, SDP_NOT_BASE64, SDP_NOT_SDP };

/* Validates all of s as padded standard base64 (chars_ok: the scanner already saw that its
 * characters are base64 up to at most two '=') but decodes only the first quantum: "v=" is all we
 * check of the content, and the SDP is relayed as sent. */
static int sdp_check(const char *s, size_t n, int chars_ok) {
  size_t pad = 0, ndecoded;
  int v[4];
  if (n == 0) return SDP_NOT_SDP;
  if (n % 4 != 0) return SDP_NOT_BASE64;
  if (s[n - 1] == '=') pad = s[n - 2] == '=' ? 2 : 1;
  if (!chars_ok) {
    const unsigned char *p = (const unsigned char *)s;
    if (sig_text_skip(p, p + n - pad, SIG_CLASS_BASE64) != p + n - pad) return SDP_NOT_BASE64;
  }
  for (int i = 0; i < 4; i++) {
    v[i] = sig_base64_value((unsigned char)s[i]);
    if (v[i] < 0) v[i] = 0; /* padding */
  }
  ndecoded = n > 4 ? 3 : 3 - pad;
  if (ndecoded < 2 || (v[0] << 2 | v[1] >> 4) != 'v' || ((v[1] & 0xf) << 4 | v[2] >> 2) != '=')
    return SDP_NOT_SDP;
  return SDP_OK;
}

static int get_sdp(check_t *c, int slot, const char **out, sig_msg_t *m) {
  const sig_json_val_t *v = &c->doc->v[slot];
  int rc = get_string(c, slot, 1);
  if (rc != 0) return rc;
  decoded(c, slot);
  switch (sdp_check(c->doc->copy[slot].s, c->doc->copy[slot].len, v->base64)) {
    case SDP_NOT_BASE64:
      return refuse(c, "%s%s: not valid base64", c->path, field_names[slot % F_COUNT]);
    case SDP_NOT_SDP:
      return refuse(c, "%s%s: not an SDP (decoded text must start with \"v=\")", c->path,
                    field_names[slot % F_COUNT]);
    default: break;
  }
  *out = c->doc->copy[slot].s;
  m->sdp_raw = v->start;
  m->sdp_raw_len = (size_t)(v->end - v->start);
  return 0;
}

static int get_candidates(check_t *c, int level, sig_msg_t *m) {
  int slot = level + F_CANDIDATE;
  const sig_json_val_t *v = &c->doc->v[slot];
  if (v->kind == SIG_JSON_NONE) return refuse(c, "%scandidate: required", c->path);
  if (v->kind != SIG_JSON_ARRAY)
    return refuse(c, "%scandidate: expected an array of strings", c->path);
  if (v->bad != SIZE_MAX) {
    if (v->bad_nul) return refuse(c, "%scandidate[%zu]: must not contain NUL", c->path, v->bad);
    return refuse(c, "%scandidate[%zu]: expected a string", c->path, v->bad);
  }
  if (v->spaced) {
    compact(c, slot);
    m->cand_raw = c->doc->copy[slot].s, m->cand_raw_len = c->doc->copy[slot].len;
  } else {
    m->cand_raw = v->start, m->cand_raw_len = (size_t)(v->end - v->start);
  }
  m->ncandidates = v->count;
  return 0;
}

static int get_object(check_t *c, int slot, int required) {
  const sig_json_val_t *v = &c->doc->v[slot];
  const char *key = field_names[slot % F_COUNT];
  if (v->kind == SIG_JSON_NONE) return required ? refuse(c, "%s%s: required", c->path, key) : 0;
  if (v->kind != SIG_JSON_OBJECT) return refuse(c, "%s%s: expected an object", c->path, key);
  return 0;
}

static int decode_offer_req(check_t *c, int level, int offer_domain_required, sig_msg_t *m) {
  int rc;
  if ((rc = get_sdp(c, level + F_OFFER_SDP, &m->offer_sdp, m)) != 0 ||
      (rc = get_candidates(c, level, m)) != 0 ||
      (rc = get_domain(c, level + F_ANSWER_DOMAIN, 1, &m->answer_domain)) != 0 ||
      (rc = get_domain(c, level + F_OFFER_DOMAIN, offer_domain_required, &m->offer_domain)) != 0)
    return rc;
  m->type = SIG_MSG_OFFER;
  return 0;
}

static int check_domains_differ(check_t *c, const sig_msg_t *m) {
  if (m->offer_domain != NULL && strcmp(m->answer_domain, m->offer_domain) == 0)
    return refuse(c, "%sanswer_domain: must differ from %soffer_domain", c->path, c->path);
  return 0;
}

int sig_msg_decode_offer_body(sig_msg_t *m, const char *buf, size_t len, char *err, size_t errlen) {
  doc_t doc;
  check_t c = {&doc, err, errlen, "", NULL, 0};
  int rc;
  memset(m, 0, sizeof *m);
  memset(&doc, 0, sizeof doc);
  if ((rc = parse(&c, buf, len)) != 0) return rc;
  if ((rc = decode_offer_req(&c, R_TOP, 1, m)) != 0 || (rc = get_id(&c, &m->id)) != 0 ||
      (rc = check_domains_differ(&c, m)) != 0) {
    free(c.arena);
    memset(m, 0, sizeof *m);
    return rc;
  }
  m->arena = c.arena;
  return 0;
}

static int decode_offer_frame(check_t *c, sig_msg_t *m) {
  int rc;
  if ((rc = get_object(c, R_TOP + F_OFFER_REQ, 1)) != 0) return rc;
  c->path = "offer_req.";
  if ((rc = decode_offer_req(c, R_OFFER_REQ, 0, m)) != 0) return rc;
  if ((rc = check_domains_differ(c, m)) != 0) return rc;
  c->path = "";
  return get_id(c, &m->id);
}

static int decode_answer_frame(check_t *c, sig_msg_t *m) {
  int rc;
  if ((rc = get_object(c, R_TOP + F_ANSWER_RESP, 1)) != 0) return rc;
  c->path = "answer_resp.";
  if ((rc = get_sdp(c, R_ANSWER_RESP + F_ANSWER_SDP, &m->answer_sdp, m)) != 0 ||
      (rc = get_candidates(c, R_ANSWER_RESP, m)) != 0 ||
      (rc = get_domain(c, R_ANSWER_RESP + F_ANSWER_DOMAIN, 0, &m->answer_domain)) != 0)
    return rc;
  c->path = "";
  if ((rc = get_object(c, R_TOP + F_OFFER_REQ, 0)) != 0) return rc;
  if (c->doc->v[R_TOP + F_OFFER_REQ].kind == SIG_JSON_OBJECT) {
    c->path = "offer_req.";
    if ((rc = get_domain(c, R_OFFER_REQ + F_OFFER_DOMAIN, 0, &m->echo_offer_domain)) != 0)
      return rc;
    c->path = "";
  }
  return get_id(c, &m->id);
}

static int decode_candidate_frame(check_t *c, sig_msg_t *m) {
  int rc;
  if ((rc = get_domain(c, R_TOP + F_TO, 1, &m->to)) != 0 || (rc = get_candidates(c, R_TOP, m)) != 0)
    return rc;
  return get_id(c, &m->id);
}

static int decode_bye_frame(check_t *c, sig_msg_t *m) {
  int rc;
  if ((rc = get_domain(c, R_TOP + F_TO, 1, &m->to)) != 0) return rc;
  return get_id(c, &m->id);
}

/* The message types a client may send: "ty" and how the rest is checked. */
static const struct {
  const char *name;
  sig_msg_type_t type;
  int (*decode)(check_t *c, sig_msg_t *m);
} frame_types[] = {
    {"offer", SIG_MSG_OFFER, decode_offer_frame},
    {"answer", SIG_MSG_ANSWER, decode_answer_frame},
    {"candidate", SIG_MSG_CANDIDATE, decode_candidate_frame},
    {"bye", SIG_MSG_BYE, decode_bye_frame},
};

static int decode_typed(check_t *c, sig_msg_t *m) {
  int rc, slot = R_TOP + F_TY;
  char quoted[12 * TY_QUOTE_MAX + 8]; /* 3-byte format characters become 12 */
  if ((rc = get_string(c, slot, 1)) != 0) return rc;
  decoded(c, slot);
  for (size_t i = 0; i < SIG_ARRAY_SIZE(frame_types); i++) {
    if (strcmp(c->doc->copy[slot].s, frame_types[i].name) == 0) {
      if ((rc = frame_types[i].decode(c, m)) != 0) return rc;
      m->type = frame_types[i].type;
      return 0;
    }
  }
  sig_text_escape(quoted, sizeof quoted, c->doc->copy[slot].s, c->doc->copy[slot].len, TY_QUOTE_MAX,
                  '\'');
  return refuse(c, "ty: unknown message type '%s'", quoted);
}

int sig_msg_decode_frame(sig_msg_t *m, const char *buf, size_t len, char *err, size_t errlen) {
  doc_t doc;
  check_t c = {&doc, err, errlen, "", NULL, 0};
  int rc, id = R_TOP + F_ID;
  memset(m, 0, sizeof *m);
  memset(&doc, 0, sizeof doc);
  if ((rc = parse(&c, buf, len)) != 0) return rc;
  if ((rc = decode_typed(&c, m)) == 0) {
    m->arena = c.arena;
    return 0;
  }
  /* The id is judged apart from the failed checks so that the error frame can still name it. */
  memset(m, 0, sizeof *m);
  if (doc.v[id].kind == SIG_JSON_STRING && !doc.v[id].nul) decoded(&c, id);
  if (doc.copy[id].s != NULL && sig_msg_id_valid(doc.copy[id].s, doc.copy[id].len)) {
    m->arena = c.arena;
    m->id = doc.copy[id].s;
  } else {
    free(c.arena);
  }
  return rc;
}

void sig_msg_free(sig_msg_t *m) {
  if (m == NULL) return;
  free(m->arena);
  memset(m, 0, sizeof *m);
}

/* A piece of a frame: n bytes of JSON text at s, or (n == TEXT) the string s to write as JSON. */
typedef struct {
  const char *s;
  size_t n;
} piece_t;
#define TEXT SIZE_MAX
#define LIT(lit) \
  { lit, sizeof(lit) - 1 }
#define STRING(s) \
  { s, TEXT }

/* The frame made of n pieces, in one allocation sized up front. */
static char *assemble(const piece_t *pc, size_t n, size_t *len) {
  size_t size = 1;
  char *out, *o;
  for (size_t i = 0; i < n; i++)
    size += pc[i].n == TEXT ? sig_json_write_string(NULL, pc[i].s) : pc[i].n;
  o = out = sig_malloc(size);
  for (size_t i = 0; i < n; i++) {
    if (pc[i].n == TEXT) {
      o += sig_json_write_string(o, pc[i].s);
    } else {
      memcpy(o, pc[i].s, pc[i].n);
      o += pc[i].n;
    }
  }
  *o = '\0';
  if (len != NULL) *len = (size_t)(o - out);
  return out;
}

/* The client's SDP text, or the string of a hand-filled message. */
static piece_t sdp_piece(const sig_msg_t *m, const char *str) {
  if (m->sdp_raw != NULL) return (piece_t){m->sdp_raw, m->sdp_raw_len};
  return (piece_t){str != NULL ? str : "", TEXT};
}

static piece_t candidates_piece(const sig_msg_t *m) {
  if (m->cand_raw != NULL) return (piece_t){m->cand_raw, m->cand_raw_len};
  return (piece_t)LIT("[]");
}

char *sig_msg_encode_offer_push(const sig_msg_t *offer, const char *id, const char *offer_domain,
                                size_t *len) {
  const piece_t pc[] = {
      LIT("{\"ty\":\"offer\",\"id\":"),
      STRING(id),
      LIT(",\"offer_req\":{\"offer_sdp\":"),
      sdp_piece(offer, offer->offer_sdp),
      LIT(",\"candidate\":"),
      candidates_piece(offer),
      LIT(",\"answer_domain\":"),
      STRING(offer->answer_domain),
      LIT(",\"offer_domain\":"),
      STRING(offer_domain != NULL ? offer_domain : offer->offer_domain),
      LIT("},\"answer_resp\":{\"answer_sdp\":\"\",\"candidate\":[],\"answer_domain\":"),
      STRING(offer->answer_domain),
      LIT("}}"),
  };
  return assemble(pc, SIG_ARRAY_SIZE(pc), len);
}

char *sig_msg_encode_answer_push(const sig_msg_t *answer, const char *id, const char *answer_domain,
                                 const char *offer_domain, size_t *len) {
  const piece_t pc[] = {
      LIT("{\"ty\":\"answer\",\"id\":"),
      STRING(id),
      LIT(",\"answer_resp\":{\"answer_sdp\":"),
      sdp_piece(answer, answer->answer_sdp),
      LIT(",\"candidate\":"),
      candidates_piece(answer),
      LIT(",\"answer_domain\":"),
      STRING(answer_domain),
      LIT("},\"offer_req\":{\"offer_sdp\":\"\",\"candidate\":[],\"answer_domain\":"),
      STRING(answer_domain),
      LIT(",\"offer_domain\":"),
      STRING(offer_domain),
      LIT("}}"),
  };
  return assemble(pc, SIG_ARRAY_SIZE(pc), len);
}

char *sig_msg_encode_candidate(const sig_msg_t *cand, const char *id, const char *from,
                               size_t *len) {
  const piece_t pc[] = {
      LIT("{\"ty\":\"candidate\",\"id\":"),
      STRING(id),
      LIT(",\"from\":"),
      STRING(from),
      LIT(",\"candidate\":"),
      candidates_piece(cand),
      LIT("}"),
  };
  return assemble(pc, SIG_ARRAY_SIZE(pc), len);
}

char *sig_msg_encode_bye(const char *id, const char *from, const char *reason, size_t *len) {
  const piece_t pc[] = {
      LIT("{\"ty\":\"bye\",\"id\":"),
      STRING(id),
      LIT(",\"from\":"),
      STRING(from),
      LIT(",\"reason\":"),
      STRING(reason),
      LIT("}"),
  };
  return assemble(pc, SIG_ARRAY_SIZE(pc), len);
}

char *sig_msg_encode_error(int status, const char *msg, const char *id, size_t *len) {
  char num[16];
  int n = snprintf(num, sizeof num, "%d", status);
  const piece_t pc[] = {
      LIT("{\"ty\":\"error\",\"status\":"),
      {num, (size_t)n},
      LIT(",\"msg\":"),
      STRING(msg),
      LIT(",\"id\":"),
      STRING(id),
      LIT("}"),
  };
  return assemble(pc, SIG_ARRAY_SIZE(pc), len);
}

char *sig_msg_encode_resp_id(const char *id, size_t *len) {
  const piece_t pc[] = {LIT("{\"code\":0,\"msg\":\"ok\",\"data\":{\"id\":"), STRING(id), LIT("}}")};
  return assemble(pc, SIG_ARRAY_SIZE(pc), len);
}

char *sig_msg_encode_resp_error(const char *msg, size_t *len) {
  const piece_t pc[] = {LIT("{\"code\":-1,\"msg\":"), STRING(msg), LIT(",\"data\":null}")};
  return assemble(pc, SIG_ARRAY_SIZE(pc), len);
}

char *sig_msg_encode_resp_health(uint64_t connections, uint64_t domains, uint64_t exchanges,
                                 size_t *len) {
  char num[3][24];
  const uint64_t v[3] = {connections, domains, exchanges};
  size_t n[3];
  for (int i = 0; i < 3; i++)
    n[i] = (size_t)snprintf(num[i], sizeof num[i], "%" PRIu64, v[i] > INT64_MAX ? INT64_MAX : v[i]);
  const piece_t pc[] = {
      LIT("{\"code\":0,\"msg\":\"ok\",\"data\":{\"connections\":"),
      {num[0], n[0]},
      LIT(",\"domains\":"),
      {num[1], n[1]},
      LIT(",\"exchanges\":"),
      {num[2], n[2]},
      LIT("}}"),
  };
  return assemble(pc, SIG_ARRAY_SIZE(pc), len);
}
