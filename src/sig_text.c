/* UTF-8, hex, base64, FNV-1a and escaping for humans. The byte-class scans run
 * 32 bytes at a time with SSE2 where there is SSE2 (all x86-64), else through a
 * table eight bytes at a time. */
#include "sig_text.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

size_t sig_utf8_next(const unsigned char *s, size_t n, uint32_t *cp) {
  size_t len;
  uint32_t v, min;
  if (s[0] < 0x80) {
    *cp = s[0];
    return 1;
  }
  if (s[0] >= 0xc2 && s[0] <= 0xdf) {
    len = 2, v = s[0] & 0x1f, min = 0x80;
  } else if ((s[0] & 0xf0) == 0xe0) {
    len = 3, v = s[0] & 0x0f, min = 0x800;
  } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
    len = 4, v = s[0] & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (n < len) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80) return 0;
    v = v << 6 | (s[i] & 0x3f);
  }
  if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return 0;
  *cp = v;
  return len;
}

size_t sig_utf8_put(char *o, uint32_t cp) {
  if (cp < 0x80) {
    o[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (char)(0xc0 | cp >> 6), o[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (char)(0xe0 | cp >> 12), o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
    o[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
  }
  o[0] = (char)(0xf0 | cp >> 18), o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
  o[2] = (char)(0x80 | (cp >> 6 & 0x3f)), o[3] = (char)(0x80 | (cp & 0x3f));
  return 4;
}

int sig_hex_value(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int sig_base64_value(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

long sig_base64url_decode(const char *s, size_t n, unsigned char *out) {
  uint32_t acc = 0;
  int bits = 0;
  long o = 0;
  if (n % 4 == 1) return -1;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    int v = c == '-' ? 62 : c == '_' ? 63 : c == '+' || c == '/' ? -1 : sig_base64_value(c);
    if (v < 0) return -1;
    acc = acc << 6 | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (unsigned char)(acc >> bits);
      acc &= (1u << bits) - 1;
    }
  }
  return acc == 0 ? o : -1; /* the spare bits of the last character must be zero */
}

/* The classes' table for the fallback (a base64 byte is string-safe too). */
enum { CC_PLAIN = SIG_CLASS_STRING_SAFE, CC_B64 = SIG_CLASS_BASE64 };
#define IS_B64(c)                                                                            \
  (((c) >= 'A' && (c) <= 'Z') || ((c) >= 'a' && (c) <= 'z') || ((c) >= '0' && (c) <= '9') || \
   (c) == '+' || (c) == '/')
#define CC(c) \
  ((c) >= 0x20 && (c) < 0x80 && (c) != '"' && (c) != '\\' ? CC_PLAIN | (IS_B64(c) ? CC_B64 : 0) : 0)
#define CC4(c) CC(c), CC((c) + 1), CC((c) + 2), CC((c) + 3)
#define CC16(c) CC4(c), CC4((c) + 4), CC4((c) + 8), CC4((c) + 12)
#define CC64(c) CC16(c), CC16((c) + 16), CC16((c) + 32), CC16((c) + 48)
static const unsigned char cclass[256] = {CC64(0), CC64(64), CC64(128), CC64(192)};

#ifdef __SSE2__
/* Bit i set where p[i], of the 16 bytes at p, is not of the class. A range test moves the
 * range's start to -128 so that one signed comparison checks both ends (bytes >= 0x80 are
 * negative). */
static unsigned misfits_b64(const unsigned char *p) {
  __m128i x = _mm_loadu_si128((const void *)p), ok;
  __m128i lower = _mm_or_si128(x, _mm_set1_epi8(0x20));
  ok = _mm_cmplt_epi8(_mm_add_epi8(lower, _mm_set1_epi8((char)(0x80 - 'a'))),
                      _mm_set1_epi8(-128 + 26));
  ok = _mm_or_si128(ok, _mm_cmplt_epi8(_mm_add_epi8(x, _mm_set1_epi8((char)(0x80 - '0'))),
                                       _mm_set1_epi8(-128 + 10)));
  /* '+' (0x2b) and '/' (0x2f) are the bytes that give '/' with bit 2 set */
  ok = _mm_or_si128(ok, _mm_cmpeq_epi8(_mm_or_si128(x, _mm_set1_epi8(4)), _mm_set1_epi8('/')));
  return ~(unsigned)_mm_movemask_epi8(ok) & 0xffff;
}

static unsigned misfits_plain(const unsigned char *p) {
  __m128i x = _mm_loadu_si128((const void *)p), bad;
  bad = _mm_or_si128(_mm_cmplt_epi8(x, _mm_set1_epi8(0x20)), _mm_cmpeq_epi8(x, _mm_set1_epi8('"')));
  bad = _mm_or_si128(bad, _mm_cmpeq_epi8(x, _mm_set1_epi8('\\')));
  return (unsigned)_mm_movemask_epi8(bad);
}
#endif

const unsigned char *sig_text_skip(const unsigned char *p, const unsigned char *end,
                                   sig_text_class_t cc) {
#ifdef __SSE2__
  for (; end - p >= 32; p += 32) {
    unsigned bad = cc == SIG_CLASS_BASE64 ? misfits_b64(p) | misfits_b64(p + 16) << 16
                                          : misfits_plain(p) | misfits_plain(p + 16) << 16;
    if (bad != 0) return p + __builtin_ctz(bad);
  }
#endif
  while (end - p >= 8 && (cclass[p[0]] & cclass[p[1]] & cclass[p[2]] & cclass[p[3]] & cclass[p[4]] &
                          cclass[p[5]] & cclass[p[6]] & cclass[p[7]] & cc))
    p += 8;
  while (p < end && (cclass[*p] & cc)) p++;
  return p;
}

uint32_t sig_fnv1a(uint32_t h, const void *data, size_t len) {
  const unsigned char *p = data;
  for (size_t i = 0; i < len; i++) h = (h ^ p[i]) * 16777619u;
  return h;
}

/* Format characters that would hide or reorder text (zero-width, bidi controls, BOM). */
static int invisible(uint32_t cp) {
  return (cp >= 0x200b && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202e) ||
         (cp >= 0x2066 && cp <= 0x2069) || cp == 0xfeff;
}

/* One character of s for sig_text_escape (json 0) or sig_text_escape_json (json 1) into piece;
 * returns its length. k is the character's bytes, cp its code point (0x80 for an invalid byte). */
static size_t escape_one(char *piece, const unsigned char *p, size_t k, uint32_t cp, char quote,
                         int json) {
  static const char hex[] = "0123456789abcdef";
  size_t plen = 0;
  if (k == 1 && cp >= 0x20 && cp < 0x7f) {
    if (quote != 0 && (cp == (uint32_t)(unsigned char)quote || cp == '\\')) piece[plen++] = '\\';
    piece[plen++] = (char)cp;
  } else if (cp >= 0xa0 && !invisible(cp)) {
    memcpy(piece, p, k), plen = k;
  } else if (json && (k > 1 || cp < 0x80)) { /* a real character: JSON's own escape */
    piece[plen++] = '\\';
    switch (cp) {
      case '\b': piece[plen++] = 'b'; break;
      case '\t': piece[plen++] = 't'; break;
      case '\n': piece[plen++] = 'n'; break;
      case '\f': piece[plen++] = 'f'; break;
      case '\r': piece[plen++] = 'r'; break;
      default:
        piece[plen++] = 'u';
        for (int shift = 12; shift >= 0; shift -= 4) piece[plen++] = hex[cp >> shift & 15];
    }
  } else { /* text: every byte as \xNN; JSON: a byte that is not UTF-8, as the text would show it */
    for (size_t j = 0; j < k; j++) {
      piece[plen++] = '\\';
      if (json) piece[plen++] = '\\';
      piece[plen++] = 'x', piece[plen++] = hex[p[j] >> 4], piece[plen++] = hex[p[j] & 15];
    }
  }
  return plen;
}

static size_t escape(char *out, size_t outsz, const char *s, size_t n, size_t max, char quote,
                     int json, size_t *consumed) {
  const unsigned char *p = (const unsigned char *)s;
  size_t o = 0, chars = 0, i = 0;
  while (i < n) {
    char piece[4 * 4 + 1];
    size_t plen, k;
    uint32_t cp;
    if (chars == max) break;
    k = sig_utf8_next(p + i, n - i, &cp);
    if (k == 0) k = 1, cp = 0x80; /* an invalid byte shows as \xNN like a C1 control */
    plen = escape_one(piece, p + i, k, cp, quote, json);
    if (o + plen + 4 > outsz) break; /* keep room for "..." and the NUL */
    memcpy(out + o, piece, plen);
    o += plen, i += k, chars++;
  }
  if (consumed != NULL) *consumed = i;
  if (i < n && o + 4 <= outsz) memcpy(out + o, "...", 3), o += 3;
  if (outsz == 0) return 0;
  if (o >= outsz) o = outsz - 1;
  out[o] = '\0';
  return o;
}

size_t sig_text_escape(char *out, size_t outsz, const char *s, size_t n, size_t max, char quote) {
  return escape(out, outsz, s, n, max, quote, 0, NULL);
}

size_t sig_text_escape_json(char *out, size_t outsz, const char *s, size_t n, size_t *consumed) {
  return escape(out, outsz, s, n, SIZE_MAX, '"', 1, consumed);
}
