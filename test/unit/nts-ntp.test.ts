import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NS_PER_S } from '../../src/time/ntp-time.js';
import {
  EF_NTS_AUTH_AND_EEF,
  EF_NTS_COOKIE,
  EF_NTS_COOKIE_PLACEHOLDER,
  EF_NTS_UNIQUE_IDENTIFIER,
} from '../../src/ntp/packet.js';
import { NtsClientSession } from '../../src/nts/ntp-client.js';
import { T0, decoded, deliver, nextRequest, ntsPair, seededBytes, serve } from '../support/nts-pair.js';

for (const aead of [15, 30] as const) {
  test(`AEAD ${aead}: authenticated exchange, request layout, cookies refilled, answer no longer than the request`, () => {
    const p = ntsPair({ aead });
    for (let i = 0; i < 5; i++) {
      const req = nextRequest(p)!;
      const rp = decoded(req.data);
      const types = rp.extensions.map((e) => e.type);
      assert.equal(types[0], EF_NTS_UNIQUE_IDENTIFIER);
      assert.equal(rp.extensions[0]!.body.length, 32);
      assert.equal(types[1], EF_NTS_COOKIE);
      assert.equal(types.at(-1), EF_NTS_AUTH_AND_EEF);
      // 8 held, one used: no placeholder needed to get back to 8.
      assert.equal(types.filter((t) => t === EF_NTS_COOKIE_PLACEHOLDER).length, 0);
      const ans = serve(p, req.data)!;
      assert.ok(ans, 'server answers');
      assert.equal(ans.stampTransmit, undefined, 'signed answers are never re-stamped');
      assert.ok(ans.data.length <= req.data.length, `${ans.data.length} <= ${req.data.length}`);
      const ap = decoded(ans.data);
      assert.deepEqual([...ap.extensions[0]!.body], [...rp.extensions[0]!.body], 'UID echoed');
      assert.equal(deliver(p, ans.data), 'sample');
      assert.equal(p.session.cookieCount(), 8);
    }
    const info = p.session.info(T0 + 100n * NS_PER_S);
    assert.equal(info.mode, 'nts');
    assert.equal(info.keyType, aead);
    assert.equal(info.keyTypeName, aead === 15 ? 'AES-SIV-CMAC-256' : 'AES-128-GCM-SIV');
    assert.equal(info.keyLength, aead === 15 ? 256 : 128);
    assert.equal(info.cookies, 8);
    assert.equal(info.cookieLength, aead === 15 ? 104 : 72);
    assert.equal(info.lastKeAgo, 100);
    assert.equal(info.naks, 0);
    assert.equal(p.serverAuth.stats().answered, 5);
  });
}

test('every request uses a new cookie and a new unique identifier', () => {
  const p = ntsPair({ cookies: 3 });
  const seen = new Set<string>();
  for (let i = 0; i < 3; i++) {
    const rp = decoded(nextRequest(p)!.data); // unanswered: cookies are not refilled
    for (const ef of rp.extensions.slice(0, 2)) {
      const k = Buffer.from(ef.body).toString('hex');
      assert.ok(!seen.has(k), 'reused');
      seen.add(k);
    }
  }
  assert.equal(p.session.cookieCount(), 0);
  assert.equal(p.session.ready(p.now), false);
  assert.equal(p.session.needsKe(p.now), true);
  // Not ready: the association sends nothing.
  assert.equal(nextRequest(p), undefined);
});

test('lost answers make the next request ask for more cookies (placeholders up to 8 held)', () => {
  const p = ntsPair({ cookies: 8 });
  nextRequest(p);
  nextRequest(p);
  nextRequest(p); // 5 left, three answers lost
  const req = nextRequest(p)!; // uses one: 4 left, asks for 4
  const rp = decoded(req.data);
  assert.equal(rp.extensions.filter((e) => e.type === EF_NTS_COOKIE_PLACEHOLDER).length, 3);
  assert.equal(deliver(p, serve(p, req.data)!.data), 'sample');
  assert.equal(p.session.cookieCount(), 8);
});

test('needsKe: before NTS-KE, after the refresh interval; keFailed counts attempts; endpoint from the KE', () => {
  const s = new NtsClientSession(seededBytes('s'), { refreshInterval: 3600 });
  assert.equal(s.needsKe(T0), true);
  assert.equal(s.ready(T0), false);
  assert.equal(s.endpoint(), null);
  s.keFailed(T0);
  s.keFailed(T0);
  assert.equal(s.info(T0).keAttempts, 2);
  assert.equal(s.info(T0).lastKeAgo, null);
  const r = seededBytes('r');
  s.installKe({ server: 'ntp.example', port: 1123, aead: 15, c2s: r(32), s2c: r(32), cookies: [r(100)] }, T0);
  assert.deepEqual(s.endpoint(), { address: 'ntp.example', port: 1123 });
  assert.equal(s.info(T0).keAttempts, 0);
  assert.equal(s.needsKe(T0 + 3599n * NS_PER_S), false);
  assert.equal(s.needsKe(T0 + 3600n * NS_PER_S), true);
  assert.equal(s.ready(T0 + 3600n * NS_PER_S), true, 'old keys still usable while NTS-KE runs');
  assert.throws(
    () => s.installKe({ server: 'x', port: 123, aead: 30, c2s: r(32), s2c: r(32), cookies: [] }, T0),
    RangeError,
  );
  // The default refresh is chrony's four weeks.
  const d = new NtsClientSession(r);
  d.installKe({ server: 'x', port: 123, aead: 30, c2s: r(16), s2c: r(16), cookies: [r(72)] }, T0);
  assert.equal(d.needsKe(T0 + 2_419_199n * NS_PER_S), false);
  assert.equal(d.needsKe(T0 + 2_419_200n * NS_PER_S), true);
});

test('after a master key rotation old cookies still work; after two the client is NAKed and refills by NTS-KE', () => {
  const p = ntsPair();
  p.keys.rotate();
  let req = nextRequest(p)!;
  assert.equal(deliver(p, serve(p, req.data)!.data), 'sample');
  p.keys.rotate();
  // Six cookies of the first key remain, plus two fresh ones from the second key: the first
  // request uses an old cookie and is NAKed.
  req = nextRequest(p)!;
  assert.equal(deliver(p, serve(p, req.data)!.data), 'dropped:nts-nak');
  assert.equal(p.session.needsKe(p.now), true);
  assert.equal(p.session.info(p.now).naks, 1);
  assert.equal(p.serverAuth.stats().naks, 1);
});
