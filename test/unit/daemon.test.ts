/**
 * rubidiumd as a process on loopback: config errors, hostile packets, the control socket, -Q.
 * Runs the real launcher (bin/rubidiumd) with -x: the host clock is never touched.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodePacket } from '../../src/ntp/packet.js';
import { clientRequestBytes } from '../support/ntp-packets.js';
import { sendControlRequest } from '../../src/control/client.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const RUBIDIUMD = join(root, 'bin', 'rubidiumd');
const RUBIDIUMC = join(root, 'bin', 'rubidiumc');
const base = 20000 + (process.pid % 5000) * 2;
const NTP_PORT = base;
const CMD_PORT = base + 1;

function tempConf(text: string): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'rb-daemon-'));
  const file = join(dir, 'rubidium.conf');
  writeFileSync(file, text);
  return { dir, file };
}

function waitOutput(child: ChildProcess, re: RegExp, ms: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`timeout waiting for ${re}; output:\n${buf}`)), ms);
    const on = (d: Buffer) => {
      buf += d.toString();
      if (re.test(buf)) {
        clearTimeout(timer);
        resolve(buf);
      }
    };
    child.stdout?.on('data', on);
    child.stderr?.on('data', on);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited ${code} before ${re}; output:\n${buf}`));
    });
  });
}

async function stop(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  const done = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 5000);
  const code = await done;
  clearTimeout(t);
  return code;
}

function rubidiumc(args: string[]): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [RUBIDIUMC, '-h', '127.0.0.1', '-p', String(CMD_PORT), ...args], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  return { code: r.status, out: r.stdout + r.stderr };
}

function request(sock: dgram.Socket, data: Uint8Array, port: number, timeoutMs = 2000): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      sock.off('message', on);
      resolve(null);
    }, timeoutMs);
    const on = (msg: Buffer) => {
      clearTimeout(t);
      sock.off('message', on);
      resolve(msg);
    };
    sock.on('message', on);
    sock.send(data, port, '127.0.0.1');
  });
}

const clientRequest = () => clientRequestBytes();

test('a config error names file and line and exits non-zero', () => {
  const { dir, file } = tempConf('server 192.0.2.1 iburst\nmakestep 1\n');
  try {
    const r = spawnSync(process.execPath, [RUBIDIUMD, '-x', '-d', '-f', file], { encoding: 'utf8', timeout: 10_000 });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2: `));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('unknown flags are refused; -v prints the version', () => {
  const bad = spawnSync(process.execPath, [RUBIDIUMD, '-Z'], { encoding: 'utf8' });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /unknown option -Z/);
  const v = spawnSync(process.execPath, [RUBIDIUMD, '-v'], { encoding: 'utf8' });
  assert.equal(v.status, 0);
  assert.match(v.stdout, /^rubidiumd \(Rubidium\) version \d+\.\d+\.\d+/);
});

test(
  'hostile datagrams are dropped and counted, the server keeps answering, unknown commands get an error',
  { timeout: 60_000 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rb-daemon-'));
    const file = join(dir, 'rubidium.conf');
    const lines = [`port ${NTP_PORT}`, 'bindaddress 127.0.0.1', 'allow 127.0.0.1', 'local stratum 3'];
    // A source that never answers (nothing listens on CMD_PORT + 1000): for online/offline/activity.
    lines.push(`server 127.0.0.1 port ${NTP_PORT + 1000} minpoll 0 maxpoll 0`);
    lines.push(`cmdport ${CMD_PORT}`, 'bindcmdaddress 127.0.0.1', `bindcmdaddress ${join(dir, 'cmd.sock')}`);
    writeFileSync(file, lines.join('\n') + '\n');
    const child = spawn(process.execPath, [RUBIDIUMD, '-x', '-d', '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    const sock = dgram.createSocket('udp4');
    try {
      await waitOutput(child, /Control socket on/, 15_000);
      await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));

      // A good request is answered as a stratum-3 server.
      const ok = await request(sock, clientRequest(), NTP_PORT);
      assert.ok(ok, 'no answer to a valid request');
      const d = decodePacket(ok);
      assert.ok(d.ok);
      if (d.ok) {
        assert.equal(d.packet.mode, 4);
        assert.equal(d.packet.stratum, 3);
        assert.equal(d.packet.origin, 0x1234_5678_9abc_def0n);
      }

      // Hostile input: short, mode 7 (monlist), mode 6, bad extension field, random bytes.
      const hostile: Uint8Array[] = [
        new Uint8Array(10),
        Uint8Array.from([0x17, 0x00, 0x03, 0x2a, ...new Array(44).fill(0)]),
        Uint8Array.from([0x16, 0x02, 0x00, 0x01, ...new Array(8).fill(0)]),
        (() => {
          const p = new Uint8Array(48 + 8);
          p.set(clientRequest());
          p.set([0x12, 0x34, 0xff, 0xf0], 48); // extension length beyond the packet
          return p;
        })(),
      ];
      for (let i = 0; i < 50; i++)
        hostile.push(Uint8Array.from({ length: 1 + ((i * 37) % 200) }, (_, j) => (i * 131 + j * 17) & 0xff));
      for (const h of hostile) {
        const r = await request(sock, h, NTP_PORT, 50);
        if (!r) continue;
        // Mode 6 from loopback may get a full answer (loopback cannot be spoofed from off-host,
        // docs/ntpq.md); it must then be a mode 6 response. Everything else never amplifies.
        if ((h[0]! & 7) === 6 && h.length >= 12) assert.ok((r[0]! & 7) === 6 && (r[1]! & 0x80) !== 0, 'mode 6 answer');
        else assert.ok(r.length <= h.length, `an answer (${r.length} B) larger than its request (${h.length} B)`);
      }
      // Still alive and answering.
      const again = await request(sock, clientRequest(), NTP_PORT);
      assert.ok(again, 'no answer after hostile input');

      const stats = rubidiumc(['--json', 'serverstats']);
      assert.equal(stats.code, 0, stats.out);
      const s = JSON.parse(stats.out) as {
        ntpPacketsReceived: number;
        ntpPacketsDropped: number;
        malformedDropped: Record<string, number>;
      };
      assert.ok(s.ntpPacketsDropped >= 4, `dropped ${s.ntpPacketsDropped}`);
      assert.ok(s.ntpPacketsReceived >= hostile.length, `received ${s.ntpPacketsReceived}`);
      assert.ok((s.malformedDropped['short'] ?? 0) >= 1, JSON.stringify(s.malformedDropped));
      assert.ok((s.malformedDropped['mode'] ?? 0) >= 2, JSON.stringify(s.malformedDropped));

      // The chronyc-style text output of the same.
      const text = rubidiumc(['serverstats']);
      assert.match(text.out, /^NTP packets received\s+: \d+$/m);

      // rubidiumc refuses an unknown command itself, like chronyc ...
      const unk = rubidiumc(['frobnicate']);
      assert.notEqual(unk.code, 0);
      assert.match(unk.out, /Unrecognized command/);
      // ... and the daemon answers one sent anyway with an error, on both transports.
      for (const target of [
        { kind: 'udp' as const, host: '127.0.0.1', port: CMD_PORT },
        { kind: 'unix' as const, path: join(dir, 'cmd.sock') },
      ]) {
        const r = await sendControlRequest(target, { cmd: 'frobnicate', args: [] });
        assert.equal(r.ok, false);
        if (!r.ok) assert.match(r.error, /unknown command 'frobnicate'/);
      }

      // Serving its local reference: refid LOCL, local stratum, reference time now.
      const tr = JSON.parse(rubidiumc(['--json', 'tracking']).out) as {
        refId: number;
        stratum: number;
        refTimeNs: string;
      };
      assert.equal(tr.refId, 0x4c4f434c);
      assert.equal(tr.stratum, 3);
      assert.ok(Math.abs(Number(BigInt(tr.refTimeNs) / 1_000_000n) - Date.now()) < 5000, tr.refTimeNs);

      // Source operations through rubidiumc, checked through activity and sources.
      const act = () => JSON.parse(rubidiumc(['--json', 'activity']).out) as { online: number; offline: number };
      assert.deepEqual([act().online, act().offline], [1, 0]);
      assert.match(rubidiumc(['offline']).out, /^200 OK$/m);
      assert.deepEqual([act().online, act().offline], [0, 1]);
      assert.match(rubidiumc(['online', '127.0.0.1']).out, /^200 OK$/m);
      assert.deepEqual([act().online, act().offline], [1, 0]);
      assert.match(rubidiumc(['burst', '2/4']).out, /^200 OK$/m);
      assert.match(rubidiumc(['makestep']).out, /^200 OK$/m);
      const src = rubidiumc(['sources']);
      assert.match(src.out, /^\^\? 127\.0\.0\.1 /m, src.out); // configured, unreachable: '?'
      // waitsync: with `local stratum 3` and no reachable source the daemon serves its local
      // reference (refid LOCL), which waitsync accepts at once, as chronyc does.
      const ws = spawnSync(
        process.execPath,
        [RUBIDIUMC, '-h', '127.0.0.1', '-p', String(CMD_PORT), 'waitsync', '2', '0', '0', '0.1'],
        {
          encoding: 'utf8',
          timeout: 10_000,
        },
      );
      assert.equal(ws.status, 0, ws.stdout + ws.stderr);
      assert.match(ws.stdout, /^try: 1, refid: 4C4F434C, correction: /m);

      // -Q measures once against this server and exits, leaving the clock alone.
      const q = spawnSync(process.execPath, [RUBIDIUMD, '-Q', '-t', '20', `server 127.0.0.1 port ${NTP_PORT} iburst`], {
        encoding: 'utf8',
        timeout: 30_000,
      });
      assert.equal(q.status, 0, q.stdout + q.stderr);
      const m = /System clock wrong by (-?\d+\.\d+) seconds \(ignored\)/.exec(q.stdout);
      assert.ok(m, q.stdout + q.stderr);
      assert.ok(Math.abs(Number(m[1])) < 0.01, `offset ${m[1]} against a server on the same clock`);
    } finally {
      sock.close();
      const code = await stop(child);
      rmSync(dir, { recursive: true, force: true });
      assert.equal(code, 0, 'rubidiumd did not exit cleanly on SIGTERM');
    }
  },
);
