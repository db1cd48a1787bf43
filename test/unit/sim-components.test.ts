import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Prng } from '../../src/sim/prng.js';
import { Oscillator } from '../../src/sim/oscillator.js';
import { NetworkPath } from '../../src/sim/network.js';
import { EventQueue } from '../../src/sim/event-queue.js';
import { addSeconds } from '../../src/time/ntp-time.js';

test('prng is deterministic and has sane moments', () => {
  const a = new Prng(42);
  const b = new Prng(42);
  for (let i = 0; i < 100; i++) assert.equal(a.random(), b.random());
  const r = new Prng(1);
  let s = 0;
  let s2 = 0;
  let e = 0;
  const n = 20000;
  for (let i = 0; i < n; i++) {
    const x = r.normal();
    s += x;
    s2 += x * x;
    e += r.exponential(2);
    const u = r.random();
    assert.ok(u >= 0 && u < 1);
  }
  assert.ok(Math.abs(s / n) < 0.03);
  assert.ok(Math.abs(s2 / n - 1) < 0.05);
  assert.ok(Math.abs(e / n - 2) < 0.1);
  assert.notEqual(new Prng(1).fork().random(), new Prng(2).fork().random());
});

test('oscillator: offset, frequency and random-walk wander', () => {
  const t0 = 1_767_225_600_000_000_000n;
  const o = new Oscillator({ freqPpm: 100, initialOffset: 0.1 }, t0, new Prng(1));
  assert.equal(o.phase(t0), 0.1);
  assert.ok(Math.abs(o.phase(addSeconds(t0, 1000.5)) - (0.1 + 100e-6 * 1000.5)) < 1e-12);
  assert.throws(() => o.phase(t0));
  // Wander 1e-9 per s: after 10000 s the frequency has moved by about 1e-9·sqrt(10000) = 1e-7.
  let sum2 = 0;
  for (let k = 0; k < 20; k++) {
    const w = new Oscillator({ wander: 1e-9 }, t0, new Prng(100 + k));
    const f = w.frequency(addSeconds(t0, 10000));
    sum2 += f * f;
  }
  const rms = Math.sqrt(sum2 / 20);
  assert.ok(rms > 0.5e-7 && rms < 2e-7, `rms ${rms}`);
});

test('network path: jitter distributions, loss and down schedule', () => {
  const p = new NetworkPath({ baseDelay: 1e-4, jitter: { dist: 'exponential', mean: 1e-4 } }, new Prng(5));
  let s = 0;
  for (let i = 0; i < 5000; i++) {
    const d = p.delay(i)!;
    assert.ok(d >= 1e-4);
    s += d;
  }
  assert.ok(Math.abs(s / 5000 - 2e-4) < 1e-5);
  const u = new NetworkPath({ baseDelay: 0, jitter: { dist: 'uniform', max: 1e-3 } }, new Prng(5));
  for (let i = 0; i < 100; i++) assert.ok(u.delay(0)! < 1e-3);
  const l = new NetworkPath({ baseDelay: 0.01, loss: 0.5, down: [[10, 20]] }, new Prng(5));
  let lost = 0;
  for (let i = 0; i < 1000; i++) if (l.delay(0) === undefined) lost++;
  assert.ok(lost > 400 && lost < 600);
  for (let i = 0; i < 10; i++) assert.equal(l.delay(15), undefined);
  const n = new NetworkPath({ baseDelay: 0.01, jitter: { dist: 'normal', sd: 1e-3 } }, new Prng(5));
  assert.ok(n.delay(0)! >= 0.01);
});

test('event queue orders by time then insertion', () => {
  const q = new EventQueue<string>();
  q.push(5n, 'a');
  q.push(1n, 'b');
  q.push(5n, 'c');
  q.push(3n, 'd');
  const out: string[] = [];
  for (let e = q.pop(); e; e = q.pop()) out.push(e.v);
  assert.deepEqual(out, ['b', 'd', 'a', 'c']);
});
