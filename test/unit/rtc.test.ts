import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RtcDriftTracker, formatRtcFile, parseRtcFile, RTC_MAX_SAMPLES } from '../../src/rtc/rtc-drift.js';
import { kernelSyncStatus, RtcSyncClock, MAX_SYNC_ERROR_S } from '../../src/rtc/rtcsync.js';
import { noRtcMessage, setupRtc, nodeRtcIo, type RtcIo } from '../../src/rtc/rtc-service.js';
import { SystemClock, type SystemClockAddon } from '../../src/clock/system-clock.js';
import { DisciplinedClock } from '../../src/clock/disciplined-clock.js';
import { defaultConfig, type Config } from '../../src/config/chrony-conf.js';
import { STA_UNSYNC, type AdjtimeRequest, type AdjtimeState } from '../../src/io/native.js';

const S = 1_000_000_000n;

test('RTC drift: regression recovers offset and rate of a simulated RTC', () => {
  // RTC 0.4 s fast at t0, gaining 25 ppm; sampled at its second edges every 60 s, with 1 ms noise.
  const t0 = 1_700_000_000;
  const tr = new RtcDriftTracker();
  let seed = 1;
  const noise = () => ((seed = (seed * 48271) % 2147483647) / 2147483647 - 0.5) * 2e-3;
  for (let k = 0; k < 40; k++) {
    const rtc = t0 + 60 * k;
    // system time at which the RTC shows `rtc`: rtc − offset(rtc)
    const off = 0.4 + (25e-6 * (rtc - t0)) / (1 + 25e-6);
    tr.addSample(rtc, BigInt(Math.round((rtc - off + noise()) * 1e9)));
  }
  const c = tr.coefficients!;
  assert.equal(c.valid, true);
  assert.equal(c.refTime, t0 + 60 * 39);
  assert.ok(Math.abs(c.ratePpm - 25) < 0.5, `rate ${c.ratePpm}`);
  assert.ok(Math.abs(c.offset - (0.4 + 25e-6 * 60 * 39)) < 1e-3, `offset ${c.offset}`);
  assert.ok(Math.abs(tr.predictOffset(t0 + 60 * 40)! - (0.4 + 25e-6 * 60 * 40)) < 1e-3);
});

test('RTC drift: bounded sample count, RTC set backwards restarts, step moves samples', () => {
  const tr = new RtcDriftTracker();
  for (let k = 0; k < RTC_MAX_SAMPLES + 10; k++) tr.addSample(1000 + k, BigInt(1000 + k) * S);
  assert.ok(tr.sampleCount <= RTC_MAX_SAMPLES);
  assert.ok(Math.abs(tr.coefficients!.offset) < 1e-9);
  tr.addSample(500, 500n * S); // RTC went backwards
  assert.equal(tr.sampleCount, 1);
  tr.addSample(501, 501n * S);
  tr.addSample(502, 502n * S);
  tr.systemStepped(2); // system clock moved forward 2 s: RTC is now 2 s slow of it
  assert.ok(Math.abs(tr.coefficients!.offset + 2) < 1e-9);
  tr.addSample(503, 505n * S);
  assert.ok(Math.abs(tr.coefficients!.offset + 2) < 1e-9, `${tr.coefficients!.offset}`);
  assert.throws(() => tr.addSample(1.5, 0n), RangeError);
});

test('rtcfile: chronyd format round trip; malformed file is an error naming it', () => {
  const c = { valid: true, refTime: 1700000123, offset: -0.0373604, ratePpm: -37.9484 };
  const text = formatRtcFile(c);
  assert.equal(text, '1 1700000123 -0.037360 -37.948\n');
  assert.deepEqual(parseRtcFile(text, 'rtc'), { valid: true, refTime: 1700000123, offset: -0.03736, ratePpm: -37.948 });
  assert.throws(() => parseRtcFile('1 2 x 4', '/var/lib/rtc'), /\/var\/lib\/rtc: could not read RTC coefficients/);
  assert.throws(() => parseRtcFile('', 'f'), /f: could not read/);
});

test('rtcautotrim decision: fresh fit, over threshold, synchronised', () => {
  const tr = new RtcDriftTracker();
  for (let k = 0; k < 5; k++) tr.addSample(100 + k, BigInt(100 + k) * S - 40n * S); // RTC 40 s fast
  assert.equal(tr.shouldAutotrim(30, true), true);
  assert.equal(tr.shouldAutotrim(30, false), false);
  assert.equal(tr.shouldAutotrim(50, true), false);
  assert.equal(tr.shouldAutotrim(0, true), false);
});

test('rtcsync policy: STA_UNSYNC cleared only with rtcsync and a max error under 16 s (chronyd sys_timex)', () => {
  const synced = { synchronized: true, leap: 0 as const, maxErrorS: 0.01, estErrorS: 0.001 };
  assert.deepEqual(kernelSyncStatus(synced, true), synced);
  assert.equal(kernelSyncStatus(synced, false).synchronized, false);
  assert.equal(kernelSyncStatus(synced, false).maxErrorS, 0.01);
  const big = kernelSyncStatus({ ...synced, maxErrorS: 20, estErrorS: 30 }, true);
  assert.deepEqual(big, { synchronized: false, leap: 0, maxErrorS: MAX_SYNC_ERROR_S, estErrorS: MAX_SYNC_ERROR_S });
  const un = kernelSyncStatus({ synchronized: false, leap: 3, maxErrorS: 1, estErrorS: 1 }, true);
  assert.deepEqual(un, { synchronized: false, leap: 3, maxErrorS: 16, estErrorS: 16 });
});

function fakeAddon(): SystemClockAddon & { state: AdjtimeState; calls: AdjtimeRequest[] } {
  const state = {
    freqPpm: 0,
    freqScaled: 0,
    offsetNs: 0,
    maxErrorUs: 16e6,
    estErrorUs: 16e6,
    status: STA_UNSYNC,
    constant: 2,
    precisionUs: 1,
    tolerancePpm: 500,
    tickUs: 10000,
    tai: 37,
    state: 5,
    timeNs: 0n,
  } as AdjtimeState;
  const calls: AdjtimeRequest[] = [];
  return {
    state,
    calls,
    clockGettime: () => 1_700_000_000n * S,
    adjtimeRead: () => ({ ...state }),
    adjtime(req: AdjtimeRequest) {
      calls.push(req);
      if (req.status !== undefined || req.clearStatus !== undefined)
        state.status = (state.status | (req.status ?? 0)) & ~(req.clearStatus ?? 0);
      if (req.maxErrorUs !== undefined) state.maxErrorUs = req.maxErrorUs;
      if (req.estErrorUs !== undefined) state.estErrorUs = req.estErrorUs;
      return { ...state };
    },
  };
}

const quietLog = () => {
  const lines: string[] = [];
  return { lines, log: { info: (m: string) => lines.push(m), warn: (m: string) => lines.push(m), debug: () => {} } };
};
const fakeIo = (present: string[] = []): RtcIo => ({
  exists: (p) => present.includes(p),
  sysfsSeconds: () => null,
  readFile: () => {
    throw new Error('no');
  },
  writeFileAtomic: () => {},
});

test('rtcsync on the system clock (fake addon): kernel sees STA_UNSYNC cleared and maxerror set; without it, UNSYNC stays', () => {
  for (const rtcsync of [true, false]) {
    const addon = fakeAddon();
    const conf: Config = { ...defaultConfig(), rtcsync };
    const { log } = quietLog();
    const r = setupRtc(conf, new SystemClock(addon), log, fakeIo(['/dev/rtc']));
    assert.ok(r.clock instanceof RtcSyncClock);
    r.clock.setStatus({ synchronized: true, leap: 0, maxErrorS: 0.002, estErrorS: 0.0005 });
    assert.equal((addon.state.status & STA_UNSYNC) === 0, rtcsync, `rtcsync ${rtcsync}`);
    assert.equal(addon.state.maxErrorUs, 2000);
    assert.equal(addon.state.estErrorUs, 500);
  }
});

test('rtcsync with -x: no effect, said once; rtcfile+rtcsync is fatal; no RTC: refused clearly, daemon goes on', () => {
  const vc = new DisciplinedClock(() => 0n, 'virtual');
  const a = quietLog();
  const r = setupRtc({ ...defaultConfig(), rtcsync: true }, vc, a.log, fakeIo());
  assert.equal(r.clock, vc);
  assert.equal(a.lines.filter((l) => /rtcsync has no effect with -x/.test(l)).length, 1);
  assert.match(
    setupRtc({ ...defaultConfig(), rtcsync: true, rtcfile: '/x' }, vc, a.log, fakeIo()).fatal!,
    /rtcfile directive cannot be used with rtcsync/,
  );
  const b = quietLog();
  const none = setupRtc(
    { ...defaultConfig(), rtcfile: '/var/lib/rb/rtc', rtcdevice: '/dev/rtc0' },
    vc,
    b.log,
    fakeIo(),
  );
  assert.equal(none.tracker, null);
  assert.equal(none.fatal, undefined);
  assert.deepEqual(b.lines, [noRtcMessage('/dev/rtc0')]);
  assert.equal(noRtcMessage('/dev/rtc0'), 'rtcfile: no RTC device (/dev/rtc0 missing); RTC drift tracking disabled');
});

test('this machine: the real RTC lookup agrees with /dev', () => {
  const c = { ...defaultConfig(), rtcfile: '/nonexistent/rtc' };
  const { lines, log } = quietLog();
  const r = setupRtc(c, new DisciplinedClock(() => 0n, 'virtual'), log, nodeRtcIo);
  if (nodeRtcIo.exists('/dev/rtc')) assert.notDeepEqual(lines, [noRtcMessage('/dev/rtc')]);
  else {
    assert.deepEqual(lines, [noRtcMessage('/dev/rtc')]);
    assert.equal(r.tracker, null);
  }
});
