/* signal-server: command line, configuration, log, signals; wires the modules
 * together and runs the loop. */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "generated.h"
#include "sig_config.h"
#include "sig_log.h"
#include "sig_server.h"
#include "sig_util.h"

#define CONFIG_NAME "signal-server.toml"

typedef struct {
  uv_loop_t *loop;
  sig_server_t *server;
  uv_signal_t sigterm, sigint, sighup;
} app_t;

static void usage(FILE *f) {
  fprintf(f,
          "usage: signal-server [--config PATH] [--check-config] [--version] [--help]\n"
          "  --config PATH    read PATH instead of " CONFIG_NAME
          " beside the executable\n"
          "  --check-config   validate the configuration and exit (0 when valid)\n"
          "  --version        print the version and exit\n"
          "  --help           print this text and exit\n");
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
    sig_log_reopen();
    if (app->server != NULL) sig_server_reload(app->server);
    return;
  }
  SIG_INFO("server", "received %s", signum == SIGTERM ? "SIGTERM" : "SIGINT");
  if (app->server != NULL) sig_server_shutdown(app->server, on_stopped, app);
}

typedef struct {
  const char *config; /* --config PATH, or NULL */
  int check_only;
} options_t;

/* Returns -1 to go on, or the exit status. */
static int parse_args(int argc, char **argv, options_t *o) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
      o->config = argv[++i];
    } else if (strncmp(argv[i], "--config=", 9) == 0) {
      o->config = argv[i] + 9;
    } else if (strcmp(argv[i], "--check-config") == 0) {
      o->check_only = 1;
    } else if (strcmp(argv[i], "--version") == 0) {
      printf("signal-server %s\n", SIG_VERSION);
      return 0;
    } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      usage(stdout);
      return 0;
    } else {
      fprintf(stderr, "signal-server: unknown option '%s'\n", argv[i]);
      usage(stderr);
      return 2;
    }
  }
  return -1;
}

/* Loads the configuration (--config, else the file beside the executable, else the built-in
 * defaults: *on_defaults) and resolves its paths. *path gets the file's path (heap). Returns 0,
 * or -1 after saying why on stderr. */
static int load_config(const options_t *o, sig_config_t *cfg, char **path, int *on_defaults) {
  char err[1024];
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
  if (!*on_defaults && sig_config_load(cfg, *path, err, sizeof(err)) != 0) rc = -1;
  dir = !*on_defaults ? dir_of(*path) : sig_strdup(base);
  if (rc == 0 && sig_config_resolve_paths(cfg, dir, err, sizeof(err)) != 0) rc = -1;
  if (rc != 0) fprintf(stderr, "%s\n", err);
  free(dir);
  free(base);
  return rc;
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

/* Opens the log, starts the server and runs the loop until it stops. Returns the exit status. */
static int run(const sig_config_t *cfg, const char *path, int on_defaults) {
  char err[1024];
  app_t app;
  int status = 1;
  memset(&app, 0, sizeof(app));
  if (sig_log_open(cfg->log_dir, cfg->log_file, cfg->log_level, err, sizeof(err)) != 0) {
    fprintf(stderr, "signal-server: %s\n", err);
    return 1;
  }
  if (on_defaults)
    SIG_INFO("server", "no configuration file at %s: running on built-in defaults", path);
  else
    SIG_INFO("server", "configuration loaded path=%s", path);
  raise_fd_limit();
  signal(SIGPIPE, SIG_IGN);
  app.loop = uv_default_loop();
  if (sig_server_start(&app.server, app.loop, cfg, err, sizeof(err)) != 0) {
    fprintf(stderr, "signal-server: %s\n", err);
    SIG_ERROR("server", "%s", err);
  } else {
    SIG_INFO("server", "listening on %s version=%s log=%s", sig_server_address(app.server),
             SIG_VERSION, sig_log_path());
    if (start_signals(&app) == 0) /* without signals it could not be stopped cleanly: don't run */
      status = 0;
    else
      sig_server_shutdown(app.server, on_stopped_early, &app);
  }
  uv_run(app.loop, UV_RUN_DEFAULT); /* serves until stopped; then finishes the close callbacks */
  int rc = uv_loop_close(app.loop);
  if (rc != 0)
    SIG_WARN("server", "event loop closed with handles open error=\"%s\"", uv_strerror(rc));
  sig_log_close();
  return status;
}

int main(int argc, char **argv) {
  options_t o = {NULL, 0};
  sig_config_t cfg;
  char *path = NULL;
  int on_defaults, status = parse_args(argc, argv, &o);
  if (status >= 0) return status;
  sig_config_init(&cfg);
  if (load_config(&o, &cfg, &path, &on_defaults) != 0) {
    status = 1;
  } else if (o.check_only) {
    char err[1024];
    status = sig_server_check(&cfg, err, sizeof(err)) != 0;
    if (status != 0)
      fprintf(stderr, "%s\n", err);
    else
      printf("%s: ok\n", on_defaults ? "built-in defaults" : path);
  } else {
    status = run(&cfg, path, on_defaults);
  }
  sig_config_free(&cfg);
  free(path);
  return status;
}
