/**
 * NTS in the daemon (I/O): the NTS-KE server and the server's cookie keys, and for every `nts`
 * source its NTS client session plus the driver that runs NTS-KE for it. The protocol work is in
 * src/nts/; this module only reads files, opens sockets, keeps timers and saves state.
 *
 * Server: with ntsservercert/ntsserverkey, the cookie keys come from `ntsdumpdir/ntskeys` (or are
 * made fresh), rotate every `ntsrotate` s of operating time (saved after each rotation; 0 = never,
 * keys managed outside and never written), the NTS-KE server listens on `ntsport` on each
 * bindaddress, and the NtsServerAuthenticator goes into the engine's `server.auth`.
 *
 * Client: a source's NtsClientSession is its `auth`. The driver runs NTS-KE when the session asks
 * (start, NAK, cookies gone) or after `ntsrefresh`, with chrony's back-off on failure (2^(f+n-1)
 * s after the n-th failure in a row, f = 4 for connection failures and 10 for TLS/protocol ones,
 * at most 2^19 s), points the association at the negotiated NTP server/port, and polls at once.
 * Keys and cookies are saved in `ntsdumpdir/ADDRESS.nts` after each NTS-KE and at exit, and loaded
 * at start. A bad state file is a warning and a fresh start, never a failure to start.
 */
import * as fs from 'node:fs';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { randomBytes as nodeRandomBytes } from 'node:crypto';

import type { Clock } from '../clock/clock.js';
import type { Config, SourceConfig as ConfSource } from '../config/chrony-conf.js';
import { checkNtsConfig } from '../config/nts-config.js';
import type { Engine, SourceConfig } from '../engine/engine.js';
import { atomicWriteFileSync } from '../io/atomic-file.js';
import type { ServerAuthenticator } from '../ntp/auth.js';
import { ServerCookieKeys } from '../nts/cookies.js';
import { NtsKeError, runNtsKe } from '../nts/ke-client.js';
import type { KeAeadId } from '../nts/ke-negotiation.js';
import { startNtsKeServer, type NtsKeServer } from '../nts/ke-server.js';
import { NtsClientSession, type NtsKeResult } from '../nts/ntp-client.js';
import { NtsServerAuthenticator } from '../nts/ntp-server.js';
import { RateLimiter } from '../ntp/ratelimit.js';
import { formatClientDump, parseClientDump } from './nts-dump.js';
import type { Runtime, RuntimeLogger } from './runtime.js';

const randomBytes = (n: number): Uint8Array => new Uint8Array(nodeRandomBytes(n));

/** chrony's NKE_RETRY_FACTOR2_CONNECT / _TLS and NKE_MAX_RETRY_INTERVAL2 (log2 s). */
const RETRY_FACTOR_CONNECT = 4;
const RETRY_FACTOR_TLS = 10;
const MAX_RETRY_LOG2 = 19;
/** chrony's NTS-KE client timeout. */
const KE_TIMEOUT_MS = 16000;
const TICK_MS = 1000;
/** Addresses the NTS-KE rate limiter tracks (least recently seen evicted). */
const NTS_RATELIMIT_CLIENTS = 4096;

/** Seconds to wait after the `attempts`-th failure in a row (chrony's update_next_nke_attempt). */
export function keRetryDelay(attempts: number, kind: NtsKeError['kind'] | 'other'): number {
  const factor =
    kind === 'connect' || kind === 'timeout' || kind === 'closed' ? RETRY_FACTOR_CONNECT : RETRY_FACTOR_TLS;
  return 2 ** Math.min(factor + attempts - 1, MAX_RETRY_LOG2);
}

/** The PEM files of a trusted-certificate set (a directory contributes its regular files). */
export function trustedCertFiles(conf: Config['nts'], set: number): string[] {
  const out: string[] = [];
  for (const t of conf.ntstrustedcerts) {
    if (t.set !== set) continue;
    let st: fs.Stats;
    try {
      st = fs.statSync(t.path);
    } catch {
      out.push(t.path); // the NTS-KE attempt reports it unreadable, naming it
      continue;
    }
    if (!st.isDirectory()) {
      out.push(t.path);
      continue;
    }
    for (const n of fs.readdirSync(t.path).sort()) {
      const p = path.join(t.path, n);
      if (!n.startsWith('.') && fs.statSync(p).isFile()) out.push(p);
    }
  }
  return out;
}

function errorKind(e: unknown): NtsKeError['kind'] | 'other' {
  return e instanceof NtsKeError ? e.kind : 'other';
}

/** One `nts` source: its session, where to run NTS-KE, and the retry state. */
class NtsClientDriver {
  sourceId = '';
  private busy = false;
  private attempts = 0;
  private nextAttemptMs = 0;

  constructor(
    readonly session: NtsClientSession,
    /** Name checked against the server's certificate (the configured host). */
    readonly keHost: string,
    /** Address the NTS-KE connection goes to (the resolved address). */
    readonly keAddress: string,
    readonly kePort: number,
    readonly certset: number,
    readonly iburst: boolean,
  ) {}

  dumpFile(dir: string): string {
    return path.join(dir, `${this.keAddress}.nts`);
  }

  /** Installs saved keys and cookies; returns the negotiated NTP endpoint or null. */
  load(dir: string, clock: Clock, log: RuntimeLogger): NtsKeResult | null {
    const file = this.dumpFile(dir);
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') log.warn(`NTS: cannot read ${file}: ${(e as Error).message}`);
      return null;
    }
    try {
      const d = parseClientDump(text, file);
      if (d.keHost !== this.keHost || d.kePort !== this.kePort) return null; // another configuration
      this.session.installKe(d.result, clock.now());
      return d.result;
    } catch (e) {
      log.warn(`NTS: ignoring ${(e as Error).message}; a new NTS-KE will be made`);
      return null;
    }
  }

  save(dir: string, log: RuntimeLogger): void {
    const r = this.currentState();
    if (!r || r.cookies.length === 0) return;
    try {
      atomicWriteFileSync(
        this.dumpFile(dir),
        formatClientDump({ keHost: this.keHost, kePort: this.kePort, result: r }),
        {
          mode: 0o600,
        },
      );
    } catch (e) {
      log.warn(`NTS: cannot save cookies in ${this.dumpFile(dir)}: ${(e as Error).message}`);
    }
  }

  /** The session's keys and unused cookies (never one already sent). */
  private currentState(): NtsKeResult | null {
    return this.session.state();
  }

  /** Starts an NTS-KE if one is due. */
  tick(ctx: NtsContext): void {
    if (this.busy || !this.sourceId) return;
    if (performance.now() < this.nextAttemptMs) return;
    // The session asks for NTS-KE at start, after a NAK, without cookies, and after ntsrefresh.
    if (!this.session.needsKe(ctx.clock.now())) return;
    this.busy = true;
    void this.runKe(ctx).finally(() => {
      this.busy = false;
    });
  }

  private async runKe(ctx: NtsContext): Promise<void> {
    const { conf, clock, log } = ctx;
    const started = performance.now();
    try {
      const res = await runNtsKe({
        host: this.keHost,
        port: this.kePort,
        connectAddress: this.keAddress,
        trustedCerts: trustedCertFiles(conf.nts, this.certset),
        noSystemCert: conf.nts.nosystemcert || this.certset !== 0,
        noCertTimeCheck: conf.nts.nocerttimecheck > ctx.clockUpdates(),
        aeads: conf.nts.ntsaeads as KeAeadId[],
        timeoutMs: KE_TIMEOUT_MS,
      });
      if (ctx.stopped()) return;
      const address = isIP(res.server) ? res.server : await resolveNtp(res.server, this.keAddress);
      const result: NtsKeResult = { ...res, server: address };
      const now = clock.now();
      ctx.engine?.setSourceAddress(this.sourceId, { address, port: result.port });
      this.session.installKe(result, now);
      this.attempts = 0;
      const done = performance.now();
      // Even a successful NTS-KE is not repeated sooner than this (a server NAKing every cookie).
      this.nextAttemptMs = done + keRetryDelay(0, 'connect') * 1000;
      log.info(
        `NTS-KE with ${this.keHost}:${this.kePort}: AEAD ${result.aead}, ${result.cookies.length} cookies, NTP ${address}:${result.port} (${Math.round(done - started)} ms)`,
      );
      if (ctx.dumpDir) this.save(ctx.dumpDir, log);
      // Poll at once rather than at the next (possibly distant) poll.
      ctx.engine?.burst(now, (s) => s.id === this.sourceId, this.iburst ? 4 : 1, this.iburst ? 8 : 2);
      ctx.runtime?.flush();
    } catch (e) {
      if (ctx.stopped()) return;
      this.session.keFailed(clock.now());
      this.attempts++;
      const delay = keRetryDelay(this.attempts, errorKind(e));
      this.nextAttemptMs = performance.now() + delay * 1000;
      log.warn(`${(e as Error).message} (attempt ${this.attempts}, next in ${delay} s)`);
    }
  }
}

async function resolveNtp(name: string, keAddress: string): Promise<string> {
  const family = isIP(keAddress) === 6 ? 6 : 4;
  try {
    return (await lookup(name, { family })).address;
  } catch {
    return (await lookup(name)).address;
  }
}

interface NtsContext {
  conf: Config;
  clock: Clock;
  log: RuntimeLogger;
  engine: Engine | null;
  runtime: Runtime | null;
  dumpDir: string | null;
  clockUpdates: () => number;
  stopped: () => boolean;
}

export class NtsSetupError extends Error {
  override name = 'NtsSetupError';
}

/**
 * The daemon's NTS state. `prepareNts` before the engine is built (it needs `serverAuth` and the
 * sources' `auth`), `startServer` while sockets are opened, `start` once the engine exists,
 * `onClockUpdate` on every clock update, `stop` at exit.
 */
export class NtsDaemon {
  /** Give to the engine's `server.auth`. */
  readonly serverAuth: ServerAuthenticator[] = [];
  private keys: ServerCookieKeys | null = null;
  private readonly keServers: NtsKeServer[] = [];
  private readonly drivers: NtsClientDriver[] = [];
  private timer: NodeJS.Timeout | null = null;
  private lastRotateMs = performance.now();
  private updates = 0;
  private isStopped = false;
  private ctx: NtsContext;

  constructor(
    private readonly conf: Config,
    private readonly clock: Clock,
    private readonly log: RuntimeLogger,
  ) {
    this.ctx = {
      conf,
      clock,
      log,
      engine: null,
      runtime: null,
      dumpDir: conf.nts.ntsdumpdir,
      clockUpdates: () => this.updates,
      stopped: () => this.isStopped,
    };
  }

  get serverEnabled(): boolean {
    return this.keys !== null;
  }

  /** Told of the new server keys (ServerCookieKeys.dump()) after every rotation (server workers). */
  onKeysRotated: ((dump: string) => void) | null = null;

  /** The server's cookie master keys as text, null without an NTS server. */
  keysDump(): string | null {
    return this.keys?.dump() ?? null;
  }

  private keysFile(): string | null {
    return this.conf.nts.ntsdumpdir ? path.join(this.conf.nts.ntsdumpdir, 'ntskeys') : null;
  }

  private ensureDumpDir(): void {
    const dir = this.conf.nts.ntsdumpdir;
    if (!dir) return;
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o750 });
    } catch (e) {
      this.log.warn(`NTS: cannot create ntsdumpdir ${dir}: ${(e as Error).message}`);
    }
  }

  /** Server keys and authenticator (only with ntsservercert/ntsserverkey). Throws NtsSetupError. */
  prepareServer(): void {
    const n = this.conf.nts;
    if (n.ntsservercert.length === 0 && n.ntsserverkey.length === 0) return;
    const pairing = checkNtsConfig(n);
    if (pairing) throw new NtsSetupError(pairing);
    this.ensureDumpDir();
    const file = this.keysFile();
    let keys: ServerCookieKeys | null = null;
    if (file) {
      try {
        keys = ServerCookieKeys.load(fs.readFileSync(file, 'utf8'), file, randomBytes);
        this.log.info(`NTS: loaded server keys ${keys.keyIds().join(' ')} from ${file}`);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
          this.log.warn(`NTS: ignoring ${file}: ${(e as Error).message}; using new keys`);
        }
      }
    }
    if (!keys) {
      if (n.ntsrotate === 0 && file) this.log.warn(`NTS: ntsrotate 0 but no usable ${file}: using a key of our own`);
      keys = new ServerCookieKeys(randomBytes);
      this.saveKeys(keys);
    }
    this.keys = keys;
    this.serverAuth.push(new NtsServerAuthenticator(keys, randomBytes));
  }

  private saveKeys(keys: ServerCookieKeys): void {
    const file = this.keysFile();
    // ntsrotate 0: the keys are managed outside and our file is never written (as chronyd).
    if (!file || this.conf.nts.ntsrotate === 0) return;
    try {
      atomicWriteFileSync(file, keys.dump(), { mode: 0o600 });
    } catch (e) {
      this.log.warn(`NTS: cannot save server keys in ${file}: ${(e as Error).message}`);
    }
  }

  /** Opens the NTS-KE server on each bind address. Throws NtsSetupError. */
  async startServer(bindaddress: string[], family: 4 | 6 | null): Promise<void> {
    const keys = this.keys;
    if (!keys) return;
    const n = this.conf.nts;
    const addrs = bindaddress.length ? bindaddress : [family === 4 ? '0.0.0.0' : '::'];
    // ntsratelimit: chrony's token bucket per client address, before the TLS handshake.
    const rl = n.ntsratelimit;
    const limiter = rl ? new RateLimiter({ ...rl, kod: 0, maxClients: NTS_RATELIMIT_CLIENTS }) : null;
    const acceptConnection = limiter
      ? (a: string) => limiter.check(a, this.clock.now(), Math.random) === 'answer'
      : undefined;
    for (const address of addrs) {
      const opts = {
        certFiles: n.ntsservercert,
        keyFiles: n.ntsserverkey,
        address,
        port: n.ntsport,
        aeads: n.ntsaeads as KeAeadId[],
        ntpServer: n.ntsntpserver,
        // chronyd names the port only when it is not 123.
        ntpPort: this.conf.port !== 123 && this.conf.port !== 0 ? this.conf.port : null,
        maxConnections: n.maxntsconnections,
        ...(acceptConnection ? { acceptConnection } : {}),
        makeCookie: (c: Parameters<ServerCookieKeys['seal']>[0]) => keys.seal(c),
        log: (level: 'info' | 'warn' | 'debug', m: string) => this.log[level](m),
      };
      try {
        this.keServers.push(await startNtsKeServer(opts));
        this.log.info(`NTS-KE server on ${address.includes(':') ? `[${address}]` : address}:${n.ntsport}`);
      } catch (e) {
        // A dual-stack wildcard may be unavailable without IPv6: fall back to IPv4.
        if (address === '::' && bindaddress.length === 0 && family === null) {
          try {
            this.keServers.push(await startNtsKeServer({ ...opts, address: '0.0.0.0' }));
            this.log.info(`NTS-KE server on 0.0.0.0:${n.ntsport}`);
            continue;
          } catch {
            // report the first error
          }
        }
        throw new NtsSetupError(`cannot start the NTS-KE server on ${address}:${n.ntsport}: ${(e as Error).message}`);
      }
    }
  }

  /**
   * For resolveSources: the `auth` of a source taken from `src` at `address` (an NTS client
   * session for `nts` sources, nothing otherwise).
   */
  sourceAuth(src: ConfSource, address: string): Partial<SourceConfig> {
    if (!src.options.nts) return {};
    const session = new NtsClientSession(randomBytes, { refreshInterval: this.conf.nts.ntsrefresh });
    this.drivers.push(
      new NtsClientDriver(session, src.host, address, src.options.ntsport, src.options.certset, src.options.iburst),
    );
    return { auth: session };
  }

  /** Links the sessions to the engine's sources, loads saved cookies, starts the timers. */
  start(engine: Engine, runtime: Runtime, sources: readonly SourceConfig[]): void {
    this.ctx.engine = engine;
    this.ctx.runtime = runtime;
    const dir = this.conf.nts.ntsdumpdir;
    if (dir && this.drivers.length > 0) this.ensureDumpDir();
    for (const d of this.drivers) {
      const src = sources.find((s) => s.auth === d.session);
      if (!src) continue;
      d.sourceId = src.id;
      const saved = dir ? d.load(dir, this.clock, this.log) : null;
      if (saved) {
        engine.setSourceAddress(src.id, { address: saved.server, port: saved.port });
        this.log.info(`NTS: ${saved.cookies.length} cookies for ${d.keHost} loaded from ${d.dumpFile(dir!)}`);
      }
    }
    this.lastRotateMs = performance.now();
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.tick();
  }

  onClockUpdate(): void {
    this.updates++;
  }

  private tick(): void {
    if (this.isStopped) return;
    const rotate = this.conf.nts.ntsrotate;
    if (this.keys && rotate > 0 && performance.now() - this.lastRotateMs >= rotate * 1000) {
      this.keys.rotate();
      this.lastRotateMs = performance.now();
      this.saveKeys(this.keys);
      this.log.info(`NTS: server keys rotated (now ${this.keys.keyIds().join(' ')})`);
      this.onKeysRotated?.(this.keys.dump());
    }
    for (const d of this.drivers) d.tick(this.ctx);
  }

  /** Closes the NTS-KE servers and saves the cookies of every source. */
  async stop(): Promise<void> {
    this.isStopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await Promise.all(this.keServers.map((s) => s.close().catch(() => undefined)));
    const dir = this.conf.nts.ntsdumpdir;
    if (dir) for (const d of this.drivers) d.save(dir, this.log);
  }

  /** NTS-KE server counters (for diagnostics). */
  keServerStats(): ReturnType<NtsKeServer['stats']>[] {
    return this.keServers.map((s) => s.stats());
  }
}
