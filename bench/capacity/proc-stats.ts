/**
 * CPU time and resident memory of a process from /proc (all its threads: the process-level
 * /proc/PID/stat sums utime/stime over every live thread, so rubidiumd's worker threads count).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

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

// ---------------------------------------------------------------------------------------------
// What a soak samples besides the server's own CPU and RSS: the machine, the namespace's UDP
// counters, the server's sockets, the generator's processes (all cumulative; soak-analysis.ts
// turns consecutive samples into rates).

/** The machine's CPU time from the `cpu` line of /proc/stat, in seconds summed over all cores. */
export interface SystemCpu {
  /** Cores (cpuN lines). */
  cores: number;
  /**
   * user + nice + system + irq + softirq (guest time is inside user): tick-sampled, and under
   * this benchmark's load it does not add up with idleS (measured by NO_HZ idle); the soak uses
   * cores × wall − idle − steal instead.
   */
  busyS: number;
  /** idle + iowait. */
  idleS: number;
  /** Time the hypervisor ran something else while a vCPU wanted to run. */
  stealS: number;
  softirqS: number;
}

export function parseSystemCpu(stat: string, ticksPerS = clockTicksPerSecond()): SystemCpu {
  const line = stat.split('\n').find((l) => l.startsWith('cpu '));
  const f = line?.trim().split(/\s+/).slice(1).map(Number);
  if (!f || f.length < 8 || f.some((x) => !Number.isFinite(x))) {
    throw new Error(`no cpu line in /proc/stat: ${stat.slice(0, 80)}`);
  }
  const [user, nice, system, idle, iowait, irq, softirq, steal] = f as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  return {
    cores: stat.split('\n').filter((l) => /^cpu\d+ /.test(l)).length,
    busyS: (user + nice + system + irq + softirq) / ticksPerS,
    idleS: (idle + iowait) / ticksPerS,
    stealS: steal / ticksPerS,
    softirqS: softirq / ticksPerS,
  };
}

/** The Udp line of /proc/PID/net/snmp: counters of the network namespace PID is in. */
export interface UdpCounters {
  inDatagrams: number;
  outDatagrams: number;
  /** Datagrams dropped because a socket's receive queue was full (any socket of the namespace). */
  rcvbufErrors: number;
  inErrors: number;
}

export function parseUdpSnmp(snmp: string): UdpCounters {
  const lines = snmp.split('\n').filter((l) => l.startsWith('Udp: '));
  if (lines.length < 2) throw new Error('no Udp lines in /proc/net/snmp');
  const names = lines[0]!.trim().split(/\s+/).slice(1);
  const values = lines[1]!.trim().split(/\s+/).slice(1).map(Number);
  const get = (name: string): number => {
    const i = names.indexOf(name);
    if (i < 0 || !Number.isFinite(values[i])) throw new Error(`no Udp ${name} in /proc/net/snmp`);
    return values[i]!;
  };
  return {
    inDatagrams: get('InDatagrams'),
    outDatagrams: get('OutDatagrams'),
    rcvbufErrors: get('RcvbufErrors'),
    inErrors: get('InErrors'),
  };
}

/** The sockets bound to one local port in /proc/PID/net/udp (or udp6). */
export interface UdpPortState {
  sockets: number;
  /** Bytes waiting in their receive queues now (kernel accounting: skb truesize, not payload). */
  rxQueueBytes: number;
  /** Datagrams dropped on them so far (queue full). */
  drops: number;
}

export function parseUdpSockets(table: string, port: number): UdpPortState {
  const out: UdpPortState = { sockets: 0, rxQueueBytes: 0, drops: 0 };
  for (const line of table.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
    if (f.length < 13) continue;
    const local = f[1]!.split(':');
    if (local.length !== 2 || parseInt(local[1]!, 16) !== port) continue;
    const queues = f[4]!.split(':');
    out.sockets++;
    out.rxQueueBytes += parseInt(queues[1] ?? '0', 16) || 0;
    out.drops += Number(f[12]) || 0;
  }
  return out;
}

export function readSystemCpu(): SystemCpu {
  return parseSystemCpu(readFileSync('/proc/stat', 'utf8'));
}

/** UDP counters of the network namespace `pid` is in. */
export function readUdpCounters(pid: number): UdpCounters {
  return parseUdpSnmp(readFileSync(`/proc/${pid}/net/snmp`, 'utf8'));
}

/** The sockets on `port` (IPv4 and IPv6) in the network namespace `pid` is in. */
export function readUdpPort(pid: number, port: number): UdpPortState {
  const sum: UdpPortState = { sockets: 0, rxQueueBytes: 0, drops: 0 };
  for (const file of ['udp', 'udp6']) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/net/${file}`, 'utf8');
    } catch {
      continue;
    }
    const s = parseUdpSockets(text, port);
    sum.sockets += s.sockets;
    sum.rxQueueBytes += s.rxQueueBytes;
    sum.drops += s.drops;
  }
  return sum;
}

/** The command name (field 2) of a /proc/PID/stat line. */
export function parseProcStatComm(line: string): string {
  const open = line.indexOf('(');
  const close = line.lastIndexOf(')');
  return open >= 0 && close > open ? line.slice(open + 1, close) : '';
}

/**
 * Run time in seconds from a /proc/PID/task/TID/schedstat line ("run_ns wait_ns timeslices"): the
 * scheduler's own nanosecond count, where utime/stime in /proc/PID/stat are sampled at the timer
 * tick (CONFIG_TICK_CPU_ACCOUNTING, 250 Hz here). For the server over a 5-minute soak both gave the
 * same total (266.5 s), but the tick-sampled machine-wide busy time of /proc/stat did not add up
 * with its measured idle time (busy + idle ≠ cores × wall by up to ±30 points of a core), so the
 * soak takes machine busy time as cores × wall − idle − steal and task time from schedstat.
 */
export function parseSchedstatSeconds(line: string): number {
  const ns = Number(line.trim().split(/\s+/)[0]);
  if (!Number.isFinite(ns)) throw new Error(`not a schedstat line: ${line.slice(0, 80)}`);
  return ns / 1e9;
}

/** Run time of every thread of `pid` from schedstat, keyed by thread id (threads are all "node"). */
export function readThreadCpuSeconds(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      out[tid] = parseSchedstatSeconds(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8'));
    } catch {
      /* the thread ended meanwhile */
    }
  }
  return out;
}

/** Run time of `pid`, all its live threads, from schedstat (precise; see parseSchedstatSeconds). */
export function readRunSeconds(pid: number): number {
  const threads = readThreadCpuSeconds(pid);
  if (Object.keys(threads).length === 0) throw new Error(`no threads of ${pid}`);
  return Object.values(threads).reduce((a, b) => a + b, 0);
}

function netnsOf(pid: number | 'self'): string | null {
  try {
    return readlinkSync(`/proc/${pid}/ns/net`);
  } catch {
    return null;
  }
}

/**
 * CPU seconds (scheduler run time; tick-sampled user + system with `tick`) of the live processes
 * whose command name passes `match`, and, when
 * `sameNetnsAs` is given, that are in that process's network namespace. Processes that ended are
 * not counted: callers compare sums over a set that does not change (the loadgen's processes live
 * as long as the soak; ksoftirqd as long as the machine).
 */
export function sumProcessCpuSeconds(match: (comm: string) => boolean, sameNetnsAs?: number, tick = false): number {
  const ns = sameNetnsAs === undefined ? null : netnsOf(sameNetnsAs);
  const hz = clockTicksPerSecond();
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const line = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (!match(parseProcStatComm(line))) continue;
      if (ns !== null && netnsOf(Number(entry)) !== ns) continue;
      total += tick ? cpuOf(parseProcStat(line), hz) : readRunSeconds(Number(entry));
    } catch {
      /* gone meanwhile */
    }
  }
  return total;
}

const cpuOf = (t: CpuTicks, hz: number): number => (t.user + t.system) / hz;

/** RssAnon of a /proc/PID/status text (heap, stacks, buffers: what a leak grows), kB. */
export function parseRssAnonKb(status: string): number | null {
  const m = /^RssAnon:\s+(\d+)\s+kB$/m.exec(status);
  return m ? Number(m[1]) : null;
}

export function readStatus(pid: number): { rssKb: number | null; rssAnonKb: number | null } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  return { rssKb: parseVmRssKb(s), rssAnonKb: parseRssAnonKb(s) };
}
