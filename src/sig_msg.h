/* The protocol's JSON codec (docs/PROTOCOL.md): decodes and validates POST /offer bodies and client
 * WebSocket messages, and encodes every frame and Resp body the server sends. No I/O. */
#ifndef SIG_MSG_H
#define SIG_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "sig_json.h"
#include "sig_proto.h"

#define SIG_MSG_DOMAIN_MAX 128
#define SIG_MSG_ID_MAX 64
/* An err buffer of this size holds any decoder message untruncated (smaller buffers truncate). */
#define SIG_MSG_ERR_MAX SIG_REFUSAL_MAX

/* 1 if s[0..len) is 1-SIG_MSG_DOMAIN_MAX (resp. SIG_MSG_ID_MAX) characters of A-Z a-z 0-9 . _ ~ -,
 * else 0. */
int sig_msg_domain_valid(const char *s, size_t len);
int sig_msg_id_valid(const char *s, size_t len);

typedef enum { SIG_MSG_OFFER = 1, SIG_MSG_ANSWER, SIG_MSG_CANDIDATE, SIG_MSG_BYE } sig_msg_type_t;

/* A decoded message. Its strings are NUL-terminated copies owned by m (valid until sig_msg_free):
 * NUL-free, valid UTF-8, domains/ids already checked against their alphabet. */
typedef struct {
  sig_msg_type_t type;
  const char *id; /* NULL when absent */
  /* offer: the OfferReq; offer_domain may be NULL for a WebSocket offer */
  const char *offer_sdp, *answer_domain, *offer_domain;
  /* answer: the answer_resp fields; answer_domain (above) is NULL when omitted */
  const char *answer_sdp;
  const char *echo_offer_domain; /* answer: offer_req.offer_domain if echoed, else NULL */
  /* candidate, bye */
  const char *to;
  size_t ncandidates; /* offer, answer, candidate */
  /* The JSON text of the SDP string (quotes included) and of the candidate array (brackets
   * included) as the client wrote them (escapes kept; only whitespace between array elements is
   * dropped), which the encoders copy verbatim. Usually borrowed from the decoded buffer, so that
   * buffer must stay unchanged while m is passed to an encoder. NULL when absent or in a
   * hand-filled message. */
  const char *sdp_raw, *cand_raw;
  size_t sdp_raw_len, cand_raw_len;
  char *arena; /* owned: the one allocation behind the strings above */
} sig_msg_t;

/* Both decoders accept exactly RFC 8259 JSON text (sig_json: UTF-8 without a byte order mark, no
 * duplicate keys in an object, at most SIG_JSON_DEPTH nested objects and arrays); anything else is
 * "body: invalid JSON: <what> at line L column C" (column counts characters, 1-based). */

/* Decodes a POST /offer body (OfferReq plus optional id). Returns 0, or SIG_EBADMSG with err set to
 * "field: reason" (first problem in the order offer_sdp, candidate, answer_domain, offer_domain,
 * id, then answer_domain != offer_domain). On failure m is zeroed: nothing to free, though
 * sig_msg_free on it is safe. */
int sig_msg_decode_offer_body(sig_msg_t *m, const char *buf, size_t len, char *err, size_t errlen);

/* Decodes a client WebSocket text message:
 *   offer:     offer_req object (field errors prefixed "offer_req."; offer_domain optional);
 *   answer:    answer_resp object (answer_sdp, candidate required; answer_domain optional),
 * optional offer_req object whose offer_domain, if present, must be a domain -> echo_offer_domain;
 *   candidate: to, candidate;  bye: to.
 * id is optional everywhere; unknown fields are ignored. Returns 0, or SIG_EBADMSG with err set as
 * docs/PROTOCOL.md words it ("ty: required", "answer_resp.answer_sdp: not valid base64", ...).
 * Even on failure, when the message was an object with a valid id, m->id is set and m->arena kept
 * (all else zero) so the caller can echo the id: always call sig_msg_free afterwards. The caller
 * checks what needs the sender's identity (a WebSocket offer without offer_domain naming the sender
 * as answer_domain, spoofed domains). */
int sig_msg_decode_frame(sig_msg_t *m, const char *buf, size_t len, char *err, size_t errlen);

/* Releases m's strings; accepts NULL and zeroed or failed structs; leaves m zeroed. */
void sig_msg_free(sig_msg_t *m);

/* Encoders return compact JSON (key order as in docs/PROTOCOL.md), allocated with sig_malloc and
 * NUL-terminated; *len (if len is non-NULL) gets its length without the NUL. The caller frees it
 * with free(). Any string argument may hold arbitrary bytes: invalid UTF-8 becomes U+FFFD. A NULL
 * id is encoded as null. The message arguments may come from a decoder or be filled in by hand
 * (sdp_raw and cand_raw NULL: offer_sdp/answer_sdp are used as strings and candidate is []). */

/* {"ty":"offer","id":ID,"offer_req":{"offer_sdp":S,"candidate":[...],"answer_domain":B,
 *  "offer_domain":A},"answer_resp":{"answer_sdp":"","candidate":[],"answer_domain":B}}
 * B is offer->answer_domain; A is offer_domain (the sender's: a WebSocket offer may omit it). */
char *sig_msg_encode_offer_push(const sig_msg_t *offer, const char *id, const char *offer_domain,
                                size_t *len);
/* {"ty":"answer","id":ID,"answer_resp":{"answer_sdp":S,"candidate":[...],"answer_domain":B},
 *  "offer_req":{"offer_sdp":"","candidate":[],"answer_domain":B,"offer_domain":A}} */
char *sig_msg_encode_answer_push(const sig_msg_t *answer, const char *id, const char *answer_domain,
                                 const char *offer_domain, size_t *len);
/* {"ty":"candidate","id":ID,"from":A,"candidate":[...]} */
char *sig_msg_encode_candidate(const sig_msg_t *cand, const char *id, const char *from,
                               size_t *len);
/* {"ty":"bye","id":ID,"from":A,"reason":R} */
char *sig_msg_encode_bye(const char *id, const char *from, const char *reason, size_t *len);
/* {"ty":"error","status":N,"msg":M,"id":ID|null} */
char *sig_msg_encode_error(int status, const char *msg, const char *id, size_t *len);
/* Resp bodies: {"code":0,"msg":"ok","data":{"id":ID}}, {"code":-1,"msg":M,"data":null},
 * {"code":0,"msg":"ok","data":{"connections":C,"domains":D,"exchanges":E}} */
char *sig_msg_encode_resp_id(const char *id, size_t *len);
char *sig_msg_encode_resp_error(const char *msg, size_t *len);
char *sig_msg_encode_resp_health(uint64_t connections, uint64_t domains, uint64_t exchanges,
                                 size_t *len);

#endif
