/** The mode 6 codec (src/ntp/mode6.ts): header, fragments, variable lists, value formats. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CERR,
  CTL_HEADER_LEN,
  CTL_MAX_DATA_LEN,
  OP,
  decodeControlHeader,
  decodeControlRequest,
  encodeControlError,
  encodeControlResponse,
  formatVarList,
  hex,
  isLoopbackAddress,
  parseVarRequest,
  peerStatus,
  quoted,
  refid,
  systemStatus,
  timestamp,
  token,
  CTL_PST_CONFIG,
  CTL_PST_REACH,
  SEL,
} from '../../src/ntp/mode6.js';
import { ntpqRequest, parseVarResponse, reassemble } from '../support/mode6.js';

test('decodes an ntpq READVAR request: header fields and the counted data only', () => {
  const req = ntpqRequest(OP.READVAR, { associd: 0x1234, data: 'offset,stratum', sequence: 0xbeef, version: 4 });
  assert.equal(req.length, 28); // 12 + 14 → padded to 28
  const d = decodeControlRequest(req);
  assert.ok(d.ok);
  assert.equal(d.request.header.opcode, OP.READVAR);
  assert.equal(d.request.header.associd, 0x1234);
  assert.equal(d.request.header.sequence, 0xbeef);
  assert.equal(d.request.header.version, 4);
  assert.equal(Buffer.from(d.request.data).toString(), 'offset,stratum');
  assert.equal(d.request.macLength, 0);
});

test('drops what ntpd drops silently: short, wrong mode, responses, fragments, bad versions', () => {
  assert.deepEqual(decodeControlRequest(new Uint8Array(11)), { ok: false, reason: 'short' });
  const m3 = ntpqRequest(OP.READSTAT);
  m3[0] = (4 << 3) | 3;
  assert.equal((decodeControlRequest(m3) as { reason: string }).reason, 'mode');
  for (const bit of [0x80, 0x40, 0x20]) {
    const r = ntpqRequest(OP.READSTAT);
    r[1]! |= bit;
    const d = decodeControlRequest(r);
    assert.ok(!d.ok && d.reason === 'not-request' && !d.answer, `bit ${bit}`);
  }
  const frag = ntpqRequest(OP.READSTAT);
  frag[9] = 4;
  assert.equal((decodeControlRequest(frag) as { reason: string }).reason, 'not-request');
  for (const v of [0, 5, 7]) {
    const r = ntpqRequest(OP.READSTAT, { version: v });
    assert.equal((decodeControlRequest(r) as { reason: string }).reason, 'version', `version ${v}`);
  }
});

test('format errors are answered with BADFMT: count past the end, unpadded, count > 468', () => {
  const past = ntpqRequest(OP.READVAR, { data: 'abcd' });
  past[11] = 9;
  const unpadded = Buffer.concat([Buffer.from(ntpqRequest(OP.READVAR, { data: 'abcd' })), Buffer.from([0])]);
  const big = new Uint8Array(CTL_HEADER_LEN + 472);
  big.set(ntpqRequest(OP.READVAR).subarray(0, 12));
  big[10] = (CTL_MAX_DATA_LEN + 1) >> 8;
  big[11] = (CTL_MAX_DATA_LEN + 1) & 0xff;
  for (const b of [past, unpadded, big]) {
    const d = decodeControlRequest(b);
    assert.ok(!d.ok);
    assert.equal(d.reason, 'bad-format');
    assert.equal(d.answer?.error, CERR.BADFMT);
  }
});

test('a key id + MAC after the padded data is recognised (20 or 24 bytes)', () => {
  const mac = (extra: number) => {
    const d = decodeControlRequest(ntpqRequest(OP.READVAR, { data: 'leap', extra }));
    assert.ok(d.ok);
    return d.request.macLength;
  };
  assert.equal(mac(20), 20);
  assert.equal(mac(24), 24);
  assert.equal(mac(8), 0);
});

test('responses are split into ≤ 468-byte fragments with offsets, M bits and padding', () => {
  const data = new Uint8Array(1001).map((_, i) => (i * 7) & 0xff);
  const spec = { leap: 0, version: 2, opcode: OP.READVAR, sequence: 77, status: 0x0615, associd: 5 };
  const frags = encodeControlResponse(spec, data);
  assert.deepEqual(
    frags.map((f) => decodeControlHeader(f)!.count),
    [468, 468, 65],
  );
  assert.deepEqual(
    frags.map((f) => f.length),
    [480, 480, 80],
  );
  for (const f of frags) {
    const h = decodeControlHeader(f)!;
    assert.equal(h.sequence, 77);
    assert.equal(h.associd, 5);
    assert.equal(h.opcode, OP.READVAR);
    assert.equal(h.version, 2);
    assert.equal(f[0]! & 7, 6);
  }
  const r = reassemble(frags);
  assert.deepEqual(new Uint8Array(r.data), data);
  assert.equal(r.status, 0x0615);
  // Padding bytes are zero.
  assert.deepEqual([...frags[2]!.subarray(12 + 65)], [0, 0, 0]);

  const empty = encodeControlResponse(spec, new Uint8Array(0));
  assert.equal(empty.length, 1);
  assert.equal(empty[0]!.length, 12);
  assert.equal(decodeControlHeader(empty[0]!)!.count, 0);
  assert.equal(decodeControlHeader(empty[0]!)!.more, false);
});

test('an error response is 12 bytes with R and E set and the code in the status high byte', () => {
  const e = encodeControlError({ leap: 3, version: 4, opcode: OP.READVAR, sequence: 9, associd: 3 }, CERR.UNKNOWNVAR);
  assert.equal(e.length, 12);
  const h = decodeControlHeader(e)!;
  assert.ok(h.response && h.error && !h.more);
  assert.equal(h.status, CERR.UNKNOWNVAR << 8);
  assert.equal(h.leap, 3);
  assert.equal(h.sequence, 9);
  assert.equal(h.associd, 3);
});

test('variable lists: ", " separators, lines broken before 72 characters, final CRLF', () => {
  const items = Array.from({ length: 30 }, (_, i) => [`var${i}`, `value-${'x'.repeat(i % 7)}`] as const);
  const text = formatVarList(items);
  assert.ok(text.endsWith('\r\n'));
  const lines = text.split('\r\n').slice(0, -1);
  assert.ok(lines.length > 3, 'wrapped into several lines');
  for (const l of lines) assert.ok(l.length < 72, `line too long (${l.length}): ${l}`);
  const parsed = parseVarResponse(text);
  assert.equal(parsed.size, 30);
  for (const [k, v] of items) assert.equal(parsed.get(k), v);
  assert.equal(formatVarList([]), '');
  assert.equal(formatVarList([['a', '1']]), 'a=1\r\n');
  assert.equal(
    formatVarList([
      ['a', '1'],
      ['b', '2'],
    ]),
    'a=1, b=2\r\n',
  );
});

test('request variable lists: names, optional values, spaces and empty items ignored', () => {
  assert.deepEqual(parseVarRequest(Buffer.from(' offset, stratum=3 ,, refid ')), [
    { name: 'offset', value: null },
    { name: 'stratum', value: '3' },
    { name: 'refid', value: null },
  ]);
  assert.deepEqual(parseVarRequest(new Uint8Array(0)), []);
});

test('value formats ntpq parses: timestamps, hex, refids, quoting', () => {
  assert.equal(timestamp(0xe123_4567_89ab_cdefn), '0xe1234567.89abcdef');
  assert.equal(timestamp(0xe123_4567_0000_00ffn), '0xe1234567.000000ff');
  assert.equal(timestamp(0n), '0x00000000.00000000');
  assert.equal(hex(0xff), '0xff');
  assert.equal(hex(0), '0x0');
  assert.equal(refid(0xc0000201, 2), '192.0.2.1');
  assert.equal(refid(0x47505300, 1), 'GPS');
  assert.equal(refid(0x494e4954, 16), 'INIT');
  assert.equal(refid(0x4c4f434c, 0), 'LOCL');
  assert.equal(refid(0x41012c42, 1), 'A..B'); // non-printable and ',' shown as '.'
  assert.equal(refid(0, 16), '');
  assert.equal(quoted('ntpd "x", y\n'), '"ntpd .x., y."');
  assert.equal(token('a b,c'), 'a.b.c');
});

test('status words: system 0x0615-style layout and peer status with tally codes', () => {
  assert.equal(systemStatus(0, 6, 1, 5), 0x0615);
  assert.equal(systemStatus(3, 0), 0xc000);
  assert.equal(peerStatus(CTL_PST_CONFIG | CTL_PST_REACH, SEL.SYSPEER), 0x9600);
  assert.equal(peerStatus(CTL_PST_CONFIG, SEL.REJECT), 0x8000);
  assert.equal(peerStatus(CTL_PST_CONFIG | CTL_PST_REACH, SEL.CANDIDATE, 1, 0xa), 0x941a);
  // ntpq's tally character is " x.-+#*o"[(status >> 8) & 7].
  assert.equal(' x.-+#*o'[(peerStatus(CTL_PST_CONFIG, SEL.OUTLIER) >> 8) & 7], '-');
});

test('loopback detection covers 127/8, ::1 and IPv4-mapped loopback only', () => {
  for (const a of ['127.0.0.1', '127.255.0.9', '::1', '::ffff:127.0.0.1']) assert.ok(isLoopbackAddress(a), a);
  for (const a of ['10.0.0.1', '::', '::2', '0.0.0.0', '::ffff:10.0.0.1', 'fe80::1', 'bogus', ''])
    assert.ok(!isLoopbackAddress(a), a);
});
