/* libFuzzer target for sig_auth_verify. The first byte chooses what the rest is: a token as
 * sent (even), or a header and claims (split at the first newline; no newline: the claims under
 * {"alg":"HS256"}) that this target signs with the configured key (odd), so that the claim
 * checks past the signature are reached. Whatever the input: no crash or leak; the same answer
 * twice; a token accepted has three segments and grants a valid domain; an unsigned input is
 * never accepted unless it is exactly a token this key signed. */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sig_auth.h"
#include "sig_config.h"
#include "sig_msg.h"

#define KEY "fuzzing key, thirty-two bytes at least"
#define NOW 1700000000

static sig_auth_t *auth;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  char path[] = "/tmp/fuzz_auth_key_XXXXXX", text[256], err[256];
  sig_config_t cfg;
  (void)argc, (void)argv;
  int fd = mkstemp(path);
  if (fd < 0 || write(fd, KEY, strlen(KEY)) != (ssize_t)strlen(KEY)) abort();
  close(fd);
  int n = snprintf(text, sizeof text, "[auth]\nmode = \"jwt\"\nkey_file = \"%s\"\n", path);
  sig_config_init(&cfg);
  if (sig_config_parse(&cfg, "fuzz", text, (size_t)n, err, sizeof err) != 0 ||
      sig_auth_new(&auth, &cfg, err, sizeof err) != 0) {
    fprintf(stderr, "%s\n", err);
    abort();
  }
  sig_config_free(&cfg);
  unlink(path);
  return 0;
}

static size_t b64url(const uint8_t *in, size_t n, char *out) {
  static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  size_t o = 0;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
                 (i + 2 < n ? in[i + 2] : 0);
    size_t chars = n - i >= 3 ? 4 : n - i + 1;
    for (size_t k = 0; k < chars; k++) out[o++] = abc[(v >> (18 - 6 * k)) & 63];
  }
  return o;
}

static sig_auth_result_t verify(const char *token, size_t n) {
  sig_auth_claims_t claims;
  sig_auth_result_t r = sig_auth_verify(auth, token, n, NOW, &claims);
  if (r == SIG_AUTH_OK) {
    if (!sig_msg_domain_valid(claims.sub, strlen(claims.sub))) abort();
    size_t dots = 0;
    for (size_t i = 0; i < n; i++) dots += token[i] == '.';
    if (dots != 2) abort();
  } else if (claims.calls != NULL) {
    abort(); /* a refusal grants nothing */
  }
  sig_acl_free(claims.calls);
  return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char hs[] = "{\"alg\":\"HS256\"}";
  if (size < 1 || size > 7000) return 0;
  const uint8_t *in = data + 1;
  size_t n = size - 1;
  if ((data[0] & 1) == 0) {
    sig_auth_result_t r = verify((const char *)in, n);
    if (verify((const char *)in, n) != r) abort();
    return 0;
  }
  const uint8_t *nl = memchr(in, '\n', n);
  const uint8_t *h = nl != NULL ? in : (const uint8_t *)hs;
  size_t hlen = nl != NULL ? (size_t)(nl - in) : strlen(hs);
  const uint8_t *c = nl != NULL ? nl + 1 : in;
  size_t clen = nl != NULL ? n - hlen - 1 : n;
  char *token = malloc((hlen + clen) * 4 / 3 + 128);
  size_t o = b64url(h, hlen, token);
  token[o++] = '.';
  o += b64url(c, clen, token + o);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  if (HMAC(EVP_sha256(), KEY, (int)strlen(KEY), (unsigned char *)token, o, mac, &mac_len) == NULL)
    abort();
  token[o++] = '.';
  o += b64url(mac, mac_len, token + o);
  sig_auth_result_t r = verify(token, o);
  if (verify(token, o) != r) abort();
  free(token);
  return 0;
}
