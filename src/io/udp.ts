/**
 * UDP sockets that report when each datagram really arrived and left.
 *
 * With the native addon the kernel stamps datagrams (SO_TIMESTAMPING, software): RX stamps come
 * with each datagram, TX stamps arrive later through `onTxTimestamp(id)`, where `id` is the
 * value `send()` returned for that datagram. Without the addon, node:dgram is used and the
 * daemon stamps RX on the callback (`timestamping: 'daemon'`) and never reports TX stamps.
 */
import dgram from 'node:dgram';
import { instantToNtp64, type Instant } from '../time/ntp-time.js';
import type { Endpoint } from '../engine/types.js';
import { native, type NativeAddon, type NativeUdpHandle } from './native.js';
import { realtimeNow } from './realtime.js';

export interface TimestampedSocket {
  /**
   * Sends a datagram; returns the id its TX timestamp will carry, or -1 if none will come.
   * With `stampOffsetNs`, the NTP transmit timestamp (bytes 40-47) is set to CLOCK_REALTIME +
   * stampOffsetNs immediately before the datagram leaves (in the addon, next to sendto()).
   */
  send(data: Uint8Array, to: Endpoint, stampOffsetNs?: bigint): number;
  localPort(): number;
  /** Idempotent. */
  close(): void;
  readonly timestamping: 'kernel' | 'daemon';
}

export interface OpenUdpOptions {
  family: 4 | 6;
  /** Local address to bind, e.g. '0.0.0.0', '::', '127.0.0.1'. */
  address: string;
  /** Local port; 0 for an ephemeral one. */
  port: number;
  reusePort?: boolean;
  onDatagram(data: Uint8Array, from: Endpoint, rxRealtime: Instant): void;
  onTxTimestamp(id: number, txRealtime: Instant): void;
  /** Asynchronous socket errors (send failures, receive errors). Default: ignored. */
  onError?(err: Error): void;
  /** Use the addon when it is loaded (default true); false forces node:dgram. */
  preferNative?: boolean;
  /** Addon to use instead of the loaded one (tests). */
  addon?: NativeAddon | null;
}

function isSystemError(e: unknown): e is Error & { code: string } {
  const code: unknown = e instanceof Error ? (e as Error & { code?: unknown }).code : undefined;
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code);
}

class NativeSocket implements TimestampedSocket {
  readonly timestamping = 'kernel' as const;
  private closed = false;
  private readonly handle: NativeUdpHandle;

  constructor(
    private readonly addon: NativeAddon,
    private readonly opts: OpenUdpOptions,
  ) {
    this.handle = addon.udpOpen(opts.family, opts.address, opts.port, (kind, ...args) => this.onEvent(kind, args), {
      reusePort: opts.reusePort === true,
    });
  }

  private onEvent(kind: string, args: unknown[]): void {
    if (this.closed) return;
    if (kind === 'rx') {
      const [data, address, port, ts] = args as [Buffer, string, number, bigint | null];
      this.opts.onDatagram(data, { address, port }, ts ?? realtimeNow());
    } else if (kind === 'tx') {
      const [id, ts] = args as [number, bigint];
      this.opts.onTxTimestamp(id, ts);
    } else if (kind === 'error') {
      this.opts.onError?.(new Error(String(args[0])));
    }
  }

  send(data: Uint8Array, to: Endpoint, stampOffsetNs?: bigint): number {
    if (this.closed) throw new Error('socket is closed');
    try {
      return stampOffsetNs === undefined
        ? this.addon.udpSend(this.handle, data, to.address, to.port)
        : this.addon.udpSend(this.handle, data, to.address, to.port, stampOffsetNs);
    } catch (e) {
      // Network conditions (EAGAIN, ENETUNREACH, ...) are not programming errors: report, go on.
      if (!isSystemError(e)) throw e;
      this.opts.onError?.(e);
      return -1;
    }
  }

  localPort(): number {
    if (this.closed) throw new Error('socket is closed');
    return this.addon.udpLocalPort(this.handle);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.addon.udpClose(this.handle);
  }
}

class DgramSocket implements TimestampedSocket {
  readonly timestamping = 'daemon' as const;
  private closed = false;

  constructor(
    private readonly sock: dgram.Socket,
    private readonly opts: OpenUdpOptions,
  ) {
    sock.on('message', (msg, rinfo) => {
      const rx = realtimeNow();
      if (!this.closed) this.opts.onDatagram(msg, { address: rinfo.address, port: rinfo.port }, rx);
    });
    sock.on('error', (err) => {
      if (!this.closed) this.opts.onError?.(err);
    });
  }

  send(data: Uint8Array, to: Endpoint, stampOffsetNs?: bigint): number {
    if (this.closed) throw new Error('socket is closed');
    if (stampOffsetNs !== undefined && data.length >= 48) {
      const ts = instantToNtp64(realtimeNow() + stampOffsetNs);
      new DataView(data.buffer, data.byteOffset, data.byteLength).setBigUint64(40, ts);
    }
    this.sock.send(data, to.port, to.address, (err) => {
      if (err && !this.closed) this.opts.onError?.(err);
    });
    return -1;
  }

  localPort(): number {
    if (this.closed) throw new Error('socket is closed');
    return this.sock.address().port;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sock.close();
  }
}

async function openDgram(opts: OpenUdpOptions): Promise<TimestampedSocket> {
  // `reusePort` exists in dgram from Node 22.12; older versions ignore the option.
  const sockOpts = {
    type: opts.family === 6 ? 'udp6' : 'udp4',
    ipv6Only: opts.family === 6,
    ...(opts.reusePort ? { reusePort: true } : {}),
  } as dgram.SocketOptions;
  const sock = dgram.createSocket(sockOpts);
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => {
      sock.close();
      reject(err);
    };
    sock.once('error', onError);
    sock.bind({ address: opts.address, port: opts.port, exclusive: true }, () => {
      sock.off('error', onError);
      resolve();
    });
  });
  return new DgramSocket(sock, opts);
}

/** Opens a UDP socket with the best timestamping available. */
export async function openUdpSocket(opts: OpenUdpOptions): Promise<TimestampedSocket> {
  if (opts.family !== 4 && opts.family !== 6) throw new RangeError('family must be 4 or 6');
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) {
    throw new RangeError(`port must be an integer in [0, 65535], got ${opts.port}`);
  }
  const addon = opts.addon === undefined ? native : opts.addon;
  if (opts.preferNative !== false && addon) {
    // If the kernel refused SO_TIMESTAMPING the socket is still native (RX stamps through
    // SO_TIMESTAMPNS where possible) and send() returns -1.
    return new NativeSocket(addon, opts);
  }
  return openDgram(opts);
}
