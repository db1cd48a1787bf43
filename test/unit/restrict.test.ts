import { test } from 'node:test';
import assert from 'node:assert/strict';
import { maskToPrefix, parseRestrictArgs, RestrictTable, type RestrictRule } from '../../src/ntp/restrict.js';

const rules = (...lines: string[]): RestrictRule[] =>
  lines.map((l, i) => {
    const w = l.split(/\s+/);
    return parseRestrictArgs(w.slice(1), w[0] === 'unrestrict', `t:${i + 1}`);
  });

test('most specific match wins regardless of order', () => {
  const lines = [
    'restrict default ignore',
    'restrict 10.0.0.0/8 noserve',
    'restrict 10.1.0.0 mask 255.255.0.0',
    'restrict 10.1.2.3 noquery',
  ];
  for (const order of [lines, [...lines].reverse(), [lines[2]!, lines[0]!, lines[3]!, lines[1]!]]) {
    const t = new RestrictTable(rules(...order), { defaultFlags: [] });
    assert.equal(t.serveAllowed('192.0.2.1'), false, 'default ignore');
    assert.equal(t.serveAllowed('10.9.9.9'), false, '/8 noserve');
    assert.equal(t.serveAllowed('10.1.9.9'), true, '/16 from mask form');
    assert.equal(t.queryAllowed('10.1.9.9'), true);
    assert.equal(t.serveAllowed('10.1.2.3'), true, 'host entry');
    assert.equal(t.queryAllowed('10.1.2.3'), false, 'host noquery');
  }
});

test('IPv6 rules, -6 default and IPv4-mapped addresses', () => {
  const t = new RestrictTable(
    rules('restrict -6 default ignore', 'restrict 2001:db8::/32 nomodify', 'restrict 192.0.2.0/24 noserve'),
    {
      defaultFlags: [],
    },
  );
  assert.equal(t.serveAllowed('2001:db9::1'), false, '-6 default ignore');
  assert.equal(t.serveAllowed('198.51.100.1'), true, '-6 default does not touch IPv4');
  assert.equal(t.serveAllowed('2001:db8:1::5'), true);
  assert.equal(t.modifyAllowed('2001:db8:1::5'), false);
  assert.equal(t.serveAllowed('::ffff:192.0.2.7'), false, 'mapped address uses IPv4 rules');
  assert.equal(t.serveAllowed('not-an-address'), false);
});

test('NTPsec built-in default is noquery limited; flags merge; unrestrict clears', () => {
  const t = new RestrictTable(
    rules('restrict 127.0.0.1', 'restrict 192.0.2.0/24 kod', 'restrict 192.0.2.0/24 limited'),
  );
  const d = t.decide('203.0.113.9');
  assert.equal(d.serve, true);
  assert.equal(d.query, false);
  assert.equal(d.limited, true);
  assert.equal(t.queryAllowed('127.0.0.1'), true, 'host entry without flags');
  const n = t.decide('192.0.2.5');
  assert.ok(n.kod && n.limited, 'second restrict for the same net merges');
  const u = new RestrictTable(
    rules('unrestrict default noquery limited', 'restrict 10.0.0.1 ignore', 'unrestrict 10.0.0.1'),
  );
  assert.equal(u.queryAllowed('203.0.113.9'), true);
  assert.equal(u.decide('203.0.113.9').limited, false);
  assert.equal(u.serveAllowed('10.0.0.1'), true, 'unrestrict without flags removes the entry');
  const classic = new RestrictTable([], { defaultFlags: [] });
  assert.equal(classic.queryAllowed('203.0.113.9'), true);
});

test('restrict source adds host entries for source addresses; ntpport needs port 123', () => {
  const t = new RestrictTable(
    rules('restrict default noserve', 'restrict source nomodify', 'restrict 198.51.100.0/24 ntpport ignore'),
    {
      defaultFlags: [],
    },
  );
  assert.equal(t.serveAllowed('192.0.2.10'), false);
  t.addSourceAddress('192.0.2.10');
  assert.equal(t.serveAllowed('192.0.2.10'), true);
  assert.equal(t.modifyAllowed('192.0.2.10'), false);
  assert.equal(t.serveAllowed('198.51.100.1', 40000), false, 'default noserve');
  assert.equal(t.queryAllowed('198.51.100.1', 40000), true, 'ntpport entry does not match other ports');
  assert.equal(t.queryAllowed('198.51.100.1', 123), false, 'ntpport entry matches port 123');
});

test('parse errors name the problem', () => {
  assert.throws(() => parseRestrictArgs(['10.0.0.0', 'mask', '255.0.255.0'], false, 'x'), /not contiguous/);
  assert.throws(() => parseRestrictArgs(['ntp.example.com'], false, 'x'), /host name/);
  assert.throws(() => parseRestrictArgs(['10.0.0.0/33'], false, 'x'), /prefix length/);
  assert.throws(() => parseRestrictArgs(['-6', '10.0.0.1'], false, 'x'), /not IPv6/);
  assert.throws(() => parseRestrictArgs(['default', 'bogus'], false, 'x'), /unknown restrict flag 'bogus'/);
  assert.equal(maskToPrefix('255.255.240.0', 4), 20);
  assert.equal(maskToPrefix('ffff:ffff::', 6), 32);
  const r = parseRestrictArgs(['10.1.2.3', 'mask', '255.255.0.0', 'kod'], false, 'x');
  assert.deepEqual([r.address, r.prefix, r.flags], ['10.1.0.0', 16, ['kod']]);
});
