/**
 * The pidfile, as chronyd keeps it: refuses to start while another live rubidiumd holds it, takes
 * over a stale one (its process is gone), and is written atomically so a crash never leaves a
 * half-written file. A fresh pidfile is created with link(2), which fails if the file exists, so
 * two daemons starting at the same moment cannot both win.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { removeStaleTemps, tempNameFor } from '../io/atomic-file.js';

export class PidFileError extends Error {}

/**
 * Whether `pid` is a live rubidiumd. A pid reused by an unrelated process after a reboot or in a
 * container (where the daemon is often pid 1 every time) does not count.
 */
function liveDaemon(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline === '' || cmdline.includes('rubidium');
  } catch {
    return true; // no /proc: trust kill(pid, 0)
  }
}

/** The pid a pidfile names, or null if the content is not a pid (a torn or foreign file). */
export function readPidFile(file: string): number | null {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new PidFileError(`cannot read pidfile ${file}: ${(e as Error).message}`);
  }
  const m = /^\s*(\d{1,10})\s*$/.exec(text);
  const pid = m ? Number(m[1]) : NaN;
  return Number.isInteger(pid) && pid > 0 && pid < 2 ** 31 ? pid : null;
}

export function acquirePidFile(file: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  removeStaleTemps(file);
  const tmp = tempNameFor(file);
  const fd = fs.openSync(tmp, 'w', 0o644);
  try {
    fs.writeFileSync(fd, `${process.pid}\n`);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        fs.linkSync(tmp, file); // atomic create-if-absent
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const pid = readPidFile(file);
      if (pid !== null && pid !== process.pid && liveDaemon(pid)) {
        throw new PidFileError(`Another rubidiumd may already be running (pid ${pid}), check ${file}`);
      }
      // Stale (dead process, not a pid, or our own pid reused): take it over atomically.
      fs.renameSync(tmp, file);
      if (readPidFile(file) === process.pid) return;
      // Someone else took it over between our read and rename: look again.
      if (attempt >= 3) throw new PidFileError(`could not take over pidfile ${file}: it keeps changing`);
      const fd2 = fs.openSync(tmp, 'w', 0o644);
      try {
        fs.writeFileSync(fd2, `${process.pid}\n`);
        fs.fsyncSync(fd2);
      } finally {
        fs.closeSync(fd2);
      }
    }
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

export function releasePidFile(file: string): void {
  try {
    if (readPidFile(file) === process.pid) fs.unlinkSync(file);
  } catch {
    // already gone, or not ours to remove
  }
}
