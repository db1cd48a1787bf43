/**
 * Symmetric keys (`keyfile`, `key N`) against chrony 4.3 on a veth pair, for MD5, SHA1 and
 * AES128 (CMAC):
 *  - chronyd -x with `server X key 1` selects rubidiumd, and its `chronyc authdata` shows SK;
 *  - rubidiumd -x with `server X key 1` selects chronyd, its authdata shows the key, and the
 *    real `chronyc authdata` against rubidiumd's cmdmon agrees;
 *  - with a different key value on one side, no sample is ever accepted.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  assertNothingLeft,
  cleanupLeftovers,
  createNetnsPair,
  isRoot,
  makeTempDir,
  removeTempDir,
  runInNs,
  sleep,
  unwind,
  waitFor,
} from '../support/netns.js';
import { startRubidiumd, type Rubidiumd } from '../support/rubidiumd.js';
import { PEER_BINARIES, requirePeers, startChronyd } from '../support/peers.js';
import type { SourceReport, NtpDataReport } from '../../src/control/reports.js';
import type { AuthDataReport } from '../../src/control/authdata.js';

const skip = isRoot() ? false : 'interop tests need root (network namespaces, veth)';

const KEYS: Array<{ alg: string; code: number; key: string; bits: number }> = [
  { alg: 'MD5', code: 1, key: 'HEX:' + '5a'.repeat(20), bits: 160 },
  { alg: 'SHA1', code: 2, key: 'ASCII:interop-sha1-secret', bits: 'interop-sha1-secret'.length * 8 },
  { alg: 'AES128', code: 13, key: 'HEX:' + '0f1e2d3c4b5a69788796a5b4c3d2e1f0', bits: 128 },
];

/** rubidiumd in `ns` with its command port on 11323, authdata and ntpdata open to chronyc. */
function startKeyed(ns: string, tag: string, lines: string[]): Promise<Rubidiumd> {
  const open = 'opencommands tracking sources authdata ntpdata';
  return startRubidiumd({ ns, tag, lines: [...lines, open], cmdPort: 11323 });
}

describe('symmetric keys with chrony 4.3', { skip }, () => {
  before(async () => {
    requirePeers(['chronyd', 'chronyc']);
    await cleanupLeftovers();
  });

  after(() => {
    assertNothingLeft();
  });

  it('MD5, SHA1 and AES128 both ways; a wrong key never synchronises', { timeout: 480_000 }, async () => {
    const cleanups: Array<() => Promise<void>> = [];
    try {
      const pair = await createNetnsPair({ tag: 'sk', subnet: 41 });
      cleanups.push(() => pair.destroy());
      const dir = makeTempDir('symkeys');
      cleanups.push(async () => removeTempDir(dir));
      chmodSync(dir, 0o755); // chronyd reads its key file after dropping to _chrony
      // chronyd's command socket (authdata needs it): a directory chronyd's user owns.
      const sockDir = join(dir, 'chronyd-run');
      mkdirSync(sockDir, { mode: 0o770 });
      try {
        chownSync(sockDir, 102, 105);
      } catch {
        /* no _chrony user: chronyd runs as root */
      }

      for (const k of KEYS) {
        const keyfile = join(dir, `${k.alg}.keys`);
        writeFileSync(keyfile, `# test key\n1 ${k.alg} ${k.key}\n`, { mode: 0o644 });
        const wrongfile = join(dir, `${k.alg}-wrong.keys`);
        writeFileSync(
          wrongfile,
          `1 ${k.alg} ${k.alg === 'AES128' ? 'HEX:' + '11'.repeat(16) : 'ASCII:wrong-key-value'}\n`,
          {
            mode: 0o644,
          },
        );

        // rubidiumd server (port 123) and chronyd server (port 11123), both keyed, in the server namespace.
        const rserver = await startKeyed(pair.server, `srv-${k.alg}`, [
          'local stratum 1',
          'allow all',
          `keyfile ${keyfile}`,
        ]);
        cleanups.push(() => rserver.stop());
        const cserver = await startChronyd({
          ns: pair.server,
          localStratum: 1,
          port: 11123,
          cmdPort: 11324,
          extraConfig: [`keyfile ${keyfile}`],
          name: `chronyd-srv-${k.alg}`,
        });
        cleanups.push(() => cserver.stop());

        // (1) chronyd client with key 1 → rubidiumd.
        const cclient = await startChronyd({
          ns: pair.client,
          servers: [{ address: pair.serverAddr, options: 'iburst minpoll -2 maxpoll -2 key 1' }],
          extraConfig: [`keyfile ${keyfile}`, `bindcmdaddress ${join(sockDir, 'chronyd.sock')}`],
          name: `chronyd-cli-${k.alg}`,
        });
        cleanups.push(() => cclient.stop());
        const t0 = Date.now();
        await cclient.waitForSelected(pair.serverAddr, 60_000);
        console.log(`# ${k.alg}: chronyd selected rubidiumd (key 1) after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
        const ad = await runInNs(pair.client, PEER_BINARIES.chronyc, [
          '-h',
          join(sockDir, 'chronyd.sock'),
          '-n',
          'authdata',
        ]);
        console.log(`# chronyd authdata:\n${ad.stdout}`);
        assert.match(
          ad.stdout,
          new RegExp(`^${pair.serverAddr.replace(/\./g, '\\.')} +SK +1 +${k.code} +${k.bits} `, 'm'),
        );
        const nd = await runInNs(pair.client, PEER_BINARIES.chronyc, [
          '-h',
          join(sockDir, 'chronyd.sock'),
          '-n',
          'ntpdata',
        ]);
        assert.match(nd.stdout, /^Authenticated +: Yes$/m);
        await cclient.stop();

        // (2) rubidiumd client with key 1 → chronyd (port 11123).
        const rclient = await startKeyed(pair.client, `cli-${k.alg}`, [
          `server ${pair.serverAddr} port 11123 iburst minpoll -2 maxpoll -2 key 1`,
          `keyfile ${keyfile}`,
        ]);
        cleanups.push(() => rclient.stop());
        const t1 = Date.now();
        await waitFor(async () => (await rclient.query<SourceReport[]>('sources')).find((s) => s.state === '*'), {
          timeoutMs: 60_000,
          intervalMs: 500,
          what: `rubidiumd to select chronyd with ${k.alg} key 1`,
        }).catch((e: Error) => {
          throw new Error(`${e.message}\n${rclient.proc.tail()}`);
        });
        console.log(`# ${k.alg}: rubidiumd selected chronyd (key 1) after ${((Date.now() - t1) / 1000).toFixed(1)} s`);
        const auth = await rclient.query<AuthDataReport[]>('authdata');
        assert.deepEqual(
          auth.map((a) => [a.mode, a.keyId, a.keyType, a.keyLength]),
          [['symmetric', 1, k.code, k.bits]],
        );
        const ntpdata = await rclient.query<NtpDataReport[]>('ntpdata');
        assert.equal(ntpdata[0]!.authenticated, true);
        // The real chronyc against rubidiumd's cmdmon (UDP, authdata opened with opencommands).
        const real = await runInNs(pair.client, PEER_BINARIES.chronyc, [
          '-h',
          '127.0.0.1',
          '-p',
          '11323',
          '-n',
          'authdata',
        ]);
        console.log(`# chronyc authdata against rubidiumd:\n${real.stdout}`);
        assert.match(
          real.stdout,
          new RegExp(`^${pair.serverAddr.replace(/\./g, '\\.')} +SK +1 +${k.code} +${k.bits} +- `, 'm'),
        );
        await rclient.stop();

        // (3) wrong key value on the client side, both directions: no sample within 8 s.
        const wrongR = await startKeyed(pair.client, `wrong-${k.alg}`, [
          `server ${pair.serverAddr} port 11123 iburst minpoll -2 maxpoll -2 key 1`,
          `keyfile ${wrongfile}`,
        ]);
        cleanups.push(() => wrongR.stop());
        const wrongC = await startChronyd({
          ns: pair.client,
          servers: [{ address: pair.serverAddr, options: 'iburst minpoll -2 maxpoll -2 key 1' }],
          extraConfig: [`keyfile ${wrongfile}`],
          name: `chronyd-wrong-${k.alg}`,
        });
        cleanups.push(() => wrongC.stop());
        await sleep(8000);
        const rs = await wrongR.query<SourceReport[]>('sources');
        const rn = await wrongR.query<NtpDataReport[]>('ntpdata');
        assert.equal(rs[0]!.lastRxAgo, null, `rubidiumd took a sample with a wrong key: ${JSON.stringify(rs)}`);
        assert.ok(rn[0]!.totalTx >= 4 && rn[0]!.totalValidRx === 0, JSON.stringify(rn[0]));
        const cs = await wrongC.sources();
        assert.ok(
          cs.every((s) => s.state !== '*' && s.reach === 0),
          `chronyd accepted rubidiumd with a wrong key: ${JSON.stringify(cs)}`,
        );
        console.log(`# ${k.alg}: wrong key → rubidiumd ${rn[0]!.totalTx} requests, 0 valid; chronyd reach 0`);
        await wrongR.stop();
        await wrongC.stop();
        await rserver.stop();
        await cserver.stop();
      }
    } finally {
      await unwind(cleanups);
    }
  });
});
