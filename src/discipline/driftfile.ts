/**
 * chrony's drift file: one line, "<frequency ppm> <skew ppm>", each printed as "%20.6f". The
 * frequency is the free-running clock's own error, as chronyd writes it (positive: the clock is
 * fast; chronyd's value is the negated kernel frequency): the correction to apply is its
 * opposite. Older files may hold the frequency alone.
 */
export interface DriftFileData {
  freqPpm: number;
  skewPpm: number;
}

export class DriftFileError extends Error {}

const DEFAULT_SKEW_PPM = 1;

export function parseDriftFile(text: string): DriftFileData {
  const line = text.split('\n').find((l) => l.trim() !== '');
  if (line === undefined) throw new DriftFileError('drift file is empty');
  const fields = line.trim().split(/\s+/);
  if (fields.length > 2) throw new DriftFileError(`drift file has ${fields.length} fields, expected 1 or 2`);
  const num = (s: string, what: string): number => {
    if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s)) throw new DriftFileError(`drift file: bad ${what} "${s}"`);
    return Number(s);
  };
  const freqPpm = num(fields[0]!, 'frequency');
  const skewPpm = fields.length > 1 ? num(fields[1]!, 'skew') : DEFAULT_SKEW_PPM;
  if (Math.abs(freqPpm) > 500000) throw new DriftFileError(`drift file: frequency ${freqPpm} ppm out of range`);
  if (skewPpm < 0) throw new DriftFileError(`drift file: negative skew ${skewPpm}`);
  return { freqPpm, skewPpm };
}

function f20_6(x: number): string {
  return x.toFixed(6).padStart(20, ' ');
}

export function formatDriftFile(freqPpm: number, skewPpm: number): string {
  return `${f20_6(freqPpm)} ${f20_6(skewPpm)}\n`;
}
