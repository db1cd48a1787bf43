/**
 * Long-running served-time probe for the accuracy benchmark, started inside the clients'
 * namespace (`ip netns exec NS node dist/bench/accuracy/probe-loop.js ...`):
 *
 *   probe-loop.js --target NAME=ADDR:PORT[/EVERY] [--target ...] [--interval MS] [--count N]
 *                 [--gap MS] [--timeout MS]
 *
 * Every `interval` ms (default 1000, on a fixed cadence) it probes each target (every EVERY-th
 * round for targets given with /EVERY) with `count` requests `gap` ms apart (kernel-timestamped,
 * test/support/probe.ts), keeps the minimum-delay answer and prints one JSON line:
 *   {"daemon":NAME,"t":"<T4 ns>","offset":S,"delay":S,"answered":N,"leap":LI,"stratum":N}
 * (offset and delay null when nothing answered; t is then the host time of the attempt).
 * The order of the targets alternates every round, so no daemon is always probed first.
 * Prints `probe-loop ready (kernel|daemon timestamps)` at start; exits 0 on SIGTERM/SIGINT.
 */
import { probeServer } from '../../test/support/probe.js';
import { realtimeNow } from '../../src/io/realtime.js';
import { native } from '../../src/io/native.js';

interface Target {
  name: string;
  address: string;
  port: number;
  every: number;
}

function usage(msg: string): never {
  process.stderr.write(
    `probe-loop: ${msg}\nusage: probe-loop.js --target NAME=ADDR:PORT[/EVERY] ... [--interval MS] [--count N] [--gap MS] [--timeout MS]\n`,
  );
  process.exit(1);
}

function parseArgs(argv: string[]): {
  targets: Target[];
  interval: number;
  count: number;
  gap: number;
  timeout: number;
} {
  const targets: Target[] = [];
  let interval = 1000;
  let count = 3;
  let gap = 20;
  let timeout = 300;
  const num = (v: string | undefined, what: string): number => {
    const x = Number(v);
    if (v === undefined || !Number.isFinite(x) || x < 0) usage(`bad ${what} '${v}'`);
    return x;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const [flag, inline] =
      a.includes('=') && a.startsWith('--')
        ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]
        : [a, undefined];
    const val = (): string | undefined => inline ?? argv[++i];
    switch (flag) {
      case '--target': {
        const v = val() ?? usage('--target needs a value');
        const m = /^([A-Za-z0-9_.-]+)=([0-9a-fA-F.:]+):(\d+)(?:\/(\d+))?$/.exec(v);
        if (!m) usage(`bad --target '${v}' (expected NAME=ADDR:PORT[/EVERY])`);
        targets.push({ name: m[1]!, address: m[2]!, port: Number(m[3]), every: m[4] ? Math.max(1, Number(m[4])) : 1 });
        break;
      }
      case '--interval':
        interval = num(val(), 'interval');
        break;
      case '--count':
        count = Math.max(1, Math.round(num(val(), 'count')));
        break;
      case '--gap':
        gap = num(val(), 'gap');
        break;
      case '--timeout':
        timeout = num(val(), 'timeout');
        break;
      default:
        usage(`unknown argument '${a}'`);
    }
  }
  if (targets.length === 0) usage('no --target');
  return { targets, interval, count, gap, timeout };
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  let stopping = false;
  let wake: (() => void) | null = null;
  const stop = (): void => {
    stopping = true;
    wake?.();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdout.write(`probe-loop ready (${native ? 'kernel' : 'daemon'} timestamps)\n`);
  const start = Date.now();
  const silent = new Set<string>();
  for (let round = 0; !stopping; round++) {
    const due = opts.targets.filter((t) => round % t.every === 0);
    if (round % 2 === 1) due.reverse();
    for (const t of due) {
      if (stopping) break;
      const attempt = realtimeNow();
      try {
        // A target that did not answer last time (not up yet, or the link is down) gets a
        // single request, so it does not stretch the round by count × timeout.
        const r = await probeServer(t.address, t.port, {
          count: silent.has(t.name) ? 1 : opts.count,
          intervalMs: opts.gap,
          timeoutMs: opts.timeout,
        });
        const line = r.best
          ? {
              daemon: t.name,
              t: r.best.t4,
              offset: r.best.offset,
              delay: r.best.delay,
              answered: r.answered,
              leap: r.best.leap,
              stratum: r.best.stratum,
            }
          : { daemon: t.name, t: attempt.toString(), offset: null, delay: null, answered: 0 };
        if (r.best) silent.delete(t.name);
        else silent.add(t.name);
        process.stdout.write(JSON.stringify(line) + '\n');
      } catch (e) {
        process.stderr.write(`probe-loop: ${t.name}: ${(e as Error).message}\n`);
      }
    }
    // Fixed cadence: the next round starts at start + (round+1)·interval (skipping missed slots).
    const now = Date.now();
    let next = start + (round + 1) * opts.interval;
    if (next <= now) {
      round = Math.floor((now - start) / opts.interval);
      next = start + (round + 1) * opts.interval;
    }
    if (stopping) break;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, next - now);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    wake = null;
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`probe-loop: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
