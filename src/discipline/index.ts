export * from './regression.js';
export * from './source-stats.js';
export * from './selection.js';
export * from './servo.js';
export * from './driftfile.js';
export * from './discipline.js';
