/**
 * CPU time and resident memory of a process from /proc (all its threads: the process-level
 * /proc/PID/stat sums utime/stime over every live thread, so rubidiumd's worker threads count).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface CpuTicks {
  /** utime and stime, in clock ticks (sysconf(_SC_CLK_TCK)). */
  user: number;
  system: number;
}

/**
 * utime and stime of a /proc/PID/stat line. The command name (field 2) is in parentheses and may
 * itself contain spaces and parentheses, so fields are counted after the LAST ')'.
 */
export function parseProcStat(line: string): CpuTicks {
  const close = line.lastIndexOf(')');
  if (close < 0) throw new Error(`not a /proc/PID/stat line: ${line.slice(0, 80)}`);
  // After ")": state(3) ppid(4) pgrp(5) session(6) tty_nr(7) tpgid(8) flags(9) minflt(10)
  // cminflt(11) majflt(12) cmajflt(13) utime(14) stime(15): utime is the 12th field after ')'.
  const f = line
    .slice(close + 1)
    .trim()
    .split(/\s+/);
  const user = Number(f[11]);
  const system = Number(f[12]);
  if (f.length < 13 || !Number.isInteger(user) || !Number.isInteger(system)) {
    throw new Error(`cannot read utime/stime from /proc/PID/stat line: ${line.slice(0, 80)}`);
  }
  return { user, system };
}

/** VmRSS of a /proc/PID/status text, in kB (null when absent, e.g. a zombie). */
export function parseVmRssKb(status: string): number | null {
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  return m ? Number(m[1]) : null;
}

let clockTicks: number | null = null;

/** sysconf(_SC_CLK_TCK) via getconf (100 on Linux unless the kernel says otherwise). */
export function clockTicksPerSecond(): number {
  if (clockTicks === null) {
    try {
      const v = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
      clockTicks = Number.isInteger(v) && v > 0 ? v : 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** Total CPU seconds (user + system) used so far by `pid`, all threads. */
export function readCpuSeconds(pid: number): number {
  const t = parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  return (t.user + t.system) / clockTicksPerSecond();
}

export function readRssKb(pid: number): number | null {
  return parseVmRssKb(readFileSync(`/proc/${pid}/status`, 'utf8'));
}

/** A CPU-time reading paired with the wall clock (monotonic), to turn deltas into a percentage. */
export interface CpuMark {
  cpuS: number;
  wallS: number;
}

export function markCpu(pid: number): CpuMark {
  return { cpuS: readCpuSeconds(pid), wallS: performance.now() / 1000 };
}

/** CPU between two marks as a percentage of one core (200 % = both cores of this machine). */
export function cpuPercent(from: CpuMark, to: CpuMark): number {
  const wall = to.wallS - from.wallS;
  return wall > 0 ? ((to.cpuS - from.cpuS) / wall) * 100 : 0;
}
