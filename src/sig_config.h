/* Configuration: built-in defaults, a strict TOML-subset reader that reports
 * FILE:LINE:COL errors, and one descriptor row per `[table] key`. Keys, types,
 * defaults and ranges are documented in docs/CONFIG.md. */
#ifndef SIG_CONFIG_H
#define SIG_CONFIG_H

#include <stddef.h>
#include <stdint.h>

/* `[server] duplicate`: what a second WebSocket for a taken domain does. */
typedef enum { SIG_DUP_REPLACE, SIG_DUP_REJECT } sig_dup_policy_t;

/* `[auth] mode` and `[auth] algorithm` (the JWS algorithms a token may be signed with). */
typedef enum { SIG_AUTH_NONE, SIG_AUTH_JWT } sig_auth_mode_t;
typedef enum {
  SIG_ALG_HS256,
  SIG_ALG_HS384,
  SIG_ALG_HS512,
  SIG_ALG_RS256,
  SIG_ALG_RS384,
  SIG_ALG_RS512,
  SIG_ALG_ES256,
  SIG_ALG_ES384
} sig_auth_alg_t;

/* `[tls] min_version`: the oldest TLS version a client may use. */
typedef enum { SIG_TLS_1_2, SIG_TLS_1_3 } sig_tls_version_t;

/* `[log] level`, least to most severe. */
typedef enum { SIG_LOG_DEBUG, SIG_LOG_INFO, SIG_LOG_WARN, SIG_LOG_ERROR } sig_log_level_t;
/* `[log] format`: "key=value" text lines, or one JSON object per line. */
typedef enum { SIG_LOG_TEXT, SIG_LOG_JSON } sig_log_format_t;

/* A list of strings (an array key): items[0..n), heap-allocated. */
typedef struct {
  char **items;
  size_t n;
} sig_config_list_t;

/* Plain data. Every string is heap-allocated, owned by the struct and freed by sig_config_free. */
typedef struct {
  char *host;      /* as written, e.g. "[::1]:9091" */
  char *host_addr; /* address part without brackets: "::1", "0.0.0.0", "localhost" */
  int host_port;   /* 0..65535; 0 = any free port */
  int64_t max_connections, max_header_bytes, max_body_bytes, max_message_bytes,
      max_write_queue_bytes, header_timeout_s, keepalive_timeout_s, ping_interval_s, pong_timeout_s,
      answer_timeout_s, max_pending_offers, max_exchanges_per_peer, shutdown_timeout_s;
  /* abuse bounds (docs/SECURITY.md) */
  int64_t first_byte_timeout_s, message_timeout_s, max_connections_per_ip, requests_per_ip_per_s,
      requests_per_ip_burst, messages_per_s, messages_burst, max_tracked_ips;
  sig_config_list_t trusted_proxies; /* CIDR ranges whose X-Forwarded-For / Forwarded we believe */
  sig_config_list_t allowed_origins; /* "*", or origins: see docs/CONFIG.md */
  /* [auth] */
  sig_auth_mode_t auth_mode;
  sig_auth_alg_t auth_alg;
  char *auth_key_file;               /* absolute after sig_config_resolve_paths; "" when unset */
  char *auth_issuer, *auth_audience; /* "" when unset */
  int64_t auth_leeway_s;
  /* [cluster]: on when redis is set ("" when not) */
  char *cluster_redis;         /* redis://HOST[:PORT][/DB] or unix:/PATH[?db=N] */
  char *cluster_password_file; /* absolute after sig_config_resolve_paths; "" when unset */
  char *cluster_node_id;       /* "" when unset: host name, port and pid */
  char *cluster_key_prefix;
  int64_t cluster_node_ttl_s, cluster_request_timeout_ms;
  int64_t workers; /* [server] workers: processes sharing the port (each a node of the cluster) */
  /* [metrics] host: the private listener of GET /metrics ("" when off), split like host */
  char *metrics_host, *metrics_addr;
  int metrics_port;
  int worker_index; /* not a key: which worker this process is (0 without workers) */
  /* [tls]: when the table is present (tls = 1), the listener speaks TLS only */
  int tls;
  char *tls_cert_file, *tls_key_file; /* absolute after sig_config_resolve_paths */
  sig_tls_version_t tls_min_version;
  char *tls_ciphers; /* "" when unset: OpenSSL's defaults */
  /* [turn]: when the table is present (turn = 1), GET /turn-credentials hands out TURN REST
   * credentials (docs/CONFIG.md) */
  int turn;
  char *turn_secret_file;      /* absolute after sig_config_resolve_paths */
  sig_config_list_t turn_uris; /* turn:, turns: or stun: URIs; at least one when on */
  int64_t turn_ttl_s, turn_requests_per_ip_per_s, turn_requests_per_ip_burst;
  sig_dup_policy_t duplicate;
  char *cors_origin;
  char *log_dir;  /* `[log] out_dir`; absolute after sig_config_resolve_paths */
  char *log_file; /* "-": standard output (then log_dir is not used) */
  sig_log_level_t log_level;
  sig_log_format_t log_format;
  char *path; /* config file path used, NULL when running on defaults */
} sig_config_t;

/* Fills cfg with the built-in defaults (heap strings; path is NULL). Overwrites cfg without freeing
 * it: call it on a fresh struct only. */
void sig_config_init(sig_config_t *cfg);

/* Frees the strings and NULLs them. Accepts NULL and a zeroed struct; safe to call twice. */
void sig_config_free(sig_config_t *cfg);

/* Parses `len` bytes of TOML text (need not be NUL-terminated), called `name` in messages, into
 * cfg: keys present override cfg's current values, others keep them. Returns 0, or SIG_ECONFIG with
 * "NAME:LINE:COL: [TABLE.KEY: ]reason" in err (always NUL-terminated when errlen > 0; err may be
 * NULL). On failure cfg is left exactly as it was on entry. Does not touch cfg->path. */
int sig_config_parse(sig_config_t *cfg, const char *name, const char *text, size_t len, char *err,
                     size_t errlen);

/* Reads the file at `path` (at most 1 MiB) and parses it as sig_config_parse does; on success also
 * sets cfg->path to a copy of `path`. A missing or unreadable file gives SIG_ECONFIG with
 * "PATH: cannot read: <strerror>". On failure cfg is unchanged. */
int sig_config_load(sig_config_t *cfg, const char *path, char *err, size_t errlen);

/* Makes cfg->log_dir and every file a key names (auth.key_file, cluster.redis_password_file,
 * tls.cert_file, tls.key_file, turn.secret_file)
 * absolute and tidy (no "//", no "." components). A relative path is taken
 * against base_dir: the config file's folder, or the executable's folder when running on defaults.
 * A relative or NULL base_dir is itself taken against the current directory.
 * Returns 0, or SIG_ECONFIG with the reason in err; on failure cfg is unchanged. */
int sig_config_resolve_paths(sig_config_t *cfg, const char *base_dir, char *err, size_t errlen);

/* Whether every file a key names, where the configuration uses it (auth.key_file with mode
 * "jwt", cluster.redis_password_file with a redis URL), can be opened for reading: what start-up
 * reads. Call after sig_config_resolve_paths. Returns 0, or SIG_ECONFIG with
 * "TABLE.KEY: cannot read PATH: reason" in err. */
int sig_config_check_files(const sig_config_t *cfg, char *err, size_t errlen);

/* The configuration as TOML that sig_config_parse reads back to the same values: every key of
 * every table, in the order of docs/CONFIG.md, defaults included. Holds no secret (keys name
 * files). Returns a malloc'ed NUL-terminated text; *len (when not NULL) gets its length. */
char *sig_config_format(const sig_config_t *cfg, size_t *len);

/* A key whose value differs (sig_config_update); live: SIGHUP applies it while the server
 * runs, else it keeps its value until a restart. */
typedef void (*sig_config_change_fn)(void *arg, const char *table, const char *key, int live);

/* SIGHUP's merge: compares next (a configuration read again, paths resolved) with cur key by
 * key, in the order of docs/CONFIG.md, and calls each (when not NULL) for every key that
 * differs. The live keys take next's value in cur (strings and lists copied); the others keep
 * cur's. next is only read. Returns the number of keys that differ. */
size_t sig_config_update(sig_config_t *cur, const sig_config_t *next, sig_config_change_fn each,
                         void *arg);

/* Where Redis is: a TCP address (host without brackets) or a unix socket path, and a
 * database number. */
typedef struct {
  char host[256]; /* "" for a unix socket */
  int port;
  char path[108]; /* the unix socket, when host is "" */
  int db;
} sig_redis_target_t;

/* Parses "redis://HOST[:PORT][/DB]" (HOST an IPv4 address, [IPv6] or a host name; PORT 6379 by
 * default; DB 0-15... any non-negative number below 1000000) or "unix:/PATH[?db=N]". A password
 * in the URL is refused (it belongs in cluster.redis_password_file). Returns 0, or SIG_ECONFIG
 * with the reason in why. */
int sig_config_redis_target(const char *url, sig_redis_target_t *out, char *why, size_t whylen);

/* Splits "IPV4:PORT", "[IPV6]:PORT" or "HOSTNAME:PORT" and checks the form (IPv4 and IPv6 with
 * inet_pton, hostnames as RFC 1123 labels, at most 253 characters; port 0..65535). Does not resolve
 * or bind. On success returns 0, *addr_out gets a heap copy of the address without brackets (caller
 * frees) and *port_out the port. Otherwise returns SIG_ECONFIG with the reason in err and leaves
 * the outputs untouched. */
int sig_config_split_host(const char *host, char **addr_out, int *port_out, char *err,
                          size_t errlen);

#endif
