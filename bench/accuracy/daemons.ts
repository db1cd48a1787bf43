/**
 * rubidiumd instances for the accuracy benchmark (references and the client under test), started
 * the way test/interop/rubidiumd.test.ts does: `rubidiumd -x -d -f CONF` through startDaemon
 * (own process group, CAP_SYS_TIME dropped), UDP command port on 127.0.0.1 plus a Unix command
 * socket in the instance's temp dir (so instances never share the default socket path).
 */
import { writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  makeTempDir,
  removeTempDir,
  runInNs,
  stopOnceThenRemove,
  startDaemon,
  type ManagedProcess,
} from '../../test/support/netns.js';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const RUBIDIUMD = join(ROOT, 'bin', 'rubidiumd');
export const RUBIDIUMC = join(ROOT, 'bin', 'rubidiumc');

export interface Rubidiumd {
  proc: ManagedProcess;
  ns: string;
  dir: string;
  cmdPort: number;
  /** `rubidiumc -h 127.0.0.1 -p CMDPORT --json CMD` inside the namespace, parsed. */
  query<T>(cmd: string): Promise<T>;
  /** Stops it (verified gone) and removes its temp dir. Idempotent. */
  stop(): Promise<void>;
}

export async function startRubidiumd(opts: {
  ns: string;
  lines: string[];
  cmdPort: number;
  extraArgs?: string[];
  name?: string;
}): Promise<Rubidiumd> {
  const dir = makeTempDir(opts.name ?? 'rubidiumd');
  const conf = join(dir, 'rubidium.conf');
  writeFileSync(
    conf,
    [
      ...opts.lines,
      `cmdport ${opts.cmdPort}`,
      'bindcmdaddress 127.0.0.1',
      `bindcmdaddress ${join(dir, 'cmd.sock')}`,
      '',
    ].join('\n'),
  );
  let proc: ManagedProcess;
  try {
    proc = await startDaemon(
      opts.ns,
      [process.execPath, RUBIDIUMD, '-x', '-d', '-f', conf, ...(opts.extraArgs ?? [])],
      {
        name: `${opts.name ?? 'rubidiumd'}@${opts.ns}`,
        readyPattern: /Control socket on/,
        readyTimeoutMs: 20_000,
        logFile: join(dir, 'rubidiumd.log'),
      },
    );
  } catch (e) {
    removeTempDir(dir);
    throw e;
  }
  const p = proc;
  return {
    proc: p,
    ns: opts.ns,
    dir,
    cmdPort: opts.cmdPort,
    query: async <T>(cmd: string): Promise<T> => {
      const r = await runInNs(
        opts.ns,
        process.execPath,
        [RUBIDIUMC, '-h', '127.0.0.1', '-p', String(opts.cmdPort), '--json', ...cmd.split(' ')],
        { timeoutMs: 10_000 },
      );
      return JSON.parse(r.stdout) as T;
    },
    stop: stopOnceThenRemove(p, dir),
  };
}
