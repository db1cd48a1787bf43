/**
 * The two servers under test, one at a time in the benchmark namespace: their configuration
 * files (the same lines for both; only pidfile/command-socket lines and rubidiumd's
 * `serverworkers` differ), start, wait until they answer NTP as stratum 1, stop.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  makeTempDir,
  removeTempDir,
  run,
  startDaemon,
  stopOnceThenRemove,
  waitFor,
  type ManagedProcess,
} from '../../test/support/netns.js';
import { PEER_BINARIES } from '../../test/support/peers.js';
import { probeInNs } from '../../test/support/probe.js';
import { RUBIDIUMD } from '../accuracy/daemons.js';

/**
 * Extra node flags for rubidiumd from RUBIDIUMD_NODE_FLAGS (space-separated), e.g.
 * "--cpu-prof --cpu-prof-dir=/tmp/prof": flags NODE_OPTIONS does not allow (--cpu-prof).
 */
export function rubidiumdNodeFlags(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env['RUBIDIUMD_NODE_FLAGS'] ?? '').split(/\s+/).filter((f) => f !== '');
}

export type ServerName = 'chronyd' | 'rubidiumd';
export const SERVER_NAMES: readonly ServerName[] = ['chronyd', 'rubidiumd'];

/** NTP port of both servers (they run one after the other). */
export const NTP_PORT = 11123;
/** NTS-KE ports: distinct, so a leftover of one can never answer for the other. */
export const NTS_KE_PORTS: Record<ServerName, number> = { chronyd: 14460, rubidiumd: 14461 };
/** chrony's default clientloglimit (bytes), written out so that both use the same. */
export const CLIENT_LOG_LIMIT = 524288;

export interface NtsServerFiles {
  cert: string;
  key: string;
}

/** The lines both servers get (ntsport aside): no ratelimit, no command port. */
export function commonLines(nts: NtsServerFiles | null, ntsPort: number): string[] {
  const lines = ['local stratum 1', 'allow', `port ${NTP_PORT}`, 'cmdport 0', `clientloglimit ${CLIENT_LOG_LIMIT}`];
  if (nts) lines.push(`ntsservercert ${nts.cert}`, `ntsserverkey ${nts.key}`, `ntsport ${ntsPort}`);
  return lines;
}

export function chronydConfig(dir: string, nts: NtsServerFiles | null): string {
  return [
    ...commonLines(nts, NTS_KE_PORTS.chronyd),
    'bindcmdaddress /', // no Unix command socket (it would be the system's /run/chrony one)
    `pidfile ${join(dir, 'chronyd.pid')}`,
    '',
  ].join('\n');
}

/** `workers`: the `serverworkers` argument (null: leave the directive out). */
export function rubidiumdConfig(dir: string, nts: NtsServerFiles | null, workers: string | null): string {
  return [
    ...commonLines(nts, NTS_KE_PORTS.rubidiumd),
    `bindcmdaddress ${join(dir, 'cmd.sock')}`, // private socket: the readiness line names it
    `pidfile ${join(dir, 'rubidiumd.pid')}`,
    ...(workers === null ? [] : [`serverworkers ${workers}`]),
    '',
  ].join('\n');
}

export interface RunningServer {
  name: ServerName;
  proc: ManagedProcess;
  /** The server process itself (`ip netns exec` and `setpriv` exec into it: same pid). */
  pid: number;
  dir: string;
  confPath: string;
  /** The `serverworkers` value in effect (rubidiumd; null: directive not used). */
  workers: string | null;
  notes: string[];
  stop(): Promise<void>;
}

/**
 * Whether this rubidiumd accepts `serverworkers` (it is new): `rubidiumd -p` on a config with it.
 * Returns null when accepted, else rubidiumd's complaint.
 */
export async function serverWorkersRefusal(dir: string, workers: string): Promise<string | null> {
  const probe = join(dir, 'workers-check.conf');
  writeFileSync(probe, `serverworkers ${workers}\n`);
  const r = await run(process.execPath, [RUBIDIUMD, '-p', '-f', probe], { check: false, timeoutMs: 30_000 });
  if (r.code === 0) return null;
  const msg = (r.stderr + r.stdout).trim();
  if (!/serverworkers/.test(msg)) throw new Error(`rubidiumd -p failed on a one-line config: ${msg}`);
  return msg;
}

/** Waits until the server answers NTP on 127.0.0.1:NTP_PORT as a synchronised stratum-1 server. */
async function waitForNtp(ns: string, proc: ManagedProcess, timeoutMs: number): Promise<void> {
  await waitFor(
    async () => {
      if (proc.exited) throw new Error(`${proc.name} exited (${proc.exitCode ?? proc.exitSignal})`);
      const r = await probeInNs(ns, '127.0.0.1', NTP_PORT, { count: 1, timeoutMs: 500, allowNoAnswer: true });
      return r.best !== null && r.best.stratum === 1 && r.best.leap !== 3;
    },
    { timeoutMs, intervalMs: 250, what: `${proc.name} to answer NTP as stratum 1` },
  ).catch((e: Error) => {
    throw new Error(`${e.message}\n${proc.tail()}`);
  });
}

function commOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

export interface StartServerOptions {
  ns: string;
  nts: NtsServerFiles | null;
  /** rubidiumd `serverworkers` ('auto' or N). */
  workers: string;
}

export async function startServer(name: ServerName, o: StartServerOptions): Promise<RunningServer> {
  const dir = makeTempDir(`cap-${name}`);
  const notes: string[] = [];
  let proc: ManagedProcess | undefined;
  try {
    let argv: string[];
    let readyPattern: RegExp;
    let confPath: string;
    let workers: string | null = null;
    if (name === 'chronyd') {
      confPath = join(dir, 'chrony.conf');
      writeFileSync(confPath, chronydConfig(dir, o.nts));
      // As root: chronyd drops to its own user after binding (no -U needed); -x: never touches the clock.
      argv = [PEER_BINARIES.chronyd, '-x', '-d', '-f', confPath];
      readyPattern = /chronyd version \S+ starting/;
    } else {
      workers = o.workers;
      const refusal = await serverWorkersRefusal(dir, workers);
      if (refusal !== null) {
        notes.push(`this rubidiumd does not know 'serverworkers' yet: running without it (${refusal})`);
        workers = null;
      }
      confPath = join(dir, 'rubidium.conf');
      writeFileSync(confPath, rubidiumdConfig(dir, o.nts, workers));
      argv = [process.execPath, ...rubidiumdNodeFlags(), RUBIDIUMD, '-x', '-d', '-f', confPath];
      readyPattern = /Control socket on/;
    }
    proc = await startDaemon(o.ns, argv, {
      name: `${name}@${o.ns}`,
      readyPattern,
      readyTimeoutMs: 30_000,
      logFile: join(dir, `${name}.log`),
    });
    await waitForNtp(o.ns, proc, 30_000);
    const comm = commOf(proc.pid);
    const expected = name === 'chronyd' ? 'chronyd' : 'node';
    if (!comm.startsWith(expected)) {
      throw new Error(`pid ${proc.pid} is '${comm}', not ${expected}: CPU/RSS would be measured on the wrong process`);
    }
    const p = proc;
    return { name, proc: p, pid: p.pid, dir, confPath, workers, notes, stop: stopOnceThenRemove(p, dir) };
  } catch (e) {
    await proc?.stop().catch(() => undefined);
    removeTempDir(dir);
    throw e;
  }
}
