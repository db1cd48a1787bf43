import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  ConfigError,
  defaultConfig,
  formatConfig,
  parseConfigText,
  type Config,
} from '../../src/config/chrony-conf.js';
import { LogFile, SELECTION_BANNER, formatSelectionLine } from '../../src/daemon/logfiles.js';
import { StatsLogger } from '../../src/daemon/stats-logger.js';
import { makeControlHandler } from '../../src/daemon/control-handler.js';
import type { Engine } from '../../src/engine/engine.js';
import type { Runtime } from '../../src/daemon/runtime.js';
import type { Clock } from '../../src/clock/clock.js';

const at = (iso: string): bigint => BigInt(Date.parse(iso)) * 1_000_000n;

test('log directive: every chrony name is accepted; unimplemented ones warn with the reason', () => {
  const c = parseConfigText(
    'log rawmeasurements measurements selection statistics tracking\nlog rtc refclocks tempcomp\n',
    'f',
  );
  assert.deepEqual(c.log, ['rawmeasurements', 'measurements', 'selection', 'statistics', 'tracking']);
  assert.equal(c.warnings.length, 3);
  assert.match(c.warnings[0]!, /^f:2: log 'rtc' is not supported/);
  assert.match(c.warnings[1]!, /refclocks.*reference clocks are planned/);
  assert.match(c.warnings[2]!, /tempcomp.*planned/);
  assert.throws(() => parseConfigText('log tracking bogus\n', 'f'), /f:1: invalid log parameter 'bogus'/);
  assert.throws(() => parseConfigText('log\n', 'f'), ConfigError);
});

test('logbanner, logchange, mailonchange: values, defaults, errors with file:line', () => {
  const d = defaultConfig();
  assert.equal(d.logbanner, 32);
  assert.equal(d.logchange, null);
  const c = parseConfigText('logbanner 0\nlogchange 0.1\nmailonchange root@localhost 0.5\n', 'x.conf');
  assert.equal(c.logbanner, 0);
  assert.equal(c.logchange, 0.1);
  assert.match(c.warnings.join('\n'), /x\.conf:3: mailonchange is not supported \(Rubidium sends no mail\)/);
  assert.throws(() => parseConfigText('logbanner -1\n', 'x.conf'), /x\.conf:1: invalid logbanner '-1'/);
  assert.throws(() => parseConfigText('logbanner 1 2\n', 'x.conf'), /x\.conf:1: too many arguments/);
  assert.throws(() => parseConfigText('logchange abc\n', 'x.conf'), /x\.conf:1: invalid logchange threshold 'abc'/);
  assert.throws(() => parseConfigText('mailonchange root\n', 'x.conf'), /x\.conf:1: missing arguments/);
});

test('RTC directives parse and print back (rubidiumd -p)', () => {
  const text =
    'rtcsync\nrtcfile /var/lib/rb/rtc\nrtcautotrim 30\nrtcdevice /dev/rtc1\nrtconutc\nhwclockfile /etc/adjtime\nlogbanner 10\nlogchange 0.5\n';
  const c = parseConfigText(text, 'f');
  assert.equal(c.rtcsync, true);
  assert.equal(c.rtcfile, '/var/lib/rb/rtc');
  assert.equal(c.rtcautotrim, 30);
  assert.equal(c.rtcdevice, '/dev/rtc1');
  assert.equal(c.rtconutc, true);
  assert.equal(c.hwclockfile, '/etc/adjtime');
  assert.deepEqual(c.warnings, []);
  const again = parseConfigText(formatConfig(c), 'p');
  for (const k of [
    'rtcsync',
    'rtcfile',
    'rtcautotrim',
    'rtcdevice',
    'rtconutc',
    'hwclockfile',
    'logbanner',
    'logchange',
  ] as const) {
    assert.deepEqual(again[k], c[k], k);
  }
  assert.throws(() => parseConfigText('rtcsync yes\n', 'f'), /f:1: too many arguments for rtcsync/);
  assert.throws(() => parseConfigText('rtcautotrim -3\n', 'f'), /f:1: invalid rtcautotrim threshold/);
});

test('selection line: chrony.conf example values and column layout', () => {
  const line = formatSelectionLine({
    time: at('2022-05-01T02:01:20Z'),
    address: '203.0.113.15',
    state: '*',
    noselect: false,
    prefer: false,
    trust: false,
    require: false,
    reach: 0o377,
    score: 1,
    lastSampleAgo: 42.28,
    low: -1.575e-4,
    high: 1.239e-4,
  });
  assert.equal(line, '2022-05-01 02:01:20 203.0.113.15    * -----  377  1.00  4.228e+01 -1.575e-04  1.239e-04');
  const opts = formatSelectionLine({
    time: 0n,
    address: '10.0.0.1',
    state: 'N',
    noselect: true,
    prefer: true,
    trust: true,
    require: true,
    reach: 5,
    score: 12.5,
    lastSampleAgo: 0,
    low: 0,
    high: 0,
  });
  assert.match(opts, /^1970-01-01 00:00:00 10\.0\.0\.1        N -NPTR    5 12\.50 /);
  assert.match(SELECTION_BANNER, /S EOpts Reach Score Last sample  Low end   High end$/);
  assert.throws(() => formatSelectionLine({ ...JSON.parse('{}'), state: '**' }), RangeError);
});

test('LogFile: an unopenable file is reported once, then the log is disabled', () => {
  const lf = new LogFile('/proc/nonexistent-dir', 'tracking', 'H');
  assert.throws(() => lf.write('a'), /cannot open \/proc\/nonexistent-dir\/tracking\.log: .*log disabled/);
  assert.doesNotThrow(() => lf.write('b'));
});

/** A fake engine with one source that produces a new sample on demand. */
function fakeEngine() {
  const st = { rx: 0, refTime: 1 };
  const engine = {
    ntpData: () => [
      {
        remoteAddress: '192.0.2.1',
        remotePort: 123,
        localAddress: '',
        leap: 0,
        version: 4,
        mode: 4,
        stratum: 1,
        poll: 6,
        precision: -20,
        rootDelay: 1e-3,
        rootDispersion: 2e-3,
        refId: 0x47505300,
        refTimeNs: '0',
        offset: -2.5e-4,
        peerDelay: 4e-4,
        peerDispersion: 1e-6,
        responseTime: 0,
        jitterAsymmetry: 0,
        ntpTests: '111 111 1111',
        interleaved: false,
        authenticated: false,
        txTimestamping: 'Kernel',
        rxTimestamping: 'Kernel',
        totalTx: st.rx + 1,
        totalRx: st.rx,
        totalValidRx: st.rx,
      },
    ],
    sources: () => [
      {
        mode: 'server',
        state: '*',
        name: '192.0.2.1',
        address: '192.0.2.1',
        port: 123,
        stratum: 1,
        poll: 6,
        reach: 0o17,
        lastRxAgo: 3,
        adjustedOffset: -2.5e-4,
        measuredOffset: -2.5e-4,
        error: 1e-3,
      },
    ],
    sourceStats: () => [
      {
        name: '192.0.2.1',
        address: '192.0.2.1',
        np: st.rx,
        nr: 1,
        span: 60,
        frequencyPpm: 0.01,
        freqSkewPpm: 0.1,
        offset: -2.5e-4,
        stdDev: 3e-5,
      },
    ],
    tracking: () => ({
      refId: 0xc0000201,
      refName: '192.0.2.1',
      stratum: 2,
      refTimeNs: String(st.refTime),
      systemTimeOffset: 0,
      lastOffset: st.refTime === 2 ? 1.5 : 2.5e-4,
      rmsOffset: 3e-5,
      frequencyPpm: 12.5,
      residualFreqPpm: 0,
      skewPpm: 0.05,
      rootDelay: 1.4e-3,
      rootDispersion: 2.1e-3,
      updateInterval: 64,
      leapStatus: 'Normal',
    }),
  };
  return { st, engine: engine as unknown as Engine };
}

function logCollector() {
  const lines: string[] = [];
  return {
    lines,
    log: { info: (m: string) => lines.push('I ' + m), warn: (m: string) => lines.push('W ' + m), debug: () => {} },
  };
}

test('StatsLogger: logbanner, measurements only for new samples, selection, logchange threshold', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rb-logs-'));
  try {
    const conf: Config = {
      ...defaultConfig(),
      logdir: dir,
      log: ['measurements', 'selection', 'tracking'],
      logbanner: 2,
      logchange: 1,
    };
    const { st, engine } = fakeEngine();
    const { lines, log } = logCollector();
    const sl = new StatsLogger(conf, log);
    for (let i = 1; i <= 3; i++) {
      st.rx = i;
      sl.onPoll(engine, at('2024-01-01T00:00:00Z') + BigInt(i) * 1_000_000_000n);
      sl.onPoll(engine, at('2024-01-01T00:00:00Z') + BigInt(i) * 1_000_000_000n); // no new sample: nothing
    }
    sl.onClockUpdate(engine, at('2024-01-01T00:00:05Z'));
    st.refTime = 2; // an update with a 1.5 s correction: over logchange 1
    sl.onClockUpdate(engine, at('2024-01-01T00:00:06Z'));
    sl.close();
    const m = fs.readFileSync(path.join(dir, 'measurements.log'), 'utf8').split('\n');
    // banner (3 lines), 2 entries, banner, 1 entry
    assert.equal(m.filter((l) => l.startsWith('   Date')).length, 2);
    const entries = m.filter((l) => l.startsWith('2024'));
    assert.equal(entries.length, 3);
    assert.match(
      entries[0]!,
      /^2024-01-01 00:00:01 192\.0\.2\.1       N  1 111 111 1111   6  6 1\.00  2\.500e-04  4\.000e-04 /,
    );
    const sel = fs.readFileSync(path.join(dir, 'selection.log'), 'utf8');
    assert.match(sel, /2024-01-01 00:00:01 192\.0\.2\.1       \* -----   17  1\.00  3\.000e\+00 /);
    const tr = fs
      .readFileSync(path.join(dir, 'tracking.log'), 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('2024'));
    assert.equal(tr.length, 2);
    assert.deepEqual(
      lines.filter((l) => l.includes('wrong by')),
      ['W System clock wrong by 1.500000 seconds'],
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('cyclelogs (control command): renamed files are left alone, new files appear', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rb-cycle-'));
  try {
    const conf: Config = { ...defaultConfig(), logdir: dir, log: ['rawmeasurements', 'tracking'] };
    const { st, engine } = fakeEngine();
    const sl = new StatsLogger(conf, logCollector().log);
    const handler = makeControlHandler(
      engine,
      {} as Runtime,
      { now: () => 0n } as unknown as Clock,
      () => ({ received: 0, dropped: 0 }),
      sl,
    );
    st.rx = 1;
    sl.onPoll(engine, at('2024-01-01T00:00:01Z'));
    sl.onClockUpdate(engine, at('2024-01-01T00:00:01Z'));
    for (const f of ['measurements', 'tracking'])
      fs.renameSync(path.join(dir, `${f}.log`), path.join(dir, `${f}.log.1`));
    const r = await handler({ cmd: 'cyclelogs', args: [] });
    assert.deepEqual(r, { ok: true, data: null });
    st.rx = 2;
    sl.onPoll(engine, at('2024-01-01T00:00:02Z'));
    st.refTime = 3;
    sl.onClockUpdate(engine, at('2024-01-01T00:00:02Z'));
    sl.close();
    for (const f of ['measurements', 'tracking']) {
      const old = fs.readFileSync(path.join(dir, `${f}.log.1`), 'utf8');
      const cur = fs.readFileSync(path.join(dir, `${f}.log`), 'utf8');
      assert.match(old, /00:00:01/);
      assert.doesNotMatch(old, /00:00:02/, `${f}.log.1 written after cyclelogs`);
      assert.match(cur, /^={10,}\n   Date \(UTC\)/, `${f}.log starts with a banner`);
      assert.match(cur, /00:00:02/);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
