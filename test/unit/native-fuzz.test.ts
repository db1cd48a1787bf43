/**
 * Short fixed-seed libFuzzer run over the addon's parsing code (native/parse.c: control messages,
 * TX stamps from the error queue, socket addresses), built with ASan and UBSan. Skipped, saying
 * why, when clang is absent (scripts/install-peers.sh installs it). bench/fuzz/native.sh runs
 * the same fuzzer for minutes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const clang = spawnSync('clang', ['--version'], { encoding: 'utf8' });
const skip = clang.status === 0 ? false : 'clang is not installed (run scripts/install-peers.sh to add it)';

test('libFuzzer over native/parse.c: 200000 runs, no sanitizer report', { skip, timeout: 180_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), `rubidium-native-fuzz-${process.pid}-`));
  try {
    const bin = join(dir, 'fuzz_cmsg');
    const cc = spawnSync(
      'clang',
      [
        '-g',
        '-O1',
        '-D_GNU_SOURCE',
        '-fsanitize=fuzzer,address,undefined',
        '-fno-sanitize-recover=undefined',
        `-I${join(root, 'native')}`,
        join(root, 'native/fuzz/fuzz_cmsg.c'),
        join(root, 'native/parse.c'),
        '-o',
        bin,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(cc.status, 0, `clang failed:\n${cc.stderr}`);
    assert.ok(existsSync(bin));
    const r = spawnSync(bin, ['-runs=200000', '-seed=1', '-print_final_stats=1', `-artifact_prefix=${dir}/`], {
      encoding: 'utf8',
      cwd: dir,
      timeout: 150_000,
    });
    const out = `${r.stdout}${r.stderr}`;
    assert.equal(r.status, 0, `libFuzzer found a problem:\n${out.slice(-4000)}`);
    const m = /stat::number_of_executed_units:\s*(\d+)/.exec(out);
    assert.ok(m && Number(m[1]) >= 200_000, `expected 200000 executions:\n${out.slice(-1000)}`);
    assert.doesNotMatch(out, /ERROR: AddressSanitizer|runtime error:/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
