/**
 * When a failed selection drops the reference, as chrony 4.x (sources.c SRC_SelectSource,
 * reference.c): only a lost majority of a previously selected source unsynchronises; no
 * selectable source, minsources or require keep the last reference, which ages. Sources without
 * statistics vote only before a first selection.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_SELECTION, selectSources, type Candidate } from '../../src/discipline/selection.js';
import { Discipline } from '../../src/discipline/discipline.js';
import type { ClockAction, NtpSample } from '../../src/engine/types.js';
import { addSeconds, type Instant } from '../../src/time/ntp-time.js';

const opts0 = { prefer: false, noselect: false, trust: false, require: false };
function c(id: string, offset: number, dist: number, over: Partial<Candidate> = {}): Candidate {
  return { id, opts: opts0, usable: true, offset, rootDistance: dist, stdDev: 1e-4, stratum: 1, ...over };
}

test('selection: only a lost majority of a selected source asks to unsynchronise', () => {
  const split = [c('a', 0, 0.01), c('b', 1, 0.01)];
  assert.equal(selectSources(split, DEFAULT_SELECTION, 'a').unsynchronise, true);
  assert.equal(selectSources(split, DEFAULT_SELECTION, 'a').reason, 'no majority');
  // chrony: no selected source before, so REF_SetUnsynchronised is not called.
  assert.equal(selectSources(split, DEFAULT_SELECTION, undefined).unsynchronise, false);
  // No selectable source (all unreachable), minsources, require: the reference is kept.
  const none = selectSources([c('a', 0, 0.01, { usable: false })], DEFAULT_SELECTION, 'a');
  assert.deepEqual([none.reason, none.unsynchronise], ['no sources', false]);
  const few = selectSources([c('a', 0, 0.01)], { ...DEFAULT_SELECTION, minsources: 2 }, 'a');
  assert.deepEqual([few.reason, few.unsynchronise], ['minsources', false]);
  const req = { opts: { ...opts0, require: true } };
  const rq = selectSources([c('a', 0, 0.01), c('b', 0, 0.01), c('r', 1, 0.01, req)], DEFAULT_SELECTION, 'a');
  assert.deepEqual([rq.reason, rq.unsynchronise], ['no required source', false]);
});

test('selection: silent sources vote only before the first selection', () => {
  // Start: 1 answering source of 3 is not yet a majority of all.
  const start = selectSources([c('a', 0, 0.01)], DEFAULT_SELECTION, undefined, 2);
  assert.equal(start.selected, undefined);
  assert.equal(start.reason, 'waiting for sources');
  assert.equal(start.unsynchronise, false);
  assert.equal(selectSources([c('a', 0, 0.01), c('b', 0, 0.01)], DEFAULT_SELECTION, undefined, 1).selected, 'a');
  // Once selected, a source added later (no samples yet) does not take the selection away.
  const later = selectSources([c('a', 0, 0.01)], DEFAULT_SELECTION, 'a', 1);
  assert.equal(later.selected, 'a');
  assert.equal(later.unsynchronise, false);
});

const T0: Instant = 1_767_225_600_000_000_000n;
const sopts = { prefer: false, noselect: false, trust: false, require: false };

function sample(time: Instant, offset: number): NtpSample {
  return {
    time,
    offset,
    delay: 2e-4,
    dispersion: 1e-6,
    rootDelay: 1e-3,
    rootDispersion: 2e-3,
    stratum: 1,
    leap: 0,
    refId: 0x47505300,
    refTime: time,
    poll: 2,
    interleaved: false,
  };
}

function statuses(d: Discipline): ClockAction[] {
  const out: ClockAction[] = [];
  for (let a = d.pollClockAction(); a; a = d.pollClockAction()) if (a.type === 'status') out.push(a);
  return out;
}

function syncedDiscipline(): { d: Discipline; t: Instant } {
  const d = new Discipline({ correction: 'instant' });
  d.addSource('a', { ...sopts, refId: 0x0a000001, name: 'a' });
  let t = T0;
  for (let i = 0; i < 10; i++) {
    t = addSeconds(T0, 4 * i);
    d.setReachable('a', true);
    d.addSample('a', sample(t, 1e-5 * (i % 2)), t);
    d.update(t);
  }
  assert.ok(d.synchronized);
  return { d, t };
}

test('discipline: an unreachable only source keeps the reference, which ages', () => {
  const { d, t } = syncedDiscipline();
  const r0 = d.reference(t);
  statuses(d);
  // The reach register empties: the source is not selectable any more.
  const t1 = addSeconds(t, 32);
  d.setReachable('a', false);
  d.update(t1);
  assert.equal(d.selected, undefined);
  assert.equal(d.selectionFailure, 'no sources');
  assert.equal(d.synchronized, true);
  assert.deepEqual(statuses(d), [], 'no status change');
  const r1 = d.reference(t1);
  const r2 = d.reference(addSeconds(t1, 60));
  for (const r of [r1, r2]) {
    assert.equal(r.synchronized, true);
    assert.equal(r.leap, 0);
    assert.equal(r.stratum, r0.stratum);
    assert.equal(r.refTime, r0.refTime);
  }
  // chrony: + elapsed × (skew + |residual frequency| + maxclockerror), maxclockerror 1 ppm.
  const rate = (r2.rootDispersion - r1.rootDispersion) / 60;
  assert.ok(rate >= 1e-6 + d.skewPpm * 1e-6 - 1e-12, `dispersion rate ${rate}`);
  assert.equal(d.tracking(t1).leapStatus, 'Normal');
  // It answers again: selected and updated.
  const t2 = addSeconds(t1, 60);
  d.setReachable('a', true);
  d.addSample('a', sample(t2, 0), t2);
  d.update(t2);
  assert.equal(d.selected, 'a');
  assert.ok(d.reference(t2).rootDispersion < r2.rootDispersion);
});

test('discipline: a clock jump still unsynchronises (chrony: unknown step)', () => {
  const { d, t } = syncedDiscipline();
  statuses(d);
  d.clockJumped(addSeconds(t, 5));
  assert.equal(d.synchronized, false);
  assert.equal(d.reference(addSeconds(t, 5)).leap, 3);
  assert.ok(statuses(d).some((a) => a.type === 'status' && !a.synchronized));
});
