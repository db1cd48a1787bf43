/**
 * The NTP server's per-client table: one compact record per source address, shared by the client
 * log (`clients`, interleaved mode) and the `ratelimit` token bucket, as chrony's clientlog.c.
 *
 * Memory is the point. A spoofed flood brings a new address with every packet, so the table holds
 * at most `limit` records (least recently seen evicted) and each record is a row of typed-array
 * columns; columns grow by doubling up to `limit`, so a small server does not pay for a large
 * limit. Speed is the other point: the batched server path (src/ntp/server-batch.ts) looks rows up
 * by the address as words (family + 4 × 32 bits, src/ntp/ipaddr.ts) in an open-addressing hash
 * index held in a typed array, and keeps every instant as a double or as NTP words, so a request
 * costs no string, no bigint and no object. The string API (`touch(address)`, `rows()`) converts.
 *
 * Times: first/last/previous seen are nanoseconds since the table's epoch (a whole Unix second,
 * set by the first request) in Float64 columns, exact within 2^53 ns (104 days) of it; a request
 * more than 52 days from the epoch moves it there and rebases the columns (older times then keep
 * their nanoseconds only to within a few). The receive timestamp of the last answer and the
 * transmit time saved for interleaved mode are kept as the NTP 64-bit wire values (two Uint32
 * columns each), exactly what the next interleaved answer sends.
 *
 * Hash flooding: the hash is seeded per table, and linear probing at a load of at most 1/2 keeps
 * lookups short; a row's key never changes while it is in the index.
 */
import type { Instant, Ntp64 } from '../time/ntp-time.js';
import { NS_PER_S, addSeconds, instantToNtp64, ntp64ToInstant } from '../time/ntp-time.js';
import { formatAddressWords, parseAddressWords } from './ipaddr.js';

/** "No instant" in the Float64 time columns. */
const NO_TIME = -Infinity;
/** Rebase the epoch before the time columns lose integer nanoseconds (2^52 ns, 52 days). */
const REBASE_S = 4_503_599;
/**
 * Bytes per row of the columns below: key (family byte + 4 × Int32), flags, three Float64 times,
 * Float64 tokens and smoothing offset, rx and tx NTP words (4 × Uint32), hits, drops, tag, LRU
 * prev/next (5 × Int32).
 */
const ROW_BYTES = 1 + 16 + 1 + 3 * 8 + 2 * 8 + 4 * 4 + 5 * 4;
const FIRST_CAPACITY = 1024;

/** Row kinds: the address family, or NAME for keys that are not IP addresses (simulated nodes). */
const NAME = 0;
/** Row flags. */
const ANSWERED = 1; // an answer was built: rx/tx words are valid
const INTERLEAVED = 2; // the client has had an interleaved answer

export interface RateBucketOptions {
  interval: number; // log2 s
  burst: number;
  leak: number;
  kod: number;
}

export type RateDecision = 'answer' | 'drop' | 'kod';

export class ClientTable {
  private capacity = 0;
  private used = 0;
  private count = 0;
  private readonly seed: number;
  /** Epoch of the time columns, whole Unix seconds; NaN until the first request. */
  private epochS = NaN;
  private epochNs = 0n;
  // Key columns (row = slot).
  private kind = new Uint8Array(0);
  private words = new Int32Array(0);
  /** Hash index: slot + 1 per cell, 0 = empty; a power of 2 at least twice the capacity. */
  private index = new Int32Array(0);
  private indexMask = 0;
  /** Keys that are not IP addresses, and their rows (few: the simulator names its nodes). */
  private readonly nameSlots = new Map<string, number>();
  private readonly slotNames = new Map<number, string>();
  // Data columns.
  private flags = new Uint8Array(0);
  private firstSeen = new Float64Array(0);
  private lastSeen = new Float64Array(0);
  private prevSeen = new Float64Array(0);
  private tokensCol = new Float64Array(0);
  private smoothCol = new Float64Array(0);
  private rxHi = new Uint32Array(0);
  private rxLo = new Uint32Array(0);
  private txHi = new Uint32Array(0);
  private txLo = new Uint32Array(0);
  private hitsCol = new Int32Array(0);
  private dropsCol = new Int32Array(0);
  private tagCol = new Int32Array(0);
  /** LRU list: prev = more recently seen, next = less recently seen; -1 ends it. */
  private prev = new Int32Array(0);
  private next = new Int32Array(0);
  private head = -1;
  private tail = -1;
  private tagSeq = 0;
  private readonly scratch = new Int32Array(4);
  /** The time of the request being recorded, ns since the epoch (a typed array: no boxing). */
  private readonly at = new Float64Array(1);
  /** Records evicted to make room (chrony's "Client log records dropped"). */
  evicted = 0;

  /** `seed` keys the hash (default: random), so addresses colliding on purpose cannot be chosen. */
  constructor(
    readonly limit: number,
    seed?: number,
  ) {
    if (!(limit >= 1 && limit <= 2 ** 24)) throw new RangeError('client table limit must be 1..2^24');
    this.seed = (seed ?? Math.random() * 2 ** 32) | 0;
  }

  get size(): number {
    return this.count;
  }

  /**
   * Records a request from `address` at `rx` and returns its row: an existing one (moved to the
   * front), else a new one, evicting the least recently seen address when the table is full.
   */
  touch(address: string, rx: Instant, burst: number): number {
    if (this.epochS !== this.epochS) this.setEpoch(Number(rx / NS_PER_S));
    let at = Number(rx - this.epochNs);
    if (Math.abs(at) > REBASE_S * 1e9) {
      this.rebase(Number(rx / NS_PER_S) - this.epochS);
      at = Number(rx - this.epochNs);
    }
    this.at[0] = at;
    const w = this.scratch;
    const family = address.includes('%') ? 0 : parseAddressWords(address, w, 0);
    if (family === 0) return this.touchName(address, burst);
    return this.lookup(family, w, 0, burst);
  }

  /**
   * `touch` for the address `words[off..off+3]` of `family` (src/ntp/ipaddr.ts) received at
   * `time[ti]` Unix seconds + `time[ti+1]` nanoseconds (0 ≤ ns < 10^9). The hot path: numbers
   * that may not fit a small integer travel in typed arrays, so nothing is allocated.
   */
  touchWords(family: 4 | 6, words: Int32Array, off: number, time: Float64Array, ti: number, burst: number): number {
    const unixS = time[ti]!;
    if (this.epochS !== this.epochS) this.setEpoch(unixS);
    let at = (unixS - this.epochS) * 1e9 + time[ti + 1]!;
    if (Math.abs(at) > REBASE_S * 1e9) {
      // The same test as `touch`, so both paths move the epoch at the same request.
      this.rebase(unixS - this.epochS);
      at = time[ti + 1]!;
    }
    this.at[0] = at;
    return this.lookup(family, words, off, burst);
  }

  /** The row of an IP address key (found or made), seen at `at[0]`. */
  private lookup(family: number, words: Int32Array, off: number, burst: number): number {
    const a0 = words[off]!;
    const a1 = words[off + 1]!;
    const a2 = words[off + 2]!;
    const a3 = words[off + 3]!;
    const h = this.hashAt(family, words, off);
    const ws = this.words;
    for (let i = h & this.indexMask; this.index.length > 0; i = (i + 1) & this.indexMask) {
      const cell = this.index[i]!;
      if (cell === 0) break;
      const s = cell - 1;
      const k = 4 * s;
      if (ws[k] === a0 && ws[k + 1] === a1 && ws[k + 2] === a2 && ws[k + 3] === a3 && this.kind[s] === family) {
        this.seen(s);
        return s;
      }
    }
    const slot = this.newRow(family, burst);
    const k = 4 * slot;
    this.words[k] = a0;
    this.words[k + 1] = a1;
    this.words[k + 2] = a2;
    this.words[k + 3] = a3;
    this.insertIndex(slot, h & this.indexMask);
    return slot;
  }

  private touchName(name: string, burst: number): number {
    const s = this.nameSlots.get(name);
    if (s !== undefined) {
      this.seen(s);
      return s;
    }
    const slot = this.newRow(NAME, burst);
    this.nameSlots.set(name, slot);
    this.slotNames.set(slot, name);
    return slot;
  }

  /** A request from the client of row `s` at `at[0]`. */
  private seen(s: number): void {
    this.prevSeen[s] = this.lastSeen[s]!;
    this.lastSeen[s] = this.at[0]!;
    this.hitsCol[s] = Math.min(this.hitsCol[s]! + 1, 0x7fff_ffff);
    if (this.head !== s) {
      this.unlink(s);
      this.pushFront(s);
    }
  }

  /** A fresh row first seen at `at[0]` (the least recently seen one when full), at the front, key not set. */
  private newRow(kind: number, burst: number): number {
    let slot: number;
    if (this.count >= this.limit) {
      slot = this.tail;
      this.unlink(slot);
      this.forget(slot);
      this.evicted++;
    } else {
      if (this.used === this.capacity) this.grow();
      slot = this.used++;
      this.count++;
    }
    const at = this.at[0]!;
    this.kind[slot] = kind;
    this.flags[slot] = 0;
    this.firstSeen[slot] = at;
    this.lastSeen[slot] = at;
    this.prevSeen[slot] = NO_TIME;
    this.tokensCol[slot] = burst;
    this.smoothCol[slot] = 0;
    this.rxHi[slot] = 0;
    this.rxLo[slot] = 0;
    this.txHi[slot] = 0;
    this.txLo[slot] = 0;
    this.hitsCol[slot] = 1;
    this.dropsCol[slot] = 0;
    this.tagCol[slot] = 0;
    this.pushFront(slot);
    return slot;
  }

  /** Removes the key of `slot` (about to be reused) from its index. */
  private forget(slot: number): void {
    if (this.kind[slot] === NAME) {
      this.nameSlots.delete(this.slotNames.get(slot)!);
      this.slotNames.delete(slot);
      return;
    }
    const mask = this.indexMask;
    let i = this.hashOf(slot) & mask;
    while (this.index[i] !== slot + 1) i = (i + 1) & mask;
    // Backward-shift deletion: move later cells of the probe run into the gap when their home
    // position does not lie cyclically in (gap, cell].
    for (let j = (i + 1) & mask; this.index[j] !== 0; j = (j + 1) & mask) {
      const home = this.hashOf(this.index[j]! - 1) & mask;
      const inRange = i <= j ? home > i && home <= j : home > i || home <= j;
      if (!inRange) {
        this.index[i] = this.index[j]!;
        i = j;
      }
    }
    this.index[i] = 0;
  }

  /** Puts `slot` in the index, probing from cell `i`. */
  private insertIndex(slot: number, i: number): void {
    while (this.index[i] !== 0) i = (i + 1) & this.indexMask;
    this.index[i] = slot + 1;
  }

  private hashOf(s: number): number {
    return this.hashAt(this.kind[s]!, this.words, 4 * s);
  }

  /** Seeded murmur3-style hash of a key, 30 bits (a small integer: returning it allocates nothing). */
  private hashAt(family: number, words: Int32Array, off: number): number {
    let h = this.seed ^ family;
    for (let i = 0; i < 4; i++) {
      let k = Math.imul(words[off + i]!, 0xcc9e_2d51);
      k = (k << 15) | (k >>> 17);
      h ^= Math.imul(k, 0x1b87_3593);
      h = (h << 13) | (h >>> 19);
      h = (Math.imul(h, 5) + 0xe654_6b64) | 0;
    }
    h ^= h >>> 16;
    h = Math.imul(h, 0x85eb_ca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2_ae35);
    return (h ^ (h >>> 16)) & 0x3fff_ffff;
  }

  /**
   * chrony's ratelimit for the request just recorded in `slot`: the bucket refills at one token
   * per 2^interval s since the previous request, up to `burst`. Without a token, the request is
   * answered anyway with probability 2^-leak (the bucket is then emptied), else gets KoD RATE with
   * probability 2^-kod (kod > 0), else is dropped.
   */
  limitRate(slot: number, o: RateBucketOptions, random: () => number): RateDecision {
    const prev = this.prevSeen[slot]!;
    let tokens = this.tokensCol[slot]!;
    if (prev !== NO_TIME) {
      const elapsed = Math.max(0, (this.lastSeen[slot]! - prev) / 1e9);
      tokens = Math.min(o.burst, tokens + elapsed * 2 ** -o.interval);
    }
    if (tokens >= 1) {
      this.tokensCol[slot] = tokens - 1;
      return 'answer';
    }
    this.tokensCol[slot] = tokens;
    if (random() < 2 ** -o.leak) {
      this.tokensCol[slot] = 0;
      return 'answer';
    }
    return o.kod > 0 && random() < 2 ** -o.kod ? 'kod' : 'drop';
  }

  countDrop(slot: number): void {
    this.dropsCol[slot] = Math.min(this.dropsCol[slot]! + 1, 0x7fff_ffff);
  }

  /** Whether an answer to this client was built (its rx and tx words are then valid). */
  answered(slot: number): boolean {
    return (this.flags[slot]! & ANSWERED) !== 0;
  }

  /** Whether this client has had an interleaved answer. */
  interleavedSeen(slot: number): boolean {
    return (this.flags[slot]! & INTERLEAVED) !== 0;
  }

  markInterleaved(slot: number): void {
    this.flags[slot]! |= INTERLEAVED;
  }

  /** Receive timestamp of the last answer to this client, as sent (0 if none). */
  rxNtp(slot: number): Ntp64 {
    return this.answered(slot) ? words64(this.rxHi[slot]!, this.rxLo[slot]!) : 0n;
  }

  /** Whether the receive timestamp of the last answer to this client is the one at b[off..off+7]. */
  rxNtpIsAt(slot: number, b: Uint8Array, off: number): boolean {
    return (
      (this.flags[slot]! & ANSWERED) !== 0 &&
      ((b[off]! << 24) | (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!) === (this.rxHi[slot]! | 0) &&
      ((b[off + 4]! << 24) | (b[off + 5]! << 16) | (b[off + 6]! << 8) | b[off + 7]!) === (this.rxLo[slot]! | 0)
    );
  }

  /** Writes the saved transmit timestamp of the last answer to this client at b[off..off+7]. */
  copyTxNtp(slot: number, b: Uint8Array, off: number): void {
    const hi = this.txHi[slot]!;
    const lo = this.txLo[slot]!;
    b[off] = hi >>> 24;
    b[off + 1] = (hi >>> 16) & 0xff;
    b[off + 2] = (hi >>> 8) & 0xff;
    b[off + 3] = hi & 0xff;
    b[off + 4] = lo >>> 24;
    b[off + 5] = (lo >>> 16) & 0xff;
    b[off + 6] = (lo >>> 8) & 0xff;
    b[off + 7] = lo & 0xff;
  }

  /** The saved transmit timestamp of the last answer to this client, or null. */
  txNtp(slot: number): Ntp64 | null {
    return this.answered(slot) ? words64(this.txHi[slot]!, this.txLo[slot]!) : null;
  }

  /** Transmit time of the last answer to this client, or null. */
  lastTx(slot: number): Instant | null {
    const ts = this.txNtp(slot);
    return ts === null ? null : ntp64ToInstant(ts, this.epochNs + BigInt(this.lastSeen[slot]!));
  }

  /**
   * Saves what interleaved mode needs about the answer just built for this client and returns its
   * TX tag (non-zero; the row is encoded in it, so no second map is needed).
   */
  saveAnswer(slot: number, rxNtp: Ntp64, tx: Instant, smooth: number): number {
    return this.saveAnswerNtp(slot, rxNtp, instantToNtp64(tx), smooth);
  }

  /** `saveAnswer` with the TX time as an NTP timestamp. */
  saveAnswerNtp(slot: number, rxNtp: Ntp64, txNtp: Ntp64, smooth: number): number {
    split64(rxNtp, this.rxHi, this.rxLo, slot);
    split64(txNtp, this.txHi, this.txLo, slot);
    return this.saved(slot, smooth);
  }

  /**
   * `saveAnswer` for an answer whose receive timestamp is at b[off..off+7]; that is also its TX
   * time until `setTxAt` or `refineTxTime` gives a better one.
   */
  saveAnswerAt(slot: number, b: Uint8Array, off: number, smooth: number): number {
    this.rxHi[slot] = this.txHi[slot] = (b[off]! << 24) | (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!;
    this.rxLo[slot] = this.txLo[slot] = (b[off + 4]! << 24) | (b[off + 5]! << 16) | (b[off + 6]! << 8) | b[off + 7]!;
    return this.saved(slot, smooth);
  }

  private saved(slot: number, smooth: number): number {
    this.smoothCol[slot] = smooth;
    this.flags[slot]! |= ANSWERED;
    this.tagSeq = this.tagSeq >= 63 ? 1 : this.tagSeq + 1;
    const tag = slot * 64 + this.tagSeq;
    this.tagCol[slot] = tag;
    return tag;
  }

  /** The row of a live TX tag, or -1 if the row now belongs to a later answer or address. */
  tagSlot(tag: number): number {
    const slot = Math.floor(tag / 64);
    return tag > 0 && slot < this.used && this.tagCol[slot] === tag ? slot : -1;
  }

  /** The kernel TX time of the answer tagged `tag`, if that row still belongs to the same answer. */
  refineTx(tag: number, tx: (smooth: number) => Instant): void {
    const slot = this.tagSlot(tag);
    if (slot < 0) return;
    split64(instantToNtp64(tx(this.smoothCol[slot]!)), this.txHi, this.txLo, slot);
  }

  /**
   * `refineTx` for a TX time of `unixS` s + `ns` ns (integers; ns any value, normalised here):
   * no bigint unless the answer was smoothed.
   */
  refineTxTime(tag: number, unixS: number, ns: number): void {
    const slot = this.tagSlot(tag);
    if (slot < 0) return;
    const smooth = this.smoothCol[slot]!;
    if (smooth !== 0) {
      this.refineTx(tag, () => addSeconds(BigInt(unixS) * NS_PER_S + BigInt(ns), -smooth));
      return;
    }
    const carry = Math.floor(ns / 1e9);
    setNtpWords(this.txHi, this.txLo, slot, unixS + carry, ns - carry * 1e9);
  }

  /** Sets the TX time of the answer tagged `tag` to the NTP timestamp at b[off..off+7] (the T3 it carried). */
  setTxAt(tag: number, b: Uint8Array, off: number): void {
    const slot = this.tagSlot(tag);
    if (slot < 0) return;
    this.txHi[slot] = (b[off]! << 24) | (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!;
    this.txLo[slot] = (b[off + 4]! << 24) | (b[off + 5]! << 16) | (b[off + 6]! << 8) | b[off + 7]!;
  }

  /** Rows from the most to the least recently seen. */
  *rows(): Generator<ClientRow> {
    for (let s = this.head; s !== -1; s = this.next[s]!) {
      const prev = this.prevSeen[s]!;
      yield {
        address: this.addressOf(s),
        hits: this.hitsCol[s]!,
        drops: this.dropsCol[s]!,
        firstSeen: this.instant(this.firstSeen[s]!),
        lastSeen: this.instant(this.lastSeen[s]!),
        prevSeen: prev === NO_TIME ? null : this.instant(prev),
        answered: this.answered(s),
      };
    }
  }

  /** Estimated memory held, in bytes (the columns and hash index as allocated, plus names). */
  memoryBytes(): number {
    return this.capacity * ROW_BYTES + this.index.length * 4 + this.slotNames.size * 120;
  }

  private addressOf(s: number): string {
    if (this.kind[s] === NAME) return this.slotNames.get(s)!;
    const k = 4 * s;
    const w = this.words;
    return formatAddressWords(this.kind[s]!, w[k]!, w[k + 1]!, w[k + 2]!, w[k + 3]!);
  }

  private instant(at: number): Instant {
    return this.epochNs + BigInt(at);
  }

  private setEpoch(unixS: number): void {
    this.epochS = unixS;
    this.epochNs = BigInt(unixS) * NS_PER_S;
  }

  /** Moves the epoch `shiftS` seconds and rebases every row (once per 52 days). */
  private rebase(shiftS: number): void {
    const shift = shiftS * 1e9;
    this.setEpoch(this.epochS + shiftS);
    for (let s = 0; s < this.used; s++) {
      this.firstSeen[s] = this.firstSeen[s]! - shift;
      this.lastSeen[s] = this.lastSeen[s]! - shift;
      this.prevSeen[s] = this.prevSeen[s]! - shift;
    }
  }

  private grow(): void {
    const cap = Math.min(this.limit, Math.max(FIRST_CAPACITY, this.capacity * 2));
    this.kind = copy(new Uint8Array(cap), this.kind);
    this.words = copy(new Int32Array(4 * cap), this.words);
    this.flags = copy(new Uint8Array(cap), this.flags);
    this.firstSeen = copy(new Float64Array(cap), this.firstSeen);
    this.lastSeen = copy(new Float64Array(cap), this.lastSeen);
    this.prevSeen = copy(new Float64Array(cap), this.prevSeen);
    this.tokensCol = copy(new Float64Array(cap), this.tokensCol);
    this.smoothCol = copy(new Float64Array(cap), this.smoothCol);
    this.rxHi = copy(new Uint32Array(cap), this.rxHi);
    this.rxLo = copy(new Uint32Array(cap), this.rxLo);
    this.txHi = copy(new Uint32Array(cap), this.txHi);
    this.txLo = copy(new Uint32Array(cap), this.txLo);
    this.hitsCol = copy(new Int32Array(cap), this.hitsCol);
    this.dropsCol = copy(new Int32Array(cap), this.dropsCol);
    this.tagCol = copy(new Int32Array(cap), this.tagCol);
    this.prev = copy(new Int32Array(cap), this.prev);
    this.next = copy(new Int32Array(cap), this.next);
    this.capacity = cap;
    let cells = 2;
    while (cells < 2 * cap) cells *= 2;
    this.index = new Int32Array(cells);
    this.indexMask = cells - 1;
    for (let s = 0; s < this.used; s++) if (this.kind[s] !== NAME) this.insertIndex(s, this.hashOf(s) & this.indexMask);
  }

  private unlink(s: number): void {
    const p = this.prev[s]!;
    const n = this.next[s]!;
    if (p === -1) this.head = n;
    else this.next[p] = n;
    if (n === -1) this.tail = p;
    else this.prev[n] = p;
  }

  private pushFront(s: number): void {
    this.prev[s] = -1;
    this.next[s] = this.head;
    if (this.head !== -1) this.prev[this.head] = s;
    this.head = s;
    if (this.tail === -1) this.tail = s;
  }
}

export interface ClientRow {
  /** Made from the key: the canonical text Node's sockets give (src/ntp/ipaddr.ts), or the name. */
  address: string;
  hits: number;
  drops: number;
  firstSeen: Instant;
  lastSeen: Instant;
  prevSeen: Instant | null;
  /** An answer was sent (its timestamps are held for interleaved mode). */
  answered: boolean;
}

/** Seconds from 1900 (NTP epoch) to 1970 (Unix epoch). */
const NTP_UNIX_S = 2_208_988_800;
const TWO32 = 4_294_967_296;

/** NTP era seconds (mod 2^32) of a Unix second count. */
export function ntpSeconds(unixS: number): number {
  const s = (unixS + NTP_UNIX_S) % TWO32;
  return s < 0 ? s + TWO32 : s;
}

/**
 * Writes the NTP 64-bit timestamp of `unixS` s + `ns` ns (0 ≤ ns < 10^9, both integers) into
 * hi[i], lo[i], rounded exactly as `instantToNtp64` does: fraction = round(ns × 2^32 / 10^9),
 * computed as ns × 2^23 / 5^9 (2^32 / 10^9 = 2^23 / 5^9) whose numerator stays below 2^53.
 */
export function setNtpWords(hi: Uint32Array, lo: Uint32Array, i: number, unixS: number, ns: number): void {
  const num = ns * 8_388_608;
  const rem = num % 1_953_125;
  let frac = (num - rem) / 1_953_125;
  if (rem >= 976_563) frac++; // rem/5^9 ≥ 1/2 (rem is an integer, 5^9/2 = 976562.5)
  let secs = ntpSeconds(unixS);
  if (frac >= TWO32) {
    frac -= TWO32;
    secs = secs === TWO32 - 1 ? 0 : secs + 1;
  }
  hi[i] = secs;
  lo[i] = frac;
}

/**
 * Writes the NTP timestamp of `time[ti]` Unix seconds + `time[ti+1]` ns (0 ≤ ns < 10^9,
 * integers) at b[off..off+7], rounded as `setNtpWords` does; no allocation.
 */
export function writeNtpTime(b: Uint8Array, off: number, time: Float64Array, ti: number): void {
  const num = time[ti + 1]! * 8_388_608;
  const rem = num % 1_953_125;
  let frac = (num - rem) / 1_953_125;
  if (rem >= 976_563) frac++;
  let secs = (time[ti]! + NTP_UNIX_S) % TWO32;
  if (secs < 0) secs += TWO32;
  if (frac >= TWO32) {
    frac -= TWO32;
    secs = secs === TWO32 - 1 ? 0 : secs + 1;
  }
  // Bytes written here, not through a helper: a 32-bit value passed to a function that is not
  // inlined would be boxed (allocated).
  b[off] = secs >>> 24;
  b[off + 1] = (secs >>> 16) & 0xff;
  b[off + 2] = (secs >>> 8) & 0xff;
  b[off + 3] = secs & 0xff;
  b[off + 4] = frac >>> 24;
  b[off + 5] = (frac >>> 16) & 0xff;
  b[off + 6] = (frac >>> 8) & 0xff;
  b[off + 7] = frac & 0xff;
}

// A 64-bit value and its two 32-bit halves, through one buffer (no bigint arithmetic).
const u64 = new BigUint64Array(1);
const u32 = new Uint32Array(u64.buffer);
u32[0] = 1;
const HI = new Uint8Array(u64.buffer)[0] === 1 ? 1 : 0; // little-endian: the high half comes second
const LO = 1 - HI;

function split64(v: bigint, hi: Uint32Array, lo: Uint32Array, i: number): void {
  u64[0] = v;
  hi[i] = u32[HI]!;
  lo[i] = u32[LO]!;
}

function words64(hi: number, lo: number): Ntp64 {
  u32[HI] = hi;
  u32[LO] = lo;
  return u64[0]!;
}

function copy<T extends { set(a: ArrayLike<never>): void }>(to: T, from: unknown): T {
  to.set(from as ArrayLike<never>);
  return to;
}
