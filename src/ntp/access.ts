/**
 * chrony-style `allow` / `deny` access rules for the NTP server.
 *
 * Semantics (as chrony.conf documents them):
 * - Nothing is allowed until an `allow` rule says so (default deny).
 * - A rule applies to a subnet; the most specific (longest prefix) matching rule decides,
 *   regardless of the order the rules were given in.
 * - `allow all SUBNET` / `deny all SUBNET` also removes every earlier rule for subnets inside
 *   SUBNET, so it overrides previous sub-rules (later, more specific rules apply again).
 * - A later rule for exactly the same subnet replaces the earlier one.
 * - No subnet (`allow`, `deny`) means every address, IPv4 and IPv6.
 * - Subnet forms: `1.2.3.4`, `1.2.3.0/24`, `1.2` (partial dotted: 1.2.0.0/16), `1.2/16`,
 *   `2001:db8::/32`, `::1`, `0/0`. A bare address is a host (/32 or /128). Host names are
 *   not resolved here (the configuration layer must resolve them first).
 * - Lookups of IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) use the IPv4 rules.
 *
 * Two lookups give the same answers: `allowed(text)` and `allowedWords(family, a0..a3)` (the
 * address as big-endian 32-bit words, src/ntp/ipaddr.ts), which the batched server path uses
 * so that no string is made per packet. The second runs over a compiled copy of the rules,
 * most specific first, in typed arrays.
 */
import { parseAddress, parseIPv4, parseIPv6 } from './ipaddr.js';

interface Rule {
  family: 4 | 6;
  /** Network address, host bits cleared. */
  bytes: Uint8Array;
  prefix: number;
  allow: boolean;
}

export interface Subnet {
  family: 4 | 6;
  bytes: Uint8Array;
  prefix: number;
}

/** Parses a chrony subnet spec for one family. Throws Error with a clear message. */
export function parseSubnet(spec: string): Subnet {
  const s = spec.trim();
  if (s === '') throw new Error('access rule: empty subnet');
  const slash = s.indexOf('/');
  const addrPart = slash >= 0 ? s.slice(0, slash) : s;
  const bitsPart = slash >= 0 ? s.slice(slash + 1) : null;
  let family: 4 | 6;
  let bytes: Uint8Array;
  let defaultBits: number;
  if (addrPart.includes(':')) {
    const b = parseIPv6(addrPart);
    if (!b) throw new Error(`access rule: invalid IPv6 address '${addrPart}' in '${spec}'`);
    family = 6;
    bytes = b;
    defaultBits = 128;
  } else {
    // Partial dotted IPv4: 1 to 4 decimal parts; missing parts are zero.
    const parts = addrPart.split('.');
    if (parts.length < 1 || parts.length > 4 || parts.some((p) => !/^[0-9]{1,3}$/.test(p) || Number(p) > 255)) {
      throw new Error(`access rule: invalid address or subnet '${spec}' (host names must be resolved first)`);
    }
    family = 4;
    bytes = new Uint8Array(4);
    parts.forEach((p, i) => (bytes[i] = Number(p)));
    defaultBits = parts.length * 8;
    if (parts.length === 4) {
      const full = parseIPv4(addrPart);
      if (!full) throw new Error(`access rule: invalid IPv4 address '${addrPart}'`);
    }
  }
  let prefix = defaultBits;
  if (bitsPart !== null) {
    if (!/^[0-9]{1,3}$/.test(bitsPart)) throw new Error(`access rule: invalid prefix length in '${spec}'`);
    prefix = Number(bitsPart);
    const max = family === 4 ? 32 : 128;
    if (prefix > max) throw new Error(`access rule: prefix length ${prefix} exceeds ${max} in '${spec}'`);
  }
  return { family, bytes: maskBytes(bytes, prefix), prefix };
}

function maskBytes(b: Uint8Array, prefix: number): Uint8Array {
  const out = b.slice();
  for (let i = 0; i < out.length; i++) {
    const bits = Math.max(0, Math.min(8, prefix - i * 8));
    out[i] = out[i]! & ((0xff00 >> bits) & 0xff);
  }
  return out;
}

function contains(net: Subnet, addr: Uint8Array): boolean {
  const full = net.prefix >> 3;
  for (let i = 0; i < full; i++) if (net.bytes[i] !== addr[i]) return false;
  const rem = net.prefix & 7;
  if (rem === 0) return true;
  const m = (0xff00 >> rem) & 0xff;
  return (addr[full]! & m) === net.bytes[full];
}

function sameSubnet(a: Subnet, b: Subnet): boolean {
  return a.family === b.family && a.prefix === b.prefix && a.bytes.every((v, i) => v === b.bytes[i]);
}

export class AccessTable {
  private rules: Rule[] = [];
  /** The rules compiled for `allowedWords`, longest prefix first: 4 network and 4 mask words each. */
  private compiledNet = new Int32Array(0);
  private compiledMask = new Int32Array(0);
  private compiledFamily = new Uint8Array(0);
  private compiledAllow = new Uint8Array(0);
  private readonly scratch = new Int32Array(4);

  /**
   * Adds a rule. `spec` empty or undefined means every address of both families.
   * `all` = the `allow all` / `deny all` form. Throws on a malformed spec.
   */
  add(allow: boolean, spec?: string, all = false): void {
    const s = spec?.trim() ?? '';
    const subnets: Subnet[] =
      s === ''
        ? [
            { family: 4, bytes: new Uint8Array(4), prefix: 0 },
            { family: 6, bytes: new Uint8Array(16), prefix: 0 },
          ]
        : [parseSubnet(s)];
    for (const net of subnets) {
      if (all) {
        this.rules = this.rules.filter(
          (r) => !(r.family === net.family && r.prefix >= net.prefix && contains(net, r.bytes)),
        );
      } else {
        this.rules = this.rules.filter((r) => !sameSubnet(r, net));
      }
      this.rules.push({ ...net, allow });
    }
    this.compile();
  }

  /**
   * `allowed` for an address given as words (unsigned or signed 32-bit values). Two rules of one
   * family and prefix length that both match are the same subnet, which `add` never keeps twice,
   * so the first match in longest-prefix order is the most specific rule.
   */
  allowedWords(family: number, a0: number, a1: number, a2: number, a3: number): boolean {
    const w = this.scratch;
    w[0] = a0;
    w[1] = a1;
    w[2] = a2;
    w[3] = a3;
    return this.allowedAt(family, w, 0);
  }

  /**
   * `allowedWords` for the address at words[off..off+3]: the form for hot paths, since 32-bit
   * values passed as arguments to a function that is not inlined are boxed (allocated).
   */
  allowedAt(family: number, words: Int32Array, off: number): boolean {
    let a0 = words[off]!;
    const a1 = words[off + 1]!;
    let a2 = words[off + 2]!;
    let a3 = words[off + 3]!;
    if (family === 6 && a0 === 0 && a1 === 0 && a2 === 0xffff) {
      family = 4; // IPv4-mapped: the IPv4 rules decide
      a0 = a3;
      a3 = 0;
      a2 = 0;
    } else if (family !== 4 && family !== 6) return false;
    const net = this.compiledNet;
    const mask = this.compiledMask;
    const fam = this.compiledFamily;
    for (let k = 0, w = 0; k < fam.length; k++, w += 4) {
      if (
        fam[k] === family &&
        (a0 & mask[w]!) === net[w] &&
        (a1 & mask[w + 1]!) === net[w + 1] &&
        (a2 & mask[w + 2]!) === net[w + 2] &&
        (a3 & mask[w + 3]!) === net[w + 3]
      ) {
        return this.compiledAllow[k] === 1;
      }
    }
    return false;
  }

  private compile(): void {
    const sorted = [...this.rules].sort((x, y) => y.prefix - x.prefix);
    const k = sorted.length;
    this.compiledNet = new Int32Array(4 * k);
    this.compiledMask = new Int32Array(4 * k);
    this.compiledFamily = new Uint8Array(k);
    this.compiledAllow = new Uint8Array(k);
    sorted.forEach((r, i) => {
      this.compiledFamily[i] = r.family;
      this.compiledAllow[i] = r.allow ? 1 : 0;
      for (let w = 0; w < 4; w++) {
        const bits = Math.max(0, Math.min(32, r.prefix - 32 * w));
        this.compiledMask[4 * i + w] = bits === 0 ? 0 : (0xffff_ffff << (32 - bits)) | 0;
        let v = 0;
        for (let b = 0; b < 4; b++) v = (v << 8) | (r.bytes[4 * w + b] ?? 0);
        this.compiledNet[4 * i + w] = v & this.compiledMask[4 * i + w]!;
      }
    });
  }

  /** Whether NTP service is allowed for a textual address; unparsable addresses are denied. */
  allowed(address: string): boolean {
    const a = parseAddress(address);
    if (!a) return false;
    let best: Rule | undefined;
    for (const r of this.rules) {
      if (r.family !== a.family || !contains(r, a.bytes)) continue;
      if (!best || r.prefix > best.prefix) best = r;
    }
    return best?.allow ?? false;
  }

  /** Number of rules held (for diagnostics). */
  get size(): number {
    return this.rules.length;
  }
}
