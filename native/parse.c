/* Pure parsing helpers of the addon: see parse.h. */
#include "parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/errqueue.h>
#include <linux/net_tstamp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * CMSG_NXTHDR checks that the next header starts inside the buffer, but not that the current
 * one's cmsg_len stays inside it: check before reading a payload.
 */
static int cmsg_fits(const struct msghdr* m, const struct cmsghdr* c, size_t payload) {
  const char* end = (const char*)m->msg_control + m->msg_controllen;
  return c->cmsg_len >= CMSG_LEN(payload) && (size_t)(end - (const char*)c) >= CMSG_LEN(payload);
}

int rb_find_sw_timestamp(const struct msghdr* m, struct timespec* out) {
  for (struct cmsghdr* c = CMSG_FIRSTHDR(m); c != NULL; c = CMSG_NXTHDR((struct msghdr*)m, c)) {
    if (c->cmsg_level != SOL_SOCKET) continue;
    int is_ts = c->cmsg_type == SCM_TIMESTAMPING;
#ifdef SO_TIMESTAMPING_NEW
    is_ts = is_ts || c->cmsg_type == SO_TIMESTAMPING_NEW;
#endif
    if (is_ts && cmsg_fits(m, c, sizeof(struct scm_timestamping))) {
      struct scm_timestamping st;
      memcpy(&st, CMSG_DATA(c), sizeof st);
      if (st.ts[0].tv_sec != 0 || st.ts[0].tv_nsec != 0) {
        *out = st.ts[0];
        return 1;
      }
    } else if (c->cmsg_type == SCM_TIMESTAMPNS && cmsg_fits(m, c, sizeof(struct timespec))) {
      memcpy(out, CMSG_DATA(c), sizeof *out);
      return 1;
    }
  }
  return 0;
}

int rb_parse_tx_stamp(const struct msghdr* m, uint32_t* id, struct timespec* ts) {
  struct sock_extended_err ee;
  int have_ee = 0;
  for (struct cmsghdr* c = CMSG_FIRSTHDR(m); c != NULL; c = CMSG_NXTHDR((struct msghdr*)m, c)) {
    if (((c->cmsg_level == SOL_IP && c->cmsg_type == IP_RECVERR) ||
         (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_RECVERR)) &&
        cmsg_fits(m, c, sizeof ee)) {
      memcpy(&ee, CMSG_DATA(c), sizeof ee);
      have_ee = 1;
    }
  }
  if (!have_ee || ee.ee_errno != ENOMSG || ee.ee_origin != SO_EE_ORIGIN_TIMESTAMPING ||
      ee.ee_info != SCM_TSTAMP_SND || !rb_find_sw_timestamp(m, ts))
    return 0;
  *id = ee.ee_data;
  return 1;
}

int rb_parse_inet_addr(int family, const char* str, int port, struct sockaddr_storage* ss, socklen_t* len) {
  memset(ss, 0, sizeof *ss);
  if (family == 4) {
    struct sockaddr_in* a = (struct sockaddr_in*)ss;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, str, &a->sin_addr) != 1) return -1;
    *len = sizeof *a;
    return 0;
  }
  struct sockaddr_in6* a = (struct sockaddr_in6*)ss;
  a->sin6_family = AF_INET6;
  a->sin6_port = htons((uint16_t)port);
  char host[INET6_ADDRSTRLEN + 1];
  const char* pct = strchr(str, '%');
  size_t hl = pct ? (size_t)(pct - str) : strlen(str);
  if (hl == 0 || hl >= sizeof host) return -1;
  memcpy(host, str, hl);
  host[hl] = 0;
  if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1) return -1;
  if (pct) {
    const char* scope = pct + 1;
    if (*scope == 0 || strlen(scope) >= IF_NAMESIZE) return -1;
    char* end = NULL;
    errno = 0;
    unsigned long idx = strtoul(scope, &end, 10);
    if (*end != 0 || errno != 0 || idx > UINT32_MAX) idx = if_nametoindex(scope);
    if (idx == 0) return -1;
    a->sin6_scope_id = (uint32_t)idx;
  }
  *len = sizeof *a;
  return 0;
}

int rb_format_inet_addr(const struct sockaddr_storage* ss, char* out, size_t size) {
  out[0] = 0;
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in* a = (const struct sockaddr_in*)ss;
    inet_ntop(AF_INET, &a->sin_addr, out, (socklen_t)size);
    return ntohs(a->sin_port);
  }
  if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6* a = (const struct sockaddr_in6*)ss;
    inet_ntop(AF_INET6, &a->sin6_addr, out, (socklen_t)size);
    if (a->sin6_scope_id != 0) {
      char ifn[IF_NAMESIZE];
      size_t l = strlen(out);
      if (if_indextoname(a->sin6_scope_id, ifn) != NULL)
        snprintf(out + l, size - l, "%%%s", ifn);
      else
        snprintf(out + l, size - l, "%%%u", a->sin6_scope_id);
    }
    return ntohs(a->sin6_port);
  }
  return 0;
}

int rb_make_unix_addr(const char* name, size_t n, struct sockaddr_un* a, socklen_t* len) {
  /* A path needs its terminating NUL inside sun_path; an abstract name ('@' dropped) does not. */
  if (n == 0) return RB_UNIX_EMPTY;
  if (n > sizeof a->sun_path) return RB_UNIX_TOO_LONG;
  if (memchr(name, 0, n) != NULL) return RB_UNIX_NUL;
  memset(a, 0, sizeof *a);
  a->sun_family = AF_UNIX;
  if (name[0] == '@') {
    if (n < 2) return RB_UNIX_ABSTRACT_EMPTY;
    memcpy(a->sun_path + 1, name + 1, n - 1); /* n - 1 <= sizeof sun_path - 1 */
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    return RB_UNIX_OK;
  }
  if (n >= sizeof a->sun_path) return RB_UNIX_TOO_LONG;
  memcpy(a->sun_path, name, n);
  a->sun_path[n] = 0;
  *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
  return RB_UNIX_OK;
}

size_t rb_unix_addr_text(const struct sockaddr_un* a, socklen_t len, char* out) {
  size_t off = offsetof(struct sockaddr_un, sun_path);
  if (len <= off || a->sun_family != AF_UNIX) return 0;
  size_t n = (size_t)len - off;
  if (n > sizeof a->sun_path) n = sizeof a->sun_path;
  if (a->sun_path[0] == 0) {
    out[0] = '@';
    memcpy(out + 1, a->sun_path + 1, n - 1);
    return n; /* may contain NULs: the length is explicit */
  }
  n = strnlen(a->sun_path, n);
  memcpy(out, a->sun_path, n);
  return n;
}
