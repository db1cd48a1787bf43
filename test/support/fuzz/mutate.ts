/**
 * Mutation of real captured inputs as fast-check arbitraries: a seed picked from a list, then a
 * short list of byte-level edits (bit flips, byte set/insert/delete, 16-bit length-field edits,
 * truncation, splicing with another seed, duplication of a range). Shrinking removes edits, so a
 * failure is reported as the smallest edit list that still breaks the parser.
 */
import fc from 'fast-check';

export type Mutation =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'set'; at: number; value: number }
  | { op: 'insert'; at: number; bytes: Uint8Array }
  | { op: 'delete'; at: number; count: number }
  | { op: 'length16'; at: number; value: number }
  | { op: 'truncate'; at: number }
  | { op: 'splice'; at: number; other: number; from: number }
  | { op: 'repeat'; at: number; count: number };

/** Interesting 16-bit values for length fields: boundaries around common sizes. */
const LENGTHS = [0, 1, 3, 4, 12, 15, 16, 17, 20, 24, 28, 32, 44, 48, 68, 72, 104, 0x7fff, 0x8000, 0xfffc, 0xffff];

// Positions are fractions of the input length (0..0xffff), so one edit list fits any seed.
const pos = fc.integer({ min: 0, max: 0xffff });
const at = (p: number, len: number): number => Math.floor((p / 0x10000) * (len + 1));

export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({ op: fc.constant('flip' as const), at: pos, bit: fc.integer({ min: 0, max: 7 }) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant('set' as const), at: pos, value: fc.integer({ min: 0, max: 255 }) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('insert' as const),
      at: pos,
      bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant('delete' as const), at: pos, count: fc.integer({ min: 1, max: 8 }) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('length16' as const),
      at: pos,
      value: fc.oneof(fc.constantFrom(...LENGTHS), fc.integer({ min: 0, max: 0xffff })),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('truncate' as const), at: pos }) },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant('splice' as const), at: pos, other: fc.nat(), from: pos }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant('repeat' as const), at: pos, count: fc.integer({ min: 1, max: 64 }) }),
  },
);

/** Applies edits to a copy of `seed`; `others` feeds splicing. Output is capped at `maxLength`. */
export function applyMutations(
  seed: Uint8Array,
  edits: readonly Mutation[],
  others: readonly Uint8Array[],
  maxLength = 4096,
): Uint8Array {
  let b: Uint8Array = Uint8Array.from(seed);
  for (const m of edits) {
    const i = at(m.at, b.length);
    switch (m.op) {
      case 'flip':
        if (i < b.length) b[i]! ^= 1 << m.bit;
        break;
      case 'set':
        if (i < b.length) b[i] = m.value;
        break;
      case 'insert':
        b = concat(b.subarray(0, i), m.bytes, b.subarray(i));
        break;
      case 'delete':
        b = concat(b.subarray(0, i), b.subarray(i + m.count));
        break;
      case 'length16': {
        // Length fields sit on even offsets in every format fuzzed here.
        const j = i & ~1;
        if (j + 1 < b.length) {
          b[j] = m.value >>> 8;
          b[j + 1] = m.value & 0xff;
        }
        break;
      }
      case 'truncate':
        b = b.slice(0, i);
        break;
      case 'splice': {
        const o = others.length ? others[m.other % others.length]! : seed;
        b = concat(b.subarray(0, i), o.subarray(at(m.from, o.length)));
        break;
      }
      case 'repeat': {
        const piece = b.subarray(i, Math.min(b.length, i + 16));
        const parts: Uint8Array[] = [b.subarray(0, i)];
        for (let k = 0; k < m.count; k++) parts.push(piece);
        parts.push(b.subarray(i));
        b = concat(...parts);
        break;
      }
    }
    if (b.length > maxLength) b = b.slice(0, maxLength);
  }
  return b;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** A real seed, mutated by 0..maxEdits edits (0 edits keeps the seed itself in the mix). */
export function mutatedBytes(seeds: readonly Uint8Array[], maxEdits = 6, maxLength = 4096): fc.Arbitrary<Uint8Array> {
  if (seeds.length === 0) throw new Error('mutatedBytes: no seeds');
  return fc
    .tuple(fc.nat({ max: seeds.length - 1 }), fc.array(mutationArb, { maxLength: maxEdits }))
    .map(([k, edits]) => applyMutations(seeds[k]!, edits, seeds, maxLength));
}

/** Text seeds mutated as UTF-8 bytes (config files, JSON): the decoder sees what a file would hold. */
export function mutatedText(seeds: readonly string[], maxEdits = 6, maxLength = 8192): fc.Arbitrary<string> {
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  return mutatedBytes(
    seeds.map((s) => enc.encode(s)),
    maxEdits,
    maxLength,
  ).map((b) => dec.decode(b));
}
