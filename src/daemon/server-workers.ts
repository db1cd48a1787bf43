/**
 * `serverworkers N` (N ≥ 2), main side: N worker_threads (server-worker.ts) each answer NTP on
 * their own batched socket of the NTP port (SO_REUSEPORT, steered by source address so each
 * address always reaches the same worker: its client log row, ratelimit bucket and interleaved
 * state stay exact). Main keeps the engine (discipline, sources, mode 6, control) and sends the
 * workers what they serve: the reference state and the clock mapping whenever they change (after
 * each Runtime flush and 4 times a second), and the NTS cookie keys at start and on rotation.
 *
 * Workers send counter snapshots every second (with the client log while someone asks for it)
 * and on request; serverstats and clients merge them with the engine's own (Engine
 * setExternalServerReports). Mode 6 requests come to main's responder; the answers go back out
 * through the worker's socket. A worker that dies is restarted with back-off; its counters are
 * kept. Shutdown stops every worker.
 */
import { Worker } from 'node:worker_threads';

import type { Clock } from '../clock/clock.js';
import type { Config } from '../config/chrony-conf.js';
import type { ControlHandler } from '../control/server.js';
import { mergeServerStats } from '../control/merge-reports.js';
import type { ClientReport, ServerStatsReport } from '../control/reports.js';
import type { Engine } from '../engine/engine.js';
import type { Endpoint, ReferenceState } from '../engine/types.js';
import { realtimeNow } from '../io/realtime.js';
import type { TimestampedSocket } from '../io/udp.js';
import type { Instant } from '../time/ntp-time.js';
import type { RuntimeLogger } from './runtime.js';
import type { ServerPolicyData } from './server-policy.js';
import {
  ageClients,
  clockMapDiffers,
  clockMapOf,
  referenceDiffers,
  retiredCounters,
  type ClockMap,
  type FromWorker,
  type ToWorker,
  type WorkerInit,
  type WorkerSnapshot,
} from './worker-protocol.js';

const WORKER_URL = new URL('./server-worker.js', import.meta.url);
const SNAPSHOT_INTERVAL_S = 1;
const PUSH_INTERVAL_MS = 250;
/** After a `clients` request, snapshots include the client log for this long. */
const CLIENTS_INTEREST_MS = 60_000;
const START_TIMEOUT_MS = 15_000;
const REFRESH_TIMEOUT_MS = 500;
const STOP_GRACE_MS = 1000;
const MAX_RESTART_DELAY_S = 60;
/** A worker that ran this long before dying starts its back-off afresh. */
const HEALTHY_RUN_MS = 60_000;
/** Consecutive failed starts after which a worker is given up. */
const MAX_FAILURES = 8;
const MAX_MODE6_ROUTES = 1024;

export interface ServerWorkersOptions {
  conf: Config;
  count: number;
  binds: Array<{ address: string; family: 4 | 6 }>;
  port: number;
  policy: ServerPolicyData;
  clientLogLimit: number;
  engine: Engine;
  clock: Clock;
  log: RuntimeLogger;
  /** A mode 6 request for main's responder (answers go out through `relaySocket`). */
  onMode6(data: Uint8Array, from: Endpoint, rx: Instant): void;
  /** Every worker is gone for good: the daemon cannot serve. */
  onFatal(message: string): void;
  /** Tests: the worker script. */
  workerUrl?: URL;
  /** Tests: the period of the background push (default 250 ms). */
  pushIntervalMs?: number;
}

interface Slot {
  index: number;
  worker: Worker | null;
  ready: boolean;
  startedMs: number;
  failures: number;
  restartTimer: NodeJS.Timeout | null;
  gaveUp: boolean;
  last: WorkerSnapshot | null;
  lastClients: { list: ClientReport[]; at: Instant } | null;
  /** Counters of earlier incarnations of this worker. */
  retired: ServerStatsReport | null;
  waiters: Map<number, () => void>;
  sockets: Array<{ address: string; port: number; timestamping: string }>;
}

export class ServerWorkers {
  private readonly slots: Slot[] = [];
  private ref: ReferenceState;
  private map: ClockMap;
  private ntsKeys: string | null;
  private stopping = false;
  private reqId = 0;
  private clientsInterestUntil = 0;
  private wantClients = false;
  private readonly pushTimer: NodeJS.Timeout;
  /** Where mode 6 answers go out: the worker and socket its request came in on. */
  private readonly mode6Routes = new Map<string, { slot: Slot; local: string }>();

  private constructor(private readonly opts: ServerWorkersOptions) {
    this.ref = opts.engine.serverReference(opts.clock.now());
    this.map = clockMapOf(opts.clock, realtimeNow());
    this.ntsKeys = opts.policy.ntsKeys;
    for (let i = 0; i < opts.count; i++) {
      this.slots.push({
        index: i,
        worker: null,
        ready: false,
        startedMs: 0,
        failures: 0,
        restartTimer: null,
        gaveUp: false,
        last: null,
        lastClients: null,
        retired: null,
        waiters: new Map(),
        sockets: [],
      });
    }
    this.pushTimer = setInterval(() => this.push(), opts.pushIntervalMs ?? PUSH_INTERVAL_MS);
    this.pushTimer.unref();
  }

  /** Starts the workers and waits until every one has its sockets open (throws otherwise). */
  static async start(opts: ServerWorkersOptions): Promise<ServerWorkers> {
    const pool = new ServerWorkers(opts);
    try {
      await Promise.all(pool.slots.map((s) => pool.spawn(s)));
    } catch (e) {
      await pool.stop();
      throw e;
    }
    opts.engine.setExternalServerReports({
      stats: () => pool.stats(),
      clients: (now) => pool.clients(now),
    });
    return pool;
  }

  /** The sockets the workers opened (those of worker 0: every worker has the same). */
  get sockets(): ReadonlyArray<{ address: string; port: number; timestamping: string }> {
    return this.slots[0]?.sockets ?? [];
  }

  private spawn(slot: Slot): Promise<void> {
    const o = this.opts;
    const init: WorkerInit = {
      index: slot.index,
      count: o.count,
      conf: o.conf,
      binds: o.binds,
      port: o.port,
      policy: { ...o.policy, ntsKeys: this.ntsKeys },
      clientLogLimit: o.clientLogLimit,
      ref: this.ref,
      clock: this.map,
      snapshotIntervalS: SNAPSHOT_INTERVAL_S,
    };
    const worker = new Worker(o.workerUrl ?? WORKER_URL, { workerData: init, name: `ntp-server-${slot.index}` });
    slot.worker = worker;
    slot.ready = false;
    slot.startedMs = performance.now();
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const settle = (err?: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) reject(err);
        else resolve();
      };
      const timer = setTimeout(
        () => settle(new Error(`server worker ${slot.index} did not start within ${START_TIMEOUT_MS} ms`)),
        START_TIMEOUT_MS,
      );
      worker.on('message', (m: FromWorker) => {
        if (m.t === 'ready') {
          slot.ready = true;
          slot.sockets = m.sockets;
          if (this.wantClients) this.post(slot, { t: 'wantClients', on: true });
          settle();
        } else if (m.t === 'fatal') {
          settle(new Error(m.message));
        } else this.onMessage(slot, m);
      });
      worker.on('error', (err) => {
        o.log.warn(`server worker ${slot.index}: ${err.message}`);
        settle(err);
      });
      worker.on('exit', (code) => {
        settle(new Error(`server worker ${slot.index} exited with code ${code} while starting`));
        this.onExit(slot, worker, code);
      });
    });
  }

  private onMessage(slot: Slot, m: FromWorker): void {
    switch (m.t) {
      case 'snapshot': {
        slot.last = m;
        if (m.clients) slot.lastClients = { list: m.clients, at: m.at };
        const w = slot.waiters.get(m.id);
        if (w) {
          slot.waiters.delete(m.id);
          w();
        }
        break;
      }
      case 'mode6': {
        this.mode6Routes.delete(routeKey(m.from));
        this.mode6Routes.set(routeKey(m.from), { slot, local: m.local });
        if (this.mode6Routes.size > MAX_MODE6_ROUTES) {
          this.mode6Routes.delete(this.mode6Routes.keys().next().value as string);
        }
        this.opts.onMode6(m.data, m.from, m.rx);
        break;
      }
      case 'log':
        this.opts.log[m.level](`server worker ${slot.index}: ${m.message}`);
        break;
      default:
        break;
    }
  }

  private onExit(slot: Slot, worker: Worker, code: number): void {
    if (slot.worker !== worker) return;
    slot.worker = null;
    const wasReady = slot.ready;
    slot.ready = false;
    for (const w of slot.waiters.values()) w();
    slot.waiters.clear();
    if (slot.last) {
      const r = retiredCounters(slot.last.stats);
      slot.retired = slot.retired ? mergeServerStats([slot.retired, r]) : r;
    }
    slot.last = null;
    slot.lastClients = null;
    for (const [k, r] of this.mode6Routes) if (r.slot === slot) this.mode6Routes.delete(k);
    if (this.stopping || !wasReady) {
      if (!this.stopping && !wasReady && slot.failures > 0) this.scheduleRestart(slot);
      return;
    }
    const ran = performance.now() - slot.startedMs;
    if (ran >= HEALTHY_RUN_MS) slot.failures = 0;
    this.opts.log.warn(`server worker ${slot.index} exited (code ${code}); restarting`);
    this.scheduleRestart(slot);
  }

  private scheduleRestart(slot: Slot): void {
    if (this.stopping || slot.restartTimer) return;
    slot.failures++;
    if (slot.failures > MAX_FAILURES) {
      slot.gaveUp = true;
      this.opts.log.warn(`server worker ${slot.index}: giving up after ${MAX_FAILURES} failed restarts`);
      if (this.slots.every((s) => s.gaveUp)) this.opts.onFatal('every NTP server worker failed');
      return;
    }
    const delayS = Math.min(2 ** (slot.failures - 1), MAX_RESTART_DELAY_S);
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = null;
      if (this.stopping) return;
      this.spawn(slot).then(
        () => this.opts.log.info(`server worker ${slot.index} restarted`),
        (e: Error) => {
          this.opts.log.warn(`server worker ${slot.index} could not restart: ${e.message}`);
          // A worker that never got ready may still be alive (timeout): end it; its exit re-arms.
          if (slot.worker) void slot.worker.terminate();
          else this.scheduleRestart(slot);
        },
      );
    }, delayS * 1000);
  }

  private post(slot: Slot, m: ToWorker): void {
    if (!slot.worker || !slot.ready) return;
    try {
      slot.worker.postMessage(m);
    } catch (e) {
      this.opts.log.debug(`server worker ${slot.index}: ${(e as Error).message}`);
    }
  }

  private broadcast(m: ToWorker): void {
    for (const s of this.slots) this.post(s, m);
  }

  /** Sends the reference state and clock mapping to the workers if they changed. Cheap. */
  push(): void {
    if (this.stopping) return;
    const { engine, clock } = this.opts;
    const ref = engine.serverReference(clock.now());
    if (referenceDiffers(this.ref, ref)) {
      this.ref = ref;
      this.broadcast({ t: 'ref', ref });
    }
    const map = clockMapOf(clock, realtimeNow());
    if (clockMapDiffers(this.map, map)) {
      this.map = map;
      this.broadcast({ t: 'clock', map });
    }
    if (this.wantClients && performance.now() > this.clientsInterestUntil) {
      this.wantClients = false;
      this.broadcast({ t: 'wantClients', on: false });
    }
  }

  /** New NTS cookie master keys (ServerCookieKeys.dump()): at every rotation. */
  setNtsKeys(dump: string): void {
    this.ntsKeys = dump;
    this.broadcast({ t: 'ntsKeys', dump });
  }

  /** Latest counters of each worker (and of the earlier incarnations of restarted ones). */
  stats(): ServerStatsReport[] {
    const out: ServerStatsReport[] = [];
    for (const s of this.slots) {
      if (s.retired) out.push(s.retired);
      if (s.last) out.push(s.last.stats);
    }
    return out;
  }

  /** Latest client log of each worker, as seen from `now`; asks for fresh ones for next time. */
  clients(now: Instant): ClientReport[][] {
    this.noteClientsInterest();
    void this.refresh(true);
    return this.slots.map((s) => (s.lastClients ? ageClients(s.lastClients.list, s.lastClients.at, now) : []));
  }

  private noteClientsInterest(): void {
    this.clientsInterestUntil = performance.now() + CLIENTS_INTEREST_MS;
    if (!this.wantClients) {
      this.wantClients = true;
      this.broadcast({ t: 'wantClients', on: true });
    }
  }

  /** Asks every live worker for a snapshot now; resolves when all answered (or after a timeout). */
  async refresh(clients: boolean, timeoutMs = REFRESH_TIMEOUT_MS): Promise<void> {
    const id = ++this.reqId;
    const waits: Promise<void>[] = [];
    for (const s of this.slots) {
      if (!s.worker || !s.ready) continue;
      waits.push(new Promise<void>((resolve) => s.waiters.set(id, resolve)));
      this.post(s, { t: 'snapshot', id, clients });
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    await Promise.race([Promise.all(waits), timeout]);
    clearTimeout(timer);
    for (const s of this.slots) s.waiters.delete(id);
  }

  /** Wraps the JSON control handler: `clients` and `serverstats` answer from fresh snapshots. */
  controlHandler(inner: ControlHandler): ControlHandler {
    return async (req) => {
      if (req.cmd === 'clients') {
        this.noteClientsInterest();
        await this.refresh(true);
      } else if (req.cmd === 'serverstats') await this.refresh(false);
      return inner(req);
    };
  }

  /** A TimestampedSocket for the Runtime: datagrams it sends leave through a worker's socket. */
  relaySocket(family: 4 | 6): TimestampedSocket {
    let closed = false;
    return {
      timestamping: 'kernel',
      send: (data, to) => {
        if (closed) throw new Error('socket is closed');
        this.sendVia(data, to, family);
        return -1;
      },
      localPort: () => this.opts.port,
      close: () => {
        closed = true;
      },
    };
  }

  private sendVia(data: Uint8Array, to: Endpoint, family: 4 | 6): void {
    const route = this.mode6Routes.get(routeKey(to));
    if (route && route.slot.ready) {
      this.post(route.slot, { t: 'send', local: route.local, data, to });
      return;
    }
    const bind = this.opts.binds.find((b) => b.family === family);
    const slot = this.slots.find((s) => s.ready);
    if (!bind || !slot) throw new Error(`no server worker to send to ${to.address}`);
    this.post(slot, { t: 'send', local: bind.address, data, to });
  }

  /** Stops every worker (asks, then terminates those still running after a grace period). */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    clearInterval(this.pushTimer);
    this.opts.engine.setExternalServerReports(null);
    const exits: Promise<unknown>[] = [];
    for (const s of this.slots) {
      if (s.restartTimer) clearTimeout(s.restartTimer);
      s.restartTimer = null;
      const w = s.worker;
      if (!w) continue;
      exits.push(
        new Promise<void>((resolve) => {
          const timer = setTimeout(() => void w.terminate().then(() => resolve()), STOP_GRACE_MS);
          w.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          try {
            w.postMessage({ t: 'stop' } satisfies ToWorker);
          } catch {
            void w.terminate();
          }
        }),
      );
    }
    await Promise.all(exits);
  }
}

function routeKey(e: Endpoint): string {
  return `${e.address}|${e.port}`;
}
