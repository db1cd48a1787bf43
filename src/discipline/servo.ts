/**
 * The clock servo's arithmetic (pure functions), kept apart from the Discipline's bookkeeping so
 * that it can be tuned and tested on its own.
 *
 * - Frequency: the measured residual frequency (from the regression) is applied with the gain
 *   3σexp² / (3σexp² + σmeas²), where σexp is the uncertainty of the current estimate and σmeas
 *   the skew of the measurement.
 * - Offset: the remaining offset is slewed away with a duration inversely proportional to its
 *   size: duration = corrtimeratio · ½·σoffset · updateInterval / |offset| (an average correction
 *   takes about corrtimeratio update intervals, large ones are done fast, up to maxslewrate).
 */

export interface FrequencyUpdate {
  /** Change of the frequency correction, s/s (added to the current one). */
  dFreq: number;
  /** Uncertainty of the new estimate, s/s. */
  skew: number;
  gain: number;
}

export function frequencyUpdate(
  residualFreq: number,
  measSkew: number,
  expectedSkew: number,
  maxUpdateSkew: number,
): FrequencyUpdate {
  if (!(measSkew <= maxUpdateSkew) || !Number.isFinite(residualFreq)) {
    return { dFreq: 0, skew: expectedSkew, gain: 0 };
  }
  const e2 = 3 * expectedSkew * expectedSkew;
  const m2 = measSkew * measSkew;
  const gain = e2 + m2 > 0 ? e2 / (e2 + m2) : 1;
  // Posterior uncertainty of a gain-weighted combination.
  const skew = Math.sqrt(Math.max((e2 * m2) / (e2 + m2), 1e-24));
  return { dFreq: gain * residualFreq, skew, gain };
}

export interface SlewPlan {
  /** Duration of the slew, seconds of raw (uncorrected) time. */
  duration: number;
  /** Extra frequency while slewing, s/s, signed like the offset. */
  rate: number;
}

export function slewPlan(
  offset: number,
  offsetSd: number,
  updateInterval: number,
  corrTimeRatio: number,
  maxSlewRate: number,
): SlewPlan {
  const a = Math.abs(offset);
  if (a === 0) return { duration: 0, rate: 0 };
  let duration = (corrTimeRatio * 0.5 * Math.max(offsetSd, 1e-9) * Math.max(updateInterval, 1)) / a;
  duration = Math.max(duration, a / maxSlewRate);
  return { duration, rate: offset / duration };
}
