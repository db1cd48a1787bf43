/**
 * Sans-IO NTP server (RFC 5905 server mode, chrony-compatible behaviour).
 *
 * - Answers mode 3 requests (and NTPv1 mode 0 requests from a port other than 123, as chrony
 *   does) with mode 4, echoing the request's version (1..4).
 * - Everything else (symmetric, broadcast, mode 6/7, malformed) is dropped and counted by reason.
 * - While unsynchronised it answers like chrony: LI=3, stratum 0, refid 0, reference time 0,
 *   root delay and root dispersion 1 s.
 * - No amplification: the answer is always the bare 48-byte header (extension fields are not
 *   echoed), never longer than the request.
 * - Authentication (symmetric keys, NTS) is delegated to `auth` (src/ntp/auth.ts): a request
 *   with a MAC or NTS extension fields that no authenticator accepts is dropped ('auth'), as
 *   chrony does when it cannot verify the key. Signed answers are never re-stamped by the I/O
 *   layer (the MAC covers T3). An NTS NAK is an unauthenticated KoD NTSN.
 * - Interleaved mode (chrony's server side of `xleave`): the client log keeps, per client, the
 *   receive timestamp of its last request as sent on the wire and the transmit time of our
 *   answer (the I/O layer refines it with the kernel TX timestamp through `handleTxTimestamp`).
 *   An NTPv4 request whose origin equals that saved receive timestamp (and whose receive and
 *   transmit differ) gets an interleaved answer: origin = request's receive, receive = this rx,
 *   transmit = the saved TX time of the previous answer.
 * - The client log is bounded (clientLogLimit entries, least recently used evicted);
 *   `noclientlog` disables it and with it interleaved mode.
 * - The batched path (src/ntp/server-batch.ts, `BatchServer`) answers plain requests itself on
 *   this server's client table and counters, with the same results; it sends everything else
 *   here.
 */
import type { Endpoint, ReferenceState, Transmit } from '../engine/types.js';
import type { Instant } from '../time/ntp-time.js';
import { addSeconds, diffSeconds, instantToNtp64 } from '../time/ntp-time.js';
import type { ClientReport, ServerStatsReport } from '../control/reports.js';
import type { ExtensionField } from './packet.js';
import { decodePacket, encodePacket, isNtsExtension, MODE_CLIENT, MODE_SERVER } from './packet.js';
import type { ServerAuthenticator } from './auth.js';
import type { RateLimitOptions } from './ratelimit.js';
import { ClientTable } from './client-table.js';

const KOD_RATE = 0x52415445; // "RATE"
const KOD_NTSN = 0x4e54534e; // "NTSN": NTS NAK (RFC 8915 §5.7)

export interface NtpServerOptions {
  /** Maximum number of clients tracked in the client log. */
  clientLogLimit: number;
  noclientlog?: boolean;
  /** chrony's ratelimit (src/ntp/ratelimit.ts); absent = answer every request. */
  ratelimit?: Omit<RateLimitOptions, 'maxClients'>;
  /** ntp.conf restrict: ratelimit applies only where `limited`; over the limit, `kod` → KoD RATE, else drop. */
  restrictLimit?: (address: string) => { limited: boolean; kod: boolean };
  access: (address: string) => boolean;
  /**
   * The same decision as `access` for an address as words (src/ntp/ipaddr.ts; e.g.
   * `AccessTable.allowedWords`), used by the batched path so that it makes no string per packet.
   * Without it that path formats the address and calls `access`.
   */
  accessWords?: (family: 4 | 6, a0: number, a1: number, a2: number, a3: number) => boolean;
  /**
   * `accessWords` with the address at words[offset..offset+3] (e.g. `AccessTable.allowedAt`):
   * preferred by the batched path, which then allocates nothing even when the call is not
   * inlined (32-bit values passed as arguments may be boxed).
   */
  accessWordsAt?: (family: 4 | 6, words: Int32Array, offset: number) => boolean;
  random: () => number;
  /** Authenticators for requests carrying a MAC or NTS fields (first whose `handles` is true). */
  auth?: readonly ServerAuthenticator[];
}

/** What `serverstats` counts; shared with the batched path (src/ntp/server-batch.ts). */
export class ServerCounters {
  received = 0;
  dropped = 0;
  interleaved = 0;
  authReceived = 0;
  readonly malformed: Record<string, number> = {};

  /** Counts a dropped request by reason (and on its client's row, if it has one). */
  drop(reason: string, table: ClientTable | undefined, slot: number): undefined {
    this.dropped++;
    this.malformed[reason] = (this.malformed[reason] ?? 0) + 1;
    if (slot >= 0) table!.countDrop(slot);
    return undefined;
  }
}

export class NtpServer {
  readonly opts: NtpServerOptions;
  /**
   * Client log and ratelimit buckets, one compact row per address (src/ntp/client-table.ts);
   * undefined when neither is on. Shared with the batched path.
   */
  readonly table: ClientTable | undefined;
  readonly counters = new ServerCounters();
  /** Interleaved mode and `clients` need the log itself (a table kept only for ratelimit does not count). */
  readonly logging: boolean;

  constructor(opts: NtpServerOptions) {
    if (!(opts.clientLogLimit >= 0)) throw new RangeError('clientLogLimit must be >= 0');
    this.opts = opts;
    this.logging = !opts.noclientlog && opts.clientLogLimit > 0;
    if (this.logging || opts.ratelimit) this.table = new ClientTable(Math.max(opts.clientLogLimit, 1));
  }

  private drop(reason: string, slot = -1): undefined {
    return this.counters.drop(reason, this.table, slot);
  }

  /** Client log row of this request, -1 without a table. */
  private logClient(address: string, rx: Instant): number {
    return this.table ? this.table.touch(address, rx, this.opts.ratelimit?.burst ?? 0) : -1;
  }

  /**
   * Handles one datagram received on the server socket at `rx` (our clock). `txTime` is the
   * transmit timestamp to put in a basic-mode answer. Returns the answer, or undefined if the
   * datagram is dropped.
   */
  handleRequest(
    data: Uint8Array,
    from: Endpoint,
    rx: Instant,
    txTime: Instant,
    ref: ReferenceState,
  ): Transmit | undefined {
    this.counters.received++;
    if (!this.opts.access(from.address)) return this.drop('denied');
    const dec = decodePacket(data);
    if (!dec.ok) return this.drop(dec.reason);
    const req = dec.packet;
    const isV1Client = req.version === 1 && req.mode === 0 && from.port !== 123;
    if (req.mode !== MODE_CLIENT && !isV1Client) return this.drop('mode');

    const entry = this.logClient(from.address, rx);
    const rl = this.opts.restrictLimit?.(from.address);
    const rate = this.opts.ratelimit;
    let limit = (rl && !rl.limited) || !rate ? 'answer' : this.table!.limitRate(entry, rate, this.opts.random);
    if (rl && limit !== 'answer') limit = rl.kod ? 'kod' : 'drop';
    if (limit === 'drop') return this.drop('ratelimit', entry);
    const kod = limit === 'kod';
    let sign: ((header: Uint8Array) => Uint8Array) | undefined;
    let nak: ExtensionField[] | undefined;
    if (req.mac || req.extensions.some((ef) => isNtsExtension(ef.type))) {
      this.counters.authReceived++;
      const auth = this.opts.auth?.find((a) => a.handles(req));
      if (!auth) return this.drop('auth', entry);
      const verdict = auth.verifyRequest(data, req, from, rx);
      if (verdict.kind === 'drop') return this.drop('auth', entry);
      if (verdict.kind === 'nak') nak = verdict.extensions;
      else sign = verdict.sign;
    }
    // smoothtime: everything served is local time minus the smoothing offset (refid SMOOTH).
    const sm = ref.smoothOffset ?? 0;
    if (sm !== 0) {
      rx = addSeconds(rx, -sm);
      txTime = addSeconds(txTime, -sm);
      if (Math.abs(sm) > 2 ** ref.precision)
        ref = { ...ref, refId: 0x7f7f01ff, refTime: ref.refTime && addSeconds(ref.refTime, -sm) };
    }

    const rxNtp = instantToNtp64(rx);
    let interleaved = false;
    const basicTx = instantToNtp64(txTime);
    let transmit = basicTx;
    if (
      entry >= 0 &&
      this.logging &&
      this.table!.answered(entry) &&
      req.version === 4 &&
      req.origin !== 0n &&
      req.origin === this.table!.rxNtp(entry) &&
      req.receive !== req.transmit
    ) {
      interleaved = true;
      transmit = this.table!.txNtp(entry)!;
      this.counters.interleaved++;
      this.table!.markInterleaved(entry);
    }

    const sync = ref.synchronized;
    const stratum = sync && ref.stratum > 0 && ref.stratum < 16 ? ref.stratum : 0;
    const header = encodePacket({
      leap: sync && !kod && !nak ? ref.leap : 3,
      version: req.version,
      mode: MODE_SERVER,
      stratum: kod || nak ? 0 : stratum,
      poll: req.poll,
      precision: ref.precision,
      rootDelay: sync ? ref.rootDelay : 1,
      rootDispersion: sync ? ref.rootDispersion : 1,
      refId: nak ? KOD_NTSN : kod ? KOD_RATE : sync ? ref.refId >>> 0 : 0,
      refTime: sync && ref.refTime !== 0n ? instantToNtp64(ref.refTime) : 0n,
      origin: interleaved ? req.receive : req.transmit,
      receive: rxNtp,
      transmit,
      extensions: nak ?? [],
    });
    const response = sign ? sign(header) : header;

    const out: Transmit = { socket: 'server', to: { address: from.address, port: from.port }, data: response };
    // Basic mode: the I/O layer stamps T3 at the last moment (interleaved answers carry the
    // kernel TX time of the previous answer instead). Signed answers cannot be re-stamped.
    if (!interleaved && sm === 0 && !sign) out.stampTransmit = true;
    if (entry >= 0 && this.logging) out.txTag = this.table!.saveAnswerNtp(entry, rxNtp, basicTx, sm);
    return out;
  }

  /** The I/O layer's report of when the answer carrying `tag` actually left (kernel TX time). */
  handleTxTimestamp(tag: number, tx: Instant): void {
    this.table?.refineTx(tag, (smooth) => (smooth !== 0 ? addSeconds(tx, -smooth) : tx));
  }

  stats(): ServerStatsReport {
    let held = 0;
    let oldest: Instant | null = null;
    let newest: Instant | null = null;
    for (const e of this.logging ? this.table!.rows() : []) {
      if (!e.answered) continue;
      held++;
      if (oldest === null || e.lastSeen < oldest) oldest = e.lastSeen;
      if (newest === null || e.lastSeen > newest) newest = e.lastSeen;
    }
    const c = this.counters;
    return {
      ntpPacketsReceived: c.received,
      ntpPacketsDropped: c.dropped,
      cmdPacketsReceived: 0,
      cmdPacketsDropped: 0,
      clientLogSizeActive: this.logging ? this.table!.size : 0,
      clientLogMemory: this.table?.memoryBytes() ?? 0,
      clientLogRecordsDropped: this.table?.evicted ?? 0,
      ntpAuthPacketsReceived: c.authReceived,
      ntpInterleavedPacketsReceived: c.interleaved,
      ntpTimestampsHeld: held,
      ntpTimestampSpan: oldest !== null && newest !== null ? diffSeconds(newest, oldest) : 0,
      malformedDropped: { ...c.malformed },
    };
  }

  /** Client log, most recently seen first. */
  clients(now: Instant): ClientReport[] {
    const out: ClientReport[] = [];
    for (const e of this.logging ? this.table!.rows() : []) {
      const span = diffSeconds(e.lastSeen, e.firstSeen);
      const avg = e.hits > 1 ? span / (e.hits - 1) : null;
      const last = e.prevSeen !== null ? diffSeconds(e.lastSeen, e.prevSeen) : null;
      out.push({
        address: e.address,
        ntpHits: e.hits,
        ntpDrops: e.drops,
        ntpInterval: avg !== null && avg > 0 ? Math.round(Math.log2(avg)) : null,
        ntpIntervalLast: last !== null && last > 0 ? Math.round(Math.log2(last)) : null,
        lastNtpAgo: diffSeconds(now, e.lastSeen),
        cmdHits: 0,
        cmdDrops: 0,
        cmdInterval: null,
        lastCmdAgo: null,
      });
    }
    return out;
  }
}
