/**
 * Who may send which cmdmon command (chronyd's rules): the Unix socket may send everything;
 * over UDP, localhost is always served and other hosts only if `cmdallow`/`cmddeny` allow them
 * (default: nobody), and only the open monitoring commands (chrony 4.3's PERMIT_OPEN set, or
 * the list given by `opencommands`); other commands get STT_UNAUTH ("501 Not authorised").
 * `cmdratelimit` limits replies to non-localhost hosts (token bucket per address).
 */
import { AccessTable } from '../ntp/access.js';
import { parseAddress } from '../ntp/ipaddr.js';
import { REQ } from './protocol.js';

/** chrony 4.3's PERMIT_OPEN commands (cmdmon.c permissions[]). */
const ALWAYS_OPEN = [REQ.NULL, REQ.LOGON];
export const DEFAULT_OPEN_COMMANDS = [
  'activity',
  'manual',
  'rtcdata',
  'smoothing',
  'sourcename',
  'sources',
  'sourcestats',
  'tracking',
] as const;

/** chronyc command names `opencommands` accepts and the requests each needs (chrony conf.c). */
export const OPEN_COMMAND_REQUESTS: Readonly<Record<string, readonly number[]>> = {
  activity: [REQ.ACTIVITY],
  authdata: [REQ.N_SOURCES, REQ.AUTH_DATA],
  clients: [REQ.CLIENT_ACCESSES_BY_INDEX3],
  manual: [REQ.MANUAL_LIST],
  ntpdata: [REQ.N_SOURCES, REQ.NTP_DATA],
  rtcdata: [REQ.RTCREPORT],
  selectdata: [REQ.N_SOURCES, REQ.SELECT_DATA],
  serverstats: [REQ.SERVER_STATS],
  smoothing: [REQ.SMOOTHING],
  sourcename: [REQ.NTP_SOURCE_NAME],
  sources: [REQ.N_SOURCES, REQ.SOURCE_DATA],
  sourcestats: [REQ.N_SOURCES, REQ.SOURCESTATS],
  tracking: [REQ.TRACKING],
};

export interface CmdAccessRule {
  allow: boolean;
  all: boolean;
  /** Subnet as written; '' = every address. */
  subnet: string;
}

export interface CmdRateLimit {
  /** log2 of the average interval between replies (s); chrony default -4 (16/s). */
  interval: number;
  /** Replies allowed back to back; chrony default 8. */
  burst: number;
  /** log2 of the fraction of excess requests still answered; default 2 (1 in 4). */
  leak: number;
}

export interface CmdAccessOptions {
  rules?: readonly CmdAccessRule[];
  /** chronyc command names (`opencommands`); undefined = chrony 4.3 defaults. */
  openCommands?: readonly string[];
  rateLimit?: CmdRateLimit | null;
  /** Random in [0,1) for the leak (injected: sans-IO). */
  random?: () => number;
}

export function isLocalhost(address: string): boolean {
  const a = parseAddress(address);
  if (!a) return false;
  if (a.family === 4) return a.bytes[0] === 127 && a.bytes[1] === 0 && a.bytes[2] === 0 && a.bytes[3] === 1;
  return a.bytes.every((v, i) => v === (i === 15 ? 1 : 0));
}

const MAX_TRACKED_HOSTS = 1024;

export class CmdAccess {
  private readonly table = new AccessTable();
  private readonly open = new Set<number>(ALWAYS_OPEN);
  private readonly limit: CmdRateLimit | null;
  private readonly buckets = new Map<string, { tokens: number; last: number }>();
  private readonly random: () => number;

  /** Throws Error naming the bad rule or command. */
  constructor(opts: CmdAccessOptions = {}) {
    for (const r of opts.rules ?? []) this.table.add(r.allow, r.subnet, r.all);
    for (const name of opts.openCommands ?? DEFAULT_OPEN_COMMANDS) {
      const reqs = OPEN_COMMAND_REQUESTS[name.toLowerCase()];
      if (!reqs) throw new Error(`opencommands: unknown command '${name}'`);
      for (const r of reqs) this.open.add(r);
    }
    this.limit = opts.rateLimit ?? null;
    this.random = opts.random ?? Math.random;
  }

  /** Whether a UDP datagram from this host is processed at all (else dropped silently). */
  hostAllowed(address: string): boolean {
    return isLocalhost(address) || this.table.allowed(address);
  }

  /** Whether this command may be sent over the network (UDP). */
  commandOpen(command: number): boolean {
    return this.open.has(command);
  }

  /** cmdratelimit: false = drop this request without a reply. `nowS` is seconds (monotonic). */
  rateAllows(address: string, nowS: number): boolean {
    if (!this.limit || isLocalhost(address)) return true;
    const rate = 2 ** -this.limit.interval; // replies per second
    let b = this.buckets.get(address);
    if (!b) {
      if (this.buckets.size >= MAX_TRACKED_HOSTS) {
        const oldest = this.buckets.keys().next().value;
        if (oldest !== undefined) this.buckets.delete(oldest);
      }
      b = { tokens: this.limit.burst, last: nowS };
    }
    this.buckets.delete(address); // re-insert: map order = least recently seen first
    this.buckets.set(address, b);
    b.tokens = Math.min(this.limit.burst, b.tokens + Math.max(0, nowS - b.last) * rate);
    b.last = nowS;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return true;
    }
    // Leak a fraction of the excess (chrony's "leak": 1 in 2^leak), so a spoofed flood
    // cannot completely silence a legitimate host.
    return this.limit.leak > 0 && this.random() < 2 ** -this.limit.leak;
  }
}
