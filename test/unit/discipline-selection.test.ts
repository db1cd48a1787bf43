import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_SELECTION, largestOverlap, selectSources, type Candidate } from '../../src/discipline/selection.js';

const opts0 = { prefer: false, noselect: false, trust: false, require: false };
function c(
  id: string,
  offset: number,
  dist: number,
  over: Partial<Candidate> & { o?: Partial<typeof opts0> } = {},
): Candidate {
  return {
    id,
    opts: { ...opts0, ...(over.o ?? {}) },
    usable: true,
    offset,
    rootDistance: dist,
    stdDev: 1e-4,
    stratum: 1,
    ...over,
  };
}

test('largest overlap (Marzullo) by endpoint sweep', () => {
  const r = largestOverlap([
    { lo: 8, hi: 12 },
    { lo: 11, hi: 13 },
    { lo: 10, hi: 12 },
  ])!;
  assert.deepEqual([r.lo, r.hi, r.depth], [11, 12, 3]);
  // Touching intervals intersect.
  const t = largestOverlap([
    { lo: 0, hi: 1 },
    { lo: 1, hi: 2 },
  ])!;
  assert.deepEqual([t.lo, t.hi, t.depth], [1, 1, 2]);
  const d = largestOverlap([
    { lo: 0, hi: 1 },
    { lo: 2, hi: 3 },
  ])!;
  assert.equal(d.depth, 1);
});

test('falsetickers are marked x, truechimers combined', () => {
  const r = selectSources([
    c('a', 0, 0.01),
    c('b', 0.002, 0.01),
    c('c', -0.003, 0.02),
    c('d', 0.5, 0.01),
    c('e', -0.4, 0.01),
  ]);
  assert.equal(r.reason, '');
  assert.equal(r.states.get('d'), 'x');
  assert.equal(r.states.get('e'), 'x');
  assert.equal(r.selected, 'a');
  assert.equal(r.states.get('a'), '*');
  assert.equal(r.states.get('b'), '+');
  assert.equal(r.states.get('c'), '+');
  assert.deepEqual(r.combined.sort(), ['a', 'b', 'c']);
});

test('no majority: no selection', () => {
  const r = selectSources([
    c('a', 0, 0.01),
    c('b', 0.001, 0.01),
    c('c', 0.5, 0.01),
    c('d', -0.5, 0.01),
    c('e', 1.5, 0.01),
  ]);
  assert.equal(r.selected, undefined);
  assert.equal(r.reason, 'no majority');
  assert.equal(r.states.get('c'), 'x');
  // Two against two is no majority either.
  const r2 = selectSources([c('a', 0, 0.01), c('b', 0.001, 0.01), c('c', 0.5, 0.01), c('d', 0.501, 0.01)]);
  assert.equal(r2.selected, undefined);
  // Pending voters (sources not heard from yet) count.
  const r3 = selectSources([c('a', 0, 0.01), c('b', 0.001, 0.01), c('c', 0.5, 0.01)], DEFAULT_SELECTION, undefined, 2);
  assert.equal(r3.selected, undefined);
  const r4 = selectSources([c('a', 0, 0.01), c('b', 0.001, 0.01), c('c', 0.5, 0.01)]);
  assert.equal(r4.selected, 'a');
});

test('unusable, noselect, maxdistance and jitter states', () => {
  const r = selectSources([
    c('a', 0, 0.01),
    c('n', 0, 0.01, { o: { noselect: true } }),
    c('far', 0, 5),
    c('u', 0, 0.01, { usable: false }),
    c('j', 0, 0.01, { stdDev: 2 }),
  ]);
  assert.equal(r.selected, 'a');
  assert.equal(r.states.get('n'), '?');
  assert.equal(r.states.get('far'), '?');
  assert.equal(r.states.get('u'), '?');
  assert.equal(r.states.get('j'), '~');
});

test('trust, prefer, require, minsources, combinelimit, reselect hysteresis', () => {
  // A trusted source alone outweighs two agreeing untrusted ones.
  const t = selectSources([c('t', 0, 0.01, { o: { trust: true } }), c('b', 1, 0.01), c('c', 1.001, 0.01)]);
  assert.equal(t.selected, 't');
  assert.equal(t.states.get('b'), 'x');
  // prefer wins over a better distance.
  const p = selectSources([c('a', 0, 0.001), c('p', 0, 0.01, { o: { prefer: true } }), c('b', 0, 0.002)]);
  assert.equal(p.selected, 'p');
  assert.equal(p.states.get('a'), '-');
  // require: no selection unless a required source is a truechimer.
  const rq = selectSources([c('a', 0, 0.01), c('b', 0, 0.01), c('r', 5, 0.01, { o: { require: true } })]);
  assert.equal(rq.selected, undefined);
  assert.equal(rq.reason, 'no required source');
  // minsources.
  const m = selectSources([c('a', 0, 0.01), c('b', 0, 0.01)], { ...DEFAULT_SELECTION, minsources: 3 });
  assert.equal(m.selected, undefined);
  assert.equal(m.reason, 'minsources');
  // combinelimit: distance beyond 3x the best is not combined.
  const cl = selectSources([c('a', 0, 0.01), c('b', 0, 0.02), c('z', 0, 0.05)]);
  assert.equal(cl.states.get('b'), '+');
  assert.equal(cl.states.get('z'), '-');
  // Hysteresis: the previous system peer stays unless another is better by reselectdist.
  const h = selectSources([c('a', 0, 0.01), c('b', 0, 0.01005)], DEFAULT_SELECTION, 'b');
  assert.equal(h.selected, 'b');
  const h2 = selectSources([c('a', 0, 0.01), c('b', 0, 0.02)], DEFAULT_SELECTION, 'b');
  assert.equal(h2.selected, 'a');
});
