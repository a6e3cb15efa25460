/* Intrusive circular doubly-linked lists (libuv's queue.h idea, typed).
 * A list head is a sig_list_t whose next/prev point at itself when empty. */
#ifndef SIG_LIST_H
#define SIG_LIST_H

#include <stddef.h>

#include "sig_util.h"

typedef struct sig_list_s {
  struct sig_list_s *next, *prev;
} sig_list_t;

#define SIG_LIST_DATA(ptr, type, field) SIG_CONTAINER_OF(ptr, type, field)

static inline void sig_list_init(sig_list_t *h) {
  h->next = h->prev = h;
}

static inline int sig_list_empty(const sig_list_t *h) {
  return h->next == h;
}

/* An unlinked node points at itself, so removing it twice is harmless. */
static inline void sig_list_remove(sig_list_t *n) {
  n->prev->next = n->next;
  n->next->prev = n->prev;
  n->next = n->prev = n;
}

static inline void sig_list_append(sig_list_t *h, sig_list_t *n) {
  n->prev = h->prev;
  n->next = h;
  h->prev->next = n;
  h->prev = n;
}

#define SIG_LIST_FOREACH_SAFE(it, tmp, head) \
  for ((it) = (head)->next, (tmp) = (it)->next; (it) != (head); (it) = (tmp), (tmp) = (it)->next)

#endif
