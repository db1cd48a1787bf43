/**
 * rubidiumd as a service, with real daemon processes:
 *  - sd_notify: with $NOTIFY_SOCKET (our own Unix datagram socket) the daemon sends READY=1 with
 *    its MAINPID, WATCHDOG=1 at half of $WATCHDOG_USEC, and STOPPING=1 on SIGTERM;
 *  - SIGTERM saves the drift file (chrony format) and removes the pidfile;
 *  - the pidfile refuses a second daemon while the first lives, and a stale one is taken over;
 *  - as root in a namespace, `user nobody`: the daemon binds port 123 and UDP 323 first, then runs
 *    as uid 65534, still serves NTP, and writes its drift file into a directory it created for
 *    nobody; dropping root keeps CAP_SYS_TIME only when asked (the system-clock case).
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDriftFile } from '../../src/discipline/driftfile.js';
import { openUnixDgramSocket, unixDgramUnavailableReason } from '../../src/io/unix-dgram.js';
import {
  createNamespace,
  deleteNamespace,
  isRoot,
  makeTempDir,
  removeTempDir,
  waitFor,
  type ManagedProcess,
} from '../support/netns.js';
import { READY_STARTING, quietLines, rubidiumdArgv, runRubidiumd, writeConf } from '../support/rubidiumd.js';
import { probeInNs } from '../support/probe.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const noUnix = unixDgramUnavailableReason();

function start(conf: string, opts: { env?: NodeJS.ProcessEnv; ns?: string | null; ready?: RegExp } = {}) {
  return runRubidiumd(opts.ns ?? null, conf, { name: 'rubidiumd', env: opts.env, ready: opts.ready ?? READY_STARTING });
}

/** The quiet daemon of every test here (see quietLines) plus `extra`, in `dir/rubidium.conf`. */
function quietConf(dir: string, extra: string[] = []): string {
  return writeConf(dir, [...quietLines(dir), ...extra]);
}

describe('rubidiumd service integration', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it(
    'notifies systemd: READY=1, WATCHDOG=1, STOPPING=1; SIGTERM saves the drift file',
    { skip: noUnix ?? false },
    async () => {
      const dir = makeTempDir('svc-notify');
      cleanups.push(() => removeTempDir(dir));
      const got: Array<{ text: string; at: number }> = [];
      const notify = openUnixDgramSocket({
        path: join(dir, 'notify.sock'),
        onDatagram: (d) => got.push({ text: d.toString(), at: Date.now() }),
      });
      cleanups.push(() => notify.close());
      const drift = join(dir, 'drift');
      const pidfile = join(dir, 'rubidiumd.pid');
      const conf = quietConf(dir, [`driftfile ${drift}`, `pidfile ${pidfile}`]);
      const proc = await start(conf, { env: { NOTIFY_SOCKET: notify.path, WATCHDOG_USEC: '200000' } });
      cleanups.push(() => proc.stop());
      const ready = await waitFor(() => got.find((g) => g.text.includes('READY=1')), {
        timeoutMs: 10_000,
        what: 'READY=1',
      });
      assert.match(ready.text, new RegExp(`^READY=1\nSTATUS=.+\nMAINPID=${proc.pid}\n$`));
      assert.equal(readFileSync(pidfile, 'utf8'), `${proc.pid}\n`);
      // WATCHDOG=1 every 100 ms (half of 200 ms): several within a second.
      await new Promise((r) => setTimeout(r, 1000));
      const pings = got.filter((g) => g.text === 'WATCHDOG=1\n');
      assert.ok(pings.length >= 5 && pings.length <= 15, `${pings.length} WATCHDOG=1 in 1 s`);
      assert.equal(existsSync(drift), false, 'drift file written before the first interval');
      proc.signal('SIGTERM');
      const { code } = await proc.waitForExit(10_000);
      assert.equal(code, 0, proc.tail());
      const stop = got.find((g) => g.text.startsWith('STOPPING=1'));
      assert.ok(stop, `no STOPPING=1 in ${JSON.stringify(got.map((g) => g.text).slice(-3))}`);
      assert.ok(stop.at >= ready.at);
      // The graceful exit wrote the drift file (two numbers, chrony's %20.6f format) and removed the pidfile.
      const text = readFileSync(drift, 'utf8');
      assert.match(text, /^ {0,19}-?\d+\.\d{6} {1,20}\d+\.\d{6}\n$/);
      assert.ok(Number.isFinite(parseDriftFile(text).freqPpm));
      assert.equal(existsSync(pidfile), false);
    },
  );

  it('the pidfile refuses a second daemon and a stale one is taken over', async () => {
    const dir = makeTempDir('svc-pid');
    cleanups.push(() => removeTempDir(dir));
    const pidfile = join(dir, 'run', 'rubidiumd.pid');
    const confA = quietConf(dir, [`pidfile ${pidfile}`]);
    const a = await start(confA, { ready: /Control socket on/ });
    cleanups.push(() => a.stop());
    assert.equal(readFileSync(pidfile, 'utf8'), `${a.pid}\n`);
    const dirB = makeTempDir('svc-pid-b');
    cleanups.push(() => removeTempDir(dirB));
    const confB = quietConf(dirB, [`pidfile ${pidfile}`]);
    const [node, ...args] = rubidiumdArgv(confB);
    const r = spawnSync(node!, args, { encoding: 'utf8', timeout: 15_000 });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`Another rubidiumd may already be running \\(pid ${a.pid}\\), check ${pidfile}`));
    assert.equal(readFileSync(pidfile, 'utf8'), `${a.pid}\n`, 'the refused daemon must not touch the pidfile');
    // kill -9 leaves a stale pidfile; the next daemon takes it over.
    await a.stop({ signal: 'SIGKILL' });
    assert.equal(readFileSync(pidfile, 'utf8'), `${a.pid}\n`);
    const b = await start(confB, { ready: /Control socket on/ });
    cleanups.push(() => b.stop());
    assert.equal(readFileSync(pidfile, 'utf8'), `${b.pid}\n`);
    await b.stop();
    assert.equal(existsSync(pidfile), false);
  });

  it('a SIGTERM during start-up is held and ends the daemon cleanly once it is up', async () => {
    const dir = makeTempDir('svc-early');
    cleanups.push(() => removeTempDir(dir));
    const pidfile = join(dir, 'rubidiumd.pid');
    const drift = join(dir, 'drift');
    const proc = await start(quietConf(dir, [`pidfile ${pidfile}`, `driftfile ${drift}`]));
    cleanups.push(() => proc.stop());
    // "starting" is the first line: the control socket is not open yet.
    proc.signal('SIGTERM');
    const { code, signal } = await proc.waitForExit(10_000);
    assert.equal(signal, null, `killed by ${signal}: the early signal was not held\n${proc.tail()}`);
    assert.equal(code, 0, proc.tail());
    assert.match(proc.tail(), /rubidiumd exiting/);
    assert.equal(existsSync(pidfile), false, 'pidfile left behind');
    assert.ok(existsSync(drift), 'drift file not saved');
  });

  it(
    'runs as nobody after binding port 123 and still serves NTP',
    { skip: isRoot() ? false : 'needs root' },
    async () => {
      const ns = await createNamespace('svc-user');
      cleanups.push(() => deleteNamespace(ns));
      const dir = makeTempDir('svc-user');
      cleanups.push(() => removeTempDir(dir));
      const state = join(dir, 'state'); // missing: the daemon creates it for nobody
      const conf = writeConf(dir, [
        'user nobody',
        'port 123',
        'allow 127.0.0.1',
        'local stratum 8',
        'cmdport 323',
        'bindcmdaddress 127.0.0.1',
        `driftfile ${join(state, 'drift')}`,
        `pidfile ${join(state, 'rubidiumd.pid')}`,
      ]);
      const proc: ManagedProcess = await start(conf, { ns, ready: /Dropped root privileges to nobody/ });
      cleanups.push(() => proc.stop());
      const status = readFileSync(`/proc/${proc.pid}/status`, 'utf8');
      assert.match(status, /^Uid:\s+65534\s+65534\s+65534\s+65534$/m);
      assert.match(status, /^Gid:\s+65534\s+65534\s+65534\s+65534$/m);
      assert.match(status, /^CapEff:\s+0+$/m, '-x keeps no capability');
      assert.equal(statSync(state).uid, 65534);
      const probe = await probeInNs(ns, '127.0.0.1', 123, { count: 4, intervalMs: 50 });
      assert.ok(probe.answered >= 3, `answered ${probe.answered} of ${probe.sent}`);
      assert.equal(probe.best!.stratum, 8, 'served from its local stratum 8');
      proc.signal('SIGTERM');
      assert.equal((await proc.waitForExit(10_000)).code, 0, proc.tail());
      // Written and removed after the drop, as nobody.
      assert.equal(statSync(join(state, 'drift')).uid, 65534);
      assert.equal(existsSync(join(state, 'rubidiumd.pid')), false, 'pidfile not removed:\n' + proc.tail());
    },
  );

  it('dropping root keeps CAP_SYS_TIME only when asked', { skip: isRoot() ? false : 'needs root' }, () => {
    const nativeJs = join(root, 'dist', 'src', 'io', 'native.js');
    const script = (caps: string) => `
      const { native } = await import(${JSON.stringify(nativeJs)});
      const eff = native.dropPrivileges(65534, 65534, ${caps});
      const st = (await import('node:fs')).readFileSync('/proc/self/status', 'utf8');
      let adj = 'ok';
      const cur = native.adjtimeRead();
      try { native.adjtime({ freqPpm: cur.freqPpm }); } catch (e) { adj = e.code; }
      console.log(JSON.stringify({ eff: String(eff), uid: process.getuid(), capEff: /CapEff:\\s+(\\w+)/.exec(st)[1], adj }));`;
    const run = (caps: string) => {
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script(caps)], {
        encoding: 'utf8',
        timeout: 10_000,
      });
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout) as { eff: string; uid: number; capEff: string; adj: string };
    };
    // Writing back the frequency just read changes nothing, but needs CAP_SYS_TIME.
    const keep = run('[25]');
    assert.deepEqual(keep, { eff: String(1n << 25n), uid: 65534, capEff: '0000000002000000', adj: 'ok' });
    const none = run('[]');
    assert.deepEqual(none, { eff: '0', uid: 65534, capEff: '0000000000000000', adj: 'EPERM' });
  });
});
