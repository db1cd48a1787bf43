/**
 * Soak: one long loadgen run at a fraction of the measured maximum while the server, the
 * generator and the machine are sampled every few seconds (soak-analysis.ts says what the
 * samples mean and judges growth after the warm-up). A server that leaks (client table, buffers,
 * timers) or slows down over time shows a rising RSS or CPU line.
 */
import { sendControlRequest } from '../../src/control/client.js';
import type { ServerStatsReport } from '../../src/control/reports.js';
import { runLoadgen, type LoadgenArgs, type LoadgenResult } from './loadgen.js';
import {
  readCpuSeconds,
  readRunSeconds,
  readStatus,
  readSystemCpu,
  readThreadCpuSeconds,
  readUdpCounters,
  readUdpPort,
  sumProcessCpuSeconds,
} from './proc-stats.js';
import { analyzeSoak, soakIntervals, type SoakAnalysis, type SoakInterval, type SoakSample } from './soak-analysis.js';
import { LOSS_LIMIT } from './step.js';

export { analyzeSoak, type SoakSample } from './soak-analysis.js';

export interface SoakResult extends SoakAnalysis {
  server: string;
  rate: number;
  maxRate: number;
  fraction: number;
  durationS: number;
  samples: SoakSample[];
  intervals: SoakInterval[];
  load: LoadgenResult;
  lossOk: boolean;
  verdict: boolean;
}

export interface SoakOptions {
  ns: string;
  server: string;
  pid: number;
  /** The server's NTP port (its sockets' queues and drops). */
  port: number;
  /** rubidiumd's control socket (serverstats: answered requests, client table); null: none. */
  controlSocket: string | null;
  /** Serving threads (serverworkers N), to split the server's CPU by thread. */
  workerThreads: number;
  loadgen: string;
  load: LoadgenArgs;
  maxRate: number;
  fraction: number;
  /** Seconds between samples (default 10, shorter for soaks under 2 minutes). */
  sampleS?: number;
}

const optional = <T>(f: () => T): T | null => {
  try {
    return f();
  } catch {
    return null;
  }
};

async function serverCounters(path: string, t0: number): Promise<SoakSample['server']> {
  try {
    const r = await sendControlRequest({ kind: 'unix', path }, { cmd: 'serverstats', args: [] }, 2000);
    if (!r.ok) return null;
    const s = r.data as ServerStatsReport;
    return {
      t: performance.now() / 1000 - t0,
      received: s.ntpPacketsReceived,
      dropped: s.ntpPacketsDropped,
      clientLogActive: s.clientLogSizeActive,
      clientLogEvicted: s.clientLogRecordsDropped ?? 0,
    };
  } catch {
    return null;
  }
}

/** One sample: /proc first (all within a millisecond or so), then the server's own counters. */
export async function takeSoakSample(o: SoakOptions, t0: number): Promise<SoakSample> {
  const t = performance.now() / 1000 - t0;
  const cpuS = readRunSeconds(o.pid); // throws when the server is gone
  const status = optional(() => readStatus(o.pid));
  const sample: SoakSample = {
    t,
    rssKb: status?.rssKb ?? null,
    cpuS,
    cpuTickS: optional(() => readCpuSeconds(o.pid)),
    rssAnonKb: status?.rssAnonKb ?? null,
    threadCpuS: optional(() => readThreadCpuSeconds(o.pid)),
    loadgenCpuS: optional(() => sumProcessCpuSeconds((c) => c === 'loadgen', o.pid)),
    softirqdCpuS: optional(() => sumProcessCpuSeconds((c) => c.startsWith('ksoftirqd/'))),
    system: optional(readSystemCpu),
    udp: optional(() => readUdpCounters(o.pid)),
    port: optional(() => readUdpPort(o.pid, o.port)),
    server: o.controlSocket ? await serverCounters(o.controlSocket, t0) : null,
  };
  return sample;
}

/** Runs the soak (load.durationS seconds at load.rate) and samples meanwhile. */
export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  // At least ~12 samples, so that even a short soak has several in each compared window.
  const sampleS = o.sampleS ?? Math.min(10, Math.max(1, o.load.durationS / 12));
  const samples: SoakSample[] = [];
  const t0 = performance.now() / 1000;
  let pending = Promise.resolve();
  const take = (): void => {
    pending = pending.then(async () => {
      try {
        samples.push(await takeSoakSample(o, t0));
      } catch {
        /* the server died: the loadgen's loss will say so */
      }
    });
  };
  const load = runLoadgen(o.ns, o.loadgen, o.load);
  // First sample once the loadgen's warm-up is over, then every sampleS; the last one just
  // before the counted part of the run ends.
  const warmupMs = o.load.warmupMs ?? 300;
  const timers: NodeJS.Timeout[] = [];
  let interval: NodeJS.Timeout | undefined;
  timers.push(
    setTimeout(() => {
      take();
      interval = setInterval(take, sampleS * 1000);
    }, warmupMs + 200),
  );
  timers.push(
    setTimeout(
      () => {
        clearInterval(interval);
        take();
      },
      warmupMs + o.load.durationS * 1000 - 200,
    ),
  );
  let result: LoadgenResult;
  try {
    result = await load;
  } finally {
    for (const t of timers) clearTimeout(t);
    clearInterval(interval);
  }
  await pending;
  samples.sort((a, b) => a.t - b.t);
  // Times relative to the first sample (the analysis expects t = 0 there).
  const base = samples[0]?.t ?? 0;
  for (const s of samples) {
    s.t -= base;
    if (s.server) s.server.t -= base;
  }
  const analysis = analyzeSoak(samples, o.load.rate);
  const intervals = soakIntervals(samples, { rate: o.load.rate, mainTid: o.pid, workerThreads: o.workerThreads });
  const lossOk = result.lossRatio < LOSS_LIMIT;
  return {
    ...analysis,
    server: o.server,
    rate: o.load.rate,
    maxRate: o.maxRate,
    fraction: o.fraction,
    durationS: o.load.durationS,
    samples,
    intervals,
    load: result,
    lossOk,
    verdict: analysis.stable,
  };
}
