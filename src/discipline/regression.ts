/**
 * Weighted linear regression with a runs test on the residual signs, the estimator behind every
 * per-source statistic (chrony's regress.c does the same job; this is an independent
 * implementation). Pure functions, no state.
 */

export interface RegressionResult {
  /** Value of the fitted line at x = 0. */
  intercept: number;
  slope: number;
  /** Residual variance of a unit-weight point. */
  variance: number;
  interceptSd: number;
  slopeSd: number;
  /** Index of the first point used (older points failed the runs test). */
  start: number;
  /** Number of runs of same-sign residuals among the points used. */
  runs: number;
  /** Degrees of freedom of the fit (points used − 2). */
  dof: number;
}

/**
 * Weighted least squares of y on x. `w[i]` is an inverse weight (a variance factor: larger means
 * the point counts less), 1 for the best points.
 */
export function weightedRegression(
  x: readonly number[],
  y: readonly number[],
  w: readonly number[],
  start = 0,
): Omit<RegressionResult, 'start' | 'runs'> & { residuals: number[] } {
  const n = x.length - start;
  if (n < 2) throw new RangeError('regression needs at least 2 points');
  let sw = 0;
  let sx = 0;
  let sy = 0;
  for (let i = start; i < x.length; i++) {
    const wi = 1 / w[i]!;
    sw += wi;
    sx += wi * x[i]!;
    sy += wi * y[i]!;
  }
  const xbar = sx / sw;
  const ybar = sy / sw;
  let sxx = 0;
  let sxy = 0;
  for (let i = start; i < x.length; i++) {
    const wi = 1 / w[i]!;
    const dx = x[i]! - xbar;
    sxx += wi * dx * dx;
    sxy += wi * dx * (y[i]! - ybar);
  }
  const slope = sxx > 0 ? sxy / sxx : 0;
  const intercept = ybar - slope * xbar;
  const residuals: number[] = [];
  let ssr = 0;
  for (let i = start; i < x.length; i++) {
    const r = y[i]! - (intercept + slope * x[i]!);
    residuals.push(r);
    ssr += (r * r) / w[i]!;
  }
  const dof = n - 2;
  // Normalise so that the variance is that of a point of mean weight.
  const variance = dof > 0 ? (ssr / dof) * (n / sw) : 0;
  const unitVar = dof > 0 ? ssr / dof : 0;
  const slopeSd = sxx > 0 ? Math.sqrt(unitVar / sxx) : Infinity;
  const interceptSd = Math.sqrt(unitVar * (1 / sw + (xbar * xbar) / (sxx > 0 ? sxx : Infinity)));
  return { intercept, slope, variance, interceptSd, slopeSd, dof, residuals };
}

/** Number of runs of same-sign values (zeros count as positive). */
export function countRuns(residuals: readonly number[]): number {
  if (residuals.length === 0) return 0;
  let runs = 1;
  for (let i = 1; i < residuals.length; i++) {
    if (residuals[i]! < 0 !== residuals[i - 1]! < 0) runs++;
  }
  return runs;
}

/**
 * Critical number of runs for n residuals of random sign at the 5 % level (one-sided normal
 * approximation of the Wald–Wolfowitz runs distribution with n/2 of each sign): fewer runs than
 * this means the residuals are correlated, i.e. the line does not fit all the points. Matches
 * the 5 % table chrony uses within one run for n ≤ 130.
 */
export function criticalRuns(n: number): number {
  if (n < 4) return 0;
  const mean = n / 2 + 1;
  const sd = Math.sqrt((n * (n - 2)) / (4 * (n - 1)));
  return Math.max(1, Math.ceil(mean - 1.645 * sd));
}

/** Residuals are tested over up to this many times the fitted points (older points included). */
export const RUNS_RATIO = 2;

const T95 = [
  12.71, 4.3, 3.18, 2.78, 2.57, 2.45, 2.36, 2.31, 2.26, 2.23, 2.2, 2.18, 2.16, 2.14, 2.13, 2.12, 2.11, 2.1, 2.09, 2.09,
  2.08, 2.07, 2.07, 2.06, 2.06, 2.06, 2.05, 2.05, 2.05, 2.04,
];

/** Two-sided 95 % Student t coefficient for `dof` degrees of freedom. */
export function tCoefficient(dof: number): number {
  if (dof < 1) return T95[0]!;
  if (dof <= T95.length) return T95[dof - 1]!;
  return dof <= 60 ? 2.02 : 1.98;
}

/**
 * Fits a line, dropping the oldest points (lowest indices) until the residual signs pass the runs
 * test or only `minPoints` remain. Points are ordered oldest first. The first `extra` points are
 * older samples already dropped from the fit: they are never fitted again, but the runs test of a
 * fit over k points also covers up to k older points, so that a line fitted to recent points must
 * still explain the trend of the older ones (without this the test passes too easily when the
 * clock wanders and too much history is kept).
 */
export function findBestRegression(
  x: readonly number[],
  y: readonly number[],
  w: readonly number[],
  minPoints = 3,
  extra = 0,
): RegressionResult {
  const n = x.length;
  let start = Math.min(extra, Math.max(0, n - 2));
  for (;;) {
    const fit = weightedRegression(x, y, w, start);
    const used = n - start;
    const residStart = Math.max(0, n - used * RUNS_RATIO);
    const resid: number[] = [];
    for (let i = residStart; i < start; i++) resid.push(y[i]! - (fit.intercept + fit.slope * x[i]!));
    resid.push(...fit.residuals);
    const runs = countRuns(resid);
    if (used <= Math.max(minPoints, 3) || runs >= criticalRuns(resid.length)) {
      return {
        intercept: fit.intercept,
        slope: fit.slope,
        variance: fit.variance,
        interceptSd: fit.interceptSd,
        slopeSd: fit.slopeSd,
        dof: fit.dof,
        start,
        runs: start === residStart ? runs : countRuns(fit.residuals),
      };
    }
    start++;
  }
}

/**
 * Least squares fit of y = a + b1·x1 + b2·x2 (unweighted); returns b2, or undefined when there
 * are fewer than 4 points or the system is (numerically) singular. Used to find how a source's
 * offsets move with its delay: with jitter mostly in one direction, offset − b2·(delay − min)
 * is the offset the minimum delay would have measured.
 */
export function secondSlope(x1: readonly number[], x2: readonly number[], y: readonly number[]): number | undefined {
  const n = y.length;
  if (n < 4) return undefined;
  let m1 = 0;
  let m2 = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    m1 += x1[i]!;
    m2 += x2[i]!;
    my += y[i]!;
  }
  m1 /= n;
  m2 /= n;
  my /= n;
  let s11 = 0;
  let s12 = 0;
  let s22 = 0;
  let s1y = 0;
  let s2y = 0;
  for (let i = 0; i < n; i++) {
    const a = x1[i]! - m1;
    const b = x2[i]! - m2;
    const c = y[i]! - my;
    s11 += a * a;
    s12 += a * b;
    s22 += b * b;
    s1y += a * c;
    s2y += b * c;
  }
  const det = s11 * s22 - s12 * s12;
  if (!(Math.abs(det) > 1e-10 * s11 * s22) || !(s22 > 0)) return undefined;
  return (s11 * s2y - s12 * s1y) / det;
}
