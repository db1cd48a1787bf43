/**
 * The I/O side of clock jump detection: every second, reads the disciplined clock,
 * CLOCK_MONOTONIC and CLOCK_BOOTTIME, feeds the sans-IO ClockJumpDetector, and on a suspend or a
 * foreign jump tells the engine (which drops its samples, bursts its sources and may step again
 * per makestep). The daemon's own steps are announced through `ownStep`.
 */
import type { Clock } from '../clock/clock.js';
import type { Engine } from '../engine/engine.js';
import type { Runtime } from './runtime.js';
import { CLOCK_BOOTTIME, CLOCK_MONOTONIC, native } from '../io/native.js';
import { ClockJumpDetector, type ClockJumpDetectorOptions, type ClockReading } from './clock-jump-detector.js';

export interface JumpWatchLogger {
  info(msg: string): void;
  warn(msg: string): void;
}

export const JUMP_WATCH_INTERVAL_MS = 1000;

/** CLOCK_MONOTONIC and CLOCK_BOOTTIME through the addon; hrtime (monotonic) and no boottime without it. */
export function readHostClocks(): { monotonic: bigint; boottime: bigint | null } {
  if (native) {
    try {
      return { monotonic: native.clockGettime(CLOCK_MONOTONIC), boottime: native.clockGettime(CLOCK_BOOTTIME) };
    } catch {
      // fall through: an addon without these clock ids
    }
  }
  return { monotonic: process.hrtime.bigint(), boottime: null };
}

export class JumpWatch {
  private readonly detector: ClockJumpDetector;
  private timer: NodeJS.Timeout | null = null;
  /** Leap status at the previous reading: the kernel's leap second is a ±1 s step we expect. */
  private leapBefore = 0;

  constructor(
    private readonly engine: Engine,
    private readonly clock: Clock,
    private readonly log: JumpWatchLogger,
    /** Called after the engine was told, so the driver carries out what it queued. */
    private readonly flush: () => void,
    opts: ClockJumpDetectorOptions = {},
    private readonly read: () => { monotonic: bigint; boottime: bigint | null } = readHostClocks,
  ) {
    this.detector = new ClockJumpDetector(opts);
  }

  ownStep(seconds: number): void {
    this.detector.ownStep(seconds);
  }

  /** One reading; returns whether a jump was reported (public for tests). */
  check(): boolean {
    const host = this.read();
    const reading: ClockReading = { realtime: this.clock.now(), ...host };
    const ev = this.detector.observe(reading);
    const leapStatus = this.engine.tracking(reading.realtime).leapStatus;
    const leap = leapStatus === 'Insert second' ? -1 : leapStatus === 'Delete second' ? 1 : 0;
    const leapBefore = this.leapBefore;
    this.leapBefore = leap;
    if (!ev) return false;
    if (ev.type === 'jump' && leapBefore !== 0 && Math.abs(ev.jumpSeconds - leapBefore) < 0.01) {
      this.log.info(`Leap second applied to the clock (${leapBefore > 0 ? 'deleted' : 'inserted'})`);
      return false;
    }
    if (ev.type === 'suspend') {
      this.log.info(
        `Host resumed after ${ev.sleptSeconds.toFixed(1)} s of suspend (clock moved ${ev.jumpSeconds.toFixed(6)} s beyond it): re-synchronising`,
      );
    } else {
      this.log.warn(`System clock jumped by ${ev.jumpSeconds.toFixed(6)} seconds (not by us): re-synchronising`);
    }
    this.engine.clockJumped(this.clock.now(), ev.jumpSeconds);
    this.flush();
    return true;
  }

  start(): void {
    this.check();
    this.timer = setInterval(() => this.check(), JUMP_WATCH_INTERVAL_MS);
    this.timer.unref();
  }

  get timerHandle(): NodeJS.Timeout | null {
    return this.timer;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

/** Starts jump detection for the daemon: wires the runtime's steps in, returns the interval timer. */
export function startJumpWatch(engine: Engine, runtime: Runtime, clock: Clock, log: JumpWatchLogger): NodeJS.Timeout {
  const watch = new JumpWatch(engine, clock, log, () => runtime.flush());
  runtime.onOwnStep = (s) => watch.ownStep(s);
  watch.start();
  return watch.timerHandle!;
}
