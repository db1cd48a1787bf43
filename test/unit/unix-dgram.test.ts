import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openUnixDgramSocket, unixDgramUnavailableReason, type UnixDgramSocket } from '../../src/io/unix-dgram.js';
import { makeTempDir, removeTempDir, waitFor } from '../support/netns.js';

const skip = process.env.RUBIDIUM_NO_NATIVE === '1' ? 'RUBIDIUM_NO_NATIVE=1' : false;

interface Rx {
  data: string;
  from: string;
}

function receiver(path: string, mode?: number): { sock: UnixDgramSocket; got: Rx[]; errors: Error[] } {
  const got: Rx[] = [];
  const errors: Error[] = [];
  const sock = openUnixDgramSocket({
    path,
    ...(mode !== undefined ? { mode } : {}),
    onDatagram: (d, from) => got.push({ data: d.toString(), from }),
    onError: (e) => errors.push(e),
  });
  return { sock, got, errors };
}

test('unix-dgram: the addon provides Unix datagram sockets', { skip }, () => {
  assert.equal(unixDgramUnavailableReason(), null);
});

test('unix-dgram: two bound sockets exchange datagrams and see each other’s paths', { skip }, async () => {
  const dir = makeTempDir('unixdgram');
  const aPath = join(dir, 'a.sock');
  const bPath = join(dir, 'b.sock');
  const a = receiver(aPath, 0o660);
  const b = receiver(bPath);
  try {
    assert.equal(a.sock.path, aPath);
    assert.ok(fs.lstatSync(aPath).isSocket());
    assert.equal(fs.statSync(aPath).mode & 0o777, 0o660);
    assert.equal(a.sock.send(Buffer.from('ping'), bPath), true);
    await waitFor(() => b.got.length > 0, { timeoutMs: 2000, what: 'datagram at b' });
    assert.deepEqual(b.got, [{ data: 'ping', from: aPath }]);
    assert.equal(b.sock.send(new Uint8Array([0x70, 0x6f, 0x6e, 0x67]), b.got[0]!.from), true);
    await waitFor(() => a.got.length > 0, { timeoutMs: 2000, what: 'reply at a' });
    assert.deepEqual(a.got, [{ data: 'pong', from: bPath }]);
    // An empty datagram is a datagram too; a big one arrives whole.
    const big = Buffer.alloc(60000, 0x41);
    assert.equal(a.sock.send(Buffer.alloc(0), bPath), true);
    assert.equal(a.sock.send(big, bPath), true);
    await waitFor(() => b.got.length === 3, { timeoutMs: 2000, what: 'empty and big datagrams' });
    assert.equal(b.got[1]!.data, '');
    assert.equal(b.got[2]!.data, big.toString());
  } finally {
    a.sock.close();
    b.sock.close();
    removeTempDir(dir);
  }
  // close() removed the socket files it created.
  assert.equal(fs.existsSync(aPath), false);
});

test('unix-dgram: an unbound sender is seen as ""; a non-socket file is never replaced', { skip }, async () => {
  const dir = makeTempDir('unixdgram');
  const p = join(dir, 'srv.sock');
  const r = receiver(p);
  const tx = openUnixDgramSocket({});
  try {
    assert.equal(tx.path, '');
    assert.equal(tx.send(Buffer.from('hello'), p), true);
    await waitFor(() => r.got.length > 0, { timeoutMs: 2000, what: 'datagram' });
    assert.deepEqual(r.got, [{ data: 'hello', from: '' }]);
  } finally {
    tx.close();
    r.sock.close();
  }
  // A regular file in the way is never deleted.
  const file = join(dir, 'plain');
  fs.writeFileSync(file, 'keep');
  assert.throws(() => openUnixDgramSocket({ path: file }), /not a socket is in the way/);
  assert.equal(fs.readFileSync(file, 'utf8'), 'keep');
  removeTempDir(dir);
});

test('unix-dgram: stale socket file left by a killed process is replaced', { skip }, async () => {
  const dir = makeTempDir('unixdgram');
  const p = join(dir, 'left.sock');
  try {
    // Bind in a child that exits without closing: the socket file stays behind.
    const mod = fileURLToPath(new URL('../../src/io/unix-dgram.js', import.meta.url));
    const r = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const m = await import(${JSON.stringify(mod)}); m.openUnixDgramSocket({ path: ${JSON.stringify(p)} }); process.exit(0);`,
      ],
      { encoding: 'utf8', timeout: 10000 },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.ok(fs.lstatSync(p).isSocket(), 'child left its socket file');
    const rx = receiver(p);
    const tx = openUnixDgramSocket({});
    try {
      assert.equal(tx.send(Buffer.from('x'), p), true);
      await waitFor(() => rx.got.length > 0, { timeoutMs: 2000, what: 'datagram' });
    } finally {
      tx.close();
      rx.sock.close();
    }
  } finally {
    removeTempDir(dir);
  }
});

test('unix-dgram: Linux abstract names', { skip }, async () => {
  const name = `@rubidium-test-${process.pid}-${Date.now()}`;
  const r = receiver(name);
  const dir = makeTempDir('unixdgram');
  const s = receiver(join(dir, 's.sock'));
  const s2 = openUnixDgramSocket({ path: `${name}-b` });
  try {
    assert.equal(r.sock.path, name);
    assert.equal(s.sock.send(Buffer.from('abs'), name), true);
    await waitFor(() => r.got.length > 0, { timeoutMs: 2000, what: 'datagram on abstract socket' });
    assert.deepEqual(r.got, [{ data: 'abs', from: join(dir, 's.sock') }]);
    assert.equal(s2.send(Buffer.from('abs2'), name), true);
    await waitFor(() => r.got.length > 1, { timeoutMs: 2000, what: 'datagram from abstract sender' });
    assert.deepEqual(r.got[1], { data: 'abs2', from: `${name}-b` });
    // Binding the same abstract name twice fails with the kernel's reason.
    assert.throws(
      () => openUnixDgramSocket({ path: name }),
      (e: Error) => /bind\(@rubidium-test-.*EADDRINUSE/.test(e.message),
    );
  } finally {
    r.sock.close();
    s.sock.close();
    s2.close();
    removeTempDir(dir);
  }
});

test('unix-dgram: errors are clear', { skip }, () => {
  const long = `/tmp/${'x'.repeat(120)}`;
  assert.throws(
    () => openUnixDgramSocket({ path: long }),
    /too long for a Unix socket address \(125 bytes, at most 107\)/,
  );
  assert.throws(() => openUnixDgramSocket({ path: `@${'y'.repeat(108)}` }), /too long .*109 bytes, at most 108/);
  assert.throws(
    () => openUnixDgramSocket({ path: `/nonexistent-dir-${process.pid}/s.sock` }),
    (e: NodeJS.ErrnoException) =>
      e.code === 'ENOENT' && e.message.includes(`bind(/nonexistent-dir-${process.pid}/s.sock)`),
  );
  assert.throws(() => openUnixDgramSocket({ path: 'a\0b' }), /NUL/);
  const errors: Error[] = [];
  const tx = openUnixDgramSocket({ onError: (e) => errors.push(e) });
  try {
    // Nobody at the destination: the kernel refuses, send() says false and onError gets the errno.
    assert.equal(tx.send(Buffer.from('x'), `/nonexistent-dir-${process.pid}/peer.sock`), false);
    assert.equal(errors.length, 1);
    assert.equal((errors[0] as NodeJS.ErrnoException).code, 'ENOENT');
    assert.match(errors[0]!.message, /sendto\(\/nonexistent-dir-\d+\/peer\.sock\)/);
    assert.throws(() => tx.send(Buffer.from('x'), long), /too long/);
    assert.throws(() => tx.send(Buffer.alloc(65537), '@x'), /longer than 65536/);
    assert.throws(() => tx.send('str' as unknown as Uint8Array, '@x'), /Buffer or Uint8Array/);
  } finally {
    tx.close();
  }
});

test('unix-dgram: close is idempotent and a closed socket refuses to send', { skip }, () => {
  const dir = makeTempDir('unixdgram');
  try {
    const s = openUnixDgramSocket({ path: join(dir, 'c.sock') });
    s.close();
    s.close();
    assert.throws(() => s.send(Buffer.from('x'), '@x'), /closed/);
    // The path is free again.
    openUnixDgramSocket({ path: join(dir, 'c.sock') }).close();
  } finally {
    removeTempDir(dir);
  }
});

test('unix-dgram: an unbound socket does not keep the process alive; a closed bound one neither', { skip }, () => {
  const mod = fileURLToPath(new URL('../../src/io/unix-dgram.js', import.meta.url));
  const code = `const m = await import(${JSON.stringify(mod)});
    const tx = m.openUnixDgramSocket({});
    tx.send(Buffer.from('x'), '@rubidium-nobody-${process.pid}');
    const rx = m.openUnixDgramSocket({ path: '@rubidium-exit-${process.pid}' });
    rx.close();`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', timeout: 10000 });
  assert.equal(r.signal, null, 'child had to be killed: the socket kept it alive');
  assert.equal(r.status, 0, r.stderr);
});
