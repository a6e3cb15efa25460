/* The secret is kept as read (less its line ending) and wiped when replaced or freed; the
 * credential is computed per request with libcrypto's one-shot HMAC. */
#include "sig_turn.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sig_util.h"

/* coturn reads static-auth-secret into a buffer of its own; a longer secret is no secret of
 * ours. */
#define SECRET_MAX 512
#define SECRET_FILE_MAX 4096 /* with the blank space around the secret */

struct sig_turn_s {
  char *secret_file;
  unsigned char *secret;
  size_t secret_len;
  int64_t ttl_s;
  char **uris;
  size_t nuris;
};

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt,
                                                      ...) {
  va_list ap;
  if (err == NULL || errlen == 0) return SIG_ECONFIG;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return SIG_ECONFIG;
}

/* Whether c is blank space as coturn's configuration reader skips it (isspace in C). */
static int blank(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Reads the secret file: its bytes less the blank space around them (a line ending that `echo`
 * or an editor adds, spaces of a paste), since coturn reads `static-auth-secret=` without the
 * blank space around the value: a secret kept with it would never match. */
static int read_secret(const char *path, unsigned char **out, size_t *outlen, char *err,
                       size_t errlen) {
  char why[128];
  unsigned char *buf;
  long got = sig_read_file(path, SECRET_FILE_MAX, &buf, why, sizeof(why));
  if (got < 0) return fail(err, errlen, "turn.secret_file: cannot read %s: %s", path, why);
  size_t a = 0, n = (size_t)got;
  while (n > 0 && blank(buf[n - 1])) n--;
  while (a < n && blank(buf[a])) a++;
  int rc = 0;
  if (n - a > SECRET_MAX)
    rc = fail(err, errlen, "turn.secret_file: %s holds more than %d bytes", path, SECRET_MAX);
  else if (n == a)
    rc = fail(err, errlen, "turn.secret_file: %s is empty (put coturn's static-auth-secret in it)",
              path);
  if (rc == 0) {
    memmove(buf, buf + a, n - a);
    memset(buf + (n - a), 0, (size_t)got - (n - a));
    *out = buf;
    *outlen = n - a;
    return 0;
  }
  memset(buf, 0, (size_t)got);
  free(buf);
  return rc;
}

int sig_turn_new(sig_turn_t **out, const sig_config_t *cfg, char *err, size_t errlen) {
  *out = NULL;
  if (!cfg->turn) return 0;
  sig_turn_t *t = sig_calloc(1, sizeof(*t));
  t->secret_file = sig_strdup(cfg->turn_secret_file);
  t->ttl_s = cfg->turn_ttl_s;
  t->nuris = cfg->turn_uris.n;
  t->uris = sig_calloc(t->nuris + 1, sizeof(*t->uris));
  for (size_t i = 0; i < t->nuris; i++) t->uris[i] = sig_strdup(cfg->turn_uris.items[i]);
  int rc = read_secret(t->secret_file, &t->secret, &t->secret_len, err, errlen);
  if (rc != 0) {
    sig_turn_free(t);
    return rc;
  }
  *out = t;
  return 0;
}

void sig_turn_free(sig_turn_t *t) {
  if (t == NULL) return;
  if (t->secret != NULL) memset(t->secret, 0, t->secret_len);
  free(t->secret);
  free(t->secret_file);
  for (size_t i = 0; i < t->nuris; i++) free(t->uris[i]);
  free(t->uris);
  free(t);
}

int sig_turn_reload(sig_turn_t *t, char *err, size_t errlen) {
  unsigned char *secret;
  size_t len;
  if (t == NULL) return 0;
  int rc = read_secret(t->secret_file, &secret, &len, err, errlen);
  if (rc != 0) return rc;
  memset(t->secret, 0, t->secret_len);
  free(t->secret);
  t->secret = secret;
  t->secret_len = len;
  return 0;
}

const char *sig_turn_secret_file(const sig_turn_t *t) {
  return t != NULL ? t->secret_file : "";
}

void sig_turn_credential(const unsigned char *secret, size_t len, const char *username,
                         char out[SIG_TURN_CREDENTIAL_SIZE]) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int maclen = 0;
  /* HMAC fails only on a missing digest or out of memory: neither is a request's fault. */
  if (HMAC(EVP_sha1(), secret, (int)len, (const unsigned char *)username, strlen(username), mac,
           &maclen) == NULL ||
      maclen != 20) {
    fprintf(stderr, "%s:%d: HMAC-SHA1 failed\n", __FILE__, __LINE__);
    abort();
  }
  EVP_EncodeBlock((unsigned char *)out, mac, (int)maclen); /* 28 characters and the NUL */
  memset(mac, 0, sizeof(mac));
}

/* The URIs as a JSON array; they need no escaping (turn.uris refuses quotes, backslashes and
 * control characters). */
static void put_uris(sig_buf_t *out, const sig_turn_t *t) {
  sig_buf_printf(out, "[");
  for (size_t i = 0; i < t->nuris; i++)
    sig_buf_printf(out, "%s\"%s\"", i > 0 ? "," : "", t->uris[i]);
  sig_buf_printf(out, "]");
}

char *sig_turn_encode(const sig_turn_t *t, const char *domain, int64_t now_s, size_t *len) {
  char user[32 + 256], cred[SIG_TURN_CREDENTIAL_SIZE];
  sig_buf_t out = {NULL, 0, 0};
  snprintf(user, sizeof(user), "%" PRId64 ":%s", now_s + t->ttl_s, domain);
  sig_turn_credential(t->secret, t->secret_len, user, cred);
  /* A domain is A-Z a-z 0-9 . _ ~ -: nothing to escape. */
  sig_buf_printf(&out,
                 "{\"code\":0,\"msg\":\"ok\",\"data\":{\"username\":\"%s\",\"credential\":\"%s\","
                 "\"ttl\":%" PRId64 ",\"uris\":",
                 user, cred, t->ttl_s);
  put_uris(&out, t);
  sig_buf_printf(&out, ",\"ice_servers\":[{\"urls\":");
  put_uris(&out, t);
  sig_buf_printf(&out, ",\"username\":\"%s\",\"credential\":\"%s\"}]}}", user, cred);
  memset(cred, 0, sizeof(cred));
  *len = out.n;
  return out.s;
}
