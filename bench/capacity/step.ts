/**
 * Rate stepping for the capacity benchmark, independent of any I/O: `measure(rate)` runs one load
 * step and says how it went. From `start`, the rate is multiplied by `factor` until a step is not
 * loss-free (or `max` is passed), then the interval between the last good and the first bad rate is
 * bisected `bisections` times. If the very first step already fails, the rate is divided by
 * `factor` until a step is good (or the rate falls below `min`), and that interval is bisected.
 */

/** Loss-free means strictly below this fraction of requests unanswered (0.1 %). */
export const LOSS_LIMIT = 0.001;
/** A step whose achieved rate is below this fraction of the asked rate did not really run at it. */
export const ACHIEVED_MIN_FRACTION = 0.95;

export type StepVerdict = 'ok' | 'loss' | 'short';

/** What a step needs to be judged (a subset of the loadgen's JSON line). */
export interface StepOutcome {
  rate: number;
  sent: number;
  lossRatio: number;
  achievedRate: number;
  kod: number;
  /** Answers the generator's own sockets dropped (not the server's loss). */
  clientDrops?: number;
}

/**
 * 'loss': ≥ 0.1 % of requests unanswered or answered with a KoD (there is no ratelimit, so a KoD
 * is a refusal too); 'short': the generator did not reach the rate, or its own sockets dropped
 * ≥ 0.1 % of the answers (the server may do more; the step is still not loss-free).
 */
export function judgeStep(o: StepOutcome): StepVerdict {
  const refused = o.sent > 0 ? o.kod / o.sent : 0;
  const generatorDrops = o.sent > 0 ? (o.clientDrops ?? 0) / o.sent : 0;
  if (o.achievedRate < o.rate * ACHIEVED_MIN_FRACTION) return 'short';
  if (!(o.lossRatio < LOSS_LIMIT) && generatorDrops >= LOSS_LIMIT) return 'short';
  if (!(o.lossRatio < LOSS_LIMIT) || !(refused < LOSS_LIMIT)) return 'loss';
  return 'ok';
}

export interface StepPlan {
  start: number;
  factor: number;
  max: number;
  /** Lowest rate tried when stepping down (default 100 req/s). */
  min?: number;
  /** Default 2. */
  bisections?: number;
}

export interface SteppedResult<T> {
  /** Every step in the order run. */
  steps: { rate: number; verdict: StepVerdict; result: T }[];
  /** Highest loss-free rate measured (null if none was). */
  maxRate: number | null;
  /** The step at maxRate. */
  best: T | null;
  /** Why stepping stopped: loss at the next rate, the generator could not go faster, or --max. */
  limit: 'loss' | 'short' | 'max' | 'none';
}

export async function findMaxRate<T extends StepOutcome>(
  measure: (rate: number) => Promise<T>,
  plan: StepPlan,
  onStep?: (rate: number, verdict: StepVerdict, result: T) => void,
): Promise<SteppedResult<T>> {
  if (!(plan.factor > 1)) throw new Error(`factor must be > 1 (got ${plan.factor})`);
  if (!(plan.start > 0) || !(plan.max >= plan.start)) throw new Error('need 0 < start <= max');
  const min = plan.min ?? 100;
  const bisections = plan.bisections ?? 2;
  const steps: SteppedResult<T>['steps'] = [];
  // Highest good and lowest bad rate so far (an object: the closure below updates it).
  const seen: { good: { rate: number; result: T } | null; bad: { rate: number; verdict: StepVerdict } | null } = {
    good: null,
    bad: null,
  };

  const run = async (rate: number): Promise<StepVerdict> => {
    const result = await measure(rate);
    const verdict = judgeStep(result);
    steps.push({ rate, verdict, result });
    onStep?.(rate, verdict, result);
    if (verdict === 'ok') {
      if (!seen.good || rate > seen.good.rate) seen.good = { rate, result };
    } else if (!seen.bad || rate < seen.bad.rate) seen.bad = { rate, verdict };
    return verdict;
  };

  let rate = Math.round(plan.start);
  if ((await run(rate)) === 'ok') {
    // Up until a step fails or the next rate would pass --max.
    for (;;) {
      const next = Math.round(rate * plan.factor);
      if (next > plan.max) break;
      rate = next;
      if ((await run(rate)) !== 'ok') break;
    }
  } else {
    // Down until a step is good.
    for (;;) {
      const next = Math.round(rate / plan.factor);
      if (next < min) break;
      rate = next;
      if ((await run(rate)) === 'ok') break;
    }
  }

  if (seen.good && seen.bad) {
    let lo = seen.good.rate;
    let hi = seen.bad.rate;
    for (let i = 0; i < bisections; i++) {
      const mid = Math.round((lo + hi) / 2);
      if (mid <= lo || mid >= hi) break;
      if ((await run(mid)) === 'ok') lo = mid;
      else hi = mid;
    }
  }
  const { good, bad } = seen;
  return {
    steps,
    maxRate: good ? good.rate : null,
    best: good ? good.result : null,
    limit: bad ? (bad.verdict === 'short' ? 'short' : 'loss') : good ? 'max' : 'none',
  };
}
