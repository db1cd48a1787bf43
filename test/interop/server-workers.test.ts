/**
 * rubidiumd serving through batched sockets, in a network namespace of its own (loopback only,
 * port 123 so NTPsec's ntpq finds it), with `serverworkers 2` (two worker threads sharing the
 * port, steered by source address) and with `serverworkers 1` (the main thread's batch path):
 *  - requests from 64 source addresses 127.1.0.x are all answered: mode 4, our origin, LI 0,
 *    stratum 1 (`local stratum 1`, as chronyd serves it); `rubidiumc serverstats` counts them (summed over the
 *    workers) and `rubidiumc clients` lists every address;
 *  - `ratelimit`: a flood from one address (from several ports, so only steering by address keeps
 *    it on one worker) gets one burst, not one per worker, while another address is answered;
 *  - interleaved mode as chrony's xleave client uses it: the second answer's transmit is the
 *    kernel TX time of the first answer, microseconds after its T3;
 *  - `ntpq -c rv` is answered (mode 6 goes to the main thread and back out);
 *  - NTS with `serverworkers 2`: a rubidiumd NTS client gets cookies of keys main rotated after
 *    the workers started, and keeps polling through more rotations without a NAK.
 * Nothing here touches the host clock (-x).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  assertNothingLeft,
  cleanupLeftovers,
  createNamespace,
  deleteNamespace,
  isRoot,
  makeTempDir,
  removeTempDir,
  runInNs,
  sleep,
  unwind,
  waitFor,
} from '../support/netns.js';
import { startRubidiumd, type Rubidiumd } from '../support/rubidiumd.js';
import { PEER_BINARIES, ntpsecEnv, requirePeers } from '../support/peers.js';
import { makeTestPki } from '../support/test-pki.js';
import type { AuthDataReport } from '../../src/control/authdata.js';
import type { ClientReport, ServerStatsReport, SourceReport } from '../../src/control/reports.js';

const PYTHON = '/usr/bin/python3';
const skip = isRoot() ? false : 'interop tests need root (network namespaces)';
const CMD_PORT = 11323;
const SOURCES = Array.from({ length: 64 }, (_, i) => `127.1.0.${i + 1}`);

/**
 * The NTP client of the test (plain node, run inside the namespace). Commands:
 *   basic {addrs}         one request from each address (3 tries), the answers' fields
 *   flood {addr, ports, n, other}  n requests from addr (round robin over `ports` sockets)
 *                         2 ms apart, then one from `other`
 *   xleave {addr}         a basic then an interleaved exchange, as chrony's xleave client
 */
const CLIENT = String.raw`
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
const [cmd, argJson] = process.argv.slice(2);
const arg = JSON.parse(argJson);
const SERVER = '127.0.0.1';
const nowNtp = () => {
  const ns = process.hrtime.bigint() - hr0 + wall0;
  const s = ns / 1000000000n + 2208988800n;
  return (s << 32n) | (((ns % 1000000000n) << 32n) / 1000000000n);
};
const hr0 = process.hrtime.bigint();
const wall0 = BigInt(Date.now()) * 1000000n;
const request = (origin, receive, transmit) => {
  const b = Buffer.alloc(48);
  b[0] = (0 << 6) | (4 << 3) | 3;
  b[2] = 6;
  b.writeBigUInt64BE(origin, 24);
  b.writeBigUInt64BE(receive, 32);
  b.writeBigUInt64BE(transmit, 40);
  return b;
};
const parse = (m) => ({
  li: m[0] >> 6, version: (m[0] >> 3) & 7, mode: m[0] & 7, stratum: m[1],
  refid: m.subarray(12, 16).toString('latin1'),
  origin: m.readBigUInt64BE(24).toString(), receive: m.readBigUInt64BE(32).toString(),
  transmit: m.readBigUInt64BE(40).toString(), length: m.length,
});
const rnd64 = () => randomBytes(8).readBigUInt64BE(0);
const open = (addr) => new Promise((resolve, reject) => {
  const s = dgram.createSocket('udp4');
  s.once('error', reject);
  s.bind({ address: addr, port: 0 }, () => resolve(s));
});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** Sends and waits for the answer whose origin is 'expectOrigin' (or any answer). */
const exchange = (s, pkt, expectOrigin, timeoutMs = 1000) => new Promise((resolve) => {
  const onMsg = (m) => {
    const rx = nowNtp();
    const p = parse(m);
    if (expectOrigin !== undefined && BigInt(p.origin) !== expectOrigin) return;
    clearTimeout(t); s.off('message', onMsg); resolve({ ...p, rx: rx.toString() });
  };
  const t = setTimeout(() => { s.off('message', onMsg); resolve(null); }, timeoutMs);
  s.on('message', onMsg);
  s.send(pkt, 123, SERVER);
});
const out = {};
if (cmd === 'basic') {
  const results = await Promise.all(arg.addrs.map(async (addr) => {
    const s = await open(addr);
    let ans = null;
    let tx = 0n;
    for (let i = 0; i < 3 && !ans; i++) {
      tx = rnd64();
      ans = await exchange(s, request(0n, 0n, tx), undefined, 1500);
    }
    s.close();
    return { addr, ans, originOk: ans !== null && BigInt(ans.origin) === tx };
  }));
  out.results = results;
} else if (cmd === 'flood') {
  // From several ports of one address: only steering by address keeps them on one worker.
  const socks = await Promise.all(Array.from({ length: arg.ports }, () => open(arg.addr)));
  let answered = 0, kod = 0;
  for (const s of socks) s.on('message', (m) => { if (m[1] === 0) kod++; else answered++; });
  for (let i = 0; i < arg.n; i++) { socks[i % socks.length].send(request(0n, 0n, rnd64()), 123, SERVER); await sleep(2); }
  await sleep(500);
  for (const s of socks) s.close();
  const o = await open(arg.other);
  const tx = rnd64();
  const ans = await exchange(o, request(0n, 0n, tx), tx, 1500);
  o.close();
  Object.assign(out, { answered, kod, otherAnswered: ans !== null && ans.stratum !== 0 });
} else if (cmd === 'xleave') {
  const s = await open(arg.addr);
  // Request 1: receive and transmit differ and are non-zero, as chrony's xleave client sends.
  const t1 = rnd64();
  const a1 = await exchange(s, request(0n, rnd64(), t1), t1, 1500);
  await sleep(200); // the kernel TX stamp of answer 1 reaches the server
  const t2 = rnd64();
  const a2 = a1 && await exchange(s, request(BigInt(a1.receive), BigInt(a1.rx), t2), BigInt(a1.rx), 1500);
  s.close();
  Object.assign(out, { a1, a2 });
}
process.stdout.write(JSON.stringify(out));
`;

interface Answer {
  li: number;
  version: number;
  mode: number;
  stratum: number;
  refid: string;
  origin: string;
  receive: string;
  transmit: string;
  rx: string;
  length: number;
}

/** A rubidiumd instance plus the test's NTP client (run inside the same namespace). */
interface Served extends Rubidiumd {
  client<T>(cmd: string, arg: object): Promise<T>;
}

function startServer(ns: string, workers: number): Promise<Served> {
  return startServed(ns, `swk${workers}`, [
    'local stratum 1',
    'allow',
    // A burst large against the leak's noise: a flood spread over two workers would get two bursts.
    'ratelimit interval 1 burst 16 leak 4',
    `serverworkers ${workers}`,
  ]);
}

async function startServed(ns: string, tag: string, lines: string[], cmdPort = CMD_PORT): Promise<Served> {
  const d = await startRubidiumd({ ns, tag, lines, cmdPort, readyTimeoutMs: 20_000 });
  const script = join(d.dir, 'client.mjs');
  try {
    writeFileSync(script, CLIENT);
  } catch (e) {
    await d.stop();
    throw e;
  }
  return {
    ...d,
    client: async <T>(cmd: string, arg: object): Promise<T> => {
      const r = await runInNs(ns, process.execPath, [script, cmd, JSON.stringify(arg)], { timeoutMs: 60_000 });
      return JSON.parse(r.stdout) as T;
    },
  };
}

const ntp64 = (s: string): bigint => BigInt(s);
/** Seconds between two NTP timestamps (a − b). */
const ntpDiff = (a: string, b: string): number => Number(BigInt.asIntN(64, ntp64(a) - ntp64(b))) / 2 ** 32;

async function exercise(ns: string, workers: number): Promise<void> {
  const cleanups: Array<() => Promise<void>> = [];
  try {
    const d = await startServer(ns, workers);
    cleanups.push(() => d.stop());
    if (workers > 1) {
      assert.match(d.proc.output(), new RegExp(`${workers} server workers`), d.proc.tail());
      // One socket per worker on the NTP port.
      const ss = await runInNs(ns, 'ss', ['-Hlun']);
      const bound = ss.stdout.split('\n').filter((l) => /\s0\.0\.0\.0:123\s/.test(l));
      assert.equal(bound.length, workers, ss.stdout);
    } else assert.match(d.proc.output(), /Serving NTP on 0\.0\.0\.0:123 \(kernel timestamps, batched\)/, d.proc.tail());

    // LI 0 once the local reference is in use (a new address each time: ratelimit).
    let probe = 0;
    await waitFor(
      async () => {
        const addr = `127.1.3.${++probe}`;
        const r = await d.client<{ results: Array<{ ans: Answer | null }> }>('basic', { addrs: [addr] });
        return r.results[0]?.ans?.li === 0;
      },
      { timeoutMs: 30_000, intervalMs: 500, what: 'a synchronised answer' },
    );

    // 64 source addresses, each answered correctly.
    const before = await d.query<ServerStatsReport>('serverstats');
    const basic = await d.client<{ results: Array<{ addr: string; ans: Answer | null; originOk: boolean }> }>('basic', {
      addrs: SOURCES,
    });
    for (const r of basic.results) {
      assert.ok(r.ans, `no answer to ${r.addr}`);
      assert.equal(r.ans.mode, 4, r.addr);
      assert.equal(r.ans.version, 4, r.addr);
      assert.ok(r.originOk, `${r.addr}: origin ${r.ans.origin}`);
      assert.equal(r.ans.li, 0, r.addr);
      assert.equal(r.ans.stratum, 1, r.addr); // local stratum 1 serves stratum 1, as chronyd
      assert.equal(r.ans.length, 48, r.addr);
    }
    const after = await d.query<ServerStatsReport>('serverstats');
    const counted = after.ntpPacketsReceived - before.ntpPacketsReceived;
    assert.ok(counted >= SOURCES.length, `serverstats counted ${counted} of ${SOURCES.length} requests`);
    const clients = await d.query<ClientReport[]>('clients');
    const listed = new Set(clients.map((c) => c.address));
    for (const a of SOURCES) assert.ok(listed.has(a), `clients does not list ${a}`);

    // ratelimit burst 16 leak 4: a flood of 100 requests from one address (8 source ports) gets
    // its burst and about 1 in 16 of the rest (5 ± 2), never two workers' bursts (32 +); another
    // address is answered.
    const flood = await d.client<{ answered: number; kod: number; otherAnswered: boolean }>('flood', {
      addr: '127.1.1.1',
      ports: 8,
      n: 100,
      other: '127.1.1.2',
    });
    assert.ok(flood.answered >= 16, `flood: the burst is answered: ${JSON.stringify(flood)}`);
    assert.ok(flood.answered + flood.kod < 30, `flood: ${JSON.stringify(flood)}`);
    assert.ok(flood.otherAnswered, 'another address is answered during the flood');
    const limited = await d.query<ServerStatsReport>('serverstats');
    assert.ok((limited.malformedDropped['ratelimit'] ?? 0) >= 60, JSON.stringify(limited.malformedDropped));

    // Interleaved mode: answer 2 carries the kernel TX time of answer 1.
    const x = await d.client<{ a1: Answer | null; a2: Answer | null }>('xleave', { addr: '127.1.2.1' });
    assert.ok(x.a1 && x.a2, `xleave exchange: ${JSON.stringify(x)}`);
    assert.equal(x.a2.origin, x.a1.rx, 'interleaved answer: origin = our receive of answer 1');
    const late = ntpDiff(x.a2.transmit, x.a1.transmit);
    assert.ok(late !== 0 && Math.abs(late) < 1e-3, `kernel TX time − T3 of answer 1: ${late} s`);
    console.log(`# serverworkers ${workers}: kernel TX − served T3 = ${(late * 1e6).toFixed(1)} µs`);
    const st = await d.query<ServerStatsReport>('serverstats');
    assert.ok(st.ntpInterleavedPacketsReceived >= 1, JSON.stringify(st));

    // ntpq (mode 6) is answered by the main thread.
    const rv = await runInNs(ns, PYTHON, [PEER_BINARIES.ntpq, '-c', 'rv', '127.0.0.1'], {
      env: ntpsecEnv(),
      timeoutMs: 30_000,
      check: false,
    });
    assert.match(rv.stdout, /stratum=1\b/, `ntpq -c rv:\n${rv.stdout}${rv.stderr}`);
    assert.match(rv.stdout, /version="rubidiumd/, rv.stdout);
  } finally {
    await unwind(cleanups);
  }
}

describe('rubidiumd serving with batched sockets and server workers', { skip }, () => {
  before(async () => {
    requirePeers(['ntpq']);
    await cleanupLeftovers();
  });

  after(() => {
    assertNothingLeft();
  });

  it(
    'serverworkers 2 with NTS: a client gets cookies of main’s rotated keys accepted by the workers',
    { timeout: 180_000 },
    async () => {
      const ns = await createNamespace('swknts');
      const cleanups: Array<() => Promise<void>> = [async () => deleteNamespace(ns)];
      try {
        const certDir = makeTempDir('swk-certs');
        cleanups.push(async () => removeTempDir(certDir));
        const pki = makeTestPki(certDir, ['127.0.0.1']);
        const server = await startServed(ns, 'swk-nts-srv', [
          'local stratum 1',
          'allow',
          'serverworkers 2',
          `ntsservercert ${pki.serverCert}`,
          `ntsserverkey ${pki.serverKey}`,
          'ntsrotate 3',
          'ntsdumpdir $DIR/nts',
        ]);
        cleanups.push(() => server.stop());
        // The workers started with the first key; NTS-KE now hands out cookies of a later one.
        await server.proc.waitForOutput(/NTS: server keys rotated/, 10_000);
        const client = await startServed(
          ns,
          'swk-nts-cli',
          [
            'server 127.0.0.1 iburst nts minpoll -2 maxpoll -2',
            `ntstrustedcerts ${pki.caCert}`,
            'nosystemcert',
            'port 0',
          ],
          CMD_PORT + 1,
        );
        cleanups.push(() => client.stop());
        await waitFor(
          async () => (await client.query<SourceReport[]>('sources')).find((s) => s.state === '*' && s.reach >= 0o17),
          { timeoutMs: 60_000, intervalMs: 500, what: 'the NTS client to select the server' },
        ).catch((e: Error) => {
          throw new Error(`${e.message}\n${client.proc.tail()}\n${server.proc.tail()}`);
        });
        // A few more rotations while the client keeps polling with the cookies the workers seal
        // (waited for, not timed: a loaded machine starts the daemons late).
        const rotationsSoFar = (): number => server.proc.output().match(/NTS: server keys rotated/g)?.length ?? 0;
        await waitFor(async () => rotationsSoFar() >= 3 || null, {
          timeoutMs: 30_000,
          intervalMs: 250,
          what: 'three NTS key rotations',
        });
        await sleep(4_000);
        const auth = await client.query<AuthDataReport[]>('authdata');
        assert.equal(auth[0]!.mode, 'nts');
        assert.equal(auth[0]!.naks, 0, JSON.stringify(auth));
        assert.ok(auth[0]!.cookies >= 1, JSON.stringify(auth));
        const src = await client.query<SourceReport[]>('sources');
        assert.equal(src[0]!.reach & 0xf, 0xf, JSON.stringify(src));
        const st = await server.query<ServerStatsReport>('serverstats');
        assert.ok(st.ntpAuthPacketsReceived >= 10, JSON.stringify(st));
        assert.equal(st.malformedDropped['auth'] ?? 0, 0, JSON.stringify(st.malformedDropped));
        const rotations = server.proc.output().match(/NTS: server keys rotated/g)?.length ?? 0;
        assert.ok(rotations >= 3, `${rotations} rotations`);
      } finally {
        await unwind(cleanups);
      }
    },
  );

  for (const workers of [2, 1]) {
    it(
      `serverworkers ${workers}: 64 clients, serverstats, clients, ratelimit, xleave, ntpq`,
      { timeout: 180_000 },
      async () => {
        const ns = await createNamespace(`swk${workers}`);
        try {
          await exercise(ns, workers);
        } finally {
          await deleteNamespace(ns);
        }
      },
    );
  }
});
