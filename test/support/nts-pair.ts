/**
 * An NTS client association and an NTS server wired together in memory (no sockets): the
 * client's `ClientAssociation` with an `NtsClientSession`, the server's `NtpServer` with an
 * `NtsServerAuthenticator`, and NTS-KE replaced by cookies sealed directly with the server keys.
 */
import { createHash } from 'node:crypto';
import { ClientAssociation } from '../../src/ntp/client.js';
import { NtpServer } from '../../src/ntp/server.js';
import { decodePacket, type NtpPacket } from '../../src/ntp/packet.js';
import type { ReferenceState, Transmit } from '../../src/engine/types.js';
import { NS_PER_S, type Instant } from '../../src/time/ntp-time.js';
import { ServerCookieKeys } from '../../src/nts/cookies.js';
import { NtsClientSession } from '../../src/nts/ntp-client.js';
import { NtsServerAuthenticator } from '../../src/nts/ntp-server.js';
import type { AeadId } from '../../src/nts/aead.js';

export const T0 = 1_750_000_000n * NS_PER_S;
export const SERVER_EP = { address: '192.0.2.1', port: 123 };
export const CLIENT_EP = { address: '198.51.100.7', port: 40123 };
export const SYNCED: ReferenceState = {
  synchronized: true,
  leap: 0,
  stratum: 2,
  refId: 0xc0000201,
  refTime: T0 - 30n * NS_PER_S,
  rootDelay: 0.0125,
  rootDispersion: 0.0031,
  precision: -23,
};

/** Deterministic random bytes (SHA-256 of a counter). */
export function seededBytes(seed: string): (n: number) => Uint8Array {
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

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

export interface NtsPair {
  keys: ServerCookieKeys;
  serverAuth: NtsServerAuthenticator;
  server: NtpServer;
  session: NtsClientSession;
  assoc: ClientAssociation;
  rnd: (n: number) => Uint8Array;
  now: Instant;
}

export function ntsPair(opts: { aead?: AeadId; cookies?: number; seed?: string } = {}): NtsPair {
  const aead = opts.aead ?? 15;
  const rnd = seededBytes(opts.seed ?? 'pair');
  const keys = new ServerCookieKeys(rnd);
  const serverAuth = new NtsServerAuthenticator(keys, rnd);
  const server = new NtpServer({ clientLogLimit: 100, access: () => true, random: () => 0.5, auth: [serverAuth] });
  const klen = aead === 15 ? 32 : 16;
  const c2s = rnd(klen);
  const s2c = rnd(klen);
  const cookies = Array.from({ length: opts.cookies ?? 8 }, () => keys.seal({ aead, c2s, s2c }));
  const session = new NtsClientSession(rnd);
  session.installKe({ server: SERVER_EP.address, port: SERVER_EP.port, aead, c2s, s2c, cookies }, T0);
  const assoc = new ClientAssociation(
    { address: SERVER_EP, minpoll: 4, maxpoll: 4, auth: session },
    { random: lcg(7) },
  );
  assoc.start(T0);
  return { keys, serverAuth, server, session, assoc, rnd, now: T0 };
}

/** Runs the association to its next request; undefined if it sent nothing. */
export function nextRequest(p: NtsPair): Transmit | undefined {
  const at = p.assoc.nextTimeout();
  if (at === null) return undefined;
  p.now = at;
  p.assoc.handleTimeout(at);
  return p.assoc.pollTransmit();
}

export function serve(p: NtsPair, data: Uint8Array): Transmit | undefined {
  const rx = p.now + 1_000_000n;
  return p.server.handleRequest(data, CLIENT_EP, rx, rx + 50_000n, SYNCED);
}

export function deliver(p: NtsPair, data: Uint8Array): string {
  return p.assoc.handleResponse(data, SERVER_EP, p.now + 2_000_000n);
}

export function decoded(data: Uint8Array): NtpPacket {
  const d = decodePacket(data);
  if (!d.ok) throw new Error(`undecodable: ${d.reason}`);
  return d.packet;
}
