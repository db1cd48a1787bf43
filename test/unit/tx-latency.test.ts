/**
 * Transmit-latency compensation (src/ntp/tx-latency.ts): the estimator on its own, the
 * BatchServer's sampling on fake socket buffers (ids, era rollover, stale stamps), and the
 * daemon's serving loop on a real loopback socket, where the addon's kernel TX stamps teach it
 * the latency and every later answer's T3 is written that much later.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import {
  MAX_COMPENSATION_NS,
  MAX_SAMPLE_NS,
  QUANTILE,
  SAMPLE_GAP_NS,
  SAMPLES,
  TxLatency,
} from '../../src/ntp/tx-latency.js';
import { BatchServer, type ServerBatchIo } from '../../src/ntp/server-batch.js';
import { NtpServer } from '../../src/ntp/server.js';
import { decodePacket } from '../../src/ntp/packet.js';
import { instantToNtp64, NS_PER_S, type Instant } from '../../src/time/ntp-time.js';
import type { ReferenceState } from '../../src/engine/types.js';
import { ServingLoop } from '../../src/daemon/batch-loop.js';
import { openBatchUdpSocket } from '../../src/io/batch-udp.js';
import { native, nativeLoadError } from '../../src/io/native.js';
import { realtimeNow } from '../../src/io/realtime.js';
import { clientRequestBytes } from '../support/ntp-packets.js';

const META = 8;
const TX_STAMP = 1;
const TX_WANT_TIMESTAMP = 2;
/** 2036-02-07T06:28:16Z: NTP era 0 ends. */
const ERA1_UNIX_S = 2_085_978_496n;
const REF: ReferenceState = {
  synchronized: true,
  leap: 0,
  stratum: 2,
  refId: 0xc0000201,
  refTime: 1_750_000_000n * NS_PER_S,
  rootDelay: 0.001,
  rootDispersion: 0.001,
  precision: -23,
};

const rx = (ns: bigint): Float64Array => Float64Array.of(Number(ns / NS_PER_S), Number(ns % NS_PER_S));

test('TxLatency: the 10th percentile of the latest samples, bounded, 0 before the first', () => {
  const l = new TxLatency();
  assert.equal(l.ns, 0);
  l.add(9000);
  assert.equal(l.ns, 9000);
  l.add(7000);
  assert.equal(l.ns, 7000); // fewer than 11 samples: the smallest
  l.add(500_000); // a stalled send does not count
  assert.equal(l.ns, 7000);
  // Not latencies: negative (clock stepped), beyond MAX_SAMPLE_NS, NaN.
  for (const bad of [-1, MAX_SAMPLE_NS + 1, Number.NaN]) l.add(bad);
  assert.equal(l.samples, 3);
  // The window slides: SAMPLES new values replace the old ones entirely; 1..31 µs in a shuffled
  // order: the 4th smallest.
  for (let i = 0; i < SAMPLES; i++) l.add(((i * 7) % SAMPLES) * 1000 + 1000);
  assert.equal(l.samples, SAMPLES);
  assert.equal(l.ns, Math.floor((SAMPLES - 1) * QUANTILE) * 1000 + 1000);
  assert.equal(l.ns, 4000);
  // Never more than MAX_COMPENSATION_NS, however slow the sender.
  for (let i = 0; i < SAMPLES; i++) l.add(MAX_SAMPLE_NS);
  assert.equal(l.ns, MAX_COMPENSATION_NS);
});

test('TxLatency: at most one sample per SAMPLE_GAP_NS of receive time; a clock stepped back restarts', () => {
  const l = new TxLatency();
  const t0 = 1_795_000_000n * NS_PER_S + 999_000_000n;
  assert.equal(l.due(rx(t0)), true);
  assert.equal(l.due(rx(t0 + BigInt(SAMPLE_GAP_NS) - 1n)), false);
  assert.equal(l.due(rx(t0 + BigInt(SAMPLE_GAP_NS))), true); // across a second boundary
  assert.equal(l.due(rx(t0 + BigInt(SAMPLE_GAP_NS) + 1_000_000n)), false);
  assert.equal(l.due(rx(t0 - NS_PER_S)), true); // stepped back a second
  assert.equal(l.due(rx(t0 - NS_PER_S + 1n)), false);
});

/** Socket buffers as the addon lays them out; `send` writes T3 into TX_STAMP slots, ids for TX_WANT_TIMESTAMP ones. */
class FakeIo implements ServerBatchIo {
  readonly batch = 2;
  readonly slotBytes = 1024;
  readonly rxData = new Uint8Array(2 * 1024);
  readonly rxMeta = new Int32Array(2 * META);
  readonly rxTime = new Float64Array(4);
  readonly txData = new Uint8Array(2 * 1024);
  readonly txMeta = new Int32Array(2 * META);
  readonly txId = new Int32Array(2);
  private nextId = 0;

  /** One request received at `at`, answered, sent with T3 = `t3`; the answer's flags and TX-stamp id. */
  exchange(bs: BatchServer, at: Instant, t3: Instant): { flags: number; id: number } {
    this.rxData.set(clientRequestBytes(), 0);
    this.rxMeta.set([48, 4, 40123, 0xc6336407 | 0, 0, 0, 0, 1], 0);
    this.rxTime[0] = Number(at / NS_PER_S);
    this.rxTime[1] = Number(at % NS_PER_S);
    assert.equal(bs.process(this, 1, 0, REF), 1);
    const flags = this.txMeta[7]!;
    if (flags & TX_STAMP) {
      const v = instantToNtp64(t3);
      for (let b = 0; b < 8; b++) this.txData[40 + b] = Number((v >> BigInt(56 - 8 * b)) & 0xffn);
    }
    this.txId[0] = flags & TX_WANT_TIMESTAMP ? this.nextId++ : -1;
    bs.sent(this, 1);
    return { flags, id: this.txId[0]! };
  }
}

const stamp = (bs: BatchServer, id: number, kernel: Instant): void =>
  bs.txStamps(Int32Array.of(id), Float64Array.of(Number(kernel / NS_PER_S), Number(kernel % NS_PER_S)), 1, 0);

test('BatchServer with sampleTxLatency: a basic answer per 10 ms asks for a TX stamp; the latency is learnt across the 2036 era rollover', () => {
  // noclientlog: no client table, so the samples are the only TX stamps asked for.
  const server = new NtpServer({ clientLogLimit: 16, noclientlog: true, access: () => true, random: () => 0.5 });
  const bs = new BatchServer(server, { sampleTxLatency: true });
  const io = new FakeIo();
  const latencies = [9000n, 8200n, 50_000n, 9500n, 8800n]; // the smallest: 8200
  // The first answer's T3 is in era 0 and its kernel stamp in era 1.
  let t = ERA1_UNIX_S * NS_PER_S - 1000n - 4500n;
  for (const lat of latencies) {
    const comp = BigInt(bs.txLatency.ns);
    const send = t + 1000n;
    // The caller adds the compensation to the offset the addon writes T3 with.
    const a = io.exchange(bs, t, send + comp);
    assert.equal(a.flags, TX_STAMP | TX_WANT_TIMESTAMP);
    const b = io.exchange(bs, t + 5_000_000n, t + 5_001_000n);
    assert.equal(b.flags, TX_STAMP, 'a second answer within 10 ms is not sampled');
    stamp(bs, a.id, send + lat);
    t += 20_000_000n;
  }
  assert.equal(bs.txLatency.samples, 5);
  assert.equal(bs.txLatency.ns, 8200);
  // The written T3 already had 8200 ns added: the latency is measured from T3 less that.
  const c = io.exchange(bs, t, t + 1000n + 8200n);
  stamp(bs, c.id, t + 1000n + 7000n);
  assert.equal(bs.txLatency.samples, 6);
  assert.equal(bs.txLatency.ns, 7000);
  // A stamp delivered twice, or for an id that was never a sample, is ignored.
  stamp(bs, c.id, t + 1000n);
  stamp(bs, 12345, t);
  assert.equal(bs.txLatency.samples, 6);
  assert.equal(bs.txLatency.ns, 7000);
  // Without the option nothing is sampled.
  const plain = new BatchServer(
    new NtpServer({ clientLogLimit: 16, noclientlog: true, access: () => true, random: () => 0.5 }),
  );
  assert.equal(new FakeIo().exchange(plain, t, t).flags, TX_STAMP);
});

const skip = process.env.RUBIDIUM_NO_NATIVE === '1' ? 'RUBIDIUM_NO_NATIVE=1' : false;

test(
  'serving loop on a loopback socket: kernel TX stamps teach the latency; later answers carry T3 that much after T2',
  { skip },
  async () => {
    assert.ok(native, `native addon failed to load: ${nativeLoadError}`);
    const server = new NtpServer({ clientLogLimit: 64, access: () => true, random: () => 0.5 });
    const errors: Error[] = [];
    const loop = new ServingLoop(server, {
      offsetNs: () => 0,
      reference: () => REF,
      now: () => realtimeNow(),
      onOther: () => {},
      onError: (e) => errors.push(e),
    });
    // The compensation each batch was answered with (one request per batch here), and the offset
    // the addon wrote its T3 with.
    const used: number[] = [];
    const written: number[] = [];
    const sock = openBatchUdpSocket({
      family: 4,
      address: '127.0.0.1',
      port: 0,
      onRx: (s, n) => {
        used.push(loop.batchServer.txLatency.ns);
        loop.onRx(s, n);
        written.push(s.txOffsetNs[0]!);
      },
      onTxStamps: loop.onTxStamps,
    });
    assert.ok(sock, 'batch socket');
    const client = dgram.createSocket('udp4');
    const answers: Buffer[] = [];
    client.on('message', (m) => answers.push(m));
    try {
      await new Promise<void>((res) => client.bind(0, '127.0.0.1', res));
      const requests = 30;
      for (let i = 0; i < requests; i++) {
        client.send(clientRequestBytes(), sock.localPort(), '127.0.0.1');
        await new Promise((res) => setTimeout(res, 15));
      }
      const deadline = Date.now() + 3000;
      while (answers.length < requests && Date.now() < deadline) await new Promise((res) => setTimeout(res, 5));
      assert.equal(answers.length, requests);
      assert.deepEqual(errors, []);
      assert.ok(sock.txTimestamps, 'the socket takes kernel TX stamps');
      const l = loop.batchServer.txLatency;
      assert.ok(l.samples >= requests / 2, `latency samples ${l.samples}`);
      assert.ok(l.ns > 0 && l.ns < MAX_COMPENSATION_NS, `compensation ${l.ns} ns`);
      assert.equal(used.length, requests);
      assert.ok(used.some((c) => c > 0));
      assert.deepEqual(written, used, 'T3 offset = clock offset (0) + compensation');
      // T3 = CLOCK_REALTIME at send + compensation, T2 = the kernel RX stamp, earlier: T3 − T2 ≥ it.
      for (let i = 0; i < requests; i++) {
        const p = decodePacket(new Uint8Array(answers[i]!));
        assert.ok(p.ok);
        const spanNs = Number(((p.packet.transmit - p.packet.receive) * NS_PER_S) >> 32n);
        assert.ok(spanNs >= used[i]! - 1, `answer ${i}: T3 − T2 ${spanNs} ns < compensation ${used[i]} ns`);
      }
    } finally {
      client.close();
      sock.close();
    }
  },
);
