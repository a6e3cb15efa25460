/* Unit tests for sig_json, the generic scanner: what a schema records (and what it does not),
 * the facts noted about strings and arrays, key matching after unescaping, every proper prefix
 * of a document refused, error positions, the depth limit, and the string writer. (The
 * protocol's own tables of JSON errors are in test_msg.c.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* cmocka needs the headers above first */
#include <cmocka.h>

#include "sig_json.h"
#include "sig_util.h"

enum { S_NAME, S_LIST, S_OBJ, S_INNER_NAME, S_LONG, S_COUNT };

static const sig_json_member_t inner_members[] = {{"name", S_INNER_NAME, NULL}};
static const sig_json_schema_t inner = {inner_members, 1};
static const sig_json_member_t top_members[] = {
    {"name", S_NAME, NULL},
    {"list", S_LIST, NULL},
    {"obj", S_OBJ, &inner},
    {"a_name_of_exactly_sixty_three_bytes_which_is_the_longest_allowe", S_LONG, NULL},
};
static const sig_json_schema_t top = {top_members, SIG_ARRAY_SIZE(top_members)};

static int scan(const char *text, sig_json_val_t slots[S_COUNT], sig_json_val_t *root, char *err,
                size_t errlen) {
  memset(slots, 0, S_COUNT * sizeof *slots);
  return sig_json_scan(text, strlen(text), &top, slots, root, err, errlen);
}

static char *value_of(const sig_json_val_t *v) {
  char *out = malloc((size_t)(v->end - v->start) + 1);
  out[sig_json_string_value(v, out)] = '\0';
  return out;
}

static void test_records_schema_members(void **state) {
  sig_json_val_t s[S_COUNT], root;
  char err[256];
  (void)state;
  const char *text =
      "{\"other\":{\"name\":\"no\"},\"name\":\"top\",\"obj\":{\"name\":\"in\",\"obj\":{\"name\":1}}"
      ","
      "\"list\":[\"a\", \"b\"]}";
  assert_int_equal(scan(text, s, &root, err, sizeof err), 0);
  assert_int_equal(root.kind, SIG_JSON_OBJECT);
  assert_ptr_equal(root.start, text);
  assert_ptr_equal(root.end, text + strlen(text));
  char *name = value_of(&s[S_NAME]), *in = value_of(&s[S_INNER_NAME]);
  assert_string_equal(name, "top"); /* not the one inside "other", which has no schema */
  assert_string_equal(in, "in");    /* one level down, through obj's schema; not two */
  free(name);
  free(in);
  assert_int_equal(s[S_OBJ].kind, SIG_JSON_OBJECT);
  assert_int_equal(s[S_LIST].kind, SIG_JSON_ARRAY);
  assert_int_equal(s[S_LIST].count, 2);
  assert_true(s[S_LIST].spaced);
  assert_int_equal(s[S_LIST].bad, SIZE_MAX);
  assert_int_equal(s[S_LONG].kind, SIG_JSON_NONE);
  /* no schema at all: only the root */
  sig_json_val_t none[1] = {{0}};
  assert_int_equal(sig_json_scan(text, strlen(text), NULL, none, &root, NULL, 0), 0);
  assert_int_equal(none[0].kind, SIG_JSON_NONE);
}

static void test_value_facts(void **state) {
  static const struct {
    const char *text;
    uint8_t kind, escaped, nul, base64, spaced;
    size_t count, bad;
    uint8_t bad_nul;
  } rows[] = {
      {"{\"name\":\"dj0wDQo=\"}", SIG_JSON_STRING, 0, 0, 1, 0, 0, 0, 0},
      {"{\"name\":\"dj0wDQo\"}", SIG_JSON_STRING, 0, 0, 1, 0, 0, 0, 0},
      {"{\"name\":\"a=b\"}", SIG_JSON_STRING, 0, 0, 0, 0, 0, 0, 0},
      {"{\"name\":\"a===\"}", SIG_JSON_STRING, 0, 0, 0, 0, 0, 0, 0},
      {"{\"name\":\"a b\"}", SIG_JSON_STRING, 0, 0, 0, 0, 0, 0, 0},
      {"{\"name\":\"a\\/b\"}", SIG_JSON_STRING, 1, 0, 0, 0, 0, 0, 0},
      {"{\"name\":\"a\\u0000b\"}", SIG_JSON_STRING, 1, 1, 0, 0, 0, 0, 0},
      {"{\"name\":\"\"}", SIG_JSON_STRING, 0, 0, 1, 0, 0, 0, 0},
      {"{\"name\":-1.5e3}", SIG_JSON_NUMBER, 0, 0, 0, 0, 0, 0, 0},
      {"{\"name\":null}", SIG_JSON_LITERAL, 0, 0, 0, 0, 0, 0, 0},
      {"{\"list\":[]}", SIG_JSON_ARRAY, 0, 0, 0, 0, 0, SIZE_MAX, 0},
      {"{\"list\":[ ]}", SIG_JSON_ARRAY, 0, 0, 0, 1, 0, SIZE_MAX, 0},
      {"{\"list\":[\"a\",\"b\",\"c\"]}", SIG_JSON_ARRAY, 0, 0, 0, 0, 3, SIZE_MAX, 0},
      {"{\"list\":[\"a\",1,\"c\"]}", SIG_JSON_ARRAY, 0, 0, 0, 0, 3, 1, 0},
      {"{\"list\":[\"a\",\"\\u0000\",2]}", SIG_JSON_ARRAY, 0, 0, 0, 0, 3, 1, 1},
      {"{\"list\":[[\"a\"]]}", SIG_JSON_ARRAY, 0, 0, 0, 0, 1, 0, 0},
  };
  (void)state;
  for (size_t i = 0; i < SIG_ARRAY_SIZE(rows); i++) {
    sig_json_val_t s[S_COUNT], root;
    assert_int_equal(scan(rows[i].text, s, &root, NULL, 0), 0);
    const sig_json_val_t *v = rows[i].kind == SIG_JSON_ARRAY ? &s[S_LIST] : &s[S_NAME];
    if (v->kind != rows[i].kind || v->escaped != rows[i].escaped || v->nul != rows[i].nul ||
        v->base64 != rows[i].base64 || v->spaced != rows[i].spaced)
      print_error("row %zu: %s\n", i, rows[i].text);
    assert_int_equal(v->kind, rows[i].kind);
    assert_int_equal(v->escaped, rows[i].escaped);
    assert_int_equal(v->nul, rows[i].nul);
    assert_int_equal(v->base64, rows[i].base64);
    assert_int_equal(v->spaced, rows[i].spaced);
    if (v->kind == SIG_JSON_ARRAY) {
      assert_int_equal(v->count, rows[i].count);
      assert_int_equal(v->bad, rows[i].bad);
      assert_int_equal(v->bad_nul, rows[i].bad_nul);
    }
  }
}

/* Keys match after unescaping; a key longer than any schema name never matches. */
static void test_key_matching(void **state) {
  sig_json_val_t s[S_COUNT], root;
  char err[256];
  (void)state;
  assert_int_equal(
      scan("{\"n\\u0061me\":\"x\",\"\\u006c\\u0069st\":[]}", s, &root, err, sizeof err), 0);
  assert_int_equal(s[S_NAME].kind, SIG_JSON_STRING);
  assert_int_equal(s[S_LIST].kind, SIG_JSON_ARRAY);
  assert_int_equal(
      scan("{\"a_name_of_exactly_sixty_three_bytes_which_is_the_longest_allow\\u0065\":1}", s,
           &root, err, sizeof err),
      0);
  assert_int_equal(s[S_LONG].kind, SIG_JSON_NUMBER);
  assert_int_equal(
      scan("{\"nam\":1,\"names\":2,\"Name\":3,\"n\\u00e1me\":4}", s, &root, err, sizeof err), 0);
  assert_int_equal(s[S_NAME].kind, SIG_JSON_NONE);
  /* the same key twice, written differently, is a duplicate */
  assert_int_equal(scan("{\"name\":1,\"n\\u0061me\":2}", s, &root, err, sizeof err), SIG_EBADMSG);
  assert_string_equal(err, "duplicate key 'name' at line 1 column 11");
}

/* Every proper prefix of an object is refused, and says it ended early or expected more. */
static void test_every_prefix_refused(void **state) {
  const char *text =
      "{\"name\":\"v\\u00e9\\n\",\"list\":[\"a\", \"b\"],\"obj\":{\"name\":[1, -2.5e+3, true, "
      "false, null]},\"x\":{}}";
  size_t n = strlen(text);
  (void)state;
  for (size_t k = 0; k < n; k++) {
    sig_json_val_t s[S_COUNT], root;
    char err[256] = "";
    memset(s, 0, sizeof s);
    int rc = sig_json_scan(text, k, &top, s, &root, err, sizeof err);
    if (rc != SIG_EBADMSG) print_error("prefix of %zu bytes accepted\n", k);
    assert_int_equal(rc, SIG_EBADMSG);
    assert_non_null(strstr(err, " at line 1 column "));
  }
  sig_json_val_t s[S_COUNT], root;
  memset(s, 0, sizeof s);
  assert_int_equal(sig_json_scan(text, n, &top, s, &root, NULL, 0), 0);
}

static void test_errors_and_positions(void **state) {
  static const struct {
    const char *text, *err;
  } rows[] = {
      {"", "expected a value, found end of input at line 1 column 0"},
      {"{\n  \"a\": tru\n}", "expected 'true', found '\\x0a' at line 2 column 11"},
      {"{\"a\":1,}", "trailing comma before '}' at line 1 column 8"},
      {"\xef\xbb\xbf{}", "byte order mark (U+FEFF) before the JSON text at line 1 column 1"},
      {"{} x", "expected end of input after the JSON value, found 'x' at line 1 column 4"},
      {"\"\xc3\xa9\xff\"", "invalid UTF-8 byte 0xff in a string at line 1 column 3"},
      {"[01]", "invalid number: leading zero at line 1 column 2"},
      {"\"\\ud800\"", "unpaired surrogate '\\ud800' in a string at line 1 column 2"},
  };
  (void)state;
  for (size_t i = 0; i < SIG_ARRAY_SIZE(rows); i++) {
    sig_json_val_t root;
    char err[256] = "";
    int rc = sig_json_scan(rows[i].text, strlen(rows[i].text), NULL, NULL, &root, err, sizeof err);
    if (rc != SIG_EBADMSG || strcmp(err, rows[i].err) != 0)
      print_error("row %zu: got '%s'\n", i, err);
    assert_int_equal(rc, SIG_EBADMSG);
    assert_string_equal(err, rows[i].err);
  }
}

static void test_depth(void **state) {
  char text[2 * (SIG_JSON_DEPTH + 1) + 1];
  sig_json_val_t root;
  char err[256];
  (void)state;
  for (int depth = SIG_JSON_DEPTH; depth <= SIG_JSON_DEPTH + 1; depth++) {
    memset(text, '[', (size_t)depth);
    memset(text + depth, ']', (size_t)depth);
    int rc = sig_json_scan(text, 2 * (size_t)depth, NULL, NULL, &root, err, sizeof err);
    assert_int_equal(rc, depth > SIG_JSON_DEPTH ? SIG_EBADMSG : 0);
  }
  assert_string_equal(err, "nesting deeper than 32 levels at line 1 column 33");
}

static void test_string_value_and_compact(void **state) {
  sig_json_val_t s[S_COUNT], root;
  (void)state;
  assert_int_equal(scan("{\"name\":\"a\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00z\","
                        "\"list\":[ \"x y\" ,\n\"\\\" ]\" ]}",
                        s, &root, NULL, 0),
                   0);
  char *v = value_of(&s[S_NAME]);
  assert_string_equal(v, "a\"\\/\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80z");
  free(v);
  char out[64];
  size_t n = sig_json_compact(&s[S_LIST], out);
  assert_int_equal(n, strlen("[\"x y\",\"\\\" ]\"]"));
  assert_memory_equal(out, "[\"x y\",\"\\\" ]\"]", n);
}

static void test_write_string(void **state) {
  static const struct {
    const char *in, *out;
  } rows[] = {
      {"plain", "\"plain\""},
      {"q\"b\\s/", "\"q\\\"b\\\\s/\""},
      {"\b\f\n\r\t\x01\x1f\x7f", "\"\\b\\f\\n\\r\\t\\u0001\\u001F\x7f\""},
      {"\xc3\xa9\xe2\x80\xae", "\"\xc3\xa9\xe2\x80\xae\""},
      {"bad\xff\xc3", "\"bad\xef\xbf\xbd\xef\xbf\xbd\""},
      {"", "\"\""},
  };
  char out[64];
  (void)state;
  for (size_t i = 0; i < SIG_ARRAY_SIZE(rows); i++) {
    size_t n = sig_json_write_string(NULL, rows[i].in);
    assert_int_equal(n, strlen(rows[i].out));
    assert_int_equal(sig_json_write_string(out, rows[i].in), n);
    assert_memory_equal(out, rows[i].out, n);
  }
  assert_int_equal(sig_json_write_string(out, NULL), 4);
  assert_memory_equal(out, "null", 4);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_records_schema_members),
      cmocka_unit_test(test_value_facts),
      cmocka_unit_test(test_key_matching),
      cmocka_unit_test(test_every_prefix_refused),
      cmocka_unit_test(test_errors_and_positions),
      cmocka_unit_test(test_depth),
      cmocka_unit_test(test_string_value_and_compact),
      cmocka_unit_test(test_write_string),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
