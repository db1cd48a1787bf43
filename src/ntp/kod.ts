/**
 * Kiss-o'-Death packets (RFC 5905 §7.4): a server-mode packet with stratum 0 whose refid holds
 * an ASCII "kiss code". A stratum-0 packet whose refid is not printable ASCII (chrony sends
 * refid 0 with stratum 0 while unsynchronised) is just an unsynchronised server, not a KoD.
 */
import { refIdFromAscii, refIdToAscii } from './refid.js';

/** Kiss codes defined by RFC 5905 (plus NTSN from RFC 8915). */
export const KOD_CODES = [
  'ACST',
  'AUTH',
  'AUTO',
  'BCST',
  'CRYP',
  'DENY',
  'DROP',
  'RSTR',
  'INIT',
  'MCST',
  'NKEY',
  'RATE',
  'RMOT',
  'STEP',
  'NTSN',
] as const;
export type KodCode = (typeof KOD_CODES)[number];

export const KOD_DENY = refIdFromAscii('DENY');
export const KOD_RSTR = refIdFromAscii('RSTR');
export const KOD_RATE = refIdFromAscii('RATE');

/** What a client does on a (believed) KoD: stop using the source, poll slower, or nothing. */
export type KodAction = 'stop' | 'slow' | 'ignore';

/** The kiss code of a packet, or null if it is not a KoD (stratum ≠ 0 or refid not ASCII). */
export function kissCode(stratum: number, refId: number): string | null {
  if (stratum !== 0) return null;
  return refIdToAscii(refId);
}

/** DENY and RSTR stop polling; RATE slows down; any other code is only not a sample. */
export function kodAction(code: string): KodAction {
  if (code === 'DENY' || code === 'RSTR') return 'stop';
  if (code === 'RATE') return 'slow';
  return 'ignore';
}
