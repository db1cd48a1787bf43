/**
 * Real NTP peers for interop tests: chronyd/chronyc (Debian chrony), NTPsec ntpd/ntpdig/ntpq
 * (unpacked by scripts/install-peers.sh), and tshark captures. None of them may touch the host
 * clock: chronyd always runs with -x, every process is started without CAP_SYS_TIME (see
 * netns.ts), NTPsec ntpd additionally has `disable ntp` / `disable kernel` (it still calls
 * ntp_adjtime at start, which then fails with EPERM, harmlessly), ntpdig never gets -s/-S.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  makeTempDir,
  removeTempDir,
  run,
  stopOnceThenRemove,
  runInNs,
  startInNs,
  waitFor,
  type ManagedProcess,
} from './netns.js';

export const NTPSEC_DIR = process.env['RUBIDIUM_NTPSEC_DIR'] ?? '/opt/rubidium-peers/ntpsec';
const NTPSEC_PY = join(NTPSEC_DIR, 'usr/lib/python3/dist-packages');
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

export const PEER_BINARIES = {
  chronyd: '/usr/sbin/chronyd',
  chronyc: '/usr/bin/chronyc',
  tshark: '/usr/bin/tshark',
  ntpd: join(NTPSEC_DIR, 'usr/sbin/ntpd'),
  ntpdig: join(NTPSEC_DIR, 'usr/bin/ntpdig'),
  ntpq: join(NTPSEC_DIR, 'usr/bin/ntpq'),
} as const;
export type PeerBinary = keyof typeof PEER_BINARIES;

/** Throws a clear error naming every missing peer binary (install with scripts/install-peers.sh). */
export function requirePeers(names: PeerBinary[]): void {
  const missing = names.filter((n) => !existsSync(PEER_BINARIES[n]));
  if (missing.length) {
    throw new Error(
      `interop peers missing: ${missing.map((n) => `${n} (${PEER_BINARIES[n]})`).join(', ')}; ` +
        'run `sudo bash scripts/install-peers.sh`',
    );
  }
}

export interface ServerSpec {
  address: string;
  /** Source options, e.g. 'iburst minpoll -2 maxpoll -2' (chrony) or 'iburst minpoll 0 maxpoll 0' (NTPsec). */
  options?: string;
}

// ---------------------------------------------------------------------------------------------
// chronyd / chronyc

export interface ChronydOptions {
  ns: string;
  /** Upstream sources (`server ADDR OPTIONS`). */
  servers?: ServerSpec[];
  /** Serve with `local stratum N` when unsynchronised (a stratum-N server on the host clock). */
  localStratum?: number;
  /** `allow` argument: serve NTP to these clients ('all' when localStratum is set). null: none. */
  allow?: string | null;
  /** NTP server port (chronyd `port`, default 123). */
  port?: number;
  /** Command port on 127.0.0.1 inside the namespace (default 323). */
  cmdPort?: number;
  /** Extra chrony.conf lines. */
  extraConfig?: string[];
  readyTimeoutMs?: number;
  name?: string;
}

export interface ChronyTracking {
  refId: string;
  refName: string;
  stratum: number;
  refTime: number;
  /** CSV "System time": NTP time − system time in s (positive: system clock slow of NTP). */
  systemTimeOffset: number;
  lastOffset: number;
  rmsOffset: number;
  frequencyPpm: number;
  residualFreqPpm: number;
  skewPpm: number;
  rootDelay: number;
  rootDispersion: number;
  updateInterval: number;
  leapStatus: string;
}

export interface ChronySource {
  /** '^' server, '=' peer, '#' refclock. */
  mode: string;
  /** '*' selected, '+' combined, '-' not combined, '?' unusable, 'x' falseticker, '~' too variable. */
  state: string;
  address: string;
  stratum: number;
  poll: number;
  reach: number;
  lastRx: number;
  /** Last sample's adjusted offset in s, chrony's sign convention (chronyc(1) `sources`). */
  adjustedOffset: number;
  measuredOffset: number;
  error: number;
}

export function parseChronyTracking(csv: string): ChronyTracking {
  const f = csv.trim().split('\n')[0]!.split(',');
  if (f.length < 14) throw new Error(`unexpected chronyc tracking output: ${csv}`);
  const n = (i: number): number => Number(f[i]);
  return {
    refId: f[0]!,
    refName: f[1]!,
    stratum: n(2),
    refTime: n(3),
    systemTimeOffset: n(4),
    lastOffset: n(5),
    rmsOffset: n(6),
    frequencyPpm: n(7),
    residualFreqPpm: n(8),
    skewPpm: n(9),
    rootDelay: n(10),
    rootDispersion: n(11),
    updateInterval: n(12),
    leapStatus: f[13]!,
  };
}

export function parseChronySources(csv: string): ChronySource[] {
  return csv
    .trim()
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => {
      const f = l.split(',');
      if (f.length < 10) throw new Error(`unexpected chronyc sources line: ${l}`);
      return {
        mode: f[0]!,
        state: f[1]!,
        address: f[2]!,
        stratum: Number(f[3]),
        poll: Number(f[4]),
        reach: parseInt(f[5]!, 8),
        lastRx: Number(f[6]),
        adjustedOffset: Number(f[7]),
        measuredOffset: Number(f[8]),
        error: Number(f[9]),
      };
    });
}

/** Runs `chronyc -h 127.0.0.1 -p PORT -n -c ARGS` inside `ns`; returns stdout. */
export async function chronyc(
  ns: string,
  args: string[],
  opts: { cmdPort?: number; timeoutMs?: number } = {},
): Promise<string> {
  const r = await runInNs(
    ns,
    PEER_BINARIES.chronyc,
    ['-h', '127.0.0.1', '-p', String(opts.cmdPort ?? 323), '-n', '-c', ...args],
    { timeoutMs: opts.timeoutMs ?? 10_000 },
  );
  if (/^(506|501|5\d\d) /m.test(r.stdout) || r.stdout.includes('Cannot talk to daemon')) {
    throw new Error(`chronyc ${args.join(' ')}: ${r.stdout}${r.stderr}`);
  }
  return r.stdout;
}

export interface Chronyd {
  proc: ManagedProcess;
  ns: string;
  dir: string;
  confPath: string;
  cmdPort: number;
  chronyc(args: string[]): Promise<string>;
  tracking(): Promise<ChronyTracking>;
  sources(): Promise<ChronySource[]>;
  /** Waits until a source (the given address, or any) is selected ('*'); returns it. */
  waitForSelected(address?: string, timeoutMs?: number): Promise<ChronySource>;
  /** Stops chronyd (verified gone) and removes its temp dir. Idempotent. */
  stop(): Promise<void>;
}

export function chronydConfig(opts: ChronydOptions, dir: string): string {
  const lines: string[] = [];
  for (const s of opts.servers ?? []) lines.push(`server ${s.address} ${s.options ?? 'iburst'}`.trim());
  if (opts.localStratum !== undefined) lines.push(`local stratum ${opts.localStratum}`);
  const allow = opts.allow !== undefined ? opts.allow : opts.localStratum !== undefined ? 'all' : null;
  if (allow !== null) lines.push(`allow ${allow}`);
  if (opts.port !== undefined) lines.push(`port ${opts.port}`);
  lines.push(
    'bindcmdaddress 127.0.0.1',
    'bindcmdaddress /', // no Unix command socket: instances would share /run/chrony/chronyd.sock
    `cmdport ${opts.cmdPort ?? 323}`,
    `pidfile ${join(dir, 'chronyd.pid')}`,
    ...(opts.extraConfig ?? []),
  );
  return lines.join('\n') + '\n';
}

/** Starts `chronyd -x -d -f CONF` in `opts.ns` and waits until chronyc can talk to it. */
export async function startChronyd(opts: ChronydOptions): Promise<Chronyd> {
  requirePeers(['chronyd', 'chronyc']);
  const dir = makeTempDir('chronyd');
  const confPath = join(dir, 'chrony.conf');
  const cmdPort = opts.cmdPort ?? 323;
  writeFileSync(confPath, chronydConfig(opts, dir));
  let proc: ManagedProcess | undefined;
  try {
    proc = await startInNs(opts.ns, PEER_BINARIES.chronyd, ['-x', '-d', '-f', confPath], {
      name: opts.name ?? `chronyd@${opts.ns}`,
      readyPattern: /chronyd version \S+ starting/,
      readyTimeoutMs: opts.readyTimeoutMs ?? 10_000,
      logFile: join(dir, 'chronyd.log'),
    });
    const p = proc;
    await waitFor(() => chronyc(opts.ns, ['tracking'], { cmdPort, timeoutMs: 3000 }), {
      timeoutMs: opts.readyTimeoutMs ?? 10_000,
      what: `chronyc to reach chronyd in ${opts.ns}`,
    }).catch((e: Error) => {
      throw new Error(`${e.message}\n${p.tail()}`);
    });
  } catch (e) {
    await proc?.stop().catch(() => undefined);
    removeTempDir(dir);
    throw e;
  }
  const p = proc;
  const self: Chronyd = {
    proc: p,
    ns: opts.ns,
    dir,
    confPath,
    cmdPort,
    chronyc: (args) => chronyc(opts.ns, args, { cmdPort }),
    tracking: async () => parseChronyTracking(await chronyc(opts.ns, ['tracking'], { cmdPort })),
    sources: async () => parseChronySources(await chronyc(opts.ns, ['sources'], { cmdPort })),
    waitForSelected: (address, timeoutMs = 20_000) =>
      waitFor(
        async () =>
          (await self.sources()).find((s) => s.state === '*' && (address === undefined || s.address === address)),
        { timeoutMs, intervalMs: 250, what: `chronyd in ${opts.ns} to select ${address ?? 'a source'}` },
      ).catch(async (e: Error) => {
        const src = await chronyc(opts.ns, ['sources'], { cmdPort }).catch(() => '');
        throw new Error(`${e.message}\nsources:\n${src}\nlog:\n${p.tail()}`);
      }),
    stop: stopOnceThenRemove(p, dir),
  };
  return self;
}

// ---------------------------------------------------------------------------------------------
// NTPsec

/** Environment for NTPsec's Python tools from the unpacked tree. */
export function ntpsecEnv(): NodeJS.ProcessEnv {
  const pp = process.env['PYTHONPATH'];
  return { ...process.env, PYTHONPATH: pp ? `${NTPSEC_PY}:${pp}` : NTPSEC_PY };
}

export interface NtpdOptions {
  ns: string;
  servers?: ServerSpec[];
  /**
   * Serve the host clock as stratum N with no upstream source (`tos orphan N orphanwait 0`).
   * Without it ntpd only serves synchronised time once it has selected an upstream source.
   */
  localStratum?: number;
  extraConfig?: string[];
  readyTimeoutMs?: number;
  name?: string;
}

export interface NtpqPeer {
  /** Tally code: '*' system peer, '+' candidate, '-' outlier, 'x' falseticker, ' ' rejected, ... */
  tally: string;
  remote: string;
  refid: string;
  stratum: number;
  type: string;
  when: string;
  poll: number;
  reach: number;
  /** ms, as ntpq prints them. */
  delayMs: number;
  offsetMs: number;
  jitterMs: number;
}

export function parseNtpqPeers(text: string): NtpqPeer[] {
  const out: NtpqPeer[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('=') || /^\s+remote\s/.test(line)) continue;
    const tally = line[0]!;
    const f = line.slice(1).trim().split(/\s+/);
    if (f.length < 10) continue;
    out.push({
      tally,
      remote: f[0]!,
      refid: f[1]!,
      stratum: Number(f[2]),
      type: f[3]!,
      when: f[4]!,
      poll: Number(f[5]),
      reach: parseInt(f[6]!, 8),
      delayMs: Number(f[7]),
      offsetMs: Number(f[8]),
      jitterMs: Number(f[9]),
    });
  }
  return out;
}

export interface Ntpd {
  proc: ManagedProcess;
  ns: string;
  dir: string;
  confPath: string;
  /** `ntpq -pn 127.0.0.1`, parsed. */
  peers(): Promise<NtpqPeer[]>;
  /** `ntpq -c ARGS 127.0.0.1` raw output. */
  ntpq(args: string[]): Promise<string>;
  /** Waits until a peer (the address, or any) is the system peer ('*'). */
  waitForSysPeer(address?: string, timeoutMs?: number): Promise<NtpqPeer>;
  stop(): Promise<void>;
}

export function ntpdConfig(opts: NtpdOptions, dir: string): string {
  const lines = [
    // Never discipline the clock. ntpd still calls ntp_adjtime at start; without CAP_SYS_TIME
    // (netns.ts drops it) those calls fail with EPERM and are only logged.
    'disable ntp',
    'disable kernel',
    // Explicit restrict lines: without them this ntpd left ntpq's mode-6 queries unanswered.
    'restrict default',
    'restrict 127.0.0.1',
    'restrict ::1',
    `statsdir ${dir}/`,
  ];
  // Orphan mode, not the LOCAL refclock: with `disable ntp` the clock is never "set", so a
  // selected LOCAL(0) is served with LI=3 and a huge root dispersion. An orphan parent with no
  // sources serves stratum N, LI=0, refid LOOP at once (orphanwait 0).
  if (opts.localStratum !== undefined) lines.push(`tos orphan ${opts.localStratum} orphanwait 0`);
  for (const s of opts.servers ?? [])
    lines.push(`server ${s.address} ${s.options ?? 'iburst minpoll 0 maxpoll 0'}`.trim());
  lines.push(...(opts.extraConfig ?? []));
  return lines.join('\n') + '\n';
}

/** Starts NTPsec `ntpd -n -c CONF -p PIDFILE` (foreground, log on stderr) in `opts.ns`. */
export async function startNtpd(opts: NtpdOptions): Promise<Ntpd> {
  requirePeers(['ntpd', 'ntpq']);
  const dir = makeTempDir('ntpd');
  const confPath = join(dir, 'ntp.conf');
  writeFileSync(confPath, ntpdConfig(opts, dir));
  let proc: ManagedProcess;
  try {
    proc = await startInNs(
      opts.ns,
      PEER_BINARIES.ntpd,
      ['-n', '-c', confPath, '-p', join(dir, 'ntpd.pid'), '-f', join(dir, 'ntp.drift')],
      {
        name: opts.name ?? `ntpd@${opts.ns}`,
        readyPattern: /Listen normally on \d+ \S+ (?!127\.|\[)/,
        readyTimeoutMs: opts.readyTimeoutMs ?? 10_000,
        logFile: join(dir, 'ntpd.log'),
        env: ntpsecEnv(),
      },
    );
  } catch (e) {
    removeTempDir(dir);
    throw e;
  }
  const p = proc;
  const ntpq = async (args: string[]): Promise<string> =>
    (
      await runInNs(opts.ns, PYTHON, [PEER_BINARIES.ntpq, ...args, '127.0.0.1'], {
        env: ntpsecEnv(),
        timeoutMs: 10_000,
      })
    ).stdout;
  const self: Ntpd = {
    proc: p,
    ns: opts.ns,
    dir,
    confPath,
    ntpq: (args) => ntpq(['-c', args.join(' ')]),
    peers: async () => parseNtpqPeers(await ntpq(['-pn'])),
    waitForSysPeer: (address, timeoutMs = 30_000) =>
      waitFor(
        async () =>
          (await self.peers()).find((x) => x.tally === '*' && (address === undefined || x.remote === address)),
        { timeoutMs, intervalMs: 500, what: `ntpd in ${opts.ns} to select ${address ?? 'a peer'}` },
      ).catch(async (e: Error) => {
        const peers = await ntpq(['-pn']).catch(() => '');
        throw new Error(`${e.message}\npeers:\n${peers}\nlog:\n${p.tail()}`);
      }),
    stop: stopOnceThenRemove(p, dir),
  };
  return self;
}

export interface NtpdigResult {
  /** Server time − local clock in s (ntpdig's offset; positive: server ahead). */
  offset: number;
  precision: number;
  stratum: number;
  leap: string;
  host: string;
  ip: string;
  time: string;
}

/**
 * Runs NTPsec's ntpdig (SNTP client, JSON output) against `address` from inside `ns`, never
 * setting the clock. With samples > 1 ntpdig reports the best of them.
 */
export async function ntpdig(
  ns: string,
  address: string,
  opts: { samples?: number; timeoutS?: number } = {},
): Promise<NtpdigResult> {
  requirePeers(['ntpdig']);
  const args = [PEER_BINARIES.ntpdig, '-j', '-t', String(opts.timeoutS ?? 2)];
  if (opts.samples && opts.samples > 1) args.push('-p', String(opts.samples));
  args.push(address);
  const r = await runInNs(ns, PYTHON, args, { env: ntpsecEnv(), timeoutMs: 30_000 });
  const line = r.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('{'))
    .pop();
  if (!line) throw new Error(`ntpdig ${address}: no JSON result:\n${r.stdout}${r.stderr}`);
  const j = JSON.parse(line) as Record<string, unknown>;
  return {
    offset: Number(j['offset']),
    precision: Number(j['precision']),
    stratum: Number(j['stratum']),
    leap: String(j['leap']),
    host: String(j['host']),
    ip: String(j['ip']),
    time: String(j['time']),
  };
}

// ---------------------------------------------------------------------------------------------
// tshark

export interface Capture {
  proc: ManagedProcess;
  file: string;
  dir: string;
  /** Stops the capture (SIGINT, so the pcap is complete). Idempotent. Keeps the file. */
  stop(): Promise<void>;
  /** stop() + removes the temp dir with the pcap. */
  dispose(): Promise<void>;
}

/** Starts `tshark -i IFACE -f FILTER -w FILE` inside `ns`; resolves once capturing. */
export async function startCapture(
  ns: string,
  iface: string,
  opts: { filter?: string; readyTimeoutMs?: number } = {},
): Promise<Capture> {
  requirePeers(['tshark']);
  const dir = makeTempDir('pcap');
  const file = join(dir, 'capture.pcapng');
  let proc: ManagedProcess;
  try {
    proc = await startInNs(
      ns,
      PEER_BINARIES.tshark,
      ['-n', '-i', iface, '-f', opts.filter ?? 'udp port 123', '-w', file, '-q'],
      {
        name: `tshark@${ns}`,
        readyPattern: /Capturing on|Capture started/,
        readyTimeoutMs: opts.readyTimeoutMs ?? 15_000,
      },
    );
  } catch (e) {
    removeTempDir(dir);
    throw e;
  }
  const p = proc;
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    // SIGINT lets tshark/dumpcap flush and close the file; stop() escalates if needed.
    await p.stop({ signal: 'SIGINT', graceMs: 5000 });
  };
  return {
    proc: p,
    file,
    dir,
    stop,
    dispose: async () => {
      try {
        await stop();
      } finally {
        removeTempDir(dir);
      }
    },
  };
}

export interface CaptureAnalysis {
  /** Frames dissected as NTP. */
  ntpPackets: number;
  /** Frames with a malformed-packet expert item (any protocol). */
  malformed: number;
  /** NTP frames per mode (3 client, 4 server, ...). */
  modes: Record<number, number>;
  /** `tshark -r FILE -Y _ws.malformed` lines, for failure messages. */
  malformedFrames: string;
}

/**
 * Reads a capture with tshark: counts NTP frames (per mode) and malformed frames. `ntpPorts`
 * lists extra UDP ports to decode as NTP (tests that serve on a port other than 123).
 */
export async function analyzeCapture(file: string, opts: { ntpPorts?: number[] } = {}): Promise<CaptureAnalysis> {
  requirePeers(['tshark']);
  const decode = (opts.ntpPorts ?? []).filter((p) => p !== 123).flatMap((p) => ['-d', `udp.port==${p},ntp`]);
  const fields = await run(
    PEER_BINARIES.tshark,
    ['-n', '-r', file, ...decode, '-Y', 'ntp', '-T', 'fields', '-e', 'ntp.flags.mode'],
    {
      timeoutMs: 60_000,
    },
  );
  const modes: Record<number, number> = {};
  let ntpPackets = 0;
  for (const l of fields.stdout.split('\n')) {
    if (!l.trim()) continue;
    ntpPackets++;
    const m = Number(l.trim().split(',')[0]);
    modes[m] = (modes[m] ?? 0) + 1;
  }
  const bad = await run(PEER_BINARIES.tshark, ['-n', '-r', file, ...decode, '-Y', '_ws.malformed'], {
    timeoutMs: 60_000,
  });
  const malformedFrames = bad.stdout.trim();
  return {
    ntpPackets,
    malformed: malformedFrames ? malformedFrames.split('\n').length : 0,
    modes,
    malformedFrames,
  };
}
