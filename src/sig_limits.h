/* Per-address limits: how many connections each client address holds and a token
 * bucket for its requests (HTTP requests and upgrades), in a table that stays
 * bounded (addresses with no connection whose bucket has refilled are forgotten;
 * when the table is full the least recently seen idle address goes first). Also
 * the token bucket itself, for a connection's message rate. No I/O: time comes in
 * as milliseconds. IPv6 addresses count by their /64 (sig_addr_key). */
#ifndef SIG_LIMITS_H
#define SIG_LIMITS_H

#include <stddef.h>
#include <stdint.h>

#include "sig_addr.h"

/* A token bucket: up to `burst` tokens, refilled at `rate` per second. Starts full. */
typedef struct {
  uint64_t stamp_ms; /* when it was last refilled; 0: never used (full) */
  uint64_t milli;    /* tokens x 1000 */
} sig_bucket_t;

/* Takes one token. Returns 1, or 0 when empty (and then *wait_ms, if not NULL, gets the
 * time until one is back). */
int sig_bucket_take(sig_bucket_t *b, uint64_t now_ms, uint32_t rate, uint32_t burst,
                    uint64_t *wait_ms);
/* Whether it would be full at now_ms. */
int sig_bucket_full(const sig_bucket_t *b, uint64_t now_ms, uint32_t rate, uint32_t burst);

typedef struct sig_limits_s sig_limits_t;

typedef struct {
  uint32_t max_conns_per_addr;
  uint32_t requests_per_s, requests_burst;
  size_t max_addrs; /* addresses tracked at most */
} sig_limits_config_t;

/* cfg is copied. */
sig_limits_t *sig_limits_new(const sig_limits_config_t *cfg);
/* Accepts NULL. */
void sig_limits_free(sig_limits_t *l);
/* New limits from now on (SIGHUP; cfg is copied; max_addrs keeps its value: the table's size
 * is fixed). Connections already counted stay counted; buckets fuller than a lowered burst
 * hold the new burst at their next request. */
void sig_limits_set(sig_limits_t *l, const sig_limits_config_t *cfg);

/* Counts one more connection from a. Returns 0, or SIG_EREFUSED (nothing counted) when a
 * holds max_conns_per_addr already. */
int sig_limits_conn_add(sig_limits_t *l, const sig_addr_t *a, uint64_t now_ms);
/* Counts one connection fewer (one that sig_limits_conn_add counted). */
void sig_limits_conn_remove(sig_limits_t *l, const sig_addr_t *a, uint64_t now_ms);

/* One request from a. Returns 0, or SIG_EREFUSED with the whole seconds until the next
 * would be allowed in *retry_s (at least 1). */
int sig_limits_request(sig_limits_t *l, const sig_addr_t *a, uint64_t now_ms, uint32_t *retry_s);

/* Forgets addresses with no connection whose bucket is full again. */
void sig_limits_sweep(sig_limits_t *l, uint64_t now_ms);

/* Addresses tracked now; connections counted for a. */
size_t sig_limits_addrs(const sig_limits_t *l);
uint32_t sig_limits_conns(const sig_limits_t *l, const sig_addr_t *a);

#endif
