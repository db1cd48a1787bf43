/**
 * Suspend/resume and VM migration in the simulator: with the clock jump detector the client
 * steps (makestep) and is back within 1 ms of true time within a few seconds of polls; the same
 * run without the detector shows chrony's classic complaint (makestep's limit is used up, so the
 * error is slewed away slowly, or followed as if it were true).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runSimulation, type NodeResult, type Scenario } from '../../src/sim/simulator.js';
import type { HostEventSpec } from '../../src/sim/host-model.js';

const SERVER = '192.168.100.1';
const CLIENT = '192.168.100.2';
const AT = 7200;

function scenario(host: HostEventSpec[], detectJumps: boolean, seed: number): Scenario {
  return {
    seed,
    duration: AT + 4 * 3600,
    nodes: [
      { address: SERVER, local: { stratum: 1 } },
      {
        address: CLIENT,
        oscillator: { freqPpm: 20 },
        sources: [{ server: SERVER, options: { iburst: true } }],
        discipline: { makestep: { threshold: 0.1, limit: 3 } },
        host,
        detectJumps,
      },
    ],
    path: { baseDelay: 1e-4, jitter: { dist: 'exponential', mean: 2e-5 } },
  };
}

/** First time (s) after `from` from which |offset| stays below `limit` until the end; null if never. */
function settledAt(r: NodeResult, from: number, limit: number): number | null {
  let last: number | null = null;
  for (let i = 0; i < r.times.length; i++) {
    if (r.times[i]! < from) continue;
    if (Math.abs(r.offsets[i]!) >= limit) last = r.times[i]!;
  }
  if (last === null) return from;
  return last >= r.times[r.times.length - 1]! ? null : last + 1;
}

function offsetAt(r: NodeResult, t: number): number {
  return r.offsets[r.times.indexOf(t)]!;
}

for (const seed of [1, 2, 3]) {
  test(`suspend 30 min, clock 0.5 s off on resume: detector steps back within 1 ms (seed ${seed})`, () => {
    const host: HostEventSpec[] = [{ type: 'suspend', at: AT, duration: 1800, clockError: 0.5 }];
    const resume = AT + 1800;
    const withDet = runSimulation(scenario(host, true, seed)).nodes[CLIENT]!;
    const without = runSimulation(scenario(host, false, seed)).nodes[CLIENT]!;
    // The model: the clock really is 0.5 s off after resume (and was fine before the suspend),
    // less at most one second of slewing (chrony's limit, 83 ms/s) if a sample came at once.
    assert.ok(
      Math.abs(offsetAt(without, resume + 1) - 0.5) < 0.085,
      `offset after resume ${offsetAt(without, resume + 1)}`,
    );
    assert.ok(Math.abs(offsetAt(withDet, AT - 1)) < 1e-4);
    const tDet = settledAt(withDet, resume, 1e-3);
    const tNo = settledAt(without, resume, 1e-3);
    console.log(
      `seed ${seed}: with detector back within 1 ms ${tDet === null ? 'never' : `${tDet - resume} s`} after resume ` +
        `(steps ${withDet.steps}); without ${tNo === null ? 'never' : `${tNo - resume} s`} (steps ${without.steps})`,
    );
    assert.ok(tDet !== null && tDet - resume <= 5, `with detector: ${tDet}`);
    assert.equal(withDet.steps, without.steps + 1, 'the detector allowed exactly one more step');
    // Without the detector the 0.5 s is slewed away over minutes (makestep's limit is used up):
    // about two once the runs test notices the jump (127–131 s with seeds 1–3).
    assert.ok(tNo === null || tNo - resume >= 100, `without detector: ${tNo}`);
    assert.ok(Math.abs(offsetAt(without, resume + 100)) > 1e-3);
    // And it stays there.
    assert.ok(Math.abs(withDet.offsets[withDet.offsets.length - 1]!) < 1e-4);
    assert.equal(withDet.engine.jumpStats().count, 1);
  });

  test(`VM migration, clock +2 s: detector steps back within 1 ms (seed ${seed})`, () => {
    const host: HostEventSpec[] = [{ type: 'migrate', at: AT, seconds: 2 }];
    const withDet = runSimulation(scenario(host, true, seed)).nodes[CLIENT]!;
    const without = runSimulation(scenario(host, false, seed)).nodes[CLIENT]!;
    assert.ok(Math.abs(offsetAt(without, AT + 1) - 2) < 0.01);
    const tDet = settledAt(withDet, AT, 1e-3);
    const tNo = settledAt(without, AT, 1e-3);
    console.log(
      `seed ${seed}: migration: with detector ${tDet === null ? 'never' : `${tDet - AT} s`} (steps ${withDet.steps}); ` +
        `without ${tNo === null ? 'never' : `${tNo - AT} s`} (steps ${without.steps})`,
    );
    assert.ok(tDet !== null && tDet - AT <= 5, `with detector: ${tDet}`);
    assert.equal(withDet.engine.jumpStats().count, 1);
    assert.ok(Math.abs(withDet.engine.jumpStats().lastSeconds - 2) < 1e-3);
    assert.ok(tNo === null || tNo - AT >= 100, `without detector: ${tNo}`);
    assert.ok(Math.abs(offsetAt(without, AT + 100)) > 1e-3);
  });
}

test('no host events: the detector reports nothing over hours of steps and slews', () => {
  const sc = scenario([], true, 7);
  // Start 3 s off so the daemon's own initial step happens under the detector.
  sc.nodes[1]!.oscillator = { freqPpm: 20, initialOffset: 3 };
  const r = runSimulation(sc).nodes[CLIENT]!;
  assert.ok(r.steps >= 1, 'the initial step happened');
  assert.equal(r.engine.jumpStats().count, 0);
  assert.ok(Math.abs(r.offsets[r.offsets.length - 1]!) < 1e-4);
});
