/**
 * Attacks on the NTP client and server, each test named with its expected outcome. Client-side
 * attacks go through a real Engine (one source) fed with answers from a real NtpServer, then
 * altered the way an attacker would; server-side ones through NtpServer / the Engine.
 * Falsetickers and a source stepping by hours are in test/sim/attacks.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine, sourceConfig } from '../../src/engine/engine.js';
import { NtpServer } from '../../src/ntp/server.js';
import { decodePacket, encodePacket, type NtpPacket } from '../../src/ntp/packet.js';
import { clientRequestPacket } from '../support/ntp-packets.js';
import { NS_PER_S, type Instant } from '../../src/time/ntp-time.js';
import type { Endpoint, ReferenceState, Transmit } from '../../src/engine/types.js';

const T0: Instant = 1_767_225_600n * NS_PER_S;
const MS = 1_000_000n;
const SERVER: Endpoint = { address: '192.0.2.1', port: 123 };
const REF: ReferenceState = {
  synchronized: true,
  leap: 0,
  stratum: 1,
  refId: 0x47505300,
  refTime: T0 - 10n * NS_PER_S,
  rootDelay: 0,
  rootDispersion: 0.0001,
  precision: -24,
};

function drain(e: Engine): Transmit[] {
  const out: Transmit[] = [];
  for (let t = e.pollTransmit(); t; t = e.pollTransmit()) out.push(t);
  return out;
}

/** A client engine with one source, and the honest server it asks. */
function clientAndServer() {
  const client = new Engine(
    {
      sources: [sourceConfig('s', SERVER, { minpoll: 4, maxpoll: 4 })],
      discipline: {},
      server: { enabled: false, access: () => false, clientLogLimit: 16 },
      precision: -20,
    },
    { random: () => 0.5 },
  );
  const server = new NtpServer({ clientLogLimit: 16, access: () => true, random: () => 0.5 });
  let now = T0;
  client.start(now);
  /** Runs the client until it sends a request; returns it and the server's honest answer. */
  const exchange = (): { request: Transmit; answer: Uint8Array; rx: Instant } => {
    for (;;) {
      const out = drain(client).filter((t) => t.socket === 'client');
      if (out.length > 0) {
        const request = out[out.length - 1]!;
        const ans = server.handleRequest(
          request.data,
          { address: '203.0.113.5', port: 40000 },
          now + 10n * MS,
          now + 10n * MS,
          REF,
        )!;
        return { request, answer: ans.data, rx: now + 20n * MS };
      }
      now = client.nextTimeout() ?? now + NS_PER_S;
      client.handleTimeout(now);
    }
  };
  const deliver = (data: Uint8Array, rx: Instant, from: Endpoint = SERVER): void => {
    now = rx > now ? rx : now;
    client.handleDatagram('client', from, data, rx, now);
  };
  const validRx = (): number => client.ntpData(now)[0]!.totalValidRx;
  return { client, exchange, deliver, validRx };
}

function rewrite(data: Uint8Array, f: (p: NtpPacket) => NtpPacket): Uint8Array {
  const d = decodePacket(data);
  assert.ok(d.ok);
  return encodePacket(f(d.packet));
}

test('spoofed reply with a wrong origin timestamp: dropped as bogus, no sample, counted', () => {
  const c = clientAndServer();
  const { answer, rx } = c.exchange();
  const spoofed = rewrite(answer, (p) => ({ ...p, origin: p.origin ^ 0x1234n, transmit: p.transmit + 10n ** 12n }));
  c.deliver(spoofed, rx);
  assert.equal(c.client.responseVerdicts()['dropped:bogus'], 1);
  assert.equal(c.validRx(), 0);
  // The real answer, arriving after the forgery, is still accepted.
  c.deliver(answer, rx + MS);
  assert.equal(c.client.responseVerdicts()['sample'], 1);
  assert.equal(c.validRx(), 1);
});

test('spoofed reply from another address or port: dropped (wrong source), no sample', () => {
  const c = clientAndServer();
  const { answer, rx } = c.exchange();
  c.deliver(answer, rx, { address: '192.0.2.66', port: 123 });
  c.deliver(answer, rx, { address: SERVER.address, port: 124 });
  assert.equal(c.validRx(), 0);
  const v = c.client.responseVerdicts();
  assert.equal((v['dropped:unknown-source'] ?? 0) + (v['dropped:address'] ?? 0), 2);
});

test('replayed reply (same datagram again, and an old one later): dropped, one sample only', () => {
  const c = clientAndServer();
  const first = c.exchange();
  c.deliver(first.answer, first.rx);
  assert.equal(c.validRx(), 1);
  c.deliver(first.answer, first.rx + 5n * MS); // immediate replay
  assert.equal(c.validRx(), 1);
  const second = c.exchange(); // next poll
  c.deliver(first.answer, second.rx); // the old answer replayed to the new request
  assert.equal(c.validRx(), 1);
  const v = c.client.responseVerdicts();
  assert.equal((v['dropped:duplicate'] ?? 0) + (v['dropped:bogus'] ?? 0), 2, JSON.stringify(v));
  c.deliver(second.answer, second.rx);
  assert.equal(c.validRx(), 2);
});

/** Datagrams with broken extension fields and MACs, built by hand (the encoder refuses them). */
function brokenDatagrams(): Array<{ name: string; data: Uint8Array }> {
  const base = encodePacket(clientRequestPacket());
  const withTail = (tail: number[]): Uint8Array => Uint8Array.from([...base, ...tail]);
  const ef = (type: number, len: number, bodyLen: number): number[] => [
    type >> 8,
    type & 255,
    len >> 8,
    len & 255,
    ...new Array<number>(bodyLen).fill(0xab),
  ];
  return [
    { name: 'extension length beyond the datagram', data: withTail(ef(0x0104, 0xfff0, 28)) },
    { name: 'extension length 0', data: withTail(ef(0x0104, 0, 28)) },
    { name: 'extension length not a multiple of 4', data: withTail(ef(0x0104, 18, 28)) },
    { name: 'truncated extension header', data: withTail([0x01, 0x04]) },
    { name: 'truncated extension body', data: withTail(ef(0x0204, 64, 20)) },
    { name: 'oversized: 17 extension fields', data: withTail(new Array(17).fill(ef(0x2005, 16, 12)).flat()) },
    { name: 'oversized: one 2 KiB extension field', data: withTail(ef(0x0204, 2048, 2044)) },
    { name: 'truncated MAC (key id + 8 bytes)', data: withTail(new Array(12).fill(1)) },
    { name: 'oversized MAC (key id + 72 bytes)', data: withTail(new Array(76).fill(1)) },
    { name: 'odd trailing byte', data: withTail([7]) },
    { name: 'header cut short', data: base.subarray(0, 47) },
  ];
}

test('oversized and truncated extension fields and MACs to the server: dropped with a counted reason, never a throw', () => {
  const s = new NtpServer({ clientLogLimit: 16, access: () => true, random: () => 0.5 });
  const cases = brokenDatagrams();
  for (const { name, data } of cases) {
    let out: Transmit | undefined;
    assert.doesNotThrow(() => {
      out = s.handleRequest(data, { address: '198.51.100.1', port: 123 }, T0, T0, REF);
    }, name);
    assert.equal(out, undefined, `${name}: answered`);
  }
  const st = s.stats();
  assert.equal(st.ntpPacketsDropped, cases.length);
  const reasons = Object.entries(st.malformedDropped);
  assert.equal(
    reasons.reduce((n, [, v]) => n + v, 0),
    cases.length,
  );
  for (const [reason] of reasons) assert.match(reason, /^[a-z-]+$/, 'a named reason');
});

test('oversized and truncated extension fields and MACs in answers to the client: dropped, no sample, never a throw', () => {
  const c = clientAndServer();
  const { answer, rx } = c.exchange();
  for (const { name, data } of brokenDatagrams()) {
    // The attacker copies the right origin into its forgery (on-path): the framing still kills it.
    const forged = Uint8Array.from(data);
    forged.set(answer.subarray(0, Math.min(48, forged.length)));
    assert.doesNotThrow(() => c.deliver(forged, rx), name);
  }
  assert.equal(c.validRx(), 0);
  assert.ok(Object.keys(c.client.responseVerdicts()).every((v) => v.startsWith('dropped:')));
  c.deliver(answer, rx);
  assert.equal(c.validRx(), 1);
});

test('flood from spoofed addresses with ratelimit: memory bounded, the real client still answered', () => {
  const limit = 1024;
  const s = new NtpServer({
    clientLogLimit: limit,
    access: () => true,
    random: (() => {
      let a = 42;
      return () => (a = (a * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    })(),
    ratelimit: { interval: 4, burst: 4, leak: 2, kod: 0 },
  });
  const req = encodePacket(clientRequestPacket());
  const victim = { address: '192.0.2.200', port: 123 };
  let victimAnswered = 0;
  // 64 s of 1,000 spoofed requests per second: half from random addresses, half carrying the
  // victim's own address (to get it rate limited); the victim itself polls every 16 s.
  let flood = 0;
  for (let ms = 0; ms < 64_000; ms++) {
    const t = T0 + BigInt(ms) * MS;
    const from =
      ms % 2 ? { address: `10.${(flood >> 16) & 255}.${(flood >> 8) & 255}.${flood++ & 255}`, port: 123 } : victim;
    s.handleRequest(req, from, t, t, REF);
    if (ms % 16_000 === 7) {
      for (let k = 0; k < 4; k++) if (s.handleRequest(req, victim, t + BigInt(k), t, REF)) victimAnswered++;
    }
    if (ms % 8000 === 0) assert.ok(s.stats().clientLogSizeActive <= limit);
  }
  assert.equal(s.stats().clientLogSizeActive, limit);
  // 16 tries with the bucket drained by the flood: each leaks with p = 1/4 (P(none) ≈ 1%).
  assert.ok(victimAnswered >= 1, `victim answered ${victimAnswered} times of 16`);
  assert.ok(victimAnswered < 16, 'the spoofed copies of its address did limit it');
  assert.ok((s.stats().malformedDropped['ratelimit'] ?? 0) > 20_000);
});
