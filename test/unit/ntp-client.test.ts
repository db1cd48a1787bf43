import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ClientAssociation,
  type AssocEvent,
  type ClientAssociationConfig,
  type ResponseVerdict,
} from '../../src/ntp/client.js';
import { NtpServer } from '../../src/ntp/server.js';
import { decodePacket, encodePacket, type NtpPacket } from '../../src/ntp/packet.js';
import { refIdFromAscii } from '../../src/ntp/refid.js';
import type { NtpSample, ReferenceState, Transmit } from '../../src/engine/types.js';
import { instantToNtp64, NS_PER_S, type Instant } from '../../src/time/ntp-time.js';

const SERVER_EP = { address: '192.0.2.1', port: 123 };
const CLIENT_EP = { address: '203.0.113.5', port: 40000 };
const T0 = 1_750_000_000n * NS_PER_S;
const MS = 1_000_000n;
const US = 1_000n;

const REF: ReferenceState = {
  synchronized: true,
  leap: 0,
  stratum: 1,
  refId: refIdFromAscii('GPS'),
  refTime: T0 - 10n * NS_PER_S,
  rootDelay: 0,
  rootDispersion: 0.0001,
  precision: -24,
};

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/** Virtual network: true time is the client's clock; the server clock runs `offset` ahead. */
interface Net {
  offset: bigint; // server clock − true time, ns
  d1: bigint; // client → server
  d2: bigint; // server → client
  proc: bigint; // server processing time
  clientKernel: bigint; // daemon timestamp → actual departure (client)
  serverKernel: bigint; // daemon transmit timestamp → actual departure (server)
  ref: ReferenceState;
  lose?: boolean; // drop requests
  lateTxReport?: boolean; // client's kernel TX timestamp reported after the answer
  /** Rewrites the response before delivery. */
  tamper?: (resp: Uint8Array) => Uint8Array;
}

function net(over: Partial<Net> = {}): Net {
  return { offset: 0n, d1: 10n * MS, d2: 10n * MS, proc: 0n, clientKernel: 0n, serverKernel: 0n, ref: REF, ...over };
}

interface Delivery {
  request: Transmit;
  response?: Uint8Array;
  arrival?: Instant;
  /** Kernel TX time of the request (client clock). */
  departure?: Instant;
  verdict?: ResponseVerdict;
}

function mkServer(over: Partial<ConstructorParameters<typeof NtpServer>[0]> = {}): NtpServer {
  return new NtpServer({ clientLogLimit: 100, access: () => true, random: () => 0.5, ...over });
}

/** Fires the client's timer at `now` and carries every request through the network. */
function fire(c: ClientAssociation, s: NtpServer, n: Net, now: Instant, deliver = true): Delivery[] {
  c.handleTimeout(now);
  const out: Delivery[] = [];
  for (let t = c.pollTransmit(); t; t = c.pollTransmit()) {
    assert.equal(t.socket, 'client');
    assert.deepEqual(t.to, SERVER_EP);
    const d: Delivery = { request: t };
    out.push(d);
    const departure = now + n.clientKernel;
    d.departure = departure;
    if (t.txTag !== undefined && !n.lateTxReport) c.handleTxTimestamp(t.txTag, departure);
    if (n.lose) continue;
    const rx = departure + n.d1 + n.offset; // server clock
    const txDaemon = rx + n.proc;
    const resp = s.handleRequest(t.data, CLIENT_EP, rx, txDaemon, n.ref);
    if (!resp) continue;
    const txKernel = txDaemon + n.serverKernel;
    if (resp.txTag !== undefined) s.handleTxTimestamp(resp.txTag, txKernel);
    d.response = n.tamper ? n.tamper(resp.data) : resp.data;
    d.arrival = txKernel - n.offset + n.d2;
    if (deliver) d.verdict = c.handleResponse(d.response, SERVER_EP, d.arrival);
    if (t.txTag !== undefined && n.lateTxReport) c.handleTxTimestamp(t.txTag, departure);
  }
  return out;
}

/** Runs the client until `until`, returns all deliveries. */
function run(c: ClientAssociation, s: NtpServer, n: Net, until: Instant): Delivery[] {
  const all: Delivery[] = [];
  for (let i = 0; i < 100_000; i++) {
    const next = c.nextTimeout();
    if (next === null || next > until) break;
    all.push(...fire(c, s, n, next));
  }
  return all;
}

function events(c: ClientAssociation): AssocEvent[] {
  const out: AssocEvent[] = [];
  for (let e = c.pollEvent(); e; e = c.pollEvent()) out.push(e);
  return out;
}

function samples(c: ClientAssociation): NtpSample[] {
  return events(c).flatMap((e) => (e.type === 'sample' ? [e.sample] : []));
}

function client(cfg: Partial<ClientAssociationConfig> = {}, seed = 1): ClientAssociation {
  return new ClientAssociation({ address: SERVER_EP, ...cfg }, { random: lcg(seed) });
}

function req(t: Transmit): NtpPacket {
  const d = decodePacket(t.data);
  assert.ok(d.ok);
  return d.packet;
}

const close = (a: number, b: number, tol: number, msg = ''): void =>
  assert.ok(Math.abs(a - b) <= tol, `${msg} ${a} vs ${b} (tol ${tol})`);

test('basic exchange: offset and delay with a known server offset', () => {
  for (const [offset, d1, d2, expOffset] of [
    [250n * MS, 10n * MS, 10n * MS, 0.25],
    [-1_500n * MS, 10n * MS, 10n * MS, -1.5],
    [0n, 5n * MS, 25n * MS, -0.01], // asymmetry shows as (d1 − d2)/2
  ] as const) {
    const c = client();
    const s = mkServer();
    const n = net({ offset, d1, d2, proc: 300n * US });
    c.start(T0);
    const ds = fire(c, s, n, c.nextTimeout()!);
    assert.equal(ds.length, 1);
    assert.equal(ds[0]!.verdict, 'sample');
    const [smp] = samples(c);
    assert.ok(smp);
    close(smp.offset, expOffset, 2e-9, 'offset');
    close(smp.delay, Number(d1 + d2) / 1e9, 2e-9, 'delay');
    // The sample describes the middle of the exchange (T1 kernel TX .. T4).
    assert.equal(smp.time, ds[0]!.departure! + (ds[0]!.arrival! - ds[0]!.departure!) / 2n);
    assert.equal(smp.stratum, 1);
    assert.equal(smp.refId, refIdFromAscii('GPS'));
    assert.equal(smp.leap, 0);
    assert.equal(smp.poll, 6);
    assert.equal(smp.interleaved, false);
    close(smp.rootDispersion, 0.0001, 2e-5);
    close(Number(smp.refTime - REF.refTime), 0, 1);
    const rtt = Number(d1 + d2) / 1e9 + 300e-6;
    close(smp.dispersion, 2 ** -20 + 2 ** -24 + 15e-6 * rtt, 1e-12, 'dispersion');
  }
});

test('delay is never negative: clamped to the local precision', () => {
  const c = client({ precision: -18 });
  const s = mkServer();
  const tamper = (b: Uint8Array): Uint8Array => {
    const p = decodePacket(b);
    assert.ok(p.ok);
    // Claim 30 ms of processing in a 20 ms round trip.
    return encodePacket({ ...p.packet, transmit: p.packet.transmit + (30n << 32n) / 1000n });
  };
  c.start(T0);
  const [d] = fire(c, s, net({ tamper }), c.nextTimeout()!);
  assert.equal(d!.verdict, 'sample');
  const [smp] = samples(c);
  assert.equal(smp!.delay, 2 ** -18);
  close(smp!.offset, 0.015, 2e-9);
});

test('requests reveal nothing but version, mode, poll and a random transmit', () => {
  const c = client({ iburst: true });
  const s = mkServer();
  c.start(T0);
  const ds = run(c, s, net(), T0 + 10n * NS_PER_S);
  assert.ok(ds.length >= 4);
  const seen = new Set<bigint>();
  for (const d of ds) {
    const b = d.request.data;
    assert.equal(b.length, 48);
    assert.equal(b[0], (4 << 3) | 3);
    assert.equal(b[1], 0);
    assert.equal(b[2], 6);
    for (let i = 3; i < 40; i++) assert.equal(b[i], 0, `byte ${i}`);
    const p = req(d.request);
    assert.notEqual(p.transmit, 0n);
    // Not the local time: far from the real send time.
    const real = instantToNtp64(T0);
    assert.ok(p.transmit > real + (1n << 40n) || p.transmit < real - (1n << 40n));
    assert.ok(!seen.has(p.transmit));
    seen.add(p.transmit);
    // Every request asks for its kernel TX timestamp (it replaces T1), a tag, not data on the wire.
    assert.equal(typeof d.request.txTag, 'number');
  }
});

test('bogus origin, zero origin, duplicate and replay are rejected', () => {
  const c = client();
  const s = mkServer();
  const n = net({ offset: 100n * MS });
  c.start(T0);
  const t = c.nextTimeout()!;
  const [d] = fire(c, s, n, t, false);
  const good = d!.response!;
  const arrival = d!.arrival!;
  const pkt = decodePacket(good);
  assert.ok(pkt.ok);

  const bogus = encodePacket({ ...pkt.packet, origin: pkt.packet.origin ^ 1n });
  assert.equal(c.handleResponse(bogus, SERVER_EP, arrival), 'dropped:bogus');
  const zero = encodePacket({ ...pkt.packet, origin: 0n });
  assert.equal(c.handleResponse(zero, SERVER_EP, arrival), 'dropped:zero-origin');
  assert.equal(c.handleResponse(good, { address: '192.0.2.99', port: 123 }, arrival), 'dropped:address');
  assert.equal(c.handleResponse(good, { address: SERVER_EP.address, port: 124 }, arrival), 'dropped:address');
  const withMac = encodePacket({ ...pkt.packet, mac: { keyId: 3, digest: new Uint8Array(16) } });
  assert.equal(c.handleResponse(withMac, SERVER_EP, arrival), 'dropped:auth');
  const asClient = encodePacket({ ...pkt.packet, mode: 3 });
  assert.equal(c.handleResponse(asClient, SERVER_EP, arrival), 'dropped:mode');
  assert.equal(c.handleResponse(good.slice(0, 40), SERVER_EP, arrival), 'dropped:short');
  assert.equal(samples(c).length, 0);

  assert.equal(c.handleResponse(good, SERVER_EP, arrival), 'sample');
  assert.equal(samples(c).length, 1);
  // Exact duplicate.
  assert.equal(c.handleResponse(good, SERVER_EP, arrival + MS), 'dropped:duplicate');
  // Replay with fresh-looking timestamps but the same (already answered) origin.
  const replay = encodePacket({
    ...pkt.packet,
    receive: pkt.packet.receive + 1000n,
    transmit: pkt.packet.transmit + 1000n,
  });
  assert.equal(c.handleResponse(replay, SERVER_EP, arrival + MS), 'dropped:bogus');
  assert.equal(samples(c).length, 0);
  const st = c.status();
  assert.equal(st.totalTx, 1);
  assert.equal(st.totalRx, 10);
  assert.equal(st.totalValidRx, 1);
  assert.equal(st.reach, 1);
  // The last packet processed (the replay) passed test 1 and failed test 2.
  assert.equal(st.ntpTests, '101 111 0000');
});

test('zero receive/transmit timestamps fail test 3', () => {
  const c = client();
  const s = mkServer();
  c.start(T0);
  const [d] = fire(c, s, net(), c.nextTimeout()!, false);
  const p = decodePacket(d!.response!);
  assert.ok(p.ok);
  assert.equal(
    c.handleResponse(encodePacket({ ...p.packet, receive: 0n }), SERVER_EP, d!.arrival!),
    'dropped:zero-timestamp',
  );
  assert.equal(c.status().ntpTests, '110 111 0000');
  assert.equal(c.handleResponse(d!.response!, SERVER_EP, d!.arrival!), 'sample');
  assert.equal(c.status().ntpTests, '111 111 1111');
});

test('unsynchronised server and maxdelay: valid but not samples', () => {
  const c = client();
  const s = mkServer();
  c.start(T0);
  const [d] = fire(c, s, net({ ref: { ...REF, synchronized: false } }), c.nextTimeout()!);
  assert.equal(d!.verdict, 'dropped:unsynchronised');
  assert.equal(c.status().ntpTests, '111 101 0000');
  assert.equal(c.status().reach, 1);
  assert.equal(c.status().lastPacket!.leap, 3);
  assert.equal(samples(c).length, 0);
  // Other servers' ways of saying "unsynchronised": LI=3 with a stratum, or stratum 16.
  for (const over of [{ leap: 3 as const }, { stratum: 16 }]) {
    const tamper = (b: Uint8Array): Uint8Array => {
      const p = decodePacket(b);
      assert.ok(p.ok);
      return encodePacket({ ...p.packet, ...over });
    };
    const [dx] = fire(c, s, net({ tamper }), c.nextTimeout()!);
    assert.equal(dx!.verdict, 'dropped:unsynchronised');
  }
  const [dy] = fire(c, s, net(), c.nextTimeout()!);
  assert.equal(dy!.verdict, 'sample');

  const c2 = client({ maxdelay: 0.5 });
  c2.start(T0);
  const [d2] = fire(c2, s, net({ d1: 400n * MS, d2: 400n * MS }), c2.nextTimeout()!);
  assert.equal(d2!.verdict, 'dropped:maxdelay');
  assert.equal(c2.status().ntpTests, '111 111 0111');
  const [d3] = fire(c2, s, net({ d1: 200n * MS, d2: 200n * MS }), c2.nextTimeout()!);
  assert.equal(d3!.verdict, 'sample');

  // Root distance too large (test 7).
  const c3 = client();
  c3.start(T0);
  const [d4] = fire(c3, s, net({ ref: { ...REF, rootDelay: 10, rootDispersion: 12 } }), c3.nextTimeout()!);
  assert.equal(d4!.verdict, 'dropped:root-distance');
  assert.equal(c3.status().ntpTests, '111 110 0000');
});

function kod(origin: bigint, code: string, over: Partial<NtpPacket> = {}): Uint8Array {
  return encodePacket({
    leap: 3,
    version: 4,
    mode: 4,
    stratum: 0,
    poll: 6,
    precision: -20,
    rootDelay: 0,
    rootDispersion: 0,
    refId: refIdFromAscii(code),
    refTime: 0n,
    origin,
    receive: 0n,
    transmit: 0n,
    extensions: [],
    ...over,
  });
}

test('KoD DENY stops polling; forged KoD with the wrong origin is ignored', () => {
  const c = client();
  const s = mkServer();
  c.start(T0);
  const t = c.nextTimeout()!;
  const [d] = fire(c, s, net({ lose: true }), t);
  const origin = req(d!.request).transmit;
  events(c);
  assert.equal(c.handleResponse(kod(origin ^ 0xffn, 'DENY'), SERVER_EP, t + 20n * MS), 'dropped:bogus');
  assert.equal(c.handleResponse(kod(0n, 'DENY'), SERVER_EP, t + 20n * MS), 'dropped:zero-origin');
  assert.deepEqual(events(c), []);
  assert.notEqual(c.nextTimeout(), null);
  assert.equal(c.status().stopped, false);

  assert.equal(c.handleResponse(kod(origin, 'DENY'), SERVER_EP, t + 20n * MS), 'kod');
  assert.deepEqual(events(c), [{ type: 'kod', code: 'DENY' }]);
  assert.equal(c.nextTimeout(), null);
  assert.equal(c.status().stopped, true);
  assert.equal(c.status().kod, 'DENY');
  // Nothing more is sent, even on burst or online toggles.
  c.handleTimeout(t + 1000n * NS_PER_S);
  c.burst(t + 1000n * NS_PER_S);
  c.setOnline(false, t);
  c.setOnline(true, t);
  assert.equal(c.pollTransmit(), undefined);
  assert.equal(c.nextTimeout(), null);

  // RSTR also stops.
  const c2 = client();
  c2.start(T0);
  const [d2] = fire(c2, s, net({ lose: true }), c2.nextTimeout()!);
  assert.equal(c2.handleResponse(kod(req(d2!.request).transmit, 'RSTR'), SERVER_EP, T0 + NS_PER_S), 'kod');
  assert.equal(c2.nextTimeout(), null);
});

test('KoD RATE slows polling; other codes are not samples', () => {
  const c = client({ minpoll: 4, maxpoll: 10 });
  const s = mkServer();
  c.start(T0);
  const t = c.nextTimeout()!;
  const [d] = fire(c, s, net({ lose: true }), t);
  assert.equal(c.getPoll(), 4);
  assert.equal(c.handleResponse(kod(req(d!.request).transmit, 'RATE'), SERVER_EP, t + 20n * MS), 'kod');
  assert.equal(c.getPoll(), 5);
  const next = c.nextTimeout()!;
  close(Number(next - t) / 1e9, 32, 2, 'next poll after RATE');
  // Again: at least doubles each time.
  const [d2] = fire(c, s, net({ lose: true }), next);
  assert.equal(c.handleResponse(kod(req(d2!.request).transmit, 'RATE'), SERVER_EP, next + 20n * MS), 'kod');
  assert.equal(c.getPoll(), 6);

  const [d3] = fire(c, s, net({ lose: true }), c.nextTimeout()!);
  assert.equal(c.handleResponse(kod(req(d3!.request).transmit, 'INIT'), SERVER_EP, c.nextTimeout()!), 'kod');
  assert.equal(c.getPoll(), 6);
  assert.equal(c.status().stopped, false);
  assert.ok(!events(c).some((e) => e.type === 'sample'));
});

test('iburst: 8 requests within ~16 s, then regular polling', () => {
  const c = client({ iburst: true });
  const s = mkServer();
  c.start(T0);
  const ds = run(c, s, net(), T0 + 20n * NS_PER_S);
  assert.equal(ds.length, 8);
  assert.ok(ds.every((d) => d.verdict === 'sample'));
  assert.equal(samples(c).length, 8);
  const next = c.nextTimeout()!;
  // Burst requests 2 s apart (7 gaps), then a whole poll (2^6 s).
  close(Number(next - T0) / 1e9, 64 + 14, 5, 'first regular poll');
  assert.equal(c.status().reach, 0xff);

  // Without iburst only one request in the first minute.
  const c2 = client();
  c2.start(T0);
  assert.equal(run(c2, s, net(), T0 + 60n * NS_PER_S).length, 1);

  // iburst against a silent server: 16 requests then regular polling.
  const c3 = client({ iburst: true });
  c3.start(T0);
  const ds3 = run(c3, s, net({ lose: true }), T0 + 60n * NS_PER_S);
  assert.equal(ds3.length, 16);
});

test('iburst: a source answering again after 3 missed polls gets a burst of 4 good samples; 2 missed, or no iburst: none', () => {
  const s = mkServer();
  /** Polls regularly for 200 s, then misses `missed` polls, then answers for 30 s: the requests of those 30 s. */
  const afterOutage = (iburst: boolean, missed: number): { gaps: number[]; samples: number } => {
    const c = client({ iburst, minpoll: 4, maxpoll: 4 });
    c.start(T0);
    run(c, s, net(), T0 + 200n * NS_PER_S);
    for (let i = 0; i < missed; i++) fire(c, s, net({ lose: true }), c.nextTimeout()!);
    const back = c.nextTimeout()!;
    samples(c);
    const ds = run(c, s, net(), back + 30n * NS_PER_S);
    return {
      gaps: ds.slice(1).map((d, i) => Number(d.departure! - ds[i]!.departure!) / 1e9),
      samples: samples(c).length,
    };
  };
  const burst = afterOutage(true, 3);
  // The answer after the outage, then three more at burst spacing (≤ 2 s), then 16-s polls.
  assert.equal(burst.samples, 5, `${JSON.stringify(burst)}`);
  assert.ok(
    burst.gaps.slice(0, 3).every((g) => g <= 2.1),
    `${burst.gaps}`,
  );
  assert.ok(burst.gaps[3]! >= 15, `${burst.gaps}`);
  for (const [iburst, missed] of [
    [true, 2],
    [false, 3],
  ] as const) {
    const r = afterOutage(iburst, missed);
    assert.equal(r.samples, 2, `iburst ${iburst}, ${missed} missed: ${JSON.stringify(r)}`);
    assert.ok(
      r.gaps.every((g) => g >= 15),
      `${r.gaps}`,
    );
  }
});

test('manual burst sends quickly, even when offline, then goes quiet', () => {
  const c = client({ offline: true });
  const s = mkServer();
  c.start(T0);
  assert.equal(c.nextTimeout(), null);
  c.burst(T0, 2, 4);
  const ds = run(c, s, net(), T0 + 600n * NS_PER_S);
  assert.equal(ds.length, 2);
  assert.equal(c.nextTimeout(), null);
  c.setOnline(true, T0 + 700n * NS_PER_S);
  assert.ok(c.nextTimeout()! >= T0 + 700n * NS_PER_S);
  c.setOnline(false, T0 + 701n * NS_PER_S);
  assert.equal(c.nextTimeout(), null);
});

test('unreachable: reach register, event and poll back-off', () => {
  const c = client({ minpoll: 6, maxpoll: 9 });
  const s = mkServer();
  c.start(T0);
  run(c, s, net(), T0 + NS_PER_S);
  assert.equal(c.status().reach, 1);
  events(c);
  const times: Instant[] = [];
  const polls: number[] = [];
  for (let i = 0; i < 12; i++) {
    const t = c.nextTimeout()!;
    times.push(t);
    fire(c, s, net({ lose: true }), t);
    polls.push(c.getPoll());
  }
  const ev = events(c);
  assert.equal(ev.filter((e) => e.type === 'unreachable').length, 1);
  assert.equal(c.status().reach, 0);
  // Reach shifts out: 2, 4, ..., 128, 0.
  const reaches = ev.flatMap((e) => (e.type === 'reach' ? [e.reach] : []));
  assert.deepEqual(reaches, [2, 4, 8, 16, 32, 64, 128, 0]);
  // As chronyd: each unanswered request adds 0.25 to the poll score, one step every 4 misses.
  assert.deepEqual(polls, [6, 6, 6, 6, 7, 7, 7, 7, 8, 8, 8, 8]);
  const gaps = times.slice(1).map((t, i) => Number(t - times[i]!) / 1e9);
  close(gaps[0]!, 64, 4);
  close(gaps[4]!, 128, 7);
  close(gaps[9]!, 256, 13);
  // The server coming back resets the back-off count, reach recovers.
  fire(c, s, net(), c.nextTimeout()!);
  assert.equal(c.status().reach, 1);
});

test('poll grows after good samples and setPoll clamps', () => {
  const c = client({ minpoll: 4, maxpoll: 6 });
  const s = mkServer();
  c.start(T0);
  run(c, s, net(), T0 + 4000n * NS_PER_S);
  assert.equal(c.getPoll(), 6);
  c.setPoll(2);
  assert.equal(c.getPoll(), 4);
  c.setPoll(12);
  assert.equal(c.getPoll(), 6);
});

test('era rollover: exchange around 2036-02-07 06:28:16 UTC', () => {
  const ROLL = 2_085_978_496n * NS_PER_S; // NTP era 1 starts here (Unix time)
  for (const [start, offset] of [
    [ROLL - 20n * MS, 500n * MS], // client in era 0, server already in era 1
    [ROLL + 20n * MS, -500n * MS], // client in era 1, server still in era 0
    [ROLL - 5n * MS, 0n], // rollover between T1 and T4
  ] as const) {
    const c = client();
    const s = mkServer();
    c.start(start);
    const [d] = fire(c, s, net({ offset, ref: { ...REF, refTime: start - NS_PER_S } }), c.nextTimeout()!);
    assert.equal(d!.verdict, 'sample');
    const [smp] = samples(c);
    close(smp!.offset, Number(offset) / 1e9, 2e-9, 'offset');
    close(smp!.delay, 0.02, 2e-9, 'delay');
    close(Number(smp!.refTime - (start - NS_PER_S)), 0, 1, 'refTime era');
  }
});

test('xleave: interleaved samples use the kernel TX timestamps', () => {
  const c = client({ xleave: true });
  const s = mkServer();
  // Server's daemon TX timestamp is 40 µs before the packet really leaves; client's kernel
  // timestamp is 15 µs after the daemon's.
  const n = net({ offset: 3n * MS, proc: 20n * US, serverKernel: 40n * US, clientKernel: 15n * US });
  c.start(T0);
  const ds = run(c, s, n, T0 + 1000n * NS_PER_S);
  assert.ok(ds.length >= 6, `${ds.length}`);
  assert.ok(ds.every((d) => d.request.txTag !== undefined));
  const smp = samples(c);
  // First answer cannot be interleaved; later ones are.
  assert.equal(smp[0]!.interleaved, false);
  // Basic: T3 is the daemon's timestamp, 40 µs early → offset off by −20 µs.
  close(smp[0]!.offset, 0.003 - 20e-6, 2e-9, 'basic offset');
  close(smp[0]!.delay, 0.02 + 40e-6, 2e-9, 'basic delay');
  for (const x of smp.slice(1)) {
    assert.equal(x.interleaved, true);
    close(x.offset, 0.003, 2e-9, 'interleaved offset');
    close(x.delay, 0.02, 2e-9, 'interleaved delay');
  }
  // Interleaved samples refer to the previous exchange.
  assert.equal(smp[1]!.time, ds[0]!.departure! + (ds[0]!.arrival! - ds[0]!.departure!) / 2n);
  assert.equal(c.status().interleaved, true);
  assert.equal(s.stats().ntpInterleavedPacketsReceived, smp.length - 1);

  // Second request carries origin = server rx of the first answer and a random receive marker.
  const r2 = req(ds[1]!.request);
  const a1 = decodePacket(ds[0]!.response!);
  assert.ok(a1.ok);
  assert.equal(r2.origin, a1.packet.receive);
  assert.notEqual(r2.receive, 0n);
  assert.notEqual(r2.receive, r2.transmit);
});

test('xleave: a TX timestamp reported after the answer still reaches the next sample', () => {
  const c = client({ xleave: true });
  const s = mkServer();
  const n = net({ offset: -2n * MS, serverKernel: 25n * US, clientKernel: 50n * US, lateTxReport: true });
  c.start(T0);
  run(c, s, n, T0 + 400n * NS_PER_S);
  const smp = samples(c);
  assert.ok(smp.length >= 4);
  // Basic first sample used the daemon T1 (50 µs early) and the daemon T3 (25 µs early).
  close(smp[0]!.offset, -0.002 + (50e-6 - 25e-6) / 2, 2e-9, 'basic');
  for (const x of smp.slice(1)) {
    assert.equal(x.interleaved, true);
    close(x.offset, -0.002, 2e-9, 'interleaved');
  }
  // A TX timestamp more than 1 s away from the send time is ignored: the next interleaved
  // sample then uses the daemon's T1 (50 µs early → offset +25 µs), not a 5 s error.
  const t = c.nextTimeout()!;
  c.handleTimeout(t);
  const r = c.pollTransmit()!;
  c.handleTxTimestamp(r.txTag!, t + 5n * NS_PER_S);
  const srx = t + n.clientKernel + n.d1 + n.offset;
  const resp = s.handleRequest(r.data, CLIENT_EP, srx, srx, REF)!;
  s.handleTxTimestamp(resp.txTag!, srx + n.serverKernel);
  assert.equal(c.handleResponse(resp.data, SERVER_EP, srx + n.serverKernel - n.offset + n.d2), 'sample');
  samples(c);
  const [d] = fire(c, s, { ...n, lateTxReport: false }, c.nextTimeout()!);
  assert.equal(d!.verdict, 'sample');
  const [x] = samples(c);
  assert.equal(x!.interleaved, true);
  close(x!.offset, -0.002 + 25e-6, 2e-9, 'daemon T1');
});

test('xleave: a lost answer and a non-interleaving server fall back to basic mode', () => {
  // Server without client log never interleaves.
  const c = client({ xleave: true });
  const s = mkServer({ noclientlog: true });
  c.start(T0);
  const ds = run(c, s, net({ offset: 1n * MS }), T0 + 300n * NS_PER_S);
  assert.ok(ds.length >= 4);
  const smp = samples(c);
  assert.equal(smp.length, ds.length);
  assert.ok(smp.every((x) => !x.interleaved));
  smp.forEach((x) => close(x.offset, 0.001, 2e-9));

  // Interleaving server, one answer lost in transit: next answer is basic (server's saved rx no
  // longer matches), then interleaved again.
  const c2 = client({ xleave: true });
  const s2 = mkServer();
  const n = net({ serverKernel: 30n * US });
  c2.start(T0);
  run(c2, s2, n, T0 + 200n * NS_PER_S);
  samples(c2);
  fire(c2, s2, n, c2.nextTimeout()!, false); // answer lost
  const [d1] = fire(c2, s2, n, c2.nextTimeout()!);
  assert.equal(d1!.verdict, 'sample');
  const [d2] = fire(c2, s2, n, c2.nextTimeout()!);
  assert.equal(d2!.verdict, 'sample');
  const [x1, x2] = samples(c2);
  assert.equal(x1!.interleaved, false);
  assert.equal(x2!.interleaved, true);
  close(x2!.offset, 0, 2e-9);
});

test('xleave: replayed interleaved answer is rejected', () => {
  const c = client({ xleave: true });
  const s = mkServer();
  c.start(T0);
  const n = net();
  run(c, s, n, T0 + 100n * NS_PER_S);
  const [d] = fire(c, s, n, c.nextTimeout()!);
  assert.equal(d!.verdict, 'sample');
  assert.equal(c.handleResponse(d!.response!, SERVER_EP, d!.arrival! + MS), 'dropped:duplicate');
  const p = decodePacket(d!.response!);
  assert.ok(p.ok);
  const forged = encodePacket({ ...p.packet, transmit: p.packet.transmit + 99n });
  assert.equal(c.handleResponse(forged, SERVER_EP, d!.arrival! + MS), 'dropped:bogus');
});

test('presend: an extra request 2 s before each poll, not used as a sample', () => {
  const c = client({ presend: 6, minpoll: 6 });
  const s = mkServer();
  c.start(T0);
  const ds = run(c, s, net(), T0 + 200n * NS_PER_S);
  const verdicts = ds.map((d) => d.verdict);
  assert.deepEqual(verdicts.slice(0, 4), ['presend', 'sample', 'presend', 'sample']);
  close(Number(ds[1]!.arrival! - ds[0]!.arrival!) / 1e9, 2, 1e-6, 'presend lead');
  close(Number(ds[3]!.arrival! - ds[1]!.arrival!) / 1e9, 64, 4, 'poll interval');
  assert.equal(samples(c).length, verdicts.filter((v) => v === 'sample').length);
});

test('status counters', () => {
  const c = client({ iburst: true });
  const s = mkServer();
  c.start(T0);
  run(c, s, net(), T0 + 20n * NS_PER_S);
  const st = c.status();
  assert.equal(st.totalTx, 8);
  assert.equal(st.totalRx, 8);
  assert.equal(st.totalValidRx, 8);
  assert.equal(st.reach, 0o377);
  assert.equal(st.poll, 6);
  assert.equal(st.lastPacket!.stratum, 1);
  assert.equal(st.lastPacket!.version, 4);
  assert.equal(st.ntpTests, '111 111 1111');
  assert.ok(st.lastRx !== null && st.lastRx > T0);
  assert.ok(st.lastSample !== null);
  assert.equal(st.kod, null);
  assert.equal(st.online, true);
});

test('a clock step moves the poll timer with the clock', () => {
  const T = 1_700_000_000n * NS_PER_S;
  const c = new ClientAssociation(
    { address: { address: '192.0.2.1', port: 123 }, minpoll: 6, maxpoll: 6 },
    { random: () => 0.5 },
  );
  c.start(T);
  const before = c.nextTimeout()!;
  c.clockStepped(-3600);
  assert.equal(c.nextTimeout()!, before - 3600n * NS_PER_S);
  c.clockStepped(10.5);
  assert.equal(c.nextTimeout()!, before - 3600n * NS_PER_S + 10_500_000_000n);
});
