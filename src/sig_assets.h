/* Static files compiled into the binary from web/ (the demo page and the
 * browser client module), so that the executable alone is enough. */
#ifndef SIG_ASSETS_H
#define SIG_ASSETS_H

#include <stddef.h>

typedef struct {
  const char *path; /* "/" for index.html, "/NAME" for the others */
  const char *content_type;
  const unsigned char *data;
  size_t len;
} sig_asset_t;

/* The asset served at path (not NUL-terminated: len bytes), or NULL. */
const sig_asset_t *sig_assets_find(const char *path, size_t len);

#endif
