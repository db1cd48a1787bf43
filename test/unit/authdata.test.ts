import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseKeysText } from '../../src/config/keys-file.js';
import { parseConfigText, formatConfig, ConfigError } from '../../src/config/chrony-conf.js';
import { parseNtpConf } from '../../src/config/ntp-conf.js';
import { authDataReports, type AuthDataReport } from '../../src/control/authdata.js';
import { formatAuthData, AUTHDATA_HEADER } from '../../src/cli/format-authdata.js';
import { CmdAccess } from '../../src/cmdmon/access.js';
import { REQ, RPY, requestLength } from '../../src/cmdmon/protocol.js';
import { CmdmonService, type CmdmonEngine } from '../../src/cmdmon/service.js';
import type { SourceConfig } from '../../src/engine/engine.js';
import type { SourceReport } from '../../src/control/reports.js';
import { SymmetricClientAuth } from '../../src/ntp/symmetric-auth.js';
import { setupKeys } from '../../src/daemon/keys-setup.js';

const KEYS = parseKeysText(
  '1 MD5 HEX:00112233445566778899AABBCCDDEEFF\n13 AES128 HEX:' + '42'.repeat(16),
  'k',
  'chrony',
);
const NOW = 1_700_000_100_000_000_000n;

function src(name: string, address: string, keyId?: number): SourceConfig {
  const k = KEYS.find((x) => x.id === keyId);
  return {
    id: `${address}:123`,
    name,
    address: { address, port: 123 },
    ...(k ? { auth: new SymmetricClientAuth(k) } : {}),
  } as SourceConfig;
}

const DETAILS = [
  { cfg: src('ntp1.example.net', '192.0.2.1', 1) },
  { cfg: src('a-very-long-host-name.example.net', '192.0.2.2', 13) },
  { cfg: src('192.0.2.3', '192.0.2.3') },
];

test('authdata reports come from the sources authenticators', () => {
  const r = authDataReports(DETAILS, NOW);
  assert.deepEqual(
    r.map((x) => [x.mode, x.keyId, x.keyType, x.keyTypeName, x.keyLength]),
    [
      ['symmetric', 1, 1, 'MD5', 128],
      ['symmetric', 13, 13, 'AES128', 128],
      ['none', 0, 0, '', 0],
    ],
  );
});

test('authdata: chronyc 4.3 layout (%-27s %4s %5U %4d %4d %I %4d %4d %4d %4d), -n, -c, -v', () => {
  const r = authDataReports(DETAILS, NOW);
  const out = formatAuthData(r).split('\n');
  assert.equal(out[0], AUTHDATA_HEADER);
  assert.equal(out[1], '='.repeat(AUTHDATA_HEADER.length));
  const row = (name: string, mode: string, id: number, type: number, bits: number): string =>
    `${name.padEnd(27)} ${mode.padStart(4)} ${String(id).padStart(5)} ${String(type).padStart(4)} ` +
    `${String(bits).padStart(4)}    -    0    0    0    0`;
  assert.equal(out[2], row('ntp1.example.net', 'SK', 1, 1, 128));
  assert.equal(out[3], row('a-very-long-host-name.ex>', 'SK', 13, 13, 128));
  assert.equal(out[4], row('192.0.2.3', '-', 0, 0, 0));
  assert.equal(out[2]!.length, AUTHDATA_HEADER.length);
  assert.match(formatAuthData(r, { noDns: true }), /^192\.0\.2\.2 {18}/m);
  assert.deepEqual(formatAuthData(r, { csv: true }).split('\n').slice(0, 2), [
    '192.0.2.1,SK,1,1,128,4294967295,0,0,0,0',
    '192.0.2.2,SK,13,13,128,4294967295,0,0,0,0',
  ]);
  const v = formatAuthData(r, { verbose: true });
  assert.match(v, /^ +\.- Auth\. mechanism \(NTS, SK - symmetric key\)\n/);
  assert.equal(v.split('\n')[5], AUTHDATA_HEADER);
  // NTS figures: last NTS-KE 40000 s ago (print_seconds: " 11h"), 8 cookies of 100 bytes.
  const nts: AuthDataReport = {
    ...r[0]!,
    mode: 'nts',
    keyId: 0,
    keyType: 15,
    keyLength: 256,
    lastKeAgo: 40000,
    keAttempts: 1,
    naks: 2,
    cookies: 8,
    cookieLength: 100,
  };
  assert.match(formatAuthData([nts]), /^ntp1\.example\.net {12} NTS {5}0 {3}15  256  11h {4}1 {4}2 {4}8  100$/m);
});

test('cmdmon REQ_AUTH_DATA: candm.h RPY_AuthData layout; unknown address → NOSUCHSOURCE', async () => {
  const sources = DETAILS.map(({ cfg }) => ({ name: cfg.name, address: cfg.address.address }) as SourceReport);
  const engine = { sources: () => sources, sourceDetails: () => DETAILS } as unknown as CmdmonEngine;
  const svc = new CmdmonService({
    engine,
    now: () => NOW,
    monotonicSeconds: () => 0,
    flush: () => {},
    access: new CmdAccess({}),
  });
  const ask = async (addr: string): Promise<Buffer> => {
    const b = Buffer.alloc(requestLength(REQ.AUTH_DATA));
    b[0] = 6;
    b[1] = 1;
    b.writeUInt16BE(REQ.AUTH_DATA, 4);
    addr.split('.').forEach((p, i) => (b[20 + i] = Number(p)));
    b.writeUInt16BE(1, 36); // IPADDR_INET4
    // authdata is not among chronyd's default opencommands: the Unix socket (as chronyc as root).
    return (await svc.handle(b, { transport: 'unix' }))!;
  };
  const r = await ask('192.0.2.2');
  assert.equal(r.readUInt16BE(6), RPY.AUTH_DATA);
  assert.equal(r.readUInt16BE(8), 0);
  const d = 28;
  assert.equal(r.readUInt16BE(d), 1); // RPY_AD_MD_SYMMETRIC
  assert.equal(r.readUInt16BE(d + 2), 13); // key_type CMC_AES128
  assert.equal(r.readUInt32BE(d + 4), 13); // key_id
  assert.equal(r.readUInt16BE(d + 8), 128); // key_length
  assert.equal(r.readUInt32BE(d + 12), 0xffffffff); // last_ke_ago -1
  const none = await ask('192.0.2.3');
  assert.equal(none.readUInt16BE(d), 0);
  assert.equal(none.readUInt32BE(d + 4), 0);
  const missing = await ask('198.51.100.9');
  assert.notEqual(missing.readUInt16BE(8), 0);
});

test('config: key N parses, prints with -p, key ids checked against the key file with file:line', () => {
  const conf = parseConfigText('server 192.0.2.1 iburst key 13\nserver 192.0.2.2\nkeyfile /etc/k.keys', 'c.conf');
  assert.equal(conf.sources[0]!.options.key, 13);
  assert.equal(conf.sources[1]!.options.key, undefined);
  const printed = formatConfig(conf);
  assert.match(printed, /^server 192\.0\.2\.1 iburst key 13$/m);
  assert.match(printed, /^keyfile \/etc\/k\.keys$/m);
  assert.throws(() => parseConfigText('server 192.0.2.1 key x', 'c.conf'), /^ConfigError: c\.conf:1: invalid key 'x'/);
  const warnings: string[] = [];
  const ks = setupKeys(
    conf,
    (m) => warnings.push(m),
    () => KEYS,
  );
  assert.equal(ks.clientAuth(conf.sources[0]!)?.info(NOW).keyId, 13);
  assert.equal(ks.clientAuth(conf.sources[1]!), undefined);
  assert.ok(ks.serverAuth);
  const unknown = parseConfigText('keyfile /etc/k.keys\n\nserver 192.0.2.1 key 7', 'c.conf');
  assert.throws(
    () =>
      setupKeys(
        unknown,
        () => {},
        () => KEYS,
      ),
    (e: unknown) =>
      e instanceof ConfigError && /^c\.conf:3: key 7 of 192\.0\.2\.1 is not in \/etc\/k\.keys$/.test(e.message),
  );
  const nofile = parseConfigText('server 192.0.2.1 key 1', 'c.conf');
  assert.throws(
    () =>
      setupKeys(
        nofile,
        () => {},
        () => KEYS,
      ),
    /c\.conf:1: key 1 of 192\.0\.2\.1: no key file/,
  );
  // A key file that cannot be read is only a warning when no source needs it.
  const unread = parseConfigText('keyfile /nonexistent/chrony.keys', 'c.conf');
  const w: string[] = [];
  assert.equal(setupKeys(unread, (m) => w.push(m)).serverAuth, null);
  assert.match(w[0] ?? '', /\/nonexistent\/chrony\.keys: cannot read key file/);
  assert.ok(!JSON.stringify(warnings).includes('42424242'), 'no key material in messages');
});

test('ntp.conf: keys/trustedkey/key N; the server accepts only trusted keys', () => {
  const ntpKeys = parseKeysText('1 MD5 md5secret\n2 SHA1 sha1secret\n', 'ntp.keys', 'ntp');
  const { config } = parseNtpConf('server 192.0.2.1 key 1\nkeys /etc/ntp.keys\ntrustedkey 1', 'ntp.conf');
  assert.equal(config.sources[0]!.options.key, 1);
  const ks = setupKeys(
    config,
    () => {},
    (_f, dialect) => {
      assert.equal(dialect, 'ntp');
      return ntpKeys;
    },
  );
  assert.equal(ks.clientAuth(config.sources[0]!)?.info(NOW).keyTypeName, 'MD5');
  assert.equal(ks.serverAuth?.keyCount, 1);
  const untrusted = parseNtpConf('server 192.0.2.1 key 2\nkeys /etc/ntp.keys\ntrustedkey 1', 'ntp.conf').config;
  assert.throws(
    () =>
      setupKeys(
        untrusted,
        () => {},
        () => ntpKeys,
      ),
    /ntp\.conf:1: key 2 of 192\.0\.2\.1 is not a trustedkey/,
  );
});
