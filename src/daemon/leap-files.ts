/**
 * Loads the leap second table named by `leapseclist` / `leapsectz` for the daemon (file I/O
 * here, parsing in src/leap/). As chronyd: the list is preferred over the zone, a table that
 * fails the 2012 sanity check (insert on 2012-06-30, TAI−UTC 34 s before it) or cannot be read
 * is ignored with a message naming the file, and an expired list is used with a warning.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Config } from '../config/chrony-conf.js';
import type { Instant } from '../time/ntp-time.js';
import { NS_PER_S } from '../time/ntp-time.js';
import { LeapSchedule } from '../leap/leap-schedule.js';
import { leapListExpiryWarning, parseLeapSecondsList } from '../leap/leap-seconds-list.js';
import { leapScheduleFromTzif } from '../leap/tzfile.js';
import type { LeapOptions } from '../leap/leap-controller.js';
import type { SmoothOptions } from '../leap/smoother.js';

export const ZONEINFO_DIR = '/usr/share/zoneinfo';
const MAX_TZIF_BYTES = 1 << 20;

/** chrony's check_leap_source: good data for Jun 30 2012 (insert) and Dec 31 2012 (none). */
export function leapTableSane(s: LeapSchedule): boolean {
  const jun30 = 1341014400n * NS_PER_S;
  const dec31 = 1356912000n * NS_PER_S;
  return (
    s.pendingAt(jun30)?.sign === 1 &&
    s.taiUtcAt(1341014400n) === 34 &&
    s.pendingAt(dec31) === null &&
    s.taiUtcAt(1356912000n) === 35
  );
}

export function loadLeapSchedule(
  conf: Pick<Config, 'leapseclist' | 'leapsectz'>,
  now: Instant,
  warn: (msg: string) => void,
): LeapSchedule | null {
  if (conf.leapseclist !== null) {
    const file = conf.leapseclist;
    try {
      const list = parseLeapSecondsList(fs.readFileSync(file, 'utf8'), file);
      const s = new LeapSchedule(list.entries, list.expires, file);
      if (!leapTableSane(s)) throw new Error(`${file}: leap second list failed the 2012 check, ignoring it`);
      if (!list.hashed) warn(`${file}: no #h hash line, the list cannot be verified (truncated?)`);
      const w = leapListExpiryWarning(list, now / NS_PER_S);
      if (w) warn(w);
      return s;
    } catch (e) {
      warn(
        `leapseclist: ${(e as Error).message}${(e as Error).message.includes(file) ? '' : ` (${file})`}; ignoring it`,
      );
    }
  }
  if (conf.leapsectz !== null) {
    const file = path.isAbsolute(conf.leapsectz) ? conf.leapsectz : path.join(ZONEINFO_DIR, conf.leapsectz);
    try {
      const st = fs.statSync(file);
      if (st.size > MAX_TZIF_BYTES) throw new Error(`${file}: too large for a TZif file`);
      const s = leapScheduleFromTzif(fs.readFileSync(file), file);
      if (!leapTableSane(s)) throw new Error(`${file}: timezone failed the leap second check (use right/UTC)`);
      if (s.expiredAt(now)) warn(`${file}: leap second data expired, it needs an update`);
      return s;
    } catch (e) {
      warn(`leapsectz: ${(e as Error).message}; ignoring it`);
    }
  }
  return null;
}

/** The discipline options for leapsecmode, the leap table and smoothtime. */
export function leapDisciplineOptions(
  conf: Pick<Config, 'leapseclist' | 'leapsectz' | 'leapsecmode' | 'smoothtime'>,
  now: Instant,
  warn: (msg: string) => void,
): { leap: LeapOptions; smoothtime?: SmoothOptions } {
  const schedule = loadLeapSchedule(conf, now, warn);
  return { leap: { mode: conf.leapsecmode, schedule }, ...(conf.smoothtime ? { smoothtime: conf.smoothtime } : {}) };
}
