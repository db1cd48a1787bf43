/**
 * Symmetric keys at daemon start: reads the key file (chrony `keyfile`, or ntp.conf `keys` in
 * ntp's format), checks every source's `key N` against it, and builds the authenticators: one
 * SymmetricServerAuth for the NTP server (every key of a chrony key file; ntp.conf: only the
 * `trustedkey` ones, as ntpd) and a SymmetricClientAuth per keyed source.
 *
 * A key file nobody needs that cannot be read is only a warning (Debian's chrony.conf names
 * /etc/chrony/chrony.keys, which may be absent); a source whose key is missing is an error
 * naming the source's file:line. Key material is never printed.
 */
import { ConfigError, type Config, type SourceConfig } from '../config/chrony-conf.js';
import { loadKeysFile, type SymmetricKey } from '../config/keys-file.js';
import { isFromNtpConf } from '../config/ntp-conf.js';
import type { ClientAuthenticator } from '../ntp/auth.js';
import { keyUsable, SymmetricClientAuth, SymmetricServerAuth } from '../ntp/symmetric-auth.js';

export interface KeysSetup {
  /** For the NTP server's `auth` list; null when there are no keys. */
  serverAuth: SymmetricServerAuth | null;
  /** The authenticator of a configured source (`key N`), undefined without a key. */
  clientAuth(src: SourceConfig): ClientAuthenticator | undefined;
  /** Number of keys loaded. */
  keyCount: number;
}

export function setupKeys(
  conf: Config,
  warn: (msg: string) => void,
  load: (file: string, dialect: 'chrony' | 'ntp') => SymmetricKey[] = loadKeysFile,
): KeysSetup {
  const ntp = isFromNtpConf(conf);
  const keyed = conf.sources.filter((s) => s.options.key !== undefined);
  let keys: SymmetricKey[] = [];
  if (conf.keyfile !== null) {
    try {
      keys = load(conf.keyfile, ntp ? 'ntp' : 'chrony');
    } catch (e) {
      if (keyed.length > 0 || !(e instanceof ConfigError) || !/cannot read/.test(e.message)) throw e;
      warn(e.message);
    }
  }
  const byId = new Map(keys.map((k) => [k.id, k]));
  const trusted = ntp ? new Set(conf.trustedkeys) : undefined;
  const clients = new Map<SourceConfig, ClientAuthenticator>();
  for (const src of keyed) {
    const id = src.options.key!;
    const k = byId.get(id);
    const what = `${src.origin}: key ${id} of ${src.host}`;
    if (conf.keyfile === null) throw new ConfigError(`${what}: no key file (${ntp ? 'keys' : 'keyfile'})`);
    if (!k) throw new ConfigError(`${what} is not in ${conf.keyfile}`);
    const bad = keyUsable(k);
    if (bad) throw new ConfigError(`${what}: ${bad} (${k.origin})`);
    if (trusted && !trusted.has(id)) throw new ConfigError(`${what} is not a trustedkey`);
    if (k.length < 10) warn(`${what} is too short (${k.length * 8} bits)`);
    clients.set(src, new SymmetricClientAuth(k));
  }
  for (const k of keys) {
    const bad = keyUsable(k);
    if (bad) warn(`${k.origin}: key ${k.id} not used: ${bad}`);
  }
  const server = keys.length > 0 ? new SymmetricServerAuth(keys, trusted) : null;
  return {
    serverAuth: server && server.keyCount > 0 ? server : null,
    clientAuth: (src) => clients.get(src),
    keyCount: keys.length,
  };
}
