/**
 * Who the NTP server answers and how, from the configuration: allow/deny (or ntp.conf restrict),
 * ratelimit, the client log size, symmetric keys and NTS. The main thread builds its Engine's
 * server from this, and every server worker (server-worker.ts) builds its NtpServer from the same
 * function, so both serve by identical rules.
 *
 * Everything a worker needs that main read from files (keys, resolved source addresses) crosses
 * the thread boundary as plain data (`ServerPolicyData`): a worker never reads a file, so it can
 * be restarted after privileges were dropped.
 */
import type { Config } from '../config/chrony-conf.js';
import { clientLogEntries, serverTuning } from '../config/engine-options.js';
import { loadKeysFile, SymmetricKey, type KeyAlgorithm } from '../config/keys-file.js';
import { buildRestrictTable, isFromNtpConf } from '../config/ntp-conf.js';
import type { ServerConfig } from '../engine/engine.js';
import { AccessTable } from '../ntp/access.js';
import type { ServerAuthenticator } from '../ntp/auth.js';
import { isLoopbackAddress } from '../ntp/mode6.js';
import type { NtpPacket } from '../ntp/packet.js';
import type { RestrictTable } from '../ntp/restrict.js';
import { SymmetricServerAuth } from '../ntp/symmetric-auth.js';
import { ServerCookieKeys } from '../nts/cookies.js';
import { NtsServerAuthenticator } from '../nts/ntp-server.js';
import type { Endpoint } from '../engine/types.js';
import type { Instant } from '../time/ntp-time.js';

/** allow/deny rules as a table; throws on a bad subnet (the message names it). */
export function buildAccessTable(conf: Config): AccessTable {
  const access = new AccessTable();
  for (const r of conf.access) access.add(r.allow, r.subnet, r.all);
  return access;
}

/** ntp.conf restrict rules (null for chrony.conf, where allow/deny decide). */
export function restrictTableOf(conf: Config, sourceAddresses: readonly string[]): RestrictTable | null {
  return isFromNtpConf(conf) ? buildRestrictTable(conf, sourceAddresses) : null;
}

export type ServerPolicy = Pick<
  ServerConfig,
  'access' | 'accessWordsAt' | 'clientLogLimit' | 'noclientlog' | 'ratelimit' | 'restrictLimit' | 'auth'
>;

/**
 * The server's rules. `shareOf` > 1 gives one worker's part of the client log: the entries
 * of `clientloglimit` divided among the workers (steering keeps each address on one worker).
 */
export function serverPolicy(
  conf: Config,
  access: AccessTable,
  restrict: RestrictTable | null,
  auth: readonly ServerAuthenticator[],
  shareOf = 1,
): ServerPolicy {
  const t = serverTuning(conf);
  return {
    access: (a: string) => (restrict ? restrict.serveAllowed(a) : access.allowed(a)),
    // The batched path checks addresses as words (no string per packet); restrict has only strings.
    ...(restrict
      ? {}
      : {
          accessWordsAt: (f: 4 | 6, words: Int32Array, offset: number) => access.allowedAt(f, words, offset),
        }),
    ...t,
    clientLogLimit: workerClientLogLimit(conf, shareOf),
    ...(restrict ? { restrictLimit: (a: string) => restrict.decide(a) } : {}),
    ...(auth.length ? { auth } : {}),
  };
}

/** Client log entries of one of `workers` server threads (at least 1). */
export function workerClientLogLimit(conf: Config, workers: number): number {
  const all = clientLogEntries(conf.clientloglimit);
  return workers > 1 ? Math.max(1, Math.floor(all / workers)) : all;
}

/** NTP mode 6 (ntpq): restrict noquery decides; chrony.conf has no such rule, so loopback only. */
export function mode6QueryAllowed(restrict: RestrictTable | null): (address: string) => boolean {
  return (a: string) => (restrict ? restrict.queryAllowed(a) : isLoopbackAddress(a));
}

// ---- data a worker gets from main ----------------------------------------------------------------

/** A symmetric key as plain data (SymmetricKey keeps its bytes private, so it does not clone). */
export interface KeyData {
  id: number;
  algorithm: KeyAlgorithm;
  material: Uint8Array;
  origin: string;
}

export interface ServerPolicyData {
  /** Resolved source addresses (ntp.conf restrict `source` templates apply to them). */
  sourceAddresses: string[];
  /** Keys of the key file (empty without one). */
  keys: KeyData[];
  /** NTS cookie master keys (ServerCookieKeys.dump()), null without an NTS server. */
  ntsKeys: string | null;
}

/** The key file's keys as data for a worker; a file that cannot be read gives none (main warned). */
export function loadKeyData(conf: Config): KeyData[] {
  if (conf.keyfile === null) return [];
  try {
    return loadKeysFile(conf.keyfile, isFromNtpConf(conf) ? 'ntp' : 'chrony').map((k) => ({
      id: k.id,
      algorithm: k.algorithm,
      material: k.material(),
      origin: k.origin,
    }));
  } catch {
    return [];
  }
}

/**
 * The NTS authenticator of a worker: the same cookie master keys as main's, replaced on every
 * rotation (`setKeys`) without touching the NtpServer that holds it.
 */
export class RekeyableNtsAuth implements ServerAuthenticator {
  private inner: NtsServerAuthenticator;

  constructor(
    dump: string,
    private readonly randomBytes: (n: number) => Uint8Array,
  ) {
    this.inner = this.make(dump);
  }

  private make(dump: string): NtsServerAuthenticator {
    return new NtsServerAuthenticator(ServerCookieKeys.load(dump, 'main thread', this.randomBytes), this.randomBytes);
  }

  /** Installs main's keys (after a rotation). Throws on a malformed dump, keeping the old keys. */
  setKeys(dump: string): void {
    this.inner = this.make(dump);
  }

  handles(packet: NtpPacket): boolean {
    return this.inner.handles(packet);
  }

  /** The current keys' authenticator, for BatchServer's NTS slot path. */
  slotNts(): NtsServerAuthenticator {
    return this.inner;
  }

  verifyRequest(
    data: Uint8Array,
    packet: NtpPacket,
    from: Endpoint,
    now: Instant,
  ): ReturnType<ServerAuthenticator['verifyRequest']> {
    return this.inner.verifyRequest(data, packet, from, now);
  }
}

/** A worker's authenticators, in main's order: symmetric keys first, then NTS. */
export function workerAuthenticators(
  conf: Config,
  data: ServerPolicyData,
  randomBytes: (n: number) => Uint8Array,
): { auth: ServerAuthenticator[]; nts: RekeyableNtsAuth | null } {
  const auth: ServerAuthenticator[] = [];
  if (data.keys.length) {
    const trusted = isFromNtpConf(conf) ? new Set(conf.trustedkeys) : undefined;
    const keys = data.keys.map((k) => new SymmetricKey(k.id, k.algorithm, k.material, k.origin));
    const sym = new SymmetricServerAuth(keys, trusted);
    if (sym.keyCount > 0) auth.push(sym);
  }
  const nts = data.ntsKeys !== null ? new RekeyableNtsAuth(data.ntsKeys, randomBytes) : null;
  if (nts) auth.push(nts);
  return { auth, nts };
}
