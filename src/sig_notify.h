/* Tells the service manager (systemd, Type=notify) where the server is in its life:
 * ready, reloading, stopping. A thin wrapper around libsystemd's sd_notify: when
 * the server was not started by systemd (NOTIFY_SOCKET unset) every call does nothing. */
#ifndef SIG_NOTIFY_H
#define SIG_NOTIFY_H

/* Each returns 0 when the message was sent or there is no one to send it to, or a
 * negative errno when sending failed (also logged as a warning: the server goes on). */

/* READY=1 with STATUS=listening on ADDRESS (address borrowed for the call; NULL
 * leaves STATUS out). Sent once listening, and again when a reload is done. */
int sig_notify_ready(const char *address);

/* RELOADING=1 with MONOTONIC_USEC=now (CLOCK_MONOTONIC), as systemd >= 253 expects
 * for Type=notify-reload; sig_notify_ready must follow when the reload is done. */
int sig_notify_reloading(void);

/* STOPPING=1. From then on ready and reloading send nothing: the server is going. */
int sig_notify_stopping(void);

#endif
