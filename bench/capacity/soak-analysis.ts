/**
 * What a soak's samples say (pure: soak.ts takes the samples, report.ts prints this).
 *
 * Per interval between samples: the server's CPU (and how it splits over its threads), the
 * generator's, the kernel's ksoftirqd, everything else on the machine, idle and steal; RSS; the
 * client table; answered rate, receive-queue drops and depth, loss. Then the verdict:
 *
 * - Warm-up: the first MIN_WARMUP_S (JIT tiers, V8 sizes its heaps, queues settle), longer if the
 *   server's client table was still growing then (it ends at the sample where the table reached
 *   its final size; a bounded, known transient). Never more than half the soak.
 * - Growth is judged over the rest by a least-squares line through RSS (per sample) and server
 *   CPU % (per interval): the slope in % of the mean per minute must stay under RSS_SLOPE_LIMIT and
 *   CPU_SLOPE_LIMIT. A fit uses every sample, so one noisy minute (another job, a VM hiccup) moves
 *   it little, while a steady leak or slow-down of the limit's size shows in a few minutes.
 * - And the last minute against the first minute after the warm-up (the second minute of a long
 *   soak): RSS < END_RSS_LIMIT, CPU < END_CPU_LIMIT more. This catches growth that starts late.
 */
import type { SystemCpu, UdpCounters, UdpPortState } from './proc-stats.js';

export const MIN_WARMUP_S = 60;
/** % of the mean per minute: 0.5 %/min is 5 % over a 10-minute soak. */
export const RSS_SLOPE_LIMIT = 0.5;
export const CPU_SLOPE_LIMIT = 1;
export const END_RSS_LIMIT = 0.05;
export const END_CPU_LIMIT = 0.1;

/** Counters from the server's own `serverstats` (rubidiumd's control socket). */
export interface ServerCounters {
  /** Seconds since the first sample when the answer came. */
  t: number;
  received: number;
  dropped: number;
  clientLogActive: number;
  /** Records evicted to make room (chrony's "Client log records dropped"). */
  clientLogEvicted: number;
}

export interface SoakSample {
  /** Seconds since the first sample. */
  t: number;
  rssKb: number | null;
  /** Cumulative CPU seconds of the server (all threads; scheduler run time, see proc-stats.ts). */
  cpuS: number;
  /** The same from tick-sampled utime + stime (/proc/PID/stat), for comparison. */
  cpuTickS?: number | null;
  rssAnonKb?: number | null;
  /** Cumulative CPU seconds per thread id of the server. */
  threadCpuS?: Record<string, number> | null;
  /** Cumulative CPU seconds of the loadgen's processes. */
  loadgenCpuS?: number | null;
  /** Cumulative CPU seconds of the ksoftirqd threads (network work the kernel deferred). */
  softirqdCpuS?: number | null;
  system?: SystemCpu | null;
  /** UDP counters of the benchmark namespace. */
  udp?: UdpCounters | null;
  /** The server's sockets on the NTP port. */
  port?: UdpPortState | null;
  server?: ServerCounters | null;
}

export interface SoakInterval {
  /** End of the interval, s since the first sample. */
  t: number;
  dt: number;
  /** % of one core (200 % = both cores of this machine). */
  serverCpuPct: number;
  /** The same from tick-sampled utime + stime (null in older samples). */
  serverTickCpuPct: number | null;
  /** The server's main thread, each of its busiest `workers` threads (the NTP workers), the rest. */
  mainPct: number | null;
  workerPcts: number[] | null;
  restPct: number | null;
  loadgenCpuPct: number | null;
  /** Of the softirq time: the part the kernel deferred to its ksoftirqd threads. */
  softirqdPct: number | null;
  /**
   * The machine's softirq time (loopback delivery of every datagram, both ways; tick-sampled).
   * Without CONFIG_IRQ_TIME_ACCOUNTING it is also inside the run time of the task it interrupted.
   */
  softirqPct: number | null;
  /**
   * Machine time neither idle nor stolen nor used by the server, the loadgen or ksoftirqd: other
   * jobs (and the runner).
   */
  otherPct: number | null;
  idlePct: number | null;
  stealPct: number | null;
  rssKb: number | null;
  rssAnonKb: number | null;
  clientLog: number | null;
  evicted: number | null;
  /** Requests the server's serverstats counted per second. */
  answeredRate: number | null;
  /** Receive-queue drops in the namespace over the interval (the server's sockets: the loadgen's report none). */
  drops: number | null;
  /** drops / (answered + drops), or drops / (rate × dt) without answer counts. */
  lossRatio: number | null;
  /** Bytes in the server's receive queues at the end (kernel truesize, ~1 kB per request). */
  rxQueueKb: number | null;
  cpuUsPerRequest: number | null;
}

export interface LineFit {
  n: number;
  mean: number;
  /** Units per second. */
  slope: number;
  /** Standard error of the slope. */
  slopeSe: number;
  /** slope × 60 / mean, in % per minute (± 2 standard errors in pctPerMinSe2). */
  pctPerMin: number;
  pctPerMinSe2: number;
}

/** Least-squares line through (x, y); null with fewer than 3 points or no spread in x. */
export function fitLine(xs: readonly number[], ys: readonly number[]): LineFit | null {
  const n = xs.length;
  if (n < 3 || ys.length !== n) return null;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxx = 0;
  let sxy = 0;
  for (let i = 0; i < n; i++) {
    sxx += (xs[i]! - mx) ** 2;
    sxy += (xs[i]! - mx) * (ys[i]! - my);
  }
  if (!(sxx > 0)) return null;
  const slope = sxy / sxx;
  let ssr = 0;
  for (let i = 0; i < n; i++) ssr += (ys[i]! - (my + slope * (xs[i]! - mx))) ** 2;
  const slopeSe = Math.sqrt(ssr / (n - 2) / sxx);
  const pct = (s: number): number => (my !== 0 ? ((s * 60) / Math.abs(my)) * 100 : NaN);
  return { n, mean: my, slope, slopeSe, pctPerMin: pct(slope), pctPerMinSe2: pct(2 * slopeSe) };
}

const delta = <T>(a: T, b: T, f: (x: T) => number | null | undefined): number | null => {
  const x = f(a);
  const y = f(b);
  return x === null || x === undefined || y === null || y === undefined ? null : y - x;
};

/** The busiest `count` threads over the whole soak other than `mainTid` (the NTP workers). */
function busiestThreads(samples: readonly SoakSample[], mainTid: string, count: number): string[] {
  const first = samples[0]?.threadCpuS ?? {};
  const last = samples[samples.length - 1]?.threadCpuS ?? {};
  const used = Object.keys(last)
    .filter((tid) => tid !== mainTid)
    .map((tid) => ({ tid, s: last[tid]! - (first[tid] ?? 0) }))
    .sort((a, b) => b.s - a.s);
  return used
    .slice(0, count)
    .map((u) => u.tid)
    .sort((a, b) => Number(a) - Number(b));
}

export interface IntervalOptions {
  /** Requests per second the loadgen sent. */
  rate: number;
  /** The server's pid (= its main thread id); null: no thread split. */
  mainTid?: number | null;
  /** How many threads serve (serverworkers N); default 0. */
  workerThreads?: number;
}

const ratio = (x: number, of: number): number | null => (of > 0 ? x / of : null);

/** One row per pair of consecutive samples. */
export function soakIntervals(samples: readonly SoakSample[], o: IntervalOptions): SoakInterval[] {
  const mainTid = o.mainTid === null || o.mainTid === undefined ? null : String(o.mainTid);
  const workers = mainTid !== null ? busiestThreads(samples, mainTid, o.workerThreads ?? 0) : [];
  const out: SoakInterval[] = [];
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1]!;
    const b = samples[i]!;
    const dt = b.t - a.t;
    if (!(dt > 0)) continue;
    const pct = (s: number | null): number | null => (s === null ? null : (s / dt) * 100);
    const serverS = b.cpuS - a.cpuS;
    let mainPct: number | null = null;
    let workerPcts: number[] | null = null;
    let restPct: number | null = null;
    if (mainTid !== null && a.threadCpuS && b.threadCpuS) {
      let main = 0;
      const wk = workers.map(() => 0);
      let rest = 0;
      for (const [tid, s] of Object.entries(b.threadCpuS)) {
        const d = s - (a.threadCpuS[tid] ?? 0);
        const w = workers.indexOf(tid);
        if (tid === mainTid) main += d;
        else if (w >= 0) wk[w]! += d;
        else rest += d;
      }
      mainPct = pct(main);
      workerPcts = wk.map((x) => (x / dt) * 100);
      restPct = pct(rest);
    }
    const loadgenS = delta(a, b, (s) => s.loadgenCpuS);
    const softirqdS = delta(a, b, (s) => s.softirqdCpuS);
    // Busy from the measured idle time: the tick-sampled busy counters do not add up (proc-stats.ts).
    const idleS = delta(a, b, (s) => s.system?.idleS);
    const stealS = delta(a, b, (s) => s.system?.stealS);
    const cores = b.system?.cores ?? 0;
    const busyS = idleS === null || !(cores > 0) ? null : cores * dt - idleS - (stealS ?? 0);
    const softirqS = delta(a, b, (s) => s.system?.softirqS);
    // Softirq run in a task's context is inside that task's run time; ksoftirqd's is its own.
    const otherS = busyS === null ? null : Math.max(0, busyS - serverS - (loadgenS ?? 0) - (softirqdS ?? 0));
    const drops = delta(a, b, (s) => s.udp?.rcvbufErrors);
    const requests = o.rate * dt;
    const received = delta(a, b, (s) => s.server?.received);
    const serverDt = delta(a, b, (s) => s.server?.t);
    const answeredRate = received !== null && serverDt !== null && serverDt > 0 ? received / serverDt : null;
    const answered = answeredRate !== null ? answeredRate * dt : requests - (drops ?? 0);
    out.push({
      t: b.t,
      dt,
      serverCpuPct: (serverS / dt) * 100,
      mainPct,
      workerPcts,
      restPct,
      loadgenCpuPct: pct(loadgenS),
      softirqdPct: pct(softirqdS),
      softirqPct: pct(softirqS),
      otherPct: pct(otherS),
      idlePct: pct(idleS),
      stealPct: pct(stealS),
      serverTickCpuPct: pct(delta(a, b, (s) => s.cpuTickS)),
      rssKb: b.rssKb,
      rssAnonKb: b.rssAnonKb ?? null,
      clientLog: b.server?.clientLogActive ?? null,
      evicted: delta(a, b, (s) => s.server?.clientLogEvicted),
      answeredRate,
      drops,
      // Of the requests that reached the server in the interval (the loadgen catches up after it
      // was held up, so its sends per interval vary); rate × dt when the answers are not counted.
      lossRatio:
        drops === null ? null : answeredRate !== null ? ratio(drops, answered + drops) : ratio(drops, requests),
      rxQueueKb: b.port ? b.port.rxQueueBytes / 1024 : null,
      cpuUsPerRequest: answered > 0 ? (serverS * 1e6) / answered : null,
    });
  }
  return out;
}

export interface SoakWindow {
  from: number;
  to: number;
  /** Mean RSS of the samples in the window. */
  rssKb: number | null;
  /** CPU over the intervals in the window, % of one core. */
  cpuPct: number | null;
}

function windowStats(samples: readonly SoakSample[], from: number, to: number): SoakWindow {
  const inside = samples.filter((s) => s.t >= from - 1e-9 && s.t <= to + 1e-9);
  const rss = inside.map((s) => s.rssKb).filter((x): x is number => x !== null);
  const a = inside[0];
  const b = inside[inside.length - 1];
  const wall = a && b ? b.t - a.t : 0;
  return {
    from,
    to,
    rssKb: rss.length ? rss.reduce((x, y) => x + y, 0) / rss.length : null,
    cpuPct: a && b && wall > 0 ? ((b.cpuS - a.cpuS) / wall) * 100 : null,
  };
}

export interface SoakAnalysis {
  /** Seconds excluded at the start, and why. */
  warmupS: number;
  warmupReason: string;
  /** Length of the two compared windows (60 s, less for short soaks). */
  window: number;
  /** The first window after the warm-up, and the last. */
  first: SoakWindow;
  last: SoakWindow;
  rssGrowth: number | null;
  /** Growth of the judged CPU figure (cpuBasis); cpuPctGrowth: of the CPU %. */
  cpuGrowth: number | null;
  cpuPctGrowth: number | null;
  rssFit: LineFit | null;
  /** Server CPU % of a core per interval. */
  cpuFit: LineFit | null;
  /**
   * Server CPU µs per answered request per interval (null without answer counts). The CPU tests
   * use it when known: at a constant offered rate a leak or slow-down costs more per request,
   * while fewer answers (another job holding the cores, loss) lower the CPU % without meaning
   * anything about the server.
   */
  perRequestFit: LineFit | null;
  /** Which CPU figure the CPU tests judged. */
  cpuBasis: 'µs/request' | 'CPU %';
  /** Mean CPU the rest of the machine used after the warm-up (other jobs), % of one core. */
  otherPct: number | null;
  /** When the client table reached its final size (s), and that size. */
  tableFullAt: number | null;
  tableSize: number | null;
  /** Every test passed (an unknown figure fails). */
  stable: boolean;
  /** Which tests failed. */
  failures: string[];
}

/** Mean of the non-null values (null if none). */
function mean(xs: ReadonlyArray<number | null>): number | null {
  const v = xs.filter((x): x is number => x !== null);
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
}

/**
 * Warm-up, slope fits over the rest, last minute against the first one after the warm-up.
 * `rate`: the offered rate (requests per second), for the CPU per request.
 */
export function analyzeSoak(samples: readonly SoakSample[], rate = 0): SoakAnalysis {
  const end = samples.length ? samples[samples.length - 1]!.t : 0;
  const sizes = samples.map((s) => s.server?.clientLogActive ?? null);
  const known = sizes.filter((x): x is number => x !== null);
  const tableSize = known.length ? Math.max(...known) : null;
  const fullIdx = tableSize === null ? -1 : sizes.findIndex((x) => x !== null && x >= tableSize);
  const tableFullAt = fullIdx >= 0 ? samples[fullIdx]!.t : null;
  let warmupS = Math.min(MIN_WARMUP_S, end / 3);
  let warmupReason = `${Math.round(warmupS)} s fixed (JIT, heap sizing, queues)`;
  if (tableFullAt !== null && tableFullAt > warmupS) {
    warmupS = Math.min(tableFullAt, end / 2);
    warmupReason = `until the client table was full (${tableSize} at ${Math.round(tableFullAt)} s)`;
    if (tableFullAt > end / 2) warmupReason += ', capped at half the soak';
  }
  const rest = samples.filter((s) => s.t >= warmupS - 1e-9);
  const window = Math.min(60, (end - warmupS) / 3);
  const first = windowStats(samples, warmupS, warmupS + window);
  const last = windowStats(samples, end - window, end);
  const growth = (a: number | null, b: number | null): number | null =>
    a !== null && b !== null && a > 0 ? b / a - 1 : null;
  const rssGrowth = growth(first.rssKb, last.rssKb);
  const cpuGrowth = growth(first.cpuPct, last.cpuPct);

  const withRss = rest.filter((s) => s.rssKb !== null);
  const rssFit = fitLine(
    withRss.map((s) => s.t),
    withRss.map((s) => s.rssKb!),
  );
  const mids: number[] = [];
  const cpu: number[] = [];
  for (let i = 1; i < rest.length; i++) {
    const dt = rest[i]!.t - rest[i - 1]!.t;
    if (!(dt > 0)) continue;
    mids.push((rest[i]!.t + rest[i - 1]!.t) / 2);
    cpu.push(((rest[i]!.cpuS - rest[i - 1]!.cpuS) / dt) * 100);
  }
  const cpuFit = fitLine(mids, cpu);
  const rows = soakIntervals(rest, { rate });
  const perRequest = rows.every((r) => r.cpuUsPerRequest !== null) && rate > 0;
  const perRequestFit = perRequest
    ? fitLine(
        rows.map((r) => r.t - r.dt / 2),
        rows.map((r) => r.cpuUsPerRequest!),
      )
    : null;
  const inWindow = (w: SoakWindow): number | null =>
    mean(rows.filter((r) => r.t - r.dt >= w.from - 1e-9 && r.t <= w.to + 1e-9).map((r) => r.cpuUsPerRequest));
  const cpuBasis = perRequestFit ? 'µs/request' : 'CPU %';
  const judgedFit = perRequestFit ?? cpuFit;
  const judgedGrowth = perRequestFit ? growth(inWindow(first), inWindow(last)) : cpuGrowth;

  const failures: string[] = [];
  const check = (ok: boolean | null, what: string): void => {
    if (ok !== true) failures.push(ok === null ? `${what}: unknown` : what);
  };
  check(rssFit && rssFit.pctPerMin < RSS_SLOPE_LIMIT, `RSS slope ≥ ${RSS_SLOPE_LIMIT} %/min`);
  check(judgedFit && judgedFit.pctPerMin < CPU_SLOPE_LIMIT, `CPU (${cpuBasis}) slope ≥ ${CPU_SLOPE_LIMIT} %/min`);
  check(rssGrowth === null ? null : rssGrowth < END_RSS_LIMIT, `RSS last vs first window ≥ +${END_RSS_LIMIT * 100} %`);
  check(
    judgedGrowth === null ? null : judgedGrowth < END_CPU_LIMIT,
    `CPU (${cpuBasis}) last vs first window ≥ +${END_CPU_LIMIT * 100} %`,
  );
  return {
    warmupS: Math.round(warmupS),
    warmupReason,
    window: Math.round(window),
    first,
    last,
    rssGrowth,
    cpuGrowth: judgedGrowth,
    cpuPctGrowth: cpuGrowth,
    rssFit,
    cpuFit,
    perRequestFit,
    cpuBasis,
    otherPct: mean(rows.map((r) => r.otherPct)),
    tableFullAt,
    tableSize,
    stable: failures.length === 0,
    failures,
  };
}
