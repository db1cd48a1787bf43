/**
 * The serving loop over batched sockets, the same in the main thread (serverworkers 1) and in a
 * server worker: each 'rx' batch is answered by the BatchServer into the socket's TX slots and
 * sent before the callback returns (the slots are valid only then); kernel TX stamps go back to
 * the BatchServer for interleaved mode. Datagrams the BatchServer does not answer itself (mode 6)
 * are handed on only after the batch was sent, because answering them reuses TX slot 0.
 *
 * `offsetNs` gives the daemon clock minus CLOCK_REALTIME at a realtime instant: the RX stamps of
 * a batch are mapped with the value at its first stamp, and TX_STAMP writes CLOCK_REALTIME plus
 * the same value (the offset changes at the clock's frequency correction, ppm, so microseconds
 * apart it is the same nanosecond).
 */
import { MAX_PACKET_LENGTH } from '../ntp/packet.js';
import type { Endpoint, ReferenceState } from '../engine/types.js';
import type { BatchUdpSocket } from '../io/batch-udp.js';
import { TX_STAMP } from '../io/batch-udp.js';
import { addressToWords } from '../ntp/ipaddr.js';
import { BatchServer } from '../ntp/server-batch.js';
import type { NtpServer } from '../ntp/server.js';
import type { Instant } from '../time/ntp-time.js';

/** Server sockets: a slot holds any valid NTP packet (longer ones are dropped whole, as counted). */
export const SERVER_SLOT_BYTES = MAX_PACKET_LENGTH + 8;
/** Server sockets: a 4-MiB receive queue (about 10k requests) rides out stalls of a few ms at 200k/s. */
export const SERVER_RECEIVE_BUFFER = 4 << 20;

export interface ServingLoopDeps {
  /** Daemon clock minus CLOCK_REALTIME (integer ns) at realtime `sec` s + `nsec` ns. */
  offsetNs(sec: number, nsec: number): number;
  /** The reference state to serve (asked once per batch). */
  reference(): ReferenceState;
  /** The daemon clock (T3 of answers signed before they leave: NTS, MACs). */
  now(): Instant;
  /** A datagram the server did not answer (mode 6), after its batch was sent. */
  onOther(data: Uint8Array, from: Endpoint, rx: Instant, local: BatchUdpSocket): void;
  /** A batch that could not be served (a bug: reported, and serving goes on). */
  onError(err: Error): void;
}

interface Other {
  data: Uint8Array;
  from: Endpoint;
  rx: Instant;
}

export class ServingLoop {
  readonly batchServer: BatchServer;
  private readonly others: Other[] = [];

  constructor(
    server: NtpServer,
    private readonly deps: ServingLoopDeps,
  ) {
    this.batchServer = new BatchServer(server, {
      now: () => deps.now(),
      sampleTxLatency: true,
      onOther: (data, from, rx) => {
        // Rare (mode 6): an object per datagram is fine here.
        if (this.others.length < 256) this.others.push({ data, from, rx });
      },
    });
  }

  /** The socket's onRx. A failure loses this batch, never the socket or the thread. */
  readonly onRx = (sock: BatchUdpSocket, n: number): void => {
    if (n <= 0) return;
    try {
      const off = this.deps.offsetNs(sock.rxTime[0]!, sock.rxTime[1]!);
      // T3 is written next to sendmsg(); the packet leaves txLatency.ns later (learnt).
      sock.txOffsetNs[0] = off + this.batchServer.txLatency.ns;
      const count = this.batchServer.process(sock, n, off, this.deps.reference());
      if (count > 0) {
        const sent = sock.send(count);
        if (sent > 0) this.batchServer.sent(sock, sent);
      }
      if (this.others.length > 0) this.deliverOthers(sock);
    } catch (e) {
      this.others.length = 0;
      this.deps.onError(e as Error);
    }
  };

  /** The socket's onTxStamps. */
  readonly onTxStamps = (sock: BatchUdpSocket, n: number): void => {
    if (n <= 0) return;
    try {
      const off = this.deps.offsetNs(sock.txStampTime[0]!, sock.txStampTime[1]!);
      this.batchServer.txStamps(sock.txStampId, sock.txStampTime, n, off, sock);
    } catch (e) {
      this.deps.onError(e as Error);
    }
  };

  private deliverOthers(sock: BatchUdpSocket): void {
    const list = this.others.splice(0);
    for (const o of list) this.deps.onOther(o.data, o.from, o.rx, sock);
  }
}

/**
 * Sends one datagram through TX slot 0 of `sock` (outside an 'rx' callback); with
 * `stampOffsetNs` the addon writes T3 = CLOCK_REALTIME + offset next to sendmsg(). Returns
 * whether it was sent.
 */
export function sendThroughSlot(sock: BatchUdpSocket, data: Uint8Array, to: Endpoint, stampOffsetNs?: number): boolean {
  if (data.length > sock.slotBytes) throw new RangeError(`datagram of ${data.length} bytes exceeds the slot size`);
  const meta = sock.txMeta;
  sock.txData.set(data, 0);
  meta[0] = data.length;
  meta[2] = to.port;
  meta[1] = addressToWords(to.address, meta, 3);
  meta[7] = stampOffsetNs !== undefined && data.length >= 48 ? TX_STAMP : 0;
  if (stampOffsetNs !== undefined) sock.txOffsetNs[0] = stampOffsetNs;
  return sock.send(1) === 1;
}
