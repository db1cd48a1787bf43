/**
 * The chrony.conf tuning directives and source options Rubidium implements beyond the basic
 * ones in chrony-conf.ts: selection and servo limits, the client log and rate limiting, the
 * acquisition (client) sockets, `initstepslew`, and per-source sample options. Parsing and
 * printing (`rubidiumd -p`) live together here so that every field prints back as it parses.
 * Names, units and defaults are chrony's (chrony.conf(5), 4.8).
 */
import { ConfigError } from './config-error.js';
import type { Config, SourceConfig, SourceOptions } from './chrony-conf.js';

export interface RateLimitConfig {
  /** log2 s of the minimum mean interval between answers to one address (-19..12). */
  interval: number;
  /** Answers allowed in a burst above that rate (1..255). */
  burst: number;
  /** 1 in 2^leak limited requests is answered anyway (1..4). */
  leak: number;
  /** 1 in 2^kod limited requests gets a KoD RATE answer; 0 = never (0..4). */
  kod: number;
}

export const RATELIMIT_DEFAULTS: Readonly<RateLimitConfig> = Object.freeze({ interval: 3, burst: 8, leak: 2, kod: 0 });

export interface TuningConfig {
  /** ppm: a frequency estimate with a larger skew is not used (chrony default 1000). */
  maxupdateskew: number;
  /** Slew time / interval between updates (default 3). */
  corrtimeratio: number;
  /** ppm: fastest slew (default 83333.333). */
  maxslewrate: number;
  /** ppm: largest frequency correction (default 500000). */
  maxdrift: number;
  /** ppm: assumed instability of the local clock (default 1). */
  maxclockerror: number;
  /** Offsets beyond `offset` s are ignored `ignore` times after `start` updates (then refused). */
  maxchange: { offset: number; start: number; ignore: number } | null;
  /** Seconds; null = measured (the daemon's default). */
  clockprecision: number | null;
  combinelimit: number; // 3
  maxjitter: number; // s, 1
  reselectdist: number; // s, 1e-4
  stratumweight: number; // s per stratum, 1e-3
  /** Default samples kept per source; null = built-in defaults. */
  minsamples: number | null;
  maxsamples: number | null;
  /** Bytes of memory for the client log (default 524288 ≈ 4096 clients). */
  clientloglimit: number;
  noclientlog: boolean;
  ratelimit: RateLimitConfig | null;
  /** Local port of the client sockets (0 = ephemeral, chrony's default). */
  acquisitionport: number;
  /** Local address of the client sockets, at most one per address family. */
  bindacqaddress: string[];
  /**
   * Rubidium extension `serverworkers N|auto`: threads answering NTP requests (1 = the main
   * thread; 'auto' = os.availableParallelism()). Not a chrony directive: printed only when set.
   */
  serverworkers: number | 'auto';
}

/** Largest `serverworkers` accepted (a sanity bound, far above any useful core count). */
export const MAX_SERVER_WORKERS = 64;

export function defaultTuning(): TuningConfig {
  return {
    maxupdateskew: 1000,
    corrtimeratio: 3,
    maxslewrate: 83333.333,
    maxdrift: 500000,
    maxclockerror: 1,
    maxchange: null,
    clockprecision: null,
    combinelimit: 3,
    maxjitter: 1,
    reselectdist: 1e-4,
    stratumweight: 1e-3,
    minsamples: null,
    maxsamples: null,
    clientloglimit: 524288,
    noclientlog: false,
    ratelimit: null,
    acquisitionport: 0,
    bindacqaddress: [],
    serverworkers: 1,
  };
}

export interface SourceTuning {
  /** Reject samples whose delay exceeds this × the minimum delay seen (null = off). */
  maxdelayratio: number | null;
  /** Reject samples whose delay is this many standard deviations above the minimum (default 10). */
  maxdelaydevratio: number;
  /** Seconds added to every offset measured with the source (known asymmetry). */
  offset: number;
  /** The source's stratum is raised to at least this for selection (0 = off). */
  minstratum: number;
  minsamples: number | null;
  maxsamples: number | null;
  /** Use only this address family for the source (ipv4 / ipv6 option). */
  family: 4 | 6 | null;
}

export const SOURCE_TUNING_DEFAULTS: Readonly<SourceTuning> = Object.freeze({
  maxdelayratio: null,
  maxdelaydevratio: 10,
  offset: 0,
  minstratum: 0,
  minsamples: null,
  maxsamples: null,
  family: null,
});

// ---- value helpers (chrony's number syntax; errors name file:line) ----

function nArgs(name: string, args: string[], min: number, max: number, where: string): void {
  if (args.length < min) throw new ConfigError(`${where}: missing arguments for ${name} directive`);
  if (args.length > max) throw new ConfigError(`${where}: too many arguments for ${name} directive`);
}

function range(v: number, s: string, what: string, where: string, min: number, max: number): number {
  if (v < min || v > max) {
    const r = max === Infinity ? `at least ${min}` : `${min}..${max}`;
    throw new ConfigError(`${where}: invalid ${what} '${s}' (must be ${r})`);
  }
  return v;
}

function num(s: string, what: string, where: string, min = -Infinity, max = Infinity): number {
  const v = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s) ? Number(s) : NaN;
  if (!Number.isFinite(v)) throw new ConfigError(`${where}: invalid ${what} '${s}' (not a number)`);
  return range(v, s, what, where, min, max);
}

function int(s: string, what: string, where: string, min = -Infinity, max = Infinity): number {
  if (!/^[-+]?\d+$/.test(s)) throw new ConfigError(`${where}: invalid ${what} '${s}' (not an integer)`);
  return range(Number(s), s, what, where, min, max);
}

/** One number argument: `maxupdateskew 100`. */
function single(name: string, args: string[], where: string, min: number, max = Infinity): number {
  nArgs(name, args, 1, 1, where);
  return num(args[0]!, name, where, min, max);
}

/** Samples: 0 = no configured limit (chrony); Rubidium's regression needs at least 4 for a maximum. */
function samples(s: string, what: string, where: string, isMax: boolean): number | null {
  const v = int(s, what, where, 0, 64);
  if (v === 0) return null;
  if (isMax && v < 4) throw new ConfigError(`${where}: invalid ${what} '${s}' (must be 0 or 4..64)`);
  return v;
}

const IPV4 = /^(\d{1,3})(\.\d{1,3}){3}$/;

/** `ratelimit` and `ntsratelimit` options (interval, burst, leak, kod) over `defaults`. */
export function parseRateLimit(
  args: string[],
  where: string,
  defaults: Readonly<RateLimitConfig> = RATELIMIT_DEFAULTS,
): RateLimitConfig {
  const r: RateLimitConfig = { ...defaults };
  for (let i = 0; i < args.length; i += 2) {
    const o = args[i]!.toLowerCase();
    const v = args[i + 1];
    if (v === undefined) throw new ConfigError(`${where}: missing value for ratelimit option '${o}'`);
    if (o === 'interval') r.interval = int(v, 'ratelimit interval', where, -19, 12);
    else if (o === 'burst') r.burst = int(v, 'ratelimit burst', where, 1, 255);
    else if (o === 'leak') r.leak = int(v, 'ratelimit leak', where, 1, 4);
    else if (o === 'kod') r.kod = int(v, 'ratelimit kod', where, 0, 4);
    else throw new ConfigError(`${where}: unknown ratelimit option '${args[i]}'`);
  }
  return r;
}

/**
 * Parses one of the tuning directives into `c`. Returns false if `name` is not one of them.
 * `initstepslew threshold host...` becomes what it does at start: `makestep threshold 1` (unless
 * a makestep is configured) and `server host iburst` for each host not configured yet.
 */
export function parseTuningDirective(
  c: Config,
  name: string,
  args: string[],
  where: string,
  sourceDefaults: Readonly<SourceOptions>,
): boolean {
  switch (name) {
    case 'maxupdateskew':
      c.maxupdateskew = single(name, args, where, 0);
      return true;
    case 'corrtimeratio':
      c.corrtimeratio = single(name, args, where, 0);
      return true;
    case 'maxslewrate':
      c.maxslewrate = single(name, args, where, 0);
      return true;
    case 'maxdrift':
      c.maxdrift = single(name, args, where, 0);
      return true;
    case 'maxclockerror':
      c.maxclockerror = single(name, args, where, 0);
      return true;
    case 'clockprecision':
      c.clockprecision = single(name, args, where, 1e-9, 1);
      return true;
    case 'combinelimit':
      c.combinelimit = single(name, args, where, 0);
      return true;
    case 'maxjitter':
      c.maxjitter = single(name, args, where, 0);
      return true;
    case 'reselectdist':
      c.reselectdist = single(name, args, where, 0);
      return true;
    case 'stratumweight':
      c.stratumweight = single(name, args, where, 0);
      return true;
    case 'maxchange':
      nArgs(name, args, 3, 3, where);
      c.maxchange = {
        offset: num(args[0]!, 'maxchange offset', where),
        start: int(args[1]!, 'maxchange start', where, 0),
        ignore: int(args[2]!, 'maxchange ignore', where, 0),
      };
      return true;
    case 'minsamples':
    case 'maxsamples':
      nArgs(name, args, 1, 1, where);
      c[name] = samples(args[0]!, name, where, name === 'maxsamples');
      return true;
    case 'clientloglimit':
      nArgs(name, args, 1, 1, where);
      c.clientloglimit = int(args[0]!, name, where, 0, 2 ** 32 - 1);
      return true;
    case 'noclientlog':
      nArgs(name, args, 0, 0, where);
      c.noclientlog = true;
      return true;
    case 'ratelimit':
      c.ratelimit = parseRateLimit(args, where);
      return true;
    case 'acquisitionport':
      nArgs(name, args, 1, 1, where);
      c.acquisitionport = int(args[0]!, name, where, 0, 65535);
      return true;
    case 'bindacqaddress': {
      nArgs(name, args, 1, 1, where);
      const a = args[0]!;
      const v4 = IPV4.test(a);
      if (!v4 && !/^[0-9a-fA-F:.]+$/.test(a)) {
        throw new ConfigError(`${where}: invalid bindacqaddress '${a}' (not an IP address)`);
      }
      // One address per family, the last one wins (as chrony).
      c.bindacqaddress = [...c.bindacqaddress.filter((x) => IPV4.test(x) !== v4), a];
      return true;
    }
    case 'serverworkers':
      nArgs(name, args, 1, 1, where);
      c.serverworkers =
        args[0]!.toLowerCase() === 'auto' ? 'auto' : int(args[0]!, 'serverworkers', where, 1, MAX_SERVER_WORKERS);
      return true;
    case 'initstepslew': {
      nArgs(name, args, 1, Infinity, where);
      const threshold = num(args[0]!, 'initstepslew threshold', where, 0);
      if (!c.makestep) c.makestep = { threshold, limit: 1 };
      for (const host of args.slice(1)) {
        if (c.sources.some((s) => s.host === host)) continue;
        const src: SourceConfig = {
          type: 'server',
          host,
          options: { ...sourceDefaults, iburst: true },
          origin: where,
        };
        c.sources.push(src);
      }
      return true;
    }
    default:
      return false;
  }
}

/**
 * Parses one tuning source option into `o`; `value()` consumes the option's value. Returns
 * false if `opt` is not one of them.
 */
export function parseTuningSourceOption(o: SourceOptions, opt: string, value: () => string, where: string): boolean {
  switch (opt) {
    case 'maxdelayratio':
      o.maxdelayratio = num(value(), opt, where, 1);
      return true;
    case 'maxdelaydevratio':
      o.maxdelaydevratio = num(value(), opt, where, 0);
      return true;
    case 'offset':
      o.offset = num(value(), opt, where, -1e6, 1e6);
      return true;
    case 'minstratum':
      o.minstratum = int(value(), opt, where, 0, 15);
      return true;
    case 'minsamples':
    case 'maxsamples':
      o[opt] = samples(value(), opt, where, opt === 'maxsamples');
      return true;
    case 'ipv4':
      o.family = 4;
      return true;
    case 'ipv6':
      o.family = 6;
      return true;
    default:
      return false;
  }
}

const f = (v: number): string => String(v);

/** The tuning fields that differ from chrony's defaults, as chrony.conf lines. */
export function formatTuning(c: TuningConfig): string[] {
  const d = defaultTuning();
  const out: string[] = [];
  for (const k of [
    'maxupdateskew',
    'corrtimeratio',
    'maxslewrate',
    'maxdrift',
    'maxclockerror',
    'combinelimit',
    'maxjitter',
    'reselectdist',
    'stratumweight',
    'clientloglimit',
    'acquisitionport',
  ] as const) {
    if (c[k] !== d[k]) out.push(`${k} ${f(c[k])}`);
  }
  if (c.clockprecision !== null) out.push(`clockprecision ${f(c.clockprecision)}`);
  if (c.maxchange) out.push(`maxchange ${f(c.maxchange.offset)} ${c.maxchange.start} ${c.maxchange.ignore}`);
  if (c.minsamples !== null) out.push(`minsamples ${c.minsamples}`);
  if (c.maxsamples !== null) out.push(`maxsamples ${c.maxsamples}`);
  if (c.noclientlog) out.push('noclientlog');
  if (c.ratelimit) {
    const r = c.ratelimit;
    // kod only when set: chrony 4.3 does not know the option.
    out.push(`ratelimit interval ${r.interval} burst ${r.burst} leak ${r.leak}${r.kod ? ` kod ${r.kod}` : ''}`);
  }
  for (const a of c.bindacqaddress) out.push(`bindacqaddress ${a}`);
  if (c.serverworkers !== d.serverworkers) out.push(`serverworkers ${c.serverworkers}`);
  return out;
}

/** The tuning source options that differ from the defaults, as option words. */
export function formatSourceTuning(o: SourceTuning): string[] {
  const d = SOURCE_TUNING_DEFAULTS;
  const w: string[] = [];
  if (o.maxdelayratio !== null) w.push('maxdelayratio', f(o.maxdelayratio));
  if (o.maxdelaydevratio !== d.maxdelaydevratio) w.push('maxdelaydevratio', f(o.maxdelaydevratio));
  if (o.offset !== d.offset) w.push('offset', f(o.offset));
  if (o.minstratum !== d.minstratum) w.push('minstratum', f(o.minstratum));
  if (o.minsamples !== null) w.push('minsamples', f(o.minsamples));
  if (o.maxsamples !== null) w.push('maxsamples', f(o.maxsamples));
  if (o.family !== null) w.push(`ipv${o.family}`);
  return w;
}
