/**
 * Network-namespace test topology and process management for interop tests.
 *
 * Everything this module creates carries the owner's pid in its name, so a later run can tell
 * leftovers of a dead run (removed by `cleanupLeftovers`) from the live objects of a run going on
 * in parallel (left alone):
 *   - namespaces      `rbt-<pid>-<tag>`
 *   - veth interfaces `rbt_<pid base36>_<n>a|b` (15 characters at most)
 *   - temp dirs       `<tmpdir>/rbt-run-<pid>-<tag>-XXXXXX`
 * Processes are started in their own process group and, by default, without CAP_SYS_TIME in
 * their bounding set (`setpriv --bounding-set -sys_time`), so nothing a test starts can adjust
 * the host clock. On process exit every still-registered process group is killed and every
 * registered namespace deleted (synchronously), as a last resort behind the tests' finally blocks.
 */
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import {
  createWriteStream,
  existsSync,
  mkdtempSync,
  chmodSync,
  readdirSync,
  readFileSync,
  rmSync,
  type WriteStream,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const NS_PREFIX = 'rbt-';
const TMP_PREFIX = 'rbt-run-';
const OWNER = process.pid;

// ---------------------------------------------------------------------------------------------
// Small utilities

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** True when running as root (interop tests need CAP_NET_ADMIN and `ip netns`). */
export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/**
 * Polls `cond` until it returns a truthy value (returned), or throws after `timeoutMs` with
 * `what` in the message. Exceptions thrown by `cond` count as "not yet" (the last is reported).
 */
export async function waitFor<T>(
  cond: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  opts: { timeoutMs: number; intervalMs?: number; what?: string },
): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  const interval = opts.intervalMs ?? 100;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v;
    } catch (e) {
      lastErr = e;
    }
    if (Date.now() >= deadline) {
      const why = lastErr instanceof Error ? ` (last error: ${lastErr.message})` : '';
      throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${opts.what ?? 'condition'}${why}`);
    }
    await sleep(interval);
  }
}

/** A fresh temp dir (mode 0755, so daemons that drop privileges can still read it). */
export function makeTempDir(tag: string): string {
  const dir = mkdtempSync(join(tmpdir(), `${TMP_PREFIX}${OWNER}-${tag.replace(/[^A-Za-z0-9_.-]/g, '_')}-`));
  chmodSync(dir, 0o755);
  return dir;
}

export function removeTempDir(dir: string): void {
  if (!dir.startsWith(join(tmpdir(), TMP_PREFIX))) throw new Error(`refusing to remove ${dir}`);
  rmSync(dir, { recursive: true, force: true });
}

/** A stop function that stops `proc` once, then removes its temp dir (later calls do nothing). */
export function stopOnceThenRemove(proc: { stop(): Promise<unknown> }, dir: string): () => Promise<void> {
  let stopped = false;
  return async () => {
    if (stopped) return;
    stopped = true;
    try {
      await proc.stop();
    } finally {
      removeTempDir(dir);
    }
  };
}

function pidAlive(pid: number): boolean {
  return existsSync(`/proc/${pid}`) && procState(pid) !== 'Z';
}

function procState(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? null;
  } catch {
    return null;
  }
}

function procPpid(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return null;
  }
}

function allPids(): number[] {
  return readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map(Number);
}

function procCmdline(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      .split('\0')
      .filter((s) => s.length > 0);
  } catch {
    return [];
  }
}

/** Whether `pid` is a live process that looks like a test run (node) — the owner of a name. */
function ownerAlive(pid: number): boolean {
  if (!pidAlive(pid)) return false;
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim().startsWith('node');
  } catch {
    return false;
  }
}

/** `pid` and all its descendants (children first found by /proc ppid links). */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const p of allPids()) {
    const pp = procPpid(p);
    if (pp === null) continue;
    const list = children.get(pp);
    if (list) list.push(p);
    else children.set(pp, [p]);
  }
  const out: number[] = [];
  const stack = [pid];
  while (stack.length) {
    const p = stack.pop()!;
    out.push(p);
    for (const c of children.get(p) ?? []) stack.push(c);
  }
  return out;
}

function trySignal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* gone already */
  }
}

/**
 * Kills `pid`, its process group (when it leads one) and all its descendants with `signal`,
 * then SIGKILL after `graceMs`, and verifies all of them are gone (zombies count as gone).
 * Returns true when everything disappeared.
 */
export async function killTree(pid: number, signal: NodeJS.Signals = 'SIGTERM', graceMs = 3000): Promise<boolean> {
  const tree = processTree(pid);
  trySignal(-pid, signal);
  for (const p of tree) trySignal(p, signal);
  const gone = (): boolean => tree.every((p) => !pidAlive(p));
  const deadline = Date.now() + graceMs;
  while (!gone() && Date.now() < deadline) await sleep(50);
  if (gone()) return true;
  trySignal(-pid, 'SIGKILL');
  for (const p of processTree(pid).concat(tree)) trySignal(p, 'SIGKILL');
  const deadline2 = Date.now() + 3000;
  while (!gone() && Date.now() < deadline2) await sleep(50);
  return gone();
}

/** Runs the cleanups in reverse order, all of them, rethrowing the first failure. */
export async function unwind(cleanups: Array<() => Promise<void>>): Promise<void> {
  let first: unknown;
  for (const c of cleanups.reverse()) {
    try {
      await c();
    } catch (e) {
      first ??= e;
    }
  }
  if (first !== undefined) throw first;
}

// ---------------------------------------------------------------------------------------------
// One-shot commands

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  input?: string;
  /** Throw when the command exits non-zero or times out (default true). */
  check?: boolean;
}

/** Runs a command to completion (own process group; killed as a tree on timeout). */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      detached: true,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (d: Buffer) => out.push(d));
    child.stderr!.on('data', (d: Buffer) => err.push(d));
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid) void killTree(child.pid, 'SIGKILL', 0);
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`${cmd}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const r: RunResult = {
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      };
      const line = [cmd, ...args].join(' ');
      if (timedOut && opts.check !== false) {
        reject(new Error(`timed out after ${timeoutMs} ms: ${line}\n${r.stdout}${r.stderr}`));
      } else if (opts.check !== false && code !== 0) {
        reject(new Error(`exit ${code ?? signal}: ${line}\n${r.stdout}${r.stderr}`));
      } else resolve(r);
    });
  });
}

/** Runs a command inside namespace `ns` (`ip netns exec`), CAP_SYS_TIME dropped unless told. */
export function runInNs(
  ns: string,
  cmd: string,
  args: string[],
  opts: RunOptions & { dropSysTime?: boolean } = {},
): Promise<RunResult> {
  const argv = nsArgv(ns, cmd, args, opts.dropSysTime ?? true);
  return run(argv[0]!, argv.slice(1), opts);
}

function nsArgv(ns: string | null, cmd: string, args: string[], dropSysTime: boolean): string[] {
  const inner = dropSysTime ? ['setpriv', '--bounding-set', '-sys_time', '--', cmd, ...args] : [cmd, ...args];
  return ns === null ? inner : ['ip', 'netns', 'exec', ns, ...inner];
}

// ---------------------------------------------------------------------------------------------
// Long-running processes

export interface StartOptions {
  /** Label used in messages (default: the command's basename). */
  name?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Also append all output to this file. */
  logFile?: string;
  /** Resolve only once the combined output matches; throw (and kill) if it exits first. */
  readyPattern?: RegExp;
  /** Default 15 s. */
  readyTimeoutMs?: number;
  /** Start without CAP_SYS_TIME in the bounding set (default true): it cannot touch the clock. */
  dropSysTime?: boolean;
}

const liveProcesses = new Set<ManagedProcess>();
const MAX_OUTPUT = 8 * 1024 * 1024;

/** A process started by `startProcess`/`startInNs`/`startDaemon`, with its output kept. */
export class ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly argv: string[];
  exitCode: number | null = null;
  exitSignal: NodeJS.Signals | null = null;
  exited = false;
  private buf = '';
  private readonly log: WriteStream | null;
  private readonly exitPromise: Promise<void>;
  private readonly listeners = new Set<() => void>();

  constructor(child: ChildProcess, argv: string[], name: string, logFile?: string) {
    if (child.pid === undefined) throw new Error(`${name}: spawn failed`);
    this.pid = child.pid;
    this.argv = argv;
    this.name = name;
    this.log = logFile ? createWriteStream(logFile, { flags: 'a' }) : null;
    const onData = (d: Buffer): void => {
      const s = d.toString('utf8');
      this.buf += s;
      if (this.buf.length > MAX_OUTPUT) this.buf = this.buf.slice(this.buf.length - MAX_OUTPUT / 2);
      this.log?.write(s);
      for (const l of this.listeners) l();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    this.exitPromise = new Promise((resolve) => {
      child.on('close', (code, signal) => {
        this.exited = true;
        this.exitCode = code;
        this.exitSignal = signal;
        liveProcesses.delete(this);
        this.log?.end();
        for (const l of this.listeners) l();
        resolve();
      });
    });
    liveProcesses.add(this);
  }

  /** Everything the process printed so far (stdout and stderr interleaved). */
  output(): string {
    return this.buf;
  }

  /** The last `lines` lines of output, for failure messages. */
  tail(lines = 30): string {
    return this.buf.split('\n').slice(-lines).join('\n');
  }

  /** Waits until the output matches `pattern`; throws on timeout or if the process exits. */
  waitForOutput(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const m = this.buf.match(pattern);
        if (m) {
          done();
          resolve(m);
          return true;
        }
        if (this.exited) {
          done();
          reject(
            new Error(
              `${this.name} exited (${this.exitCode ?? this.exitSignal}) before printing ${pattern}:\n${this.tail()}`,
            ),
          );
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.name}: no ${pattern} within ${timeoutMs} ms:\n${this.tail()}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.listeners.delete(listener);
      };
      const listener = (): void => void check();
      this.listeners.add(listener);
      check();
    });
  }

  /** Resolves when the process has exited (and its streams are closed). */
  async waitForExit(timeoutMs = 10_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    let timer: NodeJS.Timeout | undefined;
    const t = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${this.name} did not exit within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([this.exitPromise, t]);
    } finally {
      clearTimeout(timer);
    }
    return { code: this.exitCode, signal: this.exitSignal };
  }

  /**
   * Stops the process and its whole tree: `signal` (default SIGTERM) to the group and every
   * descendant, SIGKILL after `graceMs`, then waits for the exit and verifies nothing is left.
   * Idempotent. Throws if something survived SIGKILL.
   */
  async stop(opts: { signal?: NodeJS.Signals; graceMs?: number } = {}): Promise<void> {
    const tree = this.exited ? [] : processTree(this.pid);
    if (!this.exited) {
      const ok = await killTree(this.pid, opts.signal ?? 'SIGTERM', opts.graceMs ?? 3000);
      if (!ok) throw new Error(`${this.name} (pid ${this.pid}) survived SIGKILL`);
    }
    // Also catch descendants that left the group before the leader died.
    for (const p of tree) if (pidAlive(p)) trySignal(p, 'SIGKILL');
    await this.waitForExit(5000);
    const left = tree.filter((p) => pidAlive(p));
    if (left.length) throw new Error(`${this.name}: processes ${left.join(',')} still alive after stop`);
  }

  /** Sends a signal to the process group without waiting. */
  signal(sig: NodeJS.Signals): void {
    trySignal(-this.pid, sig);
  }
}

/** Starts a long-running process in namespace `ns` (null: the test's own namespace). */
export async function startInNs(
  ns: string | null,
  cmd: string,
  args: string[],
  opts: StartOptions = {},
): Promise<ManagedProcess> {
  const argv = nsArgv(ns, cmd, args, opts.dropSysTime ?? true);
  const child = spawn(argv[0]!, argv.slice(1), {
    env: opts.env ?? process.env,
    cwd: opts.cwd,
    detached: true, // own process group: stop() kills the whole group
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
  const name = opts.name ?? `${cmd.split('/').pop()}${ns ? `@${ns}` : ''}`;
  if (child.pid === undefined) throw new Error(`${name}: cannot start ${cmd}: ${(await spawnError).message}`);
  const proc = new ManagedProcess(child, argv, name, opts.logFile);
  if (opts.readyPattern) {
    try {
      await proc.waitForOutput(opts.readyPattern, opts.readyTimeoutMs ?? 15_000);
    } catch (e) {
      await proc.stop({ signal: 'SIGKILL' }).catch(() => undefined);
      throw e;
    }
  }
  return proc;
}

/** `startInNs(ns, argv[0], argv.slice(1), opts)`: for daemons given as a full command line. */
export function startDaemon(ns: string | null, argv: string[], opts: StartOptions = {}): Promise<ManagedProcess> {
  if (argv.length === 0) throw new Error('startDaemon: empty argv');
  return startInNs(ns, argv[0]!, argv.slice(1), opts);
}

// ---------------------------------------------------------------------------------------------
// Namespaces and links

const liveNamespaces = new Set<string>();
let vethCounter = 0;

export function nsName(tag: string): string {
  if (!/^[A-Za-z0-9_.-]{1,40}$/.test(tag)) throw new Error(`bad namespace tag ${tag}`);
  return `${NS_PREFIX}${OWNER}-${tag}`;
}

export async function listNamespaces(prefix = NS_PREFIX): Promise<string[]> {
  const r = await run('ip', ['netns', 'list']);
  return r.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n.startsWith(prefix));
}

/** Creates namespace `rbt-<pid>-<tag>` with lo up; returns its name. */
export async function createNamespace(tag: string): Promise<string> {
  const name = nsName(tag);
  await run('ip', ['netns', 'add', name]);
  liveNamespaces.add(name);
  await run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  return name;
}

/** Pids of all processes inside a namespace. */
export async function nsPids(ns: string): Promise<number[]> {
  const r = await run('ip', ['netns', 'pids', ns], { check: false });
  return r.stdout
    .split(/\s+/)
    .filter((s) => /^\d+$/.test(s))
    .map(Number);
}

/** Kills every process in the namespace (verified) and deletes it. Idempotent. */
export async function deleteNamespace(ns: string): Promise<void> {
  const existing = await listNamespaces(ns);
  if (existing.includes(ns)) {
    for (const pid of await nsPids(ns)) await killTree(pid, 'SIGKILL', 2000);
    const left = await nsPids(ns);
    if (left.length) throw new Error(`namespace ${ns}: processes ${left.join(',')} survived SIGKILL`);
    await run('ip', ['netns', 'del', ns]);
  }
  liveNamespaces.delete(ns);
}

export interface VethLink {
  nsA: string;
  ifA: string;
  addrA: string;
  nsB: string;
  ifB: string;
  addrB: string;
  prefixLen: number;
}

/**
 * Connects two namespaces with a veth pair: `addrA/prefixLen` on A's end, `addrB/prefixLen` on
 * B's end, both up. The pair disappears when either namespace is deleted.
 */
export async function connectNamespaces(
  nsA: string,
  addrA: string,
  nsB: string,
  addrB: string,
  opts: { prefixLen?: number } = {},
): Promise<VethLink> {
  const prefixLen = opts.prefixLen ?? 24;
  const base = `rbt_${OWNER.toString(36)}_${(vethCounter++).toString(36)}`;
  const ifA = `${base}a`;
  const ifB = `${base}b`;
  if (ifA.length > 15) throw new Error(`interface name too long: ${ifA}`);
  await run('ip', ['link', 'add', ifA, 'type', 'veth', 'peer', 'name', ifB]);
  try {
    await run('ip', ['link', 'set', ifA, 'netns', nsA]);
    await run('ip', ['link', 'set', ifB, 'netns', nsB]);
  } catch (e) {
    await run('ip', ['link', 'del', ifA], { check: false });
    throw e;
  }
  await run('ip', ['-n', nsA, 'addr', 'add', `${addrA}/${prefixLen}`, 'dev', ifA]);
  await run('ip', ['-n', nsB, 'addr', 'add', `${addrB}/${prefixLen}`, 'dev', ifB]);
  await run('ip', ['-n', nsA, 'link', 'set', ifA, 'up']);
  await run('ip', ['-n', nsB, 'link', 'set', ifB, 'up']);
  return { nsA, ifA, addrA, nsB, ifB, addrB, prefixLen };
}

/** Adds a route inside `ns` (for topologies with a relay namespace in the middle). */
export async function addRoute(ns: string, dest: string, via: string): Promise<void> {
  await run('ip', ['-n', ns, 'route', 'add', dest, 'via', via]);
}

/** Enables IPv4 forwarding inside `ns` (a router/relay namespace). */
export async function enableForwarding(ns: string): Promise<void> {
  await run('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
}

export interface NetnsPair {
  /** Namespace names. */
  server: string;
  client: string;
  serverAddr: string;
  clientAddr: string;
  serverIf: string;
  clientIf: string;
  link: VethLink;
  /** Deletes both namespaces and every process in them. Idempotent. */
  destroy(): Promise<void>;
}

/**
 * Two namespaces joined by a veth pair: `rbt-<pid>-<tag>-s` with 10.77.<subnet>.1/24 and
 * `rbt-<pid>-<tag>-c` with 10.77.<subnet>.2/24. Each namespace has its own network stack, so
 * the same subnet may be used by several pairs at once.
 */
export async function createNetnsPair(opts: { tag?: string; subnet?: number } = {}): Promise<NetnsPair> {
  const tag = opts.tag ?? 'p';
  const subnet = opts.subnet ?? 1;
  const serverAddr = `10.77.${subnet}.1`;
  const clientAddr = `10.77.${subnet}.2`;
  const made: string[] = [];
  const destroy = async (): Promise<void> => {
    const errors: unknown[] = [];
    for (const ns of made) await deleteNamespace(ns).catch((e: unknown) => errors.push(e));
    if (errors.length) throw errors[0];
  };
  try {
    made.push(await createNamespace(`${tag}-s`));
    made.push(await createNamespace(`${tag}-c`));
    const link = await connectNamespaces(made[0]!, serverAddr, made[1]!, clientAddr);
    return {
      server: made[0]!,
      client: made[1]!,
      serverAddr,
      clientAddr,
      serverIf: link.ifA,
      clientIf: link.ifB,
      link,
      destroy,
    };
  } catch (e) {
    await destroy().catch(() => undefined);
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Leftovers and last-resort cleanup

function ownerOfName(rest: string): number | null {
  // `<pid>-tag` (nsName, makeTempDir) or `cap-<pid>` (bench/capacity's namespace).
  const m = /^(\d+)-/.exec(rest) ?? /^cap-(\d+)$/.exec(rest);
  return m ? Number(m[1]) : null;
}

/**
 * Removes what earlier runs left behind: namespaces named `<prefix>*` (with every process in
 * them), veth interfaces `rbt_*` in this namespace, processes whose command line points into a
 * leftover temp dir, and those temp dirs. Objects owned by another live test process are kept;
 * this process's own objects are removed too (call it before creating anything).
 * Returns what was removed.
 */
export async function cleanupLeftovers(prefix = NS_PREFIX): Promise<string[]> {
  const removed: string[] = [];
  const isStale = (owner: number | null): boolean => owner === null || owner === OWNER || !ownerAlive(owner);

  // Processes first (a process keeps a deleted namespace alive and may hold ports).
  const tmpRoot = join(tmpdir(), TMP_PREFIX);
  for (const pid of allPids()) {
    if (pid === OWNER) continue;
    const cmd = procCmdline(pid);
    const hit = cmd.find((a) => a.includes(tmpRoot));
    if (!hit) continue;
    const owner = ownerOfName(hit.slice(hit.indexOf(tmpRoot) + tmpRoot.length));
    if (owner !== null && owner !== OWNER && ownerAlive(owner)) continue;
    if (await killTree(pid, 'SIGKILL', 2000)) removed.push(`process ${pid} (${cmd.slice(0, 3).join(' ')})`);
  }

  for (const ns of await listNamespaces(prefix)) {
    if (!isStale(ownerOfName(ns.slice(prefix.length)))) continue;
    await deleteNamespace(ns);
    removed.push(`netns ${ns}`);
  }

  const links = await run('ip', ['-o', 'link', 'show'], { check: false });
  for (const m of links.stdout.matchAll(/^\d+:\s+(rbt_([0-9a-z]+)_[0-9a-z]+[ab])[@:]/gm)) {
    const owner = parseInt(m[2]!, 36);
    if (!isStale(owner)) continue;
    const r = await run('ip', ['link', 'del', m[1]!], { check: false });
    if (r.code === 0) removed.push(`link ${m[1]}`);
  }

  for (const name of readdirSync(tmpdir())) {
    if (!name.startsWith(TMP_PREFIX)) continue;
    if (!isStale(ownerOfName(name.slice(TMP_PREFIX.length)))) continue;
    if (OWNER === ownerOfName(name.slice(TMP_PREFIX.length))) continue; // ours may be in use
    rmSync(join(tmpdir(), name), { recursive: true, force: true });
    removed.push(`dir ${name}`);
  }
  return removed;
}

/** Prefix of every temp dir this process makes (daemon command lines contain it). */
export const OWN_TEMP_PREFIX = join(tmpdir(), `${TMP_PREFIX}${OWNER}-`);

/** Pids of live processes (zombies excluded) whose command line satisfies `match`. */
export function findProcesses(match: (cmdline: string[]) => boolean): number[] {
  return allPids().filter((p) => p !== OWNER && pidAlive(p) && match(procCmdline(p)));
}

/** Live processes started from this process's temp dirs (daemons with a conf there). */
export function ownStrayProcesses(): number[] {
  return findProcesses((cmd) => cmd.some((a) => a.includes(OWN_TEMP_PREFIX)));
}

/** Names of live namespaces this process created and has not deleted (for assertions). */
export function ownNamespaces(): string[] {
  return [...liveNamespaces];
}

/** Processes started through this module that are still running (for assertions). */
export function liveManagedProcesses(): ManagedProcess[] {
  return [...liveProcesses];
}

/** An interop file's `after` check: every namespace it created is gone, every process stopped. */
export function assertNothingLeft(): void {
  assert.deepEqual(ownNamespaces(), []);
  assert.deepEqual(
    liveManagedProcesses().map((p) => `${p.name} ${p.pid}`),
    [],
  );
}

process.on('exit', () => {
  for (const p of liveProcesses) {
    trySignal(-p.pid, 'SIGKILL');
    trySignal(p.pid, 'SIGKILL');
  }
  for (const ns of liveNamespaces) {
    try {
      for (const pid of execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).split(/\s+/)) {
        if (/^\d+$/.test(pid)) trySignal(Number(pid), 'SIGKILL');
      }
      execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    } catch {
      /* best effort */
    }
  }
});
