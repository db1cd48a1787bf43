/**
 * chrony 4.3 command and monitoring protocol ("cmdmon", candm.h / pktlength.c), protocol
 * version 6: constants, packet lengths and the shared field encodings (IPAddr, Timespec).
 * All multi-byte fields are big-endian. Request header 20 bytes, reply header 28 bytes.
 */
import { parseAddress } from '../ntp/ipaddr.js';

export const PROTO_VERSION = 6;
/** Oldest request version chronyd answers with STT_BADPKTVERSION (older ones are ignored). */
export const PROTO_VERSION_MISMATCH_COMPAT_SERVER = 5;
export const PKT_TYPE_CMD_REQUEST = 1;
export const PKT_TYPE_CMD_REPLY = 2;
export const REQUEST_HEADER_LENGTH = 20;
export const REPLY_HEADER_LENGTH = 28;
export const MAX_PADDING_LENGTH = 484;
/** sizeof(CMD_Request): header + largest request body (ADD_SOURCE, 356) + padding. */
export const MAX_REQUEST_LENGTH = REQUEST_HEADER_LENGTH + 356 + MAX_PADDING_LENGTH;

export const REQ = {
  NULL: 0,
  ONLINE: 1,
  OFFLINE: 2,
  BURST: 3,
  MODIFY_MINPOLL: 4,
  MODIFY_MAXPOLL: 5,
  DUMP: 6,
  MODIFY_MAXDELAY: 7,
  MODIFY_MAXDELAYRATIO: 8,
  MODIFY_MAXUPDATESKEW: 9,
  LOGON: 10,
  SETTIME: 11,
  LOCAL: 12,
  MANUAL: 13,
  N_SOURCES: 14,
  SOURCE_DATA: 15,
  REKEY: 16,
  ALLOW: 17,
  ALLOWALL: 18,
  DENY: 19,
  DENYALL: 20,
  CMDALLOW: 21,
  CMDALLOWALL: 22,
  CMDDENY: 23,
  CMDDENYALL: 24,
  ACCHECK: 25,
  CMDACCHECK: 26,
  ADD_SERVER: 27,
  ADD_PEER: 28,
  DEL_SOURCE: 29,
  WRITERTC: 30,
  DFREQ: 31,
  DOFFSET: 32,
  TRACKING: 33,
  SOURCESTATS: 34,
  RTCREPORT: 35,
  TRIMRTC: 36,
  CYCLELOGS: 37,
  SUBNETS_ACCESSED: 38,
  CLIENT_ACCESSES: 39,
  CLIENT_ACCESSES_BY_INDEX: 40,
  MANUAL_LIST: 41,
  MANUAL_DELETE: 42,
  MAKESTEP: 43,
  ACTIVITY: 44,
  MODIFY_MINSTRATUM: 45,
  MODIFY_POLLTARGET: 46,
  MODIFY_MAXDELAYDEVRATIO: 47,
  RESELECT: 48,
  RESELECTDISTANCE: 49,
  MODIFY_MAKESTEP: 50,
  SMOOTHING: 51,
  SMOOTHTIME: 52,
  REFRESH: 53,
  SERVER_STATS: 54,
  CLIENT_ACCESSES_BY_INDEX2: 55,
  LOCAL2: 56,
  NTP_DATA: 57,
  ADD_SERVER2: 58,
  ADD_PEER2: 59,
  ADD_SERVER3: 60,
  ADD_PEER3: 61,
  SHUTDOWN: 62,
  ONOFFLINE: 63,
  ADD_SOURCE: 64,
  NTP_SOURCE_NAME: 65,
  RESET_SOURCES: 66,
  AUTH_DATA: 67,
  CLIENT_ACCESSES_BY_INDEX3: 68,
  SELECT_DATA: 69,
  RELOAD_SOURCES: 70,
  DOFFSET2: 71,
} as const;
export const N_REQUEST_TYPES = 72;

export const RPY = {
  NULL: 1,
  N_SOURCES: 2,
  SOURCE_DATA: 3,
  MANUAL_TIMESTAMP: 4,
  TRACKING: 5,
  SOURCESTATS: 6,
  RTC: 7,
  CLIENT_ACCESSES_BY_INDEX: 10,
  ACTIVITY: 12,
  SMOOTHING: 13,
  SERVER_STATS: 14,
  NTP_DATA: 16,
  MANUAL_TIMESTAMP2: 17,
  MANUAL_LIST2: 18,
  NTP_SOURCE_NAME: 19,
  AUTH_DATA: 20,
  CLIENT_ACCESSES_BY_INDEX3: 21,
  SELECT_DATA: 23,
  SERVER_STATS3: 24,
} as const;

export const STT = {
  SUCCESS: 0,
  FAILED: 1,
  UNAUTH: 2,
  INVALID: 3,
  NOSUCHSOURCE: 4,
  INVALIDTS: 5,
  NOTENABLED: 6,
  BADSUBNET: 7,
  ACCESSALLOWED: 8,
  ACCESSDENIED: 9,
  SOURCEALREADYKNOWN: 11,
  TOOMANYSOURCES: 12,
  NORTC: 13,
  BADRTCFILE: 14,
  INACTIVE: 15,
  BADSAMPLE: 16,
  INVALIDAF: 17,
  BADPKTVERSION: 18,
  BADPKTLENGTH: 19,
  INVALIDNAME: 21,
} as const;

/** Reply body lengths (offset of EOR in the reply data union), by reply code. */
const REPLY_BODY: Readonly<Record<number, number>> = {
  [RPY.NULL]: 0,
  [RPY.N_SOURCES]: 4,
  [RPY.SOURCE_DATA]: 48,
  [RPY.TRACKING]: 76,
  [RPY.SOURCESTATS]: 56,
  [RPY.RTC]: 28,
  [RPY.ACTIVITY]: 20,
  [RPY.SMOOTHING]: 24,
  [RPY.NTP_DATA]: 124,
  [RPY.MANUAL_TIMESTAMP2]: 12,
  [RPY.MANUAL_LIST2]: 388,
  [RPY.NTP_SOURCE_NAME]: 256,
  [RPY.AUTH_DATA]: 24,
  [RPY.CLIENT_ACCESSES_BY_INDEX3]: 492,
  [RPY.SELECT_DATA]: 48,
  [RPY.SERVER_STATS3]: 44,
};

/** Length of a reply of this type (0 = a type chronyd 4.3 does not send). */
export function replyLength(reply: number): number {
  const b = REPLY_BODY[reply];
  return b === undefined ? 0 : REPLY_HEADER_LENGTH + b;
}

/**
 * Request body length and the reply it is padded for, by command (pktlength.c). Commands without
 * an entry are obsolete or unsupported in 4.3 and get STT_INVALID.
 */
const REQUEST_FORMAT: Readonly<Record<number, readonly [body: number, reply: number]>> = {
  [REQ.NULL]: [0, RPY.NULL],
  [REQ.ONLINE]: [40, RPY.NULL],
  [REQ.OFFLINE]: [40, RPY.NULL],
  [REQ.BURST]: [48, RPY.NULL],
  [REQ.MODIFY_MINPOLL]: [24, RPY.NULL],
  [REQ.MODIFY_MAXPOLL]: [24, RPY.NULL],
  [REQ.DUMP]: [4, RPY.NULL],
  [REQ.MODIFY_MAXDELAY]: [24, RPY.NULL],
  [REQ.MODIFY_MAXDELAYRATIO]: [24, RPY.NULL],
  [REQ.MODIFY_MAXUPDATESKEW]: [4, RPY.NULL],
  [REQ.LOGON]: [12, RPY.NULL],
  [REQ.SETTIME]: [12, RPY.MANUAL_TIMESTAMP2],
  [REQ.MANUAL]: [4, RPY.NULL],
  [REQ.N_SOURCES]: [0, RPY.N_SOURCES],
  [REQ.SOURCE_DATA]: [4, RPY.SOURCE_DATA],
  [REQ.REKEY]: [0, RPY.NULL],
  [REQ.ALLOW]: [24, RPY.NULL],
  [REQ.ALLOWALL]: [24, RPY.NULL],
  [REQ.DENY]: [24, RPY.NULL],
  [REQ.DENYALL]: [24, RPY.NULL],
  [REQ.CMDALLOW]: [24, RPY.NULL],
  [REQ.CMDALLOWALL]: [24, RPY.NULL],
  [REQ.CMDDENY]: [24, RPY.NULL],
  [REQ.CMDDENYALL]: [24, RPY.NULL],
  [REQ.ACCHECK]: [20, RPY.NULL],
  [REQ.CMDACCHECK]: [20, RPY.NULL],
  [REQ.DEL_SOURCE]: [20, RPY.NULL],
  [REQ.WRITERTC]: [0, RPY.NULL],
  [REQ.DFREQ]: [4, RPY.NULL],
  [REQ.TRACKING]: [0, RPY.TRACKING],
  [REQ.SOURCESTATS]: [4, RPY.SOURCESTATS],
  [REQ.RTCREPORT]: [0, RPY.RTC],
  [REQ.TRIMRTC]: [0, RPY.NULL],
  [REQ.CYCLELOGS]: [0, RPY.NULL],
  // MANUAL_LIST is padded for the original manual_list reply (the same size as MANUAL_LIST2).
  [REQ.MANUAL_LIST]: [0, RPY.MANUAL_LIST2],
  [REQ.MANUAL_DELETE]: [4, RPY.NULL],
  [REQ.MAKESTEP]: [0, RPY.NULL],
  [REQ.ACTIVITY]: [0, RPY.ACTIVITY],
  [REQ.MODIFY_MINSTRATUM]: [24, RPY.NULL],
  [REQ.MODIFY_POLLTARGET]: [24, RPY.NULL],
  [REQ.MODIFY_MAXDELAYDEVRATIO]: [24, RPY.NULL],
  [REQ.RESELECT]: [0, RPY.NULL],
  [REQ.RESELECTDISTANCE]: [4, RPY.NULL],
  [REQ.MODIFY_MAKESTEP]: [8, RPY.NULL],
  [REQ.SMOOTHING]: [0, RPY.SMOOTHING],
  [REQ.SMOOTHTIME]: [4, RPY.NULL],
  [REQ.REFRESH]: [0, RPY.NULL],
  // SERVER_STATS is padded for the original (shorter, 4.3 "server_stats") layout: same size.
  [REQ.SERVER_STATS]: [0, RPY.SERVER_STATS3],
  [REQ.LOCAL2]: [16, RPY.NULL],
  [REQ.NTP_DATA]: [20, RPY.NTP_DATA],
  [REQ.SHUTDOWN]: [0, RPY.NULL],
  [REQ.ONOFFLINE]: [0, RPY.NULL],
  [REQ.ADD_SOURCE]: [352, RPY.NULL],
  [REQ.NTP_SOURCE_NAME]: [20, RPY.NTP_SOURCE_NAME],
  [REQ.RESET_SOURCES]: [0, RPY.NULL],
  [REQ.AUTH_DATA]: [20, RPY.AUTH_DATA],
  [REQ.CLIENT_ACCESSES_BY_INDEX3]: [16, RPY.CLIENT_ACCESSES_BY_INDEX3],
  [REQ.SELECT_DATA]: [4, RPY.SELECT_DATA],
  [REQ.RELOAD_SOURCES]: [0, RPY.NULL],
  [REQ.DOFFSET2]: [4, RPY.NULL],
};

/** Padding chronyc adds so the request is as long as the reply (version 6 only). */
export function requestPadding(command: number, version = PROTO_VERSION): number {
  const f = REQUEST_FORMAT[command];
  if (!f || version < PROTO_VERSION) return 0;
  const req = REQUEST_HEADER_LENGTH + f[0];
  const rpy = replyLength(f[1]);
  return req < rpy ? rpy - req : 0;
}

/** Full length (body + padding) a request must have, or 0 for an unknown/unsupported command. */
export function requestLength(command: number, version = PROTO_VERSION): number {
  const f = REQUEST_FORMAT[command];
  if (!f) return 0;
  return REQUEST_HEADER_LENGTH + f[0] + requestPadding(command, version);
}

// ---- IPAddr: 16 address bytes (in4 in the first 4), u16 family, u16 pad ----

export const IPADDR_LENGTH = 20;
export const IPADDR_UNSPEC = 0;
export const IPADDR_INET4 = 1;
export const IPADDR_INET6 = 2;
export const IPADDR_ID = 3;

export type CmdIpAddr =
  | { family: 'unspec' }
  | { family: 'inet4'; address: string }
  | { family: 'inet6'; address: string; bytes: Uint8Array }
  | { family: 'id'; id: number };

export function readIpAddr(b: Buffer, off: number): CmdIpAddr {
  const family = b.readUInt16BE(off + 16);
  switch (family) {
    case IPADDR_INET4:
      return { family: 'inet4', address: `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}` };
    case IPADDR_INET6: {
      const bytes = new Uint8Array(b.subarray(off, off + 16));
      return { family: 'inet6', address: formatIPv6(bytes), bytes };
    }
    case IPADDR_ID:
      return { family: 'id', id: b.readUInt32BE(off) };
    default:
      return { family: 'unspec' }; // as chronyd: any other family reads as unspecified
  }
}

export function writeIpAddr(b: Buffer, off: number, a: CmdIpAddr): void {
  b.fill(0, off, off + IPADDR_LENGTH);
  switch (a.family) {
    case 'inet4': {
      const p = parseAddress(a.address);
      if (p?.family !== 4) return; // stays UNSPEC
      b.set(p.bytes, off);
      b.writeUInt16BE(IPADDR_INET4, off + 16);
      return;
    }
    case 'inet6':
      b.set(a.bytes.subarray(0, 16), off);
      b.writeUInt16BE(IPADDR_INET6, off + 16);
      return;
    case 'id':
      b.writeUInt32BE(a.id >>> 0, off);
      b.writeUInt16BE(IPADDR_ID, off + 16);
      return;
    default:
      return;
  }
}

/** The cmdmon form of a textual address; anything that is not an IP address is UNSPEC. */
export function ipAddrFromString(text: string): CmdIpAddr {
  const p = parseAddress(text);
  if (!p) return { family: 'unspec' };
  if (p.family === 4) return { family: 'inet4', address: [...p.bytes].join('.') };
  return { family: 'inet6', address: formatIPv6(p.bytes), bytes: p.bytes };
}

/** RFC 5952 text of 16 address bytes (longest zero run compressed). */
export function formatIPv6(bytes: Uint8Array): string {
  const w: number[] = [];
  for (let i = 0; i < 8; i++) w.push((bytes[2 * i]! << 8) | bytes[2 * i + 1]!);
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (w[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (a: number[]) => a.map((x) => x.toString(16)).join(':');
  if (bestStart < 0) return hex(w);
  return `${hex(w.slice(0, bestStart))}::${hex(w.slice(bestStart + bestLen))}`;
}

/** Address bytes of a resolved cmdmon address, null for UNSPEC/ID. */
export function ipBytes(a: CmdIpAddr): Uint8Array | null {
  if (a.family === 'inet6') return a.bytes;
  if (a.family === 'inet4') return parseAddress(a.address)?.bytes ?? null;
  return null;
}

/**
 * UTI_CompareIPs(a, b, mask) == 0: same family and equal under the mask (the mask is ignored
 * when its family differs).
 */
export function ipMatches(addr: CmdIpAddr, target: CmdIpAddr, mask: CmdIpAddr): boolean {
  if (addr.family !== target.family) return false;
  const a = ipBytes(addr);
  const t = ipBytes(target);
  if (!a || !t) return addr.family === target.family && addr.family === 'unspec';
  const m = mask.family === target.family ? ipBytes(mask) : null;
  for (let i = 0; i < a.length; i++) {
    const mb = m ? m[i]! : 0xff;
    if ((a[i]! & mb) !== (t[i]! & mb)) return false;
  }
  return true;
}

// ---- Timespec: u32 sec_high (0x7fffffff = none), u32 sec_low, u32 nsec ----

export const TIMESPEC_LENGTH = 12;

export function writeTimespec(b: Buffer, off: number, ns: bigint): void {
  let sec = ns / 1_000_000_000n;
  let nsec = ns - sec * 1_000_000_000n;
  if (nsec < 0n) {
    sec -= 1n;
    nsec += 1_000_000_000n;
  }
  const u = BigInt.asUintN(64, sec);
  b.writeUInt32BE(Number(u >> 32n), off);
  b.writeUInt32BE(Number(u & 0xffffffffn), off + 4);
  b.writeUInt32BE(Number(nsec), off + 8);
}

export function readTimespec(b: Buffer, off: number): bigint {
  let high = b.readUInt32BE(off);
  if (high === 0x7fffffff) high = 0;
  const sec = BigInt.asIntN(64, (BigInt(high) << 32n) | BigInt(b.readUInt32BE(off + 4)));
  const nsec = Math.min(b.readUInt32BE(off + 8), 999_999_999);
  return sec * 1_000_000_000n + BigInt(nsec);
}
