/**
 * `authdata`: the authentication state of each NTP source (chronyc's authdata), built from the
 * sources' authenticators (src/ntp/auth.ts `info()`); sources without one show mode 'none'.
 */
import type { SourceConfig } from '../engine/engine.js';
import type { Instant } from '../time/ntp-time.js';

export interface AuthDataReport {
  name: string;
  address: string;
  mode: 'none' | 'symmetric' | 'nts';
  keyId: number;
  /** chrony's key type code (symmetric: hash/CMAC id, NTS: AEAD id); 0 without authentication. */
  keyType: number;
  keyTypeName: string;
  /** Bits. */
  keyLength: number;
  /** Seconds since the last successful NTS-KE; null if none or not NTS. */
  lastKeAgo: number | null;
  keAttempts: number;
  naks: number;
  cookies: number;
  cookieLength: number;
}

export function authDataReports(details: ReadonlyArray<{ cfg: SourceConfig }>, now: Instant): AuthDataReport[] {
  return details.map(({ cfg }) => {
    const base = { name: cfg.name, address: cfg.address.address };
    if (!cfg.auth) {
      return {
        ...base,
        mode: 'none',
        keyId: 0,
        keyType: 0,
        keyTypeName: '',
        keyLength: 0,
        lastKeAgo: null,
        keAttempts: 0,
        naks: 0,
        cookies: 0,
        cookieLength: 0,
      };
    }
    const i = cfg.auth.info(now);
    return {
      ...base,
      mode: i.mode,
      keyId: i.keyId,
      keyType: i.keyType,
      keyTypeName: i.keyTypeName,
      keyLength: i.keyLength,
      lastKeAgo: i.lastKeAgo,
      keAttempts: i.keAttempts,
      naks: i.naks,
      cookies: i.cookies,
      cookieLength: i.cookieLength,
    };
  });
}
