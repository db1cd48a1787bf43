/**
 * Attacks on NTS-protected NTP, each with its expected outcome, against a real ClientAssociation
 * and NtpServer using the NTS authenticators (test/support/nts-pair.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  EF_NTS_COOKIE,
  EF_NTS_COOKIE_PLACEHOLDER,
  EF_NTS_UNIQUE_IDENTIFIER,
  encodePacket,
  MODE_SERVER,
} from '../../src/ntp/packet.js';
import { refIdFromAscii } from '../../src/ntp/refid.js';
import { concatBytes, encodeEf, locateEfs } from '../../src/nts/nts-ef.js';
import { CLIENT_EP, SYNCED, decoded, deliver, nextRequest, ntsPair, seededBytes, serve } from '../support/nts-pair.js';

const NTSN = refIdFromAscii('NTSN');

function flipped(data: Uint8Array, i: number): Uint8Array {
  const t = Uint8Array.from(data);
  t[i]! ^= 0x01;
  return t;
}

test('tampered request: every byte flipped → dropped (NAK only when the cookie itself is damaged)', () => {
  const p = ntsPair();
  const req = nextRequest(p)!;
  const efs = locateEfs(decoded(req.data));
  const cookie = efs.find((e) => e.type === EF_NTS_COOKIE)!;
  const cookieBody = [cookie.start + 4, cookie.start + cookie.length];
  let drops = 0;
  let naks = 0;
  for (let i = 0; i < req.data.length; i++) {
    const out = serve(p, flipped(req.data, i));
    if (out === undefined) {
      drops++;
      continue;
    }
    // Never an authenticated answer; a NAK only for a damaged cookie.
    const a = decoded(out.data);
    assert.equal(a.refId, NTSN, `byte ${i} answered`);
    assert.ok(i >= cookieBody[0]! && i < cookieBody[1]!, `byte ${i} NAKed outside the cookie`);
    naks++;
  }
  assert.equal(naks, cookie.length - 4);
  assert.equal(drops, req.data.length - naks);
  // The untouched request is still answered.
  assert.equal(deliver(p, serve(p, req.data)!.data), 'sample');
});

test('tampered answer: every byte flipped → no sample (auth-covered fields → dropped:auth); the genuine answer still counts', () => {
  const p = ntsPair();
  const req = nextRequest(p)!;
  const ans = serve(p, req.data)!.data;
  const verdicts = new Map<string, number>();
  for (let i = 0; i < ans.length; i++) {
    const v = deliver(p, flipped(ans, i));
    verdicts.set(v, (verdicts.get(v) ?? 0) + 1);
    assert.notEqual(v, 'sample', `byte ${i}`);
    assert.notEqual(v, 'kod', `byte ${i}`);
    // Root delay/dispersion, refid, reference/receive/transmit timestamps and the fields.
    if ((i >= 4 && i < 24) || (i >= 32 && i < 48)) assert.equal(v, 'dropped:auth', `byte ${i}`);
  }
  assert.ok((verdicts.get('dropped:auth') ?? 0) > ans.length / 2, JSON.stringify([...verdicts]));
  assert.equal(deliver(p, ans), 'sample');
  assert.equal(p.session.cookieCount(), 8);
});

test('replayed answer → dropped, to the same request and to the next one', () => {
  const p = ntsPair();
  const req = nextRequest(p)!;
  const ans = serve(p, req.data)!.data;
  assert.equal(deliver(p, ans), 'sample');
  assert.match(deliver(p, ans), /^dropped:/);
  const req2 = nextRequest(p)!;
  assert.match(deliver(p, ans), /^dropped:/);
  assert.equal(deliver(p, serve(p, req2.data)!.data), 'sample');
  // The session itself accepts at most one answer per request.
  assert.deepEqual(p.session.verifyResponse(ans, decoded(ans), p.now), { ok: false, reason: 'nts-no-request' });
});

test('cookie from another server key → NTS NAK → client drops it, needs NTS-KE and stops sending', () => {
  const p = ntsPair();
  const stranger = ntsPair({ seed: 'other-server' });
  const req = nextRequest(p)!;
  const out = stranger.server.handleRequest(req.data, CLIENT_EP, p.now + 1_000_000n, p.now + 1_050_000n, SYNCED)!;
  const nak = decoded(out.data);
  assert.equal(nak.stratum, 0);
  assert.equal(nak.leap, 3);
  assert.equal(nak.refId, NTSN);
  assert.deepEqual(
    nak.extensions.map((e) => e.type),
    [EF_NTS_UNIQUE_IDENTIFIER],
  );
  assert.ok(out.data.length <= req.data.length);
  assert.equal(deliver(p, out.data), 'dropped:nts-nak');
  assert.equal(p.session.needsKe(p.now), true);
  assert.equal(p.session.ready(p.now), false);
  assert.equal(p.session.info(p.now).naks, 1);
  assert.equal(p.assoc.status().stopped, false);
  assert.equal(nextRequest(p), undefined, 'no request until NTS-KE is redone');
});

for (const code of ['RATE', 'DENY', 'RSTR'] as const) {
  test(`forged unauthenticated KoD ${code} to an NTS client → ignored, association keeps polling`, () => {
    const p = ntsPair();
    const pollBefore = p.assoc.status().poll;
    for (let round = 0; round < 3; round++) {
      const req = nextRequest(p)!;
      const rp = decoded(req.data);
      // An on-path attacker even echoes the Unique Identifier; it still cannot authenticate.
      const withUid = [{ type: EF_NTS_UNIQUE_IDENTIFIER, body: rp.extensions[0]!.body }];
      for (const extensions of [[], withUid]) {
        const forged = encodePacket({
          leap: 3,
          version: 4,
          mode: MODE_SERVER,
          stratum: 0,
          poll: 4,
          precision: -20,
          rootDelay: 0,
          rootDispersion: 0,
          refId: refIdFromAscii(code),
          refTime: 0n,
          origin: rp.transmit,
          receive: rp.transmit + 1000n,
          transmit: rp.transmit + 2000n,
          extensions,
        });
        assert.equal(deliver(p, forged), 'dropped:auth');
      }
      assert.equal(deliver(p, serve(p, req.data)!.data), 'sample');
    }
    const st = p.assoc.status();
    assert.equal(st.stopped, false);
    assert.equal(st.kod, null);
    assert.equal(st.poll, pollBefore);
    assert.equal(p.session.needsKe(p.now), false);
  });
}

test('NAK with a wrong Unique Identifier → ignored', () => {
  const p = ntsPair();
  const req = nextRequest(p)!;
  const rp = decoded(req.data);
  const wrong = Uint8Array.from(rp.extensions[0]!.body);
  wrong[5]! ^= 0x80;
  const nak = (uid: Uint8Array) =>
    encodePacket({
      leap: 3,
      version: 4,
      mode: MODE_SERVER,
      stratum: 0,
      poll: 4,
      precision: -20,
      rootDelay: 0,
      rootDispersion: 0,
      refId: NTSN,
      refTime: 0n,
      origin: rp.transmit,
      receive: rp.transmit,
      transmit: rp.transmit,
      extensions: [{ type: EF_NTS_UNIQUE_IDENTIFIER, body: uid }],
    });
  assert.equal(deliver(p, nak(wrong)), 'dropped:auth');
  assert.equal(deliver(p, nak(wrong.subarray(0, 16))), 'dropped:auth');
  assert.equal(p.session.needsKe(p.now), false);
  assert.equal(p.session.info(p.now).naks, 0);
  assert.equal(deliver(p, serve(p, req.data)!.data), 'sample');
});

/** Rebuilds a request with its fields replaced (header kept). */
function rebuild(data: Uint8Array, fields: Uint8Array[]): Uint8Array {
  return concatBytes([data.subarray(0, 48), ...fields]);
}

test('oversized and truncated NTS extension fields → dropped without a throw, on both sides', () => {
  const p = ntsPair();
  const req = nextRequest(p)!;
  const efs = locateEfs(decoded(req.data));
  const raw = efs.map((e) => req.data.subarray(e.start, e.start + e.length));
  const before = p.server.stats().ntpPacketsDropped;
  const bad: Uint8Array[] = [];
  // Every truncation of the request that keeps at least one field byte.
  for (let n = 52; n < req.data.length; n += 4) bad.push(req.data.subarray(0, n));
  // A field whose length runs past the end of the packet.
  const long = Uint8Array.from(req.data);
  long[efs[1]!.start + 2] = 0x40;
  bad.push(long);
  // A Unique Identifier far too large for any NTP packet, and one too short.
  bad.push(rebuild(req.data, [encodeEf(EF_NTS_UNIQUE_IDENTIFIER, new Uint8Array(2000)), ...raw.slice(1)]));
  bad.push(rebuild(req.data, [encodeEf(EF_NTS_UNIQUE_IDENTIFIER, new Uint8Array(16)), ...raw.slice(1)]));
  // A placeholder of another size, two cookies, no cookie, two UIDs, authenticator not last.
  bad.push(rebuild(req.data, [...raw.slice(0, 2), encodeEf(EF_NTS_COOKIE_PLACEHOLDER, new Uint8Array(200)), raw[2]!]));
  bad.push(rebuild(req.data, [raw[0]!, raw[1]!, raw[1]!, raw[2]!]));
  bad.push(rebuild(req.data, [raw[0]!, raw[2]!]));
  bad.push(rebuild(req.data, [raw[0]!, raw[0]!, raw[1]!, raw[2]!]));
  bad.push(rebuild(req.data, [raw[0]!, raw[2]!, raw[1]!]));
  // Authenticator whose nonce / ciphertext lengths claim more than the field holds.
  for (const [off, v] of [
    [4, 0xff],
    [6, 0xff],
    [5, 0x00],
  ] as const) {
    const a = Uint8Array.from(raw[2]!);
    a[off] = v;
    bad.push(rebuild(req.data, [raw[0]!, raw[1]!, a]));
  }
  for (const b of bad) {
    assert.equal(serve(p, b), undefined, `answered ${b.length} bytes`);
  }
  assert.equal(p.server.stats().ntpPacketsDropped - before, bad.length);
  const dropped = p.serverAuth.stats().dropped;
  for (const r of ['nts-uid', 'nts-cookie', 'nts-placeholder', 'nts-auth-not-last', 'nts-auth-malformed']) {
    assert.ok((dropped[r] ?? 0) > 0, `${r}: ${JSON.stringify(dropped)}`);
  }

  // Client side: truncated answers and answers with lying length fields are dropped.
  const ans = serve(p, req.data)!.data;
  const aefs = locateEfs(decoded(ans));
  for (let n = 52; n < ans.length; n += 4) assert.match(deliver(p, ans.subarray(0, n)), /^dropped:/);
  const lying = Uint8Array.from(ans);
  lying[aefs[1]!.start + 4 + 2] = 0xff; // ciphertext length
  assert.equal(deliver(p, lying), 'dropped:auth');
  assert.equal(deliver(p, ans), 'sample');
});

test('a request with 7 placeholders gets 8 cookies back, in an answer no longer than the request', () => {
  const p = ntsPair({ cookies: 1 });
  const req = nextRequest(p)!;
  const rp = decoded(req.data);
  assert.equal(rp.extensions.filter((e) => e.type === EF_NTS_COOKIE_PLACEHOLDER).length, 7);
  const ans = serve(p, req.data)!;
  assert.ok(ans.data.length <= req.data.length, `${ans.data.length} <= ${req.data.length}`);
  assert.equal(deliver(p, ans.data), 'sample');
  assert.equal(p.session.cookieCount(), 8);
  assert.equal(p.serverAuth.stats().cookiesWithheld, 0);
  // An attacker adding placeholders to get a bigger answer: the authenticator covers them.
  const req2 = nextRequest(p)!;
  const efs = locateEfs(decoded(req2.data));
  const raw = efs.map((e) => req2.data.subarray(e.start, e.start + e.length));
  const ph = encodeEf(EF_NTS_COOKIE_PLACEHOLDER, new Uint8Array(104));
  const flood = rebuild(req2.data, [raw[0]!, raw[1]!, ph, ph, ph, ph, ph, ph, ph, ph, raw[2]!]);
  assert.equal(serve(p, flood), undefined);
});

test('a MAC after NTS fields, or NTS fields with a symmetric MAC, is dropped', () => {
  const p = ntsPair();
  const req = nextRequest(p)!;
  const withMac = concatBytes([req.data, new Uint8Array(20)]);
  withMac[req.data.length + 3] = 1; // key id 1
  assert.equal(serve(p, withMac), undefined);
  assert.equal(p.serverAuth.stats().dropped['nts-mac'], 1);
  // Random bytes where the fields should be: never a throw.
  const r = seededBytes('junk');
  for (let i = 0; i < 200; i++) {
    const junk = concatBytes([req.data.subarray(0, 48), r(4 * (1 + (i % 60)))]);
    const out = serve(p, junk);
    // Whatever is answered is a plain 48-byte answer (no NTS field recognised) or a NAK.
    if (out) assert.ok(out.data.length === 48 || decoded(out.data).refId === NTSN);
  }
});

test('random multi-byte mutations of requests and answers: never a throw, never accepted', () => {
  const p = ntsPair();
  const req = nextRequest(p)!;
  const ans = serve(p, req.data)!.data;
  const mutate = (data: Uint8Array, edits: [number, number][]): Uint8Array => {
    const t = Uint8Array.from(data);
    for (const [i, x] of edits) t[i % t.length]! ^= x;
    return t;
  };
  const edits = fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 6 });
  fc.assert(
    fc.property(edits, edits, (e1, e2) => {
      const badReq = mutate(req.data, e1);
      const badAns = mutate(ans, e2);
      // Edits may cancel out (same byte, same mask twice): only real changes count.
      fc.pre(Buffer.compare(badReq, req.data) !== 0 && Buffer.compare(badAns, ans) !== 0);
      const out = serve(p, badReq);
      if (out) assert.equal(decoded(out.data).refId, NTSN, 'only a NAK can answer a damaged request');
      assert.notEqual(deliver(p, badAns), 'sample');
    }),
    { seed: 5, numRuns: 300 },
  );
  assert.equal(deliver(p, ans), 'sample');
});
