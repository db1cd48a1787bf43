/**
 * rubidiumd: reads the configuration, builds the sans-IO Engine, opens sockets through the I/O
 * layer, starts the control server, and runs until a signal (or -q/-Q/-t) ends it.
 */
import { spawn } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomInt } from 'node:crypto';
import { fileURLToPath } from 'node:url';

import { DisciplinedClock } from '../clock/disciplined-clock.js';
import { InjectedError } from '../clock/injected-error.js';
import type { Clock } from '../clock/clock.js';
import { SystemClock } from '../clock/system-clock.js';
import {
  ConfigError,
  DEFAULT_CONFIG_TEXT,
  formatConfig,
  loadConfigFile,
  parseConfigText,
  type Config,
  type SourceConfig as ConfSource,
} from '../config/chrony-conf.js';
import { startControlServer, type ControlHandler, type ControlServer } from '../control/server.js';
import { Engine, type SourceConfig } from '../engine/engine.js';
import { native, nativeLoadError } from '../io/native.js';
import { realtimeNow } from '../io/realtime.js';
import { openUdpSocket } from '../io/udp.js';
import type { AccessTable } from '../ntp/access.js';
import { formatNtpConfig, isFromNtpConf, isNtpConfFile, loadNtpConfFile } from '../config/ntp-conf.js';
import { convertNtpConfFile } from '../config/ntp-to-chrony.js';
import { readDriftFile, writeDriftFile } from '../discipline/driftfile-io.js';
import { leapDisciplineOptions } from './leap-files.js';
import { addSeconds, type Instant } from '../time/ntp-time.js';
import { FlagError, parseFlags, USAGE, type DaemonFlags } from './flags.js';
import { Runtime, type RuntimeLogger } from './runtime.js';
import { startJumpWatch } from './jump-watch.js';
import { learnLocalRefIds } from './local-refid.js';
import { makeControlHandler } from './control-handler.js';
import { setupCmdmon } from '../cmdmon/daemon-setup.js';
import { StatsLogger } from './stats-logger.js';
import * as tuning from '../config/engine-options.js';
import { setupRtc } from '../rtc/rtc-service.js';
import { acquirePidFile, releasePidFile } from './pidfile.js';
import { dropPrivileges, lookupUser, prepareStateDirs, stateDirsOf, type UserIds } from './privileges.js';
import { openNotifier } from './sd-notify.js';
import { setupKeys, type KeysSetup } from './keys-setup.js';
import { NtsDaemon } from './nts-setup.js';
import { openServing, serverWorkerCount, type Serving } from './batch-serving.js';
import {
  buildAccessTable,
  loadKeyData,
  mode6QueryAllowed,
  restrictTableOf,
  serverPolicy,
  workerClientLogLimit,
} from './server-policy.js';

export const VERSION = '0.1.0';

function makeLogger(flags: DaemonFlags): RuntimeLogger {
  const stamp = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const out = (msg: string) => {
    if (flags.debug > 0 || flags.noDetach) process.stderr.write(`${stamp()} ${msg}\n`);
  };
  return {
    info: out,
    warn: out,
    debug: (m) => {
      if (flags.debug > 1) out(m);
    },
  };
}

/**
 * The virtual clock: its raw time is host CLOCK_REALTIME, plus a test-injected error
 * (--inject-error) that applies equally to kernel packet timestamps.
 */
function virtualClock(flags: DaemonFlags): DisciplinedClock {
  if (!flags.injectError) return new DisciplinedClock(realtimeNow, 'virtual');
  const model = new InjectedError(flags.injectError, realtimeNow());
  const inject = (rt: Instant): Instant => addSeconds(rt, model.errorAt(rt));
  return new DisciplinedClock(() => inject(realtimeNow()), 'virtual', inject);
}

async function resolveSources(
  conf: Config,
  family: 4 | 6 | null,
  log: RuntimeLogger,
  keys?: KeysSetup,
  nts?: NtsDaemon,
): Promise<SourceConfig[]> {
  const out: SourceConfig[] = [];
  const seen = new Set<string>();
  const add = (src: ConfSource, address: string) => {
    const keyAuth = keys?.clientAuth(src);
    const id = `${address}:${src.options.port}`;
    if (seen.has(id)) return;
    seen.add(id);
    out.push({
      id,
      name: src.type === 'pool' || isIP(src.host) ? address : src.host,
      address: { address, port: src.options.port },
      minpoll: src.options.minpoll,
      maxpoll: src.options.maxpoll,
      iburst: src.options.iburst,
      burst: src.options.burst,
      prefer: src.options.prefer,
      noselect: src.options.noselect,
      trust: src.options.trust,
      require: src.options.require,
      maxdelay: src.options.maxdelay,
      polltarget: src.options.polltarget,
      xleave: src.options.xleave,
      version: src.options.version ?? 4,
      offline: src.options.offline,
      tuning: tuning.sourceTuning(src.options),
      ...(keyAuth ? { auth: keyAuth } : {}),
      ...nts?.sourceAuth(src, address), // an NTS session as `auth` for nts sources
    });
  };
  for (const src of conf.sources) {
    if (isIP(src.host)) {
      add(src, src.host);
      continue;
    }
    try {
      const fam = family ?? src.options.family; // ipv4/ipv6 source option (-4/-6 take precedence)
      const addrs = await lookup(src.host, { all: true, ...(fam ? { family: fam } : {}) });
      const take = src.type === 'pool' ? (src.maxsources ?? 4) : 1;
      for (const a of addrs.slice(0, take)) add(src, a.address);
      if (addrs.length === 0) log.warn(`${src.origin}: could not resolve ${src.host}: no addresses`);
    } catch (e) {
      log.warn(`${src.origin}: could not resolve ${src.host}: ${(e as Error).message}`);
    }
  }
  return out;
}

function loadConfig(flags: DaemonFlags, log: RuntimeLogger): { conf: Config; origin: string } {
  if (flags.directives.length > 0) {
    return { conf: parseConfigText(flags.directives.join('\n'), 'command line'), origin: 'command line' };
  }
  // ntp.conf: --ntp-conf, a file named ntp.conf, or ntp.conf-only directives (docs/ntp-conf.md).
  if (flags.configFile && (flags.ntpConf || isNtpConfFile(flags.configFile))) {
    return { conf: loadNtpConfFile(flags.configFile), origin: flags.configFile };
  }
  if (flags.configFile) return { conf: loadConfigFile(flags.configFile), origin: flags.configFile };
  log.info('No configuration file given (-f): using the embedded default configuration (virtual clock, as with -x)');
  // The embedded default is a demonstration server: it never touches the system clock.
  flags.noClockControl = true;
  return { conf: parseConfigText(DEFAULT_CONFIG_TEXT, 'embedded default'), origin: 'embedded default' };
}

/** chronyd without -n/-d detaches into the background; so does rubidiumd. */
function detach(argv: readonly string[]): number {
  const self = fileURLToPath(import.meta.url);
  const launcher = path.join(path.dirname(self), '..', '..', '..', 'bin', 'rubidiumd');
  const child = spawn(process.execPath, [launcher, '-n', ...argv], { detached: true, stdio: 'ignore' });
  child.unref();
  return 0;
}

export async function main(argv: readonly string[]): Promise<number> {
  let flags: DaemonFlags;
  try {
    flags = parseFlags(argv);
  } catch (e) {
    if (e instanceof FlagError) {
      process.stderr.write(`rubidiumd: ${e.message}\n${USAGE}`);
      return 1;
    }
    throw e;
  }
  if (flags.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (flags.version) {
    process.stdout.write(`rubidiumd (Rubidium) version ${VERSION}\n`);
    return 0;
  }
  if (flags.convertNtpConf !== null) {
    try {
      process.stdout.write(convertNtpConfFile(flags.convertNtpConf));
      return 0;
    } catch (e) {
      process.stderr.write(`rubidiumd: ${(e as Error).message}\n`);
      return 1;
    }
  }
  const log = makeLogger({
    ...flags,
    noDetach: flags.noDetach || flags.printConfig || flags.measureOnceAndExit || flags.setOnceAndExit,
  });
  for (const w of flags.warnings) log.warn(w);

  let conf: Config;
  try {
    conf = loadConfig(flags, log).conf;
  } catch (e) {
    if (e instanceof ConfigError || (e as NodeJS.ErrnoException).code) {
      process.stderr.write(`rubidiumd: ${(e as Error).message}\n`);
      return 1;
    }
    throw e;
  }
  for (const w of conf.warnings) process.stderr.write(`rubidiumd: warning: ${w}\n`);
  if (flags.printConfig) {
    process.stdout.write(isFromNtpConf(conf) ? formatNtpConfig(conf) : formatConfig(conf));
    return 0;
  }
  if (flags.injectError && !flags.noClockControl) {
    process.stderr.write('rubidiumd: --inject-error needs -x (it only affects the virtual clock)\n');
    return 1;
  }
  const oneShot = flags.setOnceAndExit || flags.measureOnceAndExit;
  if (!flags.noDetach && !oneShot) return detach(argv);

  // A SIGTERM/SIGINT during start-up is held until the daemon is up, then shuts it down cleanly
  // (drift saved, pidfile removed) instead of killing it by the default action.
  let earlySignal = false;
  const holdSignal = () => {
    earlySignal = true;
  };
  process.on('SIGINT', holdSignal);
  process.on('SIGTERM', holdSignal);

  log.info(`rubidiumd version ${VERSION} starting (${flags.noClockControl ? 'virtual clock, -x' : 'system clock'})`);
  if (!native)
    log.warn(
      `Warning: ${nativeLoadError ?? 'native addon unavailable'}; falling back to node:dgram with daemon timestamps`,
    );

  let clock: Clock;
  if (flags.noClockControl || flags.measureOnceAndExit) {
    clock = virtualClock(flags);
  } else {
    if (!native) {
      process.stderr.write(
        'rubidiumd: cannot discipline the system clock without the native addon (clock_adjtime); use -x\n',
      );
      return 1;
    }
    try {
      clock = new SystemClock(native);
    } catch (e) {
      process.stderr.write(`rubidiumd: cannot use the system clock: ${(e as Error).message}\n`);
      return 1;
    }
  }
  const rtc = setupRtc(conf, clock, log); // rtcsync's STA_UNSYNC policy; rtcfile tracking where an RTC exists
  if (rtc.fatal) {
    process.stderr.write(`rubidiumd: ${rtc.fatal}\n`);
    return 1;
  }
  clock = rtc.clock;

  // -u overrides `user`; the directories of files written after the drop must be the user's.
  const runAs = process.getuid?.() === 0 ? (flags.user ?? conf.user) : null;
  let runAsIds: UserIds | null = null;
  try {
    runAsIds = runAs ? lookupUser(runAs) : null;
    if (runAsIds)
      prepareStateDirs(
        stateDirsOf([
          conf.pidfile,
          conf.driftfile,
          conf.logdir && `${conf.logdir}/.`,
          conf.nts.ntsdumpdir && `${conf.nts.ntsdumpdir}/.`,
        ]),
        runAsIds,
      );
  } catch (e) {
    process.stderr.write(`rubidiumd: cannot run as user ${runAs}: ${(e as Error).message}\n`);
    return 1;
  }

  // The pidfile refuses a second instance, like chronyd's.
  if (conf.pidfile && !oneShot) {
    try {
      acquirePidFile(conf.pidfile);
    } catch (e) {
      process.stderr.write(`rubidiumd: ${(e as Error).message}\n`);
      return 1;
    }
  }

  let initialFreq = 0;
  // Without a drift file the frequency is unknown (chrony starts from 1 s/s): a small default
  // skew would make the servo trust a frequency of 0 and learn the real one slowly.
  let driftSkew: number | undefined;
  if (conf.driftfile) {
    try {
      const d = await readDriftFile(conf.driftfile);
      if (d) {
        // The file holds the clock's own frequency error (chrony's sign); we apply its opposite.
        initialFreq = -d.freqPpm;
        driftSkew = d.skewPpm;
        log.info(`Frequency ${d.freqPpm.toFixed(3)} +/- ${driftSkew.toFixed(3)} ppm read from ${conf.driftfile}`);
      }
    } catch (e) {
      log.warn(`Could not read ${conf.driftfile}: ${(e as Error).message}`);
    }
  }
  if (initialFreq !== 0 && clock.kind === 'system') clock.setFrequency(initialFreq);

  let access: AccessTable;
  try {
    access = buildAccessTable(conf);
  } catch (e) {
    process.stderr.write(`rubidiumd: ${(e as Error).message}\n`);
    return 1;
  }

  let keys: KeysSetup;
  try {
    keys = setupKeys(conf, (m) => log.warn(m));
  } catch (e) {
    process.stderr.write(`rubidiumd: ${(e as Error).message}\n`);
    if (conf.pidfile && !oneShot) releasePidFile(conf.pidfile);
    return 1;
  }
  // NTS (nts-setup.ts): server keys and authenticator before the engine, a session per nts source.
  const nts = new NtsDaemon(conf, clock, log);
  try {
    nts.prepareServer();
  } catch (e) {
    process.stderr.write(`rubidiumd: ${(e as Error).message}\n`);
    if (conf.pidfile && !oneShot) releasePidFile(conf.pidfile);
    return 1;
  }
  const sources = await resolveSources(conf, flags.family, log, keys, nts);
  // ntp.conf: restrict rules replace allow/deny (serve unless ignore/noserve/notrust).
  const restrict = restrictTableOf(
    conf,
    sources.map((s) => s.address.address),
  );
  // NTP mode 6 (ntpq): ntp.conf's restrict noquery/ignore decide; chrony.conf has no mode 6
  // access directive, so only loopback may query (as chrony's cmdallow default). docs/ntpq.md.
  const mode6 = {
    queryAllowed: mode6QueryAllowed(restrict),
    version: `rubidiumd ${VERSION}`,
    processor: os.machine(),
    system: `${os.type()}/${os.release()}`,
  };
  const serverWorkers = conf.port !== 0 && !oneShot ? serverWorkerCount(conf, log) : 1;
  const makestep = oneShot ? { threshold: 0, limit: -1 } : (conf.makestep ?? undefined);
  const engine = new Engine(
    {
      sources: oneShot ? sources.map((s) => ({ ...s, iburst: true })) : sources,
      discipline: {
        ...(makestep ? { makestep } : {}),
        // The virtual clock takes corrections at once (as chronyd -x); the system clock slews.
        correction: flags.noClockControl ? 'instant' : 'slew',
        ...tuning.disciplineTuning(conf),
        minsources: conf.minsources,
        maxdistance: conf.maxdistance,
        initialFrequencyPpm: initialFreq,
        ...(driftSkew !== undefined ? { initialSkewPpm: driftSkew } : {}),
        ...(conf.local ? { localStratum: conf.local } : {}),
        ...leapDisciplineOptions(conf, clock.now(), (m) => process.stderr.write(`rubidiumd: warning: ${m}\n`)),
      },
      server: {
        enabled: conf.port !== 0 && !oneShot,
        mode6,
        ...serverPolicy(conf, access, restrict, [...(keys.serverAuth ? [keys.serverAuth] : []), ...nts.serverAuth]),
        // With server workers the client log is theirs; main's server sees only mode 6.
        ...(serverWorkers > 1 ? { clientLogLimit: 1 } : {}),
      },
      precision: tuning.precisionLog2(conf, native ? -25 : -20),
      timestamping: native ? 'Kernel' : 'Daemon',
    },
    { random: () => randomInt(0, 2 ** 32) / 2 ** 32 },
  );
  const runtime = new Runtime(engine, clock, log);

  // Sockets: server on the configured port (batch-serving.ts), client sockets on ephemeral ports.
  const wantFamily = (f: 4 | 6) => flags.family === null || flags.family === f;
  let serving: Serving | null = null;
  try {
    if (conf.port !== 0 && !oneShot) {
      serving = await openServing({
        conf,
        family: flags.family,
        engine,
        runtime,
        clock,
        log,
        workers: serverWorkers,
        policy: () => ({
          sourceAddresses: sources.map((s) => s.address.address),
          keys: loadKeyData(conf),
          ntsKeys: nts.keysDump(),
        }),
        workerClientLogLimit: workerClientLogLimit(conf, serverWorkers),
      });
      nts.onKeysRotated = (dump) => serving?.setNtsKeys(dump);
    }
    for (const family of [4, 6] as const) {
      if (!wantFamily(family)) continue;
      try {
        const sock = await openUdpSocket({
          family,
          address: tuning.acquisitionAddress(conf, family),
          port: conf.acquisitionport,
          onDatagram: (d, from, rx) => runtime.datagram('client', d, from, rx),
          onTxTimestamp: (id, tx) => runtime.txTimestamp(sock, id, tx),
        });
        runtime.attach(family === 6 ? 'client6' : 'client4', sock);
      } catch (e) {
        if (family === 4) throw e;
        log.debug(`No IPv6 client socket: ${(e as Error).message}`);
      }
    }
  } catch (e) {
    process.stderr.write(`rubidiumd: could not open NTP socket: ${(e as Error).message}\n`);
    runtime.stop();
    await serving?.stop();
    if (conf.pidfile) releasePidFile(conf.pidfile);
    return 1;
  }

  if (!oneShot) {
    try {
      await nts.startServer(conf.bindaddress, flags.family);
    } catch (e) {
      process.stderr.write(`rubidiumd: ${(e as Error).message}\n`);
      runtime.stop();
      await serving?.stop();
      if (conf.pidfile) releasePidFile(conf.pidfile);
      return 1;
    }
  }

  let control: ControlServer | null = null;
  const withServing = (h: ControlHandler): ControlHandler => serving?.controlHandler(h) ?? h;
  let cmdmon: ReturnType<typeof setupCmdmon> | null = null;
  const stats = new StatsLogger(conf, log);
  const saveDrift = async () => {
    if (!conf.driftfile || clock.kind === 'simulated') return;
    try {
      const d = engine.disciplineState;
      await writeDriftFile(conf.driftfile, -d.frequencyPpm, d.skewPpm);
    } catch (e) {
      log.warn(`Could not write ${conf.driftfile}: ${(e as Error).message}`);
    }
  };

  if (!oneShot) {
    const udpAddr = conf.bindcmdaddress.find((a) => isIP(a)) ?? '127.0.0.1';
    const unixPath = conf.cmdSocket && (process.getuid?.() === 0 || flags.configFile) ? conf.cmdSocket : undefined;
    cmdmon = setupCmdmon(
      engine,
      () => runtime.flush(),
      clock,
      conf,
      log,
      () => control?.stats ?? { received: 0, dropped: 0 },
      () => stats.cycle(),
    );
    try {
      control = await startControlServer({
        ...(unixPath ? { unixPath } : {}),
        ...(conf.cmdport !== 0 ? { udp: { address: udpAddr, port: conf.cmdport } } : {}),
        rawUdp: cmdmon.udpHook,
        handler: withServing(
          makeControlHandler(engine, runtime, clock, () => control?.stats ?? { received: 0, dropped: 0 }, stats),
        ),
        onError: (err) => log.debug(`control: ${err.message}`),
      });
    } catch (e) {
      // Without a control channel the daemon still keeps time; say so and go on.
      log.warn(`Could not open control socket: ${(e as Error).message}`);
      if (unixPath) {
        try {
          control = await startControlServer({
            ...(conf.cmdport !== 0 ? { udp: { address: udpAddr, port: conf.cmdport } } : {}),
            rawUdp: cmdmon.udpHook,
            handler: withServing(
              makeControlHandler(engine, runtime, clock, () => control?.stats ?? { received: 0, dropped: 0 }, stats),
            ),
          });
        } catch (e2) {
          log.warn(`Could not open UDP control socket: ${(e2 as Error).message}`);
        }
      }
    }
    if (control) {
      const where = [control.unixPath ? control.unixPath : '', control.udpPort ? `${udpAddr}:${control.udpPort}` : '']
        .filter(Boolean)
        .join(' and ');
      if (where) {
        log.info(`Control socket on ${where}`);
        const hint = control.udpPort
          ? `bin/rubidiumc -h ${udpAddr} -p ${control.udpPort} tracking`
          : `bin/rubidiumc -h ${control.unixPath} tracking`;
        log.info(`Query it with: ${hint}   (also: sources -v, sourcestats, serverstats, --json)`);
      } else log.info('No control socket (cmdport 0 and bindcmdaddress /)');
    }
    if (unixPath) await cmdmon.openUnix(unixPath, flags.configFile !== null);
  }

  // Drop privileges once every privileged socket is bound (keeping CAP_SYS_TIME for the system clock).
  if (runAsIds && runAsIds.uid !== 0) {
    try {
      log.info(dropPrivileges(runAsIds, clock.kind === 'system'));
    } catch (e) {
      process.stderr.write(`rubidiumd: could not switch to user ${runAsIds.name}: ${(e as Error).message}\n`);
      runtime.stop();
      await serving?.stop();
      await control?.close();
      if (conf.pidfile && !oneShot) releasePidFile(conf.pidfile);
      return 1;
    }
  }
  const notifier = oneShot ? null : openNotifier(process.env, log.warn);

  return await new Promise<number>((resolve) => {
    let finished = false;
    const timers: NodeJS.Timeout[] = [];
    const finish = async (code: number) => {
      if (finished) return;
      finished = true;
      notifier?.stopping();
      for (const t of timers) clearInterval(t);
      runtime.stop();
      await serving?.stop();
      await nts.stop();
      await control?.close();
      cmdmon?.close();
      stats.close();
      rtc.tracker?.stop();
      if (!oneShot) await saveDrift();
      if (conf.pidfile && !oneShot) releasePidFile(conf.pidfile);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      notifier?.close();
      log.info('rubidiumd exiting');
      resolve(code);
    };
    const onSignal = () => void finish(0);
    if (serving)
      serving.onFatal = (m) => {
        process.stderr.write(`rubidiumd: ${m}\n`);
        void finish(1);
      };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    process.off('SIGINT', holdSignal);
    process.off('SIGTERM', holdSignal);

    runtime.onClockAction = (a) => {
      if (a.type === 'step' || a.type === 'frequency') {
        stats.onClockUpdate(engine, clock.now());
        nts.onClockUpdate();
      }
      if (oneShot && a.type === 'step') {
        process.stdout.write(
          `System clock wrong by ${a.seconds.toFixed(6)} seconds (${flags.measureOnceAndExit || flags.noClockControl ? 'ignored' : 'step'})\n`,
        );
        void finish(0);
      }
    };
    nts.start(engine, runtime, sources);
    runtime.start();
    if (!oneShot) timers.push(startJumpWatch(engine, runtime, clock, log));
    if (conf.local?.orphan && !oneShot) void learnLocalRefIds(engine, sources, (m) => log.warn(m));
    if (!oneShot) rtc.tracker?.start(60, () => engine.tracking(clock.now()).leapStatus !== 'Not synchronised');
    notifier?.ready(`Serving with ${sources.length} source(s)`);
    timers.push(setInterval(() => stats.onPoll(engine, clock.now()), 1000));
    if (conf.driftfile && !oneShot)
      timers.push(setInterval(() => void saveDrift(), (conf.driftfileInterval ?? 3600) * 1000));
    const timeout = flags.timeoutS ?? (oneShot ? 30 : null);
    if (timeout !== null) {
      timers.push(
        setTimeout(() => {
          if (oneShot) process.stderr.write('rubidiumd: no suitable source found within the timeout\n');
          void finish(oneShot ? 1 : 0);
        }, timeout * 1000),
      );
    }
    if (sources.length === 0 && !conf.local)
      log.info('No sources configured and no local stratum: serving unsynchronised time');
    if (earlySignal) void finish(0);
  });
}
