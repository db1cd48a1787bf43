/**
 * The NTP mode 6 (RFC 9327) responder behind NTPsec's `ntpq -p`, `ntpq -c rv`, `ntpq -c as`:
 * READSTAT and READVAR for the system (association 0) and for each source, from the engine's
 * state. Sans-IO: a datagram and an instant in, datagrams out.
 *
 * - Opcodes: UNSPEC (empty answer with the status word), READSTAT, READVAR. WRITEVAR, CONFIGURE
 *   and READ_ORDLIST_A need an authenticated request (not implemented here): PERMISSION error,
 *   as ntpd answers an unauthenticated one. READCLOCK: no reference clocks, BADASSOC (as ntpd
 *   built without refclocks). READ_MRU / REQ_NONCE (the MRU list) and anything else: BADOP.
 * - Access: requests from addresses `queryAllowed` rejects (ntpd's `restrict ... noquery` or
 *   `ignore`) are dropped without an answer, as ntpd does.
 * - Anti-amplification: only requests from loopback addresses (which cannot arrive from off
 *   the host, see isLoopbackAddress) get answers of any size. For any other address the whole
 *   answer (all fragments, headers included) must be no larger than the request datagram;
 *   otherwise it is replaced by a 12-byte RESTRICT error ("***Server error code RESTRICT" in
 *   ntpq). Error answers are 12 bytes and requests at least 12, so nothing ever amplifies.
 *   Authenticated mode 6 is not implemented, so there is no way around this from off-host.
 * - Mode 7 never reaches this code (the NTP server drops it).
 */
import type { Endpoint, ReferenceState, SelectState, Transmit } from '../engine/types.js';
import type { Engine } from '../engine/engine.js';
import type { ClientAssociationStatus } from './client.js';
import { instantToNtp64, type Instant } from '../time/ntp-time.js';
import {
  CERR,
  CTL_PST_CONFIG,
  CTL_PST_REACH,
  CTL_SST_TS_LOCAL,
  CTL_SST_TS_NTP,
  CTL_SST_TS_UNSPEC,
  OP,
  SEL,
  decodeControlRequest,
  encodeControlError,
  encodeControlResponse,
  fixed,
  hex,
  int,
  isLoopbackAddress,
  parseVarRequest,
  peerStatus,
  quoted,
  refid,
  systemStatus,
  timestamp,
  token,
  varListBytes,
  type ControlHeader,
  type VarItem,
} from './mode6.js';

/** What the responder needs to know about one source. */
export interface Mode6Source {
  /** Stable key of the source (the engine's source id). */
  key: string;
  /** Configured name (host name or address). */
  name: string;
  address: Endpoint;
  state: SelectState;
  status: ClientAssociationStatus;
  /** Jitter estimate of the source, seconds (null if not known yet). */
  jitter: number | null;
}

/** What the responder needs to know about the system. */
export interface Mode6System {
  reference: ReferenceState;
  /** Last clock update's offset (θ sign: positive = the clock was behind), seconds. */
  lastOffset: number;
  /** RMS of recent offsets, seconds (ntpd's clk_jitter). */
  rmsOffset: number;
  /** Frequency correction applied to the clock, ppm (ntpd's `frequency`, drift file sign). */
  frequencyPpm: number;
  /** Estimated error of that frequency, ppm (ntpd's clk_wander). */
  skewPpm: number;
  /** The local-reference refid, to tell `local stratum N` from real synchronisation. */
  localRefId: number | null;
}

export interface Mode6View {
  system(now: Instant): Mode6System;
  sources(now: Instant): Mode6Source[];
}

export interface Mode6Options {
  /** ntpd's restrict `noquery`/`ignore`: false → the request is dropped unanswered. */
  queryAllowed: (address: string) => boolean;
  /** `version` variable, e.g. "rubidiumd 0.1.0". */
  version: string;
  /** `processor` (uname machine) and `system` (sysname/release) variables. */
  processor: string;
  system: string;
}

export interface Mode6Stats {
  received: number;
  answered: number;
  errors: number;
  /** Requests whose answer was replaced by an error because it would have been larger. */
  amplificationLimited: number;
  dropped: Record<string, number>;
}

const SELECT_CODE: Record<SelectState, number> = {
  '*': SEL.SYSPEER,
  '+': SEL.CANDIDATE,
  '-': SEL.OUTLIER,
  x: SEL.FALSETICK,
  // chrony's "too variable" is what ntpd's clustering discards as an outlier.
  '~': SEL.OUTLIER,
  '?': SEL.REJECT,
};

/** Modes of the host and of the peer as ntpd reports them. */
const MODE_CLIENT = 3;

type Answer = { data: Uint8Array; status: number } | { error: number };

export class Mode6Server {
  private readonly assocIds = new Map<string, number>();
  private nextAssocId = 1;
  private readonly counters: Mode6Stats = {
    received: 0,
    answered: 0,
    errors: 0,
    amplificationLimited: 0,
    dropped: {},
  };

  constructor(
    private readonly view: Mode6View,
    private readonly opts: Mode6Options,
  ) {}

  stats(): Mode6Stats {
    return { ...this.counters, dropped: { ...this.counters.dropped } };
  }

  private drop(reason: string): Transmit[] {
    this.counters.dropped[reason] = (this.counters.dropped[reason] ?? 0) + 1;
    return [];
  }

  /**
   * Association IDs: assigned once per source key in the order sources are first seen, never
   * reused while the responder lives, so an ID names the same source across queries.
   */
  private associations(now: Instant): Array<{ id: number; src: Mode6Source }> {
    const out: Array<{ id: number; src: Mode6Source }> = [];
    for (const src of this.view.sources(now)) {
      let id = this.assocIds.get(src.key);
      if (id === undefined) {
        id = this.nextAssocId;
        this.nextAssocId = this.nextAssocId >= 0xffff ? 1 : this.nextAssocId + 1;
        this.assocIds.set(src.key, id);
      }
      out.push({ id, src });
    }
    return out;
  }

  /** Handles one datagram with mode 6 received on the server socket. */
  handle(data: Uint8Array, from: Endpoint, now: Instant): Transmit[] {
    this.counters.received++;
    if (!this.opts.queryAllowed(from.address)) return this.drop('restricted');
    const dec = decodeControlRequest(data);
    if (!dec.ok && !dec.answer) return this.drop(dec.reason);
    const h = dec.ok ? dec.request.header : dec.answer!.header;
    const answer: Answer = dec.ok ? this.answer(h, dec.request.data, now) : { error: dec.answer!.error };

    const spec = {
      leap: this.view.system(now).reference.leap,
      version: h.version,
      opcode: h.opcode,
      sequence: h.sequence,
      associd: h.associd,
    };
    let frags: Uint8Array[];
    if ('error' in answer) {
      frags = [encodeControlError(spec, answer.error)];
      this.counters.errors++;
    } else {
      frags = encodeControlResponse({ ...spec, status: answer.status }, answer.data);
      const total = frags.reduce((n, f) => n + f.length, 0);
      if (total > data.length && !isLoopbackAddress(from.address)) {
        this.counters.amplificationLimited++;
        this.counters.errors++;
        frags = [encodeControlError(spec, CERR.RESTRICT)];
      }
    }
    this.counters.answered++;
    return frags.map((f) => ({ socket: 'server', to: { address: from.address, port: from.port }, data: f }));
  }

  private answer(h: ControlHeader, data: Uint8Array, now: Instant): Answer {
    switch (h.opcode) {
      case OP.UNSPEC:
      case OP.READSTAT:
      case OP.READVAR: {
        if (h.associd === 0) {
          const sys = this.view.system(now);
          const assocs = this.associations(now);
          const status = this.systemStatusWord(sys);
          if (h.opcode === OP.UNSPEC) return { data: new Uint8Array(0), status };
          if (h.opcode === OP.READSTAT) return { data: this.statusList(assocs), status };
          const vars = this.systemVars(sys, assocs, now);
          return this.select(vars, data, status);
        }
        const a = this.associations(now).find((x) => x.id === h.associd);
        if (!a) return { error: CERR.BADASSOC };
        const status = this.peerStatusWord(a.src);
        if (h.opcode === OP.UNSPEC) return { data: new Uint8Array(0), status };
        const vars = this.peerVars(a.src);
        // READSTAT on one association returns all its default variables (as ntpd).
        return this.select(vars, h.opcode === OP.READVAR ? data : new Uint8Array(0), status);
      }
      case OP.WRITEVAR:
      case OP.CONFIGURE:
      case OP.READ_ORDLIST_A:
        return { error: CERR.PERMISSION };
      case OP.READCLOCK:
        return { error: CERR.BADASSOC };
      default:
        return { error: CERR.BADOP };
    }
  }

  /** The requested variables in request order, or all of them if none were named. */
  private select(vars: VarItem[], data: Uint8Array, status: number): Answer {
    const wanted = parseVarRequest(data);
    if (wanted.length === 0) return { data: varListBytes(vars), status };
    const byName = new Map(vars.map((v) => [v[0], v] as const));
    const out: VarItem[] = [];
    for (const w of wanted) {
      const v = byName.get(w.name);
      if (!v) return { error: CERR.UNKNOWNVAR };
      out.push(v);
    }
    return { data: varListBytes(out), status };
  }

  private statusList(assocs: Array<{ id: number; src: Mode6Source }>): Uint8Array {
    const out = new Uint8Array(assocs.length * 4);
    assocs.forEach(({ id, src }, i) => {
      const st = this.peerStatusWord(src);
      out[4 * i] = id >> 8;
      out[4 * i + 1] = id & 0xff;
      out[4 * i + 2] = st >> 8;
      out[4 * i + 3] = st & 0xff;
    });
    return out;
  }

  private systemStatusWord(sys: Mode6System): number {
    const ref = sys.reference;
    const source = !ref.synchronized
      ? CTL_SST_TS_UNSPEC
      : sys.localRefId !== null && ref.refId === sys.localRefId && ref.rootDelay === 0
        ? CTL_SST_TS_LOCAL
        : CTL_SST_TS_NTP;
    // No event history is kept: count and code stay 0 (ntpq prints "0 events, unspecified").
    return systemStatus(ref.synchronized ? ref.leap : 3, source);
  }

  private peerStatusWord(src: Mode6Source): number {
    const flags = CTL_PST_CONFIG | (src.status.reach !== 0 ? CTL_PST_REACH : 0);
    return peerStatus(flags, SELECT_CODE[src.state]);
  }

  private systemVars(sys: Mode6System, assocs: Array<{ id: number; src: Mode6Source }>, now: Instant): VarItem[] {
    const ref = sys.reference;
    const stratum = ref.synchronized ? Math.min(Math.max(ref.stratum, 1), 16) : 16;
    const peer = assocs.find((a) => a.src.state === '*');
    const polls = assocs.map((a) => a.src.status.poll);
    const minpolls = assocs.map((a) => a.src.status.minpoll);
    const ms = (s: number, d: number) => fixed(s * 1e3, d);
    const items: Array<[string, string | null]> = [
      ['version', quoted(this.opts.version)],
      ['processor', quoted(this.opts.processor)],
      ['system', quoted(this.opts.system)],
      ['leap', int(ref.synchronized ? ref.leap : 3)],
      ['stratum', int(stratum)],
      ['precision', int(ref.precision)],
      ['rootdelay', ms(ref.rootDelay, 3)],
      ['rootdisp', ms(ref.rootDispersion, 3)],
      ['rootdist', ms(ref.rootDelay / 2 + ref.rootDispersion, 3)],
      // Never synchronised: ntpd's "INIT" placeholder, not a zero refid.
      ['refid', ref.synchronized ? token(refid(ref.refId, stratum)) : 'INIT'],
      ['reftime', timestamp(ref.refTime !== 0n ? instantToNtp64(ref.refTime) : 0n)],
      ['clock', timestamp(instantToNtp64(now))],
      ['peer', int(peer?.id ?? 0)],
      // tc: the poll of the system peer (ntpd's clock time constant follows it).
      ['tc', int(peer ? peer.src.status.poll : polls.length ? Math.min(...polls) : 0)],
      ['mintc', int(minpolls.length ? Math.min(...minpolls) : 0)],
      ['offset', ms(sys.lastOffset, 6)],
      ['frequency', fixed(sys.frequencyPpm, 3)],
      ['sys_jitter', ms(peer?.src.jitter ?? 0, 6)],
      ['clk_jitter', ms(sys.rmsOffset, 6)],
      ['clk_wander', fixed(sys.skewPpm, 6)],
    ];
    return items.filter((x): x is [string, string] => x[1] !== null);
  }

  private peerVars(src: Mode6Source): VarItem[] {
    const st = src.status;
    const p = st.lastPacket;
    // Stratum 0 on the wire means "unspecified", which ntpd shows as 16.
    const stratum = p && p.stratum > 0 ? Math.min(p.stratum, 16) : 16;
    const v6 = src.address.address.includes(':');
    const ls = st.lastSample;
    const ms = (s: number, d: number) => fixed(s * 1e3, d);
    const items: Array<[string, string | null]> = [
      ['srcadr', token(src.address.address)],
      ['srcport', int(src.address.port)],
      ['srchost', src.name !== src.address.address ? quoted(src.name) : null],
      // The client socket is bound to the wildcard address; the kernel picks the source.
      ['dstadr', v6 ? '::' : '0.0.0.0'],
      ['leap', int(p ? p.leap : 3)],
      ['stratum', int(stratum)],
      ['precision', p ? int(p.precision) : null],
      ['rootdelay', p ? ms(p.rootDelay, 3) : null],
      ['rootdisp', p ? ms(p.rootDispersion, 3) : null],
      // Not heard from yet: ntpd's "INIT" placeholder.
      ['refid', p ? token(refid(p.refId, stratum)) : 'INIT'],
      ['reftime', timestamp(p && p.refTime !== 0n ? instantToNtp64(p.refTime) : 0n)],
      ['rec', timestamp(st.lastRx !== null ? instantToNtp64(st.lastRx) : 0n)],
      ['reach', hex(st.reach & 0xff)],
      ['hmode', int(MODE_CLIENT)],
      ['pmode', int(p ? p.mode : 0)],
      ['hpoll', int(st.poll)],
      ['ppoll', int(p ? p.poll : st.poll)],
      ['keyid', int(0)],
      ['offset', ls ? ms(ls.offset, 6) : ms(0, 6)],
      ['delay', ls ? ms(ls.delay, 6) : ms(0, 6)],
      // Never measured: ntpd's maximum dispersion, 16 s.
      ['dispersion', ms(ls ? ls.dispersion : 16, 6)],
      ['jitter', ms(src.jitter ?? 0, 6)],
    ];
    return items.filter((x): x is [string, string] => x[1] !== null);
  }
}

/** The engine seen through `Mode6View` (public reports only). */
export function engineMode6View(engine: Engine, localRefId: number | null): Mode6View {
  return {
    system: (now) => {
      const t = engine.tracking(now);
      const d = engine.disciplineState;
      return {
        reference: d.reference(now),
        lastOffset: t.lastOffset,
        rmsOffset: t.rmsOffset,
        frequencyPpm: d.frequencyPpm,
        skewPpm: t.skewPpm,
        localRefId,
      };
    },
    sources: (now) =>
      engine.sourceDetails().map(({ cfg, status, state }) => {
        const stats = engine.disciplineState.sourceStats(cfg.id, now);
        return {
          key: cfg.id,
          name: cfg.name,
          address: cfg.address,
          state,
          status,
          jitter: stats && stats.np >= 2 ? stats.stdDev : null,
        };
      }),
  };
}
