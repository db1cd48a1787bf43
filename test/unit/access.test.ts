import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AccessTable, parseSubnet } from '../../src/ntp/access.js';
import { SocketAddress } from 'node:net';
import { Prng } from '../../src/sim/prng.js';
import {
  addressToWords,
  formatAddressWords,
  parseAddress,
  parseAddressWords,
  parseIPv6,
} from '../../src/ntp/ipaddr.js';

test('default denies everything', () => {
  const t = new AccessTable();
  assert.equal(t.allowed('192.0.2.1'), false);
  assert.equal(t.allowed('2001:db8::1'), false);
});

test('allow with no argument allows both families; deny with none denies all', () => {
  const t = new AccessTable();
  t.add(true);
  assert.equal(t.allowed('192.0.2.1'), true);
  assert.equal(t.allowed('2001:db8::1'), true);
  t.add(false);
  assert.equal(t.allowed('192.0.2.1'), false);
  assert.equal(t.allowed('2001:db8::1'), false);
});

test('most specific subnet wins regardless of order', () => {
  const a = new AccessTable();
  a.add(true, '192.168.0.0/16');
  a.add(false, '192.168.1.0/24');
  const b = new AccessTable();
  b.add(false, '192.168.1.0/24');
  b.add(true, '192.168.0.0/16');
  for (const t of [a, b]) {
    assert.equal(t.allowed('192.168.2.3'), true);
    assert.equal(t.allowed('192.168.1.3'), false);
    assert.equal(t.allowed('192.169.0.1'), false);
  }
  a.add(true, '192.168.1.7');
  assert.equal(a.allowed('192.168.1.7'), true);
  assert.equal(a.allowed('192.168.1.8'), false);
});

test('allow all / deny all override earlier sub-rules, later ones apply again', () => {
  const t = new AccessTable();
  t.add(true, '10.0.0.0/8');
  t.add(false, '10.1.0.0/16');
  t.add(true, '10.1.2.0/24');
  t.add(false, '10/8', true); // deny all 10/8
  assert.equal(t.allowed('10.1.2.3'), false);
  assert.equal(t.allowed('10.2.0.1'), false);
  t.add(true, '10.1.2.3');
  assert.equal(t.allowed('10.1.2.3'), true);
  assert.equal(t.allowed('10.1.2.4'), false);
  // Plain (non-all) deny of the same subnet as a sub-rule only replaces that subnet.
  const u = new AccessTable();
  u.add(true, '10.0.0.0/8');
  u.add(true, '10.1.0.0/16');
  u.add(false, '10.0.0.0/8');
  assert.equal(u.allowed('10.1.0.1'), true);
  assert.equal(u.allowed('10.2.0.1'), false);
  // allow all 0/0 clears everything underneath, IPv4 only.
  u.add(true, '0/0', true);
  assert.equal(u.allowed('10.2.0.1'), true);
  assert.equal(u.allowed('::1'), false);
});

test('partial IPv4 and prefix forms', () => {
  assert.deepEqual(parseSubnet('192.168'), { family: 4, bytes: new Uint8Array([192, 168, 0, 0]), prefix: 16 });
  assert.deepEqual(parseSubnet('10'), { family: 4, bytes: new Uint8Array([10, 0, 0, 0]), prefix: 8 });
  assert.deepEqual(parseSubnet('1.2.3'), { family: 4, bytes: new Uint8Array([1, 2, 3, 0]), prefix: 24 });
  assert.deepEqual(parseSubnet('1.2.3.4'), { family: 4, bytes: new Uint8Array([1, 2, 3, 4]), prefix: 32 });
  assert.deepEqual(parseSubnet('1.2.3.255/25'), { family: 4, bytes: new Uint8Array([1, 2, 3, 128]), prefix: 25 });
  assert.equal(parseSubnet('2001:db8::/32').prefix, 32);
  assert.equal(parseSubnet('::1').prefix, 128);
  const t = new AccessTable();
  t.add(true, '192.168');
  assert.equal(t.allowed('192.168.44.1'), true);
  assert.equal(t.allowed('192.167.44.1'), false);
  t.add(true, '172.16.0.0/12');
  assert.equal(t.allowed('172.31.255.255'), true);
  assert.equal(t.allowed('172.32.0.0'), false);
});

test('IPv6 rules and IPv4-mapped lookups', () => {
  const t = new AccessTable();
  t.add(true, '2001:db8::/32');
  t.add(false, '2001:db8:bad::/48');
  t.add(true, '198.51.100.0/24');
  assert.equal(t.allowed('2001:db8:1::5'), true);
  assert.equal(t.allowed('2001:db8:bad::5'), false);
  assert.equal(t.allowed('2001:db9::1'), false);
  assert.equal(t.allowed('::ffff:198.51.100.7'), true);
  assert.equal(t.allowed('::ffff:198.51.101.7'), false);
  assert.equal(t.allowed('not-an-address'), false);
});

test('parse errors are clear', () => {
  const t = new AccessTable();
  assert.throws(() => t.add(true, 'ntp.example.com'), /invalid address or subnet 'ntp.example.com'/);
  assert.throws(() => t.add(true, '1.2.3.4/33'), /prefix length 33 exceeds 32/);
  assert.throws(() => t.add(true, '::/129'), /exceeds 128/);
  assert.throws(() => t.add(true, '1.2.3.256'), /invalid/);
  assert.throws(() => t.add(true, '1.2.3.4/x'), /invalid prefix length/);
  assert.throws(() => t.add(true, 'g::1'), /invalid IPv6/);
  assert.equal(t.size, 0);
});

// --- Addresses as words (the batched server path): the same answers as the string lookups. ---

/** Random addresses biased towards the interesting ones: near the rules' subnets, mapped, zero runs. */
function randomWords(r: Prng, bases: Int32Array[]): { family: 4 | 6; w: Int32Array } {
  const w = new Int32Array(4);
  const pick = r.nextU32() % 8;
  if (pick < 3) {
    w[0] = r.nextU32() & (r.nextU32() % 2 ? 0xc0a8ffff : 0xffffffff);
    if (pick === 0) w[0] = (10 << 24) | (r.nextU32() & 0x3ffff);
    return { family: 4, w };
  }
  if (pick < 5 && bases.length > 0) {
    w.set(bases[r.nextU32() % bases.length]!);
    w[r.nextU32() % 4] ^= 1 << (r.nextU32() % 32); // flip one bit near a rule
    if (r.nextU32() % 2) w[3] ^= r.nextU32() & 0xff;
    return { family: 6, w };
  }
  for (let i = 0; i < 4; i++) w[i] = r.nextU32() % 3 === 0 ? 0 : r.nextU32() & (r.nextU32() % 2 ? 0xffff : -1);
  if (pick === 5) {
    w[0] = 0;
    w[1] = 0;
    w[2] = r.nextU32() % 2 ? 0xffff : 0; // IPv4-mapped or IPv4-compatible
  }
  return { family: 6, w };
}

test('addresses as words: parse → format round trip matches node (libuv inet_ntop) text, for 20,000 random addresses', () => {
  const r = new Prng(6);
  const out = new Int32Array(4);
  for (let k = 0; k < 20_000; k++) {
    const { family, w } = randomWords(r, []);
    const text = formatAddressWords(family, w[0]!, w[1]!, w[2]!, w[3]!);
    if (family === 6) assert.equal(text, new SocketAddress({ address: text, family: 'ipv6' }).address, text);
    assert.equal(parseAddressWords(text, out, 0), family, text);
    assert.deepEqual([...out], [...w], text);
    const a = parseAddress(text)!;
    assert.ok(a, text);
  }
  assert.equal(formatAddressWords(6, 0, 0, 0xffff, 0x01020304), '::ffff:1.2.3.4');
  assert.equal(formatAddressWords(6, 0, 0, 0, 1), '::1');
  assert.equal(formatAddressWords(6, 0x20010db8, 0, 0x10000, 1), '2001:db8::1:0:0:1');
  assert.equal(formatAddressWords(4, 0xc0000201 | 0, 0, 0, 0), '192.0.2.1');
  for (const bad of [
    '',
    '1.2.3',
    '1.2.3.4.5',
    '1.2.3.256',
    '01234.1.1.1',
    '1..2.3',
    'a.b.c.d',
    'ntp.example',
    ':::',
    '1.2.3.4 ',
  ]) {
    assert.equal(parseAddressWords(bad, out, 0), 0, bad);
  }
  assert.throws(() => addressToWords('not-an-ip', out, 0), RangeError);
  assert.equal(addressToWords('010.1.2.3', out, 0), 4); // as parseIPv4: leading zeros are decimal
  assert.equal(out[0], (10 << 24) | 0x010203);
});

test('parseAddressWords accepts exactly the IPv6 texts parseIPv6 accepts, with the same bytes (100,000 near-valid strings)', () => {
  const r = new Prng(8);
  const pieces = [
    '',
    '0',
    '1',
    'ff',
    'FFFF',
    'abcd',
    '12345',
    'g',
    '1.2.3.4',
    '255.255.255.255',
    '1.2.3',
    '256.1.1.1',
    '01.2.3.4',
    ' ',
  ];
  const out = new Int32Array(4);
  let valid = 0;
  for (let k = 0; k < 100_000; k++) {
    const n = r.nextU32() % 10;
    const parts: string[] = [];
    for (let i = 0; i < n; i++)
      parts.push(r.nextU32() % 3 ? (r.nextU32() & 0xffff).toString(16) : pieces[r.nextU32() % pieces.length]!);
    let text = parts.join(':');
    const gapAt = r.nextU32() % (text.length + 2);
    if (r.nextU32() % 2 && gapAt <= text.length) text = `${text.slice(0, gapAt)}::${text.slice(gapAt)}`;
    if (r.nextU32() % 20 === 0) text += '%eth0';
    if (r.nextU32() % 30 === 0) text = ':' + text;
    const want = parseIPv6(text);
    const family = parseAddressWords(text, out, 0);
    if (!want) {
      assert.notEqual(family, 6, text);
      continue;
    }
    valid++;
    assert.equal(family, 6, text);
    const bytes = new Uint8Array(16);
    new DataView(bytes.buffer).setInt32(0, out[0]!);
    new DataView(bytes.buffer).setInt32(4, out[1]!);
    new DataView(bytes.buffer).setInt32(8, out[2]!);
    new DataView(bytes.buffer).setInt32(12, out[3]!);
    assert.deepEqual(bytes, want, text);
  }
  assert.ok(valid > 10_000, `${valid} valid`);
});

test('allowedWords gives the same answers as allowed(text) for random rule sets and 200,000 random addresses', () => {
  const r = new Prng(7);
  for (let set = 0; set < 200; set++) {
    const t = new AccessTable();
    const bases: Int32Array[] = [];
    const rules = 1 + (r.nextU32() % 10);
    for (let k = 0; k < rules; k++) {
      const allow = r.nextU32() % 2 === 0;
      const all = r.nextU32() % 5 === 0;
      const kind = r.nextU32() % 6;
      if (kind === 0) t.add(allow, undefined, all);
      else if (kind < 3) {
        const a = r.nextU32();
        const prefix = r.nextU32() % 33;
        t.add(allow, `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}/${prefix}`, all);
        if (kind === 2) t.add(!allow, `${a >>> 24}.${(a >>> 16) & 255}`, all); // partial dotted
      } else {
        const { w } = randomWords(r, []);
        bases.push(w);
        const text = formatAddressWords(6, w[0]!, w[1]!, w[2]!, w[3]!);
        t.add(allow, `${text}/${r.nextU32() % 129}`, all);
      }
    }
    for (let k = 0; k < 1000; k++) {
      const { family, w } = randomWords(r, bases);
      const text = formatAddressWords(family, w[0]!, w[1]!, w[2]!, w[3]!);
      const want = t.allowed(text);
      assert.equal(t.allowedWords(family, w[0]!, w[1]!, w[2]!, w[3]!), want, `${text} in rule set ${set}`);
      // Unsigned words (as `>>> 0` reads them) give the same answer.
      assert.equal(t.allowedWords(family, w[0]! >>> 0, w[1]! >>> 0, w[2]! >>> 0, w[3]! >>> 0), want, text);
    }
  }
});

test('allowedWords: IPv4-mapped IPv6 uses the IPv4 rules, unknown families are denied', () => {
  const t = new AccessTable();
  t.add(true, '192.0.2.0/24');
  t.add(false, '::/0');
  assert.equal(t.allowedWords(6, 0, 0, 0xffff, 0xc0000201 | 0), true);
  assert.equal(t.allowed('::ffff:192.0.2.1'), true);
  assert.equal(t.allowedWords(6, 0, 0, 0, 0xc0000201 | 0), false); // IPv4-compatible is IPv6
  assert.equal(t.allowedWords(0, 0xc0000201 | 0, 0, 0, 0), false);
});
