import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodePacket, encodePacket, MAX_PACKET_LENGTH, type NtpPacket } from '../../src/ntp/packet.js';
import {
  formatRefIdChrony,
  formatRefIdDotted,
  formatRefIdHex,
  formatRefIdNtpq,
  refIdFromAddress,
  refIdFromAscii,
  refIdToAscii,
} from '../../src/ntp/refid.js';
import { kissCode, kodAction, KOD_RATE } from '../../src/ntp/kod.js';
import { parseAddress, parseIPv6 } from '../../src/ntp/ipaddr.js';

function hex(s: string): Uint8Array {
  const clean = s.replace(/\s+/g, '');
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}

const KNOWN_HEX = `
  24 02 06 ec  00 00 01 00  00 00 00 80  c0 00 02 01
  e9 c8 a1 b2 80 00 00 00
  01 02 03 04 05 06 07 08
  e9 c8 a1 c0 40 00 00 00
  e9 c8 a1 c0 40 10 00 00`;

const KNOWN: NtpPacket = {
  leap: 0,
  version: 4,
  mode: 4,
  stratum: 2,
  poll: 6,
  precision: -20,
  rootDelay: 256 / 65536,
  rootDispersion: 128 / 65536,
  refId: 0xc0000201,
  refTime: 0xe9c8a1b2_80000000n,
  origin: 0x01020304_05060708n,
  receive: 0xe9c8a1c0_40000000n,
  transmit: 0xe9c8a1c0_40100000n,
  extensions: [],
};

function base(): NtpPacket {
  return { ...KNOWN, extensions: [] };
}

test('encode is byte-exact against a hand-built packet', () => {
  assert.deepEqual(encodePacket(KNOWN), hex(KNOWN_HEX));
});

test('decode of the hand-built packet gives the known fields', () => {
  const r = decodePacket(hex(KNOWN_HEX));
  assert.ok(r.ok);
  assert.deepEqual(r.packet, KNOWN);
});

test('LI/VN/mode bit packing and signed poll/precision', () => {
  const p = { ...base(), leap: 3 as const, version: 3, mode: 3, poll: -7, precision: -30 };
  const b = encodePacket(p);
  assert.equal(b[0], (3 << 6) | (3 << 3) | 3);
  assert.equal(b[2], 0xf9);
  assert.equal(b[3], 0xe2);
  const r = decodePacket(b);
  assert.ok(r.ok);
  assert.equal(r.packet.leap, 3);
  assert.equal(r.packet.poll, -7);
  assert.equal(r.packet.precision, -30);
});

test('round trip with extension fields and MAC', () => {
  const p: NtpPacket = {
    ...base(),
    extensions: [
      { type: 0x0104, body: new Uint8Array(32).fill(7) },
      { type: 0xf323, body: new Uint8Array(24).fill(9) },
    ],
    mac: { keyId: 42, digest: new Uint8Array(20).fill(0xaa) },
  };
  const b = encodePacket(p);
  assert.equal(b.length, 48 + 36 + 28 + 24);
  const r = decodePacket(b);
  assert.ok(r.ok);
  assert.deepEqual(r.packet, p);
});

test('last extension field without MAC must be > 24 bytes (RFC 7822 §7.5)', () => {
  // A 16-byte field alone at the end is ambiguous: rejected.
  const b16 = encodePacket({ ...base(), extensions: [{ type: 0x2000, body: new Uint8Array(12) }] });
  assert.equal(b16.length, 64);
  assert.deepEqual(decodePacket(b16), { ok: false, reason: 'mac' });
  // 28 bytes: fine.
  const b28 = encodePacket({ ...base(), extensions: [{ type: 0x2000, body: new Uint8Array(24) }] });
  const r = decodePacket(b28);
  assert.ok(r.ok);
  assert.equal(r.packet.extensions.length, 1);
  assert.equal(r.packet.extensions[0]!.type, 0x2000);
  // 16-byte field followed by a MAC: fine.
  const bm = encodePacket({
    ...base(),
    extensions: [{ type: 0x2000, body: new Uint8Array(12) }],
    mac: { keyId: 1, digest: new Uint8Array(16) },
  });
  const rm = decodePacket(bm);
  assert.ok(rm.ok);
  assert.equal(rm.packet.extensions.length, 1);
  assert.equal(rm.packet.mac!.keyId, 1);
});

test('encoder pads extension bodies to 16 bytes and a multiple of 4', () => {
  const b = encodePacket({
    ...base(),
    extensions: [{ type: 1, body: new Uint8Array([1, 2, 3]) }],
    mac: { keyId: 5, digest: new Uint8Array(16) },
  });
  assert.equal(b.length, 48 + 16 + 20);
  assert.equal((b[50]! << 8) | b[51]!, 16);
});

test('crypto-NAK and v3 MAC', () => {
  const nak = new Uint8Array(52);
  nak.set(hex(KNOWN_HEX));
  let r = decodePacket(nak);
  assert.ok(r.ok);
  assert.equal(r.packet.mac!.keyId, 0);
  assert.equal(r.packet.mac!.digest.length, 0);
  nak[51] = 1;
  assert.deepEqual(decodePacket(nak), { ok: false, reason: 'mac' });

  const v3 = encodePacket({ ...base(), version: 3, mac: { keyId: 9, digest: new Uint8Array(16).fill(1) } });
  r = decodePacket(v3);
  assert.ok(r.ok);
  assert.equal(r.packet.mac!.keyId, 9);
  // v3: key id + up to 64-byte MAC (SHA512, as chrony); a longer trailer is not a MAC.
  const sha256 = new Uint8Array(48 + 36);
  sha256.set(encodePacket({ ...base(), version: 3 }));
  assert.equal(decodePacket(sha256).ok, true);
  const bad = new Uint8Array(48 + 72);
  bad.set(encodePacket({ ...base(), version: 3 }));
  assert.deepEqual(decodePacket(bad), { ok: false, reason: 'mac' });
});

test('rejections carry the right reason', () => {
  const good = hex(KNOWN_HEX);
  assert.deepEqual(decodePacket(new Uint8Array(0)), { ok: false, reason: 'short' });
  assert.deepEqual(decodePacket(good.slice(0, 47)), { ok: false, reason: 'short' });
  const odd = new Uint8Array(50);
  odd.set(good);
  assert.deepEqual(decodePacket(odd), { ok: false, reason: 'length' });
  const big = new Uint8Array(MAX_PACKET_LENGTH + 4);
  big.set(good);
  assert.deepEqual(decodePacket(big), { ok: false, reason: 'oversize' });
  for (const v of [0, 5, 6, 7]) {
    const b = good.slice();
    b[0] = (v << 3) | 4;
    assert.deepEqual(decodePacket(b), { ok: false, reason: 'version' }, `version ${v}`);
  }
  for (const m of [6, 7]) {
    const b = new Uint8Array(12);
    b[0] = (2 << 3) | m; // a short mode 6 packet: mode, not 'short'
    assert.deepEqual(decodePacket(b), { ok: false, reason: 'mode' });
  }
  // Extension field length below 16, not multiple of 4, past the end.
  for (const len of [8, 18, 200]) {
    const b = new Uint8Array(48 + 32);
    b.set(good);
    b[50] = len >> 8;
    b[51] = len & 0xff;
    assert.deepEqual(decodePacket(b), { ok: false, reason: 'extension-length' }, `len ${len}`);
  }
  // Extension field followed by 4 stray bytes.
  const stray = new Uint8Array(48 + 28 + 4);
  stray.set(good);
  stray[51] = 28;
  assert.deepEqual(decodePacket(stray), { ok: false, reason: 'extension-length' });
  // 17 extension fields.
  const many = encodePacket({
    ...base(),
    extensions: Array.from({ length: 17 }, (_, i) => ({ type: i, body: new Uint8Array(28) })),
  });
  assert.deepEqual(decodePacket(many), { ok: false, reason: 'extension-count' });
  const sixteen = encodePacket({
    ...base(),
    extensions: Array.from({ length: 16 }, (_, i) => ({ type: i, body: new Uint8Array(28) })),
  });
  assert.equal(decodePacket(sixteen).ok, true);
});

test('random byte strings never throw and valid results re-encode identically', () => {
  let seed = 12345;
  const rnd = (): number => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed / 4294967296;
  };
  let accepted = 0;
  const reasons = new Set<string>();
  for (let i = 0; i < 20000; i++) {
    const len = Math.floor(rnd() * 160);
    const b = new Uint8Array(len);
    for (let j = 0; j < len; j++) b[j] = Math.floor(rnd() * 256);
    if (rnd() < 0.5 && len > 0) b[0] = (b[0]! & 0xc0) | (4 << 3) | 3; // bias toward v4 mode 3
    if (rnd() < 0.5 && len >= 52) {
      b[50] = 0;
      b[51] = [16, 20, 28, len - 48][Math.floor(rnd() * 4)]!;
    }
    const r = decodePacket(b);
    if (r.ok) {
      accepted++;
      assert.deepEqual(encodePacket(r.packet), b);
    } else reasons.add(r.reason);
  }
  assert.ok(accepted > 100, `accepted ${accepted}`);
  assert.ok(reasons.size >= 5, [...reasons].join(','));
});

test('refid from addresses and ASCII', () => {
  assert.equal(refIdFromAddress('192.0.2.1'), 0xc0000201);
  assert.equal(refIdFromAddress('::ffff:192.0.2.1'), 0xc0000201);
  // MD5(00..00 01) = cf404dc8 06178c24 5b5b4fe2 531e6d8c
  assert.equal(formatRefIdHex(refIdFromAddress('::1')), 'CF404DC8');
  assert.equal(refIdFromAscii('GPS'), 0x47505300);
  assert.equal(refIdFromAscii('LOCL'), 0x4c4f434c);
  assert.equal(refIdToAscii(0x47505300), 'GPS');
  assert.equal(refIdToAscii(0), null);
  assert.equal(refIdToAscii(0xc0000201), null);
  assert.equal(refIdToAscii(0x47005300), null); // NUL inside
  assert.throws(() => refIdFromAscii('TOOLONG'), /at most 4/);
  assert.throws(() => refIdFromAddress('example.com'), /invalid IP/);
});

test('refid of IPv6 is the first 4 bytes of MD5 of the address', async () => {
  const { createHash } = await import('node:crypto');
  const bytes = parseIPv6('2001:db8::1')!;
  const expected = createHash('md5').update(bytes).digest().readUInt32BE(0);
  assert.equal(refIdFromAddress('2001:db8::1'), expected);
  assert.equal(refIdFromAddress('2001:0db8:0:0:0:0:0:1'), expected);
  assert.notEqual(refIdFromAddress('2001:db8::2'), expected);
});

test('refid formatting', () => {
  assert.equal(formatRefIdHex(0xcb00710f), 'CB00710F');
  assert.equal(formatRefIdHex(5), '00000005');
  assert.equal(formatRefIdDotted(0xcb00710f), '203.0.113.15');
  assert.equal(formatRefIdNtpq(0x47505300, 1), '.GPS.');
  assert.equal(formatRefIdNtpq(KOD_RATE, 0), '.RATE.');
  assert.equal(formatRefIdNtpq(0x47505300, 3), '71.80.83.0');
  assert.equal(formatRefIdNtpq(0, 16), '0.0.0.0');
  assert.equal(formatRefIdChrony(0xcb00710f, 'ntp1.example.net'), 'CB00710F (ntp1.example.net)');
  assert.equal(formatRefIdChrony(0x50505300), '50505300 (PPS)');
});

test('kiss codes', () => {
  assert.equal(kissCode(0, refIdFromAscii('DENY')), 'DENY');
  assert.equal(kissCode(1, refIdFromAscii('DENY')), null);
  assert.equal(kissCode(0, 0), null); // chrony's unsynchronised answer, not a KoD
  assert.equal(kodAction('DENY'), 'stop');
  assert.equal(kodAction('RSTR'), 'stop');
  assert.equal(kodAction('RATE'), 'slow');
  assert.equal(kodAction('INIT'), 'ignore');
});

test('address parsing', () => {
  assert.deepEqual(parseAddress('10.1.2.3'), { family: 4, bytes: new Uint8Array([10, 1, 2, 3]) });
  assert.equal(parseAddress('256.1.1.1'), null);
  assert.equal(parseAddress('1.2.3'), null);
  assert.equal(parseAddress('1::2::3'), null);
  assert.equal(parseAddress('fe80::1%eth0')!.family, 6);
  assert.deepEqual(parseIPv6('::')!, new Uint8Array(16));
  assert.deepEqual(parseIPv6('1:2:3:4:5:6:7:8')![15], 8);
  assert.equal(parseIPv6('1:2:3:4:5:6:7:8:9'), null);
  assert.equal(parseIPv6('1:2:3:4:5:6:7::8'), null);
});
