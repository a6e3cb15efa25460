/* JSON codec for docs/PROTOCOL.md. The decoder is a strict RFC 8259 scanner that builds no tree:
 * one pass validates the whole text and notes where the protocol's fields are; only the strings the
 * server reads are copied out, into one allocation. The encoders write each frame into one buffer
 * sized up front, copying the client's SDP and candidate texts verbatim. */
#include "sig_msg.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "sig_util.h"

#define XSTR(x) STR(x)
#define STR(x) #x
#define NAME_CHARS " characters of A-Z a-z 0-9 . _ ~ -"
#define DOMAIN_RULE "must be 1-" XSTR(SIG_MSG_DOMAIN_MAX) NAME_CHARS
#define ID_RULE "must be 1-" XSTR(SIG_MSG_ID_MAX) NAME_CHARS
#define TY_QUOTE_MAX 32
#define KEY_QUOTE_MAX 32
/* An object's duplicate-key check searches its first SMALL_OBJECT keys linearly, then a hash set
 * (a message could otherwise hold thousands of keys to compare pairwise); the keys of the open
 * objects live on the stack up to KEYS_ON_STACK. */
#define SMALL_OBJECT 16
#define KEYS_ON_STACK 64

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

/* Byte classes: PLAIN bytes stand for themselves inside a JSON string (printable ASCII and DEL
 * but '"' and '\\'); B64 bytes are standard base64 characters, all PLAIN too. Strings are scanned
 * 32 bytes at a time with SSE2 where there is SSE2 (all x86-64), else through this table. */
enum { CC_PLAIN = 1, CC_B64 = 2 };
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
/* Bit i set where p[i], of the 16 bytes at p, is not of the class. A range test moves the range's
 * start to -128 so that one signed comparison checks both ends (bytes >= 0x80 are negative). */
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

/* Skips bytes of class cc (CC_PLAIN or CC_B64), many at a time while they last. */
static const unsigned char *skip_class(const unsigned char *p, const unsigned char *end, int cc) {
#ifdef __SSE2__
  for (; end - p >= 32; p += 32) {
    unsigned bad = cc == CC_B64 ? misfits_b64(p) | misfits_b64(p + 16) << 16
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

static int hex_value(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* The code unit of the 4 hex digits at p (4 bytes available), or -1. */
static long hex4(const unsigned char *p) {
  long v = 0;
  for (int i = 0; i < 4; i++) {
    int h = hex_value(p[i]);
    if (h < 0) return -1;
    v = v << 4 | h;
  }
  return v;
}

static size_t utf8_put(char *o, uint32_t cp) {
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

/* The code point at *p in the body of a string the scanner accepted (so escapes are complete,
 * surrogates paired and UTF-8 valid); advances *p past it. */
static uint32_t next_cp(const char **p, const char *end) {
  const unsigned char *s = (const unsigned char *)*p;
  uint32_t cp;
  size_t k = 1;
  if (s[0] != '\\') {
    if (s[0] < 0x80)
      cp = s[0];
    else
      k = sig_utf8_next(s, (size_t)(end - *p), &cp);
  } else {
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    k = 2;
    if (s[1] == 'u') {
      cp = (uint32_t)hex4(s + 2), k = 6;
      if (cp >= 0xd800 && cp <= 0xdbff)
        cp = 0x10000 + ((cp - 0xd800) << 10 | ((uint32_t)hex4(s + 8) - 0xdc00)), k = 12;
    } else {
      cp = (unsigned char)to[strchr(from, s[1]) - from];
    }
  }
  *p += k;
  return cp;
}

/* Writes the value of an accepted string body p[0..end) to o; returns its length (<= end - p). */
static size_t unescape(const char *p, const char *end, char *o) {
  char *start = o;
  while (p < end) {
    const char *bs = memchr(p, '\\', (size_t)(end - p));
    size_t run = (size_t)((bs != NULL ? bs : end) - p);
    memcpy(o, p, run);
    o += run, p += run;
    if (p < end) o += utf8_put(o, next_cp(&p, end));
  }
  return (size_t)(o - start);
}

/* The scanner reads the text once, by recursive descent (at most SIG_MSG_JSON_DEPTH deep), and
 * records the values of the protocol's fields for the checks that follow. */
enum { J_NONE, J_STRING, J_NUMBER, J_OBJECT, J_ARRAY, J_LITERAL };

/* A value the scanner met; for a protocol field, also what the checks need to know about it. */
typedef struct {
  const char *start, *end; /* its text; a string's includes the quotes */
  unsigned char kind;
  unsigned char escaped; /* string: holds a backslash escape */
  unsigned char nul;     /* string: holds \u0000 */
  unsigned char b64;     /* string: base64 characters then at most two '=', no escapes */
  unsigned char spaced;  /* array: whitespace between its tokens */
  unsigned char bad_nul; /* array: element bad is a string with NUL (else not a string) */
  size_t count;          /* array: elements */
  size_t bad;            /* array: first element that is not a NUL-free string, or SIZE_MAX */
  char *copy;            /* string: its value in the arena once copied; array: compacted text */
  size_t copy_len;
} jval_t;

/* The members whose values are recorded: the protocol's fields at the top level and one level down
 * in offer_req and answer_resp. */
enum {
  F_TY,
  F_ID,
  F_TO,
  F_CANDIDATE,
  F_OFFER_SDP,
  F_ANSWER_SDP,
  F_ANSWER_DOMAIN,
  F_OFFER_DOMAIN,
  F_OFFER_REQ,
  F_ANSWER_RESP,
  F_COUNT
};

#define FIELD(name) \
  { name, sizeof(name) - 1 }
static const struct {
  const char *name;
  size_t len;
} fields[F_COUNT] = {
    FIELD("ty"),
    FIELD("id"),
    FIELD("to"),
    FIELD("candidate"),
    FIELD("offer_sdp"),
    FIELD("answer_sdp"),
    FIELD("answer_domain"),
    FIELD("offer_domain"),
    FIELD("offer_req"),
    FIELD("answer_resp"),
};
#define FIELD_NAME_MAX 13

typedef struct {
  jval_t f[F_COUNT];
} record_t;

typedef struct {
  record_t top, offer_req, answer_resp;
} doc_t;

typedef struct {
  const char *p; /* a key's text between its quotes */
  size_t n;
  uint32_t hash; /* of its value, once a hash set needed it */
  int escaped;
} jkey_t;

typedef struct {
  const char *buf, *p, *end;
  doc_t *doc;
  jkey_t *keys; /* keys of the open objects, innermost last */
  size_t nkeys, cap;
  int depth;
  const char *err_at; /* the syntax error: where, and what */
  char what[600];
} scan_t;

static int value(scan_t *s, jval_t *v, record_t *rec);

__attribute__((format(printf, 3, 4))) static int syntax(scan_t *s, const char *at, const char *fmt,
                                                        ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->what, sizeof s->what, fmt, ap);
  va_end(ap);
  s->err_at = at;
  return -1;
}

/* "expected <what>, found <the character at at>" */
static int unexpected(scan_t *s, const char *at, const char *what) {
  char q[32];
  size_t k;
  uint32_t cp;
  if (at == s->end) return syntax(s, at, "expected %s, found end of input", what);
  k = sig_utf8_next((const unsigned char *)at, (size_t)(s->end - at), &cp);
  escape_text(q, sizeof q, at, k == 0 ? 1 : k, 1, 1);
  return syntax(s, at, "expected %s, found '%s'", what, q);
}

static int is_space(char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

/* Skips whitespace; returns whether there was any. */
static int skip_ws(scan_t *s) {
  const char *p = s->p;
  while (s->p < s->end && is_space(*s->p)) s->p++;
  return s->p != p;
}

/* The code unit of the \uXXXX escape at p (p[0..2) is "\u"), or -1 with the syntax error set. */
static long u_escape(scan_t *s, const unsigned char *p) {
  for (int i = 2; i < 6; i++) {
    if (p + i == (const unsigned char *)s->end) return syntax(s, s->end, "unterminated string");
    if (hex_value(p[i]) < 0)
      return syntax(s, (const char *)p, "invalid escape '\\u%.*s': expected 4 hex digits", i - 2,
                    (const char *)p + 2);
  }
  return hex4(p + 2);
}

/* Checks the escape at p (a backslash) in string v; returns the byte after it, or NULL. */
static const unsigned char *escape(scan_t *s, jval_t *v, const unsigned char *p) {
  const unsigned char *end = (const unsigned char *)s->end;
  long cp, lo;
  v->escaped = 1;
  if (end - p < 2) return syntax(s, s->end, "unterminated string"), NULL;
  if (p[1] != 'u') {
    char c[4 * 4 + 1];
    if (p[1] != '\0' && strchr("\"\\/bfnrt", p[1]) != NULL) return p + 2;
    escape_text(c, sizeof c, (const char *)p + 1, 1, 1, 0);
    syntax(s, (const char *)p,
           "invalid escape '\\%s' (valid: \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)", c);
    return NULL;
  }
  if ((cp = u_escape(s, p)) < 0) return NULL;
  if (cp == 0) v->nul = 1;
  if (cp < 0xd800 || cp > 0xdfff) return p + 6;
  if (cp <= 0xdbff) {
    /* a high surrogate: a low one must follow */
    if (end - p <= 7 && (p + 6 == end || p[6] == '\\'))
      return syntax(s, s->end, "unterminated string"), NULL;
    if (p[6] == '\\' && p[7] == 'u') {
      if ((lo = u_escape(s, p + 6)) < 0) return NULL;
      if (lo >= 0xdc00 && lo <= 0xdfff) return p + 12;
    }
  }
  syntax(s, (const char *)p, "unpaired surrogate '\\u%.4s' in a string", p + 2);
  return NULL;
}

static int string(scan_t *s, jval_t *v) {
  const unsigned char *p = (const unsigned char *)s->p + 1, *end = (const unsigned char *)s->end;
  const unsigned char *q;
  v->kind = J_STRING, v->escaped = v->nul = v->b64 = 0;
  /* Base64 first: an SDP is nothing else, and any other string leaves this loop early. */
  q = p = skip_class(p, end, CC_B64);
  while (q < end && *q == '=' && q - p < 2) q++;
  if (q < end && *q == '"') {
    v->b64 = 1;
    s->p = (const char *)q + 1;
    return 0;
  }
  for (;;) {
    uint32_t cp;
    size_t k;
    p = skip_class(p, end, CC_PLAIN);
    if (p == end) return syntax(s, s->end, "unterminated string");
    if (*p == '"') break;
    if (*p == '\\') {
      if ((p = escape(s, v, p)) == NULL) return -1;
    } else if (*p < 0x20) {
      return syntax(s, (const char *)p,
                    "control character 0x%02x in a string (escape it as \\u%04x)", *p, *p);
    } else if ((k = sig_utf8_next(p, (size_t)(end - p), &cp)) != 0) {
      p += k;
    } else {
      return syntax(s, (const char *)p, "invalid UTF-8 byte 0x%02x in a string", *p);
    }
  }
  s->p = (const char *)p + 1;
  return 0;
}

static const char *digits(const char *p, const char *end) {
  while (p < end && *p >= '0' && *p <= '9') p++;
  return p;
}

static int number(scan_t *s, jval_t *v) {
  const char *p = s->p, *end = s->end;
  v->kind = J_NUMBER;
  if (*p == '-') p++;
  if (p < end && *p == '0') {
    if (++p < end && *p >= '0' && *p <= '9')
      return syntax(s, p - 1, "invalid number: leading zero");
  } else if (p < end && *p >= '1' && *p <= '9') {
    p = digits(p, end);
  } else {
    return unexpected(s, p, "a digit after '-'");
  }
  if (p < end && *p == '.') {
    if (++p == end || *p < '0' || *p > '9')
      return unexpected(s, p, "a digit after the decimal point");
    p = digits(p, end);
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    if (++p < end && (*p == '+' || *p == '-')) p++;
    if (p == end || *p < '0' || *p > '9') return unexpected(s, p, "a digit in the exponent");
    p = digits(p, end);
  }
  s->p = p;
  return 0;
}

static int literal(scan_t *s, jval_t *v, const char *word) {
  size_t n = strlen(word);
  for (size_t i = 0; i < n; i++) {
    if (s->p + i == s->end || s->p[i] != word[i]) {
      char what[16];
      snprintf(what, sizeof what, "'%s'", word);
      return unexpected(s, s->p + i, i == 0 ? "a value" : what);
    }
  }
  v->kind = J_LITERAL;
  s->p += n;
  return 0;
}

static uint32_t key_hash(jkey_t *k) {
  if (k->hash == 0) {
    const char *p = k->p, *end = p + k->n;
    uint32_t h = 2166136261u;
    while (p < end) h = (h ^ next_cp(&p, end)) * 16777619u;
    k->hash = h | 1; /* never 0, which means "not computed" */
  }
  return k->hash;
}

static int key_equal(const jkey_t *a, const jkey_t *b) {
  const char *pa = a->p, *ea = a->p + a->n, *pb = b->p, *eb = b->p + b->n;
  if (!a->escaped && !b->escaped) return a->n == b->n && memcmp(a->p, b->p, a->n) == 0;
  while (pa < ea && pb < eb) {
    if (next_cp(&pa, ea) != next_cp(&pb, eb)) return 0;
  }
  return pa == ea && pb == eb;
}

/* The keys of one large object by hash: slots hold key indexes + 1, 0 when free. */
typedef struct {
  uint32_t *slot;
  size_t mask, used;
} keyset_t;

/* Returns the index of a key equal to keys[i] already in set, or inserts i and returns SIZE_MAX. */
static size_t keyset_put(scan_t *s, keyset_t *set, size_t i) {
  size_t h;
  if (2 * (set->used + 1) > set->mask + 1) {
    keyset_t grown = {NULL, set->mask != 0 ? 2 * set->mask + 1 : 4 * SMALL_OBJECT - 1, 0};
    grown.slot = sig_calloc(grown.mask + 1, sizeof *grown.slot);
    for (size_t j = 0; j <= set->mask && set->slot != NULL; j++) {
      if (set->slot[j] != 0) keyset_put(s, &grown, set->slot[j] - 1);
    }
    free(set->slot);
    *set = grown;
  }
  for (h = key_hash(&s->keys[i]) & set->mask; set->slot[h] != 0; h = (h + 1) & set->mask) {
    size_t j = set->slot[h] - 1;
    if (s->keys[j].hash == s->keys[i].hash && key_equal(&s->keys[j], &s->keys[i])) return j;
  }
  set->slot[h] = (uint32_t)(i + 1);
  set->used++;
  return SIZE_MAX;
}

/* Checks the newest key against the other keys of its object (those from first on). */
static int check_duplicate(scan_t *s, size_t first, keyset_t *set) {
  size_t i = s->nkeys - 1, dup = SIZE_MAX;
  if (i - first < SMALL_OBJECT) {
    for (size_t j = first; j < i && dup == SIZE_MAX; j++) {
      if (key_equal(&s->keys[j], &s->keys[i])) dup = j;
    }
  } else {
    if (set->slot == NULL) {
      for (size_t j = first; j < i; j++) keyset_put(s, set, j);
    }
    dup = keyset_put(s, set, i);
  }
  if (dup != SIZE_MAX) {
    char value[4 * (KEY_QUOTE_MAX + 1)], quoted[4 * 4 * KEY_QUOTE_MAX + 8];
    const char *p = s->keys[i].p, *end = p + s->keys[i].n;
    size_t n = 0;
    while (p < end && n + 4 <= sizeof value && n < 4 * KEY_QUOTE_MAX)
      n += utf8_put(value + n, next_cp(&p, end));
    if (p < end) value[n++] = '.'; /* makes escape_text add "..." */
    escape_text(quoted, sizeof quoted, value, n, KEY_QUOTE_MAX, 1);
    return syntax(s, s->keys[i].p - 1, "duplicate key '%s'", quoted);
  }
  return 0;
}

/* Which recorded field key k is, or -1. */
static int field_of(const jkey_t *k) {
  char value[FIELD_NAME_MAX];
  const char *p = k->p, *end = p + k->n;
  size_t n = 0;
  if (k->escaped) {
    while (p < end && n < sizeof value) {
      uint32_t cp = next_cp(&p, end);
      if (cp >= 0x80) return -1;
      value[n++] = (char)cp;
    }
    if (p < end) return -1;
    p = value;
  } else {
    p = k->p, n = k->n;
  }
  for (int f = 0; f < F_COUNT; f++) {
    if (fields[f].len == n && memcmp(fields[f].name, p, n) == 0) return f;
  }
  return -1;
}

static int enter(scan_t *s) {
  if (++s->depth > SIG_MSG_JSON_DEPTH)
    return syntax(s, s->p, "nesting deeper than " XSTR(SIG_MSG_JSON_DEPTH) " levels");
  s->p++;
  return 0;
}

static int next_is(const scan_t *s, char c) {
  return s->p < s->end && *s->p == c;
}

/* rec: where to record the protocol's fields, or NULL. */
static int object(scan_t *s, jval_t *v, record_t *rec) {
  size_t first = s->nkeys;
  keyset_t set = {NULL, 0, 0};
  int rc = -1;
  v->kind = J_OBJECT;
  if (enter(s) != 0) return -1;
  skip_ws(s);
  if (!next_is(s, '}')) {
    for (;;) {
      jval_t key, ignored, *fv = &ignored;
      record_t *child = NULL;
      const char *start = s->p;
      int f;
      if (!next_is(s, '"')) {
        unexpected(s, s->p, s->nkeys == first ? "a string key or '}'" : "a string key");
        goto done;
      }
      if (string(s, &key) != 0) goto done;
      if (s->nkeys == s->cap) {
        jkey_t *grown = sig_malloc(2 * s->cap * sizeof *grown);
        memcpy(grown, s->keys, s->nkeys * sizeof *grown);
        if (s->cap > KEYS_ON_STACK) free(s->keys);
        s->keys = grown, s->cap *= 2;
      }
      s->keys[s->nkeys++] = (jkey_t){start + 1, (size_t)(s->p - start) - 2, 0, key.escaped};
      if (check_duplicate(s, first, &set) != 0) goto done;
      if (rec != NULL && (f = field_of(&s->keys[s->nkeys - 1])) >= 0) {
        fv = &rec->f[f];
        if (rec == &s->doc->top && f == F_OFFER_REQ) child = &s->doc->offer_req;
        if (rec == &s->doc->top && f == F_ANSWER_RESP) child = &s->doc->answer_resp;
      }
      skip_ws(s);
      if (!next_is(s, ':')) {
        unexpected(s, s->p, "':' after the key");
        goto done;
      }
      s->p++;
      if (value(s, fv, child) != 0) goto done;
      skip_ws(s);
      if (next_is(s, '}')) break;
      if (!next_is(s, ',')) {
        unexpected(s, s->p, "',' or '}' after an object member");
        goto done;
      }
      s->p++;
      skip_ws(s);
      if (next_is(s, '}')) {
        syntax(s, s->p, "trailing comma before '}'");
        goto done;
      }
    }
  }
  s->p++;
  s->depth--;
  rc = 0;
done:
  free(set.slot);
  s->nkeys = first;
  return rc;
}

static int array(scan_t *s, jval_t *v) {
  v->kind = J_ARRAY, v->count = 0, v->bad = SIZE_MAX, v->bad_nul = 0;
  if (enter(s) != 0) return -1;
  v->spaced = (unsigned char)skip_ws(s);
  if (!next_is(s, ']')) {
    for (;;) {
      jval_t e;
      if (value(s, &e, NULL) != 0) return -1;
      if (v->bad == SIZE_MAX && (e.kind != J_STRING || e.nul))
        v->bad = v->count, v->bad_nul = e.kind == J_STRING;
      v->count++;
      v->spaced |= skip_ws(s);
      if (next_is(s, ']')) break;
      if (!next_is(s, ',')) return unexpected(s, s->p, "',' or ']' after an array element");
      s->p++;
      v->spaced |= skip_ws(s);
      if (next_is(s, ']')) return syntax(s, s->p, "trailing comma before ']'");
    }
  }
  s->p++;
  s->depth--;
  return 0;
}

static int value(scan_t *s, jval_t *v, record_t *rec) {
  int rc;
  skip_ws(s);
  v->start = s->p;
  if (s->p == s->end) return unexpected(s, s->p, "a value");
  switch (*s->p) {
    case '"': rc = string(s, v); break;
    case '{': rc = object(s, v, rec); break;
    case '[': rc = array(s, v); break;
    case 't': rc = literal(s, v, "true"); break;
    case 'f': rc = literal(s, v, "false"); break;
    case 'n': rc = literal(s, v, "null"); break;
    case '-':
    case '0':
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
    case '8':
    case '9': rc = number(s, v); break;
    default: return unexpected(s, s->p, "a value");
  }
  v->end = s->p;
  return rc;
}

/* Line and character column (1-based; the column of the character at err_at, or of the last one
 * at the end of the input) of the syntax error, found only when there is one. */
static void position(const scan_t *s, size_t *line, size_t *column) {
  const unsigned char *p = (const unsigned char *)s->buf, *at = (const unsigned char *)s->err_at;
  const unsigned char *start = p;
  size_t chars = 0;
  *line = 1;
  for (; p < at; p++) {
    if (*p == '\n') (*line)++, start = p + 1;
  }
  for (p = start; p < at;) {
    uint32_t cp;
    size_t k = sig_utf8_next(p, (size_t)(at - p), &cp);
    p += k == 0 ? 1 : k, chars++;
  }
  *column = chars + (s->err_at < s->end);
}

/* Scans buf[0..len) into root and doc; returns 0, or -1 with the error in s. */
static int scan(scan_t *s, const char *buf, size_t len, jval_t *root, doc_t *doc) {
  static const char bom[] = "\xef\xbb\xbf";
  s->buf = s->p = buf, s->end = buf + len;
  s->doc = doc;
  s->depth = 0;
  if (len >= 3 && memcmp(buf, bom, 3) == 0)
    return syntax(s, buf, "byte order mark (U+FEFF) before the JSON text");
  if (value(s, root, &doc->top) != 0) return -1;
  skip_ws(s);
  if (s->p != s->end) return unexpected(s, s->p, "end of input after the JSON value");
  return 0;
}

/* The checks run on the recorded fields once the text is known to be JSON, in the order that
 * docs/PROTOCOL.md gives, and stop at the first problem. */
typedef struct {
  char *err;
  size_t errlen;
  const char *path; /* prefix naming the enclosing object: "" or "offer_req." */
  char *arena;      /* the decoded strings, allocated after the scan */
  size_t used;
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

/* The string's value, copied into the arena on first use. */
static const char *decoded(check_t *c, jval_t *v) {
  if (v->copy == NULL) {
    const char *p = v->start + 1, *end = v->end - 1;
    char *o = c->arena + c->used;
    size_t n = (size_t)(end - p);
    if (v->escaped)
      n = unescape(p, end, o);
    else
      memcpy(o, p, n);
    o[n] = '\0';
    c->used += n + 1;
    v->copy = o, v->copy_len = n;
  }
  return v->copy;
}

/* A candidate array's text without the whitespace between its elements, in the arena. */
static void compact(check_t *c, jval_t *v) {
  char *o = c->arena + c->used, *start = o;
  for (const char *p = v->start; p < v->end;) {
    if (*p == '"') {
      const char *q = p + 1;
      while (*q != '"') q += *q == '\\' ? 2 : 1;
      memcpy(o, p, (size_t)(q + 1 - p));
      o += q + 1 - p, p = q + 1;
    } else if (is_space(*p)) {
      p++;
    } else {
      *o++ = *p++;
    }
  }
  c->used += (size_t)(o - start);
  v->copy = start, v->copy_len = (size_t)(o - start);
}

/* Sizes the arena for every string the checks may copy out and every array they may compact. */
static size_t arena_size(const doc_t *doc) {
  const record_t *recs[] = {&doc->top, &doc->offer_req, &doc->answer_resp};
  size_t n = 0;
  for (size_t r = 0; r < SIG_ARRAY_SIZE(recs); r++) {
    for (int f = 0; f < F_COUNT; f++) {
      const jval_t *v = &recs[r]->f[f];
      if (v->kind == J_STRING) n += (size_t)(v->end - v->start) - 1;
      if (v->kind == J_ARRAY && v->spaced) n += (size_t)(v->end - v->start);
    }
  }
  return n;
}

static int parse(check_t *c, const char *buf, size_t len, doc_t *doc) {
  jkey_t keys[KEYS_ON_STACK];
  scan_t s = {.keys = keys, .cap = KEYS_ON_STACK};
  jval_t root;
  size_t size;
  int rc = scan(&s, buf != NULL ? buf : "", buf != NULL ? len : 0, &root, doc);
  if (s.keys != keys) free(s.keys);
  if (rc != 0) {
    size_t line, column;
    position(&s, &line, &column);
    return fail(c, "body: invalid JSON: %s at line %zu column %zu", s.what, line, column);
  }
  if (root.kind != J_OBJECT) return fail(c, "body: expected a JSON object");
  if ((size = arena_size(doc)) > 0) c->arena = sig_malloc(size);
  return 0;
}

static int get_string(check_t *c, jval_t *v, const char *key, int required) {
  if (v->kind == J_NONE) return required ? fail(c, "%s%s: required", c->path, key) : 0;
  if (v->kind != J_STRING) return fail(c, "%s%s: expected a string", c->path, key);
  if (v->nul) return fail(c, "%s%s: must not contain NUL", c->path, key);
  return 0;
}

static int get_name(check_t *c, record_t *rec, int f, int required, size_t max, const char *rule,
                    const char **out) {
  jval_t *v = &rec->f[f];
  int rc = get_string(c, v, fields[f].name, required);
  *out = NULL;
  if (rc != 0 || v->kind == J_NONE) return rc;
  decoded(c, v);
  if (!name_valid(v->copy, v->copy_len, max))
    return fail(c, "%s%s: %s", c->path, fields[f].name, rule);
  *out = v->copy;
  return 0;
}

static int get_domain(check_t *c, record_t *rec, int f, int required, const char **out) {
  return get_name(c, rec, f, required, SIG_MSG_DOMAIN_MAX, DOMAIN_RULE, out);
}

static int get_id(check_t *c, record_t *rec, const char **out) {
  return get_name(c, rec, F_ID, 0, SIG_MSG_ID_MAX, ID_RULE, out);
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
    if (skip_class(p, p + n - pad, CC_B64) != p + n - pad) return SDP_NOT_BASE64;
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

static int get_sdp(check_t *c, record_t *rec, int f, const char **out, sig_msg_t *m) {
  jval_t *v = &rec->f[f];
  int rc = get_string(c, v, fields[f].name, 1);
  if (rc != 0) return rc;
  decoded(c, v);
  switch (sdp_check(v->copy, v->copy_len, v->b64)) {
    case SDP_NOT_BASE64: return fail(c, "%s%s: not valid base64", c->path, fields[f].name);
    case SDP_NOT_SDP:
      return fail(c, "%s%s: not an SDP (decoded text must start with \"v=\")", c->path,
                  fields[f].name);
    default: break;
  }
  *out = v->copy;
  m->sdp_raw = v->start;
  m->sdp_raw_len = (size_t)(v->end - v->start);
  return 0;
}

static int get_candidates(check_t *c, record_t *rec, sig_msg_t *m) {
  jval_t *v = &rec->f[F_CANDIDATE];
  if (v->kind == J_NONE) return fail(c, "%scandidate: required", c->path);
  if (v->kind != J_ARRAY) return fail(c, "%scandidate: expected an array of strings", c->path);
  if (v->bad != SIZE_MAX) {
    if (v->bad_nul) return fail(c, "%scandidate[%zu]: must not contain NUL", c->path, v->bad);
    return fail(c, "%scandidate[%zu]: expected a string", c->path, v->bad);
  }
  if (v->spaced) {
    compact(c, v);
    m->cand_raw = v->copy, m->cand_raw_len = v->copy_len;
  } else {
    m->cand_raw = v->start, m->cand_raw_len = (size_t)(v->end - v->start);
  }
  m->ncandidates = v->count;
  return 0;
}

static int get_object(check_t *c, record_t *rec, int f, int required) {
  jval_t *v = &rec->f[f];
  if (v->kind == J_NONE) return required ? fail(c, "%s%s: required", c->path, fields[f].name) : 0;
  if (v->kind != J_OBJECT) return fail(c, "%s%s: expected an object", c->path, fields[f].name);
  return 0;
}

static int decode_offer_req(check_t *c, record_t *req, int offer_domain_required, sig_msg_t *m) {
  int rc;
  if ((rc = get_sdp(c, req, F_OFFER_SDP, &m->offer_sdp, m)) != 0 ||
      (rc = get_candidates(c, req, m)) != 0 ||
      (rc = get_domain(c, req, F_ANSWER_DOMAIN, 1, &m->answer_domain)) != 0 ||
      (rc = get_domain(c, req, F_OFFER_DOMAIN, offer_domain_required, &m->offer_domain)) != 0)
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
  check_t c = {err, errlen, "", NULL, 0};
  doc_t doc;
  int rc;
  memset(m, 0, sizeof *m);
  memset(&doc, 0, sizeof doc);
  if ((rc = parse(&c, buf, len, &doc)) != 0) return rc;
  if ((rc = decode_offer_req(&c, &doc.top, 1, m)) != 0 ||
      (rc = get_id(&c, &doc.top, &m->id)) != 0 || (rc = check_domains_differ(&c, m)) != 0) {
    free(c.arena);
    memset(m, 0, sizeof *m);
    return rc;
  }
  m->arena = c.arena;
  return 0;
}

static int decode_offer_frame(check_t *c, doc_t *doc, sig_msg_t *m) {
  int rc;
  if ((rc = get_object(c, &doc->top, F_OFFER_REQ, 1)) != 0) return rc;
  c->path = "offer_req.";
  if ((rc = decode_offer_req(c, &doc->offer_req, 0, m)) != 0) return rc;
  if ((rc = check_domains_differ(c, m)) != 0) return rc;
  c->path = "";
  return get_id(c, &doc->top, &m->id);
}

static int decode_answer_frame(check_t *c, doc_t *doc, sig_msg_t *m) {
  record_t *resp = &doc->answer_resp;
  int rc;
  if ((rc = get_object(c, &doc->top, F_ANSWER_RESP, 1)) != 0) return rc;
  c->path = "answer_resp.";
  if ((rc = get_sdp(c, resp, F_ANSWER_SDP, &m->answer_sdp, m)) != 0 ||
      (rc = get_candidates(c, resp, m)) != 0 ||
      (rc = get_domain(c, resp, F_ANSWER_DOMAIN, 0, &m->answer_domain)) != 0)
    return rc;
  c->path = "";
  if ((rc = get_object(c, &doc->top, F_OFFER_REQ, 0)) != 0) return rc;
  if (doc->top.f[F_OFFER_REQ].kind == J_OBJECT) {
    c->path = "offer_req.";
    if ((rc = get_domain(c, &doc->offer_req, F_OFFER_DOMAIN, 0, &m->echo_offer_domain)) != 0)
      return rc;
    c->path = "";
  }
  return get_id(c, &doc->top, &m->id);
}

static int decode_candidate_frame(check_t *c, doc_t *doc, sig_msg_t *m) {
  int rc;
  if ((rc = get_domain(c, &doc->top, F_TO, 1, &m->to)) != 0 ||
      (rc = get_candidates(c, &doc->top, m)) != 0)
    return rc;
  return get_id(c, &doc->top, &m->id);
}

static int decode_bye_frame(check_t *c, doc_t *doc, sig_msg_t *m) {
  int rc;
  if ((rc = get_domain(c, &doc->top, F_TO, 1, &m->to)) != 0) return rc;
  return get_id(c, &doc->top, &m->id);
}

static const struct {
  const char *name;
  sig_msg_type_t type;
  int (*decode)(check_t *c, doc_t *doc, sig_msg_t *m);
} frame_types[] = {
    {"offer", SIG_MSG_OFFER, decode_offer_frame},
    {"answer", SIG_MSG_ANSWER, decode_answer_frame},
    {"candidate", SIG_MSG_CANDIDATE, decode_candidate_frame},
    {"bye", SIG_MSG_BYE, decode_bye_frame},
};

static int decode_typed(check_t *c, doc_t *doc, sig_msg_t *m) {
  jval_t *ty = &doc->top.f[F_TY];
  int rc;
  char quoted[12 * TY_QUOTE_MAX + 8]; /* 3-byte format characters become 12 */
  if ((rc = get_string(c, ty, "ty", 1)) != 0) return rc;
  decoded(c, ty);
  for (size_t i = 0; i < SIG_ARRAY_SIZE(frame_types); i++) {
    if (strcmp(ty->copy, frame_types[i].name) == 0) {
      if ((rc = frame_types[i].decode(c, doc, m)) != 0) return rc;
      m->type = frame_types[i].type;
      return 0;
    }
  }
  escape_text(quoted, sizeof quoted, ty->copy, ty->copy_len, TY_QUOTE_MAX, 1);
  return fail(c, "ty: unknown message type '%s'", quoted);
}

int sig_msg_decode_frame(sig_msg_t *m, const char *buf, size_t len, char *err, size_t errlen) {
  check_t c = {err, errlen, "", NULL, 0};
  doc_t doc;
  jval_t *id = &doc.top.f[F_ID];
  int rc;
  memset(m, 0, sizeof *m);
  memset(&doc, 0, sizeof doc);
  if ((rc = parse(&c, buf, len, &doc)) != 0) return rc;
  if ((rc = decode_typed(&c, &doc, m)) == 0) {
    m->arena = c.arena;
    return 0;
  }
  /* The id is judged apart from the failed checks so that the error frame can still name it. */
  memset(m, 0, sizeof *m);
  if (id->kind == J_STRING && !id->nul) decoded(&c, id);
  if (id->copy != NULL && sig_msg_id_valid(id->copy, id->copy_len)) {
    m->arena = c.arena;
    m->id = id->copy;
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

/* Writes s as a JSON string to o when o is not NULL, and returns its length either way: '"', '\\'
 * and control characters escaped, invalid UTF-8 replaced by U+FFFD rather than refused (messages
 * quote what peers sent). NULL is null. */
static size_t json_text(char *o, const char *s) {
  const unsigned char *p = (const unsigned char *)s, *end;
  size_t n = 0;
#define EMIT(src, k)                                  \
  do {                                                \
    if (o != NULL) memcpy(o + n, (src), (size_t)(k)); \
    n += (size_t)(k);                                 \
  } while (0)
  if (s == NULL) {
    EMIT("null", 4);
    return n;
  }
  EMIT("\"", 1);
  end = p + strlen(s);
  for (;;) {
    const unsigned char *run = p;
    uint32_t cp;
    size_t k;
    p = skip_class(p, end, CC_PLAIN);
    EMIT(run, p - run);
    if (p == end) break;
    if (*p == '"' || *p == '\\') {
      char esc[2] = {'\\', (char)*p};
      EMIT(esc, 2);
      p++;
    } else if (*p < 0x20) {
      static const char short_esc[] = "\b\f\n\r\t", letter[] = "bfnrt";
      const char *e = strchr(short_esc, *p);
      char esc[8];
      if (e != NULL) {
        esc[0] = '\\', esc[1] = letter[e - short_esc];
        EMIT(esc, 2);
      } else {
        snprintf(esc, sizeof esc, "\\u%04X", *p);
        EMIT(esc, 6);
      }
      p++;
    } else if ((k = sig_utf8_next(p, (size_t)(end - p), &cp)) == 0) {
      EMIT("\xef\xbf\xbd", 3);
      p++;
    } else {
      EMIT(p, k);
      p += k;
    }
  }
  EMIT("\"", 1);
#undef EMIT
  return n;
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
  for (size_t i = 0; i < n; i++) size += pc[i].n == TEXT ? json_text(NULL, pc[i].s) : pc[i].n;
  o = out = sig_malloc(size);
  for (size_t i = 0; i < n; i++) {
    if (pc[i].n == TEXT) {
      o += json_text(o, pc[i].s);
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
