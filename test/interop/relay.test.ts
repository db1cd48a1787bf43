/**
 * The userspace UDP delay relay of the accuracy benchmark (bench/accuracy/relay.c), measured on a
 * real veth link: a client in one namespace talks through the relay (in the other namespace) to a
 * UDP echo server behind it, and checks the delays, jitter, loss and outages it sees against the
 * relay's configuration and its own statistics. Skipped when not root or without a C compiler.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import {
  cleanupLeftovers,
  createNetnsPair,
  isRoot,
  makeTempDir,
  removeTempDir,
  run,
  runInNs,
  startInNs,
  unwind,
  type ManagedProcess,
  type NetnsPair,
} from '../support/netns.js';
import {
  buildRelay,
  parseRelayStats,
  relayArgs,
  type RelayDirectionStats,
  type RelaySpec,
  type RelayStats,
} from '../../bench/accuracy/relay.js';

function haveCc(): boolean {
  try {
    execFileSync('cc', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const skip = !isRoot()
  ? 'the relay test needs root (network namespaces, veth)'
  : !haveCc()
    ? 'the relay test needs a C compiler (cc)'
    : false;

const ECHO_PORT = 7000;
/**
 * The echo server and the client run as SCHED_FIFO 1 (the relay as 2, above them), pinned to
 * different CPUs: on this 2-core VM other test runs load the CPUs, a client or echo that waits
 * for a CPU adds milliseconds, and one whose idle vCPU must be woken adds 0.1-0.3 ms, to an RTT
 * that the relay is not responsible for.
 */
const TWO_CPUS = availableParallelism() >= 2;
const onCpu = (cpu: number, argv: string[]): string[] =>
  TWO_CPUS ? ['taskset', '-c', String(cpu), 'chrt', '-f', '1', ...argv] : ['chrt', '-f', '1', ...argv];
const MAGIC = 0x52454c59;

/** UDP echo server on 127.0.0.1:argv[1] (C: a Node echo adds ~0.1 ms and GC pauses to RTTs). */
const ECHO_C = `
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
int main(int argc, char **argv) {
  if (argc != 2) return 2;
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[1]))};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0) { perror("echo"); return 1; }
  puts("echo ready");
  fflush(stdout);
  static char buf[65536];
  for (;;) {
    struct sockaddr_in src;
    socklen_t sl = sizeof src;
    ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&src, &sl);
    if (n >= 0) sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&src, sl);
  }
}
`;

/**
 * Measuring client. Config (JSON in argv[2]): host, port, count, mode 'pingpong' (one packet in
 * flight, next sent on reply or after waitMs) or 'stream' (one every intervalMs), waitMs (how long
 * to wait for replies), oversize (datagrams of 3000 bytes sent first, not counted), warmup (small
 * datagrams sent 20 ms apart before the measurement, to settle ARP and JIT; not counted), spin
 * (pingpong: busy-poll while waiting for a reply).
 * Prints {rtt: (seconds | null)[], sentAt: Unix ms[], warmupReplies}.
 */
const CLIENT_JS = `
import dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
const cfg = JSON.parse(process.argv[2]);
const sock = dgram.createSocket('udp4');
const sendT = new Array(cfg.count);
const sentAt = new Array(cfg.count).fill(null);
const rtt = new Array(cfg.count).fill(null);
let waiter = null;
sock.on('message', (msg) => {
  const now = process.hrtime.bigint();
  if (msg.length < 8 || msg.readUInt32BE(4) !== ${MAGIC}) return;
  const seq = msg.readUInt32BE(0);
  if (seq >= cfg.count || sendT[seq] === undefined || rtt[seq] !== null) return;
  rtt[seq] = Number(now - sendT[seq]) / 1e9;
  if (waiter && waiter.seq === seq) waiter.resolve();
});
await new Promise((r) => sock.bind(0, r));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const send = (seq) => {
  const b = Buffer.alloc(48);
  b.writeUInt32BE(seq, 0);
  b.writeUInt32BE(${MAGIC}, 4);
  sentAt[seq] = performance.timeOrigin + performance.now();
  sendT[seq] = process.hrtime.bigint();
  sock.send(b, cfg.port, cfg.host);
};
for (let i = 0; i < (cfg.oversize ?? 0); i++) sock.send(Buffer.alloc(3000, 0xaa), cfg.port, cfg.host);
let warmupReplies = 0;
sock.on('message', (msg) => { if (msg.length === 8 && msg.readUInt32BE(4) === ${MAGIC} + 1) warmupReplies++; });
for (let i = 0; i < (cfg.warmup ?? 0); i++) {
  const b = Buffer.alloc(8);
  b.writeUInt32BE(i, 0);
  b.writeUInt32BE(${MAGIC} + 1, 4);
  sock.send(b, cfg.port, cfg.host);
  await sleep(20);
}
if (cfg.mode === 'pingpong') {
  for (let seq = 0; seq < cfg.count; seq++) {
    let timer;
    const replied = new Promise((resolve) => { waiter = { seq, resolve }; });
    send(seq);
    if (cfg.spin) {
      // Busy-poll the event loop until the reply: a vCPU that went idle wakes up 0.1-0.3 ms late.
      let done = false;
      replied.then(() => { done = true; });
      const until = performance.now() + cfg.waitMs;
      while (!done && performance.now() < until) await new Promise((r) => setImmediate(r));
    } else {
      await Promise.race([replied, new Promise((r) => { timer = setTimeout(r, cfg.waitMs); })]);
      clearTimeout(timer);
    }
  }
} else {
  const t0 = performance.now();
  for (let seq = 0; seq < cfg.count; seq++) {
    const wait = t0 + seq * cfg.intervalMs - performance.now();
    if (wait > 0) await sleep(wait);
    send(seq);
  }
  await sleep(cfg.waitMs);
}
sock.close();
console.log(JSON.stringify({ rtt, sentAt, warmupReplies }));
`;

interface ClientConfig {
  count: number;
  mode: 'pingpong' | 'stream';
  intervalMs?: number;
  waitMs: number;
  oversize?: number;
  warmup?: number;
  spin?: boolean;
}

interface ClientResult {
  rtt: Array<number | null>;
  sentAt: number[];
  warmupReplies: number;
}

const us = (s: number): string => `${(s * 1e6).toFixed(1)} µs`;
const ms = (s: number): string => `${(s * 1e3).toFixed(3)} ms`;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

function replies(r: ClientResult): number[] {
  return r.rtt.filter((x): x is number => x !== null);
}

/**
 * Prints the relay's lateness and asserts it in every direction that forwarded: the median must
 * stay under 200 µs (the relay holds packets to its schedule); the tail only under 2 ms, because a
 * loaded CI host can delay a real-time thread by a few hundred µs (CI saw p99 247 µs once). The
 * tail is a benchmark figure, printed here and reported by bench/accuracy.
 */
function checkLateness(label: string, stats: RelayStats): void {
  for (const dir of ['up', 'down'] as const) {
    const d: RelayDirectionStats = stats[dir];
    if (d.forwarded === 0) continue;
    const l = d.lateness;
    console.log(
      `# ${label} ${dir}: forwarded ${d.forwarded}, meanDelay ${ms(d.meanDelay)}, lateness p50 ${us(l.p50)}` +
        ` p99 ${us(l.p99)} max ${us(l.max)} (rt priority ${stats.rtPriority})`,
    );
    assert.ok(
      l.p50 >= 0 && l.p50 <= l.p99 && l.p99 <= l.max,
      `${label} ${dir}: lateness ordering ${JSON.stringify(l)}`,
    );
    assert.ok(l.p50 < 200e-6, `${label} ${dir}: lateness p50 ${us(l.p50)} >= 200 µs`);
    assert.ok(l.p99 < 2e-3, `${label} ${dir}: lateness p99 ${us(l.p99)} >= 2 ms`);
    // Per packet: sendto called <= kernel TX stamp <= sendto returned, so the means are ordered
    // the same way. veth and loopback both stamp at xmit: every forwarded packet has a TX stamp.
    const { release: r, wire: w } = d;
    console.log(
      `# ${label} ${dir}: mean lateness ${us(l.mean)}, release ${us(r.mean)} (p99 ${us(r.p99)}),` +
        ` wire ${us(w.mean)} (p99 ${us(w.p99)})`,
    );
    assert.equal(l.count, d.forwarded, `${label} ${dir}: lateness count`);
    assert.equal(r.count, d.forwarded, `${label} ${dir}: release count`);
    assert.equal(w.count, d.forwarded, `${label} ${dir}: every forwarded packet has a TX timestamp`);
    const tol = 1e-8; // the JSON prints 9 significant digits
    assert.ok(
      r.mean <= w.mean + tol && w.mean <= l.mean + tol && r.max <= l.max + tol,
      `${label} ${dir}: release <= wire <= lateness: ${JSON.stringify({ r, w, l })}`,
    );
    assert.ok(r.p50 < 100e-6, `${label} ${dir}: release p50 ${us(r.p50)} >= 100 µs`);
    if (stats.compensation.enabled && d.forwarded >= 5) {
      // The relay has learnt this direction's sendto→xmit cost (a few µs; capped at 100 µs).
      const c = stats.compensation[dir];
      assert.ok(c > 0 && c <= 100e-6, `${label} ${dir}: compensation ${us(c)} not in (0, 100] µs`);
    }
  }
}

describe('userspace UDP delay relay (bench/accuracy/relay.c)', { skip }, () => {
  const cleanups: Array<() => Promise<void>> = [];
  let relayBin = '';
  let pair: NetnsPair;
  let dir = '';
  let clientScript = '';
  let nextPort = 7001;

  before(async () => {
    const removed = await cleanupLeftovers();
    if (removed.length) console.log(`# removed leftovers: ${removed.join(', ')}`);
    relayBin = buildRelay();
    dir = makeTempDir('relay');
    cleanups.push(async () => removeTempDir(dir));
    writeFileSync(join(dir, 'echo.c'), ECHO_C);
    execFileSync('cc', ['-O2', '-o', join(dir, 'echo'), join(dir, 'echo.c')], { stdio: ['ignore', 'pipe', 'pipe'] });
    clientScript = join(dir, 'client.mjs');
    writeFileSync(clientScript, CLIENT_JS);
    pair = await createNetnsPair({ tag: 'relay', subnet: 150 });
    cleanups.push(() => pair.destroy());
    const echoArgv = onCpu(0, [join(dir, 'echo'), String(ECHO_PORT)]);
    const echo = await startInNs(pair.server, echoArgv[0]!, echoArgv.slice(1), {
      name: 'echo',
      readyPattern: /echo ready/,
    });
    cleanups.push(() => echo.stop());
  });

  after(async () => {
    await unwind(cleanups);
  });

  /** Runs a relay (server namespace) for the client (client namespace); returns both results. */
  async function withRelay(
    label: string,
    spec: Omit<RelaySpec, 'pairs' | 'statsFile'>,
    client: ClientConfig,
  ): Promise<{ result: ClientResult; stats: RelayStats }> {
    const port = nextPort++;
    const statsFile = join(dir, `stats-${label}.json`);
    const args = relayArgs({
      rtPriority: 2,
      ...spec,
      pairs: [{ listen: { address: pair.serverAddr, port }, upstream: { address: '127.0.0.1', port: ECHO_PORT } }],
      statsFile,
    });
    const relay: ManagedProcess = await startInNs(pair.server, relayBin, args, {
      name: `relay-${label}`,
      readyPattern: /relay ready/,
      readyTimeoutMs: 5000,
    });
    try {
      const clientArgv = onCpu(1, [
        process.execPath,
        clientScript,
        JSON.stringify({ host: pair.serverAddr, port, ...client }),
      ]);
      const r = await runInNs(pair.client, clientArgv[0]!, clientArgv.slice(1), { timeoutMs: 20_000 });
      const result = JSON.parse(r.stdout) as ClientResult;
      relay.signal('SIGTERM');
      const exit = await relay.waitForExit(5000);
      assert.deepEqual(exit, { code: 0, signal: null }, `relay exit:\n${relay.tail()}`);
      const stats = JSON.parse(readFileSync(statsFile, 'utf8')) as RelayStats;
      assert.deepEqual(parseRelayStats(relay.output()), stats, 'stdout and --stats-file agree');
      assert.equal(relay.output().match(/relay ready/g)?.length, 1);
      assert.equal(stats.pairs, 1);
      assert.equal(stats.pending, 0);
      return { result, stats };
    } finally {
      await relay.stop();
    }
  }

  it('builds argument lists from typed specs', () => {
    assert.deepEqual(
      relayArgs({
        pairs: [
          { listen: { address: '10.0.0.1', port: 123 }, upstream: { address: '10.0.1.1', port: 123 } },
          { listen: { address: '::1', port: 1123 }, upstream: { address: 'fd00::2', port: 123 } },
        ],
        up: { base: 0.002, jitter: { kind: 'exp', mean: 0.0005 }, loss: 0.1 },
        down: { jitter: { kind: 'normal', sd: 1e-7 } },
        seed: 42n,
        outage: { period: 120, down: 60, phase: 5 },
        statsFile: '/tmp/s.json',
        rtPriority: 0,
        compensate: false,
      }),
      [
        '--pair',
        '10.0.0.1:123=10.0.1.1:123',
        '--pair',
        '[::1]:1123=[fd00::2]:123',
        '--up',
        'base=0.002,jitter=exp:0.0005,loss=0.1',
        '--down',
        'base=0,jitter=normal:1e-7,loss=0',
        '--seed',
        '42',
        '--outage',
        '120:60:5',
        '--stats-file',
        '/tmp/s.json',
        '--rt',
        '0',
        '--no-compensate',
      ],
    );
    const minimal = {
      pairs: [{ listen: { address: '10.0.0.1', port: 1 }, upstream: { address: '10.0.0.2', port: 2 } }],
    };
    assert.ok(!relayArgs({ ...minimal, compensate: true }).includes('--no-compensate'), 'compensation is the default');
    assert.throws(() => relayArgs({ pairs: [] }), /pair/);
    assert.throws(() => relayArgs({ pairs: [], up: { loss: 2 } }), RangeError);
    const p = { listen: { address: '10.0.0.1', port: 1 }, upstream: { address: '10.0.0.2', port: 2 } };
    assert.throws(() => relayArgs({ pairs: [p], up: { loss: 1.5 } }), /loss/);
    assert.throws(() => relayArgs({ pairs: [p], outage: { period: 1, down: 2 } }), /outage/);
  });

  it('rejects garbage arguments with exit status 2, naming the argument', async () => {
    const ok = '10.77.150.1:9=127.0.0.1:7000';
    const cases: Array<[string[], RegExp]> = [
      [[], /--pair/],
      [['--bogus'], /--bogus/],
      [['--pair'], /--pair/],
      [['--pair', 'nonsense'], /--pair 'nonsense'/],
      [['--pair', '10.0.0.1:70000=127.0.0.1:1'], /--pair/],
      [['--pair', ok, '--up', 'base=-1'], /--up 'base=-1'/],
      [['--pair', ok, '--down', 'jitter=gauss:1'], /--down 'jitter=gauss:1'/],
      [['--pair', ok, '--down', 'loss=0.5,'], /--down/],
      [['--pair', ok, '--outage', '1:2'], /--outage '1:2'/],
      [['--pair', ok, '--outage', 'x'], /--outage/],
      [['--pair', ok, '--seed', 'abc'], /--seed 'abc'/],
      [['--pair', ok, '--rt', '100'], /--rt/],
      [['--pair', ok, '--up', 'base=1', '--up', 'base=2'], /--up given twice/],
    ];
    for (const [args, pattern] of cases) {
      const r = await run(relayBin, args, { check: false, timeoutMs: 5000 });
      assert.equal(r.code, 2, `relay ${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
      assert.match(r.stderr, pattern, `relay ${args.join(' ')}`);
      assert.doesNotMatch(r.stdout, /relay ready/);
    }
    // Valid arguments, but an address that is not local: a clear error, no "ready".
    const r = await runInNs(pair.server, relayBin, ['--pair', '10.99.99.99:7999=127.0.0.1:7000'], {
      check: false,
      timeoutMs: 5000,
    });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /cannot bind 10\.99\.99\.99:7999/);
    assert.doesNotMatch(r.stdout, /relay ready/);
  });

  it('fixed delay: 2 ms each way gives RTTs in [4, 5] ms; oversized datagrams are dropped', async () => {
    const n = 200;
    const warmup = 3;
    const { result, stats } = await withRelay(
      'fixed',
      { up: { base: 0.002 }, down: { base: 0.002 } },
      { count: n, mode: 'pingpong', waitMs: 100, oversize: 2, warmup, spin: true },
    );
    checkLateness('fixed', stats);
    const rtts = replies(result);
    const sorted = [...rtts].sort((a, b) => a - b);
    console.log(
      `# fixed 2+2 ms: ${rtts.length}/${n} replies, RTT min ${ms(sorted[0]!)} median ${ms(median(rtts))}` +
        ` p99 ${ms(sorted[Math.floor(0.99 * (sorted.length - 1))]!)} max ${ms(sorted[sorted.length - 1]!)}`,
    );
    assert.equal(rtts.length, n);
    for (const [i, x] of result.rtt.entries()) {
      // Never early (the relay's claim); late by > 1 ms only rarely (host scheduling, CI load).
      assert.ok(x !== null && x >= 0.004, `packet ${i}: RTT ${x === null ? 'lost' : ms(x)}`);
    }
    assert.ok(Math.abs(median(rtts) - 0.004) <= 0.0003, `median RTT ${ms(median(rtts))}`);
    const late = rtts.filter((x) => x > 0.005).length;
    assert.ok(late <= n / 100, `${late} of ${n} RTTs above 5 ms`);
    assert.equal(result.warmupReplies, warmup);
    assert.equal(stats.up.received, n + warmup + 2);
    assert.equal(stats.up.truncated, 2);
    assert.equal(stats.up.forwarded, n + warmup);
    assert.equal(stats.down.forwarded, n + warmup);
    assert.equal(stats.clients, 1);
    assert.ok(Math.abs(stats.up.meanDelay - 0.002) < 1e-9 && Math.abs(stats.down.meanDelay - 0.002) < 1e-9);
  });

  it('jitter: 1 ms + exp(1 ms) up, 1 ms + uniform(0, 1 ms) down gives the expected mean RTT', async () => {
    const n = 400;
    const { result, stats } = await withRelay(
      'jitter',
      {
        up: { base: 0.001, jitter: { kind: 'exp', mean: 0.001 } },
        down: { base: 0.001, jitter: { kind: 'uniform', max: 0.001 } },
        seed: 3,
      },
      { count: n, mode: 'stream', intervalMs: 2, waitMs: 300 },
    );
    checkLateness('jitter', stats);
    const rtts = replies(result);
    const m = mean(rtts);
    const expected = 0.001 + 0.001 + 0.001 + 0.0005;
    console.log(
      `# jitter: ${rtts.length}/${n} replies, RTT mean ${ms(m)} (expected ${ms(expected)}), min ${ms(Math.min(...rtts))},` +
        ` relay mean delays up ${ms(stats.up.meanDelay)} down ${ms(stats.down.meanDelay)}`,
    );
    assert.equal(rtts.length, n);
    assert.ok(Math.abs(m - expected) <= 0.25 * expected, `mean RTT ${ms(m)} vs ${ms(expected)}`);
    assert.ok(Math.min(...rtts) >= 0.002, `an RTT below the 2 ms base: ${ms(Math.min(...rtts))}`);
    // The relay's own account of the delays it applied matches the distributions...
    assert.ok(Math.abs(stats.up.meanDelay - 0.002) <= 0.0003, `up meanDelay ${ms(stats.up.meanDelay)}`);
    assert.ok(Math.abs(stats.down.meanDelay - 0.0015) <= 0.0001, `down meanDelay ${ms(stats.down.meanDelay)}`);
    // ...and what the client saw is those delays plus a small processing overhead.
    const overhead = m - stats.up.meanDelay - stats.down.meanDelay;
    console.log(`# jitter: client RTT − relay delays = ${us(overhead)}`);
    assert.ok(overhead >= 0 && overhead < 0.001, `overhead ${us(overhead)}`);
  });

  it('loss 0.2 up: about a fifth lost, the same ones for the same seed, counted in the stats', async () => {
    const n = 400;
    // A small base delay: the relay cannot send earlier than it wakes up for a packet (RELAY.md).
    const spec = { up: { base: 0.0005, loss: 0.2 }, down: { base: 0.0005 }, seed: 7 };
    const cfg: ClientConfig = { count: n, mode: 'stream', intervalMs: 1, waitMs: 200 };
    const a = await withRelay('loss-a', spec, cfg);
    const b = await withRelay('loss-b', spec, cfg);
    for (const { result, stats } of [a, b]) {
      checkLateness('loss', stats);
      const got = replies(result).length;
      const lostFraction = (n - got) / n;
      console.log(`# loss 0.2: ${n - got}/${n} lost (${lostFraction.toFixed(3)}), relay up.lost ${stats.up.lost}`);
      assert.ok(lostFraction >= 0.1 && lostFraction <= 0.3, `lost fraction ${lostFraction}`);
      assert.equal(stats.up.received, n);
      assert.equal(stats.up.lost, n - got);
      assert.equal(stats.up.forwarded, got);
      assert.equal(stats.up.outage + stats.up.overflow + stats.up.sendErrors + stats.up.evicted, 0);
      assert.equal(stats.down.received, got);
      assert.equal(stats.down.forwarded, got);
      assert.equal(stats.down.lost, 0);
    }
    const lostSet = (r: ClientResult): number[] => r.rtt.flatMap((x, i) => (x === null ? [i] : []));
    assert.deepEqual(lostSet(a.result), lostSet(b.result), 'same seed, same packets lost');
  });

  it('outage 2:1: packets sent in the down second never come back, those in the up second do', async () => {
    const n = 250;
    const { result, stats } = await withRelay(
      'outage',
      { up: { base: 0.0005 }, down: { base: 0.0005 }, outage: { period: 2, down: 1 } },
      { count: n, mode: 'stream', intervalMs: 10, waitMs: 200 },
    );
    checkLateness('outage', stats);
    const guard = 0.03;
    let down = 0;
    let up = 0;
    let lost = 0;
    for (let i = 0; i < n; i++) {
      const t = result.sentAt[i]! / 1000 - stats.startTime;
      const phase = t - 2 * Math.floor(t / 2);
      const x = result.rtt[i];
      if (x === null) lost++;
      if (phase > guard && phase < 1 - guard) {
        down++;
        assert.equal(x, null, `packet ${i} sent ${t.toFixed(3)} s after start (link down) came back`);
      } else if (phase > 1 + guard && phase < 2 - guard) {
        up++;
        assert.notEqual(x, null, `packet ${i} sent ${t.toFixed(3)} s after start (link up) was lost`);
      }
    }
    const first = result.sentAt[0]! / 1000 - stats.startTime;
    console.log(`# outage: first packet ${first.toFixed(3)} s after start; ${down} in down windows, ${up} in up`);
    console.log(`# outage: ${lost}/${n} lost; relay outage drops up ${stats.up.outage} down ${stats.down.outage}`);
    assert.ok(down >= 40 && up >= 60, `too few packets classified: down ${down}, up ${up}`);
    assert.equal(stats.up.outage + stats.down.outage, lost);
    assert.equal(stats.up.lost + stats.down.lost, 0);
  });
});
