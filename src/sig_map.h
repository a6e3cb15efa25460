/* A string-keyed chained hash table over intrusive nodes: the owner embeds a
 * sig_map_node_t and keeps the key alive while the node is in the map. */
#ifndef SIG_MAP_H
#define SIG_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct sig_map_node_s {
  struct sig_map_node_s *next;
  const char *key; /* borrowed from the owner */
  uint32_t hash;
  uint32_t keylen;
} sig_map_node_t;

typedef struct {
  sig_map_node_t **buckets;
  size_t nbuckets; /* a power of two */
  size_t count;
} sig_map_t;

void sig_map_init(sig_map_t *m);
/* Frees the bucket array only; the nodes belong to their owners. */
void sig_map_free(sig_map_t *m);
/* Returns the node with this key, or NULL. */
sig_map_node_t *sig_map_get(const sig_map_t *m, const char *key, size_t len);
/* Inserts n under key (borrowed). The key must not be present. Grows the table as needed. */
void sig_map_put(sig_map_t *m, sig_map_node_t *n, const char *key, size_t len);
/* Removes n, which must be in the map. */
void sig_map_remove(sig_map_t *m, sig_map_node_t *n);

/* Iteration in no particular order: the first node, or NULL when empty; the node after n
 * (which must still be in the map), or NULL. Removing n after taking its successor is safe;
 * sig_map_put during an iteration is not. Get the owner with SIG_CONTAINER_OF. */
sig_map_node_t *sig_map_first(const sig_map_t *m);
sig_map_node_t *sig_map_next(const sig_map_t *m, const sig_map_node_t *n);

#endif
