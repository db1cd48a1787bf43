import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  FilegenWriter,
  filegenGeneration,
  formatLoopstatsLine,
  formatMjdTime,
  formatPeerstatsLine,
  makeFilegenWriter,
  peerStatusWord,
} from '../../src/logs/ntpsec-stats.js';
import { NTPSEC_DIR, ntpsecEnv } from '../support/peers.js';

const at = (iso: string): bigint => BigInt(Date.parse(iso)) * 1_000_000n;
const S = 1_000_000_000n;

test('MJD time: day number and seconds past midnight with truncated milliseconds', () => {
  assert.equal(formatMjdTime(0n), '40587 0.000');
  assert.equal(formatMjdTime(at('2024-03-01T12:34:56Z') + 789_999_999n), '60370 45296.789');
  assert.equal(formatMjdTime(at('2017-01-01T00:00:00Z')), '57754 0.000'); // MJD of 2017-01-01
});

test('loopstats / peerstats lines in NTPsec format', () => {
  const t = at('2024-03-01T12:34:56Z') + 5_000_000n;
  assert.equal(
    formatLoopstatsLine({
      time: t,
      offset: -1.2345e-5,
      freqPpm: 12.3456789,
      jitter: 3.2e-6,
      wanderPpm: 0.0125,
      poll: 6,
    }),
    '60370 45296.005 -0.000012345 12.345679 0.000003200 0.012500 6',
  );
  assert.equal(
    formatPeerstatsLine({
      time: t,
      address: '192.0.2.1',
      status: 0x9614,
      offset: 2.5e-4,
      delay: 4.1e-4,
      dispersion: 1e-6,
      jitter: 3e-5,
    }),
    '60370 45296.005 192.0.2.1 9614 0.000250000 0.000410000 0.000001000 0.000030000',
  );
  // config + reach, sys.peer, one "reachable" event: ntpq's familiar 9614
  assert.equal(peerStatusWord('*', 0o377).toString(16), '9614');
  assert.equal(peerStatusWord('+', 1).toString(16), '9414');
  assert.equal(peerStatusWord('x', 1).toString(16), '9114');
  assert.equal(peerStatusWord('?', 0).toString(16), '8000');
});

test('filegen generation names as NTPsec', () => {
  const t = at('2024-03-01T12:00:00Z');
  assert.equal(filegenGeneration('day', t, 1, 0).suffix, '.20240301');
  assert.equal(filegenGeneration('month', t, 1, 0).suffix, '.202403');
  assert.equal(filegenGeneration('year', t, 1, 0).suffix, '.2024');
  assert.equal(filegenGeneration('week', t, 1, 0).suffix, '.2024w04'); // yday 60 % 7
  assert.equal(filegenGeneration('pid', t, 4321, 0).suffix, '.#4321');
  assert.equal(filegenGeneration('age', t, 1, 90000).suffix, '.a00086400');
  assert.equal(filegenGeneration('none', t, 1, 0).suffix, '');
  assert.notEqual(filegenGeneration('day', t, 1, 0).id, filegenGeneration('day', t + 86400n * S, 1, 0).id);
});

test('FilegenWriter: day files, the base-name link follows the current day, a plain file is saved', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rb-filegen-'));
  try {
    fs.writeFileSync(path.join(dir, 'loopstats'), 'old\n'); // a plain file in the way
    const w = new FilegenWriter({ dir, file: 'loopstats', type: 'day', pid: 77 });
    const d1 = at('2024-03-01T23:59:59Z');
    w.write(d1, 'a');
    assert.equal(fs.readFileSync(path.join(dir, 'loopstats.77C0'), 'utf8'), 'old\n');
    assert.equal(fs.readFileSync(path.join(dir, 'loopstats'), 'utf8'), 'a\n'); // the link
    w.write(d1 + 2n * S, 'b'); // next day: new file, link moved
    w.close();
    assert.equal(fs.readFileSync(path.join(dir, 'loopstats.20240301'), 'utf8'), 'a\n');
    assert.equal(fs.readFileSync(path.join(dir, 'loopstats.20240302'), 'utf8'), 'b\n');
    assert.equal(fs.readFileSync(path.join(dir, 'loopstats'), 'utf8'), 'b\n');
    assert.equal(fs.statSync(path.join(dir, 'loopstats.20240302')).nlink, 2);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('statistics/filegen configuration decides which files are written', () => {
  const base = { statsdir: '/tmp/x', statistics: [] as Array<'loopstats' | 'peerstats' | 'clockstats'>, filegen: {} };
  assert.equal(makeFilegenWriter(base, 'loopstats'), null);
  assert.equal(makeFilegenWriter({ ...base, statistics: ['loopstats'] }, 'loopstats')?.basePath, '/tmp/x/loopstats');
  const off = {
    ...base,
    statistics: ['peerstats' as const],
    filegen: { peerstats: { file: null, type: 'day' as const, enable: false } },
  };
  assert.equal(makeFilegenWriter(off, 'peerstats'), null);
  const named = { ...base, filegen: { peerstats: { file: 'peers', type: 'none' as const, enable: true } } };
  assert.equal(makeFilegenWriter(named, 'peerstats')?.basePath, '/tmp/x/peers');
});

const PY = `
import json, sys
from ntp.statfiles import NTPStats
s = NTPStats(sys.argv[1], starttime=int(sys.argv[2]), endtime=int(sys.argv[3]))
print(json.dumps({"loop": s.loopstats, "peer": s.peerstats, "peermap": sorted(s.peersplit().keys())}))
`;

const havePy = fs.existsSync(path.join(NTPSEC_DIR, 'usr/lib/python3/dist-packages/ntp/statfiles.py'));

test(
  "NTPsec's own reader (ntp.statfiles) loads our files and gives back our values",
  { skip: havePy ? false : 'NTPsec python package not installed' },
  () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rb-ntpstats-'));
    try {
      const nowS = BigInt(Math.floor(Date.now() / 1000)) - 3600n;
      const loops = [
        {
          time: nowS * S + 250_000_000n,
          offset: -1.2345e-5,
          freqPpm: -7.654321,
          jitter: 2.5e-6,
          wanderPpm: 0.0125,
          poll: 6,
        },
        { time: (nowS + 64n) * S, offset: 3.1e-6, freqPpm: -7.65, jitter: 2.4e-6, wanderPpm: 0.011, poll: 7 },
      ];
      const peers = [
        {
          time: nowS * S,
          address: '192.0.2.1',
          status: peerStatusWord('*', 0o377),
          offset: 2.5e-4,
          delay: 4.1e-4,
          dispersion: 1.5e-5,
          jitter: 3e-5,
        },
        {
          time: (nowS + 1n) * S,
          address: '2001:db8::1',
          status: peerStatusWord('+', 0o17),
          offset: -1e-4,
          delay: 9e-4,
          dispersion: 2e-5,
          jitter: 5e-5,
        },
      ];
      const lw = new FilegenWriter({ dir, file: 'loopstats', type: 'day' });
      const pw = new FilegenWriter({ dir, file: 'peerstats', type: 'day' });
      for (const l of loops) lw.write(l.time, formatLoopstatsLine(l));
      for (const p of peers) pw.write(p.time, formatPeerstatsLine(p));
      lw.close();
      pw.close();
      const out = execFileSync('python3', ['-c', PY, dir, String(nowS - 10n), String(nowS + 100n)], {
        env: ntpsecEnv(),
        encoding: 'utf8',
      });
      const r = JSON.parse(out) as {
        loop: Array<Array<string | number>>;
        peer: Array<Array<string | number>>;
        peermap: string[];
      };
      assert.equal(r.loop.length, 2);
      for (let i = 0; i < 2; i++) {
        const row = r.loop[i]!;
        const l = loops[i]!;
        assert.equal(row[0], Number(l.time / 1_000_000n), 'unix ms');
        assert.ok(Math.abs(Number(row[2]) - l.offset) < 1e-9);
        assert.ok(Math.abs(Number(row[3]) - l.freqPpm) < 1e-6);
        assert.ok(Math.abs(Number(row[4]) - l.jitter) < 1e-9);
        assert.ok(Math.abs(Number(row[5]) - l.wanderPpm) < 1e-6);
        assert.equal(Number(row[6]), l.poll);
      }
      assert.equal(r.peer.length, 2);
      assert.deepEqual(r.peermap, ['192.0.2.1', '2001:db8::1']);
      const p0 = r.peer[0]!;
      assert.equal(p0[2], '192.0.2.1');
      assert.equal(p0[3], '9614');
      assert.ok(Math.abs(Number(p0[4]) - 2.5e-4) < 1e-9 && Math.abs(Number(p0[5]) - 4.1e-4) < 1e-9);
      assert.ok(Math.abs(Number(p0[6]) - 1.5e-5) < 1e-9 && Math.abs(Number(p0[7]) - 3e-5) < 1e-9);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);
