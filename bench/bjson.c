/* Strict JSON tokenizer of the load generator (see bjson.h). Strings are scanned eight bytes
 * at a time, since most of what the generator reads is 4 KB SDP strings. */
#include "bjson.h"

#include <string.h>

typedef struct {
  const char *s;
  size_t len, pos;
  bj_tok_t *toks;
  int n, max;
} parser_t;

static int parse_value(parser_t *p, int depth);

static void skip_ws(parser_t *p) {
  while (p->pos < p->len) {
    char c = p->s[p->pos];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return;
    p->pos++;
  }
}

static int add(parser_t *p, bj_type_t type, size_t start) {
  if (p->n >= p->max) return BJ_ENOMEM;
  bj_tok_t *t = &p->toks[p->n];
  memset(t, 0, sizeof(*t));
  t->type = (uint8_t)type;
  t->start = (uint32_t)start;
  return p->n++;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static int hex4(const char *h, unsigned *out) {
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    int d = hexval(h[i]);
    if (d < 0) return -1;
    v = v << 4 | (unsigned)d;
  }
  *out = v;
  return 0;
}

/* Whether any of the 8 bytes is '"', '\\' or a control character (< 0x20). */
static int word_special(uint64_t w) {
  const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
  uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
  uint64_t z = ((q - ones) & ~q) | ((b - ones) & ~b) | ((w - ones * 0x20) & ~w);
  return (z & high) != 0;
}

static int parse_string(parser_t *p) {
  size_t i = p->pos + 1; /* after the opening quote */
  int idx = add(p, BJ_STRING, i);
  if (idx < 0) return idx;
  const char *s = p->s;
  uint8_t escaped = 0;
  for (;;) {
    while (i + 8 <= p->len) {
      uint64_t w;
      memcpy(&w, s + i, 8);
      if (word_special(w)) break;
      i += 8;
    }
    if (i >= p->len) return BJ_EINVAL;
    unsigned char c = (unsigned char)s[i];
    if (c == '"') break;
    if (c < 0x20) return BJ_EINVAL;
    if (c != '\\') {
      i++;
      continue;
    }
    escaped = 1;
    if (i + 1 >= p->len) return BJ_EINVAL;
    char e = s[i + 1];
    if (e == 'u') {
      unsigned u;
      if (i + 6 > p->len || hex4(s + i + 2, &u) != 0) return BJ_EINVAL;
      i += 6;
    } else if (strchr("\"\\/bfnrt", e) != NULL && e != '\0') {
      i += 2;
    } else {
      return BJ_EINVAL;
    }
  }
  bj_tok_t *t = &p->toks[idx];
  t->len = (uint32_t)(i - t->start);
  t->escaped = escaped;
  t->next = (uint32_t)p->n;
  p->pos = i + 1;
  return idx;
}

static int digits(parser_t *p) {
  size_t from = p->pos;
  while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++;
  return p->pos > from ? 0 : BJ_EINVAL;
}

static int parse_number(parser_t *p) {
  size_t start = p->pos;
  int idx = add(p, BJ_NUMBER, start);
  if (idx < 0) return idx;
  if (p->s[p->pos] == '-') p->pos++;
  if (p->pos < p->len && p->s[p->pos] == '0') {
    p->pos++;
  } else if (digits(p) != 0) {
    return BJ_EINVAL;
  }
  if (p->pos < p->len && p->s[p->pos] == '.') {
    p->pos++;
    if (digits(p) != 0) return BJ_EINVAL;
  }
  if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
    p->pos++;
    if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-')) p->pos++;
    if (digits(p) != 0) return BJ_EINVAL;
  }
  p->toks[idx].len = (uint32_t)(p->pos - start);
  p->toks[idx].next = (uint32_t)p->n;
  return idx;
}

static int parse_literal(parser_t *p, const char *word, bj_type_t type) {
  size_t wl = strlen(word);
  if (p->len - p->pos < wl || memcmp(p->s + p->pos, word, wl) != 0) return BJ_EINVAL;
  int idx = add(p, type, p->pos);
  if (idx < 0) return idx;
  p->toks[idx].len = (uint32_t)wl;
  p->toks[idx].next = (uint32_t)p->n;
  p->pos += wl;
  return idx;
}

/* An object or array; p->pos is at its opening bracket. */
static int parse_container(parser_t *p, int depth, int is_object) {
  if (depth >= BJ_MAX_DEPTH) return BJ_EDEPTH;
  size_t start = p->pos;
  int idx = add(p, is_object ? BJ_OBJECT : BJ_ARRAY, start);
  if (idx < 0) return idx;
  char close = is_object ? '}' : ']';
  uint32_t size = 0;
  p->pos++;
  skip_ws(p);
  if (p->pos < p->len && p->s[p->pos] == close) {
    p->pos++;
  } else {
    for (;;) {
      int rc;
      if (is_object) {
        skip_ws(p);
        if (p->pos >= p->len || p->s[p->pos] != '"') return BJ_EINVAL;
        if ((rc = parse_string(p)) < 0) return rc;
        skip_ws(p);
        if (p->pos >= p->len || p->s[p->pos] != ':') return BJ_EINVAL;
        p->pos++;
      }
      if ((rc = parse_value(p, depth + 1)) < 0) return rc;
      size++;
      skip_ws(p);
      if (p->pos >= p->len) return BJ_EINVAL;
      char c = p->s[p->pos++];
      if (c == close) break;
      if (c != ',') return BJ_EINVAL;
    }
  }
  bj_tok_t *t = &p->toks[idx];
  t->size = size;
  t->len = (uint32_t)(p->pos - start);
  t->next = (uint32_t)p->n;
  return idx;
}

static int parse_value(parser_t *p, int depth) {
  skip_ws(p);
  if (p->pos >= p->len) return BJ_EINVAL;
  switch (p->s[p->pos]) {
    case '{': return parse_container(p, depth, 1);
    case '[': return parse_container(p, depth, 0);
    case '"': return parse_string(p);
    case 't': return parse_literal(p, "true", BJ_TRUE);
    case 'f': return parse_literal(p, "false", BJ_FALSE);
    case 'n': return parse_literal(p, "null", BJ_NULL);
    default:
      if (p->s[p->pos] == '-' || (p->s[p->pos] >= '0' && p->s[p->pos] <= '9'))
        return parse_number(p);
      return BJ_EINVAL;
  }
}

int bj_parse(const char *s, size_t len, bj_tok_t *toks, int max_toks) {
  parser_t p = {.s = s, .len = len, .toks = toks, .max = max_toks};
  int rc = parse_value(&p, 0);
  if (rc < 0) return rc;
  skip_ws(&p);
  if (p.pos != len) return BJ_EINVAL;
  return p.n;
}

int bj_elem(const bj_tok_t *toks, int arr, uint32_t k) {
  int i = arr + 1;
  for (uint32_t j = 0; j < k; j++) i = (int)toks[i].next;
  return i;
}

int bj_get(const bj_tok_t *toks, int obj, const char *s, const char *key) {
  if (toks[obj].type != BJ_OBJECT) return -1;
  size_t klen = strlen(key);
  int found = -1, i = obj + 1;
  for (uint32_t m = 0; m < toks[obj].size; m++) {
    if (bj_str_eq(toks, i, s, key, klen)) {
      if (found >= 0) return -2;
      found = i + 1;
    }
    i = (int)toks[i + 1].next;
  }
  return found;
}

/* Appends the UTF-8 encoding of code point cp to out; returns its length. */
static size_t utf8_put(unsigned cp, char *out) {
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char)(0xC0 | cp >> 6);
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xE0 | cp >> 12);
    out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (char)(0xF0 | cp >> 18);
  out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
  out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
  out[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

int bj_str_eq(const bj_tok_t *toks, int i, const char *s, const char *want, size_t len) {
  const bj_tok_t *t = &toks[i];
  if (t->type != BJ_STRING) return 0;
  const char *r = s + t->start;
  if (!t->escaped) return t->len == len && memcmp(r, want, len) == 0;
  size_t ri = 0, wi = 0;
  while (ri < t->len) {
    char buf[4];
    size_t n = 1;
    if (r[ri] != '\\') {
      buf[0] = r[ri++];
    } else {
      char e = r[ri + 1];
      ri += 2;
      switch (e) {
        case 'b': buf[0] = '\b'; break;
        case 'f': buf[0] = '\f'; break;
        case 'n': buf[0] = '\n'; break;
        case 'r': buf[0] = '\r'; break;
        case 't': buf[0] = '\t'; break;
        case 'u': {
          unsigned cp, lo;
          hex4(r + ri, &cp); /* checked by the tokenizer */
          ri += 4;
          if (cp >= 0xD800 && cp < 0xDC00 && ri + 6 <= t->len && r[ri] == '\\' &&
              r[ri + 1] == 'u' && hex4(r + ri + 2, &lo) == 0 && lo >= 0xDC00 && lo < 0xE000) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            ri += 6;
          } else if (cp >= 0xD800 && cp < 0xE000) {
            return 0; /* a lone surrogate equals no UTF-8 text */
          }
          n = utf8_put(cp, buf);
          break;
        }
        default: buf[0] = e; /* " \ / */
      }
    }
    if (wi + n > len || memcmp(want + wi, buf, n) != 0) return 0;
    wi += n;
  }
  return wi == len;
}
