/* sd_notify messages for systemd: READY, RELOADING (with its monotonic time stamp),
 * STOPPING, each with a STATUS line for `systemctl status`. */
#include "sig_notify.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "sig_log.h"

static int stopping;

/* sd_notify returns > 0 when sent, 0 when NOTIFY_SOCKET is unset, < 0 on failure. */
static int send_state(const char *what, const char *state) {
  int rc = sd_notify(0, state);
  if (rc < 0) {
    SIG_WARN("notify", "cannot tell the service manager %s error=\"%s\"", what, strerror(-rc));
    return rc;
  }
  return 0;
}

int sig_notify_ready(const char *address) {
  char state[256];
  if (stopping) return 0;
  if (address != NULL)
    snprintf(state, sizeof(state), "READY=1\nSTATUS=listening on %s", address);
  else
    snprintf(state, sizeof(state), "READY=1");
  return send_state("READY", state);
}

int sig_notify_reloading(void) {
  char state[128];
  struct timespec ts;
  if (stopping) return 0;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  snprintf(state, sizeof(state), "RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC=%" PRIu64,
           (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000);
  return send_state("RELOADING", state);
}

int sig_notify_stopping(void) {
  stopping = 1;
  return send_state("STOPPING", "STOPPING=1\nSTATUS=stopping: closing connections");
}
