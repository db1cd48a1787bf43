/** Thin I/O around the drift file: atomic replace (temp file, fsync, rename) and a checked read. */
import { readFile } from 'node:fs/promises';
import { atomicWriteFile, removeStaleTemps } from '../io/atomic-file.js';
import { DriftFileError, formatDriftFile, parseDriftFile, type DriftFileData } from './driftfile.js';

/**
 * Reads a drift file; undefined if it does not exist, DriftFileError if it cannot be used.
 * Temporary files a killed writer left next to it are removed first (the daemon reads the drift
 * file once, at start, before it writes it).
 */
export async function readDriftFile(path: string): Promise<DriftFileData | undefined> {
  removeStaleTemps(path);
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
 * Replaces the drift file atomically (src/io/atomic-file.ts): a crash or kill -9 at any moment
 * leaves either the old or the new content, never a torn one.
 */
export async function writeDriftFile(path: string, freqPpm: number, skewPpm: number): Promise<void> {
  await atomicWriteFile(path, formatDriftFile(freqPpm, skewPpm), { mode: 0o644 });
}
