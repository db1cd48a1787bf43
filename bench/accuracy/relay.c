/*
 * relay — a userspace UDP delay relay (netem replacement for the accuracy benchmark).
 *
 *   relay --pair LISTEN_ADDR:PORT=UPSTREAM_ADDR:PORT [--pair ...]
 *         [--up SPEC] [--down SPEC] [--seed N] [--outage PERIOD:DOWN[:PHASE]] [--stats-file PATH]
 *         [--rt PRIO] [--no-compensate]
 *   SPEC = comma-separated key=value: base=SECONDS, jitter=exp:MEAN|uniform:MAX|normal:SD|none,
 *          loss=PROB
 *
 * Each datagram is held until (kernel RX timestamp + base + jitter) on CLOCK_REALTIME, then sent:
 * the loop sleeps (epoll + an absolute CLOCK_REALTIME timerfd) until 300 us before the earliest
 * deadline, then busy-waits on clock_gettime. sendto() is called early by the direction's measured
 * sendto→xmit cost, so packets leave (kernel TX stamp) on time in both directions. See RELAY.md.
 *
 * Build: cc -O2 -Wall -Wextra -o relay relay.c -lm   (Linux only; libc and libm only)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
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
#include <sys/prctl.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <linux/errqueue.h>
#include <linux/net_tstamp.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_PAIRS 256
#define MAX_CLIENTS 1024 /* per pair */
#define HEAP_CAP 65536   /* held packets, all pairs and directions */
#define MAX_DGRAM 2048
#define SPIN_NS 300000       /* sleep until this long before a deadline, then spin (see RELAY.md) */
#define POLL_SPIN_NS 10000   /* closer than this: pure clock_gettime spin, no epoll */
#define RECV_BATCH 64        /* datagrams read from one socket per wake-up */
#define MAX_SECONDS 3600.0   /* bound of base and jitter parameters */
#define NS_PER_S ((int64_t)1000000000)

enum { UP = 0, DOWN = 1 };
static const char *const DIR_NAME[2] = {"up", "down"};

typedef union {
  struct sockaddr sa;
  struct sockaddr_in in4;
  struct sockaddr_in6 in6;
} addr_t;

enum jitter_kind { J_NONE, J_EXP, J_UNIFORM, J_NORMAL };

struct dirspec {
  double base;
  enum jitter_kind jk;
  double jp; /* mean, max or sd */
  double loss;
};

struct client {
  bool used;
  addr_t addr; /* the client C, as seen on the listen socket */
  socklen_t alen;
  int fd; /* upstream socket */
  uint32_t gen;
  uint64_t last_use;
};

struct pair {
  addr_t listen;
  socklen_t llen;
  addr_t upstream;
  socklen_t ulen;
  int lfd;
  struct client *clients;
  int nclients;
};

struct held {
  int64_t deadline;   /* CLOCK_REALTIME ns: when the packet must leave (its kernel TX stamp) */
  int64_t release_at; /* deadline − the direction's sendto→xmit cost when queued: when to call sendto */
  uint64_t seq;
  int64_t delay_ns;
  uint8_t dir;
  uint16_t pair;
  uint16_t cidx; /* UP: client slot whose upstream socket sends it */
  uint32_t gen;  /* UP: generation of that slot when queued */
  addr_t dst;
  socklen_t dlen;
  uint16_t len;
  unsigned char *data;
};

/* Lateness histogram: exact below 128 ns, then 64 sub-buckets per power of two (< 1.6% error). */
#define NBUCKETS (128 + 56 * 64)

struct latstats {
  uint64_t hist[NBUCKETS];
  uint64_t n;
  int64_t max;
  double sum; /* ns */
};

struct dirstats {
  uint64_t received, forwarded, lost, outage, overflow, truncated, evicted, send_errors;
  double delay_sum;
  struct latstats lat;     /* sendto() returned − deadline */
  struct latstats release; /* sendto() called − deadline */
  struct latstats wire;    /* kernel TX software timestamp (driver xmit) − deadline */
};

/* ------------------------------------------------------------------------------------------ */
/* Globals */

static struct pair pairs[MAX_PAIRS];
static int npairs;
static struct dirspec spec[2] = {{0, J_NONE, 0, 0}, {0, J_NONE, 0, 0}};
static uint64_t seed = 1;
static bool have_outage;
static int64_t outage_period, outage_down, outage_phase; /* ns */
static const char *stats_file;
static int rt_prio = 1;  /* --rt: SCHED_FIFO priority, 0 = normal scheduling */
static bool compensate = true; /* --no-compensate: release at the deadline, not before */
static int64_t cost_ns[2];     /* per direction: sendto call → kernel TX stamp, median of recent sends */
static int rt_active;    /* the priority actually obtained (0: none) */

static struct held *heap;
static size_t heap_n;
static uint64_t next_seq;
static struct dirstats stats[2];
static uint64_t clients_created, socket_errors, use_counter;
static int64_t start_ns;
static int epfd = -1;

/* ------------------------------------------------------------------------------------------ */
/* Time */

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

/* ------------------------------------------------------------------------------------------ */
/* PRNG: xoshiro256** seeded by splitmix64, one stream per direction */

struct rng {
  uint64_t s[4];
};
static struct rng rng[2];

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t xoshiro(struct rng *r) {
  uint64_t *s = r->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

/* Uniform in [0, 1). */
static double uniform01(struct rng *r) { return (double)(xoshiro(r) >> 11) * 0x1.0p-53; }

/* Uniform in (0, 1]. */
static double uniform01_open0(struct rng *r) { return 1.0 - uniform01(r); }

static double jitter_draw(int dir) {
  const struct dirspec *d = &spec[dir];
  struct rng *r = &rng[dir];
  switch (d->jk) {
  case J_EXP:
    return -d->jp * log(uniform01_open0(r));
  case J_UNIFORM:
    return d->jp * uniform01(r);
  case J_NORMAL: {
    double u1 = uniform01_open0(r), u2 = uniform01(r);
    return fabs(d->jp * sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
  }
  case J_NONE:
  default:
    return 0.0;
  }
}

/* ------------------------------------------------------------------------------------------ */
/* Lateness histogram */

static int bucket_of(uint64_t v) {
  if (v < 128) return (int)v;
  int msb = 63 - __builtin_clzll(v); /* >= 7 */
  int shift = msb - 6;
  int sub = (int)(v >> shift); /* 64..127 */
  int idx = 128 + (msb - 7) * 64 + (sub - 64);
  return idx < NBUCKETS ? idx : NBUCKETS - 1;
}

static uint64_t bucket_value(int idx) {
  if (idx < 128) return (uint64_t)idx;
  int msb = 7 + (idx - 128) / 64;
  int sub = 64 + (idx - 128) % 64;
  int shift = msb - 6;
  return ((uint64_t)sub << shift) + ((1ULL << shift) >> 1);
}

/* The mean is signed (a packet may leave a little early); percentiles and max count early as 0. */
static void record_lateness(struct latstats *st, int64_t lat) {
  st->sum += (double)lat;
  if (lat < 0) lat = 0;
  if (lat > st->max) st->max = lat;
  st->hist[bucket_of((uint64_t)lat)]++;
  st->n++;
}

static double percentile(const struct latstats *st, double p) {
  if (st->n == 0) return 0.0;
  uint64_t rank = (uint64_t)ceil(p * (double)st->n);
  if (rank < 1) rank = 1;
  uint64_t cum = 0;
  for (int i = 0; i < NBUCKETS; i++) {
    cum += st->hist[i];
    if (cum >= rank) {
      uint64_t v = bucket_value(i);
      if (v > (uint64_t)st->max) v = (uint64_t)st->max;
      return (double)v / 1e9;
    }
  }
  return (double)st->max / 1e9;
}

/* ------------------------------------------------------------------------------------------ */
/* Argument parsing */

static void usage_exit(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void usage_exit(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "relay: ");
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr,
          "\nusage: relay --pair LISTEN_ADDR:PORT=UPSTREAM_ADDR:PORT [--pair ...] [--up SPEC] [--down SPEC]\n"
          "             [--seed N] [--outage PERIOD:DOWN[:PHASE]] [--stats-file PATH] [--rt PRIO]\n"
          "             [--no-compensate]\n"
          "  SPEC = comma-separated base=SECONDS, jitter=exp:MEAN|uniform:MAX|normal:SD|none, loss=PROB\n");
  exit(2);
}

static bool parse_double(const char *s, double *out) {
  if (!s || !*s) return false;
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || *end != '\0' || errno == ERANGE || !isfinite(v)) return false;
  *out = v;
  return true;
}

/* "A.B.C.D:PORT" or "[IPV6]:PORT"; port 1..65535. */
static bool parse_endpoint(const char *s, addr_t *a, socklen_t *len) {
  char host[INET6_ADDRSTRLEN + 1];
  const char *port;
  memset(a, 0, sizeof *a);
  if (s[0] == '[') {
    const char *close = strchr(s, ']');
    if (!close || close[1] != ':') return false;
    size_t n = (size_t)(close - s - 1);
    if (n == 0 || n >= sizeof host) return false;
    memcpy(host, s + 1, n);
    host[n] = '\0';
    port = close + 2;
  } else {
    const char *colon = strrchr(s, ':');
    if (!colon) return false;
    size_t n = (size_t)(colon - s);
    if (n == 0 || n >= sizeof host) return false;
    memcpy(host, s, n);
    host[n] = '\0';
    port = colon + 1;
  }
  if (!*port || strlen(port) > 5) return false;
  for (const char *p = port; *p; p++)
    if (*p < '0' || *p > '9') return false;
  long pn = strtol(port, NULL, 10);
  if (pn < 1 || pn > 65535) return false;
  if (s[0] == '[') {
    if (inet_pton(AF_INET6, host, &a->in6.sin6_addr) != 1) return false;
    a->in6.sin6_family = AF_INET6;
    a->in6.sin6_port = htons((uint16_t)pn);
    *len = sizeof a->in6;
  } else {
    if (inet_pton(AF_INET, host, &a->in4.sin_addr) != 1) return false;
    a->in4.sin_family = AF_INET;
    a->in4.sin_port = htons((uint16_t)pn);
    *len = sizeof a->in4;
  }
  return true;
}

static void parse_pair(const char *arg) {
  if (npairs >= MAX_PAIRS) usage_exit("too many --pair (at most %d)", MAX_PAIRS);
  const char *eq = strchr(arg, '=');
  if (!eq || strchr(eq + 1, '=')) usage_exit("bad --pair '%s': expected LISTEN_ADDR:PORT=UPSTREAM_ADDR:PORT", arg);
  char left[128];
  size_t n = (size_t)(eq - arg);
  if (n >= sizeof left) usage_exit("bad --pair '%s': listen address too long", arg);
  memcpy(left, arg, n);
  left[n] = '\0';
  struct pair *p = &pairs[npairs];
  if (!parse_endpoint(left, &p->listen, &p->llen))
    usage_exit("bad --pair '%s': bad listen address (IPv4 A.B.C.D:PORT or [IPv6]:PORT)", arg);
  if (!parse_endpoint(eq + 1, &p->upstream, &p->ulen))
    usage_exit("bad --pair '%s': bad upstream address (IPv4 A.B.C.D:PORT or [IPv6]:PORT)", arg);
  for (int i = 0; i < npairs; i++)
    if (pairs[i].llen == p->llen && memcmp(&pairs[i].listen, &p->listen, p->llen) == 0)
      usage_exit("bad --pair '%s': listen address used twice", arg);
  p->lfd = -1;
  npairs++;
}

static void parse_spec(const char *opt, const char *arg, struct dirspec *d) {
  char buf[512];
  if (strlen(arg) >= sizeof buf) usage_exit("bad %s: SPEC too long", opt);
  strcpy(buf, arg);
  if (buf[0] == '\0') return; /* empty SPEC: all defaults */
  char *item = buf;
  /* strtok_r would skip empty items; walk by hand to reject them. */
  for (;;) {
    char *comma = strchr(item, ',');
    if (comma) *comma = '\0';
    char *eq = strchr(item, '=');
    if (!eq) {
      usage_exit("bad %s '%s': item '%s' is not key=value", opt, arg, item);
    }
    *eq = '\0';
    const char *key = item, *val = eq + 1;
    double v;
    if (strcmp(key, "base") == 0) {
      if (!parse_double(val, &v) || v < 0 || v > MAX_SECONDS) {
        usage_exit("bad %s '%s': base must be seconds in [0, %g]", opt, arg, MAX_SECONDS);
      }
      d->base = v;
    } else if (strcmp(key, "loss") == 0) {
      if (!parse_double(val, &v) || v < 0 || v > 1) {
        usage_exit("bad %s '%s': loss must be a probability in [0, 1]", opt, arg);
      }
      d->loss = v;
    } else if (strcmp(key, "jitter") == 0) {
      if (strcmp(val, "none") == 0) {
        d->jk = J_NONE;
        d->jp = 0;
      } else {
        const char *colon = strchr(val, ':');
        enum jitter_kind jk;
        size_t kl = colon ? (size_t)(colon - val) : 0;
        if (colon && kl == 3 && strncmp(val, "exp", 3) == 0)
          jk = J_EXP;
        else if (colon && kl == 7 && strncmp(val, "uniform", 7) == 0)
          jk = J_UNIFORM;
        else if (colon && kl == 6 && strncmp(val, "normal", 6) == 0)
          jk = J_NORMAL;
        else {
          usage_exit("bad %s '%s': jitter must be exp:MEAN, uniform:MAX, normal:SD or none", opt, arg);
        }
        if (!parse_double(colon + 1, &v) || v < 0 || v > MAX_SECONDS) {
          usage_exit("bad %s '%s': jitter parameter must be seconds in [0, %g]", opt, arg, MAX_SECONDS);
        }
        d->jk = jk;
        d->jp = v;
      }
    } else {
      usage_exit("bad %s '%s': unknown key '%s' (base, jitter, loss)", opt, arg, key);
    }
    if (!comma) break;
    item = comma + 1;
  }
}

static void parse_outage(const char *arg) {
  char buf[256];
  if (strlen(arg) >= sizeof buf) usage_exit("bad --outage: too long");
  strcpy(buf, arg);
  char *f[4] = {0};
  int nf = 0;
  char *p = buf;
  for (;;) {
    if (nf == 4) break;
    f[nf++] = p;
    char *c = strchr(p, ':');
    if (!c) break;
    *c = '\0';
    p = c + 1;
  }
  double period, down, phase = 0;
  if (nf < 2 || nf > 3 || !parse_double(f[0], &period) || !parse_double(f[1], &down) ||
      (nf == 3 && !parse_double(f[2], &phase)) || !(period > 0) || period > 1e6 || down < 0 || down > period ||
      phase < 0 || phase > 1e6)
    usage_exit("bad --outage '%s': expected PERIOD:DOWN[:PHASE] seconds, 0 < PERIOD, 0 <= DOWN <= PERIOD, PHASE >= 0",
               arg);
  outage_period = llround(period * 1e9);
  outage_down = llround(down * 1e9);
  outage_phase = llround(phase * 1e9);
  if (outage_period <= 0) usage_exit("bad --outage '%s': PERIOD too small", arg);
  have_outage = true;
}

static void parse_args(int argc, char **argv) {
  bool seen_up = false, seen_down = false, seen_seed = false, seen_outage = false, seen_stats = false,
       seen_rt = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *val = NULL;
    char name[32];
    const char *eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
    if (eq && (size_t)(eq - a) < sizeof name) { /* --opt=value */
      memcpy(name, a, (size_t)(eq - a));
      name[eq - a] = '\0';
      val = eq + 1;
    } else {
      snprintf(name, sizeof name, "%s", strlen(a) < sizeof name ? a : "?");
    }
    if (strcmp(a, "--no-compensate") == 0) { /* the only flag without a value */
      compensate = false;
      continue;
    }
    bool known = strcmp(name, "--pair") == 0 || strcmp(name, "--up") == 0 || strcmp(name, "--down") == 0 ||
                 strcmp(name, "--seed") == 0 || strcmp(name, "--outage") == 0 || strcmp(name, "--stats-file") == 0 ||
                 strcmp(name, "--rt") == 0;
    if (!known) usage_exit("unknown argument '%s'", a);
    if (!val) {
      if (i + 1 >= argc) usage_exit("%s needs a value", name);
      val = argv[++i];
    }
    if (strcmp(name, "--pair") == 0) {
      parse_pair(val);
    } else if (strcmp(name, "--up") == 0 || strcmp(name, "--down") == 0) {
      bool up = name[2] == 'u';
      if (up ? seen_up : seen_down) usage_exit("%s given twice", name);
      if (up)
        seen_up = true;
      else
        seen_down = true;
      parse_spec(name, val, &spec[up ? UP : DOWN]);
    } else if (strcmp(name, "--seed") == 0) {
      if (seen_seed) usage_exit("--seed given twice");
      seen_seed = true;
      char *end;
      errno = 0;
      if (!*val || *val == '-' || *val == '+') usage_exit("bad --seed '%s': expected an unsigned integer", val);
      unsigned long long v = strtoull(val, &end, 0);
      if (*end || errno == ERANGE) usage_exit("bad --seed '%s': expected an unsigned integer", val);
      seed = v;
    } else if (strcmp(name, "--outage") == 0) {
      if (seen_outage) usage_exit("--outage given twice");
      seen_outage = true;
      parse_outage(val);
    } else if (strcmp(name, "--rt") == 0) {
      if (seen_rt) usage_exit("--rt given twice");
      seen_rt = true;
      char *end;
      errno = 0;
      long v = strtol(val, &end, 10);
      if (!*val || *end || errno == ERANGE || v < 0 || v > 99)
        usage_exit("bad --rt '%s': expected a SCHED_FIFO priority 1..99, or 0 for normal scheduling", val);
      rt_prio = (int)v;
    } else { /* --stats-file */
      if (seen_stats) usage_exit("--stats-file given twice");
      seen_stats = true;
      if (!*val) usage_exit("bad --stats-file: empty path");
      stats_file = val;
    }
  }
  if (npairs == 0) usage_exit("at least one --pair is required");
}

/* ------------------------------------------------------------------------------------------ */
/* Heap of held packets (earliest release first, then arrival order) */

static bool held_before(const struct held *a, const struct held *b) {
  return a->release_at < b->release_at || (a->release_at == b->release_at && a->seq < b->seq);
}

static void heap_push(const struct held *h) {
  size_t i = heap_n++;
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!held_before(h, &heap[parent])) break;
    heap[i] = heap[parent];
    i = parent;
  }
  heap[i] = *h;
}

static void heap_pop(struct held *out) {
  *out = heap[0];
  struct held last = heap[--heap_n];
  size_t i = 0, n = heap_n;
  if (n == 0) return;
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    const struct held *best = &last;
    if (l < n && held_before(&heap[l], best)) {
      m = l;
      best = &heap[l];
    }
    if (r < n && held_before(&heap[r], best)) m = r;
    if (m == i) break;
    heap[i] = heap[m];
    i = m;
  }
  heap[i] = last;
}

/* ------------------------------------------------------------------------------------------ */
/* Sockets */

#define EV_SIGNAL 1ULL
#define EV_TIMER 2ULL
#define EV_LISTEN 3ULL
#define EV_UPSTREAM 4ULL

static uint64_t ev_data(uint64_t kind, unsigned pidx, unsigned cidx, uint32_t gen) {
  return kind | ((uint64_t)(pidx & 0xfff) << 4) | ((uint64_t)(cidx & 0xffff) << 16) | ((uint64_t)gen << 32);
}

static int make_udp_socket(int family) {
  int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one) < 0) {
    close(fd);
    return -1;
  }
  /* TX software timestamps (taken by loopback and veth at xmit, where the receiver's RX stamp is
   * also taken): the time a forwarded packet really leaves, without the rest of sendto(). */
  unsigned tsflags = SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE | SOF_TIMESTAMPING_OPT_TSONLY;
  (void)setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &tsflags, sizeof tsflags);
  int rcv = 1 << 20; /* beyond net.core.rmem_max only with CAP_NET_ADMIN */
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv) < 0)
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
  if (family == AF_INET6) (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  return fd;
}

static bool same_addr(const addr_t *a, socklen_t alen, const addr_t *b, socklen_t blen) {
  if (a->sa.sa_family != b->sa.sa_family) return false;
  if (a->sa.sa_family == AF_INET)
    return a->in4.sin_port == b->in4.sin_port && a->in4.sin_addr.s_addr == b->in4.sin_addr.s_addr;
  if (a->sa.sa_family == AF_INET6)
    return a->in6.sin6_port == b->in6.sin6_port &&
           memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, sizeof a->in6.sin6_addr) == 0 &&
           a->in6.sin6_scope_id == b->in6.sin6_scope_id;
  return alen == blen && memcmp(a, b, alen) == 0;
}

/* The client slot of C on pair p, created (evicting the least recently used) if new; -1 on error. */
static int client_for(unsigned pidx, const addr_t *src, socklen_t slen) {
  struct pair *p = &pairs[pidx];
  int free_slot = -1, lru = -1;
  for (int i = 0; i < MAX_CLIENTS; i++) {
    struct client *c = &p->clients[i];
    if (!c->used) {
      if (free_slot < 0) free_slot = i;
      continue;
    }
    if (same_addr(&c->addr, c->alen, src, slen)) {
      c->last_use = ++use_counter;
      return i;
    }
    if (lru < 0 || c->last_use < p->clients[lru].last_use) lru = i;
  }
  int slot = free_slot;
  if (slot < 0) { /* table full: evict the least recently used client */
    slot = lru;
    struct client *c = &p->clients[slot];
    close(c->fd); /* also removes it from the epoll set */
    c->used = false;
    c->gen++;
    p->nclients--;
  }
  struct client *c = &p->clients[slot];
  int fd = make_udp_socket(p->upstream.sa.sa_family);
  if (fd < 0) {
    socket_errors++;
    return -1;
  }
  addr_t any;
  memset(&any, 0, sizeof any);
  socklen_t alen;
  if (p->upstream.sa.sa_family == AF_INET6) {
    any.in6.sin6_family = AF_INET6;
    alen = sizeof any.in6;
  } else {
    any.in4.sin_family = AF_INET;
    alen = sizeof any.in4;
  }
  c->gen++;
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = ev_data(EV_UPSTREAM, pidx, (unsigned)slot, c->gen)};
  if (bind(fd, &any.sa, alen) < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
    close(fd);
    socket_errors++;
    return -1;
  }
  c->used = true;
  c->fd = fd;
  memcpy(&c->addr, src, slen <= sizeof c->addr ? slen : sizeof c->addr);
  c->alen = slen;
  c->last_use = ++use_counter;
  p->nclients++;
  clients_created++;
  return slot;
}

static bool in_outage(int64_t rx) {
  if (!have_outage || outage_down <= 0) return false;
  int64_t t = rx - start_ns;
  if (t < outage_phase) return false;
  return (t - outage_phase) % outage_period < outage_down;
}

/* Decides the fate of one received datagram and queues it. */
static void admit(int dir, unsigned pidx, int cidx, uint32_t gen, const addr_t *dst, socklen_t dlen,
                  const unsigned char *data, size_t len, int64_t rx) {
  struct dirstats *st = &stats[dir];
  if (in_outage(rx)) {
    st->outage++;
    return;
  }
  if (spec[dir].loss > 0 && uniform01(&rng[dir]) < spec[dir].loss) {
    st->lost++;
    return;
  }
  double delay = spec[dir].base + jitter_draw(dir);
  if (!isfinite(delay) || delay < 0) delay = spec[dir].base;
  if (heap_n >= HEAP_CAP) {
    st->overflow++;
    return;
  }
  struct held h;
  memset(&h, 0, sizeof h);
  h.data = malloc(len ? len : 1);
  if (!h.data) {
    st->overflow++;
    return;
  }
  memcpy(h.data, data, len);
  h.len = (uint16_t)len;
  h.delay_ns = llround(delay * 1e9);
  h.deadline = rx + h.delay_ns;
  h.release_at = h.deadline - cost_ns[dir];
  h.seq = next_seq++;
  h.dir = (uint8_t)dir;
  h.pair = (uint16_t)pidx;
  h.cidx = (uint16_t)(cidx < 0 ? 0 : cidx);
  h.gen = gen;
  memcpy(&h.dst, dst, dlen <= sizeof h.dst ? dlen : sizeof h.dst);
  h.dlen = dlen;
  heap_push(&h);
}

static void handle_rx(int fd, bool from_listen, unsigned pidx, int cidx) {
  for (int i = 0; i < RECV_BATCH; i++) {
    unsigned char buf[MAX_DGRAM];
    addr_t src;
    union {
      char buf[CMSG_SPACE(sizeof(struct timespec)) + 256];
      struct cmsghdr align;
    } ctl;
    struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf};
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    memset(&src, 0, sizeof src);
    msg.msg_name = &src;
    msg.msg_namelen = sizeof src;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctl.buf;
    msg.msg_controllen = sizeof ctl.buf;
    ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      return; /* EAGAIN, or an error that recvmsg just consumed */
    }
    int64_t rx = 0;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
      if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS &&
          cm->cmsg_len >= CMSG_LEN(sizeof(struct timespec))) {
        struct timespec ts;
        memcpy(&ts, CMSG_DATA(cm), sizeof ts);
        rx = (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
      }
    }
    if (rx == 0) rx = now_ns();
    int dir = from_listen ? UP : DOWN;
    stats[dir].received++;
    if (msg.msg_flags & MSG_TRUNC) {
      stats[dir].truncated++;
      continue;
    }
    if ((size_t)n > sizeof buf) continue; /* cannot happen without MSG_TRUNC */
    struct pair *p = &pairs[pidx];
    if (from_listen) {
      socklen_t slen = msg.msg_namelen <= sizeof src ? msg.msg_namelen : sizeof src;
      if (src.sa.sa_family != p->listen.sa.sa_family) continue;
      int c = client_for(pidx, &src, slen);
      if (c < 0) {
        stats[UP].send_errors++;
        continue;
      }
      admit(UP, pidx, c, p->clients[c].gen, &p->upstream, p->ulen, buf, (size_t)n, rx);
    } else {
      struct client *c = &p->clients[cidx];
      if (!c->used) return;
      admit(DOWN, pidx, cidx, c->gen, &c->addr, c->alen, buf, (size_t)n, rx);
    }
  }
}

/* The newest TX software timestamp on fd's error queue (ns), 0 if none; drains the queue. The
 * stamp is queued during sendto() on these virtual devices, so it is there when sendto returns. */
static int64_t tx_timestamp(int fd) {
  int64_t ts_ns = 0;
  for (int i = 0; i < 16; i++) {
    union {
      char buf[CMSG_SPACE(sizeof(struct scm_timestamping)) + CMSG_SPACE(sizeof(struct sock_extended_err) + 64)];
      struct cmsghdr align;
    } ctl;
    char data[1];
    struct iovec iov = {.iov_base = data, .iov_len = sizeof data};
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctl.buf;
    msg.msg_controllen = sizeof ctl.buf;
    if (recvmsg(fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) break;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
      if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPING &&
          cm->cmsg_len >= CMSG_LEN(sizeof(struct scm_timestamping))) {
        struct scm_timestamping st;
        memcpy(&st, CMSG_DATA(cm), sizeof st);
        if (st.ts[0].tv_sec || st.ts[0].tv_nsec) ts_ns = (int64_t)st.ts[0].tv_sec * NS_PER_S + st.ts[0].tv_nsec;
      }
    }
  }
  return ts_ns;
}

/*
 * sendto() needs a few µs before the device stamps and hands over the packet, and that cost differs
 * by direction (loopback to the reference ~10 µs, veth to the client ~5 µs on the test VM): a fixed
 * per-direction path asymmetry. Each direction releases early by the median of its last COST_N
 * (TX stamp − sendto call) costs, so the packet leaves at its deadline both ways. The median
 * ignores sends that were preempted. Capped: a wrong estimate cannot move packets by more.
 */
#define COST_N 15
#define COST_MAX_NS 100000
static int64_t cost_ring[2][COST_N];
static int cost_count[2];

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static void note_cost(int dir, int64_t c) {
  if (c < 0) c = 0;
  if (c > COST_MAX_NS) c = COST_MAX_NS;
  cost_ring[dir][cost_count[dir]++ % COST_N] = c;
  int n = cost_count[dir] < COST_N ? cost_count[dir] : COST_N;
  int64_t sorted[COST_N];
  memcpy(sorted, cost_ring[dir], (size_t)n * sizeof sorted[0]);
  qsort(sorted, (size_t)n, sizeof sorted[0], cmp_i64);
  cost_ns[dir] = sorted[n / 2];
}

/* Sends one held packet (already popped) and accounts for it. */
static void transmit(struct held *h) {
  struct dirstats *st = &stats[h->dir];
  int fd;
  if (h->dir == UP) {
    struct client *c = &pairs[h->pair].clients[h->cidx];
    if (!c->used || c->gen != h->gen) {
      st->evicted++;
      free(h->data);
      return;
    }
    fd = c->fd;
  } else {
    fd = pairs[h->pair].lfd;
  }
  int64_t before = now_ns();
  ssize_t r;
  do {
    r = sendto(fd, h->data, h->len, MSG_DONTWAIT, &h->dst.sa, h->dlen);
  } while (r < 0 && errno == EINTR);
  int64_t after = now_ns();
  if (r < 0) {
    st->send_errors++;
  } else {
    st->forwarded++;
    st->delay_sum += (double)h->delay_ns / 1e9;
    record_lateness(&st->lat, after - h->deadline);
    record_lateness(&st->release, before - h->deadline);
    int64_t tx = tx_timestamp(fd);
    if (tx != 0) {
      record_lateness(&st->wire, tx - h->deadline);
      if (compensate) note_cost(h->dir, tx - before);
    }
  }
  free(h->data);
}

/* ------------------------------------------------------------------------------------------ */
/* Stats */

static int format_stats(char *out, size_t cap) {
  size_t n = 0;
  int w;
#define APPEND(...)                                                                                                  \
  do {                                                                                                               \
    w = snprintf(out + n, n < cap ? cap - n : 0, __VA_ARGS__);                                                       \
    if (w < 0) return -1;                                                                                            \
    n += (size_t)w;                                                                                                  \
  } while (0)
  APPEND("{\"startTime\":%" PRId64 ".%09" PRId64 ",\"pairs\":%d,\"clients\":%" PRIu64 ",\"socketErrors\":%" PRIu64
         ",\"pending\":%zu,\"rtPriority\":%d,\"compensation\":{\"enabled\":%s,\"up\":%.9g,\"down\":%.9g}",
         start_ns / NS_PER_S, start_ns % NS_PER_S, npairs, clients_created, socket_errors, heap_n, rt_active,
         compensate ? "true" : "false", (double)cost_ns[UP] / 1e9, (double)cost_ns[DOWN] / 1e9);
  for (int d = 0; d < 2; d++) {
    const struct dirstats *s = &stats[d];
    double mean = s->forwarded ? s->delay_sum / (double)s->forwarded : 0.0;
    APPEND(",\"%s\":{\"received\":%" PRIu64 ",\"forwarded\":%" PRIu64 ",\"lost\":%" PRIu64 ",\"outage\":%" PRIu64
           ",\"overflow\":%" PRIu64 ",\"truncated\":%" PRIu64 ",\"evicted\":%" PRIu64 ",\"sendErrors\":%" PRIu64
           ",\"meanDelay\":%.9g",
           DIR_NAME[d], s->received, s->forwarded, s->lost, s->outage, s->overflow, s->truncated, s->evicted,
           s->send_errors, mean);
    const struct latstats *ls[3] = {&s->lat, &s->release, &s->wire};
    static const char *const LAT_NAME[3] = {"lateness", "release", "wire"};
    for (int k = 0; k < 3; k++)
      APPEND(",\"%s\":{\"count\":%" PRIu64 ",\"mean\":%.9g,\"p50\":%.9g,\"p99\":%.9g,\"max\":%.9g}", LAT_NAME[k],
             ls[k]->n, ls[k]->n ? ls[k]->sum / (double)ls[k]->n / 1e9 : 0.0, percentile(ls[k], 0.50),
             percentile(ls[k], 0.99), (double)ls[k]->max / 1e9);
    APPEND("}");
  }
  APPEND("}\n");
#undef APPEND
  return n < cap ? (int)n : -1;
}

static void write_all(int fd, const char *s, size_t len) {
  while (len > 0) {
    ssize_t w = write(fd, s, len);
    if (w < 0) {
      if (errno == EINTR) continue;
      return;
    }
    s += w;
    len -= (size_t)w;
  }
}

/* ------------------------------------------------------------------------------------------ */

int main(int argc, char **argv) {
  parse_args(argc, argv);

  signal(SIGPIPE, SIG_IGN);
  (void)prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
  }

  if (rt_prio > 0) { /* best effort: needs CAP_SYS_NICE or an RLIMIT_RTPRIO */
    struct sched_param sp = {.sched_priority = rt_prio};
    if (sched_setscheduler(0, SCHED_FIFO, &sp) == 0) rt_active = rt_prio;
  }

  uint64_t sm = seed;
  for (int d = 0; d < 2; d++)
    for (int k = 0; k < 4; k++) rng[d].s[k] = splitmix64(&sm);

  heap = calloc(HEAP_CAP, sizeof *heap);
  if (!heap) {
    fprintf(stderr, "relay: out of memory\n");
    return 1;
  }

  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0) {
    perror("relay: sigprocmask");
    return 1;
  }
  int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  int tfd = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC);
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (sfd < 0 || tfd < 0 || epfd < 0) {
    perror("relay: signalfd/timerfd/epoll");
    return 1;
  }
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = EV_SIGNAL};
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, sfd, &ev) < 0) {
    perror("relay: epoll_ctl");
    return 1;
  }
  ev.data.u64 = EV_TIMER;
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, &ev) < 0) {
    perror("relay: epoll_ctl");
    return 1;
  }

  for (int i = 0; i < npairs; i++) {
    struct pair *p = &pairs[i];
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port;
    if (p->listen.sa.sa_family == AF_INET6) {
      inet_ntop(AF_INET6, &p->listen.in6.sin6_addr, host, sizeof host);
      port = ntohs(p->listen.in6.sin6_port);
    } else {
      inet_ntop(AF_INET, &p->listen.in4.sin_addr, host, sizeof host);
      port = ntohs(p->listen.in4.sin_port);
    }
    p->clients = calloc(MAX_CLIENTS, sizeof *p->clients);
    p->lfd = make_udp_socket(p->listen.sa.sa_family);
    if (!p->clients || p->lfd < 0) {
      fprintf(stderr, "relay: cannot create socket for %s:%u: %s\n", host, port, strerror(errno));
      return 1;
    }
    if (bind(p->lfd, &p->listen.sa, p->llen) < 0) {
      fprintf(stderr, "relay: cannot bind %s:%u: %s\n", host, port, strerror(errno));
      return 1;
    }
    ev.data.u64 = ev_data(EV_LISTEN, (unsigned)i, 0, 0);
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, p->lfd, &ev) < 0) {
      perror("relay: epoll_ctl");
      return 1;
    }
  }

  start_ns = now_ns();
  fputs("relay ready\n", stdout);
  fflush(stdout);

  bool stop = false;
  int64_t armed = -1; /* absolute wake-up the timerfd is set to, -1: disarmed */
  struct epoll_event evs[64];
  while (!stop) {
    /* Send everything that is due. */
    int64_t now = now_ns();
    while (heap_n > 0 && heap[0].release_at <= now) {
      struct held h;
      heap_pop(&h);
      transmit(&h);
      now = now_ns();
    }

    int timeout = -1;
    if (heap_n > 0) {
      int64_t deadline = heap[0].release_at;
      int64_t wake = deadline - SPIN_NS;
      if (wake > now) {
        if (armed != wake) {
          struct itimerspec its = {.it_value = {.tv_sec = wake / NS_PER_S, .tv_nsec = wake % NS_PER_S}};
          if (timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
            armed = wake;
          else
            timeout = 1; /* cannot arm: fall back to a 1 ms poll */
        }
      } else if (deadline - now > POLL_SPIN_NS) {
        timeout = 0; /* spin, still polling the sockets */
      } else {
        while (now_ns() < deadline) {
        }
        continue;
      }
    }

    int n = epoll_wait(epfd, evs, 64, timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("relay: epoll_wait");
      break;
    }
    for (int i = 0; i < n; i++) {
      uint64_t d = evs[i].data.u64;
      uint64_t kind = d & 0xf;
      unsigned pidx = (unsigned)((d >> 4) & 0xfff);
      unsigned cidx = (unsigned)((d >> 16) & 0xffff);
      uint32_t gen = (uint32_t)(d >> 32);
      if (kind == EV_SIGNAL) {
        struct signalfd_siginfo si;
        while (read(sfd, &si, sizeof si) > 0) stop = true;
      } else if (kind == EV_TIMER) {
        uint64_t expirations;
        while (read(tfd, &expirations, sizeof expirations) > 0) {
        }
        armed = -1;
      } else if (kind == EV_LISTEN && pidx < (unsigned)npairs) {
        handle_rx(pairs[pidx].lfd, true, pidx, -1);
      } else if (kind == EV_UPSTREAM && pidx < (unsigned)npairs && cidx < MAX_CLIENTS) {
        struct client *c = &pairs[pidx].clients[cidx];
        if (c->used && c->gen == gen) handle_rx(c->fd, false, pidx, (int)cidx);
      }
    }
  }

  static char out[8192];
  int len = format_stats(out, sizeof out);
  if (len > 0) {
    if (stats_file) {
      int fd = open(stats_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (fd >= 0) {
        write_all(fd, out, (size_t)len);
        close(fd);
      } else {
        fprintf(stderr, "relay: cannot write %s: %s\n", stats_file, strerror(errno));
      }
    }
    write_all(STDOUT_FILENO, out, (size_t)len);
  }
  while (heap_n > 0) {
    struct held h;
    heap_pop(&h);
    free(h.data);
  }
  return 0;
}
