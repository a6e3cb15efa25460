/* `[server] workers = N`: N worker processes that share the listening port (SO_REUSEPORT; the
 * kernel spreads connections over them), each a node of the cluster, supervised by the first
 * process: a worker that dies is logged and started again; SIGTERM, SIGINT and SIGHUP are
 * passed on. The supervisor itself serves nothing and uses no event loop. */
#ifndef SIG_WORKERS_H
#define SIG_WORKERS_H

#include "sig_config.h"

/* Runs the supervisor: reserves the port (a bound, not listening, SO_REUSEPORT socket, so that
 * port 0 picks one port for all), forks cfg->workers workers, each calling
 * work(cfg, index, arg) with cfg->host_port set to that port and exiting with what it returns;
 * and supervises them until SIGTERM or SIGINT. The log must be open. Returns the exit status:
 * 0 when every worker stopped cleanly. */
int sig_workers_run(sig_config_t *cfg, int (*work)(sig_config_t *cfg, int index, void *arg),
                    void *arg);

#endif
