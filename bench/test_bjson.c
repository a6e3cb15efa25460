/* Table tests of the load generator's JSON tokenizer (bench/bjson.c): what it accepts and
 * refuses, member lookup, and string comparison through escapes. Run by `make test`. */
#include <stdio.h>
#include <string.h>

#include "bjson.h"

static int failures;

static void expect(int ok, const char *what, const char *text) {
  if (!ok) {
    failures++;
    fprintf(stderr, "test_bjson: FAILED: %s: %s\n", what, text);
  }
}

static int parse(const char *s, bj_tok_t *t, int max) {
  return bj_parse(s, strlen(s), t, max);
}

int main(void) {
  static const char *const valid[] = {
      "{}",
      "[]",
      " {\"a\" : [1, -2.5e+3, 0, 0.5E-1, true, false, null, \"x\"]} ",
      "\"\"",
      "\"\\u00e9\\ud83d\\ude00\\n\\\"\\\\\\/\"",
      "[[[]],{}]",
      "123",
      "-0",
      "{\"offer_sdp\":\"dj0wDQpvPS0gMSAxIElOIElQNCAxMjcuMC4wLjENCg==\",\"candidate\":[]}",
  };
  static const char *const invalid[] = {
      "",      "{",        "{\"a\"}",   "{\"a\":}", "{a:1}",       "[1,]",  "{\"a\":1,}",
      "01",    "1.",       "-",         ".5",       "1e",          "tru",   "nul",
      "\"abc", "\"\\x\"",  "\"\\u12\"", "\"a\tb\"", "{} {}",       "[1 2]", "{\"a\":1 \"b\":2}",
      "'a'",   "[\"\n\"]", "{\"a\":1]", "NaN",      "\"\\u00zz\"",
  };
  bj_tok_t t[64];
  for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++)
    expect(parse(valid[i], t, 64) > 0, "valid JSON refused", valid[i]);
  for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
    expect(parse(invalid[i], t, 64) < 0, "invalid JSON accepted", invalid[i]);

  char deep[200] = "";
  for (int i = 0; i < 40; i++) strcat(deep, "[");
  for (int i = 0; i < 40; i++) strcat(deep, "]");
  expect(parse(deep, t, 64) == BJ_EDEPTH, "nesting past the limit accepted", deep);
  expect(parse("[1,2,3,4,5]", t, 3) == BJ_ENOMEM, "more tokens than room accepted", "[1,2,3,4,5]");

  const char *obj =
      "{\"ty\":\"offer\",\"id\":\"a\\/b\",\"n\":{\"x\":[1,{\"y\":2}]},\"z\":\"\\u00e9\"}";
  int n = parse(obj, t, 64);
  expect(n == 15, "token count", obj);
  expect(t[0].type == BJ_OBJECT && t[0].size == 4, "object size", obj);
  int ty = bj_get(t, 0, obj, "ty"), id = bj_get(t, 0, obj, "id"), nn = bj_get(t, 0, obj, "n");
  int z = bj_get(t, 0, obj, "z");
  expect(ty > 0 && bj_str_eq(t, ty, obj, "offer", 5), "member ty", obj);
  expect(!bj_str_eq(t, ty, obj, "offe", 4) && !bj_str_eq(t, ty, obj, "offers", 6),
         "prefix compares unequal", obj);
  expect(id > 0 && bj_str_eq(t, id, obj, "a/b", 3), "escaped solidus compares", obj);
  expect(z > 0 && bj_str_eq(t, z, obj, "\xc3\xa9", 2), "\\u00e9 compares as UTF-8", obj);
  expect(nn > 0 && t[nn].type == BJ_OBJECT && bj_get(t, nn, obj, "x") == nn + 2, "nested member",
         obj);
  expect(bj_get(t, 0, obj, "missing") == -1, "absent member", obj);
  expect(bj_get(t, 0, obj, "x") == -1, "nested keys are not members of the outer object", obj);
  int x = bj_get(t, nn, obj, "x");
  expect(t[x].size == 2 && t[bj_elem(t, x, 1)].type == BJ_OBJECT, "array elements", obj);
  expect((int)t[nn].next == z - 1, "next skips a whole subtree", obj);

  const char *dup = "{\"id\":\"a\",\"id\":\"b\"}";
  expect(parse(dup, t, 64) > 0 && bj_get(t, 0, dup, "id") == -2, "duplicate key reported", dup);
  const char *pair = "[\"\\ud83d\\ude00\",\"\\ud83d\"]";
  expect(parse(pair, t, 64) == 3 && bj_str_eq(t, 1, pair, "\xf0\x9f\x98\x80", 4) &&
             !bj_str_eq(t, 2, pair, "\xed\xa0\xbd", 3),
         "surrogate pair joined, lone surrogate equals nothing", pair);
  const char *num = "{\"code\":0}";
  expect(parse(num, t, 64) == 3 && t[2].type == BJ_NUMBER && t[2].len == 1, "number token", num);
  if (failures == 0) printf("test_bjson: all passed\n");
  return failures != 0;
}
