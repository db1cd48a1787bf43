import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { CLOCK_REALTIME, native, nativeLoadError, type NativeAddon } from '../../src/io/native.js';
import {
  META_INTS,
  RX_KERNEL_STAMP,
  RX_TRUNCATED,
  TX_STAMP,
  TX_WANT_TIMESTAMP,
  openBatchUdpSocket,
  type BatchUdpOptions,
  type BatchUdpSocket,
} from '../../src/io/batch-udp.js';

// Real loopback sockets; without the addon these tests fail loudly unless native is off on purpose.
const skip = process.env.RUBIDIUM_NO_NATIVE === '1' ? 'RUBIDIUM_NO_NATIVE=1' : false;

function addon(): NativeAddon {
  assert.ok(native, `native addon failed to load: ${nativeLoadError}`);
  assert.equal(typeof native.udpBatchOpen, 'function', 'addon has no batch exports (stale build?)');
  return native;
}

const NTP_UNIX_OFFSET_S = 2208988800n;
const NS = 1_000_000_000n;

function sleep(ms: number): Promise<void> {
  return new Promise((res) => setTimeout(res, ms));
}

async function waitFor(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

interface RxRecord {
  len: number;
  family: number;
  port: number;
  words: number[];
  flags: number;
  timeNs: bigint;
  first: number;
  bytes: Buffer;
  round: number;
}

/** Opens a batch socket that copies every received slot's metadata into `got`. */
function openRecorder(extra: Partial<BatchUdpOptions> = {}): {
  sock: BatchUdpSocket;
  got: RxRecord[];
  rounds: number[];
} {
  const got: RxRecord[] = [];
  const rounds: number[] = [];
  const sock = openBatchUdpSocket({
    family: 4,
    address: '127.0.0.1',
    port: 0,
    ...extra,
    onRx(s, n) {
      rounds.push(n);
      for (let i = 0; i < n; i++) {
        const m = s.rxMeta.subarray(i * META_INTS, (i + 1) * META_INTS);
        got.push({
          len: m[0]!,
          family: m[1]!,
          port: m[2]!,
          words: [m[3]! >>> 0, m[4]! >>> 0, m[5]! >>> 0, m[6]! >>> 0],
          flags: m[7]!,
          timeNs: BigInt(s.rxTime[2 * i]!) * NS + BigInt(s.rxTime[2 * i + 1]!),
          first: s.rxData[i * s.slotBytes]!,
          bytes: Buffer.from(s.rxData.subarray(i * s.slotBytes, (i + 1) * s.slotBytes)),
          round: rounds.length,
        });
      }
      extra.onRx?.(s, n);
    },
  });
  assert.ok(sock);
  return { sock, got, rounds };
}

/**
 * The kernel switches RX software timestamping on asynchronously when the first timestamping
 * socket appears, so early datagrams may come unstamped: probe until a stamp comes back.
 */
async function warmRxStamps(): Promise<void> {
  const { sock, got } = openRecorder();
  const a = addon();
  const tx = a.udpOpen(4, '127.0.0.1', 0, () => {});
  try {
    const deadline = Date.now() + 3000;
    while (!got.some((r) => (r.flags & RX_KERNEL_STAMP) !== 0)) {
      assert.ok(Date.now() < deadline, 'kernel never delivered an RX timestamp');
      a.udpSend(tx, Buffer.from('warm'), '127.0.0.1', sock.localPort());
      await sleep(10);
    }
  } finally {
    a.udpClose(tx);
    sock.close();
  }
}

/** NTP 64-bit timestamp at p[off..off+8] → (seconds mod 2^32, ns rounded). */
function readNtp(p: Uint8Array, off: number): { sec: bigint; ns: bigint } {
  const dv = new DataView(p.buffer, p.byteOffset + off, 8);
  const sec = BigInt(dv.getUint32(0));
  const frac = BigInt(dv.getUint32(4));
  return { sec, ns: (frac * NS + (1n << 31n)) >> 32n };
}

/** The NTP timestamp (seconds mod 2^32, ns) the addon should write for unix time t + offset. */
function expectedNtp(unixNs: bigint): { sec: bigint; ns: bigint } {
  let sec = unixNs / NS;
  let rem = unixNs % NS;
  if (rem < 0n) {
    rem += NS;
    sec -= 1n;
  }
  return { sec: (((sec + NTP_UNIX_OFFSET_S) % (1n << 32n)) + (1n << 32n)) % (1n << 32n), ns: rem };
}

/** Signed difference a − b in ns of two NTP (sec mod 2^32, ns) values that are close. */
function ntpDiffNs(a: { sec: bigint; ns: bigint }, b: { sec: bigint; ns: bigint }): bigint {
  let ds = (a.sec - b.sec) % (1n << 32n);
  if (ds > 1n << 31n) ds -= 1n << 32n;
  if (ds < -(1n << 31n)) ds += 1n << 32n;
  return ds * NS + (a.ns - b.ns);
}

function setTxSlot(
  s: BatchUdpSocket,
  i: number,
  data: Uint8Array,
  to: { family: 4 | 6; port: number; words: number[] },
  flags: number,
): void {
  s.txData.set(data, i * s.slotBytes);
  const m = s.txMeta.subarray(i * META_INTS, (i + 1) * META_INTS);
  m[0] = data.length;
  m[1] = to.family;
  m[2] = to.port;
  for (let k = 0; k < 4; k++) m[3 + k] = to.words[k] ?? 0;
  m[7] = flags;
}

const LOOP4 = [0x7f000001, 0, 0, 0];
const LOOP6 = [0, 0, 0, 1];

async function dgramReceiver(type: 'udp4' | 'udp6'): Promise<{ sock: dgram.Socket; msgs: Buffer[]; port: number }> {
  const sock = dgram.createSocket(type);
  const msgs: Buffer[] = [];
  sock.on('message', (m) => msgs.push(m));
  await new Promise<void>((res) => sock.bind(0, type === 'udp4' ? '127.0.0.1' : '::1', res));
  return { sock, msgs, port: sock.address().port };
}

test('batch receive: counts, lengths, source words and port, kernel RX stamps, batched rounds', { skip }, async () => {
  await warmRxStamps();
  const a = addon();
  const { sock, got, rounds } = openRecorder({ batch: 16 });
  const tx = a.udpOpen(4, '127.0.0.1', 0, () => {});
  try {
    const txPort = a.udpLocalPort(tx);
    const N = 100;
    // Sent synchronously before the loop turns, so they queue up and arrive in rounds.
    const before = a.clockGettime(CLOCK_REALTIME);
    for (let i = 0; i < N; i++) {
      const p = Buffer.alloc(48 + i, i);
      a.udpSend(tx, p, '127.0.0.1', sock.localPort());
    }
    await waitFor(() => got.length >= N, 'datagrams');
    const after = a.clockGettime(CLOCK_REALTIME);
    assert.equal(got.length, N);
    for (let i = 0; i < N; i++) {
      const r = got[i]!;
      assert.equal(r.len, 48 + i);
      assert.equal(r.first, i);
      assert.equal(r.family, 4);
      assert.equal(r.port, txPort);
      assert.deepEqual(r.words, LOOP4);
      assert.equal(r.flags, RX_KERNEL_STAMP, `datagram ${i} has no kernel RX stamp`);
      assert.ok(r.timeNs >= before && r.timeNs <= after, `RX stamp ${r.timeNs} outside [${before}, ${after}]`);
      if (i > 0) assert.ok(r.timeNs >= got[i - 1]!.timeNs, 'RX stamps go backwards');
    }
    assert.ok(
      rounds.every((n) => n >= 1 && n <= 16),
      `rounds ${rounds.join(',')}`,
    );
    assert.ok(rounds.length < N, `one round per datagram: ${rounds.length}`);
    const st = sock.stats();
    assert.equal(st.rxDatagrams, N);
    assert.ok(st.rxCalls >= Math.ceil(N / 16) && st.rxCalls < N, `rxCalls ${st.rxCalls}`);
    assert.equal(st.rxTruncated, 0);
    assert.equal(sock.timestamping, 'kernel');
    assert.equal(sock.txTimestamps, true);
  } finally {
    a.udpClose(tx);
    sock.close();
  }
});

test('batch receive over IPv6: family 6 and the four address words', { skip }, async () => {
  const a = addon();
  const { sock, got } = openRecorder({ family: 6, address: '::1' });
  const tx = a.udpOpen(6, '::1', 0, () => {});
  try {
    for (let i = 0; i < 5; i++) a.udpSend(tx, Buffer.alloc(60, i), '::1', sock.localPort());
    await waitFor(() => got.length >= 5, 'datagrams');
    for (const r of got) {
      assert.equal(r.family, 6);
      assert.equal(r.len, 60);
      assert.deepEqual(r.words, LOOP6);
      assert.equal(r.port, a.udpLocalPort(tx));
    }
  } finally {
    a.udpClose(tx);
    sock.close();
  }
});

test('a datagram longer than its slot is truncated, flagged and does not overrun the next slot', { skip }, async () => {
  const a = addon();
  const { sock, got } = openRecorder({ slotBytes: 48, batch: 4 });
  const tx = a.udpOpen(4, '127.0.0.1', 0, () => {});
  try {
    // Both queued before the loop turns: one recvmmsg round, slots 0 and 1.
    a.udpSend(tx, Buffer.alloc(100, 0xaa), '127.0.0.1', sock.localPort());
    a.udpSend(tx, Buffer.alloc(48, 0x55), '127.0.0.1', sock.localPort());
    await waitFor(() => got.length >= 2, 'datagrams');
    assert.equal(got[0]!.round, got[1]!.round);
    assert.equal(got[0]!.len, 48);
    assert.equal(got[0]!.flags & RX_TRUNCATED, RX_TRUNCATED);
    assert.deepEqual(got[0]!.bytes, Buffer.alloc(48, 0xaa));
    assert.equal(got[1]!.len, 48);
    assert.equal(got[1]!.flags & RX_TRUNCATED, 0);
    assert.deepEqual(got[1]!.bytes, Buffer.alloc(48, 0x55));
    assert.equal(sock.stats().rxTruncated, 1);
    assert.equal(sock.rxData.length, 4 * 48);
  } finally {
    a.udpClose(tx);
    sock.close();
  }
});

test('send: 64 slots of different lengths arrive intact at a node:dgram socket (IPv4 and IPv6)', { skip }, async () => {
  for (const family of [4, 6] as const) {
    const recv = await dgramReceiver(family === 4 ? 'udp4' : 'udp6');
    const { sock } = openRecorder({ family, address: family === 4 ? '127.0.0.1' : '::1', batch: 64 });
    try {
      const payloads: Buffer[] = [];
      for (let i = 0; i < 64; i++) {
        const p = Buffer.alloc(1 + i * 15);
        for (let k = 0; k < p.length; k++) p[k] = (i * 7 + k) & 0xff;
        payloads.push(p);
        setTxSlot(sock, i, p, { family, port: recv.port, words: family === 4 ? LOOP4 : LOOP6 }, 0);
      }
      assert.equal(sock.send(64), 64);
      assert.deepEqual([...sock.txId], new Array<number>(64).fill(-1));
      await waitFor(() => recv.msgs.length >= 64, 'dgram messages');
      const want = payloads.map((p) => p.toString('hex')).sort();
      const have = recv.msgs.map((p) => p.toString('hex')).sort();
      assert.deepEqual(have, want);
      const st = sock.stats();
      assert.equal(st.txDatagrams, 64);
      assert.equal(st.txErrors, 0);
      assert.equal(st.txEagain, 0);
    } finally {
      sock.close();
      recv.sock.close();
    }
  }
});

/** Sends `count` stamped 48-byte packets and returns what came back (TX stamps, written bytes). */
async function stampedRun(offsetNs: number, count: number) {
  const recv = await dgramReceiver('udp4');
  const stamps = new Map<number, bigint>();
  const { sock } = openRecorder({
    onTxStamps(s, n) {
      for (let i = 0; i < n; i++) {
        stamps.set(s.txStampId[i]!, BigInt(s.txStampTime[2 * i]!) * NS + BigInt(s.txStampTime[2 * i + 1]!));
      }
    },
  });
  try {
    sock.txOffsetNs[0] = offsetNs;
    for (let i = 0; i < count; i++) {
      setTxSlot(
        sock,
        i,
        Buffer.alloc(48, i),
        { family: 4, port: recv.port, words: LOOP4 },
        TX_STAMP | TX_WANT_TIMESTAMP,
      );
    }
    assert.equal(sock.send(count), count);
    const ids = [...sock.txId.subarray(0, count)];
    const written = Array.from({ length: count }, (_, i) => readNtp(sock.txData, i * sock.slotBytes + 40));
    await waitFor(() => stamps.size >= count && recv.msgs.length >= count, 'TX stamps and datagrams');
    // What went on the wire is what the slot holds.
    for (let i = 0; i < count; i++) {
      const onWire = recv.msgs.find((m) => m[0] === i)!;
      assert.deepEqual(readNtp(onWire, 40), written[i]);
    }
    return { ids, written, stamps };
  } finally {
    sock.close();
    recv.sock.close();
  }
}

test(
  'TX_STAMP writes the transmit timestamp within 50 µs of the kernel TX stamp of the same datagram',
  { skip },
  async () => {
    const { ids, written, stamps } = await stampedRun(0, 32);
    assert.deepEqual(
      ids,
      Array.from({ length: 32 }, (_, i) => i),
    );
    for (let i = 0; i < 32; i++) {
      const kernel = stamps.get(ids[i]!);
      assert.ok(kernel !== undefined, `no TX stamp for id ${ids[i]}`);
      const d = ntpDiffNs(written[i]!, expectedNtp(kernel));
      // Written before sendmsg, stamped by the kernel during it: d ≤ 0, and small.
      assert.ok(d <= 1000n && d > -50_000n, `slot ${i}: written − kernel TX = ${d} ns`);
    }
  },
);

test('TX_STAMP is era-correct: txOffsetNs past 2036 and negative offsets', { skip }, async () => {
  const now = addon().clockGettime(CLOCK_REALTIME);
  const era1Unix = (1n << 32n) - NTP_UNIX_OFFSET_S; // 2036-02-07T06:28:16Z
  // Exactly representable doubles: the addon reads txOffsetNs as a float64.
  const offsets = [Number(era1Unix * NS + 1000n * NS - now), -86_400e9, 2 ** 50];
  for (const offsetNs of offsets) {
    const { ids, written, stamps } = await stampedRun(offsetNs, 4);
    for (let i = 0; i < 4; i++) {
      const kernel = stamps.get(ids[i]!)!;
      const want = expectedNtp(kernel + BigInt(offsetNs));
      const d = ntpDiffNs(written[i]!, want);
      assert.ok(d <= 1000n && d > -50_000n, `offset ${offsetNs}: slot ${i} off by ${d} ns`);
    }
  }
  // Past the era boundary the seconds wrapped to a small value (~1000 s into era 1).
  const { written } = await stampedRun(offsets[0]!, 1);
  assert.ok(written[0]!.sec >= 999n && written[0]!.sec <= 1010n, `era-1 seconds ${written[0]!.sec}`);
});

test('txId counts only slots that ask for a TX stamp; stamps come for exactly those', { skip }, async () => {
  const recv = await dgramReceiver('udp4');
  const stampIds: number[] = [];
  const { sock } = openRecorder({
    batch: 32,
    onTxStamps(s, n) {
      for (let i = 0; i < n; i++) stampIds.push(s.txStampId[i]!);
    },
  });
  try {
    const want: number[] = [];
    let next = 0;
    for (let round = 0; round < 3; round++) {
      const flagged: boolean[] = [];
      for (let i = 0; i < 32; i++) {
        // Irregular pattern: the kernel's OPT_ID key must advance only on flagged datagrams.
        const f = (i * 5 + round) % 3 === 0;
        flagged.push(f);
        setTxSlot(
          sock,
          i,
          Buffer.alloc(48, i),
          { family: 4, port: recv.port, words: LOOP4 },
          f ? TX_WANT_TIMESTAMP : 0,
        );
      }
      assert.equal(sock.send(32), 32);
      for (let i = 0; i < 32; i++) {
        if (flagged[i]) {
          assert.equal(sock.txId[i], next);
          want.push(next++);
        } else {
          assert.equal(sock.txId[i], -1);
        }
      }
    }
    await waitFor(() => stampIds.length >= want.length && recv.msgs.length >= 96, 'TX stamps');
    await sleep(20); // no stray stamps for unflagged datagrams
    assert.deepEqual(
      [...stampIds].sort((x, y) => x - y),
      want,
    );
    assert.equal(sock.stats().txStamps, want.length);
  } finally {
    sock.close();
    recv.sock.close();
  }
});

/** The steering program's hash, in JS (native/batch.c attach_steering). */
function steerIndex(addrWord: number, n: number): number {
  let a = addrWord >>> 0;
  for (let r = 0; r < 2; r++) {
    a = (a ^ (a >>> 16)) >>> 0;
    a = Math.imul(a, 0x45d9f3b) >>> 0;
  }
  a = (a ^ (a >>> 16)) >>> 0;
  return a % n;
}

test(
  'steering: one source address always meets the same socket of the group, many spread over both',
  { skip },
  async () => {
    const a = addon();
    const hits: Map<number, Set<number>>[] = [new Map(), new Map()];
    const record = (k: number) => (s: BatchUdpSocket, n: number) => {
      for (let i = 0; i < n; i++) {
        const src = s.rxMeta[i * META_INTS + 3]! >>> 0;
        const port = s.rxMeta[i * META_INTS + 2]!;
        const set = hits[k]!.get(src) ?? new Set<number>();
        set.add(port);
        hits[k]!.set(src, set);
      }
    };
    const g0 = openBatchUdpSocket({ family: 4, address: '127.0.0.1', port: 0, steerGroupSize: 2, onRx: record(0) })!;
    const port = g0.localPort();
    const g1 = openBatchUdpSocket({ family: 4, address: '127.0.0.1', port, steerGroupSize: 2, onRx: record(1) })!;
    const senders: ReturnType<NativeAddon['udpOpen']>[] = [];
    try {
      // Many ports of 127.0.0.1: all on one socket.
      for (let k = 0; k < 8; k++) senders.push(a.udpOpen(4, '127.0.0.1', 0, () => {}));
      // 64 addresses 127.1.0.1..64, three datagrams each.
      for (let k = 1; k <= 64; k++) senders.push(a.udpOpen(4, `127.1.0.${k}`, 0, () => {}));
      for (let rep = 0; rep < 3; rep++) {
        for (const s of senders) a.udpSend(s, Buffer.alloc(48), '127.0.0.1', port);
      }
      const total = () => [...hits[0]!.values(), ...hits[1]!.values()].reduce((n, set) => n + set.size, 0);
      await waitFor(() => total() >= senders.length, 'steered datagrams');
      const lo = 0x7f000001;
      const loSockets = [0, 1].filter((k) => hits[k]!.has(lo));
      assert.equal(loSockets.length, 1, '127.0.0.1 reached both sockets');
      assert.equal(hits[loSockets[0]!]!.get(lo)!.size, 8, 'not all 8 ports of 127.0.0.1 arrived together');
      const on = [0, 0];
      for (let k = 1; k <= 64; k++) {
        const addr = (0x7f010000 | k) >>> 0;
        const where = [0, 1].filter((s) => hits[s]!.has(addr));
        assert.equal(where.length, 1, `127.1.0.${k} reached ${where.length} sockets`);
        // Sockets are indexed in bind order, as the program's hash says.
        assert.equal(where[0], steerIndex(addr, 2), `127.1.0.${k}`);
        on[where[0]!]!++;
      }
      assert.ok(on[0]! > 8 && on[1]! > 8, `spread ${on.join('/')}`);
      assert.equal(loSockets[0], steerIndex(lo, 2));
    } finally {
      for (const s of senders) a.udpClose(s);
      g0.close();
      g1.close();
    }
  },
);

test('steering over IPv6 keeps each source address on one socket', { skip }, async () => {
  const a = addon();
  const got: number[][] = [[], []];
  const mk = (k: number, port: number) =>
    openBatchUdpSocket({
      family: 6,
      address: '::1',
      port,
      steerGroupSize: 2,
      onRx: (s, n) => {
        for (let i = 0; i < n; i++) got[k]!.push(s.rxMeta[i * META_INTS + 2]!);
      },
    })!;
  const g0 = mk(0, 0);
  const g1 = mk(1, g0.localPort());
  const senders = Array.from({ length: 16 }, () => a.udpOpen(6, '::1', 0, () => {}));
  try {
    for (const s of senders) a.udpSend(s, Buffer.alloc(48), '::1', g0.localPort());
    await waitFor(() => got[0]!.length + got[1]!.length >= 16, 'datagrams');
    assert.ok(got[0]!.length === 16 || got[1]!.length === 16, `split ${got[0]!.length}/${got[1]!.length}`);
  } finally {
    for (const s of senders) a.udpClose(s);
    g0.close();
    g1.close();
  }
});

test('TX stamps do not make the poll spin (SO_SELECT_ERR_QUEUE and the POLLERR fallback)', { skip }, async () => {
  const a = addon();
  for (const selectErrQueue of [true, false]) {
    const recv = await dgramReceiver('udp4');
    let stamps = 0;
    let rx = 0;
    const h = a.udpBatchOpen!(
      4,
      '127.0.0.1',
      0,
      (kind, arg) => {
        if (kind === 'tx') stamps += arg as number;
        if (kind === 'rx') rx += arg as number;
      },
      { batch: 32, selectErrQueue },
    );
    const tx = a.udpOpen(4, '127.0.0.1', 0, () => {});
    try {
      for (let round = 1; round <= 2; round++) {
        for (let i = 0; i < 32; i++) {
          h.txMeta.set([48, 4, recv.port, 0x7f000001, 0, 0, 0, TX_WANT_TIMESTAMP], i * META_INTS);
        }
        assert.equal(a.udpBatchSend!(h, 32), 32);
        await waitFor(() => stamps >= 32 * round, `TX stamps, round ${round}`);
        // Receiving still works after the error-queue wake-ups.
        a.udpSend(tx, Buffer.alloc(48), '127.0.0.1', a.udpBatchLocalPort!(h));
        await waitFor(() => rx >= round, `datagram, round ${round}`);
      }
      await sleep(30);
      const w1 = a.udpBatchStats!(h).wakeups;
      await sleep(100);
      const w2 = a.udpBatchStats!(h).wakeups;
      assert.ok(w2 - w1 <= 1, `selectErrQueue ${selectErrQueue}: ${w2 - w1} wake-ups while idle`);
      assert.equal(stamps, 64);
    } finally {
      a.udpClose(tx);
      a.udpBatchClose!(h);
      recv.sock.close();
    }
  }
});

test('close is idempotent; a closed socket refuses use but keeps its stats', { skip }, () => {
  const a = addon();
  const { sock } = openRecorder();
  sock.close();
  sock.close();
  assert.throws(() => sock.send(0), /closed/);
  assert.throws(() => sock.localPort(), /closed/);
  assert.equal(sock.stats().rxDatagrams, 0);
  const h = a.udpBatchOpen!(4, '127.0.0.1', 0, () => {});
  a.udpBatchClose!(h);
  a.udpBatchClose!(h);
  assert.throws(() => a.udpBatchSend!(h, 0), /closed/);
});

test('receiveBuffer sets the receive queue (root: past net.core.rmem_max)', { skip }, () => {
  const a = addon();
  const h0 = a.udpBatchOpen!(4, '127.0.0.1', 0, () => {});
  const h1 = a.udpBatchOpen!(4, '127.0.0.1', 0, () => {}, { receiveBuffer: 4 << 20 });
  try {
    const base = a.udpBatchStats!(h0).receiveBuffer;
    const big = a.udpBatchStats!(h1).receiveBuffer;
    assert.ok(base > 0, `default SO_RCVBUF ${base}`);
    // The kernel doubles the size asked for; without CAP_NET_ADMIN it caps at rmem_max.
    if (process.getuid?.() === 0) assert.equal(big, 8 << 20);
    else assert.ok(big >= base);
  } finally {
    a.udpBatchClose!(h0);
    a.udpBatchClose!(h1);
  }
  assert.equal(a.udpBatchStats!(h1).receiveBuffer, 0);
  assert.throws(() => a.udpBatchOpen!(4, '127.0.0.1', 0, () => {}, { receiveBuffer: -1 }), RangeError);
});

test('bad arguments throw TypeError / RangeError, never crash', { skip }, async () => {
  const a = addon();
  const open = a.udpBatchOpen!.bind(a);
  const cb = () => {};
  assert.throws(() => open(4, '127.0.0.1', 0, cb, { batch: 0 }), RangeError);
  assert.throws(() => open(4, '127.0.0.1', 0, cb, { batch: 257 }), RangeError);
  assert.throws(() => open(4, '127.0.0.1', 0, cb, { batch: 1.5 }), RangeError);
  assert.throws(() => open(4, '127.0.0.1', 0, cb, { slotBytes: 47 }), RangeError);
  assert.throws(() => open(4, '127.0.0.1', 0, cb, { slotBytes: 65537 }), RangeError);
  assert.throws(() => open(4, '127.0.0.1', 0, cb, { steerGroupSize: 0 }), RangeError);
  assert.throws(() => open(4, '127.0.0.1', 0, cb, { reusePort: 1 as unknown as boolean }), TypeError);
  assert.throws(() => open(5 as 4, '127.0.0.1', 0, cb), RangeError);
  assert.throws(() => open(4, '127.0.0.256', 0, cb), TypeError);
  assert.throws(() => open(4, '::1', 0, cb), TypeError);
  assert.throws(() => open(6, '1.2.3.4', 0, cb), TypeError);
  assert.throws(() => open(4, '', 0, cb), TypeError);
  assert.throws(() => open(4, '127.0.0.1\0x', 0, cb), TypeError);
  assert.throws(() => open(4, '127.0.0.1', 65536, cb), RangeError);
  assert.throws(() => open(4, '127.0.0.1', 0, 'cb' as unknown as () => void), TypeError);
  assert.throws(() => open(4, '127.0.0.1', 0, cb, 7 as unknown as object), TypeError);
  assert.throws(() => a.udpBatchSend!({} as never, 1), TypeError);
  assert.throws(() => a.udpBatchSend!(null as never, 1), TypeError);
  // A handle of the other socket kind is refused both ways.
  const u = a.udpOpen(4, '127.0.0.1', 0, cb);
  assert.throws(() => a.udpBatchSend!(u as never, 0), TypeError);
  a.udpClose(u);

  const recv = await dgramReceiver('udp4');
  const { sock } = openRecorder({ batch: 4, slotBytes: 64 });
  try {
    assert.throws(() => a.udpSend(sock as never, Buffer.alloc(1), '127.0.0.1', 1), TypeError);
    assert.throws(() => sock.send(5), RangeError);
    assert.throws(() => sock.send(-1), RangeError);
    const to = { family: 4 as const, port: recv.port, words: LOOP4 };
    setTxSlot(sock, 0, Buffer.alloc(48), to, 0);
    setTxSlot(sock, 1, Buffer.alloc(48), { ...to, family: 6 }, 0);
    assert.throws(() => sock.send(2), /slot 1: family/);
    setTxSlot(sock, 1, Buffer.alloc(40), to, TX_STAMP);
    assert.throws(() => sock.send(2), /slot 1: TX_STAMP/);
    setTxSlot(sock, 1, Buffer.alloc(48), { ...to, port: 0 }, 0);
    assert.throws(() => sock.send(2), /slot 1: port/);
    setTxSlot(sock, 1, Buffer.alloc(48), to, 4);
    assert.throws(() => sock.send(2), /slot 1: unknown flags/);
    setTxSlot(sock, 1, Buffer.alloc(48), to, 0);
    sock.txMeta[META_INTS] = 65;
    assert.throws(() => sock.send(2), /slot 1: len/);
    sock.txMeta[META_INTS] = -1;
    assert.throws(() => sock.send(2), /slot 1: len/);
    sock.txMeta[META_INTS] = 48;
    sock.txOffsetNs[0] = Number.NaN;
    assert.throws(() => sock.send(2), RangeError);
    sock.txOffsetNs[0] = 0.5;
    assert.throws(() => sock.send(2), RangeError);
    sock.txOffsetNs[0] = 0;
    assert.equal(sock.stats().txDatagrams, 0, 'a refused batch sent something');
    assert.equal(sock.send(2), 2);
    await waitFor(() => recv.msgs.length >= 2, 'datagrams');
  } finally {
    sock.close();
    recv.sock.close();
  }
});

test('a failed send is counted and skipped; the rest of the batch goes out', { skip }, async () => {
  const recv = await dgramReceiver('udp4');
  const { sock } = openRecorder({ batch: 3 });
  try {
    const to = { family: 4 as const, port: recv.port, words: LOOP4 };
    setTxSlot(sock, 0, Buffer.alloc(48, 1), to, TX_WANT_TIMESTAMP);
    // 255.255.255.255 without SO_BROADCAST: EACCES.
    setTxSlot(sock, 1, Buffer.alloc(48, 2), { ...to, words: [0xffffffff | 0, 0, 0, 0] }, TX_WANT_TIMESTAMP);
    setTxSlot(sock, 2, Buffer.alloc(48, 3), to, TX_WANT_TIMESTAMP);
    assert.equal(sock.send(3), 3);
    // A failed send does not consume a TX-stamp id (nor does the kernel's key advance).
    assert.deepEqual([...sock.txId], [0, -1, 1]);
    const st = sock.stats();
    assert.equal(st.txErrors, 1);
    assert.equal(st.txDatagrams, 2);
    await waitFor(() => recv.msgs.length >= 2, 'datagrams');
  } finally {
    sock.close();
    recv.sock.close();
  }
});

test('openBatchUdpSocket is null without the addon or its batch exports', () => {
  const onRx = () => {};
  assert.equal(openBatchUdpSocket({ family: 4, address: '127.0.0.1', port: 0, onRx, addon: null }), null);
  const old = { ...(native ?? {}), udpBatchOpen: undefined } as unknown as NativeAddon;
  assert.equal(openBatchUdpSocket({ family: 4, address: '127.0.0.1', port: 0, onRx, addon: old }), null);
});

test('setRef(false) lets the process exit with the socket open', { skip }, async () => {
  const { spawnSync } = await import('node:child_process');
  const mod = new URL('../../src/io/batch-udp.js', import.meta.url).href;
  const r = spawnSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `const { openBatchUdpSocket } = await import(${JSON.stringify(mod)});
       const s = openBatchUdpSocket({ family: 4, address: '127.0.0.1', port: 0, onRx() {} });
       s.setRef(false); console.log('ok');`,
    ],
    { timeout: 10_000, encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'ok');
});
