/**
 * Start-up frequency from the iburst (docs/discipline.md, "The convergence tail after start-up"):
 * the first frequency the servo keeps for a whole poll comes from the burst's samples, and its
 * error is set by their span. With 4 samples 1 s apart (chrony's iburst) it is ±8 ppm median,
 * ±20 ppm at the 90th percentile, held for the 4-s poll that follows: one seed in five then went
 * above 100 µs between 4 and 20 s. 8 samples (ntpd's iburst count) span 7 s.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findScenario } from '../../bench/accuracy/scenarios.js';
import { buildSimScenario, figures } from '../../bench/accuracy/sim-scenarios.js';
import { runSimulation } from '../../src/sim/simulator.js';

const CLIENT = '10.77.0.2';

/** Per seed: convergence (|error| < 100 µs for good; never: Infinity) and the peak |error| from 2 s on. */
function startUp(name: string, seeds: number): { conv: number[]; peak: number[] } {
  const conv: number[] = [];
  const peak: number[] = [];
  for (let seed = 1; seed <= seeds; seed++) {
    const f = figures(runSimulation(buildSimScenario(findScenario(name)!, seed, 60)).nodes[CLIENT]!, 2);
    conv.push(f.converged ?? Infinity);
    peak.push(f.max * 1e6);
  }
  const asc = (a: number, b: number): number => a - b;
  return { conv: conv.sort(asc), peak: peak.sort(asc) };
}

test('quiet LAN start-up: 9 of 10 seeds stay within 100 µs after the first second', () => {
  const { conv, peak } = startUp('quiet-lan', 20);
  console.log(`quiet-lan convergence (s), 20 seeds: ${conv.join(' ')}`);
  console.log(`quiet-lan peak |error| from 2 s (µs): ${peak.map((p) => p.toFixed(0)).join(' ')}`);
  // With a 4-sample burst: 18th of 20 at 7 s, median peak 76 µs (100 seeds: 90th percentile
  // 7.5 s, median peak 64 µs); with 8 samples 0.5 s and 50 µs (100 seeds: 0.5 s, 45 µs).
  assert.ok(conv[17]! <= 2, `18th of 20: ${conv[17]} s`);
  assert.ok(peak[10]! < 60, `median peak ${peak[10]!.toFixed(1)} µs`);
});
