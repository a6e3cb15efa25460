/* Text helpers shared by the parsers, the codecs and the log: UTF-8, hex digits,
 * base64, FNV-1a hashing, and escaping text for human eyes. Pure functions of
 * their arguments: no allocation, no state. */
#ifndef SIG_TEXT_H
#define SIG_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* Length of the well-formed UTF-8 sequence at s (n > 0 bytes available; no overlongs,
 * surrogates or code points past U+10FFFF) with its code point in *cp, or 0. */
size_t sig_utf8_next(const unsigned char *s, size_t n, uint32_t *cp);

/* Writes cp (at most U+10FFFF) as UTF-8 into out, which has room for 4 bytes; returns
 * the bytes written. */
size_t sig_utf8_put(char *out, uint32_t cp);

/* The value of one hex digit (either case), or -1. */
int sig_hex_value(unsigned char c);

/* The value (0-63) of a standard base64 character (A-Z a-z 0-9 + /), or -1. */
int sig_base64_value(unsigned char c);

/* Decodes n characters of unpadded base64url (A-Z a-z 0-9 - _, RFC 4648 section 5) into out,
 * which has room for n * 3 / 4 bytes. Returns the length, or -1 on a character outside the
 * alphabet, a length of 1 mod 4, or non-zero bits left over in the last character. */
long sig_base64url_decode(const char *s, size_t n, unsigned char *out);

/* Byte classes for sig_text_skip. */
typedef enum {
  SIG_CLASS_BASE64 = 2,     /* A-Z a-z 0-9 + / (not '=') */
  SIG_CLASS_STRING_SAFE = 1 /* 0x20-0x7f but '"' and '\\': what a JSON string holds as itself */
} sig_text_class_t;

/* The first byte in [p, end) that is not of class cc, or end. Many bytes at a time. */
const unsigned char *sig_text_skip(const unsigned char *p, const unsigned char *end,
                                   sig_text_class_t cc);

/* FNV-1a over len bytes, continuing from h (start with SIG_FNV1A_INIT). */
#define SIG_FNV1A_INIT 2166136261u
uint32_t sig_fnv1a(uint32_t h, const void *data, size_t len);

/* Copies s[0..n) into out for humans, who must see what was sent without a terminal or
 * a log being fooled: printable ASCII and visible UTF-8 from U+00A0 stay; control
 * characters, invalid bytes and format characters that hide or reorder text (zero-width,
 * bidi controls, BOM) become \xNN per byte; when quote is a quote character (' or "),
 * it and \ are escaped with a backslash too (0: nothing more). Stops after max
 * characters or when out (outsz bytes) is full, and then ends with "...". out is
 * NUL-terminated when outsz > 0. Returns the length written. */
size_t sig_text_escape(char *out, size_t outsz, const char *s, size_t n, size_t max, char quote);

/* sig_text_escape for the inside of a JSON string (RFC 8259), still safe for a terminal:
 * '"' and '\\' get a backslash; control characters, U+007F, C1 controls and the hiding
 * format characters become JSON escapes (\n, \t, \r, \b, \f, else \uXXXX, which a JSON
 * reader turns back into the character); a byte that is not UTF-8 becomes the text \xNN (the
 * JSON "\\xNN"). Cut as sig_text_escape cuts, never inside an escape; *consumed (when not
 * NULL) gets the bytes of s written. */
size_t sig_text_escape_json(char *out, size_t outsz, const char *s, size_t n, size_t *consumed);

#endif
