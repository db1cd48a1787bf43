/**
 * Rubidium's library API: the protocol pieces, usable directly from Node applications.
 * Everything exported here is sans-IO (no sockets, no timers) except the `io` helpers.
 */
export * from './time/ntp-time.js';
export type { Clock, ClockStatus, LeapIndicator } from './clock/clock.js';
export { DisciplinedClock } from './clock/disciplined-clock.js';
export { SystemClock } from './clock/system-clock.js';
export * from './engine/types.js';
export { Engine, sourceConfig, type EngineConfig, type SourceConfig } from './engine/engine.js';
export * from './ntp/packet.js';
export * from './ntp/refid.js';
export * from './ntp/kod.js';
export { AccessTable, parseSubnet } from './ntp/access.js';
export { ClientAssociation, type ClientAssociationConfig, type AssocEvent } from './ntp/client.js';
export { NtpServer, type NtpServerOptions } from './ntp/server.js';
export { Discipline, type DisciplineOptions } from './discipline/discipline.js';
export { parseDriftFile, formatDriftFile } from './discipline/driftfile.js';
export { parseConfigText, loadConfigFile, formatConfig, ConfigError, type Config } from './config/chrony-conf.js';
export type * from './control/reports.js';
export { runSimulation, type Scenario, type SimulationResult } from './sim/simulator.js';
export { openUdpSocket, type TimestampedSocket } from './io/udp.js';
export { realtimeNow } from './io/realtime.js';
