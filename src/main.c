/* signal-server: command line, configuration, log, signals; wires the modules
 * together and runs the loop. */
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "generated.h"
#include "sig_auth.h"
#include "sig_config.h"
#include "sig_log.h"
#include "sig_notify.h"
#include "sig_server.h"
#include "sig_turn.h"
#include "sig_util.h"
#include "sig_workers.h"

#define CONFIG_NAME "signal-server.toml"

typedef struct {
  const char *config; /* --config PATH, or NULL */
  int check_only;
  int print;          /* --print-config */
  int token;          /* the token subcommand */
  const char *sub;    /* token --sub */
  long long ttl;      /* token --ttl */
  const char **calls; /* token --calls (borrowed from argv) */
  size_t ncalls;
} options_t;

typedef struct {
  uv_loop_t *loop;
  sig_server_t *server;
  sig_config_t *cfg;    /* in force; SIGHUP changes its live keys */
  const options_t *opt; /* where the configuration came from, for SIGHUP */
  uv_signal_t sigterm, sigint, sighup;
} app_t;

static void reload_config(sig_config_t *cfg, const options_t *o, int quiet);

static void usage(FILE *f) {
  fprintf(f,
          "usage: signal-server [--config PATH] [--check-config] [--print-config] [--version] "
          "[--help]\n"
          "       signal-server token --sub NAME [--ttl SECONDS] [--calls PATTERN ...] "
          "[--config PATH]\n"
          "  --config PATH    read PATH instead of " CONFIG_NAME
          " beside the executable\n"
          "  --check-config   check what start-up checks (the file, the files it names, the\n"
          "                   host resolves, the log can be written) and exit (0 when valid)\n"
          "  --print-config   print the configuration in effect, every default filled in, as\n"
          "                   TOML, and exit\n"
          "  --version        print the version and exit\n"
          "  --help           print this text and exit\n"
          "  token            print a token for domain NAME, valid for SECONDS (default 3600),\n"
          "                   allowed to call the domains PATTERN (exact, or a prefix ending\n"
          "                   in '*'; none: anyone), signed with the configured HMAC key\n");
}

/* The folder of the running executable, symlinks resolved (the seed's rule: the
 * configuration sits beside the program, wherever it is started from). */
static char *exe_dir(void) {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return sig_strdup(".");
  buf[n] = '\0';
  return sig_strdup(dirname(buf));
}

static char *dir_of(const char *path) {
  char *copy = sig_strdup(path);
  char *real = realpath(dirname(copy), NULL);
  free(copy);
  return real ? real : sig_strdup(".");
}

static void raise_fd_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

static void on_stopped(void *arg) {
  app_t *app = arg;
  SIG_INFO("server", "stopped");
  sig_server_free(app->server);
  app->server = NULL;
  uv_close((uv_handle_t *)&app->sigterm, NULL);
  uv_close((uv_handle_t *)&app->sigint, NULL);
  uv_close((uv_handle_t *)&app->sighup, NULL);
}

static void on_stopped_early(void *arg) {
  app_t *app = arg;
  sig_server_free(app->server);
  app->server = NULL;
}

static void on_signal(uv_signal_t *h, int signum) {
  app_t *app = h->data;
  if (signum == SIGHUP) {
    sig_notify_reloading();
    sig_log_reopen();
    reload_config(app->cfg, app->opt, 0);
    if (app->server != NULL) sig_server_reload(app->server);
    sig_notify_ready(app->server != NULL ? sig_server_address(app->server) : NULL);
    return;
  }
  SIG_INFO("server", "received %s", signum == SIGTERM ? "SIGTERM" : "SIGINT");
  sig_notify_stopping();
  if (app->server != NULL) sig_server_shutdown(app->server, on_stopped, app);
}

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "signal-server: ");
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\n");
  usage(stderr);
  return 2;
}

/* The token subcommand's options at argv[*i] (*i moves past what they take). Returns -1 when
 * taken, -2 when argv[*i] is not one of them, or the exit status of a usage error. */
static int parse_token_option(int argc, char **argv, int *i, options_t *o) {
  const char *a = argv[*i];
  if (strcmp(a, "--sub") == 0) {
    if (*i + 1 >= argc) return usage_error("option %s needs a domain", a);
    o->sub = argv[++*i];
  } else if (strcmp(a, "--ttl") == 0) {
    char *end;
    if (*i + 1 >= argc) return usage_error("option %s needs a number of seconds", a);
    o->ttl = strtoll(argv[++*i], &end, 10);
    if (*end != '\0' || o->ttl < 1 || o->ttl > 366LL * 86400)
      return usage_error("--ttl: expected seconds from 1 to 31622400, got '%s'", argv[*i]);
  } else if (strcmp(a, "--calls") == 0) {
    if (*i + 1 >= argc || argv[*i + 1][0] == '-')
      return usage_error("option %s needs a pattern", a);
    while (*i + 1 < argc && argv[*i + 1][0] != '-') { /* one or more patterns */
      o->calls = sig_realloc(o->calls, (o->ncalls + 1) * sizeof(*o->calls));
      o->calls[o->ncalls++] = argv[++*i];
    }
  } else {
    return -2;
  }
  return -1;
}

/* The server's own options (a is argv[i]), as parse_token_option. */
static int parse_server_option(const char *a, options_t *o) {
  if (strcmp(a, "--check-config") == 0) {
    o->check_only = 1;
  } else if (strcmp(a, "--print-config") == 0) {
    o->print = 1;
  } else if (strcmp(a, "--version") == 0) {
    printf("signal-server %s\n", SIG_VERSION);
    return 0;
  } else {
    return -2;
  }
  return -1;
}

/* Returns -1 to go on, or the exit status. */
static int parse_args(int argc, char **argv, options_t *o) {
  int i = 1, rc;
  if (argc > 1 && strcmp(argv[1], "token") == 0) o->token = 1, i = 2;
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--config") == 0) {
      if (i + 1 >= argc || argv[i + 1][0] == '\0') return usage_error("option %s needs a path", a);
      o->config = argv[++i];
    } else if (strncmp(a, "--config=", 9) == 0) {
      if (a[9] == '\0') return usage_error("option %s needs a path", "--config");
      o->config = a + 9;
    } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      return 0;
    } else if ((rc = o->token ? parse_token_option(argc, argv, &i, o)
                              : parse_server_option(a, o)) != -2) {
      if (rc != -1) return rc;
    } else {
      return usage_error("unknown option '%s'", a);
    }
  }
  if (o->token && o->sub == NULL) return usage_error("%s: --sub NAME is required", "token");
  return -1;
}

/* The token subcommand: prints a token signed with the configured key. */
static int print_token(const options_t *o, const sig_config_t *cfg) {
  char err[512];
  sig_auth_t *auth = NULL;
  if (sig_auth_new(&auth, cfg, err, sizeof(err)) != 0) {
    fprintf(stderr, "signal-server: %s\n", err);
    return 1;
  }
  char *token = sig_auth_mint(auth, o->sub, o->ttl, o->calls, o->ncalls, (int64_t)time(NULL), err,
                              sizeof(err));
  sig_auth_free(auth);
  if (token == NULL) {
    fprintf(stderr, "signal-server: token: %s\n", err);
    return 1;
  }
  printf("%s\n", token);
  free(token);
  return 0;
}

/* What no single key can say: workers need the cluster. Returns 0, or 1 after saying why. */
static int check_combination(const sig_config_t *cfg) {
  if (cfg->workers > 1 && cfg->cluster_redis[0] == '\0') {
    fprintf(stderr,
            "%s%sserver.workers: %" PRId64
            " workers need [cluster] redis (each worker is a node "
            "of the cluster)\n",
            cfg->path ? cfg->path : "", cfg->path ? ": " : "", cfg->workers);
    return 1;
  }
  return 0;
}

static int check_auth(const sig_config_t *cfg, char *err, size_t errlen) {
  sig_auth_t *auth = NULL;
  int rc = sig_auth_new(&auth, cfg, err, errlen);
  sig_auth_free(auth);
  return rc;
}

static int check_turn(const sig_config_t *cfg, char *err, size_t errlen) {
  sig_turn_t *turn = NULL;
  int rc = sig_turn_new(&turn, cfg, err, errlen);
  sig_turn_free(turn);
  return rc;
}

static int check_log(const sig_config_t *cfg, char *err, size_t errlen) {
  return sig_log_check(cfg->log_dir, cfg->log_file, err, errlen);
}

/* What start-up needs besides a valid file, in the order it finds out: each returns 0, or a
 * negative error with the reason in err. A file that a new key names is checked by
 * sig_config_check_files once its row in sig_config.c says it names a file. */
static int (*const start_checks[])(const sig_config_t *cfg, char *err, size_t errlen) = {
    check_auth,             /* [auth] key_file: read, and a usable key */
    sig_config_check_files, /* every file a key names, where it is used: readable */
    check_turn,             /* [turn] secret_file: read, not empty */
    sig_server_check_host,  /* [server] host resolves (binding is start-up's) */
    check_log,              /* [log] the folder can be made and the file written */
};

/* --check-config, and a workers supervisor before it forks: what start-up would check.
 * Returns 0, or 1 after saying why. */
static int check_files(const sig_config_t *cfg) {
  char err[1024];
  if (check_combination(cfg) != 0) return 1;
  if (sig_server_check(cfg, err, sizeof(err)) != 0) { /* the TLS pair; its message names the file */
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  for (size_t i = 0; i < SIG_ARRAY_SIZE(start_checks); i++) {
    if (start_checks[i](cfg, err, sizeof(err)) != 0) {
      fprintf(stderr, "%s%s%s\n", cfg->path ? cfg->path : "", cfg->path ? ": " : "", err);
      return 1;
    }
  }
  return 0;
}

/* Loads the configuration (--config, else the file beside the executable, else the built-in
 * defaults: *on_defaults) and resolves its paths. *path gets the file's path (heap). Returns 0,
 * or -1 with the reason in err. */
static int load_config(const options_t *o, sig_config_t *cfg, char **path, int *on_defaults,
                       char *err, size_t errlen) {
  char *base = exe_dir(), *dir;
  int rc = 0;
  *on_defaults = 0;
  if (o->config != NULL) {
    *path = sig_strdup(o->config);
  } else {
    size_t n = strlen(base) + sizeof(CONFIG_NAME) + 1;
    *path = sig_malloc(n);
    snprintf(*path, n, "%s/%s", base, CONFIG_NAME);
    *on_defaults = access(*path, F_OK) != 0;
  }
  if (!*on_defaults && sig_config_load(cfg, *path, err, errlen) != 0) rc = -1;
  dir = !*on_defaults ? dir_of(*path) : sig_strdup(base);
  if (rc == 0 && sig_config_resolve_paths(cfg, dir, err, errlen) != 0) rc = -1;
  free(dir);
  free(base);
  return rc;
}

/* The names of the keys that changed on a reload, applied and not. */
typedef struct {
  char applied[2048], kept[2048]; /* every key's name fits */
} changes_t;

static void note_change(void *arg, const char *table, const char *key, int live) {
  changes_t *c = arg;
  char *list = live ? c->applied : c->kept;
  size_t n = strlen(list);
  snprintf(list + n, sizeof(c->applied) - n, "%s%s.%s", n > 0 ? "," : "", table, key);
}

/* SIGHUP: the configuration is read again as at start; the keys that may change live take their
 * new values in cfg (the caller then has the server take them), the others keep theirs and are
 * named. A file that no longer loads changes nothing. quiet: apply without a word (a workers
 * supervisor: its workers say it). */
static void reload_config(sig_config_t *cfg, const options_t *o, int quiet) {
  char err[1024], *path = NULL;
  int on_defaults;
  changes_t c = {"", ""};
  sig_config_t next;
  sig_config_init(&next);
  int rc = load_config(o, &next, &path, &on_defaults, err, sizeof(err));
  size_t changed = rc == 0 ? sig_config_update(cfg, &next, note_change, &c) : 0;
  /* the new level and format already for the lines that say so */
  sig_log_set_level(cfg->log_level);
  sig_log_set_format(cfg->log_format);
  if (rc != 0 && !quiet)
    SIG_EVENT(SIG_LOG_ERROR, "server", NULL,
              "reload: configuration not applied, keeping the one in force", SIG_KV("error", err));
  if (rc == 0 && changed == 0 && !quiet)
    SIG_EVENT(SIG_LOG_INFO, "server", NULL, "reload: configuration read, nothing changed",
              SIG_KV("path", on_defaults ? "built-in defaults" : path));
  if (c.applied[0] != '\0' && !quiet)
    SIG_EVENT(SIG_LOG_INFO, "server", NULL, "reload: applied", SIG_KV("keys", c.applied));
  if (c.kept[0] != '\0' && !quiet)
    SIG_EVENT(SIG_LOG_WARN, "server", NULL, "reload: changed, not applied: they need a restart",
              SIG_KV("keys", c.kept));
  sig_config_free(&next);
  free(path);
}

/* Installs the signal handlers; returns 0, or a negative error with every handle it opened
 * closing again. */
static int start_signals(app_t *app) {
  uv_signal_t *sigs[] = {&app->sigterm, &app->sigint, &app->sighup};
  const int signums[] = {SIGTERM, SIGINT, SIGHUP};
  int inited = 0, rc = 0;
  for (int i = 0; i < 3 && rc == 0; i++) {
    rc = uv_signal_init(app->loop, sigs[i]);
    sigs[i]->data = app;
    if (rc == 0) inited++, rc = uv_signal_start(sigs[i], on_signal, signums[i]);
    if (rc != 0) {
      fprintf(stderr, "signal-server: cannot handle signal %d: %s\n", signums[i], uv_strerror(rc));
      SIG_ERROR("server", "cannot handle signal %d error=\"%s\"", signums[i], uv_strerror(rc));
    }
  }
  if (rc != 0)
    for (int j = 0; j < inited; j++) uv_close((uv_handle_t *)sigs[j], NULL);
  return rc;
}

/* The start line on standard output too, for whoever started the server by hand (`make run`),
 * unless the log is standard output already. */
static void tell_user(const char *line) {
  const char *log = sig_log_path();
  if (log != NULL && strcmp(log, "-") == 0) return;
  printf("signal-server: %s (log: %s)\n", line, log != NULL ? log : "standard error");
  fflush(stdout);
}

/* Opens the log (after the port is ours: a start that fails to bind must not write into the log
 * of the instance that holds the port), starts the server and runs the loop until it stops.
 * worker: the index of a worker process, whose supervisor tells the user; -1 when alone.
 * Returns the exit status. */
static int run(sig_config_t *cfg, const options_t *o, const char *path, int on_defaults,
               int worker) {
  char err[1024], line[512];
  app_t app;
  int status = 1;
  memset(&app, 0, sizeof(app));
  app.cfg = cfg;
  app.opt = o;
  /* SIGTERM, SIGINT and SIGHUP wait until they are handled (a worker starts with them held) */
  sigset_t held;
  sigemptyset(&held);
  sigaddset(&held, SIGTERM);
  sigaddset(&held, SIGINT);
  sigaddset(&held, SIGHUP);
  sigprocmask(SIG_BLOCK, &held, NULL);
  int fd = sig_server_listen(cfg, err, sizeof(err));
  if (fd < 0) {
    fprintf(stderr, "signal-server: %s\n", err);
    return 1;
  }
  if (sig_log_open(cfg->log_dir, cfg->log_file, cfg->log_level, err, sizeof(err)) != 0) {
    fprintf(stderr, "signal-server: %s\n", err);
    close(fd);
    return 1;
  }
  sig_log_set_format(cfg->log_format);
  if (on_defaults)
    SIG_INFO("server", "no configuration file at %s: running on built-in defaults", path);
  else
    SIG_INFO("server", "configuration loaded path=%s", path);
  raise_fd_limit();
  signal(SIGPIPE, SIG_IGN);
  app.loop = uv_default_loop();
  if (sig_server_start(&app.server, app.loop, cfg, fd, err, sizeof(err)) != 0) {
    fprintf(stderr, "signal-server: %s\n", err);
    SIG_ERROR("server", "%s", err);
  } else if (start_signals(&app) != 0) { /* it could not be stopped cleanly: don't run */
    sig_server_shutdown(app.server, on_stopped_early, &app);
  } else {
    /* handled from here on: what arrived during start-up is delivered now */
    sigprocmask(SIG_UNBLOCK, &held, NULL);
    status = 0;
    if (worker < 0) { /* said once the signals are handled: a SIGHUP after it is safe */
      sig_server_start_line(cfg, sig_server_address(app.server), line, sizeof(line));
      SIG_INFO("server", "%s version=%s log=%s", line, SIG_VERSION, sig_log_path());
      tell_user(line);
    } else {
      SIG_INFO("server", "worker %d serving on %s", worker, sig_server_address(app.server));
    }
    sig_notify_ready(sig_server_address(app.server));
  }
  uv_run(app.loop, UV_RUN_DEFAULT); /* serves until stopped; then finishes the close callbacks */
  int rc = uv_loop_close(app.loop);
  if (rc != 0)
    SIG_WARN("server", "event loop closed with handles open error=\"%s\"", uv_strerror(rc));
  sig_log_close();
  return status;
}

typedef struct {
  const options_t *opt;
  const char *path;
  int on_defaults;
} worker_ctx_t;

/* A worker process: the server, as one process would run it (its own log handle). */
static int work(sig_config_t *cfg, int index, void *arg) {
  worker_ctx_t *w = arg;
  sig_log_close(); /* the supervisor's; the worker opens its own */
  return run(cfg, w->opt, w->path, w->on_defaults, index);
}

/* The supervisor holds the port: its log, and the start line. */
static int supervisor_started(sig_config_t *cfg, void *arg) {
  worker_ctx_t *w = arg;
  char err[1024], address[300], line[512];
  if (sig_log_open(cfg->log_dir, cfg->log_file, cfg->log_level, err, sizeof(err)) != 0) {
    fprintf(stderr, "signal-server: %s\n", err);
    return -1;
  }
  sig_log_set_format(cfg->log_format);
  if (w->on_defaults)
    SIG_INFO("workers", "no configuration file at %s: running on built-in defaults", w->path);
  else
    SIG_INFO("workers", "configuration loaded path=%s", w->path);
  snprintf(address, sizeof(address), strchr(cfg->host_addr, ':') != NULL ? "[%s]:%d" : "%s:%d",
           cfg->host_addr, cfg->host_port);
  sig_server_start_line(cfg, address, line, sizeof(line));
  SIG_INFO("workers", "%s workers=%" PRId64 " version=%s log=%s", line, cfg->workers, SIG_VERSION,
           sig_log_path());
  tell_user(line);
  return 0;
}

/* SIGHUP in the supervisor: its own log's level and format, and shutdown_timeout_s. */
static void supervisor_reload(sig_config_t *cfg, void *arg) {
  worker_ctx_t *w = arg;
  reload_config(cfg, w->opt, 1);
}

/* [server] workers > 1: the supervisor. */
static int run_workers(sig_config_t *cfg, const options_t *o, const char *path, int on_defaults) {
  worker_ctx_t ctx = {o, path, on_defaults};
  sig_workers_hooks_t hooks = {
      .work = work, .started = supervisor_started, .reload = supervisor_reload, .arg = &ctx};
  if (check_files(cfg) != 0) return 1;
  raise_fd_limit();
  int status = sig_workers_run(cfg, &hooks);
  sig_log_close();
  return status;
}

int main(int argc, char **argv) {
  options_t o = {.ttl = 3600};
  sig_config_t cfg;
  char *path = NULL, err[1024];
  int on_defaults, status = parse_args(argc, argv, &o);
  if (status >= 0) {
    free(o.calls);
    return status;
  }
  sig_config_init(&cfg);
  if (load_config(&o, &cfg, &path, &on_defaults, err, sizeof(err)) != 0) {
    fprintf(stderr, "%s\n", err);
    status = 1;
  } else if (o.token) {
    status = print_token(&o, &cfg);
  } else if (o.check_only || o.print) {
    status = o.check_only ? check_files(&cfg) : 0;
    if (status == 0 && o.check_only) printf("%s: ok\n", on_defaults ? "built-in defaults" : path);
    if (status == 0 && o.print) {
      char *text = sig_config_format(&cfg, NULL);
      fputs(text, stdout);
      free(text);
    }
  } else if (cfg.workers > 1) {
    status = run_workers(&cfg, &o, path, on_defaults);
  } else {
    status = check_combination(&cfg) != 0 ? 1 : run(&cfg, &o, path, on_defaults, -1);
  }
  sig_config_free(&cfg);
  free(path);
  free(o.calls);
  return status;
}
