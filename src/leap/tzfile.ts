/**
 * Leap second records of a TZif file (tzfile(5), versions 1 to 4), e.g.
 * /usr/share/zoneinfo/right/UTC. chronyd's `leapsectz` asks the C library (mktime of 23:59:60);
 * Rubidium reads the file itself, every read bounds-checked.
 *
 * Layout: header "TZif", version, 15 reserved bytes, six big-endian u32 counts (isutcnt,
 * isstdcnt, leapcnt, timecnt, typecnt, charcnt), then the data block: transition times, type
 * indices, 6-byte ttinfo, abbreviation chars, leap records (time, i32 correction), isstd, isut.
 * Version 1 data uses 4-byte times; from version 2 a second header and block with 8-byte times
 * follows, which is the one used. A leap record's time is in the zone's own timescale (a
 * right/ zone counts leap seconds): the POSIX midnight of the leap is time − previous correction
 * (rounded up to the midnight for a deleted second). Version 4 allows the table to start with a
 * correction other than ±1 (truncated) and to end with a record repeating the previous
 * correction: that marks the expiry of the table.
 */
import { LeapFileError } from './leap-seconds-list.js';
import { DAY_S, LeapSchedule, type LeapEntry } from './leap-schedule.js';

export interface TzifLeaps {
  version: number;
  /** Raw records: occurrence time (zone timescale) and total correction from then on. */
  records: { time: bigint; correction: number }[];
  /** Expiry from a version-4 trailing record, Unix seconds, or null. */
  expires: bigint | null;
}

const MAX_COUNT = 1 << 16;
/** TAI−UTC before the first leap second (1972-01-01). */
export const INITIAL_TAI_UTC = 10;

class Reader {
  pos = 0;
  constructor(
    private readonly b: Uint8Array,
    private readonly file: string,
  ) {}
  need(n: number, what: string): void {
    if (n < 0 || this.pos + n > this.b.length) {
      throw new LeapFileError(
        `${this.file}: truncated TZif data (${what} needs ${n} bytes at offset ${this.pos}, file has ${this.b.length})`,
      );
    }
  }
  skip(n: number, what: string): void {
    this.need(n, what);
    this.pos += n;
  }
  u32(what: string): number {
    this.need(4, what);
    const b = this.b;
    const p = this.pos;
    this.pos += 4;
    return ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
  }
  i32(what: string): number {
    return this.u32(what) | 0;
  }
  i64(what: string): bigint {
    const hi = BigInt(this.i32(what));
    const lo = BigInt(this.u32(what));
    return (hi << 32n) | lo;
  }
}

interface Header {
  version: number;
  isutcnt: number;
  isstdcnt: number;
  leapcnt: number;
  timecnt: number;
  typecnt: number;
  charcnt: number;
}

function header(r: Reader, file: string): Header {
  r.need(44, 'header');
  const magic = r.u32('magic');
  if (magic !== 0x545a6966) throw new LeapFileError(`${file}: not a TZif file (bad magic)`);
  const vb = r.u32('version') >>> 24;
  r.pos -= 3;
  r.skip(15, 'reserved');
  const version = vb === 0 ? 1 : vb >= 0x32 && vb <= 0x39 ? vb - 0x30 : -1;
  if (version < 0) throw new LeapFileError(`${file}: unknown TZif version byte 0x${vb.toString(16)}`);
  const h: Header = {
    version,
    isutcnt: r.u32('isutcnt'),
    isstdcnt: r.u32('isstdcnt'),
    leapcnt: r.u32('leapcnt'),
    timecnt: r.u32('timecnt'),
    typecnt: r.u32('typecnt'),
    charcnt: r.u32('charcnt'),
  };
  for (const [k, v] of Object.entries(h)) {
    if (k !== 'version' && v > MAX_COUNT) throw new LeapFileError(`${file}: implausible TZif ${k} ${v}`);
  }
  if (h.typecnt === 0) throw new LeapFileError(`${file}: TZif typecnt is 0`);
  return h;
}

function readLeaps(r: Reader, h: Header, timeSize: 4 | 8, file: string): { time: bigint; correction: number }[] {
  r.skip(h.timecnt * timeSize + h.timecnt, 'transitions');
  r.skip(h.typecnt * 6 + h.charcnt, 'types');
  const out: { time: bigint; correction: number }[] = [];
  for (let i = 0; i < h.leapcnt; i++) {
    const time = timeSize === 8 ? r.i64('leap time') : BigInt(r.i32('leap time'));
    const correction = r.i32('leap correction');
    const prev = out[out.length - 1];
    if (prev && time <= prev.time) throw new LeapFileError(`${file}: leap record ${i} out of order`);
    out.push({ time, correction });
  }
  r.skip(h.isstdcnt + h.isutcnt, 'indicators');
  return out;
}

export function parseTzifLeaps(data: Uint8Array, file: string): TzifLeaps {
  const r = new Reader(data, file);
  const h1 = header(r, file);
  let records = readLeaps(r, h1, 4, file);
  let version = h1.version;
  if (h1.version >= 2) {
    const h2 = header(r, file);
    records = readLeaps(r, h2, 8, file);
    version = h2.version;
  }
  let expires: bigint | null = null;
  const n = records.length;
  if (n >= 2 && records[n - 1]!.correction === records[n - 2]!.correction) {
    expires = records[n - 1]!.time - BigInt(records[n - 1]!.correction);
    records = records.slice(0, n - 1);
  }
  return { version, records, expires };
}

/** The TAI−UTC table the records describe (right/ zones: TAI−UTC = 10 s + correction). */
export function tzifLeapEntries(t: TzifLeaps, file: string): LeapEntry[] {
  const entries: LeapEntry[] = [];
  let prevCorr = 0;
  for (let i = 0; i < t.records.length; i++) {
    const { time, correction } = t.records[i]!;
    const step = correction - prevCorr;
    if (i === 0 && Math.abs(step) !== 1 && t.version >= 4) {
      // A truncated table: the first record only states the correction in effect from then.
      const at = time - BigInt(correction);
      entries.push({ at: at - (((at % DAY_S) + DAY_S) % DAY_S), taiUtc: INITIAL_TAI_UTC + correction });
      prevCorr = correction;
      continue;
    }
    if (Math.abs(step) !== 1) {
      throw new LeapFileError(`${file}: leap record ${i} changes the correction by ${step} (a leap is ±1 s)`);
    }
    // Insert: time = 23:59:60 counted with the earlier leaps = POSIX midnight + prevCorr.
    // Delete: time = the skipped 23:59:59 = POSIX midnight − 1 + prevCorr.
    const posix = time - BigInt(prevCorr);
    const midnight = ((posix + DAY_S - 1n) / DAY_S) * DAY_S;
    if (midnight - posix > 1n || posix < 0n) {
      throw new LeapFileError(`${file}: leap record ${i} (time ${time}) is not at the end of a UTC day`);
    }
    if (i === 0) entries.push({ at: midnight - DAY_S * 182n, taiUtc: INITIAL_TAI_UTC + prevCorr });
    entries.push({ at: midnight, taiUtc: INITIAL_TAI_UTC + correction });
    prevCorr = correction;
  }
  return entries;
}

export function leapScheduleFromTzif(data: Uint8Array, file: string): LeapSchedule {
  const t = parseTzifLeaps(data, file);
  if (t.records.length === 0)
    throw new LeapFileError(`${file}: TZif file has no leap second records (use a right/ zone)`);
  const entries = tzifLeapEntries(t, file);
  // The first entry is a synthetic starting point; make it 1972-01-01 like leap-seconds.list.
  if (entries[0]!.taiUtc === INITIAL_TAI_UTC) entries[0] = { at: 63072000n, taiUtc: INITIAL_TAI_UTC };
  try {
    return new LeapSchedule(entries, t.expires, file);
  } catch (e) {
    throw new LeapFileError((e as Error).message);
  }
}
