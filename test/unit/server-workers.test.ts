/**
 * `serverworkers`: the directive (parse, errors with file:line, -p prints it and it parses
 * back), the pieces of the worker protocol that need no sockets (clock mapping, when a reference
 * or mapping is re-sent, merging of stats and client lists, restart bookkeeping), the server
 * policy a worker builds from data, and the main-side pool driving fake worker scripts (start,
 * snapshots, restart after a crash with the counters kept, stop).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

import { DisciplinedClock } from '../../src/clock/disciplined-clock.js';
import { ConfigError, formatConfig, parseConfigText } from '../../src/config/chrony-conf.js';
import { clientLogEntries } from '../../src/config/engine-options.js';
import { mergeClients, mergeServerStats, emptyServerStats } from '../../src/control/merge-reports.js';
import type { ClientReport, ServerStatsReport } from '../../src/control/reports.js';
import { Engine } from '../../src/engine/engine.js';
import type { ReferenceState } from '../../src/engine/types.js';
import { serverWorkerCount } from '../../src/daemon/batch-serving.js';
import {
  buildAccessTable,
  restrictTableOf,
  serverPolicy,
  workerAuthenticators,
  workerClientLogLimit,
} from '../../src/daemon/server-policy.js';
import { ServerWorkers } from '../../src/daemon/server-workers.js';
import {
  ageClients,
  clockMapDiffers,
  clockMapOf,
  IDENTITY_CLOCK_MAP,
  mapOffsetNs,
  referenceDiffers,
  retiredCounters,
} from '../../src/daemon/worker-protocol.js';
import { ServerCookieKeys } from '../../src/nts/cookies.js';
import type { Instant } from '../../src/time/ntp-time.js';

const quietLog = { info: () => {}, warn: () => {}, debug: () => {} };

// ---- the directive ------------------------------------------------------------------------------

test('serverworkers: default 1, N, auto; printed only when set, and the print parses back', () => {
  assert.equal(parseConfigText('', 'a.conf').serverworkers, 1);
  assert.equal(formatConfig(parseConfigText('', 'a.conf')), '');
  for (const [line, want] of [
    ['serverworkers 4', 4],
    ['ServerWorkers AUTO', 'auto'],
    ['serverworkers 1', 1],
  ] as const) {
    const c = parseConfigText(line, 'a.conf');
    assert.equal(c.serverworkers, want, line);
    const printed = formatConfig(c);
    assert.equal(printed, want === 1 ? '' : `serverworkers ${want}\n`, line);
    assert.equal(parseConfigText(printed, 'p.conf').serverworkers, want, line);
  }
});

test('serverworkers: bad values are errors naming file:line', () => {
  for (const [text, re] of [
    ['serverworkers', /^w\.conf:1: missing arguments for serverworkers/],
    ['allow\nserverworkers 0', /^w\.conf:2: invalid serverworkers '0' \(must be 1\.\.64\)/],
    ['serverworkers 65', /^w\.conf:1: invalid serverworkers '65'/],
    ['serverworkers two', /^w\.conf:1: invalid serverworkers 'two' \(not an integer\)/],
    ['serverworkers 2 3', /^w\.conf:1: too many arguments for serverworkers/],
  ] as const) {
    assert.throws(
      () => parseConfigText(text, 'w.conf'),
      (e: unknown) => e instanceof ConfigError && re.test(e.message),
      text,
    );
  }
});

test('serverWorkerCount: auto = usable cores; without batched sockets 1 with a warning', () => {
  const warnings: string[] = [];
  const log = { ...quietLog, warn: (m: string) => warnings.push(m) };
  assert.equal(serverWorkerCount(parseConfigText('serverworkers 3', 'a'), log, true), 3);
  assert.equal(serverWorkerCount(parseConfigText('serverworkers auto', 'a'), log, true), os.availableParallelism());
  assert.deepEqual(warnings, []);
  assert.equal(serverWorkerCount(parseConfigText('serverworkers 3', 'a'), log, false), 1);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /serverworkers 3: .*main thread/);
  assert.equal(serverWorkerCount(parseConfigText('', 'a'), log, false), 1);
  assert.equal(warnings.length, 1);
});

// ---- server policy ------------------------------------------------------------------------------

test('each worker gets clientloglimit / N entries', () => {
  const c = parseConfigText('clientloglimit 1048576', 'a');
  assert.equal(clientLogEntries(c.clientloglimit), 8192);
  assert.equal(workerClientLogLimit(c, 1), 8192);
  assert.equal(workerClientLogLimit(c, 2), 4096);
  assert.equal(workerClientLogLimit(c, 3), 2730);
  assert.equal(serverPolicy(c, buildAccessTable(c), null, [], 4).clientLogLimit, 2048);
});

test('a worker policy decides access, ratelimit and restrict as main’s', () => {
  const c = parseConfigText('allow 10.0.0.0/8\ndeny 10.1.0.0/16\nratelimit interval 1 burst 4', 'a');
  const p = serverPolicy(c, buildAccessTable(c), restrictTableOf(c, []), []);
  assert.equal(p.access('10.2.3.4'), true);
  assert.equal(p.access('10.1.3.4'), false);
  assert.equal(p.access('192.0.2.1'), false);
  assert.deepEqual(p.ratelimit, { interval: 1, burst: 4, leak: 2, kod: 0 });
  assert.equal(p.auth, undefined);
});

test('a worker NTS authenticator opens cookies sealed with main’s keys, also after a rotation', () => {
  const rnd = (n: number) => new Uint8Array(n).map(() => Math.floor(Math.random() * 256));
  const mainKeys = new ServerCookieKeys(rnd);
  const c = parseConfigText('', 'a');
  const { auth, nts } = workerAuthenticators(c, { sourceAddresses: [], keys: [], ntsKeys: mainKeys.dump() }, rnd);
  assert.equal(auth.length, 1);
  assert.ok(nts);
  // The worker's keys are main's: what main seals, a copy loaded from the same dump opens.
  const cookie = mainKeys.seal({ aead: 15, c2s: rnd(32), s2c: rnd(32) });
  assert.ok(ServerCookieKeys.load(mainKeys.dump(), 'x').open(cookie));
  mainKeys.rotate();
  const fresh = mainKeys.seal({ aead: 15, c2s: rnd(32), s2c: rnd(32) });
  nts.setKeys(mainKeys.dump());
  assert.ok(ServerCookieKeys.load(mainKeys.dump(), 'x').open(fresh));
  assert.throws(() => nts.setKeys('garbage'));
});

// ---- clock mapping ------------------------------------------------------------------------------

const S = 1_000_000_000n;
const T0: Instant = 1_760_000_000n * S + 123_456_789n;

function split(rt: Instant): [number, number] {
  return [Number(rt / S), Number(rt % S)];
}

test('clock map: identity for a clock that is CLOCK_REALTIME', () => {
  const m = clockMapOf({ fromKernel: (t) => t }, T0);
  assert.equal(m.offsetNs, 0);
  assert.equal(m.freq, 0);
  assert.equal(mapOffsetNs(m, ...split(T0 + 100n * S)), 0);
  assert.equal(clockMapDiffers(IDENTITY_CLOCK_MAP, m), false);
});

test('clock map: follows a disciplined clock’s offset and frequency within a few ns', () => {
  let raw = T0;
  const clock = new DisciplinedClock(() => raw, 'simulated');
  clock.step(0.25);
  clock.setFrequency(37.5); // ppm
  raw = T0 + 10n * S;
  const m = clockMapOf(clock, raw);
  for (const ahead of [0n, S / 3n, 5n * S, 60n * S]) {
    const rt = raw + ahead;
    const want = Number(clock.fromKernel(rt) - rt);
    const got = mapOffsetNs(m, ...split(rt));
    assert.ok(Math.abs(got - want) <= 3, `${ahead}: ${got} vs ${want}`);
  }
  // A frequency change is a new mapping; nothing changed is not.
  assert.equal(clockMapDiffers(m, clockMapOf(clock, raw + S / 4n)), false);
  clock.setFrequency(-12);
  assert.equal(clockMapDiffers(m, clockMapOf(clock, raw + S / 4n)), true);
  const m2 = clockMapOf(clock, raw + S / 4n);
  clock.step(1e-6);
  assert.equal(clockMapDiffers(m2, clockMapOf(clock, raw + S / 2n)), true);
});

test('clock map: a step inside the slope window does not become a frequency', () => {
  // An injected-error style clock: +2 ms from T0 + 0.7 s on, no rate error.
  const stepAt = T0 + (7n * S) / 10n;
  const clock = { fromKernel: (t: Instant) => t + 5_000n + (t >= stepAt ? 2_000_000n : 0n) };
  const m = clockMapOf(clock, T0 + S);
  assert.equal(m.offsetNs, 2_005_000);
  assert.equal(m.freq, 0);
});

// ---- reference and reports ----------------------------------------------------------------------

const REF: ReferenceState = {
  synchronized: true,
  leap: 0,
  stratum: 2,
  refId: 0x7f7f0101,
  refTime: T0,
  rootDelay: 0,
  rootDispersion: 1e-5,
  precision: -25,
};

test('reference: re-sent on any change but dispersion growth below 2^-16 s', () => {
  assert.equal(referenceDiffers(REF, { ...REF }), false);
  assert.equal(referenceDiffers(REF, { ...REF, rootDispersion: REF.rootDispersion + 1e-5 }), false);
  assert.equal(referenceDiffers(REF, { ...REF, rootDispersion: REF.rootDispersion + 2e-5 }), true);
  assert.equal(referenceDiffers(REF, { ...REF, leap: 1 }), true);
  assert.equal(referenceDiffers(REF, { ...REF, stratum: 3 }), true);
  assert.equal(referenceDiffers(REF, { ...REF, refTime: T0 + 1n }), true);
  assert.equal(referenceDiffers(REF, { ...REF, synchronized: false }), true);
  assert.equal(referenceDiffers(REF, { ...REF, smoothOffset: 1e-6 }), true);
});

function stats(over: Partial<ServerStatsReport>): ServerStatsReport {
  return { ...emptyServerStats(), ...over };
}

test('serverstats of several servers: counters and sizes add, span is the widest, reasons merge', () => {
  const m = mergeServerStats([
    stats({
      ntpPacketsReceived: 10,
      ntpPacketsDropped: 2,
      clientLogSizeActive: 3,
      ntpTimestampSpan: 4,
      malformedDropped: { ratelimit: 2 },
    }),
    stats({
      ntpPacketsReceived: 5,
      ntpInterleavedPacketsReceived: 1,
      clientLogMemory: 100,
      ntpTimestampSpan: 9,
      malformedDropped: { ratelimit: 1, denied: 4 },
    }),
  ]);
  assert.equal(m.ntpPacketsReceived, 15);
  assert.equal(m.ntpPacketsDropped, 2);
  assert.equal(m.clientLogSizeActive, 3);
  assert.equal(m.clientLogMemory, 100);
  assert.equal(m.ntpInterleavedPacketsReceived, 1);
  assert.equal(m.ntpTimestampSpan, 9);
  assert.deepEqual(m.malformedDropped, { ratelimit: 3, denied: 4 });
});

function client(address: string, hits: number, ago: number | null): ClientReport {
  return {
    address,
    ntpHits: hits,
    ntpDrops: 1,
    ntpInterval: 0,
    ntpIntervalLast: 0,
    lastNtpAgo: ago,
    cmdHits: 0,
    cmdDrops: 0,
    cmdInterval: null,
    lastCmdAgo: null,
  };
}

test('clients of several servers: one list, newest first, an address known twice adds up', () => {
  const m = mergeClients([
    [client('10.0.0.1', 5, 3), client('10.0.0.2', 1, 1)],
    [client('10.0.0.3', 2, 0.5), client('10.0.0.1', 4, 2)],
  ]);
  assert.deepEqual(
    m.map((c) => [c.address, c.ntpHits, c.ntpDrops, c.lastNtpAgo]),
    [
      ['10.0.0.3', 2, 1, 0.5],
      ['10.0.0.2', 1, 1, 1],
      ['10.0.0.1', 9, 2, 2],
    ],
  );
});

test('snapshot age is added to "ago"; counters of a dead worker are kept, its sizes not', () => {
  const aged = ageClients([client('a', 1, 2), client('b', 1, null)], T0, T0 + 1_500_000_000n);
  assert.deepEqual(
    aged.map((c) => c.lastNtpAgo),
    [3.5, null],
  );
  const r = retiredCounters(
    stats({ ntpPacketsReceived: 7, clientLogSizeActive: 5, clientLogMemory: 9, ntpTimestampsHeld: 2 }),
  );
  assert.equal(r.ntpPacketsReceived, 7);
  assert.equal(r.clientLogSizeActive + r.clientLogMemory + r.ntpTimestampsHeld, 0);
});

test('engine serverStats() and clients() include external servers', () => {
  const e = new Engine(
    {
      sources: [],
      discipline: {},
      server: { enabled: true, access: () => true, clientLogLimit: 16 },
      precision: -20,
    },
    { random: Math.random },
  );
  assert.equal(e.serverStats().ntpPacketsReceived, 0);
  e.setExternalServerReports({
    stats: () => [stats({ ntpPacketsReceived: 3 }), stats({ ntpPacketsReceived: 4 })],
    clients: () => [[client('192.0.2.1', 1, 1)], [client('192.0.2.2', 1, 0)]],
  });
  assert.equal(e.serverStats().ntpPacketsReceived, 7);
  assert.deepEqual(
    e.clients(T0).map((c) => c.address),
    ['192.0.2.2', '192.0.2.1'],
  );
  e.setExternalServerReports(null);
  assert.equal(e.serverStats().ntpPacketsReceived, 0);
});

// ---- the pool with fake workers ------------------------------------------------------------------

/**
 * A stand-in for server-worker.js speaking the protocol: 'ready' at once, a snapshot whose
 * ntpPacketsReceived is 10 × (index + 1) + incarnation, a client per worker; 'crash' in the
 * conf's marker file makes worker 1's first incarnation exit with code 3 after its first snapshot.
 */
const FAKE_WORKER = `
import { parentPort, workerData } from 'node:worker_threads';
import * as fs from 'node:fs';
const init = workerData;
const marker = init.conf.pidfile;
let incarnation = 0;
try { incarnation = Number(fs.readFileSync(marker + '.' + init.index, 'utf8')); } catch {}
fs.writeFileSync(marker + '.' + init.index, String(incarnation + 1));
const empty = { ntpPacketsReceived: 0, ntpPacketsDropped: 0, cmdPacketsReceived: 0, cmdPacketsDropped: 0,
  clientLogSizeActive: 1, clientLogMemory: 64, ntpAuthPacketsReceived: 0, ntpInterleavedPacketsReceived: 0,
  ntpTimestampsHeld: 0, ntpTimestampSpan: 0, malformedDropped: {} };
let refs = 0;
const snap = (id, clients) => {
  parentPort.postMessage({ t: 'snapshot', id, at: 0n,
    stats: { ...empty, ntpPacketsReceived: 10 * (init.index + 1) + incarnation, ntpPacketsDropped: refs },
    clients: clients ? [{ address: '192.0.2.' + init.index, ntpHits: 1, ntpDrops: 0, ntpInterval: null,
      ntpIntervalLast: null, lastNtpAgo: 1, cmdHits: 0, cmdDrops: 0, cmdInterval: null, lastCmdAgo: null }] : null });
  if (init.index === 1 && incarnation === 0 && fs.existsSync(marker + '.crash')) process.exit(3);
};
parentPort.on('message', (m) => {
  if (m.t === 'snapshot') snap(m.id, m.clients);
  else if (m.t === 'ref') refs++;
  else if (m.t === 'send') parentPort.postMessage({ t: 'log', level: 'info', message: 'sent ' + m.data.length + ' to ' + m.to.address });
  else if (m.t === 'stop') parentPort.close();
});
parentPort.postMessage({ t: 'ready', sockets: init.binds.map((b) => ({ address: b.address, port: init.port, timestamping: 'kernel' })) });
`;

function fakeSetup(crash: boolean) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rb-workers-'));
  const script = path.join(dir, 'fake-worker.mjs');
  fs.writeFileSync(script, FAKE_WORKER);
  const marker = path.join(dir, 'marker');
  if (crash) fs.writeFileSync(`${marker}.crash`, '');
  const conf = parseConfigText(`pidfile ${marker}\nserverworkers 2`, 'a');
  let rootDispersion = 1e-3;
  const engine = new Engine(
    {
      sources: [],
      discipline: { localStratum: { stratum: 1, distance: 1 } },
      server: { enabled: true, access: () => true, clientLogLimit: 1 },
      precision: -20,
    },
    { random: Math.random },
  );
  const realRef = engine.serverReference.bind(engine);
  engine.serverReference = (now) => ({ ...realRef(now), rootDispersion });
  const logs: string[] = [];
  const log = { info: (m: string) => logs.push(m), warn: (m: string) => logs.push(m), debug: () => {} };
  const opts = {
    conf,
    count: 2,
    binds: [{ address: '127.0.0.1', family: 4 as const }],
    port: 11123,
    policy: { sourceAddresses: [], keys: [], ntsKeys: null },
    clientLogLimit: 8,
    engine,
    // A clock that stands still: the local reference's refTime is "now", so a moving clock would
    // make every push() a change (and the test flaky when two pushes straddle a millisecond).
    clock: new DisciplinedClock(() => 1_700_000_000_000_000_000n),
    log,
    onMode6: () => {},
    onFatal: () => {},
    workerUrl: pathToFileURL(script),
    // Only the test's own push() calls: a loaded machine must not add background pushes.
    pushIntervalMs: 2 ** 30,
  };
  return {
    opts,
    engine,
    logs,
    bumpDispersion: () => (rootDispersion += 1e-3),
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

test('pool: snapshots on request, sums in serverstats, clients merged, references pushed', async () => {
  const f = fakeSetup(false);
  const pool = await ServerWorkers.start(f.opts);
  try {
    assert.deepEqual(
      pool.sockets.map((s) => s.address),
      ['127.0.0.1'],
    );
    await pool.refresh(true);
    // Worker 0: 10, worker 1: 20; main's own server: 0.
    assert.equal(f.engine.serverStats().ntpPacketsReceived, 30);
    assert.equal(f.engine.serverStats().clientLogSizeActive, 2 + 0);
    await pool.refresh(true);
    assert.deepEqual(
      f.engine
        .clients(0n)
        .map((c) => c.address)
        .sort(),
      ['192.0.2.0', '192.0.2.1'],
    );
    f.bumpDispersion();
    pool.push();
    pool.push(); // unchanged: not sent again
    await pool.refresh(false);
    assert.equal(f.engine.serverStats().ntpPacketsDropped, 2); // one 'ref' per worker
    // A mode 6 answer goes out through a worker.
    pool.relaySocket(4).send(new Uint8Array(12), { address: '127.0.0.1', port: 5555 });
    await pool.refresh(false);
    assert.ok(
      f.logs.some((l) => /sent 12 to 127\.0\.0\.1/.test(l)),
      f.logs.join('\n'),
    );
  } finally {
    await pool.stop();
    f.cleanup();
  }
  assert.equal(f.engine.serverStats().ntpPacketsReceived, 0); // stopped: the pool's reports are gone
});

test('pool: a worker that dies is restarted and its counters are kept', async () => {
  const f = fakeSetup(true);
  const pool = await ServerWorkers.start(f.opts);
  try {
    await pool.refresh(false); // worker 1 answers, then exits with code 3
    await waitUntil(() => f.logs.some((l) => /server worker 1 restarted/.test(l)), 10_000);
    await pool.refresh(false);
    // Worker 0: 10; worker 1: 20 (first incarnation, retired) + 21 (second).
    assert.equal(f.engine.serverStats().ntpPacketsReceived, 10 + 20 + 21);
    assert.ok(
      f.logs.some((l) => /server worker 1 exited \(code 3\); restarting/.test(l)),
      f.logs.join('\n'),
    );
  } finally {
    await pool.stop();
    f.cleanup();
  }
});

test('pool: a worker that cannot start fails the start, and nothing is left running', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rb-workers-'));
  const script = path.join(dir, 'fatal.mjs');
  fs.writeFileSync(
    script,
    `import { parentPort } from 'node:worker_threads'; parentPort.postMessage({ t: 'fatal', message: 'bind: EADDRINUSE' }); process.exit(1);`,
  );
  const f = fakeSetup(false);
  try {
    await assert.rejects(ServerWorkers.start({ ...f.opts, workerUrl: pathToFileURL(script) }), /EADDRINUSE/);
  } finally {
    f.cleanup();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

async function waitUntil(cond: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

// ---- the serving loop over a fake batched socket --------------------------------------------------

function fakeSocket(batch = 4, slotBytes = 128) {
  const sends: Array<{ count: number; at: number }> = [];
  let calls = 0;
  const sock = {
    batch,
    slotBytes,
    rxData: new Uint8Array(batch * slotBytes),
    rxMeta: new Int32Array(batch * 8),
    rxTime: new Float64Array(batch * 2),
    txData: new Uint8Array(batch * slotBytes),
    txMeta: new Int32Array(batch * 8),
    txId: new Int32Array(batch).fill(-1),
    txOffsetNs: new Float64Array(1),
    txStampId: new Int32Array(batch),
    txStampTime: new Float64Array(batch * 2),
    timestamping: 'kernel' as const,
    send(count: number): number {
      sends.push({ count, at: ++calls });
      return count;
    },
  };
  /** Puts a datagram from 127.0.0.1:port into rx slot i. */
  const rx = (i: number, data: Uint8Array, port: number, sec: number, nsec: number): void => {
    sock.rxData.set(data, i * slotBytes);
    sock.rxMeta.set([data.length, 4, port, 0x7f000001, 0, 0, 0, 1], i * 8);
    sock.rxTime.set([sec, nsec], i * 2);
  };
  return { sock, sends, rx, tick: () => ++calls };
}

function mode3(transmitHi: number): Uint8Array {
  const b = new Uint8Array(48);
  b[0] = (4 << 3) | 3;
  new DataView(b.buffer).setUint32(40, transmitHi);
  return b;
}

test('serving loop: answers a batch, sends it, then hands on mode 6 (its answer reuses slot 0)', async () => {
  const { ServingLoop, sendThroughSlot } = await import('../../src/daemon/batch-loop.js');
  const { NtpServer } = await import('../../src/ntp/server.js');
  const f = fakeSocket();
  const others: Array<{ len: number; afterSend: number }> = [];
  const errors: Error[] = [];
  const server = new NtpServer({ clientLogLimit: 16, access: () => true, random: Math.random });
  const loop = new ServingLoop(server, {
    offsetNs: () => 2_500,
    reference: () => REF,
    now: () => T0,
    onOther: (data) => others.push({ len: data.length, afterSend: f.tick() }),
    onError: (e) => errors.push(e),
  });
  const ctl = new Uint8Array(12);
  ctl[0] = (2 << 3) | 6; // mode 6
  f.rx(0, mode3(0xdead), 40000, 1_760_000_000, 1_000);
  f.rx(1, ctl, 40001, 1_760_000_000, 2_000);
  f.rx(2, mode3(0xbeef), 40002, 1_760_000_000, 3_000);
  loop.onRx(f.sock as never, 3);
  assert.equal(errors.length, 0);
  assert.equal(f.sock.txOffsetNs[0], 2_500);
  assert.deepEqual(f.sends, [{ count: 2, at: 1 }]);
  assert.deepEqual(others, [{ len: 12, afterSend: 2 }]);
  // The answers: mode 4 to the right ports, origin = the request's transmit.
  for (const [j, port, hi] of [
    [0, 40000, 0xdead],
    [1, 40002, 0xbeef],
  ] as const) {
    const a = new DataView(f.sock.txData.buffer, j * 128, 48);
    assert.equal(a.getUint8(0) & 7, 4);
    assert.equal(a.getUint32(24), hi);
    assert.equal(f.sock.txMeta[j * 8 + 2], port);
  }
  assert.equal(server.stats().ntpPacketsReceived, 2);

  // One datagram through slot 0 (a mode 6 answer), with and without a T3 stamp.
  assert.equal(sendThroughSlot(f.sock as never, new Uint8Array(60).fill(7), { address: '192.0.2.9', port: 123 }), true);
  assert.deepEqual(
    [...f.sock.txMeta.subarray(0, 8)].map((v) => v >>> 0),
    [60, 4, 123, 0xc0000209, 0, 0, 0, 0],
  );
  sendThroughSlot(f.sock as never, new Uint8Array(48), { address: '2001:db8::1', port: 1 }, 777);
  assert.deepEqual(
    [...f.sock.txMeta.subarray(0, 8)].map((v) => v >>> 0),
    [48, 6, 1, 0x20010db8, 0, 0, 1, 1],
  );
  assert.equal(f.sock.txOffsetNs[0], 777);
  assert.throws(
    () => sendThroughSlot(f.sock as never, new Uint8Array(129), { address: '192.0.2.9', port: 1 }),
    RangeError,
  );

  // A failing batch is reported, not thrown into the addon's callback.
  const broken = new ServingLoop(server, {
    offsetNs: () => 0,
    reference: () => {
      throw new Error('no reference');
    },
    now: () => T0,
    onOther: () => {},
    onError: (e) => errors.push(e),
  });
  assert.doesNotThrow(() => broken.onRx(f.sock as never, 1));
  assert.deepEqual(
    errors.map((e) => e.message),
    ['no reference'],
  );
});
