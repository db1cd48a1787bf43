/**
 * Source selection (pure): decides which sources are truechimers, which one is the system peer
 * and which are combined. Intervals are offset ± root distance; the endpoint sweep finds the
 * region covered by the most intervals (Marzullo), which must hold a majority of the usable
 * sources; sources whose interval misses that region are falsetickers.
 *
 * As chrony 4.x (sources.c SRC_SelectSource), only a lost majority unsynchronises the clock, and
 * only if a source was selected: with no selectable source (all unreachable, or not enough of
 * them for minsources/require) the last reference is kept and ages (reference.c).
 */
import type { SelectState, SourceSelectOptions } from '../engine/types.js';

export interface Candidate {
  id: string;
  opts: SourceSelectOptions;
  /** False if the source has no usable estimate (unreachable, no samples, ...). */
  usable: boolean;
  offset: number;
  rootDistance: number;
  stdDev: number;
  stratum: number;
}

export interface SelectionOptions {
  minsources: number; // 1
  maxdistance: number; // 3 s
  maxjitter: number; // 1 s
  combinelimit: number; // 3
  stratumweight: number; // 1e-3 s per stratum
  reselectdist: number; // 1e-4 s
}

export const DEFAULT_SELECTION: SelectionOptions = {
  minsources: 1,
  maxdistance: 3,
  maxjitter: 1,
  combinelimit: 3,
  stratumweight: 1e-3,
  reselectdist: 1e-4,
};

export interface SelectionResult {
  /** The system peer, or undefined when the clock cannot be synchronised. */
  selected: string | undefined;
  /** The selected source and the ones combined with it. */
  combined: string[];
  states: Map<string, SelectState>;
  /** Why there is no selection ('' when there is one). */
  reason: '' | 'no sources' | 'no majority' | 'minsources' | 'no required source' | 'waiting for sources';
  /**
   * Whether the reference must be dropped (chrony's REF_SetUnsynchronised): only when the
   * previously selected source is lost to a disagreement (no majority). Otherwise a failed
   * selection keeps the last reference, which ages (holdover).
   */
  unsynchronise: boolean;
  /** The agreed interval, if any. */
  interval?: { lo: number; hi: number };
}

/**
 * Largest overlap of intervals by an endpoint sweep. Each interval contributes +1 at its low end
 * and −1 at its high end; ties put starts first so touching intervals intersect. Trusted
 * intervals win ties on depth by counting trusted depth first.
 */
export function largestOverlap(
  intervals: readonly { lo: number; hi: number; trusted?: boolean }[],
): { lo: number; hi: number; depth: number; trustedDepth: number } | undefined {
  if (intervals.length === 0) return undefined;
  const ev: { x: number; d: number; t: number }[] = [];
  for (const iv of intervals) {
    const t = iv.trusted ? 1 : 0;
    ev.push({ x: iv.lo, d: 1, t }, { x: iv.hi, d: -1, t: -t });
  }
  ev.sort((a, b) => a.x - b.x || b.d - a.d);
  let depth = 0;
  let tdepth = 0;
  let best: { lo: number; hi: number; depth: number; trustedDepth: number } | undefined;
  for (let i = 0; i < ev.length; i++) {
    const e = ev[i]!;
    depth += e.d;
    tdepth += e.t;
    if (e.d > 0) {
      const better = !best || tdepth > best.trustedDepth || (tdepth === best.trustedDepth && depth > best.depth);
      if (better) {
        // The region lasts until the next endpoint where the depth drops.
        let hi = e.x;
        for (let j = i + 1; j < ev.length; j++) {
          if (ev[j]!.d < 0) {
            hi = ev[j]!.x;
            break;
          }
        }
        best = { lo: e.x, hi, depth, trustedDepth: tdepth };
      }
    }
  }
  return best;
}

export function selectSources(
  cands: readonly Candidate[],
  opts: SelectionOptions = DEFAULT_SELECTION,
  previous?: string,
  /**
   * Sources without an estimate yet that may still answer. Only before a first selection (no
   * `previous`): then nothing is selected until the sources that answer hold a majority of all
   * of them, so the first few answers cannot make falsetickers win. chrony instead postpones
   * only while such sources answer in step with the others (SRC_WAITS_STATS); later, as chrony,
   * sources without statistics do not vote (a source added at run time, or one that never
   * answers, cannot take a working selection away).
   */
  pendingVoters = 0,
): SelectionResult {
  const states = new Map<string, SelectState>();
  const usable: Candidate[] = [];
  for (const c of cands) {
    if (!c.usable || c.opts.noselect || !(c.rootDistance <= opts.maxdistance)) {
      states.set(c.id, '?');
    } else if (c.stdDev > opts.maxjitter) {
      states.set(c.id, '~');
    } else {
      usable.push(c);
    }
  }
  const fail = (reason: SelectionResult['reason']): SelectionResult => {
    for (const c of usable) if (!states.has(c.id)) states.set(c.id, '-');
    return { selected: undefined, combined: [], states, reason, unsynchronise: false };
  };
  if (usable.length === 0) return fail('no sources');

  const ivs = usable.map((c) => ({
    lo: c.offset - c.rootDistance,
    hi: c.offset + c.rootDistance,
    trusted: c.opts.trust,
  }));
  const best = largestOverlap(ivs)!;
  const nTrusted = usable.filter((c) => c.opts.trust).length;
  const truechimers: Candidate[] = [];
  for (let i = 0; i < usable.length; i++) {
    const iv = ivs[i]!;
    const c = usable[i]!;
    if (iv.hi < best.lo || iv.lo > best.hi) states.set(c.id, 'x');
    else truechimers.push(c);
  }
  const trustedOk = nTrusted > 0 && best.trustedDepth === nTrusted;
  if (!(2 * best.depth > usable.length) && !trustedOk) {
    // No majority: nobody is a truechimer we could follow.
    for (const c of truechimers) states.set(c.id, '-');
    const res = fail('no majority');
    return { ...res, interval: { lo: best.lo, hi: best.hi }, unsynchronise: previous !== undefined };
  }
  const waiting = previous === undefined ? pendingVoters : 0;
  if (!(2 * best.depth > usable.length + waiting) && !trustedOk) {
    // A majority of the sources that answered, not yet of all: wait for the others.
    for (const c of truechimers) states.set(c.id, '-');
    return { ...fail('waiting for sources'), interval: { lo: best.lo, hi: best.hi } };
  }
  if (truechimers.length < opts.minsources) {
    for (const c of truechimers) states.set(c.id, '-');
    return fail('minsources');
  }
  if (cands.some((c) => c.opts.require) && !truechimers.some((c) => c.opts.require)) {
    for (const c of truechimers) states.set(c.id, '-');
    return fail('no required source');
  }

  const preferred = truechimers.filter((c) => c.opts.prefer);
  const pool = preferred.length > 0 ? preferred : truechimers;
  const score = (c: Candidate): number => c.rootDistance + opts.stratumweight * c.stratum;
  let sel = pool[0]!;
  for (const c of pool) if (score(c) < score(sel)) sel = c;
  // Hysteresis: keep the previous system peer unless another is better by reselectdist.
  const prev = pool.find((c) => c.id === previous);
  if (prev && score(prev) <= score(sel) + opts.reselectdist) sel = prev;

  const combined: string[] = [sel.id];
  states.set(sel.id, '*');
  for (const c of truechimers) {
    if (c === sel) continue;
    if (c.rootDistance <= opts.combinelimit * sel.rootDistance && (preferred.length === 0 || c.opts.prefer)) {
      combined.push(c.id);
      states.set(c.id, '+');
    } else {
      states.set(c.id, '-');
    }
  }
  return {
    selected: sel.id,
    combined,
    states,
    reason: '',
    unsynchronise: false,
    interval: { lo: best.lo, hi: best.hi },
  };
}
