/* The JSON scanner reads the text once, by recursive descent (at most SIG_JSON_DEPTH deep),
 * validating everything RFC 8259 asks and recording the members a schema names; the string
 * writer is its counterpart for encoders. */
#include "sig_json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sig_text.h"
#include "sig_util.h"

#define XSTR(x) STR(x)
#define STR(x) #x
#define KEY_QUOTE_MAX 32
/* An object's duplicate-key check searches its first SMALL_OBJECT keys linearly, then a hash set
 * (a text could otherwise hold thousands of keys to compare pairwise); the keys of the open
 * objects live on the stack up to KEYS_ON_STACK. */
#define SMALL_OBJECT 16
#define KEYS_ON_STACK 64
/* Schema names are shorter than this (sig_json.h). */
#define NAME_MAX_LEN 64

/* The code unit of the 4 hex digits at p (4 bytes available), or -1. */
static long hex4(const unsigned char *p) {
  long v = 0;
  for (int i = 0; i < 4; i++) {
    int h = sig_hex_value(p[i]);
    if (h < 0) return -1;
    v = v << 4 | h;
  }
  return v;
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
    if (p < end) o += sig_utf8_put(o, next_cp(&p, end));
  }
  return (size_t)(o - start);
}

typedef struct {
  const char *p; /* a key's text between its quotes */
  size_t n;
  uint32_t hash; /* of its value, once a hash set needed it */
  int escaped;
} jkey_t;

typedef struct {
  const char *buf, *p, *end;
  sig_json_val_t *slots; /* the caller's, indexed by sig_json_member_t.slot */
  jkey_t *keys;          /* keys of the open objects, innermost last */
  size_t nkeys, cap;
  int depth;
  const char *err_at; /* the syntax error: where, and what */
  char what[600];
} scan_t;

static int value(scan_t *s, sig_json_val_t *v, const sig_json_schema_t *schema);

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
  sig_text_escape(q, sizeof q, at, k == 0 ? 1 : k, 1, '\'');
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
    if (sig_hex_value(p[i]) < 0)
      return syntax(s, (const char *)p, "invalid escape '\\u%.*s': expected 4 hex digits", i - 2,
                    (const char *)p + 2);
  }
  return hex4(p + 2);
}

/* Checks the escape at p (a backslash) in string v; returns the byte after it, or NULL. */
static const unsigned char *escape(scan_t *s, sig_json_val_t *v, const unsigned char *p) {
  const unsigned char *end = (const unsigned char *)s->end;
  long cp, lo;
  v->escaped = 1;
  if (end - p < 2) return syntax(s, s->end, "unterminated string"), NULL;
  if (p[1] != 'u') {
    char c[4 * 4 + 1];
    if (p[1] != '\0' && strchr("\"\\/bfnrt", p[1]) != NULL) return p + 2;
    sig_text_escape(c, sizeof c, (const char *)p + 1, 1, 1, 0);
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

static int string(scan_t *s, sig_json_val_t *v) {
  const unsigned char *p = (const unsigned char *)s->p + 1, *end = (const unsigned char *)s->end;
  const unsigned char *q;
  v->kind = SIG_JSON_STRING, v->escaped = v->nul = v->base64 = 0;
  /* Base64 first: an SDP is nothing else, and any other string leaves this loop early. */
  q = p = sig_text_skip(p, end, SIG_CLASS_BASE64);
  while (q < end && *q == '=' && q - p < 2) q++;
  if (q < end && *q == '"') {
    v->base64 = 1;
    s->p = (const char *)q + 1;
    return 0;
  }
  for (;;) {
    uint32_t cp;
    size_t k;
    p = sig_text_skip(p, end, SIG_CLASS_STRING_SAFE);
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

static int number(scan_t *s, sig_json_val_t *v) {
  const char *p = s->p, *end = s->end;
  v->kind = SIG_JSON_NUMBER;
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

static int literal(scan_t *s, sig_json_val_t *v, const char *word) {
  size_t n = strlen(word);
  for (size_t i = 0; i < n; i++) {
    if (s->p + i == s->end || s->p[i] != word[i]) {
      char what[16];
      snprintf(what, sizeof what, "'%s'", word);
      return unexpected(s, s->p + i, i == 0 ? "a value" : what);
    }
  }
  v->kind = SIG_JSON_LITERAL;
  s->p += n;
  return 0;
}

static uint32_t key_hash(jkey_t *k) {
  if (k->hash == 0) {
    const char *p = k->p, *end = p + k->n;
    uint32_t h = SIG_FNV1A_INIT;
    while (p < end) { /* over the value's UTF-8, escapes undone */
      char u[4];
      h = sig_fnv1a(h, u, sig_utf8_put(u, next_cp(&p, end)));
    }
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
      n += sig_utf8_put(value + n, next_cp(&p, end));
    if (p < end) value[n++] = '.'; /* makes escape_text add "..." */
    sig_text_escape(quoted, sizeof quoted, value, n, KEY_QUOTE_MAX, '\'');
    return syntax(s, s->keys[i].p - 1, "duplicate key '%s'", quoted);
  }
  return 0;
}

/* The member of schema that key k names, or NULL. */
static const sig_json_member_t *member_of(const sig_json_schema_t *schema, const jkey_t *k) {
  char value[NAME_MAX_LEN];
  const char *p = k->p, *end = p + k->n;
  size_t n = 0;
  if (k->escaped) {
    while (p < end && n < sizeof value) {
      uint32_t cp = next_cp(&p, end);
      if (cp >= 0x80) return NULL;
      value[n++] = (char)cp;
    }
    if (p < end) return NULL;
    p = value;
  } else {
    p = k->p, n = k->n;
  }
  for (size_t i = 0; i < schema->n; i++) {
    const sig_json_member_t *m = &schema->members[i];
    if (strlen(m->name) == n && memcmp(m->name, p, n) == 0) return m;
  }
  return NULL;
}

static int enter(scan_t *s) {
  if (++s->depth > SIG_JSON_DEPTH)
    return syntax(s, s->p, "nesting deeper than " XSTR(SIG_JSON_DEPTH) " levels");
  s->p++;
  return 0;
}

static int next_is(const scan_t *s, char c) {
  return s->p < s->end && *s->p == c;
}

/* schema: the members to record, or NULL. */
static int object(scan_t *s, sig_json_val_t *v, const sig_json_schema_t *schema) {
  size_t first = s->nkeys;
  keyset_t set = {NULL, 0, 0};
  int rc = -1;
  v->kind = SIG_JSON_OBJECT;
  if (enter(s) != 0) return -1;
  skip_ws(s);
  if (!next_is(s, '}')) {
    for (;;) {
      sig_json_val_t key, ignored, *fv = &ignored;
      const sig_json_schema_t *child = NULL;
      const sig_json_member_t *m;
      const char *start = s->p;
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
      if (schema != NULL && (m = member_of(schema, &s->keys[s->nkeys - 1])) != NULL) {
        fv = &s->slots[m->slot];
        child = m->object;
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

static int array(scan_t *s, sig_json_val_t *v) {
  v->kind = SIG_JSON_ARRAY, v->count = 0, v->bad = SIZE_MAX, v->bad_nul = 0;
  if (enter(s) != 0) return -1;
  v->spaced = (unsigned char)skip_ws(s);
  if (!next_is(s, ']')) {
    for (;;) {
      sig_json_val_t e;
      if (value(s, &e, NULL) != 0) return -1;
      if (v->bad == SIZE_MAX && (e.kind != SIG_JSON_STRING || e.nul))
        v->bad = v->count, v->bad_nul = e.kind == SIG_JSON_STRING;
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

static int value(scan_t *s, sig_json_val_t *v, const sig_json_schema_t *schema) {
  int rc;
  skip_ws(s);
  v->start = s->p;
  if (s->p == s->end) return unexpected(s, s->p, "a value");
  switch (*s->p) {
    case '"': rc = string(s, v); break;
    case '{': rc = object(s, v, schema); break;
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

int sig_json_scan(const char *buf, size_t len, const sig_json_schema_t *schema,
                  sig_json_val_t *slots, sig_json_val_t *root, char *err, size_t errlen) {
  static const char bom[] = "\xef\xbb\xbf";
  jkey_t keys[KEYS_ON_STACK];
  scan_t s = {.keys = keys, .cap = KEYS_ON_STACK, .slots = slots};
  int rc = -1;
  if (buf == NULL) buf = "", len = 0;
  s.buf = s.p = buf, s.end = buf + len;
  memset(root, 0, sizeof *root);
  if (len >= 3 && memcmp(buf, bom, 3) == 0)
    syntax(&s, buf, "byte order mark (U+FEFF) before the JSON text");
  else if (value(&s, root, schema) == 0) {
    skip_ws(&s);
    if (s.p == s.end)
      rc = 0;
    else
      unexpected(&s, s.p, "end of input after the JSON value");
  }
  if (s.keys != keys) free(s.keys);
  if (rc == 0) return 0;
  if (err != NULL && errlen > 0) {
    size_t line, column;
    position(&s, &line, &column);
    snprintf(err, errlen, "%s at line %zu column %zu", s.what, line, column);
  }
  return SIG_EBADMSG;
}

size_t sig_json_string_value(const sig_json_val_t *v, char *out) {
  const char *p = v->start + 1, *end = v->end - 1;
  size_t n = (size_t)(end - p);
  if (v->escaped) return unescape(p, end, out);
  memcpy(out, p, n);
  return n;
}

size_t sig_json_compact(const sig_json_val_t *v, char *out) {
  char *o = out;
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
  return (size_t)(o - out);
}

int sig_json_each_string(const sig_json_val_t *v, int (*each)(void *arg, const sig_json_val_t *s),
                         void *arg) {
  const char *p = v->start + 1, *end = v->end - 1; /* inside the brackets */
  for (;;) {
    while (p < end && is_space(*p)) p++;
    if (p >= end || *p != '"') return 0; /* a scanned array of strings: only ']' is left */
    sig_json_val_t s = {.start = p, .kind = SIG_JSON_STRING};
    for (p++; *p != '"'; p++)
      if (*p == '\\') s.escaped = 1, p++;
    s.end = ++p;
    int rc = each(arg, &s);
    if (rc != 0) return rc;
    while (p < end && (is_space(*p) || *p == ',')) p++;
  }
}

/* Invalid UTF-8 is replaced rather than refused: messages quote what peers sent. */
size_t sig_json_write_string(char *o, const char *s) {
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
    p = sig_text_skip(p, end, SIG_CLASS_STRING_SAFE);
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
