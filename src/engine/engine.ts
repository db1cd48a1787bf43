/**
 * The engine (sans-IO, poll-driven): client associations + discipline + server, behind one
 * interface the daemon and the simulator drive identically.
 *
 * Driver contract:
 *   - `start(now)`, then whenever `nextTimeout()` is reached call `handleTimeout(now)`;
 *   - hand every received datagram to `handleDatagram(socket, from, data, rx, now)`;
 *   - after each call drain `pollClockAction()` and apply each action to the clock at once (later
 *     `now` inputs must reflect it), and drain `pollTransmit()` and send the datagrams;
 *   - report kernel TX timestamps of transmits carrying `txTag` to `handleTxTimestamp(tag, tx)`.
 * All instants are the local clock's (cooked) time.
 */
import type { Instant } from '../time/ntp-time.js';
import { diffSeconds } from '../time/ntp-time.js';
import type { ClockAction, Endpoint, ReferenceState, SelectState, Transmit } from './types.js';
import { SOURCE_DEFAULTS } from './types.js';
import type {
  ActivityReport,
  ClientReport,
  NtpDataReport,
  ServerStatsReport,
  SourceReport,
  SourceStatsReport,
  TrackingReport,
} from '../control/reports.js';
import { mergeClients, mergeServerStats } from '../control/merge-reports.js';
import { ClientAssociation } from '../ntp/client.js';
import { NtpServer } from '../ntp/server.js';
import { Mode6Server, engineMode6View, type Mode6Options } from '../ntp/mode6-server.js';
import type { ClientAssociationStatus } from '../ntp/client.js';
import { refIdFromAddress } from '../ntp/refid.js';
import type { ClientAuthenticator, ServerAuthenticator } from '../ntp/auth.js';
import { Discipline, REFID_LOCL, type DisciplineOptions, type SourceDiagnostics } from '../discipline/discipline.js';
import { disciplineSampleOptions, tuneSample, type SampleTuning } from '../discipline/sample-tuning.js';

export interface SourceConfig {
  id: string;
  name: string;
  address: Endpoint;
  minpoll: number;
  maxpoll: number;
  iburst: boolean;
  burst: boolean;
  prefer: boolean;
  noselect: boolean;
  trust: boolean;
  require: boolean;
  maxdelay: number;
  polltarget: number;
  xleave: boolean;
  version: number;
  offline: boolean;
  /** chrony auto_offline: a failed send takes the source offline. */
  autoOffline?: boolean;
  /** chrony maxunreach: polls the source may stay selectable while unreachable. */
  maxunreach?: number;
  /** maxdelayratio, maxdelaydevratio, min/maxsamples, offset, minstratum (chrony server options). */
  tuning?: SampleTuning;
  /** `key N` or `nts`: signs requests, accepts only authentic answers (src/ntp/auth.ts). */
  auth?: ClientAuthenticator;
}

export interface ServerConfig {
  enabled: boolean;
  access: (address: string) => boolean;
  /** `access` for an address as words at words[offset..] (NtpServerOptions.accessWordsAt: no string per packet). */
  accessWordsAt?: (family: 4 | 6, words: Int32Array, offset: number) => boolean;
  clientLogLimit: number;
  noclientlog?: boolean;
  /** chrony's ratelimit (interval, burst, leak, kod); absent = answer every request. */
  ratelimit?: { interval: number; burst: number; leak: number; kod: number };
  /** ntp.conf restrict: which clients ratelimit applies to (`limited`) and get KoD RATE (`kod`). */
  restrictLimit?: (address: string) => { limited: boolean; kod: boolean };
  /** Answer NTP mode 6 (ntpq) on the server socket; without it mode 6 is dropped. */
  mode6?: Mode6Options;
  /** Symmetric-key and NTS verification of authenticated requests (src/ntp/auth.ts). */
  auth?: readonly ServerAuthenticator[];
}

export interface EngineConfig {
  sources: SourceConfig[];
  discipline: DisciplineOptions;
  server: ServerConfig;
  /** log2 s */
  precision: number;
  /** How the I/O layer timestamps packets (shown by `ntpdata`); default 'Daemon'. */
  timestamping?: 'Kernel' | 'Daemon';
}

export interface EngineDeps {
  random: () => number;
}

/** Default source options (chrony defaults). */
export function sourceConfig(
  id: string,
  address: Endpoint,
  over: Partial<Omit<SourceConfig, 'id' | 'address'>> = {},
): SourceConfig {
  return {
    id,
    name: address.address,
    address,
    ...SOURCE_DEFAULTS,
    version: 4,
    ...over,
  };
}

interface Source {
  cfg: SourceConfig;
  assoc: ClientAssociation;
  kod: string | null;
  /**
   * Requests still to be sent before samples are trusted again after a clock step: an exchange
   * that straddles a step mixes timestamps of two timescales (interleaved samples also reuse the
   * previous exchange, hence two requests).
   */
  stepGuard: number;
  droppedAfterStep: number;
}

/** NTP servers outside the engine (server worker threads) whose reports join the engine's. */
export interface ExternalServerReports {
  stats(): ServerStatsReport[];
  clients(now: Instant): ClientReport[][];
}

type TagOwner = { kind: 'assoc'; id: string; tag: number } | { kind: 'server'; tag: number };

const MAX_TAGS = 65536;

export class Engine {
  private readonly sourcesById = new Map<string, Source>();
  private readonly discipline: Discipline;
  private readonly server: NtpServer | undefined;
  private readonly mode6: Mode6Server | undefined;
  private readonly txQueue: Transmit[] = [];
  private readonly tags = new Map<number, TagOwner>();
  private nextTag = 1;
  private started = false;
  private lastNow: Instant = 0n;
  private readonly verdicts: Record<string, number> = {};
  private jumps = 0;
  private lastJumpSeconds = 0;
  private external: ExternalServerReports | null = null;

  constructor(
    private readonly cfg: EngineConfig,
    private readonly deps: EngineDeps,
  ) {
    this.discipline = new Discipline({ precision: cfg.precision, ...cfg.discipline });
    this.server = cfg.server.enabled
      ? new NtpServer({
          clientLogLimit: cfg.server.clientLogLimit,
          access: cfg.server.access,
          ...(cfg.server.accessWordsAt ? { accessWordsAt: cfg.server.accessWordsAt } : {}),
          random: deps.random,
          ...(cfg.server.noclientlog !== undefined ? { noclientlog: cfg.server.noclientlog } : {}),
          ...(cfg.server.ratelimit ? { ratelimit: cfg.server.ratelimit } : {}),
          ...(cfg.server.restrictLimit ? { restrictLimit: cfg.server.restrictLimit } : {}),
          ...(cfg.server.auth ? { auth: cfg.server.auth } : {}),
        })
      : undefined;
    this.mode6 =
      cfg.server.enabled && cfg.server.mode6
        ? new Mode6Server(engineMode6View(this, REFID_LOCL), cfg.server.mode6)
        : undefined;
    for (const s of cfg.sources) this.createSource(s);
  }

  private createSource(cfg: SourceConfig): Source {
    if (this.sourcesById.has(cfg.id)) throw new Error(`duplicate source id ${cfg.id}`);
    const assoc = new ClientAssociation(
      {
        address: cfg.address,
        minpoll: cfg.minpoll,
        maxpoll: cfg.maxpoll,
        iburst: cfg.iburst,
        burst: cfg.burst,
        version: cfg.version,
        xleave: cfg.xleave,
        maxdelay: cfg.maxdelay,
        offline: cfg.offline,
        autoOffline: cfg.autoOffline ?? false,
        ...(cfg.auth ? { auth: cfg.auth } : {}),
        externalPoll: true,
        precision: this.cfg.precision,
      },
      { random: this.deps.random },
    );
    let refId = 0;
    try {
      refId = refIdFromAddress(cfg.address.address);
    } catch {
      refId = 0;
    }
    this.discipline.addSource(cfg.id, {
      prefer: cfg.prefer,
      noselect: cfg.noselect,
      trust: cfg.trust,
      require: cfg.require,
      refId,
      name: cfg.name,
      ...(cfg.maxunreach !== undefined ? { maxunreach: cfg.maxunreach } : {}),
      ...disciplineSampleOptions(cfg.tuning),
    });
    const src: Source = { cfg: { ...cfg }, assoc, kod: null, stepGuard: 0, droppedAfterStep: 0 };
    this.sourcesById.set(cfg.id, src);
    return src;
  }

  // ---- lifecycle and I/O ---------------------------------------------------------------------

  start(now: Instant): void {
    this.lastNow = now;
    if (this.started) return;
    this.started = true;
    this.discipline.start(now);
    for (const s of this.sourcesById.values()) {
      s.assoc.start(now);
      this.drainSource(s, now);
    }
  }

  addSource(cfg: SourceConfig, now: Instant): void {
    const s = this.createSource(cfg);
    if (this.started) {
      s.assoc.start(now);
      this.drainSource(s, now);
    }
  }

  removeSource(id: string): boolean {
    const s = this.sourcesById.get(id);
    if (!s) return false;
    this.sourcesById.delete(id);
    this.discipline.removeSource(id);
    for (const [t, o] of this.tags) if (o.kind === 'assoc' && o.id === id) this.tags.delete(t);
    return true;
  }

  handleDatagram(socket: 'client' | 'server', from: Endpoint, data: Uint8Array, rx: Instant, now: Instant): void {
    this.lastNow = now;
    if (socket === 'server') {
      if (!this.server) return;
      // Mode 6 (ntpq) goes to its own responder; mode 7 stays with the server, which drops it.
      if (this.mode6 && data.length > 0 && (data[0]! & 7) === 6) {
        for (const t of this.mode6.handle(data, from, now)) this.txQueue.push(t);
        return;
      }
      const out = this.server.handleRequest(data, from, rx, now, this.discipline.reference(now));
      if (out) this.queue(out, { kind: 'server', tag: out.txTag ?? 0 });
      return;
    }
    for (const s of this.sourcesById.values()) {
      if (s.cfg.address.address === from.address && s.cfg.address.port === from.port) {
        const v = s.assoc.handleResponse(data, from, rx);
        this.verdicts[v] = (this.verdicts[v] ?? 0) + 1;
        this.drainSource(s, now);
        return;
      }
    }
    this.verdicts['dropped:unknown-source'] = (this.verdicts['dropped:unknown-source'] ?? 0) + 1;
  }

  handleTxTimestamp(tag: number, tx: Instant): void {
    const o = this.tags.get(tag);
    if (!o) return;
    this.tags.delete(tag);
    if (o.kind === 'server') this.server?.handleTxTimestamp(o.tag, tx);
    else this.sourcesById.get(o.id)?.assoc.handleTxTimestamp(o.tag, tx);
  }

  handleTimeout(now: Instant): void {
    this.lastNow = now;
    this.discipline.handleTimeout(now);
    for (const s of this.sourcesById.values()) {
      const t = s.assoc.nextTimeout();
      if (t !== null && t <= now) {
        s.assoc.setSelected(this.discipline.selected === s.cfg.id);
        s.assoc.handleTimeout(now);
        const st = s.assoc.status();
        this.discipline.setUnreachableRun(s.cfg.id, st.unreachableRun);
        // Known not to answer (a full reach register of silence): stop waiting for it.
        if (st.reach === 0 && st.totalTx >= 8) this.discipline.setReachable(s.cfg.id, false);
        this.drainSource(s, now);
      }
    }
  }

  nextTimeout(): Instant | null {
    let best = this.discipline.nextTimeout();
    for (const s of this.sourcesById.values()) {
      const t = s.assoc.nextTimeout();
      if (t !== null && (best === null || t < best)) best = t;
    }
    return best;
  }

  pollTransmit(): Transmit | undefined {
    return this.txQueue.shift();
  }

  pollClockAction(): ClockAction | undefined {
    const a = this.discipline.pollClockAction();
    if (a?.type === 'step') {
      for (const s of this.sourcesById.values()) {
        s.stepGuard = s.cfg.xleave ? 2 : 1;
        s.assoc.clockStepped(a.seconds);
      }
    }
    return a;
  }

  private queue(t: Transmit, owner: TagOwner): void {
    if (t.txTag !== undefined) {
      const tag = this.nextTag;
      this.nextTag = this.nextTag >= 0x7fff_ffff ? 1 : this.nextTag + 1;
      this.tags.set(tag, owner);
      if (this.tags.size > MAX_TAGS) {
        // Tags never reported back (no kernel timestamps) must not accumulate.
        const oldest = this.tags.keys().next().value as number;
        this.tags.delete(oldest);
      }
      t = { ...t, txTag: tag };
    }
    this.txQueue.push(t);
  }

  private drainSource(s: Source, now: Instant): void {
    for (let t = s.assoc.pollTransmit(); t; t = s.assoc.pollTransmit()) {
      this.queue(t, { kind: 'assoc', id: s.cfg.id, tag: t.txTag ?? 0 });
      if (s.stepGuard > 0) s.stepGuard--;
    }
    let changed = false;
    for (let ev = s.assoc.pollEvent(); ev; ev = s.assoc.pollEvent()) {
      switch (ev.type) {
        case 'sample':
          if (s.stepGuard > 0) {
            s.droppedAfterStep++;
            break;
          }
          if (this.discipline.addSample(s.cfg.id, tuneSample(ev.sample, s.cfg.tuning), now) === 'accepted') {
            const adj = this.discipline.pollAdjustment(s.cfg.id, s.cfg.polltarget);
            if (adj !== undefined) s.assoc.adjustPoll(adj);
          }
          changed = true;
          break;
        case 'reach':
          this.discipline.setReachable(s.cfg.id, ev.reach !== 0);
          break;
        case 'unreachable':
          this.discipline.setReachable(s.cfg.id, false);
          changed = true;
          break;
        case 'kod':
          s.kod = ev.code;
          if (s.assoc.status().stopped) {
            this.discipline.setReachable(s.cfg.id, false);
            changed = true;
          }
          break;
      }
    }
    if (changed) this.discipline.update(now);
  }

  /**
   * The clock jumped by about `seconds` without a step of ours (host suspend/resume, VM
   * migration, another program set it): see holdover.ts' notes in docs/holdover.md. Drops the
   * sample history, lets makestep step again, and measures every source afresh in a burst.
   */
  clockJumped(now: Instant, seconds: number): void {
    this.lastNow = now;
    this.jumps++;
    this.lastJumpSeconds = seconds;
    this.discipline.clockJumped(now);
    for (const s of this.sourcesById.values()) {
      // A request in flight straddles the jump: its answer mixes two timescales.
      s.stepGuard = s.cfg.xleave ? 2 : 1;
      if (!s.assoc.status().online) continue;
      s.assoc.burst(now, 4, 8);
      this.drainSource(s, now);
    }
  }

  /** Clock jumps reported through clockJumped() (count, and the last one in seconds). */
  jumpStats(): { count: number; lastSeconds: number } {
    return { count: this.jumps, lastSeconds: this.lastJumpSeconds };
  }

  /** The I/O layer could not send `t` (ENETUNREACH, ...): auto_offline sources go offline. */
  transmitFailed(t: Transmit, now: Instant): void {
    if (t.socket !== 'client') return;
    for (const s of this.sourcesById.values()) {
      if (s.cfg.address.address === t.to.address && s.cfg.address.port === t.to.port) {
        s.assoc.sendFailed(now);
        this.drainSource(s, now);
      }
    }
  }

  /** NTS: points source `id` at the NTP server/port its NTS-KE negotiated (the id stays). */
  setSourceAddress(id: string, address: Endpoint): boolean {
    const s = this.sourcesById.get(id);
    if (!s) return false;
    s.cfg.address = { address: address.address, port: address.port };
    s.assoc.setAddress(address);
    return true;
  }

  /** Our reference ID as source `id` sees us (our address towards it), for orphan mode. */
  setLocalRefId(id: string, refId: number): void {
    this.discipline.setSourceOptions(id, { localRefId: refId });
  }

  /** The NTP server, for an I/O layer that answers requests itself (src/ntp/server-batch.ts). */
  get ntpServer(): NtpServer | undefined {
    return this.server;
  }

  /** What the server advertises at `now` (what handleDatagram gives the server). */
  serverReference(now: Instant): ReferenceState {
    return this.discipline.reference(now);
  }

  /** Reports of servers running outside the engine, included in serverStats() and clients(). */
  setExternalServerReports(reports: ExternalServerReports | null): void {
    this.external = reports;
  }

  // ---- control operations --------------------------------------------------------------------

  /** chronyc makestep: steps away the correction still being slewed. Returns the step (s). */
  makestep(now?: Instant): number {
    return this.discipline.makestep(now ?? this.lastNow);
  }

  private select(filter?: (s: SourceConfig) => boolean): Source[] {
    return [...this.sourcesById.values()].filter((s) => !filter || filter(s.cfg));
  }

  burst(now: Instant, filter?: (s: SourceConfig) => boolean, good = 4, total = 8): number {
    const list = this.select(filter);
    for (const s of list) {
      s.assoc.burst(now, good, total);
      this.drainSource(s, now);
    }
    return list.length;
  }

  setOnline(online: boolean, now: Instant, filter?: (s: SourceConfig) => boolean): number {
    const list = this.select(filter);
    for (const s of list) {
      s.assoc.setOnline(online, now);
      this.drainSource(s, now);
    }
    return list.length;
  }

  // ---- reports -------------------------------------------------------------------------------

  tracking(now: Instant): TrackingReport {
    return this.discipline.tracking(now);
  }

  sources(now: Instant): SourceReport[] {
    const out: SourceReport[] = [];
    for (const s of this.sourcesById.values()) {
      const st = s.assoc.status();
      const last = this.discipline.lastSample(s.cfg.id);
      out.push({
        mode: 'server',
        state: this.discipline.sourceState(s.cfg.id) ?? '?',
        name: s.cfg.name,
        address: s.cfg.address.address,
        port: s.cfg.address.port,
        stratum: st.lastPacket?.stratum ?? 0,
        poll: st.poll,
        reach: st.reach,
        lastRxAgo: last ? diffSeconds(now, last.time) : null,
        adjustedOffset: last ? -last.adjustedOffset : 0,
        measuredOffset: last ? -last.measuredOffset : 0,
        error: last ? last.error : 0,
      });
    }
    return out;
  }

  sourceStats(now: Instant): SourceStatsReport[] {
    const out: SourceStatsReport[] = [];
    for (const s of this.sourcesById.values()) {
      const st = this.discipline.sourceStats(s.cfg.id, now)!;
      out.push({ name: s.cfg.name, address: s.cfg.address.address, ...st });
    }
    return out;
  }

  /** Estimator internals per source address (statistics.log's offset sd, stress, Bs, asymmetry). */
  sourceDiagnostics(): Map<string, SourceDiagnostics> {
    const out = new Map<string, SourceDiagnostics>();
    for (const s of this.sourcesById.values()) {
      const d = this.discipline.sourceDiagnostics(s.cfg.id);
      if (d) out.set(s.cfg.address.address, d);
    }
    return out;
  }

  ntpData(now: Instant): NtpDataReport[] {
    const out: NtpDataReport[] = [];
    for (const s of this.sourcesById.values()) {
      const st = s.assoc.status();
      const p = st.lastPacket;
      const ls = st.lastSample;
      out.push({
        remoteAddress: s.cfg.address.address,
        remotePort: s.cfg.address.port,
        localAddress: '',
        leap: p?.leap ?? 3,
        version: p?.version ?? s.cfg.version,
        mode: p?.mode ?? 4,
        stratum: p?.stratum ?? 0,
        poll: st.poll,
        precision: p?.precision ?? 0,
        rootDelay: p?.rootDelay ?? 0,
        rootDispersion: p?.rootDispersion ?? 0,
        refId: p?.refId ?? 0,
        refTimeNs: String(p?.refTime ?? 0n),
        offset: ls ? -ls.offset : 0,
        peerDelay: ls?.delay ?? 0,
        peerDispersion: ls?.dispersion ?? 0,
        responseTime: 0,
        jitterAsymmetry: this.discipline.sourceDiagnostics(s.cfg.id)?.asymmetry ?? 0,
        ntpTests: st.ntpTests,
        interleaved: st.interleaved,
        authenticated: s.cfg.auth !== undefined,
        txTimestamping: this.cfg.timestamping ?? 'Daemon',
        rxTimestamping: this.cfg.timestamping ?? 'Daemon',
        totalTx: st.totalTx,
        totalRx: st.totalRx,
        totalValidRx: st.totalValidRx,
      });
      void now;
    }
    return out;
  }

  serverStats(): ServerStatsReport {
    const base = this.serverStatsNtp();
    const m6 = this.mode6?.stats();
    if (!m6) return base;
    // Every datagram on the NTP port counts as an NTP packet (as chronyd's serverstats).
    const m6Dropped = Object.values(m6.dropped).reduce((a, b) => a + b, 0);
    const malformedDropped = { ...base.malformedDropped };
    for (const [k, v] of Object.entries(m6.dropped)) malformedDropped[`mode6-${k}`] = v;
    return {
      ...base,
      ntpPacketsReceived: base.ntpPacketsReceived + m6.received,
      ntpPacketsDropped: base.ntpPacketsDropped + m6Dropped,
      malformedDropped,
    };
  }

  private serverStatsNtp(): ServerStatsReport {
    const own = this.ownServerStats();
    return this.external ? mergeServerStats([own, ...this.external.stats()]) : own;
  }

  private ownServerStats(): ServerStatsReport {
    return (
      this.server?.stats() ?? {
        ntpPacketsReceived: 0,
        ntpPacketsDropped: 0,
        cmdPacketsReceived: 0,
        cmdPacketsDropped: 0,
        clientLogSizeActive: 0,
        clientLogMemory: 0,
        ntpAuthPacketsReceived: 0,
        ntpInterleavedPacketsReceived: 0,
        ntpTimestampsHeld: 0,
        ntpTimestampSpan: 0,
        malformedDropped: {},
      }
    );
  }

  clients(now: Instant): ClientReport[] {
    const own = this.server?.clients(now) ?? [];
    return this.external ? mergeClients([own, ...this.external.clients(now)]) : own;
  }

  activity(): ActivityReport {
    const a: ActivityReport = { online: 0, offline: 0, burstOnline: 0, burstOffline: 0, unresolved: 0 };
    for (const s of this.sourcesById.values()) {
      const st = s.assoc.status();
      if (st.burstRemaining > 0) {
        if (st.online) a.burstOnline++;
        else a.burstOffline++;
      } else if (st.online) a.online++;
      else a.offline++;
    }
    return a;
  }

  /** Counts of client-side response verdicts (diagnostics). */
  responseVerdicts(): Record<string, number> {
    return { ...this.verdicts };
  }

  /** The discipline, for state the reports above do not carry (tests, driftfile writer). */
  get disciplineState(): Discipline {
    return this.discipline;
  }

  sourceIds(): string[] {
    return [...this.sourcesById.keys()];
  }

  /** Each source's configuration, association status and selection state (for mode 6). */
  sourceDetails(): Array<{ cfg: SourceConfig; status: ClientAssociationStatus; state: SelectState }> {
    return [...this.sourcesById.values()].map((s) => ({
      cfg: s.cfg,
      status: s.assoc.status(),
      state: this.discipline.sourceState(s.cfg.id) ?? '?',
    }));
  }

  /** Mode 6 counters (undefined when mode 6 is off). */
  mode6Stats(): ReturnType<Mode6Server['stats']> | undefined {
    return this.mode6?.stats();
  }
}
