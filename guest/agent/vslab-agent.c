/*
 * vslab-agent: the control agent inside a vslab VM guest (started by /init from guest/init; reaps orphans as a subreaper).
 *
 * It speaks the framed protocol of protocol.h over the virtio-serial port named "vslab.agent" and
 * does what the host asks: run programs (optionally inside a named network namespace, collected or
 * streamed, with stdin and a timeout), signal them, relay netlink requests into a namespace, and
 * move files. One thread, one poll loop; children are reaped through a signalfd.
 *
 * Built statically by the host's cc (src/backend/vm/agent.ts), so the guest needs no libraries for it.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "protocol.h"

#define MAX_FRAME (256u << 20)
#define MAX_COLLECT (64u << 20)
#define MAX_PROCS 256
#define MAX_FIELDS 4096

static int port = -1;       /* the virtio-serial port */
static int home_netns = -1; /* the agent's own network namespace */
static char release[128] = "?";

/* ------------------------------------------------------------------ small helpers */

static void logmsg(const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (n > (int)sizeof buf - 2) n = sizeof buf - 2;
  buf[n++] = '\n';
  int fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
  if (fd >= 0) {
    if (write(fd, buf, n) < 0) { /* nothing else to tell */ }
    close(fd);
  }
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000LL;
}

typedef struct {
  char *p;
  size_t len, cap;
} buf_t;

static void buf_put(buf_t *b, const void *d, size_t n) {
  if (b->len + n > b->cap) {
    size_t c = b->cap ? b->cap : 4096;
    while (c < b->len + n) c *= 2;
    b->p = realloc(b->p, c);
    if (!b->p) abort();
    b->cap = c;
  }
  memcpy(b->p + b->len, d, n);
  b->len += n;
}

static void buf_free(buf_t *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}

static void put_u32(buf_t *b, uint32_t v) {
  unsigned char x[4] = {v & 255, (v >> 8) & 255, (v >> 16) & 255, (v >> 24) & 255};
  buf_put(b, x, 4);
}

static uint32_t get_u32(const unsigned char *p) { return p[0] | (p[1] << 8) | (p[2] << 16) | ((uint32_t)p[3] << 24); }

/* ------------------------------------------------------------------ frames out */

typedef struct {
  const void *p;
  size_t len;
} field_t;

static field_t fstr(const char *s) { return (field_t){s, strlen(s)}; }
static field_t fmem(const void *p, size_t n) { return (field_t){p, n}; }

/* Write a whole frame to the host. The port is non-blocking: while no host is connected (POLLHUP),
 * frames are dropped rather than blocking the agent (a later host starts with a ping). */
static void write_all(const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(port, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        struct pollfd pf = {.fd = port, .events = POLLOUT};
        poll(&pf, 1, 1000);
        if ((pf.revents & POLLHUP) && !(pf.revents & POLLOUT)) return;
        continue;
      }
      logmsg("vslab-agent: write to the host failed: %s", strerror(errno));
      return;
    }
    p += w;
    n -= (size_t)w;
  }
}

static void send_frame(uint32_t id, uint8_t type, int nf, const field_t *f) {
  buf_t b = {0};
  size_t len = 5;
  for (int i = 0; i < nf; i++) len += 4 + f[i].len;
  put_u32(&b, (uint32_t)len);
  put_u32(&b, id);
  buf_put(&b, &type, 1);
  for (int i = 0; i < nf; i++) {
    put_u32(&b, (uint32_t)f[i].len);
    if (f[i].len) buf_put(&b, f[i].p, f[i].len);
  }
  write_all(b.p, b.len);
  buf_free(&b);
}

static void send_error(uint32_t id, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  field_t f[1] = {fstr(msg)};
  send_frame(id, T_ERROR, 1, f);
}

static void send_ok(uint32_t id) { send_frame(id, T_OK, 0, NULL); }

/* ------------------------------------------------------------------ namespaces */

static int ns_path(const char *ns, size_t nslen, char *out, size_t outsz) {
  if (nslen == 0) return 0;
  if (nslen >= outsz - 16) return -ENAMETOOLONG;
  if (ns[0] == '/') snprintf(out, outsz, "%.*s", (int)nslen, ns);
  else {
    if (memchr(ns, '/', nslen)) return -EINVAL;
    snprintf(out, outsz, "/run/netns/%.*s", (int)nslen, ns);
  }
  return 1;
}

/* Open the namespace file (or -1 for "stay here"); returns -errno on failure. */
static int open_ns(const char *ns, size_t nslen, char *path, size_t pathsz) {
  int r = ns_path(ns, nslen, path, pathsz);
  if (r <= 0) return r == 0 ? -1 : r;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  return fd < 0 ? -errno : fd;
}

/* ------------------------------------------------------------------ processes */

typedef struct {
  int used;
  uint32_t id;
  int stream;
  pid_t pid;
  int out[2];  /* read ends of stdout/stderr, -1 when closed */
  int in;      /* write end of stdin, -1 when closed */
  buf_t inq;   /* stdin bytes not yet written */
  size_t inoff;
  int close_in; /* close stdin once inq is written */
  buf_t col[2];
  int exited, status, timed_out;
  long long deadline; /* 0 = none */
} proc_t;

static proc_t procs[MAX_PROCS];

static proc_t *proc_by_id(uint32_t id) {
  for (int i = 0; i < MAX_PROCS; i++)
    if (procs[i].used && procs[i].id == id) return &procs[i];
  return NULL;
}

static void set_nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

static void proc_output(proc_t *p, int which, const char *d, size_t n) {
  if (p->stream) {
    field_t f[2] = {fstr(which == 0 ? "1" : "2"), fmem(d, n)};
    send_frame(p->id, T_OUTPUT, 2, f);
  } else if (p->col[which].len + n <= MAX_COLLECT) {
    buf_put(&p->col[which], d, n);
  }
}

/* Read what is available on one output pipe; close it on EOF. */
static void proc_read(proc_t *p, int which) {
  char tmp[65536];
  for (;;) {
    ssize_t n = read(p->out[which], tmp, sizeof tmp);
    if (n > 0) {
      proc_output(p, which, tmp, (size_t)n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    close(p->out[which]);
    p->out[which] = -1;
    return;
  }
}

static void proc_close_stdin(proc_t *p) {
  if (p->in >= 0) close(p->in);
  p->in = -1;
  buf_free(&p->inq);
  p->inoff = 0;
}

static void proc_write_stdin(proc_t *p) {
  while (p->in >= 0 && p->inoff < p->inq.len) {
    ssize_t w = write(p->in, p->inq.p + p->inoff, p->inq.len - p->inoff);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return;
      proc_close_stdin(p); /* EPIPE: the program does not read its input */
      return;
    }
    p->inoff += (size_t)w;
  }
  if (p->in >= 0 && p->inoff >= p->inq.len) {
    buf_free(&p->inq);
    p->inoff = 0;
    if (p->close_in) proc_close_stdin(p);
  }
}

static void proc_finish(proc_t *p) {
  for (int i = 0; i < 2; i++)
    if (p->out[i] >= 0) {
      proc_read(p, i); /* whatever the program wrote before it exited is in the pipe now */
      if (p->out[i] >= 0) close(p->out[i]);
      p->out[i] = -1;
    }
  proc_close_stdin(p);
  char code[16] = "", sig[16] = "";
  if (WIFEXITED(p->status)) snprintf(code, sizeof code, "%d", WEXITSTATUS(p->status));
  else if (WIFSIGNALED(p->status)) snprintf(sig, sizeof sig, "%d", WTERMSIG(p->status));
  field_t f[5] = {fstr(code), fstr(sig), fstr(p->timed_out ? "1" : "0"), fmem(p->col[0].p, p->col[0].len), fmem(p->col[1].p, p->col[1].len)};
  send_frame(p->id, T_EXIT, 5, f);
  buf_free(&p->col[0]);
  buf_free(&p->col[1]);
  p->used = 0;
}

/* Child side of RUN: report a failure through the status pipe and exit. */
static void child_fail(int status_fd, const char *stage, const char *what) {
  char msg[600];
  int n = snprintf(msg, sizeof msg, "%s %s: %s", stage, what, strerror(errno));
  if (write(status_fd, msg, n) < 0) { /* the parent will see a bare exit */ }
  _exit(127);
}

static void do_run(uint32_t id, int nf, field_t *f) {
  if (nf < 7) return send_error(id, "RUN needs mode, ns, cwd, timeout_ms, stdin, envc and a program");
  int stream = f[0].len == 6 && !memcmp(f[0].p, "stream", 6);
  char nsbuf[512];
  int nsfd = open_ns(f[1].p, f[1].len, nsbuf, sizeof nsbuf);
  if (nsfd < -1) return send_error(id, "no network namespace %s in the guest (%s)", nsbuf, strerror(-nsfd));
  char cwd[1024];
  snprintf(cwd, sizeof cwd, "%.*s", (int)(f[2].len < 1000 ? f[2].len : 1000), (const char *)f[2].p);
  char tbuf[32];
  snprintf(tbuf, sizeof tbuf, "%.*s", (int)(f[3].len < 30 ? f[3].len : 30), (const char *)f[3].p);
  long long timeout = atoll(tbuf);
  snprintf(tbuf, sizeof tbuf, "%.*s", (int)(f[5].len < 30 ? f[5].len : 30), (const char *)f[5].p);
  int envc = atoi(tbuf);
  if (envc < 0 || 6 + envc >= nf) {
    if (nsfd >= 0) close(nsfd);
    return send_error(id, "RUN: bad environment count or no program");
  }
  int argc = nf - 6 - envc;
  char **env = calloc((size_t)envc + 4, sizeof(char *));
  char **argv = calloc((size_t)argc + 1, sizeof(char *));
  int ne = 0;
  int have_path = 0, have_home = 0;
  for (int i = 0; i < envc; i++) {
    env[ne] = strndup(f[6 + i].p, f[6 + i].len);
    if (!strncmp(env[ne], "PATH=", 5)) have_path = 1;
    if (!strncmp(env[ne], "HOME=", 5)) have_home = 1;
    ne++;
  }
  if (!have_path) env[ne++] = strdup("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  if (!have_home) env[ne++] = strdup("HOME=/root");
  for (int i = 0; i < argc; i++) argv[i] = strndup(f[6 + envc + i].p, f[6 + envc + i].len);

  proc_t *p = NULL;
  for (int i = 0; i < MAX_PROCS; i++)
    if (!procs[i].used) {
      p = &procs[i];
      break;
    }
  int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1}, pst[2] = {-1, -1};
  const char *err = NULL;
  if (!p) err = "too many running programs in the guest";
  else if (pipe2(pin, O_CLOEXEC) || pipe2(pout, O_CLOEXEC) || pipe2(perr, O_CLOEXEC) || pipe2(pst, O_CLOEXEC)) err = "cannot create pipes";
  pid_t pid = -1;
  if (!err) {
    pid = fork();
    if (pid < 0) err = "fork failed";
  }
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    setsid();
    dup2(pin[0], 0);
    dup2(pout[1], 1);
    dup2(perr[1], 2);
    if (nsfd >= 0) {
      if (setns(nsfd, CLONE_NEWNET) < 0) child_fail(pst[1], "cannot enter network namespace", nsbuf);
      /* Like `ip netns exec`: a private mount namespace whose /sys shows this network namespace. */
      if (unshare(CLONE_NEWNS) == 0) {
        mount(NULL, "/", NULL, MS_SLAVE | MS_REC, NULL);
        umount2("/sys", MNT_DETACH);
        mount("sysfs", "/sys", "sysfs", 0, NULL);
      }
    }
    if (cwd[0] && chdir(cwd) < 0) child_fail(pst[1], "cannot change directory to", cwd);
    execvpe(argv[0], argv, env);
    child_fail(pst[1], "cannot execute", argv[0]);
  }
  if (nsfd >= 0) close(nsfd);
  for (int i = 0; i < ne; i++) free(env[i]);
  free(env);
  if (!err) {
    close(pin[0]);
    close(pout[1]);
    close(perr[1]);
    close(pst[1]);
    char msg[700];
    ssize_t n;
    do n = read(pst[0], msg, sizeof msg - 1);
    while (n < 0 && errno == EINTR);
    close(pst[0]);
    if (n > 0) {
      msg[n] = 0;
      waitpid(pid, NULL, 0);
      close(pin[1]);
      close(pout[0]);
      close(perr[0]);
      for (int i = 0; i < argc; i++) free(argv[i]);
      free(argv);
      return send_error(id, "%s", msg);
    }
    memset(p, 0, sizeof *p);
    p->used = 1;
    p->id = id;
    p->stream = stream;
    p->pid = pid;
    p->out[0] = pout[0];
    p->out[1] = perr[0];
    p->in = pin[1];
    set_nonblock(p->out[0]);
    set_nonblock(p->out[1]);
    set_nonblock(p->in);
    p->deadline = timeout > 0 ? now_ms() + timeout : 0;
    if (f[4].len) buf_put(&p->inq, f[4].p, f[4].len);
    if (!stream) p->close_in = 1;
    proc_write_stdin(p);
    if (stream) {
      char pidb[16];
      snprintf(pidb, sizeof pidb, "%d", pid);
      field_t r[1] = {fstr(pidb)};
      send_frame(id, T_STARTED, 1, r);
    }
  } else {
    int fds[] = {pin[0], pin[1], pout[0], pout[1], perr[0], perr[1], pst[0], pst[1]};
    for (unsigned i = 0; i < sizeof fds / sizeof fds[0]; i++)
      if (fds[i] >= 0) close(fds[i]);
    send_error(id, "%s: %s", err, strerror(errno));
  }
  for (int i = 0; i < argc; i++) free(argv[i]);
  free(argv);
}

static void do_stdin(uint32_t id, int nf, field_t *f) {
  proc_t *p = proc_by_id(id);
  if (!p || p->in < 0) return; /* the program is gone or its stdin is closed: drop silently */
  if (nf < 1 || f[0].len == 0) {
    p->close_in = 1;
  } else {
    buf_put(&p->inq, f[0].p, f[0].len);
  }
  proc_write_stdin(p);
}

static void do_signal(uint32_t id, int nf, field_t *f) {
  proc_t *p = proc_by_id(id);
  if (!p || p->exited || nf < 1) return;
  char b[16];
  snprintf(b, sizeof b, "%.*s", (int)(f[0].len < 15 ? f[0].len : 15), (const char *)f[0].p);
  kill(p->pid, atoi(b));
}

static void reap(void) {
  for (;;) {
    int st;
    pid_t pid = waitpid(-1, &st, WNOHANG);
    if (pid <= 0) return;
    for (int i = 0; i < MAX_PROCS; i++)
      if (procs[i].used && procs[i].pid == pid && !procs[i].exited) {
        procs[i].exited = 1;
        procs[i].status = st;
      }
  }
}

/* ------------------------------------------------------------------ netlink relay */

static void do_netlink(uint32_t id, int nf, field_t *f) {
  if (nf < 4) return send_error(id, "NETLINK needs ns, protocol, timeout_ms, request");
  char nsbuf[512], num[32];
  int nsfd = open_ns(f[0].p, f[0].len, nsbuf, sizeof nsbuf);
  if (nsfd < -1) return send_error(id, "no network namespace %s in the guest (%s)", nsbuf, strerror(-nsfd));
  snprintf(num, sizeof num, "%.*s", (int)(f[1].len < 30 ? f[1].len : 30), (const char *)f[1].p);
  int proto = atoi(num);
  snprintf(num, sizeof num, "%.*s", (int)(f[2].len < 30 ? f[2].len : 30), (const char *)f[2].p);
  long long timeout = atoll(num);
  if (timeout <= 0) timeout = 5000;

  const unsigned char *req = f[3].p;
  size_t reqlen = f[3].len;
  uint32_t *seqs = malloc(sizeof(uint32_t) * (reqlen / sizeof(struct nlmsghdr) + 1));
  int nseq = 0;
  for (size_t off = 0; off + sizeof(struct nlmsghdr) <= reqlen;) {
    const struct nlmsghdr *h = (const void *)(req + off);
    if (h->nlmsg_len < sizeof(struct nlmsghdr) || off + h->nlmsg_len > reqlen) {
      free(seqs);
      if (nsfd >= 0) close(nsfd);
      return send_error(id, "netlink: malformed request buffer at offset %zu", off);
    }
    seqs[nseq++] = h->nlmsg_seq;
    off += NLMSG_ALIGN(h->nlmsg_len);
  }

  if (nsfd >= 0 && setns(nsfd, CLONE_NEWNET) < 0) {
    int e = errno;
    close(nsfd);
    free(seqs);
    return send_error(id, "cannot enter network namespace %s: %s", nsbuf, strerror(e));
  }
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, proto);
  int serr = errno;
  if (nsfd >= 0) {
    if (setns(home_netns, CLONE_NEWNET) < 0) {
      logmsg("vslab-agent: cannot return to the initial network namespace: %s", strerror(errno));
      abort();
    }
    close(nsfd);
  }
  if (fd < 0) {
    free(seqs);
    return send_error(id, "cannot open a netlink socket (protocol %d) in %s: %s", proto, nsfd >= 0 ? nsbuf : "the guest's initial namespace", strerror(serr));
  }
  int one = 1, bufsz = 4 << 20;
  setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bufsz, sizeof bufsz);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bufsz, sizeof bufsz);
  struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || sendto(fd, req, reqlen, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) {
    int e = errno;
    close(fd);
    free(seqs);
    return send_error(id, "netlink send failed: %s", strerror(e));
  }
  buf_t out = {0};
  size_t rcap = 1 << 20;
  char *rbuf = malloc(rcap);
  int pending = nseq;
  long long deadline = now_ms() + timeout;
  const char *fail = NULL;
  int ferr = 0;
  while (pending > 0) {
    long long left = deadline - now_ms();
    if (left <= 0) {
      fail = "netlink reply timed out";
      ferr = ETIMEDOUT;
      break;
    }
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    int pr = poll(&pf, 1, (int)left);
    if (pr <= 0) continue;
    ssize_t n = recv(fd, rbuf, rcap, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail = "netlink receive failed";
      ferr = errno;
      break;
    }
    for (size_t off = 0; off + sizeof(struct nlmsghdr) <= (size_t)n;) {
      struct nlmsghdr *h = (struct nlmsghdr *)(rbuf + off);
      if (h->nlmsg_len < sizeof(struct nlmsghdr) || off + h->nlmsg_len > (size_t)n) break;
      if (h->nlmsg_type == NLMSG_ERROR || h->nlmsg_type == NLMSG_DONE) {
        for (int i = 0; i < nseq; i++)
          if (seqs[i] == h->nlmsg_seq) {
            seqs[i] = seqs[--nseq];
            pending--;
            break;
          }
      }
      off += NLMSG_ALIGN(h->nlmsg_len);
    }
    buf_put(&out, rbuf, (size_t)n);
  }
  close(fd);
  free(rbuf);
  free(seqs);
  if (fail) send_error(id, "%s: %s", fail, strerror(ferr));
  else {
    field_t r[1] = {fmem(out.p, out.len)};
    send_frame(id, T_NLREPLY, 1, r);
  }
  buf_free(&out);
}

/* ------------------------------------------------------------------ files */

static void do_fetch(uint32_t id, int nf, field_t *f) {
  if (nf < 1) return send_error(id, "FETCH needs a path");
  char *path = strndup(f[0].p, f[0].len);
  /* Optional second field: the byte offset to start at (a capture read again as it grows). */
  unsigned long long from = 0;
  if (nf >= 2 && f[1].len) {
    char num[32];
    size_t l = f[1].len < sizeof num - 1 ? f[1].len : sizeof num - 1;
    memcpy(num, f[1].p, l);
    num[l] = 0;
    char *end = NULL;
    errno = 0;
    from = strtoull(num, &end, 10);
    if (errno || !end || *end || f[1].len >= sizeof num) {
      send_error(id, "FETCH %s: bad offset", path);
      free(path);
      return;
    }
  }
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    send_error(id, "cannot open %s in the guest: %s", path, strerror(errno));
    free(path);
    return;
  }
  if (from && lseek(fd, (off_t)from, SEEK_SET) < 0) {
    send_error(id, "cannot seek %s to %llu in the guest: %s", path, from, strerror(errno));
    close(fd);
    free(path);
    return;
  }
  static char chunk[256 << 10];
  unsigned long long total = 0;
  for (;;) {
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      send_error(id, "cannot read %s in the guest: %s", path, strerror(errno));
      close(fd);
      free(path);
      return;
    }
    if (n == 0) break;
    field_t r[1] = {fmem(chunk, (size_t)n)};
    send_frame(id, T_CHUNK, 1, r);
    total += (unsigned long long)n;
  }
  close(fd);
  free(path);
  char sz[32];
  snprintf(sz, sizeof sz, "%llu", total);
  field_t r[1] = {fstr(sz)};
  send_frame(id, T_END, 1, r);
}

static int mkdirs(char *path) {
  for (char *s = path + 1; *s; s++) {
    if (*s != '/') continue;
    *s = 0;
    int r = mkdir(path, 0755);
    *s = '/';
    if (r < 0 && errno != EEXIST) return -1;
  }
  return 0;
}

static void do_put(uint32_t id, int nf, field_t *f) {
  if (nf < 3) return send_error(id, "PUT needs path, mode, data");
  char *path = strndup(f[0].p, f[0].len);
  char mb[16];
  snprintf(mb, sizeof mb, "%.*s", (int)(f[1].len < 15 ? f[1].len : 15), (const char *)f[1].p);
  mode_t mode = (mode_t)strtol(mb, NULL, 8);
  mkdirs(path);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode ? mode : 0644);
  if (fd < 0) {
    send_error(id, "cannot create %s in the guest: %s", path, strerror(errno));
    free(path);
    return;
  }
  const char *d = f[2].p;
  size_t left = f[2].len;
  while (left > 0) {
    ssize_t w = write(fd, d, left);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      send_error(id, "cannot write %s in the guest: %s", path, strerror(errno));
      close(fd);
      free(path);
      return;
    }
    d += w;
    left -= (size_t)w;
  }
  if (mode) fchmod(fd, mode);
  close(fd);
  free(path);
  send_ok(id);
}

/* ------------------------------------------------------------------ dispatch */

static void handle_frame(const unsigned char *p, size_t len) {
  uint32_t id = get_u32(p);
  uint8_t type = p[4];
  static field_t f[MAX_FIELDS];
  int nf = 0;
  for (size_t off = 5; off < len;) {
    if (off + 4 > len || nf >= MAX_FIELDS) return send_error(id, "malformed frame (type %u)", type);
    uint32_t fl = get_u32(p + off);
    off += 4;
    if (off + fl > len) return send_error(id, "malformed frame (type %u): field runs past the end", type);
    f[nf++] = fmem(p + off, fl);
    off += fl;
  }
  switch (type) {
    case T_PING: {
      field_t r[2] = {fstr(AGENT_PROTOCOL), fstr(release)};
      send_frame(id, T_PONG, 2, r);
      break;
    }
    case T_RUN: do_run(id, nf, f); break;
    case T_STDIN: do_stdin(id, nf, f); break;
    case T_SIGNAL: do_signal(id, nf, f); break;
    case T_NETLINK: do_netlink(id, nf, f); break;
    case T_FETCH: do_fetch(id, nf, f); break;
    case T_PUT: do_put(id, nf, f); break;
    case T_POWEROFF:
      send_ok(id);
      sync();
      reboot(RB_POWER_OFF);
      break;
    default: send_error(id, "unknown request type %u", type);
  }
}

static int open_port(void) {
  DIR *d = opendir("/sys/class/virtio-ports");
  if (!d) return -1;
  struct dirent *e;
  int fd = -1;
  while ((e = readdir(d)) && fd < 0) {
    if (e->d_name[0] == '.') continue;
    char p[300], name[64] = "";
    snprintf(p, sizeof p, "/sys/class/virtio-ports/%s/name", e->d_name);
    FILE *fp = fopen(p, "r");
    if (!fp) continue;
    if (fgets(name, sizeof name, fp)) name[strcspn(name, "\n")] = 0;
    fclose(fp);
    if (strcmp(name, AGENT_PORT_NAME)) continue;
    snprintf(p, sizeof p, "/dev/%s", e->d_name);
    fd = open(p, O_RDWR | O_CLOEXEC | O_NONBLOCK);
  }
  closedir(d);
  return fd;
}

/*
 * `vslab-agent --hold-clock`: keeps the vCPU busy at the lowest priority there is (SCHED_IDLE), so a guest
 * whose qemu runs with `-icount sleep=off` never idles and its clock follows the instructions it runs (about
 * real time) instead of jumping to the next timer. The host stops it (SIGSTOP) to let the clock jump through
 * a wait, and it is continued in the guest when the wait is over (VmGuest.advanceClock).
 */
static int hold_clock(void) {
  struct sched_param sp = {.sched_priority = 0};
  if (sched_setscheduler(0, SCHED_IDLE, &sp) != 0) {
    fprintf(stderr, "vslab-agent --hold-clock: cannot switch to SCHED_IDLE: %s\n", strerror(errno));
    return 1;
  }
  for (;;) sched_yield();
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "--hold-clock")) return hold_clock();
  struct utsname u;
  if (uname(&u) == 0) snprintf(release, sizeof release, "%s", u.release);
  /* The port shows up a little after virtio_console is loaded (the host adds it through the device's control
     queue): look again every 5 ms, not 50, which was one whole wait on most boots. */
  for (int tries = 0; (port = open_port()) < 0; tries++) {
    if (tries == 1000) logmsg("vslab-agent: still no virtio port named %s", AGENT_PORT_NAME);
    usleep(5 * 1000);
  }
  home_netns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  signal(SIGPIPE, SIG_IGN);
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, NULL);
  int sfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);

  field_t hello[2] = {fstr(AGENT_PROTOCOL), fstr(release)};
  send_frame(0, T_HELLO, 2, hello);
  logmsg("vslab-agent: ready (protocol %s, kernel %s)", AGENT_PROTOCOL, release);

  buf_t in = {0};
  int host_gone = 0;
  static struct pollfd pf[2 + 3 * MAX_PROCS];
  static proc_t *owner[2 + 3 * MAX_PROCS];
  static int kind[2 + 3 * MAX_PROCS];
  for (;;) {
    int n = 0;
    pf[n] = (struct pollfd){.fd = port, .events = POLLIN};
    owner[n++] = NULL;
    pf[n] = (struct pollfd){.fd = sfd, .events = POLLIN};
    owner[n++] = NULL;
    long long next = 0;
    for (int i = 0; i < MAX_PROCS; i++) {
      proc_t *p = &procs[i];
      if (!p->used) continue;
      for (int k = 0; k < 2; k++)
        if (p->out[k] >= 0) {
          pf[n] = (struct pollfd){.fd = p->out[k], .events = POLLIN};
          owner[n] = p;
          kind[n++] = k;
        }
      if (p->in >= 0 && p->inoff < p->inq.len) {
        pf[n] = (struct pollfd){.fd = p->in, .events = POLLOUT};
        owner[n] = p;
        kind[n++] = 2;
      }
      if (p->deadline && !p->timed_out && (!next || p->deadline < next)) next = p->deadline;
    }
    int timeout = -1;
    if (next) {
      long long left = next - now_ms();
      timeout = left < 0 ? 0 : (int)(left > 60000 ? 60000 : left);
    }
    int r = poll(pf, n, timeout);
    if (r < 0 && errno != EINTR) {
      logmsg("vslab-agent: poll failed: %s", strerror(errno));
      sleep(1);
      continue;
    }
    if (r > 0 && (pf[0].revents & POLLIN)) {
      char tmp[65536];
      ssize_t got = read(port, tmp, sizeof tmp);
      if (got > 0) buf_put(&in, tmp, (size_t)got);
      host_gone = 0;
      size_t off = 0;
      while (in.len - off >= 4) {
        uint32_t fl = get_u32((unsigned char *)in.p + off);
        if (fl < 5 || fl > MAX_FRAME) {
          logmsg("vslab-agent: bad frame length %u from the host; dropping input", fl);
          off = in.len;
          break;
        }
        if (in.len - off - 4 < fl) break;
        handle_frame((unsigned char *)in.p + off + 4, fl);
        off += 4 + fl;
      }
      if (off) {
        memmove(in.p, in.p + off, in.len - off);
        in.len -= off;
      }
    } else if (r > 0 && (pf[0].revents & POLLHUP)) {
      /* No host connected (yet, or any more): a half-received frame will never be completed. */
      if (!host_gone) in.len = 0;
      host_gone = 1;
      usleep(100 * 1000);
    }
    if (r > 0 && (pf[1].revents & POLLIN)) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) == sizeof si) {
      }
    }
    reap();
    for (int i = 2; r > 0 && i < n; i++) {
      if (!pf[i].revents || !owner[i]->used) continue;
      if (kind[i] == 2) proc_write_stdin(owner[i]);
      else if (owner[i]->out[kind[i]] == pf[i].fd) proc_read(owner[i], kind[i]);
    }
    long long t = now_ms();
    for (int i = 0; i < MAX_PROCS; i++) {
      proc_t *p = &procs[i];
      if (!p->used) continue;
      if (p->deadline && !p->timed_out && t >= p->deadline && !p->exited) {
        p->timed_out = 1;
        kill(-p->pid, SIGKILL);
        kill(p->pid, SIGKILL);
      }
      if (p->exited) proc_finish(p);
    }
  }
}
