import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TxLatencyEstimator } from '../../src/daemon/tx-latency.js';

test('no correction until enough samples, then a low quantile', () => {
  const e = new TxLatencyEstimator();
  for (let i = 0; i < 4; i++) e.add(5e-6);
  assert.equal(e.correction(), 0);
  e.add(5e-6);
  assert.equal(e.correction(), 5e-6);
  // Slow sends (a busy machine) do not move it; one freak fast one does not either.
  e.add(400e-6);
  e.add(300e-6);
  e.add(1e-6);
  assert.equal(e.correction(), 5e-6);
  e.add(2e-6);
  assert.equal(e.correction(), 2e-6);
});

test('implausible latencies are ignored and the window slides', () => {
  const e = new TxLatencyEstimator();
  e.add(-1e-6);
  e.add(0.01);
  e.add(NaN);
  assert.equal(e.samples, 0);
  for (let i = 0; i < 40; i++) e.add(3e-6);
  for (let i = 0; i < 31; i++) e.add(9e-6);
  assert.equal(e.samples, 31);
  assert.equal(e.correction(), 9e-6);
});
