/* Shared helpers: aborting allocators, error strings, UTF-8 decoding. */
#include "sig_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static void oom(size_t n, const char *file, int line) {
  fprintf(stderr, "%s:%d: out of memory allocating %zu bytes\n", file, line, n);
  abort();
}

void *sig_malloc_at(size_t n, const char *file, int line) {
  void *p = malloc(n ? n : 1);
  if (p == NULL) oom(n, file, line);
  return p;
}

void *sig_calloc_at(size_t n, size_t m, const char *file, int line) {
  void *p = calloc(n ? n : 1, m ? m : 1);
  if (p == NULL) oom(n * m, file, line);
  return p;
}

void *sig_realloc_at(void *p, size_t n, const char *file, int line) {
  void *q = realloc(p, n ? n : 1);
  if (q == NULL) oom(n, file, line);
  return q;
}

char *sig_strndup_at(const char *s, size_t n, const char *file, int line) {
  size_t len = strnlen(s, n);
  char *p = sig_malloc_at(len + 1, file, line);
  memcpy(p, s, len);
  p[len] = '\0';
  return p;
}

const char *sig_strerror(int err) {
  switch (err) {
    case SIG_ECONFIG: return "invalid configuration";
    case SIG_EPROTO: return "protocol error";
    case SIG_ETOOBIG: return "limit exceeded";
    default: return uv_strerror(err);
  }
}

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
