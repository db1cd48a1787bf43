/**
 * Maps control requests (rubidiumc) onto the engine's reports and operations.
 */
import type { Clock } from '../clock/clock.js';
import { commandTable, type ControlHandler } from '../control/server.js';
import { errorResponse, okResponse } from '../control/protocol.js';
import type { Engine, SourceConfig } from '../engine/engine.js';
import type { Runtime } from './runtime.js';
import { authDataReports } from '../control/authdata.js';

/** Which sources an online/offline/burst argument selects: an address, or ADDRESS/MASKBITS. */
function sourceFilter(args: string[]): ((s: SourceConfig) => boolean) | undefined {
  const spec = args.find((a) => !/^\d+\/\d+$/.test(a));
  if (!spec) return undefined;
  const addr = spec.split('/')[0];
  return (s) => s.address.address === addr || s.name === spec;
}

export function makeControlHandler(
  engine: Engine,
  runtime: Runtime,
  clock: Clock,
  cmdStats: () => { received: number; dropped: number },
  logs?: { cycle(): void },
): ControlHandler {
  const now = () => clock.now();
  return commandTable({
    tracking: () => okResponse(engine.tracking(now())),
    sources: () => okResponse(engine.sources(now())),
    sourcestats: () => okResponse(engine.sourceStats(now())),
    authdata: () => okResponse(authDataReports(engine.sourceDetails(), now())),
    ntpdata: (args) => {
      const all = engine.ntpData(now());
      const list = args.length ? all.filter((d) => args.includes(d.remoteAddress)) : all;
      return args.length && list.length === 0 ? errorResponse('503 No such source') : okResponse(list);
    },
    clients: () => okResponse(engine.clients(now())),
    serverstats: () => {
      const s = engine.serverStats();
      const c = cmdStats();
      return okResponse({ ...s, cmdPacketsReceived: c.received, cmdPacketsDropped: c.dropped });
    },
    activity: () => okResponse(engine.activity()),
    cyclelogs: () => {
      logs?.cycle();
      return okResponse();
    },
    makestep: () => {
      engine.makestep();
      runtime.flush();
      return okResponse();
    },
    burst: (args) => {
      engine.burst(now(), sourceFilter(args));
      runtime.flush();
      return okResponse();
    },
    online: (args) => {
      engine.setOnline(true, now(), sourceFilter(args));
      runtime.flush();
      return okResponse();
    },
    offline: (args) => {
      engine.setOnline(false, now(), sourceFilter(args));
      runtime.flush();
      return okResponse();
    },
  });
}
