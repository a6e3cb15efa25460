/* Whom a peer may call: a list of domain patterns from its token's `calls` claim,
 * each an exact domain or a prefix ending in '*' ("cam-*"). No list means anyone.
 * Pure data: no I/O. */
#ifndef SIG_ACL_H
#define SIG_ACL_H

#include <stddef.h>

typedef struct sig_acl_s sig_acl_t;

/* An empty list (no one may be called). */
sig_acl_t *sig_acl_new(void);
/* Adds a pattern (n bytes): 1-128 characters of A-Z a-z 0-9 . _ ~ -, optionally ending
 * in '*' (then 0-127 before it; "*" alone allows everyone). Returns 0, or SIG_EBADMSG. */
int sig_acl_add(sig_acl_t *acl, const char *pattern, size_t n);
/* Whether domain may be called. A NULL acl allows everyone. */
int sig_acl_allows(const sig_acl_t *acl, const char *domain);
/* Accepts NULL. */
void sig_acl_free(sig_acl_t *acl);

#endif
