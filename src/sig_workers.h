/* `[server] workers = N`: N worker processes that share the listening port (SO_REUSEPORT; the
 * kernel spreads connections over them), each a node of the cluster, supervised by the first
 * process: a worker that dies is logged and started again; SIGTERM, SIGINT and SIGHUP are
 * passed on. The supervisor itself serves nothing and uses no event loop. */
#ifndef SIG_WORKERS_H
#define SIG_WORKERS_H

#include "sig_config.h"

/* What the supervisor calls; arg is passed to each. */
typedef struct {
  /* A worker's life: its exit status. cfg->host_port is the reserved port. */
  int (*work)(sig_config_t *cfg, int index, void *arg);
  /* The port is reserved, no worker runs yet: open the log, tell the user. Non-zero: stop
   * (the caller said why). */
  int (*started)(sig_config_t *cfg, void *arg);
  /* SIGHUP, after the log is reopened and before the signal is passed on to the workers. */
  void (*reload)(sig_config_t *cfg, void *arg);
  void *arg;
} sig_workers_hooks_t;

/* Runs the supervisor: reserves the port (a bound, not listening, SO_REUSEPORT socket, so that
 * port 0 picks one port for all; a port another process listens on, even with SO_REUSEPORT, is
 * refused), calls hooks->started, forks cfg->workers workers, each calling hooks->work with
 * cfg->host_port set to that port and exiting with what it returns; and supervises them until
 * SIGTERM or SIGINT. Returns the exit status: 0 when every worker stopped cleanly. */
int sig_workers_run(sig_config_t *cfg, const sig_workers_hooks_t *hooks);

#endif
