/* The server's log: one line per event, "TIMESTAMP LEVEL MODULE event key=value…",
 * with an ISO-8601 UTC timestamp. Writes go to stderr until sig_log_open succeeds. */
#ifndef SIG_LOG_H
#define SIG_LOG_H

#include <stddef.h>

#include "sig_config.h"

/* Creates dir (and its parents) if missing and opens dir/file for appending.
 * Returns 0, or a negative error with a message for humans in err. */
int sig_log_open(const char *dir, const char *file, sig_log_level_t level, char *err,
                 size_t errlen);
/* Reopens the same path (after logrotate moved it). Keeps the old file on failure. */
int sig_log_reopen(void);
void sig_log_close(void);
void sig_log_set_level(sig_log_level_t level);
int sig_log_enabled(sig_log_level_t level);
/* Full path of the open log file, or NULL. */
const char *sig_log_path(void);

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

#endif
