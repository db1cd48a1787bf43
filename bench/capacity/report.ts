/**
 * What the capacity runner prints: one line per load step, the per-server summary as a Markdown
 * table (ready for bench/README.md), the soak lines.
 */
import type { LoadgenResult } from './loadgen.js';
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

export function soakLines(s: SoakResult): string[] {
  const pct = (x: number | null): string => (x === null ? '–' : `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} %`);
  return [
    `  ${s.server}: ${s.durationS} s at ${fmtRate(s.rate)} req/s (${(s.fraction * 100).toFixed(0)} % of ${fmtRate(s.maxRate)})`,
    `    RSS  first ${s.window} s ${n0(s.first.rssKb)} kB, last ${s.window} s ${n0(s.last.rssKb)} kB: ${pct(s.rssGrowth)}`,
    `    CPU  first ${s.window} s ${n1(s.first.cpuPct)} %, last ${s.window} s ${n1(s.last.cpuPct)} %: ${pct(s.cpuGrowth)}`,
    `    loss ${fmtPct(s.load.lossRatio)} (${Math.round(s.load.lossRatio * s.load.sent)} of ${s.load.sent}), ` +
      `kod ${s.load.kod}, RTT p50/p99 ${n0(s.load.rttP50Us)}/${n0(s.load.rttP99Us)} µs`,
    `    verdict: ${s.verdict ? 'PASS' : 'FAIL'} (RSS growth < 5 % and CPU growth < 10 %${s.lossOk ? '' : '; loss ≥ 0.1 %!'})`,
  ];
}
