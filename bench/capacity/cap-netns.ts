/**
 * The benchmark's namespace `rbt-cap-<pid>` (loopback only: servers and loadgen share it, the
 * loadgen's source addresses are 127.1.x.y on lo). Leftovers of dead runs are removed at start;
 * the namespace (and every process in it) is removed at the end, on SIGINT/SIGTERM, and as a last
 * resort synchronously at process exit.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deleteNamespace, listNamespaces, run } from '../../test/support/netns.js';

export const CAP_NS_PREFIX = 'rbt-cap-';

export function capNsName(pid = process.pid): string {
  return `${CAP_NS_PREFIX}${pid}`;
}

/** Whether `pid` is a live node process (a capacity run still using its namespace). */
function liveRunner(pid: number): boolean {
  try {
    return existsSync(`/proc/${pid}`) && readFileSync(`/proc/${pid}/comm`, 'utf8').trim().startsWith('node');
  } catch {
    return false;
  }
}

/**
 * Deletes `rbt-cap-*` namespaces whose runner is gone (with every process in them) and the temp
 * dirs of dead runs (`rbt-run-<pid>-cap-*`, made by makeTempDir('cap-...')); returns what went.
 * Nothing else: other `rbt-*` objects belong to tests and helpers with their own rules.
 */
export async function removeCapLeftovers(): Promise<string[]> {
  const removed: string[] = [];
  for (const ns of await listNamespaces(CAP_NS_PREFIX)) {
    const pid = Number(ns.slice(CAP_NS_PREFIX.length));
    if (Number.isInteger(pid) && pid !== process.pid && liveRunner(pid)) continue;
    await deleteNamespace(ns);
    removed.push(`netns ${ns}`);
  }
  for (const name of readdirSync(tmpdir())) {
    const m = /^rbt-run-(\d+)-cap-/.exec(name);
    if (!m || Number(m[1]) === process.pid || liveRunner(Number(m[1]))) continue;
    rmSync(join(tmpdir(), name), { recursive: true, force: true });
    removed.push(`dir ${name}`);
  }
  return removed;
}

let exitHookFor: string | null = null;

function deleteSync(ns: string): void {
  try {
    for (const pid of execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).split(/\s+/)) {
      if (/^\d+$/.test(pid)) process.kill(Number(pid), 'SIGKILL');
    }
    execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  } catch {
    /* best effort: gone already */
  }
}

/** Creates `rbt-cap-<pid>` with lo up. */
export async function createCapNs(): Promise<string> {
  const ns = capNsName();
  await run('ip', ['netns', 'add', ns]);
  if (exitHookFor === null) {
    exitHookFor = ns;
    process.on('exit', () => {
      if (exitHookFor !== null) deleteSync(exitHookFor);
    });
  }
  await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  return ns;
}

/** Kills everything in the namespace and deletes it (idempotent). */
export async function destroyCapNs(ns: string): Promise<void> {
  await deleteNamespace(ns);
  if (exitHookFor === ns) exitHookFor = null;
}
