import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  native,
  nativeLoadError,
  type NativeAddon,
  type NativeUdpCallback,
  type NativeUdpHandle,
} from '../../src/io/native.js';
import { realtimeNow } from '../../src/io/realtime.js';
import { openUdpSocket, type OpenUdpOptions, type TimestampedSocket } from '../../src/io/udp.js';
import type { Endpoint } from '../../src/engine/types.js';

const skip = process.env.RUBIDIUM_NO_NATIVE === '1' ? 'RUBIDIUM_NO_NATIVE=1' : false;
const MS = 1_000_000n;

interface Rx {
  data: Uint8Array;
  from: Endpoint;
  rx: bigint;
  at: bigint;
}

function recorder(): {
  rx: Rx[];
  tx: { id: number; ts: bigint }[];
  errors: Error[];
  opts: Pick<OpenUdpOptions, 'onDatagram' | 'onTxTimestamp' | 'onError'>;
} {
  const rx: Rx[] = [];
  const tx: { id: number; ts: bigint }[] = [];
  const errors: Error[] = [];
  return {
    rx,
    tx,
    errors,
    opts: {
      onDatagram: (data, from, rxRealtime) =>
        rx.push({ data: new Uint8Array(data), from, rx: rxRealtime, at: realtimeNow() }),
      onTxTimestamp: (id, ts) => tx.push({ id, ts }),
      onError: (e) => errors.push(e),
    },
  };
}

async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
}

/**
 * The kernel turns RX software timestamping on asynchronously (a static key flipped from a
 * workqueue) when the first timestamping socket appears, so the first datagrams may arrive
 * unstamped (udp.ts then falls back to realtimeNow()). To test real kernel stamps, probe through
 * the raw addon until a stamped datagram arrives; the probe pair keeps timestamping enabled.
 */
async function warm(family: 4 | 6): Promise<() => void> {
  const addon = native!;
  const lo = family === 4 ? '127.0.0.1' : '::1';
  let stamped = false;
  const r = addon.udpOpen(family, lo, 0, (kind, ...args) => {
    if (kind === 'rx' && args[3] !== null) stamped = true;
  });
  const s = addon.udpOpen(family, lo, 0, () => {});
  const deadline = Date.now() + 3000;
  while (!stamped && Date.now() < deadline) {
    addon.udpSend(s, new Uint8Array([1]), lo, addon.udpLocalPort(r));
    await new Promise((res) => setTimeout(res, 10));
  }
  assert.ok(stamped, 'kernel never delivered an RX timestamp');
  return () => {
    addon.udpClose(r);
    addon.udpClose(s);
  };
}

async function exchange(family: 4 | 6): Promise<void> {
  const lo = family === 4 ? '127.0.0.1' : '::1';
  const unwarm = await warm(family);
  const client = recorder();
  const server = recorder();
  let srv: TimestampedSocket | null = null;
  const s = await openUdpSocket({
    family,
    address: lo,
    port: 0,
    ...server.opts,
    onDatagram: (data, from, rx) => {
      server.opts.onDatagram(data, from, rx);
      srv!.send(data, from); // echo
    },
  });
  srv = s;
  const c = await openUdpSocket({ family, address: lo, port: 0, ...client.opts });
  try {
    assert.equal(c.timestamping, 'kernel');
    assert.equal(s.timestamping, 'kernel');
    const to = { address: lo, port: s.localPort() };
    const ids = [0, 1, 2].map((i) => c.send(new Uint8Array([i, 1, 2, 3]), to));
    assert.deepEqual(ids, [0, 1, 2]);
    await until(() => client.rx.length === 3 && client.tx.length === 3 && server.tx.length === 3);
    assert.equal(server.rx.length, 3);
    assert.equal(client.rx.length, 3);
    assert.deepEqual(
      client.tx.map((t) => t.id),
      [0, 1, 2],
    );
    assert.deepEqual(
      server.tx.map((t) => t.id),
      [0, 1, 2],
    );
    for (let i = 0; i < 3; i++) {
      const req = server.rx[i]!;
      assert.deepEqual([...req.data], [i, 1, 2, 3]);
      assert.deepEqual(req.from, { address: lo, port: c.localPort() });
      for (const r of [req, client.rx[i]!]) {
        assert.ok(r.rx <= r.at, 'RX stamp not after delivery');
        assert.ok(r.at - r.rx < 50n * MS, `RX stamp ${r.at - r.rx} ns before delivery`);
      }
      // Loopback order of events: client TX < server RX <= server TX < client RX.
      assert.ok(client.tx[i]!.ts <= req.rx);
      assert.ok(req.rx <= server.tx[i]!.ts);
      assert.ok(server.tx[i]!.ts <= client.rx[i]!.rx);
    }
    assert.deepEqual(client.errors, []);
    assert.deepEqual(server.errors, []);
  } finally {
    c.close();
    s.close();
    c.close();
    s.close();
    unwarm();
  }
  assert.throws(() => c.send(new Uint8Array(1), { address: lo, port: 9 }), /closed/);
  assert.throws(() => c.localPort(), /closed/);
}

test('native addon is loaded', { skip }, () => {
  assert.ok(native, `native addon failed to load: ${nativeLoadError}`);
});

test('IPv4 loopback exchange between native sockets: kernel RX/TX stamps, ids 0,1,2', { skip }, async () => {
  await exchange(4);
});

test('IPv6 loopback exchange between native sockets', { skip }, async () => {
  await exchange(6);
});

test('dgram fallback (preferNative: false): daemon RX stamps, no TX stamps', async () => {
  for (const family of [4, 6] as const) {
    const lo = family === 4 ? '127.0.0.1' : '::1';
    const server = recorder();
    const client = recorder();
    let srv: TimestampedSocket | null = null;
    const s = await openUdpSocket({
      family,
      address: lo,
      port: 0,
      preferNative: false,
      ...server.opts,
      onDatagram: (d, from, rx) => {
        server.opts.onDatagram(d, from, rx);
        assert.equal(srv!.send(d, from), -1);
      },
    });
    srv = s;
    const c = await openUdpSocket({ family, address: lo, port: 0, preferNative: false, ...client.opts });
    try {
      assert.equal(s.timestamping, 'daemon');
      assert.equal(c.timestamping, 'daemon');
      for (let i = 0; i < 3; i++) assert.equal(c.send(new Uint8Array([i]), { address: lo, port: s.localPort() }), -1);
      await until(() => client.rx.length === 3);
      assert.equal(client.rx.length, 3);
      assert.deepEqual(server.rx[0]!.from, { address: lo, port: c.localPort() });
      for (const r of [...server.rx, ...client.rx]) assert.ok(r.at - r.rx >= 0n && r.at - r.rx < 50n * MS);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(client.tx.length + server.tx.length, 0);
    } finally {
      c.close();
      c.close();
      s.close();
      s.close();
    }
    assert.throws(() => c.send(new Uint8Array(1), { address: lo, port: 9 }), /closed/);
  }
});

test('native and dgram sockets interoperate', { skip }, async () => {
  const n = recorder();
  const d = recorder();
  const ns = await openUdpSocket({ family: 4, address: '127.0.0.1', port: 0, ...n.opts });
  const ds = await openUdpSocket({ family: 4, address: '127.0.0.1', port: 0, preferNative: false, ...d.opts });
  try {
    ns.send(new Uint8Array([7]), { address: '127.0.0.1', port: ds.localPort() });
    ds.send(new Uint8Array([8]), { address: '127.0.0.1', port: ns.localPort() });
    await until(() => n.rx.length === 1 && d.rx.length === 1);
    assert.deepEqual([...d.rx[0]!.data], [7]);
    assert.deepEqual([...n.rx[0]!.data], [8]);
  } finally {
    ns.close();
    ds.close();
  }
});

test('bind failures reject; bad ports are rejected up front', async () => {
  const base = { onDatagram: () => {}, onTxTimestamp: () => {} };
  for (const preferNative of [true, false]) {
    if (preferNative && !native) continue;
    await assert.rejects(
      openUdpSocket({ family: 4, address: '192.0.2.1', port: 0, preferNative, ...base }),
      (e: Error & { code?: string }) => e.code === 'EADDRNOTAVAIL',
    );
    await assert.rejects(
      openUdpSocket({ family: 4, address: '127.0.0.1', port: 70000, preferNative, ...base }),
      RangeError,
    );
    const s = await openUdpSocket({ family: 4, address: '127.0.0.1', port: 0, preferNative, ...base });
    await assert.rejects(
      openUdpSocket({ family: 4, address: '127.0.0.1', port: s.localPort(), preferNative, ...base }),
      (e: Error & { code?: string }) => e.code === 'EADDRINUSE',
    );
    s.close();
  }
});

test('a refused send returns -1 and reports through onError (native)', { skip }, async () => {
  const r = recorder();
  const s = await openUdpSocket({ family: 4, address: '0.0.0.0', port: 0, ...r.opts });
  try {
    assert.equal(s.send(new Uint8Array([1]), { address: '255.255.255.255', port: 9 }), -1);
    assert.equal(r.errors.length, 1);
    assert.equal((r.errors[0] as Error & { code?: string }).code, 'EACCES');
    assert.throws(() => s.send(new Uint8Array([1]), { address: 'not-an-ip', port: 9 }), TypeError);
  } finally {
    s.close();
  }
});

test('a datagram without a kernel RX stamp gets realtimeNow() (fake addon)', async () => {
  let cb: NativeUdpCallback | null = null;
  const fake = {
    udpOpen: (_f: 4 | 6, _a: string, _p: number, onEvent: NativeUdpCallback) => {
      cb = onEvent;
      return { tsMode: 'timestamping' } as NativeUdpHandle;
    },
    udpSend: () => 5,
    udpLocalPort: () => 1234,
    udpClose: () => {},
  } as unknown as NativeAddon;
  const r = recorder();
  const s = await openUdpSocket({ family: 4, address: '127.0.0.1', port: 0, addon: fake, ...r.opts });
  assert.equal(s.timestamping, 'kernel');
  assert.equal(s.send(new Uint8Array(1), { address: '127.0.0.1', port: 9 }), 5);
  const before = realtimeNow();
  cb!('rx', Buffer.from([1]), '127.0.0.1', 99, null);
  cb!('rx', Buffer.from([2]), '127.0.0.1', 99, 42n);
  cb!('tx', 5, 77n);
  cb!('error', 'recvmsg: boom');
  assert.ok(r.rx[0]!.rx >= before && r.rx[0]!.rx <= realtimeNow());
  assert.equal(r.rx[1]!.rx, 42n);
  assert.deepEqual(r.rx[1]!.from, { address: '127.0.0.1', port: 99 });
  assert.deepEqual(r.tx, [{ id: 5, ts: 77n }]);
  assert.match(r.errors[0]!.message, /boom/);
  s.close();
  cb!('rx', Buffer.from([3]), '127.0.0.1', 99, 1n); // after close: dropped
  assert.equal(r.rx.length, 2);
});
