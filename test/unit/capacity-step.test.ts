/**
 * The pure parts of the capacity benchmark runner (bench/capacity): rate stepping and bisection
 * with a fake, deterministic measure function; /proc parsing; soak windows; the NTS requests it
 * prepares (answered by our own NTS server in memory) and the loadgen's JSON line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findMaxRate, judgeStep, type StepOutcome } from '../../bench/capacity/step.js';
import { parseProcStat, parseVmRssKb } from '../../bench/capacity/proc-stats.js';
import { analyzeSoak, type SoakSample } from '../../bench/capacity/soak.js';
import { buildNtsRequest, checkNtsAnswer, encodePacketsFile } from '../../bench/capacity/nts-prep.js';
import { parseLoadgenOutput } from '../../bench/capacity/loadgen.js';
import { summaryTable, type StepRecord } from '../../bench/capacity/report.js';
import { aeadById } from '../../src/nts/aead.js';
import { ServerCookieKeys } from '../../src/nts/cookies.js';
import { NtsServerAuthenticator } from '../../src/nts/ntp-server.js';
import { NtpServer } from '../../src/ntp/server.js';
import { CLIENT_EP, SYNCED, T0, seededBytes } from '../support/nts-pair.js';

/** A server that answers everything up to `capacity` req/s and loses 1 % above. */
function fakeServer(capacity: number, opts: { generatorMax?: number } = {}) {
  const asked: number[] = [];
  const measure = async (rate: number): Promise<StepOutcome> => {
    asked.push(rate);
    const achieved = Math.min(rate, opts.generatorMax ?? Infinity);
    return { rate, sent: achieved * 5, lossRatio: rate > capacity ? 0.01 : 0, achievedRate: achieved, kod: 0 };
  };
  return { asked, measure };
}

test('steps up by the factor until loss, then bisects twice between last good and first bad', async () => {
  const f = fakeServer(100_000);
  const r = await findMaxRate(f.measure, { start: 20000, factor: 1.3, max: 2_000_000 });
  // 20000 ×1.3 rounded each time; 125498 loses; bisections 111018 (loses), 103778 (loses).
  assert.deepEqual(f.asked, [20000, 26000, 33800, 43940, 57122, 74259, 96537, 125498, 111018, 103778]);
  assert.equal(r.maxRate, 96537);
  assert.equal(r.best?.rate, 96537);
  assert.equal(r.limit, 'loss');
  assert.deepEqual(
    r.steps.map((s) => s.verdict),
    ['ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'loss', 'loss', 'loss'],
  );
});

test('a good bisection point moves the lower bound up', async () => {
  const f = fakeServer(115_000);
  const r = await findMaxRate(f.measure, { start: 20000, factor: 1.3, max: 2_000_000 });
  // 111018 is good, then (111018 + 125498) / 2 = 118258 loses.
  assert.deepEqual(f.asked.slice(-3), [125498, 111018, 118258]);
  assert.equal(r.maxRate, 111018);
});

test('stepping down when the first step already loses', async () => {
  const f = fakeServer(9000);
  const r = await findMaxRate(f.measure, { start: 20000, factor: 2, max: 2_000_000 });
  // 20000 bad, 10000 bad, 5000 good; bisect 7500 good, 8750 good.
  assert.deepEqual(f.asked, [20000, 10000, 5000, 7500, 8750]);
  assert.equal(r.maxRate, 8750);
  assert.equal(r.limit, 'loss');
});

test('no loss up to --max: stops there without bisecting', async () => {
  const f = fakeServer(1e9);
  const r = await findMaxRate(f.measure, { start: 1000, factor: 2, max: 5000 });
  assert.deepEqual(f.asked, [1000, 2000, 4000]);
  assert.equal(r.maxRate, 4000);
  assert.equal(r.limit, 'max');
});

test('nothing loss-free down to the minimum rate', async () => {
  const f = fakeServer(10);
  const r = await findMaxRate(f.measure, { start: 1000, factor: 2, max: 5000, min: 200 });
  assert.deepEqual(f.asked, [1000, 500, 250]);
  assert.equal(r.maxRate, null);
  assert.equal(r.best, null);
  assert.equal(r.limit, 'loss');
});

test('a generator that cannot reach the rate is a "short" step, not a loss-free one', async () => {
  const f = fakeServer(1e9, { generatorMax: 50_000 });
  const r = await findMaxRate(f.measure, { start: 20000, factor: 2, max: 1e6 });
  assert.equal(r.limit, 'short');
  assert.ok(r.maxRate !== null && r.maxRate <= 50_000 / 0.95);
  assert.ok(r.steps.some((s) => s.verdict === 'short'));
});

test('judgeStep: the 0.1 % loss limit is strict, KoDs count as refusals', async () => {
  const base = { rate: 1000, sent: 10000, achievedRate: 1000, kod: 0 };
  assert.equal(judgeStep({ ...base, lossRatio: 0.00099 }), 'ok');
  assert.equal(judgeStep({ ...base, lossRatio: 0.001 }), 'loss');
  assert.equal(judgeStep({ ...base, lossRatio: NaN }), 'loss');
  assert.equal(judgeStep({ ...base, lossRatio: 0, kod: 10 }), 'loss');
  assert.equal(judgeStep({ ...base, lossRatio: 0, achievedRate: 940 }), 'short');
  // Loss caused by the generator's own full receive queues is a generator limit, not loss-free.
  assert.equal(judgeStep({ ...base, lossRatio: 0.01, clientDrops: 100 }), 'short');
  assert.equal(judgeStep({ ...base, lossRatio: 0.01, clientDrops: 5 }), 'loss');
  await assert.rejects(
    findMaxRate(async () => ({ ...base, lossRatio: 0 }), { start: 10, factor: 1, max: 20 }),
    /factor/,
  );
});

test('parseProcStat: utime and stime after a command name with spaces and parentheses', () => {
  const line =
    '4242 (node (worker) x) S 1 4242 4242 0 -1 4194560 12345 0 7 0 1503 271 0 0 20 0 11 0 987654 ' +
    '1234567890 23456 18446744073709551615 1 1 0 0 0 0 0 16781312 134234626 0 0 0 17 1 0 0 0 0 0\n';
  assert.deepEqual(parseProcStat(line), { user: 1503, system: 271 });
  assert.throws(() => parseProcStat('4242 node S 1'), /not a \/proc/);
  assert.throws(() => parseProcStat('4242 (x) S 1 2 3'), /utime/);
});

test('parseVmRssKb reads VmRSS from /proc/PID/status', () => {
  const status = 'Name:\tchronyd\nVmPeak:\t   9000 kB\nVmRSS:\t    3512 kB\nRssAnon:\t 1000 kB\n';
  assert.equal(parseVmRssKb(status), 3512);
  assert.equal(parseVmRssKb('Name:\tzombie\nState:\tZ (zombie)\n'), null);
});

test('soak analysis compares the first minute after the warm-up with the last', () => {
  // 600 s, samples every 10 s: CPU 50 % throughout, RSS 100000 kB growing 10 kB per sample.
  const samples: SoakSample[] = [];
  for (let i = 0; i <= 60; i++) samples.push({ t: i * 10, rssKb: 100_000 + i * 10, cpuS: i * 5 });
  const a = analyzeSoak(samples);
  assert.equal(a.window, 60);
  assert.equal(a.warmupS, 60);
  assert.equal(a.first.rssKb, 100_090); // samples 6..12 (60–120 s)
  assert.equal(a.last.rssKb, 100_570); // samples 54..60
  assert.ok(Math.abs(a.first.cpuPct! - 50) < 1e-9 && Math.abs(a.last.cpuPct! - 50) < 1e-9);
  assert.ok(a.stable, a.failures.join('; '));
  // CPU creeping up 20 % half-way: unstable.
  const creeping = samples.map((s) => ({ ...s, cpuS: s.t < 300 ? s.cpuS : 150 + (s.t - 300) * 0.6 }));
  const b = analyzeSoak(creeping);
  assert.ok(Math.abs(b.cpuGrowth! - 0.2) < 1e-9);
  assert.equal(b.stable, false);
  // RSS growing 6 %: unstable.
  const leaking = samples.map((s) => ({ ...s, rssKb: 100_000 + s.t * 10 }));
  assert.equal(analyzeSoak(leaking).stable, false);
  // A short soak: 20 s warm-up (a third), windows of a third of the rest.
  const short = analyzeSoak(samples.slice(0, 7));
  assert.equal(short.warmupS, 20);
  assert.equal(short.window, 13);
});

test('prepared NTS requests are answered and authenticated by an NTS server; the file format', () => {
  const rnd = seededBytes('capacity');
  const keys = new ServerCookieKeys(rnd);
  const server = new NtpServer({
    clientLogLimit: 100,
    access: () => true,
    random: () => 0.5,
    auth: [new NtsServerAuthenticator(keys, rnd)],
  });
  const aead = aeadById(15)!;
  const c2s = rnd(32);
  const s2c = rnd(32);
  const cookie = keys.seal({ aead: 15, c2s, s2c });
  const req = { ...buildNtsRequest(aead, c2s, cookie, rnd), aead, s2c };
  // Header 48 + UID 36 + cookie (4 + its length) + authenticator with an empty plaintext (4+4+16+16).
  assert.equal(req.bytes.length, 48 + 36 + 4 + cookie.length + 40);
  assert.equal(req.bytes[0], 0x23);
  const answer = server.handleRequest(req.bytes, CLIENT_EP, T0, T0 + 50_000n, SYNCED);
  assert.ok(answer, 'the server answered');
  assert.equal(checkNtsAnswer(req, answer.data), null);
  // Wrong S2C key, tampered answer, someone else's request: rejected.
  assert.match(checkNtsAnswer({ ...req, s2c: rnd(32) }, answer.data)!, /does not open/);
  const tampered = answer.data.slice();
  tampered[answer.data.length - 1]! ^= 1;
  assert.match(checkNtsAnswer(req, tampered)!, /does not open|malformed/);
  const other = { ...buildNtsRequest(aead, c2s, cookie, rnd), aead, s2c };
  assert.match(checkNtsAnswer(other, answer.data)!, /origin/);

  const file = encodePacketsFile([req.bytes, Uint8Array.of(1, 2, 3, 4)]);
  assert.equal(file.length, 2 + req.bytes.length + 2 + 4);
  assert.equal((file[0]! << 8) | file[1]!, req.bytes.length);
  assert.deepEqual([...file.subarray(file.length - 6)], [0, 4, 1, 2, 3, 4]);
  assert.throws(() => encodePacketsFile([new Uint8Array(0)]), RangeError);
});

test('loadgen JSON line parsing and the summary table', () => {
  const line = JSON.stringify({
    rate: 50000,
    sent: 250000,
    received: 249990,
    lossRatio: 0.00004,
    achievedRate: 49998,
    rttP50Us: 31.5,
    rttP99Us: 120,
    kod: 0,
    bad: 0,
    xleave: { pairs: 40, errMeanUs: 1.2, errAbsP50Us: 1.1, errAbsP99Us: 3.4, errAbsMaxUs: 5.6 },
    cpuUserS: 0.5,
    cpuSysS: 1.5,
  });
  const r = parseLoadgenOutput(`loadgen: starting\n${line}\n`);
  assert.equal(r.achievedRate, 49998);
  assert.equal(r.xleave.errAbsP99Us, 3.4);
  assert.throws(() => parseLoadgenOutput('no json here\n'), /no JSON line/);
  assert.throws(() => parseLoadgenOutput('{"rate": 1}\n'), /lacks 'sent'/);
  // Nothing sent: lossRatio null, a failed step.
  const none = parseLoadgenOutput(line.replace('"lossRatio":0.00004', '"lossRatio":null') + '\n');
  assert.ok(Number.isNaN(none.lossRatio));
  assert.equal(judgeStep(none), 'loss');

  const rec = (rate: number): StepRecord => ({ ...r, rate, serverCpuPct: 80, loadgenCpuPct: 40, serverRssKb: 1 });
  const stepped = (maxRate: number, limit: 'loss' | 'max' = 'loss') => ({
    steps: [],
    maxRate,
    best: rec(maxRate),
    limit,
  });
  const table = summaryTable(
    [
      { server: 'chronyd', variant: '', stepped: stepped(40000) },
      { server: 'rubidiumd', variant: 'serverworkers 2', stepped: stepped(70000) },
    ],
    'NTP',
  );
  assert.match(table, /\| chronyd \| 40 000 \| 80\.0 \|/);
  assert.match(table, /\| rubidiumd \(serverworkers 2\) \| 70 000 \|/);
  assert.match(table, /1\.1 \/ 3\.4 \/ 5\.6/);
  assert.match(table, /\*\*1\.75×\*\* \(target ≥ 1\.5×: met\)/);
  const bounded = summaryTable(
    [
      { server: 'chronyd', variant: '', stepped: stepped(40000) },
      { server: 'rubidiumd', variant: '', stepped: stepped(50000, 'max') },
    ],
    'NTS',
  );
  assert.match(bounded, /\*\*1\.25×\*\* \(target ≥ 1×: met; inconclusive/);
  assert.match(bounded, /--max reached/);
});
