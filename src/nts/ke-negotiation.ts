/**
 * NTS-KE negotiation (RFC 8915 §4), sans-IO: the server's answer to a request, the client's
 * request and the client's reading of the answer. Keys come from a `KeyExporter` the TLS layer
 * provides (RFC 5705 exporter, label `EXPORTER-network-time-security`).
 *
 * AES-128-GCM-SIV (AEAD 30) and chrony: chrony 4.4–4.6 put AEAD 15 instead of 30 in the exporter
 * context (chrony ≤ 4.3 hard-codes 15 too, but only ever negotiates 15). chrony ≥ 4.6.1 keeps that
 * by default and negotiates the RFC-compliant context with the empty non-critical record 1024:
 * the client sends it whenever it offers 30; a server that chose 30 and saw 1024 echoes it and
 * both use context 30; otherwise both use 15. A client that got 30 without 1024 also derives the
 * compliant keys as an alternate, for a server that is compliant but does not know 1024 (it then
 * answers the first request with an NTS NAK).
 */
import {
  KE_ERROR,
  KE_ERROR_NAMES,
  KE_RECORD,
  NEXT_PROTOCOL_NTPV4,
  aeadRecord,
  compliantGcmExportRecord,
  cookieRecord,
  errorRecord,
  nextProtocolRecord,
  ntpPortRecord,
  ntpServerRecord,
  readU16List,
  type KeRecord,
} from './ke-records.js';
import type { AeadId } from './aead.js';
import type { CookieContents } from './cookies.js';
import type { NtsKeResult } from './ntp-client.js';

/** AEAD ids NTS-KE negotiates (the contract's `AeadId`). */
export type KeAeadId = AeadId;

/** Key length in bytes per AEAD (AES-SIV-CMAC-256: two AES-128 keys; AES-128-GCM-SIV: one). */
export const KE_AEAD_KEY_LENGTH: Record<KeAeadId, number> = { 15: 32, 30: 16 };

export const DEFAULT_KE_AEADS: readonly KeAeadId[] = [30, 15];

export const NTS_EXPORTER_LABEL = 'EXPORTER-network-time-security';
export const NTS_KE_PORT = 4460;
export const NTS_KE_ALPN = 'ntske/1';
export const NTP_DEFAULT_PORT = 123;
/** chrony's NKE_MAX_COOKIES and NKE_MAX_COOKIE_LENGTH. */
export const KE_MAX_COOKIES = 8;
export const KE_MAX_COOKIE_LENGTH = 256;

export function isKeAeadId(id: number): id is KeAeadId {
  return id === 15 || id === 30;
}

/** What a cookie seals (the contract's `CookieContents`). */
export type KeCookieContents = CookieContents;

/** What the client learnt beyond the contract result. */
export interface KeClientResult extends NtsKeResult {
  /** True when the keys came from the RFC-compliant context (always true for AEAD 15). */
  compliantExport: boolean;
  /** AEAD 30 without record 1024: the compliant keys, to try after an NTS NAK. */
  alternateKeys?: { c2s: Uint8Array; s2c: Uint8Array };
}

/** RFC 5705 exporter of the TLS session: `context` is the 5-byte NTS context. */
export type KeyExporter = (context: Uint8Array, length: number) => Uint8Array;

/** RFC 8915 §5.1 context: next protocol u16 | AEAD u16 | 0x00 (C2S) or 0x01 (S2C). */
export function exporterContext(contextAead: number, direction: 'c2s' | 's2c'): Uint8Array {
  return Uint8Array.of(
    NEXT_PROTOCOL_NTPV4 >> 8,
    NEXT_PROTOCOL_NTPV4 & 0xff,
    (contextAead >> 8) & 0xff,
    contextAead & 0xff,
    direction === 'c2s' ? 0 : 1,
  );
}

/** The AEAD id written in the exporter context (chrony's compatibility rule, see above). */
export function contextAeadFor(aead: KeAeadId, compliant: boolean): number {
  return aead === 30 && !compliant ? 15 : aead;
}

export function exportKeys(
  exporter: KeyExporter,
  aead: KeAeadId,
  compliant: boolean,
): { c2s: Uint8Array; s2c: Uint8Array } {
  const ctx = contextAeadFor(aead, compliant);
  const len = KE_AEAD_KEY_LENGTH[aead];
  return { c2s: exporter(exporterContext(ctx, 'c2s'), len), s2c: exporter(exporterContext(ctx, 's2c'), len) };
}

// ---------------------------------------------------------------------------------------------
// Server

export interface KeServerPolicy {
  /** Supported AEADs, most preferred first. */
  aeads: readonly KeAeadId[];
  /** NTPv4 Server Negotiation record value, or null to let the client use the KE host. */
  ntpServer: string | null;
  /** NTPv4 Port Negotiation record value, or null for the default (123). */
  ntpPort: number | null;
  makeCookie: (c: KeCookieContents) => Uint8Array;
}

export type KeServerOutcome =
  | { kind: 'ok'; aead: KeAeadId; compliantExport: boolean; cookies: number }
  /** An Error record was sent. */
  | { kind: 'error'; code: number; reason: string }
  /** The client offered no protocol / AEAD we support: empty record sent (RFC 8915 §4.1.2, §4.1.5). */
  | { kind: 'no-common'; what: 'next-protocol' | 'aead' };

export interface KeServerAnswer {
  records: KeRecord[];
  outcome: KeServerOutcome;
}

/** The records of an Error answer (e.g. for a request the decoder refused). */
export function keErrorAnswer(code: number, reason: string): KeServerAnswer {
  return { records: [errorRecord(code)], outcome: { kind: 'error', code, reason } };
}

/**
 * The server's answer to a request (records without End of Message). The first problem in record
 * order decides: unknown critical record → Error 0; Error/Warning/Cookie records, malformed
 * bodies, a missing or repeated Next Protocol or AEAD record → Error 1. Unknown non-critical
 * records and the client's server/port suggestions are ignored.
 */
export function answerKeRequest(
  request: readonly KeRecord[],
  policy: KeServerPolicy,
  exporter: KeyExporter,
): KeServerAnswer {
  let protocolRecords = 0;
  let aeadRecords = 0;
  let offersNtp = false;
  const offered: number[] = [];
  let compliant = false;
  const bad = (reason: string): KeServerAnswer => keErrorAnswer(KE_ERROR.badRequest, reason);

  for (const r of request) {
    switch (r.type) {
      case KE_RECORD.endOfMessage:
        break;
      case KE_RECORD.nextProtocol: {
        const list = readU16List(r.body);
        if (!r.critical || list === null || list.length === 0) return bad('malformed Next Protocol record');
        protocolRecords++;
        if (list.includes(NEXT_PROTOCOL_NTPV4)) offersNtp = true;
        break;
      }
      case KE_RECORD.aeadAlgorithm: {
        const list = readU16List(r.body);
        if (list === null || list.length === 0) return bad('malformed AEAD Algorithm record');
        aeadRecords++;
        offered.push(...list);
        break;
      }
      case KE_RECORD.compliantGcmExport:
        if (r.body.length !== 0) return bad('non-empty record 1024');
        compliant = true;
        break;
      case KE_RECORD.error:
      case KE_RECORD.warning:
      case KE_RECORD.newCookie:
        return bad(`record type ${r.type} is not allowed in a request`);
      case KE_RECORD.ntpServer:
      case KE_RECORD.ntpPort:
        break; // the client's suggestion; we announce our own
      default:
        if (r.critical) {
          return keErrorAnswer(KE_ERROR.unrecognizedCritical, `unrecognized critical record type ${r.type}`);
        }
    }
  }
  if (protocolRecords !== 1) return bad(`${protocolRecords} Next Protocol records`);
  if (!offersNtp) {
    return { records: [nextProtocolRecord([])], outcome: { kind: 'no-common', what: 'next-protocol' } };
  }
  if (aeadRecords !== 1) return bad(`${aeadRecords} AEAD Algorithm records`);
  const aead = policy.aeads.find((a) => offered.includes(a));
  if (aead === undefined) {
    return {
      records: [nextProtocolRecord([NEXT_PROTOCOL_NTPV4]), aeadRecord([])],
      outcome: { kind: 'no-common', what: 'aead' },
    };
  }
  const compliantExport = aead !== 30 || compliant;
  const records: KeRecord[] = [nextProtocolRecord([NEXT_PROTOCOL_NTPV4]), aeadRecord([aead])];
  if (aead === 30 && compliant) records.push(compliantGcmExportRecord());
  if (policy.ntpPort !== null) records.push(ntpPortRecord(policy.ntpPort));
  if (policy.ntpServer !== null) records.push(ntpServerRecord(policy.ntpServer));
  const keys = exportKeys(exporter, aead, compliantExport);
  for (let i = 0; i < KE_MAX_COOKIES; i++) {
    records.push(cookieRecord(policy.makeCookie({ aead, c2s: keys.c2s, s2c: keys.s2c })));
  }
  return { records, outcome: { kind: 'ok', aead, compliantExport, cookies: KE_MAX_COOKIES } };
}

// ---------------------------------------------------------------------------------------------
// Client

/** The request: Next Protocol NTPv4, our AEADs, and record 1024 when offering 30 (as chrony). */
export function buildKeRequest(aeads: readonly KeAeadId[]): KeRecord[] {
  if (aeads.length === 0) throw new RangeError('NTS-KE request needs at least one AEAD');
  const records = [nextProtocolRecord([NEXT_PROTOCOL_NTPV4]), aeadRecord(aeads)];
  if (aeads.includes(30)) records.push(compliantGcmExportRecord());
  return records;
}

export interface KeAnswerSummary {
  aead: KeAeadId;
  compliantExport: boolean;
  server: string | null;
  port: number | null;
  cookies: Uint8Array[];
  /** Cookies dropped (bad length or beyond 8), as chrony drops them. */
  ignoredCookies: number;
}

export type KeAnswerParse = { ok: true; answer: KeAnswerSummary } | { ok: false; error: string };

function isPrintableHost(body: Uint8Array): boolean {
  return body.every((b) => b > 0x20 && b < 0x7f);
}

/** Reads the server's answer (records without End of Message) against what we offered. */
export function parseKeAnswer(records: readonly KeRecord[], offered: readonly KeAeadId[]): KeAnswerParse {
  const fail = (error: string): KeAnswerParse => ({ ok: false, error });
  let nextProtocol = false;
  let aead: KeAeadId | null = null;
  let compliant = false;
  let server: string | null = null;
  let port: number | null = null;
  const cookies: Uint8Array[] = [];
  let ignoredCookies = 0;
  for (const r of records) {
    switch (r.type) {
      case KE_RECORD.endOfMessage:
        break;
      case KE_RECORD.error: {
        const code = readU16List(r.body);
        const c = code?.length === 1 ? code[0]! : null;
        return fail(
          `server sent NTS-KE error ${c ?? '?'}${c !== null && KE_ERROR_NAMES[c] ? ` (${KE_ERROR_NAMES[c]})` : ''}`,
        );
      }
      case KE_RECORD.warning: {
        const code = readU16List(r.body);
        return fail(`server sent NTS-KE warning ${code?.length === 1 ? code[0] : '?'} (none is defined)`);
      }
      case KE_RECORD.nextProtocol: {
        const list = readU16List(r.body);
        if (list !== null && list.length === 0) return fail('server supports no next protocol we offered (NTPv4)');
        if (!r.critical || list === null || list.length !== 1 || list[0] !== NEXT_PROTOCOL_NTPV4) {
          return fail('unexpected Next Protocol record');
        }
        nextProtocol = true;
        break;
      }
      case KE_RECORD.aeadAlgorithm: {
        const list = readU16List(r.body);
        if (list !== null && list.length === 0) {
          return fail(`server supports none of the AEADs we offered (${offered.join(', ')})`);
        }
        if (list === null || list.length !== 1) return fail('malformed AEAD Algorithm record');
        const id = list[0]!;
        if (!isKeAeadId(id) || !offered.includes(id)) return fail(`server chose AEAD ${id}, which we did not offer`);
        aead = id;
        break;
      }
      case KE_RECORD.compliantGcmExport:
        if (r.body.length !== 0) return fail('non-empty record 1024');
        compliant = true;
        break;
      case KE_RECORD.newCookie:
        if (r.body.length < 1 || r.body.length > KE_MAX_COOKIE_LENGTH || r.body.length % 4 !== 0) {
          ignoredCookies++;
        } else if (cookies.length >= KE_MAX_COOKIES) {
          ignoredCookies++;
        } else {
          cookies.push(r.body);
        }
        break;
      case KE_RECORD.ntpServer:
        if (r.body.length < 1 || r.body.length > 255 || !isPrintableHost(r.body)) {
          return fail('invalid NTPv4 Server Negotiation record');
        }
        server = new TextDecoder().decode(r.body);
        break;
      case KE_RECORD.ntpPort: {
        const list = readU16List(r.body);
        if (list === null || list.length !== 1) return fail('invalid NTPv4 Port Negotiation record');
        port = list[0]!;
        break;
      }
      default:
        if (r.critical) return fail(`unrecognized critical record type ${r.type}`);
    }
  }
  if (!nextProtocol) return fail('answer has no Next Protocol record');
  if (aead === null) return fail('answer has no AEAD Algorithm record');
  if (cookies.length === 0) return fail(`answer has no usable cookie (${ignoredCookies} ignored)`);
  return {
    ok: true,
    answer: { aead, compliantExport: aead !== 30 || compliant, server, port, cookies, ignoredCookies },
  };
}

/** The client's result: keys exported from the session, defaults for server and port. */
export function completeKe(answer: KeAnswerSummary, keHost: string, exporter: KeyExporter): KeClientResult {
  const keys = exportKeys(exporter, answer.aead, answer.compliantExport);
  const result: KeClientResult = {
    server: answer.server ?? keHost,
    port: answer.port ?? NTP_DEFAULT_PORT,
    aead: answer.aead,
    c2s: keys.c2s,
    s2c: keys.s2c,
    cookies: answer.cookies,
    compliantExport: answer.compliantExport,
  };
  if (!answer.compliantExport) result.alternateKeys = exportKeys(exporter, answer.aead, true);
  return result;
}
