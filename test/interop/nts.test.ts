/**
 * NTS (RFC 8915) between rubidiumd and the real peers on veth, with a CA and server certificate
 * made by the test (openssl, in a temp dir removed in `after`):
 *  (a) chronyd 4.3 -x NTS client → rubidiumd NTS server: selected, `authdata` mode NTS with
 *      cookies, `ntpdata` authenticated; then the NAK path: rubidiumd restarted without its
 *      ntsdumpdir refuses chronyd's cookies (NTS NAK), chronyd redoes NTS-KE and recovers;
 *  (b) rubidiumd -x NTS client → chronyd NTS server: synchronised, `authdata` NTS with cookies;
 *  (c) NTPsec ntpd (clock discipline disabled) NTS client → rubidiumd: system peer, and ntpq's
 *      association list says the association is authenticated.
 * Every daemon runs with its clock control off (-x / disable ntp); nothing touches the host clock.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import {
  assertNothingLeft,
  cleanupLeftovers,
  createNetnsPair,
  isRoot,
  makeTempDir,
  removeTempDir,
  runInNs,
  unwind,
  waitFor,
} from '../support/netns.js';
import { startRubidiumd, type Rubidiumd } from '../support/rubidiumd.js';
import { PEER_BINARIES, requirePeers, startChronyd, startNtpd } from '../support/peers.js';
import { makeTestPki } from '../support/test-pki.js';
import type { AuthDataReport } from '../../src/control/authdata.js';
import type { SourceReport, TrackingReport } from '../../src/control/reports.js';

const skip = isRoot() ? false : 'interop tests need root (network namespaces, veth)';

/** Subnets of this file's namespace pairs (10.77.N.0/24); the certificate names their servers. */
const SUBNETS = { a: 85, b: 86, c: 87 } as const;

/** The test PKI (test/support/test-pki.ts) with this file's server addresses in the certificate. */
function makeCerts(): { dir: string; ca: string; cert: string; key: string } {
  const dir = makeTempDir('nts-certs');
  const pki = makeTestPki(dir, ['nts-test', ...Object.values(SUBNETS).map((n) => `10.77.${n}.1`)]);
  return { dir, ca: pki.caCert, cert: pki.serverCert, key: pki.serverKey };
}

/** rubidiumd in `ns` with a command port and its NTS keys dumped in its own dir. */
function startNtsRubidiumd(ns: string, lines: string[]): Promise<Rubidiumd> {
  return startRubidiumd({ ns, tag: 'rubidiumd-nts', lines: [...lines, 'ntsdumpdir $DIR/nts'], cmdPort: 11323 });
}

/** chronyc -c authdata: Name,Mode,KeyID,Type,KLen,Last,Atmp,NAK,Cook,CLen. */
interface ChronyAuth {
  name: string;
  mode: string;
  type: string;
  last: string;
  attempts: number;
  naks: number;
  cookies: number;
  cookieLength: number;
}

function parseChronyAuthdata(csv: string): ChronyAuth[] {
  return csv
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const f = l.split(',');
      return {
        name: f[0]!,
        mode: f[1]!,
        type: f[3]!,
        last: f[5]!,
        attempts: Number(f[6]),
        naks: Number(f[7]),
        cookies: Number(f[8]),
        cookieLength: Number(f[9]),
      };
    });
}

/**
 * chronyc 4.3 answers authdata and serverstats only on its Unix socket: a 0700 directory for it
 * (chronyd checks the permissions), and chronyc pointed at the socket.
 */
function chronycSocket(): { dir: string; path: string; config: string[] } {
  const dir = makeTempDir('chronyd-sock');
  chmodSync(dir, 0o700);
  const path = join(dir, 'chronyd.sock');
  return { dir, path, config: ['user root', `bindcmdaddress ${path}`] };
}

async function chronycUnix(ns: string, sock: string, args: string[]): Promise<string> {
  const r = await runInNs(ns, PEER_BINARIES.chronyc, ['-h', sock, '-n', '-c', ...args], { timeoutMs: 10_000 });
  return r.stdout;
}

describe('NTS with real peers on veth', { skip }, () => {
  let certs: ReturnType<typeof makeCerts>;

  before(async () => {
    requirePeers(['chronyd', 'chronyc', 'ntpd', 'ntpq']);
    await cleanupLeftovers();
    certs = makeCerts();
  });

  after(() => {
    if (certs) removeTempDir(certs.dir);
    assertNothingLeft();
  });

  const serverLines = (): string[] => [
    'local stratum 1',
    'allow all',
    `ntsservercert ${certs.cert}`,
    `ntsserverkey ${certs.key}`,
  ];

  it(
    '(a) chronyd NTS client → rubidiumd; NAK after a key loss → chronyd redoes NTS-KE',
    { timeout: 240_000 },
    async () => {
      const cleanups: Array<() => Promise<void>> = [];
      try {
        const pair = await createNetnsPair({ tag: 'ntsa', subnet: SUBNETS.a });
        cleanups.push(() => pair.destroy());
        let server = await startNtsRubidiumd(pair.server, serverLines());
        cleanups.push(() => server.stop());
        const sock = chronycSocket();
        cleanups.push(async () => removeTempDir(sock.dir));
        const chrony = await startChronyd({
          ns: pair.client,
          servers: [{ address: pair.serverAddr, options: 'iburst nts minpoll -2 maxpoll -2' }],
          extraConfig: [`ntstrustedcerts ${certs.ca}`, 'nosystemcert', ...sock.config],
        });
        cleanups.push(() => chrony.stop());
        const t0 = Date.now();
        await chrony.waitForSelected(pair.serverAddr, 60_000);
        console.log(`# chronyd selected rubidiumd (NTS) after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
        const auth = parseChronyAuthdata(await chronycUnix(pair.client, sock.path, ['authdata']));
        console.log(`# chronyc authdata: ${JSON.stringify(auth)}`);
        assert.equal(auth.length, 1);
        assert.equal(auth[0]!.mode, 'NTS');
        assert.ok(auth[0]!.cookies >= 1, 'chronyd holds cookies');
        assert.equal(auth[0]!.cookieLength % 4, 0);
        assert.equal(auth[0]!.naks, 0);
        const ntpdata = await chronycUnix(pair.client, sock.path, ['ntpdata', pair.serverAddr]);
        // chronyc -c ntpdata: ...,Authenticated (Yes/No),... — chrony 4.3 prints Yes/No in CSV too.
        const fields = ntpdata.trim().split(',');
        console.log(`# chronyc ntpdata: ${ntpdata.trim()}`);
        assert.ok(fields.includes('Yes'), 'ntpdata says authenticated');
        const tracking = await chrony.tracking();
        assert.equal(tracking.stratum, 2);
        assert.equal(tracking.leapStatus, 'Normal');
        const stats = await server.query<Record<string, unknown>>('serverstats');
        console.log(`# rubidiumd serverstats: ${JSON.stringify(stats)}`);

        // NAK: a server that lost its keys (fresh ntsdumpdir) cannot open chronyd's cookies.
        const restarted = Date.now();
        await server.stop();
        server = await startNtsRubidiumd(pair.server, serverLines());
        cleanups.push(() => server.stop());
        const recovered = await waitFor(
          async () => {
            const a = parseChronyAuthdata(await chronycUnix(pair.client, sock.path, ['authdata']))[0]!;
            const src = (await chrony.sources()).find((s) => s.address === pair.serverAddr);
            // chronyd redid NTS-KE after the restart (its 8 cookies were not used up: the server's
            // NAK made it throw them away; chrony 4.3's NAK column is a flag the new NTS-KE clears),
            // and authenticated samples arrive again.
            const sinceRestart = (Date.now() - restarted) / 1000;
            const newKe = a.last !== '-' && Number(a.last) < sinceRestart;
            return newKe && a.cookies >= 1 && src && src.lastRx < 2 && src.reach > 0 ? { a, src } : null;
          },
          { timeoutMs: 60_000, intervalMs: 500, what: 'chronyd to recover from the NTS NAK' },
        ).catch(async (e: Error) => {
          const a = await chronycUnix(pair.client, sock.path, ['authdata']).catch(() => '');
          const src = await chrony.chronyc(['sources']).catch(() => '');
          throw new Error(
            `${e.message}\nauthdata: ${a}\nsources: ${src}\n${chrony.proc.tail()}\n${server.proc.tail()}`,
          );
        });
        const secs = (Date.now() - restarted) / 1000;
        console.log(`# NAK recovery: ${secs.toFixed(1)} s, authdata ${JSON.stringify(recovered.a)}`);
        assert.ok(secs < 60);
        assert.ok(Number(recovered.a.last) <= secs, `last NTS-KE ${recovered.a.last} s ago is after the restart`);
        // The restarted server answers chronyd's authenticated requests made with the new cookies
        // (the first one it saw carried an old cookie and got the NAK).
        const after = await waitFor(
          async () => {
            const st = await server.query<{ ntpAuthPacketsReceived: number }>('serverstats');
            return st.ntpAuthPacketsReceived >= 3 ? st : null;
          },
          { timeoutMs: 15_000, intervalMs: 500, what: 'authenticated requests with the new cookies' },
        );
        console.log(`# restarted server: ${after.ntpAuthPacketsReceived} authenticated requests`);
        await chrony.waitForSelected(pair.serverAddr, 30_000);
      } finally {
        await unwind(cleanups);
      }
    },
  );

  it('(b) rubidiumd NTS client → chronyd NTS server', { timeout: 240_000 }, async () => {
    const cleanups: Array<() => Promise<void>> = [];
    try {
      const pair = await createNetnsPair({ tag: 'ntsb', subnet: SUBNETS.b });
      cleanups.push(() => pair.destroy());
      const sock = chronycSocket();
      cleanups.push(async () => removeTempDir(sock.dir));
      const chrony = await startChronyd({
        ns: pair.server,
        localStratum: 1,
        // user root (in sock.config): chronyd must still read the test's key file.
        extraConfig: [...sock.config, `ntsservercert ${certs.cert}`, `ntsserverkey ${certs.key}`],
      });
      cleanups.push(() => chrony.stop());
      const client = await startNtsRubidiumd(pair.client, [
        `server ${pair.serverAddr} iburst nts minpoll -2 maxpoll -2`,
        `ntstrustedcerts ${certs.ca}`,
        'nosystemcert',
      ]);
      cleanups.push(() => client.stop());
      const t0 = Date.now();
      const sel = await waitFor(
        async () => (await client.query<SourceReport[]>('sources')).find((s) => s.state === '*'),
        { timeoutMs: 60_000, intervalMs: 500, what: 'rubidiumd to select chronyd (NTS)' },
      ).catch((e: Error) => {
        throw new Error(`${e.message}\n${client.proc.tail()}`);
      });
      console.log(`# rubidiumd selected chronyd (NTS) after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      assert.equal(sel.address, pair.serverAddr);
      const tracking = await client.query<TrackingReport>('tracking');
      console.log(`# rubidiumd tracking: ${JSON.stringify(tracking)}`);
      assert.equal(tracking.stratum, 2);
      assert.notEqual(tracking.leapStatus, 'Not synchronised');
      const auth = await client.query<AuthDataReport[]>('authdata');
      console.log(`# rubidiumd authdata: ${JSON.stringify(auth)}`);
      assert.equal(auth[0]!.mode, 'nts');
      assert.ok(auth[0]!.cookies >= 1);
      assert.ok([15, 30].includes(auth[0]!.keyType));
      assert.equal(auth[0]!.naks, 0);
      // chronyd's side: it served NTS-KE and authenticated NTP (serverstats in chrony 4.3).
      const ss = await chronycUnix(pair.server, sock.path, ['serverstats']);
      console.log(`# chronyd serverstats: ${ss.trim()}`);
      const f = ss.trim().split(',').map(Number);
      // 4.3 CSV: NTP rx, dropped, cmd rx, cmd dropped, log drops, NTS-KE accepted, NTS-KE dropped, auth NTP rx, ...
      assert.ok(f[5]! >= 1, 'chronyd counted NTS-KE connections');
      assert.ok(f[7]! >= 1, 'chronyd counted authenticated NTP packets');
    } finally {
      await unwind(cleanups);
    }
  });

  it('(c) NTPsec ntpd NTS client → rubidiumd', { timeout: 240_000 }, async () => {
    const cleanups: Array<() => Promise<void>> = [];
    try {
      const pair = await createNetnsPair({ tag: 'ntsc', subnet: SUBNETS.c });
      cleanups.push(() => pair.destroy());
      const server = await startNtsRubidiumd(pair.server, serverLines());
      cleanups.push(() => server.stop());
      const ntpd = await startNtpd({
        ns: pair.client,
        servers: [{ address: pair.serverAddr, options: `nts ca ${certs.ca} iburst minpoll 0 maxpoll 0` }],
      });
      cleanups.push(() => ntpd.stop());
      const peer = await ntpd.waitForSysPeer(pair.serverAddr, 120_000);
      console.log(`# ntpd system peer (NTS): ${JSON.stringify(peer)}`);
      assert.equal(peer.tally, '*');
      // ntpq's association list: auth column "ok" = authenticated (NTS), "none" otherwise.
      const as = await ntpd.ntpq(['associations']);
      console.log(`# ntpq associations:\n${as}`);
      const line = as.split('\n').find((l) => /^\s*\d+\s+\d+\s+[0-9a-f]{4}/.test(l));
      assert.ok(line, as);
      assert.match(line, /\bok\b/);
      const stats = await server.query<Record<string, unknown>>('serverstats');
      console.log(`# rubidiumd serverstats: ${JSON.stringify(stats)}`);
    } finally {
      await unwind(cleanups);
    }
  });
});
