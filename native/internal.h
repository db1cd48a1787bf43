/* Registration hooks of the addon's parts; each adds its exports to the module object. */
#ifndef RUBIDIUM_INTERNAL_H
#define RUBIDIUM_INTERNAL_H
#include <node_api.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdint.h>
#include <time.h>

/* native/batch.c: batched UDP sockets (recvmmsg, stamped sends, TX timestamps, steering). */
napi_status rb_batch_register(napi_env env, napi_value exports);
/* native/aead.c: AES-SIV through Node's own OpenSSL, for the NTS server path. */
napi_status rb_aead_register(napi_env env, napi_value exports);

/*
 * Writes the NTP timestamp of (CLOCK_REALTIME + offset_ns) into p[0..7], big-endian: the
 * transmit timestamp of a server answer, taken as close to the send call as possible.
 * Shared by udpSend (rubidium.c) and udpBatchSend (batch.c).
 */
static inline void rb_stamp_ntp(uint8_t* p, int64_t offset_ns) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  /* Unix ns + offset, then split; NTP seconds wrap mod 2^32 (era rollover is the reader's job). */
  __int128 ns = (__int128)ts.tv_sec * 1000000000 + ts.tv_nsec + offset_ns;
  __int128 sec = ns / 1000000000;
  __int128 rem = ns % 1000000000;
  if (rem < 0) {
    rem += 1000000000;
    sec -= 1;
  }
  uint64_t frac = (uint64_t)((((unsigned __int128)rem << 32) + 500000000) / 1000000000);
  uint64_t s64 = (uint64_t)(sec + 2208988800LL);
  if (frac >> 32) {
    frac -= (uint64_t)1 << 32;
    s64 += 1;
  }
  uint64_t v = ((s64 & 0xffffffffu) << 32) | (frac & 0xffffffffu);
  for (int i = 7; i >= 0; i--) {
    p[i] = (uint8_t)(v & 0xff);
    v >>= 8;
  }
}

/* native/napi-util.c: each throw helper returns NULL so callers can `return throw_...(...)`. */
napi_value rb_throw_type(napi_env env, const char* msg);
napi_value rb_throw_range(napi_env env, const char* msg);
/* Error with `code` (ENOENT, ...) and `errno`, message "what: strerror (CODE)". */
napi_value rb_throw_errno(napi_env env, const char* what, int err);
/* Integer-valued number in [min, max]: 0, or -1 with an exception pending. */
int rb_get_int(napi_env env, napi_value v, const char* name, int64_t min, int64_t max, int64_t* out);
#define throw_type rb_throw_type
#define throw_range rb_throw_range
#define throw_errno rb_throw_errno
#define get_int rb_get_int

/* Returns NULL from the calling N-API function when `call` fails (throwing if nothing is pending). */
#define CHECK(call)                                                                 \
  do {                                                                              \
    if ((call) != napi_ok) {                                                        \
      bool pending_ = false;                                                        \
      napi_is_exception_pending(env, &pending_);                                    \
      if (!pending_) napi_throw_error(env, NULL, "internal N-API failure: " #call); \
      return NULL;                                                                  \
    }                                                                               \
  } while (0)

#endif
