/*
 * Batched UDP sockets for the server hot path (udpBatch* exports; README "Batched sockets").
 *
 * One handle owns a non-blocking UDP socket and a set of preallocated slot buffers that JS sees
 * as typed arrays over a single external ArrayBuffer:
 *   - receive: recvmmsg(MSG_DONTWAIT) straight into rxData slots, in rounds of `batch`, with the
 *     kernel software RX stamp of every datagram (SO_TIMESTAMPING, else SO_TIMESTAMPNS, else
 *     CLOCK_REALTIME after the call); 'rx' is emitted once per round, never per datagram;
 *   - send: one sendmsg per tx slot, so a TX_STAMP slot gets CLOCK_REALTIME written into its NTP
 *     transmit field right before its own system call; TX_WANT_TIMESTAMP asks the kernel for a
 *     software TX stamp of that datagram only (per-message SO_TIMESTAMPING control message);
 *   - TX stamps: the error queue is drained with recvmmsg(MSG_ERRQUEUE) into txStampId/Time;
 *   - steering: a classic BPF program (SO_ATTACH_REUSEPORT_CBPF) picks the socket of a
 *     SO_REUSEPORT group from a hash of the source address, so one client always meets the
 *     same worker.
 * Nothing is allocated per datagram, in C or in JS.
 *
 * Kernel behaviour this relies on, checked on Linux 6.18 by test/unit/batch-udp.test.ts:
 *   - the OPT_ID key advances only for datagrams whose sendmsg requested a TX stamp (and not
 *     for failed sends), so the addon's counter gives each requesting slot its id: 0, 1, 2, ...
 *     per socket, wrapping at 2^32 (stored as int32; the one id 0xffffffff reads as -1, "none");
 *   - a queued TX stamp raises POLLERR; with SO_SELECT_ERR_QUEUE it also raises POLLPRI, which
 *     libuv passes on as UV_PRIORITIZED instead of stopping the watcher on "POLLERR"; without
 *     it (older kernels) the watcher is restarted after draining. Either way one wake-up drains
 *     a whole batch of stamps and an empty, idle socket does not wake;
 *   - for UDP the reuseport program sees the packet from the UDP payload on; the IP source
 *     address is reached at SKF_NET_OFF + 12 (IPv4) or + 8..23 (IPv6). Group members are
 *     indexed in bind order; when one closes, the last one takes its index.
 * IPv6 link-local peers: the address words carry no scope, so answers go out on the bind
 * address's scope, else on the scope of the last link-local datagram received.
 */
#include "internal.h"
#include "parse.h"
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <linux/filter.h>
#include <linux/net_tstamp.h>
#include <math.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH_MAX 256
#define BATCH_DEFAULT 64
#define SLOT_MIN 48
#define SLOT_MAX 65536
#define SLOT_DEFAULT 1024
#define STEER_MAX 1024
#define RCVBUF_MAX (256 << 20)
#define META_INTS 8
/* recvmmsg rounds per wake-up before yielding to the event loop (epoll is level-triggered). */
#define ROUNDS_MAX 16
/* A software RX stamp needs CMSG_SPACE(48) = 64 bytes; the error queue adds sock_extended_err
   plus the offender address (IPv6: 16 + 16 + 28, padded). */
#define RX_CTRL_BYTES 128
#define ERR_CTRL_BYTES 256
/* Consecutive wake-ups that found nothing to do before the socket gives up (cannot happen
   unless the kernel misreports readiness; the alternative would be a busy loop). */
#define SPURIOUS_MAX 1000

enum { M_LEN, M_FAMILY, M_PORT, M_A0, M_A1, M_A2, M_A3, M_FLAGS };
enum { RX_KERNEL_STAMP = 1, RX_TRUNCATED = 2 };
enum { TX_STAMP = 1, TX_WANT_TIMESTAMP = 2 };
enum { TS_NONE = 0, TS_RX = 1, TS_FULL = 2 };

/* Socket-wide flags: RX stamps on every datagram; TX stamps only where a message asks
   (TX_SOFTWARE is left out on purpose), counted by OPT_ID, delivered without payload. */
#define BATCH_TS_FLAGS                                                                       \
  (SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE | SOF_TIMESTAMPING_OPT_ID |      \
   SOF_TIMESTAMPING_OPT_TSONLY)

/* Marks handle objects made here, so no other object (a udpOpen handle, a forgery) is unwrapped. */
static const napi_type_tag BATCH_TAG = {0x7262617463680001ULL, 0x9d3c5a61e0f24b17ULL};
/* Non-enumerable, read-only property of the handle holding the napi_external of the socket. */
#define NATIVE_KEY "__rubidiumBatch"

typedef union {
  char buf[RX_CTRL_BYTES];
  struct cmsghdr align;
} rx_ctrl;

typedef union {
  char buf[ERR_CTRL_BYTES];
  struct cmsghdr align;
} err_ctrl;

typedef struct batch_sock {
  napi_env env;
  uv_poll_t poll;
  int fd;
  int family;
  int ts_mode;
  int err_pri;        /* SO_SELECT_ERR_QUEUE: a queued TX stamp shows as UV_PRIORITIZED */
  int closed;         /* user-visible: no more use */
  int poll_inited;    /* uv_poll_init succeeded: needs uv_close */
  int poll_closed;    /* uv_close callback ran (or never needed) */
  int finalized;      /* the handle's napi_external was collected */
  int block_released; /* the slot ArrayBuffer was collected */
  int hook_added;
  int spurious;
  int batch;
  size_t slot_bytes;
  uint32_t bound_scope;   /* scope of a link-local bind address, else 0 */
  uint32_t rx_scope;      /* scope of the last link-local sender seen */
  uint32_t tx_counter;    /* mirrors the kernel's OPT_ID key */
  napi_ref cb;
  napi_async_context actx;

  /* The JS-visible arrays: views into `block`. */
  void* block;
  size_t block_size;
  double* rx_time;
  double* tx_stamp_time;
  double* tx_offset_ns;
  int32_t* rx_meta;
  int32_t* tx_meta;
  int32_t* tx_id;
  int32_t* tx_stamp_id;
  uint8_t* rx_data;
  uint8_t* tx_data;

  /* recvmmsg state, preallocated at open; rx iovecs point into rx_data. */
  struct mmsghdr* rx_msgs;
  struct iovec* rx_iov;
  struct sockaddr_storage* rx_names;
  rx_ctrl* rx_ctrls;
  struct mmsghdr* err_msgs;
  err_ctrl* err_ctrls;
  struct iovec err_iov;
  uint8_t err_dummy[64]; /* OPT_TSONLY: error-queue messages carry no payload */

  double st_rx_datagrams, st_rx_calls, st_rx_truncated, st_tx_datagrams, st_tx_errors,
      st_tx_eagain, st_tx_stamps, st_wakeups;
} batch_sock;

/* ------------------------------------------------------------------------------------------ */
/* Errors and arguments (same conventions as rubidium.c: TypeError / RangeError / Error+code).  */


/* Optional property: 1 present (value in *out), 0 absent or undefined, -1 exception. */
static int get_opt(napi_env env, napi_value obj, const char* key, napi_value* out) {
  bool has = false;
  if (napi_has_named_property(env, obj, key, &has) != napi_ok) return -1;
  if (!has) return 0;
  if (napi_get_named_property(env, obj, key, out) != napi_ok) return -1;
  napi_valuetype t;
  if (napi_typeof(env, *out, &t) != napi_ok) return -1;
  return t == napi_undefined ? 0 : 1;
}

static int get_opt_int(napi_env env, napi_value obj, const char* key, int64_t min, int64_t max,
                       int64_t* inout) {
  napi_value v;
  int r = get_opt(env, obj, key, &v);
  if (r <= 0) return r;
  char name[48];
  snprintf(name, sizeof name, "opts.%s", key);
  return get_int(env, v, name, min, max, inout);
}

/* ------------------------------------------------------------------------------------------ */
/* Lifetime. Memory goes only when the uv_poll handle is closed, the handle's external is      */
/* finalized and the slot ArrayBuffer is collected: JS may keep a typed array after dropping    */
/* the handle, and the poll may fire until closed.                                              */

static void sock_free(batch_sock* s) {
  free(s->rx_msgs);
  free(s->rx_iov);
  free(s->rx_names);
  free(s->rx_ctrls);
  free(s->err_msgs);
  free(s->err_ctrls);
  free(s->block);
  free(s);
}

static void sock_maybe_free(batch_sock* s) {
  if (s->finalized && s->poll_closed && s->block_released) sock_free(s);
}

static void on_poll_closed(uv_handle_t* h) {
  batch_sock* s = (batch_sock*)h->data;
  s->poll_closed = 1;
  sock_maybe_free(s);
}

static void cleanup_hook(void* arg);

/* Releases the socket, poll, callback and async context; `in_hook`: from the env cleanup hook. */
static void sock_close(batch_sock* s, int in_hook) {
  if (s->closed) return;
  s->closed = 1;
  if (s->hook_added && !in_hook) napi_remove_env_cleanup_hook(s->env, cleanup_hook, s);
  s->hook_added = 0;
  /* uv_close stops polling synchronously; only then close the fd. */
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
  if (s->actx != NULL && !in_hook) napi_async_destroy(s->env, s->actx);
  s->actx = NULL;
}

static void cleanup_hook(void* arg) { sock_close((batch_sock*)arg, 1); }

static void handle_finalize(napi_env env, void* data, void* hint) {
  batch_sock* s = (batch_sock*)data;
  sock_close(s, 0);
  s->finalized = 1;
  sock_maybe_free(s);
}

static void block_finalize(napi_env env, void* data, void* hint) {
  batch_sock* s = (batch_sock*)hint;
  s->block_released = 1;
  sock_maybe_free(s);
}

/* Unwraps a handle made by udpBatchOpen; throws otherwise (or if closed, unless allowed). */
static batch_sock* get_batch(napi_env env, napi_value v, int allow_closed) {
  napi_valuetype t;
  bool tagged = false;
  void* p = NULL;
  napi_value ext;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_object ||
      napi_check_object_type_tag(env, v, &BATCH_TAG, &tagged) != napi_ok || !tagged ||
      napi_get_named_property(env, v, NATIVE_KEY, &ext) != napi_ok ||
      napi_get_value_external(env, ext, &p) != napi_ok || p == NULL) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) {
      napi_value e;
      napi_get_and_clear_last_exception(env, &e);
    }
    throw_type(env, "handle must be a handle returned by udpBatchOpen");
    return NULL;
  }
  batch_sock* s = (batch_sock*)p;
  if (s->closed && !allow_closed) {
    napi_throw_error(env, "ERR_SOCKET_CLOSED", "socket is closed");
    return NULL;
  }
  return s;
}

/* ------------------------------------------------------------------------------------------ */
/* Events                                                                                      */

/* onEvent(kind, arg). Returns 0, or -1 if the callback threw (reported as uncaught). */
static int emit(batch_sock* s, const char* kind, napi_value arg) {
  napi_env env = s->env;
  napi_value cb, recv, result, argv[2];
  if (s->cb == NULL) return -1;
  if (napi_get_reference_value(env, s->cb, &cb) != napi_ok || cb == NULL) return -1;
  if (napi_get_global(env, &recv) != napi_ok) return -1;
  if (napi_create_string_latin1(env, kind, NAPI_AUTO_LENGTH, &argv[0]) != napi_ok) return -1;
  argv[1] = arg;
  if (napi_make_callback(env, s->actx, recv, cb, 2, argv, &result) != napi_ok) {
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

static int emit_count(batch_sock* s, const char* kind, int n) {
  napi_value arg;
  if (napi_create_int32(s->env, n, &arg) != napi_ok) return -1;
  return emit(s, kind, arg);
}

static void emit_error(batch_sock* s, const char* what, int err) {
  char msg[200];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_value arg;
  if (napi_create_string_utf8(s->env, msg, NAPI_AUTO_LENGTH, &arg) == napi_ok)
    emit(s, "error", arg);
}

/* ------------------------------------------------------------------------------------------ */
/* Receive                                                                                     */

/* Address bytes as big-endian 32-bit words (IPv4: a0 only); returns the family 4/6, or 0. */
static int addr_words(const struct sockaddr_storage* ss, int32_t* w, int* port, uint32_t* scope) {
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in* a = (const struct sockaddr_in*)ss;
    w[0] = (int32_t)ntohl(a->sin_addr.s_addr);
    w[1] = w[2] = w[3] = 0;
    *port = ntohs(a->sin_port);
    return 4;
  }
  if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6* a = (const struct sockaddr_in6*)ss;
    for (int k = 0; k < 4; k++) {
      uint32_t be;
      memcpy(&be, a->sin6_addr.s6_addr + 4 * k, 4);
      w[k] = (int32_t)ntohl(be);
    }
    *port = ntohs(a->sin6_port);
    if (a->sin6_scope_id != 0) *scope = a->sin6_scope_id;
    return 6;
  }
  w[0] = w[1] = w[2] = w[3] = 0;
  *port = 0;
  return 0;
}

/* Reads up to ROUNDS_MAX rounds of datagrams; 'rx' after each. Returns datagrams read. */
static int drain_rx(batch_sock* s) {
  int total = 0;
  for (int round = 0; round < ROUNDS_MAX && !s->closed; round++) {
    for (int i = 0; i < s->batch; i++) {
      struct msghdr* h = &s->rx_msgs[i].msg_hdr;
      h->msg_namelen = sizeof s->rx_names[i];
      h->msg_control = s->ts_mode != TS_NONE ? s->rx_ctrls[i].buf : NULL;
      h->msg_controllen = s->ts_mode != TS_NONE ? sizeof s->rx_ctrls[i].buf : 0;
      h->msg_flags = 0;
    }
    int n = recvmmsg(s->fd, s->rx_msgs, (unsigned)s->batch, MSG_DONTWAIT, NULL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNREFUSED)
        emit_error(s, "recvmmsg", errno);
      break;
    }
    s->st_rx_calls++;
    if (n == 0) break;
    struct timespec now = {0, 0};
    int have_now = 0;
    for (int i = 0; i < n; i++) {
      struct msghdr* h = &s->rx_msgs[i].msg_hdr;
      int32_t* m = s->rx_meta + (size_t)i * META_INTS;
      double* t = s->rx_time + (size_t)i * 2;
      unsigned len = s->rx_msgs[i].msg_len;
      int flags = 0;
      if (len > s->slot_bytes) len = (unsigned)s->slot_bytes;
      if (h->msg_flags & MSG_TRUNC) {
        flags |= RX_TRUNCATED;
        s->st_rx_truncated++;
      }
      int port = 0;
      uint32_t scope = 0;
      if (h->msg_namelen > sizeof s->rx_names[i]) h->msg_namelen = 0;
      m[M_LEN] = (int32_t)len;
      m[M_FAMILY] = addr_words(&s->rx_names[i], m + M_A0, &port, &scope);
      m[M_PORT] = port;
      if (scope != 0) s->rx_scope = scope;
      struct timespec ts;
      if (s->ts_mode != TS_NONE && rb_find_sw_timestamp(h, &ts)) {
        flags |= RX_KERNEL_STAMP;
      } else {
        if (!have_now) {
          clock_gettime(CLOCK_REALTIME, &now);
          have_now = 1;
        }
        ts = now;
      }
      m[M_FLAGS] = flags;
      t[0] = (double)ts.tv_sec;
      t[1] = (double)ts.tv_nsec;
    }
    total += n;
    s->st_rx_datagrams += n;
    if (emit_count(s, "rx", n) != 0) break;
    if (n < s->batch) break; /* the queue is empty now */
  }
  return total;
}

/* Drains TX timestamps from the error queue; 'tx' after each round. Returns messages read. */
static int drain_errqueue(batch_sock* s) {
  int total = 0;
  for (int round = 0; round < ROUNDS_MAX && !s->closed; round++) {
    for (int i = 0; i < s->batch; i++) {
      struct msghdr* h = &s->err_msgs[i].msg_hdr;
      h->msg_controllen = sizeof s->err_ctrls[i].buf;
      h->msg_flags = 0;
    }
    int n = recvmmsg(s->fd, s->err_msgs, (unsigned)s->batch, MSG_ERRQUEUE | MSG_DONTWAIT, NULL);
    if (n < 0) {
      if (errno == EINTR) continue;
      break; /* EAGAIN: queue empty */
    }
    if (n == 0) break;
    total += n;
    int k = 0;
    for (int i = 0; i < n; i++) {
      uint32_t id;
      struct timespec ts;
      if (!rb_parse_tx_stamp(&s->err_msgs[i].msg_hdr, &id, &ts)) continue; /* not a TX stamp */
      s->tx_stamp_id[k] = (int32_t)id;
      s->tx_stamp_time[2 * k] = (double)ts.tv_sec;
      s->tx_stamp_time[2 * k + 1] = (double)ts.tv_nsec;
      k++;
    }
    s->st_tx_stamps += k;
    if (k > 0 && emit_count(s, "tx", k) != 0) break;
    if (n < s->batch) break;
  }
  return total;
}

static void on_poll(uv_poll_t* h, int status, int events);

/* Gives up on a socket whose readiness never leads anywhere, rather than spinning. */
static int note_idle_wakeup(batch_sock* s, int progress) {
  if (progress) {
    s->spurious = 0;
    return 0;
  }
  if (++s->spurious <= SPURIOUS_MAX) return 0;
  uv_poll_stop(&s->poll);
  emit_error(s, "poll: persistent error condition, socket stopped", EIO);
  return -1;
}

static void on_poll(uv_poll_t* h, int status, int events) {
  batch_sock* s = (batch_sock*)h->data;
  if (s->closed) return;
  napi_env env = s->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  s->st_wakeups++;
  if (status < 0) {
    /* Without SO_SELECT_ERR_QUEUE, libuv reports POLLERR (a queued TX stamp) as an error and
       stops the watcher: clear SO_ERROR, drain both queues, start polling again. */
    int sockerr = 0;
    socklen_t sl = sizeof sockerr;
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &sockerr, &sl) != 0 && errno == EBADF) {
      emit_error(s, "poll", EBADF);
    } else {
      int n = drain_errqueue(s);
      if (!s->closed) n += drain_rx(s);
      if (!s->closed && note_idle_wakeup(s, n > 0 || sockerr != 0) == 0) {
        int r = uv_poll_start(&s->poll, UV_READABLE | (s->err_pri ? UV_PRIORITIZED : 0), on_poll);
        if (r < 0) emit_error(s, "uv_poll_start", -r);
      }
    }
  } else {
    /* With SO_SELECT_ERR_QUEUE a non-empty error queue (or a socket error) raises POLLPRI. */
    int progress = 0;
    if (events & UV_PRIORITIZED) {
      if (drain_errqueue(s) > 0) {
        progress = 1;
      } else if (!s->closed) {
        int sockerr = 0;
        socklen_t sl = sizeof sockerr;
        getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &sockerr, &sl); /* clears it */
        progress = sockerr != 0;
      }
    }
    if (!s->closed && (events & UV_READABLE)) progress |= drain_rx(s) > 0;
    if (!s->closed) note_idle_wakeup(s, progress || (events & UV_PRIORITIZED) == 0);
  }
  napi_close_handle_scope(env, scope);
}

/* ------------------------------------------------------------------------------------------ */
/* Open                                                                                        */

/*
 * Classic BPF for SO_ATTACH_REUSEPORT_CBPF: index = hash(source address) % n. For UDP the
 * program sees the packet from the UDP payload on, so the IP header is reached through the
 * SKF_NET_OFF negative offset. IPv6 folds the 4 address words with XOR. The mix (xor-shift and
 * multiply, 32-bit) spreads neighbouring addresses such as 10.0.0.1, 10.0.0.2 evenly.
 */
static int attach_steering(int fd, int family, uint32_t n) {
  struct sock_filter code[24];
  int k = 0;
#define OP(c, v) code[k++] = (struct sock_filter)BPF_STMT((c), (v))
  if (family == 4) {
    OP(BPF_LD | BPF_W | BPF_ABS, (uint32_t)(SKF_NET_OFF + 12));
  } else {
    OP(BPF_LD | BPF_W | BPF_ABS, (uint32_t)(SKF_NET_OFF + 8));
    for (int w = 1; w < 4; w++) {
      OP(BPF_MISC | BPF_TAX, 0);
      OP(BPF_LD | BPF_W | BPF_ABS, (uint32_t)(SKF_NET_OFF + 8 + 4 * w));
      OP(BPF_ALU | BPF_XOR | BPF_X, 0);
    }
  }
  for (int r = 0; r < 2; r++) {
    OP(BPF_MISC | BPF_TAX, 0);
    OP(BPF_ALU | BPF_RSH | BPF_K, 16);
    OP(BPF_ALU | BPF_XOR | BPF_X, 0);
    OP(BPF_ALU | BPF_MUL | BPF_K, 0x45d9f3bu);
  }
  OP(BPF_MISC | BPF_TAX, 0);
  OP(BPF_ALU | BPF_RSH | BPF_K, 16);
  OP(BPF_ALU | BPF_XOR | BPF_X, 0);
  OP(BPF_ALU | BPF_MOD | BPF_K, n);
  OP(BPF_RET | BPF_A, 0);
#undef OP
  struct sock_fprog prog = {(unsigned short)k, code};
  return setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog);
}

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

/* Preallocates the slot block and the recvmmsg structures; 0, or -1 (out of memory). */
static int alloc_buffers(batch_sock* s) {
  size_t b = (size_t)s->batch, sb = s->slot_bytes;
  size_t off_rx_time = 0;
  size_t off_tx_stamp_time = align64(off_rx_time + b * 2 * sizeof(double));
  size_t off_tx_offset = align64(off_tx_stamp_time + b * 2 * sizeof(double));
  size_t off_rx_meta = align64(off_tx_offset + sizeof(double));
  size_t off_tx_meta = align64(off_rx_meta + b * META_INTS * sizeof(int32_t));
  size_t off_tx_id = align64(off_tx_meta + b * META_INTS * sizeof(int32_t));
  size_t off_tx_stamp_id = align64(off_tx_id + b * sizeof(int32_t));
  size_t off_rx_data = align64(off_tx_stamp_id + b * sizeof(int32_t));
  size_t off_tx_data = align64(off_rx_data + b * sb);
  size_t total = align64(off_tx_data + b * sb);
  s->block = aligned_alloc(64, total);
  s->rx_msgs = calloc(b, sizeof *s->rx_msgs);
  s->rx_iov = calloc(b, sizeof *s->rx_iov);
  s->rx_names = calloc(b, sizeof *s->rx_names);
  s->rx_ctrls = calloc(b, sizeof *s->rx_ctrls);
  s->err_msgs = calloc(b, sizeof *s->err_msgs);
  s->err_ctrls = calloc(b, sizeof *s->err_ctrls);
  if (!s->block || !s->rx_msgs || !s->rx_iov || !s->rx_names || !s->rx_ctrls || !s->err_msgs ||
      !s->err_ctrls)
    return -1;
  memset(s->block, 0, total);
  s->block_size = total;
  uint8_t* base = (uint8_t*)s->block;
  s->rx_time = (double*)(base + off_rx_time);
  s->tx_stamp_time = (double*)(base + off_tx_stamp_time);
  s->tx_offset_ns = (double*)(base + off_tx_offset);
  s->rx_meta = (int32_t*)(base + off_rx_meta);
  s->tx_meta = (int32_t*)(base + off_tx_meta);
  s->tx_id = (int32_t*)(base + off_tx_id);
  s->tx_stamp_id = (int32_t*)(base + off_tx_stamp_id);
  s->rx_data = base + off_rx_data;
  s->tx_data = base + off_tx_data;
  for (size_t i = 0; i < b; i++) {
    s->tx_id[i] = -1;
    s->rx_iov[i].iov_base = s->rx_data + i * sb;
    s->rx_iov[i].iov_len = sb;
    struct msghdr* h = &s->rx_msgs[i].msg_hdr;
    h->msg_name = &s->rx_names[i];
    h->msg_iov = &s->rx_iov[i];
    h->msg_iovlen = 1;
    struct msghdr* e = &s->err_msgs[i].msg_hdr;
    e->msg_iov = &s->err_iov;
    e->msg_iovlen = 1;
    e->msg_control = s->err_ctrls[i].buf;
  }
  s->err_iov.iov_base = s->err_dummy;
  s->err_iov.iov_len = sizeof s->err_dummy;
  return 0;
}

static int set_prop(napi_env env, napi_value obj, const char* key, napi_value v) {
  napi_property_descriptor d = {key, NULL, NULL, NULL, NULL, v, napi_enumerable, NULL};
  return napi_define_properties(env, obj, 1, &d) == napi_ok ? 0 : -1;
}

static int set_view(napi_env env, napi_value obj, napi_value ab, const char* key,
                    napi_typedarray_type type, void* p, size_t length, batch_sock* s) {
  napi_value v;
  size_t off = (size_t)((uint8_t*)p - (uint8_t*)s->block);
  if (napi_create_typedarray(env, type, length, ab, off, &v) != napi_ok) return -1;
  return set_prop(env, obj, key, v);
}

/* Defines the handle's properties: tsMode, batch, slotBytes and the typed-array views. */
static int define_handle(napi_env env, napi_value obj, napi_value ab, batch_sock* s) {
  size_t b = (size_t)s->batch;
  napi_value v;
  const char* mode = s->ts_mode == TS_FULL ? "timestamping" : s->ts_mode == TS_RX ? "rx-only" : "none";
  if (napi_create_string_utf8(env, mode, NAPI_AUTO_LENGTH, &v) != napi_ok ||
      set_prop(env, obj, "tsMode", v) != 0 || napi_create_int32(env, s->batch, &v) != napi_ok ||
      set_prop(env, obj, "batch", v) != 0 ||
      napi_create_int32(env, (int32_t)s->slot_bytes, &v) != napi_ok ||
      set_prop(env, obj, "slotBytes", v) != 0)
    return -1;
  return set_view(env, obj, ab, "rxData", napi_uint8_array, s->rx_data, b * s->slot_bytes, s) ||
         set_view(env, obj, ab, "rxMeta", napi_int32_array, s->rx_meta, b * META_INTS, s) ||
         set_view(env, obj, ab, "rxTime", napi_float64_array, s->rx_time, b * 2, s) ||
         set_view(env, obj, ab, "txData", napi_uint8_array, s->tx_data, b * s->slot_bytes, s) ||
         set_view(env, obj, ab, "txMeta", napi_int32_array, s->tx_meta, b * META_INTS, s) ||
         set_view(env, obj, ab, "txId", napi_int32_array, s->tx_id, b, s) ||
         set_view(env, obj, ab, "txOffsetNs", napi_float64_array, s->tx_offset_ns, 1, s) ||
         set_view(env, obj, ab, "txStampId", napi_int32_array, s->tx_stamp_id, b, s) ||
         set_view(env, obj, ab, "txStampTime", napi_float64_array, s->tx_stamp_time, b * 2, s);
}

typedef struct {
  int reuse_port;
  int64_t steer, batch, slot_bytes;
  int64_t rcv_buf; /* SO_RCVBUF(FORCE) bytes; 0 = the system default */
  int select_err_queue; /* tests set it false to exercise libuv's POLLERR path */
} open_opts;

static int parse_open_opts(napi_env env, napi_value o, open_opts* out) {
  napi_valuetype t;
  if (napi_typeof(env, o, &t) != napi_ok) return -1;
  if (t == napi_undefined || t == napi_null) return 0;
  if (t != napi_object) {
    throw_type(env, "opts must be an object");
    return -1;
  }
  napi_value v;
  int r = get_opt(env, o, "reusePort", &v);
  if (r < 0) return -1;
  if (r) {
    bool b;
    if (napi_typeof(env, v, &t) != napi_ok || t != napi_boolean) {
      throw_type(env, "opts.reusePort must be a boolean");
      return -1;
    }
    if (napi_get_value_bool(env, v, &b) != napi_ok) return -1;
    out->reuse_port = b;
  }
  r = get_opt(env, o, "selectErrQueue", &v);
  if (r < 0) return -1;
  if (r) {
    bool b;
    if (napi_typeof(env, v, &t) != napi_ok || t != napi_boolean) {
      throw_type(env, "opts.selectErrQueue must be a boolean");
      return -1;
    }
    if (napi_get_value_bool(env, v, &b) != napi_ok) return -1;
    out->select_err_queue = b;
  }
  if (get_opt_int(env, o, "steerGroupSize", 1, STEER_MAX, &out->steer) < 0 ||
      get_opt_int(env, o, "batch", 1, BATCH_MAX, &out->batch) < 0 ||
      get_opt_int(env, o, "slotBytes", SLOT_MIN, SLOT_MAX, &out->slot_bytes) < 0 ||
      get_opt_int(env, o, "receiveBuffer", 0, RCVBUF_MAX, &out->rcv_buf) < 0)
    return -1;
  return 0;
}

/* Creates, configures and binds the socket; returns the fd or -1 with an exception pending. */
static int open_socket(napi_env env, int family, const char* addr, int port, const open_opts* o,
                       int* ts_mode, int* err_pri, uint32_t* bound_scope) {
  struct sockaddr_storage ss;
  socklen_t sl;
  if (rb_parse_inet_addr(family, addr, port, &ss, &sl) != 0) {
    char msg[200];
    snprintf(msg, sizeof msg, "invalid IPv%d address '%.80s'", family, addr);
    throw_type(env, msg);
    return -1;
  }
  if (family == 6) *bound_scope = ((struct sockaddr_in6*)&ss)->sin6_scope_id;
  int fd = socket(family == 4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    throw_errno(env, "socket", errno);
    return -1;
  }
  int one = 1;
  const char* what = NULL;
  if (family == 6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0)
    what = "setsockopt(IPV6_V6ONLY)";
  else if ((o->reuse_port || o->steer > 1) &&
           setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
    what = "setsockopt(SO_REUSEPORT)";
  if (what != NULL) {
    int e = errno;
    close(fd);
    throw_errno(env, what, e);
    return -1;
  }
  /* A deep receive queue rides out scheduler stalls of a few ms at high rates. FORCE needs
     CAP_NET_ADMIN (past net.core.rmem_max); otherwise the capped size is the best we get. */
  if (o->rcv_buf > 0) {
    int sz = (int)o->rcv_buf;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof sz) != 0)
      (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
  }
  int flags = BATCH_TS_FLAGS;
  *ts_mode = TS_NONE;
  *err_pri = 0;
  if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof flags) == 0) {
    *ts_mode = TS_FULL;
    *err_pri = o->select_err_queue &&
               setsockopt(fd, SOL_SOCKET, SO_SELECT_ERR_QUEUE, &one, sizeof one) == 0;
  } else if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one) == 0) {
    *ts_mode = TS_RX;
  }
  if (bind(fd, (struct sockaddr*)&ss, sl) != 0) {
    int e = errno;
    close(fd);
    char w[160];
    snprintf(w, sizeof w, "bind(%.80s port %d)", addr, port);
    throw_errno(env, w, e);
    return -1;
  }
  /* After bind: the socket has joined its reuseport group, whose program this replaces
     (every member attaches the same one). */
  if (o->steer > 1 && attach_steering(fd, family, (uint32_t)o->steer) != 0) {
    int e = errno;
    close(fd);
    throw_errno(env, "setsockopt(SO_ATTACH_REUSEPORT_CBPF)", e);
    return -1;
  }
  return fd;
}

/* udpBatchOpen(family, address, port, onEvent, opts?): handle */
static napi_value UdpBatchOpen(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) return throw_type(env, "udpBatchOpen(family, address, port, onEvent, opts?)");
  int64_t family, port;
  if (get_int(env, argv[0], "family", 4, 6, &family) != 0) return NULL;
  if (family == 5) return throw_range(env, "family must be 4 or 6");
  napi_valuetype t;
  CHECK(napi_typeof(env, argv[1], &t));
  if (t != napi_string) return throw_type(env, "address must be a string");
  char addr[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
  size_t alen = 0;
  CHECK(napi_get_value_string_utf8(env, argv[1], NULL, 0, &alen));
  if (alen == 0 || alen >= sizeof addr) return throw_type(env, "address has an invalid length");
  CHECK(napi_get_value_string_utf8(env, argv[1], addr, sizeof addr, &alen));
  if (strlen(addr) != alen) return throw_type(env, "address contains a NUL character");
  if (get_int(env, argv[2], "port", 0, 65535, &port) != 0) return NULL;
  CHECK(napi_typeof(env, argv[3], &t));
  if (t != napi_function) return throw_type(env, "onEvent must be a function");
  open_opts o = {.reuse_port = 0, .steer = 1, .batch = BATCH_DEFAULT, .slot_bytes = SLOT_DEFAULT, .rcv_buf = 0, .select_err_queue = 1};
  if (argc >= 5 && parse_open_opts(env, argv[4], &o) != 0) return NULL;

  uv_loop_t* loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  int ts_mode, err_pri;
  uint32_t bound_scope = 0;
  int fd = open_socket(env, (int)family, addr, (int)port, &o, &ts_mode, &err_pri, &bound_scope);
  if (fd < 0) return NULL;

  batch_sock* s = calloc(1, sizeof *s);
  if (s == NULL) {
    close(fd);
    return throw_errno(env, "udpBatchOpen", ENOMEM);
  }
  s->env = env;
  s->fd = fd;
  s->family = (int)family;
  s->ts_mode = ts_mode;
  s->err_pri = err_pri;
  s->bound_scope = bound_scope;
  s->batch = (int)o.batch;
  s->slot_bytes = (size_t)o.slot_bytes;
  s->poll_closed = 1;
  if (alloc_buffers(s) != 0) {
    close(fd);
    sock_free(s);
    return throw_errno(env, "udpBatchOpen(buffers)", ENOMEM);
  }
  napi_value obj, ab, ext;
  if (napi_create_object(env, &obj) != napi_ok ||
      napi_create_external_arraybuffer(env, s->block, s->block_size, block_finalize, s, &ab) !=
          napi_ok) {
    close(fd);
    sock_free(s);
    return throw_errno(env, "udpBatchOpen(arraybuffer)", ENOMEM);
  }
  /* The ArrayBuffer's finalizer now co-owns s. */
  if (napi_create_external(env, s, handle_finalize, NULL, &ext) != napi_ok) {
    s->finalized = 1;
    sock_close(s, 0);
    return throw_errno(env, "udpBatchOpen(external)", ENOMEM);
  }
  /* And the external's finalizer too: from here on, failures only close. */
  napi_property_descriptor hidden = {NATIVE_KEY, NULL, NULL, NULL, NULL, ext, napi_default, NULL};
  napi_value resource, name;
  if (napi_define_properties(env, obj, 1, &hidden) != napi_ok ||
      napi_type_tag_object(env, obj, &BATCH_TAG) != napi_ok || define_handle(env, obj, ab, s) != 0 ||
      napi_create_object(env, &resource) != napi_ok ||
      napi_create_string_utf8(env, "RubidiumBatchUdpSocket", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, resource, name, &s->actx) != napi_ok ||
      napi_create_reference(env, argv[3], 1, &s->cb) != napi_ok) {
    sock_close(s, 0);
    return throw_errno(env, "udpBatchOpen(init)", ENOMEM);
  }
  int r = uv_poll_init(loop, &s->poll, fd);
  if (r < 0) {
    sock_close(s, 0);
    return throw_errno(env, "uv_poll_init", -r);
  }
  s->poll.data = s;
  s->poll_inited = 1;
  s->poll_closed = 0;
  r = uv_poll_start(&s->poll, UV_READABLE | (s->err_pri ? UV_PRIORITIZED : 0), on_poll);
  if (r < 0) {
    sock_close(s, 0);
    return throw_errno(env, "uv_poll_start", -r);
  }
  if (napi_add_env_cleanup_hook(env, cleanup_hook, s) == napi_ok) s->hook_added = 1;
  return obj;
}

/* ------------------------------------------------------------------------------------------ */
/* Send                                                                                        */

/* Destination of tx slot i from its meta words (already validated). */
static socklen_t slot_addr(const batch_sock* s, const int32_t* m, struct sockaddr_storage* ss) {
  memset(ss, 0, sizeof *ss);
  if (s->family == 4) {
    struct sockaddr_in* a = (struct sockaddr_in*)ss;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)m[M_PORT]);
    a->sin_addr.s_addr = htonl((uint32_t)m[M_A0]);
    return sizeof *a;
  }
  struct sockaddr_in6* a = (struct sockaddr_in6*)ss;
  a->sin6_family = AF_INET6;
  a->sin6_port = htons((uint16_t)m[M_PORT]);
  for (int k = 0; k < 4; k++) {
    uint32_t be = htonl((uint32_t)m[M_A0 + k]);
    memcpy(a->sin6_addr.s6_addr + 4 * k, &be, 4);
  }
  /* The words carry no scope: a link-local peer is on the bound interface, or on the one the
     last link-local datagram came from. */
  if (IN6_IS_ADDR_LINKLOCAL(&a->sin6_addr) || IN6_IS_ADDR_MC_LINKLOCAL(&a->sin6_addr))
    a->sin6_scope_id = s->bound_scope != 0 ? s->bound_scope : s->rx_scope;
  return sizeof *a;
}

/* Checks every slot of [0, count) before anything is sent; 0, or -1 with a RangeError. */
static int validate_tx(napi_env env, const batch_sock* s, int count) {
  for (int i = 0; i < count; i++) {
    const int32_t* m = s->tx_meta + (size_t)i * META_INTS;
    const char* bad = NULL;
    if (m[M_LEN] < 0 || (size_t)m[M_LEN] > s->slot_bytes || m[M_LEN] > 65535)
      bad = "len out of [0, slotBytes]";
    else if (m[M_FAMILY] != s->family)
      bad = "family differs from the socket's";
    else if (m[M_PORT] < 1 || m[M_PORT] > 65535)
      bad = "port out of [1, 65535]";
    else if (m[M_FLAGS] & ~(TX_STAMP | TX_WANT_TIMESTAMP))
      bad = "unknown flags";
    else if ((m[M_FLAGS] & TX_STAMP) && m[M_LEN] < 48)
      bad = "TX_STAMP needs at least 48 bytes";
    if (bad != NULL) {
      char msg[120];
      snprintf(msg, sizeof msg, "txMeta slot %d: %s", i, bad);
      throw_range(env, msg);
      return -1;
    }
  }
  return 0;
}

/*
 * udpBatchSend(handle, count): number. Sends tx slots [0, count) with one sendmsg each and
 * returns how many slots were handled: slots before that index were sent (txId set) or failed
 * for good (counted in txErrors); at EAGAIN it stops and the remaining slots are not sent.
 */
static napi_value UdpBatchSend(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) return throw_type(env, "udpBatchSend(handle, count)");
  batch_sock* s = get_batch(env, argv[0], 0);
  if (s == NULL) return NULL;
  int64_t count;
  if (get_int(env, argv[1], "count", 0, s->batch, &count) != 0) return NULL;
  double off = s->tx_offset_ns[0];
  if (!isfinite(off) || off != floor(off) || fabs(off) > 9.2e18)
    return throw_range(env, "txOffsetNs[0] must be an integer number of ns");
  if (validate_tx(env, s, (int)count) != 0) return NULL;
  int64_t offset_ns = (int64_t)off;

  union {
    char buf[CMSG_SPACE(sizeof(uint32_t))];
    struct cmsghdr align;
  } ctrl;
  int i;
  for (i = 0; i < (int)count; i++) {
    int32_t* m = s->tx_meta + (size_t)i * META_INTS;
    uint8_t* data = s->tx_data + (size_t)i * s->slot_bytes;
    struct sockaddr_storage ss;
    struct iovec iov = {data, (size_t)m[M_LEN]};
    struct msghdr h;
    memset(&h, 0, sizeof h);
    h.msg_name = &ss;
    h.msg_namelen = slot_addr(s, m, &ss);
    h.msg_iov = &iov;
    h.msg_iovlen = 1;
    int want_ts = (m[M_FLAGS] & TX_WANT_TIMESTAMP) && s->ts_mode == TS_FULL;
    if (want_ts) {
      memset(&ctrl, 0, sizeof ctrl);
      h.msg_control = ctrl.buf;
      h.msg_controllen = sizeof ctrl.buf;
      struct cmsghdr* c = CMSG_FIRSTHDR(&h);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SO_TIMESTAMPING;
      c->cmsg_len = CMSG_LEN(sizeof(uint32_t));
      uint32_t req = SOF_TIMESTAMPING_TX_SOFTWARE;
      memcpy(CMSG_DATA(c), &req, sizeof req);
    }
    s->tx_id[i] = -1;
    if (m[M_FLAGS] & TX_STAMP) rb_stamp_ntp(data + 40, offset_ns);
    ssize_t r;
    do {
      r = sendmsg(s->fd, &h, MSG_DONTWAIT);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        s->st_tx_eagain++;
        break;
      }
      s->st_tx_errors++;
      continue;
    }
    s->st_tx_datagrams++;
    /* The kernel advances its OPT_ID key only for datagrams that request a stamp. */
    if (want_ts) s->tx_id[i] = (int32_t)(s->tx_counter++);
  }
  for (int j = i; j < (int)count; j++) s->tx_id[j] = -1;
  napi_value out;
  CHECK(napi_create_int32(env, i, &out));
  return out;
}

/* ------------------------------------------------------------------------------------------ */
/* Small calls                                                                                 */

static napi_value UdpBatchLocalPort(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) return throw_type(env, "udpBatchLocalPort(handle)");
  batch_sock* s = get_batch(env, argv[0], 0);
  if (s == NULL) return NULL;
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  if (getsockname(s->fd, (struct sockaddr*)&ss, &sl) != 0)
    return throw_errno(env, "getsockname", errno);
  int32_t w[4];
  int port = 0;
  uint32_t scope = 0;
  addr_words(&ss, w, &port, &scope);
  napi_value out;
  CHECK(napi_create_int32(env, port, &out));
  return out;
}

static napi_value UdpBatchClose(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) return throw_type(env, "udpBatchClose(handle)");
  batch_sock* s = get_batch(env, argv[0], 1);
  if (s == NULL) return NULL;
  sock_close(s, 0);
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

static napi_value UdpBatchSetRef(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) return throw_type(env, "udpBatchSetRef(handle, ref)");
  batch_sock* s = get_batch(env, argv[0], 0);
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

/* The kernel's receive queue size (it reports twice the bytes asked for); 0 once closed. */
static double receive_buffer(const batch_sock* s) {
  int sz = 0;
  socklen_t len = sizeof sz;
  if (s->closed || s->fd < 0 || getsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &sz, &len) != 0) return 0;
  return sz;
}

static napi_value UdpBatchStats(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) return throw_type(env, "udpBatchStats(handle)");
  batch_sock* s = get_batch(env, argv[0], 1);
  if (s == NULL) return NULL;
  const struct {
    const char* key;
    double v;
  } fields[] = {
      {"rxDatagrams", s->st_rx_datagrams}, {"rxCalls", s->st_rx_calls},
      {"rxTruncated", s->st_rx_truncated}, {"txDatagrams", s->st_tx_datagrams},
      {"txErrors", s->st_tx_errors},       {"txEagain", s->st_tx_eagain},
      {"txStamps", s->st_tx_stamps},       {"wakeups", s->st_wakeups},
      {"receiveBuffer", receive_buffer(s)},
  };
  napi_value o, v;
  CHECK(napi_create_object(env, &o));
  for (size_t k = 0; k < sizeof fields / sizeof fields[0]; k++) {
    CHECK(napi_create_double(env, fields[k].v, &v));
    CHECK(napi_set_named_property(env, o, fields[k].key, v));
  }
  return o;
}

napi_status rb_batch_register(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"udpBatchOpen", NULL, UdpBatchOpen, NULL, NULL, NULL, napi_enumerable, NULL},
      {"udpBatchSend", NULL, UdpBatchSend, NULL, NULL, NULL, napi_enumerable, NULL},
      {"udpBatchLocalPort", NULL, UdpBatchLocalPort, NULL, NULL, NULL, napi_enumerable, NULL},
      {"udpBatchClose", NULL, UdpBatchClose, NULL, NULL, NULL, napi_enumerable, NULL},
      {"udpBatchSetRef", NULL, UdpBatchSetRef, NULL, NULL, NULL, napi_enumerable, NULL},
      {"udpBatchStats", NULL, UdpBatchStats, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
