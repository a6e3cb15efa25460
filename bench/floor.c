/* The bare relay floor of `make bench`: the least work a signaling relay can do.
 * No HTTP, WebSocket or JSON: a client connects and sends its 4-byte id; the
 * relay acknowledges with 4 bytes. A message is [4-byte dst id][4-byte length]
 * [payload]; the relay forwards it to dst as [4-byte src id][4-byte length]
 * [payload]. Single-threaded epoll, level-triggered, one loop-wide read buffer;
 * a connection keeps a buffer only while it holds a partial message or unsent
 * bytes. Integers are little-endian. A message to an unknown id is dropped. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_BUF_SIZE (256 * 1024)
#define MAX_MESSAGE (1 << 20)
#define MAX_OUT (8 << 20) /* unsent bytes before a slow reader is dropped */
#define NBUCKETS 65536
#define HELLO_ACK "OK!\n"

typedef struct conn_s {
  struct conn_s *next; /* in its id bucket */
  int fd;
  int registered;
  uint32_t id;
  uint8_t hello[4];
  uint32_t hello_len;
  char *in; /* a partial message, or NULL */
  size_t in_len, in_cap;
  char *out; /* unsent bytes, or NULL */
  size_t out_off, out_len, out_cap;
} conn_t;

static int epfd;
static conn_t **by_fd;
static size_t max_fd;
static conn_t *buckets[NBUCKETS];
static char read_buf[READ_BUF_SIZE];
static volatile sig_atomic_t stop;
static uint64_t dropped;

static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

static uint32_t get_u32(const char *p) {
  return (uint32_t)(uint8_t)p[0] | (uint32_t)(uint8_t)p[1] << 8 | (uint32_t)(uint8_t)p[2] << 16 |
         (uint32_t)(uint8_t)p[3] << 24;
}

static void put_u32(char *p, uint32_t v) {
  p[0] = (char)v;
  p[1] = (char)(v >> 8);
  p[2] = (char)(v >> 16);
  p[3] = (char)(v >> 24);
}

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n);
  if (q == NULL) {
    fprintf(stderr, "%s:%d: out of memory\n", __FILE__, __LINE__);
    abort();
  }
  return q;
}

static conn_t *find(uint32_t id) {
  for (conn_t *c = buckets[id % NBUCKETS]; c != NULL; c = c->next)
    if (c->id == id) return c;
  return NULL;
}

static void unlink_id(conn_t *c) {
  if (!c->registered) return;
  for (conn_t **pp = &buckets[c->id % NBUCKETS]; *pp != NULL; pp = &(*pp)->next) {
    if (*pp == c) {
      *pp = c->next;
      break;
    }
  }
  c->registered = 0;
}

static void conn_close(conn_t *c) {
  unlink_id(c);
  epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  by_fd[c->fd] = NULL;
  free(c->in);
  free(c->out);
  free(c);
}

static void want_out(conn_t *c, int on) {
  struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.fd = c->fd};
  epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Sends, or queues what the socket does not take. Returns -1 when c must be dropped. */
static int conn_send(conn_t *c, const char *data, size_t len) {
  size_t done = 0;
  if (c->out_len == 0) {
    ssize_t w = send(c->fd, data, len, MSG_NOSIGNAL);
    if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return -1;
    if (w > 0) done = (size_t)w;
    if (done == len) return 0;
  }
  size_t rest = len - done;
  if (c->out_len + rest > MAX_OUT) return -1;
  if (c->out_off + c->out_len + rest > c->out_cap) {
    memmove(c->out, c->out + c->out_off, c->out_len);
    c->out_off = 0;
    if (c->out_len + rest > c->out_cap) {
      c->out_cap = c->out_len + rest;
      c->out = xrealloc(c->out, c->out_cap);
    }
  }
  int was_empty = c->out_len == 0;
  memcpy(c->out + c->out_off + c->out_len, data + done, rest);
  c->out_len += rest;
  if (was_empty) want_out(c, 1);
  return 0;
}

static void flush_out(conn_t *c) {
  while (c->out_len > 0) {
    ssize_t w = send(c->fd, c->out + c->out_off, c->out_len, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
      conn_close(c);
      return;
    }
    c->out_off += (size_t)w;
    c->out_len -= (size_t)w;
  }
  free(c->out);
  c->out = NULL;
  c->out_off = c->out_cap = 0;
  want_out(c, 0);
}

/* Forwards one complete message (header and payload, in a buffer we may change). */
static void forward(conn_t *from, char *msg, size_t len) {
  conn_t *to = find(get_u32(msg));
  if (to == NULL || to == from) { /* from stays valid while its messages are parsed */
    dropped++;
    return;
  }
  put_u32(msg, from->id);
  if (conn_send(to, msg, len) != 0) conn_close(to);
}

/* Consumes whole messages from buf; returns the bytes used, or -1 on a protocol error. */
static ssize_t parse(conn_t *c, char *buf, size_t len) {
  size_t off = 0;
  while (len - off >= 8) {
    uint32_t plen = get_u32(buf + off + 4);
    if (plen > MAX_MESSAGE) return -1;
    if (len - off < 8 + (size_t)plen) break;
    forward(c, buf + off, 8 + (size_t)plen);
    off += 8 + (size_t)plen;
  }
  return (ssize_t)off;
}

static void on_hello(conn_t *c, const char *buf, size_t n, size_t *used) {
  size_t take = 4 - c->hello_len < n ? 4 - c->hello_len : n;
  memcpy(c->hello + c->hello_len, buf, take);
  c->hello_len += (uint32_t)take;
  *used = take;
  if (c->hello_len < 4) return;
  c->id = get_u32((const char *)c->hello);
  conn_t *old = find(c->id);
  if (old != NULL) conn_close(old); /* the newest connection owns the id */
  c->next = buckets[c->id % NBUCKETS];
  buckets[c->id % NBUCKETS] = c;
  c->registered = 1;
  if (conn_send(c, HELLO_ACK, 4) != 0) conn_close(c);
}

static void on_readable(conn_t *c) {
  ssize_t n = recv(c->fd, read_buf, sizeof(read_buf), 0);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
    conn_close(c);
    return;
  }
  if (n < 0) return;
  char *buf = read_buf;
  size_t len = (size_t)n;
  if (!c->registered) {
    size_t used;
    int fd = c->fd;
    on_hello(c, buf, len, &used);
    if (by_fd[fd] != c) return;
    buf += used;
    len -= used;
    if (len == 0) return;
  }
  if (c->in_len > 0) { /* a partial message waits: append and parse from the connection's buffer */
    if (c->in_len + len > c->in_cap) {
      c->in_cap = c->in_len + len;
      c->in = xrealloc(c->in, c->in_cap);
    }
    memcpy(c->in + c->in_len, buf, len);
    c->in_len += len;
    buf = c->in;
    len = c->in_len;
  }
  ssize_t used = parse(c, buf, len);
  if (used < 0) {
    conn_close(c);
    return;
  }
  size_t rest = len - (size_t)used;
  if (rest == 0) {
    free(c->in);
    c->in = NULL;
    c->in_len = c->in_cap = 0;
  } else if (buf == c->in) {
    memmove(c->in, c->in + used, rest);
    c->in_len = rest;
  } else {
    c->in = xrealloc(c->in, rest);
    memcpy(c->in, buf + used, rest);
    c->in_len = c->in_cap = rest;
  }
}

static void on_accept(int lfd) {
  for (int i = 0; i < 64; i++) {
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    if ((size_t)fd >= max_fd) {
      close(fd);
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL) abort();
    c->fd = fd;
    by_fd[fd] = c;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
  }
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1";
  int port = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--port") == 0)
      port = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--host") == 0)
      host = argv[i + 1];
  }
  if (port <= 0 || port > 65535) {
    fprintf(stderr, "usage: floor --port PORT [--host 127.0.0.1]\n");
    return 2;
  }
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  max_fd = (size_t)rl.rlim_cur;
  by_fd = calloc(max_fd, sizeof(*by_fd));

  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, host, &sin.sin_addr) != 1 ||
      bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(lfd, 4096) != 0) {
    fprintf(stderr, "floor: cannot listen on %s:%d: %s\n", host, port, strerror(errno));
    return 1;
  }
  epfd = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event lev = {.events = EPOLLIN, .data.fd = lfd};
  epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &lev);

  struct epoll_event evs[256];
  while (!stop) {
    int n = epoll_wait(epfd, evs, 256, 1000);
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == lfd) {
        on_accept(lfd);
        continue;
      }
      conn_t *c = by_fd[fd];
      if (c == NULL) continue; /* closed earlier in this batch */
      if (evs[i].events & EPOLLOUT) {
        flush_out(c);
        if (by_fd[fd] != c) continue;
      }
      if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(c);
    }
  }
  fprintf(stderr, "floor: stopped (%llu messages to unknown ids dropped)\n",
          (unsigned long long)dropped);
  return 0;
}
