import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RateLimiter } from '../../src/ntp/ratelimit.js';
import { NtpServer } from '../../src/ntp/server.js';
import { decodePacket, encodePacket } from '../../src/ntp/packet.js';
import { clientRequestPacket } from '../support/ntp-packets.js';
import type { ReferenceState } from '../../src/engine/types.js';
import { NS_PER_S } from '../../src/time/ntp-time.js';

const T0 = 1_750_000_000n * NS_PER_S;
const at = (s: number): bigint => T0 + BigInt(Math.round(s * 1e9));
const never = (): number => 0.99; // random() that never leaks

test('a full bucket allows `burst` answers, then one per 2^interval seconds', () => {
  const rl = new RateLimiter({ interval: 3, burst: 4, leak: 2, kod: 0, maxClients: 16 });
  const got = [0, 0.1, 0.2, 0.3, 0.4, 0.5].map((s) => rl.check('192.0.2.1', at(s), never));
  assert.deepEqual(got, ['answer', 'answer', 'answer', 'answer', 'drop', 'drop']);
  // 8 s refill one token: exactly one more answer.
  assert.equal(rl.check('192.0.2.1', at(8.4), never), 'answer');
  assert.equal(rl.check('192.0.2.1', at(8.5), never), 'drop');
  // Another address has its own bucket.
  assert.equal(rl.check('192.0.2.2', at(8.5), never), 'answer');
  assert.equal(rl.limited, 3);
});

test('a steady client at the limit rate is always answered; a fast one gets about 1/2^interval of its requests', () => {
  const rl = new RateLimiter({ interval: 1, burst: 8, leak: 4, kod: 0, maxClients: 16 });
  for (let i = 0; i < 100; i++) assert.equal(rl.check('a', at(i * 2), never), 'answer');
  let answered = 0;
  for (let i = 0; i < 1000; i++) if (rl.check('b', at(1000 + i * 0.25), never) === 'answer') answered++;
  // 250 s at one answer per 2 s, plus the burst of 8.
  assert.ok(answered >= 124 && answered <= 134, `answered ${answered}`);
});

test('leak answers limited requests with probability 2^-leak and empties the bucket; kod sends KoD', () => {
  const rl = new RateLimiter({ interval: 3, burst: 1, leak: 2, kod: 1, maxClients: 16 });
  assert.equal(rl.check('a', at(0), never), 'answer');
  assert.equal(
    rl.check('a', at(0.1), () => 0.24),
    'answer',
  ); // < 2^-2: leaked
  assert.equal(
    rl.check('a', at(0.2), () => 0.3),
    'kod',
  ); // not leaked, < 2^-1: KoD
  assert.equal(
    rl.check('a', at(0.3), () => 0.6),
    'drop',
  );
  let leaked = 0;
  let x = 12345;
  const lcg = (): number => (x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const r2 = new RateLimiter({ interval: 12, burst: 1, leak: 2, kod: 0, maxClients: 4 });
  r2.check('c', at(0), never);
  for (let i = 1; i <= 4000; i++) if (r2.check('c', at(i * 1e-3), lcg) === 'answer') leaked++;
  assert.ok(leaked > 850 && leaked < 1150, `leaked ${leaked} of 4000 (expected about 1000)`);
});

test('the table is bounded: the least recently seen address is evicted', () => {
  const rl = new RateLimiter({ interval: 3, burst: 1, leak: 4, kod: 0, maxClients: 2 });
  assert.equal(rl.check('a', at(0), never), 'answer');
  assert.equal(rl.check('b', at(0), never), 'answer');
  assert.equal(rl.check('c', at(0), never), 'answer'); // evicts a
  assert.equal(rl.size, 2);
  assert.equal(rl.check('a', at(0.1), never), 'answer'); // a starts afresh with a full bucket
  assert.equal(rl.check('c', at(0.1), never), 'drop');
  for (let i = 0; i < 10000; i++) rl.check(`10.0.${i >> 8}.${i & 255}`, at(1), never);
  assert.equal(rl.size, 2);
});

const REF: ReferenceState = {
  synchronized: true,
  leap: 0,
  stratum: 2,
  refId: 0xc0000201,
  refTime: T0 - 30n * NS_PER_S,
  rootDelay: 0.01,
  rootDispersion: 0.001,
  precision: -23,
};

test('NtpServer with ratelimit: drops over the limit (counted), KoD RATE answers, others unaffected', () => {
  let rnd = never;
  const s = new NtpServer({
    clientLogLimit: 64,
    access: () => true,
    random: () => rnd(),
    ratelimit: { interval: 3, burst: 2, leak: 2, kod: 1 },
  });
  const from = { address: '198.51.100.7', port: 40000 };
  const req = encodePacket(clientRequestPacket());
  const answers = [0, 1, 2, 3].map((i) => s.handleRequest(req, from, at(i * 0.01), at(i * 0.01), REF));
  assert.deepEqual(
    answers.map((a) => a !== undefined),
    [true, true, false, false],
  );
  assert.equal(s.stats().ntpPacketsDropped, 2);
  assert.equal(s.stats().malformedDropped['ratelimit'], 2);
  rnd = () => 0.3; // not leaked (>= 1/4), KoD (< 1/2)
  const kod = s.handleRequest(req, from, at(0.05), at(0.05), REF)!;
  const p = decodePacket(kod.data);
  assert.ok(p.ok);
  assert.equal(p.packet.stratum, 0);
  assert.equal(p.packet.leap, 3);
  assert.equal(p.packet.refId, 0x52415445);
  rnd = never;
  const other = s.handleRequest(req, { address: '198.51.100.8', port: 123 }, at(0.05), at(0.05), REF)!;
  const q = decodePacket(other.data);
  assert.ok(q.ok);
  assert.equal(q.packet.stratum, 2);
});

test('NtpServer without ratelimit answers every request', () => {
  const s = new NtpServer({ clientLogLimit: 64, access: () => true, random: never });
  const from = { address: '198.51.100.7', port: 40000 };
  for (let i = 0; i < 50; i++)
    assert.ok(s.handleRequest(encodePacket(clientRequestPacket()), from, at(i * 1e-3), at(i * 1e-3), REF));
});

test('end to end: rubidiumd with ratelimit answers a burst, then drops the flood', { timeout: 60_000 }, async () => {
  const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
  const port = 30000 + (process.pid % 5000) * 2;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `rb-ratelimit-${process.pid}-`));
  const file = path.join(dir, 'rubidium.conf');
  fs.writeFileSync(
    file,
    [
      `port ${port}`,
      'bindaddress 127.0.0.1',
      'allow 127.0.0.1',
      'local stratum 3',
      'ratelimit interval 6 burst 3 leak 4',
      'cmdport 0',
      `bindcmdaddress ${path.join(dir, 'cmd.sock')}`,
    ].join('\n') + '\n',
  );
  const child = spawn(process.execPath, [path.join(root, 'bin', 'rubidiumd'), '-x', '-d', '-f', file], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const sock = dgram.createSocket('udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      let out = '';
      const t = setTimeout(() => reject(new Error(`rubidiumd did not start:\n${out}`)), 15_000);
      const on = (d: Buffer): void => {
        out += d.toString();
        if (/Serving NTP on/.test(out)) {
          clearTimeout(t);
          resolve();
        }
      };
      child.stdout.on('data', on);
      child.stderr.on('data', on);
      child.once('exit', (c) => reject(new Error(`rubidiumd exited ${c}:\n${out}`)));
    });
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    let answers = 0;
    sock.on('message', () => answers++);
    const req = encodePacket(clientRequestPacket());
    for (let i = 0; i < 40; i++) {
      sock.send(req, port, '127.0.0.1');
      await new Promise((r) => setTimeout(r, 10));
    }
    await new Promise((r) => setTimeout(r, 500));
    // 3 from the burst, plus leaks at 1/16 of the other 37 (expected 2.3; more than 12 is practically impossible).
    assert.ok(answers >= 3 && answers <= 12, `answers ${answers} of 40`);
  } finally {
    sock.close();
    if (child.exitCode === null) {
      const done = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await done;
      clearTimeout(t);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// ---- each ratelimit option proven through NtpServer (seeded PRNG, so exact counts are stable) ----

/** Deterministic uniform [0,1) (mulberry32). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Outcome = 'answer' | 'kod' | 'none';

function limitedServer(rl: { interval: number; burst: number; leak: number; kod: number }, random: () => number) {
  const s = new NtpServer({ clientLogLimit: 64, access: () => true, random, ratelimit: rl });
  const req = encodePacket(clientRequestPacket());
  return (address: string, t: number): Outcome => {
    const out = s.handleRequest(req, { address, port: 40000 }, at(t), at(t), REF);
    if (!out) return 'none';
    const p = decodePacket(out.data);
    assert.ok(p.ok);
    assert.ok(out.data.length <= req.length);
    return p.packet.refId === 0x52415445 && p.packet.stratum === 0 ? 'kod' : 'answer';
  };
}

test('ratelimit burst through NtpServer: a new client gets exactly `burst` answers back to back', () => {
  for (const burst of [1, 4, 16]) {
    const ask = limitedServer({ interval: 10, burst, leak: 4, kod: 0 }, never);
    const got = Array.from({ length: burst + 5 }, (_, i) => ask('192.0.2.9', i * 1e-3));
    assert.equal(got.filter((g) => g === 'answer').length, burst, `burst ${burst}`);
    assert.deepEqual(got.slice(burst), ['none', 'none', 'none', 'none', 'none']);
  }
});

test('ratelimit interval through NtpServer: a client asking 4×/s is answered once per 2^interval s', () => {
  for (const interval of [0, 2, 4]) {
    const ask = limitedServer({ interval, burst: 2, leak: 4, kod: 0 }, never);
    let answered = 0;
    for (let i = 0; i < 4 * 512; i++) if (ask('192.0.2.10', i * 0.25) === 'answer') answered++;
    // 512 s: the burst of 2, then one answer per 2^interval s (the first refill ends at 2^interval).
    const expected = 2 + Math.floor(511.75 / 2 ** interval);
    assert.ok(Math.abs(answered - expected) <= 1, `interval ${interval}: ${answered}, expected ${expected}`);
  }
});

test('ratelimit leak through NtpServer: 2^-leak of the requests over the limit are answered', () => {
  for (const leak of [1, 2, 3, 4]) {
    const ask = limitedServer({ interval: 12, burst: 1, leak, kod: 0 }, prng(1000 + leak));
    ask('192.0.2.11', 0);
    const n = 8000;
    let answered = 0;
    for (let i = 1; i <= n; i++) if (ask('192.0.2.11', i * 1e-3) === 'answer') answered++;
    const p = 2 ** -leak;
    const sd = Math.sqrt(n * p * (1 - p));
    assert.ok(Math.abs(answered - n * p) < 5 * sd, `leak ${leak}: ${answered} of ${n}, expected ${n * p}`);
  }
});

test('ratelimit kod through NtpServer: a client over the rate gets KoD RATE with probability 2^-kod', () => {
  for (const kod of [1, 2, 3]) {
    const leak = 4;
    const ask = limitedServer({ interval: 12, burst: 1, leak, kod }, prng(2000 + kod));
    ask('192.0.2.12', 0);
    const n = 8000;
    const count = { answer: 0, kod: 0, none: 0 };
    for (let i = 1; i <= n; i++) count[ask('192.0.2.12', i * 1e-3)]++;
    // Not leaked (1 - 2^-leak), then KoD with 2^-kod; the rest is dropped.
    const p = (1 - 2 ** -leak) * 2 ** -kod;
    const sd = Math.sqrt(n * p * (1 - p));
    assert.ok(Math.abs(count.kod - n * p) < 5 * sd, `kod ${kod}: ${count.kod} KoDs of ${n}, expected ${n * p}`);
    assert.ok(count.none > 0 && count.answer > 0);
  }
  // kod 0: never a KoD.
  const ask = limitedServer({ interval: 12, burst: 1, leak: 1, kod: 0 }, prng(7));
  for (let i = 0; i < 2000; i++) assert.notEqual(ask('192.0.2.13', i * 1e-3), 'kod');
});

test('cmdmon over UDP (cmdratelimit): burst, then only 2^-leak of a remote flood is answered; localhost never limited', async () => {
  const { CmdmonService } = await import('../../src/cmdmon/service.js');
  const { CmdAccess } = await import('../../src/cmdmon/access.js');
  const { REQ, requestLength } = await import('../../src/cmdmon/protocol.js');
  const { Engine } = await import('../../src/engine/engine.js');
  const e = new Engine(
    {
      sources: [],
      discipline: {},
      server: { enabled: false, access: () => false, clientLogLimit: 16 },
      precision: -20,
    },
    { random: () => 0.5 },
  );
  e.start(T0);
  const svc = new CmdmonService({
    engine: e,
    now: () => T0,
    monotonicSeconds: () => 0,
    flush: () => {},
    access: new CmdAccess({
      rules: [{ allow: true, all: false, subnet: '192.0.2.0/24' }],
      rateLimit: { interval: 4, burst: 8, leak: 2 },
      random: prng(99),
    }),
  });
  const req = Buffer.alloc(requestLength(REQ.TRACKING));
  req[0] = 6;
  req[1] = 1;
  req.writeUInt16BE(REQ.TRACKING, 4);
  let answered = 0;
  const n = 4000;
  for (let i = 0; i < n; i++) if (await svc.handle(req, { transport: 'udp', address: '192.0.2.50' })) answered++;
  const expected = 8 + (n - 8) / 4;
  assert.ok(Math.abs(answered - expected) < 5 * Math.sqrt(n * 0.25 * 0.75), `answered ${answered} of ${n}`);
  for (let i = 0; i < 100; i++) assert.ok(await svc.handle(req, { transport: 'udp', address: '127.0.0.1' }));
});
