/**
 * One NTP server worker thread (`serverworkers N`, see server-workers.ts): its own NtpServer,
 * built from the configuration by the same rules as main's (server-policy.ts), with
 * clientloglimit / N entries, answering on its own batched socket of each NTP address
 * (SO_REUSEPORT, steered by source address among the N workers). It serves the reference state
 * and clock mapping main sends, forwards mode 6 requests to main, and reports its counters.
 */
import { randomBytes as nodeRandomBytes, randomInt } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';

import type { Endpoint, ReferenceState } from '../engine/types.js';
import { openBatchUdpSocket, type BatchUdpSocket } from '../io/batch-udp.js';
import { realtimeNow } from '../io/realtime.js';
import { NtpServer } from '../ntp/server.js';
import type { Instant } from '../time/ntp-time.js';
import { SERVER_RECEIVE_BUFFER, SERVER_SLOT_BYTES, sendThroughSlot, ServingLoop } from './batch-loop.js';
import { buildAccessTable, restrictTableOf, serverPolicy, workerAuthenticators } from './server-policy.js';
import { mapOffsetNs, type ClockMap, type FromWorker, type ToWorker, type WorkerInit } from './worker-protocol.js';

const randomBytes = (n: number): Uint8Array => new Uint8Array(nodeRandomBytes(n));

function post(m: FromWorker): void {
  parentPort!.postMessage(m);
}

function run(init: WorkerInit): void {
  const { conf } = init;
  let ref: ReferenceState = init.ref;
  let map: ClockMap = init.clock;
  const { auth, nts } = workerAuthenticators(conf, init.policy, randomBytes);
  const access = buildAccessTable(conf);
  const restrict = restrictTableOf(conf, init.policy.sourceAddresses);
  const policy = serverPolicy(conf, access, restrict, auth, init.count);
  const server = new NtpServer({
    clientLogLimit: init.clientLogLimit,
    access: policy.access,
    ...(policy.accessWordsAt ? { accessWordsAt: policy.accessWordsAt } : {}),
    random: () => randomInt(0, 2 ** 32) / 2 ** 32,
    ...(policy.noclientlog !== undefined ? { noclientlog: policy.noclientlog } : {}),
    ...(policy.ratelimit ? { ratelimit: policy.ratelimit } : {}),
    ...(policy.restrictLimit ? { restrictLimit: policy.restrictLimit } : {}),
    ...(policy.auth ? { auth: policy.auth } : {}),
  });

  /** The daemon clock now (main's clock, through the mapping). */
  const now = (): Instant => {
    const rt = realtimeNow();
    const sec = rt / 1_000_000_000n;
    return rt + BigInt(mapOffsetNs(map, Number(sec), Number(rt - sec * 1_000_000_000n)));
  };

  const sockets = new Map<string, BatchUdpSocket>();
  const loop = new ServingLoop(server, {
    offsetNs: (sec, nsec) => mapOffsetNs(map, sec, nsec),
    reference: () => ref,
    now,
    onOther: (data, from, rx, sock) => {
      post({ t: 'mode6', local: localOf(sock), data, from, rx });
    },
    onError: (err) => post({ t: 'log', level: 'warn', message: err.stack ?? err.message }),
  });
  const localOf = (sock: BatchUdpSocket): string => {
    for (const [a, s] of sockets) if (s === sock) return a;
    return '';
  };

  for (const b of init.binds) {
    const sock = openBatchUdpSocket({
      family: b.family,
      address: b.address,
      port: init.port,
      reusePort: true,
      steerGroupSize: init.count,
      slotBytes: SERVER_SLOT_BYTES,
      receiveBuffer: SERVER_RECEIVE_BUFFER,
      onRx: loop.onRx,
      onTxStamps: loop.onTxStamps,
      onError: (err) => post({ t: 'log', level: 'debug', message: `[${b.address}]:${init.port}: ${err.message}` }),
    });
    if (!sock) throw new Error('the native addon has no batched sockets');
    sockets.set(b.address, sock);
  }

  let wantClients = false;
  const snapshot = (id: number, clients: boolean): void => {
    const at = now();
    post({ t: 'snapshot', id, stats: server.stats(), clients: clients ? server.clients(at) : null, at });
  };
  // Unrequested snapshots walk the whole client log: with a large one they come less often, so
  // that they never take more than about 0.5 % of the thread (a pause drops datagrams).
  let nextPeriodicMs = 0;
  const timer = setInterval(() => {
    const t0 = performance.now();
    if (t0 < nextPeriodicMs) return;
    snapshot(0, wantClients);
    nextPeriodicMs = t0 + 200 * (performance.now() - t0);
  }, init.snapshotIntervalS * 1000);

  const stop = (): void => {
    clearInterval(timer);
    for (const s of sockets.values()) s.close();
    parentPort!.off('message', onMessage);
    parentPort!.close();
  };

  const onMessage = (m: ToWorker): void => {
    switch (m.t) {
      case 'ref':
        ref = m.ref;
        break;
      case 'clock':
        map = m.map;
        break;
      case 'ntsKeys':
        try {
          nts?.setKeys(m.dump);
        } catch (e) {
          post({ t: 'log', level: 'warn', message: `NTS keys not installed: ${(e as Error).message}` });
        }
        break;
      case 'snapshot':
        snapshot(m.id, m.clients);
        break;
      case 'wantClients':
        wantClients = m.on;
        break;
      case 'send': {
        const sock = sockets.get(m.local) ?? [...sockets.values()][0];
        try {
          if (sock) sendThroughSlot(sock, m.data, m.to as Endpoint);
        } catch (e) {
          post({ t: 'log', level: 'debug', message: `send to ${m.to.address}: ${(e as Error).message}` });
        }
        break;
      }
      case 'stop':
        stop();
        break;
    }
  };
  parentPort!.on('message', onMessage);
  post({
    t: 'ready',
    sockets: [...sockets].map(([address, s]) => ({ address, port: s.localPort(), timestamping: s.timestamping })),
  });
}

try {
  run(workerData as WorkerInit);
} catch (e) {
  post({ t: 'fatal', message: (e as Error).message });
  process.exit(1);
}
