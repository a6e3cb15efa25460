/* Log file handling: mkdir -p, append-only writes of whole lines with one
 * write(2) each (so concurrent tails never see half a line), reopen on SIGHUP,
 * or standard output; text or JSON lines, escaping of every value; throttling of
 * scoped events in a fixed table (a collision only makes two scopes share a
 * budget). */
#include "sig_log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sig_text.h"
#include "sig_util.h"

static int log_fd = -1;
static char *log_path; /* "-": standard output, which is never closed or reopened */
static sig_log_level_t log_level = SIG_LOG_INFO;
static sig_log_format_t log_format = SIG_LOG_TEXT;

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
static const char *const json_level_names[] = {"debug", "info", "warn", "error"};

#define LINE_MAX_BYTES 2048
#define THROTTLE_SLOTS 4096
#define SCOPE_MAX 64

/* One (event, scope) pair's second: how many lines went out, how many were held back. */
typedef struct {
  uint32_t hash; /* 0: free */
  int64_t second;
  uint32_t written, suppressed;
  sig_log_level_t level;
  const char *module, *event;
  char scope[SCOPE_MAX];
} slot_t;

static slot_t slots[THROTTLE_SLOTS];
static size_t holding; /* slots with a count still to write */
static int64_t ceiling_second;
static uint32_t ceiling_written, ceiling_suppressed;

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

/* The deepest folder of path that exists, into buf (path itself when it exists). */
static void existing_ancestor(const char *path, char *buf, size_t n) {
  struct stat st;
  snprintf(buf, n, "%s", path);
  for (;;) {
    if (stat(buf, &st) == 0 || errno != ENOENT) return;
    char *slash = strrchr(buf, '/');
    if (slash == NULL || slash == buf) {
      snprintf(buf, n, "/");
      return;
    }
    *slash = '\0';
  }
}

int sig_log_check(const char *dir, const char *file, char *err, size_t errlen) {
  char at[PATH_MAX + 1], path[PATH_MAX + NAME_MAX + 2];
  struct stat st;
  int e = 0;
  if (strcmp(file, "-") == 0) return 0;
  existing_ancestor(dir, at, sizeof(at));
  if (stat(at, &st) != 0)
    e = errno;
  else if (!S_ISDIR(st.st_mode))
    e = ENOTDIR;
  else if (strcmp(at, dir) != 0 && faccessat(AT_FDCWD, at, W_OK | X_OK, AT_EACCESS) != 0)
    e = errno; /* effective ids, as mkdir will use them */
  if (e != 0) {
    snprintf(err, errlen, "log.out_dir: cannot create %s: %s", dir, strerror(e));
    return -e;
  }
  if (strcmp(at, dir) != 0) return 0; /* a new file in a new folder */
  snprintf(path, sizeof(path), "%s/%s", dir, file);
  int exists = stat(path, &st) == 0;
  if (exists && S_ISDIR(st.st_mode))
    e = EISDIR;
  else if (faccessat(AT_FDCWD, exists ? path : dir, exists ? W_OK : W_OK | X_OK, AT_EACCESS) != 0)
    e = errno; /* an existing file must be writable, a new one needs a writable folder */
  if (e != 0) {
    snprintf(err, errlen, "log: cannot open %s for writing: %s", path, strerror(e));
    return -e;
  }
  return 0;
}

static int to_stdout(void) {
  return log_path != NULL && strcmp(log_path, "-") == 0;
}

int sig_log_open(const char *dir, const char *file, sig_log_level_t level, char *err,
                 size_t errlen) {
  if (strcmp(file, "-") == 0) {
    sig_log_close();
    log_fd = STDOUT_FILENO;
    log_path = sig_strdup("-");
    log_level = level;
    return 0;
  }
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
  if (log_path == NULL || to_stdout()) return 0;
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
  if (log_fd >= 0 && !to_stdout()) close(log_fd);
  log_fd = -1;
  free(log_path);
  log_path = NULL;
}

void sig_log_set_format(sig_log_format_t format) {
  log_format = format;
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

#define TS_BYTES 64 /* "2024-05-01T12:00:00.123Z", with room the compiler can prove */

static void timestamp(char ts[TS_BYTES]) {
  struct timespec now;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &now);
  gmtime_r(&now.tv_sec, &tm);
  snprintf(ts, TS_BYTES, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
           tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000);
}

/* "TIMESTAMP LEVEL MODULE " (text) or '{"ts":…,"level":…,"module":…' (JSON) into line;
 * returns its length. */
static size_t prefix(char *line, sig_log_level_t level, const char *module) {
  char ts[TS_BYTES];
  timestamp(ts);
  int n = log_format == SIG_LOG_JSON
              ? snprintf(line, LINE_MAX_BYTES, "{\"ts\":\"%s\",\"level\":\"%s\",\"module\":\"%s\"",
                         ts, json_level_names[level], module)
              : snprintf(line, LINE_MAX_BYTES, "%s %-5s %-6s ", ts, level_names[level], module);
  return n < 0 ? 0 : (size_t)n;
}

/* Ends the line (cut with "..." if it was full) and writes it at once. */
static void emit(char *line, size_t len) {
  if (len > LINE_MAX_BYTES - 5) { /* truncated: say so rather than cut silently */
    len = LINE_MAX_BYTES - 5;
    memcpy(line + len, "...", 3);
    len += 3;
  }
  line[len++] = '\n';
  int fd = log_fd >= 0 ? log_fd : STDERR_FILENO;
  ssize_t w = write(fd, line, len);
  (void)w; /* nowhere better to report a failing log write */
}

/* JSON: a line has room for its closing: a member that does not fit is left out, and the
 * object then ends with "truncated":true. */
#define JSON_END ",\"truncated\":true}"
#define JSON_ROOM (LINE_MAX_BYTES - 1 - sizeof(JSON_END))

/* ,"key":"escaped value" into line at n; returns the new length, or 0 when s was cut or
 * did not fit (*cut set). */
static size_t json_string(char *line, size_t n, const char *key, const char *s, size_t len,
                          int *cut) {
  size_t klen = strlen(key), used;
  if (n + klen + 8 > JSON_ROOM) {
    *cut = 1;
    return n;
  }
  n += (size_t)snprintf(line + n, JSON_ROOM - n, ",\"%s\":\"", key);
  n += sig_text_escape_json(line + n, JSON_ROOM - n - 1, s, len, &used);
  line[n++] = '"';
  if (used < len) *cut = 1;
  return n;
}

static void json_end(char *line, size_t n, int cut) {
  memcpy(line + n, cut ? JSON_END : "}", cut ? sizeof(JSON_END) - 1 : 1);
  n += cut ? sizeof(JSON_END) - 1 : 1;
  line[n++] = '\n';
  int fd = log_fd >= 0 ? log_fd : STDERR_FILENO;
  ssize_t w = write(fd, line, n);
  (void)w;
}

void sig_log_write(sig_log_level_t level, const char *module, const char *fmt, ...) {
  char line[LINE_MAX_BYTES], text[LINE_MAX_BYTES];
  size_t n = prefix(line, level, module);
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(text, sizeof(text), fmt, ap);
  va_end(ap);
  size_t tlen = m < 0 ? 0 : (size_t)m < sizeof(text) ? (size_t)m : sizeof(text) - 1;
  if (log_format == SIG_LOG_JSON) {
    int cut = 0;
    n = json_string(line, n, "msg", text, tlen, &cut);
    json_end(line, n, cut);
    return;
  }
  n += sig_text_escape(line + n, sizeof(line) - n - 1, text, tlen, SIZE_MAX, 0);
  emit(line, n);
}

/* A value is written bare when it is non-empty printable ASCII without space, '"', '\\'
 * or '='; else quoted, with '"', '\\' and anything unprintable escaped. */
static int bare(const char *s, size_t n) {
  if (n == 0) return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '=') return 0;
  }
  return 1;
}

static size_t put_field(char *out, size_t room, const sig_log_kv_t *kv) {
  size_t o = 0, klen = strlen(kv->key);
  if (room < klen + 4) return 0;
  out[o++] = ' ';
  memcpy(out + o, kv->key, klen);
  o += klen;
  out[o++] = '=';
  if (kv->s == NULL) {
    int k = snprintf(out + o, room - o, "%" PRId64, kv->i);
    return k < 0 || (size_t)k >= room - o ? room : o + (size_t)k;
  }
  size_t n = kv->len == SIZE_MAX ? strlen(kv->s) : kv->len;
  if (bare(kv->s, n)) {
    if (n > room - o) n = room - o;
    memcpy(out + o, kv->s, n);
    return o + n;
  }
  out[o++] = '"';
  if (o + 2 >= room) return room;
  o += sig_text_escape(out + o, room - o - 1, kv->s, n, SIZE_MAX, '"');
  out[o++] = '"';
  return o;
}

/* A field named like one of the line's own members is written with a '_' after its name. */
static const char *json_key(const char *key, char *buf, size_t size) {
  static const char *const own[] = {"ts", "level", "module", "event"};
  for (size_t i = 0; i < SIG_ARRAY_SIZE(own); i++)
    if (strcmp(key, own[i]) == 0) {
      snprintf(buf, size, "%s_", key);
      return buf;
    }
  return key;
}

static void write_event_json(char *line, size_t n, const char *event, const sig_log_kv_t *kv,
                             size_t nkv) {
  int cut = 0;
  n = json_string(line, n, "event", event, strlen(event), &cut);
  for (size_t i = 0; i < nkv && !cut; i++) {
    char kbuf[32];
    const char *key = json_key(kv[i].key, kbuf, sizeof(kbuf));
    if (kv[i].s != NULL) {
      n = json_string(line, n, key, kv[i].s, kv[i].len == SIZE_MAX ? strlen(kv[i].s) : kv[i].len,
                      &cut);
      continue;
    }
    char num[48];
    int k = snprintf(num, sizeof(num), ",\"%s\":%" PRId64, key, kv[i].i);
    if (k < 0 || n + (size_t)k > JSON_ROOM) {
      cut = 1;
      break;
    }
    memcpy(line + n, num, (size_t)k);
    n += (size_t)k;
  }
  json_end(line, n, cut);
}

static void write_event(sig_log_level_t level, const char *module, const char *event,
                        const sig_log_kv_t *kv, size_t nkv) {
  char line[LINE_MAX_BYTES];
  size_t n = prefix(line, level, module), room = sizeof(line) - 1;
  if (log_format == SIG_LOG_JSON) {
    write_event_json(line, n, event, kv, nkv);
    return;
  }
  n += sig_text_escape(line + n, room - n, event, strlen(event), SIZE_MAX, 0);
  for (size_t i = 0; i < nkv && n < room; i++) n += put_field(line + n, room - n, &kv[i]);
  emit(line, n < room ? n : room);
}

static void write_suppressed(slot_t *sl) {
  holding--;
  sig_log_kv_t kv[] = {SIG_KV("event", sl->event), SIG_KV("scope", sl->scope),
                       SIG_KVI("count", sl->suppressed)};
  write_event(sl->level, sl->module, "suppressed similar lines", kv, SIG_ARRAY_SIZE(kv));
}

static int64_t now_second(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec;
}

/* Whether a scoped event may be written now; counts it either way. */
static int admit(sig_log_level_t level, const char *module, const char *scope, const char *event) {
  int64_t sec = now_second();
  size_t slen = strnlen(scope, SCOPE_MAX - 1);
  uint32_t h = sig_fnv1a(SIG_FNV1A_INIT, &event, sizeof(event));
  h = sig_fnv1a(h, scope, slen) | 1;
  slot_t *sl = &slots[h & (THROTTLE_SLOTS - 1)];
  if (sl->hash != h || sl->event != event || strncmp(sl->scope, scope, slen) != 0 ||
      sl->scope[slen] != '\0') { /* a new pair (or a collision): the old one's count first */
    if (sl->hash != 0 && sl->suppressed > 0) write_suppressed(sl);
    sl->hash = h, sl->event = event, sl->module = module, sl->level = level;
    memcpy(sl->scope, scope, slen);
    sl->scope[slen] = '\0';
    sl->second = sec, sl->written = sl->suppressed = 0;
  } else if (sl->second != sec) {
    if (sl->suppressed > 0) write_suppressed(sl);
    sl->second = sec, sl->written = sl->suppressed = 0;
  }
  if (ceiling_second != sec) {
    if (ceiling_suppressed > 0)
      SIG_WARN("log", "log rate ceiling: %" PRIu32 " lines suppressed", ceiling_suppressed);
    ceiling_second = sec, ceiling_written = ceiling_suppressed = 0;
  }
  if (sl->written >= SIG_LOG_BURST) {
    if (sl->suppressed++ == 0) holding++;
    return 0;
  }
  if (ceiling_written >= SIG_LOG_CEILING) {
    ceiling_suppressed++;
    return 0;
  }
  sl->written++, ceiling_written++;
  return 1;
}

void sig_log_event(sig_log_level_t level, const char *module, const char *scope, const char *event,
                   const sig_log_kv_t *kv, size_t n) {
  if (!sig_log_enabled(level)) return;
  if (scope != NULL && !admit(level, module, scope, event)) return;
  write_event(level, module, event, kv, n);
}

void sig_log_flush_suppressed(void) {
  int64_t sec = now_second();
  for (size_t i = 0; i < THROTTLE_SLOTS && holding > 0; i++) {
    slot_t *sl = &slots[i];
    if (sl->hash != 0 && sl->second != sec && sl->suppressed > 0) {
      write_suppressed(sl);
      sl->suppressed = 0;
    }
  }
  if (ceiling_second != sec && ceiling_suppressed > 0) {
    SIG_WARN("log", "log rate ceiling: %" PRIu32 " lines suppressed", ceiling_suppressed);
    ceiling_suppressed = 0;
  }
}
