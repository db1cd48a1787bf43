/**
 * Deterministic network simulator driving the real Engine (the same code the daemon runs).
 *
 * - Virtual true time is a bigint ns; everything happens through an event queue.
 * - Each node has an Oscillator (raw time from true time) and a DisciplinedClock('simulated')
 *   whose raw source is that oscillator at the current true time; its Engine sees only cooked
 *   time: packet RX/TX timestamps are the node's cooked clock at the true event time.
 * - Each direction of each link is a NetworkPath (base delay, jitter, loss, up/down schedule).
 * - Servers are nodes too: an Engine with `local stratum N` (a reference, perfect if its
 *   oscillator is), optionally lying by stepping its clock at a given time; clients are Engines
 *   with sources. All randomness comes from one seeded Prng, forked per node and per path.
 *
 * Metrics per measured node, sampled every `sampleInterval` s of true time: offset = cooked −
 * true, frequency error = rate of cooked time − 1. Sync time follows chrony's tests: the last
 * sample at which |offset| or |frequency error| exceeded its limit (0 if never, null if at the
 * end); max/RMS figures are taken after it.
 */
import type { Instant } from '../time/ntp-time.js';
import { addSeconds, diffSeconds, NS_PER_S } from '../time/ntp-time.js';
import { DisciplinedClock } from '../clock/disciplined-clock.js';
import type { ClockAction, Transmit } from '../engine/types.js';
import { Engine, sourceConfig, type SourceConfig } from '../engine/engine.js';
import type { DisciplineOptions } from '../discipline/discipline.js';
import type { SourceReport, TrackingReport } from '../control/reports.js';
import { Prng } from './prng.js';
import { Oscillator, type OscillatorSpec } from './oscillator.js';
import { NetworkPath, type PathSpec } from './network.js';
import { EventQueue } from './event-queue.js';
import { DETECTOR_TICK, SimHost, type HostEventSpec } from './host-model.js';
import type { LocalReferenceOptions } from '../discipline/holdover.js';
import { refIdFromAddress } from '../ntp/refid.js';

export interface SimSourceSpec {
  /** Address of the server node. */
  server: string;
  options?: Partial<Omit<SourceConfig, 'id' | 'address'>>;
}

export interface NodeSpec {
  address: string;
  oscillator?: OscillatorSpec;
  sources?: SimSourceSpec[];
  discipline?: DisciplineOptions;
  /** Serve time on port 123 (default true). */
  serve?: boolean;
  /** `local stratum N` (a reference clock for the others). */
  local?: LocalReferenceOptions;
  /** Host suspends and VM migrations (see host-model.ts). */
  host?: HostEventSpec[];
  /** Run the daemon's clock jump detector every second (default false). */
  detectJumps?: boolean;
  /** Lying server: step its clock by `offset` s at `at` s since start (default 0). */
  lie?: { offset: number; at?: number };
  /** Collect metrics for this node (default: if it has sources). */
  measure?: boolean;
  precision?: number;
  /** The clock is true UTC (a reference): the simulator makes it take the leap second. */
  followsUtc?: boolean;
}

export interface Scenario {
  seed: number;
  /** Seconds of true time. */
  duration: number;
  /** True time at the start (default 2026-01-01T00:00:00Z). */
  start?: Instant;
  nodes: NodeSpec[];
  /** Default path for every direction of every link. */
  path?: PathSpec;
  /** Overrides per direction, keyed "from->to" by address. */
  links?: Record<string, PathSpec>;
  limits?: { offset?: number; freq?: number };
  sampleInterval?: number;
  /** Called once per sample interval (true seconds since start) for custom checks. */
  onSample?: (t: number, nodes: SimNodeView[]) => void;
  /**
   * A leap second in UTC at the end of the day ending at `midnight` (Unix s): true time runs on,
   * UTC (and offsets, measured against it) repeats 23:59:59 (sign +1) or skips it (−1).
   */
  leap?: { midnight: bigint; sign: 1 | -1 };
  /** Control operations at given true times. */
  actions?: { at: number; node: string; run: (engine: Engine, now: Instant) => void }[];
}

export interface SimNodeView {
  address: string;
  engine: Engine;
  clock: DisciplinedClock;
  /** cooked − true, seconds. */
  offset: number;
  /** frequency error of the cooked clock, s/s. */
  freqError: number;
}

export interface NodeResult {
  address: string;
  syncTime: number | null;
  maxOffset: number;
  rmsOffset: number;
  maxFreq: number;
  rmsFreq: number;
  /** Sample times (s since start), offsets (s) and frequency errors (s/s). */
  times: Float64Array;
  offsets: Float64Array;
  freqErrors: Float64Array;
  tracking: TrackingReport;
  sources: SourceReport[];
  engine: Engine;
  clock: DisciplinedClock;
  steps: number;
}

export interface SimulationResult {
  nodes: Record<string, NodeResult>;
  /** Measured nodes, in scenario order. */
  clients: NodeResult[];
  events: number;
}

interface SimNode {
  spec: NodeSpec;
  index: number;
  osc: Oscillator;
  clock: DisciplinedClock;
  engine: Engine;
  clientPort: number;
  timerGen: number;
  timerTarget: Instant | null;
  steps: number;
  host: SimHost;
}

type Ev =
  | { kind: 'timer'; node: SimNode; gen: number }
  | {
      kind: 'deliver';
      node: SimNode;
      socket: 'client' | 'server';
      from: { address: string; port: number };
      data: Uint8Array;
    }
  | { kind: 'lie'; node: SimNode; offset: number }
  | { kind: 'host'; node: SimNode; ev: HostEventSpec; phase: 'start' | 'end' }
  | { kind: 'jumpTick'; node: SimNode }
  | { kind: 'action'; node: SimNode; run: (engine: Engine, now: Instant) => void };

const DEFAULT_START: Instant = 1_767_225_600n * NS_PER_S; // 2026-01-01T00:00:00Z

export function runSimulation(sc: Scenario): SimulationResult {
  const rng = new Prng(sc.seed);
  const start = sc.start ?? DEFAULT_START;
  const end = start + BigInt(Math.round(sc.duration * 1e9));
  let trueNow = start;
  const q = new EventQueue<Ev>();
  const byAddr = new Map<string, SimNode>();
  const nodes: SimNode[] = [];
  const paths = new Map<string, NetworkPath>();
  const pathRng = rng.fork();
  const leapAt = sc.leap ? sc.leap.midnight * NS_PER_S - (sc.leap.sign < 0 ? NS_PER_S : 0n) : null;
  const utcShift = (t: Instant): number => (leapAt !== null && t >= leapAt ? sc.leap!.sign : 0);

  sc.nodes.forEach((spec, index) => {
    const nodeRng = rng.fork();
    const osc = new Oscillator(spec.oscillator ?? {}, start, nodeRng.fork());
    const clock = new DisciplinedClock(() => osc.raw(trueNow), 'simulated');
    const discipline: DisciplineOptions = { ...(spec.discipline ?? {}) };
    if (spec.local) discipline.localStratum = { ...spec.local, distance: spec.local.distance ?? 1 };
    const sources: SourceConfig[] = (spec.sources ?? []).map((s, i) =>
      sourceConfig(`${s.server}#${i}`, { address: s.server, port: 123 }, s.options ?? {}),
    );
    const engine = new Engine(
      {
        sources,
        discipline,
        server: { enabled: spec.serve ?? true, access: () => true, clientLogLimit: 4096 },
        precision: spec.precision ?? -20,
      },
      { random: nodeRng.fork().fn() },
    );
    const node: SimNode = {
      spec,
      index,
      osc,
      clock,
      engine,
      clientPort: 40000 + index,
      timerGen: 0,
      timerTarget: null,
      steps: 0,
      host: new SimHost(spec.detectJumps ?? false),
    };
    for (const s of sources) {
      try {
        engine.setLocalRefId(s.id, refIdFromAddress(spec.address));
      } catch {
        // not an IP address: no local refid (orphan mode then never follows this source)
      }
    }
    if (byAddr.has(spec.address)) throw new Error(`duplicate node address ${spec.address}`);
    byAddr.set(spec.address, node);
    nodes.push(node);
  });

  const pathFor = (from: string, to: string): NetworkPath => {
    const key = `${from}->${to}`;
    let p = paths.get(key);
    if (!p) {
      const spec = sc.links?.[key] ?? sc.path ?? { baseDelay: 1e-4, jitter: { dist: 'exponential', mean: 1e-4 } };
      p = new NetworkPath(spec, pathRng.fork());
      paths.set(key, p);
    }
    return p;
  };

  const apply = (node: SimNode, a: ClockAction): void => {
    switch (a.type) {
      case 'frequency':
        node.clock.setFrequency(a.ppm);
        break;
      case 'offset':
        node.clock.step(a.seconds);
        node.host.ownStep(a.seconds);
        break;
      case 'step':
        node.clock.step(a.seconds);
        node.host.ownStep(a.seconds);
        node.steps++;
        break;
      case 'status':
        node.clock.setStatus({
          synchronized: a.synchronized,
          leap: a.leap,
          maxErrorS: a.maxErrorS,
          estErrorS: a.estErrorS,
        });
        break;
    }
  };

  const send = (node: SimNode, t: Transmit): void => {
    const dest = byAddr.get(t.to.address);
    if (!dest) return;
    const d = pathFor(node.spec.address, dest.spec.address).delay(diffSeconds(trueNow, start));
    if (d === undefined) return;
    const from = { address: node.spec.address, port: t.socket === 'server' ? 123 : node.clientPort };
    const socket = t.to.port === 123 ? 'server' : 'client';
    if (socket === 'client' && t.to.port !== dest.clientPort) return;
    q.push(addSeconds(trueNow, d), { kind: 'deliver', node: dest, socket, from, data: t.data });
  };

  const drain = (node: SimNode): void => {
    for (;;) {
      let any = false;
      for (let a = node.engine.pollClockAction(); a; a = node.engine.pollClockAction()) {
        apply(node, a);
        any = true;
      }
      for (let t = node.engine.pollTransmit(); t; t = node.engine.pollTransmit()) {
        send(node, t);
        if (t.txTag !== undefined) node.engine.handleTxTimestamp(t.txTag, node.clock.now());
        any = true;
      }
      if (!any) break;
    }
    const target = node.engine.nextTimeout();
    if (target === node.timerTarget) return;
    node.timerTarget = target;
    node.timerGen++;
    if (target === null) return;
    // The wait is in the node's cooked seconds; its clock runs at (1+f_osc)(1+f_corr) true s/s.
    const rate = (1 + node.osc.frequency(trueNow)) * (1 + node.clock.getFrequency() * 1e-6);
    const wait = Math.max(diffSeconds(target, node.clock.now()), 0) / rate;
    q.push(addSeconds(trueNow, wait) + 1n, { kind: 'timer', node, gen: node.timerGen });
  };

  // Start: lies at time 0 first, then engines.
  for (const n of nodes) {
    const lie = n.spec.lie;
    if (lie) {
      if ((lie.at ?? 0) <= 0) n.clock.step(lie.offset);
      else q.push(start + BigInt(Math.round(lie.at! * 1e9)), { kind: 'lie', node: n, offset: lie.offset });
    }
  }
  for (const n of nodes) {
    for (const ev of n.spec.host ?? []) {
      q.push(start + BigInt(Math.round(ev.at * 1e9)), { kind: 'host', node: n, ev, phase: 'start' });
    }
    if (n.host.detector) q.push(start, { kind: 'jumpTick', node: n });
  }
  for (const n of nodes) {
    if (leapAt !== null && n.spec.followsUtc) q.push(leapAt, { kind: 'lie', node: n, offset: -sc.leap!.sign });
  }
  for (const a of sc.actions ?? []) {
    const n = byAddr.get(a.node);
    if (n) q.push(start + BigInt(Math.round(a.at * 1e9)), { kind: 'action', node: n, run: a.run });
  }
  for (const n of nodes) {
    n.engine.start(n.clock.now());
    drain(n);
  }

  // Metrics.
  const interval = sc.sampleInterval ?? 1;
  const nSamples = Math.floor(sc.duration / interval) + 1;
  const measured = nodes.filter((n) => n.spec.measure ?? (n.spec.sources ?? []).length > 0);
  const series = measured.map(() => ({ off: new Float64Array(nSamples), freq: new Float64Array(nSamples) }));
  const times = new Float64Array(nSamples);
  let sampleIdx = 0;
  const sampleUpTo = (t: Instant): void => {
    for (;;) {
      if (sampleIdx >= nSamples) return;
      const ts = start + BigInt(Math.round(sampleIdx * interval * 1e9));
      if (ts > t) return;
      trueNow = ts;
      times[sampleIdx] = sampleIdx * interval;
      const views: SimNodeView[] = [];
      measured.forEach((n, k) => {
        const off = diffSeconds(n.clock.now(), ts) + utcShift(ts);
        const of = n.osc.frequency(ts);
        const fe = (1 + of) * (1 + n.clock.getFrequency() * 1e-6) - 1;
        series[k]!.off[sampleIdx] = off;
        series[k]!.freq[sampleIdx] = fe;
        views.push({ address: n.spec.address, engine: n.engine, clock: n.clock, offset: off, freqError: fe });
      });
      sc.onSample?.(sampleIdx * interval, views);
      sampleIdx++;
    }
  };

  let events = 0;
  for (;;) {
    const t = q.peekTime();
    if (t === undefined || t > end) break;
    sampleUpTo(t);
    const ev = q.pop()!.v;
    trueNow = t;
    events++;
    const n = ev.node;
    switch (ev.kind) {
      case 'timer': {
        if (ev.gen !== n.timerGen) continue;
        if (n.host.suspended) {
          n.timerTarget = null; // re-armed (overdue) on resume
          continue;
        }
        const now = n.clock.now();
        if (n.timerTarget !== null && now < n.timerTarget) {
          // The clock ran slower than the estimate: wait the rest.
          n.timerTarget = null;
          drain(n);
          continue;
        }
        n.timerTarget = null;
        n.engine.handleTimeout(now);
        break;
      }
      case 'deliver': {
        if (n.host.suspended) continue;
        const now = n.clock.now();
        n.engine.handleDatagram(ev.socket, ev.from, ev.data, now, now);
        break;
      }
      case 'lie':
        n.clock.step(ev.offset);
        break;
      case 'action':
        ev.run(n.engine, n.clock.now());
        break;
      case 'host':
        if (ev.ev.type === 'migrate') {
          n.clock.step(ev.ev.seconds);
          n.host.foreignStep(ev.ev.seconds);
        } else if (ev.phase === 'start') {
          n.host.suspend(n.clock.now());
          q.push(addSeconds(t, ev.ev.duration), { ...ev, phase: 'end' });
          continue;
        } else {
          n.host.resume(n.clock.now());
          n.clock.step(ev.ev.clockError ?? 0);
          n.host.foreignStep(ev.ev.clockError ?? 0);
        }
        break;
      case 'jumpTick': {
        q.push(addSeconds(t, DETECTOR_TICK), ev);
        const jump = n.host.tick(n.clock.now());
        if (!jump) continue;
        n.engine.clockJumped(n.clock.now(), jump.jumpSeconds);
        break;
      }
    }
    drain(n);
  }
  sampleUpTo(end);
  trueNow = end;

  const offLimit = sc.limits?.offset ?? 1e-3;
  const freqLimit = sc.limits?.freq ?? 5e-4;
  const results: Record<string, NodeResult> = {};
  const clients: NodeResult[] = [];
  measured.forEach((n, k) => {
    const { off, freq } = series[k]!;
    let last = -1;
    for (let i = 0; i < nSamples; i++) if (Math.abs(off[i]!) > offLimit || Math.abs(freq[i]!) > freqLimit) last = i;
    const syncTime = last < 0 ? 0 : last === nSamples - 1 ? null : times[last]!;
    let maxOffset = 0;
    let sumO = 0;
    let maxFreq = 0;
    let sumF = 0;
    let cnt = 0;
    for (let i = last + 1; i < nSamples; i++) {
      maxOffset = Math.max(maxOffset, Math.abs(off[i]!));
      maxFreq = Math.max(maxFreq, Math.abs(freq[i]!));
      sumO += off[i]! * off[i]!;
      sumF += freq[i]! * freq[i]!;
      cnt++;
    }
    const now = n.clock.now();
    const r: NodeResult = {
      address: n.spec.address,
      syncTime,
      maxOffset: cnt ? maxOffset : NaN,
      rmsOffset: cnt ? Math.sqrt(sumO / cnt) : NaN,
      maxFreq: cnt ? maxFreq : NaN,
      rmsFreq: cnt ? Math.sqrt(sumF / cnt) : NaN,
      times,
      offsets: off,
      freqErrors: freq,
      tracking: n.engine.tracking(now),
      sources: n.engine.sources(now),
      engine: n.engine,
      clock: n.clock,
      steps: n.steps,
    };
    results[n.spec.address] = r;
    clients.push(r);
  });
  return { nodes: results, clients, events };
}

/** One-line summary for test output. */
export function formatResult(r: NodeResult): string {
  const us = (x: number): string => `${(x * 1e6).toFixed(1)}us`;
  return (
    `${r.address}: sync=${r.syncTime === null ? 'never' : `${r.syncTime}s`} maxOff=${us(r.maxOffset)} ` +
    `rmsOff=${us(r.rmsOffset)} maxFreq=${(r.maxFreq * 1e6).toFixed(3)}ppm rmsFreq=${(r.rmsFreq * 1e6).toFixed(3)}ppm steps=${r.steps}`
  );
}
