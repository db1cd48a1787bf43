/**
 * The real-network accuracy scenarios (bench/accuracy/scenarios.ts) rebuilt in the simulator by
 * bench/accuracy/sim-scenarios.ts, for the start-up and bias figures the real bench measured.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findScenario } from '../../bench/accuracy/scenarios.js';
import { buildSimScenario, figures, outageWindows } from '../../bench/accuracy/sim-scenarios.js';
import { runSimulation } from '../../src/sim/simulator.js';

const CLIENT = '10.77.0.2';

function convergence(name: string, seeds: number, initialSkewPpm?: number): number[] {
  const s = findScenario(name)!;
  const out: number[] = [];
  for (let seed = 1; seed <= seeds; seed++) {
    const sc = buildSimScenario(s, seed, 60);
    if (initialSkewPpm !== undefined) sc.nodes[sc.nodes.length - 1]!.discipline!.initialSkewPpm = initialSkewPpm;
    out.push(figures(runSimulation(sc).nodes[CLIENT]!, 20).converged ?? Infinity);
  }
  return out.sort((a, b) => a - b);
}

test('the simulated bench client starts as the real one: 0.5 s and 50 ppm off in cold-start', () => {
  const sc = buildSimScenario(findScenario('cold-start')!, 1, 60);
  const client = sc.nodes[sc.nodes.length - 1]!;
  assert.deepEqual(client.oscillator, { initialOffset: -0.5, freqPpm: -50, wander: 1e-9 });
  assert.deepEqual(client.discipline, { correction: 'instant', makestep: { threshold: 1, limit: 3 } });
  assert.deepEqual(client.sources?.[0]?.options, { iburst: true, minpoll: 2, maxpoll: 4 });
  assert.deepEqual(outageWindows(findScenario('intermittent')!, 300), [
    [60, 120],
    [180, 240],
  ]);
});

test('cold start without a drift file: |error| < 100 µs within a few seconds', () => {
  // rubidiumd started the servo with a 1 ppm skew when there was no drift file: it then trusted
  // a frequency of 0 and took ~11 s to learn 50 ppm (real bench: 11.8 s vs chronyd's 2.8 s).
  // With the 8-sample iburst the first fit no longer depends on that prior (all seeds 0.5 s with
  // either skew), so the test pins the outcome only.
  const conv = convergence('cold-start', 10);
  console.log(`cold-start convergence (s), 10 seeds: ${conv.join(' ')}`);
  assert.ok(conv[5]! <= 2, `median ${conv[5]} s`);
  // All 10 within 5 s. With the 4-sample iburst the slowest was one early excursion above
  // 100 µs (10 s; quiet-lan over 100 seeds: 90 % within 7.5 s, the slowest 19.5 s).
  assert.ok(conv[9]! <= 5, `slowest of 10: ${conv[9]} s`);
});

test('asymmetric path (exp 500 µs up, 50 µs down): no mean bias over many runs', () => {
  // The real bench once showed +45 µs in one run; over 40 simulated runs the mean of the per-run
  // means stays within a few µs of 0 once the asymmetry correction has had time to act.
  const s = findScenario('asymmetric')!;
  let sum = 0;
  let sum2 = 0;
  const n = 40;
  for (let seed = 1; seed <= n; seed++) {
    const f = figures(runSimulation(buildSimScenario(s, seed, 200)).nodes[CLIENT]!, 60);
    sum += f.mean;
    sum2 += f.rms * f.rms;
  }
  const mean = sum / n;
  const rms = Math.sqrt(sum2 / n);
  console.log(`asymmetric, ${n} runs of 200 s: mean ${(mean * 1e6).toFixed(1)} µs, RMS ${(rms * 1e6).toFixed(1)} µs`);
  assert.ok(Math.abs(mean) < 10e-6, `mean bias ${mean}`);
  assert.ok(rms < 60e-6, `RMS ${rms}`);
});

test('jittery paths: the minimum-delay corridor keeps the RMS error well below the regression alone', () => {
  // 240-s runs, 80-s warm-up as the real bench, 20 seeds. With the weighted regression alone
  // (before the corridor) the same runs gave 75 µs (busy-lan) and 32 µs (asymmetric); now 36 and 17.
  const rms = (name: string): number => {
    let sum2 = 0;
    for (let seed = 1; seed <= 20; seed++) {
      const f = figures(runSimulation(buildSimScenario(findScenario(name)!, seed, 240)).nodes[CLIENT]!, 80);
      sum2 += f.rms * f.rms;
    }
    return Math.sqrt(sum2 / 20);
  };
  const busy = rms('busy-lan');
  const asym = rms('asymmetric');
  console.log(`RMS over 20 seeds: busy-lan ${(busy * 1e6).toFixed(1)} µs, asymmetric ${(asym * 1e6).toFixed(1)} µs`);
  assert.ok(busy < 65e-6, `busy-lan RMS ${busy}`);
  assert.ok(asym < 25e-6, `asymmetric RMS ${asym}`);
});
