/**
 * What the capacity runner prints: one line per load step, the per-server summary as a Markdown
 * table (ready for bench/README.md), the soak lines.
 */
import type { LoadgenResult } from './loadgen.js';
import { CPU_SLOPE_LIMIT, END_CPU_LIMIT, END_RSS_LIMIT, RSS_SLOPE_LIMIT } from './soak-analysis.js';
import type { SoakResult } from './soak.js';
import type { StepVerdict, SteppedResult } from './step.js';

/** One load step: the loadgen's line plus what the runner measured on the server. */
export interface StepRecord extends LoadgenResult {
  /** Server CPU over the counted part of the step, % of one core (all threads). */
  serverCpuPct: number;
  /** Loadgen CPU (user + system over all its processes) per second of the step, % of one core. */
  loadgenCpuPct: number;
  serverRssKb: number | null;
}

export interface ServerSummary {
  server: string;
  /** e.g. "serverworkers auto" or "" (chronyd). */
  variant: string;
  stepped: SteppedResult<StepRecord>;
}

const n0 = (x: number | null | undefined): string => (x === null || x === undefined ? '–' : x.toFixed(0));
const n1 = (x: number | null | undefined): string => (x === null || x === undefined ? '–' : x.toFixed(1));

/** Thousands separated by thin spaces as in the rest of bench/README.md: 123 456. */
export function fmtRate(x: number | null): string {
  if (x === null) return '–';
  return Math.round(x)
    .toString()
    .replace(/\B(?=(\d{3})+(?!\d))/g, ' ');
}

export function fmtPct(x: number): string {
  return `${(x * 100).toFixed(3)} %`;
}

export function stepLine(server: string, rate: number, verdict: StepVerdict, r: StepRecord): string {
  const extra = [
    r.kod ? `kod ${r.kod}` : '',
    r.bad ? `bad ${r.bad}` : '',
    r.clientDrops ? `loadgen drops ${r.clientDrops}` : '',
    r.sendErrors ? `send errors ${r.sendErrors}` : '',
  ]
    .filter(Boolean)
    .join(' ');
  return (
    `  ${server.padEnd(9)} rate ${fmtRate(rate).padStart(9)}/s  achieved ${fmtRate(r.achievedRate).padStart(9)}/s` +
    `  loss ${fmtPct(r.lossRatio).padStart(9)}  server CPU ${n1(r.serverCpuPct).padStart(5)} %` +
    `  loadgen CPU ${n1(r.loadgenCpuPct).padStart(5)} %  RTT p50/p99 ${n0(r.rttP50Us)}/${n0(r.rttP99Us)} µs` +
    `  ${verdict === 'ok' ? 'ok' : verdict === 'loss' ? 'LOSS' : 'SHORT (generator limit)'}${extra ? `  ${extra}` : ''}`
  );
}

/** Server CPU time per answered request at a step, µs. */
export function cpuPerRequestUs(r: StepRecord): number | null {
  const answered = r.achievedRate > 0 ? r.achievedRate : r.rate;
  return answered > 0 ? ((r.serverCpuPct / 100) * 1e6) / answered : null;
}

const LIMIT_TEXT: Record<SteppedResult<StepRecord>['limit'], string> = {
  loss: 'loss above it',
  short: 'generator limit (server may do more)',
  max: '--max reached',
  none: 'no loss-free step',
};

export function summaryTable(rows: ServerSummary[], mode: 'NTP' | 'NTS'): string {
  const head =
    `| server (${mode}) | max loss-free rate (req/s) | server CPU % | CPU µs/request | loadgen CPU % ` +
    `| RTT p50 / p99 (µs) | TX-stamp error \\|p50\\| / \\|p99\\| / max (µs) | stopped by |`;
  const lines = [head, '|' + ' --- |'.repeat(8)];
  for (const row of rows) {
    const b = row.stepped.best;
    const x = b?.xleave;
    const tx = x && x.pairs > 0 ? `${n1(x.errAbsP50Us)} / ${n1(x.errAbsP99Us)} / ${n1(x.errAbsMaxUs)}` : '–';
    lines.push(
      `| ${row.server}${row.variant ? ` (${row.variant})` : ''} | ${fmtRate(row.stepped.maxRate)} | ` +
        `${b ? n1(b.serverCpuPct) : '–'} | ${b ? n1(cpuPerRequestUs(b)) : '–'} | ${b ? n1(b.loadgenCpuPct) : '–'} | ` +
        `${b ? `${n0(b.rttP50Us)} / ${n0(b.rttP99Us)}` : '–'} | ${tx} | ${LIMIT_TEXT[row.stepped.limit]} |`,
    );
  }
  const chrony = rows.find((r) => r.server === 'chronyd')?.stepped;
  const rub = rows.find((r) => r.server === 'rubidiumd')?.stepped;
  if (chrony?.maxRate && rub && rub.maxRate !== null) {
    const target = mode === 'NTP' ? 1.5 : 1;
    const ratio = rub.maxRate / chrony.maxRate;
    // A maximum not set by the server's own loss is only a lower bound of its capacity.
    const bounds = [chrony, rub].some((s) => s.limit !== 'loss');
    lines.push(
      '',
      `Ratio rubidiumd/chronyd (max loss-free rate): **${ratio.toFixed(2)}×** ` +
        `(target ≥ ${target}×: ${ratio >= target ? 'met' : 'not met'}` +
        `${bounds ? '; inconclusive: a maximum was set by the generator or --max, not by loss' : ''})`,
    );
  }
  return lines.join('\n');
}

/** Mean CPU of other jobs above which a soak's loss figure is marked as disturbed (% of one core). */
export const BUSY_MACHINE_PCT = 10;

const signed = (x: number | null, digits = 1): string =>
  x === null || !Number.isFinite(x) ? '–' : `${x >= 0 ? '+' : ''}${x.toFixed(digits)}`;

/** The per-interval table of a soak (one row per sample interval). */
export function soakTable(s: SoakResult): string[] {
  const head =
    '    t s | srv CPU % | main/workers/rest % | lg CPU % | softirq % | other % | idle % | steal % | RSS MB | anon MB ' +
    '| clients | evicted | answered/s | drops | loss % | rxq kB | µs/req';
  const rows = s.intervals.map((r) =>
    [
      n0(r.t).padStart(7),
      n1(r.serverCpuPct).padStart(9),
      `${n0(r.mainPct)}/${r.workerPcts ? r.workerPcts.map(n0).join('+') : '–'}/${n0(r.restPct)}`.padStart(14),
      n1(r.loadgenCpuPct).padStart(8),
      n1(r.softirqPct).padStart(9),
      n1(r.otherPct).padStart(7),
      n1(r.idlePct).padStart(6),
      n1(r.stealPct).padStart(7),
      (r.rssKb === null ? '–' : (r.rssKb / 1024).toFixed(1)).padStart(6),
      (r.rssAnonKb === null ? '–' : (r.rssAnonKb / 1024).toFixed(1)).padStart(7),
      n0(r.clientLog).padStart(7),
      n0(r.evicted).padStart(7),
      fmtRate(r.answeredRate).padStart(10),
      n0(r.drops).padStart(5),
      (r.lossRatio === null ? '–' : (r.lossRatio * 100).toFixed(3)).padStart(6),
      n0(r.rxQueueKb).padStart(6),
      n1(r.cpuUsPerRequest).padStart(6),
    ].join(' | '),
  );
  return [head, ...rows];
}

export function soakLines(s: SoakResult): string[] {
  const pct = (x: number | null): string => (x === null ? '–' : `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} %`);
  const fit = (f: SoakResult['rssFit'], unit: string, scale = 1, digits = 1): string =>
    f
      ? `mean ${(f.mean * scale).toFixed(digits)} ${unit}, slope ${signed(f.pctPerMin, 2)} ± ${f.pctPerMinSe2.toFixed(2)} %/min ` +
        `(${signed(f.slope * 60 * scale, 3)} ${unit}/min, ${f.n} points)`
      : '–';
  const w = `${s.window} s`;
  const span = (x: { from: number; to: number }): string => `${Math.round(x.from)}–${Math.round(x.to)} s`;
  return [
    `  ${s.server}: ${s.durationS} s at ${fmtRate(s.rate)} req/s (${(s.fraction * 100).toFixed(0)} % of ${fmtRate(s.maxRate)})`,
    ...soakTable(s),
    `    warm-up excluded: ${s.warmupS} s, ${s.warmupReason}`,
    `    RSS  fit after warm-up: ${fit(s.rssFit, 'MB', 1 / 1024)}`,
    `    CPU  fit after warm-up: ${fit(s.cpuFit, '% of a core')}`,
    `    CPU per answered request, fit after warm-up: ${fit(s.perRequestFit, 'µs', 1, 2)}`,
    `    RSS  ${w} windows ${span(s.first)} ${n0(s.first.rssKb)} kB → ${span(s.last)} ${n0(s.last.rssKb)} kB: ${pct(s.rssGrowth)}`,
    `    CPU  ${w} windows ${span(s.first)} ${n1(s.first.cpuPct)} % → ${span(s.last)} ${n1(s.last.cpuPct)} %: ` +
      `${pct(s.cpuPctGrowth)} (${s.cpuBasis}: ${pct(s.cpuGrowth)})`,
    `    rest of the machine after warm-up: ${n1(s.otherPct)} % of a core on average` +
      (s.otherPct !== null && s.otherPct > BUSY_MACHINE_PCT
        ? ` — NOT IDLE: other jobs took CPU, so loss and RTT say little about the server`
        : ''),
    `    loss ${fmtPct(s.load.lossRatio)} (${Math.round(s.load.lossRatio * s.load.sent)} of ${s.load.sent}), ` +
      `kod ${s.load.kod}, RTT p50/p99 ${n0(s.load.rttP50Us)}/${n0(s.load.rttP99Us)} µs, loadgen drops ${s.load.clientDrops}`,
    `    verdict: ${s.verdict ? 'PASS' : `FAIL (${s.failures.join('; ')})`} — growth after the warm-up: slope < ` +
      `${RSS_SLOPE_LIMIT} %/min (RSS) and < ${CPU_SLOPE_LIMIT} %/min (${s.cpuBasis}), last vs first window < ` +
      `+${END_RSS_LIMIT * 100} % (RSS) and < +${END_CPU_LIMIT * 100} % (CPU)${s.lossOk ? '' : '; loss ≥ 0.1 %!'}`,
  ];
}
