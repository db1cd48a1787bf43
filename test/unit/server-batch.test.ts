/**
 * The batched server path (src/ntp/server-batch.ts) against NtpServer.handleRequest: thousands of
 * random and edge-case requests go through a BatchServer on fake socket buffers and through
 * handleRequest on a twin server built from the same options; the answers must be the same bytes
 * (with the same T3 stamp), the counters and the client reports the same. Also: the 2036 era
 * rollover, kernel TX stamps refining interleaved answers, mode 6 handed on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BatchServer, type ServerBatchIo } from '../../src/ntp/server-batch.js';
import { NtpServer, type NtpServerOptions } from '../../src/ntp/server.js';
import { AccessTable } from '../../src/ntp/access.js';
import { formatAddressWords } from '../../src/ntp/ipaddr.js';
import { decodePacket, encodePacket, MAX_PACKET_LENGTH } from '../../src/ntp/packet.js';
import { SymmetricServerAuth, signPacket } from '../../src/ntp/symmetric-auth.js';
import { parseKeysText } from '../../src/config/keys-file.js';
import { Prng } from '../../src/sim/prng.js';
import type { Endpoint, ReferenceState, Transmit } from '../../src/engine/types.js';
import { instantToNtp64, NS_PER_S, type Instant } from '../../src/time/ntp-time.js';
import { clientRequestBytes, clientRequestPacket } from '../support/ntp-packets.js';

const META = 8;
const TX_STAMP = 1;
const TX_WANT_TIMESTAMP = 2;
const RX_TRUNCATED = 2;
const T0 = 1_750_000_000n * NS_PER_S;
/** 2036-02-07T06:28:16Z: NTP era 0 ends, NTP seconds wrap to 0. */
const ERA1_UNIX_S = 2_085_978_496n;
const KEYS = parseKeysText('1 MD5 HEX:000102030405060708090A0B0C0D0E0F10111213\n', 'test.keys', 'chrony');
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

interface Datagram {
  data: Uint8Array; // the whole datagram (the slot may hold only its start)
  family: 4 | 6;
  words: [number, number, number, number];
  port: number;
  rx: Instant; // daemon time
}

/** Socket buffers as the addon lays them out; `send` stamps T3 and hands out TX-stamp ids. */
class FakeIo implements ServerBatchIo {
  readonly rxData: Uint8Array;
  readonly rxMeta: Int32Array;
  readonly rxTime: Float64Array;
  readonly txData: Uint8Array;
  readonly txMeta: Int32Array;
  readonly txId: Int32Array;
  private nextId = 0;

  constructor(
    readonly batch: number,
    readonly slotBytes: number,
  ) {
    this.rxData = new Uint8Array(batch * slotBytes);
    this.rxMeta = new Int32Array(batch * META);
    this.rxTime = new Float64Array(batch * 2);
    this.txData = new Uint8Array(batch * slotBytes);
    this.txMeta = new Int32Array(batch * META);
    this.txId = new Int32Array(batch);
  }

  load(i: number, d: Datagram, offsetNs: number): void {
    const len = Math.min(d.data.length, this.slotBytes);
    this.rxData.fill(0xee, i * this.slotBytes, (i + 1) * this.slotBytes);
    this.rxData.set(d.data.subarray(0, len), i * this.slotBytes);
    const m = i * META;
    this.rxMeta.set([len, d.family, d.port, ...d.words, d.data.length > this.slotBytes ? RX_TRUNCATED | 1 : 1], m);
    const real = d.rx - BigInt(offsetNs); // the kernel stamps CLOCK_REALTIME
    this.rxTime[2 * i] = Number(real / NS_PER_S);
    this.rxTime[2 * i + 1] = Number(real % NS_PER_S);
  }

  /** What the addon does at send: T3 into TX_STAMP slots, ids for TX_WANT_TIMESTAMP ones. */
  send(count: number, stamp: Instant): void {
    const t3 = instantToNtp64(stamp);
    for (let j = 0; j < count; j++) {
      const flags = this.txMeta[j * META + 7]!;
      if (flags & TX_STAMP) {
        const o = j * this.slotBytes + 40;
        for (let b = 0; b < 8; b++) this.txData[o + b] = Number((t3 >> BigInt(56 - 8 * b)) & 0xffn);
      }
      this.txId[j] = flags & TX_WANT_TIMESTAMP ? this.nextId++ | 0 : -1;
    }
  }
}

interface Scenario {
  name: string;
  seed: number;
  batches: number;
  server: Partial<NtpServerOptions>;
  /** How the batch path checks access: allowedAt (default), allowedWords, or by text. */
  access?: 'at' | 'words' | 'text';
  clients: number;
  start: Instant;
}

interface ClientState {
  family: 4 | 6;
  words: [number, number, number, number];
  port: number;
  lastReceive: bigint;
}

function makeClients(r: Prng, n: number): ClientState[] {
  const out: ClientState[] = [];
  for (let i = 0; i < n; i++) {
    const v6 = i % 3 === 2;
    const denied = i % 17 === 5;
    const words: [number, number, number, number] = v6
      ? [0x20010db8, denied ? 0x0bad0000 : r.nextU32() & 0xffff, 0, r.nextU32() | 0]
      : [(denied ? 0xcb007100 : 0x0a000000 | (r.nextU32() & 0xffff00)) | (i & 0xff) | 0, 0, 0, 0];
    if (i === 7) words[0] = 0xcb007107 | 0; // 203.0.113.7: allowed inside a denied subnet
    out.push({ family: v6 ? 6 : 4, words, port: i % 23 === 0 ? 123 : 1024 + i, lastReceive: 0n });
  }
  return out;
}

function access(): AccessTable {
  const t = new AccessTable();
  t.add(true);
  t.add(false, '203.0.113.0/24');
  t.add(true, '203.0.113.7');
  t.add(false, '2001:db8:bad::/48');
  return t;
}

const rand64 = (r: Prng): bigint => (BigInt(r.nextU32()) << 32n) | BigInt(r.nextU32());

/** One request of a random kind from client `c`. */
function makeRequest(r: Prng, c: ClientState): Uint8Array {
  const k = r.nextU32() % 100;
  const poll = (r.nextU32() % 17) - 6;
  if (k < 35) return clientRequestBytes({ transmit: rand64(r), poll });
  if (k < 55) {
    // chrony's xleave client: origin = our last receive timestamp, receive ≠ transmit.
    const first = r.nextU32() % 5 === 0;
    return clientRequestBytes({
      origin: first ? 0n : c.lastReceive,
      receive: rand64(r) | 1n,
      transmit: rand64(r) | 2n,
      version: r.nextU32() % 8 === 0 ? 3 : 4,
      poll,
    });
  }
  if (k < 58) return clientRequestBytes({ origin: c.lastReceive, receive: 5n, transmit: 5n }); // receive = transmit
  if (k < 63) return clientRequestBytes({ version: 1 + (r.nextU32() % 3), transmit: rand64(r) });
  if (k < 66) return clientRequestBytes({ version: 1, mode: 0, transmit: rand64(r) });
  if (k < 71) return clientRequestBytes({ mode: [1, 2, 4, 5, 7][r.nextU32() % 5]! });
  if (k < 74) return Uint8Array.from([0x16, 0x02, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]); // mode 6 READSTAT
  if (k < 79) {
    const b = new Uint8Array([0, 1, 12, 47, 49, 50, 51, 52, 60][r.nextU32() % 9]!);
    for (let i = 0; i < b.length; i++) b[i] = r.nextU32() & 0xff;
    if (b.length > 0 && r.nextU32() % 2) b[0] = (b[0]! & 0xc0) | 0x23; // v4 mode 3, odd length
    return b;
  }
  if (k < 84) {
    const types = [0x0104, 0x0204, 0x2005, 0xf00d];
    return encodePacket(
      clientRequestPacket({
        extensions: [{ type: types[r.nextU32() % 4]!, body: new Uint8Array(24) }],
        transmit: rand64(r),
      }),
    );
  }
  if (k < 92) {
    const signed = signPacket(KEYS[0]!, clientRequestBytes({ transmit: rand64(r), version: 3 + (r.nextU32() % 2) }), 4);
    const v = r.nextU32() % 6;
    if (v === 0) signed[signed.length - 1]! ^= 1; // bad MAC
    if (v === 1) signed[48 + 3] = 9; // unknown key
    return signed;
  }
  if (k < 94) {
    const b = new Uint8Array(MAX_PACKET_LENGTH + 4 + 4 * (r.nextU32() % 20)); // longer than a slot
    b.set(clientRequestBytes(), 0);
    if (r.nextU32() % 3 === 0) b[0] = 0x16;
    if (r.nextU32() % 3 === 0) b[0] = 0x03; // version 0
    return b;
  }
  return clientRequestBytes({ transmit: rand64(r), version: 4, poll });
}

function randomRef(r: Prng, base: ReferenceState, now: Instant): ReferenceState {
  const k = r.nextU32() % 40;
  if (k === 0) return { ...base, synchronized: false };
  if (k === 1) return { ...base, leap: 1 };
  if (k === 2) return { ...base, refTime: now - BigInt(r.nextU32()) };
  if (k === 3) return { ...base, stratum: 1 + (r.nextU32() % 16), refId: r.nextU32() };
  if (k === 4) return { ...base, smoothOffset: 0.0015 };
  if (k === 5) return { ...base, smoothOffset: 1e-9 };
  if (k === 6) return { ...base, refTime: 0n };
  if (k === 7) return { ...base, rootDelay: r.random() };
  if (k === 8) return { ...base, rootDispersion: r.random() * 20 };
  return { ...base }; // a fresh object with the same fields
}

interface Counts {
  answers: number;
  interleaved: number;
  kod: number;
  signed: number;
  refined: number;
  others: number;
}

function runScenario(sc: Scenario): Counts {
  const r = new Prng(sc.seed);
  const acl = access();
  const opts = (seed: number): NtpServerOptions => ({
    clientLogLimit: 4096,
    access: (a) => acl.allowed(a),
    ...((sc.access ?? 'at') === 'at' ? { accessWordsAt: (f, w, o) => acl.allowedAt(f, w, o) } : {}),
    ...(sc.access === 'words' ? { accessWords: (f, a0, a1, a2, a3) => acl.allowedWords(f, a0, a1, a2, a3) } : {}),
    random: new Prng(seed).fn(),
    auth: [new SymmetricServerAuth(KEYS)],
    ...sc.server,
  });
  const twin = new NtpServer(opts(sc.seed + 1));
  const batched = new NtpServer(opts(sc.seed + 1));
  let stamp: Instant = 0n;
  const others: { data: Uint8Array; from: Endpoint; rx: Instant }[] = [];
  const bs = new BatchServer(batched, {
    onOther: (data, from, rx) => others.push({ data, from, rx }),
    now: () => stamp,
  });
  const io = new FakeIo(64, MAX_PACKET_LENGTH);
  const clients = makeClients(r, sc.clients);
  const pending: { id: number; twinTag: number; kernel: Instant }[] = [];
  const counts: Counts = { answers: 0, interleaved: 0, kod: 0, signed: 0, refined: 0, others: 0 };
  let now = sc.start;
  let base = SYNCED;
  for (let b = 0; b < sc.batches; b++) {
    now += BigInt(r.nextU32() % 50_000_000);
    // The reference time moves now and then; any one field may change alone (template cache).
    if (b % 20 === 0) base = { ...SYNCED, refTime: now - 64n * NS_PER_S };
    const ref = randomRef(r, base, now);
    const offsetNs = [0, 0, 0, 123_456_789, -987_654_321, 5_000_000_123, -2_000_000_000][r.nextU32() % 7]!;
    const n = 1 + (r.nextU32() % io.batch);
    const grams: (Datagram & { client: ClientState })[] = [];
    for (let i = 0; i < n; i++) {
      // Bursts from one client (ratelimit), else anyone.
      const c = r.nextU32() % 10 === 0 && i > 0 ? grams[i - 1]!.client : clients[r.nextU32() % clients.length]!;
      now += BigInt(r.nextU32() % 200_000);
      const d = { data: makeRequest(r, c), family: c.family, words: c.words, port: c.port, rx: now, client: c };
      grams.push(d);
      io.load(i, d, offsetNs);
    }
    stamp = now + 20_000n;

    // The twin, request by request, as the Engine drives it.
    const expected: { out: Transmit; client: ClientState }[] = [];
    const expectedOthers: Datagram[] = [];
    const plainOk = !sc.server.restrictLimit && (ref.smoothOffset ?? 0) === 0;
    for (const d of grams) {
      if (d.data.length > 0 && (d.data[0]! & 7) === 6) {
        expectedOthers.push(d);
        continue;
      }
      const from = { address: formatAddressWords(d.family, ...d.words), port: d.port };
      const before = twin.counters.interleaved;
      const out = twin.handleRequest(d.data, from, d.rx, stamp, ref);
      if (!out) continue;
      const v = (d.data[0]! >> 3) & 7;
      const plain = plainOk && d.data.length === 48 && (d.data[0]! & 7) === 3 && v >= 1 && v <= 4;
      // An interleaved plain answer cannot be stamped: its own TX time is its RX time until the
      // kernel's TX stamp comes (the batched path's documented estimate).
      if (plain && twin.counters.interleaved > before) twin.handleTxTimestamp(out.txTag!, d.rx);
      expected.push({ out, client: d.client });
    }

    const count = bs.process(io, n, offsetNs, ref);
    assert.equal(count, expected.length, `batch ${b}: answers`);
    io.send(count, stamp);
    for (let j = 0; j < count; j++) {
      const { out, client } = expected[j]!;
      const m = j * META;
      const len = io.txMeta[m]!;
      const got = io.txData.slice(j * io.slotBytes, j * io.slotBytes + len);
      const want = Uint8Array.from(out.data);
      if (out.stampTransmit) want.set(io.txData.subarray(j * io.slotBytes + 40, j * io.slotBytes + 48), 40);
      if (out.stampTransmit) assert.equal(decodePacket(got).ok && decodePacket(got).ok, true);
      assert.deepEqual(got, want, `batch ${b} answer ${j}`);
      if (out.stampTransmit) {
        const p = decodePacket(got);
        assert.ok(p.ok && p.packet.transmit === instantToNtp64(stamp));
      }
      assert.deepEqual([...io.txMeta.subarray(m + 1, m + 7)], [client.family, client.port, ...client.words]);
      const flags = io.txMeta[m + 7]!;
      assert.equal((flags & TX_STAMP) !== 0, out.stampTransmit === true, `batch ${b} answer ${j} TX_STAMP`);
      if (flags & TX_WANT_TIMESTAMP) assert.ok(out.txTag, 'a TX stamp only for a logged answer');
      const p = decodePacket(got);
      assert.ok(p.ok);
      client.lastReceive = p.packet.receive;
      counts.answers++;
      if (p.packet.refId === 0x52415445 && p.packet.stratum === 0) counts.kod++;
      if (p.packet.mac) counts.signed++;
    }
    bs.sent(io, count);
    for (let j = 0; j < count; j++) {
      if (io.txId[j]! >= 0) {
        pending.push({ id: io.txId[j]!, twinTag: expected[j]!.out.txTag!, kernel: stamp + BigInt(r.nextU32() % 3000) });
      }
    }

    // Kernel TX stamps: some now, in any order, some later, a few never.
    const deliver = pending.splice(0, r.nextU32() % (pending.length + 1));
    for (let i = deliver.length - 1; i > 0; i--) {
      const k = r.nextU32() % (i + 1);
      [deliver[i], deliver[k]] = [deliver[k]!, deliver[i]!];
    }
    const kept = deliver.filter(() => r.nextU32() % 20 !== 0);
    const ids = new Int32Array(kept.length);
    const times = new Float64Array(2 * kept.length);
    kept.forEach((p, i) => {
      ids[i] = p.id;
      const real = p.kernel - BigInt(offsetNs);
      times[2 * i] = Number(real / NS_PER_S);
      times[2 * i + 1] = Number(real % NS_PER_S);
      twin.handleTxTimestamp(p.twinTag, p.kernel);
    });
    bs.txStamps(ids, times, kept.length, offsetNs);
    counts.refined += kept.length;

    // Mode 6 went to onOther, as a copy, with the request's address and RX time.
    assert.equal(others.length, expectedOthers.length);
    others.forEach((o, i) => {
      const d = expectedOthers[i]!;
      assert.deepEqual(o.data, d.data.subarray(0, io.slotBytes));
      assert.deepEqual(o.from, { address: formatAddressWords(d.family, ...d.words), port: d.port });
      assert.equal(o.rx, d.rx);
    });
    counts.others += others.length;
    others.length = 0;

    if (b % 25 === 0 || b === sc.batches - 1) {
      assert.deepEqual(batched.stats(), twin.stats(), `batch ${b}: serverstats`);
      assert.deepEqual(batched.clients(now), twin.clients(now), `batch ${b}: clients`);
    }
  }
  counts.interleaved = twin.stats().ntpInterleavedPacketsReceived;
  return counts;
}

test('differential: BatchServer answers, counters and client log are those of handleRequest (logging, ratelimit, eviction)', () => {
  const c = runScenario({
    name: 'ratelimit',
    seed: 1,
    batches: 400,
    clients: 300,
    start: T0,
    server: { clientLogLimit: 128, ratelimit: { interval: -3, burst: 4, leak: 2, kod: 1 } },
  });
  assert.ok(c.answers > 5000, `${c.answers} answers`);
  assert.ok(c.interleaved > 300, `${c.interleaved} interleaved`);
  assert.ok(c.kod > 10, `${c.kod} KoD`);
  assert.ok(c.signed > 100, `${c.signed} signed`);
  assert.ok(c.others > 100 && c.refined > 300);
});

test('differential: no ratelimit, big client log, across the 2036 era rollover', () => {
  const c = runScenario({
    name: 'era',
    seed: 2,
    batches: 300,
    clients: 200,
    start: ERA1_UNIX_S * NS_PER_S - 5n * NS_PER_S,
    server: { clientLogLimit: 4096 },
  });
  assert.ok(c.interleaved > 300, `${c.interleaved} interleaved`);
});

test('differential: noclientlog with ratelimit; no table at all; restrict limits; access by text and by word arguments', () => {
  runScenario({
    name: 'noclientlog',
    seed: 3,
    batches: 150,
    clients: 50,
    start: T0,
    server: { noclientlog: true, ratelimit: { interval: 0, burst: 2, leak: 1, kod: 2 } },
  });
  runScenario({ name: 'no table', seed: 4, batches: 100, clients: 50, start: T0, server: { clientLogLimit: 0 } });
  runScenario({
    name: 'restrict',
    seed: 5,
    batches: 150,
    clients: 50,
    start: T0,
    server: {
      ratelimit: { interval: -2, burst: 2, leak: 2, kod: 1 },
      restrictLimit: (a) => ({ limited: !a.endsWith('7'), kod: a.includes(':') }),
    },
  });
  runScenario({ name: 'text access', seed: 6, batches: 100, clients: 80, start: T0, access: 'text', server: {} });
  runScenario({ name: 'words access', seed: 7, batches: 100, clients: 80, start: T0, access: 'words', server: {} });
});

/** One plain request through a BatchServer; returns the answer's bytes and flags. */
function one(
  bs: BatchServer,
  io: FakeIo,
  data: Uint8Array,
  rx: Instant,
  stamp: Instant,
  ref = SYNCED,
): { bytes: Uint8Array; flags: number; id: number } | null {
  io.load(0, { data, family: 4, words: [0xc6336407 | 0, 0, 0, 0], port: 40123, rx }, 0);
  if (bs.process(io, 1, 0, ref) === 0) return null;
  io.send(1, stamp);
  bs.sent(io, 1);
  return { bytes: io.txData.slice(0, io.txMeta[0]!), flags: io.txMeta[7]!, id: io.txId[0]! };
}

test('the receive timestamp wraps to era 1 at 2036-02-07T06:28:16Z', () => {
  const bs = new BatchServer(new NtpServer({ clientLogLimit: 16, access: () => true, random: () => 0.5 }));
  const io = new FakeIo(4, 1024);
  const rx = ERA1_UNIX_S * NS_PER_S + 500_000_000n;
  const a = one(bs, io, clientRequestBytes(), rx, rx + 1000n)!;
  const p = decodePacket(a.bytes);
  assert.ok(p.ok);
  assert.equal(p.packet.receive, 0x8000_0000n); // NTP second 0 of era 1, half a second
  assert.equal(p.packet.receive, instantToNtp64(rx));
  const before = one(bs, io, clientRequestBytes(), rx - NS_PER_S, rx)!;
  const q = decodePacket(before.bytes);
  assert.ok(q.ok && q.packet.receive >> 32n === 0xffff_ffffn);
});

test("kernel TX stamps refine interleaved answers: the follow-up carries the first answer's kernel TX time", () => {
  const server = new NtpServer({ clientLogLimit: 16, access: () => true, random: () => 0.5 });
  const bs = new BatchServer(server);
  const io = new FakeIo(4, 1024);
  // A basic request from a plain client: stamped, no kernel TX stamp wanted.
  const plain = one(bs, io, clientRequestBytes(), T0, T0 + 10_000n)!;
  assert.equal(plain.flags, TX_STAMP);
  // chrony's xleave client: receive ≠ transmit, both set → TX stamp wanted.
  const first = one(bs, io, clientRequestBytes({ receive: 1n, transmit: 2n }), T0 + NS_PER_S, T0 + NS_PER_S + 10_000n)!;
  assert.equal(first.flags, TX_STAMP | TX_WANT_TIMESTAMP);
  const p1 = decodePacket(first.bytes);
  assert.ok(p1.ok);
  const kernel = T0 + NS_PER_S + 12_345n;
  bs.txStamps(Int32Array.of(first.id), Float64Array.of(Number(kernel / NS_PER_S), Number(kernel % NS_PER_S)), 1, 0);
  const second = one(
    bs,
    io,
    clientRequestBytes({ origin: p1.packet.receive, receive: 3n, transmit: 4n }),
    T0 + 2n * NS_PER_S,
    T0 + 2n * NS_PER_S + 10_000n,
  )!;
  const p2 = decodePacket(second.bytes);
  assert.ok(p2.ok);
  assert.equal(p2.packet.origin, 3n); // the request's receive
  assert.equal(p2.packet.transmit, instantToNtp64(kernel));
  assert.equal(second.flags, TX_WANT_TIMESTAMP); // not stamped: it carries the previous TX time
  assert.equal(server.stats().ntpInterleavedPacketsReceived, 1);
  // Without a kernel stamp, the next interleaved answer carries the RX time of the second request
  // (it could not be stamped) and a stale id is ignored.
  bs.txStamps(Int32Array.of(first.id), Float64Array.of(1, 0), 1, 0);
  const p3 = decodePacket(
    one(bs, io, clientRequestBytes({ origin: p2.packet.receive, receive: 5n, transmit: 6n }), T0 + 3n * NS_PER_S, 0n)!
      .bytes,
  );
  assert.ok(p3.ok && p3.packet.transmit === instantToNtp64(T0 + 2n * NS_PER_S));
  // A client seen in interleaved mode gets TX stamps even for a basic request; a basic answer's
  // saved TX time is the T3 the socket wrote.
  const basic = one(bs, io, clientRequestBytes(), T0 + 4n * NS_PER_S, T0 + 4n * NS_PER_S + 777n)!;
  assert.equal(basic.flags, TX_STAMP | TX_WANT_TIMESTAMP);
  const pb = decodePacket(basic.bytes);
  assert.ok(pb.ok);
  const p4 = decodePacket(
    one(bs, io, clientRequestBytes({ origin: pb.packet.receive, receive: 7n, transmit: 8n }), T0 + 5n * NS_PER_S, 0n)!
      .bytes,
  );
  assert.ok(p4.ok && p4.packet.transmit === instantToNtp64(T0 + 4n * NS_PER_S + 777n));
});

test('noclientlog: no TX stamps are asked for; mode 6 without onOther is dropped by the server', () => {
  const server = new NtpServer({ clientLogLimit: 16, noclientlog: true, access: () => true, random: () => 0.5 });
  const bs = new BatchServer(server);
  const io = new FakeIo(4, 1024);
  const a = one(bs, io, clientRequestBytes({ receive: 1n, transmit: 2n }), T0, T0 + 1n)!;
  assert.equal(a.flags, TX_STAMP);
  assert.equal(one(bs, io, Uint8Array.from([0x16, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]), T0, T0), null);
  assert.deepEqual(server.stats().malformedDropped, { mode: 1 });
});
