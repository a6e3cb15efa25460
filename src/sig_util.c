/* Shared helpers: aborting allocators and error strings. */
#include "sig_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "sig_proto.h"

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

void sig_must_at(int rc, const char *what, const char *file, int line) {
  if (rc == 0) return;
  fprintf(stderr, "%s:%d: %s failed: %s\n", file, line, what, sig_strerror(rc));
  abort();
}

int sig_refuse(sig_refusal_t *why, int code, const char *fmt, ...) {
  va_list ap;
  why->code = code;
  va_start(ap, fmt);
  vsnprintf(why->msg, sizeof(why->msg), fmt, ap);
  va_end(ap);
  return SIG_EREFUSED;
}

uint64_t sig_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

const char *sig_strerror(int err) {
  switch (err) {
    case SIG_ECONFIG: return "invalid configuration";
    case SIG_EPROTO: return "protocol error";
    case SIG_ETOOBIG: return "limit exceeded";
    case SIG_EBADMSG: return "malformed message";
    case SIG_EREFUSED: return "refused";
    case SIG_EINPROGRESS: return "in progress";
    default: return uv_strerror(err);
  }
}

void sig_buf_printf(sig_buf_t *b, const char *fmt, ...) {
  va_list ap;
  for (;;) {
    size_t room = b->cap - b->n;
    va_start(ap, fmt);
    int k = vsnprintf(b->s != NULL ? b->s + b->n : NULL, room, fmt, ap);
    va_end(ap);
    if (k < 0) k = 0; /* an encoding error: write nothing rather than garbage */
    if ((size_t)k < room) {
      b->n += (size_t)k;
      return;
    }
    b->cap = (b->n + (size_t)k + 1) * 2;
    b->s = sig_realloc(b->s, b->cap);
  }
}

long sig_read_file(const char *path, size_t max, unsigned char **out, char *why, size_t whylen) {
  struct stat st;
  *out = NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    int e = errno;
    snprintf(why, whylen, "%s", strerror(e));
    return -e;
  }
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    snprintf(why, whylen, "%s",
             S_ISDIR(st.st_mode) ? "it is a folder, not a file" : "not a regular file");
    close(fd);
    return SIG_EREFUSED;
  }
  unsigned char *buf = sig_malloc(max + 2);
  size_t n = 0;
  while (n < max + 1) {
    ssize_t k = read(fd, buf + n, max + 1 - n);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) {
      int e = errno;
      snprintf(why, whylen, "%s", strerror(e));
      memset(buf, 0, max + 2);
      free(buf);
      close(fd);
      return -e;
    }
    if (k == 0) break;
    n += (size_t)k;
  }
  close(fd);
  if (n > max) {
    snprintf(why, whylen, "larger than %zu bytes", max);
    memset(buf, 0, max + 2);
    free(buf);
    return SIG_ETOOBIG;
  }
  buf[n] = '\0';
  *out = buf;
  return (long)n;
}
