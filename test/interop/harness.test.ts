/**
 * Proves the interop harness with real peers only (no Rubidium code under test):
 * chronyd -x server (local stratum 1) in one namespace, chronyd -x client and NTPsec tools in
 * another, the served-time probe, and a tshark capture of the link.
 * Skipped only when not root; a missing peer binary fails (CI installs them in .ci/run).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  cleanupLeftovers,
  unwind,
  createNetnsPair,
  isRoot,
  listNamespaces,
  nsName,
  ownNamespaces,
  ownStrayProcesses,
  liveManagedProcesses,
  type NetnsPair,
} from '../support/netns.js';
import {
  analyzeCapture,
  ntpdig,
  requirePeers,
  startCapture,
  startChronyd,
  startNtpd,
  type Capture,
  type Chronyd,
  type Ntpd,
} from '../support/peers.js';
import { probeInNs } from '../support/probe.js';

const skip = isRoot() ? false : 'interop tests need root (network namespaces, veth); run as root';

describe('interop harness (chronyd, NTPsec, tshark, probe)', { skip }, () => {
  before(async () => {
    requirePeers(['chronyd', 'chronyc', 'tshark', 'ntpd', 'ntpdig', 'ntpq']);
    const removed = await cleanupLeftovers();
    if (removed.length) console.log(`# removed leftovers: ${removed.join(', ')}`);
  });

  after(async () => {
    // Nothing of ours may be left: namespaces, daemons, captures.
    const prefix = nsName('x').slice(0, -1);
    assert.deepEqual(
      (await listNamespaces()).filter((n) => n.startsWith(prefix)),
      [],
    );
    assert.deepEqual(ownNamespaces(), []);
    assert.deepEqual(
      liveManagedProcesses().map((p) => `${p.name} ${p.pid}`),
      [],
    );
    assert.deepEqual(ownStrayProcesses(), []);
  });

  it('chronyd client selects a chronyd server; probe, ntpdig and the capture agree', { timeout: 120_000 }, async () => {
    const cleanups: Array<() => Promise<void>> = [];
    try {
      const pair: NetnsPair = await createNetnsPair({ tag: 'h', subnet: 1 });
      cleanups.push(() => pair.destroy());
      const capture: Capture = await startCapture(pair.client, pair.clientIf);
      cleanups.push(() => capture.dispose());

      const server: Chronyd = await startChronyd({ ns: pair.server, localStratum: 1 });
      cleanups.push(() => server.stop());
      const client: Chronyd = await startChronyd({
        ns: pair.client,
        servers: [{ address: pair.serverAddr, options: 'iburst minpoll -2 maxpoll -2' }],
      });
      cleanups.push(() => client.stop());

      const t0 = Date.now();
      const sel = await client.waitForSelected(pair.serverAddr, 20_000);
      console.log(`# chronyd client selected ${sel.address} after ${Date.now() - t0} ms (stratum ${sel.stratum})`);
      assert.equal(sel.stratum, 1);
      const tracking = await client.tracking();
      assert.equal(tracking.refName, pair.serverAddr);
      assert.equal(tracking.stratum, 2);
      assert.equal(tracking.leapStatus, 'Normal');

      // The chronyd server serves the host clock (local stratum 1, -x): the probe must agree.
      const probe = await probeInNs(pair.client, pair.serverAddr, 123, { count: 16, intervalMs: 20 });
      console.log(
        `# probe: offset ${(probe.offset * 1e6).toFixed(1)} us, delay ${(probe.delay * 1e6).toFixed(1)} us, ` +
          `${probe.answered}/${probe.sent} answered, timestamps ${probe.timestamping}`,
      );
      assert.ok(probe.answered >= probe.sent / 2, `only ${probe.answered}/${probe.sent} answered`);
      assert.equal(probe.best!.stratum, 1);
      assert.equal(probe.best!.leap, 0);
      assert.ok(probe.delay >= 0 && probe.delay < 0.01, `delay ${probe.delay}`);
      assert.ok(Math.abs(probe.offset) < 1e-3, `served time off by ${probe.offset} s`);

      const dig = await ntpdig(pair.client, pair.serverAddr, { samples: 3 });
      console.log(`# ntpdig: offset ${(dig.offset * 1e6).toFixed(1)} us, stratum ${dig.stratum}, leap ${dig.leap}`);
      assert.equal(dig.stratum, 1);
      assert.ok(Math.abs(dig.offset) < 0.01, `ntpdig offset ${dig.offset}`);

      await capture.stop();
      const a = await analyzeCapture(capture.file);
      console.log(`# capture: ${a.ntpPackets} NTP packets, modes ${JSON.stringify(a.modes)}, ${a.malformed} malformed`);
      assert.ok(a.ntpPackets > 0, 'no NTP packets captured');
      assert.ok((a.modes[3] ?? 0) > 0 && (a.modes[4] ?? 0) > 0, `modes ${JSON.stringify(a.modes)}`);
      assert.equal(a.malformed, 0, a.malformedFrames);
    } finally {
      await unwind(cleanups);
    }
  });

  it('NTPsec ntpd client (no clock discipline) selects a chronyd server', { timeout: 120_000 }, async () => {
    const cleanups: Array<() => Promise<void>> = [];
    try {
      const pair = await createNetnsPair({ tag: 'n', subnet: 2 });
      cleanups.push(() => pair.destroy());
      const server = await startChronyd({ ns: pair.server, localStratum: 1 });
      cleanups.push(() => server.stop());
      const ntpd: Ntpd = await startNtpd({ ns: pair.client, servers: [{ address: pair.serverAddr }] });
      cleanups.push(() => ntpd.stop());
      const peer = await ntpd.waitForSysPeer(pair.serverAddr, 30_000);
      console.log(`# ntpd selected ${peer.remote}: offset ${peer.offsetMs} ms, delay ${peer.delayMs} ms`);
      assert.equal(peer.stratum, 1);
      assert.ok(Math.abs(peer.offsetMs) < 1, `ntpd offset ${peer.offsetMs} ms`);
      // It must not have disciplined anything: ntp_adjtime calls fail without CAP_SYS_TIME.
      assert.doesNotMatch(ntpd.proc.output(), /CLOCK: (step|time reset|adjusting)/i);
    } finally {
      await unwind(cleanups);
    }
  });

  it(
    'NTPsec ntpd serves as an orphan stratum-1; chronyd, ntpdig and the probe read it',
    { timeout: 120_000 },
    async () => {
      const cleanups: Array<() => Promise<void>> = [];
      try {
        const pair = await createNetnsPair({ tag: 'm', subnet: 3 });
        cleanups.push(() => pair.destroy());
        const ntpd = await startNtpd({ ns: pair.server, localStratum: 1 });
        cleanups.push(() => ntpd.stop());
        const client = await startChronyd({
          ns: pair.client,
          servers: [{ address: pair.serverAddr, options: 'iburst minpoll -2 maxpoll -2' }],
        });
        cleanups.push(() => client.stop());
        const sel = await client.waitForSelected(pair.serverAddr, 20_000);
        assert.equal(sel.stratum, 1);
        const probe = await probeInNs(pair.client, pair.serverAddr, 123, { count: 8 });
        console.log(
          `# probe of ntpd: offset ${(probe.offset * 1e6).toFixed(1)} us, stratum ${probe.best!.stratum}, leap ${probe.best!.leap}`,
        );
        assert.equal(probe.best!.stratum, 1);
        assert.equal(probe.best!.leap, 0);
        assert.ok(Math.abs(probe.offset) < 1e-3, `served time off by ${probe.offset} s`);
        const dig = await ntpdig(pair.client, pair.serverAddr);
        assert.ok(Math.abs(dig.offset) < 0.01, `ntpdig offset ${dig.offset}`);
      } finally {
        await unwind(cleanups);
      }
    },
  );
});
