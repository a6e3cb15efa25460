/* The cluster engine on Redis. Keys and channels (prefix P = cluster.key_prefix):
 *   P d:DOMAIN  "NODE REG"  which node holds DOMAIN, as its registration number REG
 *   P n:NODE    ADDRESS     NODE is alive (PX node_ttl_s, refreshed every third of it)
 *   P c:NODE    channel     node messages for NODE (sig_nodemsg)
 * Every decision that needs two keys at once is a Lua script, so it is atomic: a claim (with
 * the duplicate policy and the liveness of the current owner), a release (only our own
 * registration), a route (look up a domain's node and publish to it), and a liveness check.
 * A command unanswered for request_timeout_ms means Redis is stuck: both connections are
 * dropped (their callbacks run as "unavailable") and made again, with backoff. */
#include "sig_cluster.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>
/* hiredis: only this file sees it */
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "sig_list.h"
#include "sig_log.h"
#include "sig_metrics.h"
#include "sig_nodemsg.h"
#include "sig_util.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 1000
#define CHECK_MS 100      /* stalls and reconnections */
#define LATE_CHECK_MS 500 /* a check this late (of 100 ms) judges no stall: see on_check */
#define LIVENESS_MS 1000  /* nodes we have exchanges with */
#define SHUTDOWN_MS 1000
#define SWEEP_BUDGET "4096" /* directory entries one sweep call may remove */
#define PASSWORD_MAX 512

/* ---- the scripts */

/* KEYS[1] the domain's entry; ARGV prefix, me, reg, mode (0 replace, 1 reject, 2 restore),
 * domain. Returns 1 won, 0 taken (reject) or lost (restore). A live owner elsewhere that loses
 * the name is told (a rep message). */
static const char claim_lua[] =
    "local p, me, reg, mode, dom = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]\n"
    "local cur = redis.call('GET', KEYS[1])\n"
    "local n, r\n"
    "if cur then n, r = string.match(cur, '^(%S+) (%d+)$') end\n"
    "if n == me and r == reg then return 1 end\n"
    "local alive = n ~= nil and redis.call('EXISTS', p .. 'n:' .. n) == 1 and\n"
    "  redis.call('PUBSUB', 'NUMSUB', p .. 'c:' .. n)[2] > 0\n"
    "if alive and mode == '1' then return 0 end\n"
    "if alive and mode == '2' and n ~= me then return 0 end\n"
    "redis.call('SET', KEYS[1], me .. ' ' .. reg)\n"
    "redis.call('SADD', p .. 's:' .. me, dom)\n"
    "if n ~= nil and n ~= me then redis.call('SREM', p .. 's:' .. n, dom) end\n"
    "if alive and n ~= me then\n"
    "  redis.call('PUBLISH', p .. 'c:' .. n, '{\"op\":\"rep\",\"n\":\"' .. me .. '\",\"to\":\"' "
    "..\n"
    "    dom .. '\",\"reg\":' .. r .. '}')\n"
    "end\n"
    "return 1\n";

/* KEYS[1] the entry; ARGV "me reg", prefix, me, domain: removed only if it is still ours. */
static const char release_lua[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
    "  redis.call('DEL', KEYS[1])\n"
    "  redis.call('SREM', ARGV[2] .. 's:' .. ARGV[3], ARGV[4])\n"
    "end\n"
    "return 1\n";

/* KEYS[1] the entry of the domain to reach, KEYS[2] (optional) one that must be registered
 * too; ARGV prefix, message. Returns the node it was published to, 0 (not registered, or its
 * node is gone: the stale entry goes), or 2 (KEYS[2] is not registered). */
static const char route_lua[] =
    "local p = ARGV[1]\n"
    "local function owner(key)\n"
    "  local cur = redis.call('GET', key)\n"
    "  if not cur then return nil end\n"
    "  local n = string.match(cur, '^(%S+) ')\n"
    "  if n == nil or redis.call('EXISTS', p .. 'n:' .. n) == 0 then\n"
    "    redis.call('DEL', key)\n"
    "    if n ~= nil then redis.call('SREM', p .. 's:' .. n, string.sub(key, #p + 3)) end\n"
    "    return nil\n"
    "  end\n"
    "  return n\n"
    "end\n"
    "if #KEYS > 1 and owner(KEYS[2]) == nil then return 2 end\n"
    "local n = owner(KEYS[1])\n"
    "if n == nil then return 0 end\n"
    "if redis.call('PUBLISH', p .. 'c:' .. n, ARGV[2]) == 0 then return 0 end\n"
    "return n\n";

/* ARGV prefix, nodes...: the nodes that are gone (no liveness key, or nobody listening). */
static const char dead_lua[] =
    "local p, out = ARGV[1], {}\n"
    "for i = 2, #ARGV do\n"
    "  local n = ARGV[i]\n"
    "  if redis.call('EXISTS', p .. 'n:' .. n) == 0 or\n"
    "     redis.call('PUBSUB', 'NUMSUB', p .. 'c:' .. n)[2] == 0 then out[#out + 1] = n end\n"
    "end\n"
    "return out\n";

/* ARGV prefix, budget: the nodes of the registry whose liveness key has expired lose the
 * directory entries they still held (P s:NODE lists them), at most budget of them in one call so
 * that no call holds Redis for long (a call of 20 dead nodes' 400,000 entries took seconds, and
 * every other client got BUSY meanwhile); a node with none left leaves the registry. Returns
 * {1 when the budget ran out (more to do) else 0, the nodes that left...}. */
static const char sweep_lua[] =
    "local p, budget, out = ARGV[1], tonumber(ARGV[2]), {0}\n"
    "for _, n in ipairs(redis.call('SMEMBERS', p .. 'nodes')) do\n"
    "  if budget <= 0 then out[1] = 1 break end\n"
    "  if redis.call('EXISTS', p .. 'n:' .. n) == 0 then\n"
    "    local doms = redis.call('SPOP', p .. 's:' .. n, budget)\n"
    "    budget = budget - #doms\n"
    "    for _, dom in ipairs(doms) do\n"
    "      local cur = redis.call('GET', p .. 'd:' .. dom)\n"
    "      if cur and string.sub(cur, 1, #n + 1) == n .. ' ' then\n"
    "        redis.call('DEL', p .. 'd:' .. dom)\n"
    "      end\n"
    "    end\n"
    "    if redis.call('SCARD', p .. 's:' .. n) == 0 then\n"
    "      redis.call('SREM', p .. 'nodes', n)\n"
    "      out[#out + 1] = n\n"
    "    else\n"
    "      out[1] = 1\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return out\n";

enum { S_CLAIM, S_RELEASE, S_ROUTE, S_DEAD, S_SWEEP, S_COUNT };
static const char *const scripts[S_COUNT] = {claim_lua, release_lua, route_lua, dead_lua,
                                             sweep_lua};

/* ---- state */

enum {
  K_HANDSHAKE,
  K_SCRIPT,
  K_SUBSCRIBE,
  K_CLAIM,
  K_ROUTE,
  K_DEAD,
  K_SWEEP,
  K_BEAT,
  K_PING,
  K_PLAIN
};

typedef struct link_s link_t;

typedef struct {
  sig_list_t link; /* in its link's outstanding list, in send order */
  link_t *l;
  int kind, script;
  uint64_t sent_ms;
  uint64_t sent_ns; /* K_PING: for the round trip */
  void (*claim_done)(void *arg, int rc);
  void (*route_done)(void *arg, int rc, const char *node);
  void *arg;
} cmd_t;

struct link_s {
  sig_cluster_t *c;
  redisAsyncContext *ac;
  int is_sub;
  int ready;
  int handshake_left;  /* replies the handshake still waits for */
  uint64_t started_ms; /* when the connection was begun */
  uint64_t replied_ms; /* the last reply or message: a link that answers is not stalled */
  sig_list_t outstanding;
  cmd_t *subscription; /* lives while subscribed: every message comes through it */
};

struct sig_cluster_s {
  uv_loop_t *loop;
  const sig_config_t *cfg;
  sig_router_t *router;
  link_t cmd, sub;
  uv_timer_t check, heartbeat, liveness, retry;
  int handles_open;
  int up, was_up, shutting_down, freeing;
  int beats; /* heartbeats answered since up */
  uint64_t backoff_ms, up_since;
  char shas[S_COUNT][41];
  char password[PASSWORD_MAX + 1];
  size_t password_len;
  char node[SIG_NODE_ID_MAX + 1];
  char address[80];
  char prefix[80];
  char channel[160];
  char node_key[160];
  char nodes_key[160]; /* the registry of nodes, for the sweep */
  uint64_t last_sweep, last_ping;
  uint64_t last_check; /* when on_check last ran: a late one judges no stall */
  sig_redis_target_t target;
  void (*shutdown_done)(void *arg);
  void *shutdown_arg;
  uint64_t shutdown_started;
};

static void connect_links(sig_cluster_t *c);
static void drop_links(sig_cluster_t *c, const char *why);

static uint64_t now_ms(void) {
  return sig_now_ms();
}

static void set_up(sig_cluster_t *c, int up) {
  if (c->up == up) return;
  c->up = up;
  if (up) {
    c->up_since = now_ms();
    c->backoff_ms = BACKOFF_MIN_MS;
    SIG_INFO("cluster", "redis up node=%s", c->node);
  } else {
    SIG_WARN("cluster", "redis down node=%s", c->node);
  }
}

/* ---- commands */

static void on_reply(redisAsyncContext *ac, void *r, void *privdata);

static cmd_t *new_cmd(link_t *l, int kind) {
  cmd_t *k = sig_calloc(1, sizeof(*k));
  k->l = l;
  k->kind = kind;
  k->sent_ms = now_ms();
  sig_list_append(&l->outstanding, &k->link);
  return k;
}

/* Sends argv on link l; the reply goes to on_reply with k. Returns 0, or -1 (k is freed and
 * its callback is not run). */
static int send_argv(link_t *l, cmd_t *k, int argc, const char **argv, const size_t *lens) {
  if (l->ac == NULL || redisAsyncCommandArgv(l->ac, on_reply, k, argc, argv, lens) != REDIS_OK) {
    sig_list_remove(&k->link);
    free(k);
    return -1;
  }
  return 0;
}

/* EVALSHA of script s with nkeys keys then args, on the command link. */
static int eval(sig_cluster_t *c, cmd_t *k, int s, int nkeys, const char **keys,
                const size_t *key_lens, int nargs, const char **args, const size_t *arg_lens) {
  const char *argv[16];
  size_t lens[16];
  char nk[4];
  int n = 0;
  snprintf(nk, sizeof(nk), "%d", nkeys);
  argv[n] = "EVALSHA", lens[n++] = 7;
  argv[n] = c->shas[s], lens[n++] = 40;
  argv[n] = nk, lens[n++] = strlen(nk);
  for (int i = 0; i < nkeys; i++) argv[n] = keys[i], lens[n++] = key_lens[i];
  for (int i = 0; i < nargs && n < 16; i++) argv[n] = args[i], lens[n++] = arg_lens[i];
  k->script = s;
  return send_argv(&c->cmd, k, n, argv, lens);
}

static void plain(sig_cluster_t *c, int argc, const char **argv) {
  size_t lens[8];
  for (int i = 0; i < argc; i++) lens[i] = strlen(argv[i]);
  send_argv(&c->cmd, new_cmd(&c->cmd, K_PLAIN), argc, argv, lens);
}

/* The liveness key, written again; its old value comes back (K_BEAT): none means it had expired,
 * so the others may have swept our entries meanwhile. */
static void heartbeat(sig_cluster_t *c) {
  char ttl[24];
  snprintf(ttl, sizeof(ttl), "%" PRId64, c->cfg->cluster_node_ttl_s * 1000);
  const char *argv[] = {"SET", c->node_key, c->address, "PX", ttl, "GET"};
  size_t lens[6];
  for (int i = 0; i < 6; i++) lens[i] = strlen(argv[i]);
  send_argv(&c->cmd, new_cmd(&c->cmd, K_BEAT), 6, argv, lens);
  const char *reg[] = {"SADD", c->nodes_key, c->node};
  plain(c, 3, reg);
}

static void both_ready(sig_cluster_t *c) {
  if (!c->cmd.ready || !c->sub.ready || c->up) return;
  set_up(c, 1);
  c->beats = 0;
  heartbeat(c);
  /* After an absence (or a Redis that restarted empty) the directory may have lost us. */
  if (c->router != NULL) sig_router_republish(c->router);
  c->was_up = 1;
}

static void handshake_step(link_t *l, redisReply *reply) {
  sig_cluster_t *c = l->c;
  if (reply == NULL) return;              /* the connection went: said where it went */
  if (reply->type == REDIS_REPLY_ERROR) { /* a wrong password, a database out of range */
    SIG_EVENT(SIG_LOG_ERROR, "cluster", "handshake", "redis refused the handshake",
              SIG_KV("link", l->is_sub ? "sub" : "cmd"), SIG_KV("error", reply->str));
    return; /* the stall check starts again */
  }
  if (--l->handshake_left == 0) {
    l->ready = 1;
    both_ready(c);
  }
}

static void on_message(sig_cluster_t *c, redisReply *reply) {
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3) return;
  redisReply *kind = reply->element[0], *payload = reply->element[2];
  if (kind->type != REDIS_REPLY_STRING) return;
  if (strcmp(kind->str, "subscribe") == 0) {
    handshake_step(&c->sub, reply);
    return;
  }
  if (strcmp(kind->str, "message") != 0 || payload->type != REDIS_REPLY_STRING) return;
  if (c->router != NULL) sig_router_node_message(c->router, payload->str, payload->len);
}

/* A claim script's reply: 0 won, SIG_EREFUSED taken by another live node, -1 failed. */
static int claim_result(const redisReply *reply, int failed) {
  if (failed) return -1;
  return reply->type == REDIS_REPLY_INTEGER && reply->integer == 1 ? 0 : SIG_EREFUSED;
}

/* A route script's reply to its waiter: the node's id (1 and a string), a count, or -1. */
static void route_result(const cmd_t *k, const redisReply *reply, int failed) {
  if (k->route_done == NULL) return;
  if (failed)
    k->route_done(k->arg, -1, NULL);
  else if (reply->type == REDIS_REPLY_STRING)
    k->route_done(k->arg, 1, reply->str);
  else
    k->route_done(k->arg, reply->type == REDIS_REPLY_INTEGER ? (int)reply->integer : -1, NULL);
}

/* The liveness check's reply (from, the first node in it): the nodes found dead, each gone from
 * the router. */
static void dead_nodes(sig_cluster_t *c, const redisReply *reply, size_t from) {
  if (reply->type != REDIS_REPLY_ARRAY || c->router == NULL) return;
  for (size_t i = from; i < reply->elements; i++)
    if (reply->element[i]->type == REDIS_REPLY_STRING)
      sig_router_node_gone(c->router, reply->element[i]->str);
}

/* The sweep's reply: {more to do, the nodes that left...}. With more to do, the next liveness
 * tick sweeps again rather than node_ttl_s later. */
static void sweep_result(sig_cluster_t *c, const redisReply *reply) {
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1) return;
  if (reply->element[0]->type == REDIS_REPLY_INTEGER && reply->element[0]->integer == 1)
    c->last_sweep = 0;
  dead_nodes(c, reply, 1);
}

/* The heartbeat's reply: the key's old value. None after the first beat: it had expired (this
 * node was too slow to write it in time, or Redis was), and a sweep may have removed the
 * registrations it held; they are published again. */
static void beat_result(sig_cluster_t *c, const redisReply *reply) {
  if (c->beats++ == 0 || reply->type != REDIS_REPLY_NIL || c->router == NULL) return;
  SIG_WARN("cluster", "liveness key had expired: publishing the registrations again node=%s",
           c->node);
  sig_router_republish(c->router);
}

static void on_reply(redisAsyncContext *ac, void *r, void *privdata) {
  cmd_t *k = privdata;
  redisReply *reply = r;
  link_t *l = k->l;
  sig_cluster_t *c = l->c;
  (void)ac;
  if (reply != NULL) l->replied_ms = now_ms();
  if (k->kind == K_SUBSCRIBE && reply != NULL) { /* stays for every message */
    if (!l->ready) sig_list_remove(&k->link), sig_list_init(&k->link);
    on_message(c, reply);
    return;
  }
  sig_list_remove(&k->link);
  int failed = reply == NULL || reply->type == REDIS_REPLY_ERROR;
  if (reply != NULL && reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOSCRIPT", 8) == 0)
    drop_links(c, "scripts flushed"); /* loaded again on the next connection */
  switch (k->kind) {
    case K_HANDSHAKE: handshake_step(l, reply); break;
    case K_SCRIPT:
      if (!failed && reply->type == REDIS_REPLY_STRING && reply->len == 40)
        memcpy(c->shas[k->script], reply->str, 41);
      handshake_step(l, failed ? NULL : reply);
      break;
    case K_SUBSCRIBE: break; /* reply == NULL: the link went */
    case K_CLAIM: k->claim_done(k->arg, claim_result(reply, failed)); break;
    case K_ROUTE: route_result(k, reply, failed); break;
    case K_PING: /* the round trip, for /metrics; a quiet link is also checked this way */
      if (!failed) sig_metrics_observe(SIG_H_REDIS_RTT, (double)(uv_hrtime() - k->sent_ns) / 1e9);
      break;
    case K_DEAD:
      if (!failed) dead_nodes(c, reply, 0);
      break;
    case K_SWEEP:
      if (!failed) sweep_result(c, reply);
      break;
    case K_BEAT:
      if (!failed && c->up) beat_result(c, reply);
      break;
    default: break;
  }
  free(k);
}

/* ---- the router's operations */

static int op_up(void *ctx) {
  sig_cluster_t *c = ctx;
  return c->up && !c->shutting_down;
}

static size_t dir_key(const sig_cluster_t *c, const char *domain, char *out, size_t cap) {
  return (size_t)snprintf(out, cap, "%sd:%s", c->prefix, domain);
}

static int op_claim(void *ctx, const char *domain, uint64_t reg, int mode,
                    void (*done)(void *arg, int rc), void *arg) {
  sig_cluster_t *c = ctx;
  char key[256], regs[24], modes[4];
  if (!c->up) return -1;
  size_t klen = dir_key(c, domain, key, sizeof(key));
  snprintf(regs, sizeof(regs), "%" PRIu64, reg);
  snprintf(modes, sizeof(modes), "%d", mode);
  const char *keys[] = {key};
  const char *args[] = {c->prefix, c->node, regs, modes, domain};
  size_t args_len[5];
  for (int i = 0; i < 5; i++) args_len[i] = strlen(args[i]);
  cmd_t *k = new_cmd(&c->cmd, K_CLAIM);
  k->claim_done = done;
  k->arg = arg;
  return eval(c, k, S_CLAIM, 1, keys, &klen, 5, args, args_len);
}

static void op_release(void *ctx, const char *domain, uint64_t reg) {
  sig_cluster_t *c = ctx;
  char key[256], value[SIG_NODE_ID_MAX + 24];
  if (!c->up || reg == 0) return; /* an entry left behind goes with its node's liveness */
  size_t klen = dir_key(c, domain, key, sizeof(key));
  const char *keys[] = {key};
  const char *args[] = {value, c->prefix, c->node, domain};
  size_t lens[] = {(size_t)snprintf(value, sizeof(value), "%s %" PRIu64, c->node, reg),
                   strlen(c->prefix), strlen(c->node), strlen(domain)};
  eval(c, new_cmd(&c->cmd, K_PLAIN), S_RELEASE, 1, keys, &klen, 4, args, lens);
}

static int op_route(void *ctx, const char *domain, const char *also, const char *msg, size_t len,
                    void (*done)(void *arg, int rc, const char *node), void *arg) {
  sig_cluster_t *c = ctx;
  char key[256], key2[256];
  if (!c->up) return -1;
  size_t lens[2];
  lens[0] = dir_key(c, domain, key, sizeof(key));
  if (also != NULL) lens[1] = dir_key(c, also, key2, sizeof(key2));
  const char *keys[] = {key, key2};
  const char *args[] = {c->prefix, msg};
  size_t args_len[] = {strlen(c->prefix), len};
  cmd_t *k = new_cmd(&c->cmd, K_ROUTE);
  k->route_done = done;
  k->arg = arg;
  return eval(c, k, S_ROUTE, also != NULL ? 2 : 1, keys, lens, 2, args, args_len);
}

static int op_send(void *ctx, const char *node, const char *msg, size_t len) {
  sig_cluster_t *c = ctx;
  char channel[160];
  if (!c->up) return -1;
  int n = snprintf(channel, sizeof(channel), "%sc:%s", c->prefix, node);
  const char *argv[] = {"PUBLISH", channel, msg};
  size_t lens[] = {7, (size_t)n, len};
  return send_argv(&c->cmd, new_cmd(&c->cmd, K_PLAIN), 3, argv, lens);
}

/* ---- hiredis on the loop

 * Debian's hiredis 0.14 ships a libuv adapter whose poll callback drops events that come with
 * an error status, so a refused or reset connection is never noticed (its connect hangs
 * until our stall check, 2 s by default). This is that adapter with upstream's later fix: an
 * error status wakes hiredis for the events it asked for, and hiredis finds the error. */
typedef struct {
  redisAsyncContext *ac;
  uv_poll_t handle;
  int events;
} poll_t;

static void on_poll(uv_poll_t *h, int status, int events) {
  poll_t *p = h->data;
  int ev = status != 0 ? p->events : events;
  if (p->ac != NULL && (ev & UV_READABLE)) redisAsyncHandleRead(p->ac);
  if (p->ac != NULL && (ev & UV_WRITABLE)) redisAsyncHandleWrite(p->ac);
}

static void poll_update(poll_t *p, int add, int ev) {
  p->events = add ? p->events | ev : p->events & ~ev;
  if (p->events != 0)
    uv_poll_start(&p->handle, p->events, on_poll);
  else
    uv_poll_stop(&p->handle);
}

static void add_read(void *arg) {
  poll_update(arg, 1, UV_READABLE);
}
static void del_read(void *arg) {
  poll_update(arg, 0, UV_READABLE);
}
static void add_write(void *arg) {
  poll_update(arg, 1, UV_WRITABLE);
}
static void del_write(void *arg) {
  poll_update(arg, 0, UV_WRITABLE);
}

static void on_poll_closed(uv_handle_t *h) {
  free(h->data);
}

static void cleanup(void *arg) {
  poll_t *p = arg;
  p->ac = NULL; /* hiredis is freeing the context */
  uv_close((uv_handle_t *)&p->handle, on_poll_closed);
}

static int attach(redisAsyncContext *ac, uv_loop_t *loop) {
  poll_t *p = sig_calloc(1, sizeof(*p));
  if (uv_poll_init(loop, &p->handle, ac->c.fd) != 0) {
    free(p);
    return -1;
  }
  p->ac = ac;
  p->handle.data = p;
  ac->ev.data = p;
  ac->ev.addRead = add_read;
  ac->ev.delRead = del_read;
  ac->ev.addWrite = add_write;
  ac->ev.delWrite = del_write;
  ac->ev.cleanup = cleanup;
  return 0;
}

/* ---- connections */

static void on_connect(const redisAsyncContext *ac, int status);
static void on_disconnect(const redisAsyncContext *ac, int status);

static void start_handshake(link_t *l) {
  sig_cluster_t *c = l->c;
  char db[16];
  l->handshake_left = 0;
  if (c->password_len > 0) {
    const char *argv[] = {"AUTH", c->password};
    size_t lens[] = {4, c->password_len};
    l->handshake_left++;
    send_argv(l, new_cmd(l, K_HANDSHAKE), 2, argv, lens);
  }
  if (l->is_sub) {
    const char *argv[] = {"SUBSCRIBE", c->channel};
    size_t lens[] = {9, strlen(c->channel)};
    l->handshake_left++;
    l->subscription = new_cmd(l, K_SUBSCRIBE);
    if (send_argv(l, l->subscription, 2, argv, lens) != 0) l->subscription = NULL;
    return;
  }
  snprintf(db, sizeof(db), "%d", c->target.db);
  const char *sel[] = {"SELECT", db};
  size_t sel_lens[] = {6, strlen(db)};
  l->handshake_left++;
  send_argv(l, new_cmd(l, K_HANDSHAKE), 2, sel, sel_lens);
  for (int s = 0; s < S_COUNT; s++) {
    const char *argv[] = {"SCRIPT", "LOAD", scripts[s]};
    size_t lens[] = {6, 4, strlen(scripts[s])};
    cmd_t *k = new_cmd(l, K_SCRIPT);
    k->script = s;
    l->handshake_left++;
    send_argv(l, k, 3, argv, lens);
  }
}

static void connect_link(link_t *l) {
  sig_cluster_t *c = l->c;
  const sig_redis_target_t *t = &c->target;
  redisAsyncContext *ac =
      t->host[0] != '\0' ? redisAsyncConnect(t->host, t->port) : redisAsyncConnectUnix(t->path);
  if (ac == NULL || ac->err) {
    SIG_EVENT(SIG_LOG_WARN, "cluster", "connect", "cannot connect to redis",
              SIG_KV("error", ac != NULL ? ac->errstr : "out of memory"));
    if (ac != NULL) redisAsyncFree(ac);
    return;
  }
  ac->data = l;
  if (attach(ac, c->loop) != 0) {
    redisAsyncFree(ac);
    return;
  }
  redisAsyncSetConnectCallback(ac, on_connect);
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  l->ac = ac;
  l->ready = 0;
  l->started_ms = now_ms();
  start_handshake(l); /* queued: hiredis sends it once connected */
}

static void connect_links(sig_cluster_t *c) {
  if (c->shutting_down) return;
  if (c->cmd.ac == NULL) connect_link(&c->cmd);
  if (c->sub.ac == NULL) connect_link(&c->sub);
}

/* ac is gone (hiredis frees it): unless the link has moved on to a newer one. */
static void link_gone(link_t *l, const redisAsyncContext *ac) {
  if (l->ac != ac) return;
  l->ac = NULL;
  l->ready = 0;
  l->subscription = NULL;
  set_up(l->c, 0);
}

static void on_connect(const redisAsyncContext *ac, int status) {
  link_t *l = ac->data;
  if (status != REDIS_OK) { /* hiredis frees ac after this */
    SIG_EVENT(SIG_LOG_WARN, "cluster", "connect", "cannot connect to redis",
              SIG_KV("error", ac->errstr));
    link_gone(l, ac);
  }
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
  link_t *l = ac->data;
  if (status != REDIS_OK && !l->c->freeing && l->ac == ac)
    SIG_EVENT(SIG_LOG_WARN, "cluster", "connect", "redis connection lost",
              SIG_KV("error", ac->errstr), SIG_KV("link", l->is_sub ? "sub" : "cmd"));
  link_gone(l, ac);
}

/* Drops both connections: every callback owed runs now, as "unavailable". */
static void drop_links(sig_cluster_t *c, const char *why) {
  if (why != NULL) SIG_WARN("cluster", "dropping redis connections reason=\"%s\"", why);
  set_up(c, 0); /* first: what the callbacks below try now fails at once */
  link_t *links[] = {&c->cmd, &c->sub};
  for (int i = 0; i < 2; i++) {
    redisAsyncContext *ac = links[i]->ac;
    if (ac == NULL) continue;
    links[i]->ac = NULL;
    links[i]->ready = 0;
    links[i]->subscription = NULL;
    redisAsyncFree(ac); /* calls every pending callback with no reply, then on_disconnect */
  }
}

/* A link waits for replies and has had none for longer than limit: neither to its oldest
 * command nor to anything since. A deep queue that keeps being answered (a node publishing
 * 20,000 registrations again) is not a stall. */
static int stalled(const link_t *l, uint64_t now, uint64_t limit) {
  if (sig_list_empty(&l->outstanding)) return 0;
  uint64_t sent = SIG_LIST_DATA(l->outstanding.next, cmd_t, link)->sent_ms;
  uint64_t since = sent > l->replied_ms ? sent : l->replied_ms;
  return now - since > limit;
}

/* ---- timers */

static void on_check(uv_timer_t *t) {
  sig_cluster_t *c = t->data;
  uint64_t now = now_ms(), limit = (uint64_t)c->cfg->cluster_request_timeout_ms;
  /* Timers run before the loop polls: when this tick comes late (the process had no CPU, or
   * its loop was busy), replies may be waiting unread in the socket, and "no reply for so long"
   * would be this process's delay, not Redis's. Judged again next tick, after a poll. With the
   * CPU saturated (the push toward a million), 5,267 links were dropped this way. */
  int on_time = c->last_check == 0 || now - c->last_check <= LATE_CHECK_MS;
  c->last_check = now;
  if (on_time && (stalled(&c->cmd, now, limit) || stalled(&c->sub, now, limit))) {
    drop_links(c, "redis did not answer in time");
    return; /* the retry timer connects again */
  }
  if (c->up && !c->shutting_down && now - c->last_ping >= 1000) {
    const char *argv[] = {"PING"};
    size_t lens[] = {4};
    c->last_ping = now;
    cmd_t *k = new_cmd(&c->cmd, K_PING);
    k->sent_ns = uv_hrtime();
    send_argv(&c->cmd, k, 1, argv, lens);
  }
  link_t *links[] = {&c->cmd, &c->sub};
  for (int i = 0; i < 2; i++)
    if (links[i]->ac != NULL && !links[i]->ready && now - links[i]->started_ms > limit) {
      drop_links(c, "redis handshake not complete in time");
      return;
    }
  if (c->shutting_down && c->shutdown_done != NULL &&
      (sig_list_empty(&c->cmd.outstanding) || c->cmd.ac == NULL ||
       now - c->shutdown_started > SHUTDOWN_MS)) {
    void (*done)(void *) = c->shutdown_done;
    c->shutdown_done = NULL;
    done(c->shutdown_arg);
  }
}

static void on_retry(uv_timer_t *t) {
  sig_cluster_t *c = t->data;
  if (c->shutting_down || (c->cmd.ac != NULL && c->sub.ac != NULL)) {
    SIG_MUST(uv_timer_start(t, on_retry, CHECK_MS, 0));
    return;
  }
  connect_links(c);
  uint64_t next = c->backoff_ms;
  c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
  SIG_MUST(uv_timer_start(t, on_retry, next, 0));
}

static void on_heartbeat(uv_timer_t *t) {
  sig_cluster_t *c = t->data;
  if (c->up && !c->shutting_down) heartbeat(c);
}

typedef struct {
  const char *args[14];
  size_t lens[14];
  int n;
} nodes_t;

static void add_home(void *arg, const char *node) {
  nodes_t *l = arg;
  if (l->n < 14) l->args[l->n] = node, l->lens[l->n] = strlen(node), l->n++;
}

static void on_liveness(uv_timer_t *t) {
  sig_cluster_t *c = t->data;
  /* Right after a reconnection the others may not have written their keys again yet. */
  if (!c->up || c->router == NULL || c->shutting_down ||
      now_ms() - c->up_since < (uint64_t)c->cfg->cluster_node_ttl_s * 1000)
    return;
  nodes_t l = {.args = {c->prefix}, .lens = {strlen(c->prefix)}, .n = 1};
  sig_router_each_home(c->router, add_home, &l);
  if (l.n > 1) eval(c, new_cmd(&c->cmd, K_DEAD), S_DEAD, 0, NULL, NULL, l.n, l.args, l.lens);
  /* Nodes that died without a word leave the directory (any node does it, every node_ttl_s). */
  uint64_t now = now_ms();
  if (now - c->last_sweep >= (uint64_t)c->cfg->cluster_node_ttl_s * 1000) {
    c->last_sweep = now;
    l.args[1] = SWEEP_BUDGET, l.lens[1] = strlen(SWEEP_BUDGET);
    eval(c, new_cmd(&c->cmd, K_SWEEP), S_SWEEP, 0, NULL, NULL, 2, l.args, l.lens);
  }
}

/* ---- life */

static int read_password(sig_cluster_t *c, char *err, size_t errlen) {
  const char *path = c->cfg->cluster_password_file;
  if (path == NULL || path[0] == '\0') return 0;
  char why[128];
  unsigned char *buf;
  long got = sig_read_file(path, PASSWORD_MAX, &buf, why, sizeof(why));
  if (got == SIG_ETOOBIG) {
    snprintf(err, errlen, "cluster.redis_password_file: %s is longer than %d bytes", path,
             PASSWORD_MAX);
    return SIG_ECONFIG;
  }
  if (got < 0) {
    snprintf(err, errlen, "cluster.redis_password_file: cannot read %s: %s", path, why);
    return SIG_ECONFIG;
  }
  size_t n = (size_t)got;
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) n--;
  memcpy(c->password, buf, n);
  c->password[n] = '\0';
  c->password_len = n;
  memset(buf, 0, (size_t)got);
  free(buf);
  return 0;
}

/* host-port-pid, in the node id's alphabet. */
static void default_node_id(char *out, size_t cap, const char *address) {
  char host[64] = "node";
  gethostname(host, sizeof(host) - 1);
  host[sizeof(host) - 1] = '\0';
  const char *port = strrchr(address, ':');
  snprintf(out, cap, "%.32s-%s-%ld", host, port != NULL ? port + 1 : "0", (long)getpid());
  for (char *p = out; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
          *p == '.' || *p == '_' || *p == '-'))
      *p = '-';
}

int sig_cluster_new(sig_cluster_t **out, uv_loop_t *loop, const sig_config_t *cfg,
                    const char *address, char *err, size_t errlen) {
  sig_cluster_t *c = sig_calloc(1, sizeof(*c));
  c->loop = loop;
  c->cfg = cfg;
  if (sig_config_redis_target(cfg->cluster_redis, &c->target, err, errlen) != 0 ||
      read_password(c, err, errlen) != 0) {
    free(c);
    return SIG_ECONFIG;
  }
  snprintf(c->address, sizeof(c->address), "%s", address);
  if (cfg->cluster_node_id[0] != '\0' && cfg->workers > 1) /* one id per worker process */
    snprintf(c->node, sizeof(c->node), "%.50s-%ld", cfg->cluster_node_id, (long)getpid());
  else if (cfg->cluster_node_id[0] != '\0')
    snprintf(c->node, sizeof(c->node), "%s", cfg->cluster_node_id);
  else
    default_node_id(c->node, sizeof(c->node), address);
  snprintf(c->prefix, sizeof(c->prefix), "%s", cfg->cluster_key_prefix);
  snprintf(c->channel, sizeof(c->channel), "%sc:%s", c->prefix, c->node);
  snprintf(c->node_key, sizeof(c->node_key), "%sn:%s", c->prefix, c->node);
  snprintf(c->nodes_key, sizeof(c->nodes_key), "%snodes", c->prefix);
  link_t *links[] = {&c->cmd, &c->sub};
  for (int i = 0; i < 2; i++) {
    links[i]->c = c;
    links[i]->is_sub = i == 1;
    sig_list_init(&links[i]->outstanding);
  }
  c->backoff_ms = BACKOFF_MIN_MS;
  uv_timer_t *timers[] = {&c->check, &c->heartbeat, &c->liveness, &c->retry};
  for (int i = 0; i < 4; i++) {
    SIG_MUST(uv_timer_init(loop, timers[i]));
    timers[i]->data = c;
  }
  c->handles_open = 4;
  uint64_t beat = (uint64_t)cfg->cluster_node_ttl_s * 1000 / 3;
  SIG_MUST(uv_timer_start(&c->check, on_check, CHECK_MS, CHECK_MS));
  SIG_MUST(uv_timer_start(&c->heartbeat, on_heartbeat, beat, beat));
  SIG_MUST(uv_timer_start(&c->liveness, on_liveness, LIVENESS_MS, LIVENESS_MS));
  connect_links(c);
  SIG_MUST(uv_timer_start(&c->retry, on_retry, BACKOFF_MIN_MS, 0));
  SIG_INFO("cluster", "node id=%s redis=%s prefix=%s", c->node, cfg->cluster_redis, c->prefix);
  *out = c;
  return 0;
}

void sig_cluster_attach(sig_cluster_t *c, sig_router_t *r) {
  sig_router_cluster_t ops = {.ctx = c,
                              .self = c->node,
                              .up = op_up,
                              .claim = op_claim,
                              .release = op_release,
                              .route = op_route,
                              .send = op_send,
                              .request_timeout_ms = (uint64_t)c->cfg->cluster_request_timeout_ms};
  c->router = r;
  sig_router_set_cluster(r, &ops);
}

const char *sig_cluster_node_id(const sig_cluster_t *c) {
  return c->node;
}

int sig_cluster_up(const sig_cluster_t *c) {
  return c->up;
}

void sig_cluster_shutdown(sig_cluster_t *c, void (*done)(void *arg), void *arg) {
  if (c->shutting_down) {
    done(arg);
    return;
  }
  if (c->up) {
    const char *argv[] = {"DEL", c->node_key};
    plain(c, 2, argv);
    const char *reg[] = {"SREM", c->nodes_key, c->node};
    plain(c, 3, reg);
  }
  c->shutting_down = 1;
  c->shutdown_done = done;
  c->shutdown_arg = arg;
  c->shutdown_started = now_ms();
}

static void on_handle_closed(uv_handle_t *h) {
  sig_cluster_t *c = h->data;
  if (--c->handles_open == 0) free(c);
}

void sig_cluster_free(sig_cluster_t *c) {
  if (c == NULL) return;
  c->freeing = 1;
  c->shutting_down = 1;
  c->shutdown_done = NULL;
  drop_links(c, NULL);
  c->router = NULL;
  uv_timer_t *timers[] = {&c->check, &c->heartbeat, &c->liveness, &c->retry};
  for (int i = 0; i < 4; i++) uv_close((uv_handle_t *)timers[i], on_handle_closed);
}
