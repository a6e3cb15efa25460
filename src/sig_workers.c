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

int sig_workers_run(sig_config_t *cfg, const sig_workers_hooks_t *hooks) {
  int n = (int)cfg->workers, port, stopping = 0, status = 0;
  uint64_t stop_deadline = 0;
  char text[64];
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  sigprocmask(SIG_BLOCK, &set, &old);
  signal(SIGPIPE, SIG_IGN);
  int reserved = reserve_port(cfg, &port);
  if (reserved < 0) { /* the log is not open: it may be the log of the instance on the port */
    fprintf(stderr, "signal-server: %s%sserver.host: cannot listen on %s: %s\n",
            cfg->path ? cfg->path : "", cfg->path ? ": " : "", cfg->host, strerror(errno));
    sigprocmask(SIG_SETMASK, &old, NULL);
    return 1;
  }
  cfg->host_port = port;
  if (hooks->started(cfg, hooks->arg) != 0) {
    close(reserved);
    sigprocmask(SIG_SETMASK, &old, NULL);
    return 1;
  }
  worker_t *w = sig_calloc((size_t)n, sizeof(*w));
  SIG_INFO("workers", "starting count=%d host=%s port=%d", n, cfg->host_addr, port);
  for (int i = 0; i < n; i++) {
    w[i].pid = spawn(cfg, i, reserved, &old, hooks);
    w[i].started = sig_now_ms();
    SIG_INFO("workers", "worker started index=%d pid=%ld", i, (long)w[i].pid);
  }
  sig_notify_ready(cfg->host);
  while (running(w, n) > 0 || !stopping) {
    struct timespec tick = {0, 100 * 1000 * 1000};
    int sig = sigtimedwait(&set, NULL, &tick);
    uint64_t now = sig_now_ms();
    if (sig == SIGTERM || sig == SIGINT) {
      if (!stopping) {
        SIG_INFO("workers", "received %s: stopping %d workers", strsignal(sig), running(w, n));
        sig_notify_stopping();
        stopping = 1;
        stop_deadline = now + (uint64_t)(cfg->shutdown_timeout_s + STOP_GRACE_S) * 1000;
        signal_all(w, n, SIGTERM);
      }
    } else if (sig == SIGHUP) {
      sig_notify_reloading();
      sig_log_reopen();
      hooks->reload(cfg, hooks->arg);
      signal_all(w, n, SIGHUP);
      sig_notify_ready(cfg->host);
    }
    /* reap every worker that exited */
    int st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
      int i = find(w, n, pid);
      if (i < 0) continue;
      w[i].pid = 0;
      if (stopping) {
        if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) status = 1;
        SIG_INFO("workers", "worker stopped index=%d pid=%ld how=\"%s\"", i, (long)pid,
                 describe(st, text, sizeof(text)));
        continue;
      }
      int young = now - w[i].started < YOUNG_MS;
      w[i].restart_at = now + (young ? RESTART_DELAY_MS : 0);
      SIG_ERROR("workers", "worker died index=%d pid=%ld how=\"%s\" restart_in_ms=%d", i, (long)pid,
                describe(st, text, sizeof(text)), young ? RESTART_DELAY_MS : 0);
    }
    if (stopping) {
      if (now > stop_deadline && running(w, n) > 0) {
        SIG_WARN("workers", "workers still running after the shutdown timeout: killing %d",
                 running(w, n));
        signal_all(w, n, SIGKILL);
        status = 1;
        stop_deadline = UINT64_MAX;
      }
      continue;
    }
    for (int i = 0; i < n; i++)
      if (w[i].pid == 0 && w[i].restart_at != 0 && now >= w[i].restart_at) {
        w[i].restart_at = 0;
        w[i].pid = spawn(cfg, i, reserved, &old, hooks);
        w[i].started = now;
        SIG_INFO("workers", "worker restarted index=%d pid=%ld", i, (long)w[i].pid);
      }
  }
  SIG_INFO("workers", "stopped");
  close(reserved);
  free(w);
  sigprocmask(SIG_SETMASK, &old, NULL);
  return status;
}
