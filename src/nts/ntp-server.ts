/**
 * The NTS server side of NTP (RFC 8915 §5.7), sans-IO: a `ServerAuthenticator` for NtpServer.
 *
 * A request must carry exactly one Unique Identifier (≥ 32 bytes), exactly one cookie,
 * placeholders of the cookie's size only, and the Authenticator as its last field (other fields
 * are allowed before it: they are covered by the authenticator). A cookie no current or previous
 * master key opens gets an NTS NAK (the identifier echoed in a KoD NTSN); a bad authenticator
 * or any malformed layout is dropped, counted by reason. The answer echoes the identifier and
 * carries, encrypted with S2C, one fresh cookie per cookie and placeholder of the request (at
 * most 8), each sealed with the current master key and the same keys. Cookies and nonce are
 * made before the answer header exists, so signing after T3 is written costs one seal.
 *
 * No amplification: a fresh cookie is exactly as long as the request's cookie (it opened, so it
 * is ours and has the same AEAD), every fresh cookie has a matching cookie or placeholder field
 * in the request, and our nonce is no longer than the client's; so the answer is never longer
 * than the request. `sign` still checks it and drops cookies rather than send more (counted).
 */
import type { Endpoint } from '../engine/types.js';
import type { ServerAuthenticator, ServerAuthResult } from '../ntp/auth.js';
import type { NtpPacket } from '../ntp/packet.js';
import { isNtsExtension, NTP_HEADER_LENGTH } from '../ntp/packet.js';
import type { Instant } from '../time/ntp-time.js';
import { aeadById } from './aead.js';
import type { ServerCookieKeys } from './cookies.js';
import {
  EF_NTS_AUTH_AND_EEF,
  EF_NTS_COOKIE,
  EF_NTS_COOKIE_PLACEHOLDER,
  EF_NTS_UNIQUE_IDENTIFIER,
  MAX_COOKIES,
  UNIQUE_ID_LENGTH,
  authEfLength,
  buildAuthEf,
  concatBytes,
  encodeEf,
  locateEfs,
  parseAuthBody,
  parseEfList,
} from './nts-ef.js';

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

export class NtsServerAuthenticator implements ServerAuthenticator {
  private readonly keys: ServerCookieKeys;
  private readonly randomBytes: (n: number) => Uint8Array;
  private readonly counters: NtsServerStats = { answered: 0, naks: 0, dropped: {}, cookiesWithheld: 0 };

  constructor(keys: ServerCookieKeys, randomBytes: (n: number) => Uint8Array) {
    this.keys = keys;
    this.randomBytes = randomBytes;
  }

  handles(packet: NtpPacket): boolean {
    return packet.extensions.some((ef) => isNtsExtension(ef.type));
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
    const efs = locateEfs(packet);
    let uid: Uint8Array | null = null;
    let cookie: Uint8Array | null = null;
    let uids = 0;
    let cookies = 0;
    const placeholderLengths: number[] = [];
    for (let i = 0; i < efs.length; i++) {
      const ef = efs[i]!;
      if (ef.type === EF_NTS_UNIQUE_IDENTIFIER) {
        uids++;
        uid = ef.body;
      } else if (ef.type === EF_NTS_COOKIE) {
        cookies++;
        cookie = ef.body;
      } else if (ef.type === EF_NTS_COOKIE_PLACEHOLDER) {
        placeholderLengths.push(ef.body.length);
      } else if (ef.type === EF_NTS_AUTH_AND_EEF && i !== efs.length - 1) {
        return this.drop('nts-auth-not-last');
      }
    }
    const auth = efs[efs.length - 1];
    if (!auth || auth.type !== EF_NTS_AUTH_AND_EEF) return this.drop('nts-auth-missing');
    if (uids !== 1 || !uid || uid.length < UNIQUE_ID_LENGTH) return this.drop('nts-uid');
    if (cookies !== 1 || !cookie) return this.drop('nts-cookie');
    const cookieLen = cookie.length;
    if (placeholderLengths.some((l) => l !== cookieLen)) return this.drop('nts-placeholder');
    const echo = [{ type: EF_NTS_UNIQUE_IDENTIFIER, body: uid.slice() }];

    const contents = this.keys.open(cookie);
    if (!contents) {
      this.counters.naks++;
      return { kind: 'nak', extensions: echo };
    }
    const aead = aeadById(contents.aead)!;
    const parts = parseAuthBody(aead, auth.body);
    if (!parts) return this.drop('nts-auth-malformed');
    const plain = aead.open(contents.c2s, parts.nonce, parts.ciphertext, [data.subarray(0, auth.start)]);
    if (!plain) return this.drop('nts-auth-failed');
    const inner = parseEfList(plain);
    if (!inner) return this.drop('nts-encrypted-malformed');
    let placeholders = placeholderLengths.length;
    for (const ef of inner) {
      if (ef.type !== EF_NTS_COOKIE_PLACEHOLDER) continue;
      if (ef.body.length !== cookieLen) return this.drop('nts-placeholder');
      placeholders++;
    }

    // Everything that does not depend on the answer header is made now.
    const uidEf = encodeEf(EF_NTS_UNIQUE_IDENTIFIER, echo[0]!.body);
    let count = Math.min(MAX_COOKIES, 1 + placeholders);
    const fresh: Uint8Array[] = [];
    for (let i = 0; i < count; i++) fresh.push(encodeEf(EF_NTS_COOKIE, this.keys.seal(contents)));
    const nonce = this.randomBytes(aead.nonceLength);
    // Never answer with more bytes than were received.
    const fixed = NTP_HEADER_LENGTH + uidEf.length;
    const answerLength = (n: number): number =>
      fixed +
      authEfLength(
        aead,
        fresh.slice(0, n).reduce((s, c) => s + c.length, 0),
      );
    while (count > 1 && answerLength(count) > data.length) count--;
    if (count < fresh.length) this.counters.cookiesWithheld += fresh.length - count;
    const plaintext = concatBytes(fresh.slice(0, count));
    this.counters.answered++;
    return {
      kind: 'ok',
      sign: (header: Uint8Array) => {
        const ad = concatBytes([header.subarray(0, NTP_HEADER_LENGTH), uidEf]);
        return concatBytes([ad, buildAuthEf(aead, contents.s2c, nonce, ad, plaintext)]);
      },
    };
  }
}
