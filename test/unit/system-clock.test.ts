import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SystemClock, type SystemClockAddon } from '../../src/clock/system-clock.js';
import {
  native,
  nativeLoadError,
  STA_DEL,
  STA_INS,
  STA_PLL,
  STA_UNSYNC,
  type AdjtimeRequest,
  type AdjtimeState,
} from '../../src/io/native.js';

const skip = process.env.RUBIDIUM_NO_NATIVE === '1' ? 'RUBIDIUM_NO_NATIVE=1' : false;

/** A fake addon that models the kernel's timex state and records every call. */
function fakeAddon(initialStatus = STA_UNSYNC | STA_PLL): SystemClockAddon & {
  calls: (AdjtimeRequest | string)[];
  state: AdjtimeState;
} {
  const state: AdjtimeState = {
    freqPpm: 3.25,
    freqScaled: 3.25 * 65536,
    offsetNs: 0,
    maxErrorUs: 16_000_000,
    estErrorUs: 16_000_000,
    status: initialStatus,
    constant: 2,
    precisionUs: 1,
    tolerancePpm: 500,
    tickUs: 10000,
    tai: 37,
    state: 5,
    timeNs: 1_700_000_000_000_000_000n,
  };
  const calls: (AdjtimeRequest | string)[] = [];
  return {
    calls,
    state,
    clockGettime(id: number): bigint {
      calls.push(`clockGettime(${id})`);
      return 1_700_000_000_123_456_789n;
    },
    adjtimeRead(): AdjtimeState {
      calls.push('adjtimeRead');
      return { ...state };
    },
    adjtime(req: AdjtimeRequest): AdjtimeState {
      calls.push({ ...req });
      if (req.freqPpm !== undefined) {
        state.freqScaled = Math.round(req.freqPpm * 65536);
        state.freqPpm = state.freqScaled / 65536;
      }
      if (req.status !== undefined || req.clearStatus !== undefined) {
        state.status = (state.status | (req.status ?? 0)) & ~(req.clearStatus ?? 0);
      }
      if (req.maxErrorUs !== undefined) state.maxErrorUs = req.maxErrorUs;
      if (req.estErrorUs !== undefined) state.estErrorUs = req.estErrorUs;
      return { ...state };
    },
  };
}

test('SystemClock with a fake addon: now, fromKernel, kind', () => {
  const f = fakeAddon();
  const c = new SystemClock(f);
  assert.equal(c.kind, 'system');
  assert.equal(c.now(), 1_700_000_000_123_456_789n);
  assert.deepEqual(f.calls, ['clockGettime(0)']);
  assert.equal(c.fromKernel(123n), 123n);
});

test('setFrequency maps to ADJ_FREQUENCY, clamped to ±500 ppm', () => {
  const f = fakeAddon();
  const c = new SystemClock(f);
  c.setFrequency(12.5);
  c.setFrequency(1000);
  c.setFrequency(-1e9);
  c.setFrequency(-0.001);
  assert.deepEqual(f.calls, [{ freqPpm: 12.5 }, { freqPpm: 500 }, { freqPpm: -500 }, { freqPpm: -0.001 }]);
  assert.throws(() => c.setFrequency(Number.NaN), RangeError);
  assert.throws(() => c.setFrequency(Infinity), RangeError);
  assert.equal(f.calls.length, 4);
  assert.equal(c.getFrequency(), Math.round(-0.001 * 65536) / 65536);
});

test('step maps to ADJ_SETOFFSET in ns', () => {
  const f = fakeAddon();
  const c = new SystemClock(f);
  c.step(1.5);
  c.step(-0.25);
  c.step(1e-9);
  assert.deepEqual(f.calls, [{ setOffsetNs: 1_500_000_000n }, { setOffsetNs: -250_000_000n }, { setOffsetNs: 1n }]);
  assert.throws(() => c.step(Number.NaN), RangeError);
  assert.equal(f.calls.length, 3);
});

test('setStatus sets/clears STA_UNSYNC, leap bits, max/est error; other bits are preserved', () => {
  const f = fakeAddon(STA_UNSYNC | STA_PLL);
  const c = new SystemClock(f);
  c.setStatus({ synchronized: true, leap: 0, maxErrorS: 0.0015, estErrorS: 0.000_02 });
  assert.deepEqual(f.calls.at(-1), {
    status: 0,
    clearStatus: STA_UNSYNC | STA_INS | STA_DEL,
    maxErrorUs: 1500,
    estErrorUs: 20,
  });
  assert.equal(f.state.status, STA_PLL);
  assert.deepEqual(c.getStatus(), { synchronized: true, leap: 0, maxErrorS: 0.0015, estErrorS: 0.00002 });

  c.setStatus({ synchronized: true, leap: 1, maxErrorS: 0.01, estErrorS: 0.001 });
  assert.equal(f.state.status, STA_PLL | STA_INS);
  assert.equal(c.getStatus().leap, 1);

  c.setStatus({ synchronized: true, leap: 2, maxErrorS: 0.01, estErrorS: 0.001 });
  assert.equal(f.state.status, STA_PLL | STA_DEL);
  assert.equal(c.getStatus().leap, 2);

  c.setStatus({ synchronized: false, leap: 3, maxErrorS: 1e9, estErrorS: Number.NaN });
  assert.deepEqual(f.calls.at(-1), {
    status: STA_UNSYNC,
    clearStatus: STA_INS | STA_DEL,
    maxErrorUs: 16_000_000,
    estErrorUs: 16_000_000,
  });
  assert.equal(f.state.status, STA_PLL | STA_UNSYNC);
  assert.deepEqual(c.getStatus(), { synchronized: false, leap: 3, maxErrorS: 16, estErrorS: 16 });
});

test('SystemClock without the addon throws a clear message', () => {
  assert.throws(() => new SystemClock(null), /native addon|unavailable/);
});

test('SystemClock on the real addon: read-only calls, frequency written back exactly', { skip }, () => {
  assert.ok(native, `native addon failed to load: ${nativeLoadError}`);
  const c = new SystemClock(native);
  const t = c.now();
  assert.ok(t - BigInt(Date.now()) * 1_000_000n < 50_000_000n && BigInt(Date.now()) * 1_000_000n - t < 50_000_000n);
  const before = native.adjtimeRead();
  const f = c.getFrequency();
  assert.equal(f, before.freqPpm);
  c.setFrequency(f); // writes back exactly the value just read
  const after = native.adjtimeRead();
  assert.equal(after.freqScaled, before.freqScaled);
  assert.equal(after.status, before.status);
  const st = c.getStatus();
  assert.equal(st.synchronized, (before.status & STA_UNSYNC) === 0);
  assert.ok(st.maxErrorS >= 0 && st.maxErrorS <= 16 && st.estErrorS >= 0);
  assert.ok([0, 1, 2, 3].includes(st.leap));
});
