/**
 * Heap cost of the server's client table (client log + ratelimit buckets) under a flood of
 * 1,000,000 distinct source addresses, IPv4 and IPv6, with `ratelimit` on.
 *
 *   npx tsc -p . && node --expose-gc dist/bench/clientlog-memory.js [addresses]
 *
 * For the default `clientloglimit` (524288 bytes) and for a limit large enough to hold every
 * address, it prints the entries held, the measured bytes per entry (V8 heap + ArrayBuffers,
 * after a full GC, minus the empty server) and the total, next to the server's own estimate
 * (`serverstats`' client log memory). The addresses arrive as strings (the per-datagram path);
 * the table keeps them as words (family + 4 × 32 bits), so the strings die with their requests
 * and the batched path (src/ntp/server-batch.ts) fills the same rows.
 */
import { NtpServer } from '../src/ntp/server.js';
import { clientLogEntries } from '../src/config/engine-options.js';
import { encodePacket } from '../src/ntp/packet.js';
import type { ReferenceState } from '../src/engine/types.js';
import { NS_PER_S } from '../src/time/ntp-time.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  console.error('run with node --expose-gc');
  process.exit(2);
}

const T0 = 1_750_000_000n * NS_PER_S;
const REF: ReferenceState = {
  synchronized: true,
  leap: 0,
  stratum: 2,
  refId: 0xc0000201,
  refTime: T0,
  rootDelay: 0.01,
  rootDispersion: 0.001,
  precision: -23,
};
const REQUEST = encodePacket({
  leap: 0,
  version: 4,
  mode: 3,
  stratum: 0,
  poll: 6,
  precision: 0,
  rootDelay: 0,
  rootDispersion: 0,
  refId: 0,
  refTime: 0n,
  origin: 0n,
  receive: 0n,
  transmit: 0x1234_5678_9abc_def0n,
  extensions: [],
});

/**
 * The i-th source address, as a flat string like those the socket layer hands over (a template
 * literal of 13+ characters would be a V8 cons string, which costs more than a real datagram's).
 */
function address(family: 4 | 6, i: number): string {
  const s =
    family === 4
      ? `10.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`
      : `2001:db8:${(i >>> 16).toString(16)}::${(i & 0xffff).toString(16)}:1`;
  return Buffer.from(s, 'latin1').toString('latin1');
}

function used(): number {
  gc!();
  gc!();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

interface Result {
  family: 4 | 6;
  limit: number;
  held: number;
  bytesPerEntry: number;
  total: number;
  estimate: number;
}

function run(family: 4 | 6, limit: number, n: number): Result {
  const server = new NtpServer({
    clientLogLimit: limit,
    access: () => true,
    random: Math.random,
    ratelimit: { interval: 3, burst: 8, leak: 2, kod: 0 },
  });
  const empty = used();
  for (let i = 0; i < n; i++) {
    const rx = T0 + BigInt(i) * 1000n;
    server.handleRequest(REQUEST, { address: address(family, i), port: 123 }, rx, rx, REF);
  }
  const after = used();
  const stats = server.stats();
  const held = stats.clientLogSizeActive;
  return {
    family,
    limit,
    held,
    bytesPerEntry: (after - empty) / Math.max(held, 1),
    total: after - empty,
    estimate: stats.clientLogMemory,
  };
}

const n = Number(process.argv[2] ?? 1_000_000);
// The default clientloglimit, and the smallest chrony-sized limit that holds n clients.
const bigBytes = 1920 * 2 ** Math.max(0, Math.ceil(Math.log2(n / 16)));
console.log(`${n} distinct addresses, ratelimit on (interval 3 burst 8 leak 2)`);
console.log('clientloglimit  family  entries    held      bytes/entry  total (MiB)  serverstats estimate (MiB)');
for (const bytes of [524288, bigBytes]) {
  const limit = clientLogEntries(bytes);
  for (const family of [4, 6] as const) {
    const r = run(family, limit, n);
    console.log(
      [
        String(bytes).padEnd(15),
        `IPv${r.family}`.padEnd(7),
        String(r.limit).padEnd(10),
        String(r.held).padEnd(9),
        r.bytesPerEntry.toFixed(0).padStart(11),
        (r.total / 2 ** 20).toFixed(1).padStart(12),
        (r.estimate / 2 ** 20).toFixed(1).padStart(27),
      ].join(' '),
    );
  }
}
