/* Unit tests for sig_msg: every validation rule with its exact error text, and every encoder's
 * exact output. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* cmocka needs the headers above first */
#include <cmocka.h>

#include "sig_msg.h"
#include "sig_util.h"

#define A8 "aaaaaaaa"
#define A64 A8 A8 A8 A8 A8 A8 A8 A8
#define A128 A64 A64
#define DOMAIN_RULE "must be 1-128 characters of A-Z a-z 0-9 . _ ~ -"
#define ID_RULE "must be 1-64 characters of A-Z a-z 0-9 . _ ~ -"
#define NOT_SDP "not an SDP (decoded text must start with \"v=\")"
#define AFTER_VALUE "expected end of input after the JSON value, found "

#define SDP "dj0wDQpvPS0gMSAxIElOIElQNCAxMjcuMC4wLjENCg=="
#define CAND "candidate:1 1 udp 2122260223 192.0.2.1 54321 typ host"
#define F_SDP "\"offer_sdp\":\"" SDP "\""
#define F_CAND "\"candidate\":[\"" CAND "\"]"
#define F_AD "\"answer_domain\":\"B\""
#define F_OD "\"offer_domain\":\"A\""
#define BODY_WITH(x) "{" F_SDP "," F_CAND "," F_AD "," F_OD "," x "}"
#define REQ "{" F_SDP "," F_CAND "," F_AD "," F_OD "}"
#define RESP "{\"answer_sdp\":\"dj0wDQo=\",\"candidate\":[\"c2\"],\"answer_domain\":\"B\"}"

typedef struct {
  const char *in;
  size_t len;
  const char *err;
} row_t;

/* sizeof so that rows may hold raw NUL bytes */
#define ROW(in, err) \
  { in, sizeof(in) - 1, err }

static void assert_zeroed(const sig_msg_t *m) {
  sig_msg_t zero;
  memset(&zero, 0, sizeof zero);
  assert_memory_equal(m, &zero, sizeof zero);
}

static void run_body_rows(const row_t *rows, size_t n) {
  for (size_t i = 0; i < n; i++) {
    sig_msg_t m;
    char err[SIG_MSG_ERR_MAX] = "";
    int rc = sig_msg_decode_offer_body(&m, rows[i].in, rows[i].len, err, sizeof err);
    if (rc != SIG_EBADMSG || strcmp(err, rows[i].err) != 0)
      print_error("row %zu: %s\n  got %d '%s'\n  want '%s'\n", i, rows[i].in, rc, err, rows[i].err);
    assert_int_equal(rc, SIG_EBADMSG);
    assert_string_equal(err, rows[i].err);
    assert_zeroed(&m);
    sig_msg_free(&m);
  }
}

static void run_frame_rows(const row_t *rows, size_t n) {
  for (size_t i = 0; i < n; i++) {
    sig_msg_t m;
    char err[SIG_MSG_ERR_MAX] = "";
    int rc = sig_msg_decode_frame(&m, rows[i].in, rows[i].len, err, sizeof err);
    if (rc != SIG_EBADMSG || strcmp(err, rows[i].err) != 0)
      print_error("row %zu: %s\n  got %d '%s'\n  want '%s'\n", i, rows[i].in, rc, err, rows[i].err);
    assert_int_equal(rc, SIG_EBADMSG);
    assert_string_equal(err, rows[i].err);
    assert_int_equal(m.type, 0);
    assert_null(m.offer_sdp);
    assert_null(m.cand_raw);
    sig_msg_free(&m);
    assert_zeroed(&m);
  }
}

static void test_names(void **state) {
  static const struct {
    const char *s;
    size_t len;
    int domain, id;
  } rows[] = {
      {"B", 1, 1, 1},           {"cam-42.room_1~x", 15, 1, 1},
      {"AZaz09._~-", 10, 1, 1}, {A64, 64, 1, 1},
      {A64 "a", 65, 1, 0},      {A128, 128, 1, 0},
      {A128 "a", 129, 0, 0},    {"", 0, 0, 0},
      {"a/b", 3, 0, 0},         {"a b", 3, 0, 0},
      {"a%20", 4, 0, 0},        {"caf\xc3\xa9", 5, 0, 0},
      {"a\0b", 3, 0, 0},        {"a:b", 3, 0, 0},
      {"a+b", 3, 0, 0},         {"abc/", 3, 1, 1}, /* only len bytes are looked at */
  };
  (void)state;
  for (size_t i = 0; i < SIG_ARRAY_SIZE(rows); i++) {
    assert_int_equal(sig_msg_domain_valid(rows[i].s, rows[i].len), rows[i].domain);
    assert_int_equal(sig_msg_id_valid(rows[i].s, rows[i].len), rows[i].id);
  }
  assert_int_equal(sig_msg_domain_valid(NULL, 0), 0);
}

static void test_body_ok(void **state) {
  sig_msg_t m;
  char err[SIG_MSG_ERR_MAX] = "";
  const char *in = BODY_WITH("\"id\":\"call-1\"");
  (void)state;
  assert_int_equal(sig_msg_decode_offer_body(&m, in, strlen(in), err, sizeof err), 0);
  assert_int_equal(m.type, SIG_MSG_OFFER);
  assert_string_equal(m.offer_sdp, SDP);
  assert_string_equal(m.answer_domain, "B");
  assert_string_equal(m.offer_domain, "A");
  assert_string_equal(m.id, "call-1");
  assert_int_equal(m.ncandidates, 1);
  assert_non_null(m.arena);
  assert_int_equal(m.cand_raw_len, strlen("[\"" CAND "\"]"));
  assert_memory_equal(m.cand_raw, "[\"" CAND "\"]", m.cand_raw_len);
  assert_int_equal(m.sdp_raw_len, strlen("\"" SDP "\""));
  assert_memory_equal(m.sdp_raw, "\"" SDP "\"", m.sdp_raw_len);
  assert_null(m.answer_sdp);
  assert_null(m.to);
  sig_msg_free(&m);
  assert_zeroed(&m);
  sig_msg_free(&m); /* idempotent */
  sig_msg_free(NULL);
}

static void test_body_ok_variants(void **state) {
  static const char *oks[] = {
      REQ,
      " \n\t" REQ " \r\n",
      "{\"offer_sdp\":\"dj0=\",\"candidate\":[],\"answer_domain\":\"" A128
      "\",\"offer_domain\":\"" A64 "b\"}",
      "{\"offer_sdp\":\"dj0=\",\"candidate\":[],\"answer_domain\":\"x\",\"offer_domain\":\"y\","
      "\"id\":\"" A64 "\"}",
      BODY_WITH("\"extra\":{\"x\":[1,2,{\"y\":null}]},\"ty\":\"whatever\""),
      BODY_WITH("\"answer_resp\":{\"answer_sdp\":\"\"}"),
  };
  (void)state;
  for (size_t i = 0; i < SIG_ARRAY_SIZE(oks); i++) {
    sig_msg_t m;
    char err[SIG_MSG_ERR_MAX] = "";
    int rc = sig_msg_decode_offer_body(&m, oks[i], strlen(oks[i]), err, sizeof err);
    if (rc != 0) print_error("row %zu: %s: %s\n", i, oks[i], err);
    assert_int_equal(rc, 0);
    assert_int_equal(m.type, SIG_MSG_OFFER);
    sig_msg_free(&m);
  }
}

static void test_body_errors(void **state) {
  static const row_t rows[] = {
      /* not an object */
      ROW("", "body: invalid JSON: expected a value, found end of input at line 1 column 0"),
      ROW("   ", "body: invalid JSON: expected a value, found end of input at line 1 column 3"),
      ROW("{",
          "body: invalid JSON: expected a string key or '}', found end of input"
          " at line 1 column 1"),
      ROW("[]", "body: expected a JSON object"),
      ROW("42", "body: expected a JSON object"),
      ROW("\"x\"", "body: expected a JSON object"),
      ROW("null", "body: expected a JSON object"),
      ROW("true", "body: expected a JSON object"),
      /* trailing garbage, duplicates, bad UTF-8, raw NUL */
      ROW(REQ "x", "body: invalid JSON: " AFTER_VALUE "'x' at line 1 column 170"),
      ROW(REQ "{}", "body: invalid JSON: " AFTER_VALUE "'{' at line 1 column 170"),
      ROW(REQ "\0", "body: invalid JSON: " AFTER_VALUE "'\\x00' at line 1 column 170"),
      ROW("{\"offer_sdp\":\"dj0=\",\"offer_sdp\":\"dj0=\"}",
          "body: invalid JSON: duplicate key 'offer_sdp' at line 1 column 21"),
      ROW("{\"candidate\":[\"\xff\"]}",
          "body: invalid JSON: invalid UTF-8 byte 0xff in a string at line 1 column 16"),
      ROW("{\"candidate\":[\"\xc3\x28\"]}",
          "body: invalid JSON: invalid UTF-8 byte 0xc3 in a string at line 1 column 16"),
      ROW("{\"candidate\":[\"\xed\xa0\x80\"]}",
          "body: invalid JSON: invalid UTF-8 byte 0xed in a string at line 1 column 16"),
      ROW("{\"a\":\"\\ud800\"}",
          "body: invalid JSON: unpaired surrogate '\\ud800' in a string at line 1 column 7"),
      ROW("{\"a\":\"x\0y\"}",
          "body: invalid JSON: control character 0x00 in a string (escape it as \\u0000) at line 1 "
          "column 8"),
      ROW("\xef\xbb\xbf{}",
          "body: invalid JSON: byte order mark (U+FEFF) before the JSON text at line 1 column 1"),
      ROW("{'a':1}",
          "body: invalid JSON: expected a string key or '}', found '\\'' at line 1 column 2"),
      /* missing fields, in check order */
      ROW("{}", "offer_sdp: required"),
      ROW("{" F_CAND "," F_AD "," F_OD "}", "offer_sdp: required"),
      ROW("{" F_SDP "," F_AD "," F_OD "}", "candidate: required"),
      ROW("{" F_SDP "," F_CAND "," F_OD "}", "answer_domain: required"),
      ROW("{" F_SDP "," F_CAND "," F_AD "}", "offer_domain: required"),
      ROW("{\"offer_sdp\":1,\"candidate\":1,\"answer_domain\":1}", "offer_sdp: expected a string"),
      ROW("{" F_SDP ",\"candidate\":1,\"answer_domain\":1}",
          "candidate: expected an array of strings"),
      ROW("{" F_SDP "," F_CAND ",\"answer_domain\":\"\",\"offer_domain\":1,\"id\":2}",
          "answer_domain: " DOMAIN_RULE),
      ROW("{" F_SDP "," F_CAND "," F_AD ",\"offer_domain\":\"B\",\"id\":2}",
          "id: expected a string"),
      /* wrong types */
      ROW("{\"offer_sdp\":1}", "offer_sdp: expected a string"),
      ROW("{\"offer_sdp\":null}", "offer_sdp: expected a string"),
      ROW("{\"offer_sdp\":true}", "offer_sdp: expected a string"),
      ROW("{\"offer_sdp\":[\"dj0=\"]}", "offer_sdp: expected a string"),
      ROW("{\"offer_sdp\":{}}", "offer_sdp: expected a string"),
      ROW("{" F_SDP ",\"candidate\":\"" CAND "\"}", "candidate: expected an array of strings"),
      ROW("{" F_SDP ",\"candidate\":null}", "candidate: expected an array of strings"),
      ROW("{" F_SDP ",\"candidate\":{}}", "candidate: expected an array of strings"),
      ROW("{" F_SDP ",\"candidate\":[1]}", "candidate[0]: expected a string"),
      ROW("{" F_SDP ",\"candidate\":[\"a\",\"b\",null]}", "candidate[2]: expected a string"),
      ROW("{" F_SDP ",\"candidate\":[\"a\",[\"b\"]]}", "candidate[1]: expected a string"),
      ROW("{" F_SDP "," F_CAND ",\"answer_domain\":5}", "answer_domain: expected a string"),
      ROW("{" F_SDP "," F_CAND ",\"answer_domain\":null}", "answer_domain: expected a string"),
      ROW("{" F_SDP "," F_CAND "," F_AD ",\"offer_domain\":false}",
          "offer_domain: expected a string"),
      ROW("{" F_SDP "," F_CAND "," F_AD ",\"offer_domain\":[\"A\"]}",
          "offer_domain: expected a string"),
      ROW(BODY_WITH("\"id\":1"), "id: expected a string"),
      ROW(BODY_WITH("\"id\":null"), "id: expected a string"),
      ROW(BODY_WITH("\"id\":{}"), "id: expected a string"),
      /* NUL inside strings */
      ROW("{\"offer_sdp\":\"dj0=\\u0000\"}", "offer_sdp: must not contain NUL"),
      ROW("{" F_SDP ",\"candidate\":[\"a\\u0000b\"]}", "candidate[0]: must not contain NUL"),
      ROW("{" F_SDP ",\"candidate\":[\"a\",\"\\u0000\"]}", "candidate[1]: must not contain NUL"),
      ROW("{" F_SDP "," F_CAND ",\"answer_domain\":\"B\\u0000\"}",
          "answer_domain: must not contain NUL"),
      ROW("{" F_SDP "," F_CAND "," F_AD ",\"offer_domain\":\"\\u0000A\"}",
          "offer_domain: must not contain NUL"),
      ROW(BODY_WITH("\"id\":\"x\\u0000\""), "id: must not contain NUL"),
      /* bad domains */
      ROW("{" F_SDP "," F_CAND ",\"answer_domain\":\"\"}", "answer_domain: " DOMAIN_RULE),
      ROW("{" F_SDP "," F_CAND ",\"answer_domain\":\"" A128 "a\"}", "answer_domain: " DOMAIN_RULE),
      ROW("{" F_SDP "," F_CAND ",\"answer_domain\":\"a/b\"}", "answer_domain: " DOMAIN_RULE),
      ROW("{" F_SDP "," F_CAND ",\"answer_domain\":\"a b\"}", "answer_domain: " DOMAIN_RULE),
      ROW("{" F_SDP "," F_CAND ",\"answer_domain\":\"a%20b\"}", "answer_domain: " DOMAIN_RULE),
      ROW("{" F_SDP "," F_CAND ",\"answer_domain\":\"caf\\u00e9\"}", "answer_domain: " DOMAIN_RULE),
      ROW("{" F_SDP "," F_CAND ",\"answer_domain\":\"caf\xc3\xa9\"}",
          "answer_domain: " DOMAIN_RULE),
      ROW("{" F_SDP "," F_CAND ",\"answer_domain\":\"B\\n\"}", "answer_domain: " DOMAIN_RULE),
      ROW("{" F_SDP "," F_CAND "," F_AD ",\"offer_domain\":\"\"}", "offer_domain: " DOMAIN_RULE),
      ROW("{" F_SDP "," F_CAND "," F_AD ",\"offer_domain\":\"" A128 "b\"}",
          "offer_domain: " DOMAIN_RULE),
      ROW("{" F_SDP "," F_CAND "," F_AD ",\"offer_domain\":\"x/\"}", "offer_domain: " DOMAIN_RULE),
      ROW("{" F_SDP "," F_CAND "," F_AD ",\"offer_domain\":\" \"}", "offer_domain: " DOMAIN_RULE),
      ROW("{" F_SDP "," F_CAND "," F_AD ",\"offer_domain\":\"%\"}", "offer_domain: " DOMAIN_RULE),
      ROW("{" F_SDP "," F_CAND "," F_AD ",\"offer_domain\":\"\xe2\x98\x83\"}",
          "offer_domain: " DOMAIN_RULE),
      /* bad ids */
      ROW(BODY_WITH("\"id\":\"\""), "id: " ID_RULE),
      ROW(BODY_WITH("\"id\":\"" A64 "a\""), "id: " ID_RULE),
      ROW(BODY_WITH("\"id\":\"a/b\""), "id: " ID_RULE),
      ROW(BODY_WITH("\"id\":\"a b\""), "id: " ID_RULE),
      ROW(BODY_WITH("\"id\":\"\\u00e9\""), "id: " ID_RULE),
      /* same domain twice; id is checked first */
      ROW("{" F_SDP "," F_CAND ",\"answer_domain\":\"A\"," F_OD "}",
          "answer_domain: must differ from offer_domain"),
      ROW("{" F_SDP "," F_CAND ",\"answer_domain\":\"A\"," F_OD ",\"id\":\"\"}", "id: " ID_RULE),
  };
  (void)state;
  run_body_rows(rows, SIG_ARRAY_SIZE(rows));
}

/* Each SDP text (JSON-escaped) with the reason it is refused, NULL if accepted. */
static const struct {
  const char *sdp;
  const char *reason;
} sdp_rows[] = {
    {SDP, NULL},
    {"dj0wDQo=", NULL},
    {"dj0=", NULL},
    {"dj0w", NULL},
    {"dj0wMQ==", NULL},
    {"dj0wDQ==", NULL},
    {"dj1=", NULL},     /* padding bits need not be zero */
    {"dj0wDR==", NULL}, /* likewise */
    {"dj0wDQo", "not valid base64"},
    {"dj0wDQo==", "not valid base64"},
    {"dj0wD", "not valid base64"},
    {"dj0wDQ=o", "not valid base64"},
    {"dj0wD===", "not valid base64"},
    {"====", "not valid base64"},
    {"d===", "not valid base64"},
    {"dj0w=Qo=", "not valid base64"},
    {"dj0=dj0=", "not valid base64"},
    {"dj0wDQo=dj0=", "not valid base64"},
    {"dj0wDQo=\\n", "not valid base64"},
    {"dj0wDQo=\\r\\n", "not valid base64"},
    {"dj0wDQ\\no", "not valid base64"},
    {" dj0wDQo", "not valid base64"},
    {"dj0w DQo", "not valid base64"},
    {"dj0wDQo\\t", "not valid base64"},
    {" dj0wDQo= ", "not valid base64"},
    {"dj0w-Qo=", "not valid base64"},
    {"dj0w_Qo=", "not valid base64"},
    {"dj0w!Qo=", "not valid base64"},
    {"dj0w.Qo=", "not valid base64"},
    {"dj0w\\u00e9Qo", "not valid base64"},
    {"dj0wDQo=\\u00e9", "not valid base64"},
    {"", NOT_SDP},
    {"aGVsbG8=", NOT_SDP},
    {"dg==", NOT_SDP},
    {"dj==", NOT_SDP},
    {"Dj0w", NOT_SDP},
    {"dj4w", NOT_SDP},
    {"VjA9", NOT_SDP},
};

static void test_sdp_base64(void **state) {
  (void)state;
  for (size_t i = 0; i < SIG_ARRAY_SIZE(sdp_rows); i++) {
    char in[512], want[256], err[SIG_MSG_ERR_MAX] = "";
    sig_msg_t m;
    int n, rc;
    const char *reason = sdp_rows[i].reason;

    n = snprintf(in, sizeof in, "{\"offer_sdp\":\"%s\",\"candidate\":[],%s,%s}", sdp_rows[i].sdp,
                 F_AD, F_OD);
    rc = sig_msg_decode_offer_body(&m, in, (size_t)n, err, sizeof err);
    if (reason == NULL) {
      if (rc != 0) print_error("row %zu: %s\n", i, err);
      assert_int_equal(rc, 0);
    } else {
      snprintf(want, sizeof want, "offer_sdp: %s", reason);
      assert_int_equal(rc, SIG_EBADMSG);
      assert_string_equal(err, want);
    }
    sig_msg_free(&m);

    n = snprintf(in, sizeof in, "{\"ty\":\"offer\",\"offer_req\":{\"offer_sdp\":\"%s\",%s,%s}}",
                 sdp_rows[i].sdp, "\"candidate\":[]", F_AD);
    rc = sig_msg_decode_frame(&m, in, (size_t)n, err, sizeof err);
    if (reason == NULL) {
      assert_int_equal(rc, 0);
    } else {
      snprintf(want, sizeof want, "offer_req.offer_sdp: %s", reason);
      assert_int_equal(rc, SIG_EBADMSG);
      assert_string_equal(err, want);
    }
    sig_msg_free(&m);

    n = snprintf(in, sizeof in,
                 "{\"ty\":\"answer\",\"answer_resp\":{\"answer_sdp\":\"%s\",\"candidate\":[]}}",
                 sdp_rows[i].sdp);
    rc = sig_msg_decode_frame(&m, in, (size_t)n, err, sizeof err);
    if (reason == NULL) {
      assert_int_equal(rc, 0);
    } else {
      snprintf(want, sizeof want, "answer_resp.answer_sdp: %s", reason);
      assert_int_equal(rc, SIG_EBADMSG);
      assert_string_equal(err, want);
    }
    sig_msg_free(&m);
  }
}

static void test_frame_errors(void **state) {
  static const row_t rows[] = {
      /* envelope */
      ROW("", "body: invalid JSON: expected a value, found end of input at line 1 column 0"),
      ROW("[\"offer\"]", "body: expected a JSON object"),
      ROW("\"offer\"", "body: expected a JSON object"),
      ROW("{\"ty\":\"bye\",\"to\":\"B\"} x",
          "body: invalid JSON: " AFTER_VALUE "'x' at line 1 column 23"),
      ROW("{\"ty\":\"bye\",\"ty\":\"bye\",\"to\":\"B\"}",
          "body: invalid JSON: duplicate key 'ty' at line 1 column 13"),
      ROW("{\"ty\":\"bye\",\"to\":\"\xff\"}",
          "body: invalid JSON: invalid UTF-8 byte 0xff in a string at line 1 column 19"),
      ROW("{}", "ty: required"),
      ROW("{\"to\":\"B\"}", "ty: required"),
      ROW("{\"ty\":1}", "ty: expected a string"),
      ROW("{\"ty\":null}", "ty: expected a string"),
      ROW("{\"ty\":[\"offer\"]}", "ty: expected a string"),
      ROW("{\"ty\":\"offer\\u0000\"}", "ty: must not contain NUL"),
      ROW("{\"ty\":\"hello\"}", "ty: unknown message type 'hello'"),
      ROW("{\"ty\":\"\"}", "ty: unknown message type ''"),
      ROW("{\"ty\":\"OFFER\"}", "ty: unknown message type 'OFFER'"),
      ROW("{\"ty\":\"error\"}", "ty: unknown message type 'error'"),
      ROW("{\"ty\":\"offer \"}", "ty: unknown message type 'offer '"),
      ROW("{\"ty\":\"" A8 A8 A8 A8 "\"}", "ty: unknown message type '" A8 A8 A8 A8 "'"),
      ROW("{\"ty\":\"" A8 A8 A8 A8 "b\"}", "ty: unknown message type '" A8 A8 A8 A8 "...'"),
      ROW("{\"ty\":\"a'b\\\\c\\u0001\\n\\u007f\\u00e9\\u0085\\u202e\\ud83d\\ude00\"}",
          "ty: unknown message type 'a\\'b\\\\c\\x01\\x0a\\x7f\xc3\xa9\\xc2\\x85\\xe2\\x80\\xae"
          "\xf0\x9f\x98\x80'"),
      /* offer */
      ROW("{\"ty\":\"offer\"}", "offer_req: required"),
      ROW("{\"ty\":\"offer\"," F_SDP "," F_CAND "," F_AD "}", "offer_req: required"),
      ROW("{\"ty\":\"offer\",\"offer_req\":\"x\"}", "offer_req: expected an object"),
      ROW("{\"ty\":\"offer\",\"offer_req\":null}", "offer_req: expected an object"),
      ROW("{\"ty\":\"offer\",\"offer_req\":[]}", "offer_req: expected an object"),
      ROW("{\"ty\":\"offer\",\"offer_req\":{}}", "offer_req.offer_sdp: required"),
      ROW("{\"ty\":\"offer\",\"offer_req\":{\"offer_sdp\":7}}",
          "offer_req.offer_sdp: expected a string"),
      ROW("{\"ty\":\"offer\",\"offer_req\":{\"offer_sdp\":\"x\"}}",
          "offer_req.offer_sdp: not valid base64"),
      ROW("{\"ty\":\"offer\",\"offer_req\":{" F_SDP "}}", "offer_req.candidate: required"),
      ROW("{\"ty\":\"offer\",\"offer_req\":{" F_SDP ",\"candidate\":{}}}",
          "offer_req.candidate: expected an array of strings"),
      ROW("{\"ty\":\"offer\",\"offer_req\":{" F_SDP ",\"candidate\":[\"\",1]}}",
          "offer_req.candidate[1]: expected a string"),
      ROW("{\"ty\":\"offer\",\"offer_req\":{" F_SDP ",\"candidate\":[\"\\u0000\"]}}",
          "offer_req.candidate[0]: must not contain NUL"),
      ROW("{\"ty\":\"offer\",\"offer_req\":{" F_SDP "," F_CAND "}}",
          "offer_req.answer_domain: required"),
      ROW("{\"ty\":\"offer\",\"offer_req\":{" F_SDP "," F_CAND ",\"answer_domain\":\"a/b\"}}",
          "offer_req.answer_domain: " DOMAIN_RULE),
      ROW("{\"ty\":\"offer\",\"offer_req\":{" F_SDP "," F_CAND "," F_AD ",\"offer_domain\":1}}",
          "offer_req.offer_domain: expected a string"),
      ROW("{\"ty\":\"offer\",\"offer_req\":{" F_SDP "," F_CAND "," F_AD ",\"offer_domain\":\"\"}}",
          "offer_req.offer_domain: " DOMAIN_RULE),
      ROW("{\"ty\":\"offer\",\"offer_req\":{" F_SDP "," F_CAND "," F_AD ",\"offer_domain\":\"B\"}}",
          "offer_req.answer_domain: must differ from offer_req.offer_domain"),
      ROW("{\"ty\":\"offer\",\"offer_req\":" REQ ",\"id\":\"" A64 "a\"}", "id: " ID_RULE),
      ROW("{\"ty\":\"offer\",\"offer_req\":" REQ ",\"id\":3}", "id: expected a string"),
      ROW("{\"ty\":\"offer\",\"id\":\"x/\",\"offer_req\":{}}", "offer_req.offer_sdp: required"),
      /* answer */
      ROW("{\"ty\":\"answer\"}", "answer_resp: required"),
      ROW("{\"ty\":\"answer\",\"offer_req\":" REQ "}", "answer_resp: required"),
      ROW("{\"ty\":\"answer\",\"answer_resp\":1}", "answer_resp: expected an object"),
      ROW("{\"ty\":\"answer\",\"answer_resp\":{}}", "answer_resp.answer_sdp: required"),
      ROW("{\"ty\":\"answer\",\"answer_resp\":{\"answer_sdp\":null}}",
          "answer_resp.answer_sdp: expected a string"),
      ROW("{\"ty\":\"answer\",\"answer_resp\":{\"answer_sdp\":\"dj0w\\u0000\"}}",
          "answer_resp.answer_sdp: must not contain NUL"),
      ROW("{\"ty\":\"answer\",\"answer_resp\":{\"answer_sdp\":\"dj0w DQo=\"}}",
          "answer_resp.answer_sdp: not valid base64"),
      ROW("{\"ty\":\"answer\",\"answer_resp\":{\"answer_sdp\":\"aGVsbG8=\"}}",
          "answer_resp.answer_sdp: " NOT_SDP),
      ROW("{\"ty\":\"answer\",\"answer_resp\":{\"answer_sdp\":\"dj0=\"}}",
          "answer_resp.candidate: required"),
      ROW("{\"ty\":\"answer\",\"answer_resp\":{\"answer_sdp\":\"dj0=\",\"candidate\":\"c\"}}",
          "answer_resp.candidate: expected an array of strings"),
      ROW("{\"ty\":\"answer\",\"answer_resp\":{\"answer_sdp\":\"dj0=\",\"candidate\":[\"c\","
          "\"\\u0000\"]}}",
          "answer_resp.candidate[1]: must not contain NUL"),
      ROW("{\"ty\":\"answer\",\"answer_resp\":{\"answer_sdp\":\"dj0=\",\"candidate\":[],"
          "\"answer_domain\":5}}",
          "answer_resp.answer_domain: expected a string"),
      ROW("{\"ty\":\"answer\",\"answer_resp\":{\"answer_sdp\":\"dj0=\",\"candidate\":[],"
          "\"answer_domain\":\"\"}}",
          "answer_resp.answer_domain: " DOMAIN_RULE),
      ROW("{\"ty\":\"answer\",\"answer_resp\":" RESP ",\"offer_req\":\"A\"}",
          "offer_req: expected an object"),
      ROW("{\"ty\":\"answer\",\"answer_resp\":" RESP ",\"offer_req\":{\"offer_domain\":1}}",
          "offer_req.offer_domain: expected a string"),
      ROW("{\"ty\":\"answer\",\"answer_resp\":" RESP ",\"offer_req\":{\"offer_domain\":\"\"}}",
          "offer_req.offer_domain: " DOMAIN_RULE),
      ROW("{\"ty\":\"answer\",\"answer_resp\":" RESP ",\"offer_req\":{\"offer_domain\":\"a b\"}}",
          "offer_req.offer_domain: " DOMAIN_RULE),
      ROW("{\"ty\":\"answer\",\"answer_resp\":" RESP ",\"id\":\"\"}", "id: " ID_RULE),
      /* candidate */
      ROW("{\"ty\":\"candidate\"}", "to: required"),
      ROW("{\"ty\":\"candidate\",\"candidate\":[]}", "to: required"),
      ROW("{\"ty\":\"candidate\",\"to\":1}", "to: expected a string"),
      ROW("{\"ty\":\"candidate\",\"to\":\"\"}", "to: " DOMAIN_RULE),
      ROW("{\"ty\":\"candidate\",\"to\":\"a b\"}", "to: " DOMAIN_RULE),
      ROW("{\"ty\":\"candidate\",\"to\":\"B\\u0000\"}", "to: must not contain NUL"),
      ROW("{\"ty\":\"candidate\",\"to\":\"B\"}", "candidate: required"),
      ROW("{\"ty\":\"candidate\",\"to\":\"B\",\"candidate\":\"c\"}",
          "candidate: expected an array of strings"),
      ROW("{\"ty\":\"candidate\",\"to\":\"B\",\"candidate\":[{}]}",
          "candidate[0]: expected a string"),
      ROW("{\"ty\":\"candidate\",\"to\":\"B\",\"candidate\":[],\"id\":\"\"}", "id: " ID_RULE),
      /* bye */
      ROW("{\"ty\":\"bye\"}", "to: required"),
      ROW("{\"ty\":\"bye\",\"to\":null}", "to: expected a string"),
      ROW("{\"ty\":\"bye\",\"to\":\"x/y\"}", "to: " DOMAIN_RULE),
      ROW("{\"ty\":\"bye\",\"to\":\"" A128 "a\"}", "to: " DOMAIN_RULE),
      ROW("{\"ty\":\"bye\",\"to\":\"B\",\"id\":\"" A64 "a\"}", "id: " ID_RULE),
      ROW("{\"ty\":\"bye\",\"to\":\"B\",\"id\":\"\\u0000\"}", "id: must not contain NUL"),
  };
  (void)state;
  run_frame_rows(rows, SIG_ARRAY_SIZE(rows));
}

static void test_frame_error_keeps_id(void **state) {
  static const struct {
    const char *in;
    const char *id; /* NULL: nothing kept */
  } rows[] = {
      {"{\"ty\":\"hello\",\"id\":\"call-9\"}", "call-9"},
      {"{\"id\":\"call-9\"}", "call-9"},
      {"{\"ty\":\"bye\",\"to\":\"a b\",\"id\":\"x\"}", "x"},
      {"{\"ty\":\"answer\",\"id\":\"" A64 "\"}", A64},
      {"{\"ty\":\"hello\",\"id\":\"bad id\"}", NULL},
      {"{\"ty\":\"hello\",\"id\":\"" A64 "a\"}", NULL},
      {"{\"ty\":\"hello\",\"id\":7}", NULL},
      {"{\"ty\":\"hello\",\"id\":\"x\\u0000\"}", NULL},
      {"{\"ty\":\"hello\"}", NULL},
      {"{\"id\":\"x\"} x", NULL},
  };
  (void)state;
  for (size_t i = 0; i < SIG_ARRAY_SIZE(rows); i++) {
    sig_msg_t m;
    char err[SIG_MSG_ERR_MAX];
    assert_int_equal(sig_msg_decode_frame(&m, rows[i].in, strlen(rows[i].in), err, sizeof err),
                     SIG_EBADMSG);
    if (rows[i].id == NULL) {
      assert_zeroed(&m);
    } else {
      assert_string_equal(m.id, rows[i].id);
      assert_non_null(m.arena);
      assert_int_equal(m.type, 0);
      assert_null(m.to);
      assert_null(m.cand_raw);
    }
    sig_msg_free(&m);
    assert_zeroed(&m);
  }
}

static void test_err_buffer(void **state) {
  sig_msg_t m;
  char err[8];
  (void)state;
  assert_int_equal(sig_msg_decode_frame(&m, "{}", 2, NULL, 0), SIG_EBADMSG);
  sig_msg_free(&m);
  assert_int_equal(sig_msg_decode_offer_body(&m, "{}", 2, err, sizeof err), SIG_EBADMSG);
  assert_string_equal(err, "offer_s"); /* truncated, terminated */
  assert_int_equal(sig_msg_decode_frame(&m, NULL, 0, err, sizeof err), SIG_EBADMSG);
  assert_string_equal(err, "body: i");
}

static void test_frame_offer(void **state) {
  sig_msg_t m;
  char err[SIG_MSG_ERR_MAX] = "";
  const char *in =
      "{\"ty\":\"offer\",\"id\":\"c1\",\"offer_req\":" REQ
      ",\"answer_resp\":{\"answer_sdp\":\"\",\"candidate\":[],\"answer_domain\":\"B\"}}";
  const char *no_od =
      "{\"offer_req\":{\"candidate\":[],\"offer_sdp\":\"dj0=\",\"answer_domain\":\"B\"},"
      "\"ty\":\"offer\"}";
  (void)state;
  assert_int_equal(sig_msg_decode_frame(&m, in, strlen(in), err, sizeof err), 0);
  assert_int_equal(m.type, SIG_MSG_OFFER);
  assert_string_equal(m.id, "c1");
  assert_string_equal(m.offer_sdp, SDP);
  assert_string_equal(m.answer_domain, "B");
  assert_string_equal(m.offer_domain, "A");
  assert_int_equal(m.ncandidates, 1);
  sig_msg_free(&m);

  assert_int_equal(sig_msg_decode_frame(&m, no_od, strlen(no_od), err, sizeof err), 0);
  assert_int_equal(m.type, SIG_MSG_OFFER);
  assert_null(m.id);
  assert_null(m.offer_domain);
  assert_string_equal(m.offer_sdp, "dj0=");
  assert_int_equal(m.ncandidates, 0);
  sig_msg_free(&m);
}

static void test_frame_answer(void **state) {
  sig_msg_t m;
  char err[SIG_MSG_ERR_MAX] = "";
  /* the offer push echoed back with answer_resp filled in */
  const char *echo =
      "{\"ty\":\"answer\",\"id\":\"call-1\",\"answer_resp\":{\"answer_sdp\":\"dj0wDQo=\","
      "\"candidate\":[\"c1\",\"c2\"],\"answer_domain\":\"B\"},\"offer_req\":{\"offer_sdp\":\"\","
      "\"candidate\":[],\"answer_domain\":\"B\",\"offer_domain\":\"A\"}}";
  const char *bare =
      "{\"ty\":\"answer\",\"answer_resp\":{\"answer_sdp\":\"dj0=\",\"candidate\":[]}}";
  const char *no_echo =
      "{\"ty\":\"answer\",\"answer_resp\":" RESP ",\"offer_req\":{\"offer_sdp\":5}}";
  (void)state;
  assert_int_equal(sig_msg_decode_frame(&m, echo, strlen(echo), err, sizeof err), 0);
  assert_int_equal(m.type, SIG_MSG_ANSWER);
  assert_string_equal(m.id, "call-1");
  assert_string_equal(m.answer_sdp, "dj0wDQo=");
  assert_string_equal(m.answer_domain, "B");
  assert_string_equal(m.echo_offer_domain, "A");
  assert_int_equal(m.ncandidates, 2);
  assert_null(m.offer_sdp);
  assert_null(m.offer_domain);
  sig_msg_free(&m);

  assert_int_equal(sig_msg_decode_frame(&m, bare, strlen(bare), err, sizeof err), 0);
  assert_int_equal(m.type, SIG_MSG_ANSWER);
  assert_null(m.id);
  assert_null(m.answer_domain);
  assert_null(m.echo_offer_domain);
  assert_int_equal(m.ncandidates, 0);
  sig_msg_free(&m);

  assert_int_equal(sig_msg_decode_frame(&m, no_echo, strlen(no_echo), err, sizeof err), 0);
  assert_null(m.echo_offer_domain);
  assert_string_equal(m.answer_domain, "B");
  sig_msg_free(&m);
}

static void test_frame_candidate_bye(void **state) {
  sig_msg_t m;
  char err[SIG_MSG_ERR_MAX] = "";
  const char *cand =
      "{\"ty\":\"candidate\",\"to\":\"B\",\"candidate\":[\"a\",\"b\",\"c\"],\"x\":1}";
  const char *bye = "{\"ty\":\"bye\",\"id\":\"call-1\",\"to\":\"peer.B\"}";
  (void)state;
  assert_int_equal(sig_msg_decode_frame(&m, cand, strlen(cand), err, sizeof err), 0);
  assert_int_equal(m.type, SIG_MSG_CANDIDATE);
  assert_null(m.id);
  assert_string_equal(m.to, "B");
  assert_int_equal(m.ncandidates, 3);
  sig_msg_free(&m);

  assert_int_equal(sig_msg_decode_frame(&m, bye, strlen(bye), err, sizeof err), 0);
  assert_int_equal(m.type, SIG_MSG_BYE);
  assert_string_equal(m.id, "call-1");
  assert_string_equal(m.to, "peer.B");
  assert_null(m.cand_raw);
  sig_msg_free(&m);
}

/* Checks the encoder's output and its length, then frees it. */
static void expect_json(char *got, const size_t *len, const char *want) {
  assert_non_null(got);
  assert_string_equal(got, want);
  assert_int_equal(*len, strlen(want));
  free(got);
}

static void test_encode_offer_push(void **state) {
  sig_msg_t m;
  char err[SIG_MSG_ERR_MAX];
  size_t len = 0;
  const char *body = BODY_WITH("\"id\":\"call-1\",\"junk\":1");
  const char *ws =
      "{\"ty\":\"offer\",\"offer_req\":{\"offer_sdp\":\"dj0=\",\"candidate\":[],"
      "\"answer_domain\":\"B\"}}";
  (void)state;
  assert_int_equal(sig_msg_decode_offer_body(&m, body, strlen(body), err, sizeof err), 0);
  expect_json(sig_msg_encode_offer_push(&m, m.id, m.offer_domain, &len), &len,
              "{\"ty\":\"offer\",\"id\":\"call-1\",\"offer_req\":{\"offer_sdp\":\"" SDP
              "\",\"candidate\":[\"" CAND
              "\"],\"answer_domain\":\"B\",\"offer_domain\":\"A\"},\"answer_resp\":{"
              "\"answer_sdp\":\"\",\"candidate\":[],\"answer_domain\":\"B\"}}");
  sig_msg_free(&m);

  assert_int_equal(sig_msg_decode_frame(&m, ws, strlen(ws), err, sizeof err), 0);
  expect_json(
      sig_msg_encode_offer_push(&m, "7", "A", &len), &len,
      "{\"ty\":\"offer\",\"id\":\"7\",\"offer_req\":{\"offer_sdp\":\"dj0=\",\"candidate\":[],"
      "\"answer_domain\":\"B\",\"offer_domain\":\"A\"},\"answer_resp\":{"
      "\"answer_sdp\":\"\",\"candidate\":[],\"answer_domain\":\"B\"}}");
  sig_msg_free(&m);

  /* a hand-filled message: no raw JSON text behind it */
  memset(&m, 0, sizeof m);
  m.type = SIG_MSG_OFFER;
  m.offer_sdp = "dj0=";
  m.answer_domain = "B";
  m.offer_domain = "A";
  expect_json(
      sig_msg_encode_offer_push(&m, "x", NULL, &len), &len,
      "{\"ty\":\"offer\",\"id\":\"x\",\"offer_req\":{\"offer_sdp\":\"dj0=\",\"candidate\":[],"
      "\"answer_domain\":\"B\",\"offer_domain\":\"A\"},\"answer_resp\":{"
      "\"answer_sdp\":\"\",\"candidate\":[],\"answer_domain\":\"B\"}}");
  free(sig_msg_encode_offer_push(&m, "x", NULL, NULL)); /* len may be NULL */
}

static void test_encode_answer_push(void **state) {
  sig_msg_t m;
  char err[SIG_MSG_ERR_MAX];
  size_t len = 0;
  const char *in =
      "{\"ty\":\"answer\",\"answer_resp\":{\"candidate\":[\"c1\",\"c2\"],"
      "\"answer_sdp\":\"dj0wDQo=\"}}";
  (void)state;
  assert_int_equal(sig_msg_decode_frame(&m, in, strlen(in), err, sizeof err), 0);
  expect_json(
      sig_msg_encode_answer_push(&m, "call-1", "B", "A", &len), &len,
      "{\"ty\":\"answer\",\"id\":\"call-1\",\"answer_resp\":{\"answer_sdp\":\"dj0wDQo=\","
      "\"candidate\":[\"c1\",\"c2\"],\"answer_domain\":\"B\"},\"offer_req\":{"
      "\"offer_sdp\":\"\",\"candidate\":[],\"answer_domain\":\"B\",\"offer_domain\":\"A\"}}");
  sig_msg_free(&m);
}

static void test_encode_small(void **state) {
  size_t len = 0;
  (void)state;
  expect_json(sig_msg_encode_bye("call-1", "A", "hangup", &len), &len,
              "{\"ty\":\"bye\",\"id\":\"call-1\",\"from\":\"A\",\"reason\":\"hangup\"}");
  expect_json(sig_msg_encode_error(404, "to: no exchange with 'C'", "call-9", &len), &len,
              "{\"ty\":\"error\",\"status\":404,\"msg\":\"to: no exchange with 'C'\","
              "\"id\":\"call-9\"}");
  expect_json(sig_msg_encode_error(400, "ty: required", NULL, &len), &len,
              "{\"ty\":\"error\",\"status\":400,\"msg\":\"ty: required\",\"id\":null}");
  expect_json(sig_msg_encode_resp_id("call-1", &len), &len,
              "{\"code\":0,\"msg\":\"ok\",\"data\":{\"id\":\"call-1\"}}");
  expect_json(sig_msg_encode_resp_error("answer_domain: 'B' is not connected", &len), &len,
              "{\"code\":-1,\"msg\":\"answer_domain: 'B' is not connected\",\"data\":null}");
  expect_json(sig_msg_encode_resp_health(3, 2, 1, &len), &len,
              "{\"code\":0,\"msg\":\"ok\",\"data\":{\"connections\":3,\"domains\":2,"
              "\"exchanges\":1}}");
  expect_json(sig_msg_encode_resp_health(0, UINT64_MAX, (uint64_t)INT64_MAX + 1, &len), &len,
              "{\"code\":0,\"msg\":\"ok\",\"data\":{\"connections\":0,\"domains\":"
              "9223372036854775807,\"exchanges\":9223372036854775807}}");
}

static void test_encode_escaping(void **state) {
  size_t len = 0;
  sig_msg_t m;
  char err[SIG_MSG_ERR_MAX];
  const char *bad_ty = "{\"ty\":\"x\\\"y\\n\\u00e9\xff\"}";
  const char *bad_ty2 = "{\"ty\":\"<\\\"'\\\\>\\u0000\\b\",\"id\":\"e1\"}";
  const char *bad_ty3 = "{\"ty\":\"<\\\"'\\\\>\\b\",\"id\":\"e1\"}";
  (void)state;
  /* quotes, backslashes, controls, invalid UTF-8 (becomes U+FFFD), non-ASCII kept as UTF-8 */
  expect_json(sig_msg_encode_error(400, "a\"b\\c\n\t\x01\x7f/\xc3\xa9\xff\xc3 end", "i", &len),
              &len,
              "{\"ty\":\"error\",\"status\":400,\"msg\":\"a\\\"b\\\\c\\n\\t\\u0001\x7f/\xc3\xa9"
              "\xef\xbf\xbd\xef\xbf\xbd end\",\"id\":\"i\"}");
  expect_json(sig_msg_encode_resp_error("\xed\xa0\x80!", &len), &len,
              "{\"code\":-1,\"msg\":\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd!\",\"data\":null}");
  expect_json(sig_msg_encode_bye("\xf0\x9f\x98\x80", "\xc0\xaf", "\xf4\x90\x80\x80", &len), &len,
              "{\"ty\":\"bye\",\"id\":\"\xf0\x9f\x98\x80\",\"from\":\"\xef\xbf\xbd\xef\xbf\xbd\","
              "\"reason\":\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"}");

  /* invalid UTF-8 never reaches the decoder's fields: the scanner refuses it first */
  assert_int_equal(sig_msg_decode_frame(&m, bad_ty, strlen(bad_ty), err, sizeof err), SIG_EBADMSG);
  sig_msg_free(&m);
  assert_int_equal(sig_msg_decode_frame(&m, bad_ty2, strlen(bad_ty2), err, sizeof err),
                   SIG_EBADMSG);
  assert_string_equal(err, "ty: must not contain NUL");
  assert_string_equal(m.id, "e1");
  sig_msg_free(&m);
  assert_int_equal(sig_msg_decode_frame(&m, bad_ty3, strlen(bad_ty3), err, sizeof err),
                   SIG_EBADMSG);
  assert_string_equal(err, "ty: unknown message type '<\"\\'\\\\>\\x08'");
  expect_json(sig_msg_encode_error(400, err, m.id, &len), &len,
              "{\"ty\":\"error\",\"status\":400,\"msg\":\"ty: unknown message type "
              "'<\\\"\\\\'\\\\\\\\>\\\\x08'\",\"id\":\"e1\"}");
  sig_msg_free(&m);
}

static void test_candidate_round_trip(void **state) {
  sig_msg_t m;
  char err[SIG_MSG_ERR_MAX];
  size_t len = 0;
  char *out;
  const char *prefix = "{\"ty\":\"candidate\",\"id\":null,\"from\":\"A\",\"candidate\":[\"{";
  /* relayed as the client wrote them: escapes are passed through, not re-encoded */
#define ROUND_TRIP_CANDS                                                     \
  "[\"{\\\"candidate\\\":\\\"candidate:1 1 udp 1 192.0.2.1 5 typ "           \
  "host\\\",\\\"sdpMid\\\":\\\"0\\\"}\","                                    \
  "\"caf\\u00e9 \xe6\x97\xa5\xe6\x9c\xac \\ud83d\\ude00 \xf0\x9f\x98\x80\"," \
  "\"tab\\there\\nnl\\r\\\\ \\/ \\u001f \\u007f \\u2028\","                  \
  "\"\"]"
  const char *in =
      "{\"ty\":\"candidate\",\"id\":\"c-1\",\"to\":\"B\",\"candidate\":" ROUND_TRIP_CANDS "}";
  (void)state;
  assert_int_equal(sig_msg_decode_frame(&m, in, strlen(in), err, sizeof err), 0);
  assert_int_equal(m.ncandidates, 4);
  out = sig_msg_encode_candidate(&m, "c-1", "A", &len);
  assert_string_equal(
      out,
      "{\"ty\":\"candidate\",\"id\":\"c-1\",\"from\":\"A\",\"candidate\":" ROUND_TRIP_CANDS "}");
  assert_int_equal(len, strlen(out));
  free(out);

  /* the decoded message is unchanged by encoding it, and can be encoded again */
  out = sig_msg_encode_candidate(&m, NULL, "A", &len);
  assert_int_equal(strncmp(out, prefix, strlen(prefix)), 0);
  free(out);
  sig_msg_free(&m);
#undef ROUND_TRIP_CANDS
}

static void test_large_sdp(void **state) {
  /* an SDP large enough to make the output buffer grow past its first guess's headroom */
  size_t n = 40000, len = 0;
  char *body = malloc(n + 256), *sdp = body + 14, *out;
  char err[SIG_MSG_ERR_MAX];
  sig_msg_t m;
  int k;
  (void)state;
  memcpy(body, "{\"offer_sdp\":\"dj0w", 18);
  memset(body + 18, 'A', n - 4);
  k = snprintf(body + 14 + n, 200, "\",\"candidate\":[\"\\u0001\\u0001\\u0001\\u0001\"],%s,%s}",
               F_AD, F_OD);
  assert_int_equal(sig_msg_decode_offer_body(&m, body, 14 + n + (size_t)k, err, sizeof err), 0);
  assert_int_equal(strlen(m.offer_sdp), n);
  out = sig_msg_encode_offer_push(&m, "big", NULL, &len);
  assert_int_equal(len, strlen(out));
  assert_non_null(strstr(out, "\\u0001\\u0001\\u0001\\u0001"));
  assert_memory_equal(strstr(out, "dj0w"), sdp, n);
  free(out);
  sig_msg_free(&m);
  free(body);
}

#define BAD(in, what) ROW(in, "body: invalid JSON: " what)
#define AFTER_MEMBER "expected ',' or '}' after an object member, found "
#define ESCAPES "(valid: \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)"

/* Every class of JSON syntax error, with its position (column counts characters). */
static void test_json_syntax_errors(void **state) {
  static const row_t rows[] = {
      /* unterminated */
      BAD("{\"ty\":\"bye", "unterminated string at line 1 column 10"),
      BAD("{\"ty\":\"bye\\", "unterminated string at line 1 column 11"),
      BAD("{\"ty\":\"bye\\u00", "unterminated string at line 1 column 14"),
      BAD("{\"a\":\"\\ud83d\\", "unterminated string at line 1 column 13"),
      BAD("{\"ty\":\"bye\"", AFTER_MEMBER "end of input at line 1 column 11"),
      BAD("{\"ty\":", "expected a value, found end of input at line 1 column 6"),
      BAD("{\"ty\"", "expected ':' after the key, found end of input at line 1 column 5"),
      BAD("{\"a\":[1,2",
          "expected ',' or ']' after an array element, found end of input at line 1 column 9"),
      BAD("{\"a\":[", "expected a value, found end of input at line 1 column 6"),
      BAD("{\"a\":{", "expected a string key or '}', found end of input at line 1 column 6"),
      BAD("{\"a\":{\"b\":[{}",
          "expected ',' or ']' after an array element, found end of input at line 1 column 13"),
      /* escapes */
      BAD("{\"a\":\"\\x\"}", "invalid escape '\\x' " ESCAPES " at line 1 column 7"),
      BAD("{\"a\":\"\\U0041\"}", "invalid escape '\\U' " ESCAPES " at line 1 column 7"),
      BAD("{\"a\":\"\\'\"}", "invalid escape '\\'' " ESCAPES " at line 1 column 7"),
      BAD("{\"a\":\"\\\0\"}", "invalid escape '\\\\x00' " ESCAPES " at line 1 column 7"),
      BAD("{\"a\":\"\\\xc3\xa9\"}", "invalid escape '\\\\xc3' " ESCAPES " at line 1 column 7"),
      BAD("{\"a\":\"\\u12G4\"}",
          "invalid escape '\\u12': expected 4 hex digits at line 1 column 7"),
      BAD("{\"a\":\"\\u\"}", "invalid escape '\\u': expected 4 hex digits at line 1 column 7"),
      /* surrogate escapes must come in pairs, high then low */
      BAD("{\"a\":\"\\ud800\"}", "unpaired surrogate '\\ud800' in a string at line 1 column 7"),
      BAD("{\"a\":\"\\udc00\"}", "unpaired surrogate '\\udc00' in a string at line 1 column 7"),
      BAD("{\"a\":\"\\uDBFF\\u0041\"}",
          "unpaired surrogate '\\uDBFF' in a string at line 1 column 7"),
      BAD("{\"a\":\"\\ud800\\ud800\"}",
          "unpaired surrogate '\\ud800' in a string at line 1 column 7"),
      BAD("{\"a\":\"\\ud800x\"}", "unpaired surrogate '\\ud800' in a string at line 1 column 7"),
      BAD("{\"a\":\"\\ude00\\ud83d\"}",
          "unpaired surrogate '\\ude00' in a string at line 1 column 7"),
      BAD("{\"a\":\"\\ud83d\\uZ\"}",
          "invalid escape '\\u': expected 4 hex digits at line 1 column 13"),
      /* numbers */
      BAD("{\"a\":01}", "invalid number: leading zero at line 1 column 6"),
      BAD("{\"a\":-01}", "invalid number: leading zero at line 1 column 7"),
      BAD("{\"a\":00}", "invalid number: leading zero at line 1 column 6"),
      BAD("{\"a\":1.}", "expected a digit after the decimal point, found '}' at line 1 column 8"),
      BAD("{\"a\":1.e5}", "expected a digit after the decimal point, found 'e' at line 1 column 8"),
      BAD("{\"a\":-}", "expected a digit after '-', found '}' at line 1 column 7"),
      BAD("{\"a\":-.5}", "expected a digit after '-', found '.' at line 1 column 7"),
      BAD("{\"a\":.5}", "expected a value, found '.' at line 1 column 6"),
      BAD("{\"a\":1e}", "expected a digit in the exponent, found '}' at line 1 column 8"),
      BAD("{\"a\":1e+}", "expected a digit in the exponent, found '}' at line 1 column 9"),
      BAD("{\"a\":+1}", "expected a value, found '+' at line 1 column 6"),
      BAD("{\"a\":NaN}", "expected a value, found 'N' at line 1 column 6"),
      BAD("{\"a\":Infinity}", "expected a value, found 'I' at line 1 column 6"),
      BAD("{\"a\":-Infinity}", "expected a digit after '-', found 'I' at line 1 column 7"),
      BAD("{\"a\":0x10}", AFTER_MEMBER "'x' at line 1 column 7"),
      BAD("{\"a\":1.5.2}", AFTER_MEMBER "'.' at line 1 column 9"),
      BAD("{\"a\":1 2}", AFTER_MEMBER "'2' at line 1 column 8"),
      /* literals */
      BAD("{\"a\":tru}", "expected 'true', found '}' at line 1 column 9"),
      BAD("{\"a\":True}", "expected a value, found 'T' at line 1 column 6"),
      BAD("{\"a\":nul", "expected 'null', found end of input at line 1 column 8"),
      BAD("{\"a\":falsy}", "expected 'false', found 'y' at line 1 column 10"),
      BAD("{\"a\":undefined}", "expected a value, found 'u' at line 1 column 6"),
      /* structure */
      BAD("{\"a\":1,}", "trailing comma before '}' at line 1 column 8"),
      BAD("{\"a\":[1,]}", "trailing comma before ']' at line 1 column 9"),
      BAD("{\"a\":[1 , ] }", "trailing comma before ']' at line 1 column 11"),
      BAD("{\"a\":[,1]}", "expected a value, found ',' at line 1 column 7"),
      BAD("{,}", "expected a string key or '}', found ',' at line 1 column 2"),
      BAD("{\"a\" 1}", "expected ':' after the key, found '1' at line 1 column 6"),
      BAD("{\"a\"=1}", "expected ':' after the key, found '=' at line 1 column 5"),
      BAD("{\"a\":1 \"b\":2}", AFTER_MEMBER "'\"' at line 1 column 8"),
      BAD("{\"a\":1,,\"b\":2}", "expected a string key, found ',' at line 1 column 8"),
      BAD("{a:1}", "expected a string key or '}', found 'a' at line 1 column 2"),
      BAD("{\"a\":[1}", "expected ',' or ']' after an array element, found '}' at line 1 column 8"),
      BAD("{\"a\":{]}", "expected a string key or '}', found ']' at line 1 column 7"),
      BAD("{}}", AFTER_VALUE "'}' at line 1 column 3"),
      BAD("{} {}", AFTER_VALUE "'{' at line 1 column 4"),
      /* lines and columns: a column counts characters, not bytes */
      BAD("{\"a\":1}\n\n  x", AFTER_VALUE "'x' at line 3 column 3"),
      BAD("{\"a\":1}\r\n\r\nx", AFTER_VALUE "'x' at line 3 column 1"),
      BAD("{\n\"a\":\n  01}", "invalid number: leading zero at line 3 column 3"),
      BAD("{\"caf\xc3\xa9\":1,\"\xe6\x97\xa5\":x}",
          "expected a value, found 'x' at line 1 column 15"),
      /* whitespace is space, tab, CR and LF only */
      BAD("{\"a\":1,\f\"b\":2}", "expected a string key, found '\\x0c' at line 1 column 8"),
      BAD("{\"a\":\xe2\x80\xae"
          "1}",
          "expected a value, found '\\xe2\\x80\\xae' at line 1 column 6"),
      /* control characters in strings */
      BAD("{\"a\":\"x\ty\"}",
          "control character 0x09 in a string (escape it as \\u0009) at line 1 column 8"),
      BAD("{\"a\":\"\n\"}",
          "control character 0x0a in a string (escape it as \\u000a) at line 1 column 7"),
      BAD("{\"a\":\"\x1f\"}",
          "control character 0x1f in a string (escape it as \\u001f) at line 1 column 7"),
      BAD("{\"\x01\":1}",
          "control character 0x01 in a string (escape it as \\u0001) at line 1 column 3"),
      /* invalid UTF-8 in strings (keys too): stray continuation, overlong, surrogate, past
       * U+10FFFF, truncated sequence, bytes that never occur */
      BAD("{\"a\":\"\x80\"}", "invalid UTF-8 byte 0x80 in a string at line 1 column 7"),
      BAD("{\"a\":\"\xc0\xaf\"}", "invalid UTF-8 byte 0xc0 in a string at line 1 column 7"),
      BAD("{\"a\":\"\xe0\x80\xaf\"}", "invalid UTF-8 byte 0xe0 in a string at line 1 column 7"),
      BAD("{\"a\":\"\xed\xbf\xbf\"}", "invalid UTF-8 byte 0xed in a string at line 1 column 7"),
      BAD("{\"a\":\"\xf4\x90\x80\x80\"}", "invalid UTF-8 byte 0xf4 in a string at line 1 column 7"),
      BAD("{\"a\":\"\xf0\x9f\x98\"}", "invalid UTF-8 byte 0xf0 in a string at line 1 column 7"),
      BAD("{\"a\":\"\xfe\"}", "invalid UTF-8 byte 0xfe in a string at line 1 column 7"),
      BAD("{\"\xff\":1}", "invalid UTF-8 byte 0xff in a string at line 1 column 3"),
      /* bytes outside strings, byte order mark */
      BAD("{\"a\":1}\xff", AFTER_VALUE "'\\xff' at line 1 column 8"),
      BAD("\xff{}", "expected a value, found '\\xff' at line 1 column 1"),
      BAD("{\xc3\xa9:1}", "expected a string key or '}', found '\xc3\xa9' at line 1 column 2"),
      BAD("\xef\xbb\xbf{}", "byte order mark (U+FEFF) before the JSON text at line 1 column 1"),
      BAD("\xef\xbb\xbf", "byte order mark (U+FEFF) before the JSON text at line 1 column 1"),
      BAD(" \xef\xbb\xbf{}", "expected a value, found '\\xef\\xbb\\xbf' at line 1 column 2"),
  };
  (void)state;
  run_frame_rows(rows, SIG_ARRAY_SIZE(rows));
  run_body_rows(rows, SIG_ARRAY_SIZE(rows));
}

/* Keys are compared by value, so an escape cannot smuggle a second "ty" past the check. */
static void test_json_duplicate_keys(void **state) {
  static const row_t rows[] = {
      BAD("{\"a\":1,\"\\u0061\":2}", "duplicate key 'a' at line 1 column 8"),
      BAD("{\"\\u0061\":1,\"a\":2}", "duplicate key 'a' at line 1 column 13"),
      BAD("{\"ty\":\"bye\",\"t\\u0079\":\"offer\",\"to\":\"B\"}",
          "duplicate key 'ty' at line 1 column 13"),
      BAD("{\"\xc3\xa9\":1,\"\\u00e9\":2}", "duplicate key '\xc3\xa9' at line 1 column 8"),
      BAD("{\"\\u00E9\":1,\"\xc3\xa9\":2}", "duplicate key '\xc3\xa9' at line 1 column 13"),
      BAD("{\"\\ud83d\\ude00\":1,\"\xf0\x9f\x98\x80\":2}",
          "duplicate key '\xf0\x9f\x98\x80' at line 1 column 19"),
      BAD("{\"\\/\":1,\"/\":2}", "duplicate key '/' at line 1 column 9"),
      BAD("{\"\":1,\"\":2}", "duplicate key '' at line 1 column 7"),
      BAD("{\"\\u0000\":1,\"\\u0000\":2}", "duplicate key '\\x00' at line 1 column 13"),
      BAD("{\"x\":{\"a\":1,\"a\":2}}", "duplicate key 'a' at line 1 column 13"),
      BAD("{\"x\":[{\"a\":1,\"a\":2}]}", "duplicate key 'a' at line 1 column 14"),
      BAD("{\"" A8 A8 A8 A8 A8 "\":1,\"" A8 A8 A8 A8 A8 "\":2}",
          "duplicate key '" A8 A8 A8 A8 "...' at line 1 column 47"),
  };
  /* not duplicates: same key in different objects or levels, keys that differ by value */
  static const char *oks[] = {
      "{\"ty\":\"bye\",\"to\":\"B\",\"x\":{\"a\":1},\"y\":{\"a\":1}}",
      "{\"ty\":\"bye\",\"to\":\"B\",\"x\":{\"x\":{\"x\":[{\"x\":1},{\"x\":2}]}}}",
      "{\"ty\":\"bye\",\"to\":\"B\",\"x\":{\"a\":1,\"A\":2,\"\\u0063\":3,\"b\\u0000\":4,\"b\":5}}",
      "{\"ty\":\"bye\",\"to\":\"B\",\"x\":{\"\\ud83d\\ude00\":1,\"\\ud83d\\ude01\":2,\"\":3}}",
  };
  (void)state;
  run_frame_rows(rows, SIG_ARRAY_SIZE(rows));
  for (size_t i = 0; i < SIG_ARRAY_SIZE(oks); i++) {
    sig_msg_t m;
    char err[SIG_MSG_ERR_MAX] = "";
    int rc = sig_msg_decode_frame(&m, oks[i], strlen(oks[i]), err, sizeof err);
    if (rc != 0) print_error("row %zu: %s: %s\n", i, oks[i], err);
    assert_int_equal(rc, 0);
    sig_msg_free(&m);
  }
}

/* Appends to a growing test message. */
__attribute__((format(printf, 3, 4))) static void put(char **buf, size_t *len, const char *fmt,
                                                      ...) {
  va_list ap;
  int n;
  va_start(ap, fmt);
  n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  *buf = realloc(*buf, *len + (size_t)n + 1);
  assert_non_null(*buf);
  va_start(ap, fmt);
  vsnprintf(*buf + *len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  *len += (size_t)n;
}

/* An object with n members "k0".."k<n-1>" (one written as escapes when escaped is set) and, when
 * dup is not SIZE_MAX, a last member repeating key dup. */
static int decode_wide(size_t n, size_t dup, int escaped, char *err, size_t errlen) {
  char *buf = NULL;
  size_t len = 0;
  sig_msg_t m;
  int rc;
  put(&buf, &len, "{\"ty\":\"bye\",\"to\":\"B\",\"x\":{");
  for (size_t i = 0; i < n; i++) put(&buf, &len, "%s\"k%zu\":%zu", i > 0 ? "," : "", i, i);
  if (dup != SIZE_MAX) put(&buf, &len, escaped ? ",\"\\u006b%zu\":0" : ",\"k%zu\":0", dup);
  put(&buf, &len, "}}");
  rc = sig_msg_decode_frame(&m, buf, len, err, errlen);
  sig_msg_free(&m);
  free(buf);
  return rc;
}

/* Objects past the linear search's size use a hash set: same verdicts, no quadratic time. */
static void test_json_wide_objects(void **state) {
  static const size_t sizes[] = {15, 16, 17, 18, 100, 20000};
  char err[SIG_MSG_ERR_MAX];
  (void)state;
  for (size_t i = 0; i < SIG_ARRAY_SIZE(sizes); i++) {
    size_t n = sizes[i];
    assert_int_equal(decode_wide(n, SIZE_MAX, 0, err, sizeof err), 0);
    for (size_t dup = 0; dup < n; dup += n / 7 + 1) {
      char want[64];
      snprintf(want, sizeof want, "duplicate key 'k%zu'", dup);
      assert_int_equal(decode_wide(n, dup, (int)(dup & 1), err, sizeof err), SIG_EBADMSG);
      assert_non_null(strstr(err, want));
    }
  }
}

/* {"ty":"bye","to":"B","x":...} with levels of objects and arrays in all. */
static int decode_nested(int levels, char *err, size_t errlen) {
  char *buf = NULL;
  size_t len = 0;
  sig_msg_t m;
  int rc;
  put(&buf, &len, "{\"ty\":\"bye\",\"to\":\"B\",\"x\":");
  for (int i = 1; i < levels; i++) put(&buf, &len, i % 2 ? "[" : "{\"y\":");
  put(&buf, &len, "0");
  for (int i = levels - 1; i >= 1; i--) put(&buf, &len, i % 2 ? "]" : "}");
  put(&buf, &len, "}");
  rc = sig_msg_decode_frame(&m, buf, len, err, errlen);
  sig_msg_free(&m);
  free(buf);
  return rc;
}

static void test_json_depth(void **state) {
  char *buf = NULL;
  size_t len = 0;
  sig_msg_t m;
  char err[SIG_MSG_ERR_MAX];
  (void)state;
  assert_int_equal(decode_nested(SIG_JSON_DEPTH, err, sizeof err), 0);
  assert_int_equal(decode_nested(SIG_JSON_DEPTH + 1, err, sizeof err), SIG_EBADMSG);
  /* 25 characters of envelope, then "[" and "{\"y\":" by turns: the 33rd level is a "{" */
  assert_string_equal(err,
                      "body: invalid JSON: nesting deeper than 32 levels at line 1 column 117");

  /* far deeper: refused at the limit, without recursing further */
  put(&buf, &len, "{\"x\":");
  for (int i = 0; i < 100000; i++) put(&buf, &len, "[");
  assert_int_equal(sig_msg_decode_frame(&m, buf, len, err, sizeof err), SIG_EBADMSG);
  assert_string_equal(err, "body: invalid JSON: nesting deeper than 32 levels at line 1 column 37");
  sig_msg_free(&m);
  free(buf);
}

/* Values of every kind anywhere whitespace may go; escapes and characters of every width. */
static void test_json_valid(void **state) {
  static const char *oks[] = {
      " \t\r\n{ \t\r\n\"ty\" \t\r\n: \t\r\n\"bye\" \t\r\n, \"to\":\"B\" } \t\r\n",
      "{\"ty\":\"bye\",\"to\":\"B\",\"n\":[0,-0,1,-1,10,0.5,-0.25,1e5,1E5,1e+5,1e-5,-1.5E-10,"
      "123456789012345678901234567890,1e999]}",
      "{\"ty\":\"bye\",\"to\":\"B\",\"l\":[true,false,null,[],{},[[]],{\"a\":{}},\"\",[ ],{ }]}",
      "{\"ty\":\"bye\",\"to\":\"B\",\"s\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0000\\u001F\\u00e9\\uFFFF"
      "\\ud800\\udc00\\udbff\\udfff\"}",
      "{\"ty\":\"bye\",\"to\":\"B\",\"u\":\"\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf"
      "\xee\x80\x80\xef\xbb\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\"}",
      "{\"ty\":\"bye\",\"to\":\"B\",\"\":1,\"\\u0000\":2,\"\xf0\x9f\x98\x80\":3}",
      "{\"to\":\"B\",\"ty\":\"bye\"}",
  };
  (void)state;
  for (size_t i = 0; i < SIG_ARRAY_SIZE(oks); i++) {
    sig_msg_t m;
    char err[SIG_MSG_ERR_MAX] = "";
    int rc = sig_msg_decode_frame(&m, oks[i], strlen(oks[i]), err, sizeof err);
    if (rc != 0) print_error("row %zu: %s: %s\n", i, oks[i], err);
    assert_int_equal(rc, 0);
    assert_int_equal(m.type, SIG_MSG_BYE);
    assert_string_equal(m.to, "B");
    sig_msg_free(&m);
  }
}

/* Every byte value at positions that the many-at-a-time and the one-at-a-time loops both see, in
 * a candidate string and in an SDP. */
static void test_json_byte_classes(void **state) {
  static const size_t positions[] = {0, 1, 15, 16, 27, 28, 31, 32, 33, 47, 63, 64, 67};
  (void)state;
  for (size_t pi = 0; pi < SIG_ARRAY_SIZE(positions); pi++) {
    for (int b = 0; b < 256; b++) {
      char in[256], err[SIG_MSG_ERR_MAX] = "", col[64];
      char text[73]; /* "dj0w" then 'A's: base64 of "v=0" and zero bytes, 72 characters */
      size_t at = positions[pi] + 4; /* keep "v=" */
      int plain = b >= 0x20 && b != '"' && b != '\\' && b < 0x80;
      int b64 = (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z') || (b >= '0' && b <= '9') ||
                b == '+' || b == '/';
      sig_msg_t m;
      int n, rc;

      memset(text, 'A', 72);
      memcpy(text, "dj0w", 4);
      text[72] = '\0';
      text[at] = (char)b;
      /* the candidate: the byte at column 44 + at of {"ty":"candidate","to":"B","candidate":["...
       */
      n = snprintf(in, sizeof in, "{\"ty\":\"candidate\",\"to\":\"B\",\"candidate\":[\"");
      memcpy(in + n, text, 72);
      memcpy(in + n + 72, "\"]}", 3);
      snprintf(col, sizeof col, "at line 1 column %zu", (size_t)n + at + 1);
      rc = sig_msg_decode_frame(&m, in, (size_t)n + 75, err, sizeof err);
      if (plain) {
        assert_int_equal(rc, 0);
        assert_int_equal(m.ncandidates, 1);
      } else if (b < 0x20 || b >= 0x80) {
        assert_int_equal(rc, SIG_EBADMSG);
        assert_non_null(strstr(err, b < 0x20 ? "control character" : "invalid UTF-8 byte"));
        assert_non_null(strstr(err, col));
      } else {
        assert_int_equal(rc, SIG_EBADMSG); /* '"' ends the string early, '\\' starts a bad escape */
      }
      sig_msg_free(&m);

      /* the SDP */
      n = snprintf(in, sizeof in, "{\"offer_sdp\":\"");
      memcpy(in + n, text, 72);
      n += 72;
      n += snprintf(in + n, sizeof in - (size_t)n, "\",\"candidate\":[]," F_AD "," F_OD "}");
      rc = sig_msg_decode_offer_body(&m, in, (size_t)n, err, sizeof err);
      if (b64 || (b == '=' && at == 71)) { /* one '=' of padding at the end is right */
        assert_int_equal(rc, 0);
      } else if (plain && b != '=') {
        assert_string_equal(err, "offer_sdp: not valid base64");
      } else {
        if (rc != SIG_EBADMSG) print_error("byte 0x%02x at %zu\n", b, at);
        assert_int_equal(rc, SIG_EBADMSG);
      }
      sig_msg_free(&m);
    }
  }
}

/* Escapes are legal anywhere: in every field's name and value. */
static void test_escaped_fields(void **state) {
  sig_msg_t m;
  char err[SIG_MSG_ERR_MAX] = "", *out;
  size_t len;
  const char *body =
      "{\"\\u006fffer_sdp\":\"dj0w\\u0044Qo\\/\",\"c\\u0061ndidate\":[\"a\\u0041\",\"\\/\"],"
      "\"answer_domain\":\"\\u0042\",\"offer\\u005fdomain\":\"\\u0041\",\"i\\u0064\":"
      "\"c\\u002d1\"}";
  const char *answer =
      "{\"\\u0074y\":\"\\u0061nswer\",\"answer\\u005fresp\":{\"answer\\u005fsdp\":\"dj0\\u0077\","
      "\"candidate\":[],\"answer_domain\":\"\\u0042\"},\"offer\\u005freq\":{\"offer_domain\":"
      "\"\\u0041\"},\"id\":\"\\u0078\"}";
  const char *cand =
      "{\"ty\":\"c\\u0061ndidate\",\"t\\u006f\":\"\\u0042\",\"candidate\":[\"\\t\"]}";
  static const row_t rows[] = {
      ROW("{\"ty\":\"\\u0068ello\"}", "ty: unknown message type 'hello'"),
      ROW("{\"ty\":\"of\\u0000fer\"}", "ty: must not contain NUL"),
      ROW("{\"ty\":\"bye\",\"to\":\"\\u0042 \"}", "to: " DOMAIN_RULE),
      ROW("{\"ty\":\"answer\",\"answer_resp\":{\"answer_sdp\":\"dj0w\\u0020Qo=\"}}",
          "answer_resp.answer_sdp: not valid base64"),
      ROW("{\"ty\":\"answer\",\"answer_resp\":{\"answer_sdp\":\"\\u0064g==\"}}",
          "answer_resp.answer_sdp: " NOT_SDP),
      ROW("{\"ty\":\"offer\",\"offer\\u005freq\":{\"\\u006fffer_sdp\":\"dj0=\",\"candidate\":[],"
          "\"answer_domain\":\"B\",\"offer_domain\":\"\\u0042\"}}",
          "offer_req.answer_domain: must differ from offer_req.offer_domain"),
  };
  (void)state;
  assert_int_equal(sig_msg_decode_offer_body(&m, body, strlen(body), err, sizeof err), 0);
  assert_string_equal(m.offer_sdp, "dj0wDQo/");
  assert_string_equal(m.answer_domain, "B");
  assert_string_equal(m.offer_domain, "A");
  assert_string_equal(m.id, "c-1");
  assert_int_equal(m.ncandidates, 2);
  /* relayed as written */
  out = sig_msg_encode_offer_push(&m, m.id, NULL, &len);
  assert_string_equal(out,
                      "{\"ty\":\"offer\",\"id\":\"c-1\",\"offer_req\":{\"offer_sdp\":"
                      "\"dj0w\\u0044Qo\\/\",\"candidate\":[\"a\\u0041\",\"\\/\"],"
                      "\"answer_domain\":\"B\",\"offer_domain\":\"A\"},\"answer_resp\":{"
                      "\"answer_sdp\":\"\",\"candidate\":[],\"answer_domain\":\"B\"}}");
  free(out);
  sig_msg_free(&m);

  assert_int_equal(sig_msg_decode_frame(&m, answer, strlen(answer), err, sizeof err), 0);
  assert_int_equal(m.type, SIG_MSG_ANSWER);
  assert_string_equal(m.answer_sdp, "dj0w");
  assert_string_equal(m.answer_domain, "B");
  assert_string_equal(m.echo_offer_domain, "A");
  assert_string_equal(m.id, "x");
  out = sig_msg_encode_answer_push(&m, "x", "B", "A", &len);
  assert_non_null(strstr(out, "{\"answer_sdp\":\"dj0\\u0077\",\"candidate\":[],"));
  free(out);
  sig_msg_free(&m);

  assert_int_equal(sig_msg_decode_frame(&m, cand, strlen(cand), err, sizeof err), 0);
  assert_int_equal(m.type, SIG_MSG_CANDIDATE);
  assert_string_equal(m.to, "B");
  assert_int_equal(m.ncandidates, 1);
  sig_msg_free(&m);

  run_frame_rows(rows, SIG_ARRAY_SIZE(rows));
}

/* Whitespace between candidate elements is dropped: frames stay compact. */
static void test_candidates_compacted(void **state) {
  sig_msg_t m;
  char err[SIG_MSG_ERR_MAX];
  size_t len;
  const char *in =
      "{\"ty\":\"candidate\",\"to\":\"B\",\"candidate\":[ \"a b\" ,\n\t\"c\\\" ,]\" ]}";
  (void)state;
  assert_int_equal(sig_msg_decode_frame(&m, in, strlen(in), err, sizeof err), 0);
  assert_int_equal(m.ncandidates, 2);
  expect_json(sig_msg_encode_candidate(&m, "1", "A", &len), &len,
              "{\"ty\":\"candidate\",\"id\":\"1\",\"from\":\"A\",\"candidate\":[\"a b\","
              "\"c\\\" ,]\"]}");
  sig_msg_free(&m);
}

/* Every proper prefix of a valid message is an error, found without reading past its end (the
 * prefix is copied to a buffer of its exact size, for ASan and valgrind). */
static void test_json_truncations(void **state) {
  static const char *msgs[] = {
      BODY_WITH("\"id\":\"call-1\",\"x\":[1.5e-3,-0,true,false,null,{\"y\":\"\\ud83d\\ude00\"}]"),
      "{\"ty\":\"answer\",\"id\":\"call-1\",\"answer_resp\":{\"answer_sdp\":\"dj0w\\u0044Qo=\","
      "\"candidate\":[\"caf\xc3\xa9 \\\"\xf0\x9f\x98\x80\\\"\"],\"answer_domain\":\"B\"},"
      "\"offer_req\":{\"offer_domain\":\"A\"}}",
      "{\"ty\":\"candidate\",\"to\":\"B\",\"candidate\":[\"a\\tb\",\"\\u00e9\\/\"]}",
  };
  (void)state;
  for (size_t i = 0; i < SIG_ARRAY_SIZE(msgs); i++) {
    size_t n = strlen(msgs[i]);
    for (size_t k = 0; k <= n; k++) {
      char *buf = malloc(k > 0 ? k : 1), err[SIG_MSG_ERR_MAX] = "";
      sig_msg_t m;
      int rc;
      memcpy(buf, msgs[i], k);
      rc = i == 0 ? sig_msg_decode_offer_body(&m, buf, k, err, sizeof err)
                  : sig_msg_decode_frame(&m, buf, k, err, sizeof err);
      if (k == n) {
        if (rc != 0) print_error("%s: %s\n", msgs[i], err);
        assert_int_equal(rc, 0);
      } else {
        if (rc != SIG_EBADMSG || strncmp(err, "body: invalid JSON: ", 20) != 0)
          print_error("prefix %zu of %s: %d %s\n", k, msgs[i], rc, err);
        assert_int_equal(rc, SIG_EBADMSG);
        assert_int_equal(strncmp(err, "body: invalid JSON: ", 20), 0);
        assert_zeroed(&m);
      }
      sig_msg_free(&m);
      free(buf);
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_names),
      cmocka_unit_test(test_body_ok),
      cmocka_unit_test(test_body_ok_variants),
      cmocka_unit_test(test_body_errors),
      cmocka_unit_test(test_sdp_base64),
      cmocka_unit_test(test_frame_errors),
      cmocka_unit_test(test_frame_error_keeps_id),
      cmocka_unit_test(test_err_buffer),
      cmocka_unit_test(test_frame_offer),
      cmocka_unit_test(test_frame_answer),
      cmocka_unit_test(test_frame_candidate_bye),
      cmocka_unit_test(test_encode_offer_push),
      cmocka_unit_test(test_encode_answer_push),
      cmocka_unit_test(test_encode_small),
      cmocka_unit_test(test_encode_escaping),
      cmocka_unit_test(test_candidate_round_trip),
      cmocka_unit_test(test_large_sdp),
      cmocka_unit_test(test_json_syntax_errors),
      cmocka_unit_test(test_json_duplicate_keys),
      cmocka_unit_test(test_json_wide_objects),
      cmocka_unit_test(test_json_depth),
      cmocka_unit_test(test_json_valid),
      cmocka_unit_test(test_json_byte_classes),
      cmocka_unit_test(test_escaped_fields),
      cmocka_unit_test(test_candidates_compacted),
      cmocka_unit_test(test_json_truncations),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
