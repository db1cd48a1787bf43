/**
 * The chrony.conf leap directives (leapsecmode, smoothtime) parsed and printed here so the shared
 * parser only needs a case line. leapsectz and leapseclist are plain file names.
 */
import { ConfigError, type Config } from '../config/chrony-conf.js';

export type LeapSecMode = Config['leapsecmode'];
export const LEAP_SEC_MODES: readonly LeapSecMode[] = ['system', 'step', 'slew', 'ignore'];

function positive(s: string, what: string, where: string): number {
  const v = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s) ? Number(s) : NaN;
  if (!Number.isFinite(v) || v <= 0) throw new ConfigError(`${where}: invalid ${what} '${s}' (must be a number > 0)`);
  return v;
}

export function parseLeapDirective(c: Config, name: 'leapsecmode' | 'smoothtime', args: string[], where: string): void {
  if (name === 'leapsecmode') {
    if (args.length !== 1) throw new ConfigError(`${where}: leapsecmode takes one argument (system|step|slew|ignore)`);
    const m = args[0]!.toLowerCase();
    if (!(LEAP_SEC_MODES as readonly string[]).includes(m)) {
      throw new ConfigError(`${where}: invalid leapsecmode '${args[0]}' (system, step, slew or ignore)`);
    }
    c.leapsecmode = m as LeapSecMode;
    return;
  }
  // smoothtime max-freq max-wander [leaponly]
  if (args.length < 2) throw new ConfigError(`${where}: missing arguments for smoothtime directive`);
  if (args.length > 3) throw new ConfigError(`${where}: too many arguments for smoothtime directive`);
  const maxFreqPpm = positive(args[0]!, 'smoothtime max-freq', where);
  const maxWanderPpmPerS = positive(args[1]!, 'smoothtime max-wander', where);
  let leapOnly = false;
  if (args[2] !== undefined) {
    if (args[2].toLowerCase() !== 'leaponly') throw new ConfigError(`${where}: invalid smoothtime option '${args[2]}'`);
    leapOnly = true;
  }
  c.smoothtime = { maxFreqPpm, maxWanderPpmPerS, leapOnly };
}

/** The leap directives in chrony.conf syntax, for formatConfig (nothing when at defaults). */
export function formatLeapConfig(c: Config): string[] {
  const out: string[] = [];
  if (c.leapsectz !== null) out.push(`leapsectz ${c.leapsectz}`);
  if (c.leapseclist !== null) out.push(`leapseclist ${c.leapseclist}`);
  if (c.leapsecmode !== 'system') out.push(`leapsecmode ${c.leapsecmode}`);
  const s = c.smoothtime;
  if (s) out.push(`smoothtime ${s.maxFreqPpm} ${s.maxWanderPpmPerS}${s.leapOnly ? ' leaponly' : ''}`);
  return out;
}
