/* libFuzzer target for sig_json: any input is scanned without a crash; what is recorded lies in
 * the input; a string's value written back with sig_json_write_string scans again as that same
 * string; a recorded array compacts to text that scans as an array of the same length. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sig_json.h"
#include "sig_util.h"

static const sig_json_member_t inner[] = {{"s", 2, NULL}, {"a", 3, NULL}};
static const sig_json_schema_t inner_schema = {inner, 2};
static const sig_json_member_t top[] = {
    {"s", 0, NULL}, {"a", 1, NULL}, {"o", 4, &inner_schema}, {"k\xc3\xa9y", 5, NULL}};
static const sig_json_schema_t schema = {top, 4};

static void check_string(const sig_json_val_t *v) {
  size_t span = (size_t)(v->end - v->start);
  char *value = malloc(span + 1), *back;
  size_t n = sig_json_string_value(v, value);
  if (n > span) abort();
  value[n] = '\0';
  if (v->nul || memchr(value, '\0', n) != NULL) { /* \u0000: not a C string */
    free(value);
    return;
  }
  size_t blen = sig_json_write_string(NULL, value);
  back = malloc(blen + 1);
  if (sig_json_write_string(back, value) != blen) abort();
  sig_json_val_t root, again;
  memset(&again, 0, sizeof again);
  if (sig_json_scan(back, blen, NULL, NULL, &root, NULL, 0) != 0) abort();
  if (root.kind != SIG_JSON_STRING) abort();
  char *value2 = malloc(blen + 1);
  size_t n2 = sig_json_string_value(&root, value2);
  if (n2 != n || memcmp(value, value2, n) != 0) abort();
  free(value2);
  free(back);
  free(value);
}

static void check_array(const sig_json_val_t *v) {
  size_t span = (size_t)(v->end - v->start);
  char *text = malloc(span + 1);
  size_t n = sig_json_compact(v, text);
  sig_json_val_t root;
  if (n > span) abort();
  if (sig_json_scan(text, n, NULL, NULL, &root, NULL, 0) != 0) abort();
  if (root.kind != SIG_JSON_ARRAY || root.count != v->count || root.spaced) abort();
  free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  sig_json_val_t slots[6], root;
  char err[700];
  const char *buf = (const char *)data;
  memset(slots, 0, sizeof slots);
  int rc = sig_json_scan(buf, size, &schema, slots, &root, err, sizeof err);
  if (rc != 0) {
    if (rc != SIG_EBADMSG || err[0] == '\0' || strstr(err, " at line ") == NULL) abort();
    return 0;
  }
  if (root.start < buf || root.end > buf + size || root.kind == SIG_JSON_NONE) abort();
  for (size_t i = 0; i < SIG_ARRAY_SIZE(slots); i++) {
    const sig_json_val_t *v = &slots[i];
    if (v->kind == SIG_JSON_NONE) continue;
    if (v->start < buf || v->end > buf + size || v->start >= v->end) abort();
    if (v->kind == SIG_JSON_STRING) check_string(v);
    if (v->kind == SIG_JSON_ARRAY) check_array(v);
  }
  return 0;
}
