/* The supervisor of worker processes. It blocks the signals it handles and waits for them with
 * sigtimedwait, so that nothing runs in a signal handler; restarts are delayed a little when a
 * worker dies young, so that a worker that cannot start does not spin. */
#include "sig_workers.h"

#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sig_log.h"
#include "sig_notify.h"
#include "sig_util.h"

#define YOUNG_MS 2000 /* a worker that dies younger than this is restarted after... */
#define RESTART_DELAY_MS 1000
#define STOP_GRACE_S 5 /* beyond shutdown_timeout_s before a worker is killed */

typedef struct {
  pid_t pid;           /* 0: not running */
  uint64_t started;    /* ms */
  uint64_t restart_at; /* ms; 0: none pending */
} worker_t;

/* A bound socket that keeps the port for every worker (port 0: the one the kernel picks).
 * Returns it, or -1 with errno set. */
static int reserve_port(const sig_config_t *cfg, int *port) {
  struct addrinfo hints, *res = NULL;
  char service[8];
  int one = 1;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  snprintf(service, sizeof(service), "%d", cfg->host_port);
  if (getaddrinfo(cfg->host_addr, service, &hints, &res) != 0) return -1;
  /* SO_REUSEPORT would let this bind join the sockets of another instance of the same user
   * on the port: a socket without it finds out whether anyone listens there. */
  int probe = cfg->host_port != 0 ? socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0) : -1;
  if (probe >= 0) {
    int busy = setsockopt(probe, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
               bind(probe, res->ai_addr, res->ai_addrlen) != 0;
    int e = errno;
    close(probe);
    if (busy) {
      freeaddrinfo(res);
      errno = e;
      return -1;
    }
  }
  int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
      bind(fd, res->ai_addr, res->ai_addrlen) != 0 ||
      getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
    int e = errno;
    if (fd >= 0) close(fd);
    freeaddrinfo(res);
    errno = e;
    return -1;
  }
  freeaddrinfo(res);
  *port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                         : ((struct sockaddr_in *)&ss)->sin_port);
  return fd;
}

static pid_t spawn(sig_config_t *cfg, int index, int reserved, const sigset_t *old,
                   const sig_workers_hooks_t *hooks) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  /* the worker: its own signals, no supervisor state. SIGTERM, SIGINT and SIGHUP stay held
   * until it handles them (a SIGHUP passed on while it starts must not end it). */
  sigset_t mask = *old;
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);
  close(reserved);
  cfg->worker_index = index;
  signal(SIGCHLD, SIG_DFL);
  sigprocmask(SIG_SETMASK, &mask, NULL);
  unsetenv("NOTIFY_SOCKET"); /* systemd hears from the supervisor */
  exit(hooks->work(cfg, index, hooks->arg));
}

static int find(const worker_t *w, int n, pid_t pid) {
  for (int i = 0; i < n; i++)
    if (w[i].pid == pid) return i;
  return -1;
}

static void signal_all(const worker_t *w, int n, int sig) {
  for (int i = 0; i < n; i++)
    if (w[i].pid > 0) kill(w[i].pid, sig);
}

static int running(const worker_t *w, int n) {
  int k = 0;
  for (int i = 0; i < n; i++) k += w[i].pid > 0;
  return k;
}

static const char *describe(int status, char *buf, size_t n) {
  if (WIFEXITED(status))
    snprintf(buf, n, "exit %d", WEXITSTATUS(status));
  else if (WIFSIGNALED(status))
    snprintf(buf, n, "signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
  else
    snprintf(buf, n, "status %d", status);
  return buf;
}

/* The supervisor's state while its workers run. */
typedef struct {
  sig_config_t *cfg;
  const sig_workers_hooks_t *hooks;
  worker_t *w;
  int n, reserved, stopping, status;
  uint64_t stop_deadline;
  sigset_t old; /* the mask before the supervisor's, which each worker gets back */
} supervisor_t;

/* SIGTERM or SIGINT: every worker gets SIGTERM, once; SIGHUP: passed on after the supervisor's
 * own reload. */
static void on_signal(supervisor_t *sv, int sig, uint64_t now) {
  if ((sig == SIGTERM || sig == SIGINT) && !sv->stopping) {
    SIG_INFO("workers", "received %s: stopping %d workers", strsignal(sig), running(sv->w, sv->n));
    sig_notify_stopping();
    sv->stopping = 1;
    sv->stop_deadline = now + (uint64_t)(sv->cfg->shutdown_timeout_s + STOP_GRACE_S) * 1000;
    signal_all(sv->w, sv->n, SIGTERM);
  } else if (sig == SIGHUP) {
    sig_notify_reloading();
    sig_log_reopen();
    sv->hooks->reload(sv->cfg, sv->hooks->arg);
    signal_all(sv->w, sv->n, SIGHUP);
    sig_notify_ready(sv->cfg->host);
  }
}

/* Every worker that exited: logged, and (unless stopping) due for a restart, later when it
 * died young. */
static void reap(supervisor_t *sv, uint64_t now) {
  char text[64];
  int st;
  pid_t pid;
  while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
    int i = find(sv->w, sv->n, pid);
    if (i < 0) continue;
    worker_t *w = &sv->w[i];
    w->pid = 0;
    if (sv->stopping) {
      if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) sv->status = 1;
      SIG_INFO("workers", "worker stopped index=%d pid=%ld how=\"%s\"", i, (long)pid,
               describe(st, text, sizeof(text)));
      continue;
    }
    int young = now - w->started < YOUNG_MS;
    w->restart_at = now + (young ? RESTART_DELAY_MS : 0);
    SIG_ERROR("workers", "worker died index=%d pid=%ld how=\"%s\" restart_in_ms=%d", i, (long)pid,
              describe(st, text, sizeof(text)), young ? RESTART_DELAY_MS : 0);
  }
}

/* Stopping: workers still running past the deadline are killed. Otherwise: the workers due for
 * a restart are started again. */
static void tend(supervisor_t *sv, uint64_t now) {
  if (sv->stopping) {
    if (now > sv->stop_deadline && running(sv->w, sv->n) > 0) {
      SIG_WARN("workers", "workers still running after the shutdown timeout: killing %d",
               running(sv->w, sv->n));
      signal_all(sv->w, sv->n, SIGKILL);
      sv->status = 1;
      sv->stop_deadline = UINT64_MAX;
    }
    return;
  }
  for (int i = 0; i < sv->n; i++) {
    worker_t *w = &sv->w[i];
    if (w->pid != 0 || w->restart_at == 0 || now < w->restart_at) continue;
    w->restart_at = 0;
    w->pid = spawn(sv->cfg, i, sv->reserved, &sv->old, sv->hooks);
    w->started = now;
    SIG_INFO("workers", "worker restarted index=%d pid=%ld", i, (long)w->pid);
  }
}

int sig_workers_run(sig_config_t *cfg, const sig_workers_hooks_t *hooks) {
  supervisor_t sv = {.cfg = cfg, .hooks = hooks, .n = (int)cfg->workers};
  int port;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  sigprocmask(SIG_BLOCK, &set, &sv.old);
  signal(SIGPIPE, SIG_IGN);
  sv.reserved = reserve_port(cfg, &port);
  if (sv.reserved < 0) { /* the log is not open: it may be the log of the instance on the port */
    fprintf(stderr, "signal-server: %s%sserver.host: cannot listen on %s: %s\n",
            cfg->path ? cfg->path : "", cfg->path ? ": " : "", cfg->host, strerror(errno));
    sigprocmask(SIG_SETMASK, &sv.old, NULL);
    return 1;
  }
  cfg->host_port = port;
  if (hooks->started(cfg, hooks->arg) != 0) {
    close(sv.reserved);
    sigprocmask(SIG_SETMASK, &sv.old, NULL);
    return 1;
  }
  sv.w = sig_calloc((size_t)sv.n, sizeof(*sv.w));
  SIG_INFO("workers", "starting count=%d host=%s port=%d", sv.n, cfg->host_addr, port);
  for (int i = 0; i < sv.n; i++) {
    sv.w[i].pid = spawn(cfg, i, sv.reserved, &sv.old, hooks);
    sv.w[i].started = sig_now_ms();
    SIG_INFO("workers", "worker started index=%d pid=%ld", i, (long)sv.w[i].pid);
  }
  sig_notify_ready(cfg->host);
  while (running(sv.w, sv.n) > 0 || !sv.stopping) {
    struct timespec tick = {0, 100 * 1000 * 1000};
    int sig = sigtimedwait(&set, NULL, &tick);
    uint64_t now = sig_now_ms();
    on_signal(&sv, sig, now);
    reap(&sv, now);
    tend(&sv, now);
  }
  SIG_INFO("workers", "stopped");
  close(sv.reserved);
  free(sv.w);
  sigprocmask(SIG_SETMASK, &sv.old, NULL);
  return sv.status;
}
