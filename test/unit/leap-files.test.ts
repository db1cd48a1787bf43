/**
 * leap-seconds.list and TZif parsing against the machine's real tzdata files, corrupted copies
 * of them and random mutations; the leap table built from them; the daemon's loader.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { LeapFileError, leapListExpiryWarning, parseLeapSecondsList } from '../../src/leap/leap-seconds-list.js';
import { leapScheduleFromTzif, parseTzifLeaps } from '../../src/leap/tzfile.js';
import { LeapSchedule, endOfUtcDay, isLeapSecondDay } from '../../src/leap/leap-schedule.js';
import { leapTableSane, loadLeapSchedule } from '../../src/daemon/leap-files.js';
import { NS_PER_S } from '../../src/time/ntp-time.js';
import { Prng } from '../../src/sim/prng.js';

const LIST = '/usr/share/zoneinfo/leap-seconds.list';
const RIGHT = '/usr/share/zoneinfo/right/UTC';
const listText = fs.readFileSync(LIST, 'utf8');
const tzBytes = new Uint8Array(fs.readFileSync(RIGHT));
const S2017 = 1483228800n; // 2017-01-01T00:00:00Z

test('leap-seconds.list: the real file verifies and has 27 leaps, TAI-UTC 37 s since 2017', () => {
  const l = parseLeapSecondsList(listText, LIST);
  assert.equal(l.hashed, true);
  assert.equal(l.entries.length, 28);
  const s = new LeapSchedule(l.entries, l.expires, LIST);
  assert.equal(s.leaps().length, 27);
  assert.ok(s.leaps().every((x) => x.sign === 1));
  assert.equal(s.taiUtcAt(S2017), 37);
  assert.equal(s.taiUtcAt(S2017 - 1n), 36);
  assert.equal(s.taiUtcAt(1_800_000_000n), 37);
  // The expiry line (#@, NTP seconds) as the file's comment states it: 28 June 2026.
  const m = /^#@\s+(\d+)/m.exec(listText)!;
  assert.equal(l.expires, BigInt(m[1]!) - 2208988800n);
  assert.match(new Date(Number(l.expires) * 1000).toISOString(), /^\d{4}-(06-28|12-28)/);
  assert.equal(leapListExpiryWarning(l, l.expires - 1n), null);
  assert.match(leapListExpiryWarning(l, l.expires)!, new RegExp(`${LIST}: leap second list expired`));
  assert.ok(leapTableSane(s));
});

test('leap schedule: the leap at the end of 2016-12-31, announced only on that day', () => {
  const l = parseLeapSecondsList(listText, LIST);
  const s = new LeapSchedule(l.entries, l.expires, LIST);
  const noonDec31 = (S2017 - 12n * 3600n) * NS_PER_S;
  assert.deepEqual(s.pendingAt(noonDec31), { midnight: S2017, sign: 1, taiUtcBefore: 36 });
  assert.equal(s.pendingAt(noonDec31 - 86400n * NS_PER_S), null, 'not the day before');
  assert.equal(s.pendingAt(S2017 * NS_PER_S), null, 'not after midnight');
  assert.equal(endOfUtcDay(S2017 - 1n), S2017);
  assert.equal(endOfUtcDay(S2017), S2017 + 86400n);
  assert.ok(isLeapSecondDay(S2017 - 1n));
  assert.ok(!isLeapSecondDay(S2017));
  assert.throws(
    () =>
      new LeapSchedule([
        { at: 0n, taiUtc: 10 },
        { at: 86400n, taiUtc: 12 },
      ]),
    /±1 s leap/,
  );
});

function expectError(text: string, re: RegExp): void {
  assert.throws(
    () => parseLeapSecondsList(text, 'x.list'),
    (e: unknown) => e instanceof LeapFileError && re.test(e.message),
  );
}

test('leap-seconds.list: corrupted copies give clear errors naming file:line', () => {
  const lines = listText.split('\n');
  const dataLine = lines.findIndex((l) => l.startsWith('3692217600'));
  const hashLine = lines.findIndex((l) => l.startsWith('#h'));
  // An edited entry: the hash catches it.
  const edited = [...lines];
  edited[dataLine] = edited[dataLine]!.replace('37', '38');
  expectError(edited.join('\n'), new RegExp(`^x\\.list:${hashLine + 1}: hash mismatch`));
  // An edited expiry (the classic way to "extend" a stale file) is caught too.
  expectError(
    listText.replace(/^#@(\s+)(\d+)/m, (_m, sp: string, n: string) => `#@${sp}${BigInt(n) + 86400n * 180n}`),
    /hash mismatch/,
  );
  // A malformed hash line, garbage entries, a missing expiry, a truncated file.
  expectError(listText.replace(/^#h.*$/m, '#h 1234 zz'), new RegExp(`^x\\.list:${hashLine + 1}: malformed hash line`));
  const garbage = [...lines];
  garbage[dataLine] = 'hello world';
  expectError(garbage.join('\n'), new RegExp(`^x\\.list:${dataLine + 1}: malformed leap second entry`));
  expectError(listText.replace(/^#@.*$/m, ''), /^x\.list: no expiry/);
  expectError(listText.slice(0, listText.indexOf('2272060800')), /no leap second entries/);
  // Cut in the middle of the data: the hash line is gone with the tail; it parses, unverified
  // (the daemon's loader warns about it, tested below).
  assert.equal(parseLeapSecondsList(listText.slice(0, listText.indexOf('3550089600')), 'x.list').hashed, false);
  // Without a hash line the structure is still checked: a 2 s jump, non-midnight instants.
  const noHash = lines.filter((l) => !l.startsWith('#h'));
  const jump = [...noHash];
  jump[noHash.findIndex((l) => l.startsWith('3692217600'))] = '3692217600 38';
  expectError(jump.join('\n'), /changes by 2 s/);
  const odd = [...noHash];
  odd[noHash.findIndex((l) => l.startsWith('3692217600'))] = '3692217601 37';
  expectError(odd.join('\n'), /not at 00:00:00 UTC/);
  assert.equal(parseLeapSecondsList(noHash.join('\n'), 'x.list').hashed, false);
  expectError('\u0000\u0001garbage\n', /^x\.list:1: malformed/);
  expectError('x'.repeat((1 << 20) + 1), /too large/);
});

test('leap-seconds.list: a self-made file with a correct hash verifies (hash algorithm)', () => {
  const text = '#$ 3900000000\n#@ 3999999999\n2272060800 10 # 1972\n2287785600\t11\n';
  const h = createHash('sha1')
    .update('3900000000' + '3999999999' + '227206080010' + '228778560011')
    .digest('hex');
  const withHash = `${text}#h ${h.match(/.{8}/g)!.join(' ')}\n`;
  const l = parseLeapSecondsList(withHash, 'mine.list');
  assert.equal(l.entries.length, 2);
  assert.equal(l.hashed, true);
  expectError(withHash.replace('11\n', '11 \n2303683200 12\n'), /hash mismatch/);
});

test('TZif right/UTC: the same 27 leap seconds as leap-seconds.list', () => {
  const t = parseTzifLeaps(tzBytes, RIGHT);
  assert.ok(t.version >= 2);
  assert.equal(t.records.length, 27);
  const fromTz = leapScheduleFromTzif(tzBytes, RIGHT);
  const l = parseLeapSecondsList(listText, LIST);
  const fromList = new LeapSchedule(l.entries, l.expires, LIST);
  assert.deepEqual(
    fromTz.leaps().map((x) => [x.midnight, x.sign, x.taiUtcBefore]),
    fromList.leaps().map((x) => [x.midnight, x.sign, x.taiUtcBefore]),
  );
  assert.equal(fromTz.taiUtcAt(S2017), 37);
  assert.ok(leapTableSane(fromTz));
  // The version-1 block (4-byte times) agrees with the version-2 block.
  const v1 = new Uint8Array(tzBytes);
  v1[4] = 0;
  assert.deepEqual(parseTzifLeaps(v1, 'v1').records, t.records);
});

test('TZif: corrupted and randomly mutated data never throws anything but a clear error', () => {
  const bad = (b: Uint8Array, re: RegExp): void =>
    assert.throws(
      () => leapScheduleFromTzif(b, 'z'),
      (e: unknown) => e instanceof LeapFileError && re.test(e.message) && e.message.startsWith('z: '),
    );
  bad(new Uint8Array(0), /truncated/);
  bad(new TextEncoder().encode('not a tzif file at all, but long enough for a header.........'), /not a TZif/);
  bad(tzBytes.slice(0, 60), /truncated/);
  bad(tzBytes.slice(0, tzBytes.length - 40), /truncated/);
  const huge = new Uint8Array(tzBytes);
  huge.set([0x7f, 0xff, 0xff, 0xff], 28); // leapcnt
  bad(huge, /implausible/);
  const rng = new Prng(42);
  const outcomes = { ok: 0, error: 0 };
  for (let i = 0; i < 3000; i++) {
    const m = new Uint8Array(i % 10 === 0 ? tzBytes.slice(0, Math.floor(rng.random() * tzBytes.length)) : tzBytes);
    const flips = 1 + Math.floor(rng.random() * 4);
    for (let k = 0; k < flips && m.length > 0; k++)
      m[Math.floor(rng.random() * m.length)] = Math.floor(rng.random() * 256);
    try {
      leapScheduleFromTzif(m, 'z');
      outcomes.ok++;
    } catch (e) {
      assert.ok(e instanceof LeapFileError, `mutation ${i} threw ${(e as Error).name}: ${(e as Error).message}`);
      assert.ok((e as Error).message.startsWith('z: '));
      outcomes.error++;
    }
  }
  assert.ok(outcomes.error > 100 && outcomes.ok > 100, JSON.stringify(outcomes));
});

test('daemon loader: list preferred, zone name resolved, bad files ignored with a message', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `rb-leap-${process.pid}-`));
  try {
    const warnings: string[] = [];
    const warn = (m: string): void => void warnings.push(m);
    const now = S2017 * NS_PER_S;
    const s = loadLeapSchedule({ leapseclist: LIST, leapsectz: null }, now, warn);
    assert.equal(s?.source, LIST);
    assert.deepEqual(warnings, [], 'not expired in 2017');
    const tz = loadLeapSchedule({ leapseclist: null, leapsectz: 'right/UTC' }, now, warn);
    assert.equal(tz?.source, RIGHT);
    const corrupt = path.join(dir, 'leap-seconds.list');
    fs.writeFileSync(corrupt, listText.replace('3692217600      37', '3692217600      38'));
    const fallback = loadLeapSchedule({ leapseclist: corrupt, leapsectz: 'right/UTC' }, now, warn);
    assert.equal(fallback?.source, RIGHT, 'falls back to the zone');
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, new RegExp(`${corrupt}:\\d+: hash mismatch.*ignoring it`));
    warnings.length = 0;
    assert.equal(loadLeapSchedule({ leapseclist: null, leapsectz: 'UTC' }, now, warn), null, 'a zone without leaps');
    assert.match(warnings[0]!, /no leap second records/);
    warnings.length = 0;
    loadLeapSchedule({ leapseclist: LIST, leapsectz: null }, 1_900_000_000n * NS_PER_S, warn);
    assert.match(warnings[0]!, /expired on .* needs an update/);
    warnings.length = 0;
    const cut = path.join(dir, 'cut.list');
    fs.writeFileSync(cut, listText.slice(0, listText.indexOf('3644697600')));
    assert.equal(loadLeapSchedule({ leapseclist: cut, leapsectz: null }, now, warn)?.leaps().length, 25);
    assert.match(warnings[0]!, new RegExp(`${cut}: no #h hash line`));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
