/* JWT auth: a token names the domain it is for (`sub`) and, optionally, whom its
 * holder may call (`calls`). The signature is verified by libjwt, with the key
 * and the one algorithm the configuration names; everything else about a token is
 * checked here, strictly: its header's `alg` before libjwt sees it (so `none`
 * and algorithm confusion never pass), and its claims (`exp` and `sub` required;
 * `nbf`, `iss`, `aud` checked when present or configured). Only this file sees
 * jwt.h. No I/O but reading the key file. */
#ifndef SIG_AUTH_H
#define SIG_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "sig_acl.h"
#include "sig_config.h"
#include "sig_msg.h"

typedef struct sig_auth_s sig_auth_t;

/* The longest token read (bytes). */
#define SIG_AUTH_TOKEN_MAX 8192

typedef enum {
  SIG_AUTH_OK = 0,
  SIG_AUTH_MISSING, /* no token at all */
  SIG_AUTH_EXPIRED, /* past exp (with leeway) */
  SIG_AUTH_INVALID  /* anything else: form, algorithm, signature, claims */
} sig_auth_result_t;

/* What a valid token grants. */
typedef struct {
  char sub[SIG_MSG_DOMAIN_MAX + 1];
  sig_acl_t *calls; /* owned by the receiver of the claims: free it; NULL: anyone */
  int64_t exp;
} sig_auth_claims_t;

/* The [auth] settings of cfg, with the key read from auth.key_file when mode is "jwt".
 * Returns 0 with *out set (also for mode "none": then every call is allowed), or
 * SIG_ECONFIG with "auth.key_file: …" in err. cfg is copied from. */
int sig_auth_new(sig_auth_t **out, const sig_config_t *cfg, char *err, size_t errlen);
/* Accepts NULL. */
void sig_auth_free(sig_auth_t *a);
/* Whether tokens are required (mode "jwt"). */
int sig_auth_required(const sig_auth_t *a);

/* Reads the key file again (key rotation). On failure the old key stays and err says why. */
int sig_auth_reload(sig_auth_t *a, char *err, size_t errlen);

/* Checks a token (len bytes, need not be NUL-terminated) at wall-clock time now_s. On
 * SIG_AUTH_OK, claims holds what it grants (free claims->calls). */
sig_auth_result_t sig_auth_verify(const sig_auth_t *a, const char *token, size_t len,
                                  int64_t now_s, sig_auth_claims_t *claims);

/* The words a refusal uses: "token missing", "token expired", "token invalid". */
const char *sig_auth_reason(sig_auth_result_t r);

/* A token for sub, valid for ttl_s from now_s, allowing calls to the n patterns (none: no
 * `calls` claim), signed with the configured HMAC key. Returns a malloc'ed string, or NULL
 * with the reason in err (not an HMAC algorithm, a bad pattern or sub). */
char *sig_auth_mint(const sig_auth_t *a, const char *sub, int64_t ttl_s,
                    const char *const *calls, size_t n, int64_t now_s, char *err, size_t errlen);

#endif
