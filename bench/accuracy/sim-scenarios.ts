/**
 * The real-network accuracy scenarios (scenarios.ts) rebuilt in the simulator, for one daemon:
 * ours. Same paths (base + jitter per direction, loss, outages), same truth (offset, frequency,
 * wander), same source options and makestep. The client's clock starts where a bench client
 * starts relative to its references: −offset and −ppm of the truth.
 *
 *   node dist/bench/accuracy/sim-scenarios.js [--scenario a,b] [--duration S] [--warmup S] [--seeds N]
 *                                             [--polltarget N]
 *
 * prints, per scenario, the convergence time (last time |error| ≥ 100 µs, "never" if at the end;
 * median, 90th percentile and slowest over the seeds)
 * and the mean, RMS and max of the error after the warm-up, averaged over the seeds. The real
 * bench's errors include its probe and relay noise; these do not.
 */
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';
import { runSimulation, type NodeResult, type Scenario as SimScenario } from '../../src/sim/simulator.js';
import type { PathSpec as SimPath } from '../../src/sim/network.js';
import type { DisciplineOptions } from '../../src/discipline/discipline.js';
import { SCENARIOS, type PathSpec, type Scenario } from './scenarios.js';

const CLIENT = '10.77.0.2';
const refAddress = (i: number): string => `10.77.0.${11 + i}`;
/** Convergence: |error| below this from some time on (as the real bench). */
export const CONVERGED = 100e-6;

function simPath(p: PathSpec, down?: [number, number][]): SimPath {
  const j = p.jitter;
  const jitter: SimPath['jitter'] =
    j.kind === 'exp'
      ? { dist: 'exponential', mean: j.mean }
      : j.kind === 'uniform'
        ? { dist: 'uniform', max: j.max }
        : j.kind === 'normal'
          ? { dist: 'normal', sd: j.sd }
          : { dist: 'none' };
  return { baseDelay: p.base, jitter, ...(p.loss ? { loss: p.loss } : {}), ...(down ? { down } : {}) };
}

/** Source options of `server … iburst minpoll 2 maxpoll 4` as the engine takes them. */
function sourceOptions(line: string): Record<string, unknown> {
  const w = line.split(/\s+/);
  const o: Record<string, unknown> = {};
  for (let i = 0; i < w.length; i++) {
    if (w[i] === 'iburst') o.iburst = true;
    else if (w[i] === 'minpoll' || w[i] === 'maxpoll') o[w[i]!] = Number(w[++i]);
  }
  return o;
}

function discipline(lines: readonly string[]): DisciplineOptions {
  // The bench's daemons run with -x: a software clock that takes each correction at once.
  const d: DisciplineOptions = { correction: 'instant' };
  for (const l of lines) {
    const w = l.split(/\s+/);
    if (w[0] === 'makestep') d.makestep = { threshold: Number(w[1]), limit: Number(w[2]) };
  }
  return d;
}

/** Outage windows (s since the clients start) of the relay's `period`/`down` schedule. */
export function outageWindows(s: Scenario, duration: number): [number, number][] | undefined {
  const o = s.outage;
  if (!o) return undefined;
  const phase = o.phase ?? o.period - o.down;
  const w: [number, number][] = [];
  for (let t = phase; t < duration; t += o.period) w.push([t, t + o.down]);
  return w;
}

/** `polltarget`: overrides the source option, for what-ifs (default: the engine's). */
export function buildSimScenario(s: Scenario, seed: number, duration: number, polltarget?: number): SimScenario {
  const links: Record<string, SimPath> = {};
  const down = outageWindows(s, duration);
  const nodes: SimScenario['nodes'] = [];
  for (let i = 0; i < s.references; i++) {
    const a = refAddress(i);
    links[`${CLIENT}->${a}`] = simPath(s.up, down);
    links[`${a}->${CLIENT}`] = simPath(s.down, down);
    const lie =
      s.liar && s.liar.index === i ? { lie: { offset: s.liar.offset, at: s.liar.atFraction * duration } } : {};
    nodes.push({ address: a, local: { stratum: 1 }, ...lie });
  }
  nodes.push({
    address: CLIENT,
    oscillator: { initialOffset: -s.truth.offset, freqPpm: -s.truth.ppm, wander: s.truth.wander ?? 0 },
    sources: Array.from({ length: s.references }, (_, i) => ({
      server: refAddress(i),
      options: { ...sourceOptions(s.serverOptions), ...(polltarget === undefined ? {} : { polltarget }) },
    })),
    discipline: discipline(s.commonLines),
    serve: false,
  });
  return { seed, duration, nodes, links, sampleInterval: 0.5 };
}

export interface SimFigures {
  converged: number | null;
  mean: number;
  rms: number;
  max: number;
}

export function figures(c: Pick<NodeResult, 'times' | 'offsets'>, warmup: number): SimFigures {
  let converged: number | null = 0;
  let sum = 0;
  let sum2 = 0;
  let max = 0;
  let n = 0;
  for (let i = 0; i < c.times.length; i++) {
    const e = c.offsets[i]!;
    if (Math.abs(e) >= CONVERGED) converged = i + 1 < c.times.length ? c.times[i + 1]! : null;
    if (c.times[i]! < warmup) continue;
    sum += e;
    sum2 += e * e;
    max = Math.max(max, Math.abs(e));
    n++;
  }
  return { converged, mean: sum / n, rms: Math.sqrt(sum2 / n), max };
}

export function runSimScenario(
  s: Scenario,
  seed: number,
  duration: number,
  warmup: number,
  polltarget?: number,
): SimFigures {
  const r = runSimulation(buildSimScenario(s, seed, duration, polltarget));
  return figures(r.nodes[CLIENT]!, warmup);
}

function main(argv: string[]): void {
  const arg = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const names = arg('--scenario')?.split(',');
  const duration = Number(arg('--duration') ?? 300);
  const warmup = Number(arg('--warmup') ?? duration / 3);
  const seeds = Number(arg('--seeds') ?? 10);
  const pt = arg('--polltarget');
  const polltarget = pt === undefined ? undefined : Number(pt);
  const us = (v: number): string => (v * 1e6).toFixed(1).padStart(8);
  console.log(
    'scenario       conv(s) median    p90    max  never   mean(µs)  RMS(µs)  max(µs)   (simulator, ' +
      seeds +
      ' seeds' +
      (polltarget === undefined ? ')' : `, polltarget ${polltarget})`),
  );
  for (const s of SCENARIOS.filter((x) => !names || names.includes(x.name))) {
    const f: SimFigures[] = [];
    for (let seed = 1; seed <= seeds; seed++) f.push(runSimScenario(s, seed, duration, warmup, polltarget));
    const conv = f
      .map((x) => x.converged)
      .filter((x): x is number => x !== null)
      .sort((a, b) => a - b);
    const never = f.length - conv.length;
    const avg = (k: keyof SimFigures): number => f.reduce((a, x) => a + (x[k] as number), 0) / f.length;
    const rms = Math.sqrt(f.reduce((a, x) => a + x.rms * x.rms, 0) / f.length);
    // Runs that never converged count as the slowest.
    const q = (p: number): string => {
      const i = Math.min(f.length - 1, Math.floor(p * f.length));
      return i < conv.length ? conv[i]!.toFixed(1) : 'never';
    };
    console.log(
      `${s.name.padEnd(14)} ${q(0.5).padStart(13)} ${q(0.9).padStart(6)} ${q(1).padStart(6)} ${String(never).padStart(6)} ` +
        `${us(avg('mean'))} ${us(rms)} ${us(avg('max'))}`,
    );
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main(process.argv.slice(2));
