/**
 * NTS-KE server (I/O): TLS 1.3 on TCP (default port 4460), ALPN `ntske/1` required, one request
 * and one answer per connection, then close. The protocol logic is `ke-negotiation.ts`.
 *
 * Limits against exhaustion: at most `maxConnections` connections at once (chrony's
 * `maxntsconnections`, default 100; extra connections are closed at once), and one deadline from
 * accept to the answer covering the TCP connection, the handshake and the request (chrony's
 * SERVER_TIMEOUT: 2 s), which trickling bytes cannot extend (slowloris). Requests are decoded
 * with the bounded `KeMessageDecoder` (16 KiB, 64 records).
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { TLSSocket, createSecureContext, type SecureContext } from 'node:tls';
import { KE_ERROR, KeMessageDecoder, encodeKeMessage, type KeLimits } from './ke-records.js';
import {
  DEFAULT_KE_AEADS,
  NTS_EXPORTER_LABEL,
  NTS_KE_ALPN,
  NTS_KE_PORT,
  answerKeRequest,
  keErrorAnswer,
  type KeAeadId,
  type KeCookieContents,
  type KeServerAnswer,
} from './ke-negotiation.js';

export interface NtsKeServerOptions {
  /** PEM certificate chain files and their keys, paired by index (chrony ntsservercert/ntsserverkey). */
  certFiles: string[];
  keyFiles: string[];
  /** Listening address (default '::', dual stack) and port (default 4460; 0: any free port). */
  address?: string;
  port?: number;
  aeads?: readonly KeAeadId[];
  ntpServer?: string | null;
  ntpPort?: number | null;
  maxConnections?: number;
  /** Deadline from accept to the complete request, in ms (default 2000). */
  requestTimeoutMs?: number;
  limits?: Partial<KeLimits>;
  makeCookie: (c: KeCookieContents) => Uint8Array;
  /** Admission before the TLS handshake (chrony `ntsratelimit`); false closes the connection. */
  acceptConnection?: (address: string) => boolean;
  log?: (level: 'info' | 'warn' | 'debug', message: string) => void;
}

export type NtsKeErrorKind = 'tls' | 'alpn' | 'timeout' | 'decode' | 'bad-request' | 'internal' | 'socket';

export interface NtsKeServerStats {
  accepted: number;
  /** Answers with cookies sent. */
  completed: number;
  /** Answers that were an Error record or an empty Next Protocol / AEAD record. */
  refusedRequests: number;
  /** Connections closed on arrival because `maxConnections` were open. */
  refusedLimit: number;
  /** Connections closed on arrival by `acceptConnection` (ntsratelimit). */
  refusedRate: number;
  active: number;
  errors: Record<NtsKeErrorKind, number>;
}

export interface NtsKeServer {
  port: number;
  stats(): NtsKeServerStats;
  close(): Promise<void>;
}

function peerLabel(sock: Socket): string {
  const a = sock.remoteAddress ?? '?';
  return a.includes(':') ? `[${a}]:${sock.remotePort}` : `${a}:${sock.remotePort}`;
}

function loadContext(opts: NtsKeServerOptions): SecureContext {
  if (opts.certFiles.length === 0 || opts.certFiles.length !== opts.keyFiles.length) {
    throw new Error('NTS-KE server needs as many ntsservercert as ntsserverkey files (at least one)');
  }
  const read = (f: string): Buffer => {
    try {
      return readFileSync(f);
    } catch (e) {
      throw new Error(`cannot read ${f}: ${(e as Error).message}`);
    }
  };
  return createSecureContext({
    cert: opts.certFiles.map(read),
    key: opts.keyFiles.map(read),
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
  });
}

export async function startNtsKeServer(opts: NtsKeServerOptions): Promise<NtsKeServer> {
  const secureContext = loadContext(opts);
  const maxConnections = opts.maxConnections ?? 100;
  const timeoutMs = opts.requestTimeoutMs ?? 2000;
  const policy = {
    aeads: opts.aeads ?? DEFAULT_KE_AEADS,
    ntpServer: opts.ntpServer ?? null,
    ntpPort: opts.ntpPort ?? null,
    makeCookie: opts.makeCookie,
  };
  const log = opts.log ?? (() => undefined);
  const stats: NtsKeServerStats = {
    accepted: 0,
    completed: 0,
    refusedRequests: 0,
    refusedLimit: 0,
    refusedRate: 0,
    active: 0,
    errors: { tls: 0, alpn: 0, timeout: 0, decode: 0, 'bad-request': 0, internal: 0, socket: 0 },
  };
  const open = new Set<Socket>();

  const handle = (raw: Socket): void => {
    const peer = peerLabel(raw);
    if (open.size >= maxConnections) {
      stats.refusedLimit++;
      log('debug', `NTS-KE: refused ${peer}: ${maxConnections} connections open`);
      raw.destroy();
      return;
    }
    if (opts.acceptConnection && !opts.acceptConnection(raw.remoteAddress ?? '')) {
      stats.refusedRate++;
      log('debug', `NTS-KE: refused ${peer}: rate limit`);
      raw.destroy();
      return;
    }
    stats.accepted++;
    open.add(raw);
    stats.active = open.size;
    let done = false;
    const finish = (kind: NtsKeErrorKind | null, why?: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (kind) {
        stats.errors[kind]++;
        log(kind === 'internal' ? 'warn' : 'debug', `NTS-KE: ${peer}: ${why}`);
      }
    };
    raw.on('close', () => {
      finish('socket', 'connection closed before an answer');
      open.delete(raw);
      stats.active = open.size;
    });
    raw.on('error', () => undefined); // reported through the TLS socket or 'close'

    const tls = new TLSSocket(raw, {
      isServer: true,
      secureContext,
      ALPNProtocols: [NTS_KE_ALPN],
      requestCert: false,
    });
    const timer = setTimeout(() => {
      finish('timeout', `no complete request within ${timeoutMs} ms`);
      tls.destroy();
      raw.destroy();
    }, timeoutMs);

    let secured = false;
    tls.on('error', (e: Error) => {
      finish(secured ? 'socket' : 'tls', `TLS: ${e.message}`);
      raw.destroy();
    });
    const decoder = new KeMessageDecoder(opts.limits);
    const answer = (a: KeServerAnswer): void => {
      tls.end(Buffer.from(encodeKeMessage(a.records)));
      // Do not wait for the peer's close_notify past a short grace.
      setTimeout(() => raw.destroy(), 1000).unref();
    };
    tls.on('secure', () => {
      secured = true;
      if (tls.alpnProtocol !== NTS_KE_ALPN) {
        finish('alpn', `client did not negotiate ALPN ${NTS_KE_ALPN}`);
        tls.destroy();
        return;
      }
    });
    tls.on('data', (chunk: Buffer) => {
      if (done) return;
      if (tls.alpnProtocol !== NTS_KE_ALPN) return;
      const st = decoder.push(chunk);
      if (st.kind === 'need-more') return;
      if (st.kind === 'error') {
        finish('decode', `bad request at offset ${st.error.offset}: ${st.error.message}`);
        answer(keErrorAnswer(KE_ERROR.badRequest, st.error.message));
        return;
      }
      let a: KeServerAnswer;
      try {
        a = answerKeRequest(st.records, policy, (context, length) =>
          tls.exportKeyingMaterial(length, NTS_EXPORTER_LABEL, Buffer.from(context)),
        );
      } catch (e) {
        finish('internal', `cannot answer: ${(e as Error).message}`);
        answer(keErrorAnswer(KE_ERROR.internalServerError, (e as Error).message));
        return;
      }
      if (a.outcome.kind === 'ok') {
        finish(null);
        stats.completed++;
        log('debug', `NTS-KE: ${peer}: AEAD ${a.outcome.aead}, ${a.outcome.cookies} cookies`);
      } else {
        stats.refusedRequests++;
        if (a.outcome.kind === 'error') finish('bad-request', `refused request: ${a.outcome.reason}`);
        else finish(null);
      }
      answer(a);
    });
    tls.on('end', () => {
      if (done) return;
      const st = decoder.finish();
      if (st.kind === 'error') finish('decode', `request at offset ${st.error.offset}: ${st.error.message}`);
    });
  };

  const server: Server = createServer({ noDelay: true }, handle);
  server.on('error', (e) => log('warn', `NTS-KE server: ${e.message}`));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: opts.address ?? '::', port: opts.port ?? NTS_KE_PORT }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : (opts.port ?? NTS_KE_PORT);
  log('info', `NTS-KE server listening on port ${port}`);
  return {
    port,
    stats: () => ({ ...stats, active: open.size, errors: { ...stats.errors } }),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}
