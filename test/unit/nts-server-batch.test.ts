/**
 * The NTS slot path of BatchServer (src/ntp/server-batch.ts `answerNts`, src/nts/ntp-server.ts
 * `scan`/`verify`/`writeAnswer`/`sealSlot`) against NtpServer.handleRequest with the same NTS
 * authenticator: random and broken NTS requests (0..7 placeholders outside and inside the
 * encrypted part, NAKs, bad authenticators, malformed layouts, interleaved follow-ups, MACs,
 * plain requests mixed in) go through a BatchServer on fake socket buffers and through a twin
 * server whose authenticator draws the same random bytes. The answers must be the same bytes,
 * the counters, client reports and NTS statistics the same, and every OK answer must open with
 * the client's S2C key.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BatchServer, type ServerBatchIo } from '../../src/ntp/server-batch.js';
import { NtpServer, type NtpServerOptions } from '../../src/ntp/server.js';
import { AccessTable } from '../../src/ntp/access.js';
import { formatAddressWords } from '../../src/ntp/ipaddr.js';
import { decodePacket, MAX_PACKET_LENGTH, NTP_HEADER_LENGTH } from '../../src/ntp/packet.js';
import { SymmetricServerAuth } from '../../src/ntp/symmetric-auth.js';
import { parseKeysText } from '../../src/config/keys-file.js';
import { Prng } from '../../src/sim/prng.js';
import type { ReferenceState } from '../../src/engine/types.js';
import { instantToNtp64, NS_PER_S, type Instant } from '../../src/time/ntp-time.js';
import { AES_SIV_CMAC_256_NOBLE } from '../../src/nts/aead.js';
import { ServerCookieKeys, type MasterKey } from '../../src/nts/cookies.js';
import { NtsServerAuthenticator } from '../../src/nts/ntp-server.js';
import {
  EF_NTS_AUTH_AND_EEF,
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

const META = 8;
const TX_STAMP = 1;
const RX_TRUNCATED = 2;
const T0 = 1_750_000_000n * NS_PER_S;
const KEYS = parseKeysText('1 MD5 HEX:000102030405060708090A0B0C0D0E0F10111213\n', 'test.keys', 'chrony');
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

function prngBytes(seed: number): (n: number) => Uint8Array {
  const r = new Prng(seed);
  return (n) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = r.nextU32() & 0xff;
    return out;
  };
}

const keyBytes = prngBytes(77);
const MASTER: MasterKey[] = [
  { id: 0x1001, key: keyBytes(32) },
  { id: 0x1000, key: keyBytes(32) },
];
/** Seals the clients' cookies (its own nonces: the servers' random streams stay in step). */
const issuer = new ServerCookieKeys(prngBytes(99), MASTER);
const stranger = new ServerCookieKeys(prngBytes(98), [{ id: 0x0777, key: keyBytes(32) }]);

class FakeIo implements ServerBatchIo {
  readonly rxData: Uint8Array;
  readonly rxMeta: Int32Array;
  readonly rxTime: Float64Array;
  readonly txData: Uint8Array;
  readonly txMeta: Int32Array;
  readonly txId: Int32Array;
  constructor(
    readonly batch: number,
    readonly slotBytes: number,
  ) {
    this.rxData = new Uint8Array(batch * slotBytes);
    this.rxMeta = new Int32Array(batch * META);
    this.rxTime = new Float64Array(batch * 2);
    this.txData = new Uint8Array(batch * slotBytes).fill(0xcc); // stale bytes must not leak into answers
    this.txMeta = new Int32Array(batch * META);
    this.txId = new Int32Array(batch).fill(-1);
  }
}

interface Client {
  words: [number, number, number, number];
  family: 4 | 6;
  port: number;
  c2s: Uint8Array;
  s2c: Uint8Array;
  /** Receive and transmit timestamps of the last answer (for interleaved follow-ups). */
  lastRx: Uint8Array | null;
}

type Kind =
  | 'ok'
  | 'inner-placeholders'
  | 'nak'
  | 'bad-auth'
  | 'auth-not-last'
  | 'two-uids'
  | 'short-uid'
  | 'no-auth'
  | 'mixed-placeholders'
  | 'mac'
  | 'plain'
  | 'unknown-ef-only'
  | 'long-nonce'
  | 'bad-auth-lengths';

const KINDS: Kind[] = [
  'ok',
  'ok',
  'ok',
  'ok',
  'ok',
  'ok',
  'inner-placeholders',
  'nak',
  'bad-auth',
  'auth-not-last',
  'two-uids',
  'short-uid',
  'no-auth',
  'mixed-placeholders',
  'mac',
  'plain',
  'unknown-ef-only',
  'long-nonce',
  'bad-auth-lengths',
];

function request(
  r: Prng,
  c: Client,
  kind: Kind,
  rnd: (n: number) => Uint8Array,
  placeholders = r.nextU32() % 8,
): Uint8Array {
  const header = new Uint8Array(NTP_HEADER_LENGTH);
  header[0] = ((r.nextU32() % 4 === 0 ? 3 : 0) << 6) | (4 << 3) | 3;
  header[2] = 6;
  header.set(rnd(8), 40);
  if (c.lastRx && r.nextU32() % 3 === 0) {
    // Interleaved follow-up: origin = the last answer's receive timestamp.
    header.set(c.lastRx, 24);
    header.set(rnd(8), 32);
  }
  if (kind === 'plain') return header;
  const keys = kind === 'nak' ? stranger : issuer;
  const cookie = keys.seal({ aead: 15, c2s: c.c2s, s2c: c.s2c });
  const uid = encodeEf(EF_NTS_UNIQUE_IDENTIFIER, rnd(kind === 'short-uid' ? 16 : 32 + 4 * (r.nextU32() % 3)));
  const parts = [header, uid, encodeEf(EF_NTS_COOKIE, cookie)];
  if (kind === 'two-uids') parts.push(uid);
  for (let i = 0; i < placeholders; i++) {
    const len = kind === 'mixed-placeholders' && i === placeholders - 1 ? cookie.length + 4 : cookie.length;
    parts.push(encodeEf(EF_NTS_COOKIE_PLACEHOLDER, new Uint8Array(len)));
  }
  if (kind === 'mixed-placeholders' && placeholders < 2) {
    parts.push(encodeEf(EF_NTS_COOKIE_PLACEHOLDER, new Uint8Array(cookie.length)));
    parts.push(encodeEf(EF_NTS_COOKIE_PLACEHOLDER, new Uint8Array(cookie.length + 8)));
  }
  if (kind === 'unknown-ef-only') return concatBytes([header, encodeEf(0x2005, rnd(20))]);
  const ad = concatBytes(parts);
  if (kind === 'no-auth') return ad;
  const inner =
    kind === 'inner-placeholders'
      ? concatBytes([
          encodeEf(EF_NTS_COOKIE_PLACEHOLDER, new Uint8Array(cookie.length)),
          encodeEf(EF_NTS_COOKIE_PLACEHOLDER, new Uint8Array(cookie.length)),
        ])
      : new Uint8Array(0);
  const nonce = rnd(kind === 'long-nonce' ? 24 : 16);
  const auth = buildAuthEf(AES_SIV_CMAC_256_NOBLE, c.c2s, nonce, ad, inner);
  if (kind === 'bad-auth') auth[auth.length - 1 - (r.nextU32() % 16)]! ^= 1 << (r.nextU32() % 8);
  if (kind === 'bad-auth-lengths') auth[7] = 0xff; // ciphertext longer than the field
  if (kind === 'auth-not-last') return concatBytes([ad, auth, encodeEf(0x2005, rnd(28))]);
  if (kind === 'mac') return concatBytes([ad, auth, new Uint8Array(20).fill(1)]);
  return concatBytes([ad, auth]);
}

function checkOpens(c: Client, data: Uint8Array): void {
  const dec = decodePacket(data);
  assert.ok(dec.ok);
  const efs = locateEfs(dec.packet);
  const a = efs[efs.length - 1]!;
  assert.equal(a.type, EF_NTS_AUTH_AND_EEF);
  const parts = parseAuthBody(AES_SIV_CMAC_256_NOBLE, a.body)!;
  const plain = AES_SIV_CMAC_256_NOBLE.open(c.s2c, parts.nonce, parts.ciphertext, [data.subarray(0, a.start)]);
  assert.ok(plain, 'answer opens with S2C');
  for (const ck of parseEfList(plain)!.filter((e) => e.type === EF_NTS_COOKIE)) {
    const opened = issuer.open(ck.body);
    assert.ok(opened && Buffer.compare(opened.s2c, c.s2c) === 0, 'fresh cookie carries the keys');
  }
}

interface Counts {
  ok: number;
  naks: number;
  interleaved: number;
  kod: number;
  dropped: number;
}

function run(seed: number, batches: number, server: Partial<NtpServerOptions>): Counts {
  const r = new Prng(seed);
  const rnd = prngBytes(seed + 1000);
  const acl = new AccessTable();
  acl.add(true);
  acl.add(false, '203.0.113.0/24');
  const ntsTwin = new NtsServerAuthenticator(new ServerCookieKeys(prngBytes(seed + 1), MASTER), prngBytes(seed + 2));
  const ntsBatch = new NtsServerAuthenticator(new ServerCookieKeys(prngBytes(seed + 1), MASTER), prngBytes(seed + 2));
  const opts = (nts: NtsServerAuthenticator): NtpServerOptions => ({
    clientLogLimit: 4096,
    access: (a) => acl.allowed(a),
    accessWordsAt: (f, w, o) => acl.allowedAt(f, w, o),
    random: new Prng(seed + 3).fn(),
    auth: [new SymmetricServerAuth(KEYS), nts],
    ...server,
  });
  const twin = new NtpServer(opts(ntsTwin));
  const batched = new NtpServer(opts(ntsBatch));
  let stamp: Instant = 0n;
  const bs = new BatchServer(batched, { now: () => stamp });
  const io = new FakeIo(32, MAX_PACKET_LENGTH);
  const clients: Client[] = [];
  for (let i = 0; i < 40; i++) {
    const denied = i % 13 === 5;
    clients.push({
      family: 4,
      words: [(denied ? 0xcb007100 : 0x0a000000) | i | 0, 0, 0, 0],
      port: 1024 + i,
      c2s: rnd(32),
      s2c: rnd(32),
      lastRx: null,
    });
  }
  const counts: Counts = { ok: 0, naks: 0, interleaved: 0, kod: 0, dropped: 0 };
  let now = T0;
  for (let b = 0; b < batches; b++) {
    const n = 1 + (r.nextU32() % io.batch);
    const grams: { data: Uint8Array; c: Client; rx: Instant }[] = [];
    for (let i = 0; i < n; i++) {
      const c = r.nextU32() % 8 === 0 && i > 0 ? grams[i - 1]!.c : clients[r.nextU32() % clients.length]!;
      now += BigInt(r.nextU32() % 2_000_000);
      const data = request(r, c, KINDS[r.nextU32() % KINDS.length]!, rnd);
      grams.push({ data, c, rx: now });
      const o = i * io.slotBytes;
      io.rxData.fill(0xee, o, o + io.slotBytes);
      const len = Math.min(data.length, io.slotBytes);
      io.rxData.set(data.subarray(0, len), o);
      io.rxMeta.set([len, 4, c.port, ...c.words, data.length > len ? RX_TRUNCATED | 1 : 1], i * META);
      io.rxTime[2 * i] = Number(now / NS_PER_S);
      io.rxTime[2 * i + 1] = Number(now % NS_PER_S);
    }
    stamp = now + 30_000n;
    const expected: { data: Uint8Array; stamp: boolean; c: Client }[] = [];
    for (const g of grams) {
      const from = { address: formatAddressWords(4, ...g.c.words), port: g.c.port };
      const before = twin.counters.interleaved;
      const out = twin.handleRequest(g.data, from, g.rx, stamp, SYNCED);
      // An interleaved plain answer cannot be stamped: the batch path keeps its RX time as its
      // TX time until the kernel's stamp comes (documented in server-batch.ts).
      const plainPath = !server.restrictLimit && g.data.length === 48;
      if (out && plainPath && twin.counters.interleaved > before) twin.handleTxTimestamp(out.txTag!, g.rx);
      if (out) expected.push({ data: out.data, stamp: out.stampTransmit === true, c: g.c });
      else counts.dropped++;
    }
    const count = bs.process(io, n, 0, SYNCED);
    assert.equal(count, expected.length, `batch ${b}: answers`);
    // The socket writes T3 into TX_STAMP answers at send time.
    const t3 = instantToNtp64(stamp);
    for (let j = 0; j < count; j++) {
      if (io.txMeta[j * META + 7]! & TX_STAMP) {
        for (let k = 0; k < 8; k++) io.txData[j * io.slotBytes + 40 + k] = Number((t3 >> BigInt(56 - 8 * k)) & 0xffn);
      }
    }
    for (let j = 0; j < count; j++) {
      const e = expected[j]!;
      const m = j * META;
      const got = io.txData.slice(j * io.slotBytes, j * io.slotBytes + io.txMeta[m]!);
      assert.deepEqual(got, e.data, `batch ${b} answer ${j}`);
      assert.equal((io.txMeta[m + 7]! & TX_STAMP) !== 0, e.stamp, `batch ${b} answer ${j}: TX_STAMP`);
      assert.deepEqual([...io.txMeta.subarray(m + 1, m + 7)], [4, e.c.port, ...e.c.words]);
      const p = decodePacket(got);
      assert.ok(p.ok);
      e.c.lastRx = got.slice(32, 40);
      if (p.packet.stratum === 0 && p.packet.refId === 0x4e54534e) counts.naks++;
      else if (p.packet.stratum === 0 && p.packet.refId === 0x52415445) counts.kod++;
      if (got.length > 48 && p.packet.refId !== 0x4e54534e) {
        checkOpens(e.c, got);
        counts.ok++;
      }
    }
    bs.sent(io, count);
    assert.deepEqual(ntsBatch.stats(), ntsTwin.stats(), `batch ${b}: NTS statistics`);
    if (b % 10 === 0 || b === batches - 1) {
      assert.deepEqual(batched.stats(), twin.stats(), `batch ${b}: serverstats`);
      assert.deepEqual(batched.clients(now), twin.clients(now), `batch ${b}: clients`);
    }
  }
  counts.interleaved = twin.stats().ntpInterleavedPacketsReceived;
  return counts;
}

test('differential: NTS answers of the slot path are the bytes of handleRequest (OK, NAK, drops, interleaved)', () => {
  const c = run(11, 120, {});
  assert.ok(c.ok > 500, `${c.ok} authenticated answers`);
  assert.ok(c.naks > 50, `${c.naks} NAKs`);
  assert.ok(c.interleaved > 20, `${c.interleaved} interleaved`);
  assert.ok(c.dropped > 300, `${c.dropped} dropped`);
});

test('differential: NTS with ratelimit (KoD RATE signed), a small client log, no client log', () => {
  const c = run(12, 100, { clientLogLimit: 16, ratelimit: { interval: -3, burst: 2, leak: 2, kod: 1 } });
  assert.ok(c.kod > 5, `${c.kod} KoD`);
  run(13, 40, { noclientlog: true });
  run(14, 40, { clientLogLimit: 0 });
});

test('smoothing or restrict limits: NTS requests take handleRequest (same bytes)', () => {
  run(15, 30, { restrictLimit: (a) => ({ limited: a.endsWith('3'), kod: true }) });
});

test('the NTS path of a batch does not leak the TX slot: answers after long answers are exact', () => {
  // Covered by the 0xcc-filled TX slots above; here a long answer then a short one in one slot.
  const r = new Prng(21);
  const rnd = prngBytes(22);
  const nts = new NtsServerAuthenticator(new ServerCookieKeys(prngBytes(23), MASTER), prngBytes(24));
  const server = new NtpServer({ clientLogLimit: 64, access: () => true, random: () => 0.5, auth: [nts] });
  const bs = new BatchServer(server, { now: () => T0 });
  const io = new FakeIo(1, MAX_PACKET_LENGTH);
  const c: Client = { family: 4, words: [0x0a000001, 0, 0, 0], port: 999, c2s: rnd(32), s2c: rnd(32), lastRx: null };
  for (const p of [7, 0, 3, 0]) {
    const data = request(r, c, 'ok', rnd, p);
    io.rxData.set(data, 0);
    io.rxMeta.set([data.length, 4, c.port, ...c.words, 1], 0);
    io.rxTime[0] = Number(T0 / NS_PER_S);
    assert.equal(bs.process(io, 1, 0, SYNCED), 1);
    const answer = io.txData.slice(0, io.txMeta[0]!);
    checkOpens(c, answer);
    const dec = decodePacket(answer);
    assert.ok(dec.ok);
    const cookies = parseEfList(
      AES_SIV_CMAC_256_NOBLE.open(
        c.s2c,
        ...((): [Uint8Array, Uint8Array] => {
          const a = locateEfs(dec.packet).at(-1)!;
          const parts = parseAuthBody(AES_SIV_CMAC_256_NOBLE, a.body)!;
          return [parts.nonce, parts.ciphertext];
        })(),
        [answer.subarray(0, locateEfs(dec.packet).at(-1)!.start)],
      )!,
    )!;
    assert.equal(cookies.length, p + 1, `${p} placeholders: ${p + 1} fresh cookies`);
  }
});
