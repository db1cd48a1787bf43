/**
 * Sans-IO client association with one NTP server (RFC 5905 client mode, chrony semantics).
 *
 * The I/O layer drives it: `start(now)`, then whenever `nextTimeout()` is reached call
 * `handleTimeout(now)`, send everything `pollTransmit()` returns (socket 'client'), feed answers
 * to `handleResponse()`, report kernel TX timestamps of tagged requests to `handleTxTimestamp()`,
 * and drain `pollEvent()`.
 *
 * On-wire checks (RFC 5905 §8, numbered like chrony's `ntpdata` "NTP tests"):
 *   1 duplicate (receive and transmit equal to the last accepted answer's),
 *   2 bogus (origin is not our outstanding request's transmit — or, in xleave mode, not the
 *     receive field of that request which marks an interleaved answer); a zero origin is
 *     always bogus; after an answer is accepted the request is marked answered so a replay
 *     fails test 2,
 *   3 zero receive/transmit timestamps, 5 authentication (we use none: answers with a MAC,
 *   crypto-NAK or NTS fields fail), 6 unsynchronised server (LI=3, stratum 0 or ≥ 16),
 *   7 root distance (root delay/2 + root dispersion < 16 s), A maxdelay (delay − dispersion
 *   ≤ maxdelay), B/C (maxdelayratio/devratio, not implemented: always pass), D (sync loop, not
 *   implemented: always pass).
 *
 * Requests follow RFC 9109-era data minimisation: every field is zero except version, mode,
 * poll and a random transmit timestamp (the real send time is kept locally). In xleave mode a
 * request also carries origin = the server's receive timestamp of the last accepted answer and
 * receive = a random marker; a server that supports interleaving (chrony's method) then answers
 * with origin = our marker, and transmit = its precise TX time of the *previous* answer, and the
 * sample is computed from the previous exchange (T1 = our TX time of the previous request as
 * reported by `handleTxTimestamp`, T2 and T4 from the previous answer, T3 from this one). If the
 * server answers in basic mode (origin = our transmit), a basic sample is used.
 */
import type { Endpoint, NtpSample, Transmit } from '../engine/types.js';
import type { Instant, Ntp64 } from '../time/ntp-time.js';
import { addSeconds, diffSeconds, ntp64ToInstant } from '../time/ntp-time.js';
import type { LeapIndicator } from '../clock/clock.js';
import { decodePacket, encodePacket, isNtsExtension, MODE_CLIENT, MODE_SERVER } from './packet.js';
import type { ClientAuthenticator, ClientAuthVerdict } from './auth.js';
import { kissCode, kodAction } from './kod.js';

export const PHI = 15e-6;
export const MAX_DISPERSION = 16;
/** Hard limits for poll (log2 s), as chrony. */
export const MIN_POLL = -7;
export const MAX_POLL = 24;
const MAX_BURST_INTERVAL = 2;
const PRESEND_INTERVAL = 2;
/**
 * iburst: 8 good samples of at most 16 requests (ntpd sends 8; chrony takes 4 of 8). Four samples
 * 1–2 s apart leave the first frequency up to ~20 ppm off, which moves the clock ~80 µs over the
 * poll that follows; eight make that ~4× smaller (docs/discipline.md, "The convergence tail").
 */
const IBURST_GOOD = 8;
const IBURST_TOTAL = 16;
/**
 * With iburst, a source that answers again after at least REACQUIRE_MISSED polls in a row went
 * unanswered (an outage, not loss: at 10 % loss three in a row happen once in 1000 polls) gets a
 * burst of 4 good samples of at most 8: the offset that built up meanwhile is measured and
 * corrected in seconds instead of over several long polls, and the frequency is re-estimated
 * across the outage (docs/discipline.md, "Intermittent links").
 */
const REACQUIRE_MISSED = 3;
const REACQUIRE_GOOD = 4;
const REACQUIRE_TOTAL = 8;
/** Good samples at the current poll before the automatic rule lengthens it. */
const POLL_UP_SAMPLES = 4;
/**
 * Poll score added for each request that went unanswered (chrony: 0.25, or 0.1 while the source
 * is the one the clock follows): the poll lengthens by one every 4 (10) misses, so an outage
 * costs little traffic while the reach register still empties in 8 polls.
 */
const UNREACH_BACKOFF = 0.25;
const UNREACH_BACKOFF_SELECTED = 0.1;
const MASK64 = (1n << 64n) - 1n;

export interface ClientAssociationConfig {
  address: Endpoint;
  minpoll?: number; // default 6
  maxpoll?: number; // default 10
  iburst?: boolean;
  /** chrony `burst`: at each poll send up to 4 requests ≤ 2 s apart until one good sample. */
  burst?: boolean;
  version?: number; // 1..4, default 4
  xleave?: boolean;
  maxdelay?: number; // seconds, default 3
  offline?: boolean;
  /** chrony `presend POLL`: when poll ≥ this, send an extra request 2 s before each poll. */
  presend?: number;
  /** Local clock precision, log2 s (default -20 ≈ 1 µs). */
  precision?: number;
  /**
   * The poll interval is steered from outside through adjustPoll() (the engine does, from the
   * source's statistics); otherwise it rises by one after every 4 good samples.
   */
  externalPoll?: boolean;
  /** chrony `auto_offline`: a failed send (no route, ...) takes the source offline. */
  autoOffline?: boolean;
  /** Symmetric key or NTS (src/ntp/auth.ts): requests are signed, only authentic answers count. */
  auth?: ClientAuthenticator;
}

export interface ClientAssociationDeps {
  random: () => number;
}

export type AssocEvent =
  | { type: 'sample'; sample: NtpSample }
  | { type: 'kod'; code: string }
  | { type: 'unreachable' }
  | { type: 'reach'; reach: number };

/** Outcome of `handleResponse`, usable as a counter key. */
export type ResponseVerdict = 'sample' | 'kod' | 'presend' | `dropped:${string}`;

export interface LastPacketInfo {
  leap: LeapIndicator;
  version: number;
  mode: number;
  stratum: number;
  poll: number;
  precision: number;
  rootDelay: number;
  rootDispersion: number;
  refId: number;
  refTime: Instant;
}

export interface ClientAssociationStatus {
  address: Endpoint;
  online: boolean;
  /** True once a DENY/RSTR KoD stopped the association. */
  stopped: boolean;
  poll: number;
  minpoll: number;
  maxpoll: number;
  reach: number;
  /** Local time of the last valid answer. */
  lastRx: Instant | null;
  lastPacket: LastPacketInfo | null;
  lastSample: { offset: number; delay: number; dispersion: number; time: Instant } | null;
  totalTx: number;
  totalRx: number;
  totalValidRx: number;
  /** chrony `ntpdata` format: "111 111 1111" (tests 1-3, 5-7, A-D). */
  ntpTests: string;
  interleaved: boolean;
  /** Last kiss code believed, null if none. */
  kod: string | null;
  /** Requests left in the current burst (0: no burst). */
  burstRemaining: number;
  /** Consecutive polls that left the reach register empty (chrony's unreachable run). */
  unreachableRun: number;
}

interface Exchange {
  /** Local transmit time of the request (refined by a kernel TX timestamp). */
  t1: Instant;
  tag: number | undefined;
  /** Server receive timestamp as it came on the wire. */
  t2: Ntp64;
  t4: Instant;
}

interface Request {
  transmit: Ntp64;
  origin: Ntp64;
  receive: Ntp64;
  localTx: Instant;
  tag: number | undefined;
  presend: boolean;
  answered: boolean;
  /** The exchange an interleaved answer to this request refers to. */
  prev: Exchange | null;
}

function clampPoll(p: number): number {
  return Math.max(MIN_POLL, Math.min(MAX_POLL, Math.round(p)));
}

export class ClientAssociation {
  address: Endpoint;
  private readonly random: () => number;
  private readonly minpoll: number;
  private readonly maxpoll: number;
  private readonly version: number;
  private readonly xleave: boolean;
  private readonly maxdelay: number;
  private readonly precision: number;
  private readonly cfgIburst: boolean;
  private readonly cfgBurst: boolean;
  private readonly externalPoll: boolean;
  private readonly presend: number | undefined;
  private readonly autoOffline: boolean;
  private readonly auth: ClientAuthenticator | undefined;
  /** The clock follows this source (its poll backs off more slowly when it stops answering). */
  private selected = false;
  private unreachableRun = 0;

  private poll: number;
  private online: boolean;
  private started = false;
  private stopped = false;
  private nextTx: Instant | null = null;
  private lastTxTime: Instant | null = null;
  private burstGood = 0;
  private burstTotal = 0;
  private presendSent = false;
  private reach = 0;
  private unanswered = 0;
  private goodStreak = 0;
  private pollScore = 0;
  private lastReq: Request | null = null;
  private prevExchange: Exchange | null = null;
  private lastRemoteRx: Ntp64 | null = null;
  private lastRemoteTx: Ntp64 | null = null;
  private tagCounter = 0;
  private readonly txQueue: Transmit[] = [];
  private readonly events: AssocEvent[] = [];

  private totalTx = 0;
  private totalRx = 0;
  private totalValidRx = 0;
  private lastRx: Instant | null = null;
  private lastPacket: LastPacketInfo | null = null;
  private lastSample: ClientAssociationStatus['lastSample'] = null;
  private tests = '000 000 0000';
  private lastInterleaved = false;
  private kod: string | null = null;

  constructor(cfg: ClientAssociationConfig, deps: ClientAssociationDeps) {
    this.address = { address: cfg.address.address, port: cfg.address.port };
    this.random = deps.random;
    this.minpoll = clampPoll(cfg.minpoll ?? 6);
    this.maxpoll = Math.max(this.minpoll, clampPoll(cfg.maxpoll ?? 10));
    const v = cfg.version ?? 4;
    if (!Number.isInteger(v) || v < 1 || v > 4) throw new RangeError('version must be 1..4');
    this.version = v;
    this.xleave = cfg.xleave ?? false;
    this.maxdelay = cfg.maxdelay ?? 3;
    this.precision = cfg.precision ?? -20;
    this.cfgIburst = cfg.iburst ?? false;
    this.cfgBurst = cfg.burst ?? false;
    this.externalPoll = cfg.externalPoll ?? false;
    this.presend = cfg.presend;
    this.autoOffline = cfg.autoOffline ?? false;
    this.auth = cfg.auth;
    this.online = !(cfg.offline ?? false);
    this.poll = this.minpoll;
  }

  // ---- scheduling -------------------------------------------------------------------------

  private pollInterval(): number {
    return 2 ** this.poll * (0.95 + 0.1 * this.random());
  }

  private burstInterval(): number {
    return Math.min(MAX_BURST_INTERVAL, 0.25 * 2 ** this.poll) * (0.9 + 0.1 * this.random());
  }

  start(now: Instant): void {
    if (this.started) return;
    this.started = true;
    if (!this.online) return;
    if (this.cfgIburst) this.startBurst(IBURST_GOOD, IBURST_TOTAL);
    this.nextTx = addSeconds(now, 0.1 * this.random());
  }

  private startBurst(good: number, total: number): void {
    this.burstGood = Math.max(1, good);
    this.burstTotal = Math.max(this.burstGood, total);
  }

  private endBurst(): void {
    this.burstGood = 0;
    this.burstTotal = 0;
  }

  nextTimeout(): Instant | null {
    return this.nextTx;
  }

  /**
   * The local clock was stepped by `seconds`: move every local instant held here with it, so a
   * step back by an hour does not pause polling for an hour (and a step forward does not fire
   * every poll at once).
   */
  clockStepped(seconds: number): void {
    if (this.nextTx !== null) this.nextTx = addSeconds(this.nextTx, seconds);
    if (this.lastTxTime !== null) this.lastTxTime = addSeconds(this.lastTxTime, seconds);
    if (this.lastRx !== null) this.lastRx = addSeconds(this.lastRx, seconds);
  }

  handleTimeout(now: Instant): void {
    if (this.nextTx === null || now < this.nextTx || this.stopped) return;
    const inBurst = this.burstTotal > 0;

    // presend: an extra request ahead of a regular poll (not counted as a poll).
    if (!inBurst && this.presend !== undefined && this.poll >= this.presend && !this.presendSent) {
      this.presendSent = true;
      this.sendRequest(now, true);
      this.nextTx = addSeconds(now, PRESEND_INTERVAL);
      return;
    }
    this.presendSent = false;

    // chrony `burst` option: a short burst at each regular poll.
    if (!inBurst && this.cfgBurst) {
      const total = Math.min(4, 2 ** Math.max(0, this.poll - this.minpoll));
      if (total > 1) this.startBurst(1, total);
    }

    // Unreachable back-off: the previous request went unanswered.
    if (this.unanswered > 0 && this.burstTotal === 0) {
      this.adjustPoll(this.selected ? UNREACH_BACKOFF_SELECTED : UNREACH_BACKOFF);
    }

    const prevReach = this.reach;
    this.reach = (this.reach << 1) & 0xff;
    if (this.reach !== prevReach) this.events.push({ type: 'reach', reach: this.reach });
    if (prevReach !== 0 && this.reach === 0) this.events.push({ type: 'unreachable' });
    this.unreachableRun = this.reach === 0 ? this.unreachableRun + 1 : 0;
    this.unanswered++;

    this.sendRequest(now, false);

    if (this.burstTotal > 0) {
      this.burstTotal--;
      if (this.burstTotal > 0) {
        this.nextTx = addSeconds(now, this.burstInterval());
        return;
      }
      this.endBurst();
    }
    this.nextTx = this.online ? addSeconds(now, this.pollInterval()) : null;
  }

  private random64(avoid: Ntp64[]): Ntp64 {
    let v = 0n;
    for (let i = 0; i < 4; i++) v = (v << 16n) | BigInt(Math.floor(this.random() * 65536) & 0xffff);
    while (v === 0n || avoid.includes(v)) v = (v + 0x9e37_79b9_7f4a_7c15n) & MASK64;
    return v;
  }

  private sendRequest(now: Instant, presend: boolean): void {
    // Nothing to sign with yet (NTS: no cookie, NTS-KE pending): the poll goes unanswered.
    if (this.auth && !this.auth.ready(now)) return;
    const prev = this.xleave ? this.prevExchange : null;
    const origin = prev ? prev.t2 : 0n;
    const avoid: Ntp64[] = [origin];
    if (this.lastReq) avoid.push(this.lastReq.transmit, this.lastReq.receive);
    const receive = prev ? this.random64(avoid) : 0n;
    avoid.push(receive);
    const transmit = this.random64(avoid);
    // Always ask for the kernel TX timestamp: it replaces T1 in basic mode too.
    const tag = (this.tagCounter = (this.tagCounter % 0x7fff_ffff) + 1);
    this.lastReq = { transmit, origin, receive, localTx: now, tag, presend, answered: false, prev };
    this.lastTxTime = now;
    const header = encodePacket({
      leap: 0,
      version: this.version,
      mode: MODE_CLIENT,
      stratum: 0,
      poll: Math.max(-128, Math.min(127, this.poll)),
      precision: 0,
      rootDelay: 0,
      rootDispersion: 0,
      refId: 0,
      refTime: 0n,
      origin,
      receive,
      transmit,
      extensions: [],
    });
    const data = this.auth ? this.auth.signRequest(header, now) : header;
    const t: Transmit = { socket: 'client', to: { ...this.address }, data };
    if (tag !== undefined) t.txTag = tag;
    this.txQueue.push(t);
    this.totalTx++;
  }

  pollTransmit(): Transmit | undefined {
    return this.txQueue.shift();
  }

  pollEvent(): AssocEvent | undefined {
    return this.events.shift();
  }

  /** Kernel (or driver) transmit timestamp of the request that carried `tag`. */
  handleTxTimestamp(tag: number, tx: Instant): void {
    const ok = (t1: Instant): boolean => Math.abs(diffSeconds(tx, t1)) < 1;
    if (this.lastReq && this.lastReq.tag === tag && ok(this.lastReq.localTx)) this.lastReq.localTx = tx;
    if (this.prevExchange && this.prevExchange.tag === tag && ok(this.prevExchange.t1)) this.prevExchange.t1 = tx;
  }

  /** Whether the clock currently follows this source (slower unreachable back-off). */
  setSelected(selected: boolean): void {
    this.selected = selected;
  }

  /**
   * Sending the last request failed (ENETUNREACH, ...). With auto_offline the source goes
   * offline until `setOnline(true)`, as chronyd does. Returns whether it went offline.
   */
  sendFailed(now: Instant): boolean {
    if (!this.autoOffline || !this.online) return false;
    this.endBurst();
    this.setOnline(false, now);
    return true;
  }

  setOnline(online: boolean, now: Instant): void {
    if (online === this.online) return;
    this.online = online;
    if (!online) {
      if (this.burstTotal === 0) this.nextTx = null;
      return;
    }
    if (!this.started || this.stopped) return;
    if (this.cfgIburst) this.startBurst(IBURST_GOOD, IBURST_TOTAL);
    this.nextTx = addSeconds(now, 0.1 * this.random());
  }

  /** NTS: NTS-KE named another NTP server or port; later requests go there (setAddress is only for that). */
  setAddress(address: Endpoint): void {
    this.address = { address: address.address, port: address.port };
  }

  /** chronyc `burst [good/max]`: also works while offline (goes back offline afterwards). */
  burst(now: Instant, good = 4, total = 8): void {
    if (this.stopped) return;
    this.started = true;
    this.startBurst(good, total);
    this.nextTx = addSeconds(now, 0.1 * this.random());
  }

  /**
   * Poll adaptation by score (chrony's scheme): adjustments accumulate, and each whole unit
   * the score crosses moves the poll by one; clamped to minpoll..maxpoll.
   */
  adjustPoll(adj: number): void {
    if (!Number.isFinite(adj)) return;
    this.pollScore += adj;
    let poll = this.poll;
    if (this.pollScore >= 1) {
      poll += Math.trunc(this.pollScore);
      this.pollScore -= Math.trunc(this.pollScore);
    } else if (this.pollScore < 0) {
      const k = Math.trunc(this.pollScore - 1);
      poll += k;
      this.pollScore -= k;
    }
    if (poll <= this.minpoll) {
      if (poll < this.minpoll) this.pollScore = 0;
      poll = this.minpoll;
    } else if (poll >= this.maxpoll) {
      if (poll > this.maxpoll) this.pollScore = 1;
      poll = this.maxpoll;
    }
    if (poll !== this.poll) this.setPoll(poll);
  }

  /** Lets the discipline steer polling (clamped to minpoll..maxpoll). */
  setPoll(poll: number): void {
    this.poll = Math.max(this.minpoll, Math.min(this.maxpoll, Math.round(poll)));
    this.goodStreak = 0;
    if (this.nextTx !== null && this.burstTotal === 0 && this.lastTxTime !== null && !this.presendSent) {
      this.nextTx = addSeconds(this.lastTxTime, this.pollInterval());
    }
  }

  getPoll(): number {
    return this.poll;
  }

  // ---- answers ----------------------------------------------------------------------------

  handleResponse(data: Uint8Array, from: Endpoint, rx: Instant): ResponseVerdict {
    this.totalRx++;
    if (from.address !== this.address.address || from.port !== this.address.port) return 'dropped:address';
    const dec = decodePacket(data);
    if (!dec.ok) return `dropped:${dec.reason}`;
    const pkt = dec.packet;
    if (pkt.mode !== MODE_SERVER) return 'dropped:mode';

    this.lastPacket = {
      leap: pkt.leap,
      version: pkt.version,
      mode: pkt.mode,
      stratum: pkt.stratum,
      poll: pkt.poll,
      precision: pkt.precision,
      rootDelay: pkt.rootDelay,
      rootDispersion: pkt.rootDispersion,
      refId: pkt.refId,
      refTime: pkt.refTime === 0n ? 0n : ntp64ToInstant(pkt.refTime, rx),
    };

    const req = this.lastReq && !this.lastReq.answered ? this.lastReq : null;
    const test1 = !(pkt.receive === this.lastRemoteRx && pkt.transmit === this.lastRemoteTx);
    const test2n = req !== null && pkt.origin !== 0n && pkt.origin === req.transmit;
    const test2i = this.xleave && req !== null && req.prev !== null && req.receive !== 0n && pkt.origin === req.receive;
    const test2 = test2n || test2i;
    const interleaved = !test2n && test2i;
    const test3 = pkt.origin !== 0n && pkt.receive !== 0n && pkt.transmit !== 0n;
    // Authentication is checked only for an answer to our outstanding request (test 2).
    let verdict: ClientAuthVerdict | null = null;
    if (this.auth && test2 && req !== null) verdict = this.auth.verifyResponse(data, pkt, rx);
    const test5 = this.auth
      ? verdict?.ok === true
      : pkt.mac === undefined && !pkt.extensions.some((ef) => isNtsExtension(ef.type));
    const test6 = pkt.leap !== 3 && pkt.stratum !== 0 && pkt.stratum < 16;
    const test7 = pkt.rootDelay / 2 + pkt.rootDispersion < MAX_DISPERSION;
    const b = (x: boolean): string => (x ? '1' : '0');
    const head = `${b(test1)}${b(test2)}${b(test3)} ${b(test5)}${b(test6)}${b(test7)}`;
    this.tests = `${head} 0000`;

    if (!test1) return 'dropped:duplicate';
    if (pkt.origin === 0n) return 'dropped:zero-origin';
    if (!test2 || req === null) return 'dropped:bogus';

    // An authentic NTS NAK: the authenticator now wants a new NTS-KE; no sample.
    if (verdict && !verdict.ok && verdict.nak) {
      req.answered = true;
      return 'dropped:nts-nak';
    }

    // Kiss-o'-Death: believed only when it answers our outstanding request (test 2) and, with
    // authentication, only when authentic.
    const code = test5 && pkt.leap === 3 ? kissCode(pkt.stratum, pkt.refId) : null;
    if (code !== null) {
      req.answered = true;
      this.handleKod(code, rx);
      return 'kod';
    }

    if (!test3) return 'dropped:zero-timestamp';
    if (!test5) return 'dropped:auth';

    // Valid answer (tests 1, 2, 3, 5): replay protection and state for the next exchange.
    req.answered = true;
    this.totalValidRx++;
    this.lastRx = rx;
    this.lastRemoteRx = pkt.receive;
    this.lastRemoteTx = pkt.transmit;
    // `unanswered` counts this request too: the polls missed before it are one fewer.
    if (this.cfgIburst && !req.presend && this.burstTotal === 0 && this.unanswered - 1 >= REACQUIRE_MISSED) {
      this.startBurst(REACQUIRE_GOOD, REACQUIRE_TOTAL);
      if (this.online) this.nextTx = addSeconds(rx, this.burstInterval());
    }
    this.unanswered = 0;
    this.unreachableRun = 0;
    if (!req.presend) {
      const prevReach = this.reach;
      this.reach |= 1;
      if (this.reach !== prevReach) this.events.push({ type: 'reach', reach: this.reach });
    }
    // The exchange an interleaved answer to our next request will complete. A TX timestamp
    // reported after this point still reaches it through handleTxTimestamp (same tag).
    this.prevExchange = { t1: req.localTx, tag: req.tag, t2: pkt.receive, t4: rx };

    if (!test6 || !test7) {
      return !test6 ? 'dropped:unsynchronised' : 'dropped:root-distance';
    }

    let t1: Instant, t2: Instant, t3: Instant, t4: Instant;
    if (interleaved) {
      const p = req.prev!;
      t1 = p.t1;
      t4 = p.t4;
      t2 = ntp64ToInstant(p.t2, p.t4);
      t3 = ntp64ToInstant(pkt.transmit, p.t4);
    } else {
      t1 = req.localTx;
      t4 = rx;
      t2 = ntp64ToInstant(pkt.receive, rx);
      t3 = ntp64ToInstant(pkt.transmit, rx);
    }
    const localPrec = 2 ** this.precision;
    const roundTrip = diffSeconds(t4, t1);
    const offset = Number(t2 - t1 + (t3 - t4)) / 2e9;
    let delay = roundTrip - diffSeconds(t3, t2);
    if (!(delay >= localPrec)) delay = localPrec;
    const dispersion = localPrec + 2 ** pkt.precision + PHI * Math.max(0, roundTrip);
    const testA = roundTrip >= 0 && delay - dispersion <= this.maxdelay;
    this.tests = `${head} ${b(testA)}111`;
    this.lastInterleaved = interleaved;
    if (!testA) return 'dropped:maxdelay';

    if (req.presend) return 'presend';

    const sample: NtpSample = {
      // The offset describes the middle of the exchange (it matters while the clock slews fast).
      time: t1 + (t4 - t1) / 2n,
      offset,
      delay,
      dispersion,
      rootDelay: pkt.rootDelay,
      rootDispersion: pkt.rootDispersion,
      stratum: pkt.stratum,
      leap: pkt.leap,
      refId: pkt.refId,
      refTime: pkt.refTime === 0n ? 0n : ntp64ToInstant(pkt.refTime, rx),
      poll: this.poll,
      interleaved,
    };
    this.lastSample = { offset, delay, dispersion, time: t4 };
    this.events.push({ type: 'sample', sample });

    if (this.burstGood > 0) {
      this.burstGood--;
      if (this.burstGood === 0) {
        this.endBurst();
        const next = addSeconds(req.localTx, this.pollInterval());
        this.nextTx = this.online ? (next > rx ? next : rx) : null;
      }
    } else {
      this.goodStreak++;
      if (!this.externalPoll && this.goodStreak >= POLL_UP_SAMPLES && this.poll < this.maxpoll) {
        this.poll++;
        this.goodStreak = 0;
      }
    }
    return 'sample';
  }

  private handleKod(code: string, rx: Instant): void {
    this.kod = code;
    this.events.push({ type: 'kod', code });
    const action = kodAction(code);
    if (action === 'stop') {
      this.stopped = true;
      this.nextTx = null;
      this.endBurst();
    } else if (action === 'slow') {
      this.poll = Math.min(MAX_POLL, Math.max(this.poll + 1, this.minpoll + 1));
      this.goodStreak = 0;
      this.endBurst();
      if (this.nextTx !== null) this.nextTx = addSeconds(rx, this.pollInterval());
    }
  }

  status(): ClientAssociationStatus {
    return {
      address: { ...this.address },
      online: this.online,
      stopped: this.stopped,
      poll: this.poll,
      minpoll: this.minpoll,
      maxpoll: this.maxpoll,
      reach: this.reach,
      lastRx: this.lastRx,
      lastPacket: this.lastPacket ? { ...this.lastPacket } : null,
      lastSample: this.lastSample ? { ...this.lastSample } : null,
      totalTx: this.totalTx,
      totalRx: this.totalRx,
      totalValidRx: this.totalValidRx,
      ntpTests: this.tests,
      interleaved: this.lastInterleaved,
      kod: this.kod,
      burstRemaining: this.burstTotal,
      unreachableRun: this.unreachableRun,
    };
  }
}
