/* A strict RFC 8259 JSON scanner that builds no tree, and a JSON string writer.
 * One pass validates the whole text; the members that a caller-supplied schema
 * names are recorded (where their values lie, what they hold) in the caller's
 * slots, so the caller reads only what it needs, without copying the rest. It
 * knows nothing of any protocol: the schema is the caller's. No I/O. */
#ifndef SIG_JSON_H
#define SIG_JSON_H

#include <stddef.h>
#include <stdint.h>

/* Nesting deeper than this many objects and arrays is refused. */
#define SIG_JSON_DEPTH 32

typedef enum {
  SIG_JSON_NONE = 0, /* the member was absent */
  SIG_JSON_STRING,
  SIG_JSON_NUMBER,
  SIG_JSON_OBJECT,
  SIG_JSON_ARRAY,
  SIG_JSON_LITERAL /* true, false, null */
} sig_json_kind_t;

/* A recorded value. Its text is [start, end) of the scanned buffer; a string's
 * includes its quotes, an array's its brackets. */
typedef struct {
  const char *start, *end;
  uint8_t kind;    /* sig_json_kind_t */
  uint8_t escaped; /* string: holds a backslash escape */
  uint8_t nul;     /* string: holds \u0000 */
  uint8_t base64;  /* string: only A-Z a-z 0-9 + / then at most two '=', no escape */
  uint8_t spaced;  /* array: whitespace between its tokens */
  uint8_t bad_nul; /* array: element `bad` is a string holding NUL (else not a string) */
  size_t count;    /* array: elements */
  size_t bad;      /* array: first element that is not a NUL-free string, or SIZE_MAX */
} sig_json_val_t;

typedef struct sig_json_schema_s sig_json_schema_t;

/* A member to record: its value goes to slots[slot]. When the value is an object
 * and `object` is not NULL, that object's members are recorded by `object` too.
 * Names are ASCII, shorter than 64 bytes; keys match after unescaping. */
typedef struct {
  const char *name;
  int slot;
  const sig_json_schema_t *object;
} sig_json_member_t;

struct sig_json_schema_s {
  const sig_json_member_t *members;
  size_t n;
};

/* Scans len bytes of buf (buf may be NULL when len is 0) as one JSON text: UTF-8
 * without a byte order mark, no duplicate keys in an object, at most
 * SIG_JSON_DEPTH levels. Records the root value in *root and the members of the
 * root object that schema names (schema may be NULL) in slots, which the caller
 * zeroes beforehand (SIG_JSON_NONE marks an absent member). Returns 0, or
 * SIG_EBADMSG with "<what> at line L column C" in err (the column counts
 * characters, 1-based; err may be NULL). Slots are unspecified after a failure. */
int sig_json_scan(const char *buf, size_t len, const sig_json_schema_t *schema,
                  sig_json_val_t *slots, sig_json_val_t *root, char *err, size_t errlen);

/* Writes the value of a scanned string (v->kind == SIG_JSON_STRING) to out, which
 * has room for v->end - v->start bytes; returns its length. No NUL is added. */
size_t sig_json_string_value(const sig_json_val_t *v, char *out);

/* Writes the text of a scanned array without the whitespace between its tokens to
 * out, which has room for v->end - v->start bytes; returns its length. */
size_t sig_json_compact(const sig_json_val_t *v, char *out);

/* Calls each(arg, element) for every element of a scanned array of strings (v->kind ==
 * SIG_JSON_ARRAY and v->bad == SIZE_MAX), in order; the element is a SIG_JSON_STRING value
 * (read it with sig_json_string_value). Stops early and returns the callback's nonzero value,
 * else returns 0. */
int sig_json_each_string(const sig_json_val_t *v, int (*each)(void *arg, const sig_json_val_t *s),
                         void *arg);

/* Writes NUL-terminated s as a JSON string (quotes included) to out when out is not
 * NULL, and returns its length either way: '"', '\\' and control characters
 * escaped, invalid UTF-8 replaced by U+FFFD. NULL is written as null. */
size_t sig_json_write_string(char *out, const char *s);

#endif
