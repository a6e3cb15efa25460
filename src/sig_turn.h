/* TURN REST credentials, the scheme coturn checks with `use-auth-secret`: the username is
 * "EXPIRY:DOMAIN" (EXPIRY in Unix seconds) and the credential is base64(HMAC-SHA1(secret,
 * username)), the secret shared with the TURN server and read from [turn] secret_file (again on
 * SIGHUP). Only this file computes with it; it never goes to the log. No I/O but reading the
 * secret file. */
#ifndef SIG_TURN_H
#define SIG_TURN_H

#include <stddef.h>
#include <stdint.h>

#include "sig_config.h"

typedef struct sig_turn_s sig_turn_t;

/* base64 of a 20-byte HMAC-SHA1 with its padding, and the NUL. */
#define SIG_TURN_CREDENTIAL_SIZE 29

/* The [turn] settings of cfg with the secret read from turn.secret_file. Returns 0 with *out set,
 * or NULL when [turn] is absent (the feature is off); or SIG_ECONFIG with "turn.secret_file: …"
 * in err (unreadable, empty, too long). cfg is copied from. */
int sig_turn_new(sig_turn_t **out, const sig_config_t *cfg, char *err, size_t errlen);
/* Accepts NULL. */
void sig_turn_free(sig_turn_t *t);

/* Reads the secret file again (rotation). On failure the old secret stays and err says why.
 * Accepts NULL (nothing to do). */
int sig_turn_reload(sig_turn_t *t, char *err, size_t errlen);

/* The secret file named in err's messages, for the log. */
const char *sig_turn_secret_file(const sig_turn_t *t);

/* base64(HMAC-SHA1(secret[0..len), username)) into out (SIG_TURN_CREDENTIAL_SIZE bytes). */
void sig_turn_credential(const unsigned char *secret, size_t len, const char *username,
                         char out[SIG_TURN_CREDENTIAL_SIZE]);

/* The Resp body of GET /turn-credentials for domain (a valid domain, sig_msg_domain_valid) at
 * wall-clock time now_s: {"code":0,"msg":"ok","data":{"username":…,"credential":…,"ttl":N,
 * "uris":[…],"ice_servers":[{"urls":[…],"username":…,"credential":…}]}}. Returns a malloc'ed
 * text; *len gets its length. */
char *sig_turn_encode(const sig_turn_t *t, const char *domain, int64_t now_s, size_t *len);

#endif
