/**
 * The thin I/O driver around the sans-IO Engine: feeds it datagrams, kernel timestamps and timer
 * expiries, and carries out what it asks (send datagrams, adjust the clock). Nothing here decides
 * anything about time; it only moves values between the kernel and the core.
 */
import type { Clock } from '../clock/clock.js';
import type { Engine } from '../engine/engine.js';
import type { ClockAction, Endpoint, Transmit } from '../engine/types.js';
import type { TimestampedSocket } from '../io/udp.js';
import { diffSeconds, type Instant } from '../time/ntp-time.js';
import { realtimeNow } from '../io/realtime.js';
import { isIPv6 } from 'node:net';

export interface RuntimeSockets {
  server4?: TimestampedSocket;
  server6?: TimestampedSocket;
  client4?: TimestampedSocket;
  client6?: TimestampedSocket;
}

export interface RuntimeLogger {
  info(msg: string): void;
  debug(msg: string): void;
  warn(msg: string): void;
}

export class Runtime {
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  /** kernel TX id → engine tag, per socket (ids count per socket from 0). */
  private readonly txTags = new Map<TimestampedSocket, Map<number, number>>();
  readonly sockets: RuntimeSockets = {};
  onClockAction: ((a: ClockAction) => void) | null = null;
  /** Told of every step the engine makes (the clock jump detector must not report them). */
  onOwnStep: ((seconds: number) => void) | null = null;
  /** Called at the end of every flush (server workers compare the reference and clock mapping). */
  onFlushed: (() => void) | null = null;

  constructor(
    readonly engine: Engine,
    readonly clock: Clock,
    private readonly log: RuntimeLogger,
  ) {}

  attach(kind: keyof RuntimeSockets, sock: TimestampedSocket): void {
    this.sockets[kind] = sock;
    this.txTags.set(sock, new Map());
  }

  /** Datagram callback for a socket of the given role. */
  datagram(role: 'client' | 'server', data: Uint8Array, from: Endpoint, rxRealtime: Instant): void {
    if (this.stopped) return;
    const rx = this.clock.fromKernel(rxRealtime);
    this.engine.handleDatagram(role, from, data, rx, this.clock.now());
    this.flush();
  }

  txTimestamp(sock: TimestampedSocket, id: number, txRealtime: Instant): void {
    if (this.stopped) return;
    const tags = this.txTags.get(sock);
    const tag = tags?.get(id);
    if (tag === undefined) return;
    tags!.delete(id);
    this.engine.handleTxTimestamp(tag, this.clock.fromKernel(txRealtime));
    this.flush();
  }

  start(): void {
    this.engine.start(this.clock.now());
    this.flush();
  }

  /** Carries out everything the engine has queued, then re-arms the timer. */
  flush(): void {
    if (this.stopped) return;
    for (let a = this.engine.pollClockAction(); a; a = this.engine.pollClockAction()) {
      this.applyClockAction(a);
    }
    for (let t = this.engine.pollTransmit(); t; t = this.engine.pollTransmit()) {
      this.send(t);
    }
    this.arm();
    this.onFlushed?.();
  }

  private applyClockAction(a: ClockAction): void {
    switch (a.type) {
      case 'frequency':
        this.clock.setFrequency(a.ppm);
        break;
      case 'offset':
        this.clock.step(a.seconds);
        this.onOwnStep?.(a.seconds);
        break;
      case 'step':
        this.log.info(`System clock wrong by ${a.seconds.toFixed(6)} seconds, stepping`);
        this.clock.step(a.seconds);
        this.onOwnStep?.(a.seconds);
        break;
      case 'status':
        this.clock.setStatus({
          synchronized: a.synchronized,
          leap: a.leap,
          maxErrorS: a.maxErrorS,
          estErrorS: a.estErrorS,
        });
        break;
    }
    this.onClockAction?.(a);
  }

  private send(t: Transmit): void {
    const v6 = isIPv6(t.to.address);
    const sock =
      t.socket === 'server'
        ? v6
          ? this.sockets.server6
          : this.sockets.server4
        : v6
          ? this.sockets.client6
          : this.sockets.client4;
    if (!sock) {
      this.log.debug(`no ${t.socket} socket for ${t.to.address}, datagram dropped`);
      return;
    }
    try {
      // T3 is written next to sendto(): the clock's offset from CLOCK_REALTIME changes only
      // at the servo's frequency, so it can be computed here, microseconds earlier.
      let stamp: bigint | undefined;
      if (t.stampTransmit && t.data.length >= 48) {
        const rt = realtimeNow();
        stamp = this.clock.fromKernel(rt) - rt;
      }
      const id = sock.send(t.data, t.to, stamp);
      if (t.txTag !== undefined && id >= 0) {
        const tags = this.txTags.get(sock)!;
        tags.set(id, t.txTag);
        // Bound the map: TX stamps that never arrive must not accumulate.
        if (tags.size > 4096) {
          const first = tags.keys().next().value as number;
          tags.delete(first);
        }
      }
    } catch (e) {
      this.log.warn(`could not send to ${t.to.address}:${t.to.port}: ${(e as Error).message}`);
      this.engine.transmitFailed(t, this.clock.now()); // auto_offline; flushed by our caller's loop
    }
  }

  private arm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const next = this.engine.nextTimeout();
    if (next === null || this.stopped) return;
    const delayMs = Math.min(Math.max(diffSeconds(next, this.clock.now()) * 1000, 0), 2 ** 31 - 1);
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.stopped) return;
      this.engine.handleTimeout(this.clock.now());
      this.flush();
    }, Math.ceil(delayMs));
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    for (const s of Object.values(this.sockets)) s?.close();
  }
}
