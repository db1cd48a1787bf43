import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AccessTable, parseSubnet } from '../../src/ntp/access.js';

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
