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
    return;
  }
  SIG_INFO("server", "received %s", signum == SIGTERM ? "SIGTERM" : "SIGINT");
  if (app->server != NULL) sig_server_shutdown(app->server, on_stopped, app);
}

int main(int argc, char **argv) {
  const char *config_arg = NULL;
  int check_only = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
      config_arg = argv[++i];
    } else if (strncmp(argv[i], "--config=", 9) == 0) {
      config_arg = argv[i] + 9;
    } else if (strcmp(argv[i], "--check-config") == 0) {
      check_only = 1;
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

  int status = 1;
  char err[1024];
  char *base = exe_dir();
  char *default_path = NULL;
  char *config_dir = NULL;
  sig_config_t cfg;
  sig_config_init(&cfg);
  app_t app;
  memset(&app, 0, sizeof(app));

  const char *path = config_arg;
  int on_defaults = 0;
  if (path == NULL) {
    size_t n = strlen(base) + sizeof(CONFIG_NAME) + 1;
    default_path = sig_malloc(n);
    snprintf(default_path, n, "%s/%s", base, CONFIG_NAME);
    path = default_path;
    on_defaults = access(path, F_OK) != 0;
  }
  if (!on_defaults && sig_config_load(&cfg, path, err, sizeof(err)) != 0) {
    fprintf(stderr, "%s\n", err);
    goto out;
  }
  config_dir = on_defaults ? sig_strdup(base) : dir_of(path);
  if (sig_config_resolve_paths(&cfg, config_dir, err, sizeof(err)) != 0) {
    fprintf(stderr, "%s\n", err);
    goto out;
  }
  if (check_only) {
    printf("%s: ok\n", on_defaults ? "built-in defaults" : path);
    status = 0;
    goto out;
  }
  if (sig_log_open(cfg.log_dir, cfg.log_file, cfg.log_level, err, sizeof(err)) != 0) {
    fprintf(stderr, "signal-server: %s\n", err);
    goto out;
  }
  if (on_defaults)
    SIG_INFO("server", "no configuration file at %s: running on built-in defaults", path);
  else
    SIG_INFO("server", "configuration loaded path=%s", path);

  raise_fd_limit();
  signal(SIGPIPE, SIG_IGN);
  app.loop = uv_default_loop();
  if (sig_server_start(&app.server, app.loop, &cfg, err, sizeof(err)) != 0) {
    fprintf(stderr, "signal-server: %s\n", err);
    SIG_ERROR("server", "%s", err);
    goto out_loop;
  }
  SIG_INFO("server", "listening on %s version=%s log=%s", sig_server_address(app.server),
           SIG_VERSION, sig_log_path());
  uv_signal_t *sigs[] = {&app.sigterm, &app.sigint, &app.sighup};
  int signums[] = {SIGTERM, SIGINT, SIGHUP};
  for (int i = 0, inited = 0; i < 3; i++) {
    int rc = uv_signal_init(app.loop, sigs[i]);
    sigs[i]->data = &app;
    if (rc == 0) inited++, rc = uv_signal_start(sigs[i], on_signal, signums[i]);
    if (rc != 0) { /* without signals the server could not be stopped cleanly: refuse to run */
      fprintf(stderr, "signal-server: cannot handle signal %d: %s\n", signums[i], uv_strerror(rc));
      SIG_ERROR("server", "cannot handle signal %d error=\"%s\"", signums[i], uv_strerror(rc));
      for (int j = 0; j < inited; j++) uv_close((uv_handle_t *)sigs[j], NULL);
      sig_server_shutdown(app.server, on_stopped_early, &app);
      goto out_loop;
    }
  }
  uv_run(app.loop, UV_RUN_DEFAULT);
  status = 0;

out_loop:
  if (app.loop != NULL) {
    uv_run(app.loop, UV_RUN_DEFAULT); /* finish pending close callbacks */
    int rc = uv_loop_close(app.loop);
    if (rc != 0)
      SIG_WARN("server", "event loop closed with handles open error=\"%s\"", uv_strerror(rc));
  }
out:
  sig_log_close();
  sig_config_free(&cfg);
  free(config_dir);
  free(default_path);
  free(base);
  return status;
}
