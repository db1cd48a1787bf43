/**
 * NTS-KE record codec and negotiation (sans-IO): round trips, split reads, every decoder error
 * path, the server's answers and errors, the client's request and reading of answers, and the
 * AES-128-GCM-SIV exporter-context rule chrony negotiates with record 1024.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import {
  DEFAULT_KE_LIMITS,
  KE_RECORD,
  KeMessageDecoder,
  aeadRecord,
  compliantGcmExportRecord,
  cookieRecord,
  decodeKeMessage,
  encodeKeMessage,
  encodeRecord,
  errorRecord,
  nextProtocolRecord,
  ntpPortRecord,
  ntpServerRecord,
  readU16List,
  warningRecord,
  type KeRecord,
} from '../../src/nts/ke-records.js';
import {
  answerKeRequest,
  buildKeRequest,
  completeKe,
  exporterContext,
  parseKeAnswer,
  type KeAeadId,
  type KeCookieContents,
  type KeServerPolicy,
  type KeyExporter,
} from '../../src/nts/ke-negotiation.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const bytes = (...v: number[]): Uint8Array => Uint8Array.from(v);

/** A stand-in for the TLS exporter: a keyed hash of the context, so each context gives other keys. */
function fakeExporter(secret: string): KeyExporter & { contexts: string[] } {
  const contexts: string[] = [];
  const f = (context: Uint8Array, length: number): Uint8Array => {
    contexts.push(hex(context));
    return new Uint8Array(createHash('sha512').update(secret).update(context).digest().subarray(0, length));
  };
  return Object.assign(f, { contexts });
}

function policy(over: Partial<KeServerPolicy> = {}): KeServerPolicy & { made: KeCookieContents[] } {
  const made: KeCookieContents[] = [];
  let n = 0;
  return {
    aeads: [30, 15],
    ntpServer: null,
    ntpPort: null,
    makeCookie: (c) => {
      made.push(c);
      return new Uint8Array(100).fill(++n);
    },
    ...over,
    made,
  };
}

const allRecords = (): KeRecord[] => [
  nextProtocolRecord([0]),
  errorRecord(1),
  warningRecord(7),
  aeadRecord([30, 15]),
  cookieRecord(new Uint8Array(100).fill(0xab)),
  ntpServerRecord('ntp.example.net'),
  ntpPortRecord(10123),
  compliantGcmExportRecord(),
];

describe('NTS-KE record codec', () => {
  it('encodes the wire layout C|type|length|body', () => {
    assert.equal(hex(encodeRecord(ntpPortRecord(123))), '80070002007b');
    assert.equal(hex(encodeRecord(cookieRecord(bytes(1, 2, 3, 4)))), '0005000401020304');
    assert.equal(hex(encodeRecord(compliantGcmExportRecord())), '04000000');
    assert.equal(hex(encodeRecord(aeadRecord([30, 15]))), '80040004001e000f');
    // The message ends with a critical empty End of Message.
    assert.equal(hex(encodeKeMessage([nextProtocolRecord([0])])).slice(-8), '80000000');
  });

  it('round-trips every record type in one message', () => {
    const recs = allRecords();
    const st = decodeKeMessage(encodeKeMessage(recs));
    assert.equal(st.kind, 'complete');
    assert.deepEqual(
      st.kind === 'complete' && st.records.map((r) => [r.critical, r.type, hex(r.body)]),
      recs.map((r) => [r.critical, r.type, hex(r.body)]),
    );
  });

  it('decodes a message split at every possible point, and byte by byte', () => {
    const msg = encodeKeMessage(allRecords());
    const whole = decodeKeMessage(msg);
    for (let cut = 1; cut < msg.length; cut++) {
      const d = new KeMessageDecoder();
      assert.equal(d.push(msg.subarray(0, cut)).kind, 'need-more', `cut ${cut}`);
      assert.deepEqual(d.push(msg.subarray(cut)), whole, `cut ${cut}`);
    }
    const d = new KeMessageDecoder();
    for (let i = 0; i < msg.length - 1; i++) assert.equal(d.push(msg.subarray(i, i + 1)).kind, 'need-more');
    assert.deepEqual(d.push(msg.subarray(msg.length - 1)), whole);
  });

  it('refuses a message longer than the limit, at the offending record, before its body arrives', () => {
    // A header announcing 60000 bytes is refused as soon as the header is in.
    const d = new KeMessageDecoder();
    const st = d.push(encodeRecord(nextProtocolRecord([0])).slice());
    assert.equal(st.kind, 'need-more');
    const st2 = d.push(bytes(0x00, 0x05, 0xea, 0x60));
    assert.equal(st2.kind, 'error');
    assert.equal(st2.kind === 'error' && st2.error.code, 'message-too-large');
    assert.equal(st2.kind === 'error' && st2.error.offset, 6);
    // More bytes than the limit in total, even in valid small records.
    const big = new Uint8Array(DEFAULT_KE_LIMITS.maxMessageBytes + 4);
    const st3 = new KeMessageDecoder({ maxRecords: 10_000 }).push(big);
    assert.equal(st3.kind === 'error' && st3.error.code, 'message-too-large');
    // Once failed, the decoder stays failed and holds no more data.
    const d4 = new KeMessageDecoder({ maxMessageBytes: 64 });
    d4.push(new Uint8Array(60));
    assert.equal(d4.push(new Uint8Array(8)).kind, 'error');
    assert.equal(d4.push(new Uint8Array(8)).kind, 'error');
    assert.ok(d4.bytesReceived <= 64);
  });

  it('refuses more than maxRecords records, naming the offset of the first one too many', () => {
    const flood = new Uint8Array(4 * 1000).fill(0); // 1000 × (non-critical type 0? no: type 0 is End)
    for (let i = 0; i < 1000; i++)
      flood.set(encodeRecord({ critical: false, type: 0x1234, body: new Uint8Array(0) }), 4 * i);
    const st = decodeKeMessage(flood);
    assert.equal(st.kind === 'error' && st.error.code, 'too-many-records');
    assert.equal(st.kind === 'error' && st.error.offset, DEFAULT_KE_LIMITS.maxRecords * 4);
    // Exactly maxRecords records plus End is fine.
    const ok = encodeKeMessage(
      Array.from({ length: DEFAULT_KE_LIMITS.maxRecords }, () => ({
        critical: false,
        type: 0x1234,
        body: new Uint8Array(0),
      })),
    );
    assert.equal(decodeKeMessage(ok).kind, 'complete');
  });

  it('reports truncation at the end of what arrived', () => {
    const msg = encodeKeMessage([nextProtocolRecord([0]), aeadRecord([15])]);
    for (const cut of [0, 3, 6, msg.length - 1]) {
      const st = decodeKeMessage(msg.subarray(0, cut));
      assert.equal(st.kind === 'error' && st.error.code, 'truncated', `cut ${cut}`);
      assert.equal(st.kind === 'error' && st.error.offset, cut);
    }
  });

  it('refuses a bad End of Message and data after it', () => {
    const nonCritical = new Uint8Array([...encodeRecord(nextProtocolRecord([0])), 0, 0, 0, 0]);
    const st = decodeKeMessage(nonCritical);
    assert.equal(st.kind === 'error' && st.error.code, 'bad-end-of-message');
    assert.equal(st.kind === 'error' && st.error.offset, 6);
    const withBody = bytes(0x80, 0, 0, 2, 0, 0);
    assert.equal(
      decodeKeMessage(withBody).kind === 'error' &&
        (decodeKeMessage(withBody) as { error: { code: string } }).error.code,
      'bad-end-of-message',
    );
    const after = new Uint8Array([...encodeKeMessage([]), 0x80, 0x01]);
    const st2 = decodeKeMessage(after);
    assert.equal(st2.kind === 'error' && st2.error.code, 'data-after-end');
    assert.equal(st2.kind === 'error' && st2.error.offset, 4);
    // Also when the extra bytes come in a later read.
    const d = new KeMessageDecoder();
    assert.equal(d.push(encodeKeMessage([])).kind, 'complete');
    assert.equal(d.push(bytes(1)).kind, 'error');
  });

  it('never throws and gives the same verdict however the input is split (fast-check)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.array(fc.nat(300), { maxLength: 6 }), (data, cuts) => {
        const whole = decodeKeMessage(data, { maxMessageBytes: 256, maxRecords: 8 });
        const d = new KeMessageDecoder({ maxMessageBytes: 256, maxRecords: 8 });
        const points = [...new Set(cuts.map((c) => Math.min(c, data.length)))].sort((a, b) => a - b);
        let last = 0;
        let st: ReturnType<KeMessageDecoder['push']> = { kind: 'need-more' };
        for (const p of [...points, data.length]) {
          st = d.push(data.subarray(last, p));
          last = p;
        }
        if (st.kind === 'need-more') st = d.finish();
        assert.equal(st.kind, whole.kind);
        if (st.kind === 'error' && whole.kind === 'error') assert.equal(st.error.code, whole.error.code);
        assert.ok(d.bytesReceived <= 256);
      }),
      { seed: 4460, numRuns: 2000 },
    );
  });

  it('readU16List refuses odd bodies', () => {
    assert.deepEqual(readU16List(bytes(0, 30, 0, 15)), [30, 15]);
    assert.equal(readU16List(bytes(0, 30, 0)), null);
  });
});

describe('NTS-KE negotiation: server', () => {
  it('answers a chrony-style request (30, 15, record 1024) with AEAD 30, 1024 and compliant keys', () => {
    const exp = fakeExporter('s');
    const p = policy();
    const a = answerKeRequest(buildKeRequest([30, 15]), p, exp);
    assert.deepEqual(a.outcome, { kind: 'ok', aead: 30, compliantExport: true, cookies: 8 });
    assert.deepEqual(
      a.records.map((r) => r.type),
      [1, 4, 1024, 5, 5, 5, 5, 5, 5, 5, 5],
    );
    assert.deepEqual(readU16List(a.records[1]!.body), [30]);
    assert.deepEqual(exp.contexts, ['0000001e00', '0000001e01']);
    assert.equal(p.made.length, 8);
    assert.equal(p.made[0]!.aead, 30);
    assert.equal(p.made[0]!.c2s.length, 16);
    assert.equal(hex(p.made[0]!.c2s), hex(exp(exporterContext(30, 'c2s'), 16)));
    assert.notEqual(hex(p.made[0]!.c2s), hex(p.made[0]!.s2c));
    // Every cookie comes from the cookie maker, in order.
    assert.deepEqual(
      a.records.filter((r) => r.type === 5).map((r) => r.body[0]),
      [1, 2, 3, 4, 5, 6, 7, 8],
    );
  });

  it('uses context 15 for AEAD 30 when the client did not send 1024 (chrony 4.4–4.6 clients)', () => {
    const exp = fakeExporter('s');
    const a = answerKeRequest([nextProtocolRecord([0]), aeadRecord([30, 15])], policy(), exp);
    assert.deepEqual(a.outcome, { kind: 'ok', aead: 30, compliantExport: false, cookies: 8 });
    assert.ok(!a.records.some((r) => r.type === KE_RECORD.compliantGcmExport));
    assert.deepEqual(exp.contexts, ['0000000f00', '0000000f01']);
  });

  it('AEAD 15 gets 32-byte keys; the server preference order decides', () => {
    const exp = fakeExporter('s');
    const p = policy({ aeads: [15, 30] });
    const a = answerKeRequest(buildKeRequest([30, 15]), p, exp);
    assert.deepEqual(a.outcome, { kind: 'ok', aead: 15, compliantExport: true, cookies: 8 });
    assert.ok(!a.records.some((r) => r.type === KE_RECORD.compliantGcmExport));
    assert.equal(p.made[0]!.c2s.length, 32);
    assert.deepEqual(exp.contexts, ['0000000f00', '0000000f01']);
  });

  it('announces the NTP server and port only when configured', () => {
    const a = answerKeRequest(
      buildKeRequest([15]),
      policy({ ntpServer: 'ntp.example', ntpPort: 1123 }),
      fakeExporter('s'),
    );
    const server = a.records.find((r) => r.type === KE_RECORD.ntpServer);
    const port = a.records.find((r) => r.type === KE_RECORD.ntpPort);
    assert.equal(new TextDecoder().decode(server!.body), 'ntp.example');
    assert.deepEqual(readU16List(port!.body), [1123]);
    const b = answerKeRequest(buildKeRequest([15]), policy(), fakeExporter('s'));
    assert.ok(!b.records.some((r) => r.type === KE_RECORD.ntpServer || r.type === KE_RECORD.ntpPort));
  });

  it('answers an empty AEAD or Next Protocol record when nothing offered is supported', () => {
    const a = answerKeRequest(buildKeRequest([30]), policy({ aeads: [15] }), fakeExporter('s'));
    assert.deepEqual(a.outcome, { kind: 'no-common', what: 'aead' });
    assert.deepEqual(
      a.records.map((r) => [r.type, r.body.length]),
      [
        [1, 2],
        [4, 0],
      ],
    );
    const b = answerKeRequest([nextProtocolRecord([0x8000]), aeadRecord([15])], policy(), fakeExporter('s'));
    assert.deepEqual(b.outcome, { kind: 'no-common', what: 'next-protocol' });
    assert.deepEqual(
      b.records.map((r) => [r.type, r.body.length]),
      [[1, 0]],
    );
  });

  const errorCode = (recs: KeRecord[]): number | null => {
    const a = answerKeRequest(recs, policy(), fakeExporter('s'));
    assert.equal(a.records.length, 1);
    return a.outcome.kind === 'error' ? readU16List(a.records[0]!.body)![0]! : null;
  };
  const unknownCritical: KeRecord = { critical: true, type: 0x4321, body: bytes(1, 2) };
  const unknownOptional: KeRecord = { critical: false, type: 0x4321, body: bytes(1, 2) };

  it('unknown critical record → Error 0; unknown non-critical records are ignored', () => {
    assert.equal(errorCode([...buildKeRequest([15]), unknownCritical]), 0);
    const a = answerKeRequest([unknownOptional, ...buildKeRequest([15]), unknownOptional], policy(), fakeExporter('s'));
    assert.equal(a.outcome.kind, 'ok');
  });

  it('bad requests → Error 1', () => {
    const np = nextProtocolRecord([0]);
    const ae = aeadRecord([15]);
    assert.equal(errorCode([ae]), 1, 'no Next Protocol');
    assert.equal(errorCode([np]), 1, 'no AEAD');
    assert.equal(errorCode([np, np, ae]), 1, 'two Next Protocol');
    assert.equal(errorCode([np, ae, ae]), 1, 'two AEAD');
    assert.equal(errorCode([{ ...np, critical: false }, ae]), 1, 'non-critical Next Protocol');
    assert.equal(errorCode([np, { ...ae, body: bytes(0, 15, 0) }]), 1, 'odd AEAD body');
    assert.equal(errorCode([nextProtocolRecord([]), ae]), 1, 'empty Next Protocol');
    assert.equal(errorCode([np, ae, cookieRecord(bytes(1, 2, 3, 4))]), 1, 'cookie in request');
    assert.equal(errorCode([np, ae, errorRecord(0)]), 1, 'error in request');
    assert.equal(errorCode([np, ae, warningRecord(0)]), 1, 'warning in request');
    assert.equal(errorCode([np, ae, { ...compliantGcmExportRecord(), body: bytes(1) }]), 1, 'non-empty 1024');
    assert.equal(errorCode([]), 1, 'empty request');
    // The first problem in record order decides.
    assert.equal(errorCode([unknownCritical, np, ae, cookieRecord(bytes(1, 2, 3, 4))]), 0);
    assert.equal(errorCode([cookieRecord(bytes(1, 2, 3, 4)), unknownCritical, np, ae]), 1);
    // The client's own server/port suggestions are allowed (RFC 8915 §4.1.7, §4.1.8).
    const s = answerKeRequest([np, ae, ntpServerRecord('x'), ntpPortRecord(1)], policy(), fakeExporter('s'));
    assert.equal(s.outcome.kind, 'ok');
  });
});

describe('NTS-KE negotiation: client', () => {
  it('builds chrony’s request: record 1024 only when offering AEAD 30', () => {
    assert.deepEqual(
      buildKeRequest([30, 15]).map((r) => [r.critical, r.type, hex(r.body)]),
      [
        [true, 1, '0000'],
        [true, 4, '001e000f'],
        [false, 1024, ''],
      ],
    );
    assert.deepEqual(
      buildKeRequest([15]).map((r) => r.type),
      [1, 4],
    );
    assert.throws(() => buildKeRequest([]));
  });

  for (const [offer, serverAeads, aead] of [
    [[30, 15], [30, 15], 30],
    [[30, 15], [15], 15],
    [[15], [30, 15], 15],
  ] as Array<[KeAeadId[], KeAeadId[], KeAeadId]>) {
    it(`client ${offer} / server ${serverAeads}: both sides derive the same keys (AEAD ${aead})`, () => {
      const exp = fakeExporter('session');
      const p = policy({ aeads: serverAeads });
      const a = answerKeRequest(buildKeRequest(offer), p, exp);
      const parsed = parseKeAnswer(a.records, offer);
      assert.ok(parsed.ok, parsed.ok ? '' : parsed.error);
      const r = completeKe(parsed.answer, 'ke.example', exp);
      assert.equal(r.aead, aead);
      assert.equal(r.compliantExport, true);
      assert.equal(hex(r.c2s), hex(p.made[0]!.c2s));
      assert.equal(hex(r.s2c), hex(p.made[0]!.s2c));
      assert.equal(r.cookies.length, 8);
      assert.equal(r.server, 'ke.example');
      assert.equal(r.port, 123);
      assert.equal(r.alternateKeys, undefined);
    });
  }

  it('AEAD 30 without 1024 from the server (chrony 4.4–4.6): context 15 keys, compliant keys as alternate', () => {
    const exp = fakeExporter('session');
    const answer = [nextProtocolRecord([0]), aeadRecord([30]), cookieRecord(new Uint8Array(104))];
    const parsed = parseKeAnswer(answer, [30, 15]);
    assert.ok(parsed.ok);
    const r = completeKe(parsed.answer, 'h', exp);
    assert.equal(r.compliantExport, false);
    assert.equal(hex(r.c2s), hex(exp(exporterContext(15, 'c2s'), 16)));
    assert.equal(hex(r.alternateKeys!.c2s), hex(exp(exporterContext(30, 'c2s'), 16)));
    assert.equal(hex(r.alternateKeys!.s2c), hex(exp(exporterContext(30, 's2c'), 16)));
    // And a server that did not get 1024 uses exactly the primary keys.
    const p = policy();
    answerKeRequest([nextProtocolRecord([0]), aeadRecord([30, 15])], p, exp);
    assert.equal(hex(p.made[0]!.c2s), hex(r.c2s));
  });

  it('takes the negotiated server and port', () => {
    const answer = [
      nextProtocolRecord([0]),
      aeadRecord([15]),
      ntpServerRecord('192.0.2.7'),
      ntpPortRecord(10123),
      cookieRecord(new Uint8Array(100)),
    ];
    const parsed = parseKeAnswer(answer, [15]);
    assert.ok(parsed.ok);
    const r = completeKe(parsed.answer, 'ke.example', fakeExporter('x'));
    assert.equal(r.server, '192.0.2.7');
    assert.equal(r.port, 10123);
  });

  it('keeps at most 8 cookies and drops cookies with a bad length, as chrony does', () => {
    const good = Array.from({ length: 10 }, (_, i) => cookieRecord(new Uint8Array(100).fill(i)));
    const answer = [
      nextProtocolRecord([0]),
      aeadRecord([15]),
      cookieRecord(new Uint8Array(101)),
      cookieRecord(new Uint8Array(260)),
      ...good,
    ];
    const parsed = parseKeAnswer(answer, [15]);
    assert.ok(parsed.ok);
    assert.equal(parsed.answer.cookies.length, 8);
    assert.equal(parsed.answer.cookies[0]![0], 0);
    assert.equal(parsed.answer.ignoredCookies, 4);
  });

  const failure = (recs: KeRecord[], offer: KeAeadId[] = [30, 15]): string => {
    const p = parseKeAnswer(recs, offer);
    assert.ok(!p.ok, 'expected a failure');
    return p.ok ? '' : p.error;
  };
  const np = nextProtocolRecord([0]);
  const ae = aeadRecord([15]);
  const ck = cookieRecord(new Uint8Array(100));

  it('names the cause of every refused answer', () => {
    assert.match(failure([errorRecord(1)]), /error 1 \(bad request\)/);
    assert.match(failure([errorRecord(0)]), /error 0 \(unrecognized critical record\)/);
    assert.match(failure([np, ae, warningRecord(5), ck]), /warning 5/);
    assert.match(failure([np, aeadRecord([]), ck]), /none of the AEADs we offered \(30, 15\)/);
    assert.match(failure([nextProtocolRecord([]), ck]), /no next protocol/);
    assert.match(failure([np, aeadRecord([16]), ck]), /AEAD 16, which we did not offer/);
    assert.match(failure([np, aeadRecord([30]), ck], [15]), /AEAD 30, which we did not offer/);
    assert.match(
      failure([np, ae, ck, { critical: true, type: 0x4321, body: bytes() }]),
      /unrecognized critical record type 17185/,
    );
    assert.match(failure([np, ae]), /no usable cookie/);
    assert.match(failure([np, ae, cookieRecord(bytes(1, 2, 3))]), /no usable cookie \(1 ignored\)/);
    assert.match(failure([ae, ck]), /no Next Protocol/);
    assert.match(failure([np, ck]), /no AEAD/);
    assert.match(failure([np, ae, ntpServerRecord('bad host'), ck]), /Server Negotiation/);
    assert.match(failure([np, ae, ntpServerRecord(''), ck]), /Server Negotiation/);
    assert.match(failure([np, ae, { ...ntpPortRecord(1), body: bytes(1) }, ck]), /Port Negotiation/);
    // Unknown non-critical records are ignored.
    assert.ok(parseKeAnswer([np, ae, { critical: false, type: 0x4321, body: bytes(9) }, ck], [15]).ok);
  });
});
