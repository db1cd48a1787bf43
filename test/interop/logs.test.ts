/**
 * Log files against a real chronyd 4.3: chronyd -x and rubidiumd -x, both clients of the same
 * server (a rubidiumd whose clock is 50 ms ahead on purpose), each write `log measurements
 * statistics tracking` into a logdir. Our files must have chronyd's banners exactly and the same
 * columns with the same widths (compared on the latest, synchronised entries).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createNetnsPair, isRoot, makeTempDir, removeTempDir, startDaemon, unwind, waitFor } from '../support/netns.js';
import { startChronyd } from '../support/peers.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const RUBIDIUMD = join(root, 'bin', 'rubidiumd');
const skip = isRoot() ? false : 'interop tests need root (network namespaces, veth)';
const NAMES = ['measurements', 'statistics', 'tracking'] as const;

function read(dir: string, name: string): string[] {
  const p = join(dir, `${name}.log`);
  return existsSync(p)
    ? readFileSync(p, 'utf8')
        .split('\n')
        .filter((l) => l !== '')
    : [];
}
const entries = (lines: string[]) => lines.filter((l) => /^\d{4}-\d\d-\d\d /.test(l));
/** Where each column ends (the layout), per field of a line split on runs of spaces. */
function columnEnds(line: string): number[] {
  const ends: number[] = [];
  for (const m of line.matchAll(/\S+/g)) ends.push(m.index + m[0].length);
  return ends;
}

describe('log files match chronyd 4.3', { skip }, () => {
  it('banners, columns and widths of measurements/statistics/tracking', { timeout: 120_000 }, async () => {
    const cleanups: Array<() => Promise<void>> = [];
    try {
      const pair = await createNetnsPair({ tag: 'logs', subnet: 9 });
      cleanups.push(() => pair.destroy());
      const sdir = makeTempDir('rb-logs-server');
      cleanups.push(async () => removeTempDir(sdir));
      writeFileSync(join(sdir, 'c.conf'), 'local stratum 1\nallow all\ncmdport 0\nbindcmdaddress /\n');
      const server = await startDaemon(
        pair.server,
        [process.execPath, RUBIDIUMD, '-x', '-d', '-f', join(sdir, 'c.conf'), '--inject-error', '0.05,0'],
        {
          name: 'rubidiumd-server',
          readyPattern: /Serving NTP/,
          readyTimeoutMs: 15_000,
          logFile: join(sdir, 'server.log'),
        },
      );
      cleanups.push(() => server.stop().then(() => undefined));

      // chronyd creates its logdir for its own user (_chrony) after dropping root: let it in.
      const chronyTop = makeTempDir('rb-logs-chrony');
      cleanups.push(async () => removeTempDir(chronyTop));
      chmodSync(chronyTop, 0o755);
      const chronyLogs = join(chronyTop, 'log');
      const chronyd = await startChronyd({
        ns: pair.client,
        servers: [{ address: pair.serverAddr, options: 'iburst minpoll -2 maxpoll -2' }],
        cmdPort: 11324,
        extraConfig: [`logdir ${chronyLogs}`, 'log measurements statistics tracking'],
      });
      cleanups.push(() => chronyd.stop());

      const rdir = makeTempDir('rb-logs-rubidium');
      cleanups.push(async () => removeTempDir(rdir));
      writeFileSync(
        join(rdir, 'c.conf'),
        // Polls at 1 s: our measurements are collected once a second, so each sample gets its line.
        [
          `server ${pair.serverAddr} iburst minpoll 0 maxpoll 0`,
          'port 0',
          'cmdport 0',
          'bindcmdaddress /',
          `logdir ${join(rdir, 'log')}`,
          'log measurements statistics tracking',
          '',
        ].join('\n'),
      );
      const rb = await startDaemon(pair.client, [process.execPath, RUBIDIUMD, '-x', '-d', '-f', join(rdir, 'c.conf')], {
        name: 'rubidiumd-client',
        readyPattern: /starting/,
        readyTimeoutMs: 15_000,
        logFile: join(rdir, 'client.log'),
      });
      cleanups.push(() => rb.stop().then(() => undefined));

      await waitFor(
        async () =>
          NAMES.every(
            (n) => entries(read(chronyLogs, n)).length >= 2 && entries(read(join(rdir, 'log'), n)).length >= 2,
          ) || undefined,
        { timeoutMs: 60_000, intervalMs: 500, what: 'both daemons to write two entries in every log' },
      ).catch((e: Error) => {
        const counts = NAMES.map(
          (n) =>
            `${n}: chronyd ${entries(read(chronyLogs, n)).length}, ours ${entries(read(join(rdir, 'log'), n)).length}`,
        );
        throw new Error(
          `${e.message}\n${counts.join('\n')}\nrubidiumd:\n${rb.tail()}\nchronyd:\n${chronyd.proc.tail()}`,
        );
      });
      for (const n of NAMES) {
        const theirs = read(chronyLogs, n);
        const ours = read(join(rdir, 'log'), n);
        assert.deepEqual(ours.slice(0, 3), theirs.slice(0, 3), `${n}.log banner`);
        // The latest entries: both synchronised (chronyd's first tracking line is from before).
        const t = entries(theirs).at(-1)!;
        const o = entries(ours).at(-1)!;
        assert.equal(
          o.split(/\s+/).length,
          t.split(/\s+/).length,
          `${n}.log column count\nchronyd: ${t}\nours:    ${o}`,
        );
        // The address column is padded to 15; both use the same server address, so every column ends alike.
        assert.deepEqual(columnEnds(o), columnEnds(t), `${n}.log column layout\nchronyd: ${t}\nours:    ${o}`);
      }
    } finally {
      await unwind(cleanups);
    }
  });
});
