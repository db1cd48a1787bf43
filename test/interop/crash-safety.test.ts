/**
 * Crash safety: rubidiumd -x rewrites its drift file every second (the smallest interval the
 * parser accepts) and is killed with SIGKILL at random moments. After every kill each state file
 * must still parse (the drift file as chrony's two numbers, the pidfile as a pid), the only other
 * files allowed are the writer's own temporary files (`.<name>.<pid>.tmp`, never mistaken for
 * state), and the next start must succeed: it takes the stale pidfile over, removes the dead
 * writer's temporary files and reads the drift file. A second test kills the drift file writer
 * itself while it writes back to back, so that nearly every kill lands mid-write.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDriftFile } from '../../src/discipline/driftfile.js';
import { isRoot, makeTempDir, removeTempDir, sleep, startDaemon, type ManagedProcess } from '../support/netns.js';
import { READY_CONTROL, quietLines, runRubidiumd, writeConf } from '../support/rubidiumd.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const ROUNDS = 20;

describe('crash safety', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it(`every state file stays valid across ${ROUNDS} kill -9 at random moments`, async () => {
    const dir = makeTempDir('crash');
    cleanups.push(() => removeTempDir(dir));
    const state = join(dir, 'state');
    const drift = join(state, 'drift');
    const pidfile = join(state, 'rubidiumd.pid');
    const conf = writeConf(dir, [...quietLines(dir), `driftfile ${drift} interval 1`, `pidfile ${pidfile}`]);
    const allowedTemp = (name: string, pid: number) =>
      name === `.drift.${pid}.tmp` || name === `.rubidiumd.pid.${pid}.tmp`;
    let killedMidWrite = 0;
    let driftSeen = 0;
    let prevPid: number | null = null;
    for (let round = 0; round < ROUNDS; round++) {
      const proc: ManagedProcess = await runRubidiumd(null, conf, { name: `rubidiumd#${round}`, ready: READY_CONTROL });
      cleanups.push(() => proc.stop({ signal: 'SIGKILL' }));
      const out = proc.output();
      // The previous round's leftovers did not stop this start: its pidfile was taken over and
      // its drift file read back.
      assert.equal(readFileSync(pidfile, 'utf8'), `${proc.pid}\n`);
      if (round > 0 && prevPid !== null) {
        assert.doesNotMatch(out, /Could not read .*drift/, `round ${round}: drift file unreadable:\n${proc.tail()}`);
        for (const n of readdirSync(state)) assert.ok(!allowedTemp(n, prevPid), `round ${round}: ${n} left behind`);
      }
      await sleep(randomInt(200, 2200));
      await proc.stop({ signal: 'SIGKILL' });
      assert.equal(proc.exitSignal, 'SIGKILL');

      for (const name of readdirSync(state)) {
        if (name === 'drift') {
          const d = parseDriftFile(readFileSync(drift, 'utf8')); // throws on a torn file
          assert.ok(Number.isFinite(d.freqPpm) && Number.isFinite(d.skewPpm));
          driftSeen++;
        } else if (name === 'rubidiumd.pid') {
          assert.equal(readFileSync(pidfile, 'utf8'), `${proc.pid}\n`);
        } else {
          assert.ok(allowedTemp(name, proc.pid), `round ${round}: unexpected file ${name} in the state directory`);
          killedMidWrite++;
        }
      }
      assert.ok(existsSync(pidfile), 'a killed daemon leaves its pidfile (stale)');
      prevPid = proc.pid;
    }
    assert.ok(driftSeen >= ROUNDS / 2, `drift file present after only ${driftSeen} of ${ROUNDS} kills`);
    // A graceful stop after all that still works and removes the pidfile.
    const last = await runRubidiumd(null, conf, { name: 'rubidiumd#last', ready: READY_CONTROL });
    cleanups.push(() => last.stop());
    assert.deepEqual(
      readdirSync(state).filter((n) => n.endsWith('.tmp')),
      [],
      'temporary files of dead writers removed at start',
    );
    await sleep(500); // signal handlers are installed just after the control socket line
    last.signal('SIGTERM');
    assert.equal((await last.waitForExit(10_000)).code, 0, last.tail());
    assert.deepEqual(readdirSync(state).sort(), ['drift']);
    process.stdout.write(`# crash-safety: ${ROUNDS} kills, ${killedMidWrite} left a temp file mid-write\n`);
  });

  it(`the drift file writer killed mid-write ${ROUNDS} times never leaves a torn file`, async () => {
    // The daemon writes at most once a second, so few kills land inside a write; this child runs
    // the daemon's own writer (writeDriftFile) back to back, so nearly every kill does.
    const dir = makeTempDir('crash-writer');
    cleanups.push(() => removeTempDir(dir));
    const drift = join(dir, 'drift');
    const mod = join(root, 'dist', 'src', 'discipline', 'driftfile-io.js');
    const code = `const m = await import(${JSON.stringify(mod)});
      console.log('writing');
      for (let i = 0; ; i++) await m.writeDriftFile(${JSON.stringify(drift)}, (i % 2000) / 7 - 100, 1 + (i % 13) / 3);`;
    const killed = new Set<string>();
    let tempLeft = 0;
    let prev: string | null = null;
    let changed = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const proc = await startDaemon(null, [process.execPath, '--input-type=module', '-e', code], {
        name: `writer#${round}`,
        dropSysTime: isRoot(),
        readyPattern: /writing/,
      });
      cleanups.push(() => proc.stop({ signal: 'SIGKILL' }));
      await sleep(randomInt(20, 300));
      await proc.stop({ signal: 'SIGKILL' });
      const text = readFileSync(drift, 'utf8');
      const d = parseDriftFile(text);
      assert.match(text, /^ *-?\d+\.\d{6} +\d+\.\d{6}\n$/, `round ${round}: ${JSON.stringify(text)}`);
      assert.ok(Number.isFinite(d.freqPpm));
      if (text !== prev) changed++;
      prev = text;
      const others = readdirSync(dir).filter((n) => n !== 'drift');
      killed.add(`.drift.${proc.pid}.tmp`);
      // Only the killed writers' own temporary files (the next reader removes them).
      for (const n of others) assert.ok(killed.has(n), `round ${round}: unexpected ${n}`);
      if (others.includes(`.drift.${proc.pid}.tmp`)) tempLeft++;
    }
    assert.ok(changed >= ROUNDS / 2, `the file changed only ${changed} times: the writer did not run`);
    // The daemon's reader removes a dead writer's temporary file and reads the last complete value.
    const { readDriftFile } = await import('../../src/discipline/driftfile-io.js');
    assert.deepEqual(await readDriftFile(drift), parseDriftFile(prev!));
    assert.deepEqual(readdirSync(dir), ['drift']);
    process.stdout.write(`# crash-safety writer: ${ROUNDS} kills, ${tempLeft} left a temp file mid-write\n`);
  });
});
