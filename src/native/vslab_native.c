/*
 * vslab_native: the few system calls Node cannot make itself.
 *
 * Node has no setns(2), so it cannot open a netlink socket or write a
 * /proc/sys/net file inside another network namespace. Every function here
 * that enters a namespace does so on the calling thread only and always
 * returns to the namespace it came from before returning to JavaScript, so no
 * other code (and no other socket) ever runs inside a lab namespace by
 * accident.
 *
 * Exports:
 *   netnsCreate(path)                 create a named namespace bound at path (like `ip netns add`)
 *   netnsDelete(path)                 unmount and remove it (like `ip netns del`)
 *   netlinkOpen(nsPath|null, proto)   a netlink socket living in that namespace -> fd
 *   netlinkTransact(fd, buf, ms)      send buf, read until every request in it is answered -> Buffer
 *   netlinkClose(fd)
 *   sysctlWrite(nsPath, [[path, value], ...])
 *                                     write /proc/sys/net/... files inside that namespace;
 *                                     refuses any path that does not resolve under /proc/sys/net/
 *                                     and the host namespace (null)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/netlink.h>
#include <node_api.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define MAX_SEQS 4096

static napi_value throw_errno(napi_env env, const char *what, const char *where, int err) {
  char msg[1024];
  snprintf(msg, sizeof msg, "%s%s%s: %s", what, where ? " " : "", where ? where : "", strerror(err));
  napi_value code, m, e;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
  char codebuf[32];
  snprintf(codebuf, sizeof codebuf, "E%d", err);
  const char *name = NULL;
  switch (err) {
    case EEXIST: name = "EEXIST"; break;
    case ENOENT: name = "ENOENT"; break;
    case EPERM: name = "EPERM"; break;
    case EINVAL: name = "EINVAL"; break;
    case EBUSY: name = "EBUSY"; break;
    case ETIMEDOUT: name = "ETIMEDOUT"; break;
    default: name = codebuf;
  }
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, m, &e);
  napi_value errnoV;
  napi_create_int32(env, err, &errnoV);
  napi_set_named_property(env, e, "errno", errnoV);
  napi_throw(env, e);
  return NULL;
}

static napi_value throw_msg(napi_env env, const char *msg) {
  napi_throw_error(env, NULL, msg);
  return NULL;
}

/* Read argument i as a newly malloc'ed string, or NULL for null/undefined. */
static char *arg_string(napi_env env, napi_value v, int *isnull) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t == napi_null || t == napi_undefined) {
    *isnull = 1;
    return NULL;
  }
  *isnull = 0;
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return NULL;
  char *s = malloc(len + 1);
  napi_get_value_string_utf8(env, v, s, len + 1, &len);
  return s;
}

/* Enter the namespace at path; *saved receives an fd for the current one. */
static int enter_netns(const char *path, int *saved) {
  *saved = -1;
  if (!path) return 0;
  int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (self < 0) return -errno;
  int target = open(path, O_RDONLY | O_CLOEXEC);
  if (target < 0) {
    int e = errno;
    close(self);
    return -e;
  }
  if (setns(target, CLONE_NEWNET) < 0) {
    int e = errno;
    close(self);
    close(target);
    return -e;
  }
  close(target);
  *saved = self;
  return 0;
}

static void leave_netns(int saved) {
  if (saved < 0) return;
  if (setns(saved, CLONE_NEWNET) < 0) {
    /* Staying in a lab namespace would be a safety violation: stop here. */
    fprintf(stderr, "vslab_native: cannot return to the original network namespace: %s\n", strerror(errno));
    abort();
  }
  close(saved);
}

static int ensure_netns_dir(const char *dir) {
  if (mkdir(dir, 0755) < 0 && errno != EEXIST) return -errno;
  /* Like iproute2: make the directory a shared mount so bind mounts propagate. */
  if (mount("", dir, "none", MS_SHARED | MS_REC, NULL) == 0) return 0;
  if (errno != EINVAL) return -errno;
  if (mount(dir, dir, "none", MS_BIND | MS_REC, NULL) < 0) return -errno;
  if (mount("", dir, "none", MS_SHARED | MS_REC, NULL) < 0) return -errno;
  return 0;
}

static napi_value NetnsCreate(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int isnull;
  char *path = arg_string(env, argv[0], &isnull);
  if (!path) return throw_msg(env, "netnsCreate: path must be a string");
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (!slash) {
    free(path);
    return throw_msg(env, "netnsCreate: path must be absolute");
  }
  *slash = 0;
  int r = ensure_netns_dir(dir);
  if (r < 0) {
    free(path);
    return throw_errno(env, "cannot prepare namespace directory", dir, -r);
  }
  int fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
  if (fd < 0) {
    int e = errno;
    napi_value ret = throw_errno(env, "cannot create namespace file", path, e);
    free(path);
    return ret;
  }
  close(fd);
  int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (self < 0) {
    int e = errno;
    unlink(path);
    free(path);
    return throw_errno(env, "cannot open own namespace", NULL, e);
  }
  if (unshare(CLONE_NEWNET) < 0) {
    int e = errno;
    close(self);
    unlink(path);
    napi_value ret = throw_errno(env, "unshare(CLONE_NEWNET) failed for", path, e);
    free(path);
    return ret;
  }
  int err = 0;
  if (mount("/proc/thread-self/ns/net", path, "none", MS_BIND, NULL) < 0) err = errno;
  leave_netns(self);
  if (err) {
    unlink(path);
    napi_value ret = throw_errno(env, "cannot bind namespace to", path, err);
    free(path);
    return ret;
  }
  free(path);
  return NULL;
}

static napi_value NetnsDelete(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int isnull;
  char *path = arg_string(env, argv[0], &isnull);
  if (!path) return throw_msg(env, "netnsDelete: path must be a string");
  if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT) {
    int e = errno;
    napi_value ret = throw_errno(env, "cannot unmount namespace", path, e);
    free(path);
    return ret;
  }
  if (unlink(path) < 0 && errno != ENOENT) {
    int e = errno;
    napi_value ret = throw_errno(env, "cannot remove namespace file", path, e);
    free(path);
    return ret;
  }
  free(path);
  return NULL;
}

static napi_value NetlinkOpen(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int isnull;
  char *path = arg_string(env, argv[0], &isnull);
  int32_t proto = 0;
  napi_get_value_int32(env, argv[1], &proto);
  int saved;
  int r = enter_netns(path, &saved);
  if (r < 0) {
    napi_value ret = throw_errno(env, "cannot enter network namespace", path, -r);
    free(path);
    return ret;
  }
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, proto);
  int err = fd < 0 ? errno : 0;
  leave_netns(saved);
  if (fd < 0) {
    napi_value ret = throw_errno(env, "cannot open netlink socket in", path ? path : "host namespace", err);
    free(path);
    return ret;
  }
  free(path);
  int one = 1;
  setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  int bufsz = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof bufsz);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof bufsz);
  struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "cannot bind netlink socket", NULL, e);
  }
  napi_value out;
  napi_create_int32(env, fd, &out);
  return out;
}

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/*
 * Send one buffer holding one or more netlink requests, then read until each
 * request has been answered: by NLMSG_ERROR (an ack or an error) or, for a
 * dump, by NLMSG_DONE. Returns all the reply messages, concatenated.
 */
static napi_value NetlinkTransact(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd, timeout = 5000;
  napi_get_value_int32(env, argv[0], &fd);
  void *data;
  size_t len;
  if (napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok) return throw_msg(env, "netlinkTransact: request must be a Buffer");
  if (argc > 2) napi_get_value_int32(env, argv[2], &timeout);

  static uint32_t seqs[MAX_SEQS];
  int nseq = 0;
  for (size_t off = 0; off + sizeof(struct nlmsghdr) <= len;) {
    struct nlmsghdr *h = (struct nlmsghdr *)((char *)data + off);
    if (h->nlmsg_len < sizeof(struct nlmsghdr) || off + h->nlmsg_len > len) return throw_msg(env, "netlinkTransact: malformed request buffer");
    if (nseq >= MAX_SEQS) return throw_msg(env, "netlinkTransact: too many requests in one buffer");
    seqs[nseq++] = h->nlmsg_seq;
    off += NLMSG_ALIGN(h->nlmsg_len);
  }
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  ssize_t sent = sendto(fd, data, len, 0, (struct sockaddr *)&kernel, sizeof kernel);
  if (sent < 0) return throw_errno(env, "netlink send failed", NULL, errno);

  size_t cap = 1 << 16, used = 0;
  char *out = malloc(cap);
  size_t bufcap = 1 << 20;
  char *buf = malloc(bufcap);
  int pending = nseq;
  long deadline = now_ms() + timeout;
  while (pending > 0) {
    long left = deadline - now_ms();
    if (left <= 0) {
      free(out);
      free(buf);
      return throw_errno(env, "netlink reply timed out", NULL, ETIMEDOUT);
    }
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int pr = poll(&p, 1, (int)left);
    if (pr < 0 && errno == EINTR) continue;
    if (pr <= 0) continue;
    ssize_t n = recv(fd, buf, bufcap, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      free(out);
      free(buf);
      return throw_errno(env, "netlink receive failed", NULL, e);
    }
    for (size_t off = 0; off + sizeof(struct nlmsghdr) <= (size_t)n;) {
      struct nlmsghdr *h = (struct nlmsghdr *)(buf + off);
      if (h->nlmsg_len < sizeof(struct nlmsghdr) || off + h->nlmsg_len > (size_t)n) break;
      if (h->nlmsg_type == NLMSG_ERROR || h->nlmsg_type == NLMSG_DONE) {
        for (int i = 0; i < nseq; i++) {
          if (seqs[i] == h->nlmsg_seq) {
            seqs[i] = seqs[--nseq];
            pending--;
            break;
          }
        }
      }
      off += NLMSG_ALIGN(h->nlmsg_len);
    }
    if (used + (size_t)n > cap) {
      while (used + (size_t)n > cap) cap *= 2;
      out = realloc(out, cap);
    }
    memcpy(out + used, buf, (size_t)n);
    used += (size_t)n;
  }
  free(buf);
  napi_value result;
  void *dst;
  napi_create_buffer_copy(env, used, out, &dst, &result);
  free(out);
  return result;
}

static napi_value NetlinkClose(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  napi_get_value_int32(env, argv[0], &fd);
  close(fd);
  return NULL;
}

#define SYSCTL_NET "/proc/sys/net/"

/* Defence in depth behind the topology checks: a sysctl path must be spelt /proc/sys/net/<...> with
 * no ".", ".." or empty component, and must still resolve (realpath) under /proc/sys/net/. The
 * resolved path is what gets opened, without following a final symlink. 0 or an errno. */
static int sysctl_path_ok(const char *p, char *resolved) {
  size_t plen = strlen(SYSCTL_NET);
  if (strncmp(p, SYSCTL_NET, plen) != 0 || p[plen] == '\0') return EPERM;
  for (const char *c = p + plen - 1; c && *c; c = strchr(c + 1, '/')) {
    const char *s = c + 1;
    size_t n = strcspn(s, "/");
    if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.')) return EPERM;
  }
  if (!realpath(p, resolved)) return errno;
  if (strncmp(resolved, SYSCTL_NET, plen) != 0) return EPERM;
  return 0;
}

static napi_value SysctlWrite(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int isnull;
  char *ns = arg_string(env, argv[0], &isnull);
  if (!ns) return throw_errno(env, "refusing to set sysctls", "in the host namespace", EPERM);
  uint32_t n = 0;
  napi_get_array_length(env, argv[1], &n);
  int saved;
  int r = enter_netns(ns, &saved);
  if (r < 0) {
    napi_value ret = throw_errno(env, "cannot enter network namespace", ns, -r);
    free(ns);
    return ret;
  }
  char failed[1024] = "";
  int err = 0;
  for (uint32_t i = 0; i < n && !err; i++) {
    napi_value pair, pv, vv;
    napi_get_element(env, argv[1], i, &pair);
    napi_get_element(env, pair, 0, &pv);
    napi_get_element(env, pair, 1, &vv);
    int a, b;
    char *p = arg_string(env, pv, &a);
    char *v = arg_string(env, vv, &b);
    if (!p || !v) {
      err = EINVAL;
      snprintf(failed, sizeof failed, "(entry %u is not [path, value])", i);
    } else {
      char resolved[PATH_MAX];
      int bad = sysctl_path_ok(p, resolved);
      if (bad) {
        err = bad;
        snprintf(failed, sizeof failed, "%s (%s)", p, bad == EPERM ? "not a file under " SYSCTL_NET : "cannot resolve it");
      } else {
        int fd = open(resolved, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0 || write(fd, v, strlen(v)) < 0) {
          err = errno;
          snprintf(failed, sizeof failed, "%s=%s", p, v);
        }
        if (fd >= 0) close(fd);
      }
    }
    free(p);
    free(v);
  }
  leave_netns(saved);
  if (err) {
    char where[1200];
    snprintf(where, sizeof where, "%s in %s", failed, ns ? ns : "host namespace");
    free(ns);
    return throw_errno(env, "cannot set sysctl", where, err);
  }
  free(ns);
  return NULL;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"netnsCreate", NULL, NetnsCreate, NULL, NULL, NULL, napi_default, NULL},
      {"netnsDelete", NULL, NetnsDelete, NULL, NULL, NULL, napi_default, NULL},
      {"netlinkOpen", NULL, NetlinkOpen, NULL, NULL, NULL, napi_default, NULL},
      {"netlinkTransact", NULL, NetlinkTransact, NULL, NULL, NULL, napi_default, NULL},
      {"netlinkClose", NULL, NetlinkClose, NULL, NULL, NULL, napi_default, NULL},
      {"sysctlWrite", NULL, SysctlWrite, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
