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
 * Slot path (BatchServer, `SlotNtsAuthenticator`): `scan` walks the fields of the datagram in
 * the socket's RX slot by decodePacket's rules (no packet object), `verify` checks it (the same
 * code `verifyRequest` uses), `writeAnswer` and `sealSlot` build the answer in the TX slot. The
 * two paths give the same bytes for the same random stream (test/unit/nts-server-batch.test.ts).
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
import {
  isNtsExtension,
  MAX_EXTENSION_FIELDS,
  MAX_PACKET_LENGTH,
  MIN_EXTENSION_LENGTH,
  NTP_HEADER_LENGTH,
} from '../ntp/packet.js';
import { NTS_SLOT_DROP, NTS_SLOT_NAK, NTS_SLOT_OK, type SlotNtsAuthenticator } from '../ntp/server-batch.js';
import type { Instant } from '../time/ntp-time.js';
import { aeadById, type Aead, type AeadId } from './aead.js';
import { COOKIE_PLAIN_MAX, cookiePlainLength, type ServerCookieKeys } from './cookies.js';
import {
  EF_NTS_AUTH_AND_EEF,
  EF_NTS_COOKIE,
  EF_NTS_COOKIE_PLACEHOLDER,
  EF_NTS_UNIQUE_IDENTIFIER,
  MAX_COOKIES,
  MAX_COOKIE_LENGTH,
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

export class NtsServerAuthenticator implements ServerAuthenticator, SlotNtsAuthenticator {
  private readonly keys: ServerCookieKeys;
  private readonly nonces: RandomPool;
  private readonly counters: NtsServerStats = { answered: 0, naks: 0, dropped: {}, cookiesWithheld: 0 };
  /** Plaintext of the cookie being used (valid until the next request). */
  private readonly plain = new Uint8Array(COOKIE_PLAIN_MAX);
  private readonly views: Record<AeadId, PlainViews>;
  /** Decrypted encrypted extension fields of the request (grows to the largest seen). */
  private inner = new Uint8Array(256);
  private readonly answers = new AnswerSlab();
  /** The request's authenticator nonce when it has the usual 16 bytes (no view of the datagram). */
  private readonly nonce16 = new Uint8Array(16);
  /** The request's ciphertext (copied: no view of the datagram) and views of it by length. */
  private readonly ciphertext = new Uint8Array(MAX_PACKET_LENGTH);
  private readonly ciphertextViews: Uint8Array[] = [];
  /** Slot path: the answer's nonce (AEAD 15 / 30) and fresh cookie fields, views by length. */
  private readonly sealNonce16 = new Uint8Array(16);
  private readonly sealNonce12 = new Uint8Array(12);
  private readonly fields = new Uint8Array(MAX_COOKIES * (4 + MAX_COOKIE_LENGTH));
  private readonly fieldViews: Uint8Array[] = [];

  // The request being verified, from `scan` and `verify` (valid until the next request):
  // offsets are from the datagram's start, lengths of bodies include their padding.
  private uidAt = 0;
  private uidLength = 0;
  private cookieAt = 0;
  private cookieLength = 0;
  private authAt = 0;
  private authLength = 0;
  private uids = 0;
  private cookies = 0;
  private placeholders = 0;
  private placeholderLength = -1;
  private mixedPlaceholders = false;
  private authNotLast = false;
  private lastType = 0;
  private dropReason = '';
  // The answer `verify` prepared: AEAD, keys, fresh cookies and lengths.
  private aead: Aead = aeadById(15)!;
  private keyViews: PlainViews;
  private answerCookies = 0;
  private cookieEfLength = 0;
  private answerPlainLength = 0;
  /** Offset of the answer's authenticator field: header, then the echoed Unique Identifier. */
  private answerAuthAt = 0;
  private answerLength = 0;

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
    this.keyViews = this.views[15];
  }

  handles(packet: NtpPacket): boolean {
    for (const ef of packet.extensions) if (isNtsExtension(ef.type)) return true;
    return false;
  }

  stats(): NtsServerStats {
    return { ...this.counters, dropped: { ...this.counters.dropped } };
  }

  private count(reason: string): typeof NTS_SLOT_DROP {
    this.counters.dropped[reason] = (this.counters.dropped[reason] ?? 0) + 1;
    this.dropReason = reason;
    return NTS_SLOT_DROP;
  }

  verifyRequest(data: Uint8Array, packet: NtpPacket, _from: Endpoint, _now: Instant): ServerAuthResult {
    if (packet.mac) {
      this.count('nts-mac');
      return { kind: 'drop', reason: 'nts-mac' };
    }
    // decodePacket accepted the datagram without a MAC, so `scan` accepts it too.
    if (!this.scan(data, 0, data.length)) {
      this.count('nts-malformed');
      return { kind: 'drop', reason: 'nts-malformed' };
    }
    const v = this.verify(data, 0, data.length);
    if (v === NTS_SLOT_DROP) return { kind: 'drop', reason: this.dropReason };
    if (v === NTS_SLOT_NAK) {
      const uid = data.slice(this.uidAt + 4, this.uidAt + 4 + this.uidLength);
      return { kind: 'nak', extensions: [{ type: EF_NTS_UNIQUE_IDENTIFIER, body: uid }] };
    }
    const answer = this.answers.take(this.answerLength);
    this.writeBody(data, 0, answer, 0, false);
    const s2c = this.keyViews.s2c.slice();
    const aead = this.aead;
    const authAt = this.answerAuthAt;
    const plainLength = this.answerPlainLength;
    return {
      kind: 'ok',
      sign: (header: Uint8Array) => {
        answer.set(header.length === NTP_HEADER_LENGTH ? header : header.subarray(0, NTP_HEADER_LENGTH));
        sealAnswer(answer, 0, aead, s2c, authAt, plainLength);
        return answer;
      },
    };
  }

  /**
   * Walks the extension fields of the NTPv4 datagram data[base, base+length) by decodePacket's
   * rules and notes the NTS ones. False (nothing counted) when the datagram is not a list of
   * well-formed fields without a MAC, or has no NTS field: not for this path.
   */
  scan(data: Uint8Array, base: number, length: number): boolean {
    if (length <= NTP_HEADER_LENGTH || length > MAX_PACKET_LENGTH || length % 4 !== 0) return false;
    this.uids = this.cookies = this.placeholders = 0;
    this.placeholderLength = -1;
    this.mixedPlaceholders = this.authNotLast = false;
    let nts = false;
    let fields = 0;
    let off = base + NTP_HEADER_LENGTH;
    let rem = length - NTP_HEADER_LENGTH;
    let type = 0;
    while (rem > 24) {
      if (fields >= MAX_EXTENSION_FIELDS) return false;
      // An authenticator before this field is not the last one.
      if (type === EF_NTS_AUTH_AND_EEF) this.authNotLast = true;
      type = (data[off]! << 8) | data[off + 1]!;
      const len = (data[off + 2]! << 8) | data[off + 3]!;
      if (len < MIN_EXTENSION_LENGTH || len % 4 !== 0 || len > rem) return false;
      const at = off - base;
      if (type === EF_NTS_UNIQUE_IDENTIFIER) {
        nts = true;
        this.uids++;
        this.uidAt = at;
        this.uidLength = len - 4;
      } else if (type === EF_NTS_COOKIE) {
        nts = true;
        this.cookies++;
        this.cookieAt = at;
        this.cookieLength = len - 4;
      } else if (type === EF_NTS_COOKIE_PLACEHOLDER) {
        nts = true;
        if (this.placeholders++ === 0) this.placeholderLength = len - 4;
        else if (len - 4 !== this.placeholderLength) this.mixedPlaceholders = true;
      } else if (type === EF_NTS_AUTH_AND_EEF) {
        nts = true;
      }
      this.authAt = at;
      this.authLength = len;
      fields++;
      off += len;
      rem -= len;
    }
    this.lastType = type;
    return rem === 0 && nts;
  }

  /**
   * Verifies the request `scan` walked (the same datagram): NTS_SLOT_OK with the answer prepared
   * (`answerLength`, `writeAnswer`, `sealSlot`), NTS_SLOT_NAK (cookie not opened), or
   * NTS_SLOT_DROP (counted by reason).
   */
  verify(data: Uint8Array, base: number, length: number): number {
    if (this.authNotLast) return this.count('nts-auth-not-last');
    if (this.lastType !== EF_NTS_AUTH_AND_EEF) return this.count('nts-auth-missing');
    if (this.uids !== 1 || this.uidLength < UNIQUE_ID_LENGTH) return this.count('nts-uid');
    if (this.cookies !== 1) return this.count('nts-cookie');
    const cookieLen = this.cookieLength;
    if (this.placeholders > 0 && (this.mixedPlaceholders || this.placeholderLength !== cookieLen)) {
      return this.count('nts-placeholder');
    }

    const aeadId = this.keys.openPlainAt(data, base + this.cookieAt + 4, cookieLen, this.plain);
    if (aeadId === 0) {
      this.counters.naks++;
      return NTS_SLOT_NAK;
    }
    const aead = aeadById(aeadId)!;
    const keys = this.views[aeadId];

    // The Authenticator's body: nonce length, ciphertext length, nonce, padding, ciphertext (parseAuthBody).
    const body = base + this.authAt + 4;
    const bodyLength = this.authLength - 4;
    const nonceLength = (data[body]! << 8) | data[body + 1]!;
    const ctLength = (data[body + 2]! << 8) | data[body + 3]!;
    const nonceOk = aead.id === 15 ? nonceLength >= aead.nonceLength : nonceLength === aead.nonceLength;
    if (!nonceOk || ctLength < aead.tagLength || 4 + pad4(nonceLength) + pad4(ctLength) > bodyLength) {
      return this.count('nts-auth-malformed');
    }
    const ctStart = body + 4 + pad4(nonceLength);
    const innerLength = ctLength - aead.tagLength;
    if (this.inner.length < innerLength) this.inner = new Uint8Array(innerLength);
    let nonce: Uint8Array;
    if (nonceLength === 16) {
      nonce = this.nonce16;
      for (let k = 0; k < 16; k++) nonce[k] = data[body + 4 + k]!;
    } else {
      nonce = data.subarray(body + 4, body + 4 + nonceLength);
    }
    const ciphertext = (this.ciphertextViews[ctLength] ??= this.ciphertext.subarray(0, ctLength));
    for (let k = 0; k < ctLength; k++) ciphertext[k] = data[ctStart + k]!;
    const opened = aead.openInto(keys.c2s, nonce, ciphertext, data.subarray(base, base + this.authAt), this.inner, 0);
    if (opened < 0) return this.count('nts-auth-failed');
    const more = innerPlaceholders(this.inner, opened, cookieLen);
    if (more === INNER_MALFORMED) return this.count('nts-encrypted-malformed');
    if (more === INNER_BAD_PLACEHOLDER) return this.count('nts-placeholder');

    // The answer: header | Unique Identifier | Authenticator (nonce, then tag and the fresh cookie fields).
    const asked = Math.min(MAX_COOKIES, 1 + this.placeholders + more);
    const cookieEfLength = Math.max(16, pad4(4 + cookieLen));
    const authAt = NTP_HEADER_LENGTH + 4 + this.uidLength;
    // Never answer with more bytes than were received.
    let count = asked;
    while (count > 1 && authAt + authEfLength(aead, count * cookieEfLength) > length) count--;
    this.counters.cookiesWithheld += asked - count;
    this.counters.answered++;
    this.aead = aead;
    this.keyViews = keys;
    this.answerCookies = count;
    this.cookieEfLength = cookieEfLength;
    this.answerPlainLength = count * cookieEfLength;
    this.answerAuthAt = authAt;
    this.answerLength = authAt + authEfLength(aead, this.answerPlainLength);
    return NTS_SLOT_OK;
  }

  /** Bytes of the answer `verify` prepared (header included). */
  answerBytes(): number {
    return this.answerLength;
  }

  /** Bytes of the NAK's fields after the header (the request's Unique Identifier field, as sent). */
  nakBytes(): number {
    return 4 + this.uidLength;
  }

  /**
   * Writes everything of the prepared answer but its header at out[o + 48...]: the echoed
   * Unique Identifier, the Authenticator's lengths and nonce, the fresh cookie fields (sealed
   * under the current master key; the S2C seal over them comes with `sealSlot`, before the next
   * request). `data`/`base`: the request. Nonce and cookie fields are also kept in buffers of
   * this object, so that the seal needs no views of `out` for them.
   */
  writeAnswer(data: Uint8Array, base: number, out: Uint8Array, o: number): void {
    this.writeBody(data, base, out, o, true);
  }

  private writeBody(data: Uint8Array, base: number, out: Uint8Array, o: number, slot: boolean): void {
    const aead = this.aead;
    const uidLength = this.uidLength;
    putEfHeader(out, o + NTP_HEADER_LENGTH, EF_NTS_UNIQUE_IDENTIFIER, 4 + uidLength);
    const from = base + this.uidAt + 4;
    const to = o + NTP_HEADER_LENGTH + 4;
    for (let k = 0; k < uidLength; k++) out[to + k] = data[from + k]!;
    const authAt = o + this.answerAuthAt;
    const plainLength = this.answerPlainLength;
    const sealedLength = aead.tagLength + plainLength;
    putEfHeader(out, authAt, EF_NTS_AUTH_AND_EEF, this.answerLength - this.answerAuthAt);
    out[authAt + 4] = aead.nonceLength >>> 8;
    out[authAt + 5] = aead.nonceLength & 0xff;
    out[authAt + 6] = sealedLength >>> 8;
    out[authAt + 7] = sealedLength & 0xff;
    const nonceAt = authAt + 8;
    if (slot) {
      const nonce = aead.id === 15 ? this.sealNonce16 : this.sealNonce12;
      this.nonces.fill(nonce, 0, nonce.length);
      for (let k = 0; k < nonce.length; k++) out[nonceAt + k] = nonce[k]!;
    } else {
      this.nonces.fill(out, nonceAt, aead.nonceLength);
    }
    // Zero padding of the nonce and of the ciphertext (the slot may hold an older answer).
    const ctAt = nonceAt + pad4(aead.nonceLength);
    for (let k = nonceAt + aead.nonceLength; k < ctAt; k++) out[k] = 0;
    const end = o + this.answerLength;
    for (let k = ctAt + sealedLength; k < end; k++) out[k] = 0;
    // Fresh cookies: the same plaintext (AEAD, C2S, S2C) sealed again under the current key.
    // (A cookie that opened is as long as the one sealed now, a multiple of 4: no padding.)
    const cookieEfLength = this.cookieEfLength;
    const fields = slot ? this.fields : out;
    let at = slot ? 0 : ctAt + aead.tagLength;
    for (let i = 0; i < this.answerCookies; i++, at += cookieEfLength) {
      putEfHeader(fields, at, EF_NTS_COOKIE, cookieEfLength);
      this.keys.sealPlain(this.keyViews.plain, fields, at + 4);
    }
  }

  /** Seals the answer at out[o...] (written by `writeAnswer`, header in place) with the request's S2C. */
  sealSlot(out: Uint8Array, o: number): void {
    const aead = this.aead;
    const authAt = this.answerAuthAt;
    const length = this.answerPlainLength;
    const plaintext = (this.fieldViews[length] ??= this.fields.subarray(0, length));
    const ctAt = o + authAt + 8 + pad4(aead.nonceLength);
    const nonce = aead.id === 15 ? this.sealNonce16 : this.sealNonce12;
    aead.sealInto(this.keyViews.s2c, nonce, plaintext, out.subarray(o, o + authAt), out, ctAt);
  }

  /** Writes the NAK's fields after the header at out[o + 48...]: the request's Unique Identifier field. */
  writeNak(data: Uint8Array, base: number, out: Uint8Array, o: number): void {
    const from = base + this.uidAt;
    const to = o + NTP_HEADER_LENGTH;
    const n = 4 + this.uidLength;
    for (let k = 0; k < n; k++) out[to + k] = data[from + k]!;
  }
}

/** Seals the cookie fields of the answer at out[o...] in place (header and fields before them written). */
function sealAnswer(
  out: Uint8Array,
  o: number,
  aead: Aead,
  s2c: Uint8Array,
  authAt: number,
  plaintextLength: number,
): void {
  const nonceAt = o + authAt + 8;
  const ctAt = nonceAt + pad4(aead.nonceLength);
  const plainAt = ctAt + aead.tagLength;
  aead.sealInto(
    s2c,
    out.subarray(nonceAt, nonceAt + aead.nonceLength),
    out.subarray(plainAt, plainAt + plaintextLength),
    out.subarray(o, o + authAt),
    out,
    ctAt,
  );
}
