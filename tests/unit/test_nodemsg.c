/* Unit tests for sig_nodemsg: every operation decodes from exact JSON and encodes back to the
 * same bytes; every refusal (unknown op, a field missing, one too many, of the wrong type, out of
 * range, a bad name, an escape in a name, a duplicate key, f not an object); the decoder reads
 * only the len bytes it is given. Inputs are copied to buffers of exactly their length, so that
 * ASan catches any read past them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* cmocka needs the headers above first */
#include <cmocka.h>

#include "sig_nodemsg.h"
#include "sig_util.h"

#define A8 "aaaaaaaa"
#define A64 A8 A8 A8 A8 A8 A8 A8 A8
#define A128 A64 A64
#define DL "1700000000000"
#define BYE "{\"ty\":\"bye\",\"id\":\"x1\",\"from\":\"A\",\"reason\":\"hangup\"}"
#define BODY \
  "{\"offer_sdp\":\"dj0=\",\"candidate\":[],\"answer_domain\":\"B\",\"offer_domain\":\"A\"}"
#define PUSH \
  "{\"ty\":\"offer\",\"id\":\"x1\",\"offer_req\":{\"offer_sdp\":\"dj0=\",\"candidate\":[]}}"

/* sizeof, so that rows may hold NUL bytes */
#define TEXT(s) \
  { s, sizeof(s) - 1 }

typedef struct {
  const char *s;
  size_t len;
} text_t;

/* sig_nodemsg_decode on a copy of exactly len bytes (no NUL after them). m->f is made to point
 * into text instead of the copy, which is freed. */
static int decode_exact(sig_nodemsg_t *m, const char *text, size_t len) {
  char *copy = malloc(len != 0 ? len : 1);
  memcpy(copy, text, len);
  int rc = sig_nodemsg_decode(m, copy, len);
  if (rc == 0 && m->f != NULL) {
    assert_true(m->f >= copy && m->f + m->f_len <= copy + len);
    m->f = text + (m->f - copy);
  }
  free(copy);
  return rc;
}

/* The first field in which a and b differ, or NULL. */
static const char *differs(const sig_nodemsg_t *a, const sig_nodemsg_t *b) {
  if (a->op != b->op) return "op";
  if (strcmp(a->node, b->node) != 0) return "n";
  if (a->rid != b->rid) return "rid";
  if (a->deadline_ms != b->deadline_ms) return "dl";
  if (strcmp(a->id, b->id) != 0) return "x";
  if (strcmp(a->a, b->a) != 0) return "a";
  if (strcmp(a->b, b->b) != 0) return "b";
  if (strcmp(a->to, b->to) != 0) return "to";
  if (a->reg != b->reg) return "reg";
  if (a->status != b->status) return "st";
  if (strcmp(a->msg, b->msg) != 0) return "m";
  if (a->f_len != b->f_len || (a->f_len != 0 && memcmp(a->f, b->f, a->f_len) != 0)) return "f";
  if ((a->f == NULL) != (b->f == NULL)) return "f (NULL)";
  return NULL;
}

typedef struct {
  const char *in;
  const char *canon; /* what it encodes to; NULL: in itself */
  sig_nodemsg_t want;
  const char *f; /* want.f, as a C string */
} ok_row_t;

static const ok_row_t ok_rows[] = {
    /* every operation as the encoder writes it */
    {"{\"op\":\"re\",\"n\":\"n2\",\"rid\":7,\"x\":\"x1\",\"st\":200,\"m\":\"ok\"}",
     NULL,
     {.op = SIG_NODE_RE, .node = "n2", .rid = 7, .id = "x1", .status = 200, .msg = "ok"},
     NULL},
    {"{\"op\":\"fwd\",\"n\":\"n1\",\"rid\":1,\"dl\":" DL ",\"f\":" BODY "}",
     NULL,
     {.op = SIG_NODE_FWD, .node = "n1", .rid = 1, .deadline_ms = 1700000000000},
     BODY},
    {"{\"op\":\"offer\",\"n\":\"n1\",\"rid\":2,\"dl\":" DL
     ",\"x\":\"x1\",\"a\":\"A\",\"b\":\"B\",\"f\":" PUSH "}",
     NULL,
     {.op = SIG_NODE_OFFER,
      .node = "n1",
      .rid = 2,
      .deadline_ms = 1700000000000,
      .id = "x1",
      .a = "A",
      .b = "B"},
     PUSH},
    {"{\"op\":\"ans\",\"n\":\"n2\",\"x\":\"x1\",\"a\":\"A\",\"b\":\"B\",\"f\":" BYE "}",
     NULL,
     {.op = SIG_NODE_ANS, .node = "n2", .id = "x1", .a = "A", .b = "B"},
     BYE},
    {"{\"op\":\"rel\",\"n\":\"n1\",\"x\":\"x1\",\"to\":\"B\",\"f\":" BYE "}",
     NULL,
     {.op = SIG_NODE_REL, .node = "n1", .id = "x1", .to = "B"},
     BYE},
    {"{\"op\":\"end\",\"n\":\"n1\",\"x\":\"x1\",\"to\":\"B\",\"f\":" BYE "}",
     NULL,
     {.op = SIG_NODE_END, .node = "n1", .id = "x1", .to = "B"},
     BYE},
    {"{\"op\":\"end\",\"n\":\"n1\",\"x\":\"x1\",\"to\":\"B\"}",
     NULL,
     {.op = SIG_NODE_END, .node = "n1", .id = "x1", .to = "B"},
     NULL},
    {"{\"op\":\"fgt\",\"n\":\"n1\",\"x\":\"x1\",\"to\":\"B\"}",
     NULL,
     {.op = SIG_NODE_FGT, .node = "n1", .id = "x1", .to = "B"},
     NULL},
    {"{\"op\":\"rep\",\"n\":\"n2\",\"to\":\"A\",\"reg\":5}",
     NULL,
     {.op = SIG_NODE_REP, .node = "n2", .to = "A", .reg = 5},
     NULL},
    /* the limits, inclusive */
    {"{\"op\":\"re\",\"n\":\"" A64
     "\",\"rid\":999999999999999999,\"x\":\"\",\"st\":100,\"m\":\"\"}",
     NULL,
     {.op = SIG_NODE_RE, .node = A64, .rid = 999999999999999999u, .status = 100},
     NULL},
    {"{\"op\":\"re\",\"n\":\"AZaz09._-\",\"rid\":0,\"x\":\"" A64 "\",\"st\":599,\"m\":\"x\"}",
     NULL,
     {.op = SIG_NODE_RE, .node = "AZaz09._-", .id = A64, .status = 599, .msg = "x"},
     NULL},
    {"{\"op\":\"offer\",\"n\":\"n\",\"rid\":1,\"dl\":999999999999999999,\"x\":\"AZaz09._~-\","
     "\"a\":\"" A128 "\",\"b\":\"~\",\"f\":{}}",
     NULL,
     {.op = SIG_NODE_OFFER,
      .node = "n",
      .rid = 1,
      .deadline_ms = 999999999999999999,
      .id = "AZaz09._~-",
      .a = A128,
      .b = "~"},
     "{}"},
    {"{\"op\":\"fwd\",\"n\":\"n1\",\"rid\":1,\"dl\":0,\"f\":{\"a\":[1,{\"b\":null}],\"c\":"
     "\"\\u00e9\"}}",
     NULL,
     {.op = SIG_NODE_FWD, .node = "n1", .rid = 1},
     "{\"a\":[1,{\"b\":null}],\"c\":\"\\u00e9\"}"},
    {"{\"op\":\"rep\",\"n\":\"n2\",\"to\":\"A\",\"reg\":999999999999999999}",
     NULL,
     {.op = SIG_NODE_REP, .node = "n2", .to = "A", .reg = 999999999999999999u},
     NULL},
    /* m is text for humans: escapes are fine, and written back in the shortest form */
    {"{\"op\":\"re\",\"n\":\"n2\",\"rid\":7,\"x\":\"\",\"st\":404,\"m\":\"say \\\"hi\\\"\\n\\\\\"}",
     NULL,
     {.op = SIG_NODE_RE, .node = "n2", .rid = 7, .status = 404, .msg = "say \"hi\"\n\\"},
     NULL},
    {"{\"op\":\"re\",\"n\":\"n2\",\"rid\":7,\"x\":\"\",\"st\":404,\"m\":\"\\u0041\\/\\u00e9\"}",
     "{\"op\":\"re\",\"n\":\"n2\",\"rid\":7,\"x\":\"\",\"st\":404,\"m\":\"A/\xc3\xa9\"}",
     {.op = SIG_NODE_RE, .node = "n2", .rid = 7, .status = 404, .msg = "A/\xc3\xa9"},
     NULL},
    /* any order, whitespace, escaped keys, unknown members: written back canonically */
    {" {\"reg\" : 5 ,\n\"to\":\"A\",\t\"n\":\"n2\",\"op\":\"rep\"} \r\n",
     "{\"op\":\"rep\",\"n\":\"n2\",\"to\":\"A\",\"reg\":5}",
     {.op = SIG_NODE_REP, .node = "n2", .to = "A", .reg = 5},
     NULL},
    {"{\"\\u006fp\":\"fgt\",\"n\":\"n1\",\"x\":\"x1\",\"t\\u006f\":\"B\"}",
     "{\"op\":\"fgt\",\"n\":\"n1\",\"x\":\"x1\",\"to\":\"B\"}",
     {.op = SIG_NODE_FGT, .node = "n1", .id = "x1", .to = "B"},
     NULL},
    {"{\"op\":\"fgt\",\"n\":\"n1\",\"x\":\"x1\",\"to\":\"B\",\"later\":{\"op\":1},\"v\":2}",
     "{\"op\":\"fgt\",\"n\":\"n1\",\"x\":\"x1\",\"to\":\"B\"}",
     {.op = SIG_NODE_FGT, .node = "n1", .id = "x1", .to = "B"},
     NULL},
    {"{\"op\":\"end\",\"f\": {\"ty\" : \"bye\"} ,\"to\":\"B\",\"x\":\"x1\",\"n\":\"n1\"}",
     "{\"op\":\"end\",\"n\":\"n1\",\"x\":\"x1\",\"to\":\"B\",\"f\":{\"ty\" : \"bye\"}}",
     {.op = SIG_NODE_END, .node = "n1", .id = "x1", .to = "B"},
     "{\"ty\" : \"bye\"}"},
};

static void check_ok_row(size_t i, const ok_row_t *row) {
  sig_nodemsg_t m, again, want = row->want;
  size_t len, len2;
  const char *canon = row->canon != NULL ? row->canon : row->in;
  if (row->f != NULL) want.f = row->f, want.f_len = strlen(row->f);
  int rc = decode_exact(&m, row->in, strlen(row->in));
  if (rc != 0) print_error("row %zu: refused: %s\n", i, row->in);
  assert_int_equal(rc, 0);
  const char *field = differs(&m, &want);
  if (field != NULL) print_error("row %zu: field %s differs: %s\n", i, field, row->in);
  assert_null(field);
  char *out = sig_nodemsg_encode(&m, &len);
  if (len != strlen(canon) || strcmp(out, canon) != 0)
    print_error("row %zu: encoded\n  %s\nwant\n  %s\n", i, out, canon);
  assert_int_equal(len, strlen(canon));
  assert_string_equal(out, canon);
  /* the canonical form is a fixed point */
  assert_int_equal(decode_exact(&again, out, len), 0);
  assert_null(differs(&again, &want));
  char *out2 = sig_nodemsg_encode(&again, &len2);
  assert_int_equal(len2, len);
  assert_memory_equal(out2, out, len);
  free(out2);
  free(out);
}

static void test_decode_encode(void **state) {
  (void)state;
  for (size_t i = 0; i < SIG_ARRAY_SIZE(ok_rows); i++) check_ok_row(i, &ok_rows[i]);
}

/* Only len bytes are read: what follows them changes nothing, and every proper prefix (a JSON
 * object cut short) is refused. */
static void test_reads_only_len(void **state) {
  (void)state;
  for (size_t i = 0; i < SIG_ARRAY_SIZE(ok_rows); i++) {
    const char *in = ok_rows[i].in;
    size_t n = strlen(in);
    static const char tail[] = ",\"op\":\"fgt\"} garbage\0\xff";
    char *buf = malloc(n + sizeof tail);
    sig_nodemsg_t m, want;
    memcpy(buf, in, n);
    memcpy(buf + n, tail, sizeof tail);
    assert_int_equal(decode_exact(&want, in, n), 0);
    assert_int_equal(sig_nodemsg_decode(&m, buf, n), 0);
    if (m.f != NULL) m.f = in + (m.f - buf);
    assert_null(differs(&m, &want));
    size_t end = (size_t)(strrchr(in, '}') - in) + 1; /* then only whitespace */
    for (size_t k = 0; k < n; k++) {
      int rc = decode_exact(&m, in, k);
      if (rc != (k < end ? SIG_EBADMSG : 0))
        print_error("row %zu: prefix of %zu bytes: %d\n", i, k, rc);
      assert_int_equal(rc, k < end ? SIG_EBADMSG : 0);
    }
    free(buf);
  }
}

static void check_refused(const char *what, size_t i, const char *in, size_t len) {
  sig_nodemsg_t m;
  int rc = decode_exact(&m, in, len);
  if (rc != SIG_EBADMSG) print_error("%s %zu: accepted: %.*s\n", what, i, (int)len, in);
  assert_int_equal(rc, SIG_EBADMSG);
}

static void test_refusals(void **state) {
  static const text_t rows[] = {
      /* not one JSON object */
      TEXT(""),
      TEXT(" "),
      TEXT("{"),
      TEXT("[]"),
      TEXT("\"re\""),
      TEXT("7"),
      TEXT("null"),
      TEXT("{}"),
      TEXT("{\"op\":\"fgt\",\"n\":\"n1\",\"x\":\"x1\",\"to\":\"B\"} x"),
      TEXT("{\"op\":\"fgt\",\"n\":\"n1\",\"x\":\"x1\",\"to\":\"B\"}{}"),
      TEXT("{\"op\":\"fgt\",\"n\":\"n1\",\"x\":\"x1\",\"to\":\"B\"}\0"),
      TEXT("\xef\xbb\xbf{\"op\":\"fgt\",\"n\":\"n1\",\"x\":\"x1\",\"to\":\"B\"}"),
      TEXT("{\"op\":\"fgt\",\"n\":\"n1\",\"x\":\"x1\",\"to\":\"B\",}"),
      TEXT("{\"op\":\"fgt\",\"n\":\"n1\",\"x\":\"x1\",\"to\":\"B\",\"z\":\"\xff\"}"),
      /* unknown operations */
      TEXT("{\"op\":\"nope\",\"n\":\"n1\",\"x\":\"x1\",\"to\":\"B\"}"),
      TEXT("{\"op\":\"\",\"n\":\"n1\",\"x\":\"x1\",\"to\":\"B\"}"),
      TEXT("{\"op\":\"FGT\",\"n\":\"n1\",\"x\":\"x1\",\"to\":\"B\"}"),
      TEXT("{\"op\":\"fgt \",\"n\":\"n1\",\"x\":\"x1\",\"to\":\"B\"}"),
      TEXT("{\"op\":\"fgtfgtfgt\",\"n\":\"n1\",\"x\":\"x1\",\"to\":\"B\"}"),
      TEXT("{\"op\":\"fgt\\u0000\",\"n\":\"n1\",\"x\":\"x1\",\"to\":\"B\"}"),
      /* duplicate keys, also written differently */
      TEXT("{\"op\":\"fgt\",\"op\":\"fgt\",\"n\":\"n1\",\"x\":\"x1\",\"to\":\"B\"}"),
      TEXT("{\"op\":\"fgt\",\"n\":\"n1\",\"x\":\"x1\",\"to\":\"B\",\"\\u0078\":\"x1\"}"),
      TEXT("{\"op\":\"end\",\"n\":\"n1\",\"x\":\"x1\",\"to\":\"B\",\"f\":{},\"f\":{}}"),
      /* escapes in a name, even when its value is a valid name */
      TEXT("{\"op\":\"f\\u0067t\",\"n\":\"n1\",\"x\":\"x1\",\"to\":\"B\"}"),
      TEXT("{\"op\":\"fgt\",\"n\":\"n\\u0031\",\"x\":\"x1\",\"to\":\"B\"}"),
      TEXT("{\"op\":\"fgt\",\"n\":\"n1\",\"x\":\"\\u00781\",\"to\":\"B\"}"),
      TEXT("{\"op\":\"fgt\",\"n\":\"n1\",\"x\":\"x1\",\"to\":\"\\u0042\"}"),
      TEXT("{\"op\":\"ans\",\"n\":\"n2\",\"x\":\"x1\",\"a\":\"\\u0041\",\"b\":\"B\",\"f\":{}}"),
      TEXT("{\"op\":\"ans\",\"n\":\"n2\",\"x\":\"x1\",\"a\":\"A\",\"b\":\"\\u0042\",\"f\":{}}"),
      TEXT("{\"op\":\"fgt\",\"n\":\"n1\",\"x\":\"x\\/1\",\"to\":\"B\"}"),
      /* NUL in text */
      TEXT("{\"op\":\"re\",\"n\":\"n2\",\"rid\":7,\"x\":\"\",\"st\":404,\"m\":\"a\\u0000b\"}"),
      /* m too long: 768 bytes */
      TEXT("{\"op\":\"re\",\"n\":\"n2\",\"rid\":7,\"x\":\"\",\"st\":404,\"m\":\"" A128 A128 A128
               A128 A128 A128 "\"}"),
      /* st out of range */
      TEXT("{\"op\":\"re\",\"n\":\"n2\",\"rid\":7,\"x\":\"x1\",\"st\":99,\"m\":\"ok\"}"),
      TEXT("{\"op\":\"re\",\"n\":\"n2\",\"rid\":7,\"x\":\"x1\",\"st\":600,\"m\":\"ok\"}"),
      TEXT("{\"op\":\"re\",\"n\":\"n2\",\"rid\":7,\"x\":\"x1\",\"st\":0,\"m\":\"ok\"}"),
      TEXT("{\"op\":\"re\",\"n\":\"n2\",\"rid\":7,\"x\":\"x1\",\"st\":4294967496,\"m\":\"ok\"}"),
      /* an empty x, outside a reply */
      TEXT("{\"op\":\"offer\",\"n\":\"n1\",\"rid\":2,\"dl\":1,\"x\":\"\",\"a\":\"A\",\"b\":\"B\","
           "\"f\":{}}"),
      TEXT("{\"op\":\"ans\",\"n\":\"n2\",\"x\":\"\",\"a\":\"A\",\"b\":\"B\",\"f\":{}}"),
      TEXT("{\"op\":\"rel\",\"n\":\"n1\",\"x\":\"\",\"to\":\"B\",\"f\":{}}"),
      TEXT("{\"op\":\"end\",\"n\":\"n1\",\"x\":\"\",\"to\":\"B\"}"),
      TEXT("{\"op\":\"fgt\",\"n\":\"n1\",\"x\":\"\",\"to\":\"B\"}"),
  };
  (void)state;
  for (size_t i = 0; i < SIG_ARRAY_SIZE(rows); i++) check_refused("row", i, rows[i].s, rows[i].len);
}

/* ---- refusals made from each operation's members: one missing, one too many, one of the wrong
 * type, a bad number, a bad name */

enum { K_STRING, K_NUMBER, K_OBJECT };

typedef struct {
  const char *key;
  const char *value; /* a valid one */
  int kind;
} member_t;

static const member_t pool[] = {
    {"n", "\"n1\"", K_STRING}, {"rid", "1", K_NUMBER},   {"dl", DL, K_NUMBER},
    {"x", "\"x1\"", K_STRING}, {"a", "\"A\"", K_STRING}, {"b", "\"B\"", K_STRING},
    {"to", "\"B\"", K_STRING}, {"reg", "3", K_NUMBER},   {"st", "200", K_NUMBER},
    {"m", "\"ok\"", K_STRING}, {"f", BYE, K_OBJECT},
};

/* Each operation's members (op first, the rest in the pool's order, which is the encoder's). */
static const struct {
  const char *op;
  const char *keys[8];
} ops[] = {
    {"re", {"n", "rid", "x", "st", "m"}},
    {"fwd", {"n", "rid", "dl", "f"}},
    {"offer", {"n", "rid", "dl", "x", "a", "b", "f"}},
    {"ans", {"n", "x", "a", "b", "f"}},
    {"rel", {"n", "x", "to", "f"}},
    {"end", {"n", "x", "to", "f"}},
    {"fgt", {"n", "x", "to"}},
    {"rep", {"n", "to", "reg"}},
};

static const member_t *find_member(const char *key) {
  for (size_t i = 0; i < SIG_ARRAY_SIZE(pool); i++)
    if (strcmp(pool[i].key, key) == 0) return &pool[i];
  fail_msg("no member %s", key);
  return NULL;
}

static int carries(size_t op, const char *key) {
  for (size_t k = 0; ops[op].keys[k] != NULL; k++)
    if (strcmp(ops[op].keys[k], key) == 0) return 1;
  return 0;
}

/* The message of operation op with its members in order, except: `skip` left out (NULL: none),
 * `key`'s value replaced by `value` (key NULL: none), then `extra` ("k":v) appended. */
static char *build(size_t op, const char *skip, const char *key, const char *value,
                   const char *extra) {
  char *out = malloc(4096);
  int n = snprintf(out, 4096, "{\"op\":\"%s\"", ops[op].op);
  for (size_t k = 0; ops[op].keys[k] != NULL; k++) {
    const member_t *mb = find_member(ops[op].keys[k]);
    if (skip != NULL && strcmp(skip, mb->key) == 0) continue;
    const char *v = key != NULL && strcmp(key, mb->key) == 0 ? value : mb->value;
    n += snprintf(out + n, 4096 - (size_t)n, ",\"%s\":%s", mb->key, v);
  }
  if (extra != NULL) n += snprintf(out + n, 4096 - (size_t)n, ",%s", extra);
  snprintf(out + n, 4096 - (size_t)n, "}");
  return out;
}

static void expect_build(size_t op, char *text, int want_ok) {
  sig_nodemsg_t m;
  int rc = decode_exact(&m, text, strlen(text));
  if (rc != (want_ok ? 0 : SIG_EBADMSG))
    print_error("%s: %s: %s\n", ops[op].op, want_ok ? "refused" : "accepted", text);
  assert_int_equal(rc, want_ok ? 0 : SIG_EBADMSG);
  free(text);
}

static void test_members_required(void **state) {
  (void)state;
  assert_int_equal(SIG_ARRAY_SIZE(ops), SIG_NODE_COUNT);
  for (size_t op = 0; op < SIG_ARRAY_SIZE(ops); op++) {
    assert_string_equal(sig_nodemsg_op_name((sig_nodemsg_op_t)op), ops[op].op);
    expect_build(op, build(op, NULL, NULL, NULL, NULL), 1);
    /* without op: nothing to go by */
    char *text = build(op, NULL, NULL, NULL, NULL);
    text[2] = 'x'; /* "op" -> "xp" */
    expect_build(op, text, 0);
    for (size_t k = 0; ops[op].keys[k] != NULL; k++) {
      const char *key = ops[op].keys[k];
      /* f is optional for end only */
      expect_build(op, build(op, key, NULL, NULL, NULL),
                   op == SIG_NODE_END && strcmp(key, "f") == 0);
    }
  }
  assert_string_equal(sig_nodemsg_op_name(SIG_NODE_COUNT), "?");
}

static void test_members_extra(void **state) {
  char extra[256];
  (void)state;
  for (size_t op = 0; op < SIG_ARRAY_SIZE(ops); op++) {
    for (size_t i = 0; i < SIG_ARRAY_SIZE(pool); i++) {
      if (carries(op, pool[i].key)) continue;
      snprintf(extra, sizeof extra, "\"%s\":%s", pool[i].key, pool[i].value);
      expect_build(op, build(op, NULL, NULL, NULL, extra), 0);
    }
  }
}

static void test_members_wrong_type(void **state) {
  static const struct {
    const char *value;
    int kind; /* -1: no member is of this kind */
  } values[] = {
      {"\"1\"", K_STRING}, {"1", K_NUMBER}, {"{}", K_OBJECT}, {"[]", -1},
      {"[\"x1\"]", -1},    {"null", -1},    {"true", -1},     {"false", -1},
  };
  (void)state;
  for (size_t op = 0; op < SIG_ARRAY_SIZE(ops); op++) {
    for (size_t k = 0; ops[op].keys[k] != NULL; k++) {
      const member_t *mb = find_member(ops[op].keys[k]);
      for (size_t v = 0; v < SIG_ARRAY_SIZE(values); v++) {
        if (values[v].kind == mb->kind) continue;
        expect_build(op, build(op, NULL, mb->key, values[v].value, NULL), 0);
      }
    }
    /* op itself */
    for (size_t v = 0; v < SIG_ARRAY_SIZE(values); v++) {
      if (values[v].kind == K_STRING) continue;
      char *text = build(op, NULL, NULL, NULL, NULL);
      char fixed[4200];
      snprintf(fixed, sizeof fixed, "{\"op\":%s%s", values[v].value, strchr(text, ','));
      free(text);
      expect_build(op, strdup(fixed), 0);
    }
  }
}

static void test_members_numbers(void **state) {
  static const struct {
    const char *value;
    int ok;
  } values[] = {
      {"0", 1},
      {"100", 1},
      {"999999999999999999", 1},   /* 18 digits */
      {"1000000000000000000", 0},  /* 19 */
      {"18446744073709551615", 0}, /* UINT64_MAX */
      {"18446744073709551616", 0},
      {"-1", 0},
      {"-0", 0},
      {"1.5", 0},
      {"100.0", 0},
      {"1e3", 0},
      {"1E3", 0},
      {"1e+2", 0},
      {"01", 0},
      {"+1", 0},
      {"0x10", 0},
      {"\"100\"", 0},
  };
  (void)state;
  for (size_t op = 0; op < SIG_ARRAY_SIZE(ops); op++) {
    for (size_t k = 0; ops[op].keys[k] != NULL; k++) {
      const member_t *mb = find_member(ops[op].keys[k]);
      if (mb->kind != K_NUMBER) continue;
      for (size_t v = 0; v < SIG_ARRAY_SIZE(values); v++) {
        int ok = values[v].ok;
        if (strcmp(mb->key, "st") == 0) ok = strcmp(values[v].value, "100") == 0;
        expect_build(op, build(op, NULL, mb->key, values[v].value, NULL), ok);
      }
    }
  }
}

/* n follows the node id rule (1-64 of A-Z a-z 0-9 . _ -); x, a, b, to sig_msg's rules. */
static void test_members_names(void **state) {
  static const struct {
    const char *value;
    int node, id, domain;
  } values[] = {
      {"\"q\"", 1, 1, 1},         {"\"" A64 "\"", 1, 1, 1},     {"\"" A64 "a\"", 0, 0, 1},
      {"\"" A128 "\"", 0, 0, 1},  {"\"" A128 "a\"", 0, 0, 0},   {"\"\"", 0, 0, 0},
      {"\"AZaz09._-\"", 1, 1, 1}, {"\"a~b\"", 0, 1, 1},         {"\"a b\"", 0, 0, 0},
      {"\"a/b\"", 0, 0, 0},       {"\"a:b\"", 0, 0, 0},         {"\"a+b\"", 0, 0, 0},
      {"\"a%20\"", 0, 0, 0},      {"\"caf\xc3\xa9\"", 0, 0, 0}, {"\"a\\tb\"", 0, 0, 0},
      {"\"a\\u0000\"", 0, 0, 0},
  };
  (void)state;
  for (size_t op = 0; op < SIG_ARRAY_SIZE(ops); op++) {
    for (size_t k = 0; ops[op].keys[k] != NULL; k++) {
      const member_t *mb = find_member(ops[op].keys[k]);
      if (mb->kind != K_STRING || strcmp(mb->key, "m") == 0) continue;
      for (size_t v = 0; v < SIG_ARRAY_SIZE(values); v++) {
        int ok = strcmp(mb->key, "n") == 0 ? values[v].node
                 : strcmp(mb->key, "x") == 0
                     ? values[v].id || (op == SIG_NODE_RE && strcmp(values[v].value, "\"\"") == 0)
                     : values[v].domain;
        expect_build(op, build(op, NULL, mb->key, values[v].value, NULL), ok);
      }
    }
  }
}

/* ---- encoding hand-filled messages */

static char *encode(const sig_nodemsg_t *m) {
  size_t len;
  char *out = sig_nodemsg_encode(m, &len);
  assert_int_equal(strlen(out), len);
  return out;
}

/* Only the fields an operation carries are written; f only where it goes and when not empty. */
static void test_encode_hand_filled(void **state) {
  static const struct {
    sig_nodemsg_t m;
    const char *f;
    const char *want;
  } rows[] = {
      {{.op = SIG_NODE_REP,
        .node = "n2",
        .rid = 9,
        .deadline_ms = 5,
        .id = "x1",
        .a = "A",
        .b = "B",
        .to = "A",
        .reg = 5,
        .status = 200,
        .msg = "ok"},
       BYE,
       "{\"op\":\"rep\",\"n\":\"n2\",\"to\":\"A\",\"reg\":5}"},
      {{.op = SIG_NODE_FGT, .node = "n1", .id = "x1", .to = "B"},
       BYE,
       "{\"op\":\"fgt\",\"n\":\"n1\",\"x\":\"x1\",\"to\":\"B\"}"},
      {{.op = SIG_NODE_END, .node = "n1", .id = "x1", .to = "B"},
       NULL,
       "{\"op\":\"end\",\"n\":\"n1\",\"x\":\"x1\",\"to\":\"B\"}"},
      {{.op = SIG_NODE_END, .node = "n1", .id = "x1", .to = "B"},
       "",
       "{\"op\":\"end\",\"n\":\"n1\",\"x\":\"x1\",\"to\":\"B\"}"},
      {{.op = SIG_NODE_FWD, .node = "n1", .rid = 3, .deadline_ms = -5},
       "{}",
       "{\"op\":\"fwd\",\"n\":\"n1\",\"rid\":3,\"dl\":0,\"f\":{}}"},
      {{.op = SIG_NODE_RE, .node = "n1", .rid = 3, .status = 503},
       BYE,
       "{\"op\":\"re\",\"n\":\"n1\",\"rid\":3,\"x\":\"\",\"st\":503,\"m\":\"\"}"},
  };
  (void)state;
  for (size_t i = 0; i < SIG_ARRAY_SIZE(rows); i++) {
    sig_nodemsg_t m = rows[i].m;
    m.f = rows[i].f;
    m.f_len = rows[i].f != NULL ? strlen(rows[i].f) : 0;
    char *out = encode(&m);
    if (strcmp(out, rows[i].want) != 0) print_error("row %zu: %s\n", i, out);
    assert_string_equal(out, rows[i].want);
    free(out);
  }
}

/* Any message text that fits (up to SIG_MSG_ERR_MAX - 1 bytes), whatever it holds, comes back
 * whole, though its escaped form is longer than that. */
static void test_encode_long_text(void **state) {
  static const char fill[] = {'"', '\\', '\n', '\x01', 'a', '\t'};
  (void)state;
  for (size_t i = 0; i < SIG_ARRAY_SIZE(fill); i++) {
    sig_nodemsg_t m = {.op = SIG_NODE_RE, .node = "n2", .rid = 1, .status = 404}, back;
    memset(m.msg, fill[i], sizeof m.msg - 1);
    size_t len;
    char *out = sig_nodemsg_encode(&m, &len);
    int rc = decode_exact(&back, out, len);
    if (rc != 0) print_error("fill 0x%02x: refused (%zu bytes)\n", (unsigned)fill[i], len);
    assert_int_equal(rc, 0);
    assert_null(differs(&back, &m));
    free(out);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_decode_encode),      cmocka_unit_test(test_reads_only_len),
      cmocka_unit_test(test_refusals),           cmocka_unit_test(test_members_required),
      cmocka_unit_test(test_members_extra),      cmocka_unit_test(test_members_wrong_type),
      cmocka_unit_test(test_members_numbers),    cmocka_unit_test(test_members_names),
      cmocka_unit_test(test_encode_hand_filled), cmocka_unit_test(test_encode_long_text),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
