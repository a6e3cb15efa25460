/* Unit tests for sig_text: UTF-8 both ways at every boundary, hex and base64 values for every
 * byte, the byte-class scans against a byte-at-a-time reference at every offset and length,
 * FNV-1a's published vectors, and escaping for humans. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* cmocka needs the headers above first */
#include <cmocka.h>

#include "sig_text.h"
#include "sig_util.h"

static void test_utf8_next(void **state) {
#define U(s, len, cp) \
  { (const unsigned char *)(s), sizeof(s) - 1, len, cp }
  static const struct {
    const unsigned char *s;
    size_t n, len;
    uint32_t cp;
  } rows[] = {
      U("A", 1, 0x41),
      U("\x7f", 1, 0x7f),
      U("\xc2\x80", 2, 0x80),
      U("\xdf\xbf", 2, 0x7ff),
      U("\xe0\xa0\x80", 3, 0x800),
      U("\xef\xbf\xbf", 3, 0xffff),
      U("\xf0\x90\x80\x80", 4, 0x10000),
      U("\xf4\x8f\xbf\xbf", 4, 0x10ffff),
      U("\xc0\x80", 0, 0),         /* overlong */
      U("\xc1\xbf", 0, 0),         /* overlong */
      U("\xe0\x9f\xbf", 0, 0),     /* overlong */
      U("\xf0\x8f\xbf\xbf", 0, 0), /* overlong */
      U("\xed\xa0\x80", 0, 0),     /* surrogate */
      U("\xf4\x90\x80\x80", 0, 0), /* past U+10FFFF */
      U("\xf5\x80\x80\x80", 0, 0),
      U("\x80", 0, 0),
      U("\xc3", 0, 0), /* truncated */
      U("\xe2\x82", 0, 0),
      U("\xc3\x28", 0, 0), /* bad continuation */
  };
#undef U
  (void)state;
  for (size_t i = 0; i < SIG_ARRAY_SIZE(rows); i++) {
    uint32_t cp = 0xdeadbeef;
    size_t len = sig_utf8_next(rows[i].s, rows[i].n, &cp);
    if (len != rows[i].len) print_error("row %zu\n", i);
    assert_int_equal(len, rows[i].len);
    if (len > 0) assert_int_equal(cp, rows[i].cp);
  }
}

/* Every scalar value encodes to what decodes back to it, in the shortest form. */
static void test_utf8_round_trip(void **state) {
  (void)state;
  for (uint32_t cp = 0; cp <= 0x10ffff; cp += cp < 0x1000 ? 1 : 97) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    char buf[4];
    uint32_t back;
    size_t n = sig_utf8_put(buf, cp);
    assert_int_equal(n, cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4);
    assert_int_equal(sig_utf8_next((const unsigned char *)buf, n, &back), n);
    assert_int_equal(back, cp);
  }
}

static void test_hex_and_base64_values(void **state) {
  static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  (void)state;
  for (int c = 0; c < 256; c++) {
    const char *h = c != 0 ? strchr("0123456789abcdef", c) : NULL;
    const char *H = c != 0 ? strchr("0123456789ABCDEF", c) : NULL;
    int hex = h ? (int)(h - "0123456789abcdef") : H ? (int)(H - "0123456789ABCDEF") : -1;
    assert_int_equal(sig_hex_value((unsigned char)c), hex);
    const char *b = c != 0 ? strchr(b64, c) : NULL;
    assert_int_equal(sig_base64_value((unsigned char)c), b ? (int)(b - b64) : -1);
  }
}

static int in_class(unsigned char c, sig_text_class_t cc) {
  if (cc == SIG_CLASS_BASE64) return sig_base64_value(c) >= 0;
  return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

/* The fast scans agree with a byte-at-a-time reference wherever the misfit lies. */
static void test_skip_matches_reference(void **state) {
  static const sig_text_class_t classes[] = {SIG_CLASS_BASE64, SIG_CLASS_STRING_SAFE};
  unsigned char buf[100];
  (void)state;
  for (size_t k = 0; k < SIG_ARRAY_SIZE(classes); k++) {
    sig_text_class_t cc = classes[k];
    for (int bad = 0; bad < 256; bad++) {
      if (in_class((unsigned char)bad, cc)) continue;
      for (size_t len = 0; len <= 70; len += len < 40 ? 1 : 15) {
        for (size_t at = 0; at <= len; at++) {
          memset(buf, 'Q', sizeof buf);
          if (at < len) buf[at] = (unsigned char)bad;
          const unsigned char *end = sig_text_skip(buf, buf + len, cc);
          assert_ptr_equal(end, buf + at);
        }
      }
    }
  }
}

static void test_fnv1a(void **state) {
  (void)state;
  /* the published FNV-1a 32-bit test vectors */
  assert_int_equal(sig_fnv1a(SIG_FNV1A_INIT, "", 0), 0x811c9dc5u);
  assert_int_equal(sig_fnv1a(SIG_FNV1A_INIT, "a", 1), 0xe40c292cu);
  assert_int_equal(sig_fnv1a(SIG_FNV1A_INIT, "foobar", 6), 0xbf9cf968u);
  /* continuing is the same as hashing at once */
  assert_int_equal(sig_fnv1a(sig_fnv1a(SIG_FNV1A_INIT, "foo", 3), "bar", 3), 0xbf9cf968u);
}

static void test_escape(void **state) {
  static const struct {
    const char *in;
    size_t max;
    char quote;
    const char *out;
  } rows[] = {
      {"plain text", 100, 0, "plain text"},
      {"it's a \\", 100, '\'', "it\\'s a \\\\"},
      {"say \"hi\" it's", 100, '"', "say \\\"hi\\\" it's"},
      {"it's", 100, 0, "it's"},
      {"tab\there\x0c", 100, 0, "tab\\x09here\\x0c"},
      {"\xc3\xa9t\xc3\xa9", 100, 0, "\xc3\xa9t\xc3\xa9"},
      {"c1 \xc2\x9b csi", 100, 0, "c1 \\xc2\\x9b csi"},
      {"bad \xff byte", 100, 0, "bad \\xff byte"},
      {"rtl \xe2\x80\xae x", 100, 0, "rtl \\xe2\\x80\\xae x"},
      {"bom \xef\xbb\xbf", 100, 0, "bom \\xef\\xbb\\xbf"},
      {"del \x7f", 100, 0, "del \\x7f"},
      {"abcdef", 3, 0, "abc..."},
  };
  char out[128];
  (void)state;
  for (size_t i = 0; i < SIG_ARRAY_SIZE(rows); i++) {
    size_t n = sig_text_escape(out, sizeof out, rows[i].in, strlen(rows[i].in), rows[i].max,
                               rows[i].quote);
    if (strcmp(out, rows[i].out) != 0) print_error("row %zu: got '%s'\n", i, out);
    assert_string_equal(out, rows[i].out);
    assert_int_equal(n, strlen(out));
  }
  /* a small buffer: cut at a whole piece, "..." and the NUL always fit */
  for (size_t size = 1; size < 16; size++) {
    char small[16];
    memset(small, 'Z', sizeof small);
    size_t n = sig_text_escape(small, size, "\xff\xff\xff\xff", 4, 100, 0);
    assert_true(n < size);
    assert_int_equal(strlen(small), n);
  }
}

/* The inside of a JSON string (RFC 8259): quotes and backslashes escaped, every control and
 * hiding character as a JSON escape, bytes that are not UTF-8 as the text \xNN. */
static void test_escape_json(void **state) {
  static const struct {
    const char *in;
    const char *out;
  } rows[] = {
      {"plain text", "plain text"},
      {"must start with \"v=\") \\ ok", "must start with \\\"v=\\\") \\\\ ok"},
      {"it's", "it's"},
      {"\b\t\n\f\r", "\\b\\t\\n\\f\\r"},
      {"nul-free \x01\x0b\x1b[2J", "nul-free \\u0001\\u000b\\u001b[2J"},
      {"del \x7f", "del \\u007f"},
      {"\xc3\xa9t\xc3\xa9 \xe4\xb8\xad", "\xc3\xa9t\xc3\xa9 \xe4\xb8\xad"},
      {"c1 \xc2\x9b csi", "c1 \\u009b csi"},
      {"rtl \xe2\x80\xae bom \xef\xbb\xbf", "rtl \\u202e bom \\ufeff"},
      {"bad \xff\xc3 byte", "bad \\\\xff\\\\xc3 byte"},
  };
  char out[128];
  size_t used;
  (void)state;
  for (size_t i = 0; i < SIG_ARRAY_SIZE(rows); i++) {
    size_t n = sig_text_escape_json(out, sizeof out, rows[i].in, strlen(rows[i].in), &used);
    if (strcmp(out, rows[i].out) != 0) print_error("row %zu: got '%s'\n", i, out);
    assert_string_equal(out, rows[i].out);
    assert_int_equal(n, strlen(out));
    assert_int_equal(used, strlen(rows[i].in));
  }
  /* cut at a whole escape: "..." after it, and *consumed says how much went out */
  for (size_t size = 1; size < 24; size++) {
    char small[24];
    memset(small, 'Z', sizeof small);
    size_t n = sig_text_escape_json(small, size, "a\x01\x01\x01", 4, &used);
    assert_true(n < size);
    assert_int_equal(strlen(small), n);
    static const size_t whole[] = {1, 7, 13, 19}; /* bytes written after 1, 2, 3, 4 characters */
    size_t expect = 0;
    for (size_t k = 0; k < 4; k++)
      if (whole[k] + 4 <= size) expect = k + 1; /* room kept for "..." and the NUL */
    assert_int_equal(used, expect);
    if (used < 4 && size >= 4) assert_memory_equal(small + n - 3, "...", 3);
  }
}

/* RFC 4648's vectors in the URL alphabet, unpadded; what JWS forbids is refused. */
static void test_base64url_decode(void **state) {
  static const struct {
    const char *in, *out;
    long want;
  } rows[] = {
      {"", "", 0},
      {"Zg", "f", 1},
      {"Zm8", "fo", 2},
      {"Zm9v", "foo", 3},
      {"Zm9vYg", "foob", 4},
      {"Zm9vYmE", "fooba", 5},
      {"Zm9vYmFy", "foobar", 6},
      {"-_-_", "\xfb\xff\xbf", 3},
      {"__8", "\xff\xff", 2},
      {"Zg==", NULL, -1}, /* padding */
      {"Z", NULL, -1},    /* 1 mod 4 */
      {"Zm9vY", NULL, -1},
      {"Zh", NULL, -1}, /* spare bits set: a second spelling of "f" */
      {"Zm9", NULL, -1},
      {"+/8", NULL, -1}, /* the standard alphabet's 62 and 63 */
      {"Zm 9", NULL, -1},
      {"Zm.9", NULL, -1},
  };
  (void)state;
  for (size_t i = 0; i < SIG_ARRAY_SIZE(rows); i++) {
    unsigned char out[16];
    long got = sig_base64url_decode(rows[i].in, strlen(rows[i].in), out);
    if (got != rows[i].want) print_error("row %zu: '%s' gave %ld\n", i, rows[i].in, got);
    assert_int_equal(got, rows[i].want);
    if (got > 0) assert_memory_equal(out, rows[i].out, (size_t)got);
  }
}

/* Every byte string up to 40 bytes, encoded by a reference encoder, decodes back; each length
 * writes exactly n * 3 / 4 bytes. */
static void test_base64url_round_trip(void **state) {
  static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  (void)state;
  uint32_t seed = 12345;
  for (size_t n = 0; n <= 40; n++) {
    unsigned char in[40], out[40 + 4];
    char enc[64];
    size_t e = 0;
    for (size_t i = 0; i < n; i++)
      in[i] = (unsigned char)((seed = seed * 1103515245u + 12345u) >> 16);
    for (size_t i = 0; i < n; i += 3) {
      uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
                   (i + 2 < n ? in[i + 2] : 0);
      size_t chars = n - i >= 3 ? 4 : n - i + 1;
      for (size_t k = 0; k < chars; k++) enc[e++] = abc[(v >> (18 - 6 * k)) & 63];
    }
    memset(out, 0xAA, sizeof out);
    assert_int_equal(sig_base64url_decode(enc, e, out), (long)n);
    assert_memory_equal(out, in, n);
    assert_int_equal(out[n], 0xAA);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_utf8_next),
      cmocka_unit_test(test_utf8_round_trip),
      cmocka_unit_test(test_hex_and_base64_values),
      cmocka_unit_test(test_base64url_decode),
      cmocka_unit_test(test_base64url_round_trip),
      cmocka_unit_test(test_skip_matches_reference),
      cmocka_unit_test(test_fnv1a),
      cmocka_unit_test(test_escape),
      cmocka_unit_test(test_escape_json),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
