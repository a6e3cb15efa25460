/* The messages nodes of a cluster send each other (over Redis pub/sub, docs/CLUSTER.md): one
 * JSON object each, naming an operation on an exchange and carrying, as raw JSON, the frame the
 * receiving node delivers to its peer. A codec only: no I/O, no routing. Decoding is strict
 * (unknown operations, malformed names and out-of-range numbers are refused), though the
 * senders are other nodes of the same cluster. */
#ifndef SIG_NODEMSG_H
#define SIG_NODEMSG_H

#include <stddef.h>
#include <stdint.h>

#include "sig_msg.h"

/* The longest node id (docs/CONFIG.md, cluster.node_id). */
#define SIG_NODE_ID_MAX 64

typedef enum {
  SIG_NODE_RE,    /* the reply to a request: rid, status, msg, id */
  SIG_NODE_FWD,   /* request: carry out this POST /offer body (its offer_domain is yours) */
  SIG_NODE_OFFER, /* request: deliver offer frame f to your peer b, from a (exchange id) */
  SIG_NODE_ANS,   /* exchange id was answered: deliver f to your peer a */
  SIG_NODE_REL,   /* deliver f (a candidate) to your peer `to` within exchange id */
  SIG_NODE_END,   /* exchange id ended: deliver f (if any) to your peer `to` and forget it */
  SIG_NODE_FGT,   /* forget exchange id without a word (max_exchanges_per_peer) */
  SIG_NODE_REP,   /* your registration reg of domain `to` was taken over: close it (4000) */
  SIG_NODE_COUNT
} sig_nodemsg_op_t;

typedef struct {
  sig_nodemsg_op_t op;
  char node[SIG_NODE_ID_MAX + 1]; /* "n": the sender */
  uint64_t rid;                   /* requests and replies: the request's number at the sender */
  int64_t deadline_ms; /* requests: wall-clock ms after which the receiver drops it (0: none) */
  char id[SIG_MSG_ID_MAX + 1];     /* "x": the exchange */
  char a[SIG_MSG_DOMAIN_MAX + 1];  /* the offer domain */
  char b[SIG_MSG_DOMAIN_MAX + 1];  /* the answer domain */
  char to[SIG_MSG_DOMAIN_MAX + 1]; /* rel, end, fgt, rep: the receiver's peer */
  uint64_t reg;                    /* rep: the registration taken over */
  int status;                      /* re: an HTTP status (200 on success) */
  char msg[SIG_MSG_ERR_MAX];       /* re: the refusal's message */
  const char *f;                   /* a frame: raw JSON object text inside the decoded buffer */
  size_t f_len;                    /* 0: none */
} sig_nodemsg_t;

/* Which fields an operation carries (for encoders and tests). */
const char *sig_nodemsg_op_name(sig_nodemsg_op_t op);

/* Decodes len bytes. Returns 0, or SIG_EBADMSG. On success m->f points into buf. */
int sig_nodemsg_decode(sig_nodemsg_t *m, const char *buf, size_t len);

/* Encodes m (the fields its op carries; f is copied as it is, and must be a JSON object).
 * Returns a malloc'ed buffer of *len bytes. */
char *sig_nodemsg_encode(const sig_nodemsg_t *m, size_t *len);

#endif
