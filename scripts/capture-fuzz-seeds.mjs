#!/usr/bin/env node
/**
 * Regenerates the fuzzing seeds in test/fixtures/packets/*.json from real peers (root needed;
 * run `npx tsc -p .` first: it uses the compiled test helpers). In a network namespace, on lo:
 *   1. a chronyd 4.3 client polls a chronyd server: plain, xleave, symmetric keys (MD5, SHA1,
 *      AES128-CMAC, SHA256) and NTS (self-signed certificate made with openssl);
 *   2. NTPsec's ntpdig queries chronyd; chronyc sends cmdmon requests;
 *   3. chronyd is replaced by NTPsec's ntpd (same keys): the chronyd client polls it, ntpdig and
 *      ntpq (mode 6) query it.
 * Each step is captured with tshark; the UDP payloads are deduplicated (at most 3 per kind,
 * sender and length class) so the fixtures stay small. Also stores leap-seconds.list and the
 * right/UTC TZif file as file seeds.
 *
 *   sudo node scripts/capture-fuzz-seeds.mjs [--out DIR]
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync, mkdirSync, chmodSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = process.argv.includes('--out')
  ? process.argv[process.argv.indexOf('--out') + 1]
  : join(root, 'test/fixtures/packets');
const netns = await import(join(root, 'dist/test/support/netns.js'));
const peers = await import(join(root, 'dist/test/support/peers.js'));
const { createNetnsPair, makeTempDir, removeTempDir, runInNs, sleep } = netns;
const { startChronyd, startNtpd, startCapture, ntpdig, requirePeers, PEER_BINARIES, ntpsecEnv } = peers;

if (process.getuid?.() !== 0) {
  console.error('capture-fuzz-seeds: needs root (network namespaces)');
  process.exit(2);
}
requirePeers(['chronyd', 'chronyc', 'tshark', 'ntpd', 'ntpq', 'ntpdig']);

const KEYS = [
  ['1', 'MD5', '6B5036B6B7E4D1F5C8B0B2E2A9A1C0D3'],
  ['2', 'SHA1', '1DC764E0791B11FA67EFC7ECBC4B0D73F68A070C'],
  ['3', 'AES128', '6B5036B6B7E4D1F5C8B0B2E2A9A1C0D3'],
  ['4', 'SHA256', '1DC764E0791B11FA67EFC7ECBC4B0D73F68A070C1DC764E0791B11FA67EFC7EC'],
];
const CMDPORT_CLIENT = 10323;

/** tshark fields of every UDP datagram in a capture. */
function datagrams(file) {
  const out = execFileSync(
    PEER_BINARIES.tshark,
    ['-n', '-r', file, '-Y', 'udp', '-T', 'fields', '-e', 'udp.srcport', '-e', 'udp.dstport', '-e', 'udp.payload'],
    {
      encoding: 'utf8',
      maxBuffer: 64 << 20,
    },
  );
  return out
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [sp, dp, hex] = l.split('\t');
      return { sport: Number(sp), dport: Number(dp), hex: (hex ?? '').replace(/:/g, '') };
    })
    .filter((d) => d.hex.length > 0);
}

function classify(hex, sport, dport) {
  const b0 = parseInt(hex.slice(0, 2), 16);
  if (sport === 323 || dport === 323 || sport === CMDPORT_CLIENT || dport === CMDPORT_CLIENT) return 'cmdmon';
  if ((b0 & 7) === 6) return 'mode6';
  // NTS extension fields (Unique Identifier 0x0104, Cookie 0x0204) right after the header.
  if (hex.length > 96 && /^0[1-4]04/.test(hex.slice(96))) return 'nts-ntp';
  return 'ntp';
}

const packets = [];
const seen = new Map();
function keep(kind, source, description, hex) {
  const len = hex.length / 2;
  const cls = `${kind}|${source}|${len < 48 ? len : len <= 72 ? len : Math.floor(len / 64)}`;
  const n = seen.get(cls) ?? 0;
  if (n >= 3 || packets.some((p) => p.hex === hex)) return;
  seen.set(cls, n + 1);
  packets.push({ kind, source, description, hex });
}

async function step(ns, label, server, client, action) {
  const cap = await startCapture(ns, 'lo', { filter: 'udp' });
  try {
    await action();
    await sleep(500);
  } finally {
    await cap.stop();
  }
  for (const d of datagrams(cap.file)) {
    const kind = classify(d.hex, d.sport, d.dport);
    // cmdmon: chronyc's requests have packet type 1; the helper's chronyc checks are chronyc too.
    const fromServer = kind === 'cmdmon' ? d.hex.slice(2, 4) === '02' : d.sport === 123;
    const source =
      kind === 'cmdmon' ? (fromServer ? 'chronyd 4.3 (cmdmon reply)' : 'chronyc 4.3') : fromServer ? server : client;
    keep(kind, source, `${label}: ${fromServer ? 'answer' : 'request'} (${d.hex.length / 2} bytes)`, d.hex);
  }
  await cap.dispose();
}

// A veth pair: NTPsec's ntpd reports ready only once it listens on a non-loopback interface.
const pair = await createNetnsPair({ tag: 'fuzzcap', subnet: 93 });
const ns = pair.server;
const dir = makeTempDir('fuzzcap');
const stops = [];
try {
  chmodSync(dir, 0o755);
  // A self-signed certificate for the NTS server, valid for the loopback addresses used.
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
      '-days',
      '2',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:127.0.0.5',
    ],
    { stdio: 'ignore' },
  );
  for (const f of ['key.pem', 'cert.pem']) chmodSync(join(dir, f), 0o644);
  writeFileSync(join(dir, 'chrony.keys'), KEYS.map(([id, t, k]) => `${id} ${t} HEX:${k}`).join('\n') + '\n', {
    mode: 0o644,
  });
  writeFileSync(
    join(dir, 'ntp.keys'),
    KEYS.map(([id, t, k]) => `${id} ${t === 'AES128' ? 'AES128CMAC' : t} ${k.toLowerCase()}`).join('\n') + '\n',
    { mode: 0o644 },
  );

  const server = await startChronyd({
    ns,
    localStratum: 1,
    allow: 'all',
    name: 'chronyd-server',
    extraConfig: [
      `keyfile ${dir}/chrony.keys`,
      `ntsservercert ${dir}/cert.pem`,
      `ntsserverkey ${dir}/key.pem`,
      'cmdallow all',
    ],
  });
  stops.push(() => server.stop());
  // The chronyd client runs only during the steps that capture it (its polls would mix in).
  const SERVERS = [
    { address: '127.0.0.1', options: 'iburst minpoll -2 maxpoll -2 xleave' },
    { address: '127.0.0.2', options: 'iburst minpoll -2 maxpoll -2 key 1' },
    { address: '127.0.0.3', options: 'iburst minpoll -2 maxpoll -2 key 2' },
    { address: '127.0.0.4', options: 'iburst minpoll -2 maxpoll -2 key 3' },
    { address: '127.0.0.6', options: 'iburst minpoll -2 maxpoll -2 key 4' },
  ];
  const runClient = async (servers, seconds) => {
    const client = await startChronyd({
      ns,
      name: 'chronyd-client',
      port: 0,
      cmdPort: CMDPORT_CLIENT,
      servers,
      extraConfig: [`keyfile ${dir}/chrony.keys`, `ntstrustedcerts ${dir}/cert.pem`, 'nocerttimecheck 1'],
    });
    try {
      await sleep(seconds * 1000);
    } finally {
      await client.stop();
    }
  };
  await step(
    ns,
    'chronyd 4.3 client and server (plain, xleave, MD5/SHA1/AES128/SHA256 keys, NTS)',
    'chronyd 4.3 server',
    'chronyd 4.3 client',
    () => runClient([...SERVERS, { address: '127.0.0.5', options: 'iburst minpoll -2 maxpoll -2 nts' }], 6),
  );
  await step(ns, 'ntpdig (NTPsec 1.2.2) against chronyd', 'chronyd 4.3 server', 'ntpdig (NTPsec 1.2.2)', () =>
    ntpdig(ns, '127.0.0.1', { samples: 2 }),
  );
  await step(ns, 'chronyc 4.3 cmdmon against chronyd', 'chronyd 4.3 server', 'chronyc 4.3', async () => {
    for (const c of [
      ['tracking'],
      ['sources'],
      ['sourcestats'],
      ['ntpdata', '127.0.0.1'],
      ['serverstats'],
      ['clients'],
      ['activity'],
      ['authdata'],
      ['selectdata'],
      ['burst', '1/2'],
      ['makestep'],
    ])
      await server.chronyc(c).catch(() => '');
  });
  await server.stop();
  const ntpd = await startNtpd({
    ns,
    localStratum: 2,
    name: 'ntpd',
    extraConfig: [`keys ${dir}/ntp.keys`, 'trustedkey 1 2 3 4'],
  });
  stops.push(() => ntpd.stop());
  await step(
    ns,
    'chronyd 4.3 client against NTPsec 1.2.2 ntpd (plain, MD5/SHA1/AES128/SHA256 keys)',
    'NTPsec 1.2.2 ntpd',
    'chronyd 4.3 client',
    () => runClient(SERVERS, 5),
  );
  await step(ns, 'ntpdig (NTPsec 1.2.2) against ntpd', 'NTPsec 1.2.2 ntpd', 'ntpdig (NTPsec 1.2.2)', () =>
    ntpdig(ns, '127.0.0.1'),
  );
  await step(ns, 'ntpq (NTPsec 1.2.2) mode 6 against ntpd', 'NTPsec 1.2.2 ntpd', 'ntpq (NTPsec 1.2.2)', async () => {
    for (const c of [
      ['-pn'],
      ['-c', 'rv'],
      ['-c', 'rv 0 version,stratum'],
      ['-c', 'as'],
      ['-c', 'rv &1'],
      ['-c', 'sysinfo'],
    ])
      await runInNs(ns, '/usr/bin/python3', [PEER_BINARIES.ntpq, ...c, '127.0.0.1'], {
        env: ntpsecEnv(),
        timeoutMs: 10_000,
        check: false,
      });
  });
} finally {
  for (const s of stops.reverse()) await s().catch(() => undefined);
  await pair.destroy().catch((e) => console.error(`cleanup: ${e.message}`));
  removeTempDir(dir);
}

mkdirSync(outDir, { recursive: true });
const groups = { ntp: [], 'nts-ntp': [], mode6: [], cmdmon: [] };
for (const p of packets) groups[p.kind].push(p);
const titles = {
  ntp: 'NTP client/server packets (with and without symmetric-key MACs) from chronyd 4.3, NTPsec 1.2.2 ntpd and ntpdig',
  'nts-ntp': 'NTS-protected NTP packets between a chronyd 4.3 NTS client and a chronyd 4.3 NTS server',
  mode6: 'NTP mode 6 control requests from NTPsec 1.2.2 ntpq and the answers of ntpd',
  cmdmon: 'chrony 4.3 cmdmon requests from chronyc and the replies of chronyd',
};
for (const [kind, list] of Object.entries(groups)) {
  writeFileSync(
    join(outDir, `${kind}.json`),
    JSON.stringify({ description: titles[kind], packets: list }, null, 1) + '\n',
  );
  console.log(`${kind}: ${list.length} packets`);
}
const files = [];
for (const [source, path, description] of [
  ['leap-seconds.list (tzdata)', '/usr/share/zoneinfo/leap-seconds.list', 'IETF leap-seconds.list shipped with tzdata'],
  ['tzfile right/UTC (tzdata)', '/usr/share/zoneinfo/right/UTC', 'TZif file with leap second records'],
]) {
  if (existsSync(path)) files.push({ kind: 'file', source, description, hex: readFileSync(path).toString('hex') });
}
writeFileSync(
  join(outDir, 'files.json'),
  JSON.stringify({ description: 'leap second files from Debian 12 tzdata', packets: files }, null, 1) + '\n',
);
console.log(`files: ${files.length}`);
