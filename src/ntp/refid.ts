/**
 * Reference identifiers (RFC 5905 §7.3): for stratum ≥ 2 the upstream server's IPv4 address, or
 * the first four octets of the MD5 digest of its IPv6 address; for stratum 1 (and KoD packets,
 * stratum 0) a left-justified, zero-padded ASCII code such as "GPS", "PPS" or "LOCL".
 * RefIds are carried as unsigned 32-bit numbers (network byte order read big-endian).
 */
import { createHash } from 'node:crypto';
import { parseAddress } from './ipaddr.js';

/** chrony's refid for the local reference (`local` directive): 127.127.1.1. */
export const REFID_LOCAL = 0x7f7f0101;
/** chrony's refid while unsynchronised. */
export const REFID_UNSYNC = 0;

function u32(b: Uint8Array, off = 0): number {
  return ((b[off]! << 24) | (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!) >>> 0;
}

/** RefId of an IPv4 address: its four octets. */
export function refIdFromIPv4(bytes: Uint8Array): number {
  if (bytes.length !== 4) throw new RangeError('IPv4 address must be 4 bytes');
  return u32(bytes);
}

/** RefId of an IPv6 address: the first four octets of the MD5 digest of its 16 octets. */
export function refIdFromIPv6(bytes: Uint8Array): number {
  if (bytes.length !== 16) throw new RangeError('IPv6 address must be 16 bytes');
  const digest = createHash('md5').update(bytes).digest();
  return u32(digest);
}

/** RefId of a textual address (IPv4-mapped IPv6 is treated as IPv4). Throws on bad input. */
export function refIdFromAddress(address: string): number {
  const a = parseAddress(address);
  if (!a) throw new Error(`invalid IP address: ${address}`);
  return a.family === 4 ? refIdFromIPv4(a.bytes) : refIdFromIPv6(a.bytes);
}

/** RefId from an ASCII code of at most 4 printable characters ("GPS" → 0x47505300). */
export function refIdFromAscii(code: string): number {
  if (code.length > 4 || !/^[\x20-\x7e]*$/.test(code)) {
    throw new Error(`refid must be at most 4 printable ASCII characters: ${JSON.stringify(code)}`);
  }
  const b = new Uint8Array(4);
  for (let i = 0; i < code.length; i++) b[i] = code.charCodeAt(i);
  return u32(b);
}

/**
 * Decodes an ASCII refid: the characters up to the first NUL, when all are printable and there
 * is at least one, and everything after the first NUL is NUL. Otherwise null.
 */
export function refIdToAscii(refId: number): string | null {
  let s = '';
  let ended = false;
  for (let shift = 24; shift >= 0; shift -= 8) {
    const c = (refId >>> shift) & 0xff;
    if (c === 0) {
      ended = true;
      continue;
    }
    if (ended || c < 0x20 || c > 0x7e) return null;
    s += String.fromCharCode(c);
  }
  return s.length > 0 ? s : null;
}

/** Eight upper-case hex digits, as chronyc prints refids ("CB00710F"). */
export function formatRefIdHex(refId: number): string {
  return (refId >>> 0).toString(16).toUpperCase().padStart(8, '0');
}

/** Dotted-quad rendering of a refid ("203.0.113.15"). */
export function formatRefIdDotted(refId: number): string {
  const r = refId >>> 0;
  return [r >>> 24, (r >>> 16) & 0xff, (r >>> 8) & 0xff, r & 0xff].join('.');
}

/**
 * ntpq style: ASCII codes in dots (".GPS.", ".RATE.") for stratum 0, 1 and 16 when the refid
 * is printable ASCII; dotted quad otherwise (a zero refid prints "0.0.0.0").
 */
export function formatRefIdNtpq(refId: number, stratum: number): string {
  if (stratum <= 1 || stratum >= 16) {
    const a = refIdToAscii(refId);
    if (a !== null) return `.${a}.`;
  }
  return formatRefIdDotted(refId);
}

/**
 * chronyc `tracking` style: hex plus a name in parentheses. `name` is the resolved name or
 * address of the reference when known; otherwise the ASCII code for refclock-style refids, or
 * nothing. ("CB00710F (ntp1.example.net)", "47505300 (GPS)", "00000000 ()")
 */
export function formatRefIdChrony(refId: number, name?: string): string {
  const n = name ?? refIdToAscii(refId) ?? '';
  return `${formatRefIdHex(refId)} (${n})`;
}
