/* Configuration: a strict TOML-subset reader (tables, basic and literal strings, decimal integers,
 * booleans, one-line arrays of strings, comments) feeding a descriptor table, one row per key.
 * Whatever the subset does not cover is rejected with its position, never guessed. */
#include "sig_config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sig_addr.h"
#include "sig_text.h"
#include "sig_util.h"

#define MAX_FILE_BYTES (1024 * 1024)
#define MAX_NAME_IN_MSG 64 /* longest user-written name echoed in a message */

typedef enum { KEY_INT, KEY_STRING, KEY_CHOICE, KEY_LIST } key_kind;

/* Checks a string value and may set fields derived from it (host_addr, host_port). */
typedef int (*check_fn)(sig_config_t *cfg, const char *s, char *why, size_t whylen);

typedef struct {
  const char *table;
  const char *name;
  key_kind kind;
  size_t offset;              /* int64_t for KEY_INT, char * for KEY_STRING, an enum for KEY_CHOICE,
                                 sig_config_list_t for KEY_LIST */
  int64_t min, max, def_int;  /* KEY_INT */
  const char *def_str;        /* KEY_STRING, KEY_CHOICE */
  const char *const *choices; /* KEY_CHOICE: NULL-terminated, index = enum value */
  check_fn check;             /* KEY_STRING, KEY_LIST (each item), optional */
  /* KEY_STRING naming a file the server reads: resolved against the config's folder, and when
   * set and used(cfg) (NULL: always), checked for reading by sig_config_check_files. */
  bool file;
  bool (*used)(const sig_config_t *cfg);
  bool live; /* SIGHUP applies it (LIVE below) */
} key_desc;

static int check_host(sig_config_t *cfg, const char *s, char *why, size_t whylen);
static int check_cidr(sig_config_t *cfg, const char *s, char *why, size_t whylen);
static int check_allowed_origin(sig_config_t *cfg, const char *s, char *why, size_t whylen);
static int check_path(sig_config_t *cfg, const char *s, char *why, size_t whylen);
static int check_text(sig_config_t *cfg, const char *s, char *why, size_t whylen);
static int check_origin(sig_config_t *cfg, const char *s, char *why, size_t whylen);
static int check_dir(sig_config_t *cfg, const char *s, char *why, size_t whylen);
static int check_file(sig_config_t *cfg, const char *s, char *why, size_t whylen);
static int check_redis(sig_config_t *cfg, const char *s, char *why, size_t whylen);
static int check_node_id(sig_config_t *cfg, const char *s, char *why, size_t whylen);
static int check_key_prefix(sig_config_t *cfg, const char *s, char *why, size_t whylen);
static int check_metrics_host(sig_config_t *cfg, const char *s, char *why, size_t whylen);
static int check_turn_uri(sig_config_t *cfg, const char *s, char *why, size_t whylen);

static const char *const dup_choices[] = {"replace", "reject", NULL};
static const char *const mode_choices[] = {"none", "jwt", NULL};
static const char *const alg_choices[] = {"HS256", "HS384", "HS512", "RS256", "RS384",
                                          "RS512", "ES256", "ES384", NULL};
static const char *const level_choices[] = {"debug", "info", "warn", "error", NULL};
static const char *const tls_version_choices[] = {"1.2", "1.3", NULL};
static const char *const format_choices[] = {"text", "json", NULL};

/* Choice keys are written through an int lvalue. */
_Static_assert(sizeof(sig_dup_policy_t) == sizeof(int), "enum size");
_Static_assert(sizeof(sig_log_level_t) == sizeof(int), "enum size");
_Static_assert(sizeof(sig_log_format_t) == sizeof(int), "enum size");
_Static_assert(sizeof(sig_auth_mode_t) == sizeof(int), "enum size");
_Static_assert(sizeof(sig_auth_alg_t) == sizeof(int), "enum size");
_Static_assert(sizeof(sig_tls_version_t) == sizeof(int), "enum size");

/* A row per key. A key whose row adds LIVE is applied by SIGHUP while the server runs (main.c
 * re-reads the file; sig_server_reload and the log take the new values); every other key keeps
 * its value until a restart. */
#define LIVE .live = true

#define INT_KEY(t, k, field, def, lo, hi, ...)                                       \
  {                                                                                  \
    .table = t, .name = k, .kind = KEY_INT, .offset = offsetof(sig_config_t, field), \
    .def_int = def, .min = lo, .max = hi, __VA_ARGS__                                \
  }
#define STR_KEY(t, k, field, def, chk, ...)                                             \
  {                                                                                     \
    .table = t, .name = k, .kind = KEY_STRING, .offset = offsetof(sig_config_t, field), \
    .def_str = def, .check = chk, __VA_ARGS__                                           \
  }
#define LIST_KEY(t, k, field, def, chk, ...)                                          \
  {                                                                                   \
    .table = t, .name = k, .kind = KEY_LIST, .offset = offsetof(sig_config_t, field), \
    .def_str = def, .check = chk, __VA_ARGS__                                         \
  }
#define FILE_KEY(t, k, field, when, ...)                                                \
  {                                                                                     \
    .table = t, .name = k, .kind = KEY_STRING, .offset = offsetof(sig_config_t, field), \
    .def_str = "", .check = check_path, .file = true, .used = when, __VA_ARGS__         \
  }
#define CHOICE_KEY(t, k, field, def, list, ...)                                         \
  {                                                                                     \
    .table = t, .name = k, .kind = KEY_CHOICE, .offset = offsetof(sig_config_t, field), \
    .def_str = def, .choices = list, __VA_ARGS__                                        \
  }

static bool auth_on(const sig_config_t *cfg) {
  return cfg->auth_mode == SIG_AUTH_JWT;
}

static bool tls_on(const sig_config_t *cfg) {
  return cfg->tls != 0;
}

static bool turn_on(const sig_config_t *cfg) {
  return cfg->turn != 0;
}

static bool cluster_on(const sig_config_t *cfg) {
  return cfg->cluster_redis != NULL && cfg->cluster_redis[0] != '\0';
}

/* Rows of one table are contiguous: the first row's index stands for the table. */
static const key_desc keys[] = {
    STR_KEY("server", "host", host, "0.0.0.0:9091", check_host),
    INT_KEY("server", "max_connections", max_connections, 10000, 1, 1000000),
    INT_KEY("server", "max_header_bytes", max_header_bytes, 8192, 1024, 1048576, LIVE),
    INT_KEY("server", "max_body_bytes", max_body_bytes, 65536, 1024, 16777216, LIVE),
    INT_KEY("server", "max_message_bytes", max_message_bytes, 65536, 1024, 16777216, LIVE),
    INT_KEY("server", "max_write_queue_bytes", max_write_queue_bytes, 262144, 65536, 268435456),
    INT_KEY("server", "header_timeout_s", header_timeout_s, 10, 1, 3600),
    INT_KEY("server", "keepalive_timeout_s", keepalive_timeout_s, 60, 1, 86400),
    INT_KEY("server", "ping_interval_s", ping_interval_s, 20, 1, 3600),
    INT_KEY("server", "pong_timeout_s", pong_timeout_s, 20, 1, 3600),
    INT_KEY("server", "answer_timeout_s", answer_timeout_s, 30, 1, 3600),
    INT_KEY("server", "max_pending_offers", max_pending_offers, 16, 1, 10000),
    INT_KEY("server", "max_exchanges_per_peer", max_exchanges_per_peer, 64, 1, 100000),
    CHOICE_KEY("server", "duplicate", duplicate, "replace", dup_choices),
    STR_KEY("server", "cors_origin", cors_origin, "*", check_origin, LIVE),
    INT_KEY("server", "shutdown_timeout_s", shutdown_timeout_s, 5, 0, 600, LIVE),
    INT_KEY("server", "first_byte_timeout_s", first_byte_timeout_s, 3, 1, 3600),
    INT_KEY("server", "message_timeout_s", message_timeout_s, 10, 1, 3600),
    INT_KEY("server", "max_connections_per_ip", max_connections_per_ip, 256, 1, 1000000, LIVE),
    INT_KEY("server", "requests_per_ip_per_s", requests_per_ip_per_s, 100, 1, 1000000, LIVE),
    INT_KEY("server", "requests_per_ip_burst", requests_per_ip_burst, 200, 1, 1000000, LIVE),
    INT_KEY("server", "messages_per_s", messages_per_s, 100, 1, 1000000, LIVE),
    INT_KEY("server", "messages_burst", messages_burst, 200, 1, 1000000, LIVE),
    INT_KEY("server", "max_tracked_ips", max_tracked_ips, 65536, 1024, 10000000),
    LIST_KEY("server", "trusted_proxies", trusted_proxies, NULL, check_cidr),
    LIST_KEY("server", "allowed_origins", allowed_origins, "*", check_allowed_origin, LIVE),
    INT_KEY("server", "workers", workers, 1, 1, 256),
    STR_KEY("log", "out_dir", log_dir, "log", check_dir),
    STR_KEY("log", "out_file", log_file, "signal-server.log", check_file),
    CHOICE_KEY("log", "level", log_level, "info", level_choices, LIVE),
    CHOICE_KEY("log", "format", log_format, "text", format_choices, LIVE),
    CHOICE_KEY("auth", "mode", auth_mode, "none", mode_choices),
    CHOICE_KEY("auth", "algorithm", auth_alg, "HS256", alg_choices),
    FILE_KEY("auth", "key_file", auth_key_file, auth_on),
    STR_KEY("auth", "issuer", auth_issuer, "", check_text),
    STR_KEY("auth", "audience", auth_audience, "", check_text),
    INT_KEY("auth", "leeway_s", auth_leeway_s, 30, 0, 3600),
    FILE_KEY("tls", "cert_file", tls_cert_file, tls_on),
    FILE_KEY("tls", "key_file", tls_key_file, tls_on),
    CHOICE_KEY("tls", "min_version", tls_min_version, "1.2", tls_version_choices),
    STR_KEY("tls", "ciphers", tls_ciphers, "", check_text),
    STR_KEY("metrics", "host", metrics_host, "", check_metrics_host),
    STR_KEY("cluster", "redis", cluster_redis, "", check_redis),
    FILE_KEY("cluster", "redis_password_file", cluster_password_file, cluster_on),
    STR_KEY("cluster", "node_id", cluster_node_id, "", check_node_id),
    STR_KEY("cluster", "key_prefix", cluster_key_prefix, "sig:", check_key_prefix),
    INT_KEY("cluster", "node_ttl_s", cluster_node_ttl_s, 10, 2, 3600),
    INT_KEY("cluster", "request_timeout_ms", cluster_request_timeout_ms, 2000, 50, 60000),
    FILE_KEY("turn", "secret_file", turn_secret_file, turn_on),
    LIST_KEY("turn", "uris", turn_uris, NULL, check_turn_uri),
    INT_KEY("turn", "ttl_s", turn_ttl_s, 86400, 60, 604800),
    INT_KEY("turn", "requests_per_ip_per_s", turn_requests_per_ip_per_s, 1, 1, 1000, LIVE),
    INT_KEY("turn", "requests_per_ip_burst", turn_requests_per_ip_burst, 10, 1, 10000, LIVE),
};
#define NKEYS SIG_ARRAY_SIZE(keys)

/* Every heap string in sig_config_t, for copy and free. */
static const size_t string_fields[] = {
    offsetof(sig_config_t, host),
    offsetof(sig_config_t, host_addr),
    offsetof(sig_config_t, cors_origin),
    offsetof(sig_config_t, log_dir),
    offsetof(sig_config_t, log_file),
    offsetof(sig_config_t, path),
    offsetof(sig_config_t, auth_key_file),
    offsetof(sig_config_t, auth_issuer),
    offsetof(sig_config_t, auth_audience),
    offsetof(sig_config_t, cluster_redis),
    offsetof(sig_config_t, cluster_password_file),
    offsetof(sig_config_t, cluster_node_id),
    offsetof(sig_config_t, cluster_key_prefix),
    offsetof(sig_config_t, metrics_host),
    offsetof(sig_config_t, metrics_addr),
    offsetof(sig_config_t, tls_cert_file),
    offsetof(sig_config_t, tls_key_file),
    offsetof(sig_config_t, tls_ciphers),
    offsetof(sig_config_t, turn_secret_file),
};

static void list_free(sig_config_list_t *l) {
  for (size_t i = 0; i < l->n; i++) free(l->items[i]);
  free(l->items);
  l->items = NULL;
  l->n = 0;
}

/* Every list in sig_config_t, for copy and free. */
static const size_t list_fields[] = {offsetof(sig_config_t, trusted_proxies),
                                     offsetof(sig_config_t, allowed_origins),
                                     offsetof(sig_config_t, turn_uris)};

static void *field_at(sig_config_t *cfg, size_t offset) {
  return (char *)cfg + offset;
}

__attribute__((format(printf, 3, 4))) static int errorf(char *err, size_t errlen, const char *fmt,
                                                        ...) {
  va_list ap;
  if (err == NULL || errlen == 0) return SIG_ECONFIG;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return SIG_ECONFIG;
}

static bool is_digit(int c) {
  return c >= '0' && c <= '9';
}

static bool is_alnum(int c) {
  return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_bare_key(int c) {
  return is_alnum(c) || c == '_' || c == '-';
}

/* TOML forbids raw control characters everywhere except tab (and the line ending). */
static bool is_ctrl(int c) {
  return (c < 0x20 && c != '\t') || c == 0x7f;
}

/* Stored values refuse every control character, tab included: they end up in headers and logs. */
static bool has_ctrl(const char *s) {
  for (; *s != '\0'; s++)
    if (is_ctrl((unsigned char)*s) || *s == '\t') return true;
  return false;
}

/* Length of the well-formed UTF-8 sequence at s, or 0. */
static size_t utf8_len(const char *s, const char *end) {
  uint32_t cp;
  return sig_utf8_next((const unsigned char *)s, (size_t)(end - s), &cp);
}

/* Names the character at p for a message without echoing control bytes to a terminal. */
static const char *describe(char *buf, size_t n, const char *p, const char *end) {
  unsigned char c = (unsigned char)*p;
  size_t len;
  if (c >= 0x20 && c < 0x7f) {
    snprintf(buf, n, "'%c'", c);
  } else if (c < 0x80) {
    snprintf(buf, n, "control character U+%04X", c);
  } else if ((len = utf8_len(p, end)) != 0) {
    snprintf(buf, n, "'%.*s'", (int)len, p);
  } else {
    snprintf(buf, n, "byte 0x%02x", c);
  }
  return buf;
}

static int check_name(const char *addr, size_t alen, char *why, size_t whylen) {
  bool dotted_digits = true;
  char buf[64];
  for (size_t i = 0; i < alen; i++)
    if (!is_digit(addr[i]) && addr[i] != '.') dotted_digits = false;
  if (dotted_digits) {
    struct in_addr a4;
    if (alen >= sizeof(buf)) return errorf(why, whylen, "invalid IPv4 address");
    memcpy(buf, addr, alen);
    buf[alen] = '\0';
    if (inet_pton(AF_INET, buf, &a4) != 1) return errorf(why, whylen, "invalid IPv4 address");
    return 0;
  }
  if (alen > 253) return errorf(why, whylen, "invalid hostname: longer than 253 characters");
  for (const char *q = addr, *end = addr + alen;;) {
    const char *dot = memchr(q, '.', (size_t)(end - q));
    const char *label_end = dot != NULL ? dot : end;
    size_t len = (size_t)(label_end - q);
    if (len == 0) return errorf(why, whylen, "invalid hostname: empty label");
    if (len > 63)
      return errorf(why, whylen, "invalid hostname: a label is longer than 63 characters");
    for (const char *c = q; c < label_end; c++)
      if (!is_alnum(*c) && *c != '-')
        return errorf(why, whylen,
                      "invalid hostname: %s is not allowed (letters, digits, '-' and '.' only)",
                      describe(buf, sizeof(buf), c, end));
    if (q[0] == '-' || label_end[-1] == '-')
      return errorf(why, whylen, "invalid hostname: a label starts or ends with '-'");
    if (dot == NULL) break;
    q = dot + 1;
  }
  return 0;
}

int sig_config_split_host(const char *host, char **addr_out, int *port_out, char *err,
                          size_t errlen) {
  static const char missing_port[] =
      "missing port (expected ADDRESS:PORT, e.g. 0.0.0.0:9091 or [::1]:9091)";
  const char *addr, *colon;
  size_t alen;
  long port = 0;
  int rc;

  if (host[0] == '[') {
    const char *close = strchr(host, ']');
    char buf[INET6_ADDRSTRLEN];
    struct in6_addr a6;
    if (close == NULL) return errorf(err, errlen, "missing ']' after the IPv6 address");
    addr = host + 1;
    alen = (size_t)(close - addr);
    if (alen >= sizeof(buf)) return errorf(err, errlen, "invalid IPv6 address in brackets");
    memcpy(buf, addr, alen);
    buf[alen] = '\0';
    if (inet_pton(AF_INET6, buf, &a6) != 1)
      return errorf(err, errlen, "invalid IPv6 address in brackets");
    if (close[1] == '\0') return errorf(err, errlen, "%s", missing_port);
    if (close[1] != ':') return errorf(err, errlen, "expected ':' and a port after ']'");
    colon = close + 1;
  } else {
    colon = strrchr(host, ':');
    if (colon == NULL) return errorf(err, errlen, "%s", missing_port);
    if (memchr(host, ':', (size_t)(colon - host)) != NULL)
      return errorf(err, errlen, "IPv6 addresses must be in brackets, e.g. [::1]:9091");
    addr = host;
    alen = (size_t)(colon - host);
    if (alen == 0)
      return errorf(err, errlen, "missing address before ':' (0.0.0.0 means all interfaces)");
    if ((rc = check_name(addr, alen, err, errlen)) != 0) return rc;
  }

  if (colon[1] == '\0') return errorf(err, errlen, "%s", missing_port);
  for (const char *p = colon + 1; *p != '\0'; p++) {
    if (!is_digit(*p) || port > 65535) return errorf(err, errlen, "port must be 0..65535");
    port = port * 10 + (*p - '0');
  }
  if (port > 65535) return errorf(err, errlen, "port must be 0..65535");

  *addr_out = sig_strndup(addr, alen);
  *port_out = (int)port;
  return 0;
}

static int check_host(sig_config_t *cfg, const char *s, char *why, size_t whylen) {
  char *addr;
  int port, rc;
  if ((rc = sig_config_split_host(s, &addr, &port, why, whylen)) != 0) return rc;
  free(cfg->host_addr);
  cfg->host_addr = addr;
  cfg->host_port = port;
  return 0;
}

/* "" (no metrics listener) or a host like [server] host. */
static int check_metrics_host(sig_config_t *cfg, const char *s, char *why, size_t whylen) {
  char *addr = NULL;
  int port = 0, rc;
  if (s[0] != '\0' && (rc = sig_config_split_host(s, &addr, &port, why, whylen)) != 0) return rc;
  free(cfg->metrics_addr);
  cfg->metrics_addr = addr;
  cfg->metrics_port = port;
  return 0;
}

/* A URI a browser takes in RTCIceServer.urls (RFC 7065, RFC 7064): "turn:", "turns:" or "stun:"
 * and a host; printable ASCII without spaces, quotes or backslashes (it goes into JSON as is). */
static int check_turn_uri(sig_config_t *cfg, const char *s, char *why, size_t whylen) {
  static const char *const schemes[] = {"turn:", "turns:", "stun:"};
  size_t n = strlen(s), scheme = 0;
  (void)cfg;
  for (size_t i = 0; i < SIG_ARRAY_SIZE(schemes) && scheme == 0; i++)
    if (strncmp(s, schemes[i], strlen(schemes[i])) == 0) scheme = strlen(schemes[i]);
  if (scheme == 0)
    return errorf(why, whylen,
                  "must start with \"turn:\", \"turns:\" or \"stun:\", e.g. "
                  "\"turn:turn.example.com:3478?transport=udp\"");
  if (n == scheme) return errorf(why, whylen, "missing host after \"%.*s\"", (int)scheme, s);
  if (n > 256) return errorf(why, whylen, "longer than 256 characters");
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f || s[i] == '"' || s[i] == '\\')
      return errorf(why, whylen, "printable ASCII without spaces, quotes or backslashes");
  return 0;
}

static int check_cidr(sig_config_t *cfg, const char *s, char *why, size_t whylen) {
  sig_cidr_t c;
  const char *reason;
  (void)cfg;
  if (sig_cidr_parse(&c, s, &reason) != 0)
    return errorf(why, whylen, "%s, e.g. \"10.0.0.0/8\" or \"::1\"", reason);
  return 0;
}

/* "*", or "scheme://host[:port]" where host may start with "*." (any subdomain). */
static int check_allowed_origin(sig_config_t *cfg, const char *s, char *why, size_t whylen) {
  const char *sep = strstr(s, "://"), *host;
  (void)cfg;
  if (strcmp(s, "*") == 0 || strcmp(s, "null") == 0) return 0;
  if (has_ctrl(s) || strchr(s, ' ') != NULL)
    return errorf(why, whylen, "must not contain spaces or control characters");
  if (sep == NULL || sep == s)
    return errorf(why, whylen, "expected \"*\" or an origin like \"https://app.example.com\"");
  for (const char *p = s; p < sep; p++)
    if (!is_alnum(*p) && *p != '+' && *p != '-' && *p != '.')
      return errorf(why, whylen, "invalid scheme in '%.*s'", MAX_NAME_IN_MSG, s);
  host = sep + 3;
  if (*host == '\0' || strchr(host, '/') != NULL)
    return errorf(why, whylen,
                  "an origin has a host and no path, e.g. \"https://app.example.com\"");
  if (strchr(host, '*') != NULL && (strncmp(host, "*.", 2) != 0 || strchr(host + 2, '*') != NULL))
    return errorf(why, whylen, "'*' may only open the host, as in \"https://*.example.com\"");
  return 0;
}

/* A file path, or "" (none). */
static int check_path(sig_config_t *cfg, const char *s, char *why, size_t whylen) {
  (void)cfg;
  if (has_ctrl(s)) return errorf(why, whylen, "must not contain control characters");
  if (strlen(s) >= PATH_MAX) return errorf(why, whylen, "is longer than %d bytes", PATH_MAX - 1);
  return 0;
}

/* A database number: the digits at s up to the end of the text, below 1,000,000; or -1. */
static int db_number(const char *s) {
  char *end;
  errno = 0;
  long db = is_digit((unsigned char)s[0]) ? strtol(s, &end, 10) : -1;
  return db < 0 || db >= 1000000 || *end != '\0' || errno != 0 ? -1 : (int)db;
}

/* "unix:/PATH[?db=N]" (path: what follows "unix:") into out. */
static int redis_unix_target(const char *path, sig_redis_target_t *out, char *why, size_t whylen) {
  const char *q = strchr(path, '?');
  size_t n = q != NULL ? (size_t)(q - path) : strlen(path);
  if (n == 0 || path[0] != '/')
    return errorf(why, whylen,
                  "expected an absolute socket path, e.g. \"unix:/run/redis/redis.sock\"");
  if (n >= sizeof(out->path))
    return errorf(why, whylen, "the socket path is longer than %zu bytes", sizeof(out->path) - 1);
  memcpy(out->path, path, n);
  if (q != NULL && (strncmp(q, "?db=", 4) != 0 || (out->db = db_number(q + 4)) < 0))
    return errorf(why, whylen, "expected \"?db=N\" after the socket path");
  return 0;
}

/* "HOST[:PORT]" (hlen bytes at host; no port: 6379) into out->host and out->port. */
static int redis_host_port(const char *host, size_t hlen, sig_redis_target_t *out, char *why,
                           size_t whylen) {
  char hostport[300], *addr;
  int port;
  if (hlen == 0) return errorf(why, whylen, "missing host after \"redis://\"");
  if (hlen >= sizeof(hostport) - 6) return errorf(why, whylen, "the host is too long");
  memcpy(hostport, host, hlen);
  hostport[hlen] = '\0';
  const char *close = strrchr(hostport, ']'), *colon = strrchr(hostport, ':');
  if (colon == NULL || (close != NULL && colon < close)) strcat(hostport, ":6379");
  if (sig_config_split_host(hostport, &addr, &port, why, whylen) != 0) return SIG_ECONFIG;
  snprintf(out->host, sizeof(out->host), "%s", addr);
  free(addr);
  out->port = port;
  return port == 0 ? errorf(why, whylen, "port must be 1..65535") : 0;
}

int sig_config_redis_target(const char *url, sig_redis_target_t *out, char *why, size_t whylen) {
  memset(out, 0, sizeof(*out));
  if (strncmp(url, "unix:", 5) == 0) return redis_unix_target(url + 5, out, why, whylen);
  if (strncmp(url, "redis://", 8) != 0)
    return errorf(why, whylen,
                  "expected \"redis://HOST[:PORT][/DB]\" or \"unix:/PATH[?db=N]\", e.g. "
                  "\"redis://127.0.0.1:6379/0\"");
  const char *host = url + 8, *slash = strchr(host, '/');
  if (strchr(host, '@') != NULL)
    return errorf(why, whylen,
                  "a password does not belong in the URL: put it in cluster.redis_password_file");
  size_t hlen = slash != NULL ? (size_t)(slash - host) : strlen(host);
  if (redis_host_port(host, hlen, out, why, whylen) != 0) return SIG_ECONFIG;
  if (slash != NULL && (out->db = db_number(slash + 1)) < 0)
    return errorf(why, whylen,
                  "expected a database number after '/', e.g. \"redis://127.0.0.1:6379/0\"");
  return 0;
}

static int check_redis(sig_config_t *cfg, const char *s, char *why, size_t whylen) {
  sig_redis_target_t t;
  (void)cfg;
  return s[0] == '\0' ? 0 : sig_config_redis_target(s, &t, why, whylen);
}

/* A node id names Redis keys and channels: 1-64 of A-Z a-z 0-9 . _ - */
static int check_node_id(sig_config_t *cfg, const char *s, char *why, size_t whylen) {
  (void)cfg;
  size_t n = strlen(s);
  if (n > 64) return errorf(why, whylen, "longer than 64 characters");
  for (size_t i = 0; i < n; i++)
    if (!is_alnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
      return errorf(why, whylen, "1-64 characters of A-Z a-z 0-9 . _ - (\"\" picks host-port-pid)");
  return 0;
}

static int check_key_prefix(sig_config_t *cfg, const char *s, char *why, size_t whylen) {
  (void)cfg;
  size_t n = strlen(s);
  if (n > 64) return errorf(why, whylen, "longer than 64 characters");
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f || (unsigned char)s[i] >= 0x80)
      return errorf(why, whylen, "printable ASCII without spaces");
  return 0;
}

static int check_text(sig_config_t *cfg, const char *s, char *why, size_t whylen) {
  (void)cfg;
  if (has_ctrl(s)) return errorf(why, whylen, "must not contain control characters");
  return 0;
}

static int check_origin(sig_config_t *cfg, const char *s, char *why, size_t whylen) {
  (void)cfg;
  if (s[0] == '\0') return errorf(why, whylen, "must not be empty (\"*\" allows any origin)");
  if (has_ctrl(s)) return errorf(why, whylen, "must not contain control characters");
  return 0;
}

static int check_dir(sig_config_t *cfg, const char *s, char *why, size_t whylen) {
  (void)cfg;
  if (s[0] == '\0')
    return errorf(why, whylen, "must not be empty (use \".\" for the config's folder)");
  if (has_ctrl(s)) return errorf(why, whylen, "must not contain control characters");
  if (strlen(s) >= PATH_MAX) return errorf(why, whylen, "is longer than %d bytes", PATH_MAX - 1);
  return 0;
}

static int check_file(sig_config_t *cfg, const char *s, char *why, size_t whylen) {
  (void)cfg;
  if (s[0] == '\0') return errorf(why, whylen, "must not be empty");
  if (has_ctrl(s)) return errorf(why, whylen, "must not contain control characters");
  if (strchr(s, '/') != NULL)
    return errorf(why, whylen, "must be a plain file name without '/' (set the folder in out_dir)");
  if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
    return errorf(why, whylen, "must be a file name, not \"%s\"", s);
  if (strlen(s) > NAME_MAX) return errorf(why, whylen, "is longer than %d bytes", NAME_MAX);
  return 0;
}

typedef enum { VAL_STRING, VAL_INT, VAL_BOOL, VAL_ARRAY } val_type;

typedef struct {
  val_type type;
  char *str;    /* VAL_STRING */
  int64_t i;    /* VAL_INT */
  bool b;       /* VAL_BOOL */
  char **items; /* VAL_ARRAY */
  size_t nitems;
} value;

static void value_free(value *v) {
  free(v->str);
  for (size_t i = 0; i < v->nitems; i++) free(v->items[i]);
  free(v->items);
  memset(v, 0, sizeof(*v));
}

static const char *type_name(val_type t) {
  switch (t) {
    case VAL_STRING: return "a string";
    case VAL_INT: return "an integer";
    case VAL_BOOL: return "a boolean";
    case VAL_ARRAY: return "an array";
  }
  return "a value";
}

static int choice_index(const key_desc *k, const char *s) {
  for (int i = 0; k->choices[i] != NULL; i++)
    if (strcmp(k->choices[i], s) == 0) return i;
  return -1;
}

static int set_string(sig_config_t *cfg, const key_desc *k, const char *s, char *why,
                      size_t whylen) {
  char **slot = field_at(cfg, k->offset);
  int rc;
  if (k->check != NULL && (rc = k->check(cfg, s, why, whylen)) != 0) return rc;
  free(*slot);
  *slot = sig_strdup(s);
  return 0;
}

/* Stores v into cfg's field for k, or explains in why what is wrong with it. */
static int apply(sig_config_t *cfg, const key_desc *k, const value *v, char *why, size_t whylen) {
  switch (k->kind) {
    case KEY_INT:
      if (v->type != VAL_INT)
        return errorf(why, whylen, "expected an integer, got %s", type_name(v->type));
      if (v->i < k->min || v->i > k->max)
        return errorf(why, whylen, "must be between %" PRId64 " and %" PRId64 ", got %" PRId64,
                      k->min, k->max, v->i);
      *(int64_t *)field_at(cfg, k->offset) = v->i;
      return 0;
    case KEY_STRING:
      if (v->type != VAL_STRING)
        return errorf(why, whylen, "expected a string, got %s", type_name(v->type));
      return set_string(cfg, k, v->str, why, whylen);
    case KEY_LIST: {
      sig_config_list_t *l = field_at(cfg, k->offset), nl = {NULL, 0};
      if (v->type != VAL_ARRAY)
        return errorf(why, whylen, "expected an array of strings, got %s", type_name(v->type));
      for (size_t i = 0; i < v->nitems; i++) {
        int rc = k->check != NULL ? k->check(cfg, v->items[i], why, whylen) : 0;
        if (rc != 0) {
          size_t used = strlen(why);
          if (used < whylen) snprintf(why + used, whylen - used, " (item %zu)", i + 1);
          return rc;
        }
      }
      nl.n = v->nitems;
      nl.items = nl.n > 0 ? sig_malloc(nl.n * sizeof(*nl.items)) : NULL;
      for (size_t i = 0; i < nl.n; i++) nl.items[i] = sig_strdup(v->items[i]);
      list_free(l);
      *l = nl;
      return 0;
    }
    case KEY_CHOICE: {
      int idx;
      size_t n = 0;
      if (v->type != VAL_STRING)
        return errorf(why, whylen, "expected a string, got %s", type_name(v->type));
      if ((idx = choice_index(k, v->str)) >= 0) {
        *(int *)field_at(cfg, k->offset) = idx;
        return 0;
      }
      n = (size_t)snprintf(why, whylen, "must be one of");
      for (int i = 0; k->choices[i] != NULL && n < whylen; i++)
        n += (size_t)snprintf(why + n, whylen - n, "%s \"%s\"", i > 0 ? "," : "", k->choices[i]);
      if (n < whylen && !has_ctrl(v->str) && strlen(v->str) <= MAX_NAME_IN_MSG)
        snprintf(why + n, whylen - n, "; got \"%s\"", v->str);
      return SIG_ECONFIG;
    }
  }
  return errorf(why, whylen, "unsupported key kind");
}

static int find_table(const char *name, size_t len) {
  for (size_t i = 0; i < NKEYS; i++)
    if (strlen(keys[i].table) == len && memcmp(keys[i].table, name, len) == 0) return (int)i;
  return -1;
}

/* Looks `name` up among the rows of the table whose first row is `table`; any table when -1. */
static int find_key(int table, const char *name, size_t len) {
  for (size_t i = 0; i < NKEYS; i++) {
    if (table >= 0 && strcmp(keys[i].table, keys[table].table) != 0) continue;
    if (strlen(keys[i].name) == len && memcmp(keys[i].name, name, len) == 0) return (int)i;
  }
  return -1;
}

void sig_config_init(sig_config_t *cfg) {
  char why[128];
  memset(cfg, 0, sizeof(*cfg));
  for (size_t i = 0; i < NKEYS; i++) {
    const key_desc *k = &keys[i];
    switch (k->kind) {
      case KEY_INT: *(int64_t *)field_at(cfg, k->offset) = k->def_int; break;
      case KEY_CHOICE: *(int *)field_at(cfg, k->offset) = choice_index(k, k->def_str); break;
      case KEY_STRING:
        if (set_string(cfg, k, k->def_str, why, sizeof(why)) != 0) {
          /* A bad built-in default is a bug in the table above. */
          fprintf(stderr, "%s:%d: default %s.%s: %s\n", __FILE__, __LINE__, k->table, k->name, why);
          abort();
        }
        break;
      case KEY_LIST:
        if (k->def_str != NULL) { /* one item */
          sig_config_list_t *l = field_at(cfg, k->offset);
          l->items = sig_malloc(sizeof(*l->items));
          l->items[0] = sig_strdup(k->def_str);
          l->n = 1;
        }
        break;
    }
  }
}

void sig_config_free(sig_config_t *cfg) {
  if (cfg == NULL) return;
  for (size_t i = 0; i < SIG_ARRAY_SIZE(string_fields); i++) {
    char **slot = field_at(cfg, string_fields[i]);
    free(*slot);
    *slot = NULL;
  }
  for (size_t i = 0; i < SIG_ARRAY_SIZE(list_fields); i++) list_free(field_at(cfg, list_fields[i]));
}

static void config_copy(sig_config_t *dst, const sig_config_t *src) {
  *dst = *src;
  for (size_t i = 0; i < SIG_ARRAY_SIZE(string_fields); i++) {
    char **slot = field_at(dst, string_fields[i]);
    if (*slot != NULL) *slot = sig_strdup(*slot);
  }
  for (size_t i = 0; i < SIG_ARRAY_SIZE(list_fields); i++) {
    sig_config_list_t *l = field_at(dst, list_fields[i]);
    char **items = l->n > 0 ? sig_malloc(l->n * sizeof(*items)) : NULL;
    for (size_t j = 0; j < l->n; j++) items[j] = sig_strdup(l->items[j]);
    l->items = items;
  }
}

typedef struct {
  const char *name;
  const char *p, *end;
  const char *line_start;
  int line;
  int table;             /* first row of the current table, -1 before any header */
  int table_line[NKEYS]; /* indexed by a table's first row; 0 = not seen */
  const char *table_at[NKEYS], *table_bol[NKEYS]; /* where that header and its line start */
  int key_line[NKEYS];
  char *err;
  size_t errlen;
} reader;

/* 1-based, in characters (code points), as editors count. */
static int column(const reader *r, const char *at) {
  int col = 1;
  for (const char *q = r->line_start; q < at; q++)
    if (((unsigned char)*q & 0xc0) != 0x80) col++;
  return col;
}

/* Writes "NAME:LINE:COL: [KEY: ]reason" to err. */
__attribute__((format(printf, 4, 5))) static int refuse(reader *r, const char *at, const char *key,
                                                        const char *fmt, ...) {
  va_list ap;
  int n;
  if (r->err == NULL || r->errlen == 0) return SIG_ECONFIG;
  if (key != NULL)
    n = snprintf(r->err, r->errlen, "%s:%d:%d: %s: ", r->name, r->line, column(r, at), key);
  else
    n = snprintf(r->err, r->errlen, "%s:%d:%d: ", r->name, r->line, column(r, at));
  if (n < 0 || (size_t)n >= r->errlen) return SIG_ECONFIG;
  va_start(ap, fmt);
  vsnprintf(r->err + n, r->errlen - (size_t)n, fmt, ap);
  va_end(ap);
  return SIG_ECONFIG;
}

static bool at_eol(const reader *r) {
  return r->p == r->end || *r->p == '\n' || (*r->p == '\r' && r->p + 1 < r->end && r->p[1] == '\n');
}

/* End of line or start of a comment: where a value or header must stop. */
static bool at_stop(const reader *r) {
  return at_eol(r) || *r->p == '#';
}

static void skip_ws(reader *r) {
  while (r->p < r->end && (*r->p == ' ' || *r->p == '\t')) r->p++;
}

/* Checks the file is UTF-8 before anything else, so the rest can count columns by lead bytes. */
static int check_utf8(reader *r) {
  for (const char *p = r->p; p < r->end;) {
    size_t n;
    if (*p == '\n') {
      r->line++;
      r->line_start = ++p;
      continue;
    }
    if ((n = utf8_len(p, r->end)) == 0)
      return refuse(r, p, NULL, "invalid UTF-8 (byte 0x%02x)", (unsigned char)*p);
    p += n;
  }
  r->line = 1;
  r->line_start = r->p;
  return 0;
}

/* After a header or value: optional whitespace and comment, then the end of the line (not
 * consumed). `after` names what came before, for the message. */
static int check_line_end(reader *r, const char *key, const char *after) {
  char what[48];
  skip_ws(r);
  if (r->p < r->end && *r->p == '#') {
    for (r->p++; !at_eol(r); r->p++)
      if (is_ctrl((unsigned char)*r->p))
        return refuse(r, r->p, NULL, "control character U+%04X in a comment",
                      (unsigned)(unsigned char)*r->p);
  }
  if (at_eol(r)) return 0;
  return refuse(r, r->p, key, "unexpected %s after %s", describe(what, sizeof(what), r->p, r->end),
                after);
}

static void next_line(reader *r) {
  if (r->p == r->end) return;
  r->p += *r->p == '\r' ? 2 : 1;
  r->line++;
  r->line_start = r->p;
}

static int read_escape(reader *r, char *out, size_t *n, const char *key) {
  const char *bs = r->p;
  char c, what[48];
  int ndig;
  uint32_t cp = 0;

  if (r->p + 1 == r->end || r->p[1] == '\n' || r->p[1] == '\r')
    return refuse(r, bs, key, "unterminated string (a line cannot end with '\\')");
  c = r->p[1];
  switch (c) {
    case '"': out[(*n)++] = '"'; break;
    case '\\': out[(*n)++] = '\\'; break;
    case 'n': out[(*n)++] = '\n'; break;
    case 't': out[(*n)++] = '\t'; break;
    case 'r': out[(*n)++] = '\r'; break;
    case 'b': out[(*n)++] = '\b'; break;
    case 'f': out[(*n)++] = '\f'; break;
    case 'u':
    case 'U':
      ndig = c == 'u' ? 4 : 8;
      if (r->end - (r->p + 2) < ndig)
        return refuse(r, bs, key, "\\%c needs %d hex digits", c, ndig);
      for (int i = 0; i < ndig; i++) {
        int d = sig_hex_value((unsigned char)r->p[2 + i]);
        if (d < 0) return refuse(r, bs, key, "\\%c needs %d hex digits", c, ndig);
        cp = cp << 4 | (uint32_t)d;
      }
      if (cp == 0) return refuse(r, bs, key, "\\%c escapes of NUL are not allowed", c);
      if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return refuse(r, bs, key, "\\%c%.*s is not a Unicode scalar value", c, ndig, r->p + 2);
      *n += sig_utf8_put(out + *n, cp);
      r->p += 2 + ndig;
      return 0;
    default:
      if ((unsigned char)c >= 0x20 && (unsigned char)c < 0x7f)
        return refuse(
            r, bs, key,
            "invalid escape '\\%c' (write \\\\ for a backslash, or use a 'literal string')", c);
      return refuse(r, bs, key, "invalid escape: '\\' followed by %s",
                    describe(what, sizeof(what), r->p + 1, r->end));
  }
  r->p += 2;
  return 0;
}

static int read_basic_string(reader *r, char **out, const char *key) {
  const char *open = r->p;
  const char *eol = memchr(r->p, '\n', (size_t)(r->end - r->p));
  char *buf;
  size_t n = 0;
  int rc;

  if (r->end - r->p >= 3 && memcmp(r->p, "\"\"\"", 3) == 0)
    return refuse(r, open, key, "multi-line strings are not supported");
  /* Decoding never grows the text, so the rest of the line bounds the result. */
  buf = sig_malloc((size_t)((eol != NULL ? eol : r->end) - r->p) + 1);
  for (r->p++;;) {
    unsigned char c;
    if (at_eol(r)) {
      rc = refuse(r, open, key, "unterminated string");
      goto fail;
    }
    c = (unsigned char)*r->p;
    if (c == '"') break;
    if (c == '\\') {
      if ((rc = read_escape(r, buf, &n, key)) != 0) goto fail;
      continue;
    }
    if (is_ctrl(c)) {
      rc = refuse(r, r->p, key, "control character U+%04X in a string (write it as an escape)", c);
      goto fail;
    }
    buf[n++] = (char)c;
    r->p++;
  }
  r->p++;
  buf[n] = '\0';
  *out = buf;
  return 0;

fail:
  free(buf);
  return rc;
}

static int read_literal_string(reader *r, char **out, const char *key) {
  const char *open = r->p, *start;
  if (r->end - r->p >= 3 && memcmp(r->p, "'''", 3) == 0)
    return refuse(r, open, key, "multi-line strings are not supported");
  for (start = ++r->p; !at_eol(r) && *r->p != '\''; r->p++)
    if (is_ctrl((unsigned char)*r->p))
      return refuse(r, r->p, key,
                    "control character U+%04X in a literal string (use a \"basic string\" with an "
                    "escape)",
                    (unsigned)(unsigned char)*r->p);
  if (at_eol(r)) return refuse(r, open, key, "unterminated string");
  *out = sig_strndup(start, (size_t)(r->p - start));
  r->p++;
  return 0;
}

static int read_string(reader *r, char **out, const char *key) {
  return *r->p == '"' ? read_basic_string(r, out, key) : read_literal_string(r, out, key);
}

static int read_array(reader *r, value *v, const char *key) {
  static const char multi_line[] =
      "multi-line arrays are not supported (put the array on one line)";
  const char *open = r->p;
  size_t cap = 0;
  int rc;

  v->type = VAL_ARRAY;
  r->p++;
  skip_ws(r);
  if (!at_stop(r) && *r->p == ']') goto done;
  for (;;) {
    skip_ws(r);
    if (at_stop(r)) return refuse(r, open, key, "%s", multi_line);
    if (*r->p == '[') return refuse(r, r->p, key, "nested arrays are not supported");
    if (*r->p != '"' && *r->p != '\'') return refuse(r, r->p, key, "arrays may only hold strings");
    if (v->nitems == cap) {
      cap = cap != 0 ? cap * 2 : 4;
      v->items = sig_realloc(v->items, cap * sizeof(*v->items));
    }
    if ((rc = read_string(r, &v->items[v->nitems], key)) != 0) return rc;
    v->nitems++;
    skip_ws(r);
    if (at_stop(r)) return refuse(r, open, key, "%s", multi_line);
    if (*r->p == ']') break;
    if (*r->p != ',') return refuse(r, r->p, key, "expected ',' or ']' in an array");
    r->p++;
    skip_ws(r);
    if (at_stop(r)) return refuse(r, open, key, "%s", multi_line);
    if (*r->p == ']') break; /* trailing comma */
  }
done:
  r->p++;
  return 0;
}

static bool token_is(const char *t, size_t n, const char *word) {
  return strlen(word) == n && memcmp(t, word, n) == 0;
}

static bool looks_like_address(const char *t, size_t n) {
  const char *colon = memchr(t, ':', n);
  if (colon == NULL || colon == t + n - 1) return false;
  for (const char *q = colon + 1; q < t + n; q++)
    if (!is_digit(*q)) return false;
  return true;
}

/* HOST:PORT written without quotes (the TOML would read a time, a float or nothing). */
static int refuse_address(reader *r, const char *t, size_t n, const char *key) {
  return refuse(r, t, key, "an address must be a quoted string: \"%.*s\"",
                (int)(n < MAX_NAME_IN_MSG ? n : MAX_NAME_IN_MSG), t);
}

/* Why a token that starts like a number is not a decimal integer (the one form we read), or NULL.
 * The sign, if any, is at t[0]. */
static const char *unsupported_number(const char *t, size_t n) {
  const char *s = t + (*t == '+' || *t == '-');
  size_t len = (size_t)(t + n - s);
  if (memchr(t, ':', n) != NULL || (n >= 5 && is_digit(t[0]) && is_digit(t[1]) && is_digit(t[2]) &&
                                    is_digit(t[3]) && t[4] == '-'))
    return "dates and times are not supported";
  if (token_is(s, len, "inf") || token_is(s, len, "nan")) return "floats are not supported";
  if (len >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o' || s[1] == 'b'))
    return "hexadecimal, octal and binary integers are not supported";
  if (memchr(s, '.', len) != NULL || memchr(s, 'e', len) != NULL || memchr(s, 'E', len) != NULL)
    return "floats are not supported";
  if (len == 0) return "invalid integer";
  if (s[0] == '0' && len > 1) return "leading zeros are not allowed";
  return NULL;
}

/* A token that starts like a number: decimal integers only, everything else named and refused. */
static int read_number(reader *r, const char *t, size_t n, value *v, const char *key) {
  const char *s = t, *e = t + n, *why = unsupported_number(t, n);
  bool neg = false, prev_digit = false;
  uint64_t acc = 0, limit;

  if (looks_like_address(t, n)) return refuse_address(r, t, n, key);
  if (why != NULL) return refuse(r, t, key, "%s", why);
  if (*s == '+' || *s == '-') neg = *s++ == '-';
  limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
  for (const char *q = s; q < e; q++) {
    unsigned d;
    if (*q == '_') {
      if (!prev_digit || q + 1 == e || !is_digit(q[1]))
        return refuse(r, t, key, "'_' in an integer must sit between digits");
      prev_digit = false;
      continue;
    }
    if (!is_digit(*q))
      return refuse(r, t, key, "invalid integer '%.*s'",
                    (int)(n < MAX_NAME_IN_MSG ? n : MAX_NAME_IN_MSG), t);
    d = (unsigned)(*q - '0');
    if (acc > (limit - d) / 10)
      return refuse(r, t, key, "integer out of range (must fit in 64 bits)");
    acc = acc * 10 + d;
    prev_digit = true;
  }
  v->type = VAL_INT;
  v->i = !neg ? (int64_t)acc : acc == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)acc;
  return 0;
}

/* "[" IPv6 characters "]:" digits: an IPv6 address and port, not an array. */
static bool looks_like_bracketed_address(const char *p, const char *end) {
  const char *q = p + 1;
  while (q < end && (sig_hex_value((unsigned char)*q) >= 0 || *q == ':' || *q == '.')) q++;
  if (q + 2 >= end || q[0] != ']' || q[1] != ':' || !is_digit(q[2])) return false;
  for (q += 2; q < end && is_digit(*q);) q++;
  return q == end || *q == ' ' || *q == '\t' || *q == '#' || *q == '\r' || *q == '\n';
}

static bool is_token(int c) {
  return is_alnum(c) || c == '_' || c == '+' || c == '-' || c == '.' || c == ':';
}

static int read_value(reader *r, value *v, const char *key) {
  const char *t = r->p;
  char what[48];
  size_t n;

  if (at_stop(r)) return refuse(r, t, key, "missing value");
  switch (*r->p) {
    case '"':
    case '\'': v->type = VAL_STRING; return read_string(r, &v->str, key);
    case '[':
      if (looks_like_bracketed_address(r->p, r->end)) {
        const char *e = r->p;
        while (e < r->end && (is_token((unsigned char)*e) || *e == '[' || *e == ']')) e++;
        return refuse_address(r, r->p, (size_t)(e - r->p), key);
      }
      return read_array(r, v, key);
    case '{': return refuse(r, t, key, "inline tables are not supported");
    default: break;
  }
  while (r->p < r->end && is_token((unsigned char)*r->p)) r->p++;
  n = (size_t)(r->p - t);
  if (n == 0)
    return refuse(r, t, key, "expected a value, got %s", describe(what, sizeof(what), t, r->end));
  if (token_is(t, n, "true") || token_is(t, n, "false")) {
    v->type = VAL_BOOL;
    v->b = t[0] == 't';
    return 0;
  }
  if (is_digit(t[0]) || t[0] == '+' || t[0] == '-') return read_number(r, t, n, v, key);
  if (token_is(t, n, "inf") || token_is(t, n, "nan"))
    return refuse(r, t, key, "floats are not supported");
  if (looks_like_address(t, n)) return refuse_address(r, t, n, key);
  return refuse(r, t, key, "invalid value '%.*s' (strings must be quoted)",
                (int)(n < MAX_NAME_IN_MSG ? n : MAX_NAME_IN_MSG), t);
}

static int read_table(reader *r) {
  const char *open = r->p, *name;
  size_t len;
  int t;

  r->p++;
  if (r->p < r->end && *r->p == '[')
    return refuse(r, open, NULL, "arrays of tables [[...]] are not supported");
  skip_ws(r);
  for (name = r->p; r->p < r->end && is_bare_key((unsigned char)*r->p);) r->p++;
  len = (size_t)(r->p - name);
  if (len == 0) {
    if (r->p < r->end && (*r->p == '"' || *r->p == '\''))
      return refuse(r, r->p, NULL, "quoted table names are not supported");
    return refuse(r, r->p, NULL, "expected a table name after '['");
  }
  skip_ws(r);
  if (r->p < r->end && *r->p == '.')
    return refuse(r, open, NULL, "dotted table names are not supported");
  if (r->p == r->end || *r->p != ']') return refuse(r, r->p, NULL, "expected ']' after table name");
  r->p++;
  if ((t = find_table(name, len)) < 0)
    return refuse(r, open, NULL, "unknown table [%.*s]",
                  (int)(len < MAX_NAME_IN_MSG ? len : MAX_NAME_IN_MSG), name);
  if (r->table_line[t] != 0)
    return refuse(r, open, NULL, "duplicate table [%s] (first on line %d)", keys[t].table,
                  r->table_line[t]);
  r->table_line[t] = r->line;
  r->table_at[t] = open;
  r->table_bol[t] = r->line_start;
  r->table = t;
  return check_line_end(r, NULL, "the table header");
}

static int read_keyval(reader *r, sig_config_t *cfg) {
  const char *kp = r->p, *vp;
  char qname[2 * MAX_NAME_IN_MSG + 2], what[48], why[256];
  size_t klen;
  int shown, k, rc;
  value v = {0};

  while (r->p < r->end && is_bare_key((unsigned char)*r->p)) r->p++;
  klen = (size_t)(r->p - kp);
  if (klen == 0) {
    if (*r->p == '"' || *r->p == '\'') return refuse(r, kp, NULL, "quoted keys are not supported");
    return refuse(r, kp, NULL, "expected a key, a [table] header or a comment, got %s",
                  describe(what, sizeof(what), kp, r->end));
  }
  skip_ws(r);
  if (r->p < r->end && *r->p == '.') return refuse(r, kp, NULL, "dotted keys are not supported");
  if (at_eol(r) || *r->p != '=') return refuse(r, r->p, NULL, "expected '=' after the key");
  r->p++;
  shown = (int)(klen < MAX_NAME_IN_MSG ? klen : MAX_NAME_IN_MSG);
  if (r->table < 0) {
    int any = find_key(-1, kp, klen);
    if (any >= 0)
      return refuse(r, kp, NULL, "%.*s: key outside a table (put it under [%s])", shown, kp,
                    keys[any].table);
    return refuse(r, kp, NULL, "%.*s: key outside a table", shown, kp);
  }
  snprintf(qname, sizeof(qname), "%s.%.*s", keys[r->table].table, shown, kp);
  if ((k = find_key(r->table, kp, klen)) < 0) return refuse(r, kp, qname, "unknown key");
  if (r->key_line[k] != 0)
    return refuse(r, kp, qname, "duplicate key (first set on line %d)", r->key_line[k]);
  r->key_line[k] = r->line;

  skip_ws(r);
  vp = r->p;
  if ((rc = read_value(r, &v, qname)) != 0) goto out;
  if ((rc = check_line_end(r, qname, "the value")) != 0) goto out;
  if ((rc = apply(cfg, &keys[k], &v, why, sizeof(why))) != 0) rc = refuse(r, vp, qname, "%s", why);

out:
  value_free(&v);
  return rc;
}

/* A [tls] table turns TLS on, so it must name the certificate and its key. */
static int check_tls(reader *r, sig_config_t *cfg) {
  int t = find_table("tls", 3);
  if (r->table_line[t] == 0) return 0;
  cfg->tls = 1;
  r->line = r->table_line[t];
  r->line_start = r->table_bol[t];
  if (cfg->tls_cert_file[0] == '\0')
    return refuse(r, r->table_at[t], "tls.cert_file",
                  "required in [tls] (the PEM certificate chain)");
  if (cfg->tls_key_file[0] == '\0')
    return refuse(r, r->table_at[t], "tls.key_file", "required in [tls] (the PEM private key)");
  return 0;
}

/* A [turn] table turns GET /turn-credentials on, so it must name the secret and a URI. */
static int check_turn(reader *r, sig_config_t *cfg) {
  int t = find_table("turn", 4);
  if (r->table_line[t] == 0) return 0;
  cfg->turn = 1;
  r->line = r->table_line[t];
  r->line_start = r->table_bol[t];
  if (cfg->turn_secret_file[0] == '\0')
    return refuse(r, r->table_at[t], "turn.secret_file",
                  "required in [turn] (the file holding coturn's static-auth-secret)");
  if (cfg->turn_uris.n == 0)
    return refuse(r, r->table_at[t], "turn.uris",
                  "required in [turn] (at least one, e.g. [\"turn:turn.example.com:3478\"])");
  return 0;
}

static int read_document(reader *r, sig_config_t *cfg) {
  while (r->p < r->end) {
    int rc;
    skip_ws(r);
    if (at_stop(r))
      rc = check_line_end(r, NULL, "whitespace");
    else if (*r->p == '[')
      rc = read_table(r);
    else
      rc = read_keyval(r, cfg);
    if (rc != 0) return rc;
    next_line(r);
  }
  int rc = check_tls(r, cfg);
  return rc != 0 ? rc : check_turn(r, cfg);
}

int sig_config_parse(sig_config_t *cfg, const char *name, const char *text, size_t len, char *err,
                     size_t errlen) {
  sig_config_t tmp;
  reader r;
  int rc;

  if (err != NULL && errlen > 0) err[0] = '\0';
  if (text == NULL) text = "", len = 0;
  memset(&r, 0, sizeof(r));
  r.name = name != NULL ? name : "config";
  r.p = r.line_start = text;
  r.end = text + len;
  r.line = 1;
  r.table = -1;
  r.err = err;
  r.errlen = errlen;
  if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) r.p = r.line_start = text + 3;
  if ((rc = check_utf8(&r)) != 0) return rc;

  config_copy(&tmp, cfg);
  if ((rc = read_document(&r, &tmp)) != 0) {
    sig_config_free(&tmp);
    return rc;
  }
  sig_config_free(cfg);
  *cfg = tmp;
  return 0;
}

static int read_file(const char *path, char **out, size_t *outlen, char *err, size_t errlen) {
  FILE *f;
  char *buf;
  size_t cap = 4096, n = 0;
  int rc;

  if ((f = fopen(path, "rb")) == NULL)
    return errorf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
  buf = sig_malloc(cap);
  for (;;) {
    size_t want, got;
    if (n == cap) {
      if (cap > MAX_FILE_BYTES) break;
      cap *= 2;
      buf = sig_realloc(buf, cap);
    }
    want = cap - n;
    got = fread(buf + n, 1, want, f);
    n += got;
    if (got < want) {
      if (ferror(f)) {
        rc = errorf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        goto fail;
      }
      break;
    }
  }
  if (n > MAX_FILE_BYTES) {
    rc = errorf(err, errlen, "%s: cannot read: larger than %d bytes", path, MAX_FILE_BYTES);
    goto fail;
  }
  fclose(f);
  *out = buf;
  *outlen = n;
  return 0;

fail:
  free(buf);
  fclose(f);
  return rc;
}

int sig_config_load(sig_config_t *cfg, const char *path, char *err, size_t errlen) {
  char *text = NULL;
  size_t len = 0;
  int rc;

  if (err != NULL && errlen > 0) err[0] = '\0';
  if ((rc = read_file(path, &text, &len, err, errlen)) != 0) return rc;
  if ((rc = sig_config_parse(cfg, path, text, len, err, errlen)) == 0) {
    free(cfg->path);
    cfg->path = sig_strdup(path);
  }
  free(text);
  return rc;
}

/* Drops empty and "." components of an absolute path in place. ".." stays: it may cross a
 * symlink, so only the kernel can resolve it. */
static void tidy_path(char *s) {
  char *w = s;
  const char *p = s;
  while (*p != '\0') {
    const char *seg;
    size_t n;
    while (*p == '/') p++;
    if (*p == '\0') break;
    for (seg = p; *p != '\0' && *p != '/';) p++;
    n = (size_t)(p - seg);
    if (n == 1 && seg[0] == '.') continue;
    *w++ = '/';
    memmove(w, seg, n);
    w += n;
  }
  if (w == s) *w++ = '/';
  *w = '\0';
}

/* Makes *field absolute against base_dir (see sig_config_resolve_paths). */
static int resolve_one(char **field, const char *key, const char *base_dir, char *err,
                       size_t errlen) {
  char cwd[PATH_MAX];
  const char *parts[3];
  size_t nparts = 0, total = 1;
  char *path, *w;

  if ((*field)[0] != '/') {
    if (base_dir == NULL || base_dir[0] == '\0') base_dir = ".";
    if (base_dir[0] != '/') {
      if (getcwd(cwd, sizeof(cwd)) == NULL)
        return errorf(err, errlen, "%s: cannot get the current directory: %s", key,
                      strerror(errno));
      parts[nparts++] = cwd;
    }
    parts[nparts++] = base_dir;
  }
  parts[nparts++] = *field;

  for (size_t i = 0; i < nparts; i++) total += strlen(parts[i]) + 1;
  w = path = sig_malloc(total);
  for (size_t i = 0; i < nparts; i++) {
    size_t n = strlen(parts[i]);
    *w++ = '/';
    memcpy(w, parts[i], n);
    w += n;
  }
  *w = '\0';
  tidy_path(path);
  if (strlen(path) >= PATH_MAX) {
    free(path);
    return errorf(err, errlen, "%s: resolved path is longer than %d bytes", key, PATH_MAX - 1);
  }
  free(*field);
  *field = path;
  return 0;
}

int sig_config_resolve_paths(sig_config_t *cfg, const char *base_dir, char *err, size_t errlen) {
  char *resolved[NKEYS + 1] = {NULL}; /* by row; the last one: log.out_dir */
  char name[80];
  int rc = 0;
  if (err != NULL && errlen > 0) err[0] = '\0';
  if (cfg->log_dir == NULL || cfg->log_dir[0] == '\0')
    return errorf(err, errlen, "log.out_dir: must not be empty");
  resolved[NKEYS] = sig_strdup(cfg->log_dir);
  rc = resolve_one(&resolved[NKEYS], "log.out_dir", base_dir, err, errlen);
  for (size_t i = 0; i < NKEYS && rc == 0; i++) {
    if (!keys[i].file) continue;
    const char *path = *(char **)field_at(cfg, keys[i].offset);
    if (path == NULL || path[0] == '\0') continue;
    snprintf(name, sizeof(name), "%s.%s", keys[i].table, keys[i].name);
    resolved[i] = sig_strdup(path);
    rc = resolve_one(&resolved[i], name, base_dir, err, errlen);
  }
  for (size_t i = 0; i <= NKEYS; i++) { /* all or nothing */
    if (resolved[i] == NULL) continue;
    char **slot = i < NKEYS ? field_at(cfg, keys[i].offset) : &cfg->log_dir;
    if (rc == 0) {
      free(*slot);
      *slot = resolved[i];
    } else {
      free(resolved[i]);
    }
  }
  return rc;
}

int sig_config_check_files(const sig_config_t *cfg, char *err, size_t errlen) {
  if (err != NULL && errlen > 0) err[0] = '\0';
  for (size_t i = 0; i < NKEYS; i++) {
    const key_desc *k = &keys[i];
    if (!k->file) continue;
    const char *path = *(char **)field_at((sig_config_t *)cfg, k->offset);
    if (path == NULL || path[0] == '\0' || (k->used != NULL && !k->used(cfg))) continue;
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
      return errorf(err, errlen, "%s.%s: cannot read %s: %s", k->table, k->name, path,
                    strerror(errno));
    int dir = fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
    close(fd);
    if (dir)
      return errorf(err, errlen, "%s.%s: cannot read %s: it is a folder, not a file", k->table,
                    k->name, path);
  }
  return 0;
}

static bool same_value(const key_desc *k, const sig_config_t *a, const sig_config_t *b) {
  const void *x = field_at((sig_config_t *)a, k->offset),
             *y = field_at((sig_config_t *)b, k->offset);
  switch (k->kind) {
    case KEY_INT: return *(const int64_t *)x == *(const int64_t *)y;
    case KEY_CHOICE: return *(const int *)x == *(const int *)y;
    case KEY_STRING: return strcmp(*(char *const *)x, *(char *const *)y) == 0;
    case KEY_LIST: {
      const sig_config_list_t *l = x, *m = y;
      if (l->n != m->n) return false;
      for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->items[i], m->items[i]) != 0) return false;
      return true;
    }
  }
  return false;
}

size_t sig_config_update(sig_config_t *cur, const sig_config_t *next, sig_config_change_fn each,
                         void *arg) {
  size_t changed = 0;
  for (size_t i = 0; i < NKEYS; i++) {
    const key_desc *k = &keys[i];
    if (same_value(k, cur, next)) continue;
    changed++;
    if (each != NULL) each(arg, k->table, k->name, k->live);
    if (!k->live) continue;
    void *dst = field_at(cur, k->offset);
    const void *src = field_at((sig_config_t *)next, k->offset);
    switch (k->kind) {
      case KEY_INT: *(int64_t *)dst = *(const int64_t *)src; break;
      case KEY_CHOICE: *(int *)dst = *(const int *)src; break;
      case KEY_STRING:
        free(*(char **)dst);
        *(char **)dst = sig_strdup(*(char *const *)src);
        break;
      case KEY_LIST: {
        const sig_config_list_t *from = src;
        sig_config_list_t *to = dst;
        list_free(to);
        to->n = from->n;
        to->items = to->n > 0 ? sig_malloc(to->n * sizeof(*to->items)) : NULL;
        for (size_t j = 0; j < to->n; j++) to->items[j] = sig_strdup(from->items[j]);
        break;
      }
    }
  }
  return changed;
}

/* A basic string, escaped so that the reader reads it back as it is. */
static void put_string(sig_buf_t *t, const char *s) {
  sig_buf_printf(t, "\"");
  for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
    if (*p == '"' || *p == '\\')
      sig_buf_printf(t, "\\%c", *p);
    else if (*p < 0x20 || *p == 0x7f)
      sig_buf_printf(t, "\\u%04x", *p);
    else
      sig_buf_printf(t, "%c", *p);
  }
  sig_buf_printf(t, "\"");
}

char *sig_config_format(const sig_config_t *cfg, size_t *len) {
  sig_buf_t t = {NULL, 0, 0};
  sig_buf_printf(
      &t,
      "# The configuration in effect: the file's keys, and the default of every other key.\n"
      "# Paths are absolute. Secrets stay in the files that keys name.\n");
  for (size_t i = 0; i < NKEYS; i++) {
    const key_desc *k = &keys[i];
    const void *field = field_at((sig_config_t *)cfg, k->offset);
    int first = i == 0 || strcmp(keys[i - 1].table, k->table) != 0;
    if (strcmp(k->table, "tls") == 0 && !cfg->tls) { /* the table's presence turns TLS on */
      if (first) sig_buf_printf(&t, "# [tls] absent: the listener speaks plain HTTP\n");
      continue;
    }
    if (strcmp(k->table, "turn") == 0 && !cfg->turn) { /* likewise GET /turn-credentials */
      if (first) sig_buf_printf(&t, "# [turn] absent: GET /turn-credentials answers 404\n");
      continue;
    }
    if (first) sig_buf_printf(&t, "[%s]\n", k->table);
    sig_buf_printf(&t, "    %s = ", k->name);
    switch (k->kind) {
      case KEY_INT: sig_buf_printf(&t, "%" PRId64, *(const int64_t *)field); break;
      case KEY_STRING: put_string(&t, *(char *const *)field); break;
      case KEY_CHOICE: put_string(&t, k->choices[*(const int *)field]); break;
      case KEY_LIST: {
        const sig_config_list_t *l = field;
        sig_buf_printf(&t, "[");
        for (size_t j = 0; j < l->n; j++) {
          if (j > 0) sig_buf_printf(&t, ", ");
          put_string(&t, l->items[j]);
        }
        sig_buf_printf(&t, "]");
        break;
      }
    }
    sig_buf_printf(&t, "\n");
  }
  if (len != NULL) *len = t.n;
  return t.s;
}
