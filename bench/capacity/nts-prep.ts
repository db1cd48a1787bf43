/**
 * NTS requests for the capacity benchmark's --nts mode. Our NTS-KE client (src/nts/ke-client.ts)
 * gets C2S/S2C keys and 8 cookies from the server at a time; every cookie becomes one NTS request
 * (Unique Identifier, Cookie, Authenticator sealed with C2S), repeated KE until there are enough,
 * so each request carries its own cookie. The requests are a chrony client's steady state: one
 * cookie in, one fresh cookie out, no placeholders. They go into the loadgen's --packets file
 * ([u16 big-endian length][bytes]...), which sends them round-robin, unmodified (servers keep no
 * replay state, so a request may be answered many times). A few of them are sent once here and
 * their answers checked: Unique Identifier echoed, Authenticator opens with S2C, a cookie inside.
 *
 * NTS-KE must happen inside the benchmark namespace: the runner runs nts-prep-cli.js there with
 * `ip netns exec` (prepareNtsPackets), which calls buildNtsPackets.
 */
import { randomBytes as cryptoRandomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runInNs } from '../../test/support/netns.js';
import { decodePacket, NTP_HEADER_LENGTH } from '../../src/ntp/packet.js';
import { aeadById, type Aead, type AeadId } from '../../src/nts/aead.js';
import { runNtsKe } from '../../src/nts/ke-client.js';
import {
  EF_NTS_AUTH_AND_EEF,
  EF_NTS_COOKIE,
  EF_NTS_UNIQUE_IDENTIFIER,
  UNIQUE_ID_LENGTH,
  buildAuthEf,
  bytesEqual,
  concatBytes,
  encodeEf,
  locateEfs,
  parseAuthBody,
  parseEfList,
} from '../../src/nts/nts-ef.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), 'nts-prep-cli.js');
/** chrony 4.3 negotiates only AEAD 15 (AES-SIV-CMAC-256): both servers get the same algorithm. */
export const BENCH_AEAD: AeadId = 15;

/** One prepared request and what is needed to check its answer. */
export interface NtsRequest {
  bytes: Uint8Array;
  uid: Uint8Array;
  aead: Aead;
  s2c: Uint8Array;
}

/** An NTPv4 mode-3 header whose transmit field is random (a unique origin for the answer). */
function requestHeader(random: (n: number) => Uint8Array): Uint8Array {
  const h = new Uint8Array(NTP_HEADER_LENGTH);
  h[0] = (4 << 3) | 3; // LI 0, VN 4, mode 3
  h[2] = 6; // poll 64 s, as a chrony client at its default minpoll
  h[3] = 0xe9; // precision 2^-23
  h.set(random(8), 40);
  return h;
}

/** A steady-state NTS request: header, Unique Identifier, one Cookie, Authenticator (no EEF). */
export function buildNtsRequest(
  aead: Aead,
  c2s: Uint8Array,
  cookie: Uint8Array,
  random: (n: number) => Uint8Array,
): { bytes: Uint8Array; uid: Uint8Array } {
  const uid = random(UNIQUE_ID_LENGTH);
  const ad = concatBytes([
    requestHeader(random),
    encodeEf(EF_NTS_UNIQUE_IDENTIFIER, uid),
    encodeEf(EF_NTS_COOKIE, cookie),
  ]);
  const auth = buildAuthEf(aead, c2s, random(aead.nonceLength), ad, new Uint8Array(0));
  return { bytes: concatBytes([ad, auth]), uid };
}

/** The loadgen's --packets format: [u16 big-endian length][bytes] per request. */
export function encodePacketsFile(requests: readonly Uint8Array[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const r of requests) {
    if (r.length === 0 || r.length > 0xffff) throw new RangeError(`request of ${r.length} bytes`);
    parts.push(Uint8Array.of(r.length >>> 8, r.length & 0xff), r);
  }
  return concatBytes(parts);
}

/**
 * Checks an answer to `req`: mode 4, origin = the request's transmit, the Unique Identifier
 * echoed, the Authenticator last and opening with S2C, at least one cookie inside. Null when
 * authentic, else why not.
 */
export function checkNtsAnswer(req: NtsRequest, data: Uint8Array): string | null {
  const d = decodePacket(data);
  if (!d.ok) return `undecodable answer (${d.reason})`;
  const p = d.packet;
  if (p.mode !== 4) return `mode ${p.mode}`;
  if (!bytesEqual(data.subarray(24, 32), req.bytes.subarray(40, 48))) return 'origin is not our transmit';
  if (p.stratum === 0) return `KoD ${Buffer.from(data.subarray(12, 16)).toString('latin1')}`;
  const efs = locateEfs(p);
  const uids = efs.filter((ef) => ef.type === EF_NTS_UNIQUE_IDENTIFIER);
  if (uids.length !== 1 || !bytesEqual(uids[0]!.body, req.uid)) return 'Unique Identifier not echoed';
  const auth = efs[efs.length - 1];
  if (!auth || auth.type !== EF_NTS_AUTH_AND_EEF) return 'no Authenticator as the last field';
  const parts = parseAuthBody(req.aead, auth.body);
  if (!parts) return 'malformed Authenticator';
  const plain = req.aead.open(req.s2c, parts.nonce, parts.ciphertext, [data.subarray(0, auth.start)]);
  if (!plain) return 'Authenticator does not open with S2C';
  const inner = parseEfList(plain);
  if (!inner || !inner.some((ef) => ef.type === EF_NTS_COOKIE)) return 'no cookie in the encrypted fields';
  return null;
}

/** Sends each request once (in sequence) and returns the answers (null: none within timeoutMs). */
async function exchange(port: number, reqs: NtsRequest[], timeoutMs: number): Promise<(Uint8Array | null)[]> {
  const sock = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(0, '127.0.0.1', () => resolve());
  });
  try {
    const out: (Uint8Array | null)[] = [];
    for (const req of reqs) {
      out.push(
        await new Promise<Uint8Array | null>((resolve) => {
          const timer = setTimeout(() => {
            sock.off('message', onMessage);
            resolve(null);
          }, timeoutMs);
          const onMessage = (msg: Buffer): void => {
            // Only the answer to this request (its origin is our random transmit).
            if (msg.length < 48 || !bytesEqual(msg.subarray(24, 32), req.bytes.subarray(40, 48))) return;
            clearTimeout(timer);
            sock.off('message', onMessage);
            resolve(new Uint8Array(msg));
          };
          sock.on('message', onMessage);
          sock.send(req.bytes, port, '127.0.0.1');
        }),
      );
    }
    return out;
  } finally {
    sock.close();
  }
}

export interface NtsPrepOptions {
  kePort: number;
  ntpPort: number;
  caCert: string;
  count: number;
  out: string;
  /** How long to retry the first NTS-KE while the server starts (default 20 s). */
  keWaitMs?: number;
}

export interface NtsPrepSummary {
  requests: number;
  keExchanges: number;
  aead: AeadId;
  cookieBytes: number[];
  requestBytes: number[];
  /** Requests of the file sent once here whose answers authenticated. */
  verified: number;
  answerBytes: number[];
  /** Where NTS-KE said the NTP server is (informational; the benchmark uses ntpPort). */
  keServer: string;
  kePortAnswer: number;
}

/** Runs in the namespace: NTS-KE until `count` requests, write the file, check a sample. */
export async function buildNtsPackets(o: NtsPrepOptions, random = cryptoRandomBytes): Promise<NtsPrepSummary> {
  const rnd = (n: number): Uint8Array => new Uint8Array(random(n));
  const ke = async (): Promise<Awaited<ReturnType<typeof runNtsKe>>> =>
    runNtsKe({
      host: '127.0.0.1',
      port: o.kePort,
      trustedCerts: [o.caCert],
      noSystemCert: true,
      aeads: [BENCH_AEAD],
      timeoutMs: 10_000,
    });
  // The first exchange may race the server's start: retry for a while.
  const deadline = Date.now() + (o.keWaitMs ?? 20_000);
  let first: Awaited<ReturnType<typeof runNtsKe>> | null = null;
  for (;;) {
    try {
      first = await ke();
      break;
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  const requests: NtsRequest[] = [];
  const cookieBytes = new Set<number>();
  let exchanges = 0;
  let result: Awaited<ReturnType<typeof runNtsKe>> | null = first;
  while (requests.length < o.count) {
    const r = result ?? (await ke());
    result = null;
    exchanges++;
    const aead = aeadById(r.aead);
    if (!aead) throw new Error(`NTS-KE gave unknown AEAD ${r.aead}`);
    if (r.cookies.length === 0) throw new Error('NTS-KE gave no cookie');
    for (const cookie of r.cookies) {
      if (requests.length >= o.count) break;
      cookieBytes.add(cookie.length);
      const built = buildNtsRequest(aead, r.c2s, cookie, rnd);
      requests.push({ ...built, aead, s2c: r.s2c });
    }
    if (exchanges > o.count) throw new Error('NTS-KE keeps giving no usable cookies');
  }
  writeFileSync(o.out, encodePacketsFile(requests.map((r) => r.bytes)));

  const sample = [...new Set([0, Math.floor(requests.length / 2), requests.length - 1])].map((i) => requests[i]!);
  const answers = await exchange(o.ntpPort, sample, 2000);
  const answerBytes: number[] = [];
  sample.forEach((req, i) => {
    const a = answers[i];
    if (!a) throw new Error(`no answer to NTS request ${i} of the sample from 127.0.0.1:${o.ntpPort}`);
    const why = checkNtsAnswer(req, a);
    if (why) throw new Error(`NTS answer does not authenticate: ${why}`);
    answerBytes.push(a.length);
  });
  return {
    requests: requests.length,
    keExchanges: exchanges,
    aead: first.aead,
    cookieBytes: [...cookieBytes].sort((a, b) => a - b),
    requestBytes: [...new Set(requests.map((r) => r.bytes.length))].sort((a, b) => a - b),
    verified: sample.length,
    answerBytes: [...new Set(answerBytes)].sort((a, b) => a - b),
    keServer: first.server,
    kePortAnswer: first.port,
  };
}

/** Runner side: runs nts-prep-cli.js in `ns` and returns its summary. */
export async function prepareNtsPackets(ns: string, o: NtsPrepOptions): Promise<NtsPrepSummary> {
  const args = [
    CLI,
    '--ke-port',
    String(o.kePort),
    '--ntp-port',
    String(o.ntpPort),
    '--ca',
    o.caCert,
    '--count',
    String(o.count),
    '--out',
    o.out,
  ];
  const r = await runInNs(ns, process.execPath, args, { timeoutMs: 180_000, check: false });
  if (r.code !== 0) throw new Error(`NTS preparation failed (${r.code ?? r.signal}):\n${r.stderr}${r.stdout}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as NtsPrepSummary;
}
