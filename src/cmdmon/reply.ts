/**
 * Encoding of cmdmon replies (candm.h CMD_Reply, chrony 4.3). Each reply is exactly as long as
 * pktlength.c says for its type; the caller checks it fits the request length.
 */
import { encodeFloat } from './float.js';
import {
  type CmdIpAddr,
  PKT_TYPE_CMD_REPLY,
  PROTO_VERSION,
  REPLY_HEADER_LENGTH,
  RPY,
  replyLength,
  writeIpAddr,
  writeTimespec,
} from './protocol.js';
import type { RequestHeader } from './request.js';
import type { AuthDataReport } from '../control/authdata.js';

/** Source states in SOURCE_DATA (candm.h RPY_SD_ST_*; chronyc prints them as * ? x ~ + -). */
export const SD_STATE = { SELECTED: 0, NONSELECTABLE: 1, FALSETICKER: 2, JITTERY: 3, UNSELECTED: 4, SELECTABLE: 5 };
export const SD_MODE = { CLIENT: 0, PEER: 1, REF: 2 };

export interface SourceDataReply {
  ip: CmdIpAddr;
  poll: number;
  stratum: number;
  state: number;
  mode: number;
  flags: number;
  reachability: number;
  sinceSample: number; // s, 0xffffffff = never
  origLatestMeas: number;
  latestMeas: number;
  latestMeasErr: number;
}

export interface TrackingReply {
  refId: number;
  ip: CmdIpAddr;
  stratum: number;
  leapStatus: number;
  refTimeNs: bigint;
  currentCorrection: number;
  lastOffset: number;
  rmsOffset: number;
  freqPpm: number;
  residFreqPpm: number;
  skewPpm: number;
  rootDelay: number;
  rootDispersion: number;
  lastUpdateInterval: number;
}

export interface SourcestatsReply {
  refId: number;
  ip: CmdIpAddr;
  nSamples: number;
  nRuns: number;
  spanSeconds: number;
  sd: number;
  residFreqPpm: number;
  skewPpm: number;
  estOffset: number;
  estOffsetErr: number;
}

export interface NtpDataReply {
  remoteAddr: CmdIpAddr;
  localAddr: CmdIpAddr;
  remotePort: number;
  leap: number;
  version: number;
  mode: number;
  stratum: number;
  poll: number;
  precision: number;
  rootDelay: number;
  rootDispersion: number;
  refId: number;
  refTimeNs: bigint;
  offset: number;
  peerDelay: number;
  peerDispersion: number;
  responseTime: number;
  jitterAsymmetry: number;
  /** Bits 0-9 the tests, 0x4000 interleaved, 0x8000 authenticated. */
  flags: number;
  txTssChar: string;
  rxTssChar: string;
  totalTx: number;
  totalRx: number;
  totalValid: number;
  totalGood: number;
}

export interface ClientAccessReply {
  ip: CmdIpAddr;
  ntpHits: number;
  nkeHits: number;
  cmdHits: number;
  ntpDrops: number;
  nkeDrops: number;
  cmdDrops: number;
  /** log2 s; 127 = none. */
  ntpInterval: number;
  nkeInterval: number;
  cmdInterval: number;
  ntpTimeoutInterval: number;
  lastNtpHitAgo: number; // s, 0xffffffff = never
  lastNkeHitAgo: number;
  lastCmdHitAgo: number;
}

export interface ServerStatsReply {
  ntpHits: number;
  nkeHits: number;
  cmdHits: number;
  ntpDrops: number;
  nkeDrops: number;
  cmdDrops: number;
  logDrops: number;
  ntpAuthHits: number;
  ntpInterleavedHits: number;
  ntpTimestamps: number;
  ntpSpanSeconds: number;
}

export interface ActivityReply {
  online: number;
  offline: number;
  burstOnline: number;
  burstOffline: number;
  unresolved: number;
}

export interface SelectDataReply {
  refId: number;
  ip: CmdIpAddr;
  stateChar: string;
  authentication: boolean;
  leap: number;
  confOptions: number;
  effOptions: number;
  lastSampleAgo: number;
  score: number;
  loLimit: number;
  hiLimit: number;
}

export type CmdReply =
  | { type: 'null' }
  | { type: 'n_sources'; n: number }
  | { type: 'source_data'; data: SourceDataReply }
  | { type: 'tracking'; data: TrackingReply }
  | { type: 'sourcestats'; data: SourcestatsReply }
  | { type: 'ntp_data'; data: NtpDataReply }
  | { type: 'ntp_source_name'; name: string }
  | { type: 'client_accesses'; nIndices: number; nextIndex: number; clients: ClientAccessReply[] }
  | { type: 'server_stats'; data: ServerStatsReply }
  | { type: 'activity'; data: ActivityReply }
  | { type: 'auth_data_none' }
  | { type: 'auth_data'; data: AuthDataReport }
  | { type: 'select_data'; data: SelectDataReply };

const CODE: Record<CmdReply['type'], number> = {
  null: RPY.NULL,
  n_sources: RPY.N_SOURCES,
  source_data: RPY.SOURCE_DATA,
  tracking: RPY.TRACKING,
  sourcestats: RPY.SOURCESTATS,
  ntp_data: RPY.NTP_DATA,
  ntp_source_name: RPY.NTP_SOURCE_NAME,
  client_accesses: RPY.CLIENT_ACCESSES_BY_INDEX3,
  server_stats: RPY.SERVER_STATS3,
  activity: RPY.ACTIVITY,
  auth_data_none: RPY.AUTH_DATA,
  auth_data: RPY.AUTH_DATA,
  select_data: RPY.SELECT_DATA,
};

const MAX_CLIENT_ACCESSES = 8;
const CLIENT_RECORD_LENGTH = 60;

/** Clamps to an unsigned 32-bit integer (counters never wrap into nonsense). */
function u32(x: number): number {
  if (!Number.isFinite(x) || x <= 0) return 0;
  return x >= 0xffffffff ? 0xffffffff : Math.floor(x);
}

function clampInt(x: number, lo: number, hi: number): number {
  if (!Number.isFinite(x)) return 0;
  return Math.max(lo, Math.min(hi, Math.round(x)));
}

/**
 * Encodes a reply. `status` non-zero always goes with the RPY_NULL type (chronyd's error replies
 * carry no data).
 */
export function encodeReply(header: RequestHeader, status: number, reply: CmdReply = { type: 'null' }): Buffer {
  if (status !== 0) reply = { type: 'null' };
  const code = CODE[reply.type];
  const b = Buffer.alloc(replyLength(code));
  b[0] = PROTO_VERSION;
  b[1] = PKT_TYPE_CMD_REPLY;
  b.writeUInt16BE(header.command & 0xffff, 4);
  b.writeUInt16BE(code, 6);
  b.writeUInt16BE(status, 8);
  b.writeUInt32BE(header.sequence >>> 0, 16);
  const d = REPLY_HEADER_LENGTH;
  const f = (o: number, x: number) => b.writeUInt32BE(encodeFloat(x), d + o);
  const w32 = (o: number, x: number) => b.writeUInt32BE(u32(x), d + o);
  const w16 = (o: number, x: number) => b.writeUInt16BE(clampInt(x, 0, 0xffff), d + o);
  switch (reply.type) {
    case 'null':
    case 'auth_data_none': // mode NONE, everything else zero
      break;
    case 'n_sources':
      w32(0, reply.n);
      break;
    case 'auth_data': {
      // candm.h RPY_AuthData: mode, key_type, key_id, key_length, ke_attempts, last_ke_ago,
      // cookies, cookie_length, nak.
      const a = reply.data;
      w16(0, a.mode === 'symmetric' ? 1 : a.mode === 'nts' ? 2 : 0);
      w16(2, a.keyType);
      b.writeUInt32BE(a.keyId >>> 0, d + 4);
      w16(8, a.keyLength);
      w16(10, a.keAttempts);
      b.writeUInt32BE(a.lastKeAgo === null ? 0xffffffff : u32(a.lastKeAgo), d + 12);
      w16(16, a.cookies);
      w16(18, a.cookieLength);
      w16(20, a.naks);
      break;
    }
    case 'source_data': {
      const s = reply.data;
      writeIpAddr(b, d, s.ip);
      b.writeInt16BE(clampInt(s.poll, -32768, 32767), d + 20);
      w16(22, s.stratum);
      w16(24, s.state);
      w16(26, s.mode);
      w16(28, s.flags);
      w16(30, s.reachability);
      w32(32, s.sinceSample);
      f(36, s.origLatestMeas);
      f(40, s.latestMeas);
      f(44, s.latestMeasErr);
      break;
    }
    case 'tracking': {
      const t = reply.data;
      b.writeUInt32BE(t.refId >>> 0, d);
      writeIpAddr(b, d + 4, t.ip);
      w16(24, t.stratum);
      w16(26, t.leapStatus);
      writeTimespec(b, d + 28, t.refTimeNs);
      f(40, t.currentCorrection);
      f(44, t.lastOffset);
      f(48, t.rmsOffset);
      f(52, t.freqPpm);
      f(56, t.residFreqPpm);
      f(60, t.skewPpm);
      f(64, t.rootDelay);
      f(68, t.rootDispersion);
      f(72, t.lastUpdateInterval);
      break;
    }
    case 'sourcestats': {
      const s = reply.data;
      b.writeUInt32BE(s.refId >>> 0, d);
      writeIpAddr(b, d + 4, s.ip);
      w32(24, s.nSamples);
      w32(28, s.nRuns);
      w32(32, s.spanSeconds);
      f(36, s.sd);
      f(40, s.residFreqPpm);
      f(44, s.skewPpm);
      f(48, s.estOffset);
      f(52, s.estOffsetErr);
      break;
    }
    case 'ntp_data': {
      const n = reply.data;
      writeIpAddr(b, d, n.remoteAddr);
      writeIpAddr(b, d + 20, n.localAddr);
      w16(40, n.remotePort);
      b[d + 42] = clampInt(n.leap, 0, 255);
      b[d + 43] = clampInt(n.version, 0, 255);
      b[d + 44] = clampInt(n.mode, 0, 255);
      b[d + 45] = clampInt(n.stratum, 0, 255);
      b.writeInt8(clampInt(n.poll, -128, 127), d + 46);
      b.writeInt8(clampInt(n.precision, -128, 127), d + 47);
      f(48, n.rootDelay);
      f(52, n.rootDispersion);
      b.writeUInt32BE(n.refId >>> 0, d + 56);
      writeTimespec(b, d + 60, n.refTimeNs);
      f(72, n.offset);
      f(76, n.peerDelay);
      f(80, n.peerDispersion);
      f(84, n.responseTime);
      f(88, n.jitterAsymmetry);
      w16(92, n.flags);
      b[d + 94] = n.txTssChar.charCodeAt(0) & 0xff;
      b[d + 95] = n.rxTssChar.charCodeAt(0) & 0xff;
      w32(96, n.totalTx);
      w32(100, n.totalRx);
      w32(104, n.totalValid);
      w32(108, n.totalGood);
      b.fill(0xff, d + 112, d + 124); // reserved, as chronyd fills it
      break;
    }
    case 'ntp_source_name': {
      // At most 255 bytes so the name stays NUL-terminated (chronyc rejects it otherwise).
      const name = Buffer.from(reply.name, 'latin1').subarray(0, 255);
      name.copy(b, d);
      break;
    }
    case 'client_accesses': {
      const list = reply.clients.slice(0, MAX_CLIENT_ACCESSES);
      w32(0, reply.nIndices);
      w32(4, reply.nextIndex);
      w32(8, list.length);
      list.forEach((c, i) => {
        const o = 12 + i * CLIENT_RECORD_LENGTH;
        writeIpAddr(b, d + o, c.ip);
        w32(o + 20, c.ntpHits);
        w32(o + 24, c.nkeHits);
        w32(o + 28, c.cmdHits);
        w32(o + 32, c.ntpDrops);
        w32(o + 36, c.nkeDrops);
        w32(o + 40, c.cmdDrops);
        b.writeInt8(clampInt(c.ntpInterval, -128, 127), d + o + 44);
        b.writeInt8(clampInt(c.nkeInterval, -128, 127), d + o + 45);
        b.writeInt8(clampInt(c.cmdInterval, -128, 127), d + o + 46);
        b.writeInt8(clampInt(c.ntpTimeoutInterval, -128, 127), d + o + 47);
        w32(o + 48, c.lastNtpHitAgo);
        w32(o + 52, c.lastNkeHitAgo);
        w32(o + 56, c.lastCmdHitAgo);
      });
      break;
    }
    case 'server_stats': {
      const s = reply.data;
      const vals = [
        s.ntpHits,
        s.nkeHits,
        s.cmdHits,
        s.ntpDrops,
        s.nkeDrops,
        s.cmdDrops,
        s.logDrops,
        s.ntpAuthHits,
        s.ntpInterleavedHits,
        s.ntpTimestamps,
        s.ntpSpanSeconds,
      ];
      vals.forEach((v, i) => w32(4 * i, v));
      break;
    }
    case 'activity': {
      const a = reply.data;
      [a.online, a.offline, a.burstOnline, a.burstOffline, a.unresolved].forEach((v, i) =>
        b.writeInt32BE(clampInt(v, -0x80000000, 0x7fffffff), d + 4 * i),
      );
      break;
    }
    case 'select_data': {
      const s = reply.data;
      b.writeUInt32BE(s.refId >>> 0, d);
      writeIpAddr(b, d + 4, s.ip);
      b[d + 24] = s.stateChar.charCodeAt(0) & 0xff;
      b[d + 25] = s.authentication ? 1 : 0;
      b[d + 26] = clampInt(s.leap, 0, 255);
      w16(28, s.confOptions);
      w16(30, s.effOptions);
      w32(32, s.lastSampleAgo);
      f(36, s.score);
      f(40, s.loLimit);
      f(44, s.hiLimit);
      break;
    }
  }
  return b;
}
