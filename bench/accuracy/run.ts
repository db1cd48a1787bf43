/**
 * Real-network accuracy benchmark: chronyd -x and rubidiumd -x side by side (bench/README.md).
 *
 *   node dist/bench/accuracy/run.js [--scenario a,b,...] [--duration SECONDS] [--warmup SECONDS]
 *                                   [--json FILE] [--seed N] [--seeds N] [--log-dir DIR]
 *
 * Per scenario, in two fresh network namespaces joined by a veth pair:
 *   S: the reference server(s), `rubidiumd -x --inject-error ...` serving host time + err(t) on
 *      port 1100k, and the delay relay (bench/accuracy/relay.c) on 10.77.<sub>.1:1200k, which
 *      holds every datagram for base + jitter (per direction), drops some, and goes down for
 *      outages;
 *   C: chronyd -x (serving on 11124) and rubidiumd -x (serving on 11125), both stratum-2 clients
 *      of the relayed references with identical server and common lines, and the probe loop
 *      (probe-loop.ts), which measures the time each one serves with kernel timestamps, once a second.
 * error = probe offset (served − host) − err(t): how far each daemon's served time is from the
 * time of its references. Nothing here touches the host clock (every daemon runs -x, without
 * CAP_SYS_TIME).
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import {
  cleanupLeftovers,
  createNetnsPair,
  isRoot,
  makeTempDir,
  removeTempDir,
  run,
  startInNs,
  unwind,
  type ManagedProcess,
} from '../../test/support/netns.js';
import { PEER_BINARIES, requirePeers, startChronyd, type Chronyd } from '../../test/support/peers.js';
import { InjectedError, type InjectedErrorSpec } from '../../src/clock/injected-error.js';
import { realtimeNow } from '../../src/io/realtime.js';
import { native, nativeLoadError } from '../../src/io/native.js';
import type { SourceReport, TrackingReport } from '../../src/control/reports.js';
import { buildRelay, parseRelayStats, relayArgs, type RelayDirectionStats, type RelayStats } from './relay.js';
import { startRubidiumd, ROOT, type Rubidiumd } from './daemons.js';
import { SCENARIOS, describePath, findScenario, injectErrorArg, type Scenario } from './scenarios.js';
import {
  computeMetrics,
  convergenceRatio,
  fmtRatio,
  fmtSec,
  fmtUs,
  markdownTable,
  median,
  ratio,
  type AccuracyMetrics,
  type ErrorSample,
} from './metrics.js';

const PROBE_LOOP = join(dirname(fileURLToPath(import.meta.url)), 'probe-loop.js');
/** The issue's limit: served time within 100 µs of the truth. */
const LIMIT = 100e-6;
const REF_PORT = 11001; // reference k serves on 127.0.0.1:REF_PORT + k (namespace S)
const REF_CMD_PORT = 11101;
const RELAY_PORT = 12001; // relay pair k listens on 10.77.<sub>.(k ? 10 + k : 1):RELAY_PORT + k
const CHRONY_PORT = 11124; // clients in namespace C
const CHRONY_CMD_PORT = 11224;
const RUB_PORT = 11125;
const RUB_CMD_PORT = 11225;
const FIRST_SUBNET = 200;
const LAST_SUBNET = 220;
const PROGRESS_EVERY_S = 30;
/** Direct probes of the references (bypassing the relay) every this many probe rounds. */
const REF_CHECK_EVERY = 5;

type DaemonName = 'chronyd' | 'rubidiumd';
const DAEMONS: readonly DaemonName[] = ['chronyd', 'rubidiumd'];

interface Options {
  scenarios: Scenario[];
  duration: number;
  warmup: number | null;
  json: string | null;
  /** First seed; with `seeds` > 1 every scenario runs with seeds seed, seed + 1, … */
  seed: number;
  seeds: number;
  /** Directory for both clients' chrony-format statistics/measurements/tracking logs. */
  logDir: string | null;
  /** JSON files of earlier runs to report on together (no run). */
  report: string[];
}

interface ProbeLine {
  daemon: string;
  t: string;
  offset: number | null;
  delay: number | null;
  answered: number;
  leap?: number;
  stratum?: number;
}

interface SeriesPoint extends ErrorSample {
  /** Probe offset (served − host), s. */
  offset: number | null;
  /** Stratum of the answer (0 or 16 with leap 3: the daemon says it is unsynchronised). */
  stratum: number | null;
}

interface DaemonResult {
  /** Seconds after t0 at which the daemon was up (chronyc / control socket answering). */
  readyAfter: number;
  metrics: AccuracyMetrics;
  /** Final `chronyc tracking` (chronyd) or `rubidiumc tracking --json` (rubidiumd). */
  tracking: unknown;
  sources: unknown;
  series: SeriesPoint[];
}

interface ReferenceCheck {
  name: string;
  port: number;
  samples: number;
  rms: number | null;
  maxAbs: number | null;
  series: SeriesPoint[];
}

interface ScenarioResult {
  name: string;
  description: string;
  subnet: number;
  seed: number;
  duration: number;
  warmup: number;
  /** Epoch of the injected error = t0, the instant both clients were started (ns). */
  epochNs: string;
  truth: InjectedErrorSpec;
  liar: { index: number; spec: InjectedErrorSpec; stepAfter: number } | null;
  paths: { up: string; down: string; outage: Scenario['outage'] | null };
  /** When the link was down, [from, to) in s since t0 (from the relay's start time). */
  outages: [number, number][];
  relayArgs: string[];
  /** The lines both clients got (the only differences: port/cmdport/bindcmdaddress/pidfile). */
  clientLines: string[];
  daemons: Record<DaemonName, DaemonResult>;
  ratio: { rms: number | null; convergence: number | null; maxAbs: number | null };
  references: ReferenceCheck[];
  relay: RelayStats | null;
  problems: string[];
}

// ---------------------------------------------------------------------------------------------
// Command line

const USAGE = `usage: node dist/bench/accuracy/run.js [--scenario a,b,...] [--duration SECONDS]
                                         [--warmup SECONDS] [--json FILE] [--seed N]
                                         [--seeds N] [--log-dir DIR]
       node dist/bench/accuracy/run.js --report FILE[,FILE...]
scenarios: ${SCENARIOS.map((s) => s.name).join(', ')} (default: all)
--duration  seconds per scenario after the clients start (default 300)
--warmup    seconds excluded from RMS/mean/max (default: one third of the duration)
--json      write every result, including the per-probe series, to FILE
--seed      seed of the injected wander and of the relay's random draws (default 1)
--seeds     run every scenario N times, with seeds SEED..SEED+N-1, and report the median
            ratios per scenario (default 1)
--log-dir   both clients also get \`log measurements statistics tracking\` with their logdir in
            DIR/SCENARIO-DAEMON (the same lines for both; for diagnosis)
--report    no run: print the summary and median tables of the runs in these --json files
            (runs made one at a time, so that other benchmarks can take turns)
`;

function parseOptions(argv: string[]): Options {
  const o: Options = {
    scenarios: [...SCENARIOS],
    duration: 300,
    warmup: null,
    json: null,
    seed: 1,
    seeds: 1,
    report: [],
    logDir: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    const flag = eq > 0 ? a.slice(0, eq) : a;
    const val = (): string => {
      const v = eq > 0 ? a.slice(eq + 1) : argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    const num = (what: string, min: number): number => {
      const v = val();
      const x = Number(v);
      if (!Number.isFinite(x) || x < min) throw new Error(`bad ${what} '${v}'`);
      return x;
    };
    switch (flag) {
      case '--scenario':
      case '--scenarios':
        o.scenarios = val()
          .split(',')
          .filter((s) => s)
          .map((n) => {
            const s = findScenario(n);
            if (!s) throw new Error(`unknown scenario '${n}' (known: ${SCENARIOS.map((x) => x.name).join(', ')})`);
            return s;
          });
        break;
      case '--duration':
        o.duration = num('duration', 10);
        break;
      case '--warmup':
        o.warmup = num('warmup', 0);
        break;
      case '--json':
        o.json = val();
        break;
      case '--seed':
        o.seed = Math.floor(num('seed', 0));
        break;
      case '--seeds':
        o.seeds = Math.floor(num('seeds', 1));
        break;
      case '--report':
        o.report = val()
          .split(',')
          .filter((f) => f);
        break;
      case '--log-dir':
        o.logDir = resolve(val());
        break;
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown argument '${a}'\n${USAGE}`);
    }
  }
  if (o.scenarios.length === 0) throw new Error('no scenario');
  if (o.scenarios.length > LAST_SUBNET - FIRST_SUBNET + 1) throw new Error('too many scenarios');
  if (o.warmup !== null && o.warmup >= o.duration) throw new Error('--warmup must be shorter than --duration');
  return o;
}

// ---------------------------------------------------------------------------------------------
// Helpers

class Interrupted extends Error {
  constructor() {
    super('interrupted');
  }
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new Interrupted());
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new Interrupted());
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function check(signal: AbortSignal): void {
  if (signal.aborted) throw new Interrupted();
}

const secondsSince = (t: bigint, t0: bigint): number => Number(t - t0) / 1e9;

function parseProbeLines(output: string): ProbeLine[] {
  const out: ProbeLine[] = [];
  for (const l of output.split('\n')) {
    if (!l.startsWith('{')) continue;
    try {
      out.push(JSON.parse(l) as ProbeLine);
    } catch {
      /* a torn line */
    }
  }
  return out;
}

function toSeries(lines: ProbeLine[], name: string, truth: InjectedError, t0: bigint): SeriesPoint[] {
  return lines
    .filter((l) => l.daemon === name)
    .map((l) => {
      const t = BigInt(l.t);
      return {
        t: secondsSince(t, t0),
        offset: l.offset,
        error: l.offset === null ? null : l.offset - truth.errorAt(t),
        delay: l.delay,
        leap: l.leap ?? null,
        stratum: l.stratum ?? null,
      };
    });
}

/** Starts a set of things concurrently; registers a cleanup for each that started; throws the first failure. */
async function startAll<T extends { stop(): Promise<void> }>(
  starts: (() => Promise<T>)[],
  cleanups: Array<() => Promise<void>>,
): Promise<T[]> {
  const settled = await Promise.allSettled(starts.map((s) => s()));
  for (const r of settled) if (r.status === 'fulfilled') cleanups.push(() => r.value.stop());
  const failed = settled.find((r) => r.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
  return settled.map((r) => (r as PromiseFulfilledResult<T>).value);
}

function log(msg: string): void {
  process.stdout.write(`${msg}\n`);
}

/** The relay's outage windows in s since t0 (relay semantics: down during [phase + k·period, + down)). */
function outageWindows(s: Scenario, stats: RelayStats | null, t0: bigint, duration: number): [number, number][] {
  if (!s.outage || !stats) return [];
  const { period, down } = s.outage;
  const phase = s.outage.phase ?? period - down;
  const start = stats.startTime - Number(t0) / 1e9; // relay start, s since t0 (≤ 0)
  const out: [number, number][] = [];
  for (let k = 0; start + phase + k * period < duration; k++) {
    const from = start + phase + k * period;
    out.push([+from.toFixed(3), +(from + down).toFixed(3)]);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// One scenario

async function runScenario(
  s: Scenario,
  idx: number,
  opts: Options,
  seed: number,
  relayBin: string,
  signal: AbortSignal,
): Promise<ScenarioResult> {
  const subnet = FIRST_SUBNET + idx;
  const duration = opts.duration;
  const warmup = opts.warmup ?? duration / 3;
  const problems: string[] = [];
  const cleanups: Array<() => Promise<void>> = [];
  try {
    const pair = await createNetnsPair({ tag: `acc${idx}`, subnet });
    cleanups.push(() => pair.destroy());
    const dir = makeTempDir(`accuracy-${s.name}`);
    cleanups.push(async () => removeTempDir(dir));

    // The epoch of the injected error is t0, the instant the clients are started: set it a little
    // in the future so the references and relay are up by then, and the liar's step falls
    // exactly at its fraction of the run.
    const setupAllowanceS = 4 + 1.5 * s.references;
    const epoch = realtimeNow() + BigInt(Math.round(setupAllowanceS * 1e9));
    const truthSpec: InjectedErrorSpec = { ...s.truth, seed, epoch };
    const truth = new InjectedError(truthSpec, epoch);
    const liarSpec: InjectedErrorSpec | null = s.liar
      ? { ...truthSpec, steps: [{ at: Math.round(duration * s.liar.atFraction), offset: s.liar.offset }] }
      : null;
    const liarTruth = liarSpec ? new InjectedError(liarSpec, epoch) : null;

    // S: references.
    const refSpecs = Array.from({ length: s.references }, (_, k) =>
      s.liar && s.liar.index === k ? liarSpec! : truthSpec,
    );
    await startAll<Rubidiumd>(
      refSpecs.map(
        (spec, k) => () =>
          startRubidiumd({
            ns: pair.server,
            name: `ref${k}`,
            cmdPort: REF_CMD_PORT + k,
            lines: ['local stratum 1', 'allow all', `port ${REF_PORT + k}`],
            extraArgs: ['--inject-error', injectErrorArg(spec)],
          }),
      ),
      cleanups,
    );
    check(signal);

    // S: relay, one pair per reference, each on its own address: chronyd identifies a source by
    // its address (a second `server` line with the same address and another port is ignored).
    const relayAddrs = refSpecs.map((_, k) => (k === 0 ? pair.serverAddr : `10.77.${subnet}.${10 + k}`));
    for (const a of relayAddrs.slice(1))
      await run('ip', ['-n', pair.server, 'addr', 'add', `${a}/24`, 'dev', pair.serverIf]);
    const statsFile = join(dir, 'relay-stats.json');
    const args = relayArgs({
      pairs: refSpecs.map((_, k) => ({
        listen: { address: relayAddrs[k]!, port: RELAY_PORT + k },
        upstream: { address: '127.0.0.1', port: REF_PORT + k },
      })),
      up: s.up,
      down: s.down,
      seed: seed + idx,
      // Up first (phase = period − down), so the clients can synchronise before the first outage.
      ...(s.outage ? { outage: { ...s.outage, phase: s.outage.phase ?? s.outage.period - s.outage.down } } : {}),
      statsFile,
    });
    const relay = await startInNs(pair.server, relayBin, args, {
      name: `relay@${pair.server}`,
      readyPattern: /relay ready/,
      readyTimeoutMs: 10_000,
      logFile: join(dir, 'relay.log'),
    });
    cleanups.push(() => relay.stop());
    check(signal);

    // C: probe loop (starts probing before the clients are up; unanswered probes are recorded).
    const targets = [
      `chronyd=127.0.0.1:${CHRONY_PORT}`,
      `rubidiumd=127.0.0.1:${RUB_PORT}`,
      ...refSpecs.map((_, k) => `ref${k}=${pair.serverAddr}:${REF_PORT + k}/${REF_CHECK_EVERY}`),
    ];
    const probe: ManagedProcess = await startInNs(
      pair.client,
      process.execPath,
      [PROBE_LOOP, ...targets.flatMap((t) => ['--target', t]), '--interval', '1000', '--count', '3', '--gap', '20'],
      { name: `probe-loop@${pair.client}`, readyPattern: /probe-loop ready/, readyTimeoutMs: 15_000 },
    );
    cleanups.push(() => probe.stop());
    if (!/kernel timestamps/.test(probe.output()))
      problems.push('probe loop without kernel timestamps (native addon not loaded)');

    // C: the two clients, identical lines, started together at t0.
    const serverLines = refSpecs.map((_, k) => `server ${relayAddrs[k]} port ${RELAY_PORT + k} ${s.serverOptions}`);
    const clientLines = [...serverLines, ...s.commonLines, 'allow all'];
    const logLines = (d: DaemonName): string[] => {
      if (!opts.logDir) return [];
      const dir = join(opts.logDir, opts.seeds > 1 ? `${s.name}-s${seed}-${d}` : `${s.name}-${d}`);
      mkdirSync(dir, { recursive: true });
      chmodSync(dir, 0o777); // chronyd writes its logs after dropping root
      return [`logdir ${dir}`, 'log measurements statistics tracking'];
    };
    const wait = Number(epoch - realtimeNow()) / 1e6;
    if (wait > 0) await abortableSleep(wait, signal);
    else problems.push(`setup took ${(-wait / 1000).toFixed(1)} s longer than allowed: t0 is after the epoch`);
    const t0 = realtimeNow();
    const ready: Record<DaemonName, number> = { chronyd: NaN, rubidiumd: NaN };
    const [chronyd, rubidiumd] = (await startAll<Chronyd | Rubidiumd>(
      [
        async () => {
          const c = await startChronyd({
            ns: pair.client,
            name: `chronyd@${pair.client}`,
            servers: refSpecs.map((_, k) => ({
              address: relayAddrs[k]!,
              options: `port ${RELAY_PORT + k} ${s.serverOptions}`,
            })),
            allow: 'all',
            port: CHRONY_PORT,
            cmdPort: CHRONY_CMD_PORT,
            extraConfig: [...s.commonLines, ...logLines('chronyd')],
          });
          ready.chronyd = secondsSince(realtimeNow(), t0);
          return c;
        },
        async () => {
          const r = await startRubidiumd({
            ns: pair.client,
            name: 'client',
            cmdPort: RUB_CMD_PORT,
            lines: [...clientLines, `port ${RUB_PORT}`, ...logLines('rubidiumd')],
          });
          ready.rubidiumd = secondsSince(realtimeNow(), t0);
          return r;
        },
      ],
      cleanups,
    )) as [Chronyd, Rubidiumd];
    log(
      `  clients up after ${ready.chronyd.toFixed(1)} s (chronyd), ${ready.rubidiumd.toFixed(1)} s (rubidiumd); running ${duration} s`,
    );

    // Run, with a progress line now and then.
    const end = t0 + BigInt(Math.round(duration * 1e9));
    for (;;) {
      const left = Number(end - realtimeNow()) / 1e6;
      if (left <= 0) break;
      await abortableSleep(Math.min(left, PROGRESS_EVERY_S * 1000), signal);
      if (Number(end - realtimeNow()) < 1e9) continue; // the results follow
      const lines = parseProbeLines(probe.output());
      const last = (name: string): string => {
        const l = [...lines].reverse().find((x) => x.daemon === name);
        if (!l) return '–';
        if (l.offset === null) return 'no answer';
        return `${((l.offset - truth.errorAt(BigInt(l.t))) * 1e6).toFixed(1)} µs`;
      };
      log(
        `  t=${secondsSince(realtimeNow(), t0).toFixed(0)} s  error: chronyd ${last('chronyd')}, rubidiumd ${last('rubidiumd')}`,
      );
    }

    // Final state of both daemons.
    const final: Record<DaemonName, { tracking: unknown; sources: unknown }> = {
      chronyd: { tracking: null, sources: null },
      rubidiumd: { tracking: null, sources: null },
    };
    try {
      final.chronyd.tracking = await chronyd.tracking();
      final.chronyd.sources = await chronyd.sources();
    } catch (e) {
      problems.push(`chronyc: ${(e as Error).message}`);
    }
    try {
      final.rubidiumd.tracking = await rubidiumd.query<TrackingReport>('tracking');
      final.rubidiumd.sources = await rubidiumd.query<SourceReport[]>('sources');
    } catch (e) {
      problems.push(`rubidiumc: ${(e as Error).message}`);
    }

    await probe.stop();
    const lines = parseProbeLines(probe.output());
    await relay.stop();
    let relayStats: RelayStats | null = null;
    try {
      relayStats = parseRelayStats(existsSync(statsFile) ? readFileSync(statsFile, 'utf8') : relay.output());
    } catch (e) {
      problems.push(`${(e as Error).message} (relay output: ${relay.tail(5)})`);
    }

    const daemons = {} as Record<DaemonName, DaemonResult>;
    for (const d of DAEMONS) {
      const series = toSeries(lines, d, truth, t0);
      daemons[d] = {
        readyAfter: ready[d],
        metrics: computeMetrics(series, warmup, LIMIT),
        tracking: final[d].tracking,
        sources: final[d].sources,
        series,
      };
    }
    const references: ReferenceCheck[] = refSpecs.map((_, k) => {
      const t = liarTruth && s.liar?.index === k ? liarTruth : truth;
      const series = toSeries(lines, `ref${k}`, t, t0);
      const m = computeMetrics(series, 0, LIMIT);
      return { name: `ref${k}`, port: REF_PORT + k, samples: m.samples, rms: m.rms, maxAbs: m.maxAbs, series };
    });
    const c = daemons.chronyd.metrics;
    const r = daemons.rubidiumd.metrics;
    return {
      name: s.name,
      description: s.description,
      subnet,
      seed,
      duration,
      warmup,
      epochNs: epoch.toString(),
      truth: truthSpec,
      liar: s.liar && liarSpec ? { index: s.liar.index, spec: liarSpec, stepAfter: liarSpec.steps![0]!.at } : null,
      paths: { up: describePath(s.up), down: describePath(s.down), outage: s.outage ?? null },
      outages: outageWindows(s, relayStats, t0, duration),
      relayArgs: args,
      clientLines,
      daemons,
      ratio: {
        rms: ratio(r.rms, c.rms),
        convergence: ratio(r.convergence, c.convergence),
        maxAbs: ratio(r.maxAbs, c.maxAbs),
      },
      references,
      relay: relayStats,
      problems,
    };
  } finally {
    await unwind(cleanups);
  }
}

// ---------------------------------------------------------------------------------------------
// Reports

function scenarioTable(r: ScenarioResult): string {
  const rows = DAEMONS.map((d) => {
    const m = r.daemons[d].metrics;
    return [
      d,
      fmtSec(m.convergence),
      fmtUs(m.rms),
      fmtUs(m.mean),
      fmtUs(m.maxAbs),
      fmtUs(m.p95Abs),
      `${m.samples}${m.unanswered ? ` +${m.unanswered} unanswered` : ''}${m.unsynchronised ? ` (${m.unsynchronised} LI=3)` : ''}`,
    ];
  });
  rows.push([
    'rubidium/chronyd',
    fmtRatio(r.ratio.convergence),
    fmtRatio(r.ratio.rms),
    '',
    fmtRatio(r.ratio.maxAbs),
    '',
    '',
  ]);
  return markdownTable(
    ['daemon', 'converged (s)', 'RMS (µs)', 'mean (µs)', 'max |err| (µs)', 'p95 |err| (µs)', 'samples'],
    rows,
    ['l', 'r', 'r', 'r', 'r', 'r', 'r'],
  );
}

function trackingLine(r: ScenarioResult): string[] {
  const out: string[] = [];
  const ct = r.daemons.chronyd.tracking as { stratum?: number; frequencyPpm?: number; lastOffset?: number } | null;
  const rt = r.daemons.rubidiumd.tracking as TrackingReport | null;
  if (ct)
    out.push(
      `  chronyd final tracking: stratum ${ct.stratum}, freq ${ct.frequencyPpm?.toFixed(3)} ppm, last offset ${fmtUs(ct.lastOffset ?? null)} µs`,
    );
  if (rt)
    out.push(
      `  rubidiumd final tracking: stratum ${rt.stratum}, freq ${rt.frequencyPpm.toFixed(3)} ppm, last offset ${fmtUs(rt.lastOffset)} µs, ${rt.leapStatus}`,
    );
  const states = (d: DaemonName): string => {
    const src = r.daemons[d].sources as { state: string; address: string; port?: number }[] | null;
    return src ? src.map((x) => x.state).join('') : '?';
  };
  out.push(`  source states (in config order): chronyd ${states('chronyd')}, rubidiumd ${states('rubidiumd')}`);
  const refs = r.references
    .map((x) => `${x.name} ${fmtUs(x.rms)} µs RMS / ${fmtUs(x.maxAbs)} max (${x.samples})`)
    .join('; ');
  out.push(`  truth check (references probed directly): ${refs}`);
  const rs = r.relay;
  if (rs) {
    const dir = (x: RelayDirectionStats): string =>
      `${x.forwarded}/${x.received} forwarded, ${x.lost} lost, ${x.outage} in outages, mean delay ${fmtUs(x.meanDelay)} µs, lateness p99 ${fmtUs(x.lateness.p99)} µs`;
    out.push(`  relay up: ${dir(rs.up)}; down: ${dir(rs.down)}`);
  }
  if (r.outages.length)
    out.push(`  link down (s since start): ${r.outages.map(([a, b]) => `${a.toFixed(0)}–${b.toFixed(0)}`).join(', ')}`);
  for (const p of r.problems) out.push(`  problem: ${p}`);
  return out;
}

function summaryTable(results: ScenarioResult[], withSeed: boolean): string {
  return markdownTable(
    [
      'scenario',
      ...(withSeed ? ['seed'] : []),
      'chronyd conv (s)',
      'rubidiumd conv (s)',
      'conv ratio',
      'chronyd RMS (µs)',
      'rubidiumd RMS (µs)',
      'RMS ratio',
      'chronyd mean (µs)',
      'rubidiumd mean (µs)',
      'chronyd max (µs)',
      'rubidiumd max (µs)',
    ],
    results.map((r) => {
      const c = r.daemons.chronyd.metrics;
      const b = r.daemons.rubidiumd.metrics;
      return [
        r.name,
        ...(withSeed ? [String(r.seed)] : []),
        fmtSec(c.convergence),
        fmtSec(b.convergence),
        fmtRatio(r.ratio.convergence),
        fmtUs(c.rms),
        fmtUs(b.rms),
        fmtRatio(r.ratio.rms),
        fmtUs(c.mean),
        fmtUs(b.mean),
        fmtUs(c.maxAbs),
        fmtUs(b.maxAbs),
      ];
    }),
    ['l', ...(withSeed ? ['r' as const] : []), 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
  );
}

/**
 * Per scenario over its seeds: the median of each daemon's convergence ("never" counts as
 * infinitely slow), RMS and mean, and the medians of the per-seed ratios (what we report).
 */
function medianTable(results: ScenarioResult[]): string {
  const names = [...new Set(results.map((r) => r.name))];
  const rows = names.map((name) => {
    const rs = results.filter((r) => r.name === name);
    const m = (d: DaemonName, k: 'rms' | 'mean'): number | null => median(rs.map((r) => r.daemons[d].metrics[k]));
    const conv = (d: DaemonName): number | null => median(rs.map((r) => r.daemons[d].metrics.convergence ?? Infinity));
    const rmsRatios = rs.map((r) => r.ratio.rms);
    return [
      name,
      String(rs.length),
      fmtSec(conv('chronyd')),
      fmtSec(conv('rubidiumd')),
      fmtRatio(
        median(
          rs.map((r) =>
            convergenceRatio(r.daemons.rubidiumd.metrics.convergence, r.daemons.chronyd.metrics.convergence),
          ),
        ),
      ),
      fmtUs(m('chronyd', 'rms')),
      fmtUs(m('rubidiumd', 'rms')),
      fmtRatio(median(rmsRatios)),
      rmsRatios.map(fmtRatio).join(' '),
      fmtUs(m('chronyd', 'mean')),
      fmtUs(m('rubidiumd', 'mean')),
    ];
  });
  return markdownTable(
    [
      'scenario',
      'seeds',
      'chronyd conv (s)',
      'rubidiumd conv (s)',
      'conv ratio',
      'chronyd RMS (µs)',
      'rubidiumd RMS (µs)',
      'RMS ratio',
      'RMS ratio per seed',
      'chronyd mean (µs)',
      'rubidiumd mean (µs)',
    ],
    rows,
    ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l', 'r', 'r'],
  );
}

function versions(): Record<string, string> {
  const v: Record<string, string> = { node: process.version };
  try {
    v['chronyd'] = execFileSync(PEER_BINARIES.chronyd, ['-v'], { encoding: 'utf8' }).trim();
  } catch {
    /* reported elsewhere */
  }
  try {
    v['rubidium'] = execFileSync('git', ['-C', ROOT, 'describe', '--always', '--dirty'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    /* not a git tree */
  }
  return v;
}

function writeJson(
  file: string,
  opts: Options,
  results: ScenarioResult[],
  interrupted: boolean,
  running = false,
): void {
  const doc = {
    benchmark: 'bench/accuracy',
    date: new Date().toISOString(),
    versions: versions(),
    options: { ...opts, scenarios: opts.scenarios.map((s) => s.name) },
    limit: LIMIT,
    interrupted,
    /** Written after each finished run of a multi-run bench: more runs were still to come. */
    running,
    scenarios: results,
  };
  writeFileSync(file, JSON.stringify(doc, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 1) + '\n');
}

// ---------------------------------------------------------------------------------------------

/** Summary and median tables of the runs saved in `files` (--json output of earlier runs). */
function report(files: string[]): number {
  const results: ScenarioResult[] = [];
  const warmups = new Set<number>();
  for (const f of files) {
    const doc = JSON.parse(readFileSync(f, 'utf8')) as { scenarios: ScenarioResult[] };
    for (const r of doc.scenarios) {
      results.push(r);
      warmups.add(r.warmup);
    }
  }
  if (!results.length) {
    log('accuracy bench: no runs in these files');
    return 1;
  }
  // Scenario order as in SCENARIOS, then seed.
  const order = (n: string): number => SCENARIOS.findIndex((s) => s.name === n);
  results.sort((a, b) => order(a.name) - order(b.name) || a.seed - b.seed);
  log(
    `## Summary of ${results.length} run(s) from ${files.length} file(s) (warm-up ${[...warmups].join('/')} s; convergence: |error| < ${LIMIT * 1e6} µs for good)\n`,
  );
  log(summaryTable(results, true));
  log('\n## Medians over the seeds of each scenario (ratios: median of the per-seed ratios)\n');
  log(medianTable(results));
  return 0;
}

async function main(): Promise<number> {
  let opts: Options;
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`accuracy bench: ${(e as Error).message}\n`);
    return 2;
  }
  if (opts.report.length) return report(opts.report);
  if (!isRoot()) {
    log('accuracy bench: skipped: needs root (network namespaces, veth)');
    return 0;
  }
  try {
    requirePeers(['chronyd', 'chronyc']);
  } catch (e) {
    log(`accuracy bench: skipped: ${(e as Error).message}`);
    return 0;
  }
  if (!native)
    log(`accuracy bench: warning: native addon not loaded (${nativeLoadError}); probes use daemon timestamps`);

  const abort = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) {
      process.stderr.write(`accuracy bench: ${sig} again, exiting (last-resort cleanup)\n`);
      process.exit(130); // netns.ts's exit handler kills what is left and deletes the namespaces
    }
    process.stderr.write(`accuracy bench: ${sig}, cleaning up...\n`);
    abort.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const removed = await cleanupLeftovers();
  if (removed.length) log(`accuracy bench: removed leftovers: ${removed.join(', ')}`);
  const relayBin = buildRelay();
  const warmup = opts.warmup ?? opts.duration / 3;
  const seeds = Array.from({ length: opts.seeds }, (_, k) => opts.seed + k);
  log(
    `accuracy bench: ${opts.scenarios.length} scenario(s) × ${seeds.length} seed(s), ${opts.duration} s each, warm-up ${warmup.toFixed(0)} s, seed${seeds.length > 1 ? `s ${seeds[0]}..${seeds[seeds.length - 1]}` : ` ${opts.seed}`}, limit ${LIMIT * 1e6} µs`,
  );
  const results: ScenarioResult[] = [];
  let interrupted = false;
  let failed = false;
  scenarios: for (const [i, s] of opts.scenarios.entries()) {
    for (const seed of seeds) {
      if (abort.signal.aborted) break scenarios;
      log(`\n## ${s.name}${seeds.length > 1 ? ` (seed ${seed})` : ''}: ${s.description}`);
      log(
        `  up ${describePath(s.up)}; down ${describePath(s.down)}${s.outage ? `; outage ${s.outage.down}/${s.outage.period} s` : ''}`,
      );
      try {
        const r = await runScenario(s, i, opts, seed, relayBin, abort.signal);
        results.push(r);
        log('');
        log(scenarioTable(r));
        for (const l of trackingLine(r)) log(l);
        // Long multi-seed runs: keep what finished even if a later run dies.
        if (opts.json) writeJson(opts.json, opts, results, false, true);
      } catch (e) {
        if (e instanceof Interrupted || abort.signal.aborted) {
          interrupted = true;
          break scenarios;
        }
        failed = true;
        log(`  FAILED: ${(e as Error).stack ?? (e as Error).message}`);
      }
    }
  }
  if (results.length) {
    log(`\n## Summary (after ${warmup.toFixed(0)} s warm-up; convergence: |error| < ${LIMIT * 1e6} µs for good)\n`);
    log(summaryTable(results, seeds.length > 1));
    if (seeds.length > 1) {
      log(`\n## Medians over seeds ${seeds[0]}..${seeds[seeds.length - 1]} (ratios: median of the per-seed ratios)\n`);
      log(medianTable(results));
    }
  }
  if (opts.json) {
    writeJson(opts.json, opts, results, interrupted);
    log(`\nwrote ${opts.json}`);
  }
  if (interrupted) {
    log('accuracy bench: interrupted');
    return 130;
  }
  return failed ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`accuracy bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 1;
  },
);
