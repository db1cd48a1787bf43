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

/** Median of the values (the upper middle one for an even count). */
export function median(v: readonly number[]): number {
  return [...v].sort((a, b) => a - b)[v.length >> 1]!;
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

/** One-sided normal quantiles of the runs test: 5 % (chrony's level) and 1 %. */
export const RUNS_Z = 1.645;
export const RUNS_Z_STRICT = 2.326;

/**
 * Critical number of runs for n residuals of random sign at the 5 % level (one-sided normal
 * approximation of the Wald–Wolfowitz runs distribution with n/2 of each sign): fewer runs than
 * this means the residuals are correlated, i.e. the line does not fit all the points. Matches
 * the 5 % table chrony uses within one run for n ≤ 130. `z` = RUNS_Z_STRICT tests at 1 %.
 */
export function criticalRuns(n: number, z = RUNS_Z): number {
  if (n < 4) return 0;
  const mean = n / 2 + 1;
  const sd = Math.sqrt((n * (n - 2)) / (4 * (n - 1)));
  return Math.max(1, Math.ceil(mean - z * sd));
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
 * clock wanders and too much history is kept). `z` sets the test's level (`criticalRuns`).
 */
export function findBestRegression(
  x: readonly number[],
  y: readonly number[],
  w: readonly number[],
  minPoints = 3,
  extra = 0,
  z = RUNS_Z,
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
    // Signs are taken about the residuals' median: with one-sided (queueing) jitter the weighted
    // line runs along the fastest exchanges and most residuals share a sign, which the test
    // would read as a trend and cut the history for nothing.
    const med = median(resid);
    const runs = countRuns(resid.map((r) => r - med));
    if (used <= Math.max(minPoints, 3) || runs >= criticalRuns(resid.length, z)) {
      return {
        intercept: fit.intercept,
        slope: fit.slope,
        variance: fit.variance,
        interceptSd: fit.interceptSd,
        slopeSd: fit.slopeSd,
        dof: fit.dof,
        start,
        runs: start === residStart ? runs : countRuns(fit.residuals.map((r) => r - median(fit.residuals))),
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

export interface CorridorFit {
  /** Centre line of the corridor at x = 0, and its slope. */
  intercept: number;
  slope: number;
  /** Half of the corridor's width (the part of the minimum one-way delay both directions share). */
  halfWidth: number;
}

/**
 * Minimum-delay corridor. Each exchange bounds the offset line from both sides: u = θ + δ/2
 * (= T2 − T1, the offset plus the whole up delay) lies above it by the base delay plus that
 * exchange's up jitter, and l = θ − δ/2 (= T3 − T4) lies below it by the base delay plus the down
 * jitter. A corridor of one slope is fitted between the l points (below) and the u points
 * (above); its centre line is off by (min up jitter − min down jitter)/2, which shrinks as 1/n
 * with one-sided (queueing) jitter, where a regression of offsets shrinks as 1/√n and is biased
 * by asymmetric jitter. It assumes, as all of NTP, equal base delays both ways.
 *
 * With exponential jitter of means μu (up) and μd (down) the most likely corridor maximises
 * U(x̄)/μu − L(x̄)/μd, U and L its upper and lower edge at the mean x: with equal means, the
 * widest corridor; with one quiet direction, its edge hugs that direction's points, which then
 * set the slope. `wu` and `wl` are the weights 1/μu and 1/μd. The objective is concave in the
 * slope: bisection on its subgradient. Points [start, n).
 */
export function corridorFit(
  x: readonly number[],
  u: readonly number[],
  l: readonly number[],
  start = 0,
  wu = 1,
  wl = 1,
  slopeBound = 1e-3,
): CorridorFit {
  const n = x.length;
  if (n - start < 1) throw new RangeError('corridor needs a point');
  let xm = 0;
  for (let i = start; i < n; i++) xm += x[i]!;
  xm /= n - start;
  const at = (f: number): { lo: number; hi: number; xu: number; xl: number } => {
    let hi = Infinity;
    let lo = -Infinity;
    let xu = 0;
    let xl = 0;
    for (let i = start; i < n; i++) {
      const dx = x[i]! - xm;
      const a = u[i]! - f * dx;
      const b = l[i]! - f * dx;
      if (a < hi) {
        hi = a;
        xu = dx;
      }
      if (b > lo) {
        lo = b;
        xl = dx;
      }
    }
    return { lo, hi, xu, xl };
  };
  let fLo = -slopeBound;
  let fHi = slopeBound;
  for (let k = 0; k < 80 && fHi - fLo > 1e-15; k++) {
    const f = (fLo + fHi) / 2;
    const c = at(f);
    // Subgradient of wu·U − wl·L: rising while the binding points pull towards a larger slope.
    const g = wl * c.xl - wu * c.xu;
    if (g > 0) fLo = f;
    else if (g < 0) fHi = f;
    else {
      fLo = fHi = f;
      break;
    }
  }
  const f = (fLo + fHi) / 2;
  const c = at(f);
  return { intercept: (c.hi + c.lo) / 2 - f * xm, slope: f, halfWidth: (c.hi - c.lo) / 2 };
}

export interface CorridorEstimate extends CorridorFit {
  /** Estimated standard deviation of the intercept. */
  interceptSd: number;
}

/** The m-th smallest of `v` (1-based), or the largest when there are fewer. */
function nthSmallest(v: number[], m: number): number {
  v.sort((a, b) => a - b);
  return v[Math.min(m, v.length) - 1]!;
}

/** Fits of the corridor, each weighting the sides by the jitter the previous one left. */
const CORRIDOR_ITERATIONS = 3;

/**
 * The corridor's offset, corrected for its bias, with an estimate of its error. Offsets θ and
 * delays δ of points oldest first, x their times relative to the origin; the slope is searched
 * within ±slopeBound.
 *
 * The mean gap between a side's points and the corridor's edge measures that direction's jitter
 * (each side's weight is 1/(its mean gap + the mean of both), shrunk towards equal weights).
 * The binding points sit above the true line by the smallest jitter of their direction: with
 * exponential jitter of mean μ over n points that is μ/n on average, so the intercept is moved
 * by the difference of the two sides' expected minima (the unbiased location estimate of a
 * shifted exponential). The error of each side's minimum is taken from the spacing of its
 * smallest gaps, which also holds for noise that is not exponential (a bell-shaped noise has
 * closely spaced extremes, and its corridor is no better than its mean).
 */
export function corridorEstimate(
  x: readonly number[],
  theta: readonly number[],
  delay: readonly number[],
  slopeBound = 1e-3,
): CorridorEstimate {
  const n = x.length;
  const u = theta.map((t, i) => t + delay[i]! / 2);
  const l = theta.map((t, i) => t - delay[i]! / 2);
  let wu = 1;
  let wl = 1;
  let c = corridorFit(x, u, l, 0, 1, 1, slopeBound);
  let gu: number[] = [];
  let gl: number[] = [];
  let su = 0;
  let sl = 0;
  for (let it = 0; ; it++) {
    gu = [];
    gl = [];
    su = 0;
    sl = 0;
    for (let i = 0; i < n; i++) {
      const line = c.intercept + c.slope * x[i]!;
      const a = Math.max(0, u[i]! - (line + c.halfWidth));
      const b = Math.max(0, line - c.halfWidth - l[i]!);
      gu.push(a);
      gl.push(b);
      su += a;
      sl += b;
    }
    if (it + 1 >= CORRIDOR_ITERATIONS || n < 2) break;
    const shrink = (su + sl) / (2 * n);
    if (!(shrink > 0)) break;
    wu = 1 / (su / n + shrink);
    wl = 1 / (sl / n + shrink);
    c = corridorFit(x, u, l, 0, wu * shrink, wl * shrink, slopeBound);
  }
  if (n < 2) return { ...c, interceptSd: Infinity };
  const intercept = c.intercept - (su - sl) / (2 * n * (n - 1));
  // Up to two of a side's gaps are 0 (the binding points); the next ones are spaced by about the
  // error of that side's minimum.
  const m = Math.min(5, n);
  const sdU = nthSmallest(gu, m) / (m - 1);
  const sdL = nthSmallest(gl, m) / (m - 1);
  return { ...c, intercept, interceptSd: Math.hypot(sdU, sdL) / 2 };
}
