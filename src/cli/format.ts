/**
 * Pure formatters printing rubidiumd's reports exactly as chronyc 4.3 prints the corresponding
 * chronyd reports: same lines, column widths, units and unit suffixes, the `-v` legends, and the
 * `-c` CSV mode (no headers or labels, one comma-separated line per record, raw numbers).
 */
import { createHash } from 'node:crypto';
import type {
  ActivityReport,
  ClientReport,
  LeapStatus,
  NtpDataReport,
  ServerStatsReport,
  SourceReport,
  SourceStatsReport,
  TrackingReport,
} from '../control/reports.js';

export interface FormatOptions {
  /** chronyc -c: CSV output. */
  csv?: boolean;
  /** chronyc -n: print addresses instead of names. */
  noDns?: boolean;
}

// ---- C printf-compatible number formatting ----

/**
 * `%[+][width].[prec]f` as glibc prints it: exact decimal value of the double, ties to even.
 * (JS toFixed rounds exact ties away from zero, glibc to even: 0.125 → "0.12" with %.2f.)
 */
export function cFixed(x: number, prec: number, width = 0, plus = false): string {
  let s: string;
  if (!Number.isFinite(x)) {
    s = Number.isNaN(x) ? 'nan' : x > 0 ? 'inf' : '-inf';
  } else {
    const neg = x < 0 || Object.is(x, -0);
    const a = Math.abs(x);
    let body = a.toFixed(prec);
    // Exact tie at the rounding digit? Then glibc rounds to even.
    const longer = a.toFixed(Math.min(100, prec + 25));
    const tail = longer.slice(longer.length - 25);
    if (/^50*$/.test(tail)) {
      const truncated = longer.slice(0, longer.length - 25).replace(/\.$/, '');
      const lastDigit = Number(truncated[truncated.length - 1]);
      if (lastDigit % 2 === 0) body = truncated; // round down to the even neighbour
    }
    s = (neg ? '-' : plus ? '+' : '') + body;
  }
  return s.padStart(width);
}

/** `%[width].[prec]e` as C (glibc) prints it: exponent of at least two digits, ties to even. */
export function cExp(x: number, prec: number, width = 0, plus = false): string {
  let s: string;
  if (!Number.isFinite(x)) s = Number.isNaN(x) ? 'nan' : x > 0 ? 'inf' : '-inf';
  else if (x === 0) s = (Object.is(x, -0) ? '-' : plus ? '+' : '') + (0).toFixed(prec) + 'e+00';
  else {
    const neg = x < 0;
    const extra = Math.min(100, prec + 30);
    const m = /^(\d)\.?(\d*)e([-+]\d+)$/.exec(Math.abs(x).toExponential(extra))!;
    const all = m[1]! + m[2]!;
    let exp = Number(m[3]);
    let keep = all.slice(0, prec + 1);
    const rest = all.slice(prec + 1);
    const up =
      rest[0]! > '5' || (rest[0] === '5' && (/[1-9]/.test(rest.slice(1)) || Number(keep[keep.length - 1]) % 2 === 1));
    if (up) {
      const inc = (BigInt(keep) + 1n).toString();
      if (inc.length > keep.length) {
        exp++;
        keep = inc.slice(0, keep.length);
      } else keep = inc;
    }
    const mant = prec > 0 ? `${keep[0]}.${keep.slice(1)}` : keep;
    const e = `${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
    s = `${neg ? '-' : plus ? '+' : ''}${mant}e${e}`;
  }
  return s.padStart(width);
}

function pad(n: number | string, width: number): string {
  return String(n).padStart(width);
}

// ---- chronyc unit formats ----

/** chronyc's interval column (LastRx, Span, clients' Last): seconds, then m/h/d/y; null = "-". */
export function formatInterval(s: number | null): string {
  if (s === null || s < 0 || !Number.isFinite(s) || s >= 0xffffffff) return '   -';
  s = Math.floor(s);
  if (s < 1200) return pad(s, 4);
  if (s < 36000) return pad(Math.floor(s / 60), 3) + 'm';
  if (s < 345600) return pad(Math.floor(s / 3600), 3) + 'h';
  const d = Math.floor(s / 86400);
  if (d > 999) return pad(Math.floor(d / 365), 3) + 'y';
  return pad(d, 3) + 'd';
}

/** chronyc's unsigned offset with unit (6 or 7 characters): "  43ms", " 134ns", " 12.5s". */
export function formatNanoseconds(s: number): string {
  s = Math.abs(s);
  if (s < 9999.5e-9) return cFixed(s * 1e9, 0, 4) + 'ns';
  if (s < 9999.5e-6) return cFixed(s * 1e6, 0, 4) + 'us';
  if (s < 9999.5e-3) return cFixed(s * 1e3, 0, 4) + 'ms';
  if (s < 999.5) return cFixed(s, 1, 5) + 's';
  if (s < 99999.5) return cFixed(s, 0, 5) + 's';
  if (s < 99999.5 * 60) return cFixed(s / 60, 0, 5) + 'm';
  if (s < 99999.5 * 3600) return cFixed(s / 3600, 0, 5) + 'h';
  if (s < 99999.5 * 3600 * 24) return cFixed(s / (3600 * 24), 0, 5) + 'd';
  return cFixed(s / (3600 * 24 * 365), 0, 5) + 'y';
}

/** chronyc's signed offset with unit: " -479ns", "-2629us", "  +12ms". */
export function formatSignedNanoseconds(s: number): string {
  const x = Math.abs(s);
  if (x < 9999.5e-9) return cFixed(s * 1e9, 0, 5, true) + 'ns';
  if (x < 9999.5e-6) return cFixed(s * 1e6, 0, 5, true) + 'us';
  if (x < 9999.5e-3) return cFixed(s * 1e3, 0, 5, true) + 'ms';
  if (x < 999.5) return cFixed(s, 1, 6, true) + 's';
  if (x < 99999.5) return cFixed(s, 0, 6, true) + 's';
  if (x < 99999.5 * 60) return cFixed(s / 60, 0, 6, true) + 'm';
  if (x < 99999.5 * 3600) return cFixed(s / 3600, 0, 6, true) + 'h';
  if (x < 99999.5 * 3600 * 24) return cFixed(s / (3600 * 24), 0, 6, true) + 'd';
  return cFixed(s / (3600 * 24 * 365), 0, 6, true) + 'y';
}

export function formatFreqPpm(f: number): string {
  return Math.abs(f) < 99999.5 ? cFixed(f, 3, 10) : cFixed(f, 0, 10);
}

export function formatSignedFreqPpm(f: number): string {
  return Math.abs(f) < 99999.5 ? cFixed(f, 3, 10, true) : cFixed(f, 0, 10, true);
}

export function formatRefId(refId: number): string {
  return (refId >>> 0).toString(16).toUpperCase().padStart(8, '0');
}

/** The printable characters of a reference ID ("GPS", "LOCL", "" for 127.127.1.1). */
export function refIdToString(refId: number): string {
  let s = '';
  for (let i = 0; i < 4; i++) {
    const c = (refId >>> (24 - 8 * i)) & 0xff;
    if (c >= 0x20 && c < 0x7f) s += String.fromCharCode(c);
  }
  return s;
}

function ipv6ToBytes(a: string): Uint8Array | null {
  let s = a;
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  let tail: number[] = [];
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  if (v4) {
    tail = v4.slice(1, 5).map(Number);
    const h = ((tail[0]! << 8) | tail[1]!).toString(16);
    const l = ((tail[2]! << 8) | tail[3]!).toString(16);
    s = s.slice(0, v4.index) + h + ':' + l;
  }
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const parse = (p: string): number[] => (p === '' ? [] : p.split(':').map((g) => parseInt(g, 16)));
  const head = parse(halves[0]!);
  const rest = halves.length === 2 ? parse(halves[1]!) : [];
  const fill = halves.length === 2 ? 8 - head.length - rest.length : 0;
  const groups = [...head, ...new Array<number>(Math.max(0, fill)).fill(0), ...rest];
  if (groups.length !== 8 || groups.some((g) => !(g >= 0 && g <= 0xffff))) return null;
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

/** chrony's reference ID of an address: the IPv4 address, or the first 32 bits of MD5 of an IPv6 address. */
export function addressToRefId(address: string): number {
  const v4 = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(address);
  if (v4) return ((+v4[1]! << 24) | (+v4[2]! << 16) | (+v4[3]! << 8) | +v4[4]!) >>> 0;
  const b = ipv6ToBytes(address);
  if (!b) return 0;
  const h = createHash('md5').update(b).digest();
  return h.readUInt32BE(0);
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function splitNs(ns: bigint): { sec: bigint; nsec: bigint } {
  let sec = ns / 1_000_000_000n;
  let nsec = ns - sec * 1_000_000_000n;
  if (nsec < 0n) {
    sec -= 1n;
    nsec += 1_000_000_000n;
  }
  return { sec, nsec };
}

function two(n: number): string {
  return String(n).padStart(2, '0');
}

/** strftime "%a %b %d %T %Y" in UTC of an instant (ns since the epoch, decimal string or bigint). */
export function formatUtcDate(ns: string | bigint): string {
  const { sec } = splitNs(BigInt(ns));
  const d = new Date(Number(sec) * 1000);
  return (
    `${DAYS[d.getUTCDay()]} ${MONTHS[d.getUTCMonth()]} ${two(d.getUTCDate())} ` +
    `${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} ${d.getUTCFullYear()}`
  );
}

/** chrony's "%ld.%09lu" form of an instant (CSV). */
export function formatEpochSeconds(ns: string | bigint): string {
  const { sec, nsec } = splitNs(BigInt(ns));
  return `${sec}.${nsec.toString().padStart(9, '0')}`;
}

// ---- report assembly: literal text + fields (fields alone in CSV mode) ----

interface Field {
  t: string; // as printed normally
  c: string; // as printed in CSV mode
}
type Seg = string | Field;

function render(segs: Seg[], csv: boolean | undefined): string {
  if (!csv) return segs.map((s) => (typeof s === 'string' ? s : s.t)).join('');
  return (
    segs
      .filter((s): s is Field => typeof s !== 'string')
      .map((f) => f.c)
      .join(',') + '\n'
  );
}

const F = {
  str: (s: string, width = 0, left = false): Field => ({ t: left ? s.padEnd(width) : s.padStart(width), c: s }),
  int: (n: number, width = 0): Field => ({ t: pad(Math.trunc(n), width), c: String(Math.trunc(n)) }),
  fixed: (x: number, prec: number, width = 0, plus = false): Field => ({
    t: cFixed(x, prec, width, plus),
    c: cFixed(x, prec),
  }),
  refId: (id: number): Field => ({ t: formatRefId(id), c: formatRefId(id) }),
  ns: (x: number, signed: boolean): Field => ({
    t: signed ? formatSignedNanoseconds(x) : formatNanoseconds(x),
    c: cFixed(x, 9),
  }),
  ppm: (x: number, signed: boolean): Field => ({
    t: signed ? formatSignedFreqPpm(x) : formatFreqPpm(x),
    c: cFixed(x, 3),
  }),
  interval: (s: number | null): Field => ({
    t: formatInterval(s),
    c: s === null || s < 0 || !Number.isFinite(s) ? '4294967295' : String(Math.floor(s)),
  }),
  clientInterval: (r: number | null): Field => ({
    t: r === null || r >= 127 ? ' -' : pad(r, 2),
    c: String(r === null ? 127 : r),
  }),
  time: (ns: string): Field => ({ t: formatUtcDate(ns), c: formatEpochSeconds(ns) }),
  bool: (b: boolean): Field => ({ t: b ? 'Yes' : 'No', c: b ? 'Yes' : 'No' }),
  /** %O: absolute offset, "seconds slow|fast" (positive = slow). */
  offsetSlowFast: (x: number, prec: number): Field => ({
    t: `${cFixed(Math.abs(x), prec)} seconds ${x > 0 ? 'slow' : 'fast'}`,
    c: cFixed(x, 9),
  }),
  /** %F: absolute frequency, "ppm fast|slow" (positive = fast). */
  freqFastSlow: (x: number, prec: number): Field => ({
    t: `${cFixed(Math.abs(x), prec)} ppm ${x > 0 ? 'fast' : 'slow'}`,
    c: cFixed(x, 3),
  }),
};

// ---- status lines ----

export const STATUS_TEXT: Readonly<Record<number, string>> = {
  200: '200 OK',
  208: '208 Access allowed',
  209: '209 Access denied',
  500: '500 Failure',
  501: '501 Not authorised',
  502: '502 Invalid command',
  503: '503 No such source',
  504: '504 Duplicate or stale logon detected',
  505: '505 Facility not enabled in daemon',
  506: '506 Cannot talk to daemon',
  507: '507 Bad subnet',
  508: '508 Bad reply from daemon',
  510: '510 No command access from this host',
  511: '511 Source already present',
  512: '512 Too many sources present',
  513: '513 RTC driver not running',
  514: "514 Can't write RTC parameters",
  515: '515 Invalid address family',
  516: '516 Sample index out of range',
  517: '517 Protocol version mismatch',
  518: '518 Packet length mismatch',
  519: '519 Client logging is not active in the daemon',
  520: '520 Got unexpected error from daemon',
  521: '521 Invalid name',
};

/** The status line chronyc prints for a reply code ("200 OK"), with newline. */
export function formatStatus(code: number): string {
  return (STATUS_TEXT[code] ?? STATUS_TEXT[520]!) + '\n';
}

// ---- reports ----

function leapText(l: LeapStatus | number, short = false): string {
  const names = ['Normal', 'Insert second', 'Delete second', 'Not synchronised'];
  const shorts = ['N', '+', '-', '?'];
  const i = typeof l === 'number' ? l : names.indexOf(l);
  if (i < 0 || i > 3) return short ? '?' : 'Invalid';
  return short ? shorts[i]! : names[i]!;
}

export function formatTracking(r: TrackingReport, opts: FormatOptions = {}): string {
  const name = r.refName !== '' ? r.refName : refIdToString(r.refId);
  return render(
    [
      'Reference ID    : ',
      F.refId(r.refId),
      ' (',
      F.str(name),
      ')\n',
      'Stratum         : ',
      F.int(r.stratum),
      '\n',
      'Ref time (UTC)  : ',
      F.time(r.refTimeNs),
      '\n',
      'System time     : ',
      F.offsetSlowFast(r.systemTimeOffset, 9),
      ' of NTP time\n',
      'Last offset     : ',
      F.fixed(r.lastOffset, 9, 0, true),
      ' seconds\n',
      'RMS offset      : ',
      F.fixed(r.rmsOffset, 9),
      ' seconds\n',
      'Frequency       : ',
      F.freqFastSlow(r.frequencyPpm, 3),
      '\n',
      'Residual freq   : ',
      F.fixed(r.residualFreqPpm, 3, 0, true),
      ' ppm\n',
      'Skew            : ',
      F.fixed(r.skewPpm, 3),
      ' ppm\n',
      'Root delay      : ',
      F.fixed(r.rootDelay, 9),
      ' seconds\n',
      'Root dispersion : ',
      F.fixed(r.rootDispersion, 9),
      ' seconds\n',
      'Update interval : ',
      F.fixed(r.updateInterval, 1),
      ' seconds\n',
      'Leap status     : ',
      F.str(leapText(r.leapStatus)),
      '\n',
    ],
    opts.csv,
  );
}

function header(h: string): string {
  return `${h}\n${'='.repeat(h.length)}\n`;
}

export const SOURCES_HEADER = 'MS Name/IP address         Stratum Poll Reach LastRx Last sample               ';
export const SOURCES_LEGEND =
  [
    '',
    "  .-- Source mode  '^' = server, '=' = peer, '#' = local clock.",
    " / .- Source state '*' = current best, '+' = combined, '-' = not combined,",
    "| /             'x' = may be in error, '~' = too variable, '?' = unusable.",
    '||                                                 .- xxxx [ yyyy ] +/- zzzz',
    '||      Reachability register (octal) -.           |  xxxx = adjusted offset,',
    '||      Log2(Polling interval) --.      |          |  yyyy = measured offset,',
    '||                                \\     |          |  zzzz = estimated error.',
    '||                                 |    |           \\',
  ].join('\n') + '\n';

export const SOURCESTATS_HEADER = 'Name/IP Address            NP  NR  Span  Frequency  Freq Skew  Offset  Std Dev';
export const SOURCESTATS_LEGEND =
  [
    '                             .- Number of sample points in measurement set.',
    '                            /    .- Number of residual runs with same sign.',
    '                           |    /    .- Length of measurement set (time).',
    '                           |   |    /      .- Est. clock freq error (ppm).',
    '                           |   |   |      /           .- Est. error in freq.',
    '                           |   |   |     |           /         .- Est. offset.',
    '                           |   |   |     |          |          |   On the -.',
    '                           |   |   |     |          |          |   samples. \\',
    '                           |   |   |     |          |          |             |',
  ].join('\n') + '\n';

/** Name as chronyc shows it: the address with -n/-c, else the name cut to 25 characters with '>'. */
function displayName(name: string, address: string, opts: FormatOptions, trunc = 25): string {
  if ((opts.noDns || opts.csv) && address !== '') return address;
  const n = name !== '' ? name : address;
  return n.length > trunc ? n.slice(0, trunc - 1) + '>' : n;
}

const MODE_CHAR: Record<SourceReport['mode'], string> = { server: '^', peer: '=', refclock: '#' };

export function formatSources(list: SourceReport[], opts: FormatOptions & { verbose?: boolean } = {}): string {
  let out = '';
  if (opts.verbose && !opts.csv) out += SOURCES_LEGEND;
  if (!opts.csv) out += header(SOURCES_HEADER);
  for (const s of list) {
    const name = s.mode === 'refclock' ? s.name : displayName(s.name, s.address, opts);
    out += render(
      [
        F.str(MODE_CHAR[s.mode] ?? ' '),
        F.str(s.state),
        ' ',
        F.str(name, 27, true),
        '  ',
        F.int(s.stratum, 2),
        '  ',
        F.int(s.poll, 2),
        '   ',
        { t: (s.reach & 0xff).toString(8).padStart(3), c: (s.reach & 0xff).toString(8) },
        '  ',
        F.interval(s.lastRxAgo),
        '  ',
        F.ns(s.adjustedOffset, true),
        '[',
        F.ns(s.measuredOffset, true),
        '] +/- ',
        F.ns(s.error, false),
        '\n',
      ],
      opts.csv,
    );
  }
  return out;
}

export function formatSourceStats(list: SourceStatsReport[], opts: FormatOptions & { verbose?: boolean } = {}): string {
  let out = '';
  if (opts.verbose && !opts.csv) out += SOURCESTATS_LEGEND;
  if (!opts.csv) out += header(SOURCESTATS_HEADER);
  for (const s of list) {
    out += render(
      [
        F.str(displayName(s.name, s.address, opts), 25, true),
        ' ',
        F.int(s.np, 3),
        ' ',
        F.int(s.nr, 3),
        '  ',
        F.interval(s.span),
        ' ',
        F.ppm(s.frequencyPpm, true),
        ' ',
        F.ppm(s.freqSkewPpm, false),
        '  ',
        F.ns(s.offset, true),
        '  ',
        F.ns(s.stdDev, false),
        '\n',
      ],
      opts.csv,
    );
  }
  return out;
}

const NTP_MODES: Record<number, string> = { 1: 'Symmetric active', 2: 'Symmetric passive', 4: 'Server' };

/** One ntpdata report (chronyc prints a blank line before each when no address was given). */
export function formatNtpData(r: NtpDataReport, opts: FormatOptions = {}): string {
  const tests = r.ntpTests.split(' ');
  return render(
    [
      'Remote address  : ',
      F.str(r.remoteAddress),
      ' (',
      F.refId(addressToRefId(r.remoteAddress)),
      ')\n',
      'Remote port     : ',
      F.int(r.remotePort),
      '\n',
      'Local address   : ',
      F.str(r.localAddress),
      ' (',
      F.refId(addressToRefId(r.localAddress)),
      ')\n',
      'Leap status     : ',
      F.str(leapText(r.leap)),
      '\n',
      'Version         : ',
      F.int(r.version),
      '\n',
      'Mode            : ',
      F.str(NTP_MODES[r.mode] ?? 'Invalid'),
      '\n',
      'Stratum         : ',
      F.int(r.stratum),
      '\n',
      'Poll interval   : ',
      F.int(r.poll),
      ' (',
      F.fixed(2 ** r.poll, 0),
      ' seconds)\n',
      'Precision       : ',
      F.int(r.precision),
      ' (',
      F.fixed(2 ** r.precision, 9),
      ' seconds)\n',
      'Root delay      : ',
      F.fixed(r.rootDelay, 6),
      ' seconds\n',
      'Root dispersion : ',
      F.fixed(r.rootDispersion, 6),
      ' seconds\n',
      'Reference ID    : ',
      F.refId(r.refId),
      ' (',
      F.str(r.stratum <= 1 ? refIdToString(r.refId) : ''),
      ')\n',
      'Reference time  : ',
      F.time(r.refTimeNs),
      '\n',
      'Offset          : ',
      F.fixed(r.offset, 9, 0, true),
      ' seconds\n',
      'Peer delay      : ',
      F.fixed(r.peerDelay, 9),
      ' seconds\n',
      'Peer dispersion : ',
      F.fixed(r.peerDispersion, 9),
      ' seconds\n',
      'Response time   : ',
      F.fixed(r.responseTime, 9),
      ' seconds\n',
      'Jitter asymmetry: ',
      F.fixed(r.jitterAsymmetry, 2, 0, true),
      '\n',
      'NTP tests       : ',
      F.str(tests[0] ?? ''),
      ' ',
      F.str(tests[1] ?? ''),
      ' ',
      F.str(tests[2] ?? ''),
      '\n',
      'Interleaved     : ',
      F.bool(r.interleaved),
      '\n',
      'Authenticated   : ',
      F.bool(r.authenticated),
      '\n',
      'TX timestamping : ',
      F.str(r.txTimestamping),
      '\n',
      'RX timestamping : ',
      F.str(r.rxTimestamping),
      '\n',
      'Total TX        : ',
      F.int(r.totalTx),
      '\n',
      'Total RX        : ',
      F.int(r.totalRx),
      '\n',
      'Total valid RX  : ',
      F.int(r.totalValidRx),
      '\n',
      'Total good RX   : ',
      F.int(r.totalGoodRx ?? r.totalValidRx),
      '\n',
    ],
    opts.csv,
  );
}

/** `ntpdata` output for several sources (no address given): each preceded by a blank line. */
export function formatNtpDataList(
  list: NtpDataReport[],
  opts: FormatOptions & { addressGiven?: boolean } = {},
): string {
  return list.map((r) => (!opts.addressGiven && !opts.csv ? '\n' : '') + formatNtpData(r, opts)).join('');
}

export const CLIENTS_HEADER = 'Hostname                      NTP   Drop Int IntL Last     Cmd   Drop Int  Last';

export function formatClients(list: ClientReport[], opts: FormatOptions = {}): string {
  let out = opts.csv ? '' : header(CLIENTS_HEADER);
  for (const c of list) {
    out += render(
      [
        F.str(displayName(c.address, c.address, opts), 25, true),
        '  ',
        F.int(c.ntpHits, 6),
        '  ',
        F.int(c.ntpDrops, 5),
        '  ',
        F.clientInterval(c.ntpInterval),
        '  ',
        F.clientInterval(c.ntpIntervalLast),
        '  ',
        F.interval(c.lastNtpAgo),
        '  ',
        F.int(c.cmdHits, 6),
        '  ',
        F.int(c.cmdDrops, 5),
        '  ',
        F.clientInterval(c.cmdInterval),
        '  ',
        F.interval(c.lastCmdAgo),
        '\n',
      ],
      opts.csv,
    );
  }
  return out;
}

export function formatServerStats(r: ServerStatsReport, opts: FormatOptions = {}): string {
  return render(
    [
      'NTP packets received       : ',
      F.int(r.ntpPacketsReceived),
      '\n',
      'NTP packets dropped        : ',
      F.int(r.ntpPacketsDropped),
      '\n',
      'Command packets received   : ',
      F.int(r.cmdPacketsReceived),
      '\n',
      'Command packets dropped    : ',
      F.int(r.cmdPacketsDropped),
      '\n',
      'Client log records dropped : ',
      F.int(r.clientLogRecordsDropped ?? 0),
      '\n',
      'NTS-KE connections accepted: ',
      F.int(r.ntsKeConnectionsAccepted ?? 0),
      '\n',
      'NTS-KE connections dropped : ',
      F.int(r.ntsKeConnectionsDropped ?? 0),
      '\n',
      'Authenticated NTP packets  : ',
      F.int(r.ntpAuthPacketsReceived),
      '\n',
      'Interleaved NTP packets    : ',
      F.int(r.ntpInterleavedPacketsReceived),
      '\n',
      'NTP timestamps held        : ',
      F.int(r.ntpTimestampsHeld),
      '\n',
      'NTP timestamp span         : ',
      F.int(r.ntpTimestampSpan),
      '\n',
    ],
    opts.csv,
  );
}

export function formatActivity(r: ActivityReport, opts: FormatOptions = {}): string {
  return (
    (opts.csv ? '' : '200 OK\n') +
    render(
      [
        F.int(r.online),
        ' sources online\n',
        F.int(r.offline),
        ' sources offline\n',
        F.int(r.burstOnline),
        ' sources doing burst (return to online)\n',
        F.int(r.burstOffline),
        ' sources doing burst (return to offline)\n',
        F.int(r.unresolved),
        ' sources with unknown address\n',
      ],
      opts.csv,
    )
  );
}

/** One waitsync try line: "try: 1, refid: CB00710F, correction: 0.000006523, skew: 0.129". */
export function formatWaitsyncTry(
  tryNo: number,
  refId: number,
  correction: number,
  skewPpm: number,
  opts: FormatOptions = {},
): string {
  return render(
    [
      'try: ',
      F.int(tryNo),
      ', refid: ',
      F.refId(refId),
      ', correction: ',
      F.fixed(correction, 9),
      ', skew: ',
      F.fixed(skewPpm, 3),
      '\n',
    ],
    opts.csv,
  );
}
