/**
 * The NTP server sockets of rubidiumd, in one of three ways:
 *  - `serverworkers` N ≥ 2 with the addon's batched sockets: N worker threads
 *    (server-workers.ts), the Runtime's server sockets relay mode 6 answers through them;
 *  - the addon's batched sockets in the main thread (serverworkers 1, the default): a
 *    BatchServer over the Engine's own NtpServer answers each recvmmsg batch in place
 *    (batch-loop.ts), mode 6 goes to the Engine's responder;
 *  - without the batched sockets: one TimestampedSocket per address (src/io/udp.ts), every
 *    datagram through Runtime and Engine, as before.
 */
import { availableParallelism } from 'node:os';
import { isIP } from 'node:net';

import type { Clock } from '../clock/clock.js';
import type { Config } from '../config/chrony-conf.js';
import type { ControlHandler } from '../control/server.js';
import type { Engine } from '../engine/engine.js';
import type { Endpoint } from '../engine/types.js';
import { openBatchUdpSocket, type BatchUdpSocket } from '../io/batch-udp.js';
import { native } from '../io/native.js';
import { openUdpSocket, type TimestampedSocket } from '../io/udp.js';
import type { Instant } from '../time/ntp-time.js';
import { SERVER_RECEIVE_BUFFER, SERVER_SLOT_BYTES, sendThroughSlot, ServingLoop } from './batch-loop.js';
import type { Runtime, RuntimeLogger } from './runtime.js';
import type { ServerPolicyData } from './server-policy.js';
import { ServerWorkers } from './server-workers.js';

/** Whether the loaded addon has the batched sockets. */
export function batchSocketsAvailable(): boolean {
  return typeof native?.udpBatchOpen === 'function';
}

/**
 * Server threads to use: `serverworkers` (auto = the usable cores), or 1 when the batched sockets
 * are missing (with a warning: node:dgram sockets cannot be steered).
 */
export function serverWorkerCount(conf: Config, log: RuntimeLogger, batch = batchSocketsAvailable()): number {
  const want = conf.serverworkers === 'auto' ? availableParallelism() : conf.serverworkers;
  if (want > 1 && !batch) {
    log.warn(
      `serverworkers ${conf.serverworkers}: the native addon has no batched sockets; serving in the main thread`,
    );
    return 1;
  }
  return Math.max(1, want);
}

export interface ServingOptions {
  conf: Config;
  /** -4 / -6 */
  family: 4 | 6 | null;
  engine: Engine;
  runtime: Runtime;
  clock: Clock;
  log: RuntimeLogger;
  /** From serverWorkerCount(). */
  workers: number;
  /** What workers need besides the configuration (only read with workers). */
  policy: () => ServerPolicyData;
  /** Client log entries of each worker. */
  workerClientLogLimit: number;
}

export interface Serving {
  readonly mode: 'dgram' | 'batch' | 'workers';
  /** Wraps the JSON control handler (workers: fresh snapshots for clients/serverstats). */
  controlHandler(inner: ControlHandler): ControlHandler;
  /** New NTS cookie master keys (workers only need them). */
  setNtsKeys(dump: string): void;
  /** Set by main: the daemon cannot serve any more (every worker failed). */
  onFatal: ((message: string) => void) | null;
  stop(): Promise<void>;
}

function bindList(conf: Config, family: 4 | 6 | null): Array<{ address: string; family: 4 | 6 }> {
  const want = (f: 4 | 6) => family === null || family === f;
  const binds = conf.bindaddress.length
    ? conf.bindaddress
    : [want(4) ? '0.0.0.0' : '', want(6) ? '::' : ''].filter(Boolean);
  return binds.map((address) => ({ address, family: isIP(address) === 6 ? 6 : 4 }));
}

/** An IPv6 wildcard may be unavailable; IPv4 failure or an explicit address is fatal. */
function tolerable(conf: Config, family: 4 | 6): boolean {
  return conf.bindaddress.length === 0 && family === 6;
}

/** Opens the NTP server sockets (throws if one that must open cannot). */
export async function openServing(o: ServingOptions): Promise<Serving> {
  const binds = bindList(o.conf, o.family);
  if (o.workers > 1) return openWorkers(o, binds);
  if (batchSocketsAvailable() && o.engine.ntpServer) return openMainBatch(o, binds);
  return openDgram(o, binds);
}

const passThrough = (inner: ControlHandler): ControlHandler => inner;

async function openDgram(o: ServingOptions, binds: ReturnType<typeof bindList>): Promise<Serving> {
  const { runtime, conf, log } = o;
  for (const { address, family } of binds) {
    try {
      const sock = await openUdpSocket({
        family,
        address,
        port: conf.port,
        onDatagram: (d, from, rx) => runtime.datagram('server', d, from, rx),
        onTxTimestamp: (id, tx) => runtime.txTimestamp(sock, id, tx),
      });
      runtime.attach(family === 6 ? 'server6' : 'server4', sock);
      log.info(`Serving NTP on ${address}:${conf.port} (${sock.timestamping} timestamps)`);
    } catch (e) {
      if (!tolerable(conf, family)) throw e;
      log.warn(`Could not open NTP socket on [${address}]:${conf.port}: ${(e as Error).message}`);
    }
  }
  return { mode: 'dgram', controlHandler: passThrough, setNtsKeys: () => {}, onFatal: null, stop: async () => {} };
}

/** The Runtime's view of a batched socket: single datagrams through TX slot 0 (mode 6 answers). */
function slotSocket(sock: BatchUdpSocket): TimestampedSocket {
  return {
    timestamping: sock.timestamping,
    send: (data, to, stampOffsetNs) => {
      sendThroughSlot(sock, data, to, stampOffsetNs === undefined ? undefined : Number(stampOffsetNs));
      return -1;
    },
    localPort: () => sock.localPort(),
    close: () => sock.close(),
  };
}

async function openMainBatch(o: ServingOptions, binds: ReturnType<typeof bindList>): Promise<Serving> {
  const { runtime, engine, clock, conf, log } = o;
  const loop = new ServingLoop(engine.ntpServer!, {
    offsetNs: (sec, nsec) => {
      const rt = BigInt(Math.trunc(sec)) * 1_000_000_000n + BigInt(Math.trunc(nsec));
      return Number(clock.fromKernel(rt) - rt);
    },
    reference: () => engine.serverReference(clock.now()),
    now: () => clock.now(),
    onOther: (data: Uint8Array, from: Endpoint, rx: Instant) => {
      engine.handleDatagram('server', from, data, rx, clock.now());
      runtime.flush();
    },
    onError: (err) => log.warn(`NTP server: ${err.stack ?? err.message}`),
  });
  for (const { address, family } of binds) {
    let sock: BatchUdpSocket | null;
    try {
      sock = openBatchUdpSocket({
        family,
        address,
        port: conf.port,
        slotBytes: SERVER_SLOT_BYTES,
        receiveBuffer: SERVER_RECEIVE_BUFFER,
        onRx: loop.onRx,
        onTxStamps: loop.onTxStamps,
        onError: (err) => log.debug(`NTP socket [${address}]:${conf.port}: ${err.message}`),
      });
    } catch (e) {
      if (!tolerable(conf, family)) throw e;
      log.warn(`Could not open NTP socket on [${address}]:${conf.port}: ${(e as Error).message}`);
      continue;
    }
    if (!sock) return openDgram(o, binds); // the addon lost its batch exports: cannot happen once checked
    runtime.attach(family === 6 ? 'server6' : 'server4', slotSocket(sock));
    log.info(`Serving NTP on ${address}:${conf.port} (${sock.timestamping} timestamps, batched)`);
  }
  return { mode: 'batch', controlHandler: passThrough, setNtsKeys: () => {}, onFatal: null, stop: async () => {} };
}

async function openWorkers(o: ServingOptions, binds: ReturnType<typeof bindList>): Promise<Serving> {
  const { runtime, engine, clock, conf, log } = o;
  let pool: ServerWorkers;
  const serving: Serving = {
    mode: 'workers',
    controlHandler: (inner) => pool.controlHandler(inner),
    setNtsKeys: (dump) => pool.setNtsKeys(dump),
    onFatal: null,
    stop: () => pool.stop(),
  };
  const start = (list: typeof binds) =>
    ServerWorkers.start({
      conf,
      count: o.workers,
      binds: list,
      port: conf.port,
      policy: o.policy(),
      clientLogLimit: o.workerClientLogLimit,
      engine,
      clock,
      log,
      onMode6: (data, from, rx) => {
        engine.handleDatagram('server', from, data, rx, clock.now());
        runtime.flush();
      },
      onFatal: (m) => serving.onFatal?.(m),
    });
  try {
    pool = await start(binds);
  } catch (e) {
    // Without IPv6, the wildcard '::' fails: serve IPv4 only, as the single-thread path does.
    const rest = binds.filter((b) => !tolerable(conf, b.family));
    if (rest.length === binds.length || rest.length === 0) throw e;
    log.warn(`Could not open NTP sockets on [::]:${conf.port}: ${(e as Error).message}`);
    pool = await start(rest);
  }
  for (const s of pool.sockets) {
    const family = isIP(s.address) === 6 ? 6 : 4;
    runtime.attach(family === 6 ? 'server6' : 'server4', pool.relaySocket(family));
    log.info(`Serving NTP on ${s.address}:${s.port} (${s.timestamping} timestamps, ${o.workers} server workers)`);
  }
  runtime.onFlushed = () => pool.push();
  return serving;
}
