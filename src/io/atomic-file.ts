/**
 * Crash-safe file replacement: the new content goes to a temporary file in the same directory,
 * is fsync'ed, and is renamed over the target (then the directory is fsync'ed), so a crash or
 * kill -9 at any moment leaves either the old or the new content, never a torn file.
 *
 * Temporary files are named `.<name>.<pid>.tmp`: hidden, never the target's own name, and the
 * pid says whose they are, so a later start can remove the leftovers of a dead writer.
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export interface AtomicWriteOptions {
  /** File mode of the new file (default 0o644). */
  mode?: number;
}

/** The temporary file name a writer with `pid` uses for `file`. */
export function tempNameFor(file: string, pid: number = process.pid): string {
  return join(dirname(file), `.${basename(file)}.${pid}.tmp`);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes temporary files of `file` left by writers that died (or by this process earlier).
 * Returns the names removed. A missing directory is not an error.
 */
export function removeStaleTemps(file: string): string[] {
  const dir = dirname(file);
  const prefix = `.${basename(file)}.`;
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const n of names) {
    if (!n.startsWith(prefix) || !n.endsWith('.tmp')) continue;
    const pidText = n.slice(prefix.length, -'.tmp'.length);
    if (!/^\d+$/.test(pidText)) continue;
    const pid = Number(pidText);
    if (pid !== process.pid && processAlive(pid)) continue; // another writer is mid-write
    try {
      fs.unlinkSync(join(dir, n));
      removed.push(n);
    } catch {
      // gone already
    }
  }
  return removed;
}

function syncDirSync(dir: string): void {
  let fd: number | null = null;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // Some file systems refuse fsync on a directory; the rename is still atomic.
  } finally {
    if (fd !== null) fs.closeSync(fd);
  }
}

/** Synchronous atomic replace (for start-up and exit paths such as the pidfile). */
export function atomicWriteFileSync(file: string, data: string | Uint8Array, opts: AtomicWriteOptions = {}): void {
  const tmp = tempNameFor(file);
  const fd = fs.openSync(tmp, 'w', opts.mode ?? 0o644);
  try {
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  try {
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  syncDirSync(dirname(file));
}

/** Writes in progress per target: they share one temp name, so they must not overlap. */
const inFlight = new Map<string, Promise<void>>();

/**
 * Asynchronous atomic replace (for periodic state such as the drift file). Writes to the same
 * file are serialised: two overlapping writers of one temp file could interleave and tear it.
 */
export async function atomicWriteFile(
  file: string,
  data: string | Uint8Array,
  opts: AtomicWriteOptions = {},
): Promise<void> {
  const prev = inFlight.get(file) ?? Promise.resolve();
  const next = prev.catch(() => undefined).then(() => writeOnce(file, data, opts));
  inFlight.set(file, next);
  try {
    await next;
  } finally {
    if (inFlight.get(file) === next) inFlight.delete(file);
  }
}

async function writeOnce(file: string, data: string | Uint8Array, opts: AtomicWriteOptions): Promise<void> {
  const tmp = tempNameFor(file);
  const fh = await fsp.open(tmp, 'w', opts.mode ?? 0o644);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => undefined);
    await fsp.rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  try {
    await fsp.rename(tmp, file);
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e;
  }
  try {
    const dh = await fsp.open(dirname(file), 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  } catch {
    // See syncDirSync.
  }
}
