/* Metrics: process-wide counters and histograms that the modules bump where each event is
 * decided (as the log is process-wide), and their Prometheus text exposition (version 0.0.4).
 * No I/O but reading /proc/self at render time. Single-threaded, like the rest. */
#ifndef SIG_METRICS_H
#define SIG_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
  SIG_M_UPGRADES,      /* WebSocket upgrades completed (101 sent) */
  SIG_M_REGISTERED,    /* registrations that succeeded */
  SIG_M_OFFERS,        /* offers carried out (POST /offer or WebSocket), on the offer side */
  SIG_M_ANSWERS,       /* answers carried out */
  SIG_M_CANDIDATES,    /* candidate messages relayed */
  SIG_M_BYES,          /* bye messages carried out */
  SIG_M_REQUESTS,      /* HTTP requests answered */
  SIG_M_BYTES_IN,      /* bytes read from clients */
  SIG_M_BYTES_OUT,     /* bytes written to clients */
  SIG_M_NODE_MESSAGES, /* messages from other nodes of the cluster */
  SIG_M_COUNT
} sig_metric_t;

/* Counts n events. */
void sig_metrics_add(sig_metric_t m, uint64_t n);
static inline void sig_metrics_inc(sig_metric_t m) {
  sig_metrics_add(m, 1);
}

/* A refusal (HTTP response or error frame) with this status. */
void sig_metrics_error(int status);
/* A WebSocket closing handshake, with its code, started by the server or by the peer. */
void sig_metrics_close(int code, int by_server);

/* Histograms (seconds). */
typedef enum { SIG_H_OFFER_ANSWER, SIG_H_LOOP_LAG, SIG_H_REDIS_RTT, SIG_H_COUNT } sig_histogram_t;
void sig_metrics_observe(sig_histogram_t h, double seconds);

/* What the renderer cannot count itself: the server's gauges at render time. */
typedef struct {
  uint64_t connections, domains, exchanges;
  int cluster;  /* in a cluster: the two below mean something */
  int redis_up; /* Redis answers now */
} sig_metrics_gauges_t;

/* The exposition, malloc'ed (*len bytes). */
char *sig_metrics_render(const sig_metrics_gauges_t *g, size_t *len);

/* Zeroes everything (tests). */
void sig_metrics_reset(void);

#endif
