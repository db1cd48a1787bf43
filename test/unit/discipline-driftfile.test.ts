import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DriftFileError, formatDriftFile, parseDriftFile } from '../../src/discipline/driftfile.js';
import { readDriftFile, writeDriftFile } from '../../src/discipline/driftfile-io.js';

test('drift file format is chrony\'s "%20.6f %20.6f"', () => {
  const s = formatDriftFile(-12.3456789, 0.123);
  assert.equal(s, '          -12.345679             0.123000\n');
  assert.deepEqual(parseDriftFile(s), { freqPpm: -12.345679, skewPpm: 0.123 });
  assert.deepEqual(parseDriftFile('3.5\n'), { freqPpm: 3.5, skewPpm: 1 });
  for (const bad of ['', '\n', 'abc', '1 2 3', '1 -2', '1e9 1']) {
    assert.throws(() => parseDriftFile(bad), DriftFileError, bad);
  }
});

test('drift file round trip and atomic replace', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'rb-drift-'));
  try {
    const p = join(dir, 'drift');
    assert.equal(await readDriftFile(p), undefined);
    await writeDriftFile(p, 100.25, 0.5);
    assert.deepEqual(await readDriftFile(p), { freqPpm: 100.25, skewPpm: 0.5 });
    await writeDriftFile(p, -7, 0.01);
    assert.deepEqual(await readDriftFile(p), { freqPpm: -7, skewPpm: 0.01 });
    assert.deepEqual(await readdir(dir), ['drift'], 'no temporary file left behind');
    assert.equal(await readFile(p, 'utf8'), formatDriftFile(-7, 0.01));
    await writeFile(p, 'garbage\n');
    await assert.rejects(readDriftFile(p), DriftFileError);
    await assert.rejects(writeDriftFile(join(dir, 'nodir', 'drift'), 1, 1));
    assert.deepEqual(await readdir(dir), ['drift']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
