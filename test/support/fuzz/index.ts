/**
 * Every fuzz target, and the two drivers: `fixedSlice` (the unit tests: fast-check with a fixed
 * seed and shrinking) and `campaign` (bench/fuzz/run.ts: millions of inputs, counting failures
 * by signature instead of stopping at the first).
 */
import fc from 'fast-check';
import { ntpTargets } from './targets-ntp.js';
import { textTargets } from './targets-text.js';
import { authTargets } from './targets-auth.js';
import { runInput, type FuzzTarget } from './target.js';

export { type FuzzTarget } from './target.js';

export async function allTargets(): Promise<{ targets: FuzzTarget[]; missing: string[] }> {
  const auth = await authTargets();
  return { targets: [...ntpTargets(), ...textTargets(), ...auth.targets], missing: auth.missing };
}

/** fast-check property over a target, for the test suite: throws with the shrunk counterexample. */
export async function fixedSlice(target: FuzzTarget, numRuns: number, seed = 0x5eed): Promise<void> {
  await fc.assert(
    fc.asyncProperty(target.arbitrary, async (input) => {
      const r = await runInput(target, input);
      if (!r.ok) throw r.error instanceof Error ? r.error : new Error(r.signature);
    }),
    { numRuns, seed, endOnFailure: false },
  );
}

export interface CampaignResult {
  target: string;
  inputs: number;
  failures: number;
  /** Signature → count and one example input (hex, or JSON for structured inputs). */
  signatures: Map<string, { count: number; example: string }>;
  seconds: number;
  maxMs: number;
}

function show(input: unknown): string {
  const s = JSON.stringify(input, (_k, v: unknown) =>
    v instanceof Uint8Array ? Buffer.from(v).toString('hex') : typeof v === 'bigint' ? `${v}n` : v,
  );
  return s.length > 600 ? `${s.slice(0, 600)}…` : s;
}

/**
 * Runs one target until `iterations` inputs or `seconds` elapse, in batches of generated inputs
 * (batch k uses seed `seed + k`, so a run is reproducible from its seed).
 */
export async function campaign(
  target: FuzzTarget,
  opts: { iterations: number; seconds: number; seed: number; batch?: number },
): Promise<CampaignResult> {
  const batch = opts.batch ?? 5000;
  const res: CampaignResult = {
    target: target.name,
    inputs: 0,
    failures: 0,
    signatures: new Map(),
    seconds: 0,
    maxMs: 0,
  };
  const t0 = performance.now();
  const deadline = t0 + opts.seconds * 1000;
  for (let k = 0; res.inputs < opts.iterations && performance.now() < deadline; k++) {
    const n = Math.min(batch, opts.iterations - res.inputs);
    for (const input of fc.sample(target.arbitrary, { seed: opts.seed + k, numRuns: n })) {
      const r = await runInput(target, input);
      res.inputs++;
      if (r.ms > res.maxMs) res.maxMs = r.ms;
      if (r.ok) continue;
      res.failures++;
      const e = res.signatures.get(r.signature);
      if (e) e.count++;
      else res.signatures.set(r.signature, { count: 1, example: show(input) });
    }
  }
  res.seconds = (performance.now() - t0) / 1000;
  return res;
}
