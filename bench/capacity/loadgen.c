/*
 * loadgen — NTP load generator for the capacity benchmark (bench/capacity, contract C4 of issue 6).
 *
 *   loadgen --server ADDR:PORT --rate R --duration S [--procs P=2] [--sockets K=16]
 *           [--src-base 127.1.0.0] [--xleave-flows F=4] [--xleave-rate X=50] [--packets FILE]
 *           [--batch B=32] [--warmup-ms 300] [--drain-ms 300]
 *
 * P processes (fork), each with K connected UDP sockets bound to src-base + p*256 + k, send R/P
 * requests per second in 1-ms ticks: at each tick a process sends what is due,
 * floor(R/P * elapsed) - sent, spread over its sockets in sendmmsg batches of B. Answers are read
 * with recvmmsg (epoll, level-triggered) and kernel RX timestamps (SO_TIMESTAMPNS); SO_RXQ_OVFL
 * reports datagrams our own sockets dropped ("clientDrops": loss that is not the server's).
 *
 * Time line (CLOCK_MONOTONIC): a warm-up of --warmup-ms (sent, never counted: fills the server's
 * caches and client table), then S seconds whose requests are counted, then --drain-ms in which
 * answers are still read but nothing is sent. Answers to warm-up requests and anything arriving
 * after the drain are not counted. Lost = sent - answered - kod.
 *
 * Plain requests: NTPv4 mode 3, 48 bytes, transmit T1 = CLOCK_REALTIME read right before the
 * sendmmsg (datagram i of a batch gets T1 + i NTP units, so T1 is unique and strictly increasing
 * per socket). Each socket keeps the T1s it sent in a ring (RING entries); an answer is valid
 * when it is mode 4 and its origin is one of them (binary search; each T1 is answered once).
 * rtt = kernel RX stamp - T1. Stratum 0 = KoD, counted by refid (RATE, NTSN, other).
 *
 * NTS (--packets FILE): FILE holds requests as [u16 big-endian length][bytes]...; each must be
 * mode 3 with a Unique Identifier extension field (0x0104). Each socket sends them round-robin
 * (its own cursor), unmodified. An answer is matched through its Unique Identifier field to the
 * packet (and its origin must equal that packet's transmit field); rtt is measured from the last
 * time this socket sent that packet, kept per (socket, packet). The file should therefore hold
 * enough packets that one socket does not resend a packet before its answer arrives
 * (K * packets / (R/P) seconds between resends). Mode 4 answers longer than 48 bytes count as
 * answered, stratum 0 as KoD (NTSN for an NTS NAK; a KoD without NTS fields is counted unmatched),
 * a 48-byte non-KoD answer as bad ("unauthenticated").
 *
 * Served-transmit-timestamp accuracy (process 0 only): F extra flows, each on its own source
 * address src-base + 255*256 + f, send X requests per second each, in pairs, as chrony's xleave
 * client does:
 *   A: origin = an odd value that matches nothing the server saved, receive = a non-zero local
 *      time != transmit (so the server treats us as an interleaved client and saves T2a, T3a),
 *      transmit = T1a  ->  basic answer: receive T2a, transmit T3b (the served stamp).
 *   B: origin = T2a, receive = our kernel RX time of answer A, transmit = T1b  ->  interleaved
 *      answer (its origin = our receive field) whose transmit is the server's true (kernel) TX
 *      time of answer A, T3true.  error = T3b - T3true.
 * A basic answer to B (server did not interleave) is counted in xleave.basic and serves as a new A.
 *
 * Output: ONE JSON line on stdout (see print_json); errors: message on stderr, exit 2.
 * "achievedRate" = counted requests sent per second of the measured window (whether the generator
 * kept up with --rate); "answeredRate" = answered per second. CPU times cover all processes.
 * Percentiles come from a histogram merged across processes: 1-us bins up to 100 ms, then 100 log
 * bins per decade up to 1000 s; a percentile is reported as its bin's middle.
 *
 * Build: bench/capacity/build-loadgen.sh (cc -O2; Linux, libc and libm only).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_S 1000000000LL
#define NS_PER_MS 1000000LL
#define NTP_LEN 48
#define NTP_UNIX_OFFSET 2208988800ULL
#define RING (1u << 15)      /* T1s remembered per socket (plain mode) */
#define RX_SLOT 2048         /* bytes per receive slot (NTS answers carry cookies) */
#define MAX_BATCH 1024
#define MAX_PROCS 254        /* p*256 + k must stay below the xleave block at 255*256 */
#define MAX_SOCKETS 256
#define MAX_FLOWS 256
#define HIST_LIN 100000      /* 1-us bins: [0, 100 ms) */
#define HIST_LOG_PER_DECADE 100
#define HIST_LOG 400         /* 100 ms .. 1000 s */
#define HIST_BINS (HIST_LIN + HIST_LOG)
#define XL_CAP (1u << 18)    /* xleave errors kept for percentiles */
#define EF_UNIQUE_ID 0x0104
#define UID_MIN 32
#define RX_ROUNDS 8          /* recvmmsg rounds per readiness event before looking at the clock */

enum { OUT_FREE = 0, OUT_COUNTED = 1, OUT_WARMUP = 2 };
enum { FLOW_A = 0, FLOW_B = 1 };

/* ---------------------------------------------------------------------------------------------
 * Configuration */

typedef union {
  struct sockaddr sa;
  struct sockaddr_in in4;
  struct sockaddr_in6 in6;
  struct sockaddr_storage ss;
} addr_t;

static struct {
  addr_t server;
  socklen_t server_len;
  int family;
  double rate;
  double duration_s;
  int procs, sockets, flows, batch;
  double xleave_rate;
  addr_t src_base;
  const char *packets_file;
  int64_t warmup_ns, drain_ns;
} cfg;

/* NTS packet file: packets[i] = file bytes at off[i], len[i]; uid_* = where its UID body is. */
static struct {
  uint8_t *data;
  uint32_t n;
  uint32_t *off;
  uint16_t *len;
  uint16_t *uid_off, *uid_len;
  int32_t *table; /* open addressing: UID -> packet index, -1 empty */
  uint32_t mask;
} pk;

/* ---------------------------------------------------------------------------------------------
 * Per-process results, in memory shared with the parent (merged after the run). */

typedef struct {
  uint64_t sent, answered, kod, kod_rate, kod_ntsn, kod_other;
  uint64_t bad_short, bad_mode, bad_origin, bad_dup, bad_unauth;
  uint64_t send_errors, client_drops;
  uint64_t xl_sent, xl_pairs, xl_basic, xl_lost, xl_kod;
  double xl_err_sum, xl_err_absmax;
  uint32_t xl_kept;
  int64_t measured_ns;
  int failed;
  char errmsg[256];
  uint64_t hist[HIST_BINS];
  float xl_err[XL_CAP]; /* signed errors in us */
} stats_t;

static stats_t *shared; /* cfg.procs entries */

/* ---------------------------------------------------------------------------------------------
 * Small helpers */

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("loadgen: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(2);
}

static int64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static uint64_t ts_to_ntp(const struct timespec *ts) {
  uint64_t sec = ((uint64_t)ts->tv_sec + NTP_UNIX_OFFSET) & 0xffffffffu;
  uint64_t frac = ((uint64_t)ts->tv_nsec << 32) / (uint64_t)NS_PER_S;
  return sec << 32 | frac;
}

static uint64_t realtime_ntp(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts_to_ntp(&ts);
}

/* a - b in ns for two NTP timestamps less than 68 years apart (era-safe). */
static double ntp_diff_ns(uint64_t a, uint64_t b) { return (double)(int64_t)(a - b) * (1e9 / 4294967296.0); }

static uint64_t rd64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return be64toh(v);
}

static void wr64(uint8_t *p, uint64_t v) {
  v = htobe64(v);
  memcpy(p, &v, 8);
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static void hist_add(uint64_t *hist, double ns) {
  double us = ns / 1000.0;
  size_t bin;
  if (!(us > 0)) bin = 0; /* clock step (or NaN): lowest bin */
  else if (us < HIST_LIN) bin = (size_t)us;
  else {
    double j = floor(HIST_LOG_PER_DECADE * log10(us / HIST_LIN));
    bin = HIST_LIN + (size_t)(j < HIST_LOG - 1 ? j : HIST_LOG - 1);
  }
  hist[bin]++;
}

static double hist_bin_mid_us(size_t bin) {
  if (bin < HIST_LIN) return (double)bin + 0.5;
  return HIST_LIN * pow(10.0, ((double)(bin - HIST_LIN) + 0.5) / HIST_LOG_PER_DECADE);
}

/* The q-quantile (0 < q <= 1) of the histogram in us, NAN when empty. */
static double hist_quantile(const uint64_t *hist, uint64_t total, double q) {
  if (total == 0) return NAN;
  uint64_t rank = (uint64_t)ceil(q * (double)total), acc = 0;
  if (rank < 1) rank = 1;
  for (size_t i = 0; i < HIST_BINS; i++) {
    acc += hist[i];
    if (acc >= rank) return hist_bin_mid_us(i);
  }
  return hist_bin_mid_us(HIST_BINS - 1);
}

/* ---------------------------------------------------------------------------------------------
 * Argument parsing */

static double parse_num(const char *opt, const char *s, double lo, double hi) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi)
    die("--%s: expected a number in [%g, %g], got '%s'", opt, lo, hi, s);
  return v;
}

static int parse_int(const char *opt, const char *s, int lo, int hi) {
  double v = parse_num(opt, s, lo, hi);
  if (v != floor(v)) die("--%s: expected an integer, got '%s'", opt, s);
  return (int)v;
}

static void parse_server(const char *s) {
  char host[INET6_ADDRSTRLEN + 2];
  const char *colon;
  const char *hs = s;
  size_t hl;
  if (s[0] == '[') {
    const char *close = strchr(s, ']');
    if (!close || close[1] != ':') die("--server: expected [IPV6]:PORT, got '%s'", s);
    hs = s + 1;
    hl = (size_t)(close - hs);
    colon = close + 1;
  } else {
    colon = strrchr(s, ':');
    if (!colon) die("--server: expected ADDR:PORT, got '%s'", s);
    hl = (size_t)(colon - s);
  }
  if (hl == 0 || hl >= sizeof host) die("--server: bad address in '%s'", s);
  memcpy(host, hs, hl);
  host[hl] = 0;
  int port = parse_int("server port", colon + 1, 1, 65535);
  memset(&cfg.server, 0, sizeof cfg.server);
  if (inet_pton(AF_INET, host, &cfg.server.in4.sin_addr) == 1) {
    cfg.server.in4.sin_family = AF_INET;
    cfg.server.in4.sin_port = htons((uint16_t)port);
    cfg.server_len = sizeof(struct sockaddr_in);
  } else if (inet_pton(AF_INET6, host, &cfg.server.in6.sin6_addr) == 1) {
    cfg.server.in6.sin6_family = AF_INET6;
    cfg.server.in6.sin6_port = htons((uint16_t)port);
    cfg.server_len = sizeof(struct sockaddr_in6);
  } else {
    die("--server: '%s' is not a numeric IPv4 or IPv6 address", host);
  }
  cfg.family = cfg.server.sa.sa_family;
}

static void usage_exit(void) __attribute__((noreturn));
static void usage_exit(void) {
  die("usage: loadgen --server ADDR:PORT --rate R --duration S [--procs P=2] [--sockets K=16] "
      "[--src-base 127.1.0.0] [--xleave-flows F=4] [--xleave-rate X=50] [--packets FILE] [--batch B=32] "
      "[--warmup-ms 300] [--drain-ms 300]");
}

static void parse_args(int argc, char **argv) {
  static const struct option opts[] = {
      {"server", required_argument, 0, 's'},      {"rate", required_argument, 0, 'r'},
      {"duration", required_argument, 0, 'd'},    {"procs", required_argument, 0, 'p'},
      {"sockets", required_argument, 0, 'k'},     {"src-base", required_argument, 0, 'b'},
      {"xleave-flows", required_argument, 0, 'f'}, {"xleave-rate", required_argument, 0, 'x'},
      {"packets", required_argument, 0, 'P'},     {"batch", required_argument, 0, 'B'},
      {"warmup-ms", required_argument, 0, 'w'},   {"drain-ms", required_argument, 0, 'D'},
      {"help", no_argument, 0, 'h'},              {0, 0, 0, 0}};
  const char *src_base = NULL;
  bool have_server = false, have_rate = false, have_duration = false;
  cfg.procs = 2;
  cfg.sockets = 16;
  cfg.flows = 4;
  cfg.xleave_rate = 50;
  cfg.batch = 32;
  cfg.warmup_ns = 300 * NS_PER_MS;
  cfg.drain_ns = 300 * NS_PER_MS;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case 's': parse_server(optarg); have_server = true; break;
    case 'r': cfg.rate = parse_num("rate", optarg, 1e-3, 1e8); have_rate = true; break;
    case 'd': cfg.duration_s = parse_num("duration", optarg, 1e-3, 86400); have_duration = true; break;
    case 'p': cfg.procs = parse_int("procs", optarg, 1, MAX_PROCS); break;
    case 'k': cfg.sockets = parse_int("sockets", optarg, 1, MAX_SOCKETS); break;
    case 'b': src_base = optarg; break;
    case 'f': cfg.flows = parse_int("xleave-flows", optarg, 0, MAX_FLOWS); break;
    case 'x': cfg.xleave_rate = parse_num("xleave-rate", optarg, 0.01, 10000); break;
    case 'P': cfg.packets_file = optarg; break;
    case 'B': cfg.batch = parse_int("batch", optarg, 1, MAX_BATCH); break;
    case 'w': cfg.warmup_ns = (int64_t)(parse_num("warmup-ms", optarg, 0, 3600e3) * NS_PER_MS); break;
    case 'D': cfg.drain_ns = (int64_t)(parse_num("drain-ms", optarg, 0, 3600e3) * NS_PER_MS); break;
    case 'h': usage_exit();
    default:
      if (optopt) die("option --%s needs a value (or is unknown)", argv[optind - 1] + 2);
      die("unknown option '%s'", argv[optind - 1]);
    }
  }
  if (optind < argc) die("unexpected argument '%s'", argv[optind]);
  if (!have_server || !have_rate || !have_duration) die("--server, --rate and --duration are required");
  if (!src_base) src_base = cfg.family == AF_INET ? "127.1.0.0" : NULL;
  if (!src_base) die("--src-base is required with an IPv6 server");
  memset(&cfg.src_base, 0, sizeof cfg.src_base);
  if (cfg.family == AF_INET) {
    if (inet_pton(AF_INET, src_base, &cfg.src_base.in4.sin_addr) != 1)
      die("--src-base: '%s' is not an IPv4 address (the server is IPv4)", src_base);
    cfg.src_base.in4.sin_family = AF_INET;
    uint32_t last = ntohl(cfg.src_base.in4.sin_addr.s_addr) + 255u * 256u + (uint32_t)cfg.flows;
    if (last < ntohl(cfg.src_base.in4.sin_addr.s_addr)) die("--src-base: address range overflows");
  } else {
    if (inet_pton(AF_INET6, src_base, &cfg.src_base.in6.sin6_addr) != 1)
      die("--src-base: '%s' is not an IPv6 address (the server is IPv6)", src_base);
    cfg.src_base.in6.sin6_family = AF_INET6;
  }
}

/* src-base + offset (added to the last 32 bits), port 0. */
static addr_t source_address(uint32_t offset) {
  addr_t a = cfg.src_base;
  if (cfg.family == AF_INET) {
    a.in4.sin_addr.s_addr = htonl(ntohl(a.in4.sin_addr.s_addr) + offset);
  } else {
    uint32_t w;
    memcpy(&w, &a.in6.sin6_addr.s6_addr[12], 4);
    w = htonl(ntohl(w) + offset);
    memcpy(&a.in6.sin6_addr.s6_addr[12], &w, 4);
  }
  return a;
}

/* ---------------------------------------------------------------------------------------------
 * NTS packet file */

static uint64_t uid_key(const uint8_t *uid) { return rd64(uid) * 0x9E3779B97F4A7C15ull; }

/* Offset of the Unique Identifier body in an NTP packet with extension fields, 0 if none. */
static size_t find_uid(const uint8_t *p, size_t len, uint16_t *uid_len) {
  size_t o = NTP_LEN;
  while (o + 4 <= len) {
    uint16_t type = rd16(p + o), flen = rd16(p + o + 2);
    if (flen < 4 || o + flen > len) return 0;
    if (type == EF_UNIQUE_ID && flen >= 4 + UID_MIN) {
      *uid_len = (uint16_t)(flen - 4);
      return o + 4;
    }
    o += flen;
  }
  return 0;
}

static void load_packets(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) die("--packets %s: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fileno(f), &st) || st.st_size <= 0 || st.st_size > (1LL << 31))
    die("--packets %s: empty or too large", path);
  size_t size = (size_t)st.st_size;
  pk.data = malloc(size);
  if (!pk.data || fread(pk.data, 1, size, f) != size) die("--packets %s: read failed", path);
  fclose(f);
  uint32_t n = 0;
  for (size_t o = 0; o < size; n++) {
    if (o + 2 > size) die("--packets %s: truncated length at byte %zu", path, o);
    o += 2 + rd16(pk.data + o);
    if (o > size) die("--packets %s: packet %u runs past the end of the file", path, n);
  }
  pk.n = n;
  pk.off = calloc(n, sizeof *pk.off);
  pk.len = calloc(n, sizeof *pk.len);
  pk.uid_off = calloc(n, sizeof *pk.uid_off);
  pk.uid_len = calloc(n, sizeof *pk.uid_len);
  uint32_t tsize = 16;
  while (tsize < 2 * n) tsize <<= 1;
  pk.mask = tsize - 1;
  pk.table = malloc(tsize * sizeof *pk.table);
  if (!pk.off || !pk.len || !pk.uid_off || !pk.uid_len || !pk.table) die("out of memory");
  memset(pk.table, 0xff, tsize * sizeof *pk.table);
  size_t o = 0;
  for (uint32_t i = 0; i < n; i++) {
    uint16_t len = rd16(pk.data + o);
    const uint8_t *p = pk.data + o + 2;
    if (len < NTP_LEN || (p[0] & 7) != 3) die("--packets %s: packet %u is not an NTP mode 3 request", path, i);
    if (len > RX_SLOT) die("--packets %s: packet %u is longer than %d bytes", path, i, RX_SLOT);
    uint16_t ulen = 0;
    size_t uo = find_uid(p, len, &ulen);
    if (!uo) die("--packets %s: packet %u has no Unique Identifier extension field", path, i);
    pk.off[i] = (uint32_t)(o + 2);
    pk.len[i] = len;
    pk.uid_off[i] = (uint16_t)uo;
    pk.uid_len[i] = ulen;
    for (uint32_t h = (uint32_t)uid_key(p + uo) & pk.mask;; h = (h + 1) & pk.mask) {
      int32_t e = pk.table[h];
      if (e < 0) {
        pk.table[h] = (int32_t)i;
        break;
      }
      if (pk.uid_len[e] == ulen && !memcmp(pk.data + pk.off[e] + pk.uid_off[e], p + uo, ulen))
        die("--packets %s: packets %d and %u have the same Unique Identifier", path, e, i);
    }
    o += 2 + (size_t)len;
  }
}

/* Packet whose UID equals the body at uid (uid_len bytes), -1 if none. */
static int32_t lookup_uid(const uint8_t *uid, uint16_t uid_len) {
  for (uint32_t h = (uint32_t)uid_key(uid) & pk.mask;; h = (h + 1) & pk.mask) {
    int32_t e = pk.table[h];
    if (e < 0) return -1;
    if (pk.uid_len[e] == uid_len && !memcmp(pk.data + pk.off[e] + pk.uid_off[e], uid, uid_len)) return e;
  }
}

/* ---------------------------------------------------------------------------------------------
 * Sockets */

static int open_socket(uint32_t offset) {
  int fd = socket(cfg.family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket: %s", strerror(errno));
  int one = 1, buf = 4 << 20;
  /* Bursts of answers must not overflow our own queue: that would look like server loss. */
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof buf))
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one))
    die("setsockopt(SO_TIMESTAMPNS): %s", strerror(errno));
  (void)setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);
  if (cfg.family == AF_INET6) (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  addr_t src = source_address(offset);
  socklen_t sl = cfg.family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
  if (bind(fd, &src.sa, sl)) {
    char s[INET6_ADDRSTRLEN] = "?";
    inet_ntop(cfg.family, cfg.family == AF_INET ? (void *)&src.in4.sin_addr : (void *)&src.in6.sin6_addr, s,
              sizeof s);
    die("bind %s: %s (source addresses must be local, e.g. 127.0.0.0/8 on lo)", s, strerror(errno));
  }
  if (connect(fd, &cfg.server.sa, cfg.server_len)) die("connect: %s", strerror(errno));
  return fd;
}

/* ---------------------------------------------------------------------------------------------
 * Worker (one process) */

typedef struct {
  int fd;
  uint64_t head;    /* plain: requests sent (ring positions used) */
  uint64_t last_t1; /* plain: last T1 used */
  uint64_t *t1;     /* plain: RING */
  uint8_t *state;   /* plain: RING, OUT_* */
  uint32_t cursor;  /* NTS: next packet */
  uint64_t *nts_sent_ntp; /* NTS: per packet, last send time */
  uint16_t *nts_pend_c, *nts_pend_w; /* NTS: per packet, outstanding counted / warm-up sends */
  uint32_t ovfl;
} sock_t;

typedef struct {
  int fd;
  int stage;
  bool awaiting;
  int64_t next_send;
  uint64_t t1, recv_field, t2a, t3b, rx_a, last_rx;
} flow_t;

static sock_t *socks;
static flow_t *flows;
static int nflows;
static struct mmsghdr *txmsg, *rxmsg;
static struct iovec *txiov, *rxiov;
static uint8_t *txbuf, *rxbuf, *rxctl;
#define CTL_SIZE (CMSG_SPACE(sizeof(struct timespec)) + CMSG_SPACE(sizeof(uint32_t)) + 64)

static stats_t *me;
static int64_t t_start, t_measure, t_end, t_stop;

static void worker_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void worker_fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(me->errmsg, sizeof me->errmsg, fmt, ap);
  va_end(ap);
  me->failed = 1;
  _exit(3);
}

static void *xcalloc(size_t n, size_t size) {
  void *p = calloc(n, size);
  if (!p) worker_fail("out of memory");
  return p;
}

static void alloc_worker(void) {
  for (int k = 0; k < cfg.sockets; k++) {
    sock_t *s = &socks[k];
    if (cfg.packets_file) {
      s->nts_sent_ntp = xcalloc(pk.n, sizeof *s->nts_sent_ntp);
      s->nts_pend_c = xcalloc(pk.n, sizeof *s->nts_pend_c);
      s->nts_pend_w = xcalloc(pk.n, sizeof *s->nts_pend_w);
    } else {
      s->t1 = xcalloc(RING, sizeof *s->t1);
      s->state = xcalloc(RING, 1);
    }
  }
  int b = cfg.batch;
  txmsg = xcalloc((size_t)b, sizeof *txmsg);
  rxmsg = xcalloc((size_t)b, sizeof *rxmsg);
  txiov = xcalloc((size_t)b, sizeof *txiov);
  rxiov = xcalloc((size_t)b, sizeof *rxiov);
  txbuf = xcalloc((size_t)b, NTP_LEN);
  rxbuf = xcalloc((size_t)b, RX_SLOT);
  rxctl = xcalloc((size_t)b, CTL_SIZE);
  for (int i = 0; i < b; i++) {
    uint8_t *p = txbuf + (size_t)i * NTP_LEN;
    p[0] = 0x23; /* LI 0, VN 4, mode 3 */
    p[2] = 6;    /* poll 64 s */
    p[3] = 0xec; /* precision -20 */
    txiov[i].iov_base = p;
    txiov[i].iov_len = NTP_LEN;
    txmsg[i].msg_hdr.msg_iov = &txiov[i];
    txmsg[i].msg_hdr.msg_iovlen = 1;
    rxiov[i].iov_base = rxbuf + (size_t)i * RX_SLOT;
    rxiov[i].iov_len = RX_SLOT;
    rxmsg[i].msg_hdr.msg_iov = &rxiov[i];
    rxmsg[i].msg_hdr.msg_iovlen = 1;
    rxmsg[i].msg_hdr.msg_control = rxctl + (size_t)i * CTL_SIZE;
  }
}

static bool is_ignorable_error(int e) {
  /* A connected UDP socket reports ICMP errors (server not listening yet, ...) on the next call. */
  return e == ECONNREFUSED || e == EHOSTUNREACH || e == ENETUNREACH || e == EINTR || e == ENOBUFS;
}

/* Sends up to n requests on socket s; returns how many left. */
static int send_batch(sock_t *s, int n, bool counted) {
  int r;
  if (!cfg.packets_file) {
    uint64_t t = realtime_ntp();
    if (t <= s->last_t1) t = s->last_t1 + 1;
    for (int i = 0; i < n; i++) wr64(txbuf + (size_t)i * NTP_LEN + 40, t + (uint64_t)i);
    s->last_t1 = t + (uint64_t)n - 1;
    r = sendmmsg(s->fd, txmsg, (unsigned)n, MSG_DONTWAIT);
    for (int i = 0; i < r; i++) {
      uint32_t j = (uint32_t)(s->head + (uint64_t)i) & (RING - 1);
      s->t1[j] = t + (uint64_t)i;
      s->state[j] = counted ? OUT_COUNTED : OUT_WARMUP;
    }
    if (r > 0) s->head += (uint64_t)r;
  } else {
    uint32_t c = s->cursor;
    for (int i = 0; i < n; i++) {
      txiov[i].iov_base = pk.data + pk.off[c];
      txiov[i].iov_len = pk.len[c];
      if (++c == pk.n) c = 0;
    }
    uint64_t t = realtime_ntp();
    r = sendmmsg(s->fd, txmsg, (unsigned)n, MSG_DONTWAIT);
    c = s->cursor;
    for (int i = 0; i < r; i++) {
      s->nts_sent_ntp[c] = t;
      uint16_t *pend = counted ? &s->nts_pend_c[c] : &s->nts_pend_w[c];
      if (*pend < UINT16_MAX) (*pend)++;
      if (++c == pk.n) c = 0;
    }
    if (r > 0) s->cursor = c;
  }
  if (r < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK && !is_ignorable_error(errno))
      worker_fail("sendmmsg: %s", strerror(errno));
    me->send_errors++;
    return n;
  }
  if (counted) me->sent += (uint64_t)r;
  return n - r;
}

static uint64_t sent_all; /* warm-up and counted, for pacing */
static int rr;            /* next socket */

/* Sends `due` requests in batches, round-robin over the sockets; returns how many were sent. */
static uint64_t send_due(uint64_t due, bool counted) {
  uint64_t done = 0;
  int failures = 0;
  while (done < due && failures < cfg.sockets) {
    int n = due - done > (uint64_t)cfg.batch ? cfg.batch : (int)(due - done);
    int left = send_batch(&socks[rr], n, counted);
    if (++rr == cfg.sockets) rr = 0;
    done += (uint64_t)(n - left);
    failures = left ? failures + 1 : 0;
  }
  sent_all += done;
  return done;
}

static void count_kod(const uint8_t *p) {
  me->kod++;
  if (!memcmp(p + 12, "RATE", 4)) me->kod_rate++;
  else if (!memcmp(p + 12, "NTSN", 4)) me->kod_ntsn++;
  else me->kod_other++;
}

/* Plain mode: ring position whose T1 is `origin` (binary search over the window), -1 if none. */
static int64_t find_t1(const sock_t *s, uint64_t origin) {
  uint64_t lo = s->head > RING ? s->head - RING : 0, hi = s->head;
  while (lo < hi) {
    uint64_t mid = lo + (hi - lo) / 2;
    uint64_t v = s->t1[mid & (RING - 1)];
    if (v == origin) return (int64_t)(mid & (RING - 1));
    if ((int64_t)(v - origin) < 0) lo = mid + 1;
    else hi = mid;
  }
  return -1;
}

static void handle_answer(sock_t *s, const uint8_t *p, size_t len, uint64_t rx_ntp, bool measuring) {
  if (len < NTP_LEN) {
    if (measuring) me->bad_short++;
    return;
  }
  if ((p[0] & 7) != 4) {
    if (measuring) me->bad_mode++;
    return;
  }
  uint64_t origin = rd64(p + 24);
  uint64_t sent_ntp;
  if (!cfg.packets_file) {
    int64_t j = find_t1(s, origin);
    if (j < 0) {
      if (measuring) me->bad_origin++;
      return;
    }
    uint8_t st = s->state[j];
    s->state[j] = OUT_FREE;
    if (st == OUT_WARMUP) return;
    if (st == OUT_FREE) {
      if (measuring) me->bad_dup++;
      return;
    }
    sent_ntp = origin;
  } else {
    uint16_t ulen = 0;
    size_t uo = find_uid(p, len, &ulen);
    if (!uo) {
      /* A KoD without NTS fields (e.g. RATE) cannot be matched to a send, but it is no loss; any
         other answer without them is not an NTS answer. */
      if (measuring && p[1] == 0) count_kod(p);
      else if (measuring) me->bad_unauth++;
      return;
    }
    int32_t i = lookup_uid(p + uo, ulen);
    if (i < 0 || rd64(pk.data + pk.off[i] + 40) != origin) {
      if (measuring) me->bad_origin++;
      return;
    }
    /* The oldest outstanding send of this packet is answered first: warm-up ones before counted. */
    if (s->nts_pend_w[i]) {
      s->nts_pend_w[i]--;
      return;
    }
    if (!s->nts_pend_c[i]) {
      if (measuring) me->bad_dup++;
      return;
    }
    s->nts_pend_c[i]--;
    sent_ntp = s->nts_sent_ntp[i];
  }
  if (p[1] == 0) {
    count_kod(p);
    return;
  }
  me->answered++;
  hist_add(me->hist, ntp_diff_ns(rx_ntp, sent_ntp));
}

/* Receive stamp (kernel, else now) and our socket's drop counter from a message's control data. */
static uint64_t rx_stamp(struct msghdr *h, uint32_t *ovfl) {
  for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
    if (c->cmsg_level != SOL_SOCKET) continue;
    if (c->cmsg_type == SCM_TIMESTAMPNS) {
      struct timespec ts;
      memcpy(&ts, CMSG_DATA(c), sizeof ts);
      for (c = CMSG_NXTHDR(h, c); c; c = CMSG_NXTHDR(h, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) memcpy(ovfl, CMSG_DATA(c), 4);
      return ts_to_ntp(&ts);
    }
    if (c->cmsg_type == SO_RXQ_OVFL) memcpy(ovfl, CMSG_DATA(c), 4);
  }
  return realtime_ntp();
}

static int receive(int fd) {
  for (int i = 0; i < cfg.batch; i++) {
    rxmsg[i].msg_hdr.msg_controllen = CTL_SIZE;
    rxmsg[i].msg_hdr.msg_flags = 0;
  }
  int r = recvmmsg(fd, rxmsg, (unsigned)cfg.batch, MSG_DONTWAIT, NULL);
  if (r < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK && !is_ignorable_error(errno))
      worker_fail("recvmmsg: %s", strerror(errno));
    return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
  }
  return r;
}

/* Reads answers from a load socket; true when it stopped at RX_ROUNDS (more may be queued). */
static bool receive_load(sock_t *s, bool measuring) {
  for (int round = 0; round < RX_ROUNDS; round++) {
    int r = receive(s->fd);
    if (r == 0) return false;
    for (int i = 0; i < r; i++) {
      uint64_t rx = rx_stamp(&rxmsg[i].msg_hdr, &s->ovfl);
      handle_answer(s, rxbuf + (size_t)i * RX_SLOT, rxmsg[i].msg_len, rx, measuring);
    }
    if (r > 0 && r < cfg.batch) return false;
  }
  return true;
}

/* ---- xleave flows */

static void flow_send(flow_t *f, bool measuring) {
  uint8_t p[NTP_LEN] = {0x23, 0, 6, 0xec};
  if (f->awaiting) {
    if (measuring) me->xl_lost++;
    f->stage = FLOW_A;
  }
  uint64_t t1 = realtime_ntp();
  if (t1 <= f->t1) t1 = f->t1 + 1;
  if (f->stage == FLOW_A) {
    /* Odd (as chrony's receive stamps are), never one of the server's saved receive stamps. */
    wr64(p + 24, (t1 - (7ull << 32)) | 1);
    f->recv_field = f->last_rx ? f->last_rx : t1 - (1ull << 32);
  } else {
    wr64(p + 24, f->t2a);
    f->recv_field = f->rx_a;
  }
  wr64(p + 32, f->recv_field);
  wr64(p + 40, t1);
  f->t1 = t1;
  ssize_t r = send(f->fd, p, sizeof p, MSG_DONTWAIT);
  if (r < 0) {
    if (!is_ignorable_error(errno) && errno != EAGAIN) worker_fail("send (xleave): %s", strerror(errno));
    me->send_errors++;
    f->awaiting = false;
    f->stage = FLOW_A;
    return;
  }
  f->awaiting = true;
  if (measuring) me->xl_sent++;
}

static void flow_save_basic(flow_t *f, const uint8_t *p, uint64_t rx) {
  f->t2a = rd64(p + 32);
  f->t3b = rd64(p + 40);
  f->rx_a = rx;
  f->stage = FLOW_B;
}

static void flow_answer(flow_t *f, const uint8_t *p, size_t len, uint64_t rx, bool measuring) {
  if (len < NTP_LEN || (p[0] & 7) != 4 || !f->awaiting) return;
  uint64_t origin = rd64(p + 24);
  bool basic = origin == f->t1, interleaved = origin == f->recv_field;
  if (!basic && !interleaved) return; /* stale or foreign */
  f->awaiting = false;
  f->last_rx = rx;
  if (p[1] == 0) {
    if (measuring) me->xl_kod++;
    f->stage = FLOW_A;
    return;
  }
  if (basic) {
    if (f->stage == FLOW_B && measuring) me->xl_basic++;
    flow_save_basic(f, p, rx); /* a basic answer to B was saved by the server too: it is a new A */
    return;
  }
  if (f->stage == FLOW_B) {
    double err_us = ntp_diff_ns(f->t3b, rd64(p + 40)) / 1000.0;
    if (measuring && fabs(err_us) < 1e6) {
      me->xl_pairs++;
      me->xl_err_sum += err_us;
      if (fabs(err_us) > me->xl_err_absmax) me->xl_err_absmax = fabs(err_us);
      if (me->xl_kept < XL_CAP) me->xl_err[me->xl_kept++] = (float)err_us;
    }
  }
  f->stage = FLOW_A;
}

static void receive_flow(flow_t *f, bool measuring) {
  for (int round = 0; round < RX_ROUNDS; round++) {
    int r = receive(f->fd);
    if (r == 0) return;
    for (int i = 0; i < r; i++) {
      uint32_t ovfl = 0;
      uint64_t rx = rx_stamp(&rxmsg[i].msg_hdr, &ovfl);
      flow_answer(f, rxbuf + (size_t)i * RX_SLOT, rxmsg[i].msg_len, rx, measuring);
    }
    if (r > 0 && r < cfg.batch) return;
  }
}

/* ---- main loop
 * Tick-driven: sleep until the next 1-ms tick (clock_nanosleep, absolute), send what is due, then
 * read every socket epoll reports ready (timeout 0) until none is. Answers wait in the socket
 * queue for up to a tick, which costs nothing in accuracy (rtt uses kernel RX stamps) and saves a
 * wake-up per answer: one wake-up per tick, answers read in recvmmsg batches. */

static void sleep_until(int64_t t) {
  struct timespec ts = {.tv_sec = t / NS_PER_S, .tv_nsec = t % NS_PER_S};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
  }
}

static void run_worker(int p) {
  me = &shared[p];
  alloc_worker();
  double rate_p = cfg.rate / cfg.procs;
  int64_t flow_period = nflows ? (int64_t)(NS_PER_S / cfg.xleave_rate) : 0;
  /* A tick never sends more than 10 ms worth (at least one batch): a process that fell behind
     must keep reading answers; the backlog follows in the next ticks. */
  uint64_t tick_cap = (uint64_t)ceil(rate_p * 0.010);
  if (tick_cap < (uint64_t)cfg.batch) tick_cap = (uint64_t)cfg.batch;
  (void)prctl(PR_SET_TIMERSLACK, 1UL); /* ticks on time (the default slack is 50 us) */

  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) worker_fail("epoll_create1: %s", strerror(errno));
  struct epoll_event ev = {.events = EPOLLIN};
  for (int k = 0; k < cfg.sockets; k++) {
    ev.data.u32 = (uint32_t)k;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, socks[k].fd, &ev)) worker_fail("epoll_ctl: %s", strerror(errno));
  }
  for (int f = 0; f < nflows; f++) {
    ev.data.u32 = (uint32_t)(cfg.sockets + f);
    if (epoll_ctl(ep, EPOLL_CTL_ADD, flows[f].fd, &ev)) worker_fail("epoll_ctl: %s", strerror(errno));
    flows[f].next_send = t_start + flow_period * f / nflows;
  }

  sleep_until(t_start);
  int64_t next_tick = t_start;
  bool warm_done = cfg.warmup_ns == 0, send_done = false;
  struct epoll_event events[MAX_SOCKETS + MAX_FLOWS];
  for (;;) {
    int64_t now = mono_ns();
    if (now >= t_stop) break;
    bool measuring = now >= t_measure;
    if (now >= next_tick) {
      if (!send_done) {
        /* Requests due up to a boundary belong to the phase before it: exact counts per phase. */
        if (!warm_done && now >= t_measure) {
          uint64_t due = (uint64_t)floor(rate_p * (double)(t_measure - t_start) / 1e9);
          if (due > sent_all) send_due(due - sent_all, false);
          warm_done = true;
        }
        int64_t upto = now < t_end ? now : t_end;
        uint64_t due = (uint64_t)floor(rate_p * (double)(upto - t_start) / 1e9);
        if (due > sent_all) {
          uint64_t n = due - sent_all;
          send_due(n < tick_cap ? n : tick_cap, upto >= t_measure);
        }
        if (now >= t_end) send_done = true;
        for (int f = 0; f < nflows; f++) {
          if (now < flows[f].next_send || now >= t_end) continue;
          flow_send(&flows[f], measuring);
          flows[f].next_send += flow_period;
          if (flows[f].next_send <= now) flows[f].next_send = now + flow_period;
        }
      }
      next_tick = now - (now - t_start) % NS_PER_MS + NS_PER_MS;
    }
    bool backlog = false;
    for (;;) {
      int n = epoll_wait(ep, events, (int)(sizeof events / sizeof events[0]), 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        worker_fail("epoll_wait: %s", strerror(errno));
      }
      if (n == 0) break;
      for (int i = 0; i < n; i++) {
        uint32_t tag = events[i].data.u32;
        if (tag < (uint32_t)cfg.sockets) backlog |= receive_load(&socks[tag], measuring);
        else receive_flow(&flows[tag - (uint32_t)cfg.sockets], measuring);
      }
      if (backlog || mono_ns() >= next_tick) break;
    }
    if (!backlog) sleep_until(next_tick < t_stop ? next_tick : t_stop);
  }
  for (int k = 0; k < cfg.sockets; k++) me->client_drops += socks[k].ovfl;
  me->measured_ns = t_end - t_measure;
}

/* ---------------------------------------------------------------------------------------------
 * Parent: merge and report */

static void json_num(const char *name, double v, const char *sep) {
  if (isfinite(v)) printf("\"%s\":%.6g%s", name, v, sep);
  else printf("\"%s\":null%s", name, sep);
}

static int cmp_abs_float(const void *a, const void *b) {
  float x = fabsf(*(const float *)a), y = fabsf(*(const float *)b);
  return (x > y) - (x < y);
}

static void print_json(double cpu_user, double cpu_sys) {
  stats_t *t = calloc(1, sizeof *t);
  if (!t) die("out of memory");
  float *errs = malloc(sizeof(float) * XL_CAP);
  if (!errs) die("out of memory");
  uint32_t nerr = 0;
  for (int p = 0; p < cfg.procs; p++) {
    stats_t *s = &shared[p];
    t->sent += s->sent;
    t->answered += s->answered;
    t->kod += s->kod;
    t->kod_rate += s->kod_rate;
    t->kod_ntsn += s->kod_ntsn;
    t->kod_other += s->kod_other;
    t->bad_short += s->bad_short;
    t->bad_mode += s->bad_mode;
    t->bad_origin += s->bad_origin;
    t->bad_dup += s->bad_dup;
    t->bad_unauth += s->bad_unauth;
    t->send_errors += s->send_errors;
    t->client_drops += s->client_drops;
    t->xl_sent += s->xl_sent;
    t->xl_pairs += s->xl_pairs;
    t->xl_basic += s->xl_basic;
    t->xl_lost += s->xl_lost;
    t->xl_kod += s->xl_kod;
    t->xl_err_sum += s->xl_err_sum;
    if (s->xl_err_absmax > t->xl_err_absmax) t->xl_err_absmax = s->xl_err_absmax;
    for (uint32_t i = 0; i < s->xl_kept && nerr < XL_CAP; i++) errs[nerr++] = s->xl_err[i];
    for (size_t i = 0; i < HIST_BINS; i++) t->hist[i] += s->hist[i];
    if (s->measured_ns > t->measured_ns) t->measured_ns = s->measured_ns;
  }
  double secs = (double)t->measured_ns / 1e9;
  uint64_t bad = t->bad_short + t->bad_mode + t->bad_origin + t->bad_dup + t->bad_unauth;
  uint64_t got = t->answered + t->kod;
  double lost = t->sent > got ? (double)(t->sent - got) : 0;
  qsort(errs, nerr, sizeof *errs, cmp_abs_float);
  double xl_p50 = NAN, xl_p99 = NAN;
  if (nerr) {
    xl_p50 = fabsf(errs[(size_t)ceil(0.50 * nerr) - 1]);
    xl_p99 = fabsf(errs[(size_t)ceil(0.99 * nerr) - 1]);
  }
  printf("{\"rate\":%.10g,\"sent\":%" PRIu64 ",\"received\":%" PRIu64 ",", cfg.rate, t->sent, t->answered);
  json_num("lossRatio", t->sent ? lost / (double)t->sent : NAN, ",");
  json_num("achievedRate", (double)t->sent / secs, ",");
  json_num("answeredRate", (double)t->answered / secs, ",");
  json_num("rttP50Us", hist_quantile(t->hist, t->answered, 0.50), ",");
  json_num("rttP99Us", hist_quantile(t->hist, t->answered, 0.99), ",");
  json_num("rttMaxUs", hist_quantile(t->hist, t->answered, 1.0), ",");
  printf("\"kod\":%" PRIu64 ",\"kodByCode\":{\"RATE\":%" PRIu64 ",\"NTSN\":%" PRIu64 ",\"other\":%" PRIu64 "},",
         t->kod, t->kod_rate, t->kod_ntsn, t->kod_other);
  printf("\"bad\":%" PRIu64 ",\"badDetail\":{\"short\":%" PRIu64 ",\"mode\":%" PRIu64 ",\"origin\":%" PRIu64
         ",\"duplicate\":%" PRIu64 ",\"unauthenticated\":%" PRIu64 "},",
         bad, t->bad_short, t->bad_mode, t->bad_origin, t->bad_dup, t->bad_unauth);
  printf("\"clientDrops\":%" PRIu64 ",\"sendErrors\":%" PRIu64 ",", t->client_drops, t->send_errors);
  printf("\"xleave\":{\"flows\":%d,\"sent\":%" PRIu64 ",\"pairs\":%" PRIu64 ",", cfg.flows, t->xl_sent, t->xl_pairs);
  json_num("errMeanUs", t->xl_pairs ? t->xl_err_sum / (double)t->xl_pairs : NAN, ",");
  json_num("errAbsP50Us", xl_p50, ",");
  json_num("errAbsP99Us", xl_p99, ",");
  json_num("errAbsMaxUs", t->xl_pairs ? t->xl_err_absmax : NAN, ",");
  printf("\"basic\":%" PRIu64 ",\"lost\":%" PRIu64 ",\"kod\":%" PRIu64 "},", t->xl_basic, t->xl_lost, t->xl_kod);
  json_num("cpuUserS", cpu_user, ",");
  json_num("cpuSysS", cpu_sys, ",");
  json_num("durationS", secs, ",");
  printf("\"procs\":%d,\"sockets\":%d,\"batch\":%d,\"mode\":\"%s\"}\n", cfg.procs, cfg.sockets, cfg.batch,
         cfg.packets_file ? "nts" : "plain");
  fflush(stdout);
  free(errs);
  free(t);
}

static double tv_s(struct timeval tv) { return (double)tv.tv_sec + (double)tv.tv_usec / 1e6; }

int main(int argc, char **argv) {
  parse_args(argc, argv);
  if (cfg.packets_file) load_packets(cfg.packets_file);

  /* Every socket is opened (bound, connected) here, so address errors are reported once. */
  int nsock = cfg.procs * cfg.sockets;
  sock_t *all = calloc((size_t)nsock, sizeof *all);
  flow_t *all_flows = calloc((size_t)cfg.flows + 1, sizeof *all_flows);
  if (!all || !all_flows) die("out of memory");
  for (int p = 0; p < cfg.procs; p++)
    for (int k = 0; k < cfg.sockets; k++) {
      sock_t *s = &all[p * cfg.sockets + k];
      s->fd = open_socket((uint32_t)(p * 256 + k));
      if (cfg.packets_file) s->cursor = (uint32_t)(((uint64_t)pk.n * (uint64_t)(p * cfg.sockets + k)) / (uint64_t)nsock);
    }
  for (int f = 0; f < cfg.flows; f++) all_flows[f].fd = open_socket((uint32_t)(255 * 256 + f));

  size_t shared_size = sizeof(stats_t) * (size_t)cfg.procs;
  shared = mmap(NULL, shared_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (shared == MAP_FAILED) die("mmap: %s", strerror(errno));

  /* All processes start together, after their setup. */
  t_start = mono_ns() + 100 * NS_PER_MS;
  t_measure = t_start + cfg.warmup_ns;
  t_end = t_measure + (int64_t)(cfg.duration_s * 1e9);
  t_stop = t_end + cfg.drain_ns;

  pid_t parent = getpid();
  pid_t *pids = calloc((size_t)cfg.procs, sizeof *pids);
  if (!pids) die("out of memory");
  fflush(stdout);
  fflush(stderr);
  for (int p = 0; p < cfg.procs; p++) {
    pid_t pid = fork();
    if (pid < 0) {
      for (int q = 0; q < p; q++) kill(pids[q], SIGKILL);
      die("fork: %s", strerror(errno));
    }
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(4);
      socks = &all[p * cfg.sockets];
      if (p == 0) {
        flows = all_flows;
        nflows = cfg.flows;
      }
      run_worker(p);
      _exit(0);
    }
    pids[p] = pid;
  }
  for (int i = 0; i < nsock; i++) close(all[i].fd);
  for (int f = 0; f < cfg.flows; f++) close(all_flows[f].fd);

  int failed = 0;
  for (int p = 0; p < cfg.procs; p++) {
    int status;
    while (waitpid(pids[p], &status, 0) < 0)
      if (errno != EINTR) die("waitpid: %s", strerror(errno));
    if (shared[p].failed) {
      fprintf(stderr, "loadgen: process %d: %s\n", p, shared[p].errmsg);
      failed = 1;
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fprintf(stderr, "loadgen: process %d ended abnormally (status 0x%x)\n", p, status);
      failed = 1;
    }
  }
  free(pids);
  free(all_flows);
  free(all);
  if (failed) return 2;
  struct rusage self, children;
  getrusage(RUSAGE_SELF, &self);
  getrusage(RUSAGE_CHILDREN, &children);
  print_json(tv_s(self.ru_utime) + tv_s(children.ru_utime), tv_s(self.ru_stime) + tv_s(children.ru_stime));
  return 0;
}
