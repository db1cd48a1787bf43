/**
 * ntp.conf support against the real peers:
 *  (a) the chrony.conf printed by `rubidiumd --convert-ntp-conf` for several realistic ntp.conf
 *      files (NTPsec's shipped one included) is accepted by the real `chronyd -x -p` (parses and
 *      prints the configuration, never touches the clock) and by Rubidium's chrony.conf parser;
 *  (b) rubidiumd -x started with an ntp.conf in a namespace serves a client its restrict rules
 *      allow and ignores one matched by `restrict ... ignore` (NTPsec's ntpdig as the client).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  assertNothingLeft,
  cleanupLeftovers,
  createNetnsPair,
  isRoot,
  makeTempDir,
  removeTempDir,
  run,
  startDaemon,
  waitFor,
  unwind,
} from '../support/netns.js';
import { ntpdig, PEER_BINARIES, requirePeers } from '../support/peers.js';
import { RUBIDIUMD, rubidiumdArgv, writeConf } from '../support/rubidiumd.js';
import { parseConfigText } from '../../src/config/chrony-conf.js';

const skip = isRoot() ? false : 'interop tests need root (network namespaces)';

const NTPSEC_CONF = '/opt/rubidium-peers/ntpsec/etc/ntpsec/ntp.conf';

/** Realistic ntp.conf files (Debian's NTP Classic default, a LAN server, NTPsec with NTS and keys). */
const SAMPLES: Record<string, string> = {
  'classic-debian.conf': `driftfile /var/lib/ntp/ntp.drift
leapfile /usr/share/zoneinfo/leap-seconds.list
statistics loopstats peerstats clockstats
filegen loopstats file loopstats type day enable
filegen peerstats file peerstats type day enable
filegen clockstats file clockstats type day enable
pool 0.ubuntu.pool.ntp.org iburst
pool 1.ubuntu.pool.ntp.org iburst
pool ntp.ubuntu.com
restrict -4 default kod notrap nomodify nopeer noquery limited
restrict -6 default kod notrap nomodify nopeer noquery limited
restrict 127.0.0.1
restrict ::1
restrict source notrap nomodify noquery
`,
  'lan-server.conf': `server 192.0.2.10 iburst prefer minpoll 4 maxpoll 6
server 192.0.2.11 iburst
peer 192.0.2.12
tos minsane 2 orphan 10 maxdist 1.5
tinker step 0.5 panic 0 stepout 300
statsdir /var/log/ntpstats/
statistics loopstats
interface listen 192.0.2.1
disable monitor
discard average 4 minimum 2
restrict default ignore
restrict 192.0.2.0 mask 255.255.255.0 nomodify notrap
restrict 192.0.2.66 noserve
restrict 2001:db8::/32 kod limited
`,
  'ntpsec-keys.conf': `server time.cloudflare.com nts
server 192.0.2.20 key 7 iburst
keys /etc/ntpsec/ntp.keys
trustedkey 7 (10 ... 12)
controlkey 7
restrict default kod limited nomodify noquery
`,
};

describe('ntp.conf: converter checked by chronyd, restrict in the daemon', { skip }, () => {
  before(async () => {
    requirePeers(['chronyd', 'ntpdig']);
    await cleanupLeftovers();
  });

  after(() => {
    assertNothingLeft();
  });

  it('converted ntp.conf files are accepted by chronyd -x -p and by our chrony.conf parser', async () => {
    const dir = makeTempDir('ntpconv');
    try {
      const inputs: Array<[string, string]> = [[NTPSEC_CONF, readFileSync(NTPSEC_CONF, 'utf8')]];
      for (const [name, text] of Object.entries(SAMPLES)) {
        const p = join(dir, name);
        writeFileSync(p, text);
        inputs.push([p, text]);
      }
      for (const [file, text] of inputs) {
        const conv = await run(process.execPath, [RUBIDIUMD, '--convert-ntp-conf', file], { timeoutMs: 20_000 });
        assert.equal(conv.code, 0, `${file}: ${conv.stderr}`);
        const out = join(dir, `${file.replace(/\W/g, '_')}.chrony.conf`);
        writeFileSync(out, conv.stdout);
        const chronyd = await run(PEER_BINARIES.chronyd, ['-x', '-p', '-f', out], { timeoutMs: 20_000 });
        assert.equal(
          chronyd.code,
          0,
          `chronyd -p rejected the conversion of ${file}:\n${chronyd.stderr}\n${conv.stdout}`,
        );
        // chronyd -p prints the directives it accepted: every non-comment line of ours is there.
        const ours = conv.stdout.split('\n').filter((l) => l.trim() && !l.startsWith('#'));
        for (const l of ours) assert.ok(chronyd.stdout.includes(l), `${file}: chronyd did not print '${l}'`);
        const sources = text.split('\n').filter((l) => /^(server|pool|peer)\s/.test(l)).length;
        assert.equal(ours.filter((l) => /^(server|pool)\s/.test(l)).length, sources, `${file}: every source converted`);
        if (!/\b(key|nts)\b/.test(text)) {
          const c = parseConfigText(conv.stdout, out); // Rubidium's parser (it refuses key/nts: issue 5)
          assert.equal(c.sources.length, sources);
        }
      }
    } finally {
      removeTempDir(dir);
    }
  });

  it('rubidiumd -f ntp.conf serves clients restrict allows and ignores `restrict ... ignore`', async () => {
    const cleanups: Array<() => Promise<void>> = [];
    try {
      const pair = await createNetnsPair({ tag: 'ntpconf', subnet: 41 });
      cleanups.push(() => pair.destroy());
      const dir = makeTempDir('ntpconf');
      cleanups.push(async () => removeTempDir(dir));
      const conf = writeConf(
        dir,
        [
          'tos orphan 8 orphanwait 0', // serve synchronised (local stratum) time at once, without sources
          'restrict default kod nomodify noquery limited',
          `restrict ${pair.clientAddr} ignore`,
          `restrict ${pair.serverAddr}`,
        ],
        'ntp.conf',
      );
      const p = await run(process.execPath, [RUBIDIUMD, '-f', conf, '-p'], { timeoutMs: 20_000 });
      assert.equal(p.code, 0, p.stderr);
      assert.match(p.stdout, new RegExp(`^restrict ${pair.clientAddr.replace(/\./g, '\\.')} ignore$`, 'm'));
      // A private /run: the default command socket must not touch other daemons' sockets.
      const proc = await startDaemon(
        pair.server,
        [
          'unshare',
          '--mount',
          '--propagation',
          'private',
          'sh',
          '-c',
          'mount -t tmpfs tmpfs /run && exec "$0" "$@"',
          ...rubidiumdArgv(conf),
        ],
        {
          name: `rubidiumd@${pair.server}`,
          readyPattern: /Serving NTP on 0\.0\.0\.0:123/,
          logFile: join(dir, 'rubidiumd.log'),
        },
      );
      cleanups.push(async () => void (await proc.stop()));
      // Allowed: a client on the server's own address (matches `restrict SERVERADDR`, no flags).
      const ok = await waitFor(() => ntpdig(pair.server, pair.serverAddr).catch(() => null), { timeoutMs: 20_000 });
      assert.ok(ok, 'the allowed client gets an answer');
      assert.equal(ok.stratum, 8);
      // Ignored: the client namespace's address.
      await assert.rejects(ntpdig(pair.client, pair.serverAddr, { timeoutS: 2 }), /no JSON result|timed out|exit/i);
    } finally {
      await unwind(cleanups);
    }
  });
});
