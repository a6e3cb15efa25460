/* The per-address table: a hash map keyed by the address's bytes, and a list of the
 * addresses that hold no connection, least recently seen first, from which the sweep
 * and a full table take. */
#include "sig_limits.h"

#include <stdlib.h>
#include <string.h>

#include "sig_list.h"
#include "sig_map.h"
#include "sig_util.h"

int sig_bucket_full(const sig_bucket_t *b, uint64_t now_ms, uint32_t rate, uint32_t burst) {
  if (b->stamp_ms == 0) return 1;
  uint64_t elapsed = now_ms > b->stamp_ms ? now_ms - b->stamp_ms : 0;
  return b->milli + elapsed * rate >= (uint64_t)burst * 1000;
}

int sig_bucket_take(sig_bucket_t *b, uint64_t now_ms, uint32_t rate, uint32_t burst,
                    uint64_t *wait_ms) {
  uint64_t cap = (uint64_t)burst * 1000;
  if (b->stamp_ms == 0) { /* first use: full */
    b->milli = cap;
  } else if (now_ms > b->stamp_ms) {
    uint64_t elapsed = now_ms - b->stamp_ms; /* tokens x 1000 per ms = rate */
    b->milli = elapsed >= cap / (rate ? rate : 1) + 1 ? cap : b->milli + elapsed * rate;
  }
  if (b->milli > cap) b->milli = cap; /* also when burst was lowered since (SIGHUP) */
  b->stamp_ms = now_ms > 0 ? now_ms : 1;
  if (b->milli >= 1000) {
    b->milli -= 1000;
    return 1;
  }
  if (wait_ms != NULL) *wait_ms = (1000 - b->milli + rate - 1) / (rate ? rate : 1);
  return 0;
}

typedef struct {
  sig_map_node_t node;
  sig_list_t idle; /* in the idle list while it holds no connection */
  sig_bucket_t bucket;
  uint32_t conns;
  char key[17]; /* family byte, then the address bytes */
} entry_t;

struct sig_limits_s {
  sig_limits_config_t cfg;
  sig_map_t map;
  sig_list_t idle; /* least recently seen first */
};

sig_limits_t *sig_limits_new(const sig_limits_config_t *cfg) {
  sig_limits_t *l = sig_calloc(1, sizeof(*l));
  l->cfg = *cfg;
  sig_map_init(&l->map);
  sig_list_init(&l->idle);
  return l;
}

void sig_limits_set(sig_limits_t *l, const sig_limits_config_t *cfg) {
  size_t max_addrs = l->cfg.max_addrs;
  l->cfg = *cfg;
  l->cfg.max_addrs = max_addrs;
}

static void drop(sig_limits_t *l, entry_t *e) {
  sig_list_remove(&e->idle);
  sig_map_remove(&l->map, &e->node);
  free(e);
}

void sig_limits_free(sig_limits_t *l) {
  if (l == NULL) return;
  for (sig_map_node_t *n = sig_map_first(&l->map), *next; n != NULL; n = next) {
    next = sig_map_next(&l->map, n);
    drop(l, SIG_CONTAINER_OF(n, entry_t, node));
  }
  sig_map_free(&l->map);
  free(l);
}

static size_t make_key(const sig_addr_t *a, char key[17]) {
  sig_addr_t k;
  sig_addr_key(a, &k);
  key[0] = (char)k.family;
  memcpy(key + 1, k.bytes, 16);
  return 17;
}

static entry_t *find(sig_limits_t *l, const sig_addr_t *a) {
  char key[17];
  sig_map_node_t *n = sig_map_get(&l->map, key, make_key(a, key));
  return n != NULL ? SIG_CONTAINER_OF(n, entry_t, node) : NULL;
}

/* The entry for a, made if missing (the table full: its least recently seen idle address goes).
 * Moves it to the idle list's tail when it is idle: it was just seen. */
static entry_t *get(sig_limits_t *l, const sig_addr_t *a) {
  entry_t *e = find(l, a);
  if (e == NULL) {
    if (l->map.count >= l->cfg.max_addrs && !sig_list_empty(&l->idle))
      drop(l, SIG_LIST_DATA(l->idle.next, entry_t, idle));
    e = sig_calloc(1, sizeof(*e));
    sig_list_init(&e->idle);
    sig_map_put(&l->map, &e->node, e->key, make_key(a, e->key));
  }
  if (e->conns == 0) {
    sig_list_remove(&e->idle);
    sig_list_append(&l->idle, &e->idle);
  }
  return e;
}

int sig_limits_conn_add(sig_limits_t *l, const sig_addr_t *a, uint64_t now_ms) {
  entry_t *e = get(l, a);
  (void)now_ms;
  if (e->conns >= l->cfg.max_conns_per_addr) return SIG_EREFUSED;
  if (e->conns++ == 0) sig_list_remove(&e->idle);
  return 0;
}

void sig_limits_conn_remove(sig_limits_t *l, const sig_addr_t *a, uint64_t now_ms) {
  entry_t *e = find(l, a);
  (void)now_ms;
  if (e == NULL || e->conns == 0) return;
  if (--e->conns == 0) sig_list_append(&l->idle, &e->idle);
}

int sig_limits_request(sig_limits_t *l, const sig_addr_t *a, uint64_t now_ms, uint32_t *retry_s) {
  entry_t *e = get(l, a);
  uint64_t wait_ms = 0;
  if (sig_bucket_take(&e->bucket, now_ms, l->cfg.requests_per_s, l->cfg.requests_burst, &wait_ms))
    return 0;
  *retry_s = (uint32_t)((wait_ms + 999) / 1000);
  if (*retry_s == 0) *retry_s = 1;
  return SIG_EREFUSED;
}

void sig_limits_sweep(sig_limits_t *l, uint64_t now_ms) {
  while (!sig_list_empty(&l->idle)) {
    entry_t *e = SIG_LIST_DATA(l->idle.next, entry_t, idle);
    if (!sig_bucket_full(&e->bucket, now_ms, l->cfg.requests_per_s, l->cfg.requests_burst)) break;
    drop(l, e);
  }
}

size_t sig_limits_addrs(const sig_limits_t *l) {
  return l->map.count;
}

uint32_t sig_limits_conns(const sig_limits_t *l, const sig_addr_t *a) {
  entry_t *e = find((sig_limits_t *)l, a);
  return e != NULL ? e->conns : 0;
}
