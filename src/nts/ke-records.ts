/**
 * NTS-KE record codec (RFC 8915 §4): `C(1 bit) | type(15) | body length(16) | body`.
 *
 * The decoder is incremental (TCP delivers a message in arbitrary pieces), bounded (message size,
 * record count) and total: bad input yields a typed error with the byte offset, never an
 * exception. Memory held is at most `maxMessageBytes` per decoder.
 */

export const KE_RECORD = {
  endOfMessage: 0,
  nextProtocol: 1,
  error: 2,
  warning: 3,
  aeadAlgorithm: 4,
  newCookie: 5,
  ntpServer: 6,
  ntpPort: 7,
  /** chrony ≥ 4.6.1: "compliant AES-128-GCM-SIV export" (RFC 5705 context carries AEAD 30). */
  compliantGcmExport: 1024,
} as const;

export const KE_ERROR = { unrecognizedCritical: 0, badRequest: 1, internalServerError: 2 } as const;

export const KE_ERROR_NAMES: Record<number, string> = {
  0: 'unrecognized critical record',
  1: 'bad request',
  2: 'internal server error',
};

export const NEXT_PROTOCOL_NTPV4 = 0;

export interface KeRecord {
  critical: boolean;
  /** 15-bit record type. */
  type: number;
  body: Uint8Array;
}

/**
 * Limits. 16384 bytes is chrony's NKE_MAX_MESSAGE_LENGTH (its whole receive buffer): no real
 * client or server message comes near it (a request is ~20 bytes, an answer with 8 cookies of
 * 168 bytes ~1.4 KiB). 64 records: a request needs 4 and an answer at most 14 (next protocol,
 * AEAD, 1024, server, port, 8 cookies, end); the rest is room for future non-critical records,
 * while a flood of empty 4-byte records is cut after 256 bytes instead of 16 KiB of work.
 */
export interface KeLimits {
  maxMessageBytes: number;
  maxRecords: number;
}

export const DEFAULT_KE_LIMITS: Readonly<KeLimits> = { maxMessageBytes: 16384, maxRecords: 64 };

export type KeDecodeErrorCode =
  'message-too-large' | 'too-many-records' | 'bad-end-of-message' | 'data-after-end' | 'truncated';

export interface KeDecodeError {
  code: KeDecodeErrorCode;
  /** Byte offset in the message where the problem is. */
  offset: number;
  message: string;
}

export type KeDecodeStatus =
  | { kind: 'need-more' }
  /** Records up to (not including) End of Message. */
  | { kind: 'complete'; records: KeRecord[] }
  | { kind: 'error'; error: KeDecodeError };

const HEADER = 4;

/** Incremental decoder of one NTS-KE message (records up to End of Message). */
export class KeMessageDecoder {
  private readonly limits: KeLimits;
  private buf: Uint8Array;
  private length = 0;
  /** Offset of the first unparsed record header. */
  private parsed = 0;
  private readonly records: KeRecord[] = [];
  private status: KeDecodeStatus = { kind: 'need-more' };

  constructor(limits: Partial<KeLimits> = {}) {
    this.limits = { ...DEFAULT_KE_LIMITS, ...limits };
    this.buf = new Uint8Array(Math.min(1024, this.limits.maxMessageBytes));
  }

  /** Bytes received so far (bounded by maxMessageBytes). */
  get bytesReceived(): number {
    return this.length;
  }

  /** Feeds the next chunk; once complete or failed, the status no longer changes. */
  push(chunk: Uint8Array): KeDecodeStatus {
    if (this.status.kind !== 'need-more') {
      if (this.status.kind === 'complete' && chunk.length > 0) {
        this.status = this.fail('data-after-end', this.length, 'data after End of Message');
      }
      return this.status;
    }
    if (chunk.length === 0) return this.status;
    if (this.length + chunk.length > this.limits.maxMessageBytes) {
      return (this.status = this.fail(
        'message-too-large',
        this.limits.maxMessageBytes,
        `message longer than ${this.limits.maxMessageBytes} bytes`,
      ));
    }
    this.append(chunk);
    return (this.status = this.parse());
  }

  /** The peer closed its side: an unfinished message is truncated. */
  finish(): KeDecodeStatus {
    if (this.status.kind === 'need-more') {
      this.status = this.fail(
        'truncated',
        this.length,
        this.length === 0 ? 'connection closed before any record' : 'message ends before End of Message',
      );
    }
    return this.status;
  }

  private append(chunk: Uint8Array): void {
    if (this.length + chunk.length > this.buf.length) {
      const size = Math.min(this.limits.maxMessageBytes, Math.max(this.buf.length * 2, this.length + chunk.length));
      const bigger = new Uint8Array(size);
      bigger.set(this.buf.subarray(0, this.length));
      this.buf = bigger;
    }
    this.buf.set(chunk, this.length);
    this.length += chunk.length;
  }

  private parse(): KeDecodeStatus {
    while (this.length - this.parsed >= HEADER) {
      const at = this.parsed;
      const word = (this.buf[at]! << 8) | this.buf[at + 1]!;
      const bodyLength = (this.buf[at + 2]! << 8) | this.buf[at + 3]!;
      // Refuse a record that cannot fit as soon as its header is known (no waiting for 64 KiB).
      if (at + HEADER + bodyLength > this.limits.maxMessageBytes) {
        return this.fail(
          'message-too-large',
          at,
          `record of ${bodyLength} bytes at offset ${at} exceeds the ${this.limits.maxMessageBytes}-byte message limit`,
        );
      }
      if (this.length - at < HEADER + bodyLength) return { kind: 'need-more' };
      const critical = (word & 0x8000) !== 0;
      const type = word & 0x7fff;
      this.parsed = at + HEADER + bodyLength;
      if (type === KE_RECORD.endOfMessage) {
        if (!critical || bodyLength !== 0) {
          return this.fail('bad-end-of-message', at, 'End of Message must be critical with an empty body');
        }
        if (this.parsed !== this.length) {
          return this.fail('data-after-end', this.parsed, 'data after End of Message');
        }
        return { kind: 'complete', records: this.records };
      }
      if (this.records.length >= this.limits.maxRecords) {
        return this.fail('too-many-records', at, `more than ${this.limits.maxRecords} records`);
      }
      this.records.push({ critical, type, body: this.buf.slice(at + HEADER, this.parsed) });
    }
    return { kind: 'need-more' };
  }

  private fail(code: KeDecodeErrorCode, offset: number, message: string): KeDecodeStatus {
    return { kind: 'error', error: { code, offset, message } };
  }
}

/** Decodes one complete message (convenience for tests and fuzzing). */
export function decodeKeMessage(data: Uint8Array, limits: Partial<KeLimits> = {}): KeDecodeStatus {
  const d = new KeMessageDecoder(limits);
  const s = d.push(data);
  return s.kind === 'need-more' ? d.finish() : s;
}

// ---------------------------------------------------------------------------------------------
// Encoders

export function encodeRecord(record: KeRecord): Uint8Array {
  if (!Number.isInteger(record.type) || record.type < 0 || record.type > 0x7fff) {
    throw new RangeError(`NTS-KE record type ${record.type} out of range`);
  }
  if (record.body.length > 0xffff) throw new RangeError(`NTS-KE record body of ${record.body.length} bytes`);
  const out = new Uint8Array(HEADER + record.body.length);
  const word = (record.critical ? 0x8000 : 0) | record.type;
  out[0] = word >> 8;
  out[1] = word & 0xff;
  out[2] = record.body.length >> 8;
  out[3] = record.body.length & 0xff;
  out.set(record.body, HEADER);
  return out;
}

/** Encodes the records followed by End of Message. */
export function encodeKeMessage(records: KeRecord[]): Uint8Array {
  const parts = [...records, endOfMessageRecord()].map(encodeRecord);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function u16List(values: readonly number[]): Uint8Array {
  const out = new Uint8Array(values.length * 2);
  values.forEach((v, i) => {
    out[2 * i] = (v >> 8) & 0xff;
    out[2 * i + 1] = v & 0xff;
  });
  return out;
}

/** Reads a body of big-endian u16 values; null when its length is odd. */
export function readU16List(body: Uint8Array): number[] | null {
  if (body.length % 2 !== 0) return null;
  const out: number[] = [];
  for (let i = 0; i < body.length; i += 2) out.push((body[i]! << 8) | body[i + 1]!);
  return out;
}

export const endOfMessageRecord = (): KeRecord => ({
  critical: true,
  type: KE_RECORD.endOfMessage,
  body: new Uint8Array(0),
});
/** An empty list means "none of the offered protocols" (server answer). */
export const nextProtocolRecord = (protocols: readonly number[]): KeRecord => ({
  critical: true,
  type: KE_RECORD.nextProtocol,
  body: u16List(protocols),
});
export const errorRecord = (code: number): KeRecord => ({
  critical: true,
  type: KE_RECORD.error,
  body: u16List([code]),
});
export const warningRecord = (code: number): KeRecord => ({
  critical: true,
  type: KE_RECORD.warning,
  body: u16List([code]),
});
/** Critical as chrony sends it; an empty list means "none of the offered AEADs" (server answer). */
export const aeadRecord = (ids: readonly number[]): KeRecord => ({
  critical: true,
  type: KE_RECORD.aeadAlgorithm,
  body: u16List(ids),
});
/** New Cookie records are never critical (RFC 8915 §4.1.6). */
export const cookieRecord = (cookie: Uint8Array): KeRecord => ({
  critical: false,
  type: KE_RECORD.newCookie,
  body: cookie,
});
export const ntpServerRecord = (host: string): KeRecord => ({
  critical: true,
  type: KE_RECORD.ntpServer,
  body: new TextEncoder().encode(host),
});
export const ntpPortRecord = (port: number): KeRecord => ({
  critical: true,
  type: KE_RECORD.ntpPort,
  body: u16List([port]),
});
export const compliantGcmExportRecord = (): KeRecord => ({
  critical: false,
  type: KE_RECORD.compliantGcmExport,
  body: new Uint8Array(0),
});
