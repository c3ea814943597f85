/*
 * vslab-flowdrv: the scheduler replayer's client (src/suites/schedulers/driver-client.ts drives it).
 *
 * Opens flows exactly as a scheduler scenario says -- one after another, each from its own source
 * address and port, a full TCP connection (or UDP exchange) with vslab's responder protocol
 * (src/traffic/protocol.ts), held open or closed before the next -- and closes chosen held flows on
 * request. It replaces a Node program that did the same with the traffic client's flow classes
 * (src/traffic/client-tcp.ts, client-udp.ts): under TCG, Node cost ~14 ms of the guest's one vCPU
 * per flow, this ~1 ms. Every record field means what it means there (ClientConnEvent, events.ts).
 *
 * stdin, one command per line (words separated by one space):
 *   open N                  then N lines, one flow each:  I tcp|udp SRC SPORT DST DPORT HOLD(0|1) TIMEOUT_MS
 *   close N I1 ... IN       close these held flows (all at once) and wait until each is gone
 *   time                    report the driver's clock
 * stdout, one JSON object per line:
 *   {"event":"ready","t":0.1}
 *   {"event":"flow","i":0,"t0":100.1,"t1":104.7,"rec":{...ClientConnEvent...}}   per opened flow, in order
 *   {"event":"opened","n":2,"t":105.0}                                           after an open command
 *   {"event":"closed","i":0,"t":230.4,"rec":{...}}                               per closed flow
 *   {"event":"closeDone","n":2,"t":231.0}
 *   {"event":"time","t":300.2}
 *   {"event":"error","message":"..."}    a bad command, or a bad or already held flow (which ends its open
 *                                        command: no further flow of it is opened, no "opened"); the driver goes on
 * Times are milliseconds on the driver's monotonic clock. A flow that is not held (or failed) is
 * reported only once its socket is closed: the responder closes first, the client follows, so "closed
 * before the next flow" holds at the director. stdin EOF: every held flow is closed, exit 0.
 *
 * TCP: bind, connect, "vslab1 id=<run>-<i> up=0 hold=<0|1>\n", the identity line and the payload it
 * announces; then (not held) wait for the responder's FIN, or (held) keep the socket until a close
 * command, which sends "close\n" (the responder closes first) and waits for its FIN. UDP: a socket
 * bound to the source and connected to the target, one request datagram "vslab1 id=<run>-<i> up=0\n",
 * one reply with the same id (no retransmission). Each flow has TIMEOUT_MS from its start to its answer.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_REQUEST_LINE 4096
#define STR 256

static double T0;
static char run_id[16];

static double mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}
static double now(void) { return mono_ms() - T0; }

/* ---------------------------------------------------------------- the record (ClientConnEvent) */

struct rec {
  int i;
  int udp;
  char id[40];
  char src[STR];
  int sport; /* -1: null */
  char dst[STR];
  int dport;
  const char *outcome; /* answered refused timeout reset unreachable closed error */
  const char *stage;   /* NULL or bind connect answer payload */
  char code[32];       /* "" = null */
  int has_identity;
  char server[STR], local[STR], peer[STR];
  long lport, pport;
  double start, connect_ms, answer_ms, held_ms, total_ms; /* <0: null */
  long bytes;
  char after_answer[32]; /* "" = null */
};

static void put_str(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
    else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
    else fputc(*p, f);
  }
  fputc('"', f);
}
static void put_opt_str(FILE *f, const char *s) {
  if (s && *s) put_str(f, s);
  else fputs("null", f);
}
static void put_ms(FILE *f, double v) {
  if (v < 0) fputs("null", f);
  else fprintf(f, "%.3f", v);
}

static void put_rec(FILE *f, const struct rec *r) {
  fprintf(f, "{\"event\":\"conn\",\"i\":%d,\"proto\":\"%s\",\"id\":", r->i, r->udp ? "udp" : "tcp");
  put_str(f, r->id);
  fputs(",\"src\":", f);
  put_opt_str(f, r->src);
  fputs(",\"sport\":", f);
  if (r->sport < 0) fputs("null", f);
  else fprintf(f, "%d", r->sport);
  fputs(",\"dst\":", f);
  put_str(f, r->dst);
  fprintf(f, ",\"dport\":%d,\"outcome\":\"%s\",\"stage\":", r->dport, r->outcome);
  put_opt_str(f, r->stage);
  fputs(",\"code\":", f);
  put_opt_str(f, r->code);
  fputs(",\"server\":", f);
  if (r->has_identity) {
    put_str(f, r->server);
    fputs(",\"local\":", f);
    put_str(f, r->local);
    fprintf(f, ",\"lport\":%ld,\"peer\":", r->lport);
    put_str(f, r->peer);
    fprintf(f, ",\"pport\":%ld", r->pport);
  } else {
    fputs("null,\"local\":null,\"lport\":null,\"peer\":null,\"pport\":null", f);
  }
  fputs(",\"start\":", f);
  put_ms(f, r->start);
  fputs(",\"connectMs\":", f);
  put_ms(f, r->connect_ms);
  fputs(",\"answerMs\":", f);
  put_ms(f, r->answer_ms);
  fputs(",\"heldMs\":", f);
  put_ms(f, r->held_ms);
  fputs(",\"totalMs\":", f);
  put_ms(f, r->total_ms);
  fprintf(f, ",\"bytes\":%ld,\"afterAnswer\":", r->bytes);
  put_opt_str(f, r->after_answer);
  fputc('}', f);
}

static void emit_error(const char *msg) {
  fputs("{\"event\":\"error\",\"message\":", stdout);
  put_str(stdout, msg);
  fputs("}\n", stdout);
  fflush(stdout);
}

/* Node's error code names (uv), as the traffic client reports them. */
static void errno_name(int e, char *out, size_t n) {
  static const struct { int e; const char *s; } names[] = {
    {ECONNREFUSED, "ECONNREFUSED"}, {ECONNRESET, "ECONNRESET"}, {EPIPE, "EPIPE"}, {ECONNABORTED, "ECONNABORTED"},
    {ETIMEDOUT, "ETIMEDOUT"}, {EHOSTUNREACH, "EHOSTUNREACH"}, {ENETUNREACH, "ENETUNREACH"}, {EHOSTDOWN, "EHOSTDOWN"},
    {ENETDOWN, "ENETDOWN"}, {ENONET, "ENONET"}, {EACCES, "EACCES"}, {EADDRINUSE, "EADDRINUSE"},
    {EADDRNOTAVAIL, "EADDRNOTAVAIL"}, {EINVAL, "EINVAL"}, {EPERM, "EPERM"}, {ENOBUFS, "ENOBUFS"},
    {EMFILE, "EMFILE"}, {ENFILE, "ENFILE"}, {EAFNOSUPPORT, "EAFNOSUPPORT"}, {EMSGSIZE, "EMSGSIZE"},
  };
  for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
    if (names[k].e == e) {
      snprintf(out, n, "%s", names[k].s);
      return;
    }
  snprintf(out, n, "E%d", e);
}

/* src/traffic/client-flow.ts outcomeOf */
static const char *outcome_of(const char *code) {
  if (!strcmp(code, "ECONNREFUSED")) return "refused";
  if (!strcmp(code, "ECONNRESET") || !strcmp(code, "EPIPE") || !strcmp(code, "ECONNABORTED")) return "reset";
  if (!strcmp(code, "ETIMEDOUT")) return "timeout";
  if (!strcmp(code, "EHOSTUNREACH") || !strcmp(code, "ENETUNREACH") || !strcmp(code, "EHOSTDOWN") || !strcmp(code, "ENETDOWN") ||
      !strcmp(code, "ENONET") || !strcmp(code, "EACCES"))
    return "unreachable";
  return "error";
}

static void fail_errno(struct rec *r, int e) {
  errno_name(e, r->code, sizeof r->code);
  r->outcome = outcome_of(r->code);
}

/* ---------------------------------------------------------------- addresses */

union addr {
  struct sockaddr sa;
  struct sockaddr_in v4;
  struct sockaddr_in6 v6;
};

static int make_addr(const char *text, int port, union addr *a, socklen_t *len) {
  memset(a, 0, sizeof *a);
  if (inet_pton(AF_INET, text, &a->v4.sin_addr) == 1) {
    a->v4.sin_family = AF_INET;
    a->v4.sin_port = htons(port);
    *len = sizeof a->v4;
    return AF_INET;
  }
  if (inet_pton(AF_INET6, text, &a->v6.sin6_addr) == 1) {
    a->v6.sin6_family = AF_INET6;
    a->v6.sin6_port = htons(port);
    *len = sizeof a->v6;
    return AF_INET6;
  }
  return -1;
}

/* getsockname as text (IPv4-mapped IPv6 shown as IPv4, as plainAddress does) and port */
static void local_of(int fd, char *out, int *port) {
  union addr a;
  socklen_t l = sizeof a;
  if (getsockname(fd, &a.sa, &l) < 0) return;
  if (a.sa.sa_family == AF_INET) {
    inet_ntop(AF_INET, &a.v4.sin_addr, out, STR);
    *port = ntohs(a.v4.sin_port);
  } else {
    if (IN6_IS_ADDR_V4MAPPED(&a.v6.sin6_addr)) inet_ntop(AF_INET, &a.v6.sin6_addr.s6_addr[12], out, STR);
    else inet_ntop(AF_INET6, &a.v6.sin6_addr, out, STR);
    *port = ntohs(a.v6.sin6_port);
  }
}

/* ---------------------------------------------------------------- the identity line (a flat JSON object) */

struct identity {
  char server[STR], local[STR], peer[STR], id[STR];
  int has_server, has_local, has_peer, id_null;
  double lport, pport, bytes;
  int has_lport, has_pport, has_bytes;
};

static const char *skip_ws(const char *p) {
  while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
  return p;
}

/* A JSON string at p (after the quote); NULL if malformed. Too long: truncated. */
static const char *parse_string(const char *p, char *out, size_t n) {
  size_t k = 0;
  for (;;) {
    unsigned c = (unsigned char)*p++;
    if (c == 0) return NULL;
    if (c == '"') break;
    if (c == '\\') {
      c = (unsigned char)*p++;
      switch (c) {
        case '"': case '\\': case '/': break;
        case 'b': c = '\b'; break;
        case 'f': c = '\f'; break;
        case 'n': c = '\n'; break;
        case 'r': c = '\r'; break;
        case 't': c = '\t'; break;
        case 'u': {
          unsigned v = 0;
          for (int d = 0; d < 4; d++) {
            char h = *p++;
            v <<= 4;
            if (h >= '0' && h <= '9') v |= h - '0';
            else if (h >= 'a' && h <= 'f') v |= h - 'a' + 10;
            else if (h >= 'A' && h <= 'F') v |= h - 'A' + 10;
            else return NULL;
          }
          /* UTF-8 (no surrogate pairs: names are ASCII in practice) */
          char u[3];
          int m = 0;
          if (v < 0x80) u[m++] = (char)v;
          else if (v < 0x800) { u[m++] = (char)(0xc0 | v >> 6); u[m++] = (char)(0x80 | (v & 0x3f)); }
          else { u[m++] = (char)(0xe0 | v >> 12); u[m++] = (char)(0x80 | ((v >> 6) & 0x3f)); u[m++] = (char)(0x80 | (v & 0x3f)); }
          for (int q = 0; q < m; q++) if (k + 1 < n) out[k++] = u[q];
          continue;
        }
        default: return NULL;
      }
    } else if (c < 0x20) return NULL;
    if (k + 1 < n) out[k++] = (char)c;
  }
  out[k] = 0;
  return p;
}

/* Parses an identity line (src/traffic/protocol.ts parseIdentity): 0 if it is one, -1 otherwise. */
static int parse_identity(const char *line, struct identity *id) {
  memset(id, 0, sizeof *id);
  id->id_null = 1;
  const char *p = skip_ws(line);
  if (*p++ != '{') return -1;
  p = skip_ws(p);
  if (*p == '}') return -1;
  for (;;) {
    char key[64], sval[STR];
    p = skip_ws(p);
    if (*p++ != '"' || !(p = parse_string(p, key, sizeof key))) return -1;
    p = skip_ws(p);
    if (*p++ != ':') return -1;
    p = skip_ws(p);
    if (*p == '"') {
      if (!(p = parse_string(p + 1, sval, sizeof sval))) return -1;
      if (!strcmp(key, "server")) { snprintf(id->server, STR, "%s", sval); id->has_server = 1; }
      else if (!strcmp(key, "local")) { snprintf(id->local, STR, "%s", sval); id->has_local = 1; }
      else if (!strcmp(key, "peer")) { snprintf(id->peer, STR, "%s", sval); id->has_peer = 1; }
      else if (!strcmp(key, "id")) { snprintf(id->id, STR, "%s", sval); id->id_null = 0; }
    } else if (!strncmp(p, "null", 4)) {
      p += 4;
    } else if (!strncmp(p, "true", 4)) {
      p += 4;
    } else if (!strncmp(p, "false", 5)) {
      p += 5;
    } else {
      char *end;
      double v = strtod(p, &end);
      if (end == p) return -1;
      p = end;
      if (!strcmp(key, "lport")) { id->lport = v; id->has_lport = 1; }
      else if (!strcmp(key, "pport")) { id->pport = v; id->has_pport = 1; }
      else if (!strcmp(key, "bytes")) { id->bytes = v; id->has_bytes = 1; }
    }
    p = skip_ws(p);
    if (*p == ',') { p++; continue; }
    if (*p++ != '}') return -1;
    break;
  }
  if (*skip_ws(p)) return -1;
  if (!(id->has_server && id->has_local && id->has_lport && id->has_peer && id->has_pport && id->has_bytes)) return -1;
  return 0;
}

static void take_identity(struct rec *r, const struct identity *id) {
  r->has_identity = 1;
  snprintf(r->server, STR, "%s", id->server);
  snprintf(r->local, STR, "%s", id->local);
  snprintf(r->peer, STR, "%s", id->peer);
  r->lport = (long)id->lport;
  r->pport = (long)id->pport;
}

/* ---------------------------------------------------------------- flows */

struct flow {
  struct rec r;
  int fd;
  double t_start; /* driver clock */
  double answered_at;
  int timeout_ms;
  int eof; /* the peer's FIN arrived: the close below completes the connection */
};

/* Held TCP flows, by index. */
static struct flow *held;
static size_t held_n, held_cap;

static struct flow *find_held(int i) {
  for (size_t k = 0; k < held_n; k++)
    if (held[k].r.i == i) return &held[k];
  return NULL;
}

static void init_rec(struct flow *f, int i, int udp, const char *src, int sport, const char *dst, int dport) {
  memset(f, 0, sizeof *f);
  f->fd = -1;
  struct rec *r = &f->r;
  r->i = i;
  r->udp = udp;
  snprintf(r->id, sizeof r->id, "%s-%d", run_id, i);
  snprintf(r->src, STR, "%s", src);
  r->sport = sport;
  snprintf(r->dst, STR, "%s", dst);
  r->dport = dport;
  r->outcome = "error";
  r->stage = "bind";
  f->t_start = now();
  r->start = f->t_start;
  r->connect_ms = r->answer_ms = r->held_ms = -1;
  r->total_ms = 0;
}

static double round3(double v) { return (double)(long long)(v * 1000 + 0.5) / 1000; }

/*
 * Closes the flow's socket. After the responder's FIN our own FIN leaves here and the connection is
 * gone once the responder acknowledges it (LAST_ACK -> CLOSE): wait for that (1 s at most), so the
 * next flow may use the same source port and 4-tuple at once. (The Node driver closed without waiting
 * and was slow enough for the ACK to arrive first; here the next bind came before it: EADDRINUSE.)
 */
static void finish(struct flow *f) {
  if (f->fd >= 0 && f->eof && !f->r.udp && shutdown(f->fd, SHUT_WR) == 0) {
    double until = now() + 1000;
    for (;;) {
      struct tcp_info ti;
      socklen_t tl = sizeof ti;
      if (getsockopt(f->fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) < 0 || ti.tcpi_state == TCP_CLOSE || now() > until) break;
      usleep(50);
    }
  }
  if (f->fd >= 0) close(f->fd);
  f->fd = -1;
  f->r.total_ms = round3(now() - f->t_start);
}

/* poll one fd for `ev` until the driver-clock deadline; 1 ready, 0 timed out */
static int wait_fd(int fd, short ev, double deadline) {
  for (;;) {
    double left = deadline - now();
    if (left <= 0) return 0;
    struct pollfd p = {.fd = fd, .events = ev};
    int n = poll(&p, 1, (int)left + 1);
    if (n > 0) return 1;
    if (n < 0 && errno != EINTR) return 1; /* let the caller's syscall report it */
  }
}

/* Reads until EOF (the peer's FIN), an error or the deadline; counts payload bytes after the answer. */
static void drain_to_eof(struct flow *f, double deadline) {
  char buf[4096];
  for (;;) {
    if (!wait_fd(f->fd, POLLIN, deadline)) return; /* the responder never closed: give up (destroy) */
    ssize_t n = read(f->fd, buf, sizeof buf);
    if (n > 0) {
      f->r.bytes += n;
      continue;
    }
    if (n == 0) {
      f->eof = 1;
      return;
    }
    if (errno == EAGAIN || errno == EINTR) continue;
    if (!f->r.after_answer[0]) errno_name(errno, f->r.after_answer, sizeof f->r.after_answer);
    return;
  }
}

/* The flow's source and destination socket addresses; their family, or -1 (code EINVAL) when they do not parse
 * or differ in family. */
static int flow_addrs(struct rec *r, union addr *sa, socklen_t *sl, union addr *da, socklen_t *dl) {
  int fam = make_addr(r->dst, r->dport, da, dl);
  if (fam < 0 || make_addr(r->src, r->sport, sa, sl) != fam) {
    snprintf(r->code, sizeof r->code, "EINVAL");
    return -1;
  }
  return fam;
}

/* A TCP flow up to its answer (or failure). Returns 1 when answered. */
static int tcp_flow(struct flow *f, int hold, int timeout_ms) {
  struct rec *r = &f->r;
  union addr sa, da;
  socklen_t sl, dl;
  int fam = flow_addrs(r, &sa, &sl, &da, &dl);
  if (fam < 0) return 0;
  double deadline = f->t_start + timeout_ms;
  int fd = socket(fam, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    fail_errno(r, errno);
    return 0;
  }
  f->fd = fd;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  /* as libuv binds TCP (the Node driver's sockets): a port whose last connection is in TIME_WAIT here
     can be bound again (tcp_max_tw_buckets=0 in the replay lab's client leaves none anyway) */
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, &sa.sa, sl) < 0) {
    fail_errno(r, errno);
    return 0;
  }
  r->stage = "connect";
  if (connect(fd, &da.sa, dl) < 0 && errno != EINPROGRESS) {
    fail_errno(r, errno);
    return 0;
  }
  if (!wait_fd(fd, POLLOUT, deadline)) {
    r->outcome = "timeout";
    return 0;
  }
  int err = 0;
  socklen_t el = sizeof err;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
  if (err) {
    fail_errno(r, err);
    return 0;
  }
  r->connect_ms = round3(now() - f->t_start);
  local_of(fd, r->src, &r->sport);
  r->stage = "answer";
  char req[96];
  int n = snprintf(req, sizeof req, "vslab1 id=%s up=0 hold=%d\n", r->id, hold);
  if (write(fd, req, n) != n) {
    fail_errno(r, errno);
    return 0;
  }
  char head[MAX_REQUEST_LINE + 4096 + 1];
  size_t hl = 0;
  long expected = -1;
  for (;;) {
    if (!wait_fd(fd, POLLIN, deadline)) {
      r->outcome = "timeout";
      return 0;
    }
    char *into = head + hl;
    size_t room = expected < 0 ? sizeof head - 1 - hl : 4096;
    char scratch[4096];
    if (expected >= 0) into = scratch;
    ssize_t got = read(fd, into, room);
    if (got < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      fail_errno(r, errno);
      return 0;
    }
    if (got == 0) { /* the peer closed before the answer was complete */
      f->eof = 1;
      r->outcome = "closed";
      return 0;
    }
    if (expected < 0) {
      hl += got;
      head[hl] = 0;
      char *nl = memchr(head, '\n', hl);
      if (!nl) {
        if (hl > MAX_REQUEST_LINE) {
          snprintf(r->code, sizeof r->code, "EPROTO");
          return 0;
        }
        continue;
      }
      *nl = 0;
      struct identity id;
      if (parse_identity(head, &id) < 0) {
        snprintf(r->code, sizeof r->code, "EPROTO");
        return 0;
      }
      take_identity(r, &id);
      expected = (long)id.bytes;
      r->stage = "payload";
      r->bytes = (long)(head + hl - (nl + 1));
    } else {
      r->bytes += got;
    }
    if (r->bytes >= expected) break;
  }
  f->answered_at = now();
  r->outcome = "answered";
  r->stage = NULL;
  r->code[0] = 0;
  r->answer_ms = round3(f->answered_at - f->t_start);
  return 1;
}

/* A UDP exchange, complete (the socket is closed on return). */
static void udp_flow(struct flow *f, int timeout_ms) {
  struct rec *r = &f->r;
  union addr sa, da;
  socklen_t sl, dl;
  int fam = flow_addrs(r, &sa, &sl, &da, &dl);
  if (fam < 0) return;
  double deadline = f->t_start + timeout_ms;
  int fd = socket(fam, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    fail_errno(r, errno);
    return;
  }
  f->fd = fd;
  if (bind(fd, &sa.sa, sl) < 0) {
    fail_errno(r, errno);
    return;
  }
  if (connect(fd, &da.sa, dl) < 0) {
    r->stage = "connect";
    fail_errno(r, errno);
    return;
  }
  local_of(fd, r->src, &r->sport);
  r->stage = "answer";
  char req[96];
  int n = snprintf(req, sizeof req, "vslab1 id=%s up=0\n", r->id);
  if (send(fd, req, n, 0) < 0) {
    fail_errno(r, errno);
    return;
  }
  static char msg[65536 + 1];
  for (;;) {
    if (!wait_fd(fd, POLLIN, deadline)) {
      r->outcome = "timeout";
      return;
    }
    ssize_t got = recv(fd, msg, sizeof msg - 1, 0);
    if (got < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      fail_errno(r, errno);
      return;
    }
    msg[got] = 0;
    char *nl = memchr(msg, '\n', got);
    if (!nl) continue;
    *nl = 0;
    struct identity id;
    if (parse_identity(msg, &id) < 0) continue;          /* not for us; keep waiting */
    if (id.id_null || strcmp(id.id, r->id)) continue;    /* a late reply to an earlier exchange from this port */
    take_identity(r, &id);
    r->bytes = (long)(msg + got - (nl + 1));
    if (r->bytes >= (long)id.bytes) {
      r->outcome = "answered";
      r->stage = NULL;
      r->code[0] = 0;
      r->answer_ms = round3(now() - f->t_start);
    } else {
      r->stage = "payload";
      snprintf(r->code, sizeof r->code, "ETRUNCATED");
    }
    return;
  }
}

static void emit_flow(const struct flow *f, double t1) {
  printf("{\"event\":\"flow\",\"i\":%d,\"t0\":%.3f,\"t1\":%.3f,\"rec\":", f->r.i, f->t_start, t1);
  put_rec(stdout, &f->r);
  fputs("}\n", stdout);
  fflush(stdout);
}

static void open_one(int i, int udp, const char *src, int sport, const char *dst, int dport, int hold, int timeout_ms) {
  struct flow f;
  init_rec(&f, i, udp, src, sport, dst, dport);
  f.timeout_ms = timeout_ms;
  if (udp) {
    udp_flow(&f, timeout_ms);
    finish(&f);
    emit_flow(&f, now());
    return;
  }
  if (tcp_flow(&f, hold, timeout_ms)) {
    if (hold) {
      if (held_n == held_cap) {
        held_cap = held_cap ? held_cap * 2 : 64;
        held = realloc(held, held_cap * sizeof *held);
        if (!held) { perror("vslab-flowdrv"); exit(1); }
      }
      held[held_n++] = f;
      emit_flow(&f, now());
      return;
    }
    /* The responder closes first; follow its FIN. Guard against one that never does. */
    drain_to_eof(&f, f.answered_at + timeout_ms);
  }
  finish(&f);
  emit_flow(&f, now());
}

/* Closes these held flows at once; emits closed per flow as each goes, then closeDone. */
static void close_held(const int *idx, int n) {
  struct flow *list = calloc(n ? n : 1, sizeof *list);
  int m = 0, timeout_ms = 0;
  for (int k = 0; k < n; k++) {
    struct flow *h = find_held(idx[k]);
    if (!h) continue;
    list[m] = *h;
    *h = held[--held_n];
    struct flow *f = &list[m++];
    if (f->timeout_ms > timeout_ms) timeout_ms = f->timeout_ms;
    /* A held connection the peer already ended: its FIN is waiting. */
    struct pollfd p = {.fd = f->fd, .events = POLLIN};
    char c;
    if (poll(&p, 1, 0) == 1 && recv(f->fd, &c, 1, MSG_PEEK) == 0) {
      f->r.held_ms = round3(now() - f->answered_at);
      if (!f->r.after_answer[0]) snprintf(f->r.after_answer, sizeof f->r.after_answer, "EOF");
      f->eof = 1;
      finish(f);
      printf("{\"event\":\"closed\",\"i\":%d,\"t\":%.3f,\"rec\":", f->r.i, now());
      put_rec(stdout, &f->r);
      fputs("}\n", stdout);
      f->fd = -2;
      continue;
    }
    f->r.held_ms = round3(now() - f->answered_at);
    /* Ask the responder to close first, so TIME_WAIT lands on the server. */
    if (write(f->fd, "close\n", 6) < 0 && !f->r.after_answer[0]) errno_name(errno, f->r.after_answer, sizeof f->r.after_answer);
  }
  /* A responder that does not close (not ours): give up after the flows' timeout. */
  double deadline = now() + timeout_ms;
  for (int k = 0; k < m; k++) {
    struct flow *f = &list[k];
    if (f->fd == -2) continue;
    drain_to_eof(f, deadline);
    finish(f);
    printf("{\"event\":\"closed\",\"i\":%d,\"t\":%.3f,\"rec\":", f->r.i, now());
    put_rec(stdout, &f->r);
    fputs("}\n", stdout);
  }
  printf("{\"event\":\"closeDone\",\"n\":%d,\"t\":%.3f}\n", n, now());
  fflush(stdout);
  free(list);
}

/* ---------------------------------------------------------------- commands */

int main(void) {
  T0 = mono_ms();
  unsigned seed = 0;
  int rnd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (rnd < 0 || read(rnd, &seed, sizeof seed) != sizeof seed) seed = (unsigned)getpid() ^ (unsigned)(T0 * 1000);
  if (rnd >= 0) close(rnd);
  snprintf(run_id, sizeof run_id, "%08x", seed);
  printf("{\"event\":\"ready\",\"t\":%.3f}\n", now());
  fflush(stdout);

  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  while ((len = getline(&line, &cap, stdin)) >= 0) {
    if (len > 0 && line[len - 1] == '\n') line[--len] = 0;
    if (len == 0) continue;
    int n, used;
    if (sscanf(line, "open %d%n", &n, &used) == 1 && line[used] == 0 && n >= 0) {
      int bad = 0;
      for (int k = 0; k < n && !bad; k++) {
        if ((len = getline(&line, &cap, stdin)) < 0) { emit_error("stdin ended inside an open command"); bad = 1; break; }
        if (len > 0 && line[len - 1] == '\n') line[--len] = 0;
        int i, sport, dport, hold, timeout;
        char proto[8], src[STR], dst[STR];
        if (sscanf(line, "%d %7s %255s %d %255s %d %d %d%n", &i, proto, src, &sport, dst, &dport, &hold, &timeout, &used) != 8 ||
            line[used] != 0 || (strcmp(proto, "tcp") && strcmp(proto, "udp")) || sport < 0 || sport > 65535 || dport < 0 ||
            dport > 65535 || (hold != 0 && hold != 1) || timeout <= 0) {
          char m[STR + 32];
          snprintf(m, sizeof m, "bad flow line: %.200s", line);
          emit_error(m);
          bad = 1;
          /* read the rest of the command so the next one starts on a command line */
          for (k++; k < n; k++) if (getline(&line, &cap, stdin) < 0) break;
          break;
        }
        if (find_held(i)) {
          char m[64];
          snprintf(m, sizeof m, "flow %d is already open", i);
          emit_error(m);
          bad = 1;
          for (k++; k < n; k++) if (getline(&line, &cap, stdin) < 0) break;
          break;
        }
        open_one(i, !strcmp(proto, "udp"), src, sport, dst, dport, hold, timeout);
      }
      if (!bad) {
        printf("{\"event\":\"opened\",\"n\":%d,\"t\":%.3f}\n", n, now());
        fflush(stdout);
      }
    } else if (sscanf(line, "close %d%n", &n, &used) == 1 && n >= 0) {
      int *idx = calloc(n ? n : 1, sizeof *idx);
      const char *p = line + used;
      int k = 0, off;
      while (k < n && sscanf(p, "%d%n", &idx[k], &off) == 1) { p += off; k++; }
      if (k != n || *p) {
        char m[STR];
        snprintf(m, sizeof m, "bad close command: %.200s", line);
        emit_error(m);
      } else close_held(idx, n);
      free(idx);
    } else if (!strcmp(line, "time")) {
      printf("{\"event\":\"time\",\"t\":%.3f}\n", now());
      fflush(stdout);
    } else {
      char m[STR];
      snprintf(m, sizeof m, "unknown command: %.200s", line);
      emit_error(m);
    }
  }
  /* stdin EOF: close every held flow (the host has gone or is stopping us) */
  int *all = calloc(held_n ? held_n : 1, sizeof *all);
  int m = (int)held_n;
  for (size_t k = 0; k < held_n; k++) all[k] = held[k].r.i;
  if (m) close_held(all, m);
  free(all);
  return 0;
}
