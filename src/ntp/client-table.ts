/**
 * The NTP server's per-client table: one compact record per source address, shared by the client
 * log (`clients`, interleaved mode) and the `ratelimit` token bucket, as chrony's clientlog.c.
 *
 * Memory is the point. A spoofed flood brings a new address with every packet, so the table holds
 * at most `limit` records (least recently seen evicted) and each record is a row of typed-array
 * columns (about 90 bytes) plus one Map entry from the address string to its row. Objects and
 * bigints per client would cost four times as much (bench/clientlog-memory.ts measures both).
 * Columns grow by doubling up to `limit`, so a small server does not pay for a large limit.
 */
import type { Instant, Ntp64 } from '../time/ntp-time.js';
import { diffSeconds } from '../time/ntp-time.js';

/** "No instant" in the bigint columns. */
const NONE = -(2n ** 63n);
/** Bytes per row of the columns below (BigInt64 ×4, BigUint64, Float64 ×2, Int32 ×5). */
const ROW_BYTES = 5 * 8 + 2 * 8 + 5 * 4;
/**
 * V8 cost per held address outside the columns, measured by bench/clientlog-memory.ts on Node 20
 * (x64): the Map entry with its share of the hash table, the slot in `addresses`, and the string's
 * header; the string's characters are added per address.
 */
const PER_ADDRESS_BYTES = 56;
const FIRST_CAPACITY = 1024;

export interface RateBucketOptions {
  interval: number; // log2 s
  burst: number;
  leak: number;
  kod: number;
}

export type RateDecision = 'answer' | 'drop' | 'kod';

export class ClientTable {
  private readonly index = new Map<string, number>();
  private addresses: string[] = [];
  private capacity = 0;
  private used = 0;
  private stringBytes = 0;
  // Columns (row = slot).
  private firstSeen = new BigInt64Array(0);
  private lastSeen = new BigInt64Array(0);
  private prevSeen = new BigInt64Array(0);
  private txTime = new BigInt64Array(0);
  private rxNtpCol = new BigUint64Array(0);
  private smoothCol = new Float64Array(0);
  private tokensCol = new Float64Array(0);
  private hitsCol = new Int32Array(0);
  private dropsCol = new Int32Array(0);
  private tagCol = new Int32Array(0);
  /** LRU list: prev = more recently seen, next = less recently seen; -1 ends it. */
  private prev = new Int32Array(0);
  private next = new Int32Array(0);
  private head = -1;
  private tail = -1;
  private tagSeq = 0;
  /** Records evicted to make room (chrony's "Client log records dropped"). */
  evicted = 0;

  constructor(readonly limit: number) {
    if (!(limit >= 1 && limit <= 2 ** 24)) throw new RangeError('client table limit must be 1..2^24');
  }

  get size(): number {
    return this.index.size;
  }

  /**
   * Records a request from `address` at `rx` and returns its row: an existing one (moved to the
   * front), else a new one, evicting the least recently seen address when the table is full.
   */
  touch(address: string, rx: Instant, burst: number): number {
    let slot = this.index.get(address);
    if (slot !== undefined) {
      this.prevSeen[slot] = this.lastSeen[slot]!;
      this.lastSeen[slot] = rx;
      this.hitsCol[slot] = Math.min(this.hitsCol[slot]! + 1, 0x7fff_ffff);
      this.unlink(slot);
      this.pushFront(slot);
      return slot;
    }
    if (this.index.size >= this.limit) {
      slot = this.tail;
      this.unlink(slot);
      const old = this.addresses[slot]!;
      this.index.delete(old);
      this.stringBytes -= old.length;
      this.evicted++;
    } else {
      if (this.used === this.capacity) this.grow();
      slot = this.used++;
    }
    this.index.set(address, slot);
    this.addresses[slot] = address;
    this.stringBytes += address.length;
    this.firstSeen[slot] = rx;
    this.lastSeen[slot] = rx;
    this.prevSeen[slot] = NONE;
    this.txTime[slot] = NONE;
    this.rxNtpCol[slot] = 0n;
    this.smoothCol[slot] = 0;
    this.tokensCol[slot] = burst;
    this.hitsCol[slot] = 1;
    this.dropsCol[slot] = 0;
    this.tagCol[slot] = 0;
    this.pushFront(slot);
    return slot;
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
    if (prev !== NONE) {
      const elapsed = Math.max(0, diffSeconds(this.lastSeen[slot]!, prev));
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

  /** Receive timestamp of the last answer to this client, as sent (0 if none). */
  rxNtp(slot: number): Ntp64 {
    return this.rxNtpCol[slot]!;
  }

  /** Transmit time of the last answer to this client, or null. */
  lastTx(slot: number): Instant | null {
    const t = this.txTime[slot]!;
    return t === NONE ? null : t;
  }

  /**
   * Saves what interleaved mode needs about the answer just built for this client and returns its
   * TX tag (non-zero; the row is encoded in it, so no second map is needed).
   */
  saveAnswer(slot: number, rxNtp: Ntp64, tx: Instant, smooth: number): number {
    this.rxNtpCol[slot] = rxNtp;
    this.txTime[slot] = tx;
    this.smoothCol[slot] = smooth;
    this.tagSeq = this.tagSeq >= 63 ? 1 : this.tagSeq + 1;
    const tag = slot * 64 + this.tagSeq;
    this.tagCol[slot] = tag;
    return tag;
  }

  /** The kernel TX time of the answer tagged `tag`, if that row still belongs to the same answer. */
  refineTx(tag: number, tx: (smooth: number) => Instant): void {
    const slot = Math.floor(tag / 64);
    if (tag <= 0 || slot >= this.used || this.tagCol[slot] !== tag) return;
    this.txTime[slot] = tx(this.smoothCol[slot]!);
  }

  /** Rows from the most to the least recently seen. */
  *rows(): Generator<ClientRow> {
    for (let s = this.head; s !== -1; s = this.next[s]!) {
      const prev = this.prevSeen[s]!;
      yield {
        address: this.addresses[s]!,
        hits: this.hitsCol[s]!,
        drops: this.dropsCol[s]!,
        firstSeen: this.firstSeen[s]!,
        lastSeen: this.lastSeen[s]!,
        prevSeen: prev === NONE ? null : prev,
        answered: this.txTime[s] !== NONE,
      };
    }
  }

  /** Estimated memory held, in bytes (the columns as allocated, plus each address's Map share). */
  memoryBytes(): number {
    return this.capacity * (ROW_BYTES + 8) + this.index.size * PER_ADDRESS_BYTES + this.stringBytes;
  }

  private grow(): void {
    const cap = Math.min(this.limit, Math.max(FIRST_CAPACITY, this.capacity * 2));
    const big64 = (a: BigInt64Array) => copy(new BigInt64Array(cap), a);
    this.firstSeen = big64(this.firstSeen);
    this.lastSeen = big64(this.lastSeen);
    this.prevSeen = big64(this.prevSeen);
    this.txTime = big64(this.txTime);
    this.rxNtpCol = copy(new BigUint64Array(cap), this.rxNtpCol);
    this.smoothCol = copy(new Float64Array(cap), this.smoothCol);
    this.tokensCol = copy(new Float64Array(cap), this.tokensCol);
    this.hitsCol = copy(new Int32Array(cap), this.hitsCol);
    this.dropsCol = copy(new Int32Array(cap), this.dropsCol);
    this.tagCol = copy(new Int32Array(cap), this.tagCol);
    this.prev = copy(new Int32Array(cap), this.prev);
    this.next = copy(new Int32Array(cap), this.next);
    this.capacity = cap;
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
  address: string;
  hits: number;
  drops: number;
  firstSeen: Instant;
  lastSeen: Instant;
  prevSeen: Instant | null;
  /** An answer was sent (its timestamps are held for interleaved mode). */
  answered: boolean;
}

function copy<T extends { set(a: ArrayLike<never>): void }>(to: T, from: unknown): T {
  to.set(from as ArrayLike<never>);
  return to;
}
