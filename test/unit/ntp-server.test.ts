import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clientRequestPacket } from '../support/ntp-packets.js';
import { NtpServer } from '../../src/ntp/server.js';
import { decodePacket, encodePacket, type NtpPacket } from '../../src/ntp/packet.js';
import type { ReferenceState } from '../../src/engine/types.js';
import { instantToNtp64, NS_PER_S } from '../../src/time/ntp-time.js';
import { refIdFromAscii } from '../../src/ntp/refid.js';

const T0 = 1_750_000_000n * NS_PER_S;
const SYNCED: ReferenceState = {
  synchronized: true,
  leap: 1,
  stratum: 2,
  refId: 0xc0000201,
  refTime: T0 - 30n * NS_PER_S,
  rootDelay: 0.0125,
  rootDispersion: 0.0031,
  precision: -23,
};
const UNSYNCED: ReferenceState = { ...SYNCED, synchronized: false, leap: 0, stratum: 3 };

const request = clientRequestPacket;

function server(over: Partial<ConstructorParameters<typeof NtpServer>[0]> = {}): NtpServer {
  return new NtpServer({ clientLogLimit: 1000, access: () => true, random: () => 0.5, ...over });
}

const FROM = { address: '198.51.100.7', port: 40123 };

function answer(s: NtpServer, req: NtpPacket | Uint8Array, rx: bigint, tx: bigint, ref = SYNCED, from = FROM) {
  const data = req instanceof Uint8Array ? req : encodePacket(req);
  const out = s.handleRequest(data, from, rx, tx, ref);
  if (!out) return undefined;
  const d = decodePacket(out.data);
  assert.ok(d.ok);
  return { out, pkt: d.packet };
}

test('answers a mode 3 request with the reference state', () => {
  const s = server();
  const rx = T0 + 123_456_789n;
  const tx = rx + 20_000n;
  const r = answer(s, request(), rx, tx)!;
  assert.equal(r.out.socket, 'server');
  assert.deepEqual(r.out.to, FROM);
  assert.equal(r.out.data.length, 48);
  const p = r.pkt;
  assert.equal(p.mode, 4);
  assert.equal(p.version, 4);
  assert.equal(p.leap, 1);
  assert.equal(p.stratum, 2);
  assert.equal(p.poll, 6);
  assert.equal(p.precision, -23);
  assert.equal(p.refId, 0xc0000201);
  assert.ok(Math.abs(p.rootDelay - 0.0125) < 2e-5);
  assert.ok(Math.abs(p.rootDispersion - 0.0031) < 2e-5);
  assert.equal(p.refTime, instantToNtp64(SYNCED.refTime));
  assert.equal(p.origin, 0x1234_5678_9abc_def0n);
  assert.equal(p.receive, instantToNtp64(rx));
  assert.equal(p.transmit, instantToNtp64(tx));
  assert.equal(s.stats().ntpPacketsReceived, 1);
  assert.equal(s.stats().ntpPacketsDropped, 0);
});

test('unsynchronised: LI=3, stratum 0, refid 0, root delay/dispersion 1 s (as chrony)', () => {
  const s = server();
  const p = answer(s, request(), T0, T0 + 1000n, UNSYNCED)!.pkt;
  assert.equal(p.leap, 3);
  assert.equal(p.stratum, 0);
  assert.equal(p.refId, 0);
  assert.equal(p.refTime, 0n);
  assert.equal(p.rootDelay, 1);
  assert.equal(p.rootDispersion, 1);
  // Synchronised but with stratum 16 (e.g. a bad state) also goes out as stratum 0.
  const p16 = answer(s, request(), T0, T0 + 1000n, { ...SYNCED, stratum: 16 })!.pkt;
  assert.equal(p16.stratum, 0);
});

test('version is echoed for 1..4; NTPv1 mode 0 from a non-123 port is answered', () => {
  const s = server();
  for (const v of [1, 2, 3, 4]) {
    const p = answer(s, request({ version: v }), T0, T0 + 1n)!.pkt;
    assert.equal(p.version, v);
    assert.equal(p.mode, 4);
  }
  const v1 = answer(s, request({ version: 1, mode: 0 }), T0, T0 + 1n)!.pkt;
  assert.equal(v1.mode, 4);
  assert.equal(
    answer(s, request({ version: 1, mode: 0 }), T0, T0 + 1n, SYNCED, { address: '192.0.2.9', port: 123 }),
    undefined,
  );
  assert.equal(s.stats().malformedDropped['mode'], 1);
});

test('drops non-client modes and malformed packets with per-reason counters', () => {
  const s = server();
  for (const mode of [1, 2, 4, 5]) assert.equal(answer(s, request({ mode }), T0, T0), undefined);
  const m6 = new Uint8Array(12);
  m6[0] = (2 << 3) | 6;
  assert.equal(s.handleRequest(m6, FROM, T0, T0, SYNCED), undefined);
  const m7 = new Uint8Array(48);
  m7[0] = (2 << 3) | 7;
  assert.equal(s.handleRequest(m7, FROM, T0, T0, SYNCED), undefined);
  assert.equal(s.handleRequest(new Uint8Array(20).fill(0x23), FROM, T0, T0, SYNCED), undefined);
  const v5 = encodePacket(request());
  v5[0] = (5 << 3) | 3;
  assert.equal(s.handleRequest(v5, FROM, T0, T0, SYNCED), undefined);
  const badEf = new Uint8Array(48 + 32);
  badEf.set(encodePacket(request()));
  badEf[51] = 5;
  assert.equal(s.handleRequest(badEf, FROM, T0, T0, SYNCED), undefined);
  const st = s.stats();
  assert.deepEqual(st.malformedDropped, { mode: 6, short: 1, version: 1, 'extension-length': 1 });
  assert.equal(st.ntpPacketsDropped, 9);
  assert.equal(st.ntpPacketsReceived, 9);
});

test('requests with a MAC, crypto-NAK or NTS fields are dropped (no keys/NTS)', () => {
  const s = server();
  assert.equal(answer(s, request({ mac: { keyId: 1, digest: new Uint8Array(16) } }), T0, T0), undefined);
  assert.equal(answer(s, request({ mac: { keyId: 0, digest: new Uint8Array(0) } }), T0, T0), undefined);
  assert.equal(answer(s, request({ extensions: [{ type: 0x0104, body: new Uint8Array(32) }] }), T0, T0), undefined);
  assert.equal(s.stats().malformedDropped['auth'], 3);
  assert.equal(s.stats().ntpAuthPacketsReceived, 3);
  assert.equal(s.clients(T0)[0]!.ntpDrops, 3);
});

test('no amplification: the answer is never longer than the request', () => {
  const s = server();
  let seed = 7;
  const rnd = (): number => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed / 4294967296;
  };
  let answered = 0;
  for (let i = 0; i < 3000; i++) {
    const nef = Math.floor(rnd() * 4);
    const req = request({
      version: 1 + Math.floor(rnd() * 4),
      extensions: Array.from({ length: nef }, () => ({
        type: 0x2000 + Math.floor(rnd() * 100),
        body: new Uint8Array(12 + 4 * Math.floor(rnd() * 60)),
      })),
    });
    if (req.version < 4) req.extensions = [];
    const data = encodePacket(req);
    // Occasionally truncate or corrupt it.
    const bytes = rnd() < 0.3 ? data.slice(0, Math.floor(rnd() * data.length)) : data;
    if (rnd() < 0.2 && bytes.length > 60) bytes[50] = Math.floor(rnd() * 256);
    const out = s.handleRequest(bytes, { address: `10.0.${i >> 8}.${i & 255}`, port: 1000 + i }, T0, T0, SYNCED);
    if (out) {
      answered++;
      assert.ok(out.data.length <= bytes.length, `${out.data.length} > ${bytes.length}`);
      assert.equal(out.data.length, 48);
    }
  }
  assert.ok(answered > 1000);
});

test('access denied is counted and not logged', () => {
  const s = server({ access: (a) => a.startsWith('10.') });
  assert.equal(answer(s, request(), T0, T0, SYNCED, { address: '192.0.2.1', port: 5 }), undefined);
  assert.ok(answer(s, request(), T0, T0, SYNCED, { address: '10.0.0.1', port: 5 }));
  const st = s.stats();
  assert.equal(st.malformedDropped['denied'], 1);
  assert.equal(st.ntpPacketsDropped, 1);
  assert.deepEqual(
    s.clients(T0).map((c) => c.address),
    ['10.0.0.1'],
  );
});

test('client log is bounded under 100k distinct addresses (LRU eviction)', () => {
  const limit = 4096;
  const s = server({ clientLogLimit: limit });
  const data = encodePacket(request());
  for (let i = 0; i < 100_000; i++) {
    const addr = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    const out = s.handleRequest(data, { address: addr, port: 123 + 1 }, T0 + BigInt(i) * 1000n, T0, SYNCED);
    assert.ok(out);
    // Keep one client busy: it must survive eviction.
    if (i % 1000 === 0) s.handleRequest(data, { address: '192.0.2.200', port: 9 }, T0 + BigInt(i) * 1000n, T0, SYNCED);
  }
  const st = s.stats();
  assert.equal(st.clientLogSizeActive, limit);
  assert.ok(st.clientLogMemory > 0);
  const clients = s.clients(T0 + 100_000_000n);
  assert.equal(clients.length, limit);
  const busy = clients.find((c) => c.address === '192.0.2.200');
  assert.ok(busy, 'recently used client survives');
  assert.equal(busy.ntpHits, 100);
  assert.ok(!clients.some((c) => c.address === '10.0.0.0'), 'oldest evicted');
  assert.equal(clients[0]!.address, '10.1.134.159'); // most recent first (i = 99999)
});

test('clients report intervals and last seen', () => {
  const s = server();
  const data = encodePacket(request());
  for (let i = 0; i < 5; i++) s.handleRequest(data, FROM, T0 + BigInt(i) * 64n * NS_PER_S, T0, SYNCED);
  const [c] = s.clients(T0 + 4n * 64n * NS_PER_S + 10n * NS_PER_S);
  assert.equal(c!.ntpHits, 5);
  assert.equal(c!.ntpInterval, 6);
  assert.equal(c!.ntpIntervalLast, 6);
  assert.equal(c!.lastNtpAgo, 10);
  const none = server({ noclientlog: true });
  none.handleRequest(data, FROM, T0, T0, SYNCED);
  assert.deepEqual(none.clients(T0), []);
});

test('interleaved server: origin = saved rx answers with the previous TX time', () => {
  const s = server();
  const rx1 = T0 + 1_000_000n;
  const tx1 = rx1 + 50_000n;
  const a1 = answer(s, request({ transmit: 111n }), rx1, tx1)!;
  assert.equal(a1.pkt.origin, 111n);
  assert.ok(a1.out.txTag !== undefined);
  const kernelTx1 = tx1 + 7_000n;
  s.handleTxTimestamp(a1.out.txTag!, kernelTx1);

  // Interleaved request: origin = server's rx of previous, receive = client marker.
  const rx2 = T0 + 65n * NS_PER_S;
  const a2 = answer(s, request({ origin: a1.pkt.receive, receive: 0xabcdn, transmit: 222n }), rx2, rx2 + 50_000n)!;
  assert.equal(a2.pkt.origin, 0xabcdn);
  assert.equal(a2.pkt.receive, instantToNtp64(rx2));
  assert.equal(a2.pkt.transmit, instantToNtp64(kernelTx1));
  assert.equal(s.stats().ntpInterleavedPacketsReceived, 1);

  // A stale origin (not the last rx) gets a basic answer.
  const a3 = answer(
    s,
    request({ origin: a1.pkt.receive, receive: 0xabcen, transmit: 333n }),
    rx2 + NS_PER_S,
    rx2 + NS_PER_S + 1n,
  )!;
  assert.equal(a3.pkt.origin, 333n);
  assert.equal(a3.pkt.transmit, instantToNtp64(rx2 + NS_PER_S + 1n));
  // NTPv3 never interleaved.
  const a4 = answer(
    s,
    request({ version: 3, origin: a3.pkt.receive, receive: 5n, transmit: 444n }),
    rx2 + 2n * NS_PER_S,
    rx2 + 2n * NS_PER_S,
  )!;
  assert.equal(a4.pkt.origin, 444n);
  // noclientlog disables interleaving.
  const n = server({ noclientlog: true });
  const b1 = answer(n, request({ transmit: 1n }), rx1, tx1)!;
  assert.equal(b1.out.txTag, undefined);
  const b2 = answer(n, request({ origin: b1.pkt.receive, receive: 2n, transmit: 3n }), rx2, rx2)!;
  assert.equal(b2.pkt.origin, 3n);
  assert.equal(s.stats().ntpTimestampsHeld, 1);
});

test('KoD-looking refids are passed through only when synchronised', () => {
  const s = server();
  const p = answer(s, request(), T0, T0, { ...SYNCED, stratum: 1, refId: refIdFromAscii('GPS') })!.pkt;
  assert.equal(p.stratum, 1);
  assert.equal(p.refId, refIdFromAscii('GPS'));
});
