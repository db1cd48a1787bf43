/**
 * NTS requests answered per second by one core through NtpServer.handleRequest with the NTS
 * ServerAuthenticator (src/nts/ntp-server.ts): cookie open, request authentication, fresh
 * cookies, answer seal. No sockets: this is the CPU cost of the server path alone.
 *
 *   npx tsc -p . && node dist/bench/nts-server-path.js [--seconds 2] [--clients 4096] [--check]
 *   RUBIDIUM_NO_NATIVE=1 node dist/bench/nts-server-path.js     (node:crypto AES-SIV)
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof dist/bench/nts-server-path.js --seconds 5 --only mix
 *
 * Requests are a client's: NTPv4 header, Unique Identifier, one cookie (sealed by the server's
 * keys), 0..7 cookie placeholders, Authenticator sealed with the client's C2S key, empty
 * plaintext (as chrony and NTPsec send). Every client has its own address and keys (`--clients`,
 * more than any per-key cache), and the requests cycle through them. Rows: fixed placeholder
 * counts and "mix" (0..7 in turn). Before timing, every client is answered once (the first 16
 * with each placeholder count) and the answers checked with an independent AES-SIV (noble):
 * size, Unique Identifier, S2C opens the Authenticator, one fresh cookie per cookie/placeholder.
 */
import { randomBytes } from 'node:crypto';
import type { Endpoint, ReferenceState } from '../src/engine/types.js';
import { NtpServer } from '../src/ntp/server.js';
import { decodePacket, NTP_HEADER_LENGTH } from '../src/ntp/packet.js';
import { NS_PER_S, type Instant } from '../src/time/ntp-time.js';
import * as aeadModule from '../src/nts/aead.js';
import { AES_SIV_CMAC_256, AES_SIV_CMAC_256_NOBLE } from '../src/nts/aead.js';
import { ServerCookieKeys } from '../src/nts/cookies.js';
import { NtsServerAuthenticator } from '../src/nts/ntp-server.js';
import {
  EF_NTS_AUTH_AND_EEF,
  EF_NTS_COOKIE,
  EF_NTS_COOKIE_PLACEHOLDER,
  EF_NTS_UNIQUE_IDENTIFIER,
  buildAuthEf,
  concatBytes,
  encodeEf,
  locateEfs,
  parseAuthBody,
  parseEfList,
} from '../src/nts/nts-ef.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1]! : def;
}
const seconds = Number(arg('seconds', '2'));
const clients = Number(arg('clients', '4096'));
const only = arg('only', '');

const T0: Instant = 1_750_000_000n * NS_PER_S;
const SYNCED: ReferenceState = {
  synchronized: true,
  leap: 0,
  stratum: 2,
  refId: 0xc0000201,
  refTime: T0 - 30n * NS_PER_S,
  rootDelay: 0.0125,
  rootDispersion: 0.0031,
  precision: -23,
};

const rnd = (n: number): Uint8Array => new Uint8Array(randomBytes(n));

interface Client {
  from: Endpoint;
  c2s: Uint8Array;
  s2c: Uint8Array;
  /** One request per placeholder count 0..7. */
  requests: Uint8Array[];
}

const keys = new ServerCookieKeys(rnd);
const auth = new NtsServerAuthenticator(keys, rnd);
const server = new NtpServer({ clientLogLimit: 16384, access: () => true, random: () => 0.5, auth: [auth] });

function request(c: { c2s: Uint8Array; s2c: Uint8Array }, placeholders: number): Uint8Array {
  const header = new Uint8Array(NTP_HEADER_LENGTH);
  header[0] = (4 << 3) | 3;
  header[2] = 6;
  header[3] = 0xe9;
  header.set(rnd(8), 40);
  const cookie = keys.seal({ aead: 15, c2s: c.c2s, s2c: c.s2c });
  const parts = [header, encodeEf(EF_NTS_UNIQUE_IDENTIFIER, rnd(32)), encodeEf(EF_NTS_COOKIE, cookie)];
  for (let i = 0; i < placeholders; i++) parts.push(encodeEf(EF_NTS_COOKIE_PLACEHOLDER, new Uint8Array(cookie.length)));
  const ad = concatBytes(parts);
  return concatBytes([ad, buildAuthEf(AES_SIV_CMAC_256_NOBLE, c.c2s, rnd(16), ad, new Uint8Array(0))]);
}

const all: Client[] = [];
for (let i = 0; i < clients; i++) {
  const c = { c2s: rnd(32), s2c: rnd(32) };
  const from = { address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, port: 40000 + (i % 20000) };
  all.push({ ...c, from, requests: Array.from({ length: 8 }, (_, p) => request(c, p)) });
}

let rx = T0;

/** Answers one request and checks it independently; throws on anything wrong. */
function check(c: Client, placeholders: number): void {
  rx += 1_000_000n;
  const req = c.requests[placeholders]!;
  const out = server.handleRequest(req, c.from, rx, rx + 50_000n, SYNCED);
  if (!out) throw new Error('request dropped');
  if (out.data.length > req.length) throw new Error('answer longer than request');
  const dec = decodePacket(out.data);
  if (!dec.ok || dec.packet.stratum === 0) throw new Error('answer undecodable or KoD');
  const efs = locateEfs(dec.packet);
  const a = efs[efs.length - 1]!;
  if (a.type !== EF_NTS_AUTH_AND_EEF || efs[0]!.type !== EF_NTS_UNIQUE_IDENTIFIER) throw new Error('answer layout');
  const parts = parseAuthBody(AES_SIV_CMAC_256_NOBLE, a.body)!;
  const plain = AES_SIV_CMAC_256_NOBLE.open(c.s2c, parts.nonce, parts.ciphertext, [out.data.subarray(0, a.start)]);
  if (!plain) throw new Error('answer does not open with S2C');
  const cookies = parseEfList(plain)!.filter((e) => e.type === EF_NTS_COOKIE);
  if (cookies.length !== placeholders + 1)
    throw new Error(`${cookies.length} cookies for ${placeholders} placeholders`);
  for (const ck of cookies) {
    const opened = keys.open(ck.body);
    if (!opened || Buffer.compare(opened.s2c, c.s2c) !== 0) throw new Error('fresh cookie does not open');
  }
}

// Every client once (placeholder counts in turn), the first 16 with every count.
all.forEach((c, i) => {
  for (let p = 0; p < 8; p++) if (i < 16 || p === i % 8) check(c, p);
});
const checked = all.length + Math.min(16, all.length) * 7;

function rate(pick: (i: number) => Uint8Array, from: (i: number) => Endpoint): number {
  let i = 0;
  const step = (): void => {
    rx += 1_000n;
    if (!server.handleRequest(pick(i), from(i), rx, rx + 50_000n, SYNCED)) throw new Error('dropped');
    i++;
  };
  for (let w = 0; w < 20_000; w++) step();
  let n = 0;
  const start = process.hrtime.bigint();
  const end = start + BigInt(Math.round(seconds * 1e9));
  let now = start;
  while (now < end) {
    for (let k = 0; k < 256; k++) step();
    n += 256;
    now = process.hrtime.bigint();
  }
  return n / (Number(now - start) / 1e9);
}

const backend = (aeadModule as Record<string, unknown>)['AES_SIV_CMAC_256_BACKEND'] ?? 'node:crypto';
console.log(
  `NTS server path, ${clients} clients, AEAD 15 on ${String(backend)}; answers checked: ${checked}; ` +
    `AES_SIV_CMAC_256 ${AES_SIV_CMAC_256 === AES_SIV_CMAC_256_NOBLE ? 'noble' : 'default'}`,
);
const rows: [string, (i: number) => Uint8Array][] = [
  ['placeholders 0', (i) => all[i % clients]!.requests[0]!],
  ['placeholders 3', (i) => all[i % clients]!.requests[3]!],
  ['placeholders 7', (i) => all[i % clients]!.requests[7]!],
  ['mix 0..7', (i) => all[i % clients]!.requests[(i >>> 3) % 8]!],
];
for (const [label, pick] of rows) {
  if (only && !label.startsWith(only)) continue;
  const r = rate(pick, (i) => all[i % clients]!.from);
  console.log(`${label.padEnd(16)} ${Math.round(r).toString().padStart(8)} requests/s per core`);
}
