/**
 * The leap second state machine, the kernel emulation of STA_INS/STA_DEL on software clocks,
 * time smoothing (smoothtime) and the leap directives of chrony.conf.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TimeSmoother } from '../../src/leap/smoother.js';
import { LeapController } from '../../src/leap/leap-controller.js';
import { LeapSchedule } from '../../src/leap/leap-schedule.js';
import { DisciplinedClock } from '../../src/clock/disciplined-clock.js';
import { ConfigError, formatConfig, parseConfigText } from '../../src/config/chrony-conf.js';
import { addSeconds, diffSeconds, NS_PER_S, type Instant } from '../../src/time/ntp-time.js';
import { Prng } from '../../src/sim/prng.js';

const MID = 1483228800n; // 2017-01-01T00:00:00Z, end of the leap day 2016-12-31
const at = (s: number): Instant => MID * NS_PER_S + BigInt(Math.round(s * 1e9));
const SCHEDULE = new LeapSchedule([
  { at: MID - 184n * 86400n, taiUtc: 36 },
  { at: MID, taiUtc: 37 },
]);

test('smoother: any offset and frequency are smoothed out within the wander and frequency limits', () => {
  const rng = new Prng(7);
  for (let run = 0; run < 50; run++) {
    const sm = new TimeSmoother({ maxFreqPpm: 300, maxWanderPpmPerS: 0.01, leapOnly: false });
    let t = at(0);
    sm.clockCorrected(t, 0, 0, 1e-12); // stable clock: activates
    assert.ok(sm.active);
    const off = rng.random() - 0.5;
    const dfreq = (rng.random() - 0.5) * 1e-3;
    sm.clockCorrected(t, off, dfreq, 1e-12);
    // The local clock moved forward by `off`: served time must not (O = local − served).
    assert.ok(Math.abs(sm.offsetAt(t) - off) < 1e-12);
    let prevO = sm.offsetAt(t);
    let prevF = NaN;
    for (let i = 0; i < 10000; i++) {
      sm.clockCorrected(t, 0, 0, 1e-12);
      const next = addSeconds(t, 16);
      const o = sm.offsetAt(next);
      const f = (o - prevO) / 16; // dO/dt: served time runs at 1 − f of local time
      assert.ok(Math.abs(f - (i === 0 ? dfreq : 0)) <= 300e-6 + 16 * 0.01e-6 + Math.abs(dfreq) + 1e-9, `freq ${f}`);
      if (!Number.isNaN(prevF))
        assert.ok(Math.abs(f - prevF) <= 2 * 16 * 0.01e-6 + 1e-12, `wander ${(f - prevF) / 16}`);
      prevO = o;
      prevF = f;
      t = next;
    }
    assert.ok(Math.abs(sm.offsetAt(t)) < 1e-9, `left ${sm.offsetAt(t)}`);
    assert.ok(Math.abs(sm.report(t).freqPpm) < 1e-6);
  }
});

test('smoother: leaponly smears a leap second in sqrt(4/wander) and ignores other corrections', () => {
  const w = 0.001024;
  const sm = new TimeSmoother({ maxFreqPpm: 400, maxWanderPpmPerS: w, leapOnly: true });
  sm.clockCorrected(at(-100), 0.002, 1e-6, 1e-3); // leaponly activates at once, absorbs nothing
  assert.equal(sm.offsetAt(at(-50)), 0);
  sm.leap(at(0), 1); // inserted: local time went back 1 s, served time did not
  assert.ok(Math.abs(sm.offsetAt(at(0)) + 1) < 1e-12);
  const length = Math.sqrt(4 / (w * 1e-6)); // 62500 s, as chrony's documentation says
  assert.ok(Math.abs(length - 62500) < 1e-6);
  assert.ok(Math.abs(sm.report(at(0)).remainingTime - length) < 1e-3);
  assert.ok(Math.abs(sm.offsetAt(at(length / 2)) + 0.5) < 1e-6, 'half way: half a second');
  // Peak smear frequency 32 ppm at the middle (chrony's documentation).
  assert.ok(Math.abs(Math.abs(sm.report(at(length / 2)).freqPpm) - 32) < 1e-3);
  assert.ok(Math.abs(sm.offsetAt(at(length))) < 1e-9);
  assert.ok(Math.abs(sm.offsetAt(at(length + 1e5))) < 1e-9);
  // A capped frequency lengthens the smear but still removes exactly the second.
  const capped = new TimeSmoother({ maxFreqPpm: 10, maxWanderPpmPerS: w, leapOnly: true });
  capped.leap(at(0), -1);
  assert.ok(Math.abs(capped.offsetAt(at(0)) - 1) < 1e-12);
  let maxF = 0;
  for (let s = 0; s < 150000; s += 100) maxF = Math.max(maxF, Math.abs(capped.report(at(s)).freqPpm));
  assert.ok(maxF <= 10 + 1e-9 && maxF > 9.9, `max ${maxF}`);
  assert.ok(Math.abs(capped.offsetAt(at(150000))) < 1e-9);
  capped.reset(at(10));
  assert.equal(capped.offsetAt(at(20)), 0);
});

test('smoother: full mode waits for a stable clock (skew / wander < 10000)', () => {
  const sm = new TimeSmoother({ maxFreqPpm: 400, maxWanderPpmPerS: 0.001, leapOnly: false });
  sm.clockCorrected(at(0), 0.5, 0, 1e-3);
  assert.equal(sm.active, false);
  assert.equal(sm.offsetAt(at(1)), 0);
  sm.clockCorrected(at(2), 0.5, 0, 1e-9);
  assert.equal(sm.active, true);
});

test('leap controller: the leap is announced only on its day and applied at midnight by mode', () => {
  const c = new LeapController({ mode: 'step', schedule: SCHEDULE });
  c.start(at(-2 * 86400));
  assert.equal(c.announced(), 0, 'the day before: nothing');
  assert.equal(c.taiUtcOffset, 36);
  // The periodic check finds the leap on its day.
  let next = c.nextTimeout()!;
  while (next < at(-3600)) {
    c.handleTimeout(next);
    next = c.nextTimeout()!;
  }
  assert.equal(c.announced(), 1);
  assert.equal(c.kernelLeap(), 0, 'step mode does not tell the kernel');
  assert.equal(next, at(0), 'insert at 00:00:00');
  assert.ok(c.isLeapClose(at(-4)) && c.isLeapClose(at(4.9)) && !c.isLeapClose(at(-6)) && !c.isLeapClose(at(5)));
  assert.deepEqual(c.handleTimeout(at(0)), { kind: 'step', seconds: -1, sign: 1 });
  assert.equal(c.announced(), 3, 'unsynchronised while in progress');
  assert.equal(c.handleTimeout(c.nextTimeout()!), undefined);
  assert.equal(c.announced(), 0);
  assert.equal(c.taiUtcOffset, 37);

  // Votes: accepted on June 30 / December 31 only; system mode tells the kernel, early.
  const v = new LeapController({ mode: 'system' });
  v.setVote(2, at(-86400 - 3600)); // December 30
  assert.equal(v.announced(), 0);
  v.setVote(2, at(-3600));
  assert.equal(v.announced(), 2);
  assert.equal(v.kernelLeap(), 2);
  assert.equal(v.nextTimeout(), at(-1.5), 'delete at 23:59:59, half a second early for the kernel');
  assert.deepEqual(v.handleTimeout(at(-1.5)), { kind: 'notify', seconds: 0, sign: -1 });
  assert.equal(v.kernelLeap(), 2, 'kept while the kernel acts');
  const s = new LeapController({ mode: 'slew' });
  s.setVote(1, at(-10));
  assert.deepEqual(s.handleTimeout(at(0)), { kind: 'slew', seconds: -1, sign: 1 });
});

test('software clock under leapsecmode system: 23:59:60 repeats 23:59:59, once', () => {
  let raw = at(-10);
  const clock = new DisciplinedClock(() => raw, 'simulated');
  clock.setStatus({ synchronized: true, leap: 1, maxErrorS: 0, estErrorS: 0 });
  raw = at(-0.5);
  assert.equal(diffSeconds(clock.now(), at(0)), -0.5);
  raw = at(0.25);
  assert.equal(diffSeconds(clock.now(), at(0)), -0.75, 'back one second at midnight');
  raw = at(2);
  assert.equal(diffSeconds(clock.now(), at(0)), 1);
  clock.setStatus({ synchronized: true, leap: 1, maxErrorS: 0, estErrorS: 0 });
  raw = at(86400 + 10);
  assert.equal(diffSeconds(clock.now(), at(86400)), 9, 'no second leap while the status stays set');
  // Delete: forward one second at 23:59:59.
  let raw2 = at(-100);
  const c2 = new DisciplinedClock(() => raw2, 'simulated');
  c2.setStatus({ synchronized: true, leap: 2, maxErrorS: 0, estErrorS: 0 });
  raw2 = at(-1.5);
  assert.equal(diffSeconds(c2.now(), at(0)), -1.5);
  raw2 = at(-0.75);
  assert.equal(diffSeconds(c2.now(), at(0)), 0.25);
  // Cleared before midnight: nothing happens.
  let raw3 = at(-100);
  const c3 = new DisciplinedClock(() => raw3, 'simulated');
  c3.setStatus({ synchronized: true, leap: 1, maxErrorS: 0, estErrorS: 0 });
  c3.setStatus({ synchronized: true, leap: 0, maxErrorS: 0, estErrorS: 0 });
  raw3 = at(5);
  assert.equal(diffSeconds(c3.now(), at(0)), 5);
});

test('chrony.conf: leapsectz, leapseclist, leapsecmode, smoothtime', () => {
  const c = parseConfigText(
    'leapsectz right/UTC\nleapseclist /usr/share/zoneinfo/leap-seconds.list\nleapsecmode slew\nsmoothtime 400 0.001024 leaponly\n',
    'c.conf',
  );
  assert.equal(c.leapsectz, 'right/UTC');
  assert.equal(c.leapseclist, '/usr/share/zoneinfo/leap-seconds.list');
  assert.equal(c.leapsecmode, 'slew');
  assert.deepEqual(c.smoothtime, { maxFreqPpm: 400, maxWanderPpmPerS: 0.001024, leapOnly: true });
  assert.deepEqual(c.warnings, []);
  const again = parseConfigText(formatConfig(c), 'p.conf');
  assert.deepEqual(
    [again.leapsectz, again.leapseclist, again.leapsecmode, again.smoothtime],
    [c.leapsectz, c.leapseclist, c.leapsecmode, c.smoothtime],
  );
  const d = parseConfigText('', 'e.conf');
  assert.deepEqual([d.leapsectz, d.leapseclist, d.leapsecmode, d.smoothtime], [null, null, 'system', null]);
  const bad = (text: string, re: RegExp): void =>
    assert.throws(
      () => parseConfigText(text, 'b.conf'),
      (e: unknown) => e instanceof ConfigError && re.test(e.message),
    );
  bad('\nleapsecmode smear\n', /^b\.conf:2: invalid leapsecmode 'smear'/);
  bad('smoothtime 400\n', /^b\.conf:1: missing arguments for smoothtime/);
  bad('smoothtime 400 -1\n', /^b\.conf:1: invalid smoothtime max-wander/);
  bad('smoothtime 400 0.001 always\n', /^b\.conf:1: invalid smoothtime option 'always'/);
  bad('leapsectz\n', /^b\.conf:1: missing arguments for leapsectz/);
});
