/**
 * Scenarios of the real-network accuracy benchmark (bench/README.md has the table).
 *
 * A scenario fixes the truth (the injected error every good reference serves: host time + err(t),
 * see src/clock/injected-error.ts), the paths between the clients and the references (the relay's
 * per-direction delay, jitter and loss, and outages), the number of references and an optional
 * liar, and the configuration lines both clients get, identically.
 */
import type { InjectedErrorSpec } from '../../src/clock/injected-error.js';

export type Jitter =
  { kind: 'none' } | { kind: 'exp'; mean: number } | { kind: 'uniform'; max: number } | { kind: 'normal'; sd: number };

/** One direction of the relay: base one-way delay (s), jitter added on top, loss probability. */
export interface PathSpec {
  base: number;
  jitter: Jitter;
  loss: number;
}

export interface Outage {
  /** Period and down time in s: the link is down `down` s out of every `period` s. */
  period: number;
  down: number;
  /** Phase in s (relay semantics: see RELAY.md); the default lets the clients sync first. */
  phase?: number;
}

export interface Liar {
  /** Which reference lies (0-based). */
  index: number;
  /** The step happens at this fraction of the run (after the clients started). */
  atFraction: number;
  /** Size of the step in s. */
  offset: number;
}

export interface Scenario {
  name: string;
  description: string;
  /** Client → server. */
  up: PathSpec;
  /** Server → client. */
  down: PathSpec;
  outage?: Outage;
  /** Error of the good references (seed and epoch are filled in by the bench). */
  truth: Pick<InjectedErrorSpec, 'offset' | 'ppm' | 'wander'>;
  references: number;
  liar?: Liar;
  /** Options after `server ADDR port PORT` (identical for both clients). */
  serverOptions: string;
  /** Common configuration lines (identical for both clients). */
  commonLines: string[];
}

/** Default server options: fast enough polling that a few minutes give both daemons dozens of samples. */
export const DEFAULT_SERVER_OPTIONS = 'iburst minpoll 2 maxpoll 4';
export const DEFAULT_COMMON_LINES = ['makestep 1 3'];
/** Default truth: a reference a millisecond ahead, a few ppm fast, with a slow random walk of frequency. */
export const DEFAULT_TRUTH = { offset: 1e-3, ppm: 3, wander: 1e-9 };

const QUIET: PathSpec = { base: 100e-6, jitter: { kind: 'exp', mean: 50e-6 }, loss: 0 };
const BUSY: PathSpec = { base: 100e-6, jitter: { kind: 'exp', mean: 500e-6 }, loss: 0 };
const WAN: PathSpec = { base: 5e-3, jitter: { kind: 'exp', mean: 2e-3 }, loss: 0 };

function scenario(s: Partial<Scenario> & Pick<Scenario, 'name' | 'description' | 'up' | 'down'>): Scenario {
  return {
    truth: DEFAULT_TRUTH,
    references: 1,
    serverOptions: DEFAULT_SERVER_OPTIONS,
    commonLines: DEFAULT_COMMON_LINES,
    ...s,
  };
}

export const SCENARIOS: readonly Scenario[] = [
  scenario({
    name: 'quiet-lan',
    description: 'one reference, base 100 µs + exp 50 µs each way',
    up: QUIET,
    down: QUIET,
  }),
  scenario({
    name: 'busy-lan',
    description: 'one reference, base 100 µs + exp 500 µs each way',
    up: BUSY,
    down: BUSY,
  }),
  scenario({
    name: 'wan',
    description: 'one reference, base 5 ms + exp 2 ms each way',
    up: WAN,
    down: WAN,
  }),
  scenario({
    name: 'asymmetric',
    description: 'one reference, base 100 µs each way, jitter exp 500 µs up, exp 50 µs down',
    up: BUSY,
    down: QUIET,
  }),
  scenario({
    name: 'loss',
    description: 'quiet LAN with 10 % loss each way',
    up: { ...QUIET, loss: 0.1 },
    down: { ...QUIET, loss: 0.1 },
  }),
  scenario({
    name: 'intermittent',
    description: 'quiet LAN, link down 60 s out of every 120 s',
    up: QUIET,
    down: QUIET,
    outage: { period: 120, down: 60 },
  }),
  scenario({
    name: 'cold-start',
    description: 'quiet LAN, reference 0.5 s ahead and 50 ppm fast of the clients',
    up: QUIET,
    down: QUIET,
    truth: { offset: 0.5, ppm: 50, wander: 1e-9 },
  }),
  scenario({
    name: 'liar',
    description: 'quiet LAN, five references; one steps +2 ms at one third of the run',
    up: QUIET,
    down: QUIET,
    references: 5,
    liar: { index: 4, atFraction: 1 / 3, offset: 2e-3 },
  }),
];

export function findScenario(name: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.name === name);
}

/** `--inject-error` argument for a spec (epoch as integer ns). */
export function injectErrorArg(spec: InjectedErrorSpec): string {
  const parts = [`offset=${spec.offset}`, `ppm=${spec.ppm}`];
  if (spec.wander !== undefined) parts.push(`wander=${spec.wander}`);
  if (spec.seed !== undefined) parts.push(`seed=${spec.seed}`);
  if (spec.epoch !== undefined) parts.push(`epoch=${spec.epoch}`);
  for (const s of spec.steps ?? []) parts.push(`step=${s.at}:${s.offset}`);
  return parts.join(',');
}

/** Human-readable one-liner of a path spec (µs/ms). */
export function describePath(p: PathSpec): string {
  const us = (s: number): string => (s >= 1e-3 ? `${+(s * 1e3).toFixed(3)} ms` : `${+(s * 1e6).toFixed(1)} µs`);
  const j = p.jitter;
  const jit =
    j.kind === 'none'
      ? 'no jitter'
      : j.kind === 'exp'
        ? `exp ${us(j.mean)}`
        : j.kind === 'uniform'
          ? `uniform ${us(j.max)}`
          : `normal ${us(j.sd)}`;
  return `${us(p.base)} + ${jit}${p.loss ? `, loss ${p.loss * 100} %` : ''}`;
}
