/**
 * A short outage of the only source, as in bench/accuracy's `intermittent` scenario (link down
 * 60 s of every 120 s, minpoll 2 maxpoll 4). chronyd 4.3 keeps its last reference through it:
 * the unreachable source merely stops being selectable ("Can't synchronise: no selectable
 * sources", which does not call REF_SetUnsynchronised), so it serves LI=0 at the same stratum
 * with a root dispersion growing by (skew + |residual freq| + maxclockerror) per second.
 * We must do the same: LI=3 would make clients drop our time while it is still good.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runSimulation, type Scenario } from '../../src/sim/simulator.js';
import type { ReferenceState } from '../../src/engine/types.js';

const SERVER = '192.168.100.1';
const CLIENT = '192.168.100.2';
const DOWN: [number, number][] = [
  [100, 160],
  [220, 280],
];

interface Seen {
  t: number;
  ref: ReferenceState;
  selected: string | undefined;
  offset: number;
}

function run(seed: number, maxpoll: number): Seen[] {
  const seen: Seen[] = [];
  const link = { baseDelay: 1e-4, jitter: { dist: 'exponential' as const, mean: 5e-5 }, down: DOWN };
  const sc: Scenario = {
    seed,
    duration: 330,
    nodes: [
      { address: SERVER, local: { stratum: 1 } },
      {
        address: CLIENT,
        oscillator: { freqPpm: 3 },
        sources: [{ server: SERVER, options: { iburst: true, minpoll: 2, maxpoll } }],
        discipline: { makestep: { threshold: 1, limit: 3 } },
      },
    ],
    links: { [`${CLIENT}->${SERVER}`]: link, [`${SERVER}->${CLIENT}`]: link },
    onSample: (t, nodes) => {
      const n = nodes.find((v) => v.address === CLIENT)!;
      const now = n.clock.now();
      seen.push({
        t,
        ref: n.engine.serverReference(now),
        selected: n.engine.disciplineState.selected,
        offset: n.offset,
      });
    },
  };
  runSimulation(sc);
  return seen;
}

const inOutage = (t: number): boolean => DOWN.some(([a, b]) => t >= a && t < b);

// maxpoll 2: the poll stays at 4 s, so the reach register surely empties during the outage.
// maxpoll 4: the bench's configuration (the poll may have grown to 16 s before the outage).
for (const [seed, maxpoll] of [
  [1, 2],
  [2, 2],
  [1, 4],
  [2, 4],
] as const) {
  test(`outage of the only source: LI=0, same stratum, growing dispersion (seed ${seed}, maxpoll ${maxpoll})`, () => {
    const seen = run(seed, maxpoll);
    const before = seen.find((s) => s.t === 95)!;
    assert.equal(before.ref.synchronized, true);
    assert.equal(before.ref.leap, 0);
    assert.equal(before.ref.stratum, 2);

    // The source's reach register empties 8 polls (32 s at 4 s) into each outage: from then on
    // it is not selectable, but the reference is kept.
    for (const [a, b] of DOWN) {
      const during = seen.filter((s) => s.t >= a && s.t < b);
      const li3 = during.filter((s) => s.ref.leap === 3 || !s.ref.synchronized).length;
      assert.equal(li3, 0, `outage ${a}-${b} s: ${li3} s served unsynchronised`);
      for (const s of during) assert.equal(s.ref.stratum, 2, `stratum at ${s.t} s`);
      assert.ok(
        maxpoll > 2 || during.some((s) => s.selected === undefined),
        `outage ${a}-${b} s: the unreachable source should stop being selectable`,
      );
      // Dispersion grows monotonically without updates, by at least maxclockerror (1 ppm) per s.
      const last = during[during.length - 1]!;
      const stale = during.filter((s) => s.t >= a + 40);
      for (let i = 1; i < stale.length; i++) {
        assert.ok(stale[i]!.ref.rootDispersion > stale[i - 1]!.ref.rootDispersion, `dispersion at ${stale[i]!.t} s`);
      }
      const grown = last.ref.rootDispersion - stale[0]!.ref.rootDispersion;
      assert.ok(grown >= 1e-6 * (last.t - stale[0]!.t), `dispersion grew only ${grown} s`);
      assert.equal(last.ref.refTime, stale[0]!.ref.refTime, 'no reference update during the outage');
      // The time served meanwhile is still good (3 ppm clock, frequency kept).
      assert.ok(Math.abs(last.offset) < 1e-4, `offset at the end of the outage ${last.offset}`);
    }

    // After each outage the source is selected again and the reference updated.
    for (const [, b] of DOWN) {
      const after = seen.filter((s) => s.t >= b + 30 && s.t < b + 40);
      assert.ok(after.every((s) => s.selected !== undefined && s.ref.leap === 0));
    }
    assert.ok(seen.filter((s) => !inOutage(s.t) && s.t > 20).every((s) => s.ref.synchronized));
  });
}
