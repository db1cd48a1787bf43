import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { ClientAssociation } from '../../src/ntp/client.js';
import { NtpServer } from '../../src/ntp/server.js';
import { decodePacket, encodePacket, type NtpPacket } from '../../src/ntp/packet.js';
import { refIdFromAscii } from '../../src/ntp/refid.js';
import { parseKeysText, type SymmetricKey } from '../../src/config/keys-file.js';
import {
  computeMac,
  keyUsable,
  signPacket,
  SymmetricClientAuth,
  SymmetricServerAuth,
  verifyPacketMac,
} from '../../src/ntp/symmetric-auth.js';
import type { ReferenceState } from '../../src/engine/types.js';
import { NS_PER_S, type Instant } from '../../src/time/ntp-time.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

const KEYS = parseKeysText(
  [
    '1 MD5 HEX:000102030405060708090A0B0C0D0E0F10111213',
    '2 SHA1 ASCII:sha1-secret-key',
    '3 AES128 HEX:2b7e151628aed2a6abf7158809cf4f3c',
    '4 AES256 HEX:603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4',
    '5 SHA256 HEX:' + '11'.repeat(32),
    '6 SHA3-512 HEX:' + '22'.repeat(32),
    '7 plain-text-md5-key',
    '8 WHIRLPOOL HEX:' + '33'.repeat(20),
  ].join('\n'),
  'test.keys',
  'chrony',
);
const key = (id: number): SymmetricKey => KEYS.find((k) => k.id === id)!;

const T0 = 1_750_000_000n * NS_PER_S;
const SERVER_EP = { address: '192.0.2.1', port: 123 };
const CLIENT_EP = { address: '203.0.113.5', port: 40000 };
const REF: ReferenceState = {
  synchronized: true,
  leap: 0,
  stratum: 1,
  refId: refIdFromAscii('GPS'),
  refTime: T0 - 10n * NS_PER_S,
  rootDelay: 0,
  rootDispersion: 0.0001,
  precision: -24,
};

function header(version = 4, mode = 3, transmit = 0x1234_5678_9abc_def0n): Uint8Array {
  const p: NtpPacket = {
    leap: 0,
    version,
    mode,
    stratum: 0,
    poll: 6,
    precision: 0,
    rootDelay: 0,
    rootDispersion: 0,
    refId: 0,
    refTime: 0n,
    origin: 0n,
    receive: 0n,
    transmit,
    extensions: [],
  };
  return encodePacket(p);
}

function decode(b: Uint8Array): NtpPacket {
  const d = decodePacket(b);
  assert.ok(d.ok, `decodes: ${d.ok ? '' : d.reason}`);
  return d.packet;
}

test('AES-CMAC matches RFC 4493 (AES-128) and SP 800-38B (AES-256) vectors', () => {
  const m16 = hex('6bc1bee22e409f96e93d7e117393172a');
  assert.equal(toHex(computeMac(key(3), new Uint8Array(0))), 'bb1d6929e95937287fa37d129b756746');
  assert.equal(toHex(computeMac(key(3), m16)), '070a16b46b4d4144f79bdd9dd04a287c');
  const m40 = hex('6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411');
  assert.equal(toHex(computeMac(key(3), m40)), 'dfa66747de9ae63030ca32611497c827');
  assert.equal(toHex(computeMac(key(4), new Uint8Array(0))), '028962f61b7bf89efc6b551f4667d983');
  assert.equal(toHex(computeMac(key(4), m16)), '28a7023f452e8f82bd4bf28d8c37c35c');
});

test('MD5, SHA1, SHA256 MACs are digest(key || packet), as openssl computes them', () => {
  const pkt = header();
  for (const [id, alg] of [
    [1, 'md5'],
    [2, 'sha1'],
    [5, 'sha256'],
    [7, 'md5'],
  ] as const) {
    const k = key(id);
    const input = Buffer.concat([Buffer.from(k.material()), Buffer.from(pkt)]);
    const openssl = execFileSync('openssl', ['dgst', `-${alg}`, '-binary'], { input });
    assert.equal(toHex(computeMac(k, pkt)), openssl.toString('hex'), `key ${id}`);
  }
});

test('signPacket: key id then MAC; NTPv4 MACs truncated to 20 bytes, NTPv3 keeps the digest', () => {
  const v4 = signPacket(key(1), header(4), 4);
  assert.equal(v4.length, 48 + 4 + 16);
  assert.equal(new DataView(v4.buffer).getUint32(48), 1);
  const s256v4 = signPacket(key(5), header(4), 4);
  assert.equal(s256v4.length, 48 + 4 + 20);
  assert.deepEqual(s256v4.subarray(52), computeMac(key(5), header(4)).subarray(0, 20));
  const s512v3 = signPacket(key(6), header(3), 3);
  assert.equal(s512v3.length, 48 + 4 + 64);
  // Truncated SHA256 in v4 verifies (chrony accepts it), the decoder sees a 24-byte MAC.
  assert.ok(verifyPacketMac(key(5), s256v4, decode(s256v4)));
  for (const id of [1, 2, 3, 4, 7]) {
    const s = signPacket(key(id), header(4), 4);
    assert.ok(verifyPacketMac(key(id), s, decode(s)), `key ${id}`);
  }
});

test('verification refuses tampering, other keys, truncated and NAK MACs', () => {
  const k = key(2);
  const good = signPacket(k, header(4), 4);
  for (let i = 0; i < good.length; i++) {
    if (i >= 48 && i < 52) continue; // key id: a different id is checked below
    const bad = good.slice();
    bad[i]! ^= 0x01;
    const d = decodePacket(bad);
    assert.ok(!d.ok || !verifyPacketMac(k, bad, d.packet), `byte ${i} flipped`);
  }
  // Same MAC claimed for another key id.
  const other = good.slice();
  new DataView(other.buffer).setUint32(48, 1);
  assert.equal(verifyPacketMac(k, other, decode(other)), false);
  assert.equal(verifyPacketMac(key(1), other, decode(other)), false);
  // A SHA1 MAC cut to 16 bytes (still a valid MAC length on the wire) is refused.
  const cut = good.slice(0, good.length - 4);
  assert.equal(verifyPacketMac(k, cut, decode(cut)), false);
  // MD5 MAC padded to 20 bytes: wrong length for MD5.
  const md5 = signPacket(key(1), header(4), 4);
  const padded = new Uint8Array(md5.length + 4);
  padded.set(md5);
  assert.equal(verifyPacketMac(key(1), padded, decode(padded)), false);
  // Crypto-NAK (lone zero key id) and no MAC at all.
  const nak = new Uint8Array(52);
  nak.set(header(4));
  assert.equal(verifyPacketMac(k, nak, decode(nak)), false);
  assert.equal(verifyPacketMac(k, header(4), decode(header(4))), false);
});

test('unsupported key types are reported, not used', () => {
  assert.match(keyUsable(key(8)) ?? '', /WHIRLPOOL/);
  assert.throws(() => new SymmetricClientAuth(key(8)), /WHIRLPOOL/);
  assert.equal(new SymmetricServerAuth(KEYS).keyCount, KEYS.length - 1);
  assert.equal(new SymmetricServerAuth(KEYS, new Set([1, 3])).keyCount, 2);
});

test('client authenticator: info, wrong key id, missing MAC', () => {
  const c = new SymmetricClientAuth(key(3));
  assert.deepEqual(c.info(T0), {
    mode: 'symmetric',
    keyId: 3,
    keyType: 13,
    keyTypeName: 'AES128',
    keyLength: 128,
    keAttempts: 0,
    lastKeAgo: null,
    cookies: 0,
    cookieLength: 0,
    naks: 0,
  });
  assert.equal(new SymmetricClientAuth(key(1)).info(T0).keyType, 1);
  assert.equal(new SymmetricClientAuth(key(2)).info(T0).keyLength, 'sha1-secret-key'.length * 8);
  const answer = signPacket(key(1), header(4, 4), 4);
  assert.deepEqual(c.verifyResponse(answer, decode(answer), T0), { ok: false, reason: 'wrong-key' });
  assert.deepEqual(c.verifyResponse(header(4, 4), decode(header(4, 4)), T0), { ok: false, reason: 'no-mac' });
  const mine = signPacket(key(3), header(4, 4), 4);
  assert.deepEqual(c.verifyResponse(mine, decode(mine), T0), { ok: true });
});

test('server authenticator: answers signed with the request key; unknown key / bad MAC dropped', () => {
  const s = new SymmetricServerAuth(KEYS);
  const reqData = signPacket(key(2), header(4), 4);
  const r = s.verifyRequest(reqData, decode(reqData), CLIENT_EP, T0);
  assert.equal(r.kind, 'ok');
  if (r.kind !== 'ok') return;
  assert.equal(r.keyId, 2);
  const signed = r.sign(header(4, 4));
  assert.ok(verifyPacketMac(key(2), signed, decode(signed)));
  const unknown = signPacket(parseKeysText('99 MD5 HEX:0011223344556677', 'x', 'chrony')[0]!, header(4), 4);
  assert.deepEqual(s.verifyRequest(unknown, decode(unknown), CLIENT_EP, T0), { kind: 'drop', reason: 'unknown-key' });
  const bad = reqData.slice();
  bad[40]! ^= 0x80;
  assert.deepEqual(s.verifyRequest(bad, decode(bad), CLIENT_EP, T0), { kind: 'drop', reason: 'bad-mac' });
  assert.deepEqual(s.stats, { authentic: 1, unknownKey: 1, badMac: 1 });
  // NTPv3 request with a key whose digest is longer than 20 bytes: full-length MAC in the answer.
  const v3 = signPacket(key(5), header(3), 3);
  assert.equal(v3.length, 48 + 4 + 32);
  const r3 = s.verifyRequest(v3, decode(v3), CLIENT_EP, T0);
  assert.equal(r3.kind, 'ok');
  if (r3.kind === 'ok') assert.equal(r3.sign(header(3, 4)).length, 48 + 4 + 32);
});

/** One request/answer exchange between a real ClientAssociation and NtpServer. */
function exchange(
  c: ClientAssociation,
  s: NtpServer,
  now: Instant,
  tamper?: (b: Uint8Array) => Uint8Array,
): { verdict?: string; answer?: Uint8Array; request: Uint8Array } {
  c.handleTimeout(now);
  const t = c.pollTransmit();
  assert.ok(t, 'client sends');
  const rx = now + 10_000_000n;
  const resp = s.handleRequest(t.data, CLIENT_EP, rx, rx + 1000n, REF);
  if (!resp) return { request: t.data };
  const answer = tamper ? tamper(resp.data) : resp.data;
  return { verdict: c.handleResponse(answer, SERVER_EP, rx + 10_000_000n), answer, request: t.data };
}

function pair(
  clientKey: SymmetricKey,
  serverKeys = KEYS,
): { c: ClientAssociation; s: NtpServer; auth: SymmetricServerAuth } {
  let seed = 7;
  const random = (): number => (seed = (seed * 1664525 + 1013904223) >>> 0) / 4294967296;
  const c = new ClientAssociation(
    { address: SERVER_EP, minpoll: 4, maxpoll: 4, auth: new SymmetricClientAuth(clientKey) },
    { random },
  );
  const auth = new SymmetricServerAuth(serverKeys);
  const s = new NtpServer({ clientLogLimit: 100, access: () => true, random: () => 0.5, auth: [auth] });
  c.start(T0);
  return { c, s, auth };
}

test('ClientAssociation + NtpServer: authenticated exchanges give samples for MD5, SHA1, AES128, AES256, SHA256', () => {
  for (const id of [1, 2, 3, 4, 5]) {
    const { c, s } = pair(key(id));
    const { verdict, answer, request } = exchange(c, s, c.nextTimeout()!);
    assert.equal(verdict, 'sample', `key ${id}`);
    assert.equal(decode(request).mac?.keyId, id);
    assert.equal(decode(answer!).mac?.keyId, id);
  }
});

test('ClientAssociation + NtpServer: replayed, tampered, unsigned and wrong-key answers give no sample', () => {
  const { c, s } = pair(key(2));
  const first = exchange(c, s, c.nextTimeout()!);
  assert.equal(first.verdict, 'sample');
  // Replay of the authentic first answer against the next request.
  c.handleTimeout(c.nextTimeout()!);
  const t2 = c.pollTransmit()!;
  assert.equal(c.handleResponse(first.answer!, SERVER_EP, c.nextTimeout()!), 'dropped:duplicate');
  void t2;
  // Tampered answer (transmit timestamp changed after signing).
  const tampered = exchange(c, s, c.nextTimeout()!, (b) => {
    const x = b.slice();
    x[47]! ^= 1;
    return x;
  });
  assert.equal(tampered.verdict, 'dropped:auth');
  // The MAC stripped off.
  const stripped = exchange(c, s, c.nextTimeout()!, (b) => b.slice(0, 48));
  assert.equal(stripped.verdict, 'dropped:auth');
  // Still works afterwards.
  assert.equal(exchange(c, s, c.nextTimeout()!).verdict, 'sample');
});

test('server without the client key does not answer (chronyd drops, no crypto-NAK)', () => {
  const { c, s, auth } = pair(
    key(2),
    KEYS.filter((k) => k.id !== 2),
  );
  const r = exchange(c, s, c.nextTimeout()!);
  assert.equal(r.verdict, undefined);
  assert.deepEqual(auth.stats, { authentic: 0, unknownKey: 1, badMac: 0 });
  // A different key with the same id on the server: answer never sent either.
  const same = parseKeysText('2 SHA1 ASCII:another-secret', 'other.keys', 'chrony');
  const p2 = pair(key(2), same);
  assert.equal(exchange(p2.c, p2.s, p2.c.nextTimeout()!).verdict, undefined);
  assert.deepEqual(p2.auth.stats, { authentic: 0, unknownKey: 0, badMac: 1 });
});
