/**
 * ntp.conf `restrict` / `unrestrict` rules (NTPsec 1.2 and NTP Classic 4.2.8) and their lookup.
 * Sans-IO: no DNS (host names are refused), no sockets.
 *
 * Semantics, as ntpd implements them:
 * - The matching entry with the longest prefix (most specific) decides, regardless of the order
 *   the lines were written in; an `ntpport` entry is more specific than the same address/mask
 *   without it and matches only packets from source port 123.
 * - A second `restrict` for the same address/mask (and ntpport) does not replace the first: the
 *   flags are merged. `unrestrict ... FLAGS` clears flags; `unrestrict ADDR` with no flags
 *   removes the entry (the default entries can only lose flags).
 * - A default entry always exists for IPv4 and for IPv6. NTPsec gives it `noquery limited`
 *   (anti-amplification); NTP Classic gives it no flags. `restrict default` (no -4/-6) applies to
 *   both families, `restrict -6 default` to IPv6 only.
 * - `restrict source FLAGS` is a template: each configured server's address gets a host entry
 *   with those flags (`addSourceAddress`, called once the names are resolved).
 * - IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are looked up as IPv4.
 */
import { parseAddress, parseIPv4, parseIPv6 } from './ipaddr.js';

/** Every restrict flag NTPsec 1.2 and NTP Classic 4.2.8 accept (`serverresponse fuzz` → 'serverresponse'). */
export const RESTRICT_FLAGS = [
  'flake',
  'ignore',
  'kod',
  'limited',
  'lowpriotrap',
  'mssntp',
  'nomodify',
  'nomrulist',
  'noepeer',
  'nopeer',
  'noquery',
  'noserve',
  'notrap',
  'notrust',
  'ntpport',
  'serverresponse',
  'version',
] as const;

export type RestrictFlag = (typeof RESTRICT_FLAGS)[number];

export interface RestrictRule {
  /** `default`, `source` (template for the addresses of configured sources), or an address. */
  kind: 'default' | 'source' | 'address';
  /** Network address as written, without /cidr ('' for default/source). */
  address: string;
  /** Prefix length (from /cidr or mask, host = 32/128); null for default/source. */
  prefix: number | null;
  /** -4 / -6, or the family of the address; null = both (default/source without -4/-6). */
  family: 4 | 6 | null;
  flags: RestrictFlag[];
  /** NTPsec `unrestrict`: clears these flags (or removes the entry when none) instead of setting them. */
  unrestrict: boolean;
  /** "file:line" where it was written. */
  origin: string;
}

/** The built-in flags of the default entries (NTPsec); NTP Classic has none. */
export const NTPSEC_DEFAULT_FLAGS: readonly RestrictFlag[] = ['noquery', 'limited'];

const FLAG_SET = new Set<string>(RESTRICT_FLAGS);

/**
 * Parses the words after `restrict` / `unrestrict` (NTPsec and Classic forms:
 * `[-4|-6] default|source|ADDR[/cidr] [mask M] [ippeerlimit N] [flag...]`).
 * Throws Error with a message that names the bad word (the caller adds file:line).
 */
export function parseRestrictArgs(
  args: readonly string[],
  unrestrict: boolean,
  origin: string,
  warnings: string[] = [],
): RestrictRule {
  let i = 0;
  let family: 4 | 6 | null = null;
  if (args[i] === '-4' || args[i] === '-6') family = args[i++] === '-4' ? 4 : 6;
  const target = args[i++];
  if (target === undefined) throw new Error('missing address for restrict');
  const rule: RestrictRule = { kind: 'address', address: '', prefix: null, family, flags: [], unrestrict, origin };
  if (target.toLowerCase() === 'default' || target.toLowerCase() === 'source') {
    rule.kind = target.toLowerCase() as 'default' | 'source';
  } else {
    const slash = target.indexOf('/');
    let addr = slash >= 0 ? target.slice(0, slash) : target;
    if (addr.startsWith('[') && addr.endsWith(']')) addr = addr.slice(1, -1);
    const fam: 4 | 6 | null = parseIPv4(addr) ? 4 : parseIPv6(addr) ? 6 : null;
    if (fam === null) {
      throw new Error(
        /^[A-Za-z0-9.-]+$/.test(addr) && /[A-Za-z]/.test(addr)
          ? `host name '${addr}' in restrict is not supported (write its address)`
          : `invalid address '${target}' in restrict`,
      );
    }
    if (family !== null && family !== fam) throw new Error(`address '${addr}' is not IPv${family} (-${family})`);
    rule.family = fam;
    rule.address = addr;
    const max = fam === 4 ? 32 : 128;
    rule.prefix = max;
    if (slash >= 0) {
      const bits = target.slice(slash + 1);
      if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) throw new Error(`invalid prefix length in '${target}'`);
      rule.prefix = Number(bits);
    }
  }
  for (; i < args.length; i++) {
    const w = args[i]!.toLowerCase();
    if (w === 'mask') {
      const m = args[++i];
      if (m === undefined) throw new Error('missing value for restrict mask');
      if (rule.kind !== 'address') throw new Error(`mask is not valid with restrict ${rule.kind}`);
      rule.prefix = maskToPrefix(m, rule.family!);
    } else if (w === 'ippeerlimit') {
      const v = args[++i];
      if (v === undefined || !/^-?\d+$/.test(v)) throw new Error('ippeerlimit needs an integer');
      warnings.push(`${origin}: restrict ippeerlimit has no effect (Rubidium has no symmetric mode)`);
    } else if (w === 'serverresponse') {
      if (args[i + 1]?.toLowerCase() !== 'fuzz') throw new Error("serverresponse must be followed by 'fuzz'");
      i++;
      addFlag(rule.flags, 'serverresponse');
    } else if (FLAG_SET.has(w)) {
      addFlag(rule.flags, w as RestrictFlag);
    } else if (w === 'interface') {
      throw new Error("restrict flag 'interface' is internal to ntpd and cannot be configured");
    } else {
      throw new Error(`unknown restrict flag '${args[i]}'`);
    }
  }
  if (rule.kind === 'address' && rule.address) rule.address = canonicalNetwork(rule.address, rule.prefix!);
  return rule;
}

function addFlag(list: RestrictFlag[], f: RestrictFlag): void {
  if (!list.includes(f)) list.push(f);
}

/** Converts a netmask to a prefix length; non-contiguous masks are refused. */
export function maskToPrefix(mask: string, family: 4 | 6): number {
  const b = family === 4 ? parseIPv4(mask) : parseIPv6(mask);
  if (!b) throw new Error(`invalid mask '${mask}' (must be an IPv${family} address)`);
  let prefix = 0;
  let seenZero = false;
  for (const byte of b) {
    for (let bit = 7; bit >= 0; bit--) {
      if ((byte >> bit) & 1) {
        if (seenZero) throw new Error(`mask '${mask}' is not contiguous`);
        prefix++;
      } else seenZero = true;
    }
  }
  return prefix;
}

/** The network address of ADDR/prefix, as text (host bits cleared). */
function canonicalNetwork(addr: string, prefix: number): string {
  const v4 = parseIPv4(addr);
  if (v4) return [...maskBytes(v4, prefix)].join('.');
  const v6 = maskBytes(parseIPv6(addr)!, prefix);
  const words: string[] = [];
  for (let k = 0; k < 16; k += 2) words.push(((v6[k]! << 8) | v6[k + 1]!).toString(16));
  return compressV6(words);
}

function compressV6(words: string[]): string {
  // Longest run of zero words (length ≥ 2) becomes '::' (RFC 5952).
  let best = -1;
  let bestLen = 1;
  for (let s = 0; s < 8;) {
    if (words[s] !== '0') {
      s++;
      continue;
    }
    let e = s;
    while (e < 8 && words[e] === '0') e++;
    if (e - s > bestLen) {
      best = s;
      bestLen = e - s;
    }
    s = e;
  }
  if (best < 0) return words.join(':');
  return words.slice(0, best).join(':') + '::' + words.slice(best + bestLen).join(':');
}

function maskBytes(b: Uint8Array, prefix: number): Uint8Array {
  const out = b.slice();
  for (let k = 0; k < out.length; k++) {
    const bits = Math.max(0, Math.min(8, prefix - k * 8));
    out[k] = out[k]! & ((0xff00 >> bits) & 0xff);
  }
  return out;
}

function contains(e: Entry, addr: Uint8Array): boolean {
  const full = e.prefix >> 3;
  for (let k = 0; k < full; k++) if (e.bytes[k] !== addr[k]) return false;
  const rem = e.prefix & 7;
  if (rem === 0) return true;
  const m = (0xff00 >> rem) & 0xff;
  return (addr[full]! & m) === e.bytes[full];
}

interface Entry {
  family: 4 | 6;
  bytes: Uint8Array;
  prefix: number;
  ntpport: boolean;
  flags: Set<RestrictFlag>;
  isDefault: boolean;
}

/** What the matching entry allows, in Rubidium's terms. */
export interface RestrictDecision {
  flags: ReadonlySet<RestrictFlag>;
  /** Time service (mode 3): not ignore, noserve or notrust (Rubidium's server verifies no MACs). */
  serve: boolean;
  /** Mode 6 read queries (ntpq): not ignore or noquery. */
  query: boolean;
  /** Mode 6 writes: query allowed and not nomodify. */
  modify: boolean;
  /** MRU list: query allowed and not nomrulist. */
  mrulist: boolean;
  /** Subject to response rate limiting (`limited`). */
  limited: boolean;
  /** Send KoD (RATE when rate limited) instead of dropping silently (`kod`). */
  kod: boolean;
}

export interface RestrictTableOptions {
  /** Flags the built-in default entries start with (NTPsec: noquery limited; Classic: none). */
  defaultFlags?: readonly RestrictFlag[];
}

export class RestrictTable {
  private entries: Entry[] = [];
  private readonly sourceTemplates: RestrictRule[] = [];

  constructor(rules: readonly RestrictRule[] = [], opts: RestrictTableOptions = {}) {
    const df = opts.defaultFlags ?? NTPSEC_DEFAULT_FLAGS;
    for (const family of [4, 6] as const) {
      this.entries.push({
        family,
        bytes: new Uint8Array(family === 4 ? 4 : 16),
        prefix: 0,
        ntpport: false,
        flags: new Set(df),
        isDefault: true,
      });
    }
    for (const r of rules) this.apply(r);
  }

  /** Applies one rule (in file order; merging and unrestrict depend on order, matching does not). */
  apply(r: RestrictRule): void {
    if (r.kind === 'source') {
      this.sourceTemplates.push(r);
      return;
    }
    const ntpport = r.flags.includes('ntpport');
    const flags = r.flags.filter((f) => f !== 'ntpport');
    const targets: Array<{ family: 4 | 6; bytes: Uint8Array; prefix: number }> = [];
    if (r.kind === 'default') {
      for (const family of [4, 6] as const) {
        if (r.family === null || r.family === family) {
          targets.push({ family, bytes: new Uint8Array(family === 4 ? 4 : 16), prefix: 0 });
        }
      }
    } else {
      const a = r.family === 4 ? parseIPv4(r.address) : parseIPv6(r.address);
      if (!a || r.prefix === null) throw new Error(`${r.origin}: invalid restrict address '${r.address}'`);
      targets.push({ family: r.family!, bytes: maskBytes(a, r.prefix), prefix: r.prefix });
    }
    for (const t of targets) this.merge(t, ntpport && r.kind !== 'default', flags, r.unrestrict);
  }

  private merge(
    t: { family: 4 | 6; bytes: Uint8Array; prefix: number },
    ntpport: boolean,
    flags: RestrictFlag[],
    unrestrict: boolean,
  ): void {
    const idx = this.entries.findIndex(
      (e) =>
        e.family === t.family &&
        e.prefix === t.prefix &&
        e.ntpport === ntpport &&
        e.bytes.every((v, k) => v === t.bytes[k]),
    );
    const e = idx >= 0 ? this.entries[idx] : undefined;
    if (unrestrict) {
      if (!e) return;
      if (flags.length === 0) {
        if (!e.isDefault) this.entries.splice(idx, 1);
        return;
      }
      for (const f of flags) e.flags.delete(f);
      return;
    }
    if (e) for (const f of flags) e.flags.add(f);
    else this.entries.push({ ...t, ntpport, flags: new Set(flags), isDefault: false });
  }

  /** Adds host entries for a configured source's address from the `restrict source` templates. */
  addSourceAddress(address: string): void {
    const a = parseAddress(address);
    if (!a) return;
    for (const tpl of this.sourceTemplates) {
      if (tpl.family !== null && tpl.family !== a.family) continue;
      const flags = tpl.flags.filter((f) => f !== 'ntpport');
      this.merge(
        { family: a.family, bytes: a.bytes, prefix: a.family === 4 ? 32 : 128 },
        tpl.flags.includes('ntpport'),
        flags,
        tpl.unrestrict,
      );
    }
  }

  /** Whether `restrict source` rules exist (the daemon then calls addSourceAddress per source). */
  get hasSourceTemplates(): boolean {
    return this.sourceTemplates.length > 0;
  }

  /**
   * Flags of the most specific entry matching `address` (and `port`, for ntpport entries; with
   * no port given, ntpport entries never match). An unparsable address gets `ignore`.
   */
  lookup(address: string, port?: number): ReadonlySet<RestrictFlag> {
    const a = parseAddress(address);
    if (!a) return new Set<RestrictFlag>(['ignore']);
    let best: Entry | undefined;
    for (const e of this.entries) {
      if (e.family !== a.family || !contains(e, a.bytes)) continue;
      if (e.ntpport && port !== 123) continue;
      if (!best || e.prefix > best.prefix || (e.prefix === best.prefix && e.ntpport && !best.ntpport)) best = e;
    }
    return best!.flags;
  }

  decide(address: string, port?: number): RestrictDecision {
    const f = this.lookup(address, port);
    const query = !f.has('ignore') && !f.has('noquery');
    return {
      flags: f,
      serve: !f.has('ignore') && !f.has('noserve') && !f.has('notrust'),
      query,
      modify: query && !f.has('nomodify'),
      mrulist: query && !f.has('nomrulist'),
      limited: f.has('limited'),
      kod: f.has('kod'),
    };
  }

  /** NTP time service allowed (the NtpServer `access` predicate). */
  serveAllowed(address: string, port?: number): boolean {
    return this.decide(address, port).serve;
  }

  /** Mode 6 (ntpq) read queries allowed — for the mode 6 handler. */
  queryAllowed(address: string, port?: number): boolean {
    return this.decide(address, port).query;
  }

  /** Mode 6 writes allowed (not nomodify). */
  modifyAllowed(address: string, port?: number): boolean {
    return this.decide(address, port).modify;
  }

  /** Whether any entry (or source template) uses `limited` — then the server needs rate limiting. */
  get usesLimited(): boolean {
    return (
      this.entries.some((e) => e.flags.has('limited')) || this.sourceTemplates.some((t) => t.flags.includes('limited'))
    );
  }

  get size(): number {
    return this.entries.length;
  }

  /** The effective entries after merging (for the chrony.conf converter), defaults first. */
  effectiveEntries(): Array<{
    subnet: string;
    family: 4 | 6;
    prefix: number;
    ntpport: boolean;
    flags: RestrictFlag[];
  }> {
    return this.entries.map((e) => ({
      subnet: `${canonicalNetwork(e.family === 4 ? [...e.bytes].join('.') : bytesToV6(e.bytes), e.prefix)}/${e.prefix}`,
      family: e.family,
      prefix: e.prefix,
      ntpport: e.ntpport,
      flags: [...e.flags],
    }));
  }

  /** `restrict source` templates, in file order. */
  sourceRules(): readonly RestrictRule[] {
    return this.sourceTemplates;
  }
}

function bytesToV6(b: Uint8Array): string {
  const words: string[] = [];
  for (let k = 0; k < 16; k += 2) words.push(((b[k]! << 8) | b[k + 1]!).toString(16));
  return words.join(':');
}

/** Prints a rule back in ntp.conf syntax. */
export function formatRestrictRule(r: RestrictRule): string {
  const w: string[] = [r.unrestrict ? 'unrestrict' : 'restrict'];
  if (r.kind !== 'address' && r.family !== null) w.push(`-${r.family}`);
  if (r.kind === 'address') {
    const host = r.prefix === (r.family === 4 ? 32 : 128);
    w.push(host ? r.address : `${r.address}/${r.prefix}`);
  } else w.push(r.kind);
  for (const f of r.flags) w.push(f === 'serverresponse' ? 'serverresponse fuzz' : f);
  return w.join(' ');
}
