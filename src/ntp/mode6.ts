/**
 * NTP mode 6 control messages (RFC 9327), sans-IO: what NTPsec's `ntpq` sends and expects.
 *
 * Wire format: a 12-byte header
 *   LI|VN|Mode=6, R|E|M|Opcode(5), Sequence u16, Status u16, AssocID u16, Offset u16, Count u16
 * followed by `Count` data bytes, padded with zeros to a multiple of 4 (and, for an
 * authenticated request, a key id + MAC after that). A response larger than 468 data bytes is
 * split into fragments: each carries its byte `Offset` in the whole answer, all but the last
 * have the M (more) bit set; ntpq reassembles them by offset.
 *
 * Variables travel as ASCII `name=value` items separated by ", " (or ",\r\n" once a line would
 * pass 72 characters, as ntpd does), the whole list ending in "\r\n". ntpq parses each value
 * with Python's int(v, 0), then float(v), else keeps it as a string (quotes removed), so:
 * hex integers need a "0x" prefix, strings are quoted and must not contain '"' (ntpq toggles
 * "in string" on every quote) and unquoted values must not contain ',' or spaces.
 */
import { MODE_CONTROL } from './packet.js';
import type { Ntp64 } from '../time/ntp-time.js';

export const CTL_HEADER_LEN = 12;
/** Largest data part of one fragment (RFC 9327; ntpd's CTL_MAX_DATA_LEN). */
export const CTL_MAX_DATA_LEN = 468;
/** ntpd breaks variable lists into lines of about this many characters. */
const MAX_LINE_LEN = 72;
/** Shortest trailing key id + MAC (4 + 16 bytes, MD5) that makes a request "authenticated". */
const MIN_MAC_LEN = 4 + 16;
/** Longest trailing key id + MAC (4 + 20 bytes, SHA-1). */
const MAX_MAC_LEN = 4 + 20;

export const CTL_RESPONSE = 0x80;
export const CTL_ERROR = 0x40;
export const CTL_MORE = 0x20;
export const CTL_OP_MASK = 0x1f;

/** Opcodes (RFC 9327 §2; NTPsec's control.py). */
export const OP = Object.freeze({
  UNSPEC: 0,
  READSTAT: 1,
  READVAR: 2,
  WRITEVAR: 3,
  READCLOCK: 4,
  WRITECLOCK: 5,
  CONFIGURE: 8,
  READ_MRU: 10,
  READ_ORDLIST_A: 11,
  REQ_NONCE: 12,
});

/** Error codes carried in the high byte of the status word of an error response. */
export const CERR = Object.freeze({
  UNSPEC: 0,
  PERMISSION: 1,
  BADFMT: 2,
  BADOP: 3,
  BADASSOC: 4,
  UNKNOWNVAR: 5,
  BADVALUE: 6,
  RESTRICT: 7,
});

export interface ControlHeader {
  leap: number;
  version: number;
  response: boolean;
  error: boolean;
  more: boolean;
  opcode: number;
  sequence: number;
  status: number;
  associd: number;
  offset: number;
  count: number;
}

export interface ControlRequest {
  header: ControlHeader;
  /** The `count` data bytes (padding and MAC excluded). */
  data: Uint8Array;
  /** Bytes after the padded data that look like a key id + MAC (0 if none). */
  macLength: number;
}

/**
 * Why a datagram is not a request we answer. `answer` is set when ntpd answers with an error
 * (bad format) rather than dropping it silently.
 */
export type ControlDecodeResult =
  | { ok: true; request: ControlRequest }
  | { ok: false; reason: ControlDropReason; answer?: { header: ControlHeader; error: number } };

export type ControlDropReason = 'short' | 'mode' | 'not-request' | 'version' | 'bad-format';

function u16(b: Uint8Array, off: number): number {
  return (b[off]! << 8) | b[off + 1]!;
}

export function decodeControlHeader(b: Uint8Array): ControlHeader | null {
  if (b.length < CTL_HEADER_LEN) return null;
  return {
    leap: b[0]! >> 6,
    version: (b[0]! >> 3) & 7,
    response: (b[1]! & CTL_RESPONSE) !== 0,
    error: (b[1]! & CTL_ERROR) !== 0,
    more: (b[1]! & CTL_MORE) !== 0,
    opcode: b[1]! & CTL_OP_MASK,
    sequence: u16(b, 2),
    status: u16(b, 4),
    associd: u16(b, 6),
    offset: u16(b, 8),
    count: u16(b, 10),
  };
}

/**
 * Decodes a mode 6 request as ntpd validates it: too short, responses, fragments (offset ≠ 0)
 * and unknown versions are dropped silently; a count beyond the datagram or beyond 468 bytes,
 * or a length that is not a multiple of 4, is a format error that gets an error answer.
 */
export function decodeControlRequest(b: Uint8Array): ControlDecodeResult {
  const h = decodeControlHeader(b);
  if (!h) return { ok: false, reason: 'short' };
  if ((b[0]! & 7) !== MODE_CONTROL) return { ok: false, reason: 'mode' };
  if (h.response || h.more || h.error || h.offset !== 0) return { ok: false, reason: 'not-request' };
  if (h.version < 1 || h.version > 4) return { ok: false, reason: 'version' };
  const avail = b.length - CTL_HEADER_LEN;
  if (avail < h.count || (b.length & 3) !== 0 || h.count > CTL_MAX_DATA_LEN) {
    return { ok: false, reason: 'bad-format', answer: { header: h, error: CERR.BADFMT } };
  }
  const padded = (CTL_HEADER_LEN + h.count + 3) & ~3;
  const trailing = b.length - padded;
  const macLength = trailing >= MIN_MAC_LEN && trailing <= MAX_MAC_LEN ? trailing : 0;
  return {
    ok: true,
    request: { header: h, data: b.subarray(CTL_HEADER_LEN, CTL_HEADER_LEN + h.count), macLength },
  };
}

export interface ControlResponseSpec {
  leap: number;
  version: number;
  opcode: number;
  sequence: number;
  status: number;
  associd: number;
}

function header(spec: ControlResponseSpec, flags: number, status: number, offset: number, count: number): Uint8Array {
  const len = (CTL_HEADER_LEN + count + 3) & ~3;
  const out = new Uint8Array(len);
  out[0] = ((spec.leap & 3) << 6) | ((spec.version & 7) << 3) | MODE_CONTROL;
  out[1] = CTL_RESPONSE | flags | (spec.opcode & CTL_OP_MASK);
  const put = (off: number, v: number) => {
    out[off] = (v >> 8) & 0xff;
    out[off + 1] = v & 0xff;
  };
  put(2, spec.sequence);
  put(4, status);
  put(6, spec.associd);
  put(8, offset);
  put(10, count);
  return out;
}

/**
 * Splits a response's data into fragments of at most `maxData` (≤ 468) bytes, each padded to a
 * multiple of 4; an empty answer is one fragment with count 0.
 */
export function encodeControlResponse(
  spec: ControlResponseSpec,
  data: Uint8Array,
  maxData = CTL_MAX_DATA_LEN,
): Uint8Array[] {
  if (!(maxData >= 4 && maxData <= CTL_MAX_DATA_LEN)) throw new RangeError(`fragment size ${maxData} out of range`);
  if (data.length > 0xffff) throw new RangeError(`mode 6 response of ${data.length} bytes exceeds 65535`);
  const out: Uint8Array[] = [];
  let off = 0;
  do {
    const n = Math.min(maxData, data.length - off);
    const more = off + n < data.length;
    const frag = header(spec, more ? CTL_MORE : 0, spec.status, off, n);
    frag.set(data.subarray(off, off + n), CTL_HEADER_LEN);
    out.push(frag);
    off += n;
  } while (off < data.length);
  return out;
}

/** A 12-byte error response: E bit set, the error code in the status word's high byte. */
export function encodeControlError(spec: Omit<ControlResponseSpec, 'status'>, error: number): Uint8Array {
  return header({ ...spec, status: 0 }, CTL_ERROR, (error & 0xff) << 8, 0, 0);
}

// ---- variable lists ---------------------------------------------------------------------------

/** One `name=value` item, already rendered (see the value helpers below). */
export type VarItem = readonly [name: string, value: string];

/**
 * Renders variables the way ntpd lays them out: ", " between items, ",\r\n" instead once the
 * line would reach 72 characters, and a final "\r\n".
 */
export function formatVarList(items: readonly VarItem[]): string {
  let out = '';
  let line = 0;
  items.forEach(([name, value], i) => {
    const item = `${name}=${value}`;
    if (i > 0) {
      out += ',';
      line++;
      if (item.length + line + 1 >= MAX_LINE_LEN) {
        out += '\r\n';
        line = 0;
      } else {
        out += ' ';
        line++;
      }
    }
    out += item;
    line += item.length;
  });
  return items.length > 0 ? out + '\r\n' : '';
}

/**
 * Parses a variable list as ntpq writes it ("name1,name2" or "name=value,..."): items split on
 * ',', whitespace around items ignored, empty items skipped. Values (only meaningful for
 * WRITEVAR) are returned but not interpreted.
 */
export function parseVarRequest(data: Uint8Array): Array<{ name: string; value: string | null }> {
  const text = Buffer.from(data).toString('latin1');
  const out: Array<{ name: string; value: string | null }> = [];
  for (const raw of text.split(',')) {
    const item = raw.trim();
    if (item === '') continue;
    const eq = item.indexOf('=');
    if (eq < 0) out.push({ name: item, value: null });
    else out.push({ name: item.slice(0, eq).trim(), value: item.slice(eq + 1).trim() });
  }
  return out;
}

// ---- value renderings (ntpd's formats, as ntpq parses them) -----------------------------------

/** A quoted string; '"', ',' inside quotes is fine but '"' and non-printables become '.'. */
export function quoted(s: string): string {
  return `"${s.replace(/["\\]|[^\x20-\x7e]/g, '.')}"`;
}

/** An unquoted token: ',' whitespace, '"' and non-printables become '.'. */
export function token(s: string): string {
  return s.replace(/[,"\s]|[^\x20-\x7e]/g, '.');
}

/** Decimal integer. */
export function int(v: number): string {
  return String(Math.trunc(v));
}

/** 0x-prefixed lower-case hex, as ntpd's ctl_puthex. */
export function hex(v: number): string {
  return `0x${(v >>> 0).toString(16)}`;
}

/** Fixed-point decimal ("%.*f"); null if the value is not finite (then leave the variable out). */
export function fixed(v: number, decimals: number): string | null {
  if (!Number.isFinite(v)) return null;
  const s = v.toFixed(decimals);
  // toFixed(-0.0000001, 6) is "-0.000000": ntpd's printf gives the same sign, keep it.
  return s;
}

/** An NTP timestamp as ntpd's ctl_putts: "0x%08x.%08x". */
export function timestamp(ts: Ntp64): string {
  const s = Number((ts >> 32n) & 0xffff_ffffn);
  const f = Number(ts & 0xffff_ffffn);
  return `0x${s.toString(16).padStart(8, '0')}.${f.toString(16).padStart(8, '0')}`;
}

/**
 * A refid as ntpd prints it in mode 6: dotted quad for stratum 2..15 (an IPv4 address or the
 * hash of an IPv6 one), else the ASCII code up to the first NUL with non-printables as '.'
 * (ntpq then shows it as ".CODE.").
 */
export function refid(refId: number, stratum: number): string {
  const r = refId >>> 0;
  if (stratum > 1 && stratum < 16) return [r >>> 24, (r >>> 16) & 0xff, (r >>> 8) & 0xff, r & 0xff].join('.');
  let s = '';
  for (let shift = 24; shift >= 0; shift -= 8) {
    const c = (r >>> shift) & 0xff;
    if (c === 0) break;
    s += c > 0x20 && c < 0x7f && c !== 0x2c && c !== 0x22 ? String.fromCharCode(c) : '.';
  }
  return s;
}

/** Renders variables to the response's data bytes. */
export function varListBytes(items: readonly VarItem[]): Uint8Array {
  return Buffer.from(formatVarList(items), 'latin1');
}

// ---- status words --------------------------------------------------------------------------------

/** System status: LI(2) | clock source(6) | event count(4) | event code(4). */
export function systemStatus(leap: number, source: number, eventCount = 0, eventCode = 0): number {
  return ((leap & 3) << 14) | ((source & 0x3f) << 8) | ((eventCount & 0xf) << 4) | (eventCode & 0xf);
}

/** Clock source codes of the system status word. */
export const CTL_SST_TS_UNSPEC = 0;
export const CTL_SST_TS_LOCAL = 5;
export const CTL_SST_TS_NTP = 6;

export const CTL_PST_CONFIG = 0x80;
export const CTL_PST_AUTHENABLE = 0x40;
export const CTL_PST_AUTHENTIC = 0x20;
export const CTL_PST_REACH = 0x10;

/** Peer selection codes, indexing ntpq's tally characters " x.-+#*o". */
export const SEL = Object.freeze({
  REJECT: 0,
  FALSETICK: 1,
  EXCESS: 2,
  OUTLIER: 3,
  CANDIDATE: 4,
  BACKUP: 5,
  SYSPEER: 6,
  PPSPEER: 7,
});

/** Peer status: flags(5) | selection(3) | event count(4) | event code(4). */
export function peerStatus(flags: number, select: number, eventCount = 0, eventCode = 0): number {
  return ((flags & 0xf8) << 8) | ((select & 7) << 8) | ((eventCount & 0xf) << 4) | (eventCode & 0xf);
}

// ---- addresses -----------------------------------------------------------------------------------

// isLoopbackAddress lives in ipaddr.ts (one definition for mode 6 and the control server).
export { isLoopbackAddress } from './ipaddr.js';
