/**
 * NTS-KE client (I/O): one TLS 1.3 connection with ALPN `ntske/1`, our request, the server's
 * answer, keys from the RFC 5705 exporter. Errors name host:port and the cause.
 *
 * Trust: the system CAs unless `noSystemCert`, plus `trustedCerts` PEM files (chrony's
 * `nosystemcert`, `ntstrustedcerts`). `noCertTimeCheck` (chrony's `nocerttimecheck`, for a clock
 * too wrong to validate certificates) ignores only the validity dates: OpenSSL reports one error
 * per chain, so when it reports a date error we check the chain ourselves (signatures up to a
 * trust anchor, CA flags) without dates, and the host name.
 */
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { checkServerIdentity, connect, rootCertificates, type PeerCertificate, type TLSSocket } from 'node:tls';
import { KeMessageDecoder, encodeKeMessage, type KeLimits } from './ke-records.js';
import {
  DEFAULT_KE_AEADS,
  NTS_EXPORTER_LABEL,
  NTS_KE_ALPN,
  NTS_KE_PORT,
  buildKeRequest,
  completeKe,
  parseKeAnswer,
  type KeAeadId,
  type KeClientResult,
} from './ke-negotiation.js';

export interface NtsKeClientOptions {
  host: string;
  port?: number;
  /** PEM files of additional trusted certificates (CAs or self-signed servers). */
  trustedCerts?: string[];
  noSystemCert?: boolean;
  noCertTimeCheck?: boolean;
  aeads?: readonly KeAeadId[];
  /** Whole exchange: connect, handshake, request, answer (default 16 s, chrony's CLIENT_TIMEOUT). */
  timeoutMs?: number;
  limits?: Partial<KeLimits>;
  /** Where to connect if not `host` (e.g. a resolved address); `host` stays the SNI and identity. */
  connectAddress?: string;
}

export class NtsKeError extends Error {
  constructor(
    readonly endpoint: string,
    readonly kind: 'connect' | 'tls' | 'certificate' | 'alpn' | 'timeout' | 'protocol' | 'closed',
    message: string,
  ) {
    super(`NTS-KE with ${endpoint}: ${message}`);
    this.name = 'NtsKeError';
  }
}

const DATE_ERRORS = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);

function readPems(files: readonly string[]): string[] {
  return files.map((f) => {
    try {
      return readFileSync(f, 'utf8');
    } catch (e) {
      throw new Error(`cannot read trusted certificates ${f}: ${(e as Error).message}`);
    }
  });
}

/** Every certificate of a PEM bundle. */
function splitPem(pem: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((b) => new X509Certificate(b));
}

/**
 * Chain check without validity dates: from the leaf, each certificate must be signed by a CA
 * certificate that is either a trust anchor or one the server presented. Returns null when
 * trusted, else why not.
 */
export function verifyChainIgnoringDates(
  chain: readonly X509Certificate[],
  anchors: readonly X509Certificate[],
): string | null {
  const leaf = chain[0];
  if (!leaf) return 'no certificate';
  const isAnchor = (c: X509Certificate): boolean => anchors.some((a) => a.fingerprint256 === c.fingerprint256);
  const signedBy = (c: X509Certificate, issuer: X509Certificate): boolean => {
    try {
      return c.checkIssued(issuer) && c.verify(issuer.publicKey);
    } catch {
      return false;
    }
  };
  let cur = leaf;
  for (let depth = 0; depth < 10; depth++) {
    if (isAnchor(cur)) return null;
    if (anchors.some((a) => a.ca && signedBy(cur, a))) return null;
    const next = chain.find((c) => c !== cur && c.ca && signedBy(cur, c));
    if (!next) return 'certificate chain does not lead to a trusted certificate';
    cur = next;
  }
  return 'certificate chain too long';
}

function peerChain(sock: TLSSocket): X509Certificate[] {
  const out: X509Certificate[] = [];
  let c: PeerCertificate | undefined = sock.getPeerCertificate(true);
  const seen = new Set<string>();
  while (c && c.raw && !seen.has(c.fingerprint256)) {
    seen.add(c.fingerprint256);
    out.push(new X509Certificate(c.raw));
    c = (c as PeerCertificate & { issuerCertificate?: PeerCertificate }).issuerCertificate;
  }
  return out;
}

export function runNtsKe(opts: NtsKeClientOptions): Promise<KeClientResult> {
  const port = opts.port ?? NTS_KE_PORT;
  const endpoint = isIP(opts.host) === 6 ? `[${opts.host}]:${port}` : `${opts.host}:${port}`;
  const aeads = opts.aeads ?? DEFAULT_KE_AEADS;
  const timeoutMs = opts.timeoutMs ?? 16_000;
  let extra: string[];
  try {
    extra = readPems(opts.trustedCerts ?? []);
  } catch (e) {
    return Promise.reject(new NtsKeError(endpoint, 'certificate', (e as Error).message));
  }
  // undefined: Node's default (system) store; otherwise the explicit list.
  const ca = opts.noSystemCert ? extra : extra.length > 0 ? [...rootCertificates, ...extra] : undefined;

  return new Promise<KeClientResult>((resolve, reject) => {
    let settled = false;
    const sock = connect({
      host: opts.connectAddress ?? opts.host,
      port,
      servername: isIP(opts.host) ? undefined : opts.host,
      ALPNProtocols: [NTS_KE_ALPN],
      minVersion: 'TLSv1.3',
      ca,
      // We decide after the handshake (see verifyPeer) so that nocerttimecheck can ignore dates.
      rejectUnauthorized: false,
    });
    const fail = (kind: NtsKeError['kind'], msg: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      reject(new NtsKeError(endpoint, kind, msg));
    };
    const timer = setTimeout(() => fail('timeout', `no answer within ${timeoutMs} ms`), timeoutMs);

    const verifyPeer = (): string | null => {
      if (sock.authorized) return null;
      const err = String(sock.authorizationError ?? 'unknown certificate error');
      if (!opts.noCertTimeCheck || !DATE_ERRORS.has(err)) return `certificate not trusted: ${err}`;
      const anchors = [...(opts.noSystemCert ? [] : rootCertificates.flatMap(splitPem)), ...extra.flatMap(splitPem)];
      const chainErr = verifyChainIgnoringDates(peerChain(sock), anchors);
      if (chainErr) return `certificate not trusted: ${chainErr} (validity dates ignored)`;
      const idErr = checkServerIdentity(opts.host, sock.getPeerCertificate());
      return idErr ? `certificate not trusted: ${idErr.message}` : null;
    };

    sock.on('secureConnect', () => {
      const certErr = verifyPeer();
      if (certErr) return fail('certificate', certErr);
      if (sock.alpnProtocol !== NTS_KE_ALPN) return fail('alpn', `server did not negotiate ALPN ${NTS_KE_ALPN}`);
      sock.write(Buffer.from(encodeKeMessage(buildKeRequest(aeads))));
    });
    const decoder = new KeMessageDecoder(opts.limits);
    const conclude = (st: ReturnType<KeMessageDecoder['push']>): void => {
      if (st.kind === 'need-more') return;
      if (st.kind === 'error') return fail('protocol', `bad answer at offset ${st.error.offset}: ${st.error.message}`);
      const parsed = parseKeAnswer(st.records, aeads);
      if (!parsed.ok) return fail('protocol', parsed.error);
      let result: KeClientResult;
      try {
        result = completeKe(parsed.answer, opts.host, (context, length) =>
          sock.exportKeyingMaterial(length, NTS_EXPORTER_LABEL, Buffer.from(context)),
        );
      } catch (e) {
        return fail('tls', `key export failed: ${(e as Error).message}`);
      }
      settled = true;
      clearTimeout(timer);
      sock.end();
      resolve(result);
    };
    sock.on('data', (chunk: Buffer) => {
      if (!settled) conclude(decoder.push(chunk));
    });
    sock.on('end', () => {
      if (!settled) conclude(decoder.finish());
    });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      const connectCodes = ['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT'];
      fail(e.code && connectCodes.includes(e.code) ? 'connect' : 'tls', e.message);
    });
    sock.on('close', () => fail('closed', 'connection closed before a complete answer'));
  });
}
