/* Metrics storage and the Prometheus text format. Statuses and close codes are counted in small
 * fixed tables (the server sends a known few; anything else goes to "other"), so the set of
 * series is bounded whatever clients send. */
#include "sig_metrics.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "generated.h"
#include "sig_util.h"

static const struct {
  const char *name, *type, *help, *label;
} counters[SIG_M_COUNT] = {
    [SIG_M_UPGRADES] = {"signal_server_upgrades_total", "counter",
                        "WebSocket upgrades completed (101 sent).", NULL},
    [SIG_M_REGISTERED] = {"signal_server_registrations_total", "counter",
                          "Domains registered (a refused upgrade is not counted).", NULL},
    [SIG_M_OFFERS] = {"signal_server_messages_total", "counter", "Messages carried out, by type.",
                      "offer"},
    [SIG_M_ANSWERS] = {"signal_server_messages_total", NULL, NULL, "answer"},
    [SIG_M_CANDIDATES] = {"signal_server_messages_total", NULL, NULL, "candidate"},
    [SIG_M_BYES] = {"signal_server_messages_total", NULL, NULL, "bye"},
    [SIG_M_REQUESTS] = {"signal_server_http_requests_total", "counter", "HTTP requests answered.",
                        NULL},
    [SIG_M_BYTES_IN] = {"signal_server_received_bytes_total", "counter", "Bytes read from clients.",
                        NULL},
    [SIG_M_BYTES_OUT] = {"signal_server_sent_bytes_total", "counter", "Bytes written to clients.",
                         NULL},
    [SIG_M_NODE_MESSAGES] = {"signal_server_cluster_messages_total", "counter",
                             "Messages received from other nodes of the cluster.", NULL},
};

static uint64_t counts[SIG_M_COUNT];

/* Refusals by status: the statuses the server sends, then "other". */
static const int statuses[] = {400, 401, 403, 404, 405, 408, 409, 413, 426, 429, 431, 503};
#define NSTATUS (SIG_ARRAY_SIZE(statuses) + 1)
static uint64_t errors[NSTATUS];

/* Closes by code, started by the server [0] or the peer [1]. */
static const int codes[] = {1000, 1001, 1002, 1003, 1005, 1007, 1008, 1009,
                            1011, 1013, 4000, 4401, 4403, 4408, 4409, 4503};
#define NCODE (SIG_ARRAY_SIZE(codes) + 1)
static uint64_t closes[2][NCODE];

/* Histograms: cumulative buckets (seconds). */
static const double offer_answer_buckets[] = {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
static const double lag_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5};
static const double rtt_buckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                     0.005,  0.01,    0.05,   0.1,   0.5};
#define MAX_BUCKETS 16

static const struct {
  const char *name, *help;
  const double *le;
  size_t n;
} hists[SIG_H_COUNT] = {
    [SIG_H_OFFER_ANSWER] = {"signal_server_offer_answer_seconds",
                            "Time from an offer to its answer, on the answer peer's node.",
                            offer_answer_buckets, SIG_ARRAY_SIZE(offer_answer_buckets)},
    [SIG_H_LOOP_LAG] = {"signal_server_event_loop_lag_seconds",
                        "How late the event loop's 100 ms tick ran.", lag_buckets,
                        SIG_ARRAY_SIZE(lag_buckets)},
    [SIG_H_REDIS_RTT] = {"signal_server_cluster_redis_rtt_seconds",
                         "Round trip of a PING to the cluster's Redis.", rtt_buckets,
                         SIG_ARRAY_SIZE(rtt_buckets)},
};

static struct {
  uint64_t bucket[MAX_BUCKETS]; /* not cumulative: the count in (le[i-1], le[i]] */
  uint64_t count;
  double sum;
} hist_data[SIG_H_COUNT];

void sig_metrics_add(sig_metric_t m, uint64_t n) {
  counts[m] += n;
}

void sig_metrics_error(int status) {
  size_t i = 0;
  while (i < SIG_ARRAY_SIZE(statuses) && statuses[i] != status) i++;
  errors[i]++;
}

void sig_metrics_close(int code, int by_server) {
  size_t i = 0;
  while (i < SIG_ARRAY_SIZE(codes) && codes[i] != code) i++;
  closes[by_server ? 0 : 1][i]++;
}

void sig_metrics_observe(sig_histogram_t h, double seconds) {
  size_t i = 0;
  if (seconds < 0) seconds = 0;
  while (i < hists[h].n && seconds > hists[h].le[i]) i++;
  if (i < hists[h].n) hist_data[h].bucket[i]++;
  hist_data[h].count++;
  hist_data[h].sum += seconds;
}

void sig_metrics_reset(void) {
  memset(counts, 0, sizeof(counts));
  memset(errors, 0, sizeof(errors));
  memset(closes, 0, sizeof(closes));
  memset(hist_data, 0, sizeof(hist_data));
}

/* ---- rendering */

static void head(sig_buf_t *o, const char *name, const char *type, const char *help) {
  sig_buf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void gauge(sig_buf_t *o, const char *name, const char *help, double v) {
  head(o, name, "gauge", help);
  sig_buf_printf(o, "%s %.17g\n", name, v);
}

/* Resident memory and open descriptors, from /proc/self. */
static void process_metrics(sig_buf_t *o) {
  long pages = 0, rss = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f != NULL) {
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
    fclose(f);
  }
  gauge(o, "process_resident_memory_bytes", "Resident memory size in bytes.",
        (double)rss * (double)sysconf(_SC_PAGESIZE));
  uint64_t fds = 0;
  DIR *d = opendir("/proc/self/fd");
  if (d != NULL) {
    struct dirent *e;
    while ((e = readdir(d)) != NULL) fds += e->d_name[0] != '.';
    closedir(d);
    fds--; /* the directory's own descriptor */
  }
  gauge(o, "process_open_fds", "Number of open file descriptors.", (double)fds);
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
    gauge(o, "process_max_fds", "Maximum number of open file descriptors.", (double)rl.rlim_cur);
}

char *sig_metrics_render(const sig_metrics_gauges_t *g, size_t *len) {
  sig_buf_t o = {NULL, 0, 0};
  sig_buf_printf(&o,
                 "# HELP signal_server_build_info The running version.\n"
                 "# TYPE signal_server_build_info gauge\n"
                 "signal_server_build_info{version=\"%s\"} 1\n",
                 SIG_VERSION);
  gauge(&o, "signal_server_connections", "TCP connections open.", (double)g->connections);
  gauge(&o, "signal_server_domains", "Domains registered on this node.", (double)g->domains);
  gauge(&o, "signal_server_exchanges", "Exchanges open on this node (pending or answered).",
        (double)g->exchanges);
  for (int m = 0; m < SIG_M_COUNT; m++) {
    if (counters[m].type != NULL) head(&o, counters[m].name, counters[m].type, counters[m].help);
    if (counters[m].label != NULL)
      sig_buf_printf(&o, "%s{type=\"%s\"} %" PRIu64 "\n", counters[m].name, counters[m].label,
                     counts[m]);
    else
      sig_buf_printf(&o, "%s %" PRIu64 "\n", counters[m].name, counts[m]);
  }
  head(&o, "signal_server_errors_total", "counter",
       "Refusals (HTTP responses and error frames), by status.");
  for (size_t i = 0; i < NSTATUS; i++) {
    if (i < SIG_ARRAY_SIZE(statuses))
      sig_buf_printf(&o, "signal_server_errors_total{status=\"%d\"} %" PRIu64 "\n", statuses[i],
                     errors[i]);
    else
      sig_buf_printf(&o, "signal_server_errors_total{status=\"other\"} %" PRIu64 "\n", errors[i]);
  }
  head(&o, "signal_server_websocket_closes_total", "counter",
       "WebSocket closing handshakes, by close code and by who started them.");
  for (int by = 0; by < 2; by++)
    for (size_t i = 0; i < NCODE; i++) {
      if (closes[by][i] == 0) continue; /* a bounded set; zero series are left out */
      char code[16];
      if (i < SIG_ARRAY_SIZE(codes))
        snprintf(code, sizeof(code), "%d", codes[i]);
      else
        snprintf(code, sizeof(code), "other");
      sig_buf_printf(&o,
                     "signal_server_websocket_closes_total{code=\"%s\",by=\"%s\"} %" PRIu64 "\n",
                     code, by == 0 ? "server" : "peer", closes[by][i]);
    }
  for (int h = 0; h < SIG_H_COUNT; h++) {
    if (h == SIG_H_REDIS_RTT && !g->cluster) continue;
    head(&o, hists[h].name, "histogram", hists[h].help);
    uint64_t cum = 0;
    for (size_t i = 0; i < hists[h].n; i++) {
      cum += hist_data[h].bucket[i];
      sig_buf_printf(&o, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", hists[h].name, hists[h].le[i], cum);
    }
    sig_buf_printf(&o, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", hists[h].name, hist_data[h].count);
    sig_buf_printf(&o, "%s_sum %.17g\n%s_count %" PRIu64 "\n", hists[h].name, hist_data[h].sum,
                   hists[h].name, hist_data[h].count);
  }
  if (g->cluster)
    gauge(&o, "signal_server_cluster_redis_up", "Whether the cluster's Redis answers (1) or not.",
          g->redis_up ? 1 : 0);
  process_metrics(&o);
  *len = o.n;
  return o.s;
}
