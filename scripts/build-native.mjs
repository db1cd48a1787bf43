#!/usr/bin/env node
// Builds the N-API addon (native/) with node-gyp. A failed build is not fatal: the daemon
// reports at start that kernel timestamps and clock_adjtime are unavailable and falls back.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
if (!existsSync(join(root, 'binding.gyp'))) process.exit(0);

let gyp;
try {
  gyp = require.resolve('node-gyp/bin/node-gyp.js');
} catch {
  console.warn('rubidium: node-gyp not found; native addon not built (kernel timestamps unavailable)');
  process.exit(0);
}
const args = [gyp, 'rebuild'];
// Build offline against the running Node's headers when the machine has them.
const nodedir = process.env.npm_config_nodedir || (existsSync('/usr/include/node/node_api.h') ? '/usr' : '');
if (nodedir) args.push(`--nodedir=${nodedir}`);
const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
if (r.status !== 0) {
  console.warn('rubidium: native addon build failed; rubidiumd will fall back to Node sockets without kernel timestamps');
}
process.exit(0);
