/**
 * Capacity benchmark: how many NTP (or NTS) requests per second chronyd 4.3 and rubidiumd answer
 * without loss on this machine (bench/README.md, section bench/capacity; contract C5).
 *
 *   node dist/bench/capacity/run.js [--servers chronyd,rubidiumd] [--workers N|auto] [--nts]
 *        [--step-seconds 5] [--start 20000] [--factor 1.3] [--max 2000000]
 *        [--soak SECONDS] [--soak-fraction 0.8] [--soak-both] [--soak-rate R] [--json FILE]
 *        [--loadgen PATH] [--procs P] [--sockets K] [--nts-requests 1000]
 *
 * Everything runs in one network namespace `rbt-cap-<pid>` (lo only). The servers run one after
 * the other on 127.0.0.1:11123 with the same configuration lines; the loadgen (loadgen.c, C4)
 * sends from 127.1.x.y. Per server the rate steps up by --factor from --start until a step loses
 * ≥ 0.1 % of its requests, then bisects twice between the last good and the first bad rate.
 * Wrap real runs in `flock /tmp/rubidium-bench.lock ...` (one benchmark at a time on 2 cores).
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { join } from 'node:path';
import { isRoot, makeTempDir, removeTempDir, sleep } from '../../test/support/netns.js';
import { PEER_BINARIES, requirePeers } from '../../test/support/peers.js';
import { makeTestPki } from '../../test/support/test-pki.js';
import { ROOT } from '../accuracy/daemons.js';
import { createCapNs, destroyCapNs, removeCapLeftovers } from './cap-netns.js';
import { buildLoadgen, runLoadgen, type LoadgenArgs, type LoadgenResult } from './loadgen.js';
import { prepareNtsPackets, type NtsPrepSummary } from './nts-prep.js';
import { cpuPercent, markCpu, readRssKb, type CpuMark } from './proc-stats.js';
import { soakLines, stepLine, summaryTable, type ServerSummary, type StepRecord } from './report.js';
import { NTP_PORT, NTS_KE_PORTS, SERVER_NAMES, startServer, type RunningServer, type ServerName } from './servers.js';
import { runSoak, type SoakResult } from './soak.js';
import { findMaxRate } from './step.js';

const USAGE = `usage: node dist/bench/capacity/run.js [--servers chronyd,rubidiumd] [--workers N|auto] [--nts]
       [--step-seconds 5] [--start 20000] [--factor 1.3] [--max 2000000]
       [--soak SECONDS] [--soak-fraction 0.8] [--soak-both] [--soak-rate R] [--json FILE]
       [--loadgen PATH] [--procs P] [--sockets K] [--nts-requests 1000]
`;
const WARMUP_MS = 300;
const DRAIN_MS = 300;
/** Pause between steps: the server empties its queues, CPU samples do not overlap. */
const PAUSE_MS = 1000;

interface Options {
  servers: ServerName[];
  workers: string;
  nts: boolean;
  stepSeconds: number;
  start: number;
  factor: number;
  max: number;
  soak: number;
  soakFraction: number;
  soakBoth: boolean;
  soakRate: number | null;
  json: string | null;
  loadgen: string | null;
  procs: number | null;
  sockets: number | null;
  ntsRequests: number;
}

function parseOptions(argv: string[]): Options {
  const o: Options = {
    servers: [...SERVER_NAMES],
    workers: 'auto',
    nts: false,
    stepSeconds: 5,
    start: 20000,
    factor: 1.3,
    max: 2_000_000,
    soak: 0,
    soakFraction: 0.8,
    soakBoth: false,
    soakRate: null,
    json: null,
    loadgen: null,
    procs: null,
    sockets: null,
    ntsRequests: 1000,
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
    const num = (min: number, max = Infinity): number => {
      const v = val();
      const x = Number(v);
      if (!Number.isFinite(x) || x < min || x > max) throw new Error(`bad ${flag} '${v}'`);
      return x;
    };
    switch (flag) {
      case '--servers':
        o.servers = val()
          .split(',')
          .filter(Boolean)
          .map((s) => {
            if (!(SERVER_NAMES as readonly string[]).includes(s)) throw new Error(`unknown server '${s}'`);
            return s as ServerName;
          });
        break;
      case '--workers': {
        const w = val();
        if (w !== 'auto' && !/^[1-9]\d{0,2}$/.test(w)) throw new Error(`bad --workers '${w}' (N or auto)`);
        o.workers = w;
        break;
      }
      case '--nts':
        o.nts = true;
        break;
      case '--step-seconds':
        o.stepSeconds = num(1, 600);
        break;
      case '--start':
        o.start = Math.round(num(100));
        break;
      case '--factor':
        o.factor = num(1.01, 10);
        break;
      case '--max':
        o.max = Math.round(num(100));
        break;
      case '--soak':
        o.soak = Math.round(num(0, 24 * 3600));
        break;
      case '--soak-fraction':
        o.soakFraction = num(0.01, 1);
        break;
      case '--soak-both':
        o.soakBoth = true;
        break;
      case '--soak-rate':
        o.soakRate = Math.round(num(100));
        break;
      case '--json':
        o.json = val();
        break;
      case '--loadgen':
        o.loadgen = val();
        break;
      case '--procs':
        o.procs = Math.round(num(1, 64));
        break;
      case '--sockets':
        o.sockets = Math.round(num(1, 255));
        break;
      case '--nts-requests':
        o.ntsRequests = Math.round(num(8, 100_000));
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
  if (o.servers.length === 0) throw new Error('no server');
  if (o.max < o.start) throw new Error('--max must be ≥ --start');
  if (o.soakRate !== null && o.soak === 0) throw new Error('--soak-rate needs --soak SECONDS');
  return o;
}

// ---------------------------------------------------------------------------------------------

interface Context {
  o: Options;
  ns: string;
  loadgen: string;
}

function loadArgs(ctx: Context, rate: number, durationS: number, packetsFile: string | null): LoadgenArgs {
  const a: LoadgenArgs = {
    server: '127.0.0.1',
    port: NTP_PORT,
    rate,
    durationS,
    warmupMs: WARMUP_MS,
    drainMs: DRAIN_MS,
  };
  if (ctx.o.procs !== null) a.procs = ctx.o.procs;
  if (ctx.o.sockets !== null) a.sockets = ctx.o.sockets;
  if (packetsFile !== null) a.packetsFile = packetsFile;
  return a;
}

/**
 * One load step: the loadgen at `rate` for --step-seconds, the server's CPU sampled over the
 * counted part (after the loadgen's warm-up, before its end).
 */
async function measureStep(
  ctx: Context,
  server: RunningServer,
  rate: number,
  packetsFile: string | null,
): Promise<StepRecord> {
  if (server.proc.exited) throw new Error(`${server.name} exited:\n${server.proc.tail()}`);
  const marks: { from?: CpuMark; to?: CpuMark } = {};
  const mark = (which: 'from' | 'to'): void => {
    try {
      marks[which] = markCpu(server.pid);
    } catch {
      /* server gone: reported below */
    }
  };
  const wholeFrom = markCpu(server.pid);
  const t0 = performance.now();
  const timers = [
    setTimeout(() => mark('from'), WARMUP_MS + 100),
    setTimeout(() => mark('to'), WARMUP_MS + ctx.o.stepSeconds * 1000 - 100),
  ];
  let r: LoadgenResult;
  try {
    r = await runLoadgen(ctx.ns, ctx.loadgen, loadArgs(ctx, rate, ctx.o.stepSeconds, packetsFile));
  } finally {
    for (const t of timers) clearTimeout(t);
  }
  const wallS = (performance.now() - t0) / 1000;
  if (server.proc.exited) throw new Error(`${server.name} exited during the step:\n${server.proc.tail()}`);
  const serverCpuPct =
    marks.from && marks.to ? cpuPercent(marks.from, marks.to) : cpuPercent(wholeFrom, markCpu(server.pid));
  return {
    ...r,
    serverCpuPct,
    loadgenCpuPct: wallS > 0 ? ((r.cpuUserS + r.cpuSysS) / wallS) * 100 : 0,
    serverRssKb: readRssKb(server.pid),
  };
}

interface ServerRun {
  summary: ServerSummary | null;
  notes: string[];
  /** The end of the server's own output (which socket path it used, warnings). */
  logTail: string;
  nts: NtsPrepSummary | null;
  soak: SoakResult | null;
}

async function benchServer(
  ctx: Context,
  name: ServerName,
  pkiCa: string | null,
  ntsFiles: { cert: string; key: string } | null,
): Promise<ServerRun> {
  const { o } = ctx;
  const server = await startServer(name, { ns: ctx.ns, nts: ntsFiles, workers: o.workers });
  try {
    for (const n of server.notes) console.log(`# note: ${n}`);
    const variant =
      name === 'rubidiumd' ? (server.workers !== null ? `serverworkers ${server.workers}` : 'no serverworkers') : '';
    console.log(`\n## ${name}${variant ? ` (${variant})` : ''}: pid ${server.pid}`);
    let packetsFile: string | null = null;
    let nts: NtsPrepSummary | null = null;
    if (pkiCa) {
      packetsFile = join(server.dir, 'nts-requests.bin');
      nts = await prepareNtsPackets(ctx.ns, {
        kePort: NTS_KE_PORTS[name],
        ntpPort: NTP_PORT,
        caCert: pkiCa,
        count: o.ntsRequests,
        out: packetsFile,
      });
      console.log(
        `# NTS: ${nts.requests} requests (${nts.requestBytes.join('/')} bytes, cookies ${nts.cookieBytes.join('/')} ` +
          `bytes) from ${nts.keExchanges} NTS-KE exchanges, AEAD ${nts.aead}; ${nts.verified} sample answers ` +
          `(${nts.answerBytes.join('/')} bytes) authenticated`,
      );
    }

    const soakHere = o.soak > 0 && (name === 'rubidiumd' || o.soakBoth);
    let summary: ServerSummary | null = null;
    let maxRate: number | null = null;
    if (!(soakHere && o.soakRate !== null)) {
      const stepped = await findMaxRate(
        async (rate) => {
          const r = await measureStep(ctx, server, rate, packetsFile);
          await sleep(PAUSE_MS);
          return r;
        },
        { start: o.start, factor: o.factor, max: o.max },
        (rate, verdict, r) => console.log(stepLine(name, rate, verdict, r)),
      );
      summary = { server: name, variant, stepped };
      maxRate = stepped.maxRate;
      console.log(`  => ${name}: max loss-free rate ${maxRate ?? 'none'} req/s (stopped by ${stepped.limit})`);
    }

    let soak: SoakResult | null = null;
    if (soakHere) {
      const base = o.soakRate !== null ? o.soakRate / o.soakFraction : maxRate;
      if (base === null) console.log(`# no soak for ${name}: no loss-free rate was found`);
      else {
        const rate = o.soakRate ?? Math.round(base * o.soakFraction);
        console.log(`# soak ${name}: ${o.soak} s at ${rate} req/s (server, loadgen and machine sampled meanwhile)`);
        soak = await runSoak({
          ns: ctx.ns,
          server: name,
          pid: server.pid,
          port: NTP_PORT,
          controlSocket: name === 'rubidiumd' ? join(server.dir, 'cmd.sock') : null,
          workerThreads: soakWorkerThreads(server.workers),
          loadgen: ctx.loadgen,
          load: loadArgs(ctx, rate, o.soak, packetsFile),
          maxRate: Math.round(base),
          fraction: o.soakFraction,
        });
        console.log(`  => soak ${name}: ${soak.verdict ? 'PASS' : 'FAIL'} (details at the end)`);
      }
    }
    return { summary, notes: server.notes, logTail: server.proc.tail(40), nts, soak };
  } finally {
    await server.stop();
  }
}

/** Threads that serve: serverworkers N (auto: one per core); one without serverworkers. */
function soakWorkerThreads(workers: string | null): number {
  if (workers === null) return 0;
  return workers === 'auto' ? cpus().length : Number(workers);
}

function versions(): Record<string, string> {
  const tryRun = (cmd: string, args: string[]): string => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8', cwd: ROOT }).trim();
    } catch {
      return 'unknown';
    }
  };
  return {
    chronyd: tryRun(PEER_BINARIES.chronyd, ['-v']),
    node: process.version,
    kernel: release(),
    cpu: `${cpus().length} × ${cpus()[0]?.model ?? '?'}`,
    commit: tryRun('git', ['rev-parse', '--short', 'HEAD']),
  };
}

async function main(): Promise<number> {
  const o = parseOptions(process.argv.slice(2));
  if (!isRoot()) throw new Error('needs root (network namespaces)');
  if (o.servers.includes('chronyd')) requirePeers(['chronyd']);
  const loadgen = o.loadgen ?? (await buildLoadgen());

  // Only our own kind: netns.ts's cleanupLeftovers() would also take other helpers' live `rbt-*`.
  const removed = await removeCapLeftovers();
  if (removed.length) console.log(`# removed leftovers: ${removed.join(', ')}`);
  const ns = await createCapNs();
  let pkiDir: string | null = null;
  const cleanup = async (): Promise<void> => {
    await destroyCapNs(ns);
    if (pkiDir) removeTempDir(pkiDir);
    pkiDir = null;
  };
  let interrupted = false;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (interrupted) return;
    interrupted = true;
    console.error(`\n# ${sig}: cleaning up`);
    void cleanup().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const info = versions();
  console.log(
    `# capacity benchmark (${o.nts ? 'NTS' : 'NTP'}), namespace ${ns}, ${info.cpu}, kernel ${info.kernel}, ` +
      `node ${info.node}, ${info.chronyd}, commit ${info.commit}`,
  );
  console.log(
    `# steps of ${o.stepSeconds} s from ${o.start} req/s ×${o.factor} up to ${o.max}, loss-free = < 0.1 % lost, ` +
      `then 2 bisections; loadgen ${loadgen}`,
  );
  const runs: Partial<Record<ServerName, ServerRun>> = {};
  try {
    let ntsFiles: { cert: string; key: string } | null = null;
    let ca: string | null = null;
    if (o.nts) {
      pkiDir = makeTempDir('cap-pki');
      const sub = join(pkiDir, 'pki');
      mkdirSync(sub);
      const pki = makeTestPki(sub);
      chmodSync(pki.serverKey, 0o644); // chronyd reads it after dropping root; a throwaway key
      ntsFiles = { cert: pki.serverCert, key: pki.serverKey };
      ca = pki.caCert;
    }
    for (const name of o.servers) runs[name] = await benchServer({ o, ns, loadgen }, name, ca, ntsFiles);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (!interrupted) await cleanup();
  }

  const summaries = o.servers.map((s) => runs[s]?.summary).filter((s): s is ServerSummary => !!s);
  const table = summaries.length ? summaryTable(summaries, o.nts ? 'NTS' : 'NTP') : '';
  if (table) console.log(`\n${table}\n`);
  const soaks = o.servers.map((s) => runs[s]?.soak).filter((s): s is SoakResult => !!s);
  if (soaks.length) {
    console.log('Soak:');
    for (const s of soaks) for (const l of soakLines(s)) console.log(l);
  }
  if (o.json) {
    writeFileSync(
      o.json,
      JSON.stringify(
        { date: new Date().toISOString(), versions: info, options: o, namespace: ns, servers: runs, table },
        null,
        2,
      ) + '\n',
    );
    console.log(`# results in ${o.json}`);
  }
  return soaks.every((s) => s.verdict) ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    console.error(`capacity: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exitCode = 2;
  },
);
