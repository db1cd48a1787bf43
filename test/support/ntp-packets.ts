/** Packets tests send: a plain NTPv4 client request (mode 3), fields overridable. */
import { encodePacket, type NtpPacket } from '../../src/ntp/packet.js';

export function clientRequestPacket(over: Partial<NtpPacket> = {}): NtpPacket {
  return {
    leap: 0,
    version: 4,
    mode: 3,
    stratum: 0,
    poll: 6,
    precision: 0,
    rootDelay: 0,
    rootDispersion: 0,
    refId: 0,
    refTime: 0n,
    origin: 0n,
    receive: 0n,
    transmit: 0x1234_5678_9abc_def0n,
    extensions: [],
    ...over,
  };
}

export const clientRequestBytes = (over: Partial<NtpPacket> = {}): Uint8Array =>
  encodePacket(clientRequestPacket(over));
