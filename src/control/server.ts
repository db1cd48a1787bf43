/**
 * rubidiumd's control server: a Unix stream socket (newline-delimited JSON) and/or a UDP socket
 * on localhost (one JSON datagram per request and response). Every request goes through one
 * handler; nothing a client sends can crash the daemon: malformed or oversized requests get an
 * error reply, non-loopback UDP sources and requests beyond the rate limit are dropped.
 */
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import {
  type ControlRequest,
  type ControlResponse,
  MAX_REQUEST_BYTES,
  RateLimiter,
  encodeResponse,
  errorResponse,
  isLoopbackAddress,
  parseRequest,
  unknownCommand,
} from './protocol.js';

/** Returns the response, or undefined if the command is unknown. */
export type ControlHandler = (
  req: ControlRequest,
) => Promise<ControlResponse | undefined> | ControlResponse | undefined;

export interface ControlServerOptions {
  /** Path of the Unix socket (its directory is created 0750 if missing; the socket is 0660). */
  unixPath?: string;
  /** UDP command socket; port 0 picks a free port (see `udpPort`). */
  udp?: { address: string; port: number };
  handler: ControlHandler;
  /** Requests per second accepted (token bucket, shared by both transports). Default 100/s, burst 200. */
  rateLimit?: { rate: number; burst: number };
  /** Called with internal errors (never thrown). */
  onError?: (err: Error) => void;
  /** Sees every UDP datagram first (chrony cmdmon packets); returns true if it took it. */
  rawUdp?: (msg: Buffer, address: string, reply: (out: Uint8Array) => void) => boolean;
}

export interface ControlServerStats {
  received: number;
  dropped: number;
}

export interface ControlServer {
  close(): Promise<void>;
  readonly unixPath: string | undefined;
  /** Bound UDP port, if UDP is enabled. */
  readonly udpPort: number | undefined;
  readonly stats: ControlServerStats;
}

const MAX_CONNECTIONS = 64;
const IDLE_TIMEOUT_MS = 10_000;

/** Whether a UDP command datagram from this source is accepted (only loopback). */
export function acceptUdpSource(address: string): boolean {
  return isLoopbackAddress(address);
}

/** Builds a handler from a table of commands; commands not in the table are unknown. */
export function commandTable(
  table: Record<string, (args: string[]) => Promise<ControlResponse> | ControlResponse>,
): ControlHandler {
  return (req) => (Object.hasOwn(table, req.cmd) ? table[req.cmd]!(req.args) : undefined);
}

async function runHandler(handler: ControlHandler, req: ControlRequest): Promise<ControlResponse> {
  try {
    const r = await handler(req);
    if (r === undefined) return unknownCommand(req.cmd);
    if (typeof r !== 'object' || r === null || (r.ok !== true && r.ok !== false)) {
      return errorResponse('internal error: bad handler response');
    }
    return r;
  } catch (e) {
    return errorResponse(e instanceof Error ? e.message : String(e));
  }
}

/** Removes a stale socket file; refuses if something is still listening or it is not a socket. */
async function prepareSocketPath(p: string): Promise<void> {
  const dir = path.dirname(p);
  if (!fs.existsSync(dir)) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o750 });
    fs.chmodSync(dir, 0o750);
  }
  let st: fs.Stats;
  try {
    st = fs.lstatSync(p);
  } catch {
    return; // does not exist
  }
  if (!st.isSocket()) throw new Error(`${p} exists and is not a socket`);
  const live = await new Promise<boolean>((resolve) => {
    const c = net.createConnection(p);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
  if (live) throw new Error(`${p} is in use by another process`);
  fs.unlinkSync(p);
}

export async function startControlServer(opts: ControlServerOptions): Promise<ControlServer> {
  const limiter = new RateLimiter(opts.rateLimit?.rate ?? 100, opts.rateLimit?.burst ?? 200);
  const stats: ControlServerStats = { received: 0, dropped: 0 };
  const onError = opts.onError ?? (() => {});
  let unixServer: net.Server | undefined;
  let udp: dgram.Socket | undefined;
  const conns = new Set<net.Socket>();

  const handleLine = async (line: string): Promise<string> => {
    stats.received++;
    if (!limiter.take()) {
      stats.dropped++;
      return encodeResponse(errorResponse('rate limit exceeded'));
    }
    const parsed = parseRequest(line);
    if (!parsed.ok) return encodeResponse(errorResponse(parsed.error));
    return encodeResponse(await runHandler(opts.handler, parsed.request));
  };

  try {
    if (opts.unixPath !== undefined) {
      const p = opts.unixPath;
      await prepareSocketPath(p);
      unixServer = net.createServer((sock) => {
        if (conns.size >= MAX_CONNECTIONS) {
          stats.dropped++;
          sock.destroy();
          return;
        }
        conns.add(sock);
        sock.setTimeout(IDLE_TIMEOUT_MS, () => sock.destroy());
        sock.on('close', () => conns.delete(sock));
        sock.on('error', () => sock.destroy());
        let buf = Buffer.alloc(0);
        let chain = Promise.resolve();
        let closed = false;
        sock.on('data', (chunk: Buffer) => {
          if (closed) return;
          buf = Buffer.concat([buf, chunk]);
          let nl: number;
          while ((nl = buf.indexOf(0x0a)) >= 0) {
            const line = buf.subarray(0, nl).toString('utf8');
            buf = buf.subarray(nl + 1);
            if (line.trim() === '') continue;
            chain = chain.then(async () => {
              const out = await handleLine(line);
              if (!sock.destroyed) sock.write(out + '\n');
            });
          }
          if (buf.length > MAX_REQUEST_BYTES) {
            closed = true;
            stats.received++;
            stats.dropped++;
            chain = chain.then(() => {
              sock.end(encodeResponse(errorResponse(`request too large (max ${MAX_REQUEST_BYTES} bytes)`)) + '\n');
            });
          }
        });
      });
      unixServer.on('error', (e) => onError(e));
      await new Promise<void>((resolve, reject) => {
        unixServer!.once('error', reject);
        unixServer!.listen(p, () => {
          unixServer!.off('error', reject);
          resolve();
        });
      });
      fs.chmodSync(p, 0o660);
    }

    if (opts.udp) {
      const { address, port } = opts.udp;
      const sock = dgram.createSocket({ type: net.isIPv6(address) ? 'udp6' : 'udp4' });
      udp = sock;
      sock.on('error', (e) => onError(e));
      sock.on('message', (msg, rinfo) => {
        const reply = (out: Uint8Array) => sock.send(out, rinfo.port, rinfo.address, (err) => err && onError(err));
        if (opts.rawUdp?.(msg, rinfo.address, reply)) return; // it applies its own access rules
        if (!acceptUdpSource(rinfo.address)) {
          stats.dropped++;
          return; // no reply to foreign hosts (no amplification, no information)
        }
        void (async () => {
          let out: string;
          if (msg.length > MAX_REQUEST_BYTES) {
            stats.received++;
            out = encodeResponse(errorResponse(`request too large (max ${MAX_REQUEST_BYTES} bytes)`));
          } else {
            stats.received++;
            if (!limiter.take()) {
              stats.dropped++;
              return; // over the rate: dropped, as chronyd's cmdratelimit
            }
            const parsed = parseRequest(msg);
            out = encodeResponse(
              parsed.ok ? await runHandler(opts.handler, parsed.request) : errorResponse(parsed.error),
            );
          }
          sock.send(out, rinfo.port, rinfo.address, (err) => {
            if (err) onError(err);
          });
        })().catch((e: unknown) => onError(e as Error));
      });
      await new Promise<void>((resolve, reject) => {
        sock.once('error', reject);
        sock.bind(port, address, () => {
          sock.off('error', reject);
          resolve();
        });
      });
    }
  } catch (e) {
    unixServer?.close();
    udp?.close();
    throw e;
  }

  const udpPort = udp ? udp.address().port : undefined;
  return {
    unixPath: opts.unixPath,
    udpPort,
    stats,
    async close() {
      for (const c of conns) c.destroy();
      await Promise.all([
        unixServer ? new Promise<void>((resolve) => unixServer!.close(() => resolve())) : Promise.resolve(),
        udp ? new Promise<void>((resolve) => udp!.close(() => resolve())) : Promise.resolve(),
      ]);
      if (opts.unixPath !== undefined) {
        try {
          if (fs.lstatSync(opts.unixPath).isSocket()) fs.unlinkSync(opts.unixPath);
        } catch {
          /* already gone */
        }
      }
    },
  };
}
