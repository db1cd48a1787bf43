import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InjectedError, parseInjectedError } from '../../src/clock/injected-error.js';
import { NS_PER_S } from '../../src/time/ntp-time.js';
import { parseFlags, FlagError } from '../../src/daemon/flags.js';

const EPOCH = 1_800_000_000n * NS_PER_S;

test('offset and frequency error without wander', () => {
  const m = new InjectedError({ offset: 0.25, ppm: 20 }, EPOCH);
  assert.equal(m.errorAt(EPOCH), 0.25);
  assert.ok(Math.abs(m.errorAt(EPOCH + 100n * NS_PER_S) - (0.25 + 20e-6 * 100)) < 1e-12);
  assert.ok(Math.abs(m.errorAt(EPOCH - 10n * NS_PER_S) - (0.25 - 20e-6 * 10)) < 1e-12);
});

test('wander is reproducible from the seed, whatever the query order', () => {
  const spec = { offset: 0, ppm: 0, wander: 1e-8, seed: 7, epoch: EPOCH };
  const a = new InjectedError(spec, 0n);
  const b = new InjectedError(spec, 0n);
  const times = [3600n, 10n, 1234n, 1n, 3599n].map((s) => EPOCH + s * NS_PER_S + 123_456_789n);
  const fromA = times.map((t) => a.errorAt(t));
  const fromB = [...times]
    .reverse()
    .map((t) => b.errorAt(t))
    .reverse();
  assert.deepEqual(fromA, fromB);
  // A random walk of frequency: after an hour it has moved (≈ 1e-8·√3600 = 6e-7 s/s).
  assert.notEqual(a.frequencyAt(EPOCH + 3600n * NS_PER_S), a.frequencyAt(EPOCH));
  const other = new InjectedError({ ...spec, seed: 8 }, 0n);
  assert.notEqual(other.errorAt(times[0]!), fromA[0]);
  // Continuous: no jump at a knot.
  const k = EPOCH + 500n * NS_PER_S;
  assert.ok(Math.abs(a.errorAt(k - 1n) - a.errorAt(k)) < 1e-12);
});

test('steps apply from their time on', () => {
  const m = new InjectedError({ offset: 0, ppm: 0, steps: [{ at: 60, offset: 0.002 }] }, EPOCH);
  assert.equal(m.errorAt(EPOCH + 59n * NS_PER_S), 0);
  assert.equal(m.errorAt(EPOCH + 60n * NS_PER_S), 0.002);
});

test('parser: legacy and key=value forms, errors name the bad part', () => {
  assert.deepEqual(parseInjectedError('0.25,20'), { offset: 0.25, ppm: 20 });
  assert.deepEqual(parseInjectedError('offset=0.5,ppm=50,wander=1e-9,seed=3,epoch=17,step=120:0.01'), {
    offset: 0.5,
    ppm: 50,
    wander: 1e-9,
    seed: 3,
    epoch: 17n,
    steps: [{ at: 120, offset: 0.01 }],
  });
  assert.throws(() => parseInjectedError('offset=x'), /offset must be a number, got 'x'/);
  assert.throws(() => parseInjectedError('bogus=1'), /unknown key 'bogus'/);
  assert.throws(() => parseInjectedError('step=5'), /AT:OFFSET/);
  assert.throws(() => parseFlags(['-x', '--inject-error', 'ppm=1e9']), FlagError);
  assert.equal(parseFlags(['-x', '--inject-error', 'offset=1,wander=1e-9']).injectError?.wander, 1e-9);
});
