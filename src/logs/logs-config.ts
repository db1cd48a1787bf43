/**
 * The chrony.conf log and RTC directives (log, logbanner, logchange, mailonchange, rtcsync,
 * rtcfile, rtcautotrim, rtcdevice, rtconutc, hwclockfile), parsed and printed here so the shared
 * parser only needs a case line. Values and defaults as chronyd 4.3 (conf.c).
 */
import { ConfigError, type Config, type LogName } from '../config/chrony-conf.js';

/** Every name chrony's `log` directive accepts. */
export const ALL_LOG_NAMES = [
  'rawmeasurements',
  'measurements',
  'selection',
  'statistics',
  'tracking',
  'rtc',
  'refclocks',
  'tempcomp',
] as const;

/** The ones Rubidium writes. */
export const IMPLEMENTED_LOGS: readonly LogName[] = [
  'rawmeasurements',
  'measurements',
  'selection',
  'statistics',
  'tracking',
];

/** Why the others are refused (a warning, as chronyd ignores a log it has nothing to write to). */
const NOT_IMPLEMENTED_LOGS: Record<string, string> = {
  rtc: "log 'rtc' is not supported: RTC drift tracking (rtcfile) does not write a log yet",
  refclocks: "log 'refclocks' is not supported: reference clocks are planned, not implemented",
  tempcomp: "log 'tempcomp' is not supported: temperature compensation is planned, not implemented",
};

/** chronyd's defaults. */
export const DEFAULT_LOGBANNER = 32;
export const DEFAULT_LOGCHANGE_S = 1.0;
export const DEFAULT_RTC_DEVICE = '/dev/rtc';

export const LOGS_RTC_DIRECTIVES = [
  'log',
  'logbanner',
  'logchange',
  'mailonchange',
  'rtcsync',
  'rtcfile',
  'rtcautotrim',
  'rtcdevice',
  'rtconutc',
  'hwclockfile',
] as const;
export type LogsRtcDirective = (typeof LOGS_RTC_DIRECTIVES)[number];

function count(name: string, args: string[], n: number, where: string): void {
  if (args.length < n) throw new ConfigError(`${where}: missing arguments for ${name} directive`);
  if (args.length > n) throw new ConfigError(`${where}: too many arguments for ${name} directive`);
}

function number(s: string, what: string, where: string, min: number): number {
  const v = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s) ? Number(s) : NaN;
  if (!Number.isFinite(v) || v < min)
    throw new ConfigError(`${where}: invalid ${what} '${s}' (must be a number >= ${min})`);
  return v;
}

export function parseLogsRtcDirective(c: Config, name: LogsRtcDirective, args: string[], where: string): void {
  switch (name) {
    case 'log':
      if (args.length === 0) throw new ConfigError(`${where}: missing arguments for log directive`);
      for (const raw of args) {
        const l = raw.toLowerCase();
        if (!(ALL_LOG_NAMES as readonly string[]).includes(l)) {
          throw new ConfigError(`${where}: invalid log parameter '${raw}'`);
        }
        if ((IMPLEMENTED_LOGS as readonly string[]).includes(l)) {
          if (!c.log.includes(l as LogName)) c.log.push(l as LogName);
        } else c.warnings.push(`${where}: ${NOT_IMPLEMENTED_LOGS[l]}, ignored`);
      }
      return;
    case 'logbanner':
      count(name, args, 1, where);
      if (!/^\d+$/.test(args[0]!) || Number(args[0]) > 2 ** 31 - 1) {
        throw new ConfigError(`${where}: invalid logbanner '${args[0]}' (lines between banners, 0 = never)`);
      }
      c.logbanner = Number(args[0]);
      return;
    case 'logchange':
      count(name, args, 1, where);
      c.logchange = number(args[0]!, 'logchange threshold', where, 0);
      return;
    case 'mailonchange':
      // chronyd pipes a message to sendmail; Rubidium sends no mail. logchange + log monitoring instead.
      count(name, args, 2, where);
      number(args[1]!, 'mailonchange threshold', where, 0);
      c.warnings.push(
        `${where}: mailonchange is not supported (Rubidium sends no mail), ignored; ` +
          'use logchange and watch the daemon log',
      );
      return;
    case 'rtcsync':
    case 'rtconutc':
      count(name, args, 0, where);
      c[name] = true;
      return;
    case 'rtcautotrim':
      count(name, args, 1, where);
      c.rtcautotrim = number(args[0]!, 'rtcautotrim threshold', where, 0);
      return;
    case 'rtcfile':
    case 'rtcdevice':
    case 'hwclockfile':
      count(name, args, 1, where);
      c[name] = args[0]!;
      return;
  }
}

/** The log/RTC directives in chrony.conf syntax for formatConfig (only what differs from defaults). */
export function formatLogsRtcConfig(c: Config): string[] {
  const out: string[] = [];
  if (c.logbanner !== DEFAULT_LOGBANNER) out.push(`logbanner ${c.logbanner}`);
  if (c.logchange !== null) out.push(`logchange ${c.logchange}`);
  if (c.rtcsync) out.push('rtcsync');
  if (c.rtcfile !== null) out.push(`rtcfile ${c.rtcfile}`);
  if (c.rtcautotrim !== 0) out.push(`rtcautotrim ${c.rtcautotrim}`);
  if (c.rtcdevice !== DEFAULT_RTC_DEVICE) out.push(`rtcdevice ${c.rtcdevice}`);
  if (c.rtconutc) out.push('rtconutc');
  if (c.hwclockfile !== null) out.push(`hwclockfile ${c.hwclockfile}`);
  return out;
}
