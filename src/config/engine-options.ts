/**
 * From the parsed chrony.conf tuning (src/config/tuning.ts) to the options of the engine's
 * pieces: discipline, server, sources. Kept here so the daemon wires them with one line each.
 */
import type { Config, SourceOptions } from './chrony-conf.js';
import type { DisciplineOptions } from '../discipline/discipline.js';
import type { SampleTuning } from '../discipline/sample-tuning.js';
import type { ServerConfig } from '../engine/engine.js';

/**
 * chrony sizes the client log in bytes (clientlog.c): a hash table of 16-record slots, each record
 * 64 bytes plus 16 of NTP timestamps, with room for the table's copy while it doubles: 1920 bytes
 * per slot. The slot count is a power of 2 (1 to 2^20), so 524288 B = 256 slots = 4096 clients.
 */
const SLOT_RECORDS = 16;
const SLOT_BYTES = ((64 + 16) * SLOT_RECORDS * 3) / 2;
const MAX_SLOTS = 2 ** 20;

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

/** Number of client log entries for `clientloglimit` bytes, as chrony: 16 to 2^24, a power of 2. */
export function clientLogEntries(bytes: number): number {
  const slots = Math.min(MAX_SLOTS, Math.max(1, Math.floor(bytes / SLOT_BYTES)));
  return SLOT_RECORDS * 2 ** Math.floor(Math.log2(slots));
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
