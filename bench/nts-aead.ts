/**
 * Throughput of the NTS AEADs on NTS-sized packets: AES-SIV-CMAC-256 on node:crypto
 * (src/nts/aead-node.ts) against @noble/ciphers' aessiv, and AES-128-GCM-SIV (noble).
 *
 *   npx tsc -p . && node dist/bench/nts-aead.js [seconds-per-case]
 *
 * Cases: a client request (associated data = 48-byte header + Unique Identifier + one
 * 104-byte cookie = 192 bytes, empty plaintext: seal and open) and a server answer
 * (associated data 84 bytes, plaintext = one cookie EF, 108 bytes). "fresh key" uses a new key
 * for every operation (a server whose clients outnumber the node version's key-state cache).
 */
import { randomBytes } from 'node:crypto';
import { AES_128_GCM_SIV, AES_SIV_CMAC_256, AES_SIV_CMAC_256_NOBLE, type Aead } from '../src/nts/aead.js';

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

function cases(a: Aead, label: string): void {
  const key = randomBytes(a.keyLength);
  const nonce = randomBytes(a.nonceLength);
  const sealedReq = a.seal(key, nonce, empty, [reqAd]);
  const sealedRes = a.seal(key, nonce, cookieEf, [resAd]);
  const keys = Array.from({ length: 4096 }, () => randomBytes(a.keyLength));
  let k = 0;
  const row = (what: string, fn: () => void): void => {
    console.log(`${label.padEnd(28)} ${what.padEnd(34)} ${Math.round(rate(fn)).toString().padStart(9)} ops/s`);
  };
  row('request seal (AD 192, PT 0)', () => a.seal(key, nonce, empty, [reqAd]));
  row('request open (AD 192, PT 0)', () => {
    if (!a.open(key, nonce, sealedReq, [reqAd])) throw new Error('open failed');
  });
  row('answer seal (AD 84, PT 108)', () => a.seal(key, nonce, cookieEf, [resAd]));
  row('answer open (AD 84, PT 108)', () => {
    if (!a.open(key, nonce, sealedRes, [resAd])) throw new Error('open failed');
  });
  row('request seal, fresh key', () => a.seal(keys[k++ % keys.length]!, nonce, empty, [reqAd]));
}

cases(AES_SIV_CMAC_256, 'AES-SIV-CMAC-256 node');
cases(AES_SIV_CMAC_256_NOBLE, 'AES-SIV-CMAC-256 noble');
cases(AES_128_GCM_SIV, 'AES-128-GCM-SIV noble');
