/**
 * Five servers, some of them lying (each by a different offset, as in chrony's falseticker
 * tests): with two liars the client must follow the three honest servers; with three it has no
 * majority and must refuse to synchronise, never steering its clock toward anyone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatResult, runSimulation, type NodeSpec } from '../../src/sim/simulator.js';

const LIES = [0.5, -0.8, 1.5, -2.5];

function scenario(liars: number, seed: number) {
  const servers: NodeSpec[] = [];
  for (let i = 0; i < 5; i++) {
    servers.push({
      address: `10.0.0.${i + 1}`,
      local: { stratum: 1 },
      ...(i < liars ? { lie: { offset: LIES[i]! } } : {}),
    });
  }
  const client: NodeSpec = {
    address: '10.0.1.1',
    oscillator: { freqPpm: 100, wander: 1e-9, initialOffset: 0.1 },
    sources: servers.map((s) => ({ server: s.address })),
  };
  let everSynced = false;
  let maxAbsOffset = 0;
  const r = runSimulation({
    seed,
    duration: 10000,
    path: { baseDelay: 1e-4, jitter: { dist: 'exponential', mean: 1e-4 } },
    nodes: [...servers, client],
    onSample: (_t, v) => {
      if (v[0]!.engine.disciplineState.synchronized) everSynced = true;
      maxAbsOffset = Math.max(maxAbsOffset, Math.abs(v[0]!.offset));
    },
  });
  return { r, c: r.clients[0]!, everSynced, maxAbsOffset };
}

for (const liars of [1, 2]) {
  test(`five servers, ${liars} falsetickers: synchronised to the truth`, () => {
    for (const seed of [1, 2]) {
      const { c } = scenario(liars, seed);
      console.log(
        `falsetickers=${liars} seed=${seed} ${formatResult(c)} states=${c.sources.map((s) => s.state).join('')}`,
      );
      assert.ok(c.syncTime !== null && c.syncTime <= 210, `sync ${c.syncTime}`);
      assert.ok(c.maxOffset <= 1e-3 && c.rmsOffset <= 3e-4, `${c.maxOffset} ${c.rmsOffset}`);
      for (let i = 0; i < liars; i++) assert.equal(c.sources[i]!.state, 'x', `liar ${i}`);
      for (let i = liars; i < 5; i++)
        assert.ok('*+-'.includes(c.sources[i]!.state), `honest ${i}: ${c.sources[i]!.state}`);
      assert.equal(c.steps, 0);
    }
  });
}

for (const liars of [3, 4]) {
  test(`five servers, ${liars} falsetickers: refuses to synchronise`, () => {
    const { c, everSynced } = scenario(liars, 1);
    console.log(
      `falsetickers=${liars} ${formatResult(c)} everSynced=${everSynced} reason="${c.engine.disciplineState.selectionFailure}" ` +
        `states=${c.sources.map((s) => s.state).join('')}`,
    );
    assert.equal(everSynced, false);
    assert.equal(c.engine.disciplineState.selectionFailure, 'no majority');
    assert.equal(c.steps, 0);
    assert.equal(c.clock.getFrequency(), 0, 'the clock was never steered');
    // Free-running: 0.1 s + 100 ppm × t, exactly as the oscillator goes (wander aside).
    const end = c.offsets[c.offsets.length - 1]!;
    assert.ok(Math.abs(end - (0.1 + 100e-6 * 10000)) < 1e-3, `end offset ${end}`);
    assert.equal(c.tracking.leapStatus, 'Not synchronised');
    assert.ok(c.sources.filter((s) => s.state === 'x').length >= 1);
  });
}
