/*
 * libFuzzer target for native/parse.c: control-message walking (SO_TIMESTAMPING RX stamps,
 * error-queue TX stamps), IPv4/IPv6 address parsing and formatting, Unix socket addresses.
 * The first input byte picks the parser; the rest is its input, copied into a buffer of exactly
 * that size so AddressSanitizer sees any read past it.
 *
 *   clang -g -O1 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -Inative native/fuzz/fuzz_cmsg.c native/parse.c
 * (bench/fuzz/native.sh builds it into build/fuzz/ and runs it).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "../parse.h"

static void fuzz_cmsg(const uint8_t* data, size_t size) {
  if (size == 0) return;
  /* Control buffers are cmsghdr-aligned in the addon; malloc gives that alignment. */
  void* ctrl = malloc(size);
  memcpy(ctrl, data, size);
  struct msghdr m;
  memset(&m, 0, sizeof m);
  m.msg_control = ctrl;
  m.msg_controllen = size;
  struct timespec ts;
  uint32_t id;
  (void)rb_find_sw_timestamp(&m, &ts);
  (void)rb_parse_tx_stamp(&m, &id, &ts);
  free(ctrl);
}

static void fuzz_inet(const uint8_t* data, size_t size) {
  if (size < 3) return;
  char* str = malloc(size - 2);
  memcpy(str, data + 3, size - 3);
  str[size - 3] = 0;
  int family = (data[0] & 1) ? 6 : 4;
  int port = (data[1] << 8) | data[2];
  struct sockaddr_storage ss;
  socklen_t len = 0;
  if (rb_parse_inet_addr(family, str, port, &ss, &len) == 0) {
    char out[128];
    /* Round trip: a parsed address formats back to an address with the same port. */
    if (rb_format_inet_addr(&ss, out, sizeof out) != port) abort();
    if (len != (family == 4 ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6))) abort();
  }
  free(str);
}

static void fuzz_sockaddr(const uint8_t* data, size_t size) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  memcpy(&ss, data, size < sizeof ss ? size : sizeof ss);
  char out[46 + 16 + 2];
  (void)rb_format_inet_addr(&ss, out, sizeof out);
  if (strlen(out) >= sizeof out) abort();
}

static void fuzz_unix(const uint8_t* data, size_t size) {
  if (size == 0) return;
  char* name = malloc(size);
  memcpy(name, data, size);
  struct sockaddr_un a;
  socklen_t len = 0;
  int rc = rb_make_unix_addr(name, size, &a, &len);
  if (rc == RB_UNIX_OK) {
    char out[sizeof a.sun_path + 2];
    size_t n = rb_unix_addr_text(&a, len, out);
    /* Round trip: the address reads back as the name it was made from. */
    if (n != size || memcmp(out, name, n) != 0) abort();
  }
  /* Arbitrary (kernel-filled) sockaddr_un bytes and lengths. */
  struct sockaddr_un raw;
  memset(&raw, 0, sizeof raw);
  memcpy(&raw, data, size < sizeof raw ? size : sizeof raw);
  char out[sizeof raw.sun_path + 2];
  (void)rb_unix_addr_text(&raw, (socklen_t)(size % (sizeof raw + 8)), out);
  free(name);
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  switch (data[0] & 3) {
    case 0:
      fuzz_cmsg(data + 1, size - 1);
      break;
    case 1:
      fuzz_inet(data + 1, size - 1);
      break;
    case 2:
      fuzz_sockaddr(data + 1, size - 1);
      break;
    default:
      fuzz_unix(data + 1, size - 1);
      break;
  }
  return 0;
}
