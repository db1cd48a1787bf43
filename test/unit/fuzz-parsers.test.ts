/**
 * Fixed-seed slice of the fuzzing campaign (bench/fuzz/run.ts runs millions): every parser gets a
 * few thousand inputs — mutated real packets captured from chronyd, NTPsec and chronyc
 * (test/fixtures/packets) and structure-aware ones — and must hold its properties
 * (test/support/fuzz). A failure prints the shrunk input and the fast-check seed to replay it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allTargets, fixedSlice } from '../support/fuzz/index.js';
import { capturedSeeds } from '../support/fuzz/seeds.js';
import { decodePacket } from '../../src/ntp/packet.js';
import { decodeControlRequest } from '../../src/ntp/mode6.js';
import { decodeRequest } from '../../src/cmdmon/request.js';

const { targets, missing } = await allTargets();
/** Inputs per target: ~2 s per slow (config) target, well under 1 s for the packet codecs. */
const RUNS: Record<string, number> = { 'chrony-conf': 1500, 'ntp-conf': 1500, cmdmon: 2000 };

test('fuzz seeds: real captures of every kind are present and the parsers accept the genuine ones', () => {
  const seeds = capturedSeeds();
  const kinds = new Set(seeds.map((s) => s.kind));
  for (const k of ['ntp', 'nts-ntp', 'mode6', 'cmdmon', 'file']) assert.ok(kinds.has(k as never), `no ${k} seeds`);
  for (const s of seeds) {
    const b = Buffer.from(s.hex, 'hex');
    if (s.kind === 'ntp' || s.kind === 'nts-ntp') assert.ok(decodePacket(b).ok, `${s.source}: ${s.description}`);
    if (s.kind === 'mode6' && !s.description.includes('answer')) assert.ok(decodeControlRequest(b).ok, s.description);
    if (s.kind === 'cmdmon' && s.source.startsWith('chronyc'))
      assert.equal(decodeRequest(b).kind, 'request', `${s.description}`);
  }
});

test('fuzz targets: every parser of the issue has a target', () => {
  const names = targets.map((t) => t.name);
  for (const n of ['ntp-packet', 'ntp-server', 'ntp-client', 'mode6', 'cmdmon', 'control-json', 'chrony-conf'])
    assert.ok(names.includes(n), n);
  for (const n of ['ntp-conf', 'keys-file', 'leap-seconds-list', 'tzfile', 'nts-ke-records', 'symmetric-mac'])
    assert.ok(names.includes(n), n);
  for (const m of missing) console.log(`# not fuzzed yet (module missing): ${m}`);
});

for (const t of targets) {
  test(`fuzz ${t.name}: ${t.description}`, async () => {
    await fixedSlice(t, RUNS[t.name] ?? 3000);
  });
}
