#!/usr/bin/env node
// Runs node:test over the compiled test files. Arguments select test folders (unit, sim,
// interop); none means all. Explicit file lists keep this the same on Node 20 and Node 24,
// whose --test argument handling differs (paths vs globs).
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const testRoot = join(root, 'dist', 'test');
const groups = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const extra = process.argv.slice(2).filter((a) => a.startsWith('-'));

function walk(dir, out) {
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const dirs = groups.length ? groups.map((g) => join(testRoot, g)) : [testRoot];
const files = dirs.flatMap((d) => walk(d, []));
if (files.length === 0) {
  console.error('no test files found under', dirs.join(', '));
  process.exit(1);
}
// Interop tests share network namespaces and real daemons: never run files concurrently.
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...extra, ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
