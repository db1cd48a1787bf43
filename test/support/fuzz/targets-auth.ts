/**
 * Fuzz targets of authentication: NTS-KE records (decoder, server answer, client answer
 * parsing), symmetric-key MACs (NTPv3/v4, MD5/SHA1/SHA256/AES-CMAC), and — loaded only when the
 * NTS engineers' modules exist — NTS cookies and the NTS NTP layer.
 */
import fc from 'fast-check';
import {
  aeadRecord,
  cookieRecord,
  decodeKeMessage,
  encodeKeMessage,
  KeMessageDecoder,
  nextProtocolRecord,
  ntpPortRecord,
  ntpServerRecord,
  compliantGcmExportRecord,
  errorRecord,
  type KeRecord,
} from '../../../src/nts/ke-records.js';
import { answerKeRequest, buildKeRequest, parseKeAnswer } from '../../../src/nts/ke-negotiation.js';
import { parseKeysText } from '../../../src/config/keys-file.js';
import { signPacket, SymmetricServerAuth, SymmetricClientAuth } from '../../../src/ntp/symmetric-auth.js';
import { decodePacket, encodePacket } from '../../../src/ntp/packet.js';
import { NS_PER_S, type Instant } from '../../../src/time/ntp-time.js';
import { clientRequestPacket } from '../ntp-packets.js';
import { mutatedBytes } from './mutate.js';
import { hexToBytes, seedBytes, seedsOf } from './seeds.js';
import { expect, type FuzzTarget } from './target.js';

const NOW: Instant = 1_767_225_600n * NS_PER_S;
const FROM = { address: '198.51.100.9', port: 40123 };

// ---- NTS-KE ----

const KE_SEEDS: Uint8Array[] = [
  encodeKeMessage(buildKeRequest([30, 15])),
  encodeKeMessage([nextProtocolRecord([0]), aeadRecord([15])]),
  encodeKeMessage([
    nextProtocolRecord([0]),
    aeadRecord([30]),
    compliantGcmExportRecord(),
    ntpServerRecord('ntp.example.net'),
    ntpPortRecord(123),
    ...Array.from({ length: 8 }, (_, i) => cookieRecord(new Uint8Array(100).fill(i))),
  ]),
  encodeKeMessage([errorRecord(1)]),
];

const keRecordArb: fc.Arbitrary<KeRecord> = fc.record({
  critical: fc.boolean(),
  type: fc.oneof(fc.integer({ min: 0, max: 8 }), fc.integer({ min: 0, max: 0x7fff })),
  body: fc.uint8Array({ maxLength: 64 }),
});

const keInputArb = fc.oneof(
  { weight: 3, arbitrary: mutatedBytes(seedBytes('nts-ke', KE_SEEDS), 6, 20_000) },
  { weight: 1, arbitrary: fc.array(keRecordArb, { maxLength: 12 }).map((r) => encodeKeMessage(r)) },
);

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

const keRecordsTarget: FuzzTarget<{ data: Uint8Array; cuts: number[] }> = {
  name: 'nts-ke-records',
  description: 'NTS-KE record decoder: whole = chunked, offsets in range, encode(decode(m)) = m',
  arbitrary: fc.record({ data: keInputArb, cuts: fc.array(fc.nat({ max: 0xffff }), { maxLength: 6 }) }),
  check({ data, cuts }) {
    const whole = decodeKeMessage(data);
    if (whole.kind === 'error') {
      const off = whole.error.offset;
      expect(off >= 0 && off <= Math.max(data.length, 16384), `error offset ${off} outside the message`);
    }
    if (whole.kind === 'complete') {
      expect(whole.records.length <= 64, 'more records than the limit');
      expect(sameBytes(encodeKeMessage(whole.records), data), 'encode(decode(m)) differs from m');
    }
    // The same bytes in arbitrary TCP-like chunks give the same result.
    const d = new KeMessageDecoder();
    const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
    let prev = 0;
    let status = d.push(new Uint8Array(0));
    for (const p of [...points, data.length]) {
      status = d.push(data.subarray(prev, p));
      prev = p;
    }
    if (status.kind === 'need-more') status = d.finish();
    expect(status.kind === whole.kind, `chunked decode ${status.kind}, whole ${whole.kind}`);
  },
};

const exporter = (_ctx: Uint8Array, n: number) => new Uint8Array(n).fill(7);

const keNegotiationTarget: FuzzTarget<Uint8Array> = {
  name: 'nts-ke-negotiation',
  description: 'NTS-KE server answer and client answer parsing on decoded records: bounded answers',
  arbitrary: keInputArb,
  check(data) {
    const dec = decodeKeMessage(data);
    if (dec.kind !== 'complete') return;
    const answer = answerKeRequest(
      dec.records,
      { aeads: [30, 15], ntpServer: null, ntpPort: null, makeCookie: () => new Uint8Array(100) },
      exporter,
    );
    expect(answer.records.length <= 16, `${answer.records.length} records in an answer`);
    expect(encodeKeMessage(answer.records).length <= 2048, 'answer over 2 KiB');
    const parsed = parseKeAnswer(dec.records, [30, 15]);
    if (parsed.ok) expect(parsed.answer.cookies.length <= 8, 'more than 8 cookies kept');
  },
};

// ---- symmetric keys ----

const KEYS = parseKeysText(
  [
    '1 MD5 HEX:6B5036B6B7E4D1F5C8B0B2E2A9A1C0D3',
    '2 SHA1 HEX:1DC764E0791B11FA67EFC7ECBC4B0D73F68A070C',
    '3 AES128 HEX:6B5036B6B7E4D1F5C8B0B2E2A9A1C0D3',
    '4 SHA256 ASCII:fuzzing-key-four',
  ].join('\n'),
  'fuzz.keys',
  'chrony',
);

function signedSeeds(): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const key of KEYS)
    for (const version of [3, 4]) {
      const header = encodePacket(clientRequestPacket({ version }));
      out.push(signPacket(key, header, version));
    }
  // Captured chronyd/ntpd packets with MACs come from the fixtures (kind ntp, MAC present).
  for (const s of seedsOf('ntp')) {
    const d = decodePacket(hexToBytes(s.hex));
    if (d.ok && d.packet.mac && d.packet.mac.digest.length > 0) out.push(hexToBytes(s.hex));
  }
  return out;
}

const symmetricTarget: FuzzTarget<Uint8Array> = {
  name: 'symmetric-mac',
  description: 'symmetric MAC check (server and client side): no altered packet verifies',
  arbitrary: mutatedBytes(signedSeeds(), 4, 1200),
  check(data) {
    const seeds = signedSeeds();
    const d = decodePacket(data);
    if (!d.ok) return;
    const server = new SymmetricServerAuth(KEYS);
    const authentic = seeds.some((s) => sameBytes(s, data));
    if (server.handles(d.packet)) {
      const v = server.verifyRequest(data, d.packet, FROM, NOW);
      expect(v.kind !== 'ok' || authentic, 'an altered packet passed the server MAC check');
      if (v.kind === 'ok') {
        const answer = v.sign(data.subarray(0, 48));
        expect(answer.length <= data.length, 'signed answer longer than the request');
      }
    }
    for (const key of KEYS) {
      const v = new SymmetricClientAuth(key).verifyResponse(data, d.packet, NOW);
      expect(!v.ok || authentic, 'an altered packet passed the client MAC check');
    }
  },
};

/** NTS modules still being written elsewhere are loaded if present. */
async function optional(path: string): Promise<Record<string, unknown> | null> {
  try {
    return (await import(new URL(path, import.meta.url).href)) as Record<string, unknown>;
  } catch {
    return null;
  }
}

export async function authTargets(): Promise<{ targets: FuzzTarget[]; missing: string[] }> {
  const targets = [keRecordsTarget, keNegotiationTarget, symmetricTarget] as FuzzTarget[];
  const missing: string[] = [];
  const { ntsTargets } = await import('./targets-nts.js');
  const nts = await ntsTargets(optional);
  targets.push(...nts.targets);
  missing.push(...nts.missing);
  return { targets, missing };
}
