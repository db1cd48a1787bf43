/**
 * ntp.conf → chrony.conf converter (`rubidiumd --convert-ntp-conf FILE`). The output targets
 * chrony 4.3 (it is checked with the real `chronyd -p` in the interop tests) and Rubidium's own
 * chrony.conf parser. Everything without an exact chrony equivalent is written as a `#` comment
 * saying what was lost.
 *
 * Access control: ntpd serves everyone unless a restrict entry says otherwise, chrony serves no
 * one unless allowed; both pick the most specific subnet. So each effective restrict entry
 * becomes `allow` or `deny` for the same subnet, and the default entries become
 * `allow 0.0.0.0/0` / `allow ::/0` when they serve.
 */
import * as fs from 'node:fs';
import { formatRestrictRule, RestrictTable } from '../ntp/restrict.js';
import { ConfigError, DEFAULT_SOURCE_OPTIONS, type Config } from './chrony-conf.js';
import { parseNtpConf, type NtpConfExtras, type NtpConfParseOptions } from './ntp-conf.js';

const NOT_SERVED = ['ignore', 'noserve', 'notrust'];

function sourceLine(c: Config['sources'][number], extra: readonly string[]): string {
  const o = c.options;
  const d = DEFAULT_SOURCE_OPTIONS;
  const w: string[] = [c.type, c.host];
  if (o.minpoll !== d.minpoll) w.push('minpoll', String(o.minpoll));
  if (o.maxpoll !== d.maxpoll) w.push('maxpoll', String(o.maxpoll));
  if (o.version !== null) w.push('version', String(o.version));
  if (o.offset !== 0) w.push('offset', String(o.offset));
  for (const f of ['iburst', 'burst', 'prefer', 'noselect', 'trust', 'xleave'] as const) if (o[f]) w.push(f);
  w.push(...extra);
  return w.join(' ');
}

/** chrony.conf text for a Config parsed from ntp.conf (extras from parseNtpConf add what Config lacks). */
export function configToChrony(c: Config, extras?: NtpConfExtras, origin?: string): string {
  const out: string[] = [];
  const notes: string[] = [...(extras?.notes ?? [])];
  out.push(`# chrony.conf converted from ${origin ?? 'ntp.conf'} by rubidiumd --convert-ntp-conf.`);
  out.push('# Lines starting with "#" at the end explain what has no exact chrony equivalent.');
  out.push('');
  for (const s of c.sources) out.push(sourceLine(s, extras?.sourceOptions.get(s) ?? []));
  if (c.minsources !== 1) out.push(`minsources ${c.minsources}`);
  if (c.maxdistance !== 3) out.push(`maxdistance ${c.maxdistance}`);
  if (c.makestep) out.push(`makestep ${c.makestep.threshold} ${c.makestep.limit}`);
  if (c.local) out.push(`local stratum ${c.local.stratum}${c.local.orphan ? ' orphan' : ''}`);
  if (c.local?.waitunsynced !== undefined) {
    notes.push(`tos orphanwait ${c.local.waitunsynced}: chrony 4.3 has no local waitunsynced (chrony >= 4.4 does)`);
  }
  if (c.driftfile !== null) {
    out.push(`driftfile ${c.driftfile}`);
    notes.push(
      `driftfile ${c.driftfile}: chronyd ignores ntpd's one-number drift file (and its opposite sign) and rewrites it in its own format`,
    );
  }
  if (c.leapseclist !== null) {
    out.push('leapsectz right/UTC');
    notes.push(
      `leapfile ${c.leapseclist}: chrony 4.3 has no leapseclist; using leapsectz right/UTC (chrony >= 4.5: leapseclist ${c.leapseclist})`,
    );
  }
  if (c.keyfile !== null) {
    out.push(`#keyfile ${c.keyfile}`);
    notes.push(
      `keys ${c.keyfile}: ntp's key file format differs from chrony's (type names, ASCII/HEX); convert it (keysToChronyText in src/config/keys-file.ts) and set keyfile`,
    );
  }
  if (c.trustedkeys.length)
    notes.push(`trustedkey ${c.trustedkeys.join(' ')}: chrony trusts every key in its key file`);
  if (c.controlkey !== null)
    notes.push(`controlkey ${c.controlkey}: chronyc does not use keys (mode 6 has no chrony equivalent)`);
  for (const a of c.bindaddress) out.push(`bindaddress ${a}`);
  if (c.noclientlog) out.push('noclientlog');

  // Access control.
  const table = new RestrictTable(c.restrict);
  const entries = table.effectiveEntries();
  const served = (flags: readonly string[]) => !flags.some((f) => NOT_SERVED.includes(f));
  let limited = false;
  for (const e of [...entries].sort((a, b) => a.prefix - b.prefix)) {
    if (e.ntpport) {
      notes.push(
        `restrict ${e.subnet} ntpport ${e.flags.join(' ')}: chrony cannot match on the source port; not converted`,
      );
      continue;
    }
    if (e.flags.includes('limited')) limited = true;
    if (e.prefix === 0) {
      if (served(e.flags)) out.push(`allow ${e.family === 4 ? '0.0.0.0/0' : '::/0'}`);
    } else out.push(`${served(e.flags) ? 'allow' : 'deny'} ${e.subnet}`);
  }
  for (const r of table.sourceRules()) {
    notes.push(`${formatRestrictRule(r)}: chronyd always accepts the replies of its own sources`);
  }
  const modeSix = entries.filter((e) =>
    e.flags.some((f) => ['noquery', 'nomodify', 'nomrulist', 'notrap'].includes(f)),
  );
  if (modeSix.length) {
    notes.push(
      'noquery/nomodify/nomrulist/notrap: chrony has no mode 6 (ntpq); chronyc access is cmdallow (localhost by default)',
    );
  }
  if (limited || c.ratelimit) {
    const r = c.ratelimit ?? { interval: 3, burst: 8, leak: 2 };
    out.push(`ratelimit interval ${r.interval} burst ${r.burst}`);
    if (entries.some((e) => !e.ntpport && !e.flags.includes('limited') && served(e.flags))) {
      notes.push("ratelimit: chrony limits every client; ntpd only those whose restrict entry has 'limited'");
    }
  }
  if (entries.some((e) => e.flags.includes('kod'))) {
    notes.push(
      'kod: chrony 4.3 drops rate-limited requests instead of answering with KoD RATE (chrony >= 4.4: ratelimit ... kod N)',
    );
  }

  // Statistics.
  if (c.statsdir !== null || c.statistics.length) {
    if (c.statsdir !== null) out.push(`logdir ${c.statsdir.replace(/\/+$/, '') || '/'}`);
    const logs = new Set<string>();
    for (const s of c.statistics) {
      if (s === 'loopstats') logs.add('tracking');
      if (s === 'peerstats') logs.add('measurements').add('statistics');
      if (s === 'clockstats') logs.add('refclocks');
    }
    if (logs.size) out.push(`log ${[...logs].join(' ')}`);
    notes.push(
      "statistics: chrony's tracking/measurements/statistics logs replace loopstats/peerstats (different format, no filegen rotation)",
    );
  }
  out.push(...(extras?.chronyLines ?? []));
  if (notes.length) {
    out.push('');
    out.push('# Not converted or approximate:');
    for (const n of notes) out.push(`#   ${n.replace(/\n/g, ' ')}`);
  }
  return out.join('\n') + '\n';
}

/** Converts ntp.conf text; errors (file:line) for what is invalid ntp.conf. */
export function ntpConfToChrony(text: string, file: string, opts: NtpConfParseOptions = {}): string {
  const { config, extras } = parseNtpConf(text, file, { ...opts, forConversion: true });
  return configToChrony(config, extras, file);
}

/** Reads and converts an ntp.conf file (rubidiumd --convert-ntp-conf). */
export function convertNtpConfFile(file: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`${file}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return ntpConfToChrony(text, file);
}
