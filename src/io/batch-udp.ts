/**
 * Batched UDP sockets for the server hot path (the addon's udpBatch* exports, native/batch.c).
 *
 * The socket owns fixed slot buffers shared with the addon. The addon drains the socket with
 * recvmmsg in rounds of `batch` datagrams and calls `onRx(sock, n)` once per round: rx slots
 * [0, n) are valid during that call only, so the handler answers synchronously into tx slots
 * and calls `send(count)`. Nothing is allocated per datagram:
 *
 *   rxData/txData  slot i at [i * slotBytes, (i + 1) * slotBytes)
 *   rxMeta/txMeta  row i at [i * META_INTS, (i + 1) * META_INTS):
 *                  [len, family (4 | 6), port, a0, a1, a2, a3, flags], the address as big-endian
 *                  32-bit words (IPv4: a0 only), read with `>>> 0`
 *   rxTime         [unix seconds, ns] per rx slot: the kernel RX stamp when RX_KERNEL_STAMP is
 *                  set, else CLOCK_REALTIME read right after recvmmsg
 *   txOffsetNs[0]  ns added to CLOCK_REALTIME for TX_STAMP slots (the daemon clock's offset)
 *   txId           after send(): the TX-stamp id of each slot sent with TX_WANT_TIMESTAMP, else -1
 *   txStampId/Time valid during onTxStamps(sock, n): kernel TX stamps [unix seconds, ns] by id
 *
 * A TX_STAMP slot gets the NTP transmit timestamp (bytes 40..47) written immediately before its
 * own sendmsg, so the served T3 is within microseconds of the real transmit time.
 */
import type { ServerBatchIo } from '../ntp/server-batch.js';
import { native, type NativeAddon, type NativeBatchHandle, type NativeBatchStats } from './native.js';

export const META_INTS = 8;
/** rxMeta flags: the time is a kernel RX stamp; the datagram was longer than its slot. */
export const RX_KERNEL_STAMP = 1;
export const RX_TRUNCATED = 2;
/** txMeta flags: write the transmit timestamp at send time; ask for a kernel TX timestamp. */
export const TX_STAMP = 1;
export const TX_WANT_TIMESTAMP = 2;

export type BatchUdpStats = NativeBatchStats;

export interface BatchUdpOptions {
  family: 4 | 6;
  /** Local address to bind, e.g. '0.0.0.0', '::', '127.0.0.1'. */
  address: string;
  /** Local port; 0 for an ephemeral one. */
  port: number;
  reusePort?: boolean;
  /**
   * N > 1: SO_REUSEPORT with a BPF program that sends every datagram to socket
   * hash(source address) % N of the group (indexed in bind order), so each source address
   * always meets the same socket.
   */
  steerGroupSize?: number;
  /** Datagrams per receive round and number of tx slots, 1..256 (default 64). */
  batch?: number;
  /** Bytes per slot, 48..65536 (default 1024). */
  slotBytes?: number;
  /** Receive queue size in bytes (SO_RCVBUFFORCE, else SO_RCVBUF capped by the system); default: the system's. */
  receiveBuffer?: number;
  onRx(sock: BatchUdpSocket, n: number): void;
  onTxStamps?(sock: BatchUdpSocket, n: number): void;
  /** Receive failures other than "nothing to read". Default: ignored. */
  onError?(err: Error): void;
  /** Addon to use instead of the loaded one (tests); null: none. */
  addon?: NativeAddon | null;
}

type BatchAddon = Required<
  Pick<
    NativeAddon,
    'udpBatchOpen' | 'udpBatchSend' | 'udpBatchLocalPort' | 'udpBatchClose' | 'udpBatchSetRef' | 'udpBatchStats'
  >
>;

function batchAddon(addon: NativeAddon | null): BatchAddon | null {
  if (addon === null) return null;
  const a = addon as Partial<BatchAddon>;
  if (
    typeof a.udpBatchOpen !== 'function' ||
    typeof a.udpBatchSend !== 'function' ||
    typeof a.udpBatchLocalPort !== 'function' ||
    typeof a.udpBatchClose !== 'function' ||
    typeof a.udpBatchSetRef !== 'function' ||
    typeof a.udpBatchStats !== 'function'
  ) {
    return null;
  }
  return a as BatchAddon;
}

export class BatchUdpSocket implements ServerBatchIo {
  readonly batch: number;
  readonly slotBytes: number;
  readonly rxData: Uint8Array;
  readonly rxMeta: Int32Array;
  readonly rxTime: Float64Array;
  readonly txData: Uint8Array;
  readonly txMeta: Int32Array;
  readonly txId: Int32Array;
  readonly txOffsetNs: Float64Array;
  readonly txStampId: Int32Array;
  readonly txStampTime: Float64Array;
  /** 'kernel' when the kernel stamps received datagrams (rxMeta flags say so per datagram). */
  readonly timestamping: 'kernel' | 'daemon';
  /** Whether TX_WANT_TIMESTAMP can be honoured (SO_TIMESTAMPING accepted). */
  readonly txTimestamps: boolean;
  private closed = false;
  private readonly handle: NativeBatchHandle;

  /** Use openBatchUdpSocket. */
  constructor(
    private readonly addon: BatchAddon,
    opts: BatchUdpOptions,
  ) {
    const nativeOpts = {
      reusePort: opts.reusePort === true,
      ...(opts.steerGroupSize !== undefined ? { steerGroupSize: opts.steerGroupSize } : {}),
      ...(opts.batch !== undefined ? { batch: opts.batch } : {}),
      ...(opts.slotBytes !== undefined ? { slotBytes: opts.slotBytes } : {}),
      ...(opts.receiveBuffer !== undefined ? { receiveBuffer: opts.receiveBuffer } : {}),
    };
    const h = addon.udpBatchOpen(
      opts.family,
      opts.address,
      opts.port,
      (kind, arg) => {
        if (this.closed) return;
        if (kind === 'rx') opts.onRx(this, arg as number);
        else if (kind === 'tx') opts.onTxStamps?.(this, arg as number);
        else opts.onError?.(new Error(String(arg)));
      },
      nativeOpts,
    );
    this.handle = h;
    this.batch = h.batch;
    this.slotBytes = h.slotBytes;
    this.rxData = h.rxData;
    this.rxMeta = h.rxMeta;
    this.rxTime = h.rxTime;
    this.txData = h.txData;
    this.txMeta = h.txMeta;
    this.txId = h.txId;
    this.txOffsetNs = h.txOffsetNs;
    this.txStampId = h.txStampId;
    this.txStampTime = h.txStampTime;
    this.timestamping = h.tsMode === 'none' ? 'daemon' : 'kernel';
    this.txTimestamps = h.tsMode === 'timestamping';
  }

  /**
   * Sends tx slots [0, count), one sendmsg each. Returns how many slots were handled: those
   * before the returned index were sent (txId set) or failed for good (stats().txErrors); at
   * EAGAIN (socket buffer full) it stops, and slots from the index on were not sent. Throws
   * RangeError, sending nothing, when a slot's meta row is invalid.
   */
  send(count: number): number {
    if (this.closed) throw new Error('socket is closed');
    return this.addon.udpBatchSend(this.handle, count);
  }

  localPort(): number {
    if (this.closed) throw new Error('socket is closed');
    return this.addon.udpBatchLocalPort(this.handle);
  }

  /** Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.addon.udpBatchClose(this.handle);
  }

  /** Whether the open socket keeps the event loop alive (default true). */
  setRef(ref: boolean): void {
    if (this.closed) return;
    this.addon.udpBatchSetRef(this.handle, ref);
  }

  /** Counters since open (still readable after close). */
  stats(): BatchUdpStats {
    return this.addon.udpBatchStats(this.handle);
  }
}

/**
 * Opens a batched socket; null when the addon (or its batch exports) is unavailable: callers
 * fall back to src/io/udp.ts. Bind and argument errors throw.
 */
export function openBatchUdpSocket(opts: BatchUdpOptions): BatchUdpSocket | null {
  const addon = batchAddon(opts.addon === undefined ? native : opts.addon);
  return addon === null ? null : new BatchUdpSocket(addon, opts);
}
