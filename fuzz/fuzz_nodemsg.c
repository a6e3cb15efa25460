/* libFuzzer target for sig_nodemsg: any input decodes or is refused without a crash or a read
 * past its end; a decoded message encodes to one that decodes to the same fields (and the same
 * f bytes), and that encoding is stable: encode(decode(encode(m))) == encode(m). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sig_nodemsg.h"
#include "sig_util.h"

static int same(const sig_nodemsg_t *a, const sig_nodemsg_t *b) {
  return a->op == b->op && strcmp(a->node, b->node) == 0 && a->rid == b->rid &&
         a->deadline_ms == b->deadline_ms && strcmp(a->id, b->id) == 0 && strcmp(a->a, b->a) == 0 &&
         strcmp(a->b, b->b) == 0 && strcmp(a->to, b->to) == 0 && a->reg == b->reg &&
         a->status == b->status && strcmp(a->msg, b->msg) == 0 && a->f_len == b->f_len &&
         (a->f == NULL) == (b->f == NULL) && (a->f_len == 0 || memcmp(a->f, b->f, a->f_len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  sig_nodemsg_t m, again, third;
  size_t len, len2;
  /* The decoder reads the input in place: a copy that ends exactly where it ends catches any
   * read past it. */
  char *buf = malloc(size != 0 ? size : 1);
  memcpy(buf, data, size);
  int rc = sig_nodemsg_decode(&m, buf, size);
  if (rc != 0) {
    if (rc != SIG_EBADMSG) abort();
    free(buf);
    return 0;
  }
  if (m.op >= SIG_NODE_COUNT || (m.f != NULL && (m.f < buf || m.f + m.f_len > buf + size))) abort();
  if ((m.f == NULL) != (m.f_len == 0) ||
      (m.f != NULL && (m.f[0] != '{' || m.f[m.f_len - 1] != '}')))
    abort();
  char *out = sig_nodemsg_encode(&m, &len);
  if (out == NULL || strlen(out) != len) abort();
  if (sig_nodemsg_decode(&again, out, len) != 0 || !same(&m, &again)) abort();
  char *out2 = sig_nodemsg_encode(&again, &len2);
  if (len2 != len || memcmp(out, out2, len) != 0) abort();
  if (sig_nodemsg_decode(&third, out2, len2) != 0 || !same(&m, &third)) abort();
  free(out2);
  free(out);
  free(buf);
  return 0;
}
