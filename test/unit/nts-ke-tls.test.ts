/**
 * NTS-KE over real TLS on loopback: our client against our server (8 cookies, the same keys on
 * both sides), certificate checks (wrong CA, expired with and without nocerttimecheck, host
 * name), protocol refusals (TLS 1.2, no ALPN), and attacks with their expected outcomes
 * (slowloris at maxConnections, record flood, oversized record).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect as tcpConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { makeTestPki, type TestPki } from '../support/test-pki.js';
import { startNtsKeServer, type NtsKeServer, type NtsKeServerOptions } from '../../src/nts/ke-server.js';
import { NtsKeError, runNtsKe } from '../../src/nts/ke-client.js';
import { decodeKeMessage, encodeKeMessage, encodeRecord, readU16List } from '../../src/nts/ke-records.js';
import { buildKeRequest, type KeCookieContents } from '../../src/nts/ke-negotiation.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let dir: string;
let pki: TestPki;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'rubidium-ntske-'));
  pki = makeTestPki(dir);
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function withServer<T>(
  over: Partial<NtsKeServerOptions>,
  body: (srv: NtsKeServer, made: KeCookieContents[], logs: string[]) => Promise<T>,
): Promise<T> {
  const made: KeCookieContents[] = [];
  const logs: string[] = [];
  const srv = await startNtsKeServer({
    certFiles: [pki.serverCert],
    keyFiles: [pki.serverKey],
    address: '127.0.0.1',
    port: 0,
    makeCookie: (c) => {
      made.push(c);
      return new Uint8Array(100).fill(made.length);
    },
    log: (_l, m) => logs.push(m),
    ...over,
  });
  try {
    return await body(srv, made, logs);
  } finally {
    await srv.close();
  }
}

async function keError(p: Promise<unknown>): Promise<NtsKeError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof NtsKeError, String(e));
    return e;
  }
  assert.fail('NTS-KE succeeded but was expected to fail');
}

/** Raw TLS client: sends `payload` (or nothing), returns all bytes received until the close. */
function rawExchange(
  port: number,
  payload: Uint8Array | null,
  tlsOpts: Partial<ConnectionOptions> = {},
): Promise<{ data: Buffer; error: Error | null; alpn: string | false | null }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let error: Error | null = null;
    let alpn: string | false | null = null;
    const s = tlsConnect({
      host: '127.0.0.1',
      port,
      rejectUnauthorized: false,
      ALPNProtocols: ['ntske/1'],
      ...tlsOpts,
    });
    s.on('secureConnect', () => {
      alpn = s.alpnProtocol;
      if (payload) s.write(payload);
    });
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', (e) => (error = e));
    s.on('close', () => resolve({ data: Buffer.concat(chunks), error, alpn }));
  });
}

describe('NTS-KE client ↔ server over TLS 1.3', () => {
  for (const aeads of [[30, 15], [15]] as Array<Array<15 | 30>>) {
    it(`offering ${aeads}: 8 cookies and identical keys on both sides`, async () => {
      await withServer({ ntpPort: 10123 }, async (srv, made) => {
        const r = await runNtsKe({
          host: '127.0.0.1',
          port: srv.port,
          trustedCerts: [pki.caCert],
          noSystemCert: true,
          aeads,
        });
        assert.equal(r.aead, aeads[0]);
        assert.equal(r.cookies.length, 8);
        assert.deepEqual(
          r.cookies.map((c) => c[0]),
          [1, 2, 3, 4, 5, 6, 7, 8],
        );
        assert.equal(r.server, '127.0.0.1');
        assert.equal(r.port, 10123);
        assert.equal(r.c2s.length, aeads[0] === 30 ? 16 : 32);
        // The server sealed exactly the keys the client exported from the same TLS session.
        assert.equal(hex(made[0]!.c2s), hex(r.c2s));
        assert.equal(hex(made[0]!.s2c), hex(r.s2c));
        assert.notEqual(hex(r.c2s), hex(r.s2c));
        assert.equal(r.compliantExport, true);
        await sleep(50);
        const st = srv.stats();
        assert.equal(st.accepted, 1);
        assert.equal(st.completed, 1);
        assert.equal(st.active, 0);
      });
    });
  }

  it('two sessions export different keys', async () => {
    await withServer({}, async (srv) => {
      const o = { host: '127.0.0.1', port: srv.port, trustedCerts: [pki.caCert], noSystemCert: true };
      const [a, b] = await Promise.all([runNtsKe(o), runNtsKe(o)]);
      assert.notEqual(hex(a.c2s), hex(b.c2s));
    });
  });

  it('a certificate from another CA is refused, naming host:port and the cause', async () => {
    await withServer({}, async (srv) => {
      const e = await keError(
        runNtsKe({ host: '127.0.0.1', port: srv.port, trustedCerts: [pki.otherCaCert], noSystemCert: true }),
      );
      assert.equal(e.kind, 'certificate');
      assert.match(e.message, new RegExp(`^NTS-KE with 127\\.0\\.0\\.1:${srv.port}: certificate not trusted`));
      // The system store alone does not know our CA either.
      const e2 = await keError(runNtsKe({ host: '127.0.0.1', port: srv.port }));
      assert.equal(e2.kind, 'certificate');
    });
  });

  it('a host name not in the certificate is refused', async () => {
    await withServer({}, async (srv) => {
      const e = await keError(
        runNtsKe({
          host: 'ntp.invalid',
          connectAddress: '127.0.0.1',
          port: srv.port,
          trustedCerts: [pki.caCert],
          noSystemCert: true,
        }),
      );
      assert.equal(e.kind, 'certificate');
      assert.match(e.message, /ntp\.invalid/);
    });
  });

  it('an expired certificate: refused, accepted with noCertTimeCheck, which ignores nothing but dates', async () => {
    await withServer({ certFiles: [pki.expiredCert] }, async (srv) => {
      const base = { host: '127.0.0.1', port: srv.port, noSystemCert: true };
      const e = await keError(runNtsKe({ ...base, trustedCerts: [pki.caCert] }));
      assert.equal(e.kind, 'certificate');
      assert.match(e.message, /CERT_HAS_EXPIRED/);
      const r = await runNtsKe({ ...base, trustedCerts: [pki.caCert], noCertTimeCheck: true });
      assert.equal(r.cookies.length, 8);
      // Expired AND from an unknown CA: still refused.
      const e2 = await keError(runNtsKe({ ...base, trustedCerts: [pki.otherCaCert], noCertTimeCheck: true }));
      assert.equal(e2.kind, 'certificate');
      // Expired AND for another name: still refused.
      const e3 = await keError(
        runNtsKe({
          ...base,
          host: 'ntp.invalid',
          connectAddress: '127.0.0.1',
          trustedCerts: [pki.caCert],
          noCertTimeCheck: true,
        }),
      );
      assert.match(e3.message, /ntp\.invalid/);
    });
  });

  it('refuses a TLS 1.2-only client and a client without ALPN ntske/1', async () => {
    await withServer({}, async (srv) => {
      const req = encodeKeMessage(buildKeRequest([15]));
      const t12 = await rawExchange(srv.port, req, { maxVersion: 'TLSv1.2' });
      assert.ok(t12.error, 'TLS 1.2 handshake must fail');
      assert.equal(t12.data.length, 0);
      const noAlpn = await rawExchange(srv.port, req, { ALPNProtocols: undefined });
      assert.equal(noAlpn.data.length, 0, 'no answer without ALPN');
      const otherAlpn = await rawExchange(srv.port, req, { ALPNProtocols: ['http/1.1'] });
      assert.equal(otherAlpn.data.length, 0, 'no answer with another ALPN');
      await sleep(50);
      const st = srv.stats();
      assert.equal(st.completed, 0);
      assert.equal(st.errors.tls + st.errors.alpn, 3);
      assert.ok(st.errors.tls >= 1);
      assert.ok(st.errors.alpn >= 1);
    });
  });

  it('connection refused and timeouts are errors naming host:port', async () => {
    const hold = createServer(() => undefined); // accepts, never speaks TLS
    const held: Socket[] = [];
    hold.on('connection', (s) => held.push(s));
    await new Promise<void>((r) => hold.listen(0, '127.0.0.1', r));
    const port = (hold.address() as { port: number }).port;
    try {
      const e = await keError(runNtsKe({ host: '127.0.0.1', port, timeoutMs: 300 }));
      assert.equal(e.kind, 'timeout');
      assert.match(e.message, new RegExp(`127\\.0\\.0\\.1:${port}: no answer within 300 ms`));
    } finally {
      held.forEach((s) => s.destroy());
      await new Promise((r) => hold.close(r));
    }
    const e2 = await keError(runNtsKe({ host: '127.0.0.1', port, timeoutMs: 2000 }));
    assert.equal(e2.kind, 'connect');
    assert.match(e2.message, new RegExp(`127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`));
  });
});

describe('NTS-KE server under attack', () => {
  it('ntsratelimit: a refused address is closed before the handshake and counted', async () => {
    let allow = false;
    await withServer({ acceptConnection: () => allow }, async (srv) => {
      const e = await keError(
        runNtsKe({ host: '127.0.0.1', port: srv.port, trustedCerts: [pki.caCert], noSystemCert: true }),
      );
      assert.match(e.message, /127\.0\.0\.1:\d+/);
      assert.equal(srv.stats().refusedRate, 1);
      assert.equal(srv.stats().accepted, 0);
      allow = true;
      const r = await runNtsKe({ host: '127.0.0.1', port: srv.port, trustedCerts: [pki.caCert], noSystemCert: true });
      assert.equal(r.cookies.length, 8);
    });
  });

  it('slowloris: trickling connections are closed at the deadline and a good client then gets through', async () => {
    const deadline = 1500;
    await withServer({ maxConnections: 3, requestTimeoutMs: deadline }, async (srv) => {
      const t0 = Date.now();
      const closedAt: number[] = [];
      const timers: NodeJS.Timeout[] = [];
      // Two trickle the TLS handshake (1 byte/s of a ClientHello-looking stream) ...
      for (let i = 0; i < 2; i++) {
        const s = tcpConnect(srv.port, '127.0.0.1');
        s.on('error', () => undefined);
        s.on('close', () => closedAt.push(Date.now() - t0));
        timers.push(setInterval(() => s.writable && s.write(Buffer.from([0x16])), 1000));
      }
      // ... one completes the handshake and trickles its request.
      const req = encodeKeMessage(buildKeRequest([15]));
      const slow = tlsConnect({
        host: '127.0.0.1',
        port: srv.port,
        rejectUnauthorized: false,
        ALPNProtocols: ['ntske/1'],
      });
      slow.on('error', () => undefined);
      slow.on('close', () => closedAt.push(Date.now() - t0));
      let sent = 0;
      slow.on('secureConnect', () =>
        timers.push(
          setInterval(() => sent < req.length - 1 && slow.writable && slow.write(req.subarray(sent, ++sent)), 1000),
        ),
      );
      await sleep(300);
      assert.equal(srv.stats().active, 3);
      // A good client now finds every slot taken and is refused at once ...
      const refused = await keError(
        runNtsKe({
          host: '127.0.0.1',
          port: srv.port,
          trustedCerts: [pki.caCert],
          noSystemCert: true,
          timeoutMs: 1000,
        }),
      );
      assert.notEqual(refused.kind, 'timeout');
      assert.ok(srv.stats().refusedLimit >= 1);
      // ... and gets its cookies once the deadline has freed the slots, despite the trickle.
      await sleep(deadline + 300 - (Date.now() - t0));
      const r = await runNtsKe({ host: '127.0.0.1', port: srv.port, trustedCerts: [pki.caCert], noSystemCert: true });
      assert.equal(r.cookies.length, 8);
      timers.forEach(clearInterval);
      assert.equal(closedAt.length, 3);
      for (const t of closedAt) assert.ok(t >= deadline - 50 && t < deadline + 500, `closed after ${t} ms`);
      const st = srv.stats();
      assert.equal(st.errors.timeout, 3);
      assert.equal(st.completed, 1);
    });
  });

  it('record flood: thousands of tiny records get Error 1 after the record limit, then close', async () => {
    await withServer({}, async (srv) => {
      const tiny = encodeRecord({ critical: false, type: 0x1234, body: new Uint8Array(0) });
      const flood = Buffer.concat([
        encodeRecord(buildKeRequest([15])[0]!),
        ...Array.from({ length: 5000 }, () => tiny),
      ]);
      const res = await rawExchange(srv.port, flood);
      const ans = decodeKeMessage(res.data);
      assert.equal(ans.kind, 'complete');
      assert.deepEqual(ans.kind === 'complete' && ans.records.map((r) => [r.type, readU16List(r.body)]), [[2, [1]]]);
      await sleep(50);
      assert.equal(srv.stats().errors.decode, 1);
      assert.equal(srv.stats().completed, 0);
      assert.equal(srv.stats().active, 0);
    });
  });

  it('oversized record: Error 1 as soon as its header is in, without waiting for the body', async () => {
    await withServer({ requestTimeoutMs: 5000 }, async (srv, _made, logs) => {
      const t0 = Date.now();
      const header = Uint8Array.of(0x00, 0x05, 0xff, 0xff); // cookie record announcing 65535 bytes
      const res = await rawExchange(srv.port, header);
      assert.ok(Date.now() - t0 < 2000, 'answered before the deadline');
      const ans = decodeKeMessage(res.data);
      assert.deepEqual(ans.kind === 'complete' && ans.records.map((r) => [r.type, readU16List(r.body)]), [[2, [1]]]);
      assert.ok(
        logs.some((l) => /127\.0\.0\.1:\d+: bad request at offset 0: record of 65535 bytes/.test(l)),
        logs.join('\n'),
      );
    });
  });

  it('an unknown critical record over TLS gets Error 0', async () => {
    await withServer({}, async (srv) => {
      const req = encodeKeMessage([...buildKeRequest([15]), { critical: true, type: 0x2000, body: new Uint8Array(2) }]);
      const ans = decodeKeMessage((await rawExchange(srv.port, req)).data);
      assert.deepEqual(ans.kind === 'complete' && ans.records.map((r) => [r.type, readU16List(r.body)]), [[2, [0]]]);
      await sleep(50);
      assert.equal(srv.stats().refusedRequests, 1);
      assert.equal(srv.stats().errors['bad-request'], 1);
    });
  });
});
