/**
 * Cost of answering one NTP request: BatchServer.process (src/ntp/server-batch.ts, the batched
 * socket path) against NtpServer.handleRequest (the per-datagram path), in the same process, on
 * the same plain NTPv4 requests from 10,000 client addresses (half IPv4, half IPv6) in batches
 * of 64, with no sockets: only the server's own work is measured.
 *
 *   npx tsc -p . && flock /tmp/rubidium-bench.lock \
 *     node --expose-gc --min-semi-space-size=64 --max-semi-space-size=64 dist/bench/server-path.js [requests=1000000]
 *
 * For each configuration it prints ns per request and the bytes allocated per request, measured
 * as the heap growth over a window of requests with no garbage collection in it (hence the large
 * young generation), plus the scavenges (minor GCs) seen over the whole run. handleRequest gets
 * its address strings and endpoint objects ready-made (the socket layer makes them), which
 * flatters it a little; the BatchServer reads everything from the socket buffers.
 */
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { NtpServer, type NtpServerOptions } from '../src/ntp/server.js';
import { BatchServer, type ServerBatchIo } from '../src/ntp/server-batch.js';
import { AccessTable } from '../src/ntp/access.js';
import { formatAddressWords } from '../src/ntp/ipaddr.js';
import { clientLogEntries } from '../src/config/engine-options.js';
import { encodePacket } from '../src/ntp/packet.js';
import { Prng } from '../src/sim/prng.js';
import type { Endpoint, ReferenceState } from '../src/engine/types.js';
import { NS_PER_S, type Instant } from '../src/time/ntp-time.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  console.error('run with node --expose-gc --min-semi-space-size=64 --max-semi-space-size=64');
  process.exit(2);
}

const REQUESTS = Number(process.argv[2] ?? 1_000_000);
const CLIENTS = 10_000;
const BATCH = 64;
const SLOT = 1104;
const T0_S = 1_750_000_000;
const REF: ReferenceState = {
  synchronized: true,
  leap: 0,
  stratum: 2,
  refId: 0xc0000201,
  refTime: BigInt(T0_S - 30) * NS_PER_S,
  rootDelay: 0.0125,
  rootDispersion: 0.0031,
  precision: -23,
};
const REQUEST = encodePacket({
  leap: 0,
  version: 4,
  mode: 3,
  stratum: 0,
  poll: 6,
  precision: -20,
  rootDelay: 0,
  rootDispersion: 0,
  refId: 0,
  refTime: 0n,
  origin: 0n,
  receive: 0n,
  transmit: 0x1234_5678_9abc_def0n,
  extensions: [],
});

let scavenges = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    if ((e as unknown as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR)
      scavenges++;
  }
}).observe({ entryTypes: ['gc'] });
/** GC entries reach the observer only after a timer turn. */
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 50));

/** The socket buffers of one batch; the bench points rxMeta/rxTime at the next batch's requests. */
class BenchIo implements ServerBatchIo {
  readonly batch = BATCH;
  readonly slotBytes = SLOT;
  readonly rxData = new Uint8Array(BATCH * SLOT);
  rxMeta: Int32Array = new Int32Array(BATCH * 8);
  rxTime: Float64Array = new Float64Array(BATCH * 2);
  readonly txData = new Uint8Array(BATCH * SLOT);
  readonly txMeta = new Int32Array(BATCH * 8);
  readonly txId = new Int32Array(BATCH).fill(-1);
  constructor() {
    for (let i = 0; i < BATCH; i++) this.rxData.set(REQUEST, i * SLOT);
  }
}

// The requests: client k sends request i; RX times 1 µs apart.
const prng = new Prng(42);
const words = new Int32Array(CLIENTS * 4);
const families = new Uint8Array(CLIENTS);
const endpoints: Endpoint[] = [];
for (let k = 0; k < CLIENTS; k++) {
  const v6 = k % 2 === 1;
  families[k] = v6 ? 6 : 4;
  if (v6) words.set([0x20010db8, prng.nextU32() | 0, 0, prng.nextU32() | 0], 4 * k);
  else words[4 * k] = 0x0a000000 | (prng.nextU32() & 0xffffff) | 0;
  const a = formatAddressWords(families[k]!, words[4 * k]!, words[4 * k + 1]!, words[4 * k + 2]!, words[4 * k + 3]!);
  endpoints.push({ address: Buffer.from(a, 'latin1').toString('latin1'), port: 1024 + k });
}
const batches = Math.ceil(REQUESTS / BATCH);
const metaViews: Int32Array[] = [];
const timeViews: Float64Array[] = [];
const clientOf = new Int32Array(batches * BATCH);
{
  const meta = new Int32Array(batches * BATCH * 8);
  const time = new Float64Array(batches * BATCH * 2);
  for (let i = 0; i < batches * BATCH; i++) {
    const k = prng.nextU32() % CLIENTS;
    clientOf[i] = k;
    meta.set([48, families[k]!, 1024 + k, ...words.subarray(4 * k, 4 * k + 4), 1], 8 * i);
    time[2 * i] = T0_S + Math.floor(i / 1e6);
    time[2 * i + 1] = (i % 1e6) * 1000;
  }
  for (let b = 0; b < batches; b++) {
    metaViews.push(meta.subarray(b * BATCH * 8, (b + 1) * BATCH * 8));
    timeViews.push(time.subarray(b * BATCH * 2, (b + 1) * BATCH * 2));
  }
}

function serverOptions(limitBytes: number, ratelimit: boolean): NtpServerOptions {
  const acl = new AccessTable();
  acl.add(true);
  acl.add(false, '192.0.2.0/24');
  return {
    clientLogLimit: clientLogEntries(limitBytes),
    access: (a) => acl.allowed(a),
    accessWordsAt: (f, w, o) => acl.allowedAt(f, w, o),
    random: () => 0.5,
    ...(ratelimit ? { ratelimit: { interval: -10, burst: 16, leak: 2, kod: 0 } } : {}),
  };
}

/** Runs batches [from, to) through BatchServer.process, `shiftNs` later than their RX stamps. */
function runBatch(bs: BatchServer, io: BenchIo, from: number, to: number, shiftNs: number): number {
  let answered = 0;
  for (let b = from; b < to; b++) {
    io.rxMeta = metaViews[b]!;
    io.rxTime = timeViews[b]!;
    const n = bs.process(io, BATCH, shiftNs, REF);
    bs.sent(io, n);
    answered += n;
  }
  return answered;
}

/** Runs the same requests through handleRequest. */
function runSingle(s: NtpServer, from: number, to: number, shiftNs: number): number {
  let answered = 0;
  for (let i = from * BATCH; i < to * BATCH; i++) {
    const rx: Instant = BigInt(T0_S + Math.floor(i / 1e6)) * NS_PER_S + BigInt((i % 1e6) * 1000 + shiftNs);
    if (s.handleRequest(REQUEST, endpoints[clientOf[i]!]!, rx, rx, REF)) answered++;
  }
  return answered;
}

interface Figures {
  nsPerRequest: number;
  bytesPerRequest: number;
  scavenges: number;
  answered: number;
}

/**
 * Warm-up, timed run, allocation window: each pass replays the requests (from the first batch)
 * a few seconds after the previous pass, so that every client's clock moves forward.
 */
async function measure(run: (from: number, to: number, shiftNs: number) => number): Promise<Figures> {
  const span = Math.ceil(REQUESTS / 1e6) + 1; // seconds the requests' RX stamps cover
  let pass = 0;
  const shift = (): number => pass++ * span * 1e9;
  run(0, Math.min(batches, Math.ceil(100_000 / BATCH)), shift());
  gc!();
  await settle();
  const s0 = scavenges;
  const t0 = process.hrtime.bigint();
  const answered = run(0, batches, shift());
  const t1 = process.hrtime.bigint();
  await settle();
  const timedScavenges = scavenges - s0;
  // Allocation, once the code is hot: heap growth over a window with no GC in it.
  const window = Math.min(batches, Math.ceil(8192 / BATCH));
  // The smallest of three clean windows: one-off costs (a recompiled function) are not per request.
  let bytesPerRequest = NaN;
  for (let attempt = 0, clean = 0; attempt < 20 && clean < 3; attempt++) {
    gc!();
    await settle();
    const before = scavenges;
    const h0 = process.memoryUsage().heapUsed;
    run(0, window, shift());
    const h1 = process.memoryUsage().heapUsed;
    await settle();
    if (scavenges !== before) continue;
    clean++;
    const b = Math.max(0, h1 - h0) / (window * BATCH);
    if (!(b >= bytesPerRequest)) bytesPerRequest = b;
  }
  return {
    nsPerRequest: Number(t1 - t0) / (batches * BATCH),
    bytesPerRequest,
    scavenges: timedScavenges,
    answered,
  };
}

const configs = [
  { name: 'client log holds all (16384)', bytes: 1920 * 1024, ratelimit: false },
  { name: 'client log holds all + ratelimit', bytes: 1920 * 1024, ratelimit: true },
  { name: 'default clientloglimit (4096): evicts', bytes: 524288, ratelimit: false },
];
console.log(`${batches * BATCH} plain requests from ${CLIENTS} clients, batches of ${BATCH}`);
console.log('configuration                          path           ns/request  bytes/request  scavenges  answered');
for (const c of configs) {
  // One server per path for warm-up, allocation window and timed run: the table's steady state.
  const s1 = new NtpServer(serverOptions(c.bytes, c.ratelimit));
  const singleWarm = await measure((f, t, sh) => runSingle(s1, f, t, sh));
  const s2 = new NtpServer(serverOptions(c.bytes, c.ratelimit));
  const bs = new BatchServer(s2);
  const io = new BenchIo();
  const batch = await measure((f, t, sh) => runBatch(bs, io, f, t, sh));
  for (const [path, r] of [
    ['handleRequest', singleWarm],
    ['BatchServer', batch],
  ] as const) {
    console.log(
      [
        c.name.padEnd(38),
        path.padEnd(14),
        r.nsPerRequest.toFixed(0).padStart(10),
        (Number.isNaN(r.bytesPerRequest) ? 'n/a' : r.bytesPerRequest.toFixed(1)).padStart(14),
        String(r.scavenges).padStart(10),
        String(r.answered).padStart(9),
      ].join(' '),
    );
  }
}
