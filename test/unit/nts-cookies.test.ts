import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { ServerCookieKeys, cookieLength, type CookieContents } from '../../src/nts/cookies.js';
import { ConfigError } from '../../src/config/config-error.js';

/** Deterministic random bytes (SHA-256 of a counter). */
function seededBytes(seed: string): (n: number) => Uint8Array {
  let counter = 0;
  return (n) => {
    const out = new Uint8Array(n);
    for (let off = 0; off < n; off += 32) {
      const block = createHash('sha256').update(`${seed}:${counter++}`).digest();
      out.set(block.subarray(0, Math.min(32, n - off)), off);
    }
    return out;
  };
}

const rnd = seededBytes('cookies');
const SIV: CookieContents = { aead: 15, c2s: rnd(32), s2c: rnd(32) };
const GCM: CookieContents = { aead: 30, c2s: rnd(16), s2c: rnd(16) };

function same(a: CookieContents | null, b: CookieContents): void {
  assert.ok(a, 'cookie should open');
  assert.equal(a.aead, b.aead);
  assert.deepEqual([...a.c2s], [...b.c2s]);
  assert.deepEqual([...a.s2c], [...b.s2c]);
}

test('seal/open round trip for both AEADs; lengths are multiples of 4 and every cookie differs', () => {
  const keys = new ServerCookieKeys(seededBytes('k1'));
  for (const c of [SIV, GCM]) {
    const a = keys.seal(c);
    const b = keys.seal(c);
    assert.equal(a.length, cookieLength(c.aead));
    assert.equal(a.length % 4, 0);
    assert.notDeepEqual([...a], [...b]); // fresh nonce each time: cookies are unlinkable
    same(keys.open(a), c);
    same(keys.open(b), c);
  }
  assert.equal(cookieLength(15), 104);
  assert.equal(cookieLength(30), 72);
  assert.throws(() => keys.seal({ aead: 15, c2s: rnd(16), s2c: rnd(16) }), RangeError);
});

test('a cookie opens after one rotation, not after two; another server key never opens it', () => {
  const keys = new ServerCookieKeys(seededBytes('k2'));
  const id0 = keys.keyIds()[0]!;
  const cookie = keys.seal(SIV);
  keys.rotate();
  assert.deepEqual(keys.keyIds(), [(id0 + 1) >>> 0, id0]);
  same(keys.open(cookie), SIV);
  const newer = keys.seal(SIV);
  keys.rotate();
  assert.equal(keys.keyIds().length, 2);
  assert.equal(keys.open(cookie), null);
  same(keys.open(newer), SIV);
  const other = new ServerCookieKeys(seededBytes('k3'));
  assert.equal(other.open(newer), null);
});

test('tampered, truncated, extended and random cookies give null, never a throw', () => {
  const keys = new ServerCookieKeys(seededBytes('k4'));
  const cookie = keys.seal(GCM);
  for (let i = 0; i < cookie.length; i++) {
    const t = Uint8Array.from(cookie);
    t[i]! ^= 0x10;
    assert.equal(keys.open(t), null, `byte ${i}`);
  }
  for (let n = 0; n < cookie.length; n++) assert.equal(keys.open(cookie.subarray(0, n)), null, `length ${n}`);
  const longer = new Uint8Array(cookie.length + 4);
  longer.set(cookie);
  assert.equal(keys.open(longer), null);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 400 }), (b) => {
      // A random cookie with the right key id still fails authentication.
      const withId = Uint8Array.from(b);
      if (withId.length >= 4) withId.set(cookie.subarray(0, 4));
      assert.equal(keys.open(b), null);
      assert.equal(keys.open(withId), null);
    }),
    { seed: 8915, numRuns: 500 },
  );
});

test('dump/load round trip keeps both keys and their order', () => {
  const keys = new ServerCookieKeys(seededBytes('k5'));
  const old = keys.seal(SIV);
  keys.rotate();
  const cur = keys.seal(GCM);
  const text = keys.dump();
  assert.match(text, /^rubidium-nts-cookie-keys 1\nkey [0-9a-f]{8} [0-9a-f]{64}\nkey [0-9a-f]{8} [0-9a-f]{64}\n$/);
  const loaded = ServerCookieKeys.load(text, '/var/lib/rubidium/nts/keys', seededBytes('k6'));
  assert.deepEqual(loaded.keyIds(), keys.keyIds());
  same(loaded.open(old), SIV);
  same(loaded.open(cur), GCM);
  // New cookies come from the loaded current key: the original opens them.
  same(keys.open(loaded.seal(SIV)), SIV);
  loaded.rotate();
  assert.equal(loaded.open(old), null);
  assert.equal(loaded.dump().split('\n')[2], text.split('\n')[1]);
});

test('malformed key files are refused with file:line', () => {
  const good = new ServerCookieKeys(seededBytes('k7')).dump();
  const keyLine = good.split('\n')[1]!;
  const cases: [string, RegExp][] = [
    ['', /^f:1: not an NTS key file/],
    ['rubidium-nts-cookie-keys 2\n' + keyLine + '\n', /^f:1: /],
    ['rubidium-nts-cookie-keys 1\n', /^f: no key/],
    ['rubidium-nts-cookie-keys 1\n# comment\n\nkey 1234 00\n', /^f:4: expected "key/],
    ['rubidium-nts-cookie-keys 1\nkey 00000001 ' + 'ab'.repeat(16) + '\n', /^f:2: key must be 64 hex digits, not 32/],
    ['rubidium-nts-cookie-keys 1\nkey 00000001 ' + 'zz'.repeat(32) + '\n', /^f:2: expected/],
    ['rubidium-nts-cookie-keys 1\n' + keyLine + '\n' + keyLine + '\n', /^f:3: duplicate key id/],
    [
      'rubidium-nts-cookie-keys 1\nkey 00000001 ' +
        'ab'.repeat(32) +
        '\nkey 00000002 ' +
        'cd'.repeat(32) +
        '\nkey 00000003 ' +
        'ef'.repeat(32),
      /^f:4: more than 2 keys/,
    ],
  ];
  for (const [text, re] of cases) {
    assert.throws(
      () => ServerCookieKeys.load(text, 'f'),
      (e: unknown) => e instanceof ConfigError && re.test(e.message),
      JSON.stringify(text),
    );
  }
  // Comments and blank lines are fine.
  const withComments = good.replace('\n', '\n# written by rubidiumd\n\n');
  assert.deepEqual(ServerCookieKeys.load(withComments, 'f').keyIds(), ServerCookieKeys.load(good, 'f').keyIds());
});
