/**
 * rubidiumd's control protocol: JSON requests `{ "cmd": string, "args": string[] }` answered by
 * `{ "ok": true, "data": ... }` or `{ "ok": false, "error": string }`. Over a Unix stream socket
 * each message is one line of JSON; over UDP each message is one datagram.
 */

export interface ControlRequest {
  cmd: string;
  args: string[];
}

export type ControlResponse = { ok: true; data: unknown } | { ok: false; error: string };

/** Largest request accepted, in bytes of JSON (a line or a datagram). */
export const MAX_REQUEST_BYTES = 8 * 1024;
/** Largest response sent (a UDP datagram must fit; applied to both transports). */
export const MAX_RESPONSE_BYTES = 64 * 1024;
export const MAX_ARGS = 32;

export function okResponse(data: unknown = null): ControlResponse {
  return { ok: true, data };
}

export function errorResponse(error: string): ControlResponse {
  return { ok: false, error };
}

export function unknownCommand(cmd: string): ControlResponse {
  return errorResponse(`unknown command '${cmd}'`);
}

export type ParsedRequest = { ok: true; request: ControlRequest } | { ok: false; error: string };

/** Validates raw bytes/text of one request. Never throws. */
export function parseRequest(raw: string | Uint8Array): ParsedRequest {
  const size = typeof raw === 'string' ? Buffer.byteLength(raw) : raw.byteLength;
  if (size > MAX_REQUEST_BYTES) return { ok: false, error: `request too large (max ${MAX_REQUEST_BYTES} bytes)` };
  const text = typeof raw === 'string' ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('utf8');
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return { ok: false, error: 'malformed request: invalid JSON' };
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    return { ok: false, error: 'malformed request: not an object' };
  }
  const o = v as Record<string, unknown>;
  if (typeof o.cmd !== 'string' || !/^[A-Za-z][A-Za-z0-9_-]{0,63}$/.test(o.cmd)) {
    return { ok: false, error: "malformed request: 'cmd' must be a command name" };
  }
  const args = o.args === undefined ? [] : o.args;
  if (!Array.isArray(args) || args.length > MAX_ARGS || !args.every((a) => typeof a === 'string')) {
    return { ok: false, error: `malformed request: 'args' must be an array of at most ${MAX_ARGS} strings` };
  }
  return { ok: true, request: { cmd: o.cmd, args: args as string[] } };
}

/**
 * Serialises a response; one that would exceed MAX_RESPONSE_BYTES is replaced by an error
 * response (bigints, which JSON cannot hold, are written as decimal strings).
 */
export function encodeResponse(r: ControlResponse): string {
  let s: string;
  try {
    s = JSON.stringify(r, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
  } catch (e) {
    s = JSON.stringify(errorResponse(`cannot encode response: ${(e as Error).message}`));
  }
  if (Buffer.byteLength(s) > MAX_RESPONSE_BYTES) {
    s = JSON.stringify(errorResponse(`response too large (max ${MAX_RESPONSE_BYTES} bytes)`));
  }
  return s;
}

/** Validates a response received by a client; throws on anything that is not a response. */
export function decodeResponse(text: string): ControlResponse {
  const v = JSON.parse(text) as unknown;
  if (typeof v === 'object' && v !== null) {
    const o = v as Record<string, unknown>;
    if (o.ok === true) return { ok: true, data: o.data ?? null };
    if (o.ok === false && typeof o.error === 'string') return { ok: false, error: o.error };
  }
  throw new Error('not a control response');
}

/** True for addresses of this host's loopback interface (127.0.0.0/8, ::1, ::ffff:127.x.y.z). */
export { isLoopbackAddress } from '../ntp/ipaddr.js';

/** Token bucket bounding the rate of requests: `rate` per second, bursts of up to `burst`. */
export class RateLimiter {
  private tokens: number;
  private last: number;

  constructor(
    readonly rate: number,
    readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = burst;
    this.last = now();
  }

  /** Takes one token; false if the bucket is empty (request to be refused). */
  take(): boolean {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.rate);
    this.last = t;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
