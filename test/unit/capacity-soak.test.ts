/**
 * The capacity soak's parsing (/proc/stat, /proc/net/snmp, /proc/net/udp) and its analysis: the
 * per-interval rows, the warm-up (fixed, or until the client table is full), the slope verdict.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  parseProcStatComm,
  parseRssAnonKb,
  parseSchedstatSeconds,
  parseSystemCpu,
  parseUdpSnmp,
  parseUdpSockets,
} from '../../bench/capacity/proc-stats.js';
import {
  CPU_SLOPE_LIMIT,
  analyzeSoak,
  fitLine,
  soakIntervals,
  type SoakSample,
} from '../../bench/capacity/soak-analysis.js';

const near = (a: number | null | undefined, b: number, eps = 1e-6): void =>
  assert.ok(a !== null && a !== undefined && Math.abs(a - b) <= eps, `${a} ≉ ${b}`);

test('parseSystemCpu: busy, idle, steal and softirq seconds from the cpu line', () => {
  const stat = 'cpu  1000 100 300 5000 50 10 40 7 0 0\ncpu0 500 50 150 2500 25 5 20 3 0 0\nintr 1 2\n';
  const c = parseSystemCpu(stat, 100);
  assert.equal(c.cores, 1);
  near(c.busyS, (1000 + 100 + 300 + 10 + 40) / 100);
  near(c.idleS, 50.5);
  near(c.stealS, 0.07);
  near(c.softirqS, 0.4);
  assert.throws(() => parseSystemCpu('intr 1 2\n', 100), /no cpu line/);
});

test('parseUdpSnmp reads the Udp counters by name', () => {
  const snmp =
    'Ip: Forwarding DefaultTTL\nIp: 1 64\n' +
    'Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors\n' +
    'Udp: 7981436 397 3060 7988435 3059 0 0 0 0\n' +
    'UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors\n' +
    'UdpLite: 0 0 0 0 0 0 0 0 0\n';
  assert.deepEqual(parseUdpSnmp(snmp), {
    inDatagrams: 7981436,
    outDatagrams: 7988435,
    rcvbufErrors: 3059,
    inErrors: 3060,
  });
  assert.throws(() => parseUdpSnmp('Ip: 1\n'), /no Udp/);
});

test('parseUdpSockets sums queue bytes and drops of the sockets on one port', () => {
  const head =
    '   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n';
  // 11123 = 0x2B73: two SO_REUSEPORT sockets; one other socket on 123 (0x007B).
  const table =
    head +
    '  1: 00000000:2B73 00000000:0000 07 00000000:00001200 00:00000000 00000000     0        0 1001 2 0000000000000000 17\n' +
    '  2: 00000000:2B73 00000000:0000 07 00000000:00000300 00:00000000 00000000     0        0 1002 2 0000000000000000 3\n' +
    '  3: 00000000:007B 00000000:0000 07 00000000:0000FFFF 00:00000000 00000000     0        0 1003 2 0000000000000000 99\n';
  assert.deepEqual(parseUdpSockets(table, 11123), { sockets: 2, rxQueueBytes: 0x1200 + 0x300, drops: 20 });
  assert.deepEqual(parseUdpSockets(head, 11123), { sockets: 0, rxQueueBytes: 0, drops: 0 });
});

test('parseSchedstatSeconds: the run time in ns is the first field', () => {
  near(parseSchedstatSeconds('153445979 37052044 1757\n'), 0.153445979, 1e-12);
  assert.throws(() => parseSchedstatSeconds('x y z'), /not a schedstat/);
});

test('parseProcStatComm and parseRssAnonKb', () => {
  assert.equal(parseProcStatComm('42 (ksoftirqd/1) S 2 0 0'), 'ksoftirqd/1');
  assert.equal(parseProcStatComm('42 (a (b) c) S 2'), 'a (b) c');
  assert.equal(parseRssAnonKb('VmRSS:\t 3512 kB\nRssAnon:\t    1000 kB\n'), 1000);
  assert.equal(parseRssAnonKb('VmRSS:\t 3512 kB\n'), null);
});

test('fitLine: slope, its standard error and % of the mean per minute', () => {
  const xs = [0, 10, 20, 30, 40];
  const exact = fitLine(
    xs,
    xs.map((x) => 100 + x / 60), // +1 per minute around a mean of ~100.33
  )!;
  near(exact.slope, 1 / 60);
  near(exact.slopeSe, 0);
  near(exact.pctPerMin, (1 / exact.mean) * 100);
  // Alternating noise without a trend: a small slope with a wide error.
  const noisy = fitLine([0, 10, 20, 30, 40, 50], [80, 100, 80, 100, 80, 100])!;
  assert.ok(noisy.slopeSe > 0);
  assert.equal(fitLine([1, 2], [1, 2]), null);
  assert.equal(fitLine([5, 5, 5], [1, 2, 3]), null);
});

/** A 600-s soak sampled every 10 s; `cpuPct(t)` is the server's CPU over the interval ending at t. */
function soak(cpuPct: (t: number) => number, extra: (t: number) => Partial<SoakSample> = () => ({})): SoakSample[] {
  const out: SoakSample[] = [];
  let cpuS = 0;
  for (let t = 0; t <= 600; t += 10) {
    if (t > 0) cpuS += (cpuPct(t) / 100) * 10;
    out.push({ t, rssKb: 80_000, cpuS, ...extra(t) });
  }
  return out;
}

test('soak verdict: a transient while the client table fills is warm-up; steady growth after it fails', () => {
  // The table grows to 4096 rows by 150 s; CPU rises from 60 to 80 % while it does, then stays.
  const server = (t: number): Partial<SoakSample> => ({
    server: {
      t,
      received: 0,
      dropped: 0,
      clientLogActive: Math.min(4096, Math.round((4096 * t) / 150)),
      clientLogEvicted: 0,
    },
  });
  const filling = soak((t) => (t <= 150 ? 60 + (20 * t) / 150 : 80), server);
  const a = analyzeSoak(filling);
  assert.equal(a.tableFullAt, 150);
  assert.equal(a.tableSize, 4096);
  assert.equal(a.warmupS, 150);
  assert.match(a.warmupReason, /client table was full \(4096 at 150 s\)/);
  near(a.first.cpuPct, 80);
  near(a.cpuFit!.slope, 0);
  assert.ok(a.stable, a.failures.join('; '));
  // The same without table counters: 60 s warm-up, so the rise at 60–150 s is judged and fails.
  const b = analyzeSoak(soak((t) => (t <= 150 ? 60 + (20 * t) / 150 : 80)));
  assert.equal(b.warmupS, 60);
  assert.equal(b.stable, false);
  // CPU growing steadily by 2 % of its start per minute: the slope test fails.
  const creeping = analyzeSoak(soak((t) => 80 * (1 + (0.02 * t) / 60)));
  assert.ok(creeping.cpuFit!.pctPerMin > CPU_SLOPE_LIMIT);
  assert.ok(creeping.failures.some((f) => /CPU \(CPU %\) slope/.test(f)));
  // A table still growing at the end: the warm-up stops at half the soak.
  const neverFull = analyzeSoak(
    soak(
      () => 80,
      (t) => ({ server: { t, received: 0, dropped: 0, clientLogActive: t, clientLogEvicted: 0 } }),
    ),
  );
  assert.equal(neverFull.warmupS, 300);
  assert.match(neverFull.warmupReason, /capped at half/);
});

test('soak intervals: CPU split by thread, the rest of the machine, loss and answered rate', () => {
  const mk = (t: number, k: number): SoakSample => ({
    t,
    rssKb: 80_000,
    rssAnonKb: 40_000,
    // Main 1 %, two workers 45 % and 35 %, a GC helper 2 % (+ a lazy thread that never runs).
    cpuS: k * (0.1 + 4.5 + 3.5 + 0.2),
    threadCpuS: { '100': k * 0.1, '101': k * 3.5, '102': k * 4.5, '103': k * 0.2, '104': 0 },
    loadgenCpuS: k * 6,
    softirqdCpuS: k * 0.5,
    // Tick-sampled busy says 160 %, but 2 cores minus the measured idle and steal is 159 %.
    system: { cores: 2, busyS: k * 16, idleS: k * 4, stealS: k * 0.1, softirqS: k },
    udp: { inDatagrams: 0, outDatagrams: 0, rcvbufErrors: k * 100, inErrors: k * 100 },
    port: { sockets: 2, rxQueueBytes: 2048 * k, drops: k * 100 },
    server: { t, received: k * 999_900, dropped: 0, clientLogActive: 36, clientLogEvicted: 0 },
  });
  const rows = soakIntervals([mk(0, 0), mk(10, 1), mk(20, 2)], { rate: 100_000, mainTid: 100, workerThreads: 2 });
  assert.equal(rows.length, 2);
  const r = rows[1]!;
  assert.equal(r.t, 20);
  near(r.serverCpuPct, 83);
  near(r.mainPct, 1);
  assert.deepEqual(r.workerPcts, [35, 45]);
  near(r.restPct, 2);
  near(r.loadgenCpuPct, 60);
  near(r.softirqdPct, 5);
  near(r.softirqPct, 10);
  near(r.otherPct, 159 - 83 - 60 - 5);
  near(r.idlePct, 40);
  near(r.stealPct, 1);
  near(r.lossRatio, 100 / (999_900 + 100));
  near(r.answeredRate, 99_990);
  near(r.rxQueueKb, 4);
  near(r.cpuUsPerRequest, (8.3 * 1e6) / 999_900);
  assert.equal(r.clientLog, 36);
  assert.equal(r.evicted, 0);
  // Without the extra counters (chronyd, or an older JSON), the rows still have CPU.
  const bare = soakIntervals(
    [
      { t: 0, rssKb: 1, cpuS: 0 },
      { t: 10, rssKb: 1, cpuS: 5 },
    ],
    { rate: 1000 },
  );
  near(bare[0]!.serverCpuPct, 50);
  assert.equal(bare[0]!.loadgenCpuPct, null);
  assert.equal(bare[0]!.lossRatio, null);
  const dropsOnly = soakIntervals(
    [
      { t: 0, rssKb: 1, cpuS: 0, udp: { inDatagrams: 0, outDatagrams: 0, rcvbufErrors: 0, inErrors: 0 } },
      { t: 10, rssKb: 1, cpuS: 5, udp: { inDatagrams: 0, outDatagrams: 0, rcvbufErrors: 50, inErrors: 50 } },
    ],
    { rate: 1000 },
  );
  near(dropsOnly[0]!.lossRatio, 50 / 10_000);
  near(bare[0]!.cpuUsPerRequest, 500);
});

test('soak verdict on CPU per answered request: fewer answers are not growth, dearer ones are', () => {
  // 100k req/s offered, 3 µs each; from 300 s another job takes the cores and the server answers
  // (and spends) 30 % less: its CPU % falls and comes back, the cost per request does not change.
  const rate = 100_000;
  const answered = (t: number): number => (t > 300 && t <= 400 ? 0.7 : 1) * rate;
  const build = (usPerRequest: (t: number) => number): SoakSample[] => {
    const out: SoakSample[] = [];
    let cpuS = 0;
    let received = 0;
    for (let t = 0; t <= 600; t += 10) {
      if (t > 0) {
        received += answered(t) * 10;
        cpuS += answered(t) * 10 * usPerRequest(t) * 1e-6;
      }
      out.push({
        t,
        rssKb: 80_000,
        cpuS,
        server: { t, received, dropped: 0, clientLogActive: 36, clientLogEvicted: 0 },
      });
    }
    return out;
  };
  const steady = analyzeSoak(
    build(() => 3),
    rate,
  );
  assert.equal(steady.cpuBasis, 'µs/request');
  near(steady.perRequestFit!.mean, 3);
  near(steady.perRequestFit!.slope, 0);
  assert.ok(steady.stable, steady.failures.join('; '));
  // Each request costing 2 % more per minute: fails on the per-request slope.
  const dearer = analyzeSoak(
    build((t) => 3 * (1 + (0.02 * t) / 60)),
    rate,
  );
  assert.ok(dearer.perRequestFit!.pctPerMin > CPU_SLOPE_LIMIT);
  assert.ok(dearer.failures.some((f) => /µs\/request\) slope/.test(f)));
});
