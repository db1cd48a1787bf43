/**
 * The NTS server side of NTP (RFC 8915 §5.7), sans-IO: a `ServerAuthenticator` for NtpServer.
 *
 * A request must carry exactly one Unique Identifier (≥ 32 bytes), exactly one cookie,
 * placeholders of the cookie's size only, and the Authenticator as its last field (other fields
 * are allowed before it: they are covered by the authenticator). A cookie no current or previous
 * master key opens gets an NTS NAK (the identifier echoed in a KoD NTSN); a bad authenticator
 * or any malformed layout is dropped, counted by reason. The answer echoes the identifier and
 * carries, encrypted with S2C, one fresh cookie per cookie and placeholder of the request (at
 * most 8), each sealed with the current master key and the same keys. The whole answer but its
 * header (cookies, nonce) is written before the header exists, so signing after T3 is written
 * costs one seal, in place.
 *
 * Lean path: the cookie plaintext and the decrypted fields go into buffers owned by the
 * authenticator, fresh cookies and the AES-SIV ciphertext are written straight into the answer,
 * and nonces come from a RandomPool; a request costs the answer buffer and a few views. `sign`
 * owns everything it needs (answer buffer, a copy of S2C): it may run after later requests.
 *
 * No amplification: a fresh cookie is exactly as long as the request's cookie (it opened, so it
 * is ours and has the same AEAD), every fresh cookie has a matching cookie or placeholder field
 * in the request, and our nonce is no longer than the client's; so the answer is never longer
 * than the request. The answer's size is still checked before it is built, and cookies are
 * withheld rather than send more (counted).
 */
import type { Endpoint } from '../engine/types.js';
import type { ServerAuthenticator, ServerAuthResult } from '../ntp/auth.js';
import type { NtpPacket } from '../ntp/packet.js';
import { isNtsExtension, NTP_HEADER_LENGTH } from '../ntp/packet.js';
import type { Instant } from '../time/ntp-time.js';
import { aeadById, type Aead, type AeadId } from './aead.js';
import { COOKIE_PLAIN_MAX, cookiePlainLength, type ServerCookieKeys } from './cookies.js';
import {
  EF_NTS_AUTH_AND_EEF,
  EF_NTS_COOKIE,
  EF_NTS_COOKIE_PLACEHOLDER,
  EF_NTS_UNIQUE_IDENTIFIER,
  MAX_COOKIES,
  UNIQUE_ID_LENGTH,
  authEfLength,
} from './nts-ef.js';
import { RandomPool } from './random-pool.js';

export interface NtsServerStats {
  /** Authentic requests answered. */
  answered: number;
  /** NTS NAKs (cookie not opened). */
  naks: number;
  /** Dropped requests by reason. */
  dropped: Record<string, number>;
  /** Answers that carried fewer cookies than asked to stay within the request's size. */
  cookiesWithheld: number;
}

/** Fixed views of the cookie plaintext scratch for one AEAD: the whole plaintext and its keys. */
interface PlainViews {
  plain: Uint8Array;
  c2s: Uint8Array;
  s2c: Uint8Array;
}

/**
 * Answers are carved from 32 KiB slabs: a typed array of a few hundred bytes costs a backing
 * store allocation (about a microsecond, and GC pressure), a view of a slab a small object.
 * Every part is handed out once, freshly zeroed, never reused; a slab lives while any answer
 * cut from it does.
 */
class AnswerSlab {
  private static readonly SIZE = 32 * 1024;
  private slab = new Uint8Array(0);
  private pos = 0;

  take(length: number): Uint8Array {
    if (this.slab.length - this.pos < length) {
      this.slab = new Uint8Array(Math.max(AnswerSlab.SIZE, length));
      this.pos = 0;
    }
    const out = this.slab.subarray(this.pos, this.pos + length);
    this.pos += (length + 7) & ~7;
    return out;
  }
}

/** Encrypted extension fields of a request are malformed / carry a placeholder of the wrong size. */
const INNER_MALFORMED = -1;
const INNER_BAD_PLACEHOLDER = -2;
/** parseEfList's bound on the encrypted fields. */
const MAX_INNER_FIELDS = 64;

function pad4(n: number): number {
  return (n + 3) & ~3;
}

function putEfHeader(out: Uint8Array, at: number, type: number, length: number): void {
  out[at] = type >>> 8;
  out[at + 1] = type & 0xff;
  out[at + 2] = length >>> 8;
  out[at + 3] = length & 0xff;
}

/**
 * Walks the decrypted extension fields (the rules of parseEfList) and counts the placeholders,
 * which must all be `cookieLength` bytes long: INNER_MALFORMED / INNER_BAD_PLACEHOLDER otherwise.
 */
function innerPlaceholders(data: Uint8Array, length: number, cookieLength: number): number {
  let off = 0;
  let fields = 0;
  let placeholders = 0;
  let badPlaceholder = false;
  while (off < length) {
    if (fields >= MAX_INNER_FIELDS || length - off < 4) return INNER_MALFORMED;
    const type = (data[off]! << 8) | data[off + 1]!;
    const len = (data[off + 2]! << 8) | data[off + 3]!;
    if (len < 16 || len % 4 !== 0 || len > length - off) return INNER_MALFORMED;
    if (type === EF_NTS_COOKIE_PLACEHOLDER) {
      if (len - 4 !== cookieLength) badPlaceholder = true;
      placeholders++;
    }
    fields++;
    off += len;
  }
  return badPlaceholder ? INNER_BAD_PLACEHOLDER : placeholders;
}

export class NtsServerAuthenticator implements ServerAuthenticator {
  private readonly keys: ServerCookieKeys;
  private readonly nonces: RandomPool;
  private readonly counters: NtsServerStats = { answered: 0, naks: 0, dropped: {}, cookiesWithheld: 0 };
  /** Plaintext of the cookie being used (valid until the next request). */
  private readonly plain = new Uint8Array(COOKIE_PLAIN_MAX);
  private readonly views: Record<AeadId, PlainViews>;
  /** Decrypted encrypted extension fields of the request (grows to the largest seen). */
  private inner = new Uint8Array(256);
  private readonly answers = new AnswerSlab();

  constructor(keys: ServerCookieKeys, randomBytes: (n: number) => Uint8Array) {
    this.keys = keys;
    this.nonces = new RandomPool(randomBytes);
    const views = (id: AeadId): PlainViews => {
      const k = aeadById(id)!.keyLength;
      return {
        plain: this.plain.subarray(0, cookiePlainLength(k)),
        c2s: this.plain.subarray(2, 2 + k),
        s2c: this.plain.subarray(2 + k, 2 + 2 * k),
      };
    };
    this.views = { 15: views(15), 30: views(30) };
  }

  handles(packet: NtpPacket): boolean {
    for (const ef of packet.extensions) if (isNtsExtension(ef.type)) return true;
    return false;
  }

  stats(): NtsServerStats {
    return { ...this.counters, dropped: { ...this.counters.dropped } };
  }

  private drop(reason: string): ServerAuthResult {
    this.counters.dropped[reason] = (this.counters.dropped[reason] ?? 0) + 1;
    return { kind: 'drop', reason };
  }

  verifyRequest(data: Uint8Array, packet: NtpPacket, _from: Endpoint, _now: Instant): ServerAuthResult {
    if (packet.mac) return this.drop('nts-mac');
    // One pass over the fields (bodies keep their padding: a field is 4 + body bytes on the wire).
    const efs = packet.extensions;
    const last = efs.length - 1;
    let uid: Uint8Array | null = null;
    let cookie: Uint8Array | null = null;
    let uids = 0;
    let cookies = 0;
    let placeholders = 0;
    let placeholderLength = -1;
    let mixedPlaceholders = false;
    let authStart = NTP_HEADER_LENGTH;
    for (let i = 0, off = NTP_HEADER_LENGTH; i <= last; i++) {
      const ef = efs[i]!;
      if (i === last) authStart = off;
      if (ef.type === EF_NTS_UNIQUE_IDENTIFIER) {
        uids++;
        uid = ef.body;
      } else if (ef.type === EF_NTS_COOKIE) {
        cookies++;
        cookie = ef.body;
      } else if (ef.type === EF_NTS_COOKIE_PLACEHOLDER) {
        if (placeholders++ === 0) placeholderLength = ef.body.length;
        else if (ef.body.length !== placeholderLength) mixedPlaceholders = true;
      } else if (ef.type === EF_NTS_AUTH_AND_EEF && i !== last) {
        return this.drop('nts-auth-not-last');
      }
      off += 4 + ef.body.length;
    }
    const auth = efs[last];
    if (!auth || auth.type !== EF_NTS_AUTH_AND_EEF) return this.drop('nts-auth-missing');
    if (uids !== 1 || !uid || uid.length < UNIQUE_ID_LENGTH) return this.drop('nts-uid');
    if (cookies !== 1 || !cookie) return this.drop('nts-cookie');
    const cookieLen = cookie.length;
    if (placeholders > 0 && (mixedPlaceholders || placeholderLength !== cookieLen)) return this.drop('nts-placeholder');

    const aeadId = this.keys.openPlain(cookie, this.plain);
    if (aeadId === 0) {
      this.counters.naks++;
      return { kind: 'nak', extensions: [{ type: EF_NTS_UNIQUE_IDENTIFIER, body: uid.slice() }] };
    }
    const aead = aeadById(aeadId)!;
    const keys = this.views[aeadId];

    // The Authenticator's body: nonce length, ciphertext length, nonce, padding, ciphertext (parseAuthBody).
    const body = auth.body;
    if (body.length < 4) return this.drop('nts-auth-malformed');
    const nonceLength = (body[0]! << 8) | body[1]!;
    const ctLength = (body[2]! << 8) | body[3]!;
    const nonceOk = aead.id === 15 ? nonceLength >= aead.nonceLength : nonceLength === aead.nonceLength;
    if (!nonceOk || ctLength < aead.tagLength || 4 + pad4(nonceLength) + pad4(ctLength) > body.length) {
      return this.drop('nts-auth-malformed');
    }
    const ctStart = 4 + pad4(nonceLength);
    const innerLength = ctLength - aead.tagLength;
    if (this.inner.length < innerLength) this.inner = new Uint8Array(innerLength);
    const opened = aead.openInto(
      keys.c2s,
      body.subarray(4, 4 + nonceLength),
      body.subarray(ctStart, ctStart + ctLength),
      data.subarray(0, authStart),
      this.inner,
      0,
    );
    if (opened < 0) return this.drop('nts-auth-failed');
    const more = innerPlaceholders(this.inner, opened, cookieLen);
    if (more === INNER_MALFORMED) return this.drop('nts-encrypted-malformed');
    if (more === INNER_BAD_PLACEHOLDER) return this.drop('nts-placeholder');
    placeholders += more;

    // Everything but the header is written now, so signing after T3 costs one seal:
    // header | Unique Identifier | Authenticator (nonce, then tag and the fresh cookie fields).
    const asked = Math.min(MAX_COOKIES, 1 + placeholders);
    const cookieEfLength = Math.max(16, pad4(4 + cookieLen));
    const authAt = NTP_HEADER_LENGTH + 4 + uid.length;
    // Never answer with more bytes than were received.
    let count = asked;
    while (count > 1 && authAt + authEfLength(aead, count * cookieEfLength) > data.length) count--;
    this.counters.cookiesWithheld += asked - count;
    const plaintextLength = count * cookieEfLength;
    const authLength = authEfLength(aead, plaintextLength);
    const answer = this.answers.take(authAt + authLength);
    putEfHeader(answer, NTP_HEADER_LENGTH, EF_NTS_UNIQUE_IDENTIFIER, 4 + uid.length);
    answer.set(uid, NTP_HEADER_LENGTH + 4);
    putEfHeader(answer, authAt, EF_NTS_AUTH_AND_EEF, authLength);
    const nonceAt = authAt + 8;
    const ctAt = nonceAt + pad4(aead.nonceLength);
    const sealedLength = aead.tagLength + plaintextLength;
    answer[authAt + 4] = aead.nonceLength >>> 8;
    answer[authAt + 5] = aead.nonceLength & 0xff;
    answer[authAt + 6] = sealedLength >>> 8;
    answer[authAt + 7] = sealedLength & 0xff;
    this.nonces.fill(answer, nonceAt, aead.nonceLength);
    // Fresh cookies: the same plaintext (AEAD, C2S, S2C) sealed again under the current key.
    let at = ctAt + aead.tagLength;
    for (let i = 0; i < count; i++, at += cookieEfLength) {
      putEfHeader(answer, at, EF_NTS_COOKIE, cookieEfLength);
      this.keys.sealPlain(keys.plain, answer, at + 4);
    }
    const s2c = keys.s2c.slice();
    this.counters.answered++;
    return {
      kind: 'ok',
      sign: (header: Uint8Array) => signAnswer(answer, header, aead, s2c, authAt, nonceAt, ctAt, plaintextLength),
    };
  }
}

/** Puts the header in place and seals the cookie fields in place: the answer is complete. */
function signAnswer(
  answer: Uint8Array,
  header: Uint8Array,
  aead: Aead,
  s2c: Uint8Array,
  authAt: number,
  nonceAt: number,
  ctAt: number,
  plaintextLength: number,
): Uint8Array {
  answer.set(header.length === NTP_HEADER_LENGTH ? header : header.subarray(0, NTP_HEADER_LENGTH));
  const plainAt = ctAt + aead.tagLength;
  aead.sealInto(
    s2c,
    answer.subarray(nonceAt, nonceAt + aead.nonceLength),
    answer.subarray(plainAt, plainAt + plaintextLength),
    answer.subarray(0, authAt),
    answer,
    ctAt,
  );
  return answer;
}
