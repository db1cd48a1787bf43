/**
 * The one way tests start rubidiumd: `node bin/rubidiumd -x -d -f CONF` through startDaemon (own
 * process group, CAP_SYS_TIME dropped whenever we are root, so it can never touch the host clock),
 * ready once a log line says so.
 *  - `startRubidiumd`: a fresh temp dir (owner pid in its name), the conf written there, the daemon
 *    started, `query` through rubidiumc when it has a command port, `stop` that also removes the dir;
 *  - `runRubidiumd`: an existing conf (a test that restarts the same conf, or shares a pidfile);
 *  - `rubidiumdArgv`: the command line alone (spawnSync, wrappers such as unshare).
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  isRoot,
  makeTempDir,
  removeTempDir,
  run,
  runInNs,
  startDaemon,
  stopOnceThenRemove,
  type ManagedProcess,
} from './netns.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const RUBIDIUMD = join(ROOT, 'bin', 'rubidiumd');
export const RUBIDIUMC = join(ROOT, 'bin', 'rubidiumc');

/** Log lines to wait for: the first line, the command socket opened, the NTP port bound. */
export const READY_STARTING = /rubidiumd version .* starting/;
export const READY_CONTROL = /Control socket on/;
export const READY_SERVING = /Serving NTP on/;

/** `node bin/rubidiumd -x -d -f CONF ...flags`: no clock control, foreground, logs on stderr. */
export function rubidiumdArgv(conf: string, flags: string[] = []): string[] {
  return [process.execPath, RUBIDIUMD, '-x', '-d', '-f', conf, ...flags];
}

/** Writes `lines` (one directive each) to `dir/name`; returns the path. */
export function writeConf(dir: string, lines: string[], name = 'rubidium.conf'): string {
  const conf = join(dir, name);
  writeFileSync(conf, [...lines, ''].join('\n'));
  return conf;
}

/** A daemon that needs no privileges and touches no shared port: no NTP server, Unix control only. */
export function quietLines(dir: string): string[] {
  return ['port 0', 'cmdport 0', `bindcmdaddress ${join(dir, 'cmd.sock')}`, 'local stratum 10'];
}

export interface RunRubidiumdOptions {
  /** Label in messages (default `rubidiumd`, with `@ns` inside a namespace). */
  name?: string;
  /** Arguments after `-f CONF` (e.g. `--inject-error`). */
  flags?: string[];
  /** Added to this process's environment. */
  env?: NodeJS.ProcessEnv;
  /** Default READY_CONTROL. */
  ready?: RegExp;
  /** Default 15 s. */
  readyTimeoutMs?: number;
  logFile?: string;
}

/** Starts rubidiumd on an existing conf in namespace `ns` (null: the test's own). */
export function runRubidiumd(ns: string | null, conf: string, opts: RunRubidiumdOptions = {}): Promise<ManagedProcess> {
  return startDaemon(ns, rubidiumdArgv(conf, opts.flags), {
    name: opts.name ?? `rubidiumd${ns ? `@${ns}` : ''}`,
    env: { ...process.env, ...opts.env },
    // setpriv needs root; the interop tests in namespaces always are.
    dropSysTime: isRoot(),
    readyPattern: opts.ready ?? READY_CONTROL,
    readyTimeoutMs: opts.readyTimeoutMs ?? 15_000,
    ...(opts.logFile ? { logFile: opts.logFile } : {}),
  });
}

export interface StartRubidiumdOptions extends Omit<RunRubidiumdOptions, 'logFile'> {
  ns: string | null;
  /** Names the temp dir (and the process, unless `name` is given). */
  tag: string;
  /** Configuration lines; `$DIR` stands for the instance's temp dir. */
  lines: string[];
  /** Adds `cmdport N`, `bindcmdaddress 127.0.0.1` and a Unix socket in the dir; `query` needs it. */
  cmdPort?: number;
  /** File name of the conf (default rubidium.conf; `ntp.conf` makes it read as ntp.conf). */
  confName?: string;
}

export interface Rubidiumd {
  proc: ManagedProcess;
  ns: string | null;
  /** The instance's temp dir (its conf, `rubidiumd.log`, `cmd.sock`); removed by `stop`. */
  dir: string;
  conf: string;
  cmdPort: number | null;
  /** `rubidiumc -h 127.0.0.1 -p CMDPORT --json CMD...` in the daemon's namespace, parsed. */
  query<T>(cmd: string): Promise<T>;
  /** Stops it (verified gone) and removes its temp dir. Idempotent. */
  stop(): Promise<void>;
}

/** Writes the conf into a fresh temp dir and starts rubidiumd on it (output also in `dir/rubidiumd.log`). */
export async function startRubidiumd(opts: StartRubidiumdOptions): Promise<Rubidiumd> {
  const { ns, cmdPort } = opts;
  const dir = makeTempDir(opts.tag);
  let proc: ManagedProcess;
  let conf: string;
  try {
    const control =
      cmdPort === undefined
        ? []
        : [`cmdport ${cmdPort}`, 'bindcmdaddress 127.0.0.1', `bindcmdaddress ${join(dir, 'cmd.sock')}`];
    const lines = opts.lines.map((l) => l.replaceAll('$DIR', dir));
    conf = writeConf(dir, [...lines, ...control], opts.confName);
    proc = await runRubidiumd(ns, conf, {
      ...opts,
      name: opts.name ?? `rubidiumd-${opts.tag}${ns ? `@${ns}` : ''}`,
      logFile: join(dir, 'rubidiumd.log'),
    });
  } catch (e) {
    removeTempDir(dir);
    throw e;
  }
  return {
    proc,
    ns,
    dir,
    conf,
    cmdPort: cmdPort ?? null,
    query: async <T>(cmd: string): Promise<T> => {
      if (cmdPort === undefined) throw new Error(`${proc.name}: started without a command port`);
      const argv = [RUBIDIUMC, '-h', '127.0.0.1', '-p', String(cmdPort), '--json', ...cmd.split(' ')];
      const r = ns === null ? await run(process.execPath, argv) : await runInNs(ns, process.execPath, argv);
      return JSON.parse(r.stdout) as T;
    },
    stop: stopOnceThenRemove(proc, dir),
  };
}
