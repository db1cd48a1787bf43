/**
 * ntp.conf parser (NTPsec 1.2 and NTP Classic 4.2.8 syntax) into the same `Config` as chrony.conf.
 * Every directive is either mapped onto a Config field, accepted with a warning saying what is
 * lost, or refused with a `ConfigError` ("file:line: what"); unknown directives are errors.
 * Policies (see docs/ntp-conf.md):
 * - `peer` is treated as `server` with a warning (NTPsec made it an alias; Rubidium has no
 *   symmetric mode).
 * - Reference clocks (`refclock`, `server 127.127.T.U`, `fudge`) are refused until they exist.
 * - `key N` on a source works with the `keys` file (and `trustedkey` limits the keys the server
 *   accepts); `nts` is refused: silently polling without the authentication asked for would be
 *   a downgrade. (The converter keeps both for chronyd.)
 * - No `tinker step`: ntpd steps offsets above 0.128 s at any time, so makestep 0.128 -1;
 *   `tinker step 0` = never step.
 *
 * Syntax: '#' starts a comment anywhere on a line; words are separated by white space; a word
 * may be double-quoted (file names with spaces).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  ConfigError,
  DEFAULT_MAXSOURCES,
  DEFAULT_SOURCE_OPTIONS,
  defaultConfig,
  expandGlob,
  isIpAddress,
  searchDirs,
  type Config,
  type SourceConfig,
  type SourceOptions,
} from './chrony-conf.js';
import { formatRestrictRule, parseRestrictArgs, RestrictTable } from '../ntp/restrict.js';

export interface NtpConfParseOptions {
  /** File reading for includefile; injectable for tests. */
  readFile?: (p: string) => string;
  readdir?: (d: string) => string[];
  /**
   * Converter mode: what Rubidium refuses but chronyd supports (`key`, `nts`, reference clocks)
   * is recorded in `chrony` instead of throwing.
   */
  forConversion?: boolean;
}

/** What the converter needs beyond `Config`. */
export interface NtpConfExtras {
  /** Extra chrony source options per source (same order as config.sources), e.g. ["key 5"]. */
  sourceOptions: Map<SourceConfig, string[]>;
  /** Extra chrony.conf lines (e.g. ntstrustedcerts, refclock). */
  chronyLines: string[];
  /** "file:line: `text` — why" for everything with no exact chrony equivalent. */
  notes: string[];
  /** Keys file named by `keys` (ntp format). */
  ntpKeysFile: string | null;
}

export interface NtpConfResult {
  config: Config;
  extras: NtpConfExtras;
}

/** Configs parsed from ntp.conf (so the daemon builds a RestrictTable and -p prints ntp.conf syntax). */
const fromNtpConf = new WeakSet<Config>();

export function isFromNtpConf(c: Config): boolean {
  return fromNtpConf.has(c);
}

const MAX_INCLUDE_DEPTH = 5; // as ntpd
const DEFAULT_STEP = 0.128;
/** ntpd's `discard average 3` (one answer per 8 s on average) with chrony's burst and leak. */
const NTPD_RATELIMIT = { interval: 3, burst: 8, leak: 2, kod: 0 };
const REFCLOCK_MSG = 'reference clocks are not supported yet (planned)';
const STAT_NAMES = new Set(['loopstats', 'peerstats', 'clockstats']);
const ALL_STAT_NAMES = new Set([
  'loopstats',
  'peerstats',
  'clockstats',
  'rawstats',
  'sysstats',
  'protostats',
  'timingstats',
  'usestats',
  'cryptostats',
  'ntsstats',
  'ntskestats',
]);
const FILEGEN_TYPES = new Set(['none', 'pid', 'day', 'week', 'month', 'year', 'age']);

/** Directives accepted and ignored with a warning: name → why it does not matter / what is lost. */
const IGNORED_DIRECTIVES: Record<string, string> = {
  logconfig: 'syslog message classes are not configurable; Rubidium logs to stderr',
  logfile: 'Rubidium logs to stderr (run it under a service manager to keep the log)',
  setvar: 'mode 6 system variables set by the user are not supported',
  mru: 'the client log size is chrony-style (clientloglimit)',
  rlimit: 'resource limits are left to the service manager',
  nonvolatile: 'the drift file is written at a fixed interval',
  mdnstries: 'mDNS registration is not supported',
  calldelay: 'modem reference clocks are not supported',
  phone: 'modem reference clocks are not supported',
  reset: 'a runtime command; it has no meaning at start-up',
  leapsmearinterval: 'leap smearing is chrony-style (smoothtime); not converted automatically',
  saveconfigdir: 'ntpq saveconfig is not supported',
  requestkey: 'mode 7 (ntpdc) is never implemented',
  automax: 'Autokey is not supported',
  crypto: 'Autokey is not supported',
  keysdir: 'Autokey is not supported',
  revoke: 'Autokey is not supported',
  trap: 'mode 6 traps are not supported',
  broadcastdelay: 'broadcast mode is not supported',
};

/** Directives that change the mode of operation and cannot be honoured: refused. */
const REFUSED_DIRECTIVES: Record<string, string> = {
  broadcast: 'broadcast mode is not supported (insecure; use server/pool)',
  broadcastclient: 'broadcast mode is not supported (insecure; use server/pool)',
  manycastclient: 'manycast is not supported (use pool)',
  manycastserver: 'manycast is not supported',
  multicastclient: 'multicast mode is not supported (insecure; use server/pool)',
  unpeer: 'unpeer is a runtime command',
};

function tokenize(line: string, where: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < line.length) {
    const ch = line[i]!;
    if (ch === '#') break;
    if (/\s/.test(ch)) {
      i++;
      continue;
    }
    if (ch === '"') {
      const end = line.indexOf('"', i + 1);
      if (end < 0) throw new ConfigError(`${where}: unterminated quoted string`);
      words.push(line.slice(i + 1, end));
      i = end + 1;
      continue;
    }
    let j = i;
    while (j < line.length && !/\s/.test(line[j]!) && line[j] !== '#') j++;
    words.push(line.slice(i, j));
    i = j;
  }
  return words;
}

function int(s: string | undefined, what: string, where: string, min: number, max: number): number {
  if (s === undefined) throw new ConfigError(`${where}: missing value for ${what}`);
  if (!/^[-+]?\d+$/.test(s)) throw new ConfigError(`${where}: invalid ${what} '${s}' (not an integer)`);
  const v = Number(s);
  if (v < min || v > max) throw new ConfigError(`${where}: invalid ${what} '${s}' (must be ${min}..${max})`);
  return v;
}

function num(s: string | undefined, what: string, where: string, min = -Infinity, max = Infinity): number {
  if (s === undefined) throw new ConfigError(`${where}: missing value for ${what}`);
  const v = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s) ? Number(s) : NaN;
  if (!Number.isFinite(v)) throw new ConfigError(`${where}: invalid ${what} '${s}' (not a number)`);
  if (v < min || v > max) throw new ConfigError(`${where}: invalid ${what} '${s}' (out of range)`);
  return v;
}

/** `127.127.T.U`: a Classic reference clock pseudo-address. */
function isRefclockAddress(host: string): boolean {
  return /^127\.127\.\d{1,3}\.\d{1,3}$/.test(host);
}

class NtpParser {
  readonly config = defaultConfig();
  readonly extras: NtpConfExtras = { sourceOptions: new Map(), chronyLines: [], notes: [], ntpKeysFile: null };
  private depth = 0;
  private orphanWait: number | undefined;

  constructor(private readonly opts: NtpConfParseOptions) {
    // ntpd's default: step offsets above 0.128 s at any time (tinker step changes it).
    this.config.makestep = { threshold: DEFAULT_STEP, limit: -1 };
  }

  private warn(where: string, msg: string): void {
    this.config.warnings.push(`${where}: ${msg}`);
  }

  private note(where: string, words: string[], why: string): void {
    this.extras.notes.push(`${where}: '${words.join(' ')}' — ${why}`);
  }

  /** Rubidium cannot do it, chronyd can: an error, or a chrony line in converter mode. */
  private unsupported(where: string, msg: string): void {
    if (!this.opts.forConversion) throw new ConfigError(`${where}: ${msg}`);
  }

  private read(p: string, where: string): string {
    try {
      return (this.opts.readFile ?? ((f: string) => fs.readFileSync(f, 'utf8')))(p);
    } catch (e) {
      throw new ConfigError(`${where}: cannot read ${p}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }

  parseText(text: string, file: string): void {
    if (++this.depth > MAX_INCLUDE_DEPTH) {
      this.depth--;
      throw new ConfigError(`${file}: maximum includefile depth (${MAX_INCLUDE_DEPTH}) reached`);
    }
    try {
      const lines = text.split(/\r?\n/);
      for (let i = 0; i < lines.length; i++) {
        const where = `${file}:${i + 1}`;
        const words = tokenize(lines[i]!, where);
        if (words.length) this.directive(words, where, file);
      }
    } finally {
      this.depth--;
    }
  }

  private directive(words: string[], where: string, file: string): void {
    const name = words[0]!.toLowerCase();
    const args = words.slice(1);
    const c = this.config;
    switch (name) {
      case 'server':
      case 'pool':
      case 'peer':
        this.source(name, args, where, words);
        return;
      case 'refclock':
        this.refclock(words, where);
        return;
      case 'fudge':
        if (!this.opts.forConversion) throw new ConfigError(`${where}: ${REFCLOCK_MSG}`);
        this.note(where, words, 'fudge: set the equivalent options on the refclock line by hand');
        return;
      case 'restrict':
      case 'unrestrict':
        try {
          c.restrict.push(parseRestrictArgs(args, name === 'unrestrict', where, c.warnings));
        } catch (e) {
          throw new ConfigError(`${where}: ${(e as Error).message}`);
        }
        return;
      case 'discard':
      case 'limit':
        this.rateLimit(name, args, where, words);
        return;
      case 'driftfile':
        if (args.length !== 1) throw new ConfigError(`${where}: driftfile takes one file name`);
        c.driftfile = args[0]!;
        return;
      case 'leapfile':
        if (args.length !== 1) throw new ConfigError(`${where}: leapfile takes one file name`);
        c.leapseclist = args[0]!;
        return;
      case 'statsdir':
        if (args.length !== 1) throw new ConfigError(`${where}: statsdir takes one directory`);
        c.statsdir = args[0]!;
        return;
      case 'statistics':
        for (const s of args) {
          const n = s.toLowerCase();
          if (!ALL_STAT_NAMES.has(n)) throw new ConfigError(`${where}: unknown statistics type '${s}'`);
          if (STAT_NAMES.has(n)) {
            if (!c.statistics.includes(n as 'loopstats')) c.statistics.push(n as 'loopstats');
          } else this.warn(where, `statistics '${n}' is not supported, ignored`);
        }
        return;
      case 'filegen':
        this.filegen(args, where);
        return;
      case 'tos':
        this.tos(args, where, words);
        return;
      case 'tinker':
        this.tinker(args, where, words);
        return;
      case 'keys':
        if (args.length !== 1) throw new ConfigError(`${where}: keys takes one file name`);
        c.keyfile = args[0]!;
        this.extras.ntpKeysFile = args[0]!;
        return;
      case 'trustedkey':
        for (const k of parseKeyList(args, where)) if (!c.trustedkeys.includes(k)) c.trustedkeys.push(k);
        return;
      case 'controlkey':
        if (args.length !== 1) throw new ConfigError(`${where}: controlkey takes one key number`);
        c.controlkey = int(args[0], 'controlkey', where, 1, 65535);
        return;
      case 'interface':
      case 'nic':
        this.iface(args, where, words);
        return;
      case 'enable':
      case 'disable':
        this.enableDisable(name === 'enable', args, where, words);
        return;
      case 'includefile': {
        if (args.length !== 1) throw new ConfigError(`${where}: includefile takes one file name`);
        const p = path.isAbsolute(args[0]!) ? args[0]! : path.join(path.dirname(file), args[0]!);
        let isDir = false;
        try {
          isDir = !this.opts.readFile && fs.statSync(p).isDirectory();
        } catch {
          // read() reports a missing file
        }
        if (isDir) {
          const cfs = { readFile: (f: string) => this.read(f, where), readdir: (d: string) => fs.readdirSync(d) };
          for (const f of searchDirs([p], '.conf', cfs)) this.parseText(this.read(f, where), f);
        } else {
          const cfs = {
            readFile: (f: string) => this.read(f, where),
            readdir: this.opts.readdir ?? ((d: string) => fs.readdirSync(d)),
          };
          for (const f of expandGlob(p, cfs)) this.parseText(this.read(f, where), f);
        }
        return;
      }
      case 'nts':
        // NTPsec's global NTS-KE server / CA settings.
        if (args.some((a) => a.toLowerCase() === 'enable')) {
          this.unsupported(where, 'NTS-KE server (nts enable) is not supported yet (planned)');
        }
        this.warn(where, 'nts server settings are not supported yet, ignored');
        this.note(where, words, 'NTS server: use ntsserverkey/ntsservercert in chrony.conf by hand');
        return;
      default:
        if (name in REFUSED_DIRECTIVES) throw new ConfigError(`${where}: ${REFUSED_DIRECTIVES[name]}`);
        if (name in IGNORED_DIRECTIVES) {
          this.warn(where, `'${name}' ignored: ${IGNORED_DIRECTIVES[name]}`);
          this.note(where, words, `no chrony equivalent (${IGNORED_DIRECTIVES[name]})`);
          return;
        }
        throw new ConfigError(`${where}: unknown directive '${words[0]}'`);
    }
  }

  private source(kind: 'server' | 'pool' | 'peer', args: string[], where: string, words: string[]): void {
    let i = 0;
    let family: 4 | 6 | null = null;
    while (args[i] === '-4' || args[i] === '-6' || args[i] === '--ipv4' || args[i] === '--ipv6') {
      family = args[i]!.includes('4') ? 4 : 6;
      i++;
    }
    let host = args[i++];
    if (host === undefined) throw new ConfigError(`${where}: missing address for ${kind}`);
    if (host.toLowerCase() === 'clock' || isRefclockAddress(host)) {
      if (!this.opts.forConversion) {
        const local = host.startsWith('127.127.1.') ? ' (for the LOCAL clock driver use `tos orphan STRATUM`)' : '';
        throw new ConfigError(`${where}: ${REFCLOCK_MSG}${local}`);
      }
      this.refclock(words, where);
      return;
    }
    if (host.startsWith('[')) {
      const end = host.indexOf(']');
      if (end < 0) throw new ConfigError(`${where}: invalid address '${host}'`);
      host = host.slice(1, end) + host.slice(end + 1); // keep %zone
    }
    if (!isIpAddress(host.replace(/%.*$/, '')) && !/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?\.?$/.test(host)) {
      throw new ConfigError(`${where}: invalid address or host name '${host}'`);
    }
    if (kind === 'peer') {
      this.warn(where, `peer ${host}: symmetric mode is not implemented; polled as a server (as NTPsec does)`);
      this.note(where, words, 'symmetric mode converted to server (NTPsec treats peer as server)');
    }
    const type = kind === 'pool' ? 'pool' : 'server';
    const o: SourceOptions = { ...DEFAULT_SOURCE_OPTIONS };
    const src: SourceConfig = { type, host, options: o, origin: where };
    if (type === 'pool') src.maxsources = DEFAULT_MAXSOURCES;
    const extra: string[] = [];
    if (family !== null) {
      this.warn(where, `-${family} on ${kind} is ignored (use rubidiumd -${family})`);
      this.note(where, words, `-${family}: chrony 4.3 has no per-source address family (use chronyd -${family})`);
    }
    const value = (opt: string): string => {
      const v = args[++i];
      if (v === undefined) throw new ConfigError(`${where}: missing value for ${kind} option '${opt}'`);
      return v;
    };
    for (; i < args.length; i++) {
      const opt = args[i]!.toLowerCase();
      switch (opt) {
        case 'minpoll':
          o.minpoll = int(value(opt), 'minpoll', where, 0, 17);
          break;
        case 'maxpoll':
          o.maxpoll = int(value(opt), 'maxpoll', where, 0, 17);
          break;
        case 'iburst':
        case 'burst':
        case 'prefer':
        case 'noselect':
        case 'xleave':
          o[opt] = true;
          break;
        case 'true':
          o.trust = true;
          this.note(where, words, "'true' mapped to chrony's trust (close, not identical)");
          break;
        case 'version':
          o.version = int(value(opt), 'version', where, 1, 4);
          break;
        case 'bias': {
          o.offset = num(value(opt), 'bias', where, -1e6, 1e6);
          break;
        }
        case 'key': {
          const k = int(value(opt), 'key', where, 1, 65535);
          o.key = k; // checked against the `keys` file at daemon start (src/daemon/keys-setup.ts)
          extra.push(`key ${k}`);
          break;
        }
        case 'nts':
          this.unsupported(where, `${kind} option 'nts' is not supported yet (planned)`);
          extra.push('nts');
          break;
        case 'noval':
          this.note(where, words, 'noval: chrony has no per-source switch to skip certificate checks');
          break;
        case 'ca': {
          const ca = value(opt);
          if (!this.extras.chronyLines.includes(`ntstrustedcerts ${ca}`)) {
            this.extras.chronyLines.push(`ntstrustedcerts ${ca}`);
          }
          this.note(where, words, 'ca PATH became the global ntstrustedcerts (chrony has no per-source CA in 4.3)');
          break;
        }
        case 'aead':
          value(opt);
          this.note(where, words, 'aead: chrony negotiates the AEAD itself');
          break;
        case 'preempt':
          this.note(where, words, 'preempt: chrony replaces unreachable pool servers by itself');
          break;
        case 'mode':
        case 'ttl':
          value(opt);
          this.warn(where, `${kind} option '${opt}' only applies to refclocks/manycast, ignored`);
          this.note(where, words, `${opt} has no meaning for an NTP server`);
          break;
        case 'autokey':
          throw new ConfigError(`${where}: Autokey is not supported (use NTS)`);
        default:
          throw new ConfigError(`${where}: unknown ${kind} option '${args[i]}'`);
      }
    }
    if (o.minpoll > o.maxpoll) {
      throw new ConfigError(`${where}: minpoll ${o.minpoll} is greater than maxpoll ${o.maxpoll}`);
    }
    this.config.sources.push(src);
    if (extra.length) this.extras.sourceOptions.set(src, extra);
  }

  private refclock(words: string[], where: string): void {
    if (!this.opts.forConversion) throw new ConfigError(`${where}: ${REFCLOCK_MSG}`);
    this.note(where, words, 'reference clock: write the chrony refclock line by hand (e.g. refclock SHM 0)');
  }

  private rateLimit(name: string, args: string[], where: string, words: string[]): void {
    // Classic: discard average A(log2 s) minimum M monitor N. NTPsec: limit average R(pps) burst B kod K.
    const r = { ...NTPD_RATELIMIT };
    for (let i = 0; i < args.length; i += 2) {
      const k = args[i]!.toLowerCase();
      const v = args[i + 1];
      if (name === 'discard' && k === 'average') r.interval = int(v, 'discard average', where, -19, 12);
      else if (name === 'discard' && (k === 'minimum' || k === 'monitor')) int(v, `discard ${k}`, where, 0, 1e9);
      else if (name === 'limit' && k === 'average') {
        const pps = num(v, 'limit average', where, 1e-6, 1e6);
        r.interval = Math.max(-19, Math.min(12, Math.round(-Math.log2(pps))));
      } else if (name === 'limit' && k === 'burst')
        r.burst = Math.max(1, Math.min(255, Math.round(num(v, 'burst', where, 1))));
      else if (name === 'limit' && k === 'kod') num(v, 'limit kod', where, 0);
      else throw new ConfigError(`${where}: unknown ${name} option '${args[i]}'`);
    }
    this.config.ratelimit = r;
    this.note(where, words, `mapped to ratelimit interval ${r.interval} burst ${r.burst} (approximate)`);
  }

  private filegen(args: string[], where: string): void {
    const n = args[0]?.toLowerCase();
    if (!n) throw new ConfigError(`${where}: missing name for filegen`);
    if (!ALL_STAT_NAMES.has(n)) throw new ConfigError(`${where}: unknown filegen name '${args[0]}'`);
    const g = this.config.filegen[n] ?? { file: null, type: 'day' as const, enable: false };
    for (let i = 1; i < args.length; i++) {
      const k = args[i]!.toLowerCase();
      if (k === 'file') {
        const f = args[++i];
        if (f === undefined) throw new ConfigError(`${where}: missing value for filegen file`);
        g.file = f;
      } else if (k === 'type') {
        const t = args[++i]?.toLowerCase();
        if (t === undefined || !FILEGEN_TYPES.has(t)) {
          throw new ConfigError(`${where}: invalid filegen type '${args[i] ?? ''}' (none pid day week month year age)`);
        }
        g.type = t as typeof g.type;
      } else if (k === 'enable' || k === 'disable') g.enable = k === 'enable';
      else if (k === 'link' || k === 'nolink') continue;
      else throw new ConfigError(`${where}: unknown filegen option '${args[i]}'`);
    }
    this.config.filegen[n] = g;
    if (!STAT_NAMES.has(n)) this.warn(where, `filegen '${n}' is not supported, ignored`);
  }

  private tos(args: string[], where: string, words: string[]): void {
    const c = this.config;
    if (args.length === 0 || args.length % 2 !== 0) throw new ConfigError(`${where}: tos takes KEYWORD VALUE pairs`);
    for (let i = 0; i < args.length; i += 2) {
      const k = args[i]!.toLowerCase();
      const v = args[i + 1];
      switch (k) {
        case 'minsane':
          c.minsources = int(v, 'tos minsane', where, 1, 64);
          break;
        case 'maxdist':
          c.maxdistance = num(v, 'tos maxdist', where, 0.001, 16);
          break;
        case 'orphan':
          c.local = { ...(c.local ?? { distance: 1 }), stratum: int(v, 'tos orphan', where, 1, 15), orphan: true };
          if (this.orphanWait !== undefined) c.local.waitunsynced = this.orphanWait;
          break;
        case 'orphanwait': {
          // ntpd waits orphanwait (300 s) unsynchronised before orphan mode: local waitunsynced.
          this.orphanWait = num(v, 'tos orphanwait', where, 0, 1e6);
          if (c.local) c.local.waitunsynced = this.orphanWait;
          break;
        }
        case 'minclock':
        case 'maxclock':
        case 'mindist':
        case 'ceiling':
        case 'floor':
        case 'beacon':
        case 'cohort':
        case 'bcpollbstep':
          num(v, `tos ${k}`, where);
          this.warn(where, `tos ${k} is not supported, ignored`);
          this.note(where, [`tos ${k} ${v}`], 'no chrony equivalent');
          break;
        default:
          throw new ConfigError(`${where}: unknown tos option '${args[i]}'`);
      }
    }
    void words;
  }

  private tinker(args: string[], where: string, words: string[]): void {
    const c = this.config;
    if (args.length === 0 || args.length % 2 !== 0) throw new ConfigError(`${where}: tinker takes KEYWORD VALUE pairs`);
    for (let i = 0; i < args.length; i += 2) {
      const k = args[i]!.toLowerCase();
      const v = args[i + 1];
      switch (k) {
        case 'step': {
          const s = num(v, 'tinker step', where, 0);
          c.makestep = s === 0 ? null : { threshold: s, limit: -1 };
          break;
        }
        case 'panic':
        case 'stepout':
        case 'stepback':
        case 'stepfwd':
        case 'allan':
        case 'dispersion':
        case 'freq':
        case 'huffpuff':
          num(v, `tinker ${k}`, where);
          this.warn(where, `tinker ${k} is not supported, ignored`);
          this.note(where, [`tinker ${k} ${v}`], 'no chrony equivalent');
          break;
        default:
          throw new ConfigError(`${where}: unknown tinker option '${args[i]}'`);
      }
    }
    void words;
  }

  private iface(args: string[], where: string, words: string[]): void {
    const action = args[0]?.toLowerCase();
    const what = args[1];
    if (!action || !['listen', 'ignore', 'drop'].includes(action) || what === undefined || args.length > 2) {
      throw new ConfigError(`${where}: expected 'interface listen|ignore|drop all|ipv4|ipv6|wildcard|NAME|ADDR[/len]'`);
    }
    const w = what.toLowerCase();
    if (action === 'listen' && isIpAddress(what)) {
      if (!this.config.bindaddress.includes(what)) this.config.bindaddress.push(what);
      return;
    }
    if (action === 'ignore' && w === 'wildcard') return; // binding to listed addresses only is what bindaddress does
    if (action === 'listen' && ['all', 'ipv4', 'ipv6', 'wildcard'].includes(w)) return; // the default
    this.warn(where, `interface ${action} ${what} is not supported, ignored`);
    this.note(where, words, 'only "interface listen ADDRESS" maps (to bindaddress)');
  }

  private enableDisable(on: boolean, args: string[], where: string, words: string[]): void {
    const known = [
      'auth',
      'bclient',
      'calibrate',
      'kernel',
      'mode7',
      'monitor',
      'ntp',
      'peer_clear_digest_early',
      'pps',
      'stats',
      'unpeer_crypto_early',
      'unpeer_crypto_nak_early',
      'unpeer_digest_early',
    ];
    for (const a of args) {
      const f = a.toLowerCase();
      if (!known.includes(f)) throw new ConfigError(`${where}: unknown ${on ? 'enable' : 'disable'} flag '${a}'`);
      if (f === 'monitor') {
        this.config.noclientlog = !on;
        continue;
      }
      if (f === 'mode7' && on) throw new ConfigError(`${where}: mode 7 is never implemented (amplification risk)`);
      if (f === 'ntp' && !on) throw new ConfigError(`${where}: 'disable ntp' (free-running clock) is not supported`);
      this.warn(where, `${on ? 'enable' : 'disable'} ${f} has no effect in Rubidium`);
    }
    if (!args.length) throw new ConfigError(`${where}: missing flags for ${on ? 'enable' : 'disable'}`);
    if (args.some((a) => a.toLowerCase() !== 'monitor')) this.note(where, words, 'no chrony equivalent');
  }
}

/** `trustedkey 1 2 (5 ... 9)` key lists (NTPsec range form; also `(5...9)` without spaces). */
export function parseKeyList(args: string[], where: string): number[] {
  const out: number[] = [];
  const text = args
    .join(' ')
    .replace(/\(/g, ' ( ')
    .replace(/\)/g, ' ) ')
    .replace(/\.\.\./g, ' ... ');
  const t = text.split(/\s+/).filter(Boolean);
  for (let i = 0; i < t.length; i++) {
    if (t[i] === '(') {
      const a = int(t[i + 1], 'trustedkey range start', where, 1, 65535);
      if (t[i + 2] !== '...' || t[i + 4] !== ')')
        throw new ConfigError(`${where}: bad key range (use '(FIRST ... LAST)')`);
      const b = int(t[i + 3], 'trustedkey range end', where, a, 65535);
      if (b - a > 65535) throw new ConfigError(`${where}: key range too large`);
      for (let k = a; k <= b; k++) out.push(k);
      i += 4;
    } else out.push(int(t[i], 'trustedkey', where, 1, 65535));
  }
  if (out.length === 0) throw new ConfigError(`${where}: missing key numbers for trustedkey`);
  return out;
}

export function parseNtpConf(text: string, file: string, opts: NtpConfParseOptions = {}): NtpConfResult {
  const p = new NtpParser(opts);
  p.parseText(text, file);
  // `limited` (NTPsec's default entry has it) needs the rate limiter: ntpd's discard defaults.
  if (!p.config.ratelimit && new RestrictTable(p.config.restrict).usesLimited) {
    p.config.ratelimit = { ...NTPD_RATELIMIT };
  }
  fromNtpConf.add(p.config);
  return { config: p.config, extras: p.extras };
}

export function parseNtpConfText(text: string, file: string, opts: NtpConfParseOptions = {}): Config {
  return parseNtpConf(text, file, opts).config;
}

export function loadNtpConfFile(file: string, opts: NtpConfParseOptions = {}): Config {
  let text: string;
  try {
    text = (opts.readFile ?? ((f: string) => fs.readFileSync(f, 'utf8')))(file);
  } catch (e) {
    throw new ConfigError(`${file}: cannot read configuration: ${(e as Error).message}`);
  }
  return parseNtpConfText(text, file, opts);
}

/**
 * The daemon's restrict table for an ntp.conf configuration: the rules, plus host entries from
 * `restrict source` for every resolved source address. Its `serveAllowed` is the NTP server's
 * access predicate, `queryAllowed` the mode 6 handler's.
 */
export function buildRestrictTable(c: Config, sourceAddresses: readonly string[]): RestrictTable {
  const t = new RestrictTable(c.restrict);
  if (t.hasSourceTemplates) for (const a of sourceAddresses) t.addSourceAddress(a);
  return t;
}

// ---- detection ----

/** Directives only ntp.conf has (chrony.conf would reject them). */
const NTP_ONLY = new Set([
  'restrict',
  'unrestrict',
  'tos',
  'tinker',
  'fudge',
  'statsdir',
  'statistics',
  'filegen',
  'keys',
  'trustedkey',
  'controlkey',
  'requestkey',
  'interface',
  'nic',
  'leapfile',
  'includefile',
  'setvar',
  'logconfig',
  'logfile',
  'enable',
  'disable',
  'discard',
  'limit',
  'mru',
  'broadcastclient',
  'manycastserver',
  'manycastclient',
  'multicastclient',
  'nts',
  'rlimit',
  'nonvolatile',
  'crypto',
  'trap',
]);

/** Directives only chrony.conf has. */
const CHRONY_ONLY = new Set([
  'allow',
  'deny',
  'makestep',
  'local',
  'rtcsync',
  'cmdport',
  'cmdallow',
  'cmddeny',
  'bindaddress',
  'bindcmdaddress',
  'keyfile',
  'logdir',
  'log',
  'maxdistance',
  'minsources',
  'confdir',
  'sourcedir',
  'include',
  'leapsectz',
  'leapseclist',
  'hwtimestamp',
  'ratelimit',
  'maxupdateskew',
  'initstepslew',
]);

/**
 * Which dialect a configuration file is in: a file named ntp.conf / ntpd.conf / ntpsec.conf is
 * ntp.conf, chrony.conf is chrony.conf; otherwise the first directive that exists in only one
 * of the two languages decides (and chrony.conf when none does: the common subset parses the same).
 */
export function detectConfigDialect(text: string, fileName: string): 'ntp' | 'chrony' {
  const base = path.basename(fileName).toLowerCase();
  if (/^ntp(d|sec)?\.conf$/.test(base)) return 'ntp';
  if (base === 'chrony.conf') return 'chrony';
  for (const line of text.split(/\r?\n/)) {
    const t = line.trim();
    if (t === '' || '#!;%'.includes(t[0]!)) continue;
    const w = t.split(/\s+/);
    const d = w[0]!.toLowerCase();
    if (NTP_ONLY.has(d)) return 'ntp';
    if (CHRONY_ONLY.has(d)) return 'chrony';
    if ((d === 'server' || d === 'pool' || d === 'peer') && w[1] && isRefclockAddress(w[1])) return 'ntp';
  }
  return 'chrony';
}

/** Whether a file should be read as ntp.conf (reads it; unreadable files are left to the loader). */
export function isNtpConfFile(file: string): boolean {
  try {
    return detectConfigDialect(fs.readFileSync(file, 'utf8'), file) === 'ntp';
  } catch {
    return /^ntp(d|sec)?\.conf$/.test(path.basename(file).toLowerCase());
  }
}

// ---- printing (rubidiumd -p) ----

/** Prints a Config parsed from ntp.conf back in ntp.conf syntax (parses back to the same Config). */
export function formatNtpConfig(c: Config): string {
  const out: string[] = [];
  const d = DEFAULT_SOURCE_OPTIONS;
  for (const s of c.sources) {
    const o = s.options;
    const w: string[] = [s.type, s.host.includes(':') ? `[${s.host}]` : s.host];
    if (o.minpoll !== d.minpoll) w.push('minpoll', String(o.minpoll));
    if (o.maxpoll !== d.maxpoll) w.push('maxpoll', String(o.maxpoll));
    if (o.version !== null) w.push('version', String(o.version));
    if (o.offset !== 0) w.push('bias', String(o.offset));
    for (const f of ['iburst', 'burst', 'prefer', 'noselect', 'xleave'] as const) if (o[f]) w.push(f);
    if (o.trust) w.push('true');
    out.push(w.join(' '));
  }
  for (const r of c.restrict) out.push(formatRestrictRule(r));
  if (c.driftfile !== null) out.push(`driftfile ${c.driftfile}`);
  if (c.leapseclist !== null) out.push(`leapfile ${c.leapseclist}`);
  if (c.statsdir !== null) out.push(`statsdir ${c.statsdir}`);
  if (c.statistics.length) out.push(`statistics ${c.statistics.join(' ')}`);
  for (const [n, g] of Object.entries(c.filegen)) {
    out.push(
      `filegen ${n}${g.file !== null ? ` file ${g.file}` : ''} type ${g.type} ${g.enable ? 'enable' : 'disable'}`,
    );
  }
  const dc = defaultConfig();
  const tos: string[] = [];
  if (c.minsources !== dc.minsources) tos.push(`minsane ${c.minsources}`);
  if (c.maxdistance !== dc.maxdistance) tos.push(`maxdist ${c.maxdistance}`);
  if (c.local?.orphan) tos.push(`orphan ${c.local.stratum}`);
  if (c.local?.waitunsynced !== undefined) tos.push(`orphanwait ${c.local.waitunsynced}`);
  if (tos.length) out.push(`tos ${tos.join(' ')}`);
  if (c.makestep === null) out.push('tinker step 0');
  else if (c.makestep.threshold !== DEFAULT_STEP) out.push(`tinker step ${c.makestep.threshold}`);
  if (c.keyfile !== null) out.push(`keys ${c.keyfile}`);
  if (c.trustedkeys.length) out.push(`trustedkey ${c.trustedkeys.join(' ')}`);
  if (c.controlkey !== null) out.push(`controlkey ${c.controlkey}`);
  for (const a of c.bindaddress) out.push(`interface listen ${a}`);
  if (c.ratelimit) out.push(`limit average ${2 ** -c.ratelimit.interval} burst ${c.ratelimit.burst}`);
  if (c.noclientlog) out.push('disable monitor');
  for (const w of c.warnings) out.push(`# warning: ${w}`);
  return out.join('\n') + (out.length ? '\n' : '');
}
