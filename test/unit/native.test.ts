import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import {
  CLOCK_MONOTONIC,
  CLOCK_REALTIME,
  native,
  nativeLoadError,
  type NativeAddon,
  type NativeUdpHandle,
} from '../../src/io/native.js';
import { realtimeNow, realtimeNowFallback, realtimeSource } from '../../src/io/realtime.js';

// Without the addon these tests fail loudly, unless the run says native is off on purpose.
const skip = process.env.RUBIDIUM_NO_NATIVE === '1' ? 'RUBIDIUM_NO_NATIVE=1' : false;
const addonPath = fileURLToPath(new URL('../../../build/Release/rubidium.node', import.meta.url));

function addon(): NativeAddon {
  assert.ok(native, `native addon failed to load: ${nativeLoadError}`);
  return native;
}

function nowFromDateNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

function absBig(x: bigint): bigint {
  return x < 0n ? -x : x;
}

const MS = 1_000_000n;

/**
 * The kernel turns RX software timestamping on asynchronously (a static key flipped from a
 * workqueue) when the first timestamping socket appears, so the first datagrams after that may
 * come without an RX stamp. Opens a socket pair and sends probes until one comes back stamped;
 * the returned pair keeps timestamping enabled until it is closed.
 */
async function warmRxTimestamps(a: NativeAddon): Promise<() => void> {
  let stamped = false;
  const r = a.udpOpen(4, '127.0.0.1', 0, (kind, ...args) => {
    if (kind === 'rx' && args[3] !== null) stamped = true;
  });
  const s = a.udpOpen(4, '127.0.0.1', 0, () => {});
  const deadline = Date.now() + 3000;
  while (!stamped && Date.now() < deadline) {
    a.udpSend(s, Buffer.from('warm'), '127.0.0.1', a.udpLocalPort(r));
    await new Promise((res) => setTimeout(res, 10));
  }
  assert.ok(stamped, 'kernel never delivered an RX timestamp');
  return () => {
    a.udpClose(r);
    a.udpClose(s);
  };
}

test('native addon is loaded', { skip }, () => {
  assert.equal(nativeLoadError, null);
  assert.ok(native);
  assert.equal(realtimeSource, 'clock_gettime');
});

test('clockGettime(CLOCK_REALTIME) agrees with Date.now within 50 ms', { skip }, () => {
  const a = addon();
  const t = a.clockGettime(CLOCK_REALTIME);
  assert.equal(typeof t, 'bigint');
  assert.ok(absBig(t - nowFromDateNs()) < 50n * MS, `clock_gettime ${t} vs Date.now`);
  assert.ok(absBig(realtimeNow() - nowFromDateNs()) < 50n * MS);
  const m1 = a.clockGettime(CLOCK_MONOTONIC);
  const m2 = a.clockGettime(CLOCK_MONOTONIC);
  assert.ok(m2 >= m1);
});

test('realtime fallback (Date.now anchor + hrtime) is within 50 ms and monotonic', () => {
  const t1 = realtimeNowFallback();
  const t2 = realtimeNowFallback();
  assert.ok(t2 >= t1);
  assert.ok(absBig(t1 - nowFromDateNs()) < 50n * MS);
});

test('clockGettime rejects bad clock ids', { skip }, () => {
  const a = addon();
  const call = a.clockGettime as unknown as (...args: unknown[]) => bigint;
  assert.throws(() => call(), TypeError);
  assert.throws(() => call('0'), TypeError);
  assert.throws(() => call(0n), TypeError);
  assert.throws(() => call(1.5), RangeError);
  assert.throws(() => call(Number.NaN), RangeError);
  assert.throws(() => call(2 ** 40), RangeError);
  assert.throws(() => call(9999), RangeError);
});

test('adjtimeRead returns a sane kernel state', { skip }, () => {
  const s = addon().adjtimeRead();
  assert.ok(Math.abs(s.freqPpm) <= 512, `freq ${s.freqPpm}`);
  assert.equal(s.freqPpm, s.freqScaled / 65536);
  assert.ok(s.tickUs >= 9000 && s.tickUs <= 11000, `tick ${s.tickUs}`);
  assert.ok(Number.isInteger(s.status) && s.status >= 0);
  assert.ok(s.state >= 0 && s.state <= 5, `state ${s.state}`);
  assert.ok(s.maxErrorUs >= 0 && s.estErrorUs >= 0);
  assert.ok(s.tolerancePpm > 0);
  assert.equal(typeof s.timeNs, 'bigint');
  assert.ok(absBig(s.timeNs - nowFromDateNs()) < 50n * MS);
});

test('adjtime writing back the frequency just read leaves it unchanged', { skip }, () => {
  const a = addon();
  const before = a.adjtimeRead();
  const after = a.adjtime({ freqPpm: before.freqPpm });
  assert.equal(after.freqScaled, before.freqScaled);
  assert.equal(after.freqPpm, before.freqPpm);
  assert.equal(a.adjtimeRead().freqScaled, before.freqScaled);
  // An empty request is a plain read (modes = 0).
  assert.equal(a.adjtime({}).freqScaled, before.freqScaled);
});

test('adjtime validates every field before touching the clock', { skip }, () => {
  const a = addon();
  const before = a.adjtimeRead();
  const call = a.adjtime as unknown as (...args: unknown[]) => unknown;
  assert.throws(() => call(), TypeError);
  assert.throws(() => call(null), TypeError);
  assert.throws(() => call(5), TypeError);
  assert.throws(() => call({ freqPpm: '1' }), TypeError);
  assert.throws(() => call({ freqPpm: 1e9 }), RangeError);
  assert.throws(() => call({ freqPpm: 500.001 }), RangeError);
  assert.throws(() => call({ freqPpm: -501 }), RangeError);
  assert.throws(() => call({ freqPpm: Number.NaN }), RangeError);
  assert.throws(() => call({ freqPpm: Infinity }), RangeError);
  assert.throws(() => call({ setOffsetNs: 5 }), TypeError);
  assert.throws(() => call({ setOffsetNs: 2n ** 70n }), RangeError);
  assert.throws(() => call({ setOffsetNs: -(10n ** 19n) }), RangeError);
  assert.throws(() => call({ status: -1 }), RangeError);
  assert.throws(() => call({ status: 0x10000 }), RangeError);
  assert.throws(() => call({ clearStatus: 'x' }), TypeError);
  assert.throws(() => call({ maxErrorUs: -1 }), RangeError);
  assert.throws(() => call({ estErrorUs: 0.5 }), RangeError);
  // A valid field followed by an invalid one: nothing may have been applied.
  assert.throws(() => call({ freqPpm: before.freqPpm === 0 ? 1 : 0, maxErrorUs: -5 }), RangeError);
  const after = a.adjtimeRead();
  assert.equal(after.freqScaled, before.freqScaled);
  assert.equal(after.status, before.status);
});

test('udpOpen rejects bad arguments', { skip }, () => {
  const a = addon();
  const open = a.udpOpen as unknown as (...args: unknown[]) => NativeUdpHandle;
  const cb = (): void => {};
  assert.throws(() => open(), TypeError);
  assert.throws(() => open('4', '127.0.0.1', 0, cb), TypeError);
  assert.throws(() => open(5, '127.0.0.1', 0, cb), RangeError);
  assert.throws(() => open(4.5, '127.0.0.1', 0, cb), RangeError);
  assert.throws(() => open(4, 127, 0, cb), TypeError);
  assert.throws(() => open(4, '', 0, cb), TypeError);
  assert.throws(() => open(4, 'bogus', 0, cb), TypeError);
  assert.throws(() => open(4, '1.2.3.4.5', 0, cb), TypeError);
  assert.throws(() => open(4, '256.0.0.1', 0, cb), TypeError);
  assert.throws(() => open(4, '::1', 0, cb), TypeError);
  assert.throws(() => open(6, '127.0.0.1', 0, cb), TypeError);
  assert.throws(() => open(6, '::1%', 0, cb), TypeError);
  assert.throws(() => open(6, '::1%nosuchif0', 0, cb), TypeError);
  assert.throws(() => open(6, 'fe80::1%' + 'x'.repeat(100), 0, cb), TypeError);
  assert.throws(() => open(4, '127.0.0.1\0junk', 0, cb), TypeError);
  assert.throws(() => open(4, 'x'.repeat(100_000), 0, cb), TypeError);
  assert.throws(() => open(4, '127.0.0.1', -1, cb), RangeError);
  assert.throws(() => open(4, '127.0.0.1', 65536, cb), RangeError);
  assert.throws(() => open(4, '127.0.0.1', 1.5, cb), RangeError);
  assert.throws(() => open(4, '127.0.0.1', '123', cb), TypeError);
  assert.throws(() => open(4, '127.0.0.1', 0, 'cb'), TypeError);
  assert.throws(() => open(4, '127.0.0.1', 0, cb, 5), TypeError);
  assert.throws(() => open(4, '127.0.0.1', 0, cb, { reusePort: 'yes' }), TypeError);
  assert.throws(
    () => open(4, '192.0.2.1', 0, cb),
    (e: Error & { code?: string }) => e.code === 'EADDRNOTAVAIL' && /bind/.test(e.message),
  );
});

test('udpSend / udpLocalPort / udpClose reject bad handles and arguments; closed handles throw', { skip }, () => {
  const a = addon();
  const send = a.udpSend as unknown as (...args: unknown[]) => number;
  const port = a.udpLocalPort as unknown as (...args: unknown[]) => number;
  const close = a.udpClose as unknown as (...args: unknown[]) => void;
  const h = a.udpOpen(4, '127.0.0.1', 0, () => {});
  try {
    const p = a.udpLocalPort(h);
    assert.ok(p > 0 && p < 65536);
    for (const bad of [undefined, null, 5, 'h', {}, [], () => {}]) {
      assert.throws(() => send(bad, Buffer.from('x'), '127.0.0.1', p), TypeError);
      assert.throws(() => port(bad), TypeError);
      assert.throws(() => close(bad), TypeError);
    }
    assert.throws(() => send(h, 'str', '127.0.0.1', p), TypeError);
    assert.throws(() => send(h, [1, 2], '127.0.0.1', p), TypeError);
    assert.throws(() => send(h, new Uint16Array(2), '127.0.0.1', p), TypeError);
    assert.throws(() => send(h, new ArrayBuffer(4), '127.0.0.1', p), TypeError);
    assert.throws(() => send(h, new Uint8Array(70_000), '127.0.0.1', p), RangeError);
    assert.throws(() => send(h, Buffer.from('x'), 'nope', p), TypeError);
    assert.throws(() => send(h, Buffer.from('x'), '::1', p), TypeError);
    assert.throws(() => send(h, Buffer.from('x'), '127.0.0.1', 0), RangeError);
    assert.throws(() => send(h, Buffer.from('x'), '127.0.0.1', 65536), RangeError);
    assert.throws(() => send(h, Buffer.from('x'), '127.0.0.1', Number.NaN), RangeError);
    assert.throws(() => send(h, Buffer.from('x'), '127.0.0.1'), TypeError);
    // A send the kernel refuses (broadcast without SO_BROADCAST) throws a system error.
    assert.throws(
      () => send(h, Buffer.from('x'), '255.255.255.255', 9),
      (e: Error & { code?: string }) => e.code === 'EACCES',
    );
  } finally {
    a.udpClose(h);
  }
  a.udpClose(h); // idempotent
  assert.throws(() => a.udpSend(h, Buffer.from('x'), '127.0.0.1', 9), /socket is closed/);
  assert.throws(() => a.udpLocalPort(h), /socket is closed/);
  assert.throws(() => a.udpSetRef(h, false), /socket is closed/);
});

test('port reuse: EADDRINUSE without reusePort, allowed with it', { skip }, () => {
  const a = addon();
  const h1 = a.udpOpen(4, '127.0.0.1', 0, () => {}, { reusePort: true });
  const p = a.udpLocalPort(h1);
  try {
    assert.throws(
      () => a.udpOpen(4, '127.0.0.1', p, () => {}),
      (e: Error & { code?: string }) => e.code === 'EADDRINUSE',
    );
    const h2 = a.udpOpen(4, '127.0.0.1', p, () => {}, { reusePort: true });
    assert.equal(a.udpLocalPort(h2), p);
    a.udpClose(h2);
  } finally {
    a.udpClose(h1);
  }
  // Closed: the port is free again.
  const h3 = a.udpOpen(4, '127.0.0.1', p, () => {});
  a.udpClose(h3);
});

test('raw native exchange: RX stamps and TX ids 0,1,2', { skip }, async () => {
  const a = addon();
  const unwarm = await warmRxTimestamps(a);
  const rx: { data: Buffer; port: number; ts: bigint | null; at: bigint }[] = [];
  const tx: { id: number; ts: bigint }[] = [];
  const b = a.udpOpen(4, '127.0.0.1', 0, (kind, ...args) => {
    if (kind === 'rx')
      rx.push({ data: args[0] as Buffer, port: args[2] as number, ts: args[3] as bigint | null, at: realtimeNow() });
  });
  const s = a.udpOpen(4, '127.0.0.1', 0, (kind, ...args) => {
    if (kind === 'tx') tx.push({ id: args[0] as number, ts: args[1] as bigint });
  });
  try {
    assert.equal(s.tsMode, 'timestamping');
    const bp = a.udpLocalPort(b);
    const ids = [0, 1, 2].map((i) => a.udpSend(s, Buffer.from([i, 0xaa]), '127.0.0.1', bp));
    assert.deepEqual(ids, [0, 1, 2]);
    const deadline = Date.now() + 2000;
    while ((rx.length < 3 || tx.length < 3) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    assert.equal(rx.length, 3);
    assert.deepEqual(
      tx.map((t) => t.id),
      [0, 1, 2],
    );
    for (let i = 0; i < 3; i++) {
      assert.deepEqual([...rx[i]!.data], [i, 0xaa]);
      assert.equal(rx[i]!.port, a.udpLocalPort(s));
      assert.ok(rx[i]!.ts !== null);
      assert.ok(rx[i]!.ts! <= rx[i]!.at && rx[i]!.at - rx[i]!.ts! < 50n * MS, 'RX stamp within 50 ms before delivery');
      assert.ok(tx[i]!.ts <= rx[i]!.ts!, 'TX stamp precedes RX stamp on loopback');
    }
  } finally {
    a.udpClose(s);
    a.udpClose(b);
    unwarm();
  }
});

test('failed sends do not consume TX ids (addon counter stays in step with the kernel)', { skip }, async () => {
  const a = addon();
  const tx: number[] = [];
  const r = a.udpOpen(4, '127.0.0.1', 0, () => {});
  const s = a.udpOpen(4, '0.0.0.0', 0, (kind, ...args) => {
    if (kind === 'tx') tx.push(args[0] as number);
  });
  try {
    const p = a.udpLocalPort(r);
    const got: (number | string)[] = [];
    const trySend = (data: Buffer, addr: string): void => {
      try {
        got.push(a.udpSend(s, data, addr, p));
      } catch (e) {
        got.push((e as { code: string }).code);
      }
    };
    trySend(Buffer.from('a'), '127.0.0.1');
    trySend(Buffer.from('a'), '255.255.255.255');
    trySend(Buffer.from('a'), '127.0.0.1');
    trySend(Buffer.alloc(65535), '127.0.0.1');
    trySend(Buffer.from('a'), '127.0.0.1');
    assert.deepEqual(got, [0, 'EACCES', 1, 'EMSGSIZE', 2]);
    const deadline = Date.now() + 2000;
    while (tx.length < 3 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 5));
    assert.deepEqual(tx, [0, 1, 2]);
  } finally {
    a.udpClose(r);
    a.udpClose(s);
  }
});

test('a collected, unclosed handle closes its socket (GC-safe)', { skip }, async () => {
  const a = addon();
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  let port = 0;
  (() => {
    const h = a.udpOpen(4, '127.0.0.1', 0, () => {});
    port = a.udpLocalPort(h);
  })();
  let reopened: NativeUdpHandle | null = null;
  for (let i = 0; i < 50 && !reopened; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
    try {
      reopened = a.udpOpen(4, '127.0.0.1', port, () => {});
    } catch (e) {
      if ((e as { code?: string }).code !== 'EADDRINUSE') throw e;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  assert.ok(reopened, 'port still in use after the handle was collected');
  a.udpClose(reopened);
});

// Child-process checks: the process must survive (or exit cleanly) in these situations.
function runChild(code: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--expose-gc', '-e', code], {
    encoding: 'utf8',
    timeout: 20_000,
    env: { ...process.env, ADDON: addonPath },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('an exception thrown by onEvent becomes uncaughtException; the socket keeps working', { skip }, () => {
  const r = runChild(`
    const a = require(process.env.ADDON);
    let caught = 0, got = 0;
    process.on('uncaughtException', (e) => { if (e.message === 'boom') caught++; else throw e; });
    const b = a.udpOpen(4, '127.0.0.1', 0, (k) => { if (k === 'rx') { got++; if (got === 1) throw new Error('boom'); } });
    const s = a.udpOpen(4, '127.0.0.1', 0, () => {});
    const p = a.udpLocalPort(b);
    for (let i = 0; i < 3; i++) a.udpSend(s, Buffer.from('x'), '127.0.0.1', p);
    setTimeout(() => { a.udpClose(b); a.udpClose(s); console.log(JSON.stringify({ caught, got })); }, 300);
  `);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { caught: 1, got: 3 });
});

test('closing inside the callback, exiting with open sockets, and unref are all clean', { skip }, () => {
  const r = runChild(`
    const a = require(process.env.ADDON);
    let n = 0;
    const b = a.udpOpen(6, '::1', 0, (k) => { if (k === 'rx') { n++; a.udpClose(b); a.udpClose(b); } });
    const s = a.udpOpen(6, '::1', 0, () => {});
    for (let i = 0; i < 5; i++) a.udpSend(s, Buffer.from('x'), '::1', a.udpLocalPort(b));
    const idle = a.udpOpen(4, '127.0.0.1', 0, () => {});
    a.udpSetRef(idle, false); // must not keep the loop alive
    setTimeout(() => {
      console.log(n);
      a.udpOpen(4, '127.0.0.1', 0, () => {}); // left open on purpose
      process.exit(0);
    }, 200);
  `);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), '1');
  const r2 = runChild(`
    const a = require(process.env.ADDON);
    const h = a.udpOpen(4, '127.0.0.1', 0, () => {});
    a.udpSetRef(h, false);
    // Nothing else keeps the loop alive: the process must exit by itself.
  `);
  assert.equal(r2.status, 0, r2.stderr);
});

test('random garbage arguments never crash the process', { skip }, () => {
  const r = runChild(`
    const a = require(process.env.ADDON);
    const vals = [undefined, null, 0, -1, 4, 6, 65535, 65536, 1e300, NaN, -0, 1.5, '', '127.0.0.1', '::1', 'x'.repeat(5000),
      '1.2.3.4%eth0', '::%1', 0n, 2n ** 64n, {}, [], Buffer.alloc(0), new Uint8Array(3), new Float64Array(2),
      Symbol('s'), () => {}, { reusePort: true }, { freqPpm: 'a' }, { setOffsetNs: 'x' }, { status: 1e10 }, true];
    let seed = 12345;
    const rnd = (n) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
    const handles = [];
    let thrown = 0, calls = 0;
    const fns = ['clockGettime', 'udpOpen', 'udpSend', 'udpLocalPort', 'udpClose', 'udpSetRef'];
    for (let i = 0; i < 20000; i++) {
      const f = fns[rnd(fns.length)];
      const n = rnd(6);
      const args = [];
      for (let j = 0; j < n; j++) args.push(rnd(4) === 0 && handles.length ? handles[rnd(handles.length)] : vals[rnd(vals.length)]);
      calls++;
      try { const r = a[f](...args); if (f === 'udpOpen') handles.push(r); } catch (e) { thrown++; }
    }
    // adjtime only with arguments that must be rejected before any clock change.
    for (const bad of vals) { try { a.adjtime({ freqPpm: bad === 0 ? 'bad' : bad, maxErrorUs: -1 }); } catch { thrown++; } }
    for (const h of handles) a.udpClose(h);
    global.gc();
    console.log(JSON.stringify({ calls, thrown }));
  `);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { calls: number; thrown: number };
  assert.ok(out.thrown > 0 && out.calls === 20000);
});
