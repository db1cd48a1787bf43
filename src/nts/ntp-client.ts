/**
 * The NTS client side of NTP (RFC 8915 §5.7), sans-IO: a `ClientAuthenticator` for one source.
 *
 * It holds what NTS-KE gave (AEAD, C2S/S2C keys, up to 8 cookies) and signs each request with:
 * a fresh Unique Identifier, one cookie (each used once), Cookie Placeholders of the cookie's
 * size asking the server to refill us to 8 (as chrony: bounded to 864 bytes of cookies), and an
 * Authenticator over everything before it. An answer counts only if it echoes the identifier of
 * the outstanding request and its authenticator opens with S2C; its encrypted fields carry the
 * new cookies. An NTS NAK (KoD NTSN echoing our identifier, unauthenticated by design) throws
 * the cookies away: `needsKe()` then asks the owner to run NTS-KE again, as it does when no
 * cookie is left or the keys are older than `refreshInterval` (chrony's `ntsrefresh`).
 */
import type { AuthInfo, ClientAuthenticator, ClientAuthVerdict } from '../ntp/auth.js';
import type { NtpPacket } from '../ntp/packet.js';
import { NTP_HEADER_LENGTH } from '../ntp/packet.js';
import { diffSeconds, type Instant } from '../time/ntp-time.js';
import { AEAD_NAMES, aeadById, type Aead, type AeadId } from './aead.js';
import {
  EF_NTS_AUTH_AND_EEF,
  EF_NTS_COOKIE,
  EF_NTS_COOKIE_PLACEHOLDER,
  EF_NTS_UNIQUE_IDENTIFIER,
  KOD_NTSN,
  MAX_COOKIE_LENGTH,
  MAX_COOKIES,
  MAX_TOTAL_COOKIE_LENGTH,
  UNIQUE_ID_LENGTH,
  buildAuthEf,
  bytesEqual,
  concatBytes,
  encodeEf,
  locateEfs,
  parseAuthBody,
  parseEfList,
} from './nts-ef.js';

export interface NtsKeResult {
  server: string;
  port: number;
  aead: AeadId;
  c2s: Uint8Array;
  s2c: Uint8Array;
  cookies: Uint8Array[];
}

export interface NtsClientOptions {
  /** Seconds after which the NTS-KE keys are renewed (chrony `ntsrefresh`, default 2419200 = 4 weeks). */
  refreshInterval?: number;
}

export const DEFAULT_NTS_REFRESH = 2_419_200;

interface KeState {
  server: string;
  port: number;
  aead: Aead;
  c2s: Uint8Array;
  s2c: Uint8Array;
  at: Instant;
}

export class NtsClientSession implements ClientAuthenticator {
  readonly mode = 'nts' as const;
  private readonly randomBytes: (n: number) => Uint8Array;
  private readonly refresh: number;
  private ke: KeState | null = null;
  /** Oldest first; each is used once. */
  private cookies: Uint8Array[] = [];
  /** Unique Identifier of the request awaiting an answer (null once answered). */
  private outstanding: Uint8Array | null = null;
  private nak = false;
  private keAttempts = 0;
  private naks = 0;
  private lastCookieLength = 0;

  constructor(randomBytes: (n: number) => Uint8Array, options: NtsClientOptions = {}) {
    this.randomBytes = randomBytes;
    this.refresh = options.refreshInterval ?? DEFAULT_NTS_REFRESH;
  }

  /** NTS-KE is needed: never done, no cookie left, NAK received, or the keys are too old. */
  needsKe(now: Instant): boolean {
    if (!this.ke || this.nak || this.cookies.length === 0) return true;
    return diffSeconds(now, this.ke.at) >= this.refresh;
  }

  installKe(result: NtsKeResult, now: Instant): void {
    const aead = aeadById(result.aead);
    if (!aead || result.c2s.length !== aead.keyLength || result.s2c.length !== aead.keyLength) {
      throw new RangeError('NTS-KE result: keys do not match the AEAD');
    }
    this.ke = { server: result.server, port: result.port, aead, c2s: result.c2s, s2c: result.s2c, at: now };
    this.cookies = [];
    for (const c of result.cookies) this.storeCookie(c);
    this.outstanding = null;
    this.nak = false;
    this.keAttempts = 0;
  }

  /**
   * The keys and the cookies not yet sent, for the daemon's dump file (a restart must not send a
   * cookie twice: RFC 8915 §6 unlinkability). Null without usable keys.
   */
  state(): NtsKeResult | null {
    const ke = this.ke;
    if (!ke || this.nak) return null;
    return {
      server: ke.server,
      port: ke.port,
      aead: ke.aead.id,
      c2s: ke.c2s,
      s2c: ke.s2c,
      cookies: this.cookies.map((c) => c.slice()),
    };
  }

  /** An NTS-KE attempt failed (counted for `authdata` and for the owner's back-off). */
  keFailed(_now: Instant): void {
    this.keAttempts++;
  }

  /** The NTP server NTS-KE pointed us to (Server / Port Negotiation records). */
  endpoint(): { address: string; port: number } | null {
    return this.ke ? { address: this.ke.server, port: this.ke.port } : null;
  }

  attempts(): number {
    return this.keAttempts;
  }

  ready(_now: Instant): boolean {
    return this.ke !== null && !this.nak && this.cookies.length > 0;
  }

  signRequest(header: Uint8Array, _now: Instant): Uint8Array {
    const ke = this.ke;
    const cookie = this.cookies.shift();
    if (!ke || !cookie) throw new Error('NTS: signRequest without keys or cookie');
    const uid = this.randomBytes(UNIQUE_ID_LENGTH);
    const wanted = Math.min(
      MAX_COOKIES - this.cookies.length,
      Math.floor(MAX_TOTAL_COOKIE_LENGTH / (cookie.length + 4)),
    );
    const parts: Uint8Array[] = [
      header.subarray(0, NTP_HEADER_LENGTH),
      encodeEf(EF_NTS_UNIQUE_IDENTIFIER, uid),
      encodeEf(EF_NTS_COOKIE, cookie),
    ];
    const placeholder = encodeEf(EF_NTS_COOKIE_PLACEHOLDER, new Uint8Array(cookie.length));
    for (let i = 1; i < wanted; i++) parts.push(placeholder);
    const ad = concatBytes(parts);
    const nonce = this.randomBytes(ke.aead.nonceLength);
    const auth = buildAuthEf(ke.aead, ke.c2s, nonce, ad, new Uint8Array(0));
    this.outstanding = uid;
    return concatBytes([ad, auth]);
  }

  verifyResponse(data: Uint8Array, packet: NtpPacket, _now: Instant): ClientAuthVerdict {
    const ke = this.ke;
    const uid = this.outstanding;
    if (!ke || !uid) return { ok: false, reason: 'nts-no-request' };
    if (packet.mac) return { ok: false, reason: 'nts-mac' };
    const efs = locateEfs(packet);
    const uids = efs.filter((ef) => ef.type === EF_NTS_UNIQUE_IDENTIFIER);
    if (uids.length !== 1) return { ok: false, reason: 'nts-uid-missing' };
    if (!bytesEqual(uids[0]!.body, uid)) return { ok: false, reason: 'nts-uid-mismatch' };

    // NTS NAK: a KoD NTSN with our identifier (RFC 8915 §5.7); by design not authenticated.
    if (packet.stratum === 0 && packet.refId === KOD_NTSN) {
      this.outstanding = null;
      this.nak = true;
      this.naks++;
      this.cookies = [];
      return { ok: false, nak: true, reason: 'nts-nak' };
    }

    const authIndex = efs.findIndex((ef) => ef.type === EF_NTS_AUTH_AND_EEF);
    if (authIndex < 0) return { ok: false, reason: 'nts-auth-missing' };
    if (authIndex !== efs.length - 1) return { ok: false, reason: 'nts-auth-not-last' };
    const auth = efs[authIndex]!;
    const parts = parseAuthBody(ke.aead, auth.body);
    if (!parts) return { ok: false, reason: 'nts-auth-malformed' };
    const plain = ke.aead.open(ke.s2c, parts.nonce, parts.ciphertext, [data.subarray(0, auth.start)]);
    if (!plain) return { ok: false, reason: 'nts-auth-failed' };
    const inner = parseEfList(plain);
    if (!inner) return { ok: false, reason: 'nts-encrypted-malformed' };
    const fresh = inner.filter((ef) => ef.type === EF_NTS_COOKIE && ef.body.length <= MAX_COOKIE_LENGTH);
    if (fresh.length === 0) return { ok: false, reason: 'nts-no-cookie' };

    // Authentic: at most one answer per request.
    this.outstanding = null;
    for (const ef of fresh) this.storeCookie(ef.body.slice());
    this.keAttempts = 0;
    return { ok: true };
  }

  private storeCookie(c: Uint8Array): void {
    if (this.cookies.length >= MAX_COOKIES || c.length === 0 || c.length > MAX_COOKIE_LENGTH) return;
    this.cookies.push(c);
    this.lastCookieLength = c.length;
  }

  cookieCount(): number {
    return this.cookies.length;
  }

  info(now: Instant): AuthInfo {
    const aead = this.ke?.aead;
    return {
      mode: 'nts',
      keyId: 0,
      keyType: aead?.id ?? 0,
      keyTypeName: aead ? AEAD_NAMES[aead.id] : '-',
      keyLength: aead ? aead.keyLength * 8 : 0,
      keAttempts: this.keAttempts,
      lastKeAgo: this.ke ? Math.max(0, diffSeconds(now, this.ke.at)) : null,
      cookies: this.cookies.length,
      cookieLength: this.lastCookieLength,
      naks: this.naks,
    };
  }
}
