/**
 * The capacity benchmark's load generator (bench/capacity/loadgen.c, contract C4) against a tiny
 * in-process NTP responder: request counting, loss, KoD, the xleave (interleaved) accuracy flows,
 * NTS packet files, and argument errors. Counts are asserted, never speed.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from '../support/netns.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const haveCc = spawnSync('sh', ['-c', 'command -v "${CC:-cc}"']).status === 0;
const skip = haveCc ? false : 'no C compiler (cc) on this machine: cannot build bench/capacity/loadgen.c';

/** The true TX time the test responder reports in interleaved answers: T3b + 5 us. */
const TRUE_TX_LATE = BigInt(Math.round(5e-6 * 2 ** 32));
const EF_UNIQUE_ID = 0x0104;

interface LoadgenResult {
  rate: number;
  sent: number;
  received: number;
  lossRatio: number;
  achievedRate: number;
  rttP50Us: number | null;
  rttP99Us: number | null;
  kod: number;
  kodByCode: { RATE: number; NTSN: number; other: number };
  bad: number;
  clientDrops: number;
  xleave: { pairs: number; errMeanUs: number | null; errAbsP50Us: number | null; errAbsMaxUs: number | null };
  cpuUserS: number;
  cpuSysS: number;
}

interface Responder {
  port: number;
  /** Drop every n-th request (0: none). */
  dropEvery: number;
  /** NTS requests: answer every n-th with a KoD NTSN (0: none). */
  nakEvery: number;
  close(): Promise<void>;
}

function uniqueIdOffset(msg: Buffer): number {
  for (let o = 48; o + 4 <= msg.length;) {
    const type = msg.readUInt16BE(o);
    const len = msg.readUInt16BE(o + 2);
    if (len < 4 || o + len > msg.length) return -1;
    if (type === EF_UNIQUE_ID) return o;
    o += len;
  }
  return -1;
}

/**
 * Mode 4 answers with origin = request transmit, keeping (like chrony/rubidium) per client the
 * receive stamp of its last answer and that answer's "true" TX time (T3b + 5 us): a request whose
 * origin is that receive stamp (receive != transmit) gets an interleaved answer. NTS requests
 * (with extension fields) get the Unique Identifier back plus a dummy authenticator field.
 */
async function startResponder(): Promise<Responder> {
  const sock: Socket = createSocket('udp4');
  const clients = new Map<string, { rx: bigint; trueTx: bigint }>();
  let seq = 0n;
  let count = 0;
  const r: Responder = {
    port: 0,
    dropEvery: 0,
    nakEvery: 0,
    close: () => new Promise((resolve) => sock.close(() => resolve())),
  };
  sock.on('message', (msg, rinfo) => {
    if (msg.length < 48 || (msg[0]! & 7) !== 3) return;
    count++;
    if (r.dropEvery && count % r.dropEvery === 0) return;
    const origin = msg.readBigUInt64BE(24);
    const receive = msg.readBigUInt64BE(32);
    const transmit = msg.readBigUInt64BE(40);
    const now = (BigInt(Date.now()) * 2n ** 32n) / 1000n + 2208988800n * 2n ** 32n;
    const rx = ((now + (seq++ << 8n)) & ~1n) | 1n; // unique, odd like chrony's
    const t3b = rx + 4096n;
    const key = `${rinfo.address}:${rinfo.port}`;
    const prev = clients.get(key);
    const interleaved = prev !== undefined && origin !== 0n && origin === prev.rx && receive !== transmit;
    clients.set(key, { rx, trueTx: t3b + TRUE_TX_LATE });
    const head = Buffer.alloc(48);
    head[0] = 0x24; // LI 0, VN 4, mode 4
    head[1] = 1;
    head.writeBigUInt64BE(interleaved ? receive : transmit, 24);
    head.writeBigUInt64BE(rx, 32);
    head.writeBigUInt64BE(interleaved ? prev.trueTx : t3b, 40);
    let out = head;
    if (msg.length > 48) {
      const uid = uniqueIdOffset(msg);
      if (uid < 0) return;
      const uidField = msg.subarray(uid, uid + msg.readUInt16BE(uid + 2));
      if (r.nakEvery && count % r.nakEvery === 0) {
        head[1] = 0;
        head.write('NTSN', 12, 'latin1');
        out = Buffer.concat([head, uidField]);
      } else {
        const auth = Buffer.alloc(24);
        auth.writeUInt16BE(0x0404, 0);
        auth.writeUInt16BE(24, 2);
        out = Buffer.concat([head, uidField, auth]);
      }
    }
    sock.send(out, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve));
  r.port = sock.address().port;
  return r;
}

let bin = '';
let responder: Responder;
let tmp = '';

before(async () => {
  if (skip) return;
  const b = await run('bash', [join(root, 'bench', 'capacity', 'build-loadgen.sh')], { timeoutMs: 120_000 });
  // LOADGEN_BIN: run another build (e.g. with sanitizers) through the same checks.
  bin = process.env.LOADGEN_BIN ?? b.stdout.trim().split('\n').pop()!;
  responder = await startResponder();
  tmp = mkdtempSync(join(tmpdir(), 'rb-loadgen-'));
});

after(async () => {
  await responder?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

async function loadgen(args: string[]): Promise<LoadgenResult> {
  const r = await run(bin, ['--server', `127.0.0.1:${responder.port}`, ...args], { timeoutMs: 30_000 });
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 1, `one JSON line expected:\n${r.stdout}`);
  if (process.env.LOADGEN_DEBUG) console.log(lines[0]);
  return JSON.parse(lines[0]!) as LoadgenResult;
}

const common = ['--duration', '1', '--procs', '2', '--sockets', '4', '--warmup-ms', '200', '--drain-ms', '300'];

test('counts every request at 2000/s, measures rtt, and the xleave flows measure T3b - T3true', { skip }, async () => {
  responder.dropEvery = 0;
  const r = await loadgen(['--rate', '2000', '--xleave-flows', '2', '--xleave-rate', '50', ...common]);
  assert.ok(Math.abs(r.sent - 2000) <= 100, `sent ${r.sent}`);
  assert.equal(r.received, r.sent);
  assert.equal(r.lossRatio, 0);
  assert.equal(r.kod, 0);
  assert.equal(r.bad, 0);
  assert.equal(r.clientDrops, 0);
  assert.ok(r.rttP50Us !== null && r.rttP50Us > 0, `rttP50Us ${r.rttP50Us}`);
  assert.ok(r.rttP99Us !== null && r.rttP99Us >= r.rttP50Us);
  assert.ok(r.achievedRate > 1900 && r.achievedRate < 2100, `achievedRate ${r.achievedRate}`);
  // 2 flows x 50 requests/s, a pair every two requests: ~50 pairs in the counted second.
  assert.ok(r.xleave.pairs >= 20, `pairs ${r.xleave.pairs}`);
  assert.ok(Math.abs(r.xleave.errMeanUs! + 5) < 0.01, `errMeanUs ${r.xleave.errMeanUs}`);
  assert.ok(Math.abs(r.xleave.errAbsP50Us! - 5) < 0.01, `errAbsP50Us ${r.xleave.errAbsP50Us}`);
  assert.ok(r.cpuUserS + r.cpuSysS >= 0);
});

test('a responder dropping every 10th request gives lossRatio 0.1', { skip }, async () => {
  responder.dropEvery = 10;
  try {
    const r = await loadgen(['--rate', '2000', '--xleave-flows', '0', ...common]);
    assert.ok(Math.abs(r.sent - 2000) <= 100, `sent ${r.sent}`);
    assert.ok(Math.abs(r.lossRatio - 0.1) <= 0.01, `lossRatio ${r.lossRatio}`);
    assert.equal(r.bad, 0);
    assert.equal(r.clientDrops, 0);
  } finally {
    responder.dropEvery = 0;
  }
});

test('NTS packet files: answers matched by Unique Identifier, NAKs counted as KoD NTSN', { skip }, async () => {
  const parts: Buffer[] = [];
  for (let i = 0; i < 100; i++) {
    const p = Buffer.alloc(48 + 36 + 104);
    p[0] = 0x23;
    p.writeBigUInt64BE(0x1234_5678_0000_0000n + BigInt(i), 40);
    p.writeUInt16BE(EF_UNIQUE_ID, 48);
    p.writeUInt16BE(36, 50);
    for (let j = 0; j < 32; j++) p[52 + j] = (i * 31 + j * 7 + 1) & 0xff;
    p.writeUInt16BE(0x0204, 84); // a cookie-sized field, as real NTS requests carry
    p.writeUInt16BE(104, 86);
    const len = Buffer.alloc(2);
    len.writeUInt16BE(p.length);
    parts.push(len, p);
  }
  const file = join(tmp, 'nts.bin');
  writeFileSync(file, Buffer.concat(parts));
  responder.nakEvery = 5;
  try {
    const r = await loadgen(['--rate', '2000', '--xleave-flows', '0', '--packets', file, ...common]);
    assert.ok(Math.abs(r.sent - 2000) <= 100, `sent ${r.sent}`);
    assert.equal(r.lossRatio, 0);
    assert.equal(r.received + r.kod, r.sent);
    assert.equal(r.kodByCode.NTSN, r.kod);
    assert.ok(Math.abs(r.kod / r.sent - 0.2) <= 0.02, `kod ${r.kod} of ${r.sent}`);
    assert.equal(r.bad, 0);
    assert.ok(r.rttP50Us !== null && r.rttP50Us > 0);
  } finally {
    responder.nakEvery = 0;
  }
});

test('bad arguments: exit 2 with a message on stderr', { skip }, async () => {
  const bad: Array<[string[], RegExp]> = [
    [['--rate', '100', '--duration', '1'], /--server, --rate and --duration are required/],
    [['--server', '127.0.0.1:123', '--rate', '0', '--duration', '1'], /--rate/],
    [['--server', 'localhost:123', '--rate', '10', '--duration', '1'], /not a numeric/],
    [['--server', '127.0.0.1:123', '--rate', '10', '--duration', '1', '--procs', '0'], /--procs/],
    [['--server', '127.0.0.1:123', '--rate', '10', '--duration', '1', '--frobnicate'], /unknown option/],
    [['--server', '127.0.0.1:123', '--rate', '10', '--duration', '1', '--packets', join(tmp, 'none')], /--packets/],
  ];
  for (const [args, message] of bad) {
    const r = await run(bin, args, { check: false, timeoutMs: 10_000 });
    assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code}`);
    assert.match(r.stderr, message);
    assert.equal(r.stdout, '');
  }
});
