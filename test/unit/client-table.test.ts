/**
 * The server's client table (src/ntp/client-table.ts): bounded under a flood of distinct source
 * addresses in entries and in heap, LRU eviction, TX tags that die with their row, and the
 * `serverstats` memory figure close to the measured heap.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ClientTable, setNtpWords, writeNtpTime } from '../../src/ntp/client-table.js';
import { Prng } from '../../src/sim/prng.js';
import { formatAddressWords } from '../../src/ntp/ipaddr.js';
import { NtpServer } from '../../src/ntp/server.js';
import { clientLogEntries } from '../../src/config/engine-options.js';
import { decodePacket } from '../../src/ntp/packet.js';
import { clientRequestBytes } from '../support/ntp-packets.js';
import { NS_PER_S, instantToNtp64 } from '../../src/time/ntp-time.js';
import type { ReferenceState } from '../../src/engine/types.js';

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

v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function heap(): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** Flat strings, as the socket layer delivers them; half IPv4, half IPv6. */
function spoofed(i: number): string {
  const s =
    i % 2
      ? `10.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`
      : `2001:db8:${(i >>> 16).toString(16)}::${(i & 0xffff).toString(16)}:9`;
  return Buffer.from(s, 'latin1').toString('latin1');
}

test('a flood of 300,000 distinct spoofed addresses: the table never exceeds its limit and the heap stays within the limit × 128 bytes', () => {
  const limit = clientLogEntries(1920 * 4096); // 65536 entries (7.5 MiB in chrony's terms)
  assert.equal(limit, 65536);
  const req = clientRequestBytes();
  const base = heap();
  const server = new NtpServer({
    clientLogLimit: limit,
    access: () => true,
    random: () => 0.99,
    ratelimit: { interval: 3, burst: 8, leak: 2, kod: 0 },
  });
  let atFull = 0;
  for (let i = 0; i < 300_000; i++) {
    const rx = T0 + BigInt(i) * 1000n;
    assert.ok(server.handleRequest(req, { address: spoofed(i), port: 123 }, rx, rx, REF), 'first request answered');
    if (i % 5000 === 0) assert.ok(server.stats().clientLogSizeActive <= limit);
    if (i === limit) atFull = heap() - base;
  }
  const grown = heap() - base;
  const stats = server.stats();
  assert.equal(stats.clientLogSizeActive, limit);
  assert.equal(stats.clientLogRecordsDropped, 300_000 - limit); // chronyc's "Client log records dropped"
  // Derived bound: 94 bytes of columns + 8 of hash index per entry (no strings, no objects) is
  // under 128; nothing else may grow with the flood.
  assert.ok(grown < limit * 128, `heap grew ${grown} bytes for ${limit} entries`);
  assert.ok(grown < atFull * 1.25 + 1_000_000, `grew ${atFull} at full, ${grown} after 300k addresses`);
  // serverstats' figure is the real thing, within 35%.
  const est = stats.clientLogMemory;
  assert.ok(est > grown * 0.65 && est < grown * 1.35, `estimate ${est}, measured ${grown}`);
  // The real client, once seen, is still in the table after its last request and still answered.
  const real = { address: '192.0.2.77', port: 40000 };
  assert.ok(server.handleRequest(req, real, T0 + 10n * NS_PER_S, T0 + 10n * NS_PER_S, REF));
  assert.equal(server.clients(T0 + 10n * NS_PER_S)[0]!.address, '192.0.2.77');
});

test('LRU: a new address evicts the least recently seen one, a returning address moves to the front', () => {
  const t = new ClientTable(3);
  const a = t.touch('a', T0, 1);
  t.touch('b', T0 + 1n, 1);
  t.touch('c', T0 + 2n, 1);
  assert.equal(t.touch('a', T0 + 3n, 1), a); // a is back in front: b is now the oldest
  t.touch('d', T0 + 4n, 1); // evicts b, reusing its row
  assert.deepEqual(
    [...t.rows()].map((r) => r.address),
    ['d', 'a', 'c'],
  );
  const rowA = [...t.rows()].find((r) => r.address === 'a')!;
  assert.equal(rowA.hits, 2);
  assert.equal(rowA.prevSeen, T0);
  assert.equal(rowA.lastSeen, T0 + 3n);
  assert.equal(t.size, 3);
});

test('a TX tag dies with its row: a late kernel timestamp never lands on the address that took the row over', () => {
  const t = new ClientTable(1);
  const s = t.touch('198.51.100.1', T0, 1);
  const tag = t.saveAnswer(s, 5n, T0 + 10n, 0);
  assert.ok(tag > 0);
  t.refineTx(tag, () => T0 + 20n);
  assert.equal(t.lastTx(s), T0 + 20n);
  const s2 = t.touch('198.51.100.2', T0 + 100n, 1); // evicts .1, same row
  assert.equal(s2, s);
  assert.equal(t.lastTx(s2), null);
  t.refineTx(tag, () => T0 + 30n); // stale tag: ignored
  assert.equal(t.lastTx(s2), null);
  t.refineTx(0, () => T0 + 30n);
  t.refineTx(-64, () => T0 + 30n);
  t.refineTx(2 ** 30, () => T0 + 30n);
  assert.equal(t.lastTx(s2), null);
});

test("interleaved mode survives the compact table: the second request of a client gets the first answer's TX time", () => {
  const server = new NtpServer({ clientLogLimit: 16, access: () => true, random: () => 0.5 });
  const from = { address: '198.51.100.9', port: 123 };
  const first = server.handleRequest(clientRequestBytes(), from, T0, T0 + 1000n, REF)!;
  const p1 = decodePacket(first.data);
  assert.ok(p1.ok && first.txTag);
  server.handleTxTimestamp(first.txTag!, T0 + 5000n); // the kernel's TX time of answer 1
  const second = server.handleRequest(
    clientRequestBytes({ origin: p1.packet.receive, receive: 1n, transmit: 2n }),
    from,
    T0 + NS_PER_S,
    T0 + NS_PER_S,
    REF,
  )!;
  const p2 = decodePacket(second.data);
  assert.ok(p2.ok);
  assert.equal(p2.packet.origin, 1n);
  assert.equal(server.stats().ntpInterleavedPacketsReceived, 1);
  const expected = decodePacket(
    server.handleRequest(clientRequestBytes(), { address: '198.51.100.10', port: 123 }, T0 + 5000n, T0 + 5000n, REF)!
      .data,
  );
  assert.ok(expected.ok);
  assert.equal(p2.packet.transmit, expected.packet.transmit);
});

test('noclientlog: no client is listed and no interleaved answer, but ratelimit still works', () => {
  const server = new NtpServer({
    clientLogLimit: 16,
    noclientlog: true,
    access: () => true,
    random: () => 0.99,
    ratelimit: { interval: 6, burst: 2, leak: 2, kod: 0 },
  });
  const from = { address: '198.51.100.9', port: 123 };
  const got = [0, 1, 2].map((i) => server.handleRequest(clientRequestBytes(), from, T0 + BigInt(i), T0, REF));
  assert.deepEqual(
    got.map((g) => g !== undefined),
    [true, true, false],
  );
  assert.equal(got[0]!.txTag, undefined);
  assert.deepEqual(server.clients(T0), []);
  assert.equal(server.stats().clientLogSizeActive, 0);
});

test('the table limit is checked', () => {
  assert.throws(() => new ClientTable(0), RangeError);
  assert.throws(() => new ClientTable(2 ** 24 + 1), RangeError);
});

test('the hash index against a model LRU: 200,000 random touches of 300 addresses (IPv4, IPv6, names) in a table of 64', () => {
  const r = new Prng(11);
  const pool: string[] = [];
  for (let i = 0; i < 300; i++) {
    const w = r.nextU32();
    pool.push(
      i % 3 === 0
        ? formatAddressWords(4, w, 0, 0, 0)
        : i % 3 === 1
          ? formatAddressWords(6, 0x20010db8, 0, w & 0xff, w) // colliding-looking keys, few bits apart
          : `node-${i}`,
    );
  }
  const t = new ClientTable(64, 1);
  const model = new Map<string, number>(); // address → hits, insertion order = least recent first
  let evicted = 0;
  for (let k = 0; k < 200_000; k++) {
    const a = pool[r.nextU32() % (k % 1000 < 500 ? 80 : 300)]!; // phases of locality
    t.touch(a, T0 + BigInt(k), 1);
    const hits = model.get(a);
    model.delete(a);
    if (hits === undefined && model.size >= 64) {
      model.delete(model.keys().next().value!);
      evicted++;
    }
    model.set(a, (hits ?? 0) + 1);
    if (k % 10_007 === 0 || k === 199_999) {
      const rows = [...t.rows()];
      assert.deepEqual(
        rows.map((x) => [x.address, x.hits]),
        [...model].reverse(),
      );
    }
  }
  assert.equal(t.size, 64);
  assert.equal(t.evicted, evicted);
});

test('touch(address) and touchWords give the same rows; times survive an epoch rebase after 200 days', () => {
  const a = new ClientTable(16, 5);
  const b = new ClientTable(16, 5);
  const day = 86_400n * NS_PER_S;
  const times = [T0 + 123n, T0 + 999_999_999n, T0 + NS_PER_S, T0 + 200n * day + 7n, T0 + 400n * day + 1n];
  const words = Int32Array.of(0xc0000201 | 0, 0, 0, 0, 0x20010db8, 0, 0, 9);
  for (const rx of times) {
    const time = Float64Array.of(Number(rx / NS_PER_S), Number(rx % NS_PER_S));
    assert.equal(a.touch('192.0.2.1', rx, 4), b.touchWords(4, words, 0, time, 0, 4));
    assert.equal(a.touch('2001:db8::9', rx, 4), b.touchWords(6, words, 4, time, 0, 4));
  }
  assert.deepEqual([...a.rows()], [...b.rows()]);
  const row = [...a.rows()].find((x) => x.address === '192.0.2.1')!;
  // Times more than 2^53 ns (104 days) from the epoch keep their nanoseconds to within a few.
  const near = (x: bigint, y: bigint): boolean => (x > y ? x - y : y - x) <= 4n;
  assert.ok(near(row.firstSeen, T0 + 123n), String(row.firstSeen));
  assert.ok(near(row.prevSeen!, T0 + 200n * day + 7n), String(row.prevSeen));
  assert.equal(row.lastSeen, T0 + 400n * day + 1n);
  // The TX time saved for interleaved mode keeps its nanoseconds.
  const slot = a.touch('192.0.2.1', T0 + 400n * day + 5n, 4);
  const tag = a.saveAnswer(slot, 1n, T0 + 400n * day + 123_456_789n, 0);
  assert.equal(a.lastTx(slot), T0 + 400n * day + 123_456_789n);
  a.refineTxTime(tag, Number((T0 + 400n * day) / NS_PER_S), 2_000_000_001);
  assert.equal(a.lastTx(slot), T0 + 400n * day + 2n * NS_PER_S + 1n);
});

test('setNtpWords and writeNtpTime round exactly as instantToNtp64, across the 2036 era rollover', () => {
  const r = new Prng(3);
  const hi = new Uint32Array(1);
  const lo = new Uint32Array(1);
  const bytes = new Uint8Array(8);
  const era = 2_085_978_496; // 2036-02-07T06:28:16Z, NTP seconds wrap to 0
  // Nanosecond counts whose fraction lies exactly half-way (mod 5^9) below or at the rounding point.
  const ties: number[] = [];
  for (let ns = 0; ties.length < 6 && ns < 1e9; ns++) {
    const rem = (ns * 8_388_608) % 1_953_125;
    if (rem === 976_563 || rem === 976_562) ties.push(ns);
  }
  assert.ok(ties.length === 6);
  for (let k = 0; k < 100_000; k++) {
    const s = k % 2 ? era - 2 + (r.nextU32() % 4) : 1_750_000_000 + (r.nextU32() % 1000);
    const edge = [0, 1, 116, 117, 232, 233, 999_999_999, 500_000_000, ...ties];
    const ns = k < 2000 ? edge[k % edge.length]! : r.nextU32() % 1_000_000_000;
    setNtpWords(hi, lo, 0, s, ns);
    const want = instantToNtp64(BigInt(s) * NS_PER_S + BigInt(ns));
    assert.equal((BigInt(hi[0]!) << 32n) | BigInt(lo[0]!), want, `${s} s ${ns} ns`);
    writeNtpTime(bytes, 0, Float64Array.of(s, ns), 0);
    assert.equal(Buffer.from(bytes).readBigUInt64BE(0), want, `${s} s ${ns} ns`);
  }
});
