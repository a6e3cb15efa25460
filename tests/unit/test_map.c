/* Unit tests for sig_map: put/get/remove, growth through many doublings, keys that share a
 * prefix, and removals of nodes that are not (or no longer) in the map. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* cmocka needs the headers above first */
#include <cmocka.h>

#include "sig_map.h"
#include "sig_util.h"

typedef struct {
  sig_map_node_t node;
  char key[32];
  int value;
} item_t;

static item_t *get(const sig_map_t *m, const char *key) {
  return (item_t *)sig_map_get(m, key, strlen(key));
}

static void put(sig_map_t *m, item_t *it, const char *key, int value) {
  snprintf(it->key, sizeof it->key, "%s", key);
  it->value = value;
  sig_map_put(m, &it->node, it->key, strlen(it->key));
}

static void test_put_get_remove(void **state) {
  sig_map_t m;
  item_t a, b, c;
  (void)state;
  sig_map_init(&m);
  assert_int_equal(m.count, 0);
  assert_null(get(&m, "a"));
  put(&m, &a, "a", 1);
  put(&m, &b, "b", 2);
  put(&m, &c, "c", 3);
  assert_int_equal(m.count, 3);
  assert_ptr_equal(get(&m, "a"), &a);
  assert_ptr_equal(get(&m, "b"), &b);
  assert_ptr_equal(get(&m, "c"), &c);
  assert_int_equal(get(&m, "b")->value, 2);
  assert_null(get(&m, "d"));
  assert_null(get(&m, ""));

  sig_map_remove(&m, &b.node);
  assert_int_equal(m.count, 2);
  assert_null(get(&m, "b"));
  assert_ptr_equal(get(&m, "a"), &a);
  assert_ptr_equal(get(&m, "c"), &c);

  /* a removed key may be put again, with another node */
  item_t b2;
  put(&m, &b2, "b", 20);
  assert_ptr_equal(get(&m, "b"), &b2);
  assert_int_equal(m.count, 3);

  sig_map_remove(&m, &a.node);
  sig_map_remove(&m, &b2.node);
  sig_map_remove(&m, &c.node);
  assert_int_equal(m.count, 0);
  for (size_t i = 0; i < m.nbuckets; i++) assert_null(m.buckets[i]);
  sig_map_free(&m);
  assert_null(m.buckets);
  assert_int_equal(m.count, 0);
  sig_map_free(&m); /* twice is harmless */
  sig_map_free(NULL);
}

/* The lookup uses the length, not the NUL: a key is found from a longer buffer. */
static void test_get_by_length(void **state) {
  sig_map_t m;
  item_t a;
  (void)state;
  sig_map_init(&m);
  put(&m, &a, "abc", 1);
  assert_ptr_equal(sig_map_get(&m, "abcdef", 3), &a.node);
  assert_null(sig_map_get(&m, "abcdef", 2));
  assert_null(sig_map_get(&m, "abcdef", 4));
  sig_map_remove(&m, &a.node);
  sig_map_free(&m);
}

#define MANY 10000

static void test_growth(void **state) {
  sig_map_t m;
  item_t *items = calloc(MANY, sizeof *items);
  char key[32];
  (void)state;
  assert_non_null(items);
  sig_map_init(&m);
  size_t initial = m.nbuckets;
  for (int i = 0; i < MANY; i++) {
    snprintf(key, sizeof key, "key-%d", i);
    put(&m, &items[i], key, i);
    assert_int_equal(m.count, (size_t)i + 1);
  }
  /* a power of two, doubled until the load factor is at most 1 */
  assert_true(m.nbuckets > initial);
  assert_int_equal(m.nbuckets & (m.nbuckets - 1), 0);
  assert_true(m.count <= m.nbuckets);
  for (int i = 0; i < MANY; i++) {
    snprintf(key, sizeof key, "key-%d", i);
    item_t *it = get(&m, key);
    assert_ptr_equal(it, &items[i]);
    assert_int_equal(it->value, i);
  }
  assert_null(get(&m, "key-10000"));
  assert_null(get(&m, "key--1"));

  /* every node is in exactly one chain, in the bucket its hash says */
  size_t seen = 0;
  for (size_t b = 0; b < m.nbuckets; b++)
    for (sig_map_node_t *n = m.buckets[b]; n != NULL; n = n->next) {
      assert_int_equal(n->hash & (m.nbuckets - 1), b);
      seen++;
    }
  assert_int_equal(seen, MANY);

  /* remove the even keys, then check both halves */
  for (int i = 0; i < MANY; i += 2) sig_map_remove(&m, &items[i].node);
  assert_int_equal(m.count, MANY / 2);
  for (int i = 0; i < MANY; i++) {
    snprintf(key, sizeof key, "key-%d", i);
    if (i % 2 == 0)
      assert_null(get(&m, key));
    else
      assert_ptr_equal(get(&m, key), &items[i]);
  }
  for (int i = 1; i < MANY; i += 2) sig_map_remove(&m, &items[i].node);
  assert_int_equal(m.count, 0);
  sig_map_free(&m);
  free(items);
}

static void test_same_prefix(void **state) {
  static const char *const keys[] = {"a", "ab", "abc", "abcd", "abcde", "abcdef", "b", "ba"};
  enum { N = sizeof keys / sizeof keys[0] };
  sig_map_t m;
  item_t items[N];
  (void)state;
  sig_map_init(&m);
  for (int i = 0; i < N; i++) put(&m, &items[i], keys[i], i);
  for (int i = 0; i < N; i++) assert_ptr_equal(get(&m, keys[i]), &items[i]);
  assert_null(get(&m, "abcdefg"));
  assert_null(get(&m, "abce"));
  /* removing a key leaves its prefixes and extensions in place */
  sig_map_remove(&m, &items[2].node);
  assert_null(get(&m, "abc"));
  assert_ptr_equal(get(&m, "ab"), &items[1]);
  assert_ptr_equal(get(&m, "abcd"), &items[3]);
  for (int i = 0; i < N; i++)
    if (i != 2) sig_map_remove(&m, &items[i].node);
  assert_int_equal(m.count, 0);
  sig_map_free(&m);
}

static void test_remove_missing(void **state) {
  sig_map_t m;
  item_t a, b, never;
  (void)state;
  sig_map_init(&m);
  put(&m, &a, "a", 1);
  put(&m, &b, "b", 2);

  /* removed twice */
  sig_map_remove(&m, &a.node);
  sig_map_remove(&m, &a.node);
  assert_int_equal(m.count, 1);
  assert_ptr_equal(get(&m, "b"), &b);

  /* a node never put, with the same key (so the same bucket) as one that is in the map */
  memset(&never, 0, sizeof never);
  snprintf(never.key, sizeof never.key, "b");
  never.node.key = never.key;
  never.node.keylen = 1;
  never.node.hash = b.node.hash;
  sig_map_remove(&m, &never.node);
  assert_int_equal(m.count, 1);
  assert_ptr_equal(get(&m, "b"), &b);

  /* a zeroed node */
  memset(&never, 0, sizeof never);
  sig_map_remove(&m, &never.node);
  assert_int_equal(m.count, 1);
  assert_ptr_equal(get(&m, "b"), &b);

  sig_map_remove(&m, &b.node);
  assert_int_equal(m.count, 0);
  sig_map_remove(&m, &b.node);
  assert_int_equal(m.count, 0);
  sig_map_free(&m);
}

/* Iteration visits every node once, and taking the successor before removing a node makes
 * removal during the walk safe (how the router frees its peers). */
static void test_iterate(void **state) {
  enum { N = 1000 };
  static item_t items[N];
  static int seen[N];
  sig_map_t m;
  char key[32];
  (void)state;
  sig_map_init(&m);
  assert_null(sig_map_first(&m));
  for (int i = 0; i < N; i++) {
    snprintf(key, sizeof key, "k%d", i);
    put(&m, &items[i], key, i);
  }
  memset(seen, 0, sizeof seen);
  for (sig_map_node_t *n = sig_map_first(&m); n != NULL; n = sig_map_next(&m, n))
    seen[SIG_CONTAINER_OF(n, item_t, node)->value]++;
  for (int i = 0; i < N; i++) assert_int_equal(seen[i], 1);
  memset(seen, 0, sizeof seen);
  for (sig_map_node_t *n = sig_map_first(&m), *next; n != NULL; n = next) {
    next = sig_map_next(&m, n);
    seen[SIG_CONTAINER_OF(n, item_t, node)->value]++;
    sig_map_remove(&m, n);
  }
  for (int i = 0; i < N; i++) assert_int_equal(seen[i], 1);
  assert_int_equal(m.count, 0);
  assert_null(sig_map_first(&m));
  sig_map_free(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_put_get_remove), cmocka_unit_test(test_get_by_length),
      cmocka_unit_test(test_growth),         cmocka_unit_test(test_same_prefix),
      cmocka_unit_test(test_remove_missing), cmocka_unit_test(test_iterate),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
