/* The cluster on Redis (docs/CLUSTER.md): a directory of which node holds which domain, a
 * liveness key per node, and a pub/sub channel per node over which nodes send each other
 * node messages. It is the router's sig_router_cluster_t; the router decides, this only
 * carries. Two hiredis connections on the libuv loop (commands, and the subscription), with
 * reconnection and backoff; every registration is published again when Redis comes back. */
#ifndef SIG_CLUSTER_H
#define SIG_CLUSTER_H

#include <stddef.h>

#include "sig_config.h"
#include "sig_router.h"

struct uv_loop_s;
typedef struct sig_cluster_s sig_cluster_t;

/* From cfg's [cluster] (cfg borrowed for the cluster's life; address is the listener's, kept
 * in the node's liveness key). Starts connecting; never blocks on Redis. Returns 0, or
 * SIG_ECONFIG with the reason in err (the password file cannot be read). */
int sig_cluster_new(sig_cluster_t **out, struct uv_loop_s *loop, const sig_config_t *cfg,
                    const char *address, char *err, size_t errlen);

/* Puts r in the cluster: r's cluster ops are this one, and node messages go to r. */
void sig_cluster_attach(sig_cluster_t *c, sig_router_t *r);

/* This node's id. */
const char *sig_cluster_node_id(const sig_cluster_t *c);
/* Whether Redis answers now (GET /readyz). */
int sig_cluster_up(const sig_cluster_t *c);

/* Leaves the cluster: the node's liveness key goes, what is queued is flushed (registrations
 * are released as their sessions close, before this), then done(arg) runs (at most 1 s). */
void sig_cluster_shutdown(sig_cluster_t *c, void (*done)(void *arg), void *arg);

/* Frees it; every callback still owed runs first (as "unavailable"). Accepts NULL. The
 * memory of its handles goes when the loop runs their close callbacks. */
void sig_cluster_free(sig_cluster_t *c);

#endif
