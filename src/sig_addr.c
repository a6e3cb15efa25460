/* Addresses, CIDR ranges and forwarded-for headers. Parsing goes through
 * inet_pton on a bounded copy; the header walk is from the right, where the
 * nearest (trusted) proxy appended what it saw. */
#include "sig_addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "sig_util.h"

static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static void set_v6(sig_addr_t *a, const uint8_t b[16], uint16_t port) {
  memset(a, 0, sizeof(*a));
  if (memcmp(b, v4_mapped, 12) == 0) {
    a->family = 4;
    memcpy(a->bytes, b + 12, 4);
  } else {
    a->family = 6;
    memcpy(a->bytes, b, 16);
  }
  a->port = port;
}

void sig_addr_from_sockaddr(sig_addr_t *a, const struct sockaddr *sa) {
  memset(a, 0, sizeof(*a));
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    a->family = 4;
    memcpy(a->bytes, &in->sin_addr, 4);
    a->port = ntohs(in->sin_port);
  } else if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    set_v6(a, in6->sin6_addr.s6_addr, ntohs(in6->sin6_port));
  }
}

/* The address alone (no port, no brackets) in s[0..n). */
static int parse_ip(sig_addr_t *a, const char *s, size_t n, uint16_t port) {
  char buf[INET6_ADDRSTRLEN + 1];
  uint8_t b[16];
  if (n == 0 || n >= sizeof(buf)) return SIG_EBADMSG;
  memcpy(buf, s, n);
  buf[n] = '\0';
  if (inet_pton(AF_INET, buf, b) == 1) {
    memset(a, 0, sizeof(*a));
    a->family = 4;
    memcpy(a->bytes, b, 4);
    a->port = port;
    return 0;
  }
  if (inet_pton(AF_INET6, buf, b) == 1) {
    set_v6(a, b, port);
    return 0;
  }
  return SIG_EBADMSG;
}

static int parse_port(const char *s, size_t n, uint16_t *port) {
  unsigned v = 0;
  if (n == 0 || n > 5) return SIG_EBADMSG;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return SIG_EBADMSG;
    v = v * 10 + (unsigned)(s[i] - '0');
  }
  if (v > 65535) return SIG_EBADMSG;
  *port = (uint16_t)v;
  return 0;
}

int sig_addr_parse(sig_addr_t *a, const char *s, size_t n) {
  uint16_t port = 0;
  sig_addr_t out;
  if (n > 0 && s[0] == '[') { /* [v6] or [v6]:port */
    const char *close = memchr(s, ']', n);
    if (close == NULL) return SIG_EBADMSG;
    size_t rest = n - (size_t)(close + 1 - s);
    if (rest > 0 && (close[1] != ':' || parse_port(close + 2, rest - 1, &port) != 0))
      return SIG_EBADMSG;
    const char *inner = s + 1;
    size_t ilen = (size_t)(close - s - 1);
    if (memchr(inner, ':', ilen) == NULL || parse_ip(&out, inner, ilen, port) != 0)
      return SIG_EBADMSG; /* only IPv6 goes in brackets (an IPv4-mapped one counts as IPv4) */
  } else {
    const char *colon = memchr(s, ':', n);
    if (colon != NULL && memchr(colon + 1, ':', n - (size_t)(colon + 1 - s)) == NULL) {
      /* one colon: v4:port */
      if (parse_port(colon + 1, n - (size_t)(colon + 1 - s), &port) != 0 ||
          parse_ip(&out, s, (size_t)(colon - s), port) != 0 || out.family != 4)
        return SIG_EBADMSG;
    } else if (parse_ip(&out, s, n, 0) != 0) {
      return SIG_EBADMSG;
    }
  }
  *a = out;
  return 0;
}

size_t sig_addr_format(const sig_addr_t *a, int with_port, char out[SIG_ADDR_STR_MAX]) {
  char ip[INET6_ADDRSTRLEN] = "-";
  int n;
  if (a->family == 4)
    inet_ntop(AF_INET, a->bytes, ip, sizeof(ip));
  else if (a->family == 6)
    inet_ntop(AF_INET6, a->bytes, ip, sizeof(ip));
  if (!with_port || a->port == 0 || a->family == 0)
    n = snprintf(out, SIG_ADDR_STR_MAX, "%s", ip);
  else if (a->family == 6)
    n = snprintf(out, SIG_ADDR_STR_MAX, "[%s]:%u", ip, a->port);
  else
    n = snprintf(out, SIG_ADDR_STR_MAX, "%s:%u", ip, a->port);
  return n < 0 ? 0 : (size_t)n;
}

int sig_addr_equal(const sig_addr_t *a, const sig_addr_t *b) {
  return a->family == b->family && memcmp(a->bytes, b->bytes, a->family == 4 ? 4 : 16) == 0;
}

int sig_cidr_parse(sig_cidr_t *c, const char *s, const char **why) {
  const char *slash = strchr(s, '/');
  size_t n = slash != NULL ? (size_t)(slash - s) : strlen(s);
  sig_addr_t a;
  unsigned bits = 0;
  if (parse_ip(&a, s, n, 0) != 0) {
    *why = "expected an IPv4 or IPv6 address, optionally with /bits";
    return SIG_EBADMSG;
  }
  unsigned max = a.family == 4 ? 32 : 128;
  if (slash == NULL) {
    bits = max;
  } else {
    const char *p = slash + 1;
    if (*p == '\0' || strlen(p) > 3) {
      *why = "expected a prefix length after '/'";
      return SIG_EBADMSG;
    }
    for (; *p != '\0'; p++) {
      if (*p < '0' || *p > '9') {
        *why = "expected a prefix length after '/'";
        return SIG_EBADMSG;
      }
      bits = bits * 10 + (unsigned)(*p - '0');
    }
    if (bits > max) {
      *why = a.family == 4 ? "an IPv4 prefix is at most /32" : "an IPv6 prefix is at most /128";
      return SIG_EBADMSG;
    }
  }
  for (unsigned i = bits; i < max; i++) a.bytes[i / 8] &= (uint8_t) ~(0x80u >> (i % 8));
  c->net = a;
  c->bits = (uint8_t)bits;
  return 0;
}

int sig_cidr_contains(const sig_cidr_t *c, const sig_addr_t *a) {
  if (a->family != c->net.family) return 0;
  unsigned full = c->bits / 8, rest = c->bits % 8;
  if (memcmp(a->bytes, c->net.bytes, full) != 0) return 0;
  if (rest == 0) return 1;
  uint8_t mask = (uint8_t)(0xff << (8 - rest));
  return (a->bytes[full] & mask) == c->net.bytes[full];
}

static int trusted_one(const sig_cidr_t *trusted, size_t n, const sig_addr_t *a) {
  for (size_t i = 0; i < n; i++)
    if (sig_cidr_contains(&trusted[i], a)) return 1;
  return 0;
}

static int is_space(char c) {
  return c == ' ' || c == '\t';
}

/* The element of a comma-separated list that ends at *end (exclusive): trimmed, its start in
 * *start. Moves *end before the comma. Returns 0 when the list is used up. */
static int prev_element(const char *list, const char **end, const char **start, size_t *len) {
  const char *e = *end;
  if (e <= list) return 0;
  const char *s = e;
  while (s > list && s[-1] != ',') s--;
  *end = s > list ? s - 1 : list;
  while (s < e && is_space(*s)) s++;
  while (e > s && is_space(e[-1])) e--;
  *start = s;
  *len = (size_t)(e - s);
  return 1;
}

/* A Forwarded element's `for=` value, unquoted: "for=1.2.3.4", for="[2001:db8::1]:80". */
static int forwarded_for(const char *s, size_t n, sig_addr_t *a) {
  const char *end = s + n;
  while (s < end) {
    const char *semi = memchr(s, ';', (size_t)(end - s));
    const char *pe = semi != NULL ? semi : end;
    while (s < pe && is_space(*s)) s++;
    if (pe - s > 4 && strncasecmp(s, "for=", 4) == 0) {
      const char *v = s + 4, *ve = pe;
      while (ve > v && is_space(ve[-1])) ve--;
      if (ve - v >= 2 && *v == '"' && ve[-1] == '"') v++, ve--;
      return sig_addr_parse(a, v, (size_t)(ve - v));
    }
    s = pe + (semi != NULL);
  }
  return SIG_EBADMSG;
}

int sig_addr_client(const sig_addr_t *peer, const sig_cidr_t *trusted, size_t n,
                    const char *forwarded, const char *xff, sig_addr_t *client) {
  const char *list = forwarded != NULL ? forwarded : xff;
  *client = *peer;
  if (list == NULL || !trusted_one(trusted, n, peer)) return 0;
  const char *end = list + strlen(list), *s;
  size_t len;
  sig_addr_t a, found = *peer;
  int any = 0;
  while (prev_element(list, &end, &s, &len)) {
    int rc = forwarded != NULL ? forwarded_for(s, len, &a) : sig_addr_parse(&a, s, len);
    if (rc != 0) return 0; /* not a list we understand: believe only the socket */
    found = a, any = 1;
    if (!trusted_one(trusted, n, &a)) break;
  }
  *client = found;
  return any;
}

void sig_addr_key(const sig_addr_t *a, sig_addr_t *key) {
  memset(key, 0, sizeof(*key));
  key->family = a->family;
  memcpy(key->bytes, a->bytes, a->family == 6 ? 8 : 4);
}
