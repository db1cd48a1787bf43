/**
 * NTS cookie and NTS-for-NTP fuzz targets, written against the module contract of issue 5
 * (src/nts/cookies.ts, ntp-server.ts, ntp-client.ts). They are loaded at run time so this file
 * compiles before those modules exist; a missing module is reported, not failed.
 */
import fc from 'fast-check';
import { decodePacket, encodePacket, type NtpPacket } from '../../../src/ntp/packet.js';
import type { ClientAuthenticator, ServerAuthenticator } from '../../../src/ntp/auth.js';
import { NS_PER_S, type Instant } from '../../../src/time/ntp-time.js';
import { clientRequestPacket } from '../ntp-packets.js';
import { mutatedBytes } from './mutate.js';
import { seedBytes } from './seeds.js';
import { expect, type FuzzTarget } from './target.js';

const NOW: Instant = 1_767_225_600n * NS_PER_S;
const FROM = { address: '198.51.100.9', port: 40123 };

interface CookieContents {
  aead: 15 | 30;
  c2s: Uint8Array;
  s2c: Uint8Array;
}
interface CookieKeys {
  seal(c: CookieContents): Uint8Array;
  open(cookie: Uint8Array): CookieContents | null;
}
type CookieKeysClass = new (rnd: (n: number) => Uint8Array) => CookieKeys;
type ServerAuthClass = new (keys: CookieKeys, rnd: (n: number) => Uint8Array) => ServerAuthenticator;
type ClientSessionClass = new (rnd: (n: number) => Uint8Array) => ClientAuthenticator & {
  installKe(r: unknown, now: Instant): void;
};

/** Deterministic "random" bytes so fixed-seed runs repeat exactly. */
function counterRandom(): (n: number) => Uint8Array {
  let k = 1;
  return (n) => Uint8Array.from({ length: n }, () => (k = (k * 1103515245 + 12345) & 0x7fffffff) & 0xff);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function startsWith(data: Uint8Array, prefix: Uint8Array): boolean {
  return data.length >= prefix.length && prefix.every((v, i) => v === data[i]);
}

export async function ntsTargets(
  load: (path: string) => Promise<Record<string, unknown> | null>,
): Promise<{ targets: FuzzTarget[]; missing: string[] }> {
  const targets: FuzzTarget[] = [];
  const missing: string[] = [];
  const cookies = await load('../../../src/nts/cookies.js');
  const Keys = cookies?.['ServerCookieKeys'] as CookieKeysClass | undefined;
  if (!Keys) {
    missing.push('nts-cookie (src/nts/cookies.ts: ServerCookieKeys)');
    return { targets, missing };
  }
  const keys = new Keys(counterRandom());
  const contents = (aead: 15 | 30, fill: number): CookieContents => ({
    aead,
    c2s: new Uint8Array(aead === 15 ? 32 : 16).fill(fill),
    s2c: new Uint8Array(aead === 15 ? 32 : 16).fill(fill + 1),
  });
  const sealed = [keys.seal(contents(15, 1)), keys.seal(contents(30, 2))];

  targets.push({
    name: 'nts-cookie',
    description: 'ServerCookieKeys.open: altered cookies never open, open(seal(c)) = c',
    arbitrary: fc.oneof(
      { weight: 3, arbitrary: mutatedBytes(sealed, 4, 600) },
      {
        weight: 1,
        arbitrary: fc
          .record({ aead: fc.constantFrom(15 as const, 30 as const), fill: fc.nat({ max: 250 }) })
          .map(({ aead, fill }) => keys.seal(contents(aead, fill))),
      },
    ),
    check(cookie: Uint8Array) {
      const c = keys.open(cookie);
      if (!c) return expect(!sealed.some((s) => sameBytes(s, cookie)), 'a genuine cookie failed to open');
      expect(c.c2s.length === c.s2c.length && (c.aead === 15 || c.aead === 30), 'opened cookie is malformed');
      expect(sameBytes(keys.seal(c).subarray(0, 0), new Uint8Array(0)), 'seal failed');
    },
  } as FuzzTarget);

  const srv = await load('../../../src/nts/ntp-server.js');
  const cli = await load('../../../src/nts/ntp-client.js');
  const ServerAuth = srv?.['NtsServerAuthenticator'] as ServerAuthClass | undefined;
  const ClientSession = cli?.['NtsClientSession'] as ClientSessionClass | undefined;
  if (!ServerAuth || !ClientSession) {
    missing.push('nts-ntp (src/nts/ntp-server.ts, ntp-client.ts)');
    return { targets, missing };
  }

  // One client session per AEAD, fed as if by NTS-KE, its requests and the server's answers as seeds.
  const server = new ServerAuth(keys, counterRandom());
  const requests: Uint8Array[] = [];
  const responses: Array<{ session: ClientAuthenticator; data: Uint8Array }> = [];
  for (const aead of [15, 30] as const) {
    const session = new ClientSession(counterRandom());
    const c = contents(aead, 9);
    session.installKe(
      {
        server: '192.0.2.1',
        port: 123,
        aead,
        c2s: c.c2s,
        s2c: c.s2c,
        cookies: Array.from({ length: 8 }, () => keys.seal(c)),
      },
      NOW,
    );
    const req = session.signRequest(encodePacket(clientRequestPacket()), NOW);
    requests.push(req);
    const dec = decodePacket(req);
    if (!dec.ok) continue;
    const v = server.verifyRequest(req, dec.packet, FROM, NOW);
    if (v.kind === 'ok') {
      const hdr: NtpPacket = { ...dec.packet, mode: 4, origin: dec.packet.transmit, extensions: [] };
      delete hdr.mac;
      responses.push({ session, data: v.sign(encodePacket(hdr)) });
    }
  }
  const reqSeeds = [...requests, ...seedBytes('nts-ntp')];

  targets.push({
    name: 'nts-ntp-server',
    description: 'NtsServerAuthenticator.verifyRequest: altered requests rejected, answers ≤ requests',
    arbitrary: mutatedBytes(reqSeeds, 5, 1200),
    maxMs: 100,
    check(data: Uint8Array) {
      const d = decodePacket(data);
      if (!d.ok || !server.handles(d.packet)) return;
      const v = server.verifyRequest(data, d.packet, FROM, NOW);
      if (v.kind !== 'ok') return;
      expect(
        requests.some((r) => startsWith(data, r)),
        'an altered NTS request was accepted',
      );
      const answer = v.sign(data.subarray(0, 48));
      expect(answer.length <= data.length, `NTS answer of ${answer.length} bytes to ${data.length}`);
    },
  } as FuzzTarget);

  if (responses.length > 0) {
    targets.push({
      name: 'nts-ntp-client',
      description: 'NtsClientSession.verifyResponse: altered answers rejected',
      arbitrary: fc
        .nat({ max: responses.length - 1 })
        .chain((k) => mutatedBytes([responses[k]!.data], 5, 1200).map((data) => ({ k, data }))),
      maxMs: 100,
      check({ k, data }: { k: number; data: Uint8Array }) {
        const d = decodePacket(data);
        if (!d.ok) return;
        const v = responses[k]!.session.verifyResponse(data, d.packet, NOW);
        if (v.ok) expect(startsWith(data, responses[k]!.data), 'an altered NTS answer was accepted');
      },
    } as FuzzTarget);
  }
  return { targets, missing };
}
