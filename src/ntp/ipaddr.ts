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

/*
 * Addresses as words: the form the batched socket layer delivers (src/io/batch-udp.ts) and the
 * client table and access rules key on, so the hot path never makes a string. A word is the
 * address's bytes as a big-endian 32-bit value; IPv4 uses a0 only (a1..a3 = 0). An IPv4-mapped
 * IPv6 address stays family 6 here (it is a different socket address); access rules treat it
 * as IPv4, as `parseAddress` does.
 */

/**
 * Parses `address` into out[offset..offset+3]; returns its family, or 0 (out untouched) when it
 * is not an IP address. IPv4 is parsed without allocating.
 */
export function parseAddressWords(address: string, out: Int32Array, offset: number): 0 | 4 | 6 {
  const v4 = parseIPv4Word(address);
  if (v4 >= 0) {
    out[offset] = v4;
    out[offset + 1] = 0;
    out[offset + 2] = 0;
    out[offset + 3] = 0;
    return 4;
  }
  return parseIPv6Words(address, out, offset) ? 6 : 0;
}

const groups = new Int32Array(8);

/**
 * `parseIPv6` into words without allocating: accepts exactly what it accepts (`::`, an IPv4
 * tail, a %zone that is ignored).
 */
function parseIPv6Words(s: string, out: Int32Array, offset: number): boolean {
  let n = s.indexOf('%');
  if (n < 0) n = s.length;
  if (n === 0 || n > 45) return false;
  let count = 0; // groups parsed
  let gap = -1; // group index where '::' stands
  let i = 0;
  if (s.charCodeAt(0) === 58) {
    if (s.charCodeAt(1) !== 58) return false;
    gap = 0;
    i = 2;
  }
  while (i < n) {
    // One group: 1..4 hex digits, or a dotted quad that ends the address.
    const start = i;
    let v = 0;
    while (i < n && i - start < 5) {
      const d = hexDigit(s.charCodeAt(i));
      if (d < 0) break;
      v = v * 16 + d;
      i++;
    }
    if (i < n && s.charCodeAt(i) === 46) {
      const w = count <= 6 ? parseIPv4Range(s, start, n) : -1;
      if (w < 0) return false;
      groups[count++] = w >>> 16;
      groups[count++] = w & 0xffff;
      i = n;
      break;
    }
    if (i === start || i - start > 4 || count === 8) return false;
    groups[count++] = v;
    if (i === n) break;
    if (s.charCodeAt(i) !== 58) return false;
    i++;
    if (i < n && s.charCodeAt(i) === 58) {
      if (gap >= 0) return false;
      gap = count;
      i++;
    } else if (i === n) return false; // a single trailing ':'
  }
  if (gap >= 0 ? count > 7 : count !== 8) return false;
  // Expand '::' and pack the eight groups into four words.
  const missing = 8 - count;
  for (let g = 7, src = count - 1; g >= 0; g--) {
    if (gap >= 0 && src < gap && g >= gap && g < gap + missing) {
      groups[g] = 0;
      continue;
    }
    groups[g] = groups[src--]!;
  }
  for (let k = 0; k < 4; k++) out[offset + k] = (groups[2 * k]! << 16) | groups[2 * k + 1]!;
  return true;
}

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** As `parseAddressWords`, for an address known to be valid: throws RangeError otherwise. */
export function addressToWords(address: string, out: Int32Array, offset: number): 4 | 6 {
  const family = parseAddressWords(address, out, offset);
  if (family === 0) throw new RangeError(`not an IP address: '${address}'`);
  return family;
}

/** A dotted quad as an unsigned 32-bit value, or -1; accepts exactly what `parseIPv4` accepts. */
function parseIPv4Word(s: string): number {
  return parseIPv4Range(s, 0, s.length);
}

/** `parseIPv4Word` of s[start..end). */
function parseIPv4Range(s: string, start: number, end: number): number {
  if (end - start < 7 || end - start > 15) return -1;
  let word = 0;
  let part = 0;
  let digits = 0;
  let parts = 0;
  for (let i = start; i <= end; i++) {
    const c = i < end ? s.charCodeAt(i) : 46; // a virtual '.' ends the last part
    if (c >= 48 && c <= 57) {
      if (++digits > 3) return -1;
      part = part * 10 + (c - 48);
    } else if (c === 46) {
      if (digits === 0 || part > 255 || ++parts > 4) return -1;
      word = word * 256 + part;
      part = 0;
      digits = 0;
    } else return -1;
  }
  return parts === 4 ? word : -1;
}

/**
 * Text of an address given as words, as Node's socket layer writes it (libuv's inet_ntop:
 * RFC 5952 hex groups, the longest run of two or more zero groups as `::`, an IPv4 tail for
 * ::ffff:a.b.c.d and ::a.b.c.d), so rows made from either path print the same.
 */
export function formatAddressWords(family: number, a0: number, a1: number, a2: number, a3: number): string {
  if (family === 4) return dotted(a0);
  const g = [a0 >>> 16, a0 & 0xffff, a1 >>> 16, a1 & 0xffff, a2 >>> 16, a2 & 0xffff, a3 >>> 16, a3 & 0xffff];
  let bestBase = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestBase = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestLen < 2) bestBase = -1;
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (bestBase !== -1 && i >= bestBase && i < bestBase + bestLen) {
      if (i === bestBase) out += ':';
      continue;
    }
    if (i !== 0) out += ':';
    if (i === 6 && bestBase === 0 && (bestLen === 6 || (bestLen === 5 && g[5] === 0xffff))) {
      return out + dotted(a3);
    }
    out += g[i]!.toString(16);
  }
  if (bestBase !== -1 && bestBase + bestLen === 8) out += ':';
  return out;
}

function dotted(w: number): string {
  return `${w >>> 24}.${(w >>> 16) & 255}.${(w >>> 8) & 255}.${w & 255}`;
}
