/**
 * What Rubidium does with every chrony.conf directive and server/pool option (chrony 4.8's
 * complete list). The parser consults this table for every directive it has no `case` for, and
 * `test/unit/config-status.test.ts` checks that docs/config.md states the same status for each.
 *
 * - works: parsed into `Config` and used (`example` is a valid argument list, for the tests);
 * - planned: not implemented yet, an issue will add it;
 * - refused: not implemented, with the reason;
 * - accepted, no effect: parsed and ignored because ignoring it is harmless (obsolete, or a
 *   mechanism Rubidium does not have).
 * `fatal` decides whether a planned/refused directive stops the configuration from loading (its
 * silent absence would weaken security or correctness) or only warns (routine in distribution
 * configurations, and harmless to skip).
 */
import { ConfigError } from './config-error.js';

export type DirectiveStatus =
  | { kind: 'works'; example: string }
  | { kind: 'planned'; what: string; fatal: boolean }
  | { kind: 'refused'; reason: string; fatal: boolean }
  | { kind: 'no effect'; why: string };

const works = (example = ''): DirectiveStatus => ({ kind: 'works', example });
const planned = (what: string, fatal = false): DirectiveStatus => ({ kind: 'planned', what, fatal });
const refused = (reason: string, fatal: boolean): DirectiveStatus => ({ kind: 'refused', reason, fatal });
const noEffect = (why: string): DirectiveStatus => ({ kind: 'no effect', why });

const NTS = 'NTS and symmetric keys (issue 5)';
const HWTS = 'hardware timestamping (PTP issue)';
const REFCLOCK = 'reference clocks (refclock issue)';
const NO_SO_BINDTODEVICE = 'binding to an interface (SO_BINDTODEVICE) is not implemented; use bindaddress';

/** Every chrony.conf directive (chrony 4.8), by name. */
export const DIRECTIVE_STATUS: Readonly<Record<string, DirectiveStatus>> = {
  // ---- sources
  server: works('ntp.example.net iburst'),
  pool: works('pool.example.net iburst maxsources 3'),
  peer: refused('symmetric (peer) mode is not implemented; use server on both sides', true),
  refclock: planned(REFCLOCK, true),
  initstepslew: works('30 ntp1.example.net ntp2.example.net'),
  manual: refused('manual time input (chronyc settime) is not implemented', false),
  acquisitionport: works('1123'),
  bindacqaddress: works('0.0.0.0'),
  bindacqdevice: refused(NO_SO_BINDTODEVICE, true),
  dscp: refused('DSCP marking of NTP packets is not implemented (needs IP_TOS in the addon)', false),
  dumpdir: refused('measurement history is not saved across restarts; sources start afresh', false),
  dumponexit: noEffect('obsolete; chronyd also ignores it'),
  minsamples: works('6'),
  maxsamples: works('32'),
  refresh: refused('names are resolved once at start; pool addresses are not refreshed', false),
  // ---- source selection
  authselectmode: planned(NTS),
  combinelimit: works('3'),
  maxdistance: works('3'),
  maxjitter: works('1'),
  minsources: works('2'),
  reselectdist: works('1e-4'),
  stratumweight: works('1e-3'),
  // ---- system clock
  clockprecision: works('8e-9'),
  corrtimeratio: works('3'),
  driftfile: works('/var/lib/chrony/chrony.drift'),
  fallbackdrift: refused(
    'frequency fallback during long outages is not implemented; the last frequency is kept',
    false,
  ),
  leapsecmode: works('slew'),
  leapsectz: works('right/UTC'),
  leapseclist: works('/usr/share/zoneinfo/leap-seconds.list'),
  makestep: works('1 3'),
  maxchange: works('1000 1 2'),
  maxclockerror: works('1'),
  maxdrift: works('500'),
  maxupdateskew: works('100'),
  maxslewrate: works('83333.333'),
  tempcomp: refused('temperature compensation is not implemented', false),
  // ---- NTP server
  allow: works('192.168.0.0/16'),
  deny: works('192.168.1.0/24'),
  bindaddress: works('127.0.0.1'),
  binddevice: refused(NO_SO_BINDTODEVICE, true),
  broadcast: refused('broadcast server mode is not implemented; its clients would get no time', true),
  clientloglimit: works('1048576'),
  noclientlog: works(),
  local: works('stratum 10'),
  ntpsigndsocket: refused('MS-SNTP signing (Samba) is not implemented; its clients would reject our answers', true),
  ntsport: works('4460'),
  ntsservercert: works('/etc/rubidium/nts.crt'),
  ntsserverkey: works('/etc/rubidium/nts.key'),
  ntsprocesses: noEffect(
    'NTS-KE runs on node:tls in the daemon process (TLS work is asynchronous, no helper processes)',
  ),
  maxntsconnections: works('100'),
  ntsntpserver: works('ntp.example.net'),
  ntsrotate: works('604800'),
  ntsratelimit: works('interval 3 burst 1'),
  port: works('123'),
  ratelimit: works('interval 1 burst 16'),
  smoothtime: works('400 0.001 leaponly'),
  // ---- NTS client
  ntsaeads: works('30 15'),
  ntsdumpdir: works('/var/lib/rubidium'),
  ntscachedir: works('/var/lib/rubidium'),
  ntsrefresh: works('2419200'),
  ntstrustedcerts: works('1 /etc/pki/nts/ca.crt'),
  nosystemcert: works(),
  nocerttimecheck: works('1'),
  // ---- command and monitoring access
  bindcmdaddress: works('127.0.0.1'),
  bindcmddevice: refused(NO_SO_BINDTODEVICE, true),
  cmdallow: works('192.168.1.0/24'),
  cmddeny: works('192.168.1.13'),
  cmdport: works('323'),
  cmdratelimit: works('interval 2 burst 4'),
  opencommands: works('tracking sources ntpdata serverstats'),
  // ---- real-time clock
  hwclockfile: works('/etc/adjtime'),
  rtcautotrim: works('30'),
  rtcdevice: works('/dev/rtc0'),
  rtcfile: works('/var/lib/chrony/rtc'),
  rtconutc: works(),
  rtcsync: works(),
  // ---- logging
  log: works('measurements statistics tracking'),
  logbanner: works('20'),
  logchange: works('0.5'),
  logdir: works('/var/log/chrony'),
  mailonchange: refused('Rubidium sends no mail; use logchange and watch the daemon log', false),
  // ---- miscellaneous
  confdir: works('/etc/chrony/conf.d'),
  sourcedir: works('/etc/chrony/sources.d'),
  include: works('/etc/chrony/extra/*.conf'),
  hwtimestamp: planned(HWTS),
  hwtstimeout: planned(HWTS),
  maxtxbuffers: noEffect('only limits hardware TX timestamp buffers, which Rubidium does not use yet'),
  keyfile: works('/etc/chrony/chrony.keys'),
  lock_all: refused('memory locking (mlockall) is not implemented; the Node.js heap is not locked', false),
  pidfile: works('/run/chrony/chronyd.pid'),
  ptpport: planned('NTP over PTP (PTP issue)'),
  ptpdomain: planned('NTP over PTP (PTP issue)'),
  sched_priority: refused(
    'real-time scheduling is not implemented; packet times come from kernel timestamps, not from when the daemon runs',
    false,
  ),
  user: works('chrony'),
  // ---- obsolete (chronyd warns and ignores them)
  commandkey: noEffect('obsolete; chronyd also ignores it'),
  generatecommandkey: noEffect('obsolete; chronyd also ignores it'),
  linux_freq_scale: noEffect('obsolete; chronyd also ignores it'),
  linux_hz: noEffect('obsolete; chronyd also ignores it'),
};

export interface SourceOptionStatus {
  status: DirectiveStatus;
  /** Number of values the option takes (its following words). */
  values: number;
}

const opt = (status: DirectiveStatus, values: number): SourceOptionStatus => ({ status, values });

/** Every server/pool option (chrony 4.8). */
export const SOURCE_OPTION_STATUS: Readonly<Record<string, SourceOptionStatus>> = {
  minpoll: opt(works('4'), 1),
  maxpoll: opt(works('8'), 1),
  iburst: opt(works(), 0),
  burst: opt(works(), 0),
  key: opt(works('1'), 1),
  nts: opt(works(), 0),
  certset: opt(works('1'), 1),
  maxdelay: opt(works('0.1'), 1),
  maxdelayratio: opt(works('3'), 1),
  maxdelaydevratio: opt(works('5'), 1),
  maxdelayquant: opt(refused('the delay-quantile filter is not implemented; use maxdelaydevratio', false), 1),
  mindelay: opt(refused('a fixed minimum delay is not implemented; the measured minimum is used', false), 1),
  asymmetry: opt(refused('a fixed jitter asymmetry is not implemented; it is estimated', false), 1),
  offset: opt(works('-0.00005'), 1),
  minsamples: opt(works('8'), 1),
  maxsamples: opt(works('32'), 1),
  maxunreach: opt(works('100'), 1),
  filter: opt(refused('the median filter is not implemented', false), 1),
  offline: opt(works(), 0),
  auto_offline: opt(works(), 0),
  prefer: opt(works(), 0),
  noselect: opt(works(), 0),
  trust: opt(works(), 0),
  require: opt(works(), 0),
  xleave: opt(works(), 0),
  polltarget: opt(works('16'), 1),
  port: opt(works('11123'), 1),
  ntsport: opt(works('4461'), 1),
  presend: opt(refused('ARP warm-up packets before long polls are not sent', false), 1),
  minstratum: opt(works('3'), 1),
  version: opt(works('3'), 1),
  copy: opt(refused('copying the reference ID and stratum of a related server is not implemented', true), 0),
  extfield: opt(refused('extension fields F323/F324 are not implemented; the request is sent without them', false), 1),
  ipv4: opt(works(), 0),
  ipv6: opt(works(), 0),
  maxsources: opt(works('3'), 1),
};

/** The status as docs/config.md writes it, e.g. "refused (error): ..." or "works". */
export function statusText(s: DirectiveStatus): string {
  switch (s.kind) {
    case 'works':
      return 'works';
    case 'planned':
      return `planned (${s.fatal ? 'error' : 'warning'}): ${s.what}`;
    case 'refused':
      return `refused (${s.fatal ? 'error' : 'warning'}): ${s.reason}`;
    case 'no effect':
      return `accepted, no effect: ${s.why}`;
  }
}

/**
 * Handles a directive (or, with `what` = "server option", a source option) the parser has no
 * case for: an error if it is unknown or its refusal is fatal, a warning if it is planned or
 * refused harmlessly, nothing if it is accepted without effect.
 */
export function unimplemented(
  status: DirectiveStatus | undefined,
  written: string,
  what: string,
  where: string,
  warnings: string[],
): void {
  if (!status) throw new ConfigError(`${where}: unknown ${what} '${written}'`);
  const name = written.toLowerCase();
  switch (status.kind) {
    case 'works':
      // Marked as working but no parser case handles it (yet): never drop it silently.
      warnings.push(`${where}: ${what} '${name}' is not supported yet, ignored`);
      return;
    case 'planned':
      if (status.fatal)
        throw new ConfigError(`${where}: ${what} '${name}' is not supported yet (planned: ${status.what})`);
      warnings.push(`${where}: ${what} '${name}' is not supported yet (planned: ${status.what}), ignored`);
      return;
    case 'refused':
      if (status.fatal) throw new ConfigError(`${where}: ${what} '${name}' is not supported: ${status.reason}`);
      warnings.push(`${where}: ${what} '${name}' is not supported (${status.reason}), ignored`);
      return;
    case 'no effect':
      return;
  }
}
