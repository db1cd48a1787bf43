/**
 * The NTP server over batched sockets (src/io/batch-udp.ts): answers a whole recvmmsg batch of
 * requests from the socket's RX slots into its TX slots, with the same results as
 * `NtpServer.handleRequest` on the same server (its client table, counters, options).
 *
 * A plain request (mode 3, NTPv1..4, exactly 48 bytes: no extension field, no MAC) on a server
 * without `smoothtime` offset or ntp.conf `restrict` limits is answered in place without
 * allocating: the address stays as words (access check, client table row), times stay as
 * doubles and NTP words, and the answer is a 24-byte template (rebuilt only when the reference
 * changes) patched with the request's version and poll plus three timestamps. A well-formed NTS
 * request (NTPv4, extension fields, no MAC) on such a server is answered in its slots too
 * (`answerNts`): the NTS authenticator reads the request where it lies and writes the answer
 * into the TX slot, only its AEAD views and the clock reading allocate. Everything else (v1
 * mode 0, MACs, malformed, smoothing, restrict) goes through `handleRequest` with strings and
 * bigints, and its answer is copied into the slot; mode 6 goes to `onOther`.
 *
 * Transmit timestamps: a basic answer gets TX_STAMP (the socket writes T3 next to sendmsg()),
 * and `sent()` saves that T3 as the client's TX time for interleaved mode; answers to clients
 * that may use interleaved mode ask for a kernel TX timestamp (TX_WANT_TIMESTAMP), which
 * `txStamps()` puts in place of it. Until then an interleaved answer's own TX time is its
 * request's RX time (it carries the previous answer's TX time, so it cannot be stamped).
 * With `sampleTxLatency`, a basic answer every 10 ms also asks for one, to learn how long after
 * T3 packets leave (`txLatency`, src/ntp/tx-latency.ts); the caller writes T3 that much later.
 *
 * TX timestamp ids are per socket: pass the socket to `txStamps` when one BatchServer serves
 * several sockets.
 */
import type { Endpoint, ReferenceState } from '../engine/types.js';
import type { Instant } from '../time/ntp-time.js';
import { NS_PER_S, instantToNtp64 } from '../time/ntp-time.js';
import type { NtpServer, ServerCounters } from './server.js';
import type { ClientTable } from './client-table.js';
import { ntpSeconds, writeNtpTime } from './client-table.js';
import { formatAddressWords } from './ipaddr.js';
import { encodePacket, MODE_CLIENT, MODE_CONTROL, MODE_SERVER, NTP_HEADER_LENGTH } from './packet.js';
import { TxLatency } from './tx-latency.js';

/** The socket buffers BatchServer works on (contract C1; src/io/batch-udp.ts implements it). */
export interface ServerBatchIo {
  readonly batch: number;
  readonly slotBytes: number;
  readonly rxData: Uint8Array;
  /** batch × 8: [len, family, port, a0, a1, a2, a3, flags] */
  readonly rxMeta: Int32Array;
  /** batch × 2: [unix seconds, nanoseconds] */
  readonly rxTime: Float64Array;
  readonly txData: Uint8Array;
  readonly txMeta: Int32Array;
  readonly txId: Int32Array;
}

export interface BatchServerOptions {
  /** Datagrams the NTP server does not answer itself (mode 6 → ntpq responder, ...): a copy. */
  onOther?(data: Uint8Array, from: Endpoint, rx: Instant): void;
  /**
   * The clock, for the transmit timestamp of answers that cannot be stamped at send time
   * (signed or smoothed ones, built by `handleRequest`); without it they carry the RX time.
   */
  now?(): Instant;
  /**
   * Learn the transmit latency (src/ntp/tx-latency.ts): a sample of basic answers asks for a
   * kernel TX stamp, and `txLatency.ns` is what the caller adds to the T3 offset.
   */
  sampleTxLatency?: boolean;
}

/** `SlotNtsAuthenticator.verify` outcomes. */
export const NTS_SLOT_OK = 0;
export const NTS_SLOT_NAK = 1;
export const NTS_SLOT_DROP = 2;

/**
 * An NTS ServerAuthenticator that works on the socket slots (src/nts/ntp-server.ts): the request
 * is read where it was received and the answer written into its TX slot, with the same results
 * as its `verifyRequest` + `sign`. Calls come in this order for one request, with no other
 * request in between: `scan`, `verify`, then `writeAnswer` + `sealSlot` (OK) or `writeNak` (NAK).
 */
export interface SlotNtsAuthenticator {
  /** False (nothing counted) unless the datagram is a MAC-less list of well-formed fields with an NTS one. */
  scan(data: Uint8Array, base: number, length: number): boolean;
  /** NTS_SLOT_OK, NTS_SLOT_NAK or NTS_SLOT_DROP (its reason counted by the authenticator). */
  verify(data: Uint8Array, base: number, length: number): number;
  /** Length of the answer (OK) / of the NAK's fields after the header. */
  answerBytes(): number;
  nakBytes(): number;
  writeAnswer(data: Uint8Array, base: number, out: Uint8Array, o: number): void;
  /** After the header is in place: seals the answer. */
  sealSlot(out: Uint8Array, o: number): void;
  writeNak(data: Uint8Array, base: number, out: Uint8Array, o: number): void;
}

/** The authenticator of the slot path, if the server has one (it also answers `slotNts()`, e.g. a wrapper). */
function slotNtsOf(server: NtpServer): SlotNtsAuthenticator | null {
  for (const a of server.opts.auth ?? []) {
    const x = a as Partial<SlotNtsAuthenticator> & { slotNts?: () => SlotNtsAuthenticator | null };
    if (typeof x.slotNts === 'function') return x.slotNts();
    if (typeof x.scan === 'function' && typeof x.verify === 'function' && typeof x.sealSlot === 'function') {
      return x as SlotNtsAuthenticator;
    }
  }
  return null;
}

// Slot metadata layout and flags (contract C1; the same values as src/io/batch-udp.ts).
const META_INTS = 8;
const M_LEN = 0;
const M_FAMILY = 1;
const M_PORT = 2;
const M_A0 = 3;
const M_FLAGS = 7;
const RX_TRUNCATED = 2;
const TX_STAMP = 1;
const TX_WANT_TIMESTAMP = 2;

/** First byte of an NTS request but its leap bits: NTPv4, mode 3 (client). */
const NTS_B0 = (4 << 3) | MODE_CLIENT;
/** Reference ids of KoD answers: "RATE", "NTSN". */
const KOD_RATE_BYTES = Uint8Array.of(0x52, 0x41, 0x54, 0x45);
const KOD_NTSN_BYTES = Uint8Array.of(0x4e, 0x54, 0x53, 0x4e);

/** TX-stamp ids remembered per socket (a power of 2); a stamp arriving later is ignored. */
const TX_RING = 4096;
/** Latency samples awaiting their TX stamp, per socket (a power of 2; ≤ 100 per second). */
const PROBE_RING = 64;
const FRAC_TO_NS = 1e9 / 2 ** 32;

interface TxRing {
  io: ServerBatchIo;
  ids: Int32Array;
  tags: Int32Array;
  /** Latency samples: TX-stamp id (-1: none), the T3 written (NTP seconds, fraction) and the compensation in it (ns). */
  probeIds: Int32Array;
  probeSec: Float64Array;
  probeFrac: Float64Array;
  probeComp: Float64Array;
}

export class BatchServer {
  private readonly table: ClientTable | undefined;
  private readonly counters: ServerCounters;
  /** Bytes 0..23 of every plain answer (version bits and poll patched per request). */
  private readonly template = new Uint8Array(24);
  private templateReady = false;
  private readonly refCache = {
    synchronized: false,
    leap: 0,
    stratum: 0,
    refId: 0,
    refTime: 0n,
    rootDelay: 0,
    rootDispersion: 0,
    precision: 0,
  };
  /** TX tag of the answer in each TX slot of the last `process` (0 = none), and its socket. */
  private slotTags = new Int32Array(0);
  /** 1 where the answer in that TX slot is a transmit-latency sample. */
  private slotProbe = new Uint8Array(0);
  /** The learnt transmit latency: the caller adds `txLatency.ns` to the T3 offset. */
  readonly txLatency = new TxLatency();
  private readonly sampling: boolean;
  private slotIo: ServerBatchIo | null = null;
  private slotCount = 0;
  private readonly rings: TxRing[] = [];
  /**
   * The RX time of the request being answered: [Unix seconds, ns (0 ≤ ns < 10^9)]. Numbers
   * beyond small integers stay in typed arrays on the plain path: passed to a function that is
   * not inlined, they would be boxed (allocated).
   */
  private readonly rxT = new Float64Array(2);
  /** The basic TX time of the NTS answer being built (NTP, 8 bytes). */
  private readonly t3 = new Uint8Array(8);
  private readonly nowT = new Float64Array(2);

  constructor(
    private readonly server: NtpServer,
    private readonly opts: BatchServerOptions = {},
  ) {
    this.table = server.table;
    this.counters = server.counters;
    this.sampling = opts.sampleTxLatency === true;
  }

  /**
   * Answers rx slots [0,n) into tx slots; returns how many tx slots to send. `offsetNs`: the
   * daemon clock minus CLOCK_REALTIME for this batch (0 for the system clock), applied to the RX
   * stamps (and the caller sets txOffsetNs[0] to it plus `txLatency.ns` for TX_STAMP).
   */
  process(io: ServerBatchIo, n: number, offsetNs: number, ref: ReferenceState): number {
    n = Math.min(n, io.batch);
    if (this.slotTags.length < io.batch) {
      this.slotTags = new Int32Array(io.batch);
      this.slotProbe = new Uint8Array(io.batch);
    }
    this.slotIo = io;
    this.updateTemplate(ref);
    const so = this.server.opts;
    const plainOk = !so.restrictLimit && (ref.smoothOffset ?? 0) === 0;
    const meta = io.rxMeta;
    const data = io.rxData;
    let out = 0;
    /** The NTS slot authenticator, looked up at the first NTS request of the batch (null: none, or not plainOk). */
    let nts: SlotNtsAuthenticator | null | undefined;
    for (let i = 0; i < n; i++) {
      const m = i * META_INTS;
      const len = meta[m + M_LEN]!;
      const off = i * io.slotBytes;
      // RX stamp + offset, normalised (offsetNs may be any integer).
      const ns = io.rxTime[2 * i + 1]! + offsetNs;
      let carry = Math.floor(ns / 1e9);
      let rest = ns - carry * 1e9;
      if (rest < 0) {
        rest += 1e9;
        carry--;
      } else if (rest >= 1e9) {
        rest -= 1e9;
        carry++;
      }
      this.rxT[0] = io.rxTime[2 * i]! + carry;
      this.rxT[1] = rest;
      const b0 = len > 0 ? data[off]! : 0;
      if (len > 0 && (b0 & 7) === MODE_CONTROL && this.opts.onOther) {
        this.opts.onOther(data.slice(off, off + len), this.endpoint(meta, m), this.rxInstant());
        continue;
      }
      this.slotTags[out] = 0;
      this.slotProbe[out] = 0;
      let answered: boolean;
      if (meta[m + M_FLAGS]! & RX_TRUNCATED) {
        answered = this.dropTruncated(meta, m, b0);
      } else {
        const version = (b0 >> 3) & 7;
        if (plainOk && len === 48 && (b0 & 7) === MODE_CLIENT && version >= 1 && version <= 4) {
          answered = this.answerPlain(io, i, out, version);
        } else {
          if (nts === undefined && plainOk && len > 48 && (b0 & 0x3f) === NTS_B0) nts = slotNtsOf(this.server);
          const candidate = nts && len > 48 && (b0 & 0x3f) === NTS_B0 ? nts : null;
          answered =
            candidate && candidate.scan(data, off, len)
              ? this.answerNts(io, i, out, candidate)
              : this.answerOther(io, i, out, ref);
        }
      }
      if (answered) out++;
    }
    this.slotCount = out;
    return out;
  }

  /** After the socket sent slots [0,count): remembers txId → client row for kernel TX stamps. */
  sent(io: ServerBatchIo, count: number): void {
    if (io !== this.slotIo || (!this.table && !this.sampling)) return;
    count = Math.min(count, this.slotCount);
    const ring = this.ringFor(io);
    const d = io.txData;
    for (let j = 0; j < count; j++) {
      if (this.slotProbe[j] && io.txId[j] !== -1) this.keepProbe(ring, io.txId[j]!, d, j * io.slotBytes + 40);
      const tag = this.slotTags[j]!;
      if (tag === 0 || !this.table) continue;
      const flags = io.txMeta[j * META_INTS + M_FLAGS]!;
      // The T3 the socket wrote is this answer's TX time until a kernel stamp refines it.
      if (flags & TX_STAMP) this.table.setTxAt(tag, d, j * io.slotBytes + 40);
      if (flags & TX_WANT_TIMESTAMP && io.txId[j] !== -1) {
        const k = io.txId[j]! & (TX_RING - 1);
        ring.ids[k] = io.txId[j]!;
        ring.tags[k] = tag;
      }
    }
  }

  /**
   * TX stamps from a 'tx' event: ids[i], times[2i..2i+1] = [unix s, ns]. `io`: the socket they
   * came from (needed only when this BatchServer serves several sockets).
   */
  txStamps(ids: Int32Array, times: Float64Array, n: number, offsetNs: number, io?: ServerBatchIo): void {
    if (!this.table && !this.sampling) return;
    let ring: TxRing | undefined;
    if (io) {
      for (let k = 0; k < this.rings.length; k++) if (this.rings[k]!.io === io) ring = this.rings[k];
    } else if (this.rings.length === 1) ring = this.rings[0];
    if (!ring) return;
    for (let i = 0; i < n; i++) {
      const id = ids[i]!;
      const p = id & (PROBE_RING - 1);
      if (ring.probeIds[p] === id) {
        ring.probeIds[p] = -1;
        // Kernel TX time (daemon timescale) − the uncompensated T3; the seconds differ by 0 or 1
        // (modulo 2^32: the NTP era).
        let ds = ntpSeconds(times[2 * i]!) - ring.probeSec[p]!;
        if (ds > 2 ** 31) ds -= 2 ** 32;
        else if (ds < -(2 ** 31)) ds += 2 ** 32;
        this.txLatency.add(
          ds * 1e9 + times[2 * i + 1]! + offsetNs - ring.probeFrac[p]! * FRAC_TO_NS + ring.probeComp[p]!,
        );
      }
      if (!this.table) continue;
      const k = id & (TX_RING - 1);
      const tag = ring.tags[k]!;
      if (tag === 0 || ring.ids[k] !== id) continue;
      ring.tags[k] = 0;
      this.table.refineTxTime(tag, times[2 * i]!, times[2 * i + 1]! + offsetNs);
    }
  }

  /** Client-table row of the last admitted request (-1 without a table) and whether it earned a KoD. */
  private admittedEntry = -1;
  private admittedKod = false;

  /**
   * What every answer path does first, without allocation: count the request, check access,
   * touch the client table and apply the rate limit. False when the request is dropped.
   */
  private admit(meta: Int32Array, m: number): boolean {
    const c = this.counters;
    const so = this.server.opts;
    const family = meta[m + M_FAMILY] === 4 ? 4 : 6;
    c.received++;
    const a = m + M_A0;
    const allowed = so.accessWordsAt
      ? so.accessWordsAt(family, meta, a)
      : so.accessWords
        ? so.accessWords(family, meta[a]!, meta[a + 1]!, meta[a + 2]!, meta[a + 3]!)
        : so.access(formatAddressWords(family, meta[a]!, meta[a + 1]!, meta[a + 2]!, meta[a + 3]!));
    if (!allowed) {
      c.drop('denied', undefined, -1);
      return false;
    }
    const table = this.table;
    const rate = so.ratelimit;
    const entry = table ? table.touchWords(family, meta, a, this.rxT, 0, rate?.burst ?? 0) : -1;
    this.admittedEntry = entry;
    this.admittedKod = false;
    if (rate) {
      const d = table!.limitRate(entry, rate, so.random);
      if (d === 'drop') {
        c.drop('ratelimit', table, entry);
        return false;
      }
      this.admittedKod = d === 'kod';
    }
    return true;
  }

  /** The plain path: no allocation. Returns whether tx slot `j` holds an answer. */
  private answerPlain(io: ServerBatchIo, i: number, j: number, version: number): boolean {
    const c = this.counters;
    const meta = io.rxMeta;
    const m = i * META_INTS;
    if (!this.admit(meta, m)) return false;
    const table = this.table;
    const entry = this.admittedEntry;
    const kod = this.admittedKod;

    const rq = io.rxData;
    const ro = i * io.slotBytes;
    const tx = io.txData;
    const to = j * io.slotBytes;
    const logging = this.server.logging && entry >= 0;
    const interleaved =
      logging &&
      version === 4 &&
      nonZero8(rq, ro + 24) &&
      table!.rxNtpIsAt(entry, rq, ro + 24) &&
      !equal8(rq, ro + 32, ro + 40);

    // Header from the template; version, poll and (KoD) leap, stratum, refid patched.
    const t = this.template;
    for (let b = 0; b < 24; b++) tx[to + b] = t[b]!;
    tx[to] = t[0]! | (version << 3);
    tx[to + 2] = rq[ro + 2]!;
    if (kod) {
      tx[to] = (3 << 6) | (version << 3) | MODE_SERVER;
      tx[to + 1] = 0;
      tx[to + 12] = 0x52; // "RATE"
      tx[to + 13] = 0x41;
      tx[to + 14] = 0x54;
      tx[to + 15] = 0x45;
    }
    // Origin: the request's transmit (basic) or receive (interleaved) timestamp.
    const org = interleaved ? ro + 32 : ro + 40;
    for (let b = 0; b < 8; b++) tx[to + 24 + b] = rq[org + b]!;
    writeNtpTime(tx, to + 32, this.rxT, 0);
    if (interleaved) {
      c.interleaved++;
      table!.markInterleaved(entry);
      table!.copyTxNtp(entry, tx, to + 40); // the previous answer's TX time
    } else {
      for (let b = 0; b < 8; b++) tx[to + 40 + b] = tx[to + 32 + b]!; // the socket writes T3 here
    }

    let flags = interleaved ? 0 : TX_STAMP;
    if (!interleaved && this.sampling && this.txLatency.due(this.rxT)) {
      flags |= TX_WANT_TIMESTAMP;
      this.slotProbe[j] = 1;
    }
    if (logging) {
      this.slotTags[j] = table!.saveAnswerAt(entry, tx, to + 32, 0);
      if (interleaved || mayInterleave(rq, ro) || table!.interleavedSeen(entry)) flags |= TX_WANT_TIMESTAMP;
    }
    this.writeTxMeta(io, i, j, 48, flags);
    return true;
  }

  /**
   * An NTS request (`scan` accepted it) answered in its slots: the same checks, counters, client
   * table and answer as `handleRequest` with the NTS authenticator, without decoding the
   * datagram into objects. Returns whether tx slot `j` holds an answer.
   */
  private answerNts(io: ServerBatchIo, i: number, j: number, nts: SlotNtsAuthenticator): boolean {
    const c = this.counters;
    const meta = io.rxMeta;
    const m = i * META_INTS;
    if (!this.admit(meta, m)) return false;
    const table = this.table;
    const entry = this.admittedEntry;
    const kod = this.admittedKod;
    c.authReceived++;
    const rq = io.rxData;
    const ro = i * io.slotBytes;
    const len = meta[m + M_LEN]!;
    const verdict = nts.verify(rq, ro, len);
    if (verdict === NTS_SLOT_DROP) {
      c.drop('auth', table, entry);
      return false;
    }
    const nak = verdict === NTS_SLOT_NAK;
    const tx = io.txData;
    const to = j * io.slotBytes;
    const answerLength = nak ? NTP_HEADER_LENGTH + nts.nakBytes() : nts.answerBytes();
    if (answerLength > io.slotBytes) return false; // never: an answer is no longer than its request
    if (nak) nts.writeNak(rq, ro, tx, to);
    else nts.writeAnswer(rq, ro, tx, to);

    const logging = this.server.logging && entry >= 0;
    const interleaved =
      logging && nonZero8(rq, ro + 24) && table!.rxNtpIsAt(entry, rq, ro + 24) && !equal8(rq, ro + 32, ro + 40);
    // Header from the template (version 4, the request's poll); KoD RATE / NTSN patched.
    const t = this.template;
    for (let b = 0; b < 24; b++) tx[to + b] = t[b]!;
    tx[to] = t[0]! | (4 << 3);
    tx[to + 2] = rq[ro + 2]!;
    if (kod || nak) {
      tx[to] = (3 << 6) | (4 << 3) | MODE_SERVER;
      tx[to + 1] = 0;
      const code = nak ? KOD_NTSN_BYTES : KOD_RATE_BYTES;
      for (let b = 0; b < 4; b++) tx[to + 12 + b] = code[b]!;
    }
    const org = interleaved ? ro + 32 : ro + 40;
    for (let b = 0; b < 8; b++) tx[to + 24 + b] = rq[org + b]!;
    writeNtpTime(tx, to + 32, this.rxT, 0);
    // T3 of a signed answer: the clock now, just before the seal (it cannot be stamped later).
    const t3 = this.t3;
    if (!this.opts.now) {
      for (let b = 0; b < 8; b++) t3[b] = tx[to + 32 + b]!;
    } else {
      // As [s, ns] doubles: three bigint operations instead of instantToNtp64's fifteen.
      const now = this.opts.now();
      const sec = now / NS_PER_S;
      let ns = Number(now - sec * NS_PER_S);
      let s = Number(sec);
      if (ns < 0) {
        ns += 1e9;
        s--;
      }
      this.nowT[0] = s;
      this.nowT[1] = ns;
      writeNtpTime(t3, 0, this.nowT, 0);
    }
    if (interleaved) {
      c.interleaved++;
      table!.markInterleaved(entry);
      table!.copyTxNtp(entry, tx, to + 40); // the previous answer's TX time
    } else {
      for (let b = 0; b < 8; b++) tx[to + 40 + b] = t3[b]!; // a NAK's: the socket writes T3 here
    }
    if (!nak) nts.sealSlot(tx, to);

    let flags = nak && !interleaved ? TX_STAMP : 0;
    if (logging) {
      const tag = table!.saveAnswerAt(entry, tx, to + 32, 0);
      table!.setTxAt(tag, t3, 0);
      this.slotTags[j] = tag;
      if (interleaved || mayInterleave(rq, ro) || table!.interleavedSeen(entry)) flags |= TX_WANT_TIMESTAMP;
    }
    this.writeTxMeta(io, i, j, answerLength, flags);
    return true;
  }

  /** Everything but the plain path: `handleRequest`, its answer copied into tx slot `j`. */
  private answerOther(io: ServerBatchIo, i: number, j: number, ref: ReferenceState): boolean {
    const m = i * META_INTS;
    const len = Math.max(0, Math.min(io.rxMeta[m + M_LEN]!, io.slotBytes));
    const ro = i * io.slotBytes;
    const rq = io.rxData;
    const rx = this.rxInstant();
    const out = this.server.handleRequest(
      rq.slice(ro, ro + len),
      this.endpoint(io.rxMeta, m),
      rx,
      this.opts.now?.() ?? rx,
      ref,
    );
    if (!out || out.data.length > io.slotBytes) return false;
    io.txData.set(out.data, j * io.slotBytes);
    let flags = out.stampTransmit ? TX_STAMP : 0;
    const tag = out.txTag ?? 0;
    if (tag !== 0) {
      this.slotTags[j] = tag;
      const slot = this.table!.tagSlot(tag);
      const may = len >= 48 && mayInterleave(rq, ro);
      if (may || (slot >= 0 && this.table!.interleavedSeen(slot))) flags |= TX_WANT_TIMESTAMP;
    }
    this.writeTxMeta(io, i, j, out.data.length, flags);
    return true;
  }

  /**
   * A datagram longer than the slot: counted as `handleRequest` would count it whole (denied,
   * bad version or mode, else oversize — exact when slots hold MAX_PACKET_LENGTH bytes).
   */
  private dropTruncated(meta: Int32Array, m: number, b0: number): false {
    const c = this.counters;
    c.received++;
    const from = this.endpoint(meta, m);
    const version = (b0 >> 3) & 7;
    const mode = b0 & 7;
    let reason = 'oversize';
    if (!this.server.opts.access(from.address)) reason = 'denied';
    else if (version < 1 || version > 4) reason = 'version';
    else if (mode === 6 || mode === 7) reason = 'mode';
    c.drop(reason, undefined, -1);
    return false;
  }

  private writeTxMeta(io: ServerBatchIo, i: number, j: number, len: number, flags: number): void {
    const rm = io.rxMeta;
    const tm = io.txMeta;
    const r = i * META_INTS;
    const t = j * META_INTS;
    tm[t + M_LEN] = len;
    tm[t + M_FAMILY] = rm[r + M_FAMILY]!;
    tm[t + M_PORT] = rm[r + M_PORT]!;
    tm[t + M_A0] = rm[r + M_A0]!;
    tm[t + M_A0 + 1] = rm[r + M_A0 + 1]!;
    tm[t + M_A0 + 2] = rm[r + M_A0 + 2]!;
    tm[t + M_A0 + 3] = rm[r + M_A0 + 3]!;
    tm[t + M_FLAGS] = flags;
  }

  private rxInstant(): Instant {
    return BigInt(this.rxT[0]!) * NS_PER_S + BigInt(this.rxT[1]!);
  }

  private endpoint(meta: Int32Array, m: number): Endpoint {
    const family = meta[m + M_FAMILY] === 4 ? 4 : 6;
    const a = m + M_A0;
    return {
      address: formatAddressWords(family, meta[a]!, meta[a + 1]!, meta[a + 2]!, meta[a + 3]!),
      port: meta[m + M_PORT]!,
    };
  }

  private ringFor(io: ServerBatchIo): TxRing {
    for (let k = 0; k < this.rings.length; k++) if (this.rings[k]!.io === io) return this.rings[k]!;
    const r: TxRing = {
      io,
      ids: new Int32Array(TX_RING),
      tags: new Int32Array(TX_RING),
      probeIds: new Int32Array(PROBE_RING).fill(-1),
      probeSec: new Float64Array(PROBE_RING),
      probeFrac: new Float64Array(PROBE_RING),
      probeComp: new Float64Array(PROBE_RING),
    };
    this.rings.push(r);
    return r;
  }

  /** Remembers a latency sample's T3 (NTP, at d[o..o+8]) until its kernel TX stamp comes. */
  private keepProbe(ring: TxRing, id: number, d: Uint8Array, o: number): void {
    const p = id & (PROBE_RING - 1);
    ring.probeIds[p] = id;
    ring.probeSec[p] = ((d[o]! << 24) | (d[o + 1]! << 16) | (d[o + 2]! << 8) | d[o + 3]!) >>> 0;
    ring.probeFrac[p] = ((d[o + 4]! << 24) | (d[o + 5]! << 16) | (d[o + 6]! << 8) | d[o + 7]!) >>> 0;
    ring.probeComp[p] = this.txLatency.ns;
  }

  /** Rebuilds the answer template when a field of the reference state changed. */
  private updateTemplate(ref: ReferenceState): void {
    const c = this.refCache;
    if (
      this.templateReady &&
      c.synchronized === ref.synchronized &&
      c.leap === ref.leap &&
      c.stratum === ref.stratum &&
      c.refId === ref.refId &&
      c.refTime === ref.refTime &&
      c.rootDelay === ref.rootDelay &&
      c.rootDispersion === ref.rootDispersion &&
      c.precision === ref.precision
    ) {
      return;
    }
    this.templateReady = true;
    c.synchronized = ref.synchronized;
    c.leap = ref.leap;
    c.stratum = ref.stratum;
    c.refId = ref.refId;
    c.refTime = ref.refTime;
    c.rootDelay = ref.rootDelay;
    c.rootDispersion = ref.rootDispersion;
    c.precision = ref.precision;
    // The same fields as handleRequest's answer (version 0 and poll 0: patched per request).
    const sync = ref.synchronized;
    const header = encodePacket({
      leap: sync ? ref.leap : 3,
      version: 0,
      mode: MODE_SERVER,
      stratum: sync && ref.stratum > 0 && ref.stratum < 16 ? ref.stratum : 0,
      poll: 0,
      precision: ref.precision,
      rootDelay: sync ? ref.rootDelay : 1,
      rootDispersion: sync ? ref.rootDispersion : 1,
      refId: sync ? ref.refId >>> 0 : 0,
      refTime: sync && ref.refTime !== 0n ? instantToNtp64(ref.refTime) : 0n,
      origin: 0n,
      receive: 0n,
      transmit: 0n,
      extensions: [],
    });
    this.template.set(header.subarray(0, 24));
  }
}

/**
 * Whether the request at b[o..] has receive and transmit timestamps both set and different, as
 * chrony's xleave client sends.
 */
function mayInterleave(b: Uint8Array, o: number): boolean {
  let rcv = 0;
  let xmt = 0;
  let diff = 0;
  for (let k = 0; k < 8; k++) {
    rcv |= b[o + 32 + k]!;
    xmt |= b[o + 40 + k]!;
    diff |= b[o + 32 + k]! ^ b[o + 40 + k]!;
  }
  return rcv !== 0 && xmt !== 0 && diff !== 0;
}

function nonZero8(b: Uint8Array, o: number): boolean {
  let v = 0;
  for (let k = 0; k < 8; k++) v |= b[o + k]!;
  return v !== 0;
}

function equal8(b: Uint8Array, x: number, y: number): boolean {
  let v = 0;
  for (let k = 0; k < 8; k++) v |= b[x + k]! ^ b[y + k]!;
  return v === 0;
}
