/**
 * Wires the cmdmon service into rubidiumd: access rules from the configuration, the UDP hook for
 * the shared command port and the Unix datagram socket chronyc uses.
 */
import { lookup } from 'node:dns/promises';
import * as path from 'node:path';
import type { Clock } from '../clock/clock.js';
import { type Config, DEFAULT_CMD_SOCKET } from '../config/chrony-conf.js';
import type { CmdmonEngine } from './service.js';
import { CmdAccess } from './access.js';
import { CmdmonService } from './service.js';
import { type CmdmonUnixSocket, cmdmonUdpHook, openCmdmonUnixSocket } from './transport.js';

export interface CmdmonLogger {
  info(msg: string): void;
  warn(msg: string): void;
  debug(msg: string): void;
}

/** Where chronyc (4.3, Debian) looks first when run without -h. */
export const CHRONYC_DEFAULT_SOCKET = '/var/run/chrony/chronyd.sock';

/**
 * Where the chrony-compatible datagram socket goes. With the default command socket, chronyd's own
 * default path, so a plain `chronyc` finds rubidiumd as it found chronyd. With a configured
 * `bindcmdaddress /path` (which stays rubidiumc's JSON stream socket), `chronyd.sock` next to it,
 * for `chronyc -h DIR/chronyd.sock`; if that path is itself named chronyd.sock, `chronyd-cmdmon.sock`.
 */
export function cmdmonSocketPath(cmdSocket: string, defaultCmdSocket?: string): string {
  if (defaultCmdSocket !== undefined && cmdSocket === defaultCmdSocket) return CHRONYC_DEFAULT_SOCKET;
  const dir = path.dirname(cmdSocket);
  const p = path.join(dir, 'chronyd.sock');
  return p === path.resolve(cmdSocket) || p === cmdSocket ? path.join(dir, 'chronyd-cmdmon.sock') : p;
}

export interface Cmdmon {
  service: CmdmonService;
  udpHook: ReturnType<typeof cmdmonUdpHook>;
  /**
   * Opens the Unix datagram socket; logs and returns null if it cannot. `chronydPath`: a default
   * command socket maps to chronyd's own path (not for the embedded demo configuration, which
   * must never take over a running chronyd's socket).
   */
  openUnix(cmdSocket: string, chronydPath: boolean): Promise<CmdmonUnixSocket | null>;
  close(): void;
}

export function setupCmdmon(
  engine: CmdmonEngine,
  flush: () => void,
  clock: Clock,
  conf: Config,
  log: CmdmonLogger,
  otherCmdStats: () => { received: number; dropped: number },
  cycleLogs?: () => void,
): Cmdmon {
  let access: CmdAccess;
  try {
    access = new CmdAccess({
      rules: conf.cmdaccess,
      ...(conf.opencommands ? { openCommands: conf.opencommands } : {}),
      rateLimit: conf.cmdratelimit,
    });
  } catch (e) {
    // e.g. a host name in cmdallow: fall back to localhost only, which is never less safe.
    log.warn(`cmdallow/cmddeny: ${(e as Error).message}; command access limited to localhost`);
    access = new CmdAccess({ rateLimit: conf.cmdratelimit });
  }
  const started = process.hrtime.bigint();
  const service = new CmdmonService({
    engine,
    now: () => clock.now(),
    monotonicSeconds: () => Number(process.hrtime.bigint() - started) / 1e9,
    flush,
    access,
    resolve: async (name) => (await lookup(name, { all: true })).map((a) => a.address),
    otherCmdStats,
    ...(cycleLogs ? { cycleLogs } : {}),
    onReject: (origin, reason) =>
      log.debug(`cmdmon: ${origin.transport === 'udp' ? origin.address : 'unix'}: ${reason}`),
  });
  const onError = (err: Error) => log.debug(`cmdmon: ${err.message}`);
  let unix: CmdmonUnixSocket | null = null;
  return {
    service,
    udpHook: cmdmonUdpHook(service, onError),
    async openUnix(cmdSocket, chronydPath) {
      const p = cmdmonSocketPath(cmdSocket, chronydPath ? DEFAULT_CMD_SOCKET : undefined);
      try {
        unix = await openCmdmonUnixSocket(p, service, onError);
        log.info(`chronyc socket on ${p} (chronyc -h ${p})`);
      } catch (e) {
        log.warn(`Could not open chronyc socket ${p}: ${(e as Error).message}`);
      }
      return unix;
    },
    close() {
      unix?.close();
      unix = null;
    },
  };
}
