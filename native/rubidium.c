/*
 * Rubidium native addon (plain C, Node-API version 8, Linux only).
 *
 * What Node core cannot do and a time daemon needs:
 *   - clock_gettime(2) on any clock id, as bigint nanoseconds;
 *   - clock_adjtime(2) on CLOCK_REALTIME (read with modes=0, or apply frequency/step/status);
 *   - UDP sockets with kernel software timestamps (SO_TIMESTAMPING RX and TX, OPT_ID), driven by
 *     libuv readiness (uv_poll) on the Node event loop;
 *   - AF_UNIX SOCK_DGRAM sockets (sd_notify, chronyc's Unix command socket), same machinery;
 *   - dropping root while keeping chosen capabilities (CAP_SYS_TIME), as chronyd does.
 *
 * Every argument is type- and range-checked before any system call; failures throw a JS
 * TypeError / RangeError / Error (system errors carry `code` = "EXXX" and `errno`).
 */
#include <node_api.h>
#include "parse.h"
#include "internal.h"
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/errqueue.h>
#include <linux/net_tstamp.h>
#include <math.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/socket.h>
#include <grp.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/timex.h>
#include <time.h>
#include <unistd.h>

#define MAX_DGRAM 65536
#define DRAIN_BATCH 64
/* udp_sock.family of an AF_UNIX datagram socket (UDP sockets use 4 and 6). */
#define FAMILY_UNIX 1
#define TS_FLAGS                                                                             \
  (SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE | \
   SOF_TIMESTAMPING_OPT_ID | SOF_TIMESTAMPING_OPT_TSONLY)

enum { TS_NONE = 0, TS_NS = 1, TS_FULL = 2 };

/* ------------------------------------------------------------------------------------------ */
/* Error helpers. Each returns NULL so callers can `return throw_...(...)`.                    */


/* ------------------------------------------------------------------------------------------ */
/* Argument helpers: return 0 on success, -1 with a pending JS exception.                     */


static int get_string(napi_env env, napi_value v, const char* name, char* buf, size_t size) {
  char msg[160];
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_string) {
    snprintf(msg, sizeof msg, "%s must be a string", name);
    throw_type(env, msg);
    return -1;
  }
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return -1;
  if (len == 0 || len >= size) {
    snprintf(msg, sizeof msg, "%s has invalid length %zu", name, len);
    throw_type(env, msg);
    return -1;
  }
  if (napi_get_value_string_utf8(env, v, buf, size, &len) != napi_ok) return -1;
  if (strlen(buf) != len) { /* embedded NUL */
    snprintf(msg, sizeof msg, "%s contains a NUL character", name);
    throw_type(env, msg);
    return -1;
  }
  return 0;
}

/* Optional property: returns 1 if present and not undefined (value in *out), 0 if absent. */
static int get_opt_prop(napi_env env, napi_value obj, const char* key, napi_value* out) {
  bool has = false;
  if (napi_has_named_property(env, obj, key, &has) != napi_ok || !has) return 0;
  if (napi_get_named_property(env, obj, key, out) != napi_ok) return -1;
  napi_valuetype t;
  if (napi_typeof(env, *out, &t) != napi_ok) return -1;
  return t == napi_undefined ? 0 : 1;
}

/* Parses "a.b.c.d" (family 4) or "x::y[%scope]" (family 6) plus port into a sockaddr. */
static int parse_addr(napi_env env, int family, const char* str, int port,
                      struct sockaddr_storage* ss, socklen_t* len) {
  if (rb_parse_inet_addr(family, str, port, ss, len) == 0) return 0;
  char msg[200];
  if (family == 4)
    snprintf(msg, sizeof msg, "invalid IPv4 address '%.64s'", str);
  else
    snprintf(msg, sizeof msg, "invalid IPv6 address '%.80s'", str);
  throw_type(env, msg);
  return -1;
}

/* Formats a peer address; returns the port. */
static int format_addr(const struct sockaddr_storage* ss, char* out, size_t size) {
  return rb_format_inet_addr(ss, out, size);
}

static napi_value ts_to_bigint(napi_env env, const struct timespec* ts) {
  napi_value v;
  int64_t ns = (int64_t)ts->tv_sec * 1000000000LL + (int64_t)ts->tv_nsec;
  if (napi_create_bigint_int64(env, ns, &v) != napi_ok) return NULL;
  return v;
}

/* ------------------------------------------------------------------------------------------ */
/* clockGettime(clockId: number): bigint                                                      */

static napi_value ClockGettime(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) return throw_type(env, "clockGettime(clockId) needs a clock id");
  int64_t id;
  if (get_int(env, argv[0], "clockId", INT32_MIN, INT32_MAX, &id) != 0) return NULL;
  struct timespec ts;
  if (clock_gettime((clockid_t)id, &ts) != 0) {
    if (errno == EINVAL) return throw_range(env, "clockGettime: invalid clock id");
    return throw_errno(env, "clock_gettime", errno);
  }
  return ts_to_bigint(env, &ts);
}

/* ------------------------------------------------------------------------------------------ */
/* clock_adjtime                                                                               */

static int set_num(napi_env env, napi_value obj, const char* key, double v) {
  napi_value jv;
  if (napi_create_double(env, v, &jv) != napi_ok) return -1;
  return napi_set_named_property(env, obj, key, jv) == napi_ok ? 0 : -1;
}

static napi_value timex_to_js(napi_env env, const struct timex* tx, int state) {
  napi_value o;
  CHECK(napi_create_object(env, &o));
  int nano = (tx->status & STA_NANO) != 0;
  if (set_num(env, o, "freqPpm", (double)tx->freq / 65536.0) ||
      set_num(env, o, "freqScaled", (double)tx->freq) ||
      set_num(env, o, "offsetNs", nano ? (double)tx->offset : (double)tx->offset * 1000.0) ||
      set_num(env, o, "maxErrorUs", (double)tx->maxerror) ||
      set_num(env, o, "estErrorUs", (double)tx->esterror) ||
      set_num(env, o, "status", (double)tx->status) ||
      set_num(env, o, "constant", (double)tx->constant) ||
      set_num(env, o, "precisionUs", (double)tx->precision) ||
      set_num(env, o, "tolerancePpm", (double)tx->tolerance / 65536.0) ||
      set_num(env, o, "tickUs", (double)tx->tick) ||
      set_num(env, o, "tai", (double)tx->tai) ||
      set_num(env, o, "state", (double)state))
    return NULL;
  struct timespec t = {tx->time.tv_sec, nano ? tx->time.tv_usec : tx->time.tv_usec * 1000};
  napi_value jt = ts_to_bigint(env, &t);
  if (jt == NULL) return NULL;
  CHECK(napi_set_named_property(env, o, "timeNs", jt));
  return o;
}

static napi_value AdjtimeRead(napi_env env, napi_callback_info info) {
  struct timex tx;
  memset(&tx, 0, sizeof tx);
  tx.modes = 0;
  int r = clock_adjtime(CLOCK_REALTIME, &tx);
  if (r < 0) return throw_errno(env, "clock_adjtime(read)", errno);
  return timex_to_js(env, &tx, r);
}

static napi_value Adjtime(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  napi_valuetype t = napi_undefined;
  if (argc >= 1) CHECK(napi_typeof(env, argv[0], &t));
  if (t != napi_object) return throw_type(env, "adjtime(options) needs an options object");
  napi_value o = argv[0], v;
  struct timex tx;
  memset(&tx, 0, sizeof tx);
  int r;

  /* Validate everything before touching the clock. */
  if ((r = get_opt_prop(env, o, "freqPpm", &v)) < 0) return NULL;
  if (r) {
    napi_valuetype vt;
    CHECK(napi_typeof(env, v, &vt));
    if (vt != napi_number) return throw_type(env, "freqPpm must be a number");
    double ppm;
    CHECK(napi_get_value_double(env, v, &ppm));
    if (!isfinite(ppm) || ppm < -500.0 || ppm > 500.0)
      return throw_range(env, "freqPpm must be a finite number in [-500, 500]");
    tx.modes |= ADJ_FREQUENCY;
    tx.freq = (long)llround(ppm * 65536.0);
  }
  if ((r = get_opt_prop(env, o, "setOffsetNs", &v)) < 0) return NULL;
  if (r) {
    napi_valuetype vt;
    CHECK(napi_typeof(env, v, &vt));
    if (vt != napi_bigint) return throw_type(env, "setOffsetNs must be a bigint");
    int64_t ns;
    bool lossless = false;
    CHECK(napi_get_value_bigint_int64(env, v, &ns, &lossless));
    /* |step| up to ~100 years; the kernel rejects results that are not valid times anyway. */
    if (!lossless || ns > 3155760000000000000LL || ns < -3155760000000000000LL)
      return throw_range(env, "setOffsetNs out of range");
    int64_t sec = ns / 1000000000LL, rem = ns % 1000000000LL;
    if (rem < 0) {
      rem += 1000000000LL;
      sec -= 1;
    }
    tx.modes |= ADJ_SETOFFSET | ADJ_NANO;
    tx.time.tv_sec = (time_t)sec;
    tx.time.tv_usec = (suseconds_t)rem; /* nanoseconds with ADJ_NANO */
  }
  int64_t set_bits = 0, clear_bits = 0;
  int want_status = 0;
  if ((r = get_opt_prop(env, o, "status", &v)) < 0) return NULL;
  if (r) {
    if (get_int(env, v, "status", 0, 0xffff, &set_bits) != 0) return NULL;
    want_status = 1;
  }
  if ((r = get_opt_prop(env, o, "clearStatus", &v)) < 0) return NULL;
  if (r) {
    if (get_int(env, v, "clearStatus", 0, 0xffff, &clear_bits) != 0) return NULL;
    want_status = 1;
  }
  if ((r = get_opt_prop(env, o, "maxErrorUs", &v)) < 0) return NULL;
  if (r) {
    int64_t us;
    if (get_int(env, v, "maxErrorUs", 0, INT32_MAX, &us) != 0) return NULL;
    tx.modes |= ADJ_MAXERROR;
    tx.maxerror = (long)us;
  }
  if ((r = get_opt_prop(env, o, "estErrorUs", &v)) < 0) return NULL;
  if (r) {
    int64_t us;
    if (get_int(env, v, "estErrorUs", 0, INT32_MAX, &us) != 0) return NULL;
    tx.modes |= ADJ_ESTERROR;
    tx.esterror = (long)us;
  }

  if (want_status) {
    /* ADJ_STATUS writes the whole word: read the current one and change only the given bits. */
    struct timex cur;
    memset(&cur, 0, sizeof cur);
    if (clock_adjtime(CLOCK_REALTIME, &cur) < 0)
      return throw_errno(env, "clock_adjtime(read status)", errno);
    tx.modes |= ADJ_STATUS;
    tx.status = (int)(((int64_t)cur.status | set_bits) & ~clear_bits);
  }

  int state = clock_adjtime(CLOCK_REALTIME, &tx);
  if (state < 0) return throw_errno(env, "clock_adjtime", errno);
  return timex_to_js(env, &tx, state);
}

/* ------------------------------------------------------------------------------------------ */
/* UDP sockets                                                                                 */

typedef struct udp_sock {
  napi_env env;
  uv_poll_t poll;
  int fd;
  int family;
  int ts_mode;
  int closed;      /* user-visible: no more use */
  int poll_inited; /* uv_poll_init succeeded: needs uv_close */
  int poll_closed; /* uv_close callback ran (or never needed) */
  int finalized;   /* JS object collected */
  int hook_added;
  int spurious;
  uint32_t tx_counter;
  napi_ref cb;
  napi_async_context actx;
  unsigned char buf[MAX_DGRAM];
} udp_sock;

static void sock_maybe_free(udp_sock* s) {
  if (s->finalized && s->poll_closed) free(s);
}

static void on_poll_closed(uv_handle_t* h) {
  udp_sock* s = (udp_sock*)h->data;
  s->poll_closed = 1;
  sock_maybe_free(s);
}

static void cleanup_hook(void* arg);

/* Releases everything but the memory. `in_hook`: called from the env cleanup hook. */
static void sock_close(udp_sock* s, int in_hook) {
  if (s->closed) return;
  s->closed = 1;
  if (s->hook_added && !in_hook) napi_remove_env_cleanup_hook(s->env, cleanup_hook, s);
  s->hook_added = 0;
  /* uv_close stops polling (and removes the fd from epoll) synchronously; only then close fd. */
  if (s->poll_inited)
    uv_close((uv_handle_t*)&s->poll, on_poll_closed);
  else
    s->poll_closed = 1;
  if (s->fd >= 0) {
    close(s->fd);
    s->fd = -1;
  }
  if (s->cb != NULL) {
    napi_delete_reference(s->env, s->cb);
    s->cb = NULL;
  }
  if (s->actx != NULL && !in_hook) {
    napi_async_destroy(s->env, s->actx);
  }
  s->actx = NULL;
}

static void cleanup_hook(void* arg) { sock_close((udp_sock*)arg, 1); }

static void sock_finalize(napi_env env, void* data, void* hint) {
  udp_sock* s = (udp_sock*)data;
  sock_close(s, 0);
  s->finalized = 1;
  sock_maybe_free(s);
}

/* Calls onEvent(argv...). Returns 0, or -1 if the callback threw (already reported). */
static int emit(udp_sock* s, size_t argc, napi_value* argv) {
  napi_env env = s->env;
  napi_value cb, recv, result;
  if (s->cb == NULL) return -1;
  if (napi_get_reference_value(env, s->cb, &cb) != napi_ok || cb == NULL) return -1;
  if (napi_get_global(env, &recv) != napi_ok) return -1; /* receiver must be an object */
  napi_status st = napi_make_callback(env, s->actx, recv, cb, argc, argv, &result);
  if (st != napi_ok) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) {
      napi_value exc;
      napi_get_and_clear_last_exception(env, &exc);
      napi_fatal_exception(env, exc); /* -> process 'uncaughtException' */
    }
    return -1;
  }
  return 0;
}

static void emit_error(udp_sock* s, const char* what, int err) {
  napi_env env = s->env;
  char msg[200];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_value argv[2];
  if (napi_create_string_utf8(env, "error", NAPI_AUTO_LENGTH, &argv[0]) != napi_ok ||
      napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &argv[1]) != napi_ok)
    return;
  emit(s, 2, argv);
}

typedef union {
  char buf[512];
  struct cmsghdr align;
} cmsg_buf;

static int find_sw_timestamp(struct msghdr* m, struct timespec* out) {
  return rb_find_sw_timestamp(m, out);
}

/* Drains the error queue (TX timestamps). Returns the number of messages read. */
static int drain_errqueue(udp_sock* s) {
  napi_env env = s->env;
  int count = 0;
  while (!s->closed && count < DRAIN_BATCH) {
    cmsg_buf ctrl;
    unsigned char dummy[256];
    struct iovec iov = {dummy, sizeof dummy};
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctrl.buf;
    m.msg_controllen = sizeof ctrl.buf;
    ssize_t n = recvmsg(s->fd, &m, MSG_ERRQUEUE | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      break; /* EAGAIN: queue empty */
    }
    count++;
    struct timespec ts;
    uint32_t id;
    if (!rb_parse_tx_stamp(&m, &id, &ts)) continue; /* not a software TX timestamp: ignore */
    napi_handle_scope scope;
    if (napi_open_handle_scope(env, &scope) != napi_ok) break;
    napi_value argv[3];
    int ok = napi_create_string_utf8(env, "tx", 2, &argv[0]) == napi_ok &&
             napi_create_uint32(env, id, &argv[1]) == napi_ok &&
             (argv[2] = ts_to_bigint(env, &ts)) != NULL;
    int rc = ok ? emit(s, 3, argv) : -1;
    napi_close_handle_scope(env, scope);
    if (rc != 0) break;
  }
  return count;
}

static int drain_rx(udp_sock* s) {
  napi_env env = s->env;
  int count = 0;
  while (!s->closed && count < DRAIN_BATCH) {
    cmsg_buf ctrl;
    struct sockaddr_storage from;
    struct iovec iov = {s->buf, sizeof s->buf};
    struct msghdr m;
    memset(&m, 0, sizeof m);
    memset(&from, 0, sizeof from);
    m.msg_name = &from;
    m.msg_namelen = sizeof from;
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctrl.buf;
    m.msg_controllen = sizeof ctrl.buf;
    ssize_t n = recvmsg(s->fd, &m, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNREFUSED)
        emit_error(s, "recvmsg", errno);
      break;
    }
    count++;
    if (m.msg_flags & MSG_TRUNC) continue; /* larger than any UDP payload: cannot happen */
    char addr[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
    int port = format_addr(&from, addr, sizeof addr);
    struct timespec ts;
    int have_ts = find_sw_timestamp(&m, &ts);
    napi_handle_scope scope;
    if (napi_open_handle_scope(env, &scope) != napi_ok) break;
    napi_value argv[5];
    void* bdata;
    int ok = napi_create_string_utf8(env, "rx", 2, &argv[0]) == napi_ok &&
             napi_create_buffer_copy(env, (size_t)n, s->buf, &bdata, &argv[1]) == napi_ok &&
             napi_create_string_utf8(env, addr, NAPI_AUTO_LENGTH, &argv[2]) == napi_ok &&
             napi_create_int32(env, port, &argv[3]) == napi_ok;
    if (ok) {
      if (have_ts)
        ok = (argv[4] = ts_to_bigint(env, &ts)) != NULL;
      else
        ok = napi_get_null(env, &argv[4]) == napi_ok;
    }
    int rc = ok ? emit(s, 5, argv) : -1;
    napi_close_handle_scope(env, scope);
    if (rc != 0) break;
  }
  return count;
}

static int drain_unix_rx(udp_sock* s);

static void on_poll(uv_poll_t* h, int status, int events) {
  udp_sock* s = (udp_sock*)h->data;
  if (s->closed) return;
  napi_env env = s->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  int sockerr = 0;
  if (status < 0) {
    /* libuv reports POLLERR (which a queued TX timestamp raises) as an error and stops the
       watcher. Clear any pending socket error, drain both queues, then restart polling. */
    socklen_t sl = sizeof sockerr;
    getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &sockerr, &sl);
  }
  /* AF_UNIX has no error queue: recvmsg(MSG_ERRQUEUE) there would consume a real datagram. */
  int n = s->family == FAMILY_UNIX ? 0 : drain_errqueue(s);
  if (!s->closed) n += s->family == FAMILY_UNIX ? drain_unix_rx(s) : drain_rx(s);
  if (!s->closed && status < 0) {
    if (fcntl(s->fd, F_GETFD) == -1) {
      emit_error(s, "poll", EBADF);
    } else if (n == 0 && sockerr == 0 && ++s->spurious > 1000) {
      emit_error(s, "poll: persistent error condition", EIO);
    } else {
      if (n > 0 || sockerr != 0) s->spurious = 0;
      int r = uv_poll_start(&s->poll, UV_READABLE, on_poll);
      if (r < 0) emit_error(s, "uv_poll_start", -r);
    }
  } else if (status >= 0) {
    s->spurious = 0;
  }
  napi_close_handle_scope(env, scope);
}

static int get_family(napi_env env, napi_value v, int* out) {
  int64_t f;
  if (get_int(env, v, "family", 4, 6, &f) != 0) return -1;
  if (f != 4 && f != 6) {
    throw_range(env, "family must be 4 or 6");
    return -1;
  }
  *out = (int)f;
  return 0;
}

/* udpOpen(family, bindAddress, port, onEvent, opts?) */
/*
 * Shared tail of udpOpen/unixOpen: sets obj.tsMode, the async context and callback, and starts
 * polling the fd. The wrapped finalizer owns s by now, so failures only close it. Returns obj,
 * or NULL with a JS exception pending.
 */
static napi_value sock_start(napi_env env, uv_loop_t* loop, udp_sock* s, int fd, napi_value obj,
                             const char* ts_mode, const char* resource_name, napi_value cb,
                             const char* what) {
  napi_value resource, name, mode;
  if (napi_create_string_utf8(env, ts_mode, NAPI_AUTO_LENGTH, &mode) != napi_ok ||
      napi_set_named_property(env, obj, "tsMode", mode) != napi_ok ||
      napi_create_object(env, &resource) != napi_ok ||
      napi_create_string_utf8(env, resource_name, NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, resource, name, &s->actx) != napi_ok ||
      napi_create_reference(env, cb, 1, &s->cb) != napi_ok) {
    sock_close(s, 0);
    return throw_errno(env, what, ENOMEM);
  }
  int r = uv_poll_init(loop, &s->poll, fd);
  if (r < 0) {
    sock_close(s, 0);
    return throw_errno(env, "uv_poll_init", -r);
  }
  s->poll.data = s;
  s->poll_inited = 1;
  s->poll_closed = 0;
  r = uv_poll_start(&s->poll, UV_READABLE, on_poll);
  if (r < 0) {
    sock_close(s, 0);
    return throw_errno(env, "uv_poll_start", -r);
  }
  if (napi_add_env_cleanup_hook(env, cleanup_hook, s) == napi_ok) s->hook_added = 1;
  return obj;
}

static napi_value UdpOpen(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) return throw_type(env, "udpOpen(family, address, port, onEvent, opts?)");
  int family;
  if (get_family(env, argv[0], &family) != 0) return NULL;
  char addr[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
  if (get_string(env, argv[1], "address", addr, sizeof addr) != 0) return NULL;
  int64_t port;
  if (get_int(env, argv[2], "port", 0, 65535, &port) != 0) return NULL;
  napi_valuetype t;
  CHECK(napi_typeof(env, argv[3], &t));
  if (t != napi_function) return throw_type(env, "onEvent must be a function");
  int reuse_port = 0;
  if (argc >= 5) {
    CHECK(napi_typeof(env, argv[4], &t));
    if (t == napi_object) {
      napi_value v;
      int r = get_opt_prop(env, argv[4], "reusePort", &v);
      if (r < 0) return NULL;
      if (r) {
        CHECK(napi_typeof(env, v, &t));
        if (t != napi_boolean) return throw_type(env, "opts.reusePort must be a boolean");
        bool b;
        CHECK(napi_get_value_bool(env, v, &b));
        reuse_port = b;
      }
    } else if (t != napi_undefined && t != napi_null) {
      return throw_type(env, "opts must be an object");
    }
  }
  struct sockaddr_storage ss;
  socklen_t sl;
  if (parse_addr(env, family, addr, (int)port, &ss, &sl) != 0) return NULL;

  uv_loop_t* loop;
  CHECK(napi_get_uv_event_loop(env, &loop));

  int fd = socket(family == 4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  int one = 1;
  if (family == 6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "setsockopt(IPV6_V6ONLY)", e);
  }
  if (reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "setsockopt(SO_REUSEPORT)", e);
  }
  int ts_mode = TS_NONE;
  int flags = TS_FLAGS;
  if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof flags) == 0)
    ts_mode = TS_FULL;
  else if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one) == 0)
    ts_mode = TS_NS;
  if (bind(fd, (struct sockaddr*)&ss, sl) != 0) {
    int e = errno;
    close(fd);
    char what[128];
    snprintf(what, sizeof what, "bind(%s port %d)", addr, (int)port);
    return throw_errno(env, what, e);
  }

  udp_sock* s = calloc(1, sizeof *s);
  if (s == NULL) {
    close(fd);
    return throw_errno(env, "udpOpen", ENOMEM);
  }
  s->env = env;
  s->fd = fd;
  s->family = family;
  s->ts_mode = ts_mode;
  s->poll_closed = 1;
  napi_value obj;
  if (napi_create_object(env, &obj) != napi_ok ||
      napi_wrap(env, obj, s, sock_finalize, NULL, NULL) != napi_ok) {
    close(fd);
    free(s);
    return throw_errno(env, "udpOpen(wrap)", ENOMEM);
  }
  /* From here on the finalizer owns s; failures just close it. */
  const char* mode_s = ts_mode == TS_FULL ? "timestamping" : ts_mode == TS_NS ? "rx-only" : "none";
  return sock_start(env, loop, s, fd, obj, mode_s, "RubidiumUdpSocket", argv[3], "udpOpen(init)");
}

/* Unwraps a handle; throws unless it is an open socket. */
static udp_sock* get_sock(napi_env env, napi_value v, int allow_closed) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return NULL;
  void* p = NULL;
  if (t != napi_object || napi_unwrap(env, v, &p) != napi_ok || p == NULL) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) {
      napi_value e;
      napi_get_and_clear_last_exception(env, &e);
    }
    throw_type(env, "handle must be a socket handle returned by udpOpen or unixOpen");
    return NULL;
  }
  udp_sock* s = (udp_sock*)p;
  if (s->closed && !allow_closed) {
    napi_throw_error(env, "ERR_SOCKET_CLOSED", "socket is closed");
    return NULL;
  }
  return s;
}

/*
 * udpSend(handle, data, address, port[, stampOffsetNs: bigint]): number (OPT_ID of this
 * datagram, or -1). With stampOffsetNs, bytes 40-47 of data (an NTP packet of at least 48
 * bytes) are overwritten with CLOCK_REALTIME + stampOffsetNs just before sending.
 */
static napi_value UdpSend(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) return throw_type(env, "udpSend(handle, data, address, port)");
  udp_sock* s = get_sock(env, argv[0], 0);
  if (s == NULL) return NULL;
  if (s->family == FAMILY_UNIX) return throw_type(env, "udpSend needs a UDP handle (use unixSend)");
  void* data = NULL;
  size_t len = 0;
  bool is;
  CHECK(napi_is_typedarray(env, argv[1], &is));
  if (is) {
    napi_typedarray_type tt;
    napi_value ab;
    size_t off;
    CHECK(napi_get_typedarray_info(env, argv[1], &tt, &len, &data, &ab, &off));
    if (tt != napi_uint8_array && tt != napi_uint8_clamped_array)
      return throw_type(env, "data must be a Buffer or Uint8Array");
  } else {
    return throw_type(env, "data must be a Buffer or Uint8Array");
  }
  if (len > 65535) return throw_range(env, "data longer than 65535 bytes");
  if (len > 0 && data == NULL) return throw_type(env, "data is detached");
  char addr[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
  if (get_string(env, argv[2], "address", addr, sizeof addr) != 0) return NULL;
  int64_t port;
  if (get_int(env, argv[3], "port", 1, 65535, &port) != 0) return NULL;
  struct sockaddr_storage ss;
  socklen_t sl;
  if (parse_addr(env, s->family, addr, (int)port, &ss, &sl) != 0) return NULL;
  bool stamp = false;
  int64_t stamp_offset = 0;
  if (argc >= 5) {
    napi_valuetype t;
    CHECK(napi_typeof(env, argv[4], &t));
    if (t == napi_bigint) {
      bool lossless;
      CHECK(napi_get_value_bigint_int64(env, argv[4], &stamp_offset, &lossless));
      if (!lossless) return throw_range(env, "stampOffsetNs out of range");
      if (len < 48) return throw_range(env, "stampOffsetNs needs an NTP packet of at least 48 bytes");
      stamp = true;
    } else if (t != napi_undefined && t != napi_null) {
      return throw_type(env, "stampOffsetNs must be a bigint");
    }
  }
  if (stamp) rb_stamp_ntp((uint8_t*)data + 40, stamp_offset);
  ssize_t n;
  do {
    n = sendto(s->fd, data, len, MSG_DONTWAIT, (struct sockaddr*)&ss, sl);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return throw_errno(env, "sendto", errno);
  double id = -1;
  if (s->ts_mode == TS_FULL) id = (double)(s->tx_counter++);
  napi_value out;
  CHECK(napi_create_double(env, id, &out));
  return out;
}

static napi_value UdpLocalPort(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) return throw_type(env, "udpLocalPort(handle)");
  udp_sock* s = get_sock(env, argv[0], 0);
  if (s == NULL) return NULL;
  if (s->family == FAMILY_UNIX) return throw_type(env, "udpLocalPort needs a UDP handle");
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  if (getsockname(s->fd, (struct sockaddr*)&ss, &sl) != 0)
    return throw_errno(env, "getsockname", errno);
  char tmp[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
  napi_value out;
  CHECK(napi_create_int32(env, format_addr(&ss, tmp, sizeof tmp), &out));
  return out;
}

static napi_value UdpClose(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) return throw_type(env, "udpClose(handle)");
  udp_sock* s = get_sock(env, argv[0], 1);
  if (s == NULL) return NULL;
  sock_close(s, 0);
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

/* udpSetRef(handle, ref: boolean): whether the open socket keeps the event loop alive. */
static napi_value UdpSetRef(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) return throw_type(env, "udpSetRef(handle, ref)");
  udp_sock* s = get_sock(env, argv[0], 0);
  if (s == NULL) return NULL;
  napi_valuetype t;
  CHECK(napi_typeof(env, argv[1], &t));
  if (t != napi_boolean) return throw_type(env, "ref must be a boolean");
  bool b;
  CHECK(napi_get_value_bool(env, argv[1], &b));
  if (b)
    uv_ref((uv_handle_t*)&s->poll);
  else
    uv_unref((uv_handle_t*)&s->poll);
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}


/* ------------------------------------------------------------------------------------------ */
/* AF_UNIX datagram sockets                                                                    */

/*
 * Builds a sockaddr_un from a JS string: a filesystem path, or "@name" for the Linux abstract
 * namespace (sun_path[0] = 0, the name is the rest of the address, not NUL-terminated).
 */
static int make_unix_addr(napi_env env, napi_value v, const char* what, struct sockaddr_un* a,
                          socklen_t* len) {
  char msg[200];
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_string) {
    snprintf(msg, sizeof msg, "%s must be a string", what);
    throw_type(env, msg);
    return -1;
  }
  char buf[sizeof a->sun_path + 2];
  size_t n = 0;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &n) != napi_ok) return -1;
  /* A path needs its terminating NUL inside sun_path; an abstract name ('@' dropped) does not. */
  if (n == 0) {
    snprintf(msg, sizeof msg, "%s is empty", what);
    throw_type(env, msg);
    return -1;
  }
  if (n > sizeof a->sun_path) goto too_long;
  if (napi_get_value_string_utf8(env, v, buf, sizeof buf, &n) != napi_ok) return -1;
  switch (rb_make_unix_addr(buf, n, a, len)) {
    case RB_UNIX_OK:
      return 0;
    case RB_UNIX_ABSTRACT_EMPTY:
      snprintf(msg, sizeof msg, "%s: abstract socket name '@' is empty", what);
      throw_type(env, msg);
      return -1;
    case RB_UNIX_NUL:
      snprintf(msg, sizeof msg, "%s contains a NUL character", what);
      throw_type(env, msg);
      return -1;
    default:
      goto too_long;
  }
too_long:
  /* buf may be unread here: ask the string itself whether it is an abstract name. */
  {
    char first[2] = {0, 0};
    size_t l1 = 0;
    napi_get_value_string_utf8(env, v, first, sizeof first, &l1);
    snprintf(msg, sizeof msg, "%s is too long for a Unix socket address (%zu bytes, at most %zu)",
             what, n, first[0] == '@' ? sizeof a->sun_path : sizeof a->sun_path - 1);
  }
  throw_range(env, msg);
  return -1;
}

/* Sender address of a received datagram as a JS string: path, "@name", or "" (unbound). */
static napi_value unix_addr_to_js(napi_env env, const struct sockaddr_un* a, socklen_t len) {
  napi_value out = NULL;
  char buf[sizeof a->sun_path + 2];
  size_t n = rb_unix_addr_text(a, len, buf);
  napi_create_string_utf8(env, buf, n, &out); /* may contain NULs: length is explicit */
  return out;
}

static int drain_unix_rx(udp_sock* s) {
  napi_env env = s->env;
  int count = 0;
  while (!s->closed && count < DRAIN_BATCH) {
    struct sockaddr_un from;
    struct iovec iov = {s->buf, sizeof s->buf};
    struct msghdr m;
    memset(&m, 0, sizeof m);
    memset(&from, 0, sizeof from);
    m.msg_name = &from;
    m.msg_namelen = sizeof from;
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    ssize_t n = recvmsg(s->fd, &m, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) emit_error(s, "recvmsg", errno);
      break;
    }
    count++;
    if (m.msg_flags & MSG_TRUNC) {
      /* Larger than the receive buffer: the kernel dropped the rest; say so, deliver nothing. */
      emit_error(s, "recvmsg: datagram larger than 65536 bytes dropped", EMSGSIZE);
      continue;
    }
    napi_handle_scope scope;
    if (napi_open_handle_scope(env, &scope) != napi_ok) break;
    napi_value argv[3];
    void* bdata;
    int ok = napi_create_string_utf8(env, "rx", 2, &argv[0]) == napi_ok &&
             napi_create_buffer_copy(env, (size_t)n, s->buf, &bdata, &argv[1]) == napi_ok &&
             (argv[2] = unix_addr_to_js(env, &from, m.msg_namelen)) != NULL;
    int rc = ok ? emit(s, 3, argv) : -1;
    napi_close_handle_scope(env, scope);
    if (rc != 0) break;
  }
  return count;
}

/*
 * unixOpen(path: string | null, onEvent): handle. Non-blocking, close-on-exec AF_UNIX SOCK_DGRAM
 * socket, bound to `path` ('@name' = abstract) or unbound when path is null/''. The caller
 * removes a stale socket file first and sets its mode. Events: ('rx', Buffer, fromPath) and
 * ('error', message).
 */
static napi_value UnixOpen(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) return throw_type(env, "unixOpen(path | null, onEvent)");
  napi_valuetype t;
  CHECK(napi_typeof(env, argv[0], &t));
  int bind_it = 0;
  struct sockaddr_un sa;
  socklen_t sl = 0;
  if (t == napi_string) {
    size_t n = 0;
    CHECK(napi_get_value_string_utf8(env, argv[0], NULL, 0, &n));
    if (n > 0) {
      if (make_unix_addr(env, argv[0], "path", &sa, &sl) != 0) return NULL;
      bind_it = 1;
    }
  } else if (t != napi_null && t != napi_undefined) {
    return throw_type(env, "path must be a string or null");
  }
  CHECK(napi_typeof(env, argv[1], &t));
  if (t != napi_function) return throw_type(env, "onEvent must be a function");

  uv_loop_t* loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket(AF_UNIX)", errno);
  if (bind_it && bind(fd, (struct sockaddr*)&sa, sl) != 0) {
    int e = errno;
    close(fd);
    char what[sizeof sa.sun_path + 32];
    if (sa.sun_path[0] == 0)
      snprintf(what, sizeof what, "bind(@%.*s)", (int)(sl - offsetof(struct sockaddr_un, sun_path) - 1),
               sa.sun_path + 1);
    else
      snprintf(what, sizeof what, "bind(%s)", sa.sun_path);
    return throw_errno(env, what, e);
  }
  udp_sock* s = calloc(1, sizeof *s);
  if (s == NULL) {
    close(fd);
    return throw_errno(env, "unixOpen", ENOMEM);
  }
  s->env = env;
  s->fd = fd;
  s->family = FAMILY_UNIX;
  s->ts_mode = TS_NONE;
  s->poll_closed = 1;
  napi_value obj;
  if (napi_create_object(env, &obj) != napi_ok ||
      napi_wrap(env, obj, s, sock_finalize, NULL, NULL) != napi_ok) {
    close(fd);
    free(s);
    return throw_errno(env, "unixOpen(wrap)", ENOMEM);
  }
  return sock_start(env, loop, s, fd, obj, "none", "RubidiumUnixDgramSocket", argv[1], "unixOpen(init)");
}

/* unixSend(handle, data, toPath): sendto with MSG_DONTWAIT; kernel refusals throw with `code`. */
static napi_value UnixSend(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) return throw_type(env, "unixSend(handle, data, toPath)");
  udp_sock* s = get_sock(env, argv[0], 0);
  if (s == NULL) return NULL;
  if (s->family != FAMILY_UNIX) return throw_type(env, "unixSend needs a handle from unixOpen");
  bool is = false;
  void* data = NULL;
  size_t len = 0;
  CHECK(napi_is_typedarray(env, argv[1], &is));
  if (!is) return throw_type(env, "data must be a Buffer or Uint8Array");
  napi_typedarray_type tt;
  napi_value ab;
  size_t off;
  CHECK(napi_get_typedarray_info(env, argv[1], &tt, &len, &data, &ab, &off));
  if (tt != napi_uint8_array && tt != napi_uint8_clamped_array)
    return throw_type(env, "data must be a Buffer or Uint8Array");
  if (len > MAX_DGRAM) return throw_range(env, "data longer than 65536 bytes");
  if (len > 0 && data == NULL) return throw_type(env, "data is detached");
  struct sockaddr_un sa;
  socklen_t sl;
  if (make_unix_addr(env, argv[2], "toPath", &sa, &sl) != 0) return NULL;
  ssize_t n;
  do {
    n = sendto(s->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr*)&sa, sl);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    char what[sizeof sa.sun_path + 32];
    if (sa.sun_path[0] == 0)
      snprintf(what, sizeof what, "sendto(@%.*s)", (int)(sl - offsetof(struct sockaddr_un, sun_path) - 1),
               sa.sun_path + 1);
    else
      snprintf(what, sizeof what, "sendto(%s)", sa.sun_path);
    return throw_errno(env, what, errno);
  }
  napi_value out;
  CHECK(napi_create_double(env, (double)n, &out));
  return out;
}

/* ------------------------------------------------------------------------------------------ */
/* Privileges                                                                                  */

/*
 * dropPrivileges(uid, gid, keepCaps: number[]): switches the whole process (glibc applies
 * setgroups/setgid/setuid to every thread) to uid/gid with no supplementary groups. The listed
 * capabilities (e.g. 25 = CAP_SYS_TIME) stay permitted and effective on the calling (main)
 * thread through PR_SET_KEEPCAPS + capset, as chronyd keeps CAP_SYS_TIME; all others are gone.
 * Returns the effective capability mask afterwards as a bigint.
 */
static napi_value DropPrivileges(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) return throw_type(env, "dropPrivileges(uid, gid, keepCaps)");
  int64_t uid, gid;
  if (get_int(env, argv[0], "uid", 0, 0xfffffffeLL, &uid) != 0) return NULL;
  if (get_int(env, argv[1], "gid", 0, 0xfffffffeLL, &gid) != 0) return NULL;
  bool is_array = false;
  CHECK(napi_is_array(env, argv[2], &is_array));
  if (!is_array) return throw_type(env, "keepCaps must be an array of capability numbers");
  uint32_t ncaps = 0;
  CHECK(napi_get_array_length(env, argv[2], &ncaps));
  if (ncaps > 64) return throw_range(env, "keepCaps has more than 64 entries");
  uint64_t mask = 0;
  for (uint32_t i = 0; i < ncaps; i++) {
    napi_value e;
    int64_t cap;
    CHECK(napi_get_element(env, argv[2], i, &e));
    if (get_int(env, e, "capability", 0, 63, &cap) != 0) return NULL;
    mask |= (uint64_t)1 << cap;
  }
  if (mask != 0 && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0)
    return throw_errno(env, "prctl(PR_SET_KEEPCAPS)", errno);
  if (setgroups(0, NULL) != 0) return throw_errno(env, "setgroups", errno);
  if (setgid((gid_t)gid) != 0) return throw_errno(env, "setgid", errno);
  if (setuid((uid_t)uid) != 0) return throw_errno(env, "setuid", errno);
  if (getuid() != (uid_t)uid || geteuid() != (uid_t)uid || getgid() != (gid_t)gid)
    return throw_errno(env, "setuid (ids did not change)", EPERM);
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  data[0].effective = data[0].permitted = (uint32_t)mask;
  data[1].effective = data[1].permitted = (uint32_t)(mask >> 32);
  if (syscall(SYS_capset, &hdr, data) != 0) return throw_errno(env, "capset", errno);
  if (mask != 0) prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
  memset(data, 0, sizeof data);
  if (syscall(SYS_capget, &hdr, data) != 0) return throw_errno(env, "capget", errno);
  uint64_t eff = (uint64_t)data[0].effective | ((uint64_t)data[1].effective << 32);
  napi_value out;
  CHECK(napi_create_bigint_uint64(env, eff, &out));
  return out;
}
static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"clockGettime", NULL, ClockGettime, NULL, NULL, NULL, napi_enumerable, NULL},
      {"adjtimeRead", NULL, AdjtimeRead, NULL, NULL, NULL, napi_enumerable, NULL},
      {"adjtime", NULL, Adjtime, NULL, NULL, NULL, napi_enumerable, NULL},
      {"udpOpen", NULL, UdpOpen, NULL, NULL, NULL, napi_enumerable, NULL},
      {"udpSend", NULL, UdpSend, NULL, NULL, NULL, napi_enumerable, NULL},
      {"udpLocalPort", NULL, UdpLocalPort, NULL, NULL, NULL, napi_enumerable, NULL},
      {"udpClose", NULL, UdpClose, NULL, NULL, NULL, napi_enumerable, NULL},
      {"udpSetRef", NULL, UdpSetRef, NULL, NULL, NULL, napi_enumerable, NULL},
      {"unixOpen", NULL, UnixOpen, NULL, NULL, NULL, napi_enumerable, NULL},
      {"unixSend", NULL, UnixSend, NULL, NULL, NULL, napi_enumerable, NULL},
      /* Same handle type: closing and ref/unref work as for UDP sockets. */
      {"unixClose", NULL, UdpClose, NULL, NULL, NULL, napi_enumerable, NULL},
      {"unixSetRef", NULL, UdpSetRef, NULL, NULL, NULL, napi_enumerable, NULL},
      {"dropPrivileges", NULL, DropPrivileges, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok)
    return NULL;
  if (rb_batch_register(env, exports) != napi_ok || rb_aead_register(env, exports) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
