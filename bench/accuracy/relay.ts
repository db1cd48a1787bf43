/**
 * The userspace UDP delay relay (bench/accuracy/relay.c): building it, and its command line and
 * statistics as types. The kernel here has no netem, so delay, jitter, loss and outages between
 * benchmark peers come from this relay. See RELAY.md for the CLI and its measured precision.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Random part of a one-way delay (seconds), drawn independently per packet. */
export type RelayJitter =
  | { kind: 'none' }
  /** Exponential with this mean. */
  | { kind: 'exp'; mean: number }
  /** Uniform in [0, max). */
  | { kind: 'uniform'; max: number }
  /** |N(0, sd)|. */
  | { kind: 'normal'; sd: number };

/** One direction of the link. */
export interface RelayDirection {
  /** Fixed delay in seconds (default 0). */
  base?: number;
  /** Default none. */
  jitter?: RelayJitter;
  /** Drop probability 0..1 (default 0). */
  loss?: number;
}

export interface RelayEndpoint {
  /** Numeric IPv4 address, or IPv6 (written in brackets on the command line). */
  address: string;
  port: number;
}

/** Clients that send to `listen` talk to `upstream` through the relay. */
export interface RelayPair {
  listen: RelayEndpoint;
  upstream: RelayEndpoint;
}

export interface RelaySpec {
  pairs: RelayPair[];
  /** Client → upstream. */
  up?: RelayDirection;
  /** Upstream → client. */
  down?: RelayDirection;
  /** PRNG seed (default 1). */
  seed?: number | bigint;
  /** Link down (both directions) during [phase + k·period, phase + k·period + down) s after start. */
  outage?: { period: number; down: number; phase?: number };
  /** Where the relay writes its statistics on SIGTERM/SIGINT (also printed on stdout). */
  statsFile?: string;
  /** SCHED_FIFO priority (default 1 when permitted, best effort); 0 = normal scheduling. */
  rtPriority?: number;
  /**
   * Release each direction early by its measured sendto→xmit cost so packets leave (kernel TX
   * stamp) at their deadline both ways (default true; false: `--no-compensate`).
   */
  compensate?: boolean;
}

/** A lateness distribution in seconds (percentiles from a histogram, < 1.6 % error; max exact). */
export interface RelayLateness {
  /** Packets measured (for `wire`: those that got a kernel TX timestamp). */
  count: number;
  mean: number;
  p50: number;
  p99: number;
  max: number;
}

/** Statistics of one direction, as printed by the relay. Times in seconds. */
export interface RelayDirectionStats {
  /** Datagrams read (including those then dropped). */
  received: number;
  /** Datagrams sent on. */
  forwarded: number;
  /** Dropped by random loss. */
  lost: number;
  /** Dropped because they arrived during an outage. */
  outage: number;
  /** Dropped because the queue of held packets was full. */
  overflow: number;
  /** Dropped because larger than 2048 bytes. */
  truncated: number;
  /** Client→upstream packets whose client slot was evicted while they were held. */
  evicted: number;
  /** sendto() failures. */
  sendErrors: number;
  /** Mean applied delay (base + jitter) of the forwarded packets; 0 when none. */
  meanDelay: number;
  /** Send time (after sendto returns) − deadline; 0 when nothing was forwarded. */
  lateness: RelayLateness;
  /** Release time (just before sendto is called) − deadline: lateness without sendto's own cost. */
  release: RelayLateness;
  /**
   * Kernel TX software timestamp − deadline: when the packet really left (loopback and veth stamp
   * at xmit, where the receiver's RX timestamp is taken), without the receive path and wake-up
   * that sendto() also runs. This is the relay's contribution to path delay and asymmetry.
   */
  wire: RelayLateness;
}

/** The JSON object the relay prints (and writes to `--stats-file`) when stopped. */
export interface RelayStats {
  /** CLOCK_REALTIME (Unix seconds) of "relay ready": the origin of `--outage` times. */
  startTime: number;
  pairs: number;
  /** Upstream sockets created (distinct clients; an evicted client coming back counts again). */
  clients: number;
  /** Failures to create an upstream socket (the datagram is counted in up.sendErrors). */
  socketErrors: number;
  /** Packets still held when the relay stopped (discarded). */
  pending: number;
  /** SCHED_FIFO priority the relay got (0: normal scheduling). */
  rtPriority: number;
  /** Early-release compensation: whether on, and the final per-direction estimates in seconds. */
  compensation: { enabled: boolean; up: number; down: number };
  up: RelayDirectionStats;
  down: RelayDirectionStats;
}

const SOURCE_REL = join('bench', 'accuracy', 'relay.c');
const BINARY_REL = join('build', 'bench', 'relay');

/** The repository root: the nearest directory above this file with package.json and relay.c. */
export function repoRoot(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  // Compiled to dist/bench/accuracy/relay.js: the root is normally three levels up.
  const guess = join(here, '..', '..', '..');
  if (existsSync(join(guess, 'package.json')) && existsSync(join(guess, SOURCE_REL))) return guess;
  for (let dir = here; ;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, SOURCE_REL))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find the repository root (package.json and ${SOURCE_REL}) above ${here}`);
    dir = up;
  }
}

/**
 * Compiles relay.c into `<repo>/build/bench/relay` when the binary is missing or older than the
 * source; returns the binary's path. Throws with the compiler's output on failure.
 */
export function buildRelay(): string {
  const root = repoRoot();
  const src = join(root, SOURCE_REL);
  const bin = join(root, BINARY_REL);
  if (existsSync(bin) && statSync(bin).mtimeMs >= statSync(src).mtimeMs) return bin;
  mkdirSync(dirname(bin), { recursive: true });
  // Build beside the target and rename: concurrent builders never see a half-written binary.
  const tmp = `${bin}.${process.pid}.tmp`;
  try {
    execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-o', tmp, SOURCE_REL, '-lm'], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    renameSync(tmp, bin);
  } catch (e) {
    rmSync(tmp, { force: true });
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(`building the relay failed: ${err.stderr?.toString() || err.message}`);
  }
  return bin;
}

function seconds(what: string, v: number, max = 3600): string {
  if (!Number.isFinite(v) || v < 0 || v > max) throw new RangeError(`relay: ${what} must be in [0, ${max}] s: ${v}`);
  return String(v);
}

function endpoint(e: RelayEndpoint): string {
  if (!Number.isInteger(e.port) || e.port < 1 || e.port > 65535) throw new RangeError(`relay: bad port ${e.port}`);
  return e.address.includes(':') ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}

function direction(name: string, d: RelayDirection): string {
  const items = [`base=${seconds(`${name} base`, d.base ?? 0)}`];
  const j = d.jitter ?? { kind: 'none' };
  switch (j.kind) {
    case 'none':
      items.push('jitter=none');
      break;
    case 'exp':
      items.push(`jitter=exp:${seconds(`${name} jitter mean`, j.mean)}`);
      break;
    case 'uniform':
      items.push(`jitter=uniform:${seconds(`${name} jitter max`, j.max)}`);
      break;
    case 'normal':
      items.push(`jitter=normal:${seconds(`${name} jitter sd`, j.sd)}`);
      break;
  }
  const loss = d.loss ?? 0;
  if (!(loss >= 0 && loss <= 1)) throw new RangeError(`relay: ${name} loss must be in [0, 1]: ${loss}`);
  items.push(`loss=${loss}`);
  return items.join(',');
}

/** The relay's command-line arguments (without the program) for `spec`. Throws on bad values. */
export function relayArgs(spec: RelaySpec): string[] {
  if (spec.pairs.length === 0) throw new RangeError('relay: at least one pair is required');
  const args: string[] = [];
  for (const p of spec.pairs) args.push('--pair', `${endpoint(p.listen)}=${endpoint(p.upstream)}`);
  if (spec.up) args.push('--up', direction('up', spec.up));
  if (spec.down) args.push('--down', direction('down', spec.down));
  if (spec.seed !== undefined) {
    const s = BigInt(spec.seed);
    if (s < 0n || s >= 1n << 64n) throw new RangeError(`relay: seed must be a 64-bit unsigned integer: ${s}`);
    args.push('--seed', s.toString());
  }
  if (spec.outage) {
    const { period, down, phase } = spec.outage;
    if (!(period > 0) || !(down >= 0 && down <= period)) {
      throw new RangeError(`relay: outage needs 0 < period and 0 <= down <= period: ${period}:${down}`);
    }
    const parts = [seconds('outage period', period, 1e6), seconds('outage down', down, 1e6)];
    if (phase !== undefined) parts.push(seconds('outage phase', phase, 1e6));
    args.push('--outage', parts.join(':'));
  }
  if (spec.statsFile !== undefined) args.push('--stats-file', spec.statsFile);
  if (spec.rtPriority !== undefined) {
    if (!Number.isInteger(spec.rtPriority) || spec.rtPriority < 0 || spec.rtPriority > 99) {
      throw new RangeError(`relay: rtPriority must be an integer 0..99: ${spec.rtPriority}`);
    }
    args.push('--rt', String(spec.rtPriority));
  }
  if (spec.compensate === false) args.push('--no-compensate');
  return args;
}

/** Parses the relay's statistics: the last line of `text` that is a JSON object. */
export function parseRelayStats(text: string): RelayStats {
  const lines = text.split('\n').filter((l) => l.trim().startsWith('{'));
  const last = lines[lines.length - 1];
  if (last === undefined) throw new Error('relay: no statistics in output');
  return JSON.parse(last) as RelayStats;
}
