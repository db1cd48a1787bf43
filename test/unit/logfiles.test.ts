import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  LogFile,
  MEASUREMENTS_BANNER,
  STATISTICS_BANNER,
  TRACKING_BANNER,
  formatBanner,
  formatLogTime,
  formatMeasurementsLine,
  formatStatisticsLine,
  formatTrackingLine,
} from '../../src/daemon/logfiles.js';

const at = (iso: string): bigint => BigInt(Date.parse(iso)) * 1_000_000n + 123_456_789n;

test('log time is UTC "YYYY-MM-DD HH:MM:SS" (fraction dropped)', () => {
  assert.equal(formatLogTime(at('2016-11-09T05:40:50Z')), '2016-11-09 05:40:50');
  assert.equal(formatLogTime(0n), '1970-01-01 00:00:00');
});

// Values of the example lines in chrony.conf(5) 4.3; the doc wraps them, spacing per chronyd's format.
test('measurements line, chrony.conf example values', () => {
  const line = formatMeasurementsLine({
    time: at('2016-11-09T05:40:50Z'),
    address: '203.0.113.15',
    leap: 0,
    stratum: 2,
    tests: '111 111 1111',
    localPoll: 10,
    remotePoll: 10,
    score: 1,
    offset: -4.966e-3,
    peerDelay: 2.296e-1,
    peerDispersion: 1.577e-5,
    rootDelay: 1.615e-1,
    rootDispersion: 7.446e-3,
    refId: 0xcb00717b,
    mode: 4,
    interleaved: false,
    txTimestamp: 'D',
    rxTimestamp: 'K',
  });
  assert.equal(
    line,
    '2016-11-09 05:40:50 203.0.113.15    N  2 111 111 1111  10 10 1.00 -4.966e-03  2.296e-01  1.577e-05  1.615e-01  7.446e-03 CB00717B 4B D K',
  );
  const v6 = formatMeasurementsLine({
    time: at('2016-11-09T05:40:50Z'),
    address: '2001:db8::123:4567',
    leap: 3,
    stratum: 16,
    tests: '1101110110',
    localPoll: -3,
    remotePoll: 6,
    score: 0.25,
    offset: 1e-7,
    peerDelay: 0,
    peerDispersion: 0,
    rootDelay: 0,
    rootDispersion: 0,
    refId: 0,
    mode: 1,
    interleaved: true,
    txTimestamp: 'H',
    rxTimestamp: 'H',
  });
  assert.match(
    v6,
    /^2016-11-09 05:40:50 2001:db8::123:4567 \? 16 110 111 0110  -3  6 0\.25  1\.000e-07  0\.000e\+00 .* 00000000 1I H H$/,
  );
  assert.throws(() => formatMeasurementsLine({ ...JSON.parse('{}'), tests: '11' }), RangeError);
});

test('statistics line, chrony.conf example values', () => {
  assert.equal(
    formatStatisticsLine({
      time: at('2016-08-10T05:40:50Z'),
      address: '203.0.113.15',
      stdDev: 6.261e-3,
      estOffset: -3.247e-3,
      offsetSd: 2.22e-3,
      diffFreq: 1.874e-6,
      estSkew: 1.08e-6,
      stress: 7.8e-2,
      samples: 16,
      bestStart: 0,
      runs: 8,
      asymmetry: 0,
    }),
    '2016-08-10 05:40:50 203.0.113.15     6.261e-03 -3.247e-03  2.220e-03  1.874e-06  1.080e-06 7.8e-02  16   0   8  0.00',
  );
});

test('tracking line, chrony.conf example values; refid text when no address', () => {
  const e = {
    time: at('2017-08-22T13:22:36Z'),
    address: '203.0.113.15',
    refId: 0xcb00710f,
    stratum: 2,
    freqPpm: -3.541,
    skewPpm: 0.075,
    offset: -8.621e-6,
    leap: 0,
    combinedSources: 2,
    offsetSd: 2.94e-3,
    remainingCorrection: -2.084e-4,
    rootDelay: 1.534e-2,
    rootDispersion: 3.472e-4,
    maxError: 8.304e-3,
  };
  assert.equal(
    formatTrackingLine(e),
    '2017-08-22 13:22:36 203.0.113.15     2     -3.541      0.075 -8.621e-06 N  2  2.940e-03 -2.084e-04  1.534e-02  3.472e-04  8.304e-03',
  );
  assert.match(
    formatTrackingLine({ ...e, address: '', refId: 0x4c4f434c, stratum: 10 }),
    /^2017-08-22 13:22:36 LOCL            10 /,
  );
});

test('banners: "=" rules as long as the header', () => {
  assert.equal(MEASUREMENTS_BANNER.split('MTxRx').length, 2);
  assert.match(STATISTICS_BANNER, /Std dev'n Est offset  Offset sd  Diff freq   Est skew  Stress  Ns  Bs  Nr  Asym$/);
  assert.match(TRACKING_BANNER, /Offset L Co  Offset sd Rem\. corr\. Root delay Root disp\. Max\. error$/);
  const b = formatBanner(TRACKING_BANNER).split('\n');
  assert.equal(b[0], '='.repeat(TRACKING_BANNER.length));
  assert.equal(b[1], TRACKING_BANNER);
  assert.equal(b[2], b[0]);
});

test('LogFile: banner every N lines, reopen after rotation (cyclelogs)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rb-log-'));
  try {
    const lf = new LogFile(dir, 'tracking', 'HDR', 2);
    lf.write('a');
    lf.write('b');
    lf.write('c');
    const p = path.join(dir, 'tracking.log');
    assert.equal(fs.readFileSync(p, 'utf8'), '===\nHDR\n===\na\nb\n===\nHDR\n===\nc\n');
    assert.equal(fs.statSync(p).mode & 0o777 & ~0o022, 0o644 & ~0o022);
    fs.renameSync(p, p + '.1'); // logrotate
    lf.write('d'); // still the old (renamed) file until cycled
    assert.match(fs.readFileSync(p + '.1', 'utf8'), /c\nd\n$/);
    assert.equal(fs.existsSync(p), false);
    lf.cycle();
    lf.write('e');
    assert.equal(fs.readFileSync(p, 'utf8'), '===\nHDR\n===\ne\n');
    lf.close();
    const nb = new LogFile(dir, 'm', 'X', 0);
    nb.write('1');
    nb.close();
    assert.equal(fs.readFileSync(path.join(dir, 'm.log'), 'utf8'), '1\n');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
