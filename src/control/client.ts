/** Client side of the control protocol (used by rubidiumc). */
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import {
  type ControlRequest,
  type ControlResponse,
  MAX_REQUEST_BYTES,
  MAX_RESPONSE_BYTES,
  decodeResponse,
} from './protocol.js';

export type ControlTarget = { kind: 'unix'; path: string } | { kind: 'udp'; host: string; port: number };

/** The daemon could not be reached or answered garbage (chronyc: "506 Cannot talk to daemon"). */
export class ControlTransportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ControlTransportError';
  }
}

export function describeTarget(t: ControlTarget): string {
  return t.kind === 'unix' ? t.path : `${t.host.includes(':') ? `[${t.host}]` : t.host}:${t.port}`;
}

export async function sendControlRequest(
  target: ControlTarget,
  req: ControlRequest,
  timeoutMs = 3000,
  opts: { retransmit?: boolean } = {},
): Promise<ControlResponse> {
  const text = JSON.stringify({ cmd: req.cmd, args: req.args });
  if (Buffer.byteLength(text) > MAX_REQUEST_BYTES) throw new ControlTransportError('request too large');
  return target.kind === 'unix'
    ? viaUnix(target.path, text, timeoutMs)
    : viaUdp(target.host, target.port, text, timeoutMs, opts.retransmit ?? true);
}

function viaUnix(path: string, text: string, timeoutMs: number): Promise<ControlResponse> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    let done = false;
    const sock = net.createConnection(path);
    const finish = (err: Error | null, r?: ControlResponse): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(r!);
    };
    const timer = setTimeout(() => finish(new ControlTransportError(`timeout talking to ${path}`)), timeoutMs);
    sock.on('connect', () => sock.write(text + '\n'));
    sock.on('error', (e) => finish(new ControlTransportError(`${path}: ${e.message}`)));
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const nl = buf.indexOf(0x0a);
      if (nl >= 0) {
        try {
          finish(null, decodeResponse(buf.subarray(0, nl).toString('utf8')));
        } catch (e) {
          finish(new ControlTransportError(`bad reply: ${(e as Error).message}`));
        }
      } else if (buf.length > MAX_RESPONSE_BYTES + 1) {
        finish(new ControlTransportError('reply too large'));
      }
    });
    sock.on('end', () => finish(new ControlTransportError('connection closed without a reply')));
  });
}

function viaUdp(
  host: string,
  port: number,
  text: string,
  timeoutMs: number,
  retransmit: boolean,
): Promise<ControlResponse> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
    let done = false;
    const timers: NodeJS.Timeout[] = [];
    const finish = (err: Error | null, r?: ControlResponse): void => {
      if (done) return;
      done = true;
      for (const t of timers) clearTimeout(t);
      try {
        sock.close();
      } catch {
        /* not open */
      }
      if (err) reject(err);
      else resolve(r!);
    };
    sock.on('error', (e) => finish(new ControlTransportError(`${host}:${port}: ${e.message}`)));
    sock.on('message', (msg) => {
      try {
        finish(null, decodeResponse(msg.toString('utf8')));
      } catch (e) {
        finish(new ControlTransportError(`bad reply: ${(e as Error).message}`));
      }
    });
    sock.connect(port, host, () => {
      // Like chronyc: resend if no reply, up to 3 transmissions within the timeout (only when the
      // caller says the command is safe to repeat: UDP has no duplicate suppression here).
      const send = (): void => {
        if (!done) sock.send(text, (e) => e && finish(new ControlTransportError(e.message)));
      };
      send();
      if (retransmit) timers.push(setTimeout(send, timeoutMs / 3), setTimeout(send, (2 * timeoutMs) / 3));
    });
    timers.push(setTimeout(() => finish(new ControlTransportError(`timeout talking to ${host}:${port}`)), timeoutMs));
  });
}
