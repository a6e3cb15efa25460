/* Token checks in order: form (three base64url segments), header (its `alg` must be the
 * configured one, no `crit`), signature (libjwt, with the configured key), then the
 * claims, read with our own strict JSON scanner rather than trusted from anyone. */
#include "sig_auth.h"

#include <errno.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sig_json.h"
#include "sig_text.h"
#include "sig_util.h"

#define KEY_FILE_MAX (64 * 1024)
#define HMAC_KEY_MIN 32

static const struct {
  const char *name;
  jwt_alg_t jwt;
} algs[] = {
    [SIG_ALG_HS256] = {"HS256", JWT_ALG_HS256}, [SIG_ALG_HS384] = {"HS384", JWT_ALG_HS384},
    [SIG_ALG_HS512] = {"HS512", JWT_ALG_HS512}, [SIG_ALG_RS256] = {"RS256", JWT_ALG_RS256},
    [SIG_ALG_RS384] = {"RS384", JWT_ALG_RS384}, [SIG_ALG_RS512] = {"RS512", JWT_ALG_RS512},
    [SIG_ALG_ES256] = {"ES256", JWT_ALG_ES256}, [SIG_ALG_ES384] = {"ES384", JWT_ALG_ES384},
};

struct sig_auth_s {
  sig_auth_mode_t mode;
  sig_auth_alg_t alg;
  char *key_file, *issuer, *audience; /* issuer, audience: NULL when not configured */
  int64_t leeway_s;
  unsigned char *key; /* the HMAC secret, or the PEM text of the public key (NUL-terminated) */
  size_t key_len;
};

static int is_hmac(sig_auth_alg_t alg) {
  return alg <= SIG_ALG_HS512;
}

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt,
                                                      ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return SIG_ECONFIG;
}

/* A public key of the kind alg needs: RSA of 2048 bits or more, or EC on P-256 / P-384. */
static int check_public_key(sig_auth_alg_t alg, const unsigned char *pem, size_t len, char *err,
                            size_t errlen) {
  BIO *bio = BIO_new_mem_buf(pem, (int)len);
  EVP_PKEY *key = bio != NULL ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
  int rc = 0;
  char group[64] = "";
  if (key == NULL) {
    rc = fail(err, errlen, "not a PEM public key (\"-----BEGIN PUBLIC KEY-----\") for %s",
              algs[alg].name);
  } else if (alg <= SIG_ALG_RS512) {
    if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA)
      rc = fail(err, errlen, "%s needs an RSA public key", algs[alg].name);
    else if (EVP_PKEY_get_bits(key) < 2048)
      rc = fail(err, errlen, "an RSA key of %d bits is too short (2048 at least)",
                EVP_PKEY_get_bits(key));
  } else {
    const char *want = alg == SIG_ALG_ES256 ? "prime256v1" : "secp384r1";
    if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC ||
        EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       NULL) != 1 ||
        strcmp(group, want) != 0)
      rc = fail(err, errlen, "%s needs an EC public key on %s", algs[alg].name,
                alg == SIG_ALG_ES256 ? "P-256" : "P-384");
  }
  EVP_PKEY_free(key);
  BIO_free(bio);
  return rc;
}

/* Whether the file opens (after blank space) with a PEM line. */
static int looks_like_pem(const unsigned char *buf, size_t n) {
  size_t i = 0;
  while (i < n && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n')) i++;
  return n - i >= 10 && memcmp(buf + i, "-----BEGIN", 10) == 0;
}

/* Reads and checks the key file into *key (NUL-terminated, heap). */
static int read_key(const sig_auth_t *a, unsigned char **key, size_t *len, char *err,
                    size_t errlen) {
  char why[256];
  unsigned char *buf;
  long got = sig_read_file(a->key_file, KEY_FILE_MAX, &buf, why, sizeof(why));
  if (got == SIG_ETOOBIG)
    return fail(err, errlen, "auth.key_file: %s is larger than %d bytes", a->key_file,
                KEY_FILE_MAX);
  if (got < 0) return fail(err, errlen, "auth.key_file: cannot read %s: %s", a->key_file, why);
  size_t n = (size_t)got;
  int rc = 0;
  if (is_hmac(a->alg) && looks_like_pem(buf, n))
    rc = fail(err, errlen,
              "auth.key_file: %s holds a PEM key, but %s needs a shared secret (a public key "
              "as an HMAC secret would let anyone who has it make tokens)",
              a->key_file, algs[a->alg].name);
  else if (is_hmac(a->alg) && n < HMAC_KEY_MIN)
    rc = fail(err, errlen, "auth.key_file: %s holds %zu bytes; an %s secret needs %d at least",
              a->key_file, n, algs[a->alg].name, HMAC_KEY_MIN);
  else if (!is_hmac(a->alg) && check_public_key(a->alg, buf, n, why, sizeof(why)) != 0)
    rc = fail(err, errlen, "auth.key_file: %s: %s", a->key_file, why);
  if (rc != 0) {
    memset(buf, 0, n);
    free(buf);
    return rc;
  }
  *key = buf;
  *len = n;
  return 0;
}

int sig_auth_new(sig_auth_t **out, const sig_config_t *cfg, char *err, size_t errlen) {
  sig_auth_t *a = sig_calloc(1, sizeof(*a));
  a->mode = cfg->auth_mode;
  a->alg = cfg->auth_alg;
  a->leeway_s = cfg->auth_leeway_s;
  a->key_file = sig_strdup(cfg->auth_key_file != NULL ? cfg->auth_key_file : "");
  if (cfg->auth_issuer != NULL && cfg->auth_issuer[0] != '\0')
    a->issuer = sig_strdup(cfg->auth_issuer);
  if (cfg->auth_audience != NULL && cfg->auth_audience[0] != '\0')
    a->audience = sig_strdup(cfg->auth_audience);
  if (a->mode == SIG_AUTH_JWT) {
    int rc = a->key_file[0] == '\0'
                 ? fail(err, errlen, "auth.key_file: required when auth.mode is \"jwt\"")
                 : read_key(a, &a->key, &a->key_len, err, errlen);
    if (rc != 0) {
      sig_auth_free(a);
      return rc;
    }
  }
  *out = a;
  return 0;
}

void sig_auth_free(sig_auth_t *a) {
  if (a == NULL) return;
  if (a->key != NULL) memset(a->key, 0, a->key_len); /* a secret should not linger */
  free(a->key);
  free(a->key_file);
  free(a->issuer);
  free(a->audience);
  free(a);
}

int sig_auth_required(const sig_auth_t *a) {
  return a != NULL && a->mode == SIG_AUTH_JWT;
}

int sig_auth_reload(sig_auth_t *a, char *err, size_t errlen) {
  unsigned char *key;
  size_t len;
  if (!sig_auth_required(a)) return 0;
  int rc = read_key(a, &key, &len, err, errlen);
  if (rc != 0) return rc;
  memset(a->key, 0, a->key_len);
  free(a->key);
  a->key = key;
  a->key_len = len;
  return 0;
}

const char *sig_auth_reason(sig_auth_result_t r) {
  switch (r) {
    case SIG_AUTH_OK: return "ok";
    case SIG_AUTH_MISSING: return "token missing";
    case SIG_AUTH_EXPIRED: return "token expired";
    default: return "token invalid";
  }
}

/* ---- verification */

enum { H_ALG, H_CRIT, H_COUNT };
static const sig_json_member_t header_members[] = {{"alg", H_ALG, NULL}, {"crit", H_CRIT, NULL}};
static const sig_json_schema_t header_schema = {header_members, H_COUNT};

enum { C_SUB, C_EXP, C_NBF, C_ISS, C_AUD, C_CALLS, C_COUNT };
static const sig_json_member_t claim_members[] = {
    {"sub", C_SUB, NULL}, {"exp", C_EXP, NULL}, {"nbf", C_NBF, NULL},
    {"iss", C_ISS, NULL}, {"aud", C_AUD, NULL}, {"calls", C_CALLS, NULL},
};
static const sig_json_schema_t claim_schema = {claim_members, C_COUNT};

/* A decoded segment and the JSON object it must be, scanned with schema into slots. */
static int decode_segment(const char *s, size_t n, const sig_json_schema_t *schema,
                          sig_json_val_t *slots, unsigned char *buf) {
  sig_json_val_t root;
  long len = sig_base64url_decode(s, n, buf);
  if (len < 0) return -1;
  if (sig_json_scan((const char *)buf, (size_t)len, schema, slots, &root, NULL, 0) != 0) return -1;
  return root.kind == SIG_JSON_OBJECT ? 0 : -1;
}

/* The value of a scanned string, NUL-terminated in out (cap bytes), or NULL when it does not
 * fit or holds NUL. */
static const char *string_of(const sig_json_val_t *v, char *out, size_t cap) {
  /* the raw text, quotes aside, bounds the value: it must fit with its NUL */
  if (v->kind != SIG_JSON_STRING || v->nul || (size_t)(v->end - v->start) - 2 >= cap) return NULL;
  out[sig_json_string_value(v, out)] = '\0';
  return out;
}

/* A NumericDate (RFC 7519): a JSON number, seconds since the epoch (fractions dropped). */
static int numeric_date(const sig_json_val_t *v, int64_t *out) {
  char text[40];
  size_t n = (size_t)(v->end - v->start);
  if (v->kind != SIG_JSON_NUMBER || n >= sizeof(text)) return -1;
  memcpy(text, v->start, n);
  text[n] = '\0';
  errno = 0;
  double d = strtod(text, NULL);
  if (errno != 0 || d < -9e15 || d > 9e15) return -1;
  *out = (int64_t)d;
  return 0;
}

typedef struct {
  const char *want;
  int found;
} aud_match_t;

static int match_aud(void *arg, const sig_json_val_t *s) {
  aud_match_t *m = arg;
  char value[512];
  if (string_of(s, value, sizeof(value)) != NULL && strcmp(value, m->want) == 0) m->found = 1;
  return m->found;
}

static int add_call(void *arg, const sig_json_val_t *s) {
  char value[SIG_MSG_DOMAIN_MAX + 2];
  if (string_of(s, value, sizeof(value)) == NULL) return -1;
  return sig_acl_add(arg, value, strlen(value)) != 0 ? -1 : 0;
}

static sig_auth_result_t check_claims(const sig_auth_t *a, const sig_json_val_t *c, int64_t now,
                                      sig_auth_claims_t *out) {
  char text[512];
  int64_t exp, nbf;
  if (c[C_EXP].kind == SIG_JSON_NONE || numeric_date(&c[C_EXP], &exp) != 0) return SIG_AUTH_INVALID;
  if (c[C_NBF].kind != SIG_JSON_NONE &&
      (numeric_date(&c[C_NBF], &nbf) != 0 || now + a->leeway_s < nbf))
    return SIG_AUTH_INVALID;
  const char *sub = string_of(&c[C_SUB], out->sub, sizeof(out->sub));
  if (sub == NULL || !sig_msg_domain_valid(sub, strlen(sub))) return SIG_AUTH_INVALID;
  if (a->issuer != NULL) {
    const char *iss = string_of(&c[C_ISS], text, sizeof(text));
    if (iss == NULL || strcmp(iss, a->issuer) != 0) return SIG_AUTH_INVALID;
  }
  /* An audience in the token must name us (RFC 7519 4.1.3), and a configured one must be there. */
  if (c[C_AUD].kind != SIG_JSON_NONE || a->audience != NULL) {
    aud_match_t m = {a->audience, 0};
    if (a->audience == NULL) return SIG_AUTH_INVALID;
    if (c[C_AUD].kind == SIG_JSON_STRING)
      match_aud(&m, &c[C_AUD]);
    else if (c[C_AUD].kind == SIG_JSON_ARRAY && c[C_AUD].bad == SIZE_MAX)
      sig_json_each_string(&c[C_AUD], match_aud, &m);
    if (!m.found) return SIG_AUTH_INVALID;
  }
  if (c[C_CALLS].kind != SIG_JSON_NONE) {
    if (c[C_CALLS].kind != SIG_JSON_ARRAY || c[C_CALLS].bad != SIZE_MAX) return SIG_AUTH_INVALID;
    out->calls = sig_acl_new();
    if (sig_json_each_string(&c[C_CALLS], add_call, out->calls) != 0) {
      sig_acl_free(out->calls);
      out->calls = NULL;
      return SIG_AUTH_INVALID;
    }
  }
  out->exp = exp;
  /* Expiry last: a token that is also malformed is invalid, not merely expired. */
  if (now - a->leeway_s >= exp) {
    sig_acl_free(out->calls);
    out->calls = NULL;
    return SIG_AUTH_EXPIRED;
  }
  return SIG_AUTH_OK;
}

static int base64url_chars(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] != '-' && s[i] != '_' && sig_base64_value((unsigned char)s[i]) < 0) return 0;
  return 1;
}

sig_auth_result_t sig_auth_verify(const sig_auth_t *a, const char *token, size_t len, int64_t now_s,
                                  sig_auth_claims_t *claims) {
  sig_json_val_t header[H_COUNT], c[C_COUNT];
  char copy[SIG_AUTH_TOKEN_MAX + 1];
  unsigned char buf[SIG_AUTH_TOKEN_MAX];
  memset(claims, 0, sizeof(*claims));
  if (len == 0) return SIG_AUTH_MISSING;
  if (len > SIG_AUTH_TOKEN_MAX || !sig_auth_required(a)) return SIG_AUTH_INVALID;
  const char *dot1 = memchr(token, '.', len);
  const char *dot2 = dot1 != NULL ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
  if (dot2 == NULL) return SIG_AUTH_INVALID;
  size_t hlen = (size_t)(dot1 - token), plen = (size_t)(dot2 - dot1 - 1);
  size_t slen = len - (size_t)(dot2 + 1 - token);
  if (hlen == 0 || plen == 0 || slen == 0 || memchr(dot2 + 1, '.', slen) != NULL ||
      !base64url_chars(token, hlen) || !base64url_chars(dot1 + 1, plen) ||
      !base64url_chars(dot2 + 1, slen))
    return SIG_AUTH_INVALID;
  /* The header first: only the configured algorithm goes on to libjwt. */
  char alg[16];
  memset(header, 0, sizeof(header));
  if (decode_segment(token, hlen, &header_schema, header, buf) != 0 ||
      string_of(&header[H_ALG], alg, sizeof(alg)) == NULL || strcmp(alg, algs[a->alg].name) != 0 ||
      header[H_CRIT].kind != SIG_JSON_NONE)
    return SIG_AUTH_INVALID;
  /* The signature. */
  jwt_t *jwt = NULL;
  memcpy(copy, token, len);
  copy[len] = '\0';
  int rc = jwt_decode(&jwt, copy, a->key, (int)a->key_len);
  int alg_ok = rc == 0 && jwt_get_alg(jwt) == algs[a->alg].jwt;
  jwt_free(jwt);
  if (!alg_ok) return SIG_AUTH_INVALID;
  /* The claims, as signed. */
  memset(c, 0, sizeof(c));
  if (decode_segment(dot1 + 1, plen, &claim_schema, c, buf) != 0) return SIG_AUTH_INVALID;
  return check_claims(a, c, now_s, claims);
}

/* ---- minting */

char *sig_auth_mint(const sig_auth_t *a, const char *sub, int64_t ttl_s, const char *const *calls,
                    size_t n, int64_t now_s, char *err, size_t errlen) {
  jwt_t *jwt = NULL;
  char *grants = NULL, *token = NULL, *out = NULL;
  if (!sig_auth_required(a) || !is_hmac(a->alg)) {
    snprintf(err, errlen,
             "tokens can be made here only with an HMAC key (auth.mode \"jwt\", "
             "auth.algorithm HS256, HS384 or HS512)");
    return NULL;
  }
  if (!sig_msg_domain_valid(sub, strlen(sub))) {
    snprintf(err, errlen, "--sub: must be 1-%d characters of A-Z a-z 0-9 . _ ~ -",
             SIG_MSG_DOMAIN_MAX);
    return NULL;
  }
  sig_acl_t *check = sig_acl_new();
  size_t glen = 32;
  for (size_t i = 0; i < n; i++) {
    if (sig_acl_add(check, calls[i], strlen(calls[i])) != 0) {
      snprintf(err, errlen, "--calls: '%.64s' is not a domain or a prefix ending in '*'", calls[i]);
      sig_acl_free(check);
      return NULL;
    }
    glen += sig_json_write_string(NULL, calls[i]) + 1;
  }
  sig_acl_free(check);
  if (jwt_new(&jwt) != 0) abort();
  if (jwt_add_grant(jwt, "sub", sub) != 0 || jwt_add_grant_int(jwt, "iat", (long)now_s) != 0 ||
      jwt_add_grant_int(jwt, "exp", (long)(now_s + ttl_s)) != 0 ||
      (a->issuer != NULL && jwt_add_grant(jwt, "iss", a->issuer) != 0) ||
      (a->audience != NULL && jwt_add_grant(jwt, "aud", a->audience) != 0))
    goto done;
  if (n > 0) {
    size_t o;
    grants = sig_malloc(glen);
    o = (size_t)snprintf(grants, glen, "{\"calls\":[");
    for (size_t i = 0; i < n; i++) {
      if (i > 0) grants[o++] = ',';
      o += sig_json_write_string(grants + o, calls[i]);
    }
    memcpy(grants + o, "]}", 3);
    if (jwt_add_grants_json(jwt, grants) != 0) goto done;
  }
  if (jwt_set_alg(jwt, algs[a->alg].jwt, a->key, (int)a->key_len) != 0) goto done;
  token = jwt_encode_str(jwt);
  if (token != NULL) out = sig_strdup(token);
done:
  if (out == NULL) snprintf(err, errlen, "cannot make the token (libjwt refused it)");
  free(token); /* libjwt 1.10: a malloc'ed string */
  jwt_free(jwt);
  free(grants);
  return out;
}
