/**
 * Parser of the IETF/NIST/IERS `leap-seconds.list` file (as shipped in tzdata).
 *
 * Format: data lines "NTP-seconds TAI-UTC [# comment]" (the instant, in seconds since 1900, from
 * which TAI−UTC has that value); `#$ N` last update, `#@ N` expiry (both NTP seconds); `#h` five
 * groups of 8 hex digits: the SHA-1 of the update number, the expiry number and the two numbers
 * of every data line, in that order, as ASCII digits with all white space and comments removed
 * (the file's own comments and the IERS README define it so). Other `#` lines are comments.
 *
 * Sans-IO: the caller reads the file and passes its text and name (for the error messages).
 */
import { createHash } from 'node:crypto';
import { NTP_UNIX_OFFSET_S } from '../time/ntp-time.js';
import type { LeapEntry } from './leap-schedule.js';

export class LeapFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LeapFileError';
  }
}

export interface LeapSecondsList {
  file: string;
  /** Instants (Unix seconds) from which TAI−UTC takes a new value; the first is the 1972 start. */
  entries: LeapEntry[];
  /** Last update and expiry, Unix seconds. */
  updated: bigint;
  expires: bigint;
  /** Whether a `#h` line was present (it always verified, or parsing failed). */
  hashed: boolean;
}

/** Bounds that keep a hostile file from costing memory or time. */
const MAX_BYTES = 1 << 20;
const MAX_ENTRIES = 1000;

const NUMBER = /^\d{1,12}$/;

export function parseLeapSecondsList(text: string, file: string): LeapSecondsList {
  if (text.length > MAX_BYTES) throw new LeapFileError(`${file}: file too large (${text.length} bytes)`);
  const lines = text.split(/\r?\n/);
  let updated: { value: string; line: number } | null = null;
  let expires: { value: string; line: number } | null = null;
  let hash: { value: string; line: number } | null = null;
  const data: { t: string; dtai: string; line: number }[] = [];
  for (let i = 0; i < lines.length; i++) {
    const where = `${file}:${i + 1}`;
    const line = lines[i]!;
    if (line.trim() === '') continue;
    if (line.startsWith('#')) {
      const kind = line[1];
      if (kind !== '$' && kind !== '@' && kind !== 'h') continue;
      const rest = line.slice(2).trim();
      if (kind === 'h') {
        const hex = rest.replace(/\s+/g, '').toLowerCase();
        if (!/^[0-9a-f]{40}$/.test(hex)) throw new LeapFileError(`${where}: malformed hash line '${line.trim()}'`);
        if (hash) throw new LeapFileError(`${where}: second hash line`);
        hash = { value: hex, line: i + 1 };
        continue;
      }
      const v = rest.split(/\s+/)[0] ?? '';
      if (!NUMBER.test(v)) {
        throw new LeapFileError(
          `${where}: malformed ${kind === '$' ? 'update (#$)' : 'expiry (#@)'} line '${line.trim()}'`,
        );
      }
      if (kind === '$') updated = { value: v, line: i + 1 };
      else expires = { value: v, line: i + 1 };
      continue;
    }
    const fields = line.split('#')[0]!.trim().split(/\s+/);
    if (fields.length !== 2 || !NUMBER.test(fields[0]!) || !/^\d{1,3}$/.test(fields[1]!)) {
      throw new LeapFileError(
        `${where}: malformed leap second entry '${line.trim()}' (expected "NTP-seconds TAI-UTC")`,
      );
    }
    if (data.length >= MAX_ENTRIES) throw new LeapFileError(`${where}: more than ${MAX_ENTRIES} entries`);
    data.push({ t: fields[0]!, dtai: fields[1]!, line: i + 1 });
  }
  if (!updated) throw new LeapFileError(`${file}: no last-update (#$) line`);
  if (!expires) throw new LeapFileError(`${file}: no expiry (#@) line`);
  if (data.length === 0) throw new LeapFileError(`${file}: no leap second entries`);

  if (hash) {
    const h = createHash('sha1');
    h.update(updated.value + expires.value);
    for (const d of data) h.update(d.t + d.dtai);
    const got = h.digest('hex');
    if (got !== hash.value) {
      throw new LeapFileError(
        `${file}:${hash.line}: hash mismatch (file says ${hash.value}, data hashes to ${got}): corrupted or edited file`,
      );
    }
  }

  const entries: LeapEntry[] = [];
  for (const d of data) {
    const at = BigInt(d.t) - NTP_UNIX_OFFSET_S;
    const taiUtc = Number(d.dtai);
    const prev = entries[entries.length - 1];
    if (prev) {
      if (at <= prev.at) throw new LeapFileError(`${file}:${d.line}: entries out of order`);
      if (Math.abs(taiUtc - prev.taiUtc) !== 1) {
        throw new LeapFileError(`${file}:${d.line}: TAI-UTC changes by ${taiUtc - prev.taiUtc} s (a leap is ±1 s)`);
      }
    }
    if (at % 86400n !== 0n) throw new LeapFileError(`${file}:${d.line}: entry is not at 00:00:00 UTC`);
    entries.push({ at, taiUtc });
  }
  return {
    file,
    entries,
    updated: BigInt(updated.value) - NTP_UNIX_OFFSET_S,
    expires: BigInt(expires.value) - NTP_UNIX_OFFSET_S,
    hashed: hash !== null,
  };
}

/** A warning if the list has expired at `nowUnixS` (chrony: "needs update"), else null. */
export function leapListExpiryWarning(list: LeapSecondsList, nowUnixS: bigint): string | null {
  if (nowUnixS < list.expires) return null;
  const d = new Date(Number(list.expires) * 1000).toISOString().slice(0, 10);
  return `${list.file}: leap second list expired on ${d}, it needs an update (leap seconds after it are unknown)`;
}
