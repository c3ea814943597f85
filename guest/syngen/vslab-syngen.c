/*
 * vslab-syngen: the first packet of many connections, as fast as the guest can send them.
 *
 * A scheduler makes its choice on a connection's first packet (a TCP SYN, the first UDP datagram).
 * This program sends exactly that packet for every flow it is given, from the flow's own source
 * address and port, through a raw socket in the namespace it runs in -- no handshake, no socket per
 * connection, no userland per packet beyond one sendto(). The director's connection table then says
 * which real server every flow was scheduled to.
 *
 * stdin, one flow per line:   <tcp|udp> <src> <sport> <dst> <dport>     (IPv4 or IPv6, one family per line)
 * options:  --pause-every N --pause-us U    sleep U microseconds after every N packets (default: none)
 * stdout, one line at the end: {"sent":N,"elapsedUs":T}
 * Bad input: a message naming the line on stderr, exit 2. A send error: message, exit 1.
 *
 * TCP SYNs carry a random sequence number and an MSS option; UDP datagrams one byte of payload.
 * Checksums are computed here (the kernel fills only the IPv4 header's).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TCP_LEN 24 /* 20 + MSS option */
#define UDP_LEN 9  /* 8 + one byte */

static uint64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint32_t sum16(const uint8_t *p, size_t n, uint32_t s) {
  for (size_t i = 0; i + 1 < n; i += 2) s += (uint32_t)p[i] << 8 | p[i + 1];
  if (n & 1) s += (uint32_t)p[n - 1] << 8;
  return s;
}

static uint16_t fold(uint32_t s) {
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return (uint16_t)~s;
}

/* Writes the TCP SYN or UDP datagram at l4; returns its length. */
static size_t transport(uint8_t *l4, int tcp, uint16_t sport, uint16_t dport, uint32_t seq) {
  l4[0] = sport >> 8; l4[1] = sport & 255; l4[2] = dport >> 8; l4[3] = dport & 255;
  if (tcp) {
    memset(l4 + 4, 0, TCP_LEN - 4);
    l4[4] = seq >> 24; l4[5] = seq >> 16; l4[6] = seq >> 8; l4[7] = seq;
    l4[12] = (TCP_LEN / 4) << 4;
    l4[13] = 0x02;               /* SYN */
    l4[14] = 0xfa; l4[15] = 0xf0; /* window 64240 */
    l4[20] = 2; l4[21] = 4; l4[22] = 0x05; l4[23] = 0xb4; /* MSS 1460 */
    return TCP_LEN;
  }
  l4[4] = 0; l4[5] = UDP_LEN; l4[6] = 0; l4[7] = 0; l4[8] = 'x';
  return UDP_LEN;
}

static void set_l4_sum(uint8_t *l4, size_t len, int tcp, uint32_t pseudo) {
  uint8_t *c = l4 + (tcp ? 16 : 6);
  c[0] = c[1] = 0;
  uint16_t s = fold(sum16(l4, len, pseudo));
  if (!tcp && s == 0) s = 0xffff;
  c[0] = s >> 8; c[1] = s & 255;
}

/* The whole packet (IPv4 or IPv6 header, then the transport header) at pkt; returns its length. */
static size_t build(uint8_t *pkt, int v6, const uint8_t *sa, const uint8_t *da, int tcp, uint16_t sport, uint16_t dport, uint32_t seq) {
  size_t ip = v6 ? 40 : 20, alen = v6 ? 16 : 4;
  uint8_t proto = tcp ? IPPROTO_TCP : IPPROTO_UDP;
  uint8_t *l4 = pkt + ip;
  size_t n = transport(l4, tcp, sport, dport, seq);
  memset(pkt, 0, ip);
  if (v6) {
    pkt[0] = 0x60; pkt[4] = n >> 8; pkt[5] = n & 255; pkt[6] = proto; pkt[7] = 64;
  } else {
    pkt[0] = 0x45; pkt[6] = 0x40 /* DF */; pkt[8] = 64; pkt[9] = proto; /* length, id, checksum: the kernel's */
  }
  uint8_t *addrs = pkt + (v6 ? 8 : 12);
  memcpy(addrs, sa, alen);
  memcpy(addrs + alen, da, alen);
  set_l4_sum(l4, n, tcp, sum16(addrs, 2 * alen, 0) + proto + (uint32_t)n);
  return ip + n;
}

static void die_line(long line, const char *what, const char *text) {
  fprintf(stderr, "vslab-syngen: stdin line %ld: %s: %s\n", line, what, text);
  exit(2);
}

static long parse_num(const char *s, long min, long max, const char *opt) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || *s == '\0' || *end != '\0' || v < min || v > max) {
    fprintf(stderr, "vslab-syngen: %s wants a number from %ld to %ld, got \"%s\"\n", opt, min, max, s);
    exit(2);
  }
  return v;
}

int main(int argc, char **argv) {
  long pause_every = 0, pause_us = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--pause-every") && i + 1 < argc) pause_every = parse_num(argv[++i], 1, 1000000000, "--pause-every");
    else if (!strcmp(argv[i], "--pause-us") && i + 1 < argc) pause_us = parse_num(argv[++i], 0, 10000000, "--pause-us");
    else {
      fprintf(stderr, "vslab-syngen: unknown argument \"%s\" (usage: vslab-syngen [--pause-every N --pause-us U] < flows)\n", argv[i]);
      return 2;
    }
  }
  int s4 = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);  /* IPPROTO_RAW implies IP_HDRINCL */
  int s6 = socket(AF_INET6, SOCK_RAW, IPPROTO_RAW); /* and IPV6_HDRINCL */
  if (s4 < 0 || s6 < 0) {
    fprintf(stderr, "vslab-syngen: raw socket: %s\n", strerror(errno));
    return 1;
  }
  srandom((unsigned)now_us());
  char buf[512], proto[8], src[64], dst[64];
  unsigned sport, dport;
  uint8_t pkt[80];
  long line = 0, sent = 0;
  uint64_t t0 = 0;
  while (fgets(buf, sizeof buf, stdin)) {
    line++;
    if (buf[0] == '\n' || buf[0] == '\0') continue;
    if (!strchr(buf, '\n') && !feof(stdin)) die_line(line, "line too long", "(over 511 characters)");
    char extra[2];
    if (sscanf(buf, "%7s %63s %u %63s %u %1s", proto, src, &sport, dst, &dport, extra) != 5) die_line(line, "want <tcp|udp> <src> <sport> <dst> <dport>", buf);
    int tcp = !strcmp(proto, "tcp");
    if (!tcp && strcmp(proto, "udp")) die_line(line, "protocol is not tcp or udp", proto);
    if (sport > 65535 || dport > 65535 || sport == 0 || dport == 0) die_line(line, "port out of range 1-65535", buf);
    uint32_t seq = (uint32_t)random() << 1 ^ (uint32_t)random();
    uint8_t sa[16], da[16];
    int v6 = inet_pton(AF_INET, src, sa) != 1;
    if (v6 && inet_pton(AF_INET6, src, sa) != 1) die_line(line, "source is not an IPv4 or IPv6 address", src);
    if (inet_pton(v6 ? AF_INET6 : AF_INET, dst, da) != 1) die_line(line, v6 ? "destination is not an IPv6 address (the source is)" : "destination is not an IPv4 address (the source is)", dst);
    size_t len = build(pkt, v6, sa, da, tcp, (uint16_t)sport, (uint16_t)dport, seq);
    struct sockaddr_in to4 = { .sin_family = AF_INET };
    struct sockaddr_in6 to6 = { .sin6_family = AF_INET6 };
    memcpy(&to4.sin_addr, da, 4);
    memcpy(&to6.sin6_addr, da, 16);
    if (!t0) t0 = now_us();
    ssize_t r = v6 ? sendto(s6, pkt, len, 0, (struct sockaddr *)&to6, sizeof to6) : sendto(s4, pkt, len, 0, (struct sockaddr *)&to4, sizeof to4);
    if (r < 0) {
      fprintf(stderr, "vslab-syngen: stdin line %ld: sendto %s: %s\n", line, dst, strerror(errno));
      return 1;
    }
    sent++;
    if (pause_every && sent % pause_every == 0 && pause_us) usleep((useconds_t)pause_us);
  }
  printf("{\"sent\":%ld,\"elapsedUs\":%llu}\n", sent, (unsigned long long)(t0 ? now_us() - t0 : 0));
  return 0;
}
