/* A strict RFC 8259 JSON tokenizer for the load generator: it checks the whole text and
 * returns a flat array of tokens (objects and arrays followed by their members), so that the
 * generator can verify the fields of every frame it receives without copying them. Independent
 * of the server's own codec on purpose: the generator must not share the server's mistakes. */
#ifndef BJSON_H
#define BJSON_H

#include <stddef.h>
#include <stdint.h>

typedef enum { BJ_OBJECT, BJ_ARRAY, BJ_STRING, BJ_NUMBER, BJ_TRUE, BJ_FALSE, BJ_NULL } bj_type_t;

typedef struct {
  uint8_t type;    /* bj_type_t */
  uint8_t escaped; /* strings: the raw text holds at least one backslash escape */
  uint32_t start;  /* strings: the first byte after the opening quote; others: the first byte */
  uint32_t len;    /* strings: raw bytes between the quotes; others: bytes of the value */
  uint32_t size;   /* objects: members; arrays: elements */
  uint32_t next;   /* the index of the first token after this value and everything inside it */
} bj_tok_t;

#define BJ_ENOMEM (-1) /* more tokens than max_toks */
#define BJ_EINVAL (-2) /* not JSON, or something after the value */
#define BJ_EDEPTH (-3) /* nested deeper than BJ_MAX_DEPTH */
#define BJ_MAX_DEPTH 32

/* Parses one JSON text (with optional surrounding whitespace) into toks. An object member is
 * two tokens, its key (a string) and its value. Returns the number of tokens, or BJ_E*. */
int bj_parse(const char *s, size_t len, bj_tok_t *toks, int max_toks);

/* The token index of the value of member `key` of object token obj; -1 if absent; -2 if the
 * key appears more than once (which the generator treats as a malformed frame). */
int bj_get(const bj_tok_t *toks, int obj, const char *s, const char *key);

/* Whether string token i, after unescaping, is exactly the len bytes at want. */
int bj_str_eq(const bj_tok_t *toks, int i, const char *s, const char *want, size_t len);

/* The index of element k of array token arr (0 <= k < size). */
int bj_elem(const bj_tok_t *toks, int arr, uint32_t k);

#endif
