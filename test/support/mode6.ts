/**
 * Test helpers for NTP mode 6: requests built as NTPsec's ntpq builds them, fragments
 * reassembled and variable lists parsed as ntpq does (re-stated from ntpq's behaviour).
 */
import assert from 'node:assert/strict';
import { CTL_HEADER_LEN, CTL_MAX_DATA_LEN, decodeControlHeader } from '../../src/ntp/mode6.js';

/** A request as NTPsec's ntpq builds it: data padded with zeros to a multiple of 4. */
export function ntpqRequest(
  opcode: number,
  opts: { associd?: number; data?: string; sequence?: number; version?: number; extra?: number } = {},
): Uint8Array {
  const data = Buffer.from(opts.data ?? '', 'latin1');
  const len = ((CTL_HEADER_LEN + data.length + 3) & ~3) + (opts.extra ?? 0);
  const b = new Uint8Array(len);
  b[0] = ((opts.version ?? 2) << 3) | 6;
  b[1] = opcode;
  b[2] = (opts.sequence ?? 1) >> 8;
  b[3] = (opts.sequence ?? 1) & 0xff;
  b[6] = (opts.associd ?? 0) >> 8;
  b[7] = (opts.associd ?? 0) & 0xff;
  b[10] = data.length >> 8;
  b[11] = data.length & 0xff;
  b.set(data, CTL_HEADER_LEN);
  return b;
}

/** Reassembles fragments the way ntpq does (by offset, until the last one, no holes). */
export function reassemble(frags: Uint8Array[]): { data: Buffer; status: number; error: number | null } {
  const parts = frags.map((f) => ({ h: decodeControlHeader(f)!, f })).sort((a, b) => a.h.offset - b.h.offset);
  let expect = 0;
  for (const { h, f } of parts) {
    assert.ok(h.response, 'R bit set');
    assert.equal(f.length % 4, 0, 'fragment padded to 4');
    assert.ok(f.length >= CTL_HEADER_LEN + h.count);
    assert.ok(h.count <= CTL_MAX_DATA_LEN);
    assert.equal(h.offset, expect, 'no hole or overlap');
    expect += h.count;
  }
  const last = parts[parts.length - 1]!.h;
  assert.equal(last.more, false, 'last fragment has M clear');
  for (const p of parts.slice(0, -1)) assert.equal(p.h.more, true, 'earlier fragments have M set');
  return {
    data: Buffer.concat(parts.map(({ h, f }) => Buffer.from(f.subarray(CTL_HEADER_LEN, CTL_HEADER_LEN + h.count)))),
    status: last.status,
    error: last.error ? last.status >> 8 : null,
  };
}

/** ntpq's varlist parser, re-stated: split on ',' outside quotes, name=value, quotes removed. */
export function parseVarResponse(text: string): Map<string, string> {
  const pairs: string[] = [];
  let cur = '';
  let inString = false;
  for (const c of text) {
    if (c === '"') {
      cur += c;
      inString = !inString;
    } else if (!inString && c === ',') {
      pairs.push(cur.trim());
      cur = '';
    } else if (c.charCodeAt(0) > 0 && c.charCodeAt(0) < 127) cur += c;
  }
  if (cur.trim()) pairs.push(cur.trim());
  const out = new Map<string, string>();
  for (const p of pairs) {
    const eq = p.indexOf('=');
    const k = eq < 0 ? p : p.slice(0, eq);
    let v = eq < 0 ? '' : p.slice(eq + 1).trim();
    if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
    out.set(k.trim(), v);
  }
  return out;
}
