/**
 * Holdover rules of the discipline (pure, sans-IO), with chrony's semantics:
 *
 * - Which sources stay selectable while unreachable (`maxunreach`, and the newest sample must
 *   not be older than the oldest sample of the reachable sources).
 * - Orphan mode (`local ... orphan`): sources whose stratum is the local stratum or more serve
 *   local time, not real time; they are ignored unless nothing else is selectable, and then only
 *   the reachable one with the smallest reference ID (its address) is used, and only if that ID
 *   is smaller than ours. A group of servers polling each other thus settles on one parent.
 * - When the local reference activates (`distance`, `activate`, `waitsynced`, `waitunsynced`).
 */
import type { Instant } from '../time/ntp-time.js';
import { diffSeconds } from '../time/ntp-time.js';

export interface LocalReferenceOptions {
  stratum: number;
  orphan?: boolean;
  /** Root distance (s) above which the local reference replaces a synchronised source. */
  distance?: number;
  /** Local reference allowed only once the root distance was below this (0: always). */
  activate?: number;
  /** Minimum time (s) since the last clock update before the local reference activates. */
  waitsynced?: number;
  /** Time (s) unsynchronised before it activates (default 300 with orphan, else 0). */
  waitunsynced?: number;
}

/** What the holdover rules need to know of one source. */
export interface HoldoverSource {
  id: string;
  reachable: boolean | undefined;
  /** Consecutive polls with an empty reach register. */
  unreachableRun: number;
  maxunreach: number;
  /** Cooked times of the oldest and newest stored samples, if any. */
  oldest: Instant | undefined;
  newest: Instant | undefined;
  /** Stratum of the newest sample (16 if none). */
  stratum: number;
  /** The source's own reference ID (from its address). */
  refId: number;
  /** Our reference ID as seen by this source (our address towards it); 0 if unknown. */
  localRefId: number;
  noselect: boolean;
}

export const DEFAULT_MAXUNREACH = 100000;

/**
 * Ids of sources with usable statistics under chrony's rules: reachable ones, and unreachable
 * ones not unreachable for more than `maxunreach` polls whose newest sample is at least as new
 * as the oldest sample of every reachable source.
 */
export function holdoverUsable(sources: readonly HoldoverSource[]): Set<string> {
  let oldestReachable: Instant | undefined;
  for (const s of sources) {
    if (s.reachable !== true || s.oldest === undefined) continue;
    if (oldestReachable === undefined || s.oldest < oldestReachable) oldestReachable = s.oldest;
  }
  const out = new Set<string>();
  for (const s of sources) {
    if (s.newest === undefined) continue;
    if (s.reachable === true) out.add(s.id);
    else if (
      s.reachable === false &&
      s.unreachableRun <= s.maxunreach &&
      oldestReachable !== undefined &&
      s.newest >= oldestReachable
    ) {
      out.add(s.id);
    }
  }
  return out;
}

/**
 * Orphan filtering of the usable set. Returns the ids that may be selected and the ids that
 * were excluded as orphans (stratum ≥ the local stratum).
 */
export function orphanFilter(
  sources: readonly HoldoverSource[],
  usable: ReadonlySet<string>,
  localStratum: number,
): { usable: Set<string>; orphans: Set<string> } {
  const out = new Set<string>();
  const orphans = new Set<string>();
  let best: HoldoverSource | undefined;
  let normal = 0;
  for (const s of sources) {
    if (!usable.has(s.id)) continue;
    if (s.stratum >= localStratum) {
      orphans.add(s.id);
      if (s.stratum === localStratum && s.reachable === true && (best === undefined || s.refId < best.refId)) {
        best = s;
      }
      continue;
    }
    out.add(s.id);
    if (!s.noselect) normal++;
  }
  if (normal === 0 && best !== undefined && best.localRefId !== 0 && best.refId < best.localRefId) {
    out.add(best.id);
    orphans.delete(best.id);
  }
  return { usable: out, orphans };
}

/** Tracks when the local reference may be active (activate / waitsynced / waitunsynced). */
export class LocalReferenceGate {
  private activateOk: boolean;
  private unsyncedSince: Instant | undefined;

  constructor(private readonly opts: LocalReferenceOptions) {
    this.activateOk = !(opts.activate !== undefined && opts.activate > 0);
  }

  get waitUnsynced(): number {
    return this.opts.waitunsynced ?? (this.opts.orphan ? 300 : 0);
  }

  /** The clock is (no longer / again) synchronised at `now`. */
  noteSynced(synced: boolean, now: Instant): void {
    if (synced) this.unsyncedSince = undefined;
    else if (this.unsyncedSince === undefined) this.unsyncedSince = now;
  }

  /**
   * Whether the local reference replaces (or stands in for) the real reference at `now`.
   * `distance` is our root distance when synchronised, `lastUpdate` our last clock update.
   */
  active(now: Instant, synced: boolean, distance: number, lastUpdate: Instant | undefined): boolean {
    if (synced && this.opts.activate !== undefined && this.opts.activate > 0 && distance < this.opts.activate) {
      this.activateOk = true;
    }
    if (!this.activateOk) return false;
    if (synced) {
      const waited = lastUpdate === undefined || diffSeconds(now, lastUpdate) >= (this.opts.waitsynced ?? 0);
      return waited && distance > (this.opts.distance ?? 1);
    }
    if (this.unsyncedSince === undefined) this.unsyncedSince = now;
    return diffSeconds(now, this.unsyncedSince) >= this.waitUnsynced;
  }
}
