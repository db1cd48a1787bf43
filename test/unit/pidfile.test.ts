import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { acquirePidFile, readPidFile, releasePidFile } from '../../src/daemon/pidfile.js';
import { makeTempDir, removeTempDir } from '../support/netns.js';

function withDir(fn: (dir: string) => Promise<void> | void): () => Promise<void> {
  return async () => {
    const dir = makeTempDir('pidfile');
    try {
      await fn(dir);
    } finally {
      removeTempDir(dir);
    }
  };
}

test(
  'pidfile: created (with missing directories), released only by its owner',
  withDir((dir) => {
    const f = join(dir, 'run', 'sub', 'd.pid');
    acquirePidFile(f);
    assert.equal(fs.readFileSync(f, 'utf8'), `${process.pid}\n`);
    assert.deepEqual(fs.readdirSync(join(dir, 'run', 'sub')), ['d.pid'], 'no temp file left');
    acquirePidFile(f); // our own pid: fine (a restarted container is pid 1 again)
    fs.writeFileSync(f, '999999999\n');
    releasePidFile(f);
    assert.ok(fs.existsSync(f), 'not ours: kept');
    fs.writeFileSync(f, `${process.pid}\n`);
    releasePidFile(f);
    assert.equal(fs.existsSync(f), false);
    releasePidFile(f); // idempotent
  }),
);

test(
  'pidfile: a live rubidiumd is refused; dead, foreign and garbage pids are taken over',
  withDir(async (dir) => {
    const f = join(dir, 'd.pid');
    // A live process whose command line names rubidium stands for a running daemon.
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 20000)', 'rubidiumd-stand-in'], {
      stdio: 'ignore',
    });
    try {
      fs.writeFileSync(f, `${child.pid}\n`);
      assert.throws(
        () => acquirePidFile(f),
        new RegExp(`Another rubidiumd may already be running \\(pid ${child.pid}\\), check ${f}`),
      );
      assert.equal(fs.readFileSync(f, 'utf8'), `${child.pid}\n`);
      assert.deepEqual(fs.readdirSync(dir), ['d.pid'], 'the refused attempt left no temp file');
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
    // Now dead: stale.
    acquirePidFile(f);
    assert.equal(readPidFile(f), process.pid);
    // pid 1 is alive but not a rubidiumd (a reused pid): stale too.
    fs.writeFileSync(f, '1\n');
    acquirePidFile(f);
    assert.equal(readPidFile(f), process.pid);
    for (const junk of ['', 'abc\n', '12 34\n', '-5\n', '99999999999\n']) {
      fs.writeFileSync(f, junk);
      assert.equal(readPidFile(f), null, JSON.stringify(junk));
      acquirePidFile(f);
      assert.equal(fs.readFileSync(f, 'utf8'), `${process.pid}\n`);
    }
    // A dead writer's temporary file is removed.
    fs.writeFileSync(join(dir, '.d.pid.999999999.tmp'), '99');
    acquirePidFile(f);
    assert.deepEqual(fs.readdirSync(dir), ['d.pid']);
  }),
);
