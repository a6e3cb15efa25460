/* Connections: one accepted socket each, with its lifecycle, its bounded write
 * queue and its deadline, under a handler that gives the bytes meaning (HTTP,
 * then a WebSocket session). Between the socket and the handler sits the byte
 * stream: plain TCP, or TLS (sig_tls) chosen per listener; the handler sees only
 * plaintext either way.
 *
 * Lifecycle: one state per connection.
 *
 *     accept
 *       |
 *       v
 *     OPEN --close(FLUSH)--> DRAINING --peer's EOF, linger timeout, error--> CLOSED
 *       |  \
 *       |   `--close(DEFER), a failed or overflowing write--> DOOMED --safe point--> CLOSED
 *       `--close(NOW), read error, EOF ------------------------------------------> CLOSED
 *
 *   OPEN      bytes flow both ways; the handler has the connection.
 *   DRAINING  what is queued is flushed, then FIN; input is read and dropped until the
 *             peer closes too, so that it sees our last words rather than a reset.
 *   DOOMED    reading stopped; the connection ends at the next safe point (an idle
 *             handle of the loop), never under the caller.
 *   CLOSED    the socket is being closed; the memory goes in libuv's close callback.
 *
 * The handler's on_close runs exactly once, when the connection leaves OPEN (for a
 * DOOMED one, when it is reaped): there the handler lets go of what it holds.
 *
 * Re-entry rule (Redis's "free it at a safe time"): the router sends and closes
 * while it walks its peers and exchanges, so code reachable from a router callback
 * writes and closes with SIG_CONN_DEFER only, and a failing write always defers.
 * SIG_CONN_NOW and SIG_CONN_FLUSH run on_close at once: call them only from the
 * connection's own read, deadline or shutdown callbacks. */
#ifndef SIG_CONN_H
#define SIG_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "sig_addr.h"

struct uv_loop_s;
struct uv_stream_s;
struct sig_tls_ctx_s;
typedef struct sig_conn_s sig_conn_t;
typedef struct sig_conns_s sig_conns_t;

typedef enum {
  SIG_CONN_OPEN,
  SIG_CONN_DRAINING,
  SIG_CONN_DOOMED,
  SIG_CONN_CLOSED
} sig_conn_state_t;

typedef enum {
  SIG_CONN_NOW,   /* drop what is queued and close the socket */
  SIG_CONN_FLUSH, /* flush, FIN, linger (DRAINING) */
  SIG_CONN_DEFER  /* as NOW, at the next safe point */
} sig_conn_close_t;

/* Deadlines: a connection waits on at most one; each has one fixed duration, so that
 * a list per deadline stays sorted by appending and one timer serves them all. */
typedef enum {
  SIG_DEADLINE_FIRST_BYTE, /* a new connection must send something */
  SIG_DEADLINE_REQUEST,    /* a request (head and body) must complete */
  SIG_DEADLINE_KEEPALIVE,  /* an idle keep-alive connection is closed */
  SIG_DEADLINE_PING,       /* a WebSocket silent this long gets a ping */
  SIG_DEADLINE_PONG,       /* ... and is closed if still silent after this */
  SIG_DEADLINE_MESSAGE,    /* a WebSocket frame or message that began must complete */
  SIG_DEADLINE_LINGER,     /* a closing connection is cut (handled here: SIG_CONN_NOW) */
  SIG_DEADLINE_COUNT,
  SIG_DEADLINE_NONE = SIG_DEADLINE_COUNT
} sig_deadline_t;

/* Work a connection may do in one turn of the loop: this many units (an HTTP request, a
 * WebSocket message), and one read of the loop-wide 64 KiB buffer. Past it the connection
 * yields: what it has not handled is kept, reading stops, and the rest waits for the next
 * turn, so that one busy client cannot starve the others. */
#define SIG_CONN_TURN_UNITS 32

typedef struct {
  /* Bytes arrived on an OPEN connection (valid during the call only). Returns how many it
   * handled; fewer than len when it yields (sig_conn_spend said the turn's budget is
   * spent): the rest comes again next turn. */
  size_t (*on_data)(sig_conn_t *c, const char *buf, size_t len);
  /* c's deadline passed (every one but LINGER). */
  void (*on_deadline)(sig_conn_t *c, sig_deadline_t d);
  /* c left OPEN: release what the handler holds (its data included). */
  void (*on_close)(sig_conn_t *c);
  /* The server is stopping: end politely (or leave an in-flight request to finish). */
  void (*on_shutdown)(sig_conn_t *c);
  /* What to call c in log lines (a domain), or NULL. */
  const char *(*label)(sig_conn_t *c);
} sig_conn_handler_t;

typedef struct {
  uint64_t durations_ms[SIG_DEADLINE_COUNT];
  size_t max_queue_bytes;     /* a connection whose queued bytes would pass this is dropped */
  int sndbuf_bytes;           /* SO_SNDBUF of accepted sockets (bounds the kernel's queue) */
  unsigned pings_per_tick;    /* PING deadlines handled per tick at most (spreads waves) */
  void (*on_tick)(void *arg); /* called on every tick, after the deadlines */
  void *tick_arg;
  /* called once for every connection as it leaves OPEN, after its handler's on_close */
  void (*on_release)(void *arg, sig_conn_t *c);
  void *release_arg;
} sig_conns_config_t;

/* Room for "[ipv6]:port". */
#define SIG_CONN_ADDR_MAX 80

/* A set of connections and its timer. cfg is copied. */
sig_conns_t *sig_conns_new(struct uv_loop_s *loop, const sig_conns_config_t *cfg);
/* Closes the set's own handles; the memory goes once the loop has run their close
 * callbacks. Every connection must be gone (sig_conns_count() == 0). Accepts NULL. */
void sig_conns_free(sig_conns_t *s);
/* Connections not yet freed, in every state. */
uint64_t sig_conns_count(const sig_conns_t *s);
/* Makes room for one connection: closes the oldest connection that has not yet proved
 * itself (no byte yet, then no complete request; see sig_conn_set_served). Returns 1 when
 * one was closed. */
int sig_conns_evict(sig_conns_t *s);
/* Calls on_shutdown of every OPEN connection's handler. */
void sig_conns_shutdown(sig_conns_t *s);
/* Closes every connection now (SIG_CONN_NOW), the doomed ones included. */
void sig_conns_cut(sig_conns_t *s);
/* done(arg) runs (once) when the count next drops to 0. NULL cancels. */
void sig_conns_on_empty(sig_conns_t *s, void (*done)(void *arg), void *arg);

/* Accepts a connection from listener into s: it is OPEN and reading, with no handler
 * yet (set one before returning to the loop). With tls (borrowed: it must outlive the
 * connection), the byte stream is TLS: the handler sees plaintext only, and writes are
 * encrypted. Returns NULL when the accept failed. */
sig_conn_t *sig_conn_accept(sig_conns_t *s, struct uv_stream_s *listener,
                            struct sig_tls_ctx_s *tls);

/* Gives c to handler h with its data (borrowed; h's on_close releases it). The previous
 * handler's data is its owner's to release: no on_close runs for it. */
void sig_conn_set_handler(sig_conn_t *c, const sig_conn_handler_t *h, void *data);
void *sig_conn_data(const sig_conn_t *c);

sig_conn_state_t sig_conn_state(const sig_conn_t *c);

/* Counts one unit of work (a request, a message) against this turn's budget. Returns 1 while
 * the budget lasts, 0 once it is spent: the handler then stops and returns what it handled. */
int sig_conn_spend(sig_conn_t *c);

/* Stops reading c while its handler waits for something (the cluster): bytes it has not
 * handled are held, not offered again, until sig_conn_resume, which offers them on the next
 * turn and reads again. Deadlines go on as they are. */
void sig_conn_pause(sig_conn_t *c);
void sig_conn_resume(sig_conn_t *c);

/* Marks c as having completed a request (or become a WebSocket): never evicted. */
void sig_conn_set_served(sig_conn_t *c);

/* A mark for the owner of per-address counts: c was counted against its client. */
void sig_conn_set_counted(sig_conn_t *c);
int sig_conn_counted(const sig_conn_t *c);

/* The client: the socket's peer at first, or the address a trusted proxy reported. */
const sig_addr_t *sig_conn_client(const sig_conn_t *c);
void sig_conn_set_client(sig_conn_t *c, const sig_addr_t *a);
/* The socket's own peer (the proxy, when there is one). */
void sig_conn_socket_peer(const sig_conn_t *c, sig_addr_t *a);

/* A piece of bytes to write. */
typedef struct {
  const void *base;
  size_t len;
} sig_conn_buf_t;

/* Writes the pieces in order: straight to the socket when it takes them, the rest
 * copied into the write queue. Returns 0; or, when c is not OPEN, the write failed, or
 * the queue would pass max_queue_bytes (one piece larger than that may wait alone), a
 * negative error, and c is DOOMED (except when it was not OPEN: nothing changes). */
int sig_conn_writev(sig_conn_t *c, const sig_conn_buf_t *bufs, unsigned n);
int sig_conn_write(sig_conn_t *c, const void *data, size_t len);
/* Bytes waiting in the user-space queue. */
size_t sig_conn_queued(const sig_conn_t *c);

/* Ends c as `how` says (see the diagram). Idempotent; a later, gentler close of an
 * already closing connection does nothing. */
void sig_conn_close(sig_conn_t *c, sig_conn_close_t how);

/* Puts c on deadline d from now (or takes it off with SIG_DEADLINE_NONE). */
void sig_conn_set_deadline(sig_conn_t *c, sig_deadline_t d);
sig_deadline_t sig_conn_deadline(const sig_conn_t *c);

/* The client's address, "1.2.3.4:5678" or "[::1]:5678", in buf; "-" when unknown. */
const char *sig_conn_peer(const sig_conn_t *c, char buf[SIG_CONN_ADDR_MAX]);
/* The client's address without the port (the scope of throttled log lines). */
const char *sig_conn_peer_ip(const sig_conn_t *c, char buf[SIG_CONN_ADDR_MAX]);
/* For log lines: the address in a compound literal. */
#define SIG_CONN_PEER(c) sig_conn_peer((c), (char[SIG_CONN_ADDR_MAX]){0})
#define SIG_CONN_IP(c) sig_conn_peer_ip((c), (char[SIG_CONN_ADDR_MAX]){0})
/* For log lines: the handler's label, or "-". */
const char *sig_conn_label(sig_conn_t *c);

#endif
