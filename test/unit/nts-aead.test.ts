import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { aessiv } from '@noble/ciphers/aes.js';
import {
  AES_128_GCM_SIV,
  AES_SIV_CMAC_256,
  AES_SIV_CMAC_256_NOBLE,
  AEAD_NAMES,
  aeadById,
  type Aead,
} from '../../src/nts/aead.js';
import { sivOpen, sivSeal } from '../../src/nts/aead-node.js';

const h = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

// RFC 5297 Appendix A.1: deterministic authenticated encryption (one AD string, no nonce).
const A1 = {
  key: h('fffefdfc fbfaf9f8 f7f6f5f4 f3f2f1f0 f0f1f2f3 f4f5f6f7 f8f9fafb fcfdfeff'),
  ad: h('10111213 14151617 18191a1b 1c1d1e1f 20212223 24252627'),
  plaintext: h('11223344 55667788 99aabbcc ddee'),
  output: h('85632d07 c6e8f37f 950acd32 0a2ecc93 40c02b96 90c4dc04 daef7f6a fe5c'),
};

// RFC 5297 Appendix A.2: nonce-based, two AD strings and the nonce as the last component.
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

test('RFC 5297 A.1: node:crypto S2V/SIV and noble give the exact vector', () => {
  assert.equal(hex(sivSeal(A1.key, [A1.ad], A1.plaintext)), hex(A1.output));
  assert.equal(hex(aessiv(A1.key, A1.ad).encrypt(A1.plaintext)), hex(A1.output));
  assert.equal(hex(sivOpen(A1.key, [A1.ad], A1.output)!), hex(A1.plaintext));
  // Repeated: the cached per-key cipher state must not drift between operations.
  assert.equal(hex(sivSeal(A1.key, [A1.ad], A1.plaintext)), hex(A1.output));
});

test('RFC 5297 A.2 through the NTS Aead interface (nonce = last AD component), both implementations', () => {
  for (const a of [AES_SIV_CMAC_256, AES_SIV_CMAC_256_NOBLE]) {
    const out = a.seal(A2.key, A2.nonce, A2.plaintext, [A2.ad1, A2.ad2]);
    assert.equal(hex(out), hex(A2.output));
    assert.equal(hex(out.subarray(0, 16)), '7bdb6e3b432667eb06f4d14bff2fbd0f');
    assert.equal(hex(a.open(A2.key, A2.nonce, A2.output, [A2.ad1, A2.ad2])!), hex(A2.plaintext));
  }
});

// RFC 8452 Appendix C.1 (AEAD_AES_128_GCM_SIV): result = ciphertext || tag.
const GCM_SIV_VECTORS = [
  {
    key: '01000000000000000000000000000000',
    nonce: '030000000000000000000000',
    aad: '',
    pt: '',
    out: 'dc20e2d83f25705bb49e439eca56de25',
  },
  {
    key: '01000000000000000000000000000000',
    nonce: '030000000000000000000000',
    aad: '',
    pt: '0100000000000000',
    out: 'b5d839330ac7b786578782fff6013b815b287c22493a364c',
  },
  {
    key: '01000000000000000000000000000000',
    nonce: '030000000000000000000000',
    aad: '01',
    pt: '0200000000000000',
    out: '1e6daba35669f4273b0a1a2560969cdf790d99759abd1508',
  },
  {
    key: '01000000000000000000000000000000',
    nonce: '030000000000000000000000',
    aad: '010000000000000000000000',
    pt: '02000000',
    out: 'a8fe3e8707eb1f84fb28f8cb73de8e99e2f48a14',
  },
  {
    key: '36864200e0eaf5284d884a0e77d31646',
    nonce: 'bae8e37fc83441b16034566b',
    aad: '46bb91c3c5',
    pt: '7a806c',
    out: 'af60eb711bd85bc1e4d3e0a462e074eea428a8',
  },
  {
    key: 'b3fed1473c528b8426a582995929a149',
    nonce: '9e9ad8780c8d63d0ab4149c0',
    aad: 'c9882e5386fd9f92ec489c8fde2be2cf97e74e93',
    pt: '9f572c614b4745914474e7c7',
    out: 'f54673c5ddf710c745641c8bc1dc2f871fb7561da1286e655e24b7b0',
  },
];

test('RFC 8452 C.1 vectors through AEAD 30', () => {
  for (const v of GCM_SIV_VECTORS) {
    const out = AES_128_GCM_SIV.seal(h(v.key), h(v.nonce), h(v.pt), [h(v.aad)]);
    assert.equal(hex(out), v.out, `vector with pt ${v.pt}`);
    assert.equal(hex(AES_128_GCM_SIV.open(h(v.key), h(v.nonce), h(v.out), [h(v.aad)])!), v.pt);
  }
  // The AD components are concatenated: splitting the AAD gives the same result.
  const v = GCM_SIV_VECTORS[5]!;
  const aad = h(v.aad);
  assert.equal(hex(AES_128_GCM_SIV.seal(h(v.key), h(v.nonce), h(v.pt), [aad.subarray(0, 7), aad.subarray(7)])), v.out);
});

test('aeadById, names and lengths', () => {
  assert.equal(aeadById(15), AES_SIV_CMAC_256);
  assert.equal(aeadById(30), AES_128_GCM_SIV);
  assert.equal(aeadById(16), undefined);
  assert.equal(aeadById(0), undefined);
  assert.deepEqual([AES_SIV_CMAC_256.keyLength, AES_SIV_CMAC_256.nonceLength], [32, 16]);
  assert.deepEqual([AES_128_GCM_SIV.keyLength, AES_128_GCM_SIV.nonceLength], [16, 12]);
  assert.equal(AEAD_NAMES[15], 'AES-SIV-CMAC-256');
  assert.equal(AEAD_NAMES[30], 'AES-128-GCM-SIV');
});

test('node:crypto and noble AES-SIV agree on random inputs (more keys than the state cache)', () => {
  const bytes = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max });
  let keysSeen = 0;
  fc.assert(
    fc.property(
      bytes(32, 32),
      bytes(16, 24),
      fc.array(bytes(0, 300), { maxLength: 3 }),
      bytes(0, 300),
      (key, nonce, ad, pt) => {
        keysSeen++;
        const a = AES_SIV_CMAC_256.seal(key, nonce, pt, ad);
        const b = AES_SIV_CMAC_256_NOBLE.seal(key, nonce, pt, ad);
        assert.equal(hex(a), hex(b));
        assert.equal(hex(AES_SIV_CMAC_256.open(key, nonce, b, ad)!), hex(pt));
        assert.equal(hex(AES_SIV_CMAC_256_NOBLE.open(key, nonce, a, ad)!), hex(pt));
      },
    ),
    { seed: 0x5297, numRuns: 400 },
  );
  assert.ok(keysSeen >= 400);
});

function flipEach(buf: Uint8Array, check: (tampered: Uint8Array, index: number) => void): void {
  for (let i = 0; i < buf.length; i++) {
    const t = Uint8Array.from(buf);
    t[i]! ^= 1 << (i % 8);
    check(t, i);
  }
}

test('tampering any byte of ciphertext, associated data or nonce makes open() return null', () => {
  const cases: [Aead, number][] = [
    [AES_SIV_CMAC_256, 32],
    [AES_SIV_CMAC_256_NOBLE, 32],
    [AES_128_GCM_SIV, 16],
  ];
  for (const [a, klen] of cases) {
    const key = Uint8Array.from({ length: klen }, (_, i) => i * 7 + 1);
    const nonce = Uint8Array.from({ length: a.nonceLength }, (_, i) => 200 - i);
    const ad = Uint8Array.from({ length: 84 }, (_, i) => i);
    const pt = Uint8Array.from({ length: 40 }, (_, i) => 255 - i);
    const ct = a.seal(key, nonce, pt, [ad]);
    assert.equal(ct.length, pt.length + 16);
    assert.equal(hex(a.open(key, nonce, ct, [ad])!), hex(pt));
    flipEach(ct, (t, i) => assert.equal(a.open(key, nonce, t, [ad]), null, `ct byte ${i}`));
    flipEach(ad, (t, i) => assert.equal(a.open(key, nonce, ct, [t]), null, `ad byte ${i}`));
    flipEach(nonce, (t, i) => assert.equal(a.open(key, t, ct, [ad]), null, `nonce byte ${i}`));
    flipEach(key, (t, i) => assert.equal(a.open(t, nonce, ct, [ad]), null, `key byte ${i}`));
    // Truncated, empty, wrong key length: null, never a throw.
    assert.equal(a.open(key, nonce, ct.subarray(0, ct.length - 1), [ad]), null);
    assert.equal(a.open(key, nonce, ct.subarray(0, 15), [ad]), null);
    assert.equal(a.open(key, nonce, new Uint8Array(0), [ad]), null);
    assert.equal(a.open(key.subarray(1), nonce, ct, [ad]), null);
    // S2V separates AD components: an extra empty one is a different message.
    if (a.id === 15) assert.equal(a.open(key, nonce, ct, [ad, new Uint8Array(0)]), null);
  }
});
