/**
 * No amplification: whatever an unauthenticated sender puts in a datagram (random, mutated or
 * well-formed requests of every mode), the answers sent back to it are never more bytes than it
 * sent (fast-check, fixed seed). Signed NTS / symmetric-key answers are checked by their own
 * tests; loopback-only paths (mode 6 from 127.0.0.1, the JSON control socket) may answer more,
 * since nobody off the host can get them to answer at all (asserted here too).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Engine, sourceConfig } from '../../src/engine/engine.js';
import { encodePacket, EF_NTS_COOKIE, EF_NTS_UNIQUE_IDENTIFIER, type NtpPacket } from '../../src/ntp/packet.js';
import { NtpServer } from '../../src/ntp/server.js';
import { Mode6Server, engineMode6View } from '../../src/ntp/mode6-server.js';
import { OP } from '../../src/ntp/mode6.js';
import { CmdmonService } from '../../src/cmdmon/service.js';
import { CmdAccess } from '../../src/cmdmon/access.js';
import { N_REQUEST_TYPES, requestLength } from '../../src/cmdmon/protocol.js';
import { acceptUdpSource } from '../../src/control/server.js';
import { ntpqRequest } from '../support/mode6.js';
import { NS_PER_S, type Instant } from '../../src/time/ntp-time.js';
import type { Endpoint, ReferenceState, Transmit } from '../../src/engine/types.js';

const SEED = 0x5eed_0005;
const T0: Instant = 1_767_225_600n * NS_PER_S;
const MODE6 = { queryAllowed: () => true, version: 'rubidiumd test', processor: 'x86_64', system: 'Linux' };

/** A synchronised engine serving NTP (ratelimit with KoD), mode 6, with two sources. */
function servingEngine(): Engine {
  const e = new Engine(
    {
      sources: [
        sourceConfig('a', { address: '192.0.2.1', port: 123 }),
        sourceConfig('b', { address: '2001:db8::5', port: 123 }),
      ],
      discipline: { localStratum: { stratum: 3, distance: 1 } },
      server: {
        enabled: true,
        access: () => true,
        clientLogLimit: 64,
        ratelimit: { interval: 0, burst: 4, leak: 2, kod: 1 },
        mode6: MODE6,
      },
      precision: -20,
    },
    { random: () => 0.3 },
  );
  e.start(T0);
  drain(e);
  return e;
}

function drain(e: Engine): Transmit[] {
  const out: Transmit[] = [];
  for (let t = e.pollTransmit(); t; t = e.pollTransmit()) out.push(t);
  return out;
}

// ---- arbitraries ----

const extensionArb = fc.record({
  type: fc.oneof(
    fc.constantFrom(EF_NTS_UNIQUE_IDENTIFIER, EF_NTS_COOKIE, 0x0304, 0x0404, 0x2005, 0xf323),
    fc.integer({ min: 0, max: 0xffff }),
  ),
  body: fc.uint8Array({ minLength: 0, maxLength: 72 }),
});

const macArb = fc.oneof(
  fc.constant(undefined),
  fc.record({
    keyId: fc.nat(),
    digest: fc.oneof(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.uint8Array({ minLength: 20, maxLength: 20 })),
  }),
  fc.constant({ keyId: 0, digest: new Uint8Array(0) }), // crypto-NAK
);

const ntpRequestArb: fc.Arbitrary<Uint8Array> = fc
  .record({
    leap: fc.integer({ min: 0, max: 3 }),
    version: fc.oneof(fc.constant(4), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 0, max: 7 })),
    mode: fc.oneof(fc.constant(3), fc.integer({ min: 0, max: 7 })),
    poll: fc.integer({ min: -128, max: 127 }),
    origin: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
    receive: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
    transmit: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
    extensions: fc.oneof(fc.constant([]), fc.array(extensionArb, { maxLength: 4 })),
    mac: fc.oneof(fc.constant(undefined), macArb),
  })
  .map((r) => {
    const p: NtpPacket = {
      leap: r.leap as NtpPacket['leap'],
      version: r.version,
      mode: r.mode,
      stratum: 0,
      poll: r.poll,
      precision: 0,
      rootDelay: 0,
      rootDispersion: 0,
      refId: 0,
      refTime: 0n,
      origin: r.origin,
      receive: r.receive,
      transmit: r.transmit,
      extensions: [...r.extensions],
      ...(r.mac ? { mac: r.mac } : {}),
    };
    return encodePacket(p);
  });

const mode6RequestArb: fc.Arbitrary<Uint8Array> = fc
  .record({
    opcode: fc.oneof(fc.constantFrom(OP.READSTAT, OP.READVAR), fc.integer({ min: 0, max: 31 })),
    associd: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 0xffff })),
    data: fc.oneof(
      fc.constant(''),
      fc.constantFrom('stratum,refid', 'srcadr,offset,delay', 'clock'),
      fc.string({ maxLength: 40 }),
    ),
    version: fc.integer({ min: 1, max: 4 }),
  })
  .map((r) => ntpqRequest(r.opcode, { associd: r.associd, data: r.data, version: r.version }));

const cmdmonRequestArb: fc.Arbitrary<Uint8Array> = fc
  .record({
    command: fc.integer({ min: 0, max: N_REQUEST_TYPES + 2 }),
    version: fc.constantFrom(6, 6, 6, 5, 4),
    body: fc.uint8Array({ maxLength: 64 }),
    shorten: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 40 })),
  })
  .map((r) => {
    let len = r.command < N_REQUEST_TYPES ? requestLength(r.command, r.version) : 20;
    if (!(len >= 20)) len = 20;
    const b = new Uint8Array(Math.max(4, len - r.shorten));
    const full = new Uint8Array(len);
    full[0] = r.version;
    full[1] = 1;
    full[4] = r.command >> 8;
    full[5] = r.command & 0xff;
    full.set(r.body.subarray(0, Math.max(0, len - 20)), 20);
    b.set(full.subarray(0, b.length));
    return b;
  });

/** A valid input, or one with a few bytes overwritten, cut short or extended. */
function mutated(base: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  return fc
    .record({
      data: base,
      sets: fc.array(fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }), { maxLength: 4 }),
      cut: fc.oneof(fc.constant(-1), fc.nat()),
      extra: fc.uint8Array({ maxLength: 24 }),
    })
    .map(({ data, sets, cut, extra }) => {
      let b = Uint8Array.from(data);
      for (const s of sets) if (b.length > 0) b[s.at % b.length] = s.value;
      if (cut >= 0 && b.length > 0) b = b.subarray(0, cut % (b.length + 1));
      if (extra.length > 0 && cut < 0) b = Uint8Array.from([...b, ...extra]);
      return b;
    });
}

const remoteArb: fc.Arbitrary<Endpoint> = fc.record({
  address: fc.oneof(fc.constantFrom('198.51.100.7', '198.51.100.8', '2001:db8::77'), fc.ipV4()),
  port: fc.oneof(fc.constant(123), fc.integer({ min: 1024, max: 65535 })),
});

// ---- properties ----

test('NTP server and mode 6 (through the Engine): no answer is larger than its request, from any remote sender', () => {
  const e = servingEngine();
  let t = T0;
  let answered = 0;
  let kods = 0;
  const datagram = fc.oneof(
    { weight: 4, arbitrary: ntpRequestArb },
    { weight: 3, arbitrary: mutated(ntpRequestArb) },
    { weight: 2, arbitrary: mode6RequestArb },
    { weight: 2, arbitrary: mutated(mode6RequestArb) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }) },
  );
  fc.assert(
    fc.property(datagram, remoteArb, (data, from) => {
      t += 10_000_000n;
      e.handleDatagram('server', from, data, t, t);
      const out = drain(e);
      let total = 0;
      for (const o of out) {
        total += o.data.length;
        if (o.data.length >= 48 && (o.data[0]! & 7) === 4 && o.data[1] === 0) kods++;
      }
      if (out.length > 0) answered++;
      assert.ok(total <= data.length, `answered ${total} bytes to a ${data.length}-byte datagram`);
    }),
    { seed: SEED, numRuns: 3000 },
  );
  // The property is not vacuous: many requests were answered, some with KoD RATE.
  assert.ok(answered > 500, `answered ${answered}`);
  assert.ok(kods > 0, `KoD answers ${kods}`);
});

test('NtpServer alone: a well-formed request with extension fields or a MAC gets at most 48 bytes, never more than sent', () => {
  const ref: ReferenceState = {
    synchronized: true,
    leap: 0,
    stratum: 2,
    refId: 0xc0000201,
    refTime: T0,
    rootDelay: 0.01,
    rootDispersion: 0.001,
    precision: -23,
  };
  const s = new NtpServer({ clientLogLimit: 16, access: () => true, random: () => 0.5 });
  let answered = 0;
  fc.assert(
    fc.property(ntpRequestArb, remoteArb, (data, from) => {
      const out = s.handleRequest(data, from, T0, T0, ref);
      if (!out) return;
      answered++;
      assert.ok(out.data.length <= data.length && out.data.length === 48);
    }),
    { seed: SEED, numRuns: 2000 },
  );
  assert.ok(answered > 100, `answered ${answered}`);
  // Without an authenticator, MAC'd and NTS requests are all dropped, as counted.
  assert.ok((s.stats().malformedDropped['auth'] ?? 0) > 100);
});

test('mode 6 from off the host: answers never exceed the request; from loopback they may (ntpq)', () => {
  const e = servingEngine();
  const m6 = new Mode6Server(engineMode6View(e, null), MODE6);
  let limited = 0;
  fc.assert(
    fc.property(fc.oneof(mode6RequestArb, mutated(mode6RequestArb)), remoteArb, (data, from) => {
      const out = m6.handle(data, from, T0);
      const total = out.reduce((n, o) => n + o.data.length, 0);
      assert.ok(total <= data.length, `${total} > ${data.length}`);
    }),
    { seed: SEED, numRuns: 1500 },
  );
  limited = m6.stats().amplificationLimited;
  assert.ok(limited > 0, 'some answers were cut down to an error');
  // The same READVAR from loopback gets its full (larger) answer.
  const req = ntpqRequest(OP.READVAR);
  const big = m6.handle(req, { address: '127.0.0.1', port: 40000 }, T0);
  assert.ok(big.reduce((n, o) => n + o.data.length, 0) > req.length);
});

test('cmdmon over UDP: no reply is longer than its (padded) request, whatever the command and sender', async () => {
  const e = servingEngine();
  const svc = new CmdmonService({
    engine: e,
    now: () => T0,
    monotonicSeconds: () => 0,
    flush: () => {},
    access: new CmdAccess({ rules: [{ allow: true, all: false, subnet: '0.0.0.0/0' }] }),
  });
  const samples = fc.sample(fc.tuple(fc.oneof(cmdmonRequestArb, mutated(cmdmonRequestArb)), remoteArb), {
    seed: SEED,
    numRuns: 3000,
  });
  let replies = 0;
  for (const [data, from] of samples) {
    for (const origin of [{ transport: 'udp' as const, address: from.address }, { transport: 'unix' as const }]) {
      const out = await svc.handle(data, origin);
      if (!out) continue;
      replies++;
      assert.ok(out.length <= data.length, `command ${data[5]}: reply ${out.length} > request ${data.length}`);
    }
  }
  assert.ok(replies > 500, `replies ${replies}`);
});

test('JSON control over UDP: only loopback senders are ever answered', () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.ipV4(),
        fc.ipV6(),
        fc.ipV4().map((a) => `::ffff:${a}`),
      ),
      (address) => {
        const loop = /^(::ffff:)?127\./.test(address) || /^(0*:)*:?0*1$/.test(address) || address === '::1';
        if (!loop) assert.equal(acceptUdpSource(address), false, address);
      },
    ),
    { seed: SEED, numRuns: 3000 },
  );
  assert.equal(acceptUdpSource('127.0.0.1'), true);
  assert.equal(acceptUdpSource('::1'), true);
});
