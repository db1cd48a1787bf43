/**
 * The chrony.conf NTS directives and source options (nts, ntsport, certset), parsed and printed
 * here so the shared parser (chrony-conf.ts) only needs case lines. Semantics follow chrony 4.3
 * (4.8 for ntsaeads); what rubidiumd does with them: src/daemon/nts-setup.ts, docs/nts.md.
 */
import { ConfigError } from './config-error.js';
import { parseRateLimit, RATELIMIT_DEFAULTS, type RateLimitConfig } from './tuning.js';

/** chrony's default AEAD preference: AES-128-GCM-SIV (shorter cookies), then AES-SIV-CMAC-256. */
export const DEFAULT_NTS_AEADS: readonly number[] = [30, 15];
/** AEAD ids Rubidium implements (src/nts/aead.ts). */
export const SUPPORTED_NTS_AEADS: readonly number[] = [15, 30];

export interface NtsConfig {
  /** TCP port of the NTS-KE server (default 4460); it only opens with a certificate and key. */
  ntsport: number;
  /** ntsservercert / ntsserverkey files, in order (the n-th key belongs to the n-th certificate). */
  ntsservercert: string[];
  ntsserverkey: string[];
  /** ntstrustedcerts [set] FILE|DIR, in order. */
  ntstrustedcerts: Array<{ set: number; path: string }>;
  /** Do not trust the system's CAs in set 0. */
  nosystemcert: boolean;
  /** Clock updates during which certificate validity times are not checked (0 = always checked). */
  nocerttimecheck: number;
  /** Concurrent NTS-KE connections the server accepts (default 100). */
  maxntsconnections: number;
  /** Maximum seconds between NTS-KE handshakes of a client (default 2419200, 4 weeks). */
  ntsrefresh: number;
  /** AEAD ids in order of preference, unsupported ids removed (default 30 15). */
  ntsaeads: number[];
  /** NTP server name or address given to NTS-KE clients (default none: the same host). */
  ntsntpserver: string | null;
  /** Server cookie key rotation interval, s (default 604800; 0 = never, keys managed outside). */
  ntsrotate: number;
  /** Where server keys (ntskeys) and client cookies (ADDRESS.nts) are kept across restarts. */
  ntsdumpdir: string | null;
  /** Per-address rate limit of NTS-KE connections (chrony `ntsratelimit`); null = none. */
  ntsratelimit: RateLimitConfig | null;
}

/** chrony's ntsratelimit defaults: as ratelimit, but one connection per 64 s. */
export const NTS_RATELIMIT_DEFAULTS: Readonly<RateLimitConfig> = Object.freeze({ ...RATELIMIT_DEFAULTS, interval: 6 });

export function defaultNtsConfig(): NtsConfig {
  return {
    ntsport: 4460,
    ntsservercert: [],
    ntsserverkey: [],
    ntstrustedcerts: [],
    nosystemcert: false,
    nocerttimecheck: 0,
    maxntsconnections: 100,
    ntsrefresh: 2419200,
    ntsaeads: [...DEFAULT_NTS_AEADS],
    ntsntpserver: null,
    ntsrotate: 604800,
    ntsratelimit: null,
    ntsdumpdir: null,
  };
}

/** The NTS server/pool options. */
export interface NtsSourceOptions {
  nts: boolean;
  /** NTS-KE port of the server (default 4460). */
  ntsport: number;
  /** Trusted certificate set used to verify the server (default 0). */
  certset: number;
}

export const NTS_SOURCE_DEFAULTS: Readonly<NtsSourceOptions> = Object.freeze({ nts: false, ntsport: 4460, certset: 0 });

export const NTS_DIRECTIVES = [
  'ntsport',
  'ntsservercert',
  'ntsserverkey',
  'ntstrustedcerts',
  'nosystemcert',
  'nocerttimecheck',
  'maxntsconnections',
  'ntsrefresh',
  'ntsaeads',
  'ntsntpserver',
  'ntsrotate',
  'ntsdumpdir',
  'ntscachedir',
  'ntsratelimit',
] as const;

const MAX_INT31 = 2147483647;
const MAX_UINT32 = 4294967295;

function int(s: string, what: string, where: string, min: number, max: number): number {
  if (!/^[-+]?\d+$/.test(s)) throw new ConfigError(`${where}: invalid ${what} '${s}' (not an integer)`);
  const v = Number(s);
  if (v < min || v > max) throw new ConfigError(`${where}: invalid ${what} '${s}' (must be ${min}..${max})`);
  return v;
}

function count(name: string, args: string[], min: number, max: number, where: string): void {
  if (args.length < min) throw new ConfigError(`${where}: missing arguments for ${name} directive`);
  if (args.length > max) throw new ConfigError(`${where}: too many arguments for ${name} directive`);
}

/** Parses one NTS directive (a name from NTS_DIRECTIVES) into `c`; warnings for harmless oddities. */
export function parseNtsDirective(c: NtsConfig, name: string, args: string[], where: string, warnings: string[]): void {
  switch (name) {
    case 'ntsport':
      count(name, args, 1, 1, where);
      c.ntsport = int(args[0]!, 'ntsport', where, 1, 65535);
      return;
    case 'ntsservercert':
    case 'ntsserverkey':
      count(name, args, 1, 1, where);
      c[name].push(args[0]!);
      return;
    case 'ntstrustedcerts':
      count(name, args, 1, 2, where);
      c.ntstrustedcerts.push(
        args.length === 2
          ? { set: int(args[0]!, 'ntstrustedcerts set', where, 0, MAX_UINT32), path: args[1]! }
          : { set: 0, path: args[0]! },
      );
      return;
    case 'nosystemcert':
      count(name, args, 0, 0, where);
      c.nosystemcert = true;
      return;
    case 'nocerttimecheck':
      count(name, args, 1, 1, where);
      c.nocerttimecheck = int(args[0]!, 'nocerttimecheck', where, 0, MAX_INT31);
      return;
    case 'maxntsconnections':
      count(name, args, 1, 1, where);
      c.maxntsconnections = int(args[0]!, 'maxntsconnections', where, 1, 65535);
      return;
    case 'ntsrefresh':
      count(name, args, 1, 1, where);
      c.ntsrefresh = int(args[0]!, 'ntsrefresh', where, 1, MAX_INT31);
      return;
    case 'ntsaeads': {
      count(name, args, 1, 16, where);
      const ids = args.map((a) => int(a, 'ntsaeads id', where, 0, 65535));
      const known = ids.filter((id, i) => SUPPORTED_NTS_AEADS.includes(id) && ids.indexOf(id) === i);
      const unknown = ids.filter((id) => !SUPPORTED_NTS_AEADS.includes(id));
      // chrony ignores ids its crypto library lacks; an empty result would make NTS impossible.
      if (known.length === 0) {
        throw new ConfigError(
          `${where}: ntsaeads lists no supported AEAD (supported: 15 AES-SIV-CMAC-256, 30 AES-128-GCM-SIV)`,
        );
      }
      if (unknown.length > 0) warnings.push(`${where}: ntsaeads: unsupported AEAD id(s) ${unknown.join(' ')} ignored`);
      c.ntsaeads = known;
      return;
    }
    case 'ntsntpserver':
      count(name, args, 1, 1, where);
      if (args[0]!.length > 255 || !/^[A-Za-z0-9.:-]+$/.test(args[0]!)) {
        throw new ConfigError(`${where}: invalid ntsntpserver '${args[0]}' (not a hostname or address)`);
      }
      c.ntsntpserver = args[0]!;
      return;
    case 'ntsratelimit':
      c.ntsratelimit = parseRateLimit(args, where, NTS_RATELIMIT_DEFAULTS);
      return;
    case 'ntsrotate':
      count(name, args, 1, 1, where);
      c.ntsrotate = int(args[0]!, 'ntsrotate', where, 0, MAX_INT31);
      return;
    case 'ntsdumpdir':
    case 'ntscachedir': // chrony's former name of ntsdumpdir
      count(name, args, 1, 1, where);
      c.ntsdumpdir = args[0]!;
      return;
    default:
      throw new ConfigError(`${where}: unknown directive '${name}'`);
  }
}

/**
 * Parses an NTS source option into `o`. Returns false if `opt` is not one; `value()` consumes the
 * option's value.
 */
export function parseNtsSourceOption(o: NtsSourceOptions, opt: string, value: () => string, where: string): boolean {
  switch (opt) {
    case 'nts':
      o.nts = true;
      return true;
    case 'ntsport':
      o.ntsport = int(value(), 'ntsport', where, 1, 65535);
      return true;
    case 'certset':
      o.certset = int(value(), 'certset', where, 0, MAX_UINT32);
      return true;
    default:
      return false;
  }
}

/** The NTS source options in chrony.conf syntax (nothing at defaults). */
export function formatNtsSourceOptions(o: NtsSourceOptions): string[] {
  const w: string[] = [];
  if (o.nts) w.push('nts');
  if (o.ntsport !== NTS_SOURCE_DEFAULTS.ntsport) w.push('ntsport', String(o.ntsport));
  if (o.certset !== NTS_SOURCE_DEFAULTS.certset) w.push('certset', String(o.certset));
  return w;
}

/** The NTS directives in chrony.conf syntax, for formatConfig (nothing at defaults). */
export function formatNtsConfig(c: NtsConfig): string[] {
  const d = defaultNtsConfig();
  const out: string[] = [];
  if (c.ntsport !== d.ntsport) out.push(`ntsport ${c.ntsport}`);
  for (const f of c.ntsservercert) out.push(`ntsservercert ${f}`);
  for (const f of c.ntsserverkey) out.push(`ntsserverkey ${f}`);
  for (const t of c.ntstrustedcerts) out.push(`ntstrustedcerts ${t.set !== 0 ? `${t.set} ` : ''}${t.path}`);
  if (c.nosystemcert) out.push('nosystemcert');
  if (c.nocerttimecheck !== d.nocerttimecheck) out.push(`nocerttimecheck ${c.nocerttimecheck}`);
  if (c.maxntsconnections !== d.maxntsconnections) out.push(`maxntsconnections ${c.maxntsconnections}`);
  if (c.ntsrefresh !== d.ntsrefresh) out.push(`ntsrefresh ${c.ntsrefresh}`);
  if (c.ntsaeads.join(' ') !== d.ntsaeads.join(' ')) out.push(`ntsaeads ${c.ntsaeads.join(' ')}`);
  if (c.ntsntpserver !== null) out.push(`ntsntpserver ${c.ntsntpserver}`);
  if (c.ntsrotate !== d.ntsrotate) out.push(`ntsrotate ${c.ntsrotate}`);
  if (c.ntsdumpdir !== null) out.push(`ntsdumpdir ${c.ntsdumpdir}`);
  const rl = c.ntsratelimit;
  if (rl) out.push(`ntsratelimit interval ${rl.interval} burst ${rl.burst} leak ${rl.leak}`);
  return out;
}

/**
 * Checks that need the whole file: certificates and keys come in pairs. Returns the error text,
 * or null. (chronyd refuses to start the NTS-KE server with unequal counts.)
 */
export function checkNtsConfig(c: NtsConfig): string | null {
  if (c.ntsservercert.length !== c.ntsserverkey.length) {
    return `ntsservercert given ${c.ntsservercert.length} time(s) but ntsserverkey ${c.ntsserverkey.length} time(s); they must pair up`;
  }
  return null;
}
