import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClockJumpDetector, type ClockReading } from '../../src/daemon/clock-jump-detector.js';
import { JumpWatch } from '../../src/daemon/jump-watch.js';
import { localAddressTowards } from '../../src/daemon/local-refid.js';
import type { Engine } from '../../src/engine/engine.js';
import type { Clock } from '../../src/clock/clock.js';

const S = 1_000_000_000n;
const T0 = 1_767_225_600n * S;

/** A synthetic host: realtime, monotonic and boottime that the test moves by hand. */
class Host {
  real = T0;
  mono = 5_000n * S;
  boot = 5_000n * S;
  run(seconds: number): void {
    const ns = BigInt(Math.round(seconds * 1e9));
    this.real += ns;
    this.mono += ns;
    this.boot += ns;
  }
  reading(withBoot = true): ClockReading {
    return { realtime: this.real, monotonic: this.mono, boottime: withBoot ? this.boot : null };
  }
}

test('clock jump detector: steady ticks with scheduling jitter report nothing', () => {
  const h = new Host();
  const d = new ClockJumpDetector();
  assert.equal(d.observe(h.reading()), null);
  for (let i = 0; i < 100; i++) {
    // A timer that fires 0-40 ms late, clocks read a few µs apart.
    h.run(1 + (i % 5) * 0.01);
    const r = h.reading();
    r.realtime += BigInt((i % 3) * 3000);
    assert.equal(d.observe(r), null, `tick ${i}`);
  }
  assert.equal(d.count, 0);
});

test('clock jump detector: a suspend is reported with its length and the RTC error', () => {
  const h = new Host();
  const d = new ClockJumpDetector();
  d.observe(h.reading());
  h.run(1);
  assert.equal(d.observe(h.reading()), null);
  // 10 minutes asleep: monotonic stops, boottime counts, realtime comes back 0.5 s off.
  h.boot += 600n * S;
  h.real += 600n * S + 500_000_000n;
  h.run(0.2);
  const ev = d.observe(h.reading());
  assert.ok(ev && ev.type === 'suspend', JSON.stringify(ev));
  assert.ok(Math.abs(ev.sleptSeconds - 600) < 1e-6);
  assert.ok(Math.abs(ev.jumpSeconds - 0.5) < 1e-6);
  // The next tick is normal again.
  h.run(1);
  assert.equal(d.observe(h.reading()), null);
  assert.equal(d.count, 1);
});

test('clock jump detector: a suspend without realtime error reports jump 0', () => {
  const h = new Host();
  const d = new ClockJumpDetector();
  d.observe(h.reading());
  h.boot += 3600n * S;
  h.real += 3600n * S;
  h.run(1);
  const ev = d.observe(h.reading());
  assert.ok(ev && ev.type === 'suspend');
  assert.equal(ev.jumpSeconds, 0);
});

test('clock jump detector: a VM migration (realtime +2 s, monotonic unchanged) is a jump', () => {
  const h = new Host();
  const d = new ClockJumpDetector();
  d.observe(h.reading());
  h.run(1);
  h.real += 2n * S;
  const ev = d.observe(h.reading());
  assert.deepEqual(ev, { type: 'jump', jumpSeconds: 2 });
  // Backwards too, and without boottime.
  h.run(1);
  d.observe(h.reading(false));
  h.run(1);
  h.real -= 300_000_000n;
  const back = d.observe(h.reading(false));
  assert.ok(back && back.type === 'jump' && Math.abs(back.jumpSeconds + 0.3) < 1e-9);
});

test("clock jump detector: the daemon's own steps are not reported", () => {
  const h = new Host();
  const d = new ClockJumpDetector();
  d.observe(h.reading());
  h.run(1);
  h.real += 2n * S;
  d.ownStep(2);
  assert.equal(d.observe(h.reading()), null);
  // Two own steps between readings add up.
  h.run(1);
  h.real -= 700_000_000n;
  d.ownStep(-0.5);
  d.ownStep(-0.2);
  assert.equal(d.observe(h.reading()), null);
  // An own step announced but a different jump seen: the difference is foreign.
  h.run(1);
  h.real += 1n * S;
  d.ownStep(0.25);
  const ev = d.observe(h.reading());
  assert.ok(ev && ev.type === 'jump' && Math.abs(ev.jumpSeconds - 0.75) < 1e-9);
});

test('clock jump detector: frequency corrections within maxRatePpm are not jumps', () => {
  const h = new Host();
  const d = new ClockJumpDetector({ threshold: 0.01, maxRatePpm: 500 });
  d.observe(h.reading());
  // The virtual clock runs 400 ppm fast relative to the monotonic clock: 60 s ticks.
  for (let i = 0; i < 10; i++) {
    h.run(60);
    h.real += 24_000_000n;
    assert.equal(d.observe(h.reading()), null);
  }
  // 20 ms in one second is beyond 10 ms + 500 ppm.
  h.run(1);
  h.real += 20_000_000n;
  assert.equal(d.observe(h.reading())?.type, 'jump');
});

test('clock jump detector: below the threshold nothing is reported; reset forgets', () => {
  const h = new Host();
  const d = new ClockJumpDetector({ threshold: 0.1 });
  d.observe(h.reading());
  h.run(1);
  h.real += 90_000_000n;
  assert.equal(d.observe(h.reading()), null);
  h.run(1);
  h.boot += 50_000_000n; // a 50 ms "suspend" is under the threshold too
  h.real += 50_000_000n;
  assert.equal(d.observe(h.reading()), null);
  d.reset();
  h.real += 10n * S;
  assert.equal(d.observe(h.reading()), null, 'first reading after reset has no reference');
});

// ---- the daemon's I/O side ---------------------------------------------------------------------

function watchRig(): {
  h: Host;
  watch: JumpWatch;
  jumps: number[];
  flushes: () => number;
  setLeap: (s: string) => void;
  logs: string[];
} {
  const h = new Host();
  const jumps: number[] = [];
  let leapStatus = 'Normal';
  let flushes = 0;
  const logs: string[] = [];
  const engine = {
    tracking: () => ({ leapStatus }),
    clockJumped: (_now: bigint, s: number) => jumps.push(s),
  } as unknown as Engine;
  const clock = { now: () => h.real } as unknown as Clock;
  const watch = new JumpWatch(
    engine,
    clock,
    { info: (m) => logs.push(m), warn: (m) => logs.push(m) },
    () => flushes++,
    {},
    () => ({ monotonic: h.mono, boottime: h.boot }),
  );
  return { h, watch, jumps, flushes: () => flushes, setLeap: (s) => (leapStatus = s), logs };
}

test('jump watch: tells the engine of a foreign jump and flushes; own steps are silent', () => {
  const { h, watch, jumps, flushes, logs } = watchRig();
  assert.equal(watch.check(), false);
  h.run(1);
  h.real += 2n * S;
  assert.equal(watch.check(), true);
  assert.deepEqual(jumps, [2]);
  assert.equal(flushes(), 1);
  assert.match(logs[0]!, /jumped by 2\.000000 seconds/);
  h.run(1);
  h.real -= 1n * S;
  watch.ownStep(-1);
  assert.equal(watch.check(), false);
  h.run(1);
  h.boot += 100n * S;
  h.real += 100n * S;
  assert.equal(watch.check(), true);
  assert.match(logs[1]!, /resumed after 100\.0 s of suspend/);
});

test("jump watch: the kernel's leap second (−1 s with insert pending) is not a jump", () => {
  const { h, watch, jumps, setLeap } = watchRig();
  setLeap('Insert second');
  watch.check();
  h.run(1);
  h.real -= 1n * S;
  setLeap('Normal');
  assert.equal(watch.check(), false);
  // Without a pending leap the same step is a jump.
  h.run(1);
  watch.check();
  h.run(1);
  h.real -= 1n * S;
  assert.equal(watch.check(), true);
  assert.deepEqual(jumps, [-1]);
});

test('local refid: the address the kernel picks towards a source', async () => {
  assert.equal(await localAddressTowards('127.0.0.1', 123), '127.0.0.1');
});
