/*
 * Pure parsing helpers of the addon (no Node-API, no I/O): what reads bytes the kernel or the
 * caller hands over — control messages (SO_TIMESTAMPING, error-queue TX stamps) and socket
 * addresses. Kept apart so native/fuzz/fuzz_cmsg.c can fuzz them with libFuzzer.
 */
#ifndef RUBIDIUM_PARSE_H
#define RUBIDIUM_PARSE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

/* The receive (or TX) software timestamp among the control messages: 1 found, 0 not. */
int rb_find_sw_timestamp(const struct msghdr* m, struct timespec* out);

/* A software TX timestamp from the error queue (SCM_TSTAMP_SND): 1 with its OPT_ID, 0 if the message is something else. */
int rb_parse_tx_stamp(const struct msghdr* m, uint32_t* id, struct timespec* ts);

/* "a.b.c.d" (family 4) or "x::y[%scope]" (family 6) + port → sockaddr; 0 ok, -1 invalid. */
int rb_parse_inet_addr(int family, const char* str, int port, struct sockaddr_storage* ss, socklen_t* len);

/* Text form of an AF_INET/AF_INET6 address (with %scope) into out; returns the port (0 for other families). */
int rb_format_inet_addr(const struct sockaddr_storage* ss, char* out, size_t size);

enum { RB_UNIX_OK = 0, RB_UNIX_EMPTY, RB_UNIX_NUL, RB_UNIX_ABSTRACT_EMPTY, RB_UNIX_TOO_LONG };

/* A path or "@abstract" name of n bytes (not NUL-terminated) → sockaddr_un; one of RB_UNIX_*. */
int rb_make_unix_addr(const char* name, size_t n, struct sockaddr_un* a, socklen_t* len);

/* Sender address as text ("path", "@name" which may hold NULs, "" unbound) into out[sizeof sun_path + 1]; returns its length. */
size_t rb_unix_addr_text(const struct sockaddr_un* a, socklen_t len, char* out);

#endif
