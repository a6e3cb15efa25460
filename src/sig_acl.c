/* Patterns in one allocation each, checked in order (a token's list is short). */
#include "sig_acl.h"

#include <stdlib.h>
#include <string.h>

#include "sig_msg.h"
#include "sig_util.h"

typedef struct {
  size_t len; /* without the '*' */
  int prefix; /* ended in '*' */
  char text[];
} pattern_t;

struct sig_acl_s {
  pattern_t **items;
  size_t n;
};

sig_acl_t *sig_acl_new(void) {
  return sig_calloc(1, sizeof(sig_acl_t));
}

int sig_acl_add(sig_acl_t *acl, const char *s, size_t n) {
  int prefix = n > 0 && s[n - 1] == '*';
  size_t len = n - (size_t)prefix;
  if (n == 0 || (len > 0 && !sig_msg_domain_valid(s, len))) return SIG_EBADMSG;
  if (len > SIG_MSG_DOMAIN_MAX - (size_t)prefix) return SIG_EBADMSG;
  pattern_t *p = sig_malloc(sizeof(*p) + len + 1);
  p->len = len;
  p->prefix = prefix;
  memcpy(p->text, s, len);
  p->text[len] = '\0';
  acl->items = sig_realloc(acl->items, (acl->n + 1) * sizeof(*acl->items));
  acl->items[acl->n++] = p;
  return 0;
}

int sig_acl_allows(const sig_acl_t *acl, const char *domain) {
  if (acl == NULL) return 1;
  size_t n = strlen(domain);
  for (size_t i = 0; i < acl->n; i++) {
    const pattern_t *p = acl->items[i];
    if (p->prefix ? n >= p->len && memcmp(domain, p->text, p->len) == 0
                  : n == p->len && memcmp(domain, p->text, n) == 0)
      return 1;
  }
  return 0;
}

void sig_acl_free(sig_acl_t *acl) {
  if (acl == NULL) return;
  for (size_t i = 0; i < acl->n; i++) free(acl->items[i]);
  free(acl->items);
  free(acl);
}
