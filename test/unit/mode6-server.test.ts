/** The mode 6 responder (src/ntp/mode6-server.ts) and its routing in the Engine. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Mode6Server, type Mode6Source, type Mode6System, type Mode6View } from '../../src/ntp/mode6-server.js';
import { CERR, CTL_HEADER_LEN, OP, decodeControlHeader } from '../../src/ntp/mode6.js';
import { Engine, sourceConfig } from '../../src/engine/engine.js';
import { ntpqRequest, parseVarResponse, reassemble } from '../support/mode6.js';
import { addSeconds, instantToNtp64, NS_PER_S, type Instant } from '../../src/time/ntp-time.js';
import type { ClientAssociationStatus } from '../../src/ntp/client.js';
import type { Endpoint, Transmit } from '../../src/engine/types.js';

const NOW: Instant = 1_767_225_600n * NS_PER_S + 250_000_000n;
const LOOP: Endpoint = { address: '127.0.0.1', port: 40000 };
const REMOTE: Endpoint = { address: '10.77.9.2', port: 40001 };

function status(over: Partial<ClientAssociationStatus> = {}): ClientAssociationStatus {
  return {
    address: { address: '192.0.2.1', port: 123 },
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
      refId: 0x47505300, // "GPS"
      refTime: NOW - 30n * NS_PER_S,
    },
    lastSample: { offset: 0.000123456, delay: 0.00042, dispersion: 0.0001, time: NOW - 12n * NS_PER_S },
    totalTx: 10,
    totalRx: 9,
    totalValidRx: 9,
    ntpTests: '111 111 1111',
    interleaved: false,
    kod: null,
    burstRemaining: 0,
    ...over,
  } as ClientAssociationStatus;
}

const SYNCED: Mode6System = {
  reference: {
    synchronized: true,
    leap: 0,
    stratum: 2,
    refId: 0xc0000201,
    refTime: NOW - 5n * NS_PER_S,
    rootDelay: 0.0005,
    rootDispersion: 0.002,
    precision: -25,
  },
  lastOffset: -0.0000025,
  rmsOffset: 0.000004,
  frequencyPpm: 12.345,
  skewPpm: 0.0123,
  localRefId: 0x4c4f434c,
};

function view(sources: Mode6Source[], sys: Mode6System = SYNCED): Mode6View & { list: Mode6Source[] } {
  const v = { list: sources, system: () => sys, sources: () => v.list };
  return v;
}

const GPS_SRC: Mode6Source = {
  key: '192.0.2.1:123',
  name: 'ntp1.example.net',
  address: { address: '192.0.2.1', port: 123 },
  state: '*',
  status: status(),
  jitter: 0.00002,
};
const SILENT_SRC: Mode6Source = {
  key: '192.0.2.9:123',
  name: '192.0.2.9',
  address: { address: '192.0.2.9', port: 123 },
  state: '?',
  status: status({ reach: 0, lastRx: null, lastPacket: null, lastSample: null, poll: 4 }),
  jitter: null,
};

function server(v: Mode6View, queryAllowed: (a: string) => boolean = () => true): Mode6Server {
  return new Mode6Server(v, { queryAllowed, version: 'rubidiumd 0.1.0', processor: 'x86_64', system: 'Linux/6.1' });
}

function ask(s: Mode6Server, req: Uint8Array, from: Endpoint = LOOP) {
  const out = s.handle(req, from, NOW);
  return {
    out,
    ...(out.length ? reassemble(out.map((t) => t.data)) : { data: Buffer.alloc(0), status: 0, error: null }),
  };
}

function readstat(s: Mode6Server): Array<{ id: number; status: number }> {
  const r = ask(s, ntpqRequest(OP.READSTAT));
  assert.equal(r.error, null);
  const out = [];
  for (let i = 0; i < r.data.length; i += 4)
    out.push({ id: r.data.readUInt16BE(i), status: r.data.readUInt16BE(i + 2) });
  return out;
}

test('READSTAT lists every source with a stable association ID and its peer status', () => {
  const v = view([GPS_SRC, SILENT_SRC]);
  const s = server(v);
  const first = readstat(s);
  assert.equal(first.length, 2);
  // Configured + reachable + sys.peer; configured, unreachable, rejected.
  assert.equal(first[0]!.status, 0x9600);
  assert.equal(first[1]!.status, 0x8000);
  assert.notEqual(first[0]!.id, first[1]!.id);
  assert.deepEqual(readstat(s), first, 'same IDs on the next query');
  // A source removed and another added: survivors keep their ID, the new one gets a fresh ID.
  v.list = [SILENT_SRC, { ...GPS_SRC, key: '198.51.100.4:123', address: { address: '198.51.100.4', port: 123 } }];
  const next = readstat(s);
  assert.equal(next[0]!.id, first[1]!.id);
  assert.ok(!first.some((x) => x.id === next[1]!.id), 'no ID reused');
  // The answer's status word is the system status: leap 0, sync_ntp (6).
  const r = ask(s, ntpqRequest(OP.READSTAT));
  assert.equal(r.status, 0x0600);
});

test('READVAR 0 with no names returns the system variables ntpq -c rv shows, with correct values', () => {
  const s = server(view([GPS_SRC, SILENT_SRC]));
  const r = ask(s, ntpqRequest(OP.READVAR, { sequence: 42, version: 4 }));
  assert.equal(r.error, null);
  const h = decodeControlHeader(r.out[0]!.data)!;
  assert.equal(h.sequence, 42);
  assert.equal(h.version, 4);
  const vars = parseVarResponse(r.data.toString('latin1'));
  assert.equal(vars.get('version'), 'rubidiumd 0.1.0');
  assert.equal(vars.get('processor'), 'x86_64');
  assert.equal(vars.get('system'), 'Linux/6.1');
  assert.equal(vars.get('leap'), '0');
  assert.equal(vars.get('stratum'), '2');
  assert.equal(vars.get('precision'), '-25');
  assert.equal(vars.get('rootdelay'), '0.500');
  assert.equal(vars.get('rootdisp'), '2.000');
  assert.equal(vars.get('rootdist'), '2.250');
  assert.equal(vars.get('refid'), '192.0.2.1');
  const ref = instantToNtp64(NOW - 5n * NS_PER_S);
  assert.equal(
    vars.get('reftime'),
    `0x${(ref >> 32n).toString(16).padStart(8, '0')}.${(ref & 0xffffffffn).toString(16).padStart(8, '0')}`,
  );
  assert.match(vars.get('clock')!, /^0x[0-9a-f]{8}\.[0-9a-f]{8}$/);
  assert.equal(BigInt(vars.get('clock')!.split('.')[0]!), instantToNtp64(NOW) >> 32n);
  assert.equal(vars.get('peer'), String(readstat(s)[0]!.id));
  assert.equal(vars.get('tc'), '6');
  assert.equal(vars.get('mintc'), '4');
  assert.equal(vars.get('offset'), '-0.002500');
  assert.equal(vars.get('frequency'), '12.345');
  assert.equal(vars.get('sys_jitter'), '0.020000');
  assert.equal(vars.get('clk_jitter'), '0.004000');
  assert.equal(vars.get('clk_wander'), '0.012300');
  assert.ok(r.data.toString('latin1').endsWith('\r\n'));
});

test('unsynchronised: leap 3, stratum 16, refid INIT, sync source unspecified', () => {
  const sys: Mode6System = {
    ...SYNCED,
    reference: { ...SYNCED.reference, synchronized: false, leap: 3, stratum: 16, refId: 0, refTime: 0n },
  };
  const s = server(view([SILENT_SRC], sys));
  const r = ask(s, ntpqRequest(OP.READVAR));
  const vars = parseVarResponse(r.data.toString('latin1'));
  assert.equal(vars.get('leap'), '3');
  assert.equal(vars.get('stratum'), '16');
  assert.equal(vars.get('refid'), 'INIT');
  assert.equal(vars.get('reftime'), '0x00000000.00000000');
  assert.equal(vars.get('peer'), '0');
  assert.equal(r.status, 0xc000);
});

test('local reference: system status says sync_local (5)', () => {
  const sys: Mode6System = {
    ...SYNCED,
    reference: { ...SYNCED.reference, stratum: 10, refId: 0x4c4f434c, rootDelay: 0, rootDispersion: 0 },
  };
  const r = ask(server(view([], sys)), ntpqRequest(OP.READSTAT));
  assert.equal(r.status, 0x0500);
  assert.equal(r.data.length, 0);
});

test('READVAR with names returns exactly those, in request order (ntpq -c "rv 0 offset,stratum")', () => {
  const s = server(view([GPS_SRC]));
  const r = ask(s, ntpqRequest(OP.READVAR, { data: 'stratum,offset' }));
  assert.equal(r.data.toString('latin1'), 'stratum=2, offset=-0.002500\r\n');
});

test('peer variables: the values ntpq -p and -c "rv ASSOC" read', () => {
  const s = server(view([GPS_SRC, SILENT_SRC]));
  const [gps, silent] = readstat(s);
  const r = ask(s, ntpqRequest(OP.READVAR, { associd: gps!.id }));
  assert.equal(r.status, 0x9600);
  const v = parseVarResponse(r.data.toString('latin1'));
  assert.equal(v.get('srcadr'), '192.0.2.1');
  assert.equal(v.get('srcport'), '123');
  assert.equal(v.get('srchost'), 'ntp1.example.net');
  assert.equal(v.get('dstadr'), '0.0.0.0');
  assert.equal(v.get('leap'), '0');
  assert.equal(v.get('stratum'), '1');
  assert.equal(v.get('precision'), '-20');
  assert.equal(v.get('rootdelay'), '0.500');
  assert.equal(v.get('rootdisp'), '1.250');
  assert.equal(v.get('refid'), 'GPS');
  assert.equal(v.get('reach'), '0xff');
  assert.equal(v.get('hmode'), '3');
  assert.equal(v.get('pmode'), '4');
  assert.equal(v.get('hpoll'), '6');
  assert.equal(v.get('ppoll'), '7');
  assert.equal(v.get('offset'), '0.123456');
  assert.equal(v.get('delay'), '0.420000');
  assert.equal(v.get('dispersion'), '0.100000');
  assert.equal(v.get('jitter'), '0.020000');
  const rec = instantToNtp64(NOW - 12n * NS_PER_S);
  assert.equal(BigInt(v.get('rec')!.split('.')[0]!), rec >> 32n);
  // reftime comes before rec: ntpq's "when" column takes the last of the two it reads.
  const order = [...v.keys()];
  assert.ok(order.indexOf('reftime') < order.indexOf('rec'));

  const q = parseVarResponse(ask(s, ntpqRequest(OP.READVAR, { associd: silent!.id })).data.toString('latin1'));
  assert.equal(q.get('refid'), 'INIT');
  assert.equal(q.get('stratum'), '16');
  assert.equal(q.get('reach'), '0x0');
  assert.equal(q.get('rec'), '0x00000000.00000000');
  assert.equal(q.has('srchost'), false, 'no srchost when configured by address');
  assert.equal(q.has('rootdelay'), false, 'unknown values left out');

  // READSTAT on one association returns its variables too (as ntpd).
  const rs = ask(s, ntpqRequest(OP.READSTAT, { associd: gps!.id }));
  assert.equal(parseVarResponse(rs.data.toString('latin1')).get('srcadr'), '192.0.2.1');
});

test('IPv6 sources: srcadr as text, refid of a stratum-2 server as dotted hash, dstadr ::', () => {
  const src: Mode6Source = {
    ...GPS_SRC,
    key: '[2001:db8::1]:123',
    name: '2001:db8::1',
    address: { address: '2001:db8::1', port: 123 },
    status: status({ lastPacket: { ...status().lastPacket!, stratum: 2, refId: 0x0a0b0c0d } }),
  };
  const s = server(view([src]));
  const v = parseVarResponse(ask(s, ntpqRequest(OP.READVAR, { associd: readstat(s)[0]!.id })).data.toString('latin1'));
  assert.equal(v.get('srcadr'), '2001:db8::1');
  assert.equal(v.get('refid'), '10.11.12.13');
  assert.equal(v.get('dstadr'), '::');
});

test('errors: unknown variable, unknown association, write/config need auth, no clocks, bad opcodes', () => {
  const s = server(view([GPS_SRC]));
  const id = readstat(s)[0]!.id;
  const cases: Array<[Uint8Array, number]> = [
    [ntpqRequest(OP.READVAR, { data: 'stratum,nosuchvar' }), CERR.UNKNOWNVAR],
    [ntpqRequest(OP.READVAR, { associd: id, data: 'srcadr,bogus' }), CERR.UNKNOWNVAR],
    [ntpqRequest(OP.READVAR, { associd: 999 }), CERR.BADASSOC],
    [ntpqRequest(OP.READSTAT, { associd: 999 }), CERR.BADASSOC],
    [ntpqRequest(OP.WRITEVAR, { data: 'leap=1' }), CERR.PERMISSION],
    [ntpqRequest(OP.CONFIGURE, { data: 'server 10.0.0.1' }), CERR.PERMISSION],
    [ntpqRequest(OP.READ_ORDLIST_A), CERR.PERMISSION],
    [ntpqRequest(OP.READCLOCK), CERR.BADASSOC],
    [ntpqRequest(OP.WRITECLOCK), CERR.BADOP],
    [ntpqRequest(OP.READ_MRU, { data: 'nonce=abc' }), CERR.BADOP],
    [ntpqRequest(OP.REQ_NONCE), CERR.BADOP],
    [ntpqRequest(31), CERR.BADOP],
  ];
  for (const [req, code] of cases) {
    const r = ask(s, req);
    assert.equal(r.out.length, 1);
    assert.equal(r.out[0]!.data.length, 12);
    assert.equal(r.error, code, `opcode ${req[1]! & 0x1f}`);
  }
  // Malformed count: BADFMT answer; a response sent to us: dropped.
  const bad = ntpqRequest(OP.READVAR, { data: 'leap' });
  bad[11] = 200;
  assert.equal(ask(s, bad).error, CERR.BADFMT);
  const resp = ntpqRequest(OP.READVAR);
  resp[1]! |= 0x80;
  assert.equal(s.handle(resp, LOOP, NOW).length, 0);
  assert.ok(s.stats().errors >= cases.length + 1);
  assert.equal(s.stats().dropped['not-request'], 1);
});

test('noquery: requests from addresses queryAllowed rejects get no answer at all', () => {
  const s = server(view([GPS_SRC]), (a) => a !== '127.0.0.1');
  assert.deepEqual(s.handle(ntpqRequest(OP.READSTAT), LOOP, NOW), []);
  assert.deepEqual(s.handle(ntpqRequest(OP.WRITEVAR), LOOP, NOW), []);
  assert.equal(s.stats().dropped['restricted'], 2);
  assert.equal(s.handle(ntpqRequest(OP.READSTAT), { address: '::1', port: 1 }, NOW).length, 1);
});

test('many sources: the association list is fragmented and reassembles to every source', () => {
  const list: Mode6Source[] = Array.from({ length: 150 }, (_, i) => ({
    ...SILENT_SRC,
    key: `10.1.${i >> 8}.${i & 0xff}:123`,
    address: { address: `10.1.${i >> 8}.${i & 0xff}`, port: 123 },
  }));
  const s = server(view(list));
  const r = ask(s, ntpqRequest(OP.READSTAT));
  assert.equal(r.out.length, 2);
  assert.equal(r.data.length, 600);
  assert.equal(new Set(readstat(s).map((x) => x.id)).size, 150);
});

test('anti-amplification: off-host answers never exceed the request, byte for byte', () => {
  const s = server(view([GPS_SRC, SILENT_SRC]));
  // ntpq -p from off-host: READSTAT of 12 bytes would get 20 back → RESTRICT error of 12.
  const rs = ask(s, ntpqRequest(OP.READSTAT), REMOTE);
  assert.equal(rs.out.length, 1);
  assert.equal(rs.out[0]!.data.length, 12);
  assert.equal(rs.error, CERR.RESTRICT);
  assert.equal(s.stats().amplificationLimited, 1);
  // The same from loopback is answered in full.
  assert.equal(ask(s, ntpqRequest(OP.READSTAT), LOOP).data.length, 8);
  // A request large enough for its answer is answered (here: padding after the counted data).
  const big = ntpqRequest(OP.READVAR, { data: 'stratum', extra: 64 });
  const ok = ask(s, big, REMOTE);
  assert.equal(ok.error, null);
  assert.equal(ok.data.toString(), 'stratum=2\r\n');
  // Every opcode, association and variable list from off-host: total ≤ request.
  const reqs: Uint8Array[] = [];
  for (let op = 0; op < 32; op++)
    for (const associd of [0, readstat(s)[0]!.id, 999]) {
      reqs.push(ntpqRequest(op, { associd }));
      reqs.push(ntpqRequest(op, { associd, data: 'stratum,offset,refid' }));
      reqs.push(ntpqRequest(op, { associd, data: 'x'.repeat(400) }));
    }
  for (const req of reqs) {
    const out = s.handle(req, REMOTE, NOW);
    const total = out.reduce((n, t) => n + t.data.length, 0);
    assert.ok(total <= req.length, `opcode ${req[1]} assoc ${req[6]! * 256 + req[7]!}: ${total} > ${req.length}`);
  }
});

test('answers go to the requester from the server socket, never with a stamped transmit time', () => {
  const s = server(view([GPS_SRC]));
  const out = s.handle(ntpqRequest(OP.READVAR), REMOTE, NOW);
  for (const t of out) {
    assert.equal(t.socket, 'server');
    assert.deepEqual(t.to, REMOTE);
    assert.equal(t.stampTransmit, undefined);
    assert.equal(t.txTag, undefined);
  }
});

// ---- the Engine: routing on the server socket, real sources -----------------------------------

function drainAll(e: Engine): Transmit[] {
  const out: Transmit[] = [];
  for (let t = e.pollTransmit(); t; t = e.pollTransmit()) out.push(t);
  while (e.pollClockAction());
  return out;
}

const MODE6 = { queryAllowed: () => true, version: 'rubidiumd test', processor: 'x86_64', system: 'Linux/6' };

test('Engine: mode 6 is answered on the server socket, mode 7 is dropped and counted', () => {
  const e = new Engine(
    {
      sources: [],
      discipline: { localStratum: { stratum: 3, distance: 1 } },
      server: { enabled: true, access: () => false, clientLogLimit: 16, mode6: MODE6 },
      precision: -20,
    },
    { random: () => 0.5 },
  );
  e.start(NOW);
  drainAll(e);
  // Mode 6 is answered even though NTP service is denied to everyone (access is separate).
  e.handleDatagram('server', LOOP, ntpqRequest(OP.READVAR, { data: 'stratum,refid' }), NOW, NOW);
  const out = drainAll(e);
  assert.equal(out.length, 1);
  const r = reassemble(out.map((t) => t.data));
  assert.equal(r.data.toString(), 'stratum=3, refid=76.79.67.76\r\n');
  assert.equal(r.status >> 8, 5, 'sync_local');

  // Mode 7 (ntpdc/monlist): never answered, counted by the NTP server.
  const before = e.serverStats().ntpPacketsDropped;
  const mode7 = new Uint8Array(48);
  mode7[0] = (2 << 3) | 7;
  mode7[3] = 42; // MON_GETLIST_1
  e.handleDatagram('server', LOOP, mode7, NOW, NOW);
  assert.equal(drainAll(e).length, 0);
  assert.equal(e.serverStats().ntpPacketsDropped, before + 1);

  // Without the mode6 option, mode 6 is dropped like any other non-client mode.
  const off = new Engine(
    { sources: [], discipline: {}, server: { enabled: true, access: () => true, clientLogLimit: 16 }, precision: -20 },
    { random: () => 0.5 },
  );
  off.start(NOW);
  drainAll(off);
  off.handleDatagram('server', LOOP, ntpqRequest(OP.READSTAT), NOW, NOW);
  assert.equal(drainAll(off).length, 0);
  assert.equal(off.serverStats().malformedDropped['mode'], 1);
});

test('Engine: a client synchronised to a server shows it as sys.peer with its real values', () => {
  const SERVER: Endpoint = { address: '192.0.2.1', port: 123 };
  const srv = new Engine(
    {
      sources: [],
      discipline: { localStratum: { stratum: 1, distance: 1 } },
      server: { enabled: true, access: () => true, clientLogLimit: 16 },
      precision: -20,
    },
    { random: () => 0.25 },
  );
  const cli = new Engine(
    {
      sources: [sourceConfig('s1', SERVER, { iburst: true, minpoll: 0, maxpoll: 0, name: 'time.example' })],
      discipline: {},
      server: { enabled: true, access: () => true, clientLogLimit: 16, mode6: MODE6 },
      precision: -20,
    },
    { random: () => 0.75 },
  );
  let now = NOW;
  srv.start(now);
  cli.start(now);
  drainAll(srv);
  const CLIENT: Endpoint = { address: '192.0.2.2', port: 50000 };
  // Exchange packets over a 1 ms path for 40 simulated seconds.
  const deliver = (pending: Transmit[]) => {
    for (const t of pending) {
      now = addSeconds(now, 0.0005);
      srv.handleDatagram('server', CLIENT, t.data, now, now);
      for (const a of drainAll(srv)) {
        now = addSeconds(now, 0.0005);
        cli.handleDatagram('client', SERVER, a.data, now, now);
      }
    }
  };
  deliver(drainAll(cli));
  for (let i = 0; i < 4000 && now < NOW + 40n * NS_PER_S; i++) {
    const next = cli.nextTimeout();
    if (next !== null && next > now) now = next;
    cli.handleTimeout(now);
    deliver(drainAll(cli));
  }
  const q = (req: Uint8Array) => {
    cli.handleDatagram('server', LOOP, req, now, now);
    return reassemble(drainAll(cli).map((t) => t.data));
  };
  const stat = q(ntpqRequest(OP.READSTAT));
  assert.equal(stat.data.length, 4);
  const id = stat.data.readUInt16BE(0);
  assert.equal(stat.data.readUInt16BE(2) & 0xff00, 0x9600, 'configured, reachable, sys.peer');
  assert.equal(stat.status >> 8, 6, 'sync_ntp');
  const v = parseVarResponse(q(ntpqRequest(OP.READVAR, { associd: id })).data.toString('latin1'));
  assert.equal(v.get('srcadr'), '192.0.2.1');
  assert.equal(v.get('srchost'), 'time.example');
  assert.equal(v.get('stratum'), '1');
  assert.equal(v.get('refid'), 'LOCL');
  assert.equal(v.get('reach'), '0xff');
  assert.equal(v.get('hpoll'), '0');
  assert.ok(Math.abs(Number(v.get('offset'))) < 0.01, `offset ${v.get('offset')} ms`);
  assert.ok(Math.abs(Number(v.get('delay')) - 1) < 0.01, `delay ${v.get('delay')} ms`);
  const sys = parseVarResponse(q(ntpqRequest(OP.READVAR)).data.toString('latin1'));
  assert.equal(sys.get('stratum'), '2');
  assert.equal(sys.get('refid'), '192.0.2.1');
  assert.equal(sys.get('peer'), String(id));
  assert.equal(sys.get('leap'), '0');
  assert.equal(CTL_HEADER_LEN, 12);
});
