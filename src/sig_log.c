/* Log file handling: mkdir -p, append-only writes of whole lines with one
 * write(2) each (so concurrent tails never see half a line), reopen on SIGHUP. */
#include "sig_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sig_util.h"

static int log_fd = -1;
static char *log_path;
static sig_log_level_t log_level = SIG_LOG_INFO;

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

static int mkdir_p(const char *dir) {
  char *p = sig_strdup(dir);
  int rc = 0;
  for (char *s = p + 1;; s++) {
    if (*s != '/' && *s != '\0') continue;
    char c = *s;
    *s = '\0';
    if (mkdir(p, 0755) != 0 && errno != EEXIST) {
      rc = -errno;
      break;
    }
    *s = c;
    if (c == '\0') break;
  }
  free(p);
  return rc;
}

int sig_log_open(const char *dir, const char *file, sig_log_level_t level, char *err,
                 size_t errlen) {
  int rc = mkdir_p(dir);
  if (rc != 0) {
    snprintf(err, errlen, "log.out_dir: cannot create %s: %s", dir, strerror(-rc));
    return rc;
  }
  size_t n = strlen(dir) + strlen(file) + 2;
  char *path = sig_malloc(n);
  snprintf(path, n, "%s/%s", dir, file);
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    rc = -errno;
    snprintf(err, errlen, "log: cannot open %s for writing: %s", path, strerror(errno));
    free(path);
    return rc;
  }
  sig_log_close();
  log_fd = fd;
  log_path = path;
  log_level = level;
  return 0;
}

int sig_log_reopen(void) {
  if (log_path == NULL) return 0;
  int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    int rc = -errno;
    SIG_ERROR("log", "reopen failed path=%s error=\"%s\"", log_path, strerror(errno));
    return rc;
  }
  close(log_fd);
  log_fd = fd;
  SIG_INFO("log", "reopened path=%s", log_path);
  return 0;
}

void sig_log_close(void) {
  if (log_fd >= 0) close(log_fd);
  log_fd = -1;
  free(log_path);
  log_path = NULL;
}

void sig_log_set_level(sig_log_level_t level) {
  log_level = level;
}

int sig_log_enabled(sig_log_level_t level) {
  return level >= log_level;
}

const char *sig_log_path(void) {
  return log_path;
}

void sig_log_write(sig_log_level_t level, const char *module, const char *fmt, ...) {
  char line[2048];
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %-6s ",
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                   ts.tv_nsec / 1000000, level_names[level], module);
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
  va_end(ap);
  size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
  if (len > sizeof(line) - 5) { /* truncated: say so rather than cut silently */
    len = sizeof(line) - 5;
    memcpy(line + len, "...", 3);
    len += 3;
  }
  line[len++] = '\n';
  int fd = log_fd >= 0 ? log_fd : STDERR_FILENO;
  ssize_t w = write(fd, line, len);
  (void)w; /* nowhere better to report a failing log write */
}
