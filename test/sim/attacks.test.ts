/**
 * Lying sources in the simulator, each test named with its expected outcome, which is chrony's
 * (sources.c, reference.c in chrony 4.3):
 * - selection keeps the largest set of sources whose intervals (offset ± root distance) overlap,
 *   and synchronises only if that set is a majority. Three liars of five that agree with each
 *   other ARE the majority: chrony follows them, and so do we; `trust` on the honest sources is
 *   the defence (with trusted sources, chrony takes the interval holding most of them). Three
 *   liars that disagree leave no majority: no synchronisation, the clock is left alone.
 * - `makestep threshold limit` steps only in the first `limit` clock updates. A source that later
 *   jumps by hours is followed by slewing at most `maxslewrate` (83.3 ms/s); `maxchange offset
 *   start ignore` refuses such updates (chronyd exits after `ignore` of them; rubidiumd keeps
 *   refusing and says why, src/discipline/maxchange.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runSimulation, type NodeSpec } from '../../src/sim/simulator.js';
import type { DisciplineOptions } from '../../src/discipline/discipline.js';

const PATH = { baseDelay: 1e-4, jitter: { dist: 'exponential' as const, mean: 1e-4 } };

function fiveServers(lies: (number | null)[], trustHonest: boolean, duration: number, seed = 3) {
  const servers: NodeSpec[] = lies.map((lie, i) => ({
    address: `10.0.0.${i + 1}`,
    local: { stratum: 1 },
    ...(lie !== null ? { lie: { offset: lie } } : {}),
  }));
  const client: NodeSpec = {
    address: '10.0.1.1',
    oscillator: { freqPpm: 0, wander: 1e-10, initialOffset: 0.01 },
    sources: servers.map((s, i) => ({
      server: s.address,
      options: trustHonest && lies[i] === null ? { trust: true } : {},
    })),
  };
  let everSynced = false;
  let maxAbs = 0;
  const r = runSimulation({
    seed,
    duration,
    path: PATH,
    nodes: [...servers, client],
    onSample: (_t, v) => {
      if (v[0]!.engine.disciplineState.synchronized) everSynced = true;
      maxAbs = Math.max(maxAbs, Math.abs(v[0]!.offset));
    },
  });
  const c = r.clients[0]!;
  return {
    c,
    everSynced,
    maxAbs,
    final: c.offsets[c.offsets.length - 1]!,
    states: c.sources.map((s) => s.state).join(''),
  };
}

test('3 liars of 5 agreeing with each other (+0.5 s): like chrony, the majority wins; the 2 honest sources are falsetickers', () => {
  const { everSynced, final, states } = fiveServers([0.5, 0.5, 0.5, null, null], false, 4000);
  assert.ok(everSynced, 'synchronised (to the liars)');
  assert.equal(states.slice(3), 'xx', states);
  for (const s of states.slice(0, 3)) assert.ok('*+-'.includes(s), states);
  assert.ok(Math.abs(final - 0.5) < 0.01, `offset ${final} (follows the agreeing liars)`);
});

test('3 agreeing liars of 5 but the 2 honest sources have `trust`: follows the truth, the liars are falsetickers', () => {
  const { c, final, states, maxAbs } = fiveServers([0.5, 0.5, 0.5, null, null], true, 4000);
  console.log(`trust: final ${final} max ${maxAbs} states ${states}`);
  assert.ok(c.syncTime !== null, 'synchronised');
  assert.equal(states.slice(0, 3), 'xxx', states);
  assert.ok(Math.abs(final) < 1e-3, `offset ${final}`);
  assert.ok(maxAbs < 0.02, `never steered toward the liars: max |offset| ${maxAbs}`);
});

test('3 liars of 5 disagreeing with each other: no majority, never synchronised, the clock is never steered', () => {
  const { everSynced, maxAbs, states } = fiveServers([0.5, -0.8, 1.5, null, null], false, 4000);
  assert.equal(everSynced, false, states);
  assert.ok(maxAbs < 0.02, `max |offset| ${maxAbs} (initial 0.01)`);
});

function steppingSource(discipline: DisciplineOptions) {
  const server: NodeSpec = { address: '10.0.0.1', local: { stratum: 1 }, lie: { offset: 3 * 3600, at: 2000 } };
  const client: NodeSpec = {
    address: '10.0.1.1',
    oscillator: { freqPpm: 0, wander: 1e-10, initialOffset: 5 },
    sources: [{ server: server.address, options: { minpoll: 4, maxpoll: 6 } }],
    discipline: { makestep: { threshold: 1, limit: 3 }, ...discipline },
  };
  let before = 0;
  let after = 0;
  const r = runSimulation({
    seed: 5,
    duration: 2600,
    path: PATH,
    nodes: [server, client],
    onSample: (t, v) => {
      if (t > 1000 && t < 2000) before = Math.max(before, Math.abs(v[0]!.offset));
      if (t >= 2000) after = Math.max(after, Math.abs(v[0]!.offset));
    },
  });
  return { c: r.clients[0]!, before, after };
}

test('a source stepping by 3 hours after sync, makestep 1 3: the clock is never stepped again, only slewed (≤ 83.3 ms/s)', () => {
  const { c, before, after } = steppingSource({});
  console.log(`no maxchange: before ${before} after ${after} steps ${c.steps}`);
  assert.equal(c.steps, 1, 'one step: the initial 5 s, within the first 3 updates');
  assert.ok(before < 1e-3, `synchronised before the jump: ${before}`);
  // 600 s after the jump: far from the 10800 s lie, within what slewing allows.
  assert.ok(after <= 600 * 0.0834, `moved ${after} s in 600 s`);
  assert.ok(after > 1, 'it does follow its only source, slowly (as chrony)');
});

test('a source stepping by 3 hours after sync, with maxchange 1000 1 2: every such update refused, the clock stays on time', () => {
  const { c, before, after } = steppingSource({ maxchange: { offset: 1000, start: 1, ignore: 2 } });
  assert.equal(c.steps, 1);
  assert.ok(before < 1e-3, `synchronised before the jump: ${before}`);
  assert.ok(after < 0.01, `max |offset| after the jump ${after}`);
});
