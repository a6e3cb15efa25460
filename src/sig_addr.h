/* Network addresses as the limits and the log see them: IPv4 or IPv6 (an IPv4-mapped
 * IPv6 address is its IPv4 address), with a port; CIDR ranges; and the client
 * address that a trusted reverse proxy reports in X-Forwarded-For or Forwarded
 * (RFC 7239). Pure functions: no I/O. */
#ifndef SIG_ADDR_H
#define SIG_ADDR_H

#include <stddef.h>
#include <stdint.h>

struct sockaddr;

typedef struct {
  uint8_t family; /* 4, 6, or 0: unknown */
  uint8_t bytes[16];
  uint16_t port; /* 0: unknown */
} sig_addr_t;

/* Room for "[ffff:...:ffff]:65535". */
#define SIG_ADDR_STR_MAX 48

/* From a socket address (AF_INET, AF_INET6; anything else gives family 0). */
void sig_addr_from_sockaddr(sig_addr_t *a, const struct sockaddr *sa);

/* Parses "1.2.3.4", "1.2.3.4:5", "::1", "[::1]" or "[::1]:5" (n bytes of s). Returns 0, or
 * SIG_EBADMSG with *a unchanged. */
int sig_addr_parse(sig_addr_t *a, const char *s, size_t n);

/* "1.2.3.4" or "::1", with ":port" / "[...]:port" when with_port and the port is known;
 * "-" when unknown. Returns the length. */
size_t sig_addr_format(const sig_addr_t *a, int with_port, char out[SIG_ADDR_STR_MAX]);

/* Same address (ports aside). */
int sig_addr_equal(const sig_addr_t *a, const sig_addr_t *b);

typedef struct {
  sig_addr_t net;
  uint8_t bits;
} sig_cidr_t;

/* Parses "10.0.0.0/8", "::1/128", or a bare address (all its bits). Returns 0, or
 * SIG_EBADMSG with a reason in why. */
int sig_cidr_parse(sig_cidr_t *c, const char *s, const char **why);

int sig_cidr_contains(const sig_cidr_t *c, const sig_addr_t *a);

/* The client a request came from: peer itself unless peer is one of the n trusted
 * proxies; then the right-most address of the Forwarded `for=` list (when the header
 * is present) or else of X-Forwarded-For that is not itself a trusted proxy (a proxy
 * chain is walked from the right). A header that does not parse leaves peer as the
 * client. Either header may be NULL. Returns 1 when the client came from a header. */
int sig_addr_client(const sig_addr_t *peer, const sig_cidr_t *trusted, size_t n,
                    const char *forwarded, const char *xff, sig_addr_t *client);

/* A key for per-address accounting: an IPv4 address, or the /64 prefix of an IPv6 one
 * (one host or one LAN gets a /64). */
void sig_addr_key(const sig_addr_t *a, sig_addr_t *key);

#endif
