/**
 * Long fuzzing campaign over every parser (test/support/fuzz): millions of inputs per target,
 * failures counted by signature rather than stopping at the first.
 *
 *   npm run bench:fuzz -- [--target NAME[,NAME]] [--iterations N] [--seconds S] [--seed N] [--examples]
 *
 * Defaults: every target, 1,000,000 inputs or 600 s per target, seed 1. Exit status 1 if any
 * target had failures. `--examples` prints one input per failure signature.
 */
import { allTargets, campaign, type CampaignResult } from '../../test/support/fuzz/index.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const only = arg('target')?.split(',');
const iterations = Number(arg('iterations') ?? 1_000_000);
const seconds = Number(arg('seconds') ?? 600);
const seed = Number(arg('seed') ?? 1);
const examples = process.argv.includes('--examples');
if (!(iterations > 0) || !(seconds > 0) || !Number.isInteger(seed)) {
  console.error('usage: run [--target NAME] [--iterations N] [--seconds S] [--seed N] [--examples]');
  process.exit(2);
}

const { targets, missing } = await allTargets();
const chosen = only ? targets.filter((t) => only.includes(t.name)) : targets;
if (only && chosen.length !== only.length) {
  console.error(`unknown target; known: ${targets.map((t) => t.name).join(', ')}`);
  process.exit(2);
}
for (const m of missing) console.log(`not fuzzed (module not present yet): ${m}`);

const results: CampaignResult[] = [];
const row = (cells: string[]) => console.log(cells.map((c, i) => (i === 0 ? c.padEnd(20) : c.padStart(12))).join(' '));
row(['target', 'inputs', 'failures', 'signatures', 'inputs/s', 'max ms']);
for (const t of chosen) {
  const r = await campaign(t, { iterations, seconds, seed });
  results.push(r);
  row([
    r.target,
    String(r.inputs),
    String(r.failures),
    String(r.signatures.size),
    String(Math.round(r.inputs / r.seconds)),
    r.maxMs.toFixed(1),
  ]);
  for (const [sig, { count, example }] of r.signatures) {
    console.log(`    ${count} × ${sig}`);
    if (examples) console.log(`      e.g. ${example}`);
  }
}
const total = results.reduce((n, r) => n + r.inputs, 0);
const failures = results.reduce((n, r) => n + r.failures, 0);
console.log(`total: ${total} inputs, ${failures} failures over ${results.length} targets (seed ${seed})`);
process.exitCode = failures > 0 ? 1 : 0;
