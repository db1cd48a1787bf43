import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Discipline, REFID_LOCL } from '../../src/discipline/discipline.js';
import { frequencyUpdate, slewPlan } from '../../src/discipline/servo.js';
import type { ClockAction, NtpSample } from '../../src/engine/types.js';
import { addSeconds, type Instant } from '../../src/time/ntp-time.js';

const T0: Instant = 1_767_225_600_000_000_000n;
const opts = { prefer: false, noselect: false, trust: false, require: false };

function sample(time: Instant, offset: number, over: Partial<NtpSample> = {}): NtpSample {
  return {
    time,
    offset,
    delay: 2e-4,
    dispersion: 1e-6,
    rootDelay: 1e-3,
    rootDispersion: 2e-3,
    stratum: 1,
    leap: 0,
    refId: 0x47505300,
    refTime: time,
    poll: 6,
    interleaved: false,
    ...over,
  };
}

function drain(d: Discipline): ClockAction[] {
  const out: ClockAction[] = [];
  for (let a = d.pollClockAction(); a; a = d.pollClockAction()) out.push(a);
  return out;
}

test('servo arithmetic: gain and slew plan', () => {
  const f = frequencyUpdate(10e-6, 1e-6, 1e-6, 1e-3);
  assert.ok(Math.abs(f.gain - 0.75) < 1e-12);
  assert.ok(Math.abs(f.dFreq - 7.5e-6) < 1e-15);
  assert.equal(frequencyUpdate(10e-6, 2e-3, 1e-6, 1e-3).dFreq, 0); // beyond maxupdateskew
  const big = slewPlan(0.1, 1e-4, 64, 3, 0.083333);
  assert.ok(Math.abs(big.rate - 0.083333) < 1e-9, 'large offsets slew at the maximum rate');
  const avg = slewPlan(1e-4, 1e-4, 64, 3, 0.083333);
  assert.ok(Math.abs(avg.duration - 96) < 1e-9, 'an average correction takes ~1.5 intervals');
});

test('makestep: steps the first `limit` updates above threshold, then slews', () => {
  const d = new Discipline({ makestep: { threshold: 0.1, limit: 2 } });
  d.addSource('a', { ...opts, refId: 0x0a000001, name: 'a' });
  d.addSample('a', sample(T0, 1.5), T0);
  d.update(T0);
  const acts = drain(d);
  const step = acts.find((a) => a.type === 'step');
  assert.ok(step && step.type === 'step' && Math.abs(step.seconds - 1.5) < 1e-9, JSON.stringify(acts));
  assert.ok(acts.some((a) => a.type === 'status' && a.synchronized));
  // After the step the stored history is shifted: the source now reads ~0 offset.
  const t1 = addSeconds(T0, 1.5 + 64);
  assert.ok(Math.abs(d.sourceEstimate('a', t1)!.offset) < 1e-6);
  // Second update: still within the limit.
  d.addSample('a', sample(t1, 0.5), t1);
  d.update(t1);
  assert.ok(drain(d).some((a) => a.type === 'step'));
  // Third update: beyond the limit → slew, no step.
  const t2 = addSeconds(t1, 0.5 + 64);
  d.addSample('a', sample(t2, 0.3), t2);
  d.update(t2);
  const a3 = drain(d);
  assert.ok(!a3.some((a) => a.type === 'step'));
  assert.ok(d.remaining(t2) > 0.2, `remaining ${d.remaining(t2)}`);
});

test('makestep limit < 0 always steps; no makestep always slews', () => {
  const d = new Discipline({ makestep: { threshold: 1, limit: -1 } });
  d.addSource('a', { ...opts });
  let t = T0;
  for (let i = 0; i < 5; i++) {
    d.addSample('a', sample(t, 2), t);
    d.update(t);
    assert.ok(
      drain(d).some((a) => a.type === 'step'),
      `update ${i}`,
    );
    t = addSeconds(t, 66);
  }
  const s = new Discipline({});
  s.addSource('a', { ...opts });
  s.addSample('a', sample(T0, 0.1), T0);
  s.update(T0);
  const acts = drain(s);
  assert.ok(!acts.some((a) => a.type === 'step'));
  const f = acts.find((a) => a.type === 'frequency');
  assert.ok(f && f.type === 'frequency' && f.ppm > 80000, JSON.stringify(acts)); // slewing at max rate
  const end = s.nextTimeout()!;
  assert.ok(end > T0);
  assert.ok(Math.abs(s.remaining(T0) - 0.1) < 1e-9);
  assert.equal(s.remaining(end), 0);
  assert.ok(Math.abs(s.tracking(T0).systemTimeOffset - 0.1) < 1e-9);
  s.handleTimeout(end);
  const back = drain(s);
  assert.deepEqual(back, [{ type: 'frequency', ppm: 0 }]);
  assert.equal(s.nextTimeout(), null);
  assert.equal(s.tracking(end).systemTimeOffset, 0);
});

test('frequency is learned from samples and the history follows the correction', () => {
  const d = new Discipline({ makestep: { threshold: 0.01, limit: 1 } });
  d.addSource('a', { ...opts });
  // Simulate a clock 50 ppm slow: its offset to the source grows by 50e-6 per s of its time.
  let clockErr = 0; // source − local, s
  let corr = 0; // applied frequency correction, s/s
  let t = T0;
  for (let i = 0; i < 12; i++) {
    d.addSample('a', sample(t, clockErr), t);
    d.update(t);
    for (const a of drain(d)) {
      if (a.type === 'step') clockErr -= a.seconds;
      if (a.type === 'frequency') corr = a.ppm * 1e-6;
    }
    // Advance 64 s; slews end before the next poll here only if short: integrate crudely.
    const end = d.nextTimeout();
    if (end !== null && end < addSeconds(t, 64)) {
      const dt1 = Number(end - t) / 1e9;
      clockErr += (50e-6 - corr) * dt1;
      d.handleTimeout(end);
      for (const a of drain(d)) if (a.type === 'frequency') corr = a.ppm * 1e-6;
      clockErr += (50e-6 - corr) * (64 - dt1);
    } else {
      clockErr += (50e-6 - corr) * 64;
    }
    t = addSeconds(t, 64);
  }
  assert.ok(Math.abs(d.frequencyPpm - 50) < 0.5, `freq ${d.frequencyPpm}`);
  assert.ok(Math.abs(clockErr) < 1e-4, `err ${clockErr}`);
  const tr = d.tracking(t);
  assert.ok(Math.abs(tr.frequencyPpm + 50) < 0.5); // chrony sign: the clock is slow
  assert.equal(tr.leapStatus, 'Normal');
  assert.equal(tr.stratum, 2);
});

test('reference state: stratum, refid, root delay/dispersion, local stratum', () => {
  const d = new Discipline({ localStratum: { stratum: 10, distance: 1 } });
  d.addSource('a', { ...opts, refId: 0xc0a80001, name: 'srv' });
  const un = d.reference(T0);
  assert.equal(un.refId, REFID_LOCL);
  assert.equal(un.stratum, 10);
  assert.equal(un.synchronized, true);
  d.addSample('a', sample(T0, 1e-4, { stratum: 2, rootDelay: 0.01, rootDispersion: 0.005 }), T0);
  d.update(T0);
  const r = d.reference(T0);
  assert.equal(r.stratum, 3);
  assert.equal(r.refId, 0xc0a80001);
  assert.ok(Math.abs(r.rootDelay - (0.01 + 2e-4)) < 1e-12);
  assert.ok(r.rootDispersion >= 0.005 && r.rootDispersion < 0.01);
  const later = d.reference(addSeconds(T0, 10));
  assert.ok(later.rootDispersion > r.rootDispersion, 'dispersion grows with time');
  assert.equal(d.tracking(T0).refName, 'srv');
  assert.equal(d.sourceState('a'), '*');
  const plain = new Discipline({});
  const u = plain.reference(T0);
  assert.equal(u.synchronized, false);
  assert.equal(u.leap, 3);
  assert.equal(plain.tracking(T0).leapStatus, 'Not synchronised');
});

test('maxdelay and delay filters reject samples', () => {
  const d = new Discipline({});
  d.addSource('a', { ...opts, maxdelay: 0.01 });
  assert.equal(d.addSample('a', sample(T0, 0, { delay: 0.02 }), T0), 'maxdelay');
  let t = T0;
  for (let i = 0; i < 10; i++) {
    assert.equal(d.addSample('a', sample(t, 1e-5 * (i % 2)), t), 'accepted');
    t = addSeconds(t, 64);
  }
  assert.equal(d.addSample('a', sample(t, 0.004, { delay: 0.0082 }), t), 'delaydev');
  assert.equal(d.rejectedSamples('a'), 2);
  assert.equal(d.addSample('zz', sample(t, 0), t), 'unknown source');
});

test('tracking: RMS offset follows shrinking offsets (no lingering start-up error), as chrony', () => {
  const d = new Discipline({ correction: 'instant' });
  d.addSource('a', { ...opts });
  // The first update corrects 1 ms; the next ones see only a few µs.
  const offsets = [1e-3, 5e-6, -4e-6, 3e-6, -2e-6, 20e-6];
  let t = T0;
  const rms: number[] = [];
  for (const off of offsets) {
    d.addSample('a', sample(t, off, { delay: 2e-4 }), t);
    d.update(t);
    drain(d);
    const tr = d.tracking(t);
    rms.push(tr.rmsOffset);
    assert.ok(tr.lastOffsetSd !== undefined && Number.isFinite(tr.lastOffsetSd) && tr.lastOffsetSd >= 0);
    t = addSeconds(t, 16);
  }
  assert.ok(rms[0]! > 9e-4, `first ${rms[0]}`);
  // A 32-update average would still hold ~1 ms/√n here; chrony's rule tracks the last offset.
  assert.ok(rms[3]! < 5e-5, `after the start-up correction: ${rms.map((r) => r.toExponential(2)).join(' ')}`);
  // Once offsets grow again the average moves by 10 % per update instead of jumping.
  const last = rms[rms.length - 1]!;
  assert.ok(last < 20e-6 && last > rms[rms.length - 2]!, `moving average: ${last}`);
});
