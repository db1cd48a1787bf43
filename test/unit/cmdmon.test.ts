import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CmdAccess } from '../../src/cmdmon/access.js';
import { decodeFloat, encodeFloat } from '../../src/cmdmon/float.js';
import {
  MAX_REQUEST_LENGTH,
  REQ,
  RPY,
  STT,
  readTimespec,
  replyLength,
  requestLength,
  requestPadding,
  writeTimespec,
} from '../../src/cmdmon/protocol.js';
import { decodeRequest } from '../../src/cmdmon/request.js';
import { CmdmonService, type CmdmonEngine, testFlags } from '../../src/cmdmon/service.js';
import type { SourceConfig } from '../../src/engine/engine.js';
import { parseCmdRateLimit, parseOpenCommands } from '../../src/cmdmon/config.js';
import { DEFAULT_CMD_SOCKET, parseConfigText } from '../../src/config/chrony-conf.js';
import { CHRONYC_DEFAULT_SOCKET, cmdmonSocketPath } from '../../src/cmdmon/daemon-setup.js';

// ---- request building (as chronyc 4.3 does: header, body, zero padding) ----

function request(command: number, body: Buffer = Buffer.alloc(0), opts: { version?: number; length?: number } = {}) {
  const len = opts.length ?? requestLength(command);
  const b = Buffer.alloc(len);
  b[0] = opts.version ?? 6;
  b[1] = 1; // PKT_TYPE_CMD_REQUEST
  b.writeUInt16BE(command, 4);
  b.writeUInt16BE(0, 6);
  b.writeUInt32BE(0xdeadbeef, 8);
  body.copy(b, 20, 0, Math.max(0, Math.min(body.length, len - 20)));
  return b;
}

function ip4(a: string): Buffer {
  const b = Buffer.alloc(20);
  a.split('.').forEach((p, i) => (b[i] = Number(p)));
  b.writeUInt16BE(1, 16);
  return b;
}

function header(reply: Buffer) {
  return {
    version: reply[0],
    pktType: reply[1],
    command: reply.readUInt16BE(4),
    reply: reply.readUInt16BE(6),
    status: reply.readUInt16BE(8),
    sequence: reply.readUInt32BE(16),
  };
}

test('cmdmon float: chrony encoding vectors and round trip', () => {
  // 1.0: coef 2^24 does not fit 25 signed bits, so one shift: exp 2, coef 2^23.
  assert.equal(encodeFloat(1), 0x04800000);
  // -1.0: the negative range holds -2^24, so exp 1, coef -2^24 (0x1000000 in 25 bits).
  assert.equal(encodeFloat(-1), 0x03000000);
  assert.equal(encodeFloat(0), 0);
  assert.equal(encodeFloat(NaN), 0);
  assert.equal(encodeFloat(1e-101), 0);
  assert.equal(encodeFloat(1e101), 0x7effffff); // saturates: exp 63, coef max
  assert.equal(decodeFloat(0x04800000), 1);
  assert.equal(decodeFloat(0x03000000), -1);
  assert.equal(decodeFloat(0x7effffff), (2 ** 24 - 1) * 2 ** (63 - 25));
  for (const x of [1e-9, -2.5e-6, 0.123456789, 3.75, -1234.5678, 86400.5, 1e-3]) {
    const y = decodeFloat(encodeFloat(x));
    assert.ok(Math.abs(y - x) <= Math.abs(x) * 2 ** -22, `${x} -> ${y}`);
  }
});

test('cmdmon lengths follow candm.h/pktlength.c', () => {
  assert.equal(replyLength(RPY.NULL), 28);
  assert.equal(replyLength(RPY.TRACKING), 104);
  assert.equal(replyLength(RPY.SOURCE_DATA), 76);
  assert.equal(replyLength(RPY.SOURCESTATS), 84);
  assert.equal(replyLength(RPY.NTP_DATA), 152);
  assert.equal(replyLength(RPY.CLIENT_ACCESSES_BY_INDEX3), 520);
  assert.equal(replyLength(RPY.SERVER_STATS3), 72);
  assert.equal(replyLength(RPY.ACTIVITY), 48);
  assert.equal(replyLength(RPY.NTP_SOURCE_NAME), 284);
  // Requests are padded to their reply's length; ADD_SOURCE is longer than its reply.
  assert.equal(requestLength(REQ.TRACKING), 104);
  assert.equal(requestPadding(REQ.TRACKING), 84);
  assert.equal(requestLength(REQ.N_SOURCES), 32);
  assert.equal(requestLength(REQ.SOURCE_DATA), 76);
  assert.equal(requestLength(REQ.ONLINE), 60);
  assert.equal(requestLength(REQ.BURST), 68);
  assert.equal(requestLength(REQ.ADD_SOURCE), 372);
  assert.equal(requestPadding(REQ.ADD_SOURCE), 0);
  assert.equal(requestPadding(REQ.CLIENT_ACCESSES_BY_INDEX3), 484); // MAX_PADDING_LENGTH
  assert.equal(requestLength(REQ.ADD_SERVER), 0); // obsolete in 4.3
  assert.equal(MAX_REQUEST_LENGTH, 860);
});

test('cmdmon timespec: high/low seconds and nanoseconds', () => {
  const b = Buffer.alloc(12);
  writeTimespec(b, 0, 1_700_000_000_123_456_789n);
  assert.equal(b.readUInt32BE(0), 0);
  assert.equal(b.readUInt32BE(4), 1_700_000_000);
  assert.equal(b.readUInt32BE(8), 123_456_789);
  assert.equal(readTimespec(b, 0), 1_700_000_000_123_456_789n);
  b.writeUInt32BE(0x7fffffff, 0); // TV_NOHIGHSEC
  assert.equal(readTimespec(b, 0), 1_700_000_000_123_456_789n);
});

test('cmdmon decoder: drops, version, length and command errors as chronyd', () => {
  assert.equal(decodeRequest(Buffer.alloc(10)).kind, 'drop');
  assert.equal(decodeRequest(Buffer.alloc(27)).kind, 'drop'); // an error reply would be longer
  assert.equal(decodeRequest(Buffer.alloc(MAX_REQUEST_LENGTH + 1)).kind, 'drop');
  const notReq = request(REQ.TRACKING);
  notReq[1] = 2;
  assert.equal(decodeRequest(notReq).kind, 'drop');
  const res = request(REQ.TRACKING);
  res[2] = 1;
  assert.equal(decodeRequest(res).kind, 'drop');
  const v5 = decodeRequest(request(REQ.TRACKING, undefined, { version: 5 }));
  assert.equal(v5.kind === 'status' && v5.status, STT.BADPKTVERSION);
  assert.equal(decodeRequest(request(REQ.TRACKING, undefined, { version: 4 })).kind, 'drop');
  const short = decodeRequest(request(REQ.TRACKING, undefined, { length: 40 }));
  assert.equal(short.kind === 'status' && short.status, STT.BADPKTLENGTH);
  const unknown = decodeRequest(request(200, undefined, { length: 40 }));
  assert.equal(unknown.kind === 'status' && unknown.status, STT.INVALID);
  const obsolete = decodeRequest(request(REQ.ADD_SERVER, undefined, { length: 40 }));
  assert.equal(obsolete.kind === 'status' && obsolete.status, STT.INVALID);
});

test('cmdmon decoder: ADD_SOURCE fields at candm.h offsets', () => {
  const body = Buffer.alloc(352);
  body.writeUInt32BE(1, 0); // REQ_ADDSRC_SERVER
  body.write('192.0.2.7', 4, 'latin1');
  body.writeUInt32BE(1123, 260); // port
  body.writeInt32BE(-2, 264); // minpoll
  body.writeInt32BE(9, 268); // maxpoll
  body.writeUInt32BE(4, 284); // version
  body.writeUInt32BE(encodeFloat(0.5), 308); // max_delay
  body.writeUInt32BE(0x1 | 0x4 | 0x8 | 0x80, 332); // online iburst prefer xleave
  const d = decodeRequest(request(REQ.ADD_SOURCE, body));
  assert.equal(d.kind, 'request');
  assert.ok(d.kind === 'request' && d.request.cmd === 'add_source');
  const s = d.request.source;
  assert.equal(s.type, 'server');
  assert.equal(s.name, '192.0.2.7');
  assert.equal(s.port, 1123);
  assert.equal(s.minpoll, -2);
  assert.equal(s.maxpoll, 9);
  assert.equal(s.version, 4);
  assert.equal(s.maxDelay, 0.5);
  assert.equal(s.flags, 0x8d);
  // Unterminated name → STT_INVALIDNAME; unknown type → STT_INVALID.
  body.fill(0x41, 4, 260);
  const bad = decodeRequest(request(REQ.ADD_SOURCE, body));
  assert.ok(bad.kind === 'request' && bad.request.cmd === 'add_source_invalid');
  assert.equal(bad.request.status, STT.INVALIDNAME);
  body.writeUInt32BE(9, 0);
  const badType = decodeRequest(request(REQ.ADD_SOURCE, body));
  assert.ok(badType.kind === 'request' && badType.request.cmd === 'add_source_invalid');
  assert.equal(badType.request.status, STT.INVALID);
});

// ---- the service against a fake engine ----

function fakeEngine() {
  const calls: string[] = [];
  const sources = [
    {
      mode: 'server' as const,
      state: '*' as const,
      name: 'ntp1.example.net',
      address: '192.0.2.1',
      port: 123,
      stratum: 2,
      poll: 6,
      reach: 0o377,
      lastRxAgo: 12.7,
      adjustedOffset: -2.5e-6,
      measuredOffset: -3e-6,
      error: 1.25e-4,
    },
    {
      mode: 'server' as const,
      state: '-' as const,
      name: '2001:db8::5',
      address: '2001:db8::5',
      port: 123,
      stratum: 3,
      poll: 7,
      reach: 0o17,
      lastRxAgo: null,
      adjustedOffset: 0,
      measuredOffset: 0,
      error: 0,
    },
  ];
  const engine: CmdmonEngine = {
    tracking: () => ({
      refId: 0xc0000201,
      refName: '192.0.2.1',
      stratum: 3,
      refTimeNs: '1700000000500000000',
      systemTimeOffset: 1.5e-6,
      lastOffset: -2e-6,
      rmsOffset: 3e-6,
      frequencyPpm: -12.25,
      residualFreqPpm: 0.01,
      skewPpm: 0.05,
      rootDelay: 0.02,
      rootDispersion: 0.001,
      updateInterval: 64.5,
      leapStatus: 'Normal',
    }),
    sources: () => sources,
    sourceStats: () => [
      {
        name: 'ntp1.example.net',
        address: '192.0.2.1',
        np: 10,
        nr: 6,
        span: 600.9,
        frequencyPpm: 0.002,
        freqSkewPpm: 0.1,
        offset: -1e-6,
        stdDev: 2e-6,
      },
    ],
    ntpData: () => [
      {
        remoteAddress: '192.0.2.1',
        remotePort: 123,
        localAddress: '192.0.2.100',
        leap: 0,
        version: 4,
        mode: 4,
        stratum: 2,
        poll: 6,
        precision: -24,
        rootDelay: 0.01,
        rootDispersion: 0.002,
        refId: 0x47505300,
        refTimeNs: '1700000000000000000',
        offset: 1e-6,
        peerDelay: 2e-4,
        peerDispersion: 1e-6,
        responseTime: 1e-5,
        jitterAsymmetry: 0.1,
        ntpTests: '111 111 1011',
        interleaved: true,
        authenticated: false,
        txTimestamping: 'Kernel',
        rxTimestamping: 'Kernel',
        totalTx: 10,
        totalRx: 9,
        totalValidRx: 8,
      },
    ],
    clients: () =>
      Array.from({ length: 11 }, (_, i) => ({
        address: `198.51.100.${i + 1}`,
        ntpHits: i,
        ntpDrops: 0,
        ntpInterval: i % 2 ? 6 : null,
        ntpIntervalLast: null,
        lastNtpAgo: i,
        cmdHits: 0,
        cmdDrops: 0,
        cmdInterval: null,
        lastCmdAgo: null,
      })),
    serverStats: () => ({
      ntpPacketsReceived: 100,
      ntpPacketsDropped: 3,
      cmdPacketsReceived: 0,
      cmdPacketsDropped: 0,
      clientLogSizeActive: 0,
      clientLogMemory: 0,
      ntpAuthPacketsReceived: 0,
      ntpInterleavedPacketsReceived: 7,
      ntpTimestampsHeld: 5,
      ntpTimestampSpan: 60,
      malformedDropped: {},
    }),
    activity: () => ({ online: 2, offline: 0, burstOnline: 0, burstOffline: 0, unresolved: 0 }),
    makestep: () => {
      calls.push('makestep');
      return 0;
    },
    burst: (_now, filter, good, total) => {
      const n = sources.filter((s) => !filter || filter(cfgOf(s))).length;
      calls.push(`burst ${good}/${total} ${n}`);
      return n;
    },
    setOnline: (online, _now, filter) => {
      const n = sources.filter((s) => !filter || filter(cfgOf(s))).length;
      calls.push(`${online ? 'online' : 'offline'} ${n}`);
      return n;
    },
    addSource: (cfg: SourceConfig) => {
      calls.push(
        `add ${cfg.id} iburst=${cfg.iburst} prefer=${cfg.prefer} offline=${cfg.offline} minpoll=${cfg.minpoll}`,
      );
    },
    removeSource: (id: string) => {
      calls.push(`remove ${id}`);
      return true;
    },
  };
  return { engine, calls };
}

function cfgOf(s: { address: string; port: number; name: string }): SourceConfig {
  return { address: { address: s.address, port: s.port }, name: s.name } as SourceConfig;
}

function service(opts: { open?: string[] } = {}) {
  const f = fakeEngine();
  const svc = new CmdmonService({
    engine: f.engine,
    now: () => 1_700_000_100_000_000_000n,
    monotonicSeconds: () => 0,
    flush: () => f.calls.push('flush'),
    access: new CmdAccess(opts.open ? { openCommands: opts.open } : {}),
  });
  return { svc, calls: f.calls };
}

const UDP = { transport: 'udp' as const, address: '127.0.0.1' };
const UNIX = { transport: 'unix' as const };

test('cmdmon service: tracking reply layout', async () => {
  const { svc } = service();
  const r = (await svc.handle(request(REQ.TRACKING), UDP))!;
  assert.equal(r.length, 104);
  assert.deepEqual(header(r), {
    version: 6,
    pktType: 2,
    command: REQ.TRACKING,
    reply: RPY.TRACKING,
    status: 0,
    sequence: 0xdeadbeef,
  });
  assert.equal(r.readUInt32BE(28), 0xc0000201); // ref_id
  assert.deepEqual([...r.subarray(32, 36)], [192, 0, 2, 1]); // ip in4
  assert.equal(r.readUInt16BE(48), 1); // IPADDR_INET4
  assert.equal(r.readUInt16BE(52), 3); // stratum
  assert.equal(r.readUInt16BE(54), 0); // leap Normal
  assert.equal(r.readUInt32BE(60), 1_700_000_000); // ref_time low seconds
  assert.equal(r.readUInt32BE(64), 500_000_000);
  assert.ok(Math.abs(decodeFloat(r.readUInt32BE(68)) - 1.5e-6) < 1e-12); // current_correction
  assert.equal(decodeFloat(r.readUInt32BE(80)), -12.25); // freq_ppm
  assert.equal(decodeFloat(r.readUInt32BE(100)), 64.5); // last_update_interval
});

test('cmdmon service: N_SOURCES, SOURCE_DATA states, IPv6, missing sample', async () => {
  const { svc } = service();
  const n = (await svc.handle(request(REQ.N_SOURCES), UDP))!;
  assert.equal(n.readUInt32BE(28), 2);
  const idx = (i: number) => {
    const b = Buffer.alloc(4);
    b.writeInt32BE(i);
    return b;
  };
  const s0 = (await svc.handle(request(REQ.SOURCE_DATA, idx(0)), UDP))!;
  assert.equal(header(s0).reply, RPY.SOURCE_DATA);
  assert.equal(s0.readInt16BE(48), 6); // poll
  assert.equal(s0.readUInt16BE(50), 2); // stratum
  assert.equal(s0.readUInt16BE(52), 0); // RPY_SD_ST_SELECTED → '*'
  assert.equal(s0.readUInt16BE(54), 0); // RPY_SD_MD_CLIENT → '^'
  assert.equal(s0.readUInt16BE(58), 0o377);
  assert.equal(s0.readUInt32BE(60), 12);
  assert.ok(Math.abs(decodeFloat(s0.readUInt32BE(68)) + 2.5e-6) < 1e-12); // latest_meas (adjusted)
  assert.ok(Math.abs(decodeFloat(s0.readUInt32BE(64)) + 3e-6) < 1e-12); // orig_latest_meas
  const s1 = (await svc.handle(request(REQ.SOURCE_DATA, idx(1)), UDP))!;
  assert.equal(s1.readUInt16BE(28 + 16), 2); // IPADDR_INET6
  assert.equal(s1.readUInt16BE(28), 0x2001);
  assert.equal(s1.readUInt16BE(52), 5); // SELECTABLE → '-'
  assert.equal(s1.readUInt32BE(60), 0xffffffff); // no sample yet
  const none = (await svc.handle(request(REQ.SOURCE_DATA, idx(5)), UDP))!;
  assert.equal(header(none).status, STT.NOSUCHSOURCE);
  assert.equal(none.length, 28);
});

test('cmdmon service: modifying and restricted commands refused over UDP, allowed on the Unix socket', async () => {
  const { svc, calls } = service();
  for (const cmd of [
    REQ.MAKESTEP,
    REQ.BURST,
    REQ.ONLINE,
    REQ.OFFLINE,
    REQ.DEL_SOURCE,
    REQ.ADD_SOURCE,
    REQ.NTP_DATA,
    REQ.SERVER_STATS,
    REQ.CLIENT_ACCESSES_BY_INDEX3,
  ]) {
    const r = (await svc.handle(request(cmd), UDP))!;
    assert.equal(header(r).status, STT.UNAUTH, `command ${cmd}`);
  }
  assert.deepEqual(calls, []);
  const ok = (await svc.handle(request(REQ.MAKESTEP), UNIX))!;
  assert.equal(header(ok).status, STT.SUCCESS);
  assert.deepEqual(calls, ['makestep', 'flush']);
});

test('cmdmon service: opencommands opens ntpdata/serverstats/clients to UDP', async () => {
  const { svc } = service({ open: ['ntpdata', 'serverstats', 'clients', 'tracking'] });
  const nd = (await svc.handle(request(REQ.NTP_DATA, ip4('192.0.2.1')), UDP))!;
  assert.equal(header(nd).status, 0);
  assert.equal(nd.length, 152);
  assert.equal(nd.readUInt16BE(68), 123); // remote_port
  assert.equal(nd.readInt8(74), 6); // poll
  assert.equal(nd.readInt8(75), -24); // precision
  assert.equal(nd.readUInt32BE(84), 0x47505300); // ref_id
  assert.equal(nd.readUInt16BE(120), 0x3fb | 0x4000); // tests 111 111 1011 + interleaved
  assert.equal(String.fromCharCode(nd[122]!, nd[123]!), 'KK');
  assert.equal(nd.readUInt32BE(136), 8); // total_good = valid when absent
  assert.deepEqual([...nd.subarray(140, 152)], new Array(12).fill(0xff));
  const missing = (await svc.handle(request(REQ.NTP_DATA, ip4('192.0.2.99')), UDP))!;
  assert.equal(header(missing).status, STT.NOSUCHSOURCE);
  const ss = (await svc.handle(request(REQ.SERVER_STATS), UDP))!;
  assert.equal(header(ss).reply, RPY.SERVER_STATS3);
  assert.equal(ss.readUInt32BE(28), 100); // ntp_hits
  assert.equal(ss.readUInt32BE(40), 3); // ntp_drops
  assert.equal(ss.readUInt32BE(36), 3); // cmd_hits: the three requests so far
  // Clients in pages of 8 with next_index.
  const page = (first: number) => {
    const b = Buffer.alloc(16);
    b.writeUInt32BE(first, 0);
    b.writeUInt32BE(8, 4);
    return b;
  };
  const p1 = (await svc.handle(request(REQ.CLIENT_ACCESSES_BY_INDEX3, page(0)), UDP))!;
  assert.equal(p1.length, 520);
  assert.equal(p1.readUInt32BE(28), 11); // n_indices
  assert.equal(p1.readUInt32BE(32), 8); // next_index
  assert.equal(p1.readUInt32BE(36), 8); // n_clients
  assert.deepEqual([...p1.subarray(40, 44)], [198, 51, 100, 1]);
  assert.equal(p1.readInt8(40 + 44), 127); // no interval yet
  assert.equal(p1.readInt8(40 + 60 + 44), 6);
  const p2 = (await svc.handle(request(REQ.CLIENT_ACCESSES_BY_INDEX3, page(8)), UDP))!;
  assert.equal(p2.readUInt32BE(32), 11);
  assert.equal(p2.readUInt32BE(36), 3);
  // A still-closed command stays refused.
  assert.equal(header((await svc.handle(request(REQ.SOURCE_DATA), UDP))!).status, STT.UNAUTH);
});

test('cmdmon service: burst/online/offline with mask and address, add and delete', async () => {
  const { svc, calls } = service();
  const maskAddr = (mask: string, addr: string) => Buffer.concat([ip4(mask), ip4(addr)]);
  const burst = Buffer.concat([maskAddr('255.255.255.0', '192.0.2.0'), Buffer.from([0, 0, 0, 2, 0, 0, 0, 4])]);
  assert.equal(header((await svc.handle(request(REQ.BURST, burst), UNIX))!).status, 0);
  assert.equal(calls.at(-2), 'burst 2/4 1');
  const off = (await svc.handle(request(REQ.OFFLINE, maskAddr('255.255.255.255', '203.0.113.1')), UNIX))!;
  assert.equal(header(off).status, STT.NOSUCHSOURCE);
  const allOff = (await svc.handle(request(REQ.OFFLINE), UNIX))!; // UNSPEC = all sources
  assert.equal(header(allOff).status, 0);
  assert.equal(calls.at(-2), 'offline 2');
  const body = Buffer.alloc(352);
  body.writeUInt32BE(1, 0);
  body.write('203.0.113.9', 4, 'latin1');
  body.writeUInt32BE(123, 260);
  body.writeInt32BE(4, 264);
  body.writeInt32BE(10, 268);
  body.writeUInt32BE(0x1 | 0x4 | 0x8, 332);
  assert.equal(header((await svc.handle(request(REQ.ADD_SOURCE, body), UNIX))!).status, 0);
  assert.ok(calls.includes('add 203.0.113.9:123 iburst=true prefer=true offline=false minpoll=4'));
  body.fill(0, 4, 260);
  body.write('192.0.2.1', 4, 'latin1'); // already a source
  assert.equal(header((await svc.handle(request(REQ.ADD_SOURCE, body), UNIX))!).status, STT.SOURCEALREADYKNOWN);
  body.fill(0, 4, 260);
  body.write('no.such.name', 4, 'latin1'); // no resolver configured
  assert.equal(header((await svc.handle(request(REQ.ADD_SOURCE, body), UNIX))!).status, STT.INVALIDNAME);
  assert.equal(header((await svc.handle(request(REQ.DEL_SOURCE, ip4('192.0.2.1')), UNIX))!).status, 0);
  assert.ok(calls.includes('remove 192.0.2.1:123'));
  assert.equal(header((await svc.handle(request(REQ.DEL_SOURCE, ip4('10.9.9.9')), UNIX))!).status, STT.NOSUCHSOURCE);
});

test('cmdmon service: source name, unsupported commands, no amplification', async () => {
  const { svc } = service();
  const n = (await svc.handle(request(REQ.NTP_SOURCE_NAME, ip4('192.0.2.1')), UDP))!;
  assert.equal(n.length, 284);
  assert.equal(n.subarray(28, 28 + 16).toString('latin1'), 'ntp1.example.net');
  assert.equal(n[28 + 16], 0);
  assert.equal(header((await svc.handle(request(REQ.RTCREPORT), UDP))!).status, STT.NORTC);
  assert.equal(header((await svc.handle(request(REQ.SMOOTHING), UDP))!).status, STT.NOTENABLED);
  assert.equal(header((await svc.handle(request(REQ.DUMP), UNIX))!).status, STT.FAILED);
  // Unpadded (version-5 style) TRACKING at version 6: too short, answered with a 28-byte error.
  const r = (await svc.handle(request(REQ.TRACKING, undefined, { length: 28 }), UDP))!;
  assert.equal(header(r).status, STT.BADPKTLENGTH);
  assert.equal(r.length, 28);
});

test('cmdmon service: remote hosts need cmdallow, and are rate limited', async () => {
  const f = fakeEngine();
  let t = 0;
  const mk = (rules: { allow: boolean; all: boolean; subnet: string }[]) =>
    new CmdmonService({
      engine: f.engine,
      now: () => 0n,
      monotonicSeconds: () => t,
      flush: () => {},
      access: new CmdAccess({ rules, rateLimit: { interval: 0, burst: 2, leak: 0 } }),
    });
  const remote = { transport: 'udp' as const, address: '192.168.1.5' };
  assert.equal(await mk([]).handle(request(REQ.TRACKING), remote), null);
  const svc = mk([{ allow: true, all: false, subnet: '192.168.1.0/24' }]);
  assert.equal(header((await svc.handle(request(REQ.TRACKING), remote))!).status, 0);
  assert.equal(header((await svc.handle(request(REQ.MAKESTEP), remote))!).status, STT.UNAUTH);
  assert.equal(await svc.handle(request(REQ.TRACKING), remote), null); // burst of 2 used up
  assert.equal(svc.stats.dropped, 1);
  t = 1.5; // one token back
  assert.notEqual(await svc.handle(request(REQ.TRACKING), remote), null);
  // localhost is never limited
  for (let i = 0; i < 10; i++) assert.notEqual(await svc.handle(request(REQ.TRACKING), UDP), null);
  const denied = mk([
    { allow: true, all: false, subnet: '192.168.1.0/24' },
    { allow: false, all: false, subnet: '192.168.1.5' },
  ]);
  assert.equal(await denied.handle(request(REQ.TRACKING), remote), null);
});

test('cmdmon fuzz: random and mutated datagrams never throw and replies never exceed requests', async () => {
  const { svc } = service({ open: ['ntpdata', 'serverstats', 'clients', 'sources', 'tracking', 'sourcename'] });
  let seed = 12345;
  const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
  const seeds = [
    REQ.TRACKING,
    REQ.SOURCE_DATA,
    REQ.NTP_DATA,
    REQ.ADD_SOURCE,
    REQ.BURST,
    REQ.CLIENT_ACCESSES_BY_INDEX3,
  ].map((c) => request(c));
  let replies = 0;
  for (let i = 0; i < 4000; i++) {
    let pkt: Buffer;
    if (i % 4 === 0) {
      pkt = Buffer.alloc(Math.floor(rnd() * 900));
      for (let j = 0; j < pkt.length; j++) pkt[j] = Math.floor(rnd() * 256);
      if (pkt.length > 2 && rnd() < 0.5) {
        pkt[0] = 6;
        pkt[1] = 1;
        pkt[2] = pkt[3] = 0;
      }
    } else {
      pkt = Buffer.from(seeds[i % seeds.length]!);
      for (let k = 0; k < 1 + Math.floor(rnd() * 6); k++) pkt[Math.floor(rnd() * pkt.length)] = Math.floor(rnd() * 256);
      if (rnd() < 0.2) pkt = pkt.subarray(0, Math.floor(rnd() * pkt.length));
    }
    for (const origin of [UDP, UNIX]) {
      const r = await svc.handle(pkt, origin);
      if (r) {
        replies++;
        assert.ok(r.length <= pkt.length, `reply ${r.length} > request ${pkt.length}`);
        assert.equal(r[1], 2);
        assert.equal(r.readUInt32BE(16), pkt.readUInt32BE(8)); // sequence echoed
      }
    }
  }
  assert.ok(replies > 1000, `only ${replies} replies`);
});

test('cmdmon config: cmdallow/cmddeny/cmdratelimit/opencommands parse and print', () => {
  const c = parseConfigText(
    'cmdallow 192.168.1.0/24\ncmddeny 192.168.1.13\ncmdratelimit interval 2 burst 4\nopencommands tracking ntpdata\n',
    'test.conf',
  );
  assert.deepEqual(c.cmdaccess, [
    { allow: true, all: false, subnet: '192.168.1.0/24' },
    { allow: false, all: false, subnet: '192.168.1.13' },
  ]);
  assert.deepEqual(c.cmdratelimit, { interval: 2, burst: 4, leak: 2 });
  assert.deepEqual(c.opencommands, ['tracking', 'ntpdata']);
  assert.throws(() => parseOpenCommands(['makestep'], 'f:3'), /f:3: unknown command 'makestep'/);
  assert.throws(() => parseCmdRateLimit(['kod', '2'], 'f:4'), /f:4: unknown cmdratelimit option 'kod'/);
  assert.throws(() => parseConfigText('cmdallow 300.1.1.1/99\n', 'x.conf'), /x.conf:1/);
  assert.equal(testFlags('111 111 1111'), 0x3ff);
  assert.equal(testFlags('011 111 1111'), 0x1ff);
});

test('cmdmon service: cyclelogs reopens the logs over the Unix socket only', async () => {
  const f = fakeEngine();
  let cycled = 0;
  const svc = new CmdmonService({
    engine: f.engine,
    now: () => 1_700_000_100_000_000_000n,
    monotonicSeconds: () => 0,
    flush: () => undefined,
    access: new CmdAccess({}),
    cycleLogs: () => cycled++,
  });
  assert.equal(header((await svc.handle(request(REQ.CYCLELOGS), UDP))!).status, STT.UNAUTH);
  assert.equal(cycled, 0);
  assert.equal(header((await svc.handle(request(REQ.CYCLELOGS), UNIX))!).status, STT.SUCCESS);
  assert.equal(cycled, 1);
  // Without a log service (no logs configured) chronyc gets "500 Failure", never a crash.
  const { svc: bare } = service();
  assert.equal(header((await bare.handle(request(REQ.CYCLELOGS), UNIX))!).status, STT.FAILED);
});

test('cmdmon socket path: chronyd default, next to a configured path, never the JSON path', () => {
  // A configuration file without `bindcmdaddress /path`: where a plain chronyc looks.
  assert.equal(cmdmonSocketPath(DEFAULT_CMD_SOCKET, DEFAULT_CMD_SOCKET), CHRONYC_DEFAULT_SOCKET);
  assert.equal(CHRONYC_DEFAULT_SOCKET, '/var/run/chrony/chronyd.sock');
  // The embedded demo configuration: beside rubidium's own socket, never chronyd's.
  assert.equal(cmdmonSocketPath(DEFAULT_CMD_SOCKET), '/var/run/rubidium/chronyd.sock');
  assert.equal(cmdmonSocketPath('/srv/rb/cmd.sock', DEFAULT_CMD_SOCKET), '/srv/rb/chronyd.sock');
  assert.equal(cmdmonSocketPath('/srv/rb/chronyd.sock', DEFAULT_CMD_SOCKET), '/srv/rb/chronyd-cmdmon.sock');
});
