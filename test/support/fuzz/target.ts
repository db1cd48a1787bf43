/**
 * What a fuzz target is and how one input is judged. A target turns an input into a call of the
 * parser under test and asserts its properties; `runInput` classifies the outcome:
 * - a `PropertyFailure` (a property the target asserts did not hold),
 * - any other exception (a crash: parsers must never throw anything but their documented error),
 * - a slow input (over the target's time bound: a hang or super-linear path).
 * Each failure gets a signature (what, where in src/) so a long run counts distinct bugs.
 */
import type fc from 'fast-check';

export class PropertyFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PropertyFailure';
  }
}

export function expect(cond: unknown, what: string): asserts cond {
  if (!cond) throw new PropertyFailure(what);
}

export interface FuzzTarget<T = unknown> {
  name: string;
  /** One line for the bench table and the test names. */
  description: string;
  arbitrary: fc.Arbitrary<T>;
  /** Judges one input: throws PropertyFailure for a broken property; anything else thrown is a crash. */
  check(input: T): void | Promise<void>;
  /** Bound on the time for one input (ms); default 50. */
  maxMs?: number;
}

export type InputOutcome = { ok: true; ms: number } | { ok: false; ms: number; signature: string; error: unknown };

/** Location of the first stack frame inside src/ (or the first frame at all). */
function where(e: unknown): string {
  const stack = e instanceof Error && e.stack ? e.stack.split('\n').slice(1) : [];
  const frame = stack.find((l) => l.includes('/src/')) ?? stack[0] ?? '';
  const m = /\/((?:src|test)\/[^:)]+):(\d+)/.exec(frame);
  return m ? `${m[1]}:${m[2]}` : '?';
}

/** Stable signature: error class, message with numbers and quoted text masked, origin. */
export function failureSignature(e: unknown): string {
  if (e instanceof PropertyFailure) return `property: ${e.message.replace(/\d+/g, 'N').slice(0, 100)}`;
  const name = e instanceof Error ? e.name : typeof e;
  const msg = (e instanceof Error ? e.message : String(e))
    .split('\n')[0]!
    .replace(/'[^']*'/g, "'…'")
    .replace(/\d+/g, 'N')
    .slice(0, 80);
  return `${name}: ${msg} @ ${where(e)}`;
}

export async function runInput<T>(target: FuzzTarget<T>, input: T): Promise<InputOutcome> {
  const t0 = performance.now();
  try {
    const r = target.check(input);
    if (r instanceof Promise) await r;
  } catch (error) {
    return { ok: false, ms: performance.now() - t0, signature: failureSignature(error), error };
  }
  let ms = performance.now() - t0;
  const limit = target.maxMs ?? 50;
  if (ms > limit) {
    // A GC pause or a busy CPU can stretch one call: slow only if a second run is slow too.
    const t1 = performance.now();
    try {
      await target.check(input);
    } catch {
      // judged above
    }
    ms = Math.min(ms, performance.now() - t1);
  }
  if (ms > limit) {
    return { ok: false, ms, signature: `slow: over ${limit} ms`, error: new Error(`took ${ms.toFixed(1)} ms`) };
  }
  return { ok: true, ms };
}
