import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine, sourceConfig } from '../../src/engine/engine.js';
import { DisciplinedClock } from '../../src/clock/disciplined-clock.js';
import { EventQueue } from '../../src/sim/event-queue.js';
import { Prng } from '../../src/sim/prng.js';
import { refIdFromAddress } from '../../src/ntp/refid.js';
import { REFID_LOCL } from '../../src/discipline/discipline.js';
import { addSeconds, diffSeconds, type Instant } from '../../src/time/ntp-time.js';
import type { Endpoint, Transmit } from '../../src/engine/types.js';

/**
 * Hand-driven wiring: a client Engine and a server Engine (local stratum 1) exchange datagrams
 * over a fixed-delay path, with the driver loop written out here (independent of src/sim).
 */
test('client engine synchronises to a server engine through a simulated path', () => {
  const T0: Instant = 1_767_225_600_000_000_000n;
  let trueNow = T0;
  const rng = new Prng(11);
  const serverClock = new DisciplinedClock(() => trueNow, 'simulated');
  // Client oscillator: 20 ppm fast, 50 ms ahead.
  const clientClock = new DisciplinedClock(
    () => addSeconds(trueNow, 0.05 + 20e-6 * diffSeconds(trueNow, T0)),
    'simulated',
  );
  const SERVER = '192.0.2.1';
  const CLIENT = '192.0.2.2';
  const server = new Engine(
    {
      sources: [],
      discipline: { localStratum: { stratum: 1, distance: 1 } },
      server: { enabled: true, access: () => true, clientLogLimit: 16 },
      precision: -20,
    },
    { random: rng.fork().fn() },
  );
  const client = new Engine(
    {
      sources: [
        sourceConfig('s1', { address: SERVER, port: 123 }, { iburst: true, xleave: true, minpoll: 4, maxpoll: 6 }),
      ],
      discipline: { makestep: { threshold: 0.01, limit: 3 } },
      server: { enabled: false, access: () => false, clientLogLimit: 0 },
      precision: -20,
    },
    { random: rng.fork().fn() },
  );
  type Ev =
    | { to: 'client' | 'server'; socket: 'client' | 'server'; from: Endpoint; data: Uint8Array }
    | { timer: 'client' | 'server' };
  const q = new EventQueue<Ev>();
  const nodes = {
    client: { engine: client, clock: clientClock, addr: CLIENT },
    server: { engine: server, clock: serverClock, addr: SERVER },
  };
  const seenTags = { client: new Set<number>(), server: new Set<number>() };
  let steps = 0;
  const drain = (who: 'client' | 'server'): void => {
    const n = nodes[who];
    for (let a = n.engine.pollClockAction(); a; a = n.engine.pollClockAction()) {
      if (a.type === 'frequency') n.clock.setFrequency(a.ppm);
      else if (a.type === 'step') {
        n.clock.step(a.seconds);
        steps++;
      } else if (a.type === 'offset') n.clock.step(a.seconds);
      else n.clock.setStatus(a);
    }
    for (let t: Transmit | undefined = n.engine.pollTransmit(); t; t = n.engine.pollTransmit()) {
      if (t.txTag !== undefined) {
        assert.ok(!seenTags[who].has(t.txTag), 'transmit tags are unique per engine');
        seenTags[who].add(t.txTag);
        n.engine.handleTxTimestamp(t.txTag, n.clock.now());
      }
      const to = t.to.address === SERVER ? 'server' : 'client';
      const from = { address: n.addr, port: who === 'client' ? 50123 : 123 };
      q.push(trueNow + 1_000_000n, { to, socket: t.to.port === 123 ? 'server' : 'client', from, data: t.data });
    }
    const next = n.engine.nextTimeout();
    if (next !== null) q.push(addSeconds(trueNow, Math.max(0, diffSeconds(next, n.clock.now()))) + 1n, { timer: who });
  };
  client.start(clientClock.now());
  drain('client');
  server.start(serverClock.now());
  drain('server');
  const end = addSeconds(T0, 1200);
  while ((q.peekTime() ?? end + 1n) <= end) {
    const { t, v } = q.pop()!;
    trueNow = t;
    if ('timer' in v) {
      const n = nodes[v.timer];
      const now = n.clock.now();
      const nt = n.engine.nextTimeout();
      if (nt !== null && nt <= now) n.engine.handleTimeout(now);
      drain(v.timer);
    } else {
      const n = nodes[v.to];
      const now = n.clock.now();
      n.engine.handleDatagram(v.socket, v.from, v.data, now, now);
      drain(v.to);
    }
  }
  const now = clientClock.now();
  const err = diffSeconds(now, trueNow);
  console.log(
    `engine wiring: steps=${steps} final error=${(err * 1e6).toFixed(2)}us verdicts=${JSON.stringify(client.responseVerdicts())}`,
  );
  assert.ok(Math.abs(err) < 1e-5, `client error ${err}`);
  assert.ok(steps >= 1, 'makestep stepped the 50 ms offset');
  const tr = client.tracking(now);
  assert.equal(tr.stratum, 2);
  assert.equal(tr.refId, refIdFromAddress(SERVER));
  assert.equal(tr.leapStatus, 'Normal');
  assert.ok(Math.abs(tr.frequencyPpm - 20) < 1, `freq ${tr.frequencyPpm}`);
  const [src] = client.sources(now);
  assert.equal(src!.state, '*');
  assert.equal(src!.stratum, 1);
  assert.ok(src!.reach > 0);
  const [ss] = client.sourceStats(now);
  assert.ok(ss!.np >= 3, `np ${ss!.np}`);
  const [nd] = client.ntpData(now);
  assert.ok(nd!.totalValidRx > 10 && nd!.totalTx >= nd!.totalValidRx);
  assert.equal(nd!.interleaved, true, 'xleave exchange with the server engine');
  assert.equal(nd!.refId, REFID_LOCL);
  assert.deepEqual(client.activity(), { online: 1, offline: 0, burstOnline: 0, burstOffline: 0, unresolved: 0 });
  const st = server.serverStats();
  assert.ok(st.ntpPacketsReceived > 10);
  assert.ok(st.ntpInterleavedPacketsReceived > 0);
  assert.equal(server.clients(serverClock.now())[0]!.address, CLIENT);
  // Server engine serves its local reference.
  assert.equal(server.tracking(serverClock.now()).stratum, 1);
  // Control operations.
  assert.equal(client.setOnline(false, now), 1);
  assert.equal(client.activity().offline, 1);
  assert.equal(
    client.burst(now, (s) => s.id === 's1'),
    1,
  );
  assert.equal(client.activity().burstOffline, 1);
  assert.equal(
    client.burst(now, (s) => s.id === 'nope'),
    0,
  );
  assert.equal(typeof client.makestep(now), 'number');
  assert.ok(client.removeSource('s1'));
  assert.deepEqual(client.sources(now), []);
});
