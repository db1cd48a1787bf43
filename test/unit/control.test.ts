import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  MAX_REQUEST_BYTES,
  RateLimiter,
  encodeResponse,
  isLoopbackAddress,
  okResponse,
  parseRequest,
} from '../../src/control/protocol.js';
import { acceptUdpSource, commandTable, startControlServer } from '../../src/control/server.js';
import { ControlTransportError, sendControlRequest } from '../../src/control/client.js';
import { isMaskAddress, main, parseArgs, resolveTargets } from '../../src/cli/rubidiumc.js';
import type { SourceReport, TrackingReport } from '../../src/control/reports.js';

function tmpdir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'rb-ctl-'));
}

const tracking: TrackingReport = {
  refId: 0xc0000201,
  refName: '192.0.2.1',
  stratum: 2,
  refTimeNs: '1700000000000000000',
  systemTimeOffset: -2e-5,
  lastOffset: 1e-5,
  rmsOffset: 2e-5,
  frequencyPpm: 1.5,
  residualFreqPpm: 0,
  skewPpm: 0.05,
  rootDelay: 0.01,
  rootDispersion: 0.001,
  updateInterval: 64,
  leapStatus: 'Normal',
};
const source: SourceReport = {
  mode: 'server',
  state: '*',
  name: 'ntp.example',
  address: '192.0.2.1',
  port: 123,
  stratum: 1,
  poll: 6,
  reach: 255,
  lastRxAgo: 30,
  adjustedOffset: 1e-5,
  measuredOffset: 1.2e-5,
  error: 3e-3,
};

const handler = commandTable({
  tracking: () => okResponse(tracking),
  sources: () => okResponse([source]),
  echo: (args) => okResponse(args),
  fail: () => ({ ok: false, error: '503 No such source' }),
  boom: () => {
    throw new Error('kaboom');
  },
  big: () => okResponse('x'.repeat(70 * 1024)),
  makestep: (args) => okResponse(args.length ? { args } : null),
  cyclelogs: () => okResponse(null),
});

test('protocol: request validation never throws', () => {
  assert.deepEqual(parseRequest('{"cmd":"tracking","args":[]}'), { ok: true, request: { cmd: 'tracking', args: [] } });
  assert.deepEqual(parseRequest('{"cmd":"sources"}'), { ok: true, request: { cmd: 'sources', args: [] } });
  assert.deepEqual(parseRequest('{nope'), { ok: false, error: 'malformed request: invalid JSON' });
  assert.equal(parseRequest('[1]').ok, false);
  assert.equal(parseRequest('{"cmd":5}').ok, false);
  assert.equal(parseRequest('{"cmd":"a b"}').ok, false);
  assert.equal(parseRequest('{"cmd":"x","args":[1]}').ok, false);
  assert.match((parseRequest('x'.repeat(MAX_REQUEST_BYTES + 1)) as { error: string }).error, /request too large/);
  assert.match(encodeResponse(okResponse('y'.repeat(70000))), /response too large/);
  assert.equal(encodeResponse(okResponse({ t: 5n })), '{"ok":true,"data":{"t":"5"}}');
});

test('non-loopback sources are refused', () => {
  for (const a of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1', '0:0:0:0:0:0:0:1']) {
    assert.equal(isLoopbackAddress(a), true, a);
    assert.equal(acceptUdpSource(a), true, a);
  }
  for (const a of ['192.0.2.1', '10.0.0.1', '::2', '2001:db8::1', '::ffff:192.0.2.1', '128.0.0.1', '0.0.0.0']) {
    assert.equal(acceptUdpSource(a), false, a);
  }
});

test('rate limiter: burst then steady rate', () => {
  let t = 0;
  const rl = new RateLimiter(10, 5, () => t);
  for (let i = 0; i < 5; i++) assert.equal(rl.take(), true);
  assert.equal(rl.take(), false);
  t += 100; // 0.1 s → one token
  assert.equal(rl.take(), true);
  assert.equal(rl.take(), false);
});

test('unix socket: round trip, errors, permissions, stale socket', async () => {
  const dir = tmpdir();
  const sockPath = path.join(dir, 'run', 'rb.sock');
  try {
    const srv = await startControlServer({ unixPath: sockPath, handler });
    try {
      assert.equal(fs.statSync(sockPath).mode & 0o777, 0o660);
      assert.equal(fs.statSync(path.dirname(sockPath)).mode & 0o777, 0o750);
      const target = { kind: 'unix' as const, path: sockPath };
      assert.deepEqual(await sendControlRequest(target, { cmd: 'tracking', args: [] }), { ok: true, data: tracking });
      assert.deepEqual(await sendControlRequest(target, { cmd: 'echo', args: ['a', 'b'] }), {
        ok: true,
        data: ['a', 'b'],
      });
      assert.deepEqual(await sendControlRequest(target, { cmd: 'nosuch', args: [] }), {
        ok: false,
        error: "unknown command 'nosuch'",
      });
      assert.deepEqual(await sendControlRequest(target, { cmd: 'boom', args: [] }), { ok: false, error: 'kaboom' });
      assert.match(
        ((await sendControlRequest(target, { cmd: 'big', args: [] })) as { error: string }).error,
        /response too large/,
      );

      // Raw: malformed JSON, several lines on one connection, oversized line.
      const raw = (payload: string): Promise<string[]> =>
        new Promise((resolve, reject) => {
          const c = net.createConnection(sockPath);
          let buf = '';
          c.on('data', (d) => (buf += d.toString()));
          c.on('end', () => resolve(buf.split('\n').filter((l) => l)));
          c.on('error', reject);
          c.write(payload, () => setTimeout(() => c.end(), 100));
        });
      const lines = await raw('{oops\n{"cmd":"echo","args":["1"]}\n\n[]\n');
      assert.deepEqual(
        lines.map((l) => JSON.parse(l) as unknown),
        [
          { ok: false, error: 'malformed request: invalid JSON' },
          { ok: true, data: ['1'] },
          { ok: false, error: 'malformed request: not an object' },
        ],
      );
      const big = await raw('{"cmd":"echo","args":["' + 'z'.repeat(MAX_REQUEST_BYTES + 10));
      assert.equal(big.length, 1);
      assert.match(big[0]!, /request too large/);
      // The server survived all of that.
      assert.equal((await sendControlRequest(target, { cmd: 'echo', args: [] })).ok, true);

      // A second server on a live socket is refused.
      await assert.rejects(startControlServer({ unixPath: sockPath, handler }), /in use/);
    } finally {
      await srv.close();
    }
    assert.equal(fs.existsSync(sockPath), false);

    // A stale socket file (nobody listening) is replaced.
    // A process that dies without cleaning up (SIGKILL) leaves its socket file behind.
    spawnSync(process.execPath, [
      '-e',
      `require('net').createServer().listen(${JSON.stringify(sockPath)}, () => process.kill(process.pid, 'SIGKILL'))`,
    ]);
    assert.equal(fs.lstatSync(sockPath).isSocket(), true);
    const srv2 = await startControlServer({ unixPath: sockPath, handler });
    assert.equal((await sendControlRequest({ kind: 'unix', path: sockPath }, { cmd: 'echo', args: [] })).ok, true);
    await srv2.close();
    // A non-socket file is never removed.
    fs.writeFileSync(sockPath, 'precious');
    await assert.rejects(startControlServer({ unixPath: sockPath, handler }), /not a socket/);
    assert.equal(fs.readFileSync(sockPath, 'utf8'), 'precious');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('udp: round trip, unknown command, malformed and oversized datagrams, rate limit', async () => {
  const srv = await startControlServer({
    udp: { address: '127.0.0.1', port: 0 },
    handler,
    rateLimit: { rate: 1, burst: 8 },
  });
  try {
    const target = { kind: 'udp' as const, host: '127.0.0.1', port: srv.udpPort! };
    assert.deepEqual(await sendControlRequest(target, { cmd: 'sources', args: [] }), { ok: true, data: [source] });
    assert.deepEqual(await sendControlRequest(target, { cmd: 'x', args: [] }), {
      ok: false,
      error: "unknown command 'x'",
    });
    const rawUdp = (payload: Buffer | string): Promise<string> =>
      new Promise((resolve, reject) => {
        const s = dgram.createSocket('udp4');
        const timer = setTimeout(() => {
          s.close();
          reject(new Error('no reply'));
        }, 1000);
        s.on('message', (m) => {
          clearTimeout(timer);
          s.close();
          resolve(m.toString());
        });
        s.send(payload, srv.udpPort!, '127.0.0.1');
      });
    assert.deepEqual(JSON.parse(await rawUdp('not json')), { ok: false, error: 'malformed request: invalid JSON' });
    assert.match(await rawUdp(Buffer.alloc(MAX_REQUEST_BYTES + 1, 0x20)), /request too large/);
    // Burst of 8 used up (4 above + 4 here at most): further requests are dropped → client timeout.
    let failures = 0;
    for (let i = 0; i < 8; i++) {
      try {
        await sendControlRequest(target, { cmd: 'echo', args: [] }, 150, { retransmit: false });
      } catch (e) {
        assert.ok(e instanceof ControlTransportError);
        failures++;
      }
    }
    assert.ok(failures >= 3, `only ${failures} dropped`);
    assert.ok(srv.stats.dropped >= 3);
  } finally {
    await srv.close();
  }
});

test('client: unreachable daemon is a transport error', async () => {
  const dir = tmpdir();
  try {
    await assert.rejects(
      sendControlRequest({ kind: 'unix', path: path.join(dir, 'none.sock') }, { cmd: 'tracking', args: [] }, 500),
      ControlTransportError,
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('rubidiumc: option parsing, target selection, mask/address syntax', () => {
  const p = parseArgs(['-n', '-c', '-h', '/run/x.sock', '-p', '4000', '--json', 'sources', '-v']);
  assert.ok(!('exit' in p));
  assert.deepEqual(p.opts, { hosts: '/run/x.sock', port: 4000, noDns: true, csv: true, json: true, multi: false });
  assert.deepEqual(p.rest, ['sources', '-v']);
  assert.deepEqual((parseArgs(['-nch127.0.0.1', 'tracking']) as { opts: { hosts: string } }).opts.hosts, '127.0.0.1');
  assert.equal((parseArgs(['-x']) as { exit: number }).exit, 1);
  assert.equal((parseArgs(['-p', 'abc']) as { exit: number }).exit, 1);
  const none = (): boolean => false;
  assert.deepEqual(resolveTargets({ hosts: null, port: 323 }, {}, none), [
    { kind: 'udp', host: '127.0.0.1', port: 323 },
  ]);
  assert.deepEqual(resolveTargets({ hosts: null, port: 323 }, { RUBIDIUM_SOCKET: '/tmp/s' }, none), [
    { kind: 'unix', path: '/tmp/s' },
  ]);
  assert.deepEqual(
    resolveTargets({ hosts: null, port: 9 }, {}, () => true),
    [
      { kind: 'unix', path: '/var/run/rubidium/rubidiumd.sock' },
      { kind: 'udp', host: '127.0.0.1', port: 9 },
    ],
  );
  assert.deepEqual(resolveTargets({ hosts: '/a.sock,[::1]', port: 5 }, {}, none), [
    { kind: 'unix', path: '/a.sock' },
    { kind: 'udp', host: '::1', port: 5 },
  ]);
  for (const ok of ['192.0.2.1', '192.0.2.0/24', '255.255.255.0/192.0.2.0', '2001:db8::/32', 'ntp.example.org'])
    assert.ok(isMaskAddress(ok), ok);
  for (const bad of ['192.0.2.0/33', '1.2.3.4/::1', '256.1.1.1/8', 'a b']) assert.ok(!isMaskAddress(bad), bad);
});

function capture(): { out: string[]; err: string[]; io: { stdout(s: string): void; stderr(s: string): void } } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { stdout: (s) => void out.push(s), stderr: (s) => void err.push(s) } };
}

test('rubidiumc end to end over a Unix socket', async () => {
  const dir = tmpdir();
  const sock = path.join(dir, 'rb.sock');
  const srv = await startControlServer({ unixPath: sock, handler });
  try {
    const env = { RUBIDIUM_SOCKET: sock };
    let c = capture();
    assert.equal(await main(['sources'], { ...c.io, env }), 0);
    assert.equal(
      c.out.join(''),
      'MS Name/IP address         Stratum Poll Reach LastRx Last sample               \n' +
        '='.repeat(79) +
        '\n^* ntp.example                   1   6   377    30    +10us[  +12us] +/- 3000us\n',
    );
    c = capture();
    assert.equal(await main(['-c', 'tracking'], { ...c.io, env }), 0);
    assert.match(c.out.join(''), /^C0000201,192\.0\.2\.1,2,1700000000\.000000000,-0\.000020000,/);
    c = capture();
    assert.equal(await main(['--json', 'tracking'], { ...c.io, env }), 0);
    assert.deepEqual(JSON.parse(c.out.join('')), tracking);
    c = capture();
    assert.equal(await main(['makestep'], { ...c.io, env }), 0);
    assert.equal(c.out.join(''), '200 OK\n');
    c = capture();
    assert.equal(await main(['makestep', '0.1', '3'], { ...c.io, env }), 0);
    c = capture();
    assert.equal(await main(['cyclelogs'], { ...c.io, env }), 0);
    assert.equal(c.out.join(''), '200 OK\n');
    c = capture();
    assert.equal(await main(['cyclelogs', 'now'], { ...c.io, env }), 1);
    assert.equal(c.err.join(''), 'Bad syntax for cyclelogs command\n');
    c = capture();
    assert.equal(await main(['makestep', 'x'], { ...c.io, env }), 1);
    assert.equal(c.err.join(''), 'Bad syntax for makestep command\n');
    c = capture();
    assert.equal(await main(['-m', 'tracking', 'frobnicate', 'tracking'], { ...c.io, env }), 1);
    assert.equal(c.err.join(''), 'Unrecognized command\n');
    assert.equal(c.out.join('').match(/Reference ID/g)?.length, 1); // stops at the failing command
    c = capture();
    // The daemon doesn't know 'burst' in this table → chronyc's "502 Invalid command".
    assert.equal(await main(['burst', '2/4', '192.0.2.0/24'], { ...c.io, env }), 1);
    assert.equal(c.out.join(''), '502 Invalid command\n');
    c = capture();
    assert.equal(await main(['waitsync', '3', '0.001', '1', '0.01'], { ...c.io, env, sleep: async () => {} }), 0);
    assert.equal(c.out.join(''), 'try: 1, refid: C0000201, correction: 0.000020000, skew: 0.050\n');
  } finally {
    await srv.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('rubidiumc waitsync gives up after max tries; no daemon prints 506', async () => {
  const unsynced = { ...tracking, refId: 0x7f7f0101, refName: '' };
  const dir = tmpdir();
  const sock = path.join(dir, 'rb.sock');
  const srv = await startControlServer({
    unixPath: sock,
    handler: commandTable({ tracking: () => okResponse(unsynced) }),
  });
  try {
    let sleeps = 0;
    const c = capture();
    const code = await main(['waitsync', '3', '0', '0', '2'], {
      ...c.io,
      env: { RUBIDIUM_SOCKET: sock },
      sleep: async (ms) => void (sleeps += ms),
    });
    assert.equal(code, 1);
    assert.equal(
      c.out
        .join('')
        .split('\n')
        .filter((l) => l.startsWith('try: ')).length,
      3,
    );
    assert.match(c.out.join(''), /^try: 3, refid: 7F7F0101, correction: 0\.000020000, skew: 0\.050$/m);
    assert.equal(sleeps, 4000); // two waits of 2 s between three tries
  } finally {
    await srv.close();
  }
  const c = capture();
  assert.equal(await main(['tracking'], { ...c.io, env: { RUBIDIUM_SOCKET: sock }, timeoutMs: 300 }), 1);
  assert.equal(c.out.join(''), '506 Cannot talk to daemon\n');
  fs.rmSync(dir, { recursive: true, force: true });
});
