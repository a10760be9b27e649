/* A stand-in for the task core that answers at once, so that a run measures the gateway's
 * front end (HTTP/2 + gRPC + protobuf ⇄ JSON + the pooled HTTP/1.1 upstream client) and not
 * the store. One thread, epoll, keep-alive and pipelining, no validation at all:
 *
 *   POST …/services/start            -> 201 {"service_id":N}  location …/services/N
 *   POST …/services/{sid}/tasks/start -> 201 {"task_id":N}    location …/service/{sid}/tasks/N
 *   POST …/batch                      -> 200, the batch extension (README, "The batch
 *                                        extension"): each Start Task item answered as above,
 *                                        any other item 404; unless started with "nobatch"
 *                                        (a vendor core: then 404 like any unknown path)
 *   anything else                     -> 404 {"error":"not found"}
 *
 * The answers have the shape of the real core's (same headers, same bodies). Prints
 * "stub core listening address=http://127.0.0.1:PORT" and, on SIGTERM/SIGINT, "stub core
 * tasks=N services=N other=N" before it exits.
 *
 *   cc -O2 -o stub-core gateway/bench/stub-core.c && ./stub-core 127.0.0.1 0 [nobatch]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_SERVICES 4096
#define BUF 65536

struct conn {
  int fd;
  size_t len;
  char in[BUF];
  size_t out_len;
  char out[BUF * 2];
};

static volatile sig_atomic_t stop;
static int batch_enabled = 1;
static void on_signal(int s) { (void)s; stop = 1; }
static long long last_task[MAX_SERVICES], services, tasks, other;

/* Content-Length of the head [p, p+n), 0 when none. */
static long content_length(const char *p, size_t n) {
  const char *end = p + n;
  for (const char *line = p; line < end;) {
    const char *eol = memchr(line, '\n', end - line);
    if (!eol) break;
    if ((size_t)(eol - line) > 15 && !strncasecmp(line, "content-length:", 15)) return strtol(line + 15, NULL, 10);
    line = eol + 1;
  }
  return 0;
}

static void put16(char *p, unsigned v) { p[0] = (char)(v >> 8); p[1] = (char)v; }
static void put32(char *p, unsigned long v) { p[0] = (char)(v >> 24); p[1] = (char)(v >> 16); p[2] = (char)(v >> 8); p[3] = (char)v; }
/* A result's tail: retry_after 0, the flags byte, the body. */
static size_t put_tail(char *out, size_t o, const char *body, int bl) {
  put16(out + o, 0); o += 2;
  out[o++] = 0;
  put32(out + o, (unsigned long)bl); memcpy(out + o + 4, body, (size_t)bl);
  return o + 4 + (size_t)bl;
}
static unsigned get16(const unsigned char *p) { return (unsigned)p[0] << 8 | p[1]; }
static unsigned long get32(const unsigned char *p) {
  return (unsigned long)p[0] << 24 | (unsigned long)p[1] << 16 | (unsigned long)p[2] << 8 | p[3];
}
static long long get64(const unsigned char *p) { return (long long)((unsigned long long)get32(p) << 32 | get32(p + 4)); }

/* POST …/batch: "CSB3", u32 count, items (u8 operation, u64 service id, u32 child id,
 * u16+params, u16+tenant, u16+auth, u16+key, u8 flags [trace:25 with flag bit 2], u32+body)
 * → 200 "CSR3", u32 count, results (u16 status, u16+location, u16 retry, u8 flags, u32+body).
 * Operation 1 is StartService, 8 StartTask (README, "The batch extension"). */
static void answer_batch(struct conn *c, const unsigned char *in, size_t n) {
  static char out[BUF];
  size_t o = 8, i = 8;
  unsigned long count = n >= 8 && !memcmp(in, "CSB3", 4) ? get32(in + 4) : 0;
  memcpy(out, "CSR3", 4);
  put32(out + 4, count);
  for (unsigned long k = 0; k < count && o + 128 < sizeof out; k++) {
    if (i + 15 > n) break;
    unsigned op = in[i];
    long long sid = get64(in + i + 1);
    i += 1 + 8 + 4;
    i += 2 + get16(in + i); /* params */
    if (i + 6 > n) break;
    i += 2 + get16(in + i); /* tenant */
    i += 2 + get16(in + i); /* authorization */
    i += 2 + get16(in + i); /* key */
    if (i + 1 > n) break;
    if (in[i++] & 4) i += 16 + 8 + 1; /* bit 2: a trace (trace id, parent id, flags) */
    if (i + 4 > n) break;
    i += 4 + get32(in + i); /* body */
    char body[64], location[128];
    if (op == 8) {
      long long tid = (sid > 0 && sid < MAX_SERVICES) ? ++last_task[sid] : 1;
      tasks++;
      int bl = snprintf(body, sizeof body, "{\"task_id\":%lld}", tid);
      int ll = snprintf(location, sizeof location, "/genesys/1/cs/service/%lld/tasks/%lld", sid, tid);
      put16(out + o, 201); put16(out + o + 2, (unsigned)ll); memcpy(out + o + 4, location, (size_t)ll); o += 4 + (size_t)ll;
      o = put_tail(out, o, body, bl);
    } else if (op == 1) {
      long long id = ++services;
      int bl = snprintf(body, sizeof body, "{\"service_id\":%lld}", id);
      int ll = snprintf(location, sizeof location, "/genesys/1/cs/services/%lld", id);
      put16(out + o, 201); put16(out + o + 2, (unsigned)ll); memcpy(out + o + 4, location, (size_t)ll); o += 4 + (size_t)ll;
      o = put_tail(out, o, body, bl);
    } else {
      other++;
      int bl = snprintf(body, sizeof body, "{\"error\":\"not found\"}");
      put16(out + o, 404); put16(out + o + 2, 0); o += 4;
      o = put_tail(out, o, body, bl);
    }
  }
  int h = snprintf(c->out + c->out_len, sizeof c->out - c->out_len,
                   "HTTP/1.1 200 OK\r\ncontent-type: application/x-cs-batch\r\ncontent-length: %zu\r\n\r\n", o);
  if (h > 0 && c->out_len + (size_t)h + o <= sizeof c->out) {
    c->out_len += (size_t)h;
    memcpy(c->out + c->out_len, out, o);
    c->out_len += o;
  }
}

static void answer(struct conn *c, const char *head, size_t head_len, const char *body_in, size_t body_len) {
  char path[512] = "";
  const char *sp = memchr(head, ' ', head_len);
  if (sp) {
    const char *sp2 = memchr(sp + 1, ' ', head_len - (sp + 1 - head));
    size_t n = sp2 ? (size_t)(sp2 - sp - 1) : 0;
    if (n >= sizeof path) n = sizeof path - 1;
    memcpy(path, sp + 1, n);
    path[n] = 0;
  }
  size_t path_len = strlen(path);
  if (batch_enabled && path_len >= 6 && !strcmp(path + path_len - 6, "/batch")) {
    answer_batch(c, (const unsigned char *)body_in, body_len);
    return;
  }
  char body[64], location[600];
  int status = 201;
  const char *services_at = strstr(path, "/services/");
  size_t plen = strlen(path);
  if (services_at && plen > 12 && !strcmp(path + plen - 12, "/tasks/start")) {
    long long sid = strtoll(services_at + 10, NULL, 10);
    long long tid = (sid > 0 && sid < MAX_SERVICES) ? ++last_task[sid] : 1;
    tasks++;
    snprintf(body, sizeof body, "{\"task_id\":%lld}", tid);
    snprintf(location, sizeof location, "%.*s/service/%lld/tasks/%lld", (int)(services_at - path), path, sid, tid);
  } else if (services_at && !strcmp(services_at, "/services/start")) {
    long long sid = ++services;
    snprintf(body, sizeof body, "{\"service_id\":%lld}", sid);
    snprintf(location, sizeof location, "%.*s/services/%lld", (int)(services_at - path), path, sid);
  } else {
    other++;
    status = 404;
    snprintf(body, sizeof body, "{\"error\":\"not found\"}");
    location[0] = 0;
  }
  int n = snprintf(c->out + c->out_len, sizeof c->out - c->out_len,
                   "HTTP/1.1 %s\r\ncontent-type: application/json\r\ncontent-length: %zu\r\n%s%s%s\r\n%s",
                   status == 201 ? "201 Created" : "404 Not Found", strlen(body),
                   location[0] ? "location: " : "", location, location[0] ? "\r\n" : "", body);
  if (n > 0) c->out_len += (size_t)n;
}

static int flush_out(struct conn *c) {
  size_t off = 0;
  while (off < c->out_len) {
    ssize_t w = write(c->fd, c->out + off, c->out_len - off);
    if (w < 0) {
      if (errno == EAGAIN) break; /* rare at these sizes: keep the rest for later */
      return -1;
    }
    off += (size_t)w;
  }
  memmove(c->out, c->out + off, c->out_len - off);
  c->out_len -= off;
  return 0;
}

static int serve(struct conn *c) {
  for (;;) {
    if (c->len == sizeof c->in) return -1; /* a request larger than the buffer: not for us */
    ssize_t r = read(c->fd, c->in + c->len, sizeof c->in - c->len);
    if (r == 0) return -1;
    if (r < 0) {
      if (errno == EAGAIN) break;
      return -1;
    }
    c->len += (size_t)r;
    size_t off = 0;
    for (;;) {
      char *hend = memmem(c->in + off, c->len - off, "\r\n\r\n", 4);
      if (!hend) break;
      size_t head_len = (size_t)(hend - (c->in + off)) + 4;
      long body = content_length(c->in + off, head_len);
      if (off + head_len + (size_t)body > c->len) break;
      if (c->out_len > sizeof c->out / 2 && flush_out(c) < 0) return -1;
      if (c->out_len > sizeof c->out / 2) break; /* the client is not reading: wait */
      answer(c, c->in + off, head_len, c->in + off + head_len, (size_t)body);
      off += head_len + (size_t)body;
    }
    memmove(c->in, c->in + off, c->len - off);
    c->len -= off;
  }
  return flush_out(c);
}

int main(int argc, char **argv) {
  const char *host = argc > 1 ? argv[1] : "127.0.0.1";
  int port = argc > 2 ? atoi(argv[2]) : 0;
  if (argc > 3 && !strcmp(argv[3], "nobatch")) batch_enabled = 0;
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa = {0};
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, host, &a.sin_addr);
  if (bind(lfd, (struct sockaddr *)&a, sizeof a) || listen(lfd, 512)) { perror("stub core: listen"); return 1; }
  socklen_t al = sizeof a;
  getsockname(lfd, (struct sockaddr *)&a, &al);
  printf("stub core listening address=http://%s:%d\n", host, ntohs(a.sin_port));
  fflush(stdout);

  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  struct epoll_event evs[64];
  while (!stop) {
    int n = epoll_wait(ep, evs, 64, 200);
    for (int i = 0; i < n; i++) {
      struct conn *c = evs[i].data.ptr;
      if (!c) {
        int fd;
        while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          struct conn *nc = calloc(1, sizeof *nc);
          nc->fd = fd;
          struct epoll_event e = {.events = EPOLLIN, .data.ptr = nc};
          epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
        }
        continue;
      }
      if (serve(c) < 0) {
        close(c->fd);
        free(c);
      }
    }
  }
  printf("stub core tasks=%lld services=%lld other=%lld\n", tasks, services, other);
  return 0;
}
