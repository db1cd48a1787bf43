/**
 * Decoding of cmdmon requests as chronyd 4.3 validates them (cmdmon.c read_from_cmd_socket):
 * packets that cannot be answered are dropped, the rest yield either a status-only error reply
 * or a typed request. Never throws on any input.
 */
import { decodeFloat } from './float.js';
import {
  type CmdIpAddr,
  IPADDR_LENGTH,
  MAX_REQUEST_LENGTH,
  N_REQUEST_TYPES,
  PKT_TYPE_CMD_REQUEST,
  PROTO_VERSION,
  PROTO_VERSION_MISMATCH_COMPAT_SERVER,
  REPLY_HEADER_LENGTH,
  REQ,
  REQUEST_HEADER_LENGTH,
  STT,
  readIpAddr,
  requestLength,
} from './protocol.js';

export interface RequestHeader {
  version: number;
  command: number;
  attempt: number;
  /** Echoed verbatim (chronyc matches replies on it). */
  sequence: number;
}

/** REQ_ADD_SOURCE flags (candm.h REQ_ADDSRC_*). */
export const ADDSRC = {
  ONLINE: 0x1,
  AUTOOFFLINE: 0x2,
  IBURST: 0x4,
  PREFER: 0x8,
  NOSELECT: 0x10,
  TRUST: 0x20,
  REQUIRE: 0x40,
  INTERLEAVED: 0x80,
  BURST: 0x100,
  NTS: 0x200,
  COPY: 0x400,
  EF_EXP1: 0x800,
} as const;

export interface AddSourceRequest {
  type: 'server' | 'peer' | 'pool';
  name: string;
  port: number;
  minpoll: number;
  maxpoll: number;
  presendMinpoll: number;
  minStratum: number;
  pollTarget: number;
  version: number;
  maxSources: number;
  minSamples: number;
  maxSamples: number;
  authkey: number;
  ntsPort: number;
  maxDelay: number;
  maxDelayRatio: number;
  maxDelayDevRatio: number;
  minDelay: number;
  asymmetry: number;
  offset: number;
  flags: number;
  filterLength: number;
  certSet: number;
  maxDelayQuant: number;
}

export type CmdRequest =
  | { cmd: 'null' }
  | { cmd: 'online' | 'offline'; mask: CmdIpAddr; address: CmdIpAddr }
  | { cmd: 'burst'; mask: CmdIpAddr; address: CmdIpAddr; nGood: number; nTotal: number }
  | { cmd: 'onoffline' }
  | { cmd: 'n_sources' }
  | { cmd: 'source_data'; index: number }
  | { cmd: 'sourcestats'; index: number }
  | { cmd: 'tracking' }
  | { cmd: 'ntp_data'; address: CmdIpAddr }
  | { cmd: 'ntp_source_name'; address: CmdIpAddr }
  | { cmd: 'auth_data'; address: CmdIpAddr }
  | { cmd: 'select_data'; index: number }
  | { cmd: 'client_accesses'; firstIndex: number; nClients: number; minHits: number; reset: boolean }
  | { cmd: 'server_stats' }
  | { cmd: 'activity' }
  | { cmd: 'makestep' }
  | { cmd: 'cyclelogs' }
  | { cmd: 'add_source'; source: AddSourceRequest }
  | { cmd: 'add_source_invalid'; status: number }
  | { cmd: 'del_source'; address: CmdIpAddr }
  | { cmd: 'cmdaccheck' | 'accheck'; address: CmdIpAddr }
  | { cmd: 'other'; command: number };

export type DecodeResult =
  /** No reply at all (chronyd drops these silently). */
  | { kind: 'drop'; reason: string }
  /** A reply with just this status (RPY_NULL). */
  | { kind: 'status'; header: RequestHeader; status: number; reason: string }
  | { kind: 'request'; header: RequestHeader; request: CmdRequest };

/** Whether a datagram looks like a cmdmon request (so a shared port can route it here). */
export function isCmdmonPacket(data: Uint8Array): boolean {
  return data.length >= 2 && data[1] === PKT_TYPE_CMD_REQUEST && data[0]! >= 1 && data[0]! <= 15;
}

const ADD_TYPES: Record<number, AddSourceRequest['type']> = { 1: 'server', 2: 'peer', 3: 'pool' };

export function decodeRequest(data: Uint8Array): DecodeResult {
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const len = b.length;
  // An error reply (28 bytes) must not be longer than the request; nothing beyond sizeof(CMD_Request).
  if (len < REQUEST_HEADER_LENGTH || len < REPLY_HEADER_LENGTH || len > MAX_REQUEST_LENGTH) {
    return { kind: 'drop', reason: `unexpected length ${len}` };
  }
  if (b[1] !== PKT_TYPE_CMD_REQUEST || b[2] !== 0 || b[3] !== 0) {
    return { kind: 'drop', reason: 'not a command request' };
  }
  const header: RequestHeader = {
    version: b[0]!,
    command: b.readUInt16BE(4),
    attempt: b.readUInt16BE(6),
    sequence: b.readUInt32BE(8),
  };
  if (header.version !== PROTO_VERSION) {
    if (header.version >= PROTO_VERSION_MISMATCH_COMPAT_SERVER) {
      return { kind: 'status', header, status: STT.BADPKTVERSION, reason: `protocol version ${header.version}` };
    }
    return { kind: 'drop', reason: `protocol version ${header.version}` };
  }
  const expected = requestLength(header.command);
  if (header.command >= N_REQUEST_TYPES || expected < REQUEST_HEADER_LENGTH) {
    return { kind: 'status', header, status: STT.INVALID, reason: `invalid command ${header.command}` };
  }
  if (len < expected) {
    return {
      kind: 'status',
      header,
      status: STT.BADPKTLENGTH,
      reason: `command ${header.command} too short (${len} < ${expected})`,
    };
  }
  return { kind: 'request', header, request: decodeBody(header.command, b) };
}

function decodeBody(command: number, b: Buffer): CmdRequest {
  const d = REQUEST_HEADER_LENGTH; // start of the data union
  const u32 = (o: number) => b.readUInt32BE(d + o);
  const i32 = (o: number) => b.readInt32BE(d + o);
  const ip = (o: number) => readIpAddr(b, d + o);
  const flt = (o: number) => decodeFloat(u32(o));
  switch (command) {
    case REQ.NULL:
      return { cmd: 'null' };
    case REQ.ONLINE:
    case REQ.OFFLINE:
      return { cmd: command === REQ.ONLINE ? 'online' : 'offline', mask: ip(0), address: ip(IPADDR_LENGTH) };
    case REQ.BURST:
      return { cmd: 'burst', mask: ip(0), address: ip(20), nGood: i32(40), nTotal: i32(44) };
    case REQ.ONOFFLINE:
      return { cmd: 'onoffline' };
    case REQ.N_SOURCES:
      return { cmd: 'n_sources' };
    case REQ.SOURCE_DATA:
      return { cmd: 'source_data', index: i32(0) };
    case REQ.SOURCESTATS:
      return { cmd: 'sourcestats', index: u32(0) };
    case REQ.TRACKING:
      return { cmd: 'tracking' };
    case REQ.NTP_DATA:
      return { cmd: 'ntp_data', address: ip(0) };
    case REQ.NTP_SOURCE_NAME:
      return { cmd: 'ntp_source_name', address: ip(0) };
    case REQ.AUTH_DATA:
      return { cmd: 'auth_data', address: ip(0) };
    case REQ.SELECT_DATA:
      return { cmd: 'select_data', index: u32(0) };
    case REQ.CLIENT_ACCESSES_BY_INDEX3:
      return { cmd: 'client_accesses', firstIndex: u32(0), nClients: u32(4), minHits: u32(8), reset: u32(12) !== 0 };
    case REQ.SERVER_STATS:
      return { cmd: 'server_stats' };
    case REQ.ACTIVITY:
      return { cmd: 'activity' };
    case REQ.MAKESTEP:
      return { cmd: 'makestep' };
    case REQ.CYCLELOGS:
      return { cmd: 'cyclelogs' };
    case REQ.DEL_SOURCE:
      return { cmd: 'del_source', address: ip(0) };
    case REQ.ACCHECK:
      return { cmd: 'accheck', address: ip(0) };
    case REQ.CMDACCHECK:
      return { cmd: 'cmdaccheck', address: ip(0) };
    case REQ.ADD_SOURCE: {
      const type = ADD_TYPES[u32(0)];
      if (!type) return { cmd: 'add_source_invalid', status: STT.INVALID };
      const nameBytes = b.subarray(d + 4, d + 4 + 256);
      if (nameBytes[255] !== 0) return { cmd: 'add_source_invalid', status: STT.INVALIDNAME };
      const nul = nameBytes.indexOf(0);
      const name = nameBytes.subarray(0, nul).toString('latin1');
      const o = 260;
      return {
        cmd: 'add_source',
        source: {
          type,
          name,
          port: u32(o),
          minpoll: i32(o + 4),
          maxpoll: i32(o + 8),
          presendMinpoll: i32(o + 12),
          minStratum: u32(o + 16),
          pollTarget: u32(o + 20),
          version: u32(o + 24),
          maxSources: u32(o + 28),
          minSamples: i32(o + 32),
          maxSamples: i32(o + 36),
          authkey: u32(o + 40),
          ntsPort: u32(o + 44),
          maxDelay: flt(o + 48),
          maxDelayRatio: flt(o + 52),
          maxDelayDevRatio: flt(o + 56),
          minDelay: flt(o + 60),
          asymmetry: flt(o + 64),
          offset: flt(o + 68),
          flags: u32(o + 72),
          filterLength: i32(o + 76),
          certSet: u32(o + 80),
          maxDelayQuant: flt(o + 84),
        },
      };
    }
    default:
      return { cmd: 'other', command };
  }
}
