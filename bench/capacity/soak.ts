/**
 * Soak: one long loadgen run at a fraction of the measured maximum while the server's RSS and
 * CPU time are sampled from /proc every few seconds; the first and the last minute are compared.
 * A server that leaks (client table, buffers, timers) or slows down over time shows growth.
 */
import { runLoadgen, type LoadgenArgs, type LoadgenResult } from './loadgen.js';
import { readCpuSeconds, readRssKb } from './proc-stats.js';
import { LOSS_LIMIT } from './step.js';

export const RSS_GROWTH_LIMIT = 0.05;
export const CPU_GROWTH_LIMIT = 0.1;

export interface SoakSample {
  /** Seconds since the first sample. */
  t: number;
  rssKb: number | null;
  /** Cumulative CPU seconds of the server. */
  cpuS: number;
}

export interface SoakWindow {
  /** Mean RSS of the samples in the window. */
  rssKb: number | null;
  /** CPU over the intervals in the window, % of one core. */
  cpuPct: number | null;
}

export interface SoakAnalysis {
  /** Window length compared at both ends: 60 s, or a third of a shorter soak. */
  window: number;
  first: SoakWindow;
  last: SoakWindow;
  rssGrowth: number | null;
  cpuGrowth: number | null;
  /** RSS growth < 5 % and CPU growth < 10 % (an unknown growth fails). */
  stable: boolean;
}

function windowStats(samples: readonly SoakSample[], from: number, to: number): SoakWindow {
  const inside = samples.filter((s) => s.t >= from - 1e-9 && s.t <= to + 1e-9);
  const rss = inside.map((s) => s.rssKb).filter((x): x is number => x !== null);
  let cpu = 0;
  let wall = 0;
  for (let i = 1; i < inside.length; i++) {
    cpu += inside[i]!.cpuS - inside[i - 1]!.cpuS;
    wall += inside[i]!.t - inside[i - 1]!.t;
  }
  return {
    rssKb: rss.length ? rss.reduce((a, b) => a + b, 0) / rss.length : null,
    cpuPct: wall > 0 ? (cpu / wall) * 100 : null,
  };
}

/** Compares the first and the last window of a soak's samples (pure). */
export function analyzeSoak(samples: readonly SoakSample[]): SoakAnalysis {
  const end = samples.length ? samples[samples.length - 1]!.t : 0;
  const window = Math.min(60, end / 3);
  const first = windowStats(samples, 0, window);
  const last = windowStats(samples, end - window, end);
  const growth = (a: number | null, b: number | null): number | null =>
    a !== null && b !== null && a > 0 ? b / a - 1 : null;
  const rssGrowth = growth(first.rssKb, last.rssKb);
  const cpuGrowth = growth(first.cpuPct, last.cpuPct);
  const stable =
    rssGrowth !== null && cpuGrowth !== null && rssGrowth < RSS_GROWTH_LIMIT && cpuGrowth < CPU_GROWTH_LIMIT;
  return { window: Math.round(window), first, last, rssGrowth, cpuGrowth, stable };
}

export interface SoakResult extends SoakAnalysis {
  server: string;
  rate: number;
  maxRate: number;
  fraction: number;
  durationS: number;
  samples: SoakSample[];
  load: LoadgenResult;
  lossOk: boolean;
  verdict: boolean;
}

export interface SoakOptions {
  ns: string;
  server: string;
  pid: number;
  loadgen: string;
  load: LoadgenArgs;
  maxRate: number;
  fraction: number;
  /** Seconds between /proc samples (default 10, shorter for soaks under 2 minutes). */
  sampleS?: number;
}

/** Runs the soak (load.durationS seconds at load.rate) and samples the server meanwhile. */
export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  // At least ~12 samples, so that even a short soak has several in each compared window.
  const sampleS = o.sampleS ?? Math.min(10, Math.max(1, o.load.durationS / 12));
  const samples: SoakSample[] = [];
  let t0: number | null = null;
  const take = (): void => {
    try {
      const now = performance.now() / 1000;
      t0 ??= now;
      samples.push({ t: now - t0, rssKb: readRssKb(o.pid), cpuS: readCpuSeconds(o.pid) });
    } catch {
      /* the server died: the loadgen's loss will say so */
    }
  };
  const load = runLoadgen(o.ns, o.loadgen, o.load);
  // First sample once the loadgen's warm-up is over, then every sampleS; the last one just
  // before the counted part of the run ends.
  const warmupMs = o.load.warmupMs ?? 300;
  const timers: NodeJS.Timeout[] = [];
  let interval: NodeJS.Timeout | undefined;
  timers.push(
    setTimeout(() => {
      take();
      interval = setInterval(take, sampleS * 1000);
    }, warmupMs + 200),
  );
  timers.push(
    setTimeout(
      () => {
        clearInterval(interval);
        take();
      },
      warmupMs + o.load.durationS * 1000 - 200,
    ),
  );
  let result: LoadgenResult;
  try {
    result = await load;
  } finally {
    for (const t of timers) clearTimeout(t);
    clearInterval(interval);
  }
  samples.sort((a, b) => a.t - b.t);
  const analysis = analyzeSoak(samples);
  const lossOk = result.lossRatio < LOSS_LIMIT;
  return {
    ...analysis,
    server: o.server,
    rate: o.load.rate,
    maxRate: o.maxRate,
    fraction: o.fraction,
    durationS: o.load.durationS,
    samples,
    load: result,
    lossOk,
    verdict: analysis.stable,
  };
}
