/**
 * The NTS client's cookie file in ntsdumpdir (`ADDRESS.nts`, one per NTS-KE server address, as
 * chrony names them): the keys and cookies of the last NTS-KE, so a restart needs no new NTS-KE.
 * Our own text format (chrony's NNC0 files are not read):
 *
 *   RUBIDIUM-NTS-CLIENT 1
 *   ke HOST PORT          the NTS-KE server this came from (a changed configuration discards it)
 *   ntp SERVER PORT       the NTP server and port negotiated
 *   aead ID
 *   c2s HEX
 *   s2c HEX
 *   cookie HEX            one line per cookie (1..8)
 *
 * Sans-IO: the daemon (nts-setup.ts) reads and writes the files; a bad file is an error naming
 * file:line, which the daemon turns into a warning and a fresh NTS-KE.
 */
import type { NtsKeResult } from '../nts/ntp-client.js';

const MAGIC = 'RUBIDIUM-NTS-CLIENT 1';
const MAX_COOKIES = 8;
const MAX_COOKIE_BYTES = 256;
const KEY_BYTES: Record<number, number> = { 15: 32, 30: 16 };

export interface ClientDump {
  keHost: string;
  kePort: number;
  result: NtsKeResult;
}

export class NtsDumpError extends Error {
  override name = 'NtsDumpError';
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

export function formatClientDump(d: ClientDump): string {
  const r = d.result;
  return (
    [
      MAGIC,
      `ke ${d.keHost} ${d.kePort}`,
      `ntp ${r.server} ${r.port}`,
      `aead ${r.aead}`,
      `c2s ${hex(r.c2s)}`,
      `s2c ${hex(r.s2c)}`,
      ...r.cookies.map((c) => `cookie ${hex(c)}`),
    ].join('\n') + '\n'
  );
}

function unhex(s: string, where: string, what: string, maxBytes: number): Uint8Array {
  if (s.length === 0 || s.length % 2 !== 0 || s.length > 2 * maxBytes || !/^[0-9a-f]+$/i.test(s)) {
    throw new NtsDumpError(`${where}: invalid ${what} (expected up to ${maxBytes} bytes in hex)`);
  }
  return new Uint8Array(Buffer.from(s, 'hex'));
}

function port(s: string | undefined, where: string): number {
  if (s === undefined || !/^\d{1,5}$/.test(s) || Number(s) < 1 || Number(s) > 65535) {
    throw new NtsDumpError(`${where}: invalid port '${s ?? ''}'`);
  }
  return Number(s);
}

/** Parses a cookie file; throws NtsDumpError naming file:line. */
export function parseClientDump(text: string, file: string): ClientDump {
  if (text.length > 16384) throw new NtsDumpError(`${file}: too large for an NTS cookie file`);
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  if (lines[0] !== MAGIC) throw new NtsDumpError(`${file}:1: not a Rubidium NTS cookie file`);
  let keHost: string | null = null;
  let kePort = 0;
  let server: string | null = null;
  let ntpPort = 0;
  let aead: 15 | 30 | null = null;
  let c2s: Uint8Array | null = null;
  let s2c: Uint8Array | null = null;
  const cookies: Uint8Array[] = [];
  for (let i = 1; i < lines.length; i++) {
    const where = `${file}:${i + 1}`;
    const w = lines[i]!.split(' ');
    const need = (n: number) => {
      if (w.length !== n) throw new NtsDumpError(`${where}: expected ${n - 1} value(s) after '${w[0]}'`);
    };
    switch (w[0]) {
      case 'ke':
        need(3);
        keHost = w[1]!;
        kePort = port(w[2], where);
        break;
      case 'ntp':
        need(3);
        server = w[1]!;
        ntpPort = port(w[2], where);
        break;
      case 'aead':
        need(2);
        if (w[1] !== '15' && w[1] !== '30') throw new NtsDumpError(`${where}: unsupported AEAD '${w[1]}'`);
        aead = Number(w[1]) as 15 | 30;
        break;
      case 'c2s':
      case 's2c': {
        need(2);
        const k = unhex(w[1]!, where, `${w[0]} key`, 64);
        if (w[0] === 'c2s') c2s = k;
        else s2c = k;
        break;
      }
      case 'cookie':
        need(2);
        if (cookies.length >= MAX_COOKIES) throw new NtsDumpError(`${where}: more than ${MAX_COOKIES} cookies`);
        cookies.push(unhex(w[1]!, where, 'cookie', MAX_COOKIE_BYTES));
        break;
      default:
        throw new NtsDumpError(`${where}: unknown line '${w[0] ?? ''}'`);
    }
  }
  if (keHost === null || server === null || aead === null || c2s === null || s2c === null) {
    throw new NtsDumpError(`${file}: incomplete (needs ke, ntp, aead, c2s and s2c lines)`);
  }
  if (c2s.length !== KEY_BYTES[aead] || s2c.length !== KEY_BYTES[aead]) {
    throw new NtsDumpError(`${file}: key length does not match AEAD ${aead}`);
  }
  if (cookies.length === 0) throw new NtsDumpError(`${file}: no cookies`);
  return { keHost, kePort, result: { server, port: ntpPort, aead, c2s, s2c, cookies } };
}
