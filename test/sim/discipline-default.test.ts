/**
 * chrony's default simulation scenario (test/simulation defaults): one stratum-1 server, 100 µs
 * base delay, 100 µs exponential jitter each way, client oscillator 100 ppm fast with 1e-9
 * random-walk wander, 0.1 s initial offset, 10000 s, chrony default polling (minpoll 6, no
 * iburst) and no makestep: the offset is slewed. Pass limits as chrony's: sync ≤ 210 s, then
 * max |offset| ≤ 1 ms, RMS offset ≤ 300 µs, RMS frequency error ≤ 10 ppm.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatResult, runSimulation, type Scenario } from '../../src/sim/simulator.js';

function defaultScenario(seed: number): Scenario {
  return {
    seed,
    duration: 10000,
    path: { baseDelay: 1e-4, jitter: { dist: 'exponential', mean: 1e-4 } },
    nodes: [
      { address: '192.168.123.1', local: { stratum: 1 } },
      {
        address: '192.168.123.2',
        oscillator: { freqPpm: 100, wander: 1e-9, initialOffset: 0.1 },
        sources: [{ server: '192.168.123.1' }],
      },
    ],
  };
}

for (const seed of [1, 2, 3, 4, 5]) {
  test(`chrony default scenario, seed ${seed}`, () => {
    const r = runSimulation(defaultScenario(seed));
    const c = r.clients[0]!;
    console.log(`default seed=${seed} ${formatResult(c)}`);
    assert.notEqual(c.syncTime, null);
    assert.ok(c.syncTime! <= 210, `sync ${c.syncTime}`);
    assert.ok(c.maxOffset <= 1e-3, `max offset ${c.maxOffset}`);
    assert.ok(c.rmsOffset <= 3e-4, `rms offset ${c.rmsOffset}`);
    assert.ok(c.rmsFreq <= 1e-5, `rms freq ${c.rmsFreq}`);
    assert.ok(c.maxFreq <= 5e-4, `max freq ${c.maxFreq}`);
    assert.equal(c.steps, 0, 'no makestep configured: slew only');
    assert.equal(c.tracking.stratum, 2);
    assert.equal(c.tracking.leapStatus, 'Normal');
    assert.ok(Math.abs(c.tracking.frequencyPpm - 100) < 1, `tracking freq ${c.tracking.frequencyPpm}`);
    assert.equal(c.sources[0]!.state, '*');
  });
}

test('simulation is deterministic for a seed', () => {
  const a = runSimulation({ ...defaultScenario(9), duration: 2000 });
  const b = runSimulation({ ...defaultScenario(9), duration: 2000 });
  assert.deepEqual(a.clients[0]!.offsets, b.clients[0]!.offsets);
  const c = runSimulation({ ...defaultScenario(10), duration: 2000 });
  assert.notDeepEqual(a.clients[0]!.offsets, c.clients[0]!.offsets);
});
