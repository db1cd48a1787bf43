/**
 * NTS-KE compatibility with chrony 4.3, both directions, in a network namespace (root):
 *  - our `runNtsKe` against `chronyd -x` with ntsservercert/ntsserverkey from a test CA: 8 cookies of
 *    chrony's length (4-byte key id, 16-byte nonce, AES-SIV of C2S|S2C = 100 bytes with AEAD 15);
 *    the keys we exported are exactly the ones chrony sealed in its cookies (decrypted with the
 *    server key chrony dumps in `ntsdumpdir`). chrony 4.3 negotiates only AEAD 15: offering
 *    30 and 15 gets 15 (record 1024 ignored as non-critical), offering 30 alone gets a clear error.
 *  - chronyd's NTS client against our `startNtsKeServer` (run inside the namespace): chrony accepts
 *    the answer and sends NTS requests carrying our cookies to the port we negotiated.
 * The full NTP-level NTS interop is in the daemon's tests; this proves the key exchange.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdirSync, chmodSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { aessiv } from '@noble/ciphers/aes.js';
import {
  cleanupLeftovers,
  createNamespace,
  deleteNamespace,
  isRoot,
  makeTempDir,
  removeTempDir,
  runInNs,
  startInNs,
  unwind,
  waitFor,
  ownStrayProcesses,
  liveManagedProcesses,
} from '../support/netns.js';
import { requirePeers, startChronyd } from '../support/peers.js';
import { makeTestPki, type TestPki } from '../support/test-pki.js';

const skip = isRoot() ? false : 'interop tests need root (network namespaces); run as root';
const distSrc = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src');
const KE_CLIENT = join(distSrc, 'nts', 'ke-client.js');
const KE_SERVER = join(distSrc, 'nts', 'ke-server.js');

interface ClientRun {
  ok: boolean;
  error?: string;
  aead?: number;
  server?: string;
  port?: number;
  c2s?: string;
  s2c?: string;
  cookies?: string[];
  compliantExport?: boolean;
}

/** Runs our NTS-KE client inside `ns` (a child node process) and returns what it got. */
async function runClientInNs(ns: string, opts: Record<string, unknown>): Promise<ClientRun> {
  const script = `
    import { runNtsKe } from ${JSON.stringify(KE_CLIENT)};
    const hex = (b) => Buffer.from(b).toString('hex');
    try {
      const r = await runNtsKe(${JSON.stringify(opts)});
      console.log(JSON.stringify({ ok: true, aead: r.aead, server: r.server, port: r.port, c2s: hex(r.c2s),
        s2c: hex(r.s2c), cookies: r.cookies.map(hex), compliantExport: r.compliantExport }));
    } catch (e) { console.log(JSON.stringify({ ok: false, error: e.message })); }`;
  const r = await runInNs(ns, process.execPath, ['--input-type=module', '-e', script], { timeoutMs: 30_000 });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as ClientRun;
  } catch {
    throw new Error(`client in ${ns} printed no result: ${r.stdout}${r.stderr}`);
  }
}

/** chrony's dumped server keys (ntsdumpdir/ntskeys, "NKS0" format): key id → AES-SIV key. */
function chronyServerKeys(file: string): Map<number, Uint8Array> {
  const lines = readFileSync(file, 'utf8').trim().split('\n');
  assert.equal(lines[0], 'NKS0');
  assert.match(lines[1]!, /^15 /);
  const keys = new Map<number, Uint8Array>();
  for (const l of lines.slice(2)) {
    const [id, key] = l.split(' ');
    keys.set(parseInt(id!, 16), Uint8Array.from(Buffer.from(key!, 'hex')));
  }
  return keys;
}

describe('NTS-KE interop with chrony 4.3', { skip }, () => {
  let dir: string;
  let pki: TestPki;

  before(async () => {
    requirePeers(['chronyd', 'chronyc']);
    const removed = await cleanupLeftovers();
    if (removed.length) console.log(`# removed leftovers: ${removed.join(', ')}`);
    dir = makeTempDir('ntske-pki');
    pki = makeTestPki(dir);
    // chronyd reads its key after dropping root to its own user; this key is a throwaway.
    chmodSync(pki.serverKey, 0o644);
  });

  after(() => {
    removeTempDir(dir);
    assert.deepEqual(
      liveManagedProcesses().map((p) => `${p.name} ${p.pid}`),
      [],
    );
    assert.deepEqual(ownStrayProcesses(), []);
  });

  it(
    'runNtsKe against chronyd: AEAD 15, 8 cookies of 100 bytes holding exactly our keys',
    { timeout: 90_000 },
    async () => {
      const cleanups: Array<() => Promise<void>> = [];
      try {
        const ns = await createNamespace('ke-srv');
        cleanups.push(() => deleteNamespace(ns));
        const dump = join(dir, 'dump');
        mkdirSync(dump);
        chmodSync(dump, 0o777); // chronyd may write it after dropping root
        const chronyd = await startChronyd({
          ns,
          localStratum: 1,
          extraConfig: [`ntsservercert ${pki.serverCert}`, `ntsserverkey ${pki.serverKey}`, `ntsdumpdir ${dump}`],
        });
        cleanups.push(() => chronyd.stop());
        const base = {
          host: '127.0.0.1',
          port: 4460,
          trustedCerts: [pki.caCert],
          noSystemCert: true,
          timeoutMs: 10_000,
        };
        await waitFor(async () => (await runClientInNs(ns, { ...base, aeads: [15] })).ok, {
          timeoutMs: 10_000,
          what: 'chronyd NTS-KE server to answer',
        });

        const keys = chronyServerKeys(join(dump, 'ntskeys'));
        for (const aeads of [[15], [30, 15]]) {
          const r = await runClientInNs(ns, { ...base, aeads });
          assert.ok(r.ok, r.error);
          assert.equal(r.aead, 15, `offering ${aeads}`);
          assert.equal(r.compliantExport, true);
          assert.equal(r.server, '127.0.0.1');
          assert.equal(r.port, 123);
          assert.equal(r.c2s!.length, 64); // 32 bytes
          assert.equal(r.cookies!.length, 8);
          const cookieLengths = [...new Set(r.cookies!.map((c) => c.length / 2))];
          assert.deepEqual(cookieLengths, [100]);
          // Open the cookie with chrony's server key: id | nonce | SIV(C2S | S2C).
          for (const hexCookie of r.cookies!) {
            const c = Buffer.from(hexCookie, 'hex');
            const key = keys.get(c.readUInt32BE(0));
            assert.ok(key, `cookie key id ${c.readUInt32BE(0).toString(16)} not in chrony's ntskeys`);
            const plain = aessiv(key, new Uint8Array(0), c.subarray(4, 20)).decrypt(c.subarray(20));
            assert.equal(Buffer.from(plain).toString('hex'), r.c2s! + r.s2c!);
          }
        }
        const only30 = await runClientInNs(ns, { ...base, aeads: [30] });
        assert.equal(only30.ok, false);
        assert.match(
          only30.error!,
          /^NTS-KE with 127\.0\.0\.1:4460: server supports none of the AEADs we offered \(30\)/,
        );

        const untrusted = await runClientInNs(ns, { ...base, trustedCerts: [pki.otherCaCert], aeads: [15] });
        assert.equal(untrusted.ok, false);
        assert.match(untrusted.error!, /certificate not trusted/);
        console.log(`# chronyd 4.3 NTS-KE: AEAD 15, 8 cookies × 100 bytes, keys match chrony's cookies`);
      } finally {
        await unwind(cleanups);
      }
    },
  );

  it('chronyd NTS client accepts the answer of our NTS-KE server', { timeout: 90_000 }, async () => {
    const cleanups: Array<() => Promise<void>> = [];
    try {
      const ns = await createNamespace('ke-cli');
      cleanups.push(() => deleteNamespace(ns));
      // Our KE server plus a UDP listener on the negotiated NTP port that recognises NTS
      // requests (extension field 0x0204) carrying one of the cookies we issued.
      const serverScript = `
        import { startNtsKeServer } from ${JSON.stringify(KE_SERVER)};
        import { randomBytes } from 'node:crypto';
        import dgram from 'node:dgram';
        const issued = new Set();
        const srv = await startNtsKeServer({ certFiles: [${JSON.stringify(pki.serverCert)}],
          keyFiles: [${JSON.stringify(pki.serverKey)}], address: '127.0.0.1', port: 14460, ntpPort: 11123,
          makeCookie: (c) => { const k = randomBytes(100); issued.add(k.toString('hex'));
            console.log('cookie aead=' + c.aead + ' keylen=' + c.c2s.length); return k; },
          log: (l, m) => console.log(m) });
        const udp = dgram.createSocket('udp4');
        udp.on('message', (m) => {
          for (let at = 48; at + 4 <= m.length; ) {
            const type = m.readUInt16BE(at), len = m.readUInt16BE(at + 2);
            if (len < 4) break;
            if (type === 0x0204) console.log('ntp request cookie ' + (issued.has(m.subarray(at + 4, at + len).toString('hex')) ? 'ours' : 'unknown'));
            at += len;
          }
        });
        udp.bind(11123, '127.0.0.1');
        process.on('SIGTERM', async () => { udp.close(); await srv.close(); process.exit(0); });`;
      const ours = await startInNs(ns, process.execPath, ['--input-type=module', '-e', serverScript], {
        name: `ntske-server@${ns}`,
        readyPattern: /NTS-KE server listening on port 14460/,
        readyTimeoutMs: 10_000,
      });
      cleanups.push(async () => void (await ours.stop()));
      const chronyd = await startChronyd({
        ns,
        cmdPort: 10323,
        port: 0,
        // No port option: chrony must take 11123 from our Port Negotiation record.
        servers: [{ address: '127.0.0.1', options: 'nts ntsport 14460 iburst minpoll 0 maxpoll 0' }],
        extraConfig: [`ntstrustedcerts ${pki.caCert}`, 'nosystemcert'],
      });
      cleanups.push(() => chronyd.stop());
      await waitFor(() => /ntp request cookie ours/.test(ours.tail()), {
        timeoutMs: 20_000,
        what: 'chronyd to send an NTS request with a cookie from our NTS-KE server',
      }).catch((e: Error) => {
        throw new Error(`${e.message}\nchronyd:\n${chronyd.proc.tail()}\nours:\n${ours.tail()}`);
      });
      const out = ours.tail();
      assert.match(out, /cookie aead=15 keylen=32/);
      assert.doesNotMatch(out, /ntp request cookie unknown/);
      assert.doesNotMatch(chronyd.proc.tail(), /invalid NTS-KE response/);
      console.log('# chronyd 4.3 NTS client took our answer: NTS requests to the negotiated port carry our cookies');
    } finally {
      await unwind(cleanups);
    }
  });
});
