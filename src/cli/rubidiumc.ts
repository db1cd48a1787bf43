/**
 * rubidiumc: command-line monitor and control program for rubidiumd, with chronyc's options,
 * commands and output.
 *
 *   rubidiumc [-h HOST] [-p PORT] [-n] [-c] [--json] [-m] [command...]
 *
 * Requests sent to the daemon (control protocol, src/control/protocol.ts) and the data expected:
 *   tracking                          → TrackingReport
 *   sources | sourcestats             → SourceReport[] | SourceStatsReport[]
 *   ntpdata [address]                 → NtpDataReport[]
 *   authdata [-a] [-v]                → AuthDataReport[]
 *   clients [-p N] [-k] [-r]          → ClientReport[] (options passed through)
 *   serverstats | activity            → ServerStatsReport | ActivityReport
 *   makestep [threshold limit]        → null
 *   cyclelogs                         → null (the daemon reopens its log files)
 *   burst good max [mask/address]     → null (good/max default 4/8)
 *   online [mask/address] | offline [mask/address] → null
 * waitsync polls `tracking`.
 */
import * as fs from 'node:fs';
import * as readline from 'node:readline';
import type {
  ActivityReport,
  ClientReport,
  NtpDataReport,
  ServerStatsReport,
  SourceReport,
  SourceStatsReport,
  TrackingReport,
} from '../control/reports.js';
import { type ControlTarget, ControlTransportError, sendControlRequest } from '../control/client.js';
import type { ControlRequest, ControlResponse } from '../control/protocol.js';
import {
  formatActivity,
  formatClients,
  formatNtpDataList,
  formatServerStats,
  formatSourceStats,
  formatSources,
  formatStatus,
  formatTracking,
  formatWaitsyncTry,
} from './format.js';
import type { AuthDataReport } from '../control/authdata.js';
import { formatAuthData } from './format-authdata.js';

export const DEFAULT_SOCKET_PATH = '/var/run/rubidium/rubidiumd.sock';
export const DEFAULT_CMD_PORT = 323;
const VERSION = '0.1.0';
const LOCAL_REFID = 0x7f7f0101;

export interface CliIo {
  stdout(s: string): void;
  stderr(s: string): void;
  env: Record<string, string | undefined>;
  exists(path: string): boolean;
  sleep(ms: number): Promise<void>;
  send(
    target: ControlTarget,
    req: ControlRequest,
    timeoutMs: number,
    opts: { retransmit: boolean },
  ): Promise<ControlResponse>;
  /** Lines of commands when none are given on the command line (stdin). */
  readLines(): AsyncIterable<string>;
  timeoutMs: number;
}

function defaultIo(): CliIo {
  return {
    stdout: (s) => process.stdout.write(s),
    stderr: (s) => process.stderr.write(s),
    env: process.env,
    exists: (p) => fs.existsSync(p),
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    send: (t, r, ms, o) => sendControlRequest(t, r, ms, o),
    readLines: () => {
      const tty = process.stdin.isTTY && process.stdout.isTTY;
      const rl = readline.createInterface({
        input: process.stdin,
        output: tty ? process.stdout : undefined,
        terminal: !!tty,
      });
      if (tty) {
        rl.setPrompt('rubidiumc> ');
        rl.prompt();
        rl.on('line', () => rl.prompt());
      }
      return rl;
    },
    timeoutMs: 3000,
  };
}

interface Options {
  hosts: string | null;
  port: number;
  noDns: boolean;
  csv: boolean;
  json: boolean;
  multi: boolean;
}

const HELP = `Usage: rubidiumc [OPTION]... [COMMAND]...

Options:
  -n\t\tDon't resolve hostnames
  -c\t\tEnable CSV format
  -m\t\tAccept multiple commands
  -h HOST\tSpecify server (${DEFAULT_SOCKET_PATH},127.0.0.1)
  -p PORT\tSpecify UDP port (${DEFAULT_CMD_PORT})
      --json\tPrint the daemon's reports as JSON
  -v, --version\tPrint version and exit
      --help\tPrint usage and exit

Commands:
  tracking, sources [-a] [-v], sourcestats [-a] [-v], authdata [-a] [-v], ntpdata [address],
  clients [-p N] [-k] [-r],
  serverstats, activity, makestep [threshold limit], burst [good/max] [mask/address],
  online [mask/address], offline [mask/address], cyclelogs,
  waitsync [max-tries [max-correction [max-skew [interval]]]]
`;

/** Splits command-line options (getopt-style, stopping at the first command word). */
export function parseArgs(
  argv: string[],
): { opts: Options; rest: string[] } | { exit: number; out?: string; err?: string } {
  const opts: Options = { hosts: null, port: DEFAULT_CMD_PORT, noDns: false, csv: false, json: false, multi: false };
  for (const a of argv) {
    if (a === '--help') return { exit: 0, out: HELP };
    if (a === '--version') return { exit: 0, out: `rubidiumc (Rubidium) version ${VERSION}\n` };
  }
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      i++;
      break;
    }
    if (a === '--json') {
      opts.json = true;
      continue;
    }
    if (!a.startsWith('-') || a === '-') break;
    for (let k = 1; k < a.length; k++) {
      const ch = a[k]!;
      if (ch === 'h' || ch === 'p') {
        const val = k + 1 < a.length ? a.slice(k + 1) : argv[++i];
        if (val === undefined) return { exit: 1, err: `rubidiumc: option requires an argument -- '${ch}'\n${HELP}` };
        if (ch === 'h') opts.hosts = val;
        else {
          const p = Number(val);
          if (!/^\d+$/.test(val) || p < 1 || p > 65535) return { exit: 1, err: `rubidiumc: invalid port '${val}'\n` };
          opts.port = p;
        }
        break;
      }
      if (ch === 'n') opts.noDns = true;
      else if (ch === 'c') opts.csv = true;
      else if (ch === 'm') opts.multi = true;
      else if (ch === 'v') return { exit: 0, out: `rubidiumc (Rubidium) version ${VERSION}\n` };
      else if (ch === '4' || ch === '6' || ch === 'a' || ch === 'd' || ch === 'N') {
        /* accepted for chronyc compatibility */
      } else return { exit: 1, err: `rubidiumc: invalid option -- '${ch}'\n${HELP}` };
    }
  }
  return { opts, rest: argv.slice(i) };
}

/** Where to send requests, in order of preference (like chronyc's host list). */
export function resolveTargets(
  opts: { hosts: string | null; port: number },
  env: Record<string, string | undefined>,
  exists: (p: string) => boolean,
): ControlTarget[] {
  const toTarget = (h: string): ControlTarget =>
    h.startsWith('/')
      ? { kind: 'unix', path: h }
      : { kind: 'udp', host: h.replace(/^\[(.*)\]$/, '$1'), port: opts.port };
  if (opts.hosts !== null)
    return opts.hosts
      .split(',')
      .filter((h) => h !== '')
      .map(toTarget);
  const envSock = env.RUBIDIUM_SOCKET;
  if (envSock) return [{ kind: 'unix', path: envSock }];
  const targets: ControlTarget[] = [];
  if (exists(DEFAULT_SOCKET_PATH)) targets.push({ kind: 'unix', path: DEFAULT_SOCKET_PATH });
  targets.push({ kind: 'udp', host: '127.0.0.1', port: opts.port });
  return targets;
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
function isAddr(s: string): boolean {
  const m = IPV4.exec(s);
  if (m) return m.slice(1).every((x) => Number(x) <= 255);
  return /^[0-9a-fA-F:]+(\.\d+\.\d+\.\d+\.\d+)?$/.test(s) && s.includes(':');
}
/** chronyc's mask/address forms: address, hostname, address/bits, mask/address. */
export function isMaskAddress(s: string): boolean {
  const slash = s.indexOf('/');
  if (slash < 0) return isAddr(s) || /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(s);
  const a = s.slice(0, slash);
  const b = s.slice(slash + 1);
  if (!isAddr(a)) return false;
  if (/^\d+$/.test(b)) return Number(b) <= (a.includes(':') ? 128 : 32);
  return isAddr(b) && a.includes(':') === b.includes(':');
}

class Cli {
  constructor(
    private readonly io: CliIo,
    private readonly opts: Options,
    private readonly targets: ControlTarget[],
  ) {}

  private out(s: string): void {
    this.io.stdout(s);
  }

  private err(s: string): void {
    this.io.stderr(s.endsWith('\n') ? s : s + '\n');
  }

  /** Sends a request to the first target that answers; null (and 506 printed) if none does. */
  private async request(req: ControlRequest, mutating = false): Promise<ControlResponse | null> {
    for (const t of this.targets) {
      try {
        return await this.io.send(t, req, this.io.timeoutMs, { retransmit: !mutating });
      } catch (e) {
        if (!(e instanceof ControlTransportError)) throw e;
      }
    }
    this.out(formatStatus(506));
    return null;
  }

  /** Prints a daemon error the way chronyc prints a failure status. */
  private printFailure(error: string): void {
    if (this.opts.json) {
      this.out(JSON.stringify({ ok: false, error }) + '\n');
      return;
    }
    const coded = /^(\d{3}) /.exec(error);
    if (coded) this.out(error + '\n');
    else if (error.startsWith('unknown command')) this.out(formatStatus(502));
    else if (error.startsWith('no such source')) this.out(formatStatus(503));
    else {
      this.out(formatStatus(500));
      this.err(`rubidiumd: ${error}`);
    }
  }

  /** Request + print a report with the given formatter; false on any failure. */
  private async report<T>(
    req: ControlRequest,
    check: (d: unknown) => boolean,
    print: (d: T) => string,
  ): Promise<boolean> {
    const r = await this.request(req);
    if (!r) return false;
    if (!r.ok) {
      this.printFailure(r.error);
      return false;
    }
    if (!check(r.data)) {
      this.out(formatStatus(508));
      return false;
    }
    if (this.opts.json) {
      this.out(JSON.stringify(r.data, null, 2) + '\n');
      return true;
    }
    let text: string;
    try {
      text = print(r.data as T);
    } catch {
      this.out(formatStatus(508));
      return false;
    }
    this.out(text);
    return true;
  }

  /** Request for an action: prints "200 OK" like chronyc. */
  private async action(req: ControlRequest): Promise<boolean> {
    const r = await this.request(req, true);
    if (!r) return false;
    if (!r.ok) {
      this.printFailure(r.error);
      return false;
    }
    if (this.opts.json)
      this.out(JSON.stringify(r.data === null || r.data === undefined ? { ok: true } : r.data) + '\n');
    else this.out(formatStatus(200));
    return true;
  }

  async command(words: string[]): Promise<boolean> {
    if (words.length === 0) return true;
    const [cmd, ...args] = words as [string, ...string[]];
    const f = { csv: this.opts.csv, noDns: this.opts.noDns };
    const isObj = (d: unknown): boolean => typeof d === 'object' && d !== null && !Array.isArray(d);
    const isArr = (d: unknown): boolean => Array.isArray(d) && d.every(isObj);
    switch (cmd) {
      case 'tracking':
        return this.report<TrackingReport>({ cmd, args: [] }, isObj, (d) => formatTracking(d, f));
      case 'sources':
      case 'sourcestats': {
        const bad = args.find((a) => a !== '-a' && a !== '-v');
        if (bad !== undefined) {
          this.err(`Invalid syntax for ${cmd} command`);
          return false;
        }
        const verbose = args.includes('-v');
        return cmd === 'sources'
          ? this.report<SourceReport[]>({ cmd, args: [] }, isArr, (d) => formatSources(d, { ...f, verbose }))
          : this.report<SourceStatsReport[]>({ cmd, args: [] }, isArr, (d) => formatSourceStats(d, { ...f, verbose }));
      }
      case 'authdata': {
        if (args.some((a) => a !== '-a' && a !== '-v')) {
          this.err('Invalid syntax for authdata command');
          return false;
        }
        const verbose = args.includes('-v');
        return this.report<AuthDataReport[]>({ cmd, args: [] }, isArr, (d) => formatAuthData(d, { ...f, verbose }));
      }
      case 'ntpdata':
        if (args.length > 1) {
          this.err('Invalid syntax for ntpdata command');
          return false;
        }
        return this.report<NtpDataReport[]>({ cmd, args }, isArr, (d) =>
          formatNtpDataList(d, { ...f, addressGiven: args.length > 0 }),
        );
      case 'clients': {
        for (let i = 0; i < args.length; i++) {
          if (args[i] === '-p') {
            if (!/^\d+$/.test(args[++i] ?? '')) {
              this.err('Invalid syntax for clients command');
              return false;
            }
          }
        }
        return this.report<ClientReport[]>({ cmd, args }, isArr, (d) => formatClients(d, f));
      }
      case 'serverstats':
        return this.report<ServerStatsReport>({ cmd, args: [] }, isObj, (d) => formatServerStats(d, f));
      case 'activity':
        return this.report<ActivityReport>({ cmd, args: [] }, isObj, (d) => formatActivity(d, f));
      case 'cyclelogs':
        if (args.length !== 0) {
          this.err('Bad syntax for cyclelogs command');
          return false;
        }
        return this.action({ cmd, args });
      case 'makestep':
        if (
          args.length !== 0 &&
          (args.length !== 2 || !Number.isFinite(Number(args[0])) || !/^-?\d+$/.test(args[1]!))
        ) {
          this.err('Bad syntax for makestep command');
          return false;
        }
        return this.action({ cmd, args });
      case 'burst': {
        let rest = args;
        let counts = ['4', '8'];
        const m = rest[0] !== undefined ? /^(\d+)\/(\d+)$/.exec(rest[0]) : null;
        if (m) {
          counts = [m[1]!, m[2]!];
          rest = rest.slice(1);
        }
        if (
          rest.length > 1 ||
          (rest.length === 1 && !isMaskAddress(rest[0]!)) ||
          Number(counts[0]) > Number(counts[1])
        ) {
          this.err('Invalid syntax for burst command');
          return false;
        }
        return this.action({ cmd, args: [...counts, ...rest] });
      }
      case 'online':
      case 'offline':
        if (args.length > 1 || (args.length === 1 && !isMaskAddress(args[0]!))) {
          this.err('Invalid syntax for mask/address');
          return false;
        }
        return this.action({ cmd, args });
      case 'waitsync':
        return this.waitsync(args);
      case 'help':
        this.out(HELP);
        return true;
      case 'quit':
      case 'exit':
        return true;
      default:
        this.err('Unrecognized command');
        return false;
    }
  }

  /** chronyc waitsync: poll tracking until synchronised within the limits, or out of tries. */
  private async waitsync(args: string[]): Promise<boolean> {
    // sscanf("%d %lf %lf %lf") semantics: parse leading values, stop at the first bad one.
    const vals: number[] = [];
    for (let i = 0; i < Math.min(args.length, 4); i++) {
      const v = i === 0 ? (/^[-+]?\d+/.test(args[i]!) ? parseInt(args[i]!, 10) : NaN) : parseFloat(args[i]!);
      if (!Number.isFinite(v)) break;
      vals.push(v);
    }
    const maxTries = vals[0] ?? 0;
    const maxCorrection = vals[1] ?? 0;
    const maxSkew = vals[2] ?? 0;
    const interval = Math.max(0.1, vals[3] ?? 10);
    for (let i = 1; ; i++) {
      let synced = false;
      const r = await this.request({ cmd: 'tracking', args: [] });
      if (r && !r.ok) this.printFailure(r.error);
      if (r && r.ok && typeof r.data === 'object' && r.data !== null) {
        const t = r.data as TrackingReport;
        const correction = Math.abs(t.systemTimeOffset);
        if (this.opts.json) {
          this.out(JSON.stringify({ try: i, refId: t.refId, correction, skew: t.skewPpm }) + '\n');
        } else {
          this.out(formatWaitsyncTry(i, t.refId, correction, t.skewPpm, { csv: this.opts.csv }));
        }
        synced =
          (t.refName !== '' || (t.refId !== 0 && t.refId !== LOCAL_REFID)) &&
          t.leapStatus !== 'Not synchronised' &&
          (maxCorrection === 0 || correction <= maxCorrection) &&
          (maxSkew === 0 || t.skewPpm <= maxSkew);
      }
      if (synced) return true;
      if (maxTries > 0 && i >= maxTries) return false;
      await this.io.sleep(interval * 1000);
    }
  }
}

function splitWords(line: string): string[] {
  return line
    .trim()
    .split(/\s+/)
    .filter((w) => w !== '');
}

export async function main(argv: string[], ioOverrides: Partial<CliIo> = {}): Promise<number> {
  const io: CliIo = { ...defaultIo(), ...ioOverrides };
  const parsed = parseArgs(argv);
  if ('exit' in parsed) {
    if (parsed.out) io.stdout(parsed.out);
    if (parsed.err) io.stderr(parsed.err);
    return parsed.exit;
  }
  const { opts, rest } = parsed;
  const targets = resolveTargets(opts, io.env, io.exists);
  if (targets.length === 0) {
    io.stderr('rubidiumc: no daemon address given\n');
    return 1;
  }
  const cli = new Cli(io, opts, targets);
  let ok = true;
  if (rest.length > 0) {
    const commands = opts.multi ? rest.map(splitWords) : [rest.flatMap(splitWords)];
    for (const c of commands) {
      ok = await cli.command(c);
      if (!ok) break;
    }
  } else {
    for await (const line of io.readLines()) {
      const w = splitWords(line);
      if (w[0] === 'quit' || w[0] === 'exit') break;
      if (w.length > 0) ok = await cli.command(w);
    }
  }
  return ok ? 0 : 1;
}
