/**
 * Leap seconds in the simulator: a stratum-1 reference whose clock is true UTC (the simulator
 * makes it repeat 23:59:59 for an inserted second, skip it for a deleted one) and knows the leap
 * from a leap table; clients learn it from its LI bits and apply it by leapsecmode. Offsets are
 * measured against UTC; `raw` offsets (against continuous true time) show the clock's jumps.
 *
 * The inserted second is the real one of 2016-12-31, from the machine's leap-seconds.list; the
 * deleted second (none has ever happened) is a synthetic table ending 2027-06-30 with −1 s.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { runSimulation, type NodeSpec, type Scenario, type SimNodeView } from '../../src/sim/simulator.js';
import { parseLeapSecondsList } from '../../src/leap/leap-seconds-list.js';
import { LeapSchedule } from '../../src/leap/leap-schedule.js';
import type { LeapSecMode } from '../../src/leap/leap-controller.js';
import { NS_PER_S, diffSeconds, type Instant } from '../../src/time/ntp-time.js';
import type { LeapIndicator } from '../../src/clock/clock.js';

const LIST = '/usr/share/zoneinfo/leap-seconds.list';
const list = parseLeapSecondsList(fs.readFileSync(LIST, 'utf8'), LIST);
const REAL = new LeapSchedule(list.entries, list.expires, LIST);
const INSERT_MIDNIGHT = 1483228800n; // 2017-01-01T00:00:00Z, the end of 2016-12-31
const DELETE_MIDNIGHT = BigInt(Date.UTC(2027, 6, 1) / 1000);
const DELETION = new LeapSchedule(
  [
    { at: DELETE_MIDNIGHT - 181n * 86400n, taiUtc: 37 },
    { at: DELETE_MIDNIGHT, taiUtc: 36 },
  ],
  null,
  'synthetic',
);
const BEFORE_S = 4 * 3600; // the run starts 4 h before the leap

interface Trace {
  t: number[];
  /** cooked − UTC */
  utc: number[];
  /** cooked − continuous true time */
  raw: number[];
  li: LeapIndicator[];
  served: number[]; // served − continuous true time
}

function scenario(
  sign: 1 | -1,
  client: { mode?: LeapSecMode; smooth?: boolean },
  duration: number,
  seed = 1,
): { sc: Scenario; traces: Map<string, Trace> } {
  const midnight = sign > 0 ? INSERT_MIDNIGHT : DELETE_MIDNIGHT;
  const start = (midnight - BigInt(BEFORE_S)) * NS_PER_S;
  const leapAtS = BEFORE_S - (sign < 0 ? 1 : 0);
  const schedule = sign > 0 ? REAL : DELETION;
  const nodes: NodeSpec[] = [
    {
      address: '10.0.0.1',
      local: { stratum: 1 },
      followsUtc: true,
      measure: true,
      // The reference's clock is made UTC by the simulator; it only announces the leap.
      discipline: { leap: { mode: 'ignore', schedule } },
    },
  ];
  if (client.smooth) {
    nodes.push({
      address: '10.0.0.2',
      oscillator: { freqPpm: 20, wander: 1e-10 },
      sources: [{ server: '10.0.0.1', options: { minpoll: 4, maxpoll: 6, iburst: true } }],
      discipline: {
        leap: { mode: 'slew' },
        maxslewrate: 1000,
        smoothtime: { maxFreqPpm: 400, maxWanderPpmPerS: 0.001, leapOnly: true },
      },
    });
    nodes.push({
      address: '10.0.0.3',
      oscillator: { freqPpm: -30, wander: 1e-10 },
      sources: [{ server: '10.0.0.2', options: { minpoll: 4, maxpoll: 6, iburst: true } }],
    });
  } else {
    nodes.push({
      address: '10.0.0.2',
      oscillator: { freqPpm: 20, wander: 1e-10 },
      sources: [{ server: '10.0.0.1', options: { minpoll: 4, maxpoll: 6, iburst: true } }],
      discipline: { leap: { mode: client.mode ?? 'system' } },
    });
  }
  const traces = new Map<string, Trace>();
  for (const n of nodes) traces.set(n.address, { t: [], utc: [], raw: [], li: [], served: [] });
  const sc: Scenario = {
    seed,
    duration,
    start,
    leap: { midnight, sign },
    path: { baseDelay: 1e-4, jitter: { dist: 'exponential', mean: 5e-5 } },
    nodes,
    onSample: (t: number, views: SimNodeView[]) => {
      const trueNow = start + BigInt(Math.round(t * 1e9));
      for (const v of views) {
        const tr = traces.get(v.address)!;
        const now = v.clock.now();
        const ref = v.engine.disciplineState.reference(now);
        tr.t.push(t);
        tr.utc.push(v.offset);
        tr.raw.push(diffSeconds(now, trueNow));
        tr.li.push(ref.synchronized ? ref.leap : 3);
        tr.served.push(diffSeconds(now, trueNow) - (ref.smoothOffset ?? 0));
      }
    },
  };
  void leapAtS;
  return { sc, traces };
}

const at = (tr: Trace, t: number): number => tr.t.indexOf(t);

/** Largest |change between consecutive samples| of a series over [from, to). */
function maxJump(tr: Trace, series: number[], from: number, to: number): { jump: number; at: number } {
  let jump = 0;
  let when = -1;
  for (let i = Math.max(1, at(tr, from)); i < tr.t.length && tr.t[i]! < to; i++) {
    const d = Math.abs(series[i]! - series[i - 1]!);
    if (d > jump) {
      jump = d;
      when = tr.t[i]!;
    }
  }
  return { jump, at: when };
}

function checkReferenceLi(ref: Trace, sign: 1 | -1): void {
  const leapAt = BEFORE_S - (sign < 0 ? 1 : 0);
  const expect = sign > 0 ? 1 : 2;
  // Announced for the whole last day (the run starts on it), 0 after the leap.
  for (let i = 0; i < ref.t.length; i++) {
    const t = ref.t[i]!;
    if (t < leapAt - 6) assert.equal(ref.li[i], expect, `reference LI at ${t}`);
    if (t > leapAt + 6) assert.equal(ref.li[i], 0, `reference LI at ${t}`);
  }
  // The simulator made the reference repeat (skip) a second: it is UTC on both sides.
  assert.ok(Math.abs(ref.utc[at(ref, leapAt - 10)]!) < 1e-9 && Math.abs(ref.utc[at(ref, leapAt + 10)]!) < 1e-9);
}

for (const sign of [1, -1] as const) {
  const what = sign > 0 ? 'inserted' : 'deleted';
  for (const mode of ['system', 'step', 'slew', 'ignore'] as const) {
    test(`${what} leap second, client leapsecmode ${mode}`, () => {
      const { sc, traces } = scenario(sign, { mode }, BEFORE_S + 3600);
      const res = runSimulation(sc);
      const ref = traces.get('10.0.0.1')!;
      const c = traces.get('10.0.0.2')!;
      const node = res.nodes['10.0.0.2']!;
      checkReferenceLi(ref, sign);
      const leapAt = BEFORE_S - (sign < 0 ? 1 : 0);
      // Synchronised and announcing the leap (learned from the reference's LI) before it.
      assert.ok(Math.abs(c.utc[at(c, leapAt - 60)]!) < 1e-3, `offset before ${c.utc[at(c, leapAt - 60)]}`);
      assert.equal(c.li[at(c, leapAt - 60)], sign > 0 ? 1 : 2, 'client announces the leap');
      // Its clock's relation to continuous (TAI-like) time before and well after the leap.
      const before = c.raw[at(c, leapAt - 60)]!;
      const after = c.raw[at(c, leapAt + 1800)]!;
      const big = maxJump(c, c.raw, leapAt - 30, leapAt + 30);
      console.log(
        `${what} ${mode}: raw before ${before.toFixed(6)} after ${after.toFixed(6)} biggest 1-s change ${big.jump.toFixed(4)} at ${big.at - leapAt} s, steps ${node.steps}`,
      );
      // After the leap the clock is UTC: one second behind its old TAI relation for an insertion.
      assert.ok(Math.abs(after - before + sign) < 2e-3, `TAI relation moved by ${after - before}`);
      assert.ok(Math.abs(c.utc[at(c, leapAt + 1800)]!) < 1e-3, `offset after ${c.utc[at(c, leapAt + 1800)]}`);
      assert.equal(c.li[at(c, leapAt + 1800)], 0, 'no leap announced after it');
      if (mode === 'system' || mode === 'step') {
        // The −1 s (insert) / +1 s (delete) jump happens in the leap second itself.
        assert.ok(Math.abs(big.jump - 1) < 2e-3, `jump ${big.jump}`);
        // Sampled each true second, the jump falls in the sample interval where the client's
        // clock (µs from UTC) reads 00:00:00 (insert: 23:59:60 repeats 23:59:59) or 23:59:59.
        assert.ok(
          big.at === leapAt || big.at === leapAt + 1,
          `the jump is at the leap second, not ${big.at - leapAt} s`,
        );
        assert.equal(node.steps, mode === 'step' ? 1 : 0, 'system mode: the (emulated) kernel steps');
      } else if (mode === 'slew') {
        assert.equal(node.steps, 0);
        assert.ok(big.jump < 0.09, `slewed, no jump: ${big.jump}`);
        // chrony's rate: the Linux maximum 83333 ppm, 1 s in 12 s.
        const half = c.utc[at(c, leapAt + 6)]!;
        assert.ok(Math.abs(Math.abs(half) - 0.5) < 0.05, `half way after 6 s: ${half}`);
        assert.ok(Math.abs(c.utc[at(c, leapAt + 14)]!) < 2e-3, `done after 14 s: ${c.utc[at(c, leapAt + 14)]}`);
      } else {
        // ignore: nothing at the leap, the clock is a second off until measurements fix it.
        assert.equal(node.steps, 0);
        assert.ok(big.jump < 0.09, `no jump at the leap: ${big.jump}`);
        assert.ok(
          Math.abs(Math.abs(c.utc[at(c, leapAt + 3)]!) - 1) < 0.01,
          `still 1 s off: ${c.utc[at(c, leapAt + 3)]}`,
        );
      }
    });
  }
}

test('leap smear: smoothtime 400 0.001 leaponly server, plain client never sees a step', () => {
  const smearS = Math.sqrt(4 / 1e-9); // 63246 s
  const duration = BEFORE_S + Math.ceil(smearS) + 3600;
  const { sc, traces } = scenario(1, { smooth: true }, duration);
  sc.sampleInterval = 1;
  runSimulation(sc);
  const ref = traces.get('10.0.0.1')!;
  const srv = traces.get('10.0.0.2')!;
  const cl = traces.get('10.0.0.3')!;
  checkReferenceLi(ref, 1);
  const leapAt = BEFORE_S;
  // The smearing server hides the leap from its clients (as chronyd, it answers LI=3 for the
  // 2 s the leap is in progress).
  for (let i = 0; i < srv.t.length; i++) {
    const t = srv.t[i]!;
    if (t > 600) assert.equal(srv.li[i], t >= leapAt && t <= leapAt + 3 ? srv.li[i] : 0, `smear server LI at ${t}`);
    if (t >= leapAt && t <= leapAt + 3) assert.ok(srv.li[i] === 0 || srv.li[i] === 3);
  }
  // Served time never jumps: per 1 s of true time it advances 1 s ± (400 ppm + noise).
  const served = maxJump(srv, srv.served, 600, duration);
  const client = maxJump(cl, cl.raw, 600, duration);
  console.log(
    `smear: served max 1-s change ${served.jump.toExponential(3)} at ${served.at - leapAt}, client ${client.jump.toExponential(3)} at ${client.at - leapAt}`,
  );
  assert.ok(served.jump < 1e-3, `served time jumped ${served.jump} at ${served.at - leapAt}`);
  assert.ok(client.jump < 2e-3, `client clock jumped ${client.jump} at ${client.at - leapAt}`);
  // Half way through the smear the served time is about half a second from UTC.
  const mid = at(srv, leapAt + Math.round(smearS / 2));
  const servedVsUtc = srv.served[mid]! - srv.raw[mid]! + srv.utc[mid]!;
  assert.ok(Math.abs(servedVsUtc - 0.5) < 0.05, `served − UTC half way: ${servedVsUtc}`);
  // Before the smear and after it ends, server, served time and client are on UTC.
  const end = srv.t.length - 1;
  assert.ok(Math.abs(srv.served[end]! - srv.raw[end]! + srv.utc[end]!) < 1e-3, 'served time back on UTC');
  assert.ok(Math.abs(cl.utc[end]!) < 2e-3, `client back on UTC: ${cl.utc[end]}`);
  assert.ok(Math.abs(cl.utc[at(cl, leapAt - 60)]!) < 2e-3, 'client on UTC before the leap');
});

void (0 as unknown as Instant);
