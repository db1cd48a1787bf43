/**
 * chronyd's command service for rubidiumd: takes one cmdmon datagram and where it came from,
 * applies chronyd's access rules, maps the request onto the engine's reports and operations and
 * returns the reply datagram (or null when chronyd would not answer). Sans-IO: the clock, the
 * engine and the name resolver are injected.
 */
import type { Engine, SourceConfig } from '../engine/engine.js';
import type { ClientReport, LeapStatus, NtpDataReport, SourceReport } from '../control/reports.js';
import { refIdFromAddress } from '../ntp/refid.js';
import { authDataReports } from '../control/authdata.js';
import type { Instant } from '../time/ntp-time.js';
import { SOURCE_DEFAULTS } from '../engine/types.js';
import { CmdAccess, isLocalhost } from './access.js';
import { type CmdIpAddr, REQ, STT, ipAddrFromString, ipMatches } from './protocol.js';
import { type CmdReply, type ClientAccessReply, SD_MODE, SD_STATE, encodeReply } from './reply.js';
import { ADDSRC, type AddSourceRequest, type CmdRequest, decodeRequest } from './request.js';

/** The engine operations the service uses (Engine satisfies it; tests may fake it). */
export type CmdmonEngine = Pick<
  Engine,
  | 'tracking'
  | 'sources'
  | 'sourceStats'
  | 'ntpData'
  | 'clients'
  | 'serverStats'
  | 'activity'
  | 'makestep'
  | 'burst'
  | 'setOnline'
  | 'addSource'
  | 'removeSource'
> &
  /** For authdata (the sources' authenticators); without it every source reports mode NONE. */
  Partial<Pick<Engine, 'sourceDetails'>>;

export type CmdOrigin = { transport: 'udp'; address: string } | { transport: 'unix' };

export interface CmdmonDeps {
  engine: CmdmonEngine;
  now: () => Instant;
  /** Seconds on a monotonic scale, for cmdratelimit. */
  monotonicSeconds: () => number;
  /** Sends what the engine queued (after makestep, burst, online...). */
  flush: () => void;
  access: CmdAccess;
  /** Resolves a host name for `add server NAME`; absent = only address literals work. */
  resolve?: (name: string) => Promise<string[]>;
  /** Command packets seen by other control transports (the JSON protocol), for serverstats. */
  otherCmdStats?: () => { received: number; dropped: number };
  /** Closes and reopens the log files (chronyc cyclelogs). */
  cycleLogs?: () => void;
  /** Called for every refused or malformed datagram (logging). */
  onReject?: (origin: CmdOrigin, reason: string) => void;
}

const LEAP_CODE: Record<LeapStatus, number> = {
  Normal: 0,
  'Insert second': 1,
  'Delete second': 2,
  'Not synchronised': 3,
};

const STATE_CODE: Record<SourceReport['state'], number> = {
  '*': SD_STATE.SELECTED,
  '?': SD_STATE.NONSELECTABLE,
  x: SD_STATE.FALSETICKER,
  '~': SD_STATE.JITTERY,
  '+': SD_STATE.UNSELECTED, // chronyc 4.3 prints UNSELECTED as '+' (combined)
  '-': SD_STATE.SELECTABLE, // and SELECTABLE as '-' (not combined)
};

const MODE_CODE: Record<SourceReport['mode'], number> = {
  server: SD_MODE.CLIENT,
  peer: SD_MODE.PEER,
  refclock: SD_MODE.REF,
};

const TSS_CHAR: Record<NtpDataReport['txTimestamping'], string> = { Daemon: 'D', Kernel: 'K', Hardware: 'H' };

const NEVER = 0xffffffff;
const NO_INTERVAL = 127;

function agoSeconds(s: number | null): number {
  return s === null || !Number.isFinite(s) || s < 0 ? NEVER : Math.floor(s);
}

function refIdOf(address: string): number {
  try {
    return refIdFromAddress(address) >>> 0;
  } catch {
    return 0;
  }
}

/** "111 111 1111" → chrony's test bits (bit 9 first). */
export function testFlags(tests: string): number {
  const bits = tests.replace(/\s+/g, '');
  let v = 0;
  for (let i = 0; i < bits.length && i < 10; i++) if (bits[i] === '1') v |= 1 << (9 - i);
  return v;
}

export class CmdmonService {
  private received = 0;
  private dropped = 0;

  constructor(private readonly deps: CmdmonDeps) {}

  /** Command datagrams handled here (for serverstats). */
  get stats(): { received: number; dropped: number } {
    return { received: this.received, dropped: this.dropped };
  }

  /** One request datagram in, the reply datagram out (null = no reply, as chronyd). */
  async handle(data: Uint8Array, origin: CmdOrigin): Promise<Buffer | null> {
    const reject = (reason: string) => this.deps.onReject?.(origin, reason);
    if (origin.transport === 'udp' && !this.deps.access.hostAllowed(origin.address)) {
      reject('host not allowed by cmdallow/cmddeny');
      return null;
    }
    const dec = decodeRequest(data);
    if (dec.kind === 'drop') {
      reject(dec.reason);
      return null;
    }
    this.received++;
    if (origin.transport === 'udp' && !this.deps.access.rateAllows(origin.address, this.deps.monotonicSeconds())) {
      this.dropped++;
      reject('cmdratelimit');
      return null;
    }
    let out: Buffer;
    if (dec.kind === 'status') {
      reject(dec.reason);
      out = encodeReply(dec.header, dec.status);
    } else if (origin.transport === 'udp' && !this.deps.access.commandOpen(dec.header.command)) {
      // Remote or not, chronyd serves modifying commands only on its Unix socket.
      reject(`command ${dec.header.command} not allowed over UDP`);
      out = encodeReply(dec.header, STT.UNAUTH);
    } else {
      let status: number = STT.SUCCESS;
      let reply: CmdReply = { type: 'null' };
      try {
        const r = await this.execute(dec.request);
        status = r.status;
        reply = r.reply ?? reply;
      } catch (e) {
        reject(`command ${dec.header.command} failed: ${(e as Error).message}`);
        status = STT.FAILED;
      }
      out = encodeReply(dec.header, status, reply);
    }
    // chronyd never sends a reply longer than the request (no amplification).
    if (out.length > data.length) {
      reject('reply longer than request');
      return null;
    }
    return out;
  }

  private sourceList(): SourceReport[] {
    return this.deps.engine.sources(this.deps.now());
  }

  private ipOfSource(s: { address: string }, index: number): CmdIpAddr {
    const ip = ipAddrFromString(s.address);
    return ip.family === 'unspec' ? { family: 'id', id: index } : ip;
  }

  private selectFilter(mask: CmdIpAddr, address: CmdIpAddr): ((s: SourceConfig) => boolean) | undefined {
    if (address.family === 'unspec') return undefined; // every source
    return (s) => ipMatches(ipAddrFromString(s.address.address), address, mask);
  }

  private async execute(req: CmdRequest): Promise<{ status: number; reply?: CmdReply }> {
    const e = this.deps.engine;
    const now = this.deps.now();
    const ok = (reply?: CmdReply) => ({ status: STT.SUCCESS, ...(reply ? { reply } : {}) });
    const fail = (status: number) => ({ status });
    switch (req.cmd) {
      case 'null':
        return ok();
      case 'n_sources':
        return ok({ type: 'n_sources', n: this.sourceList().length });
      case 'source_data': {
        const list = this.sourceList();
        const s = list[req.index];
        if (req.index < 0 || !s) return fail(STT.NOSUCHSOURCE);
        const ip: CmdIpAddr =
          s.mode === 'refclock'
            ? { family: 'inet4', address: refclockRefIdAddress(s.name) }
            : this.ipOfSource(s, req.index);
        return ok({
          type: 'source_data',
          data: {
            ip,
            poll: s.poll,
            stratum: s.stratum,
            state: STATE_CODE[s.state] ?? SD_STATE.NONSELECTABLE,
            mode: MODE_CODE[s.mode] ?? SD_MODE.CLIENT,
            flags: 0,
            reachability: s.reach & 0xff,
            sinceSample: agoSeconds(s.lastRxAgo),
            origLatestMeas: s.measuredOffset,
            latestMeas: s.adjustedOffset,
            latestMeasErr: s.error,
          },
        });
      }
      case 'sourcestats': {
        const list = e.sourceStats(now);
        const s = list[req.index];
        if (!s) return fail(STT.NOSUCHSOURCE);
        const ip = this.ipOfSource(s, req.index);
        return ok({
          type: 'sourcestats',
          data: {
            refId: refIdOf(s.address),
            ip,
            nSamples: s.np,
            nRuns: s.nr,
            spanSeconds: Math.max(0, Math.floor(s.span)),
            sd: s.stdDev,
            residFreqPpm: s.frequencyPpm,
            skewPpm: s.freqSkewPpm,
            estOffset: s.offset,
            estOffsetErr: s.stdDev,
          },
        });
      }
      case 'tracking': {
        const t = e.tracking(now);
        let ip = ipAddrFromString(t.refName);
        if (ip.family === 'unspec' && t.refName !== '') {
          const src = this.sourceList().find((s) => s.name === t.refName);
          if (src) ip = ipAddrFromString(src.address);
        }
        return ok({
          type: 'tracking',
          data: {
            refId: t.refId,
            ip,
            stratum: t.stratum,
            leapStatus: LEAP_CODE[t.leapStatus] ?? 3,
            refTimeNs: BigInt(t.refTimeNs),
            currentCorrection: t.systemTimeOffset,
            lastOffset: t.lastOffset,
            rmsOffset: t.rmsOffset,
            freqPpm: t.frequencyPpm,
            residFreqPpm: t.residualFreqPpm,
            skewPpm: t.skewPpm,
            rootDelay: t.rootDelay,
            rootDispersion: t.rootDispersion,
            lastUpdateInterval: t.updateInterval,
          },
        });
      }
      case 'ntp_data': {
        const d = e.ntpData(now).find((n) => ipMatches(ipAddrFromString(n.remoteAddress), req.address, req.address));
        if (!d || req.address.family === 'unspec') return fail(STT.NOSUCHSOURCE);
        return ok({
          type: 'ntp_data',
          data: {
            remoteAddr: ipAddrFromString(d.remoteAddress),
            localAddr: ipAddrFromString(d.localAddress),
            remotePort: d.remotePort,
            leap: d.leap,
            version: d.version,
            mode: d.mode,
            stratum: d.stratum,
            poll: d.poll,
            precision: d.precision,
            rootDelay: d.rootDelay,
            rootDispersion: d.rootDispersion,
            refId: d.refId,
            refTimeNs: BigInt(d.refTimeNs),
            offset: d.offset,
            peerDelay: d.peerDelay,
            peerDispersion: d.peerDispersion,
            responseTime: d.responseTime,
            jitterAsymmetry: d.jitterAsymmetry,
            flags: testFlags(d.ntpTests) | (d.interleaved ? 0x4000 : 0) | (d.authenticated ? 0x8000 : 0),
            txTssChar: TSS_CHAR[d.txTimestamping] ?? 'D',
            rxTssChar: TSS_CHAR[d.rxTimestamping] ?? 'D',
            totalTx: d.totalTx,
            totalRx: d.totalRx,
            totalValid: d.totalValidRx,
            totalGood: d.totalGoodRx ?? d.totalValidRx,
          },
        });
      }
      case 'ntp_source_name': {
        const s = this.sourceList().find((x) => ipMatches(ipAddrFromString(x.address), req.address, req.address));
        if (!s || req.address.family === 'unspec') return fail(STT.NOSUCHSOURCE);
        return ok({ type: 'ntp_source_name', name: s.name });
      }
      case 'auth_data': {
        const s = this.sourceList().find((x) => ipMatches(ipAddrFromString(x.address), req.address, req.address));
        if (!s || req.address.family === 'unspec') return fail(STT.NOSUCHSOURCE);
        const a = authDataReports(e.sourceDetails?.() ?? [], now).find((x) => x.address === s.address);
        if (!a || a.mode === 'none') return ok({ type: 'auth_data_none' });
        return ok({ type: 'auth_data', data: a });
      }
      case 'select_data': {
        const list = this.sourceList();
        const s = list[req.index];
        if (!s) return fail(STT.NOSUCHSOURCE);
        return ok({
          type: 'select_data',
          data: {
            refId: refIdOf(s.address),
            ip: this.ipOfSource(s, req.index),
            stateChar: s.state === '?' ? 'N' : s.state === '*' ? '*' : s.state === '+' ? '+' : s.state,
            authentication: !!e.sourceDetails?.().find((x) => x.cfg.address.address === s.address)?.cfg.auth,
            leap: 0,
            confOptions: 0,
            effOptions: 0,
            lastSampleAgo: agoSeconds(s.lastRxAgo),
            score: 0,
            loLimit: s.adjustedOffset - s.error,
            hiLimit: s.adjustedOffset + s.error,
          },
        });
      }
      case 'client_accesses':
        return ok(this.clientAccesses(req.firstIndex, req.nClients, req.minHits));
      case 'server_stats': {
        const s = e.serverStats();
        const other = this.deps.otherCmdStats?.() ?? { received: 0, dropped: 0 };
        return ok({
          type: 'server_stats',
          data: {
            ntpHits: s.ntpPacketsReceived,
            nkeHits: s.ntsKeConnectionsAccepted ?? 0,
            cmdHits: this.received + other.received,
            ntpDrops: s.ntpPacketsDropped,
            nkeDrops: s.ntsKeConnectionsDropped ?? 0,
            cmdDrops: this.dropped + other.dropped,
            logDrops: s.clientLogRecordsDropped ?? 0,
            ntpAuthHits: s.ntpAuthPacketsReceived,
            ntpInterleavedHits: s.ntpInterleavedPacketsReceived,
            ntpTimestamps: s.ntpTimestampsHeld,
            ntpSpanSeconds: s.ntpTimestampSpan,
          },
        });
      }
      case 'activity':
        return ok({ type: 'activity', data: e.activity() });
      case 'cyclelogs':
        if (!this.deps.cycleLogs) return fail(STT.FAILED);
        this.deps.cycleLogs();
        return ok();
      case 'makestep':
        e.makestep(now);
        this.deps.flush();
        return ok();
      case 'burst': {
        const n = e.burst(now, this.selectFilter(req.mask, req.address), req.nGood, req.nTotal);
        this.deps.flush();
        return n > 0 ? ok() : fail(STT.NOSUCHSOURCE);
      }
      case 'online':
      case 'offline': {
        const n = e.setOnline(req.cmd === 'online', now, this.selectFilter(req.mask, req.address));
        this.deps.flush();
        return n > 0 ? ok() : fail(STT.NOSUCHSOURCE);
      }
      case 'onoffline':
        // SRC_MAYBE_ONLINE: online when a route exists; on a host running rubidiumd it does.
        e.setOnline(true, now);
        this.deps.flush();
        return ok();
      case 'add_source_invalid':
        return fail(req.status);
      case 'add_source':
        return this.addSource(req.source);
      case 'del_source': {
        if (req.address.family === 'unspec' || req.address.family === 'id') return fail(STT.NOSUCHSOURCE);
        const ids = this.sourceList()
          .filter((s) => ipMatches(ipAddrFromString(s.address), req.address, req.address))
          .map((s) => `${s.address}:${s.port}`);
        let removed = 0;
        for (const id of ids) if (e.removeSource(id)) removed++;
        return removed > 0 ? ok() : fail(STT.NOSUCHSOURCE);
      }
      case 'cmdaccheck': {
        const a = req.address;
        if (a.family !== 'inet4' && a.family !== 'inet6') return fail(STT.ACCESSDENIED);
        const allowed = isLocalhost(a.address) || this.deps.access.hostAllowed(a.address);
        return fail(allowed ? STT.ACCESSALLOWED : STT.ACCESSDENIED);
      }
      case 'accheck':
        return fail(STT.FAILED);
      case 'other':
        return fail(unsupportedStatus(req.command));
    }
  }

  private clientAccesses(first: number, max: number, minHits: number): CmdReply {
    const list: ClientReport[] = this.deps.engine.clients(this.deps.now());
    const want = Math.min(max, 8);
    const out: ClientAccessReply[] = [];
    let i = first;
    for (; i < list.length && out.length < want; i++) {
      const c = list[i]!;
      if (minHits > 0 && c.ntpHits + c.cmdHits < minHits) continue;
      out.push({
        ip: ipAddrFromString(c.address),
        ntpHits: c.ntpHits,
        nkeHits: 0,
        cmdHits: c.cmdHits,
        ntpDrops: c.ntpDrops,
        nkeDrops: 0,
        cmdDrops: c.cmdDrops,
        ntpInterval: c.ntpInterval ?? NO_INTERVAL,
        nkeInterval: NO_INTERVAL,
        cmdInterval: c.cmdInterval ?? NO_INTERVAL,
        ntpTimeoutInterval: c.ntpIntervalLast ?? NO_INTERVAL,
        lastNtpHitAgo: agoSeconds(c.lastNtpAgo),
        lastNkeHitAgo: NEVER,
        lastCmdHitAgo: agoSeconds(c.lastCmdAgo),
      });
    }
    return { type: 'client_accesses', nIndices: list.length, nextIndex: Math.max(i, first), clients: out };
  }

  private async addSource(r: AddSourceRequest): Promise<{ status: number }> {
    if (r.type === 'peer') return { status: STT.FAILED }; // symmetric mode is not implemented
    if (r.flags & ADDSRC.NTS) return { status: STT.FAILED }; // NTS is not implemented
    if (r.name === '' || !/^[\x21-\x7e]+$/.test(r.name)) return { status: STT.INVALIDNAME };
    if (r.port < 1 || r.port > 65535) return { status: STT.INVALID };
    if (r.minpoll < -7 || r.minpoll > 24 || r.maxpoll < -7 || r.maxpoll > 24) return { status: STT.INVALID };
    const literal = ipAddrFromString(r.name);
    let addrs: string[];
    if (literal.family === 'inet4' || literal.family === 'inet6') addrs = [literal.address];
    else {
      if (!this.deps.resolve) return { status: STT.INVALIDNAME };
      try {
        addrs = await this.deps.resolve(r.name);
      } catch {
        return { status: STT.INVALIDNAME };
      }
      if (addrs.length === 0) return { status: STT.INVALIDNAME };
      addrs = addrs.slice(0, r.type === 'pool' ? Math.max(1, Math.min(16, r.maxSources || 4)) : 1);
    }
    const existing = new Set(this.sourceList().map((s) => `${s.address}:${s.port}`));
    const now = this.deps.now();
    let added = 0;
    for (const address of addrs) {
      const id = `${address}:${r.port}`;
      if (existing.has(id)) continue;
      this.deps.engine.addSource(
        {
          id,
          name: r.type === 'pool' || literal.family !== 'unspec' ? address : r.name,
          address: { address, port: r.port },
          minpoll: r.minpoll,
          maxpoll: Math.max(r.minpoll, r.maxpoll),
          iburst: (r.flags & ADDSRC.IBURST) !== 0,
          burst: (r.flags & ADDSRC.BURST) !== 0,
          prefer: (r.flags & ADDSRC.PREFER) !== 0,
          noselect: (r.flags & ADDSRC.NOSELECT) !== 0,
          trust: (r.flags & ADDSRC.TRUST) !== 0,
          require: (r.flags & ADDSRC.REQUIRE) !== 0,
          maxdelay: r.maxDelay > 0 ? r.maxDelay : 3,
          polltarget: r.pollTarget > 0 ? r.pollTarget : SOURCE_DEFAULTS.polltarget,
          xleave: (r.flags & ADDSRC.INTERLEAVED) !== 0,
          version: r.version >= 1 && r.version <= 4 ? r.version : 4,
          offline: (r.flags & ADDSRC.ONLINE) === 0,
        },
        now,
      );
      added++;
    }
    if (added === 0) return { status: STT.SOURCEALREADYKNOWN };
    this.deps.flush();
    return { status: STT.SUCCESS };
  }
}

/** The status for commands the engine has no counterpart for (what chronyc then prints). */
function unsupportedStatus(command: number): number {
  switch (command) {
    case REQ.RTCREPORT:
    case REQ.TRIMRTC:
    case REQ.WRITERTC:
      return STT.NORTC; // "513 RTC driver not running"
    case REQ.SMOOTHING:
    case REQ.SMOOTHTIME:
      return STT.NOTENABLED; // "505 Facility not enabled in daemon"
    case REQ.LOGON:
      return STT.FAILED; // authentication is gone from chronyd too
    default:
      return STT.FAILED; // "500 Failure"
  }
}

/** A refclock's reference ID (its name's first four characters) in dotted form. */
function refclockRefIdAddress(name: string): string {
  const b = Buffer.alloc(4);
  Buffer.from(name, 'latin1').subarray(0, 4).copy(b);
  return [...b].join('.');
}
