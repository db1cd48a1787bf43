/** Thin I/O around the drift file: atomic replace (temp file, fsync, rename) and a checked read. */
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { DriftFileError, formatDriftFile, parseDriftFile, type DriftFileData } from './driftfile.js';

/** Reads a drift file; undefined if it does not exist, DriftFileError if it cannot be used. */
export async function readDriftFile(path: string): Promise<DriftFileData | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new DriftFileError(`cannot read drift file ${path}: ${(e as Error).message}`);
  }
  try {
    return parseDriftFile(text);
  } catch (e) {
    throw new DriftFileError(`${path}: ${(e as Error).message}`);
  }
}

/**
 * Replaces the drift file atomically: the data goes to a temporary file in the same directory,
 * is flushed to disk, and is renamed over the old file, so a crash leaves either the old or the
 * new content, never a torn one.
 */
export async function writeDriftFile(path: string, freqPpm: number, skewPpm: number): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}`);
  const fh = await open(tmp, 'w', 0o644);
  try {
    await fh.writeFile(formatDriftFile(freqPpm, skewPpm), 'utf8');
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  // Make the rename itself durable.
  try {
    const dh = await open(dirname(path), 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  } catch {
    // Some file systems refuse fsync on a directory; the rename is still atomic.
  }
}
