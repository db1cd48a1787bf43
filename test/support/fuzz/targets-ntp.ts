/**
 * Fuzz targets of the NTP wire formats: the packet codec, the server and client paths that take
 * a datagram whole (NtpServer.handleRequest, ClientAssociation.handleResponse), mode 6 (decoder
 * and responder), chrony's cmdmon (decoder and service).
 */
import fc from 'fast-check';
import {
  decodePacket,
  encodePacket,
  EF_NTS_AUTH_AND_EEF,
  EF_NTS_COOKIE,
  EF_NTS_COOKIE_PLACEHOLDER,
  EF_NTS_UNIQUE_IDENTIFIER,
  MAX_PACKET_LENGTH,
  type NtpPacket,
} from '../../../src/ntp/packet.js';
import { NtpServer } from '../../../src/ntp/server.js';
import { ClientAssociation } from '../../../src/ntp/client.js';
import { decodeControlRequest, parseVarRequest, OP } from '../../../src/ntp/mode6.js';
import { Mode6Server, type Mode6Source, type Mode6View } from '../../../src/ntp/mode6-server.js';
import { decodeRequest } from '../../../src/cmdmon/request.js';
import { CmdmonService } from '../../../src/cmdmon/service.js';
import { CmdAccess } from '../../../src/cmdmon/access.js';
import { PKT_TYPE_CMD_REPLY, requestLength, REQ } from '../../../src/cmdmon/protocol.js';
import { Engine, sourceConfig } from '../../../src/engine/engine.js';
import type { Endpoint, ReferenceState } from '../../../src/engine/types.js';
import { NS_PER_S, type Instant } from '../../../src/time/ntp-time.js';
import { clientRequestBytes } from '../ntp-packets.js';
import { mutatedBytes } from './mutate.js';
import { seedBytes } from './seeds.js';
import { expect, type FuzzTarget } from './target.js';

const NOW: Instant = 1_767_225_600n * NS_PER_S + 250_000_000n;
const PEER: Endpoint = { address: '192.0.2.1', port: 123 };
const REMOTE: Endpoint = { address: '198.51.100.9', port: 40123 };
const LOOP: Endpoint = { address: '127.0.0.1', port: 40124 };

const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const EF_TYPES = [EF_NTS_UNIQUE_IDENTIFIER, EF_NTS_COOKIE, EF_NTS_COOKIE_PLACEHOLDER, EF_NTS_AUTH_AND_EEF, 0x2005];

/** Structure-aware NTP packets: any header, up to 5 extension fields, optional MAC/crypto-NAK. */
export const ntpPacketArb: fc.Arbitrary<NtpPacket> = fc
  .record({
    leap: fc.constantFrom(0, 1, 2, 3) as fc.Arbitrary<0 | 1 | 2 | 3>,
    version: fc.integer({ min: 1, max: 4 }),
    mode: fc.constantFrom(0, 1, 2, 3, 4, 5),
    stratum: fc.integer({ min: 0, max: 255 }),
    poll: fc.integer({ min: -128, max: 127 }),
    precision: fc.integer({ min: -128, max: 127 }),
    rootDelay: fc.nat().map((v) => v / 65536),
    rootDispersion: fc.nat().map((v) => v / 65536),
    refId: fc.nat({ max: 0xffff_ffff }),
    refTime: u64,
    origin: u64,
    receive: u64,
    transmit: u64,
    extensions: fc.array(
      fc.record({
        type: fc.oneof(fc.constantFrom(...EF_TYPES), fc.integer({ min: 0, max: 0xffff })),
        body: fc.uint8Array({ minLength: 12, maxLength: 100 }).map((b) => b.slice(0, b.length & ~3)),
      }),
      { maxLength: 5 },
    ),
    mac: fc.option(
      fc.oneof(
        fc.record({ keyId: fc.nat({ max: 0xffff_ffff }), digest: fc.uint8Array({ minLength: 16, maxLength: 16 }) }),
        fc.record({ keyId: fc.nat({ max: 0xffff_ffff }), digest: fc.uint8Array({ minLength: 20, maxLength: 20 }) }),
      ),
      { nil: undefined },
    ),
  })
  .map((p) => {
    // NTPv1-3 carry no extension fields. RFC 7822 §7.5: without a MAC the last extension field
    // must be at least 28 bytes (a shorter one would read as a MAC).
    if (p.version < 4) p.extensions = [];
    if (p.mac === undefined) delete p.mac;
    const last = p.extensions[p.extensions.length - 1];
    if (!p.mac && last && last.body.length < 24)
      last.body = Uint8Array.from([...last.body, ...new Uint8Array(24 - last.body.length)]);
    return p as NtpPacket;
  });

const ntpSeeds = (): Uint8Array[] =>
  seedBytes('ntp', [clientRequestBytes(), clientRequestBytes({ version: 3 })]).concat(seedBytes('nts-ntp'));

/** Mutated real packets (most inputs) and structured ones (encoded, then maybe mutated). */
export function ntpInputArb(): fc.Arbitrary<Uint8Array> {
  const seeds = ntpSeeds();
  return fc.oneof(
    { weight: 3, arbitrary: mutatedBytes(seeds, 6, MAX_PACKET_LENGTH + 64) },
    { weight: 1, arbitrary: ntpPacketArb.map((p) => encodePacket(p)) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }) },
  );
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

const decodeTarget: FuzzTarget<Uint8Array> = {
  name: 'ntp-packet',
  description: 'decodePacket: header, RFC 7822 extension fields, MAC; encode(decode(b)) = b',
  arbitrary: ntpInputArb(),
  check(b) {
    const r = decodePacket(b);
    if (!r.ok) return;
    expect(r.packet.extensions.length <= 16, 'more than 16 extension fields accepted');
    // Decoding is lossless: the accepted datagram is exactly what encoding the result gives.
    expect(sameBytes(encodePacket(r.packet), b), 'encode(decode(b)) differs from b');
  },
};

const roundTripTarget: FuzzTarget<NtpPacket> = {
  name: 'ntp-roundtrip',
  description: 'decodePacket(encodePacket(p)) = p for structured packets',
  arbitrary: ntpPacketArb,
  check(p) {
    const bytes = encodePacket(p);
    const r = decodePacket(bytes);
    if (bytes.length > MAX_PACKET_LENGTH) return expect(!r.ok, 'oversized packet accepted');
    expect(r.ok, `valid packet rejected (${r.ok ? '' : r.reason})`);
    if (!r.ok) return;
    const q = r.packet;
    expect(q.version === p.version && q.mode === p.mode && q.leap === p.leap, 'first byte fields differ');
    expect(q.stratum === p.stratum && q.poll === p.poll && q.precision === p.precision, 'header bytes differ');
    expect(q.rootDelay === p.rootDelay && q.rootDispersion === p.rootDispersion, 'root delay/dispersion differ');
    expect(q.refId === p.refId && q.refTime === p.refTime && q.origin === p.origin, 'header words differ');
    expect(q.receive === p.receive && q.transmit === p.transmit, 'timestamps differ');
    expect(q.extensions.length === p.extensions.length, 'extension count differs');
    q.extensions.forEach((ef, i) => {
      const src = p.extensions[i]!;
      expect(
        ef.type === src.type && sameBytes(ef.body.subarray(0, src.body.length), src.body),
        `extension ${i} differs`,
      );
    });
    expect((q.mac?.keyId ?? -1) === (p.mac?.keyId ?? -1), 'MAC key id differs');
    if (p.mac) expect(sameBytes(q.mac!.digest, p.mac.digest), 'MAC digest differs');
  },
};

const SYNCED: ReferenceState = {
  synchronized: true,
  leap: 0,
  stratum: 2,
  refId: 0xc0000201,
  refTime: NOW - 5n * NS_PER_S,
  rootDelay: 0.0005,
  rootDispersion: 0.002,
  precision: -25,
};

/** Server input: a datagram, a source port, whether the server is synchronised. */
const serverTarget: FuzzTarget<{ data: Uint8Array; port: number; sync: boolean; ratelimit: boolean }> = {
  name: 'ntp-server',
  description: 'NtpServer.handleRequest whole path: answer ≤ request, answers decode as mode 4',
  arbitrary: fc.record({
    data: ntpInputArb(),
    port: fc.constantFrom(123, 40123),
    sync: fc.boolean(),
    ratelimit: fc.boolean(),
  }),
  check({ data, port, sync, ratelimit }) {
    const server = new NtpServer({
      clientLogLimit: 8,
      access: () => true,
      random: () => 0.5,
      ...(ratelimit ? { ratelimit: { interval: 0, burst: 1, leak: 2, kod: 1 } } : {}),
    });
    const from = { address: REMOTE.address, port };
    const ref = sync ? SYNCED : { ...SYNCED, synchronized: false };
    // Twice from the same client: the second request may take the interleaved or rate-limit path.
    for (let i = 0; i < 2; i++) {
      const out = server.handleRequest(data, from, NOW + BigInt(i), NOW + BigInt(i) + 1000n, ref);
      if (!out) continue;
      expect(out.data.length <= data.length, `answer of ${out.data.length} bytes to a ${data.length}-byte request`);
      const d = decodePacket(out.data);
      expect(d.ok && d.packet.mode === 4, 'answer is not a valid mode 4 packet');
      expect(out.to.address === from.address && out.to.port === port, 'answer sent elsewhere');
    }
    const st = server.stats();
    expect(st.ntpPacketsReceived === 2, 'request not counted');
  },
};

/** Client input: a datagram, whether to give it the outstanding request's origin, xleave. */
const clientTarget: FuzzTarget<{ data: Uint8Array; matchOrigin: boolean; xleave: boolean }> = {
  name: 'ntp-client',
  description: 'ClientAssociation.handleResponse whole path: verdict, finite samples',
  arbitrary: fc.record({ data: ntpInputArb(), matchOrigin: fc.boolean(), xleave: fc.boolean() }),
  check({ data, matchOrigin, xleave }) {
    const a = new ClientAssociation({ address: PEER, minpoll: 4, iburst: true, xleave }, { random: () => 0.5 });
    a.start(NOW);
    const t = a.nextTimeout();
    if (t !== null) a.handleTimeout(t);
    const req = a.pollTransmit();
    expect(req, 'association sent no request');
    const resp = Uint8Array.from(data);
    // Most fuzzed datagrams would fail the origin check at once; this lets them reach the rest.
    if (matchOrigin && resp.length >= 48) resp.set(req.data.subarray(40, 48), 24);
    const rx = (t ?? NOW) + 2_000_000n;
    const verdict = a.handleResponse(resp, PEER, rx);
    expect(/^(sample|kod|presend|dropped:[a-z0-9:-]+)$/.test(verdict), `unexpected verdict ${verdict}`);
    for (let ev = a.pollEvent(); ev; ev = a.pollEvent()) {
      if (ev.type !== 'sample') continue;
      const s = ev.sample;
      for (const k of ['offset', 'delay', 'dispersion', 'rootDelay', 'rootDispersion'] as const)
        expect(Number.isFinite(s[k]), `sample ${k} is ${s[k]}`);
      expect(s.delay >= 0, 'negative delay accepted');
    }
    const st = a.status();
    expect(st.totalRx <= 1 && st.reach <= 0xff, 'status out of range');
  },
};

// ---- mode 6 ----

const MODE6_SOURCE: Mode6Source = {
  key: '192.0.2.1:123',
  name: 'ntp1.example.net',
  address: PEER,
  state: '*',
  status: {
    address: PEER,
    online: true,
    stopped: false,
    poll: 6,
    minpoll: 4,
    maxpoll: 10,
    reach: 0o377,
    lastRx: NOW - 12n * NS_PER_S,
    lastPacket: {
      leap: 0,
      version: 4,
      mode: 4,
      stratum: 1,
      poll: 7,
      precision: -20,
      rootDelay: 0.0005,
      rootDispersion: 0.00125,
      refId: 0x47505300,
      refTime: NOW - 30n * NS_PER_S,
    },
    lastSample: { offset: 0.000123, delay: 0.00042, dispersion: 0.0001, time: NOW - 12n * NS_PER_S },
    totalTx: 10,
    totalRx: 9,
    totalValidRx: 9,
    ntpTests: '111 111 1111',
    interleaved: false,
    kod: null,
    burstRemaining: 0,
    unreachableRun: 0,
  },
  jitter: 0.00002,
};

const MODE6_VIEW: Mode6View = {
  system: () => ({
    reference: SYNCED,
    lastOffset: -0.0000025,
    rmsOffset: 0.000004,
    frequencyPpm: 12.345,
    skewPpm: 0.0123,
    localRefId: 0x4c4f434c,
  }),
  sources: () => [MODE6_SOURCE],
};

/** A mode 6 request as ntpq builds it (header + data padded to 4). */
function mode6Request(opcode: number, associd: number, text: string, sequence = 1): Uint8Array {
  const data = Buffer.from(text, 'latin1');
  const b = new Uint8Array((12 + data.length + 3) & ~3);
  b[0] = (0 << 6) | (2 << 3) | 6;
  b[1] = opcode;
  b[2] = sequence >> 8;
  b[3] = sequence & 0xff;
  b[6] = associd >> 8;
  b[7] = associd & 0xff;
  b[10] = data.length >> 8;
  b[11] = data.length & 0xff;
  b.set(data, 12);
  return b;
}

function mode6Inputs(): fc.Arbitrary<Uint8Array> {
  const seeds = seedBytes('mode6', [
    mode6Request(OP.READSTAT, 0, ''),
    mode6Request(OP.READVAR, 0, 'version,stratum,refid,offset'),
    mode6Request(OP.READVAR, 1, 'srcadr,reach,delay,offset,jitter'),
  ]);
  const structured = fc
    .tuple(
      fc.integer({ min: 0, max: 31 }),
      fc.integer({ min: 0, max: 3 }),
      fc.array(fc.constantFrom('version', 'stratum', 'refid', 'srcadr', 'reach', 'peer', 'x', '=', ',', ' ', 'a'), {
        maxLength: 40,
      }),
    )
    .map(([op, assoc, words]) => mode6Request(op, assoc, words.join(',')));
  return fc.oneof({ weight: 3, arbitrary: mutatedBytes(seeds, 6, 1024) }, { weight: 1, arbitrary: structured });
}

const mode6Target: FuzzTarget<{ data: Uint8Array; loopback: boolean }> = {
  name: 'mode6',
  description: 'decodeControlRequest + Mode6Server.handle: off loopback answers ≤ request',
  arbitrary: fc.record({ data: mode6Inputs(), loopback: fc.boolean() }),
  check({ data, loopback }) {
    const dec = decodeControlRequest(data);
    if (dec.ok) {
      expect(dec.request.data.length <= 468, 'request data over 468 bytes');
      parseVarRequest(dec.request.data);
    }
    const server = new Mode6Server(MODE6_VIEW, {
      queryAllowed: () => true,
      version: 'rubidiumd fuzz',
      processor: 'x86_64',
      system: 'Linux',
    });
    const out = server.handle(data, loopback ? LOOP : REMOTE, NOW);
    const total = out.reduce((n, t) => n + t.data.length, 0);
    if (!loopback) expect(total <= data.length, `mode 6 answer of ${total} bytes to ${data.length} bytes`);
    expect(out.length <= 64, `${out.length} fragments`);
    for (const t of out) expect(t.data.length <= 12 + 468 + 4, 'fragment over the mode 6 maximum');
  },
};

// ---- cmdmon ----

function cmdRequest(command: number, body: Uint8Array = new Uint8Array(0)): Uint8Array {
  const len = requestLength(command);
  const b = new Uint8Array(len > 0 ? len : 20);
  b[0] = 6;
  b[1] = 1;
  b[4] = command >> 8;
  b[5] = command & 0xff;
  b.set([0xde, 0xad, 0xbe, 0xef], 8);
  b.set(body.subarray(0, Math.max(0, b.length - 20)), 20);
  return b;
}

function cmdmonInputs(): fc.Arbitrary<Uint8Array> {
  const synthetic = [REQ.TRACKING, REQ.N_SOURCES, REQ.SOURCE_DATA, REQ.SOURCESTATS, REQ.SERVER_STATS, REQ.ACTIVITY].map(
    (c) => cmdRequest(c),
  );
  const seeds = seedBytes('cmdmon', synthetic);
  const structured = fc
    .tuple(fc.integer({ min: 0, max: 80 }), fc.uint8Array({ maxLength: 400 }))
    .map(([cmd, body]) => cmdRequest(cmd, body));
  return fc.oneof({ weight: 3, arbitrary: mutatedBytes(seeds, 6, 1024) }, { weight: 1, arbitrary: structured });
}

function cmdmonEngine(): Engine {
  const e = new Engine(
    {
      sources: [sourceConfig('s1', PEER, { iburst: true }), sourceConfig('s2', { address: '2001:db8::5', port: 123 })],
      discipline: { localStratum: { stratum: 10, distance: 1 } },
      server: { enabled: true, access: () => true, clientLogLimit: 16 },
      precision: -20,
    },
    { random: () => 0.5 },
  );
  e.start(NOW);
  return e;
}

const cmdmonTarget: FuzzTarget<{ data: Uint8Array; unix: boolean }> = {
  name: 'cmdmon',
  description: "decodeRequest + CmdmonService.handle: UDP replies ≤ request, replies are chrony's type 2",
  arbitrary: fc.record({ data: cmdmonInputs(), unix: fc.boolean() }),
  async check({ data, unix }) {
    decodeRequest(data);
    const engine = cmdmonEngine();
    const svc = new CmdmonService({
      engine,
      now: () => NOW,
      monotonicSeconds: () => 0,
      flush: () => {
        while (engine.pollTransmit());
      },
      access: new CmdAccess({}),
    });
    const reply = await svc.handle(data, unix ? { transport: 'unix' } : { transport: 'udp', address: '127.0.0.1' });
    if (!reply) return;
    expect(reply.length >= 28 && reply[1] === PKT_TYPE_CMD_REPLY, 'reply is not a cmdmon reply');
    if (!unix) expect(reply.length <= data.length, `UDP reply of ${reply.length} bytes to ${data.length} bytes`);
  },
};

export function ntpTargets(): FuzzTarget[] {
  return [decodeTarget, roundTripTarget, serverTarget, clientTarget, mode6Target, cmdmonTarget] as FuzzTarget[];
}
