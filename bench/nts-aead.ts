/**
 * Throughput of the NTS AEADs on NTS-sized packets, operations per second on one core:
 * AES-SIV-CMAC-256 on the addon's OpenSSL (src/nts/aead-native.ts, column "native"), on
 * node:crypto (src/nts/aead-node.ts) and @noble/ciphers' aessiv, and AES-128-GCM-SIV (noble).
 *
 *   npx tsc -p . && node dist/bench/nts-aead.js [seconds-per-case]
 *
 * Cases: a client request (associated data = 48-byte header + Unique Identifier + one
 * 104-byte cookie = 192 bytes, empty plaintext: seal and open) and a server answer
 * (associated data 84 bytes, plaintext = one cookie EF, 108 bytes). "fresh key" uses a new key
 * for every operation, as a server does with each client's C2S and S2C keys (more clients than
 * the node version's key-state cache). "bound key" is the native NativeSivKey (own contexts, as
 * for the cookie master keys) with the output written into a caller's buffer.
 */
import { randomBytes } from 'node:crypto';
import { AES_128_GCM_SIV, AES_SIV_CMAC_256_NOBLE, AES_SIV_CMAC_256_NODE, type Aead } from '../src/nts/aead.js';
import { AES_SIV_CMAC_256_NATIVE, NativeSivKey, nativeSivBackend } from '../src/nts/aead-native.js';

const seconds = Number(process.argv[2] ?? 1);

function rate(fn: () => void): number {
  for (let i = 0; i < 200; i++) fn();
  let n = 0;
  const start = process.hrtime.bigint();
  const end = start + BigInt(Math.round(seconds * 1e9));
  let now = start;
  while (now < end) {
    for (let i = 0; i < 100; i++) fn();
    n += 100;
    now = process.hrtime.bigint();
  }
  return n / (Number(now - start) / 1e9);
}

const reqAd = randomBytes(192);
const resAd = randomBytes(84);
const cookieEf = randomBytes(108);
const empty = new Uint8Array(0);

type Case = [label: string, make: (a: Aead) => (() => void) | null];

const cases: Case[] = [
  [
    'request seal (AD 192, PT 0)',
    (a) => {
      const [key, nonce] = [randomBytes(a.keyLength), randomBytes(a.nonceLength)];
      return () => a.seal(key, nonce, empty, [reqAd]);
    },
  ],
  [
    'request open (AD 192, PT 0)',
    (a) => {
      const [key, nonce] = [randomBytes(a.keyLength), randomBytes(a.nonceLength)];
      const sealed = a.seal(key, nonce, empty, [reqAd]);
      return () => {
        if (!a.open(key, nonce, sealed, [reqAd])) throw new Error('open failed');
      };
    },
  ],
  [
    'answer seal (AD 84, PT 108)',
    (a) => {
      const [key, nonce] = [randomBytes(a.keyLength), randomBytes(a.nonceLength)];
      return () => a.seal(key, nonce, cookieEf, [resAd]);
    },
  ],
  [
    'answer open (AD 84, PT 108)',
    (a) => {
      const [key, nonce] = [randomBytes(a.keyLength), randomBytes(a.nonceLength)];
      const sealed = a.seal(key, nonce, cookieEf, [resAd]);
      return () => {
        if (!a.open(key, nonce, sealed, [resAd])) throw new Error('open failed');
      };
    },
  ],
  [
    'request open, fresh key',
    (a) => {
      const nonce = randomBytes(a.nonceLength);
      const keys = Array.from({ length: 4096 }, () => randomBytes(a.keyLength));
      const sealed = keys.map((k) => a.seal(k, nonce, empty, [reqAd]));
      let k = 0;
      return () => {
        const i = k++ % keys.length;
        if (!a.open(keys[i]!, nonce, sealed[i]!, [reqAd])) throw new Error('open failed');
      };
    },
  ],
  [
    'answer seal, fresh key',
    (a) => {
      const nonce = randomBytes(a.nonceLength);
      const keys = Array.from({ length: 4096 }, () => randomBytes(a.keyLength));
      let k = 0;
      return () => a.seal(keys[k++ % keys.length]!, nonce, cookieEf, [resAd]);
    },
  ],
  [
    'cookie seal, bound key (into buffer)',
    (a) => {
      if (a !== AES_SIV_CMAC_256_NATIVE) return null;
      const key = new NativeSivKey(randomBytes(32));
      const [id, nonce, plain, out] = [randomBytes(4), randomBytes(16), randomBytes(68), new Uint8Array(84)];
      return () => key.sealInto(nonce, plain, id, out, 0);
    },
  ],
  [
    'cookie open, bound key (into buffer)',
    (a) => {
      if (a !== AES_SIV_CMAC_256_NATIVE) return null;
      const key = new NativeSivKey(randomBytes(32));
      const [id, nonce, plain, out] = [randomBytes(4), randomBytes(16), randomBytes(68), new Uint8Array(84)];
      key.sealInto(nonce, plain, id, out, 0);
      const back = new Uint8Array(68);
      return () => {
        if (key.openInto(nonce, out, id, back, 0) !== 68) throw new Error('open failed');
      };
    },
  ],
];

const columns: [string, Aead | null][] = [
  ['SIV native', AES_SIV_CMAC_256_NATIVE],
  ['SIV node:crypto', AES_SIV_CMAC_256_NODE],
  ['SIV noble', AES_SIV_CMAC_256_NOBLE],
  ['GCM-SIV noble', AES_128_GCM_SIV],
];

console.log(`ops/s per core, ${seconds} s per case; native AES-SIV: ${nativeSivBackend ?? 'unavailable'}`);
console.log(['case'.padEnd(38), ...columns.map(([name]) => name.padStart(16))].join(''));
for (const [label, make] of cases) {
  const cells = columns.map(([, a]) => {
    const fn = a && make(a);
    return (fn ? Math.round(rate(fn)).toString() : '-').padStart(16);
  });
  console.log([label.padEnd(38), ...cells].join(''));
}
