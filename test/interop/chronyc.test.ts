/**
 * Debian's chronyc 4.3 against rubidiumd's cmdmon service, on loopback: a reference rubidiumd
 * (local stratum 3) serves a client rubidiumd (-x, host clock untouched); chronyc queries the
 * client over UDP and over the Unix datagram socket and the test parses chronyc's output.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { unixDgramUnavailableReason } from '../../src/io/unix-dgram.js';
import { READY_CONTROL, READY_SERVING, startRubidiumd, type Rubidiumd } from '../support/rubidiumd.js';

const CHRONYC = '/usr/bin/chronyc';
const base = 30000 + (process.pid % 4000) * 3;
const REF_PORT = base;
const CLIENT_NTP_PORT = base + 1;
const CMD_PORT = base + 2;

function chronyc(args: string[]): { out: string; code: number | null } {
  const r = spawnSync(CHRONYC, ['-m', ...args], { encoding: 'utf8', timeout: 10_000 });
  return { out: (r.stdout ?? '') + (r.stderr ?? ''), code: r.status };
}
const udp = (...cmd: string[]) => chronyc(['-n', '-h', '127.0.0.1', '-p', String(CMD_PORT), cmd.join(' ')]);

async function until(what: string, ms: number, f: () => boolean): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (f()) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.fail(`timed out waiting for ${what}`);
}

/** chronyc activity → [online incl. bursting, offline incl. bursting]. */
function activity(out: string): [number, number] {
  const n = (re: RegExp) => Number(re.exec(out)?.[1] ?? NaN);
  return [
    n(/(\d+) sources online/) + n(/(\d+) sources doing burst \(return to online\)/),
    n(/(\d+) sources offline/) + n(/(\d+) sources doing burst \(return to offline\)/),
  ];
}

/** "Key : value" lines of a chronyc report. */
function fields(out: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of out.split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) m.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  return m;
}

test(
  'chronyc 4.3 against rubidiumd (UDP and Unix socket)',
  { skip: !existsSync(CHRONYC) && 'chronyc not installed', timeout: 90_000 },
  async (ctx) => {
    const procs: Rubidiumd[] = [];
    try {
      procs.push(
        await startRubidiumd({
          ns: null,
          tag: 'chronyc-ref',
          lines: [
            `port ${REF_PORT}`,
            'bindaddress 127.0.0.1',
            'allow 127.0.0.1',
            'local stratum 3',
            'cmdport 0',
            'bindcmdaddress /',
          ],
          ready: READY_SERVING,
        }),
      );
      const client = await startRubidiumd({
        ns: null,
        tag: 'chronyc-client',
        lines: [
          `server 127.0.0.1 port ${REF_PORT} iburst minpoll 0 maxpoll 1`,
          `port ${CLIENT_NTP_PORT}`,
          'bindaddress 127.0.0.1',
          'allow 127.0.0.1',
          `cmdport ${CMD_PORT}`,
          'bindcmdaddress 127.0.0.1',
          'bindcmdaddress $DIR/run/rubidiumd.sock',
        ],
        ready: READY_CONTROL,
      });
      procs.push(client);
      const chronySock = join(client.dir, 'run', 'chronyd.sock');
      // Synchronised to the reference: chronyc tracking shows it.
      await until('tracking to show the reference', 30_000, () => /Stratum\s+:\s+4/.test(udp('tracking').out));
      const t = fields(udp('tracking').out);
      assert.equal(t.get('Reference ID'), '7F000001 (127.0.0.1)');
      assert.equal(t.get('Stratum'), '4');
      assert.match(t.get('System time')!, /^\d+\.\d{9} seconds (slow|fast) of NTP time$/);
      assert.match(t.get('Frequency')!, /^\d+\.\d{3} ppm (slow|fast)$/);
      assert.equal(t.get('Leap status'), 'Normal');
      const last = Number(t.get('Last offset')!.split(' ')[0]);
      assert.ok(Math.abs(last) < 0.01, `last offset ${last}`);

      // sources -v: legend, one server line selected, reach growing, small offsets.
      await until('reach >= 7', 20_000, () =>
        /\^\* 127\.0\.0\.1\s+3\s+\S+\s+(7|17|37|77|177|377)\s/.test(udp('sources').out),
      );
      const sv = udp('sources', '-v').out;
      assert.match(sv, /Source mode {2}'\^' = server/);
      const line = sv.split('\n').find((l) => l.startsWith('^*'))!;
      const m =
        /^\^\* (\S+)\s+(\d+)\s+(-?\d+)\s+([0-7]+)\s+(\d+)\s+([-+]\d+)(ns|us|ms)\[\s*([-+]\d+)(ns|us|ms)\] \+\/-\s+(\d+)(ns|us|ms)$/.exec(
          line,
        );
      assert.ok(m, `sources line: ${line}`);
      assert.equal(m[1], '127.0.0.1');
      assert.equal(m[2], '3');
      assert.ok(Number(m[3]) >= 0 && Number(m[3]) <= 1, `poll ${m[3]}`);

      // CSV: same data, comma separated, no header.
      const csv = chronyc(['-c', '-h', '127.0.0.1', '-p', String(CMD_PORT), 'sources'])
        .out.trim()
        .split('\n');
      assert.equal(csv.length, 1);
      const c = csv[0]!.split(',');
      assert.deepEqual(c.slice(0, 4), ['^', '*', '127.0.0.1', '3']);
      const tc = chronyc(['-c', '-h', '127.0.0.1', '-p', String(CMD_PORT), 'tracking'])
        .out.trim()
        .split(',');
      assert.deepEqual(tc.slice(0, 3), ['7F000001', '127.0.0.1', '4']);

      const ss = udp('sourcestats')
        .out.split('\n')
        .find((l) => l.startsWith('127.0.0.1'))!;
      assert.match(
        ss,
        /^127\.0\.0\.1\s+\d+\s+\d+\s+\S+\s+[-+]\d+\.\d{3}\s+\d+\.\d{3}\s+[-+]\d+(ns|us|ms)\s+\d+(ns|us|ms)$/,
      );
      const act = udp('activity').out;
      assert.match(act, /^200 OK\n/);
      assert.deepEqual(activity(act), [1, 0]);

      // Monitoring commands chronyd 4.3 keeps off the network, and every modifying command.
      for (const cmd of [
        'ntpdata',
        'serverstats',
        'clients',
        'makestep',
        'burst 4/8',
        'offline',
        'online',
        'delete 127.0.0.1',
      ]) {
        assert.match(udp(cmd).out, /501 Not authorised/, cmd);
      }
      assert.match(udp('add server 127.0.0.2').out, /501 Not authorised/);

      const why = unixDgramUnavailableReason();
      if (why) {
        ctx.skip(`Unix datagram sockets unavailable: ${why}`);
        return;
      }
      const ux = (...cmd: string[]) => chronyc(['-n', '-h', chronySock, cmd.join(' ')]);
      const nd = fields(ux('ntpdata', '127.0.0.1').out);
      assert.equal(nd.get('Remote address'), '127.0.0.1 (7F000001)');
      assert.equal(nd.get('Remote port'), String(REF_PORT));
      assert.equal(nd.get('Stratum'), '3');
      assert.equal(nd.get('Mode'), 'Server');
      assert.equal(nd.get('NTP tests'), '111 111 1111');
      assert.ok(Number(nd.get('Total valid RX')) >= 3);
      const st = fields(ux('serverstats').out);
      assert.ok(Number(st.get('Command packets received')) > 10, `cmd packets ${st.get('Command packets received')}`);
      assert.match(ux('clients').out, /^Hostname\s+NTP\s+Drop/);

      assert.equal(ux('makestep').out.trim(), '200 OK');
      assert.equal(ux('burst', '2/4').out.trim(), '200 OK');
      assert.equal(ux('offline').out.trim(), '200 OK');
      assert.deepEqual(activity(ux('activity').out), [0, 1]);
      assert.equal(ux('online', '255.255.255.0/127.0.0.0').out.trim(), '200 OK');
      assert.deepEqual(activity(ux('activity').out), [1, 0]);
      assert.equal(ux('offline', '10.1.2.3').out.trim(), '503 No such source');
      assert.equal(ux('add', 'server', `127.0.0.1 port ${CLIENT_NTP_PORT} iburst`).out.trim(), '200 OK');
      assert.equal(ux('add', 'server', `127.0.0.1 port ${CLIENT_NTP_PORT}`).out.trim(), '511 Source already present');
      await until(
        'two sources',
        5_000,
        () =>
          ux('sources')
            .out.split('\n')
            .filter((l) => l.startsWith('^')).length === 2,
      );
      assert.equal(ux('delete', '127.0.0.1').out.trim(), '200 OK');
      const after = ux('sources')
        .out.split('\n')
        .filter((l) => l.startsWith('^'));
      assert.deepEqual(after, []);
      assert.equal(ux('delete', '127.0.0.1').out.trim(), '503 No such source');
    } finally {
      for (const p of procs) await p.stop();
    }
  },
);
