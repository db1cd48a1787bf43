/**
 * Per-source sample options from chrony's server directive (maxdelayratio, maxdelaydevratio,
 * minsamples, maxsamples, offset, minstratum): what the engine passes to the discipline and how
 * a measurement is corrected before the discipline sees it.
 */
import type { NtpSample } from '../engine/types.js';

export interface SampleTuning {
  maxdelayratio?: number;
  maxdelaydevratio?: number;
  minsamples?: number;
  maxsamples?: number;
  /** Seconds added to every measured offset (a known path asymmetry). */
  offset?: number;
  /** The source's stratum is raised to at least this, so it is selected only when better ones fail. */
  minstratum?: number;
}

/** The sample with the source's fixed offset correction and minimum stratum applied. */
export function tuneSample(sample: NtpSample, t: SampleTuning | undefined): NtpSample {
  if (!t || ((t.offset ?? 0) === 0 && (t.minstratum ?? 0) <= sample.stratum)) return sample;
  return {
    ...sample,
    offset: sample.offset + (t.offset ?? 0),
    stratum: Math.max(sample.stratum, t.minstratum ?? 0),
  };
}

/** The options of `t` the discipline's per-source statistics take. */
export function disciplineSampleOptions(
  t: SampleTuning | undefined,
): Pick<SampleTuning, 'maxdelayratio' | 'maxdelaydevratio' | 'minsamples' | 'maxsamples'> {
  const out: Pick<SampleTuning, 'maxdelayratio' | 'maxdelaydevratio' | 'minsamples' | 'maxsamples'> = {};
  if (t?.maxdelayratio !== undefined) out.maxdelayratio = t.maxdelayratio;
  if (t?.maxdelaydevratio !== undefined) out.maxdelaydevratio = t.maxdelaydevratio;
  if (t?.minsamples !== undefined) out.minsamples = t.minsamples;
  if (t?.maxsamples !== undefined) out.maxsamples = t.maxsamples;
  return out;
}
