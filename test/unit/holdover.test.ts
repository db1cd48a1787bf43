import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  holdoverUsable,
  LocalReferenceGate,
  orphanFilter,
  type HoldoverSource,
} from '../../src/discipline/holdover.js';
import { Discipline, REFID_LOCL } from '../../src/discipline/discipline.js';
import { ClientAssociation } from '../../src/ntp/client.js';
import { Engine, sourceConfig } from '../../src/engine/engine.js';
import { parseConfigText, formatConfig } from '../../src/config/chrony-conf.js';
import type { ClockAction, NtpSample } from '../../src/engine/types.js';
import { addSeconds, NS_PER_S, type Instant } from '../../src/time/ntp-time.js';

const T0: Instant = 1_767_225_600n * NS_PER_S;
const at = (s: number): Instant => addSeconds(T0, s);

function hs(id: string, over: Partial<HoldoverSource> = {}): HoldoverSource {
  return {
    id,
    reachable: true,
    unreachableRun: 0,
    maxunreach: 100000,
    oldest: at(0),
    newest: at(1000),
    stratum: 2,
    refId: 0x0a000001,
    localRefId: 0x0a000005,
    noselect: false,
    ...over,
  };
}

// ---- holdoverUsable (maxunreach and the stale rule) -------------------------------------------

test('holdover: an unreachable source stays usable while its newest sample is not older than the reachable ones', () => {
  const reach = hs('r', { oldest: at(500), newest: at(2000) });
  const fresh = hs('u', { reachable: false, unreachableRun: 3, newest: at(600) });
  const stale = hs('s', { reachable: false, unreachableRun: 3, newest: at(400) });
  assert.deepEqual([...holdoverUsable([reach, fresh, stale])].sort(), ['r', 'u']);
  // maxunreach: more unreachable polls than allowed → not usable even if fresh.
  const limited = hs('m', { reachable: false, unreachableRun: 6, maxunreach: 5, newest: at(600) });
  assert.deepEqual([...holdoverUsable([reach, limited])], ['r']);
  assert.deepEqual([...holdoverUsable([reach, { ...limited, unreachableRun: 5 }])].sort(), ['m', 'r']);
  // Alone and unreachable (no reachable source to compare with): not usable; no samples: never.
  assert.equal(holdoverUsable([fresh]).size, 0);
  assert.equal(holdoverUsable([hs('n', { oldest: undefined, newest: undefined })]).size, 0);
});

// ---- orphanFilter -----------------------------------------------------------------------------

test('orphan: sources at or above the local stratum are ignored while a normal source is usable', () => {
  const up = hs('up', { stratum: 1, refId: 0x0a000064 });
  const peer = hs('peer', { stratum: 10, refId: 0x0a000001 });
  const follower = hs('f', { stratum: 11, refId: 0x0a000002 });
  const all = [up, peer, follower];
  const r = orphanFilter(all, new Set(['up', 'peer', 'f']), 10);
  assert.deepEqual([...r.usable], ['up']);
  assert.deepEqual([...r.orphans].sort(), ['f', 'peer']);
});

test('orphan: with nothing else usable, the smallest refid at the local stratum is followed if below ours', () => {
  const a = hs('a', { stratum: 10, refId: 0x0a000003, localRefId: 0x0a000005 });
  const b = hs('b', { stratum: 10, refId: 0x0a000002, localRefId: 0x0a000005 });
  const c = hs('c', { stratum: 11, refId: 0x0a000001, localRefId: 0x0a000005 }); // follows someone: never
  const ids = new Set(['a', 'b', 'c']);
  assert.deepEqual([...orphanFilter([a, b, c], ids, 10).usable], ['b']);
  // We have the smallest refid ourselves: follow nobody (our local reference will activate).
  const mine = 0x0a000001;
  const lower = [a, b].map((s) => ({ ...s, localRefId: mine }));
  assert.equal(orphanFilter(lower, ids, 10).usable.size, 0);
  // Unreachable orphan candidates are not followed; unknown local refid: not followed.
  assert.deepEqual([...orphanFilter([{ ...b, reachable: false }, a], ids, 10).usable], ['a']);
  assert.equal(orphanFilter([{ ...b, localRefId: 0 }], ids, 10).usable.size, 0);
});

// ---- LocalReferenceGate -----------------------------------------------------------------------

test('local reference: plain local activates at once when unsynchronised, and past distance when synced', () => {
  const g = new LocalReferenceGate({ stratum: 10, distance: 1 });
  assert.equal(g.waitUnsynced, 0);
  assert.equal(g.active(at(0), false, Infinity, undefined), true);
  g.noteSynced(true, at(10));
  assert.equal(g.active(at(20), true, 0.5, at(10)), false);
  assert.equal(g.active(at(20), true, 1.5, at(10)), true);
});

test('local reference: orphan waits 300 s unsynchronised; waitsynced and activate gate it', () => {
  const g = new LocalReferenceGate({ stratum: 10, orphan: true });
  assert.equal(g.waitUnsynced, 300);
  g.noteSynced(false, at(0));
  assert.equal(g.active(at(299), false, Infinity, undefined), false);
  assert.equal(g.active(at(300), false, Infinity, undefined), true);
  // Synchronised again, then lost: the wait starts afresh.
  g.noteSynced(true, at(400));
  g.noteSynced(false, at(500));
  assert.equal(g.active(at(700), false, Infinity, undefined), false);
  assert.equal(g.active(at(800), false, Infinity, undefined), true);

  const w = new LocalReferenceGate({ stratum: 10, distance: 0, waitsynced: 7200 });
  assert.equal(w.active(at(100), true, 0.01, at(0)), false);
  assert.equal(w.active(at(7200), true, 0.01, at(0)), true);

  const act = new LocalReferenceGate({ stratum: 10, activate: 0.5 });
  assert.equal(act.active(at(0), false, Infinity, undefined), false, 'never synchronised below 0.5 s');
  assert.equal(act.active(at(10), true, 0.1, at(5)), false, 'synchronised, distance below 1 s');
  assert.equal(act.active(at(20), false, Infinity, at(5)), true, 'was below 0.5 s once: allowed now');
});

// ---- Discipline: clock jump -------------------------------------------------------------------

function sample(t: Instant, offset: number): NtpSample {
  return {
    time: t,
    offset,
    delay: 1e-3,
    dispersion: 1e-5,
    rootDelay: 0,
    rootDispersion: 1e-5,
    stratum: 1,
    leap: 0,
    refId: 1,
    refTime: t,
    poll: 6,
    interleaved: false,
  };
}

function drain(d: Discipline): ClockAction[] {
  const out: ClockAction[] = [];
  for (let a = d.pollClockAction(); a; a = d.pollClockAction()) out.push(a);
  return out;
}

test('discipline: after clockJumped the history is gone and makestep may step again', () => {
  const d = new Discipline({ makestep: { threshold: 0.1, limit: 2 }, correction: 'slew' });
  d.addSource('s', { refId: 1, prefer: false, noselect: false, trust: false, require: false });
  let t = at(0);
  for (let i = 0; i < 6; i++) {
    t = at(i * 64);
    d.setReachable('s', true);
    d.addSample('s', sample(t, 1e-5), t);
    d.update(t);
  }
  drain(d);
  assert.ok(d.synchronized);
  assert.equal(d.sourceStats('s', t)!.np, 6);
  // The clock is now 0.5 s off: makestep's 2 updates are used up, so no step...
  const t1 = at(6 * 64);
  d.addSample('s', sample(t1, 0.5), t1);
  d.update(t1);
  assert.equal(drain(d).filter((a) => a.type === 'step').length, 0);
  // ...until the jump is reported: the history goes, and the next update steps.
  const t2 = at(6 * 64 + 10);
  d.clockJumped(t2);
  assert.equal(d.sourceStats('s', t2)!.np, 0);
  d.addSample('s', sample(addSeconds(t2, 1), 0.5), addSeconds(t2, 1));
  d.update(addSeconds(t2, 1));
  const steps = drain(d).filter((a) => a.type === 'step');
  assert.equal(steps.length, 1);
  assert.ok(Math.abs((steps[0] as { seconds: number }).seconds - 0.5) < 0.05);
});

test('discipline: local stratum serves LOCL while unsynchronised; orphan waits 300 s', () => {
  const plain = new Discipline({ localStratum: { stratum: 8 } });
  plain.start(at(0));
  assert.equal(plain.reference(at(1)).refId, REFID_LOCL);
  assert.equal(plain.reference(at(1)).stratum, 8);
  const orphan = new Discipline({ localStratum: { stratum: 10, orphan: true } });
  orphan.start(at(0));
  assert.equal(orphan.reference(at(100)).synchronized, false);
  assert.equal(orphan.reference(at(100)).stratum, 16);
  assert.equal(orphan.reference(at(301)).refId, REFID_LOCL);
  assert.equal(orphan.reference(at(301)).stratum, 10);
});

// ---- client: back-off, unreachable run, auto_offline, offline/online ---------------------------

const SERVER = { address: '192.0.2.1', port: 123 };

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/** Fires n polls that nobody answers; returns the poll after each. */
function silentPolls(c: ClientAssociation, n: number): number[] {
  const polls: number[] = [];
  for (let i = 0; i < n; i++) {
    c.handleTimeout(c.nextTimeout()!);
    while (c.pollTransmit());
    polls.push(c.getPoll());
  }
  return polls;
}

test('client: the selected source backs off more slowly (0.1 per miss), and the unreachable run counts', () => {
  const other = new ClientAssociation({ address: SERVER, minpoll: 4, maxpoll: 10 }, { random: lcg(1) });
  const sel = new ClientAssociation({ address: SERVER, minpoll: 4, maxpoll: 10 }, { random: lcg(1) });
  sel.setSelected(true);
  other.start(T0);
  sel.start(T0);
  const po = silentPolls(other, 23);
  const ps = silentPolls(sel, 23);
  // First miss noticed at the 2nd poll: 22 misses → +5.5 (0.25 each) and +2.2 (0.1 each).
  assert.equal(po[22], 9);
  assert.equal(ps[22], 6);
  assert.equal(po[3], 4, 'no step before the 4th miss');
  assert.equal(po[4], 5);
  assert.equal(other.status().reach, 0);
  // The register is empty from the 1st poll on (never answered): 23 polls in a row.
  assert.equal(other.status().unreachableRun, 23);
});

test('client: auto_offline takes the source offline on a send error; online brings it back', () => {
  const c = new ClientAssociation({ address: SERVER, autoOffline: true, iburst: true }, { random: lcg(2) });
  const plain = new ClientAssociation({ address: SERVER }, { random: lcg(2) });
  c.start(T0);
  plain.start(T0);
  c.handleTimeout(c.nextTimeout()!);
  assert.ok(c.pollTransmit());
  assert.equal(c.sendFailed(T0), true);
  assert.equal(c.status().online, false);
  assert.equal(c.status().burstRemaining, 0);
  assert.equal(c.nextTimeout(), null, 'no polling while offline');
  assert.equal(plain.sendFailed(T0), false, 'without auto_offline a send error changes nothing');
  assert.notEqual(plain.nextTimeout(), null);
  c.setOnline(true, at(100));
  const next = c.nextTimeout();
  assert.ok(next !== null && next >= at(100) && next <= at(100.1));
  assert.ok(c.status().burstRemaining > 0, 'iburst again when coming online');
});

test('engine: transmitFailed takes only the auto_offline source offline', () => {
  const e = new Engine(
    {
      sources: [
        sourceConfig('a', { address: '192.0.2.1', port: 123 }, { autoOffline: true }),
        sourceConfig('b', { address: '192.0.2.2', port: 123 }),
      ],
      discipline: {},
      server: { enabled: false, access: () => true, clientLogLimit: 16 },
      precision: -20,
    },
    { random: lcg(3) },
  );
  e.start(T0);
  e.handleTimeout(at(1));
  const sent = [];
  for (let t = e.pollTransmit(); t; t = e.pollTransmit()) sent.push(t);
  assert.equal(sent.length, 2);
  for (const t of sent) e.transmitFailed(t, at(1));
  assert.deepEqual(e.activity(), { online: 1, offline: 1, burstOnline: 0, burstOffline: 0, unresolved: 0 });
  assert.equal(
    e.setOnline(true, at(2), (s) => s.id === 'a'),
    1,
  );
  assert.equal(e.activity().online, 2);
});

test('engine: clockJumped bursts every online source and counts the jump', () => {
  const e = new Engine(
    {
      sources: [
        sourceConfig('a', { address: '192.0.2.1', port: 123 }, { minpoll: 10 }),
        sourceConfig('b', { address: '192.0.2.2', port: 123 }, { offline: true }),
      ],
      discipline: { makestep: { threshold: 0.1, limit: 1 } },
      server: { enabled: false, access: () => true, clientLogLimit: 16 },
      precision: -20,
    },
    { random: lcg(4) },
  );
  e.start(T0);
  e.handleTimeout(at(1));
  while (e.pollTransmit());
  assert.ok(e.nextTimeout()! > at(900), 'next poll ~1024 s away');
  e.clockJumped(at(10), 2);
  assert.deepEqual(e.jumpStats(), { count: 1, lastSeconds: 2 });
  assert.ok(e.nextTimeout()! <= at(10.1), 'burst starts at once');
  assert.deepEqual(e.activity(), { online: 0, offline: 1, burstOnline: 1, burstOffline: 0, unresolved: 0 });
});

// ---- configuration ----------------------------------------------------------------------------

test('config: local options, auto_offline and maxunreach parse, print and round-trip', () => {
  const c = parseConfigText(
    'server 192.0.2.1 iburst auto_offline maxunreach 12\nlocal stratum 9 orphan distance 0.1 activate 0.5 waitsynced 7200 waitunsynced 60\n',
    'test.conf',
  );
  assert.equal(c.sources[0]!.options.autoOffline, true);
  assert.equal(c.sources[0]!.options.maxunreach, 12);
  assert.deepEqual(c.local, {
    stratum: 9,
    orphan: true,
    distance: 0.1,
    activate: 0.5,
    waitsynced: 7200,
    waitunsynced: 60,
  });
  const text = formatConfig(c);
  assert.match(text, /server 192\.0\.2\.1 .*auto_offline.*maxunreach 12/);
  assert.match(text, /local stratum 9 orphan distance 0\.1 activate 0\.5 waitsynced 7200 waitunsynced 60/);
  const again = parseConfigText(text, 'again.conf');
  assert.deepEqual(again.local, c.local);
  assert.equal(again.sources[0]!.options.maxunreach, 12);
  // Defaults.
  const d = parseConfigText('server 192.0.2.1\nlocal\n', 'd.conf');
  assert.equal(d.sources[0]!.options.autoOffline, false);
  assert.equal(d.sources[0]!.options.maxunreach, 100000);
  assert.deepEqual(d.local, { stratum: 10, orphan: false, distance: 1 });
});

test('config: bad local and maxunreach values name file and line', () => {
  assert.throws(() => parseConfigText('\nlocal waitunsynced -1\n', 'x.conf'), /x\.conf:2/);
  assert.throws(() => parseConfigText('local activate\n', 'x.conf'), /x\.conf:1.*activate/);
  assert.throws(() => parseConfigText('server 192.0.2.1 maxunreach many\n', 'y.conf'), /y\.conf:1/);
  assert.throws(() => parseConfigText('server 192.0.2.1 maxunreach\n', 'y.conf'), /y\.conf:1.*maxunreach/);
});
