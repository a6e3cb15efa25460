/* String-keyed chained hash table over intrusive nodes (FNV-1a, power-of-two
 * buckets, doubling at load factor 1). */
#include "sig_map.h"

#include <stdlib.h>
#include <string.h>

#include "sig_text.h"
#include "sig_util.h"

static uint32_t hash_key(const char *s, size_t len) {
  return sig_fnv1a(SIG_FNV1A_INIT, s, len);
}

void sig_map_init(sig_map_t *m) {
  m->nbuckets = 64;
  m->buckets = sig_calloc(m->nbuckets, sizeof(*m->buckets));
  m->count = 0;
}

void sig_map_free(sig_map_t *m) {
  if (m == NULL) return;
  free(m->buckets);
  m->buckets = NULL;
  m->nbuckets = m->count = 0;
}

sig_map_node_t *sig_map_get(const sig_map_t *m, const char *key, size_t len) {
  uint32_t h = hash_key(key, len);
  for (sig_map_node_t *n = m->buckets[h & (m->nbuckets - 1)]; n != NULL; n = n->next)
    if (n->hash == h && n->keylen == len && memcmp(n->key, key, len) == 0) return n;
  return NULL;
}

static void grow(sig_map_t *m) {
  size_t nb = m->nbuckets * 2;
  sig_map_node_t **b = sig_calloc(nb, sizeof(*b));
  for (size_t i = 0; i < m->nbuckets; i++) {
    sig_map_node_t *n = m->buckets[i];
    while (n != NULL) {
      sig_map_node_t *next = n->next;
      n->next = b[n->hash & (nb - 1)];
      b[n->hash & (nb - 1)] = n;
      n = next;
    }
  }
  free(m->buckets);
  m->buckets = b;
  m->nbuckets = nb;
}

void sig_map_put(sig_map_t *m, sig_map_node_t *n, const char *key, size_t len) {
  if (m->count >= m->nbuckets) grow(m);
  n->key = key;
  n->keylen = (uint32_t)len;
  n->hash = hash_key(key, len);
  sig_map_node_t **b = &m->buckets[n->hash & (m->nbuckets - 1)];
  n->next = *b;
  *b = n;
  m->count++;
}

void sig_map_remove(sig_map_t *m, sig_map_node_t *n) {
  sig_map_node_t **p = &m->buckets[n->hash & (m->nbuckets - 1)];
  while (*p != NULL && *p != n) p = &(*p)->next;
  if (*p == NULL) return;
  *p = n->next;
  n->next = NULL;
  m->count--;
}

static sig_map_node_t *first_from(const sig_map_t *m, size_t bucket) {
  for (size_t i = bucket; i < m->nbuckets; i++)
    if (m->buckets[i] != NULL) return m->buckets[i];
  return NULL;
}

sig_map_node_t *sig_map_first(const sig_map_t *m) {
  return first_from(m, 0);
}

sig_map_node_t *sig_map_next(const sig_map_t *m, const sig_map_node_t *n) {
  return n->next != NULL ? n->next : first_from(m, (n->hash & (m->nbuckets - 1)) + 1);
}
