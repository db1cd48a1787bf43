import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { native } from '../../src/io/native.js';
import {
  AES_SIV_CMAC_256,
  AES_SIV_CMAC_256_BACKEND,
  AES_SIV_CMAC_256_NOBLE,
  AES_SIV_CMAC_256_NODE,
  AES_128_GCM_SIV,
} from '../../src/nts/aead.js';
import { AES_SIV_CMAC_256_NATIVE, NativeSivKey, nativeSivBackend } from '../../src/nts/aead-native.js';
import { COOKIE_PLAIN_MAX, ServerCookieKeys } from '../../src/nts/cookies.js';
import { RandomPool } from '../../src/nts/random-pool.js';
import { NtsServerAuthenticator } from '../../src/nts/ntp-server.js';
import { NtpServer } from '../../src/ntp/server.js';
import { decodePacket, NTP_HEADER_LENGTH } from '../../src/ntp/packet.js';
import {
  EF_NTS_COOKIE,
  EF_NTS_COOKIE_PLACEHOLDER,
  EF_NTS_UNIQUE_IDENTIFIER,
  buildAuthEf,
  concatBytes,
  encodeEf,
  locateEfs,
  parseAuthBody,
  parseEfList,
} from '../../src/nts/nts-ef.js';
import { NS_PER_S } from '../../src/time/ntp-time.js';
import type { ReferenceState } from '../../src/engine/types.js';

const h = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const rnd = (n: number): Uint8Array => new Uint8Array(randomBytes(n));

const skip = AES_SIV_CMAC_256_NATIVE ? false : 'addon without native AES-SIV (run scripts/build-native.mjs)';

/** The addon's raw exports (for the no-nonce vector and argument checks the wrapper never makes). */
interface RawSiv {
  aeadSivCreate(key?: Uint8Array | null): object;
  aeadSivSeal(...args: unknown[]): number;
  aeadSivOpen(...args: unknown[]): number;
}
const raw = native as unknown as RawSiv;

// RFC 5297 Appendix A.1 (deterministic: one AD string, no nonce) and A.2 (two AD strings + nonce).
const A1 = {
  key: h('fffefdfc fbfaf9f8 f7f6f5f4 f3f2f1f0 f0f1f2f3 f4f5f6f7 f8f9fafb fcfdfeff'),
  ad: h('10111213 14151617 18191a1b 1c1d1e1f 20212223 24252627'),
  plaintext: h('11223344 55667788 99aabbcc ddee'),
  output: h('85632d07 c6e8f37f 950acd32 0a2ecc93 40c02b96 90c4dc04 daef7f6a fe5c'),
};
const A2 = {
  key: h('7f7e7d7c 7b7a7978 77767574 73727170 40414243 44454647 48494a4b 4c4d4e4f'),
  ad1: h('00112233 44556677 8899aabb ccddeeff deaddada deaddada ffeeddcc bbaa9988 77665544 33221100'),
  ad2: h('10203040 50607080 90a0'),
  nonce: h('09f91102 9d74e35b d84156c5 635688c0'),
  plaintext: h(
    '74686973 20697320 736f6d65 20706c61 696e7465 78742074 6f20656e 63727970 74207573 696e6720 5349562d 414553',
  ),
  output: h(
    '7bdb6e3b 432667eb 06f4d14b ff2fbd0f cb900f2f ddbe4043 26601965 c889bf17 dba77ceb 094fa663 b7a3f748 ba8af829 ea64ad54 4a272e9c 485b62a3 fd5c0d',
  ),
};

test('native AES-SIV is the AEAD 15 in use when the addon has it', { skip }, () => {
  assert.equal(AES_SIV_CMAC_256, AES_SIV_CMAC_256_NATIVE);
  assert.equal(AES_SIV_CMAC_256_BACKEND, 'native');
  assert.match(nativeSivBackend!, /^OpenSSL 3\./);
});

test('RFC 5297 A.1 and A.2 vectors: raw addon, Aead interface, bound key', { skip }, () => {
  const hd = raw.aeadSivCreate(A1.key);
  const out = new Uint8Array(A1.output.length);
  assert.equal(raw.aeadSivSeal(hd, null, A1.ad, null, A1.plaintext, out, 0), 30);
  assert.equal(hex(out), hex(A1.output));
  const back = new Uint8Array(A1.plaintext.length);
  assert.equal(raw.aeadSivOpen(hd, null, [A1.ad], undefined, A1.output, back, 0), 14);
  assert.equal(hex(back), hex(A1.plaintext));

  const a = AES_SIV_CMAC_256_NATIVE!;
  assert.equal(hex(a.seal(A2.key, A2.nonce, A2.plaintext, [A2.ad1, A2.ad2])), hex(A2.output));
  assert.equal(hex(a.open(A2.key, A2.nonce, A2.output, [A2.ad1, A2.ad2])!), hex(A2.plaintext));
  // The nonce is S2V's last AD component: A.2 with both AD strings then the nonce, raw.
  const o2 = new Uint8Array(A2.output.length);
  raw.aeadSivSeal(raw.aeadSivCreate(), A2.key, [A2.ad1, A2.ad2], A2.nonce, A2.plaintext, o2, 0);
  assert.equal(hex(o2), hex(A2.output));
  // Swapping nonce and last AD string is a different S2V input.
  raw.aeadSivSeal(raw.aeadSivCreate(), A2.key, [A2.ad1, A2.nonce], A2.ad2, A2.plaintext, o2, 0);
  assert.notEqual(hex(o2), hex(A2.output));
});

test('1000 random cross-checks against node:crypto and noble (lengths across the 1024-byte chunk)', { skip }, () => {
  const a = AES_SIV_CMAC_256_NATIVE!;
  const bytes = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max });
  let runs = 0;
  fc.assert(
    fc.property(
      bytes(32, 32),
      bytes(16, 24),
      fc.array(bytes(0, 1100), { maxLength: 3 }),
      fc.oneof(bytes(0, 40), bytes(0, 1100)),
      fc.integer({ min: 0, max: 9 }),
      (key, nonce, ad, pt, offset) => {
        runs++;
        const sealed = a.seal(key, nonce, pt, ad);
        assert.equal(hex(sealed), hex(AES_SIV_CMAC_256_NODE.seal(key, nonce, pt, ad)));
        if (runs % 10 === 0) assert.equal(hex(sealed), hex(AES_SIV_CMAC_256_NOBLE.seal(key, nonce, pt, ad)));
        assert.equal(hex(a.open(key, nonce, sealed, ad)!), hex(pt));
        // Into forms at an offset, one AD component, through the scratch and a bound key.
        const one = ad[0] ?? new Uint8Array(0);
        const ref = AES_SIV_CMAC_256_NODE.seal(key, nonce, pt, [one]);
        const out = new Uint8Array(offset + ref.length + 3);
        assert.equal(a.sealInto(key, nonce, pt, one, out, offset), ref.length);
        assert.equal(hex(out.subarray(offset, offset + ref.length)), hex(ref));
        const bound = new NativeSivKey(key);
        const back = new Uint8Array(offset + pt.length);
        assert.equal(bound.openInto(nonce, ref, one, back, offset), pt.length);
        assert.equal(hex(back.subarray(offset)), hex(pt));
        out.fill(0);
        assert.equal(bound.sealInto(nonce, pt, one, out, offset), ref.length);
        assert.equal(hex(out.subarray(offset, offset + ref.length)), hex(ref));
      },
    ),
    { seed: 0x5297_8915, numRuns: 1000 },
  );
  assert.equal(runs, 1000);
});

test('tampering with any byte of ciphertext, AD or nonce fails; the output is wiped', { skip }, () => {
  const a = AES_SIV_CMAC_256_NATIVE!;
  const [key, nonce, ad, pt] = [rnd(32), rnd(16), rnd(40), rnd(37)];
  const ct = a.seal(key, nonce, pt, [ad]);
  for (const [name, buf] of [
    ['ciphertext', ct],
    ['ad', ad],
    ['nonce', nonce],
  ] as const) {
    for (let i = 0; i < buf.length; i++) {
      buf[i]! ^= 0x01;
      const out = new Uint8Array(pt.length).fill(0xaa);
      assert.equal(a.openInto(key, nonce, ct, ad, out, 0), -1, `${name} byte ${i}`);
      assert.ok(
        out.every((b) => b === 0),
        `${name} byte ${i}: output wiped`,
      );
      buf[i]! ^= 0x01;
    }
  }
  assert.equal(hex(a.open(key, nonce, ct, [ad])!), hex(pt));
  assert.equal(a.open(rnd(32), nonce, ct, [ad]), null);
});

test('the scratch context re-keys when keys alternate; bound keys are unaffected', { skip }, () => {
  const a = AES_SIV_CMAC_256_NATIVE!;
  const [k1, k2, nonce, pt] = [rnd(32), rnd(32), rnd(16), rnd(50)];
  const bound = new NativeSivKey(k1);
  const ref1 = AES_SIV_CMAC_256_NODE.seal(k1, nonce, pt, []);
  const ref2 = AES_SIV_CMAC_256_NODE.seal(k2, nonce, pt, []);
  for (let i = 0; i < 5; i++) {
    assert.equal(hex(a.seal(k1, nonce, pt, [])), hex(ref1));
    assert.equal(hex(a.seal(k2, nonce, pt, [])), hex(ref2));
    const out = new Uint8Array(ref1.length);
    bound.sealInto(nonce, pt, new Uint8Array(0), out, 0);
    // An empty AD component is a component: differs from no AD.
    assert.equal(hex(out), hex(AES_SIV_CMAC_256_NODE.seal(k1, nonce, pt, [new Uint8Array(0)])));
  }
  // The same key bytes in another array object still hit the scratch key (compared by value).
  assert.equal(hex(a.seal(Uint8Array.from(k2), nonce, pt, [])), hex(ref2));
});

test('in place: seal with out + 16 = plaintext, open with out = ciphertext + 16', { skip }, () => {
  const a = AES_SIV_CMAC_256_NATIVE!;
  const [key, nonce, ad, pt] = [rnd(32), rnd(16), rnd(20), rnd(100)];
  const buf = new Uint8Array(16 + pt.length);
  buf.set(pt, 16);
  assert.equal(a.sealInto(key, nonce, buf.subarray(16), ad, buf, 0), 116);
  assert.equal(hex(buf), hex(AES_SIV_CMAC_256_NODE.seal(key, nonce, pt, [ad])));
  assert.equal(a.openInto(key, nonce, buf, ad, buf, 16), 100);
  assert.equal(hex(buf.subarray(16)), hex(pt));
});

test('bad lengths and arguments are rejected, never read or written out of bounds', { skip }, () => {
  const a = AES_SIV_CMAC_256_NATIVE!;
  const [key, nonce, ad, pt] = [rnd(32), rnd(16), rnd(20), rnd(30)];
  const hd = raw.aeadSivCreate(key);
  for (const n of [0, 16, 31, 33, 64]) {
    assert.throws(() => a.seal(rnd(n), nonce, pt, [ad]), RangeError, `seal, key of ${n} bytes`);
    assert.equal(a.open(rnd(n), nonce, a.seal(key, nonce, pt, [ad]), [ad]), null, `open, key of ${n} bytes`);
    assert.throws(() => new NativeSivKey(rnd(n)), RangeError);
    assert.throws(() => raw.aeadSivCreate(rnd(n)), RangeError);
  }
  // Output too small, offset outside, negative offset.
  assert.throws(() => a.sealInto(key, nonce, pt, ad, new Uint8Array(45), 0), RangeError);
  assert.throws(() => a.sealInto(key, nonce, pt, ad, new Uint8Array(46), 1), RangeError);
  assert.throws(() => raw.aeadSivSeal(hd, null, ad, nonce, pt, new Uint8Array(100), 101), RangeError);
  assert.throws(() => raw.aeadSivSeal(hd, null, ad, nonce, pt, new Uint8Array(100), -1), RangeError);
  const ct = a.seal(key, nonce, pt, [ad]);
  assert.equal(a.openInto(key, nonce, ct, ad, new Uint8Array(29), 0), -1);
  assert.throws(() => raw.aeadSivOpen(hd, null, ad, nonce, ct, new Uint8Array(29), 0), RangeError);
  // Ciphertexts shorter than the tag are never authentic.
  for (let n = 0; n < 16; n++) {
    assert.equal(a.open(key, nonce, ct.subarray(0, n), [ad]), null);
    assert.equal(raw.aeadSivOpen(hd, null, ad, nonce, ct.subarray(0, n), new Uint8Array(0), 0), -1);
  }
  // Output overlapping an input (other than exactly in place).
  const buf = new Uint8Array(200);
  assert.throws(() => raw.aeadSivSeal(hd, null, buf.subarray(0, 20), nonce, pt, buf, 10), RangeError);
  assert.throws(() => raw.aeadSivSeal(hd, null, ad, buf.subarray(50, 66), pt, buf, 40), RangeError);
  assert.throws(() => raw.aeadSivSeal(hd, null, ad, nonce, buf.subarray(20, 50), buf, 10), RangeError);
  // Wrong types: not a handle (another object, another addon handle), not bytes, too many components.
  assert.throws(() => raw.aeadSivSeal({}, null, ad, nonce, pt, buf, 0), TypeError);
  assert.throws(() => raw.aeadSivSeal(null, null, ad, nonce, pt, buf, 0), TypeError);
  assert.throws(() => raw.aeadSivSeal(hd, null, 'ad', nonce, pt, buf, 0), TypeError);
  assert.throws(() => raw.aeadSivSeal(hd, null, [ad, 7], nonce, pt, buf, 0), TypeError);
  assert.throws(() => raw.aeadSivSeal(hd, null, ad, nonce, new Uint16Array(4), buf, 0), TypeError);
  assert.throws(() => raw.aeadSivSeal(hd, null, ad, nonce, pt, buf), TypeError);
  assert.throws(
    () =>
      raw.aeadSivSeal(
        hd,
        null,
        Array.from({ length: 127 }, () => ad),
        nonce,
        pt,
        buf,
        0,
      ),
    RangeError,
  );
  assert.throws(() => raw.aeadSivSeal(raw.aeadSivCreate(), null, ad, nonce, pt, buf, 0), /no key/);
  assert.equal(
    raw.aeadSivSeal(
      hd,
      null,
      Array.from({ length: 126 }, () => ad),
      null,
      pt,
      buf,
      0,
    ),
    46,
  );
});

test('ServerCookieKeys lean forms: openPlain/sealPlain agree with open/seal, junk gives 0', () => {
  const keys = new ServerCookieKeys(rnd);
  for (const [aead, klen] of [
    [15, 32],
    [30, 16],
  ] as const) {
    const c = { aead, c2s: rnd(klen), s2c: rnd(klen) };
    const cookie = keys.seal(c);
    const plain = new Uint8Array(COOKIE_PLAIN_MAX);
    assert.equal(keys.openPlain(cookie, plain), aead);
    assert.equal(hex(plain.subarray(2, 2 + klen)), hex(c.c2s));
    const out = new Uint8Array(cookie.length + 8);
    const n = keys.sealPlain(plain.subarray(0, klen === 32 ? 68 : 36), out, 8);
    assert.equal(n, cookie.length);
    const again = keys.open(out.subarray(8));
    assert.ok(again);
    assert.equal(hex(again.s2c), hex(c.s2c));
    assert.notEqual(hex(out.subarray(8)), hex(cookie)); // a fresh nonce
    const t = Uint8Array.from(cookie);
    t[cookie.length - 1]! ^= 1;
    assert.equal(keys.openPlain(t, plain), 0);
    assert.equal(keys.openPlain(cookie.subarray(1), plain), 0);
    assert.equal(keys.openPlain(cookie, new Uint8Array(8)), 0);
  }
});

test('RandomPool hands out the source bytes in order, one source call per block, and wipes them', () => {
  let calls = 0;
  let counter = 0;
  const source = (n: number): Uint8Array => {
    calls++;
    return Uint8Array.from({ length: n }, () => counter++ & 0xff);
  };
  const pool = new RandomPool(source, 64);
  const out = new Uint8Array(200);
  for (let i = 0; i < 8; i++) pool.fill(out, i * 16, 16);
  assert.equal(calls, 2);
  assert.deepEqual(
    [...out.subarray(0, 128)],
    Array.from({ length: 128 }, (_, i) => i),
  );
  pool.fill(out, 0, 100); // larger than a block: straight from the source
  assert.equal(calls, 3);
  assert.equal(out[0], 128);
});

const T0 = 1_750_000_000n * NS_PER_S;
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

function seeded(seed: string): (n: number) => Uint8Array {
  let counter = 0;
  return (n) => {
    const out = new Uint8Array(n);
    for (let off = 0; off < n; off += 32) {
      out.set(
        createHash('sha256')
          .update(`${seed}:${counter++}`)
          .digest()
          .subarray(0, Math.min(32, n - off)),
        off,
      );
    }
    return out;
  };
}

test('the lean NTS answer is byte for byte the layout buildAuthEf gives (both AEADs, 0..7 placeholders)', () => {
  for (const [aeadId, klen] of [
    [15, 32],
    [30, 16],
  ] as const) {
    const aead = aeadId === 15 ? AES_SIV_CMAC_256 : AES_128_GCM_SIV;
    const r = seeded(`lean-${aeadId}`);
    const keys = new ServerCookieKeys(r);
    const server = new NtpServer({
      clientLogLimit: 8,
      access: () => true,
      random: () => 0.5,
      auth: [new NtsServerAuthenticator(keys, r)],
    });
    const c2s = r(klen);
    const s2c = r(klen);
    for (let placeholders = 0; placeholders < 8; placeholders++) {
      const cookie = keys.seal({ aead: aeadId, c2s, s2c });
      const header = new Uint8Array(NTP_HEADER_LENGTH);
      header[0] = 0x23;
      header.set(r(8), 40);
      const parts = [header, encodeEf(EF_NTS_UNIQUE_IDENTIFIER, r(32)), encodeEf(EF_NTS_COOKIE, cookie)];
      for (let i = 0; i < placeholders; i++)
        parts.push(encodeEf(EF_NTS_COOKIE_PLACEHOLDER, new Uint8Array(cookie.length)));
      const ad = concatBytes(parts);
      const req = concatBytes([ad, buildAuthEf(aead, c2s, r(aead.nonceLength), ad, new Uint8Array(0))]);
      const rx = T0 + BigInt(placeholders) * NS_PER_S;
      const answer = server.handleRequest(req, { address: '192.0.2.9', port: 123 }, rx, rx + 1000n, SYNCED)!.data;
      assert.ok(answer.length <= req.length);
      const dec = decodePacket(answer);
      assert.ok(dec.ok);
      const efs = locateEfs(dec.packet);
      assert.equal(efs.length, 2);
      assert.deepEqual(efs[0]!.body, parts[1]!.subarray(4));
      const body = parseAuthBody(aead, efs[1]!.body)!;
      const plain = aead.open(s2c, body.nonce, body.ciphertext, [answer.subarray(0, efs[1]!.start)])!;
      const fresh = parseEfList(plain)!;
      assert.equal(fresh.length, placeholders + 1);
      for (const f of fresh) {
        assert.equal(f.type, EF_NTS_COOKIE);
        assert.equal(hex(keys.open(f.body)!.c2s), hex(c2s));
      }
      // Rebuilt with the reference helpers from the same nonce and cookies: identical bytes.
      const prefix = answer.subarray(0, efs[1]!.start);
      const rebuilt = concatBytes([prefix, buildAuthEf(aead, s2c, body.nonce, prefix, plain)]);
      assert.equal(hex(answer), hex(rebuilt));
    }
  }
});
