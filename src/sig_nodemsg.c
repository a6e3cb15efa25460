/* Node messages: a schema for sig_json and a table of which fields each operation must carry. */
#include "sig_nodemsg.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sig_json.h"
#include "sig_util.h"

enum { F_OP, F_N, F_RID, F_DL, F_X, F_A, F_B, F_TO, F_REG, F_ST, F_M, F_F, F_COUNT };

static const sig_json_member_t members[] = {
    {"op", F_OP, NULL},   {"n", F_N, NULL},   {"rid", F_RID, NULL}, {"dl", F_DL, NULL},
    {"x", F_X, NULL},     {"a", F_A, NULL},   {"b", F_B, NULL},     {"to", F_TO, NULL},
    {"reg", F_REG, NULL}, {"st", F_ST, NULL}, {"m", F_M, NULL},     {"f", F_F, NULL},
};
static const sig_json_schema_t schema = {members, F_COUNT};

#define BIT(f) (1u << (f))
/* Required fields per operation; f is optional for END only. */
static const struct {
  const char *name;
  unsigned need;
} ops[SIG_NODE_COUNT] = {
    [SIG_NODE_RE] = {"re", BIT(F_N) | BIT(F_RID) | BIT(F_ST) | BIT(F_M) | BIT(F_X)},
    [SIG_NODE_FWD] = {"fwd", BIT(F_N) | BIT(F_RID) | BIT(F_DL) | BIT(F_F)},
    [SIG_NODE_OFFER] = {"offer", BIT(F_N) | BIT(F_RID) | BIT(F_DL) | BIT(F_X) | BIT(F_A) |
                                     BIT(F_B) | BIT(F_F)},
    [SIG_NODE_ANS] = {"ans", BIT(F_N) | BIT(F_X) | BIT(F_A) | BIT(F_B) | BIT(F_F)},
    [SIG_NODE_REL] = {"rel", BIT(F_N) | BIT(F_X) | BIT(F_TO) | BIT(F_F)},
    [SIG_NODE_END] = {"end", BIT(F_N) | BIT(F_X) | BIT(F_TO)},
    [SIG_NODE_FGT] = {"fgt", BIT(F_N) | BIT(F_X) | BIT(F_TO)},
    [SIG_NODE_REP] = {"rep", BIT(F_N) | BIT(F_TO) | BIT(F_REG)},
};

const char *sig_nodemsg_op_name(sig_nodemsg_op_t op) {
  return op < SIG_NODE_COUNT ? ops[op].name : "?";
}

/* A name (op, n, x, a, b, to): a scanned string without escapes (no name needs one), of
 * 1..cap-1 bytes (0..cap-1 when empty_ok), copied. */
static int get_string(const sig_json_val_t *v, char *out, size_t cap, int empty_ok) {
  size_t n;
  if (v->kind != SIG_JSON_STRING || v->escaped || (size_t)(v->end - v->start) - 2 >= cap) return -1;
  n = sig_json_string_value(v, out);
  out[n] = '\0';
  return n == 0 && !empty_ok ? -1 : 0;
}

/* Text for humans (m): any string without NUL whose value has at most cap-1 bytes, copied. Its
 * escaped form may be longer than that (the encoder escapes quotes and control characters). */
static int get_text(const sig_json_val_t *v, char *out, size_t cap) {
  size_t span = (size_t)(v->end - v->start), n;
  if (v->kind != SIG_JSON_STRING || v->nul) return -1;
  if (span - 2 < cap) {
    n = sig_json_string_value(v, out);
  } else {
    char *tmp = sig_malloc(span);
    n = sig_json_string_value(v, tmp);
    if (n < cap) memcpy(out, tmp, n);
    free(tmp);
    if (n >= cap) return -1;
  }
  out[n] = '\0';
  return 0;
}

/* A non-negative integer of at most 18 digits (no sign, fraction or exponent). */
static int get_uint(const sig_json_val_t *v, uint64_t *out) {
  size_t n = (size_t)(v->end - v->start);
  uint64_t x = 0;
  if (v->kind != SIG_JSON_NUMBER || n == 0 || n > 18) return -1;
  for (size_t i = 0; i < n; i++) {
    if (v->start[i] < '0' || v->start[i] > '9') return -1;
    x = x * 10 + (uint64_t)(v->start[i] - '0');
  }
  *out = x;
  return 0;
}

static int node_id_valid(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > SIG_NODE_ID_MAX) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
          c == '_' || c == '-'))
      return 0;
  }
  return 1;
}

/* The op's numeric fields (those in need) into m. Returns 0 or SIG_EBADMSG. */
static int decode_numbers(sig_nodemsg_t *m, const sig_json_val_t *v, unsigned need) {
  uint64_t u;
  if (need & BIT(F_RID) && get_uint(&v[F_RID], &m->rid) != 0) return SIG_EBADMSG;
  if (need & BIT(F_DL)) {
    if (get_uint(&v[F_DL], &u) != 0) return SIG_EBADMSG;
    m->deadline_ms = (int64_t)u;
  }
  if (need & BIT(F_REG) && get_uint(&v[F_REG], &m->reg) != 0) return SIG_EBADMSG;
  if (need & BIT(F_ST)) {
    if (get_uint(&v[F_ST], &u) != 0 || u < 100 || u > 599) return SIG_EBADMSG;
    m->status = (int)u;
  }
  return 0;
}

/* The op's text fields (those in need) into m, each checked as the protocol checks it.
 * Returns 0 or SIG_EBADMSG. */
static int decode_strings(sig_nodemsg_t *m, const sig_json_val_t *v, unsigned need) {
  if (need & BIT(F_M) && get_text(&v[F_M], m->msg, sizeof(m->msg)) != 0) return SIG_EBADMSG;
  /* the exchange id: required, except in a reply, where "" means none */
  if (need & BIT(F_X) && (get_string(&v[F_X], m->id, sizeof(m->id), m->op == SIG_NODE_RE) != 0 ||
                          (m->id[0] != '\0' && !sig_msg_id_valid(m->id, strlen(m->id)))))
    return SIG_EBADMSG;
  char *const domains[] = {m->a, m->b, m->to};
  for (int i = 0; i < 3; i++) {
    int f = F_A + i;
    if (!(need & BIT(f))) continue;
    if (get_string(&v[f], domains[i], SIG_MSG_DOMAIN_MAX + 1, 0) != 0 ||
        !sig_msg_domain_valid(domains[i], strlen(domains[i])))
      return SIG_EBADMSG;
  }
  return 0;
}

/* The op named by v[F_OP] into m->op. Returns 0 or SIG_EBADMSG. */
static int decode_op(sig_nodemsg_t *m, const sig_json_val_t *v) {
  char op[8];
  if (get_string(&v[F_OP], op, sizeof(op), 0) != 0) return SIG_EBADMSG;
  m->op = SIG_NODE_COUNT;
  for (int i = 0; i < SIG_NODE_COUNT; i++)
    if (strcmp(op, ops[i].name) == 0) m->op = (sig_nodemsg_op_t)i;
  return m->op == SIG_NODE_COUNT ? SIG_EBADMSG : 0;
}

int sig_nodemsg_decode(sig_nodemsg_t *m, const char *buf, size_t len) {
  sig_json_val_t v[F_COUNT], root;
  memset(m, 0, sizeof(*m));
  memset(v, 0, sizeof(v));
  if (sig_json_scan(buf, len, &schema, v, &root, NULL, 0) != 0 || root.kind != SIG_JSON_OBJECT)
    return SIG_EBADMSG;
  if (decode_op(m, v) != 0) return SIG_EBADMSG;
  unsigned need = ops[m->op].need;
  for (int f = 0; f < F_COUNT; f++) /* exactly the op's fields (f optional for end) */
    if (((need >> f) & 1) != (v[f].kind != SIG_JSON_NONE) && f != F_OP &&
        !(f == F_F && m->op == SIG_NODE_END))
      return SIG_EBADMSG;
  if (get_string(&v[F_N], m->node, sizeof(m->node), 0) != 0 || !node_id_valid(m->node))
    return SIG_EBADMSG;
  if (decode_numbers(m, v, need) != 0 || decode_strings(m, v, need) != 0) return SIG_EBADMSG;
  if (v[F_F].kind != SIG_JSON_NONE) {
    if (v[F_F].kind != SIG_JSON_OBJECT) return SIG_EBADMSG;
    m->f = v[F_F].start;
    m->f_len = (size_t)(v[F_F].end - v[F_F].start);
  }
  return 0;
}

/* ---- encoding */

typedef struct {
  char *buf;
  size_t len, cap;
} out_t;

static void put(out_t *o, const char *s, size_t n) {
  if (o->len + n + 1 > o->cap) {
    while (o->len + n + 1 > o->cap) o->cap = o->cap != 0 ? o->cap * 2 : 256;
    o->buf = sig_realloc(o->buf, o->cap);
  }
  memcpy(o->buf + o->len, s, n);
  o->len += n;
  o->buf[o->len] = '\0';
}

static void put_key(out_t *o, const char *key) {
  char k[16];
  int n = snprintf(k, sizeof(k), ",\"%s\":", key);
  put(o, k, (size_t)n);
}

static void put_str(out_t *o, const char *key, const char *s) {
  put_key(o, key);
  size_t n = sig_json_write_string(NULL, s);
  char *tmp = sig_malloc(n + 1);
  sig_json_write_string(tmp, s);
  put(o, tmp, n);
  free(tmp);
}

static void put_uint(out_t *o, const char *key, uint64_t x) {
  char num[24];
  int n = snprintf(num, sizeof(num), "%" PRIu64, x);
  put_key(o, key);
  put(o, num, (size_t)n);
}

char *sig_nodemsg_encode(const sig_nodemsg_t *m, size_t *len) {
  out_t o = {NULL, 0, 0};
  unsigned need = ops[m->op].need;
  put(&o, "{\"op\":\"", 7);
  put(&o, ops[m->op].name, strlen(ops[m->op].name));
  put(&o, "\"", 1);
  put_str(&o, "n", m->node);
  if (need & BIT(F_RID)) put_uint(&o, "rid", m->rid);
  if (need & BIT(F_DL)) put_uint(&o, "dl", m->deadline_ms > 0 ? (uint64_t)m->deadline_ms : 0);
  if (need & BIT(F_X)) put_str(&o, "x", m->id);
  if (need & BIT(F_A)) put_str(&o, "a", m->a);
  if (need & BIT(F_B)) put_str(&o, "b", m->b);
  if (need & BIT(F_TO)) put_str(&o, "to", m->to);
  if (need & BIT(F_REG)) put_uint(&o, "reg", m->reg);
  if (need & BIT(F_ST)) put_uint(&o, "st", (uint64_t)m->status);
  if (need & BIT(F_M)) put_str(&o, "m", m->msg);
  if (m->f != NULL && m->f_len > 0 && (need & BIT(F_F) || m->op == SIG_NODE_END)) {
    put_key(&o, "f");
    put(&o, m->f, m->f_len);
  }
  put(&o, "}", 1);
  *len = o.len;
  return o.buf;
}
