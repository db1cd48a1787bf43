/**
 * chrony.conf directives of the command channel: `cmdratelimit` and `opencommands` parsing and
 * their `rubidiumd -p` lines (cmdallow/cmddeny reuse the allow/deny parser).
 */
import { ConfigError } from '../config/config-error.js';
import { type CmdRateLimit, OPEN_COMMAND_REQUESTS } from './access.js';

/** chrony's cmdratelimit defaults: interval -4 (16/s), burst 8, leak 2. */
export const DEFAULT_CMD_RATELIMIT: Readonly<CmdRateLimit> = Object.freeze({ interval: -4, burst: 8, leak: 2 });

/** `cmdratelimit [interval N] [burst N] [leak N]` (no kod, as chronyd). */
export function parseCmdRateLimit(args: string[], where: string): CmdRateLimit {
  const r: CmdRateLimit = { ...DEFAULT_CMD_RATELIMIT };
  for (let i = 0; i < args.length; i += 2) {
    const opt = args[i]!.toLowerCase();
    const v = args[i + 1];
    if (v === undefined || !/^-?\d+$/.test(v)) {
      throw new ConfigError(`${where}: cmdratelimit option '${args[i]}' needs an integer value`);
    }
    const n = Number(v);
    if (opt === 'interval') {
      if (n < -19 || n > 12) throw new ConfigError(`${where}: cmdratelimit interval ${n} out of range -19..12`);
      r.interval = n;
    } else if (opt === 'burst') {
      if (n < 1 || n > 255) throw new ConfigError(`${where}: cmdratelimit burst ${n} out of range 1..255`);
      r.burst = n;
    } else if (opt === 'leak') {
      if (n < 0 || n > 4) throw new ConfigError(`${where}: cmdratelimit leak ${n} out of range 0..4`);
      r.leak = n;
    } else throw new ConfigError(`${where}: unknown cmdratelimit option '${args[i]}'`);
  }
  return r;
}

/** `opencommands [command]...`: chronyc command names; replaces the default list. */
export function parseOpenCommands(args: string[], where: string): string[] {
  const out: string[] = [];
  for (const a of args) {
    const n = a.toLowerCase();
    if (!Object.hasOwn(OPEN_COMMAND_REQUESTS, n)) {
      throw new ConfigError(
        `${where}: unknown command '${a}' in opencommands (known: ${Object.keys(OPEN_COMMAND_REQUESTS).join(' ')})`,
      );
    }
    if (!out.includes(n)) out.push(n);
  }
  return out;
}

export function formatCmdRateLimit(r: CmdRateLimit): string {
  return `cmdratelimit interval ${r.interval} burst ${r.burst} leak ${r.leak}`;
}
