/**
 * chronyd-compatible command line: `rubidiumd [-f FILE] [-d] [-n] [-x] [-q|-Q] [-u USER] [-p]
 * [-v] [-t SECONDS] [-4|-6] [DIRECTIVE...]`. Directives given as arguments replace the config
 * file, as with chronyd. Long options are Rubidium's own.
 */
import { parseInjectedError, type InjectedErrorSpec } from '../clock/injected-error.js';

export interface DaemonFlags {
  configFile: string | null;
  debug: number; // -d count: 1 = log to stderr, 2 = debug messages
  noDetach: boolean;
  noClockControl: boolean; // -x
  setOnceAndExit: boolean; // -q
  measureOnceAndExit: boolean; // -Q
  user: string | null;
  printConfig: boolean; // -p
  version: boolean; // -v
  help: boolean;
  timeoutS: number | null; // -t
  family: 4 | 6 | null;
  directives: string[];
  /** Test option: error of the virtual clock's raw time source, as offset (s) and frequency (ppm). */
  injectError: InjectedErrorSpec | null;
  /** --ntp-conf: read -f FILE as ntp.conf whatever its name and content. */
  ntpConf: boolean;
  /** --convert-ntp-conf FILE: print the equivalent chrony.conf and exit. */
  convertNtpConf: string | null;
  warnings: string[];
}

export class FlagError extends Error {}

export function parseFlags(argv: readonly string[]): DaemonFlags {
  const f: DaemonFlags = {
    configFile: null,
    debug: 0,
    noDetach: false,
    noClockControl: false,
    setOnceAndExit: false,
    measureOnceAndExit: false,
    user: null,
    printConfig: false,
    version: false,
    help: false,
    timeoutS: null,
    family: null,
    directives: [],
    injectError: null,
    ntpConf: false,
    convertNtpConf: null,
    warnings: [],
  };
  const needValue = (i: number, flag: string): string => {
    const v = argv[i + 1];
    if (v === undefined) throw new FlagError(`option ${flag} requires an argument`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--help' || a === '-h') {
      f.help = true;
    } else if (a === '--ntp-conf') {
      f.ntpConf = true;
    } else if (a === '--convert-ntp-conf' || a.startsWith('--convert-ntp-conf=')) {
      f.convertNtpConf = a.includes('=') ? a.slice(a.indexOf('=') + 1) : needValue(i++, a);
    } else if (a === '--version') {
      f.version = true;
    } else if (a === '--inject-error' || a.startsWith('--inject-error=')) {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : needValue(i++, a);
      let spec: InjectedErrorSpec;
      try {
        spec = parseInjectedError(v);
      } catch (e) {
        throw new FlagError(`invalid --inject-error '${v}': ${(e as Error).message}`);
      }
      if (Math.abs(spec.offset) > 1e6 || Math.abs(spec.ppm) > 1e5 || Math.abs(spec.wander ?? 0) > 1e-3) {
        throw new FlagError(`invalid --inject-error '${v}': offset, ppm or wander out of range`);
      }
      f.injectError = spec;
    } else if (a.startsWith('-') && a.length > 1 && !a.startsWith('--')) {
      // Clustered short flags as getopt allows (-dd, -xd); flags with values take the rest or next.
      for (let j = 1; j < a.length; j++) {
        const c = a[j]!;
        const rest = a.slice(j + 1);
        const takeValue = (): string => {
          if (rest) return rest;
          return needValue(i++, `-${c}`);
        };
        switch (c) {
          case 'f':
            f.configFile = takeValue();
            j = a.length;
            break;
          case 'u':
            f.user = takeValue();
            j = a.length;
            break;
          case 't': {
            const v = takeValue();
            const t = Number(v);
            if (!Number.isFinite(t) || t <= 0) throw new FlagError(`invalid timeout '${v}'`);
            f.timeoutS = t;
            j = a.length;
            break;
          }
          case 'd':
            f.debug++;
            f.noDetach = true;
            break;
          case 'n':
            f.noDetach = true;
            break;
          case 'x':
            f.noClockControl = true;
            break;
          case 'q':
            f.setOnceAndExit = true;
            break;
          case 'Q':
            f.measureOnceAndExit = true;
            break;
          case 'p':
            f.printConfig = true;
            break;
          case 'v':
            f.version = true;
            break;
          case '4':
            f.family = 4;
            break;
          case '6':
            f.family = 6;
            break;
          case 'r':
          case 'R':
          case 's':
          case 'm':
          case 'U':
            f.warnings.push(`option -${c} is not supported yet, ignored`);
            break;
          case 'F':
          case 'P':
          case 'L':
          case 'l':
            f.warnings.push(`option -${c} is not supported yet, ignored`);
            if (!rest) i++;
            j = a.length;
            break;
          default:
            throw new FlagError(`unknown option -${c}`);
        }
      }
    } else if (a.startsWith('--')) {
      throw new FlagError(`unknown option ${a}`);
    } else {
      f.directives.push(a);
    }
  }
  return f;
}

export const USAGE = `Usage: rubidiumd [OPTION]... [DIRECTIVE]...

Rubidium NTP daemon, chronyd-compatible flags.

  -f FILE        read configuration from FILE (chrony.conf syntax); without -f and without
                 directives the embedded default configuration is used
  -d             stay in foreground and log to stderr (twice: debug messages)
  -n             do not detach from the terminal
  -x             never adjust the system clock: track and serve time from a virtual clock
  -q             set the clock once and exit (with -x: measure once and exit)
  -Q             measure the offset once, print it and exit without setting the clock
  -u USER        drop root privileges to USER after binding sockets
  -p             print the parsed configuration and exit
  -t SECONDS     exit after SECONDS
  -4 / -6        use IPv4 / IPv6 only
  -v, --version  print the version and exit
  --inject-error OFFSET[,PPM] | offset=S,ppm=P,wander=W,seed=N,epoch=NS,step=AT:S
                 testing: make the virtual clock's raw time source wrong by a known error
                 (offset, frequency, random-walk wander, steps; only with -x)
  --ntp-conf     read -f FILE as ntp.conf (detected otherwise: docs/ntp-conf.md)
  --convert-ntp-conf FILE
                 print the chrony.conf equivalent of the ntp.conf FILE and exit
  -h, --help     print this help

Query a running daemon with rubidiumc (chronyc-compatible): rubidiumc tracking, rubidiumc sources -v
`;
