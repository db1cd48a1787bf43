/**
 * chrony.conf parser. Reads the subset of chrony's configuration language Rubidium implements into
 * a typed `Config`, and refuses everything else loudly: an unknown directive or a bad value is a
 * `ConfigError` ("file:line: what"); a real chrony directive Rubidium does not implement is an
 * error or a warning in `config.warnings` as its status in directive-status.ts says (never
 * silently dropped). Tuning directives and source options: tuning.ts.
 *
 * Syntax (as chrony): one directive per line, words separated by white space, directive names
 * and option keywords case-insensitive, a line whose first non-blank character is one of
 * `# ! ; %` is a comment.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SOURCE_DEFAULTS } from '../engine/types.js';
import type { RestrictRule } from '../ntp/restrict.js';
import { formatLeapConfig, parseLeapDirective } from '../leap/leap-config.js';
import { formatLogsRtcConfig, parseLogsRtcDirective } from '../logs/logs-config.js';

import { ConfigError } from './config-error.js';
import { DIRECTIVE_STATUS, SOURCE_OPTION_STATUS, unimplemented } from './directive-status.js';
import type { CmdRateLimit } from '../cmdmon/access.js';
import { formatCmdRateLimit, parseCmdRateLimit, parseOpenCommands } from '../cmdmon/config.js';
import * as tuning from './tuning.js';
import * as nts from './nts-config.js';

export { ConfigError };

export type SourceType = 'server' | 'pool';

export interface SourceOptions extends tuning.SourceTuning, nts.NtsSourceOptions {
  minpoll: number; // log2 s, -7..24, default 6
  maxpoll: number; // log2 s, -7..24, default 10
  iburst: boolean;
  burst: boolean;
  prefer: boolean;
  noselect: boolean;
  trust: boolean;
  require: boolean;
  maxdelay: number; // seconds, default 3
  /** Samples the poll adaptation keeps in the source's regression (default 8). */
  polltarget: number;
  xleave: boolean;
  port: number; // default 123
  offline: boolean;
  /** chrony auto_offline: a failed send takes the source offline. */
  autoOffline: boolean;
  /** chrony maxunreach: polls the source may stay selectable while unreachable (default 100000). */
  maxunreach: number;
  /** NTP version to send, null = automatic (4). */
  version: number | null;
  /** `key N`: symmetric key id (src/daemon/keys-setup.ts checks it against the key file). */
  key?: number;
}

export interface SourceConfig {
  type: SourceType;
  /** Hostname or address as written. */
  host: string;
  options: SourceOptions;
  /** Pool only: maximum number of sources taken from the pool (1..16, default 4). */
  maxsources?: number;
  /** Where it was configured, "file:line" (for messages; not part of the configuration). */
  origin: string;
}

export interface AccessRule {
  allow: boolean;
  /** `allow all` / `deny all`: overrides earlier rules for the subnet and its subnets. */
  all: boolean;
  /** Subnet exactly as written ("192.168.1.0/24", "10", "::1", hostname); '' means any address. */
  subnet: string;
}

export interface LocalConfig {
  stratum: number; // 1..15, default 10
  orphan: boolean;
  distance: number; // seconds, default 1
  /** Local reference only after the root distance was below this once (default 0: always). */
  activate?: number;
  /** Seconds after the last clock update before the local reference may activate (default 0). */
  waitsynced?: number;
  /** Seconds unsynchronised before it activates (default 300 with orphan, else 0). */
  waitunsynced?: number;
}

export type LogName = 'rawmeasurements' | 'measurements' | 'selection' | 'statistics' | 'tracking';

export interface Config extends tuning.TuningConfig {
  sources: SourceConfig[];
  /** allow/deny rules for NTP clients, in file order. No rule = serve nobody (chrony default). */
  access: AccessRule[];
  local: LocalConfig | null;
  makestep: { threshold: number; limit: number } | null;
  driftfile: string | null;
  /** Seconds between drift file updates (driftfile's optional second argument), null = default. */
  driftfileInterval: number | null;
  pidfile: string | null;
  /** Account rubidiumd switches to after binding its sockets (chrony `user`; -u overrides). */
  user: string | null;
  /** NTP server port, 0 disables serving. Default 123. */
  port: number;
  /** Addresses the NTP server socket binds to; empty = all. */
  bindaddress: string[];
  /** UDP command port, 0 disables it. Default 323. */
  cmdport: number;
  /** Addresses the UDP command socket binds to; empty = 127.0.0.1 and ::1. */
  bindcmdaddress: string[];
  /** Unix command socket path (default DEFAULT_CMD_SOCKET); null = disabled (`bindcmdaddress /`). */
  cmdSocket: string | null;
  /** cmdallow/cmddeny rules for remote chronyc hosts (localhost is always allowed). */
  cmdaccess: AccessRule[];
  /** cmdratelimit for non-localhost command packets; null = off. */
  cmdratelimit: CmdRateLimit | null;
  /** opencommands: chronyc commands open to allowed hosts over UDP; null = chrony's default set. */
  opencommands: string[] | null;
  logdir: string | null;
  log: LogName[];
  /** Lines between log file banners (chrony logbanner, default 32, 0 = never). */
  logbanner: number;
  /** Clock error (s) above which a correction is logged (chrony logchange); null = default 1 s. */
  logchange: number | null;
  /** Let the kernel's 11-minute mode copy the system time to the RTC (clear STA_UNSYNC when synced). */
  rtcsync: boolean;
  /** RTC drift tracking (chrony rtcfile/rtcautotrim/rtcdevice/rtconutc/hwclockfile); see src/rtc/. */
  rtcfile: string | null;
  rtcautotrim: number; // s, 0 = off
  rtcdevice: string; // default /dev/rtc
  rtconutc: boolean;
  hwclockfile: string | null;
  minsources: number; // default 1
  maxdistance: number; // seconds, default 3
  /** Directories given with `sourcedir` (their *.sources were read into `sources`). */
  sourcedirs: string[];
  /** TZif file (or zone name under /usr/share/zoneinfo, e.g. right/UTC) with leap seconds. */
  leapsectz: string | null;
  /** leap-seconds.list file (IETF/NIST format, hash and expiry checked). */
  leapseclist: string | null;
  /** How a leap second is applied to the clock (chrony's leapsecmode), default 'system'. */
  leapsecmode: 'system' | 'step' | 'slew' | 'ignore';
  /** Server-side time smoothing (chrony's smoothtime); leapOnly = leap smear only. */
  smoothtime: { maxFreqPpm: number; maxWanderPpmPerS: number; leapOnly: boolean } | null;
  /** ntp.conf `restrict` rules in file order (empty for chrony.conf); see src/ntp/restrict.ts. */
  restrict: RestrictRule[];
  /** ntp.conf statsdir / statistics / filegen (NTPsec's loopstats, peerstats, clockstats files). */
  statsdir: string | null;
  statistics: Array<'loopstats' | 'peerstats' | 'clockstats'>;
  filegen: Record<
    string,
    { file: string | null; type: 'none' | 'pid' | 'day' | 'week' | 'month' | 'year' | 'age'; enable: boolean }
  >;
  /** Symmetric key file (chrony keyfile / ntp.conf keys); parsed by src/config/keys-file.ts. */
  keyfile: string | null;
  trustedkeys: number[];
  controlkey: number | null;
  /** NTS directives (src/config/nts-config.ts). */
  nts: nts.NtsConfig;
  warnings: string[];
}

export const DEFAULT_CMD_SOCKET = '/var/run/rubidium/rubidiumd.sock';

export const DEFAULT_SOURCE_OPTIONS: Readonly<SourceOptions> = Object.freeze({
  ...SOURCE_DEFAULTS,
  port: 123,
  version: null,
  autoOffline: false,
  maxunreach: 100000,
  ...tuning.SOURCE_TUNING_DEFAULTS,
  ...nts.NTS_SOURCE_DEFAULTS,
});

export const DEFAULT_MAXSOURCES = 4;

/** Configuration rubidiumd uses when started without a file: a localhost-only test server. */
export const DEFAULT_CONFIG_TEXT = `# Rubidium built-in configuration (used when no configuration file is given).
# Serve NTP on localhost only, on an unprivileged port, from the local clock.
port 11123
bindaddress 127.0.0.1
allow 127.0.0.1
local stratum 10
cmdport 11323
bindcmdaddress 127.0.0.1
`;

// What happens to every directive and source option without a case below: directive-status.ts.

const MAX_INCLUDE_DEPTH = 10;

/** File access used by include/confdir/sourcedir; injectable for tests. */
export interface ConfigFs {
  readFile(path: string): string;
  /** Names (not paths) of the entries of a directory; throws if it does not exist. */
  readdir(dir: string): string[];
}

export interface ParseOptions {
  fs?: Partial<ConfigFs>;
}

const nodeFs: ConfigFs = {
  readFile: (p) => fs.readFileSync(p, 'utf8'),
  readdir: (d) => fs.readdirSync(d),
};

export function defaultConfig(): Config {
  return {
    ...tuning.defaultTuning(),
    sources: [],
    access: [],
    local: null,
    makestep: null,
    driftfile: null,
    driftfileInterval: null,
    pidfile: null,
    user: null,
    port: 123,
    bindaddress: [],
    cmdport: 323,
    bindcmdaddress: [],
    cmdSocket: DEFAULT_CMD_SOCKET,
    cmdaccess: [],
    cmdratelimit: null,
    opencommands: null,
    logdir: null,
    log: [],
    logbanner: 32,
    logchange: null,
    rtcsync: false,
    rtcfile: null,
    rtcautotrim: 0,
    rtcdevice: '/dev/rtc',
    rtconutc: false,
    hwclockfile: null,
    minsources: 1,
    maxdistance: 3,
    sourcedirs: [],
    leapsectz: null,
    leapseclist: null,
    leapsecmode: 'system',
    smoothtime: null,
    restrict: [],
    statsdir: null,
    statistics: [],
    filegen: {},
    keyfile: null,
    trustedkeys: [],
    controlkey: null,
    nts: nts.defaultNtsConfig(),
    warnings: [],
  };
}

/** Splits a line into words as chrony does (white space), or null for blank/comment lines. */
export function splitConfigLine(line: string): string[] | null {
  const t = line.trim();
  if (t === '' || '#!;%'.includes(t[0]!)) return null;
  return t.split(/\s+/);
}

class Parser {
  readonly config = defaultConfig();
  private readonly fs: ConfigFs;
  private depth = 0;

  constructor(opts?: ParseOptions) {
    this.fs = { ...nodeFs, ...(opts?.fs ?? {}) };
  }

  parseText(text: string, file: string): void {
    if (++this.depth > MAX_INCLUDE_DEPTH) {
      this.depth--;
      throw new ConfigError(`${file}: maximum include level (${MAX_INCLUDE_DEPTH}) reached`);
    }
    try {
      const lines = text.split(/\r?\n/);
      for (let i = 0; i < lines.length; i++) {
        const words = splitConfigLine(lines[i]!);
        if (words) this.directive(words, `${file}:${i + 1}`, file);
      }
    } finally {
      this.depth--;
    }
  }

  private readFile(p: string, where: string): string {
    try {
      return this.fs.readFile(p);
    } catch (e) {
      throw new ConfigError(`${where}: cannot read ${p}: ${(e as Error).message}`);
    }
  }

  private directive(words: string[], where: string, file: string): void {
    const name = words[0]!.toLowerCase();
    const args = words.slice(1);
    const c = this.config;
    switch (name) {
      case 'server':
      case 'pool':
        c.sources.push(parseSource(name, args, where, c.warnings));
        return;
      case 'allow':
      case 'deny':
        c.access.push(parseAccess(name === 'allow', args, where));
        return;
      case 'cmdallow':
      case 'cmddeny':
        c.cmdaccess.push(parseAccess(name === 'cmdallow', args, where));
        return;
      case 'cmdratelimit':
        c.cmdratelimit = parseCmdRateLimit(args, where);
        return;
      case 'opencommands':
        c.opencommands = parseOpenCommands(args, where);
        return;
      case 'local':
        c.local = parseLocal(args, where);
        return;
      case 'makestep': {
        nArgs(name, args, 2, 2, where);
        const threshold = num(args[0]!, 'makestep threshold', where, 0);
        const limit = int(args[1]!, 'makestep limit', where);
        c.makestep = { threshold, limit };
        return;
      }
      case 'driftfile':
        // chrony 4.8: driftfile FILE [interval SECONDS]
        nArgs(name, args, 1, 3, where);
        if (args.length === 2 || (args.length === 3 && args[1]!.toLowerCase() !== 'interval')) {
          throw new ConfigError(`${where}: invalid driftfile directive (expected: driftfile FILE [interval SECONDS])`);
        }
        c.driftfile = args[0]!;
        c.driftfileInterval = args[2] !== undefined ? int(args[2], 'driftfile interval', where, 1) : null;
        return;
      case 'pidfile':
        nArgs(name, args, 1, 1, where);
        c.pidfile = args[0]!;
        return;
      case 'user':
        nArgs(name, args, 1, 1, where);
        c.user = args[0]!;
        return;
      case 'logdir':
        nArgs(name, args, 1, 1, where);
        c.logdir = args[0]!;
        return;
      case 'port':
        nArgs(name, args, 1, 1, where);
        c.port = int(args[0]!, 'port', where, 0, 65535);
        return;
      case 'cmdport':
        nArgs(name, args, 1, 1, where);
        c.cmdport = int(args[0]!, 'cmdport', where, 0, 65535);
        return;
      case 'bindaddress':
        nArgs(name, args, 1, 1, where);
        ipAddress(args[0]!, 'bindaddress', where);
        addUnique(c.bindaddress, args[0]!);
        return;
      case 'bindcmdaddress': {
        nArgs(name, args, 1, 1, where);
        const a = args[0]!;
        if (a.startsWith('/')) c.cmdSocket = a === '/' ? null : a;
        else {
          ipAddress(a, 'bindcmdaddress', where);
          addUnique(c.bindcmdaddress, a);
        }
        return;
      }
      case 'log':
      case 'logbanner':
      case 'logchange':
      case 'mailonchange':
      case 'rtcsync':
      case 'rtcfile':
      case 'rtcautotrim':
      case 'rtcdevice':
      case 'rtconutc':
      case 'hwclockfile':
        parseLogsRtcDirective(c, name, args, where);
        return;
      case 'minsources':
        nArgs(name, args, 1, 1, where);
        c.minsources = int(args[0]!, 'minsources', where, 1, 64);
        return;
      case 'maxdistance':
        nArgs(name, args, 1, 1, where);
        c.maxdistance = num(args[0]!, 'maxdistance', where, 0);
        return;
      case 'ntsport':
      case 'ntsservercert':
      case 'ntsserverkey':
      case 'ntstrustedcerts':
      case 'nosystemcert':
      case 'nocerttimecheck':
      case 'maxntsconnections':
      case 'ntsrefresh':
      case 'ntsaeads':
      case 'ntsntpserver':
      case 'ntsrotate':
      case 'ntsdumpdir':
      case 'ntscachedir':
      case 'ntsratelimit':
        nts.parseNtsDirective(c.nts, name, args, where, c.warnings);
        return;
      case 'keyfile': // read and validated by src/config/keys-file.ts when keys are used
        nArgs(name, args, 1, 1, where);
        c.keyfile = args[0]!;
        return;
      case 'leapsectz':
      case 'leapseclist':
        nArgs(name, args, 1, 1, where);
        c[name] = args[0]!;
        return;
      case 'leapsecmode':
      case 'smoothtime':
        parseLeapDirective(c, name, args, where);
        return;
      case 'include': {
        nArgs(name, args, 1, 1, where);
        const pattern = resolve(file, args[0]!);
        for (const p of expandGlob(pattern, this.fs)) this.parseText(this.readFile(p, where), p);
        return;
      }
      case 'confdir': {
        if (args.length === 0) throw new ConfigError(`${where}: missing arguments for confdir directive`);
        for (const p of searchDirs(
          args.map((d) => resolve(file, d)),
          '.conf',
          this.fs,
        )) {
          this.parseText(this.readFile(p, where), p);
        }
        return;
      }
      case 'sourcedir': {
        if (args.length === 0) throw new ConfigError(`${where}: missing arguments for sourcedir directive`);
        const dirs = args.map((d) => resolve(file, d));
        for (const d of dirs) addUnique(c.sourcedirs, d);
        for (const p of searchDirs(dirs, '.sources', this.fs)) this.parseSourcesFile(this.readFile(p, where), p);
        return;
      }
      default:
        if (tuning.parseTuningDirective(c, name, args, where, DEFAULT_SOURCE_OPTIONS)) return;
        unimplemented(
          Object.hasOwn(DIRECTIVE_STATUS, name) ? DIRECTIVE_STATUS[name] : undefined,
          words[0]!,
          'directive',
          where,
          c.warnings,
        );
    }
  }

  /** A *.sources file (sourcedir): only server, pool and peer lines. */
  parseSourcesFile(text: string, file: string): void {
    const lines = text.split(/\r?\n/);
    for (let i = 0; i < lines.length; i++) {
      const words = splitConfigLine(lines[i]!);
      if (!words) continue;
      const where = `${file}:${i + 1}`;
      const name = words[0]!.toLowerCase();
      if (name !== 'server' && name !== 'pool' && name !== 'peer') {
        throw new ConfigError(`${where}: only server, pool and peer directives are allowed in a sources file`);
      }
      this.directive(words, where, file);
    }
  }
}

function addUnique(list: string[], v: string): void {
  if (!list.includes(v)) list.push(v);
}

function resolve(fromFile: string, p: string): string {
  if (path.isAbsolute(p)) return p;
  return path.join(path.dirname(fromFile), p);
}

function nArgs(name: string, args: string[], min: number, max: number, where: string): void {
  if (args.length < min) throw new ConfigError(`${where}: missing arguments for ${name} directive`);
  if (args.length > max) throw new ConfigError(`${where}: too many arguments for ${name} directive`);
}

function num(s: string, what: string, where: string, min = -Infinity, max = Infinity): number {
  const v = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s) ? Number(s) : NaN;
  if (!Number.isFinite(v)) throw new ConfigError(`${where}: invalid ${what} '${s}' (not a number)`);
  if (v < min || v > max) throw new ConfigError(`${where}: invalid ${what} '${s}' (must be ${rangeText(min, max)})`);
  return v;
}

function int(s: string, what: string, where: string, min = -Infinity, max = Infinity): number {
  if (!/^[-+]?\d+$/.test(s)) throw new ConfigError(`${where}: invalid ${what} '${s}' (not an integer)`);
  const v = Number(s);
  if (v < min || v > max) throw new ConfigError(`${where}: invalid ${what} '${s}' (must be ${rangeText(min, max)})`);
  return v;
}

function rangeText(min: number, max: number): string {
  if (max === Infinity) return `at least ${min}`;
  if (min === -Infinity) return `at most ${max}`;
  return `${min}..${max}`;
}

const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export function isIpAddress(s: string): boolean {
  if (IPV4_RE.test(s)) return true;
  if (!s.includes(':') || !/^[0-9a-fA-F:.]+$/.test(s)) return false;
  // IPv6: at most one '::', up to 8 groups (an embedded IPv4 counts as 2).
  const dbl = s.split('::');
  if (dbl.length > 2) return false;
  let groups = 0;
  for (const part of dbl) {
    if (part === '') continue;
    const gs = part.split(':');
    for (let i = 0; i < gs.length; i++) {
      const g = gs[i]!;
      if (i === gs.length - 1 && g.includes('.') && part === dbl[dbl.length - 1]) {
        if (!IPV4_RE.test(g)) return false;
        groups += 2;
      } else if (/^[0-9a-fA-F]{1,4}$/.test(g)) groups++;
      else return false;
    }
  }
  return dbl.length === 2 ? groups <= 7 : groups === 8;
}

function ipAddress(s: string, what: string, where: string): void {
  if (!isIpAddress(s)) throw new ConfigError(`${where}: invalid ${what} '${s}' (not an IP address)`);
}

function parseSource(type: SourceType, args: string[], where: string, warnings: string[]): SourceConfig {
  if (args.length === 0) throw new ConfigError(`${where}: missing hostname for ${type} directive`);
  const host = args[0]!;
  const o: SourceOptions = { ...DEFAULT_SOURCE_OPTIONS };
  const src: SourceConfig = { type, host, options: o, origin: where };
  let i = 1;
  const value = (opt: string): string => {
    const v = args[i + 1];
    if (v === undefined) throw new ConfigError(`${where}: missing value for ${type} option '${opt}'`);
    i++;
    return v;
  };
  for (; i < args.length; i++) {
    const opt = args[i]!.toLowerCase();
    switch (opt) {
      case 'minpoll':
        o.minpoll = int(value(opt), 'minpoll', where, -7, 24);
        break;
      case 'maxpoll':
        o.maxpoll = int(value(opt), 'maxpoll', where, -7, 24);
        break;
      case 'iburst':
      case 'burst':
      case 'prefer':
      case 'noselect':
      case 'trust':
      case 'require':
      case 'xleave':
      case 'offline':
        o[opt] = true;
        break;
      case 'maxdelay':
        o.maxdelay = num(value(opt), 'maxdelay', where, 0);
        break;
      case 'polltarget':
        o.polltarget = int(value(opt), 'polltarget', where, 1, 64);
        break;
      case 'port':
        o.port = int(value(opt), 'port', where, 1, 65535);
        break;
      case 'version':
        o.version = int(value(opt), 'version', where, 1, 4);
        break;
      case 'auto_offline':
        o.autoOffline = true;
        break;
      case 'key':
        o.key = int(value(opt), 'key', where, 0, 4294967295);
        break;
      case 'maxunreach':
        o.maxunreach = int(value(opt), 'maxunreach', where, 0, 2147483647);
        break;
      case 'nts':
      case 'ntsport':
      case 'certset':
        nts.parseNtsSourceOption(o, opt, () => value(opt), where);
        break;
      case 'maxsources':
        if (type !== 'pool') throw new ConfigError(`${where}: option 'maxsources' is only valid for pool`);
        src.maxsources = int(value(opt), 'maxsources', where, 1, 16);
        break;
      default: {
        if (tuning.parseTuningSourceOption(o, opt, () => value(opt), where)) break;
        const st = Object.hasOwn(SOURCE_OPTION_STATUS, opt) ? SOURCE_OPTION_STATUS[opt] : undefined;
        const written = args[i]!;
        if (st && st.values > 0) value(opt);
        unimplemented(st?.status, written, `${type} option`, where, warnings);
      }
    }
  }
  if (o.minpoll > o.maxpoll) {
    throw new ConfigError(`${where}: minpoll ${o.minpoll} is greater than maxpoll ${o.maxpoll}`);
  }
  if (type === 'pool' && src.maxsources === undefined) src.maxsources = DEFAULT_MAXSOURCES;
  return src;
}

function parseAccess(allow: boolean, args: string[], where: string): AccessRule {
  const d = allow ? 'allow' : 'deny';
  let all = false;
  let rest = args;
  if (rest[0] === 'all') {
    all = true;
    rest = rest.slice(1);
  }
  if (rest.length > 1) throw new ConfigError(`${where}: too many arguments for ${d} directive`);
  const subnet = rest[0] ?? '';
  if (subnet !== '' && !isSubnetSpec(subnet)) {
    throw new ConfigError(`${where}: invalid subnet '${subnet}' in ${d} directive`);
  }
  return { allow, all, subnet };
}

/** chrony subnet forms: address[/bits], address/mask? (no), shortened IPv4 "1", "1.2", "1.2.3" [/bits], hostname. */
export function isSubnetSpec(s: string): boolean {
  const slash = s.indexOf('/');
  const net = slash >= 0 ? s.slice(0, slash) : s;
  if (slash >= 0) {
    const bits = s.slice(slash + 1);
    if (!/^\d+$/.test(bits)) return false;
    const b = Number(bits);
    const max = net.includes(':') ? 128 : 32;
    if (b > max) return false;
  }
  if (isIpAddress(net)) return true;
  if (/^\d{1,3}(\.\d{1,3}){0,2}$/.test(net)) return net.split('.').every((x) => Number(x) <= 255);
  // A hostname (not with a prefix length, as chrony).
  return (
    slash < 0 &&
    /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$/.test(net) &&
    /[A-Za-z]/.test(net)
  );
}

function parseLocal(args: string[], where: string): LocalConfig {
  const l: LocalConfig = { stratum: 10, orphan: false, distance: 1 };
  for (let i = 0; i < args.length; i++) {
    const opt = args[i]!.toLowerCase();
    const value = (): string => {
      const v = args[++i];
      if (v === undefined) throw new ConfigError(`${where}: missing value for local option '${opt}'`);
      return v;
    };
    if (opt === 'stratum') l.stratum = int(value(), 'local stratum', where, 1, 15);
    else if (opt === 'orphan') l.orphan = true;
    else if (opt === 'distance') l.distance = num(value(), 'local distance', where, 0);
    else if (opt === 'activate') l.activate = num(value(), 'local activate', where, 0);
    else if (opt === 'waitsynced') l.waitsynced = num(value(), 'local waitsynced', where, 0);
    else if (opt === 'waitunsynced') l.waitunsynced = num(value(), 'local waitunsynced', where, 0);
    else throw new ConfigError(`${where}: unknown local option '${args[i]}'`);
  }
  return l;
}

// ---- globbing (include) and directory search (confdir, sourcedir) ----

function hasMagic(s: string): boolean {
  return /[*?[]/.test(s);
}

function globPartToRegExp(part: string): RegExp {
  let re = '';
  for (let i = 0; i < part.length; i++) {
    const ch = part[i]!;
    if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else if (ch === '[') {
      const end = part.indexOf(']', i + 2);
      if (end < 0) re += '\\[';
      else {
        let cls = part.slice(i + 1, end);
        if (cls.startsWith('!')) cls = '^' + cls.slice(1);
        re += '[' + cls.replace(/\\/g, '\\\\') + ']';
        i = end;
      }
    } else re += ch.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp('^' + re + '$');
}

/**
 * Expands a glob pattern (`*`, `?`, `[...]` in any path component) to the sorted list of matching
 * paths. A pattern without wildcards yields itself (like glob with GLOB_NOMAGIC); no match yields
 * nothing (chrony ignores an include that matches no file). Hidden files match only explicitly.
 */
export function expandGlob(pattern: string, cfs: ConfigFs = nodeFs): string[] {
  if (!hasMagic(pattern)) return [pattern];
  const abs = path.isAbsolute(pattern);
  const parts = pattern.split('/').filter((p, i) => p !== '' || i === 0);
  let bases = [abs ? '/' : '.'];
  for (let k = abs ? 1 : 0; k < parts.length; k++) {
    const part = parts[k]!;
    const next: string[] = [];
    for (const b of bases) {
      if (!hasMagic(part)) {
        next.push(b === '.' && !abs && k === 0 ? part : path.join(b, part));
        continue;
      }
      let names: string[];
      try {
        names = cfs.readdir(b);
      } catch {
        continue;
      }
      const re = globPartToRegExp(part);
      for (const n of names.sort()) {
        if (n.startsWith('.') && !part.startsWith('.')) continue;
        if (re.test(n)) next.push(b === '.' && !abs ? n : path.join(b, n));
      }
    }
    bases = next;
  }
  if (parts.length > 0 && !hasMagic(parts[parts.length - 1]!)) {
    // A literal last component after wildcard directories: keep only what exists.
    bases = bases.filter((p) => {
      try {
        return cfs.readdir(path.dirname(p)).includes(path.basename(p));
      } catch {
        return false;
      }
    });
  }
  return bases.sort();
}

/**
 * chrony's confdir/sourcedir search: all `*suffix` files of the directories, sorted by file name;
 * when the same name is in several directories, only the one from the earliest directory in the
 * directive is used. Missing directories are skipped.
 */
export function searchDirs(dirs: string[], suffix: string, cfs: ConfigFs = nodeFs): string[] {
  const byName = new Map<string, string>();
  for (const d of dirs) {
    let names: string[];
    try {
      names = cfs.readdir(d);
    } catch {
      continue;
    }
    for (const n of names) {
      if (n.startsWith('.') || n.length <= suffix.length || !n.endsWith(suffix)) continue; // as glob "*suffix"
      if (!byName.has(n)) byName.set(n, path.join(d, n));
    }
  }
  return [...byName.keys()].sort().map((n) => byName.get(n)!);
}

// ---- API ----

export function parseConfigText(text: string, fileName: string, opts?: ParseOptions): Config {
  const p = new Parser(opts);
  p.parseText(text, fileName);
  return p.config;
}

export function loadConfigFile(file: string, opts?: ParseOptions): Config {
  const p = new Parser(opts);
  let text: string;
  try {
    text = (opts?.fs?.readFile ?? nodeFs.readFile)(file);
  } catch (e) {
    throw new ConfigError(`${file}: cannot read configuration: ${(e as Error).message}`);
  }
  p.parseText(text, file);
  return p.config;
}

function fmtNum(v: number): string {
  return String(v);
}

/**
 * Prints a configuration back in chrony.conf syntax (rubidiumd -p). Sources read from sourcedir
 * files are printed as plain server/pool lines followed by the sourcedir lines commented out (so
 * the output parses back to the same configuration); warnings are printed as comments.
 */
export function formatConfig(c: Config): string {
  const out: string[] = [];
  const d = defaultConfig();
  for (const s of c.sources) {
    const w: string[] = [s.type, s.host];
    const o = s.options;
    const dflt = DEFAULT_SOURCE_OPTIONS;
    if (o.minpoll !== dflt.minpoll) w.push('minpoll', fmtNum(o.minpoll));
    if (o.maxpoll !== dflt.maxpoll) w.push('maxpoll', fmtNum(o.maxpoll));
    if (o.maxdelay !== dflt.maxdelay) w.push('maxdelay', fmtNum(o.maxdelay));
    if (o.polltarget !== dflt.polltarget) w.push('polltarget', fmtNum(o.polltarget));
    if (o.port !== dflt.port) w.push('port', fmtNum(o.port));
    if (o.version !== null) w.push('version', fmtNum(o.version));
    if (s.type === 'pool' && s.maxsources !== undefined && s.maxsources !== DEFAULT_MAXSOURCES) {
      w.push('maxsources', fmtNum(s.maxsources));
    }
    for (const f of ['iburst', 'burst', 'prefer', 'noselect', 'trust', 'require', 'xleave', 'offline'] as const) {
      if (o[f]) w.push(f);
    }
    if (o.autoOffline) w.push('auto_offline');
    if (o.maxunreach !== dflt.maxunreach) w.push('maxunreach', fmtNum(o.maxunreach));
    if (o.key !== undefined) w.push('key', fmtNum(o.key));
    w.push(...tuning.formatSourceTuning(o));
    w.push(...nts.formatNtsSourceOptions(o));
    out.push(w.join(' '));
  }
  for (const dir of c.sourcedirs) out.push(`#sourcedir ${dir}  (its sources are listed above)`);
  if (c.minsources !== d.minsources) out.push(`minsources ${c.minsources}`);
  if (c.maxdistance !== d.maxdistance) out.push(`maxdistance ${fmtNum(c.maxdistance)}`);
  if (c.makestep) out.push(`makestep ${fmtNum(c.makestep.threshold)} ${c.makestep.limit}`);
  if (c.driftfile !== null) {
    out.push(
      `driftfile ${c.driftfile}${c.driftfileInterval !== null ? ' interval ' + fmtNum(c.driftfileInterval) : ''}`,
    );
  }
  if (c.pidfile !== null) out.push(`pidfile ${c.pidfile}`);
  if (c.user !== null) out.push(`user ${c.user}`);
  if (c.port !== d.port) out.push(`port ${c.port}`);
  for (const a of c.bindaddress) out.push(`bindaddress ${a}`);
  for (const r of c.access) {
    out.push([r.allow ? 'allow' : 'deny', ...(r.all ? ['all'] : []), ...(r.subnet ? [r.subnet] : [])].join(' '));
  }
  if (c.local) {
    const w = ['local', 'stratum', String(c.local.stratum)];
    if (c.local.orphan) w.push('orphan');
    if (c.local.distance !== 1) w.push('distance', fmtNum(c.local.distance));
    if (c.local.activate !== undefined) w.push('activate', fmtNum(c.local.activate));
    if (c.local.waitsynced !== undefined) w.push('waitsynced', fmtNum(c.local.waitsynced));
    if (c.local.waitunsynced !== undefined) w.push('waitunsynced', fmtNum(c.local.waitunsynced));
    out.push(w.join(' '));
  }
  if (c.cmdport !== d.cmdport) out.push(`cmdport ${c.cmdport}`);
  for (const a of c.bindcmdaddress) out.push(`bindcmdaddress ${a}`);
  if (c.cmdSocket !== d.cmdSocket) out.push(`bindcmdaddress ${c.cmdSocket ?? '/'}`);
  for (const r of c.cmdaccess)
    out.push(['cmd' + (r.allow ? 'allow' : 'deny'), ...(r.all ? ['all'] : []), r.subnet].join(' ').trim());
  if (c.cmdratelimit) out.push(formatCmdRateLimit(c.cmdratelimit));
  if (c.opencommands) out.push(['opencommands', ...c.opencommands].join(' '));
  if (c.keyfile !== null) out.push(`keyfile ${c.keyfile}`);
  if (c.logdir !== null) out.push(`logdir ${c.logdir}`);
  if (c.log.length > 0) out.push(`log ${c.log.join(' ')}`);
  out.push(...formatLeapConfig(c));
  out.push(...formatLogsRtcConfig(c));
  out.push(...tuning.formatTuning(c));
  out.push(...nts.formatNtsConfig(c.nts));
  for (const w of c.warnings) out.push(`# warning: ${w}`);
  return out.join('\n') + (out.length ? '\n' : '');
}
