/**
 * Served-time bias of a basic-mode answer: chronyd -x and rubidiumd -x, each with `local stratum
 * 1` and no source (their clock is the host clock), are probed alternately on loopback by the
 * kernel-timestamped probe (test/support/probe.ts: 3 requests, the minimum-delay answer). Neither
 * daemon corrects anything, so the offset the probe reads is the server's own bias: mostly half
 * the time between the T3 it writes and the packet leaving (docs/discipline.md, "Serving").
 *
 *   node dist/bench/served-bias/run.js [--rounds N] [--json FILE]
 *
 * Prints per daemon: mean, 10/50/90th percentile of the offset and the median delay, and the
 * ratio of the mean |offset| rubidium/chronyd. Run it alone (under the benchmark lock).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { probeServer } from '../../test/support/probe.js';
import {
  makeTempDir,
  removeTempDir,
  sleep,
  startDaemon,
  unwind,
  type ManagedProcess,
} from '../../test/support/netns.js';
import { RUBIDIUMD } from '../accuracy/daemons.js';

type Name = 'chronyd' | 'rubidiumd';

interface Figures {
  n: number;
  meanUs: number;
  p10Us: number;
  p50Us: number;
  p90Us: number;
  delayP50Us: number;
}

function parseArgs(argv: string[]): { rounds: number; json?: string } {
  let rounds = 150;
  let json: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--rounds' && Number(argv[i + 1]) > 0) rounds = Math.floor(Number(argv[++i]));
    else if (a === '--json' && argv[i + 1]) json = argv[++i];
    else {
      process.stderr.write(`served-bias: bad argument '${a}'\nusage: run.js [--rounds N] [--json FILE]\n`);
      process.exit(2);
    }
  }
  return json === undefined ? { rounds } : { rounds, json };
}

const quantile = (sorted: number[], q: number): number => sorted[Math.floor(q * (sorted.length - 1))]!;

export function figures(samples: Array<{ offset: number; delay: number }>): Figures {
  const o = samples.map((s) => s.offset * 1e6).sort((a, b) => a - b);
  const d = samples.map((s) => s.delay * 1e6).sort((a, b) => a - b);
  return {
    n: o.length,
    meanUs: o.reduce((a, b) => a + b, 0) / o.length,
    p10Us: quantile(o, 0.1),
    p50Us: quantile(o, 0.5),
    p90Us: quantile(o, 0.9),
    delayP50Us: quantile(d, 0.5),
  };
}

async function main(): Promise<void> {
  const { rounds, json } = parseArgs(process.argv.slice(2));
  const base = 20000 + Math.floor(Math.random() * 20000);
  const ports: Record<Name, number> = { chronyd: base, rubidiumd: base + 1 };
  const dir = makeTempDir('served-bias');
  const cleanups: Array<() => Promise<void>> = [async () => removeTempDir(dir)];
  try {
    const conf = (name: Name): string => {
      const f = join(dir, `${name}.conf`);
      writeFileSync(
        f,
        [
          'local stratum 1',
          'allow 127.0.0.1',
          `port ${ports[name]}`,
          'cmdport 0',
          `pidfile ${join(dir, `${name}.pid`)}`,
          ...(name === 'rubidiumd' ? [`bindcmdaddress ${join(dir, 'rubidiumd.sock')}`] : []),
        ].join('\n') + '\n',
      );
      return f;
    };
    const procs: ManagedProcess[] = [];
    for (const [name, argv] of [
      ['chronyd', ['chronyd', '-x', '-d', '-f', conf('chronyd')]],
      ['rubidiumd', [process.execPath, RUBIDIUMD, '-x', '-d', '-f', conf('rubidiumd')]],
    ] as const) {
      const p = await startDaemon(null, [...argv], { name, logFile: join(dir, `${name}.log`) });
      cleanups.push(async () => {
        await p.stop();
      });
      procs.push(p);
    }
    // Both answer once they are up (LI=0, stratum 1 from `local`).
    for (const name of ['chronyd', 'rubidiumd'] as const) {
      const deadline = Date.now() + 15_000;
      for (;;) {
        const r = await probeServer('127.0.0.1', ports[name], { count: 1, timeoutMs: 300 });
        if (r.best && r.best.stratum === 1) break;
        if (Date.now() > deadline) throw new Error(`${name} does not answer on port ${ports[name]}`);
        await sleep(200);
      }
    }
    const got: Record<Name, Array<{ offset: number; delay: number }>> = { chronyd: [], rubidiumd: [] };
    for (let i = 0; i < rounds; i++) {
      // Alternate who goes first, so neither always finds the CPU warm.
      const order: Name[] = i % 2 ? ['rubidiumd', 'chronyd'] : ['chronyd', 'rubidiumd'];
      for (const name of order) {
        const r = await probeServer('127.0.0.1', ports[name], { count: 3, intervalMs: 20, timeoutMs: 300 });
        if (r.best) got[name].push({ offset: r.best.offset, delay: r.best.delay });
      }
      await sleep(200);
    }
    const f = { chronyd: figures(got.chronyd), rubidiumd: figures(got.rubidiumd) };
    const line = (n: Name): string =>
      `| ${n.padEnd(9)} | ${String(f[n].n).padStart(6)} | ${f[n].meanUs.toFixed(2).padStart(9)} | ${f[n].p10Us
        .toFixed(2)
        .padStart(7)} | ${f[n].p50Us.toFixed(2).padStart(7)} | ${f[n].p90Us.toFixed(2).padStart(7)} | ${f[n].delayP50Us
        .toFixed(1)
        .padStart(15)} |`;
    const ratio = Math.abs(f.rubidiumd.meanUs) / Math.abs(f.chronyd.meanUs);
    process.stdout.write(
      [
        `served-time bias on loopback, ${rounds} rounds (probe: kernel timestamps, best of 3)`,
        '| daemon    | probes | mean (µs) | p10     | p50     | p90     | delay p50 (µs)  |',
        '| --------- | -----: | --------: | ------: | ------: | ------: | --------------: |',
        line('chronyd'),
        line('rubidiumd'),
        `|mean| rubidium/chronyd: ${ratio.toFixed(2)}`,
        '',
      ].join('\n'),
    );
    if (json)
      writeFileSync(json, JSON.stringify({ benchmark: 'bench/served-bias', rounds, figures: f, ratio }, null, 2));
    if (procs.some((p) => p.exited)) throw new Error('a daemon exited during the run');
  } finally {
    await unwind(cleanups);
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`served-bias: ${(e as Error).message}\n`);
  process.exit(1);
});
