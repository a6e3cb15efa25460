/* libFuzzer target for sig_config_parse: any text is either accepted or refused with a
 * "NAME:LINE:COL:" message, and a refusal leaves the configuration exactly as it was. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sig_config.h"
#include "sig_util.h"

static int same_str(const char *a, const char *b) {
  return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  sig_config_t cfg, fresh;
  char err[512];
  sig_config_init(&cfg);
  sig_config_init(&fresh);
  int rc = sig_config_parse(&cfg, "f.toml", (const char *)data, size, err, sizeof err);
  if (rc != 0) {
    if (rc != SIG_ECONFIG || strncmp(err, "f.toml:", 7) != 0) abort();
    if (!same_str(cfg.host, fresh.host) || !same_str(cfg.log_dir, fresh.log_dir) ||
        !same_str(cfg.log_file, fresh.log_file) || !same_str(cfg.cors_origin, fresh.cors_origin) ||
        cfg.host_port != fresh.host_port || cfg.max_connections != fresh.max_connections ||
        cfg.duplicate != fresh.duplicate || cfg.log_level != fresh.log_level)
      abort();
  } else if (cfg.host == NULL || cfg.host_addr == NULL || cfg.host_port < 0 ||
             cfg.host_port > 65535) {
    abort();
  }
  sig_config_free(&cfg);
  sig_config_free(&fresh);
  return 0;
}
