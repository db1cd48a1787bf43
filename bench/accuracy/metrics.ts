/**
 * Accuracy metrics of a served-time series (pure functions, no I/O).
 *
 * error(t) = probe offset (served − host) − err(t) (the injected error the references serve),
 * i.e. how far the time a daemon serves is from the time it should serve.
 */

export interface ErrorSample {
  /** Seconds since the clients were started. */
  t: number;
  /** Served-time error, s (null: the probe got no answer). */
  error: number | null;
  /** Probe round-trip delay, s (null when unanswered). */
  delay: number | null;
  /** Leap indicator of the answer (3: the daemon says it is not synchronised). */
  leap?: number | null;
}

export interface AccuracyMetrics {
  /**
   * Seconds since the clients started after which |error| < limit on every later probe, each
   * answered (the time of the first sample of that final run); null when the last one is not.
   */
  convergence: number | null;
  /** After warm-up (answered probes with t ≥ warmup): */
  rms: number | null;
  mean: number | null;
  maxAbs: number | null;
  p95Abs: number | null;
  samples: number;
  /** Probes after warm-up that got no answer. */
  unanswered: number;
  /** Answered probes after warm-up with |error| ≥ limit. */
  outside: number;
  /** Answered probes after warm-up with leap indicator 3 (served, but flagged unsynchronised). */
  unsynchronised: number;
}

export function computeMetrics(series: readonly ErrorSample[], warmup: number, limit: number): AccuracyMetrics {
  const answered = series.filter((s): s is ErrorSample & { error: number } => s.error !== null);
  // An unanswered probe (loopback, so the daemon did not answer) breaks the run too; probes
  // before the daemon's first answer (not started yet) do not count.
  const first = series.findIndex((s) => s.error !== null);
  let convergence: number | null = null;
  for (let i = series.length - 1; i >= Math.max(first, 0); i--) {
    const e = series[i]!.error;
    if (e === null || Math.abs(e) >= limit) break;
    convergence = series[i]!.t;
  }
  const after = answered.filter((s) => s.t >= warmup).map((s) => s.error);
  const unanswered = series.filter((s) => s.t >= warmup && s.error === null).length;
  const unsynchronised = series.filter((s) => s.t >= warmup && s.error !== null && s.leap === 3).length;
  if (after.length === 0) {
    return {
      convergence,
      rms: null,
      mean: null,
      maxAbs: null,
      p95Abs: null,
      samples: 0,
      unanswered,
      outside: 0,
      unsynchronised,
    };
  }
  const n = after.length;
  const mean = after.reduce((a, e) => a + e, 0) / n;
  const rms = Math.sqrt(after.reduce((a, e) => a + e * e, 0) / n);
  const abs = after.map(Math.abs).sort((a, b) => a - b);
  const maxAbs = abs[n - 1]!;
  const p95Abs = abs[Math.min(n - 1, Math.ceil(0.95 * n) - 1)]!;
  const outside = abs.filter((e) => e >= limit).length;
  return { convergence, rms, mean, maxAbs, p95Abs, samples: n, unanswered, outside, unsynchronised };
}

/** a / b, or null when either is missing or b is 0. */
export function ratio(a: number | null, b: number | null): number | null {
  if (a === null || b === null || b === 0) return null;
  return a / b;
}

/**
 * Convergence ratio rubidium/chronyd where "never" (null) counts as infinitely slow: both never
 * is a tie (1), only chronyd never is 0, only rubidiumd never is Infinity.
 */
export function convergenceRatio(r: number | null, c: number | null): number {
  if (r === null) return c === null ? 1 : Infinity;
  if (c === null) return 0;
  return c === 0 ? (r === 0 ? 1 : Infinity) : r / c;
}

/** Median (mean of the two middle values for an even count); null when there are none. */
export function median(values: readonly (number | null)[]): number | null {
  const v = values.filter((x): x is number => x !== null && !Number.isNaN(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
}

// ---------------------------------------------------------------------------------------------
// Formatting

export const fmtUs = (s: number | null, digits = 1): string => (s === null ? '–' : (s * 1e6).toFixed(digits));
export const fmtSec = (s: number | null): string => (s === null || s === Infinity ? 'never' : s.toFixed(1));
export const fmtRatio = (r: number | null): string => (r === null ? '–' : r === Infinity ? '∞' : r.toFixed(2));

/** A Markdown table (header + rows), columns padded for reading in a terminal too. */
export function markdownTable(header: string[], rows: string[][], align?: ('l' | 'r')[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length), 3));
  const pad = (s: string, i: number): string =>
    (align?.[i] ?? 'r') === 'l' ? s.padEnd(widths[i]!) : s.padStart(widths[i]!);
  const line = (cells: string[]): string => `| ${cells.map((c, i) => pad(c, i)).join(' | ')} |`;
  const sep = `|${widths.map((w, i) => ((align?.[i] ?? 'r') === 'l' ? ` ${'-'.repeat(w)} ` : ` ${'-'.repeat(w - 1)}: `)).join('|')}|`;
  return [line(header), sep, ...rows.map(line)].join('\n');
}
