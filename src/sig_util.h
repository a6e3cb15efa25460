/* Shared helpers: allocation that aborts on out-of-memory, the project's
 * error space (libuv's UV_E* plus a few SIG_E*), and the container macros.
 *
 * One error convention everywhere: 0 on success, a negative SIG_E* or UV_E* on
 * failure. What a peer must be told (an HTTP status or a WebSocket close code,
 * with a message) travels beside the return value in a sig_refusal_t (see
 * sig_proto.h). Incremental decoders (sig_http_feed, sig_ws_feed) return a
 * non-negative event code or a negative error. */
#ifndef SIG_UTIL_H
#define SIG_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Our own error codes live below libuv's (which are small negative errnos
 * and -3000..-4100 on some platforms). */
enum {
  SIG_ECONFIG = -20001,    /* configuration file is invalid */
  SIG_EPROTO = -20002,     /* peer violated the protocol */
  SIG_ETOOBIG = -20003,    /* input exceeds a configured limit */
  SIG_EBADMSG = -20004,    /* a message or request is malformed: the refusal says where */
  SIG_EREFUSED = -20005,   /* refused by policy or state: the refusal says why */
  SIG_EINPROGRESS = -20006 /* the answer comes later, through a callback (the cluster) */
};

/* Monotonic milliseconds (CLOCK_MONOTONIC). */
uint64_t sig_now_ms(void);

/* Returns a static, human-readable string for a SIG_E* or UV_E* code. */
const char *sig_strerror(int err);

/* Allocation: never returns NULL; prints file:line and aborts on OOM. */
#define sig_malloc(n) sig_malloc_at((n), __FILE__, __LINE__)
#define sig_calloc(n, m) sig_calloc_at((n), (m), __FILE__, __LINE__)
#define sig_realloc(p, n) sig_realloc_at((p), (n), __FILE__, __LINE__)
#define sig_strdup(s) sig_strndup_at((s), (size_t)-1, __FILE__, __LINE__)
#define sig_strndup(s, n) sig_strndup_at((s), (n), __FILE__, __LINE__)

void *sig_malloc_at(size_t n, const char *file, int line);
void *sig_calloc_at(size_t n, size_t m, const char *file, int line);
void *sig_realloc_at(void *p, size_t n, const char *file, int line);
/* Copies at most n bytes of s (stops at NUL) and terminates the copy. */
char *sig_strndup_at(const char *s, size_t n, const char *file, int line);

/* For calls that cannot fail with the arguments given (uv_timer_init, uv_timer_start with a
 * callback, uv_read_stop, ...): checked all the same; a failure is a bug, reported with
 * file:line and aborted on, like an out-of-memory. */
#define SIG_MUST(call) sig_must_at((call), #call, __FILE__, __LINE__)
void sig_must_at(int rc, const char *what, const char *file, int line);

/* Reads the regular file at path into *out (heap, n + 1 bytes with a NUL after them; the caller
 * frees it, wiped if it is a secret). Opened without blocking and read with read(2), so a FIFO
 * never holds the loop and no stdio buffer keeps a copy. Returns the length, or a negative error
 * with the reason in why: the OS's words, "it is a folder, not a file", "not a regular file",
 * or "larger than MAX bytes" (SIG_ETOOBIG). */
long sig_read_file(const char *path, size_t max, unsigned char **out, char *why, size_t whylen);

/* A growing text: s[0..n) and a NUL after it; {NULL, 0, 0} is an empty one. The owner frees s. */
typedef struct {
  char *s;
  size_t n, cap;
} sig_buf_t;

/* Appends printf(fmt, ...) to b, growing it as needed. */
__attribute__((format(printf, 2, 3))) void sig_buf_printf(sig_buf_t *b, const char *fmt, ...);

#define SIG_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* The struct of type that holds member at ptr. */
#define SIG_CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#endif
