/*
 * vslab-init: /init of a vslab VM guest (PID 1).
 *
 * Mounts the pseudo filesystems, loads the control channel's drivers (the uncompressed modules listed in
 * /etc/vslab/boot-modules, dependencies first), mounts the 9p shares named on the kernel command line
 * (vslab.9p=<tag>:<mountpoint>:<ro|rw>) after loading the 9p client's modules the same way, brings lo up,
 * starts the clock holder when the guest runs on a warp clock (vslab.clock=warp), then starts the control agent as its child and reaps orphans. If the agent ever
 * exits, so does init: the kernel panics, qemu exits, and the host reports it with the console. Anything that
 * fails here is printed on the console, which the host keeps.
 *
 * It was a dash script. Under TCG every program started costs milliseconds (dash itself, then a busybox per
 * mount, link and insmod, and the dynamic `ip`); system calls do the same without them (docs/vm.md).
 * Built statically by the host's cc (src/backend/vm/agent-build.ts).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define AGENT "/usr/sbin/vslab-agent"
/* kmod's modprobe, kept off the kernel's helper path while the initcalls run (src/backend/vm/initramfs.ts) */
#define BOOT_MODPROBE "/usr/lib/vslab/modprobe"
#define PATH_ENV "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static void say(const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  dprintf(2, "vslab init: %s\n", msg);
}

static void mount_or_say(const char *src, const char *dir, const char *type, unsigned long flags, const char *data) {
  if (mount(src, dir, type, flags, data) != 0 && errno != EBUSY) say("cannot mount %s on %s: %s", type, dir, strerror(errno));
}

/* mkdir -p */
static void mkdirs(const char *path) {
  char p[512];
  snprintf(p, sizeof p, "%s", path);
  for (char *s = p + 1; *s; s++) {
    if (*s != '/') continue;
    *s = 0;
    mkdir(p, 0755);
    *s = '/';
  }
  if (mkdir(p, 0755) != 0 && errno != EEXIST) say("cannot create %s: %s", path, strerror(errno));
}

/* Starts a program with stdin from /dev/null (stdout and stderr stay on the console); its pid, or -1. */
static pid_t start(char *const argv[]) {
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open("/dev/null", O_RDONLY);
    if (fd >= 0) dup2(fd, 0);
    execv(argv[0], argv);
    say("cannot run %s: %s", argv[0], strerror(errno));
    _exit(127);
  }
  if (pid < 0) say("cannot start %s: %s", argv[0], strerror(errno));
  return pid;
}

/* Loads the modules a list names (plain .ko paths, dependencies first: src/backend/vm/initramfs.ts). */
static void load_modules(const char *list) {
  FILE *f = fopen(list, "r");
  if (!f) {
    say("cannot read %s: %s", list, strerror(errno));
    return;
  }
  char line[512];
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = 0;
    if (!line[0]) continue;
    int fd = open(line, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || (syscall(SYS_finit_module, fd, "", 0) != 0 && errno != EEXIST)) say("cannot load %s: %s", line, strerror(errno));
    if (fd >= 0) close(fd);
  }
  fclose(f);
}

/* vslab.9p=<tag>:<mountpoint>:<ro|rw> */
static void mount_share(const char *spec) {
  char s[512];
  snprintf(s, sizeof s, "%s", spec);
  char *tag = s, *dir = strchr(s, ':');
  if (!dir) return;
  *dir++ = 0;
  char *mode = strchr(dir, ':');
  if (mode) *mode++ = 0;
  if (!*tag || !*dir) return;
  mkdirs(dir);
  unsigned long flags = mode && !strcmp(mode, "rw") ? 0 : MS_RDONLY;
  if (mount(tag, dir, "9p", flags, "trans=virtio,version=9p2000.L,msize=262144,cache=loose") != 0)
    say("cannot mount 9p share %s on %s: %s", tag, dir, strerror(errno));
}

static void lo_up(void) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq ifr = {0};
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
  if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) != 0) {
    say("cannot read the flags of lo: %s", strerror(errno));
  } else {
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) say("cannot bring lo up: %s", strerror(errno));
  }
  if (s >= 0) close(s);
}

static void write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC | O_CREAT | O_TRUNC, 0644);
  if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) say("cannot write %s: %s", path, strerror(errno));
  if (fd >= 0) close(fd);
}

/* The next argument of the kernel command line after *at (the line is cut up as it goes), or NULL. */
static char *next_arg(char **at) {
  char *s = *at;
  while (*s == ' ' || *s == '\n') s++;
  if (!*s) return NULL;
  char *e = s;
  while (*e && *e != ' ' && *e != '\n') e++;
  *at = *e ? e + 1 : e;
  *e = 0;
  return s;
}

int main(void) {
  putenv(PATH_ENV);
  /* Requests for modules during the kernel's initcalls found no /sbin/modprobe and failed at once (none of
     them names a module this image has); from now on the kernel's helper is kmod's modprobe. */
  if (symlink(BOOT_MODPROBE, "/usr/sbin/modprobe") != 0 && errno != EEXIST) say("cannot link modprobe: %s", strerror(errno));
  mount_or_say("proc", "/proc", "proc", 0, NULL);
  mount_or_say("sysfs", "/sys", "sysfs", 0, NULL);
  mount_or_say("devtmpfs", "/dev", "devtmpfs", 0, NULL);
  const char *dirs[] = {"/dev/pts", "/dev/shm", "/run/netns", "/tmp", "/var/tmp", "/vslab"};
  for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) mkdirs(dirs[i]);
  mount_or_say("devpts", "/dev/pts", "devpts", 0, NULL);
  mount_or_say("tmpfs", "/dev/shm", "tmpfs", 0, "mode=1777");
  if (symlink("/proc/self/fd", "/dev/fd") != 0 && errno != EEXIST) say("cannot link /dev/fd: %s", strerror(errno));
  load_modules("/etc/vslab/boot-modules");

  char cmdline[4096] = "";
  int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
  ssize_t n = fd >= 0 ? read(fd, cmdline, sizeof cmdline - 1) : -1;
  if (fd >= 0) close(fd);
  cmdline[n > 0 ? n : 0] = 0;
  const char *shares[32];
  int nshares = 0, warp = 0;
  for (char *at = cmdline, *arg; (arg = next_arg(&at));) {
    if (!strncmp(arg, "vslab.9p=", 9)) {
      if (nshares < (int)(sizeof shares / sizeof *shares)) shares[nshares++] = arg + 9;
      else say("more than %d shares: %s is not mounted", nshares, arg + 9);
    }
    if (!strcmp(arg, "vslab.clock=warp")) warp = 1;
  }
  if (nshares) load_modules("/etc/vslab/share-modules");
  for (int i = 0; i < nshares; i++) mount_share(shares[i]);

  lo_up();
  write_file("/proc/sys/kernel/sysrq", "1");
  /* A guest whose clock may jump through waits (qemu -icount sleep=off) is kept busy by a holder at the lowest
     priority, so its clock only jumps when the host asks for a wait (VmGuest.advanceClock). */
  if (warp) {
    pid_t holder = start((char *[]){AGENT, "--hold-clock", NULL});
    if (holder > 0) {
      char pid[32];
      snprintf(pid, sizeof pid, "%d\n", (int)holder);
      write_file("/run/vslab-clock-holder.pid", pid);
    }
  }
  /* The agent runs as a child (so it can be stopped or killed like any process); it is a child subreaper
     itself, and init reaps whatever else is orphaned. */
  pid_t agent = start((char *[]){AGENT, NULL});
  if (agent < 0) return 1;
  for (;;) {
    int st;
    pid_t p = waitpid(-1, &st, 0);
    if (p < 0 && errno != EINTR) {
      say("waitpid: %s", strerror(errno));
      return 1;
    }
    if (p == agent) {
      if (WIFSIGNALED(st)) say("the guest agent was killed by signal %d", WTERMSIG(st));
      else say("the guest agent exited with status %d", WEXITSTATUS(st));
      return 1;
    }
  }
}
