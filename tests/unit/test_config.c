/* Unit tests for sig_config: every error path of the TOML-subset reader, each key's type and range,
 * host forms, the seed's file, atomic failure, path resolution and loading; the files keys name
 * (resolved, checked where used); the printed configuration read back to the same text. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
/* cmocka needs the headers above first. */
#include <cmocka.h>
#include <inttypes.h>

#include "sig_config.h"
#include "sig_util.h"

static const char seed_text[] =
    "#设置信令服务器的地址\n"
    "[server]\n"
    "    host = \"0.0.0.1:9091\"\n"
    "#配置日志输出的位置和文件\n"
    "[log]\n"
    "    out_dir = \"/log/signal-server\"\n"
    "    out_file = \"signal-server.log\"\n";

static const struct {
  const char *name;
  int64_t min, max, def;
  size_t offset;
} int_keys[] = {
    {"max_connections", 1, 1000000, 10000, offsetof(sig_config_t, max_connections)},
    {"max_header_bytes", 1024, 1048576, 8192, offsetof(sig_config_t, max_header_bytes)},
    {"max_body_bytes", 1024, 16777216, 65536, offsetof(sig_config_t, max_body_bytes)},
    {"max_message_bytes", 1024, 16777216, 65536, offsetof(sig_config_t, max_message_bytes)},
    {"max_write_queue_bytes", 65536, 268435456, 262144,
     offsetof(sig_config_t, max_write_queue_bytes)},
    {"header_timeout_s", 1, 3600, 10, offsetof(sig_config_t, header_timeout_s)},
    {"keepalive_timeout_s", 1, 86400, 60, offsetof(sig_config_t, keepalive_timeout_s)},
    {"ping_interval_s", 1, 3600, 20, offsetof(sig_config_t, ping_interval_s)},
    {"pong_timeout_s", 1, 3600, 20, offsetof(sig_config_t, pong_timeout_s)},
    {"answer_timeout_s", 1, 3600, 30, offsetof(sig_config_t, answer_timeout_s)},
    {"max_pending_offers", 1, 10000, 16, offsetof(sig_config_t, max_pending_offers)},
    {"max_exchanges_per_peer", 1, 100000, 64, offsetof(sig_config_t, max_exchanges_per_peer)},
    {"shutdown_timeout_s", 0, 600, 5, offsetof(sig_config_t, shutdown_timeout_s)},
    {"first_byte_timeout_s", 1, 3600, 3, offsetof(sig_config_t, first_byte_timeout_s)},
    {"message_timeout_s", 1, 3600, 10, offsetof(sig_config_t, message_timeout_s)},
    {"max_connections_per_ip", 1, 1000000, 256, offsetof(sig_config_t, max_connections_per_ip)},
    {"requests_per_ip_per_s", 1, 1000000, 100, offsetof(sig_config_t, requests_per_ip_per_s)},
    {"requests_per_ip_burst", 1, 1000000, 200, offsetof(sig_config_t, requests_per_ip_burst)},
    {"messages_per_s", 1, 1000000, 100, offsetof(sig_config_t, messages_per_s)},
    {"messages_burst", 1, 1000000, 200, offsetof(sig_config_t, messages_burst)},
    {"max_tracked_ips", 1024, 10000000, 65536, offsetof(sig_config_t, max_tracked_ips)},
};

/* [table] and key of every string-valued key. */
static const struct {
  const char *table, *name;
} string_keys[] = {
    {"server", "host"},  {"server", "duplicate"}, {"server", "cors_origin"}, {"log", "out_dir"},
    {"log", "out_file"}, {"log", "level"},        {"log", "format"},         {"tls", "cert_file"},
    {"tls", "key_file"}, {"tls", "min_version"},  {"tls", "ciphers"},
};

static int64_t int_field(const sig_config_t *cfg, size_t offset) {
  return *(const int64_t *)((const char *)cfg + offset);
}

static int parse_text(sig_config_t *cfg, const char *text, char *err, size_t errlen) {
  return sig_config_parse(cfg, "x.toml", text, strlen(text), err, errlen);
}

/* Parses text over the defaults and expects success; caller frees cfg. */
static void expect_ok(sig_config_t *cfg, const char *text) {
  char err[512] = "";
  sig_config_init(cfg);
  if (parse_text(cfg, text, err, sizeof(err)) != 0) fail_msg("input:\n%s\nerror: %s", text, err);
}

/* Expects the exact message (named `name`), and cfg unchanged. */
static void expect_err_named(const char *name, const char *text, size_t len, const char *want) {
  sig_config_t cfg;
  char err[512] = "";
  char *host;
  int rc;
  sig_config_init(&cfg);
  host = cfg.host;
  rc = sig_config_parse(&cfg, name, text, len, err, sizeof(err));
  if (rc != SIG_ECONFIG || strcmp(err, want) != 0)
    print_error("input:\n%.*s\nwant: %s\ngot:  %s (rc %d)\n", (int)len, text, want, err, rc);
  assert_int_equal(rc, SIG_ECONFIG);
  assert_string_equal(err, want);
  assert_ptr_equal(cfg.host, host);
  assert_int_equal(cfg.max_connections, 10000);
  sig_config_free(&cfg);
}

static void expect_err(const char *text, const char *want) {
  expect_err_named("x.toml", text, strlen(text), want);
}

typedef struct {
  const char *text, *want;
} err_case;

static void expect_errs(const err_case *cases, size_t n) {
  for (size_t i = 0; i < n; i++) expect_err(cases[i].text, cases[i].want);
}

static void assert_default_values(const sig_config_t *cfg) {
  assert_string_equal(cfg->host, "0.0.0.0:9091");
  assert_string_equal(cfg->host_addr, "0.0.0.0");
  assert_int_equal(cfg->host_port, 9091);
  for (size_t i = 0; i < SIG_ARRAY_SIZE(int_keys); i++)
    assert_int_equal(int_field(cfg, int_keys[i].offset), int_keys[i].def);
  assert_int_equal(cfg->duplicate, SIG_DUP_REPLACE);
  assert_string_equal(cfg->cors_origin, "*");
  assert_string_equal(cfg->log_dir, "log");
  assert_string_equal(cfg->log_file, "signal-server.log");
  assert_int_equal(cfg->log_level, SIG_LOG_INFO);
  assert_int_equal(cfg->log_format, SIG_LOG_TEXT);
}

static void test_defaults(void **state) {
  sig_config_t cfg;
  (void)state;
  sig_config_init(&cfg);
  assert_default_values(&cfg);
  assert_null(cfg.path);
  sig_config_free(&cfg);
}

static void test_free_accepts_null_zeroed_and_twice(void **state) {
  sig_config_t cfg;
  (void)state;
  sig_config_free(NULL);
  memset(&cfg, 0, sizeof(cfg));
  sig_config_free(&cfg);
  sig_config_init(&cfg);
  sig_config_free(&cfg);
  assert_null(cfg.host);
  sig_config_free(&cfg);
}

static void test_blank_and_comment_only(void **state) {
  static const char *const texts[] = {
      "",
      "\n",
      "\r\n",
      "# only a comment",
      "  \t \n\n# c\n   # indented\n",
      "[server]\n[log]\n",
      "[server] # trailing comment\n  [ log ]\t\n",
  };
  (void)state;
  for (size_t i = 0; i < SIG_ARRAY_SIZE(texts); i++) {
    sig_config_t cfg;
    expect_ok(&cfg, texts[i]);
    assert_default_values(&cfg);
    sig_config_free(&cfg);
  }
}

static void test_seed_file_verbatim(void **state) {
  sig_config_t cfg;
  (void)state;
  expect_ok(&cfg, seed_text);
  assert_string_equal(cfg.host, "0.0.0.1:9091");
  assert_string_equal(cfg.host_addr, "0.0.0.1");
  assert_int_equal(cfg.host_port, 9091);
  assert_string_equal(cfg.log_dir, "/log/signal-server");
  assert_string_equal(cfg.log_file, "signal-server.log");
  assert_int_equal(cfg.max_connections, 10000);
  assert_null(cfg.path);
  sig_config_free(&cfg);
}

static char *to_crlf(const char *text) {
  char *out = sig_malloc(strlen(text) * 2 + 1), *w = out;
  for (; *text != '\0'; text++) {
    if (*text == '\n') *w++ = '\r';
    *w++ = *text;
  }
  *w = '\0';
  return out;
}

static void test_seed_file_crlf(void **state) {
  sig_config_t cfg;
  char *text = to_crlf(seed_text);
  (void)state;
  expect_ok(&cfg, text);
  assert_string_equal(cfg.host, "0.0.0.1:9091");
  assert_string_equal(cfg.log_dir, "/log/signal-server");
  assert_string_equal(cfg.log_file, "signal-server.log");
  sig_config_free(&cfg);
  free(text);
}

static void test_crlf_positions_and_bare_cr(void **state) {
  char *text = to_crlf("# c\n[server]\n  max_connections = 0 # x\n");
  (void)state;
  expect_err(text, "x.toml:3:21: server.max_connections: must be between 1 and 1000000, got 0");
  free(text);
  text = to_crlf("[server]\n  host = \"a:1\n");
  expect_err(text, "x.toml:2:10: server.host: unterminated string");
  free(text);
  expect_err("[server]\r  host = \"a:1\"\n",
             "x.toml:1:9: unexpected control character U+000D after the table header");
  expect_err("[server]\n  host = \"a:1\"\r",
             "x.toml:2:15: server.host: unexpected control character U+000D after the value");
  expect_err(
      "\r\n\r",
      "x.toml:2:1: expected a key, a [table] header or a comment, got control character U+000D");
}

static void test_bom_accepted(void **state) {
  sig_config_t cfg;
  (void)state;
  expect_ok(&cfg, "\xef\xbb\xbf[server]\nmax_connections = 7\n");
  assert_int_equal(cfg.max_connections, 7);
  sig_config_free(&cfg);
  expect_err("\xef\xbb\xbfhost = 1\n",
             "x.toml:1:1: host: key outside a table (put it under [server])");
}

/* Loads the project's own signal-server.toml, found from this source file's path. */
static void test_project_file(void **state) {
  sig_config_t cfg;
  char path[PATH_MAX], err[512] = "";
  const char *me = __FILE__, *cut = strstr(me, "tests/unit/test_config.c");
  (void)state;
  assert_non_null(cut);
  snprintf(path, sizeof(path), "%.*ssignal-server.toml", (int)(cut - me), me);
  sig_config_init(&cfg);
  if (sig_config_load(&cfg, path, err, sizeof(err)) != 0) fail_msg("%s", err);
  assert_default_values(&cfg);
  assert_string_equal(cfg.path, path);
  sig_config_free(&cfg);
}

static void test_all_keys_set(void **state) {
  sig_config_t cfg;
  (void)state;
  expect_ok(&cfg,
            "[log]\n"
            "out_dir = 'logs/x'\n"
            "out_file = \"s.log\"\n"
            "level = \"debug\"\n"
            "[server]\n"
            "host = \"[::1]:0\"\n"
            "max_connections = 1_000\n"
            "max_header_bytes = 2048\n"
            "max_body_bytes = 4096\n"
            "max_message_bytes = 8192\n"
            "max_write_queue_bytes = 70000\n"
            "header_timeout_s = 3\n"
            "keepalive_timeout_s = 4\n"
            "ping_interval_s = +5\n"
            "pong_timeout_s = 6\n"
            "answer_timeout_s = 7\n"
            "max_pending_offers = 8\n"
            "max_exchanges_per_peer = 9\n"
            "duplicate = \"reject\"\n"
            "cors_origin = \"https://example.com\"\n"
            "shutdown_timeout_s = -0\n");
  assert_string_equal(cfg.host, "[::1]:0");
  assert_string_equal(cfg.host_addr, "::1");
  assert_int_equal(cfg.host_port, 0);
  assert_int_equal(cfg.max_connections, 1000);
  assert_int_equal(cfg.max_header_bytes, 2048);
  assert_int_equal(cfg.max_body_bytes, 4096);
  assert_int_equal(cfg.max_message_bytes, 8192);
  assert_int_equal(cfg.max_write_queue_bytes, 70000);
  assert_int_equal(cfg.header_timeout_s, 3);
  assert_int_equal(cfg.keepalive_timeout_s, 4);
  assert_int_equal(cfg.ping_interval_s, 5);
  assert_int_equal(cfg.pong_timeout_s, 6);
  assert_int_equal(cfg.answer_timeout_s, 7);
  assert_int_equal(cfg.max_pending_offers, 8);
  assert_int_equal(cfg.max_exchanges_per_peer, 9);
  assert_int_equal(cfg.duplicate, SIG_DUP_REJECT);
  assert_string_equal(cfg.cors_origin, "https://example.com");
  assert_int_equal(cfg.shutdown_timeout_s, 0);
  assert_string_equal(cfg.log_dir, "logs/x");
  assert_string_equal(cfg.log_file, "s.log");
  assert_int_equal(cfg.log_level, SIG_LOG_DEBUG);
  sig_config_free(&cfg);
}

static void test_int_bounds(void **state) {
  (void)state;
  for (size_t i = 0; i < SIG_ARRAY_SIZE(int_keys); i++) {
    const int64_t ok[] = {int_keys[i].min, int_keys[i].max};
    const int64_t bad[] = {int_keys[i].min - 1, int_keys[i].max + 1};
    char text[128], want[256];
    for (size_t j = 0; j < 2; j++) {
      sig_config_t cfg;
      snprintf(text, sizeof(text), "[server]\n%s = %" PRId64 "\n", int_keys[i].name, ok[j]);
      expect_ok(&cfg, text);
      assert_int_equal(int_field(&cfg, int_keys[i].offset), ok[j]);
      sig_config_free(&cfg);

      snprintf(text, sizeof(text), "[server]\n%s = %" PRId64 "\n", int_keys[i].name, bad[j]);
      snprintf(want, sizeof(want),
               "x.toml:2:%zu: server.%s: must be between %" PRId64 " and %" PRId64 ", got %" PRId64,
               strlen(int_keys[i].name) + 4, int_keys[i].name, int_keys[i].min, int_keys[i].max,
               bad[j]);
      expect_err(text, want);
    }
  }
}

static void test_int_keys_wrong_type(void **state) {
  static const struct {
    const char *value, *got;
  } wrong[] = {
      {"\"10\"", "a string"}, {"'10'", "a string"}, {"true", "a boolean"},
      {"false", "a boolean"}, {"[]", "an array"},   {"[\"1\", '2']", "an array"},
  };
  (void)state;
  for (size_t i = 0; i < SIG_ARRAY_SIZE(int_keys); i++) {
    for (size_t j = 0; j < SIG_ARRAY_SIZE(wrong); j++) {
      char text[128], want[256];
      snprintf(text, sizeof(text), "[server]\n%s = %s\n", int_keys[i].name, wrong[j].value);
      snprintf(want, sizeof(want), "x.toml:2:%zu: server.%s: expected an integer, got %s",
               strlen(int_keys[i].name) + 4, int_keys[i].name, wrong[j].got);
      expect_err(text, want);
    }
  }
}

static void test_string_keys_wrong_type(void **state) {
  static const struct {
    const char *value, *got;
  } wrong[] = {
      {"1", "an integer"}, {"-5", "an integer"},    {"true", "a boolean"},
      {"[]", "an array"},  {"['a:1']", "an array"},
  };
  (void)state;
  for (size_t i = 0; i < SIG_ARRAY_SIZE(string_keys); i++) {
    for (size_t j = 0; j < SIG_ARRAY_SIZE(wrong); j++) {
      char text[128], want[256];
      snprintf(text, sizeof(text), "[%s]\n    %s = %s\n", string_keys[i].table, string_keys[i].name,
               wrong[j].value);
      snprintf(want, sizeof(want), "x.toml:2:%zu: %s.%s: expected a string, got %s",
               strlen(string_keys[i].name) + 8, string_keys[i].table, string_keys[i].name,
               wrong[j].got);
      expect_err(text, want);
    }
  }
  /* The brief's own example. */
  expect_err("[server]\n# a\n\n    host =5\n",
             "x.toml:4:11: server.host: expected a string, got an integer");
}

static void test_choices(void **state) {
  static const struct {
    const char *text;
    sig_dup_policy_t dup;
    sig_log_level_t level;
  } good[] = {
      {"[server]\nduplicate = \"replace\"\n[log]\nlevel = \"debug\"", SIG_DUP_REPLACE,
       SIG_LOG_DEBUG},
      {"[server]\nduplicate = 'reject'\n[log]\nlevel = \"info\"", SIG_DUP_REJECT, SIG_LOG_INFO},
      {"[log]\nlevel = \"warn\"", SIG_DUP_REPLACE, SIG_LOG_WARN},
      {"[log]\nlevel = \"error\"", SIG_DUP_REPLACE, SIG_LOG_ERROR},
  };
  static const err_case bad[] = {
      {"[server]\nduplicate = \"Reject\"",
       "x.toml:2:13: server.duplicate: must be one of \"replace\", \"reject\"; got \"Reject\""},
      {"[server]\nduplicate = \"\"",
       "x.toml:2:13: server.duplicate: must be one of \"replace\", \"reject\"; got \"\""},
      {"[log]\nlevel = \"trace\"",
       "x.toml:2:9: log.level: must be one of \"debug\", \"info\", \"warn\", \"error\"; got "
       "\"trace\""},
      /* Control characters are not echoed back. */
      {"[log]\nlevel = \"in\\nfo\"",
       "x.toml:2:9: log.level: must be one of \"debug\", \"info\", \"warn\", \"error\""},
  };
  (void)state;
  for (size_t i = 0; i < SIG_ARRAY_SIZE(good); i++) {
    sig_config_t cfg;
    expect_ok(&cfg, good[i].text);
    assert_int_equal(cfg.duplicate, good[i].dup);
    assert_int_equal(cfg.log_level, good[i].level);
    sig_config_free(&cfg);
  }
  expect_errs(bad, SIG_ARRAY_SIZE(bad));
}

static void test_unknown_key_and_table(void **state) {
  static const char hots[] = "#设置信令服务器的地址\n[server]\n    hots = \"0.0.0.1:9091\"\n";
  static const char lgo[] =
      "#设置信令服务器的地址\n[server]\n    host = \"0.0.0.1:9091\"\n\n# 日志\n\n[lgo]\n";
  static const err_case cases[] = {
      {"[log]\nhost = \"a:1\"", "x.toml:2:1: log.host: unknown key"},
      {"[server]\n\tmax-connections = 1", "x.toml:2:2: server.max-connections: unknown key"},
      {"[server]\nMAX_CONNECTIONS = 1", "x.toml:2:1: server.MAX_CONNECTIONS: unknown key"},
      {"[server]\n  [Server]", "x.toml:2:3: unknown table [Server]"},
      {"[ tsl ]", "x.toml:1:1: unknown table [tsl]"},
  };
  (void)state;
  expect_err_named("signal-server.toml", hots, strlen(hots),
                   "signal-server.toml:3:5: server.hots: unknown key");
  expect_err_named("signal-server.toml", lgo, strlen(lgo),
                   "signal-server.toml:7:1: unknown table [lgo]");
  expect_errs(cases, SIG_ARRAY_SIZE(cases));
  {
    /* Long names are cut to 64 characters in messages. */
    char text[128], want[160];
    snprintf(text, sizeof(text), "[server]\n%0100d = 1", 0);
    snprintf(want, sizeof(want), "x.toml:2:1: server.%064d: unknown key", 0);
    expect_err(text, want);
  }
}

static void test_duplicates_and_outside_table(void **state) {
  static const err_case cases[] = {
      {"[server]\nhost = \"a:1\"\n# x\n  host = \"b:2\"\n",
       "x.toml:4:3: server.host: duplicate key (first set on line 2)"},
      {"[server]\nmax_connections = 1\n[log]\n[server]\n",
       "x.toml:4:1: duplicate table [server] (first on line 1)"},
      {"[log]\n[server]\n  [log]\n", "x.toml:3:3: duplicate table [log] (first on line 1)"},
      {"host = \"a:1\"\n[server]\n",
       "x.toml:1:1: host: key outside a table (put it under [server])"},
      {"# c\n  out_dir = \"x\"\n", "x.toml:2:3: out_dir: key outside a table (put it under [log])"},
      {"foo = 1\n", "x.toml:1:1: foo: key outside a table"},
  };
  (void)state;
  expect_errs(cases, SIG_ARRAY_SIZE(cases));
}

static void test_unsupported_constructs(void **state) {
  static const err_case cases[] = {
      {"[server]\nhost = { a = 1 }", "x.toml:2:8: server.host: inline tables are not supported"},
      {"[server]\nserver.host = \"a:1\"", "x.toml:2:1: dotted keys are not supported"},
      {"[server]\nhost . x = 1", "x.toml:2:1: dotted keys are not supported"},
      {"[server]\n\"host\" = \"a:1\"", "x.toml:2:1: quoted keys are not supported"},
      {"[server]\n'host' = \"a:1\"", "x.toml:2:1: quoted keys are not supported"},
      {"[server.tls]", "x.toml:1:1: dotted table names are not supported"},
      {"[\"server\"]", "x.toml:1:2: quoted table names are not supported"},
      {"[[server]]", "x.toml:1:1: arrays of tables [[...]] are not supported"},
      {"[]", "x.toml:1:2: expected a table name after '['"},
      {"[server", "x.toml:1:8: expected ']' after table name"},
      {"[server x]", "x.toml:1:9: expected ']' after table name"},
      {"[server] x", "x.toml:1:10: unexpected 'x' after the table header"},
      {"[server]\nhost = \"\"\"a:1\"\"\"",
       "x.toml:2:8: server.host: multi-line strings are not supported"},
      {"[server]\nhost = '''a:1'''",
       "x.toml:2:8: server.host: multi-line strings are not supported"},
      {"[server]\nmax_connections = 1979-05-27",
       "x.toml:2:19: server.max_connections: dates and times are not supported"},
      {"[server]\nhost = 0.0.0.0:9091",
       "x.toml:2:8: server.host: an address must be a quoted string: \"0.0.0.0:9091\""},
      {"[server]\nhost = 127.0.0.1:0",
       "x.toml:2:8: server.host: an address must be a quoted string: \"127.0.0.1:0\""},
      {"[server]\nhost = localhost:9091",
       "x.toml:2:8: server.host: an address must be a quoted string: \"localhost:9091\""},
      {"[server]\nhost = signal.example.com:443 # public",
       "x.toml:2:8: server.host: an address must be a quoted string: \"signal.example.com:443\""},
      {"[server]\nhost = [::1]:9091",
       "x.toml:2:8: server.host: an address must be a quoted string: \"[::1]:9091\""},
      {"[server]\nhost = [::]:0 # any",
       "x.toml:2:8: server.host: an address must be a quoted string: \"[::]:0\""},
      {"[server]\nhost = localhost",
       "x.toml:2:8: server.host: invalid value 'localhost' (strings must be quoted)"},
      {"[server]\ntrusted_proxies = [::1]",
       "x.toml:2:20: server.trusted_proxies: arrays may only hold strings"},
      {"[server]\nmax_connections = 07:32:00",
       "x.toml:2:19: server.max_connections: dates and times are not supported"},
      {"[server]\nmax_connections = 1979-05-27T07:32:00Z",
       "x.toml:2:19: server.max_connections: dates and times are not supported"},
      {"[server]\nmax_connections = 1.5",
       "x.toml:2:19: server.max_connections: floats are not supported"},
      {"[server]\nmax_connections = -1.0",
       "x.toml:2:19: server.max_connections: floats are not supported"},
      {"[server]\nmax_connections = 1e5",
       "x.toml:2:19: server.max_connections: floats are not supported"},
      {"[server]\nmax_connections = 1E5",
       "x.toml:2:19: server.max_connections: floats are not supported"},
      {"[server]\nmax_connections = inf",
       "x.toml:2:19: server.max_connections: floats are not supported"},
      {"[server]\nmax_connections = -inf",
       "x.toml:2:19: server.max_connections: floats are not supported"},
      {"[server]\nmax_connections = nan",
       "x.toml:2:19: server.max_connections: floats are not supported"},
      {"[server]\nmax_connections = +nan",
       "x.toml:2:19: server.max_connections: floats are not supported"},
      {"[server]\nmax_connections = 0x10",
       "x.toml:2:19: server.max_connections: hexadecimal, octal and binary integers are not "
       "supported"},
      {"[server]\nmax_connections = 0o17",
       "x.toml:2:19: server.max_connections: hexadecimal, octal and binary integers are not "
       "supported"},
      {"[server]\nmax_connections = 0b101",
       "x.toml:2:19: server.max_connections: hexadecimal, octal and binary integers are not "
       "supported"},
      {"[server]\nmax_connections = 0100",
       "x.toml:2:19: server.max_connections: leading zeros are not allowed"},
      {"[server]\nmax_connections = -01",
       "x.toml:2:19: server.max_connections: leading zeros are not allowed"},
      {"[server]\nmax_connections = 1__000",
       "x.toml:2:19: server.max_connections: '_' in an integer must sit between digits"},
      {"[server]\nmax_connections = _1000",
       "x.toml:2:19: server.max_connections: invalid value '_1000' (strings must be quoted)"},
      {"[server]\nmax_connections = 1000_",
       "x.toml:2:19: server.max_connections: '_' in an integer must sit between digits"},
      {"[server]\nmax_connections = +_1",
       "x.toml:2:19: server.max_connections: '_' in an integer must sit between digits"},
      {"[server]\nmax_connections = 12abc",
       "x.toml:2:19: server.max_connections: invalid integer '12abc'"},
      {"[server]\nmax_connections = +", "x.toml:2:19: server.max_connections: invalid integer"},
      {"[server]\nmax_connections = 9223372036854775808",
       "x.toml:2:19: server.max_connections: integer out of range (must fit in 64 bits)"},
      {"[server]\nmax_connections = -9223372036854775809",
       "x.toml:2:19: server.max_connections: integer out of range (must fit in 64 bits)"},
      {"[server]\nmax_connections = 9223372036854775807",
       "x.toml:2:19: server.max_connections: must be between 1 and 1000000, got "
       "9223372036854775807"},
      {"[server]\nmax_connections = -9223372036854775808",
       "x.toml:2:19: server.max_connections: must be between 1 and 1000000, got "
       "-9223372036854775808"},
      {"[server]\nduplicate = reject",
       "x.toml:2:13: server.duplicate: invalid value 'reject' (strings must be quoted)"},
      {"[server]\nmax_connections = True",
       "x.toml:2:19: server.max_connections: invalid value 'True' (strings must be quoted)"},
      {"[server]\nmax_connections = @",
       "x.toml:2:19: server.max_connections: expected a value, got '@'"},
      {"[server]\nmax_connections =", "x.toml:2:18: server.max_connections: missing value"},
      {"[server]\nmax_connections =   # none\n",
       "x.toml:2:21: server.max_connections: missing value"},
      {"[server]\nmax_connections 5", "x.toml:2:17: expected '=' after the key"},
      {"[server]\nmax_connections", "x.toml:2:16: expected '=' after the key"},
      {"[server]\n= 5", "x.toml:2:1: expected a key, a [table] header or a comment, got '='"},
      {"[server]\n) x", "x.toml:2:1: expected a key, a [table] header or a comment, got ')'"},
      {"[server]\nhost = \"a:1\"\n中 = 1",
       "x.toml:3:1: expected a key, a [table] header or a comment, got '中'"},
  };
  (void)state;
  expect_errs(cases, SIG_ARRAY_SIZE(cases));
}

static void test_trailing_garbage(void **state) {
  static const err_case cases[] = {
      {"[server]\nmax_connections = 100 200",
       "x.toml:2:23: server.max_connections: unexpected '2' after the value"},
      {"[server]\nhost = \"a:1\" \"b:2\"",
       "x.toml:2:14: server.host: unexpected '\"' after the value"},
      {"[server]\nhost = 'a:1'x", "x.toml:2:13: server.host: unexpected 'x' after the value"},
      {"[server]\nhost = [\"a\"],", "x.toml:2:13: server.host: unexpected ',' after the value"},
      {"[server]\nmax_connections = true false",
       "x.toml:2:24: server.max_connections: unexpected 'f' after the value"},
      {"[server]\ncors_origin = \"中文\" x",
       "x.toml:2:20: server.cors_origin: unexpected 'x' after the value"},
      {"[server]\nmax_connections = 5 # ok\x01",
       "x.toml:2:25: control character U+0001 in a comment"},
  };
  sig_config_t cfg;
  (void)state;
  expect_errs(cases, SIG_ARRAY_SIZE(cases));
  expect_ok(&cfg, "[server]\nmax_connections = 5 # trailing comment, \t tabs are fine\n");
  assert_int_equal(cfg.max_connections, 5);
  sig_config_free(&cfg);
}

static void test_arrays(void **state) {
  static const char *const parsed[] = {
      "[]", "[ ]", "[\"a\"]", "[ \"a\" , 'b' ]", "[\"a\", 'b',]", "[\"a\",\t\"b\" , ]  # c",
  };
  static const err_case cases[] = {
      {"[server]\nhost = [\"a\",\n\"b\"]",
       "x.toml:2:8: server.host: multi-line arrays are not supported (put the array on one line)"},
      {"[server]\nhost = [\n]",
       "x.toml:2:8: server.host: multi-line arrays are not supported (put the array on one line)"},
      {"[server]\nhost = [\"a\" # c\n]",
       "x.toml:2:8: server.host: multi-line arrays are not supported (put the array on one line)"},
      {"[server]\nhost = [\"a\", # c\n]",
       "x.toml:2:8: server.host: multi-line arrays are not supported (put the array on one line)"},
      {"[server]\nhost = [",
       "x.toml:2:8: server.host: multi-line arrays are not supported (put the array on one line)"},
      {"[server]\nhost = [[\"a\"]]", "x.toml:2:9: server.host: nested arrays are not supported"},
      {"[server]\nhost = [\"a\", 1]", "x.toml:2:14: server.host: arrays may only hold strings"},
      {"[server]\nhost = [true]", "x.toml:2:9: server.host: arrays may only hold strings"},
      {"[server]\nhost = [,]", "x.toml:2:9: server.host: arrays may only hold strings"},
      {"[server]\nhost = [\"a\" \"b\"]",
       "x.toml:2:13: server.host: expected ',' or ']' in an array"},
      {"[server]\nhost = [\"a\", \"b]", "x.toml:2:14: server.host: unterminated string"},
      {"[server]\nhost = [\"\\q\"]",
       "x.toml:2:10: server.host: invalid escape '\\q' (write \\\\ for a backslash, or use a "
       "'literal string')"},
  };
  (void)state;
  /* The reader accepts one-line arrays of strings; no key takes one today. */
  for (size_t i = 0; i < SIG_ARRAY_SIZE(parsed); i++) {
    char text[128];
    snprintf(text, sizeof(text), "[server]\nhost = %s\n", parsed[i]);
    expect_err(text, "x.toml:2:8: server.host: expected a string, got an array");
  }
  expect_errs(cases, SIG_ARRAY_SIZE(cases));
}

static void test_string_escapes(void **state) {
  sig_config_t cfg;
  (void)state;
  expect_ok(&cfg,
            "[log]\nout_dir = \"a\\\\b\\\"c\\u00e9\\U0001F600\\u4e2D/\"\n"
            "[server]\ncors_origin = \"\\u0041\\U00000062\"\n");
  assert_string_equal(cfg.log_dir, "a\\b\"c\xc3\xa9\xf0\x9f\x98\x80\xe4\xb8\xad/");
  assert_string_equal(cfg.cors_origin, "Ab");
  sig_config_free(&cfg);

  /* Empty strings are read; the key's check decides. */
  expect_err("[server]\ncors_origin = \"\" # \"\"\"",
             "x.toml:2:15: server.cors_origin: must not be empty (\"*\" allows any origin)");
}

static void test_string_escape_errors(void **state) {
  static const err_case cases[] = {
      /* Decoded control characters reach the key's check, which refuses them. */
      {"[server]\ncors_origin = \"a\\nb\"",
       "x.toml:2:15: server.cors_origin: must not contain control characters"},
      {"[server]\ncors_origin = \"a\\tb\"",
       "x.toml:2:15: server.cors_origin: must not contain control characters"},
      {"[server]\ncors_origin = \"a\\rb\"",
       "x.toml:2:15: server.cors_origin: must not contain control characters"},
      {"[server]\ncors_origin = \"a\\bb\"",
       "x.toml:2:15: server.cors_origin: must not contain control characters"},
      {"[server]\ncors_origin = \"a\\fb\"",
       "x.toml:2:15: server.cors_origin: must not contain control characters"},
      {"[server]\ncors_origin = \"a\\u007f\"",
       "x.toml:2:15: server.cors_origin: must not contain control characters"},
      {"[server]\ncors_origin = \"a\\xb\"",
       "x.toml:2:17: server.cors_origin: invalid escape '\\x' (write \\\\ for a backslash, or use "
       "a "
       "'literal string')"},
      {"[server]\ncors_origin = \"\\a\"",
       "x.toml:2:16: server.cors_origin: invalid escape '\\a' (write \\\\ for a backslash, or use "
       "a "
       "'literal string')"},
      {"[server]\ncors_origin = \"\\ \"",
       "x.toml:2:16: server.cors_origin: invalid escape '\\ ' (write \\\\ for a backslash, or use "
       "a "
       "'literal string')"},
      {"[server]\ncors_origin = \"\\中\"",
       "x.toml:2:16: server.cors_origin: invalid escape: '\\' followed by '中'"},
      {"[server]\ncors_origin = \"\\u12\"",
       "x.toml:2:16: server.cors_origin: \\u needs 4 hex digits"},
      {"[server]\ncors_origin = \"\\u12",
       "x.toml:2:16: server.cors_origin: \\u needs 4 hex digits"},
      {"[server]\ncors_origin = \"\\U0001F60\"",
       "x.toml:2:16: server.cors_origin: \\U needs 8 hex digits"},
      {"[server]\ncors_origin = \"\\uD800\"",
       "x.toml:2:16: server.cors_origin: \\uD800 is not a Unicode scalar value"},
      {"[server]\ncors_origin = \"\\U00110000\"",
       "x.toml:2:16: server.cors_origin: \\U00110000 is not a Unicode scalar value"},
      {"[server]\ncors_origin = \"\\u0000\"",
       "x.toml:2:16: server.cors_origin: \\u escapes of NUL are not allowed"},
      {"[server]\ncors_origin = \"ab\\\n\"",
       "x.toml:2:18: server.cors_origin: unterminated string (a line cannot end with '\\')"},
      {"[server]\ncors_origin = \"ab\\",
       "x.toml:2:18: server.cors_origin: unterminated string (a line cannot end with '\\')"},
  };
  (void)state;
  expect_errs(cases, SIG_ARRAY_SIZE(cases));
}

static void test_literal_strings(void **state) {
  sig_config_t cfg;
  static const err_case cases[] = {
      {"[log]\nout_dir = 'a\x01'",
       "x.toml:2:13: log.out_dir: control character U+0001 in a literal string (use a \"basic "
       "string\" with an escape)"},
      {"[log]\nout_dir = 'abc", "x.toml:2:11: log.out_dir: unterminated string"},
      {"[log]\nout_dir = 'abc\nx'", "x.toml:2:11: log.out_dir: unterminated string"},
      {"[log]\nout_dir = 'abc\r\nx'", "x.toml:2:11: log.out_dir: unterminated string"},
  };
  (void)state;
  expect_ok(&cfg, "[log]\nout_dir = 'C:\\logs\\\"x'\n");
  assert_string_equal(cfg.log_dir, "C:\\logs\\\"x");
  sig_config_free(&cfg);
  expect_err("[log]\nout_dir = ''",
             "x.toml:2:11: log.out_dir: must not be empty (use \".\" for the config's folder)");
  expect_errs(cases, SIG_ARRAY_SIZE(cases));
}

static void test_control_characters(void **state) {
  static const char nul_in_string[] = "[server]\ncors_origin = \"a\0b\"\n";
  static const char nul_in_comment[] = "# a\0b\n";
  static const err_case cases[] = {
      {"[server]\ncors_origin = \"a\x01\"",
       "x.toml:2:17: server.cors_origin: control character U+0001 in a string (write it as an "
       "escape)"},
      {"[server]\ncors_origin = \"a\x7f\"",
       "x.toml:2:17: server.cors_origin: control character U+007F in a string (write it as an "
       "escape)"},
      {"[server]\ncors_origin = \"a\rb\"",
       "x.toml:2:17: server.cors_origin: control character U+000D in a string (write it as an "
       "escape)"},
      /* A raw tab is legal TOML inside a string, but not in this value. */
      {"[server]\ncors_origin = \"a\tb\"",
       "x.toml:2:15: server.cors_origin: must not contain control characters"},
      {"# \x1b[31m red\n", "x.toml:1:3: control character U+001B in a comment"},
      {"[server]\x0c\n", "x.toml:1:9: unexpected control character U+000C after the table header"},
  };
  (void)state;
  expect_errs(cases, SIG_ARRAY_SIZE(cases));
  expect_err_named("x.toml", nul_in_string, sizeof(nul_in_string) - 1,
                   "x.toml:2:17: server.cors_origin: control character U+0000 in a string (write "
                   "it as an escape)");
  expect_err_named("x.toml", nul_in_comment, sizeof(nul_in_comment) - 1,
                   "x.toml:1:4: control character U+0000 in a comment");
}

static void test_invalid_utf8(void **state) {
  static const err_case cases[] = {
      {"[server]\n# ab\xff\n", "x.toml:2:5: invalid UTF-8 (byte 0xff)"},
      {"# 中\xff", "x.toml:1:4: invalid UTF-8 (byte 0xff)"},
      {"# \xc0\xaf overlong", "x.toml:1:3: invalid UTF-8 (byte 0xc0)"},
      {"# \xe0\x80\xaf overlong", "x.toml:1:3: invalid UTF-8 (byte 0xe0)"},
      {"# \xed\xa0\x80 surrogate", "x.toml:1:3: invalid UTF-8 (byte 0xed)"},
      {"# \xf4\x90\x80\x80 above U+10FFFF", "x.toml:1:3: invalid UTF-8 (byte 0xf4)"},
      {"# \x80 lone continuation", "x.toml:1:3: invalid UTF-8 (byte 0x80)"},
      {"# truncated \xe4\xb8", "x.toml:1:13: invalid UTF-8 (byte 0xe4)"},
      {"# \xe4x\xad", "x.toml:1:3: invalid UTF-8 (byte 0xe4)"},
      /* Checked before anything else, even after a syntax error. */
      {"[server]\nhost = ?\n[log]\nout_dir = \"\xfe\"", "x.toml:4:12: invalid UTF-8 (byte 0xfe)"},
  };
  sig_config_t cfg;
  (void)state;
  expect_errs(cases, SIG_ARRAY_SIZE(cases));
  expect_ok(&cfg, "# 𝄞 中文 é\n[log]\nout_dir = \"日志/𝄞\"\n");
  assert_string_equal(cfg.log_dir, "日志/𝄞");
  sig_config_free(&cfg);
}

static void test_unterminated_strings(void **state) {
  static const err_case cases[] = {
      {"[server]\nhost = \"a:1", "x.toml:2:8: server.host: unterminated string"},
      {"[server]\nhost = \"a:1\n", "x.toml:2:8: server.host: unterminated string"},
      {"[server]\nhost = \"a:1\\\"\n", "x.toml:2:8: server.host: unterminated string"},
      {"[server]\nhost = \"", "x.toml:2:8: server.host: unterminated string"},
      {"[server]\nhost = \"\"\"", "x.toml:2:8: server.host: multi-line strings are not supported"},
      {"[server]\nhost = 'a:1", "x.toml:2:8: server.host: unterminated string"},
      {"[server]\nhost = '", "x.toml:2:8: server.host: unterminated string"},
  };
  (void)state;
  expect_errs(cases, SIG_ARRAY_SIZE(cases));
}

static void test_host_good_forms(void **state) {
  static const struct {
    const char *host, *addr;
    int port;
  } good[] = {
      {"0.0.0.0:9091", "0.0.0.0", 9091},
      {"127.0.0.1:0", "127.0.0.1", 0},
      {"[::1]:9091", "::1", 9091},
      {"localhost:80", "localhost", 80},
      {"0.0.0.1:9091", "0.0.0.1", 9091}, /* binding it fails later, in the listener */
      {"[::]:65535", "::", 65535},
      {"[fe80::1:2]:1", "fe80::1:2", 1},
      {"[::ffff:1.2.3.4]:8080", "::ffff:1.2.3.4", 8080},
      {"example.com:443", "example.com", 443},
      {"a-b.c9.example:1", "a-b.c9.example", 1},
      {"A.B:00080", "A.B", 80},
      {"1host:1", "1host", 1},
  };
  (void)state;
  for (size_t i = 0; i < SIG_ARRAY_SIZE(good); i++) {
    sig_config_t cfg;
    char text[128], err[256] = "", *addr = NULL;
    int port = -1;
    if (sig_config_split_host(good[i].host, &addr, &port, err, sizeof(err)) != 0)
      fail_msg("%s: %s", good[i].host, err);
    assert_string_equal(addr, good[i].addr);
    assert_int_equal(port, good[i].port);
    free(addr);

    snprintf(text, sizeof(text), "[server]\nhost = \"%s\"\n", good[i].host);
    expect_ok(&cfg, text);
    assert_string_equal(cfg.host, good[i].host);
    assert_string_equal(cfg.host_addr, good[i].addr);
    assert_int_equal(cfg.host_port, good[i].port);
    sig_config_free(&cfg);
  }
}

static void test_host_bad_forms(void **state) {
  static const char missing_port[] =
      "missing port (expected ADDRESS:PORT, e.g. 0.0.0.0:9091 or [::1]:9091)";
  static const struct {
    const char *host, *why;
  } bad[] = {
      {"9091", missing_port},
      {"1.2.3.4", missing_port},
      {"", missing_port},
      {"localhost", missing_port},
      {"1.2.3.4:", missing_port},
      {"[::1]", missing_port},
      {"[::1]:", missing_port},
      {"1.2.3.4:99999", "port must be 0..65535"},
      {"1.2.3.4:65536", "port must be 0..65535"},
      {"1.2.3.4:-1", "port must be 0..65535"},
      {"1.2.3.4:+80", "port must be 0..65535"},
      {"1.2.3.4:80a", "port must be 0..65535"},
      {"1.2.3.4: 80", "port must be 0..65535"},
      {"1.2.3.4:999999999999999999999", "port must be 0..65535"},
      {"::1:80", "IPv6 addresses must be in brackets, e.g. [::1]:9091"},
      {"::1", "IPv6 addresses must be in brackets, e.g. [::1]:9091"},
      {"[::1", "missing ']' after the IPv6 address"},
      {"[::1]80", "expected ':' and a port after ']'"},
      {"[zz]:1", "invalid IPv6 address in brackets"},
      {"[]:1", "invalid IPv6 address in brackets"},
      {"[1.2.3.4]:1", "invalid IPv6 address in brackets"},
      {"[fe80::1%eth0]:1", "invalid IPv6 address in brackets"},
      {":80", "missing address before ':' (0.0.0.0 means all interfaces)"},
      {"1.2.3:80", "invalid IPv4 address"},
      {"1.2.3.256:80", "invalid IPv4 address"},
      {"1.2.3.4.5:80", "invalid IPv4 address"},
      {"123:80", "invalid IPv4 address"},
      {"bad_host:1", "invalid hostname: '_' is not allowed (letters, digits, '-' and '.' only)"},
      {"a b:1", "invalid hostname: ' ' is not allowed (letters, digits, '-' and '.' only)"},
      {"h\xc3\xa9:1",
       "invalid hostname: '\xc3\xa9' is not allowed (letters, digits, '-' and '.' only)"},
      {"h\xff:1", "invalid hostname: byte 0xff is not allowed (letters, digits, '-' and '.' only)"},
      {"a..b:1", "invalid hostname: empty label"},
      {".a:1", "invalid hostname: empty label"},
      {"a.:1", "invalid hostname: empty label"},
      {"-a:1", "invalid hostname: a label starts or ends with '-'"},
      {"a.b-:1", "invalid hostname: a label starts or ends with '-'"},
  };
  (void)state;
  for (size_t i = 0; i < SIG_ARRAY_SIZE(bad); i++) {
    char err[256] = "", *addr = (char *)"untouched";
    int port = -7;
    int rc = sig_config_split_host(bad[i].host, &addr, &port, err, sizeof(err));
    if (rc != SIG_ECONFIG || strcmp(err, bad[i].why) != 0)
      print_error("host \"%s\": want \"%s\", got \"%s\"\n", bad[i].host, bad[i].why, err);
    assert_int_equal(rc, SIG_ECONFIG);
    assert_string_equal(err, bad[i].why);
    assert_string_equal(addr, "untouched");
    assert_int_equal(port, -7);
  }
  /* Through the reader: position of the value, key, reason. */
  expect_err("[server]\n    host = \"::1:80\"\n",
             "x.toml:2:12: server.host: IPv6 addresses must be in brackets, e.g. [::1]:9091");
  expect_err("[server]\nhost = \"9091\"\n",
             "x.toml:2:8: server.host: missing port (expected ADDRESS:PORT, e.g. 0.0.0.0:9091 or "
             "[::1]:9091)");
  expect_err("[server]\nhost = \"1.2.3.4:99999\"\n",
             "x.toml:2:8: server.host: port must be 0..65535");
}

static void test_hostname_lengths(void **state) {
  char host[300], err[256] = "", *addr = NULL;
  int port = 0;
  (void)state;
  /* One 63-character label is fine, 64 is not. */
  memset(host, 'a', 63);
  strcpy(host + 63, ":1");
  assert_int_equal(sig_config_split_host(host, &addr, &port, err, sizeof(err)), 0);
  assert_int_equal(strlen(addr), 63);
  free(addr);
  memset(host, 'a', 64);
  strcpy(host + 64, ":1");
  assert_int_equal(sig_config_split_host(host, &addr, &port, err, sizeof(err)), SIG_ECONFIG);
  assert_string_equal(err, "invalid hostname: a label is longer than 63 characters");

  /* 253 characters in all is fine (four labels of 63 plus separators is 255). */
  memset(host, 'a', 253);
  for (int i = 63; i < 253; i += 64) host[i] = '.';
  strcpy(host + 253, ":1");
  assert_int_equal(sig_config_split_host(host, &addr, &port, err, sizeof(err)), 0);
  assert_int_equal(strlen(addr), 253);
  free(addr);
  memset(host, 'a', 254);
  for (int i = 63; i < 254; i += 64) host[i] = '.';
  strcpy(host + 254, ":1");
  assert_int_equal(sig_config_split_host(host, &addr, &port, err, sizeof(err)), SIG_ECONFIG);
  assert_string_equal(err, "invalid hostname: longer than 253 characters");
}

static void test_string_value_checks(void **state) {
  static const err_case cases[] = {
      {"[server]\ncors_origin = \"\"",
       "x.toml:2:15: server.cors_origin: must not be empty (\"*\" allows any origin)"},
      {"[server]\ncors_origin = \"a\\r\\nSet-Cookie: x\"",
       "x.toml:2:15: server.cors_origin: must not contain control characters"},
      {"[log]\nout_dir = \"\"",
       "x.toml:2:11: log.out_dir: must not be empty (use \".\" for the config's folder)"},
      {"[log]\nout_dir = \"a\\nb\"",
       "x.toml:2:11: log.out_dir: must not contain control characters"},
      {"[log]\nout_file = \"\"", "x.toml:2:12: log.out_file: must not be empty"},
      {"[log]\nout_file = \"logs/s.log\"",
       "x.toml:2:12: log.out_file: must be a plain file name without '/' (set the folder in "
       "out_dir)"},
      {"[log]\nout_file = \"/s.log\"",
       "x.toml:2:12: log.out_file: must be a plain file name without '/' (set the folder in "
       "out_dir)"},
      {"[log]\nout_file = \".\"", "x.toml:2:12: log.out_file: must be a file name, not \".\""},
      {"[log]\nout_file = '..'", "x.toml:2:12: log.out_file: must be a file name, not \"..\""},
      {"[log]\nout_file = \"a\\tb\"",
       "x.toml:2:12: log.out_file: must not contain control characters"},
  };
  char text[600], want[256];
  (void)state;
  expect_errs(cases, SIG_ARRAY_SIZE(cases));
  snprintf(text, sizeof(text), "[log]\nout_file = \"%0*d\"\n", NAME_MAX + 1, 0);
  snprintf(want, sizeof(want), "x.toml:2:12: log.out_file: is longer than %d bytes", NAME_MAX);
  expect_err(text, want);
}

/* Deep comparison, pointers included: a failed parse must not even reallocate. */
static void assert_same_config(const sig_config_t *a, const sig_config_t *b) {
  assert_memory_equal(a, b, sizeof(*a));
}

static void test_failure_leaves_cfg_unchanged(void **state) {
  static const char *const failing[] = {
      /* Fails after several keys were already applied to the working copy. */
      "[server]\nhost = \"[::1]:1\"\nmax_connections = 5\ncors_origin = 'x'\n[log]\nout_dir = 'y'\n"
      "level = \"debug\"\nout_file = \"a/b\"\n",
      "[server]\nhost = \"1.2.3.4:5\"\nhost = \"1.2.3.4:6\"\n",
      "[server]\nduplicate = \"reject\"\nbogus = 1\n",
      "[log]\nout_dir = \"z\"\n\xff",
  };
  sig_config_t cfg, snap;
  char err[256];
  (void)state;
  expect_ok(&cfg, "[server]\nmax_connections = 42\nhost = \"localhost:1\"\n");
  cfg.path = sig_strdup("/etc/x.toml");
  memcpy(&snap, &cfg, sizeof(snap));
  for (size_t i = 0; i < SIG_ARRAY_SIZE(failing); i++) {
    assert_int_equal(parse_text(&cfg, failing[i], err, sizeof(err)), SIG_ECONFIG);
    assert_same_config(&cfg, &snap);
  }
  assert_string_equal(cfg.host, "localhost:1");
  assert_string_equal(cfg.host_addr, "localhost");
  assert_int_equal(cfg.max_connections, 42);

  /* A success overrides only the keys present, and keeps path. */
  assert_int_equal(parse_text(&cfg, "[server]\nhost = \"[::]:2\"\n", err, sizeof(err)), 0);
  assert_string_equal(cfg.host_addr, "::");
  assert_int_equal(cfg.host_port, 2);
  assert_int_equal(cfg.max_connections, 42);
  assert_string_equal(cfg.path, "/etc/x.toml");
  sig_config_free(&cfg);
}

static void test_error_buffer_handling(void **state) {
  sig_config_t cfg;
  char err[16];
  (void)state;
  sig_config_init(&cfg);
  memset(err, 'Z', sizeof(err));
  assert_int_equal(parse_text(&cfg, "[nope]", err, sizeof(err)), SIG_ECONFIG);
  assert_string_equal(err, "x.toml:1:1: unk");
  memset(err, 'Z', sizeof(err));
  assert_int_equal(parse_text(&cfg, "[server]\nhost = 1", err, 4), SIG_ECONFIG);
  assert_string_equal(err, "x.t");
  assert_int_equal(parse_text(&cfg, "[nope]", NULL, 0), SIG_ECONFIG);
  assert_int_equal(parse_text(&cfg, "[server]\nhost = 1", err, 0), SIG_ECONFIG);
  assert_int_equal(err[0], 'x');
  /* Success clears err; a NULL name and NULL empty text are accepted. */
  strcpy(err, "old");
  assert_int_equal(sig_config_parse(&cfg, NULL, NULL, 0, err, sizeof(err)), 0);
  assert_string_equal(err, "");
  assert_int_equal(sig_config_parse(&cfg, NULL, "[x]", 3, err, sizeof(err)), SIG_ECONFIG);
  assert_string_equal(err, "config:1:1: unk");
  /* Text need not be NUL-terminated: only len bytes are read. */
  assert_int_equal(
      sig_config_parse(&cfg, "x", "[server]\nmax_connections = 12345", 29, err, sizeof(err)), 0);
  assert_int_equal(cfg.max_connections, 12);
  sig_config_free(&cfg);
}

static void test_load(void **state) {
  sig_config_t cfg;
  char path[] = "/tmp/test_config_XXXXXX", err[512], want[600];
  const char bad[] = "[server]\nmax_connections = 0\n";
  FILE *f;
  int fd;
  (void)state;

  sig_config_init(&cfg);
  assert_int_equal(sig_config_load(&cfg, "/nonexistent/dir/signal-server.toml", err, sizeof(err)),
                   SIG_ECONFIG);
  assert_string_equal(
      err, "/nonexistent/dir/signal-server.toml: cannot read: No such file or directory");
  assert_null(cfg.path);
  assert_int_equal(sig_config_load(&cfg, "/tmp", err, sizeof(err)), SIG_ECONFIG);
  assert_string_equal(err, "/tmp: cannot read: Is a directory");

  fd = mkstemp(path);
  assert_true(fd >= 0);
  f = fdopen(fd, "w");
  assert_non_null(f);
  fputs(seed_text, f);
  fclose(f);
  assert_int_equal(sig_config_load(&cfg, path, err, sizeof(err)), 0);
  assert_string_equal(cfg.path, path);
  assert_string_equal(cfg.host, "0.0.0.1:9091");
  assert_string_equal(cfg.log_dir, "/log/signal-server");

  f = fopen(path, "w");
  assert_non_null(f);
  fputs(bad, f);
  fclose(f);
  assert_int_equal(sig_config_load(&cfg, path, err, sizeof(err)), SIG_ECONFIG);
  snprintf(want, sizeof(want),
           "%s:2:19: server.max_connections: must be between 1 and 1000000, got 0", path);
  assert_string_equal(err, want);
  assert_string_equal(cfg.host, "0.0.0.1:9091");

  /* Over 1 MiB is refused before parsing. */
  f = fopen(path, "w");
  assert_non_null(f);
  for (int i = 0; i < 1024 * 1024 / 8 + 1; i++) fputs("# xxxxx\n", f);
  fclose(f);
  assert_int_equal(sig_config_load(&cfg, path, err, sizeof(err)), SIG_ECONFIG);
  snprintf(want, sizeof(want), "%s: cannot read: larger than 1048576 bytes", path);
  assert_string_equal(err, want);
  unlink(path);
  sig_config_free(&cfg);
}

static void resolve_case(const char *log_dir, const char *base, const char *want) {
  sig_config_t cfg;
  char err[256] = "";
  sig_config_init(&cfg);
  free(cfg.log_dir);
  cfg.log_dir = sig_strdup(log_dir);
  if (sig_config_resolve_paths(&cfg, base, err, sizeof(err)) != 0) fail_msg("%s", err);
  assert_string_equal(cfg.log_dir, want);
  sig_config_free(&cfg);
}

static void test_resolve_paths(void **state) {
  char cwd[PATH_MAX], want[PATH_MAX + 32], err[256];
  sig_config_t cfg;
  (void)state;
  resolve_case("log", "/opt/sig", "/opt/sig/log");
  resolve_case("./log/", "/opt/sig/", "/opt/sig/log");
  resolve_case("a//b/./c", "/opt//sig/.", "/opt/sig/a/b/c");
  resolve_case("../log", "/opt/sig", "/opt/sig/../log");
  resolve_case(".", "/opt/sig", "/opt/sig");
  resolve_case("/log/signal-server", "/opt/sig", "/log/signal-server");
  resolve_case("/var//log/./x/", "relative/ignored", "/var/log/x");
  resolve_case("/", "/opt", "/");
  resolve_case("log", "/", "/log");

  assert_non_null(getcwd(cwd, sizeof(cwd)));
  snprintf(want, sizeof(want), "%s/conf/log", strcmp(cwd, "/") == 0 ? "" : cwd);
  resolve_case("log", "conf", want);
  resolve_case("log", "./conf/", want);
  snprintf(want, sizeof(want), "%s/log", strcmp(cwd, "/") == 0 ? "" : cwd);
  resolve_case("log", NULL, want);
  resolve_case("log", "", want);

  /* Default config: "log" against the executable's folder. */
  sig_config_init(&cfg);
  assert_int_equal(sig_config_resolve_paths(&cfg, "/usr/local/bin", err, sizeof(err)), 0);
  assert_string_equal(cfg.log_dir, "/usr/local/bin/log");
  sig_config_free(&cfg);

  /* Failure leaves cfg unchanged. */
  sig_config_init(&cfg);
  free(cfg.log_dir);
  cfg.log_dir = sig_strdup("");
  assert_int_equal(sig_config_resolve_paths(&cfg, "/opt", err, sizeof(err)), SIG_ECONFIG);
  assert_string_equal(err, "log.out_dir: must not be empty");
  assert_string_equal(cfg.log_dir, "");
  sig_config_free(&cfg);
}

/* [tls]: off unless the table is there; then both files are required (the message points at
 * the table's header); paths resolve like out_dir; min_version is a choice. */
static void test_tls_table(void **state) {
  sig_config_t cfg;
  char err[512] = "";
  (void)state;
  sig_config_init(&cfg);
  assert_int_equal(cfg.tls, 0);
  assert_string_equal(cfg.tls_cert_file, "");
  assert_string_equal(cfg.tls_key_file, "");
  assert_string_equal(cfg.tls_ciphers, "");
  assert_int_equal(cfg.tls_min_version, SIG_TLS_1_2);
  sig_config_free(&cfg);

  expect_ok(&cfg,
            "[server]\n    host = \"127.0.0.1:443\"\n[tls]\n    cert_file = \"certs/full.pem\"\n"
            "    key_file = '/etc/k.pem'\n    min_version = \"1.3\"\n"
            "    ciphers = \"ECDHE+AESGCM\"\n");
  assert_int_equal(cfg.tls, 1);
  assert_int_equal(cfg.tls_min_version, SIG_TLS_1_3);
  assert_string_equal(cfg.tls_ciphers, "ECDHE+AESGCM");
  if (sig_config_resolve_paths(&cfg, "/opt/sig", err, sizeof(err)) != 0) fail_msg("%s", err);
  assert_string_equal(cfg.tls_cert_file, "/opt/sig/certs/full.pem");
  assert_string_equal(cfg.tls_key_file, "/etc/k.pem");
  sig_config_free(&cfg);

  static const err_case cases[] = {
      {"[tls]\n", "x.toml:1:1: tls.cert_file: required in [tls] (the PEM certificate chain)"},
      {"[log]\n  level = \"info\"\n  [tls]\n  key_file = \"k.pem\"\n",
       "x.toml:3:3: tls.cert_file: required in [tls] (the PEM certificate chain)"},
      {"[tls]\ncert_file = \"c.pem\"\n",
       "x.toml:1:1: tls.key_file: required in [tls] (the PEM private key)"},
      {"[tls]\nmin_version = \"1.1\"\n",
       "x.toml:2:15: tls.min_version: must be one of \"1.2\", \"1.3\"; got \"1.1\""},
      {"[tls]\nmin_version = 1.3\n", "x.toml:2:15: tls.min_version: floats are not supported"},
      {"[tls]\ncert_file = \"a\\u0001\"\n",
       "x.toml:2:13: tls.cert_file: must not contain control characters"},
      {"[tls]\nsession_cache = true\n", "x.toml:2:1: tls.session_cache: unknown key"},
  };
  expect_errs(cases, SIG_ARRAY_SIZE(cases));
}

/* [turn]: off unless the table is there; then secret_file and at least one URI are required (the
 * message points at the header); each URI is turn:, turns: or stun:; the secret file resolves
 * like the others and is checked for reading only when [turn] is on. */
static void test_turn_table(void **state) {
  sig_config_t cfg;
  char err[512] = "";
  (void)state;
  sig_config_init(&cfg);
  assert_int_equal(cfg.turn, 0);
  assert_string_equal(cfg.turn_secret_file, "");
  assert_int_equal(cfg.turn_uris.n, 0);
  assert_int_equal(cfg.turn_ttl_s, 86400);
  assert_int_equal(cfg.turn_requests_per_ip_per_s, 1);
  assert_int_equal(cfg.turn_requests_per_ip_burst, 10);
  sig_config_free(&cfg);

  expect_ok(&cfg,
            "[turn]\n    secret_file = \"turn.secret\"\n"
            "    uris = [\"turn:turn.example.com:3478?transport=udp\", 'turns:t.example:5349', "
            "\"stun:[2001:db8::1]:3478\"]\n    ttl_s = 60\n    requests_per_ip_per_s = 5\n"
            "    requests_per_ip_burst = 20\n");
  assert_int_equal(cfg.turn, 1);
  assert_int_equal(cfg.turn_uris.n, 3);
  assert_string_equal(cfg.turn_uris.items[1], "turns:t.example:5349");
  assert_int_equal(cfg.turn_ttl_s, 60);
  assert_int_equal(cfg.turn_requests_per_ip_per_s, 5);
  assert_int_equal(cfg.turn_requests_per_ip_burst, 20);
  if (sig_config_resolve_paths(&cfg, "/nonexistent-sig", err, sizeof(err)) != 0)
    fail_msg("%s", err);
  assert_string_equal(cfg.turn_secret_file, "/nonexistent-sig/turn.secret");
  assert_int_equal(sig_config_check_files(&cfg, err, sizeof(err)), SIG_ECONFIG);
  assert_string_equal(
      err, "turn.secret_file: cannot read /nonexistent-sig/turn.secret: No such file or directory");
  cfg.turn = 0; /* not used: not checked */
  assert_int_equal(sig_config_check_files(&cfg, err, sizeof(err)), 0);
  sig_config_free(&cfg);

  static const err_case cases[] = {
      {"[turn]\n",
       "x.toml:1:1: turn.secret_file: required in [turn] (the file holding coturn's "
       "static-auth-secret)"},
      {"[log]\n  level = \"info\"\n  [turn]\n  uris = [\"turn:a\"]\n",
       "x.toml:3:3: turn.secret_file: required in [turn] (the file holding coturn's "
       "static-auth-secret)"},
      {"[turn]\nsecret_file = \"s\"\n",
       "x.toml:1:1: turn.uris: required in [turn] (at least one, e.g. "
       "[\"turn:turn.example.com:3478\"])"},
      {"[turn]\nsecret_file = \"s\"\nuris = []\n",
       "x.toml:1:1: turn.uris: required in [turn] (at least one, e.g. "
       "[\"turn:turn.example.com:3478\"])"},
      {"[turn]\nuris = [\"http://turn.example.com\"]\n",
       "x.toml:2:8: turn.uris: must start with \"turn:\", \"turns:\" or \"stun:\", e.g. "
       "\"turn:turn.example.com:3478?transport=udp\" (item 1)"},
      {"[turn]\nuris = [\"turn:a\", \"stun:\"]\n",
       "x.toml:2:8: turn.uris: missing host after \"stun:\" (item 2)"},
      {"[turn]\nuris = [\"turn:a b\"]\n",
       "x.toml:2:8: turn.uris: printable ASCII without spaces, quotes or backslashes (item 1)"},
      {"[turn]\nuris = [\"turn:a\\\"b\"]\n",
       "x.toml:2:8: turn.uris: printable ASCII without spaces, quotes or backslashes (item 1)"},
      {"[turn]\nuris = \"turn:a\"\n",
       "x.toml:2:8: turn.uris: expected an array of strings, got a string"},
      {"[turn]\nttl_s = 59\n", "x.toml:2:9: turn.ttl_s: must be between 60 and 604800, got 59"},
      {"[turn]\nttl_s = 604801\n",
       "x.toml:2:9: turn.ttl_s: must be between 60 and 604800, got 604801"},
      {"[turn]\nrequests_per_ip_per_s = 0\n",
       "x.toml:2:25: turn.requests_per_ip_per_s: must be between 1 and 1000, got 0"},
      {"[turn]\nsecret = \"x\"\n", "x.toml:2:1: turn.secret: unknown key"},
  };
  expect_errs(cases, SIG_ARRAY_SIZE(cases));
}

/* Every file key is resolved against the base; a failure resolves none of them. */
static void test_resolve_file_keys(void **state) {
  sig_config_t cfg;
  (void)state;
  expect_ok(&cfg,
            "[auth]\nkey_file = 'keys/k'\n[cluster]\nredis_password_file = \"/etc/x/../pw\"\n");
  char err[256];
  assert_int_equal(sig_config_resolve_paths(&cfg, "/opt/sig", err, sizeof(err)), 0);
  assert_string_equal(cfg.auth_key_file, "/opt/sig/keys/k");
  assert_string_equal(cfg.cluster_password_file, "/etc/x/../pw");
  assert_string_equal(cfg.log_dir, "/opt/sig/log");
  sig_config_free(&cfg);
  /* unset file keys stay "" */
  sig_config_init(&cfg);
  assert_int_equal(sig_config_resolve_paths(&cfg, "/opt/sig", err, sizeof(err)), 0);
  assert_string_equal(cfg.auth_key_file, "");
  assert_string_equal(cfg.cluster_password_file, "");
  sig_config_free(&cfg);
}

/* What start-up reads must be readable where it is used: a missing file, a folder; unused ones
 * are not read. */
static void test_check_files(void **state) {
  char dir[] = "/tmp/sig-test-files-XXXXXX", path[96], text[256], err[512], want[512];
  sig_config_t cfg;
  (void)state;
  assert_non_null(mkdtemp(dir));
  snprintf(path, sizeof(path), "%s/pw", dir);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs("secret\n", f);
  fclose(f);

  /* readable: ok */
  snprintf(text, sizeof(text),
           "[cluster]\nredis = \"redis://127.0.0.1\"\nredis_password_file = 'pw'\n");
  expect_ok(&cfg, text);
  assert_int_equal(sig_config_resolve_paths(&cfg, dir, err, sizeof(err)), 0);
  assert_int_equal(sig_config_check_files(&cfg, err, sizeof(err)), 0);
  sig_config_free(&cfg);

  /* missing: named with its key and path */
  expect_ok(&cfg, "[cluster]\nredis = \"redis://127.0.0.1\"\nredis_password_file = 'nope'\n");
  assert_int_equal(sig_config_resolve_paths(&cfg, dir, err, sizeof(err)), 0);
  assert_int_equal(sig_config_check_files(&cfg, err, sizeof(err)), SIG_ECONFIG);
  snprintf(want, sizeof(want),
           "cluster.redis_password_file: cannot read %s/nope: No such file or directory", dir);
  assert_string_equal(err, want);
  sig_config_free(&cfg);

  /* a folder */
  expect_ok(&cfg, "[cluster]\nredis = \"redis://127.0.0.1\"\nredis_password_file = '.'\n");
  assert_int_equal(sig_config_resolve_paths(&cfg, dir, err, sizeof(err)), 0);
  assert_int_equal(sig_config_check_files(&cfg, err, sizeof(err)), SIG_ECONFIG);
  snprintf(want, sizeof(want),
           "cluster.redis_password_file: cannot read %s: it is a folder, not a file", dir);
  assert_string_equal(err, want);
  sig_config_free(&cfg);

  /* not used (no redis, auth mode none): not read */
  expect_ok(&cfg, "[cluster]\nredis_password_file = 'nope'\n[auth]\nkey_file = 'nope'\n");
  assert_int_equal(sig_config_resolve_paths(&cfg, dir, err, sizeof(err)), 0);
  assert_int_equal(sig_config_check_files(&cfg, err, sizeof(err)), 0);
  sig_config_free(&cfg);
  /* used: read */
  expect_ok(&cfg, "[auth]\nmode = \"jwt\"\nkey_file = 'nope'\n");
  assert_int_equal(sig_config_resolve_paths(&cfg, dir, err, sizeof(err)), 0);
  assert_int_equal(sig_config_check_files(&cfg, err, sizeof(err)), SIG_ECONFIG);
  snprintf(want, sizeof(want), "auth.key_file: cannot read %s/nope: No such file or directory",
           dir);
  assert_string_equal(err, want);
  sig_config_free(&cfg);
  unlink(path);
  rmdir(dir);
}

/* --print-config's text: every key, and read back it gives the same text again (and so the
 * same values). */
static void test_format_round_trip(void **state) {
  static const char *const inputs[] = {
      "",
      "[server]\nhost = \"[::1]:0\"\nmax_connections = 1_000\nduplicate = \"reject\"\n"
      "allowed_origins = ['https://a.example', \"https://*.b.example:8443\",]\n"
      "trusted_proxies = [\"10.0.0.0/8\", '::1']\ncors_origin = \"https://x\\\"y\\\\z\"\n"
      "workers = 3\n"
      "[log]\nout_dir = 'C:\\logs \u00e9\u4e2d'\nout_file = \"-\"\nlevel = \"warn\"\nformat = "
      "\"json\"\n"
      "[auth]\nmode = \"jwt\"\nalgorithm = \"ES256\"\nkey_file = \"/k/\\\"q\\\".pem\"\n"
      "issuer = \"iss \\u00e9\"\naudience = \"aud\"\nleeway_s = 0\n"
      "[cluster]\nredis = \"unix:/run/r.sock?db=2\"\nredis_password_file = \"/pw\"\n"
      "node_id = \"n-1\"\nkey_prefix = \"p{x}:\"\nnode_ttl_s = 2\nrequest_timeout_ms = 50\n",
      "[server]\nallowed_origins = []\ntrusted_proxies = []\n",
      "[tls]\ncert_file = \"/c/full.pem\"\nkey_file = 'k.pem'\nmin_version = \"1.3\"\n",      "[turn]\nsecret_file = \"/etc/signal-server/turn.secret\"\n"
      "uris = [\"turn:t.example:3478?transport=udp\", \"stun:t.example\"]\nttl_s = 3600\n"
      "requests_per_ip_burst = 3\n",
  };
  (void)state;
  for (size_t i = 0; i < SIG_ARRAY_SIZE(inputs); i++) {
    sig_config_t a, b;
    char err[512];
    size_t len, len2;
    expect_ok(&a, inputs[i]);
    char *text = sig_config_format(&a, &len);
    assert_int_equal(strlen(text), len);
    sig_config_init(&b);
    if (sig_config_parse(&b, "printed.toml", text, len, err, sizeof(err)) != 0)
      fail_msg("%s\n%s", err, text);
    char *again = sig_config_format(&b, &len2);
    assert_string_equal(again, text);
    /* every key is there, whatever the input left out */
    for (size_t k = 0; k < SIG_ARRAY_SIZE(int_keys); k++) {
      char needle[64];
      snprintf(needle, sizeof(needle), "\n    %s = ", int_keys[k].name);
      assert_non_null(strstr(text, needle));
    }
    for (const char *t = "[server]\n"; t != NULL; t = strcmp(t, "[server]\n") == 0 ? "[log]\n"
                                                      : strcmp(t, "[log]\n") == 0  ? "[auth]\n"
                                                      : strcmp(t, "[auth]\n") == 0 ? "[cluster]\n"
                                                                                   : NULL)
      assert_non_null(strstr(text, t));
    if (i == 1) {
      assert_non_null(strstr(text, "    host = \"[::1]:0\"\n"));
      assert_non_null(strstr(
          text, "    allowed_origins = [\"https://a.example\", \"https://*.b.example:8443\"]\n"));
      assert_non_null(strstr(text, "    cors_origin = \"https://x\\\"y\\\\z\"\n"));
      assert_non_null(strstr(text, "    out_dir = \"C:\\\\logs \xc3\xa9\xe4\xb8\xad\"\n"));
      assert_non_null(strstr(text, "    format = \"json\"\n"));
      assert_string_equal(b.auth_key_file, "/k/\"q\".pem");
      assert_string_equal(b.auth_issuer, "iss \xc3\xa9");
      assert_int_equal(b.auth_alg, SIG_ALG_ES256);
      assert_int_equal(b.workers, 3);
      assert_int_equal(b.trusted_proxies.n, 2);
    }
    if (i == 0) assert_default_values(&b);
    /* [tls] is printed only when it is on: its presence is what turns TLS on */
    assert_int_equal(b.tls, i == 3);
    assert_int_equal(strstr(text, "\n[tls]\n") != NULL, i == 3);
    if (i == 3) {
      assert_non_null(strstr(text, "\n[tls]\n    cert_file = \"/c/full.pem\"\n"));
      assert_int_equal(b.tls_min_version, SIG_TLS_1_3);
    }
    /* [turn] likewise: printed only when on */
    assert_int_equal(b.turn, i == 4);
    assert_int_equal(strstr(text, "\n[turn]\n") != NULL, i == 4);
    if (i == 4) {
      assert_non_null(strstr(text,
                             "\n[turn]\n    secret_file = \"/etc/signal-server/turn.secret\"\n"
                             "    uris = [\"turn:t.example:3478?transport=udp\", "
                             "\"stun:t.example\"]\n    ttl_s = 3600\n"
                             "    requests_per_ip_per_s = 1\n    requests_per_ip_burst = 3\n"));
      assert_int_equal(b.turn_uris.n, 2);
    } else {
      assert_non_null(strstr(text, "# [turn] absent: GET /turn-credentials answers 404\n"));
    }
    free(text);
    free(again);
    sig_config_free(&a);
    sig_config_free(&b);
  }
}

typedef struct {
  char seen[1024];
} seen_t;

static void record(void *arg, const char *table, const char *key, int live) {
  seen_t *s = arg;
  size_t n = strlen(s->seen);
  snprintf(s->seen + n, sizeof(s->seen) - n, "%s.%s%s ", table, key, live ? "(live)" : "");
}

/* SIGHUP's merge: every differing key reported in table order with its liveness; the live ones
 * take the new value (copies), the others keep theirs. */
static void test_update(void **state) {
  sig_config_t cur, next;
  seen_t seen = {""};
  (void)state;
  expect_ok(&cur, "[server]\nhost = \"127.0.0.1:1\"\nallowed_origins = [\"https://a\"]\n");
  expect_ok(&next,
            "[server]\nhost = \"127.0.0.1:2\"\nrequests_per_ip_burst = 3\nmax_connections = 5\n"
            "allowed_origins = [\"https://b\", \"https://c\"]\ncors_origin = \"https://d\"\n"
            "[log]\nlevel = \"debug\"\nformat = \"json\"\nout_file = \"-\"\n"
            "[auth]\nissuer = \"x\"\n[cluster]\nnode_ttl_s = 3\n");
  assert_int_equal(sig_config_update(&cur, &next, record, &seen), 10);
  assert_string_equal(seen.seen,
                      "server.host server.max_connections server.cors_origin(live) "
                      "server.requests_per_ip_burst(live) server.allowed_origins(live) "
                      "log.out_file log.level(live) log.format(live) auth.issuer "
                      "cluster.node_ttl_s ");
  /* live: new values, copied */
  assert_int_equal(cur.requests_per_ip_burst, 3);
  assert_int_equal(cur.log_level, SIG_LOG_DEBUG);
  assert_int_equal(cur.log_format, SIG_LOG_JSON);
  assert_string_equal(cur.cors_origin, "https://d");
  assert_ptr_not_equal(cur.cors_origin, next.cors_origin);
  assert_int_equal(cur.allowed_origins.n, 2);
  assert_string_equal(cur.allowed_origins.items[1], "https://c");
  assert_ptr_not_equal(cur.allowed_origins.items, next.allowed_origins.items);
  /* restart: kept */
  assert_string_equal(cur.host, "127.0.0.1:1");
  assert_int_equal(cur.host_port, 1);
  assert_int_equal(cur.max_connections, 10000);
  assert_string_equal(cur.log_file, "signal-server.log");
  assert_string_equal(cur.auth_issuer, "");
  assert_int_equal(cur.cluster_node_ttl_s, 10);
  sig_config_free(&next);
  /* the same again: nothing live differs any more; what needs a restart still does */
  expect_ok(&next,
            "[server]\nhost = \"127.0.0.1:1\"\nallowed_origins = [\"https://b\", \"https://c\"]\n"
            "requests_per_ip_burst = 3\ncors_origin = \"https://d\"\n[log]\nlevel = \"debug\"\n"
            "format = \"json\"\n");
  seen.seen[0] = '\0';
  assert_int_equal(sig_config_update(&cur, &next, NULL, NULL), 0);
  assert_int_equal(sig_config_update(&cur, &next, record, &seen), 0);
  assert_string_equal(seen.seen, "");
  sig_config_free(&next);
  sig_config_free(&cur);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tls_table),
      cmocka_unit_test(test_turn_table),
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_free_accepts_null_zeroed_and_twice),
      cmocka_unit_test(test_blank_and_comment_only),
      cmocka_unit_test(test_seed_file_verbatim),
      cmocka_unit_test(test_seed_file_crlf),
      cmocka_unit_test(test_crlf_positions_and_bare_cr),
      cmocka_unit_test(test_bom_accepted),
      cmocka_unit_test(test_project_file),
      cmocka_unit_test(test_all_keys_set),
      cmocka_unit_test(test_int_bounds),
      cmocka_unit_test(test_int_keys_wrong_type),
      cmocka_unit_test(test_string_keys_wrong_type),
      cmocka_unit_test(test_choices),
      cmocka_unit_test(test_unknown_key_and_table),
      cmocka_unit_test(test_duplicates_and_outside_table),
      cmocka_unit_test(test_unsupported_constructs),
      cmocka_unit_test(test_trailing_garbage),
      cmocka_unit_test(test_arrays),
      cmocka_unit_test(test_string_escapes),
      cmocka_unit_test(test_string_escape_errors),
      cmocka_unit_test(test_literal_strings),
      cmocka_unit_test(test_control_characters),
      cmocka_unit_test(test_invalid_utf8),
      cmocka_unit_test(test_unterminated_strings),
      cmocka_unit_test(test_host_good_forms),
      cmocka_unit_test(test_host_bad_forms),
      cmocka_unit_test(test_hostname_lengths),
      cmocka_unit_test(test_string_value_checks),
      cmocka_unit_test(test_failure_leaves_cfg_unchanged),
      cmocka_unit_test(test_error_buffer_handling),
      cmocka_unit_test(test_load),
      cmocka_unit_test(test_resolve_paths),
      cmocka_unit_test(test_resolve_file_keys),
      cmocka_unit_test(test_check_files),
      cmocka_unit_test(test_format_round_trip),
      cmocka_unit_test(test_update),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
