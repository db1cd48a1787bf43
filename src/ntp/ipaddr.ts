/**
 * Minimal textual IP address parsing for refids and access rules (no DNS, no sockets).
 * IPv4-mapped IPv6 addresses (::ffff:a.b.c.d, what a dual-stack socket reports for IPv4 peers)
 * are normalised to IPv4 by `parseAddress`.
 */

export type IpAddress = { family: 4; bytes: Uint8Array } | { family: 6; bytes: Uint8Array };

/** Parses a dotted-quad IPv4 address (exactly four decimal parts). */
export function parseIPv4(text: string): Uint8Array | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^[0-9]{1,3}$/.test(p)) return null;
    const v = Number(p);
    if (v > 255) return null;
    out[i] = v;
  }
  return out;
}

/** Parses an IPv6 address (RFC 4291 text forms, `::` compression, IPv4 tail, optional %zone). */
export function parseIPv6(text: string): Uint8Array | null {
  const pct = text.indexOf('%');
  if (pct >= 0) text = text.slice(0, pct);
  if (text.length === 0 || text.length > 45) return null;
  const dbl = text.indexOf('::');
  if (dbl >= 0 && text.indexOf('::', dbl + 1) >= 0) return null;
  const parseGroups = (s: string): number[] | null => {
    if (s === '') return [];
    const groups = s.split(':');
    const words: number[] = [];
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i]!;
      if (i === groups.length - 1 && g.includes('.')) {
        const v4 = parseIPv4(g);
        if (!v4) return null;
        words.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
      words.push(parseInt(g, 16));
    }
    return words;
  };
  let words: number[];
  if (dbl >= 0) {
    const head = parseGroups(text.slice(0, dbl));
    const tail = parseGroups(text.slice(dbl + 2));
    if (!head || !tail) return null;
    // An IPv4 tail is only allowed at the very end.
    if (text.slice(0, dbl).includes('.')) return null;
    const missing = 8 - head.length - tail.length;
    if (missing < 1) return null;
    words = [...head, ...new Array<number>(missing).fill(0), ...tail];
  } else {
    const all = parseGroups(text);
    if (!all || all.length !== 8) return null;
    words = all;
  }
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    out[2 * i] = words[i]! >> 8;
    out[2 * i + 1] = words[i]! & 0xff;
  }
  return out;
}

/** Parses an IPv4 or IPv6 address; IPv4-mapped IPv6 becomes IPv4. */
export function parseAddress(text: string): IpAddress | null {
  const v4 = parseIPv4(text);
  if (v4) return { family: 4, bytes: v4 };
  const v6 = parseIPv6(text);
  if (!v6) return null;
  if (isV4Mapped(v6)) return { family: 4, bytes: v6.slice(12) };
  return { family: 6, bytes: v6 };
}

function isV4Mapped(b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

/**
 * Loopback source addresses (127.0.0.0/8, ::1, and their IPv4-mapped forms). Linux drops
 * packets with a loopback source arriving on any other interface (martians), so a request
 * from such an address was sent on this host and its source cannot be spoofed from outside.
 */
export function isLoopbackAddress(address: string): boolean {
  const a = parseAddress(address);
  if (!a) return false;
  if (a.family === 4) return a.bytes[0] === 127;
  for (let i = 0; i < 15; i++) if (a.bytes[i] !== 0) return false;
  return a.bytes[15] === 1;
}
