/* libFuzzer target for sig_msg: both decoders take any input without a crash; a refusal says why;
 * a decoded message encodes (offer push, answer push, candidate, bye, error) into valid JSON that
 * the scanner accepts as an object, with the SDP and candidates copied verbatim. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sig_json.h"
#include "sig_msg.h"
#include "sig_util.h"

static void check_json_object(char *frame, size_t len) {
  sig_json_val_t root;
  if (frame == NULL || strlen(frame) != len) abort();
  if (sig_json_scan(frame, len, NULL, NULL, &root, NULL, 0) != 0) abort();
  if (root.kind != SIG_JSON_OBJECT) abort();
  free(frame);
}

static void check_raw_copied(const sig_msg_t *m, const char *frame) {
  if (m->sdp_raw != NULL && memmem(frame, strlen(frame), m->sdp_raw, m->sdp_raw_len) == NULL)
    abort();
  if (m->cand_raw != NULL && memmem(frame, strlen(frame), m->cand_raw, m->cand_raw_len) == NULL)
    abort();
}

static void encode_all(const sig_msg_t *m) {
  size_t len;
  char *f;
  switch (m->type) {
    case SIG_MSG_OFFER:
      f = sig_msg_encode_offer_push(m, "x1", "A", &len);
      check_raw_copied(m, f);
      check_json_object(f, len);
      break;
    case SIG_MSG_ANSWER:
      f = sig_msg_encode_answer_push(m, m->id, "B", "A", &len);
      check_raw_copied(m, f);
      check_json_object(f, len);
      break;
    case SIG_MSG_CANDIDATE:
      f = sig_msg_encode_candidate(m, m->id, "A", &len);
      check_raw_copied(m, f);
      check_json_object(f, len);
      break;
    case SIG_MSG_BYE:
      check_json_object(sig_msg_encode_bye(m->id, m->to, "hangup", &len), len);
      break;
    default: abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  sig_msg_t m;
  char err[SIG_MSG_ERR_MAX];
  size_t len;
  /* The decoders read the input in place: a copy that ends exactly where it ends catches any
   * read past it. */
  char *buf = malloc(size ? size : 1);
  memcpy(buf, data, size);
  if (sig_msg_decode_frame(&m, buf, size, err, sizeof err) == 0) {
    encode_all(&m);
  } else {
    if (err[0] == '\0') abort();
    check_json_object(sig_msg_encode_error(400, err, m.id, &len), len);
  }
  sig_msg_free(&m);
  if (sig_msg_decode_offer_body(&m, buf, size, err, sizeof err) == 0) {
    if (m.type != SIG_MSG_OFFER || m.offer_domain == NULL) abort();
    encode_all(&m);
  } else {
    if (err[0] == '\0' || m.arena != NULL) abort();
    check_json_object(sig_msg_encode_resp_error(err, &len), len);
  }
  sig_msg_free(&m);
  free(buf);
  return 0;
}
