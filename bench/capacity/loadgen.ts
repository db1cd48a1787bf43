/**
 * The load generator (bench/capacity/loadgen.c, contract C4) as seen from the runner: build it
 * with build-loadgen.sh, run it in the namespace, read its one JSON line.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { run, runInNs } from '../../test/support/netns.js';
import { ROOT } from '../accuracy/daemons.js';

export const LOADGEN_BUILD_SCRIPT = join(ROOT, 'bench', 'capacity', 'build-loadgen.sh');
export const LOADGEN_BINARY = join(ROOT, 'build', 'bench', 'loadgen');

export interface XleaveStats {
  pairs: number;
  errMeanUs: number | null;
  errAbsP50Us: number | null;
  errAbsP99Us: number | null;
  errAbsMaxUs: number | null;
}

/** The loadgen's JSON line (C4). */
export interface LoadgenResult {
  rate: number;
  sent: number;
  received: number;
  lossRatio: number;
  achievedRate: number;
  rttP50Us: number | null;
  rttP99Us: number | null;
  kod: number;
  bad: number;
  xleave: XleaveStats;
  cpuUserS: number;
  cpuSysS: number;
  /** Answers our own sockets dropped (receive queue full): loss that is not the server's. */
  clientDrops: number;
  sendErrors: number;
  /** Answered requests per second of the counted window. */
  answeredRate: number | null;
  rttMaxUs: number | null;
}

export interface LoadgenArgs {
  server: string;
  port: number;
  rate: number;
  durationS: number;
  procs?: number;
  sockets?: number;
  packetsFile?: string;
  xleaveFlows?: number;
  warmupMs?: number;
  drainMs?: number;
}

/** Builds the loadgen (the script rebuilds only when the source is newer); returns its path. */
export async function buildLoadgen(): Promise<string> {
  if (!existsSync(LOADGEN_BUILD_SCRIPT)) {
    throw new Error(`${LOADGEN_BUILD_SCRIPT} does not exist (the loadgen is not there yet); use --loadgen PATH`);
  }
  await run('bash', [LOADGEN_BUILD_SCRIPT], { timeoutMs: 120_000 });
  if (!existsSync(LOADGEN_BINARY)) throw new Error(`${LOADGEN_BUILD_SCRIPT} did not produce ${LOADGEN_BINARY}`);
  return LOADGEN_BINARY;
}

export function loadgenArgv(a: LoadgenArgs): string[] {
  const argv = ['--server', `${a.server}:${a.port}`, '--rate', String(a.rate), '--duration', String(a.durationS)];
  if (a.procs !== undefined) argv.push('--procs', String(a.procs));
  if (a.sockets !== undefined) argv.push('--sockets', String(a.sockets));
  if (a.packetsFile !== undefined) argv.push('--packets', a.packetsFile);
  if (a.xleaveFlows !== undefined) argv.push('--xleave-flows', String(a.xleaveFlows));
  if (a.warmupMs !== undefined) argv.push('--warmup-ms', String(a.warmupMs));
  if (a.drainMs !== undefined) argv.push('--drain-ms', String(a.drainMs));
  return argv;
}

/** The last line of stdout that parses as a JSON object with the C4 fields. */
export function parseLoadgenOutput(stdout: string): LoadgenResult {
  const lines = stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('{'));
  const last = lines[lines.length - 1];
  if (last === undefined) throw new Error(`loadgen printed no JSON line:\n${stdout.slice(-2000)}`);
  const r = JSON.parse(last) as Partial<LoadgenResult>;
  for (const k of ['rate', 'sent', 'received', 'achievedRate', 'kod'] as const) {
    if (typeof r[k] !== 'number') throw new Error(`loadgen JSON lacks '${k}': ${last}`);
  }
  if (!('lossRatio' in r)) throw new Error(`loadgen JSON lacks 'lossRatio': ${last}`);
  const x = (r.xleave ?? {}) as Partial<XleaveStats>;
  return {
    rate: r.rate!,
    sent: r.sent!,
    received: r.received!,
    // null when nothing was sent: counts as a failed step.
    lossRatio: typeof r.lossRatio === 'number' ? r.lossRatio : NaN,
    achievedRate: r.achievedRate!,
    rttP50Us: r.rttP50Us ?? null,
    rttP99Us: r.rttP99Us ?? null,
    kod: r.kod!,
    bad: r.bad ?? 0,
    xleave: {
      pairs: x.pairs ?? 0,
      errMeanUs: x.errMeanUs ?? null,
      errAbsP50Us: x.errAbsP50Us ?? null,
      errAbsP99Us: x.errAbsP99Us ?? null,
      errAbsMaxUs: x.errAbsMaxUs ?? null,
    },
    cpuUserS: r.cpuUserS ?? 0,
    cpuSysS: r.cpuSysS ?? 0,
    clientDrops: r.clientDrops ?? 0,
    sendErrors: r.sendErrors ?? 0,
    answeredRate: r.answeredRate ?? null,
    rttMaxUs: r.rttMaxUs ?? null,
  };
}

/** Runs the loadgen in `ns` (CAP_SYS_TIME dropped like everything else) and parses its line. */
export async function runLoadgen(ns: string, binary: string, a: LoadgenArgs): Promise<LoadgenResult> {
  const extraS = ((a.warmupMs ?? 300) + (a.drainMs ?? 300)) / 1000;
  const r = await runInNs(ns, binary, loadgenArgv(a), {
    timeoutMs: (a.durationS + extraS + 30) * 1000,
    check: false,
  });
  if (r.code !== 0) {
    throw new Error(`loadgen exited ${r.code ?? r.signal}: ${loadgenArgv(a).join(' ')}\n${r.stderr.slice(-2000)}`);
  }
  return parseLoadgenOutput(r.stdout);
}
