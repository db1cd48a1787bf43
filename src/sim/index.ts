export * from './prng.js';
export * from './oscillator.js';
export * from './network.js';
export * from './event-queue.js';
export * from './simulator.js';
