/**
 * From the parsed chrony.conf tuning (src/config/tuning.ts) to the options of the engine's
 * pieces: discipline, server, sources. Kept here so the daemon wires them with one line each.
 */
import type { Config, SourceOptions } from './chrony-conf.js';
import type { DisciplineOptions } from '../discipline/discipline.js';
import type { SampleTuning } from '../discipline/sample-tuning.js';
import type { ServerConfig } from '../engine/engine.js';

/** chrony sizes the client log in bytes; one address record is 128 bytes (524288 B = 4096 clients). */
const CLIENT_RECORD_BYTES = 128;

export function disciplineTuning(c: Config): DisciplineOptions {
  return {
    maxupdateskew: c.maxupdateskew,
    corrtimeratio: c.corrtimeratio,
    maxslewrate: c.maxslewrate,
    maxdrift: c.maxdrift,
    maxclockerror: c.maxclockerror,
    combinelimit: c.combinelimit,
    maxjitter: c.maxjitter,
    reselectdist: c.reselectdist,
    stratumweight: c.stratumweight,
    ...(c.maxchange ? { maxchange: c.maxchange } : {}),
    ...(c.minsamples !== null ? { minSamples: c.minsamples } : {}),
    ...(c.maxsamples !== null ? { maxSamples: c.maxsamples } : {}),
  };
}

/** Number of client log entries for `clientloglimit` bytes: a power of 2, as chrony (at most 2^24). */
export function clientLogEntries(bytes: number): number {
  const n = Math.floor(bytes / CLIENT_RECORD_BYTES);
  return n < 1 ? 0 : 2 ** Math.min(24, Math.floor(Math.log2(n)));
}

export function serverTuning(c: Config): Pick<ServerConfig, 'clientLogLimit' | 'noclientlog' | 'ratelimit'> {
  return {
    clientLogLimit: clientLogEntries(c.clientloglimit),
    noclientlog: c.noclientlog,
    ...(c.ratelimit ? { ratelimit: c.ratelimit } : {}),
  };
}

/** The clock precision in log2 s: `clockprecision` if set, else the daemon's own figure. */
export function precisionLog2(c: Config, fallback: number): number {
  return c.clockprecision !== null ? Math.round(Math.log2(c.clockprecision)) : fallback;
}

export function sourceTuning(o: SourceOptions): SampleTuning {
  const t: SampleTuning = {};
  if (o.maxdelayratio !== null) t.maxdelayratio = o.maxdelayratio;
  if (o.maxdelaydevratio !== 10) t.maxdelaydevratio = o.maxdelaydevratio;
  if (o.minsamples !== null) t.minsamples = o.minsamples;
  if (o.maxsamples !== null) t.maxsamples = o.maxsamples;
  if (o.offset !== 0) t.offset = o.offset;
  if (o.minstratum !== 0) t.minstratum = o.minstratum;
  return t;
}

/** Local address for the client socket of a family: `bindacqaddress`, else the wildcard. */
export function acquisitionAddress(c: Config, family: 4 | 6): string {
  const a = c.bindacqaddress.find((x) => x.includes(':') === (family === 6));
  return a ?? (family === 4 ? '0.0.0.0' : '::');
}
