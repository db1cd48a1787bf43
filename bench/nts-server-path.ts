/**
 * NTS requests answered per second by one core through NtpServer.handleRequest with the NTS
 * ServerAuthenticator (src/nts/ntp-server.ts): cookie open, request authentication, fresh
 * cookies, answer seal. No sockets: this is the CPU cost of the server path alone.
 *
 *   npx tsc -p . && node --expose-gc dist/bench/nts-server-path.js [--seconds 2] [--clients 4096] [--only ROW]
 *   RUBIDIUM_NO_NATIVE=1 node dist/bench/nts-server-path.js     (node:crypto AES-SIV)
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof dist/bench/nts-server-path.js --seconds 5 --only mix
 *
 * Requests are a client's: NTPv4 header, Unique Identifier, one cookie (sealed by the server's
 * keys), 0..7 cookie placeholders, Authenticator sealed with the client's C2S key, empty
 * plaintext (as chrony and NTPsec send). Every client has its own address and keys (`--clients`,
 * more than any per-key cache), and the requests cycle through them. Rows: fixed placeholder
 * counts and "mix" (0..7 in turn). Before timing, every client is answered once (the first 16
 * with each placeholder count) and the answers checked with an independent AES-SIV (noble):
 * size, Unique Identifier, S2C opens the Authenticator, one fresh cookie per cookie/placeholder.
 *
 * "batch" rows run the same requests through BatchServer.process (src/ntp/server-batch.ts, the
 * daemon's socket path: RX slots in, answers written into TX slots, 64 per batch), after the
 * same independent check of its answers. With --expose-gc every row also prints the bytes
 * allocated per request: heap growth over a window with no scavenge in it (the smallest of three).
 */
import { randomBytes } from 'node:crypto';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { BatchServer, type ServerBatchIo } from '../src/ntp/server-batch.js';
import type { Endpoint, ReferenceState } from '../src/engine/types.js';
import { NtpServer } from '../src/ntp/server.js';
import { decodePacket, NTP_HEADER_LENGTH } from '../src/ntp/packet.js';
import { NS_PER_S, type Instant } from '../src/time/ntp-time.js';
import * as aeadModule from '../src/nts/aead.js';
import { AES_SIV_CMAC_256, AES_SIV_CMAC_256_NOBLE } from '../src/nts/aead.js';
import { ServerCookieKeys } from '../src/nts/cookies.js';
import { NtsServerAuthenticator } from '../src/nts/ntp-server.js';
import {
  EF_NTS_AUTH_AND_EEF,
  EF_NTS_COOKIE,
  EF_NTS_COOKIE_PLACEHOLDER,
  EF_NTS_UNIQUE_IDENTIFIER,
  buildAuthEf,
  concatBytes,
  encodeEf,
  locateEfs,
  parseAuthBody,
  parseEfList,
} from '../src/nts/nts-ef.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1]! : def;
}
const seconds = Number(arg('seconds', '2'));
const clients = Number(arg('clients', '4096'));
const only = arg('only', '');

const T0: Instant = 1_750_000_000n * NS_PER_S;
const SYNCED: ReferenceState = {
  synchronized: true,
  leap: 0,
  stratum: 2,
  refId: 0xc0000201,
  refTime: T0 - 30n * NS_PER_S,
  rootDelay: 0.0125,
  rootDispersion: 0.0031,
  precision: -23,
};

const rnd = (n: number): Uint8Array => new Uint8Array(randomBytes(n));

interface Client {
  from: Endpoint;
  c2s: Uint8Array;
  s2c: Uint8Array;
  /** One request per placeholder count 0..7. */
  requests: Uint8Array[];
}

const keys = new ServerCookieKeys(rnd);
const auth = new NtsServerAuthenticator(keys, rnd);
const server = new NtpServer({ clientLogLimit: 16384, access: () => true, random: () => 0.5, auth: [auth] });

function request(c: { c2s: Uint8Array; s2c: Uint8Array }, placeholders: number): Uint8Array {
  const header = new Uint8Array(NTP_HEADER_LENGTH);
  header[0] = (4 << 3) | 3;
  header[2] = 6;
  header[3] = 0xe9;
  header.set(rnd(8), 40);
  const cookie = keys.seal({ aead: 15, c2s: c.c2s, s2c: c.s2c });
  const parts = [header, encodeEf(EF_NTS_UNIQUE_IDENTIFIER, rnd(32)), encodeEf(EF_NTS_COOKIE, cookie)];
  for (let i = 0; i < placeholders; i++) parts.push(encodeEf(EF_NTS_COOKIE_PLACEHOLDER, new Uint8Array(cookie.length)));
  const ad = concatBytes(parts);
  return concatBytes([ad, buildAuthEf(AES_SIV_CMAC_256_NOBLE, c.c2s, rnd(16), ad, new Uint8Array(0))]);
}

const all: Client[] = [];
for (let i = 0; i < clients; i++) {
  const c = { c2s: rnd(32), s2c: rnd(32) };
  const from = { address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, port: 40000 + (i % 20000) };
  all.push({ ...c, from, requests: Array.from({ length: 8 }, (_, p) => request(c, p)) });
}

let rx = T0;

/** Checks one answer independently; throws on anything wrong. */
function checkAnswer(c: Client, placeholders: number, req: Uint8Array, data: Uint8Array): void {
  if (data.length > req.length) throw new Error('answer longer than request');
  const dec = decodePacket(data);
  if (!dec.ok || dec.packet.stratum === 0) throw new Error('answer undecodable or KoD');
  if (Buffer.compare(data.subarray(24, 32), req.subarray(40, 48)) !== 0) throw new Error('origin');
  const efs = locateEfs(dec.packet);
  const a = efs[efs.length - 1]!;
  if (a.type !== EF_NTS_AUTH_AND_EEF || efs[0]!.type !== EF_NTS_UNIQUE_IDENTIFIER) throw new Error('answer layout');
  const rdec = decodePacket(req);
  if (!rdec.ok) throw new Error('request undecodable');
  const uid = locateEfs(rdec.packet)[0]!;
  if (Buffer.compare(efs[0]!.body, uid.body) !== 0) throw new Error('unique identifier not echoed');
  const parts = parseAuthBody(AES_SIV_CMAC_256_NOBLE, a.body)!;
  const plain = AES_SIV_CMAC_256_NOBLE.open(c.s2c, parts.nonce, parts.ciphertext, [data.subarray(0, a.start)]);
  if (!plain) throw new Error('answer does not open with S2C');
  const cookies = parseEfList(plain)!.filter((e) => e.type === EF_NTS_COOKIE);
  if (cookies.length !== placeholders + 1)
    throw new Error(`${cookies.length} cookies for ${placeholders} placeholders`);
  for (const ck of cookies) {
    const opened = keys.open(ck.body);
    if (!opened || Buffer.compare(opened.s2c, c.s2c) !== 0) throw new Error('fresh cookie does not open');
  }
}

/** Answers one request through handleRequest and checks it. */
function check(c: Client, placeholders: number): void {
  rx += 1_000_000n;
  const req = c.requests[placeholders]!;
  const out = server.handleRequest(req, c.from, rx, rx + 50_000n, SYNCED);
  if (!out) throw new Error('request dropped');
  checkAnswer(c, placeholders, req, out.data);
}

// Every client once (placeholder counts in turn), the first 16 with every count.
all.forEach((c, i) => {
  for (let p = 0; p < 8; p++) if (i < 16 || p === i % 8) check(c, p);
});
let checked = all.length + Math.min(16, all.length) * 7;

// ---- BatchServer: the daemon's slot path ----
const BATCH = 64;
const SLOT = 1104;
const T0_S = Number(T0 / NS_PER_S);
class BenchIo implements ServerBatchIo {
  readonly batch = BATCH;
  readonly slotBytes = SLOT;
  rxData: Uint8Array = new Uint8Array(BATCH * SLOT);
  rxMeta: Int32Array = new Int32Array(BATCH * 8);
  readonly rxTime = new Float64Array(BATCH * 2);
  readonly txData = new Uint8Array(BATCH * SLOT);
  readonly txMeta = new Int32Array(BATCH * 8);
  readonly txId = new Int32Array(BATCH).fill(-1);
}
const batchServer = new NtpServer({ clientLogLimit: 16384, access: () => true, random: () => 0.5, auth: [auth] });
let batchNowNs = 0;
const bs = new BatchServer(batchServer, { now: () => BigInt(T0_S) * NS_PER_S + BigInt(batchNowNs) });
const io = new BenchIo();
/** Prebuilt RX slots and metadata per batch: request `pick(i)` of client i % clients. */
interface Prepared {
  data: Uint8Array[];
  meta: Int32Array[];
}
function prepare(pick: (i: number) => Uint8Array): Prepared {
  const batches = Math.ceil(clients / BATCH);
  const out: Prepared = { data: [], meta: [] };
  for (let b = 0; b < batches; b++) {
    const d = new Uint8Array(BATCH * SLOT);
    const m = new Int32Array(BATCH * 8);
    for (let k = 0; k < BATCH; k++) {
      const i = b * BATCH + k;
      const req = pick(i);
      d.set(req, k * SLOT);
      const ci = i % clients;
      m.set([req.length, 4, 40000 + (ci % 20000), (10 << 24) | ci, 0, 0, 0, 0], k * 8);
    }
    out.data.push(d);
    out.meta.push(m);
  }
  return out;
}
let batchIndex = 0;
/** One batch: returns answers. RX times advance 1 µs per request. */
function runBatch(p: Prepared): number {
  const b = batchIndex++ % p.data.length;
  io.rxData = p.data[b]!;
  io.rxMeta = p.meta[b]!;
  for (let k = 0; k < BATCH; k++) {
    batchNowNs += 1000;
    io.rxTime[2 * k] = T0_S + Math.floor(batchNowNs / 1e9);
    io.rxTime[2 * k + 1] = batchNowNs % 1e9;
  }
  const n = bs.process(io, BATCH, 0, SYNCED);
  bs.sent(io, n);
  return n;
}
// Check the batch path's answers the same way.
for (let p = 0; p < 8; p++) {
  const prepared = prepare((i) => all[i % clients]!.requests[p]!);
  batchIndex = 0;
  for (let b = 0; b < Math.min(2, prepared.data.length); b++) {
    const n = runBatch(prepared);
    if (n !== BATCH) throw new Error(`batch: ${BATCH - n} requests dropped`);
    for (let k = 0; k < n; k++) {
      const len = io.txMeta[k * 8]!;
      checkAnswer(
        all[(b * BATCH + k) % clients]!,
        p,
        all[(b * BATCH + k) % clients]!.requests[p]!,
        io.txData.slice(k * SLOT, k * SLOT + len),
      );
      checked++;
    }
  }
}

const gc = (globalThis as { gc?: () => void }).gc;
let scavenges = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    if ((e as unknown as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR)
      scavenges++;
  }
}).observe({ entryTypes: ['gc'] });
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 50));

/** Requests/s of `run` (which answers `per` requests a call), then bytes per request. */
async function measure(run: () => void, per: number): Promise<{ rate: number; bytes: number }> {
  for (let w = 0; w < 20_000 / per; w++) run();
  let n = 0;
  const start = process.hrtime.bigint();
  const end = start + BigInt(Math.round(seconds * 1e9));
  let now = start;
  while (now < end) {
    for (let k = 0; k < 256 / per; k++) run();
    n += 256;
    now = process.hrtime.bigint();
  }
  const rate = n / (Number(now - start) / 1e9);
  let bytes = NaN;
  if (gc) {
    const window = Math.ceil(4096 / per);
    for (let attempt = 0, clean = 0; attempt < 20 && clean < 3; attempt++) {
      gc();
      await settle();
      const before = scavenges;
      const h0 = process.memoryUsage().heapUsed;
      for (let k = 0; k < window; k++) run();
      const h1 = process.memoryUsage().heapUsed;
      await settle();
      if (scavenges !== before) continue;
      clean++;
      const b = Math.max(0, h1 - h0) / (window * per);
      if (!(b >= bytes)) bytes = b;
    }
  }
  return { rate, bytes };
}

const backend = (aeadModule as Record<string, unknown>)['AES_SIV_CMAC_256_BACKEND'] ?? 'node:crypto';
console.log(
  `NTS server path, ${clients} clients, AEAD 15 on ${String(backend)}; answers checked: ${checked}; ` +
    `AES_SIV_CMAC_256 ${AES_SIV_CMAC_256 === AES_SIV_CMAC_256_NOBLE ? 'noble' : 'default'}`,
);
console.log('row                        requests/s per core   ns/request  bytes/request');
const picks: [string, (i: number) => Uint8Array][] = [
  ['placeholders 0', (i) => all[i % clients]!.requests[0]!],
  ['placeholders 3', (i) => all[i % clients]!.requests[3]!],
  ['placeholders 7', (i) => all[i % clients]!.requests[7]!],
  ['mix 0..7', (i) => all[i % clients]!.requests[(i >>> 3) % 8]!],
];
const rows: [string, () => [() => void, number]][] = [];
for (const [label, pick] of picks) {
  rows.push([
    `handleRequest ${label}`,
    () => {
      let i = 0;
      return [
        () => {
          rx += 1_000n;
          if (!server.handleRequest(pick(i), all[i % clients]!.from, rx, rx + 50_000n, SYNCED))
            throw new Error('dropped');
          i++;
        },
        1,
      ];
    },
  ]);
}
for (const [label, pick] of picks) {
  rows.push([
    `batch ${label}`,
    () => {
      const prepared = prepare(pick);
      return [
        () => {
          if (runBatch(prepared) !== BATCH) throw new Error('dropped');
        },
        BATCH,
      ];
    },
  ]);
}
for (const [label, make] of rows) {
  if (only && !label.includes(only)) continue;
  const [run, per] = make();
  const r = await measure(run, per);
  console.log(
    `${label.padEnd(28)} ${Math.round(r.rate).toString().padStart(17)} ${(1e9 / r.rate).toFixed(0).padStart(12)}` +
      ` ${(Number.isNaN(r.bytes) ? 'n/a' : r.bytes.toFixed(0)).padStart(14)}`,
  );
}
