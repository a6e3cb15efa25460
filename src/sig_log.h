/* The server's log: one line per event, "TIMESTAMP LEVEL MODULE event key=value…"
 * with an ISO-8601 UTC timestamp, or one JSON object per line
 * ({"ts":…,"level":…,"module":…,"event":…, and a member per field; "msg" for a line of
 * free text}). Every value is escaped: a line can neither be split nor fool a
 * terminal. Events that a peer can cause carry a scope (the peer's address or
 * domain): the same event from the same scope is written a few times a second at
 * most, then counted and summed up in one "suppressed" line. Writes go to stderr
 * until sig_log_open succeeds. */
#ifndef SIG_LOG_H
#define SIG_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "sig_config.h"
#include "sig_util.h"

/* Creates dir (and its parents) if missing and opens dir/file for appending; file "-" is
 * standard output (dir is not used). Returns 0, or a negative error with a message for
 * humans in err (the log in use, if any, stays open). */
int sig_log_open(const char *dir, const char *file, sig_log_level_t level, char *err,
                 size_t errlen);
/* Whether sig_log_open(dir, file) would succeed, found out without creating anything: the
 * nearest existing folder of dir must be a folder this process may write in (with its
 * effective ids), an existing dir/file a file it may write. Returns 0, or a negative error
 * with the message sig_log_open would give in err. */
int sig_log_check(const char *dir, const char *file, char *err, size_t errlen);
/* Reopens the same path (after logrotate moved it). Keeps the old file on failure. Nothing
 * for standard output. */
int sig_log_reopen(void);
/* Closes the file (standard output stays open); writes go to stderr again. */
void sig_log_close(void);
void sig_log_set_level(sig_log_level_t level);
/* Text (the default) or JSON lines from now on. */
void sig_log_set_format(sig_log_format_t format);
int sig_log_enabled(sig_log_level_t level);
/* Full path of the open log file, "-" for standard output, or NULL. */
const char *sig_log_path(void);

/* A line of free text (the server's own events: start, stop, signals). Control
 * characters and invalid UTF-8 in the formatted text are escaped as \xHH. */
void sig_log_write(sig_log_level_t level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define SIG_LOG(level, module, ...)                                            \
  do {                                                                         \
    if (sig_log_enabled(level)) sig_log_write((level), (module), __VA_ARGS__); \
  } while (0)
#define SIG_DEBUG(module, ...) SIG_LOG(SIG_LOG_DEBUG, module, __VA_ARGS__)
#define SIG_INFO(module, ...) SIG_LOG(SIG_LOG_INFO, module, __VA_ARGS__)
#define SIG_WARN(module, ...) SIG_LOG(SIG_LOG_WARN, module, __VA_ARGS__)
#define SIG_ERROR(module, ...) SIG_LOG(SIG_LOG_ERROR, module, __VA_ARGS__)

/* One field of an event. */
typedef struct {
  const char *key;
  const char *s; /* a string value; NULL: the integer i */
  size_t len;    /* bytes of s, or SIZE_MAX: s is NUL-terminated */
  int64_t i;
} sig_log_kv_t;

/* A string field (NULL is written as "-"), a field of n bytes, an integer field. */
static inline sig_log_kv_t SIG_KV(const char *k, const char *v) {
  return (sig_log_kv_t){k, v != NULL ? v : "-", SIZE_MAX, 0};
}
static inline sig_log_kv_t SIG_KVN(const char *k, const char *v, size_t n) {
  return (sig_log_kv_t){k, v, n, 0};
}
static inline sig_log_kv_t SIG_KVI(const char *k, int64_t v) {
  return (sig_log_kv_t){k, NULL, 0, v};
}

/* Writes an event with its fields (text: key=value, a value quoted and escaped when it
 * holds anything but printable ASCII without space, '"', '\\' or '='; JSON: "key":value,
 * a field named ts, level, module or event as "ts_" and so on). scope, when not
 * NULL, throttles it: the same event (the same `event` pointer) for the same scope is
 * written at most SIG_LOG_BURST times a second, and all scoped events together at most
 * SIG_LOG_CEILING times a second; what is held back is counted and written as one
 * "suppressed" line with the count. */
void sig_log_event(sig_log_level_t level, const char *module, const char *scope, const char *event,
                   const sig_log_kv_t *kv, size_t n);

#define SIG_LOG_BURST 5
#define SIG_LOG_CEILING 1000

#define SIG_EVENT(level, module, scope, event, ...)                                 \
  do {                                                                              \
    if (sig_log_enabled(level)) {                                                   \
      const sig_log_kv_t kv_[] = {__VA_ARGS__};                                     \
      sig_log_event((level), (module), (scope), (event), kv_, SIG_ARRAY_SIZE(kv_)); \
    }                                                                               \
  } while (0)

/* Writes the "suppressed" lines whose second has passed (call it every second or so). */
void sig_log_flush_suppressed(void);

#endif
