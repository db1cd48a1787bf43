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
